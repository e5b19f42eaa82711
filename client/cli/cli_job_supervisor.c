/*
 * rayc job-supervisor: the job supervisor the GCS starts (detached, its own session) for each
 * submitted job. Not for people to run.
 *
 * It reads the job from the GCS, reserves --entrypoint-num-cpus on the head's raylet (a one-bundle
 * reservation, PrepareBundleResources + CommitBundleResources under pkg_entrypoint_reservation_id;
 * the job stays PENDING while the CPUs are busy; given back with CancelResourceReserve when the
 * entrypoint ends, or by the GCS when it finds the supervisor gone), installs its working dir under <session>/runtime_env/ (once per
 * node: pkg_install), opens <session>/logs/job-<id>.log and starts the entrypoint with
 * posix_spawn (`/bin/sh -c ENTRYPOINT`, never fork after gRPC is up) in its own process group,
 * with stdout and stderr to the log, cwd the working dir, and the environment: RAYC_ADDRESS,
 * RAYC_TOKEN (when the cluster has one), RAYC_JOB_SUBMISSION_ID (drivers link their JobID to the
 * submission with it), RAYC_WORKING_DIR and RAYC_WORKING_DIR_PKG (drivers turn code paths inside
 * the working dir into package paths that workers on other nodes resolve), RAYC_CODE_PATH (the
 * runtime env's code_path inside the working dir) and the runtime env's env_vars.
 *
 * Signals are read from a signalfd: SIGTERM (from the GCS on `rayc job stop`) sends SIGTERM to the
 * group and SIGKILL after --stop-grace-ms; SIGCHLD reaps the entrypoint, after which whatever the
 * group still holds is killed. Every transition (RUNNING, then SUCCEEDED / FAILED with the exit
 * code or signal / STOPPED) is reported with ReportJobStatus, retried for up to
 * --report-timeout-ms while the GCS is away (a GCS restart does not lose the end of a job).
 */
#include "client/cli/cli_job.h"

#include "common/log.h"
#include "common/pkg.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct sup_conf {
  char *address, *session_dir, *submission_id, *token_file, *tls_cert, *tls_key, *tls_ca;
  int stop_grace_ms, report_timeout_ms;
} sup_conf_t;

#define F(field) offsetof(sup_conf_t, field)
static const cfg_entry_t sup_table[] = {
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the GCS"},
    {"session-dir", CFG_STRING, F(session_dir), NULL, "the head's session directory"},
    {"submission-id", CFG_STRING, F(submission_id), NULL, "the job to run"},
    {"token-file", CFG_STRING, F(token_file), NULL, "the cluster token file"},
    {"tls-cert", CFG_STRING, F(tls_cert), NULL, "TLS certificate"},
    {"tls-key", CFG_STRING, F(tls_key), NULL, "TLS key"},
    {"tls-ca", CFG_STRING, F(tls_ca), NULL, "TLS CA"},
    {"stop-grace-ms", CFG_INT, F(stop_grace_ms), "3000", "after SIGTERM, how long before SIGKILL"},
    {"report-timeout-ms", CFG_INT, F(report_timeout_ms), "600000", "how long to retry reports to the GCS"},
};
#undef F

typedef struct sup {
  sup_conf_t c;
  rpc_client_t *client;
  rpc_channel_t *ch;
  char *token;
  Rayc__JobSubmission *job; /* owned: as read from the GCS, updated and reported */
  char *wd, *logpath;
  pid_t child;
  int stopping;
  int reserved;    /* the entrypoint's CPUs are reserved on the head */
  int64_t kill_at; /* monotonic ms; 0: none */
} sup_t;

