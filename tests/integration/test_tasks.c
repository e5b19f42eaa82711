/*
 * Integration tests of the task model (issue 4) against a real head node: dependency chains and
 * trees, retries after a worker is SIGKILLed, application errors and retry_exceptions, multiple
 * returns, 100,000 queued tasks, and objects freed when their references are released.
 */
#include "itest.h"
#include "itest_sh.h"
#include "object-store/store_client.h"

#include <signal.h>
#include <sys/stat.h>

static rayc_ref submit(const char *fn, const rayc_arg *args, size_t n, const rayc_task_opts *o)
{
  rayc_ref r;
  int rc = rayc_remote(fn, args, n, o, &r);
  ck_assert_msg(rc == 0, "rayc_remote %s: %s", fn, rayc_last_error());
  return r;
}

START_TEST(test_dependency_chain)
{
  it_connect();
  enum { N = 10000 };
  int64_t zero = 0;
  rayc_arg a = RAYC_ARG_VAL(&zero, 8);
  rayc_ref prev = submit("add1", &a, 1, NULL);
  for (int i = 1; i < N; i++) {
    a = (rayc_arg)RAYC_ARG_REF(&prev);
    rayc_ref next = submit("add1", &a, 1, NULL);
    rayc_ref_release(&prev); /* the pending task keeps it alive */
    prev = next;
  }
  int rc;
  ck_assert_int_eq(it_get_i64(&prev, &rc), N);
  ck_assert_int_eq(rc, 0);
  rayc_ref_release(&prev);
  rayc_shutdown();
}
END_TEST

START_TEST(test_fan_out_fan_in)
{
  it_connect();
  enum { LEAVES = 10000 };
  rayc_ref *level = malloc(LEAVES * sizeof(*level));
  for (int64_t i = 0; i < LEAVES; i++) {
    rayc_arg a = RAYC_ARG_VAL(&i, 8);
    level[i] = submit("add1", &a, 1, NULL);
  }
  size_t n = LEAVES, tasks = LEAVES;
  while (n > 1) {
    size_t m = 0;
    for (size_t i = 0; i < n; i += 2, m++) {
      if (i + 1 == n) {
        level[m] = level[i];
        continue;
      }
      rayc_arg a[2] = {RAYC_ARG_REF(&level[i]), RAYC_ARG_REF(&level[i + 1])};
      rayc_ref r = submit("sum", a, 2, NULL);
      rayc_ref_release(&level[i]);
      rayc_ref_release(&level[i + 1]);
      level[m] = r;
      tasks++;
    }
    n = m;
  }
  int rc;
  ck_assert_int_eq(it_get_i64(&level[0], &rc), (int64_t)LEAVES * (LEAVES + 1) / 2);
  ck_assert_int_eq(rc, 0);
  ck_assert_uint_ge(tasks, 19999);
  rayc_ref_release(&level[0]);
  free(level);
  rayc_shutdown();
}
END_TEST

static pid_t wait_for_pid_file(const char *path)
{
  for (int i = 0; i < 3000; i++) {
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) == 1 && pid > 0) {
      fclose(f);
      return pid;
    }
    if (f)
      fclose(f);
    usleep(10000);
  }
  return -1;
}

