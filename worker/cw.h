/*
 * The core worker: the part of librayc that every driver and worker runs. It owns the objects
 * this process created (their state, inline values and reference counts), submits tasks through
 * worker leases, and, in a worker, executes the tasks pushed to it.
 *
 * Threads and locking. librayc lives inside the user's process, so it has no event loop of its
 * own (a departure from the daemons' one-loop rule, written down in docs/ARCHITECTURE.md): one
 * mutex (cw->mu) guards all core-worker state; the user's threads call in directly; gRPC
 * completions run on the rpc client's thread (in a driver, on a thread blocked in rayc_get that
 * borrowed the client's queue: cw_get_poll.c) and take the same mutex; cw->cv is broadcast when an
 * object changes state. A background thread returns idle leases. In a worker, PushTask requests
 * arrive on the rpc server's thread and are queued for the executing thread (the process's main
 * thread), so a task may itself submit tasks and wait for them.
 *
 * Process-wide state: one core worker per process, in librayc's one runtime context (cw_proc,
 * worker/cw_proc.h), as a C library API without a context argument requires; everything here
 * takes its cw_t * as an argument or from its callback's context.
 */
#ifndef RAYC_CW_H
#define RAYC_CW_H

#include "common/hmap.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/res.h"
#include "common/rpc.h"
#include "object-store/store_client.h"
#include "proto/gcs_actor.pb-c.h"
#include "rayc.h"
#include "rayc_lang.h"
#include "worker/cw_copy.h"

#include <pthread.h>
#include <stdint.h>

enum {
  CW_INLINE_MAX = 100 * 1024,          /* values up to this size travel inline */
  CW_MAX_IN_FLIGHT = 16,               /* tasks pushed to one leased worker at once */
  CW_PIPELINE_RUN_US = 1000,           /* a busy worker takes more only of classes whose tasks run shorter */
  CW_PIPELINE_SLACK_US = 20000,        /* ... and while its replies are no later than this past due (well
                                        * above a loaded machine's scheduling delays, which would
                                        * otherwise stop pipelining where nothing runs long) */
  CW_RUN_SLOTS = 8,                    /* functions whose run times a class remembers */
  CW_PUSH_BATCH_MAX = 8,               /* queued tasks sent in one PushTasks call (cw_push.c) */
  CW_PUSH_BATCH_MAX_LIMIT = 64,        /* the most RAYC_PUSH_BATCH_MAX may ask for */
  CW_PUSH_BATCH_BYTES = 1 << 20,       /* ... and at most about this many bytes of arguments */
  CW_MAX_LEASE_REQUESTS = 10,          /* pending lease requests per scheduling class */
  CW_LEASE_IDLE_MS = 100,              /* an idle lease is returned after this long */
  CW_LEASE_RETRY_MS = 500,             /* lease requests that only reached unreachable raylets: ask again after */
  CW_LEASE_RETRY_FOR_MS = 60000,       /* ... for this long, then fail the class's tasks */
  CW_RES_MAX = 10,                     /* CPU, GPU, memory, 5 custom, a placement-group marker */
  CW_RES_NAME_MAX = 96,                /* placement groups: R_group_<i>_<36 hex> */
  CW_GCS_RECONNECT_TIMEOUT_MS = 60000, /* default of gcs_rpc_reconnect_timeout_ms */
  CW_PUT_TIMEOUT_MS = 10000,           /* default of object_store_put_timeout_ms */
  CW_BORROW_IDLE_MS = 250,             /* a borrowed ref nothing holds is removed at its owner after this */
  CW_BORROW_POLL_MS = 30000,           /* an owner's WaitOwnerExit call held on a borrower */
  CW_BORROW_POLL_RETRY_MS = 200,       /* a failed one is tried again after this long... */
  CW_BORROW_POLL_FAILURES = 3,         /* ...and the borrower is dead after this many in a row */
  CW_BORROW_RPC_MS = 10000,            /* AddBorrower and other synchronous calls to owners */
  CW_PG_CREATE_WAIT_MS = 200,          /* a create's reply waits this long for the group to be CREATED */
  CW_PG_CREATES_IN_FLIGHT = 256,       /* creates sent without waiting (cw_pg.c): at most this many at once */
};

typedef struct cw_blob {
  int refs; /* guarded by cw->mu */
  size_t len;
  uint8_t data[];
} cw_blob_t;

/* OBJ_BORROWED: a ref owned by another process (o->owner); its owner knows its state. */
enum cw_obj_state { OBJ_PENDING, OBJ_INLINE, OBJ_IN_STORE, OBJ_ERROR, OBJ_BORROWED };

struct cw;
typedef struct cw_task cw_task_t;
typedef struct cw_object cw_object_t;
typedef struct cw_status_wait cw_status_wait_t;

