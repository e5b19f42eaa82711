/*
 * Large puts and results split across the core worker's copy threads (worker/cw_copy.c), against
 * a real head node: every byte of a large rayc_put, rayc_put_parts (with gaps) and task result
 * (rayc_return_copy, rayc_return_parts) reads back exactly, at sizes around the threshold; the
 * copy threads start with the first large put and are gone after rayc_shutdown; the setting
 * RAYC_PUT_COPY_THREADS=1 turns them off. Puts from memory the kernel maps to its zero page (never
 * touched, or read but not written), partly written, and from a file mapping partly resident,
 * read back exactly (worker/cw_copy_src.c writes zero pages without reading them).
 */
#include "tests/helpers/proc_threads.h"
#include "itest.h"

#include <sched.h>
#include <sys/mman.h>

enum { WAIT_MS = 60000, MIB = 1024 * 1024 };

static uint8_t copy_pattern(size_t i, unsigned seed)
{
  return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24) ^ seed);
}

static uint8_t *pattern_buf(size_t len, unsigned seed)
{
  uint8_t *p = calloc(1, len);
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < len; i++)
    p[i] = copy_pattern(i, seed);
  return p;
}

/* The copy threads a large put should start: min(4, cores) - 1. */
static int expected_pool(void)
{
  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  return (cores < 4 ? cores : 4) - 1;
}

/* Threads of this process named rayc-copy. */
static int copy_threads_running(void)
{
  return proc_threads_named("rayc-copy");
}

/* Gets r and checks it is exactly want (len bytes); the first differing offset otherwise. */
static void expect_object(const rayc_ref *r, const uint8_t *want, size_t len)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, WAIT_MS, &b);
  ck_assert_msg(rc == 0, "rayc_get: %s", rayc_last_error());
  ck_assert_uint_eq(b.len, len);
  if (memcmp(b.data, want, len) != 0) {
    size_t i = 0;
    while (((const uint8_t *)b.data)[i] == want[i])
      i++;
    ck_abort_msg("object of %zu bytes differs at offset %zu", len, i);
  }
  rayc_buf_release(&b, 1);
}

static void put_and_check(size_t len, unsigned seed)
{
  uint8_t *src = pattern_buf(len, seed);
  rayc_ref r;
  int rc = rayc_put(src, len, &r);
  ck_assert_msg(rc == 0, "rayc_put of %zu bytes: %s", len, rayc_last_error());
  memset(src, 0, len); /* the object is a copy: the caller's buffer is its own again */
  for (size_t i = 0; i < len; i++)
    src[i] = copy_pattern(i, seed);
  expect_object(&r, src, len);
  rayc_ref_release(&r);
  free(src);
}

START_TEST(test_large_puts_read_back_exactly)
{
  it_connect();
  const size_t lens[] = {8 * MIB - 1, 8 * MIB, 8 * MIB + 4097, 48 * MIB + 3};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    put_and_check(lens[i], (unsigned)i + 1);
    if (i == 0) /* below the threshold: the caller copied alone and no pool started */
      ck_assert_int_eq(copy_threads_running(), 0);
  }
  ck_assert_int_eq(copy_threads_running(), expected_pool());
  rayc_shutdown();
  ck_assert_int_eq(copy_threads_running(), 0);
  it_connect(); /* a new session makes a new pool */
  put_and_check(16 * MIB + 1, 9);
  ck_assert_int_eq(copy_threads_running(), expected_pool());
  rayc_shutdown();
  ck_assert_int_eq(copy_threads_running(), 0);
}
END_TEST