START_TEST(test_worker_killed_task_retried)
{
  it_connect();
  char path[700];
  snprintf(path, sizeof(path), "%s/die_once.pid", it_temp);
  unlink(path);
  rayc_arg a = RAYC_ARG_VAL(path, strlen(path));
  rayc_ref r = submit("die_once", &a, 1, NULL);
  pid_t pid = wait_for_pid_file(path);
  ck_assert_int_gt(pid, 0);
  ck_assert_int_eq(kill(pid, SIGKILL), 0);
  int rc;
  ck_assert_int_eq(it_get_i64(&r, &rc), 42);
  ck_assert_msg(rc == 0, "get after retry: %s", rayc_last_error());
  rayc_ref_release(&r);

  /* with no retries the failure is reported as WORKER_DIED */
  char path2[720];
  snprintf(path2, sizeof(path2), "%s.2", path);
  unlink(path2);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.max_retries = 0;
  a = (rayc_arg)RAYC_ARG_VAL(path2, strlen(path2));
  r = submit("die_once", &a, 1, &o);
  pid = wait_for_pid_file(path2);
  ck_assert_int_gt(pid, 0);
  kill(pid, SIGKILL);
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_EWORKER_DIED);
  ck_assert_msg(strstr(rayc_last_error(), "die_once"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

START_TEST(test_application_errors)
{
  it_connect();
  char path[700];
  snprintf(path, sizeof(path), "%s/flaky.1", it_temp);
  unlink(path);
  rayc_arg a = RAYC_ARG_VAL(path, strlen(path));
  rayc_ref r = submit("flaky", &a, 1, NULL);
  int rc;
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "flaky: first attempt fails") && strstr(rayc_last_error(), "node"),
                "detail: %s", rayc_last_error());
  rayc_ref_release(&r);

  snprintf(path, sizeof(path), "%s/flaky.2", it_temp);
  unlink(path);
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.retry_exceptions = 1;
  a = (rayc_arg)RAYC_ARG_VAL(path, strlen(path));
  r = submit("flaky", &a, 1, &o);
  ck_assert_int_eq(it_get_i64(&r, &rc), 7);
  ck_assert_int_eq(rc, 0);
  rayc_ref_release(&r);

  /* a task whose argument failed fails with the argument's error, without running */
  snprintf(path, sizeof(path), "%s/flaky.3", it_temp);
  unlink(path);
  a = (rayc_arg)RAYC_ARG_VAL(path, strlen(path));
  rayc_ref bad = submit("flaky", &a, 1, NULL);
  rayc_arg b = RAYC_ARG_REF(&bad);
  r = submit("add1", &b, 1, NULL);
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "flaky"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);
  rayc_ref_release(&bad);
  rayc_shutdown();
}
END_TEST

START_TEST(test_multiple_returns)
{
  it_connect();
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_returns = 5;
  rayc_ref r[5];
  ck_assert_int_eq(rayc_remote("multi", NULL, 0, &o, r), 0);
  for (int i = 0; i < 5; i++) {
    int rc;
    ck_assert_int_eq(it_get_i64(&r[i], &rc), i * 10);
    rayc_ref_release(&r[i]);
  }
  rayc_shutdown();
}
END_TEST

START_TEST(test_100k_noop_tasks)
{
  it_connect();
  /* 100,000 normally; a fifth of that under the sanitizers (make asan sets RAYC_TEST_SLOW), which
   * run each task several times slower */
  const int N = getenv("RAYC_TEST_SLOW") ? 20000 : 100000;
  rayc_ref *refs = malloc((size_t)N * sizeof(*refs));
  for (int i = 0; i < N; i++)
    refs[i] = submit("noop", NULL, 0, NULL);
  ck_assert_int_eq(rayc_wait(refs, N, N, 300000, NULL), N);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&refs[N - 1], 1, 1000, &b), 0);
  ck_assert_uint_eq(b.len, 0);
  rayc_buf_release(&b, 1);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  free(refs);
  rayc_shutdown();
}
END_TEST

START_TEST(test_memory_returns_to_baseline)
{
  it_connect();
  uint64_t base = it_store_used();
  enum { N = 10000, WINDOW = 64 };
  int64_t size = 1 << 20;
  rayc_ref win[WINDOW];
  for (int i = 0; i < N + WINDOW; i++) {
    int slot = i % WINDOW;
    if (i >= WINDOW) {
      rayc_buf b;
      int rc = rayc_get(&win[slot], 1, 60000, &b);
      ck_assert_msg(rc == 0, "get %d: %s", i, rayc_last_error());
      ck_assert_uint_eq(b.len, (size_t)size);
      ck_assert_uint_eq(((const uint8_t *)b.data)[12345], (uint8_t)(12345 + (i - WINDOW)));
      rayc_buf_release(&b, 1);
      rayc_ref_release(&win[slot]);
    }
    if (i < N) {
      int64_t seed = i;
      rayc_arg a[2] = {RAYC_ARG_VAL(&size, 8), RAYC_ARG_VAL(&seed, 8)};
      win[slot] = submit("bytes", a, 2, NULL);
    }
  }
  uint64_t after = it_store_used();
  ck_assert_msg(after == base, "store bytes in use: %llu before, %llu after", (unsigned long long)base,
                (unsigned long long)after);
  rayc_shutdown();
}
END_TEST

