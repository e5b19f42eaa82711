/*
 * rayc-raylet: the node manager. One libuv loop owns all of this state (no locks): the node's
 * resources, its worker pool, worker leases and the queue of lease requests.
 *
 * Modules, in dependency order (resource sets: common/res.h): raylet_pool (spawning workers,
 * their registration over the local socket, their exit), raylet_lease (lease requests, grants,
 * returns, dispatch), raylet_gcs (registration and heartbeats), raylet_service (the
 * NodeManagerService handler table), raylet_local (the Unix socket workers and drivers use),
 * raylet_jobs (the JOB channel of the GCS pub/sub: a finished job's workers end on every node),
 * raylet_drain (DrainRaylet: no new leases, running ones finish, then unregister and exit).
 */
#ifndef RAYC_RAYLET_H
#define RAYC_RAYLET_H

#include "common/ids.h"
#include "common/local.h"
#include "common/pb.h"
#include "common/rpc.h"

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/res.h"

typedef struct raylet_config {
  char *session_dir;
  char *gcs_address;
  char *node_ip;
  int port;
  char *socket;
  char *store_socket;
  double num_cpus;
  double num_gpus;
  int64_t memory;
  int64_t object_store_memory;
  char *resources;
  int head;
  char *worker_path;
  char *python;      /* the interpreter of Python workers */
  char *python_path; /* PYTHONPATH of Python workers (where the rayc package is); "": none */
  char *log_level;
  char *token_file;
  char *tls_cert, *tls_key, *tls_ca;    /* TLS files; NULL: plaintext */
  int min_worker_port, max_worker_port; /* workers' gRPC ports; 0: ephemeral */
  int heartbeat_ms;
  int heartbeat_udp;      /* idle heartbeats as UDP datagrams (raylet_hb_udp.c) */
  int heartbeat_udp_port; /* their port; 0: the GCS's gRPC port (another: tests) */
  int gcs_idle_close_ms;  /* the GCS channel closes after this long without a call (0: never) */
  int max_starting_workers;
  int worker_register_timeout_ms;
  int infeasible_timeout_ms;
  int idle_worker_timeout_ms;
  int runtime_env_ttl_ms; /* a job working-dir copy unused here this long is removed (0: never) */
  int object_manager_port;
  int worker_zygote;          /* 1: C workers are forked by a preloaded rayc-worker --zygote */
  int prestart_workers;       /* per driver that registers; < 0: min(num_cpus, max_starting_workers) */
  int prestart_actor_workers; /* idle workers kept ready per job that creates actors here (0: none) */
  int drain_deadline_ms;      /* how long leases may still run after DrainRaylet */
  int node_affinity_wait_ms;  /* a hard affinity target not in the view is waited for this long */
  int metrics_port;           /* Prometheus /metrics (raylet_metrics.c); 0: ephemeral, < 0: none */
  int store_metrics_port;     /* the store's, advertised to the GCS (0: unknown) */
  int local_max_conns;        /* limits on the local socket's peers (common/local.h) */
  int64_t local_frame_max;
  int local_stall_ms;
  int mem_refresh_ms;   /* memory monitor period (raylet_mem.c); 0: off */
  double mem_threshold; /* kill when the node uses more than this fraction of its limit */
  int64_t mem_limit;    /* the node's memory limit; 0: the cgroup's or the machine's */
} raylet_config_t;

enum raylet_worker_state { WORKER_STARTING, WORKER_IDLE, WORKER_LEASED, WORKER_EXITING, WORKER_DEAD };

typedef struct raylet_lease raylet_lease_t;

typedef struct raylet_worker {
  struct raylet_worker *next;
  id_worker_t id;
  pid_t pid;
  int port;
  enum raylet_worker_state state;
  id_job_t job;
  char *code_path;
  int lang;          /* enum rayc_language: rayc-worker (C) or python3 -m rayc.worker */
  uv_process_t proc; /* not used when zygote is set */
  int proc_open;     /* the process may still run: its pid may be signalled */
  int zygote;        /* 0: exec'ed; else the id of the zygote that forked it and reports its exit
                      * (1: the node's; more: a job's, raylet_zygote.c) */
  local_conn_t *conn;
  raylet_lease_t *lease;
  int64_t started_ms;
  int64_t idle_since_ms;
} raylet_worker_t;

