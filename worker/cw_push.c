/*
 * Pushing tasks to leased workers (Ray's direct task submission; the queues and leases are in
 * cw_submit.c).
 *
 * A lease takes queued tasks while the pipelining rules let it (cw_lease_takes: an idle worker
 * at once; a busy one up to CW_MAX_IN_FLIGHT while more tasks wait than lease requests are on
 * their way, only for a class whose tasks are known to run short and while the worker keeps up,
 * and, while it has half a batch or more still to run, only a whole batch at a time). What it takes at once goes in one call: a lone task by PushTask, several by PushTasks (up
 * to cw->push_batch_max tasks and about CW_PUSH_BATCH_BYTES of arguments), whose reply carries
 * one PushTaskReply per task, applied here exactly as a PushTask reply is. Only tasks already
 * queued are batched: nothing waits to fill a batch. A task whose arguments carry refs (nested in a
 * value or in an object it takes by reference) travels alone: it could wait on a batch-mate's
 * result, which only the batch's reply delivers. A task with no retries left travels alone,
 * because a batch's results come back together: a worker that dies mid-batch loses the results
 * of the tasks it had finished too, and those are run again (cw_task_worker_died).
 *
 * Every function here runs with cw->mu held (the RPC callbacks take it).
 */
#include "worker/cw.h"
#include "worker/cw_events.h"

#include "common/hmap.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

int cw_push_batch_max(void)
{
  const char *v = getenv("RAYC_PUSH_BATCH_MAX");
  long n = v && *v ? strtol(v, NULL, 10) : 0;
  return n >= 1 && n <= 64 ? (int)n : CW_PUSH_BATCH_MAX;
}

int cw_pipeline_any(void)
{
  const char *v = getenv("RAYC_PIPELINE");
  return v && strcmp(v, "any") == 0;
}

void cw_apply_returns(cw_t *cw, cw_task_t *t, const Rayc__PushTaskReply *rep)
{
  for (size_t i = 0; i < rep->n_returns; i++) {
    Rayc__ReturnObject *r = rep->returns[i];
    if (r->object_id.len != ID_OBJECT_SIZE)
      continue;
    cw_object_t *o = cw_obj_get(cw, (const id_object_t *)r->object_id.data);
    if (!o || o->owner || o->state != OBJ_PENDING) {
      if (r->n_nested_refs) /* not taken: undo what the worker registered for us */
        cw_borrow_apply_result(cw, NULL, r->nested_refs, r->n_nested_refs);
      continue;
    }
    if (r->n_nested_refs) /* before the object is ready (and could be freed) */
      cw_borrow_apply_result(cw, r->error ? NULL : o, r->nested_refs, r->n_nested_refs);
    if (r->error) {
      char node[9], worker[9];
      char *msg = xasprintf(
          "task %s failed on node %s, worker %s: %s", r->error->function_name,
          r->error->node_id.len ? id_short(r->error->node_id.data, r->error->node_id.len, node) : "?",
          r->error->worker_id.len ? id_short(r->error->worker_id.data, r->error->worker_id.len, worker) : "?",
          r->error->message);
      cw_obj_set_error(cw, o, r->error->code ? r->error->code : RAYC_ETASK_FAILED, msg);
      free(msg);
    } else if (r->in_store && r->node_id.len == ID_NODE_SIZE) {
      cw_obj_set_store(cw, o, (const id_node_t *)r->node_id.data, r->size, r->store_address);
    } else {
      cw_obj_set_inline(cw, o, r->data.data, r->data.len);
    }
  }
  (void)t;
}

static int cw_reply_failed(const Rayc__PushTaskReply *rep)
{
  for (size_t i = 0; i < rep->n_returns; i++)
    if (rep->returns[i]->error && rep->returns[i]->error->code == RAYC_ETASK_FAILED)
      return 1;
  return 0;
}

