/*
 * Batched actor calls (issue 17, session 8): calls queued on one actor handle travel together in
 * one PushTasks call. End to end against a real head node, with TCounter of
 * tests/tasks/test_actors_lib.c.
 *
 * Each case first holds the actor with wait_file(go) so that the calls made after it queue, at
 * the caller and at the worker, and travel in batches; then it creates go. The cases check what
 * a user would: 2,000 async calls return 1..2000 in order, and the worker received far fewer
 * pushes than calls (rayc_worker_push_counts, read by the actor's pushes(); with
 * RAYC_PUSH_BATCH_MAX=1 that assertion fails); a call that fails in the middle of a batch fails
 * alone; an actor SIGKILLed with batches in flight (max_restarts 1, max_task_retries 1) loses no
 * call and runs them again in order; a call cancelled while queued in a batch on the worker (and
 * one still queued at the caller) is cancelled alone, its batch-mates run once each, in order;
 * calls held back at the caller for a batch are pushed once the caller waits for one of them.
 */
#include "itest.h"

#include <signal.h>
#include <sys/stat.h>

static rayc_actor create(const rayc_actor_opts *o)
{
  rayc_actor a;
  int rc = rayc_actor_create("TCounter", NULL, 0, o, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create: %s", rayc_last_error());
  return a;
}

static rayc_ref call(const rayc_actor *a, const char *m, const rayc_arg *args, size_t n)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, m, args, n, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call %s: %s", m, rayc_last_error());
  return r;
}

static int64_t call_ok(const rayc_actor *a, const char *m)
{
  rayc_ref r = call(a, m, NULL, 0);
  int rc;
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "%s: %s", m, rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

/* The worker's {calls, tasks} push counts, through a's pushes(). */
static void pushes(const rayc_actor *a, int64_t v[2])
{
  rayc_ref r = call(a, "pushes", NULL, 0);
  rayc_buf b;
  int rc = rayc_get(&r, 1, 120000, &b);
  ck_assert_msg(rc == 0, "pushes: %s", rayc_last_error());
  ck_assert_int_eq(b.len, 2 * sizeof(int64_t));
  memcpy(v, b.data, 2 * sizeof(int64_t));
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
}

/* go: a fresh path under the session's temp dir (not created yet). */
static void go_path(const char *name, char *out, size_t len)
{
  snprintf(out, len, "%s/%s.go", it_temp, name);
}

static rayc_ref hold(const rayc_actor *a, const char *go)
{
  rayc_arg arg = RAYC_ARG_VAL(go, strlen(go));
  return call(a, "wait_file", &arg, 1);
}

static void touch(const char *path)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  fclose(f);
}

/* Gets r (an int64) and expects want. */
static void expect(const rayc_ref *r, int64_t want, const char *what, int i)
{
  int rc;
  int64_t v = it_get_i64(r, &rc);
  ck_assert_msg(rc == 0, "%s %d: %s", what, i, rayc_last_error());
  ck_assert_msg(v == want, "%s %d returned %lld, expected %lld", what, i, (long long)v, (long long)want);
}

START_TEST(test_order_2000_batched)
{
  enum { N = 2000 };
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  rayc_actor a = create(&o);
  int64_t before[2], after[2];
  pushes(&a, before);
  char go[700];
  go_path("order", go, sizeof(go));
  rayc_ref h = hold(&a, go);
  rayc_ref *refs = malloc(N * sizeof(*refs));
  for (int i = 0; i < N; i++)
    refs[i] = call(&a, "incr", NULL, 0);
  touch(go);
  expect(&h, 0, "wait_file", 0);
  for (int i = 0; i < N; i++) {
    expect(&refs[i], i + 1, "incr", i);
    rayc_ref_release(&refs[i]);
  }
  pushes(&a, after);
  int64_t calls = after[0] - before[0], tasks = after[1] - before[1];
  ck_assert_msg(tasks == N + 2, "the worker received %lld actor calls, expected %d", (long long)tasks, N + 2);
  ck_assert_msg(calls * 3 <= tasks, "%lld calls were pushed in %lld PushTask/PushTasks calls: not batched",
                (long long)tasks, (long long)calls);
  rayc_ref_release(&h);
  free(refs);
  rayc_shutdown();
}
END_TEST

