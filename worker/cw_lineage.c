/*
 * Lineage reconstruction. A finished task whose results went to a store is kept (its spec and its
 * arguments, which stay referenced) for as long as any of its results is alive. When every copy of
 * such a result is lost — its node died, or its store lost it — the owner re-runs the task, first
 * reconstructing any of its arguments that were lost too, while the task has retries left
 * (max_retries). Results that travel inline live in the owner and are never lost; objects made by
 * rayc_put have no lineage and fail with OBJECT_LOST.
 *
 * Everything here runs with cw->mu held.
 */
#include "worker/cw.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

void cw_lineage_keep_or_free(cw_t *cw, cw_task_t *t)
{
  if (hmap_get(&cw->tasks, t->id.b, ID_TASK_SIZE) == t)
    hmap_del(&cw->tasks, t->id.b, ID_TASK_SIZE);
  t->live_returns = 0;
  for (int i = 0; i < t->num_returns; i++) {
    id_object_t id = id_object_for_task(t->id, (uint32_t)i + 1);
    cw_object_t *o = cw_obj_get(cw, &id);
    if (o && o->state == OBJ_IN_STORE && !o->lineage) {
      o->lineage = t;
      t->live_returns++;
    }
  }
  if (t->live_returns == 0)
    cw_task_free(cw, t);
}

void cw_lineage_drop(cw_t *cw, cw_object_t *o)
{
  cw_task_t *t = o->lineage;
  o->lineage = NULL;
  if (t && --t->live_returns == 0)
    cw_task_free(cw, t);
}

/* Waits t on argument object a, reconstructing it first if its local copy is gone. */
static int lineage_check_arg(cw_t *cw, cw_task_t *t, cw_object_t *a)
{
  if (a->state != OBJ_IN_STORE || memcmp(a->node.b, cw->node_id.b, ID_NODE_SIZE) != 0 ||
      store_client_contains(cw->store, a->id.b) != 0)
    return 0;
  int rc = cw_reconstruct(cw, a);
  if (rc != 0)
    return rc;
  if (a->nwaiters == a->capwaiters) {
    a->capwaiters = a->capwaiters ? 2 * a->capwaiters : 4;
    a->waiters = xrealloc(a->waiters, a->capwaiters * sizeof(*a->waiters));
  }
  a->waiters[a->nwaiters++] = t;
  t->deps_pending++;
  return 0;
}

int cw_reconstruct(cw_t *cw, cw_object_t *o)
{
  char hex[9];
  cw_task_t *t = o->lineage;
  id_short(o->id.b, ID_OBJECT_SIZE, hex);
  if (!t)
    return cw_set_error(RAYC_EOBJECT_LOST, "object %s was lost and cannot be rebuilt: it was not made by a task", hex);
  if (t->attempts_left <= 0)
    return cw_set_error(RAYC_EOBJECT_LOST, "object %s was lost and task %s that made it has no retries left", hex,
                        t->name);
  log_warn("object %s was lost: re-running task %s to rebuild it", hex, t->name);
  t->attempts_left--;
  t->attempt++;
  t->lease = NULL;
  for (int i = 0; i < t->num_returns; i++) {
    id_object_t id = id_object_for_task(t->id, (uint32_t)i + 1);
    cw_object_t *r = cw_obj_get(cw, &id);
    if (!r || r->lineage != t)
      continue;
    r->lineage = NULL;
    r->state = OBJ_PENDING;
    free(r->location);
    r->location = NULL;
  }
  t->live_returns = 0;
  hmap_put(&cw->tasks, t->id.b, ID_TASK_SIZE, t);
  for (size_t i = 0; i < t->nargs; i++) {
    cw_object_t *a = t->args[i].value ? NULL : cw_obj_get(cw, &t->args[i].ref);
    if (a && lineage_check_arg(cw, t, a) != 0)
      log_warn("argument %zu of task %s is lost for good: the re-run will fail", i, t->name);
  }
  if (t->deps_pending == 0)
    cw_task_ready(cw, t);
  return 0;
}
