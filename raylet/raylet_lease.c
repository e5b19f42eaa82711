/*
 * Worker leases (Ray's direct task submission). An owner asks for a lease for a resource shape;
 * the request waits in one FIFO queue until the node has the resources and an idle worker of the
 * job; the reply carries the worker's address and the owner pushes tasks straight to it. The owner
 * returns the lease when it has no more work of that shape, or the lease dies with its worker or
 * its owner.
 *
 * Dispatch scans the queue in order and grants every request it can; a request that cannot run
 * yet does not block requests of other shapes behind it. Where a request goes (here, spilled
 * back, parked as infeasible) is raylet_sched.c's choice; queued requests this node cannot run now
 * are spilled later to nodes with free resources (raylet_lease_spill_queued, each cron tick).
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static id_job_t q_job(const Rayc__RequestWorkerLeaseRequest *req);

/* Gives the lease whole GPU ids for its GPU amount (a fraction still takes one id). */
static void lease_take_gpus(raylet_t *r, raylet_lease_t *l)
{
  double want = res_get_name(&l->res, "GPU");
  int total = (int)res_get_name(&r->total, "GPU");
  for (int i = 0; i < total && i < RAYLET_MAX_GPUS && l->ngpus < want; i++)
    if (!r->gpu_used[i]) {
      r->gpu_used[i] = 1;
      l->gpu_ids[l->ngpus++] = i;
    }
}

static void lease_grant(raylet_t *r, raylet_request_t *q, raylet_worker_t *w)
{
  const Rayc__RequestWorkerLeaseRequest *req = q->req;
  raylet_lease_t *l = xcalloc(1, sizeof(*l));
  l->id_len = req->lease_id.len;
  memcpy(l->id, req->lease_id.data, l->id_len);
  l->res = q->res;
  l->worker = w;
  memcpy(l->owner.b, req->owner_worker_id.data, req->owner_worker_id.len);
  l->next = r->leases;
  r->leases = l;
  res_sub(&r->available, &l->res);
  lease_take_gpus(r, l);
  w->lease = l;
  raylet_worker_set_state(w, WORKER_LEASED);

  Rayc__RequestWorkerLeaseReply rep = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  Rayc__Address addr = RAYC__ADDRESS__INIT;
  addr.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  addr.ip = r->cfg.node_ip;
  addr.port = w->port;
  addr.worker_id = pb_bytes(w->id.b, ID_WORKER_SIZE);
  rep.worker = &addr;
  rep.lease_id = req->lease_id;
  rep.gpu_ids = l->gpu_ids;
  rep.n_gpu_ids = (size_t)l->ngpus;
  rpc_reply(q->call, &rep.base);
  free(q);
}

