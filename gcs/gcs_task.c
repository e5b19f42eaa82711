/*
 * Task events and cluster events: see gcs/gcs_task.h.
 *
 * Task records live in one ring (recs, oldest at start, at most max), indexed by an
 * open-addressing table of ring positions keyed by (task id, attempt): merging a report allocates
 * nothing per record in the steady state (a record's slot is reused when the oldest is dropped,
 * in O(1)), and task names are interned (a few function names serve every record). Cluster
 * events are another ring.
 */
#include "gcs/gcs_task.h"

#include "common/hmap.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_LEN = ID_TASK_SIZE + 4, NAME_MAX_LEN = 256, ERROR_MAX_LEN = 4096, MSG_MAX_LEN = 1024 };

enum { NAMES_MAX = 4096 }; /* distinct task names interned; past that each record owns its name */

typedef struct task_rec {
  uint8_t key[KEY_LEN]; /* task id, then the attempt (big endian) */
  uint8_t job[ID_JOB_SIZE], node[ID_NODE_SIZE], worker[ID_WORKER_SIZE], actor[ID_ACTOR_SIZE];
  uint8_t has_job, has_node, has_worker, has_actor;
  int32_t attempt, pid;
  Rayc__TaskType type;
  Rayc__TaskStatus state;
  int64_t ts[6];      /* by TaskStatus: when it was entered (FINISHED and FAILED: the end) */
  uint8_t name_owned; /* name is the record's own (not interned) */
  char *name, *error;
} task_rec_t;

typedef struct cluster_event {
  uint64_t id;
  int64_t time_ms;
  Rayc__ClusterEventSeverity sev;
  char kind[32];
  char *msg;
  uint8_t node[ID_NODE_SIZE], job[ID_JOB_SIZE], actor[ID_ACTOR_SIZE], worker[ID_WORKER_SIZE];
  uint8_t has_node, has_job, has_actor, has_worker;
} cluster_event_t;

struct gcs_events {
  task_rec_t *recs; /* ring of records, oldest at first; grows to max, then its slots are reused */
  size_t first, n, recs_cap, max;
  uint32_t *slots; /* open addressing (linear probing): key -> position in recs + 1 (0: empty) */
  size_t nslots;   /* a power of two, at least twice n */
  hmap_t names;    /* interned task names: name -> char* (owned) */
  hmap_t counts;   /* state byte + name -> int64_t* records in that state, for rayc_tasks */
  hmap_t runs;     /* job id + node id -> gcs_task_runs_t*: attempts that ran there */
  uint64_t dropped, dropped_at_source;
  int dirty; /* the records changed since the last metrics refresh */
  cluster_event_t *ring;
  size_t cap, start, count;
  uint64_t next_id, ev_dropped;
};

gcs_events_t *gcs_events_create(size_t max_tasks, size_t max_events)
{
  gcs_events_t *e = xcalloc(1, sizeof(*e));
  hmap_init(&e->names);
  hmap_init(&e->counts);
  hmap_init(&e->runs);
  e->max = max_tasks ? max_tasks : 100000; /* 0: the settings' defaults */
  e->cap = max_events ? max_events : 10000;
  e->ring = xcalloc(e->cap, sizeof(*e->ring));
  e->next_id = 1;
  return e;
}

/* Frees what the record owns (its slot stays). */
static void task_rec_clear(task_rec_t *r)
{
  if (r->name_owned)
    free(r->name);
  free(r->error);
}

void gcs_events_destroy(gcs_events_t *e)
{
  if (!e)
    return;
  for (size_t i = 0; i < e->n; i++)
    task_rec_clear(&e->recs[(e->first + i) % e->recs_cap]);
  free(e->recs);
  free(e->slots);
  for (hmap_iter_t it = hmap_iter(&e->names); hmap_next(&it);)
    free(it.value);
  hmap_release(&e->names);
  for (hmap_iter_t it = hmap_iter(&e->counts); hmap_next(&it);)
    free(it.value);
  hmap_release(&e->counts);
  for (hmap_iter_t it = hmap_iter(&e->runs); hmap_next(&it);)
    free(it.value);
  hmap_release(&e->runs);
  for (size_t i = 0; i < e->count; i++)
    free(e->ring[(e->first + i) % e->cap].msg);
  free(e->ring);
  free(e);
}

