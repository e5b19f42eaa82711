/*
 * Object lifecycle over the table and the allocator (rules in store_core.h). Invariants:
 *   - every record whose state holds memory owns exactly one allocated range,
 *     [offset, offset + data + metadata), and store_alloc_used() is the sum of those ranges
 *     (rounded); a SPILLED record owns none;
 *   - a record with spill_file set is counted in that file's nobjs;
 *   - c->st always equals the sum of every record's contribution (core_account);
 *   - a record is on the eviction list store_core_classify() says, and on no other.
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

void store_core_init(store_core_t *c, uint64_t capacity, void (*on_sealed)(void *, const store_obj_t *), void *ctx)
{
  *c = (store_core_t){0};
  c->alloc = store_alloc_create(capacity);
  store_table_init(&c->table);
  c->on_sealed = on_sealed;
  c->ctx = ctx;
}

/* Drops o's claim on its spill file, handing the file back when it was the last. */
static void core_drop_disk_copy(store_core_t *c, store_obj_t *o)
{
  store_spill_file_t *f = o->spill_file;
  if (!f)
    return;
  o->spill_file = NULL;
  if (--f->nobjs > 0)
    return;
  if (c->on_file_unused)
    c->on_file_unused(c->ctx, f);
  else
    store_spill_file_destroy(f);
}

