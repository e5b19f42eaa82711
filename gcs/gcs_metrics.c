/* rayc-gcs's metrics; see gcs/gcs_metrics.h. */
#include "gcs/gcs_metrics.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gcs_metrics_start(gcs_server_t *s, char **err)
{
  if (s->conf->metrics_port < 0)
    return 0;
  s->metrics = metrics_http_start(s->conf->node_ip_address, s->conf->metrics_port, err);
  if (!s->metrics)
    return RAYC_EUNAVAILABLE;
  log_info("metrics on http://%s:%d/metrics", s->conf->node_ip_address, metrics_http_port(s->metrics));
  return 0;
}

int gcs_metrics_port(const gcs_server_t *s)
{
  return s->metrics ? metrics_http_port(s->metrics) : 0;
}

void gcs_metrics_stop(gcs_server_t *s)
{
  metrics_http_stop(s->metrics);
  s->metrics = NULL;
}

static void gcs_metrics_nodes(gcs_server_t *s)
{
  metrics_family_t *f = metrics_family("rayc_cluster_nodes", METRICS_GAUGE, "Nodes the GCS knows, by state.", "State");
  metrics_family_t *r = metrics_family("rayc_resources", METRICS_GAUGE,
                                       "Logical resources of the alive nodes, by name and state (USED or AVAILABLE).",
                                       "Name,State");
  double alive = 0, dead = 0;
  metrics_family_clear(r);
  for (size_t i = 0; i < s->nodes.n; i++) {
    const gcs_node_t *n = s->nodes.v[i];
    if (n->state != GCS_NODE_ALIVE) {
      dead++;
      continue;
    }
    alive++;
    for (size_t k = 0; k < n->info->n_resources_total; k++) {
      const Rayc__ResourceEntry *t = n->info->resources_total[k];
      double avail = t->amount;
      for (size_t j = 0; n->hb && j < n->hb->n_resources_available; j++)
        if (strcmp(n->hb->resources_available[j]->name, t->name) == 0)
          avail = n->hb->resources_available[j]->amount;
      metrics_add(metrics_series2(r, t->name, "AVAILABLE"), avail);
      metrics_add(metrics_series2(r, t->name, "USED"), t->amount - avail);
    }
  }
  metrics_set(metrics_series1(f, "ALIVE"), alive);
  metrics_set(metrics_series1(f, "DEAD"), dead);
}

static void gcs_metrics_actors(gcs_server_t *s)
{
  static const char *names[] = {"PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"};
  double count[4] = {0};
  for (hmap_iter_t it = hmap_iter(&s->actors->by_id); hmap_next(&it);) {
    const gcs_actor_t *a = it.value;
    if ((unsigned)a->state < 4)
      count[a->state]++;
  }
  metrics_family_t *f = metrics_family("rayc_actors", METRICS_GAUGE, "Actors, by state.", "State");
  for (size_t i = 0; i < 4; i++)
    metrics_set(metrics_series1(f, names[i]), count[i]);
}

static void gcs_metrics_jobs(gcs_server_t *s)
{
  double running = 0, finished = 0;
  for (size_t i = 0; i < s->jobs.n; i++) {
    if (!s->jobs.v[i])
      continue;
    if (s->jobs.v[i]->state == GCS_JOB_RUNNING)
      running++;
    else
      finished++;
  }
  metrics_family_t *f = metrics_family("rayc_jobs", METRICS_GAUGE, "Jobs (drivers), by state.", "State");
  metrics_set(metrics_series1(f, "RUNNING"), running);
  metrics_set(metrics_series1(f, "FINISHED"), finished);
}

void gcs_metrics_cron(gcs_server_t *s, int64_t now)
{
  if (now < s->metrics_next_ms)
    return;
  s->metrics_next_ms = now + 1000;
  gcs_metrics_nodes(s);
  gcs_metrics_actors(s);
  gcs_metrics_jobs(s);
  gcs_task_events_metrics(s);
}
