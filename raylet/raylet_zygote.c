/*
 * The worker fork server (wire format and rationale in common/zygote.h). A C worker's exec costs
 * ~40 ms of CPU in the dynamic loader alone (gRPC, absl and OpenSSL's ~80 libraries), most of a
 * worker's start; a fork of a process that has them loaded costs well under 1 ms.
 *
 * The raylet starts the zygote the first time it needs a C worker (that worker and any before
 * the zygote says it is ready are exec'ed as before) and asks it for every later one. A spawn is
 * one request and one reply on a SOCK_SEQPACKET pair, synchronous like uv_spawn's own fork;
 * exits arrive on a second pair, watched by a uv_poll on the loop. If the zygote fails or dies,
 * its workers die with it (PR_SET_PDEATHSIG), they are reported gone, and workers are exec'ed
 * from then on.
 *
 * A zygote per job: a job's first C worker on the node also asks the node's zygote to fork a
 * zygote for that job and code path, which loads the job's code (its libraries, in its working
 * dir) once; the job's later workers are forked from it and skip that load (~4-5 ms each: in a
 * forked child the loader faults in again the symbol tables of the ~80 libraries it relocates
 * the job's code against). Loading it in the node's zygote is not an option: a library loaded
 * there would stay in every later job's workers. A job's zygote starts asynchronously (its first
 * workers come from the node's zygote), and ends with the job: the raylet closes its request
 * pair, and it exits once its last worker has. When its code does not load (or a package of its
 * working dir is not unpacked here yet) the job's workers come from the node's zygote and load it
 * themselves, reporting the error as before; when it dies otherwise, the job's workers are
 * exec'ed from then on, as after the node's zygote dies.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "common/zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

enum {
  ZYGOTE_REPLY_MS = 5000,    /* a fork that takes longer means the zygote is stuck */
  ZYGOTE_CMDLINE_PAD = 4096, /* room for a child's arguments in /proc/<pid>/cmdline */
  ZYGOTE_NODE_ID = 1,        /* raylet_worker_t.zygote of the node's zygote's workers */
  ZYGOTE_JOBS_MAX = 64,      /* job zygotes at once; past this, jobs' workers come from the node's */
};

/* FAILED: a job's zygote whose code did not load (the job's workers come from the node's zygote);
 * ENDING: a job's zygote whose job ended (it forks no more). */
enum zygote_state { ZYGOTE_STARTING, ZYGOTE_READY, ZYGOTE_FAILED, ZYGOTE_ENDING, ZYGOTE_DEAD };

typedef struct raylet_zygote raylet_zygote_t;

/* The node's zygote is owned by the raylet (r->zygote) until raylet_zygote_stop, then by its
 * handles' close callbacks; a job's zygote by the node's (its jobs list) until it is removed,
 * then by its poll handle's close callback. */
struct raylet_zygote {
  raylet_t *r;
  uv_process_t proc; /* the node's zygote only: a job's is the node zygote's child */
  uv_poll_t poll;
  int req_fd, exit_fd; /* our ends of the two pairs; -1: closed */
  enum zygote_state state;
  int proc_open, poll_open;
  int exited; /* reaped: its pid is never signalled again */
  pid_t pid;
  int id; /* ZYGOTE_NODE_ID, or a job's (raylet_worker_t.zygote) */
  /* the node's zygote: its jobs' zygotes */
  raylet_zygote_t *jobs;
  int next_id, njobs;
  /* a job's zygote */
  raylet_zygote_t *next;
  id_job_t job; /* the driver's job id (actor workers' top bit cleared) */
  char *code_path;
  int removed; /* out of the node's list: freed once its poll is closed */
};

static void zygote_free(raylet_zygote_t *z)
{
  free(z->code_path);
  free(z);
}

static void zygote_close_cb(uv_handle_t *h)
{
  raylet_zygote_t *z = h->data;
  if (h == (uv_handle_t *)&z->proc)
    z->proc_open = 0;
  else
    z->poll_open = 0;
  if (!z->proc_open && !z->poll_open && (z->code_path ? z->removed : !z->r))
    zygote_free(z);
}

