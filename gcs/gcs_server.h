/*
 * rayc-gcs: the server that owns the cluster's control state.
 *
 * Design. One libuv loop owns everything below: the storage backend (memory, or Redis through
 * hiredis's libuv adapter), the node, job, worker and KV tables, pub/sub, the health-check client,
 * the gRPC server (whose handlers gRPC's thread hands to this loop), one periodic timer (the
 * "cron": pub/sub poll timeouts, health checks, heartbeat timeouts, the replies to idle
 * heartbeats, which it answers together), one check handle that
 * answers held polls after each loop iteration that published something, and the SIGTERM/SIGINT
 * handles. Nothing is locked because only the loop touches the state. Handlers run to completion;
 * they reply through gcs_server_reply(), which holds the reply until the store has made every
 * change so far durable (at once with the memory store), so a client is never told about a change
 * a GCS crash could lose. A Poll call is held by pub/sub until it has something to say.
 *
 * Wiring of the tables: a node's death finishes the jobs whose driver ran on it, marks its
 * workers dead and restarts or kills its actors (gcs_server_on_node_dead); a finished job kills its
 * owned actors and its placement groups that are not detached (gcs_server_on_job_finished); a
 * node's death also reschedules the placement-group bundles it held. Every table publishes its changes.
 *
 * Lifecycle: gcs_config_load() -> gcs_server_create() (opens the store and loads the tables) ->
 * gcs_server_start() (listen, serve, arm the cron and signals, tell systemd READY=1 with
 * RAYC_PORT) -> uv_run() -> a signal (or a storage failure) calls gcs_server_stop() (idempotent:
 * answers held polls, stops the RPC server and the probes, lets the store finish its writes,
 * closes the handles, so uv_run returns) -> gcs_server_destroy().
 */
#ifndef RAYC_GCS_SERVER_H
#define RAYC_GCS_SERVER_H

#include "common/cfg.h"
#include "common/rpc.h"
#include "gcs/gcs_actor.h"
#include "gcs/gcs_health.h"
#include "gcs/gcs_job.h"
#include "gcs/gcs_node.h"
#include "gcs/gcs_pubsub.h"
#include "gcs/gcs_store.h"
#include "gcs/gcs_worker.h"

#include <uv.h>

/* Settings of rayc-gcs, bound to gcs_config_table by offset. */
typedef struct gcs_config {
  char *session_dir;                 /* logs to <session_dir>/logs/gcs.log; NULL: stderr */
  int port;                          /* 0: ephemeral */
  char *node_ip_address;             /* the only address the server listens on */
  char *redis_address;               /* "host:port" or "unix:/path": persistent tables; NULL: memory */
  char *redis_password;              /* AUTH; NULL: none */
  char *redis_key_prefix;            /* NULL: "rayc:<port>" */
  char *token_file;                  /* cluster token required on every call; NULL: none */
  char *tls_cert, *tls_key, *tls_ca; /* TLS files (common/rpc.h rpc_tls_t); NULL: plaintext */
  int heartbeat_timeout_ms;          /* a node silent this long is marked DEAD; 0: never */
  int health_check_period_ms;
  int health_check_timeout_ms;
  int health_check_failure_threshold;
  int pubsub_buffer;          /* messages kept per channel */
  int pubsub_poll_timeout_ms; /* a held Poll is answered empty after this long */
  char *log_level;
  int metrics_port;       /* Prometheus /metrics (gcs_metrics.h); 0: ephemeral, < 0: none */
  int task_events_max;    /* task attempts whose events are kept (gcs_task.h) */
  int cluster_events_max; /* cluster events kept */
  int job_package_ttl_ms; /* a working-dir package no job used for this long is deleted */
  int actors_per_worker;  /* actors that share (share_worker) put in one worker process; <= 1: none share */
  int heartbeat_udp;      /* answer idle heartbeats sent as UDP datagrams (gcs_hb_udp.c) */
} gcs_config_t;

extern const cfg_entry_t gcs_config_table[];
extern const size_t gcs_config_table_len;

/* Fills conf from flags, RAYC_* environment, YAML (top level and section "gcs") and defaults,
 * then checks the values. Returns 0, CFG_HELP (usage printed to stdout), or a negative code with
 * the error printed to stderr. On a non-zero return conf holds nothing to release. */
int gcs_config_load(gcs_config_t *conf, int argc, char **argv);

/* Frees the strings held by conf. */
void gcs_config_release(gcs_config_t *conf);

