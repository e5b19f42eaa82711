/*
 * Calling actors (Ray's actor task submitter), and the public actor API: create, call, look up by
 * name, kill, state.
 *
 * Every actor this process calls has one client record (cw->actors, under cw->mu) that follows the
 * actor's state in the GCS with a long poll (GetActorInfo with the last version seen), from the
 * first use until the actor is DEAD. While the actor is ALIVE, calls go straight to its worker.
 *
 * A call's life: rayc_actor_call makes the call's return objects (owned here, as for tasks) and
 * appends the call to the actor's queue in submission order. The queue's head is pushed when its
 * reference arguments are ready (a call waiting for an argument holds back the calls behind it,
 * which keeps them in order) and the actor has an address. Each push carries a sequence number,
 * counted per incarnation of the actor (its restart count) from 0, which the worker uses to run
 * this process's calls in order. Calls already queued go together in one PushTasks call (up to
 * cw->push_batch_max; the rules are at actor_takes and call_goes_alone, the contract in
 * docs/ARCHITECTURE.md "Batched calls"), whose entries are applied exactly as PushTask replies.
 *
 * Faults: a push that fails (the worker died, or refused the call because the actor is exiting)
 * parks the call in limbo until the GCS says what happened. Restarted (a newer incarnation, or
 * RESTARTING): the call is queued again, in order, if max_task_retries allows, else it fails with
 * ACTOR_DIED; DEAD: every call fails with ACTOR_DIED and the reason the GCS gives; still ALIVE at
 * the same address once the long poll expires: the call is pushed again with its number. A retried
 * call may run after calls made later than it (Ray's ordering is the same across restarts).
 * A failed poll (the GCS is down, or restarting) is retried every 200 ms; calls to a live address
 * go on meanwhile, and once the GCS has not answered for gcs_rpc_reconnect_timeout_ms the calls
 * that need its word (no address, or in limbo) fail with UNAVAILABLE.
 *
 * All of this runs under cw->mu: the API on the user's threads, replies on the rpc client thread.
 */
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cw_actor_client cw_actor_client_t;

typedef struct cw_actor_call {
  cw_task_t t; /* first: cw_task_free() frees the whole record */
  cw_actor_client_t *a;
  struct cw_actor_call *next; /* in a->queue or a->limbo */
  uint64_t order;             /* submission order */
  uint64_t seq;               /* its number for incarnation */
  int incarnation;            /* -1 until first pushed */
  int refused;                /* the worker refused it (ACTOR_DIED): it never ran */
} cw_actor_call_t;

struct cw_actor_client {
  cw_t *cw; /* the core worker that calls it (callbacks find it here) */
  uint8_t id[ID_ACTOR_SIZE];
  int state; /* rayc_actor_state; -1 until the GCS answered */
  uint64_t version;
  int incarnation;
  int have_addr, broken;
  char target[96];
  rpc_channel_t *ch; /* a ref held (rpc_channel_ref) while the actor is not DEAD: see client_alive */
  uint64_t next_seq;
  cw_actor_call_t *queue, *queue_tail; /* not pushed yet, by order */
  size_t queued;                       /* calls in queue */
  int max_concurrency;                 /* the actor's (1: its calls run one at a time, in order) */
  cw_actor_call_t *limbo;              /* push failed; waiting for the GCS's word */
  int in_flight;
  int polling;
  int64_t poll_retry_ms;     /* a failed poll is retried from the background thread */
  int64_t gcs_down_since_ms; /* polls have failed since then (0: the last one succeeded) */
  int max_task_retries;
  int held;  /* in cw_actors.held: ready calls wait for a whole batch (actor_takes) */
  int flush; /* cw_actors_flush: push what is ready now, whole batch or not */
  char *class_name;
  char *death_msg; /* DEAD: the error text of every call */
  char *last_loss; /* why its last worker was lost (after a restart) */
};

struct cw_actors {
  hmap_t by_id;
  rpc_channel_t *gcs;
  uint64_t next_order;
  int npoll_retry;
  cw_actor_client_t **held; /* actors whose ready calls wait for a whole batch (cw_actors_flush) */
  size_t nheld, capheld;
};

static void actor_pump(cw_t *cw, cw_actor_client_t *a);
static void actor_poll(cw_t *cw, cw_actor_client_t *a);

/* ---- records ---- */

static struct cw_actors *actors_get(cw_t *cw)
{
  if (cw->actors)
    return cw->actors;
  struct cw_actors *s = xcalloc(1, sizeof(*s));
  hmap_init(&s->by_id);
  if (!cw->is_worker && cw->gcs) {
    s->gcs = cw->gcs;
  } else {
    char *addr = cw_actor_gcs_address(cw);
    if (addr)
      s->gcs = rpc_channel_get(cw->client, addr);
    else
      log_error("actors: cannot find the GCS (no session address file, no RAYC_ADDRESS)");
    free(addr);
  }
  cw->actors = s;
  return s;
}