/* ---- task records ---- */

/* Adds d to the count of records in state st named name (kept as records change, so the metrics
 * refresh reads a few counts instead of every record). */
static void task_count(gcs_events_t *e, Rayc__TaskStatus st, const char *name, int64_t d)
{
  char key[1 + NAME_MAX_LEN + 1];
  size_t n = strlen(name ? name : "");
  key[0] = (char)st;
  memcpy(key + 1, name ? name : "", n);
  int64_t *c = hmap_get(&e->counts, key, n + 1);
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    hmap_put(&e->counts, key, n + 1, c);
  }
  *c += d;
  e->dirty = 1;
}

/* A task id is 20 random bytes and the job id: mixing the first 16 and the attempt is enough. */
static size_t task_home(const gcs_events_t *e, const uint8_t *key)
{
  uint64_t a, b;
  uint32_t att;
  memcpy(&a, key, 8);
  memcpy(&b, key + 8, 8);
  memcpy(&att, key + ID_TASK_SIZE, 4);
  uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL) ^ att) * 0xff51afd7ed558ccdULL;
  return (size_t)(h ^ (h >> 32)) & (e->nslots - 1);
}

/* The index slot holding key, or the empty slot where it would go. */
static size_t task_slot(const gcs_events_t *e, const uint8_t *key)
{
  size_t at = task_home(e, key);
  while (e->slots[at] && memcmp(e->recs[e->slots[at] - 1].key, key, KEY_LEN) != 0)
    at = (at + 1) & (e->nslots - 1);
  return at;
}

/* Doubles the index (or makes the first one) and re-inserts every record. */
static void task_index_grow(gcs_events_t *e)
{
  free(e->slots);
  e->nslots = e->nslots ? 2 * e->nslots : 1024;
  e->slots = xcalloc(e->nslots, sizeof(*e->slots));
  for (size_t i = 0; i < e->n; i++) {
    size_t pos = (e->first + i) % e->recs_cap;
    e->slots[task_slot(e, e->recs[pos].key)] = (uint32_t)(pos + 1);
  }
}

/* Removes key from the index, shifting back the entries probed past it (linear probing keeps
 * every entry reachable from its home slot without tombstones). */
static void task_index_del(gcs_events_t *e, const uint8_t *key)
{
  size_t mask = e->nslots - 1, hole = task_slot(e, key);
  if (!e->slots[hole])
    return;
  for (size_t j = (hole + 1) & mask; e->slots[j]; j = (j + 1) & mask) {
    size_t home = task_home(e, e->recs[e->slots[j] - 1].key);
    if (((j - home) & mask) >= ((j - hole) & mask)) { /* home is not between hole and j */
      e->slots[hole] = e->slots[j];
      hole = j;
    }
  }
  e->slots[hole] = 0;
}

static void task_drop_oldest(gcs_events_t *e)
{
  task_rec_t *r = &e->recs[e->first];
  task_index_del(e, r->key);
  if (r->state)
    task_count(e, r->state, r->name, -1);
  task_rec_clear(r);
  e->first = (e->first + 1) % e->recs_cap;
  e->n--;
  e->dropped++;
}

/* Sets the record's name: the interned copy, or its own past NAMES_MAX distinct names. */
static void task_rec_name(gcs_events_t *e, task_rec_t *r, const char *name)
{
  size_t len = strnlen(name, NAME_MAX_LEN);
  char *s = hmap_get(&e->names, name, len);
  if (!s && e->names.count < NAMES_MAX) {
    s = strndup(name, len);
    hmap_put(&e->names, name, len, s);
  }
  r->name_owned = !s;
  r->name = s ? s : strndup(name, len);
}

