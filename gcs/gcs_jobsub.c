/* Submitted jobs: the table, the supervisor processes and the JobSubmissionService handlers. See
 * gcs_jobsub.h. */
#include "gcs/gcs_jobsub.h"

#include "common/log.h"
#include "common/pkg.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_jobrec.h"
#include "gcs/gcs_kv.h"
#include "gcs/gcs_server.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GCS_JOBSUB_TABLE "JOBSUB"
enum { JOBSUB_CHECK_MS = 2000, JOBSUB_LOG_CHUNK = 1 << 20 };

/* A supervisor process the GCS started (reaped by libuv when it exits). */
typedef struct jobsub_proc {
  uv_process_t proc;
  gcs_jobsubs_t *t;
  struct jobsub_proc *next;
} jobsub_proc_t;

const char *gcs_jobsub_status_name(Rayc__JobStatus st)
{
  static const char *names[] = {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"};
  return (unsigned)st < ARRAY_LEN(names) ? names[st] : "UNKNOWN";
}

int gcs_jobsub_terminal(Rayc__JobStatus st)
{
  return st == RAYC__JOB_STATUS__JOB_SUCCEEDED || st == RAYC__JOB_STATUS__JOB_FAILED ||
         st == RAYC__JOB_STATUS__JOB_STOPPED;
}

/* Replaces the string field *f of an unpacked message with a copy of v. */
static void jobsub_set_str(char **f, const char *v)
{
  if (*f && *f != protobuf_c_empty_string)
    free(*f);
  *f = xstrdup(v ? v : "");
}

static void jobsub_store(gcs_jobsubs_t *t, const Rayc__JobSubmission *j)
{
  int rc = gcs_store_put_msg(t->s->store, GCS_JOBSUB_TABLE, j->submission_id, strlen(j->submission_id), &j->base);
  if (rc < 0)
    log_error("job %s: storing it failed: %s", j->submission_id, rayc_strerror(rc));
}

/* Changes j's status (logged); a terminal one stamps the end time and appends the record. */
static void gcs_jobsub_set_status(gcs_jobsubs_t *t, Rayc__JobSubmission *j, Rayc__JobStatus st, const char *msg)
{
  log_info("job %s: %s -> %s%s%s", j->submission_id, gcs_jobsub_status_name(j->status), gcs_jobsub_status_name(st),
           msg && *msg ? ": " : "", msg ? msg : "");
  j->status = st;
  if (msg)
    jobsub_set_str(&j->message, msg);
  if (gcs_jobsub_terminal(st)) {
    if (j->end_time_ms == 0)
      j->end_time_ms = wall_ms();
    gcs_jobrec_collect_start(t, j, -1);
  }
  jobsub_store(t, j);
}

static void jobsub_append(gcs_jobsubs_t *t, Rayc__JobSubmission *j)
{
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 16;
    t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  t->v[t->n++] = j;
}

static void jobsub_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_jobsubs_t *t = arg;
  (void)key;
  (void)klen;
  Rayc__JobSubmission *j = rayc__job_submission__unpack(NULL, vlen, val);
  if (!j || !*j->submission_id || gcs_jobsubs_find(t, j->submission_id)) {
    log_warn("job table: skipping an unreadable stored submission");
    pb_free(j);
    return;
  }
  jobsub_append(t, j);
}

gcs_jobsubs_t *gcs_jobsubs_create(struct gcs_server *s)
{
  gcs_jobsubs_t *t = xcalloc(1, sizeof(*t));
  t->s = s;
  t->recs = gcs_jobrecs_create(s->store);
  rpc_client_opts_t o = {.loop = s->loop, .token = s->token, .tls = &s->tls};
  t->client = rpc_client_create(&o);
  int rc = gcs_store_scan(s->store, GCS_JOBSUB_TABLE, NULL, 0, jobsub_load_one, t);
  if (rc > 0)
    log_info("job table: loaded %d submitted jobs", rc);
  /* submission order: sort by submit time (the scan has no order) */
  for (size_t i = 1; i < t->n; i++)
    for (size_t k = i; k > 0 && t->v[k - 1]->submit_time_ms > t->v[k]->submit_time_ms; k--) {
      Rayc__JobSubmission *x = t->v[k];
      t->v[k] = t->v[k - 1];
      t->v[k - 1] = x;
    }
  for (size_t i = 0; i < t->n; i++) /* ended before a restart, record not written yet */
    if (gcs_jobsub_terminal(t->v[i]->status) && !gcs_jobrecs_find(t->recs, t->v[i]->submission_id))
      gcs_jobrec_collect_start(t, t->v[i], -1);
  return t;
}