enum { RAYLET_MAX_GPUS = 64 };

struct raylet_lease {
  struct raylet_lease *next;
  int gpu_ids[RAYLET_MAX_GPUS];
  int ngpus;
  uint8_t id[32];
  size_t id_len;
  res_set_t res;
  raylet_worker_t *worker;
  id_worker_t owner;
  double blocked_cpus; /* CPUs given back while its task waits in get (raylet_blocked.c) */
  int wanted_sent;     /* its worker was told that other owners wait (lease_wanted) */
};

/* A lease request waiting for resources or a worker. */
typedef struct raylet_request {
  struct raylet_request *next;
  rpc_call_t *call;
  const Rayc__RequestWorkerLeaseRequest *req; /* owned by call */
  res_set_t res;
  id_job_t job;
  int64_t queued_ms;
} raylet_request_t;

/* A node as the cluster resource view (from the GCS, via heartbeat replies) shows it. */
typedef struct raylet_view_node {
  id_node_t id;
  char ip[64];
  int port;
  res_set_t total, avail; /* avail is lowered locally by each spillback until the next view */
  int lowered;            /* avail was lowered here: a full view refreshes it (raylet_view.c) */
} raylet_view_node_t;

/* A lease request that no node can run now; retried each cron tick until it times out. */
typedef struct raylet_infeasible {
  struct raylet_infeasible *next;
  rpc_call_t *call;
  const Rayc__RequestWorkerLeaseRequest *req;
  int64_t since_ms;
  int wait_node; /* waits for its affinity node to appear in the view, not for resources */
} raylet_infeasible_t;

/* A driver connected over the local socket; its leases die with it. */
typedef struct raylet_driver {
  struct raylet_driver *next;
  id_worker_t id;
  id_job_t job;
  local_conn_t *conn;
} raylet_driver_t;

/* The raylet's subscription to the GCS's JOB channel, and the jobs it knows are finished. */
typedef struct raylet_jobs {
  int64_t seq, epoch; /* the position in the GCS's message stream */
  int polling;        /* a Poll (or the resync's GetAllJobInfo) is in flight */
  int wanted;         /* the GCS has news for us (a heartbeat said so) or a poll failed */
  int64_t retry_ms;   /* after a failed poll: when to poll again */
  uint8_t sub_id[16];
  id_job_t *dead; /* finished jobs */
  size_t ndead, capdead;
} raylet_jobs_t;
/* A placement-group bundle reserved on this node (raylet_bundle.c). Prepared: its resources are
 * taken from the node's available set; committed: they also exist as the group's resources. */
typedef struct raylet_bundle {
  struct raylet_bundle *next;
  uint8_t pg[ID_PG_SIZE];
  int index;
  int committed;
  res_set_t res;
} raylet_bundle_t;

enum { RAYLET_REMOVED_PGS = 64 };

