/*
 * The raylet's Prometheus metrics: its /metrics endpoint and the node gauges Ray's dashboards use
 * (rayc_node_cpu_utilization, rayc_node_mem_used/total: common/metrics.c reads /proc for them when
 * scraped), plus the raylet's own workers and leases, which the cron refreshes once a second from
 * the loop's state (the HTTP thread only renders the registry).
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
  metrics_node_enable(); /* the node's CPU and memory, read when scraped (the cron read /proc every second) */
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
  metrics_set(metrics_series0(metrics_family("rayc_node_cpus", METRICS_GAUGE, "CPUs this node offers.", NULL)),
              r->cfg.num_cpus);
  raylet_metrics_workers(r);
}

void raylet_metrics_view(raylet_t *r)
{
  if (!r->metrics)
    return;
  metrics_set(metrics_series0(metrics_family("rayc_raylet_view_nodes", METRICS_GAUGE,
                                             "Nodes in this raylet's copy of the cluster view (spillback targets).",
                                             NULL)),
              r->nview);
}
