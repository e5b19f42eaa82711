/*
 * Hosting actors in a worker (Ray's actor task receiver): the creation task, calls, the end of
 * an actor, and the GCS's WaitActorExit and KillActorWorker.
 *
 * A worker hosts one actor for its whole life (Ray's model), unless the GCS made it a host of
 * actors that share a process: the creation task of such an actor carries share_worker, and the
 * first one makes the worker a host (cw_proc.actor.shared), which then takes more creation tasks
 * with share_worker (the GCS sends at most its --actors-per-worker at once) and never one
 * without. Each actor has its own state, keyed by actor id (cw_hosted_actor_t): the instance,
 * its callers' sequence numbers, its threads and queue, its exit flag. A PushTask routes by the
 * actor id it carries.
 *
 * Per actor: its first thread runs the constructor (through cw_exec_run, so arguments, results
 * and errors work as for tasks) and, if it succeeds, the actor is ALIVE and max_concurrency - 1
 * more threads start. Calls (ACTOR_TASK) arrive on the rpc server's thread and are queued for the
 * actor's threads:
 *
 *   - max_concurrency == 1: each caller numbers its calls to this incarnation 0, 1, 2...
 *     (sequence_number); a call runs only after every lower number of the same caller, so calls
 *     from one caller run in the order it made them even when gRPC delivers them out of order
 *     (early arrivals wait in a per-caller list sorted by number). A number already passed is a
 *     retry and runs at once.
 *   - max_concurrency > 1: calls run on the actor's threads as they arrive, in no guaranteed order.
 *
 * The end of an actor: a method calls rayc_actor_exit() -> once it has replied, queued calls fail
 * with ACTOR_DIED and the GCS's held WaitActorExit is answered "exited" (so it marks the actor DEAD
 * without restarting it); the GCS's KillActorWorker ends it the same way, answered "not exited".
 * A worker of one actor then sends itself SIGTERM: its orderly exit comes through cw_actor_stop()
 * (from cw_worker_run, on the main thread), which joins the actor threads and runs the destructor;
 * threads stuck in a method past a grace period make the process _exit instead. A host instead
 * lets the actor's threads return (a method still running is left to return; its result is
 * dropped and its caller gets ACTOR_DIED), the last of them runs the destructor, and the worker
 * stays for its other actors: the GCS ends a host (through its raylet) when its last actor is gone.
 *
 * State: cw_proc.actor (worker/cw_proc.h) under its own mutex, never cw->mu, so the rpc server
 * thread never waits on the core worker. Actor records live until the worker exits (a restart of
 * the same actor on the same host moves the old record to cw_proc.actor.ended).
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
};

/* Per thread: the actor whose methods this thread runs (NULL: none), and whether its method called
 * rayc_actor_exit(). */
static __thread cw_hosted_actor_t *tl_actor;
static __thread int tl_exit_requested;

typedef struct thread_arg {
  cw_hosted_actor_t *a;
  cw_hosted_item_t *creation; /* the first thread's: the constructor to run */
} thread_arg_t;

static char *rt_hex(const cw_hosted_actor_t *a, char *out)
{
  return id_short(a->id, ID_ACTOR_SIZE, out);
}

/* The actor id hosted here, or NULL. cw_proc.actor.mu held. */
static cw_hosted_actor_t *rt_find(const uint8_t *id, size_t len)
{
  if (len != ID_ACTOR_SIZE || !cw_proc.actor.actors.buckets)
    return NULL;
  return hmap_get(&cw_proc.actor.actors, id, ID_ACTOR_SIZE);
}

static void rt_ready_append(cw_hosted_actor_t *a, cw_hosted_item_t *it)
{
  it->next = NULL;
  if (a->tail)
    a->tail->next = it;
  else
    a->head = it;
  a->tail = it;
}