/* hold, then 4 calls that go alone while the actor is busy, then 8 that go in one batch with a
 * failing call in the middle. */
START_TEST(test_failure_in_batch_fails_alone)
{
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  rayc_actor a = create(&o);
  char go[700];
  go_path("fail", go, sizeof(go));
  rayc_ref h = hold(&a, go), refs[12];
  for (int i = 0; i < 12; i++)
    refs[i] = call(&a, i == 7 ? "fail" : "incr", NULL, 0);
  touch(go);
  expect(&h, 0, "wait_file", 0);
  for (int i = 0, want = 1; i < 12; i++) {
    if (i == 7) {
      int rc;
      it_get_i64(&refs[i], &rc);
      ck_assert_msg(rc == RAYC_ETASK_FAILED, "fail: %d (%s)", rc, rayc_last_error());
      ck_assert_msg(strstr(rayc_last_error(), "TCounter.fail: as asked"), "fail's error: %s", rayc_last_error());
    } else {
      expect(&refs[i], want++, "incr", i);
    }
    rayc_ref_release(&refs[i]);
  }
  ck_assert_int_eq(call_ok(&a, "get"), 11);
  rayc_ref_release(&h);
  rayc_shutdown();
}
END_TEST

START_TEST(test_sigkill_mid_batch_loses_nothing)
{
  enum { N = 40 };
  it_connect();
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_restarts = 1;
  o.max_task_retries = 1;
  rayc_actor a = create(&o);
  int64_t pid = call_ok(&a, "pid");
  char go[700];
  go_path("kill", go, sizeof(go));
  rayc_ref h = hold(&a, go), refs[N];
  for (int i = 0; i < N; i++)
    refs[i] = call(&a, "incr", NULL, 0);
  ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
  touch(go); /* for the retried wait_file, in the restarted actor */
  expect(&h, 0, "wait_file", 0);
  for (int i = 0; i < N; i++) { /* none had run: all run again, in order, in the new instance */
    expect(&refs[i], i + 1, "incr", i);
    rayc_ref_release(&refs[i]);
  }
  ck_assert_int_ne(call_ok(&a, "pid"), pid);
  rayc_ref_release(&h);
  rayc_shutdown();
}
END_TEST

/* Two sharing actors in one process: b answers pushes() while a is held. */
static void shared_pair(rayc_actor *a, rayc_actor *b)
{
  enum { M = 6 };
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.share_worker = 1;
  rayc_actor v[M];
  int64_t pid[M];
  for (int i = 0; i < M; i++) {
    v[i] = create(&o);
    pid[i] = call_ok(&v[i], "pid");
    for (int j = 0; j < i; j++)
      if (pid[j] == pid[i]) {
        *a = v[j], *b = v[i];
        return;
      }
  }
  ck_abort_msg("%d sharing actors landed in %d processes", M, M);
}

/* hold a, then 4 calls that go alone, 8 in one batch (the 9th call is cancelled once the batch is
 * queued on the worker), and 3 more still queued at the caller (the 14th is cancelled there). */
