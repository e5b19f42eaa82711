/* protobuf-c messages as JSON; see common/pb_json.h. */
#include "common/pb_json.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *pb_json_enum_name(const ProtobufCEnumDescriptor *e, int v)
{
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(e, v);
  return ev ? ev->name : "UNKNOWN";
}

static json_t *pb_json_hex(const ProtobufCBinaryData *b)
{
  static const char digits[] = "0123456789abcdef";
  char *s = xmalloc(b->len * 2 + 1);
  for (size_t i = 0; i < b->len; i++) {
    s[2 * i] = digits[b->data[i] >> 4];
    s[2 * i + 1] = digits[b->data[i] & 15];
  }
  s[b->len * 2] = '\0';
  json_t *j = json_string(s);
  free(s);
  return j;
}

/* One value of field f stored at p. */
static json_t *pb_json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
      return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
      return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
      return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
      return json_string(pb_json_enum_name(f->descriptor, *(const int *)p));
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      json_t *j = json_string(s ? s : "");
      return j ? j : json_string("(not UTF-8)");
    }
    case PROTOBUF_C_TYPE_BYTES:
      return pb_json_hex((const ProtobufCBinaryData *)p);
    case PROTOBUF_C_TYPE_MESSAGE:
      return pb_json_from_message(*(ProtobufCMessage *const *)p);
  }
  return json_null();
}

/* A repeated ResourceEntry or Label as an object; NULL for other messages. */
static json_t *pb_json_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *v, size_t n)
{
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return NULL;
  const ProtobufCMessageDescriptor *d = f->descriptor;
  if (strcmp(d->short_name, "ResourceEntry") != 0 && strcmp(d->short_name, "Label") != 0)
    return NULL;
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    const ProtobufCFieldDescriptor *k = protobuf_c_message_descriptor_get_field(d, 1);
    const ProtobufCFieldDescriptor *val = protobuf_c_message_descriptor_get_field(d, 2);
    const char *key = *(char *const *)((const char *)v[i] + k->offset);
    json_object_set_new(o, key ? key : "", pb_json_value(val, (const char *)v[i] + val->offset));
  }
  return o;
}

static size_t pb_json_size(const ProtobufCFieldDescriptor *f)
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
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    default:
      return 4;
  }
}

static json_t *pb_json_repeated(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m)
{
  size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
  const char *arr = *(char *const *)((const char *)m + f->offset);
  json_t *map = pb_json_map(f, (ProtobufCMessage *const *)arr, n);
  if (map)
    return map;
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(a, pb_json_value(f, arr + i * pb_json_size(f)));
  return a;
}

json_t *pb_json_from_message(const ProtobufCMessage *m)
{
  if (!m)
    return json_null();
  const ProtobufCMessageDescriptor *d = m->descriptor;
  json_t *o = json_object();
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
      continue; /* another member of its oneof is set: this one's storage is not ours to read */
    json_t *v = f->label == PROTOBUF_C_LABEL_REPEATED ? pb_json_repeated(f, m)
                                                      : pb_json_value(f, (const char *)m + f->offset);
    json_object_set_new(o, f->name, v ? v : json_null());
  }
  return o;
}