static void zygote_close_fds(raylet_zygote_t *z)
{
  if (z->poll_open && !uv_is_closing((uv_handle_t *)&z->poll))
    uv_close((uv_handle_t *)&z->poll, zygote_close_cb);
  if (z->req_fd >= 0)
    close(z->req_fd);
  if (z->exit_fd >= 0)
    close(z->exit_fd);
  z->req_fd = z->exit_fd = -1;
}

static const char *zygote_job_hex(const raylet_zygote_t *z, char hex[2 * ID_JOB_SIZE + 1])
{
  return id_hex(z->job.b, ID_JOB_SIZE, hex);
}

/* The zygote's ready record: the node's is ready; a job's has loaded its code, or could not. */
static void zygote_ready(raylet_zygote_t *z, int status)
{
  char jid[2 * ID_JOB_SIZE + 1];
  if (!z->code_path) {
    z->state = ZYGOTE_READY;
    log_info("worker zygote (pid %d) ready: C workers are forked from it", (int)z->pid);
  } else if (status == 0) {
    z->state = ZYGOTE_READY;
    log_info("worker zygote (pid %d) of job %s ready: it loaded %s; the job's C workers are forked from it",
             (int)z->pid, zygote_job_hex(z, jid), z->code_path);
  } else {
    z->state = ZYGOTE_FAILED; /* it exits; its end of the pairs closes */
    log_warn("worker zygote (pid %d) of job %s could not load %s (%s; zygote.out says why): the job's C workers "
             "are forked by the node's zygote and load it themselves",
             (int)z->pid, zygote_job_hex(z, jid), z->code_path, rayc_strerror(status));
    zygote_close_fds(z);
  }
}

/* An exit the node's zygote reported: a worker's, or a job zygote's (its workers' costs in it). */
static void zygote_child_exit(raylet_zygote_t *z, const zygote_exit_t *e)
{
  if (e->zygote) {
    log_info("worker zygote (pid %d) of a job exited: %.1f ms CPU over its life, its workers' included", (int)e->pid,
             e->cpu_us / 1e3);
    return;
  }
  /* what a worker costs, start to exit (docs/PERFORMANCE.md, actor worker process) */
  log_info("worker pid %d exited: %.1f ms CPU over its life, %u page faults, %u context switches", (int)e->pid,
           e->cpu_us / 1e3, e->minflt, e->nvcsw);
  raylet_pool_zygote_exit(z->r, z->id, e->pid, e->status);
}

/* Reads every exit record waiting; returns 0, or -1 once the zygote's end is closed. */
static int zygote_read_exits(raylet_zygote_t *z)
{
  zygote_exit_t e;
  ssize_t n;
  while (z->exit_fd >= 0 && (n = recv(z->exit_fd, &e, sizeof(e), MSG_DONTWAIT)) != 0) {
    if (n < 0)
      return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n != (ssize_t)sizeof(e))
      continue;
    if (e.pid == 0 && z->state == ZYGOTE_STARTING)
      zygote_ready(z, e.status);
    else if (e.pid > 0)
      zygote_child_exit(z, &e);
  }
  return -1;
}

static void zygote_job_remove(raylet_zygote_t *node, raylet_zygote_t *j);

/* A job's zygote's exit channel closed or it stopped answering: it has ended with its job, its
 * code did not load (it exited), or it failed (its job's workers are exec'ed from now on). */
static void zygote_job_fail(raylet_zygote_t *j, const char *why, int alive)
{
  raylet_t *r = j->r;
  char jid[2 * ID_JOB_SIZE + 1];
  zygote_read_exits(j);
  if (j->state == ZYGOTE_ENDING)
    log_info("worker zygote (pid %d) of job %s ended with its job", (int)j->pid, zygote_job_hex(j, jid));
  else if (j->state != ZYGOTE_FAILED && j->state != ZYGOTE_DEAD)
    log_warn("worker zygote (pid %d) of job %s: %s; the job's C workers are exec'ed from now on", (int)j->pid,
             zygote_job_hex(j, jid), why);
  if (alive && j->state != ZYGOTE_FAILED && j->pid > 0)
    kill(j->pid, SIGKILL); /* not yet reaped by the node's zygote: the pid is still its */
  zygote_close_fds(j);
  raylet_pool_zygote_exit(r, j->id, -1, 0); /* its workers died with it (PR_SET_PDEATHSIG) */
  if (j->state == ZYGOTE_ENDING)
    zygote_job_remove(r->zygote, j);
  else if (j->state != ZYGOTE_FAILED)
    j->state = ZYGOTE_DEAD;
}