START_TEST(test_cancel_queued_call_in_batch)
{
  enum { N = 15, IN_BATCH = 8, AT_CALLER = 13 };
  it_connect();
  rayc_actor a, b;
  shared_pair(&a, &b);
  int64_t c0[2], c[2];
  pushes(&b, c0);
  char go[700];
  go_path("cancel", go, sizeof(go));
  rayc_ref h = hold(&a, go), refs[N];
  for (int i = 0; i < N; i++)
    refs[i] = call(&a, "incr", NULL, 0);
  int polls = 1;
  for (int i = 0; i < 12000; i++, polls++) { /* until the worker has the 4 single pushes and the batch */
    pushes(&b, c);
    if (c[1] - c0[1] >= 1 + 12 + polls)
      break;
    usleep(10000);
  }
  ck_assert_msg(c[1] - c0[1] >= 1 + 12 + polls, "the worker received %lld calls, expected %d",
                (long long)(c[1] - c0[1] - polls), 13);
  ck_assert_msg((c[1] - c0[1]) - (c[0] - c0[0]) >= IN_BATCH - 1, "%lld calls came in %lld pushes: no batch",
                (long long)(c[1] - c0[1]), (long long)(c[0] - c0[0]));
  ck_assert_int_eq(rayc_cancel(&refs[IN_BATCH], 0, 0), 0);
  ck_assert_int_eq(rayc_cancel(&refs[AT_CALLER], 0, 0), 0);
  int rc;
  it_get_i64(&refs[AT_CALLER], &rc); /* at once: the actor is still held */
  ck_assert_msg(rc == RAYC_ECANCELLED, "the call cancelled at the caller: %d (%s)", rc, rayc_last_error());
  touch(go);
  expect(&h, 0, "wait_file", 0);
  for (int i = 0, want = 1; i < N; i++) {
    if (i == IN_BATCH || i == AT_CALLER) {
      it_get_i64(&refs[i], &rc);
      ck_assert_msg(rc == RAYC_ECANCELLED, "cancelled call %d: %d (%s)", i, rc, rayc_last_error());
    } else {
      expect(&refs[i], want++, "incr", i);
    }
    rayc_ref_release(&refs[i]);
  }
  ck_assert_int_eq(call_ok(&a, "get"), N - 2);
  rayc_ref_release(&h);
  rayc_shutdown();
}
END_TEST

/* Calls held back at the caller for a whole batch (fewer than a batch queued, more than half a
 * batch in flight) are pushed once the caller waits for one of them (rayc_get), not only once
 * the actor has answered every call before them; a get of another actor's result leaves them
 * held. Hold a; 4 calls go alone, 8 in a batch, the last 3 are held; a get of the last one times
 * out (a is held) but pushes them: the worker has all 15 before a runs any. Fails without
 * cw_actors_flush: "12 of 15 calls reached the worker". Then they all run once, in order. */
START_TEST(test_get_pushes_held_calls)
{
  enum { N = 15, BEFORE_HELD = 12 };
  it_connect();
  rayc_actor a, b;
  shared_pair(&a, &b);
  int64_t c0[2], c[2];
  pushes(&b, c0);
  char go[700];
  go_path("held", go, sizeof(go));
  rayc_ref h = hold(&a, go), refs[N];
  for (int i = 0; i < N; i++)
    refs[i] = call(&a, "incr", NULL, 0);
  int polls = 1;
  for (int i = 0; i < 12000; i++, polls++) { /* the 4 single pushes and the batch are there */
    pushes(&b, c);
    if (c[1] - c0[1] >= 1 + BEFORE_HELD + polls)
      break;
    usleep(10000);
  }
  pushes(&b, c); /* b's result: a's held calls stay held */
  polls++;
  ck_assert_msg(c[1] - c0[1] == 1 + BEFORE_HELD + polls, "%lld of %d calls reached the worker before the get",
                (long long)(c[1] - c0[1] - polls - 1), N);
  rayc_buf buf;
  ck_assert_int_eq(rayc_get(&refs[N - 1], 1, 200, &buf), RAYC_ETIMEOUT); /* a is held: nothing ran */
  pushes(&b, c);
  polls++;
  ck_assert_msg(c[1] - c0[1] == 1 + N + polls, "%lld of %d calls reached the worker", (long long)(c[1] - c0[1] - polls - 1),
                N);
  touch(go);
  expect(&h, 0, "wait_file", 0);
  for (int i = 0; i < N; i++) {
    expect(&refs[i], i + 1, "incr", i);
    rayc_ref_release(&refs[i]);
  }
  rayc_ref_release(&h);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 256M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("actor_batch");
  TCase *tc = tcase_create("actor_batch");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_order_2000_batched);
  tcase_add_test(tc, test_failure_in_batch_fails_alone);
  tcase_add_test(tc, test_sigkill_mid_batch_loses_nothing);
  tcase_add_test(tc, test_cancel_queued_call_in_batch);
  tcase_add_test(tc, test_get_pushes_held_calls);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