typedef struct raylet {
  raylet_config_t cfg;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  uv_timer_t cron;
  id_node_t node_id;
  char *token;
  rpc_tls_t tls; /* borrowed from cfg */
  res_set_t total, available;
  rpc_server_t *server;
  int port;
  rpc_client_t *client;
  rpc_channel_t *gcs;
  Rayc__LocalMessage **tev; /* workers' task_events frames for the next cron tick (raylet_gcs.c) */
  size_t ntev, tev_events;
  int64_t tev_since; /* when the first of them came (now_ms) */
  local_server_t *local;
  raylet_worker_t *workers;
  raylet_lease_t *leases;
  raylet_request_t *queue;
  raylet_driver_t *drivers;
  raylet_view_node_t **view; /* owned, each entry owned */
  int nview, view_cap;
  int64_t view_version, view_epoch; /* of the view held; 0: none, ask for the full view */
  int64_t view_full_ms;             /* when the last full view arrived (monotonic) */
  uint8_t *hb_report;               /* the last report the GCS acknowledged (packed); NULL: none */
  size_t hb_report_len;
  int64_t report_seq; /* the last resource snapshot sent to the GCS (heartbeat or bundle answer) */
  int hb_in_flight;
  unsigned spread_next;
  raylet_infeasible_t *infeasible;
  uint8_t gpu_used[RAYLET_MAX_GPUS]; /* GPU ids held by leases */
  raylet_bundle_t *bundles;
  uint8_t removed_pgs[RAYLET_REMOVED_PGS][ID_PG_SIZE]; /* recently removed groups (a ring) */
  unsigned removed_next;
  int bundle_wanted; /* a prepare found too little free: heartbeat as soon as a lease ends */
  int report_soon;   /* freed resources the node had run out of: heartbeat within HB_SOON_MS */
  int registered;
  int64_t stopping; /* when shutdown began (ms), 0 while serving */
  int64_t start_ms;
  int loop_open;
  int64_t last_heartbeat_ms;
  raylet_jobs_t jobs;
  char **warned; /* infeasible shapes already warned about (formatted) */
  size_t nwarned;
  int64_t draining;       /* when DrainRaylet arrived (ms); 0: not draining */
  int64_t drain_deadline; /* leases still running then are ended */
  char *drain_reason;
  int drained;                            /* the drain finished: unregistered as drained, shutting down */
  struct raylet_usage *usage;             /* owned: per-process samples for job usage (raylet_usage.c) */
  struct metrics_http *metrics;           /* owned: the /metrics endpoint; NULL: none */
  int64_t metrics_next_ms;                /* next refresh of the gauges */
  struct raylet_rtenv *rtenv;             /* owned: working-dir copies seen unused (raylet_rtenv.c) */
  struct raylet_mem *mem;                 /* owned: the memory monitor (raylet_mem.c) */
  struct raylet_zygote *zygote;           /* owned: the worker fork server (raylet_zygote.c); NULL: none yet */
  struct raylet_hb_udp *hbu;              /* owned: idle heartbeats over UDP (raylet_hb_udp.c); NULL: off */
} raylet_t;

/* raylet_pool.c */
int raylet_pool_spawn(raylet_t *r, id_job_t job, const char *code_path, int lang);
raylet_worker_t *raylet_pool_find_idle(raylet_t *r, id_job_t job, const char *code_path, int lang);
int raylet_pool_count_starting(const raylet_t *r, id_job_t job, const char *code_path, int lang, int *total);
void raylet_pool_on_register(raylet_t *r, local_conn_t *c, const Rayc__RegisterClientRequest *req, uint64_t seq);
void raylet_pool_on_disconnect(raylet_t *r, local_conn_t *c);
void raylet_pool_kill(raylet_worker_t *w, int sig);
/* NodeManagerService's handler table, for tests that check it against the service descriptor. */
const rpc_method_t *raylet_service_methods(size_t *n);
/* The one way a worker's state changes after it is spawned; logs the transition (debug). */
void raylet_worker_set_state(raylet_worker_t *w, enum raylet_worker_state s);
void raylet_pool_kill_all(raylet_t *r, int sig);
void raylet_pool_reap_stuck(raylet_t *r);
void raylet_pool_reap_idle(raylet_t *r);
/* Stops the workers of job (idle ones with SIGTERM, leased ones with SIGKILL); returns how many. */
int raylet_pool_end_job(raylet_t *r, id_job_t job);
/* raylet_blocked.c: worker w's task waits in get (blocked) or runs again; lease_free calls
 * raylet_lease_unblock first so a lease returned while blocked gives back only what it holds. */
void raylet_lease_set_blocked(raylet_t *r, raylet_worker_t *w, int blocked);
void raylet_lease_unblock(raylet_t *r, raylet_lease_t *l);
/* Starts workers for a driver's job that just registered, so its first tasks find them ready. */
void raylet_pool_prestart(raylet_t *r, id_job_t job, const char *code_path, int lang);
/* An actor lease of (job, code_path, lang) (job: the actor job, top bit set) is taking worker
 * taken: starts workers so that --prestart-actor-workers of that key stay idle or starting
 * beyond the demand requests of it still queued, without passing --max-starting-workers
 * (starting_total: workers starting now). The next actor then finds its worker ready instead
 * of waiting for one to start. Returns how many it started. */
int raylet_pool_spare_actors(raylet_t *r, id_job_t job, const char *code_path, int lang, const raylet_worker_t *taken,
                             int demand, int starting_total);
