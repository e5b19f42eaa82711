/*
 * The store's object logic, free of I/O: the object table (store_table.h), the allocator
 * (store_alloc.h) and the eviction lists (store_evict.c) kept consistent through create, seal,
 * get, release, abort, delete, client disconnect, eviction, and the bookkeeping half of spilling
 * and restoring (the I/O half is store_spill.c's). The protocol layer decodes requests, calls
 * these, and replies; unit tests call these directly.
 *
 * Rules:
 *   - create reserves data_size + metadata_size bytes and gives the creator one reference; when
 *     the region has no room, it first evicts unreferenced objects that can be dropped (secondary
 *     copies, and primary copies that already have a disk copy), least recently used first;
 *   - only the creator seals or aborts, and only while CREATED; abort frees at once;
 *   - get sees only readable objects (SEALED or SPILLING, not pending deletion) and adds one
 *     reference per call;
 *   - delete frees an object now when it is unreferenced and no I/O thread uses it, else marks it
 *     and it is freed when that ends;
 *   - a client that goes away loses its references, and its unsealed creates are aborted;
 *   - primary copies are never dropped without a disk copy: the spiller asks for batches of
 *     unreferenced ones (store_core_spill_pick), writes them, and reports back.
 *
 * Clients are named by a uint64 (a connection id; internal users take ids with
 * STORE_CLIENT_INTERNAL set). Failing calls leave a message naming the object and the reason in
 * store_core_error(). Single-threaded: the store's loop owns it.
 */
#ifndef RAYC_STORE_CORE_H
#define RAYC_STORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "object-store/store_alloc.h"
#include "object-store/store_table.h"

#define STORE_CLIENT_INTERNAL (UINT64_C(1) << 63)

enum store_create_flags {
  STORE_CREATE_SECONDARY = 1u << 0, /* a copy of an object from another node */
};

/* A doubly-linked list of objects, least recently used at the head. */
typedef struct store_lru {
  store_obj_t *head, *tail;
  uint64_t count, bytes; /* bytes: as allocated (rounded) */
} store_lru_t;

/* What the store holds and has done (current figures, then totals since start). */
typedef struct store_core_stats {
  uint64_t num_in_memory, bytes_primary, bytes_secondary; /* objects with memory in the region */
  uint64_t num_on_disk, bytes_on_disk;                    /* objects with a disk copy */
  uint64_t num_spilled_only;                              /* on disk and not in memory */
  uint64_t bytes_unspilled_primary; /* sealed primaries in memory without a disk copy, not spilling */
  uint64_t bytes_spilling;
  uint64_t evicted_objects, evicted_bytes;
  uint64_t spilled_objects, spilled_bytes;
  uint64_t restored_objects, restored_bytes;
} store_core_stats_t;

typedef struct store_core {
  store_alloc_t *alloc; /* owned */
  store_table_t table;
  store_lru_t evictable, spillable;
  store_core_stats_t st;
  /* Called after a create is sealed (and not pending deletion). May be NULL. The callback must
   * not free or create objects (it may take references with store_core_get). */
  void (*on_sealed)(void *ctx, const store_obj_t *o);
  /* Called when a restore ended (o readable again, or back to SPILLED with o->restore_err set).
   * May be NULL; same rules as on_sealed. */
  void (*on_restored)(void *ctx, const store_obj_t *o);
  /* Called when the last object of a spill file is gone; takes ownership of f (remove the file,
   * then store_spill_file_destroy). NULL: the record is destroyed and the file left alone. */
  void (*on_file_unused)(void *ctx, store_spill_file_t *f);
  void *ctx;
  int freed; /* set when memory went back to the allocator; see store_core_take_freed */
  char err[256];
} store_core_t;

/* Sets up an empty store of capacity bytes; the callbacks above start NULL, ctx as given. */
void store_core_init(store_core_t *c, uint64_t capacity, void (*on_sealed)(void *, const store_obj_t *), void *ctx);
/* Frees every record (their spill files go through on_file_unused) and the allocator. */
void store_core_release(store_core_t *c);

/* The message of the last failed call (borrowed; valid until the next call). */
const char *store_core_error(const store_core_t *c);

/* Returns 1 (and clears the flag) when memory was freed since the last call: the moment to retry
 * creates that are waiting for room. */
int store_core_take_freed(store_core_t *c);

/* 1 if an object of these sizes could fit in the empty store, else 0. */
int store_core_can_ever_fit(const store_core_t *c, uint64_t data_size, uint64_t metadata_size);

