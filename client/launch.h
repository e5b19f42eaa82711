/*
 * Starting and stopping a node's daemons: used by the `rayc` CLI (rayc start/stop) and by
 * rayc_init() when it starts a private local cluster. Internal to librayc (not public API).
 *
 * A node is started in a session directory <temp-dir>/session_<date>_<time>_<pid>/ with logs/,
 * sockets/, spill/, runtime_env/ and pids/ (all 0700), and a <temp-dir>/session_latest link. Each
 * daemon is exec'ed (posix_spawn, never a bare fork: gRPC breaks in forked children) with
 * NOTIFY_SOCKET pointing at a datagram socket the launcher bound, and the launcher waits for its
 * "READY=1" (with "RAYC_PORT=<n>" for daemons that listen on TCP) before starting the next:
 * gcs (head only) -> store -> raylet. Pids go to <session>/pids/<name>.pid.
 *
 * Security. Every node runs with the cluster token (common/token.h): the head makes a new one
 * unless given one, every node keeps it in <session>/cluster_token (0600) and gives that file to
 * each daemon as --token-file; the head started by `rayc start` also publishes it as
 * <temp-dir>/cluster_token (0600), replaced atomically, for joining nodes and drivers. TLS files
 * (opts.tls_*), when set, go to every daemon as --tls-cert/--tls-key/--tls-ca.
 */
#ifndef RAYC_CLIENT_LAUNCH_H
#define RAYC_CLIENT_LAUNCH_H

#include "common/token.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct launch_opts {
  int head;                                /* start rayc-gcs too */
  const char *temp_dir;                    /* default /tmp/rayc */
  const char *gcs_address;                 /* for a non-head node: HOST:PORT */
  int gcs_port;                            /* head: 6380 by default; 0 = ephemeral */
  const char *node_ip;                     /* default 127.0.0.1 */
  double num_cpus;                         /* < 0: the core count */
  double num_gpus;                         /* < 0: detect (0 for now) */
  int64_t memory;                          /* bytes; <= 0: default */
  int64_t object_store_memory;             /* bytes; <= 0: default (30% of RAM, min 75 MiB) */
  const char *resources_json;              /* custom resources, NULL: none */
  const char *redis_address;               /* head: GCS storage, NULL: in memory */
  const char *redis_password;              /* head: Redis AUTH password (borrowed), NULL: none; reaches the
                                     GCS in its environment, never its command line */
  const char *config_file;                 /* YAML passed to every daemon with --config, NULL: none */
  const char *bin_dir;                     /* where rayc-* live; NULL: found from librayc's location */
  const char *log_level;                   /* NULL: info */
  int ready_timeout_ms;                    /* per daemon; <= 0: 10000 */
  int gcs_only;                            /* head: start rayc-gcs alone (no store, no raylet): tests, and a
                                     head host that runs no tasks */
  const char *token;                       /* the cluster token (borrowed); NULL: the head makes a new one (a
                                     node joining must be given its cluster's) */
  int publish_token;                       /* head with a new token: also write <temp-dir>/cluster_token */
  const char *tls_cert, *tls_key, *tls_ca; /* PEM files for every daemon's gRPC; NULL: plaintext */
  int node_manager_port;                   /* the raylet's gRPC port; 0: ephemeral */
  int object_manager_port;                 /* the store's object manager port; 0: ephemeral */
  int min_worker_port, max_worker_port;    /* workers' gRPC ports; 0: ephemeral */
  int dashboard_port;                      /* head: rayc-dashboard's HTTP port (0: ephemeral); < 0 (the
                                     default): no dashboard. It starts last, and a dashboard that
                                     cannot start leaves the node up (see dashboard_error). */
} launch_opts_t;

typedef struct launch_result {
  char session_dir[512];
  char gcs_address[128]; /* HOST:PORT of the cluster's GCS */
  char raylet_socket[600];
  char store_socket[600];
  int raylet_port;
  char token_file[600];       /* <session>/cluster_token, the node's copy of the token */
  char token[TOKEN_MAX + 1];  /* the token itself, for the driver of a private cluster; never
                                     print it */
  int dashboard_port;         /* the dashboard's bound port; 0: none */
  char dashboard_error[1024]; /* why the dashboard asked for did not start; "" when it did */
} launch_result_t;

/* Sets defaults in opts. */
void launch_opts_init(launch_opts_t *opts);

/* Starts a node. On 0, out is filled. On error, everything started is stopped again and a
 * negative code is returned with *err (if not NULL) a new message saying which daemon failed and
 * where its log is. */
int launch_node_start(const launch_opts_t *opts, launch_result_t *out, char **err);

/* Stops every process recorded in session_dir/pids/ (raylet and its workers, store, gcs): SIGTERM,
 * wait up to grace_ms, then SIGKILL. Only pids whose /proc/<pid>/cmdline names session_dir are
 * signalled. Once none runs, the session's address and token files go, and so does
 * <temp-dir>/cluster_token when it holds the same token. Returns the number of processes that
 * were running, or a negative code. */
int launch_node_stop(const char *session_dir, int grace_ms, int force);

/* Restarts the GCS of the head session session_dir after it died, with the command line it was
 * first started with (saved as <session>/gcs.args; an ephemeral --port 0 becomes the port it had,
 * from <session>/address, so nodes find it where it was) and its Redis password
 * (<session>/redis_password, 0600): it rejoins the session, so `rayc stop` stops it with the rest.
 * Refuses while the session's GCS still runs. On 0, *pid is the new GCS's pid; else a negative
 * code and *err a new message. */
int launch_gcs_restart(const char *session_dir, int ready_timeout_ms, pid_t *pid, char **err);

/* Resolves the directory holding the rayc-* executables into buf; 0 or a negative code. */
int launch_bin_dir(char *buf, size_t len);

/* True while pid runs (reaping it first if it is our child; a zombie counts as exited). */
int launch_pid_alive(pid_t pid);

#endif
