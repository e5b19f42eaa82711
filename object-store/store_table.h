/*
 * The object table: every object the store holds, by ObjectID, with its state, its place in the
 * region and on disk, and who references it.
 *
 * An object's state (store_obj_state_t) says where its bytes are:
 *
 *   CREATED ----seal----> SEALED <----restore done---- RESTORING
 *      |                 |    ^  \                         ^  |
 *    abort            spill   spill done  evict (has a     |  restore failed
 *      v                 v    |    disk copy)              |  v
 *    freed           SPILLING      \------------------> SPILLED
 *                                                  (restore begins: memory is allocated)
 *
 *   CREATED    memory allocated; its creator (a client, or a pull) is writing it; invisible to readers
 *   SEALED     in memory, immutable, readable
 *   SPILLING   in memory and readable; an I/O thread is copying it into a spill file
 *   SPILLED    on disk only, no memory; a get restores it
 *   RESTORING  memory allocated; an I/O thread is reading it back; not readable yet
 *
 * The state changes only through store_core_set_state() (store_core.h), which logs the transition
 * and keeps the store's byte counts and eviction lists in step. A sealed object may also have a
 * disk copy (spill_file set): a spilled primary copy that was restored keeps its file, so its
 * memory can be dropped again at no cost. References are counted per client (a connection id, or
 * an internal id for pulls and the object manager), so a client that disconnects can have exactly
 * its own references dropped. An object marked delete_pending is invisible to readers and is
 * freed when its last reference goes and no I/O thread is using it.
 *
 * Primary copies were created on this node (the owner's copy): pinned until the owner deletes
 * them, so under memory pressure they are spilled, never dropped. Secondary copies arrived by
 * transfer from another node: unreferenced ones are evicted, least recently used first.
 * Single-threaded: the store's loop owns the table.
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
  STORE_OBJ_SPILLING = 2,
  STORE_OBJ_SPILLED = 3,
  STORE_OBJ_RESTORING = 4,
} store_obj_state_t;

/* Which eviction list an object is on (store_evict.c). */
typedef enum store_obj_list {
  STORE_LIST_NONE = 0,
  STORE_LIST_EVICTABLE = 1, /* sealed, unreferenced, and a secondary copy or one with a disk copy */
  STORE_LIST_SPILLABLE = 2, /* sealed, unreferenced primary copy without a disk copy */
} store_obj_list_t;

/* A file of fused spilled objects. Created by the spiller (store_spill.c); objects point at it.
 * When its last object goes, the core hands it back for removal (store_core_t.on_file_unused). */
typedef struct store_spill_file {
  char *path;     /* owned */
  uint64_t nobjs; /* objects whose disk copy lives here */
  uint64_t size;  /* bytes in the file */
} store_spill_file_t;

typedef struct store_holder {
  uint64_t client; /* connection id */
  uint64_t count;
} store_holder_t;

typedef struct store_obj {
  uint8_t id[ID_OBJECT_SIZE];
  store_obj_state_t state;
  uint64_t offset; /* into the region; meaningful while the state has memory */
  uint64_t data_size, metadata_size;
  uint8_t *owner; /* owned copy of the packed owner Address (NULL when none) */
  size_t owner_len;
  uint64_t creator;               /* client id of the creator (a connection, or a pull) */
  int secondary;                  /* a copy pulled from another node */
  int delete_pending;             /* deleted while referenced or busy: free when possible */
  int restore_err;                /* 0, or why the last restore failed (reported to gets) */
  store_spill_file_t *spill_file; /* the disk copy, or NULL */
  uint64_t spill_offset;          /* where the object's record starts in spill_file */
  uint64_t refs;                  /* sum of holders[].count */
  store_holder_t *holders;
  size_t nholders, holders_cap;
  int64_t created_ms, last_access_ms;
  /* eviction list links (store_evict.c) */
  store_obj_list_t list;
  struct store_obj *lru_prev, *lru_next;
} store_obj_t;

typedef struct store_table {
  hmap_t map; /* id -> store_obj_t* (owned) */
} store_table_t;

void store_table_init(store_table_t *t);
/* Frees every record (not their memory in the region, nor their spill files). */
void store_table_release(store_table_t *t);

/* Returns the record for id (ID_OBJECT_SIZE bytes), borrowed, or NULL. */
store_obj_t *store_table_find(const store_table_t *t, const uint8_t *id);

/* Adds a new CREATED record for id, which must not be present; returns it (owned by the table).
 * owner (owner_len bytes, may be NULL) is copied. */
store_obj_t *store_table_insert(store_table_t *t, const uint8_t *id, const void *owner, size_t owner_len);

/* Removes o from the table and frees the record. */
void store_table_remove(store_table_t *t, store_obj_t *o);

size_t store_table_count(const store_table_t *t);

const char *store_obj_state_name(store_obj_state_t s);

/* 1 when the state holds memory in the region (CREATED, SEALED, SPILLING, RESTORING). */
int store_obj_state_in_memory(store_obj_state_t s);

/* data_size + metadata_size (the caller checked it does not overflow at create). */
uint64_t store_obj_size(const store_obj_t *o);

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

/* Returns a new spill-file record for path (copied), with no objects. Free with
 * store_spill_file_destroy(). */
store_spill_file_t *store_spill_file_create(const char *path);
/* Frees the record (not the file on disk). Accepts NULL. */
void store_spill_file_destroy(store_spill_file_t *f);

#endif
