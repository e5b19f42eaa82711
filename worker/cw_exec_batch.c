/*
 * PushTasks in a worker: several normal tasks of one owner in one call (the owner's side is
 * worker/cw_push.c), or several calls of one caller to actors (worker/cw_actor_submit.c): each
 * call is queued for its actor as its own PushTask would be (cw_actor_host.c) and fills its entry
 * when it ends or is refused.
 *
 * The handler queues every task of the call for the executing thread as PushTask does, in order,
 * each with its place in the batch. As each task ends (ran, failed, or was cancelled while queued),
 * its PushTaskReply is packed into its entry; the thread that fills the last entry answers the
 * call. A task that does not run (the worker is exiting, or an actor call is refused) gets an
 * entry without returns whose push_error is the status its own PushTask would have been answered
 * with; the owner of a normal task takes it as a task whose worker died. Entries are packed at once because what a reply points
 * at (results, error texts) is freed as soon as the task's reply is built.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_exec_batch {
  rpc_call_t *call;
  size_t n;
  size_t left;                  /* entries not filled yet (atomic) */
  Rayc__PushTaskRequest *reqs;  /* one per task, pointing into the call's request */
  ProtobufCBinaryData *replies; /* packed PushTaskReply per task (len 0: did not run) */
};

int rayc_worker_push_counts(uint64_t *calls, uint64_t *tasks)
{
  pthread_mutex_lock(&cw_proc.exec.mu);
  if (calls)
    *calls = cw_proc.exec.push_calls;
  if (tasks)
    *tasks = cw_proc.exec.push_tasks;
  pthread_mutex_unlock(&cw_proc.exec.mu);
  return 0;
}

int cw_exec_spec_ok(const Rayc__TaskSpec *spec)
{
  return spec && spec->task_id.len == ID_TASK_SIZE && spec->num_returns >= 1 && spec->num_returns <= 1000000 &&
         spec->caller && (!spec->streaming || spec->num_returns == 1);
}

static void batch_answer(cw_exec_batch_t *b)
{
  Rayc__PushTasksReply rep = RAYC__PUSH_TASKS_REPLY__INIT;
  rep.replies = b->replies;
  rep.n_replies = b->n;
  rpc_reply(b->call, &rep.base);
  for (size_t i = 0; i < b->n; i++)
    free(b->replies[i].data);
  free(b->replies);
  free(b->reqs);
  free(b);
}

void cw_exec_send(const cw_exec_to_t *to, const Rayc__PushTaskReply *rep, int err, const char *msg)
{
  cw_exec_batch_t *b = to->batch;
  if (!b) {
    if (rep)
      rpc_reply(to->call, &rep->base);
    else
      rpc_reply_error(to->call, err ? err : RAYC_EUNAVAILABLE, "%s", msg ? msg : "the task did not run");
    return;
  }
  Rayc__PushTaskReply refused = RAYC__PUSH_TASK_REPLY__INIT;
  if (!rep) { /* no returns: the owner takes it as a PushTask answered with this error */
    refused.push_error = err ? err : RAYC_EUNAVAILABLE;
    refused.push_error_message = (char *)(msg ? msg : "the task did not run");
    rep = &refused;
  }
  {
    size_t len = rayc__push_task_reply__get_packed_size(rep);
    b->replies[to->idx].data = xmalloc(len ? len : 1);
    b->replies[to->idx].len = rayc__push_task_reply__pack(rep, b->replies[to->idx].data);
  }
  if (__atomic_sub_fetch(&b->left, 1, __ATOMIC_ACQ_REL) == 0)
    batch_answer(b);
}

void cw_exec_count_push(size_t n)
{
  pthread_mutex_lock(&cw_proc.exec.mu);
  cw_proc.exec.push_calls++;
  cw_proc.exec.push_tasks += n;
  pthread_mutex_unlock(&cw_proc.exec.mu);
}

/* The whole call is refused (nothing was queued). A call carries normal tasks, or actor calls
 * (ACTOR_TASK, each routed by its actor id), never a mix. */