static void lease_free(raylet_t *r, raylet_lease_t *l)
{
  for (raylet_lease_t **pp = &r->leases; *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  raylet_lease_unblock(r, l);
  int ran_out = 0; /* of one of the lease's resources: others may wait in the GCS for it */
  for (uint32_t i = 0; i < l->res.n; i++)
    ran_out |= res_get(&r->available, l->res.id[i]) < l->res.amt[i];
  res_add(&r->available, &l->res);
  if (ran_out)
    raylet_gcs_report_soon(r);
  if (r->bundle_wanted) { /* a placement group waits for resources: tell the GCS at once */
    r->bundle_wanted = 0;
    r->last_heartbeat_ms = 0;
  }
  for (int i = 0; i < l->ngpus; i++)
    r->gpu_used[l->gpu_ids[i]] = 0;
  if (l->worker)
    l->worker->lease = NULL;
  free(l);
}

void raylet_lease_kill(raylet_t *r, raylet_lease_t *l)
{
  raylet_worker_t *w = l->worker;
  lease_free(r, l);
  if (w && w->state == WORKER_LEASED) {
    raylet_worker_set_state(w, WORKER_EXITING);
    raylet_pool_kill(w, SIGKILL);
  }
}

static int request_validate(const Rayc__RequestWorkerLeaseRequest *req, res_set_t *res, const char **why)
{
  if (req->job_id.len != ID_JOB_SIZE || req->lease_id.len == 0 || req->lease_id.len > 32 ||
      req->owner_worker_id.len != ID_WORKER_SIZE ||
      (req->placement_group_id.len != 0 && req->placement_group_id.len != ID_PG_SIZE)) {
    *why = "job_id must be 4 bytes, lease_id 1..32 bytes, owner_worker_id 28 bytes, placement_group_id 0 or 18";
    return RAYC_EINVALID_ARGUMENT;
  }
  if (req->n_resources > RES_MAX) {
    *why = "too many resources";
    return RAYC_EINVALID_ARGUMENT;
  }
  res_from_pb(res, req->resources, req->n_resources);
  for (uint32_t i = 0; i < res->n; i++)
    if (res->amt[i] < 0) {
      *why = "resource amounts must not be negative";
      return RAYC_EINVALID_ARGUMENT;
    }
  return 0;
}

static void lease_reply_spill(raylet_t *r, rpc_call_t *call, const raylet_view_node_t *n)
{
  Rayc__RequestWorkerLeaseReply rep = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  Rayc__Address addr = RAYC__ADDRESS__INIT;
  addr.node_id = pb_bytes(n->id.b, ID_NODE_SIZE);
  addr.ip = (char *)n->ip;
  addr.port = n->port;
  rep.retry_at_raylet = &addr;
  char id[9];
  log_debug("lease request spilled back to node %s (%s:%d)", id_short(n->id.b, ID_NODE_SIZE, id), n->ip, n->port);
  (void)r;
  rpc_reply(call, &rep.base);
}

static void lease_enqueue(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req,
                          const res_set_t *res)
{
  raylet_request_t *q = xcalloc(1, sizeof(*q));
  q->call = call;
  q->req = req;
  q->res = *res;
  memcpy(q->job.b, req->job_id.data, ID_JOB_SIZE);
  q->queued_ms = now_ms();
  raylet_request_t **pp = &r->queue;
  while (*pp)
    pp = &(*pp)->next;
  *pp = q;
  raylet_dispatch(r);
  raylet_lease_want(r);
}

/* Routes a validated request: queue it here, spill it back, park it as infeasible, or fail it.
 * Returns 1 when it should be parked as infeasible, 2 when it should wait for its affinity node. */
static int lease_act(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req, const res_set_t *res,
                     enum raylet_sched d, const raylet_view_node_t *target, const char *why)
{
  switch (d) {
    case SCHED_LOCAL:
      lease_enqueue(r, call, req, res);
      return 0;
    case SCHED_SPILL:
      lease_reply_spill(r, call, target);
      return 0;
    case SCHED_ERROR: {
      char buf[512];
      res_format(res, buf, sizeof(buf));
      rpc_reply_error(call, RAYC_EINFEASIBLE, "%s (asked for %s)", why, buf);
      return 0;
    }
    case SCHED_WAIT_NODE:
      r->last_heartbeat_ms = 0; /* heartbeat at once: its reply brings a fresh view */
      return 2;
    default:
      return 1;
  }
}

static int lease_route(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req, const res_set_t *res)
{
  const raylet_view_node_t *target = NULL;
  const char *why = NULL;
  enum raylet_sched d = raylet_sched_pick(r, req, res, &target, &why);
  return lease_act(r, call, req, res, d, target, why);
}

static void lease_park(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req, int wait_node)
{
  raylet_infeasible_t *x = xcalloc(1, sizeof(*x));
  x->call = call;
  x->req = req;
  x->since_ms = now_ms();
  x->wait_node = wait_node;
  x->next = r->infeasible;
  r->infeasible = x;
}

static void lease_park_infeasible(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req,
                                  const res_set_t *res, int how)
{
  if (how == 2) {
    char hex[2 * ID_NODE_SIZE + 1];
    log_info("a node-affinity lease request waits for node %s to appear in the cluster view",
             id_hex(req->affinity_node_id.data, ID_NODE_SIZE, hex));
    lease_park(r, call, req, 1);
    return;
  }
  char buf[512];
  res_format(res, buf, sizeof(buf));
  size_t i = 0;
  while (i < r->nwarned && strcmp(r->warned[i], buf) != 0)
    i++;
  if (i == r->nwarned && r->nwarned < 1024) { /* once per shape */
    log_warn("no node of the cluster can run a task asking for %s; it waits for such a node for %d ms", buf,
             r->cfg.infeasible_timeout_ms);
    r->warned = xrealloc(r->warned, (r->nwarned + 1) * sizeof(*r->warned));
    r->warned[r->nwarned++] = xstrdup(buf);
  } else {
    log_debug("another infeasible lease request asking for %s", buf);
  }
  lease_park(r, call, req, 0);
}

/* Answers a parked request that waited too long. */
static void lease_park_expire(raylet_t *r, raylet_infeasible_t *x, const res_set_t *res)
{
  char buf[512];
  res_format(res, buf, sizeof(buf));
  if (x->wait_node) {
    char hex[2 * ID_NODE_SIZE + 1];
    rpc_reply_error(x->call, RAYC_EINFEASIBLE,
                    "node affinity: node %s is not alive (not in the cluster view "
                    "after %d ms; asked for %s)",
                    id_hex(x->req->affinity_node_id.data, ID_NODE_SIZE, hex), r->cfg.node_affinity_wait_ms, buf);
    return;
  }
  rpc_reply_error(x->call, RAYC_EINFEASIBLE,
                  "no node of the cluster has the resources this task asks for (%s); "
                  "gave up after %d ms",
                  buf, r->cfg.infeasible_timeout_ms);
}

void raylet_sched_retry_infeasible(raylet_t *r)
{
  int64_t now = now_ms();
  for (raylet_infeasible_t **pp = &r->infeasible; *pp;) {
    raylet_infeasible_t *x = *pp;
    res_set_t res;
    res_from_pb(&res, x->req->resources, x->req->n_resources);
    const raylet_view_node_t *t;
    const char *why;
    enum raylet_sched d = raylet_sched_pick(r, x->req, &res, &t, &why);
    int waiting = d == SCHED_INFEASIBLE || d == SCHED_WAIT_NODE;
    int expired = now - x->since_ms >
                  (d == SCHED_WAIT_NODE ? r->cfg.node_affinity_wait_ms : r->cfg.infeasible_timeout_ms);
    if (waiting && !expired) {
      pp = &x->next;
      continue;
    }
    *pp = x->next;
    x->wait_node = d == SCHED_WAIT_NODE;
    if (waiting)
      lease_park_expire(r, x, &res);
    else
      lease_act(r, x->call, x->req, &res, d, t, why);
    free(x);
  }
}

void raylet_lease_request(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req)
{
  raylet_cron_busy(r);
  res_set_t res;
  const char *why = NULL;
  int rc = request_validate(req, &res, &why);
  if (r->stopping)
    rpc_reply_error(call, RAYC_EUNAVAILABLE, "the raylet is shutting down");
  else if (rc == 0 && raylet_jobs_is_dead(r, q_job(req)))
    rpc_reply_error(call, RAYC_ECANCELLED, "the job has finished");
  else if (rc != 0)
    rpc_reply_error(call, rc, "%s", why);
  else if (req->placement_group_id.len == ID_PG_SIZE && raylet_bundle_pg_removed(r, req->placement_group_id.data)) {
    char hex[2 * ID_PG_SIZE + 1];
    rpc_reply_error(call, RAYC_EINFEASIBLE, "placement group %s was removed",
                    id_hex(req->placement_group_id.data, ID_PG_SIZE, hex));
  } else if ((rc = lease_route(r, call, req, &res)) != 0)
    lease_park_infeasible(r, call, req, &res, rc);
}

static id_job_t q_job(const Rayc__RequestWorkerLeaseRequest *req)
{
  id_job_t j = {{0}};
  memcpy(j.b, req->job_id.data, ID_JOB_SIZE);
  return j;
}

static int request_same_key(const raylet_request_t *a, const raylet_request_t *b)
{
  return memcmp(a->job.b, b->job.b, ID_JOB_SIZE) == 0 && strcmp(a->req->code_path, b->req->code_path) == 0 &&
         a->req->language == b->req->language;
}

/* Requests of q's key queued besides q. */
static int queued_same_key(const raylet_t *r, const raylet_request_t *q)
{
  int n = 0;
  for (const raylet_request_t *p = r->queue; p; p = p->next)
    n += p != q && request_same_key(p, q);
  return n;
}

/* Tries to grant q; returns 1 if granted (q is freed). Otherwise starts a worker for it when
 * fewer workers of its key are starting than requests of its key wait ahead of and with it. */
static int dispatch_one(raylet_t *r, raylet_request_t *q, res_set_t *avail, int *starting_total)
{
  if (!res_fits(avail, &q->res))
    return 0;
  raylet_worker_t *w = raylet_pool_find_idle(r, q->job, q->req->code_path, q->req->language);
  if (w) {
    res_sub(avail, &q->res);
    if (q->job.b[0] & 0x80) /* an actor takes it: keep the job's next actors' workers ready */
      *starting_total += raylet_pool_spare_actors(r, q->job, q->req->code_path, q->req->language, w,
                                                  queued_same_key(r, q), *starting_total);
    lease_grant(r, q, w);
    return 1;
  }
  /* Set its resources aside while its worker starts, so later requests do not start workers
   * that could not run anyway. */
  res_sub(avail, &q->res);
  int waiting = 0;
  for (const raylet_request_t *p = r->queue; p != q; p = p->next)
    waiting += request_same_key(p, q);
  if (*starting_total < r->cfg.max_starting_workers &&
      raylet_pool_count_starting(r, q->job, q->req->code_path, q->req->language, NULL) <= waiting &&
      raylet_pool_spawn(r, q->job, q->req->code_path, q->req->language) == 0)
    (*starting_total)++;
  return 0;
}

void raylet_dispatch(raylet_t *r)
{
  int starting_total = 0;
  id_job_t none = {{0}};
  res_set_t avail = r->available;
  raylet_pool_count_starting(r, none, NULL, 0, &starting_total);
  for (raylet_request_t **pp = &r->queue; *pp;) {
    raylet_request_t *q = *pp;
    raylet_request_t *next = q->next;
    if (dispatch_one(r, q, &avail, &starting_total))
      *pp = next;
    else
      pp = &q->next;
  }
}

/* 1 when some queued request of another owner than l's cannot run for want of resources. */
static int lease_others_wait(const raylet_t *r, const raylet_lease_t *l)
{
  for (const raylet_request_t *q = r->queue; q; q = q->next)
    if (memcmp(q->req->owner_worker_id.data, l->owner.b, ID_WORKER_SIZE) != 0 && !res_fits(&r->available, &q->res))
      return 1;
  return 0;
}

void raylet_lease_want(raylet_t *r)
{
  if (!r->queue)
    return;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_LEASE_WANTED;
  m.lease_wanted = 1;
  for (raylet_lease_t *l = r->leases; l; l = l->next) {
    if (l->wanted_sent || !l->worker || !l->worker->conn || !lease_others_wait(r, l))
      continue;
    l->wanted_sent = 1;
    local_conn_send_msg(l->worker->conn, &m.base, -1);
  }
}

int raylet_lease_return(raylet_t *r, const uint8_t *id, size_t len, int worker_exiting)
{
  raylet_lease_t *l = r->leases;
  while (l && !(l->id_len == len && memcmp(l->id, id, len) == 0))
    l = l->next;
  if (!l)
    return RAYC_ENOT_FOUND;
  raylet_worker_t *w = l->worker;
  lease_free(r, l);
  if (w && w->state == WORKER_LEASED) {
    /* A worker its owner saw fail is never handed out again, even before its exit is noticed. */
    raylet_worker_set_state(w, worker_exiting ? WORKER_EXITING : WORKER_IDLE);
    w->idle_since_ms = now_ms();
    if (worker_exiting)
      raylet_pool_kill(w, SIGTERM);
  }
  raylet_dispatch(r);
  return 0;
}

void raylet_lease_drop_worker(raylet_t *r, raylet_worker_t *w)
{
  if (w->lease)
    lease_free(r, w->lease);
}

void raylet_lease_drop_owner(raylet_t *r, const id_worker_t *owner)
{
  /* The owner is gone: its leased workers may be running its tasks, so they are killed (their
   * exit frees the leases) rather than handed to someone else mid-task. */
  for (raylet_lease_t *l = r->leases; l; l = l->next)
    if (memcmp(l->owner.b, owner->b, ID_WORKER_SIZE) == 0 && l->worker)
      raylet_pool_kill(l->worker, SIGKILL);
  for (raylet_request_t **pp = &r->queue; *pp;) {
    raylet_request_t *q = *pp;
    if (q->req->owner_worker_id.len == ID_WORKER_SIZE &&
        memcmp(q->req->owner_worker_id.data, owner->b, ID_WORKER_SIZE) == 0) {
      *pp = q->next;
      rpc_reply_error(q->call, RAYC_ECANCELLED, "the owner disconnected");
      free(q);
    } else {
      pp = &q->next;
    }
  }
  for (raylet_infeasible_t **pp = &r->infeasible; *pp;) {
    raylet_infeasible_t *x = *pp;
    if (memcmp(x->req->owner_worker_id.data, owner->b, ID_WORKER_SIZE) == 0) {
      *pp = x->next;
      rpc_reply_error(x->call, RAYC_ECANCELLED, "the owner disconnected");
      free(x);
    } else {
      pp = &x->next;
    }
  }
}

void raylet_lease_drop_job(raylet_t *r, id_job_t job, int err, const char *why)
{
  for (raylet_request_t **pp = &r->queue; *pp;) {
    raylet_request_t *q = *pp;
    if (memcmp(q->job.b, job.b, ID_JOB_SIZE) == 0) {
      *pp = q->next;
      rpc_reply_error(q->call, err, "%s", why);
      free(q);
    } else {
      pp = &q->next;
    }
  }
  for (raylet_infeasible_t **pp = &r->infeasible; *pp;) {
    raylet_infeasible_t *x = *pp;
    if (memcmp(x->req->job_id.data, job.b, ID_JOB_SIZE) == 0) {
      *pp = x->next;
      rpc_reply_error(x->call, err, "%s", why);
      free(x);
    } else {
      pp = &x->next;
    }
  }
}

static int same_lease_id(const Rayc__RequestWorkerLeaseRequest *req, const uint8_t *id, size_t len)
{
  return req->lease_id.len == len && len && memcmp(req->lease_id.data, id, len) == 0;
}

int raylet_lease_cancel(raylet_t *r, const uint8_t *id, size_t len)
{
  for (raylet_request_t **pp = &r->queue; *pp; pp = &(*pp)->next)
    if (same_lease_id((*pp)->req, id, len)) {
      raylet_request_t *q = *pp;
      *pp = q->next;
      rpc_reply_error(q->call, RAYC_ECANCELLED, "the owner cancelled the lease request");
      free(q);
      raylet_dispatch(r);
      return 1;
    }
  for (raylet_infeasible_t **pp = &r->infeasible; *pp; pp = &(*pp)->next)
    if (same_lease_id((*pp)->req, id, len)) {
      raylet_infeasible_t *x = *pp;
      *pp = x->next;
      rpc_reply_error(x->call, RAYC_ECANCELLED, "the owner cancelled the lease request");
      free(x);
      return 1;
    }
  return 0;
}

void raylet_lease_reroute_queue(raylet_t *r)
{
  raylet_request_t *q = r->queue;
  r->queue = NULL;
  while (q) {
    raylet_request_t *next = q->next;
    int how = lease_route(r, q->call, q->req, &q->res);
    if (how)
      lease_park_infeasible(r, q->call, q->req, &q->res, how);
    free(q);
    q = next;
  }
}

void raylet_lease_spill_queued(raylet_t *r)
{
  if (r->nview == 0 || r->draining)
    return;
  res_set_t avail = r->available; /* what dispatch gives out, in queue order */
  for (raylet_request_t **pp = &r->queue; *pp;) {
    raylet_request_t *q = *pp;
    if (res_fits(&avail, &q->res)) {
      res_sub(&avail, &q->res); /* runs here soon (its worker may be starting) */
      pp = &q->next;
      continue;
    }
    const raylet_view_node_t *t = raylet_sched_requeue(r, q->req, &q->res);
    if (!t) {
      pp = &q->next;
      continue;
    }
    *pp = q->next;
    lease_reply_spill(r, q->call, t);
    free(q);
  }
}

Rayc__ResourceDemand **raylet_lease_demands(const raylet_t *r, size_t *n)
{
  size_t cap = 0, k = 0;
  for (const raylet_infeasible_t *x = r->infeasible; x; x = x->next)
    cap += !x->wait_node;
  *n = 0;
  if (!cap)
    return NULL;
  Rayc__ResourceDemand **v = xcalloc(cap, sizeof(*v));
  res_set_t *shapes = xcalloc(cap, sizeof(*shapes));
  for (const raylet_infeasible_t *x = r->infeasible; x; x = x->next) {
    if (x->wait_node)
      continue; /* waits for a node, not for resources: no demand for the autoscaler */
    res_set_t res;
    res_from_pb(&res, x->req->resources, x->req->n_resources);
    size_t j = 0;
    while (j < k && !res_equal(&shapes[j], &res))
      j++;
    if (j == k) {
      shapes[k] = res;
      v[k] = xmalloc(sizeof(**v));
      rayc__resource_demand__init(v[k]);
      v[k]->shape = res_to_pb(&res, &v[k]->n_shape);
      k++;
    }
    v[j]->count++;
  }
  free(shapes);
  *n = k;
  return v;
}

void raylet_demands_free(Rayc__ResourceDemand **v, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    res_pb_free(v[i]->shape, v[i]->n_shape);
    free(v[i]);
  }
  free(v);
}

void raylet_queue_fail_all(raylet_t *r, int err, const char *why)
{
  raylet_sched_free(r);
  while (r->queue) {
    raylet_request_t *q = r->queue;
    r->queue = q->next;
    rpc_reply_error(q->call, err, "%s", why);
    free(q);
  }
}
