/*
 * Garbage collection of working-dir packages in the GCS KV (namespace "pkg", issue 12). A package
 * is in use while a job that names it is PENDING or RUNNING, or ended less than
 * --job-package-ttl-ms ago (so that submitting the same tree again soon uploads nothing). Once a
 * package has been seen unused for that long it is deleted. Checked every 10 s from the cron; the
 * time a package was first seen unused is kept in memory only (a restarted GCS waits a full TTL
 * again, which errs on keeping).
 */
#include "gcs/gcs_jobsub.h"

#include "common/log.h"
#include "common/pkg.h"
#include "common/util.h"
#include "gcs/gcs_kv.h"
#include "gcs/gcs_server.h"

#include <stdlib.h>
#include <string.h>

enum { JOBPKG_PERIOD_MS = 10000 };

typedef struct jobpkg_unused {
  char name[69];
  int64_t since_ms; /* monotonic */
  int seen;         /* listed in this pass */
} jobpkg_unused_t;

typedef struct jobpkg_scan {
  char (*names)[69];
  size_t n, cap;
} jobpkg_scan_t;

static void jobpkg_collect(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  jobpkg_scan_t *sc = arg;
  (void)val;
  (void)vlen;
  if (klen != 68) /* the key inside the namespace: "pkg_<64 hex>" */
    return;
  if (sc->n == sc->cap) {
    sc->cap = sc->cap ? 2 * sc->cap : 16;
    sc->names = xrealloc(sc->names, sc->cap * sizeof(*sc->names));
  }
  memcpy(sc->names[sc->n], key, 68);
  sc->names[sc->n++][68] = '\0';
}

static int jobpkg_in_use(const gcs_jobsubs_t *t, const char *name, int64_t wall_now, int64_t ttl)
{
  for (size_t i = 0; i < t->n; i++) {
    const Rayc__JobSubmission *j = t->v[i];
    if (!j->runtime_env || strcmp(j->runtime_env->working_dir, name) != 0)
      continue;
    if (!gcs_jobsub_terminal(j->status) || wall_now - j->end_time_ms < ttl)
      return 1;
  }
  return 0;
}

static jobpkg_unused_t *jobpkg_find(gcs_jobsubs_t *t, const char *name)
{
  for (size_t i = 0; i < t->nunused; i++)
    if (strcmp(t->unused[i].name, name) == 0)
      return &t->unused[i];
  return NULL;
}

void gcs_jobpkg_cron(gcs_jobsubs_t *t, int64_t now)
{
  int64_t ttl = t->s->conf->job_package_ttl_ms;
  if (now < t->next_pkg_ms || ttl <= 0)
    return;
  t->next_pkg_ms = now + (ttl < JOBPKG_PERIOD_MS ? ttl : JOBPKG_PERIOD_MS);
  jobpkg_scan_t sc = {0};
  gcs_kv_keys(t->s->store, "pkg", NULL, 0, jobpkg_collect, &sc);
  int64_t wall_now = wall_ms();
  for (size_t i = 0; i < t->nunused; i++)
    t->unused[i].seen = 0;
  for (size_t i = 0; i < sc.n; i++) {
    if (!pkg_name_valid(sc.names[i]) || jobpkg_in_use(t, sc.names[i], wall_now, ttl))
      continue;
    jobpkg_unused_t *u = jobpkg_find(t, sc.names[i]);
    if (!u) {
      t->unused = xrealloc(t->unused, (t->nunused + 1) * sizeof(*t->unused));
      u = &t->unused[t->nunused++];
      snprintf(u->name, sizeof(u->name), "%s", sc.names[i]);
      u->since_ms = now;
    }
    u->seen = 1;
    if (now - u->since_ms >= ttl) {
      gcs_kv_del(t->s->store, "pkg", u->name, strlen(u->name), 0);
      log_info("package %s: no job used it for %lld ms: deleted from the KV", u->name, (long long)ttl);
      u->seen = 0;
    }
  }
  size_t k = 0; /* forget packages that are gone or in use again */
  for (size_t i = 0; i < t->nunused; i++)
    if (t->unused[i].seen)
      t->unused[k++] = t->unused[i];
  t->nunused = k;
  free(sc.names);
}
