/*
 * Hosting an actor in a worker (Ray's actor task receiver), the actor class registry, and the
 * ActorWorkerService the GCS calls on actor hosts and actor owners.
 *
 * A worker hosts at most one actor for its whole life. The GCS leases the worker and pushes the
 * ACTOR_CREATION_TASK; the first actor thread runs the constructor (through cw_exec_run, so
 * arguments, results and errors work as for tasks) and, if it succeeds, the actor is ALIVE and
 * max_concurrency - 1 more threads start. Calls (ACTOR_TASK) arrive on the rpc server's thread and
 * are queued for the actor threads:
 *
 *   - max_concurrency == 1: each caller numbers its calls to this incarnation 0, 1, 2...
 *     (sequence_number); a call runs only after every lower number of the same caller, so calls
 *     from one caller run in the order it made them even when gRPC delivers them out of order
 *     (early arrivals wait in a per-caller list sorted by number). A number already passed is a
 *     retry and runs at once.
 *   - max_concurrency > 1: calls run on the thread pool as they arrive, in no guaranteed order.
 *
 * The end of an actor: a method calls rayc_actor_exit() -> once it has replied, queued calls fail
 * with ACTOR_DIED, the GCS's held WaitActorExit is answered "exited" (so it marks the actor DEAD
 * without restarting it), and the worker sends itself SIGTERM; the GCS's KillActorWorker does the
 * same without the "exited" answer. The worker's orderly exit then comes through cw_actor_stop()
 * (from cw_worker_run, on the main thread), which joins the actor threads and runs the destructor;
 * threads stuck in a method past a grace period make the process _exit instead.
 *
 * Owners: the GCS holds a WaitOwnerExit call on the process that created an owned actor (and
 * owners of objects hold one on each process borrowing them, cw_borrow.c); it is answered when that
 * process exits in order (a driver's rayc_shutdown, a worker's exit), and fails when it dies.
 * Workers and drivers serve it on their CoreWorkerService port.
 *
 * State: one process-wide actor runtime (cw_proc.actor, worker/cw_proc.h) under its own mutex, never cw->mu, so the rpc server
 * thread never waits on the core worker.
 */
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  ACTOR_MAX_CONCURRENCY = 1000,
  ACTOR_EXIT_GRACE_MS = 3000,
  ACTOR_TELL_GCS_MS = 2000,
  OWNER_HOLD_MS = 20000, /* a WaitOwnerExit is answered TIMEOUT after this (its callers wait 30 s or more) */
};

/* ---- the class registry (filled by RAYC_ACTOR / RAYC_METHOD when libraries load) ---- */

static cw_actor_class_t *reg_class_locked(const char *cls, int create)
{
  if (!cw_proc.classes.buckets)
    hmap_init(&cw_proc.classes);
  cw_actor_class_t *c = hmap_get(&cw_proc.classes, cls, strlen(cls));
  if (!c && create) {
    c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(cls);
    hmap_init(&c->methods);
    hmap_put(&cw_proc.classes, cls, strlen(cls), c);
  }
  return c;
}

void rayc_register_actor(const char *cls, rayc_actor_ctor_fn ctor, rayc_actor_dtor_fn dtor)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 1);
  c->ctor = ctor;
  c->dtor = dtor;
  pthread_mutex_unlock(&cw_proc.classes_mu);
}

void rayc_register_method(const char *cls, const char *method, rayc_method_fn fn)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 1);
  hmap_put(&c->methods, method, strlen(method), (void *)(uintptr_t)fn);
  pthread_mutex_unlock(&cw_proc.classes_mu);
}

static cw_actor_class_t *reg_class(const char *cls)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 0);
  pthread_mutex_unlock(&cw_proc.classes_mu);
  return c && c->ctor ? c : NULL;
}

static rayc_method_fn reg_method(cw_actor_class_t *c, const char *method)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  void *p = hmap_get(&c->methods, method, strlen(method));
  pthread_mutex_unlock(&cw_proc.classes_mu);
  return (rayc_method_fn)(uintptr_t)p;
}

/* ---- the runtime of the hosted actor ---- */

/* Per thread, not per process (so outside cw_proc): whether this thread runs actor methods, and
 * whether its method called rayc_actor_exit(). */
static __thread int tl_in_actor, tl_exit_requested;

