/*
 * Submitted jobs (Ray's JobManager, issue 12): the JobSubmissionService of the GCS.
 *
 * Design. A submitted job is a JobSubmission message kept in memory and written through to the
 * store (table "JOBSUB", key = submission id), so it survives a GCS restart on Redis. The GCS is
 * not the job supervisor: SubmitJob stores the job PENDING and starts `rayc job-supervisor` (the
 * `rayc` binary next to rayc-gcs) as a detached process (its own session), which runs the
 * entrypoint, owns its process group and log file, and reports every transition back with
 * ReportJobStatus (retrying while the GCS is away). So a GCS kill -9 leaves running jobs running,
 * and the restarted GCS learns their state from the next report. StopJob marks the job
 * stop_requested and sends SIGTERM to its supervisor (after checking /proc/<pid>/cmdline names the
 * job, so a reused pid is never signalled); the supervisor stops the group and reports STOPPED.
 * The cron fails jobs whose supervisor is gone (a host reboot, a kill -9 of the supervisor).
 *
 * State machine: PENDING -> RUNNING -> SUCCEEDED | FAILED | STOPPED (PENDING may go straight to a
 * terminal state); changed only through gcs_jobsub_set_status(), which logs it. Terminal states
 * are final: later reports are ignored. Reaching one appends the job's governance record
 * (gcs_jobrec.h). Logs are read by GetJobLogs from the file the supervisor writes on the head
 * (the GCS and the supervisors share a host: the GCS starts them); reads are bounded (1 MiB per
 * call) plain pread()s of a local file, so the loop is not held long.
 *
 * Threads: everything runs on the GCS loop.
 */
#ifndef RAYC_GCS_JOBSUB_H
#define RAYC_GCS_JOBSUB_H

#include "common/pb.h"
#include "common/rpc.h"

#include <stddef.h>
#include <stdint.h>

struct gcs_server;
struct gcs_jobrecs;

typedef struct gcs_jobsubs {
  struct gcs_server *s;    /* borrowed */
  Rayc__JobSubmission **v; /* owned (deep copies), in submission order */
  size_t n, cap;
  struct gcs_jobrecs *recs;        /* owned: the governance records */
  int64_t next_check_ms;           /* monotonic: next check that supervisors are alive */
  struct jobsub_proc *procs;       /* owned: supervisors this GCS started and has not reaped */
  struct jobrec_collect *collects; /* owned: records waiting for the nodes' answers */
  rpc_client_t *client;            /* owned: on the GCS loop, to raylets and stores; NULL once stopped */
  struct jobpkg_unused *unused;    /* owned: packages seen unused, and since when (gcs_jobpkg.c) */
  size_t nunused;
  int64_t next_pkg_ms;
  int stopping;
} gcs_jobsubs_t;

/* Returns a new table loaded from s->store (records too). Destroy with gcs_jobsubs_destroy(). */
gcs_jobsubs_t *gcs_jobsubs_create(struct gcs_server *s);
void gcs_jobsubs_destroy(gcs_jobsubs_t *t);

/* At shutdown: closes the handles of the supervisors still running (they keep running: they are
 * detached). Accepts NULL. */
void gcs_jobsubs_stop(gcs_jobsubs_t *t);

/* Returns the job with this submission id (borrowed), or NULL. */
Rayc__JobSubmission *gcs_jobsubs_find(const gcs_jobsubs_t *t, const char *id);

/* Periodic work at monotonic time now: fails running jobs whose supervisor is gone. */
void gcs_jobsubs_cron(gcs_jobsubs_t *t, int64_t now);

/* gcs_jobpkg.c: deletes KV packages no job has used for --job-package-ttl-ms (from the cron). */
void gcs_jobpkg_cron(gcs_jobsubs_t *t, int64_t now);

/* A driver job (job_id, 4 bytes) announced submission id sid: links it to that job. */
void gcs_jobsubs_link_driver(gcs_jobsubs_t *t, const char *sid, const void *job_id, size_t len);

/* Names of the statuses ("PENDING"...), as Ray prints them. */
const char *gcs_jobsub_status_name(Rayc__JobStatus st);

/* 1 for SUCCEEDED, FAILED and STOPPED. */
int gcs_jobsub_terminal(Rayc__JobStatus st);

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_jobsub_on_submit(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_stop(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_delete(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_logs(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_report(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_get_record(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_jobsub_on_list_records(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
