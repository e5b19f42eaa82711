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
 *
 * API version 0.3 (RAYC_VERSION_* in rayc_errors.h; rayc_version() gives the library's): task and
 * method functions no longer take a `rets` array, so a 0.2 task library must be rebuilt
 * (`int fn(rayc_task_ctx *, const rayc_buf *args, size_t nargs, size_t nrets)`).
 */
#ifndef RAYC_H
#define RAYC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rayc_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RAYC_OBJECT_ID_SIZE 28

/* Sizes of the buffers the *_hex functions and rayc_node_id() write, the NUL included (two hex
 * digits per id byte): `char hex[RAYC_REF_HEX_LEN]; rayc_ref_hex(&ref, hex);`. */
#define RAYC_REF_HEX_LEN     57 /* an object (2 * RAYC_OBJECT_ID_SIZE + 1) */
#define RAYC_NODE_ID_HEX_LEN 57 /* a node (28-byte ids) */
#define RAYC_ACTOR_HEX_LEN   33 /* an actor (2 * RAYC_ACTOR_ID_SIZE + 1) */
#define RAYC_PG_HEX_LEN      37 /* a placement group (2 * RAYC_PG_ID_SIZE + 1) */

/* A reference to an object (a future). A plain value: copying it does not add a reference; the
 * holder that received it from rayc_remote/rayc_put releases it once with rayc_ref_release(). */
typedef struct rayc_ref {
  uint8_t id[RAYC_OBJECT_ID_SIZE];
} rayc_ref;

/* A byte buffer. From rayc_get: data is read-only and valid until rayc_buf_release().
 *
 * refs, nrefs: the refs the object contains (see "Objects that contain refs" below), in the order
 * they were given; NULL and 0 for an object without refs. Filled by rayc_get and in a task's
 * arguments; valid as long as data is. The buffer holds each of them: use them freely (rayc_get,
 * task arguments, rayc_put_with_refs...) while it lives, and rayc_ref_retain() one to keep it
 * longer (then rayc_ref_release() it once). Do not release them otherwise. */
typedef struct rayc_buf {
  const void *data;
  size_t len;
  void *priv; /* internal */
  const rayc_ref *refs;
  size_t nrefs;
} rayc_buf;

/* A task argument: a value (data, len), copied at submission, or a reference (ref != NULL).
 * A value may carry refs (refs, nrefs: refs this process holds): the task sees them as its
 * argument's refs, and they stay alive at least until the task has finished (see below). */
typedef struct rayc_arg {
  const void *data;
  size_t len;
  const rayc_ref *ref;
  const rayc_ref *refs;
  size_t nrefs;
} rayc_arg;

#define RAYC_ARG_VAL(p, n) ((rayc_arg){.data = (p), .len = (n), .ref = NULL})
#define RAYC_ARG_REF(r)    ((rayc_arg){.data = NULL, .len = 0, .ref = (r)})
/* A value argument that carries nr refs (an array of rayc_ref). */
#define RAYC_ARG_VAL_REFS(p, n, r, nr) ((rayc_arg){.data = (p), .len = (n), .ref = NULL, .refs = (r), .nrefs = (nr)})

/* The language a task, actor or driver is written in: tasks of a language run on workers of that
 * language (rayc-worker for C; `python3 -m rayc.worker` for Python, see rayc_lang.h). */
typedef enum rayc_language { RAYC_LANG_C = 0, RAYC_LANG_PYTHON = 1 } rayc_language;

/* ---- connecting ---- */

typedef struct rayc_config {
  const char *address;              /* GCS "HOST:PORT"; NULL: $RAYC_ADDRESS, else start a private cluster */
  const char *code_path;            /* the job's code search path: .so files or directories, ':'-separated;
                            NULL: $RAYC_CODE_PATH */
  const char *temp_dir;             /* for a private cluster, and where to look for the cluster token
                            (<temp_dir>/session_latest/cluster_token, <temp_dir>/cluster_token)
                            unless $RAYC_TOKEN_FILE or $RAYC_TOKEN gives it; NULL: $RAYC_TEMP_DIR,
                            else /tmp/rayc */
  double num_cpus;                  /* for a private cluster; <= 0: the core count */
  const char *log_level;            /* NULL: $RAYC_LOG_LEVEL, else "warn" for drivers */
  int gcs_rpc_reconnect_timeout_ms; /* how long a call to the GCS is retried while the GCS is down
                                       (restarting) before it fails with RAYC_EUNAVAILABLE; <= 0:
                                       $RAYC_GCS_RPC_RECONNECT_TIMEOUT_MS, else 60000 */
  int object_store_put_timeout_ms;  /* how long a put waits for room in a full object store before it
                                      fails with RAYC_EOUT_OF_MEMORY; <= 0:
                                      $RAYC_OBJECT_STORE_PUT_TIMEOUT_MS, else 10000 */
  rayc_language language;           /* the driver's own language, whose workers the raylet prestarts for
                                       it; 0 (zeroed config): RAYC_LANG_C */
} rayc_config;

/* Connects this process to a cluster as a driver (cfg may be NULL). Returns 0 or a negative code
 * (RAYC_EUNAUTHENTICATED when the cluster refuses the token found; see temp_dir above). With TLS
 * on, set $RAYC_TLS_CERT, $RAYC_TLS_KEY and $RAYC_TLS_CA to this host's certificate, key and the
 * cluster's CA. Inside a task, the worker is already connected and rayc_init() is not needed. */
RAYC_EXTERN int rayc_init(const rayc_config *cfg);

/* Releases every object this driver owns, returns its leases, marks its job finished and, if
 * rayc_init() started a private cluster, stops it. Safe to call twice. */
RAYC_EXTERN void rayc_shutdown(void);

/* ---- tasks ---- */

/* A custom resource amount, for rayc_task_opts.resources. */
typedef struct rayc_resource {
  const char *name;
  double amount;
} rayc_resource;

/* Where tasks run: the default packs onto the submitting node until it is half busy and then uses
 * the least-loaded node; SPREAD spreads tasks over the nodes; NODE_AFFINITY runs them on one node
 * (node_affinity, a node id in hex as `rayc status` and rayc_node_id() show it), or, when
 * node_affinity_soft is set and that node cannot, wherever the default would. */
typedef enum rayc_strategy {
  RAYC_STRATEGY_DEFAULT = 0,
  RAYC_STRATEGY_SPREAD = 1,
  RAYC_STRATEGY_NODE_AFFINITY = 2,
} rayc_strategy;

typedef struct rayc_placement_group rayc_placement_group; /* (see placement groups, below) */

typedef struct rayc_task_opts {
  int num_returns;                /* default 1 */
  double num_cpus;                /* default 1 */
  double num_gpus;                /* default 0 */
  double memory;                  /* bytes, default 0 */
  int max_retries;                /* retries when the worker dies; default 3 */
  int retry_exceptions;           /* also retry application errors; default 0 */
  const char *name;               /* for logs and `rayc list tasks`; default: the function name */
  const rayc_resource *resources; /* custom resources (at most 5), default none */
  size_t nresources;
  rayc_strategy strategy;    /* default RAYC_STRATEGY_DEFAULT */
  const char *node_affinity; /* NODE_AFFINITY: the node's id in hex (RAYC_NODE_ID_HEX_LEN - 1 digits) */
  int node_affinity_soft;
  const rayc_placement_group *placement_group; /* run in this group's bundles; NULL: none */
  int bundle_index;                            /* with placement_group: the bundle; -1 (default): any of its bundles */
  rayc_language language;                      /* of fn; default RAYC_LANG_C. A task of another language
                            names its function by that binding's descriptor (rayc_lang.h). */
  int streaming; /* a streaming generator task (see "Streaming generators" below); default 0.
                    num_returns must be 1: out[0] is the generator. Also for rayc_actor_call. */
} rayc_task_opts;

/* Sets the defaults above. */
RAYC_EXTERN void rayc_task_opts_init(rayc_task_opts *opts);

/* Submits function fn (a name registered with RAYC_REMOTE in a library on the code path) with
 * nargs arguments. On 0, out[0 .. num_returns-1] hold new references to its results. opts may be
 * NULL (defaults). Returns at once; the task runs on some worker of the cluster. */
RAYC_EXTERN int rayc_remote(const char *fn, const rayc_arg *args, size_t nargs, const rayc_task_opts *opts,
                            rayc_ref *out);

/* Cancels the task that creates ref (which this process must own). A task that has not started
 * is dropped; a running task is asked to stop (rayc_task_cancelled() turns true) or, with force,
 * its worker is killed; with recursive, the tasks it submitted are cancelled too. rayc_get of its
 * results then fails with RAYC_ECANCELLED. A task that already finished is left alone. For an
 * actor call (rayc_actor_call's ref): a call not started yet is dropped (in its turn, keeping the
 * caller's order) and fails with RAYC_ECANCELLED; a running call runs on (force and recursive do
 * not apply). Returns 0 or a negative code. */
RAYC_EXTERN int rayc_cancel(const rayc_ref *ref, int force, int recursive);

/* Writes the id of the node this process runs on (56 hex digits and a NUL) into out
 * (RAYC_NODE_ID_HEX_LEN bytes).
 * Returns 0 or a negative code. */
RAYC_EXTERN int rayc_node_id(char *out);

/* ---- objects ---- */

/* Stores a copy of data as a new object owned by this process. On 0, *out is a new reference. */
RAYC_EXTERN int rayc_put(const void *data, size_t len, rayc_ref *out);

/* Objects that contain refs (Ray's borrowing, its ownership protocol).
 *
 * An object, a task argument or a task result may contain refs: rayc_put_with_refs, the refs of
 * a rayc_arg, rayc_return_refs. Whoever reads it sees them as rayc_buf.refs and may use them like
 * its own refs: rayc_get them, pass them on, put them into other objects. Every ref has one owner,
 * the process that created it (rayc_put, rayc_remote, rayc_actor_call); a process that holds a ref
 * it does not own is a borrower, and the owner keeps the object alive until:
 *   - no handle of the owner itself refers to it (rayc_ref_release), no pending task takes it as
 *     an argument, and
 *   - no live object that contains it remains (a containing object holds its refs until it is
 *     freed), and
 *   - every borrower has dropped it: a process that received it through rayc_get, a task argument
 *     or a task result, and kept it past that (rayc_ref_retain, or by putting it into an object it
 *     holds), is registered with the owner before the container can go away, and tells the owner
 *     when its last hold of the ref is gone (within about a quarter second). A borrower that dies
 *     counts as having dropped it.
 * Then the owner frees every copy. A borrower's rayc_get asks the owner where the object is; if the
 * owner has died, it fails with RAYC_EOWNER_DIED (rayc_last_error() names the owner), as do task
 * arguments that name it.
 *
 * rayc_put_with_refs stores data (copied, as rayc_put does) as a new object that contains the
 * nrefs refs (refs this process holds: RAYC_ENOT_FOUND otherwise); the caller keeps its own
 * handles and releases them as usual (the object holds the refs by itself). */
RAYC_EXTERN int rayc_put_with_refs(const void *data, size_t len, const rayc_ref *refs, size_t nrefs, rayc_ref *out);

/* A piece of an object being put: len bytes from data, at offset in the object. */
typedef struct rayc_part {
  size_t offset;
  const void *data;
  size_t len;
} rayc_part;

/* Like rayc_put_with_refs, for an object of len bytes gathered from nparts parts (in increasing,
 * non-overlapping offsets; bytes no part covers are zero). A large object is written straight
 * into shared memory, one copy per part: a header and a big array's memory need not be joined
 * first. */
RAYC_EXTERN int rayc_put_parts(size_t len, const rayc_part *parts, size_t nparts, const rayc_ref *refs, size_t nrefs,
                               rayc_ref *out);

/* Counts of this process's reference table, to see what it keeps alive (tests, leak hunting). */
typedef struct rayc_ref_counts {
  size_t owned;     /* objects this process owns and keeps (pending, or held here or by others) */
  size_t borrowed;  /* objects owned elsewhere that this process holds, or released less than
                       about a quarter second ago (before it has told their owners) */
  size_t borrowers; /* pairs (owned object, another process borrowing it) */
} rayc_ref_counts;

/* Fills *out. 0 or a negative code. */
RAYC_EXTERN int rayc_ref_counts_get(rayc_ref_counts *out);

/* Waits up to timeout_ms (-1: forever) until all n objects are available and fills out[i]
 * (release with rayc_buf_release); out[i].refs are the refs the object contains. refs may be
 * owned here or borrowed (the owner is asked). Returns 0; RAYC_ETIMEOUT; or the error of the first
 * failed object (e.g. RAYC_ETASK_FAILED, with the detail in rayc_last_error(); RAYC_EOWNER_DIED
 * for a borrowed ref whose owner died). On error no buffer needs releasing. */
RAYC_EXTERN int rayc_get(const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out);

/* Releases buffers returned by rayc_get (n of them). Accepts zeroed buffers. */
RAYC_EXTERN void rayc_buf_release(rayc_buf *bufs, size_t n);

/* Waits until k of the n objects are available or timeout_ms passes (-1: forever), as Ray's wait
 * with num_returns=k: ready[i] is set to 1 for at most k available ones, the first in input order
 * (ready may be NULL). Returns how many it marked (k, or fewer at the timeout), or a negative code;
 * k must be at least 1 (unless n is 0). A failed task's result counts as available, and so does a borrowed ref whose
 * owner is gone (borrowed refs are polled at their owners). */
RAYC_EXTERN int rayc_wait(const rayc_ref *refs, size_t n, size_t k, int64_t timeout_ms, int *ready);

/* Drops this holder's reference; when no reference remains, the object is freed everywhere (for
 * a borrowed ref: when this process holds it no more, its owner is told). */
RAYC_EXTERN void rayc_ref_release(const rayc_ref *ref);

/* Adds a reference to ref (so two holders can release it independently). ref must be held by
 * this process: a handle, or one of a live buffer's refs (which this turns into a handle of the
 * caller's own, to keep after the buffer is released). */
RAYC_EXTERN void rayc_ref_retain(const rayc_ref *ref);

/* Writes the 56 hex digits of ref's id and a NUL into out (RAYC_REF_HEX_LEN bytes); returns out. */
RAYC_EXTERN char *rayc_ref_hex(const rayc_ref *ref, char *out);

/* ---- actors ---- */

/* Stateful actors, as Ray has them. A class is a constructor, a destructor and named methods
 * (RAYC_ACTOR / RAYC_METHOD in a library on the code path). rayc_actor_create() registers an actor
 * with the GCS, which places it on a node, leases a dedicated worker and runs the constructor
 * there; rayc_actor_call() sends a method call straight to that worker and returns references to
 * its results, like rayc_remote(). Calls from one process run in the order it made them (unless
 * max_concurrency > 1). A handle is a plain value (the actor's id): copy it, store it, or pass it
 * to a task or another actor as a value argument; any process of the cluster can call it.
 *
 * Lifetime: an owned actor (the default) dies when the process that created it exits; a detached
 * one lives until rayc_actor_kill(). Faults: when the actor's worker or node dies, the GCS runs
 * the constructor again on a new worker (on another node if its node died) while max_restarts
 * allows; calls that were running are retried up to max_task_retries. Calls on a dead actor fail
 * at rayc_get() with RAYC_EACTOR_DIED, and rayc_last_error() says why it died: killed, its worker
 * died, its node died, its constructor failed, its owner died, or it exited. */

#define RAYC_ACTOR_ID_SIZE 16

/* A handle to an actor: its id. A plain value; it holds no resources. */
typedef struct rayc_actor {
  uint8_t id[RAYC_ACTOR_ID_SIZE];
} rayc_actor;

/* (rayc_resource, a custom resource demand, is defined with the task options above.) */
typedef struct rayc_actor_opts {
  const char *name;               /* a name to find it by (rayc_get_actor); NULL: unnamed */
  const char *ns;                 /* the name's namespace; NULL: "default" (shared by every job) */
  int detached;                   /* 0: dies with its creator; 1: lives until killed */
  int get_if_exists;              /* with a name: return the live actor of that name if there is one */
  int max_restarts;               /* restarts after its worker or node dies; default 0, -1 unlimited */
  int max_task_retries;           /* re-runs of a call whose worker died; default 0, -1 unlimited */
  int max_concurrency;            /* threads running its calls; default 1 (calls run in order) */
  double num_cpus;                /* held for the actor's life; default 0 (as Ray's actors once placed) */
  double num_gpus;                /* default 0 */
  double memory;                  /* bytes, default 0 */
  const rayc_resource *resources; /* custom resources (borrowed during the call); may be NULL */
  size_t num_resources;
  const rayc_placement_group *placement_group; /* live in this group's bundles; NULL: none */
  int bundle_index;                            /* with placement_group: the bundle; -1 (default): any of its bundles */
  rayc_language language;                      /* of the class; default RAYC_LANG_C */
  /* 1: the actor may run in one worker process with other actors of the same job that also share
   * (up to the GCS's --actors-per-worker, default 16), so creating it costs no new process. Only
   * actors that hold no resources (num_cpus, num_gpus, memory and custom resources all 0) and are
   * not in a placement group share; others get a process of their own as with 0 (the default:
   * one process per actor, as in Ray). Sharing actors are isolated only by the GCS's bookkeeping:
   * a crash of the process (abort(), a segfault, its node lost) ends every actor in it, each then
   * restarted per its max_restarts; rayc_actor_kill() or rayc_actor_exit() of one ends that actor
   * alone (a method of it still running is left to return, and its result is dropped: callers get
   * RAYC_EACTOR_DIED). */
  int share_worker;
} rayc_actor_opts;

/* Sets the defaults above. */
RAYC_EXTERN void rayc_actor_opts_init(rayc_actor_opts *opts);

/* Creates an actor of class cls (a name registered with RAYC_ACTOR) with nargs constructor
 * arguments (values, or references to objects this process holds: their values are sent; the
 * GCS keeps them to run the constructor again, so they cannot contain refs: RAYC_EINVALID_ARGUMENT
 * for an argument with refs; pass refs to a method instead). opts may be NULL. On 0, *out is the handle; creation goes on in the background and calls made
 * meanwhile wait for it. RAYC_EALREADY_EXISTS when a live actor already has this name in this
 * namespace (unless get_if_exists, which returns that actor). */
RAYC_EXTERN int rayc_actor_create(const char *cls, const rayc_arg *args, size_t nargs, const rayc_actor_opts *opts,
                                  rayc_actor *out);

/* Calls method on actor a with nargs arguments (values or references, as for rayc_remote). Of
 * opts (may be NULL) only num_returns and name are used; retries come from the actor's
 * max_task_retries. On 0, out[0 .. num_returns-1] hold new references to the results. */
RAYC_EXTERN int rayc_actor_call(const rayc_actor *a, const char *method, const rayc_arg *args, size_t nargs,
                                const rayc_task_opts *opts, rayc_ref *out);

/* Finds the live actor named name in namespace ns (NULL: "default"). 0, or RAYC_ENOT_FOUND. */
RAYC_EXTERN int rayc_get_actor(const char *name, const char *ns, rayc_actor *out);

/* Kills actor a: its worker exits at once (calls in progress are lost). An actor that shares its
 * worker (share_worker) ends alone: its queued calls fail with RAYC_EACTOR_DIED, a method of it
 * still running is left to return and its result is dropped (RAYC_EACTOR_DIED), and the other
 * actors of that process go on. With no_restart = 0 the actor is restarted if its max_restarts
 * allows, else it is DEAD ("killed"). 0 or an error. */
RAYC_EXTERN int rayc_actor_kill(const rayc_actor *a, int no_restart);

typedef enum rayc_actor_state {
  RAYC_ACTOR_PENDING_CREATION = 0,
  RAYC_ACTOR_ALIVE = 1,
  RAYC_ACTOR_RESTARTING = 2,
  RAYC_ACTOR_DEAD = 3,
} rayc_actor_state;

/* Asks the GCS for a's state; num_restarts may be NULL. For a DEAD actor, rayc_last_error() then
 * says why it died. 0 or an error (RAYC_ENOT_FOUND: no such actor). */
RAYC_EXTERN int rayc_actor_get_state(const rayc_actor *a, rayc_actor_state *state, int *num_restarts);

/* Writes the 32 hex digits of a's id and a NUL into out (RAYC_ACTOR_HEX_LEN bytes); returns out. */
RAYC_EXTERN char *rayc_actor_hex(const rayc_actor *a, char *out);

/* ---- placement groups ---- */

/* Resources reserved together across the cluster (Ray's placement groups). A group is a list of
 * bundles, each a set of resources ("CPU", "GPU", "memory" or custom names); the GCS reserves
 * every bundle on some node, following the strategy: PACK puts them on as few nodes as it can,
 * SPREAD on as many, STRICT_PACK all on one node, STRICT_SPREAD each on a different node. Tasks
 * and actors run in a group with rayc_task_opts / rayc_actor_opts .placement_group and
 * .bundle_index, and use the bundle's resources instead of the node's. A group lives until
 * rayc_placement_group_remove() or until the job that created it finishes. Removing it kills the
 * workers running in it; its tasks then fail with RAYC_EINFEASIBLE and its actors die. */

typedef enum rayc_pg_strategy {
  RAYC_PG_PACK = 0,
  RAYC_PG_SPREAD = 1,
  RAYC_PG_STRICT_PACK = 2,
  RAYC_PG_STRICT_SPREAD = 3,
} rayc_pg_strategy;

#define RAYC_PG_ID_SIZE 18

/* A handle to a placement group: its id. A plain value. */
struct rayc_placement_group {
  uint8_t id[RAYC_PG_ID_SIZE];
};

typedef struct rayc_bundle {
  const rayc_resource *resources; /* 1 to 8 (name, amount > 0), e.g. {"CPU", 1} */
  size_t nresources;
} rayc_bundle;

/* Asks the GCS for a group of nbundles bundles (1 to 1000) placed with strategy; name may be
 * NULL. A named group: returns with *out set once the group is placed, or after at most 200 ms
 * with the group still being placed in the background. An unnamed group (Ray's semantics, and
 * the shape of Ray's benchmark: many groups created, then waited for): returns once the request
 * is sent, without waiting for the GCS; the group is placed in the background. Either way
 * rayc_placement_group_wait then needs no call to the GCS when the group was placed, and this
 * process's wait and remove first let a create still on its way land (a create cut by a GCS
 * restart is sent again then: its error, if any, is theirs). Another process that asks the GCS
 * about the group finds it once the create has landed. 0 or an error (bad arguments; a named
 * group's failed create). */
RAYC_EXTERN int rayc_placement_group_create(const rayc_bundle *bundles, size_t nbundles, rayc_pg_strategy strategy,
                                            const char *name, rayc_placement_group *out);

/* Waits up to timeout_ms (-1: an hour) until every bundle of pg is reserved. 0; RAYC_ETIMEOUT
 * when it is still pending (rayc_last_error() says why: e.g. no node has a bundle's resources);
 * RAYC_ENOT_FOUND when it was removed. */
RAYC_EXTERN int rayc_placement_group_wait(const rayc_placement_group *pg, int64_t timeout_ms);

/* Removes pg: its reserved resources go back to their nodes, workers running its tasks and
 * actors are killed, and its tasks not yet run fail. 0 or an error. */
RAYC_EXTERN int rayc_placement_group_remove(const rayc_placement_group *pg);

/* Writes the 36 hex digits of pg's id and a NUL into out (RAYC_PG_HEX_LEN bytes); returns out. */
RAYC_EXTERN char *rayc_placement_group_hex(const rayc_placement_group *pg, char *out);

/* ---- writing actors ---- */

typedef struct rayc_task_ctx rayc_task_ctx; /* (also below, with the task functions) */

/* A constructor: returns the new instance, or NULL after rayc_task_fail() (the constructor
 * failed: the actor is DEAD and calls fail with RAYC_EACTOR_DIED saying why). */
typedef void *(*rayc_actor_ctor_fn)(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs);
/* A destructor: frees an instance when its actor ends in an orderly way (rayc_actor_exit, or its
 * worker being stopped with SIGTERM). May be NULL. */
typedef void (*rayc_actor_dtor_fn)(void *self);
/* A method: like a task function, with the instance. With max_concurrency > 1 methods run on
 * several threads at once and must synchronize access to self themselves. */
typedef int (*rayc_method_fn)(rayc_task_ctx *ctx, void *self, const rayc_buf *args, size_t nargs, size_t nrets);

/* Called from inside a method: once this method returns (its results are delivered), the actor
 * exits for good (DEAD, reason "exited", never restarted); calls queued behind it fail. */
RAYC_EXTERN void rayc_actor_exit(rayc_task_ctx *ctx);

/* Inside a method or constructor: sets *out to the running actor's handle. 0, or
 * RAYC_EINVALID_ARGUMENT outside an actor. */
RAYC_EXTERN int rayc_actor_self(rayc_task_ctx *ctx, rayc_actor *out);

/* Registrations, done by RAYC_ACTOR and RAYC_METHOD when the library loads. */
RAYC_EXTERN void rayc_register_actor(const char *cls, rayc_actor_ctor_fn ctor, rayc_actor_dtor_fn dtor);
RAYC_EXTERN void rayc_register_method(const char *cls, const char *method, rayc_method_fn fn);

/* Registers class cls with its constructor and destructor (NULL for none). */
#define RAYC_ACTOR(cls, ctor, dtor)                                        \
  __attribute__((constructor)) static void rayc_register_actor_##cls(void) \
  {                                                                        \
    rayc_register_actor(#cls, ctor, dtor);                                 \
  }

/* Registers the function cls##_##m (e.g. Counter_incr) as method m ("incr") of class cls. */
#define RAYC_METHOD(cls, m)                                                       \
  __attribute__((constructor)) static void rayc_register_method_##cls##_##m(void) \
  {                                                                               \
    rayc_register_method(#cls, #m, cls##_##m);                                    \
  }

/* ---- errors ---- */

/* This thread's detail message for the last error returned by a rayc function ("" if none). */
RAYC_EXTERN const char *rayc_last_error(void);

/* ---- writing tasks ---- */

typedef struct rayc_task_ctx rayc_task_ctx;

/* A task function. args[i] are its arguments (read-only, valid during the call; args[i].refs are
 * the refs an argument contains: rayc_ref_retain one to keep it after the call, e.g. in an actor's
 * state, and this worker then borrows it from its owner before the task's reply). It produces
 * nrets results by calling rayc_return_alloc() or rayc_return_copy() for each index, and returns
 * 0; or it calls rayc_task_fail() and returns its result. An unset result is an empty object. */
typedef int (*rayc_task_fn)(rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets);

/* Returns len writable bytes for result i, in shared memory when the result is large (so the task
 * writes its result in place, with no copy). NULL if i is out of range or memory ran out. */
RAYC_EXTERN void *rayc_return_alloc(rayc_task_ctx *ctx, size_t i, size_t len);

/* Sets result i to a copy of data. 0 or a negative code. */
RAYC_EXTERN int rayc_return_copy(rayc_task_ctx *ctx, size_t i, const void *data, size_t len);

/* Sets result i to len bytes gathered from nparts parts, as rayc_put_parts takes them (increasing,
 * non-overlapping offsets; bytes no part covers are zero): one copy straight into shared memory
 * for a large result. 0, RAYC_EINVALID_ARGUMENT (i out of range, a part out of order or outside
 * len) or RAYC_EOUT_OF_MEMORY. */
RAYC_EXTERN int rayc_return_parts(rayc_task_ctx *ctx, size_t i, size_t len, const rayc_part *parts, size_t nparts);

/* Makes result i contain the nrefs refs (refs this process holds, e.g. objects the task put, or
 * refs it received), replacing any set before; set its bytes with rayc_return_alloc/copy as usual.
 * The result holds them from this call on, so the task may release its own handles at once. The
 * caller reads them as the result buffer's refs; before the task's reply is sent, the caller is
 * registered as their borrower with their owners (this process, for objects the task created),
 * so they outlive the task. A failed task's results carry no refs. 0, RAYC_EINVALID_ARGUMENT (i
 * out of range) or RAYC_ENOT_FOUND (a ref this process does not hold). */
RAYC_EXTERN int rayc_return_refs(rayc_task_ctx *ctx, size_t i, const rayc_ref *refs, size_t nrefs);

/* Records an application error for this task and returns RAYC_ETASK_FAILED (so a task can
 * `return rayc_task_fail(ctx, "bad input %d", x);`). rayc_get() of its results fails with it. */
RAYC_EXTERN int rayc_task_fail(rayc_task_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns 1 once the running task has been cancelled (without force): a long task should check it
 * and return early. */
RAYC_EXTERN int rayc_task_cancelled(const rayc_task_ctx *ctx);

/* In a worker: the calls that pushed it normal tasks or actor calls (PushTask, and PushTasks carrying several
 * queued tasks at once) and the tasks they carried, since the process started. For tests and
 * diagnostics; 0 each in a driver. Returns 0. */
RAYC_EXTERN int rayc_worker_push_counts(uint64_t *calls, uint64_t *tasks);

/* ---- streaming generators (Ray's num_returns="streaming") ----
 *
 * A task or actor method submitted with opts.streaming = 1 hands out its results one by one while
 * it runs: each rayc_yield() makes a new object, owned by the caller, and the caller reads their
 * refs in order with rayc_stream_next() on the one ref rayc_remote()/rayc_actor_call() gave it
 * (the generator), before the task has finished. rayc_yield() returns once the caller has the
 * item (the next item is not made before), so a task that yields is slowed by a slow network to
 * its caller, not by a slow reader: items not yet read wait at the caller.
 *
 * The generator ref is an object like any other: rayc_get() of it waits for the task to end and
 * gives the item count (a uint64_t), or the task's error; rayc_cancel() of it cancels the task;
 * releasing it (rayc_ref_release) also releases, once the task has ended, the items not read yet
 * (items read are the reader's refs, released as usual).
 *
 * Faults: if the worker dies, the task is retried as usual (max_retries) and runs from the start;
 * the items the caller already has are kept and the same items yielded again are ignored, so the
 * generator must yield the same sequence each time (Ray's rule). Items are not re-made when lost
 * (rayc_get of a lost item fails with RAYC_EOBJECT_LOST). */

/* In a streaming task: makes a new item of len bytes gathered from parts (as rayc_put_parts;
 * written straight into shared memory when large) that contains the nrefs refs (refs this
 * process holds; the caller borrows them), and hands it to the caller. 0;
 * RAYC_EINVALID_ARGUMENT (not a streaming task, bad parts); RAYC_EOUT_OF_MEMORY (the store is
 * full); RAYC_EOWNER_DIED or RAYC_EUNAVAILABLE (the caller is gone: the task should return). */
RAYC_EXTERN int rayc_yield_parts(rayc_task_ctx *ctx, size_t len, const rayc_part *parts, size_t nparts,
                                 const rayc_ref *refs, size_t nrefs);

/* 1 when ctx's task is a streaming one (rayc_yield works), else 0. */
RAYC_EXTERN int rayc_task_streaming(const rayc_task_ctx *ctx);

/* rayc_yield_parts of one buffer without refs. */
RAYC_EXTERN int rayc_yield(rayc_task_ctx *ctx, const void *data, size_t len);

/* The caller: waits up to timeout_ms (< 0: no limit, 0: do not wait) for the next item of
 * generator gen (a ref this process owns). Returns 1 with *out a new ref to it (release it with
 * rayc_ref_release); 0 at the end (the task finished and every item was read); the task's error
 * (RAYC_ETASK_FAILED, RAYC_EWORKER_DIED, RAYC_ECANCELLED..., rayc_last_error() says why) after the
 * items it yielded before failing were read, again on every later call; RAYC_ETIMEOUT. */
RAYC_EXTERN int rayc_stream_next(const rayc_ref *gen, int64_t timeout_ms, rayc_ref *out);

/* 1 when rayc_stream_next(gen) would not wait (an item is there, or the end, or the error), 0
 * when it would, or a negative code (gen is not a ref this process owns). */
RAYC_EXTERN int rayc_stream_ready(const rayc_ref *gen);

/* Registers fn under name; done by RAYC_REMOTE when the library loads. */
RAYC_EXTERN void rayc_register_function(const char *name, rayc_task_fn fn);

/* Registers a task function under its own name when the shared library is loaded. */
#define RAYC_REMOTE(fn)                                             \
  __attribute__((constructor)) static void rayc_register_##fn(void) \
  {                                                                 \
    rayc_register_function(#fn, fn);                                \
  }

/* ---- typed arguments and results ----
 *
 * Arguments and results are bytes; these helpers pass and read the common kinds without a memcpy
 * and a length check at every call site. RAYC_ARG_I64/F64 take a value (kept in a compound
 * literal, so use them in the call's own statement or block), RAYC_ARG_STR a NUL-terminated
 * string (sent without the NUL), RAYC_ARG_ACTOR an actor handle (by value: the task reads it back
 * with rayc_buf_actor and may call the actor). The readers return 0, or RAYC_EINVALID_ARGUMENT
 * when the buffer is not of that kind (wrong length, or a string that does not fit). */
#define RAYC_ARG_I64(v)   RAYC_ARG_VAL(&(int64_t){(v)}, sizeof(int64_t))
#define RAYC_ARG_F64(v)   RAYC_ARG_VAL(&(double){(v)}, sizeof(double))
#define RAYC_ARG_STR(s)   RAYC_ARG_VAL((s), strlen(s))
#define RAYC_ARG_ACTOR(a) RAYC_ARG_VAL((a)->id, RAYC_ACTOR_ID_SIZE)

static inline int rayc_buf_i64(const rayc_buf *b, int64_t *out)
{
  if (!b || !b->data || b->len != sizeof(int64_t))
    return RAYC_EINVALID_ARGUMENT;
  memcpy(out, b->data, sizeof(int64_t));
  return 0;
}

static inline int rayc_buf_f64(const rayc_buf *b, double *out)
{
  if (!b || !b->data || b->len != sizeof(double))
    return RAYC_EINVALID_ARGUMENT;
  memcpy(out, b->data, sizeof(double));
  return 0;
}

/* Copies the buffer into out (cap bytes) as a NUL-terminated string. */
static inline int rayc_buf_str(const rayc_buf *b, char *out, size_t cap)
{
  if (!b || (!b->data && b->len) || cap == 0 || b->len >= cap || memchr(b->data, 0, b->len))
    return RAYC_EINVALID_ARGUMENT;
  if (b->len)
    memcpy(out, b->data, b->len);
  out[b->len] = '\0';
  return 0;
}

static inline int rayc_buf_actor(const rayc_buf *b, rayc_actor *out)
{
  if (!b || !b->data || b->len != RAYC_ACTOR_ID_SIZE)
    return RAYC_EINVALID_ARGUMENT;
  memcpy(out->id, b->data, RAYC_ACTOR_ID_SIZE);
  return 0;
}

/* Sets result i to an int64 / a double (rayc_return_copy of its bytes). */
static inline int rayc_return_i64(rayc_task_ctx *ctx, size_t i, int64_t v)
{
  return rayc_return_copy(ctx, i, &v, sizeof(v));
}

static inline int rayc_return_f64(rayc_task_ctx *ctx, size_t i, double v)
{
  return rayc_return_copy(ctx, i, &v, sizeof(v));
}

#ifdef __cplusplus
}
#endif

#endif
