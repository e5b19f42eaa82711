/*
 * The core worker's task event buffer; see worker/cw_events.h. Events are kept as a ring of
 * fixed-size records (names and errors cut to fit) so recording allocates nothing but an error
 * string.
 */
#include "worker/cw_events.h"

#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "worker/cw.h"
#include "worker/cw_actor.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

enum { EV_NAME_MAX = 64 };

typedef struct cw_ev {
  uint8_t task[ID_TASK_SIZE], actor[ID_ACTOR_SIZE], node[ID_NODE_SIZE], worker[ID_WORKER_SIZE];
  uint8_t has_actor, has_place, type, state;
  int32_t attempt, pid;
  int64_t time_us;
  char name[EV_NAME_MAX];
  char *error; /* owned */
} cw_ev_t;

/* The process's buffer (one core worker per process, as cw_global). */
static struct {
  pthread_mutex_t mu;
  cw_ev_t *ring;
  size_t start, count;
  uint64_t dropped;
  int off; /* RAYC_TASK_EVENTS=0 */
  int checked;
  rpc_channel_t *gcs; /* workers: the GCS found from the session (drivers use cw->gcs) */
  int gcs_tried;
} evb = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int cw_events_enabled(void)
{
  if (!evb.checked) {
    const char *v = getenv("RAYC_TASK_EVENTS");
    evb.off = v && strcmp(v, "0") == 0;
    evb.checked = 1;
  }
  return !evb.off;
}

int64_t cw_events_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void cw_event_record_at(cw_t *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                        const uint8_t *actor, Rayc__TaskStatus state, const char *error, int64_t time_us,
                        const uint8_t *node, const uint8_t *worker, int pid)
{
  (void)cw;
  pthread_mutex_lock(&evb.mu);
  if (!cw_events_enabled()) {
    pthread_mutex_unlock(&evb.mu);
    return;
  }
  if (!evb.ring)
    evb.ring = xcalloc(CW_EVENTS_MAX, sizeof(*evb.ring));
  if (evb.count == CW_EVENTS_MAX) { /* full: the oldest goes */
    free(evb.ring[evb.start].error);
    evb.start = (evb.start + 1) % CW_EVENTS_MAX;
    evb.count--;
    evb.dropped++;
  }
  cw_ev_t *e = &evb.ring[(evb.start + evb.count++) % CW_EVENTS_MAX];
  memcpy(e->task, task_id, ID_TASK_SIZE);
  e->has_actor = actor != NULL;
  if (actor)
    memcpy(e->actor, actor, ID_ACTOR_SIZE);
  e->has_place = node != NULL;
  if (node) {
    memcpy(e->node, node, ID_NODE_SIZE);
    memcpy(e->worker, worker, ID_WORKER_SIZE);
  }
  e->pid = pid;
  e->type = (uint8_t)type;
  e->state = (uint8_t)state;
  e->attempt = attempt;
  e->time_us = time_us;
  snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
  e->error = error ? strndup(error, 2048) : NULL;
  pthread_mutex_unlock(&evb.mu);
}

void cw_event_record(cw_t *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                     const uint8_t *actor, Rayc__TaskStatus state, const char *error, int executor)
{
  cw_event_record_at(cw, task_id, attempt, name, type, actor, state, error, cw_events_now_us(),
                     executor ? cw->node_id.b : NULL, executor ? cw->worker_id.b : NULL, executor ? (int)getpid() : 0);
}

/* Takes the buffered events out (new arrays, oldest first); returns their number. */
static size_t cw_events_take(cw_ev_t **out, uint64_t *dropped)
{
  pthread_mutex_lock(&evb.mu);
  size_t n = evb.count;
  *out = n ? xmalloc(n * sizeof(**out)) : NULL;
  for (size_t i = 0; i < n; i++)
    (*out)[i] = evb.ring[(evb.start + i) % CW_EVENTS_MAX];
  evb.start = evb.count = 0;
  *dropped = evb.dropped;
  evb.dropped = 0;
  pthread_mutex_unlock(&evb.mu);
  return n;
}

