/*
 * Unit tests of the core worker's parallel copy (worker/cw_copy.c), in process: every layout of
 * parts and gaps, at lengths around the slice boundaries, is written byte for byte as a serial
 * gather would write it; the pool starts lazily, only for copies at or above the threshold, and
 * is joined by cw_copy_destroy; the settings are read from the environment and bad values fall
 * back to the defaults. Sources whose pages the kernel maps to its zero page (read but never
 * written, or never touched at all), mixed with written pages, pages dropped with MADV_DONTNEED,
 * and file mappings (shared, private, with holes, partly resident) arrive byte for byte, and the
 * zero pages are written without being read where the kernel can say which they are.
 */
#include "tests/helpers/proc_threads.h"
#include "worker/cw_copy.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

static int cores(void)
{
  cpu_set_t set;
  return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

/* Threads of this process named rayc-copy. */
static int copy_threads_running(void)
{
  return proc_threads_named("rayc-copy");
}

static uint8_t pattern(size_t i, unsigned seed)
{
  return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24) ^ seed);
}

/* What a gather of parts into len bytes must give (gaps zero), written the plain way. */
static void reference(uint8_t *out, size_t len, const rayc_part *parts, size_t nparts)
{
  memset(out, 0, len);
  for (size_t i = 0; i < nparts; i++)
    memcpy(out + parts[i].offset, parts[i].data, parts[i].len);
}

/* Random parts over len bytes from src (in order, gaps between some), at most max of them. */
static size_t random_parts(rayc_part *parts, size_t max, size_t len, const uint8_t *src, unsigned *seed)
{
  size_t n = 0, at = 0;
  while (n < max && at < len) {
    size_t gap = rand_r(seed) % 3 == 0 ? (size_t)rand_r(seed) % (len - at + 1) / 4 : 0;
    size_t off = at + gap, room = len - off;
    size_t plen = room ? (size_t)rand_r(seed) % (room + 1) : 0;
    if (n + 1 == max || rand_r(seed) % 4 == 0)
      plen = room; /* sometimes run to the end */
    parts[n++] = (rayc_part){.offset = off, .data = src + off, .len = plen};
    at = off + plen;
  }
  return n;
}

static cw_copy_t *pool_with(const char *threads, const char *min_bytes)
{
  setenv("RAYC_PUT_COPY_THREADS", threads, 1);
  setenv("RAYC_PUT_COPY_MIN_BYTES", min_bytes, 1);
  cw_copy_t *cp = cw_copy_create();
  unsetenv("RAYC_PUT_COPY_THREADS");
  unsetenv("RAYC_PUT_COPY_MIN_BYTES");
  return cp;
}

START_TEST(test_copy_matches_serial_gather)
{
  cw_copy_t *cp = pool_with("4", "1"); /* every copy split, even a 1-byte one */
  const size_t chunk = CW_COPY_CHUNK, max_len = 3 * CW_COPY_CHUNK + 4097;
  uint8_t *src = malloc(max_len), *dst = malloc(max_len), *want = malloc(max_len);
  for (size_t i = 0; i < max_len; i++)
    src[i] = pattern(i, 0x5a);
  const size_t lens[] = {0, 1, 4097, chunk - 1, chunk, chunk + 1, 2 * chunk + 77, max_len};
  unsigned seed = 7;
  for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
    for (int round = 0; round < 12; round++) {
      rayc_part parts[8];
      size_t n = random_parts(parts, round % 8 + 1, lens[l], src, &seed);
      reference(want, lens[l], parts, n);
      memset(dst, 0xee, max_len); /* stale bytes the copy must overwrite (gaps too) */
      cw_copy_parts(cp, dst, lens[l], parts, n);
      ck_assert_msg(memcmp(dst, want, lens[l]) == 0, "len %zu round %d (%zu parts) differs", lens[l], round, n);
      ck_assert_msg(lens[l] == max_len || dst[lens[l]] == 0xee, "len %zu: wrote past the end", lens[l]);
    }
  }
  int started = 0;
  ck_assert_int_eq(cw_copy_threads(cp, &started), cores() < 4 ? cores() : 4);
  ck_assert_int_eq(started, cw_copy_threads(cp, NULL) - 1);
  cw_copy_destroy(cp);
  free(src), free(dst), free(want);
}
END_TEST

START_TEST(test_pool_starts_lazily_and_is_joined)
{
  int before = copy_threads_running();
  cw_copy_t *cp = pool_with("2", "65536");
  size_t len = 2 * CW_COPY_CHUNK;
  uint8_t *src = malloc(len), *dst = malloc(len);
  memset(src, 3, len);
  cw_copy_bytes(cp, dst, src, 65535); /* below the threshold: the caller alone */
  ck_assert_int_eq(copy_threads_running(), before);
  cw_copy_bytes(cp, dst, src, len);
  ck_assert_int_eq(copy_threads_running(), before + (cores() >= 2 ? 1 : 0));
  ck_assert_int_eq(dst[len - 1], 3);
  cw_copy_destroy(cp);
  ck_assert_int_eq(copy_threads_running(), before);
  cw_copy_destroy(NULL);
  free(src), free(dst);
}
END_TEST

