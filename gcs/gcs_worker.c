/* The GCS worker table and its RPC handlers (WorkerInfoGcsService). See gcs_worker.h. */
#include "gcs/gcs_worker.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"

#include <stdlib.h>
#include <string.h>

#define GCS_WORKER_TABLE "WORKER"

static const char *gcs_worker_state_name(enum gcs_worker_state s)
{
  return s == GCS_WORKER_ALIVE ? "ALIVE" : "DEAD";
}

static const char *gcs_worker_exit_name(Rayc__WorkerExitType t)
{
  static const char *names[] = {"none", "intended", "system error", "user error", "node died"};
  return (size_t)t < ARRAY_LEN(names) ? names[t] : "unknown";
}

void gcs_worker_set_state(gcs_worker_t *w, enum gcs_worker_state state)
{
  char id[9];
  const Rayc__WorkerInfo *i = w->info;
  id_short(w->id.b, ID_WORKER_SIZE, id);
  if (state == GCS_WORKER_DEAD)
    log_info("worker %s: %s -> DEAD (%s%s%s)", id, gcs_worker_state_name(w->state), gcs_worker_exit_name(i->exit_type),
             i->exit_detail[0] ? ": " : "", i->exit_detail);
  else
    log_info("worker %s: %s -> ALIVE", id, gcs_worker_state_name(w->state));
  w->state = state;
  w->info->is_alive = state == GCS_WORKER_ALIVE;
}

static void gcs_worker_free(gcs_worker_t *w)
{
  if (w)
    pb_free(w->info);
  free(w);
}

/* Writes w through to the store; errors are logged (memory stays authoritative). */
static void gcs_workers_persist(gcs_workers_t *t, const gcs_worker_t *w)
{
  int rc = gcs_store_put_msg(t->store, GCS_WORKER_TABLE, w->id.b, ID_WORKER_SIZE, &w->info->base);
  if (rc < 0)
    log_error("worker table: storing a worker failed: %s", rayc_strerror(rc));
}

/* Inserts w (owned), replacing and freeing an entry with the same id. */
static void gcs_workers_put(gcs_workers_t *t, gcs_worker_t *w)
{
  gcs_worker_t *old = hmap_put(&t->map, w->id.b, ID_WORKER_SIZE, w);
  if (old && old->state == GCS_WORKER_DEAD)
    t->ndead--;
  if (w->state == GCS_WORKER_DEAD)
    t->ndead++;
  gcs_worker_free(old);
}

static gcs_worker_t *gcs_worker_new(Rayc__WorkerInfo *info)
{
  gcs_worker_t *w = xcalloc(1, sizeof(*w));
  memcpy(w->id.b, info->worker_id.data, ID_WORKER_SIZE);
  w->info = info;
  w->state = info->is_alive ? GCS_WORKER_ALIVE : GCS_WORKER_DEAD;
  return w;
}

static void gcs_workers_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_workers_t *t = arg;
  Rayc__WorkerInfo *info = rayc__worker_info__unpack(NULL, vlen, val);
  if (!info || klen != ID_WORKER_SIZE || info->worker_id.len != ID_WORKER_SIZE ||
      memcmp(key, info->worker_id.data, ID_WORKER_SIZE) != 0) {
    log_warn("worker table: skipping an unreadable stored worker");
    pb_free(info);
    return;
  }
  gcs_worker_t *w = gcs_worker_new(info);
  if (w->state == GCS_WORKER_DEAD)
    w->died = ++t->deaths; /* load order: good enough for forgetting the oldest */
  gcs_workers_put(t, w);
}

void gcs_workers_init(gcs_workers_t *t, gcs_store_t *store)
{
  memset(t, 0, sizeof(*t));
  t->store = store;
  hmap_init(&t->map);
  int rc = gcs_store_scan(store, GCS_WORKER_TABLE, NULL, 0, gcs_workers_load_one, t);
  if (rc > 0)
    log_info("worker table: loaded %d workers from storage", rc);
}

void gcs_workers_release(gcs_workers_t *t)
{
  for (hmap_iter_t it = hmap_iter(&t->map); hmap_next(&it);)
    gcs_worker_free(it.value);
  hmap_release(&t->map);
  memset(t, 0, sizeof(*t));
}

gcs_worker_t *gcs_workers_find(const gcs_workers_t *t, const void *id, size_t len)
{
  return len == ID_WORKER_SIZE ? hmap_get(&t->map, id, len) : NULL;
}

int gcs_workers_register(gcs_workers_t *t, const Rayc__WorkerInfo *info)
{
  if (info->worker_id.len != ID_WORKER_SIZE)
    return RAYC_EINVALID_ARGUMENT;
  gcs_worker_t *w = gcs_worker_new((Rayc__WorkerInfo *)gcs_pb_dup(&info->base));
  w->state = GCS_WORKER_ALIVE;
  w->info->is_alive = 1;
  w->info->exit_type = RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_NONE;
  w->info->end_time_ms = 0;
  if (w->info->start_time_ms <= 0)
    w->info->start_time_ms = wall_ms();
  gcs_workers_put(t, w);
  char id[9];
  log_debug("worker %s: registered (ALIVE): pid %d", id_short(w->id.b, ID_WORKER_SIZE, id), w->info->pid);
  gcs_workers_persist(t, w);
  return 0;
}

