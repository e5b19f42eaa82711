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

#include <errno.h>
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

/* What this process knows of its groups, under cw->mu. An unnamed group's create is sent without
 * waiting for its answer (Ray's benchmark creates 100 groups, then waits for them, then removes
 * them: one synchronous create each made the creates a queue of round trips); the answer, held by
 * the GCS until the group is CREATED (CW_PG_CREATE_WAIT_MS at most), lands in `created`, and
 * rayc_placement_group_wait and _remove settle a create still in flight first. */
struct cw_pgs {
  hmap_t removed;      /* id -> (void *)1: removed by this process (it was an array looked through twice per group) */
  hmap_t created;      /* id -> (void *)1: a create's answer said CREATED: waiting needs no call */
  hmap_t creating;     /* id -> pg_creating_t: creates sent without waiting, not settled yet */
  size_t in_flight;    /* creates whose answer has not come */
  pthread_cond_t cv;   /* a create's answer came */
};

typedef struct pg_creating {
  cw_t *cw;
  uint8_t id[ID_PG_SIZE];
  int done, rc;    /* the answer came; its status (failed: sent again by whoever settles it) */
  uint8_t *req;    /* the packed request, for that retry (the GCS treats a known id as a retry) */
  size_t req_len;
} pg_creating_t;

enum { PG_CREATED_KEPT = 100000 }; /* past this many unremoved groups seen CREATED, forget them all */

static struct cw_pgs *pgs_get(cw_t *cw)
{
  if (!cw->pgs) {
    cw->pgs = xcalloc(1, sizeof(*cw->pgs));
    hmap_init(&cw->pgs->removed);
    hmap_init(&cw->pgs->created);
    hmap_init(&cw->pgs->creating);
    pthread_cond_init(&cw->pgs->cv, NULL);
  }
  return cw->pgs;
}

int cw_pg_is_removed(cw_t *cw, const uint8_t *pg)
{
  return cw->pgs && hmap_get(&cw->pgs->removed, pg, ID_PG_SIZE) != NULL;
}

static void creating_free(pg_creating_t *e)
{
  if (e) {
    free(e->req);
    free(e);
  }
}

void cw_pg_release(cw_t *cw)
{
  struct cw_pgs *p = cw->pgs;
  if (!p)
    return;
  for (hmap_iter_t it = hmap_iter(&p->creating); hmap_next(&it);)
    creating_free(it.value);
  hmap_release(&p->creating);
  hmap_release(&p->created);
  hmap_release(&p->removed);
  pthread_cond_destroy(&p->cv);
  free(p);
  cw->pgs = NULL;
}

void cw_pg_drain(cw_t *cw, int ms)
{
  struct timespec dl = realtime_deadline_ms(ms);
  pthread_mutex_lock(&cw->mu);
  while (cw->pgs && cw->pgs->in_flight > 0)
    if (pthread_cond_timedwait(&cw->pgs->cv, &cw->mu, &dl) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&cw->mu);
}

/* Records that pg was seen CREATED (cw->mu held). */
static void pg_mark_created(cw_t *cw, const uint8_t *pg)
{
  struct cw_pgs *p = pgs_get(cw);
  if (p->created.count >= PG_CREATED_KEPT) {
    hmap_release(&p->created);
    hmap_init(&p->created);
  }
  hmap_put(&p->created, pg, ID_PG_SIZE, (void *)1);
}

/* Whether this process saw pg CREATED (and has not removed it): no call needed to wait for it. */
static int pg_known_created(cw_t *cw, const uint8_t *pg)
{
  return cw->pgs && hmap_get(&cw->pgs->created, pg, ID_PG_SIZE) && !cw_pg_is_removed(cw, pg);
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

/* Records a create's answer (cw->mu held). */
static void pg_create_answered(cw_t *cw, const uint8_t *id, ProtobufCMessage *resp)
{
  if (resp && ((Rayc__CreatePlacementGroupReply *)resp)->created)
    pg_mark_created(cw, id);
}

static int pg_create_sync(cw_t *cw, const Rayc__CreatePlacementGroupRequest *req)
{
  ProtobufCMessage *resp = NULL;
  int rc = pg_gcs_call(cw, "CreatePlacementGroup", &req->base, PG_GCS_TIMEOUT_MS + CW_PG_CREATE_WAIT_MS, &resp);
  if (rc == 0) {
    pthread_mutex_lock(&cw->mu);
    pg_create_answered(cw, req->placement_group->placement_group_id.data, resp);
    pthread_mutex_unlock(&cw->mu);
  }
  pb_free(resp);
  return rc;
}

/* The answer to a create sent without waiting (on the client's thread). A failed one stays in
 * `creating` for whoever settles it to send again. */
static void pg_create_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  pg_creating_t *e = arg;
  cw_t *cw = e->cw;
  pthread_mutex_lock(&cw->mu);
  struct cw_pgs *p = cw->pgs;
  p->in_flight--;
  e->done = 1;
  e->rc = status;
  if (status == 0) {
    pg_create_answered(cw, e->id, resp);
    hmap_del(&p->creating, e->id, ID_PG_SIZE);
    creating_free(e);
  } else {
    char hex[2 * ID_PG_SIZE + 1];
    log_warn("placement group %s: the create sent ahead failed (%s: %s); sent again when waited for or removed",
             id_hex(e->id, ID_PG_SIZE, hex), rayc_strerror(status), detail ? detail : "");
  }
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&cw->mu);
  pb_free(resp);
}

