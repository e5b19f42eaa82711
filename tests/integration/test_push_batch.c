/*
 * Batched pushes (issue 17): an owner with several tasks queued for one leased worker sends them
 * in one PushTasks call. End to end on a real one-CPU head node (one worker, one lease), with the
 * tasks of tests/tasks/test_batch_lib.c, which record every run in a file.
 *
 * Each case first submits a task that holds the only worker (hold, or die_once) and then many
 * more, so they queue at the owner and travel in batches. The cases check what a user would: every
 * result is right; the worker received fewer calls than tasks (rayc_worker_push_counts, read by a
 * task on that worker); a task in a batch that fails with an application error is retried alone
 * (every other task ran exactly once); a worker killed with batches in flight loses nothing (every
 * task completes through retries); cancelling tasks queued on the worker inside a batch works
 * (they never run, and the worker is the one that answered CANCELLED).
 */
#include "itest.h"
#include "itest_sh.h"

#include <signal.h>
#include <sys/stat.h>

enum { NBX = 40 };

static rayc_ref submit(const char *fn, const rayc_arg *args, size_t n, const rayc_task_opts *o)
{
  rayc_ref r;
  int rc = rayc_remote(fn, args, n, o, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return r;
}

/* A fresh directory under the session's temp dir for one case's run files. */
static void case_dir(const char *name, char *out, size_t len)
{
  snprintf(out, len, "%s/%s", it_temp, name);
  ck_assert_msg(mkdir(out, 0700) == 0, "mkdir %s", out);
}

static rayc_ref submit_bx(int64_t i, const char *dir, const rayc_task_opts *o)
{
  rayc_arg a[2] = {RAYC_ARG_VAL(&i, 8), RAYC_ARG_VAL(dir, strlen(dir))};
  return submit("bx", a, 2, o);
}

/* How many times bx(i) ran (lines in dir/runs.<i>). */
static int runs_of(const char *dir, int i)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/runs.%d", dir, i);
  FILE *f = fopen(path, "r");
  int n = 0, ch;
  while (f && (ch = fgetc(f)) != EOF)
    n += ch == '\n';
  if (f)
    fclose(f);
  return n;
}

/* Waits (up to 120 s) for path to exist. */
static void wait_file(const char *path)
{
  for (int i = 0; i < 12000 && access(path, F_OK) != 0; i++)
    usleep(10000);
  ck_assert_msg(access(path, F_OK) == 0, "%s never appeared", path);
}

static void touch(const char *path)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  fclose(f);
}

/* The three int64s {calls, tasks, pid} of a push_counts or hold result. */
static void get_counts(const rayc_ref *r, int64_t v[3])
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 120000, &b);
  ck_assert_msg(rc == 0, "push counts: %s", rayc_last_error());
  ck_assert_int_eq(b.len, 3 * sizeof(int64_t));
  memcpy(v, b.data, 3 * sizeof(int64_t));
  rayc_buf_release(&b, 1);
}

static void check_bx(const rayc_ref *r, int64_t i)
{
  int rc;
  int64_t v = it_get_i64(r, &rc);
  ck_assert_msg(rc == 0, "bx(%lld): %s", (long long)i, rayc_last_error());
  ck_assert_int_eq(v, 3 * i + 1);
}

