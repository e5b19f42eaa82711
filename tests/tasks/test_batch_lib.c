/*
 * Task functions of test_push_batch (batched pushes, issue 17): tasks that record each run in a
 * file, so the test sees which ran and how often, and one that reports the worker's push counts.
 */
#include <rayc.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int64_t arg_i64(const rayc_buf *b)
{
  int64_t v = 0;
  memcpy(&v, b->data, b->len < 8 ? b->len : 8);
  return v;
}

/* push_counts() -> {calls, tasks, pid} (3 int64s): the worker's rayc_worker_push_counts. */
static int push_counts(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  uint64_t calls = 0, tasks = 0;
  rayc_worker_push_counts(&calls, &tasks);
  int64_t v[3] = {(int64_t)calls, (int64_t)tasks, (int64_t)getpid()};
  return rayc_return_copy(ctx, 0, v, sizeof(v));
}
RAYC_REMOTE(push_counts)

/* bx(i, dir) -> 3 * i + 1, after appending a line (its pid) to dir/runs.<i> (one line per run). */
static int bx(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 2)
    return rayc_task_fail(ctx, "bx takes i and a directory");
  int64_t i = arg_i64(&args[0]);
  char path[600];
  snprintf(path, sizeof(path), "%.*s/runs.%lld", (int)(args[1].len < 500 ? args[1].len : 500),
           (const char *)args[1].data, (long long)i);
  char line[32];
  int len = snprintf(line, sizeof(line), "%d\n", (int)getpid());
  int fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0600);
  if (fd < 0 || write(fd, line, (size_t)len) != len)
    return rayc_task_fail(ctx, "bx: cannot append to %s", path);
  close(fd);
  int64_t v = 3 * i + 1;
  return rayc_return_copy(ctx, 0, &v, sizeof(v));
}
RAYC_REMOTE(bx)

/* Writes "calls tasks pid" (the worker's push counts now) to file, through a rename. 0 or -1. */
static int write_counts(const char *file)
{
  char tmp[700];
  snprintf(tmp, sizeof(tmp), "%s.tmp", file);
  uint64_t calls = 0, tasks = 0;
  rayc_worker_push_counts(&calls, &tasks);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  fprintf(f, "%llu %llu %d\n", (unsigned long long)calls, (unsigned long long)tasks, (int)getpid());
  fclose(f);
  return rename(tmp, file);
}

/* hold(path) -> the worker's push counts {calls, tasks, pid} as it started: writes them to
 * path.started, then returns once path exists (at most 120 s). Meanwhile it keeps path.counts
 * up to date (every 10 ms), so a test can see what reached the worker while hold occupies it. */
static int hold(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 1)
    return rayc_task_fail(ctx, "hold takes a path");
  char path[520], started[600], counts[600];
  snprintf(path, sizeof(path), "%.*s", (int)(args[0].len < 500 ? args[0].len : 500), (const char *)args[0].data);
  snprintf(started, sizeof(started), "%s.started", path);
  snprintf(counts, sizeof(counts), "%s.counts", path);
  uint64_t calls = 0, tasks = 0;
  rayc_worker_push_counts(&calls, &tasks);
  if (write_counts(started) != 0)
    return rayc_task_fail(ctx, "cannot write %s", started);
  for (int i = 0; i < 12000 && access(path, F_OK) != 0; i++) {
    if (write_counts(counts) != 0)
      return rayc_task_fail(ctx, "cannot write %s", counts);
    usleep(10000);
  }
  int64_t v[3] = {(int64_t)calls, (int64_t)tasks, (int64_t)getpid()};
  return rayc_return_copy(ctx, 0, v, sizeof(v));
}
RAYC_REMOTE(hold)