static void list_add(cw_call_list_t *l, rpc_call_t *call)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    l->at = xrealloc(l->at, l->cap * sizeof(*l->at));
  }
  l->at[l->n] = now_ms();
  l->v[l->n++] = call;
}

static char *rt_hex(char *out)
{
  return id_short(cw_proc.actor.id, ID_ACTOR_SIZE, out);
}

static void rt_ready_append(cw_hosted_item_t *it)
{
  it->next = NULL;
  if (cw_proc.actor.tail)
    cw_proc.actor.tail->next = it;
  else
    cw_proc.actor.head = it;
  cw_proc.actor.tail = it;
}

/* Moves every queued call (ready and early) to *out. cw_proc.actor.mu held. */
static void rt_take_queued(cw_hosted_item_t **out)
{
  cw_hosted_item_t *all = cw_proc.actor.head;
  cw_proc.actor.head = cw_proc.actor.tail = NULL;
  if (cw_proc.actor.callers.buckets)
    for (hmap_iter_t it = hmap_iter(&cw_proc.actor.callers); hmap_next(&it);) {
      cw_hosted_caller_t *c = it.value;
      while (c->early) {
        cw_hosted_item_t *e = c->early;
        c->early = e->next;
        e->next = all;
        all = e;
      }
    }
  *out = all;
}

static void fail_items(cw_hosted_item_t *it, int err, const char *why)
{
  char hex[9];
  while (it) {
    cw_hosted_item_t *next = it->next;
    rpc_reply_error(it->call, err, "actor %s %s", rt_hex(hex), why);
    free(it);
    it = next;
  }
}

static void reply_exit_waiters(cw_call_list_t *l, int exited, const char *reason)
{
  Rayc__WaitActorExitReply rep = RAYC__WAIT_ACTOR_EXIT_REPLY__INIT;
  rep.exited = exited;
  rep.reason = (char *)reason;
  for (size_t i = 0; i < l->n; i++)
    rpc_reply(l->v[i], &rep.base);
  free(l->v);
  free(l->at);
}

/* ---- running the constructor and methods ---- */

static int actor_ctor_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)arg, (void)nrets;
  void *self = NULL;
  int rc = 0;
  if (cw_proc.actor.use_ex) {
    if (!(self = cw_proc.actor.ex.actor_create(cw_proc.actor.ex.data, ctx, cw_proc.actor.class_name, args, nargs)))
      rc = RAYC_ETASK_FAILED;
  } else if (!cw_proc.actor.cls) {
    rc = rayc_task_fail(ctx, "actor class '%s' is not registered by any library on the code path '%s'",
                        cw_proc.actor.class_name, cw_proc.actor.cw->code_path ? cw_proc.actor.cw->code_path : "");
  } else if (!(self = cw_proc.actor.cls->ctor(ctx, args, nargs))) {
    rc = RAYC_ETASK_FAILED;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  if (cw_proc.actor.state == RT_CREATING) {
    cw_proc.actor.self = self;
    cw_proc.actor.state = self ? RT_ALIVE : RT_FAILED;
  }
  pthread_cond_broadcast(&cw_proc.actor.cv);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  return rc;
}

static int actor_method_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  const Rayc__TaskSpec *spec = arg;
  if (cw_proc.actor.use_ex)
    return cw_proc.actor.ex.actor_method(cw_proc.actor.ex.data, ctx, cw_proc.actor.self, spec->function_name, args,
                                         nargs, nrets);
  rayc_method_fn fn = reg_method(cw_proc.actor.cls, spec->function_name);
  if (!fn)
    return rayc_task_fail(ctx, "actor class %s has no method '%s'", cw_proc.actor.class_name, spec->function_name);
  return fn(ctx, cw_proc.actor.self, args, nargs, nrets);
}

static void *actor_thread(void *arg);

static void actor_start_threads(void)
{
  for (int i = 1; i < cw_proc.actor.max_concurrency; i++)
    if (pthread_create(&cw_proc.actor.threads[i], NULL, actor_thread, NULL) == 0)
      cw_proc.actor.nthreads = i + 1;
}

