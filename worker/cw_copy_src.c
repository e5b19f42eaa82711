/*
 * cw_copy_src: a large copy that writes zeros for the source pages the kernel maps to its zero
 * page instead of reading them (why, and what it costs, in cw_copy_src.h).
 *
 * A copy is cut into pieces of CW_SRC_PIECE bytes. A piece whose first whole page starts with a
 * non-zero byte is one memcpy. Any other is scanned: PAGEMAP_SCAN lists its pages as ranges that
 * are the zero page, written, or not mapped; the copy goes memcpy up to a zero range, memset over
 * it, on to the next; the first range not mapped is populated (with the rest of the piece) and
 * scanned again.
 */
#include "worker/cw_copy_src.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* PAGEMAP_SCAN's ABI (uapi linux/fs.h since Linux 6.7), spelled out under our own names because
 * the build machines' kernel headers (Debian 12: 6.1) predate it. */
typedef struct cw_scan_region {
  uint64_t start, end, categories;
} cw_scan_region_t;

typedef struct cw_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
} cw_scan_arg_t;

#define CW_PAGEMAP_SCAN _IOWR('f', 16, cw_scan_arg_t)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

enum {
  CW_PAGE_IS_PRESENT = 1 << 3,
  CW_PAGE_IS_PFNZERO = 1 << 5,
  CW_SCAN_REGIONS = 32, /* zero ranges asked for per ioctl (a scan continues where it stopped) */
};

int cw_src_open(void)
{
  return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

void cw_src_close(int fd)
{
  if (fd >= 0)
    close(fd);
}

/* PAGEMAP_SCAN of [lo, hi) (page-aligned) into vec: the regions found, each page's PRESENT and
 * PFNZERO bits (< 0: the kernel has no such ioctl or refused; 0: nothing there it walks), with
 * *walk_end where the walk stopped (hi unless vec filled up). */
static long cw_src_scan(int fd, uintptr_t lo, uintptr_t hi, cw_scan_region_t *vec, size_t nvec, uintptr_t *walk_end)
{
  cw_scan_arg_t a = {.size = sizeof(a), .start = lo, .end = hi, .vec = (uintptr_t)vec, .vec_len = nvec};
  a.return_mask = CW_PAGE_IS_PRESENT | CW_PAGE_IS_PFNZERO;
  long n = ioctl(fd, CW_PAGEMAP_SCAN, &a);
  *walk_end = (uintptr_t)a.walk_end;
  return n;
}

/* Copies src[0, n) to dst, with memset over the zero-page ranges that a scan of [lo, hi)
 * (page-aligned, covering src) reports; returns the bytes memset. The first range found not
 * mapped (never touched, or swapped out) has it and the rest of the piece populated once, and the
 * scan goes on from there. On an error the rest is copied. */
static size_t cw_src_scan_copy(int fd, uint8_t *dst, const uint8_t *src, size_t n, uintptr_t lo, uintptr_t hi)
{
  uintptr_t at = (uintptr_t)src, end = at + n; /* src is copied up to at */
  size_t zeroed = 0;
  int populated = 0;
  cw_scan_region_t vec[CW_SCAN_REGIONS];
  while (lo < hi) {
    uintptr_t walk_end = hi;
    long got = cw_src_scan(fd, lo, hi, vec, CW_SCAN_REGIONS, &walk_end), i;
    for (i = 0; i < got; i++) {
      if (!(vec[i].categories & CW_PAGE_IS_PRESENT) && !populated)
        break;
      uintptr_t zlo = vec[i].start > at ? vec[i].start : at, zhi = vec[i].end < end ? vec[i].end : end;
      if (!(vec[i].categories & CW_PAGE_IS_PFNZERO) || zlo >= zhi)
        continue; /* written (or still not mapped): copied with the next range or at the end */
      memcpy(dst + (at - (uintptr_t)src), (const void *)at, zlo - at);
      memset(dst + (zlo - (uintptr_t)src), 0, zhi - zlo);
      zeroed += zhi - zlo;
      at = zhi;
    }
    if (i < got) {
      /* one call maps what memcpy would fault in page by page; if it fails (memory it cannot
       * populate), memcpy's own faults decide, as before */
      populated = 1;
      madvise((void *)(uintptr_t)vec[i].start, hi - (uintptr_t)vec[i].start, MADV_POPULATE_READ);
      lo = (uintptr_t)vec[i].start;
      continue;
    }
    if (got <= 0 || walk_end <= lo || walk_end > hi)
      break;
    lo = walk_end;
  }
  memcpy(dst + (at - (uintptr_t)src), (const void *)at, end - at);
  return zeroed;
}

/* Whether the 64 bytes at p (8-byte aligned) hold anything but zeros. */
static int cw_src_written(const uint8_t *p)
{
  const uint64_t *w = (const uint64_t *)(const void *)p;
  uint64_t any = 0;
  for (int i = 0; i < 8; i++)
    any |= w[i];
  return any != 0;
}

static size_t cw_src_piece(int fd, uint8_t *dst, const uint8_t *src, size_t n, size_t page)
{
  uintptr_t lo = (uintptr_t)src & ~(uintptr_t)(page - 1);
  uintptr_t hi = ((uintptr_t)src + n + page - 1) & ~(uintptr_t)(page - 1);
  /* a non-zero byte in the piece's first whole page proves that page written: most sources
   * (anything but zeros) are copied without a syscall. The zero page reads as zeros, and so does a
   * page never touched (the read maps it to the zero page; the scan populates the rest). */
  uintptr_t first = ((uintptr_t)src + page - 1) & ~(uintptr_t)(page - 1);
  if (n < CW_SRC_MIN || cw_src_written((const uint8_t *)first)) {
    memcpy(dst, src, n);
    return 0;
  }
  return cw_src_scan_copy(fd, dst, src, n, lo, hi);
}

size_t cw_src_copy(int fd, uint8_t *dst, const uint8_t *src, size_t n)
{
  if (fd < 0 || n < CW_SRC_MIN) {
    memcpy(dst, src, n);
    return 0;
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE), zeroed = 0;
  for (size_t off = 0; off < n; off += CW_SRC_PIECE) {
    size_t len = n - off < CW_SRC_PIECE ? n - off : CW_SRC_PIECE;
    zeroed += cw_src_piece(fd, dst + off, src + off, len, page);
  }
  return zeroed;
}