rpc_channel_t *cw_actors_gcs(cw_t *cw)
{
  pthread_mutex_lock(&cw->mu);
  rpc_channel_t *ch = actors_get(cw)->gcs;
  pthread_mutex_unlock(&cw->mu);
  if (!ch)
    cw_set_error(RAYC_ENOT_CONNECTED, "this process does not know the address of the cluster's GCS");
  return ch;
}

static cw_actor_client_t *client_get_at(cw_t *cw, const uint8_t *id, uint64_t version)
{
  struct cw_actors *s = actors_get(cw);
  cw_actor_client_t *a = hmap_get(&s->by_id, id, ID_ACTOR_SIZE);
  if (a)
    return a;
  a = xcalloc(1, sizeof(*a));
  a->cw = cw;
  memcpy(a->id, id, ID_ACTOR_SIZE);
  a->state = version ? RAYC_ACTOR_PENDING_CREATION : -1;
  a->version = version;
  a->incarnation = -1;
  hmap_put(&s->by_id, id, ID_ACTOR_SIZE, a);
  actor_poll(cw, a);
  return a;
}

static cw_actor_client_t *client_get(cw_t *cw, const uint8_t *id)
{
  return client_get_at(cw, id, 0);
}

static void call_fail(cw_t *cw, cw_actor_call_t *c, int err, const char *msg)
{
  cw_task_fail(cw, &c->t, err, msg);
}

/* Inserts c by submission order (retries go back in front of later calls). */
static void queue_insert(cw_actor_client_t *a, cw_actor_call_t *c)
{
  a->queued++;
  if (!a->queue || a->queue_tail->order < c->order) {
    c->next = NULL;
    if (a->queue_tail)
      a->queue_tail->next = c;
    else
      a->queue = c;
    a->queue_tail = c;
    return;
  }
  cw_actor_call_t **pp = &a->queue;
  while (*pp && (*pp)->order < c->order)
    pp = &(*pp)->next;
  c->next = *pp;
  *pp = c;
}

static cw_actor_call_t *queue_pop(cw_actor_client_t *a)
{
  cw_actor_call_t *c = a->queue;
  a->queue = c->next;
  if (!a->queue)
    a->queue_tail = NULL;
  c->next = NULL;
  a->queued--;
  return c;
}

static void queue_remove(cw_actor_client_t *a, cw_actor_call_t *c)
{
  cw_actor_call_t *prev = NULL;
  for (cw_actor_call_t *p = a->queue; p; prev = p, p = p->next)
    if (p == c) {
      if (prev)
        prev->next = c->next;
      else
        a->queue = c->next;
      if (a->queue_tail == c)
        a->queue_tail = prev;
      c->next = NULL;
      a->queued--;
      return;
    }
}

/* Fails every call of a (with err and msg); one still waiting for an argument fails when the
 * argument is ready, unless all is set (shutdown: its arguments are gone). */
static void client_fail_calls(cw_t *cw, cw_actor_client_t *a, int all, int err, const char *msg)
{
  while (a->limbo) {
    cw_actor_call_t *c = a->limbo;
    a->limbo = c->next;
    call_fail(cw, c, err, msg);
  }
  while (a->queue) {
    cw_actor_call_t *c = queue_pop(a);
    if (c->t.deps_pending > 0 && !all) { /* still a waiter of its arguments: fails when they are ready */
      c->t.dep_err = err;
      free(c->t.dep_err_msg);
      c->t.dep_err_msg = xstrdup(msg);
      continue;
    }
    call_fail(cw, c, err, msg);
  }
}

/* Fails every call of a dead actor. */
static void client_fail_all(cw_t *cw, cw_actor_client_t *a, int all)
{
  client_fail_calls(cw, a, all, RAYC_EACTOR_DIED, a->death_msg);
}

/* The GCS has not answered a's polls for longer than gcs_rpc_reconnect_timeout_ms: calls that
 * need its word (no address yet, or their push failed) fail; calls to a known live address go on,
 * and so does the poll (the actor may well be fine). */
