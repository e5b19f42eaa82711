/*
 * Streaming generator returns (Ray's num_returns="streaming"): a task submitted with
 * rayc_task_opts.streaming returns one object, the generator; while it runs, every rayc_yield
 * becomes an object of its own that the caller reads, in order, with rayc_stream_next before the
 * task has finished.
 *
 * Worker side (rayc_yield_parts, the executing thread): an item is written like a task result,
 * inline up to CW_INLINE_MAX or into this node's store, gets the task's return id of index k + 2
 * (the generator is return 1), and is reported to the caller with a synchronous
 * ReportGeneratorItem call; the task goes on when the caller has it. So items arrive in order, and
 * all of them before the PushTask reply, whose one result (the generator object) holds the item
 * count. The caller is registered as a borrower of the refs an item contains before the report, as
 * for results.
 *
 * Owner side: a stream per generator object, created by the first report or the first
 * rayc_stream_next; it keeps the item ids in order, each item held once (local_refs) until
 * rayc_stream_next hands that hold to the caller. The stream goes when the generator object is
 * freed (cw_stream_forget, from cw_obj_free), dropping the items nobody took; an item reported
 * after that is dropped at once. A retried task reports its items again: indexes already held are
 * ignored (Ray's rule: the generator re-runs and must be deterministic). Items are not lineage:
 * a lost item is not re-made (ObjectLostError).
 *
 * Locking: the owner's state is under cw->mu; rayc_stream_next waits on cw->cv, which
 * cw_obj_set_* broadcast when an item or the generator becomes ready.
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cw_stream {
  id_object_t gen;
  id_object_t *items; /* in order; items[next..n) are held by the stream */
  size_t n, cap, next;
} cw_stream_t;

struct cw_streams {
  hmap_t map; /* generator object id -> cw_stream_t */
};

enum { STREAM_REPORT_TIMEOUT_MS = 60000, STREAM_MAX_ITEMS = 0x3fffffff };

/* ---- owner side (cw->mu held) ---- */

static cw_stream_t *stream_find(cw_t *cw, const id_object_t *gen)
{
  return cw->streams ? hmap_get(&cw->streams->map, gen->b, ID_OBJECT_SIZE) : NULL;
}

static cw_stream_t *stream_get(cw_t *cw, const id_object_t *gen)
{
  cw_stream_t *s = stream_find(cw, gen);
  if (s)
    return s;
  if (!cw->streams) {
    cw->streams = xcalloc(1, sizeof(*cw->streams));
    hmap_init(&cw->streams->map);
  }
  s = xcalloc(1, sizeof(*s));
  s->gen = *gen;
  hmap_put(&cw->streams->map, gen->b, ID_OBJECT_SIZE, s);
  return s;
}

void cw_stream_forget(cw_t *cw, const id_object_t *gen)
{
  cw_stream_t *s = stream_find(cw, gen);
  if (!s)
    return;
  hmap_del(&cw->streams->map, gen->b, ID_OBJECT_SIZE);
  for (size_t i = s->next; i < s->n && !cw->releasing; i++) {
    cw_object_t *o = cw_obj_get(cw, &s->items[i]);
    if (o)
      cw_obj_unref(cw, o);
  }
  free(s->items);
  free(s);
  if (cw->streams->map.count == 0) {
    hmap_release(&cw->streams->map);
    free(cw->streams);
    cw->streams = NULL;
  }
}

/* Makes the reported item an owned object held once (by the stream, or nobody: dropped). */
static void stream_take_item(cw_t *cw, cw_stream_t *s, const Rayc__ReturnObject *r)
{
  const id_object_t *id = (const id_object_t *)r->object_id.data;
  cw_object_t *o = cw_obj_new(cw, id);
  o->local_refs = 1;
  if (r->n_nested_refs)
    cw_borrow_apply_result(cw, o, r->nested_refs, r->n_nested_refs);
  if (r->in_store)
    cw_obj_set_store(cw, o, (const id_node_t *)r->node_id.data, r->size, r->store_address);
  else
    cw_obj_set_inline(cw, o, r->data.data, r->data.len);
  if (!s) { /* nobody holds the generator any more */
    cw_obj_unref(cw, o);
    return;
  }
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 8;
    s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
  }
  s->items[s->n++] = *id;
}

