/*
 * The GCS job table (Ray's GcsJobManager): every driver that connected to the cluster.
 *
 * AddJob hands out job ids 1, 2, 3... (4-byte big-endian JobIDs, id_job_from_int) in the order
 * drivers arrive; a job is RUNNING until it is FINISHED (is_dead on the wire): by MarkJobFinished
 * (its driver, or the raylet that saw the driver die), or because the node its driver ran on died.
 * State changes go through gcs_job_set_state(), which logs them, are written through to the store
 * (table "JOB", key = job id) and published on the JOB channel, so raylets kill the workers of a
 * finished job. A finished job then runs the on_finished hook, where the job's non-detached actors
 * will be killed once actors exist. Loading the table at start-up resumes numbering after the
 * highest stored id, so job ids are never reused.
 */
#ifndef RAYC_GCS_JOB_H
#define RAYC_GCS_JOB_H

#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "gcs/gcs_pubsub.h"
#include "gcs/gcs_store.h"

#include <stddef.h>
#include <stdint.h>

enum gcs_job_state { GCS_JOB_RUNNING, GCS_JOB_FINISHED };

typedef struct gcs_job {
  uint32_t num; /* 1, 2, 3...: id == id_job_from_int(num) */
  id_job_t id;
  enum gcs_job_state state;
  Rayc__JobInfo *info;                /* owned: as added; job_id, is_dead, times, end_reason: the fields below */
  int64_t start_time_ms, end_time_ms; /* wall clock */
  char *end_reason;                   /* owned; NULL while RUNNING */
} gcs_job_t;

struct gcs_jobs;
/* Called after a job became FINISHED (and was stored and published). */
typedef void (*gcs_job_finished_fn)(void *arg, struct gcs_jobs *t, gcs_job_t *j);

typedef struct gcs_jobs {
  gcs_store_t *store;   /* borrowed */
  gcs_pubsub_t *pubsub; /* borrowed; NULL: nothing published */
  gcs_job_finished_fn on_finished;
  void *on_finished_arg;
  gcs_job_t **v; /* owned; v[num - 1], NULL for numbers not in use */
  size_t n, cap; /* n: highest number handed out */
} gcs_jobs_t;

/* Makes an empty table over store (borrowed) and loads the jobs it holds. Release with
 * gcs_jobs_release(). */
void gcs_jobs_init(gcs_jobs_t *t, gcs_store_t *store);
void gcs_jobs_release(gcs_jobs_t *t);

/* Adds a RUNNING job described by info (copied; NULL: nothing known) and returns it (borrowed). */
gcs_job_t *gcs_jobs_add(gcs_jobs_t *t, const Rayc__JobInfo *info);

/* Returns the job with this id (borrowed), or NULL. */
gcs_job_t *gcs_jobs_find(const gcs_jobs_t *t, const void *id, size_t len);

/* Marks a job FINISHED with reason (NULL or "": "finished"); idempotent. 0,
 * RAYC_EINVALID_ARGUMENT (id not ID_JOB_SIZE bytes) or RAYC_ENOT_FOUND. */
int gcs_jobs_finish(gcs_jobs_t *t, const void *id, size_t len, const char *reason);

/* Finishes every RUNNING job whose driver ran on node_id (ID_NODE_SIZE bytes); returns how many. */
int gcs_jobs_on_node_dead(gcs_jobs_t *t, const void *node_id);

/* Changes a job's state, logging the transition. */
void gcs_job_set_state(gcs_job_t *j, enum gcs_job_state state);

/* Fills out as a shallow view of j (borrowing j's memory) for a reply or the store. */
void gcs_job_view(const gcs_job_t *j, Rayc__JobInfo *out);

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_job_on_add(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_job_on_mark_finished(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_job_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
