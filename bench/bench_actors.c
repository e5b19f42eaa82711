/*
 * bench_actors: the actor metrics of `make bench`, measured through the public API the way Ray's
 * `ray microbenchmark` (python/ray/_private/ray_perf.py) measures them, under the names of
 * /work/shared/BENCH.md.
 *
 *   RAYC_ADDRESS=HOST:PORT bench_actors METRIC [REPS]
 *
 * METRIC: 1_1_actor_calls_sync, 1_1_actor_calls_async, 1_1_actor_calls_concurrent,
 * 1_n_actor_calls_async, n_n_actor_calls_async, n_n_actor_calls_with_arg_async,
 * actor_call_latency (prints actor_call_latency_sync_p50_us and _p99_us), actor_creation,
 * actor_creation_shared (the same with rayc_actor_opts.share_worker = 1: actor_creation_shared_per_s
 * and actor_creation_shared_cpu_ms_per_actor), or all.
 * Each repetition prints `rep NAME VALUE UNIT`; a failure prints `error NAME message` and the
 * program exits 1. A repetition lasts about BENCH_REP_SECONDS (default 1). The actor classes are
 * in libbench_actors.so next to this program (../lib), added to $RAYC_CODE_PATH.
 *
 * Shapes, as Ray's: sync = call one no-op method and get it, repeat; async = batches of 1,000
 * calls in flight, then get them all; concurrent = the same on an actor with max_concurrency 16;
 * 1:n = one driver calling N_ACTORS actors round robin; n:n = N_ACTORS client actors each calling
 * all N_ACTORS server actors (with a 1 KiB argument in the _with_arg variant); creation = create
 * BENCH_ACTORS actors (default 200) and wait until each has answered a call.
 *
 * actor_creation also prints actor_creation_cpu_ms_per_actor when BENCH_SESSION_DIR names the
 * cluster's session: the CPU every process of the cluster (daemons, workers, reaped workers via
 * their parents, and this driver) used per actor. Unlike the rate, it hardly moves with the
 * machine's load, so it shows whether a slow run was slow work or a busy machine.
 */
#include <rayc.h>

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  GET_TIMEOUT_MS = 120000,
  BATCH = 1000,
  N_ACTORS = 4,         /* Ray uses cpu_count / 2 (32 there); 4 here, twice our cores */
  NN_CALLS = 10000,     /* per client actor and repetition */
  LATENCY_CALLS = 2000, /* per repetition */
  ARG_BYTES = 1024,
};

static double rep_seconds = 1.0;
static const char *metric_name = "";

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report(const char *name, double value, const char *unit)
{
  printf("rep %s %.6g %s\n", name, value, unit);
  fflush(stdout);
}

static int fail(int rc, const char *what)
{
  printf("error %s %s: %s (%s)\n", metric_name, what, rayc_strerror(rc), rayc_last_error());
  fflush(stdout);
  return rc < 0 ? rc : -1;
}

static int create_actors_opt(const char *cls, int max_concurrency, int share, rayc_actor *out, size_t n)
{
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  o.max_concurrency = max_concurrency;
  o.share_worker = share;
  for (size_t i = 0; i < n; i++) {
    int rc = rayc_actor_create(cls, NULL, 0, &o, &out[i]);
    if (rc != 0)
      return fail(rc, "rayc_actor_create");
  }
  return 0;
}

static void kill_actors(const rayc_actor *a, size_t n)
{
  for (size_t i = 0; i < n; i++)
    rayc_actor_kill(&a[i], 1);
}

static int create_actors(const char *cls, int max_concurrency, rayc_actor *out, size_t n)
{
  return create_actors_opt(cls, max_concurrency, 0, out, n);
}

/* Gets n refs and releases them; 0 or the error, already printed. */
static int get_release(rayc_ref *refs, size_t n)
{
  rayc_buf *bufs = calloc(n ? n : 1, sizeof(*bufs));
  int rc = rayc_get(refs, n, GET_TIMEOUT_MS, bufs);
  if (rc == 0)
    rayc_buf_release(bufs, n);
  for (size_t i = 0; i < n; i++)
    rayc_ref_release(&refs[i]);
  free(bufs);
  return rc == 0 ? 0 : fail(rc, "rayc_get");
}

/* One batch: BATCH no-op calls over the actors, round robin, then get them all. */
static int batch(const rayc_actor *a, size_t na)
{
  static rayc_ref refs[BATCH];
  for (size_t i = 0; i < BATCH; i++) {
    int rc = rayc_actor_call(&a[i % na], "noop", NULL, 0, NULL, &refs[i]);
    if (rc != 0) {
      get_release(refs, i);
      return fail(rc, "rayc_actor_call");
    }
  }
  return get_release(refs, BATCH);
}

static int call_sync(const rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, "noop", NULL, 0, NULL, &r);
  return rc != 0 ? fail(rc, "rayc_actor_call") : get_release(&r, 1);
}

/* ---- metrics ---- */

