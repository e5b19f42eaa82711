/*
 * Resource sets over interned names (see res.h). Sets are unsorted (id, amount) arrays: they hold
 * a few names (a request) to a few dozen (a node with placement-group bundles), where a linear scan
 * of integers beats any index.
 */
#include "common/res.h"

#include "common/hmap.h"
#include "common/rpc_valid.h"
#include "common/status.h"
#include "common/util.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The intern table: process-wide by design (res.h), append-only, guarded by mu. */
static struct {
  pthread_mutex_t mu;
  hmap_t by_name; /* name -> id + 1 */
  char **names;   /* by id */
  uint32_t n, cap;
} res_names = {.mu = PTHREAD_MUTEX_INITIALIZER};

res_id_t res_intern(const char *name)
{
  char buf[RES_NAME_MAX];
  size_t len = strlen(name);
  if (len >= RES_NAME_MAX) {
    len = RES_NAME_MAX - 1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    name = buf;
  }
  pthread_mutex_lock(&res_names.mu);
  if (!res_names.by_name.buckets)
    hmap_init(&res_names.by_name);
  uintptr_t v = (uintptr_t)hmap_get(&res_names.by_name, name, len);
  if (!v) {
    if (res_names.n == res_names.cap) {
      res_names.cap = res_names.cap ? 2 * res_names.cap : 64;
      res_names.names = xrealloc(res_names.names, res_names.cap * sizeof(*res_names.names));
    }
    res_names.names[res_names.n] = xstrdup(name);
    v = ++res_names.n;
    hmap_put(&res_names.by_name, name, len, (void *)v);
  }
  pthread_mutex_unlock(&res_names.mu);
  return (res_id_t)(v - 1);
}

int res_lookup(const char *name, res_id_t *id)
{
  pthread_mutex_lock(&res_names.mu);
  uintptr_t v = res_names.by_name.buckets ? (uintptr_t)hmap_get(&res_names.by_name, name, strlen(name)) : 0;
  pthread_mutex_unlock(&res_names.mu);
  if (!v)
    return -1;
  *id = (res_id_t)(v - 1);
  return 0;
}

const char *res_name(res_id_t id)
{
  pthread_mutex_lock(&res_names.mu);
  const char *s = id < res_names.n ? res_names.names[id] : "?";
  pthread_mutex_unlock(&res_names.mu);
  return s;
}

void res_clear(res_set_t *s)
{
  s->n = 0;
}

static int res_index(const res_set_t *s, res_id_t id)
{
  for (uint32_t i = 0; i < s->n; i++)
    if (s->id[i] == id)
      return (int)i;
  return -1;
}

double res_get(const res_set_t *s, res_id_t id)
{
  int i = res_index(s, id);
  return i < 0 ? 0 : s->amt[i];
}

int res_put(res_set_t *s, res_id_t id, double amt)
{
  int i = res_index(s, id);
  if (i < 0) {
    if (s->n >= RES_MAX)
      return -1;
    i = (int)s->n++;
    s->id[i] = id;
  }
  s->amt[i] = amt;
  return 0;
}

void res_del(res_set_t *s, res_id_t id)
{
  int i = res_index(s, id);
  if (i < 0)
    return;
  s->n--;
  s->id[i] = s->id[s->n];
  s->amt[i] = s->amt[s->n];
}

double res_get_name(const res_set_t *s, const char *name)
{
  res_id_t id;
  return res_lookup(name, &id) == 0 ? res_get(s, id) : 0;
}

int res_put_name(res_set_t *s, const char *name, double amt)
{
  return res_put(s, res_intern(name), amt);
}

void res_del_name(res_set_t *s, const char *name)
{
  res_id_t id;
  if (res_lookup(name, &id) == 0)
    res_del(s, id);
}

