/*
 * The worker pool: spawns rayc-worker processes per (job, code path), learns of them when they
 * register over the local socket, hands idle ones to leases, and cleans up when they exit.
 *
 * A worker's life: STARTING (spawned) -> IDLE (registered) <-> LEASED -> DEAD (exited, or its
 * connection closed). C workers are forked by a zygote (raylet_zygote.c) that has not started
 * gRPC (which breaks in forked children), or exec'ed (uv_spawn); Python workers are exec'ed. Each live worker has a pid file SESSION/pids/worker-<pid>.pid so `rayc stop`
 * can find it even if the raylet is gone.
 */
#include "raylet/raylet.h"

#include "rayc.h" /* enum rayc_language */

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *worker_state_name[] = {"STARTING", "IDLE", "LEASED", "EXITING", "DEAD"};

/* PYTHONPATH of a Python worker: --python-path, then any inherited one. New string or NULL. */
static char *pool_python_path(const raylet_t *r, int lang)
{
  const char *inherited = getenv("PYTHONPATH");
  if (lang != RAYC_LANG_PYTHON)
    return inherited && *inherited ? xstrdup(inherited) : NULL;
  const char *ours = r->cfg.python_path ? r->cfg.python_path : "";
  return xasprintf("%s%s%s", ours, *ours && inherited && *inherited ? ":" : "", inherited ? inherited : "");
}

/* A worker's environment: ours, with the cluster token as RAYC_TOKEN, the TLS files as RAYC_TLS_*
 * and the port range as RAYC_MIN/MAX_WORKER_PORT (the raylet's own, replacing any inherited ones):
 * workers read no token file. Python workers also get PYTHONPATH (the rayc package) and
 * unbuffered output (print() reaches the log, and the driver, as it happens). */
static char **pool_worker_env(const raylet_t *r, int lang)
{
  static const char *const ours[] = {
      "RAYC_TOKEN=",           "RAYC_TOKEN_FILE=",      "RAYC_TLS_CERT=", "RAYC_TLS_KEY=",    "RAYC_TLS_CA=",
      "RAYC_MIN_WORKER_PORT=", "RAYC_MAX_WORKER_PORT=", "PYTHONPATH=",    "PYTHONUNBUFFERED="};
  char lo[16], hi[16];
  snprintf(lo, sizeof(lo), "%d", r->cfg.min_worker_port);
  snprintf(hi, sizeof(hi), "%d", r->cfg.max_worker_port);
  char *pypath = pool_python_path(r, lang);
  const char *vals[] = {r->token,
                        NULL,
                        r->cfg.tls_cert,
                        r->cfg.tls_key,
                        r->cfg.tls_ca,
                        r->cfg.min_worker_port > 0 ? lo : NULL,
                        r->cfg.min_worker_port > 0 ? hi : NULL,
                        pypath,
                        lang == RAYC_LANG_PYTHON ? "1" : getenv("PYTHONUNBUFFERED")};
  size_t n = 0, k = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + ARRAY_LEN(ours) + 1, sizeof(*env));
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < ARRAY_LEN(ours) && strncmp(environ[i], ours[j], strlen(ours[j])) != 0)
      j++;
    if (j == ARRAY_LEN(ours))
      env[k++] = xstrdup(environ[i]);
  }
  for (size_t j = 0; j < ARRAY_LEN(ours); j++)
    if (vals[j] && *vals[j])
      env[k++] = xasprintf("%s%s", ours[j], vals[j]);
  free(pypath);
  return env;
}

static void pool_env_free(char **env)
{
  for (char **e = env; *e; e++) {
    explicit_bzero(*e, strlen(*e)); /* one holds the token */
    free(*e);
  }
  free(env);
}

void raylet_worker_set_state(raylet_worker_t *w, enum raylet_worker_state s)
{
  char id[9];
  log_debug("worker %s (pid %d): %s -> %s", id_short(w->id.b, ID_WORKER_SIZE, id), (int)w->pid,
            worker_state_name[w->state], worker_state_name[s]);
  w->state = s;
}