static int m_sync(int reps)
{
  rayc_actor a;
  int rc = create_actors("BenchActor", 1, &a, 1);
  if (rc == 0)
    rc = call_sync(&a); /* created and warm */
  for (int r = 0; r < reps && rc == 0; r++) {
    double t0 = now_s(), t;
    long n = 0;
    do {
      if ((rc = call_sync(&a)) != 0)
        break;
      n++;
    } while ((t = now_s() - t0) < rep_seconds);
    if (rc == 0)
      report("1_1_actor_calls_sync", (double)n / t, "calls/s");
  }
  return rc;
}

/* Batches over na actors of class cls for each repetition, reported as calls/s under name. */
static int run_batches(const char *name, int max_concurrency, size_t na, int reps)
{
  rayc_actor a[N_ACTORS];
  int rc = create_actors("BenchActor", max_concurrency, a, na);
  if (rc == 0)
    rc = batch(a, na);
  for (int r = 0; r < reps && rc == 0; r++) {
    double t0 = now_s(), t;
    long n = 0;
    do {
      if ((rc = batch(a, na)) != 0)
        break;
      n += BATCH;
    } while ((t = now_s() - t0) < rep_seconds);
    if (rc == 0)
      report(name, (double)n / t, "calls/s");
  }
  return rc;
}

static int cmp_double(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static int m_latency(int reps)
{
  static double lat[LATENCY_CALLS];
  rayc_actor a;
  int rc = create_actors("BenchActor", 1, &a, 1);
  if (rc == 0)
    rc = call_sync(&a);
  for (int r = 0; r < reps && rc == 0; r++) {
    for (int i = 0; i < LATENCY_CALLS && rc == 0; i++) {
      double t0 = now_s();
      rc = call_sync(&a);
      lat[i] = (now_s() - t0) * 1e6;
    }
    if (rc != 0)
      break;
    qsort(lat, LATENCY_CALLS, sizeof(lat[0]), cmp_double);
    report("actor_call_latency_sync_p50_us", lat[LATENCY_CALLS / 2], "us");
    report("actor_call_latency_sync_p99_us", lat[LATENCY_CALLS * 99 / 100], "us");
  }
  return rc;
}

/* n:n: each client actor fires NN_CALLS calls at all the servers; the rate is every call over the
 * span until the last client is done. */
static int m_n_n(const char *name, int64_t argsize, int reps)
{
  rayc_actor servers[N_ACTORS], clients[N_ACTORS];
  int rc = create_actors("BenchActor", 1, servers, N_ACTORS);
  if (rc == 0)
    rc = create_actors("BenchClient", 1, clients, N_ACTORS);
  int64_t count = NN_CALLS;
  rayc_arg args[3] = {RAYC_ARG_VAL(servers, sizeof(servers)), RAYC_ARG_VAL(&count, 8), RAYC_ARG_VAL(&argsize, 8)};
  for (int r = -1; r < reps && rc == 0; r++) { /* r = -1: warm-up */
    rayc_ref refs[N_ACTORS];
    count = r < 0 ? 100 : NN_CALLS;
    double t0 = now_s();
    for (int i = 0; i < N_ACTORS && rc == 0; i++)
      if ((rc = rayc_actor_call(&clients[i], "fire", args, 3, NULL, &refs[i])) != 0) {
        get_release(refs, (size_t)i);
        return fail(rc, "rayc_actor_call");
      }
    if ((rc = get_release(refs, N_ACTORS)) == 0 && r >= 0)
      report(name, (double)N_ACTORS * NN_CALLS / (now_s() - t0), "calls/s");
  }
  return rc;
}

/* utime + stime + cutime + cstime of pid, in clock ticks (0 when it is gone). */
static long long proc_ticks(long pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  long long v[4] = {0};
  if (p)
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3]);
  return v[0] + v[1] + v[2] + v[3];
}

/* The parent of pid (0 when unknown). */
static long proc_ppid(long pid)
{
  char path[64];
  long ppid = 0;
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f) {
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p)
      sscanf(p + 2, "%*c %ld", &ppid);
    fclose(f);
  }
  return ppid;
}

static int pid_in(const long *v, size_t n, long pid)
{
  for (size_t i = 0; i < n; i++)
    if (v[i] == pid)
      return 1;
  return 0;
}

/* CPU ms used so far by the session's processes (SESSION/pids/\*.pid), the daemons' other
 * descendants (the worker zygote and the job zygotes it forks, whose reaped workers count in their
 * cutime) and this process; < 0 without a session. A live worker counts through its pid file, a
 * reaped one through its parent. */
