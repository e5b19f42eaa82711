/*
 * Object table records: a hash map of ObjectID -> store_obj_t, and per-client reference counts
 * kept as a small array on each object (objects have few concurrent readers, so a linear scan
 * beats a map here). The state machine's transitions live in store_core.c (store_core_set_state),
 * which also keeps the byte counts; this file only names the states.
 */
#include "object-store/store_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

void store_table_init(store_table_t *t)
{
  hmap_init(&t->map);
}

static void store_obj_free(store_obj_t *o)
{
  free(o->owner);
  free(o->holders);
  free(o);
}

void store_table_release(store_table_t *t)
{
  for (hmap_iter_t it = hmap_iter(&t->map); hmap_next(&it);)
    store_obj_free(it.value);
  hmap_release(&t->map);
}

store_obj_t *store_table_find(const store_table_t *t, const uint8_t *id)
{
  return hmap_get(&t->map, id, ID_OBJECT_SIZE);
}

store_obj_t *store_table_insert(store_table_t *t, const uint8_t *id, const void *owner, size_t owner_len)
{
  store_obj_t *o = xcalloc(1, sizeof(*o));
  memcpy(o->id, id, ID_OBJECT_SIZE);
  o->state = STORE_OBJ_CREATED;
  if (owner && owner_len) {
    o->owner = xmemdup(owner, owner_len);
    o->owner_len = owner_len;
  }
  o->created_ms = o->last_access_ms = now_ms();
  hmap_put(&t->map, o->id, ID_OBJECT_SIZE, o);
  return o;
}

void store_table_remove(store_table_t *t, store_obj_t *o)
{
  hmap_del(&t->map, o->id, ID_OBJECT_SIZE);
  store_obj_free(o);
}

size_t store_table_count(const store_table_t *t)
{
  return t->map.count;
}

const char *store_obj_state_name(store_obj_state_t s)
{
  switch (s) {
    case STORE_OBJ_CREATED:
      return "CREATED";
    case STORE_OBJ_SEALED:
      return "SEALED";
    case STORE_OBJ_SPILLING:
      return "SPILLING";
    case STORE_OBJ_SPILLED:
      return "SPILLED";
    case STORE_OBJ_RESTORING:
      return "RESTORING";
  }
  return "?";
}

int store_obj_state_in_memory(store_obj_state_t s)
{
  return s != STORE_OBJ_SPILLED;
}

uint64_t store_obj_size(const store_obj_t *o)
{
  return o->data_size + o->metadata_size;
}

char *store_obj_name(const store_obj_t *o, char *out)
{
  return id_short(o->id, ID_OBJECT_SIZE, out);
}

static store_holder_t *holder_find(const store_obj_t *o, uint64_t client)
{
  for (size_t i = 0; i < o->nholders; i++)
    if (o->holders[i].client == client)
      return &o->holders[i];
  return NULL;
}

static void holder_remove(store_obj_t *o, store_holder_t *h)
{
  *h = o->holders[--o->nholders];
}

void store_obj_ref(store_obj_t *o, uint64_t client)
{
  store_holder_t *h = holder_find(o, client);
  if (!h) {
    if (o->nholders == o->holders_cap) {
      o->holders_cap = o->holders_cap ? 2 * o->holders_cap : 2;
      o->holders = xrealloc(o->holders, o->holders_cap * sizeof(*o->holders));
    }
    h = &o->holders[o->nholders++];
    h->client = client;
    h->count = 0;
  }
  h->count++;
  o->refs++;
  o->last_access_ms = now_ms();
}

int store_obj_unref(store_obj_t *o, uint64_t client)
{
  store_holder_t *h = holder_find(o, client);
  if (!h)
    return RAYC_EINVALID_ARGUMENT;
  o->refs--;
  if (--h->count == 0)
    holder_remove(o, h);
  return 0;
}

uint64_t store_obj_unref_all(store_obj_t *o, uint64_t client)
{
  store_holder_t *h = holder_find(o, client);
  if (!h)
    return 0;
  uint64_t n = h->count;
  o->refs -= n;
  holder_remove(o, h);
  return n;
}

uint64_t store_obj_refs_of(const store_obj_t *o, uint64_t client)
{
  const store_holder_t *h = holder_find(o, client);
  return h ? h->count : 0;
}

store_spill_file_t *store_spill_file_create(const char *path)
{
  store_spill_file_t *f = xcalloc(1, sizeof(*f));
  f->path = xstrdup(path);
  return f;
}

void store_spill_file_destroy(store_spill_file_t *f)
{
  if (!f)
    return;
  free(f->path);
  free(f);
}
