/*
 * rayc-store's request table and handlers. One row per request body of proto/local.proto's store
 * section; the dispatcher finds the row, runs the handler and, when the handler returns an error,
 * sends the error reply with the message the handler recorded (store_fail). Handlers validate
 * every field they read (id lengths, counts) before touching the object table: the peer is
 * untrusted.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "object-store/store_server_int.h"

typedef int (*store_handler_fn)(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m);

typedef struct store_method {
  Rayc__LocalMessage__BodyCase body;
  const char *name;
  store_handler_fn fn;
} store_method_t;

static int store_check_id(store_server_t *s, ProtobufCBinaryData id)
{
  if (id.len != ID_OBJECT_SIZE)
    return store_fail(s, RAYC_EINVALID_ARGUMENT, "object id must be %d bytes, got %zu", ID_OBJECT_SIZE, id.len);
  return 0;
}

/* Checks a repeated id field and copies it into one flat array (new; free()). */
static int store_flat_ids(store_server_t *s, const ProtobufCBinaryData *ids, size_t n, uint8_t **out)
{
  if (n > STORE_GET_MAX_IDS)
    return store_fail(s, RAYC_EINVALID_ARGUMENT, "%zu ids in one request; the limit is %d", n, STORE_GET_MAX_IDS);
  for (size_t i = 0; i < n; i++)
    if (store_check_id(s, ids[i]) < 0)
      return RAYC_EINVALID_ARGUMENT;
  uint8_t *flat = xmalloc(n * ID_OBJECT_SIZE);
  for (size_t i = 0; i < n; i++)
    memcpy(flat + i * ID_OBJECT_SIZE, ids[i].data, ID_OBJECT_SIZE);
  *out = flat;
  return 0;
}

static int store_core_failed(store_server_t *s, int rc)
{
  return store_fail(s, rc, "%s", store_core_error(&s->core));
}

static int handle_connect(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  log_debug("client %" PRIu64 " (pid %d) says hello as pid %d", local_conn_id(c), (int)local_conn_pid(c),
            (int)m->store_connect->pid);
  Rayc__StoreConnectReply r = RAYC__STORE_CONNECT_REPLY__INIT;
  r.region_size = s->region.size;
  Rayc__LocalMessage reply = RAYC__LOCAL_MESSAGE__INIT;
  reply.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT_REPLY;
  reply.store_connect_reply = &r;
  store_reply(c, m->seq, &reply, s->region.fd);
  return 0;
}