/* Another process this one borrows refs from (their owner) or lends refs to (a borrower), by
 * worker id (cw_borrow.c). Kept until the core worker is destroyed. */
typedef struct cw_peer {
  struct cw *cw; /* the core worker that knows it (callbacks find it here) */
  id_worker_t id;
  id_node_t node;
  char ip[64];
  int port;
  char target[96];   /* "ip:port" of its CoreWorkerService */
  rpc_channel_t *ch; /* NULL until first used */
  int dead;          /* it died (or exited): its refs fail with OWNER_DIED */
  char *dead_msg;
  /* as an owner: registrations to drop (RemoveBorrower), sent by the background thread */
  uint8_t *rm_ids;
  uint32_t *rm_counts;
  size_t nrm, caprm;
  int rm_listed; /* in cw->rm_peers */
  /* as a borrower of objects owned here: a WaitOwnerExit call held on it tells when it exits */
  size_t nborrows; /* (object, this peer) entries */
  int polling, failures;
  int64_t retry_at_ms; /* a failed poll is tried again then (0: none due) */
} cw_peer_t;

/* A ref an object or an argument contains: its id, and its entry in this process's table while
 * the container holds it (NULL: an owned object that was already gone when the container was
 * read). */
typedef struct cw_nested {
  id_object_t id;
  cw_object_t *obj;
} cw_nested_t;

typedef struct cw_borrower {
  cw_peer_t *peer;
  int count; /* AddBorrower registrations not yet removed */
} cw_borrower_t;

/* An object this process owns, or a ref it borrows (owner != NULL). An owned object is freed when
 * no handle, pending task, containing object, borrower or result in transit holds it and it is
 * no longer pending; a borrowed entry when no handle, task or containing object holds it (its
 * owner is told, after CW_BORROW_IDLE_MS, if this process had registered with it). */
/* The borrowing state of an object, allocated when first needed (most objects never need it:
 * a task result read by its owner only), to keep cw_object_t small. */
typedef struct cw_obj_ext {
  cw_nested_t *nested; /* the refs it contains (each holds one `contained` of its entry) */
  size_t nnested;
  cw_borrower_t *borrowers; /* owned: other processes that borrow it */
  size_t nborrowers;
  cw_status_wait_t **swaits; /* owned: GetObjectStatus calls waiting for it to be ready */
  size_t nswaits;
  int transit;           /* owned: returned inside a task result whose reply is not applied yet */
  int64_t idle_since_ms; /* borrowed: nothing here holds it (it waits in cw->idle to be removed) */
} cw_obj_ext_t;

struct cw_object {
  id_object_t id;
  enum cw_obj_state state;
  int local_refs;     /* handles held by this process's code, and by buffers and results that list it */
  int submitted_refs; /* pending tasks that take it as an argument (or in an argument) */
  int contained;      /* objects in this process's table that contain it */
  int registered;     /* borrowed: AddBorrower registrations of this process at the owner, to remove */
  cw_blob_t *blob;    /* OBJ_INLINE */
  id_node_t node;     /* OBJ_IN_STORE: the node holding the primary copy */
  uint32_t wait_mark; /* owned, pending: 1 + its place in cw->wait_memo (0: none; cw_wait.c) */
  char *location;     /* OBJ_IN_STORE: that node's object manager "ip:port" (NULL: unknown) */
  cw_task_t *lineage; /* the finished task that made it, kept to re-run it if the object is lost */
  uint64_t size;
  int err;     /* OBJ_ERROR */
  int scratch; /* for counting within one call, cw->mu held */
  char *err_msg;
  cw_task_t **waiters; /* tasks waiting for this object to be ready */
  size_t nwaiters, capwaiters;
  cw_peer_t *owner; /* borrowed: its owner; NULL: owned here */
  cw_obj_ext_t *x;  /* NULL until needed (cw_obj_x) */
};

typedef struct cw_arg {
  cw_blob_t *value;    /* by value, or NULL */
  id_object_t ref;     /* by reference (held by this process) */
  cw_nested_t *nested; /* by value: the refs it carries (each holds one submitted_refs) */
  size_t nnested;
} cw_arg_t;

/* Refs as NestedRefs messages (runs of one owner), for a message being built. */
typedef struct cw_nested_msg {
  Rayc__NestedRefs **groups;
  size_t n;
  Rayc__NestedRefs *g;
  Rayc__Address *addr;
  uint8_t *ids;
} cw_nested_msg_t;

/* A task's arguments as TaskArg messages (cw_args_msg_build). */
typedef struct cw_args_msg {
  Rayc__TaskArg **ptrs;
  Rayc__TaskArg *storage;
  Rayc__ObjectRefInfo *refs;
  Rayc__Address *owners;
  cw_nested_msg_t *nested;
  size_t n;
} cw_args_msg_t;

typedef struct cw_class cw_class_t;
typedef struct cw_lease cw_lease_t;