/* The attempt ran: its end event, carrying when it started, at the place the worker reported. */
static void cw_push_events(cw_t *cw, cw_task_t *t, cw_lease_t *l, const Rayc__PushTaskReply *rep)
{
  if (!rep->start_us)
    return;
  const char *err = NULL;
  for (size_t i = 0; i < rep->n_returns && !err; i++)
    if (rep->returns[i]->error)
      err = rep->returns[i]->error->message;
  cw_event_record_at(cw, t->id.b, t->attempt, t->name, RAYC__TASK_TYPE__NORMAL_TASK, NULL,
                     err ? RAYC__TASK_STATUS__FAILED : RAYC__TASK_STATUS__FINISHED, err, rep->end_us, rep->start_us,
                     l->node_id.b, l->worker_id.b, rep->worker_pid);
}

/* Run times per function, per class (cw_lease_runs_short): the slots of the last CW_RUN_SLOTS
 * functions that ran, by a hash of the name (a collision only mixes two functions' averages). */
static uint64_t cw_fn_hash(const char *fn)
{
  uint64_t h = hmap_hash(fn, strlen(fn));
  return h ? h : 1; /* 0 marks a free slot */
}

static struct cw_fn_run *cw_fn_run_find(cw_class_t *c, uint64_t h)
{
  for (size_t i = 0; i < CW_RUN_SLOTS; i++)
    if (c->runs[i].fn == h)
      return &c->runs[i];
  return NULL;
}

static void cw_class_note_run(cw_class_t *c, const char *fn, int64_t us)
{
  uint64_t h = cw_fn_hash(fn);
  struct cw_fn_run *r = cw_fn_run_find(c, h);
  if (r) {
    r->run_us = (7 * r->run_us + us) / 8;
    return;
  }
  r = &c->runs[c->runs_next++ % CW_RUN_SLOTS];
  r->fn = h;
  r->run_us = us;
}

/* How long t should run if it is known to run short; -1 if not. */
static int64_t cw_task_expect(cw_class_t *c, const cw_task_t *t)
{
  const struct cw_fn_run *r = cw_fn_run_find(c, cw_fn_hash(t->fn));
  return r && r->run_us <= CW_PIPELINE_RUN_US ? r->run_us : -1;
}

/* Counts t into (d 1) or out of (d -1) what lease l has in flight: its expected run, or one more
 * task not known to run short (cw_lease_runs_short). */
static void cw_lease_count(cw_lease_t *l, const cw_task_t *t, int d)
{
  if (t->expect_us < 0)
    l->long_in_flight += d;
  else
    l->expect_us += d * t->expect_us;
}

/* One task's reply (status 0: rep; else the call failed: the worker is gone). */
static void cw_push_settle(cw_t *cw, cw_task_t *t, cw_lease_t *l, int status, const char *detail,
                           const Rayc__PushTaskReply *rep)
{
  cw_class_t *c = t->cls;
  t->lease = NULL;
  l->in_flight--;
  l->progress_us = now_us();
  cw_lease_count(l, t, -1);
  if (status == 0 && rep->start_us && rep->end_us >= rep->start_us)
    cw_class_note_run(c, t->fn, rep->end_us - rep->start_us);
  if (status == 0 && rep->worker_exiting)
    l->dead = 1; /* its node drains: no more tasks there; the lease goes back when these are done */
  if (status == 0 && rep->lease_wanted)
    l->wanted = 1;
  if (status == 0 && t->retry_exceptions && t->attempts_left > 0 && cw_reply_failed(rep) && !cw->stopping &&
      !t->cancelled) {
    cw_push_events(cw, t, l, rep);
    t->attempts_left--;
    t->attempt++;
    cw_class_push_front(c, t);
  } else if (status == 0) {
    cw_push_events(cw, t, l, rep);
    cw_apply_returns(cw, t, rep);
    cw_lineage_keep_or_free(cw, t);
  } else {
    l->dead = 1;
    cw_task_worker_died(cw, t, l, status, detail); /* cw_oom.c: asks its raylet why, then retries or fails */
  }
}

/* After a reply: an idle lease is kept for more tasks or returned; what is queued is pushed. */
static void cw_push_after(cw_t *cw, cw_class_t *c, cw_lease_t *l)
{
  if (l->in_flight == 0) {
    l->idle_since_ms = now_ms();
    /* others wait for workers (lease_wanted): no idle hold when nothing more is queued here */
    if (l->dead || c->strategy == RAYC_STRATEGY_SPREAD || (l->wanted && !c->head))
      cw_lease_remove(cw, l, l->dead);
  }
  if (!cw->stopping)
    cw_pump(cw, c);
}

