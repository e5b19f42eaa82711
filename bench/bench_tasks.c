/*
 * bench_tasks: the task and object metrics of `make bench`, measured through the public API
 * (rayc.h) the way Ray's `ray microbenchmark` (python/ray/_private/ray_perf.py) measures them,
 * under the names of ../shared/BENCH.md.
 *
 *   RAYC_ADDRESS=HOST:PORT bench_tasks METRIC [REPS]
 *   bench_tasks head_start RAYC_BIN TEMP_DIR            (one repetition; starts its own head)
 *
 * Each repetition prints one line `rep NAME VALUE UNIT` (a metric may print several names, e.g.
 * the p50 and p99 latencies); a failure prints `error NAME message` and ends the metric with exit
 * status 1. bench/run-bench starts the cluster, runs each metric in its own process and turns the
 * repetitions into median, min and max. A repetition lasts about BENCH_REP_SECONDS (default 1).
 * The task library is $RAYC_CODE_PATH, else ../lib/libbench_tasks.so next to this program.
 *
 * multi_client_tasks_async runs 4 submitters as separate driver processes (this program with
 * `--child-submit N`), started once and released together for each repetition through pipes; the
 * rate is all their tasks over the span from the first start to the last finish (CLOCK_MONOTONIC
 * is shared by every process).
 */
#include <rayc.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum {
  GET_TIMEOUT_MS = 120000,
  BATCH = 1000,         /* Ray's batch of tasks in flight */
  MULTI_CLIENTS = 4,    /* Ray's m */
  MULTI_TASKS = 10000,  /* Ray's n per submitter */
  LATENCY_TASKS = 2000, /* per repetition */
};

static double rep_seconds = 1.0;
static const char *metric_name;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t env_i64(const char *name, int64_t dflt)
{
  const char *v = getenv(name);
  return v && *v ? strtoll(v, NULL, 10) : dflt;
}

static void report(const char *name, double value, const char *unit)
{
  printf("rep %s %.6g %s\n", name, value, unit);
  fflush(stdout);
}

/* Prints the error line for the current metric and returns rc (negative). */
static int fail(int rc, const char *what)
{
  printf("error %s %s: %s (%s)\n", metric_name, what, rayc_strerror(rc), rayc_last_error());
  fflush(stdout);
  return rc < 0 ? rc : -1;
}

static int noop(rayc_ref *out)
{
  return rayc_remote("bench_noop", NULL, 0, NULL, out);
}

static void release_refs(rayc_ref *refs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    rayc_ref_release(&refs[i]);
}

/* Gets n refs (releasing the buffers and the refs); 0 or the error, already printed. */
static int get_release(rayc_ref *refs, size_t n)
{
  rayc_buf *bufs = calloc(n ? n : 1, sizeof(*bufs));
  int rc = rayc_get(refs, n, GET_TIMEOUT_MS, bufs);
  if (rc == 0)
    rayc_buf_release(bufs, n);
  release_refs(refs, n);
  free(bufs);
  return rc == 0 ? 0 : fail(rc, "rayc_get");
}

/* Submits n no-op tasks into refs; on failure releases what was submitted. */
static int submit_noops(rayc_ref *refs, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    int rc = noop(&refs[i]);
    if (rc != 0) {
      release_refs(refs, i);
      return fail(rc, "rayc_remote");
    }
  }
  return 0;
}

static int batch_noops(size_t n)
{
  rayc_ref *refs = malloc(n * sizeof(*refs));
  int rc = submit_noops(refs, n);
  if (rc == 0)
    rc = get_release(refs, n);
  free(refs);
  return rc;
}

/* ---- tasks ---- */

static int m_tasks_sync(void)
{
  double t0 = now_s(), t;
  long n = 0;
  do {
    rayc_ref r;
    int rc = noop(&r);
    if (rc != 0)
      return fail(rc, "rayc_remote");
    if ((rc = get_release(&r, 1)) != 0)
      return rc;
    n++;
  } while ((t = now_s() - t0) < rep_seconds);
  report("single_client_tasks_sync", (double)n / t, "tasks/s");
  return 0;
}