struct cw_task {
  cw_task_t *next;
  id_task_t id;
  char *fn;
  char *name;
  cw_arg_t *args;
  size_t nargs;
  int num_returns;
  int deps_pending;
  int attempts_left;
  int oom_attempts_left; /* retries after its worker was killed for memory (cw_oom.c) */
  int retry_exceptions;
  int attempt;
  int dep_err; /* a dependency failed: fail without running */
  char *dep_err_msg;
  cw_class_t *cls;
  cw_lease_t *lease;                             /* while pushed */
  int64_t expect_us;                             /* while pushed: how long it should run (-1: not known short) */
  void (*on_ready)(struct cw *cw, cw_task_t *t); /* actor calls: run instead of queueing in cls */
  id_task_t parent;                              /* the task that submitted it (in workers), for recursive cancel */
  int cancelled;                                 /* rayc_cancel was called: report CANCELLED, never retry */
  int live_returns;                              /* finished, kept as lineage: its return objects still alive */
  int streaming;                                 /* a streaming generator task (cw_stream.c) */
};

struct cw_class {
  cw_class_t *next;
  struct cw *cw; /* its core worker (lease and push callbacks find it here) */
  char key[512];
  res_set_t res;          /* the demand of its tasks (at most CW_RES_MAX names) */
  uint8_t pg[ID_PG_SIZE]; /* has_pg: the placement group its tasks run in */
  int has_pg, bundle_index;
  int strategy; /* RAYC_STRATEGY_* */
  int language; /* enum rayc_language: the kind of worker its leases get */
  uint8_t affinity[ID_NODE_SIZE];
  int affinity_soft;
  cw_task_t *head, *tail;
  size_t queued;
  cw_lease_t *leases;
  int lease_requests;           /* in flight */
  struct cw_lease_req *reqs;    /* the lease requests in flight (cw_submit.c) */
  int64_t retry_after_ms;       /* > 0: no new lease request before this (monotonic ms) */
  int64_t unreachable_since_ms; /* > 0: lease requests have ended at unreachable raylets since */
  struct cw_fn_run {            /* how long its recent functions ran on their workers (cw_push.c) */
    uint64_t fn;                /* hash of the function's name; 0: a free slot */
    int64_t run_us;             /* a moving average of its last ~8 runs */
  } runs[CW_RUN_SLOTS];
  unsigned runs_next; /* the slot a new function takes */
};

struct cw_lease {
  cw_lease_t *next;
  cw_class_t *cls;
  uint8_t id[16];
  char target[96]; /* the worker's ip:port */
  id_worker_t worker_id;
  id_node_t node_id;
  rpc_channel_t *ch;
  rpc_channel_t *raylet; /* the raylet that granted it (after spillback, not ours) */
  int in_flight;
  unsigned pushed;    /* tasks pushed over its life */
  int32_t gpu_ids[8]; /* GPUs the raylet gave this lease */
  size_t ngpus;
  int dead;
  int wanted; /* its worker said other owners wait: returned as soon as it is idle */
  int64_t idle_since_ms;
  int64_t progress_us; /* monotonic: when it last went busy or a reply came (cw_lease_runs_short) */
  int64_t expect_us;   /* how long its tasks in flight should run, summed (those known to run short) */
  int long_in_flight;  /* its tasks in flight not known to run short */
};

