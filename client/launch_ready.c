/*
 * The launcher's readiness wait (see launch_int.h): daemons report READY=1 (with RAYC_PORT and
 * RAYC_METRICS_PORT) as datagrams on <session>/sockets/notify, systemd's protocol, and the
 * launcher tells them apart by the sender's pid (SO_PASSCRED).
 *
 * Several daemons may be waited for at once: `rayc start --head` spawns the GCS and the store
 * together (the store needs nothing from the GCS) and then the raylet and the dashboard together,
 * so a head's start costs two daemon start-ups in a row, not four. Each datagram goes to the
 * child whose pid sent it; one from any other process is dropped.
 */
#include "client/launch_int.h"

#include "common/status.h"
#include "common/util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child of c[0..n) that pid is, or NULL. */
static launch_child_t *launch_child_find(launch_child_t *c, int n, pid_t pid)
{
  for (int i = 0; i < n; i++)
    if (c[i].pid == pid)
      return &c[i];
  return NULL;
}

/* Applies one datagram's lines to its child. */
static void launch_child_apply(launch_child_t *c, char *buf)
{
  for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strcmp(line, "READY=1") == 0)
      c->ready = 1;
    else if (strncmp(line, "RAYC_PORT=", 10) == 0)
      c->port = atoi(line + 10);
    else if (strncmp(line, "RAYC_METRICS_PORT=", 18) == 0)
      c->metrics_port = atoi(line + 18);
  }
}

/* Reads every queued datagram and gives each to the child that sent it. */
static void launch_notify_drain(launch_t *l, launch_child_t *c, int n)
{
  char buf[4096];
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(struct ucred))];
  } ctl;
  for (;;) {
    struct iovec iov = {buf, sizeof(buf) - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl)};
    ssize_t len = recvmsg(l->notify_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (len < 0)
      return;
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    if (!h || h->cmsg_type != SCM_CREDENTIALS)
      continue;
    launch_child_t *child = launch_child_find(c, n, ((struct ucred *)(void *)CMSG_DATA(h))->pid);
    if (!child)
      continue; /* from another process */
    buf[len] = '\0';
    launch_child_apply(child, buf);
  }
}

static char *launch_exit_text(int status)
{
  if (WIFEXITED(status))
    return xasprintf("exited with status %d", WEXITSTATUS(status));
  return xasprintf("was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

/* Sets l->err to say that child c did not start, with the tail of its output or log. */
static void launch_child_fail(launch_t *l, const launch_child_t *c, const char *why)
{
  char tail[1200], *out = xasprintf("%s/logs/%s.out", l->session, c->name);
  char *log = xasprintf("%s/logs/%s.log", l->session, c->name);
  launch_tail(out, tail, sizeof(tail));
  if (!tail[0])
    launch_tail(log, tail, sizeof(tail));
  l->err = xasprintf("rayc-%s did not start: it %s; see its log %s (and %s)%s%s", c->name, why, log, out,
                     tail[0] ? "; it said:" : "", tail);
  free(log);
  free(out);
}

/* The first child of c[0..n) that has exited, with its exit text in *why; NULL when none. */
static launch_child_t *launch_child_exited(launch_child_t *c, int n, char **why)
{
  for (int i = 0; i < n; i++) {
    int status;
    if (!c[i].ready && !c[i].optional && waitpid(c[i].pid, &status, WNOHANG) == c[i].pid) {
      *why = launch_exit_text(status);
      return &c[i];
    }
  }
  return NULL;
}

int launch_wait_children(launch_t *l, launch_child_t *c, int n)
{
  int timeout = l->opts->ready_timeout_ms > 0 ? l->opts->ready_timeout_ms : 10000;
  int64_t deadline = now_ms() + timeout;
  for (;;) {
    launch_notify_drain(l, c, n);
    int waiting = 0;
    for (int i = 0; i < n; i++)
      waiting += !c[i].ready && !c[i].optional;
    if (!waiting)
      return 0;
    char *why = NULL;
    int rc = RAYC_EUNAVAILABLE;
    launch_child_t *gone = launch_child_exited(c, n, &why);
    int64_t left = deadline - now_ms();
    if (!gone && left <= 0) {
      for (gone = c; gone->ready || gone->optional; gone++)
        ;
      why = xasprintf("did not report READY=1 within %d ms", timeout);
      rc = RAYC_ETIMEOUT;
    }
    if (gone) {
      launch_child_fail(l, gone, why);
      free(why);
      return rc;
    }
    struct pollfd p = {.fd = l->notify_fd, .events = POLLIN};
    poll(&p, 1, left < LAUNCH_POLL_MS ? (int)left : LAUNCH_POLL_MS);
  }
}

int launch_spawn_child(launch_t *l, const char *name, launch_argv_t *a, launch_child_t *c)
{
  memset(c, 0, sizeof(*c));
  c->name = name;
  int rc = launch_spawn(l, name, a, &c->pid);
  launch_argv_release(a);
  return rc;
}

int launch_daemon(launch_t *l, const char *name, launch_argv_t *a, int *port)
{
  launch_child_t c;
  int rc = launch_spawn_child(l, name, a, &c);
  if (rc == 0)
    rc = launch_wait_children(l, &c, 1);
  *port = c.port;
  l->metrics_port = c.metrics_port;
  return rc;
}
