/*
 * Random protobuf messages for robustness tests: given a protobuf-c descriptor and a seed, builds a
 * message whose fields are filled (or left unset) at random with values chosen to hit edges: ids
 * one byte short or long, NaN and infinite amounts, negative and huge numbers, undeclared enum
 * values, long strings, empty and nested messages. Deterministic for a seed (rand_r), so a failure
 * names the seed that reproduces it. Header-only, as itest.h.
 */
#ifndef RAYC_ITEST_PBRAND_H
#define RAYC_ITEST_PBRAND_H

#include "common/util.h"

#include <math.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned pbr_pick(unsigned *seed, unsigned n)
{
  return (unsigned)rand_r(seed) % n;
}

static int64_t pbr_int(unsigned *seed)
{
  static const int64_t edges[] = {0, 1, -1, 2, 7, 100, 65535, 65536, 1000000, INT32_MAX, INT32_MIN, INT64_MAX};
  return pbr_pick(seed, 4) ? edges[pbr_pick(seed, sizeof(edges) / sizeof(edges[0]))] : (int64_t)rand_r(seed);
}

static double pbr_double(unsigned *seed)
{
  static const double edges[] = {0, 1, 0.5, -1, 2.5, 1e300, -1e-300};
  switch (pbr_pick(seed, 9)) {
    case 0:
      return NAN;
    case 1:
      return INFINITY;
    default:
      return edges[pbr_pick(seed, sizeof(edges) / sizeof(edges[0]))];
  }
}

static char *pbr_string(unsigned *seed)
{
  size_t n = pbr_pick(seed, 20) == 0 ? 5000 : pbr_pick(seed, 12);
  char *s = xmalloc(n + 1);
  for (size_t i = 0; i < n; i++)
    s[i] = (char)(' ' + pbr_pick(seed, 95));
  s[n] = 0;
  return s;
}

static ProtobufCBinaryData pbr_bytes(unsigned *seed)
{
  static const size_t sizes[] = {0, 1, 3, 4, 5, 15, 16, 17, 18, 24, 27, 28, 29, 56, 100};
  ProtobufCBinaryData b;
  b.len = sizes[pbr_pick(seed, sizeof(sizes) / sizeof(sizes[0]))];
  b.data = xmalloc(b.len ? b.len : 1);
  for (size_t i = 0; i < b.len; i++)
    b.data[i] = (uint8_t)rand_r(seed);
  return b;
}

static ProtobufCMessage *pbr_message(const ProtobufCMessageDescriptor *d, unsigned *seed, int depth);

/* Fills one value of field f at p. */
static void pbr_value(const ProtobufCFieldDescriptor *f, void *p, unsigned *seed, int depth)
{
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      *(int32_t *)p = (int32_t)pbr_int(seed);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      *(int64_t *)p = pbr_int(seed);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      *(float *)p = (float)pbr_double(seed);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      *(double *)p = pbr_double(seed);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      *(protobuf_c_boolean *)p = (protobuf_c_boolean)pbr_pick(seed, 2);
      break;
    case PROTOBUF_C_TYPE_ENUM: {
      const ProtobufCEnumDescriptor *e = f->descriptor;
      *(int *)p = pbr_pick(seed, 5) ? e->values[pbr_pick(seed, e->n_values)].value : 99;
      break;
    }
    case PROTOBUF_C_TYPE_STRING:
      *(char **)p = pbr_string(seed);
      break;
    case PROTOBUF_C_TYPE_BYTES:
      *(ProtobufCBinaryData *)p = pbr_bytes(seed);
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      *(ProtobufCMessage **)p = depth < 4 ? pbr_message(f->descriptor, seed, depth + 1) : NULL;
      break;
  }
}

static size_t pbr_elem_size(const ProtobufCFieldDescriptor *f)
{
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
      return 8;
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(ProtobufCMessage *);
    default:
      return 4;
  }
}

/* Returns a new message of type d with random fields; free with protobuf_c_message_free_unpacked(m, NULL). */
static ProtobufCMessage *pbr_message(const ProtobufCMessageDescriptor *d, unsigned *seed, int depth)
{
  ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
  d->message_init(m);
  char *base = (char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (pbr_pick(seed, 3) == 0)
      continue; /* left unset */
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = pbr_pick(seed, 4), es = pbr_elem_size(f);
      char *arr = n ? xcalloc(n, es) : NULL;
      for (size_t k = 0; k < n; k++)
        pbr_value(f, arr + k * es, seed, depth);
      *(size_t *)(base + f->quantifier_offset) = n;
      *(char **)(base + f->offset) = arr;
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
      if (*which)
        continue; /* one member of a oneof (they share memory) */
      *which = f->id;
    }
    pbr_value(f, base + f->offset, seed, depth);
  }
  return m;
}

#endif
