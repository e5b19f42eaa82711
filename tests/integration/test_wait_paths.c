/*
 * rayc_wait against a real head node (two CPUs): the waiter returns once a ref it waits for is
 * ready, whichever way it became ready (a task's reply, a put, an application error, a cancel, a
 * borrowed ref's owner), and marks the first k ready in input order, while its memo of the refs it
 * last found pending (worker/cw_wait.c) skips their lookups: a ref listed twice, refs moved
 * between calls, and a wait(k=1) loop that takes one ref per call as single_client_wait_1k_refs
 * does. Tasks hold their CPUs with gate(path) (tests/tasks/test_tasks.c) until the test opens them.
 */
#include "itest.h"

#include <pthread.h>
#include <sys/stat.h>

static rayc_ref submit(const char *fn, const rayc_arg *args, size_t n)
{
  rayc_ref r;
  int rc = rayc_remote(fn, args, n, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return r;
}

static void touch_file(const char *path)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  fclose(f);
}

/* gate(name) started (holding a CPU); its path in path. */
static rayc_ref gate_start(const char *name, char *path, size_t len)
{
  char started[700];
  snprintf(path, len, "%s/%s.gate", it_temp, name);
  snprintf(started, sizeof(started), "%s.started", path);
  rayc_arg a = RAYC_ARG_VAL(path, strlen(path));
  rayc_ref r = submit("gate", &a, 1);
  for (int i = 0; i < 6000 && access(started, F_OK) != 0; i++)
    usleep(10000);
  ck_assert_msg(access(started, F_OK) == 0, "gate %s did not start", name);
  return r;
}

/* Something done on another thread 300 ms from now, while the test's thread waits. */
typedef struct {
  pthread_t th;
  const char *gate; /* a gate to open, or */
  rayc_ref cancel;  /* a task to cancel */
  int rc;
} later_t;

static void *later_main(void *arg)
{
  later_t *l = arg;
  usleep(300 * 1000);
  if (l->gate)
    touch_file(l->gate);
  else
    l->rc = rayc_cancel(&l->cancel, 0, 0);
  return NULL;
}

static void later(later_t *l, const char *gate, const rayc_ref *cancel)
{
  *l = (later_t){.gate = gate};
  if (cancel)
    l->cancel = *cancel;
  ck_assert_int_eq(pthread_create(&l->th, NULL, later_main, l), 0);
}

static void later_join(later_t *l)
{
  pthread_join(l->th, NULL);
  ck_assert_msg(l->rc == 0, "rayc_cancel: %s", rayc_last_error());
}

/* rayc_wait(refs, n, k, ms) returns want, with ready[i] set exactly for the indices in marks. */
static void expect_wait(const rayc_ref *refs, size_t n, size_t k, int64_t ms, int want, const char *marks)
{
  int ready[16];
  ck_assert_uint_le(n, 16);
  int rc = rayc_wait(refs, n, k, ms, ready);
  ck_assert_msg(rc == want, "rayc_wait(n %zu, k %zu, %lld ms) = %d, want %d (%s)", n, k, (long long)ms, rc, want,
                rc < 0 ? rayc_last_error() : "");
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(ready[i] == (marks[i] == '1'), "ready[%zu] = %d, want %c (%s)", i, ready[i], marks[i], marks);
}

static void release_all(rayc_ref *refs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    rayc_ref_release(&refs[i]);
}

/* Owned refs, each path that makes one ready: a cancel, a put in the list, a reply (the waiter
 * asleep meanwhile), a ref listed twice, an application error. */
