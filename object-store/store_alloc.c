/*
 * Address-ordered first-fit allocator over offsets: free ranges in an AVL tree keyed by offset,
 * each node carrying the largest free length in its subtree (see store_alloc.h). Invariants:
 *   - free ranges are disjoint and never adjacent (they would have merged);
 *   - every range's offset and length are multiples of STORE_ALLOC_ALIGN, length > 0;
 *   - node->max = max(node->len, left->max, right->max); AVL heights differ by at most one;
 *   - used + sum(free lengths) == capacity.
 * Every operation walks one or two root-to-leaf paths and re-fixes the nodes on the way back up,
 * so each is O(log n). The functions are recursive; the depth is at most ~1.44 log2(n).
 */
#include "object-store/store_alloc.h"

#include <stdlib.h>

#include "common/status.h"
#include "common/util.h"

typedef struct store_free_node {
  uint64_t offset, len;
  uint64_t max; /* largest len in this subtree */
  int height;
  struct store_free_node *left, *right;
} node_t;

struct store_alloc {
  uint64_t capacity, used;
  size_t nranges;
  node_t *root;
};

static int node_height(const node_t *n)
{
  return n ? n->height : 0;
}

static uint64_t node_max(const node_t *n)
{
  return n ? n->max : 0;
}

/* Recomputes n's height and subtree maximum from its children. */
static void node_fix(node_t *n)
{
  int hl = node_height(n->left), hr = node_height(n->right);
  uint64_t ml = node_max(n->left), mr = node_max(n->right);
  n->height = 1 + (hl > hr ? hl : hr);
  n->max = n->len;
  if (ml > n->max)
    n->max = ml;
  if (mr > n->max)
    n->max = mr;
}

static node_t *rotate_right(node_t *n)
{
  node_t *l = n->left;
  n->left = l->right;
  l->right = n;
  node_fix(n);
  node_fix(l);
  return l;
}

static node_t *rotate_left(node_t *n)
{
  node_t *r = n->right;
  n->right = r->left;
  r->left = n;
  node_fix(n);
  node_fix(r);
  return r;
}

/* Fixes n after one of its subtrees changed height by at most one; returns the subtree's root. */
static node_t *balance(node_t *n)
{
  node_fix(n);
  int bf = node_height(n->left) - node_height(n->right);
  if (bf > 1) {
    if (node_height(n->left->left) < node_height(n->left->right))
      n->left = rotate_left(n->left);
    return rotate_right(n);
  }
  if (bf < -1) {
    if (node_height(n->right->right) < node_height(n->right->left))
      n->right = rotate_right(n->right);
    return rotate_left(n);
  }
  return n;
}

static node_t *node_new(uint64_t offset, uint64_t len)
{
  node_t *n = xcalloc(1, sizeof(*n));
  n->offset = offset;
  n->len = len;
  n->max = len;
  n->height = 1;
  return n;
}

static node_t *tree_insert(node_t *n, node_t *x)
{
  if (!n)
    return x;
  if (x->offset < n->offset)
    n->left = tree_insert(n->left, x);
  else
    n->right = tree_insert(n->right, x);
  return balance(n);
}

/* Unlinks the leftmost node of n's subtree into *min; returns the subtree's new root. */
static node_t *tree_take_min(node_t *n, node_t **min)
{
  if (!n->left) {
    *min = n;
    return n->right;
  }
  n->left = tree_take_min(n->left, min);
  return balance(n);
}

/* Frees n, the root of a subtree, and returns the subtree rebuilt without it. */
static node_t *node_delete(node_t *n)
{
  node_t *l = n->left, *r = n->right, *m;
  free(n);
  if (!l)
    return r;
  if (!r)
    return l;
  r = tree_take_min(r, &m);
  m->left = l;
  m->right = r;
  return balance(m);
}

static node_t *tree_delete(node_t *n, uint64_t offset)
{
  if (n->offset == offset)
    return node_delete(n);
  if (offset < n->offset)
    n->left = tree_delete(n->left, offset);
  else
    n->right = tree_delete(n->right, offset);
  return balance(n);
}

/* Moves the node at offset to [new_offset, new_offset + len): the caller guarantees the order of
 * nodes stays the same. */
static node_t *tree_update(node_t *n, uint64_t offset, uint64_t new_offset, uint64_t len)
{
  if (n->offset == offset) {
    n->offset = new_offset;
    n->len = len;
  } else if (offset < n->offset) {
    n->left = tree_update(n->left, offset, new_offset, len);
  } else {
    n->right = tree_update(n->right, offset, new_offset, len);
  }
  node_fix(n);
  return n;
}

/* Takes len bytes from the front of the lowest-addressed node of at least len bytes (the caller
 * checked n->max >= len); *offset receives where. */