static void worker_pidfile(const raylet_t *r, pid_t pid, char *buf, size_t len)
{
  snprintf(buf, len, "%s/pids/worker-%d.pid", r->cfg.session_dir, (int)pid);
}

static void worker_free(raylet_worker_t *w)
{
  free(w->code_path);
  free(w);
}

static void worker_unlink(raylet_t *r, raylet_worker_t *w)
{
  for (raylet_worker_t **pp = &r->workers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      return;
    }
}

static void worker_on_close(uv_handle_t *h)
{
  worker_free(h->data);
}

/* The worker is gone (exited or disconnected): release its lease and forget it. */
static void worker_gone(raylet_t *r, raylet_worker_t *w, const char *why)
{
  if (w->state == WORKER_DEAD)
    return;
  char id[9];
  log_info("worker %s (pid %d) is gone: %s", id_short(w->id.b, ID_WORKER_SIZE, id), (int)w->pid, why);
  raylet_lease_drop_worker(r, w);
  raylet_worker_set_state(w, WORKER_DEAD);
  if (w->conn) {
    local_conn_set_data(w->conn, NULL);
    local_conn_close(w->conn);
    w->conn = NULL;
  }
  if (w->pid > 0 && !w->proc_open)
    return;
  raylet_pool_kill(w, SIGKILL);
}

/* The worker's process ended: forget it (the caller frees it). */
static void worker_exited(raylet_t *r, raylet_worker_t *w, int64_t status, int sig)
{
  char path[600];
  worker_pidfile(r, w->pid, path, sizeof(path));
  unlink(path);
  char why[64];
  if (sig)
    snprintf(why, sizeof(why), "killed by signal %d", sig);
  else
    snprintf(why, sizeof(why), "exited with status %lld", (long long)status);
  w->proc_open = 0; /* reaped: its pid may be reused, never signal it again */
  worker_gone(r, w, why);
  worker_unlink(r, w);
}

static void worker_on_exit(uv_process_t *p, int64_t status, int sig)
{
  raylet_worker_t *w = p->data;
  raylet_t *r = container_of(p->loop, raylet_t, loop);
  worker_exited(r, w, status, sig);
  uv_close((uv_handle_t *)p, worker_on_close);
  raylet_dispatch(r);
}

void raylet_pool_zygote_exit(raylet_t *r, int zygote, pid_t pid, int wstatus)
{
  raylet_worker_t *w = r->workers, *next;
  for (; w; w = next) {
    next = w->next;
    if (!w->zygote || !w->proc_open || (pid > 0 && w->pid != pid) || (pid < 0 && zygote && w->zygote != zygote))
      continue;
    if (pid < 0) /* the zygote died: its workers died with it (PR_SET_PDEATHSIG) */
      worker_exited(r, w, 0, SIGKILL);
    else
      worker_exited(r, w, WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0, WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
    worker_free(w);
  }
}

static void worker_write_pidfile(raylet_t *r, pid_t pid)
{
  char path[600];
  worker_pidfile(r, pid, path, sizeof(path));
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
  }
}

static void worker_log_path(const raylet_t *r, const id_worker_t *id, char *path, size_t len)
{
  char hex[2 * ID_WORKER_SIZE + 1];
  id_hex(id->b, ID_WORKER_SIZE, hex);
  snprintf(path, len, "%s/logs/worker-%.16s.out", r->cfg.session_dir, hex);
}

/* Starts w's process by exec (uv_spawn); 0 or a libuv error. */
static int worker_exec(raylet_t *r, raylet_worker_t *w, char **args, char **env)
{
  char path[700];
  worker_log_path(r, &w->id, path, sizeof(path));
  int logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = logfd},
                                   {.flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = logfd}};
  uv_process_options_t opts = {
      .exit_cb = worker_on_exit, .file = args[0], .args = args, .env = env, .stdio_count = 3, .stdio = stdio};
  w->proc.data = w;
  int rc = uv_spawn(&r->loop, &w->proc, &opts);
  if (logfd >= 0)
    close(logfd);
  if (rc == 0)
    w->pid = w->proc.pid;
  return rc;
}

