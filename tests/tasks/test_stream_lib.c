/*
 * Streaming generator tasks for tests/integration/test_stream.c (loaded by workers from the code
 * path): each yields its items with rayc_yield / rayc_yield_parts.
 */
#include <rayc.h>

#include "tests/tasks/task_files.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t arg_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len == sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

/* Item i: size bytes (at least 8), the int64 i first, then the byte (i & 0xff) repeated. */
static int yield_item(rayc_task_ctx *ctx, int64_t i, int64_t size)
{
  if (size <= 8)
    return rayc_yield(ctx, &i, sizeof(i));
  uint8_t *p = malloc((size_t)size);
  if (!p)
    return RAYC_EOUT_OF_MEMORY;
  memset(p, (int)(i & 0xff), (size_t)size);
  memcpy(p, &i, sizeof(i));
  int rc = rayc_yield(ctx, p, (size_t)size);
  free(p);
  return rc;
}

/* gen_count(n, fail_at = -1, size = 8, sleep_ms = 0): yields items 0..n-1 (failing at item
 * fail_at instead, when >= 0), sleeping sleep_ms after each. */
static int gen_count(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = arg_i64(args, nargs, 0, 0), fail_at = arg_i64(args, nargs, 1, -1);
  int64_t size = arg_i64(args, nargs, 2, 8), sleep_ms = arg_i64(args, nargs, 3, 0);
  for (int64_t i = 0; i < n; i++) {
    if (i == fail_at)
      return rayc_task_fail(ctx, "gen_count failed at item %lld", (long long)i);
    int rc = yield_item(ctx, i, size);
    if (rc != 0)
      return rc;
    if (sleep_ms)
      usleep((useconds_t)sleep_ms * 1000);
  }
  return 0;
}
RAYC_REMOTE(gen_count)

/* gen_die_once(path, n): yields n items; on the first attempt (no file at path) it yields two,
 * writes its pid to path and waits to be killed. */
static int gen_die_once(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[512];
  if (nargs != 2 || args[0].len >= sizeof(path))
    return rayc_task_fail(ctx, "gen_die_once takes a path and a count");
  memcpy(path, args[0].data, args[0].len);
  path[args[0].len] = '\0';
  int64_t n = arg_i64(args, nargs, 1, 0);
  struct stat st;
  int first = stat(path, &st) != 0;
  for (int64_t i = 0; i < n; i++) {
    if (first && i == 2) {
      if (task_write_pid(path) != 0)
        return rayc_task_fail(ctx, "cannot write %s", path);
      sleep(60);
      return rayc_task_fail(ctx, "gen_die_once was not killed");
    }
    int rc = yield_item(ctx, i, 8);
    if (rc != 0)
      return rc;
  }
  return 0;
}
RAYC_REMOTE(gen_die_once)

/* gen_refs(n): yields n items, item i an empty value that contains a ref to a put int64 i. */
static int gen_refs(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = arg_i64(args, nargs, 0, 0);
  for (int64_t i = 0; i < n; i++) {
    rayc_ref r;
    int rc = rayc_put(&i, sizeof(i), &r);
    if (rc == 0) {
      rc = rayc_yield_parts(ctx, 0, NULL, 0, &r, 1);
      rayc_ref_release(&r); /* the item holds it now */
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}
RAYC_REMOTE(gen_refs)

/* yield_outside() -> the code rayc_yield returns in a task that is not streaming. */
static int yield_outside(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  int64_t v = rayc_yield(ctx, "x", 1);
  return rayc_return_copy(ctx, 0, &v, sizeof(v));
}
RAYC_REMOTE(yield_outside)

/* An actor whose method count(n) yields base + 0 .. base + n-1 (base: the constructor's int64). */
static void *tgen_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx;
  int64_t *base = malloc(sizeof(*base));
  *base = arg_i64(args, nargs, 0, 0);
  return base;
}

static void tgen_free(void *self)
{
  free(self);
}
RAYC_ACTOR(TGen, tgen_new, tgen_free)

static int TGen_count(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = arg_i64(args, nargs, 0, 0), base = *(int64_t *)self;
  for (int64_t i = 0; i < n; i++) {
    int rc = yield_item(ctx, base + i, 8);
    if (rc != 0)
      return rc;
  }
  return 0;
}
RAYC_METHOD(TGen, count)
