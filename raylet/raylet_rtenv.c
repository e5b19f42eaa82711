/*
 * Garbage collection of this node's copies of job working dirs (issue 12): the directories
 * <session>/runtime_env/pkg_<sha256>/ that workers (worker/cw_rtenv.c) and job supervisors unpack
 * once per node. A copy is in use while a live worker's code path names it or a process on this
 * machine has its cwd inside it (a running entrypoint, a worker); one seen unused for
 * --runtime-env-ttl-ms is removed (following no link). Checked every 10 s from the cron; the
 * first-unused times live in memory.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/pkg.h"
#include "common/util.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RTENV_PERIOD_MS = 10000 };

typedef struct rtenv_unused {
  char name[69];
  int64_t since_ms;
  int seen;
} rtenv_unused_t;

struct raylet_rtenv {
  rtenv_unused_t *v;
  size_t n;
  int64_t next_ms;
};

/* 1 when some process's cwd is dir or inside it. */
static int rtenv_cwd_inside(const char *dir)
{
  DIR *d = opendir("/proc");
  size_t len = strlen(dir);
  int found = 0;
  for (struct dirent *e; d && !found && (e = readdir(d));) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    char path[300], cwd[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%s/cwd", e->d_name);
    ssize_t n = readlink(path, cwd, sizeof(cwd) - 1);
    if (n <= 0)
      continue;
    cwd[n] = '\0';
    found = strncmp(cwd, dir, len) == 0 && (cwd[len] == '\0' || cwd[len] == '/');
  }
  if (d)
    closedir(d);
  return found;
}

static int rtenv_in_use(raylet_t *r, const char *name, const char *dir)
{
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->state != WORKER_DEAD && w->code_path && strstr(w->code_path, name))
      return 1;
  return rtenv_cwd_inside(dir);
}

static rtenv_unused_t *rtenv_mark(struct raylet_rtenv *g, const char *name, int64_t now)
{
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->v[i].name, name) == 0)
      return &g->v[i];
  g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
  rtenv_unused_t *u = &g->v[g->n++];
  memcpy(u->name, name, 68); /* pkg_name_valid: 68 characters */
  u->name[68] = '\0';
  u->since_ms = now;
  return u;
}

/* One pass over <session>/runtime_env. */
static void rtenv_scan(raylet_t *r, struct raylet_rtenv *g, int64_t now, int64_t ttl)
{
  char *root = xasprintf("%s/runtime_env", r->cfg.session_dir);
  DIR *d = opendir(root);
  for (size_t i = 0; i < g->n; i++)
    g->v[i].seen = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!pkg_name_valid(e->d_name))
      continue;
    char *dir = xasprintf("%s/%s", root, e->d_name);
    if (!rtenv_in_use(r, e->d_name, dir)) {
      rtenv_unused_t *u = rtenv_mark(g, e->d_name, now);
      u->seen = 1;
      if (now - u->since_ms >= ttl) {
        pkg_remove_tree(dir);
        log_info("working dir %s: unused here for %lld ms: removed", e->d_name, (long long)ttl);
        u->seen = 0;
      }
    }
    free(dir);
  }
  if (d)
    closedir(d);
  size_t k = 0;
  for (size_t i = 0; i < g->n; i++)
    if (g->v[i].seen)
      g->v[k++] = g->v[i];
  g->n = k;
  free(root);
}

void raylet_rtenv_cron(raylet_t *r)
{
  int64_t ttl = r->cfg.runtime_env_ttl_ms, now = now_ms();
  if (ttl <= 0 || !r->cfg.session_dir)
    return;
  if (!r->rtenv)
    r->rtenv = xcalloc(1, sizeof(*r->rtenv));
  if (now < r->rtenv->next_ms)
    return;
  r->rtenv->next_ms = now + (ttl < RTENV_PERIOD_MS ? ttl : RTENV_PERIOD_MS);
  rtenv_scan(r, r->rtenv, now, ttl);
}

void raylet_rtenv_destroy(raylet_t *r)
{
  if (r->rtenv)
    free(r->rtenv->v);
  free(r->rtenv);
  r->rtenv = NULL;
}
