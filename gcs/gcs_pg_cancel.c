/* The GCS placement-group manager's returns to raylets: CancelResourceReserve (a group's bundles
 * on a node given back: removals, failed attempts, queued returns leaving alone) and the retry of
 * a cancel that failed. gcs_pg_place.c places; gcs_pg_return.c queues removed groups' returns. */
#include "gcs/gcs_pg_int.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdlib.h>
#include <string.h>

/* A CancelResourceReserve that failed (the raylet could not be reached, or did not answer in
 * PG_CANCEL_MS): sent again after delay_ms, doubling up to PG_CANCEL_RETRY_MAX_MS, while its node
 * is ALIVE (a dead node's bundles die with it) and the group does not hold the bundle there again
 * (placed anew on the same node: the new reservation must stay). */
struct gcs_pg_cancel {
  uint8_t id[ID_PG_SIZE];
  id_node_t node;
  int index;
  int64_t delay_ms, at_ms;
  struct gcs_pg_cancel *next;
};


/* Queues the cancel of group id's bundle index on st's node to be sent again (see struct
 * gcs_pg_cancel). */
static void pg_cancel_later_id(gcs_pgs_t *m, const gcs_pg_step_t *st, const uint8_t *id, int index, const char *why)
{
  struct gcs_pg_cancel *c = xcalloc(1, sizeof(*c));
  memcpy(c->id, id, ID_PG_SIZE);
  c->node = st->node;
  c->index = index;
  c->delay_ms = st->delay_ms ? 2 * st->delay_ms : PG_CANCEL_RETRY_MS;
  if (c->delay_ms > PG_CANCEL_RETRY_MAX_MS)
    c->delay_ms = PG_CANCEL_RETRY_MAX_MS;
  c->at_ms = now_ms() + c->delay_ms;
  c->next = m->cancels;
  m->cancels = c;
  char hex[2 * ID_PG_SIZE + 1], node[9];
  id_hex(id, ID_PG_SIZE, hex);
  log_info("placement group %s: returning its bundles on node %s failed (%s); retrying in %lld ms", hex,
           id_short(st->node.b, ID_NODE_SIZE, node), why, (long long)c->delay_ms);
}

/* Queues the returns st carried (st->more) to be sent again, one cancel per group; skip (NULL:
 * none) is left out. */
void gcs_pg_more_later(gcs_pgs_t *m, const gcs_pg_step_t *st, const uint8_t *skip, const char *why)
{
  for (size_t i = 0; i < st->nmore; i++)
    if (!skip || memcmp(st->more[i], skip, ID_PG_SIZE) != 0)
      pg_cancel_later_id(m, st, st->more[i], -1, why);
}

/* Queues st's cancel (and the returns it carried) to be sent again. */
static void pg_cancel_later(gcs_pgs_t *m, const gcs_pg_step_t *st, const char *why)
{
  pg_cancel_later_id(m, st, st->id, st->index, why);
  gcs_pg_more_later(m, st, st->id, why);
}

static void cancel_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  gcs_pg_step_t *st = arg;
  Rayc__CancelResourceReserveReply *rep = (Rayc__CancelResourceReserveReply *)resp;
  if (status == 0 && !st->m->stopping) {
    gcs_pg_node_resources(st->m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                      rep->n_resources_total, rep->report_seq);
    if (rep->cancelled > 0) /* resources came back: groups waiting for them try now */
      gcs_pg_kick(st->m);
  } else if (status != 0 && !st->m->stopping && gcs_pg_alive_node(st->m, &st->node))
    pg_cancel_later(st->m, st, detail && *detail ? detail : rayc_strerror(status));
  pb_free(resp);
  gcs_pg_step_free(st);
}

/* Sends one CancelResourceReserve for group id's bundle index (-1: all) on node. */
static void pg_cancel_send(gcs_pgs_t *m, const uint8_t *id, const id_node_t *node, int index, int64_t delay_ms)
{
  gcs_node_t *n = gcs_pg_alive_node(m, node);
  if (!n || m->stopping)
    return;
  Rayc__CancelResourceReserveRequest req = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  req.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  req.bundle_index = index;
  gcs_pg_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  memcpy(st->id, id, ID_PG_SIZE);
  st->node = *node;
  st->index = index;
  st->delay_ms = delay_ms;
  if (rpc_call(gcs_pg_raylet(m, n), &rayc__node_manager_service__descriptor, "CancelResourceReserve", &req.base,
               PG_CANCEL_MS, cancel_done, st) != 0)
    free(st);
}

void gcs_pg_return_send(gcs_pgs_t *m, const id_node_t *node, uint8_t (*ids)[ID_PG_SIZE], size_t n)
{
  gcs_node_t *nd = gcs_pg_alive_node(m, node);
  if (!nd || m->stopping || n == 0) { /* a dead node's bundles died with it */
    free(ids);
    return;
  }
  Rayc__CancelResourceReserveRequest req = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  req.placement_group_id = pb_bytes(ids[0], ID_PG_SIZE);
  req.bundle_index = -1;
  req.more_groups = gcs_pg_ids_pb(ids + 1, n - 1);
  req.n_more_groups = n - 1;
  gcs_pg_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  memcpy(st->id, ids[0], ID_PG_SIZE);
  st->node = *node;
  st->index = -1;
  st->more = ids; /* ids[0] again on a failure: skipped there (st->id is retried) */
  st->nmore = n;
  if (rpc_call(gcs_pg_raylet(m, nd), &rayc__node_manager_service__descriptor, "CancelResourceReserve", &req.base,
               PG_CANCEL_MS, cancel_done, st) != 0) {
    gcs_pg_more_later(m, st, NULL, "the call could not be made");
    gcs_pg_step_free(st);
  }
  free(req.more_groups);
}

/* Asks a node to return the group's bundle index (-1: all of the group's bundles there). */
void gcs_pg_cancel_on(gcs_pgs_t *m, const gcs_pg_t *g, const id_node_t *node, int index)
{
  pg_cancel_send(m, g->id, node, index, 0);
}

/* Whether live group id holds (or is reserving) bundle index (-1: any) on node. */
static int pg_holds(gcs_pgs_t *m, const uint8_t *id, const id_node_t *node, int index)
{
  gcs_pg_t *g = hmap_get(&m->by_id, id, ID_PG_SIZE);
  if (!g || !gcs_pg_live(g))
    return 0;
  for (size_t i = 0; i < g->info->n_bundles; i++) {
    const ProtobufCBinaryData *on = &g->info->bundles[i]->node_id;
    if (index >= 0 && (size_t)index != i)
      continue;
    if ((on->len == ID_NODE_SIZE && memcmp(on->data, node->b, ID_NODE_SIZE) == 0) ||
        (g->trying[i] && memcmp(g->try_node[i].b, node->b, ID_NODE_SIZE) == 0))
      return 1;
  }
  return 0;
}

void gcs_pg_cancels_cron(gcs_pgs_t *m, int64_t now)
{
  for (struct gcs_pg_cancel **pp = &m->cancels; *pp;) {
    struct gcs_pg_cancel *c = *pp;
    if (c->at_ms > now) {
      pp = &c->next;
      continue;
    }
    *pp = c->next;
    if (!pg_holds(m, c->id, &c->node, c->index))
      pg_cancel_send(m, c->id, &c->node, c->index, c->delay_ms);
    free(c);
  }
}

void gcs_pg_cancels_release(gcs_pgs_t *m)
{
  while (m->cancels) {
    struct gcs_pg_cancel *c = m->cancels;
    m->cancels = c->next;
    free(c);
  }
}
