/*
 * Running commands on the hosts of `rayc up` with the system's OpenSSH client (ssh, scp): spawned
 * with posix_spawnp, stdin fed from a buffer, stdout and stderr read together. BatchMode keeps ssh
 * from ever prompting; ConnectTimeout bounds an unreachable host.
 */
#include "client/cli/cli_up.h"

#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { UP_ARGS_MAX = 64, UP_CONNECT_TIMEOUT_S = 10 };

typedef struct up_argv {
  char *v[UP_ARGS_MAX + 1];
  int n;
} up_argv_t;

static void up_arg(up_argv_t *a, char *s)
{
  if (a->n < UP_ARGS_MAX)
    a->v[a->n++] = s;
  else
    free(s);
}

static void up_argv_release(up_argv_t *a)
{
  for (int i = 0; i < a->n; i++)
    free(a->v[i]);
  a->n = 0;
}

/* The options ssh and scp share; port_flag is "-p" (ssh) or "-P" (scp). */
static void up_common_args(const up_cluster_t *c, up_argv_t *a, const char *port_flag)
{
  up_arg(a, xstrdup("-o"));
  up_arg(a, xstrdup("BatchMode=yes"));
  up_arg(a, xstrdup("-o"));
  up_arg(a, xasprintf("ConnectTimeout=%d", UP_CONNECT_TIMEOUT_S));
  for (size_t i = 0; i < c->n_ssh_opts; i++) {
    up_arg(a, xstrdup("-o"));
    up_arg(a, xstrdup(c->ssh_opts[i]));
  }
  if (c->port > 0) {
    up_arg(a, xstrdup(port_flag));
    up_arg(a, xasprintf("%d", c->port));
  }
  if (c->key) {
    up_arg(a, xstrdup("-i"));
    up_arg(a, xstrdup(c->key));
  }
  if (c->control_dir) {
    up_arg(a, xstrdup("-o"));
    up_arg(a, xstrdup("ControlMaster=auto"));
    up_arg(a, xstrdup("-o"));
    up_arg(a, xasprintf("ControlPath=%s/%%C", c->control_dir));
    up_arg(a, xstrdup("-o"));
    up_arg(a, xstrdup("ControlPersist=120"));
  }
}

