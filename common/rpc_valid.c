/*
 * Request validation from the protobuf-c descriptors (see rpc_valid.h): a walk over every field of
 * a decoded message with rules chosen by field name and type, and the required paths of a table
 * row. Pure functions of the message (and of a fill-once, lock-free cache of each field's rules,
 * below): safe on any thread.
 */
#include "common/rpc_valid.h"

#include "common/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { VALID_DEPTH_MAX = 16, VALID_PATH_MAX = 160 };

/* Where a value sits in the request ("task.args[2].object_id"), as a chain of the fields walked
 * on the way down. It is kept unformatted and written out only when a rule fails: formatting
 * it for every field cost more than the rest of the walk (~30,000 instructions per PushTask). */
typedef struct valid_path {
  const struct valid_path *up; /* NULL at the top-level message */
  const char *name;            /* the field's name */
  long idx;                    /* the element of a repeated field, or -1 */
} valid_path_t;

/* Writes p as "a.b[i].c" into buf (truncated to len). */
static void valid_path_str(const valid_path_t *p, char *buf, size_t len)
{
  if (!p || len == 0) {
    if (len)
      buf[0] = 0;
    return;
  }
  valid_path_str(p->up, buf, len);
  size_t off = strlen(buf);
  if (off + 1 >= len)
    return;
  if (p->idx >= 0)
    snprintf(buf + off, len - off, "%s%s[%ld]", off ? "." : "", p->name, p->idx);
  else
    snprintf(buf + off, len - off, "%s%s", off ? "." : "", p->name);
}

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

/* vfail with the path written first: "<path><sep><message>". */
static int vpfail(char *why, size_t len, const valid_path_t *path, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int vpfail(char *why, size_t len, const valid_path_t *path, const char *sep, const char *fmt, ...)
{
  char where[VALID_PATH_MAX];
  valid_path_str(path, where, sizeof(where));
  int off = snprintf(why, len, "%s%s", where, where[0] ? sep : "");
  if (off < 0 || (size_t)off >= len)
    return RAYC_EINVALID_ARGUMENT;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why + off, len - (size_t)off, fmt, ap);
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

/* ---- the rules of a field, found by name once and cached ----
 *
 * Matching every field's name against the tables above took ~10,000 instructions per PushTask.
 * A field's rules depend only on its descriptor (static data of the generated code), so they are
 * looked up once per descriptor and kept in a lock-free table: one 64-bit word per field, its
 * descriptor's address (user-space addresses fit in 48 bits) and the rule bits above it, written
 * and read whole with atomics, so any thread may fill or read it. A full table only means
 * looking the name up again. */
enum {
  RULE_KNOWN = 1 << 15,    /* the word holds a computed rule */
  RULE_ID_MASK = 0x1f,     /* bytes: 1 + index into valid_ids, or 0 */
  RULE_MAX_SHIFT = 5,      /* bytes: 1 + index into valid_bytes_max (3 bits), or 0 */
  RULE_NAME = 1 << 8,      /* string: a name (RPC_VALID_NAME_MAX) */
  RULE_PORT = 1 << 9,      /* int32: a port */
  RULE_PID = 1 << 10,      /* int32: a pid */
  RULE_IN_RES = 1 << 11,   /* the field belongs to rayc.ResourceEntry */
  RULE_ELEM_RES = 1 << 12, /* a message field whose type is rayc.ResourceEntry */
  RULE_CACHE_SIZE = 2048,  /* slots (a power of two); the protos have a few hundred fields */
  RULE_CACHE_PROBE = 16,
};
static _Atomic uint64_t rule_cache[RULE_CACHE_SIZE];

static uint32_t rule_compute(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
  uint32_t r = RULE_KNOWN;
  for (size_t i = 0; i < sizeof(valid_ids) / sizeof(valid_ids[0]); i++)
    if (strcmp(f->name, valid_ids[i].name) == 0)
      r |= (uint32_t)(i + 1);
  for (size_t i = 0; i < sizeof(valid_bytes_max) / sizeof(valid_bytes_max[0]); i++)
    if (strcmp(f->name, valid_bytes_max[i].name) == 0)
      r |= (uint32_t)(i + 1) << RULE_MAX_SHIFT;
  if (NAME_IN(f->name, valid_names))
    r |= RULE_NAME;
  if (NAME_IN(f->name, valid_ports))
    r |= RULE_PORT;
  if (NAME_IN(f->name, valid_pids))
    r |= RULE_PID;
  if (strcmp(d->name, "rayc.ResourceEntry") == 0)
    r |= RULE_IN_RES;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
      strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, "rayc.ResourceEntry") == 0)
    r |= RULE_ELEM_RES;
  return r;
}

