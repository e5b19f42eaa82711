/*
 * cw_copy: the copy of a large object into shared memory, split across a small pool of threads.
 *
 * A put (rayc_put, rayc_put_parts, Python's ray.put), a task result (rayc_return_copy,
 * rayc_return_parts) and a streamed item (rayc_yield_parts) write their bytes into the store's
 * shared mapping with one copy. One core copies ~8-16 GB/s on these VMs; a copy split across
 * cores reaches more of the memory bandwidth (Plasma copies large objects with several threads for
 * the same reason). Objects of at least `min_bytes` are cut into CW_COPY_CHUNK chunks that the
 * caller and the pool's threads claim one at a time (a pool thread that does not get a core in
 * time leaves its share to the caller); smaller ones are copied by the caller alone, as before.
 *
 * Settings, read once from the environment when the core worker starts:
 *   RAYC_PUT_COPY_THREADS    threads per large copy, counting the caller (default 4), capped at
 *                            the cores this process may run on; 1 turns the pool off
 *   RAYC_PUT_COPY_MIN_BYTES  the smallest object copied in parallel (default 8 MiB)
 *   RAYC_PUT_COPY_ZERO_SCAN  0: read every source page, even those the kernel maps to its zero
 *                            page (by default a copy of at least min_bytes writes those as zeros
 *                            without reading them: cw_copy_src.h)
 *
 * Threads: the pool's threads start at the first large copy (a process that never makes one has
 * none), wait on a condition variable between copies, block every signal, and are joined by
 * cw_copy_destroy() (rayc_shutdown). The pool runs one copy at a time: a put made while another
 * thread's copy holds the pool copies on its caller's thread alone, so concurrent puts never wait
 * for each other. The pool has no state shared with cw->mu: a copy runs without the core worker's
 * lock.
 */
#ifndef RAYC_WORKER_CW_COPY_H
#define RAYC_WORKER_CW_COPY_H

#include "rayc.h"

#include <stddef.h>
#include <stdint.h>

enum {
  CW_COPY_THREADS = 4,                 /* default of RAYC_PUT_COPY_THREADS */
  CW_COPY_MAX_THREADS = 64,            /* the most RAYC_PUT_COPY_THREADS accepts */
  CW_COPY_MIN_BYTES = 8 * 1024 * 1024, /* default of RAYC_PUT_COPY_MIN_BYTES */
  CW_COPY_CHUNK = 2 * 1024 * 1024,     /* the unit a thread claims (whole pages: no two threads share a line) */
};

typedef struct cw_copy cw_copy_t;

/* Returns new (no thread started yet); free with cw_copy_destroy(). Reads the settings above;
 * a value that is not a positive number leaves the default. */
cw_copy_t *cw_copy_create(void);

/* Stops and joins the pool's threads and frees cp. NULL is fine. No copy may be running. */
void cw_copy_destroy(cw_copy_t *cp);

/* Writes parts (borrowed; checked by cw_parts_check: in order, inside len) into dst[0, len),
 * zeroing the gaps between them, split across the pool when len >= the threshold. cp NULL: one
 * thread. Returns once every byte is written. */
void cw_copy_parts(cw_copy_t *cp, uint8_t *dst, size_t len, const rayc_part *parts, size_t nparts);

/* cw_copy_parts of one buffer of len bytes (src borrowed). */
void cw_copy_bytes(cw_copy_t *cp, void *dst, const void *src, size_t len);

/* Bytes of sources written as zeros without being read (pages the kernel maps to its zero page)
 * since cp was created; for tests and logs. cp NULL: 0. */
size_t cw_copy_zeroed(const cw_copy_t *cp);

/* The threads a large copy uses (1: no pool) and how many the pool has started so far; for tests
 * and logs. */
int cw_copy_threads(const cw_copy_t *cp, int *started);

#endif
