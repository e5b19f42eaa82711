/*
 * Task submission through worker leases (Ray's direct task submission).
 *
 * Tasks are grouped by scheduling class (their resource shape). A class has a FIFO of ready
 * tasks, the leases it holds and the lease requests it has in flight. cw_pump() pushes queued
 * tasks to leased workers (up to CW_MAX_IN_FLIGHT each, so a worker always has the next task
 * waiting) and asks the raylet for more leases while tasks wait. A task whose worker dies is
 * retried while it has retries left. Idle leases are returned by the background thread after
 * CW_LEASE_IDLE_MS, so a driver submitting one task after another reuses its worker.
 *
 * Every function here runs with cw->mu held.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"
#include "worker/cw_events.h"

#include "common/lease_client.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

void cw_task_free(cw_t *cw, cw_task_t *t)
{
  if (hmap_get(&cw->tasks, t->id.b, ID_TASK_SIZE) == t)
    hmap_del(&cw->tasks, t->id.b, ID_TASK_SIZE);
  for (size_t i = 0; i < t->nargs; i++) {
    if (t->args[i].value) {
      cw_blob_unref(t->args[i].value);
      cw_nested_drop(cw, t->args[i].nested, t->args[i].nnested, CW_HOLD_SUBMITTED);
      continue;
    }
    cw_object_t *o = cw_obj_get(cw, &t->args[i].ref);
    if (o && --o->submitted_refs <= 0)
      cw_obj_maybe_free(cw, o);
  }
  free(t->args);
  free(t->fn);
  free(t->name);
  free(t->dep_err_msg);
  free(t);
}

void cw_task_fail(cw_t *cw, cw_task_t *t, int err, const char *msg)
{
  cw_event_record(cw, t->id.b, t->attempt, t->name,
                  t->on_ready ? RAYC__TASK_TYPE__ACTOR_TASK : RAYC__TASK_TYPE__NORMAL_TASK, NULL,
                  RAYC__TASK_STATUS__FAILED, msg ? msg : rayc_strerror(err), 0);
  for (int i = 0; i < t->num_returns; i++) {
    id_object_t id = id_object_for_task(t->id, (uint32_t)i + 1);
    cw_object_t *o = cw_obj_get(cw, &id);
    if (o && o->state == OBJ_PENDING)
      cw_obj_set_error(cw, o, err, msg);
  }
  cw_task_free(cw, t);
}

void cw_task_ready(cw_t *cw, cw_task_t *t)
{
  if (t->on_ready) {
    t->on_ready(cw, t);
    return;
  }
  if (t->dep_err) {
    cw_task_fail(cw, t, t->dep_err, t->dep_err_msg);
    return;
  }
  cw_class_t *c = t->cls;
  t->next = NULL;
  if (c->tail)
    c->tail->next = t;
  else
    c->head = t;
  c->tail = t;
  c->queued++;
  cw_pump(cw, c);
}

cw_task_t *cw_class_pop(cw_class_t *c)
{
  cw_task_t *t = c->head;
  if (!t)
    return NULL;
  c->head = t->next;
  if (!c->head)
    c->tail = NULL;
  c->queued--;
  t->next = NULL;
  return t;
}

void cw_class_push_front(cw_class_t *c, cw_task_t *t)
{
  t->next = c->head;
  c->head = t;
  if (!c->tail)
    c->tail = t;
  c->queued++;
}

/* ---- leases ---- */

