/*
 * The task library of `make bench` (libbench_tasks.so), loaded by rayc workers from the job's
 * code path. The tasks are as small as the metrics they serve: a no-op (what Ray's
 * `small_value` task is), puts from inside a task (Ray's `do_put_small` / `do_put`), and a
 * sleep that holds queued tasks back.
 */
#include <rayc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t arg_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len >= sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

/* bench_noop() -> a 1-byte value: the cheapest task there is. */
static int bench_noop(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args;
  (void)nargs;
  (void)nrets;
  static const uint8_t one = 1;
  return rayc_return_copy(ctx, 0, &one, sizeof(one));
}
RAYC_REMOTE(bench_noop)

/* bench_sleep(ms) -> ms, after sleeping that long. */
static int bench_sleep(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = arg_i64(args, nargs, 0, 0);
  if (ms > 0)
    usleep((useconds_t)ms * 1000);
  return rayc_return_copy(ctx, 0, &ms, sizeof(ms));
}
RAYC_REMOTE(bench_sleep)

/* bench_put(count, size) -> count: puts `count` objects of `size` bytes and releases each one
 * (Ray's do_put_small: 100 puts of a small value; do_put: 10 puts of 80 MB). The source buffer is
 * allocated and touched once per worker, so the loop measures the put path, not page faults in
 * the task's own memory. */
static int bench_put(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  static uint8_t *src;
  static size_t src_len;
  int64_t count = arg_i64(args, nargs, 0, 100), size = arg_i64(args, nargs, 1, 8);
  if (count < 0 || size < 0 || size > ((int64_t)1 << 32))
    return rayc_task_fail(ctx, "bench_put: bad count %lld or size %lld", (long long)count, (long long)size);
  if ((size_t)size > src_len) {
    free(src);
    src = malloc((size_t)size);
    if (!src)
      return rayc_task_fail(ctx, "bench_put: no memory for a %lld-byte buffer", (long long)size);
    memset(src, 7, (size_t)size);
    src_len = (size_t)size;
  }
  for (int64_t i = 0; i < count; i++) {
    rayc_ref r;
    int rc = rayc_put(src, (size_t)size, &r);
    if (rc != 0)
      return rayc_task_fail(ctx, "bench_put: put %lld of %lld bytes failed: %s", (long long)i, (long long)size,
                            rayc_last_error());
    rayc_ref_release(&r);
  }
  return rayc_return_copy(ctx, 0, &count, sizeof(count));
}
RAYC_REMOTE(bench_put)

/* bench_make_refs(n, nest) -> a value containing refs to n small objects it put (Ray's
 * create_object_containing_ref: the caller borrows them). nest = 1: the n refs go into one object
 * the task puts, and the result contains only that one (so the caller reads an object owned by
 * this worker, a borrower's get). */
static int bench_make_refs(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = arg_i64(args, nargs, 0, 10000), nest = arg_i64(args, nargs, 1, 0), one = 1;
  if (n < 0 || n > 10000000)
    return rayc_task_fail(ctx, "bench_make_refs: bad n %lld", (long long)n);
  rayc_ref *refs = calloc((size_t)n + 1, sizeof(*refs)), outer;
  int rc = 0;
  int64_t made = 0;
  for (; made < n && rc == 0; made++)
    rc = rayc_put(&one, sizeof(one), &refs[made]);
  if (rc == 0 && nest)
    rc = rayc_put_with_refs(&n, sizeof(n), refs, (size_t)n, &outer);
  if (rc == 0)
    rc = rayc_return_copy(ctx, 0, &n, sizeof(n));
  if (rc == 0)
    rc = nest ? rayc_return_refs(ctx, 0, &outer, 1) : rayc_return_refs(ctx, 0, refs, (size_t)n);
  for (int64_t i = 0; i < made; i++) /* the result (or the outer object) holds them */
    rayc_ref_release(&refs[i]);
  if (rc == 0 && nest)
    rayc_ref_release(&outer);
  free(refs);
  return rc == 0 ? 0 : rayc_task_fail(ctx, "bench_make_refs: %s", rayc_last_error());
}
RAYC_REMOTE(bench_make_refs)