static const char *report_check(const Rayc__ReportGeneratorItemRequest *req)
{
  const Rayc__ReturnObject *r = req->item;
  if (req->task_id.len != ID_TASK_SIZE || !r || r->object_id.len != ID_OBJECT_SIZE || r->error)
    return "task_id must be a task id and item an object without an error";
  if (req->index >= STREAM_MAX_ITEMS)
    return "index out of range";
  id_task_t t;
  memcpy(t.b, req->task_id.data, ID_TASK_SIZE);
  id_object_t want = id_object_for_task(t, req->index + 2);
  if (memcmp(want.b, r->object_id.data, ID_OBJECT_SIZE) != 0)
    return "item.object_id is not the task's return index + 2";
  if (r->in_store && (r->node_id.len != ID_NODE_SIZE || !r->store_address || !*r->store_address))
    return "an item in a store needs node_id and store_address";
  return NULL;
}

void cw_on_report_generator_item(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__ReportGeneratorItemRequest *req = (const Rayc__ReportGeneratorItemRequest *)m;
  Rayc__ReportGeneratorItemReply rep = RAYC__REPORT_GENERATOR_ITEM_REPLY__INIT;
  const char *bad = report_check(req);
  if (req->owner_worker_id.len != ID_WORKER_SIZE || memcmp(req->owner_worker_id.data, cw->worker_id.b, ID_WORKER_SIZE))
    bad = "owner_worker_id names another process (the owner is gone)";
  if (bad) {
    rpc_reply_error(call, strncmp(bad, "owner", 5) ? RAYC_EINVALID_ARGUMENT : RAYC_ENOT_FOUND, "%s", bad);
    return;
  }
  id_task_t t;
  memcpy(t.b, req->task_id.data, ID_TASK_SIZE);
  id_object_t gen = id_object_for_task(t, 1);
  pthread_mutex_lock(&cw->mu);
  cw_object_t *g = cw_obj_get(cw, &gen);
  cw_stream_t *s = g && !g->owner && g->state == OBJ_PENDING ? stream_get(cw, &gen) : NULL;
  const Rayc__ReturnObject *r = req->item;
  int dup = cw_obj_get(cw, (const id_object_t *)r->object_id.data) != NULL || (s && req->index < s->n);
  if (s && !dup && req->index > s->n) {
    pthread_mutex_unlock(&cw->mu);
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "item %u reported before item %zu", req->index, s->n);
    return;
  }
  if (dup) { /* a retried task's item already held: undo what the worker registered for us */
    if (r->n_nested_refs)
      cw_borrow_apply_result(cw, NULL, r->nested_refs, r->n_nested_refs);
  } else {
    stream_take_item(cw, s, r);
  }
  rep.released = s == NULL;
  pthread_mutex_unlock(&cw->mu);
  rpc_reply(call, &rep.base);
}

/* 1: an item is there (or the stream ended, or failed), 0: not yet; the generator's entry in *g. */
static int stream_state(cw_t *cw, const rayc_ref *gen, cw_object_t **g, cw_stream_t **s)
{
  *g = cw_obj_get(cw, (const id_object_t *)gen->id);
  if (!*g || (*g)->owner)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "not a generator this process owns (a streaming task's result)");
  *s = stream_get(cw, (const id_object_t *)gen->id);
  return (*s)->next < (*s)->n || (*g)->state != OBJ_PENDING;
}

