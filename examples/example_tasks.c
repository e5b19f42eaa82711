/*
 * Example task library: loaded by rayc workers from the job's code path. Each RAYC_REMOTE
 * registers a function under its own name.
 */
#include <rayc.h>

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int64_t arg_i64(const rayc_buf *b)
{
  int64_t v = 0;
  memcpy(&v, b->data, b->len < sizeof(v) ? b->len : sizeof(v));
  return v;
}

/* add(a, b) -> a + b, as int64 values. */
static int add(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  if (nargs != 2 || nrets != 1)
    return rayc_task_fail(ctx, "add takes 2 arguments and returns 1, got %zu and %zu", nargs, nrets);
  int64_t sum = arg_i64(&args[0]) + arg_i64(&args[1]);
  return rayc_return_copy(ctx, 0, &sum, sizeof(sum));
}
RAYC_REMOTE(add)

/* square(x) -> x * x */
static int square(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 1)
    return rayc_task_fail(ctx, "square takes 1 argument");
  int64_t x = arg_i64(&args[0]), y = x * x;
  return rayc_return_copy(ctx, 0, &y, sizeof(y));
}
RAYC_REMOTE(square)

/* make_bytes(n, seed) -> n bytes where byte i = (i * 31 + seed) & 255, written in place. */
static int make_bytes(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs != 2)
    return rayc_task_fail(ctx, "make_bytes takes (n, seed)");
  int64_t n = arg_i64(&args[0]), seed = arg_i64(&args[1]);
  if (n < 0 || n > (int64_t)1 << 32)
    return rayc_task_fail(ctx, "make_bytes: bad size %lld", (long long)n);
  uint8_t *p = rayc_return_alloc(ctx, 0, (size_t)n);
  if (!p)
    return rayc_task_fail(ctx, "make_bytes: no memory for %lld bytes", (long long)n);
  for (int64_t i = 0; i < n; i++)
    p[i] = (uint8_t)((i * 31 + seed) & 255);
  return 0;
}
RAYC_REMOTE(make_bytes)

/* checksum(buf) -> sum of its bytes as uint64, and its length as a second result. */
static int checksum(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  if (nargs != 1)
    return rayc_task_fail(ctx, "checksum takes 1 argument");
  uint64_t sum = 0, len = args[0].len;
  const uint8_t *p = args[0].data;
  for (size_t i = 0; i < args[0].len; i++)
    sum += p[i];
  int rc = rayc_return_copy(ctx, 0, &sum, sizeof(sum));
  if (rc == 0 && nrets > 1)
    rc = rayc_return_copy(ctx, 1, &len, sizeof(len));
  return rc;
}
RAYC_REMOTE(checksum)

/* fail(message) -> an application error carrying the message. */
static int fail(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  return rayc_task_fail(ctx, "%.*s", nargs ? (int)args[0].len : 0, nargs ? (const char *)args[0].data : "");
}
RAYC_REMOTE(fail)

/* sleep_ms(ms) -> ms, after sleeping that long. */
static int sleep_ms(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = nargs ? arg_i64(&args[0]) : 0;
  usleep((useconds_t)ms * 1000);
  return rayc_return_copy(ctx, 0, &ms, sizeof(ms));
}
RAYC_REMOTE(sleep_ms)

/* sum_of_squares(n) -> sum of square(i) for i < n, computed by nested tasks. */
static int sum_of_squares(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = nargs ? arg_i64(&args[0]) : 0, total = 0;
  for (int64_t i = 0; i < n; i++) {
    rayc_ref r;
    rayc_arg a = RAYC_ARG_VAL(&i, sizeof(i));
    int rc = rayc_remote("square", &a, 1, NULL, &r);
    rayc_buf b;
    if (rc == 0 && (rc = rayc_get(&r, 1, -1, &b)) == 0) {
      total += arg_i64(&b);
      rayc_buf_release(&b, 1);
    }
    rayc_ref_release(&r);
    if (rc != 0)
      return rayc_task_fail(ctx, "nested task failed: %s", rayc_last_error());
  }
  return rayc_return_copy(ctx, 0, &total, sizeof(total));
}
RAYC_REMOTE(sum_of_squares)