static void cw_push_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_task_t *t = arg;
  cw_t *cw = t->cls->cw;
  pthread_mutex_lock(&cw->mu);
  cw_wake_hold(cw);
  cw_lease_t *l = t->lease;
  cw_class_t *c = t->cls;
  cw_push_settle(cw, t, l, status, detail, (const Rayc__PushTaskReply *)resp);
  cw_push_after(cw, c, l);
  int wake = cw_wake_take(cw);
  pthread_mutex_unlock(&cw->mu);
  cw_wake_release(cw, wake);
  pb_free(resp);
}

/* A PushTasks call in flight: its tasks in the order sent. */
typedef struct cw_batch {
  cw_lease_t *l;
  cw_class_t *c;
  size_t n;
  cw_task_t *t[];
} cw_batch_t;

/* A batch's entries are unpacked into one arena (common/pb_arena.c) and dropped together once
 * applied: no allocation and free per field of every entry. */
void cw_push_arena_init(pb_arena_t *arena, const Rayc__PushTasksReply *rep)
{
  size_t bytes = 0, n = rep ? rep->n_replies : 0;
  for (size_t i = 0; i < n; i++)
    bytes += rep->replies[i].len;
  pb_arena_init(arena, 4 * bytes + 256 * n); /* unpacked, an entry takes a few times its bytes */
}

/* Entry i of a PushTasks reply, unpacked into arena; *status is 0, or, with *why, the status the
 * task's own PushTask would have got: the worker refused it or did not run it (push_error), or
 * the entry is missing or malformed (RAYC_EUNAVAILABLE: the worker is gone). */
Rayc__PushTaskReply *cw_push_batch_entry(const Rayc__PushTasksReply *rep, size_t i, pb_arena_t *arena, int *status,
                                         const char **why)
{
  Rayc__PushTaskReply *r = i < rep->n_replies ? rayc__push_task_reply__unpack(&arena->alloc, rep->replies[i].len,
                                                                              rep->replies[i].data)
                                              : NULL;
  *status = 0;
  if (r && r->n_returns > 0 && !r->push_error)
    return r;
  *status = r && r->push_error ? r->push_error : RAYC_EUNAVAILABLE;
  *why = !r                         ? "the worker's PushTasks reply has no entry, or a malformed one, for this task"
         : r->push_error_message[0] ? r->push_error_message
                                    : "the worker did not run the task";
  return r;
}

static void cw_batch_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_batch_t *b = arg;
  cw_t *cw = b->c->cw;
  const Rayc__PushTasksReply *rep = (const Rayc__PushTasksReply *)resp;
  Rayc__PushTaskReply *r[CW_PUSH_BATCH_MAX_LIMIT] = {0}; /* b->n <= CW_PUSH_BATCH_MAX_LIMIT */
  int st[CW_PUSH_BATCH_MAX_LIMIT];
  const char *why[CW_PUSH_BATCH_MAX_LIMIT];
  pb_arena_t arena;
  cw_push_arena_init(&arena, status == 0 ? rep : NULL);
  for (size_t i = 0; i < b->n; i++) /* unpacked before cw->mu is taken */
    if (status == 0)
      r[i] = cw_push_batch_entry(rep, i, &arena, &st[i], &why[i]);
    else
      st[i] = status, why[i] = detail;
  pthread_mutex_lock(&cw->mu);
  cw_wake_hold(cw);
  for (size_t i = 0; i < b->n; i++)
    cw_push_settle(cw, b->t[i], b->l, st[i], why[i], r[i]);
  cw_push_after(cw, b->c, b->l);
  int wake = cw_wake_take(cw);
  pthread_mutex_unlock(&cw->mu);
  cw_wake_release(cw, wake);
  pb_arena_release(&arena);
  pb_free(resp);
  free(b);
}

