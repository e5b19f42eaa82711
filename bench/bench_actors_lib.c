/*
 * The actor classes of `make bench` (libbench_actors.so), loaded by workers from the code path of
 * bench_actors: BenchActor (Ray's microbenchmark Actor: a no-op method that may take an argument)
 * and BenchClient (Ray's Client actor of the n:n metrics: it calls a set of BenchActors).
 */
#include <rayc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int64_t arg_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len >= sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

static void *bench_actor_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx, (void)args, (void)nargs;
  return calloc(1, 1);
}

static void bench_actor_free(void *self)
{
  free(self);
}
RAYC_ACTOR(BenchActor, bench_actor_new, bench_actor_free)
RAYC_ACTOR(BenchClient, bench_actor_new, bench_actor_free)

/* BenchActor.noop(any...) -> a 1-byte value */
static int BenchActor_noop(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  static const uint8_t one = 1;
  return rayc_return_copy(ctx, 0, &one, sizeof(one));
}
RAYC_METHOD(BenchActor, noop)

/* BenchClient.fire(servers, count, arg_bytes) -> count: calls BenchActor.noop count times over the
 * servers (an array of rayc_actor), round robin, in batches of 1,000 in flight, each call with an
 * argument of arg_bytes bytes when arg_bytes > 0. */
static int BenchClient_fire(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)nrets;
  enum { BATCH = 1000 };
  if (nargs < 1 || args[0].len == 0 || args[0].len % sizeof(rayc_actor) != 0)
    return rayc_task_fail(ctx, "fire: the first argument must be an array of rayc_actor");
  size_t nservers = args[0].len / sizeof(rayc_actor);
  const rayc_actor *servers = args[0].data;
  int64_t count = arg_i64(args, nargs, 1, 1000), argsize = arg_i64(args, nargs, 2, 0);
  uint8_t *payload = argsize > 0 ? calloc(1, (size_t)argsize) : NULL;
  rayc_arg a = RAYC_ARG_VAL(payload, (size_t)(argsize > 0 ? argsize : 0));
  rayc_ref *refs = malloc(BATCH * sizeof(*refs));
  rayc_buf *bufs = malloc(BATCH * sizeof(*bufs));
  int rc = 0;
  for (int64_t done = 0; done < count && rc == 0;) {
    size_t n = (size_t)(count - done < BATCH ? count - done : BATCH), k = 0;
    for (; k < n && rc == 0; k++)
      rc = rayc_actor_call(&servers[(size_t)(done + (int64_t)k) % nservers], "noop", &a, argsize > 0, NULL, &refs[k]);
    if (rc == 0 && (rc = rayc_get(refs, n, 120000, bufs)) == 0)
      rayc_buf_release(bufs, n);
    for (size_t i = 0; i < k; i++)
      rayc_ref_release(&refs[i]);
    done += (int64_t)n;
  }
  free(bufs);
  free(refs);
  free(payload);
  if (rc != 0)
    return rayc_task_fail(ctx, "fire: %s", rayc_last_error());
  return rayc_return_copy(ctx, 0, &count, sizeof(count));
}
RAYC_METHOD(BenchClient, fire)

/* BenchActor.pushes() -> {calls, tasks} (2 int64s): the PushTask/PushTasks calls this actor's worker
 * received and the calls they carried (rayc_worker_push_counts), for calls per push. */
static int BenchActor_pushes(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  uint64_t v[2] = {0, 0};
  rayc_worker_push_counts(&v[0], &v[1]);
  int64_t out[2] = {(int64_t)v[0], (int64_t)v[1]};
  return rayc_return_copy(ctx, 0, out, sizeof(out));
}
RAYC_METHOD(BenchActor, pushes)
