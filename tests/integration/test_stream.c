/*
 * Streaming generator returns (rayc.h "streaming generators") against a real head node: items
 * read in order while the task runs, the end, an error after k items, large items through the
 * store, a worker SIGKILLed mid-stream and the task retried (no item lost or repeated), actor
 * method generators, items that contain refs, and every item and store byte freed when the refs
 * go (read or not).
 */
#include "itest.h"

#include <signal.h>
#include <time.h>

enum { WAIT_MS = 30000 };

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until this driver owns nothing and the store is back at base. */
static void expect_all_freed(uint64_t base)
{
  int64_t end = mono_ms() + WAIT_MS;
  rayc_ref_counts c;
  uint64_t used;
  for (;;) {
    ck_assert_int_eq(rayc_ref_counts_get(&c), 0);
    used = it_store_used();
    if ((c.owned == 0 && used == base) || mono_ms() > end)
      break;
    usleep(50 * 1000);
  }
  ck_assert_msg(c.owned == 0 && used == base, "still owned %zu objects, store %llu bytes (base %llu)", c.owned,
                (unsigned long long)used, (unsigned long long)base);
}

static rayc_ref submit_stream(const char *fn, const rayc_arg *args, size_t n)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.streaming = 1;
  rayc_ref gen;
  int rc = rayc_remote(fn, args, n, &o, &gen);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return gen;
}

/* Reads the next item: 1 and its int64 (first 8 bytes) in *v and its length in *len, or the code. */
static int next_i64(const rayc_ref *gen, int64_t *v, size_t *len)
{
  rayc_ref item;
  int rc = rayc_stream_next(gen, WAIT_MS, &item);
  if (rc != 1) {
    if (rc < 0)
      printf("rayc_stream_next: %s\n", rayc_last_error());
    return rc;
  }
  rayc_buf b;
  int grc = rayc_get(&item, 1, WAIT_MS, &b);
  ck_assert_msg(grc == 0, "get of an item: %s", rayc_last_error());
  ck_assert_uint_ge(b.len, 8);
  memcpy(v, b.data, 8);
  if (len)
    *len = b.len;
  for (size_t i = 8; i < b.len; i += 4093) /* the filler bytes are the item's */
    ck_assert_int_eq(((const uint8_t *)b.data)[i], (int)(*v & 0xff));
  rayc_buf_release(&b, 1);
  rayc_ref_release(&item);
  return 1;
}

START_TEST(test_stream_in_order_then_end)
{
  it_connect();
  uint64_t base = it_store_used();
  rayc_arg a[1] = {RAYC_ARG_I64(20)};
  rayc_ref gen = submit_stream("gen_count", a, 1);
  int64_t v;
  for (int64_t i = 0; i < 20; i++) {
    ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
    ck_assert_int_eq(v, i);
  }
  ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &(rayc_ref){0}), 0); /* the end, and again */
  ck_assert_int_eq(rayc_stream_next(&gen, 0, &(rayc_ref){0}), 0);
  ck_assert_int_eq(rayc_stream_ready(&gen), 1);
  rayc_buf b; /* the generator object: the item count */
  ck_assert_int_eq(rayc_get(&gen, 1, WAIT_MS, &b), 0);
  ck_assert_uint_eq(b.len, 8);
  uint64_t count;
  memcpy(&count, b.data, 8);
  ck_assert_uint_eq(count, 20);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&gen);
  expect_all_freed(base);
  rayc_shutdown();
}
END_TEST

