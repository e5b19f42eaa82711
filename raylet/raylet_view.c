/*
 * The raylet's copy of the cluster resource view (for spillback and node affinity). The GCS sends
 * it on heartbeat replies, in full when this raylet holds none (or one of another GCS epoch), else
 * as the delta since the version held: the nodes that joined or changed and the ids of those that
 * died or began draining. An idle cluster's replies carry nothing.
 *
 * Spillback lowers a node's free resources here at once so that a burst of requests spreads;
 * the GCS only sends a node again when its own report changes, so a lowered entry is refreshed
 * by asking for the full view once it is older than two heartbeats.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static raylet_view_node_t *view_find(raylet_t *r, const uint8_t *id)
{
  for (int i = 0; i < r->nview; i++)
    if (memcmp(r->view[i]->id.b, id, ID_NODE_SIZE) == 0)
      return r->view[i];
  return NULL;
}

static void view_remove(raylet_t *r, const uint8_t *id)
{
  for (int i = 0; i < r->nview; i++) {
    if (memcmp(r->view[i]->id.b, id, ID_NODE_SIZE) != 0)
      continue;
    free(r->view[i]);
    r->view[i] = r->view[--r->nview];
    return;
  }
}

void raylet_view_free(raylet_t *r)
{
  for (int i = 0; i < r->nview; i++)
    free(r->view[i]);
  free(r->view);
  r->view = NULL;
  r->nview = r->view_cap = 0;
  r->view_version = r->view_epoch = 0; /* the next heartbeat asks for the full view */
}

static void view_upsert(raylet_t *r, const Rayc__NodeResourceView *n)
{
  if (n->node_id.len != ID_NODE_SIZE)
    return;
  raylet_view_node_t *x = view_find(r, n->node_id.data);
  if (!x) {
    if (r->nview == r->view_cap) {
      r->view_cap = r->view_cap ? 2 * r->view_cap : 8;
      r->view = xrealloc(r->view, (size_t)r->view_cap * sizeof(*r->view));
    }
    /* calloc: of a node's 27 KB of resource slots only the used ones are ever touched */
    x = r->view[r->nview++] = xcalloc(1, sizeof(*x));
    memcpy(x->id.b, n->node_id.data, ID_NODE_SIZE);
  }
  snprintf(x->ip, sizeof(x->ip), "%s", n->ip);
  x->port = n->raylet_port;
  x->lowered = 0;
  res_from_pb(&x->total, n->resources_total, n->n_resources_total);
  res_from_pb(&x->avail, n->resources_available, n->n_resources_available);
}

void raylet_view_apply(raylet_t *r, const Rayc__ClusterView *v)
{
  if (v->delta && (v->epoch != r->view_epoch || v->base_version != r->view_version)) {
    log_info("the cluster view moved from version %lld to %lld under us: asking for the full view",
             (long long)r->view_version, (long long)v->base_version);
    r->view_version = r->view_epoch = 0;
    r->last_heartbeat_ms = 0;
    return;
  }
  if (!v->delta) {
    while (r->nview > 0)
      free(r->view[--r->nview]);
    r->view_full_ms = now_ms();
  }
  for (size_t i = 0; i < v->n_removed; i++)
    if (v->removed[i].len == ID_NODE_SIZE)
      view_remove(r, v->removed[i].data);
  for (size_t i = 0; i < v->n_nodes; i++)
    view_upsert(r, v->nodes[i]);
  r->view_version = v->version;
  r->view_epoch = v->epoch;
  raylet_metrics_view(r);
}

void raylet_view_wanted(raylet_t *r, int64_t now, int64_t *epoch, int64_t *version)
{
  int lowered = 0;
  for (int i = 0; i < r->nview && !lowered; i++)
    lowered = r->view[i]->lowered;
  if (lowered && now - r->view_full_ms > 2 * (int64_t)r->cfg.heartbeat_ms) {
    *epoch = *version = 0;
    return;
  }
  *epoch = r->view_epoch;
  *version = r->view_version;
}
