/*
 * Tasks blocked in get give their CPUs back (Ray's NotifyDirectCallTaskBlocked): a leased worker
 * whose task waits for objects tells the raylet (a task_blocked frame on its local connection),
 * and the lease's CPUs return to the node until the task runs again, so the tasks it waits for can
 * run even when every CPU is leased (recursive tasks would deadlock otherwise). When the task runs
 * again it takes them back at once, even if that oversubscribes the node for a while, as Ray does.
 */
#include "raylet/raylet.h"

#include "common/log.h"

static void blocked_adjust(raylet_t *r, double cpus)
{
  res_put_name(&r->available, "CPU", res_get_name(&r->available, "CPU") + cpus);
}

void raylet_lease_set_blocked(raylet_t *r, raylet_worker_t *w, int blocked)
{
  raylet_lease_t *l = w && w->state == WORKER_LEASED ? w->lease : NULL;
  if (!l)
    return;
  if (!blocked) {
    raylet_lease_unblock(r, l);
    return;
  }
  double cpus = res_get_name(&l->res, "CPU");
  if (l->blocked_cpus > 0 || cpus <= 0)
    return;
  l->blocked_cpus = cpus;
  blocked_adjust(r, cpus);
  log_debug("worker pid %d blocked in get: %g CPUs back to the node", (int)w->pid, cpus);
  raylet_dispatch(r);
}

void raylet_lease_unblock(raylet_t *r, raylet_lease_t *l)
{
  if (l->blocked_cpus <= 0)
    return;
  blocked_adjust(r, -l->blocked_cpus);
  l->blocked_cpus = 0;
}
