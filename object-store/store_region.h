/*
 * The store's one shared-memory region: a memfd of the store's capacity, mapped MAP_SHARED once
 * by the daemon and once by every client (which receive the fd over SCM_RIGHTS).
 *
 * Nothing is pre-faulted: a page costs memory only once an object is written there, and first
 * touch of fresh memory is slow on these machines, so the allocator reuses freed ranges first.
 */
#ifndef RAYC_STORE_REGION_H
#define RAYC_STORE_REGION_H

#include <stdint.h>

typedef struct store_region {
  int fd;        /* the memfd (owned), or -1 */
  uint8_t *base; /* the daemon's mapping */
  uint64_t size;
} store_region_t;

/* Creates a region of size bytes (size > 0). Returns 0, or a negative errno with r left empty. */
int store_region_init(store_region_t *r, uint64_t size);

/* Unmaps and closes the region. Accepts an empty or already released region. */
void store_region_release(store_region_t *r);

/* Faults in [offset, offset + len) of the daemon's mapping for writing, without changing its
 * bytes (MADV_POPULATE_WRITE), so that a copy into it later runs at warm-memory speed. Blocking
 * (about 1 GB/s): call it on an I/O thread, for a range about to be written (a pull's local copy).
 * Returns 0 or a negative errno (EINVAL on kernels before 5.14: harmless). */
int store_region_populate(const store_region_t *r, uint64_t offset, uint64_t len);

#endif