/* The actor ends: queued calls fail, the GCS's held calls are answered. cw_proc.actor.mu held. */
static cw_hosted_item_t *rt_begin_exit(int intentional, const char *reason)
{
  cw_hosted_item_t *queued = NULL;
  if (cw_proc.actor.state == RT_EXITING)
    return NULL;
  cw_proc.actor.state = RT_EXITING;
  cw_proc.actor.exited = intentional;
  snprintf(cw_proc.actor.exit_reason, sizeof(cw_proc.actor.exit_reason), "%s", reason);
  rt_take_queued(&queued);
  if (intentional && cw_proc.actor.exit_waiters.n) {
    reply_exit_waiters(&cw_proc.actor.exit_waiters, 1, reason);
    cw_proc.actor.exit_waiters = (cw_call_list_t){0};
    cw_proc.actor.gcs_told = 1;
  }
  pthread_cond_broadcast(&cw_proc.actor.cv);
  return queued;
}

/* After a method called rayc_actor_exit: waits (bounded) until the GCS has been told, then has
 * the worker exit in order. */
static void actor_exit_now(void)
{
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_item_t *queued = rt_begin_exit(1, "the actor called rayc_actor_exit");
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_TELL_GCS_MS / 1000;
  while (!cw_proc.actor.gcs_told && !cw_proc.actor.stopping)
    if (pthread_cond_timedwait(&cw_proc.actor.cv, &cw_proc.actor.mu, &dl) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "exited (rayc_actor_exit) before running this call");
  log_info("actor %s exits (rayc_actor_exit)", rt_hex(hex));
  kill(getpid(), SIGTERM);
}

static void actor_run_creation(cw_hosted_item_t *it)
{
  char hex[9];
  cw_exec_run(cw_proc.actor.cw, it->call, it->req, actor_ctor_body, NULL);
  free(it);
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_item_t *queued = NULL;
  if (cw_proc.actor.state == RT_ALIVE) {
    actor_start_threads();
    log_info("actor %s (%s) is alive, %d thread(s)", rt_hex(hex), cw_proc.actor.class_name,
             cw_proc.actor.max_concurrency);
  } else if (cw_proc.actor.state == RT_FAILED) {
    rt_take_queued(&queued);
    log_warn("actor %s (%s): the constructor failed", rt_hex(hex), cw_proc.actor.class_name);
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "could not be created (its constructor failed)");
}

static void *actor_thread(void *arg)
{
  tl_in_actor = 1;
  if (arg)
    actor_run_creation(arg);
  for (;;) {
    pthread_mutex_lock(&cw_proc.actor.mu);
    while (!(cw_proc.actor.state == RT_ALIVE && cw_proc.actor.head) &&
           (cw_proc.actor.state == RT_ALIVE || cw_proc.actor.state == RT_CREATING) && !cw_proc.actor.stopping)
      pthread_cond_wait(&cw_proc.actor.cv, &cw_proc.actor.mu);
    if (cw_proc.actor.state != RT_ALIVE || cw_proc.actor.stopping) {
      pthread_mutex_unlock(&cw_proc.actor.mu);
      return NULL;
    }
    cw_hosted_item_t *it = cw_proc.actor.head;
    cw_proc.actor.head = it->next;
    if (!cw_proc.actor.head)
      cw_proc.actor.tail = NULL;
    pthread_mutex_unlock(&cw_proc.actor.mu);
    cw_exec_run(cw_proc.actor.cw, it->call, it->req, actor_method_body, (void *)it->req->task);
    free(it);
    if (tl_exit_requested) {
      actor_exit_now();
      return NULL;
    }
  }
}

/* ---- pushed tasks ---- */

