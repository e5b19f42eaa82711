/*
 * First-fit allocator over offsets, with a free list sorted by offset and coalescing on free.
 * See store_alloc.h for the design; invariants kept here:
 *   - free ranges are disjoint, sorted by offset, and never adjacent (they would have merged);
 *   - every range's offset and length are multiples of STORE_ALLOC_ALIGN;
 *   - used + sum(free lengths) == capacity.
 */
#include "object-store/store_alloc.h"

#include <stdlib.h>

#include "common/status.h"
#include "common/util.h"

typedef struct store_free_range {
  uint64_t offset, len;
  struct store_free_range *prev, *next;
} store_free_range_t;

struct store_alloc {
  uint64_t capacity, used;
  size_t nranges;
  store_free_range_t *head; /* lowest offset first */
};

static store_free_range_t *range_new(uint64_t offset, uint64_t len)
{
  store_free_range_t *r = xcalloc(1, sizeof(*r));
  r->offset = offset;
  r->len = len;
  return r;
}

store_alloc_t *store_alloc_create(uint64_t capacity)
{
  store_alloc_t *a = xcalloc(1, sizeof(*a));
  a->capacity = capacity - capacity % STORE_ALLOC_ALIGN;
  if (a->capacity > 0) {
    a->head = range_new(0, a->capacity);
    a->nranges = 1;
  }
  return a;
}

void store_alloc_destroy(store_alloc_t *a)
{
  if (!a)
    return;
  store_free_range_t *r = a->head;
  while (r) {
    store_free_range_t *next = r->next;
    free(r);
    r = next;
  }
  free(a);
}

uint64_t store_alloc_round(uint64_t size)
{
  if (size == 0)
    return STORE_ALLOC_ALIGN;
  if (size > UINT64_MAX - (STORE_ALLOC_ALIGN - 1))
    return 0;
  return (size + STORE_ALLOC_ALIGN - 1) & ~(uint64_t)(STORE_ALLOC_ALIGN - 1);
}

static void range_unlink(store_alloc_t *a, store_free_range_t *r)
{
  if (r->prev)
    r->prev->next = r->next;
  else
    a->head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  a->nranges--;
  free(r);
}

int store_alloc_alloc(store_alloc_t *a, uint64_t size, uint64_t *offset)
{
  uint64_t len = store_alloc_round(size);
  if (len == 0)
    return RAYC_EOUT_OF_MEMORY;
  for (store_free_range_t *r = a->head; r; r = r->next) {
    if (r->len < len)
      continue;
    *offset = r->offset;
    r->offset += len;
    r->len -= len;
    if (r->len == 0)
      range_unlink(a, r);
    a->used += len;
    return 0;
  }
  return RAYC_EOUT_OF_MEMORY;
}

/* Links a new range [offset, offset+len) between prev and next (either may be NULL). */
static void range_insert(store_alloc_t *a, store_free_range_t *prev, store_free_range_t *next,
                         uint64_t offset, uint64_t len)
{
  store_free_range_t *r = range_new(offset, len);
  r->prev = prev;
  r->next = next;
  if (prev)
    prev->next = r;
  else
    a->head = r;
  if (next)
    next->prev = r;
  a->nranges++;
}

/* Puts a validated range back, merging it with the free neighbours it touches. */
static void range_give_back(store_alloc_t *a, store_free_range_t *prev, store_free_range_t *next,
                            uint64_t offset, uint64_t len)
{
  int join_prev = prev && prev->offset + prev->len == offset;
  int join_next = next && offset + len == next->offset;
  if (join_prev && join_next) {
    prev->len += len + next->len;
    range_unlink(a, next);
  } else if (join_prev) {
    prev->len += len;
  } else if (join_next) {
    next->offset = offset;
    next->len += len;
  } else {
    range_insert(a, prev, next, offset, len);
  }
}

int store_alloc_free(store_alloc_t *a, uint64_t offset, uint64_t size)
{
  uint64_t len = store_alloc_round(size);
  if (len == 0 || offset % STORE_ALLOC_ALIGN || offset > a->capacity || len > a->capacity - offset ||
      len > a->used)
    return RAYC_EINVALID_ARGUMENT;
  store_free_range_t *prev = NULL, *next = a->head;
  while (next && next->offset < offset) {
    prev = next;
    next = next->next;
  }
  if (prev && prev->offset + prev->len > offset)
    return RAYC_EINVALID_ARGUMENT;
  if (next && offset + len > next->offset)
    return RAYC_EINVALID_ARGUMENT;
  range_give_back(a, prev, next, offset, len);
  a->used -= len;
  return 0;
}

uint64_t store_alloc_capacity(const store_alloc_t *a)
{
  return a->capacity;
}

uint64_t store_alloc_used(const store_alloc_t *a)
{
  return a->used;
}

uint64_t store_alloc_largest_free(const store_alloc_t *a)
{
  uint64_t best = 0;
  for (const store_free_range_t *r = a->head; r; r = r->next)
    if (r->len > best)
      best = r->len;
  return best;
}

size_t store_alloc_free_ranges(const store_alloc_t *a)
{
  return a->nranges;
}
