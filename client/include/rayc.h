/*
 * rayc: Ray's programming model in C. Remote functions, object references, put/get/wait.
 *
 * A program links librayc. Task functions live in a shared library on the job's code path; they
 * register themselves by name when the library is loaded (RAYC_REMOTE). A driver calls
 * rayc_init(), submits tasks with rayc_remote() and reads results with rayc_get().
 *
 * Threads: every function here is thread-safe once rayc_init() has returned. Errors: functions
 * return 0 (or a count) on success and a negative RAYC_E* code on failure; rayc_strerror() names
 * the code and rayc_last_error() gives this thread's detail message (for a failed task: the
 * function name, the node and worker it ran on, and the message the task set).
 *
 * Objects are opaque bytes. Values up to 100 KiB travel inline and live in the owner's memory;
 * larger ones live in the node's shared-memory object store and rayc_get() returns a pointer
 * straight into the shared mapping (no copy).
 */
#ifndef RAYC_H
#define RAYC_H

#include <stddef.h>
#include <stdint.h>

#include "rayc_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAYC_OBJECT_ID_SIZE 28

/* A reference to an object (a future). A plain value: copying it does not add a reference; the
 * holder that received it from rayc_remote/rayc_put releases it once with rayc_ref_release(). */
typedef struct rayc_ref {
  uint8_t id[RAYC_OBJECT_ID_SIZE];
} rayc_ref;

/* A byte buffer. From rayc_get: data is read-only and valid until rayc_buf_release(). */
typedef struct rayc_buf {
  const void *data;
  size_t len;
  void *priv; /* internal */
} rayc_buf;

/* A task argument: a value (data, len), copied at submission, or a reference (ref != NULL). */
typedef struct rayc_arg {
  const void *data;
  size_t len;
  const rayc_ref *ref;
} rayc_arg;

#define RAYC_ARG_VAL(p, n) ((rayc_arg){.data = (p), .len = (n), .ref = NULL})
#define RAYC_ARG_REF(r) ((rayc_arg){.data = NULL, .len = 0, .ref = (r)})

/* ---- connecting ---- */

typedef struct rayc_config {
  const char *address;   /* GCS "HOST:PORT"; NULL: $RAYC_ADDRESS, else start a private cluster */
  const char *code_path; /* the job's code search path: .so files or directories, ':'-separated;
                            NULL: $RAYC_CODE_PATH */
  const char *temp_dir;  /* for a private cluster; NULL: /tmp/rayc */
  double num_cpus;       /* for a private cluster; <= 0: the core count */
  const char *log_level; /* NULL: $RAYC_LOG_LEVEL, else "warn" for drivers */
} rayc_config;

/* Connects this process to a cluster as a driver (cfg may be NULL). Returns 0 or a negative code.
 * Inside a task, the worker is already connected and rayc_init() is not needed. */
int rayc_init(const rayc_config *cfg);

/* Releases every object this driver owns, returns its leases, marks its job finished and, if
 * rayc_init() started a private cluster, stops it. Safe to call twice. */
void rayc_shutdown(void);

/* ---- tasks ---- */

typedef struct rayc_task_opts {
  int num_returns;       /* default 1 */
  double num_cpus;       /* default 1 */
  double num_gpus;       /* default 0 */
  double memory;         /* bytes, default 0 */
  int max_retries;       /* retries when the worker dies; default 3 */
  int retry_exceptions;  /* also retry application errors; default 0 */
  const char *name;      /* for logs and `rayc list tasks`; default: the function name */
} rayc_task_opts;

/* Sets the defaults above. */
void rayc_task_opts_init(rayc_task_opts *opts);

/* Submits function fn (a name registered with RAYC_REMOTE in a library on the code path) with
 * nargs arguments. On 0, out[0 .. num_returns-1] hold new references to its results. opts may be
 * NULL (defaults). Returns at once; the task runs on some worker of the cluster. */
int rayc_remote(const char *fn, const rayc_arg *args, size_t nargs, const rayc_task_opts *opts,
                rayc_ref *out);

/* ---- objects ---- */

/* Stores a copy of data as a new object owned by this process. On 0, *out is a new reference. */
int rayc_put(const void *data, size_t len, rayc_ref *out);

/* Waits up to timeout_ms (-1: forever) until all n objects are available and fills out[i]
 * (release with rayc_buf_release). Returns 0; RAYC_ETIMEOUT; or the error of the first failed
 * object (e.g. RAYC_ETASK_FAILED, with the detail in rayc_last_error()). On error no buffer
 * needs releasing. */
int rayc_get(const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out);

/* Releases buffers returned by rayc_get (n of them). Accepts zeroed buffers. */
void rayc_buf_release(rayc_buf *bufs, size_t n);

/* Waits until k of the n objects are available or timeout_ms passes (-1: forever). ready[i] is
 * set to 1 for the available ones (ready may be NULL). Returns how many are available, or a
 * negative code. A failed task's result counts as available. */
int rayc_wait(const rayc_ref *refs, size_t n, size_t k, int64_t timeout_ms, int *ready);

/* Drops this holder's reference; when no reference remains, the object is freed everywhere. */
void rayc_ref_release(const rayc_ref *ref);

/* Adds a reference to ref (so two holders can release it independently). */
void rayc_ref_retain(const rayc_ref *ref);

/* Writes the 56 hex digits of ref's id and a NUL into out (57 bytes); returns out. */
char *rayc_ref_hex(const rayc_ref *ref, char *out);

/* ---- errors ---- */

/* This thread's detail message for the last error returned by a rayc function ("" if none). */
const char *rayc_last_error(void);

/* ---- writing tasks ---- */

typedef struct rayc_task_ctx rayc_task_ctx;

/* A task function. args[i] are its arguments (read-only, valid during the call). It produces
 * nrets results by calling rayc_return_alloc() or rayc_return_copy() for each index, and returns
 * 0; or it calls rayc_task_fail() and returns its result. An unset result is an empty object. */
typedef int (*rayc_task_fn)(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, rayc_buf *rets,
                            size_t nrets);

/* Returns len writable bytes for result i, in shared memory when the result is large (so the task
 * writes its result in place, with no copy). NULL if i is out of range or memory ran out. */
void *rayc_return_alloc(rayc_task_ctx *ctx, size_t i, size_t len);

/* Sets result i to a copy of data. 0 or a negative code. */
int rayc_return_copy(rayc_task_ctx *ctx, size_t i, const void *data, size_t len);

/* Records an application error for this task and returns RAYC_ETASK_FAILED (so a task can
 * `return rayc_task_fail(ctx, "bad input %d", x);`). rayc_get() of its results fails with it. */
int rayc_task_fail(rayc_task_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Registers fn under name; done by RAYC_REMOTE when the library loads. */
void rayc_register_function(const char *name, rayc_task_fn fn);

/* Registers a task function under its own name when the shared library is loaded. */
#define RAYC_REMOTE(fn)                                                         \
  __attribute__((constructor)) static void rayc_register_##fn(void)            \
  {                                                                             \
    rayc_register_function(#fn, fn);                                            \
  }

#ifdef __cplusplus
}
#endif

#endif
