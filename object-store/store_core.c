/*
 * Object lifecycle over the table and the allocator (rules in store_core.h). Invariant: every
 * record in the table owns exactly one allocated range, [offset, offset + data + metadata), and
 * store_alloc_used() is the sum of those ranges (rounded).
 */
#include "object-store/store_core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/log.h"
#include "common/status.h"

static int core_fail(store_core_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int core_fail(store_core_t *c, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
  return code;
}

void store_core_init(store_core_t *c, uint64_t capacity, void (*on_sealed)(void *, const store_obj_t *),
                     void *ctx)
{
  c->alloc = store_alloc_create(capacity);
  store_table_init(&c->table);
  c->on_sealed = on_sealed;
  c->ctx = ctx;
  c->freed = 0;
  c->err[0] = '\0';
}

void store_core_release(store_core_t *c)
{
  store_table_release(&c->table);
  store_alloc_destroy(c->alloc);
  c->alloc = NULL;
}

const char *store_core_error(const store_core_t *c)
{
  return c->err;
}

int store_core_take_freed(store_core_t *c)
{
  int f = c->freed;
  c->freed = 0;
  return f;
}

/* Bytes an object of these sizes takes in the region, or 0 when the sizes overflow. */
static uint64_t core_footprint(uint64_t data_size, uint64_t metadata_size)
{
  if (data_size > UINT64_MAX - metadata_size)
    return 0;
  return store_alloc_round(data_size + metadata_size);
}

int store_core_can_ever_fit(const store_core_t *c, uint64_t data_size, uint64_t metadata_size)
{
  uint64_t need = core_footprint(data_size, metadata_size);
  return need != 0 && need <= store_alloc_capacity(c->alloc);
}

static void core_free_obj(store_core_t *c, store_obj_t *o)
{
  char name[16];
  if (store_alloc_free(c->alloc, o->offset, o->data_size + o->metadata_size) != 0)
    log_error("object %s: its range at offset %" PRIu64 " was not allocated (bug)", store_obj_name(o, name),
              o->offset);
  log_debug("object %s: freed %" PRIu64 " bytes", store_obj_name(o, name), o->data_size + o->metadata_size);
  store_table_remove(&c->table, o);
  c->freed = 1;
}

static void core_maybe_free(store_core_t *c, store_obj_t *o)
{
  if (o->refs == 0 && o->delete_pending)
    core_free_obj(c, o);
}

int store_core_create(store_core_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size,
                      const void *owner, size_t owner_len, uint64_t client, store_obj_t **out)
{
  char name[16];
  id_short(id, ID_OBJECT_SIZE, name);
  if (store_table_find(&c->table, id))
    return core_fail(c, RAYC_EALREADY_EXISTS, "object %s already exists", name);
  if (core_footprint(data_size, metadata_size) == 0)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s: sizes %" PRIu64 " + %" PRIu64 " overflow", name,
                     data_size, metadata_size);
  uint64_t offset, need = data_size + metadata_size;
  if (!store_core_can_ever_fit(c, data_size, metadata_size))
    return core_fail(c, RAYC_EOUT_OF_MEMORY,
                     "object %s needs %" PRIu64 " bytes, more than the store's capacity of %" PRIu64
                     " bytes (%" PRIu64 " used)",
                     name, need, store_alloc_capacity(c->alloc), store_alloc_used(c->alloc));
  if (store_alloc_alloc(c->alloc, need, &offset) != 0)
    return core_fail(c, RAYC_EOUT_OF_MEMORY,
                     "object %s needs %" PRIu64 " bytes; the store's capacity is %" PRIu64 " bytes, %" PRIu64
                     " used, largest free range %" PRIu64,
                     name, need, store_alloc_capacity(c->alloc), store_alloc_used(c->alloc),
                     store_alloc_largest_free(c->alloc));
  store_obj_t *o = store_table_insert(&c->table, id, owner, owner_len);
  o->offset = offset;
  o->data_size = data_size;
  o->metadata_size = metadata_size;
  o->creator = client;
  store_obj_ref(o, client);
  *out = o;
  return 0;
}

/* Finds id as an unsealed create of client's, or fails naming why. */
static int core_find_own_create(store_core_t *c, const uint8_t *id, uint64_t client, store_obj_t **out)
{
  char name[16];
  store_obj_t *o = store_table_find(&c->table, id);
  id_short(id, ID_OBJECT_SIZE, name);
  if (!o)
    return core_fail(c, RAYC_ENOT_FOUND, "object %s does not exist", name);
  if (o->state != STORE_OBJ_CREATED)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s is already sealed", name);
  if (o->creator != client)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s was created by another client", name);
  *out = o;
  return 0;
}

int store_core_seal(store_core_t *c, const uint8_t *id, uint64_t client)
{
  store_obj_t *o;
  int rc = core_find_own_create(c, id, client, &o);
  if (rc)
    return rc;
  store_obj_set_state(o, STORE_OBJ_SEALED);
  if (!o->delete_pending && c->on_sealed)
    c->on_sealed(c->ctx, o);
  return 0;
}

int store_core_abort(store_core_t *c, const uint8_t *id, uint64_t client)
{
  store_obj_t *o;
  int rc = core_find_own_create(c, id, client, &o);
  if (rc)
    return rc;
  core_free_obj(c, o);
  return 0;
}

static int core_readable(const store_obj_t *o)
{
  return o && o->state == STORE_OBJ_SEALED && !o->delete_pending;
}

store_obj_t *store_core_get(store_core_t *c, const uint8_t *id, uint64_t client)
{
  store_obj_t *o = store_table_find(&c->table, id);
  if (!core_readable(o))
    return NULL;
  store_obj_ref(o, client);
  return o;
}

int store_core_release_ref(store_core_t *c, const uint8_t *id, uint64_t client)
{
  char name[16];
  store_obj_t *o = store_table_find(&c->table, id);
  id_short(id, ID_OBJECT_SIZE, name);
  if (!o)
    return core_fail(c, RAYC_ENOT_FOUND, "object %s does not exist", name);
  if (o->state != STORE_OBJ_SEALED)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s is not sealed; abort it instead", name);
  if (store_obj_unref(o, client) != 0)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s: this client holds no reference", name);
  core_maybe_free(c, o);
  return 0;
}

int store_core_contains(const store_core_t *c, const uint8_t *id)
{
  return core_readable(store_table_find(&c->table, id));
}

void store_core_delete(store_core_t *c, const uint8_t *id)
{
  store_obj_t *o = store_table_find(&c->table, id);
  if (!o)
    return;
  o->delete_pending = 1;
  core_maybe_free(c, o);
}

void store_core_drop_client(store_core_t *c, uint64_t client)
{
  char name[16];
  for (hmap_iter_t it = hmap_iter(&c->table.map); hmap_next(&it);) {
    store_obj_t *o = it.value;
    if (o->state == STORE_OBJ_CREATED && o->creator == client) {
      log_info("object %s: aborted, its creator disconnected before sealing", store_obj_name(o, name));
      core_free_obj(c, o);
    } else if (store_obj_unref_all(o, client) > 0) {
      core_maybe_free(c, o);
    }
  }
}

uint64_t store_core_capacity(const store_core_t *c)
{
  return store_alloc_capacity(c->alloc);
}

uint64_t store_core_used(const store_core_t *c)
{
  return store_alloc_used(c->alloc);
}

uint64_t store_core_num_objects(const store_core_t *c)
{
  return store_table_count(&c->table);
}
