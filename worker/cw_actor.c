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
 * State: one process-wide actor runtime (rt) under its own mutex, never cw->mu, so the rpc server
 * thread never waits on the core worker.
 */
#include "worker/cw_actor.h"

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

typedef struct actor_class {
  char *name;
  rayc_actor_ctor_fn ctor;
  rayc_actor_dtor_fn dtor;
  hmap_t methods; /* name -> rayc_method_fn */
} actor_class_t;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static hmap_t reg_classes;

static actor_class_t *reg_class_locked(const char *cls, int create)
{
  if (!reg_classes.buckets)
    hmap_init(&reg_classes);
  actor_class_t *c = hmap_get(&reg_classes, cls, strlen(cls));
  if (!c && create) {
    c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(cls);
    hmap_init(&c->methods);
    hmap_put(&reg_classes, cls, strlen(cls), c);
  }
  return c;
}

void rayc_register_actor(const char *cls, rayc_actor_ctor_fn ctor, rayc_actor_dtor_fn dtor)
{
  pthread_mutex_lock(&reg_mu);
  actor_class_t *c = reg_class_locked(cls, 1);
  c->ctor = ctor;
  c->dtor = dtor;
  pthread_mutex_unlock(&reg_mu);
}

void rayc_register_method(const char *cls, const char *method, rayc_method_fn fn)
{
  pthread_mutex_lock(&reg_mu);
  actor_class_t *c = reg_class_locked(cls, 1);
  hmap_put(&c->methods, method, strlen(method), (void *)(uintptr_t)fn);
  pthread_mutex_unlock(&reg_mu);
}

static actor_class_t *reg_class(const char *cls)
{
  pthread_mutex_lock(&reg_mu);
  actor_class_t *c = reg_class_locked(cls, 0);
  pthread_mutex_unlock(&reg_mu);
  return c && c->ctor ? c : NULL;
}

static rayc_method_fn reg_method(actor_class_t *c, const char *method)
{
  pthread_mutex_lock(&reg_mu);
  void *p = hmap_get(&c->methods, method, strlen(method));
  pthread_mutex_unlock(&reg_mu);
  return (rayc_method_fn)(uintptr_t)p;
}

/* ---- the runtime of the hosted actor ---- */

typedef struct actor_item {
  struct actor_item *next;
  rpc_call_t *call;
  const Rayc__PushTaskRequest *req; /* owned by call */
  uint64_t seq;
} actor_item_t;

/* One caller's calls that arrived ahead of their turn. */
typedef struct actor_caller {
  uint64_t next_seq;
  actor_item_t *early; /* sorted by seq */
} actor_caller_t;

enum rt_state { RT_NONE, RT_CREATING, RT_ALIVE, RT_FAILED, RT_EXITING };

typedef struct call_list {
  rpc_call_t **v;
  int64_t *at; /* when each was held */
  size_t n, cap;
} call_list_t;

static struct actor_rt {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  enum rt_state state;
  cw_t *cw;
  uint8_t id[ID_ACTOR_SIZE];
  char class_name[128];
  actor_class_t *cls;
  rayc_executor ex; /* use_ex: a class of another language, run by the binding's executor */
  int use_ex;
  void *self;
  int max_concurrency;
  pthread_t *threads;
  int nthreads;
  actor_item_t *creation;
  actor_item_t *head, *tail; /* ready to run */
  hmap_t callers;            /* caller worker id -> actor_caller_t */
  call_list_t exit_waiters;  /* the GCS's WaitActorExit */
  call_list_t owner_waiters; /* WaitOwnerExit: the GCS's, and owners' of refs this process borrows */
  int exited;                /* rayc_actor_exit was called */
  char exit_reason[256];
  int gcs_told; /* a WaitActorExit was answered "exited" */
  int stopping; /* cw_actor_stop ran */
} rt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static __thread int tl_in_actor, tl_exit_requested;

static void list_add(call_list_t *l, rpc_call_t *call)
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
  return id_short(rt.id, ID_ACTOR_SIZE, out);
}

static void rt_ready_append(actor_item_t *it)
{
  it->next = NULL;
  if (rt.tail)
    rt.tail->next = it;
  else
    rt.head = it;
  rt.tail = it;
}

/* Moves every queued call (ready and early) to *out. rt.mu held. */
static void rt_take_queued(actor_item_t **out)
{
  actor_item_t *all = rt.head;
  rt.head = rt.tail = NULL;
  if (rt.callers.buckets)
    for (hmap_iter_t it = hmap_iter(&rt.callers); hmap_next(&it);) {
      actor_caller_t *c = it.value;
      while (c->early) {
        actor_item_t *e = c->early;
        c->early = e->next;
        e->next = all;
        all = e;
      }
    }
  *out = all;
}