static double cluster_cpu_ms(const char *session)
{
  if (!session || !*session)
    return -1;
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/pids", session);
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  static long pids[4096], all[16384], parent[16384];
  size_t np = 0, na = 0;
  long long ticks = 0;
  for (struct dirent *e; (e = readdir(d)) && np < 4096;) {
    char path[PATH_MAX + 300];
    long pid = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
    if (f && fscanf(f, "%ld", &pid) == 1 && pid > 0 && (ticks += proc_ticks(pid), 1))
      pids[np++] = pid;
    if (f)
      fclose(f);
  }
  closedir(d);
  d = opendir("/proc");
  for (struct dirent *e; d && (e = readdir(d)) && na < 16384;) {
    long pid = atol(e->d_name);
    if (pid > 0 && pid != (long)getpid())
      all[na] = pid, parent[na++] = proc_ppid(pid);
  }
  if (d)
    closedir(d);
  for (size_t i = 0; i < na; i++) {
    if (pid_in(pids, np, all[i]))
      continue;
    long pp = parent[i];
    for (int depth = 0; depth < 4 && pp > 1 && !pid_in(pids, np, pp); depth++) {
      size_t k = 0;
      while (k < na && all[k] != pp)
        k++;
      pp = k < na ? parent[k] : 0;
    }
    if (pp > 1 && pid_in(pids, np, pp))
      ticks += proc_ticks(all[i]);
  }
  ticks += proc_ticks((long)getpid());
  return (double)ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* share: actor_creation_shared (share_worker = 1), else actor_creation. */
static int m_creation(int reps, int share)
{
  const char *rate = share ? "actor_creation_shared_per_s" : "actor_creation_per_s";
  const char *cpu = share ? "actor_creation_shared_cpu_ms_per_actor" : "actor_creation_cpu_ms_per_actor";
  const char *env = getenv("BENCH_ACTORS");
  size_t n = env && atoi(env) > 0 ? (size_t)atoi(env) : 200;
  rayc_actor *a = malloc(n * sizeof(*a));
  rayc_ref *refs = malloc(n * sizeof(*refs));
  int rc = 0;
  const char *session = getenv("BENCH_SESSION_DIR");
  for (int r = 0; r < reps && rc == 0; r++) {
    double cpu0 = cluster_cpu_ms(session), t0 = now_s();
    if ((rc = create_actors_opt("BenchActor", 1, share, a, n)) != 0)
      break;
    for (size_t i = 0; i < n && rc == 0; i++)
      if ((rc = rayc_actor_call(&a[i], "noop", NULL, 0, NULL, &refs[i])) != 0)
        fail(rc, "rayc_actor_call");
    if (rc == 0 && (rc = get_release(refs, n)) == 0)
      report(rate, (double)n / (now_s() - t0), "actors/s");
    kill_actors(a, n);
    usleep(500000); /* let the killed workers exit before the next round */
    double cpu1 = cluster_cpu_ms(session);
    if (rc == 0 && cpu0 >= 0 && cpu1 >= cpu0)
      report(cpu, (cpu1 - cpu0) / (double)n, "ms");
  }
  free(refs);
  free(a);
  return rc;
}

static int run_metric(const char *m, int reps)
{
  metric_name = m;
  if (strcmp(m, "1_1_actor_calls_sync") == 0)
    return m_sync(reps);
  if (strcmp(m, "1_1_actor_calls_async") == 0)
    return run_batches(m, 1, 1, reps);
  if (strcmp(m, "1_1_actor_calls_concurrent") == 0)
    return run_batches(m, 16, 1, reps);
  if (strcmp(m, "1_n_actor_calls_async") == 0)
    return run_batches(m, 1, N_ACTORS, reps);
  if (strcmp(m, "n_n_actor_calls_async") == 0)
    return m_n_n(m, 0, reps);
  if (strcmp(m, "n_n_actor_calls_with_arg_async") == 0)
    return m_n_n(m, ARG_BYTES, reps);
  if (strcmp(m, "actor_call_latency") == 0)
    return m_latency(reps);
  if (strcmp(m, "actor_creation") == 0)
    return m_creation(reps, 0);
  if (strcmp(m, "actor_creation_shared") == 0)
    return m_creation(reps, 1);
  printf("error %s unknown metric\n", m);
  return -1;
}

/* The code path: $RAYC_CODE_PATH plus ../lib/libbench_actors.so next to this program. */
static char *code_path(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  const char *env = getenv("RAYC_CODE_PATH");
  size_t len = strlen(exe) + (env ? strlen(env) : 0) + 64;
  char *p = malloc(len);
  snprintf(p, len, "%s%s%s/../lib/libbench_actors.so", env && *env ? env : "", env && *env ? ":" : "", exe);
  return p;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: bench_actors METRIC|all [REPS]\n");
    return 2;
  }
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  const char *rs = getenv("BENCH_REP_SECONDS");
  if (rs && atof(rs) > 0)
    rep_seconds = atof(rs);
  char *cp = code_path();
  rayc_config cfg = {.code_path = cp};
  int rc = rayc_init(&cfg);
  free(cp);
  if (rc != 0) {
    printf("error %s rayc_init: %s (%s)\n", argv[1], rayc_strerror(rc), rayc_last_error());
    return 1;
  }
  static const char *all[] = {"1_1_actor_calls_sync",  "1_1_actor_calls_async", "1_1_actor_calls_concurrent",
                              "1_n_actor_calls_async", "n_n_actor_calls_async", "n_n_actor_calls_with_arg_async",
                              "actor_call_latency",    "actor_creation",        "actor_creation_shared"};
  if (strcmp(argv[1], "all") == 0)
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && rc == 0; i++)
      rc = run_metric(all[i], reps);
  else
    rc = run_metric(argv[1], reps);
  rayc_shutdown();
  return rc == 0 ? 0 : 1;
}
