/*
 * Task functions used by the integration tests (loaded by workers from the code path).
 */
#include <rayc.h>

#include "tests/tasks/task_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t i64(const rayc_buf *b)
{
  int64_t v = 0;
  memcpy(&v, b->data, b->len < 8 ? b->len : 8);
  return v;
}

static int ret_i64(rayc_task_ctx *ctx, size_t i, int64_t v)
{
  return rayc_return_copy(ctx, i, &v, sizeof(v));
}

/* noop() -> an empty object */
static int noop(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)ctx, (void)args, (void)nargs, (void)nrets;
  return 0;
}
RAYC_REMOTE(noop)

/* add(a, b) -> a + b */
static int add(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 2)
    return rayc_task_fail(ctx, "add takes 2 arguments");
  return ret_i64(ctx, 0, i64(&args[0]) + i64(&args[1]));
}
RAYC_REMOTE(add)

/* add1(x) -> x + 1 */
static int add1(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  return ret_i64(ctx, 0, (nargs ? i64(&args[0]) : 0) + 1);
}
RAYC_REMOTE(add1)

/* bytes(n, seed) -> n bytes, byte i = (i + seed) & 255 */
static int bytes(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = nargs > 0 ? i64(&args[0]) : 0, seed = nargs > 1 ? i64(&args[1]) : 0;
  uint8_t *p = rayc_return_alloc(ctx, 0, (size_t)n);
  if (!p && n)
    return rayc_task_fail(ctx, "no room for %lld bytes", (long long)n);
  for (int64_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i + seed);
  return 0;
}
RAYC_REMOTE(bytes)

/* pid() -> the worker's pid */
static int pid(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  return ret_i64(ctx, 0, getpid());
}
RAYC_REMOTE(pid)

/* sleep_ms(ms) -> ms */
static int sleep_ms(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = nargs ? i64(&args[0]) : 0;
  usleep((useconds_t)(ms * 1000));
  return ret_i64(ctx, 0, ms);
}
RAYC_REMOTE(sleep_ms)

/* Copies a buffer's bytes into a NUL-terminated path. */
static void arg_path(const rayc_buf *b, char *out, size_t len)
{
  size_t n = b->len < len - 1 ? b->len : len - 1;
  memcpy(out, b->data, n);
  out[n] = '\0';
}

int task_write_pid(const char *path)
{
  char tmp[600];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  fprintf(f, "%d\n", (int)getpid());
  fclose(f);
  return rename(tmp, path) == 0 ? 0 : -1;
}

/* die_once(path) -> 42. The first attempt writes its pid to path and sleeps (the test kills it);
 * a retry finds the file and returns at once. */
static int die_once(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[512];
  if (nargs != 1)
    return rayc_task_fail(ctx, "die_once takes a path");
  arg_path(&args[0], path, sizeof(path));
  struct stat st;
  if (stat(path, &st) == 0)
    return ret_i64(ctx, 0, 42);
  if (task_write_pid(path) != 0)
    return rayc_task_fail(ctx, "cannot write %s", path);
  sleep(30);
  return rayc_task_fail(ctx, "die_once was not killed");
}
RAYC_REMOTE(die_once)

/* flaky(path) -> 7, after failing with an application error on the first attempt. */
static int flaky(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[512];
  if (nargs != 1)
    return rayc_task_fail(ctx, "flaky takes a path");
  arg_path(&args[0], path, sizeof(path));
  int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd >= 0) {
    close(fd);
    return rayc_task_fail(ctx, "flaky: first attempt fails");
  }
  return ret_i64(ctx, 0, 7);
}
RAYC_REMOTE(flaky)

/* sum(a, b, ...) -> the sum of all int64 arguments */
static int sum(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t s = 0;
  for (size_t i = 0; i < nargs; i++)
    s += i64(&args[i]);
  return ret_i64(ctx, 0, s);
}
RAYC_REMOTE(sum)

/* multi(n) -> n results, result i = i * 10 */
static int multi(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs;
  for (size_t i = 0; i < nrets; i++)
    if (ret_i64(ctx, i, (int64_t)i * 10) != 0)
      return rayc_task_fail(ctx, "return %zu failed", i);
  return 0;
}
RAYC_REMOTE(multi)

static void arg_path(const rayc_buf *b, char *out, size_t cap);

/* With a path argument, writes this process's pid there (via a rename), so a test knows the task
 * has started. */
static void announce(const rayc_buf *args, size_t nargs)
{
  char path[512];
  if (nargs < 1)
    return;
  arg_path(&args[0], path, sizeof(path));
  task_write_pid(path);
}

/* spin([path]) -> fails with "stopped" once the task is cancelled (gives up after 30 s). */
static int spin(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  announce(args, nargs);
  for (int i = 0; i < 3000 && !rayc_task_cancelled(ctx); i++)
    usleep(10000);
  return rayc_task_fail(ctx, rayc_task_cancelled(ctx) ? "stopped" : "never cancelled");
}
RAYC_REMOTE(spin)

/* spin_ok([path]) -> returns 7 (a partial value) as soon as the task is cancelled (after 30 s anyway). */
static int spin_ok(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  announce(args, nargs);
  for (int i = 0; i < 3000 && !rayc_task_cancelled(ctx); i++)
    usleep(10000);
  return ret_i64(ctx, 0, 7);
}
RAYC_REMOTE(spin_ok)

/* typed(i64 a, f64 b, str s) -> a + (int64_t)b + strlen(s), read and returned with the typed
 * helpers; a wrong kind of argument fails the task. */