/* Sends the create and returns without its answer (at most CW_PG_CREATES_IN_FLIGHT at once). */
static int pg_create_async(cw_t *cw, const Rayc__CreatePlacementGroupRequest *req, const uint8_t *id)
{
  rpc_channel_t *ch = cw_actors_gcs(cw);
  if (!ch)
    return RAYC_ENOT_CONNECTED;
  pg_creating_t *e = xcalloc(1, sizeof(*e));
  e->cw = cw;
  memcpy(e->id, id, ID_PG_SIZE);
  e->req_len = protobuf_c_message_get_packed_size(&req->base);
  e->req = xmalloc(e->req_len ? e->req_len : 1);
  protobuf_c_message_pack(&req->base, e->req);
  pthread_mutex_lock(&cw->mu);
  struct cw_pgs *p = pgs_get(cw);
  while (p->in_flight >= CW_PG_CREATES_IN_FLIGHT)
    pthread_cond_wait(&p->cv, &cw->mu);
  p->in_flight++;
  hmap_put(&p->creating, id, ID_PG_SIZE, e);
  pthread_mutex_unlock(&cw->mu);
  if (rpc_call(ch, &rayc__placement_group_info_gcs_service__descriptor, "CreatePlacementGroup", &req->base,
               PG_GCS_TIMEOUT_MS + CW_PG_CREATE_WAIT_MS, pg_create_done, e) == 0)
    return 0;
  pthread_mutex_lock(&cw->mu); /* not sent (the client is closing): the answer never comes */
  p->in_flight--;
  hmap_del(&p->creating, id, ID_PG_SIZE);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&cw->mu);
  creating_free(e);
  return pg_create_sync(cw, req);
}

/* Whether pg's create was sent ahead and is not settled (in flight, or failed). */
static int pg_unsettled(cw_t *cw, const uint8_t *pg)
{
  pthread_mutex_lock(&cw->mu);
  int r = cw->pgs && hmap_get(&cw->pgs->creating, pg, ID_PG_SIZE) != NULL;
  pthread_mutex_unlock(&cw->mu);
  return r;
}

/* Waits for pg's create sent ahead, if any, and sends it again (synchronously, riding out a GCS
 * restart) when it failed. 0 or the retry's error. */
static int pg_settle(cw_t *cw, const uint8_t *pg)
{
  pthread_mutex_lock(&cw->mu);
  pg_creating_t *e = NULL;
  while (cw->pgs && (e = hmap_get(&cw->pgs->creating, pg, ID_PG_SIZE)) && !e->done)
    pthread_cond_wait(&cw->pgs->cv, &cw->mu);
  if (e)
    hmap_del(&cw->pgs->creating, pg, ID_PG_SIZE);
  pthread_mutex_unlock(&cw->mu);
  if (!e)
    return 0;
  Rayc__CreatePlacementGroupRequest *req = rayc__create_placement_group_request__unpack(NULL, e->req_len, e->req);
  int rc = req ? pg_create_sync(cw, req) : RAYC_EINTERNAL;
  pb_free(req ? &req->base : NULL);
  creating_free(e);
  return rc;
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
  /* a named group is created before this returns (another process may look it up by name at once) */
  rc = name && *name ? pg_create_sync(cw, &req) : pg_create_async(cw, &req, id);
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
  int rc = pg_settle(cw, pg->id);
  if (rc != 0)
    return rc;
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
  rc = pg_gcs_call(cw, "WaitPlacementGroupUntilReady", &req.base, (int)t + PG_GCS_TIMEOUT_MS, &resp);
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
  resp = NULL;
  /* its create, sent ahead, had not reached the GCS (or failed): let it land, then remove */
  if (rc == RAYC_ENOT_FOUND && pg_unsettled(cw, pg->id) && (rc = pg_settle(cw, pg->id)) == 0) {
    rc = pg_gcs_call(cw, "RemovePlacementGroup", &req.base, PG_GCS_TIMEOUT_MS, &resp);
    pb_free(resp);
  }
  if (rc == 0) { /* tasks of the group still queued here fail rather than wait for its resources */
    pthread_mutex_lock(&cw->mu);
    struct cw_pgs *p = pgs_get(cw);
    hmap_put(&p->removed, pg->id, ID_PG_SIZE, (void *)1);
    hmap_del(&p->created, pg->id, ID_PG_SIZE);
    pthread_mutex_unlock(&cw->mu);
  }
  return rc;
}
