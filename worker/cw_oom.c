/*
 * A pushed task whose worker died: before retrying or failing it, the owner asks the raylet that
 * granted the lease why the worker died (GetWorkerFailureCause, as Ray's owners do). A worker its
 * raylet's memory monitor killed (raylet/raylet_mem.c) makes the task fail with
 * RAYC_ENODE_OUT_OF_MEMORY and the raylet's message (the node, the worker's RSS, the threshold),
 * retried first from its own budget: RAYC_TASK_OOM_RETRIES (default CW_OOM_RETRIES) when the task
 * may be retried at all (max_retries != 0), as Ray's task_oom_retries; bounded, unlike Ray's
 * default. Any other death is WORKER_DIED, retried from max_retries as before.
 *
 * The ask runs while the task belongs to no queue and no lease; its answer (or its failure: the
 * raylet may be gone with its node) takes cw->mu and decides. Every function here runs with
 * cw->mu held, except the RPC callback, which takes it.
 */
#include "worker/cw.h"
#include "worker/cw_events.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CW_OOM_RETRIES = 3, CW_CAUSE_TIMEOUT_MS = 3000 };

typedef struct cw_death {
  cw_task_t *t;
  int status;
  char *detail;
} cw_death_t;

int cw_oom_retries(void)
{
  const char *v = getenv("RAYC_TASK_OOM_RETRIES");
  long n = v && *v ? strtol(v, NULL, 10) : CW_OOM_RETRIES;
  return n < 0 ? 0 : n > 1000 ? 1000 : (int)n;
}

static void cw_retry(cw_t *cw, cw_task_t *t, const char *why)
{
  cw_event_record(cw, t->id.b, t->attempt, t->name, RAYC__TASK_TYPE__NORMAL_TASK, NULL, RAYC__TASK_STATUS__FAILED, why,
                  0);
  t->attempt++;
  cw_class_push_front(t->cls, t);
}

/* The worker died of something else: retried from max_retries, or WORKER_DIED. */
static void cw_died_other(cw_t *cw, cw_task_t *t, int status, const char *detail)
{
  if (t->attempts_left > 0 && !cw->stopping) {
    log_warn("task %s: its worker failed (%s: %s); retrying (%d retries left)", t->name, rayc_strerror(status), detail,
             t->attempts_left);
    t->attempts_left--;
    cw_retry(cw, t, detail && *detail ? detail : rayc_strerror(status));
    return;
  }
  char *msg = xasprintf("the worker running task %s died (%s); no retries left", t->name, detail);
  cw_task_fail(cw, t, RAYC_EWORKER_DIED, msg);
  free(msg);
}

static void cw_died_oom(cw_t *cw, cw_task_t *t, const char *why)
{
  if (t->oom_attempts_left > 0 && !cw->stopping) {
    log_warn("task %s: out of memory; retrying (%d OOM retries left): %s", t->name, t->oom_attempts_left, why);
    t->oom_attempts_left--;
    cw_retry(cw, t, why);
    return;
  }
  char *msg = xasprintf("task %s ran out of memory: %s (no OOM retries left: RAYC_TASK_OOM_RETRIES)", t->name, why);
  cw_task_fail(cw, t, RAYC_ENODE_OUT_OF_MEMORY, msg);
  free(msg);
}

/* pump: from the RPC callback, push what is queued (cw_push_done pumps after the direct calls). */
static void cw_died_decide(cw_t *cw, cw_task_t *t, int status, const char *detail, const char *oom, int pump)
{
  cw_class_t *c = t->cls;
  if (t->cancelled)
    cw_task_fail(cw, t, RAYC_ECANCELLED, "the task was cancelled (its worker was stopped)");
  else if (oom)
    cw_died_oom(cw, t, oom);
  else
    cw_died_other(cw, t, status, detail);
  if (pump && !cw->stopping)
    cw_pump(cw, c);
}

static void cw_cause_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  cw_death_t *d = arg;
  cw_t *cw = d->t->cls->cw;
  (void)detail;
  const Rayc__GetWorkerFailureCauseReply *rep = (const Rayc__GetWorkerFailureCauseReply *)resp;
  const char *oom = status == 0 && rep && rep->killed_for_memory && rep->message[0] ? rep->message : NULL;
  pthread_mutex_lock(&cw->mu);
  cw_died_decide(cw, d->t, d->status, d->detail, oom, 1);
  pthread_mutex_unlock(&cw->mu);
  pb_free(resp);
  free(d->detail);
  free(d);
}

void cw_task_worker_died(cw_t *cw, cw_task_t *t, cw_lease_t *l, int status, const char *detail)
{
  if (t->cancelled || cw->stopping || !l->raylet) {
    cw_died_decide(cw, t, status, detail, NULL, 0);
    return;
  }
  cw_death_t *d = xcalloc(1, sizeof(*d));
  d->t = t;
  d->status = status;
  d->detail = xstrdup(detail ? detail : "");
  Rayc__GetWorkerFailureCauseRequest req = RAYC__GET_WORKER_FAILURE_CAUSE_REQUEST__INIT;
  req.worker_id = pb_bytes(l->worker_id.b, ID_WORKER_SIZE);
  if (rpc_call(l->raylet, &rayc__node_manager_service__descriptor, "GetWorkerFailureCause", &req.base,
               CW_CAUSE_TIMEOUT_MS, cw_cause_done, d) != 0) {
    free(d->detail);
    free(d);
    cw_died_decide(cw, t, status, detail, NULL, 0);
  }
}
