/*
 * rayc_lang.h: the language-binding interface of librayc. A front end for another language (the
 * Python extension module, python/rayc/_rayc.c) is written against rayc.h and this header only;
 * it never reaches into the core worker's internals.
 *
 * A worker process of another language is an interpreter that loads librayc, registers an executor
 * for its language (rayc_executor_set) and hands its main thread to rayc_worker_main(), which
 * connects to the raylet, serves the core worker's RPCs and calls the executor for every task,
 * actor creation and actor call of that language. Tasks of another language name their function
 * by a descriptor (an opaque string the binding defines, e.g. "py:<job>:<function hash>:<name>").
 */
#ifndef RAYC_LANG_H
#define RAYC_LANG_H

#include "rayc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs a worker process: argv as the raylet passes it (--session-dir, --raylet-socket, ...).
 * Returns the process's exit status once the raylet tells it to stop (SIGTERM, or its socket
 * closes). rayc-worker's main() is only this call. */
RAYC_EXTERN int rayc_worker_main(int argc, char **argv);

/* For rayc-worker's job zygote (worker/zygote.c): loads a job's code before the process forks
 * that job's workers, as rayc_worker_main() would load it (code_path as the raylet passes it in
 * --code-path; working-dir packages must be unpacked under session_dir already: nothing is
 * fetched), entering the job's working dir first. A worker forked afterwards whose code path
 * resolves to the same libraries does not load them again. Starts no thread and opens no
 * connection. Returns 0, or a negative code when an entry is missing or a library fails to load. */
RAYC_EXTERN int rayc_worker_preload(const char *session_dir, const char *code_path);

/* How a worker runs the tasks of its language. Every callback runs on a thread of the core
 * worker's (the main thread for tasks; an actor's threads for its constructor and methods, several
 * at once with max_concurrency > 1) and produces results as a C task does: rayc_return_alloc /
 * rayc_return_copy / rayc_return_refs, or rayc_task_fail(). args are valid during the call; the
 * descriptors (fn, cls, method) are the strings the submitter gave (rayc_remote's fn,
 * rayc_actor_create's cls, rayc_actor_call's method). */
typedef struct rayc_executor {
  /* Runs task fn; returns 0, or the value of rayc_task_fail(). */
  int (*task)(void *data, rayc_task_ctx *ctx, const char *fn, const rayc_buf *args, size_t nargs, size_t nrets);
  /* Constructs an instance of class cls; returns it (an opaque pointer the binding owns), or NULL
   * after rayc_task_fail() (the constructor failed). */
  void *(*actor_create)(void *data, rayc_task_ctx *ctx, const char *cls, const rayc_buf *args, size_t nargs);
  /* Runs method on instance self; returns 0 or the value of rayc_task_fail(). */
  int (*actor_method)(void *data, rayc_task_ctx *ctx, void *self, const char *method, const rayc_buf *args,
                      size_t nargs, size_t nrets);
  /* Frees an instance when its actor ends in an orderly way; may be NULL. */
  void (*actor_destroy)(void *data, void *self);
  /* The running task (ctx, run by `task` on the worker's main thread) was cancelled without
   * force: called on another thread, it should only ask the task to stop (the Python binding
   * interrupts the main thread with a signal). May be NULL; rayc_task_cancelled() turns true
   * either way. */
  void (*cancel)(void *data, rayc_task_ctx *ctx);
  void *data; /* passed to every callback (borrowed: must outlive the process's tasks) */
} rayc_executor;

/* Installs ex (copied) as this process's executor for tasks and actor classes that no C library
 * registered (RAYC_REMOTE / RAYC_ACTOR take precedence). Call before rayc_worker_main(). NULL
 * removes it. */
RAYC_EXTERN void rayc_executor_set(const rayc_executor *ex);

/* A new buffer on the same bytes as in (an argument of a running task, or a buffer from
 * rayc_get), that the caller keeps past the call and frees with rayc_buf_release(): objects in
 * the store and inline values are shared, not copied (a binding's zero-copy views of arguments
 * stay valid); a value argument's bytes are copied. out->refs is empty (rayc_ref_retain the refs
 * of in to keep them). 0 or a negative code. */
RAYC_EXTERN int rayc_buf_dup(const rayc_buf *in, rayc_buf *out);

/* Sizes of rayc_context_ids' buffers, the NUL included. */
#define RAYC_TASK_ID_HEX_LEN   49
#define RAYC_JOB_ID_HEX_LEN    9
#define RAYC_WORKER_ID_HEX_LEN 57

/* The running task's identity, for runtime contexts and log prefixes: writes the hex ids of the
 * running task (48 hex digits), the job (8) and this worker (56) into the buffers given (NULL to
 * skip; RAYC_TASK_ID_HEX_LEN, RAYC_JOB_ID_HEX_LEN and RAYC_WORKER_ID_HEX_LEN bytes). Outside a
 * task the task id is the process's own root task's (a random id ending with the job's, as every
 * task id is). 0, or RAYC_ENOT_CONNECTED. */
RAYC_EXTERN int rayc_context_ids(char *task_hex, char *job_hex, char *worker_hex);

/* ---- the cluster's nodes ---- */

typedef struct rayc_node_info {
  char node_id[57]; /* hex */
  char ip[64];
  char hostname[64];
  int alive;
  int is_head;
  char session_dir[512]; /* the node's session directory (its logs/ hold the workers' output) */
  rayc_resource *total;  /* the node's resources (names owned by the array) */
  size_t ntotal;
  rayc_resource *available; /* as of its last heartbeat */
  size_t navailable;
} rayc_node_info;

/* Lists every node the GCS knows (alive and dead): on 0, *out is a new array of *n entries; free
 * it with rayc_nodes_free(). */
RAYC_EXTERN int rayc_nodes(rayc_node_info **out, size_t *n);
RAYC_EXTERN void rayc_nodes_free(rayc_node_info *nodes, size_t n);

/* ---- the cluster's key-value store (the GCS KV), e.g. for a binding's exported functions ---- */

/* Stores value under (ns, key); overwrite 0 keeps an existing value (then *added, if not NULL,
 * is 0). 0 or a negative code. */
RAYC_EXTERN int rayc_kv_put(const char *ns, const void *key, size_t klen, const void *value, size_t vlen, int overwrite,
                            int *added);

/* Reads (ns, key): on 0, *value is a new malloc'ed copy (free() it) of *vlen bytes;
 * RAYC_ENOT_FOUND when there is no such key. */
RAYC_EXTERN int rayc_kv_get(const char *ns, const void *key, size_t klen, void **value, size_t *vlen);

/* A key listed by rayc_kv_keys. */
typedef struct rayc_kv_key {
  void *data;
  size_t len;
} rayc_kv_key;

/* Lists the keys of namespace ns that start with prefix (plen bytes): on 0, *keys is a new array
 * of *n keys (free it with rayc_kv_keys_free). */
RAYC_EXTERN int rayc_kv_keys(const char *ns, const void *prefix, size_t plen, rayc_kv_key **keys, size_t *n);
RAYC_EXTERN void rayc_kv_keys_free(rayc_kv_key *keys, size_t n);

/* Deletes (ns, key), or with by_prefix every key that starts with key. Returns how many were
 * deleted, or a negative code. */
RAYC_EXTERN int rayc_kv_del(const char *ns, const void *key, size_t klen, int by_prefix);

#ifdef __cplusplus
}
#endif

#endif
