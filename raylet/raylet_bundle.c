/*
 * Placement-group bundles on this node (Ray's PlacementGroupResourceManager). The GCS reserves a
 * group in two phases: PrepareBundleResources sets the bundles' resources aside (taken from the
 * available set, all or nothing per request), CommitBundleResources turns them into the group's
 * own resources, as Ray names them:
 *
 *   R_group_<i>_<pg>      the amount of R in bundle i           (a task pinned to bundle i)
 *   R_group_<pg>          the sum over the group's bundles here (a task in any bundle)
 *   bundle_group_<i>_<pg>, bundle_group_<pg>   1000 per bundle  (a marker, so that a task asking
 *                                              for no resources still lands on the bundle's node)
 *
 * Tasks of the group ask for those names (the owner rewrites its request), so the ordinary
 * scheduler and the cluster view (totals travel on heartbeats) place them. CancelResourceReserve
 * kills the workers leased on the group's resources, deletes the names and gives the reserved
 * resources back; lease requests of a removed group then fail at once.
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BUNDLE_MARKER = 1000 };

static raylet_bundle_t *bundle_find(raylet_t *r, const uint8_t *pg, int index)
{
  for (raylet_bundle_t *b = r->bundles; b; b = b->next)
    if (b->index == index && memcmp(b->pg, pg, ID_PG_SIZE) == 0)
      return b;
  return NULL;
}

/* Checks one spec from the GCS and reads its resources. 0 or RAYC_EINVALID_ARGUMENT with *why. */
static int bundle_spec_read(const Rayc__BundleSpec *s, res_set_t *res, const char **why)
{
  if (s->placement_group_id.len != ID_PG_SIZE || s->bundle_index < 0 || s->bundle_index > 100000 ||
      s->n_resources > 8) {
    *why = "a bundle needs an 18-byte placement_group_id, an index >= 0 and at most 8 resources";
    return RAYC_EINVALID_ARGUMENT;
  }
  memset(res, 0, sizeof(*res));
  for (size_t i = 0; i < s->n_resources; i++) {
    const Rayc__ResourceEntry *e = s->resources[i];
    if (!e->name[0] || strlen(e->name) > 40 || !isfinite(e->amount) || e->amount < 0) {
      *why = "bundle resources need a name of 1..40 bytes and a finite amount >= 0";
      return RAYC_EINVALID_ARGUMENT;
    }
    res_put_name(res, e->name, res_get_name(res, e->name) + e->amount);
  }
  return 0;
}

/* A snapshot of the node's resources for the GCS, numbered after every earlier one (seq). */
static void fill_resources(raylet_t *r, Rayc__ResourceEntry ***avail, size_t *navail, Rayc__ResourceEntry ***total,
                           size_t *ntotal, int64_t *seq)
{
  *avail = res_to_pb(&r->available, navail);
  *total = res_to_pb(&r->total, ntotal);
  *seq = ++r->report_seq;
}

static void bundle_commit_all(raylet_t *r, Rayc__BundleSpec *const *specs, size_t n);

/* Fits and sets aside the bundles specs[0..n) of one group (checked already): all or nothing; with
 * commit, commits them too. Returns 1 when they are kept, 0 when they do not fit, -1 when the
 * node's resource sets have no room for the names a commit adds (PrepareBundleResourcesReply
 * bundles_full). */
static int bundle_prepare_group(raylet_t *r, Rayc__BundleSpec *const *specs, size_t n, int commit)
{
  res_set_t need, one;
  const char *why = NULL;
  int fresh = 0;
  memset(&need, 0, sizeof(need));
  for (size_t i = 0; i < n; i++) {
    if (bundle_find(r, specs[i]->placement_group_id.data, specs[i]->bundle_index))
      continue; /* prepared already: a retry */
    bundle_spec_read(specs[i], &one, &why);
    res_add(&need, &one);
    fresh++;
  }
  /* room for the names a commit adds: four per resource and bundle */
  int room = r->total.n + 4 * (need.n + 1) * fresh <= RES_MAX && r->available.n + 4 * (need.n + 1) * fresh <= RES_MAX;
  if (r->stopping || !res_fits(&r->available, &need))
    return 0;
  if (!room)
    return -1;
  for (size_t i = 0; i < n; i++) {
    const Rayc__BundleSpec *s = specs[i];
    if (bundle_find(r, s->placement_group_id.data, s->bundle_index))
      continue;
    raylet_bundle_t *b = xcalloc(1, sizeof(*b));
    memcpy(b->pg, s->placement_group_id.data, ID_PG_SIZE);
    b->index = s->bundle_index;
    bundle_spec_read(s, &b->res, &why);
    res_sub(&r->available, &b->res);
    b->next = r->bundles;
    r->bundles = b;
  }
  if (commit) /* the GCS put the whole attempt here: no second round trip */
    bundle_commit_all(r, specs, n);
  return 1;
}

