/*
 * What every rayc daemon does the same way at start-up and shutdown: logging into its session,
 * telling systemd (or `rayc start`, which listens on NOTIFY_SOCKET) that it is ready or stopping.
 * Each daemon's life is in its X_server.c (gcs_server_run, store_server_run, raylet_server_run),
 * in the same order: settings, log, loop, modules, recovered state, RPC, READY=1, run, shutdown in
 * reverse; main.c only calls it.
 */
#ifndef RAYC_COMMON_DAEMON_H
#define RAYC_COMMON_DAEMON_H

/* Sets the log's program name and level (a name from log_level_parse; unknown: info) and, with a
 * session directory, opens <session_dir>/logs/<file> (creating logs/ and pids/ 0700); with
 * also_stderr, lines go to stderr too. Without a session directory the log is stderr. Returns 0 or
 * a negative code, after printing why on stderr. */
int daemon_log_open(const char *program, const char *session_dir, const char *file, const char *level, int also_stderr);

/* Tells the service manager the daemon serves: READY=1 with its gRPC port (RAYC_PORT) and metrics
 * port (RAYC_METRICS_PORT, 0: none) and a STATUS line. A failure is logged, not fatal. */
void daemon_notify_ready(int port, int metrics_port, const char *status);

/* Tells the service manager the daemon is shutting down (STOPPING=1). */
void daemon_notify_stopping(void);

#endif
