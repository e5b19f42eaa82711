/* Resource sets: small fixed arrays of (name, amount), compared with a tolerance for doubles. */
#include "raylet/raylet.h"

#include "common/rpc_valid.h"

#include "common/status.h"
#include "common/util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RES_EPS 1e-9

static int res_index(const raylet_res_t *r, const char *name)
{
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->name[i], name) == 0)
      return i;
  return -1;
}

void raylet_res_set(raylet_res_t *r, const char *name, double amount)
{
  int i = res_index(r, name);
  if (i < 0) {
    if (r->n >= RES_MAX)
      return;
    i = r->n++;
    snprintf(r->name[i], RES_NAME_MAX, "%s", name);
  }
  r->amount[i] = amount;
}

void raylet_res_del(raylet_res_t *r, const char *name)
{
  int i = res_index(r, name);
  if (i < 0)
    return;
  r->n--;
  if (i != r->n) {
    memcpy(r->name[i], r->name[r->n], RES_NAME_MAX);
    r->amount[i] = r->amount[r->n];
  }
}

double raylet_res_get(const raylet_res_t *r, const char *name)
{
  int i = res_index(r, name);
  return i < 0 ? 0 : r->amount[i];
}

int raylet_res_fits(const raylet_res_t *avail, const raylet_res_t *req)
{
  for (int i = 0; i < req->n; i++)
    if (req->amount[i] > RES_EPS && raylet_res_get(avail, req->name[i]) + RES_EPS < req->amount[i])
      return 0;
  return 1;
}

void raylet_res_sub(raylet_res_t *avail, const raylet_res_t *req)
{
  for (int i = 0; i < req->n; i++)
    raylet_res_set(avail, req->name[i], raylet_res_get(avail, req->name[i]) - req->amount[i]);
}

void raylet_res_add(raylet_res_t *avail, const raylet_res_t *req)
{
  for (int i = 0; i < req->n; i++)
    raylet_res_set(avail, req->name[i], raylet_res_get(avail, req->name[i]) + req->amount[i]);
}

/* Parsed with jansson (a well-kept JSON library) rather than by hand: {"name": amount, ...}, every
 * amount a number 0..RPC_VALID_AMOUNT_MAX (what the GCS accepts when the node registers: a larger
 * one left a node that could never join; found by fuzz_res_json) and every name short enough for
 * the table. */
int raylet_res_parse_json(raylet_res_t *r, const char *json)
{
  json_error_t jerr;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  int rc = root && json_is_object(root) ? 0 : RAYC_EINVALID_ARGUMENT;
  const char *name;
  json_t *v;
  if (rc == 0) {
    json_object_foreach(root, name, v)
    {
      if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > RPC_VALID_AMOUNT_MAX || !*name ||
          strlen(name) >= RES_NAME_MAX || (res_index(r, name) < 0 && r->n >= RES_MAX)) {
        rc = RAYC_EINVALID_ARGUMENT;
        break;
      }
    }
  }
  if (rc == 0)
    json_object_foreach(root, name, v) raylet_res_set(r, name, json_number_value(v));
  json_decref(root);
  return rc;
}

void raylet_res_from_pb(raylet_res_t *r, Rayc__ResourceEntry **entries, size_t n)
{
  memset(r, 0, sizeof(*r));
  for (size_t i = 0; i < n; i++)
    if (entries[i]->name && entries[i]->name[0])
      raylet_res_set(r, entries[i]->name, entries[i]->amount);
}

Rayc__ResourceEntry **raylet_res_to_pb(const raylet_res_t *r, size_t *n)
{
  Rayc__ResourceEntry **e = xcalloc((size_t)r->n, sizeof(*e));
  for (int i = 0; i < r->n; i++) {
    e[i] = xmalloc(sizeof(**e));
    rayc__resource_entry__init(e[i]);
    e[i]->name = xstrdup(r->name[i]);
    e[i]->amount = r->amount[i];
  }
  *n = (size_t)r->n;
  return e;
}

void raylet_res_pb_free(Rayc__ResourceEntry **e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(e[i]->name);
    free(e[i]);
  }
  free(e);
}

int raylet_res_format(const raylet_res_t *r, char *buf, size_t len)
{
  size_t off = 0;
  buf[0] = '\0';
  for (int i = 0; i < r->n && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%s%s=%g", i ? "," : "", r->name[i], r->amount[i]);
  return (int)off;
}

static int res_near(double x, double y)
{
  return x - y <= RES_EPS && y - x <= RES_EPS;
}

int raylet_res_equal(const raylet_res_t *a, const raylet_res_t *b)
{
  for (int i = 0; i < a->n; i++)
    if (!res_near(raylet_res_get(b, a->name[i]), a->amount[i]))
      return 0;
  for (int i = 0; i < b->n; i++)
    if (!res_near(raylet_res_get(a, b->name[i]), b->amount[i]))
      return 0;
  return 1;
}