void raylet_bundle_prepare(raylet_t *r, rpc_call_t *call, const Rayc__PrepareBundleResourcesRequest *req)
{
  res_set_t one;
  const char *why = NULL;
  for (size_t i = 0; i < req->n_returns; i++)
    if (req->returns[i].len != ID_PG_SIZE) {
      rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "PrepareBundleResources: returns must be 18-byte group ids");
      return;
    }
  for (size_t i = 0; i < req->n_bundles; i++)
    if (bundle_spec_read(req->bundles[i], &one, &why) != 0) {
      rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "PrepareBundleResources: %s", why);
      return;
    }
  /* the removed groups' returns first: the GCS counted them free when it chose this node */
  int returned = raylet_bundle_returns(r, req->returns, req->n_returns);
  Rayc__PrepareBundleResourcesReply rep = RAYC__PREPARE_BUNDLE_RESOURCES_REPLY__INIT;
  ProtobufCBinaryData *failed = xcalloc(req->n_bundles ? req->n_bundles : 1, sizeof(*failed));
  int kept = 0;
  for (size_t i = 0, j; i < req->n_bundles; i = j) { /* each group's bundles in a row, fitted on their own */
    const uint8_t *pg = req->bundles[i]->placement_group_id.data;
    for (j = i + 1; j < req->n_bundles && memcmp(req->bundles[j]->placement_group_id.data, pg, ID_PG_SIZE) == 0; j++)
      ;
    int got = bundle_prepare_group(r, req->bundles + i, j - i, req->commit);
    if (got > 0)
      kept++;
    else
      failed[rep.n_failed_groups++] = req->bundles[i]->placement_group_id;
    if (got < 0)
      rep.bundles_full = 1;
  }
  rep.success = rep.n_failed_groups == 0;
  rep.failed_groups = failed;
  rep.committed = req->commit && kept > 0;
  if (!rep.success) /* the GCS retries from the view: refresh it as soon as something frees */
    r->bundle_wanted = 1;
  log_debug("prepare %zu bundles: %d groups %s, %zu do not fit%s", req->n_bundles, kept,
            rep.committed ? "reserved and committed" : "reserved", rep.n_failed_groups,
            rep.bundles_full ? " (no room for more bundles' resource names)" : "");
  fill_resources(r, &rep.resources_available, &rep.n_resources_available, &rep.resources_total, &rep.n_resources_total,
                 &rep.report_seq);
  rpc_reply(call, &rep.base);
  free(failed);
  res_pb_free(rep.resources_available, rep.n_resources_available);
  res_pb_free(rep.resources_total, rep.n_resources_total);
  if (rep.committed || returned) /* requests waiting for the group's (or the returned) resources */
    raylet_dispatch(r);
}

static void bundle_group_res(const raylet_bundle_t *b, res_set_t *out);

/* Commits the prepared bundles given (each found here): their group resources join total and
 * available. Bundles committed already are skipped (a retry). */
static void bundle_commit_all(raylet_t *r, Rayc__BundleSpec *const *specs, size_t n)
{
  int added = 0;
  for (size_t i = 0; i < n; i++) {
    raylet_bundle_t *b = bundle_find(r, specs[i]->placement_group_id.data, specs[i]->bundle_index);
    if (!b || b->committed)
      continue;
    res_set_t g;
    bundle_group_res(b, &g);
    res_add(&r->total, &g);
    res_add(&r->available, &g);
    b->committed = 1;
    added++;
  }
  char hex[9];
  if (n)
    log_debug("placement group %s: %d bundles committed here", /* routine: debug (thousands a second) */
              id_short(specs[0]->placement_group_id.data, ID_PG_SIZE, hex), added);
  r->last_heartbeat_ms = 0; /* tell the GCS soon */
}