static int push_creation(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  if (cw_proc.actor.state != RT_NONE || cw_proc.actor.stopping) {
    pthread_mutex_unlock(&cw_proc.actor.mu);
    rpc_reply_error(call, RAYC_EALREADY_EXISTS, "this worker already hosted actor %s", rt_hex(hex));
    return 1;
  }
  cw_proc.actor.state = RT_CREATING;
  cw_proc.actor.cw = cw;
  memcpy(cw_proc.actor.id, spec->actor_id.data, ID_ACTOR_SIZE);
  snprintf(cw_proc.actor.class_name, sizeof(cw_proc.actor.class_name), "%s", spec->function_name);
  cw_proc.actor.cls = reg_class(spec->function_name);
  cw_proc.actor.use_ex = !cw_proc.actor.cls && cw_lang_executor(&cw_proc.actor.ex) && cw_proc.actor.ex.actor_create &&
                         cw_proc.actor.ex.actor_method;
  cw_proc.actor.max_concurrency = spec->max_concurrency < 1 ? 1 : spec->max_concurrency;
  if (cw_proc.actor.max_concurrency > ACTOR_MAX_CONCURRENCY)
    cw_proc.actor.max_concurrency = ACTOR_MAX_CONCURRENCY;
  cw_proc.actor.threads = xcalloc((size_t)cw_proc.actor.max_concurrency, sizeof(*cw_proc.actor.threads));
  hmap_init(&cw_proc.actor.callers);
  cw_hosted_item_t *it = xcalloc(1, sizeof(*it));
  it->call = call;
  it->req = req;
  if (pthread_create(&cw_proc.actor.threads[0], NULL, actor_thread, it) == 0) {
    cw_proc.actor.nthreads = 1;
    it = NULL;
  } else {
    cw_proc.actor.state = RT_FAILED;
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
  log_info("creating actor %s of class %s (max_concurrency %d)", rt_hex(hex), cw_proc.actor.class_name,
           cw_proc.actor.max_concurrency);
  if (it) {
    rpc_reply_error(call, RAYC_EINTERNAL, "cannot start the actor's thread");
    free(it);
  }
  return 1;
}

/* Queues a call in its caller's order. cw_proc.actor.mu held. */
static void rt_queue_call(cw_hosted_item_t *it, const Rayc__TaskSpec *spec)
{
  if (cw_proc.actor.max_concurrency > 1) {
    rt_ready_append(it);
    return;
  }
  const ProtobufCBinaryData *w = &spec->caller->worker_id;
  cw_hosted_caller_t *c = hmap_get(&cw_proc.actor.callers, w->data, w->len);
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    hmap_put(&cw_proc.actor.callers, w->data, w->len, c);
  }
  if (it->seq < c->next_seq) { /* a retry of a call that already ran (or was lost): run it now */
    rt_ready_append(it);
    return;
  }
  if (it->seq > c->next_seq) {
    cw_hosted_item_t **pp = &c->early;
    while (*pp && (*pp)->seq < it->seq)
      pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    return;
  }
  rt_ready_append(it);
  c->next_seq++;
  while (c->early && c->early->seq <= c->next_seq) {
    cw_hosted_item_t *e = c->early;
    c->early = e->next;
    if (e->seq == c->next_seq)
      c->next_seq++;
    rt_ready_append(e);
  }
}

static int push_call(rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  char hex[9];
  if (!spec->caller || spec->caller->worker_id.len != ID_WORKER_SIZE) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "actor call without a caller worker id");
    return 1;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  int ok = (cw_proc.actor.state == RT_CREATING || cw_proc.actor.state == RT_ALIVE) && !cw_proc.actor.stopping &&
           memcmp(cw_proc.actor.id, spec->actor_id.data, ID_ACTOR_SIZE) == 0;
  if (ok) {
    cw_hosted_item_t *it = xcalloc(1, sizeof(*it));
    it->call = call;
    it->req = req;
    it->seq = spec->sequence_number;
    rt_queue_call(it, spec);
    pthread_cond_signal(&cw_proc.actor.cv);
  }
  enum cw_hosted_state st = cw_proc.actor.state;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (!ok)
    rpc_reply_error(call, RAYC_EACTOR_DIED, "this worker does not host that actor (it hosts %s, %s)", rt_hex(hex),
                    st == RT_EXITING  ? "which is exiting"
                    : st == RT_FAILED ? "whose constructor failed"
                                      : "or none");
  return 1;
}

int cw_actor_push(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  if (spec->actor_id.len != ID_ACTOR_SIZE || !spec->function_name || !*spec->function_name ||
      spec->task_id.len != ID_TASK_SIZE || spec->num_returns < 1) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT,
                    "malformed actor task: actor_id must be %d bytes, with a "
                    "function name and at least one return",
                    ID_ACTOR_SIZE);
    return 1;
  }
  if (spec->type == RAYC__TASK_TYPE__ACTOR_CREATION_TASK)
    return push_creation(cw, call, req);
  return push_call(call, req);
}

/* ---- public calls made inside actors ---- */

void rayc_actor_exit(rayc_task_ctx *ctx)
{
  (void)ctx;
  if (tl_in_actor)
    tl_exit_requested = 1;
}