/* Starts w's process: forked by the zygote (C workers), or exec'ed. 0 or RAYC_EIO (w freed). */
static int worker_start(raylet_t *r, raylet_worker_t *w, char **args)
{
  char **env = pool_worker_env(r, w->lang);
  char path[700];
  worker_log_path(r, &w->id, path, sizeof(path));
  int rc = 0;
  if (w->lang == RAYC_LANG_PYTHON || raylet_zygote_spawn(r, w->job, w->code_path, args, env, path, &w->pid, &w->zygote))
    rc = worker_exec(r, w, args, env);
  pool_env_free(env);
  if (rc != 0) {
    log_error("cannot start worker %s: %s", args[0], uv_strerror(rc));
    uv_close((uv_handle_t *)&w->proc, worker_on_close);
    return RAYC_EIO;
  }
  return 0;
}

int raylet_pool_spawn(raylet_t *r, id_job_t job, const char *code_path, int lang)
{
  raylet_worker_t *w = xcalloc(1, sizeof(*w));
  w->id = id_worker_random();
  w->job = job;
  w->code_path = xstrdup(code_path ? code_path : "");
  w->lang = lang;
  char wid[2 * ID_WORKER_SIZE + 1], jid[2 * ID_JOB_SIZE + 1];
  id_hex(w->id.b, ID_WORKER_SIZE, wid);
  id_hex(job.b, ID_JOB_SIZE, jid);
  /* A Python worker is the interpreter running the rayc.worker module with the same arguments. */
  int py = lang == RAYC_LANG_PYTHON;
  char *args[] = {py ? r->cfg.python : r->cfg.worker_path,
                  (char *)"-m",
                  (char *)"rayc.worker",
                  (char *)"--session-dir",
                  r->cfg.session_dir,
                  (char *)"--raylet-socket",
                  r->cfg.socket,
                  (char *)"--store-socket",
                  r->cfg.store_socket,
                  (char *)"--node-ip-address",
                  r->cfg.node_ip,
                  (char *)"--job-id",
                  jid,
                  (char *)"--worker-id",
                  wid,
                  (char *)"--code-path",
                  w->code_path,
                  (char *)"--log-level",
                  r->cfg.log_level,
                  NULL};
  if (!py) /* rayc-worker takes the arguments directly */
    memmove(&args[1], &args[3], sizeof(args) - 3 * sizeof(args[0]));
  if (worker_start(r, w, args) != 0)
    return RAYC_EIO;
  w->proc_open = 1;
  w->started_ms = now_ms();
  w->state = WORKER_STARTING; /* born in this state: nothing to log */
  w->next = r->workers;
  r->workers = w;
  worker_write_pidfile(r, w->pid);
  log_info("started %s worker %.8s (pid %d) for job %s%s", py ? "Python" : "C", wid, (int)w->pid, jid,
           w->zygote == 1 ? " (forked by the zygote)"
           : w->zygote    ? " (forked by its job's zygote)"
                          : "");
  return 0;
}

/* The pool's key: job, code path and language. */
static int worker_matches(const raylet_worker_t *w, id_job_t job, const char *code_path, int lang)
{
  return memcmp(w->job.b, job.b, ID_JOB_SIZE) == 0 && strcmp(w->code_path, code_path ? code_path : "") == 0 &&
         w->lang == lang;
}

raylet_worker_t *raylet_pool_find_idle(raylet_t *r, id_job_t job, const char *code_path, int lang)
{
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->state == WORKER_IDLE && worker_matches(w, job, code_path, lang))
      return w;
  return NULL;
}

int raylet_pool_count_starting(const raylet_t *r, id_job_t job, const char *code_path, int lang, int *total)
{
  int n = 0, all = 0;
  for (const raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->state == WORKER_STARTING) {
      all++;
      n += worker_matches(w, job, code_path, lang);
    }
  if (total)
    *total = all;
  return n;
}

