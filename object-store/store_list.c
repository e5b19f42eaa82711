/*
 * ObjectManagerService.ListObjects: every object this store holds, for the state API's
 * `rayc list objects` (issue 15). Runs on the store's loop like every table access; newest first,
 * cut at the request's limit.
 */
#include "object-store/store_server_int.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LIST_DEFAULT_LIMIT = 10000 };

static int list_newest_first(const void *a, const void *b)
{
  const store_obj_t *x = *(const store_obj_t *const *)a, *y = *(const store_obj_t *const *)b;
  return (x->created_ms < y->created_ms) - (x->created_ms > y->created_ms);
}

static int64_t list_wall_ms(int64_t mono_ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (now_ms() - mono_ms);
}

static void list_fill(const store_obj_t *o, Rayc__StoreObjectInfo *m)
{
  rayc__store_object_info__init(m);
  m->object_id = pb_bytes(o->id, ID_OBJECT_SIZE);
  m->data_size = o->data_size;
  m->metadata_size = o->metadata_size;
  if (o->owner)
    m->owner = pb_bytes(o->owner, o->owner_len);
  m->secondary = o->secondary != 0;
  m->in_memory = o->state == STORE_OBJ_SEALED || o->state == STORE_OBJ_SPILLING;
  m->spilled = o->spill_file != NULL;
  m->local_refs = o->refs;
  m->created_ms = list_wall_ms(o->created_ms);
}

void store_list_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  store_server_t *s = ctx;
  const Rayc__ListObjectsRequest *r = (const Rayc__ListObjectsRequest *)req;
  size_t n = 0, cap = s->core.table.map.count + 1;
  const store_obj_t **v = xcalloc(cap, sizeof(*v));
  for (hmap_iter_t it = hmap_iter(&s->core.table.map); hmap_next(&it);) {
    const store_obj_t *o = it.value;
    if (o->state != STORE_OBJ_CREATED && !o->delete_pending && n < cap)
      v[n++] = o;
  }
  qsort(v, n, sizeof(*v), list_newest_first);
  size_t limit = r->limit > 0 ? (size_t)r->limit : LIST_DEFAULT_LIMIT, k = n < limit ? n : limit;
  Rayc__StoreObjectInfo *m = xcalloc(k + 1, sizeof(*m));
  Rayc__StoreObjectInfo **pm = xcalloc(k + 1, sizeof(*pm));
  for (size_t i = 0; i < k; i++) {
    list_fill(v[i], &m[i]);
    pm[i] = &m[i];
  }
  Rayc__ListObjectsReply reply = RAYC__LIST_OBJECTS_REPLY__INIT;
  reply.objects = pm;
  reply.n_objects = k;
  reply.total = n;
  rpc_reply(call, &reply.base);
  free(pm);
  free(m);
  free(v);
}
