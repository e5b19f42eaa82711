/*
 * The object manager's server half: ObjectManagerService (proto/object_manager.proto) over gRPC,
 * with handlers on the store's loop (common/rpc.h hands each call over).
 *
 * GetChunk copies at most STORE_CHUNK_MAX bytes of a readable object from the region into the
 * reply (rpc_reply packs it before returning, so the loop is held for one memcpy of a chunk, and
 * the object cannot change or go meanwhile). While an object is being served it is pinned: the
 * object manager holds one reference to it (client STORE_CLIENT_OM_PIN), refreshed by every
 * chunk and released STORE_PIN_IDLE_MS after the last one (the timer), so the copy is neither
 * evicted nor spilled away between the chunks of a transfer. A chunk of a spilled object starts a
 * restore and the call waits for it (store_om_on_restored). FreeObjects deletes the listed
 * objects here, as a local delete does.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

typedef struct store_pin {
  int64_t last_ms;
} store_pin_t;

static void om_pin(store_server_t *s, store_obj_t *o)
{
  store_pin_t *pin = hmap_get(&s->pins, o->id, ID_OBJECT_SIZE);
  if (!pin) {
    pin = xcalloc(1, sizeof(*pin));
    hmap_put(&s->pins, o->id, ID_OBJECT_SIZE, pin);
    store_core_get(&s->core, o->id, STORE_CLIENT_OM_PIN);
  }
  pin->last_ms = now_ms();
}

/* Replies with the requested range of a readable object. */
static void om_serve(store_server_t *s, rpc_call_t *call, const Rayc__GetChunkRequest *r, store_obj_t *o)
{
  char name[16];
  uint64_t total = store_obj_size(o);
  if (r->offset > total) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "object %s has %" PRIu64 " bytes; offset %" PRIu64 " is past its end",
                    store_obj_name(o, name), total, r->offset);
    return;
  }
  uint64_t len = r->length ? r->length : STORE_CHUNK_SIZE;
  if (len > STORE_CHUNK_MAX)
    len = STORE_CHUNK_MAX;
  if (len > total - r->offset)
    len = total - r->offset;
  om_pin(s, o);
  Rayc__GetChunkReply reply = RAYC__GET_CHUNK_REPLY__INIT;
  reply.data = pb_bytes(s->region.base + o->offset + r->offset, len);
  reply.data_size = o->data_size;
  reply.metadata_size = o->metadata_size;
  if (r->offset == 0)
    reply.owner = pb_bytes(o->owner, o->owner_len);
  rpc_reply(call, &reply.base);
  s->served_chunks++;
  s->served_bytes += len;
}

static void om_get_chunk(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  store_server_t *s = ctx;
  const Rayc__GetChunkRequest *r = (const Rayc__GetChunkRequest *)req;
  char name[16];
  if (r->object_id.len != ID_OBJECT_SIZE) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "object id must be %d bytes, got %zu", ID_OBJECT_SIZE,
                    r->object_id.len);
    return;
  }
  id_short(r->object_id.data, ID_OBJECT_SIZE, name);
  store_obj_t *o = store_table_find(&s->core.table, r->object_id.data);
  if (!o || o->delete_pending || o->state == STORE_OBJ_CREATED) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "object %s is not on this node", name);
    return;
  }
  if (store_core_readable(o)) {
    om_serve(s, call, r, o);
    return;
  }
  store_restore_request(s, o);
  if (!store_restore_pending(s, o)) {
    rpc_reply_error(call, RAYC_EUNAVAILABLE, "object %s is spilled and cannot be restored now", name);
    return;
  }
  store_chunk_wait_t *w = xcalloc(1, sizeof(*w));
  w->call = call;
  w->req = r;
  w->start_ms = now_ms();
  w->next = s->chunk_waits;
  s->chunk_waits = w;
}