int rayc_stream_next(const rayc_ref *gen, int64_t timeout_ms, rayc_ref *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!gen || !out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_stream_next: gen and out must not be NULL");
  struct timespec dl = realtime_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
  cw_object_t *g;
  cw_stream_t *s;
  int rc;
  pthread_mutex_lock(&cw->mu);
  while ((rc = stream_state(cw, gen, &g, &s)) == 0) {
    if (timeout_ms == 0 || (timeout_ms > 0 && pthread_cond_timedwait(&cw->cv, &cw->mu, &dl) == ETIMEDOUT)) {
      rc = cw_set_error(RAYC_ETIMEOUT, "no item within %lld ms", (long long)timeout_ms);
      break;
    }
    if (timeout_ms < 0)
      pthread_cond_wait(&cw->cv, &cw->mu);
  }
  if (rc == 1 && s->next < s->n) { /* the stream's hold becomes the caller's */
    memcpy(out->id, s->items[s->next++].b, ID_OBJECT_SIZE);
  } else if (rc == 1 && g->state == OBJ_ERROR) {
    rc = cw_set_error(g->err, "%s", g->err_msg ? g->err_msg : rayc_strerror(g->err));
  } else if (rc == 1) {
    rc = 0; /* the task finished: the end */
  }
  pthread_mutex_unlock(&cw->mu);
  return rc;
}

int rayc_stream_ready(const rayc_ref *gen)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!gen)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_stream_ready: gen must not be NULL");
  cw_object_t *g;
  cw_stream_t *s;
  pthread_mutex_lock(&cw->mu);
  int rc = stream_state(cw, gen, &g, &s);
  pthread_mutex_unlock(&cw->mu);
  return rc;
}

/* ---- worker side ---- */

/* Writes the item into r: inline (*heap, to free) or sealed in this node's store. */
static int yield_write(cw_t *cw, const Rayc__TaskSpec *spec, const id_object_t *id, size_t len, const rayc_part *parts,
                       size_t nparts, Rayc__ReturnObject *r, uint8_t **heap, int *created)
{
  r->object_id = pb_bytes(id->b, ID_OBJECT_SIZE);
  if (len <= CW_INLINE_MAX) {
    *heap = xmalloc(len ? len : 1);
    cw_copy_parts(NULL, *heap, len, parts, nparts); /* inline: small */
    r->data = pb_bytes(*heap, len);
    return 0;
  }
  uint8_t owner[512];
  size_t olen = rayc__address__get_packed_size(spec->caller) <= sizeof(owner) ? rayc__address__pack(spec->caller, owner)
                                                                              : 0;
  uint8_t *dst = NULL;
  int rc = store_client_create(cw->store, id->b, len, 0, owner, olen, cw->put_timeout_ms, &dst);
  if (rc == 0) {
    cw_copy_parts(cw->copy, dst, len, parts, nparts);
    rc = store_client_seal_release(cw->store, id->b);
    *created = rc == 0;
  } else if (rc == RAYC_EALREADY_EXISTS) {
    rc = 0; /* an earlier attempt on this node wrote it: the same bytes */
  }
  if (rc != 0)
    return cw_set_error(rc, "rayc_yield: item of %zu bytes could not be stored: %s", len, rayc_strerror(rc));
  r->in_store = 1;
  r->node_id = pb_bytes(cw->node_id.b, ID_NODE_SIZE);
  r->store_address = cw->store_address;
  r->size = len;
  return 0;
}

/* Registers the caller as a borrower of the item's refs and lists them in r. */
static int yield_refs(cw_t *cw, const Rayc__TaskSpec *spec, const rayc_ref *refs, size_t nrefs, Rayc__ReturnObject *r,
                      cw_nested_t **v, cw_nested_msg_t *msg)
{
  if (!nrefs)
    return 0;
  pthread_mutex_lock(&cw->mu);
  int rc = cw_nested_from_refs(cw, refs, nrefs, CW_HOLD_LOCAL, v, "rayc_yield");
  if (rc == 0) {
    cw_object_t **objs = xmalloc(nrefs * sizeof(*objs));
    for (size_t i = 0; i < nrefs; i++)
      objs[i] = (*v)[i].obj;
    cw_nested_msg_build(cw, *v, nrefs, msg);
    cw_borrow_register(cw, objs, nrefs, spec->caller);
    free(objs);
    r->nested_refs = msg->groups;
    r->n_nested_refs = msg->n;
  }
  pthread_mutex_unlock(&cw->mu);
  return rc;
}