/* Batches of 1,000 tasks in flight, each batch fetched whole: reported both as tasks/s
 * (single_client_tasks_async) and as batches/s (single_client_tasks_and_get_batch). */
static int run_batches(const char *name, int per_batch)
{
  double t0 = now_s(), t;
  long batches = 0;
  do {
    int rc = batch_noops(BATCH);
    if (rc != 0)
      return rc;
    batches++;
  } while ((t = now_s() - t0) < rep_seconds);
  report(name, (double)batches * (per_batch ? 1 : BATCH) / t, per_batch ? "batches/s" : "tasks/s");
  return 0;
}

static int m_tasks_async(void)
{
  return run_batches("single_client_tasks_async", 0);
}

/* ---- placement groups ---- */

/* Ray's placement_group_create_removal (ray_perf.py): 100 one-bundle groups of {custom: 0.001}
 * created, then all waited for, then all removed; groups/s. The cluster has {custom: 100}
 * (bench/run-bench starts it with --resources). */
enum { PG_PER_ROUND = 100 };

static int m_pg_create_removal(void)
{
  static const rayc_resource custom[] = {{"custom", 0.001}};
  rayc_bundle b = {.resources = custom, .nresources = 1};
  rayc_placement_group pgs[PG_PER_ROUND];
  double t0 = now_s(), t;
  long n = 0;
  do {
    for (int i = 0; i < PG_PER_ROUND; i++) {
      int rc = rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, &pgs[i]);
      if (rc != 0)
        return fail(rc, "rayc_placement_group_create");
    }
    for (int i = 0; i < PG_PER_ROUND; i++) {
      int rc = rayc_placement_group_wait(&pgs[i], 30000);
      if (rc != 0)
        return fail(rc, "rayc_placement_group_wait");
    }
    for (int i = 0; i < PG_PER_ROUND; i++) {
      int rc = rayc_placement_group_remove(&pgs[i]);
      if (rc != 0)
        return fail(rc, "rayc_placement_group_remove");
    }
    n += PG_PER_ROUND;
  } while ((t = now_s() - t0) < rep_seconds);
  report("placement_group_create/removal", (double)n / t, "/s");
  return 0;
}

/* Ours (the row's shape before session 9): one 1-bundle {CPU: 1} group at a time created, waited
 * for and removed, so its rate is one over the latency of those calls; groups/s. */
static int m_pg_serial(void)
{
  static const rayc_resource cpu1[] = {{"CPU", 1}};
  rayc_bundle b = {.resources = cpu1, .nresources = 1};
  double t0 = now_s(), t;
  long n = 0;
  do {
    rayc_placement_group pg;
    int rc = rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, &pg);
    if (rc != 0)
      return fail(rc, "rayc_placement_group_create");
    if ((rc = rayc_placement_group_wait(&pg, 30000)) != 0)
      return fail(rc, "rayc_placement_group_wait");
    if ((rc = rayc_placement_group_remove(&pg)) != 0)
      return fail(rc, "rayc_placement_group_remove");
    n++;
  } while ((t = now_s() - t0) < rep_seconds);
  report("placement_group_create_wait_remove_serial", (double)n / t, "/s");
  return 0;
}