/* Builds the TaskArg list: values inline; refs to inline objects become values too (Ray inlines
 * small objects into the task), refs to stored objects stay refs with their location, and
 * borrowed refs stay refs naming their owner (the worker asks it). The refs a value carries, or
 * that an inlined or stored object contains, travel as nested_refs. */
_Static_assert(sizeof(Rayc__TaskArg) % 8 == 0 && sizeof(Rayc__ObjectRefInfo) % 8 == 0 &&
                   sizeof(Rayc__Address) % 8 == 0 && sizeof(cw_nested_msg_t) % 8 == 0,
               "cw_args_msg_alloc carves its arrays from one block: each keeps the next aligned");

/* m's five arrays of n entries in one block (m->ptrs, freed by cw_args_msg_free); a call without
 * arguments (most actor calls) allocates nothing. Every member is a multiple of 8 bytes long. */
static void cw_args_msg_alloc(cw_args_msg_t *m, size_t n)
{
  memset(m, 0, sizeof(*m));
  m->n = n;
  if (!n)
    return;
  size_t s1 = n * sizeof(*m->ptrs), s2 = n * sizeof(*m->storage), s3 = n * sizeof(*m->refs),
         s4 = n * sizeof(*m->owners), s5 = n * sizeof(*m->nested);
  char *b = xcalloc(1, s1 + s2 + s3 + s4 + s5);
  m->ptrs = (Rayc__TaskArg **)(void *)b;
  m->storage = (Rayc__TaskArg *)(void *)(b + s1);
  m->refs = (Rayc__ObjectRefInfo *)(void *)(b + s1 + s2);
  m->owners = (Rayc__Address *)(void *)(b + s1 + s2 + s3);
  m->nested = (cw_nested_msg_t *)(void *)(b + s1 + s2 + s3 + s4);
}

void cw_args_msg_build(cw_t *cw, cw_task_t *t, Rayc__Address *self, cw_args_msg_t *m)
{
  cw_args_msg_alloc(m, t->nargs);
  for (size_t i = 0; i < t->nargs; i++) {
    Rayc__TaskArg *a = &m->storage[i];
    rayc__task_arg__init(a);
    m->ptrs[i] = a;
    cw_blob_t *b = t->args[i].value;
    cw_object_t *o = b ? NULL : cw_obj_get(cw, &t->args[i].ref);
    if (b)
      cw_nested_msg_build(cw, t->args[i].nested, t->args[i].nnested, &m->nested[i]);
    else if (o && !o->owner && o->x)
      cw_nested_msg_build(cw, o->x->nested, o->x->nnested, &m->nested[i]);
    a->nested_refs = m->nested[i].groups;
    a->n_nested_refs = m->nested[i].n;
    if (o && o->state == OBJ_INLINE)
      b = o->blob;
    if (b) {
      a->kind_case = RAYC__TASK_ARG__KIND_VALUE;
      a->value = pb_bytes(b->data, b->len);
      continue;
    }
    Rayc__ObjectRefInfo *r = &m->refs[i];
    rayc__object_ref_info__init(r);
    r->object_id = pb_bytes(t->args[i].ref.b, ID_OBJECT_SIZE);
    r->owner = self;
    if (o && o->owner) {
      cw_peer_address(o->owner, &m->owners[i]);
      r->owner = &m->owners[i];
    } else if (o && o->state == OBJ_IN_STORE) {
      r->node_id = pb_bytes(o->node.b, ID_NODE_SIZE);
      r->store_address = o->location ? o->location : (char *)"";
    }
    a->kind_case = RAYC__TASK_ARG__KIND_REF;
    a->ref = r;
  }
}

void cw_args_msg_free(cw_args_msg_t *m)
{
  for (size_t i = 0; i < m->n; i++)
    cw_nested_msg_free(&m->nested[i]);
  free(m->ptrs); /* the block of all five (cw_args_msg_alloc) */
}

