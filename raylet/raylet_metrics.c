/*
 * The raylet's Prometheus metrics: its /metrics endpoint and the node gauges Ray's dashboards use
 * (rayc_node_cpu_utilization, rayc_node_mem_used/total), plus the raylet's own workers and leases.
 * The cron refreshes them once a second from the loop's state and /proc; the HTTP thread only
 * renders the registry.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int raylet_metrics_start(raylet_t *r)
{
  if (r->cfg.metrics_port < 0)
    return 0;
  char *err = NULL;
  r->metrics = metrics_http_start(r->cfg.node_ip, r->cfg.metrics_port, &err);
  if (!r->metrics) {
    log_error("%s", err);
    free(err);
    return RAYC_EUNAVAILABLE;
  }
  log_info("metrics on http://%s:%d/metrics", r->cfg.node_ip, metrics_http_port(r->metrics));
  return 0;
}

int raylet_metrics_port(const raylet_t *r)
{
  return r->metrics ? metrics_http_port(r->metrics) : 0;
}

void raylet_metrics_stop(raylet_t *r)
{
  metrics_http_stop(r->metrics);
  r->metrics = NULL;
}

/* The node's CPU use in percent since the last call, from /proc/stat's first line; -1 at first. */
static double raylet_metrics_cpu(raylet_t *r)
{
  unsigned long long v[8] = {0}, busy, total = 0;
  FILE *fp = fopen("/proc/stat", "r");
  int n = fp ? fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                      &v[6], &v[7])
             : 0;
  if (fp)
    fclose(fp);
  if (n < 4)
    return -1;
  for (int i = 0; i < 8; i++)
    total += v[i];
  busy = total - v[3] - v[4]; /* idle and iowait */
  double pct = -1;
  if (r->cpu_total && total > r->cpu_total)
    pct = 100.0 * (double)(busy - r->cpu_busy) / (double)(total - r->cpu_total);
  r->cpu_busy = busy;
  r->cpu_total = total;
  return pct;
}

static void raylet_metrics_mem(void)
{
  char line[256];
  double total = 0, avail = 0, kb;
  FILE *fp = fopen("/proc/meminfo", "r");
  while (fp && fgets(line, sizeof(line), fp)) {
    if (sscanf(line, "MemTotal: %lf kB", &kb) == 1)
      total = kb * 1024;
    else if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
      avail = kb * 1024;
  }
  if (fp)
    fclose(fp);
  metrics_set(
      metrics_series0(metrics_family("rayc_node_mem_capacity", METRICS_GAUGE, "The node's memory in bytes.", NULL)),
      total);
  metrics_set(metrics_series0(metrics_family("rayc_node_mem_used", METRICS_GAUGE,
                                             "The node's memory in use (total minus available) in bytes.", NULL)),
              total - avail);
}

static void raylet_metrics_workers(raylet_t *r)
{
  static const char *names[] = {"STARTING", "IDLE", "LEASED", "EXITING", "DEAD"};
  double count[5] = {0}, queued = 0;
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if ((unsigned)w->state < 5)
      count[w->state]++;
  for (raylet_request_t *q = r->queue; q; q = q->next)
    queued++;
  metrics_family_t *f = metrics_family("rayc_raylet_workers", METRICS_GAUGE, "This node's workers, by state.", "State");
  for (size_t i = 0; i < 5; i++)
    metrics_set(metrics_series1(f, names[i]), count[i]);
  metrics_set(metrics_series0(metrics_family("rayc_raylet_queued_leases", METRICS_GAUGE,
                                             "Worker lease requests waiting at this raylet.", NULL)),
              queued);
}

void raylet_metrics_cron(raylet_t *r)
{
  int64_t now = now_ms();
  if (!r->metrics || now < r->metrics_next_ms)
    return;
  r->metrics_next_ms = now + 1000;
  double cpu = raylet_metrics_cpu(r);
  if (cpu >= 0)
    metrics_set(metrics_series0(metrics_family("rayc_node_cpu_utilization", METRICS_GAUGE,
                                               "The node's CPU use in percent over the last second.", NULL)),
                cpu);
  metrics_set(metrics_series0(metrics_family("rayc_node_cpus", METRICS_GAUGE, "CPUs this node offers.", NULL)),
              r->cfg.num_cpus);
  raylet_metrics_mem();
  raylet_metrics_workers(r);
}
