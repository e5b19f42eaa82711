/*
 * memcpy_bench: the baseline the put-bandwidth rows of `make bench` are held against (issue 17:
 * "at least 80% of a plain memcpy into warm shared memory, measured in the same run").
 *
 *   memcpy_bench [REPS]
 *
 * Copies BENCH_PUT_BYTES (default 200,000,000, the size single_client_put_gigabytes puts) from a
 * private, already-written buffer into a shared mapping (memfd, MAP_SHARED: tmpfs pages as the
 * object store's) that was written once before the timing starts, so no page fault is timed:
 *
 *   memcpy_into_warm_shm_gigabytes            one thread, one memcpy per copy
 *   memcpy_into_warm_shm_gigabytes_2_threads  each copy split into 2 contiguous halves, one per
 *                                             thread (a second thread started for each copy)
 *
 * Each repetition (BENCH_REP_SECONDS, default 1 s, at least 3 copies) prints
 * `rep NAME VALUE GB/s` (GB = 10^9 bytes), as bench_tasks does; bench/run-bench aggregates them.
 * No cluster is involved: this is the machine's copy bandwidth, nothing of rayc's.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef struct slice {
  uint8_t *dst;
  const uint8_t *src;
  size_t len;
} slice_t;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *copy_slice(void *arg)
{
  slice_t *s = arg;
  memcpy(s->dst, s->src, s->len);
  return NULL;
}

/* One copy of len bytes split into nthreads contiguous slices (the caller copies the first). */
static int copy_split(uint8_t *dst, const uint8_t *src, size_t len, int nthreads)
{
  pthread_t tid[8];
  slice_t s[8];
  size_t step = len / (size_t)nthreads;
  for (int i = 0; i < nthreads; i++) {
    size_t lo = step * (size_t)i, hi = i == nthreads - 1 ? len : lo + step;
    s[i] = (slice_t){.dst = dst + lo, .src = src + lo, .len = hi - lo};
    if (i > 0 && pthread_create(&tid[i], NULL, copy_slice, &s[i]) != 0)
      return -1;
  }
  copy_slice(&s[0]);
  for (int i = 1; i < nthreads; i++)
    pthread_join(tid[i], NULL);
  return 0;
}

static int run(const char *name, uint8_t *dst, const uint8_t *src, size_t len, int nthreads, double rep_s)
{
  long n = 0;
  double t0 = now_s(), t;
  do {
    if (copy_split(dst, src, len, nthreads) != 0) {
      printf("error %s pthread_create failed\n", name);
      return -1;
    }
    n++;
  } while ((t = now_s() - t0) < rep_s || n < 3);
  if (memcmp(dst + len - 64, src + len - 64, 64) != 0) {
    printf("error %s the copy did not arrive\n", name);
    return -1;
  }
  printf("rep %s %.6g GB/s\n", name, (double)n * (double)len / 1e9 / t);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv)
{
  const char *pb = getenv("BENCH_PUT_BYTES"), *rs = getenv("BENCH_REP_SECONDS");
  size_t len = pb && atoll(pb) > 0 ? (size_t)atoll(pb) : 200000000;
  double rep_s = rs && atof(rs) > 0 ? atof(rs) : 1.0;
  int reps = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 5;
  int fd = memfd_create("memcpy_bench", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
    printf("error memcpy_into_warm_shm_gigabytes memfd of %zu bytes: %m\n", len);
    return 1;
  }
  uint8_t *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  uint8_t *src = malloc(len);
  close(fd);
  if (dst == MAP_FAILED || !src) {
    printf("error memcpy_into_warm_shm_gigabytes mapping %zu bytes failed\n", len);
    return 1;
  }
  memset(src, 1, len);
  memcpy(dst, src, len); /* warm: every page of the mapping is faulted in before the timing */
  int rc = 0;
  for (int r = 0; rc == 0 && r < reps; r++) {
    rc = run("memcpy_into_warm_shm_gigabytes", dst, src, len, 1, rep_s);
    if (rc == 0)
      rc = run("memcpy_into_warm_shm_gigabytes_2_threads", dst, src, len, 2, rep_s);
  }
  munmap(dst, len);
  free(src);
  return rc == 0 ? 0 : 1;
}