static void client_gcs_gone(cw_t *cw, cw_actor_client_t *a, int64_t now)
{
  int stuck = a->limbo || (a->queue && !(a->state == RAYC_ACTOR_ALIVE && a->have_addr && !a->broken));
  if (!a->gcs_down_since_ms)
    a->gcs_down_since_ms = now;
  if (!stuck || now - a->gcs_down_since_ms < cw->gcs_reconnect_timeout_ms)
    return;
  char hex[9];
  char *msg = xasprintf("actor %s (%s): the GCS did not answer for %d ms (gcs_rpc_reconnect_timeout_ms, "
                        "RAYC_GCS_RPC_RECONNECT_TIMEOUT_MS), so where the actor runs is unknown",
                        id_short(a->id, ID_ACTOR_SIZE, hex), a->class_name ? a->class_name : "?",
                        cw->gcs_reconnect_timeout_ms);
  log_warn("%s: failing its waiting calls", msg);
  client_fail_calls(cw, a, 0, RAYC_EUNAVAILABLE, msg);
  free(msg);
}

/* ---- pushing calls ---- */

/* The worker a call was pushed to is gone and the actor lives on: retry the call or fail it. */
static void call_retry_or_fail(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t *c)
{
  char hex[9];
  if (c->refused || a->max_task_retries < 0 || c->t.attempt < a->max_task_retries) {
    c->t.attempt += !c->refused; /* a call the worker refused never ran: no retry is used up */
    c->refused = 0;
    queue_insert(a, c);
    return;
  }
  char *msg = xasprintf("actor %s (%s) lost the worker running call '%s' (%s); the call has no retries left "
                        "(max_task_retries %d)",
                        id_short(a->id, ID_ACTOR_SIZE, hex), a->class_name ? a->class_name : "?", c->t.fn,
                        a->last_loss && *a->last_loss ? a->last_loss : "its worker died", a->max_task_retries);
  call_fail(cw, c, RAYC_EACTOR_DIED, msg);
  free(msg);
}

/* A push failed: decide now if the GCS already told us what happened, else park the call. */
static void call_lost(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t *c)
{
  if (a->state == RAYC_ACTOR_DEAD) {
    call_fail(cw, c, RAYC_EACTOR_DIED, a->death_msg);
  } else if (c->incarnation < a->incarnation || !a->have_addr) {
    call_retry_or_fail(cw, a, c);
  } else {
    a->broken = 1;
    cw_actor_call_t **pp = &a->limbo;
    while (*pp && (*pp)->order < c->order)
      pp = &(*pp)->next;
    c->next = *pp;
    *pp = c;
    actor_poll(cw, a);
  }
}

/* One call's reply (status 0: rep), from its PushTask or its entry of a PushTasks. */
static void call_settle(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t *c, int status, const char *detail,
                        const Rayc__PushTaskReply *rep)
{
  a->in_flight--;
  if (status == 0) {
    cw_apply_returns(cw, &c->t, rep);
    cw_task_free(cw, &c->t);
  } else if (cw->stopping || cw->client_closing) {
    call_fail(cw, c, RAYC_ECANCELLED, "the caller is shutting down");
  } else {
    char hex[9];
    log_debug("actor %s: call %s failed: %s (%s)", id_short(a->id, ID_ACTOR_SIZE, hex), c->t.fn, rayc_strerror(status),
              detail);
    c->refused = status == RAYC_EACTOR_DIED;
    call_lost(cw, a, c);
  }
}

static void push_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_actor_call_t *c = arg;
  cw_t *cw = c->a->cw;
  pthread_mutex_lock(&cw->mu);
  cw_wake_hold(cw); /* the caller's get wakes after cw->mu is let go, not into a held mutex */
  cw_actor_client_t *a = c->a;
  call_settle(cw, a, c, status, detail, (const Rayc__PushTaskReply *)resp);
  if (!cw->stopping)
    actor_pump(cw, a);
  int wake = cw_wake_take(cw);
  pthread_mutex_unlock(&cw->mu);
  cw_wake_release(cw, wake);
  pb_free(resp);
}

/* A PushTasks call of actor calls in flight: its calls in the order sent. */
typedef struct call_batch {
  cw_actor_client_t *a;
  size_t n;
  cw_actor_call_t *c[];
} call_batch_t;