static void pool_reply_register(raylet_t *r, local_conn_t *c, uint64_t seq, int err, const char *msg)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__LocalStatus st = RAYC__LOCAL_STATUS__INIT;
  Rayc__RegisterClientReply rep = RAYC__REGISTER_CLIENT_REPLY__INIT;
  m.seq = seq;
  st.code = err;
  st.message = (char *)(msg ? msg : "");
  m.status = &st;
  rep.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  rep.node_ip = r->cfg.node_ip;
  rep.raylet_port = r->port;
  rep.store_socket = r->cfg.store_socket;
  rep.object_manager_port = r->cfg.object_manager_port;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_REGISTER_WORKER_REPLY;
  m.register_worker_reply = &rep;
  local_conn_send_msg(c, &m.base, -1);
}

static void pool_register_driver(raylet_t *r, local_conn_t *c, const Rayc__RegisterClientRequest *req, uint64_t seq)
{
  raylet_driver_t *d = xcalloc(1, sizeof(*d));
  memcpy(d->id.b, req->worker_id.data, ID_WORKER_SIZE);
  if (req->job_id.len == ID_JOB_SIZE)
    memcpy(d->job.b, req->job_id.data, ID_JOB_SIZE);
  d->conn = c;
  d->next = r->drivers;
  r->drivers = d;
  local_conn_set_data(c, NULL);
  pool_reply_register(r, c, seq, 0, NULL);
  if (req->job_id.len == ID_JOB_SIZE)
    raylet_pool_prestart(r, d->job, req->code_path, req->language);
}

void raylet_pool_prestart(raylet_t *r, id_job_t job, const char *code_path, int lang)
{
  int starting = 0, have = 0, started = 0;
  if (r->stopping || r->draining || r->cfg.prestart_workers <= 0 || raylet_jobs_is_dead(r, job))
    return;
  raylet_pool_count_starting(r, job, NULL, lang, &starting);
  for (const raylet_worker_t *w = r->workers; w; w = w->next)
    have += w->state != WORKER_DEAD && w->state != WORKER_EXITING && worker_matches(w, job, code_path, lang);
  while (have + started < r->cfg.prestart_workers && starting + started < r->cfg.max_starting_workers &&
         raylet_pool_spawn(r, job, code_path, lang) == 0)
    started++;
  char jid[2 * ID_JOB_SIZE + 1];
  if (started)
    log_info("prestarted %d worker%s for job %s", started, started == 1 ? "" : "s", id_hex(job.b, ID_JOB_SIZE, jid));
}

int raylet_pool_spare_actors(raylet_t *r, id_job_t job, const char *code_path, int lang, const raylet_worker_t *taken,
                             int demand, int starting_total)
{
  int spare = 0, started = 0;
  id_job_t driver_job = job;
  driver_job.b[0] &= 0x7f;
  if (r->stopping || r->draining || r->cfg.prestart_actor_workers <= 0 || raylet_jobs_is_dead(r, driver_job))
    return 0;
  for (const raylet_worker_t *w = r->workers; w; w = w->next)
    spare += w != taken && (w->state == WORKER_IDLE || w->state == WORKER_STARTING) &&
             worker_matches(w, job, code_path, lang);
  while (spare + started - demand < r->cfg.prestart_actor_workers &&
         starting_total + started < r->cfg.max_starting_workers && raylet_pool_spawn(r, job, code_path, lang) == 0)
    started++;
  return started;
}

void raylet_pool_notify_draining(raylet_t *r)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_NODE_DRAINING;
  m.node_draining = 1;
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->conn && w->state != WORKER_DEAD)
      local_conn_send_msg(w->conn, &m.base, -1);
}

