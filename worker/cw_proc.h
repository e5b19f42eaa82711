/*
 * librayc's runtime context: everything the library keeps per process, in one struct.
 *
 * rayc.h is a C API without a handle (rayc_init(), then rayc_remote() and the rest), and functions
 * and actor classes register from library constructors before any rayc_init(): so the context is
 * one process-wide variable, cw_proc (cw_proc.c), the only mutable file-scope variable of the core
 * worker (test_boundary's no_unjustified_globals holds librayc to that). Everything else reaches state through a cw_t * passed as an argument, or the
 * context given to an RPC callback.
 *
 * Locking: each member group has its own mutex, named beside it; none is taken under cw->mu
 * except where the module says so.
 */
#ifndef RAYC_CW_PROC_H
#define RAYC_CW_PROC_H

#include "worker/cw.h"

#include "common/hmap.h"
#include "rayc_lang.h"

#include <pthread.h>

enum { EV_NAME_MAX = 64, EV_KEY = ID_TASK_SIZE + 4 };

typedef struct cw_actor_class {
  char *name;
  rayc_actor_ctor_fn ctor;
  rayc_actor_dtor_fn dtor;
  hmap_t methods; /* name -> rayc_method_fn */
} cw_actor_class_t;

/* A PushTasks call being run (cw_exec_batch.c): its tasks' replies, packed as each task ends; the
 * call is answered when the last one is in. */
typedef struct cw_exec_batch cw_exec_batch_t;

/* Where a pushed task's reply goes: its own PushTask call, or entry idx of a batch. */
typedef struct cw_exec_to {
  rpc_call_t *call;
  cw_exec_batch_t *batch;
  size_t idx;
} cw_exec_to_t;

typedef struct cw_hosted_item {
  struct cw_hosted_item *next;
  cw_exec_to_t to;                  /* where its reply goes: its PushTask, or its PushTasks entry */
  const Rayc__PushTaskRequest *req; /* owned by its call (or by the batch) */
  uint64_t seq;
  int cancelled; /* CancelTask came while it was queued: it is answered CANCELLED instead of run */
} cw_hosted_item_t;

/* One caller's calls that arrived ahead of their turn. */
typedef struct cw_hosted_caller {
  uint64_t next_seq;
  cw_hosted_item_t *early; /* sorted by seq */
} cw_hosted_caller_t;

enum cw_hosted_state { RT_NONE, RT_CREATING, RT_ALIVE, RT_FAILED, RT_EXITING };

typedef struct cw_call_list {
  rpc_call_t **v;
  int64_t *at; /* when each was held */
  size_t n, cap;
} cw_call_list_t;

/* One actor this worker hosts (cw_actor_host.c); every field under cw_proc.actor.mu. */
typedef struct cw_hosted_actor {
  struct cw_hosted_actor *next; /* in cw_hosted_t.ended, once replaced by a restart of the same id */
  pthread_cond_t cv;            /* its threads wait here for calls */
  enum cw_hosted_state state;
  uint8_t id[ID_ACTOR_SIZE];
  char class_name[128];
  cw_actor_class_t *cls;
  rayc_executor ex; /* use_ex: a class of another language, run by the binding's executor */
  int use_ex;
  void *self;
  int max_concurrency;
  pthread_t *threads;
  int nthreads;                  /* started (joined when the worker exits) */
  int running;                   /* started and not yet returned */
  cw_hosted_item_t *head, *tail; /* ready to run */
  hmap_t callers;                /* caller worker id -> cw_hosted_caller_t */
  cw_call_list_t exit_waiters;   /* the GCS's WaitActorExit */
  int exited;                    /* rayc_actor_exit was called */
  char exit_reason[256];
  int gcs_told; /* a WaitActorExit was answered "exited" */
} cw_hosted_actor_t;

/* The actors this worker hosts: one for its whole life (Ray's model), or, when the GCS made it a
 * host of actors that share a process (share_worker), several (cw_actor_host.c). Its own mutex,
 * never taken under cw->mu. */
typedef struct cw_hosted {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* an actor's gcs_told changed */
  cw_t *cw;
  int shared;                   /* a host of sharing actors: an actor's end is not the worker's */
  hmap_t actors;                /* actor id -> cw_hosted_actor_t (owned) */
  size_t count;                 /* actors ever created here */
  cw_hosted_actor_t *ended;     /* replaced by a restart of the same id: joined at the exit */
  cw_call_list_t owner_waiters; /* WaitOwnerExit: the GCS's, and owners' of refs this process borrows */
  int stopping;                 /* cw_actor_stop ran */
} cw_hosted_t;

/* A pushed task waiting for the executing thread. */
typedef struct cw_exec_item {
  struct cw_exec_item *next;
  cw_exec_to_t to;
  const Rayc__PushTaskRequest *req; /* owned by the call (or by the batch) */
} cw_exec_item_t;

/* cw_exec_batch.c: delivers a task's reply (rep NULL: the task did not run, the worker is exiting;
 * err/msg: a PushTask answered with an error). Any thread. */
