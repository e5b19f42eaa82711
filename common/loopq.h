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

/* Thread-safe. As loopq_post, in the same order with the other items, but does not wake the loop:
 * fn(arg) runs on the loop's next wake-up for a loopq_post, or at the next loopq_flush(). For work
 * that may wait for a periodic timer (the GCS's idle heartbeats): each hand-off that wakes an idle
 * loop is a context switch. Whoever posts lazily must also call loopq_flush() periodically. */
void loopq_post_lazy(loopq_t *q, loopq_fn fn, void *arg);

/* Loop thread only. Runs everything queued so far. From inside a function the queue runs it does
 * nothing: what is queued then runs on the next wake-up or flush. */
void loopq_flush(loopq_t *q);

/* Loop thread only. Runs what is still queued, then closes the async handle; the memory is freed
 * by the close callback, so run the loop once more (uv_run) before uv_loop_close. Accepts NULL. */
void loopq_destroy(loopq_t *q);

#endif
