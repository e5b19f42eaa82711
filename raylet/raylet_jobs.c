/*
 * Jobs as the raylet sees them: it follows the GCS's JOB channel (Poll, InternalPubSub) and, when a
 * job finishes, ends that job's workers and lease requests on this node. It holds no long poll:
 * every heartbeat reply carries the seq of the channel's newest message, and the raylet polls
 * (answered at once) only when that is past what it has seen, so an idle cluster costs the GCS no
 * held call per node and no poll every few seconds; a finished job reaches the other nodes within
 * a heartbeat period. A job finishes when
 * its driver calls MarkJobFinished, when the driver's node dies, or when the driver's connection to
 * its raylet closes: that raylet then calls MarkJobFinished itself (the driver may have been
 * SIGKILLed), so the job's workers end on every node, not only on the driver's.
 *
 * After a resync (the first poll, a GCS restart, or messages missed) the raylet asks for every job
 * (GetAllJobInfo) and treats the finished ones as above. A failed poll is retried after a second.
 * A Poll that finds nothing new (cannot happen unless the GCS changed under it) is held at most
 * JOBS_POLL_TIMEOUT_MS.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

enum { JOBS_POLL_TIMEOUT_MS = 10000, JOBS_CALL_SLACK_MS = 5000, JOBS_RETRY_MS = 1000 };

int raylet_jobs_is_dead(const raylet_t *r, id_job_t job)
{
  for (size_t i = 0; i < r->jobs.ndead; i++)
    if (memcmp(r->jobs.dead[i].b, job.b, ID_JOB_SIZE) == 0)
      return 1;
  return 0;
}

void raylet_jobs_finished(raylet_t *r, id_job_t job, const char *why)
{
  if (raylet_jobs_is_dead(r, job))
    return;
  if (r->jobs.ndead == r->jobs.capdead) {
    r->jobs.capdead = r->jobs.capdead ? 2 * r->jobs.capdead : 16;
    r->jobs.dead = xrealloc(r->jobs.dead, r->jobs.capdead * sizeof(*r->jobs.dead));
  }
  r->jobs.dead[r->jobs.ndead++] = job;
  raylet_lease_drop_job(r, job, RAYC_ECANCELLED, "the job has finished");
  raylet_usage_sample(r); /* the CPU its workers burned up to now, before they end */
  int n = raylet_pool_end_job(r, job);
  char jid[2 * ID_JOB_SIZE + 1];
  id_hex(job.b, ID_JOB_SIZE, jid);
  if (n)
    log_info("job %s finished (%s): stopping its %d worker%s here", jid, why, n, n == 1 ? "" : "s");
  else
    log_debug("job %s finished (%s)", jid, why);
}

void raylet_jobs_driver_gone(raylet_t *r, id_job_t job, int pid)
{
  id_job_t none = {{0}};
  if (memcmp(job.b, none.b, ID_JOB_SIZE) == 0)
    return;
  if (!raylet_jobs_is_dead(r, job)) {
    char *why = xasprintf("its driver (pid %d) disconnected from its raylet", pid);
    raylet_gcs_mark_job_finished(r, job, why);
    raylet_jobs_finished(r, job, why);
    free(why);
  }
}

static void jobs_poll(raylet_t *r);

static void jobs_on_info(raylet_t *r, const Rayc__JobInfo *j)
{
  if (!j || !j->is_dead || j->job_id.len != ID_JOB_SIZE)
    return;
  id_job_t job;
  memcpy(job.b, j->job_id.data, ID_JOB_SIZE);
  raylet_jobs_finished(r, job, *j->end_reason ? j->end_reason : "finished");
}