static void batch_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  call_batch_t *b = arg;
  cw_actor_client_t *a = b->a;
  cw_t *cw = a->cw;
  Rayc__PushTaskReply *r[CW_PUSH_BATCH_MAX_LIMIT] = {0}; /* b->n <= CW_PUSH_BATCH_MAX_LIMIT */
  int st[CW_PUSH_BATCH_MAX_LIMIT];
  const char *why[CW_PUSH_BATCH_MAX_LIMIT];
  pb_arena_t arena; /* the entries, freed at once */
  cw_push_arena_init(&arena, status == 0 ? (const Rayc__PushTasksReply *)resp : NULL);
  for (size_t i = 0; i < b->n; i++) /* unpacked before cw->mu is taken */
    if (status == 0)
      r[i] = cw_push_batch_entry((const Rayc__PushTasksReply *)resp, i, &arena, &st[i], &why[i]);
    else
      st[i] = status, why[i] = detail;
  pthread_mutex_lock(&cw->mu);
  cw_wake_hold(cw);
  for (size_t i = 0; i < b->n; i++) /* in the order sent: retries go back in order */
    call_settle(cw, a, b->c[i], st[i], why[i], r[i]);
  if (!cw->stopping)
    actor_pump(cw, a);
  int wake = cw_wake_take(cw);
  pthread_mutex_unlock(&cw->mu);
  cw_wake_release(cw, wake);
  pb_arena_release(&arena);
  pb_free(resp);
  free(b);
}

/* Fills spec with call c (numbering it for the actor's incarnation on its first push there);
 * args holds the argument messages (cw_args_msg_free). */
static void call_spec_build(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t *c, Rayc__Address *caller,
                            Rayc__TaskSpec *spec, cw_args_msg_t *args)
{
  if (c->incarnation != a->incarnation) {
    c->incarnation = a->incarnation;
    c->seq = a->next_seq++;
  }
  rayc__task_spec__init(spec);
  spec->task_id = pb_bytes(c->t.id.b, ID_TASK_SIZE);
  spec->job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  spec->type = RAYC__TASK_TYPE__ACTOR_TASK;
  spec->function_name = c->t.fn;
  spec->name = c->t.name;
  spec->num_returns = c->t.num_returns;
  spec->streaming = c->t.streaming;
  spec->attempt = c->t.attempt;
  spec->caller = caller;
  spec->n_args = c->t.nargs;
  cw_args_msg_build(cw, &c->t, caller, args);
  spec->args = args->ptrs;
  spec->actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  spec->actor_class = a->class_name ? a->class_name : (char *)"";
  spec->sequence_number = c->seq;
  spec->actor_incarnation = c->incarnation;
}

static void call_push(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t *c)
{
  Rayc__PushTaskRequest req = RAYC__PUSH_TASK_REQUEST__INIT;
  Rayc__TaskSpec spec;
  Rayc__Address caller = RAYC__ADDRESS__INIT;
  cw_args_msg_t args;
  cw_fill_address(cw, &caller);
  call_spec_build(cw, a, c, &caller, &spec, &args);
  req.task = &spec;
  a->in_flight++;
  if (rpc_call(a->ch, &rayc__core_worker_service__descriptor, "PushTask", &req.base, -1, push_done, c) != 0) {
    a->in_flight--;
    call_fail(cw, c, RAYC_ECANCELLED, "the actor call could not be started (the caller is shutting down)");
  }
  cw_args_msg_free(&args);
}

/* Several calls in one PushTasks; the worker answers each entry as it would the call's PushTask. */
static void batch_push(cw_t *cw, cw_actor_client_t *a, cw_actor_call_t **cs, size_t n)
{
  Rayc__PushTasksRequest req = RAYC__PUSH_TASKS_REQUEST__INIT;
  Rayc__TaskSpec *specs = xmalloc(n * sizeof(*specs)), **ptrs = xmalloc(n * sizeof(*ptrs));
  cw_args_msg_t *args = xmalloc(n * sizeof(*args));
  Rayc__Address caller = RAYC__ADDRESS__INIT;
  cw_fill_address(cw, &caller);
  call_batch_t *b = xmalloc(sizeof(*b) + n * sizeof(b->c[0]));
  b->a = a;
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    call_spec_build(cw, a, cs[i], &caller, &specs[i], &args[i]);
    ptrs[i] = &specs[i];
    b->c[i] = cs[i];
  }
  req.tasks = ptrs;
  req.n_tasks = n;
  a->in_flight += (int)n;
  if (rpc_call(a->ch, &rayc__core_worker_service__descriptor, "PushTasks", &req.base, -1, batch_done, b) != 0) {
    a->in_flight -= (int)n;
    for (size_t i = 0; i < n; i++)
      call_fail(cw, cs[i], RAYC_ECANCELLED, "the actor call could not be started (the caller is shutting down)");
    free(b);
  }
  for (size_t i = 0; i < n; i++)
    cw_args_msg_free(&args[i]);
  free(args);
  free(ptrs);
  free(specs);
}

/* A call that travels alone: streaming, or its arguments lend refs it could wait on (a batch-mate's
 * result would come back only with the batch's reply, which waits for this call). */
static int call_goes_alone(cw_t *cw, const cw_actor_call_t *c)
{
  return c->a->max_concurrency > 1 || c->t.streaming || cw_task_lends_refs(cw, &c->t);
}