START_TEST(test_cancel_queued)
{
  it_connect();
  int64_t ms = 1500, x = 1;
  rayc_arg a = RAYC_ARG_VAL(&ms, 8), b = RAYC_ARG_VAL(&x, 8);
  rayc_ref slow[4], victim, after;
  for (int i = 0; i < 4; i++)
    slow[i] = submit("sleep_ms", &a, 1, NULL);
  victim = submit("add1", &b, 1, NULL);
  after = submit("add1", &b, 1, NULL);
  ck_assert_int_eq(rayc_cancel(&victim, 0, 0), 0);
  int rc;
  it_get_i64(&victim, &rc);
  ck_assert_int_eq(rc, RAYC_ECANCELLED);
  ck_assert_int_eq(it_get_i64(&after, &rc), 2);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(it_get_i64(&slow[i], &rc), 1500);
    rayc_ref_release(&slow[i]);
  }
  rayc_ref_release(&victim);
  rayc_ref_release(&after);
  rayc_shutdown();
}
END_TEST

START_TEST(test_cancel_running)
{
  it_connect();
  char started[700];
  snprintf(started, sizeof(started), "%s/spin.started", it_temp);
  unlink(started);
  rayc_arg sa = RAYC_ARG_STR(started);
  rayc_ref r = submit("spin", &sa, 1, NULL);
  ck_assert_int_gt(wait_for_pid_file(started), 0); /* running now */
  ck_assert_int_eq(rayc_cancel(&r, 0, 0), 0);
  int rc;
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ECANCELLED);
  ck_assert_msg(strstr(rayc_last_error(), "stopped"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);

  /* a task that sees the cancellation and returns a value early still ends CANCELLED */
  unlink(started);
  r = submit("spin_ok", &sa, 1, NULL);
  ck_assert_int_gt(wait_for_pid_file(started), 0);
  ck_assert_int_eq(rayc_cancel(&r, 0, 0), 0);
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ECANCELLED);
  ck_assert_msg(strstr(rayc_last_error(), "returned early"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);

  /* force: the worker running it is killed, and the task is not retried */
  char path[700];
  snprintf(path, sizeof(path), "%s/pid_sleep.1", it_temp);
  unlink(path);
  rayc_arg a = RAYC_ARG_VAL(path, strlen(path));
  r = submit("pid_sleep", &a, 1, NULL);
  pid_t pid = wait_for_pid_file(path);
  ck_assert_int_gt(pid, 0);
  int64_t t0 = 0;
  ck_assert_int_eq(rayc_cancel(&r, 1, 0), 0);
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ECANCELLED);
  for (t0 = 0; t0 < 500 && kill(pid, 0) == 0; t0++)
    usleep(10000);
  ck_assert_msg(kill(pid, 0) != 0, "worker %d still alive after a force cancel", (int)pid);
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

/* rayc_wait(k) over more ready refs than k marks exactly k, the first in input order (Ray's wait). */
START_TEST(test_wait_marks_k)
{
  it_connect();
  enum { N = 100, K = 10 };
  rayc_ref refs[N];
  int ready[N];
  for (int64_t i = 0; i < N; i++) {
    rayc_arg a = RAYC_ARG_VAL(&i, 8);
    refs[i] = submit("add1", &a, 1, NULL);
  }
  ck_assert_int_eq(rayc_wait(refs, N, N, 60000, NULL), N); /* all done */
  ck_assert_int_eq(rayc_wait(refs, N, K, 60000, ready), K);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(ready[i], i < K);
  ck_assert_int_eq(rayc_wait(refs, N, 0, 0, ready), RAYC_EINVALID_ARGUMENT);
  for (int i = 0; i < N; i++)
    rayc_ref_release(&refs[i]);
  rayc_shutdown();
}
END_TEST

/* A put larger than the whole store fails at once with the store's own words (size, capacity),
 * and after the configured wait when the store is merely full. */
START_TEST(test_put_too_large)
{
  setenv("RAYC_OBJECT_STORE_PUT_TIMEOUT_MS", "300", 1);
  it_connect();
  size_t len = (size_t)300 << 20; /* the test store holds 256 MiB */
  char *big = calloc(1, len);
  ck_assert_ptr_nonnull(big);
  rayc_ref r;
  ck_assert_int_eq(rayc_put(big, len, &r), RAYC_EOUT_OF_MEMORY);
  const char *e = rayc_last_error();
  ck_assert_msg(strstr(e, "capacity of 268435456 bytes") && strstr(e, "314572800"), "detail: %s", e);
  ck_assert_msg(strstr(e, "waits up to 300 ms"), "detail: %s", e);
  free(big);
  rayc_shutdown();
  unsetenv("RAYC_OBJECT_STORE_PUT_TIMEOUT_MS");
}
END_TEST