static int handle_create(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  const Rayc__StoreCreateRequest *r = m->store_create;
  if (store_check_id(s, r->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  store_create_args_t a = {r->object_id.data, r->data_size, r->metadata_size, r->owner.data, r->owner.len};
  int may_wait = r->timeout_ms != 0 && store_core_can_ever_fit(&s->core, r->data_size, r->metadata_size);
  /* Older creates are waiting for room: queue behind them rather than take it first. */
  if (may_wait && s->creates.head && !store_table_find(&s->core.table, a.id)) {
    store_wait_create(s, c, m->seq, &a, r->timeout_ms);
    return 0;
  }
  int rc = store_create_now(s, c, m->seq, &a);
  if (rc == RAYC_EOUT_OF_MEMORY && may_wait) {
    store_wait_create(s, c, m->seq, &a, r->timeout_ms);
    return 0;
  }
  return rc ? store_core_failed(s, rc) : 0;
}

static int handle_seal(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_seal->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  int rc = store_core_seal(&s->core, m->store_seal->object_id.data, local_conn_id(c));
  if (rc)
    return store_core_failed(s, rc);
  store_reply_ok(c, m->seq);
  return 0;
}

static int handle_get(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  const Rayc__StoreGetRequest *r = m->store_get;
  uint8_t *ids;
  int rc = store_flat_ids(s, r->object_ids, r->n_object_ids, &ids);
  if (rc)
    return rc;
  size_t ready = 0;
  for (size_t i = 0; i < r->n_object_ids; i++)
    ready += (size_t)store_core_contains(&s->core, ids + i * ID_OBJECT_SIZE);
  if (ready == r->n_object_ids || r->timeout_ms == 0)
    store_get_reply(s, c, m->seq, ids, r->n_object_ids);
  else
    store_wait_get(s, c, m->seq, ids, r->n_object_ids, r->timeout_ms < 0 ? -1 : r->timeout_ms);
  free(ids);
  return 0;
}

static int handle_release(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_release->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  int rc = store_core_release_ref(&s->core, m->store_release->object_id.data, local_conn_id(c));
  if (rc)
    return store_core_failed(s, rc);
  store_reply_ok(c, m->seq);
  return 0;
}

static int handle_contains(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_contains->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  Rayc__LocalMessage reply = RAYC__LOCAL_MESSAGE__INIT;
  reply.body_case = RAYC__LOCAL_MESSAGE__BODY_CONTAINS_REPLY;
  reply.contains_reply = store_core_contains(&s->core, m->store_contains->object_id.data);
  store_reply(c, m->seq, &reply, -1);
  return 0;
}

static int handle_delete(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  const Rayc__StoreDeleteRequest *r = m->store_delete;
  uint8_t *ids;
  int rc = store_flat_ids(s, r->object_ids, r->n_object_ids, &ids);
  if (rc)
    return rc;
  for (size_t i = 0; i < r->n_object_ids; i++)
    store_core_delete(&s->core, ids + i * ID_OBJECT_SIZE);
  free(ids);
  store_reply_ok(c, m->seq);
  return 0;
}

static int handle_abort(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_abort->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  int rc = store_core_abort(&s->core, m->store_abort->object_id.data, local_conn_id(c));
  if (rc)
    return store_core_failed(s, rc);
  store_reply_ok(c, m->seq);
  return 0;
}

static int handle_stats(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  Rayc__StoreStatsReply r = RAYC__STORE_STATS_REPLY__INIT;
  r.capacity = store_core_capacity(&s->core);
  r.bytes_used = store_core_used(&s->core);
  r.num_objects = store_core_num_objects(&s->core);
  Rayc__LocalMessage reply = RAYC__LOCAL_MESSAGE__INIT;
  reply.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_STATS_REPLY;
  reply.store_stats_reply = &r;
  store_reply(c, m->seq, &reply, -1);
  return 0;
}

static const store_method_t store_methods[] = {
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT, .name = "connect", .fn = handle_connect},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_CREATE, .name = "create", .fn = handle_create},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_SEAL, .name = "seal", .fn = handle_seal},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_GET, .name = "get", .fn = handle_get},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_RELEASE, .name = "release", .fn = handle_release},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_CONTAINS, .name = "contains", .fn = handle_contains},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_DELETE, .name = "delete", .fn = handle_delete},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_ABORT, .name = "abort", .fn = handle_abort},
  {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_STATS, .name = "stats", .fn = handle_stats},
};

static const store_method_t *store_method_find(Rayc__LocalMessage__BodyCase body)
{
  for (size_t i = 0; i < ARRAY_LEN(store_methods); i++)
    if (store_methods[i].body == body)
      return &store_methods[i];
  return NULL;
}

void store_dispatch(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  const store_method_t *row = store_method_find(m->body_case);
  int rc;
  s->err[0] = '\0';
  if (m->body_case == RAYC__LOCAL_MESSAGE__BODY__NOT_SET)
    rc = store_fail(s, RAYC_EPROTOCOL, "request %" PRIu64 " has no body", m->seq);
  else if (!row)
    rc = store_fail(s, RAYC_EUNIMPLEMENTED, "the store has no request with body %d", (int)m->body_case);
  else
    rc = row->fn(s, c, m);
  if (rc < 0) {
    log_debug("client %" PRIu64 ": %s request %" PRIu64 " failed: %s", local_conn_id(c), row ? row->name : "bad",
              m->seq, s->err);
    store_reply_error(c, m->seq, rc, s->err[0] ? s->err : NULL);
  }
}