static int m_tasks_and_get_batch(void)
{
  return run_batches("single_client_tasks_and_get_batch", 1);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int m_task_latency(void)
{
  static double lat[LATENCY_TASKS];
  for (int i = 0; i < LATENCY_TASKS; i++) {
    rayc_ref r;
    double t0 = now_s();
    int rc = noop(&r);
    if (rc != 0)
      return fail(rc, "rayc_remote");
    if ((rc = get_release(&r, 1)) != 0)
      return rc;
    lat[i] = (now_s() - t0) * 1e6;
  }
  qsort(lat, LATENCY_TASKS, sizeof(lat[0]), cmp_double);
  report("task_latency_sync_p50_us", lat[LATENCY_TASKS / 2], "us");
  report("task_latency_sync_p99_us", lat[LATENCY_TASKS * 99 / 100], "us");
  return 0;
}

/* Ray's wait_multiple_refs: 1,000 tasks, then ray.wait(num_returns=1) until none is left; one
 * operation is the whole loop. */
static int wait_1k_once(rayc_ref *refs, int *ready)
{
  int rc = submit_noops(refs, BATCH);
  if (rc != 0)
    return rc;
  for (size_t left = BATCH; left > 0;) {
    rc = rayc_wait(refs, left, 1, GET_TIMEOUT_MS, ready);
    if (rc < 1) {
      release_refs(refs, left);
      return fail(rc < 0 ? rc : RAYC_ETIMEOUT, "rayc_wait");
    }
    size_t i = 0;
    while (!ready[i])
      i++;
    rayc_ref done = refs[i];
    refs[i] = refs[--left];
    rayc_ref_release(&done);
  }
  return 0;
}

static int m_wait_1k_refs(void)
{
  rayc_ref refs[BATCH];
  int ready[BATCH];
  double t0 = now_s(), t;
  long ops = 0;
  do {
    int rc = wait_1k_once(refs, ready);
    if (rc != 0)
      return rc;
    ops++;
  } while ((t = now_s() - t0) < rep_seconds);
  report("single_client_wait_1k_refs", (double)ops / t, "ops/s");
  return 0;
}

/* ---- objects ---- */

/* Puts (and releases) objects of len bytes for one repetition; reports calls/s or GB/s. */
static int run_puts(const char *name, size_t len, int gigabytes)
{
  static int warm;
  uint8_t *data = malloc(len ? len : 1);
  memset(data, 1, len);
  rayc_ref r0;
  if (!warm++ && rayc_put(data, len, &r0) == 0) /* warm-up: the store's pages get mapped once */
    rayc_ref_release(&r0);
  long n = 0, mask = len >= (1u << 20) ? 0 : 63; /* read the clock every 64 small puts */
  double t0 = now_s(), t;
  do {
    rayc_ref r;
    int rc = rayc_put(data, len, &r);
    if (rc != 0) {
      free(data);
      return fail(rc, "rayc_put");
    }
    rayc_ref_release(&r);
    n++;
  } while ((n & mask) != 0 || (t = now_s() - t0) < rep_seconds || (gigabytes && n < 3));
  free(data);
  if (gigabytes)
    report(name, (double)n * (double)len / 1e9 / t, "GB/s");
  else
    report(name, (double)n / t, "calls/s");
  return 0;
}

static int m_put_small(void)
{
  return run_puts("single_client_put_calls_Plasma_Store", sizeof(int64_t), 0);
}

static int m_put_store_backed(void)
{
  return run_puts("single_client_put_calls_store_backed", 200 * 1024, 0);
}

static int m_put_gigabytes(void)
{
  return run_puts("single_client_put_gigabytes", (size_t)env_i64("BENCH_PUT_BYTES", 200000000), 1);
}

static int m_get_small(void)
{
  int64_t zero = 0;
  rayc_ref r;
  int rc = rayc_put(&zero, sizeof(zero), &r);
  if (rc != 0)
    return fail(rc, "rayc_put");
  double t0 = now_s(), t;
  long n = 0;
  do {
    rayc_buf b;
    if ((rc = rayc_get(&r, 1, GET_TIMEOUT_MS, &b)) != 0) {
      rayc_ref_release(&r);
      return fail(rc, "rayc_get");
    }
    rayc_buf_release(&b, 1);
    n++;
  } while ((n & 63) != 0 || (t = now_s() - t0) < rep_seconds);
  rayc_ref_release(&r);
  report("single_client_get_calls_Plasma_Store", (double)n / t, "calls/s");
  return 0;
}

/* One round of Ray's multi-client puts: 10 tasks, each putting count objects of size bytes. */
static int put_round(int64_t count, int64_t size)
{
  rayc_ref refs[10];
  rayc_arg args[2] = {RAYC_ARG_VAL(&count, sizeof(count)), RAYC_ARG_VAL(&size, sizeof(size))};
  for (size_t i = 0; i < 10; i++) {
    int rc = rayc_remote("bench_put", args, 2, NULL, &refs[i]);
    if (rc != 0) {
      release_refs(refs, i);
      return fail(rc, "rayc_remote");
    }
  }
  return get_release(refs, 10);
}

static int run_put_rounds(const char *name, int64_t count, int64_t size, int gigabytes)
{
  static int warm;
  int rc = warm++ ? 0 : put_round(count, size); /* warm-up: workers leased, source buffers touched */
  double t0 = now_s(), t;
  long rounds = 0;
  while (rc == 0) {
    if ((rc = put_round(count, size)) != 0)
      break;
    rounds++;
    if ((t = now_s() - t0) >= rep_seconds) {
      double puts = (double)rounds * 10 * (double)count;
      report(name, gigabytes ? puts * (double)size / 1e9 / t : puts / t, gigabytes ? "GB/s" : "calls/s");
      break;
    }
  }
  return rc;
}

static int m_multi_put_small(void)
{
  return run_put_rounds("multi_client_put_calls_Plasma_Store", 100, sizeof(int64_t), 0);
}

static int m_multi_put_gigabytes(void)
{
  return run_put_rounds("multi_client_put_gigabytes", 10, env_i64("BENCH_MULTI_PUT_BYTES", 16000000), 1);
}

/* ---- queues ---- */

/* One driver submits N no-op tasks (BENCH_QUEUED_TASKS, default 1,000,000) and gets them all. */
static int m_queued_tasks(void)
{
  size_t n = (size_t)env_i64("BENCH_QUEUED_TASKS", 1000000), chunk = 10000;
  rayc_ref *refs = malloc(n * sizeof(*refs));
  double t0 = now_s();
  int rc = submit_noops(refs, n);
  double submitted = now_s() - t0;
  for (size_t i = 0; rc == 0 && i < n; i += chunk)
    rc = get_release(refs + i, n - i < chunk ? n - i : chunk);
  if (rc != 0) {
    free(refs);
    return rc; /* get_release released the failed chunk; the rest leak until exit */
  }
  double t = now_s() - t0;
  char name[64];
  if (n == 1000000)
    snprintf(name, sizeof(name), "queued_tasks_1m_seconds");
  else
    snprintf(name, sizeof(name), "queued_tasks_%zuk_seconds", n / 1000);
  report(name, t, "s");
  report("queued_tasks_submit_per_s", (double)n / submitted, "tasks/s");
  free(refs);
  return 0;
}

static long vm_rss_bytes(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kb * 1024;
}

/* Driver RSS growth per queued task: N tasks (BENCH_QUEUED_RSS_TASKS, default 100,000) that
 * depend on the result of a long sleep, so they are all queued in the driver and none can run.
 * The refs array is allocated and touched before the first reading. The process ends with the
 * tasks still queued (rayc_shutdown fails them; the raylet kills the sleeping worker). */
static int m_driver_bytes(void)
{
  size_t n = (size_t)env_i64("BENCH_QUEUED_RSS_TASKS", 100000);
  rayc_ref *refs = malloc(n * sizeof(*refs)), blocker;
  memset(refs, 0, n * sizeof(*refs));
  int64_t ms = 600000;
  rayc_arg sleep_arg = RAYC_ARG_VAL(&ms, sizeof(ms));
  int rc = rayc_remote("bench_sleep", &sleep_arg, 1, NULL, &blocker);
  if (rc != 0) {
    free(refs);
    return fail(rc, "rayc_remote bench_sleep");
  }
  rayc_arg dep = RAYC_ARG_REF(&blocker);
  for (int i = 0; i < 1000 && rc == 0; i++) /* warm the allocator's arenas and the object table */
    if ((rc = rayc_remote("bench_noop", &dep, 1, NULL, &refs[i])) == 0)
      rayc_ref_release(&refs[i]);
  long before = vm_rss_bytes();
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = rayc_remote("bench_noop", &dep, 1, NULL, &refs[i]);
  if (rc != 0) {
    free(refs);
    return fail(rc, "rayc_remote");
  }
  long after = vm_rss_bytes();
  free(refs); /* the tasks stay queued: rayc_shutdown() fails them */
  if (before < 0 || after < 0)
    return fail(RAYC_EIO, "reading VmRSS from /proc/self/status");
  report("driver_bytes_per_queued_task", (double)(after - before) / (double)n, "B");
  return 0;
}

/* ---- several submitters ---- */

typedef struct child {
  pid_t pid;
  FILE *to, *from;
} child_t;

static int child_spawn(child_t *c, const char *self, int ntasks)
{
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) /* other submitters must not inherit them */
    return -errno;
  char num[32], *argv[] = {(char *)self, (char *)"--child-submit", num, NULL};
  snprintf(num, sizeof(num), "%d", ntasks);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  int rc = posix_spawn(&c->pid, self, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  c->to = fdopen(in[1], "w");
  c->from = fdopen(out[0], "r");
  return rc == 0 ? 0 : -rc;
}

/* A submitter: connects, warms up, says "ready", then for each "go" submits its tasks, gets them
 * all and answers "START END" (CLOCK_MONOTONIC seconds), or "error ...". */
static int child_submit(int ntasks)
{
  int rc = rayc_init(NULL);
  if (rc == 0)
    rc = batch_noops(100);
  printf(rc == 0 ? "ready\n" : "error %s\n", rayc_last_error());
  fflush(stdout);
  char line[64];
  while (rc == 0 && fgets(line, sizeof(line), stdin) && strncmp(line, "go", 2) == 0) {
    double t0 = now_s();
    rc = batch_noops((size_t)ntasks);
    if (rc == 0)
      printf("%.9f %.9f\n", t0, now_s());
    fflush(stdout);
  }
  rayc_shutdown();
  return rc == 0 ? 0 : 1;
}

static int multi_round(child_t *kids, int nkids, int ntasks)
{
  for (int i = 0; i < nkids; i++) {
    fputs("go\n", kids[i].to);
    fflush(kids[i].to);
  }
  double first = 1e300, last = 0;
  for (int i = 0; i < nkids; i++) {
    char line[512] = "";
    double a, b;
    if (!fgets(line, sizeof(line), kids[i].from) || sscanf(line, "%lf %lf", &a, &b) != 2) {
      printf("error multi_client_tasks_async submitter %d: %s", i, line[0] ? line : "no answer\n");
      return -1;
    }
    first = a < first ? a : first;
    last = b > last ? b : last;
  }
  report("multi_client_tasks_async", (double)nkids * ntasks / (last - first), "tasks/s");
  return 0;
}

static int m_multi_tasks(const char *self, int reps)
{
  child_t kids[MULTI_CLIENTS];
  int nkids = 0, rc = 0, ntasks = (int)env_i64("BENCH_MULTI_TASKS", MULTI_TASKS);
  char line[512] = "";
  for (; nkids < MULTI_CLIENTS && rc == 0; nkids++)
    rc = child_spawn(&kids[nkids], self, ntasks);
  for (int i = 0; i < nkids && rc == 0; i++)
    if (!fgets(line, sizeof(line), kids[i].from) || strncmp(line, "ready", 5) != 0) {
      printf("error multi_client_tasks_async submitter %d did not start: %s", i, line);
      rc = -1;
    }
  for (int r = 0; r < reps && rc == 0; r++)
    rc = multi_round(kids, nkids, ntasks);
  for (int i = 0; i < nkids; i++) {
    fclose(kids[i].to); /* EOF: the submitter shuts down */
    fclose(kids[i].from);
    waitpid(kids[i].pid, NULL, 0);
  }
  return rc;
}

/* ---- objects containing refs (borrowing) ---- */

/* Gets r (whose object holds nrefs refs) repeatedly for a repetition; reports gets/s as name. */
static int get_containing_loop(const char *name, const rayc_ref *r, size_t nrefs)
{
  rayc_buf b;
  int rc = 0;
  long gets = 0;
  double t0 = now_s(), t;
  while (rc == 0 && (t = now_s() - t0) < rep_seconds) {
    rc = rayc_get(r, 1, GET_TIMEOUT_MS, &b);
    if (rc != 0)
      return fail(rc, "rayc_get");
    if (b.nrefs != nrefs) {
      printf("error %s the object holds %zu refs, not %zu\n", metric_name, b.nrefs, nrefs);
      rayc_buf_release(&b, 1);
      return -1;
    }
    rayc_buf_release(&b, 1);
    gets++;
  }
  report(name, (double)gets / (now_s() - t0), "gets/s");
  return 0;
}

/* Ray's single_client_get_object_containing_10k_refs: a task puts 10,000 small objects and returns
 * a value containing their refs; the driver (the result's owner, their borrower) gets it again and
 * again. Also (ours) the same through a borrower's get: the 10,000 refs inside an object the
 * worker owns, which the driver reads from the worker each time. */
static int m_get_containing_10k(void)
{
  enum { NREFS = 10000 };
  int64_t n = NREFS, nest[2] = {0, 1};
  for (int k = 0; k < 2; k++) {
    rayc_arg a[2] = {RAYC_ARG_VAL(&n, 8), RAYC_ARG_VAL(&nest[k], 8)};
    rayc_ref r;
    rayc_buf b;
    int rc = rayc_remote("bench_make_refs", a, 2, NULL, &r);
    if (rc != 0)
      return fail(rc, "rayc_remote");
    rc = rayc_get(&r, 1, GET_TIMEOUT_MS, &b); /* waits for the task */
    if (rc != 0) {
      rayc_ref_release(&r);
      return fail(rc, "rayc_get");
    }
    if (k == 0) {
      rayc_buf_release(&b, 1);
      rc = get_containing_loop("single_client_get_object_containing_10k_refs", &r, NREFS);
    } else {
      rayc_ref outer = b.refs[0]; /* owned by the worker */
      rayc_ref_retain(&outer);
      rayc_buf_release(&b, 1);
      rc = get_containing_loop("single_client_get_borrowed_object_containing_10k_refs", &outer, NREFS);
      rayc_ref_release(&outer);
    }
    rayc_ref_release(&r);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- start-up ---- */

static int run_cmd(char *const argv[])
{
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), st = 0;
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -rc;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* `rayc start --head` until a driver's first task result is back: one repetition. */
static int m_head_start(char *rayc_bin, char *temp_dir)
{
  char *start[] = {rayc_bin,         (char *)"start",
                   (char *)"--head", (char *)"--port",
                   (char *)"0",      (char *)"--num-cpus",
                   (char *)"2",      (char *)"--temp-dir",
                   temp_dir,         NULL};
  char path[PATH_MAX], address[256] = "";
  unsetenv("RAYC_ADDRESS"); /* `rayc start --head` would warn that it ignores it */
  double t0 = now_s();
  if (run_cmd(start) != 0)
    return fail(RAYC_EIO, "rayc start --head");
  snprintf(path, sizeof(path), "%s/session_latest/address", temp_dir);
  FILE *f = fopen(path, "r");
  if (!f || !fgets(address, sizeof(address), f))
    return fail(RAYC_EIO, "reading the head's address file");
  fclose(f);
  address[strcspn(address, "\r\n")] = 0;
  rayc_config cfg = {.address = address, .temp_dir = temp_dir}; /* temp_dir: where the token is */
  int rc = rayc_init(&cfg);
  rayc_ref r;
  if (rc == 0 && (rc = noop(&r)) == 0)
    rc = get_release(&r, 1);
  double t = now_s() - t0;
  if (rc == 0)
    report("head_start_ms", t * 1e3, "ms");
  else
    fail(rc, "first task");
  rayc_shutdown();
  char *stop[] = {rayc_bin, (char *)"stop", (char *)"--temp-dir", temp_dir, NULL};
  run_cmd(stop);
  return rc;
}

/* ---- main ---- */

typedef struct metric {
  const char *name;
  int (*run)(void);
  int reps;
} metric_t;

static const metric_t metrics[] = {
    {"single_client_tasks_sync", m_tasks_sync, 5},
    {"single_client_tasks_async", m_tasks_async, 5},
    {"single_client_tasks_and_get_batch", m_tasks_and_get_batch, 5},
    {"task_latency_sync", m_task_latency, 5},
    {"single_client_wait_1k_refs", m_wait_1k_refs, 5},
    {"single_client_put_calls_Plasma_Store", m_put_small, 5},
    {"single_client_get_calls_Plasma_Store", m_get_small, 5},
    {"single_client_put_calls_store_backed", m_put_store_backed, 5},
    {"single_client_put_gigabytes", m_put_gigabytes, 5},
    {"multi_client_put_calls_Plasma_Store", m_multi_put_small, 5},
    {"multi_client_put_gigabytes", m_multi_put_gigabytes, 5},
    {"queued_tasks", m_queued_tasks, 1},
    {"placement_group_create/removal", m_pg_create_removal, 5},
    {"placement_group_create_wait_remove_serial", m_pg_serial, 5},
    {"driver_bytes_per_queued_task", m_driver_bytes, 1},
    {"single_client_get_object_containing_10k_refs", m_get_containing_10k, 5},
};

/* The task library: $RAYC_CODE_PATH, else ../lib/libbench_tasks.so next to this program. */
static void set_code_path(void)
{
  char exe[PATH_MAX], lib[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (getenv("RAYC_CODE_PATH") || n <= 0)
    return;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  *slash = 0;
  snprintf(lib, sizeof(lib), "%s/../lib/libbench_tasks.so", exe);
  setenv("RAYC_CODE_PATH", lib, 1);
}

static int usage(void)
{
  fprintf(stderr, "usage: bench_tasks METRIC [REPS] | multi_client_tasks_async [REPS] | "
                  "head_start RAYC_BIN TEMP_DIR\nmetrics:");
  for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
    fprintf(stderr, " %s", metrics[i].name);
  fprintf(stderr, "\n");
  return 2;
}

static int run_metric(const metric_t *m, int reps)
{
  int rc = rayc_init(NULL);
  if (rc != 0)
    return fail(rc, "rayc_init"), 1;
  if (m->reps > 1)
    rc = batch_noops(200); /* warm-up: a leased worker with the library loaded */
  for (int r = 0; rc == 0 && r < reps; r++)
    rc = m->run();
  rayc_shutdown();
  return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
  if (argc < 2)
    return usage();
  metric_name = argv[1];
  set_code_path();
  const char *rs = getenv("BENCH_REP_SECONDS");
  if (rs && atof(rs) > 0)
    rep_seconds = atof(rs);
  if (strcmp(argv[1], "--child-submit") == 0 && argc > 2)
    return child_submit(atoi(argv[2]));
  if (strcmp(argv[1], "head_start") == 0)
    return argc == 4 && m_head_start(argv[2], argv[3]) == 0 ? 0 : argc == 4 ? 1 : usage();
  int reps = argc > 2 ? atoi(argv[2]) : 0;
  if (strcmp(argv[1], "multi_client_tasks_async") == 0)
    return m_multi_tasks("/proc/self/exe", reps > 0 ? reps : 5) == 0 ? 0 : 1;
  for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
    if (strcmp(argv[1], metrics[i].name) == 0)
      return run_metric(&metrics[i], reps > 0 ? reps : metrics[i].reps);
  return usage();
}
