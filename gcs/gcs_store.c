/* GCS storage: the backend-independent entry points (dispatch through the backend's ops). */
#include "gcs/gcs_store.h"

#include "common/util.h"

#include <stdlib.h>

void gcs_store_destroy(gcs_store_t *s)
{
  if (s)
    s->ops->destroy(s);
}

void gcs_store_close(gcs_store_t *s)
{
  if (s && s->ops->close)
    s->ops->close(s);
}

const char *gcs_store_name(const gcs_store_t *s)
{
  return s->ops->name;
}

void gcs_store_sync(gcs_store_t *s, gcs_store_synced_fn done, void *arg)
{
  if (s->ops->sync)
    s->ops->sync(s, done, arg);
  else
    done(arg, 0);
}

int gcs_store_put(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val, size_t vlen,
                  int overwrite)
{
  return s->ops->put(s, table, key, klen, val, vlen, overwrite);
}

int gcs_store_get(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
  return s->ops->get(s, table, key, klen, val, vlen);
}

int gcs_store_del(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix)
{
  return s->ops->del(s, table, key, klen, by_prefix);
}

int gcs_store_scan(gcs_store_t *s, const char *table, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg)
{
  return s->ops->scan(s, table, prefix, plen, fn, arg);
}

int gcs_store_put_msg(gcs_store_t *s, const char *table, const void *key, size_t klen, const ProtobufCMessage *msg)
{
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = xmalloc(len);
  protobuf_c_message_pack(msg, buf);
  int rc = gcs_store_put(s, table, key, klen, buf, len, 1);
  free(buf);
  return rc < 0 ? rc : 0;
}

ProtobufCMessage *gcs_pb_dup(const ProtobufCMessage *msg)
{
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = xmalloc(len);
  protobuf_c_message_pack(msg, buf);
  ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
  free(buf);
  if (!copy) /* packing a valid message always unpacks again: anything else is a bug */
    abort();
  return copy;
}