/* The group resources of bundle b: every name a commit adds, with its amount. */
static void bundle_group_res(const raylet_bundle_t *b, res_set_t *out)
{
  char hex[2 * ID_PG_SIZE + 1], name[RES_NAME_MAX];
  id_hex(b->pg, ID_PG_SIZE, hex);
  res_clear(out);
  for (uint32_t i = 0; i < b->res.n; i++) {
    snprintf(name, sizeof(name), "%s_group_%d_%s", res_name(b->res.id[i]), b->index, hex);
    res_put_name(out, name, b->res.amt[i]);
    snprintf(name, sizeof(name), "%s_group_%s", res_name(b->res.id[i]), hex);
    res_put_name(out, name, b->res.amt[i]);
  }
  snprintf(name, sizeof(name), "bundle_group_%d_%s", b->index, hex);
  res_put_name(out, name, BUNDLE_MARKER);
  snprintf(name, sizeof(name), "bundle_group_%s", hex);
  res_put_name(out, name, BUNDLE_MARKER);
}

void raylet_bundle_commit(raylet_t *r, rpc_call_t *call, const Rayc__CommitBundleResourcesRequest *req)
{
  res_set_t one;
  const char *why = NULL;
  for (size_t i = 0; i < req->n_bundles; i++) {
    const Rayc__BundleSpec *s = req->bundles[i];
    if (bundle_spec_read(s, &one, &why) != 0) {
      rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "CommitBundleResources: %s", why);
      return;
    }
    if (!bundle_find(r, s->placement_group_id.data, s->bundle_index)) {
      rpc_reply_error(call, RAYC_ENOT_FOUND, "CommitBundleResources: bundle %d was not prepared here", s->bundle_index);
      return;
    }
  }
  bundle_commit_all(r, req->bundles, req->n_bundles);
  Rayc__CommitBundleResourcesReply rep = RAYC__COMMIT_BUNDLE_RESOURCES_REPLY__INIT;
  fill_resources(r, &rep.resources_available, &rep.n_resources_available, &rep.resources_total, &rep.n_resources_total,
                 &rep.report_seq);
  rpc_reply(call, &rep.base);
  res_pb_free(rep.resources_available, rep.n_resources_available);
  res_pb_free(rep.resources_total, rep.n_resources_total);
  raylet_dispatch(r);
}

/* 1 when res names a resource of the group (hex) — of bundle index only, when index >= 0. */
static int res_uses_group(const res_set_t *res, const char *hex, int index)
{
  char tag[RES_NAME_MAX];
  if (index >= 0)
    snprintf(tag, sizeof(tag), "_group_%d_%s", index, hex);
  else
    snprintf(tag, sizeof(tag), "_group_%s", hex);
  for (uint32_t i = 0; i < res->n; i++) {
    const char *p = strstr(res_name(res->id[i]), index >= 0 ? tag : "_group_");
    if (p && (index >= 0 || strstr(p, hex)))
      return 1;
  }
  return 0;
}

static void remember_removed(raylet_t *r, const uint8_t *pg)
{
  if (raylet_bundle_pg_removed(r, pg))
    return;
  memcpy(r->removed_pgs[r->removed_next % RAYLET_REMOVED_PGS], pg, ID_PG_SIZE);
  r->removed_next++;
}

int raylet_bundle_pg_removed(const raylet_t *r, const uint8_t *pg)
{
  unsigned n = r->removed_next < RAYLET_REMOVED_PGS ? r->removed_next : RAYLET_REMOVED_PGS;
  for (unsigned i = 0; i < n; i++)
    if (memcmp(r->removed_pgs[i], pg, ID_PG_SIZE) == 0)
      return 1;
  return 0;
}

/* Fails the waiting lease requests of a removed group. */
static void fail_group_requests(raylet_t *r, const uint8_t *pg, const char *hex)
{
  for (raylet_request_t **pp = &r->queue; *pp;) {
    raylet_request_t *q = *pp;
    if (q->req->placement_group_id.len == ID_PG_SIZE && memcmp(q->req->placement_group_id.data, pg, ID_PG_SIZE) == 0) {
      *pp = q->next;
      rpc_reply_error(q->call, RAYC_EINFEASIBLE, "placement group %s was removed", hex);
      free(q);
    } else {
      pp = &q->next;
    }
  }
  for (raylet_infeasible_t **pp = &r->infeasible; *pp;) {
    raylet_infeasible_t *x = *pp;
    if (x->req->placement_group_id.len == ID_PG_SIZE && memcmp(x->req->placement_group_id.data, pg, ID_PG_SIZE) == 0) {
      *pp = x->next;
      rpc_reply_error(x->call, RAYC_EINFEASIBLE, "placement group %s was removed", hex);
      free(x);
    } else {
      pp = &x->next;
    }
  }
}

