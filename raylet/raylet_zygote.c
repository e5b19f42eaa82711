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
 */
#include "raylet/raylet.h"

#include "common/log.h"
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
#include <unistd.h>

extern char **environ;

enum {
  ZYGOTE_REPLY_MS = 5000,    /* a fork that takes longer means the zygote is stuck */
  ZYGOTE_CMDLINE_PAD = 4096, /* room for a child's arguments in /proc/<pid>/cmdline */
};

enum zygote_state { ZYGOTE_STARTING, ZYGOTE_READY, ZYGOTE_DEAD };

typedef struct raylet_zygote raylet_zygote_t;

/* Owned by the raylet (r->zygote) until raylet_zygote_stop, then by its handles' close callbacks. */
struct raylet_zygote {
  raylet_t *r;
  uv_process_t proc;
  uv_poll_t poll;
  int req_fd, exit_fd; /* our ends of the two pairs; -1: closed */
  enum zygote_state state;
  int proc_open, poll_open;
  int exited; /* reaped: its pid is never signalled again */
  pid_t pid;
};

static void zygote_close_cb(uv_handle_t *h)
{
  raylet_zygote_t *z = h->data;
  if (h == (uv_handle_t *)&z->proc)
    z->proc_open = 0;
  else
    z->poll_open = 0;
  if (!z->proc_open && !z->poll_open && !z->r)
    free(z);
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
    if (e.pid == 0 && z->state == ZYGOTE_STARTING) {
      z->state = ZYGOTE_READY;
      log_info("worker zygote (pid %d) ready: C workers are forked from it", (int)z->pid);
    } else if (e.pid > 0) {
      /* what a worker costs, start to exit (docs/PERFORMANCE.md, actor worker process) */
      log_info("worker pid %d exited: %.1f ms CPU over its life, %u page faults, %u context switches", (int)e.pid,
               e.cpu_us / 1e3, e.minflt, e.nvcsw);
      raylet_pool_zygote_exit(z->r, e.pid, e.status);
    }
  }
  return -1;
}

/* The zygote is unusable: its workers are (or will be) gone with it. */
static void zygote_fail(raylet_zygote_t *z, const char *why)
{
  if (z->state == ZYGOTE_DEAD)
    return;
  log_warn("worker zygote (pid %d): %s; C workers are exec'ed from now on", (int)z->pid, why);
  zygote_read_exits(z); /* what it reported before */
  z->state = ZYGOTE_DEAD;
  zygote_close_fds(z);
  if (z->proc_open && !z->exited && z->pid > 0)
    kill(z->pid, SIGKILL);
  raylet_pool_zygote_exit(z->r, -1, 0);
}

static void zygote_on_readable(uv_poll_t *p, int status, int events)
{
  raylet_zygote_t *z = p->data;
  (void)events;
  if (status < 0 || zygote_read_exits(z) < 0)
    zygote_fail(z, "its exit channel closed");
  raylet_dispatch(z->r); /* the workers that ended made room */
}

static void zygote_on_exit(uv_process_t *p, int64_t status, int sig)
{
  raylet_zygote_t *z = p->data;
  char why[64];
  snprintf(why, sizeof(why), "exited (status %lld, signal %d)", (long long)status, sig);
  z->exited = 1;
  if (z->r) {
    zygote_fail(z, why);
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
    zygote_fail(z, "cannot watch its exit channel");
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

/* Sends the request and waits for the pid; 0 or < 0. */
static int zygote_ask(raylet_zygote_t *z, const char *buf, size_t len, pid_t *pid)
{
  int32_t reply = 0;
  struct pollfd p = {.fd = z->req_fd, .events = POLLIN};
  if (send(z->req_fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
    zygote_fail(z, "cannot send it a request");
    return -1;
  }
  int n;
  while ((n = poll(&p, 1, ZYGOTE_REPLY_MS)) < 0 && errno == EINTR) {
  }
  if (n <= 0 || recv(z->req_fd, &reply, sizeof(reply), 0) != (ssize_t)sizeof(reply)) {
    zygote_fail(z, n == 0 ? "it did not answer a spawn request in time" : "its request channel closed");
    return -1;
  }
  if (reply <= 0) {
    log_warn("worker zygote could not fork a worker: %s; exec'ing it", strerror(-reply));
    return -1;
  }
  *pid = reply;
  return 0;
}

int raylet_zygote_spawn(raylet_t *r, char *const *args, char *const *env, const char *log_path, pid_t *pid)
{
  if (!r->cfg.worker_zygote || r->stopping)
    return -1;
  if (!r->zygote)
    zygote_start(r);
  raylet_zygote_t *z = r->zygote;
  if (z->state != ZYGOTE_READY)
    return -1;
  char *buf = xmalloc(ZYGOTE_MAX_REQUEST);
  zygote_req_t h = {.magic = ZYGOTE_MAGIC};
  size_t off = sizeof(h);
  char *const logv[] = {(char *)log_path, NULL};
  int rc = zygote_put_strings(buf, &off, args, &h.nargs) == 0 && zygote_put_strings(buf, &off, env, &h.nenv) == 0 &&
                   zygote_put_strings(buf, &off, logv, NULL) == 0
               ? 0
               : -1;
  memcpy(buf, &h, sizeof(h));
  if (rc == 0)
    rc = zygote_ask(z, buf, off, pid);
  explicit_bzero(buf, off); /* the environment holds the cluster token */
  free(buf);
  return rc;
}

void raylet_zygote_stop(raylet_t *r)
{
  raylet_zygote_t *z = r->zygote;
  if (!z)
    return;
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
    free(z);
}