int rayc_actor_self(rayc_task_ctx *ctx, rayc_actor *out)
{
  (void)ctx;
  if (!tl_in_actor || !out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_self: not called from inside an actor");
  memcpy(out->id, cw_proc.actor.id, ID_ACTOR_SIZE);
  return 0;
}

/* ---- ActorWorkerService ---- */

void cw_actor_on_wait_exit(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__WaitActorExitRequest *req = (const Rayc__WaitActorExitRequest *)m;
  pthread_mutex_lock(&cw_proc.actor.mu);
  if (cw_proc.actor.state == RT_NONE || req->actor_id.len != ID_ACTOR_SIZE ||
      memcmp(req->actor_id.data, cw_proc.actor.id, ID_ACTOR_SIZE)) {
    pthread_mutex_unlock(&cw_proc.actor.mu);
    rpc_reply_error(call, RAYC_ENOT_FOUND, "this worker does not host that actor");
    return;
  }
  if (cw_proc.actor.state == RT_EXITING || cw_proc.actor.state == RT_FAILED || cw_proc.actor.stopping) {
    Rayc__WaitActorExitReply rep = RAYC__WAIT_ACTOR_EXIT_REPLY__INIT;
    rep.exited = cw_proc.actor.exited;
    rep.reason = cw_proc.actor.exit_reason;
    cw_proc.actor.gcs_told |= cw_proc.actor.exited;
    pthread_cond_broadcast(&cw_proc.actor.cv);
    rpc_reply(call, &rep.base); /* packs before returning: cw_proc.actor.mu keeps exit_reason stable */
  } else {
    list_add(&cw_proc.actor.exit_waiters, call);
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

void cw_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__KillActorWorkerRequest *req = (const Rayc__KillActorWorkerRequest *)m;
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  int mine = cw_proc.actor.state != RT_NONE && req->actor_id.len == ID_ACTOR_SIZE &&
             memcmp(req->actor_id.data, cw_proc.actor.id, ID_ACTOR_SIZE) == 0;
  cw_hosted_item_t *queued = mine ? rt_begin_exit(0, req->reason && *req->reason ? req->reason : "killed") : NULL;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (!mine) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "this worker does not host that actor");
    return;
  }
  rpc_reply(call, NULL);
  fail_items(queued, RAYC_EACTOR_DIED, "was killed before running this call");
  log_info("actor %s: killed by the GCS (%s); exiting", rt_hex(hex), req->reason ? req->reason : "");
  kill(getpid(), SIGTERM);
}

