/*
 * Tasks for tests/integration/test_put_copy.c: large results written through rayc_return_copy and
 * rayc_return_parts (split across the worker's copy threads), with a byte pattern the driver
 * checks exactly.
 */
#include <rayc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The pattern test_put_copy.c checks: byte i of an object made with seed. */
static uint8_t copy_pattern(size_t i, unsigned seed)
{
  return (uint8_t)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24) ^ seed);
}

/* Argument i as an int64 into *v: 0, or -1 when it is not one. */
static int arg_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t *v)
{
  if (i >= nargs || args[i].len != sizeof(*v))
    return -1;
  memcpy(v, args[i].data, sizeof(*v));
  return 0;
}

/* copy_return_pattern(len, seed, how): result 0 is len bytes of the pattern; how 0: one
 * rayc_return_copy; how 1: rayc_return_parts of three parts, [0, 100), [4113, len - 1000) and
 * [len - 500, len - 10), the bytes between them zero (len must be at least 8,192). */
static int copy_return_pattern(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t v[3];
  for (size_t i = 0; i < 3; i++)
    if (arg_i64(args, nargs, i, &v[i]) != 0)
      return rayc_task_fail(ctx, "copy_return_pattern(len, seed, how): three int64 arguments");
  size_t len = (size_t)v[0];
  if (v[0] < 8192 || v[2] < 0 || v[2] > 1)
    return rayc_task_fail(ctx, "copy_return_pattern: len >= 8192 and how 0 or 1");
  uint8_t *src = malloc(len);
  if (!src)
    return rayc_task_fail(ctx, "copy_return_pattern: no memory for %zu bytes", len);
  for (size_t i = 0; i < len; i++)
    src[i] = copy_pattern(i, (unsigned)v[1]);
  int rc;
  if (v[2] == 0) {
    rc = rayc_return_copy(ctx, 0, src, len);
  } else {
    rayc_part parts[3] = {{.offset = 0, .data = src, .len = 100},
                          {.offset = 4113, .data = src + 4113, .len = len - 1000 - 4113},
                          {.offset = len - 500, .data = src + len - 500, .len = 490}};
    rc = rayc_return_parts(ctx, 0, len, parts, 3);
  }
  free(src);
  return rc;
}
RAYC_REMOTE(copy_return_pattern)
