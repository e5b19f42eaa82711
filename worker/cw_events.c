/*
 * The core worker's task event buffer; see worker/cw_events.h. Events are kept as a ring of
 * fixed-size records (names and errors cut to fit) so recording allocates nothing but an error
 * string.
 */
#include "worker/cw_events.h"

#include "common/frame.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "worker/cw.h"
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

static int cw_events_enabled(void)
{
  if (!cw_proc.events.checked) {
    const char *v = getenv("RAYC_TASK_EVENTS");
    cw_proc.events.off = v && strcmp(v, "0") == 0;
    cw_proc.events.checked = 1;
  }
  return !cw_proc.events.off;
}

int64_t cw_events_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A task id's first 20 bytes are random: mixing 16 of them and the attempt is enough (FNV over
 * the whole key cost more than the rest of recording). */
static size_t cw_ev_home(const uint8_t *task_id, int attempt, size_t nslots)
{
  uint64_t a, b;
  memcpy(&a, task_id, 8);
  memcpy(&b, task_id + 8, 8);
  uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL) ^ (uint32_t)attempt) * 0xff51afd7ed558ccdULL;
  return (size_t)(h ^ (h >> 32)) & (nslots - 1);
}

/* Doubles the index (or makes the first one) and re-inserts the buffered entries. */
static void cw_ev_index_grow(cw_ev_buf_t *b)
{
  size_t n = b->nslots ? 2 * b->nslots : 1024;
  free(b->slots);
  b->slots = xcalloc(n, sizeof(*b->slots));
  b->nslots = n;
  for (size_t i = 0; i < b->count; i++) {
    size_t at = cw_ev_home(b->evs[i].task, b->evs[i].attempt, n);
    while (b->slots[at])
      at = (at + 1) & (n - 1);
    b->slots[at] = (uint32_t)(i + 1);
  }
}

/* The buffered entry of this attempt, made on first use; NULL when the buffer is full. */
static cw_ev_t *cw_ev_slot(const uint8_t *task_id, int attempt)
{
  cw_ev_buf_t *b = &cw_proc.events;
  if (2 * (b->count + 1) > b->nslots)
    cw_ev_index_grow(b);
  size_t at = cw_ev_home(task_id, attempt, b->nslots);
  for (; b->slots[at]; at = (at + 1) & (b->nslots - 1)) {
    cw_ev_t *e = &b->evs[b->slots[at] - 1];
    if (e->attempt == attempt && memcmp(e->task, task_id, ID_TASK_SIZE) == 0)
      return e;
  }
  if (b->count == CW_EVENTS_MAX)
    return NULL;
  if (b->count == b->cap) {
    b->cap = b->cap ? 2 * b->cap : (b->cap_hint ? b->cap_hint : 256);
    b->evs = xrealloc(b->evs, b->cap * sizeof(*b->evs));
  }
  cw_ev_t *e = &b->evs[b->count++];
  memset(e, 0, sizeof(*e));
  memcpy(e->task, task_id, ID_TASK_SIZE);
  e->attempt = attempt;
  b->slots[at] = (uint32_t)b->count;
  return e;
}

void cw_event_record_at(cw_t *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                        const uint8_t *actor, Rayc__TaskStatus state, const char *error, int64_t time_us,
                        int64_t start_us, const uint8_t *node, const uint8_t *worker, int pid)
{
  (void)cw;
  pthread_mutex_lock(&cw_proc.events.mu);
  cw_ev_t *e = cw_events_enabled() ? cw_ev_slot(task_id, attempt) : NULL;
  if (!e) {
    cw_proc.events.dropped += !cw_proc.events.off;
    pthread_mutex_unlock(&cw_proc.events.mu);
    return;
  }
  if (actor) {
    memcpy(e->actor, actor, ID_ACTOR_SIZE);
    e->has_actor = 1;
  }
  if (node) {
    memcpy(e->node, node, ID_NODE_SIZE);
    memcpy(e->worker, worker, ID_WORKER_SIZE);
    e->has_place = 1;
  }
  if (pid)
    e->pid = pid;
  e->type = (uint8_t)type;
  if (state > e->state || state == RAYC__TASK_STATUS__FAILED)
    e->state = (uint8_t)state;
  e->ts[state] = time_us;
  if (start_us)
    e->ts[RAYC__TASK_STATUS__RUNNING] = start_us;
  if (!e->name[0] && name) {
    size_t n = strnlen(name, sizeof(e->name) - 1);
    memcpy(e->name, name, n);
    e->name[n] = '\0';
  }
  if (error && !e->error)
    e->error = strndup(error, 2048);
  pthread_mutex_unlock(&cw_proc.events.mu);
}

void cw_event_record(cw_t *cw, const uint8_t *task_id, int attempt, const char *name, Rayc__TaskType type,
                     const uint8_t *actor, Rayc__TaskStatus state, const char *error, int executor)
{
  cw_event_record_at(cw, task_id, attempt, name, type, actor, state, error, cw_events_now_us(), 0,
                     executor ? cw->node_id.b : NULL, executor ? cw->worker_id.b : NULL, executor ? cw->pid : 0);
}