static void fail_items(actor_item_t *it, int err, const char *why)
{
  char hex[9];
  while (it) {
    actor_item_t *next = it->next;
    rpc_reply_error(it->call, err, "actor %s %s", rt_hex(hex), why);
    free(it);
    it = next;
  }
}

static void reply_exit_waiters(call_list_t *l, int exited, const char *reason)
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

static int actor_ctor_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, rayc_buf *rets,
                           size_t nrets)
{
  (void)arg, (void)rets, (void)nrets;
  void *self = NULL;
  int rc = 0;
  if (rt.use_ex) {
    if (!(self = rt.ex.actor_create(rt.ex.data, ctx, rt.class_name, args, nargs)))
      rc = RAYC_ETASK_FAILED;
  } else if (!rt.cls) {
    rc = rayc_task_fail(ctx, "actor class '%s' is not registered by any library on the code path '%s'", rt.class_name,
                        rt.cw->code_path ? rt.cw->code_path : "");
  } else if (!(self = rt.cls->ctor(ctx, args, nargs))) {
    rc = RAYC_ETASK_FAILED;
  }
  pthread_mutex_lock(&rt.mu);
  if (rt.state == RT_CREATING) {
    rt.self = self;
    rt.state = self ? RT_ALIVE : RT_FAILED;
  }
  pthread_cond_broadcast(&rt.cv);
  pthread_mutex_unlock(&rt.mu);
  return rc;
}

static int actor_method_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, rayc_buf *rets,
                             size_t nrets)
{
  const Rayc__TaskSpec *spec = arg;
  if (rt.use_ex)
    return rt.ex.actor_method(rt.ex.data, ctx, rt.self, spec->function_name, args, nargs, nrets);
  rayc_method_fn fn = reg_method(rt.cls, spec->function_name);
  if (!fn)
    return rayc_task_fail(ctx, "actor class %s has no method '%s'", rt.class_name, spec->function_name);
  return fn(ctx, rt.self, args, nargs, rets, nrets);
}

static void *actor_thread(void *arg);

static void actor_start_threads(void)
{
  for (int i = 1; i < rt.max_concurrency; i++)
    if (pthread_create(&rt.threads[i], NULL, actor_thread, NULL) == 0)
      rt.nthreads = i + 1;
}

/* The actor ends: queued calls fail, the GCS's held calls are answered. rt.mu held. */
static actor_item_t *rt_begin_exit(int intentional, const char *reason)
{
  actor_item_t *queued = NULL;
  if (rt.state == RT_EXITING)
    return NULL;
  rt.state = RT_EXITING;
  rt.exited = intentional;
  snprintf(rt.exit_reason, sizeof(rt.exit_reason), "%s", reason);
  rt_take_queued(&queued);
  if (intentional && rt.exit_waiters.n) {
    reply_exit_waiters(&rt.exit_waiters, 1, reason);
    rt.exit_waiters = (call_list_t){0};
    rt.gcs_told = 1;
  }
  pthread_cond_broadcast(&rt.cv);
  return queued;
}

/* After a method called rayc_actor_exit: waits (bounded) until the GCS has been told, then has
 * the worker exit in order. */
static void actor_exit_now(void)
{
  char hex[9];
  pthread_mutex_lock(&rt.mu);
  actor_item_t *queued = rt_begin_exit(1, "the actor called rayc_actor_exit");
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_TELL_GCS_MS / 1000;
  while (!rt.gcs_told && !rt.stopping)
    if (pthread_cond_timedwait(&rt.cv, &rt.mu, &dl) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&rt.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "exited (rayc_actor_exit) before running this call");
  log_info("actor %s exits (rayc_actor_exit)", rt_hex(hex));
  kill(getpid(), SIGTERM);
}

static void actor_run_creation(actor_item_t *it)
{
  char hex[9];
  cw_exec_run(rt.cw, it->call, it->req, actor_ctor_body, NULL);
  free(it);
  pthread_mutex_lock(&rt.mu);
  actor_item_t *queued = NULL;
  if (rt.state == RT_ALIVE) {
    actor_start_threads();
    log_info("actor %s (%s) is alive, %d thread(s)", rt_hex(hex), rt.class_name, rt.max_concurrency);
  } else if (rt.state == RT_FAILED) {
    rt_take_queued(&queued);
    log_warn("actor %s (%s): the constructor failed", rt_hex(hex), rt.class_name);
  }
  pthread_mutex_unlock(&rt.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "could not be created (its constructor failed)");
}