START_TEST(test_wait_each_path)
{
  it_connect();
  char pa[600], pb[600], pc[600];
  rayc_ref ga = gate_start("a", pa, sizeof(pa)), gb = gate_start("b", pb, sizeof(pb));
  int64_t one = 1, two = 2, five = 5;
  rayc_arg a1 = RAYC_ARG_VAL(&one, 8), a2 = RAYC_ARG_VAL(&two, 8), a5 = RAYC_ARG_VAL(&five, 8),
           ae = RAYC_ARG_REF(&ga);
  rayc_ref q1 = submit("add1", &a1, 1), q2 = submit("add1", &a2, 1); /* queued: both CPUs are held */
  rayc_ref e = submit("add", &ae, 1); /* after ga: fails, add takes 2 arguments */

  rayc_ref l1[] = {ga, gb, e, q1, q2, q1};
  expect_wait(l1, 6, 1, 0, 0, "000000"); /* nothing ready: all six remembered as pending */
  expect_wait(l1, 6, 1, 100, 0, "000000");
  later_t l;
  later(&l, NULL, &q2); /* a cancel, while the waiter sleeps */
  expect_wait(l1, 6, 1, 30000, 1, "000010");
  later_join(&l);

  rayc_ref p;
  ck_assert_int_eq(rayc_put(&one, sizeof(one), &p), 0);
  rayc_ref l2[] = {ga, gb, e, q1, p}; /* a put: ready from the start */
  expect_wait(l2, 5, 1, 30000, 1, "00001");

  rayc_ref l3[] = {ga, gb, e, q1, q1};
  later(&l, pb, NULL); /* gb's reply; then q1 runs on its CPU */
  expect_wait(l3, 5, 1, 30000, 1, "01000");
  later_join(&l);
  expect_wait(l3, 5, 3, 30000, 3, "01011");

  /* a ref listed twice while pending: it becomes ready after a ref behind its first place */
  rayc_ref gc = gate_start("c", pc, sizeof(pc));
  rayc_ref r1 = submit("add1", &a5, 1); /* queued behind ga and gc */
  rayc_ref l4[] = {ga, r1, gc, r1};
  expect_wait(l4, 4, 1, 0, 0, "0000");
  later(&l, pc, NULL);
  expect_wait(l4, 4, 3, 30000, 3, "0111");
  later_join(&l);

  rayc_ref l5[] = {e};
  expect_wait(l5, 1, 1, 0, 0, "0");
  later(&l, pa, NULL); /* ga returns, then e runs and fails */
  expect_wait(l5, 1, 1, 30000, 1, "1");
  later_join(&l);
  int rc;
  it_get_i64(&e, &rc);
  ck_assert_msg(rc == RAYC_ETASK_FAILED, "e: %d %s", rc, rayc_last_error());
  ck_assert_int_eq(it_get_i64(&r1, &rc), 6);

  rayc_ref all[] = {ga, gb, gc, e, q1, q2, r1, p};
  release_all(all, 8);
  rayc_shutdown();
}
END_TEST

/* A borrowed ref (owned by the worker that submitted its task) behind a pending owned one: the
 * waiter polls its owner and returns when it is ready, the owned one still pending. */
START_TEST(test_wait_borrowed_behind_pending)
{
  it_connect();
  char pd[600];
  rayc_ref gd = gate_start("d", pd, sizeof(pd));
  int64_t ms = 1000;
  rayc_arg a = RAYC_ARG_VAL(&ms, 8);
  rayc_ref r = submit("borrow_child", &a, 1);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 60000, &b), 0);
  ck_assert_uint_eq(b.nrefs, 1);
  rayc_ref child = b.refs[0];
  rayc_ref_retain(&child);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  rayc_ref l[] = {gd, child};
  expect_wait(l, 2, 1, 0, 0, "00");
  expect_wait(l, 2, 1, 60000, 1, "01");
  touch_file(pd);
  expect_wait(l, 2, 2, 60000, 2, "11");
  release_all(l, 2);
  rayc_shutdown();
}
END_TEST

/* Ray's wait_multiple_refs: wait(k=1) over what is left, take the ready ref, move the last one
 * into its place. Every ref comes out once, ready, and the first ready in input order. */
START_TEST(test_wait_loop_takes_each_once)
{
  it_connect();
  enum { N = 400 };
  rayc_ref refs[N];
  int64_t vals[N], seen[N] = {0};
  int ready[N];
  for (int64_t i = 0; i < N; i++) {
    rayc_arg a = RAYC_ARG_VAL(&i, 8);
    refs[i] = submit("add1", &a, 1);
    vals[i] = i;
  }
  for (size_t left = N; left > 0;) {
    int rc = rayc_wait(refs, left, 1, 60000, ready);
    ck_assert_msg(rc == 1, "rayc_wait with %zu left: %d %s", left, rc, rayc_last_error());
    size_t i = 0, marks = 0;
    while (!ready[i])
      i++;
    for (size_t j = 0; j < left; j++)
      marks += ready[j] != 0;
    ck_assert_uint_eq(marks, 1);
    int64_t got = it_get_i64(&refs[i], &rc);
    ck_assert_msg(rc == 0, "ref %zu: %s", i, rayc_last_error());
    ck_assert_int_eq(got, vals[i] + 1);
    ck_assert_int_eq(seen[vals[i]]++, 0);
    rayc_ref done = refs[i];
    refs[i] = refs[--left];
    vals[i] = vals[left];
    rayc_ref_release(&done);
  }
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(seen[i], 1);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 128M") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("wait_paths");
  TCase *tc = tcase_create("wait_paths");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_wait_each_path);
  tcase_add_test(tc, test_wait_borrowed_behind_pending);
  tcase_add_test(tc, test_wait_loop_takes_each_once);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