/* Tells every registered worker that the node drains (a node_draining frame). */
void raylet_pool_notify_draining(raylet_t *r);
/* A zygote reaped worker pid (status as waitpid gives it), or zygote `zygote` died (every worker
 * it forked is gone with it: pid < 0; zygote 0: every forked worker). Does not dispatch: the
 * caller may be inside raylet_dispatch. */
void raylet_pool_zygote_exit(raylet_t *r, int zygote, pid_t pid, int wstatus);

/* raylet_zygote.c: C workers forked from a process that has loaded librayc already, which saves
 * the exec and dynamic linking that are most of a worker's start (common/zygote.h). */
/* Forks a worker of job (code_path, borrowed) running args (both NULL-terminated, borrowed) with
 * stdout and stderr appended to log_path: from the job's zygote, which has loaded the job's code,
 * once it is ready (the first spawn of a job starts it), else from the node's. Returns 0, *pid
 * and *zygote (the id that raylet_pool_zygote_exit gets), or < 0 when the caller must exec it
 * instead (no zygote yet: this starts one; it failed; --worker-zygote 0). Blocks the loop for one
 * fork at most. */
int raylet_zygote_spawn(raylet_t *r, id_job_t job, const char *code_path, char *const *args, char *const *env,
                        const char *log_path, pid_t *pid, int *zygote);
/* The job ended: its zygotes fork no more and exit once their last worker has (a detached
 * actor's worker may outlive the job). */
void raylet_zygote_end_job(raylet_t *r, id_job_t job);
/* Ends the zygotes (at shutdown, once no worker is left) and closes their handles. */
void raylet_zygote_stop(raylet_t *r);

/* raylet_server.c: back to the busy cron period at once (work arrived at an idle node). */
void raylet_cron_busy(raylet_t *r);

/* raylet_lease.c */
void raylet_lease_request(raylet_t *r, rpc_call_t *call, const Rayc__RequestWorkerLeaseRequest *req);
int raylet_lease_return(raylet_t *r, const uint8_t *id, size_t len, int worker_exiting);
void raylet_lease_drop_worker(raylet_t *r, raylet_worker_t *w);
void raylet_lease_drop_owner(raylet_t *r, const id_worker_t *owner);
void raylet_dispatch(raylet_t *r);
/* Requests still queued for want of resources: tells the workers of other owners' leases (once
 * per lease) that their lease is wanted, so that each owner returns it as soon as it is idle
 * instead of holding it CW_LEASE_IDLE_MS for more work. */
void raylet_lease_want(raylet_t *r);
void raylet_queue_fail_all(raylet_t *r, int err, const char *why);
/* Fails the queued and parked requests of job with err. */
void raylet_lease_drop_job(raylet_t *r, id_job_t job, int err, const char *why);
/* Answers the queued or parked request with this lease id CANCELLED; 1 when there was one. */
int raylet_lease_cancel(raylet_t *r, const uint8_t *id, size_t len);
/* Routes every queued request again (a drain began: they spill elsewhere or fail). */
void raylet_lease_reroute_queue(raylet_t *r);
/* Spills the queued requests this node cannot run now to nodes with the resources free (cron). */
void raylet_lease_spill_queued(raylet_t *r);
/* The parked infeasible requests grouped by shape, for the heartbeat (free with
 * raylet_demands_free). */
Rayc__ResourceDemand **raylet_lease_demands(const raylet_t *r, size_t *n);
void raylet_demands_free(Rayc__ResourceDemand **v, size_t n);
/* Ends the lease at once (its resources come back) and kills its worker. */
void raylet_lease_kill(raylet_t *r, raylet_lease_t *l);

/* raylet_bundle.c: placement-group bundles (PrepareBundleResources, CommitBundleResources,
 * CancelResourceReserve). */
void raylet_bundle_prepare(raylet_t *r, rpc_call_t *call, const Rayc__PrepareBundleResourcesRequest *req);
void raylet_bundle_commit(raylet_t *r, rpc_call_t *call, const Rayc__CommitBundleResourcesRequest *req);
void raylet_bundle_cancel(raylet_t *r, rpc_call_t *call, const Rayc__CancelResourceReserveRequest *req);
/* Returns every bundle here of the removed groups ids[0..n) (18-byte ids; others skipped), as a
 * cancel with bundle_index -1 each (but a group is added to the removed list only if it held a
 * bundle here): a PrepareBundleResources's returns, a cancel's more_groups. Returns how many
 * bundles came back. */
