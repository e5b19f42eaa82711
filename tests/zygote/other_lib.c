/*
 * libtest_other.so: a second job's code for test_job_zygote, with the same names as
 * libtest_tasks.so's (the task "pid", the actor class TCounter and its method "pid") and other
 * results (the pid negated), so a test can tell which library a worker runs: each job's workers
 * must run their own job's code, never another job's loaded by a shared zygote.
 */
#include "rayc.h"

#include <string.h>
#include <unistd.h>

static int ret_neg_pid(rayc_task_ctx *ctx)
{
  int64_t v = -(int64_t)getpid();
  return rayc_return_copy(ctx, 0, &v, sizeof(v));
}

/* pid() -> minus this worker's pid */
static int pid(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  return ret_neg_pid(ctx);
}
RAYC_REMOTE(pid)

static int other_self;

static void *tcounter_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx, (void)args, (void)nargs;
  return &other_self;
}

static void tcounter_free(void *self)
{
  (void)self;
}
RAYC_ACTOR(TCounter, tcounter_new, tcounter_free)

/* TCounter.pid() -> minus this worker's pid */
static int TCounter_pid(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  return ret_neg_pid(ctx);
}
RAYC_METHOD(TCounter, pid)