/* Typed arguments and results: RAYC_ARG_I64/F64/STR in, rayc_buf_* and rayc_return_i64 in the task. */
START_TEST(test_typed_args)
{
  it_connect();
  int64_t v = 0;
  rayc_arg args[3] = {RAYC_ARG_I64(40), RAYC_ARG_F64(1.5), RAYC_ARG_STR("x")};
  rayc_ref r = submit("typed", args, 3, NULL);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&r, 1, 60000, &b), 0);
  ck_assert_int_eq(rayc_buf_i64(&b, &v), 0);
  ck_assert_int_eq(v, 42);
  double d;
  ck_assert_int_eq(rayc_buf_f64(&b, &d), 0); /* 8 bytes read as a double: same length, allowed */
  char small[4];
  ck_assert_int_eq(rayc_buf_str(&b, small, sizeof(small)), RAYC_EINVALID_ARGUMENT); /* does not fit */
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);

  rayc_arg wrong[3] = {RAYC_ARG_STR("not a number"), RAYC_ARG_F64(1), RAYC_ARG_STR("x")};
  r = submit("typed", wrong, 3, NULL);
  int rc;
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ETASK_FAILED);
  ck_assert_msg(strstr(rayc_last_error(), "wants (int64"), "detail: %s", rayc_last_error());
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

START_TEST(test_cancel_recursive)
{
  it_connect();
  char path[700];
  snprintf(path, sizeof(path), "%s/child.pid", it_temp);
  unlink(path);
  rayc_arg a = RAYC_ARG_VAL(path, strlen(path));
  rayc_ref r = submit("parent", &a, 1, NULL);
  pid_t child = wait_for_pid_file(path);
  ck_assert_int_gt(child, 0);
  ck_assert_int_eq(rayc_cancel(&r, 1, 1), 0);
  int rc;
  it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, RAYC_ECANCELLED);
  int i;
  for (i = 0; i < 1500 && kill(child, 0) == 0; i++) /* 15 s: a loaded machine */
    usleep(10000);
  ck_assert_msg(kill(child, 0) != 0, "the child task's worker %d is still alive", (int)child);
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

/* Deletes objects from the node's store behind the owner's back: as if their node had lost them. */
static void store_lose(const rayc_ref *r)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/session_latest/sockets/store", it_temp);
  store_client_t *c = NULL;
  ck_assert_int_eq(store_client_connect(path, &c), 0);
  ck_assert_int_eq(store_client_delete(c, r->id, 1), 0);
  ck_assert_int_eq(store_client_contains(c, r->id), 0);
  store_client_destroy(c);
}

static int check_pattern(const rayc_ref *r, size_t n, int seed)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 60000, &b);
  if (rc != 0)
    return rc;
  int ok = b.len == n;
  for (size_t i = 0; ok && i < n; i++)
    ok = ((const uint8_t *)b.data)[i] == (uint8_t)(i + (size_t)seed);
  rayc_buf_release(&b, 1);
  return ok ? 0 : -1;
}

START_TEST(test_lineage_reconstruction)
{
  it_connect();
  int64_t n = 2 << 20, seed = 3;
  rayc_arg a[2] = {RAYC_ARG_VAL(&n, 8), RAYC_ARG_VAL(&seed, 8)};
  rayc_ref base = submit("bytes", a, 2, NULL);
  rayc_arg ra = RAYC_ARG_REF(&base);
  rayc_ref derived = submit("inc_bytes", &ra, 1, NULL);
  ck_assert_int_eq(check_pattern(&base, (size_t)n, 3), 0);
  ck_assert_int_eq(check_pattern(&derived, (size_t)n, 4), 0);

  /* lose the derived object: its task re-runs */
  store_lose(&derived);
  int rc = check_pattern(&derived, (size_t)n, 4);
  ck_assert_msg(rc == 0, "rebuilt object: %d %s", rc, rayc_last_error());

  /* lose both: the argument is rebuilt first, then the task that reads it */
  store_lose(&derived);
  store_lose(&base);
  rc = check_pattern(&derived, (size_t)n, 4);
  ck_assert_msg(rc == 0, "rebuilt chain: %d %s", rc, rayc_last_error());
  ck_assert_int_eq(check_pattern(&base, (size_t)n, 3), 0);

  /* a put object has no lineage: losing it is final, and the error says so */
  uint8_t *data = calloc(1, (size_t)n);
  rayc_ref put;
  ck_assert_int_eq(rayc_put(data, (size_t)n, &put), 0);
  free(data);
  store_lose(&put);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&put, 1, 10000, &b), RAYC_EOBJECT_LOST);
  ck_assert_msg(strstr(rayc_last_error(), "not made by a task"), "detail: %s", rayc_last_error());
  rayc_ref_release(&put);
  rayc_ref_release(&derived);
  rayc_ref_release(&base);
  rayc_shutdown();
}
END_TEST

