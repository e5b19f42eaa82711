/*
 * An idle lease goes back at once when other owners wait for workers (issue 17).
 *
 * When a lease request waits at a raylet for resources that other owners' leases hold, the raylet
 * sends each such lease's worker a lease_wanted frame (raylet_lease_want, once per lease). The
 * worker flags its next PushTask reply (cw_exec.c), which covers a lease with tasks in flight; and
 * it tells the owner that last pushed it a normal task at once (LeaseWanted), which covers a lease
 * that is idle right then and would otherwise be held CW_LEASE_IDLE_MS for more tasks. The owner
 * marks the lease wanted and returns it now if nothing is in flight or queued for its class, else
 * when its last task is done (cw_push_done). The owner named may no longer hold a lease on this
 * worker (the lease went back and another owner's came): it finds none and answers OK.
 */
#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "proto/core_worker.pb-c.h"
#include "worker/cw.h"
#include "worker/cw_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cw_lease_idle_ms(void)
{
  const char *v = getenv("RAYC_LEASE_IDLE_MS");
  long ms = v && *v ? strtol(v, NULL, 10) : -1;
  return ms >= 0 && ms <= 3600 * 1000 ? (int)ms : CW_LEASE_IDLE_MS;
}

void cw_lease_note_owner(const Rayc__TaskSpec *spec)
{
  if (!spec || spec->type != RAYC__TASK_TYPE__NORMAL_TASK || !spec->caller || !spec->caller->ip ||
      !spec->caller->ip[0] || spec->caller->port <= 0)
    return;
  char *owner = cw_proc.exec.owner;
  size_t n = strlen(spec->caller->ip);
  /* the common case: the same owner as the last task, nothing to write */
  if (strncmp(owner, spec->caller->ip, n) == 0 && owner[n] == ':' && atoi(owner + n + 1) == spec->caller->port)
    return;
  snprintf(owner, sizeof(cw_proc.exec.owner), "%s:%d", spec->caller->ip, (int)spec->caller->port);
}

static void cw_lease_wanted_sent(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0)
    log_debug("LeaseWanted not delivered to the lease's owner: %s (%s)", rayc_strerror(status), detail ? detail : "");
  pb_free(resp);
}

void cw_lease_wanted_tell(cw_t *cw)
{
  __atomic_store_n(&cw->lease_wanted, 1, __ATOMIC_RELAXED);
  char owner[sizeof(cw_proc.exec.owner)];
  pthread_mutex_lock(&cw_proc.exec.mu);
  memcpy(owner, cw_proc.exec.owner, sizeof(owner));
  pthread_mutex_unlock(&cw_proc.exec.mu);
  if (!owner[0] || !cw->client)
    return; /* no task pushed yet: the first reply carries the flag */
  rpc_channel_t *ch = rpc_channel_get(cw->client, owner);
  Rayc__LeaseWantedRequest req = RAYC__LEASE_WANTED_REQUEST__INIT;
  req.worker_id = pb_bytes(cw->worker_id.b, ID_WORKER_SIZE);
  if (!ch || rpc_call(ch, &rayc__core_worker_service__descriptor, "LeaseWanted", &req.base, 10000, cw_lease_wanted_sent,
                      NULL) != 0)
    log_debug("could not tell %s that its lease is wanted", owner);
}

void cw_on_lease_wanted(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  cw_t *cw = ctx;
  const Rayc__LeaseWantedRequest *req = (const Rayc__LeaseWantedRequest *)m;
  pthread_mutex_lock(&cw->mu);
  for (cw_class_t *c = cw->classes; c; c = c->next) {
    for (cw_lease_t *l = c->leases; l; l = l->next) {
      if (memcmp(l->worker_id.b, req->worker_id.data, ID_WORKER_SIZE) != 0)
        continue;
      l->wanted = 1;
      if (l->in_flight == 0 && !c->head && !cw->stopping)
        cw_lease_remove(cw, l, l->dead);
      goto out;
    }
  }
out:
  pthread_mutex_unlock(&cw->mu);
  rpc_reply(call, NULL);
}