typedef struct cw {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int is_worker;
  int pid; /* getpid() at creation (a forked worker creates its core worker after the fork) */
  id_job_t job;
  id_worker_t worker_id;
  id_node_t node_id;
  id_task_t current_task; /* puts are named after it */
  uint32_t put_index;
  /* cw_wait.c: the owned refs rayc_wait last found pending, in input order from the first ref
   * (their ids: ids[0..pend)); an object that becomes ready cuts pend at its place (wait_mark) */
  struct cw_wait_memo {
    uint8_t *ids;
    size_t pend, cap;
  } wait_memo;
  char node_ip[64];
  char store_address[96]; /* this node's object manager "ip:port", "" if none */
  int port;               /* CoreWorkerService port; 0 in drivers */
  char *code_path;
  int language; /* a driver's enum rayc_language (its workers are prestarted) */
  rpc_client_t *client;
  rpc_channel_t *gcs, *raylet;
  store_client_t *store;
  int raylet_fd;
  hmap_t objects;
  hmap_t tasks; /* unfinished tasks by TaskID */
  cw_class_t *classes;
  pthread_t bg;
  int bg_running, stopping;
  int client_closing; /* rpc_client_destroy is running: start no calls */
  int node_draining;  /* worker: the raylet said the node drains (atomic): replies say worker_exiting */
  int lease_wanted;   /* worker: the raylet said other owners wait (atomic): the next reply says so */
  pthread_cond_t bg_cv;
  int bg_sleeping, bg_kicked;        /* atomics: cw_bg.c's sleep and its wake-up */
  rpc_server_t *server;              /* workers */
  char *session_dir;                 /* a private cluster started by rayc_init, or NULL */
  char *token;                       /* the cluster token every call carries and our servers require (owned;
                               NULL: none): $RAYC_TOKEN in workers, found by rayc_init in drivers */
  rpc_tls_t tls;                     /* TLS files from $RAYC_TLS_* (borrowed from the environment) */
  int min_port, max_port;            /* our gRPC servers' ports, from $RAYC_MIN/MAX_WORKER_PORT; 0: ephemeral */
  int gcs_reconnect_timeout_ms;      /* how long GCS calls are retried while the GCS is down (cw_gcs.c) */
  int put_timeout_ms;                /* how long a put waits for room in a full store (cw_object.c) */
  struct cw_copy *copy;              /* cw_copy.c: large copies into the store, split across threads */
  struct cw_actors *actors;          /* cw_actor_submit.c: the actors this process calls; NULL until used */
  struct cw_streams *streams;        /* cw_stream.c: generators this process owns; NULL when none */
  struct cw_pgs *pgs;                /* cw_pg.c: groups this process creates, saw CREATED, removed */
  /* borrowing (cw_borrow.c) */
  hmap_t peers;         /* worker id -> cw_peer_t */
  cw_peer_t **rm_peers; /* peers with removals to send */
  size_t nrm_peers, caprm_peers;
  struct cw_idle {
    id_object_t id;
    int64_t since;
  } * idle; /* FIFO of borrowed refs released */
  size_t idle_head, idle_len, idle_cap;
  cw_status_wait_t *swaits; /* every parked GetObjectStatus call */
  int releasing;            /* cw_objects_release_all: freeing cascades nothing */
  int npoll_retry;          /* peers with a poll to retry */
  int lease_idle_ms;        /* an idle lease is held this long for more tasks (cw_lease_idle_ms) */
  int push_batch_max;       /* tasks per PushTasks call (cw_push_batch_max; 1: every task alone) */
  int pipeline_any;         /* $RAYC_PIPELINE=any: busy workers take tasks whatever their run times */
  int oom_retries;          /* cw_oom_retries(), read once */
  /* cw_object.c: getters are woken after cw->mu is let go, inside cw_wake_hold()/cw_wake_release() */
  int wake_held, wake_pending;
  pthread_t wake_holder; /* the thread inside cw_wake_hold (others wake getters at once) */
  /* cw_get_poll.c: a getter that polls the rpc client's queue itself (drivers) */
  int get_lend;                /* the client's thread is the process's one poller: getters may borrow its queue */
  _Atomic int get_borrowing;   /* cw->mu to set: a getter polls (others wake it with rpc_client_kick) */
  unsigned long ready_gen;     /* cw->mu: objects made ready so far (a getter that unlocked sees it moved) */
  struct cw_last_class { /* cw_submit.c: the class of the last plain task (no custom resources, no
                               placement group, no node affinity) and its shape */
    cw_class_t *cls;     /* NULL: none yet */
    double cpus, gpus, memory;
    int strategy, language;
  } last_class;
} cw_t;

/* The CoreWorkerService/ActorWorkerService table a worker (driver 0) or a driver (1) serves; for
 * tests that check it against the service descriptors. */
const rpc_method_t *cw_service_methods(int driver, size_t *n);

/* cw_core.c */
int cw_set_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cw_connect_node(cw_t *cw, const char *raylet_socket, int is_driver);
void cw_destroy(cw_t *cw);
/* rayc_part lists (puts and yielded items): the check sets the error for what ("rayc_put_parts")
 * and returns RAYC_EINVALID_ARGUMENT when a part is out of order, outside len or NULL; the write
 * is cw_copy_parts(cw->copy, ...) (cw_copy.h: zeroed gaps, large objects split across threads). */
int cw_parts_check(const char *what, size_t len, const rayc_part *parts, size_t nparts);
cw_t *cw_create(int is_worker);
void cw_fill_address(cw_t *cw, Rayc__Address *a);
/* A worker's task waits in get (1) or runs again (0): tells the raylet (any thread). */
void cw_notify_blocked(cw_t *cw, int blocked);
/* A driver starts its CoreWorkerService (borrowing, and WaitOwnerExit for its actors' GCS). Its
 * client's thread polls gRPC's sockets for the server too (rpc.h non_polling: one poller a
 * process; two hand the role back and forth on every event). */
int cw_driver_serve(cw_t *cw);

/* cw_gcs.c (cw->mu not held). A synchronous call to the GCS (rpc_call_sync's contract) that is
 * retried while the GCS is unavailable, for up to cw->gcs_reconnect_timeout_ms; then it fails with
 * RAYC_EUNAVAILABLE and a *detail naming the setting. cw_gcs_call uses cw->gcs. */