/* The zygote is unusable: its workers are (or will be) gone with it, a node's job zygotes too. */
static void zygote_fail(raylet_zygote_t *z, const char *why, int alive)
{
  if (z->code_path) {
    zygote_job_fail(z, why, alive);
    return;
  }
  if (z->state == ZYGOTE_DEAD)
    return;
  log_warn("worker zygote (pid %d): %s; C workers are exec'ed from now on", (int)z->pid, why);
  zygote_read_exits(z); /* what it reported before */
  z->state = ZYGOTE_DEAD;
  zygote_close_fds(z);
  if (z->proc_open && !z->exited && z->pid > 0)
    kill(z->pid, SIGKILL);
  for (raylet_zygote_t *j = z->jobs, *next; j; j = next) { /* they die with it (PR_SET_PDEATHSIG) */
    next = j->next;
    if (j->state == ZYGOTE_ENDING) { /* its job is over: nothing will ask for it again */
      zygote_job_remove(z, j);
      continue;
    }
    zygote_close_fds(j);
    j->state = ZYGOTE_DEAD;
  }
  raylet_pool_zygote_exit(z->r, 0, -1, 0);
}

static void zygote_on_readable(uv_poll_t *p, int status, int events)
{
  raylet_zygote_t *z = p->data;
  raylet_t *r = z->r;
  (void)events;
  if (status < 0 || zygote_read_exits(z) < 0)
    zygote_fail(z, "its exit channel closed", 0);
  raylet_dispatch(r); /* the workers that ended made room */
}

static void zygote_on_exit(uv_process_t *p, int64_t status, int sig)
{
  raylet_zygote_t *z = p->data;
  char why[64];
  snprintf(why, sizeof(why), "exited (status %lld, signal %d)", (long long)status, sig);
  z->exited = 1;
  if (z->r) {
    zygote_fail(z, why, 0);
    raylet_dispatch(z->r);
  }
  uv_close((uv_handle_t *)p, zygote_close_cb);
}

static int zygote_pairs(int req[2], int ex[2])
{
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) != 0)
    return -errno;
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ex) != 0) {
    int e = -errno;
    close(req[0]);
    close(req[1]);
    return e;
  }
  return 0;
}

/* The raylet's environment plus LD_BIND_NOW=1: the dynamic loader binds every symbol of the ~80
 * libraries once, in the zygote, instead of lazily in every forked worker (each worker's first
 * call through each PLT slot cost a symbol lookup and a copy-on-write fault on the GOT page: ~16%
 * of a worker's CPU). The workers get the environment the raylet sends with each request, so the
 * setting does not reach them or what they exec. Returns new; free the array (not the strings). */
static char **zygote_env(void)
{
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + 2, sizeof(*env));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_BIND_NOW=", 12) != 0)
      env[k++] = environ[i];
  env[k] = (char *)"LD_BIND_NOW=1";
  return env;
}

static int zygote_exec(raylet_t *r, raylet_zygote_t *z, int req_child, int exit_child)
{
  char pad[ZYGOTE_CMDLINE_PAD];
  memset(pad, ' ', sizeof(pad) - 1);
  pad[sizeof(pad) - 1] = '\0';
  char *args[] = {r->cfg.worker_path, (char *)"--zygote", (char *)"--session-dir", r->cfg.session_dir, pad, NULL};
  char *out = xasprintf("%s/logs/zygote.out", r->cfg.session_dir);
  int logfd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  free(out);
  uv_stdio_container_t stdio[5] = {{.flags = UV_IGNORE},
                                   {.flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = logfd},
                                   {.flags = logfd >= 0 ? UV_INHERIT_FD : UV_IGNORE, .data.fd = logfd},
                                   {.flags = UV_INHERIT_FD, .data.fd = req_child},
                                   {.flags = UV_INHERIT_FD, .data.fd = exit_child}};
  char **env = zygote_env();
  uv_process_options_t opts = {
      .exit_cb = zygote_on_exit, .file = args[0], .args = args, .env = env, .stdio_count = 5, .stdio = stdio};
  z->proc.data = z;
  int rc = uv_spawn(&r->loop, &z->proc, &opts);
  if (logfd >= 0)
    close(logfd);
  free(env);
  return rc;
}