/* Whether a takes more calls now. An actor that runs its calls one at a time and still has half a
 * batch or more to run takes a whole batch or nothing: pushing whenever a reply frees a place
 * would send one call per push for ever. Calls of an actor with max_concurrency > 1 go at once
 * (they may wait on each other), and so does what is ready when the caller waits (a->flush). */
static int actor_takes(cw_t *cw, const cw_actor_client_t *a)
{
  size_t batch = (size_t)cw->push_batch_max;
  if (a->in_flight >= CW_ACTOR_MAX_IN_FLIGHT)
    return 0;
  return a->max_concurrency > 1 || a->flush || (size_t)a->in_flight * 2 <= batch || a->queued >= batch;
}

/* a holds ready calls back for a whole batch: cw_actors_flush pushes them if the caller waits. */
static void actor_hold(struct cw_actors *s, cw_actor_client_t *a)
{
  if (a->held)
    return;
  if (s->nheld == s->capheld) {
    s->capheld = s->capheld ? 2 * s->capheld : 8;
    s->held = xrealloc(s->held, s->capheld * sizeof(*s->held));
  }
  a->held = 1;
  s->held[s->nheld++] = a;
}

/* Pushes the queue's head with the ready calls behind it (up to cw->push_batch_max, about
 * CW_PUSH_BATCH_BYTES of arguments, and the in-flight bound). */
static void actor_push_queued(cw_t *cw, cw_actor_client_t *a)
{
  cw_actor_call_t *cs[CW_PUSH_BATCH_MAX_LIMIT];
  size_t n = 0, bytes = 0;
  int max = cw->push_batch_max < CW_PUSH_BATCH_MAX_LIMIT ? cw->push_batch_max : CW_PUSH_BATCH_MAX_LIMIT;
  do {
    cw_actor_call_t *c = queue_pop(a);
    cs[n++] = c;
    bytes += cw_task_arg_bytes(cw, &c->t);
    if (call_goes_alone(cw, c))
      break;
  } while ((int)n < max && bytes < CW_PUSH_BATCH_BYTES && a->queue && a->queue->t.deps_pending == 0 &&
           !a->queue->t.dep_err && !call_goes_alone(cw, a->queue) && a->in_flight + (int)n < CW_ACTOR_MAX_IN_FLIGHT);
  if (n == 1)
    call_push(cw, a, cs[0]);
  else
    batch_push(cw, a, cs, n);
}

static void actor_pump(cw_t *cw, cw_actor_client_t *a)
{
  if (a->state == RAYC_ACTOR_DEAD) {
    client_fail_all(cw, a, 0);
    return;
  }
  while (a->queue && a->state == RAYC_ACTOR_ALIVE && a->have_addr && !a->broken &&
         a->in_flight < CW_ACTOR_MAX_IN_FLIGHT && !cw->client_closing) {
    cw_actor_call_t *c = a->queue;
    if (c->t.deps_pending > 0)
      break;
    if (c->t.dep_err) {
      queue_pop(a);
      call_fail(cw, c, c->t.dep_err, c->t.dep_err_msg);
    } else if (!actor_takes(cw, a)) {
      actor_hold(cw->actors, a);
      break;
    } else {
      actor_push_queued(cw, a);
    }
  }
}

/* A call's last pending argument is ready (cw_task_ready). */
static void call_on_ready(cw_t *cw, cw_task_t *t)
{
  cw_actor_call_t *c = (cw_actor_call_t *)t;
  if (t->dep_err) {
    queue_remove(c->a, c);
    call_fail(cw, c, t->dep_err, t->dep_err_msg);
    return;
  }
  actor_pump(cw, c->a);
}

/* ---- following the actor's state in the GCS ---- */

static const char *state_name(int s)
{
  static const char *const names[] = {"PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"};
  return s >= 0 && s <= 3 ? names[s] : "UNKNOWN";
}

static void set_str(char **p, const char *v)
{
  free(*p);
  *p = v && *v ? xstrdup(v) : NULL;
}

static void client_set_dead(cw_actor_client_t *a, const char *why)
{
  char hex[33];
  a->state = RAYC_ACTOR_DEAD;
  a->have_addr = 0;
  rpc_channel_unref(a->ch); /* an ended channel is freed by the client's next sweep, or now */
  a->ch = NULL;
  free(a->death_msg);
  a->death_msg = xasprintf("actor %s (%s) is dead: %s", id_hex(a->id, ID_ACTOR_SIZE, hex),
                           a->class_name ? a->class_name : "?", why && *why ? why : "no reason given");
}

