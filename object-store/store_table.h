/*
 * The object table: every object the store holds, by ObjectID, with its state, its place in the
 * region and who references it.
 *
 * An object is CREATED (its creator is writing it; invisible to readers) and then SEALED
 * (immutable, readable). The state changes only through store_obj_set_state(), which logs the
 * transition. References are counted per client (a connection id), so a client that disconnects
 * can have exactly its own references dropped. An object marked delete_pending is invisible to
 * readers and is freed when its last reference goes (store_core.c applies that rule; this module
 * only keeps the records).
 *
 * Seams for later issues: last_access_ms feeds LRU eviction; owner is kept for the object
 * manager and for spilling. Single-threaded: the store's loop owns the table.
 */
#ifndef RAYC_STORE_TABLE_H
#define RAYC_STORE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hmap.h"
#include "common/ids.h"

typedef enum store_obj_state {
  STORE_OBJ_CREATED = 0,
  STORE_OBJ_SEALED = 1,
} store_obj_state_t;

typedef struct store_holder {
  uint64_t client; /* connection id */
  uint64_t count;
} store_holder_t;

typedef struct store_obj {
  uint8_t id[ID_OBJECT_SIZE];
  store_obj_state_t state;
  uint64_t offset;        /* into the region */
  uint64_t data_size, metadata_size;
  uint8_t *owner;         /* owned copy of the packed owner Address (NULL when none) */
  size_t owner_len;
  uint64_t creator;       /* connection id of the creating client */
  int delete_pending;     /* deleted while referenced: free on the last release */
  uint64_t refs;          /* sum of holders[].count */
  store_holder_t *holders;
  size_t nholders, holders_cap;
  int64_t created_ms, last_access_ms;
} store_obj_t;

typedef struct store_table {
  hmap_t map; /* id -> store_obj_t* (owned) */
} store_table_t;

void store_table_init(store_table_t *t);
/* Frees every record (not their memory in the region: that is the allocator's). */
void store_table_release(store_table_t *t);

/* Returns the record for id (ID_OBJECT_SIZE bytes), borrowed, or NULL. */
store_obj_t *store_table_find(const store_table_t *t, const uint8_t *id);

/* Adds a new CREATED record for id, which must not be present; returns it (owned by the table).
 * owner (owner_len bytes, may be NULL) is copied. */
store_obj_t *store_table_insert(store_table_t *t, const uint8_t *id, const void *owner, size_t owner_len);

/* Removes o from the table and frees the record. */
void store_table_remove(store_table_t *t, store_obj_t *o);

size_t store_table_count(const store_table_t *t);

/* Changes o's state and logs the transition. */
void store_obj_set_state(store_obj_t *o, store_obj_state_t s);
const char *store_obj_state_name(store_obj_state_t s);

/* Adds one reference held by client. */
void store_obj_ref(store_obj_t *o, uint64_t client);

/* Drops one reference held by client: 0, or RAYC_EINVALID_ARGUMENT when client holds none. */
int store_obj_unref(store_obj_t *o, uint64_t client);

/* Drops every reference held by client; returns how many there were. */
uint64_t store_obj_unref_all(store_obj_t *o, uint64_t client);

/* Returns how many references client holds. */
uint64_t store_obj_refs_of(const store_obj_t *o, uint64_t client);

/* Short hex of o's id for log lines (out: >= 9 bytes); returns out. */
char *store_obj_name(const store_obj_t *o, char *out);

#endif