void store_om_on_restored(store_server_t *s, const store_obj_t *o)
{
  store_chunk_wait_t **pp = &s->chunk_waits;
  char name[16];
  while (*pp) {
    store_chunk_wait_t *w = *pp;
    if (memcmp(w->req->object_id.data, o->id, ID_OBJECT_SIZE) != 0) {
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    store_obj_t *obj = store_table_find(&s->core.table, o->id);
    if (store_core_readable(obj))
      om_serve(s, w->call, w->req, obj);
    else
      rpc_reply_error(w->call, o->restore_err ? o->restore_err : RAYC_ENOT_FOUND,
                      "object %s is spilled on this node and could not be restored: %s", store_obj_name(o, name),
                      rayc_strerror(o->restore_err ? o->restore_err : RAYC_ENOT_FOUND));
    free(w);
  }
}

static void om_free_objects(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  store_server_t *s = ctx;
  const Rayc__FreeObjectsRequest *r = (const Rayc__FreeObjectsRequest *)req;
  for (size_t i = 0; i < r->n_object_ids; i++) {
    if (r->object_ids[i].len != ID_OBJECT_SIZE) {
      rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "object id %zu must be %d bytes, got %zu", i, ID_OBJECT_SIZE,
                      r->object_ids[i].len);
      return;
    }
  }
  for (size_t i = 0; i < r->n_object_ids; i++)
    store_core_delete(&s->core, r->object_ids[i].data);
  Rayc__FreeObjectsReply reply = RAYC__FREE_OBJECTS_REPLY__INIT;
  rpc_reply(call, &reply.base);
  store_kick(s);
}

const rpc_method_t store_om_methods[] = {
    {.service = &rayc__object_manager_service__descriptor,
     .method = "GetChunk",
     .handler = om_get_chunk,
     .required = "object_id"},
    {.service = &rayc__object_manager_service__descriptor,
     .method = "FreeObjects",
     .handler = om_free_objects,
     .required = "object_ids"},
    {.service = &rayc__object_manager_service__descriptor,
     .method = "GetJobObjects",
     .handler = store_jobs_on_get,
     .required = "job_ids"},
    {.service = &rayc__object_manager_service__descriptor, .method = "ListObjects", .handler = store_list_on_list},
};
const size_t store_om_nmethods = ARRAY_LEN(store_om_methods);

int store_om_start(store_server_t *s, const char *node_ip, int port, const rpc_tls_t *tls)
{
  rpc_server_opts_t opts = {.loop = s->loop, .token = s->token, .ctx = s, .tls = tls};
  s->om = rpc_server_create(store_om_methods, store_om_nmethods, &opts);
  if (!s->om)
    return RAYC_EINTERNAL;
  int v6 = strchr(node_ip, ':') != NULL;
  char *addr = xasprintf("%s%s%s:%d", v6 ? "[" : "", node_ip, v6 ? "]" : "", port);
  int rc = rpc_server_listen(s->om, addr);
  if (rc <= 0) {
    log_error("object manager: cannot listen on %s: %s", addr, rayc_strerror(rc ? rc : RAYC_EINTERNAL));
    free(addr);
    return rc ? rc : RAYC_EINTERNAL;
  }
  s->om_port = rc;
  free(addr);
  rc = rpc_server_start(s->om);
  if (rc < 0)
    return rc;
  rpc_client_opts_t copts = {.loop = s->loop, .token = s->token, .tls = tls};
  s->om_client = rpc_client_create(&copts);
  return s->om_client ? 0 : RAYC_EINTERNAL;
}

static void om_unpin(store_server_t *s, const uint8_t *id, store_pin_t *pin)
{
  store_core_release_ref(&s->core, id, STORE_CLIENT_OM_PIN);
  free(pin);
}

void store_om_cron(store_server_t *s)
{
  int64_t now = now_ms();
  for (hmap_iter_t it = hmap_iter(&s->pins); hmap_next(&it);) {
    store_pin_t *pin = it.value;
    if (now - pin->last_ms < STORE_PIN_IDLE_MS)
      continue;
    uint8_t id[ID_OBJECT_SIZE];
    memcpy(id, it.key, ID_OBJECT_SIZE);
    hmap_del(&s->pins, id, ID_OBJECT_SIZE);
    om_unpin(s, id, pin);
  }
}

void store_om_stop(store_server_t *s)
{
  while (s->chunk_waits) {
    store_chunk_wait_t *w = s->chunk_waits;
    s->chunk_waits = w->next;
    rpc_reply_error(w->call, RAYC_EUNAVAILABLE, "the store is shutting down");
    free(w);
  }
  rpc_server_destroy(s->om);
  s->om = NULL;
  for (hmap_iter_t it = hmap_iter(&s->pins); hmap_next(&it);) {
    uint8_t id[ID_OBJECT_SIZE];
    memcpy(id, it.key, ID_OBJECT_SIZE);
    store_pin_t *pin = it.value;
    hmap_del(&s->pins, id, ID_OBJECT_SIZE);
    om_unpin(s, id, pin);
  }
}
