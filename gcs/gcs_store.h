/*
 * GCS storage: the key-value interface every GCS table persists through (Ray's StoreClient).
 *
 * A store holds named tables ("NODE", "JOB", "WORKER", "ACTOR", "KV") of binary keys and values.
 * The tables in gcs_node.c, gcs_job.c, gcs_worker.c and gcs_actor_store.c keep their working state
 * in memory, write each change through to the store, and load what the store holds when the GCS
 * starts (actors only with a persistent backend); the internal KV (gcs_kv.c) lives in the store
 * directly.
 *
 * Backends:
 *  - memory (gcs_store_memory.c): a hash map; a restarted GCS starts empty.
 *  - redis (gcs_store_redis.c): the same hash map as a mirror that serves every read, loaded from
 *    Redis at start-up (blocking, once), plus an asynchronous write-through of every change to
 *    Redis over hiredis's libuv adapter, on the GCS loop. Writes never block the loop.
 *
 * Durability. A put or del returns once memory has changed; the backend may still be writing it.
 * gcs_store_sync() calls back once every write issued before it is durable (at once for memory).
 * The GCS replies to a client only after that (gcs_server_reply), so a change a client was told
 * about survives a kill -9 of the GCS. A backend that can no longer write (Redis gone) calls the
 * fatal handler given at creation once; waiting syncs then fail with RAYC_EUNAVAILABLE.
 *
 * Threads: a store is used from the GCS loop only.
 */
#ifndef RAYC_GCS_STORE_H
#define RAYC_GCS_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct gcs_store gcs_store_t;

/* Called for each matching entry; key and val are borrowed for the call. */
typedef void (*gcs_store_scan_fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* status: 0 once the writes are durable, or a negative RAYC_E* code when they never will be. */
typedef void (*gcs_store_synced_fn)(void *arg, int status);

/* The backend lost its storage for good; msg (borrowed) says why. Called at most once. */
typedef void (*gcs_store_fatal_fn)(void *arg, const char *msg);

/* A backend. Every function returns a count or 0/1 as documented below, or a negative RAYC_E*.
 * sync and close may be NULL (nothing is ever pending). */
typedef struct gcs_store_ops {
  const char *name;
  int (*put)(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val, size_t vlen,
             int overwrite);
  int (*get)(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val, size_t *vlen);
  int (*del)(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix);
  int (*scan)(gcs_store_t *s, const char *table, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg);
  void (*sync)(gcs_store_t *s, gcs_store_synced_fn done, void *arg);
  void (*close)(gcs_store_t *s);
  void (*destroy)(gcs_store_t *s);
} gcs_store_ops_t;

/* Backends embed this as their first member. */
struct gcs_store {
  const gcs_store_ops_t *ops;
};

/* Returns a new, empty in-memory store. Destroy with gcs_store_destroy(). */
gcs_store_t *gcs_store_create_memory(void);

typedef struct gcs_redis_opts {
  const char *address;  /* "host:port", "[v6addr]:port" or "unix:/path/redis.sock" */
  const char *password; /* AUTH before anything else; NULL or "": none */
  const char *prefix;   /* table T lives in the Redis hash "<prefix>:T" */
  uv_loop_t *loop;      /* writes run on this loop */
  gcs_store_fatal_fn on_fatal;
  void *fatal_arg;
} gcs_redis_opts_t;

/* Connects to Redis, loads every table under the prefix into memory (blocking) and opens the
 * asynchronous connection for writes. Returns a new store, or NULL with *err set to a new message.
 * Call on the loop's thread. Before destroying, gcs_store_close() it and run the loop until its
 * handles are closed. */
gcs_store_t *gcs_store_create_redis(const gcs_redis_opts_t *opts, char **err);

/* Parses a Redis address: "unix:PATH" sets *path (new, free()); "host:port" and "[v6]:port" set
 * *host (new) and *port. 0 or RAYC_EINVALID_ARGUMENT. */
int gcs_redis_parse_address(const char *addr, char **host, int *port, char **path);

/* Starts an orderly close: writes issued so far complete (their syncs are called), then the
 * backend closes its connections on the loop. Idempotent; accepts NULL. */
void gcs_store_close(gcs_store_t *s);

/* Frees the store. Accepts NULL. */
void gcs_store_destroy(gcs_store_t *s);

/* The backend's name: "memory" or "redis". */
const char *gcs_store_name(const gcs_store_t *s);

/* Sets table[key] = val (both copied). With overwrite == 0 an existing value is left unchanged.
 * Returns 1 when the key was new, 0 when it existed (replaced or not), or a negative code. */
int gcs_store_put(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val, size_t vlen,
                  int overwrite);

/* Looks table[key] up. Returns 1 with *val new (free()) and *vlen set, 0 when absent, or a
 * negative code. */
int gcs_store_get(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val, size_t *vlen);

/* Deletes table[key], or with by_prefix every key that starts with key. Returns the number of
 * entries deleted, or a negative code. */
int gcs_store_del(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix);

/* Calls fn for every entry of table whose key starts with prefix (plen 0: all), in no particular
 * order; fn must not change the store. Returns the number of entries, or a negative code. */
int gcs_store_scan(gcs_store_t *s, const char *table, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg);

/* Calls done(arg, status) once every write issued so far is durable: before returning when none
 * is pending, else later on the loop, in the order the syncs were asked for. */
void gcs_store_sync(gcs_store_t *s, gcs_store_synced_fn done, void *arg);

/* Packs msg and stores it as table[key] (overwriting). 0 or a negative code. */
int gcs_store_put_msg(gcs_store_t *s, const char *table, const void *key, size_t klen, const ProtobufCMessage *msg);

/* Returns a new deep copy of msg (packed and unpacked again); free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *gcs_pb_dup(const ProtobufCMessage *msg);

/* As gcs_pb_dup, and as protobuf-c's unpack (NULL for bytes that do not parse), but the message
 * and everything it points to live in one heap block: free it with free(), never with
 * protobuf_c_message_free_unpacked, and do not move its parts into other messages. For copies kept
 * for long (per node: ~25 blocks of a NodeInfo become one). gcs/gcs_pbcompact.c. */
ProtobufCMessage *gcs_pb_dup_compact(const ProtobufCMessage *msg);
ProtobufCMessage *gcs_pb_unpack_compact(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data);

#endif