/* The first item is read while the task still runs (it sleeps 5 s after each item). */
START_TEST(test_stream_items_before_the_task_ends)
{
  it_connect();
  rayc_arg a[4] = {RAYC_ARG_I64(2), RAYC_ARG_I64(-1), RAYC_ARG_I64(8), RAYC_ARG_I64(5000)};
  rayc_ref gen = submit_stream("gen_count", a, 4);
  int64_t v;
  ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
  ck_assert_int_eq(v, 0);
  int ready = 0;
  int wrc = rayc_wait(&gen, 1, 1, 0, &ready);
  ck_assert_msg(wrc >= 0 || wrc == RAYC_ETIMEOUT, "wait: %s", rayc_last_error());
  ck_assert_msg(!ready, "the task had already finished: the item was not streamed");
  ck_assert_int_eq(rayc_stream_ready(&gen), 0);
  ck_assert_int_eq(rayc_stream_next(&gen, 0, &(rayc_ref){0}), RAYC_ETIMEOUT);
  ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &(rayc_ref){0}), 0);
  rayc_ref_release(&gen);
  rayc_shutdown();
}
END_TEST

START_TEST(test_stream_error_after_k_items)
{
  it_connect();
  rayc_arg a[2] = {RAYC_ARG_I64(10), RAYC_ARG_I64(3)};
  rayc_ref gen = submit_stream("gen_count", a, 2);
  int64_t v;
  for (int64_t i = 0; i < 3; i++) {
    ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
    ck_assert_int_eq(v, i);
  }
  rayc_ref item;
  ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &item), RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "gen_count failed at item 3"), "detail: %s", rayc_last_error());
  ck_assert_int_eq(rayc_stream_next(&gen, 0, &item), RAYC_ETASK_FAILED); /* again */
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&gen, 1, WAIT_MS, &b), RAYC_ETASK_FAILED);
  rayc_ref_release(&gen);
  rayc_shutdown();
}
END_TEST

/* 1 MiB items live in the store; read ones and unread ones are freed once their refs go. */
START_TEST(test_stream_large_items_freed)
{
  it_connect();
  uint64_t base = it_store_used();
  rayc_arg a[3] = {RAYC_ARG_I64(6), RAYC_ARG_I64(-1), RAYC_ARG_I64(1 << 20)};
  rayc_ref gen = submit_stream("gen_count", a, 3);
  int64_t v;
  size_t len;
  for (int64_t i = 0; i < 3; i++) {
    ck_assert_int_eq(next_i64(&gen, &v, &len), 1);
    ck_assert_int_eq(v, i);
    ck_assert_uint_eq(len, 1 << 20);
  }
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&gen, 1, WAIT_MS, &b), 0); /* finished: 3 items unread */
  rayc_buf_release(&b, 1);
  ck_assert_uint_ge(it_store_used(), base + 3 * (1 << 20));
  rayc_ref_release(&gen);
  expect_all_freed(base);
  rayc_shutdown();
}
END_TEST

static pid_t wait_for_pid_file(const char *path)
{
  for (int i = 0; i < 3000; i++) {
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
      int ok = fscanf(f, "%d", &pid) == 1;
      fclose(f);
      if (ok && pid > 0)
        return pid;
    }
    usleep(20 * 1000);
  }
  return -1;
}

/* The worker dies after 2 items; the retry yields all 6 again: the reader sees each once. */
START_TEST(test_stream_worker_killed_retried)
{
  it_connect();
  char path[700];
  snprintf(path, sizeof(path), "%s/gen_die_once.pid", it_temp);
  unlink(path);
  rayc_arg a[2] = {RAYC_ARG_STR(path), RAYC_ARG_I64(6)};
  rayc_ref gen = submit_stream("gen_die_once", a, 2);
  int64_t v;
  for (int64_t i = 0; i < 2; i++) {
    ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
    ck_assert_int_eq(v, i);
  }
  pid_t pid = wait_for_pid_file(path);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  for (int64_t i = 2; i < 6; i++) {
    int rc = next_i64(&gen, &v, NULL);
    ck_assert_msg(rc == 1, "item %lld after the retry: %d %s", (long long)i, rc, rayc_last_error());
    ck_assert_int_eq(v, i);
  }
  ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &(rayc_ref){0}), 0);
  rayc_ref_release(&gen);
  rayc_shutdown();
}
END_TEST

