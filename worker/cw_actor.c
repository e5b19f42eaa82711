/*
 * The actor class registry, and the parts of ActorWorkerService that serve actor owners
 * (WaitOwnerExit), plus finding the GCS from a worker. Hosting actors (the creation task, calls,
 * rayc_actor_exit, KillActorWorker, WaitActorExit) is in cw_actor_host.c.
 *
 * Owners: the GCS holds a WaitOwnerExit call on the process that created an owned actor (and
 * owners of objects hold one on each process borrowing them, cw_borrow.c); it is answered when that
 * process exits in order (a driver's rayc_shutdown, a worker's exit), and fails when it dies.
 * Workers and drivers serve it on their CoreWorkerService port.
 *
 * State: the process-wide actor runtime (cw_proc.actor, worker/cw_proc.h) under its own mutex,
 * never cw->mu, so the rpc server thread never waits on the core worker.
 */
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
  OWNER_HOLD_MS = 20000, /* a WaitOwnerExit is answered TIMEOUT after this (its callers wait 30 s or more) */
};

/* ---- the class registry (filled by RAYC_ACTOR / RAYC_METHOD when libraries load) ---- */

static cw_actor_class_t *reg_class_locked(const char *cls, int create)
{
  if (!cw_proc.classes.buckets)
    hmap_init(&cw_proc.classes);
  cw_actor_class_t *c = hmap_get(&cw_proc.classes, cls, strlen(cls));
  if (!c && create) {
    c = xcalloc(1, sizeof(*c));
    c->name = xstrdup(cls);
    hmap_init(&c->methods);
    hmap_put(&cw_proc.classes, cls, strlen(cls), c);
  }
  return c;
}

void rayc_register_actor(const char *cls, rayc_actor_ctor_fn ctor, rayc_actor_dtor_fn dtor)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 1);
  c->ctor = ctor;
  c->dtor = dtor;
  pthread_mutex_unlock(&cw_proc.classes_mu);
}

void rayc_register_method(const char *cls, const char *method, rayc_method_fn fn)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 1);
  hmap_put(&c->methods, method, strlen(method), (void *)(uintptr_t)fn);
  pthread_mutex_unlock(&cw_proc.classes_mu);
}

cw_actor_class_t *cw_actor_class_find(const char *cls)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  cw_actor_class_t *c = reg_class_locked(cls, 0);
  pthread_mutex_unlock(&cw_proc.classes_mu);
  return c && c->ctor ? c : NULL;
}

rayc_method_fn cw_actor_method_find(cw_actor_class_t *c, const char *method)
{
  pthread_mutex_lock(&cw_proc.classes_mu);
  void *p = hmap_get(&c->methods, method, strlen(method));
  pthread_mutex_unlock(&cw_proc.classes_mu);
  return (rayc_method_fn)(uintptr_t)p;
}

void cw_call_list_add(cw_call_list_t *l, rpc_call_t *call)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    l->at = xrealloc(l->at, l->cap * sizeof(*l->at));
  }
  l->at[l->n] = now_ms();
  l->v[l->n++] = call;
}

/* ---- ActorWorkerService ---- */

void cw_actor_on_wait_owner(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__WaitOwnerExitRequest *req = (const Rayc__WaitOwnerExitRequest *)m;
  char me[9], them[9];
  if (req->owner_worker_id.len && (req->owner_worker_id.len != ID_WORKER_SIZE ||
                                   memcmp(req->owner_worker_id.data, cw->worker_id.b, ID_WORKER_SIZE) != 0)) {
    rpc_reply_error(
        call, RAYC_ENOT_FOUND, "this process is worker %s, not worker %s (which is gone)",
        id_short(cw->worker_id.b, ID_WORKER_SIZE, me),
        req->owner_worker_id.len == ID_WORKER_SIZE ? id_short(req->owner_worker_id.data, ID_WORKER_SIZE, them) : "?");
    return;
  }
  pthread_mutex_lock(&cw_proc.actor.mu);
  int now = cw_proc.actor.stopping;
  if (!now)
    cw_call_list_add(&cw_proc.actor.owner_waiters, call);
  pthread_mutex_unlock(&cw_proc.actor.mu);
  if (now)
    rpc_reply(call, NULL);
}

void cw_call_list_reply_all(cw_call_list_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    rpc_reply(l->v[i], NULL);
  free(l->v);
  free(l->at);
  *l = (cw_call_list_t){0};
}

void cw_actor_owner_tick(void)
{
  int64_t old = now_ms() - OWNER_HOLD_MS;
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_call_list_t *l = &cw_proc.actor.owner_waiters;
  size_t k = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (l->at[i] > old) {
      l->v[k] = l->v[i];
      l->at[k++] = l->at[i];
    } else { /* still here: the caller asks again (it takes TIMEOUT as "alive") */
      rpc_reply_error(l->v[i], RAYC_ETIMEOUT, "still running");
    }
  }
  l->n = k;
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

/* ---- a driver as an owner ---- */

void cw_actor_owner_reset(void)
{
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_proc.actor.stopping = 0; /* a driver may rayc_init again after rayc_shutdown */
  pthread_mutex_unlock(&cw_proc.actor.mu);
}

int cw_actor_owner_address(cw_t *cw, Rayc__Address *a)
{
  cw_fill_address(cw, a); /* drivers serve WaitOwnerExit on their CoreWorkerService port */
  return 0;
}

void cw_actor_owner_release(cw_t *cw)
{
  if (cw->is_worker)
    return;
  pthread_mutex_lock(&cw_proc.actor.mu);
  cw_call_list_t owners = cw_proc.actor.owner_waiters;
  cw_proc.actor.owner_waiters = (cw_call_list_t){0};
  cw_proc.actor.stopping = 1;
  pthread_mutex_unlock(&cw_proc.actor.mu);
  cw_call_list_reply_all(&owners);
}

/* ---- finding the GCS ---- */

/* The raylet starts workers with --session-dir DIR; DIR/address names the cluster's GCS. */
static char *gcs_from_session(void)
{
  char buf[8192], path[1100];
  FILE *f = fopen("/proc/self/cmdline", "r");
  if (!f)
    return NULL;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *dir = NULL;
  for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
    if (strcmp(buf + i, "--session-dir") == 0 && i + strlen(buf + i) + 1 < n)
      dir = buf + i + strlen(buf + i) + 1;
    else if (strncmp(buf + i, "--session-dir=", 14) == 0)
      dir = buf + i + 14;
  }
  if (!dir)
    return NULL;
  snprintf(path, sizeof(path), "%s/address", dir);
  char line[256];
  f = fopen(path, "r");
  if (!f)
    return NULL;
  char *got = fgets(line, sizeof(line), f);
  fclose(f);
  if (!got)
    return NULL;
  line[strcspn(line, "\r\n")] = '\0';
  return *line ? xstrdup(line) : NULL;
}

char *cw_actor_gcs_address(cw_t *cw)
{
  char *addr = cw->is_worker ? gcs_from_session() : NULL;
  const char *env = getenv("RAYC_ADDRESS");
  if (!addr && env && *env)
    addr = xstrdup(env);
  return addr;
}
