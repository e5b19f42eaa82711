/* Allocation wrappers, clocks and path helpers. */
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
  fprintf(stderr, "rayc: out of memory allocating %zu bytes\n", n);
  abort();
}

void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    oom(n);
  return p;
}

void *xcalloc(size_t count, size_t size)
{
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p)
    oom(count * size);
  return p;
}

void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom(n);
  return q;
}

char *xstrdup(const char *s)
{
  return xmemdup(s, strlen(s) + 1);
}

void *xmemdup(const void *p, size_t n)
{
  void *q = xmalloc(n);
  if (n)
    memcpy(q, p, n);
  return q;
}

char *xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    oom(0);
  return s;
}

int64_t now_ms(void)
{
  return now_us() / 1000;
}

int64_t now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec realtime_deadline_ms(int64_t ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  return ts;
}

int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mkdir_p(const char *path, unsigned mode)
{
  char *p = xstrdup(path);
  int rc = 0;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0')
      continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, mode) != 0 && errno != EEXIST) {
      rc = -errno;
      break;
    }
    *s = c;
    if (c == '\0')
      break;
  }
  free(p);
  return rc;
}

int write_file_atomic(const char *path, const void *data, size_t len)
{
  char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  unlink(tmp);
  int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  ssize_t n = fd < 0 ? -1 : write(fd, data, len);
  if (fd < 0 || fchmod(fd, 0600) != 0 || n != (ssize_t)len)
    rc = errno ? -errno : -EIO;
  if (fd >= 0 && close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc < 0)
    unlink(tmp);
  free(tmp);
  return rc;
}

int read_meminfo(int64_t *total, int64_t *avail)
{
  char line[256];
  long long kb;
  *total = *avail = -1;
  FILE *f = fopen("/proc/meminfo", "r");
  while (f && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
      *total = kb * 1024;
    else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
      *avail = kb * 1024;
  }
  if (f)
    fclose(f);
  if (*total > 0 && *avail >= 0)
    return 0;
  *total = *avail = -1;
  return -1;
}

int hostport_split(const char *addr, char *host, size_t cap, int *port)
{
  const char *colon = addr ? strrchr(addr, ':') : NULL;
  size_t hl = colon ? (size_t)(colon - addr) : 0;
  int br = hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']';
  char *end = NULL;
  long p = colon ? strtol(colon + 1, &end, 10) : 0;
  if (!colon || hl == 2 * (size_t)br || hl - 2 * (size_t)br >= cap || end == colon + 1 || *end || p <= 0 || p > 65535)
    return -1;
  memcpy(host, addr + br, hl - 2 * (size_t)br);
  host[hl - 2 * (size_t)br] = '\0';
  *port = (int)p;
  return 0;
}
