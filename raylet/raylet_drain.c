/*
 * Draining (NodeManagerService.DrainRaylet, sent by `rayc stop`): the node takes no new work and
 * leaves the cluster once its work is done, so that stopping it fails no task.
 *
 *  1. The raylet grants no new leases: queued and new requests go to other nodes (raylet_sched.c),
 *     or fail at once when no other node can run them. Its heartbeats say it drains, so the GCS
 *     leaves it out of the cluster view and other raylets stop spilling to it.
 *  2. Its workers are told (a node_draining frame): each answers its next PushTask with
 *     worker_exiting, and the owner then pushes no more tasks to it and returns the lease once the
 *     tasks it pushed are done. Tasks already pushed run to completion here, without a retry.
 *  3. When no task lease is left (actor workers do not count: the GCS restarts their actors
 *     elsewhere when the node is gone), or when the deadline passes, the raylet unregisters with
 *     drained set (the GCS marks the node DEAD: "drained: <reason>", not a failure) and shuts down.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>

enum { DRAIN_MAX_DEADLINE_MS = 24 * 3600 * 1000 };

int64_t raylet_drain_start(raylet_t *r, const char *reason, int64_t deadline_ms)
{
  if (r->stopping)
    return -1;
  int64_t now = now_ms();
  if (r->draining)
    return r->drain_deadline > now ? r->drain_deadline - now : 0;
  if (deadline_ms <= 0)
    deadline_ms = r->cfg.drain_deadline_ms;
  if (deadline_ms > DRAIN_MAX_DEADLINE_MS)
    deadline_ms = DRAIN_MAX_DEADLINE_MS;
  r->draining = now;
  r->drain_deadline = now + deadline_ms;
  free(r->drain_reason);
  r->drain_reason = xstrdup(reason && *reason ? reason : "requested");
  int leases = 0;
  for (const raylet_lease_t *l = r->leases; l; l = l->next)
    leases++;
  log_info("draining (%s): no new leases; %d lease%s may run for up to %lld ms", r->drain_reason, leases,
           leases == 1 ? "" : "s", (long long)deadline_ms);
  raylet_pool_notify_draining(r);
  raylet_lease_reroute_queue(r);
  r->last_heartbeat_ms = 0; /* tell the GCS now */
  raylet_gcs_heartbeat(r);
  return deadline_ms;
}

/* Leases of tasks still held (not those of actor workers, whose job id has its top bit set). */
static int drain_task_leases(const raylet_t *r)
{
  int n = 0;
  for (const raylet_lease_t *l = r->leases; l; l = l->next)
    n += !l->worker || !(l->worker->job.b[0] & 0x80);
  return n;
}

void raylet_drain_cron(raylet_t *r)
{
  if (!r->draining || r->drained || r->stopping)
    return;
  int left = drain_task_leases(r);
  int64_t now = now_ms();
  if (left > 0 && now < r->drain_deadline)
    return;
  if (left > 0)
    log_warn("drain deadline passed with %d lease%s still running: ending them", left, left == 1 ? "" : "s");
  log_info("drained after %lld ms: unregistering and shutting down", (long long)(now - r->draining));
  raylet_gcs_unregister(r, r->drain_reason, 1);
  r->drained = 1;
  raylet_shutdown(r, "drained");
}