static void *actor_thread(void *arg)
{
  tl_in_actor = 1;
  if (arg)
    actor_run_creation(arg);
  for (;;) {
    pthread_mutex_lock(&rt.mu);
    while (!(rt.state == RT_ALIVE && rt.head) && (rt.state == RT_ALIVE || rt.state == RT_CREATING) && !rt.stopping)
      pthread_cond_wait(&rt.cv, &rt.mu);
    if (rt.state != RT_ALIVE || rt.stopping) {
      pthread_mutex_unlock(&rt.mu);
      return NULL;
    }
    actor_item_t *it = rt.head;
    rt.head = it->next;
    if (!rt.head)
      rt.tail = NULL;
    pthread_mutex_unlock(&rt.mu);
    cw_exec_run(rt.cw, it->call, it->req, actor_method_body, (void *)it->req->task);
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
  pthread_mutex_lock(&rt.mu);
  if (rt.state != RT_NONE || rt.stopping) {
    pthread_mutex_unlock(&rt.mu);
    rpc_reply_error(call, RAYC_EALREADY_EXISTS, "this worker already hosted actor %s", rt_hex(hex));
    return 1;
  }
  rt.state = RT_CREATING;
  rt.cw = cw;
  memcpy(rt.id, spec->actor_id.data, ID_ACTOR_SIZE);
  snprintf(rt.class_name, sizeof(rt.class_name), "%s", spec->function_name);
  rt.cls = reg_class(spec->function_name);
  rt.use_ex = !rt.cls && cw_lang_executor(&rt.ex) && rt.ex.actor_create && rt.ex.actor_method;
  rt.max_concurrency = spec->max_concurrency < 1 ? 1 : spec->max_concurrency;
  if (rt.max_concurrency > ACTOR_MAX_CONCURRENCY)
    rt.max_concurrency = ACTOR_MAX_CONCURRENCY;
  rt.threads = xcalloc((size_t)rt.max_concurrency, sizeof(*rt.threads));
  hmap_init(&rt.callers);
  actor_item_t *it = xcalloc(1, sizeof(*it));
  it->call = call;
  it->req = req;
  if (pthread_create(&rt.threads[0], NULL, actor_thread, it) == 0) {
    rt.nthreads = 1;
    it = NULL;
  } else {
    rt.state = RT_FAILED;
  }
  pthread_mutex_unlock(&rt.mu);
  log_info("creating actor %s of class %s (max_concurrency %d)", rt_hex(hex), rt.class_name, rt.max_concurrency);
  if (it) {
    rpc_reply_error(call, RAYC_EINTERNAL, "cannot start the actor's thread");
    free(it);
  }
  return 1;
}

/* Queues a call in its caller's order. rt.mu held. */
static void rt_queue_call(actor_item_t *it, const Rayc__TaskSpec *spec)
{
  if (rt.max_concurrency > 1) {
    rt_ready_append(it);
    return;
  }
  const ProtobufCBinaryData *w = &spec->caller->worker_id;
  actor_caller_t *c = hmap_get(&rt.callers, w->data, w->len);
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    hmap_put(&rt.callers, w->data, w->len, c);
  }
  if (it->seq < c->next_seq) { /* a retry of a call that already ran (or was lost): run it now */
    rt_ready_append(it);
    return;
  }
  if (it->seq > c->next_seq) {
    actor_item_t **pp = &c->early;
    while (*pp && (*pp)->seq < it->seq)
      pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    return;
  }
  rt_ready_append(it);
  c->next_seq++;
  while (c->early && c->early->seq <= c->next_seq) {
    actor_item_t *e = c->early;
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
  pthread_mutex_lock(&rt.mu);
  int ok = (rt.state == RT_CREATING || rt.state == RT_ALIVE) && !rt.stopping &&
           memcmp(rt.id, spec->actor_id.data, ID_ACTOR_SIZE) == 0;
  if (ok) {
    actor_item_t *it = xcalloc(1, sizeof(*it));
    it->call = call;
    it->req = req;
    it->seq = spec->sequence_number;
    rt_queue_call(it, spec);
    pthread_cond_signal(&rt.cv);
  }
  enum rt_state st = rt.state;
  pthread_mutex_unlock(&rt.mu);
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
  memcpy(out->id, rt.id, ID_ACTOR_SIZE);
  return 0;
}

/* ---- ActorWorkerService ---- */

void cw_actor_on_wait_exit(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__WaitActorExitRequest *req = (const Rayc__WaitActorExitRequest *)m;
  pthread_mutex_lock(&rt.mu);
  if (rt.state == RT_NONE || req->actor_id.len != ID_ACTOR_SIZE || memcmp(req->actor_id.data, rt.id, ID_ACTOR_SIZE)) {
    pthread_mutex_unlock(&rt.mu);
    rpc_reply_error(call, RAYC_ENOT_FOUND, "this worker does not host that actor");
    return;
  }
  if (rt.state == RT_EXITING || rt.state == RT_FAILED || rt.stopping) {
    Rayc__WaitActorExitReply rep = RAYC__WAIT_ACTOR_EXIT_REPLY__INIT;
    rep.exited = rt.exited;
    rep.reason = rt.exit_reason;
    rt.gcs_told |= rt.exited;
    pthread_cond_broadcast(&rt.cv);
    rpc_reply(call, &rep.base); /* packs before returning: rt.mu keeps exit_reason stable */
  } else {
    list_add(&rt.exit_waiters, call);
  }
  pthread_mutex_unlock(&rt.mu);
}

void cw_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__KillActorWorkerRequest *req = (const Rayc__KillActorWorkerRequest *)m;
  char hex[9];
  pthread_mutex_lock(&rt.mu);
  int mine = rt.state != RT_NONE && req->actor_id.len == ID_ACTOR_SIZE &&
             memcmp(req->actor_id.data, rt.id, ID_ACTOR_SIZE) == 0;
  actor_item_t *queued = mine ? rt_begin_exit(0, req->reason && *req->reason ? req->reason : "killed") : NULL;
  pthread_mutex_unlock(&rt.mu);
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
  pthread_mutex_lock(&rt.mu);
  int now = rt.stopping;
  if (!now)
    list_add(&rt.owner_waiters, call);
  pthread_mutex_unlock(&rt.mu);
  if (now)
    rpc_reply(call, NULL);
}

