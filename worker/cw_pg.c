/*
 * Placement groups in the public API: creating, waiting for and removing groups (synchronous
 * calls to the GCS's PlacementGroupInfoGcsService), and the resource names tasks and actors of a
 * group ask for (Ray's: CPU_group_<i>_<pg> for bundle i, CPU_group_<pg> for any bundle), which
 * the raylets holding the bundles provide.
 */
#include "worker/cw_actor.h"
#include "worker/cw_proc.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PG_GCS_TIMEOUT_MS = 10000, PG_WAIT_DEFAULT_MS = 3600000 };

void cw_pg_res_name(const uint8_t *pg, int index, const char *name, char *out)
{
  char hex[2 * ID_PG_SIZE + 1];
  id_hex(pg, ID_PG_SIZE, hex);
  if (index >= 0)
    snprintf(out, CW_RES_NAME_MAX, "%s_group_%d_%s", name, index, hex);
  else
    snprintf(out, CW_RES_NAME_MAX, "%s_group_%s", name, hex);
}

/* A hash set (it was an array looked through twice per group: a driver that had made and removed
 * 10,000 groups compared 10,000 ids per group). Under cw->mu. */
struct cw_removed_pgs {
  hmap_t ids; /* id -> (void *)1 */
};

int cw_pg_is_removed(cw_t *cw, const uint8_t *pg)
{
  return cw->pg_removed && hmap_get(&cw->pg_removed->ids, pg, ID_PG_SIZE) != NULL;
}

void cw_pg_release(cw_t *cw)
{
  if (cw->pg_removed)
    hmap_release(&cw->pg_removed->ids);
  free(cw->pg_removed);
  cw->pg_removed = NULL;
}

/* Whether this process saw pg CREATED (and has not removed it): no call needed to wait for it. */
static int pg_known_created(cw_t *cw, const uint8_t *pg)
{
  size_t n = cw->npg_created < CW_PG_CREATED_KEPT ? cw->npg_created : CW_PG_CREATED_KEPT;
  for (size_t i = 0; i < n; i++)
    if (memcmp(cw->pg_created[i], pg, ID_PG_SIZE) == 0)
      return !cw_pg_is_removed(cw, pg);
  return 0;
}

char *rayc_placement_group_hex(const rayc_placement_group *pg, char *out)
{
  return id_hex(pg->id, RAYC_PG_ID_SIZE, out);
}

static int pg_gcs_call(cw_t *cw, const char *method, const ProtobufCMessage *req, int timeout_ms,
                       ProtobufCMessage **resp)
{
  rpc_channel_t *ch = cw_actors_gcs(cw);
  if (!ch)
    return RAYC_ENOT_CONNECTED;
  char *detail = NULL;
  /* through cw_gcs_call_on: a GCS restart (its calls cut with UNAVAILABLE) is waited out, as for
   * every other GCS call (found by the chaos suite: a wait cut by a GCS kill failed the driver) */
  int rc = cw_gcs_call_on(cw, ch, &rayc__placement_group_info_gcs_service__descriptor, method, req, timeout_ms, resp,
                          &detail);
  if (rc != 0)
    cw_set_error(rc, "%s", detail && *detail ? detail : rayc_strerror(rc));
  free(detail);
  return rc;
}

/* strategy is an int here: a caller may pass any value as the enum, and it is checked. */
static int pg_check_bundles(const rayc_bundle *bundles, size_t n, int strategy)
{
  if (!bundles || n == 0 || n > 1000)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "a placement group needs 1 to 1000 bundles");
  if (strategy < RAYC_PG_PACK || strategy > RAYC_PG_STRICT_SPREAD)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "unknown placement strategy %d", strategy);
  for (size_t i = 0; i < n; i++) {
    double sum = 0;
    if (bundles[i].nresources == 0 || bundles[i].nresources > 8 || !bundles[i].resources)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "bundle %zu needs 1 to 8 resources", i);
    for (size_t j = 0; j < bundles[i].nresources; j++) {
      const rayc_resource *r = &bundles[i].resources[j];
      if (!r->name || !*r->name || strlen(r->name) > 31 || strstr(r->name, "_group_") || !(r->amount >= 0))
        return cw_set_error(RAYC_EINVALID_ARGUMENT,
                            "bundle %zu: resource %zu needs a name of 1..31 bytes and an "
                            "amount >= 0",
                            i, j);
      sum += r->amount;
    }
    if (sum <= 0)
      return cw_set_error(RAYC_EINVALID_ARGUMENT, "bundle %zu asks for no resources", i);
  }
  return 0;
}