static void cw_return_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("returning a lease failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

void cw_lease_remove(cw_t *cw, cw_lease_t *l, int worker_exiting)
{
  cw_class_t *c = l->cls;
  for (cw_lease_t **pp = &c->leases; *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  Rayc__ReturnWorkerRequest req = RAYC__RETURN_WORKER_REQUEST__INIT;
  req.lease_id = pb_bytes(l->id, sizeof(l->id));
  req.worker_exiting = worker_exiting;
  if (cw->client_closing) {
    /* no more calls: the raylet reclaims the lease when our connection closes */
  } else if (cw->stopping) {
    ProtobufCMessage *resp = NULL;
    rpc_call_sync(l->raylet, &rayc__node_manager_service__descriptor, "ReturnWorker", &req.base, 1000, &resp, NULL);
    pb_free(resp);
  } else {
    rpc_call(l->raylet, &rayc__node_manager_service__descriptor, "ReturnWorker", &req.base, 5000, cw_return_done, NULL);
  }
  free(l);
}

static void cw_fail_queue(cw_t *cw, cw_class_t *c, int err, const char *msg)
{
  cw_task_t *t;
  while ((t = cw_class_pop(c)))
    cw_task_fail(cw, t, err, msg);
}

/* One lease request in flight: its class, the raylet it was sent to, and its id (to cancel it). */
typedef struct cw_lease_req {
  struct cw_lease_req *next; /* in cls->reqs */
  cw_class_t *cls;
  rpc_channel_t *raylet;
  int hops;
  uint8_t id[16];
  int cancelled; /* CancelWorkerLease sent */
} cw_lease_req_t;

static void cw_cancel_lease_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("CancelWorkerLease failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

/* No task of the class waits any more (they were cancelled): its lease requests are withdrawn,
 * so they hold no place in a raylet's queue or among its infeasible demands. */
static void cw_class_cancel_requests(cw_t *cw, cw_class_t *c)
{
  if (c->queued || cw->stopping || cw->client_closing)
    return;
  for (cw_lease_req_t *lr = c->reqs; lr; lr = lr->next) {
    if (lr->cancelled)
      continue;
    Rayc__CancelWorkerLeaseRequest req = RAYC__CANCEL_WORKER_LEASE_REQUEST__INIT;
    req.lease_id = pb_bytes(lr->id, sizeof(lr->id));
    lr->cancelled = 1;
    rpc_call(lr->raylet, &rayc__node_manager_service__descriptor, "CancelWorkerLease", &req.base, 5000,
             cw_cancel_lease_done, NULL);
  }
}

static int cw_request_lease_at(cw_t *cw, cw_class_t *c, rpc_channel_t *raylet, int spilled, int hops);

static void cw_lease_granted(cw_t *cw, cw_lease_req_t *lr, const lease_reply_t *rep)
{
  cw_class_t *c = lr->cls;
  cw_lease_t *l = xcalloc(1, sizeof(*l));
  l->cls = c;
  l->raylet = lr->raylet;
  memcpy(l->id, rep->lease_id, 16);
  l->worker_id = rep->worker;
  if (rep->has_node)
    l->node_id = rep->node;
  snprintf(l->target, sizeof(l->target), "%s", rep->target);
  l->ch = rpc_channel_get(cw->client, l->target);
  l->idle_since_ms = now_ms();
  for (size_t i = 0; i < rep->n_gpu_ids && l->ngpus < ARRAY_LEN(l->gpu_ids); i++)
    l->gpu_ids[l->ngpus++] = rep->gpu_ids[i];
  l->next = c->leases;
  c->leases = l;
  /* A grant that arrives after the work is gone (a request sent while tasks were queued) goes
   * straight back, so it does not hold a worker that others are waiting for. */
  if (cw->stopping || (!c->head && c->leases->next))
    cw_lease_remove(cw, l, 0);
}

/* Follows a spillback: asks the raylet the reply names. Returns 1 when a request was sent. */
static int cw_lease_spill(cw_t *cw, cw_lease_req_t *lr, const lease_reply_t *to)
{
  if (cw->stopping || lr->hops >= 4)
    return 0;
  return cw_request_lease_at(cw, lr->cls, rpc_channel_get(cw->client, to->target), 1, lr->hops + 1) == 0;
}

/* A lease request that ended at raylets that cannot be reached (a node's raylet restarting, or
 * dead and not yet declared so, that the cluster view still offers): the class waits
 * CW_LEASE_RETRY_MS and asks again, for up to CW_LEASE_RETRY_FOR_MS, rather than failing its
 * tasks in the seconds it takes the cluster to notice. Returns 1 when it will ask again. */
static int cw_lease_backoff(cw_t *cw, cw_class_t *c, const lease_reply_t *rep)
{
  int unreachable = rep->outcome == LEASE_UNAVAILABLE || rep->outcome == LEASE_SPILLBACK;
  if (!unreachable || cw->stopping || c->leases || c->lease_requests > 0)
    return 0;
  int64_t now = now_ms();
  if (!c->unreachable_since_ms)
    c->unreachable_since_ms = now;
  if (now - c->unreachable_since_ms > CW_LEASE_RETRY_FOR_MS) {
    c->unreachable_since_ms = 0;
    return 0;
  }
  c->retry_after_ms = now + CW_LEASE_RETRY_MS;
  return 1;
}

static void cw_lease_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_lease_req_t *lr = arg;
  cw_class_t *c = lr->cls;
  cw_t *cw = c->cw;
  lease_reply_t rep;
  enum lease_outcome o = lease_reply_classify(status, detail, (Rayc__RequestWorkerLeaseReply *)resp, &rep);
  pthread_mutex_lock(&cw->mu);
  c->lease_requests--;
  for (cw_lease_req_t **pp = &c->reqs; *pp; pp = &(*pp)->next)
    if (*pp == lr) {
      *pp = lr->next;
      break;
    }
  if (o == LEASE_SPILLBACK && cw_lease_spill(cw, lr, &rep)) {
    /* a new request is on its way */
  } else if (o == LEASE_UNAVAILABLE && lr->raylet != cw->raylet && !cw->stopping && lr->hops < 8 &&
             cw_request_lease_at(cw, c, cw->raylet, 0, lr->hops + 1) == 0) {
    /* the node we were spilled to is gone: ask our own raylet again (its view will drop that node) */
    log_warn("lease request at another node failed (%s); asking the local raylet again", detail);
  } else if (o == LEASE_GRANTED) {
    c->unreachable_since_ms = 0;
    cw_lease_granted(cw, lr, &rep);
  } else if (cw_lease_backoff(cw, c, &rep)) {
    log_warn("no reachable raylet could lease a worker for %s (%s); asking again in %d ms", c->key,
             detail && *detail ? detail : "spilled back to unreachable nodes", CW_LEASE_RETRY_MS);
  } else if (o != LEASE_CANCELLED && !cw->stopping && !c->leases && (c->lease_requests == 0 || o == LEASE_INFEASIBLE)) {
    /* INFEASIBLE holds for the whole class: its other requests would only be sent again */
    char *msg = xasprintf("no worker could be leased for %s: %s (%s)", c->key,
                          rep.status ? rayc_strerror(rep.status) : lease_outcome_name(o), rep.reason);
    cw_fail_queue(cw, c, o == LEASE_INFEASIBLE ? RAYC_EINFEASIBLE : RAYC_EUNAVAILABLE, msg);
    free(msg);
  }
  free(lr);
  if (!cw->stopping)
    cw_pump(cw, c);
  pthread_mutex_unlock(&cw->mu);
  pb_free(resp); /* rep borrows from it */
}

static int cw_request_lease_at(cw_t *cw, cw_class_t *c, rpc_channel_t *raylet, int spilled, int hops)
{
  Rayc__RequestWorkerLeaseRequest req;
  Rayc__ResourceEntry ents[CW_RES_MAX], *ptrs[CW_RES_MAX];
  uint8_t lease_id[LEASE_ID_SIZE];
  lease_params_t p = {.job = cw->job,
                      .owner = cw->worker_id,
                      .resources = ptrs,
                      .n_resources = lease_res_entries(&c->res, ents, ptrs),
                      .code_path = cw->code_path,
                      .language = c->language,
                      .spilled = spilled};
  lease_request_init(&req, &p, lease_id);
  req.strategy = (Rayc__SchedulingStrategy)c->strategy;
  if (c->strategy == RAYC_STRATEGY_NODE_AFFINITY)
    req.affinity_node_id = pb_bytes(c->affinity, ID_NODE_SIZE);
  req.affinity_soft = c->affinity_soft;
  if (c->has_pg) {
    req.placement_group_id = pb_bytes(c->pg, ID_PG_SIZE);
    req.bundle_index = c->bundle_index;
  }
  cw_lease_req_t *lr = xmalloc(sizeof(*lr));
  *lr = (cw_lease_req_t){.next = c->reqs, .cls = c, .raylet = raylet, .hops = hops};
  memcpy(lr->id, lease_id, sizeof(lr->id));
  c->reqs = lr;
  c->lease_requests++;
  int rc = rpc_call(raylet, &rayc__node_manager_service__descriptor, "RequestWorkerLease", &req.base, -1, cw_lease_done,
                    lr);
  if (rc != 0) {
    c->lease_requests--;
    c->reqs = lr->next;
    free(lr);
  }
  return rc;
}

static void cw_request_lease(cw_t *cw, cw_class_t *c)
{
  cw_request_lease_at(cw, c, cw->raylet, 0, 0);
}

/* SPREAD places every task on its own: its leases carry one task each and are not reused. */
void cw_pump(cw_t *cw, cw_class_t *c)
{
  if (c->has_pg && c->head && cw_pg_is_removed(cw, c->pg)) {
    char hex[2 * ID_PG_SIZE + 1], *msg = xasprintf("placement group %s was removed", id_hex(c->pg, ID_PG_SIZE, hex));
    cw_fail_queue(cw, c, RAYC_EINFEASIBLE, msg);
    free(msg);
    return;
  }
  int spread = c->strategy == RAYC_STRATEGY_SPREAD;
  /* A busy worker gets more tasks (pipelining) only while more tasks wait than lease requests are
   * on their way: a task that a worker on its way could run in parallel waits for that worker. */
  for (cw_lease_t *l = c->leases; l && c->head; l = l->next)
    while (cw_lease_takes(c, l, spread))
      cw_push_queued(cw, c, l, spread); /* cw_push.c: one task, or a batch of what is queued */
  size_t want = c->queued < CW_MAX_LEASE_REQUESTS ? c->queued : CW_MAX_LEASE_REQUESTS;
  if (c->retry_after_ms && now_ms() < c->retry_after_ms)
    return; /* backing off (cw_lease_backoff); the background thread pumps again */
  c->retry_after_ms = 0;
  if (c->queued > 0 && (size_t)c->lease_requests < want)
    cw_request_lease(cw, c);
}

void cw_leases_return_idle(cw_t *cw, int all)
{
  int64_t now = now_ms();
  for (cw_class_t *c = cw->classes; c; c = c->next) {
    for (cw_lease_t **pp = &c->leases; *pp;) {
      cw_lease_t *l = *pp;
      int idle = l->in_flight == 0 && !c->head && now - l->idle_since_ms >= cw->lease_idle_ms;
      if (l->in_flight == 0 && (all || idle || l->dead))
        cw_lease_remove(cw, l, l->dead);
      else
        pp = &l->next;
    }
  }
}

void cw_classes_free(cw_t *cw)
{
  cw->last_class.cls = NULL;
  cw_actors_release(cw);
  while (cw->classes) {
    cw_class_t *c = cw->classes;
    cw->classes = c->next;
    cw_task_t *t;
    while ((t = cw_class_pop(c)))
      cw_task_free(cw, t);
    while (c->leases) {
      cw_lease_t *l = c->leases;
      c->leases = l->next;
      free(l);
    }
    free(c);
  }
}

/* ---- rayc_remote ---- */

void rayc_task_opts_init(rayc_task_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->num_returns = 1;
  o->num_cpus = 1;
  o->max_retries = 3;
  o->bundle_index = -1;
}

static void cw_class_add_res(cw_class_t *c, const char *name, double amount, size_t *off)
{
  char group[CW_RES_NAME_MAX];
  if (amount <= 0 || c->res.n >= CW_RES_MAX)
    return;
  if (c->has_pg) { /* the bundle's resources, not the node's (Ray's naming) */
    cw_pg_res_name(c->pg, c->bundle_index, name, group);
    name = group;
  }
  (void)res_put_name(&c->res, name, amount);
  *off += (size_t)snprintf(c->key + *off, sizeof(c->key) - *off, "%s%s=%g", *off ? "," : "", name, amount);
}

/* The scheduling class: resource shape and placement; its key names it in logs and errors. */
static void cw_class_key(const rayc_task_opts *o, cw_class_t *c)
{
  static const char *const strategies[] = {"", " SPREAD", " NODE_AFFINITY"};
  size_t off = 0;
  res_clear(&c->res);
  c->has_pg = o->placement_group != NULL;
  if (c->has_pg) {
    memcpy(c->pg, o->placement_group->id, ID_PG_SIZE);
    c->bundle_index = o->bundle_index < 0 ? -1 : o->bundle_index;
  }
  cw_class_add_res(c, "CPU", o->num_cpus, &off);
  cw_class_add_res(c, "GPU", o->num_gpus, &off);
  cw_class_add_res(c, "memory", o->memory, &off);
  for (size_t i = 0; i < o->nresources; i++)
    cw_class_add_res(c, o->resources[i].name, o->resources[i].amount, &off);
  if (c->has_pg) /* a marker, so that a task asking for nothing still runs where the bundle is */
    cw_class_add_res(c, "bundle", 0.001, &off);
  if (off == 0)
    off = (size_t)snprintf(c->key, sizeof(c->key), "no resources");
  c->strategy = o->strategy;
  if (o->strategy == RAYC_STRATEGY_NODE_AFFINITY) {
    id_from_hex(o->node_affinity, c->affinity, ID_NODE_SIZE);
    c->affinity_soft = o->node_affinity_soft;
    off += (size_t)snprintf(c->key + off, sizeof(c->key) - off, " NODE_AFFINITY %s%s", o->node_affinity,
                            o->node_affinity_soft ? " (soft)" : "");
  } else if (o->strategy > 0 && o->strategy < 3) {
    off += (size_t)snprintf(c->key + off, sizeof(c->key) - off, "%s", strategies[o->strategy]);
  }
  c->language = o->language;
  if (o->language == RAYC_LANG_PYTHON && off < sizeof(c->key))
    snprintf(c->key + off, sizeof(c->key) - off, " python");
}

/* A task of the plain shape the last one had finds its class by five numbers instead of building
 * the class key (most programs submit tasks of one or two shapes). */
static int cw_class_is_last(const cw_t *cw, const rayc_task_opts *o)
{
  const struct cw_last_class *l = &cw->last_class;
  return l->cls && o->nresources == 0 && !o->placement_group && o->strategy != RAYC_STRATEGY_NODE_AFFINITY &&
         o->num_cpus == l->cpus && o->num_gpus == l->gpus && o->memory == l->memory &&
         (int)o->strategy == l->strategy && (int)o->language == l->language;
}

static void cw_class_remember(cw_t *cw, const rayc_task_opts *o, cw_class_t *c)
{
  if (o->nresources || o->placement_group || o->strategy == RAYC_STRATEGY_NODE_AFFINITY)
    return;
  cw->last_class = (struct cw_last_class){.cls = c,
                                          .cpus = o->num_cpus,
                                          .gpus = o->num_gpus,
                                          .memory = o->memory,
                                          .strategy = (int)o->strategy,
                                          .language = (int)o->language};
}

static cw_class_t *cw_class_get(cw_t *cw, const rayc_task_opts *o)
{
  if (cw_class_is_last(cw, o))
    return cw->last_class.cls;
  cw_class_t probe;
  memset(&probe, 0, sizeof(probe));
  cw_class_key(o, &probe);
  for (cw_class_t *c = cw->classes; c; c = c->next)
    if (strcmp(c->key, probe.key) == 0) {
      cw_class_remember(cw, o, c);
      return c;
    }
  cw_class_t *c = xmalloc(sizeof(*c));
  *c = probe;
  c->cw = cw;
  c->next = cw->classes;
  cw->classes = c;
  cw_class_remember(cw, o, c);
  return c;
}

static int cw_check_opts(const rayc_task_opts *o, size_t nargs, const rayc_arg *args)
{
  if (o->num_returns < 1 || o->num_returns > 1000000 || (o->streaming && o->num_returns != 1))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "num_returns must be 1 or more (1 when streaming), got %d",
                        o->num_returns);
  if (o->num_cpus < 0 || o->num_gpus < 0 || o->memory < 0 || o->max_retries < 0)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "resources and max_retries must not be negative");
  if (o->nresources > 5 || (o->nresources && !o->resources))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "at most 5 custom resources, and resources must not be NULL");
  for (size_t i = 0; i < o->nresources; i++)
    if (!o->resources[i].name || !*o->resources[i].name || strlen(o->resources[i].name) >= 32 ||
        o->resources[i].amount < 0)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "custom resource %zu needs a name of 1..31 bytes and an amount >= 0",
                          i);
  uint8_t node[ID_NODE_SIZE];
  if (o->language != RAYC_LANG_C && o->language != RAYC_LANG_PYTHON)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "unknown language %d", (int)o->language);
  if ((int)o->strategy < 0 || (int)o->strategy > RAYC_STRATEGY_NODE_AFFINITY) /* any int fits the enum */
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "unknown scheduling strategy %d", (int)o->strategy);
  if (o->strategy == RAYC_STRATEGY_NODE_AFFINITY &&
      (!o->node_affinity || id_from_hex(o->node_affinity, node, ID_NODE_SIZE)))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "NODE_AFFINITY needs node_affinity, a node id of 56 hex digits");
  if (o->placement_group && (o->bundle_index < -1 || o->strategy != RAYC_STRATEGY_DEFAULT))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "with a placement group, bundle_index must be -1 or more and the "
                                                "strategy DEFAULT");
  for (size_t i = 0; i < nargs; i++) {
    if (!args[i].ref && !args[i].data && args[i].len)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "argument %zu has a length but no data", i);
    if ((args[i].nrefs && !args[i].refs) || (args[i].ref && args[i].nrefs))
      return cw_set_error(RAYC_EINVALID_ARGUMENT,
                          "argument %zu: refs must be given with nrefs, and only with a "
                          "value (a ref argument's object carries its own refs)",
                          i);
  }
  return 0;
}