START_TEST(test_batches_results_and_counts)
{
  enum { N = 200 };
  it_connect();
  char dir[600], gate[700];
  case_dir("results", dir, sizeof(dir));
  snprintf(gate, sizeof(gate), "%s/gate", dir);
  rayc_arg ga = RAYC_ARG_VAL(gate, strlen(gate));
  rayc_ref hold = submit("hold", &ga, 1, NULL);
  rayc_ref *r = malloc(N * sizeof(*r));
  for (int i = 0; i < N; i++)
    r[i] = submit_bx(i, dir, NULL);
  rayc_ref counts = submit("push_counts", NULL, 0, NULL);
  char started[720];
  snprintf(started, sizeof(started), "%s.started", gate);
  wait_file(started);
  touch(gate);
  for (int i = 0; i < N; i++)
    check_bx(&r[i], i);
  int64_t h[3], c[3];
  get_counts(&hold, h);
  get_counts(&counts, c);
  ck_assert_msg(h[2] == c[2], "one CPU, one lease: hold ran in %lld, push_counts in %lld", (long long)h[2],
                (long long)c[2]);
  /* Without batches every call carries one task (calls == tasks). */
  ck_assert_msg(c[1] >= N + 2 && c[0] * 2 < c[1], "the worker got %lld calls for %lld tasks", (long long)c[0],
                (long long)c[1]);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(runs_of(dir, i), 1);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&r[i]);
  free(r);
  rayc_shutdown();
}
END_TEST

START_TEST(test_failed_task_in_batch_retried_alone)
{
  enum { FLAKY = NBX / 2 };
  it_connect();
  char dir[600], gate[700], flaky[700];
  case_dir("retry", dir, sizeof(dir));
  snprintf(gate, sizeof(gate), "%s/gate", dir);
  snprintf(flaky, sizeof(flaky), "%s/flaky", dir);
  rayc_arg ga = RAYC_ARG_VAL(gate, strlen(gate)), fa = RAYC_ARG_VAL(flaky, strlen(flaky));
  rayc_ref hold = submit("hold", &ga, 1, NULL);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.retry_exceptions = 1;
  o.max_retries = 1;
  rayc_ref r[NBX], fr = {{0}};
  for (int i = 0; i < NBX; i++) {
    if (i == FLAKY)
      fr = submit("flaky", &fa, 1, &o); /* fails its first attempt with an application error */
    r[i] = submit_bx(i, dir, NULL);
  }
  char started[720];
  snprintf(started, sizeof(started), "%s.started", gate);
  wait_file(started);
  touch(gate);
  int rc;
  ck_assert_int_eq(it_get_i64(&fr, &rc), 7);
  ck_assert_msg(rc == 0, "flaky: %s", rayc_last_error());
  for (int i = 0; i < NBX; i++)
    check_bx(&r[i], i);
  for (int i = 0; i < NBX; i++) /* the others ran once: only the failed task was retried */
    ck_assert_msg(runs_of(dir, i) == 1, "bx(%d) ran %d times", i, runs_of(dir, i));
  int64_t h[3];
  get_counts(&hold, h);
  rayc_shutdown();
}
END_TEST

START_TEST(test_worker_killed_mid_batch)
{
  it_connect();
  char dir[600], pidfile[700];
  case_dir("kill", dir, sizeof(dir));
  snprintf(pidfile, sizeof(pidfile), "%s/die_once.pid", dir);
  rayc_arg da = RAYC_ARG_VAL(pidfile, strlen(pidfile));
  rayc_ref d = submit("die_once", &da, 1, NULL);
  rayc_ref r[NBX];
  for (int i = 0; i < NBX; i++)
    r[i] = submit_bx(i, dir, NULL);
  wait_file(pidfile);
  FILE *f = fopen(pidfile, "r");
  long pid = 0;
  ck_assert_msg(f && fscanf(f, "%ld", &pid) == 1 && pid > 1, "no pid in %s", pidfile);
  fclose(f);
  ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0); /* the worker dies with batches in flight */
  int rc;
  ck_assert_int_eq(it_get_i64(&d, &rc), 42);
  ck_assert_msg(rc == 0, "die_once: %s", rayc_last_error());
  for (int i = 0; i < NBX; i++)
    check_bx(&r[i], i);
  for (int i = 0; i < NBX; i++)
    ck_assert_msg(runs_of(dir, i) >= 1, "bx(%d) never ran", i);
  rayc_shutdown();
}
END_TEST

