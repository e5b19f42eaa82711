/*
 * Client of the node's rayc-store over its Unix socket (blocking, thread-safe: one mutex per
 * client serializes request/reply pairs). Used by librayc (drivers and workers), the CLI and the
 * tests.
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

/* Seals a created object and drops the creator's reference, in one round trip. */
int store_client_seal_release(store_client_t *c, const uint8_t *id);

/* Aborts an unsealed create, freeing its memory. */
int store_client_abort(store_client_t *c, const uint8_t *id);

/* Creates, copies data in, seals and releases: the one-copy put, in two round trips. */
int store_client_put(store_client_t *c, const uint8_t *id, const void *data, size_t len, const void *owner,
                     size_t owner_len, int timeout_ms);

typedef struct store_object {
  const uint8_t *data; /* into the shared mapping; valid until released */
  uint64_t data_size;
  const uint8_t *metadata;
  uint64_t metadata_size;
  int found;
  int error; /* when not found: 0, or why a spilled copy could not be restored (RAYC_E*) */
} store_object_t;

/* Gets n objects (ids: n*28 bytes), waiting up to timeout_ms (-1: forever, 0: no wait) for each to
 * be sealed. Spilled objects are restored first (even with timeout 0: a spilled object is here).
 * Each found object holds a reference until store_client_release(). Returns 0 when the call
 * completed (check out[i].found), or a negative code. */
int store_client_get(store_client_t *c, const uint8_t *ids, size_t n, int64_t timeout_ms, store_object_t *out);

/* Drops one reference taken by get or create. */
int store_client_release(store_client_t *c, const uint8_t *id);

/* 1 if the store holds a sealed object id (in memory, or spilled: a get restores it), 0 if not,
 * or a negative code. */
int store_client_contains(store_client_t *c, const uint8_t *id);

/* Deletes objects (ids: n*28 bytes): freed now if unreferenced, else when the last reference goes. */
int store_client_delete(store_client_t *c, const uint8_t *ids, size_t n);

typedef struct store_stats {
  uint64_t capacity, bytes_used, num_objects;
  uint64_t num_in_memory;
  uint64_t bytes_primary, bytes_secondary; /* in memory: created here / pulled from other nodes */
  uint64_t num_spilled, bytes_spilled;     /* objects with a copy in a spill file */
  uint64_t num_spilled_only;               /* of those, not in memory */
  uint64_t spill_files, spill_file_bytes;
  uint64_t total_spilled_objects, total_spilled_bytes; /* totals since the store started */
  uint64_t total_restored_objects, total_restored_bytes;
  uint64_t total_evicted_objects, total_evicted_bytes;
  uint64_t total_pulled_objects, total_pulled_bytes;
  uint64_t total_served_chunks, total_served_bytes;
  int object_manager_port;
  unsigned num_pulls_active;
} store_stats_t;

/* Fills out with the store's figures. */
int store_client_stats(store_client_t *c, store_stats_t *out);

/* Makes the store hold a sealed copy of object id (28 bytes), pulling it from the first of
 * sources ("host:port" of other nodes' object managers, nsources of them) that has it. Returns 0
 * once the object is sealed in this node's store (at once when it is already here, in memory or
 * spilled), or RAYC_ENOT_FOUND (no source has it), RAYC_ETIMEOUT (after timeout_ms; < 0: no
 * limit), RAYC_EOUT_OF_MEMORY, RAYC_EUNAVAILABLE. Concurrent pulls of one object, from any
 * clients, are merged. The copy is a secondary copy: it holds no reference for the caller and may
 * be evicted under memory pressure, so get it soon after. Holds this client's lock while the pull
 * runs (use a client per thread that pulls). */
int store_client_pull(store_client_t *c, const uint8_t *id, const char *const *sources, size_t nsources,
                      int64_t timeout_ms);

/* Seal notifications. After store_client_subscribe(), c receives one notification per object
 * sealed in the store (from then on) and must be used only with store_client_next_sealed() and
 * store_client_fd(): dedicate a client to it. */
int store_client_subscribe(store_client_t *c);

typedef struct store_sealed {
  uint8_t id[28];
  uint64_t data_size, metadata_size;
} store_sealed_t;

/* Waits up to timeout_ms (-1: forever) for the next notification. Returns 1 with *out filled, 0
 * on timeout, or a negative code. */
int store_client_next_sealed(store_client_t *c, int timeout_ms, store_sealed_t *out);

/* The connection's socket, to poll(2) for notifications (readable: call store_client_next_sealed). */
int store_client_fd(const store_client_t *c);

/* This thread's detail message for its last failed store_client call: the store's text (e.g. the
 * sizes of an OUT_OF_MEMORY) or the local reason. Borrowed; valid until this thread's next call. */
const char *store_client_last_error(void);

/* The mapping, for tests: the base address and size of the region. */
const uint8_t *store_client_region(const store_client_t *c, uint64_t *size);

#endif
