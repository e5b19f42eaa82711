/*
 * Per-job object accounting for governance records (issue 12): how many objects and bytes each
 * job created in this store, pulled into it from other nodes and spilled from it, and (asked by
 * GetJobObjects) what of the job is still here. The job of an object is the JobID inside its
 * ObjectID (TaskID = random + JobID; ObjectID = TaskID + index), with the actor bit cleared.
 * Counters live as long as the store; a few dozen bytes per job.
 */
#include "object-store/store_server_int.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct store_job_stats {
  uint8_t job[ID_JOB_SIZE];
  uint64_t created_objects, created_bytes, pulled_objects, pulled_bytes, spilled_objects, spilled_bytes;
} store_job_stats_t;

static void jobs_of(const uint8_t *object_id, uint8_t job[ID_JOB_SIZE])
{
  memcpy(job, object_id + ID_TASK_SIZE - ID_JOB_SIZE, ID_JOB_SIZE);
  job[0] &= 0x7f;
}

static store_job_stats_t *jobs_find(store_server_t *s, const uint8_t *job, int add)
{
  for (size_t i = 0; i < s->njob_stats; i++)
    if (memcmp(s->job_stats[i].job, job, ID_JOB_SIZE) == 0)
      return &s->job_stats[i];
  if (!add)
    return NULL;
  if (s->njob_stats == s->capjob_stats) {
    s->capjob_stats = s->capjob_stats ? 2 * s->capjob_stats : 16;
    s->job_stats = xrealloc(s->job_stats, s->capjob_stats * sizeof(*s->job_stats));
  }
  store_job_stats_t *j = &s->job_stats[s->njob_stats++];
  memset(j, 0, sizeof(*j));
  memcpy(j->job, job, ID_JOB_SIZE);
  return j;
}

void store_jobs_count(store_server_t *s, const uint8_t *object_id, enum store_jobs_kind kind, uint64_t bytes)
{
  uint8_t job[ID_JOB_SIZE];
  jobs_of(object_id, job);
  store_job_stats_t *j = jobs_find(s, job, 1);
  if (kind == STORE_JOBS_CREATED) {
    j->created_objects++;
    j->created_bytes += bytes;
  } else if (kind == STORE_JOBS_PULLED) {
    j->pulled_objects++;
    j->pulled_bytes += bytes;
  } else {
    j->spilled_objects++;
    j->spilled_bytes += bytes;
  }
}

void store_jobs_release(store_server_t *s)
{
  free(s->job_stats);
  s->job_stats = NULL;
  s->njob_stats = s->capjob_stats = 0;
}

/* Fills out with job's counters and what of it is left in the table. */
static void jobs_fill(store_server_t *s, const uint8_t *job, Rayc__JobObjects *out)
{
  store_job_stats_t *j = jobs_find(s, job, 0);
  if (j) {
    out->created_objects = j->created_objects;
    out->created_bytes = j->created_bytes;
    out->pulled_objects = j->pulled_objects;
    out->pulled_bytes = j->pulled_bytes;
    out->spilled_objects = j->spilled_objects;
    out->spilled_bytes = j->spilled_bytes;
  }
  for (hmap_iter_t it = hmap_iter(&s->core.table.map); hmap_next(&it);) {
    const store_obj_t *o = it.value;
    uint8_t oj[ID_JOB_SIZE];
    jobs_of(o->id, oj);
    if (memcmp(oj, job, ID_JOB_SIZE) != 0 || o->delete_pending)
      continue;
    if (o->secondary) { /* a cache of an object made elsewhere: the store evicts it when it needs room */
      out->cached_left++;
      continue;
    }
    out->objects_left++;
    out->bytes_left += o->data_size + o->metadata_size;
    out->spilled_left += o->spill_file != NULL;
  }
}

void store_jobs_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  store_server_t *s = ctx;
  const Rayc__GetJobObjectsRequest *r = (const Rayc__GetJobObjectsRequest *)req;
  Rayc__GetJobObjectsReply reply = RAYC__GET_JOB_OBJECTS_REPLY__INIT;
  Rayc__JobObjects *v = xcalloc(r->n_job_ids + 1, sizeof(*v));
  Rayc__JobObjects **pv = xcalloc(r->n_job_ids + 1, sizeof(*pv));
  for (size_t i = 0; i < r->n_job_ids; i++) {
    if (r->job_ids[i].len != ID_JOB_SIZE)
      continue;
    Rayc__JobObjects *o = &v[reply.n_jobs];
    rayc__job_objects__init(o);
    uint8_t job[ID_JOB_SIZE];
    memcpy(job, r->job_ids[i].data, ID_JOB_SIZE);
    job[0] &= 0x7f;
    o->job_id = r->job_ids[i];
    jobs_fill(s, job, o);
    pv[reply.n_jobs++] = o;
  }
  reply.jobs = pv;
  rpc_reply(call, &reply.base);
  free(pv);
  free(v);
}