static void get_str(const rayc_ref *r, char *out, size_t len)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 60000, &b);
  ck_assert_msg(rc == 0, "get: %s", rayc_last_error());
  snprintf(out, len, "%.*s", (int)b.len, (const char *)b.data);
  rayc_buf_release(&b, 1);
}

START_TEST(test_gpu_ids)
{
  it_connect();
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.num_gpus = 1;
  /* Both tasks wait for each other before they answer, so they hold their GPUs at the same time
   * (a lease freed early would take the second task, as Ray's lease reuse does, and see GPU 0 too:
   * the timing-based version of this test failed that way once in CI). */
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/gpu-rendezvous", it_temp);
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  int64_t two = 2;
  rayc_arg a[2] = {RAYC_ARG_VAL(dir, strlen(dir)), RAYC_ARG_VAL(&two, 8)};
  rayc_ref r1 = submit("gpus", a, 2, &o), r2 = submit("gpus", a, 2, &o);
  rayc_ref none = submit("gpus", NULL, 0, NULL);
  char g1[64], g2[64], g0[64];
  get_str(&r1, g1, sizeof(g1));
  get_str(&r2, g2, sizeof(g2));
  get_str(&none, g0, sizeof(g0));
  /* two tasks holding one GPU each at the same time see different devices */
  ck_assert_msg((strcmp(g1, "0") == 0 && strcmp(g2, "1") == 0) || (strcmp(g1, "1") == 0 && strcmp(g2, "0") == 0),
                "CUDA_VISIBLE_DEVICES: '%s' and '%s'", g1, g2);
  ck_assert_str_eq(g0, "");
  rayc_ref_release(&r1);
  rayc_ref_release(&r2);
  rayc_ref_release(&none);
  rayc_shutdown();
}
END_TEST

/* Finds this driver's job id (hex) in `rayc list jobs`: the RUNNING job with our pid. */
static void my_job_hex(char *out, size_t len)
{
  char *text = NULL, pid[32];
  int rc = it_sh(&text, "%s/bin/rayc list jobs --temp-dir %s", it_build, it_temp);
  ck_assert_msg(rc == 0, "rayc list jobs (%d):\n%s", rc, text);
  snprintf(pid, sizeof(pid), " %d ", (int)getpid());
  out[0] = '\0';
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char padded[512];
    snprintf(padded, sizeof(padded), "%s ", line);
    if (strstr(padded, " RUNNING ") && strstr(padded, pid))
      snprintf(out, len, "%.8s", line);
  }
  free(text);
  ck_assert_msg(out[0], "this driver's job is not in rayc list jobs");
}

/* Workers for a driver's job are started when it connects, before it submits anything; its first
 * tasks run on them; they end with the job. */
START_TEST(test_workers_prestarted)
{
  it_connect();
  char job[16], needle[64];
  my_job_hex(job, sizeof(job));
  snprintf(needle, sizeof(needle), "--job-id %s", job);
  int n = 0;
  for (int waited = 0; waited < 20000 && (n = it_count_procs(needle)) < 2; waited += 100)
    usleep(100 * 1000);
  ck_assert_msg(n == 2, "%d workers of job %s before any task (want 2: min(num-cpus 2, max-starting 4))", n, job);
  rayc_ref r = submit("pid", NULL, 0, NULL);
  int rc;
  int64_t pid = it_get_i64(&r, &rc);
  ck_assert_int_eq(rc, 0);
  rayc_ref_release(&r);
  char path[64], cmd[4096] = "";
  snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t len = fread(cmd, 1, sizeof(cmd) - 1, f);
  fclose(f);
  for (size_t i = 0; i < len; i++)
    cmd[i] = cmd[i] ? cmd[i] : ' ';
  ck_assert_msg(strstr(cmd, needle), "the task ran in pid %lld, not a worker of job %s", (long long)pid, job);
  ck_assert_int_eq(it_count_procs(needle), 2); /* no worker was started for it */
  rayc_shutdown();
  for (int waited = 0; waited < 10000 && (n = it_count_procs(needle)) > 0; waited += 100)
    usleep(100 * 1000);
  ck_assert_msg(n == 0, "%d workers of job %s left after the driver left", n, job);
}
END_TEST

