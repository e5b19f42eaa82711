/*
 * The GCS internal KV (Ray's InternalKVGcsService): binary keys and values in named namespaces,
 * used for cluster metadata (job code packages, function tables, named actors...).
 *
 * It lives in the store's table "KV" under composite keys "<namespace>\0<key>", so that a namespace
 * is a key prefix: listing or deleting by prefix inside one namespace never reaches another.
 */
#ifndef RAYC_GCS_KV_H
#define RAYC_GCS_KV_H

#include "common/rpc.h"
#include "gcs/gcs_store.h"

#include <stddef.h>
#include <stdint.h>

/* Gets ns/key: 1 with *val new (free()), 0 when absent, or a negative code. ns: NUL-terminated. */
int gcs_kv_get(gcs_store_t *s, const char *ns, const void *key, size_t klen, uint8_t **val, size_t *vlen);

/* Puts ns/key = val; an existing value is replaced only with overwrite. Returns 1 when the key
 * was added, 0 when it existed, or a negative code. */
int gcs_kv_put(gcs_store_t *s, const char *ns, const void *key, size_t klen, const void *val, size_t vlen,
               int overwrite);

/* Deletes ns/key, or every key of ns starting with key; returns the number deleted. */
int gcs_kv_del(gcs_store_t *s, const char *ns, const void *key, size_t klen, int by_prefix);

/* Calls fn with every key of ns that starts with prefix (and its value); returns how many. */
int gcs_kv_keys(gcs_store_t *s, const char *ns, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg);

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_kv_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_kv_on_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_kv_on_del(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_kv_on_keys(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