static int batch_check(const Rayc__PushTasksRequest *req, char *why, size_t len)
{
  if (req->n_tasks > CW_PUSH_BATCH_MAX_LIMIT) {
    snprintf(why, len, "at most %d tasks per PushTasks call, got %zu", CW_PUSH_BATCH_MAX_LIMIT, req->n_tasks);
    return RAYC_EINVALID_ARGUMENT;
  }
  Rayc__TaskType type = req->n_tasks ? req->tasks[0]->type : RAYC__TASK_TYPE__NORMAL_TASK;
  for (size_t i = 0; i < req->n_tasks; i++) {
    if (req->tasks[i]->type != type || (type != RAYC__TASK_TYPE__NORMAL_TASK && type != RAYC__TASK_TYPE__ACTOR_TASK)) {
      snprintf(why, len, "tasks[%zu]: PushTasks carries normal tasks or actor calls, not a mix", i);
      return RAYC_EINVALID_ARGUMENT;
    }
    if (!cw_exec_spec_ok(req->tasks[i])) {
      snprintf(why, len, "tasks[%zu]: malformed task spec", i);
      return RAYC_EINVALID_ARGUMENT;
    }
  }
  return 0;
}

static cw_exec_batch_t *batch_new(rpc_call_t *call, const Rayc__PushTasksRequest *req)
{
  size_t n = req->n_tasks;
  cw_exec_batch_t *b = xcalloc(1, sizeof(*b));
  b->call = call;
  b->n = b->left = n;
  b->reqs = xcalloc(n, sizeof(*b->reqs));
  b->replies = xcalloc(n, sizeof(*b->replies));
  for (size_t i = 0; i < n; i++) {
    rayc__push_task_request__init(&b->reqs[i]);
    b->reqs[i].task = req->tasks[i];
    b->reqs[i].lease_id = req->lease_id;
  }
  return b;
}

/* A batch of actor calls: each goes to its actor's queue in order, as its own PushTask would
 * (cw_actor_host.c), and fills its entry when it ends or is refused. */
static void batch_actor_calls(cw_t *cw, rpc_call_t *call, const Rayc__PushTasksRequest *req)
{
  cw_exec_batch_t *b = batch_new(call, req);
  size_t n = b->n; /* b is freed by the entry that completes it: read nothing from it after that */
  Rayc__PushTaskRequest *reqs = b->reqs;
  cw_exec_count_push(n);
  for (size_t i = 0; i < n; i++)
    cw_actor_push_to(cw, &(cw_exec_to_t){.call = call, .batch = b, .idx = i}, &reqs[i]);
}

void cw_exec_on_push_tasks(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  const Rayc__PushTasksRequest *req = (const Rayc__PushTasksRequest *)m;
  char why[160];
  int rc = batch_check(req, why, sizeof(why));
  if (rc != 0 || req->n_tasks == 0) {
    rpc_reply_error(call, rc ? rc : RAYC_EINVALID_ARGUMENT, "%s", rc ? why : "PushTasks without tasks");
    return;
  }
  if (req->tasks[0]->type == RAYC__TASK_TYPE__ACTOR_TASK) {
    batch_actor_calls(ctx, call, req);
    return;
  }
  cw_exec_item_t **its = xmalloc(req->n_tasks * sizeof(*its));
  cw_exec_batch_t *b = batch_new(call, req);
  for (size_t i = 0; i < req->n_tasks; i++) {
    its[i] = xmalloc(sizeof(*its[i]));
    its[i]->next = NULL;
    its[i]->to = (cw_exec_to_t){.call = call, .batch = b, .idx = i};
    its[i]->req = &b->reqs[i];
  }
  pthread_mutex_lock(&cw_proc.exec.mu);
  if (cw_proc.exec.stop) {
    pthread_mutex_unlock(&cw_proc.exec.mu);
    for (size_t i = 0; i < req->n_tasks; i++)
      free(its[i]);
    free(its);
    free(b->replies);
    free(b->reqs);
    free(b);
    rpc_reply_error(call, RAYC_EUNAVAILABLE, "the worker is exiting");
    return;
  }
  cw_lease_note_owner(req->tasks[0]);
  cw_proc.exec.push_calls++;
  cw_proc.exec.push_tasks += req->n_tasks;
  for (size_t i = 0; i < req->n_tasks; i++) {
    if (cw_proc.exec.tail)
      cw_proc.exec.tail->next = its[i];
    else
      cw_proc.exec.head = its[i];
    cw_proc.exec.tail = its[i];
  }
  pthread_cond_signal(&cw_proc.exec.cv);
  pthread_mutex_unlock(&cw_proc.exec.mu);
  free(its);
}
