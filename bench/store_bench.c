/*
 * store_bench: microbenchmarks of rayc-store on its own, in the metric names of Ray's
 * `ray microbenchmark` (see /work/shared/BENCH.md). It starts its own rayc-store
 * ($RAYC_BUILD/bin/rayc-store, else ../bin/rayc-store next to this program's directory), measures,
 * and prints one line per metric, `name value unit`, each the median of several repetitions
 * (min and max go to stderr):
 *
 *   single_client_put_calls_Plasma_Store    small puts (create + copy + seal), one client   /s
 *   single_client_get_calls_Plasma_Store    get + release of a small sealed object          /s
 *   single_client_put_gigabytes             puts of 100 MiB buffers (one copy each)        GB/s
 *   node_to_node_transfer_gigabytes         a 1 GiB pull between two network-namespace hosts
 *                                           (only as root with `ip netns`; else a note on
 *                                           stderr)                                         GB/s
 *
 *   store_bench [--reps N] [--seconds S] [--no-transfer]
 *
 * The transfer runs tests/netns/store_transfer.sh (found at $RAYC_SRC, else three directories above
 * this program) with this program as its tool (`store_bench tool ...`, tests/netns/store_tool.h).
 * A benchmark reports; it exits non-zero only when it cannot run at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/netns/store_tool.h"

extern char **environ;

enum { SMALL = 64, BIG = 100 << 20, STORE_MB = 512 };

typedef struct bench {
  char self[PATH_MAX];
  char dir[64], sock[128];
  pid_t store;
  store_client_t *c;
  int reps;
  double seconds;
  uint32_t next_id;
} bench_t;

static void bench_id(bench_t *b, uint8_t *id)
{
  memset(id, 0x42, ID_OBJECT_SIZE);
  uint32_t n = ++b->next_id;
  memcpy(id, &n, sizeof(n));
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Prints the median of v[0..n) as `name value unit`, and the spread on stderr. */
static void report(const char *name, double *v, int n, const char *unit)
{
  if (n <= 0) {
    fprintf(stderr, "%s: no measurement\n", name);
    return;
  }
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  printf("%s %.*f %s\n", name, med >= 100 ? 0 : 3, med, unit);
  fprintf(stderr, "# %s: median %.3f, min %.3f, max %.3f over %d reps\n", name, med, v[0], v[n - 1], n);
  fflush(stdout);
}

/* ---- the store ---- */

static char *bench_root(const bench_t *b, int levels)
{
  char *path = xstrdup(b->self);
  for (int i = 0; i < levels; i++) {
    char *up = xstrdup(dirname(path)); /* dirname may return its argument, or static memory */
    free(path);
    path = up;
  }
  return path;
}

static char *bench_build_dir(const bench_t *b)
{
  const char *e = getenv("RAYC_BUILD");
  return e && e[0] ? xstrdup(e) : bench_root(b, 2); /* <build>/bench/store_bench */
}

static int bench_start_store(bench_t *b)
{
  snprintf(b->dir, sizeof(b->dir), "/tmp/rayc-bench-XXXXXX");
  if (!mkdtemp(b->dir))
    return -errno;
  snprintf(b->sock, sizeof(b->sock), "%s/sockets/store", b->dir);
  char *build = bench_build_dir(b), *bin = xasprintf("%s/bin/rayc-store", build), mem[32];
  snprintf(mem, sizeof(mem), "%dM", STORE_MB);
  char *argv[] = {bin, (char *)"--session-dir", b->dir, (char *)"--object-store-memory", mem, NULL};
  int rc = posix_spawn(&b->store, bin, NULL, NULL, argv, environ);
  free(bin);
  free(build);
  if (rc != 0) {
    fprintf(stderr, "store_bench: cannot start rayc-store: %s\n", strerror(rc));
    return -rc;
  }
  rc = store_client_connect(b->sock, &b->c);
  for (int k = 0; rc < 0 && k < 500; k++) {
    usleep(10000);
    rc = store_client_connect(b->sock, &b->c);
  }
  if (rc < 0)
    fprintf(stderr, "store_bench: cannot connect to the store: %s\n", store_client_last_error());
  return rc;
}

static void bench_stop_store(bench_t *b)
{
  store_client_destroy(b->c);
  b->c = NULL;
  if (b->store > 0) {
    kill(b->store, SIGTERM);
    waitpid(b->store, NULL, 0);
  }
  char *cmd = xasprintf("rm -rf '%s'", b->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "store_bench: cannot remove %s\n", b->dir);
  free(cmd);
}

/* ---- metrics ---- */

/* Small puts for b->seconds; returns puts per second. The objects are deleted afterwards. */
static double bench_put_calls(bench_t *b)
{
  uint8_t val[SMALL] = {1}, id[ID_OBJECT_SIZE];
  uint32_t first = b->next_id + 1;
  int64_t t0 = now_us(), end = t0 + (int64_t)(b->seconds * 1e6), t = t0;
  long n = 0;
  for (; t < end; n++) {
    bench_id(b, id);
    if (store_client_put(b->c, id, val, sizeof(val), NULL, 0, 1000) != 0)
      break;
    if ((n & 63) == 0)
      t = now_us();
  }
  double rate = (double)n / ((double)(now_us() - t0) / 1e6);
  for (uint32_t i = first; i <= b->next_id; i++) {
    memset(id, 0x42, ID_OBJECT_SIZE);
    memcpy(id, &i, sizeof(i));
    store_client_delete(b->c, id, 1);
  }
  return rate;
}