/* Forgets the dead worker that died first, when more than GCS_WORKER_MAX_DEAD are kept. */
static void gcs_workers_trim(gcs_workers_t *t)
{
  if (t->ndead <= GCS_WORKER_MAX_DEAD)
    return;
  gcs_worker_t *oldest = NULL;
  for (hmap_iter_t it = hmap_iter(&t->map); hmap_next(&it);) {
    gcs_worker_t *w = it.value;
    if (w->state == GCS_WORKER_DEAD && (!oldest || w->died < oldest->died))
      oldest = w;
  }
  gcs_store_del(t->store, GCS_WORKER_TABLE, oldest->id.b, ID_WORKER_SIZE, 0);
  hmap_del(&t->map, oldest->id.b, ID_WORKER_SIZE);
  t->ndead--;
  gcs_worker_free(oldest);
}

/* Marks w DEAD with an exit type and detail (copied; NULL: keep): stores and publishes it. The
 * caller trims the dead afterwards (not while iterating the map). */
static void gcs_workers_kill(gcs_workers_t *t, gcs_worker_t *w, Rayc__WorkerExitType type, const char *detail)
{
  if (detail) { /* info is protobuf-c's: its strings are malloc'ed, except the shared empty one */
    if (w->info->exit_detail != protobuf_c_empty_string)
      free(w->info->exit_detail);
    w->info->exit_detail = xstrdup(detail);
  }
  w->info->exit_type = type;
  w->info->end_time_ms = wall_ms();
  w->died = ++t->deaths;
  gcs_worker_set_state(w, GCS_WORKER_DEAD);
  t->ndead++;
  gcs_workers_persist(t, w);
  gcs_pubsub_publish_worker(t->pubsub, w->info);
}

int gcs_workers_fail(gcs_workers_t *t, const Rayc__ReportWorkerFailureRequest *r)
{
  if (r->worker_id.len != ID_WORKER_SIZE)
    return RAYC_EINVALID_ARGUMENT;
  gcs_worker_t *w = gcs_workers_find(t, r->worker_id.data, r->worker_id.len);
  if (w && w->state == GCS_WORKER_DEAD)
    return 0;
  if (!w) {
    Rayc__WorkerInfo info = RAYC__WORKER_INFO__INIT;
    info.worker_id = r->worker_id;
    info.address = r->address;
    w = gcs_worker_new((Rayc__WorkerInfo *)gcs_pb_dup(&info.base));
    w->state = GCS_WORKER_ALIVE; /* for the transition logged below */
    gcs_workers_put(t, w);
  }
  Rayc__WorkerExitType type = r->exit_type == RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_NONE
                                  ? RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_SYSTEM_ERROR
                                  : r->exit_type;
  gcs_workers_kill(t, w, type, r->exit_detail);
  gcs_workers_trim(t);
  return 0;
}

int gcs_workers_on_node_dead(gcs_workers_t *t, const void *node_id)
{
  int n = 0;
  for (hmap_iter_t it = hmap_iter(&t->map); hmap_next(&it);) {
    gcs_worker_t *w = it.value;
    const Rayc__Address *a = w->info->address;
    if (w->state != GCS_WORKER_ALIVE || !a || a->node_id.len != ID_NODE_SIZE ||
        memcmp(a->node_id.data, node_id, ID_NODE_SIZE) != 0)
      continue;
    gcs_workers_kill(t, w, RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_NODE_DIED, "its node died");
    n++;
  }
  while (t->ndead > GCS_WORKER_MAX_DEAD)
    gcs_workers_trim(t);
  return n;
}

/* ---- handlers ---- */

void gcs_worker_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__RegisterWorkerRequest *r = (const Rayc__RegisterWorkerRequest *)req;
  if (!r->worker || gcs_workers_register(&s->workers, r->worker) < 0) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "RegisterWorker: worker_id must be 28 bytes");
    return;
  }
  Rayc__RegisterWorkerReply reply = RAYC__REGISTER_WORKER_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_worker_on_report_failure(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__ReportWorkerFailureRequest *r = (const Rayc__ReportWorkerFailureRequest *)req;
  if (gcs_workers_fail(&s->workers, r) < 0) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "ReportWorkerFailure: worker_id must be 28 bytes");
    return;
  }
  if (r->exit_type == RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_SYSTEM_ERROR ||
      r->exit_type == RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_USER_ERROR) {
    char id[9];
    gcs_event_add(s, RAYC__CLUSTER_EVENT_SEVERITY__EVENT_ERROR, "WORKER_KILLED", NULL, NULL, NULL, r->worker_id.data,
                  "worker %s died: %s", id_short(r->worker_id.data, ID_WORKER_SIZE, id), r->exit_detail);
  }
  Rayc__ReportWorkerFailureReply reply = RAYC__REPORT_WORKER_FAILURE_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_worker_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetAllWorkerInfoRequest *r = (const Rayc__GetAllWorkerInfoRequest *)req;
  size_t max = s->workers.map.count;
  if (r->limit > 0 && (size_t)r->limit < max)
    max = (size_t)r->limit;
  Rayc__WorkerInfo **v = xcalloc(max ? max : 1, sizeof(*v));
  size_t n = 0;
  for (hmap_iter_t it = hmap_iter(&s->workers.map); n < max && hmap_next(&it);)
    v[n++] = ((gcs_worker_t *)it.value)->info;
  Rayc__GetAllWorkerInfoReply reply = RAYC__GET_ALL_WORKER_INFO_REPLY__INIT;
  reply.n_workers = n;
  reply.workers = v;
  gcs_server_reply(s, call, &reply.base);
  free(v);
}