/* Fills spec with t's fields for lease l; args holds the argument messages (cw_args_msg_free). */
static void cw_spec_build(cw_t *cw, cw_lease_t *l, cw_task_t *t, Rayc__Address *caller, Rayc__TaskSpec *spec,
                          cw_args_msg_t *args)
{
  rayc__task_spec__init(spec);
  spec->task_id = pb_bytes(t->id.b, ID_TASK_SIZE);
  spec->job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  spec->function_name = t->fn;
  spec->language = t->cls ? t->cls->language : RAYC_LANG_C;
  spec->name = t->name;
  spec->num_returns = t->num_returns;
  spec->streaming = t->streaming;
  spec->attempt = t->attempt;
  spec->caller = caller;
  cw_args_msg_build(cw, t, caller, args);
  spec->n_args = t->nargs;
  spec->args = args->ptrs;
  spec->gpu_ids = l->gpu_ids;
  spec->n_gpu_ids = l->ngpus;
  t->lease = l;
  cw_event_record(cw, t->id.b, t->attempt, t->name, RAYC__TASK_TYPE__NORMAL_TASK, NULL,
                  RAYC__TASK_STATUS__SUBMITTED_TO_WORKER, NULL, 0);
}

/* The call could not be started: its tasks fail (in_flight was counted by the caller). */
static void cw_push_not_started(cw_t *cw, cw_lease_t *l, cw_task_t **ts, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    l->in_flight--;
    cw_lease_count(l, ts[i], -1);
    ts[i]->lease = NULL;
    cw_task_fail(cw, ts[i], RAYC_EINTERNAL, "PushTask could not be started");
  }
}

static void cw_push_one(cw_t *cw, cw_lease_t *l, cw_task_t *t)
{
  Rayc__PushTaskRequest req = RAYC__PUSH_TASK_REQUEST__INIT;
  Rayc__TaskSpec spec;
  Rayc__Address caller = RAYC__ADDRESS__INIT;
  cw_args_msg_t args;
  cw_fill_address(cw, &caller);
  cw_spec_build(cw, l, t, &caller, &spec, &args);
  req.task = &spec;
  req.lease_id = pb_bytes(l->id, sizeof(l->id));
  if (rpc_call(l->ch, &rayc__core_worker_service__descriptor, "PushTask", &req.base, -1, cw_push_done, t) != 0)
    cw_push_not_started(cw, l, &t, 1);
  cw_args_msg_free(&args);
}

static void cw_push_batch(cw_t *cw, cw_lease_t *l, cw_task_t **ts, size_t n)
{
  Rayc__PushTasksRequest req = RAYC__PUSH_TASKS_REQUEST__INIT;
  Rayc__TaskSpec *specs = xmalloc(n * sizeof(*specs)), **ptrs = xmalloc(n * sizeof(*ptrs));
  cw_args_msg_t *args = xmalloc(n * sizeof(*args)); /* on the heap: the submitting thread's stack may be small */
  Rayc__Address caller = RAYC__ADDRESS__INIT;
  cw_fill_address(cw, &caller);
  cw_batch_t *b = xmalloc(sizeof(*b) + n * sizeof(b->t[0]));
  b->l = l;
  b->c = l->cls;
  b->n = n;
  for (size_t i = 0; i < n; i++) {
    cw_spec_build(cw, l, ts[i], &caller, &specs[i], &args[i]);
    ptrs[i] = &specs[i];
    b->t[i] = ts[i];
  }
  req.tasks = ptrs;
  req.n_tasks = n;
  req.lease_id = pb_bytes(l->id, sizeof(l->id));
  if (rpc_call(l->ch, &rayc__core_worker_service__descriptor, "PushTasks", &req.base, -1, cw_batch_done, b) != 0) {
    free(b);
    cw_push_not_started(cw, l, ts, n);
  }
  for (size_t i = 0; i < n; i++)
    cw_args_msg_free(&args[i]);
  free(args);
  free(ptrs);
  free(specs);
}

/* The pipelining rules: an idle worker takes a task at once. A busy one takes more, up to
 * CW_MAX_IN_FLIGHT, only while more tasks wait than lease requests are on their way (a task that a
 * worker on its way could run in parallel waits for that worker), and only where waiting behind
 * the tasks it holds costs less than a round trip: each of them is of a function whose recent
 * runs took less than CW_PIPELINE_RUN_US, and the worker's replies have kept coming as fast as
 * that says. A task queued behind one that runs long would wait for it while a free CPU could run
 * it now (Ray pushes one task per worker for this reason); so nothing is pipelined behind a
 * function's first run (its length is unknown) or one known to run long, nor to a worker that has
 * not answered for longer than its queue should take. */