/* Parts with gaps (as Python's pickle-5 puts hand them): the gaps read as zeros. */
START_TEST(test_put_parts_with_gaps)
{
  it_connect();
  size_t len = 24 * MIB + 123;
  uint8_t *src = pattern_buf(len, 0x42), *want = calloc(1, len);
  rayc_part parts[3] = {{.offset = 0, .data = src, .len = 64},
                        {.offset = 4096 + 64, .data = src + 4096 + 64, .len = 20 * MIB},
                        {.offset = len - 7000, .data = src + len - 7000, .len = 6000}};
  for (size_t k = 0; k < 3; k++)
    memcpy(want + parts[k].offset, parts[k].data, parts[k].len);
  rayc_ref r;
  int rc = rayc_put_parts(len, parts, 3, NULL, 0, &r);
  ck_assert_msg(rc == 0, "rayc_put_parts: %s", rayc_last_error());
  expect_object(&r, want, len);
  rayc_ref_release(&r);
  rayc_part bad[2] = {{.offset = 100, .data = src, .len = 10}, {.offset = 50, .data = src, .len = 10}};
  ck_assert_int_eq(rayc_put_parts(len, bad, 2, NULL, 0, &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(rayc_last_error(), "part 1"));
  free(src);
  free(want);
  rayc_shutdown();
}
END_TEST

/* Results of 20 MiB written by a worker with rayc_return_copy and rayc_return_parts. */
START_TEST(test_task_results_read_back_exactly)
{
  it_connect();
  int64_t len = 20 * MIB + 5, seed = 0x17;
  uint8_t *want = pattern_buf((size_t)len, (unsigned)seed);
  for (int64_t how = 0; how <= 1; how++) {
    if (how == 1) { /* the three parts of copy_return_pattern's how 1; zeros between them */
      uint8_t *full = pattern_buf((size_t)len, (unsigned)seed);
      memset(want, 0, (size_t)len);
      memcpy(want, full, 100);
      memcpy(want + 4113, full + 4113, (size_t)len - 1000 - 4113);
      memcpy(want + len - 500, full + len - 500, 490);
      free(full);
    }
    rayc_arg args[3] = {RAYC_ARG_VAL(&len, 8), RAYC_ARG_VAL(&seed, 8), RAYC_ARG_VAL(&how, 8)};
    rayc_ref r;
    int rc = rayc_remote("copy_return_pattern", args, 3, NULL, &r);
    ck_assert_msg(rc == 0, "rayc_remote: %s", rayc_last_error());
    expect_object(&r, want, (size_t)len);
    rayc_ref_release(&r);
  }
  free(want);
  rayc_shutdown();
}
END_TEST

/* Puts src[0, len), checks the object is want (the bytes src holds, read some other way so that
 * src's pages stay as they are), then writes src when it may and checks the object kept its bytes
 * (a put is a copy, even of pages that were never read). */
static void put_mapping_and_check(uint8_t *src, const uint8_t *want, size_t len, int writable)
{
  rayc_ref r;
  int rc = rayc_put(src, len, &r);
  ck_assert_msg(rc == 0, "rayc_put: %s", rayc_last_error());
  expect_object(&r, want, len);
  if (writable) {
    memset(src, 0x5c, len);
    expect_object(&r, want, len);
  }
  rayc_ref_release(&r);
}

START_TEST(test_puts_from_zero_pages_and_files)
{
  it_connect();
  size_t len = 24 * MIB + 4096 * 3;
  uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(a, MAP_FAILED);
  uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(b, MAP_FAILED);
  {
    rayc_ref r;
    ck_assert_int_eq(rayc_put(a + 5, len - 5, &r), 0); /* never touched: all zeros */
    uint8_t *zeros = calloc(1, len);
    expect_object(&r, zeros, len - 5);
    rayc_ref_release(&r);
    free(zeros);
  }
  uint8_t *want = malloc(len);
  for (size_t i = 0; i < len; i += 4096 * 7) /* partly written; the rest read (the zero page) */
    memset(b + i, (int)(i >> 12) | 1, i + 4096 * 2 + 11 < len ? 4096 * 2 + 11 : len - i);
  memcpy(want, b, len);
  put_mapping_and_check(b, want, len, 1);
  memset(want, 0, len);
  put_mapping_and_check(a, want, len, 1); /* read by the first put */

  char path[] = "/tmp/rayc-put-copy-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
  for (size_t i = 0; i < len; i += 4096 * 5) { /* data every fifth page; holes between */
    memset(want + i, (int)(i >> 12) | 1, 4096);
    ck_assert_int_eq(pwrite(fd, want + i, 4096, (off_t)i), 4096);
  }
  uint8_t *f = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  ck_assert_ptr_ne(f, MAP_FAILED);
  for (size_t i = 0; i < 8 * MIB; i += 4096 * 3) /* the first 8 MiB partly resident, not the rest */
    (void)*(volatile uint8_t *)(f + i);
  put_mapping_and_check(f, want, len, 0);
  free(want);
  munmap(f, len);
  close(fd);
  munmap(a, len);
  munmap(b, len);
  rayc_shutdown();
}
END_TEST

START_TEST(test_copy_threads_off_by_setting)
{
  setenv("RAYC_PUT_COPY_THREADS", "1", 1);
  it_connect();
  put_and_check(32 * MIB, 3);
  ck_assert_int_eq(copy_threads_running(), 0);
  rayc_shutdown();
  unsetenv("RAYC_PUT_COPY_THREADS");
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("put_copy");
  TCase *tc = tcase_create("put_copy");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_large_puts_read_back_exactly);
  tcase_add_test(tc, test_put_parts_with_gaps);
  tcase_add_test(tc, test_task_results_read_back_exactly);
  tcase_add_test(tc, test_copy_threads_off_by_setting);
  tcase_add_test(tc, test_puts_from_zero_pages_and_files);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