/* Calls a JobSubmissionService method, retrying while the GCS is away. */
static int sup_call(sup_t *s, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
  int64_t until = now_ms() + s->c.report_timeout_ms;
  for (int attempt = 0;; attempt++) {
    char *detail = NULL;
    int rc = rpc_call_sync(s->ch, &rayc__job_submission_service__descriptor, method, req, 5000, resp, &detail);
    if (rc == 0 || (rc != RAYC_EUNAVAILABLE && rc != RAYC_ETIMEOUT && rc != RAYC_ECANCELLED) || now_ms() > until) {
      if (rc != 0)
        log_error("job %s: %s failed: %s", s->c.submission_id, method, detail ? detail : rayc_strerror(rc));
      free(detail);
      return rc;
    }
    if (attempt == 0)
      log_warn("job %s: the GCS does not answer (%s); retrying", s->c.submission_id, detail ? detail : "");
    free(detail);
    usleep(500 * 1000);
  }
}

static void sup_report(sup_t *s, Rayc__JobStatus st, const char *msg)
{
  s->job->status = st;
  s->job->message = (char *)(msg ? msg : "");
  Rayc__ReportJobStatusRequest req = RAYC__REPORT_JOB_STATUS_REQUEST__INIT;
  req.job = s->job;
  ProtobufCMessage *resp = NULL;
  sup_call(s, "ReportJobStatus", &req.base, &resp);
  s->job->message = (char *)protobuf_c_empty_string; /* msg was borrowed */
  pb_free(resp);
}

/* Installs the working dir (fetched from the KV) and sets s->wd. 0, or -1 with *why new. */
static int sup_install(sup_t *s, char **why)
{
  const char *name = s->job->runtime_env ? s->job->runtime_env->working_dir : "";
  if (!*name)
    return 0;
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"pkg";
  req.key = pb_bytes(name, strlen(name));
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(s->ch, &rayc__internal_kvgcs_service__descriptor, "InternalKVGet", &req.base, 60000, &resp,
                         &detail);
  Rayc__KVGetReply *r = (Rayc__KVGetReply *)resp;
  if (rc != 0 || !r->found) {
    *why = xasprintf("cannot fetch the working dir %s: %s", name,
                     rc ? (detail ? detail : rayc_strerror(rc)) : "not in the KV");
    free(detail);
    pb_free(resp);
    return -1;
  }
  char *dir = xasprintf("%s/runtime_env", s->c.session_dir), *err = NULL;
  rc = pkg_install(dir, name, r->value.data, r->value.len, &s->wd, &err);
  if (rc != 0)
    *why = xasprintf("cannot unpack the working dir %s: %s", name, err ? err : rayc_strerror(rc));
  free(err);
  free(dir);
  pb_free(resp);
  return rc == 0 ? 0 : -1;
}

/* The entrypoint's environment: ours plus the job's (new; free each and the array). */
static char **sup_env(sup_t *s)
{
  size_t n = 0;
  while (environ[n])
    n++;
  const Rayc__JobRuntimeEnv *e = s->job->runtime_env;
  size_t nenv = e ? e->n_env_vars : 0;
  char **v = xcalloc(n + nenv + 8, sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "RAYC_", 5) != 0 && strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
      v[k++] = xstrdup(environ[i]);
  v[k++] = xasprintf("RAYC_ADDRESS=%s", s->c.address);
  v[k++] = xasprintf("RAYC_JOB_SUBMISSION_ID=%s", s->c.submission_id);
  if (s->token)
    v[k++] = xasprintf("RAYC_TOKEN=%s", s->token);
  if (s->wd) {
    v[k++] = xasprintf("RAYC_WORKING_DIR=%s", s->wd);
    v[k++] = xasprintf("RAYC_WORKING_DIR_PKG=%s", e->working_dir);
    if (*e->code_path) {
      char *cp = xstrdup(""), *copy = xstrdup(e->code_path), *save = NULL;
      for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        char *next = xasprintf("%s%s%s/%s", cp, *cp ? ":" : "", s->wd, p);
        free(cp);
        cp = next;
      }
      v[k++] = xasprintf("RAYC_CODE_PATH=%s", cp);
      free(cp);
      free(copy);
    }
  }
  for (size_t i = 0; i < nenv; i++)
    v[k++] = xasprintf("%s=%s", e->env_vars[i]->key, e->env_vars[i]->value);
  return v;
}