int rayc_placement_group_create(const rayc_bundle *bundles, size_t nbundles, rayc_pg_strategy strategy,
                                const char *name, rayc_placement_group *out)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!out)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_placement_group_create: out must not be NULL");
  int rc = pg_check_bundles(bundles, nbundles, strategy);
  if (rc != 0)
    return rc;
  /* Ray's layout: 14 unique bytes + the job id */
  uint8_t id[ID_PG_SIZE];
  id_random(id, ID_PG_SIZE - ID_JOB_SIZE);
  memcpy(id + ID_PG_SIZE - ID_JOB_SIZE, cw->job.b, ID_JOB_SIZE);
  Rayc__Bundle *b = xcalloc(nbundles, sizeof(*b));
  Rayc__Bundle **bp = xcalloc(nbundles, sizeof(*bp));
  size_t nres = 0;
  for (size_t i = 0; i < nbundles; i++)
    nres += bundles[i].nresources;
  Rayc__ResourceEntry *e = xcalloc(nres, sizeof(*e));
  Rayc__ResourceEntry **ep = xcalloc(nres, sizeof(*ep));
  size_t k = 0;
  for (size_t i = 0; i < nbundles; i++) {
    rayc__bundle__init(&b[i]);
    b[i].index = (int32_t)i;
    b[i].resources = ep + k;
    b[i].n_resources = bundles[i].nresources;
    for (size_t j = 0; j < bundles[i].nresources; j++, k++) {
      rayc__resource_entry__init(&e[k]);
      e[k].name = (char *)bundles[i].resources[j].name;
      e[k].amount = bundles[i].resources[j].amount;
      ep[k] = &e[k];
    }
    bp[i] = &b[i];
  }
  Rayc__PlacementGroupInfo info = RAYC__PLACEMENT_GROUP_INFO__INIT;
  info.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  info.name = (char *)(name ? name : "");
  info.strategy = (Rayc__PlacementStrategy)strategy;
  info.bundles = bp;
  info.n_bundles = nbundles;
  info.creator_job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  info.ray_namespace = (char *)"default";
  Rayc__CreatePlacementGroupRequest req = RAYC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group = &info;
  req.wait_ms = CW_PG_CREATE_WAIT_MS; /* placed by then usually: the wait after it needs no call */
  ProtobufCMessage *resp = NULL;
  rc = pg_gcs_call(cw, "CreatePlacementGroup", &req.base, PG_GCS_TIMEOUT_MS + CW_PG_CREATE_WAIT_MS, &resp);
  if (rc == 0 && resp && ((Rayc__CreatePlacementGroupReply *)resp)->created) {
    pthread_mutex_lock(&cw->mu);
    memcpy(cw->pg_created[cw->npg_created++ % CW_PG_CREATED_KEPT], id, ID_PG_SIZE);
    pthread_mutex_unlock(&cw->mu);
  }
  pb_free(resp);
  if (rc == 0)
    memcpy(out->id, id, ID_PG_SIZE);
  free(ep);
  free(e);
  free(bp);
  free(b);
  return rc;
}

int rayc_placement_group_wait(const rayc_placement_group *pg, int64_t timeout_ms)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!pg)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_placement_group_wait: pg must not be NULL");
  pthread_mutex_lock(&cw->mu);
  int known = pg_known_created(cw, pg->id);
  pthread_mutex_unlock(&cw->mu);
  if (known) /* the create's reply said CREATED */
    return 0;
  int64_t t = timeout_ms < 0 || timeout_ms > PG_WAIT_DEFAULT_MS ? PG_WAIT_DEFAULT_MS : timeout_ms;
  Rayc__WaitPlacementGroupUntilReadyRequest req = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
  req.placement_group_id = pb_bytes(pg->id, ID_PG_SIZE);
  req.timeout_ms = t > 0 ? (int32_t)t : 1;
  ProtobufCMessage *resp = NULL;
  /* the GCS answers TIMEOUT (with the reason) at the deadline; ours is later */
  int rc = pg_gcs_call(cw, "WaitPlacementGroupUntilReady", &req.base, (int)t + PG_GCS_TIMEOUT_MS, &resp);
  pb_free(resp);
  return rc;
}

int rayc_placement_group_remove(const rayc_placement_group *pg)
{
  cw_t *cw = cw_api();
  if (!cw)
    return RAYC_ENOT_CONNECTED;
  if (!pg)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_placement_group_remove: pg must not be NULL");
  Rayc__RemovePlacementGroupRequest req = RAYC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group_id = pb_bytes(pg->id, ID_PG_SIZE);
  ProtobufCMessage *resp = NULL;
  int rc = pg_gcs_call(cw, "RemovePlacementGroup", &req.base, PG_GCS_TIMEOUT_MS, &resp);
  pb_free(resp);
  if (rc == 0) { /* tasks of the group still queued here fail rather than wait for its resources */
    pthread_mutex_lock(&cw->mu);
    if (!cw->pg_removed) {
      cw->pg_removed = xcalloc(1, sizeof(*cw->pg_removed));
      hmap_init(&cw->pg_removed->ids);
    }
    hmap_put(&cw->pg_removed->ids, pg->id, ID_PG_SIZE, (void *)1);
    pthread_mutex_unlock(&cw->mu);
  }
  return rc;
}
