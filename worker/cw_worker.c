/*
 * rayc-worker's life: parse the arguments the raylet gave it, start the CoreWorkerService, load
 * the job's code, register with the raylet, run pushed tasks on the main thread, and exit when
 * told to (SIGTERM) or when the raylet goes away (its socket closes).
 *
 * Signals are blocked in every thread (before gRPC starts its own) and taken by a watchdog thread
 * through signalfd, which also watches the raylet connection (its close, and the node_draining
 * frame the raylet sends when the node drains).
 */
#include "worker/cw.h"
#include "worker/cw_proc.h"
#include "worker/cw_rtenv.h"

#include "common/cfg.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

typedef struct worker_config {
  char *session_dir, *raylet_socket, *store_socket, *node_ip, *job_id, *worker_id, *code_path, *log_level;
  int gcs_reconnect_timeout_ms;
} worker_config_t;

#define F(field) offsetof(worker_config_t, field)
static const cfg_entry_t worker_settings[] = {
    {"session-dir", CFG_STRING, F(session_dir), NULL, "session directory"},
    {"raylet-socket", CFG_STRING, F(raylet_socket), NULL, "the raylet's Unix socket"},
    {"store-socket", CFG_STRING, F(store_socket), NULL, "the store's Unix socket"},
    {"node-ip-address", CFG_STRING, F(node_ip), "127.0.0.1", "address to serve on"},
    {"job-id", CFG_STRING, F(job_id), NULL, "the job this worker serves (hex)"},
    {"worker-id", CFG_STRING, F(worker_id), NULL, "this worker's id (hex)"},
    {"code-path", CFG_STRING, F(code_path), "", "libraries to load, ':'-separated"},
    {"log-level", CFG_STRING, F(log_level), "info", "debug, info, warn or error"},
    {"gcs-rpc-reconnect-timeout-ms", CFG_INT, F(gcs_reconnect_timeout_ms), "60000",
     "how long a GCS call is retried while the GCS is down (restarting) before it fails"},
};
#undef F

static int worker_parse(worker_config_t *c, int argc, char **argv, cw_t *cw)
{
  char *err = NULL;
  cfg_set_program("worker");
  int rc = cfg_load(worker_settings, ARRAY_LEN(worker_settings), c, argc, argv, NULL, &err);
  if (rc == CFG_PRINTED)
    return CFG_HELP;
  if (rc == CFG_HELP) {
    cfg_usage(stdout, "rayc-worker", "a rayc worker (started by the raylet)", worker_settings,
              ARRAY_LEN(worker_settings));
    return rc;
  }
  if (rc == 0 && (!c->session_dir || !c->raylet_socket || !c->job_id || !c->worker_id))
    err = xstrdup("--session-dir, --raylet-socket, --job-id and --worker-id are required"), rc = RAYC_EINVALID_ARGUMENT;
  if (rc == 0 && (id_from_hex(c->job_id, cw->job.b, ID_JOB_SIZE) != 0 ||
                  id_from_hex(c->worker_id, cw->worker_id.b, ID_WORKER_SIZE) != 0))
    err = xstrdup("--job-id and --worker-id must be hex ids"), rc = RAYC_EINVALID_ARGUMENT;
  if (rc == 0 && c->gcs_reconnect_timeout_ms <= 0)
    err = xstrdup("--gcs-rpc-reconnect-timeout-ms must be positive"), rc = RAYC_EINVALID_ARGUMENT;
  if (rc != 0)
    fprintf(stderr, "rayc-worker: %s\n", err ? err : "bad arguments");
  free(err);
  return rc;
}

static void worker_open_log(const worker_config_t *c)
{
  int level = log_level_parse(c->log_level);
  log_init("worker", level < 0 ? LOG_INFO : (enum log_level)level);
  char *path = xasprintf("%s/logs/worker-%.16s.log", c->session_dir, c->worker_id);
  log_open(path, 0);
  free(path);
}

/* Watches for SIGTERM/SIGINT and for the raylet's socket closing; either stops the executor. */
static void *worker_watchdog(void *arg)
{
  cw_t *cw = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = cw->raylet_fd, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0)
      continue;
    if (p[0].revents) {
      log_info("signal received; exiting");
      break;
    }
    if (p[1].revents) {
      Rayc__LocalMessage *m = NULL;
      if (frame_recv_msg(cw->raylet_fd, &rayc__local_message__descriptor, (ProtobufCMessage **)&m, NULL) != 0) {
        log_warn("the raylet closed our connection; exiting");
        break;
      }
      if (m->body_case == RAYC__LOCAL_MESSAGE__BODY_NODE_DRAINING && !cw->node_draining) {
        log_info("the node is draining: finishing the tasks pushed here, taking no new leases");
        __atomic_store_n(&cw->node_draining, 1, __ATOMIC_RELAXED);
      }
      if (m->body_case == RAYC__LOCAL_MESSAGE__BODY_LEASE_WANTED)
        cw_lease_wanted_tell(cw);
      pb_free(m);
    }
  }
  close(sfd);
  cw_worker_stop(cw);
  return NULL;
}