static int yield_report(cw_t *cw, const Rayc__TaskSpec *spec, uint32_t index, Rayc__ReturnObject *item)
{
  Rayc__ReportGeneratorItemRequest req = RAYC__REPORT_GENERATOR_ITEM_REQUEST__INIT;
  req.owner_worker_id = spec->caller->worker_id;
  req.task_id = spec->task_id;
  req.index = index;
  req.item = item;
  req.attempt = spec->attempt;
  char target[96];
  snprintf(target, sizeof(target), "%s:%d", spec->caller->ip, spec->caller->port);
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(rpc_channel_get(cw->client, target), &rayc__core_worker_service__descriptor,
                         "ReportGeneratorItem", &req.base, STREAM_REPORT_TIMEOUT_MS, &resp, &detail);
  if (rc == 0 && ((Rayc__ReportGeneratorItemReply *)resp)->released)
    log_debug("task %s: the caller released its generator; item %u dropped", spec->function_name, index);
  if (rc != 0)
    cw_set_error(rc == RAYC_ENOT_FOUND ? RAYC_EOWNER_DIED : rc, "rayc_yield: the caller at %s did not take item %u: %s",
                 target, index, detail ? detail : rayc_strerror(rc));
  pb_free(resp);
  free(detail);
  return rc == RAYC_ENOT_FOUND ? RAYC_EOWNER_DIED : rc;
}

int rayc_yield_parts(rayc_task_ctx *ctx, size_t len, const rayc_part *parts, size_t nparts, const rayc_ref *refs,
                     size_t nrefs)
{
  cw_t *cw = NULL;
  const Rayc__TaskSpec *spec = NULL;
  uint32_t *count = ctx ? cw_exec_stream_state(ctx, &cw, &spec) : NULL;
  if (!count)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_yield: not called from a streaming task");
  if (cw_parts_check("rayc_yield", len, parts, nparts) != 0)
    return RAYC_EINVALID_ARGUMENT;
  if ((nrefs && !refs) || *count >= STREAM_MAX_ITEMS)
    return cw_set_error(RAYC_EINVALID_ARGUMENT,
                        "rayc_yield: refs is NULL, or the task yielded %u items already (at most %d)", *count,
                        STREAM_MAX_ITEMS);
  id_task_t t;
  memcpy(t.b, spec->task_id.data, ID_TASK_SIZE);
  id_object_t id = id_object_for_task(t, *count + 2);
  Rayc__ReturnObject item = RAYC__RETURN_OBJECT__INIT;
  uint8_t *heap = NULL;
  cw_nested_t *v = NULL;
  cw_nested_msg_t msg = {0};
  int created = 0;
  int rc = yield_write(cw, spec, &id, len, parts, nparts, &item, &heap, &created);
  if (rc == 0)
    rc = yield_refs(cw, spec, refs, nrefs, &item, &v, &msg);
  if (rc == 0)
    rc = yield_report(cw, spec, *count, &item);
  if (rc == 0)
    (*count)++;
  else if (created)
    store_client_delete(cw->store, id.b, 1);
  pthread_mutex_lock(&cw->mu);
  cw_nested_drop(cw, v, v ? nrefs : 0, CW_HOLD_LOCAL);
  pthread_mutex_unlock(&cw->mu);
  cw_nested_msg_free(&msg);
  free(heap);
  return rc;
}

int rayc_yield(rayc_task_ctx *ctx, const void *data, size_t len)
{
  rayc_part part = {.offset = 0, .data = data, .len = len};
  return rayc_yield_parts(ctx, len, &part, len ? 1 : 0, NULL, 0);
}