/* Takes bundle b's group resources out of total and available (names that reach zero go). */
static void bundle_uncommit(raylet_t *r, raylet_bundle_t *b)
{
  res_set_t g;
  bundle_group_res(b, &g);
  for (uint32_t i = 0; i < g.n; i++) {
    double t = res_get(&r->total, g.id[i]) - g.amt[i];
    double a = res_get(&r->available, g.id[i]) - g.amt[i];
    if (t <= RES_EPS) {
      res_del(&r->total, g.id[i]);
      res_del(&r->available, g.id[i]);
    } else {
      res_put(&r->total, g.id[i], t);
      res_put(&r->available, g.id[i], a < 0 ? 0 : a);
    }
  }
  b->committed = 0;
}

/* Returns group pg's bundles here (index -1: all of them, the group's waiting requests fail, and
 * it is remembered removed: always, or with `held` only when it held a bundle here, so that a
 * restarted GCS sending old returns again does not crowd the recent ones out of the list):
 * workers leased on them die first, their resources go back. Adds to *cancelled and *killed. */
static void bundle_return(raylet_t *r, const uint8_t *pg, int index, int held, int *cancelled, int *killed)
{
  char hex[2 * ID_PG_SIZE + 1];
  id_hex(pg, ID_PG_SIZE, hex);
  /* Workers leased on the group's resources die first: their leases give the resources back. */
  int k = 0, c = 0;
  for (raylet_lease_t *l = r->leases, *next; l; l = next) {
    next = l->next;
    if (res_uses_group(&l->res, hex, index)) {
      raylet_lease_kill(r, l);
      k++;
    }
  }
  for (raylet_bundle_t **pp = &r->bundles; *pp;) {
    raylet_bundle_t *b = *pp;
    if (memcmp(b->pg, pg, ID_PG_SIZE) != 0 || (index >= 0 && b->index != index)) {
      pp = &b->next;
      continue;
    }
    if (b->committed)
      bundle_uncommit(r, b);
    res_add(&r->available, &b->res);
    *pp = b->next;
    free(b);
    c++;
  }
  if (index < 0 && (c || !held))
    remember_removed(r, pg);
  if (index < 0)
    fail_group_requests(r, pg, hex);
  if (c || k) /* workers killed is news; a plain return is routine */
    log_msg(k ? LOG_INFO : LOG_DEBUG, "placement group %.8s: %d bundles returned here, %d leased workers killed", hex,
            c, k);
  *cancelled += c;
  *killed += k;
}

int raylet_bundle_returns(raylet_t *r, ProtobufCBinaryData *ids, size_t n)
{
  int cancelled = 0, killed = 0;
  for (size_t i = 0; i < n; i++)
    if (ids[i].len == ID_PG_SIZE)
      bundle_return(r, ids[i].data, -1, 1, &cancelled, &killed);
  return cancelled;
}

void raylet_bundle_cancel(raylet_t *r, rpc_call_t *call, const Rayc__CancelResourceReserveRequest *req)
{
  int bad = req->placement_group_id.len != ID_PG_SIZE || req->bundle_index < -1;
  for (size_t i = 0; i < req->n_more_groups; i++)
    bad |= req->more_groups[i].len != ID_PG_SIZE;
  if (bad) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT,
                    "CancelResourceReserve: placement_group_id and more_groups must be 18 bytes each and "
                    "bundle_index -1 or more");
    return;
  }
  int cancelled = 0, killed = 0;
  bundle_return(r, req->placement_group_id.data, req->bundle_index, 0, &cancelled, &killed);
  cancelled += raylet_bundle_returns(r, req->more_groups, req->n_more_groups);
  Rayc__CancelResourceReserveReply rep = RAYC__CANCEL_RESOURCE_RESERVE_REPLY__INIT;
  rep.cancelled = cancelled;
  fill_resources(r, &rep.resources_available, &rep.n_resources_available, &rep.resources_total, &rep.n_resources_total,
                 &rep.report_seq);
  rpc_reply(call, &rep.base);
  res_pb_free(rep.resources_available, rep.n_resources_available);
  res_pb_free(rep.resources_total, rep.n_resources_total);
  r->last_heartbeat_ms = 0;
  raylet_dispatch(r);
}

void raylet_bundle_free(raylet_t *r)
{
  while (r->bundles) {
    raylet_bundle_t *b = r->bundles;
    r->bundles = b->next;
    free(b);
  }
}
