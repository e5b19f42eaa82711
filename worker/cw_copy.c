/*
 * cw_copy: large copies into shared memory split across a small, lazily started thread pool
 * (design and settings in cw_copy.h).
 *
 * A job is (dst, len, parts) cut into page-aligned chunks of CW_COPY_CHUNK bytes; each thread
 * (the caller and the pool's) claims the next chunk and writes whatever parts and zeroed gaps
 * fall in it (cw_parts_range), until none is left. Claims are one atomic word, the job's number
 * in the high half and the next chunk in the low half, taken by compare-and-swap, so a pool thread
 * that wakes late, after its job ended, can claim nothing of a later one; and a pool thread that
 * the kernel does not run in time costs nothing: the caller copies the chunks it would have. The
 * caller returns once every chunk is done (`ndone`), so the parts it borrowed are never read
 * after the put returns. `gen` counts jobs; `busy` admits one job at a time, and a caller that
 * finds it taken copies alone.
 *
 * Every copy of at least `min_bytes` (split or not) writes its parts through cw_src_copy, which
 * writes the source pages the kernel maps to its zero page as zeros without reading them
 * (cw_copy_src.h); the job's page-map descriptor is opened by the caller and shared by the pool.
 */
#include "worker/cw_copy.h"

#include "common/log.h"
#include "common/util.h"
#include "worker/cw_copy_src.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct cw_copy_thread {
  struct cw_copy *cp;
  uint64_t gen0; /* the jobs posted before it started (not its own) */
  pthread_t tid;
} cw_copy_thread_t;

