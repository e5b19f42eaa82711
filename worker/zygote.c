/*
 * `rayc-worker --zygote`: the node's worker fork server (wire format and rationale in
 * common/zygote.h). It runs single-threaded and never calls into librayc, so every fork is a
 * clean copy of a process that has only been loaded: the child calls rayc_worker_main() with
 * the arguments and environment the raylet sent, exactly as an exec'ed rayc-worker would.
 *
 * A job's zygote is a child of the node's one that has also loaded the job's code
 * (rayc_worker_preload, the only librayc call made before a fork: it starts no thread and opens
 * no connection), so that the job's workers skip the dynamic loader's work for it: in a forked
 * child, dlopen must fault in again the symbol tables of the ~80 libraries it relocates against
 * (docs/PERFORMANCE.md, "A zygote per job"). It serves that job's spawn requests only.
 *
 * Lifetime: the raylet's child (it dies with the raylet: PR_SET_PDEATHSIG); its children die with
 * it the same way (rayc_worker_main sets PR_SET_PDEATHSIG; a job's zygote sets it too). The node's
 * zygote exits when the raylet closes the request socket; a job's zygote then stops forking and
 * exits once its last worker has. Each reaps its children (signalfd on SIGCHLD) and reports each
 * exit.
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

/* One zygote's state (the node's, or a job's after its fork). */
typedef struct zygote {
  int sfd;      /* signalfd for SIGCHLD */
  int is_job;   /* a job's zygote: serves until its request socket closes and its children are gone */
  int req_open; /* ZYGOTE_REQ_FD still open */
  int children; /* forked and not yet reaped */
  pid_t *jobs;  /* the node's zygote: its children that are job zygotes */
  size_t njobs, capjobs;
  char *buf; /* ZYGOTE_MAX_REQUEST bytes: the request being served */
} zygote_t;

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
static void zygote_child(zygote_t *z, char **args, uint32_t nargs, char **env, const char *log_path)
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close(z->sfd);
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

/* The number of threads of this process (1 unless a library's constructor started one). */
static int zygote_threads(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  int n = 0;
  while (f && fgets(line, sizeof(line), f) && sscanf(line, "Threads: %d", &n) != 1) {
  }
  if (f)
    fclose(f);
  return n;
}

static int zygote_loop(zygote_t *z);

/* In a job's zygote, just forked: its own pairs as fds 3 and 4, its own signalfd and command
 * line, the environment its workers get, and the job's code loaded; then it serves. Never returns. */
static void zygote_job_child(zygote_t *z, pid_t parent, char **args, char **env, const char *session, const char *code,
                             int fds[2])
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(1);                  /* the node's zygote died before the line above: so do we */
  dup2(fds[0], ZYGOTE_REQ_FD); /* dup2 clears FD_CLOEXEC; the node's pairs close with it */
  dup2(fds[1], ZYGOTE_EXIT_FD);
  close(fds[0]);
  close(fds[1]);
  close(z->sfd);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  z->sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  z->is_job = 1;
  z->children = 0;
  z->njobs = 0;
  size_t n = 0;
  while (env[n])
    n++;
  char **own = calloc(n + 1, sizeof(*own)); /* the request buffer is reused for the next request */
  for (size_t i = 0; own && i < n; i++)
    own[i] = strdup(env[i]);
  environ = own ? own : environ;
  zygote_set_cmdline(args);
  int rc = z->sfd < 0 || !own ? RAYC_EINTERNAL : rayc_worker_preload(session, code);
  if (rc == 0 && zygote_threads() > 1) {
    fprintf(stderr, "rayc-worker --zygote: the job's code (%s) started a thread while loading: not forking from it\n",
            code);
    rc = RAYC_EINTERNAL;
  }
  fflush(NULL); /* what the job's constructors printed goes here, not into every worker */
  zygote_exit_t ready = {.pid = 0, .status = rc};
  if (send(ZYGOTE_EXIT_FD, &ready, sizeof(ready), MSG_NOSIGNAL) < 0 || rc != 0)
    _exit(1);
  _exit(zygote_loop(z));
}

/* Receives one request and the fds that came with it (fds[i] -1 when none); recvmsg's result. */
static ssize_t zygote_recv(char *buf, int fds[2])
{
  union {
    char b[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {.iov_base = buf, .iov_len = ZYGOTE_MAX_REQUEST};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
  fds[0] = fds[1] = -1;
  ssize_t n = recvmsg(ZYGOTE_REQ_FD, &mh, MSG_CMSG_CLOEXEC);
  for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      if (i < 2 && fds[i] < 0)
        fds[i] = fd;
      else
        close(fd);
    }
  }
  return n;
}

static void zygote_note_job(zygote_t *z, pid_t pid)
{
  if (z->njobs == z->capjobs) {
    size_t cap = z->capjobs ? 2 * z->capjobs : 8;
    pid_t *v = realloc(z->jobs, cap * sizeof(*v));
    if (!v)
      return; /* its exit is then reported as a worker's: only the raylet's log line differs */
    z->jobs = v;
    z->capjobs = cap;
  }
  z->jobs[z->njobs++] = pid;
}

