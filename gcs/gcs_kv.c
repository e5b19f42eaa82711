/* The GCS internal KV and its RPC handlers (InternalKVGcsService). See gcs_kv.h. */
#include "gcs/gcs_kv.h"

#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdlib.h>
#include <string.h>

#define GCS_KV_TABLE "KV"

/* Returns a new composite key "<ns>\0<key>" (free()), its length in *len. */
static uint8_t *gcs_kv_key(const char *ns, const void *key, size_t klen, size_t *len)
{
  size_t nslen = strlen(ns) + 1;
  uint8_t *k = xmalloc(nslen + klen);
  memcpy(k, ns, nslen);
  if (klen)
    memcpy(k + nslen, key, klen);
  *len = nslen + klen;
  return k;
}

int gcs_kv_get(gcs_store_t *s, const char *ns, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
  size_t len;
  uint8_t *k = gcs_kv_key(ns, key, klen, &len);
  int rc = gcs_store_get(s, GCS_KV_TABLE, k, len, val, vlen);
  free(k);
  return rc;
}

int gcs_kv_put(gcs_store_t *s, const char *ns, const void *key, size_t klen, const void *val, size_t vlen,
               int overwrite)
{
  size_t len;
  uint8_t *k = gcs_kv_key(ns, key, klen, &len);
  int rc = gcs_store_put(s, GCS_KV_TABLE, k, len, val, vlen, overwrite);
  free(k);
  return rc;
}

int gcs_kv_del(gcs_store_t *s, const char *ns, const void *key, size_t klen, int by_prefix)
{
  size_t len;
  uint8_t *k = gcs_kv_key(ns, key, klen, &len);
  int rc = gcs_store_del(s, GCS_KV_TABLE, k, len, by_prefix);
  free(k);
  return rc;
}

struct gcs_kv_scan {
  gcs_store_scan_fn fn;
  void *arg;
  size_t nslen; /* bytes of "<ns>\0" to strip from each store key */
};

static void gcs_kv_scan_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  struct gcs_kv_scan *sc = arg;
  sc->fn(sc->arg, key + sc->nslen, klen - sc->nslen, val, vlen);
}

int gcs_kv_keys(gcs_store_t *s, const char *ns, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg)
{
  size_t len;
  uint8_t *k = gcs_kv_key(ns, prefix, plen, &len);
  struct gcs_kv_scan sc = {fn, arg, strlen(ns) + 1};
  int rc = gcs_store_scan(s, GCS_KV_TABLE, k, len, gcs_kv_scan_one, &sc);
  free(k);
  return rc;
}

/* ---- handlers ---- */

void gcs_kv_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__KVGetRequest *r = (const Rayc__KVGetRequest *)req;
  uint8_t *val = NULL;
  size_t vlen = 0;
  int rc = gcs_kv_get(s->store, r->ns, r->key.data, r->key.len, &val, &vlen);
  if (rc < 0) {
    rpc_reply_error(call, rc, "InternalKVGet: %s", rayc_strerror(rc));
    return;
  }
  Rayc__KVGetReply reply = RAYC__KVGET_REPLY__INIT;
  reply.found = rc == 1;
  reply.value = pb_bytes(val, vlen);
  gcs_server_reply(s, call, &reply.base);
  free(val);
}

void gcs_kv_on_put(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__KVPutRequest *r = (const Rayc__KVPutRequest *)req;
  int rc = gcs_kv_put(s->store, r->ns, r->key.data, r->key.len, r->value.data, r->value.len, r->overwrite);
  if (rc < 0) {
    rpc_reply_error(call, rc, "InternalKVPut: %s", rayc_strerror(rc));
    return;
  }
  Rayc__KVPutReply reply = RAYC__KVPUT_REPLY__INIT;
  reply.added = rc == 1;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_kv_on_del(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__KVDelRequest *r = (const Rayc__KVDelRequest *)req;
  int rc = gcs_kv_del(s->store, r->ns, r->key.data, r->key.len, r->by_prefix);
  if (rc < 0) {
    rpc_reply_error(call, rc, "InternalKVDel: %s", rayc_strerror(rc));
    return;
  }
  Rayc__KVDelReply reply = RAYC__KVDEL_REPLY__INIT;
  reply.deleted = rc;
  gcs_server_reply(s, call, &reply.base);
}

struct gcs_kv_key_list {
  ProtobufCBinaryData *v;
  size_t n, cap;
};

static void gcs_kv_collect_key(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  struct gcs_kv_key_list *l = arg;
  (void)val;
  (void)vlen;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
  }
  l->v[l->n++] = pb_bytes(xmemdup(key, klen), klen);
}

void gcs_kv_on_keys(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__KVKeysRequest *r = (const Rayc__KVKeysRequest *)req;
  struct gcs_kv_key_list l = {0};
  int rc = gcs_kv_keys(s->store, r->ns, r->prefix.data, r->prefix.len, gcs_kv_collect_key, &l);
  if (rc < 0) {
    rpc_reply_error(call, rc, "InternalKVKeys: %s", rayc_strerror(rc));
  } else {
    Rayc__KVKeysReply reply = RAYC__KVKEYS_REPLY__INIT;
    reply.n_keys = l.n;
    reply.keys = l.v;
    gcs_server_reply(s, call, &reply.base);
  }
  for (size_t i = 0; i < l.n; i++)
    free(l.v[i].data);
  free(l.v);
}
