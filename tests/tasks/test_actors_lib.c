/*
 * Actor classes (and a task that uses actor handles) for the actor integration tests, loaded by
 * workers from the code path together with test_tasks.c.
 *
 *   TCounter(log_path?)   a counter; the constructor appends a line to log_path when given;
 *                         pid() says which process hosts it, crash() aborts that process,
 *                         wait_file(path) holds it until path exists, pushes() counts pushes
 *   TFailing()            a constructor that fails
 *   TConc()               counts how many calls run at once (max_concurrency tests)
 *   actor_use_handle(handle, n) -> the counter's value after n TCounter.incr calls from a task
 */
#include <rayc.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t a_i64(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len >= sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

static int a_ret(rayc_task_ctx *ctx, int64_t v)
{
  return rayc_return_copy(ctx, 0, &v, sizeof(v));
}

/* ---- TCounter ---- */

typedef struct tcounter {
  int64_t value;
  int64_t next_expected; /* check(i): calls must come as 0, 1, 2... */
  int64_t out_of_order;
} tcounter_t;

static void *tcounter_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx;
  if (nargs > 0 && args[0].len > 0 && args[0].len < 900) {
    char path[1024];
    memcpy(path, args[0].data, args[0].len);
    path[args[0].len] = '\0';
    FILE *f = fopen(path, "a");
    if (f) {
      fprintf(f, "ctor %d\n", (int)getpid());
      fclose(f);
    }
  }
  return calloc(1, sizeof(tcounter_t));
}

static void tcounter_free(void *self)
{
  free(self);
}
RAYC_ACTOR(TCounter, tcounter_new, tcounter_free)

/* incr(by = 1) -> the new value */
static int TCounter_incr(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  tcounter_t *c = self;
  c->value += a_i64(args, nargs, 0, 1);
  return a_ret(ctx, c->value);
}
RAYC_METHOD(TCounter, incr)

/* get() -> the value */
static int TCounter_get(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  return a_ret(ctx, ((tcounter_t *)self)->value);
}
RAYC_METHOD(TCounter, get)

/* check(i) -> how many calls so far came out of order (i must be the number of earlier checks) */
static int TCounter_check(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  tcounter_t *c = self;
  if (a_i64(args, nargs, 0, -1) != c->next_expected)
    c->out_of_order++;
  c->next_expected++;
  return a_ret(ctx, c->out_of_order);
}
RAYC_METHOD(TCounter, check)

/* sum(a, b, ...) -> value += a + b + ..., the new value (arguments may be refs) */
static int TCounter_sum(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  tcounter_t *c = self;
  for (size_t i = 0; i < nargs; i++)
    c->value += a_i64(args, nargs, i, 0);
  return a_ret(ctx, c->value);
}
RAYC_METHOD(TCounter, sum)

/* pid() -> the worker's pid */
static int TCounter_pid(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  return a_ret(ctx, getpid());
}
RAYC_METHOD(TCounter, pid)

/* sleep(ms) -> value, after sleeping */
static int TCounter_sleep(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  usleep((useconds_t)a_i64(args, nargs, 0, 0) * 1000);
  return a_ret(ctx, ((tcounter_t *)self)->value);
}
RAYC_METHOD(TCounter, sleep)

/* fail() -> an application error */
static int TCounter_fail(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  return rayc_task_fail(ctx, "TCounter.fail: as asked");
}
RAYC_METHOD(TCounter, fail)

/* leave() -> value; then the actor exits */
static int TCounter_leave(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  rayc_actor_exit(ctx);
  return a_ret(ctx, ((tcounter_t *)self)->value);
}
RAYC_METHOD(TCounter, leave)

/* crash() -> never returns: the whole worker process aborts (actors sharing it die with it) */
static int TCounter_crash(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)ctx, (void)self, (void)args, (void)nargs, (void)nrets;
  abort();
}
RAYC_METHOD(TCounter, crash)

/* two() -> (value, value * 2): two returns */
static int TCounter_two(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)args, (void)nargs, (void)nrets;
  int64_t v = ((tcounter_t *)self)->value, w = 2 * v;
  rayc_return_copy(ctx, 1, &w, sizeof(w));
  return a_ret(ctx, v);
}
RAYC_METHOD(TCounter, two)