/* The actor has a (new) worker address, or the same one still. */
static void client_alive(cw_t *cw, cw_actor_client_t *a, const Rayc__ActorInfo *info)
{
  if (info->num_restarts != a->incarnation) { /* a new worker: numbering starts again */
    a->incarnation = info->num_restarts;
    a->next_seq = 0;
  }
  snprintf(a->target, sizeof(a->target), "%s:%d", info->address->ip, info->address->port);
  /* A direct channel (rpc.h): an actor's worker is reached at this address for its life and never
   * after, and an ordinary channel's resolver, balancer, subchannel and second channel stack cost
   * the creator ~0.8 M instructions per actor (docs/PERFORMANCE.md, session 13). The record keeps
   * the pointer across calls, so it holds a ref: a later get of the same address (a new worker on
   * a reused port) replaces an ended channel without freeing it under this record. */
  rpc_channel_t *ch = rpc_channel_get_direct(cw->client, a->target);
  rpc_channel_ref(ch);
  rpc_channel_unref(a->ch);
  a->ch = ch;
  a->have_addr = 1;
  a->broken = 0;
  cw_actor_call_t *limbo = a->limbo;
  a->limbo = NULL;
  while (limbo) {
    cw_actor_call_t *c = limbo;
    limbo = c->next;
    if (c->incarnation < a->incarnation)
      call_retry_or_fail(cw, a, c);
    else
      queue_insert(a, c); /* same worker, still alive: push again with the same number */
  }
}

static void client_apply(cw_t *cw, cw_actor_client_t *a, const Rayc__ActorInfo *info)
{
  a->version = info->version;
  a->max_task_retries = info->max_task_retries;
  a->max_concurrency = info->max_concurrency;
  set_str(&a->last_loss, info->death_message);
  if (!a->class_name && info->class_name && *info->class_name)
    a->class_name = xstrdup(info->class_name);
  int st = (int)info->state;
  if (st == RAYC_ACTOR_ALIVE && (!info->address || !info->address->ip || info->address->port <= 0))
    st = RAYC_ACTOR_PENDING_CREATION;
  a->state = st;
  if (st == RAYC_ACTOR_ALIVE) {
    client_alive(cw, a, info);
  } else if (st == RAYC_ACTOR_DEAD) {
    client_set_dead(a, info->death_message);
  } else {
    a->have_addr = 0;
    cw_actor_call_t *limbo = a->limbo;
    a->limbo = NULL;
    while (limbo) {
      cw_actor_call_t *c = limbo;
      limbo = c->next;
      call_retry_or_fail(cw, a, c);
    }
  }
}

static void poll_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_actor_client_t *a = arg;
  cw_t *cw = a->cw;
  char hex[9];
  pthread_mutex_lock(&cw->mu);
  a->polling = 0;
  Rayc__GetActorInfoReply *rep = (Rayc__GetActorInfoReply *)resp;
  if (status == 0)
    a->gcs_down_since_ms = 0;
  if (status == 0 && rep->actor) {
    int before = a->state;
    client_apply(cw, a, rep->actor);
    if (before != a->state)
      log_debug("actor %s: %s", id_short(a->id, ID_ACTOR_SIZE, hex), state_name(a->state));
  } else if (status == RAYC_ENOT_FOUND) {
    client_set_dead(a, "the GCS does not know this actor");
  } else if (!cw->stopping && !cw->client_closing) {
    log_debug("actor %s: asking the GCS failed: %s (%s); retrying", id_short(a->id, ID_ACTOR_SIZE, hex),
              rayc_strerror(status), detail);
    a->poll_retry_ms = now_ms() + CW_ACTOR_GCS_RETRY_MS;
    cw->actors->npoll_retry++;
    cw_bg_kick_locked(cw); /* a worker's background thread may be asleep (cw_bg.c) */
    client_gcs_gone(cw, a, now_ms());
  }
  pb_free(resp);
  if (!cw->stopping && !cw->client_closing) {
    if (status == 0)
      actor_poll(cw, a);
    actor_pump(cw, a);
  }
  pthread_mutex_unlock(&cw->mu);
}

static void actor_poll(cw_t *cw, cw_actor_client_t *a)
{
  struct cw_actors *s = cw->actors;
  if (a->polling || a->state == RAYC_ACTOR_DEAD || cw->stopping || cw->client_closing || !s->gcs || a->poll_retry_ms)
    return;
  Rayc__GetActorInfoRequest req = RAYC__GET_ACTOR_INFO_REQUEST__INIT;
  req.actor_id = pb_bytes(a->id, ID_ACTOR_SIZE);
  req.known_version = a->version;
  req.wait_ms = CW_ACTOR_POLL_MS;
  if (rpc_call(s->gcs, &rayc__actor_info_gcs_service__descriptor, "GetActorInfo", &req.base, CW_ACTOR_POLL_MS + 10000,
               poll_done, a) == 0)
    a->polling = 1;
}

