/*
 * rayc-store's local request table and handlers. One row per request body of proto/local.proto's
 * store section; the dispatcher finds the row, runs the handler and, when the handler returns an error,
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
  /* Older requests are waiting for room: queue behind them rather than take it first. */
  if (may_wait && s->rooms_head && !store_table_find(&s->core.table, a.id)) {
    store_room_wait_create(s, c, m->seq, &a, r->timeout_ms);
    return 0;
  }
  int rc = store_create_now(s, c, m->seq, &a);
  if (rc == RAYC_EOUT_OF_MEMORY && may_wait) {
    store_room_wait_create(s, c, m->seq, &a, r->timeout_ms);
    return 0;
  }
  return rc ? store_core_failed(s, rc) : 0;
}

static int handle_seal(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_seal->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  const uint8_t *id = m->store_seal->object_id.data;
  int rc = store_core_seal(&s->core, id, local_conn_id(c));
  if (rc == 0 && m->store_seal->release)
    rc = store_core_release_ref(&s->core, id, local_conn_id(c));
  if (rc)
    return store_core_failed(s, rc);
  store_reply_ok(c, m->seq);
  store_spill_maybe(s); /* primary copies may have passed the threshold */
  return 0;
}

static int handle_get(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  const Rayc__StoreGetRequest *r = m->store_get;
  uint8_t *ids;
  int rc = store_flat_ids(s, r->object_ids, r->n_object_ids, &ids);
  if (rc)
    return rc;
  store_get_start(s, c, m->seq, ids, r->n_object_ids, r->timeout_ms < 0 ? -1 : r->timeout_ms);
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
  reply.contains_reply = store_core_present(&s->core, m->store_contains->object_id.data);
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

static void stats_fill(const store_server_t *s, Rayc__StoreStatsReply *r)
{
  const store_core_stats_t *st = &s->core.st;
  r->capacity = store_core_capacity(&s->core);
  r->bytes_used = store_core_used(&s->core);
  r->num_objects = store_core_num_objects(&s->core);
  r->num_in_memory = st->num_in_memory;
  r->bytes_primary = st->bytes_primary;
  r->bytes_secondary = st->bytes_secondary;
  r->num_spilled = st->num_on_disk;
  r->bytes_spilled = st->bytes_on_disk;
  r->num_spilled_only = st->num_spilled_only;
  r->spill_files = s->spill_files;
  r->spill_file_bytes = s->spill_file_bytes;
  r->total_spilled_objects = st->spilled_objects;
  r->total_spilled_bytes = st->spilled_bytes;
  r->total_restored_objects = st->restored_objects;
  r->total_restored_bytes = st->restored_bytes;
  r->total_evicted_objects = st->evicted_objects;
  r->total_evicted_bytes = st->evicted_bytes;
  r->total_pulled_objects = s->pulled_objects;
  r->total_pulled_bytes = s->pulled_bytes;
  r->total_served_chunks = s->served_chunks;
  r->total_served_bytes = s->served_bytes;
  r->object_manager_port = s->om_port;
  r->num_pulls_active = (uint32_t)s->pulls.count;
}

static int handle_stats(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  Rayc__StoreStatsReply r = RAYC__STORE_STATS_REPLY__INIT;
  stats_fill(s, &r);
  Rayc__LocalMessage reply = RAYC__LOCAL_MESSAGE__INIT;
  reply.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_STATS_REPLY;
  reply.store_stats_reply = &r;
  store_reply(c, m->seq, &reply, -1);
  return 0;
}

static int handle_pull(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  if (store_check_id(s, m->store_pull->object_id) < 0)
    return RAYC_EINVALID_ARGUMENT;
  return store_pull_request(s, c, m->seq, m->store_pull);
}

static int handle_subscribe(store_server_t *s, local_conn_t *c, const Rayc__LocalMessage *m)
{
  store_subscribe(s, c);
  store_reply_ok(c, m->seq);
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
    {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_PULL, .name = "pull", .fn = handle_pull},
    {.body = RAYC__LOCAL_MESSAGE__BODY_STORE_SUBSCRIBE, .name = "subscribe", .fn = handle_subscribe},
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
