/*
 * The launcher's internals shared by its files: client/launch.c (starting and stopping a node) and
 * client/launch_gcs.c (restarting a head's GCS). Not part of librayc's API.
 */
#ifndef RAYC_CLIENT_LAUNCH_INT_H
#define RAYC_CLIENT_LAUNCH_INT_H

#include "client/launch.h"

#include <limits.h>
#include <sys/types.h>
#include <sys/un.h>

enum { LAUNCH_MAX_ARGS = 48, LAUNCH_FAIL_GRACE_MS = 2000, LAUNCH_POLL_MS = 20 };

/* One node start in progress. */
typedef struct launch {
  const launch_opts_t *opts;
  char bin_dir[PATH_MAX];
  char temp[PATH_MAX]; /* the temp dir, resolved */
  char session[512];
  char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" until bound */
  char *notify_env;                                              /* "NOTIFY_SOCKET=<path>" */
  int notify_fd;
  int store_om_port;
  int store_metrics_port;
  int metrics_port;     /* RAYC_METRICS_PORT of the daemon last started (0: none) */
  char *token;          /* the cluster token (owned) */
  int token_new;        /* made here (head), not given */
  char token_file[600]; /* <session>/cluster_token */
  char *extra_env;      /* "NAME=value" added to the next spawn's environment, or NULL */
  char *err;
} launch_t;

typedef struct launch_argv {
  char *v[LAUNCH_MAX_ARGS + 1];
  int n;
} launch_argv_t;

/* Binds <session>/sockets/notify and sets notify_env; 0 or a negative errno. */
int launch_notify_open(launch_t *l);
/* Closes and unlinks the readiness socket; frees notify_env. */
void launch_notify_close(launch_t *l);
/* Frees the arguments of a (and empties it). */
void launch_argv_release(launch_argv_t *a);
/* A daemon being started (client/launch_ready.c): its pid, and what its readiness datagrams said. */
typedef struct launch_child {
  const char *name; /* borrowed: "gcs", "store", ... (logs/<name>.log) */
  pid_t pid;
  int port;         /* RAYC_PORT (0: none yet) */
  int metrics_port; /* RAYC_METRICS_PORT (0: none) */
  int ready;        /* READY=1 seen */
  int optional;     /* launch_wait_children records its readiness but neither needs it nor fails
                       when it exits */
} launch_child_t;

/* posix_spawns argv a (borrowed) as daemon name of l's session (output to logs/<name>.out) and
 * records its pid in pids/<name>.pid. 0, or a negative code with l->err set. */
int launch_spawn(launch_t *l, const char *name, launch_argv_t *a, pid_t *pid);
/* launch_spawn into *c (name borrowed, kept in c); releases a. */
int launch_spawn_child(launch_t *l, const char *name, launch_argv_t *a, launch_child_t *c);
/* Waits until every child of c[0..n) has sent READY=1. 0; or, when one exits first or the ready
 * timeout passes, a negative code with l->err naming that child and the tail of its log. */
int launch_wait_children(launch_t *l, launch_child_t *c, int n);
/* Spawns a (released here) as daemon name of l's session, records its pid in pids/<name>.pid and
 * waits for its READY=1 (*port from RAYC_PORT, l->metrics_port from RAYC_METRICS_PORT). 0, or a
 * negative code with l->err set. */
int launch_daemon(launch_t *l, const char *name, launch_argv_t *a, int *port);
/* Copies the last few lines of path into out, each on a new indented line; "" when unreadable. */
void launch_tail(const char *path, char *out, size_t len);
/* True when /proc/<pid>/cmdline has an argument naming the directory dir. */
int launch_cmdline_names(pid_t pid, const char *dir);
/* Wipes and frees l->extra_env (the Redis password's variable). */
void launch_gcs_forget_password(launch_t *l);

#endif