void cw_exec_send(const cw_exec_to_t *to, const Rayc__PushTaskReply *rep, int err, const char *msg);
/* cw_exec.c: runs the pushed task req with body as its code (NULL: the function the spec names)
 * and sends its results to to; with cancelled set, answers CANCELLED without running it. Any
 * thread. */
void cw_exec_run(cw_t *cw, const cw_exec_to_t *to, const Rayc__PushTaskRequest *req, cw_exec_body_fn body, void *arg);
void cw_exec_run_cancelled(cw_t *cw, const cw_exec_to_t *to, const Rayc__TaskSpec *spec);
/* cw_exec_batch.c: counts a PushTask or PushTasks call carrying n tasks or actor calls
 * (rayc_worker_push_counts). Any thread. */
void cw_exec_count_push(size_t n);
/* cw_actor_host.c: queues actor call req (ACTOR_TASK) for its actor, its reply going to to; a call
 * that cannot be queued is answered with its error. Marks a queued call with this task id
 * cancelled (1) or returns 0. The rpc server's thread. */
void cw_actor_push_to(cw_t *cw, const cw_exec_to_t *to, const Rayc__PushTaskRequest *req);
int cw_actor_cancel_queued(const ProtobufCBinaryData *task_id);
/* Whether a pushed spec can be run (ids, returns, caller); exec_task answers others malformed. */
int cw_exec_spec_ok(const Rayc__TaskSpec *spec);
/* The CoreWorkerService.PushTasks handler (the rpc server's thread). */
void cw_exec_on_push_tasks(void *ctx, rpc_call_t *call, const ProtobufCMessage *m);

/* Tasks pushed to this worker, waiting for the executing (main) thread (cw_exec.c). */
typedef struct cw_exec_queue {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cw_exec_item_t *head, *tail;
  int stop;
  rayc_task_ctx *running; /* the task being executed, for CancelTask */
  char owner[96];         /* the last pusher of a normal task ("ip:port", "" none): our lease's owner */
  uint64_t push_calls;    /* PushTask and PushTasks calls of tasks and actor calls received (rayc_worker_push_counts) */
  uint64_t push_tasks;    /* ... and the tasks they carried */
} cw_exec_queue_t;

/* One task attempt's changes since the last report, merged (Ray's TaskEventBuffer does the same):
 * a task that is submitted, runs and ends within a second is reported once. */
typedef struct cw_ev {
  uint8_t task[ID_TASK_SIZE], actor[ID_ACTOR_SIZE], node[ID_NODE_SIZE], worker[ID_WORKER_SIZE];
  uint8_t has_actor, has_place, type, state;
  int32_t attempt, pid;
  int64_t ts[6]; /* by TaskStatus: when it was entered (0: not in this report) */
  char name[EV_NAME_MAX];
  char *error; /* owned */
} cw_ev_t;

/* The task events not yet reported to the GCS (cw_events.c). */
typedef struct cw_ev_buf {
  pthread_mutex_t mu;
  cw_ev_t *evs; /* the attempts changed since the last report, in order of first change */
  size_t count, cap;
  uint32_t *slots; /* open-addressing index: task id + attempt -> its position in evs + 1 (0: empty);
                     kept across reports, so recording allocates nothing in the steady state */
  size_t nslots;   /* a power of two, at least twice count; 0 before the first event */
  size_t cap_hint; /* the last report's capacity, for the next buffer */
  uint64_t dropped;
  int off; /* RAYC_TASK_EVENTS=0 */
  int checked;
  rpc_channel_t *gcs; /* workers: the GCS found from the session (drivers use cw->gcs) */
  int gcs_tried;
} cw_ev_buf_t;

typedef struct cw_proc {
  pthread_mutex_t api_mu; /* rayc_init and rayc_shutdown (client/api.c) */
  cw_t *cw;               /* the core worker, from rayc_init or cw_worker_run to their end; else NULL */
  pthread_mutex_t tasks_mu;
  hmap_t tasks; /* tasks_mu: registered task functions, name -> rayc_task_fn */
  pthread_mutex_t classes_mu;
  hmap_t classes;       /* classes_mu: registered actor classes, name -> cw_actor_class_t */
  cw_hosted_t actor;    /* the actors this worker hosts */
  cw_exec_queue_t exec; /* tasks waiting for the executing thread */
  cw_ev_buf_t events;   /* task events waiting for their report */
  pthread_mutex_t lang_mu;
  rayc_executor lang_exec; /* lang_mu: the executor a language binding installed... */
  int lang_exec_set;       /* ...if any */
  pthread_key_t err_key;   /* this thread's rayc_last_error() message (malloc'ed) */
  pthread_once_t err_once;
  pthread_mutex_t send_mu; /* frames to the raylet from several threads (cw_notify_blocked) */
  char *code_preloaded;    /* the resolved code path rayc_worker_preload loaded (set before any thread) */
} cw_proc_t;

/* The process's runtime context (see above for why it is a variable). */
extern cw_proc_t cw_proc;

/* The API layer's one guard: returns the core worker, or NULL with rayc_last_error() set to
 * "rayc_init() has not been called" (the caller returns RAYC_ENOT_CONNECTED). */
cw_t *cw_api(void);

#endif