int cw_actors_retry_pending(const cw_t *cw)
{
  return cw->actors && cw->actors->npoll_retry > 0;
}

void cw_actors_tick(cw_t *cw)
{
  struct cw_actors *s = cw->actors;
  if (!s || s->npoll_retry == 0)
    return;
  int64_t now = now_ms();
  s->npoll_retry = 0;
  for (hmap_iter_t it = hmap_iter(&s->by_id); hmap_next(&it);) {
    cw_actor_client_t *a = it.value;
    if (!a->poll_retry_ms)
      continue;
    if (now < a->poll_retry_ms) {
      s->npoll_retry++;
      continue;
    }
    a->poll_retry_ms = 0;
    actor_poll(cw, a);
  }
}

/* Whether one of a's queued calls returns one of refs (its object ids begin with the task id). */
static int actor_queue_returns(const cw_actor_client_t *a, const rayc_ref *refs, size_t n)
{
  for (const cw_actor_call_t *c = a->queue; c; c = c->next)
    for (size_t i = 0; i < n; i++)
      if (memcmp(refs[i].id, c->t.id.b, ID_TASK_SIZE) == 0)
        return 1;
  return 0;
}

/* A thread waits for refs (rayc_get, rayc_wait): the actors holding back, for a whole batch, a
 * call that returns one of them push what they hold now. The batch rule waits for calls still to
 * be made, and a caller that waits for them makes none: without this an actor's last few calls
 * (fewer than a batch) went only once every call before them had returned, a round trip after
 * the actor ran dry. Calls the caller does not wait for stay held (a held queue is shorter than
 * a batch, so the scan is short). */
void cw_actors_flush(cw_t *cw, const rayc_ref *refs, size_t n)
{
  struct cw_actors *s = cw->actors;
  if (!s || !s->nheld)
    return;
  cw_actor_client_t **held = s->held; /* a push that fails may run callbacks that hold others */
  size_t nheld = s->nheld;
  s->held = NULL;
  s->nheld = s->capheld = 0;
  for (size_t i = 0; i < nheld; i++) {
    cw_actor_client_t *a = held[i];
    a->held = 0;
    if (!actor_queue_returns(a, refs, n)) {
      actor_hold(s, a);
      continue;
    }
    a->flush = 1;
    if (!cw->stopping)
      actor_pump(cw, a);
    a->flush = 0;
  }
  free(held);
}

void cw_actors_release(cw_t *cw)
{
  struct cw_actors *s = cw->actors;
  if (s) {
    for (hmap_iter_t it = hmap_iter(&s->by_id); hmap_next(&it);) {
      cw_actor_client_t *a = it.value;
      set_str(&a->death_msg, "the caller shut down");
      a->state = RAYC_ACTOR_DEAD;
      client_fail_all(cw, a, 1);
      /* a->ch: no unref, the rpc client is destroyed already and freed every channel */
      free(a->class_name);
      free(a->death_msg);
      free(a->last_loss);
      free(a);
    }
    hmap_release(&s->by_id);
    free(s->held);
    free(s);
    cw->actors = NULL;
  }
  cw_actor_owner_release(cw);
}

void cw_actors_killed(cw_t *cw, const uint8_t *id)
{
  pthread_mutex_lock(&cw->mu);
  cw_actor_client_t *a = cw->actors ? hmap_get(&cw->actors->by_id, id, ID_ACTOR_SIZE) : NULL;
  if (a && a->state != RAYC_ACTOR_DEAD) {
    a->have_addr = 0; /* calls wait for the GCS's word (the poll answers with the kill's version) */
    actor_poll(cw, a);
  }
  pthread_mutex_unlock(&cw->mu);
}

