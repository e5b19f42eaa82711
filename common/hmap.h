/*
 * A hash map from byte-string keys (ids) to pointers: open chaining, power-of-two buckets, grows at
 * load 1. Not thread-safe: its owner (a loop, or code under one mutex) serializes access.
 */
#ifndef RAYC_COMMON_HMAP_H
#define RAYC_COMMON_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_entry hmap_entry_t;
typedef struct hmap {
  hmap_entry_t **buckets;
  size_t nbuckets, count;
  int words; /* hmap_init_ids: keys hashed 8 bytes at a time */
} hmap_t;

void hmap_init(hmap_t *m);
/* The same map for keys of ids (tens of bytes: object and task ids), hashed 8 bytes at a time
 * (hmap_hash_words) instead of byte by byte: an object id's lookup is ~5x cheaper, and the
 * owner's object table is looked up per ref on every rayc_wait and rayc_get. The iteration order
 * differs from hmap_init's. */
void hmap_init_ids(hmap_t *m);
/* Frees the map's own memory (not the values). */
void hmap_release(hmap_t *m);

/* Returns the value stored under key, or NULL. */
void *hmap_get(const hmap_t *m, const void *key, size_t klen);
/* Stores value under key (the key is copied), replacing and returning any previous value. */
void *hmap_put(hmap_t *m, const void *key, size_t klen, void *value);
/* Removes key and returns its value, or NULL. */
void *hmap_del(hmap_t *m, const void *key, size_t klen);

/* Iteration: for (hmap_iter_t it = hmap_iter(m); hmap_next(&it);) use it.key, it.klen, it.value.
 * The current entry may be deleted during iteration; nothing else may change the map. */
typedef struct hmap_iter {
  const hmap_t *m;
  size_t bucket;
  hmap_entry_t *cur, *next;
  const void *key;
  size_t klen;
  void *value;
} hmap_iter_t;
hmap_iter_t hmap_iter(const hmap_t *m);
int hmap_next(hmap_iter_t *it);

uint64_t hmap_hash(const void *key, size_t len);
/* A word-at-a-time hash of every byte of key (a multiply-rotate per 8 bytes, then a finalizer
 * that spreads them into the low bits the buckets use). */
uint64_t hmap_hash_words(const void *key, size_t len);

#endif