/* A free slot at the ring's end (the ring grows until it holds max). */
static task_rec_t *task_rec_new(gcs_events_t *e)
{
  if (e->n >= e->max)
    task_drop_oldest(e);
  if (e->n == e->recs_cap) { /* not full yet, so start is 0 and the ring is linear */
    e->recs_cap = e->recs_cap ? 2 * e->recs_cap : 1024;
    if (e->recs_cap > e->max)
      e->recs_cap = e->max;
    e->recs = xrealloc(e->recs, e->recs_cap * sizeof(*e->recs));
  }
  if (2 * (e->n + 1) > e->nslots)
    task_index_grow(e);
  size_t pos = (e->first + e->n++) % e->recs_cap;
  task_rec_t *r = &e->recs[pos];
  memset(r, 0, sizeof(*r));
  return r;
}

static task_rec_t *task_rec_get(gcs_events_t *e, const Rayc__TaskEvent *ev)
{
  uint8_t key[KEY_LEN];
  memcpy(key, ev->task_id.data, ID_TASK_SIZE);
  uint32_t a = (uint32_t)ev->attempt;
  key[ID_TASK_SIZE] = (uint8_t)(a >> 24), key[ID_TASK_SIZE + 1] = (uint8_t)(a >> 16);
  key[ID_TASK_SIZE + 2] = (uint8_t)(a >> 8), key[ID_TASK_SIZE + 3] = (uint8_t)a;
  if (e->n) {
    uint32_t at = e->slots[task_slot(e, key)];
    if (at)
      return &e->recs[at - 1];
  }
  task_rec_t *r = task_rec_new(e);
  memcpy(r->key, key, KEY_LEN);
  r->attempt = ev->attempt;
  e->slots[task_slot(e, key)] = (uint32_t)(r - e->recs + 1);
  return r;
}

static int task_terminal(Rayc__TaskStatus s)
{
  return s == RAYC__TASK_STATUS__FINISHED || s == RAYC__TASK_STATUS__FAILED;
}

static void set_id(uint8_t *dst, uint8_t *has, const ProtobufCBinaryData *src, size_t size)
{
  if (src->len == size) {
    memcpy(dst, src->data, size);
    *has = 1;
  }
}

/* Counts an attempt that just ended after running on a known node for its job and node: kept apart
 * from the bounded records, so dropping records loses none of these counts. */
static void task_count_run(gcs_events_t *e, const task_rec_t *r)
{
  if (!r->has_job || !r->has_node || !r->ts[RAYC__TASK_STATUS__RUNNING])
    return;
  uint8_t key[ID_JOB_SIZE + ID_NODE_SIZE];
  memcpy(key, r->job, ID_JOB_SIZE);
  memcpy(key + ID_JOB_SIZE, r->node, ID_NODE_SIZE);
  gcs_task_runs_t *c = hmap_get(&e->runs, key, sizeof(key));
  if (!c) {
    c = xcalloc(1, sizeof(*c));
    memcpy(c->node, r->node, ID_NODE_SIZE);
    hmap_put(&e->runs, key, sizeof(key), c);
  }
  c->tasks++;
  c->actors += r->type == RAYC__TASK_TYPE__ACTOR_CREATION_TASK && r->state == RAYC__TASK_STATUS__FINISHED;
}

size_t gcs_task_runs_of_job(const gcs_events_t *e, const uint8_t *job, gcs_task_runs_t **out)
{
  size_t n = 0;
  *out = NULL;
  for (hmap_iter_t it = hmap_iter(&e->runs); hmap_next(&it);) {
    if (memcmp(it.key, job, ID_JOB_SIZE) != 0)
      continue;
    *out = xrealloc(*out, (n + 1) * sizeof(**out));
    (*out)[n++] = *(const gcs_task_runs_t *)it.value;
  }
  return n;
}

