/*
 * Client of the node's rayc-store over its Unix socket (blocking, thread-safe: one mutex per
 * client serializes request/reply pairs). Used by librayc (drivers and workers).
 *
 * On connect the store passes its shared-memory region's fd (SCM_RIGHTS); the client maps the
 * whole region once, lazily faulted, and reads and writes objects in place: a put is one copy into
 * shared memory (or none, when the producer writes straight into store_client_create's buffer), a
 * get is zero copies.
 *
 * Calls on one client are serialized: a get that waits (timeout_ms != 0) holds this client's other
 * callers until it returns, so a thread that must wait long should use its own client. After a
 * transport error (the store died, a malformed reply) every call fails with RAYC_EUNAVAILABLE:
 * destroy the client and connect again. Errors carry a detail message in
 * store_client_last_error().
 */
#ifndef RAYC_STORE_CLIENT_H
#define RAYC_STORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct store_client store_client_t;

/* Connects to the store at socket_path and maps its region. Returns 0 and *out (destroy with
 * store_client_destroy), or a negative code. */
int store_client_connect(const char *socket_path, store_client_t **out);

/* Closes the connection (the store releases this client's references and aborts its unsealed
 * creates) and unmaps the region. Accepts NULL. */
void store_client_destroy(store_client_t *c);

/* Creates object id (28 bytes) of data_size bytes (+ metadata_size bytes that follow the data).
 * On 0, *data points at the writable buffer in shared memory; write it, then store_client_seal().
 * The owner (a packed rayc.Address, may be NULL) is kept for the object manager. Waits up to
 * timeout_ms for room. Errors: RAYC_EALREADY_EXISTS, RAYC_EOUT_OF_MEMORY (the detail names the
 * sizes), RAYC_EINVALID_ARGUMENT, RAYC_EUNAVAILABLE (the store is gone). */
int store_client_create(store_client_t *c, const uint8_t *id, uint64_t data_size, uint64_t metadata_size,
                        const void *owner, size_t owner_len, int timeout_ms, uint8_t **data);

/* Seals a created object: readers may now get it. The creator keeps one reference until
 * store_client_release(). */
int store_client_seal(store_client_t *c, const uint8_t *id);

/* Aborts an unsealed create, freeing its memory. */
int store_client_abort(store_client_t *c, const uint8_t *id);

/* Creates, copies data in, seals and releases: the one-copy put. */
int store_client_put(store_client_t *c, const uint8_t *id, const void *data, size_t len, const void *owner,
                     size_t owner_len, int timeout_ms);

typedef struct store_object {
  const uint8_t *data; /* into the shared mapping; valid until released */
  uint64_t data_size;
  const uint8_t *metadata;
  uint64_t metadata_size;
  int found;
} store_object_t;

/* Gets n objects (ids: n*28 bytes), waiting up to timeout_ms (-1: forever, 0: no wait) for each to
 * be sealed. Each found object holds a reference until store_client_release(). Returns 0 when the
 * call completed (check out[i].found), or a negative code. */
int store_client_get(store_client_t *c, const uint8_t *ids, size_t n, int64_t timeout_ms, store_object_t *out);

/* Drops one reference taken by get or create. */
int store_client_release(store_client_t *c, const uint8_t *id);

/* 1 if the store holds a sealed object id, 0 if not, or a negative code. */
int store_client_contains(store_client_t *c, const uint8_t *id);

/* Deletes objects (ids: n*28 bytes): freed now if unreferenced, else when the last reference goes. */
int store_client_delete(store_client_t *c, const uint8_t *ids, size_t n);

typedef struct store_stats {
  uint64_t capacity, bytes_used, num_objects;
} store_stats_t;
int store_client_stats(store_client_t *c, store_stats_t *out);

/* This thread's detail message for its last failed store_client call: the store's text (e.g. the
 * sizes of an OUT_OF_MEMORY) or the local reason. Borrowed; valid until this thread's next call. */
const char *store_client_last_error(void);

/* The mapping, for tests: the base address and size of the region. */
const uint8_t *store_client_region(const store_client_t *c, uint64_t *size);

#endif