/* The {calls, tasks} a counts file of hold holds (-1s while it does not exist yet). */
static void read_counts(const char *path, int64_t v[2])
{
  v[0] = v[1] = -1;
  FILE *f = fopen(path, "r");
  long long c, t;
  if (f && fscanf(f, "%lld %lld", &c, &t) == 2)
    v[0] = c, v[1] = t;
  if (f)
    fclose(f);
}

START_TEST(test_cancel_queued_in_batch)
{
  it_connect();
  char dir[600], gate[700], started[720], counts[720];
  case_dir("cancel", dir, sizeof(dir));
  snprintf(gate, sizeof(gate), "%s/gate", dir);
  snprintf(started, sizeof(started), "%s.started", gate);
  snprintf(counts, sizeof(counts), "%s.counts", gate);
  rayc_arg ga = RAYC_ARG_VAL(gate, strlen(gate));
  rayc_ref hold = submit("hold", &ga, 1, NULL);
  wait_file(started);
  int64_t h[3];
  read_counts(started, h); /* the worker's counts as hold started: no bx among them */
  rayc_ref r[NBX];
  for (int i = 0; i < NBX; i++)
    r[i] = submit_bx(i, dir, NULL);
  /* While hold runs, 8..15 bx are pushed to the worker (CW_MAX_IN_FLIGHT 16, a batch at a time)
   * and wait there: cancel once at least 8 have arrived, so those are cancelled on the worker. */
  int64_t now[2] = {-1, -1};
  for (int i = 0; i < 12000 && now[1] - h[1] < 8; i++) {
    usleep(10000);
    read_counts(counts, now);
  }
  ck_assert_msg(now[1] - h[1] >= 8, "only %lld bx reached the worker in 120 s", (long long)(now[1] - h[1]));
  ck_assert_msg(now[0] - h[0] < now[1] - h[1], "no batch reached the worker (%lld calls for %lld tasks)",
                (long long)(now[0] - h[0]), (long long)(now[1] - h[1]));
  for (int i = 0; i < NBX; i++)
    ck_assert_int_eq(rayc_cancel(&r[i], 0, 0), 0);
  /* rayc_cancel sends CancelTask and returns: let the cancels reach the worker before hold ends,
   * or the next task starts there and is cancelled while running (its run counted, its result
   * CANCELLED). While hold runs no bx can run, so each bx is ready once its cancel is answered. */
  rayc_wait(r, NBX, NBX, 20000, NULL);
  touch(gate);
  get_counts(&hold, h);
  /* Every bx was cancelled and never ran; those queued on the worker were cancelled there, out of
   * the batches they came in. */
  int on_worker = 0;
  for (int i = 0; i < NBX; i++) {
    rayc_buf b;
    int rc = rayc_get(&r[i], 1, 120000, &b);
    ck_assert_msg(rc == RAYC_ECANCELLED, "bx(%d): %d %s", i, rc, rc ? rayc_last_error() : "it ran");
    on_worker += strstr(rayc_last_error(), "worker") != NULL; /* answered by the worker it was queued on */
    ck_assert_msg(runs_of(dir, i) == 0, "bx(%d) ran after it was cancelled", i);
  }
  ck_assert_msg(on_worker >= 8, "only %d of %d tasks were cancelled on the worker", on_worker, NBX);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  /* These cases test what batches do (results, retries, a dead worker, cancels inside a batch),
   * so tasks must reach the worker while hold occupies it: pipeline whatever the functions' run
   * times (by default nothing is pipelined behind hold, whose length is unknown; test_tasks checks
   * that rule). */
  setenv("RAYC_PIPELINE", "any", 1);
  if (it_start("libtest_tasks.so", "--num-cpus 1") != 0) {
    fprintf(stderr, "could not start the head node\n");
    return 1;
  }
  Suite *s = suite_create("push_batch");
  TCase *tc = tcase_create("push_batch");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_batches_results_and_counts);
  tcase_add_test(tc, test_failed_task_in_batch_retried_alone);
  tcase_add_test(tc, test_worker_killed_mid_batch);
  tcase_add_test(tc, test_cancel_queued_in_batch);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
