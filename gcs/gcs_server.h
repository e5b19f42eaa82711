/*
 * rayc-gcs: the server that owns the cluster's control state.
 *
 * Design. One libuv loop owns everything below: the storage backend, the node, job and KV tables,
 * the gRPC server (whose handlers gRPC's thread hands to this loop), one periodic timer (the
 * "cron": node health checks) and the SIGTERM/SIGINT handles. Nothing is locked because only the
 * loop touches the state. Handlers run to completion and reply before returning.
 *
 * Lifecycle: gcs_config_load() -> gcs_server_create() -> gcs_server_start() (listen, serve, arm the
 * cron and signals, tell systemd READY=1 with RAYC_PORT) -> uv_run() -> a signal calls
 * gcs_server_stop() (idempotent: stops the RPC server, closes the handles, so uv_run returns) ->
 * gcs_server_destroy().
 */
#ifndef RAYC_GCS_SERVER_H
#define RAYC_GCS_SERVER_H

#include "common/cfg.h"
#include "common/rpc.h"
#include "gcs/gcs_job.h"
#include "gcs/gcs_node.h"
#include "gcs/gcs_store.h"

#include <uv.h>

/* Settings of rayc-gcs, bound to gcs_config_table by offset. */
typedef struct gcs_config {
  char *session_dir;        /* logs to <session_dir>/logs/gcs.log; NULL: stderr */
  int port;                 /* 0: ephemeral */
  char *node_ip_address;    /* the only address the server listens on */
  char *redis_address;      /* persistent storage (not implemented yet: refused) */
  char *token_file;         /* cluster token required on every call; NULL: none */
  int heartbeat_timeout_ms; /* a node silent this long is marked DEAD */
  char *log_level;
} gcs_config_t;

extern const cfg_entry_t gcs_config_table[];
extern const size_t gcs_config_table_len;

/* Fills conf from flags, RAYC_* environment, YAML and defaults, then checks the values. Returns 0,
 * CFG_HELP (usage printed to stdout), or a negative code with the error printed to stderr. On a
 * non-zero return conf holds nothing to release. */
int gcs_config_load(gcs_config_t *conf, int argc, char **argv);

/* Frees the strings held by conf. */
void gcs_config_release(gcs_config_t *conf);

typedef struct gcs_server {
  uv_loop_t *loop;               /* borrowed */
  const gcs_config_t *conf;      /* borrowed; must outlive the server */
  gcs_store_t *store;            /* owned */
  gcs_nodes_t nodes;
  gcs_jobs_t jobs;
  rpc_server_t *rpc;             /* owned; NULL once stopped */
  char *token;                   /* owned; NULL: no token */
  int port;                      /* bound port, after gcs_server_start */
  uv_timer_t cron;
  uv_signal_t sig_term, sig_int;
  int started, stopping;
} gcs_server_t;

/* The RPC table of rayc-gcs: every method of NodeInfoGcsService, JobInfoGcsService and
 * InternalKVGcsService, each handler called with the gcs_server_t as ctx. */
extern const rpc_method_t gcs_rpc_methods[];
extern const size_t gcs_rpc_methods_len;

/* Returns a new server bound to loop (which must outlive it), with empty tables loaded from the
 * storage backend the config names, or NULL with *err (if not NULL) set to a new message.
 * Destroy with gcs_server_destroy(). */
gcs_server_t *gcs_server_create(uv_loop_t *loop, const gcs_config_t *conf, char **err);

/* Listens on <node_ip_address>:<port>, starts serving, arms the cron and the signal handles and
 * notifies systemd (READY=1, RAYC_PORT=<bound port>). 0, or a negative code with *err (if not
 * NULL) set to a new message. */
int gcs_server_start(gcs_server_t *s, char **err);

/* Starts the graceful shutdown: stops serving and closes the loop handles, so that uv_run()
 * returns. Idempotent; also right after a failed gcs_server_start(); loop thread only. */
void gcs_server_stop(gcs_server_t *s);

/* Frees the server after uv_run() has returned. Accepts NULL. */
void gcs_server_destroy(gcs_server_t *s);

/* One pass of the periodic work (node health checks), at monotonic time now (ms). */
void gcs_server_cron(gcs_server_t *s, int64_t now);

#endif