static void cancel_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0)
    log_debug("CancelTask of an actor call failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

/* Takes the call with task id tid out of *list (queue or limbo of a), or returns NULL. */
static cw_actor_call_t *calls_take(cw_actor_client_t *a, cw_actor_call_t **list, const id_task_t *tid)
{
  for (cw_actor_call_t **pp = list; *pp; pp = &(*pp)->next) {
    cw_actor_call_t *c = *pp;
    if (memcmp(c->t.id.b, tid->b, ID_TASK_SIZE) != 0)
      continue;
    if (list == &a->queue)
      queue_remove(a, c);
    else
      *pp = c->next;
    return c;
  }
  return NULL;
}

void cw_actors_cancel(cw_t *cw, const id_task_t *tid)
{
  struct cw_actors *s = cw->actors;
  if (!s)
    return;
  for (hmap_iter_t it = hmap_iter(&s->by_id); hmap_next(&it);) {
    cw_actor_client_t *a = it.value;
    for (cw_actor_call_t *p = a->queue; p; p = p->next)
      if (memcmp(p->t.id.b, tid->b, ID_TASK_SIZE) == 0 && p->t.deps_pending > 0) {
        p->t.dep_err = RAYC_ECANCELLED; /* still a waiter of its arguments: fails when they are ready */
        free(p->t.dep_err_msg);
        p->t.dep_err_msg = xstrdup("the actor call was cancelled before it ran");
        return;
      }
    cw_actor_call_t *c = calls_take(a, &a->queue, tid);
    if (!c)
      c = calls_take(a, &a->limbo, tid);
    if (c) {
      call_fail(cw, c, RAYC_ECANCELLED, "the actor call was cancelled before it ran");
      return;
    }
  }
  /* pushed (or unknown): ask the workers of the actors with calls in flight; a worker that has it
   * queued answers it CANCELLED in its turn, the others answer attempted = false */
  Rayc__CancelTaskRequest req = RAYC__CANCEL_TASK_REQUEST__INIT;
  req.task_id = pb_bytes(tid->b, ID_TASK_SIZE);
  for (hmap_iter_t it = hmap_iter(&s->by_id); hmap_next(&it);) {
    cw_actor_client_t *a = it.value;
    if (a->in_flight > 0 && a->ch)
      rpc_call(a->ch, &rayc__core_worker_service__descriptor, "CancelTask", &req.base, 5000, cancel_done, NULL);
  }
}

void cw_actors_watch(cw_t *cw, const uint8_t *id, uint64_t version)
{
  pthread_mutex_lock(&cw->mu);
  client_get_at(cw, id, version);
  pthread_mutex_unlock(&cw->mu);
}

/* ---- rayc_actor_call ---- */

int rayc_actor_call(const rayc_actor *h, const char *method, const rayc_arg *args, size_t nargs,
                    const rayc_task_opts *opts, rayc_ref *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  int num_returns = opts ? opts->num_returns : 1;
  if (!h || !method || !*method || !out || (nargs && !args))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_actor_call: actor, method, out and args must not be NULL");
  if (num_returns < 1 || num_returns > 1000000 || (opts && opts->streaming && num_returns != 1))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "num_returns must be 1 or more (1 when streaming), got %d",
                        num_returns);
  for (size_t i = 0; i < nargs; i++) {
    if (!args[i].ref && !args[i].data && args[i].len)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "argument %zu has a length but no data", i);
    if ((args[i].nrefs && !args[i].refs) || (args[i].ref && args[i].nrefs))
      return cw_set_error(RAYC_EINVALID_ARGUMENT,
                          "argument %zu: refs must be given with nrefs, and only with a "
                          "value (a ref argument's object carries its own refs)",
                          i);
  }
  pthread_mutex_lock(&cw->mu);
  cw_actor_client_t *a = client_get(cw, h->id);
  cw_actor_call_t *c = xcalloc(1, sizeof(*c));
  cw_task_t *t = &c->t;
  t->id = id_task_random(cw->job);
  t->fn = xstrdup(method);
  t->name = xstrdup(opts && opts->name ? opts->name : method);
  t->nargs = nargs;
  t->args = xcalloc(nargs ? nargs : 1, sizeof(*t->args));
  t->num_returns = num_returns;
  t->streaming = opts && opts->streaming;
  t->on_ready = call_on_ready;
  c->a = a;
  c->incarnation = -1;
  int rc = 0;
  for (size_t i = 0; i < nargs && rc == 0; i++)
    rc = cw_add_arg(cw, t, i, &args[i]);
  if (rc != 0) {
    for (size_t i = 0; i < nargs; i++) /* undo the waiter entries of this call */
      if (!t->args[i].value) {
        cw_object_t *o = cw_obj_get(cw, &t->args[i].ref);
        for (size_t k = 0; o && k < o->nwaiters; k++)
          if (o->waiters[k] == t)
            o->waiters[k] = o->waiters[--o->nwaiters];
      }
    cw_task_free(cw, t);
    pthread_mutex_unlock(&cw->mu);
    return rc;
  }
  for (int i = 0; i < num_returns; i++) {
    id_object_t id = id_object_for_task(t->id, (uint32_t)i + 1);
    cw_obj_new(cw, &id)->local_refs = 1;
    memcpy(out[i].id, id.b, ID_OBJECT_SIZE);
  }
  c->order = cw->actors->next_order++;
  queue_insert(a, c);
  actor_pump(cw, a);
  pthread_mutex_unlock(&cw->mu);
  return 0;
}