void raylet_pool_on_register(raylet_t *r, local_conn_t *c, const Rayc__RegisterClientRequest *req, uint64_t seq)
{
  if (req->worker_id.len != ID_WORKER_SIZE) {
    pool_reply_register(r, c, seq, RAYC_EINVALID_ARGUMENT, "worker_id must be 28 bytes");
    return;
  }
  if (req->is_driver) {
    pool_register_driver(r, c, req, seq);
    return;
  }
  raylet_worker_t *w = r->workers;
  while (w && memcmp(w->id.b, req->worker_id.data, ID_WORKER_SIZE) != 0)
    w = w->next;
  if (!w || w->state != WORKER_STARTING || req->pid != w->pid) {
    pool_reply_register(r, c, seq, RAYC_ENOT_FOUND, "unknown worker: not started by this raylet");
    return;
  }
  w->port = req->port;
  w->conn = c;
  local_conn_set_data(c, w);
  raylet_worker_set_state(w, WORKER_IDLE);
  w->idle_since_ms = now_ms();
  pool_reply_register(r, c, seq, 0, NULL);
  raylet_dispatch(r);
}

/* The job is over: its workers have nothing more to do (a new job gets new workers). Actor
 * workers run under the job id with its top bit set, so they are not among them: the GCS ends
 * the job's owned actors, and detached ones live on. Its idle and starting actor workers (kept
 * ready for its next actors, hosting none) end with it: a detached actor still waiting for one
 * gets a new one. */
int raylet_pool_end_job(raylet_t *r, id_job_t job)
{
  int n = 0;
  id_job_t actors = job;
  actors.b[0] |= 0x80;
  raylet_zygote_end_job(r, job);
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if ((w->state == WORKER_IDLE || w->state == WORKER_STARTING) && memcmp(w->job.b, actors.b, ID_JOB_SIZE) == 0) {
      raylet_worker_set_state(w, WORKER_EXITING);
      raylet_pool_kill(w, SIGTERM);
    }
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (memcmp(w->job.b, job.b, ID_JOB_SIZE) == 0 && w->state != WORKER_DEAD) {
      raylet_pool_kill(w, w->state == WORKER_LEASED ? SIGKILL : SIGTERM);
      if (w->state == WORKER_IDLE || w->state == WORKER_STARTING)
        raylet_worker_set_state(w, WORKER_EXITING); /* never handed out again */
      n++;
    }
  return n;
}

void raylet_pool_on_disconnect(raylet_t *r, local_conn_t *c)
{
  raylet_worker_t *w = local_conn_data(c);
  if (w) {
    w->conn = NULL;
    raylet_lease_drop_owner(r, &w->id); /* leases a worker took for its own tasks die with it */
    worker_gone(r, w, "its connection to the raylet closed");
    raylet_dispatch(r);
    return;
  }
  for (raylet_driver_t **pp = &r->drivers; *pp; pp = &(*pp)->next) {
    raylet_driver_t *d = *pp;
    if (d->conn != c)
      continue;
    *pp = d->next;
    raylet_lease_drop_owner(r, &d->id);
    raylet_jobs_driver_gone(r, d->job, (int)local_conn_pid(c));
    free(d);
    raylet_dispatch(r);
    return;
  }
}

void raylet_pool_kill(raylet_worker_t *w, int sig)
{
  if (w->proc_open && w->pid > 0)
    kill(w->pid, sig);
}

void raylet_pool_kill_all(raylet_t *r, int sig)
{
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    raylet_pool_kill(w, sig);
}

void raylet_pool_reap_stuck(raylet_t *r)
{
  int64_t now = now_ms();
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->state == WORKER_STARTING && now - w->started_ms > r->cfg.worker_register_timeout_ms) {
      log_warn("worker pid %d did not register within %d ms; killing it", (int)w->pid,
               r->cfg.worker_register_timeout_ms);
      raylet_pool_kill(w, SIGKILL);
    }
}

void raylet_pool_reap_idle(raylet_t *r)
{
  int64_t now = now_ms();
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->state == WORKER_IDLE && now - w->idle_since_ms > r->cfg.idle_worker_timeout_ms) {
      char id[9];
      log_info("worker %s (pid %d) idle for %d ms: stopping it", id_short(w->id.b, ID_WORKER_SIZE, id), (int)w->pid,
               r->cfg.idle_worker_timeout_ms);
      raylet_worker_set_state(w, WORKER_EXITING);
      raylet_pool_kill(w, SIGTERM);
    }
}