static void touch_file(const char *path)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  fclose(f);
}

/* A short task submitted while a long one holds a worker that this driver keeps leased runs at
 * once on the other CPU: it is not pipelined behind the long one to wait for it (worker/cw_push.c
 * pipelines only behind functions known to run short, to workers that keep up). warm_hold: hold
 * ran short three times first, so only its silence tells that it now runs long. */
static void short_not_behind_long(const char *name, int warm_hold)
{
  it_connect();
  char gate[600], warm[600], started[620];
  snprintf(gate, sizeof(gate), "%s/%s.gate", it_temp, name);
  snprintf(warm, sizeof(warm), "%s/%s.warm", it_temp, name);
  snprintf(started, sizeof(started), "%s.started", gate);
  touch_file(warm);
  rayc_arg wa = RAYC_ARG_VAL(warm, strlen(warm)), ga = RAYC_ARG_VAL(gate, strlen(gate));
  int rc;
  rayc_ref w = submit("pid", NULL, 0, NULL); /* pid is known short, and its lease stays held */
  it_get_i64(&w, &rc);
  ck_assert_msg(rc == 0, "pid: %s", rayc_last_error());
  rayc_ref_release(&w);
  rayc_buf b;
  for (int i = 0; warm_hold && i < 3; i++) {
    w = submit("hold", &wa, 1, NULL); /* returns at once: its gate exists */
    ck_assert_msg(rayc_get(&w, 1, 60000, &b) == 0, "hold: %s", rayc_last_error());
    rayc_buf_release(&b, 1);
    rayc_ref_release(&w);
  }
  rayc_ref h = submit("hold", &ga, 1, NULL);
  for (int i = 0; warm_hold && i < 12000 && access(started, F_OK) != 0; i++)
    usleep(10000);
  if (warm_hold)
    usleep(300 * 1000); /* hold has run long enough that its silence counts */
  rayc_ref p = submit("pid", NULL, 0, NULL);
  int64_t ppid = 0;
  rc = rayc_get(&p, 1, 60000, &b); /* hold waits for its gate: p can only be ready on the other worker */
  ck_assert_msg(rc == 0, "the short task waited behind the long one: %d %s", rc, rayc_last_error());
  ck_assert_int_eq(b.len, 8);
  memcpy(&ppid, b.data, 8);
  rayc_buf_release(&b, 1);
  touch_file(gate);
  ck_assert_msg(rayc_get(&h, 1, 120000, &b) == 0 && b.len == 24, "hold: %s", rayc_last_error());
  int64_t hv[3];
  memcpy(hv, b.data, sizeof(hv));
  rayc_buf_release(&b, 1);
  ck_assert_msg(hv[2] != ppid, "hold and the short task ran in one worker (%lld)", (long long)ppid);
  rayc_ref_release(&p);
  rayc_ref_release(&h);
  rayc_shutdown();
}

START_TEST(test_short_task_not_behind_new_long)
{
  short_not_behind_long("new_long", 0);
}
END_TEST

START_TEST(test_short_task_not_behind_silent_worker)
{
  short_not_behind_long("silent", 1);
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --num-gpus 2 --object-store-memory 256M") != 0) {
    fprintf(stderr, "could not start the cluster\n");
    return 2;
  }
  Suite *s = suite_create("tasks");
  TCase *tc = tcase_create("tasks");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_dependency_chain);
  tcase_add_test(tc, test_fan_out_fan_in);
  tcase_add_test(tc, test_worker_killed_task_retried);
  tcase_add_test(tc, test_application_errors);
  tcase_add_test(tc, test_multiple_returns);
  tcase_add_test(tc, test_100k_noop_tasks);
  tcase_add_test(tc, test_memory_returns_to_baseline);
  tcase_add_test(tc, test_cancel_queued);
  tcase_add_test(tc, test_cancel_running);
  tcase_add_test(tc, test_cancel_recursive);
  tcase_add_test(tc, test_wait_marks_k);
  tcase_add_test(tc, test_put_too_large);
  tcase_add_test(tc, test_typed_args);
  tcase_add_test(tc, test_lineage_reconstruction);
  tcase_add_test(tc, test_gpu_ids);
  tcase_add_test(tc, test_workers_prestarted);
  tcase_add_test(tc, test_short_task_not_behind_new_long);
  tcase_add_test(tc, test_short_task_not_behind_silent_worker);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
