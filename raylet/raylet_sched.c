/*
 * Scheduling: where a lease request should run, from this node's resources and the cluster
 * resource view the GCS sends back on heartbeats.
 *
 *   DEFAULT (hybrid)  local while this node is below 50% utilization for the requested
 *                     resources and has them free; otherwise the least-utilized node that has
 *                     them free (spillback); otherwise queue locally if this node could ever run
 *                     it; otherwise spill to any node that could.
 *   SPREAD            round-robin over the nodes that have the resources free (or, if none has,
 *                     that could ever run it).
 *   NODE_AFFINITY     that node; if it can never run it: an error (hard) or DEFAULT (soft). A node
 *                     not in the view (it may have just joined) is waited for, up to
 *                     --node-affinity-wait-ms, then the task fails (hard) as the node is not alive.
 *
 * Queued DEFAULT requests (not placement-group ones) that this node cannot run now move later:
 * every cron tick raylet_lease_spill_queued hands each one this node's free resources will not
 * cover to the least-utilized node the view shows with them free (Ray's hybrid policy spills
 * queued work once the local node is busy, not only at arrival).
 *
 * A request that arrived by spillback is queued here and never spilled again, unless this node
 * could never run it. Each spillback lowers the target's view entry, so a burst of requests
 * between two views spreads instead of piling onto one node. Requests no node could ever run
 * wait in the infeasible list (a warning, shown in `rayc status`) and fail after
 * --infeasible-timeout-ms, since a node with the resources may yet join.
 *
 * A draining node (DrainRaylet) runs nothing new: every request goes to the least-utilized other
 * node with the resources free, else to one that could ever run it, else fails at once (the GCS
 * leaves draining nodes out of the view, so other raylets do not send requests here).
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

enum { SCHED_SPREAD_THRESHOLD_PCT = 50 };

/* The highest utilization, among the resources req asks for, of a node with total and free. */
static double sched_util(const raylet_res_t *total, const raylet_res_t *free_, const raylet_res_t *req)
{
  double u = 0;
  for (int i = 0; i < req->n; i++) {
    if (req->amount[i] <= 0)
      continue;
    double t = raylet_res_get(total, req->name[i]);
    double f = raylet_res_get(free_, req->name[i]);
    double x = t > 0 ? (t - f) / t : 1;
    if (x > u)
      u = x;
  }
  return u;
}

/* This node's resources minus what its queued requests will take. */
static raylet_res_t sched_local_free(const raylet_t *r)
{
  raylet_res_t f = r->available;
  for (const raylet_request_t *q = r->queue; q; q = q->next)
    raylet_res_sub(&f, &q->res);
  return f;
}

static int sched_is_local(const raylet_t *r, const raylet_view_node_t *n)
{
  return memcmp(n->id.b, r->node_id.b, ID_NODE_SIZE) == 0;
}

/* The remote node with the lowest utilization that fits req (free now, or ever with !now). */
static raylet_view_node_t *sched_best_remote(raylet_t *r, const raylet_res_t *req, int now, double *util)
{
  raylet_view_node_t *best = NULL;
  double bu = 2;
  for (int i = 0; i < r->nview; i++) {
    raylet_view_node_t *n = r->view[i];
    if (sched_is_local(r, n) || !raylet_res_fits(&n->total, req) || (now && !raylet_res_fits(&n->avail, req)))
      continue;
    double u = sched_util(&n->total, &n->avail, req);
    if (u < bu)
      best = n, bu = u;
  }
  *util = bu;
  return best;
}

static enum raylet_sched sched_spill(raylet_view_node_t *n, const raylet_res_t *req, const raylet_view_node_t **target)
{
  raylet_res_sub(&n->avail, req);
  n->lowered = 1;
  *target = n;
  return SCHED_SPILL;
}

static enum raylet_sched sched_default(raylet_t *r, const raylet_res_t *req, int spilled,
                                       const raylet_view_node_t **target)
{
  int local_ok = raylet_res_fits(&r->total, req);
  raylet_res_t free_ = sched_local_free(r);
  if (local_ok && spilled)
    return SCHED_LOCAL;
  double lu = sched_util(&r->total, &free_, req), ru;
  if (local_ok && raylet_res_fits(&free_, req) && lu * 100 < SCHED_SPREAD_THRESHOLD_PCT)
    return SCHED_LOCAL;
  raylet_view_node_t *best = sched_best_remote(r, req, 1, &ru);
  if (best && (!local_ok || !raylet_res_fits(&free_, req) || ru < lu))
    return sched_spill(best, req, target);
  if (local_ok)
    return SCHED_LOCAL;
  best = sched_best_remote(r, req, 0, &ru);
  return best ? sched_spill(best, req, target) : SCHED_INFEASIBLE;
}