/* Moves every queued call of a (ready and early) to *out. cw_proc.actor.mu held. */
static void rt_take_queued(cw_hosted_actor_t *a, cw_hosted_item_t **out)
{
  cw_hosted_item_t *all = a->head;
  a->head = a->tail = NULL;
  for (hmap_iter_t it = hmap_iter(&a->callers); hmap_next(&it);) {
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

static void fail_items(const char *hex, cw_hosted_item_t *it, int err, const char *why)
{
  char *msg = it ? xasprintf("actor %s %s", hex, why) : NULL;
  while (it) {
    cw_hosted_item_t *next = it->next;
    cw_exec_send(&it->to, NULL, err, msg);
    free(it);
    it = next;
  }
  free(msg);
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
  *l = (cw_call_list_t){0};
}

/* ---- running the constructor and methods ---- */

static int actor_ctor_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  cw_hosted_actor_t *a = arg;
  (void)nrets;
  void *self = NULL;
  int rc = 0;
  cw_t *cw = cw_proc.actor.cw;
  if (a->use_ex) {
    if (!(self = a->ex.actor_create(a->ex.data, ctx, a->class_name, args, nargs)))
      rc = RAYC_ETASK_FAILED;
  } else if (!a->cls) {
    rc = rayc_task_fail(ctx, "actor class '%s' is not registered by any library on the code path '%s'", a->class_name,
                        cw->code_path ? cw->code_path : "");
  } else if (!(self = a->cls->ctor(ctx, args, nargs))) {
    rc = RAYC_ETASK_FAILED;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  if (a->state == RT_CREATING) {
    a->self = self;
    a->state = self ? RT_ALIVE : RT_FAILED;
  } else if (self && cw_proc.actor.shared) { /* killed while constructing: its last thread destroys it */
    a->self = self;
  }
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  return rc;
}

static int actor_method_body(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  const Rayc__TaskSpec *spec = arg;
  cw_hosted_actor_t *a = tl_actor;
  int rc;
  if (a->use_ex) {
    rc = a->ex.actor_method(a->ex.data, ctx, a->self, spec->function_name, args, nargs, nrets);
  } else {
    rayc_method_fn fn = cw_actor_method_find(a->cls, spec->function_name);
    if (!fn)
      return rayc_task_fail(ctx, "actor class %s has no method '%s'", a->class_name, spec->function_name);
    rc = fn(ctx, a->self, args, nargs, nrets);
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  int killed = cw_proc.actor.shared && a->state == RT_EXITING && !a->exited;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (killed) { /* a host's actor killed meanwhile: this result is not delivered */
    char hex[9];
    rayc_task_fail(ctx, "actor %s was killed while this call ran (its result is dropped)", rt_hex(a, hex));
    return RAYC_EACTOR_DIED;
  }
  return rc;
}

static void *actor_thread(void *arg);

static void actor_start_threads(cw_hosted_actor_t *a)
{
  for (int i = 1; i < a->max_concurrency; i++) {
    thread_arg_t *ta = xcalloc(1, sizeof(*ta));
    ta->a = a;
    if (pthread_create(&a->threads[i], NULL, actor_thread, ta) != 0) {
      free(ta);
      break;
    }
    a->nthreads = i + 1;
    a->running++;
  }
}

/* a ends: queued calls are returned to fail, the GCS's held calls are answered when the actor
 * exited by itself (or, on a host, when it was killed). cw_proc.actor.mu held. */
static cw_hosted_item_t *rt_begin_exit(cw_hosted_actor_t *a, int intentional, const char *reason)
{
  cw_hosted_item_t *queued = NULL;
  if (a->state == RT_EXITING)
    return NULL;
  a->state = RT_EXITING;
  a->exited = intentional;
  snprintf(a->exit_reason, sizeof(a->exit_reason), "%s", reason);
  rt_take_queued(a, &queued);
  if ((intentional || cw_proc.actor.shared) && a->exit_waiters.n) {
    reply_exit_waiters(&a->exit_waiters, intentional, reason);
    a->gcs_told = intentional;
  }
  pthread_cond_broadcast(&a->cv);
  pthread_cond_broadcast(&cw_proc.actor.cv);
  return queued;
}

/* After a method called rayc_actor_exit: a worker of one actor waits (bounded) until the GCS has
 * been told, then exits in order; a host goes on with its other actors. */
static void actor_exit_now(cw_hosted_actor_t *a)
{
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_item_t *queued = rt_begin_exit(a, 1, "the actor called rayc_actor_exit");
  int shared = cw_proc.actor.shared;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_TELL_GCS_MS / 1000;
  while (!shared && !a->gcs_told && !cw_proc.actor.stopping)
    if (pthread_cond_timedwait(&cw_proc.actor.cv, &cw_proc.actor.mu, &dl) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  fail_items(rt_hex(a, hex), queued, RAYC_EACTOR_DIED, "exited (rayc_actor_exit) before running this call");
  log_info("actor %s exits (rayc_actor_exit)%s", hex, shared ? "; its host worker goes on" : "");
  if (!shared)
    kill(getpid(), SIGTERM);
}

static void actor_run_creation(cw_hosted_actor_t *a, cw_hosted_item_t *it)
{
  char hex[9];
  cw_exec_run(cw_proc.actor.cw, &it->to, it->req, actor_ctor_body, a);
  free(it);
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_item_t *queued = NULL;
  if (a->state == RT_ALIVE) {
    actor_start_threads(a);
    log_info("actor %s (%s) is alive, %d thread(s)", rt_hex(a, hex), a->class_name, a->max_concurrency);
  } else if (a->state == RT_FAILED) {
    rt_take_queued(a, &queued);
    log_warn("actor %s (%s): the constructor failed", rt_hex(a, hex), a->class_name);
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
  fail_items(rt_hex(a, hex), queued, RAYC_EACTOR_DIED, "could not be created (its constructor failed)");
}

/* The next call for a's thread, or NULL when the thread is to return. cw_proc.actor.mu held. */
static cw_hosted_item_t *rt_next(cw_hosted_actor_t *a)
{
  while (!(a->state == RT_ALIVE && a->head) && (a->state == RT_ALIVE || a->state == RT_CREATING) &&
         !cw_proc.actor.stopping)
    pthread_cond_wait(&a->cv, &cw_proc.actor.mu);
  if (a->state != RT_ALIVE || cw_proc.actor.stopping)
    return NULL;
  cw_hosted_item_t *it = a->head;
  a->head = it->next;
  if (!a->head)
    a->tail = NULL;
  return it;
}

/* A thread of a returns. On a host, the last one of an ended actor destroys the instance (a
 * worker of one actor does it in cw_actor_stop, on the main thread, as before). */
static void rt_thread_done(cw_hosted_actor_t *a)
{
  pthread_mutex_lock(&cw_proc.actor.mu);
  void *self = NULL;
  if (--a->running == 0 && cw_proc.actor.shared && !cw_proc.actor.stopping) {
    self = a->self;
    a->self = NULL;
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (self && a->use_ex && a->ex.actor_destroy)
    a->ex.actor_destroy(a->ex.data, self);
  else if (self && a->cls && a->cls->dtor)
    a->cls->dtor(self);
}

static void *actor_thread(void *arg)
{
  thread_arg_t *ta = arg;
  cw_hosted_actor_t *a = ta->a;
  tl_actor = a;
  if (ta->creation)
    actor_run_creation(a, ta->creation);
  free(ta);
  for (;;) {
    pthread_mutex_lock(&cw_proc.actor.mu);
    cw_hosted_item_t *it = rt_next(a);
    pthread_mutex_unlock(&cw_proc.actor.mu);
    if (!it)
      break;
    if (it->cancelled)
      cw_exec_run_cancelled(cw_proc.actor.cw, &it->to, it->req->task);
    else
      cw_exec_run(cw_proc.actor.cw, &it->to, it->req, actor_method_body, (void *)it->req->task);
    free(it);
    if (tl_exit_requested) {
      tl_exit_requested = 0;
      actor_exit_now(a);
      break;
    }
  }
  rt_thread_done(a);
  return NULL;
}

/* ---- pushed tasks ---- */

/* Why this worker cannot take the creation task spec, or NULL. cw_proc.actor.mu held. */
static const char *creation_refused(const Rayc__TaskSpec *spec)
{
  if (cw_proc.actor.stopping)
    return "this worker is exiting";
  if (cw_proc.actor.count && !(cw_proc.actor.shared && spec->share_worker))
    return cw_proc.actor.shared ? "this worker hosts actors that share it, and this actor does not share"
                                : "this worker already hosted an actor";
  cw_hosted_actor_t *old = rt_find(spec->actor_id.data, spec->actor_id.len);
  if (old && old->state != RT_EXITING && old->state != RT_FAILED)
    return "this worker hosts this actor already";
  return NULL;
}

static cw_hosted_actor_t *rt_new(cw_t *cw, const Rayc__TaskSpec *spec)
{
  cw_hosted_actor_t *old = rt_find(spec->actor_id.data, spec->actor_id.len);
  if (old) { /* a restart of an actor that ended here: its record waits for the exit */
    hmap_del(&cw_proc.actor.actors, old->id, ID_ACTOR_SIZE);
    old->next = cw_proc.actor.ended;
    cw_proc.actor.ended = old;
  }
  cw_hosted_actor_t *a = xcalloc(1, sizeof(*a));
  pthread_cond_init(&a->cv, NULL);
  a->state = RT_CREATING;
  memcpy(a->id, spec->actor_id.data, ID_ACTOR_SIZE);
  snprintf(a->class_name, sizeof(a->class_name), "%s", spec->function_name);
  a->cls = cw_actor_class_find(spec->function_name);
  a->use_ex = !a->cls && cw_lang_executor(&a->ex) && a->ex.actor_create && a->ex.actor_method;
  a->max_concurrency = spec->max_concurrency < 1 ? 1 : spec->max_concurrency;
  if (a->max_concurrency > ACTOR_MAX_CONCURRENCY)
    a->max_concurrency = ACTOR_MAX_CONCURRENCY;
  a->threads = xcalloc((size_t)a->max_concurrency, sizeof(*a->threads));
  hmap_init(&a->callers);
  if (!cw_proc.actor.actors.buckets)
    hmap_init(&cw_proc.actor.actors);
  hmap_put(&cw_proc.actor.actors, a->id, ID_ACTOR_SIZE, a);
  cw_proc.actor.cw = cw;
  cw_proc.actor.shared = spec->share_worker;
  cw_proc.actor.count++;
  return a;
}

static int push_creation(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  const char *why = creation_refused(spec);
  if (why) {
    pthread_mutex_unlock(&cw_proc.actor.mu);
    rpc_reply_error(call, RAYC_EALREADY_EXISTS, "%s (actor %s)", why,
                    id_short(spec->actor_id.data, ID_ACTOR_SIZE, hex));
    return 1;
  }
  cw_hosted_actor_t *a = rt_new(cw, spec);
  thread_arg_t *ta = xcalloc(1, sizeof(*ta));
  ta->a = a;
  ta->creation = xcalloc(1, sizeof(*ta->creation));
  ta->creation->to.call = call;
  ta->creation->req = req;
  if (pthread_create(&a->threads[0], NULL, actor_thread, ta) == 0) {
    a->nthreads = a->running = 1;
    ta = NULL;
  } else {
    a->state = RT_FAILED;
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
  log_info("creating actor %s of class %s (max_concurrency %d%s)", rt_hex(a, hex), a->class_name, a->max_concurrency,
           spec->share_worker ? ", in a shared worker" : "");
  if (ta) {
    rpc_reply_error(call, RAYC_EINTERNAL, "cannot start the actor's thread");
    free(ta->creation);
    free(ta);
  }
  return 1;
}

/* Queues a call in its caller's order. cw_proc.actor.mu held. */
static void rt_queue_call(cw_hosted_actor_t *a, cw_hosted_item_t *it, const Rayc__TaskSpec *spec)
{
  if (a->max_concurrency > 1) {
    rt_ready_append(a, it);
    return;
  }
  const ProtobufCBinaryData *w = &spec->caller->worker_id;
  cw_hosted_caller_t *c = hmap_get(&a->callers, w->data, w->len);
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    hmap_put(&a->callers, w->data, w->len, c);
  }
  if (it->seq < c->next_seq) { /* a retry of a call that already ran (or was lost): run it now */
    rt_ready_append(a, it);
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
  rt_ready_append(a, it);
  c->next_seq++;
  while (c->early && c->early->seq <= c->next_seq) {
    cw_hosted_item_t *e = c->early;
    c->early = e->next;
    if (e->seq == c->next_seq)
      c->next_seq++;
    rt_ready_append(a, e);
  }
}

static void push_call(const cw_exec_to_t *to, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  char hex[9];
  if (!spec->caller || spec->caller->worker_id.len != ID_WORKER_SIZE) {
    cw_exec_send(to, NULL, RAYC_EINVALID_ARGUMENT, "actor call without a caller worker id");
    return;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_actor_t *a = rt_find(spec->actor_id.data, spec->actor_id.len);
  int ok = a && (a->state == RT_CREATING || a->state == RT_ALIVE) && !cw_proc.actor.stopping;
  if (ok) {
    cw_hosted_item_t *it = xcalloc(1, sizeof(*it));
    it->to = *to;
    it->req = req;
    it->seq = spec->sequence_number;
    rt_queue_call(a, it, spec);
    pthread_cond_signal(&a->cv);
  }
  enum cw_hosted_state st = a ? a->state : RT_NONE;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (!ok) {
    char *msg = xasprintf("this worker does not host actor %s (%s)", id_short(spec->actor_id.data, ID_ACTOR_SIZE, hex),
                          st == RT_EXITING  ? "it is exiting"
                          : st == RT_FAILED ? "its constructor failed"
                                            : "not here");
    cw_exec_send(to, NULL, RAYC_EACTOR_DIED, msg);
    free(msg);
  }
}

static int actor_spec_ok(const Rayc__TaskSpec *spec)
{
  return spec->actor_id.len == ID_ACTOR_SIZE && spec->function_name && *spec->function_name &&
         spec->task_id.len == ID_TASK_SIZE && spec->num_returns >= 1;
}

static const char actor_malformed[] = "malformed actor task: actor_id must be 16 bytes, with a function name and at "
                                      "least one return";

int cw_actor_push(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  const Rayc__TaskSpec *spec = req->task;
  if (!actor_spec_ok(spec)) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "%s", actor_malformed);
    return 1;
  }
  if (spec->type == RAYC__TASK_TYPE__ACTOR_CREATION_TASK)
    return push_creation(cw, call, req);
  push_call(&(cw_exec_to_t){.call = call}, req);
  return 1;
}

void cw_actor_push_to(cw_t *cw, const cw_exec_to_t *to, const Rayc__PushTaskRequest *req)
{
  (void)cw;
  if (!actor_spec_ok(req->task) || req->task->type != RAYC__TASK_TYPE__ACTOR_TASK)
    cw_exec_send(to, NULL, RAYC_EINVALID_ARGUMENT, actor_malformed);
  else
    push_call(to, req);
}

static int item_is(const cw_hosted_item_t *it, const ProtobufCBinaryData *task_id)
{
  const ProtobufCBinaryData *id = &it->req->task->task_id;
  return id->len == task_id->len && memcmp(id->data, task_id->data, id->len) == 0;
}

/* The queued call with this task id in a's lists (ready, or early), or NULL. cw_proc.actor.mu held. */
static cw_hosted_item_t *rt_find_queued(cw_hosted_actor_t *a, const ProtobufCBinaryData *task_id)
{
  for (cw_hosted_item_t *it = a->head; it; it = it->next)
    if (item_is(it, task_id))
      return it;
  for (hmap_iter_t hi = hmap_iter(&a->callers); hmap_next(&hi);)
    for (cw_hosted_item_t *it = ((cw_hosted_caller_t *)hi.value)->early; it; it = it->next)
      if (item_is(it, task_id))
        return it;
  return NULL;
}

/* The call stays in its place (so the caller's later numbers still follow it) and is answered
 * CANCELLED when its turn comes, without running. */
int cw_actor_cancel_queued(const ProtobufCBinaryData *task_id)
{
  cw_hosted_item_t *it = NULL;
  pthread_mutex_lock(&cw_proc.actor.mu);
  for (hmap_iter_t hi = hmap_iter(&cw_proc.actor.actors); !it && cw_proc.actor.actors.buckets && hmap_next(&hi);)
    it = rt_find_queued(hi.value, task_id);
  if (it)
    it->cancelled = 1;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  return it != NULL;
}

/* ---- public calls made inside actors ---- */

void rayc_actor_exit(rayc_task_ctx *ctx)
{
  (void)ctx;
  if (tl_actor)
    tl_exit_requested = 1;
}

int rayc_actor_self(rayc_task_ctx *ctx, rayc_actor *out)
{
  (void)ctx;
  if (!tl_actor || !out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_self: not called from inside an actor");
  memcpy(out->id, tl_actor->id, ID_ACTOR_SIZE);
  return 0;
}

/* ---- ActorWorkerService: the GCS's calls ---- */

void cw_actor_on_wait_exit(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__WaitActorExitRequest *req = (const Rayc__WaitActorExitRequest *)m;
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_actor_t *a = rt_find(req->actor_id.data, req->actor_id.len);
  if (!a) {
    pthread_mutex_unlock(&cw_proc.actor.mu);
    rpc_reply_error(call, RAYC_ENOT_FOUND, "this worker does not host that actor");
    return;
  }
  if (a->state == RT_EXITING || a->state == RT_FAILED || cw_proc.actor.stopping) {
    Rayc__WaitActorExitReply rep = RAYC__WAIT_ACTOR_EXIT_REPLY__INIT;
    rep.exited = a->exited;
    rep.reason = a->exit_reason;
    a->gcs_told |= a->exited;
    pthread_cond_broadcast(&cw_proc.actor.cv);
    rpc_reply(call, &rep.base); /* packs before returning: cw_proc.actor.mu keeps exit_reason stable */
  } else {
    cw_call_list_add(&a->exit_waiters, call);
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

void cw_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__KillActorWorkerRequest *req = (const Rayc__KillActorWorkerRequest *)m;
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_hosted_actor_t *a = rt_find(req->actor_id.data, req->actor_id.len);
  int shared = cw_proc.actor.shared;
  cw_hosted_item_t *queued = a ? rt_begin_exit(a, 0, req->reason && *req->reason ? req->reason : "killed") : NULL;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (!a) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "this worker does not host that actor");
    return;
  }
  rpc_reply(call, NULL);
  fail_items(rt_hex(a, hex), queued, RAYC_EACTOR_DIED, "was killed before running this call");
  log_info("actor %s: killed by the GCS (%s); %s", hex, req->reason ? req->reason : "",
           shared ? "its host worker goes on" : "exiting");
  if (!shared)
    kill(getpid(), SIGTERM);
}

/* ---- the worker exits ---- */

/* Ends every actor and answers every held call. Returns the owners' held calls. */
static cw_call_list_t stop_begin(void)
{
  char hex[9];
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_proc.actor.stopping = 1;
  for (hmap_iter_t it = hmap_iter(&cw_proc.actor.actors); cw_proc.actor.actors.buckets && hmap_next(&it);) {
    cw_hosted_actor_t *a = it.value;
    cw_hosted_item_t *queued = NULL;
    if (a->state == RT_CREATING || a->state == RT_ALIVE)
      queued = rt_begin_exit(a, 0, "its worker is exiting");
    if (a->exited && a->exit_waiters.n)
      a->gcs_told = 1;
    reply_exit_waiters(&a->exit_waiters, a->exited, a->exit_reason);
    pthread_cond_broadcast(&a->cv);
    fail_items(rt_hex(a, hex), queued, RAYC_EACTOR_DIED, "stopped: its worker is exiting");
  }
  cw_call_list_t owners = cw_proc.actor.owner_waiters;
  cw_proc.actor.owner_waiters = (cw_call_list_t){0};
  pthread_cond_broadcast(&cw_proc.actor.cv);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  return owners;
}

/* Joins a's threads (bounded by dl: a thread stuck in a method makes the process _exit) and runs
 * its destructor. The record stays for calls the server still delivers (cw_actor_release). */
static void stop_actor(cw_hosted_actor_t *a, const struct timespec *dl)
{
  char hex[9];
  for (int i = 0; i < a->nthreads; i++)
    if (pthread_timedjoin_np(a->threads[i], NULL, dl) != 0) {
      log_warn("actor %s: a call is still running %d ms after the worker was told to exit; exiting now", rt_hex(a, hex),
               ACTOR_EXIT_GRACE_MS);
      _exit(0);
    }
  a->nthreads = 0;
  if (a->self && a->use_ex && a->ex.actor_destroy)
    a->ex.actor_destroy(a->ex.data, a->self);
  else if (a->self && a->cls && a->cls->dtor)
    a->cls->dtor(a->self);
  a->self = NULL;
}

void cw_actor_stop(cw_t *cw)
{
  (void)cw;
  cw_call_list_t owners = stop_begin();
  cw_call_list_reply_all(&owners);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ACTOR_EXIT_GRACE_MS / 1000;
  for (hmap_iter_t it = hmap_iter(&cw_proc.actor.actors); hmap_next(&it);)
    stop_actor(it.value, &dl);
  for (cw_hosted_actor_t *a = cw_proc.actor.ended; a; a = a->next)
    stop_actor(a, &dl);
}

static void free_actor(cw_hosted_actor_t *a)
{
  for (hmap_iter_t it = hmap_iter(&a->callers); hmap_next(&it);)
    free(it.value);
  hmap_release(&a->callers);
  pthread_cond_destroy(&a->cv);
  free(a->threads);
  free(a);
}

void cw_actor_release(void)
{
  pthread_mutex_lock(&cw_proc.actor.mu);
  for (hmap_iter_t it = hmap_iter(&cw_proc.actor.actors); hmap_next(&it);)
    free_actor(it.value);
  hmap_release(&cw_proc.actor.actors);
  cw_proc.actor.actors = (hmap_t){0};
  while (cw_proc.actor.ended) {
    cw_hosted_actor_t *a = cw_proc.actor.ended;
    cw_proc.actor.ended = a->next;
    free_actor(a);
  }
  pthread_mutex_unlock(&cw_proc.actor.mu);
}
