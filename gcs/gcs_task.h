/*
 * Task events and cluster events in the GCS (Ray's GcsTaskManager and its event log).
 *
 * Task events. Owners and executing workers report each task attempt's state changes in batches
 * (AddTaskEventData). The GCS merges them into one record per attempt (task id + attempt): the
 * latest state (a terminal FINISHED or FAILED is never undone by a late RUNNING), when each state
 * was entered, where it ran and the error. At most conf->task_events_max records are kept; the
 * oldest (by first report) is dropped first and counted. GetTaskEvents answers the state API and
 * the timeline. Records live in memory only: like Ray's, they are lost with a GCS restart.
 *
 * Cluster events. The GCS records what an operator wants to see in one place: nodes added and
 * dead (with the cause), actors restarted and dead, workers killed (reported by raylets through
 * ReportClusterEvent), jobs started and finished. A ring of conf->cluster_events_max, oldest
 * dropped first. Each event is also logged.
 *
 * Loop thread only, like every GCS table.
 */
#ifndef RAYC_GCS_TASK_H
#define RAYC_GCS_TASK_H

#include "common/ids.h"
#include "common/rpc.h"
#include "proto/gcs_task.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct gcs_server;
typedef struct gcs_events gcs_events_t;

/* Returns new, empty tables keeping at most max_tasks records and max_events events (0: the
 * defaults, 100000 and 10000); free with gcs_events_destroy(). */
gcs_events_t *gcs_events_create(size_t max_tasks, size_t max_events);
void gcs_events_destroy(gcs_events_t *e); /* accepts NULL */

/* Records a cluster event (and logs it). node, job, actor, worker: ids of their sizes, or NULL. */
void gcs_event_add(struct gcs_server *s, Rayc__ClusterEventSeverity sev, const char *kind, const uint8_t *node,
                   const uint8_t *job, const uint8_t *actor, const uint8_t *worker, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* What ran on one node for one job: task attempts that started there and ended (FINISHED or
 * FAILED), and actors created there (creation tasks FINISHED). Counted as events arrive, once per
 * attempt, apart from the bounded records: dropping records does not change them. Events a worker
 * dropped before sending (its buffer full) are not counted; the GCS reports those as dropped at
 * source. One entry per job and node that ran a task, kept for the GCS's life. */
typedef struct gcs_task_runs {
  uint8_t node[ID_NODE_SIZE];
  int64_t tasks, actors;
} gcs_task_runs_t;

/* The per-node counts of job (ID_JOB_SIZE bytes): *out is a new array (free()) of the returned size. */
size_t gcs_task_runs_of_job(const gcs_events_t *e, const uint8_t *job, gcs_task_runs_t **out);

/* Refreshes rayc_tasks{State,Name} from the records (gcs_metrics_cron). */
void gcs_task_events_metrics(struct gcs_server *s);

/* Handlers (TaskInfoGcsService, EventGcsService); ctx is the gcs_server_t. */
void gcs_task_on_add(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_task_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_event_on_report(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_event_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
