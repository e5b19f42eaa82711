/*
 * Unit tests of the object store's allocator (object-store/store_alloc.c): patterns, coalescing,
 * fragmentation, alignment, exhaustion, bad frees, and a randomized run against a shadow model
 * that owns one flag per allocation unit, with the tree's invariants checked after every step;
 * a large stress run checks the tree stays balanced (height O(log n)) with 100k free ranges.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "object-store/store_alloc.h"

enum { A = STORE_ALLOC_ALIGN };

START_TEST(test_round)
{
  ck_assert_uint_eq(store_alloc_round(0), A);
  ck_assert_uint_eq(store_alloc_round(1), A);
  ck_assert_uint_eq(store_alloc_round(A), A);
  ck_assert_uint_eq(store_alloc_round(A + 1), 2 * A);
  ck_assert_uint_eq(store_alloc_round(UINT64_MAX), 0);
  ck_assert_uint_eq(store_alloc_round(UINT64_MAX - A + 2), 0);
  ck_assert_uint_eq(store_alloc_round(UINT64_MAX - A), UINT64_MAX - A + 1);
}
END_TEST

START_TEST(test_capacity_rounds_down)
{
  store_alloc_t *a = store_alloc_create(10 * A + 7);
  ck_assert_uint_eq(store_alloc_capacity(a), 10 * A);
  ck_assert_uint_eq(store_alloc_used(a), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 1);
  store_alloc_destroy(a);
  a = store_alloc_create(A - 1);
  uint64_t off;
  ck_assert_int_eq(store_alloc_alloc(a, 1, &off), RAYC_EOUT_OF_MEMORY);
  store_alloc_destroy(a);
  store_alloc_destroy(NULL);
}
END_TEST

START_TEST(test_alignment_and_sizes)
{
  store_alloc_t *a = store_alloc_create(1 << 20);
  uint64_t sizes[] = {1, 63, 64, 65, 100, 0, 4095, 4096, 12345};
  uint64_t expect_used = 0;
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    uint64_t off;
    ck_assert_int_eq(store_alloc_alloc(a, sizes[i], &off), 0);
    ck_assert_uint_eq(off % A, 0);
    ck_assert_uint_eq(off, expect_used); /* first fit on a fresh region packs from 0 */
    expect_used += store_alloc_round(sizes[i]);
    ck_assert_uint_eq(store_alloc_used(a), expect_used);
  }
  store_alloc_destroy(a);
}
END_TEST

START_TEST(test_coalescing)
{
  store_alloc_t *a = store_alloc_create(8 * A);
  uint64_t off[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(store_alloc_alloc(a, A, &off[i]), 0);
  /* free 0 and 2: two holes plus the tail */
  ck_assert_int_eq(store_alloc_free(a, off[0], A), 0);
  ck_assert_int_eq(store_alloc_free(a, off[2], A), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 3);
  /* free 1: joins both neighbours */
  ck_assert_int_eq(store_alloc_free(a, off[1], A), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 2);
  ck_assert_uint_eq(store_alloc_largest_free(a), 4 * A);
  /* free 3: everything is one block again */
  ck_assert_int_eq(store_alloc_free(a, off[3], A), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 1);
  ck_assert_uint_eq(store_alloc_largest_free(a), 8 * A);
  ck_assert_uint_eq(store_alloc_used(a), 0);
  store_alloc_destroy(a);
}
END_TEST

START_TEST(test_fragmentation)
{
  enum { N = 64 };
  store_alloc_t *a = store_alloc_create(N * A);
  uint64_t off[N], big;
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(store_alloc_alloc(a, A, &off[i]), 0);
  ck_assert_int_eq(store_alloc_alloc(a, 1, &big), RAYC_EOUT_OF_MEMORY);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 0);
  for (int i = 0; i < N; i += 2)
    ck_assert_int_eq(store_alloc_free(a, off[i], A), 0);
  ck_assert_uint_eq(store_alloc_used(a), N / 2 * A);
  ck_assert_uint_eq(store_alloc_free_ranges(a), N / 2);
  ck_assert_int_eq(store_alloc_alloc(a, 2 * A, &big), RAYC_EOUT_OF_MEMORY);
  for (int i = 1; i < N; i += 2)
    ck_assert_int_eq(store_alloc_free(a, off[i], A), 0);
  ck_assert_int_eq(store_alloc_alloc(a, N * A, &big), 0);
  ck_assert_uint_eq(big, 0);
  ck_assert_uint_eq(store_alloc_used(a), N * A);
  store_alloc_destroy(a);
}
END_TEST