/* Adds argument i: a copy of a value, or a reference that holds the object until the task ends. */
int cw_add_arg(cw_t *cw, cw_task_t *t, size_t i, const rayc_arg *a)
{
  if (!a->ref) {
    char what[48];
    snprintf(what, sizeof(what), "argument %zu", i);
    int rc = cw_nested_from_refs(cw, a->refs, a->nrefs, CW_HOLD_SUBMITTED, &t->args[i].nested, what);
    if (rc != 0)
      return rc;
    t->args[i].nnested = a->nrefs;
    t->args[i].value = cw_blob_new(a->data, a->len);
    return 0;
  }
  cw_object_t *o = cw_obj_get(cw, (const id_object_t *)a->ref->id);
  if (!o)
    return cw_set_error(RAYC_ENOT_FOUND, "argument %zu refers to an object this process does not hold", i);
  memcpy(t->args[i].ref.b, a->ref->id, ID_OBJECT_SIZE);
  o->submitted_refs++;
  if (o->state == OBJ_PENDING) {
    if (o->nwaiters == o->capwaiters) {
      o->capwaiters = o->capwaiters ? 2 * o->capwaiters : 4;
      o->waiters = xrealloc(o->waiters, o->capwaiters * sizeof(*o->waiters));
    }
    o->waiters[o->nwaiters++] = t;
    t->deps_pending++;
  } else if (o->state == OBJ_ERROR && !t->dep_err) {
    t->dep_err = o->err;
    t->dep_err_msg = xstrdup(o->err_msg);
  }
  return 0;
}