static enum raylet_sched sched_spread(raylet_t *r, const raylet_res_t *req, const raylet_view_node_t **target)
{
  raylet_res_t free_ = sched_local_free(r);
  /* The scan starts where the last pick left off and moves the cursor only past the slot it
   * picks: moving it on every step skipped a slot per step (two nodes got 12/0, three 2/4/6). */
  unsigned n = (unsigned)r->nview + 1, start = r->spread_next % n;
  for (int pass = 0; pass < 2; pass++) {
    for (unsigned k = 0; k < n; k++) {
      unsigned i = (start + k) % n;
      if (i == (unsigned)r->nview) { /* this node */
        if (raylet_res_fits(&r->total, req) && (pass || raylet_res_fits(&free_, req))) {
          r->spread_next = i + 1;
          return SCHED_LOCAL;
        }
        continue;
      }
      raylet_view_node_t *v = r->view[i];
      if (!sched_is_local(r, v) && raylet_res_fits(&v->total, req) && (pass || raylet_res_fits(&v->avail, req))) {
        r->spread_next = i + 1;
        return sched_spill(v, req, target);
      }
    }
  }
  return SCHED_INFEASIBLE;
}

static enum raylet_sched sched_affinity(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req,
                                        const raylet_res_t *res, const raylet_view_node_t **target, const char **why)
{
  if (req->affinity_node_id.len == ID_NODE_SIZE &&
      memcmp(req->affinity_node_id.data, r->node_id.b, ID_NODE_SIZE) == 0) {
    if (raylet_res_fits(&r->total, res))
      return SCHED_LOCAL;
  } else {
    int known = 0;
    for (int i = 0; i < r->nview; i++)
      if (req->affinity_node_id.len == ID_NODE_SIZE &&
          memcmp(r->view[i]->id.b, req->affinity_node_id.data, ID_NODE_SIZE) == 0) {
        known = 1;
        if (raylet_res_fits(&r->view[i]->total, res))
          return sched_spill(r->view[i], res, target);
      }
    /* A node that joined after the last view: wait for it to show up (the caller bounds the
     * wait) rather than fail a task the user aimed at a node `rayc list nodes` shows ALIVE. */
    if (!known && !req->affinity_soft && req->affinity_node_id.len == ID_NODE_SIZE)
      return SCHED_WAIT_NODE;
  }
  if (req->affinity_soft)
    return sched_default(r, res, req->spilled, target);
  *why = "node affinity: the node is not alive, or can never have the resources the task asks for";
  return SCHED_ERROR;
}

static enum raylet_sched sched_draining(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req,
                                        const raylet_res_t *res, const raylet_view_node_t **target, const char **why)
{
  double u;
  if (req->strategy == RAYC__SCHEDULING_STRATEGY__NODE_AFFINITY) {
    for (int i = 0; i < r->nview; i++)
      if (req->affinity_node_id.len == ID_NODE_SIZE && !sched_is_local(r, r->view[i]) &&
          memcmp(r->view[i]->id.b, req->affinity_node_id.data, ID_NODE_SIZE) == 0 &&
          raylet_res_fits(&r->view[i]->total, res))
        return sched_spill(r->view[i], res, target);
    if (!req->affinity_soft) {
      *why = "node affinity: the node is draining, not alive, or can never have the resources the task asks for";
      return SCHED_ERROR;
    }
  }
  raylet_view_node_t *best = sched_best_remote(r, res, 1, &u);
  if (!best)
    best = sched_best_remote(r, res, 0, &u);
  if (best)
    return sched_spill(best, res, target);
  *why = "this node is draining and no other node can run the task";
  return SCHED_ERROR;
}

enum raylet_sched raylet_sched_pick(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req, const raylet_res_t *res,
                                    const raylet_view_node_t **target, const char **why)
{
  *target = NULL;
  if (r->draining)
    return sched_draining(r, req, res, target, why);
  switch (req->strategy) {
    case RAYC__SCHEDULING_STRATEGY__NODE_AFFINITY:
      return sched_affinity(r, req, res, target, why);
    case RAYC__SCHEDULING_STRATEGY__SPREAD:
      if (!req->spilled)
        return sched_spread(r, res, target);
      return raylet_res_fits(&r->total, res) ? SCHED_LOCAL : sched_default(r, res, 0, target);
    default:
      return sched_default(r, res, req->spilled, target);
  }
}

raylet_view_node_t *raylet_sched_requeue(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req,
                                         const raylet_res_t *res)
{
  if (req->spilled || r->draining || req->strategy != RAYC__SCHEDULING_STRATEGY__DEFAULT ||
      req->placement_group_id.len != 0)
    return NULL;
  double u;
  raylet_view_node_t *best = sched_best_remote(r, res, 1, &u);
  if (best) {
    raylet_res_sub(&best->avail, res);
    best->lowered = 1;
  }
  return best;
}

void raylet_sched_free(raylet_t *r)
{
  raylet_view_free(r);
  r->nview = 0;
  while (r->infeasible) {
    raylet_infeasible_t *x = r->infeasible;
    r->infeasible = x->next;
    rpc_reply_error(x->call, RAYC_EUNAVAILABLE, "the raylet is shutting down");
    free(x);
  }
}