START_TEST(test_exhaustion_and_reuse)
{
  store_alloc_t *a = store_alloc_create(1000 * A);
  uint64_t off, last = 0;
  int n = 0;
  while (store_alloc_alloc(a, 3 * A, &off) == 0) {
    last = off;
    n++;
  }
  ck_assert_int_eq(n, 333);
  ck_assert_uint_eq(store_alloc_used(a), 999 * A);
  ck_assert_int_eq(store_alloc_alloc(a, A, &off), 0); /* the last unit */
  ck_assert_int_eq(store_alloc_alloc(a, 1, &off), RAYC_EOUT_OF_MEMORY);
  ck_assert_int_eq(store_alloc_free(a, last, 3 * A), 0);
  ck_assert_int_eq(store_alloc_alloc(a, 3 * A, &off), 0);
  ck_assert_uint_eq(off, last);
  ck_assert_int_eq(store_alloc_alloc(a, UINT64_MAX, &off), RAYC_EOUT_OF_MEMORY);
  store_alloc_destroy(a);
}
END_TEST

START_TEST(test_bad_free)
{
  store_alloc_t *a = store_alloc_create(16 * A);
  uint64_t x, y;
  ck_assert_int_eq(store_alloc_alloc(a, 2 * A, &x), 0);
  ck_assert_int_eq(store_alloc_alloc(a, 2 * A, &y), 0);
  ck_assert_int_eq(store_alloc_free(a, x + 1, A), RAYC_EINVALID_ARGUMENT);  /* misaligned */
  ck_assert_int_eq(store_alloc_free(a, 16 * A, A), RAYC_EINVALID_ARGUMENT); /* out of range */
  ck_assert_int_eq(store_alloc_free(a, 15 * A, 2 * A), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_alloc_free(a, 0, UINT64_MAX), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(store_alloc_free(a, 8 * A, A), RAYC_EINVALID_ARGUMENT); /* never allocated */
  ck_assert_int_eq(store_alloc_free(a, x, 2 * A), 0);
  ck_assert_int_eq(store_alloc_free(a, x, 2 * A), RAYC_EINVALID_ARGUMENT); /* double free */
  ck_assert_uint_eq(store_alloc_used(a), 2 * A);
  ck_assert_int_eq(store_alloc_free(a, y, 2 * A), 0);
  ck_assert_uint_eq(store_alloc_used(a), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 1);
  store_alloc_destroy(a);
}
END_TEST

/* Shadow model: one byte per unit, 1 when allocated. */
enum { UNITS = 512, LIVE_MAX = 256 };

static long shadow_first_fit(const unsigned char *map, uint64_t units)
{
  uint64_t run = 0;
  for (uint64_t i = 0; i < UNITS; i++) {
    run = map[i] ? 0 : run + 1;
    if (run == units)
      return (long)(i + 1 - units);
  }
  return -1;
}

static size_t shadow_free_runs(const unsigned char *map)
{
  size_t runs = 0;
  for (int i = 0; i < UNITS; i++)
    if (!map[i] && (i == 0 || map[i - 1]))
      runs++;
  return runs;
}

static uint64_t shadow_largest_run(const unsigned char *map)
{
  uint64_t run = 0, best = 0;
  for (int i = 0; i < UNITS; i++) {
    run = map[i] ? 0 : run + 1;
    if (run > best)
      best = run;
  }
  return best;
}

typedef struct {
  uint64_t off, size;
} live_t;

static void random_step(store_alloc_t *a, unsigned char *map, live_t *live, int *nlive)
{
  if (*nlive > 0 && (rand() % 2 || *nlive == LIVE_MAX)) {
    int k = rand() % *nlive;
    ck_assert_int_eq(store_alloc_free(a, live[k].off, live[k].size), 0);
    memset(map + live[k].off / A, 0, store_alloc_round(live[k].size) / A);
    live[k] = live[--*nlive];
    return;
  }
  uint64_t size = (uint64_t)(rand() % (24 * A));
  uint64_t units = store_alloc_round(size) / A, off;
  long expect = shadow_first_fit(map, units);
  int rc = store_alloc_alloc(a, size, &off);
  if (expect < 0) {
    ck_assert_int_eq(rc, RAYC_EOUT_OF_MEMORY);
    return;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_uint_eq(off, (uint64_t)expect * A);
  memset(map + off / A, 1, units);
  live[(*nlive)++] = (live_t){off, size};
}

START_TEST(test_random_vs_shadow)
{
  store_alloc_t *a = store_alloc_create(UNITS * A);
  unsigned char map[UNITS] = {0};
  live_t live[LIVE_MAX];
  int nlive = 0;
  srand(12345);
  for (int step = 0; step < 20000; step++) {
    random_step(a, map, live, &nlive);
    uint64_t used = 0;
    for (int i = 0; i < UNITS; i++)
      used += map[i];
    ck_assert_uint_eq(store_alloc_used(a), used * A);
    ck_assert_uint_eq(store_alloc_free_ranges(a), shadow_free_runs(map));
    ck_assert_uint_eq(store_alloc_largest_free(a), shadow_largest_run(map) * A);
    ck_assert_int_eq(store_alloc_check(a, NULL), 0);
  }
  while (nlive > 0) {
    ck_assert_int_eq(store_alloc_free(a, live[nlive - 1].off, live[nlive - 1].size), 0);
    nlive--;
  }
  ck_assert_uint_eq(store_alloc_used(a), 0);
  ck_assert_uint_eq(store_alloc_free_ranges(a), 1);
  store_alloc_destroy(a);
}
END_TEST

/* Freed memory is reused before fresh memory: after a free, the next fit goes to the lowest
 * address, not to the untouched tail. */
START_TEST(test_reuses_low_addresses)
{
  store_alloc_t *a = store_alloc_create(1024 * A);
  uint64_t x, y, z, w;
  ck_assert_int_eq(store_alloc_alloc(a, 100 * A, &x), 0);
  ck_assert_int_eq(store_alloc_alloc(a, 10 * A, &y), 0);
  ck_assert_int_eq(store_alloc_free(a, x, 100 * A), 0);
  ck_assert_int_eq(store_alloc_alloc(a, 50 * A, &z), 0);
  ck_assert_uint_eq(z, 0);
  ck_assert_int_eq(store_alloc_alloc(a, 60 * A, &w), 0); /* 50 left below y: goes above it */
  ck_assert_uint_eq(w, y + 10 * A);
  ck_assert_int_eq(store_alloc_check(a, NULL), 0);
  store_alloc_destroy(a);
}
END_TEST

/* 200k single units allocated, every other one freed: 100k free ranges that cannot merge. The
 * tree must stay an AVL tree (height <= 1.44 log2(n + 2)), and operations keep working. */
START_TEST(test_many_ranges_stay_balanced)
{
  enum { N = 200000 };
  store_alloc_t *a = store_alloc_create((uint64_t)N * A);
  uint64_t *off = malloc(N * sizeof(*off));
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(store_alloc_alloc(a, A, &off[i]), 0);
  for (int i = 0; i < N; i += 2)
    ck_assert_int_eq(store_alloc_free(a, off[i], A), 0);
  int h = 0;
  ck_assert_int_eq(store_alloc_check(a, &h), 0);
  size_t n = store_alloc_free_ranges(a);
  ck_assert_uint_eq(n, N / 2);
  ck_assert_int_le(h, (int)(1.4405 * log2((double)n + 2)));
  srand(99);
  for (int k = 0; k < 50000; k++) { /* random frees of the odd units merge ranges */
    int i = 2 * (rand() % (N / 2)) + 1;
    if (off[i] != UINT64_MAX) {
      ck_assert_int_eq(store_alloc_free(a, off[i], A), 0);
      off[i] = UINT64_MAX;
    }
  }
  ck_assert_int_eq(store_alloc_check(a, &h), 0);
  ck_assert_int_le(h, (int)(1.4405 * log2((double)store_alloc_free_ranges(a) + 2)));
  uint64_t big;
  ck_assert_int_eq(store_alloc_alloc(a, 3 * A, &big), 0); /* the lowest run of three free units */
  ck_assert_int_eq(store_alloc_check(a, NULL), 0);
  free(off);
  store_alloc_destroy(a);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("store_alloc");
  TCase *tc = tcase_create("alloc");
  tcase_add_test(tc, test_round);
  tcase_add_test(tc, test_capacity_rounds_down);
  tcase_add_test(tc, test_alignment_and_sizes);
  tcase_add_test(tc, test_coalescing);
  tcase_add_test(tc, test_fragmentation);
  tcase_add_test(tc, test_exhaustion_and_reuse);
  tcase_add_test(tc, test_bad_free);
  tcase_add_test(tc, test_random_vs_shadow);
  tcase_add_test(tc, test_reuses_low_addresses);
  tcase_add_test(tc, test_many_ranges_stay_balanced);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