void store_core_release(store_core_t *c)
{
  for (hmap_iter_t it = hmap_iter(&c->table.map); hmap_next(&it);)
    core_drop_disk_copy(c, it.value);
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

/* Adds (sign 1) or removes (sign -1) o's share of the counts in c->st. */
static void core_account(store_core_t *c, const store_obj_t *o, int sign)
{
  uint64_t size = store_obj_size(o), one = (uint64_t)(int64_t)sign;
  store_core_stats_t *st = &c->st;
  if (store_obj_state_in_memory(o->state)) {
    st->num_in_memory += one;
    if (o->secondary)
      st->bytes_secondary += one * size;
    else
      st->bytes_primary += one * size;
  }
  if (o->spill_file) {
    st->num_on_disk += one;
    st->bytes_on_disk += one * size;
  }
  if (o->state == STORE_OBJ_SPILLED)
    st->num_spilled_only += one;
  if (o->state == STORE_OBJ_SEALED && !o->secondary && !o->spill_file)
    st->bytes_unspilled_primary += one * size;
  if (o->state == STORE_OBJ_SPILLING)
    st->bytes_spilling += one * size;
}

void store_core_set_state(store_core_t *c, store_obj_t *o, store_obj_state_t s)
{
  char name[16];
  log_debug("object %s: %s -> %s", store_obj_name(o, name), store_obj_state_name(o->state), store_obj_state_name(s));
  core_account(c, o, -1);
  o->state = s;
  core_account(c, o, 1);
  store_core_classify(c, o);
}

/* Gives o's disk copy (f may be NULL: none), keeping the counts in step. */
static void core_set_disk_copy(store_core_t *c, store_obj_t *o, store_spill_file_t *f, uint64_t off)
{
  core_account(c, o, -1);
  core_drop_disk_copy(c, o);
  if (f) {
    o->spill_file = f;
    o->spill_offset = off;
    f->nobjs++;
  }
  core_account(c, o, 1);
  store_core_classify(c, o);
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

/* Gives o's range back to the allocator (o's state must hold memory). */
static void core_free_memory(store_core_t *c, store_obj_t *o)
{
  char name[16];
  if (store_alloc_free(c->alloc, o->offset, store_obj_size(o)) != 0)
    log_error("object %s: its range at offset %" PRIu64 " was not allocated (bug)", store_obj_name(o, name), o->offset);
  c->freed = 1;
}

static void core_free_obj(store_core_t *c, store_obj_t *o)
{
  char name[16];
  log_debug("object %s: freed (%" PRIu64 " bytes, %s)", store_obj_name(o, name), store_obj_size(o),
            store_obj_state_name(o->state));
  core_account(c, o, -1);
  store_core_unlist(c, o);
  if (store_obj_state_in_memory(o->state))
    core_free_memory(c, o);
  core_drop_disk_copy(c, o);
  store_table_remove(&c->table, o);
}

/* Frees o when it was deleted, nobody references it and no I/O thread is using it. Returns 1
 * when o is gone. */
static int core_maybe_free(store_core_t *c, store_obj_t *o)
{
  if (o->refs != 0 || !o->delete_pending || o->state == STORE_OBJ_SPILLING || o->state == STORE_OBJ_RESTORING)
    return 0;
  core_free_obj(c, o);
  return 1;
}

/* Allocates need bytes, evicting what can be dropped when the region has no room. */
static int core_alloc(store_core_t *c, uint64_t need, uint64_t *offset)
{
  if (store_alloc_alloc(c->alloc, need, offset) == 0)
    return 0;
  if (store_core_evict(c, store_alloc_round(need)) == 0)
    return RAYC_EOUT_OF_MEMORY;
  return store_alloc_alloc(c->alloc, need, offset);
}

static int core_fail_no_room(store_core_t *c, const char *name, uint64_t need)
{
  return core_fail(c, RAYC_EOUT_OF_MEMORY,
                   "object %s needs %" PRIu64 " bytes; the store's capacity is %" PRIu64 " bytes, %" PRIu64
                   " used (%" PRIu64 " by primary copies, %" PRIu64 " by secondary copies), largest free "
                   "range %" PRIu64,
                   name, need, store_alloc_capacity(c->alloc), store_alloc_used(c->alloc), c->st.bytes_primary,
                   c->st.bytes_secondary, store_alloc_largest_free(c->alloc));
}

int store_core_create(store_core_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size, const void *owner,
                      size_t owner_len, uint64_t client, unsigned flags, store_obj_t **out)
{
  char name[16];
  id_short(id, ID_OBJECT_SIZE, name);
  if (store_table_find(&c->table, id))
    return core_fail(c, RAYC_EALREADY_EXISTS, "object %s already exists", name);
  if (core_footprint(data_size, metadata_size) == 0)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s: sizes %" PRIu64 " + %" PRIu64 " overflow", name, data_size,
                     metadata_size);
  uint64_t offset, need = data_size + metadata_size;
  if (!store_core_can_ever_fit(c, data_size, metadata_size))
    return core_fail(c, RAYC_EOUT_OF_MEMORY,
                     "object %s needs %" PRIu64 " bytes, more than the store's capacity of %" PRIu64 " bytes (%" PRIu64
                     " used)",
                     name, need, store_alloc_capacity(c->alloc), store_alloc_used(c->alloc));
  if (core_alloc(c, need, &offset) != 0)
    return core_fail_no_room(c, name, need);
  store_obj_t *o = store_table_insert(&c->table, id, owner, owner_len);
  o->offset = offset;
  o->data_size = data_size;
  o->metadata_size = metadata_size;
  o->creator = client;
  o->secondary = (flags & STORE_CREATE_SECONDARY) != 0;
  core_account(c, o, 1);
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
  store_core_set_state(c, o, STORE_OBJ_SEALED);
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

int store_core_readable(const store_obj_t *o)
{
  return o && (o->state == STORE_OBJ_SEALED || o->state == STORE_OBJ_SPILLING) && !o->delete_pending;
}

store_obj_t *store_core_get(store_core_t *c, const uint8_t *id, uint64_t client)
{
  store_obj_t *o = store_table_find(&c->table, id);
  if (!store_core_readable(o))
    return NULL;
  store_obj_ref(o, client);
  store_core_classify(c, o);
  return o;
}

int store_core_release_ref(store_core_t *c, const uint8_t *id, uint64_t client)
{
  char name[16];
  store_obj_t *o = store_table_find(&c->table, id);
  id_short(id, ID_OBJECT_SIZE, name);
  if (!o)
    return core_fail(c, RAYC_ENOT_FOUND, "object %s does not exist", name);
  if (o->state == STORE_OBJ_CREATED)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s is not sealed; abort it instead", name);
  if (store_obj_unref(o, client) != 0)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s: this client holds no reference", name);
  if (!core_maybe_free(c, o))
    store_core_classify(c, o);
  return 0;
}

int store_core_contains(const store_core_t *c, const uint8_t *id)
{
  return store_core_readable(store_table_find(&c->table, id));
}

int store_core_present(const store_core_t *c, const uint8_t *id)
{
  const store_obj_t *o = store_table_find(&c->table, id);
  return store_core_readable(o) ||
         (o && !o->delete_pending && (o->state == STORE_OBJ_SPILLED || o->state == STORE_OBJ_RESTORING));
}

void store_core_delete(store_core_t *c, const uint8_t *id)
{
  store_obj_t *o = store_table_find(&c->table, id);
  if (!o)
    return;
  o->delete_pending = 1;
  if (!core_maybe_free(c, o))
    store_core_classify(c, o);
}

void store_core_drop_client(store_core_t *c, uint64_t client)
{
  char name[16];
  for (hmap_iter_t it = hmap_iter(&c->table.map); hmap_next(&it);) {
    store_obj_t *o = it.value;
    if (o->state == STORE_OBJ_CREATED && o->creator == client) {
      log_info("object %s: aborted, its creator disconnected before sealing", store_obj_name(o, name));
      core_free_obj(c, o);
    } else if (store_obj_unref_all(o, client) > 0 && !core_maybe_free(c, o)) {
      store_core_classify(c, o);
    }
  }
}

void store_core_drop(store_core_t *c, store_obj_t *o)
{
  char name[16];
  log_debug("object %s: evicted (%" PRIu64 " bytes, %s copy)", store_obj_name(o, name), store_obj_size(o),
            o->secondary ? "secondary" : "spilled primary");
  c->st.evicted_objects++;
  c->st.evicted_bytes += store_obj_size(o);
  if (o->secondary) {
    core_free_obj(c, o);
    return;
  }
  core_free_memory(c, o);
  store_core_set_state(c, o, STORE_OBJ_SPILLED);
}

/* ---- spilling and restoring ---- */

size_t store_core_spill_pick(store_core_t *c, uint64_t max_bytes, size_t max_objs, store_obj_t **objs)
{
  size_t n = 0;
  uint64_t bytes = 0;
  while (n < max_objs && c->spillable.head && (n == 0 || bytes < max_bytes)) {
    store_obj_t *o = c->spillable.head;
    if (n > 0 && bytes + store_obj_size(o) > max_bytes)
      break;
    bytes += store_obj_size(o);
    store_core_set_state(c, o, STORE_OBJ_SPILLING); /* leaves the list */
    objs[n++] = o;
  }
  return n;
}

void store_core_spill_done(store_core_t *c, store_obj_t *o, store_spill_file_t *f, uint64_t spill_offset)
{
  if (f) {
    core_set_disk_copy(c, o, f, spill_offset);
    c->st.spilled_objects++;
    c->st.spilled_bytes += store_obj_size(o);
  }
  store_core_set_state(c, o, STORE_OBJ_SEALED);
  core_maybe_free(c, o);
}

int store_core_restore_begin(store_core_t *c, store_obj_t *o)
{
  char name[16];
  uint64_t offset;
  store_obj_name(o, name);
  if (o->state != STORE_OBJ_SPILLED || !o->spill_file)
    return core_fail(c, RAYC_EINVALID_ARGUMENT, "object %s is not spilled", name);
  if (core_alloc(c, store_obj_size(o), &offset) != 0)
    return core_fail_no_room(c, name, store_obj_size(o));
  o->offset = offset;
  o->restore_err = 0;
  store_core_set_state(c, o, STORE_OBJ_RESTORING);
  return 0;
}

void store_core_restore_done(store_core_t *c, store_obj_t *o, int err)
{
  if (err == 0) {
    c->st.restored_objects++;
    c->st.restored_bytes += store_obj_size(o);
    store_core_set_state(c, o, STORE_OBJ_SEALED);
  } else {
    core_free_memory(c, o);
    o->restore_err = err;
    store_core_set_state(c, o, STORE_OBJ_SPILLED);
  }
  if (c->on_restored)
    c->on_restored(c->ctx, o);
  core_maybe_free(c, o);
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
