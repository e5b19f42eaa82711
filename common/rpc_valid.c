/*
 * Request validation from the protobuf-c descriptors (see rpc_valid.h): a walk over every field of
 * a decoded message with rules chosen by field name and type, and the required paths of a table
 * row. Pure functions of the message: safe on any thread.
 */
#include "common/rpc_valid.h"

#include "common/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { VALID_DEPTH_MAX = 16, VALID_PATH_MAX = 160 };

/* Bytes fields with a fixed size by name (0 bytes: not set). list: a packed list of such ids
 * (or, when repeated, each element one id). */
static const struct valid_id {
  const char *name;
  size_t size;
  int list;
} valid_ids[] = {
    {"job_id", 4, 0},
    {"creator_job_id", 4, 0},
    {"actor_id", 16, 0},
    {"task_id", 24, 0},
    {"object_id", 28, 0},
    {"object_ids", 28, 1},
    {"node_id", 28, 0},
    {"affinity_node_id", 28, 0},
    {"avoid_node_id", 28, 0},
    {"worker_id", 28, 0},
    {"owner_worker_id", 28, 0},
    {"borrower_worker_id", 28, 0},
    {"placement_group_id", 18, 0},
};

/* Bytes fields with a size limit by name. */
static const struct valid_max {
  const char *name;
  size_t max;
} valid_bytes_max[] = {
    {"lease_id", 32},
    {"request_id", 32},
    {"subscriber_id", 64},
    {"key", RPC_VALID_KEY_MAX},
    {"prefix", RPC_VALID_KEY_MAX},
};

/* String fields held to RPC_VALID_NAME_MAX (others: RPC_VALID_STRING_MAX). */
static const char *const valid_names[] = {
    "ip",           "name",        "ray_namespace", "code_path",
    "hostname",     "session_dir", "raylet_socket", "store_socket",
    "class_name",   "actor_class", "function_name", "ns",
    "owner_target", "worker_ip",   "store_address", "key",
};

static const char *const valid_ports[] = {"port", "raylet_port", "object_manager_port", "worker_port"};
static const char *const valid_pids[] = {"pid", "driver_pid"};

static int vfail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int vfail(char *why, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return RAYC_EINVALID_ARGUMENT;
}

static int name_in(const char *name, const char *const *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, v[i]) == 0)
      return 1;
  return 0;
}
#define NAME_IN(name, v) name_in(name, v, sizeof(v) / sizeof(v[0]))

/* The size of one element of a repeated field of f's type. */
static size_t valid_elem_size(const ProtobufCFieldDescriptor *f)
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

static int valid_bytes(const ProtobufCFieldDescriptor *f, const ProtobufCBinaryData *b, const char *path, char *why,
                       size_t len)
{
  for (size_t i = 0; i < sizeof(valid_ids) / sizeof(valid_ids[0]); i++) {
    const struct valid_id *r = &valid_ids[i];
    if (strcmp(f->name, r->name) != 0)
      continue;
    int packed = r->list && f->label != PROTOBUF_C_LABEL_REPEATED;
    if (packed ? b->len % r->size != 0 : (b->len != 0 && b->len != r->size))
      return vfail(why, len, "%s must be %s%zu bytes (got %zu)", path, packed ? "a multiple of " : "0 or ", r->size,
                   b->len);
    return 0;
  }
  for (size_t i = 0; i < sizeof(valid_bytes_max) / sizeof(valid_bytes_max[0]); i++)
    if (strcmp(f->name, valid_bytes_max[i].name) == 0 && b->len > valid_bytes_max[i].max)
      return vfail(why, len, "%s is longer than %zu bytes (%zu)", path, valid_bytes_max[i].max, b->len);
  return 0;
}

static int valid_string(const ProtobufCFieldDescriptor *f, const char *s, const char *path, char *why, size_t len)
{
  if (!s)
    return 0;
  size_t max = NAME_IN(f->name, valid_names) ? RPC_VALID_NAME_MAX : RPC_VALID_STRING_MAX;
  size_t n = strnlen(s, max + 1);
  if (n > max)
    return vfail(why, len, "%s is longer than %zu bytes", path, max);
  return 0;
}

