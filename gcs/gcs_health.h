/*
 * GCS health checks of every raylet (Ray's GcsHealthCheckManager): the GCS probes each ALIVE node
 * and marks it DEAD after `threshold` probes in a row failed.
 *
 * Probe: a unary call of the raylet's NodeManagerService (GCS_HEALTH_METHOD: HealthCheck,
 * since every raylet serves it; a dedicated, cheaper HealthCheck method can replace it by changing
 * that one name) at <ip>:<raylet_port>, with a deadline of timeout_ms. A probe fails when the call
 * fails (refused, timed out, unauthenticated...) or when the reply names another node (a new
 * raylet took the address). One probe per node is in flight at a time; the next starts period_ms
 * after the previous one started, or when it ends if it took longer. So a dead raylet is marked
 * DEAD after about threshold * max(period, timeout) (plus a cron tick). A registration resets the
 * count; results of probes sent before it are ignored. A node whose heartbeat arrived within the
 * last two periods is not probed (the heartbeat proved it alive; at idle the GCS then holds no channel
 * and sends nothing per node), so probes run only for nodes whose heartbeats stopped. Nodes without a raylet port (0) are not
 * probed (only tests register such nodes); the heartbeat timeout still applies to them.
 *
 * Runs on the GCS loop: gcs_health_tick() from the cron starts the probes that are due, and their
 * replies come back on the loop through the rpc client.
 */
#ifndef RAYC_GCS_HEALTH_H
#define RAYC_GCS_HEALTH_H

#include "common/rpc.h"
#include "gcs/gcs_node.h"

#include <uv.h>

#define GCS_HEALTH_METHOD "HealthCheck"

typedef struct gcs_health {
  rpc_client_t *client; /* owned */
  gcs_nodes_t *nodes;   /* borrowed */
  int period_ms, timeout_ms, threshold;
  int stopping;
  uint64_t probes, failed;
} gcs_health_t;

/* Makes the probe client on loop (token: the cluster token, NULL for none; tls: NULL for
 * plaintext; all borrowed). 0 or a negative code. Release with gcs_health_release() on the loop
 * thread. */
int gcs_health_init(gcs_health_t *h, uv_loop_t *loop, const char *token, const rpc_tls_t *tls, gcs_nodes_t *nodes,
                    int period_ms, int timeout_ms, int threshold);

/* Cancels the probes in flight (their results are ignored) and frees the client. Accepts a
 * zeroed struct; idempotent. */
void gcs_health_release(gcs_health_t *h);

/* Starts a probe of every ALIVE node that is due at monotonic time now. */
void gcs_health_tick(gcs_health_t *h, int64_t now);

/* Counts one probe result of node n: ok resets the failures; a failure (why: what went wrong,
 * borrowed) counts, and the threshold-th in a row marks the node DEAD. Exposed for tests. */
void gcs_health_result(gcs_health_t *h, gcs_node_t *n, int ok, const char *why);

#endif
