/* The store's shared-memory region: memfd_create + ftruncate + one lazy MAP_SHARED mapping. */
#include "object-store/store_region.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int store_region_init(store_region_t *r, uint64_t size)
{
  int rc = 0;
  r->fd = -1;
  r->base = NULL;
  r->size = 0;
  int fd = memfd_create("rayc-store", MFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (ftruncate(fd, (off_t)size) < 0) {
    rc = -errno;
    goto out;
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    rc = -errno;
    goto out;
  }
  r->fd = fd;
  r->base = p;
  r->size = size;
  return 0;
out:
  close(fd);
  return rc;
}

void store_region_release(store_region_t *r)
{
  if (r->base)
    munmap(r->base, r->size);
  if (r->fd >= 0)
    close(r->fd);
  r->base = NULL;
  r->fd = -1;
  r->size = 0;
}

int store_region_populate(const store_region_t *r, uint64_t offset, uint64_t len)
{
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = offset & ~(page - 1), end = offset + len;
  if (end > r->size || end < offset)
    return -EINVAL;
  end = (end + page - 1) & ~(page - 1);
  if (end > r->size)
    end = r->size;
  if (end > start && madvise(r->base + start, end - start, MADV_POPULATE_WRITE) < 0)
    return -errno;
  return 0;
}
