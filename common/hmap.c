/* Chained hash map keyed by byte strings (FNV-1a, or 8 bytes at a time for ids). */
#include "common/hmap.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

struct hmap_entry {
  hmap_entry_t *next;
  uint64_t hash;
  void *value;
  size_t klen;
  uint8_t key[];
};

uint64_t hmap_hash(const void *key, size_t len)
{
  const uint8_t *p = key;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h ^ (h >> 29);
}

uint64_t hmap_hash_words(const void *key, size_t len)
{
  const uint8_t *p = key;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
  for (; len >= 8; p += 8, len -= 8) {
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h = (h << 31) | (h >> 33);
  }
  if (len) {
    w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
  }
  h ^= h >> 33; /* murmur3's fmix64 */
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 33);
}

static uint64_t hmap_key_hash(const hmap_t *m, const void *key, size_t len)
{
  return m->words ? hmap_hash_words(key, len) : hmap_hash(key, len);
}

void hmap_init(hmap_t *m)
{
  m->nbuckets = 16;
  m->count = 0;
  m->words = 0;
  m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
}

void hmap_init_ids(hmap_t *m)
{
  hmap_init(m);
  m->words = 1;
}

void hmap_release(hmap_t *m)
{
  if (!m->buckets)
    return;
  for (size_t i = 0; i < m->nbuckets; i++) {
    hmap_entry_t *e = m->buckets[i];
    while (e) {
      hmap_entry_t *n = e->next;
      free(e);
      e = n;
    }
  }
  free(m->buckets);
  m->buckets = NULL;
  m->count = 0;
}

static hmap_entry_t **hmap_slot(const hmap_t *m, const void *key, size_t klen, uint64_t h)
{
  hmap_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
  for (; *pp; pp = &(*pp)->next)
    if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
      break;
  return pp;
}

static void hmap_grow(hmap_t *m)
{
  size_t n = m->nbuckets * 2;
  hmap_entry_t **b = xcalloc(n, sizeof(*b));
  for (size_t i = 0; i < m->nbuckets; i++) {
    hmap_entry_t *e = m->buckets[i];
    while (e) {
      hmap_entry_t *next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
}

void *hmap_get(const hmap_t *m, const void *key, size_t klen)
{
  hmap_entry_t *e = *hmap_slot(m, key, klen, hmap_key_hash(m, key, klen));
  return e ? e->value : NULL;
}

void *hmap_put(hmap_t *m, const void *key, size_t klen, void *value)
{
  uint64_t h = hmap_key_hash(m, key, klen);
  hmap_entry_t **pp = hmap_slot(m, key, klen, h);
  if (*pp) {
    void *old = (*pp)->value;
    (*pp)->value = value;
    return old;
  }
  hmap_entry_t *e = xmalloc(sizeof(*e) + klen);
  e->next = NULL;
  e->hash = h;
  e->value = value;
  e->klen = klen;
  memcpy(e->key, key, klen);
  *pp = e;
  if (++m->count > m->nbuckets)
    hmap_grow(m);
  return NULL;
}

void *hmap_del(hmap_t *m, const void *key, size_t klen)
{
  hmap_entry_t **pp = hmap_slot(m, key, klen, hmap_key_hash(m, key, klen));
  hmap_entry_t *e = *pp;
  if (!e)
    return NULL;
  void *v = e->value;
  *pp = e->next;
  free(e);
  m->count--;
  return v;
}

hmap_iter_t hmap_iter(const hmap_t *m)
{
  hmap_iter_t it = {.m = m, .bucket = 0, .cur = NULL, .next = m->buckets ? m->buckets[0] : NULL};
  return it;
}

int hmap_next(hmap_iter_t *it)
{
  while (!it->next) {
    if (!it->m->buckets || ++it->bucket >= it->m->nbuckets)
      return 0;
    it->next = it->m->buckets[it->bucket];
  }
  it->cur = it->next;
  it->next = it->cur->next;
  it->key = it->cur->key;
  it->klen = it->cur->klen;
  it->value = it->cur->value;
  return 1;
}