static void reply_owner_waiters(call_list_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    rpc_reply(l->v[i], NULL);
  free(l->v);
  free(l->at);
  *l = (call_list_t){0};
}

void cw_actor_owner_tick(void)
{
  int64_t old = now_ms() - OWNER_HOLD_MS;
  pthread_mutex_lock(&rt.mu);
  call_list_t *l = &rt.owner_waiters;
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
  pthread_mutex_unlock(&rt.mu);
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
  pthread_mutex_lock(&rt.mu);
  rt.stopping = 1;
  actor_item_t *queued = NULL;
  if (rt.state == RT_CREATING || rt.state == RT_ALIVE)
    queued = rt_begin_exit(0, "its worker is exiting");
  call_list_t waiters = rt.exit_waiters, owners = rt.owner_waiters;
  rt.exit_waiters = rt.owner_waiters = (call_list_t){0};
  if (rt.exited && waiters.n)
    rt.gcs_told = 1;
  pthread_cond_broadcast(&rt.cv);
  pthread_mutex_unlock(&rt.mu);
  fail_items(queued, RAYC_EACTOR_DIED, "stopped: its worker is exiting");
  reply_exit_waiters(&waiters, rt.exited, rt.exit_reason);
  reply_owner_waiters(&owners);
  if (rt.nthreads == 0)
    return;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_EXIT_GRACE_MS / 1000;
  for (int i = 0; i < rt.nthreads; i++)
    if (join_until(rt.threads[i], &dl) != 0) {
      log_warn("actor %s: a call is still running %d ms after the worker was told to exit; exiting now", rt_hex(hex),
               ACTOR_EXIT_GRACE_MS);
      _exit(0);
    }
  if (rt.self && rt.use_ex && rt.ex.actor_destroy)
    rt.ex.actor_destroy(rt.ex.data, rt.self);
  else if (rt.self && rt.cls && rt.cls->dtor)
    rt.cls->dtor(rt.self);
  rt.self = NULL;
  for (hmap_iter_t it = hmap_iter(&rt.callers); hmap_next(&it);)
    free(it.value);
  hmap_release(&rt.callers);
  free(rt.threads);
  rt.threads = NULL;
  rt.nthreads = 0;
}

/* ---- a driver as an owner ---- */

void cw_actor_owner_reset(void)
{
  pthread_mutex_lock(&rt.mu);
  rt.stopping = 0; /* a driver may rayc_init again after rayc_shutdown */
  pthread_mutex_unlock(&rt.mu);
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
  pthread_mutex_lock(&rt.mu);
  call_list_t owners = rt.owner_waiters;
  rt.owner_waiters = (call_list_t){0};
  rt.stopping = 1;
  pthread_mutex_unlock(&rt.mu);
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