START_TEST(test_settings_from_environment)
{
  cw_copy_t *cp = pool_with("1", "1"); /* 1 thread: no pool at all */
  uint8_t a[64] = {1}, b[64];
  cw_copy_bytes(cp, b, a, sizeof(a));
  int started = -1;
  ck_assert_int_eq(cw_copy_threads(cp, &started), 1);
  ck_assert_int_eq(started, 0);
  ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
  cw_copy_destroy(cp);
  const char *bad[] = {"0", "-3", "two", "4x", "100000"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cp = pool_with(bad[i], bad[i]);
    ck_assert_int_eq(cw_copy_threads(cp, NULL), cores() < CW_COPY_THREADS ? cores() : CW_COPY_THREADS);
    cw_copy_destroy(cp);
  }
  ck_assert_int_eq(cw_copy_threads(NULL, &started), 1);
}
END_TEST

typedef struct racer {
  cw_copy_t *cp;
  uint8_t *dst;
  const uint8_t *src;
  size_t len;
} racer_t;

static void *race(void *arg)
{
  racer_t *r = arg;
  for (int i = 0; i < 30; i++)
    cw_copy_bytes(r->cp, r->dst, r->src, r->len);
  return NULL;
}

/* Two threads copying at once: one holds the pool, the other copies alone; both arrive whole. */
START_TEST(test_concurrent_copies)
{
  cw_copy_t *cp = pool_with("2", "4096");
  enum { LEN = 2 * CW_COPY_CHUNK + 11 };
  racer_t r[2];
  pthread_t t[2];
  for (int k = 0; k < 2; k++) {
    uint8_t *src = malloc(LEN);
    for (size_t i = 0; i < LEN; i++)
      src[i] = pattern(i, (unsigned)k * 0x33);
    r[k] = (racer_t){.cp = cp, .dst = malloc(LEN), .src = src, .len = LEN};
    ck_assert_int_eq(pthread_create(&t[k], NULL, race, &r[k]), 0);
  }
  for (int k = 0; k < 2; k++) {
    pthread_join(t[k], NULL);
    ck_assert_msg(memcmp(r[k].dst, r[k].src, LEN) == 0, "copy %d differs", k);
    free(r[k].dst), free((void *)r[k].src);
  }
  cw_copy_destroy(cp);
}
END_TEST

enum { PAGE = 4096, SRC_LEN = 6 * CW_COPY_CHUNK + 3 * PAGE };

/* Linux 6.7 or later: the kernel says which pages are its zero page (PAGEMAP_SCAN). */
static int kernel_scans(void)
{
  struct utsname u;
  int major = 0, minor = 0;
  return uname(&u) == 0 && sscanf(u.release, "%d.%d", &major, &minor) == 2 && (major > 6 || (major == 6 && minor >= 7));
}

/* Copies src[off, off + len) with cw_copy_bytes into a buffer of stale bytes and checks it is
 * exactly the source's bytes (read the plain way, after the copy); returns the bytes zeroed. */
static size_t copy_and_check(cw_copy_t *cp, const uint8_t *src, size_t off, size_t len)
{
  uint8_t *dst = malloc(len + 1);
  memset(dst, 0xee, len + 1);
  size_t before = cw_copy_zeroed(cp);
  cw_copy_bytes(cp, dst, src + off, len);
  size_t zeroed = cw_copy_zeroed(cp) - before;
  if (memcmp(dst, src + off, len) != 0) {
    size_t i = 0;
    while (dst[i] == src[off + i])
      i++;
    ck_abort_msg("offset %zu (of %zu from %zu): %u, source %u", i, len, off, dst[i], src[off + i]);
  }
  ck_assert_int_eq(dst[len], 0xee);
  free(dst);
  return zeroed;
}

static uint8_t *anon(size_t len)
{
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(p, MAP_FAILED);
  return p;
}

/* Never touched: every page reads as zeros; most of them are written without being read. */
START_TEST(test_untouched_anonymous_source)
{
  cw_copy_t *cp = pool_with("4", "65536");
  uint8_t *src = anon(SRC_LEN);
  size_t zeroed = copy_and_check(cp, src, 17, SRC_LEN - 17); /* not page-aligned: pieces share pages */
  if (kernel_scans())
    ck_assert_msg(zeroed > (SRC_LEN - 17) / 2, "only %zu of %d bytes written unread", zeroed, SRC_LEN - 17);
  zeroed = copy_and_check(cp, src, 0, SRC_LEN); /* now read once: the zero page mapped */
  if (kernel_scans())
    ck_assert_msg(zeroed > SRC_LEN / 2, "only %zu of %d bytes written unread", zeroed, SRC_LEN);
  munmap(src, SRC_LEN);
  cw_copy_destroy(cp);
}
END_TEST

/* Written pages, read-only zero pages, untouched pages and pages dropped after a write, mixed
 * within chunks and at their edges; copied by the pool, by the caller alone, and as parts. */