struct cw_copy {
  int threads;            /* per large copy, counting the caller (>= 1) */
  size_t min_bytes;       /* the smallest copy split (and the smallest whose source is scanned) */
  int scan;               /* write the source's zero pages without reading them (cw_copy_src.h) */
  _Atomic size_t zeroed;  /* source bytes written as zeros unread since create (tests, logs) */
  pthread_mutex_t busy;   /* held by the caller whose job the pool runs (trylock) */
  _Atomic uint64_t claim; /* (job number << 32) | the job's next unclaimed chunk */
  pthread_mutex_t mu;     /* guards what follows */
  pthread_cond_t go, done;
  cw_copy_thread_t *pool; /* threads - 1 entries */
  int started;            /* pool threads running */
  int stopping;
  uint64_t gen; /* jobs posted */
  size_t ndone; /* chunks of the current job written */
  uint8_t *dst; /* the current job: set before `claim` names it, read-only while it runs */
  int src_fd;   /* cw_src_open() for the job, or -1 */
  size_t len;
  const rayc_part *parts;
  size_t nparts;
  _Atomic size_t nchunks; /* (atomic: a pool thread checks it before it claims) */
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
  const char *scan = getenv("RAYC_PUT_COPY_ZERO_SCAN");
  cp->scan = !(scan && strcmp(scan, "0") == 0);
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

size_t cw_copy_zeroed(const cw_copy_t *cp)
{
  return cp ? atomic_load(&cp->zeroed) : 0;
}

/* Writes the bytes of dst[lo, hi) that parts (and the zeroed gaps between them) cover; src_fd as
 * cw_src_copy's. Returns the bytes of parts written as zeros without being read. */
static size_t cw_parts_range(uint8_t *dst, size_t lo, size_t hi, const rayc_part *parts, size_t nparts, int src_fd)
{
  size_t at = 0, zeroed = 0;
  for (size_t i = 0; i <= nparts && at < hi; i++) {
    size_t off = i < nparts ? parts[i].offset : hi, end = i < nparts ? off + parts[i].len : hi;
    size_t a = at > lo ? at : lo, b = off < hi ? off : hi; /* the gap [at, off) within [lo, hi) */
    if (a < b)
      memset(dst + a, 0, b - a);
    a = off > lo ? off : lo; /* the part [off, end) within [lo, hi) */
    b = end < hi ? end : hi;
    if (i < nparts && a < b)
      zeroed += cw_src_copy(src_fd, dst + a, (const uint8_t *)parts[i].data + (a - off), b - a);
    at = end;
  }
  return zeroed;
}

/* Claims and writes chunks of job g until none is left (or g is over); returns how many. */
static size_t cw_copy_work(cw_copy_t *cp, uint32_t g)
{
  size_t n = 0, zeroed = 0;
  for (;;) {
    uint64_t v = atomic_load(&cp->claim);
    if ((uint32_t)(v >> 32) != g || (v & 0xffffffffu) >= cp->nchunks) {
      atomic_fetch_add(&cp->zeroed, zeroed);
      return n;
    }
    if (!atomic_compare_exchange_weak(&cp->claim, &v, v + 1))
      continue;
    /* the claim succeeded: job g is current until this chunk is counted done */
    size_t lo = (size_t)(v & 0xffffffffu) * CW_COPY_CHUNK, hi = lo + CW_COPY_CHUNK;
    zeroed += cw_parts_range(cp->dst, lo, hi < cp->len ? hi : cp->len, cp->parts, cp->nparts, cp->src_fd);
    n++;
  }
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
    pthread_mutex_unlock(&cp->mu);
    size_t n = cw_copy_work(cp, (uint32_t)seen);
    pthread_mutex_lock(&cp->mu);
    cp->ndone += n;
    if (n && cp->ndone == cp->nchunks)
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
    cp->pool[i] = (cw_copy_thread_t){.cp = cp, .gen0 = cp->gen};
    if (pthread_create(&cp->pool[i].tid, NULL, cw_copy_main, &cp->pool[i]) != 0) {
      log_warn("put copy pool: thread %d of %d could not start; large copies use %d", i + 2, cp->threads, i + 1);
      break;
    }
    pthread_setname_np(cp->pool[i].tid, "rayc-copy");
    cp->started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Runs one job across the pool (cp->busy held by the caller); returns once every chunk is done. */
static void cw_copy_run(cw_copy_t *cp, uint8_t *dst, size_t len, const rayc_part *parts, size_t nparts, int src_fd)
{
  pthread_mutex_lock(&cp->mu);
  cw_copy_start(cp);
  cp->dst = dst;
  cp->src_fd = src_fd;
  cp->len = len;
  cp->parts = parts;
  cp->nparts = nparts;
  cp->nchunks = (len + CW_COPY_CHUNK - 1) / CW_COPY_CHUNK;
  cp->ndone = 0;
  uint32_t g = (uint32_t)++cp->gen;
  atomic_store(&cp->claim, (uint64_t)g << 32);
  pthread_cond_broadcast(&cp->go);
  pthread_mutex_unlock(&cp->mu);
  size_t n = cw_copy_work(cp, g);
  pthread_mutex_lock(&cp->mu);
  cp->ndone += n;
  while (cp->ndone < cp->nchunks)
    pthread_cond_wait(&cp->done, &cp->mu);
  pthread_mutex_unlock(&cp->mu);
}

void cw_copy_parts(cw_copy_t *cp, uint8_t *dst, size_t len, const rayc_part *parts, size_t nparts)
{
  if (!cp || len < cp->min_bytes) {
    cw_parts_range(dst, 0, len, parts, nparts, -1);
    return;
  }
  /* opened per copy (cw_src_open says why); a few microseconds against a copy of >= 8 MiB */
  int src_fd = cp->scan ? cw_src_open() : -1;
  if (cp->threads < 2 || len / CW_COPY_CHUNK >= 0xffffffffu || pthread_mutex_trylock(&cp->busy) != 0) {
    atomic_fetch_add(&cp->zeroed, cw_parts_range(dst, 0, len, parts, nparts, src_fd));
  } else {
    cw_copy_run(cp, dst, len, parts, nparts, src_fd);
    pthread_mutex_unlock(&cp->busy);
  }
  cw_src_close(src_fd);
}

void cw_copy_bytes(cw_copy_t *cp, void *dst, const void *src, size_t len)
{
  rayc_part part = {.offset = 0, .data = src, .len = len};
  cw_copy_parts(cp, dst, len, &part, 1);
}