/* Merges one event into its record. */
static void task_apply(gcs_events_t *e, const Rayc__TaskEvent *ev)
{
  task_rec_t *r = task_rec_get(e, ev);
  Rayc__TaskStatus st = ev->state, old = r->state;
  int had_name = r->name != NULL;
  if (!r->ts[st] || task_terminal(st))
    r->ts[st] = ev->time_us;
  if (ev->start_us > 0 && !r->ts[RAYC__TASK_STATUS__RUNNING])
    r->ts[RAYC__TASK_STATUS__RUNNING] = ev->start_us;
  if (ev->pending_us > 0 && !r->ts[RAYC__TASK_STATUS__PENDING_ARGS_AVAIL])
    r->ts[RAYC__TASK_STATUS__PENDING_ARGS_AVAIL] = ev->pending_us;
  if (ev->submitted_us > 0 && !r->ts[RAYC__TASK_STATUS__SUBMITTED_TO_WORKER])
    r->ts[RAYC__TASK_STATUS__SUBMITTED_TO_WORKER] = ev->submitted_us;
  if (!task_terminal(r->state) && (task_terminal(st) || st > r->state))
    r->state = st;
  if (ev->name[0] && !r->name)
    task_rec_name(e, r, ev->name);
  if (r->state != old || (r->name && !had_name)) {
    if (old)
      task_count(e, old, had_name ? r->name : "", -1);
    task_count(e, r->state, r->name, 1);
  }
  if (ev->error[0] && !r->error)
    r->error = strndup(ev->error, ERROR_MAX_LEN);
  if (ev->type)
    r->type = ev->type;
  if (ev->worker_pid > 0)
    r->pid = ev->worker_pid;
  set_id(r->job, &r->has_job, &ev->job_id, ID_JOB_SIZE);
  if (!r->has_job) { /* reporters leave it out: a TaskID ends with its JobID */
    memcpy(r->job, r->key + ID_TASK_SIZE - ID_JOB_SIZE, ID_JOB_SIZE);
    r->has_job = 1;
  }
  set_id(r->node, &r->has_node, &ev->node_id, ID_NODE_SIZE);
  set_id(r->worker, &r->has_worker, &ev->worker_id, ID_WORKER_SIZE);
  set_id(r->actor, &r->has_actor, &ev->actor_id, ID_ACTOR_SIZE);
  if (task_terminal(r->state) && !task_terminal(old))
    task_count_run(e, r);
}

static int task_event_valid(const Rayc__TaskEvent *ev)
{
  return ev->task_id.len == ID_TASK_SIZE && ev->attempt >= 0 && ev->state > RAYC__TASK_STATUS__TASK_STATUS_NIL &&
         ev->state <= RAYC__TASK_STATUS__FAILED && (unsigned)ev->type <= RAYC__TASK_TYPE__ACTOR_TASK;
}

void gcs_task_on_add(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__AddTaskEventDataRequest *r = (const Rayc__AddTaskEventDataRequest *)req;
  size_t bad = 0;
  for (size_t i = 0; i < r->n_events; i++) {
    if (task_event_valid(r->events[i]))
      task_apply(s->events, r->events[i]);
    else
      bad++;
  }
  if (r->dropped > 0)
    s->events->dropped_at_source += (uint64_t)r->dropped;
  if (bad) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT,
                    "AddTaskEventData: %zu of %zu events malformed (task id of %d "
                    "bytes, a known state and type) and skipped",
                    bad, r->n_events, ID_TASK_SIZE);
    return;
  }
  rpc_reply(call, NULL);
}

/* Fills m from r; byte fields point into r. */
static void task_rec_view(const task_rec_t *r, Rayc__TaskRecord *m)
{
  rayc__task_record__init(m);
  m->task_id = pb_bytes(r->key, ID_TASK_SIZE);
  m->attempt = r->attempt;
  if (r->has_job)
    m->job_id = pb_bytes(r->job, ID_JOB_SIZE);
  m->name = r->name ? r->name : (char *)protobuf_c_empty_string;
  m->type = r->type;
  m->state = r->state;
  m->pending_us = r->ts[RAYC__TASK_STATUS__PENDING_ARGS_AVAIL];
  m->submitted_us = r->ts[RAYC__TASK_STATUS__SUBMITTED_TO_WORKER];
  m->start_us = r->ts[RAYC__TASK_STATUS__RUNNING];
  m->end_us = r->state == RAYC__TASK_STATUS__FAILED ? r->ts[RAYC__TASK_STATUS__FAILED]
                                                    : r->ts[RAYC__TASK_STATUS__FINISHED];
  if (r->has_node)
    m->node_id = pb_bytes(r->node, ID_NODE_SIZE);
  if (r->has_worker)
    m->worker_id = pb_bytes(r->worker, ID_WORKER_SIZE);
  if (r->has_actor)
    m->actor_id = pb_bytes(r->actor, ID_ACTOR_SIZE);
  m->error = r->error ? r->error : (char *)protobuf_c_empty_string;
  m->worker_pid = r->pid;
}