int cw_gcs_call(cw_t *cw, const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req,
                int timeout_ms, ProtobufCMessage **resp, char **detail);
int cw_gcs_call_on(cw_t *cw, rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                   const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail);
/* $RAYC_GCS_RPC_RECONNECT_TIMEOUT_MS (ms > 0), else CW_GCS_RECONNECT_TIMEOUT_MS. */
int cw_gcs_reconnect_timeout_ms(void);

/* cw_object.c (callers hold cw->mu unless noted) */
cw_object_t *cw_obj_new(cw_t *cw, const id_object_t *id);
/* o's borrowing state, allocated on first use. */
cw_obj_ext_t *cw_obj_x(cw_object_t *o);
cw_object_t *cw_obj_get(cw_t *cw, const id_object_t *id);
/* o (its wait_mark set) is no longer pending: rayc_wait's memo ends before its place (cw_wait.c). */
void cw_memo_cut(cw_t *cw, cw_object_t *o);
void cw_obj_set_inline(cw_t *cw, cw_object_t *o, const void *data, size_t len);
void cw_obj_set_store(cw_t *cw, cw_object_t *o, const id_node_t *node, uint64_t size, const char *location);
/* Makes object id (on another node, at location "ip:port") readable from this node's store:
 * pulls it unless it is already here. Called without cw->mu. */
int cw_fetch_remote(cw_t *cw, const uint8_t *id, const char *location);
void cw_obj_set_error(cw_t *cw, cw_object_t *o, int err, const char *msg);
void cw_obj_maybe_free(cw_t *cw, cw_object_t *o);
/* Objects made ready between cw_wake_hold() (cw->mu held) and the matching cw_wake_release() (just
 * after letting go of cw->mu) wake the threads blocked in get and wait only then, once: woken
 * while the lock is still held, a getter would at once sleep again on the lock (a context switch
 * more per reply). */
void cw_wake_hold(cw_t *cw);
int cw_wake_take(cw_t *cw); /* cw->mu held: 1 when something became ready since cw_wake_hold */
void cw_wake_release(cw_t *cw, int pending);
/* A getter's wait (cw->mu held, as pthread_cond_wait/timedwait on cw->cv with deadline dl, NULL:
 * none; returns 0 or ETIMEDOUT, may return early: look again). In a driver whose rpc client
 * polls alone, the first getter borrows the client's queue (rpc_client_lend_begin) and waits
 * there, running the replies' callbacks itself: the reply that makes its object ready wakes it
 * directly, not the client thread, which then wakes it (worker/cw_get_poll.c). */
int cw_get_block(cw_t *cw, const struct timespec *dl);
/* Where getters are woken: also wakes a getter that polls, when it is not the caller. */
void cw_get_kick(cw_t *cw);
/* Drops one local_refs of o (a handle, a buffer's or a result's hold). */
void cw_obj_unref(cw_t *cw, cw_object_t *o);
cw_blob_t *cw_blob_new(const void *data, size_t len);
void cw_blob_unref(cw_blob_t *b);
void cw_objects_release_all(cw_t *cw);
/* rayc_get without the argument checks; register_nested: register with the owners of the refs the
 * objects contain before returning (rayc_get does; a worker reading its arguments does not, the
 * submitter holds them until the reply). Called without cw->mu. */
int cw_get(cw_t *cw, const rayc_ref *refs, size_t n, int64_t timeout_ms, rayc_buf *out, int register_nested);

/* cw_submit.c (callers hold cw->mu) */
void cw_task_ready(cw_t *cw, cw_task_t *t);
void cw_task_free(cw_t *cw, cw_task_t *t);
int cw_add_arg(cw_t *cw, cw_task_t *t, size_t i, const rayc_arg *a);
/* Builds t's arguments for a PushTask (self: this process's address); free with cw_args_msg_free
 * after the call is started. */
void cw_args_msg_build(cw_t *cw, cw_task_t *t, Rayc__Address *self, cw_args_msg_t *m);
void cw_args_msg_free(cw_args_msg_t *m);
void cw_apply_returns(cw_t *cw, cw_task_t *t, const Rayc__PushTaskReply *rep);
/* cw_push.c, also for actor calls (cw_actor_submit.c): whether t's arguments hand the worker refs
 * it could wait on (such a task or call travels alone), and about how many bytes its arguments
 * add to a push. cw->mu held. */
int cw_task_lends_refs(cw_t *cw, const cw_task_t *t);
size_t cw_task_arg_bytes(cw_t *cw, const cw_task_t *t);
/* Entry i of a PushTasks reply, unpacked into arena (cw_push_arena_init; never pb_free); *status 0,
 * or the status (and *why, in the arena too) its own PushTask would have got (cw_push.c). */