static void sup_env_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++) {
    explicit_bzero(v[i], strlen(v[i]));
    free(v[i]);
  }
  free(v);
}

/* ---- the entrypoint's CPUs, reserved on the head's raylet as a one-bundle reservation ---- */

/* Calls a NodeManagerService method of this node's raylet (<session>/raylet_address). */
static int sup_raylet_call(sup_t *s, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
  char *path = xasprintf("%s/raylet_address", s->c.session_dir), addr[256] = "";
  FILE *f = fopen(path, "r");
  free(path);
  if (!f || !fgets(addr, sizeof(addr), f)) {
    if (f)
      fclose(f);
    return RAYC_ENOT_FOUND;
  }
  fclose(f);
  addr[strcspn(addr, "\r\n")] = '\0';
  return rpc_call_sync(rpc_channel_get(s->client, addr), &rayc__node_manager_service__descriptor, method, req, 10000,
                       resp, NULL);
}

/* Reserves --entrypoint-num-cpus on the head, waiting while they are busy (a stop ends the wait).
 * 0 (reserved, or nothing to reserve), 1 (stopped while waiting), or -1 with *why new. */
static int sup_reserve(sup_t *s, int sfd, char **why)
{
  if (s->job->entrypoint_num_cpus <= 0)
    return 0;
  uint8_t pg[18];
  pkg_entrypoint_reservation_id(s->c.submission_id, pg);
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpus[] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = s->job->entrypoint_num_cpus;
  Rayc__BundleSpec b = RAYC__BUNDLE_SPEC__INIT, *bs[] = {&b};
  b.placement_group_id = pb_bytes(pg, sizeof(pg));
  b.n_resources = 1;
  b.resources = cpus;
  Rayc__PrepareBundleResourcesRequest prep = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  prep.n_bundles = 1;
  prep.bundles = bs;
  for (int attempt = 0;; attempt++) {
    ProtobufCMessage *resp = NULL;
    int rc = sup_raylet_call(s, "PrepareBundleResources", &prep.base, &resp);
    int ok = rc == 0 && ((Rayc__PrepareBundleResourcesReply *)resp)->success;
    pb_free(resp);
    if (ok)
      break;
    if (rc != 0 && rc != RAYC_EUNAVAILABLE) {
      *why = xasprintf("cannot reserve %g CPUs for the entrypoint on the head: %s", cpu.amount, rayc_strerror(rc));
      return -1;
    }
    if (attempt == 0)
      log_info("job %s: waiting for %g free CPUs on the head for the entrypoint", s->c.submission_id, cpu.amount);
    struct pollfd p = {.fd = sfd, .events = POLLIN};
    struct signalfd_siginfo si;
    if (poll(&p, 1, 1000) > 0 && read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
      return 1;
  }
  Rayc__CommitBundleResourcesRequest commit = RAYC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
  commit.n_bundles = 1;
  commit.bundles = bs;
  ProtobufCMessage *resp = NULL;
  int rc = sup_raylet_call(s, "CommitBundleResources", &commit.base, &resp);
  pb_free(resp);
  if (rc != 0) {
    *why = xasprintf("cannot reserve %g CPUs for the entrypoint on the head: %s", cpu.amount, rayc_strerror(rc));
    return -1;
  }
  s->reserved = 1;
  log_info("job %s: %g CPUs reserved on the head for the entrypoint", s->c.submission_id, cpu.amount);
  return 0;
}

static void sup_unreserve(sup_t *s)
{
  if (!s->reserved)
    return;
  uint8_t pg[18];
  pkg_entrypoint_reservation_id(s->c.submission_id, pg);
  Rayc__CancelResourceReserveRequest req = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  req.placement_group_id = pb_bytes(pg, sizeof(pg));
  req.bundle_index = -1;
  ProtobufCMessage *resp = NULL;
  if (sup_raylet_call(s, "CancelResourceReserve", &req.base, &resp) != 0)
    log_warn("job %s: could not give the entrypoint's CPUs back to the head's raylet", s->c.submission_id);
  pb_free(resp);
  s->reserved = 0;
}

/* Starts the entrypoint. 0, or -1 with *why new. */
static int sup_spawn(sup_t *s, char **why)
{
  int logfd = open(s->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd < 0) {
    *why = xasprintf("cannot open the job log %s: %s", s->logpath, strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, logfd, 1);
  posix_spawn_file_actions_adddup2(&fa, logfd, 2);
  if (s->wd)
    posix_spawn_file_actions_addchdir_np(&fa, s->wd);
  posix_spawnattr_init(&at);
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGTERM);
  sigaddset(&def, SIGINT);
  sigaddset(&def, SIGCHLD);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &def);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", s->job->entrypoint, NULL};
  char **env = sup_env(s);
  int rc = posix_spawn(&s->child, "/bin/sh", &fa, &at, argv, env);
  sup_env_free(env);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  close(logfd);
  if (rc != 0)
    *why = xasprintf("cannot start the entrypoint: %s", strerror(rc));
  return rc == 0 ? 0 : -1;
}

