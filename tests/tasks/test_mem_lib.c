/*
 * Task functions for the memory monitor's test (test_oom): one that allocates and touches memory
 * step by step, as a leaking or oversized task does.
 */
#include <rayc.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mem_arg(const rayc_buf *args, size_t nargs, size_t i, int64_t dflt)
{
  int64_t v = dflt;
  if (i < nargs && args[i].len >= sizeof(v))
    memcpy(&v, args[i].data, sizeof(v));
  return v;
}

static void mem_sleep_ms(int64_t ms)
{
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* mem_hog(mib, step_ms, hold_ms) -> mib: touches mib MiB, 8 MiB every step_ms, holds it hold_ms,
 * frees it and returns mib. */
static int mem_hog(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets)
{
  (void)nrets;
  int64_t mib = mem_arg(args, nargs, 0, 0), step_ms = mem_arg(args, nargs, 1, 20), hold_ms = mem_arg(args, nargs, 2, 0);
  if (mib < 0 || mib > 1 << 16)
    return rayc_task_fail(ctx, "mem_hog: bad size %lld MiB", (long long)mib);
  enum { CHUNK = 8 << 20 };
  size_t n = (size_t)(mib * (1 << 20) + CHUNK - 1) / CHUNK;
  char **chunks = calloc(n ? n : 1, sizeof(*chunks));
  for (size_t i = 0; chunks && i < n; i++) {
    chunks[i] = malloc(CHUNK);
    if (chunks[i])
      memset(chunks[i], (int)(i + 1), CHUNK); /* touched: resident, not just reserved */
    mem_sleep_ms(step_ms);
  }
  mem_sleep_ms(hold_ms);
  for (size_t i = 0; chunks && i < n; i++)
    free(chunks[i]);
  free(chunks);
  return rayc_return_copy(ctx, 0, &mib, sizeof(mib));
}
RAYC_REMOTE(mem_hog)