int raylet_bundle_returns(raylet_t *r, ProtobufCBinaryData *ids, size_t n);
/* 1 when the group (ID_PG_SIZE bytes) was removed here lately. */
int raylet_bundle_pg_removed(const raylet_t *r, const uint8_t *pg);
void raylet_bundle_free(raylet_t *r);

/* raylet_sched.c: where a lease request should run. */
enum raylet_sched { SCHED_LOCAL, SCHED_SPILL, SCHED_INFEASIBLE, SCHED_ERROR, SCHED_WAIT_NODE };
enum raylet_sched raylet_sched_pick(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req, const res_set_t *res,
                                    const raylet_view_node_t **target, const char **why);

/* raylet_view.c: the cluster view, kept from the GCS's full views and deltas. */
/* Applies a view from a heartbeat reply (borrowed): a full one replaces the view, a delta whose
 * base is the version held updates it; a delta on another base is dropped and the next heartbeat
 * asks for the full view. */
void raylet_view_apply(raylet_t *r, const Rayc__ClusterView *v);
/* The (epoch, version) the next heartbeat should name: (0, 0), asking for the full view, when a
 * spillback lowered a node's resources locally more than two heartbeats ago (the view refreshes
 * them), else the view held. */
void raylet_view_wanted(raylet_t *r, int64_t now, int64_t *epoch, int64_t *version);
void raylet_view_free(raylet_t *r);
/* For a queued request this node cannot run now: the view node (borrowed, its free resources
 * lowered by res) it should be spilled to, or NULL to keep it here. Only DEFAULT requests that did
 * not arrive by spillback move. */
raylet_view_node_t *raylet_sched_requeue(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req, const res_set_t *res);
void raylet_sched_retry_infeasible(raylet_t *r);
void raylet_sched_free(raylet_t *r);

/* raylet_gcs.c */
int raylet_gcs_start(raylet_t *r);
void raylet_gcs_heartbeat(raylet_t *r);
/* Applies a heartbeat's reply (borrowed; its cluster_view too, if set): re-registration, the job
 * channel's news, the view. Used for gRPC replies and, built from a datagram, for UDP ones. */
void raylet_gcs_heartbeat_apply(raylet_t *r, const Rayc__ReportHeartbeatReply *rep);
/* raylet_hb_udp.c: idle heartbeats as datagrams. start opens the socket (0 also when off or when
 * it cannot: heartbeats stay gRPC); send returns 1 when it sent this heartbeat as a datagram, 0
 * when it must go over gRPC; fill puts the nonce and sequence number in a gRPC heartbeat; stop
 * closes the socket. */
int raylet_hb_udp_start(raylet_t *r);
int raylet_hb_udp_send(raylet_t *r, int64_t now, int64_t view_epoch, int64_t view_version);
void raylet_hb_udp_fill(raylet_t *r, Rayc__ReportHeartbeatRequest *req);
/* A gRPC heartbeat's reply named the newest datagram version the GCS answers (udp_version). */
void raylet_hb_udp_gcs_version(raylet_t *r, int version);
void raylet_hb_udp_stop(raylet_t *r);
/* Freed resources the node had run out of: the next heartbeat goes within 100 ms, not a period. */
void raylet_gcs_report_soon(raylet_t *r);
void raylet_gcs_unregister(raylet_t *r, const char *reason, int drained);
/* Tells the GCS that job finished (its driver disconnected from this node). */
void raylet_gcs_mark_job_finished(raylet_t *r, id_job_t job, const char *reason);
/* Takes a local worker's task_events frame (m, ownership taken) to send on to the GCS over the
 * raylet's channel, so that workers need no GCS connection of their own for them
 * (worker/cw_events.c). Frames wait up to a second (raylet_gcs_flush_task_events from the cron), so
 * the reports of workers that end together (a round of actors) reach the GCS as one call. Not
 * delivered (logged at debug) when the GCS is unreachable, as a worker's own report would be. */
