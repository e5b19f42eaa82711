/*
 * Returns of removed groups' bundles, coalesced per node (issue 17, session 8).
 *
 * RemovePlacementGroup is answered once the group is REMOVED in the table and the store; the
 * return of its committed bundles to their raylets is queued here, per node, and leaves either
 * folded into the next PrepareBundleResources to that node (its `returns`, applied by the raylet
 * before it fits the prepare's bundles) or, when no prepare goes there within GCS_PG_RETURN_MS,
 * in one CancelResourceReserve carrying every group queued for the node (`more_groups`).
 *
 * The invariant that keeps resources exact: for every node, what the GCS counts free when it
 * places a group is the raylet's latest snapshot (seq-ordered) plus the resources of the queued,
 * not yet sent returns to it. Those bundles are reserved in every snapshot the GCS can hold (each
 * was committed by a reply whose snapshot included it, and an older snapshot is never taken),
 * and the only way their return leaves the queue toward that node is inside the very prepare
 * that counted them, or alone before any prepare that could count them (the queue is emptied when
 * the call is made). The raylet applies a request's returns before fitting its bundles, and it
 * alone hands resources out: a bundle's resources cannot be given twice. A return in flight is
 * counted nowhere until its reply's snapshot arrives (conservative: a group may wait for the
 * reply, which kicks the waiting groups).
 *
 * A GCS killed before a queued return left loses the queue: the REMOVED record is stored with
 * the nodes (return_nodes), and a restarted GCS queues those returns again (a return of bundles
 * already returned is a no-op on the raylet). Loop thread only.
 */
#include "gcs/gcs_pg_int.h"

#include "gcs/gcs_fit.h"
#include "gcs/gcs_server.h"

#include "common/metrics.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct gcs_pg_ret {
  id_node_t node;
  uint8_t (*ids)[ID_PG_SIZE]; /* the groups to return there, in removal order */
  size_t n, cap;
  res_set_t res; /* their committed bundles' resources: counted free when placing there */
  struct gcs_pg_ret *next;
};

static struct gcs_pg_ret *ret_find(gcs_pgs_t *m, const id_node_t *node, int make)
{
  for (struct gcs_pg_ret *r = m->rets; r; r = r->next)
    if (memcmp(r->node.b, node->b, ID_NODE_SIZE) == 0)
      return r;
  if (!make)
    return NULL;
  struct gcs_pg_ret *r = xcalloc(1, sizeof(*r));
  r->node = *node;
  r->next = m->rets;
  m->rets = r;
  return r;
}

static void ret_unlink_free(gcs_pgs_t *m, struct gcs_pg_ret *r)
{
  for (struct gcs_pg_ret **pp = &m->rets; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  free(r->ids);
  free(r);
}

static void ret_on_timer(uv_timer_t *t)
{
  gcs_pgs_t *m = t->data;
  if (m)
    gcs_pg_returns_flush(m);
}

void gcs_pg_return_later(gcs_pgs_t *m, const uint8_t *id, const id_node_t *node, const res_set_t *res)
{
  struct gcs_pg_ret *r = ret_find(m, node, 1);
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 8;
    r->ids = xrealloc(r->ids, r->cap * ID_PG_SIZE);
  }
  memcpy(r->ids[r->n++], id, ID_PG_SIZE);
  if (res)
    res_add(&r->res, res);
  if (m->ret_timer && !uv_is_active((uv_handle_t *)m->ret_timer))
    uv_timer_start(m->ret_timer, ret_on_timer, GCS_PG_RETURN_MS, 0);
}

void gcs_pg_return_credit(gcs_pgs_t *m, const id_node_t *node, res_set_t *avail)
{
  struct gcs_pg_ret *r = m->rets ? ret_find(m, node, 0) : NULL;
  if (r)
    res_add(avail, &r->res);
}

/* Counts n returns sent folded into a prepare or alone (rayc_gcs_pg_returns_total{How}). */
static void ret_count(int folded, size_t n)
{
  static metrics_series_t *s[2];
  if (!s[folded])
    s[folded] = metrics_series1(metrics_family("rayc_gcs_pg_returns_total", METRICS_COUNTER,
                                               "Removed placement groups' returns sent to a raylet, by how they "
                                               "travelled: in a prepare to the node (folded) or in a cancel (alone).",
                                               "How"),
                                folded ? "folded" : "alone");
  metrics_add(s[folded], (double)n);
}

static uint8_t (*ret_take(gcs_pgs_t *m, const id_node_t *node, size_t *n))[ID_PG_SIZE]
{
  struct gcs_pg_ret *r = m->rets ? ret_find(m, node, 0) : NULL;
  *n = 0;
  if (!r)
    return NULL;
  uint8_t(*ids)[ID_PG_SIZE] = r->ids;
  *n = r->n;
  r->ids = NULL;
  ret_unlink_free(m, r);
  return ids;
}

uint8_t (*gcs_pg_return_take(gcs_pgs_t *m, const id_node_t *node, size_t *n))[ID_PG_SIZE]
{
  uint8_t(*ids)[ID_PG_SIZE] = ret_take(m, node, n);
  if (*n)
    ret_count(1, *n);
  if (!m->rets && m->ret_timer) /* nothing left to send: no wake-up for nothing */
    uv_timer_stop(m->ret_timer);
  return ids;
}

void gcs_pg_returns_flush(gcs_pgs_t *m)
{
  while (m->rets) {
    id_node_t node = m->rets->node; /* the take frees the entry */
    size_t n;
    uint8_t(*ids)[ID_PG_SIZE] = ret_take(m, &node, &n);
    ret_count(0, n);
    gcs_pg_return_send(m, &node, ids, n); /* takes ids */
  }
}

void gcs_pg_returns_drop_node(gcs_pgs_t *m, const id_node_t *node)
{
  size_t n;
  free(ret_take(m, node, &n)); /* its bundles died with it */
}

void gcs_pg_returns_start(gcs_pgs_t *m)
{
  m->ret_timer = xcalloc(1, sizeof(*m->ret_timer));
  uv_timer_init(m->s->loop, m->ret_timer);
  m->ret_timer->data = m;
  if (m->rets) /* queued at load: returns a killed GCS may not have sent */
    uv_timer_start(m->ret_timer, ret_on_timer, GCS_PG_RETURN_MS, 0);
}

static void ret_timer_closed(uv_handle_t *h)
{
  free(h);
}

void gcs_pg_returns_stop(gcs_pgs_t *m)
{
  if (m->ret_timer) {
    m->ret_timer->data = NULL;
    uv_close((uv_handle_t *)m->ret_timer, ret_timer_closed);
    m->ret_timer = NULL;
  }
}

void gcs_pg_returns_release(gcs_pgs_t *m)
{
  while (m->rets)
    ret_unlink_free(m, m->rets);
}