START_TEST(test_partly_written_anonymous_source)
{
  uint8_t *src = anon(SRC_LEN);
  unsigned seed = 11;
  for (size_t pg = 0; pg < SRC_LEN / PAGE; pg++) {
    int kind = rand_r(&seed) % 4;
    uint8_t *p = src + pg * PAGE;
    if (kind == 0)
      for (size_t i = 0; i < PAGE; i += 61)
        p[i] = pattern(pg * PAGE + i, 3) | 1;
    else if (kind == 1)
      (void)*(volatile uint8_t *)p; /* read: the zero page */
    else if (kind == 2)
      p[PAGE - 1] = 9; /* one byte at the end of an otherwise zero page */
  }
  memset(src + 5 * PAGE, 0x41, 3 * PAGE);
  ck_assert_int_eq(madvise(src + 6 * PAGE, PAGE, MADV_DONTNEED), 0); /* written, then dropped: zeros */
  const char *threads[] = {"4", "1"};
  for (int t = 0; t < 2; t++) {
    cw_copy_t *cp = pool_with(threads[t], "65536");
    copy_and_check(cp, src, 0, SRC_LEN);
    copy_and_check(cp, src, PAGE - 3, SRC_LEN - PAGE);
    copy_and_check(cp, src, 123, 70000);
    cw_copy_destroy(cp);
  }
  /* parts with gaps over the same source */
  cw_copy_t *cp = pool_with("4", "65536");
  rayc_part parts[3] = {{.offset = 100, .data = src + 100, .len = CW_COPY_CHUNK},
                        {.offset = CW_COPY_CHUNK + 4096, .data = src + CW_COPY_CHUNK + 4096, .len = 2 * CW_COPY_CHUNK + 5},
                        {.offset = 4 * CW_COPY_CHUNK, .data = src + 4 * CW_COPY_CHUNK, .len = SRC_LEN - 4 * CW_COPY_CHUNK}};
  uint8_t *want = malloc(SRC_LEN), *dst = malloc(SRC_LEN);
  reference(want, SRC_LEN, parts, 3);
  memset(dst, 0xee, SRC_LEN);
  cw_copy_parts(cp, dst, SRC_LEN, parts, 3);
  ck_assert(memcmp(dst, want, SRC_LEN) == 0);
  cw_copy_destroy(cp);
  free(want), free(dst);
  munmap(src, SRC_LEN);
}
END_TEST

/* A file mapped shared and private, with data, holes, and pages some of which are resident (read
 * before the copy) and some not: the copy is the file's bytes. */
START_TEST(test_file_backed_source)
{
  char path[] = "/tmp/rayc-cw-copy-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  ck_assert_int_eq(ftruncate(fd, SRC_LEN), 0); /* a sparse file: holes read as zeros */
  uint8_t page[PAGE];
  for (size_t pg = 0; pg < SRC_LEN / PAGE; pg += 3) {
    for (size_t i = 0; i < PAGE; i++)
      page[i] = pattern(pg * PAGE + i, 7);
    ck_assert_int_eq(pwrite(fd, page, PAGE, (off_t)(pg * PAGE)), PAGE);
  }
  const int flags[] = {MAP_SHARED, MAP_PRIVATE};
  for (int f = 0; f < 2; f++) {
    uint8_t *src = mmap(NULL, SRC_LEN, PROT_READ, flags[f], fd, 0);
    ck_assert_ptr_ne(src, MAP_FAILED);
    for (size_t pg = 0; pg < 2 * CW_COPY_CHUNK / PAGE; pg += 5)
      (void)*(volatile uint8_t *)(src + pg * PAGE); /* the first two chunks resident, not the rest */
    cw_copy_t *cp = pool_with("4", "65536");
    copy_and_check(cp, src, 0, SRC_LEN);
    copy_and_check(cp, src, 1, SRC_LEN - 1);
    cw_copy_destroy(cp);
    munmap(src, SRC_LEN);
  }
  close(fd);
}
END_TEST

/* RAYC_PUT_COPY_ZERO_SCAN=0: every page is read (and the copy is the same). */
START_TEST(test_zero_scan_off_by_setting)
{
  setenv("RAYC_PUT_COPY_ZERO_SCAN", "0", 1);
  cw_copy_t *cp = pool_with("4", "65536");
  unsetenv("RAYC_PUT_COPY_ZERO_SCAN");
  uint8_t *src = anon(SRC_LEN);
  ck_assert_uint_eq(copy_and_check(cp, src, 0, SRC_LEN), 0);
  cw_copy_destroy(cp);
  munmap(src, SRC_LEN);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("cw_copy");
  TCase *tc = tcase_create("copy");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_copy_matches_serial_gather);
  tcase_add_test(tc, test_pool_starts_lazily_and_is_joined);
  tcase_add_test(tc, test_settings_from_environment);
  tcase_add_test(tc, test_concurrent_copies);
  tcase_add_test(tc, test_untouched_anonymous_source);
  tcase_add_test(tc, test_partly_written_anonymous_source);
  tcase_add_test(tc, test_file_backed_source);
  tcase_add_test(tc, test_zero_scan_off_by_setting);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
