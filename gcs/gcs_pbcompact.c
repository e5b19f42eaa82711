/*
 * Protobuf messages kept for long in one heap block (see gcs_store.h, gcs_pb_dup_compact).
 *
 * protobuf-c's unpack allocates every message, string, bytes field and repeated array as a block of
 * its own: a NodeInfo is ~25 blocks, each with malloc's header and rounding. The GCS keeps such
 * copies per node for the cluster's life (the node table's NodeInfo, the NODE channel's ring).
 * Here the message is unpacked twice with allocators of our own: the first pass records each
 * allocation's size and which ones unpack itself freed again (its scratch); the second, given the
 * same bytes, makes the same allocations in the same order, and places every allocation that the
 * message keeps in one block, the top-level message first, so that free() of the message frees it
 * all. Scratch allocations go to malloc and are freed as unpack frees them.
 */
#include "gcs/gcs_store.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PBC_ALIGN 16

struct pbc_alloc {
  void *p;
  size_t size;
  int scratch; /* freed by unpack itself */
};

struct pbc_track { /* first pass */
  struct pbc_alloc *v;
  size_t n, cap;
};

static size_t pbc_round(size_t n)
{
  return (n + PBC_ALIGN - 1) & ~(size_t)(PBC_ALIGN - 1);
}

static void *pbc_track_alloc(void *data, size_t size)
{
  struct pbc_track *t = data;
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  void *p = xmalloc(size ? size : 1);
  t->v[t->n++] = (struct pbc_alloc){p, size, 0};
  return p;
}

static void pbc_track_free(void *data, void *p)
{
  struct pbc_track *t = data;
  for (size_t i = t->n; i-- > 0;) {
    if (t->v[i].p == p && !t->v[i].scratch) {
      t->v[i].scratch = 1;
      t->v[i].p = NULL;
      break;
    }
  }
  free(p);
}

struct pbc_place { /* second pass */
  const struct pbc_track *plan;
  size_t top; /* index of the top-level message's allocation */
  size_t i;   /* allocations made so far */
  char *block;
  size_t off, len;
};

static void *pbc_place_alloc(void *data, size_t size)
{
  struct pbc_place *pl = data;
  size_t i = pl->i++;
  if (i >= pl->plan->n || pl->plan->v[i].size != size)
    abort(); /* not the first pass's sequence: unpack is deterministic, so a bug */
  if (pl->plan->v[i].scratch)
    return xmalloc(size ? size : 1);
  if (i == pl->top)
    return pl->block;
  void *p = pl->block + pl->off;
  pl->off += pbc_round(size);
  if (pl->off > pl->len)
    abort();
  return p;
}

static void pbc_place_free(void *data, void *p)
{
  struct pbc_place *pl = data;
  if ((char *)p < pl->block || (char *)p >= pl->block + pl->len)
    free(p);
}

ProtobufCMessage *gcs_pb_unpack_compact(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data)
{
  struct pbc_track t = {0};
  ProtobufCAllocator a1 = {.alloc = pbc_track_alloc, .free = pbc_track_free, .allocator_data = &t};
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a1, len, data);
  if (!m) {
    free(t.v);
    return NULL;
  }
  size_t top = t.n, kept = 0;
  for (size_t i = 0; i < t.n; i++) {
    if (t.v[i].p == m)
      top = i;
    else if (!t.v[i].scratch)
      kept += pbc_round(t.v[i].size);
  }
  struct pbc_track plan = {.v = xmalloc((t.n ? t.n : 1) * sizeof(*plan.v)), .n = t.n};
  memcpy(plan.v, t.v, t.n * sizeof(*plan.v));
  protobuf_c_message_free_unpacked(m, &a1);
  free(t.v);
  if (top == plan.n)
    abort(); /* unpack returned a block it did not allocate */
  size_t head = pbc_round(plan.v[top].size);
  struct pbc_place pl = {.plan = &plan, .top = top, .block = xmalloc(head + kept), .off = head, .len = head + kept};
  ProtobufCAllocator a2 = {.alloc = pbc_place_alloc, .free = pbc_place_free, .allocator_data = &pl};
  m = protobuf_c_message_unpack(desc, &a2, len, data);
  if (m != (ProtobufCMessage *)pl.block || pl.i != plan.n)
    abort(); /* the same bytes unpacked differently: a bug */
  free(plan.v);
  return m;
}

ProtobufCMessage *gcs_pb_dup_compact(const ProtobufCMessage *msg)
{
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = xmalloc(len ? len : 1);
  protobuf_c_message_pack(msg, buf);
  ProtobufCMessage *copy = gcs_pb_unpack_compact(msg->descriptor, len, buf);
  free(buf);
  if (!copy) /* packing a valid message always unpacks again: anything else is a bug */
    abort();
  return copy;
}
