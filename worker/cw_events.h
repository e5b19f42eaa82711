/*
 * Task events from the core worker (Ray's TaskEventBuffer): owners record when a task is
 * submitted, pushed to a worker and when it fails for good; executing workers record when a task
 * starts and how it ends. Recording appends a small record to a buffer under its own mutex (never
 * cw->mu, so callers may hold cw->mu or not) and does no I/O; the core worker's background thread
 * sends the buffer to the GCS once a second (AddTaskEventData, asynchronous: the task path never
 * waits for it), and cw_destroy() sends what is left. The buffer holds at most CW_EVENTS_MAX
 * events: past that the oldest are dropped and the count of dropped events goes with the next
 * report. Setting RAYC_TASK_EVENTS=0 turns recording off.
 */
#ifndef RAYC_CW_EVENTS_H
#define RAYC_CW_EVENTS_H

#include "common/ids.h"
#include "proto/gcs_task.pb-c.h"

#include <stdint.h>

struct cw;

enum { CW_EVENTS_MAX = 50000 }; /* per second of reports: ~16k tasks a second */

/* Records one state change of attempt `attempt` of task id (name borrowed, copied). actor: the
 * actor id (ID_ACTOR_SIZE bytes) or NULL; error: FAILED's reason or NULL. Executor events
 * (RUNNING, and FINISHED/FAILED from the worker that ran it) carry this process's node, worker
 * id and pid. Thread-safe. */
void cw_event_record(struct cw *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                     const uint8_t *actor, Rayc__TaskStatus state, const char *error, int executor);

/* cw_event_record with the time and the place given: time_us (wall clock, microseconds), node and
 * worker (ids of their sizes, or NULL) and pid (0: unknown). */
void cw_event_record_at(struct cw *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                        const uint8_t *actor, Rayc__TaskStatus state, const char *error, int64_t time_us,
                        const uint8_t *node, const uint8_t *worker, int pid);

/* Wall-clock microseconds since the epoch. */
int64_t cw_events_now_us(void);

/* Sends the buffered events to the GCS without waiting for the answer (the background thread,
 * cw->mu not held). With wait_ms > 0, waits up to that long for the answer (shutdown). */
void cw_events_flush(struct cw *cw, int wait_ms);

/* Frees the buffer. */
void cw_events_release(struct cw *cw);

#endif