/* Waits for the entrypoint; handles stop requests. Returns its wait status. */
static int sup_wait(sup_t *s, int sfd)
{
  for (;;) {
    int64_t now = now_ms();
    int timeout = s->kill_at ? (int)(s->kill_at > now ? s->kill_at - now : 0) : -1;
    struct pollfd p = {.fd = sfd, .events = POLLIN};
    int n = poll(&p, 1, timeout);
    if (n == 0 && s->kill_at) {
      log_warn("job %s: still running %d ms after SIGTERM: SIGKILL to its group", s->c.submission_id,
               s->c.stop_grace_ms);
      killpg(s->child, SIGKILL);
      s->kill_at = 0;
    }
    struct signalfd_siginfo si;
    if (n > 0 && read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD && !s->stopping) {
      log_info("job %s: stop requested: SIGTERM to its process group %d", s->c.submission_id, (int)s->child);
      s->stopping = 1;
      killpg(s->child, SIGTERM);
      s->kill_at = now_ms() + s->c.stop_grace_ms;
    }
    int status;
    struct rusage ru;
    if (wait4(s->child, &status, WNOHANG, &ru) == s->child) {
      s->job->entrypoint_cpu_seconds = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
      s->job->entrypoint_peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
      killpg(s->child, SIGKILL); /* what the entrypoint left behind in its group */
      return status;
    }
  }
}

