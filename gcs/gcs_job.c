/* The GCS job table and its RPC handlers (JobInfoGcsService). See gcs_job.h. */
#include "gcs/gcs_job.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_jobsub.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"

#include <stdlib.h>
#include <string.h>

#define GCS_JOB_TABLE "JOB"

static const char *gcs_job_state_name(enum gcs_job_state state)
{
  return state == GCS_JOB_RUNNING ? "RUNNING" : "FINISHED";
}

static uint32_t gcs_job_num(const uint8_t *b)
{
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

void gcs_job_set_state(gcs_job_t *j, enum gcs_job_state state)
{
  char id[9];
  log_info("job %s: %s -> %s%s%s", id_hex(j->id.b, ID_JOB_SIZE, id), gcs_job_state_name(j->state),
           gcs_job_state_name(state), j->end_reason ? ": " : "", j->end_reason ? j->end_reason : "");
  j->state = state;
}

void gcs_job_view(const gcs_job_t *j, Rayc__JobInfo *out)
{
  *out = *j->info;
  out->job_id = pb_bytes(j->id.b, ID_JOB_SIZE);
  out->is_dead = j->state == GCS_JOB_FINISHED;
  out->start_time_ms = j->start_time_ms;
  out->end_time_ms = j->end_time_ms;
  out->end_reason = j->end_reason ? j->end_reason : (char *)protobuf_c_empty_string;
}

/* After a change: writes j through to the store (errors are logged: memory stays authoritative)
 * and publishes it. */
static void gcs_jobs_changed(gcs_jobs_t *t, const gcs_job_t *j)
{
  Rayc__JobInfo view;
  gcs_job_view(j, &view);
  int rc = gcs_store_put_msg(t->store, GCS_JOB_TABLE, j->id.b, ID_JOB_SIZE, &view.base);
  if (rc < 0)
    log_error("job table: storing a job failed: %s", rayc_strerror(rc));
  gcs_pubsub_publish_job(t->pubsub, &view);
}

/* Puts j into slot num - 1, growing the table (new slots NULL). */
static void gcs_jobs_place(gcs_jobs_t *t, gcs_job_t *j)
{
  if (j->num > t->cap) {
    size_t cap = t->cap ? t->cap : 16;
    while (cap < j->num)
      cap *= 2;
    t->v = xrealloc(t->v, cap * sizeof(*t->v));
    memset(t->v + t->cap, 0, (cap - t->cap) * sizeof(*t->v));
    t->cap = cap;
  }
  t->v[j->num - 1] = j;
  if (j->num > t->n)
    t->n = j->num;
}

static void gcs_jobs_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_jobs_t *t = arg;
  Rayc__JobInfo *info = rayc__job_info__unpack(NULL, vlen, val);
  uint32_t num = klen == ID_JOB_SIZE ? gcs_job_num(key) : 0;
  if (!info || num == 0 || num > (1u << 24) || gcs_jobs_find(t, key, klen)) {
    log_warn("job table: skipping an unreadable stored job");
    pb_free(info);
    return;
  }
  gcs_job_t *j = xcalloc(1, sizeof(*j));
  j->num = num;
  j->id = id_job_from_int(num);
  j->info = info;
  j->state = info->is_dead ? GCS_JOB_FINISHED : GCS_JOB_RUNNING;
  j->start_time_ms = info->start_time_ms;
  j->end_time_ms = info->end_time_ms;
  j->end_reason = j->state == GCS_JOB_FINISHED ? xstrdup(info->end_reason) : NULL;
  gcs_jobs_place(t, j);
}

void gcs_jobs_init(gcs_jobs_t *t, gcs_store_t *store)
{
  memset(t, 0, sizeof(*t));
  t->store = store;
  int rc = gcs_store_scan(store, GCS_JOB_TABLE, NULL, 0, gcs_jobs_load_one, t);
  if (rc > 0)
    log_info("job table: loaded %d jobs from storage; next job id %zu", rc, t->n + 1);
}

void gcs_jobs_release(gcs_jobs_t *t)
{
  for (size_t i = 0; i < t->n; i++) {
    if (t->v[i]) {
      pb_free(t->v[i]->info);
      free(t->v[i]->end_reason);
    }
    free(t->v[i]);
  }
  free(t->v);
  memset(t, 0, sizeof(*t));
}

gcs_job_t *gcs_jobs_add(gcs_jobs_t *t, const Rayc__JobInfo *info)
{
  Rayc__JobInfo empty = RAYC__JOB_INFO__INIT;
  gcs_job_t *j = xcalloc(1, sizeof(*j));
  j->num = (uint32_t)t->n + 1;
  j->id = id_job_from_int(j->num);
  j->info = (Rayc__JobInfo *)gcs_pb_dup(info ? &info->base : &empty.base);
  j->state = GCS_JOB_RUNNING;
  j->start_time_ms = j->info->start_time_ms > 0 ? j->info->start_time_ms : wall_ms();
  gcs_jobs_place(t, j);
  char id[9];
  log_info("job %s: added (RUNNING): driver pid %d%s%s", id_hex(j->id.b, ID_JOB_SIZE, id), j->info->driver_pid,
           j->info->entrypoint[0] ? ", entrypoint " : "", j->info->entrypoint);
  gcs_jobs_changed(t, j);
  return j;
}

