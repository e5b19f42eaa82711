/*
 * Hand-off queue into a libuv loop: any thread posts (fn, arg); the loop runs them in order.
 *
 * uv_async_send coalesces wake-ups, so the loop drains the whole queue on each wake. This is how
 * the gRPC completion-queue thread and blocking helpers (spilling, Redis, spawning) hand results to
 * the loop that owns a daemon's state (STYLE.md rule 1).
 */
#ifndef RAYC_COMMON_LOOPQ_H
#define RAYC_COMMON_LOOPQ_H

#include <uv.h>

typedef struct loopq loopq_t;
typedef void (*loopq_fn)(void *arg);

/* Returns a new queue bound to loop; call on the loop's thread. Destroy with loopq_destroy(). */
loopq_t *loopq_create(uv_loop_t *loop);

/* Thread-safe. fn(arg) runs later on the loop's thread. */
void loopq_post(loopq_t *q, loopq_fn fn, void *arg);

/* Loop thread only. Runs what is still queued, then closes the async handle; the memory is freed
 * by the close callback, so run the loop once more (uv_run) before uv_loop_close. Accepts NULL. */
void loopq_destroy(loopq_t *q);

#endif
