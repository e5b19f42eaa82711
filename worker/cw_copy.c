/*
 * cw_copy: large copies into shared memory split across a small, lazily started thread pool
 * (design and settings in cw_copy.h).
 *
 * A job is (dst, len, parts): slice k of n covers dst[lo_k, hi_k), page-aligned boundaries, and
 * the thread that owns it writes whatever parts and gaps intersect it (cw_parts_range). The caller
 * takes slice 0; pool thread k takes slice k. `gen` counts jobs: a pool thread runs each job once,
 * `pending` counts the pool threads still copying, and the caller waits for it to reach 0 before
 * it returns (so the parts it borrowed are never read after the put returns). `busy` admits one
 * job at a time; a caller that finds it taken copies alone.
 */
#include "worker/cw_copy.h"

#include "common/log.h"
#include "common/util.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct cw_copy_thread {
  struct cw_copy *cp;
  int index;     /* its slice: 1..nthreads */
  uint64_t gen0; /* the jobs posted before it started (not its own) */
  pthread_t tid;
} cw_copy_thread_t;

struct cw_copy {
  int threads;          /* per large copy, counting the caller (>= 1) */
  size_t min_bytes;     /* the smallest copy split */
  pthread_mutex_t busy; /* held by the caller whose job the pool runs (trylock) */
  pthread_mutex_t mu;   /* guards what follows */
  pthread_cond_t go, done;
  cw_copy_thread_t *pool; /* threads - 1 entries */
  int started;            /* pool threads running */
  int start_failed;       /* a pthread_create failed: run with those started */
  int stopping;
  uint64_t gen; /* jobs posted */
  int pending;  /* pool threads still on the current job */
  uint8_t *dst; /* the current job */
  size_t len;
  const rayc_part *parts;
  size_t nparts;
  int nslices;
};

static long cw_copy_env(const char *name, long dflt, long max)
{
  const char *v = getenv(name);
  char *end = NULL;
  long n = v && *v ? strtol(v, &end, 10) : 0;
  if (!v || !*v)
    return dflt;
  if (*end || n <= 0 || n > max) {
    log_warn("%s=%s is not a number from 1 to %ld: using %ld", name, v, max, dflt);
    return dflt;
  }
  return n;
}

