/*
 * cw_copy_src: a large copy that writes zeros for the source pages the kernel maps to its zero
 * page instead of reading them (why, and what it costs, in cw_copy_src.h).
 *
 * A copy is cut into pieces of CW_SRC_PIECE bytes. Each piece asks PAGEMAP_SCAN about its first
 * page (the first wholly inside it): written (or anything but the zero page or nothing): one memcpy; not mapped yet: populate
 * the piece, then scan it; the zero page: scan the piece. A scan asks only for the zero-page
 * ranges and copies around them: memcpy up to a range, memset over it, on to the next.
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

/* What a piece's first page says about the piece. */
typedef enum cw_src_kind { CW_SRC_COPY, CW_SRC_SCAN, CW_SRC_POPULATE } cw_src_kind_t;

int cw_src_open(void)
{
  return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

void cw_src_close(int fd)
{
  if (fd >= 0)
    close(fd);
}

/* PAGEMAP_SCAN of [lo, hi) (page-aligned) into vec: the regions found (< 0: the kernel has no such
 * ioctl or refused), with *walk_end where the walk stopped (hi unless vec filled up). */
static long cw_src_scan(int fd, uintptr_t lo, uintptr_t hi, uint64_t only, cw_scan_region_t *vec, size_t nvec,
                        uintptr_t *walk_end)
{
  cw_scan_arg_t a = {.size = sizeof(a), .start = lo, .end = hi, .vec = (uintptr_t)vec, .vec_len = nvec};
  a.category_mask = only;
  a.return_mask = CW_PAGE_IS_PRESENT | CW_PAGE_IS_PFNZERO;
  long n = ioctl(fd, CW_PAGEMAP_SCAN, &a);
  *walk_end = (uintptr_t)a.walk_end;
  return n;
}

static cw_src_kind_t cw_src_first(int fd, uintptr_t page_lo, size_t page)
{
  cw_scan_region_t r;
  uintptr_t walk_end;
  if (cw_src_scan(fd, page_lo, page_lo + page, 0, &r, 1, &walk_end) != 1)
    return CW_SRC_COPY; /* no ioctl, or a mapping the scan skips (device memory): plain copy */
  if (r.categories & CW_PAGE_IS_PFNZERO)
    return CW_SRC_SCAN;
  return r.categories & CW_PAGE_IS_PRESENT ? CW_SRC_COPY : CW_SRC_POPULATE;
}

/* Copies src[0, n) to dst, memset over the zero-page ranges [lo, hi) (page-aligned, covering src)
 * reports; returns the bytes memset. Stops scanning on an error and copies the rest. */
static size_t cw_src_scan_copy(int fd, uint8_t *dst, const uint8_t *src, size_t n, uintptr_t lo, uintptr_t hi)
{
  uintptr_t at = (uintptr_t)src, end = at + n; /* src is copied up to at */
  size_t zeroed = 0;
  cw_scan_region_t vec[CW_SCAN_REGIONS];
  while (lo < hi) {
    uintptr_t walk_end = hi;
    long got = cw_src_scan(fd, lo, hi, CW_PAGE_IS_PFNZERO, vec, CW_SCAN_REGIONS, &walk_end);
    for (long i = 0; i < got; i++) {
      uintptr_t zlo = vec[i].start > at ? vec[i].start : at, zhi = vec[i].end < end ? vec[i].end : end;
      if (zlo >= zhi)
        continue;
      memcpy(dst + (at - (uintptr_t)src), (const void *)at, zlo - at);
      memset(dst + (zlo - (uintptr_t)src), 0, zhi - zlo);
      zeroed += zhi - zlo;
      at = zhi;
    }
    if (got < 0 || walk_end <= lo || walk_end > hi)
      break;
    lo = walk_end;
  }
  memcpy(dst + (at - (uintptr_t)src), (const void *)at, end - at);
  return zeroed;
}

static size_t cw_src_piece(int fd, uint8_t *dst, const uint8_t *src, size_t n, size_t page)
{
  uintptr_t lo = (uintptr_t)src & ~(uintptr_t)(page - 1);
  uintptr_t hi = ((uintptr_t)src + n + page - 1) & ~(uintptr_t)(page - 1);
  /* the first page wholly inside the piece: the page it shares with the piece before it may have
   * been populated by that piece, and would say nothing about this one */
  uintptr_t first = ((uintptr_t)src + page - 1) & ~(uintptr_t)(page - 1);
  switch (cw_src_first(fd, first + page <= hi ? first : lo, page)) {
  case CW_SRC_POPULATE:
    /* one call maps what memcpy would fault in page by page; on an error (no such advice, memory
     * it cannot populate) memcpy's own faults decide, as before */
    madvise((void *)lo, hi - lo, MADV_POPULATE_READ);
    return cw_src_scan_copy(fd, dst, src, n, lo, hi);
  case CW_SRC_SCAN:
    return cw_src_scan_copy(fd, dst, src, n, lo, hi);
  case CW_SRC_COPY:
    break;
  }
  memcpy(dst, src, n);
  return 0;
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