static void sup_finish(sup_t *s, int status)
{
  s->job->end_time_ms = wall_ms();
  char msg[160];
  Rayc__JobStatus st;
  if (WIFEXITED(status)) {
    s->job->has_exit_code = 1;
    s->job->driver_exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s->job->term_signal = WTERMSIG(status);
  }
  if (s->stopping) {
    st = RAYC__JOB_STATUS__JOB_STOPPED;
    snprintf(msg, sizeof(msg), "stopped by rayc job stop");
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    st = RAYC__JOB_STATUS__JOB_SUCCEEDED;
    snprintf(msg, sizeof(msg), "the entrypoint exited with code 0");
  } else if (WIFEXITED(status)) {
    st = RAYC__JOB_STATUS__JOB_FAILED;
    snprintf(msg, sizeof(msg), "the entrypoint exited with code %d", WEXITSTATUS(status));
  } else {
    st = RAYC__JOB_STATUS__JOB_FAILED;
    snprintf(msg, sizeof(msg), "the entrypoint was killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  }
  sup_report(s, st, msg);
}

/* <session>/pids/job-<id>.pid, so `rayc stop` on the head stops running jobs too. */
static char *sup_pidfile(const sup_t *s)
{
  return xasprintf("%s/pids/job-%s.pid", s->c.session_dir, s->c.submission_id);
}

/* Reads the job, prepares and runs it. Returns the exit status of this process. */
static int sup_run(sup_t *s, int sfd)
{
  Rayc__GetJobRequest req = RAYC__GET_JOB_REQUEST__INIT;
  req.submission_id = s->c.submission_id;
  ProtobufCMessage *resp = NULL;
  if (sup_call(s, "GetJob", &req.base, &resp) != 0)
    return 1;
  s->job = ((Rayc__GetJobReply *)resp)->job;
  ((Rayc__GetJobReply *)resp)->job = NULL;
  pb_free(resp);
  s->job->supervisor_pid = (int32_t)getpid();
  if (s->job->stop_requested) {
    sup_report(s, RAYC__JOB_STATUS__JOB_STOPPED, "stopped before it started");
    return 0;
  }
  s->logpath = xstrdup(s->job->log_path);
  char *why = NULL;
  int r = sup_reserve(s, sfd, &why);
  if (r == 1) {
    sup_report(s, RAYC__JOB_STATUS__JOB_STOPPED, "stopped while waiting for the entrypoint's CPUs");
    return 0;
  }
  if (r != 0 || sup_install(s, &why) != 0 || sup_spawn(s, &why) != 0) {
    log_error("job %s: %s", s->c.submission_id, why);
    sup_unreserve(s);
    s->job->end_time_ms = wall_ms();
    sup_report(s, RAYC__JOB_STATUS__JOB_FAILED, why);
    free(why);
    return 0;
  }
  s->job->start_time_ms = wall_ms();
  log_info("job %s: entrypoint started (pid %d): %s", s->c.submission_id, (int)s->child, s->job->entrypoint);
  sup_report(s, RAYC__JOB_STATUS__JOB_RUNNING, "");
  int status = sup_wait(s, sfd);
  sup_unreserve(s); /* before the final report: the record sees the CPUs back */
  sup_finish(s, status);
  return 0;
}

static int sup_open(sup_t *s)
{
  char *where = NULL, *err = NULL;
  if (s->c.token_file && *s->c.token_file && token_find(s->c.token_file, NULL, &s->token, &where, &err) < 0) {
    log_error("job %s: %s", s->c.submission_id, err ? err : "cannot read the token");
    free(err);
    free(where);
    return -1;
  }
  free(where);
  rpc_tls_t tls = {s->c.tls_cert, s->c.tls_key, s->c.tls_ca};
  rpc_client_opts_t o = {.token = s->token, .tls = &tls};
  s->client = rpc_client_create(&o);
  s->ch = s->client ? rpc_channel_get(s->client, s->c.address) : NULL;
  return s->ch ? 0 : -1;
}

static void sup_open_log(const sup_conf_t *c)
{
  log_init("job-supervisor", LOG_INFO);
  char *path = xasprintf("%s/logs/job-supervisor-%s.log", c->session_dir, c->submission_id);
  log_open(path, 0);
  free(path);
}

int cli_job_supervisor(int argc, char **argv)
{
  sup_t s;
  memset(&s, 0, sizeof(s));
  int st = cli_parse("job-supervisor", "The job supervisor the GCS starts (not for people to run).", sup_table,
                     ARRAY_LEN(sup_table), &s.c, sizeof(s.c), argc, argv);
  if (st != CLI_CONTINUE)
    return st;
  if (!s.c.address || !s.c.session_dir || !s.c.submission_id) {
    fprintf(stderr, "rayc job-supervisor: --address, --session-dir and --submission-id are required\n");
    cfg_release(sup_table, ARRAY_LEN(sup_table), &s.c);
    return CLI_USAGE;
  }
  sup_open_log(&s.c);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  char *pidfile = sup_pidfile(&s), *pid = xasprintf("%d\n", (int)getpid());
  write_file_atomic(pidfile, pid, strlen(pid));
  st = sfd >= 0 && sup_open(&s) == 0 ? sup_run(&s, sfd) : 1;
  unlink(pidfile);
  free(pidfile);
  free(pid);
  if (sfd >= 0)
    close(sfd);
  rpc_client_destroy(s.client);
  token_free(s.token);
  pb_free(s.job);
  free(s.wd);
  free(s.logpath);
  cfg_release(sup_table, ARRAY_LEN(sup_table), &s.c);
  return st;
}