/* pushes() -> {calls, tasks} (2 int64s): the hosting worker's rayc_worker_push_counts (PushTask and
 * PushTasks calls received, and the tasks and actor calls they carried). */
static int TCounter_pushes(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  uint64_t calls = 0, tasks = 0;
  rayc_worker_push_counts(&calls, &tasks);
  int64_t v[2] = {(int64_t)calls, (int64_t)tasks};
  return rayc_return_copy(ctx, 0, v, sizeof(v));
}
RAYC_METHOD(TCounter, pushes)

/* wait_file(path) -> value, once path exists (fails after 120 s) */
static int TCounter_wait_file(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  char path[600];
  if (nargs != 1 || args[0].len == 0 || args[0].len >= sizeof(path))
    return rayc_task_fail(ctx, "wait_file takes a path");
  memcpy(path, args[0].data, args[0].len);
  path[args[0].len] = '\0';
  for (int i = 0; i < 12000 && access(path, F_OK) != 0; i++)
    usleep(10000);
  if (access(path, F_OK) != 0)
    return rayc_task_fail(ctx, "%s never appeared", path);
  return a_ret(ctx, ((tcounter_t *)self)->value);
}
RAYC_METHOD(TCounter, wait_file)

/* incr_other(handle, n) -> the other counter's value after n incr calls made from this actor */
static int TCounter_incr_other(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets);

/* ---- calling an actor from a task or an actor ---- */

static int use_handle(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  rayc_actor h;
  if (nargs < 1 || rayc_buf_actor(&args[0], &h) != 0)
    return rayc_task_fail(ctx, "use_handle: the first argument must be a rayc_actor");
  int64_t n = a_i64(args, nargs, 1, 1);
  rayc_ref last = {{0}};
  for (int64_t i = 0; i < n; i++) {
    if (i > 0)
      rayc_ref_release(&last);
    int rc = rayc_actor_call(&h, "incr", NULL, 0, NULL, &last);
    if (rc != 0)
      return rayc_task_fail(ctx, "rayc_actor_call: %s", rayc_last_error());
  }
  rayc_buf b;
  int rc = rayc_get(&last, 1, 60000, &b);
  rayc_ref_release(&last);
  if (rc != 0)
    return rayc_task_fail(ctx, "rayc_get: %s", rayc_last_error());
  int64_t v = -1;
  if (b.len == sizeof(v))
    memcpy(&v, b.data, sizeof(v));
  rayc_buf_release(&b, 1);
  return a_ret(ctx, v);
}

static int actor_use_handle(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  return use_handle(ctx, args, nargs);
}
RAYC_REMOTE(actor_use_handle)

static int TCounter_incr_other(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)nrets;
  return use_handle(ctx, args, nargs);
}
RAYC_METHOD(TCounter, incr_other)

/* ---- TFailing ---- */

static void *tfailing_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)args, (void)nargs;
  rayc_task_fail(ctx, "TFailing: bad configuration");
  return NULL;
}
RAYC_ACTOR(TFailing, tfailing_new, NULL)

static int TFailing_get(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)self, (void)args, (void)nargs, (void)nrets;
  return a_ret(ctx, 0);
}
RAYC_METHOD(TFailing, get)

/* ---- TConc: how many calls run at once ---- */

typedef struct tconc {
  pthread_mutex_t mu;
  int active, max_active;
} tconc_t;

static void *tconc_new(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs)
{
  (void)ctx, (void)args, (void)nargs;
  tconc_t *c = calloc(1, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

static void tconc_free(void *self)
{
  tconc_t *c = self;
  pthread_mutex_destroy(&c->mu);
  free(c);
}
RAYC_ACTOR(TConc, tconc_new, tconc_free)

/* hold(ms) -> how many calls ran at once while this one held */
static int TConc_hold(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  tconc_t *c = self;
  pthread_mutex_lock(&c->mu);
  if (++c->active > c->max_active)
    c->max_active = c->active;
  pthread_mutex_unlock(&c->mu);
  usleep((useconds_t)a_i64(args, nargs, 0, 100) * 1000);
  pthread_mutex_lock(&c->mu);
  c->active--;
  int64_t m = c->max_active;
  pthread_mutex_unlock(&c->mu);
  return a_ret(ctx, m);
}
RAYC_METHOD(TConc, hold)
