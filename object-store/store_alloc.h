/*
 * The object store's allocator: hands out ranges of offsets inside the shared-memory region.
 *
 * Design: the allocator never touches the region itself. Its bookkeeping lives in ordinary heap
 * memory, so clients (who can write anywhere in the mapping) cannot corrupt it, and nothing is
 * faulted in before an object is written. Every range starts on a STORE_ALLOC_ALIGN boundary and
 * its length is a multiple of STORE_ALLOC_ALIGN; a request for 0 bytes still takes one unit, so
 * each live object has a distinct offset.
 *
 * Free ranges live in one balanced binary tree (AVL) ordered by offset, where every node also
 * knows the largest free range in its subtree. That gives, in O(log n) for n free ranges:
 *   - allocation by address-ordered first fit: the lowest-addressed free range that is large
 *     enough. Low addresses are the ones used before, so freed (already faulted-in) memory is
 *     reused before fresh memory is touched (first touch costs ~1 GB/s on these machines), and
 *     address-ordered first fit keeps fragmentation low (Wilson et al., "Dynamic Storage
 *     Allocation: A Survey", 1995);
 *   - free with coalescing: the neighbours of a freed range are found by offset and merged, so two
 *     adjacent free ranges never exist.
 * The largest free range is the root's figure, O(1). Single-threaded: the store's loop owns it.
 */
#ifndef RAYC_STORE_ALLOC_H
#define RAYC_STORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

enum { STORE_ALLOC_ALIGN = 64 };

typedef struct store_alloc store_alloc_t;

/* Returns a new allocator over [0, capacity rounded down to STORE_ALLOC_ALIGN). Free with
 * store_alloc_destroy(). */
store_alloc_t *store_alloc_create(uint64_t capacity);

/* Frees the allocator's bookkeeping. Accepts NULL. */
void store_alloc_destroy(store_alloc_t *a);

/* Returns the number of bytes a request of size bytes really takes (rounded up to the alignment,
 * at least one unit), or 0 when that would overflow. */
uint64_t store_alloc_round(uint64_t size);

/* Reserves store_alloc_round(size) bytes at the lowest offset where they fit. On 0, *offset is the
 * start of the range (aligned). Returns RAYC_EOUT_OF_MEMORY when no free range is large enough
 * (nothing changes). O(log n). */
int store_alloc_alloc(store_alloc_t *a, uint64_t size, uint64_t *offset);

/* Returns the range [offset, offset + store_alloc_round(size)) to the free ranges, merging it
 * with free neighbours. size is the same value given to store_alloc_alloc. Returns
 * RAYC_EINVALID_ARGUMENT (and changes nothing) when the range is misaligned, out of bounds, or
 * overlaps a free range (a double free). O(log n). */
int store_alloc_free(store_alloc_t *a, uint64_t offset, uint64_t size);

/* Capacity (after rounding), bytes currently allocated, and the largest free range. */
uint64_t store_alloc_capacity(const store_alloc_t *a);
uint64_t store_alloc_used(const store_alloc_t *a);
uint64_t store_alloc_largest_free(const store_alloc_t *a);

/* Number of separate free ranges (1 when nothing is allocated; 0 when full). For tests and stats. */
size_t store_alloc_free_ranges(const store_alloc_t *a);

/* Checks every invariant of the tree (order, no overlapping or adjacent ranges, alignment, AVL
 * balance, subtree maxima, byte and range counts). Returns 0, or -1 when one is broken. *height
 * (may be NULL) receives the tree's height. For tests: O(n). */
int store_alloc_check(const store_alloc_t *a, int *height);

#endif
