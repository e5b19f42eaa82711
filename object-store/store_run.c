/*
 * rayc-store's life (store_server_run; main.c only calls it): settings, log, loop, server (region,
 * socket, object manager), /metrics, signals, readiness to systemd ("READY=1" with
 * "RAYC_PORT=<object manager port>"), the loop, and teardown in reverse. SIGTERM and SIGINT start a
 * graceful shutdown on the loop; the process exits 0 once every handle has closed.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include "common/cfg.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/metrics_http.h"
#include "common/util.h"
#include "object-store/store_config.h"
#include "object-store/store_server.h"

typedef struct store_main {
  store_config_t conf;
  uv_loop_t loop;
  store_server_t *server;
  uv_signal_t sigterm, sigint;
  int loop_open;
  metrics_http_t *metrics; /* owned: /metrics; NULL: none */
} store_main_t;

enum { MAIN_GO = -1 };

/* Returns MAIN_GO, or the exit status when the program should stop (help, bad settings). */
static int main_settings(store_main_t *m, int argc, char **argv)
{
  char *err = NULL;
  int rc = store_config_load(&m->conf, argc, argv, &err);
  if (rc == CFG_PRINTED)
    return 0; /* --print-config printed the settings */
  if (rc == CFG_HELP) {
    store_config_usage(stdout, "rayc-store");
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "rayc-store: %s (see --help)\n", err ? err : "bad settings");
    free(err);
    return 2;
  }
  return MAIN_GO;
}

static int main_log(store_main_t *m)
{
  return daemon_log_open("rayc-store", m->conf.session_dir, "store.log", m->conf.log_level, m->conf.log_stderr);
}

static void main_on_signal(uv_signal_t *h, int signum)
{
  store_main_t *m = h->data;
  log_info("received %s; shutting down", strsignal(signum));
  daemon_notify_stopping();
  store_server_shutdown(m->server);
  if (!uv_is_closing((uv_handle_t *)&m->sigterm))
    uv_close((uv_handle_t *)&m->sigterm, NULL);
  if (!uv_is_closing((uv_handle_t *)&m->sigint))
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

static void main_signals(store_main_t *m)
{
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&m->loop, &m->sigterm);
  uv_signal_init(&m->loop, &m->sigint);
  m->sigterm.data = m->sigint.data = m;
  uv_signal_start(&m->sigterm, main_on_signal, SIGTERM);
  uv_signal_start(&m->sigint, main_on_signal, SIGINT);
}

static void main_notify_ready(const store_main_t *m)
{
  daemon_notify_ready(store_server_om_port(m->server), m->metrics ? metrics_http_port(m->metrics) : 0, NULL);
}

/* Object transfers pass 5 MiB chunks through malloc'ed buffers (gRPC's and protobuf's): keep
 * such buffers in the heap and the heap from shrinking after each one, so they are not faulted in
 * afresh for every chunk (first touch costs ~1 GB/s here). */
static void main_malloc_tuning(void)
{
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

static int main_server(store_main_t *m)
{
  store_server_opts_t o = {
      .socket_path = m->conf.socket,
      .capacity = (uint64_t)m->conf.object_store_memory,
      .spill_dir = m->conf.spill_dir,
      .spill_threshold = m->conf.spill_threshold,
      .io_threads = m->conf.io_threads,
      .node_ip = m->conf.node_ip_address,
      .om_port = m->conf.object_manager_port,
      .token = m->conf.token,
      .tls_cert = m->conf.tls_cert,
      .tls_key = m->conf.tls_key,
      .tls_ca = m->conf.tls_ca,
      .limits = {.max_conns = (size_t)m->conf.local_max_conns,
                 .frame_max = (size_t)m->conf.local_frame_max,
                 .stall_ms = m->conf.local_stall_ms},
  };
  return store_server_create(&m->loop, &o, &m->server);
}

/* The /metrics endpoint, on the object manager's address (none without one). */
static int main_metrics(store_main_t *m)
{
  if (m->conf.metrics_port < 0 || !m->conf.node_ip_address)
    return 0;
  char *err = NULL;
  m->metrics = metrics_http_start(m->conf.node_ip_address, m->conf.metrics_port, &err);
  if (!m->metrics) {
    log_error("%s", err);
    free(err);
    return -1;
  }
  log_info("metrics on http://%s:%d/metrics", m->conf.node_ip_address, metrics_http_port(m->metrics));
  return 0;
}

static void main_teardown(store_main_t *m)
{
  metrics_http_stop(m->metrics);
  if (m->loop_open) {
    uv_run(&m->loop, UV_RUN_NOWAIT); /* close callbacks still pending */
    store_server_destroy(m->server);
    if (uv_loop_close(&m->loop) != 0)
      log_warn("event loop closed with handles still open");
  }
  store_config_release(&m->conf);
}

int store_server_run(int argc, char **argv)
{
  store_main_t m;
  memset(&m, 0, sizeof(m));
  int status = main_settings(&m, argc, argv);
  if (status != MAIN_GO)
    goto out;
  status = 1;
  if (main_log(&m) < 0)
    goto out;
  if (uv_loop_init(&m.loop) != 0)
    goto out;
  m.loop_open = 1;
  main_malloc_tuning();
  if (main_server(&m) < 0 || main_metrics(&m) < 0)
    goto out;
  main_signals(&m);
  main_notify_ready(&m);
  log_info("ready (pid %d)", (int)getpid());
  uv_run(&m.loop, UV_RUN_DEFAULT);
  log_info("stopped");
  status = 0;
out:
  main_teardown(&m);
  return status;
}