static cw_task_t *cw_task_new(cw_t *cw, const char *fn, size_t nargs, const rayc_task_opts *o)
{
  cw_task_t *t = xcalloc(1, sizeof(*t));
  t->id = id_task_random(cw->job);
  t->fn = xstrdup(fn);
  t->name = xstrdup(o->name ? o->name : fn);
  t->nargs = nargs;
  t->args = xcalloc(nargs ? nargs : 1, sizeof(*t->args));
  t->num_returns = o->num_returns;
  t->streaming = o->streaming != 0;
  t->attempts_left = o->max_retries;
  t->oom_attempts_left = o->max_retries != 0 ? cw->oom_retries : 0;
  t->retry_exceptions = o->retry_exceptions;
  t->cls = cw_class_get(cw, o);
  t->parent = cw->current_task;
  hmap_put(&cw->tasks, t->id.b, ID_TASK_SIZE, t);
  return t;
}

int rayc_remote(const char *fn, const rayc_arg *args, size_t nargs, const rayc_task_opts *opts, rayc_ref *out)
{
  cw_t *cw = cw_api();
  rayc_task_opts defaults;
  rayc_task_opts_init(&defaults);
  const rayc_task_opts *o = opts ? opts : &defaults;
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!fn || !*fn || !out || (nargs && !args))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_remote: fn, out and args must not be NULL");
  int rc = cw_check_opts(o, nargs, args);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&cw->mu);
  cw_task_t *t = cw_task_new(cw, fn, nargs, o);
  for (size_t i = 0; i < nargs && rc == 0; i++)
    rc = cw_add_arg(cw, t, i, &args[i]);
  if (rc != 0) {
    for (size_t i = 0; i < nargs; i++) /* undo the waiter entries of this task */
      if (!t->args[i].value) {
        cw_object_t *o2 = cw_obj_get(cw, &t->args[i].ref);
        for (size_t k = 0; o2 && k < o2->nwaiters; k++)
          if (o2->waiters[k] == t)
            o2->waiters[k] = o2->waiters[--o2->nwaiters];
      }
    cw_task_free(cw, t);
    pthread_mutex_unlock(&cw->mu);
    return rc;
  }
  for (int i = 0; i < t->num_returns; i++) {
    id_object_t id = id_object_for_task(t->id, (uint32_t)i + 1);
    cw_obj_new(cw, &id)->local_refs = 1;
    memcpy(out[i].id, id.b, ID_OBJECT_SIZE);
  }
  cw_event_record(cw, t->id.b, t->attempt, t->name, RAYC__TASK_TYPE__NORMAL_TASK, NULL,
                  RAYC__TASK_STATUS__PENDING_ARGS_AVAIL, NULL, 0);
  if (t->deps_pending == 0)
    cw_task_ready(cw, t);
  pthread_mutex_unlock(&cw->mu);
  return 0;
}

