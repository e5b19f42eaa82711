/*
 * The in-memory GCS store: one hash map (common/hmap.h) over composite keys "<table>\0<key>".
 *
 * Prefix scans and prefix deletes walk every entry (O(entries)); the GCS tables are small and
 * these are rare (KV listing, job cleanup). Point lookups are O(1).
 */
#include "gcs/gcs_store.h"

#include "common/hmap.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct mem_val {
  size_t len;
  uint8_t data[];
} mem_val_t;

typedef struct mem_store {
  gcs_store_t base;
  hmap_t map;
} mem_store_t;

/* A composite key, on the stack for short keys and on the heap for long ones. */
typedef struct mem_key {
  uint8_t small[256];
  uint8_t *p;
  size_t len;
} mem_key_t;

static void mem_key_make(mem_key_t *k, const char *table, const void *key, size_t klen)
{
  size_t tlen = strlen(table) + 1;
  k->len = tlen + klen;
  k->p = k->len <= sizeof(k->small) ? k->small : xmalloc(k->len);
  memcpy(k->p, table, tlen);
  if (klen)
    memcpy(k->p + tlen, key, klen);
}

static void mem_key_release(mem_key_t *k)
{
  if (k->p != k->small)
    free(k->p);
}

static int mem_has_prefix(const hmap_iter_t *it, const mem_key_t *prefix)
{
  return it->klen >= prefix->len && memcmp(it->key, prefix->p, prefix->len) == 0;
}

static int mem_put(gcs_store_t *s, const char *table, const void *key, size_t klen, const void *val, size_t vlen,
                   int overwrite)
{
  mem_store_t *m = (mem_store_t *)s;
  mem_key_t k;
  mem_key_make(&k, table, key, klen);
  int added = hmap_get(&m->map, k.p, k.len) == NULL;
  if (added || overwrite) {
    mem_val_t *v = xmalloc(sizeof(*v) + vlen);
    v->len = vlen;
    if (vlen)
      memcpy(v->data, val, vlen);
    free(hmap_put(&m->map, k.p, k.len, v));
  }
  mem_key_release(&k);
  return added;
}

static int mem_get(gcs_store_t *s, const char *table, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
  mem_store_t *m = (mem_store_t *)s;
  mem_key_t k;
  mem_key_make(&k, table, key, klen);
  const mem_val_t *v = hmap_get(&m->map, k.p, k.len);
  mem_key_release(&k);
  if (!v)
    return 0;
  *val = xmemdup(v->data, v->len);
  *vlen = v->len;
  return 1;
}

static int mem_del(gcs_store_t *s, const char *table, const void *key, size_t klen, int by_prefix)
{
  mem_store_t *m = (mem_store_t *)s;
  mem_key_t k;
  mem_key_make(&k, table, key, klen);
  int deleted = 0;
  if (!by_prefix) {
    mem_val_t *v = hmap_del(&m->map, k.p, k.len);
    deleted = v != NULL;
    free(v);
  }
  for (hmap_iter_t it = hmap_iter(&m->map); by_prefix && hmap_next(&it);) {
    if (!mem_has_prefix(&it, &k))
      continue;
    free(hmap_del(&m->map, it.key, it.klen)); /* deleting the current entry is allowed */
    deleted++;
  }
  mem_key_release(&k);
  return deleted;
}

static int mem_scan(gcs_store_t *s, const char *table, const void *prefix, size_t plen, gcs_store_scan_fn fn, void *arg)
{
  mem_store_t *m = (mem_store_t *)s;
  mem_key_t k;
  mem_key_make(&k, table, prefix, plen);
  size_t tlen = strlen(table) + 1;
  int n = 0;
  for (hmap_iter_t it = hmap_iter(&m->map); hmap_next(&it);) {
    if (!mem_has_prefix(&it, &k))
      continue;
    const mem_val_t *v = it.value;
    fn(arg, (const uint8_t *)it.key + tlen, it.klen - tlen, v->data, v->len);
    n++;
  }
  mem_key_release(&k);
  return n;
}

static void mem_destroy(gcs_store_t *s)
{
  mem_store_t *m = (mem_store_t *)s;
  for (hmap_iter_t it = hmap_iter(&m->map); hmap_next(&it);)
    free(it.value);
  hmap_release(&m->map);
  free(m);
}

static const gcs_store_ops_t mem_ops = {
    .name = "memory",
    .put = mem_put,
    .get = mem_get,
    .del = mem_del,
    .scan = mem_scan,
    .destroy = mem_destroy,
};

gcs_store_t *gcs_store_create_memory(void)
{
  mem_store_t *m = xcalloc(1, sizeof(*m));
  m->base.ops = &mem_ops;
  hmap_init(&m->map);
  return &m->base;
}