static void jobsub_proc_on_close(uv_handle_t *h)
{
  free(h->data);
}

void gcs_jobsubs_destroy(gcs_jobsubs_t *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    pb_free(t->v[i]);
  free(t->v);
  rpc_client_destroy(t->client);
  gcs_jobrec_collect_release(t);
  gcs_jobrecs_destroy(t->recs);
  free(t->unused);
  free(t);
}

void gcs_jobsubs_stop(gcs_jobsubs_t *t)
{
  if (t) {
    t->stopping = 1;
    rpc_client_destroy(t->client); /* calls in flight end here (cancelled): no record is written */
    t->client = NULL;
  }
  for (jobsub_proc_t *p = t ? t->procs : NULL; p; p = p->next)
    uv_close((uv_handle_t *)&p->proc, jobsub_proc_on_close);
  if (t)
    t->procs = NULL;
}

Rayc__JobSubmission *gcs_jobsubs_find(const gcs_jobsubs_t *t, const char *id)
{
  for (size_t i = 0; id && i < t->n; i++)
    if (strcmp(t->v[i]->submission_id, id) == 0)
      return t->v[i];
  return NULL;
}

/* 1 when pid is a live `rayc job-supervisor` of submission sid. */
static int jobsub_supervisor_alive(int pid, const char *sid)
{
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
  int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  int saw_sup = 0, saw_id = 0;
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1) {
    buf[n] = '\0';
    saw_sup |= strcmp(buf + off, "job-supervisor") == 0;
    saw_id |= strcmp(buf + off, sid) == 0;
  }
  return saw_sup && saw_id;
}

static void jobsub_on_unreserved(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)detail;
  if (status != 0)
    log_warn("job %s: the head's raylet did not take the entrypoint's CPUs back: %s", (char *)arg,
             rayc_strerror(status));
  free(arg);
  pb_free(resp);
}

/* The supervisor of j is gone: gives the CPUs it had reserved for the entrypoint back. */
static void jobsub_unreserve(gcs_jobsubs_t *t, const Rayc__JobSubmission *j)
{
  for (size_t i = 0; j->entrypoint_num_cpus > 0 && t->client && i < t->s->nodes.n; i++) {
    const gcs_node_t *n = t->s->nodes.v[i];
    if (n->state != GCS_NODE_ALIVE || strcmp(n->info->ip, j->supervisor_node_ip) != 0 || !n->info->is_head)
      continue;
    uint8_t pg[18];
    pkg_entrypoint_reservation_id(j->submission_id, pg);
    Rayc__CancelResourceReserveRequest req = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
    req.placement_group_id = pb_bytes(pg, sizeof(pg));
    req.bundle_index = -1;
    char *addr = xasprintf("%s:%d", n->info->ip, n->info->raylet_port), *sid = xstrdup(j->submission_id);
    if (rpc_call(rpc_channel_get(t->client, addr), &rayc__node_manager_service__descriptor, "CancelResourceReserve",
                 &req.base, 5000, jobsub_on_unreserved, sid) != 0)
      free(sid);
    free(addr);
  }
}

void gcs_jobsubs_cron(gcs_jobsubs_t *t, int64_t now)
{
  gcs_jobrec_collect_cron(t, now);
  gcs_jobpkg_cron(t, now);
  if (now < t->next_check_ms)
    return;
  t->next_check_ms = now + JOBSUB_CHECK_MS;
  for (size_t i = 0; i < t->n; i++) {
    Rayc__JobSubmission *j = t->v[i];
    if (gcs_jobsub_terminal(j->status) || j->supervisor_pid <= 0 ||
        jobsub_supervisor_alive(j->supervisor_pid, j->submission_id))
      continue;
    char *msg = xasprintf("the job supervisor (pid %d) is gone", j->supervisor_pid);
    jobsub_unreserve(t, j);
    gcs_jobsub_set_status(t, j, RAYC__JOB_STATUS__JOB_FAILED, msg);
    free(msg);
  }
}

