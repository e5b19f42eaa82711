/*
 * rayc-store's Prometheus series, refreshed from the store's figures once a second by its cron
 * (the /metrics endpoint itself is started by main.c): Ray's rayc_object_store_memory{Location},
 * rayc_object_store_num_local_objects, rayc_spill_bytes_total / rayc_restore_bytes_total, and the
 * object manager's transfer totals.
 */
#include "object-store/store_server_int.h"

#include "common/metrics.h"
#include "common/util.h"

static void store_metrics_gauge(const char *name, const char *help, double v)
{
  metrics_set(metrics_series0(metrics_family(name, METRICS_GAUGE, help, NULL)), v);
}

static void store_metrics_counter(const char *name, const char *help, double v)
{
  metrics_set(metrics_series0(metrics_family(name, METRICS_COUNTER, help, NULL)), v);
}

void store_metrics_cron(store_server_t *s)
{
  int64_t now = now_ms();
  if (now < s->metrics_next_ms)
    return;
  s->metrics_next_ms = now + 1000;
  const store_core_stats_t *st = &s->core.st;
  metrics_family_t *mem = metrics_family("rayc_object_store_memory", METRICS_GAUGE,
                                         "Object store bytes, by location (MMAP_SHM: primary copies in shared "
                                         "memory, MMAP_SHM_SECONDARY: secondary copies, SPILLED: on disk).",
                                         "Location");
  metrics_set(metrics_series1(mem, "MMAP_SHM"), (double)st->bytes_primary);
  metrics_set(metrics_series1(mem, "MMAP_SHM_SECONDARY"), (double)st->bytes_secondary);
  metrics_set(metrics_series1(mem, "SPILLED"), (double)st->bytes_on_disk);
  store_metrics_gauge("rayc_object_store_available_memory", "Free bytes of the object store's region.",
                      (double)(store_core_capacity(&s->core) - store_core_used(&s->core)));
  store_metrics_gauge("rayc_object_store_capacity", "The object store's size in bytes.",
                      (double)store_core_capacity(&s->core));
  store_metrics_gauge("rayc_object_store_num_local_objects", "Objects in this node's store.",
                      (double)store_core_num_objects(&s->core));
  store_metrics_counter("rayc_spill_bytes_total", "Bytes spilled to disk since the store started.",
                        (double)st->spilled_bytes);
  store_metrics_counter("rayc_restore_bytes_total", "Bytes restored from disk since the store started.",
                        (double)st->restored_bytes);
  store_metrics_counter("rayc_evicted_bytes_total", "Bytes of secondary copies evicted since the store started.",
                        (double)st->evicted_bytes);
  store_metrics_counter("rayc_object_manager_received_bytes_total", "Bytes pulled from other nodes.",
                        (double)s->pulled_bytes);
  store_metrics_counter("rayc_object_manager_sent_bytes_total", "Bytes served to other nodes.",
                        (double)s->served_bytes);
}
