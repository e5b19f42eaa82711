/*
 * `rayc-worker --zygote`: the node's worker fork server (wire format and rationale in
 * common/zygote.h). It runs single-threaded and never calls into librayc, so every fork is a
 * clean copy of a process that has only been loaded: the child calls rayc_worker_main() with
 * the arguments and environment the raylet sent, exactly as an exec'ed rayc-worker would.
 *
 * Lifetime: the raylet's child (it dies with the raylet: PR_SET_PDEATHSIG); its children die with
 * it the same way (rayc_worker_main sets PR_SET_PDEATHSIG). It exits when the raylet closes the
 * request socket. It reaps its children (signalfd on SIGCHLD) and reports each exit.
 */
#include "rayc_lang.h"

#include "common/zygote.h"
#include "worker/zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The memory /proc/<pid>/cmdline shows: the zygote's own arguments, which the raylet pads so that
 * a child can write its worker arguments there (`rayc stop` and tests look for them). */
static char *cmd_area;
static size_t cmd_area_len;

static void zygote_set_cmdline(char **args)
{
  size_t off = 0;
  memset(cmd_area, 0, cmd_area_len);
  for (char **a = args; *a; a++) {
    size_t n = strlen(*a) + 1;
    if (off + n >= cmd_area_len)
      break; /* what does not fit is left out: only what ps shows */
    memcpy(cmd_area + off, *a, n);
    off += n;
  }
}

/* The strings of a request: n NUL-terminated strings from p (len bytes) into v (n + 1 slots,
 * NULL-terminated). Returns the bytes used, or -1 when the request is malformed. */
static long zygote_strings(char *p, size_t len, char **v, uint32_t n)
{
  size_t off = 0;
  for (uint32_t i = 0; i < n; i++) {
    char *end = off < len ? memchr(p + off, '\0', len - off) : NULL;
    if (!end)
      return -1;
    v[i] = p + off;
    off = (size_t)(end - p) + 1;
  }
  v[n] = NULL;
  return (long)off;
}

/* In the child: the log file as stdout and stderr, /dev/null as stdin, the worker's environment. */
static void zygote_child(int sfd, char **args, uint32_t nargs, char **env, const char *log_path)
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close(sfd);
  close(ZYGOTE_REQ_FD);
  close(ZYGOTE_EXIT_FD);
  int in = open("/dev/null", O_RDONLY);
  int out = *log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
  if (in >= 0 && in != 0)
    dup2(in, 0), close(in);
  if (out < 0)
    out = open("/dev/null", O_WRONLY);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
    if (out > 2)
      close(out);
  }
  environ = env;
  zygote_set_cmdline(args);
  exit(rayc_worker_main((int)nargs, args));
}

/* Serves one request; the reply is the child's pid or a negative errno. */
static void zygote_serve(int sfd, char *buf, size_t len)
{
  zygote_req_t h;
  int32_t reply = -EINVAL;
  if (len >= sizeof(h)) {
    memcpy(&h, buf, sizeof(h));
    char *p = buf + sizeof(h);
    size_t rest = len - sizeof(h);
    if (h.magic == ZYGOTE_MAGIC && h.nargs > 0 && h.nargs < 256 && h.nenv < 65536) {
      char **args = calloc(h.nargs + 1, sizeof(*args)), **env = calloc(h.nenv + 1, sizeof(*env)), *log_path[2];
      long a = args && env ? zygote_strings(p, rest, args, h.nargs) : -1;
      long e = a < 0 ? -1 : zygote_strings(p + a, rest - (size_t)a, env, h.nenv);
      long l = e < 0 ? -1 : zygote_strings(p + a + e, rest - (size_t)(a + e), log_path, 1);
      pid_t pid = l < 0 ? -1 : fork();
      if (pid == 0)
        zygote_child(sfd, args, h.nargs, env, log_path[0]);
      reply = l < 0 ? -EINVAL : pid < 0 ? -errno : (int32_t)pid;
      free(args);
      free(env);
    }
  }
  explicit_bzero(buf, len); /* the environment holds the cluster token */
  if (send(ZYGOTE_REQ_FD, &reply, sizeof(reply), MSG_NOSIGNAL) < 0)
    exit(1);
}

/* Reaps every child that has exited and reports it. */
static void zygote_reap(int sfd)
{
  struct signalfd_siginfo si;
  while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
  }
  int st;
  pid_t pid;
  struct rusage ru;
  while ((pid = wait4(-1, &st, WNOHANG, &ru)) > 0) {
    uint64_t us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                  (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    zygote_exit_t e = {.pid = pid,
                       .status = st,
                       .cpu_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us,
                       .minflt = (uint32_t)ru.ru_minflt,
                       .nvcsw = (uint32_t)ru.ru_nvcsw};
    send(ZYGOTE_EXIT_FD, &e, sizeof(e), MSG_NOSIGNAL);
  }
}

int worker_zygote_run(int argc, char **argv)
{
  cmd_area = argv[0];
  cmd_area_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  char *buf = malloc(ZYGOTE_MAX_REQUEST);
  zygote_exit_t ready = {.pid = 0};
  if (sfd < 0 || !buf || send(ZYGOTE_EXIT_FD, &ready, sizeof(ready), MSG_NOSIGNAL) < 0) {
    fprintf(stderr, "rayc-worker --zygote: cannot start: %s\n", strerror(errno));
    return 1;
  }
  struct pollfd p[2] = {{.fd = ZYGOTE_REQ_FD, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0)
      continue;
    if (p[1].revents)
      zygote_reap(sfd);
    if (p[0].revents & POLLIN) {
      ssize_t n = recv(ZYGOTE_REQ_FD, buf, ZYGOTE_MAX_REQUEST, 0);
      if (n <= 0)
        break; /* the raylet closed the socket: done */
      zygote_serve(sfd, buf, (size_t)n);
    } else if (p[0].revents) {
      break;
    }
  }
  free(buf);
  return 0;
}
