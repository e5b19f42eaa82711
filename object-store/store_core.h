/*
 * The store's object logic, free of I/O: the object table (store_table.h) and the allocator
 * (store_alloc.h) kept consistent through create, seal, get, release, abort, delete and
 * client disconnect. The protocol layer (store_server.c) decodes requests, calls these, and
 * replies; unit tests call these directly.
 *
 * Rules:
 *   - create reserves data_size + metadata_size bytes and gives the creator one reference;
 *   - only the creator seals or aborts, and only while CREATED; abort frees at once;
 *   - get sees only SEALED objects not pending deletion, and adds one reference per call;
 *   - delete frees an unreferenced object now, else marks it and the last release frees it;
 *   - a client that goes away loses its references, and its unsealed creates are aborted.
 * Sealed, unreferenced objects stay until deleted (eviction comes in a later issue, here).
 *
 * Clients are named by a uint64 (the connection id). Failing calls leave a message naming the
 * object and the reason in store_core_error(). Single-threaded: the store's loop owns it.
 */
#ifndef RAYC_STORE_CORE_H
#define RAYC_STORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "object-store/store_alloc.h"
#include "object-store/store_table.h"

typedef struct store_core {
  store_alloc_t *alloc; /* owned */
  store_table_t table;
  /* Called after an object becomes readable (sealed and not pending deletion). May be NULL. The
   * callback must not free or create objects (it may take references with store_core_get). */
  void (*on_sealed)(void *ctx, const store_obj_t *o);
  void *ctx;
  int freed;            /* set when memory went back to the allocator; see store_core_take_freed */
  char err[256];
} store_core_t;

/* Sets up an empty store of capacity bytes. on_sealed (may be NULL) and ctx as above. */
void store_core_init(store_core_t *c, uint64_t capacity, void (*on_sealed)(void *, const store_obj_t *),
                     void *ctx);
/* Frees every record and the allocator. */
void store_core_release(store_core_t *c);

/* The message of the last failed call (borrowed; valid until the next call). */
const char *store_core_error(const store_core_t *c);

/* Returns 1 (and clears the flag) when memory was freed since the last call: the moment to retry
 * creates that are waiting for room. */
int store_core_take_freed(store_core_t *c);

/* 1 if an object of these sizes could fit in the empty store, else 0. */
int store_core_can_ever_fit(const store_core_t *c, uint64_t data_size, uint64_t metadata_size);

/* Creates id for client. On 0, *out is the new record (borrowed). Errors: RAYC_EALREADY_EXISTS,
 * RAYC_EOUT_OF_MEMORY (the message names the sizes), RAYC_EINVALID_ARGUMENT (sizes overflow). */
int store_core_create(store_core_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size,
                      const void *owner, size_t owner_len, uint64_t client, store_obj_t **out);

/* Seals id (client must be its creator). Errors: RAYC_ENOT_FOUND, RAYC_EINVALID_ARGUMENT. */
int store_core_seal(store_core_t *c, const uint8_t *id, uint64_t client);

/* Aborts client's unsealed create of id and frees it. Errors: RAYC_ENOT_FOUND,
 * RAYC_EINVALID_ARGUMENT (sealed, or created by another client). */
int store_core_abort(store_core_t *c, const uint8_t *id, uint64_t client);

/* Returns the readable object id with one more reference held by client, or NULL (borrowed). */
store_obj_t *store_core_get(store_core_t *c, const uint8_t *id, uint64_t client);

/* Drops one of client's references to id. Errors: RAYC_ENOT_FOUND, RAYC_EINVALID_ARGUMENT (the
 * client holds none, or the object is not sealed: abort it instead). */
int store_core_release_ref(store_core_t *c, const uint8_t *id, uint64_t client);

/* 1 if id is readable, else 0. */
int store_core_contains(const store_core_t *c, const uint8_t *id);

/* Deletes id (absent ids are ignored): freed now when unreferenced, else on the last release. */
void store_core_delete(store_core_t *c, const uint8_t *id);

/* Drops every reference client holds and aborts its unsealed creates. */
void store_core_drop_client(store_core_t *c, uint64_t client);

uint64_t store_core_capacity(const store_core_t *c);
uint64_t store_core_used(const store_core_t *c);
uint64_t store_core_num_objects(const store_core_t *c);

#endif