int res_fits_n(const res_set_t *avail, const res_set_t *req, double scale)
{
  for (uint32_t i = 0; i < req->n; i++)
    if (req->amt[i] > RES_EPS && res_get(avail, req->id[i]) + RES_EPS < req->amt[i] * scale)
      return 0;
  return 1;
}

int res_fits(const res_set_t *avail, const res_set_t *req)
{
  return res_fits_n(avail, req, 1);
}

void res_sub(res_set_t *avail, const res_set_t *req)
{
  for (uint32_t i = 0; i < req->n; i++)
    (void)res_put(avail, req->id[i], res_get(avail, req->id[i]) - req->amt[i]);
}

void res_add(res_set_t *avail, const res_set_t *req)
{
  for (uint32_t i = 0; i < req->n; i++)
    (void)res_put(avail, req->id[i], res_get(avail, req->id[i]) + req->amt[i]);
}

static int res_near(double x, double y)
{
  return x - y <= RES_EPS && y - x <= RES_EPS;
}

int res_equal(const res_set_t *a, const res_set_t *b)
{
  for (uint32_t i = 0; i < a->n; i++)
    if (!res_near(res_get(b, a->id[i]), a->amt[i]))
      return 0;
  for (uint32_t i = 0; i < b->n; i++)
    if (!res_near(res_get(a, b->id[i]), b->amt[i]))
      return 0;
  return 1;
}

int res_from_pb(res_set_t *s, Rayc__ResourceEntry *const *entries, size_t n)
{
  int rc = 0;
  s->n = 0;
  for (size_t i = 0; i < n; i++)
    if (entries[i]->name && entries[i]->name[0] && res_put_name(s, entries[i]->name, entries[i]->amount) != 0)
      rc = -1;
  return rc;
}

Rayc__ResourceEntry **res_to_pb(const res_set_t *s, size_t *n)
{
  Rayc__ResourceEntry **e = xcalloc(s->n ? s->n : 1, sizeof(*e));
  for (uint32_t i = 0; i < s->n; i++) {
    e[i] = xmalloc(sizeof(**e));
    rayc__resource_entry__init(e[i]);
    e[i]->name = xstrdup(res_name(s->id[i]));
    e[i]->amount = s->amt[i];
  }
  *n = s->n;
  return e;
}

void res_pb_free(Rayc__ResourceEntry **e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(e[i]->name);
    free(e[i]);
  }
  free(e);
}

/* Parsed with jansson (a well-kept JSON library) rather than by hand. Amounts above
 * RPC_VALID_AMOUNT_MAX are refused: the GCS refuses them when the node registers (a larger one left
 * a node that could never join; found by fuzz_res_json). */
int res_parse_json(res_set_t *s, const char *json)
{
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  int rc = root && json_is_object(root) ? 0 : RAYC_EINVALID_ARGUMENT;
  uint32_t fresh = 0;
  const char *name;
  json_t *v;
  if (rc == 0)
    json_object_foreach(root, name, v)
    {
      res_id_t id;
      if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > RPC_VALID_AMOUNT_MAX || !*name ||
          strlen(name) >= RES_NAME_MAX) {
        rc = RAYC_EINVALID_ARGUMENT;
        break;
      }
      fresh += res_lookup(name, &id) != 0 || res_index(s, id) < 0;
    }
  if (rc == 0 && s->n + fresh > RES_MAX)
    rc = RAYC_EINVALID_ARGUMENT;
  if (rc == 0)
    json_object_foreach(root, name, v)(void) res_put_name(s, name, json_number_value(v));
  json_decref(root);
  return rc;
}

int res_format(const res_set_t *s, char *buf, size_t len)
{
  size_t off = 0;
  if (len)
    buf[0] = '\0';
  for (uint32_t i = 0; i < s->n; i++) {
    int k = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, "%s%s=%g", i ? "," : "",
                     res_name(s->id[i]), s->amt[i]);
    off += k > 0 ? (size_t)k : 0;
  }
  return (int)off;
}