static void jobs_all_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  raylet_t *r = arg;
  Rayc__GetAllJobInfoReply *rep = (Rayc__GetAllJobInfoReply *)resp;
  r->jobs.polling = 0;
  if (status != 0) {
    if (status != RAYC_ECANCELLED)
      log_warn("fetching the job table failed: %s (%s)", rayc_strerror(status), detail);
    r->jobs.epoch = 0; /* resync again */
    r->jobs.retry_ms = now_ms() + JOBS_RETRY_MS;
  } else {
    r->jobs.wanted = 0; /* current as of the resync's seq; heartbeats tell of anything newer */
    r->jobs.ndead = 0;  /* the table is the truth now (job ids restart with a GCS that lost it) */
    for (size_t i = 0; i < rep->n_jobs; i++)
      jobs_on_info(r, rep->jobs[i]);
  }
  pb_free(resp);
}

static void jobs_poll_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  raylet_t *r = arg;
  Rayc__PollReply *rep = (Rayc__PollReply *)resp;
  r->jobs.polling = 0;
  if (status != 0) {
    if (status != RAYC_ECANCELLED)
      log_debug("polling the GCS for job changes failed: %s (%s)", rayc_strerror(status), detail);
    r->jobs.retry_ms = now_ms() + JOBS_RETRY_MS;
    pb_free(resp);
    return;
  }
  r->jobs.epoch = rep->epoch;
  r->jobs.seq = rep->last_seq;
  if (rep->resync && !r->stopping && r->gcs) {
    Rayc__GetAllJobInfoRequest req = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
    if (rpc_call(r->gcs, &rayc__job_info_gcs_service__descriptor, "GetAllJobInfo", &req.base, JOBS_POLL_TIMEOUT_MS,
                 jobs_all_done, r) == 0)
      r->jobs.polling = 1;
    pb_free(resp);
    return;
  }
  r->jobs.wanted = 0; /* a full reply leaves some behind: the next heartbeat says so */
  for (size_t i = 0; i < rep->n_messages; i++)
    if (rep->messages[i]->channel == RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB)
      jobs_on_info(r, rep->messages[i]->job);
  pb_free(resp);
}

static void jobs_poll(raylet_t *r)
{
  if (r->stopping || !r->gcs || r->jobs.polling)
    return;
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  Rayc__PubChannel ch = RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB;
  if (r->jobs.sub_id[0] == 0) {
    r->jobs.sub_id[0] = 'r';
    memcpy(r->jobs.sub_id + 1, r->node_id.b, sizeof(r->jobs.sub_id) - 1);
  }
  req.subscriber_id = pb_bytes(r->jobs.sub_id, sizeof(r->jobs.sub_id));
  req.channels = &ch;
  req.n_channels = 1;
  req.after_seq = r->jobs.seq;
  req.epoch = r->jobs.epoch;
  req.timeout_ms = JOBS_POLL_TIMEOUT_MS;
  if (rpc_call(r->gcs, &rayc__internal_pub_sub_gcs_service__descriptor, "Poll", &req.base,
               JOBS_POLL_TIMEOUT_MS + JOBS_CALL_SLACK_MS, jobs_poll_done, r) == 0)
    r->jobs.polling = 1;
  else
    r->jobs.retry_ms = now_ms() + JOBS_RETRY_MS;
}

void raylet_jobs_cron(raylet_t *r)
{
  int wanted = r->jobs.wanted || r->jobs.epoch == 0; /* news, a failed poll, or never synced */
  if (r->registered && wanted && !r->jobs.polling && now_ms() >= r->jobs.retry_ms)
    jobs_poll(r);
}

void raylet_jobs_on_heartbeat(raylet_t *r, int64_t pubsub_epoch, int64_t job_seq)
{
  if (pubsub_epoch != r->jobs.epoch || job_seq > r->jobs.seq) {
    r->jobs.wanted = 1;
    raylet_jobs_cron(r);
  }
}

void raylet_jobs_release(raylet_t *r)
{
  free(r->jobs.dead);
  r->jobs.dead = NULL;
  r->jobs.ndead = r->jobs.capdead = 0;
  for (size_t i = 0; i < r->nwarned; i++)
    free(r->warned[i]);
  free(r->warned);
  r->warned = NULL;
  r->nwarned = 0;
  free(r->drain_reason);
  r->drain_reason = NULL;
}