void gcs_jobsubs_link_driver(gcs_jobsubs_t *t, const char *sid, const void *job_id, size_t len)
{
  Rayc__JobSubmission *j = sid && *sid ? gcs_jobsubs_find(t, sid) : NULL;
  if (!j)
    return;
  j->driver_job_ids = xrealloc(j->driver_job_ids, (j->n_driver_job_ids + 1) * sizeof(*j->driver_job_ids));
  j->driver_job_ids[j->n_driver_job_ids++] = pb_bytes(xmemdup(job_id, len), len);
  char hex[9];
  log_info("job %s: driver job %s linked", sid, id_hex(job_id, len == 4 ? 4 : 0, hex));
  jobsub_store(t, j);
}

/* ---- the supervisor process ---- */

static void jobsub_proc_on_exit(uv_process_t *p, int64_t status, int sig)
{
  (void)status;
  (void)sig;
  jobsub_proc_t *me = p->data;
  for (jobsub_proc_t **pp = &me->t->procs; *pp; pp = &(*pp)->next)
    if (&(*pp)->proc == p) {
      *pp = (*pp)->next;
      break;
    }
  uv_close((uv_handle_t *)p, jobsub_proc_on_close);
}

/* <dir of rayc-gcs>/rayc, new. */
static char *jobsub_rayc_path(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return xstrdup("rayc");
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  return xasprintf("%s/rayc", exe);
}

/* Starts `rayc job-supervisor` for j, detached (its own session). 0 or a negative code. */
static int jobsub_spawn(gcs_jobsubs_t *t, Rayc__JobSubmission *j)
{
  const gcs_config_t *c = t->s->conf;
  char *exe = jobsub_rayc_path(), *addr = xasprintf("%s:%d", c->node_ip_address, t->s->port);
  const char *args[24] = {
      exe, "job-supervisor", "--address", addr, "--session-dir", c->session_dir, "--submission-id", j->submission_id};
  int a = 8;
  const char *opt[][2] = {
      {"--token-file", c->token_file}, {"--tls-cert", c->tls_cert}, {"--tls-key", c->tls_key}, {"--tls-ca", c->tls_ca}};
  for (size_t i = 0; i < ARRAY_LEN(opt); i++)
    if (opt[i][1] && *opt[i][1]) {
      args[a++] = opt[i][0];
      args[a++] = opt[i][1];
    }
  jobsub_proc_t *p = xcalloc(1, sizeof(*p));
  p->proc.data = p;
  char *out = xasprintf("%s/logs/job-supervisor-%s.out", c->session_dir, j->submission_id);
  int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600); /* its stderr: crashes, sanitizers */
  free(out);
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = fd},
                                   {.flags = fd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = fd}};
  uv_process_options_t o = {.exit_cb = jobsub_proc_on_exit,
                            .file = exe,
                            .args = (char **)args,
                            .flags = UV_PROCESS_DETACHED,
                            .stdio_count = 3,
                            .stdio = stdio};
  int rc = uv_spawn(t->s->loop, &p->proc, &o);
  if (fd >= 0)
    close(fd);
  if (rc != 0) {
    log_error("job %s: cannot start %s: %s", j->submission_id, exe, uv_strerror(rc));
    uv_close((uv_handle_t *)&p->proc, jobsub_proc_on_close);
  } else {
    uv_unref((uv_handle_t *)&p->proc);
    p->t = t;
    p->next = t->procs;
    t->procs = p;
    j->supervisor_pid = p->proc.pid;
    log_info("job %s: supervisor started (pid %d)", j->submission_id, (int)p->proc.pid);
  }
  free(addr);
  free(exe);
  return rc == 0 ? 0 : RAYC_EIO;
}

/* ---- handlers ---- */