/* Creates id for client (flags: store_create_flags). On 0, *out is the new record (borrowed).
 * Errors: RAYC_EALREADY_EXISTS, RAYC_EOUT_OF_MEMORY (the message names the sizes; nothing could
 * be evicted to make room), RAYC_EINVALID_ARGUMENT (sizes overflow). */
int store_core_create(store_core_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size, const void *owner,
                      size_t owner_len, uint64_t client, unsigned flags, store_obj_t **out);

/* Seals id (client must be its creator). Errors: RAYC_ENOT_FOUND, RAYC_EINVALID_ARGUMENT. */
int store_core_seal(store_core_t *c, const uint8_t *id, uint64_t client);

/* Aborts client's unsealed create of id and frees it. Errors: RAYC_ENOT_FOUND,
 * RAYC_EINVALID_ARGUMENT (sealed, or created by another client). */
int store_core_abort(store_core_t *c, const uint8_t *id, uint64_t client);

/* 1 when o can be read now (SEALED or SPILLING, not pending deletion). */
int store_core_readable(const store_obj_t *o);

/* Returns the readable object id with one more reference held by client, or NULL (borrowed). */
store_obj_t *store_core_get(store_core_t *c, const uint8_t *id, uint64_t client);

/* Drops one of client's references to id. Errors: RAYC_ENOT_FOUND, RAYC_EINVALID_ARGUMENT (the
 * client holds none, or the object is not sealed: abort it instead). */
int store_core_release_ref(store_core_t *c, const uint8_t *id, uint64_t client);

/* 1 if id is readable, else 0. */
int store_core_contains(const store_core_t *c, const uint8_t *id);

/* 1 if a get of id would return it: readable, or spilled (a get restores it), not deleted. */
int store_core_present(const store_core_t *c, const uint8_t *id);

/* Deletes id (absent ids are ignored): freed now when possible, else as soon as it is. */
void store_core_delete(store_core_t *c, const uint8_t *id);

/* Drops every reference client holds and aborts its unsealed creates. */
void store_core_drop_client(store_core_t *c, uint64_t client);

/* The one place an object's state changes: logs the transition and keeps the counts and the
 * eviction lists in step. */
void store_core_set_state(store_core_t *c, store_obj_t *o, store_obj_state_t s);

/* ---- eviction (store_evict.c) ---- */

/* Evicts unreferenced droppable objects, least recently used first, until a free range of need
 * bytes exists or nothing is left to evict. Returns the number of objects evicted. */
size_t store_core_evict(store_core_t *c, uint64_t need);

/* Re-files o on the eviction list its state, flags and references call for (the tail: most
 * recently used). Called after every change to those. */
void store_core_classify(store_core_t *c, store_obj_t *o);

/* Unlinks o from its list (before o is freed). */
void store_core_unlist(store_core_t *c, store_obj_t *o);

/* Evicts o, which must be on the evictable list: a secondary copy is freed; a primary copy with a
 * disk copy loses its memory and becomes SPILLED. Counted in the eviction totals. */
void store_core_drop(store_core_t *c, store_obj_t *o);

/* ---- spilling and restoring: bookkeeping for store_spill.c ---- */

/* Moves up to max_objs unreferenced primary copies, least recently used first, into SPILLING,
 * stopping once max_bytes are taken (at least one object is taken when any is spillable).
 * Fills objs (room for max_objs) and returns the count. */
size_t store_core_spill_pick(store_core_t *c, uint64_t max_bytes, size_t max_objs, store_obj_t **objs);

/* A spill of o ended: on success (f not NULL) o's disk copy is record spill_offset of f. o goes
 * back to SEALED (and is freed now if it was deleted meanwhile). */
void store_core_spill_done(store_core_t *c, store_obj_t *o, store_spill_file_t *f, uint64_t spill_offset);

/* Starts restoring a SPILLED object: allocates its memory (evicting as create does) and moves it
 * to RESTORING. Errors: RAYC_EOUT_OF_MEMORY (message set), RAYC_EINVALID_ARGUMENT (not SPILLED). */
int store_core_restore_begin(store_core_t *c, store_obj_t *o);

/* A restore ended: err 0 makes o SEALED (keeping its disk copy); otherwise its memory is freed,
 * it goes back to SPILLED with restore_err = err. Frees o if it was deleted meanwhile. Calls
 * on_restored (unless o was freed). */
void store_core_restore_done(store_core_t *c, store_obj_t *o, int err);

uint64_t store_core_capacity(const store_core_t *c);
uint64_t store_core_used(const store_core_t *c);
uint64_t store_core_num_objects(const store_core_t *c);

#endif