/* The rule bits of field f of messages of descriptor d. */
static uint32_t valid_rule(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
  uint64_t key = (uint64_t)(uintptr_t)f;
  if (key >> 48)
    return rule_compute(d, f);
  size_t h = (size_t)((key >> 3) * 0x9E3779B97F4A7C15ull >> 53) & (RULE_CACHE_SIZE - 1);
  for (size_t i = 0; i < RULE_CACHE_PROBE; i++) {
    _Atomic uint64_t *slot = &rule_cache[(h + i) & (RULE_CACHE_SIZE - 1)];
    uint64_t w = atomic_load_explicit(slot, memory_order_acquire);
    if (w && (w & 0xffffffffffffull) == key)
      return (uint32_t)(w >> 48);
    if (!w) {
      uint32_t r = rule_compute(d, f);
      uint64_t expect = 0;
      atomic_compare_exchange_strong(slot, &expect, key | (uint64_t)r << 48);
      return r;
    }
  }
  return rule_compute(d, f);
}

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

static int valid_bytes(uint32_t rule, const ProtobufCFieldDescriptor *f, const ProtobufCBinaryData *b,
                       const valid_path_t *path, char *why, size_t len)
{
  if (rule & RULE_ID_MASK) {
    const struct valid_id *r = &valid_ids[(rule & RULE_ID_MASK) - 1];
    int packed = r->list && f->label != PROTOBUF_C_LABEL_REPEATED;
    if (packed ? b->len % r->size != 0 : (b->len != 0 && b->len != r->size))
      return vpfail(why, len, path, " ", "must be %s%zu bytes (got %zu)", packed ? "a multiple of " : "0 or ", r->size,
                    b->len);
    return 0;
  }
  uint32_t mi = (rule >> RULE_MAX_SHIFT) & 7;
  if (mi && b->len > valid_bytes_max[mi - 1].max)
    return vpfail(why, len, path, " ", "is longer than %zu bytes (%zu)", valid_bytes_max[mi - 1].max, b->len);
  return 0;
}

static int valid_string(uint32_t rule, const char *s, const valid_path_t *path, char *why, size_t len)
{
  if (!s)
    return 0;
  size_t max = (rule & RULE_NAME) ? RPC_VALID_NAME_MAX : RPC_VALID_STRING_MAX;
  size_t n = strnlen(s, max + 1);
  if (n > max)
    return vpfail(why, len, path, " ", "is longer than %zu bytes", max);
  return 0;
}

static int valid_int32(uint32_t rule, int32_t v, const valid_path_t *path, char *why, size_t len)
{
  if ((rule & RULE_PORT) && (v < 0 || v > 65535))
    return vpfail(why, len, path, " ", "must be a port 0..65535 (got %d)", (int)v);
  if ((rule & RULE_PID) && v < 0)
    return vpfail(why, len, path, " ", "must not be negative (got %d)", (int)v);
  return 0;
}

static int valid_msg(const ProtobufCMessage *m, const valid_path_t *path, int depth, char *why, size_t len);

/* One value of field f (an element, for repeated fields) of a message of descriptor d. */
static int valid_value(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f, const void *v,
                       const valid_path_t *path, int depth, char *why, size_t len)
{
  uint32_t rule = valid_rule(d, f);
  switch (f->type) {
    case PROTOBUF_C_TYPE_BYTES:
      return valid_bytes(rule, f, v, path, why, len);
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)v;
      if ((rule & RULE_IN_RES) && (!s || !*s || strlen(s) > RPC_VALID_RES_NAME_MAX))
        return vpfail(why, len, path, ": ", "a resource name needs 1..%d bytes", RPC_VALID_RES_NAME_MAX);
      return valid_string(rule, s, path, why, len);
    }
    case PROTOBUF_C_TYPE_ENUM: {
      int e = *(const int *)v;
      if (!protobuf_c_enum_descriptor_get_value(f->descriptor, e))
        return vpfail(why, len, path, ": ", "%d is not a value of %s", e,
                      ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
      return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
      double x = *(const double *)v;
      if (!isfinite(x))
        return vpfail(why, len, path, " ", "must be a finite number");
      if ((rule & RULE_IN_RES) && (x < 0 || x > RPC_VALID_AMOUNT_MAX))
        return vpfail(why, len, path, ": ", "a resource amount must be 0..1e15 (got %g)", x);
      return 0;
    }
    case PROTOBUF_C_TYPE_INT32:
      return valid_int32(rule, *(const int32_t *)v, path, why, len);
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)v;
      return sub ? valid_msg(sub, path, depth + 1, why, len) : 0;
    }
    default:
      return 0;
  }
}

