/*
 * Task events from the core worker (Ray's TaskEventBuffer): owners record when a task is
 * submitted, pushed to a worker, when it ran (the times the worker put in its PushTask reply) and
 * when it fails for good; workers running actor tasks record those themselves. Recording merges
 * the change into the buffer's entry for that task attempt, under the buffer's own mutex (never
 * cw->mu, so callers may hold cw->mu or not), and does no I/O: a task submitted, run and finished
 * within a second costs one entry and one event on the wire. The core worker's background thread
 * sends the buffer to the GCS once a second (AddTaskEventData, asynchronous: the task path never
 * waits for it; a worker's small reports go through its raylet, which sends them on), and
 * cw_destroy() sends what is left. At most CW_EVENTS_MAX attempts are buffered
 * between reports; changes past that are dropped and counted, and the count goes with the next
 * report. RAYC_TASK_EVENTS=0 turns recording off.
 */
#ifndef RAYC_CW_EVENTS_H
#define RAYC_CW_EVENTS_H

#include "common/ids.h"
#include "proto/gcs_task.pb-c.h"

#include <stdint.h>

struct cw;

enum { CW_EVENTS_MAX = 50000 }; /* task attempts changed per report (a second) */

/* Records one state change of attempt `attempt` of task id (name borrowed, copied). actor: the
 * actor id (ID_ACTOR_SIZE bytes) or NULL; error: FAILED's reason or NULL. Executor events
 * (RUNNING, and FINISHED/FAILED from the worker that ran it) carry this process's node, worker
 * id and pid. Thread-safe. */
void cw_event_record(struct cw *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                     const uint8_t *actor, Rayc__TaskStatus state, const char *error, int executor);

/* cw_event_record with the time and the place given: time_us (wall clock, microseconds), start_us
 * (an end event's RUNNING time, so one event says both; 0: none), node and worker (ids of their
 * sizes, or NULL) and pid (0: unknown). */
void cw_event_record_at(struct cw *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                        const uint8_t *actor, Rayc__TaskStatus state, const char *error, int64_t time_us,
                        int64_t start_us, const uint8_t *node, const uint8_t *worker, int pid);

/* Wall-clock microseconds since the epoch. */
int64_t cw_events_now_us(void);

/* Sends the buffered events to the GCS without waiting for the answer (the background thread,
 * cw->mu not held). With wait_ms > 0, waits up to that long for the answer (shutdown). */
void cw_events_flush(struct cw *cw, int wait_ms);

/* Frees the buffer. */
void cw_events_release(struct cw *cw);

#endif