/* Takes the buffered events out (*out: the buffer, now the caller's; free it); returns their number. */
static size_t cw_events_take(cw_ev_t **out, uint64_t *dropped)
{
  pthread_mutex_lock(&cw_proc.events.mu);
  size_t n = cw_proc.events.count;
  *out = cw_proc.events.evs;
  cw_proc.events.evs = NULL;
  if (cw_proc.events.cap)
    cw_proc.events.cap_hint = cw_proc.events.cap;
  cw_proc.events.count = cw_proc.events.cap = 0;
  if (cw_proc.events.slots)
    memset(cw_proc.events.slots, 0, cw_proc.events.nslots * sizeof(*cw_proc.events.slots));
  *dropped = cw_proc.events.dropped;
  cw_proc.events.dropped = 0;
  pthread_mutex_unlock(&cw_proc.events.mu);
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
    /* no job_id: a TaskID ends with its JobID, and the GCS takes it from there */
    m[i].name = e->name;
    m[i].type = (Rayc__TaskType)e->type;
    m[i].state = (Rayc__TaskStatus)e->state;
    m[i].time_us = e->ts[e->state];
    m[i].pending_us = e->ts[RAYC__TASK_STATUS__PENDING_ARGS_AVAIL];
    m[i].submitted_us = e->ts[RAYC__TASK_STATUS__SUBMITTED_TO_WORKER];
    m[i].start_us = e->ts[RAYC__TASK_STATUS__RUNNING];
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
  pthread_mutex_lock(&cw_proc.events.mu);
  if (!cw_proc.events.gcs_tried && cw->client) {
    cw_proc.events.gcs_tried = 1;
    char *addr = cw_actor_gcs_address(cw);
    if (addr)
      cw_proc.events.gcs = rpc_channel_get(cw->client, addr);
    free(addr);
  }
  rpc_channel_t *ch = cw_proc.events.gcs;
  pthread_mutex_unlock(&cw_proc.events.mu);
  return ch;
}

/* A worker hands a report of at most this many bytes to its raylet, which sends it on to the GCS over
 * the channel it keeps: a short-lived worker (an actor's: a constructor and a few calls) then never
 * opens a GCS connection of its own, which cost it ~2 ms of CPU and the GCS an accepted connection
 * and a channel stack per actor (docs/PERFORMANCE.md, session 9). A busy worker's larger reports
 * keep going straight to the GCS, so the raylet does not copy a task-heavy node's events. */
enum { CW_EVENTS_VIA_RAYLET_MAX = 64 * 1024 };

/* A worker registered with its raylet (drivers keep their own GCS channel for everything). */
static int cw_events_raylet_path(const cw_t *cw)
{
  return cw->is_worker && cw->raylet_fd >= 0 && !cw->gcs;
}

/* Sends req through the raylet's local connection; 0 when it was handed over. The GCS merges
 * events monotonically, so reports that take either path may arrive in any order. */
static int cw_events_via_raylet(cw_t *cw, Rayc__AddTaskEventDataRequest *req)
{
  if (!cw_events_raylet_path(cw) || protobuf_c_message_get_packed_size(&req->base) > CW_EVENTS_VIA_RAYLET_MAX)
    return -1;
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_TASK_EVENTS;
  m.task_events = req;
  pthread_mutex_lock(&cw_proc.send_mu);
  int rc = frame_send_msg(cw->raylet_fd, &m.base, -1);
  pthread_mutex_unlock(&cw_proc.send_mu);
  return rc;
}

/* Sends req to the GCS over this process's own channel (waiting up to wait_ms when > 0). */
static void cw_events_to_gcs(cw_t *cw, Rayc__AddTaskEventDataRequest *req, int wait_ms)
{
  rpc_channel_t *gcs = cw_events_gcs(cw);
  if (!gcs)
    return;
  if (wait_ms > 0) {
    ProtobufCMessage *resp = NULL;
    if (rpc_call_sync(gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req->base, wait_ms, &resp,
                      NULL) == 0)
      pb_free(resp);
  } else {
    rpc_call(gcs, &rayc__task_info_gcs_service__descriptor, "AddTaskEventData", &req->base, 10000, cw_events_sent, NULL);
  }
}

void cw_events_flush(cw_t *cw, int wait_ms)
{
  if (!cw_events_raylet_path(cw) && !cw_events_gcs(cw))
    return; /* nowhere to send them yet: they wait in the buffer */
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
  if (cw_events_via_raylet(cw, &req) != 0)
    cw_events_to_gcs(cw, &req, wait_ms);
  for (size_t i = 0; i < n; i++)
    free(evs[i].error);
  free(evs);
  free(ptrs);
  free(m);
}

void cw_events_release(cw_t *cw)
{
  (void)cw;
  pthread_mutex_lock(&cw_proc.events.mu);
  for (size_t i = 0; i < cw_proc.events.count; i++)
    free(cw_proc.events.evs[i].error);
  free(cw_proc.events.evs);
  cw_proc.events.evs = NULL;
  cw_proc.events.count = cw_proc.events.cap = 0;
  free(cw_proc.events.slots);
  cw_proc.events.slots = NULL;
  cw_proc.events.nslots = cw_proc.events.cap_hint = 0;
  cw_proc.events.gcs = NULL; /* destroyed with the client */
  cw_proc.events.gcs_tried = 0;
  pthread_mutex_unlock(&cw_proc.events.mu);
}