/* Reads fd to its end into a new string. */
static char *up_read_all(int fd)
{
  size_t len = 0, cap = 4096;
  char *buf = xmalloc(cap);
  for (;;) {
    if (cap - len < 1024)
      buf = xrealloc(buf, cap *= 2);
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return buf;
}

/* Runs argv with stdin_data on its stdin; fills r. */
static void up_exec(up_argv_t *a, const char *stdin_data, up_run_t *r)
{
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  pid_t pid = -1;
  r->status = -1;
  r->out = NULL;
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
    r->out = xasprintf("cannot make a pipe: %s", strerror(errno));
    goto out;
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  int rc = posix_spawnp(&pid, a->v[0], &fa, NULL, a->v, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r->out = xasprintf("cannot run %s: %s (install openssh-client)", a->v[0], strerror(rc));
    goto out;
  }
  close(in[0]), close(out[1]);
  in[0] = out[1] = -1;
  size_t left = stdin_data ? strlen(stdin_data) : 0;
  for (const char *p = stdin_data; left > 0;) {
    ssize_t n = write(in[1], p, left);
    if (n <= 0 && errno != EINTR)
      break;
    p += n > 0 ? n : 0, left -= n > 0 ? (size_t)n : 0;
  }
  close(in[1]);
  in[1] = -1;
  r->out = up_read_all(out[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  up_argv_release(a);
}

/* 'text' with every ' made '\'' (for sh -c '...'). */
static char *up_quote(const char *text)
{
  char *q = xstrdup("'");
  for (const char *p = text; *p; p++) {
    char *n = *p == '\'' ? xasprintf("%s'\\''", q) : xasprintf("%s%c", q, *p);
    free(q);
    q = n;
  }
  char *n = xasprintf("%s'", q);
  free(q);
  return n;
}

void up_ssh(const up_cluster_t *c, const up_host_t *h, const char *cmd, const char *stdin_data, up_run_t *r)
{
  up_argv_t a = {.n = 0};
  up_arg(&a, xstrdup("ssh"));
  up_common_args(c, &a, "-p");
  if (c->user) {
    up_arg(&a, xstrdup("-l"));
    up_arg(&a, xstrdup(c->user));
  }
  up_arg(&a, xstrdup(h->host));
  char *q = up_quote(cmd);
  int root = !c->user || strcmp(c->user, "root") == 0;
  up_arg(&a, xasprintf("%ssh -c %s", root ? "" : "sudo -n ", q));
  free(q);
  up_exec(&a, stdin_data, r);
}

void up_scp(const up_cluster_t *c, const up_host_t *h, const char *local, const char *remote_path, up_run_t *r)
{
  up_argv_t a = {.n = 0};
  up_arg(&a, xstrdup("scp"));
  up_arg(&a, xstrdup("-q"));
  up_common_args(c, &a, "-P");
  up_arg(&a, xstrdup(local));
  int v6 = strchr(h->host, ':') != NULL;
  up_arg(&a, xasprintf("%s%s%s%s%s:%s", c->user ? c->user : "", c->user ? "@" : "", v6 ? "[" : "", h->host,
                       v6 ? "]" : "", remote_path));
  up_exec(&a, NULL, r);
}

void up_ssh_share_start(up_cluster_t *c)
{
  char *dir = xstrdup("/tmp/rayc-up.XXXXXX");
  if (mkdtemp(dir))
    c->control_dir = dir;
  else
    free(dir); /* no sharing: every command makes its own connection */
}

void up_ssh_share_stop(up_cluster_t *c)
{
  if (!c->control_dir)
    return;
  for (size_t i = 0; i < c->n_hosts; i++) {
    up_argv_t a = {.n = 0};
    up_run_t r;
    up_arg(&a, xstrdup("ssh"));
    up_common_args(c, &a, "-p");
    up_arg(&a, xstrdup("-O"));
    up_arg(&a, xstrdup("exit"));
    if (c->user) {
      up_arg(&a, xstrdup("-l"));
      up_arg(&a, xstrdup(c->user));
    }
    up_arg(&a, xstrdup(c->hosts[i].host));
    up_exec(&a, NULL, &r); /* fails harmlessly where no connection was made */
    free(r.out);
  }
  char *cmd = xasprintf("rm -rf '%s'", c->control_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "rayc: could not remove %s\n", c->control_dir);
  free(cmd);
  free(c->control_dir);
  c->control_dir = NULL;
}

const char *up_last_line(const char *text)
{
  static char line[512];
  const char *end = text + strlen(text), *start;
  while (end > text && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
    end--;
  for (start = end; start > text && start[-1] != '\n'; start--)
    ;
  snprintf(line, sizeof(line), "%.*s", (int)(end - start), start);
  return line;
}

const char *up_ssh_error(const up_run_t *r)
{
  static char msg[600];
  const char *o = r->out ? r->out : "";
  const char *kind = "ssh failed";
  if (strstr(o, "Permission denied") || strstr(o, "Too many authentication failures"))
    kind = "authentication refused";
  else if (strstr(o, "Connection refused") || strstr(o, "No route to host") || strstr(o, "timed out") ||
           strstr(o, "Could not resolve") || strstr(o, "Network is unreachable") || strstr(o, "Connection closed"))
    kind = "unreachable";
  else if (strstr(o, "Host key verification failed") || strstr(o, "REMOTE HOST IDENTIFICATION"))
    kind = "host key refused";
  snprintf(msg, sizeof(msg), "%s (%s)", kind, up_last_line(o));
  return msg;
}
