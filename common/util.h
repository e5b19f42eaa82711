/*
 * Small helpers every part uses: allocation that aborts on failure (so call sites stay clean),
 * clocks, and string helpers.
 */
#ifndef RAYC_COMMON_UTIL_H
#define RAYC_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_LEN(a)                    (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Allocation wrappers: never return NULL; abort with a message when memory is exhausted. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t n);
/* Returns a new string formatted like printf; free with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic time in milliseconds / microseconds, and wall-clock milliseconds since the epoch. */
int64_t now_ms(void);
int64_t now_us(void);
int64_t wall_ms(void);
/* The CLOCK_REALTIME time ms milliseconds from now (ms >= 0), for pthread_cond_timedwait. */
struct timespec realtime_deadline_ms(int64_t ms);

/* Creates a directory and its parents with the given mode; 0 or a negative errno. */
int mkdir_p(const char *path, unsigned mode);

/* Writes len bytes to path (mode 0600) through a fresh temporary file and rename(), so readers
 * never see half of it and a link planted at the temporary name is not followed. 0 or a negative
 * errno. */
int write_file_atomic(const char *path, const void *data, size_t len);

/* Splits "host:port" or "[v6 address]:port" into host (without brackets; cap bytes of room) and a
 * port in 1..65535. 0, or -1 for anything else. */
int hostport_split(const char *addr, char *host, size_t cap, int *port);

/* The machine's MemTotal and MemAvailable in bytes, from /proc/meminfo. 0, or -1 (then both -1). */
int read_meminfo(int64_t *total, int64_t *avail);

#endif
