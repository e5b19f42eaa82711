/*
 * Restarting the GCS of a head started by `rayc start` (see launch_gcs_restart in launch.h): its saved
 * command line and Redis password, spawned again in the same session with the launcher's
 * readiness wait.
 */
#include "client/launch.h"
#include "client/launch_int.h"

#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- restarting the GCS ---- */

/* Reads a whole (small) file into a new buffer; *len its size. NULL when unreadable. */
static char *launch_read_all(const char *path, size_t *len)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap);
  for (size_t r; (r = fread(buf + n, 1, cap - n - 1, f)) > 0;)
    if ((n += r) + 1 >= cap)
      buf = xrealloc(buf, cap *= 2);
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Fills a from <session>/gcs.args. An ephemeral --port 0 becomes the port <session>/address names
 * (nodes reconnect there), and a Redis-backed GCS keeps the key prefix it had by default
 * ("rayc:<port as configured>"), so it finds its tables again. */
static int launch_gcs_load_args(launch_t *l, launch_argv_t *a)
{
  size_t len = 0, alen = 0;
  char *path = xasprintf("%s/gcs.args", l->session), *addr_path = xasprintf("%s/address", l->session);
  char *buf = launch_read_all(path, &len), *addr = launch_read_all(addr_path, &alen), *prefix = NULL;
  const char *colon = addr ? strrchr(addr, ':') : NULL;
  int redis = 0, has_prefix = 0;
  a->n = 0;
  for (char *p = buf; buf && p < buf + len && a->n < LAUNCH_MAX_ARGS - 2; p += strlen(p) + 1) {
    int is_port = a->n > 0 && strcmp(a->v[a->n - 1], "--port") == 0;
    if (is_port && !prefix)
      prefix = xasprintf("rayc:%s", p);
    redis |= strcmp(p, "--redis-address") == 0;
    has_prefix |= strcmp(p, "--redis-key-prefix") == 0;
    a->v[a->n++] = is_port && strcmp(p, "0") == 0 && colon ? xasprintf("%d", atoi(colon + 1)) : xstrdup(p);
  }
  if (redis && !has_prefix && prefix) {
    a->v[a->n++] = xstrdup("--redis-key-prefix");
    a->v[a->n++] = xstrdup(prefix);
  }
  a->v[a->n] = NULL;
  free(prefix);
  if (!buf || a->n == 0)
    l->err = xasprintf("%s is missing: the session was not started as a head by `rayc start` of this version", path);
  free(buf);
  free(addr);
  free(path);
  free(addr_path);
  return l->err ? RAYC_ENOT_FOUND : 0;
}

/* Fails when the session's GCS still runs. */
static int launch_gcs_check_dead(launch_t *l)
{
  char *path = xasprintf("%s/pids/gcs.pid", l->session), text[32] = "";
  FILE *f = fopen(path, "r");
  long pid = f && fgets(text, sizeof(text), f) ? strtol(text, NULL, 10) : 0;
  if (f)
    fclose(f);
  free(path);
  if (pid > 1 && pid <= INT_MAX && launch_pid_alive((pid_t)pid) && launch_cmdline_names((pid_t)pid, l->session))
    l->err = xasprintf("the GCS of session %s is running (pid %ld); there is nothing to restart", l->session, pid);
  return l->err ? RAYC_EINVALID_ARGUMENT : 0;
}

/* The pid launch_spawn recorded for the GCS. */
static int launch_read_pid(launch_t *l, pid_t *pid)
{
  size_t len = 0;
  char *path = xasprintf("%s/pids/gcs.pid", l->session), *text = launch_read_all(path, &len);
  *pid = text ? (pid_t)strtol(text, NULL, 10) : 0;
  free(text);
  free(path);
  return *pid > 0 ? 0 : RAYC_ENOT_FOUND;
}

int launch_gcs_restart(const char *session_dir, int ready_timeout_ms, pid_t *pid, char **err)
{
  launch_opts_t o;
  launch_opts_init(&o);
  o.ready_timeout_ms = ready_timeout_ms;
  launch_t l = {.opts = &o, .notify_fd = -1};
  launch_argv_t a = {.n = 0};
  int port = 0, rc = RAYC_EINVALID_ARGUMENT;
  size_t plen = 0;
  snprintf(l.session, sizeof(l.session), "%s", session_dir);
  char *pw_path = xasprintf("%s/redis_password", l.session), *pw = launch_read_all(pw_path, &plen);
  if (pw) {
    pw[strcspn(pw, "\n")] = '\0';
    l.extra_env = xasprintf("RAYC_REDIS_PASSWORD=%s", pw);
    explicit_bzero(pw, plen);
  }
  if (strlen(session_dir) >= sizeof(l.session))
    l.err = xstrdup("the session path is too long");
  else if ((rc = launch_gcs_check_dead(&l)) == 0 && (rc = launch_gcs_load_args(&l, &a)) == 0 &&
           (rc = launch_notify_open(&l)) < 0)
    l.err = xasprintf("cannot bind the readiness socket in %s: %s", l.session, strerror(-rc));
  if (rc == 0 && (rc = launch_daemon(&l, "gcs", &a, &port)) == 0)
    rc = launch_read_pid(&l, pid);
  launch_argv_release(&a);
  launch_notify_close(&l);
  launch_gcs_forget_password(&l);
  free(pw);
  free(pw_path);
  if (err)
    *err = l.err;
  else
    free(l.err);
  return rc;
}