/* get + release of one small object for b->seconds; returns gets per second. */
static double bench_get_calls(bench_t *b)
{
  uint8_t val[SMALL] = {2}, id[ID_OBJECT_SIZE];
  store_object_t o;
  bench_id(b, id);
  if (store_client_put(b->c, id, val, sizeof(val), NULL, 0, 1000) != 0)
    return 0;
  int64_t t0 = now_us(), end = t0 + (int64_t)(b->seconds * 1e6), t = t0;
  long n = 0;
  for (; t < end; n++) {
    if (store_client_get(b->c, id, 1, 0, &o) != 0 || !o.found || store_client_release(b->c, id) != 0)
      break;
    if ((n & 63) == 0)
      t = now_us();
  }
  double rate = (double)n / ((double)(now_us() - t0) / 1e6);
  store_client_delete(b->c, id, 1);
  return rate;
}

/* Puts of a 100 MiB buffer (each deleted after): GB/s of data put. */
static double bench_put_gigabytes(bench_t *b, const uint8_t *buf)
{
  uint8_t id[ID_OBJECT_SIZE];
  int64_t t0 = now_us(), end = t0 + (int64_t)(b->seconds * 1e6);
  double bytes = 0, busy = 0;
  while (now_us() < end) {
    bench_id(b, id);
    int64_t s = now_us();
    if (store_client_put(b->c, id, buf, BIG, NULL, 0, 5000) != 0)
      break;
    busy += (double)(now_us() - s);
    bytes += BIG;
    store_client_delete(b->c, id, 1);
  }
  return busy > 0 ? bytes / 1e9 / (busy / 1e6) : 0;
}

static void bench_local(bench_t *b)
{
  double *v = xcalloc((size_t)b->reps, sizeof(*v));
  for (int i = 0; i < b->reps; i++)
    v[i] = bench_put_calls(b);
  report("single_client_put_calls_Plasma_Store", v, b->reps, "/s");
  for (int i = 0; i < b->reps; i++)
    v[i] = bench_get_calls(b);
  report("single_client_get_calls_Plasma_Store", v, b->reps, "/s");
  uint8_t *buf = xmalloc(BIG);
  memset(buf, 0x5a, BIG);
  bench_put_gigabytes(b, buf); /* warm-up: the first puts fault the region in */
  for (int i = 0; i < b->reps; i++)
    v[i] = bench_put_gigabytes(b, buf);
  report("single_client_put_gigabytes", v, b->reps, "GB/s");
  free(buf);
  free(v);
}

/* Runs the namespace transfer script; reports its repetitions. */
static void bench_transfer(bench_t *b)
{
  const char *e = getenv("RAYC_SRC");
  char *root = e && e[0] ? xstrdup(e) : bench_root(b, 4), *build = bench_build_dir(b);
  char *cmd = xasprintf("bash '%s/tests/netns/store_transfer.sh' '%s' '%s' 1073741824 %d", root, build, b->self,
                        b->reps);
  FILE *p = popen(cmd, "r");
  double *v = xcalloc((size_t)b->reps, sizeof(*v));
  int n = 0;
  char line[256];
  while (p && fgets(line, sizeof(line), p)) {
    double bytes, secs;
    if (sscanf(line, "transfer %lf %lf", &bytes, &secs) == 2 && secs > 0 && n < b->reps)
      v[n++] = bytes / 1e9 / secs;
  }
  int st = p ? pclose(p) : -1;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
    fprintf(stderr, "# node_to_node_transfer_gigabytes: skipped (needs root and network namespaces)\n");
  else if (n > 0)
    report("node_to_node_transfer_gigabytes", v, n, "GB/s");
  else
    fprintf(stderr, "# node_to_node_transfer_gigabytes: the transfer script failed (status %d)\n", st);
  free(v);
  free(cmd);
  free(build);
  free(root);
}

static int bench_args(bench_t *b, int argc, char **argv, int *transfer)
{
  b->reps = 5;
  b->seconds = 0.5;
  *transfer = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      b->reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      b->seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--no-transfer") == 0)
      *transfer = 0;
    else
      return -1;
  }
  return b->reps > 0 && b->seconds > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "tool") == 0)
    return store_tool_main(argc, argv);
  bench_t b = {0};
  int transfer;
  if (bench_args(&b, argc, argv, &transfer) < 0) {
    fprintf(stderr, "usage: store_bench [--reps N] [--seconds S] [--no-transfer]\n");
    return 2;
  }
  ssize_t n = readlink("/proc/self/exe", b.self, sizeof(b.self) - 1);
  if (n <= 0)
    return 1;
  b.self[n] = '\0';
  signal(SIGPIPE, SIG_IGN);
  if (bench_start_store(&b) < 0) {
    bench_stop_store(&b);
    return 1;
  }
  bench_local(&b);
  bench_stop_store(&b);
  if (transfer)
    bench_transfer(&b);
  return 0;
}