/* ---- cancellation ---- */

/* CancelTask calls sent and not yet answered: a worker force-cancelled with its children waits for
 * them before it exits (cw_cancel_drain), so the cancels reach the children's workers. */
static int cancels_in_flight;

void cw_cancel_drain(int timeout_ms)
{
  for (int waited = 0; waited < timeout_ms && __atomic_load_n(&cancels_in_flight, __ATOMIC_ACQUIRE) > 0; waited += 5)
    usleep(5000);
}

static void cw_cancel_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  __atomic_sub_fetch(&cancels_in_flight, 1, __ATOMIC_RELEASE);
  if (status != 0 && status != RAYC_ECANCELLED)
    log_debug("CancelTask failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

static void cw_unwait(cw_t *cw, cw_task_t *t)
{
  for (size_t i = 0; i < t->nargs; i++) {
    if (t->args[i].value)
      continue;
    cw_object_t *o = cw_obj_get(cw, &t->args[i].ref);
    for (size_t k = 0; o && k < o->nwaiters;)
      if (o->waiters[k] == t)
        o->waiters[k] = o->waiters[--o->nwaiters];
      else
        k++;
  }
}

static int cw_unqueue(cw_class_t *c, cw_task_t *t)
{
  cw_task_t *prev = NULL;
  for (cw_task_t *p = c->head; p; prev = p, p = p->next) {
    if (p != t)
      continue;
    if (prev)
      prev->next = t->next;
    else
      c->head = t->next;
    if (c->tail == t)
      c->tail = prev;
    c->queued--;
    return 1;
  }
  return 0;
}

/* Cancels t (cw->mu held): a waiting or queued task fails now; a pushed one is cancelled by its
 * worker, which answers its PushTask with CANCELLED (or dies, with force). */
static void cw_cancel_task(cw_t *cw, cw_task_t *t, int force, int recursive)
{
  t->cancelled = 1;
  if (t->lease) {
    Rayc__CancelTaskRequest req = RAYC__CANCEL_TASK_REQUEST__INIT;
    req.task_id = pb_bytes(t->id.b, ID_TASK_SIZE);
    req.force = force;
    req.recursive = recursive;
    __atomic_add_fetch(&cancels_in_flight, 1, __ATOMIC_RELEASE);
    rpc_call(t->lease->ch, &rayc__core_worker_service__descriptor, "CancelTask", &req.base, 5000, cw_cancel_done, NULL);
    return;
  }
  cw_class_t *c = t->cls;
  if (t->deps_pending > 0)
    cw_unwait(cw, t);
  else if (cw_unqueue(c, t))
    cw_class_cancel_requests(cw, c);
  cw_task_fail(cw, t, RAYC_ECANCELLED, "the task was cancelled before it ran");
}

void cw_cancel_children(cw_t *cw, const id_task_t *parent, int force)
{
  for (int again = 1; again;) {
    again = 0;
    for (hmap_iter_t it = hmap_iter(&cw->tasks); hmap_next(&it);) {
      cw_task_t *t = it.value;
      if (memcmp(t->parent.b, parent->b, ID_TASK_SIZE) != 0 || t->cancelled)
        continue;
      cw_cancel_task(cw, t, force, 1);
      again = 1; /* the map may have changed: start over */
      break;
    }
  }
}

int rayc_cancel(const rayc_ref *ref, int force, int recursive)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!ref)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_cancel: ref must not be NULL");
  pthread_mutex_lock(&cw->mu);
  int rc = 0;
  id_task_t tid = id_object_task((const id_object_t *)ref->id);
  cw_task_t *t = hmap_get(&cw->tasks, tid.b, ID_TASK_SIZE);
  if (!cw_obj_get(cw, (const id_object_t *)ref->id))
    rc = cw_set_error(RAYC_ENOT_FOUND, "rayc_cancel: this process does not own that object");
  else if (cw_obj_get(cw, (const id_object_t *)ref->id)->owner)
    rc = cw_set_error(RAYC_ENOT_FOUND, "rayc_cancel: that object is owned by another process (only its owner can "
                                       "cancel the task that makes it)");
  else if (t && !t->cancelled)
    cw_cancel_task(cw, t, force, recursive);
  else if (!t)
    cw_actors_cancel(cw, &tid); /* an actor call (cw_actor_submit.c) */
  pthread_mutex_unlock(&cw->mu);
  return rc;
}