static int typed(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t a;
  double b;
  char s[64];
  if (nargs != 3 || rayc_buf_i64(&args[0], &a) || rayc_buf_f64(&args[1], &b) || rayc_buf_str(&args[2], s, sizeof(s)))
    return rayc_task_fail(ctx, "typed: wants (int64, double, string < 64 bytes)");
  return rayc_return_i64(ctx, 0, a + (int64_t)b + (int64_t)strlen(s));
}
RAYC_REMOTE(typed)

/* pid_sleep(path) -> writes its pid to path, then sleeps 30 s. */
static int pid_sleep(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[512];
  if (nargs != 1)
    return rayc_task_fail(ctx, "pid_sleep takes a path");
  arg_path(&args[0], path, sizeof(path));
  if (task_write_pid(path) != 0)
    return rayc_task_fail(ctx, "cannot write %s", path);
  sleep(30);
  return ret_i64(ctx, 0, 0);
}
RAYC_REMOTE(pid_sleep)

/* parent(path) -> submits pid_sleep(path) and waits for it. */
static int parent(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 1)
    return rayc_task_fail(ctx, "parent takes a path");
  rayc_ref r;
  rayc_arg a = RAYC_ARG_VAL(args[0].data, args[0].len);
  int rc = rayc_remote("pid_sleep", &a, 1, NULL, &r);
  rayc_buf b;
  if (rc == 0 && (rc = rayc_get(&r, 1, -1, &b)) == 0)
    rayc_buf_release(&b, 1);
  return rc ? rayc_task_fail(ctx, "child: %s", rayc_last_error()) : ret_i64(ctx, 0, 1);
}
RAYC_REMOTE(parent)

/* where() -> this worker's IPv4 address other than loopback (its node), as a string. */
static int where(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = nargs ? i64(&args[0]) : 0;
  if (ms > 0)
    usleep((useconds_t)ms * 1000);
  char id[RAYC_NODE_ID_HEX_LEN];
  if (rayc_node_id(id) != 0)
    return rayc_task_fail(ctx, "rayc_node_id: %s", rayc_last_error());
  return rayc_return_copy(ctx, 0, id, strlen(id));
}
RAYC_REMOTE(where)

/* checksum(buf) -> the sum of its bytes */
static int checksum(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 1)
    return rayc_task_fail(ctx, "checksum takes 1 argument");
  int64_t s = 0;
  for (size_t i = 0; i < args[0].len; i++)
    s += ((const uint8_t *)args[0].data)[i];
  return ret_i64(ctx, 0, s);
}
RAYC_REMOTE(checksum)

/* inc_bytes(buf) -> a copy of buf with every byte plus one */
static int inc_bytes(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 1)
    return rayc_task_fail(ctx, "inc_bytes takes 1 argument");
  uint8_t *p = rayc_return_alloc(ctx, 0, args[0].len);
  if (!p && args[0].len)
    return rayc_task_fail(ctx, "no room");
  for (size_t i = 0; i < args[0].len; i++)
    p[i] = (uint8_t)(((const uint8_t *)args[0].data)[i] + 1);
  return 0;
}
RAYC_REMOTE(inc_bytes)

/* Counts the entries of dir other than "." and ".."; -1 when it cannot be read. */
static int count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

/* gpus([dir, n]) -> CUDA_VISIBLE_DEVICES as the task saw it ("" when unset). With a directory and
 * a count, a rendezvous first: the task leaves a file named after its pid in dir and waits (up to
 * 30 s) until n tasks have, so that n tasks hold their GPUs at the same time. */
static int gpus(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  const char *v = getenv("CUDA_VISIBLE_DEVICES");
  char copy[128];
  snprintf(copy, sizeof(copy), "%s", v ? v : "");
  if (nargs == 2) {
    char dir[400], path[480];
    snprintf(dir, sizeof(dir), "%.*s", (int)args[0].len, (const char *)args[0].data);
    snprintf(path, sizeof(path), "%s/%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0)
      return rayc_task_fail(ctx, "gpus: cannot create the rendezvous file");
    close(fd);
    for (int waited = 0; waited < 30000 && count_entries(dir) < (int)i64(&args[1]); waited += 10)
      usleep(10 * 1000);
  }
  return rayc_return_copy(ctx, 0, copy, strlen(copy));
}
RAYC_REMOTE(gpus)

/* Now on CLOCK_MONOTONIC (shared by every process of the machine), in nanoseconds. */
static int64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* stamp() -> when it ran (CLOCK_MONOTONIC ns): tests compare the order of tasks across drivers. */
static int stamp(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  return ret_i64(ctx, 0, mono_ns());
}
RAYC_REMOTE(stamp)

/* gate(path) -> creates path.started, then returns once path exists (at most 120 s) with when
 * it returned. Holds its worker (and CPU) until the test opens the gate. */
static int gate(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[512], started[600];
  if (nargs != 1)
    return rayc_task_fail(ctx, "gate takes a path");
  arg_path(&args[0], path, sizeof(path));
  snprintf(started, sizeof(started), "%s.started", path);
  int fd = open(started, O_CREAT | O_WRONLY, 0600);
  if (fd < 0)
    return rayc_task_fail(ctx, "cannot create %s", started);
  close(fd);
  for (int i = 0; i < 12000 && access(path, F_OK) != 0; i++)
    usleep(10000);
  return ret_i64(ctx, 0, mono_ns());
}
RAYC_REMOTE(gate)