static void cw_events_sent(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0)
    log_debug("task events not delivered to the GCS: %s (%s)", rayc_strerror(status), detail ? detail : "");
  pb_free(resp);
}

/* Builds the request from evs (borrowed; the request points into them). */
static void cw_events_msg(cw_ev_t *evs, size_t n, Rayc__TaskEvent *m, Rayc__TaskEvent **ptrs)
{
  for (size_t i = 0; i < n; i++) {
    cw_ev_t *e = &evs[i];
    rayc__task_event__init(&m[i]);
    m[i].task_id = pb_bytes(e->task, ID_TASK_SIZE);
    m[i].attempt = e->attempt;
    m[i].job_id = pb_bytes(e->task + ID_TASK_SIZE - ID_JOB_SIZE, ID_JOB_SIZE); /* a TaskID ends with its JobID */
    m[i].name = e->name;
    m[i].type = (Rayc__TaskType)e->type;
    m[i].state = (Rayc__TaskStatus)e->state;
    m[i].time_us = e->time_us;
    if (e->has_actor)
      m[i].actor_id = pb_bytes(e->actor, ID_ACTOR_SIZE);
    if (e->error)
      m[i].error = e->error;
    if (e->has_place) {
      m[i].node_id = pb_bytes(e->node, ID_NODE_SIZE);
      m[i].worker_id = pb_bytes(e->worker, ID_WORKER_SIZE);
    }
    m[i].worker_pid = e->pid;
    ptrs[i] = &m[i];
  }
}

/* The GCS channel: the driver's, or (workers) the one the session's address file names. */
static rpc_channel_t *cw_events_gcs(cw_t *cw)
{
  if (cw->gcs)
    return cw->gcs;
  pthread_mutex_lock(&evb.mu);
  if (!evb.gcs_tried && cw->client) {
    evb.gcs_tried = 1;
    char *addr = cw_actor_gcs_address(cw);
    if (addr)
      evb.gcs = rpc_channel_get(cw->client, addr);
    free(addr);
  }
  rpc_channel_t *ch = evb.gcs;
  pthread_mutex_unlock(&evb.mu);
  return ch;
}

void cw_events_flush(cw_t *cw, int wait_ms)
{
  rpc_channel_t *gcs = cw_events_gcs(cw);
  if (!gcs)
    return;
  cw_ev_t *evs;
  uint64_t dropped;
  size_t n = cw_events_take(&evs, &dropped);
  if (!n && !dropped)
    return;
  Rayc__TaskEvent *m = xcalloc(n ? n : 1, sizeof(*m));
  Rayc__TaskEvent **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
  cw_events_msg(evs, n, m, ptrs);
  Rayc__AddTaskEventDataRequest req = RAYC__ADD_TASK_EVENT_DATA_REQUEST__INIT;
  req.events = ptrs;
  req.n_events = n;
  req.dropped = (int64_t)dropped;
  if (wait_ms > 0) {
    ProtobufCMessage *resp = NULL;
    if (rpc_call_sync(gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req.base, wait_ms, &resp,
                      NULL) == 0)
      pb_free(resp);
  } else {
    rpc_call(gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req.base, 10000, cw_events_sent,
             NULL);
  }
  for (size_t i = 0; i < n; i++)
    free(evs[i].error);
  free(evs);
  free(ptrs);
  free(m);
}

void cw_events_release(cw_t *cw)
{
  (void)cw;
  pthread_mutex_lock(&evb.mu);
  for (size_t i = 0; i < evb.count; i++)
    free(evb.ring[(evb.start + i) % CW_EVENTS_MAX].error);
  free(evb.ring);
  evb.ring = NULL;
  evb.start = evb.count = 0;
  evb.gcs = NULL; /* destroyed with the client */
  evb.gcs_tried = 0;
  pthread_mutex_unlock(&evb.mu);
}