static int valid_int32(const ProtobufCFieldDescriptor *f, int32_t v, const char *path, char *why, size_t len)
{
  if (NAME_IN(f->name, valid_ports) && (v < 0 || v > 65535))
    return vfail(why, len, "%s must be a port 0..65535 (got %d)", path, (int)v);
  if (NAME_IN(f->name, valid_pids) && v < 0)
    return vfail(why, len, "%s must not be negative (got %d)", path, (int)v);
  return 0;
}

static int valid_msg(const ProtobufCMessage *m, const char *path, int depth, char *why, size_t len);

/* One value of field f (an element, for repeated fields) of a message of descriptor d. */
static int valid_value(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f, const void *v,
                       const char *path, int depth, char *why, size_t len)
{
  switch (f->type) {
    case PROTOBUF_C_TYPE_BYTES:
      return valid_bytes(f, v, path, why, len);
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)v;
      if (strcmp(d->name, "rayc.ResourceEntry") == 0 && (!s || !*s || strlen(s) > RPC_VALID_RES_NAME_MAX))
        return vfail(why, len, "%s: a resource name needs 1..%d bytes", path, RPC_VALID_RES_NAME_MAX);
      return valid_string(f, s, path, why, len);
    }
    case PROTOBUF_C_TYPE_ENUM: {
      int e = *(const int *)v;
      if (!protobuf_c_enum_descriptor_get_value(f->descriptor, e))
        return vfail(why, len, "%s: %d is not a value of %s", path, e,
                     ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
      return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
      double x = *(const double *)v;
      if (!isfinite(x))
        return vfail(why, len, "%s must be a finite number", path);
      if (strcmp(d->name, "rayc.ResourceEntry") == 0 && (x < 0 || x > RPC_VALID_AMOUNT_MAX))
        return vfail(why, len, "%s: a resource amount must be 0..1e15 (got %g)", path, x);
      return 0;
    }
    case PROTOBUF_C_TYPE_INT32:
      return valid_int32(f, *(const int32_t *)v, path, why, len);
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
      return sub ? valid_msg(sub, path, depth + 1, why, len) : 0;
    }
    default:
      return 0;
  }
}

/* Field f of message m: each element when repeated; nothing when it is an unselected oneof member. */
static int valid_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *path, int depth,
                       char *why, size_t len)
{
  const char *base = (const char *)m;
  char sub[VALID_PATH_MAX];
  snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", f->name);
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
      return 0;
    return valid_value(m->descriptor, f, base + f->offset, sub, depth, why, len);
  }
  size_t n = *(const size_t *)(base + f->quantifier_offset);
  const char *arr = *(char *const *)(base + f->offset);
  size_t max = f->type == PROTOBUF_C_TYPE_MESSAGE &&
                       strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, "rayc.ResourceEntry") == 0
                   ? RPC_VALID_RESOURCES_MAX
                   : RPC_VALID_REPEATED_MAX;
  if (n > max)
    return vfail(why, len, "%s has %zu entries (at most %zu)", sub, n, max);
  size_t es = valid_elem_size(f);
  for (size_t i = 0; i < n; i++) {
    char el[VALID_PATH_MAX + 24];
    if (snprintf(el, sizeof(el), "%s[%zu]", sub, i) < 0)
      el[0] = 0;
    int rc = valid_value(m->descriptor, f, arr + i * es, el, depth, why, len);
    if (rc)
      return rc;
  }
  return 0;
}

static int valid_msg(const ProtobufCMessage *m, const char *path, int depth, char *why, size_t len)
{
  if (depth > VALID_DEPTH_MAX)
    return vfail(why, len, "%s: messages nested too deep", path);
  const ProtobufCMessageDescriptor *d = m->descriptor;
  /* protobuf-c keeps a field numbered 0 (illegal in protobuf) as an unknown field, then packs it
   * in a form it refuses to decode: a request stored as received (an actor's creation task in
   * Redis) would be lost on reload. Found by tests/fuzz/fuzz_rpc_request. */
  for (size_t i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0)
      return vfail(why, len, "%s%sfield number 0 is not allowed", path, *path ? ": " : "");
  for (unsigned i = 0; i < d->n_fields; i++) {
    int rc = valid_field(m, &d->fields[i], path, depth, why, len);
    if (rc)
      return rc;
  }
  return 0;
}