Rayc__PushTaskReply *cw_push_batch_entry(const Rayc__PushTasksReply *rep, size_t i, pb_arena_t *arena, int *status,
                                         const char **why);
/* Readies arena for the entries of rep (NULL: a failed call). */
void cw_push_arena_init(pb_arena_t *arena, const Rayc__PushTasksReply *rep);
void cw_task_fail(cw_t *cw, cw_task_t *t, int err, const char *msg);
/* cw_submit.c: puts t first in its class's queue (or takes the first); pushes queued tasks and
 * asks for leases. */
void cw_class_push_front(cw_class_t *c, cw_task_t *t);
cw_task_t *cw_class_pop(cw_class_t *c);
void cw_pump(cw_t *cw, cw_class_t *c);
/* cw_push.c: whether lease l takes another of c's queued tasks now (pipelining rules), and pushing
 * what it takes: one task by PushTask, or the tasks already queued (up to cw->push_batch_max and
 * CW_PUSH_BATCH_BYTES) in one PushTasks call. cw_push_batch_max: $RAYC_PUSH_BATCH_MAX (1..64),
 * else CW_PUSH_BATCH_MAX. */
int cw_lease_takes(const cw_class_t *c, const cw_lease_t *l, int spread);
void cw_push_queued(cw_t *cw, cw_class_t *c, cw_lease_t *l, int spread);
int cw_push_batch_max(void);
/* $RAYC_PIPELINE: "any" pipelines tasks to busy workers whatever their functions' run times (as
 * rayc did before session 10; tests of batch mechanics use it); otherwise only short ones. */
int cw_pipeline_any(void);
/* cw_oom.c: t's push to lease l failed (status, detail): asks l's raylet whether its memory monitor
 * killed the worker, then retries t or fails it (OUT_OF_MEMORY or WORKER_DIED). */
void cw_task_worker_died(cw_t *cw, cw_task_t *t, cw_lease_t *l, int status, const char *detail);
/* RAYC_TASK_OOM_RETRIES, or the default: a retriable task's budget of OOM retries. */
int cw_oom_retries(void);
void cw_leases_return_idle(cw_t *cw, int all);
/* Takes lease l off its class and gives its worker back to the raylet that granted it (cw->mu held;
 * frees l). */
void cw_lease_remove(cw_t *cw, cw_lease_t *l, int worker_exiting);
/* cw_lease.c: an idle lease goes back as soon as other owners wait (proto LeaseWanted).
 * cw_lease_note_owner: a worker remembers who pushed it a normal task (spec borrowed; called with
 * cw_proc.exec.mu held). cw_lease_wanted_tell: the worker's raylet said other owners wait (any
 * thread, no lock held): flags the next reply and tells the lease's owner at once.
 * cw_on_lease_wanted: the owner's handler (CoreWorkerService.LeaseWanted). */