/* Submission ids name files: letters, digits, '_', '-', '.', 1..64 of them, not starting with '.'. */
static int jobsub_id_ok(const char *id)
{
  size_t n = strlen(id);
  if (n == 0 || n > 64 || id[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && !strchr("_-.", id[i]))
      return 0;
  return 1;
}

static char *jobsub_new_id(void)
{
  static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  uint8_t r[16];
  char s[17];
  id_random(r, sizeof(r));
  for (size_t i = 0; i < sizeof(r); i++)
    s[i] = al[r[i] % (sizeof(al) - 1)];
  s[16] = '\0';
  return xasprintf("raysubmit_%s", s);
}

/* Checks a SubmitJob request; returns NULL or a static/new reason (*owned set when new). */
static const char *jobsub_check(gcs_server_t *s, const Rayc__JobSubmission *in, char **owned)
{
  *owned = NULL;
  if (!in || !*in->entrypoint)
    return "the entrypoint is empty";
  if (!s->conf->session_dir || !*s->conf->session_dir)
    return "this GCS runs without --session-dir, so it has nowhere to keep job logs";
  if (*in->submission_id && !jobsub_id_ok(in->submission_id))
    return "a submission id is 1-64 letters, digits, '_', '-' or '.' (not starting with '.')";
  if (*in->submission_id && gcs_jobsubs_find(s->jobsubs, in->submission_id))
    return *owned = xasprintf("a job with submission id %s exists already", in->submission_id);
  if (!(in->entrypoint_num_cpus >= 0 && in->entrypoint_num_cpus < 1e6))
    return "entrypoint_num_cpus must be >= 0";
  const char *wd = in->runtime_env ? in->runtime_env->working_dir : "";
  if (*wd) {
    uint8_t *val = NULL;
    size_t vlen = 0;
    if (strncmp(wd, "pkg_", 4) != 0 || strlen(wd) != 68 ||
        gcs_kv_get(s->store, "pkg", wd, strlen(wd), &val, &vlen) != 1)
      return *owned = xasprintf("working_dir %s is not an uploaded package (upload it to the KV namespace "
                                "\"pkg\" first)",
                                wd);
    free(val);
  }
  return NULL;
}

/* Clears what only the GCS and the supervisor may set in a submitted job. */
static void jobsub_reset(Rayc__JobSubmission *j)
{
  j->status = RAYC__JOB_STATUS__JOB_PENDING;
  j->submit_time_ms = wall_ms();
  j->start_time_ms = j->end_time_ms = 0;
  j->supervisor_pid = 0;
  j->stop_requested = 0;
  j->has_exit_code = 0;
  j->driver_exit_code = j->term_signal = 0;
  j->entrypoint_cpu_seconds = 0;
  j->entrypoint_peak_rss_bytes = 0;
  jobsub_set_str(&j->message, "");
  for (size_t i = 0; i < j->n_driver_job_ids; i++)
    free(j->driver_job_ids[i].data);
  free(j->driver_job_ids);
  j->driver_job_ids = NULL;
  j->n_driver_job_ids = 0;
}

void gcs_jobsub_on_submit(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  gcs_jobsubs_t *t = s->jobsubs;
  const Rayc__JobSubmission *in = ((const Rayc__SubmitJobRequest *)req)->job;
  char *owned;
  const char *why = jobsub_check(s, in, &owned);
  if (why) {
    rpc_reply_error(call, strstr(why, "exists already") ? RAYC_EALREADY_EXISTS : RAYC_EINVALID_ARGUMENT, "%s", why);
    free(owned);
    return;
  }
  Rayc__JobSubmission *j = (Rayc__JobSubmission *)gcs_pb_dup(&in->base);
  if (!*j->submission_id) {
    char *id = jobsub_new_id();
    jobsub_set_str(&j->submission_id, id);
    free(id);
  }
  jobsub_reset(j);
  if (!j->submitter) {
    j->submitter = xcalloc(1, sizeof(*j->submitter));
    rayc__submitter__init(j->submitter);
  }
  jobsub_set_str(&j->submitter->peer, rpc_call_peer(call));
  char *log_path = xasprintf("%s/logs/job-%s.log", s->conf->session_dir, j->submission_id);
  jobsub_set_str(&j->log_path, log_path);
  free(log_path);
  char *cluster = gcs_jobrec_cluster_json(s);
  jobsub_set_str(&j->cluster_json, cluster);
  free(cluster);
  jobsub_set_str(&j->supervisor_node_ip, s->conf->node_ip_address);
  jobsub_append(t, j);
  log_info("job %s: submitted by %s@%s (%s): %s", j->submission_id, j->submitter->user, j->submitter->host,
           j->submitter->peer, j->entrypoint);
  if (jobsub_spawn(t, j) != 0)
    gcs_jobsub_set_status(t, j, RAYC__JOB_STATUS__JOB_FAILED, "the GCS could not start the job supervisor");
  else
    jobsub_store(t, j);
  Rayc__SubmitJobReply reply = RAYC__SUBMIT_JOB_REPLY__INIT;
  reply.submission_id = j->submission_id;
  gcs_server_reply(s, call, &reply.base);
}

/* Finds the job a request names, or replies NOT_FOUND and returns NULL. */
static Rayc__JobSubmission *jobsub_lookup(gcs_server_t *s, rpc_call_t *call, const char *id)
{
  Rayc__JobSubmission *j = gcs_jobsubs_find(s->jobsubs, id);
  if (!j)
    rpc_reply_error(call, RAYC_ENOT_FOUND, "no job with submission id '%s'", id);
  return j;
}

void gcs_jobsub_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  Rayc__JobSubmission *j = jobsub_lookup(s, call, ((const Rayc__GetJobRequest *)req)->submission_id);
  if (!j)
    return;
  Rayc__GetJobReply reply = RAYC__GET_JOB_REPLY__INIT;
  reply.job = j;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_jobsub_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  (void)req;
  Rayc__ListJobsReply reply = RAYC__LIST_JOBS_REPLY__INIT;
  reply.n_jobs = s->jobsubs->n;
  reply.jobs = s->jobsubs->v;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_jobsub_on_stop(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  Rayc__JobSubmission *j = jobsub_lookup(s, call, ((const Rayc__StopJobRequest *)req)->submission_id);
  if (!j)
    return;
  Rayc__StopJobReply reply = RAYC__STOP_JOB_REPLY__INIT;
  if (!gcs_jobsub_terminal(j->status)) {
    reply.stopped = 1;
    j->stop_requested = 1;
    jobsub_store(s->jobsubs, j);
    if (jobsub_supervisor_alive(j->supervisor_pid, j->submission_id)) {
      log_info("job %s: stop requested (%s); SIGTERM to its supervisor (pid %d)", j->submission_id, rpc_call_peer(call),
               j->supervisor_pid);
      kill(j->supervisor_pid, SIGTERM);
    } else if (j->status == RAYC__JOB_STATUS__JOB_PENDING && j->supervisor_pid <= 0) {
      gcs_jobsub_set_status(s->jobsubs, j, RAYC__JOB_STATUS__JOB_STOPPED, "stopped before it started");
    }
  }
  gcs_server_reply(s, call, &reply.base);
}

void gcs_jobsub_on_delete(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  gcs_jobsubs_t *t = s->jobsubs;
  Rayc__JobSubmission *j = jobsub_lookup(s, call, ((const Rayc__DeleteJobRequest *)req)->submission_id);
  if (!j)
    return;
  if (!gcs_jobsub_terminal(j->status)) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "job %s is %s: only a job that ended can be deleted (stop it first)",
                    j->submission_id, gcs_jobsub_status_name(j->status));
    return;
  }
  log_info("job %s: deleted (%s); its governance record stays", j->submission_id, rpc_call_peer(call));
  gcs_store_del(s->store, GCS_JOBSUB_TABLE, j->submission_id, strlen(j->submission_id), 0);
  if (*j->log_path)
    unlink(j->log_path);
  for (size_t i = 0; i < t->n; i++)
    if (t->v[i] == j) {
      memmove(t->v + i, t->v + i + 1, (t->n - i - 1) * sizeof(*t->v));
      t->n--;
      break;
    }
  pb_free(j);
  Rayc__DeleteJobReply reply = RAYC__DELETE_JOB_REPLY__INIT;
  reply.deleted = 1;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_jobsub_on_logs(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetJobLogsRequest *r = (const Rayc__GetJobLogsRequest *)req;
  Rayc__JobSubmission *j = jobsub_lookup(s, call, r->submission_id);
  if (!j)
    return;
  size_t max = r->max_bytes > 0 && r->max_bytes < JOBSUB_LOG_CHUNK ? r->max_bytes : JOBSUB_LOG_CHUNK;
  uint8_t *buf = xmalloc(max);
  int fd = open(j->log_path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 && r->offset < (uint64_t)INT64_MAX ? pread(fd, buf, max, (off_t)r->offset) : 0;
  if (fd >= 0)
    close(fd);
  Rayc__GetJobLogsReply reply = RAYC__GET_JOB_LOGS_REPLY__INIT;
  reply.data = pb_bytes(buf, n > 0 ? (size_t)n : 0);
  reply.next_offset = r->offset + (n > 0 ? (uint64_t)n : 0);
  reply.job_ended = gcs_jobsub_terminal(j->status);
  gcs_server_reply(s, call, &reply.base);
  free(buf);
}

/* Applies a supervisor's report to j. */
static void jobsub_apply_report(gcs_jobsubs_t *t, Rayc__JobSubmission *j, const Rayc__JobSubmission *in)
{
  if (in->supervisor_pid > 0)
    j->supervisor_pid = in->supervisor_pid;
  if (in->start_time_ms > 0)
    j->start_time_ms = in->start_time_ms;
  if (in->end_time_ms > 0)
    j->end_time_ms = in->end_time_ms;
  j->has_exit_code = in->has_exit_code;
  j->entrypoint_cpu_seconds = in->entrypoint_cpu_seconds;
  j->entrypoint_peak_rss_bytes = in->entrypoint_peak_rss_bytes;
  j->driver_exit_code = in->driver_exit_code;
  j->term_signal = in->term_signal;
  if (in->status != j->status)
    gcs_jobsub_set_status(t, j, in->status, in->message);
  else
    jobsub_store(t, j);
}

void gcs_jobsub_on_report(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__JobSubmission *in = ((const Rayc__ReportJobStatusRequest *)req)->job;
  Rayc__JobSubmission *j = jobsub_lookup(s, call, in ? in->submission_id : "");
  if (!j)
    return;
  if (!gcs_jobsub_terminal(j->status) && (unsigned)in->status <= RAYC__JOB_STATUS__JOB_FAILED &&
      !(in->status == RAYC__JOB_STATUS__JOB_PENDING && j->status == RAYC__JOB_STATUS__JOB_RUNNING))
    jobsub_apply_report(s->jobsubs, j, in);
  Rayc__ReportJobStatusReply reply = RAYC__REPORT_JOB_STATUS_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_jobsub_on_get_record(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  Rayc__GetJobRecordReply reply = RAYC__GET_JOB_RECORD_REPLY__INIT;
  const char *id = ((const Rayc__GetJobRecordRequest *)req)->submission_id;
  Rayc__JobRecord *rec = gcs_jobrecs_find(s->jobsubs->recs, id), live = RAYC__JOB_RECORD__INIT;
  char *content = NULL;
  if (rec) {
    reply.record = rec;
    reply.final = 1;
  } else {
    Rayc__JobSubmission *j = jobsub_lookup(s, call, id);
    if (!j)
      return;
    content = gcs_jobrec_content_json(s, j, NULL); /* not written yet: what its record says so far */
    live.submission_id = j->submission_id;
    live.content_json = content;
    reply.record = &live;
  }
  gcs_server_reply(s, call, &reply.base);
  free(content);
}

void gcs_jobsub_on_list_records(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  (void)req;
  Rayc__ListJobRecordsReply reply = RAYC__LIST_JOB_RECORDS_REPLY__INIT;
  gcs_jobrecs_view(s->jobsubs->recs, &reply);
  gcs_server_reply(s, call, &reply.base);
}