void cw_actor_on_wait_owner(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__WaitOwnerExitRequest *req = (const Rayc__WaitOwnerExitRequest *)m;
  char me[9], them[9];
  if (req->owner_worker_id.len && (req->owner_worker_id.len != ID_WORKER_SIZE ||
                                   memcmp(req->owner_worker_id.data, cw->worker_id.b, ID_WORKER_SIZE) != 0)) {
    rpc_reply_error(
        call, RAYC_ENOT_FOUND, "this process is worker %s, not worker %s (which is gone)",
        id_short(cw->worker_id.b, ID_WORKER_SIZE, me),
        req->owner_worker_id.len == ID_WORKER_SIZE ? id_short(req->owner_worker_id.data, ID_WORKER_SIZE, them) : "?");
    return;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  int now = cw_proc.actor.stopping;
  if (!now)
    list_add(&cw_proc.actor.owner_waiters, call);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (now)
    rpc_reply(call, NULL);
}

static void reply_owner_waiters(cw_call_list_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    rpc_reply(l->v[i], NULL);
  free(l->v);
  free(l->at);
  *l = (cw_call_list_t){0};
}

void cw_actor_owner_tick(void)
{
  int64_t old = now_ms() - OWNER_HOLD_MS;
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_call_list_t *l = &cw_proc.actor.owner_waiters;
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (l->at[i] > old) {
      l->v[k] = l->v[i];
      l->at[k++] = l->at[i];
    } else { /* still here: the caller asks again (it takes TIMEOUT as "alive") */
      rpc_reply_error(l->v[i], RAYC_ETIMEOUT, "still running");
    }
  }
  l->n = k;
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

/* ---- the worker exits ---- */

static int join_until(pthread_t t, const struct timespec *dl)
{
  return pthread_timedjoin_np(t, NULL, dl);
}

void cw_actor_stop(cw_t *cw)
{
  (void)cw;
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_proc.actor.stopping = 1;
  cw_hosted_item_t *queued = NULL;
  if (cw_proc.actor.state == RT_CREATING || cw_proc.actor.state == RT_ALIVE)
    queued = rt_begin_exit(0, "its worker is exiting");
  cw_call_list_t waiters = cw_proc.actor.exit_waiters, owners = cw_proc.actor.owner_waiters;
  cw_proc.actor.exit_waiters = cw_proc.actor.owner_waiters = (cw_call_list_t){0};
  if (cw_proc.actor.exited && waiters.n)
    cw_proc.actor.gcs_told = 1;
  pthread_cond_broadcast(&cw_proc.actor.cv);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "stopped: its worker is exiting");
  reply_exit_waiters(&waiters, cw_proc.actor.exited, cw_proc.actor.exit_reason);
  reply_owner_waiters(&owners);
  if (cw_proc.actor.nthreads == 0)
    return;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_EXIT_GRACE_MS / 1000;
  for (int i = 0; i < cw_proc.actor.nthreads; i++)
    if (join_until(cw_proc.actor.threads[i], &dl) != 0) {
      log_warn("actor %s: a call is still running %d ms after the worker was told to exit; exiting now", rt_hex(hex),
               ACTOR_EXIT_GRACE_MS);
      _exit(0);
    }
  if (cw_proc.actor.self && cw_proc.actor.use_ex && cw_proc.actor.ex.actor_destroy)
    cw_proc.actor.ex.actor_destroy(cw_proc.actor.ex.data, cw_proc.actor.self);
  else if (cw_proc.actor.self && cw_proc.actor.cls && cw_proc.actor.cls->dtor)
    cw_proc.actor.cls->dtor(cw_proc.actor.self);
  cw_proc.actor.self = NULL;
  for (hmap_iter_t it = hmap_iter(&cw_proc.actor.callers); hmap_next(&it);)
    free(it.value);
  hmap_release(&cw_proc.actor.callers);
  free(cw_proc.actor.threads);
  cw_proc.actor.threads = NULL;
  cw_proc.actor.nthreads = 0;
}

/* ---- a driver as an owner ---- */

void cw_actor_owner_reset(void)
{
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_proc.actor.stopping = 0; /* a driver may rayc_init again after rayc_shutdown */
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

int cw_actor_owner_address(cw_t *cw, Rayc__Address *a)
{
  cw_fill_address(cw, a); /* drivers serve WaitOwnerExit on their CoreWorkerService port */
  return 0;
}

void cw_actor_owner_release(cw_t *cw)
{
  if (cw->is_worker)
    return;
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_call_list_t owners = cw_proc.actor.owner_waiters;
  cw_proc.actor.owner_waiters = (cw_call_list_t){0};
  cw_proc.actor.stopping = 1;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  reply_owner_waiters(&owners);
}

/* ---- finding the GCS ---- */

/* The raylet starts workers with --session-dir DIR; DIR/address names the cluster's GCS. */
static char *gcs_from_session(void)
{
  char buf[8192], path[1100];
  FILE *f = fopen("/proc/self/cmdline", "r");
  if (!f)
    return NULL;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *dir = NULL;
  for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
    if (strcmp(buf + i, "--session-dir") == 0 && i + strlen(buf + i) + 1 < n)
      dir = buf + i + strlen(buf + i) + 1;
    else if (strncmp(buf + i, "--session-dir=", 14) == 0)
      dir = buf + i + 14;
  }
  if (!dir)
    return NULL;
  snprintf(path, sizeof(path), "%s/address", dir);
  char line[256];
  f = fopen(path, "r");
  if (!f)
    return NULL;
  char *got = fgets(line, sizeof(line), f);
  fclose(f);
  if (!got)
    return NULL;
  line[strcspn(line, "\r\n")] = '\0';
  return *line ? xstrdup(line) : NULL;
}

char *cw_actor_gcs_address(cw_t *cw)
{
  char *addr = cw->is_worker ? gcs_from_session() : NULL;
  const char *env = getenv("RAYC_ADDRESS");
  if (!addr && env && *env)
    addr = xstrdup(env);
  return addr;
}