void cw_lease_note_owner(const Rayc__TaskSpec *spec);
/* $RAYC_LEASE_IDLE_MS (0..3600000), else CW_LEASE_IDLE_MS. */
int cw_lease_idle_ms(void);
void cw_lease_wanted_tell(cw_t *cw);
void cw_on_lease_wanted(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_classes_free(cw_t *cw);
/* Cancels every unfinished task submitted by parent (recursive cancel); cw->mu held. */
void cw_cancel_children(cw_t *cw, const id_task_t *parent, int force);
/* Waits up to timeout_ms for the CancelTask calls this process sent to be answered. */
void cw_cancel_drain(int timeout_ms);
void *cw_bg_main(void *arg);
/* cw_bg.c: something may have work for the background thread (a public API call, a call the
 * worker's server accepted): a sleeping worker's thread wakes and ticks for a while. Any thread,
 * no lock held; cheap when the thread is awake. cw_bg_kick_ctx takes the cw as void *. */
void cw_bg_kick(cw_t *cw);
void cw_bg_kick_ctx(void *cw);
/* The same with cw->mu held (a reply handler that left work for the tick). */
void cw_bg_kick_locked(cw_t *cw);
/* cw_exit.c: stops the background thread and reports the last task events; returns 1 when the
 * worker has nothing else to hand back (no leases, borrowed or lent refs, parked waits, actor
 * handles; a C worker, not a binding's) and may _exit at once, 0 when cw_destroy() must run.
 * Call after the server is gone. */
int cw_worker_exit_quick(cw_t *cw);

/* cw_pg.c */
/* The resource names a task of placement group pg (bundle index, -1: any) asks for instead of
 * name: "<name>_group_<index>_<pghex>" or "<name>_group_<pghex>" into out (CW_RES_NAME_MAX). */
void cw_pg_res_name(const uint8_t *pg, int index, const char *name, char *out);
/* 1 when this process removed pg (cw->mu held). */
int cw_pg_is_removed(cw_t *cw, const uint8_t *pg);
/* Waits up to ms for the creates still in flight (before the job is marked finished, so that no
 * group of it reaches the GCS afterwards). */
void cw_pg_drain(cw_t *cw, int ms);
/* Frees what cw_pg.c keeps (at shutdown, after the rpc client is destroyed). */
void cw_pg_release(cw_t *cw);

/* cw_exec.c */
int cw_exec_load_code(const char *code_path);
rayc_task_fn cw_exec_lookup(const char *name);
int cw_worker_serve(cw_t *cw);
void cw_worker_run(cw_t *cw);
void cw_worker_stop(cw_t *cw);
/* The code an actor runs for a pushed task (cw_exec_run, worker/cw_proc.h). */
typedef int (*cw_exec_body_fn)(void *arg, rayc_task_ctx *ctx, const rayc_buf *args, size_t nargs, size_t nrets);

/* cw_borrow.c: borrowing (docs/ARCHITECTURE.md "Borrowing"). cw->mu held unless noted. */
cw_peer_t *cw_peer_get(cw_t *cw, const Rayc__Address *a); /* NULL: a is this process or malformed */
void cw_peer_address(cw_peer_t *p, Rayc__Address *a);     /* a borrows p's fields */
/* The entry of a ref described by (id, owner peer; NULL: this process): the existing one, or a new
 * borrowed entry; NULL for an owned id that is gone. */
cw_object_t *cw_ref_entry(cw_t *cw, const id_object_t *id, cw_peer_t *owner);
/* Which count of an object entry a hold is taken on. */
typedef enum cw_hold {
  CW_HOLD_NONE,      /* parse only: take no hold */
  CW_HOLD_LOCAL,     /* local_refs: a rayc_ref this process holds */
  CW_HOLD_SUBMITTED, /* submitted_refs: an argument of a pending task */
  CW_HOLD_CONTAINED, /* contained: a ref inside another object */
} cw_hold_t;
/* Parses NestedRefs groups into *out (new array, *n entries) and takes one hold of `kind` on each
 * entry. 0, or RAYC_EINVALID_ARGUMENT. */
int cw_nested_parse(cw_t *cw, Rayc__NestedRefs *const *groups, size_t ngroups, cw_hold_t kind, cw_nested_t **out,
                    size_t *n);
/* Takes a hold of `kind` on each entry of refs (rayc_ref ids this process holds) into *out.
 * 0, or RAYC_ENOT_FOUND (nothing taken) with the error set. */
int cw_nested_from_refs(cw_t *cw, const rayc_ref *refs, size_t n, cw_hold_t kind, cw_nested_t **out, const char *what);
/* Drops the holds of `kind` and frees the array. */
void cw_nested_drop(cw_t *cw, cw_nested_t *v, size_t n, cw_hold_t kind);
void cw_nested_msg_build(cw_t *cw, const cw_nested_t *v, size_t n, cw_nested_msg_t *m);
void cw_nested_msg_free(cw_nested_msg_t *m);
/* Registers this process (borrower NULL) or the process `borrower` as a borrower of the entries
 * objs[0..n) with their owners, one AddBorrower call per owner, waited for (cw->mu is released
 * meanwhile; the caller holds every entry). For this process, only entries it does not own and is
 * not yet registered for. For another process, refs owned here are registered at once. */
void cw_borrow_register(cw_t *cw, cw_object_t **objs, size_t n, const Rayc__Address *borrower);
/* A borrowed entry nothing holds any more: freed now, or queued for its owner's removal. */
void cw_borrowed_release(cw_t *cw, cw_object_t *o);
/* Applies the refs of a task result (nested_refs of a reply) to the owned result object o (NULL:
 * the result was not taken, so only undo what the worker registered for us). */
void cw_borrow_apply_result(cw_t *cw, cw_object_t *o, Rayc__NestedRefs *const *groups, size_t ngroups);
/* Owner side, object o is ready: answers the GetObjectStatus calls waiting for it. */
void cw_status_ready(cw_t *cw, cw_object_t *o);
/* Background thread tick: removals due, borrower polls, expired GetObjectStatus calls. */
void cw_borrow_tick(cw_t *cw);
/* Shutdown: sends every removal now (synchronously, briefly), answers parked calls, frees peers.
 * cw_borrow_flush before the rpc client goes; cw_borrow_release at the end. */
void cw_borrow_flush(cw_t *cw);
void cw_borrow_release(cw_t *cw);
/* Gets borrowed objects from their owners: for each i with objs[i] (entries held by the caller),
 * fills out[i] (its priv set) or returns the first error. Called without cw->mu. */
int cw_borrow_get(cw_t *cw, cw_object_t **objs, size_t n, int64_t deadline_ms, rayc_buf *out);
/* rayc_wait for borrowed refs: marks ready[i] for entries whose owner says ready (or is gone).
 * Called without cw->mu; the caller holds the entries. */
void cw_borrow_poll_ready(cw_t *cw, cw_object_t **objs, size_t n, int *ready);
/* The buffer machinery shared with cw_object.c: a buffer's private part. */
typedef struct cw_buf_priv {
  cw_blob_t *blob;      /* an inline value */
  id_object_t store_id; /* a store object held by this buffer (in_store) */
  int in_store;
  rayc_ref *refs; /* the refs it contains, each held (objs[i], NULL: gone) */
  cw_object_t **objs;
  size_t nrefs;
} cw_buf_priv_t;
/* Sets buf's refs from v (taking one local hold each). cw->mu held. */
void cw_buf_set_refs(cw_t *cw, rayc_buf *buf, const cw_nested_t *v, size_t n);
/* Reads object id from this node's store into buf (pulling it from location first when remote),
 * waiting up to timeout_ms for it to be sealed. Called without cw->mu. */
int cw_buf_from_store(cw_t *cw, const uint8_t *id, int remote, const char *location, int64_t timeout_ms, rayc_buf *buf);
/* CoreWorkerService handlers (workers' and drivers' tables; ctx is the cw_t). */
void cw_on_add_borrower(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_on_remove_borrower(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_on_get_object_status(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

/* cw_lineage.c (cw->mu held): keeping finished tasks whose results live in a store, and re-running
 * them when every copy of such a result is lost. */
void cw_lineage_keep_or_free(cw_t *cw, cw_task_t *t);
void cw_lineage_drop(cw_t *cw, cw_object_t *o);
int cw_reconstruct(cw_t *cw, cw_object_t *o);

/* cw_actor.c: actor creation and actor tasks pushed to this worker. Called on the rpc server's
 * thread; returns 1 when it took ownership of call, 0 to run req as a normal task. */
int cw_actor_push(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req);
/* ActorWorkerService handlers (rows of the worker's rpc table; ctx is the cw_t). */
void cw_actor_on_wait_exit(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_actor_on_kill(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_actor_on_wait_owner(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
/* A driver starts (again): WaitOwnerExit calls are held from now on. */
void cw_actor_owner_reset(void);
/* Answers WaitOwnerExit calls held too long with TIMEOUT (their callers ask again), so they do not
 * pile up in a long-lived process. Any thread, cw->mu not held. */
void cw_actor_owner_tick(void);
/* The worker is exiting (its executor stopped): ends the hosted actors (fails their queued calls,
 * joins their threads, runs their destructors) and answers the GCS's held calls. Main thread.
 * The actors' records stay for calls the server still delivers until cw_actor_release(). */
void cw_actor_stop(cw_t *cw);
/* Frees the hosted actors' records, once the worker's server is destroyed (cw_actor_host.c). */
void cw_actor_release(void);
/* cw_actor_submit.c (cw->mu held): cw_actors_tick retries what waits on the GCS (background
 * thread, every ~20 ms); cw_actors_release frees the caller-side actor state (cw_classes_free). */
void cw_actors_tick(cw_t *cw);
void cw_actors_release(cw_t *cw);
/* cw_actor_submit.c (cw->mu held): a thread is about to wait for refs (rayc_get and rayc_wait,
 * before their first wait), so actor calls held back for a whole batch that return one of them
 * are pushed now. */
void cw_actors_flush(cw_t *cw, const rayc_ref *refs, size_t n);
/* 1 while a failed GCS poll of an actor waits for its retry (cw->mu held): work for the tick. */
int cw_actors_retry_pending(const cw_t *cw);
/* rayc_cancel of an actor call (task id tid; cw->mu held): one still queued here fails CANCELLED
 * now; one pushed is cancelled by its worker if it is still queued there (answered CANCELLED in
 * its turn); one running runs on (as in Ray, an actor call is not interrupted). */
void cw_actors_cancel(cw_t *cw, const id_task_t *tid);

/* cw_stream.c: streaming generators. The owner's ReportGeneratorItem handler (a row of both
 * tables); cw_stream_forget drops generator gen's stream and the items nobody took (cw_obj_free,
 * cw->mu held). */
void cw_on_report_generator_item(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void cw_stream_forget(cw_t *cw, const id_object_t *gen);
/* cw_exec.c: for rayc_yield, the running task's core worker and spec, and its item count; NULL
 * when ctx's task is not a streaming one. */
uint32_t *cw_exec_stream_state(rayc_task_ctx *ctx, cw_t **cw, const Rayc__TaskSpec **spec);

/* cw_lang.c: the executor a binding installed (rayc_executor_set): 1 and *out set, or 0. */
int cw_lang_executor(rayc_executor *out);

/* cw_worker.c: the whole life of a rayc-worker process (rayc_worker_main, rayc_lang.h). */

#endif