static int cw_lease_runs_short(const cw_lease_t *l)
{
  if (l->cls->cw->pipeline_any)
    return 1;
  return l->long_in_flight == 0 && now_us() - l->progress_us <= CW_PIPELINE_SLACK_US + 2 * l->expect_us;
}

static int cw_lease_room(const cw_class_t *c, const cw_lease_t *l, int spread)
{
  return c->head && !l->dead && !(spread && l->pushed) &&
         (l->in_flight == 0 || (l->in_flight < CW_MAX_IN_FLIGHT && c->queued > (size_t)c->lease_requests &&
                                cw_lease_runs_short(l)));
}

int cw_lease_takes(const cw_class_t *c, const cw_lease_t *l, int spread)
{
  if (!cw_lease_room(c, l, spread))
    return 0;
  /* A worker with half a batch or more still to run takes a whole batch or nothing: pushing
   * whenever a reply frees one place would send one task a call for ever once it is saturated. */
  size_t batch = (size_t)c->cw->push_batch_max, avail = c->queued - (size_t)c->lease_requests;
  return l->in_flight == 0 || (size_t)l->in_flight * 2 <= batch ||
         (avail >= batch && (size_t)l->in_flight + batch <= CW_MAX_IN_FLIGHT);
}

/* About how many bytes t's arguments add to a push (values, and inline objects sent as values). */
size_t cw_task_arg_bytes(cw_t *cw, const cw_task_t *t)
{
  size_t bytes = 64;
  for (size_t i = 0; i < t->nargs; i++) {
    const cw_object_t *o = t->args[i].value ? NULL : cw_obj_get(cw, &t->args[i].ref);
    bytes += t->args[i].value ? t->args[i].value->len : o && o->state == OBJ_INLINE && o->blob ? o->blob->len : 48;
  }
  return bytes;
}

/* Whether t's arguments hand the worker refs it could wait on (refs inside a value, or inside an
 * object passed by reference). Such a task travels alone: a ref to a task earlier in the same
 * batch would be ready only when the batch's reply arrives, and the reply waits for this task. */
int cw_task_lends_refs(cw_t *cw, const cw_task_t *t)
{
  for (size_t i = 0; i < t->nargs; i++) {
    if (t->args[i].nnested)
      return 1;
    const cw_object_t *o = t->args[i].value ? NULL : cw_obj_get(cw, &t->args[i].ref);
    if (o && o->x && o->x->nnested)
      return 1;
  }
  return 0;
}

static int cw_task_goes_alone(cw_t *cw, const cw_task_t *t)
{
  return t->attempts_left <= 0 || t->streaming || cw_task_lends_refs(cw, t);
}

void cw_push_queued(cw_t *cw, cw_class_t *c, cw_lease_t *l, int spread)
{
  cw_task_t *ts[CW_PUSH_BATCH_MAX_LIMIT];
  size_t n = 0, bytes = 0;
  int max = cw->push_batch_max < CW_PUSH_BATCH_MAX_LIMIT ? cw->push_batch_max : CW_PUSH_BATCH_MAX_LIMIT;
  if (l->in_flight == 0)
    l->progress_us = now_us(); /* it goes busy: its replies are due from now (cw_lease_runs_short) */
  do {
    cw_task_t *t = cw_class_pop(c);
    ts[n++] = t;
    l->in_flight++;
    t->expect_us = cw_task_expect(c, t);
    cw_lease_count(l, t, 1);
    l->pushed++;
    bytes += cw_task_arg_bytes(cw, t);
    if (cw_task_goes_alone(cw, t))
      break; /* alone, or the last of this batch (see the top of this file) */
  } while ((int)n < max && bytes < CW_PUSH_BATCH_BYTES && c->head && !cw_task_goes_alone(cw, c->head) &&
           cw_lease_room(c, l, spread));
  if (n == 1)
    cw_push_one(cw, l, ts[0]);
  else
    cw_push_batch(cw, l, ts, n);
}