START_TEST(test_stream_actor_method)
{
  it_connect();
  rayc_actor act;
  rayc_arg ca[1] = {RAYC_ARG_I64(100)};
  ck_assert_msg(rayc_actor_create("TGen", ca, 1, NULL, &act) == 0, "create: %s", rayc_last_error());
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.streaming = 1;
  for (int round = 0; round < 2; round++) {
    rayc_arg a[1] = {RAYC_ARG_I64(5)};
    rayc_ref gen;
    ck_assert_msg(rayc_actor_call(&act, "count", a, 1, &o, &gen) == 0, "call: %s", rayc_last_error());
    int64_t v;
    for (int64_t i = 0; i < 5; i++) {
      ck_assert_int_eq(next_i64(&gen, &v, NULL), 1);
      ck_assert_int_eq(v, 100 + i);
    }
    ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &(rayc_ref){0}), 0);
    rayc_ref_release(&gen);
  }
  rayc_actor_kill(&act, 1);
  rayc_shutdown();
}
END_TEST

/* Items that contain refs the task put: the reader borrows them and reads them after the task. */
START_TEST(test_stream_items_with_refs)
{
  it_connect();
  rayc_arg a[1] = {RAYC_ARG_I64(4)};
  rayc_ref gen = submit_stream("gen_refs", a, 1);
  rayc_ref items[4];
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &items[i]), 1);
  ck_assert_int_eq(rayc_stream_next(&gen, WAIT_MS, &(rayc_ref){0}), 0);
  for (int64_t i = 0; i < 4; i++) {
    rayc_buf b, inner;
    ck_assert_int_eq(rayc_get(&items[i], 1, WAIT_MS, &b), 0);
    ck_assert_uint_eq(b.nrefs, 1);
    ck_assert_msg(rayc_get(&b.refs[0], 1, WAIT_MS, &inner) == 0, "inner ref: %s", rayc_last_error());
    int64_t v;
    memcpy(&v, inner.data, 8);
    ck_assert_int_eq(v, i);
    rayc_buf_release(&inner, 1);
    rayc_buf_release(&b, 1);
    rayc_ref_release(&items[i]);
  }
  rayc_ref_release(&gen);
  int64_t end = mono_ms() + WAIT_MS;
  rayc_ref_counts c;
  while (rayc_ref_counts_get(&c) == 0 && (c.owned || c.borrowed) && mono_ms() < end)
    usleep(50 * 1000);
  ck_assert_msg(!c.owned && !c.borrowed, "owned %zu borrowed %zu", c.owned, c.borrowed);
  rayc_shutdown();
}
END_TEST

START_TEST(test_stream_misuse)
{
  it_connect();
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("yield_outside", NULL, 0, NULL, &r), 0);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, WAIT_MS, &b), 0);
  int64_t v;
  memcpy(&v, b.data, 8);
  ck_assert_int_eq(v, RAYC_EINVALID_ARGUMENT); /* rayc_yield in a task that is not streaming */
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  rayc_ref none = {{0}};
  ck_assert_int_eq(rayc_stream_next(&none, 0, &r), RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(rayc_stream_ready(&none), RAYC_EINVALID_ARGUMENT);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.streaming = 1;
  o.num_returns = 2;
  rayc_ref two[2];
  ck_assert_int_eq(rayc_remote("gen_count", NULL, 0, &o, two), RAYC_EINVALID_ARGUMENT);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("stream");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_stream_in_order_then_end);
  tcase_add_test(tc, test_stream_items_before_the_task_ends);
  tcase_add_test(tc, test_stream_error_after_k_items);
  tcase_add_test(tc, test_stream_large_items_freed);
  tcase_add_test(tc, test_stream_worker_killed_retried);
  tcase_add_test(tc, test_stream_actor_method);
  tcase_add_test(tc, test_stream_items_with_refs);
  tcase_add_test(tc, test_stream_misuse);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