static int task_matches(const task_rec_t *r, const Rayc__GetTaskEventsRequest *q)
{
  if (q->job_id.len && !(q->job_id.len == ID_JOB_SIZE && r->has_job && !memcmp(r->job, q->job_id.data, ID_JOB_SIZE)))
    return 0;
  return !q->task_id.len || (q->task_id.len == ID_TASK_SIZE && !memcmp(r->key, q->task_id.data, ID_TASK_SIZE));
}

void gcs_task_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetTaskEventsRequest *q = (const Rayc__GetTaskEventsRequest *)req;
  gcs_events_t *e = s->events;
  size_t total = 0;
  for (size_t i = 0; i < e->n; i++)
    total += task_matches(&e->recs[(e->first + i) % e->recs_cap], q);
  size_t want = q->limit > 0 && (size_t)q->limit < total ? (size_t)q->limit : total, skip = total - want, k = 0;
  Rayc__TaskRecord *recs = xcalloc(want ? want : 1, sizeof(*recs));
  Rayc__TaskRecord **ptrs = xcalloc(want ? want : 1, sizeof(*ptrs));
  for (size_t i = 0; i < e->n && k < want; i++) {
    const task_rec_t *r = &e->recs[(e->first + i) % e->recs_cap];
    if (!task_matches(r, q) || (skip && skip--))
      continue;
    task_rec_view(r, &recs[k]);
    ptrs[k] = &recs[k];
    k++;
  }
  Rayc__GetTaskEventsReply reply = RAYC__GET_TASK_EVENTS_REPLY__INIT;
  reply.tasks = ptrs;
  reply.n_tasks = k;
  reply.num_dropped = (int64_t)e->dropped;
  reply.num_dropped_at_source = (int64_t)e->dropped_at_source;
  reply.num_total = (int64_t)total;
  rpc_reply(call, &reply.base);
  free(ptrs);
  free(recs);
}

void gcs_task_events_metrics(gcs_server_t *s)
{
  gcs_events_t *e = s->events;
  if (!e->dirty)
    return;
  e->dirty = 0;
  metrics_family_t *f = metrics_family("rayc_tasks", METRICS_GAUGE,
                                       "Task attempts the GCS keeps events of, by state and name.", "State,Name");
  metrics_family_clear(f);
  for (hmap_iter_t it = hmap_iter(&e->counts); hmap_next(&it);) {
    int64_t n = *(int64_t *)it.value;
    if (n <= 0) { /* no record in that state any more */
      free(it.value);
      hmap_del(&e->counts, it.key, it.klen);
      continue;
    }
    const char *k = it.key;
    char name[NAME_MAX_LEN + 1];
    snprintf(name, sizeof(name), "%.*s", (int)it.klen - 1, k + 1);
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&rayc__task_status__descriptor, k[0]);
    metrics_set(metrics_series2(f, v ? v->name : "UNKNOWN", name), (double)n);
  }
  metrics_set(metrics_series0(metrics_family("rayc_task_events_dropped_total", METRICS_COUNTER,
                                             "Task records the GCS dropped to stay within task-events-max.", NULL)),
              (double)e->dropped);
}

/* ---- cluster events ---- */

