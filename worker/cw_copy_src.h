/*
 * cw_copy_src: a large copy's source pages that the kernel maps to its zero page are written as
 * zeros without being read.
 *
 * Why: an untouched page of a private anonymous mapping (numpy's np.zeros, calloc of a large
 * block) reads as zeros because the kernel maps it, read-only, to its one shared zero page, 4 KiB
 * at a time (2 MiB when transparent huge pages apply). Reading 800 MB of such a source reads one
 * physical page through 200,000 different addresses; on the AMD EPYC VMs rayc is measured on that
 * reads at ~6 GB/s against ~16 GB/s for written memory (docs/PERFORMANCE.md, "Put from untouched
 * pages"), so `ray.put(np.zeros(...))` copied at a third of the speed of `np.ones`. The kernel
 * says which pages those are: the PAGEMAP_SCAN ioctl on /proc/self/pagemap (Linux 6.7) reports a
 * range's pages whose page table entry holds the zero page's frame (PAGE_IS_PFNZERO, for the 4 KiB
 * zero page and the huge one). Such a page holds zeros by construction, whatever the mapping
 * (anonymous, a file's hole, a KSM-merged page), so writing zeros there copies exactly the bytes
 * the source holds; every other page (written, file-backed, shared, swapped, device memory the scan
 * skips) is copied with memcpy as before. Without the ioctl (older kernels, no /proc) everything
 * is memcpy.
 *
 * Cost for sources without zero pages: none that can be measured. A copy is cut into pieces of
 * CW_SRC_PIECE bytes, and a piece whose first whole page holds a non-zero byte in its first 64
 * bytes is one memcpy, as before (a non-zero byte proves the page written). Only a piece that
 * starts with zeros is scanned (one ioctl per 2 MiB, ~3 us); a range of it that is not mapped yet
 * (a fresh np.zeros never read) is populated first with MADV_POPULATE_READ (Linux 5.14): one call
 * maps what the copy's reads would have faulted in one page at a time. Zero pages in a piece that
 * starts with a written page are copied with memcpy (correct, just not faster).
 *
 * A source that another thread writes while it is being put has no defined content in the put
 * (as with memcpy); a page written after the scan saw it as the zero page arrives as zeros, as if
 * the copy had read it before the write.
 */
#ifndef RAYC_WORKER_CW_COPY_SRC_H
#define RAYC_WORKER_CW_COPY_SRC_H

#include <stddef.h>
#include <stdint.h>

enum {
  CW_SRC_PIECE = 2 * 1024 * 1024, /* the unit whose first page decides whether it is scanned */
  CW_SRC_MIN = 64 * 1024,         /* shorter copies are one memcpy (a syscall costs more) */
};

/* Returns a descriptor of this process's page map for cw_src_copy(), or -1 when there is none
 * (no /proc). Open it per copy, not once per process: a pagemap descriptor keeps the address space
 * of the process that opened it, and a forked child would scan its parent's pages. Close with
 * cw_src_close(). */
int cw_src_open(void);

/* Closes fd (from cw_src_open; -1 is fine). */
void cw_src_close(int fd);

/* Copies n bytes from src (borrowed) to dst, as memcpy does, except that the bytes of source
 * pages the kernel maps to its zero page are written as zeros without being read. fd from
 * cw_src_open (-1: plain memcpy). Returns how many bytes were written that way (for tests and
 * logs; 0 when the kernel cannot tell). */
size_t cw_src_copy(int fd, uint8_t *dst, const uint8_t *src, size_t n);

#endif
