/*
 * The task library of the job tests (tests/netns/jobs_multinode.sh, test_jobs): shipped to the
 * cluster inside a job's working directory, so workers load it from their node's copy.
 *
 *   jt_burn(ms)   spins until this thread has used ms of CPU; returns the node id (hex)
 *   jt_blob(n)    2 results: an n-byte object (in the store when large), and the node id
 *   jt_sleep(ms)  sleeps; returns the node id
 *   JtPin         an actor class; its method where() returns the node id
 */
#include <rayc.h>

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t jt_i64(const rayc_buf *b)
{
  int64_t v = 0;
  memcpy(&v, b->data, b->len < 8 ? b->len : 8);
  return v;
}

static int64_t jt_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int jt_node(rayc_task_ctx *ctx)
{
  char id[RAYC_NODE_ID_HEX_LEN];
  if (rayc_node_id(id) != 0)
    return rayc_task_fail(ctx, "rayc_node_id: %s", rayc_last_error());
  return rayc_return_copy(ctx, 0, id, strlen(id));
}

static int jt_burn(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t until = jt_cpu_ns() + (nargs ? jt_i64(&args[0]) : 0) * 1000000;
  volatile uint64_t x = 0;
  while (jt_cpu_ns() < until)
    for (int i = 0; i < 100000; i++)
      x += (uint64_t)i * 2654435761u;
  return jt_node(ctx);
}
RAYC_REMOTE(jt_burn)

static int jt_blob(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t n = nargs ? jt_i64(&args[0]) : 0;
  uint8_t *p = rayc_return_alloc(ctx, 0, (size_t)n);
  if (!p && n)
    return rayc_task_fail(ctx, "no room for %lld bytes", (long long)n);
  for (int64_t i = 0; i < n; i++)
    p[i] = (uint8_t)i;
  char id[RAYC_NODE_ID_HEX_LEN];
  if (rayc_node_id(id) != 0)
    return rayc_task_fail(ctx, "rayc_node_id: %s", rayc_last_error());
  return rayc_return_copy(ctx, 1, id, strlen(id));
}
RAYC_REMOTE(jt_blob)

static int jt_sleep(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t ms = nargs ? jt_i64(&args[0]) : 0;
  for (int64_t t = 0; t < ms && !rayc_task_cancelled(ctx); t += 50)
    usleep(50 * 1000);
  return jt_node(ctx);
}
RAYC_REMOTE(jt_sleep)

static void *jt_pin_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx, (void)args, (void)nargs;
  static int instance;
  return &instance;
}
RAYC_ACTOR(JtPin, jt_pin_new, NULL)

static int JtPin_where(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  return jt_node(ctx);
}
RAYC_METHOD(JtPin, where)