void raylet_gcs_forward_task_events(raylet_t *r, Rayc__LocalMessage *m);
/* Sends the waiting task events as one AddTaskEventData and frees them: when `when` is TEV_NOW or
 * TEV_LAST, or once the first has waited a second (TEV_SOON). TEV_LAST (the raylet closing) waits
 * up to a second for the GCS's answer, since closing the client would cancel the call. */
enum { TEV_SOON, TEV_NOW, TEV_LAST };
void raylet_gcs_flush_task_events(raylet_t *r, int when);

/* raylet_jobs.c */
void raylet_jobs_cron(raylet_t *r);
/* A heartbeat reply's JOB-channel position: polls the channel when it holds news for this node. */
void raylet_jobs_on_heartbeat(raylet_t *r, int64_t pubsub_epoch, int64_t job_seq);
int raylet_jobs_is_dead(const raylet_t *r, id_job_t job);
/* job finished (a JOB message, or its driver left this node): end its workers and requests here. */
void raylet_jobs_finished(raylet_t *r, id_job_t job, const char *why);
/* A driver's connection closed: its job is over; tell the GCS unless it already knows. */
void raylet_jobs_driver_gone(raylet_t *r, id_job_t job, int pid);
void raylet_jobs_release(raylet_t *r);

/* raylet_drain.c */
/* Starts draining (idempotent); returns the deadline in effect (ms from now), or < 0 when the
 * raylet is shutting down. */
int64_t raylet_drain_start(raylet_t *r, const char *reason, int64_t deadline_ms);
void raylet_drain_cron(raylet_t *r);

/* raylet_server.c: the raylet's life (start, signals, cron, shutdown) */
void raylet_shutdown(raylet_t *r, const char *why);
/* The whole life of rayc-raylet (main() calls it); returns the exit status. */
int raylet_server_run(int argc, char **argv);

/* raylet_service.c */
int raylet_service_start(raylet_t *r);

/* raylet_metrics.c: the /metrics endpoint (on cfg.node_ip, cfg.metrics_port) and the node's
 * gauges (CPU and memory use, workers, leases), refreshed by the cron once a second. */
int raylet_metrics_start(raylet_t *r);
int raylet_metrics_port(const raylet_t *r); /* 0: no endpoint */
void raylet_metrics_cron(raylet_t *r);
void raylet_metrics_stop(raylet_t *r);
/* Sets the view gauge (rayc_raylet_view_nodes) when the view changed. */
void raylet_metrics_view(raylet_t *r);

/* raylet_local.c */
int raylet_local_start(raylet_t *r);

/* raylet_config.c */
int raylet_config_load(raylet_t *r, int argc, char **argv);
void raylet_config_release(raylet_t *r);

/* ---- raylet_usage.c: what each job's workers used here (governance records) ---- */
typedef struct raylet_usage raylet_usage_t;
/* Samples /proc for every live worker now. */
void raylet_usage_sample(raylet_t *r);
/* Samples once a second (called from the cron). */
void raylet_usage_cron(raylet_t *r);
void raylet_usage_destroy(raylet_t *r);
/* raylet_rtenv.c: removes working-dir copies unused for --runtime-env-ttl-ms (from the cron). */
void raylet_rtenv_cron(raylet_t *r);
void raylet_rtenv_destroy(raylet_t *r);
/* GetJobUsage: samples, then answers with each asked job's totals on this node. */
void raylet_usage_on_get(raylet_t *r, rpc_call_t *call, const Rayc__GetJobUsageRequest *req);
/* raylet_logs.c: ListLogs and GetLog, this node's log files for `rayc logs` (ctx: the raylet). */
void raylet_logs_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void raylet_logs_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

/* ---- raylet_mem.c: the memory monitor (kills the worker using most when the node is low) ---- */
/* Finds the node's limit and how to read its use; logs them. Always 0 (a monitor that cannot
 * read memory is off, with a warning). */
int raylet_mem_start(raylet_t *r);
/* Checks memory every --memory-monitor-refresh-ms (called from the cron). */
void raylet_mem_cron(raylet_t *r);
void raylet_mem_destroy(raylet_t *r);
/* GetWorkerFailureCause: whether the monitor killed that worker, and why. */
void raylet_mem_on_failure_cause(raylet_t *r, rpc_call_t *call, const Rayc__GetWorkerFailureCauseRequest *req);

#endif