/* CPU time this process has used so far (all threads, the dynamic loader's included), in ms. */
static double worker_cpu_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int worker_start(cw_t *cw, worker_config_t *c)
{
  double t0 = worker_cpu_ms(), t1, t2;
  snprintf(cw->node_ip, sizeof(cw->node_ip), "%s", c->node_ip);
  cw->code_path = xstrdup(c->code_path);
  cw->gcs_reconnect_timeout_ms = c->gcs_reconnect_timeout_ms;
  /* the server thread polls; the client thread only while it has calls in flight (rpc_client.c) */
  rpc_client_opts_t copts = {.loop = NULL, .token = cw->token, .tls = &cw->tls, .poll_when_busy = 1};
  cw->client = rpc_client_create(&copts);
  int rc = cw->client ? cw_worker_serve(cw) : RAYC_EINTERNAL;
  if (rc != 0)
    return cw_set_error(rc, "cannot start the CoreWorkerService on %s", c->node_ip);
  rpc_server_on_call(cw->server, cw_bg_kick_ctx); /* a call may bring work for the sleeping bg thread */
  t1 = worker_cpu_ms();
  char *code = NULL, *wd = NULL; /* "pkg_<sha256>/..." entries: this node's copy of the job's working dir */
  rc = cw_rtenv_resolve(cw, c->session_dir, c->code_path, &code, &wd);
  if (rc != 0)
    return rc;
  if (wd && chdir(wd) != 0)
    log_warn("cannot enter the job's working dir %s", wd);
  if (wd)
    setenv("RAYC_WORKING_DIR", wd, 1);
  if (cw_proc.code_preloaded && strcmp(cw_proc.code_preloaded, code) == 0)
    log_info("code %s loaded before the fork (by its job's zygote)", code);
  else
    cw_exec_load_code(code);
  free(code);
  free(wd);
  t2 = worker_cpu_ms();
  rc = cw_connect_node(cw, c->raylet_socket, 0);
  /* Where a worker's start goes (docs/PERFORMANCE.md, actor creation): what the process cost
   * before main (exec and the dynamic loader), the gRPC server, the job's code, registering. */
  log_info("worker start: %.1f ms CPU (before main %.1f, gRPC server %.1f, code %.1f, register %.1f)", worker_cpu_ms(),
           t0, t1 - t0, t2 - t1, worker_cpu_ms() - t2);
  return rc;
}

int rayc_worker_preload(const char *session_dir, const char *code_path)
{
  char *code = NULL, *wd = NULL;
  int rc = cw_rtenv_resolve(NULL, session_dir, code_path, &code, &wd);
  if (rc == 0 && wd && chdir(wd) != 0) /* the constructors run where a worker's would */
    rc = cw_set_error(RAYC_EIO, "cannot enter the job's working dir %s", wd);
  if (rc == 0 && wd)
    setenv("RAYC_WORKING_DIR", wd, 1);
  if (rc == 0 && code && cw_exec_load_code(code) != 0)
    rc = cw_set_error(RAYC_EIO, "the job's code path %s did not load", code);
  if (rc == 0) {
    free(cw_proc.code_preloaded);
    cw_proc.code_preloaded = code;
    code = NULL;
  } else {
    fprintf(stderr, "rayc-worker --zygote: %s\n", rayc_last_error());
  }
  free(code);
  free(wd);
  return rc;
}

int rayc_worker_main(int argc, char **argv)
{
  worker_config_t conf = {0};
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  cw_t *cw = cw_create(1);
  int rc = worker_parse(&conf, argc, argv, cw);
  pthread_t wd;
  if (rc == 0) {
    worker_open_log(&conf);
    cw->current_task = id_task_random(cw->job);
    cw_proc.cw = cw;
    if ((rc = worker_start(cw, &conf)) != 0)
      log_error("worker start failed: %s", rayc_last_error());
  }
  if (rc == 0 && pthread_create(&wd, NULL, worker_watchdog, cw) == 0) {
    log_info("worker serving on %s:%d", cw->node_ip, cw->port);
    cw_worker_run(cw);
    pthread_join(wd, NULL);
  }
  rpc_server_destroy(cw->server); /* every reply sent */
  cw_actor_release();             /* no call can reach a hosted actor's record now */
  if (rc == 0 && cw_worker_exit_quick(cw)) {
    log_info("worker exits (nothing to hand back: quick exit)");
    fflush(NULL); /* the job's stdout and stderr */
    _exit(0);
  }
  cw_destroy(cw); /* callbacks of calls it cancels find cw through their context */
  cw_proc.cw = NULL;
  cfg_release(worker_settings, ARRAY_LEN(worker_settings), &conf);
  return rc == CFG_HELP ? 0 : rc ? 1 : 0;
}