typedef struct gcs_server {
  uv_loop_t *loop;          /* borrowed */
  const gcs_config_t *conf; /* borrowed; must outlive the server */
  gcs_store_t *store;       /* owned */
  gcs_nodes_t nodes;
  gcs_jobs_t jobs;
  gcs_workers_t workers;
  gcs_pubsub_t pubsub;
  gcs_health_t health;
  struct gcs_actors *actors;   /* owned: the actor manager (gcs_actor.h) */
  struct gcs_pgs *pgs;         /* owned: the placement-group manager (gcs_pg.h) */
  struct gcs_jobsubs *jobsubs; /* owned: submitted jobs and their records (gcs_jobsub.h) */
  rpc_server_t *rpc;           /* owned; NULL once stopped */
  char *token;                 /* owned; NULL: no token */
  rpc_tls_t tls;               /* TLS files, borrowed from conf */
  char *redis_prefix;          /* owned: the key prefix in use (redis only) */
  int port;                    /* bound port, after gcs_server_start */
  uv_timer_t cron;
  uv_check_t flush; /* answers held polls after a publish */
  uv_signal_t sig_term, sig_int;
  int started, stopping;
  int failed;                   /* stopped because the storage failed: exit non-zero */
  struct metrics_http *metrics; /* owned: the /metrics endpoint (gcs_metrics.c); NULL: none */
  int64_t metrics_next_ms;      /* next refresh of the table gauges */
  struct gcs_events *events;    /* owned: task and cluster events (gcs_task.h) */
  rpc_call_t **hb_held;         /* idle heartbeats answered together by the cron (gcs_node.c) */
  size_t n_hb_held, cap_hb_held;
  int hb_udp_fd;                /* idle heartbeats over UDP (gcs_hb_udp.c); -1: none */
  uint64_t hb_udp_refused;      /* datagrams refused since the last warning */
  int64_t hb_udp_warned_ms;     /* when that warning was logged */
  int64_t last_join_ms;         /* the last RegisterNode (monotonic); 0: none since the last trim */
} gcs_server_t;

/* The RPC table of rayc-gcs: every method of NodeInfoGcsService, JobInfoGcsService,
 * WorkerInfoGcsService, InternalKVGcsService and InternalPubSubGcsService, each handler called
 * with the gcs_server_t as ctx. */
extern const rpc_method_t gcs_rpc_methods[];
extern const size_t gcs_rpc_methods_len;

/* Returns a new server bound to loop (which must outlive it), its tables loaded from the storage
 * backend the config names, or NULL with *err (if not NULL) set to a new message. Destroy with
 * gcs_server_destroy(); after a failure, run the loop once (uv_run) to close what was opened. */
gcs_server_t *gcs_server_create(uv_loop_t *loop, const gcs_config_t *conf, char **err);

/* Listens on <node_ip_address>:<port>, starts serving, arms the cron and the signal handles and
 * notifies systemd (READY=1, RAYC_PORT=<bound port>). 0, or a negative code with *err (if not
 * NULL) set to a new message. */
int gcs_server_start(gcs_server_t *s, char **err);

/* Starts the graceful shutdown: answers held polls, stops serving and probing, lets the store
 * finish its writes and closes the loop handles, so that uv_run() returns. Idempotent; also right
 * after a failed gcs_server_start(); accepts NULL; loop thread only. */
void gcs_server_stop(gcs_server_t *s);

/* Frees the server after uv_run() has returned. Accepts NULL. */
void gcs_server_destroy(gcs_server_t *s);

/* The whole life of rayc-gcs (main() calls it): settings, log, loop, create, start (recovering
 * state from the store), READY=1, run until SIGTERM/SIGINT, stop and destroy. Returns the exit
 * status: 0, 1 on a failure (also when the storage failed while running), 2 on bad settings. */
int gcs_server_run(int argc, char **argv);

/* Finishes call with msg (borrowed; NULL: an empty reply) once every store write issued so far is
 * durable: at once with the memory store or when nothing is in flight, else later (msg is copied).
 * If the store fails first, the call fails with UNAVAILABLE. Every handler replies through this. */
void gcs_server_reply(gcs_server_t *s, rpc_call_t *call, const ProtobufCMessage *msg);

/* One pass of the periodic work at monotonic time now (ms): poll timeouts, health checks,
 * heartbeat timeouts. */
void gcs_server_cron(gcs_server_t *s, int64_t now);

#endif