static void zygote_start(raylet_t *r)
{
  int req[2], ex[2];
  raylet_zygote_t *z = xcalloc(1, sizeof(*z));
  z->r = r;
  z->req_fd = z->exit_fd = -1;
  z->state = ZYGOTE_DEAD;
  z->id = ZYGOTE_NODE_ID;
  z->next_id = ZYGOTE_NODE_ID + 1;
  r->zygote = z;
  int rc = zygote_pairs(req, ex);
  if (rc != 0) {
    log_warn("worker zygote: no socket pair (%s); C workers are exec'ed", strerror(-rc));
    return;
  }
  rc = zygote_exec(r, z, req[1], ex[1]);
  close(req[1]);
  close(ex[1]);
  z->req_fd = req[0];
  z->exit_fd = ex[0];
  if (rc != 0) {
    log_warn("worker zygote: cannot start %s: %s; C workers are exec'ed", r->cfg.worker_path, uv_strerror(rc));
    z->proc_open = 1;
    z->exited = 1;
    uv_close((uv_handle_t *)&z->proc, zygote_close_cb);
    zygote_close_fds(z);
    return;
  }
  z->proc_open = 1;
  z->pid = z->proc.pid;
  z->state = ZYGOTE_STARTING;
  z->poll.data = z;
  if (uv_poll_init(&r->loop, &z->poll, z->exit_fd) == 0) {
    z->poll_open = 1;
    uv_poll_start(&z->poll, UV_READABLE, zygote_on_readable);
  } else {
    zygote_fail(z, "cannot watch its exit channel", 1);
  }
}

/* Appends the NULL-terminated strings of v to buf at *off; -1 when they do not fit. */
static int zygote_put_strings(char *buf, size_t *off, char *const *v, uint32_t *count)
{
  for (; *v; v++) {
    size_t n = strlen(*v) + 1;
    if (*off + n > ZYGOTE_MAX_REQUEST)
      return -1;
    memcpy(buf + *off, *v, n);
    *off += n;
    if (count)
      (*count)++;
  }
  return 0;
}

