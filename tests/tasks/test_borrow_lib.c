/*
 * Tasks and an actor for the borrowing tests (tests/integration/test_borrow.c): objects that
 * contain refs, read, kept, returned and lent by processes that do not own them.
 *
 *   borrow_deep(args...) -> [sum, count]: reads every ref the arguments carry, and the refs those
 *       objects contain (depth 4), summing the bytes of every object read (count of them)
 *   borrow_make(n, size) -> a value of n int64s (i) containing refs to n objects it put: object i
 *       holds size bytes, byte k = (i + k) & 0xff (size 8 and up: the first 8 bytes are i)
 *   borrow_child(ms) -> a value containing the ref of a sleep_ms(ms) task it submitted (pending)
 *   borrow_lend(actor, size) -> its pid: puts an object (byte k = k & 0xff), lends it to the
 *       TKeeper actor (keep), releases its own handle, and returns
 *   TKeeper: keep(value with refs) -> count kept | read() -> [sum, count] like borrow_deep over the
 *       kept refs | read_code() -> [rc, message] of a rayc_get of the first kept ref | drop() ->
 *       count dropped | get_n(n) -> total refs seen in n rayc_gets of the first kept ref (the
 *       objects it contains are checked once) | make(n, size) -> as borrow_make | stats() ->
 *       [owned, borrowed, borrowers] | pid()
 */
#include <rayc.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t b_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len >= sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

static int ret2(rayc_task_ctx *ctx, int64_t a, int64_t b)
{
  int64_t v[2] = {a, b};
  return rayc_return_copy(ctx, 0, v, sizeof(v));
}

