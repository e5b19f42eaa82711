/*
 * GCS storage: the key-value interface every GCS table persists through (Ray's StoreClient).
 *
 * A store holds named tables ("NODE", "JOB", "KV") of binary keys and values. The tables in
 * gcs_node.c and gcs_job.c keep their working state in memory and write each change through to the
 * store, and load what the store holds when the GCS starts; the internal KV (gcs_kv.c) lives in the
 * store directly. Today the only backend is memory (gcs_store_memory.c), so a restarted GCS starts
 * empty; a Redis backend implements the same gcs_store_ops_t and the tables need no change.
 *
 * Threads: a store is used from the GCS loop only. Calls are synchronous.
 */
#ifndef RAYC_GCS_STORE_H
#define RAYC_GCS_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gcs_store gcs_store_t;

/* Called for each matching entry; key and val are borrowed for the call. */
typedef void (*gcs_store_scan_fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                                  size_t vlen);

/* A backend. Every function returns a count or 0/1 as documented below, or a negative RAYC_E*. */
typedef struct gcs_store_ops {
  const char *name;
  int (*put)(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val,
             size_t vlen, int overwrite);
  int (*get)(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val,
             size_t *vlen);
  int (*del)(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix);
  int (*scan)(gcs_store_t *s, const char *table, const void *prefix, size_t plen,
              gcs_store_scan_fn fn, void *arg);
  void (*destroy)(gcs_store_t *s);
} gcs_store_ops_t;

/* Backends embed this as their first member. */
struct gcs_store {
  const gcs_store_ops_t *ops;
};

/* Returns a new, empty in-memory store. Destroy with gcs_store_destroy(). */
gcs_store_t *gcs_store_create_memory(void);

/* Accepts NULL. */
void gcs_store_destroy(gcs_store_t *s);

/* Sets table[key] = val (both copied). With overwrite == 0 an existing value is left unchanged.
 * Returns 1 when the key was new, 0 when it existed (replaced or not), or a negative code. */
int gcs_store_put(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val,
                  size_t vlen, int overwrite);

/* Looks table[key] up. Returns 1 with *val new (free()) and *vlen set, 0 when absent, or a
 * negative code. */
int gcs_store_get(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val,
                  size_t *vlen);

/* Deletes table[key], or with by_prefix every key that starts with key. Returns the number of
 * entries deleted, or a negative code. */
int gcs_store_del(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix);

/* Calls fn for every entry of table whose key starts with prefix (plen 0: all), in no particular
 * order; fn must not change the store. Returns the number of entries, or a negative code. */
int gcs_store_scan(gcs_store_t *s, const char *table, const void *prefix, size_t plen,
                   gcs_store_scan_fn fn, void *arg);

/* Packs msg and stores it as table[key] (overwriting). 0 or a negative code. */
int gcs_store_put_msg(gcs_store_t *s, const char *table, const void *key, size_t klen,
                      const ProtobufCMessage *msg);

/* Returns a new deep copy of msg (packed and unpacked again); free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *gcs_pb_dup(const ProtobufCMessage *msg);

#endif