/* Sends len bytes of buf, with fds[0..1] when fds is not NULL (a job zygote's pairs). */
static int zygote_send(int sock, const char *buf, size_t len, const int *fds)
{
  union {
    char b[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fds) {
    memset(&u, 0, sizeof(u));
    mh.msg_control = u.b;
    mh.msg_controllen = sizeof(u.b);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(c), fds, 2 * sizeof(int));
  }
  return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Sends the request and waits for the pid; 0 or < 0. */
static int zygote_ask(raylet_zygote_t *z, const char *buf, size_t len, const int *fds, pid_t *pid)
{
  int32_t reply = 0;
  struct pollfd p = {.fd = z->req_fd, .events = POLLIN};
  if (zygote_send(z->req_fd, buf, len, fds) != 0) {
    zygote_fail(z, "cannot send it a request", 0); /* it closed its end: it is gone */
    return -1;
  }
  int n;
  while ((n = poll(&p, 1, ZYGOTE_REPLY_MS)) < 0 && errno == EINTR) {
  }
  if (n <= 0 || recv(z->req_fd, &reply, sizeof(reply), 0) != (ssize_t)sizeof(reply)) {
    zygote_fail(z, n == 0 ? "it did not answer a spawn request in time" : "its request channel closed", n == 0);
    return -1;
  }
  if (reply <= 0) {
    log_warn("worker zygote (pid %d) could not fork: %s", (int)z->pid, strerror(-reply));
    return -1;
  }
  *pid = reply;
  return 0;
}

/* Builds a request (args, env, then the strings of tail) into a new buffer of ZYGOTE_MAX_REQUEST
 * bytes; its length in *len, or 0 when it does not fit. */
static char *zygote_request(uint32_t kind, char *const *args, char *const *env, char *const *tail, size_t *len)
{
  char *buf = xmalloc(ZYGOTE_MAX_REQUEST);
  zygote_req_t h = {.magic = ZYGOTE_MAGIC, .kind = kind};
  size_t off = sizeof(h);
  int ok = zygote_put_strings(buf, &off, args, &h.nargs) == 0 && zygote_put_strings(buf, &off, env, &h.nenv) == 0 &&
           zygote_put_strings(buf, &off, tail, NULL) == 0;
  memcpy(buf, &h, sizeof(h));
  *len = ok ? off : 0;
  return buf;
}

/* len: what zygote_request wrote (0: it did not fit, so anything may have been). */
static void zygote_request_free(char *buf, size_t len)
{
  explicit_bzero(buf, len ? len : ZYGOTE_MAX_REQUEST); /* the environment holds the cluster token */
  free(buf);
}

static void zygote_job_remove(raylet_zygote_t *node, raylet_zygote_t *j)
{
  for (raylet_zygote_t **pp = &node->jobs; *pp; pp = &(*pp)->next)
    if (*pp == j) {
      *pp = j->next;
      node->njobs--;
      break;
    }
  zygote_close_fds(j);
  j->removed = 1;
  if (!j->poll_open)
    zygote_free(j);
}

static raylet_zygote_t *zygote_job_find(raylet_zygote_t *node, id_job_t job, const char *code_path)
{
  for (raylet_zygote_t *j = node->jobs; j; j = j->next)
    if (memcmp(j->job.b, job.b, ID_JOB_SIZE) == 0 && strcmp(j->code_path, code_path) == 0)
      return j;
  return NULL;
}

/* Whether every working-dir package the code path names is unpacked on this node already: a
 * job's zygote fetches nothing (the job's first worker here does, cw_rtenv.c). */
static int zygote_code_local(const raylet_t *r, const char *code_path)
{
  int ok = 1;
  char *copy = xstrdup(code_path), *save = NULL;
  for (char *p = strtok_r(copy, ":", &save); p && ok; p = strtok_r(NULL, ":", &save)) {
    if (strncmp(p, "pkg_", 4) != 0 || strlen(p) < 68 || (p[68] != '/' && p[68] != '\0'))
      continue;
    char *dir = xasprintf("%s/runtime_env/%.68s", r->cfg.session_dir, p);
    struct stat st;
    ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    free(dir);
  }
  free(copy);
  return ok;
}

/* Asks the node's zygote for job's zygote; the record (STARTING, or FAILED when it could not be
 * forked), or NULL when it cannot be asked for now. */
static raylet_zygote_t *zygote_job_start(raylet_t *r, raylet_zygote_t *node, id_job_t job, const char *code_path,
                                         char *const *env)
{
  int req[2], ex[2];
  if (node->njobs >= ZYGOTE_JOBS_MAX || !zygote_code_local(r, code_path) || zygote_pairs(req, ex) != 0)
    return NULL;
  char jid[2 * ID_JOB_SIZE + 1];
  id_hex(job.b, ID_JOB_SIZE, jid);
  char *args[] = {r->cfg.worker_path,
                  (char *)"--zygote",
                  (char *)"--job", /* not --job-id: tests count a job's workers by that */
                  jid,
                  (char *)"--session-dir",
                  r->cfg.session_dir,
                  NULL};
  char *tail[] = {r->cfg.session_dir, (char *)code_path, NULL};
  size_t len;
  char *buf = zygote_request(ZYGOTE_KIND_JOB, args, env, tail, &len);
  int theirs[2] = {req[1], ex[1]};
  pid_t pid = 0;
  int rc = len ? zygote_ask(node, buf, len, theirs, &pid) : -1;
  zygote_request_free(buf, len);
  close(req[1]);
  close(ex[1]);
  if (node->state != ZYGOTE_READY) { /* the node's zygote failed while asked */
    close(req[0]);
    close(ex[0]);
    return NULL;
  }
  raylet_zygote_t *j = xcalloc(1, sizeof(*j));
  j->r = r;
  j->job = job;
  j->code_path = xstrdup(code_path);
  j->id = node->next_id++;
  j->pid = pid;
  j->req_fd = req[0];
  j->exit_fd = ex[0];
  j->next = node->jobs;
  node->jobs = j;
  node->njobs++;
  j->state = rc == 0 ? ZYGOTE_STARTING : ZYGOTE_FAILED;
  j->poll.data = j;
  if (rc == 0 && uv_poll_init(&r->loop, &j->poll, j->exit_fd) == 0) {
    j->poll_open = 1;
    uv_poll_start(&j->poll, UV_READABLE, zygote_on_readable);
  } else {
    if (rc == 0)
      kill(pid, SIGKILL);
    j->state = ZYGOTE_FAILED;
    zygote_close_fds(j);
  }
  return j;
}

/* The zygote to fork a worker of job with code_path from: its job's once ready, else the node's;
 * NULL when the worker must be exec'ed (its job's zygote died). */
static raylet_zygote_t *zygote_for(raylet_t *r, id_job_t job, const char *code_path, char *const *env)
{
  raylet_zygote_t *node = r->zygote;
  job.b[0] &= 0x7f; /* an actor worker's job: the driver's, top bit set */
  if (!code_path || !*code_path || raylet_jobs_is_dead(r, job))
    return node;
  raylet_zygote_t *j = zygote_job_find(node, job, code_path);
  if (!j)
    j = zygote_job_start(r, node, job, code_path, env);
  if (node->state != ZYGOTE_READY)
    return NULL;
  return !j || j->state != ZYGOTE_READY ? (j && j->state == ZYGOTE_DEAD ? NULL : node) : j;
}

int raylet_zygote_spawn(raylet_t *r, id_job_t job, const char *code_path, char *const *args, char *const *env,
                        const char *log_path, pid_t *pid, int *zygote)
{
  *zygote = 0;
  if (!r->cfg.worker_zygote || r->stopping)
    return -1;
  if (!r->zygote)
    zygote_start(r);
  if (r->zygote->state != ZYGOTE_READY)
    return -1;
  raylet_zygote_t *z = zygote_for(r, job, code_path, env);
  if (!z)
    return -1;
  size_t len;
  char *const logv[] = {(char *)log_path, NULL};
  char *buf = zygote_request(ZYGOTE_KIND_WORKER, args, env, logv, &len);
  int rc = len ? zygote_ask(z, buf, len, NULL, pid) : -1;
  zygote_request_free(buf, len);
  if (rc == 0)
    *zygote = z->id;
  return rc;
}

void raylet_zygote_end_job(raylet_t *r, id_job_t job)
{
  raylet_zygote_t *node = r->zygote, *j, *next;
  for (j = node ? node->jobs : NULL; j; j = next) {
    next = j->next;
    if (memcmp(j->job.b, job.b, ID_JOB_SIZE) != 0)
      continue;
    if (j->state == ZYGOTE_STARTING || j->state == ZYGOTE_READY) {
      j->state = ZYGOTE_ENDING;
      close(j->req_fd); /* it forks no more, and exits after its last worker */
      j->req_fd = -1;
    } else if (j->state != ZYGOTE_ENDING) {
      zygote_job_remove(node, j);
    }
  }
}

void raylet_zygote_stop(raylet_t *r)
{
  raylet_zygote_t *z = r->zygote;
  if (!z)
    return;
  while (z->jobs) /* they die with the node's zygote */
    zygote_job_remove(z, z->jobs);
  r->zygote = NULL;
  z->r = NULL;
  z->state = ZYGOTE_DEAD;
  zygote_close_fds(z); /* the zygote reads EOF and exits */
  if (z->proc_open && !uv_is_closing((uv_handle_t *)&z->proc)) {
    if (!z->exited)
      kill(z->pid, SIGTERM);
    uv_close((uv_handle_t *)&z->proc, zygote_close_cb);
  }
  if (!z->proc_open && !z->poll_open)
    zygote_free(z);
}
