/*
 * rayc-gcs's Prometheus metrics: the /metrics endpoint (common/metrics_http.h) and the gauges that
 * mirror the GCS's tables (nodes, jobs, actors by state, resources by name, task states once task
 * events are kept). The loop refreshes the gauges from its tables once a second (in the cron), so
 * the HTTP thread never reads loop state; a scrape sees values at most a second old.
 */
#ifndef RAYC_GCS_METRICS_H
#define RAYC_GCS_METRICS_H

#include <stdint.h>

struct gcs_server;

/* Starts the endpoint on the GCS's address and conf->metrics_port (0: ephemeral; < 0: none).
 * 0 or a negative code with *err a new message. */
int gcs_metrics_start(struct gcs_server *s, char **err);

/* The bound port, or 0 when there is no endpoint. */
int gcs_metrics_port(const struct gcs_server *s);

/* Refreshes the gauges when a second has passed since the last refresh (cron). */
void gcs_metrics_cron(struct gcs_server *s, int64_t now);

/* Stops the endpoint. Idempotent. */
void gcs_metrics_stop(struct gcs_server *s);

#endif