/* Forks what the request asks for; returns the child's pid or a negative errno. */
static int32_t zygote_fork(zygote_t *z, const zygote_req_t *h, char *p, size_t rest, int fds[2])
{
  int job = h->kind == ZYGOTE_KIND_JOB;
  if ((h->kind != ZYGOTE_KIND_WORKER && !job) || (job && (z->is_job || fds[1] < 0)))
    return -EINVAL;
  char **args = calloc(h->nargs + 1, sizeof(*args)), **env = calloc(h->nenv + 1, sizeof(*env)), *tail[3];
  long a = args && env ? zygote_strings(p, rest, args, h->nargs) : -1;
  long e = a < 0 ? -1 : zygote_strings(p + a, rest - (size_t)a, env, h->nenv);
  long l = e < 0 ? -1 : zygote_strings(p + a + e, rest - (size_t)(a + e), tail, job ? 2 : 1);
  pid_t parent = getpid();
  pid_t pid = l < 0 ? -1 : fork();
  if (pid == 0 && job)
    zygote_job_child(z, parent, args, env, tail[0], tail[1], fds);
  if (pid == 0)
    zygote_child(z, args, h->nargs, env, tail[0]);
  int32_t reply = l < 0 ? -EINVAL : pid < 0 ? -errno : (int32_t)pid;
  if (pid > 0) {
    z->children++;
    if (job)
      zygote_note_job(z, pid);
  }
  free(args);
  free(env);
  return reply;
}

/* Serves one request; the reply is the child's pid or a negative errno. */
static void zygote_serve(zygote_t *z, size_t len, int fds[2])
{
  zygote_req_t h;
  int32_t reply = -EINVAL;
  if (len >= sizeof(h)) {
    memcpy(&h, z->buf, sizeof(h));
    if (h.magic == ZYGOTE_MAGIC && h.nargs > 0 && h.nargs < 256 && h.nenv < 65536)
      reply = zygote_fork(z, &h, z->buf + sizeof(h), len - sizeof(h), fds);
  }
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      close(fds[i]);           /* a job's zygote has its copies */
  explicit_bzero(z->buf, len); /* the environment holds the cluster token */
  if (send(ZYGOTE_REQ_FD, &reply, sizeof(reply), MSG_NOSIGNAL) < 0)
    exit(1);
}

/* Whether pid was one of the node zygote's job zygotes (forgotten now). */
static int zygote_was_job(zygote_t *z, pid_t pid)
{
  for (size_t i = 0; i < z->njobs; i++)
    if (z->jobs[i] == pid) {
      z->jobs[i] = z->jobs[--z->njobs];
      return 1;
    }
  return 0;
}

/* Reaps every child that has exited and reports it. */
static void zygote_reap(zygote_t *z)
{
  struct signalfd_siginfo si;
  while (read(z->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
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
                       .nvcsw = (uint32_t)ru.ru_nvcsw,
                       .zygote = (uint32_t)zygote_was_job(z, pid)};
    z->children--;
    send(ZYGOTE_EXIT_FD, &e, sizeof(e), MSG_NOSIGNAL);
  }
}

/* Serves requests until the raylet closes the request socket (a job's zygote: and its last
 * child is gone). Returns the exit status. */
static int zygote_loop(zygote_t *z)
{
  z->req_open = 1;
  for (;;) {
    if (!z->req_open && z->children <= 0)
      return 0;
    struct pollfd p[2] = {{.fd = z->sfd, .events = POLLIN}, {.fd = ZYGOTE_REQ_FD, .events = POLLIN}};
    if (poll(p, z->req_open ? 2 : 1, -1) < 0)
      continue;
    if (p[0].revents)
      zygote_reap(z);
    if (!z->req_open || !p[1].revents)
      continue;
    int fds[2];
    ssize_t n = (p[1].revents & POLLIN) ? zygote_recv(z->buf, fds) : 0;
    if (n > 0) {
      zygote_serve(z, (size_t)n, fds);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (!z->is_job)
      return 0;           /* the raylet closed the socket: done (the workers die with us) */
    close(ZYGOTE_REQ_FD); /* the job ended: no more forks; its workers may still run */
    z->req_open = 0;
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
  zygote_t z = {.sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC), .buf = malloc(ZYGOTE_MAX_REQUEST)};
  zygote_exit_t ready = {.pid = 0};
  if (z.sfd < 0 || !z.buf || send(ZYGOTE_EXIT_FD, &ready, sizeof(ready), MSG_NOSIGNAL) < 0) {
    fprintf(stderr, "rayc-worker --zygote: cannot start: %s\n", strerror(errno));
    return 1;
  }
  int rc = zygote_loop(&z);
  free(z.buf);
  free(z.jobs);
  return rc;
}