void gcs_event_add(gcs_server_t *s, Rayc__ClusterEventSeverity sev, const char *kind, const uint8_t *node,
                   const uint8_t *job, const uint8_t *actor, const uint8_t *worker, const char *fmt, ...)
{
  gcs_events_t *e = s->events;
  if (!e)
    return;
  if (e->count == e->cap) {
    free(e->ring[e->start].msg);
    e->start = (e->start + 1) % e->cap;
    e->count--;
    e->ev_dropped++;
  }
  cluster_event_t *ev = &e->ring[(e->start + e->count++) % e->cap];
  memset(ev, 0, sizeof(*ev));
  ev->id = e->next_id++;
  ev->time_ms = wall_ms();
  ev->sev = sev;
  snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
  va_list ap;
  va_start(ap, fmt);
  char buf[MSG_MAX_LEN];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  ev->msg = xstrdup(buf);
#define EV_ID(f, size)      \
  if (f) {                  \
    memcpy(ev->f, f, size); \
    ev->has_##f = 1;        \
  }
  EV_ID(node, ID_NODE_SIZE)
  EV_ID(job, ID_JOB_SIZE)
  EV_ID(actor, ID_ACTOR_SIZE)
  EV_ID(worker, ID_WORKER_SIZE)
#undef EV_ID
  log_msg(sev == RAYC__CLUSTER_EVENT_SEVERITY__EVENT_INFO ? LOG_INFO : LOG_WARN, "event %s: %s", kind, buf);
}

void gcs_event_on_report(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__ClusterEvent *ev = ((const Rayc__ReportClusterEventRequest *)req)->event;
  if (!ev || !ev->kind[0] || strlen(ev->kind) >= 32 ||
      (unsigned)ev->severity > RAYC__CLUSTER_EVENT_SEVERITY__EVENT_ERROR) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT,
                    "ReportClusterEvent: an event needs a kind (< 32 characters) and a "
                    "known severity");
    return;
  }
#define EV_ARG(f, size) (ev->f.len == (size) ? ev->f.data : NULL)
  gcs_event_add(s, ev->severity, ev->kind, EV_ARG(node_id, ID_NODE_SIZE), EV_ARG(job_id, ID_JOB_SIZE),
                EV_ARG(actor_id, ID_ACTOR_SIZE), EV_ARG(worker_id, ID_WORKER_SIZE), "%.*s", (int)MSG_MAX_LEN - 1,
                ev->message);
#undef EV_ARG
  rpc_reply(call, NULL);
}

static void cluster_event_view(const cluster_event_t *ev, Rayc__ClusterEvent *m)
{
  rayc__cluster_event__init(m);
  m->event_id = ev->id;
  m->time_ms = ev->time_ms;
  m->severity = ev->sev;
  m->source = (char *)"GCS";
  m->kind = (char *)ev->kind;
  m->message = ev->msg;
  if (ev->has_node)
    m->node_id = pb_bytes(ev->node, ID_NODE_SIZE);
  if (ev->has_job)
    m->job_id = pb_bytes(ev->job, ID_JOB_SIZE);
  if (ev->has_actor)
    m->actor_id = pb_bytes(ev->actor, ID_ACTOR_SIZE);
  if (ev->has_worker)
    m->worker_id = pb_bytes(ev->worker, ID_WORKER_SIZE);
}

void gcs_event_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetClusterEventsRequest *q = (const Rayc__GetClusterEventsRequest *)req;
  gcs_events_t *e = s->events;
  size_t want = q->limit > 0 && (size_t)q->limit < e->count ? (size_t)q->limit : e->count;
  Rayc__ClusterEvent *evs = xcalloc(want ? want : 1, sizeof(*evs));
  Rayc__ClusterEvent **ptrs = xcalloc(want ? want : 1, sizeof(*ptrs));
  for (size_t i = 0; i < want; i++) {
    cluster_event_view(&e->ring[(e->start + e->count - want + i) % e->cap], &evs[i]);
    ptrs[i] = &evs[i];
  }
  Rayc__GetClusterEventsReply reply = RAYC__GET_CLUSTER_EVENTS_REPLY__INIT;
  reply.events = ptrs;
  reply.n_events = want;
  reply.num_dropped = (int64_t)e->ev_dropped;
  rpc_reply(call, &reply.base);
  free(ptrs);
  free(evs);
}
