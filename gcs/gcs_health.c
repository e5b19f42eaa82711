/* GCS health checks: probes of every ALIVE raylet, from the GCS loop. See gcs_health.h. */
#include "gcs/gcs_health.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* One probe in flight: the node is found again by id, so a node table change cannot leave it
 * dangling. */
typedef struct gcs_probe {
  gcs_health_t *h;
  id_node_t id;
  uint64_t incarnation;
} gcs_probe_t;

int gcs_health_init(gcs_health_t *h, uv_loop_t *loop, const char *token, const rpc_tls_t *tls, gcs_nodes_t *nodes,
                    int period_ms, int timeout_ms, int threshold)
{
  memset(h, 0, sizeof(*h));
  rpc_client_opts_t opts = {.loop = loop, .token = token, .tls = tls};
  h->client = rpc_client_create(&opts);
  if (!h->client)
    return RAYC_EINVALID_ARGUMENT;
  h->nodes = nodes;
  h->period_ms = period_ms;
  h->timeout_ms = timeout_ms;
  h->threshold = threshold > 0 ? threshold : 1;
  return 0;
}

void gcs_health_release(gcs_health_t *h)
{
  h->stopping = 1; /* the callbacks destroy runs only free their probes */
  rpc_client_destroy(h->client);
  h->client = NULL;
}

void gcs_health_result(gcs_health_t *h, gcs_node_t *n, int ok, const char *why)
{
  char id[9];
  if (ok) {
    if (n->failures > 0)
      log_info("node %s: health check passed again after %d failures", id_short(n->id.b, ID_NODE_SIZE, id),
               n->failures);
    n->failures = 0;
    return;
  }
  h->failed++;
  n->failures++;
  log_warn("node %s: health check failed (%d of %d): %s", id_short(n->id.b, ID_NODE_SIZE, id), n->failures,
           h->threshold, why);
  if (n->failures < h->threshold)
    return;
  char *reason = xasprintf("health checks failed %d times in a row (last: %s)", n->failures, why);
  gcs_nodes_mark_dead(h->nodes, n, reason);
  free(reason);
}

/* Checks a probe's reply; returns NULL when it is good, else why it is not. */
static const char *gcs_health_check_reply(const gcs_probe_t *p, int status, const char *detail,
                                          const ProtobufCMessage *resp)
{
  if (status < 0)
    return detail && *detail ? detail : rayc_strerror(status);
  const Rayc__HealthCheckReply *r = (const Rayc__HealthCheckReply *)resp;
  if (r->node_id.len && (r->node_id.len != ID_NODE_SIZE || memcmp(r->node_id.data, p->id.b, ID_NODE_SIZE) != 0))
    return "another node answers at the raylet's address";
  return NULL;
}

static void gcs_health_on_reply(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  gcs_probe_t *p = arg;
  gcs_health_t *h = p->h;
  gcs_node_t *n = h->stopping ? NULL : gcs_nodes_find(h->nodes, p->id.b, ID_NODE_SIZE);
  if (n) /* the only probe of n in flight, whatever its incarnation */
    n->probe_in_flight = 0;
  if (n && n->incarnation == p->incarnation && n->state == GCS_NODE_ALIVE) {
    const char *why = gcs_health_check_reply(p, status, detail, resp);
    gcs_health_result(h, n, why == NULL, why);
  }
  pb_free(resp);
  free(p);
}

/* Starts one probe of n. */
static void gcs_health_probe(gcs_health_t *h, gcs_node_t *n, int64_t now)
{
  const char *ip = n->info->ip;
  int v6 = strchr(ip, ':') != NULL;
  char *target = xasprintf("%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", n->info->raylet_port);
  gcs_probe_t *p = xcalloc(1, sizeof(*p));
  p->h = h;
  p->id = n->id;
  p->incarnation = n->incarnation;
  Rayc__HealthCheckRequest req = RAYC__HEALTH_CHECK_REQUEST__INIT;
  n->next_probe_ms = now + h->period_ms;
  int rc = rpc_call(rpc_channel_get(h->client, target), &rayc__node_manager_service__descriptor, GCS_HEALTH_METHOD,
                    &req.base, h->timeout_ms, gcs_health_on_reply, p);
  free(target);
  h->probes++;
  if (rc < 0) { /* the client is closing: nothing to count */
    free(p);
    return;
  }
  n->probe_in_flight = 1;
}

void gcs_health_tick(gcs_health_t *h, int64_t now)
{
  if (!h->client || h->stopping)
    return;
  for (size_t i = 0; i < h->nodes->n; i++) {
    gcs_node_t *n = h->nodes->v[i];
    if (n->state != GCS_NODE_ALIVE || n->probe_in_flight || now < n->next_probe_ms || n->info->raylet_port <= 0 ||
        !n->info->ip[0])
      continue;
    if (now - n->last_seen_ms < 2 * (int64_t)h->period_ms) { /* a heartbeat just proved it alive: no probe needed */
      n->next_probe_ms = n->last_seen_ms + 2 * (int64_t)h->period_ms;
      n->failures = 0;
      continue;
    }
    gcs_health_probe(h, n, now);
  }
}