/* Field f of message m: each element when repeated; nothing when it is an unselected oneof member. */
static int valid_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const valid_path_t *path,
                       int depth, char *why, size_t len)
{
  const char *base = (const char *)m;
  valid_path_t sub = {.up = path, .name = f->name, .idx = -1};
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
      return 0;
    return valid_value(m->descriptor, f, base + f->offset, &sub, depth, why, len);
  }
  size_t n = *(const size_t *)(base + f->quantifier_offset);
  const char *arr = *(char *const *)(base + f->offset);
  size_t max = (valid_rule(m->descriptor, f) & RULE_ELEM_RES) ? RPC_VALID_RESOURCES_MAX : RPC_VALID_REPEATED_MAX;
  if (n > max)
    return vpfail(why, len, &sub, " ", "has %zu entries (at most %zu)", n, max);
  size_t es = valid_elem_size(f);
  for (size_t i = 0; i < n; i++) {
    valid_path_t el = {.up = path, .name = f->name, .idx = (long)i};
    int rc = valid_value(m->descriptor, f, arr + i * es, &el, depth, why, len);
    if (rc)
      return rc;
  }
  return 0;
}

static int valid_msg(const ProtobufCMessage *m, const valid_path_t *path, int depth, char *why, size_t len)
{
  if (depth > VALID_DEPTH_MAX)
    return vpfail(why, len, path, ": ", "messages nested too deep");
  const ProtobufCMessageDescriptor *d = m->descriptor;
  /* protobuf-c keeps a field numbered 0 (illegal in protobuf) as an unknown field, then packs it
   * in a form it refuses to decode: a request stored as received (an actor's creation task in
   * Redis) would be lost on reload. Found by tests/fuzz/fuzz_rpc_request. */
  for (size_t i = 0; i < m->n_unknown_fields; i++)
    if (m->unknown_fields[i].tag == 0)
      return vpfail(why, len, path, ": ", "field number 0 is not allowed");
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
static int valid_required(const ProtobufCMessage *m, const char *p, size_t n, const char *full, int fulln, char *why,
                          size_t len)
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
    return vfail(why, len, "bad required path %.*s", fulln, full);
  const char *base = (const char *)m;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t cnt = *(const size_t *)(base + f->quantifier_offset);
    if (cnt == 0)
      return vfail(why, len, "%.*s is required (at least one entry)", fulln, full);
    if (!dot)
      return 0;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      return vfail(why, len, "bad required path %.*s", fulln, full);
    ProtobufCMessage *const *arr = *(ProtobufCMessage * *const *)(base + f->offset);
    for (size_t i = 0; i < cnt; i++) {
      int rc = valid_required(arr[i], dot + 1, n - k - 1, full, fulln, why, len);
      if (rc)
        return rc;
    }
    return 0;
  }
  const void *v = base + f->offset;
  if (((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id) ||
      !valid_is_set(f, v))
    return vfail(why, len, "%.*s is required", fulln, full);
  if (!dot)
    return 0;
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return vfail(why, len, "bad required path %.*s", fulln, full);
  return valid_required(*(ProtobufCMessage *const *)v, dot + 1, n - k - 1, full, fulln, why, len);
}

/* Calls fn on each space-separated path of list (p, n: the path; the path again as full, fulln, for
 * messages: it is written out only when a check fails); stops at the first non-zero result. */
static int valid_each_path(const char *list,
                           int (*fn)(const void *arg, const char *p, size_t n, const char *full, int fulln, char *why,
                                     size_t len),
                           const void *arg, char *why, size_t len)
{
  const char *p = list ? list : "";
  while (*p) {
    while (*p == ' ')
      p++;
    size_t n = strcspn(p, " ");
    if (n) {
      int rc = fn(arg, p, n, p, n < VALID_PATH_MAX ? (int)n : VALID_PATH_MAX - 1, why, len);
      if (rc)
        return rc;
    }
    p += n;
  }
  return 0;
}

static int valid_required_cb(const void *arg, const char *p, size_t n, const char *full, int fulln, char *why,
                             size_t len)
{
  return valid_required(arg, p, n, full, fulln, why, len);
}

int rpc_valid_check(const ProtobufCMessage *m, const char *required, char *why, size_t len)
{
  int rc = valid_msg(m, NULL, 0, why, len);
  return rc ? rc : valid_each_path(required, valid_required_cb, m, why, len);
}

static int valid_path_cb(const void *arg, const char *p, size_t n, const char *full, int fulln, char *why, size_t len)
{
  const ProtobufCMessageDescriptor *d = arg;
  while (n) {
    const char *dot = memchr(p, '.', n);
    size_t k = dot ? (size_t)(dot - p) : n;
    char name[64];
    if (k == 0 || k >= sizeof(name))
      return vfail(why, len, "bad required path %.*s", fulln, full);
    memcpy(name, p, k);
    name[k] = 0;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (!f || (dot && f->type != PROTOBUF_C_TYPE_MESSAGE))
      return vfail(why, len, "required path %.*s does not name a field of %s", fulln, full, d->name);
    if (!dot)
      return 0;
    d = f->descriptor;
    p = dot + 1;
    n -= k + 1;
  }
  return vfail(why, len, "bad required path %.*s", fulln, full);
}

int rpc_valid_paths(const ProtobufCMessageDescriptor *desc, const char *required, char *why, size_t len)
{
  return valid_each_path(required, valid_path_cb, desc, why, len);
}