/* Reads refs (and what they contain, to depth) into *sum and *count; 0 or the first error. */
static int deep_read(const rayc_ref *refs, size_t n, int depth, int64_t *sum, int64_t *count)
{
  for (size_t i = 0; i < n; i++) {
    rayc_buf b;
    int rc = rayc_get(&refs[i], 1, 60000, &b);
    if (rc != 0)
      return rc;
    for (size_t k = 0; k < b.len; k++)
      *sum += ((const uint8_t *)b.data)[k];
    (*count)++;
    if (depth > 0)
      rc = deep_read(b.refs, b.nrefs, depth - 1, sum, count);
    rayc_buf_release(&b, 1);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int borrow_deep(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t sum = 0, count = 0;
  for (size_t i = 0; i < nargs; i++) {
    int rc = deep_read(args[i].refs, args[i].nrefs, 4, &sum, &count);
    if (rc != 0)
      return rayc_task_fail(ctx, "borrow_deep: argument %zu: %s: %s", i, rayc_err_name(rc), rayc_last_error());
  }
  return ret2(ctx, sum, count);
}
RAYC_REMOTE(borrow_deep)

/* Puts n objects and makes result 0 a value of n int64s that contains them. */
static int make_nested(rayc_task_ctx *ctx, int64_t n, int64_t size)
{
  if (n < 0 || n > 100000 || size < 0 || size > (64 << 20))
    return rayc_task_fail(ctx, "make: bad n %lld or size %lld", (long long)n, (long long)size);
  rayc_ref *refs = calloc((size_t)n + 1, sizeof(*refs));
  int64_t *vals = calloc((size_t)n + 1, sizeof(*vals));
  uint8_t *data = malloc((size_t)size + 1);
  int rc = 0;
  for (int64_t i = 0; i < n && rc == 0; i++) {
    for (int64_t k = 0; k < size; k++)
      data[k] = (uint8_t)(i + k);
    if (size >= 8)
      memcpy(data, &i, 8);
    vals[i] = i;
    rc = rayc_put(data, (size_t)size, &refs[i]);
  }
  if (rc == 0)
    rc = rayc_return_copy(ctx, 0, vals, (size_t)n * sizeof(*vals));
  if (rc == 0)
    rc = rayc_return_refs(ctx, 0, refs, (size_t)n);
  for (int64_t i = 0; i < n; i++) /* the result holds them now */
    rayc_ref_release(&refs[i]);
  free(data);
  free(vals);
  free(refs);
  return rc == 0 ? 0 : rayc_task_fail(ctx, "make: %s", rayc_last_error());
}

static int borrow_make(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  return make_nested(ctx, b_i64(args, nargs, 0, 1), b_i64(args, nargs, 1, 8));
}
RAYC_REMOTE(borrow_make)

static int borrow_lend(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  if (nargs < 1 || args[0].len != sizeof(rayc_actor))
    return rayc_task_fail(ctx, "borrow_lend: the first argument must be an actor handle");
  rayc_actor a;
  memcpy(&a, args[0].data, sizeof(a));
  int64_t size = b_i64(args, nargs, 1, 64);
  uint8_t *data = malloc((size_t)size + 1);
  for (int64_t k = 0; k < size; k++)
    data[k] = (uint8_t)k;
  rayc_ref x, r;
  int rc = rayc_put(data, (size_t)size, &x);
  free(data);
  if (rc != 0)
    return rayc_task_fail(ctx, "borrow_lend: put: %s", rayc_last_error());
  rayc_arg arg = RAYC_ARG_VAL_REFS("x", 1, &x, 1);
  rc = rayc_actor_call(&a, "keep", &arg, 1, NULL, &r);
  rayc_ref_release(&x); /* the actor borrows it now (once the call is done) */
  rayc_buf b;
  if (rc == 0 && (rc = rayc_get(&r, 1, 60000, &b)) == 0)
    rayc_buf_release(&b, 1);
  if (rc == 0)
    rayc_ref_release(&r);
  if (rc != 0)
    return rayc_task_fail(ctx, "borrow_lend: keep: %s", rayc_last_error());
  int64_t pid = getpid();
  return rayc_return_copy(ctx, 0, &pid, sizeof(pid));
}
RAYC_REMOTE(borrow_lend)

/* borrow_child(ms) -> a value containing the ref of a sleep_ms(ms) task it submits (still
 * running when this returns: the caller borrows a pending object) */
static int borrow_child(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = b_i64(args, nargs, 0, 500);
  rayc_arg a = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref r;
  int rc = rayc_remote("sleep_ms", &a, 1, NULL, &r);
  if (rc == 0)
    rc = rayc_return_copy(ctx, 0, "c", 1);
  if (rc == 0)
    rc = rayc_return_refs(ctx, 0, &r, 1);
  rayc_ref_release(&r);
  return rc == 0 ? 0 : rayc_task_fail(ctx, "borrow_child: %s", rayc_last_error());
}
RAYC_REMOTE(borrow_child)

/* ---- TKeeper ---- */

typedef struct keeper {
  pthread_mutex_t mu;
  rayc_ref *refs;
  size_t n;
} keeper_t;

static void *keeper_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx, (void)args, (void)nargs;
  keeper_t *k = calloc(1, sizeof(*k));
  pthread_mutex_init(&k->mu, NULL);
  return k;
}

static void keeper_drop(keeper_t *k)
{
  for (size_t i = 0; i < k->n; i++)
    rayc_ref_release(&k->refs[i]);
  free(k->refs);
  k->refs = NULL;
  k->n = 0;
}

static void keeper_free(void *self)
{
  keeper_t *k = self;
  keeper_drop(k);
  pthread_mutex_destroy(&k->mu);
  free(k);
}
RAYC_ACTOR(TKeeper, keeper_new, keeper_free)

static int TKeeper_keep(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  keeper_t *k = self;
  for (size_t i = 0; i < nargs; i++)
    for (size_t j = 0; j < args[i].nrefs; j++) {
      rayc_ref_retain(&args[i].refs[j]); /* outlives the call: this worker borrows it */
      k->refs = realloc(k->refs, (k->n + 1) * sizeof(*k->refs));
      k->refs[k->n++] = args[i].refs[j];
    }
  int64_t n = (int64_t)k->n;
  return rayc_return_copy(ctx, 0, &n, sizeof(n));
}
RAYC_METHOD(TKeeper, keep)

static int TKeeper_read(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  keeper_t *k = self;
  int64_t sum = 0, count = 0;
  int rc = deep_read(k->refs, k->n, 4, &sum, &count);
  if (rc != 0)
    return rayc_task_fail(ctx, "read: %s: %s", rayc_err_name(rc), rayc_last_error());
  return ret2(ctx, sum, count);
}
RAYC_METHOD(TKeeper, read)

/* read_code() with num_returns 2 -> rc of a rayc_get of the first kept ref, and the detail */
static int TKeeper_read_code(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs;
  keeper_t *k = self;
  if (k->n == 0 || nrets < 2)
    return rayc_task_fail(ctx, "read_code: nothing kept, or fewer than 2 returns");
  rayc_buf b;
  int64_t rc = rayc_get(&k->refs[0], 1, 30000, &b);
  const char *msg = rc == 0 ? "" : rayc_last_error();
  if (rc == 0)
    rayc_buf_release(&b, 1);
  rayc_return_copy(ctx, 1, msg, strlen(msg));
  return rayc_return_copy(ctx, 0, &rc, sizeof(rc));
}
RAYC_METHOD(TKeeper, read_code)

static int TKeeper_drop(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  keeper_t *k = self;
  int64_t n = (int64_t)k->n;
  keeper_drop(k);
  return rayc_return_copy(ctx, 0, &n, sizeof(n));
}
RAYC_METHOD(TKeeper, drop)

static int TKeeper_get_n(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  keeper_t *k = self;
  int64_t n = b_i64(args, nargs, 0, 1), total = 0;
  if (k->n == 0)
    return rayc_task_fail(ctx, "get_n: nothing kept");
  for (int64_t i = 0; i < n; i++) {
    rayc_buf b;
    int rc = rayc_get(&k->refs[0], 1, 60000, &b);
    if (rc != 0)
      return rayc_task_fail(ctx, "get_n: get %lld: %s: %s", (long long)i, rayc_err_name(rc), rayc_last_error());
    total += (int64_t)b.nrefs;
    if (i == 0 && b.nrefs) { /* the contained objects read back: the first and the last */
      size_t idx[2] = {0, b.nrefs - 1};
      for (int j = 0; j < 2; j++) {
        rayc_buf x;
        rc = rayc_get(&b.refs[idx[j]], 1, 60000, &x);
        int64_t v = -1;
        if (rc == 0 && x.len == 8)
          memcpy(&v, x.data, 8);
        if (rc == 0)
          rayc_buf_release(&x, 1);
        if (rc != 0 || v != (int64_t)idx[j]) {
          rayc_buf_release(&b, 1);
          return rayc_task_fail(ctx, "get_n: contained ref %zu: rc %d value %lld: %s", idx[j], rc, (long long)v,
                                rc ? rayc_last_error() : "");
        }
      }
    }
    rayc_buf_release(&b, 1);
  }
  return rayc_return_copy(ctx, 0, &total, sizeof(total));
}
RAYC_METHOD(TKeeper, get_n)

static int TKeeper_make(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)nrets;
  return make_nested(ctx, b_i64(args, nargs, 0, 1), b_i64(args, nargs, 1, 8));
}
RAYC_METHOD(TKeeper, make)

static int TKeeper_stats(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  rayc_ref_counts c;
  int rc = rayc_ref_counts_get(&c);
  if (rc != 0)
    return rayc_task_fail(ctx, "stats: %s", rayc_last_error());
  int64_t v[3] = {(int64_t)c.owned, (int64_t)c.borrowed, (int64_t)c.borrowers};
  return rayc_return_copy(ctx, 0, v, sizeof(v));
}
RAYC_METHOD(TKeeper, stats)

static int TKeeper_pid(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  int64_t pid = getpid();
  return rayc_return_copy(ctx, 0, &pid, sizeof(pid));
}
RAYC_METHOD(TKeeper, pid)