gcs_job_t *gcs_jobs_find(const gcs_jobs_t *t, const void *id, size_t len)
{
  if (len != ID_JOB_SIZE)
    return NULL;
  uint32_t num = gcs_job_num(id);
  return num >= 1 && num <= t->n ? t->v[num - 1] : NULL;
}

int gcs_jobs_finish(gcs_jobs_t *t, const void *id, size_t len, const char *reason)
{
  if (len != ID_JOB_SIZE)
    return RAYC_EINVALID_ARGUMENT;
  gcs_job_t *j = gcs_jobs_find(t, id, len);
  if (!j)
    return RAYC_ENOT_FOUND;
  if (j->state == GCS_JOB_FINISHED)
    return 0;
  j->end_time_ms = wall_ms();
  j->end_reason = xstrdup(reason && *reason ? reason : "finished");
  gcs_job_set_state(j, GCS_JOB_FINISHED);
  gcs_jobs_changed(t, j);
  if (t->on_finished)
    t->on_finished(t->on_finished_arg, t, j);
  return 0;
}

int gcs_jobs_on_node_dead(gcs_jobs_t *t, const void *node_id)
{
  int n = 0;
  for (size_t i = 0; i < t->n; i++) {
    gcs_job_t *j = t->v[i];
    const Rayc__Address *d = j ? j->info->driver : NULL;
    if (!d || j->state != GCS_JOB_RUNNING || d->node_id.len != ID_NODE_SIZE ||
        memcmp(d->node_id.data, node_id, ID_NODE_SIZE) != 0)
      continue;
    gcs_jobs_finish(t, j->id.b, ID_JOB_SIZE, "the node of its driver died");
    n++;
  }
  return n;
}

/* ---- handlers ---- */

/* The RUNNING job a retried AddJob added already (its reply was lost when the GCS restarted): the
 * same driver pid and start time, as the driver sends both. NULL when there is none. */
static gcs_job_t *gcs_jobs_find_retry(const gcs_jobs_t *t, const Rayc__JobInfo *info)
{
  if (!info || info->driver_pid <= 0 || info->start_time_ms <= 0)
    return NULL;
  for (size_t i = t->n; i-- > 0;) {
    gcs_job_t *j = t->v[i];
    if (j && j->state == GCS_JOB_RUNNING && j->info && j->info->driver_pid == info->driver_pid &&
        j->info->start_time_ms == info->start_time_ms)
      return j;
  }
  return NULL;
}

void gcs_job_on_add(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__JobInfo *info = ((const Rayc__AddJobRequest *)req)->job;
  gcs_job_t *j = gcs_jobs_find_retry(&s->jobs, info);
  if (!j) {
    j = gcs_jobs_add(&s->jobs, info);
    if (info && *info->submission_id)
      gcs_jobsubs_link_driver(s->jobsubs, info->submission_id, j->id.b, ID_JOB_SIZE);
    char id[9];
    gcs_event_add(s, RAYC__CLUSTER_EVENT_SEVERITY__EVENT_INFO, "JOB_STARTED", NULL, j->id.b, NULL, NULL,
                  "job %s started (driver pid %d)", id_hex(j->id.b, ID_JOB_SIZE, id), info ? info->driver_pid : 0);
  }
  Rayc__AddJobReply reply = RAYC__ADD_JOB_REPLY__INIT;
  reply.job_id = pb_bytes(j->id.b, ID_JOB_SIZE);
  gcs_server_reply(s, call, &reply.base);
}

void gcs_job_on_mark_finished(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__MarkJobFinishedRequest *r = (const Rayc__MarkJobFinishedRequest *)req;
  int rc = gcs_jobs_finish(&s->jobs, r->job_id.data, r->job_id.len, r->reason);
  if (rc < 0) {
    rpc_reply_error(call, rc, "MarkJobFinished: %s", rc == RAYC_ENOT_FOUND ? "unknown job" : "job_id must be 4 bytes");
    return;
  }
  Rayc__MarkJobFinishedReply reply = RAYC__MARK_JOB_FINISHED_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_job_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  (void)req;
  Rayc__JobInfo *views = xcalloc(s->jobs.n, sizeof(*views));
  Rayc__JobInfo **ptrs = xcalloc(s->jobs.n, sizeof(*ptrs));
  size_t n = 0;
  for (size_t i = 0; i < s->jobs.n; i++) {
    if (!s->jobs.v[i])
      continue;
    gcs_job_view(s->jobs.v[i], &views[n]);
    ptrs[n] = &views[n];
    n++;
  }
  Rayc__GetAllJobInfoReply reply = RAYC__GET_ALL_JOB_INFO_REPLY__INIT;
  reply.n_jobs = n;
  reply.jobs = ptrs;
  gcs_server_reply(s, call, &reply.base);
  free(ptrs);
  free(views);
}