/* 1 when one value of field f counts as set. */
static int valid_is_set(const ProtobufCFieldDescriptor *f, const void *v)
{
  switch (f->type) {
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *)v)->len > 0;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)v;
      return s && *s;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(ProtobufCMessage *const *)v != NULL;
    case PROTOBUF_C_TYPE_BOOL:
      return 1;
    default:
      return valid_elem_size(f) == 8 ? *(const uint64_t *)v != 0 : *(const uint32_t *)v != 0;
  }
}

/* The required path p (its first name has length n up to '.', or the end) in message m. */
static int valid_required(const ProtobufCMessage *m, const char *p, size_t n, const char *full, char *why, size_t len)
{
  char name[64];
  const char *dot = memchr(p, '.', n);
  size_t k = dot ? (size_t)(dot - p) : n;
  if (k == 0 || k >= sizeof(name))
    return vfail(why, len, "bad required path %.*s", (int)n, p);
  memcpy(name, p, k);
  name[k] = 0;
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
  if (!f)
    return vfail(why, len, "bad required path %s", full);
  const char *base = (const char *)m;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t cnt = *(const size_t *)(base + f->quantifier_offset);
    if (cnt == 0)
      return vfail(why, len, "%s is required (at least one entry)", full);
    if (!dot)
      return 0;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      return vfail(why, len, "bad required path %s", full);
    ProtobufCMessage *const *arr = *(ProtobufCMessage * *const *)(base + f->offset);
    for (size_t i = 0; i < cnt; i++) {
      int rc = valid_required(arr[i], dot + 1, n - k - 1, full, why, len);
      if (rc)
        return rc;
    }
    return 0;
  }
  const void *v = base + f->offset;
  if (((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id) ||
      !valid_is_set(f, v))
    return vfail(why, len, "%s is required", full);
  if (!dot)
    return 0;
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return vfail(why, len, "bad required path %s", full);
  return valid_required(*(ProtobufCMessage *const *)v, dot + 1, n - k - 1, full, why, len);
}

/* Calls fn on each space-separated path of list; stops at the first non-zero result. */
static int valid_each_path(const char *list,
                           int (*fn)(const void *arg, const char *p, size_t n, const char *full, char *why, size_t len),
                           const void *arg, char *why, size_t len)
{
  const char *p = list ? list : "";
  while (*p) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (n) {
      char full[VALID_PATH_MAX];
      snprintf(full, sizeof(full), "%.*s", (int)n, p);
      int rc = fn(arg, p, n, full, why, len);
      if (rc)
        return rc;
    }
    p += n;
  }
  return 0;
}

static int valid_required_cb(const void *arg, const char *p, size_t n, const char *full, char *why, size_t len)
{
  return valid_required(arg, p, n, full, why, len);
}

int rpc_valid_check(const ProtobufCMessage *m, const char *required, char *why, size_t len)
{
  int rc = valid_msg(m, "", 0, why, len);
  return rc ? rc : valid_each_path(required, valid_required_cb, m, why, len);
}

static int valid_path_cb(const void *arg, const char *p, size_t n, const char *full, char *why, size_t len)
{
  const ProtobufCMessageDescriptor *d = arg;
  while (n) {
    const char *dot = memchr(p, '.', n);
    size_t k = dot ? (size_t)(dot - p) : n;
    char name[64];
    if (k == 0 || k >= sizeof(name))
      return vfail(why, len, "bad required path %s", full);
    memcpy(name, p, k);
    name[k] = 0;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (!f || (dot && f->type != PROTOBUF_C_TYPE_MESSAGE))
      return vfail(why, len, "required path %s does not name a field of %s", full, d->name);
    if (!dot)
      return 0;
    d = f->descriptor;
    p = dot + 1;
    n -= k + 1;
  }
  return vfail(why, len, "bad required path %s", full);
}

int rpc_valid_paths(const ProtobufCMessageDescriptor *desc, const char *required, char *why, size_t len)
{
  return valid_each_path(required, valid_path_cb, desc, why, len);
}