static int cw_copy_cores(void)
{
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

cw_copy_t *cw_copy_create(void)
{
  cw_copy_t *cp = xcalloc(1, sizeof(*cp));
  long want = cw_copy_env("RAYC_PUT_COPY_THREADS", CW_COPY_THREADS, CW_COPY_MAX_THREADS);
  int cores = cw_copy_cores();
  cp->threads = want < cores ? (int)want : cores;
  cp->min_bytes = (size_t)cw_copy_env("RAYC_PUT_COPY_MIN_BYTES", CW_COPY_MIN_BYTES, 1L << 40);
  pthread_mutex_init(&cp->busy, NULL);
  pthread_mutex_init(&cp->mu, NULL);
  pthread_cond_init(&cp->go, NULL);
  pthread_cond_init(&cp->done, NULL);
  return cp;
}

void cw_copy_destroy(cw_copy_t *cp)
{
  if (!cp)
    return;
  pthread_mutex_lock(&cp->mu);
  cp->stopping = 1;
  pthread_cond_broadcast(&cp->go);
  int started = cp->started;
  pthread_mutex_unlock(&cp->mu);
  for (int i = 0; i < started; i++)
    pthread_join(cp->pool[i].tid, NULL);
  free(cp->pool);
  pthread_cond_destroy(&cp->done);
  pthread_cond_destroy(&cp->go);
  pthread_mutex_destroy(&cp->mu);
  pthread_mutex_destroy(&cp->busy);
  free(cp);
}

int cw_copy_threads(const cw_copy_t *cp, int *started)
{
  if (started)
    *started = cp ? cp->started : 0;
  return cp ? cp->threads : 1;
}

/* Writes the bytes of dst[lo, hi) that parts (and the zeroed gaps between them) cover. */
static void cw_parts_range(uint8_t *dst, size_t lo, size_t hi, const rayc_part *parts, size_t nparts)
{
  size_t at = 0;
  for (size_t i = 0; i <= nparts && at < hi; i++) {
    size_t off = i < nparts ? parts[i].offset : hi, end = i < nparts ? off + parts[i].len : hi;
    size_t a = at > lo ? at : lo, b = off < hi ? off : hi; /* the gap [at, off) within [lo, hi) */
    if (a < b)
      memset(dst + a, 0, b - a);
    a = off > lo ? off : lo; /* the part [off, end) within [lo, hi) */
    b = end < hi ? end : hi;
    if (i < nparts && a < b)
      memcpy(dst + a, (const uint8_t *)parts[i].data + (a - off), b - a);
    at = end;
  }
}

/* Slice k of the current job: page-aligned contiguous ranges, the last one takes the rest. */
static void cw_copy_slice(const cw_copy_t *cp, int k, size_t *lo, size_t *hi)
{
  size_t step = (cp->len / (size_t)cp->nslices + CW_COPY_ALIGN - 1) / CW_COPY_ALIGN * CW_COPY_ALIGN;
  size_t a = step * (size_t)k, b = k == cp->nslices - 1 ? cp->len : a + step;
  *lo = a < cp->len ? a : cp->len;
  *hi = b < cp->len ? b : cp->len;
}

static void *cw_copy_main(void *arg)
{
  cw_copy_thread_t *t = arg;
  cw_copy_t *cp = t->cp;
  uint64_t seen = t->gen0;
  pthread_mutex_lock(&cp->mu);
  for (;;) {
    while (cp->gen == seen && !cp->stopping)
      pthread_cond_wait(&cp->go, &cp->mu);
    if (cp->stopping)
      break;
    seen = cp->gen;
    size_t lo = 0, hi = 0;
    if (t->index < cp->nslices)
      cw_copy_slice(cp, t->index, &lo, &hi);
    pthread_mutex_unlock(&cp->mu);
    cw_parts_range(cp->dst, lo, hi, cp->parts, cp->nparts);
    pthread_mutex_lock(&cp->mu);
    if (--cp->pending == 0)
      pthread_cond_signal(&cp->done);
  }
  pthread_mutex_unlock(&cp->mu);
  return NULL;
}

/* Starts the pool's threads once (with every signal blocked, so that signals reach the
 * application's threads); under cp->mu. A thread that cannot start leaves the pool smaller. */
static void cw_copy_start(cw_copy_t *cp)
{
  if (cp->pool || cp->threads < 2)
    return;
  cp->pool = xcalloc((size_t)cp->threads - 1, sizeof(*cp->pool));
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < cp->threads - 1; i++) {
    cp->pool[i] = (cw_copy_thread_t){.cp = cp, .index = i + 1, .gen0 = cp->gen};
    if (pthread_create(&cp->pool[i].tid, NULL, cw_copy_main, &cp->pool[i]) != 0) {
      log_warn("put copy pool: thread %d of %d could not start; large copies use %d", i + 2, cp->threads, i + 1);
      cp->start_failed = 1;
      break;
    }
    pthread_setname_np(cp->pool[i].tid, "rayc-copy");
    cp->started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void cw_copy_parts(cw_copy_t *cp, uint8_t *dst, size_t len, const rayc_part *parts, size_t nparts)
{
  if (!cp || cp->threads < 2 || len < cp->min_bytes || pthread_mutex_trylock(&cp->busy) != 0) {
    cw_parts_range(dst, 0, len, parts, nparts);
    return;
  }
  pthread_mutex_lock(&cp->mu);
  cw_copy_start(cp);
  cp->dst = dst;
  cp->len = len;
  cp->parts = parts;
  cp->nparts = nparts;
  cp->nslices = cp->started + 1;
  cp->pending = cp->started;
  cp->gen++;
  pthread_cond_broadcast(&cp->go);
  size_t lo = 0, hi = 0;
  cw_copy_slice(cp, 0, &lo, &hi);
  pthread_mutex_unlock(&cp->mu);
  cw_parts_range(dst, lo, hi, parts, nparts);
  pthread_mutex_lock(&cp->mu);
  while (cp->pending > 0)
    pthread_cond_wait(&cp->done, &cp->mu);
  pthread_mutex_unlock(&cp->mu);
  pthread_mutex_unlock(&cp->busy);
}

void cw_copy_bytes(cw_copy_t *cp, void *dst, const void *src, size_t len)
{
  rayc_part part = {.offset = 0, .data = src, .len = len};
  cw_copy_parts(cp, dst, len, &part, 1);
}