static node_t *tree_take(store_alloc_t *a, node_t *n, uint64_t len, uint64_t *offset)
{
  if (node_max(n->left) >= len) {
    n->left = tree_take(a, n->left, len, offset);
  } else if (n->len >= len) {
    *offset = n->offset;
    n->offset += len;
    n->len -= len;
    if (n->len == 0) {
      a->nranges--;
      return node_delete(n);
    }
  } else {
    n->right = tree_take(a, n->right, len, offset);
  }
  return balance(n);
}

store_alloc_t *store_alloc_create(uint64_t capacity)
{
  store_alloc_t *a = xcalloc(1, sizeof(*a));
  a->capacity = capacity - capacity % STORE_ALLOC_ALIGN;
  if (a->capacity > 0) {
    a->root = node_new(0, a->capacity);
    a->nranges = 1;
  }
  return a;
}

static void tree_free(node_t *n)
{
  if (!n)
    return;
  tree_free(n->left);
  tree_free(n->right);
  free(n);
}

void store_alloc_destroy(store_alloc_t *a)
{
  if (!a)
    return;
  tree_free(a->root);
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

int store_alloc_alloc(store_alloc_t *a, uint64_t size, uint64_t *offset)
{
  uint64_t len = store_alloc_round(size);
  if (len == 0 || node_max(a->root) < len)
    return RAYC_EOUT_OF_MEMORY;
  a->root = tree_take(a, a->root, len, offset);
  a->used += len;
  return 0;
}

/* The free ranges just below and just above offset (NULL when none). */
static void tree_neighbours(const store_alloc_t *a, uint64_t offset, node_t **prev, node_t **next)
{
  *prev = *next = NULL;
  for (node_t *n = a->root; n;) {
    if (n->offset < offset) {
      *prev = n;
      n = n->right;
    } else {
      *next = n;
      n = n->left;
    }
  }
}

/* Puts a validated range back, merging it with the free neighbours it touches. */
static void range_give_back(store_alloc_t *a, node_t *prev, node_t *next, uint64_t offset, uint64_t len)
{
  int join_prev = prev && prev->offset + prev->len == offset;
  int join_next = next && offset + len == next->offset;
  if (join_prev && join_next) {
    uint64_t merged = prev->len + len + next->len, poff = prev->offset;
    a->root = tree_delete(a->root, next->offset);
    a->root = tree_update(a->root, poff, poff, merged);
    a->nranges--;
  } else if (join_prev) {
    a->root = tree_update(a->root, prev->offset, prev->offset, prev->len + len);
  } else if (join_next) {
    a->root = tree_update(a->root, next->offset, offset, next->len + len);
  } else {
    a->root = tree_insert(a->root, node_new(offset, len));
    a->nranges++;
  }
}

int store_alloc_free(store_alloc_t *a, uint64_t offset, uint64_t size)
{
  uint64_t len = store_alloc_round(size);
  if (len == 0 || offset % STORE_ALLOC_ALIGN || offset > a->capacity || len > a->capacity - offset || len > a->used)
    return RAYC_EINVALID_ARGUMENT;
  node_t *prev, *next;
  tree_neighbours(a, offset, &prev, &next);
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
  return node_max(a->root);
}

size_t store_alloc_free_ranges(const store_alloc_t *a)
{
  return a->nranges;
}

typedef struct check_state {
  uint64_t free_bytes;
  size_t count;
  uint64_t last_end; /* end of the previous range in order; UINT64_MAX before the first */
  int bad;
} check_state_t;

/* In-order walk checking one node at a time; returns the subtree's height. */
static int check_node(const node_t *n, check_state_t *st)
{
  if (!n)
    return 0;
  int hl = check_node(n->left, st);
  if (n->len == 0 || n->offset % STORE_ALLOC_ALIGN || n->len % STORE_ALLOC_ALIGN)
    st->bad = 1;
  if (st->last_end != UINT64_MAX && n->offset <= st->last_end)
    st->bad = 1; /* overlapping, out of order, or adjacent (should have merged) */
  st->last_end = n->offset + n->len;
  st->free_bytes += n->len;
  st->count++;
  int hr = check_node(n->right, st);
  uint64_t m = n->len;
  if (node_max(n->left) > m)
    m = node_max(n->left);
  if (node_max(n->right) > m)
    m = node_max(n->right);
  if (m != n->max || n->height != 1 + (hl > hr ? hl : hr) || hl - hr > 1 || hr - hl > 1)
    st->bad = 1;
  return n->height;
}

int store_alloc_check(const store_alloc_t *a, int *height)
{
  check_state_t st = {.last_end = UINT64_MAX};
  int h = check_node(a->root, &st);
  if (height)
    *height = h;
  if (st.last_end != UINT64_MAX && st.last_end > a->capacity)
    st.bad = 1;
  if (st.count != a->nranges || st.free_bytes + a->used != a->capacity)
    st.bad = 1;
  return st.bad ? -1 : 0;
}
