/*
 * The store's blocking-work threads: spill writes, restore reads and spill-file removal run here,
 * off the loop, and report back to it (STYLE.md rule 1).
 *
 * A job is a pair of functions: work(arg, cancelled) runs on one of the I/O threads and must not
 * touch loop-owned state (it gets a snapshot in arg); done(arg) then runs on the loop (through a
 * loopq) and applies the result. Jobs start in submission order; with several threads they may
 * finish in any order. Every submitted job's done runs exactly once, also at shutdown.
 */
#ifndef RAYC_STORE_IO_H
#define RAYC_STORE_IO_H

#include <stddef.h>
#include <uv.h>

typedef struct store_io store_io_t;

/* cancelled is 1 when the pool is being destroyed and the job has not started: work should only
 * record that it did nothing. */
typedef void (*store_io_work_fn)(void *arg, int cancelled);
typedef void (*store_io_done_fn)(void *arg);

/* Starts nthreads (>= 1) threads whose results run on loop. Call on the loop thread. Returns new;
 * free with store_io_destroy(). */
store_io_t *store_io_create(uv_loop_t *loop, int nthreads);

/* Queues a job; arg is borrowed by the job until its done has run. Loop thread. */
void store_io_submit(store_io_t *io, store_io_work_fn work, store_io_done_fn done, void *arg);

/* Jobs submitted whose done has not run yet. */
size_t store_io_pending(const store_io_t *io);

/* Lets running jobs finish, runs the jobs not yet started as cancelled, joins the threads and runs
 * every remaining done on the calling (loop) thread before returning. Run the loop once more
 * before uv_loop_close (the hand-off queue's handle closes asynchronously). Accepts NULL. */
void store_io_destroy(store_io_t *io);

#endif
