/*
 * The rest of the GCS KV for bindings (rayc_lang.h): listing keys by prefix and deleting them. The
 * Python front end forwards the print() output of workers on other nodes to its driver through
 * keys it lists, reads and deletes (python/rayc/_log.py).
 */
#include "worker/cw.h"
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "rayc_lang.h"

#include "common/util.h"
#include "proto/gcs.pb-c.h"

#include <stdlib.h>
#include <string.h>

enum { KV_TIMEOUT_MS = 10000 };

static int kv_call(cw_t *cw, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
  rpc_channel_t *ch = cw_actors_gcs(cw);
  if (!ch)
    return cw_set_error(RAYC_ENOT_CONNECTED, "no GCS channel");
  char *detail = NULL;
  int rc = cw_gcs_call_on(cw, ch, &rayc__internal_kvgcs_service__descriptor, method, req, KV_TIMEOUT_MS, resp, &detail);
  if (rc != 0)
    cw_set_error(rc, "the GCS did not answer %s: %s", method, detail ? detail : rayc_strerror(rc));
  free(detail);
  return rc;
}

int rayc_kv_keys(const char *ns, const void *prefix, size_t plen, rayc_kv_key **keys, size_t *n)
{
  if (!ns || (!prefix && plen) || !keys || !n)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_kv_keys: ns, keys and n are required");
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  Rayc__KVKeysRequest req = RAYC__KVKEYS_REQUEST__INIT;
  req.ns = (char *)ns;
  req.prefix = pb_bytes(prefix, plen);
  ProtobufCMessage *resp = NULL;
  int rc = kv_call(cw, "InternalKVKeys", &req.base, &resp);
  *keys = NULL;
  *n = 0;
  if (rc == 0) {
    Rayc__KVKeysReply *rep = (Rayc__KVKeysReply *)resp;
    *keys = xcalloc(rep->n_keys ? rep->n_keys : 1, sizeof(**keys));
    for (size_t i = 0; i < rep->n_keys; i++) {
      (*keys)[i].data = xmalloc(rep->keys[i].len ? rep->keys[i].len : 1);
      memcpy((*keys)[i].data, rep->keys[i].data, rep->keys[i].len);
      (*keys)[i].len = rep->keys[i].len;
    }
    *n = rep->n_keys;
  }
  pb_free(resp);
  return rc;
}

void rayc_kv_keys_free(rayc_kv_key *keys, size_t n)
{
  for (size_t i = 0; keys && i < n; i++)
    free(keys[i].data);
  free(keys);
}

int rayc_kv_del(const char *ns, const void *key, size_t klen, int by_prefix)
{
  if (!ns || (!key && klen))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_kv_del: ns and key are required");
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  Rayc__KVDelRequest req = RAYC__KVDEL_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = pb_bytes(key, klen);
  req.by_prefix = by_prefix != 0;
  ProtobufCMessage *resp = NULL;
  int rc = kv_call(cw, "InternalKVDel", &req.base, &resp);
  int deleted = rc == 0 ? ((Rayc__KVDelReply *)resp)->deleted : 0;
  pb_free(resp);
  return rc == 0 ? deleted : rc;
}
