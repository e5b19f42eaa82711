/* The GCS placement-group manager and its RPC handlers. See gcs_pg.h. */
#include "gcs/gcs_pg.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GCS_PG_TABLE "PG"

enum {
  PG_RETRY_MS = 200, /* no feasible placement, or a reservation failed: try again after this */
  PG_RPC_MS = 10000, /* prepare / commit / cancel deadline */
  PG_WAIT_MAX_MS = 3600000,
  PG_MAX_BUNDLES = 1000,
  PG_RES_MAX = 200,
};

static const char *pg_state_name(Rayc__PlacementGroupState st)
{
  static const char *names[] = {"PENDING", "CREATED", "REMOVED", "RESCHEDULING"};
  return (unsigned)st < 4 ? names[st] : "UNKNOWN";
}

static const char *pg_strategy_name(Rayc__PlacementStrategy st)
{
  static const char *names[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
  return (unsigned)st < 4 ? names[st] : "UNKNOWN";
}

static char *pg_hex(const gcs_pg_t *g, char *out)
{
  return id_hex(g->id, ID_PG_SIZE, out);
}

/* ---- small resource sets (names borrowed) ---- */

typedef struct pg_res {
  int n;
  const char *name[PG_RES_MAX];
  double amt[PG_RES_MAX];
} pg_res_t;

static double res_get(const pg_res_t *r, const char *name)
{
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->name[i], name) == 0)
      return r->amt[i];
  return 0;
}

static void res_add(pg_res_t *r, const char *name, double amt)
{
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->name[i], name) == 0) {
      r->amt[i] += amt;
      return;
    }
  if (r->n < PG_RES_MAX) {
    r->name[r->n] = name;
    r->amt[r->n++] = amt;
  }
}

static void res_from_pb(pg_res_t *r, Rayc__ResourceEntry **e, size_t n)
{
  r->n = 0;
  for (size_t i = 0; i < n; i++)
    res_add(r, e[i]->name, e[i]->amount);
}

static int bundle_fits(const pg_res_t *avail, const Rayc__Bundle *b, double scale)
{
  for (size_t i = 0; i < b->n_resources; i++)
    if (b->resources[i]->amount > 1e-9 &&
        res_get(avail, b->resources[i]->name) + 1e-9 < b->resources[i]->amount * scale)
      return 0;
  return 1;
}

static void bundle_take(pg_res_t *avail, const Rayc__Bundle *b)
{
  for (size_t i = 0; i < b->n_resources; i++)
    res_add(avail, b->resources[i]->name, -b->resources[i]->amount);
}

/* ---- persistence, state ---- */

static void pg_store(gcs_pgs_t *m, gcs_pg_t *g)
{
  int rc = gcs_store_put_msg(m->s->store, GCS_PG_TABLE, g->id, ID_PG_SIZE, &g->info->base);
  if (rc < 0)
    log_error("placement group table: storing a group failed: %s", rayc_strerror(rc));
}

static void pg_set_detail(gcs_pg_t *g, const char *detail)
{
  if (g->info->state_detail != protobuf_c_empty_string)
    free(g->info->state_detail);
  g->info->state_detail = detail && *detail ? xstrdup(detail) : (char *)protobuf_c_empty_string;
}

static void pg_set_node(Rayc__Bundle *b, const id_node_t *node)
{
  free(b->node_id.data);
  b->node_id.data = node ? xmemdup(node->b, ID_NODE_SIZE) : NULL;
  b->node_id.len = node ? ID_NODE_SIZE : 0;
}

static void pg_answer_waiters(gcs_pgs_t *m, gcs_pg_t *g)
{
  gcs_pg_waiter_t *w = g->waiters;
  g->waiters = NULL;
  char hex[2 * ID_PG_SIZE + 1];
  while (w) {
    gcs_pg_waiter_t *next = w->next;
    if (g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED) {
      Rayc__WaitPlacementGroupUntilReadyReply rep = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REPLY__INIT;
      gcs_server_reply(m->s, w->call, &rep.base);
    } else {
      rpc_reply_error(w->call, RAYC_ENOT_FOUND, "placement group %s was removed%s%s", pg_hex(g, hex),
                      *g->info->state_detail ? ": " : "", g->info->state_detail);
    }
    free(w);
    w = next;
  }
}

static void pg_set_state(gcs_pgs_t *m, gcs_pg_t *g, Rayc__PlacementGroupState st, const char *detail)
{
  char hex[2 * ID_PG_SIZE + 1];
  if (g->info->state != st)
    log_info("placement group %s (%s): %s -> %s%s%s", pg_hex(g, hex), *g->info->name ? g->info->name : "unnamed",
             pg_state_name(g->info->state), pg_state_name(st), detail ? ": " : "", detail ? detail : "");
  g->info->state = st;
  if (detail || st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED)
    pg_set_detail(g, detail);
  if (st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED)
    g->info->ready_time_ms = wall_ms();
  pg_store(m, g);
  if (st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED || st == RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED)
    pg_answer_waiters(m, g);
}

static int pg_live(const gcs_pg_t *g)
{
  return g->info->state != RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED;
}

static void pg_free(gcs_pg_t *g)
{
  pb_free(g->info);
  free(g->try_node);
  free(g->trying);
  free(g);
}

static gcs_pg_t *pg_new(Rayc__PlacementGroupInfo *info)
{
  gcs_pg_t *g = xcalloc(1, sizeof(*g));
  memcpy(g->id, info->placement_group_id.data, ID_PG_SIZE);
  g->info = info;
  size_t n = info->n_bundles ? info->n_bundles : 1;
  g->try_node = xcalloc(n, sizeof(*g->try_node));
  g->trying = xcalloc(n, 1);
  return g;
}

/* ---- talking to raylets ---- */

typedef struct pg_step {
  gcs_pgs_t *m;
  uint8_t id[ID_PG_SIZE];
  uint32_t gen;
  id_node_t node;
} pg_step_t;

static pg_step_t *step_new(gcs_pgs_t *m, const gcs_pg_t *g, const id_node_t *node)
{
  pg_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  memcpy(st->id, g->id, ID_PG_SIZE);
  st->gen = g->gen;
  st->node = *node;
  return st;
}

static gcs_node_t *pg_alive_node(gcs_pgs_t *m, const id_node_t *id)
{
  gcs_node_t *n = gcs_nodes_find(&m->s->nodes, id->b, ID_NODE_SIZE);
  return n && n->state == GCS_NODE_ALIVE && n->info && n->info->raylet_port > 0 ? n : NULL;
}

static rpc_channel_t *pg_raylet(gcs_pgs_t *m, const gcs_node_t *n)
{
  char target[96];
  int v6 = strchr(n->info->ip, ':') != NULL;
  snprintf(target, sizeof(target), "%s%s%s:%d", v6 ? "[" : "", n->info->ip, v6 ? "]" : "", n->info->raylet_port);
  return rpc_channel_get(m->client, target);
}

/* A raylet's answer carries its resources: fresher than its last heartbeat. */
static void pg_node_resources(gcs_pgs_t *m, const id_node_t *id, Rayc__ResourceEntry **avail, size_t navail,
                              Rayc__ResourceEntry **total, size_t ntotal)
{
  gcs_node_t *n = pg_alive_node(m, id);
  if (n && ntotal > 0)
    gcs_nodes_set_resources(&m->s->nodes, n, avail, navail, total, ntotal);
}

static void pg_kick(gcs_pgs_t *m);

static void cancel_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  pg_step_t *st = arg;
  Rayc__CancelResourceReserveReply *rep = (Rayc__CancelResourceReserveReply *)resp;
  if (status == 0 && !st->m->stopping) {
    pg_node_resources(st->m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                      rep->n_resources_total);
    if (rep->cancelled > 0) /* resources came back: groups waiting for them try now */
      pg_kick(st->m);
  } else if (status != 0 && !st->m->stopping)
    log_debug("CancelResourceReserve failed: %s (%s)", rayc_strerror(status), detail ? detail : "");
  pb_free(resp);
  free(st);
}

/* Asks a node to return the group's bundle index (-1: all of the group's bundles there). */
static void pg_cancel_on(gcs_pgs_t *m, const gcs_pg_t *g, const id_node_t *node, int index)
{
  gcs_node_t *n = pg_alive_node(m, node);
  if (!n || m->stopping)
    return;
  Rayc__CancelResourceReserveRequest req = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  req.placement_group_id = pb_bytes(g->id, ID_PG_SIZE);
  req.bundle_index = index;
  pg_step_t *st = step_new(m, g, node);
  if (rpc_call(pg_raylet(m, n), &rayc__node_manager_service__descriptor, "CancelResourceReserve", &req.base, PG_RPC_MS,
               cancel_done, st) != 0)
    free(st);
}

/* ---- choosing nodes ---- */

typedef struct pg_cand {
  gcs_node_t *n;
  pg_res_t avail;
  int count; /* bundles of this group on it (committed, or chosen in this pass) */
} pg_cand_t;

static int pg_same_node(const Rayc__Bundle *b, const gcs_node_t *n)
{
  return b->node_id.len == ID_NODE_SIZE && memcmp(b->node_id.data, n->id.b, ID_NODE_SIZE) == 0;
}

/* The alive nodes with their free resources, starting at the round-robin offset; *nc is set. */
static pg_cand_t *pg_cands(gcs_pgs_t *m, const gcs_pg_t *g, int *nc)
{
  gcs_nodes_t *t = &m->s->nodes;
  pg_cand_t *c = xcalloc(t->n ? t->n : 1, sizeof(*c));
  *nc = 0;
  for (size_t k = 0; k < t->n; k++) {
    gcs_node_t *n = t->v[(m->rr + k) % t->n];
    if (n->state != GCS_NODE_ALIVE || !n->info || n->info->raylet_port <= 0)
      continue;
    pg_cand_t *x = &c[(*nc)++];
    x->n = n;
    if (n->hb)
      res_from_pb(&x->avail, n->hb->resources_available, n->hb->n_resources_available);
    else
      res_from_pb(&x->avail, n->info->resources_total, n->info->n_resources_total);
    for (size_t i = 0; i < g->info->n_bundles; i++)
      x->count += pg_same_node(g->info->bundles[i], n);
  }
  m->rr++;
  return c;
}

/* PACK, STRICT_PACK: the one node that fits every bundle left, preferring the one holding the
 * group's other bundles (STRICT_PACK: only that one, if any). -1 when none fits. */
static int pg_pick_one_node(const gcs_pg_t *g, const pg_cand_t *c, int nc)
{
  int anchored = 0, best = -1;
  for (int k = 0; k < nc; k++)
    anchored |= c[k].count > 0;
  for (int k = 0; k < nc; k++) {
    if (g->info->strategy == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK && anchored && c[k].count == 0)
      continue;
    pg_res_t a = c[k].avail;
    int ok = 1;
    for (size_t i = 0; i < g->info->n_bundles && ok; i++) {
      if (g->info->bundles[i]->node_id.len)
        continue;
      ok = bundle_fits(&a, g->info->bundles[i], 1);
      bundle_take(&a, g->info->bundles[i]);
    }
    if (ok && (best < 0 || c[k].count > c[best].count))
      best = k;
  }
  return best;
}

/* PACK (fallback), SPREAD, STRICT_SPREAD: a node per bundle left, each where it fits with the most
 * (PACK) or fewest (SPREAD) of the group's bundles, or none (STRICT_SPREAD). Returns the first
 * bundle that fits nowhere, or -1. */
static int pg_pick_each(gcs_pg_t *g, pg_cand_t *c, int nc)
{
  Rayc__PlacementStrategy strat = g->info->strategy;
  for (size_t i = 0; i < g->info->n_bundles; i++) {
    const Rayc__Bundle *b = g->info->bundles[i];
    if (b->node_id.len || g->trying[i])
      continue;
    int best = -1;
    for (int k = 0; k < nc; k++) {
      if (!bundle_fits(&c[k].avail, b, 1) || (strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD && c[k].count > 0))
        continue;
      if (best < 0 ||
          (strat == RAYC__PLACEMENT_STRATEGY__PG_PACK ? c[k].count > c[best].count : c[k].count < c[best].count))
        best = k;
    }
    if (best < 0)
      return (int)i;
    bundle_take(&c[best].avail, b);
    c[best].count++;
    g->trying[i] = 1;
    g->try_node[i] = c[best].n->id;
  }
  return -1;
}

/* Why bundle bad fits nowhere (new). */
static char *pg_why_bundle(const gcs_pg_t *g, int bad, int nc)
{
  char res[256];
  size_t off = 0;
  res[0] = '\0';
  const Rayc__Bundle *b = g->info->bundles[bad];
  for (size_t j = 0; j < b->n_resources && off < sizeof(res); j++)
    off += (size_t)snprintf(res + off, sizeof(res) - off, "%s%s: %g", j ? ", " : "", b->resources[j]->name,
                            b->resources[j]->amount);
  return xasprintf("bundle %d {%s} fits no alive node%s (%d alive node%s)", bad, res,
                   g->info->strategy == RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD
                       ? " without another bundle of the group (STRICT_SPREAD)"
                       : "",
                   nc, nc == 1 ? "" : "s");
}

/* Picks a node for every bundle not committed yet, into g->try_node / g->trying. Returns 0, or
 * RAYC_EINFEASIBLE with *why (new) explaining. */
static int pg_choose(gcs_pgs_t *m, gcs_pg_t *g, char **why)
{
  int nc, rc = 0;
  pg_cand_t *c = pg_cands(m, g, &nc);
  size_t nb = g->info->n_bundles;
  Rayc__PlacementStrategy strat = g->info->strategy;
  memset(g->trying, 0, nb);
  if (strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK || strat == RAYC__PLACEMENT_STRATEGY__PG_PACK) {
    int best = pg_pick_one_node(g, c, nc);
    for (size_t i = 0; best >= 0 && i < nb; i++)
      if (!g->info->bundles[i]->node_id.len) {
        g->trying[i] = 1;
        g->try_node[i] = c[best].n->id;
      }
    if (best < 0 && strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK) {
      rc = RAYC_EINFEASIBLE;
      *why = xasprintf("no alive node has the resources of all %zu bundles together (STRICT_PACK)", nb);
    }
  }
  if (rc == 0 && strat != RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK) {
    int bad = pg_pick_each(g, c, nc);
    if (bad >= 0) {
      rc = RAYC_EINFEASIBLE;
      *why = pg_why_bundle(g, bad, nc);
      memset(g->trying, 0, nb);
    }
  }
  free(c);
  return rc;
}

/* ---- the two phases ---- */

static void pg_schedule_next(gcs_pgs_t *m);

/* The attempt failed: return what it prepared, retry later. */
static void pg_attempt_failed(gcs_pgs_t *m, gcs_pg_t *g, const char *why)
{
  for (size_t i = 0; i < g->info->n_bundles; i++)
    if (g->trying[i])
      pg_cancel_on(m, g, &g->try_node[i], (int)i);
  memset(g->trying, 0, g->info->n_bundles);
  g->gen++;
  g->committing = 0;
  g->retry_at_ms = now_ms() + PG_RETRY_MS;
  pg_set_detail(g, why);
  char hex[2 * ID_PG_SIZE + 1];
  log_info("placement group %s: reservation failed (%s); retrying", pg_hex(g, hex), why);
  if (m->busy == g)
    m->busy = NULL;
}

static Rayc__BundleSpec **pg_specs_for(gcs_pg_t *g, const id_node_t *node, size_t *n)
{
  Rayc__BundleSpec **v = xcalloc(g->info->n_bundles, sizeof(*v));
  *n = 0;
  for (size_t i = 0; i < g->info->n_bundles; i++) {
    if (!g->trying[i] || memcmp(g->try_node[i].b, node->b, ID_NODE_SIZE) != 0)
      continue;
    Rayc__BundleSpec *s = xmalloc(sizeof(*s));
    rayc__bundle_spec__init(s);
    s->placement_group_id = pb_bytes(g->id, ID_PG_SIZE);
    s->bundle_index = (int32_t)i;
    s->resources = g->info->bundles[i]->resources;
    s->n_resources = g->info->bundles[i]->n_resources;
    v[(*n)++] = s;
  }
  return v;
}

static void pg_specs_free(Rayc__BundleSpec **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* The group the step is for, while the step is current. */
static gcs_pg_t *step_pg(pg_step_t *st)
{
  if (st->m->stopping)
    return NULL;
  gcs_pg_t *g = hmap_get(&st->m->by_id, st->id, ID_PG_SIZE);
  return g && g->gen == st->gen && pg_live(g) ? g : NULL;
}

/* The distinct nodes of the attempt, in *nodes (new); returns how many. */
static size_t pg_attempt_nodes(const gcs_pg_t *g, id_node_t **nodes)
{
  size_t nb = g->info->n_bundles, n = 0;
  *nodes = xcalloc(nb ? nb : 1, sizeof(**nodes));
  for (size_t i = 0; i < nb; i++) {
    if (!g->trying[i])
      continue;
    size_t j = 0;
    while (j < n && memcmp((*nodes)[j].b, g->try_node[i].b, ID_NODE_SIZE) != 0)
      j++;
    if (j == n)
      (*nodes)[n++] = g->try_node[i];
  }
  return n;
}

static void pg_send_phase(gcs_pgs_t *m, gcs_pg_t *g, int commit);

static void pg_created(gcs_pgs_t *m, gcs_pg_t *g)
{
  for (size_t i = 0; i < g->info->n_bundles; i++)
    if (g->trying[i])
      pg_set_node(g->info->bundles[i], &g->try_node[i]);
  memset(g->trying, 0, g->info->n_bundles);
  g->committing = 0;
  g->gen++;
  if (m->busy == g)
    m->busy = NULL;
  pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_CREATED, NULL);
}

static void phase_done(void *arg, int status, const char *detail, ProtobufCMessage *resp, int commit)
{
  pg_step_t *st = arg;
  gcs_pgs_t *m = st->m;
  gcs_pg_t *g = step_pg(st);
  int ok = status == 0;
  if (ok && !commit) {
    Rayc__PrepareBundleResourcesReply *rep = (Rayc__PrepareBundleResourcesReply *)resp;
    ok = rep->success;
    if (!m->stopping)
      pg_node_resources(m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                        rep->n_resources_total);
  } else if (ok && !m->stopping) {
    Rayc__CommitBundleResourcesReply *rep = (Rayc__CommitBundleResourcesReply *)resp;
    pg_node_resources(m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                      rep->n_resources_total);
  }
  if (!g) {
    /* abandoned (removed, or a node died meanwhile): give back what this step reserved */
    gcs_pg_t *old = m->stopping ? NULL : hmap_get(&m->by_id, st->id, ID_PG_SIZE);
    if (old && !pg_live(old) && status == 0)
      pg_cancel_on(m, old, &st->node, -1);
  } else {
    if (!ok) {
      g->failed = 1;
      if (status != 0)
        log_warn("placement group: %s on a raylet failed: %s (%s)", commit ? "commit" : "prepare",
                 rayc_strerror(status), detail ? detail : "");
    }
    if (--g->in_flight == 0) {
      if (g->failed)
        pg_attempt_failed(m, g,
                          commit ? "a raylet failed to commit its bundles"
                                 : "a node no longer had the resources when asked to reserve them");
      else if (!commit)
        pg_send_phase(m, g, 1);
      else
        pg_created(m, g);
      if (!m->busy)
        pg_schedule_next(m);
    }
  }
  pb_free(resp);
  free(st);
}

static void prepare_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  phase_done(arg, status, detail, resp, 0);
}

static void commit_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  phase_done(arg, status, detail, resp, 1);
}

/* Sends phase 1 (prepare) or 2 (commit) to every node of the attempt. */
static void pg_send_phase(gcs_pgs_t *m, gcs_pg_t *g, int commit)
{
  id_node_t *nodes;
  size_t nn = pg_attempt_nodes(g, &nodes);
  g->in_flight = 0;
  g->failed = 0;
  g->committing = commit;
  g->gen++;
  for (size_t k = 0; k < nn; k++) {
    gcs_node_t *n = pg_alive_node(m, &nodes[k]);
    size_t ns;
    Rayc__BundleSpec **specs = pg_specs_for(g, &nodes[k], &ns);
    pg_step_t *st = step_new(m, g, &nodes[k]);
    int rc = RAYC_EUNAVAILABLE;
    if (n && commit) {
      Rayc__CommitBundleResourcesRequest req = RAYC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
      req.bundles = specs;
      req.n_bundles = ns;
      rc = rpc_call(pg_raylet(m, n), &rayc__node_manager_service__descriptor, "CommitBundleResources", &req.base,
                    PG_RPC_MS, commit_done, st);
    } else if (n) {
      Rayc__PrepareBundleResourcesRequest req = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
      req.bundles = specs;
      req.n_bundles = ns;
      rc = rpc_call(pg_raylet(m, n), &rayc__node_manager_service__descriptor, "PrepareBundleResources", &req.base,
                    PG_RPC_MS, prepare_done, st);
    }
    pg_specs_free(specs, ns);
    if (rc == 0) {
      g->in_flight++;
    } else {
      free(st);
      g->failed = 1;
    }
  }
  free(nodes);
  if (g->in_flight == 0) /* nothing could be sent */
    pg_attempt_failed(m, g, "the chosen nodes could not be reached");
}

/* Starts placing g: chooses nodes and sends the prepares. */
static void pg_schedule(gcs_pgs_t *m, gcs_pg_t *g)
{
  char *why = NULL;
  g->retry_at_ms = 0;
  if (pg_choose(m, g, &why) != 0) {
    char hex[2 * ID_PG_SIZE + 1];
    if (!*g->info->state_detail || strcmp(g->info->state_detail, why) != 0)
      log_warn("placement group %s (%s): no feasible placement yet: %s", pg_hex(g, hex),
               pg_strategy_name(g->info->strategy), why);
    pg_set_detail(g, why);
    free(why);
    g->retry_at_ms = now_ms() + PG_RETRY_MS;
    return;
  }
  int any = 0;
  for (size_t i = 0; i < g->info->n_bundles; i++)
    any |= g->trying[i];
  if (!any) { /* every bundle is committed already */
    pg_created(m, g);
    return;
  }
  m->busy = g;
  pg_send_phase(m, g, 0);
}

static int pg_wants_placement(const gcs_pg_t *g, int64_t now)
{
  return (g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_PENDING ||
          g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING) &&
         g->retry_at_ms <= now;
}

/* Places the next group that waits, if none is being placed. */
static void pg_schedule_next(gcs_pgs_t *m)
{
  int64_t now = now_ms();
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it) && !m->busy && !m->stopping;) {
    gcs_pg_t *g = it.value;
    if (pg_wants_placement(g, now))
      pg_schedule(m, g);
  }
}

/* Makes every group that waits for resources try again now. */
static void pg_kick(gcs_pgs_t *m)
{
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (pg_wants_placement(g, INT64_MAX))
      g->retry_at_ms = 0;
  }
  if (!m->busy)
    pg_schedule_next(m);
}

/* ---- removal ---- */

static void pg_forget_oldest_removed(gcs_pgs_t *m, const uint8_t *id)
{
  size_t slot = m->nremoved % GCS_PG_REMOVED_KEPT;
  if (m->nremoved >= GCS_PG_REMOVED_KEPT) {
    gcs_pg_t *old = hmap_del(&m->by_id, m->removed[slot], ID_PG_SIZE);
    if (old) {
      gcs_store_del(m->s->store, GCS_PG_TABLE, old->id, ID_PG_SIZE, 0);
      pg_free(old);
    }
  }
  memcpy(m->removed[slot], id, ID_PG_SIZE);
  m->nremoved++;
}

static void pg_remove(gcs_pgs_t *m, gcs_pg_t *g, const char *why)
{
  char hex[2 * ID_PG_SIZE + 1];
  pg_hex(g, hex);
  gcs_actors_on_pg_removed(m->s->actors, hex);
  /* every node that holds or is being asked to hold a bundle returns the group's resources */
  size_t nb = g->info->n_bundles;
  id_node_t *nodes = xcalloc(2 * nb + 1, sizeof(*nodes));
  size_t nn = 0;
  for (size_t i = 0; i < nb; i++) {
    const id_node_t *cand[2] = {NULL, NULL};
    id_node_t committed;
    if (g->info->bundles[i]->node_id.len == ID_NODE_SIZE) {
      memcpy(committed.b, g->info->bundles[i]->node_id.data, ID_NODE_SIZE);
      cand[0] = &committed;
    }
    if (g->trying[i])
      cand[1] = &g->try_node[i];
    for (int k = 0; k < 2; k++) {
      if (!cand[k])
        continue;
      size_t j = 0;
      while (j < nn && memcmp(nodes[j].b, cand[k]->b, ID_NODE_SIZE) != 0)
        j++;
      if (j == nn)
        nodes[nn++] = *cand[k];
    }
  }
  if (g->unsure) {
    gcs_nodes_t *t = &m->s->nodes;
    nodes = xrealloc(nodes, (2 * nb + t->n + 1) * sizeof(*nodes));
    for (size_t k = 0; k < t->n; k++) {
      size_t j = 0;
      while (j < nn && memcmp(nodes[j].b, t->v[k]->id.b, ID_NODE_SIZE) != 0)
        j++;
      if (j == nn && t->v[k]->state == GCS_NODE_ALIVE)
        nodes[nn++] = t->v[k]->id;
    }
  }
  g->gen++;
  for (size_t i = 0; i < nb; i++)
    pg_set_node(g->info->bundles[i], NULL);
  memset(g->trying, 0, nb);
  pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED, why);
  for (size_t j = 0; j < nn; j++)
    pg_cancel_on(m, g, &nodes[j], -1);
  free(nodes);
  if (m->busy == g) {
    m->busy = NULL;
    pg_schedule_next(m);
  }
  pg_forget_oldest_removed(m, g->id);
}

/* ---- events ---- */

void gcs_pgs_on_node_dead(gcs_pgs_t *m, const id_node_t *node)
{
  if (!m || m->stopping)
    return;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (!pg_live(g))
      continue;
    int lost = 0, trying_there = 0;
    for (size_t i = 0; i < g->info->n_bundles; i++) {
      Rayc__Bundle *b = g->info->bundles[i];
      if (b->node_id.len == ID_NODE_SIZE && memcmp(b->node_id.data, node->b, ID_NODE_SIZE) == 0) {
        pg_set_node(b, NULL);
        lost++;
      }
      trying_there |= g->trying[i] && memcmp(g->try_node[i].b, node->b, ID_NODE_SIZE) == 0;
    }
    if (trying_there) /* the attempt in flight lost a node: start over */
      pg_attempt_failed(m, g, "a node chosen for it died");
    if (lost) {
      char *msg = xasprintf("%d bundle%s lost with a dead node", lost, lost == 1 ? "" : "s");
      g->retry_at_ms = 0;
      pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING, msg);
      free(msg);
    }
  }
  if (!m->busy)
    pg_schedule_next(m);
}

void gcs_pgs_on_job_finished(gcs_pgs_t *m, const id_job_t *job)
{
  if (!m || m->stopping)
    return;
  char hex[9], msg[96];
  snprintf(msg, sizeof(msg), "its job %s finished", id_hex(job->b, ID_JOB_SIZE, hex));
  /* removal changes the map (old removed groups may be dropped): collect first */
  size_t n = 0, cap = 16;
  uint8_t(*ids)[ID_PG_SIZE] = xcalloc(cap, ID_PG_SIZE);
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (!pg_live(g) || g->info->is_detached || g->info->creator_job_id.len != ID_JOB_SIZE ||
        memcmp(g->info->creator_job_id.data, job->b, ID_JOB_SIZE) != 0)
      continue;
    if (n == cap)
      ids = xrealloc(ids, (cap *= 2) * ID_PG_SIZE);
    memcpy(ids[n++], g->id, ID_PG_SIZE);
  }
  for (size_t i = 0; i < n; i++) {
    gcs_pg_t *g = hmap_get(&m->by_id, ids[i], ID_PG_SIZE);
    if (g && pg_live(g))
      pg_remove(m, g, msg);
  }
  free(ids);
}

void gcs_pgs_cron(gcs_pgs_t *m, int64_t now)
{
  if (!m || m->stopping)
    return;
  char hex[2 * ID_PG_SIZE + 1];
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    for (gcs_pg_waiter_t **pp = &g->waiters; *pp;) {
      gcs_pg_waiter_t *w = *pp;
      if (w->deadline_ms > now) {
        pp = &w->next;
        continue;
      }
      *pp = w->next;
      rpc_reply_error(w->call, RAYC_ETIMEOUT, "placement group %s is still %s after %lld ms%s%s", pg_hex(g, hex),
                      pg_state_name(g->info->state), (long long)(now - w->since_ms), *g->info->state_detail ? ": " : "",
                      g->info->state_detail);
      free(w);
    }
  }
  if (!m->busy)
    pg_schedule_next(m);
}

/* ---- handlers ---- */

static int pg_check_info(const Rayc__PlacementGroupInfo *in, const char **why)
{
  if (in->placement_group_id.len != ID_PG_SIZE) {
    *why = "placement_group_id must be 18 bytes";
    return RAYC_EINVALID_ARGUMENT;
  }
  if (in->n_bundles == 0 || in->n_bundles > PG_MAX_BUNDLES) {
    *why = "a placement group needs 1 to 1000 bundles";
    return RAYC_EINVALID_ARGUMENT;
  }
  if ((unsigned)in->strategy > RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD) {
    *why = "unknown placement strategy";
    return RAYC_EINVALID_ARGUMENT;
  }
  if (in->creator_job_id.len != 0 && in->creator_job_id.len != ID_JOB_SIZE) {
    *why = "creator_job_id must be 4 bytes";
    return RAYC_EINVALID_ARGUMENT;
  }
  for (size_t i = 0; i < in->n_bundles; i++) {
    const Rayc__Bundle *b = in->bundles[i];
    double sum = 0;
    if (b->n_resources == 0 || b->n_resources > 8) {
      *why = "every bundle needs 1 to 8 resources";
      return RAYC_EINVALID_ARGUMENT;
    }
    for (size_t j = 0; j < b->n_resources; j++) {
      const Rayc__ResourceEntry *e = b->resources[j];
      if (!e->name[0] || strlen(e->name) > 40 || strstr(e->name, "_group_") || !isfinite(e->amount) || e->amount < 0) {
        *why = "bundle resources need a name of 1..40 bytes (without \"_group_\") and a finite amount >= 0";
        return RAYC_EINVALID_ARGUMENT;
      }
      sum += e->amount;
    }
    if (sum <= 0) {
      *why = "a bundle must ask for some resource";
      return RAYC_EINVALID_ARGUMENT;
    }
  }
  return 0;
}

void gcs_pg_on_create(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  gcs_pgs_t *m = s->pgs;
  const Rayc__CreatePlacementGroupRequest *r = (const Rayc__CreatePlacementGroupRequest *)req;
  const char *why = NULL;
  int rc = r->placement_group ? pg_check_info(r->placement_group, &why) : RAYC_EINVALID_ARGUMENT;
  if (rc != 0) {
    rpc_reply_error(call, rc, "CreatePlacementGroup: %s", why ? why : "placement_group missing");
    return;
  }
  Rayc__CreatePlacementGroupReply rep = RAYC__CREATE_PLACEMENT_GROUP_REPLY__INIT;
  if (hmap_get(&m->by_id, r->placement_group->placement_group_id.data, ID_PG_SIZE)) {
    gcs_server_reply(s, call, &rep.base); /* a retry */
    return;
  }
  Rayc__PlacementGroupInfo *info = (Rayc__PlacementGroupInfo *)gcs_pb_dup(&r->placement_group->base);
  info->state = RAYC__PLACEMENT_GROUP_STATE__PG_PENDING;
  info->create_time_ms = wall_ms();
  info->ready_time_ms = 0;
  if (info->state_detail != protobuf_c_empty_string)
    free(info->state_detail);
  info->state_detail = (char *)protobuf_c_empty_string;
  for (size_t i = 0; i < info->n_bundles; i++) {
    info->bundles[i]->index = (int32_t)i;
    pg_set_node(info->bundles[i], NULL);
  }
  gcs_pg_t *g = pg_new(info);
  hmap_put(&m->by_id, g->id, ID_PG_SIZE, g);
  char hex[2 * ID_PG_SIZE + 1];
  log_info("placement group %s (%s): created (PENDING): %zu bundles, %s", pg_hex(g, hex),
           *info->name ? info->name : "unnamed", info->n_bundles, pg_strategy_name(info->strategy));
  pg_store(m, g);
  gcs_server_reply(s, call, &rep.base);
  if (!m->busy)
    pg_schedule(m, g);
}

static gcs_pg_t *pg_lookup(gcs_pgs_t *m, const ProtobufCBinaryData *id, rpc_call_t *call, const char *method)
{
  if (id->len != ID_PG_SIZE) {
    rpc_reply_error(call, RAYC_EINVALID_ARGUMENT, "%s: placement_group_id must be 18 bytes", method);
    return NULL;
  }
  gcs_pg_t *g = hmap_get(&m->by_id, id->data, ID_PG_SIZE);
  if (!g) {
    char hex[2 * ID_PG_SIZE + 1];
    rpc_reply_error(call, RAYC_ENOT_FOUND, "%s: no placement group %s", method, id_hex(id->data, ID_PG_SIZE, hex));
  }
  return g;
}

void gcs_pg_on_remove(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__RemovePlacementGroupRequest *r = (const Rayc__RemovePlacementGroupRequest *)req;
  gcs_pg_t *g = pg_lookup(s->pgs, &r->placement_group_id, call, "RemovePlacementGroup");
  if (!g)
    return;
  if (pg_live(g))
    pg_remove(s->pgs, g, "removed by its owner");
  Rayc__RemovePlacementGroupReply rep = RAYC__REMOVE_PLACEMENT_GROUP_REPLY__INIT;
  gcs_server_reply(s, call, &rep.base);
}

void gcs_pg_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetPlacementGroupRequest *r = (const Rayc__GetPlacementGroupRequest *)req;
  gcs_pg_t *g = NULL;
  if (r->placement_group_id.len == 0 && *r->name) {
    const char *ns = *r->ray_namespace ? r->ray_namespace : "default";
    for (hmap_iter_t it = hmap_iter(&s->pgs->by_id); hmap_next(&it) && !g;) {
      gcs_pg_t *x = it.value;
      if (pg_live(x) && strcmp(x->info->name, r->name) == 0 &&
          strcmp(*x->info->ray_namespace ? x->info->ray_namespace : "default", ns) == 0)
        g = x;
    }
    if (!g) {
      rpc_reply_error(call, RAYC_ENOT_FOUND, "GetPlacementGroup: no live placement group named '%s'", r->name);
      return;
    }
  } else if (!(g = pg_lookup(s->pgs, &r->placement_group_id, call, "GetPlacementGroup"))) {
    return;
  }
  Rayc__GetPlacementGroupReply rep = RAYC__GET_PLACEMENT_GROUP_REPLY__INIT;
  rep.placement_group = g->info;
  gcs_server_reply(s, call, &rep.base);
}

static int pg_by_create_time(const void *a, const void *b)
{
  const Rayc__PlacementGroupInfo *x = *(Rayc__PlacementGroupInfo *const *)a, *y = *(Rayc__PlacementGroupInfo *const *)b;
  return x->create_time_ms < y->create_time_ms ? -1 : x->create_time_ms > y->create_time_ms;
}

void gcs_pg_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__GetAllPlacementGroupRequest *r = (const Rayc__GetAllPlacementGroupRequest *)req;
  size_t n = 0, cap = s->pgs->by_id.count ? s->pgs->by_id.count : 1;
  Rayc__PlacementGroupInfo **v = xcalloc(cap, sizeof(*v));
  for (hmap_iter_t it = hmap_iter(&s->pgs->by_id); hmap_next(&it) && n < cap;)
    v[n++] = ((gcs_pg_t *)it.value)->info;
  qsort(v, n, sizeof(*v), pg_by_create_time);
  Rayc__GetAllPlacementGroupReply rep = RAYC__GET_ALL_PLACEMENT_GROUP_REPLY__INIT;
  rep.placement_groups = v;
  rep.n_placement_groups = r->limit > 0 && (size_t)r->limit < n ? (size_t)r->limit : n;
  if (rep.n_placement_groups < n) /* the newest */
    rep.placement_groups = v + (n - rep.n_placement_groups);
  gcs_server_reply(s, call, &rep.base);
  free(v);
}

void gcs_pg_on_wait(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__WaitPlacementGroupUntilReadyRequest *r = (const Rayc__WaitPlacementGroupUntilReadyRequest *)req;
  gcs_pg_t *g = pg_lookup(s->pgs, &r->placement_group_id, call, "WaitPlacementGroupUntilReady");
  if (!g)
    return;
  char hex[2 * ID_PG_SIZE + 1];
  if (g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED) {
    Rayc__WaitPlacementGroupUntilReadyReply rep = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REPLY__INIT;
    gcs_server_reply(s, call, &rep.base);
  } else if (!pg_live(g)) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "placement group %s was removed%s%s", pg_hex(g, hex),
                    *g->info->state_detail ? ": " : "", g->info->state_detail);
  } else {
    gcs_pg_waiter_t *w = xcalloc(1, sizeof(*w));
    w->call = call;
    w->since_ms = now_ms();
    w->deadline_ms = w->since_ms +
                     (r->timeout_ms > 0 && r->timeout_ms < PG_WAIT_MAX_MS ? r->timeout_ms : PG_WAIT_MAX_MS);
    w->next = g->waiters;
    g->waiters = w;
  }
}

/* ---- life cycle ---- */

static void pg_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_pgs_t *m = arg;
  Rayc__PlacementGroupInfo *info = rayc__placement_group_info__unpack(NULL, vlen, val);
  const char *why = NULL;
  if (!info || klen != ID_PG_SIZE || pg_check_info(info, &why) != 0 ||
      memcmp(key, info->placement_group_id.data, ID_PG_SIZE) != 0 || hmap_get(&m->by_id, key, klen)) {
    log_warn("placement group table: skipping an unreadable stored group%s%s", why ? ": " : "", why ? why : "");
    pb_free(info);
    return;
  }
  gcs_pg_t *g = pg_new(info);
  g->unsure = info->state == RAYC__PLACEMENT_GROUP_STATE__PG_PENDING ||
              info->state == RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING;
  hmap_put(&m->by_id, g->id, ID_PG_SIZE, g);
}

gcs_pgs_t *gcs_pgs_create(struct gcs_server *s)
{
  rpc_client_opts_t o = {.loop = s->loop, .token = s->token, .tls = &s->tls};
  rpc_client_t *c = rpc_client_create(&o);
  if (!c)
    return NULL;
  gcs_pgs_t *m = xcalloc(1, sizeof(*m));
  m->s = s;
  m->client = c;
  hmap_init(&m->by_id);
  m->removed = xcalloc(GCS_PG_REMOVED_KEPT, ID_PG_SIZE);
  int rc = gcs_store_scan(s->store, GCS_PG_TABLE, NULL, 0, pg_load_one, m);
  if (rc > 0) {
    int live = 0;
    for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
      gcs_pg_t *g = it.value;
      if (pg_live(g))
        live++;
      else if (m->nremoved < GCS_PG_REMOVED_KEPT)
        memcpy(m->removed[m->nremoved++], g->id, ID_PG_SIZE);
    }
    log_info("placement group table: loaded %d groups (%d not removed) from storage", rc, live);
  }
  return m;
}

void gcs_pgs_shutdown(gcs_pgs_t *m)
{
  if (!m || m->stopping)
    return;
  m->stopping = 1;
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    g->gen++;
    while (g->waiters) {
      gcs_pg_waiter_t *w = g->waiters;
      g->waiters = w->next;
      rpc_reply_error(w->call, RAYC_EUNAVAILABLE, "the GCS is shutting down");
      free(w);
    }
  }
  rpc_client_destroy(m->client); /* callbacks see m->stopping */
  m->client = NULL;
}

void gcs_pgs_destroy(gcs_pgs_t *m)
{
  if (!m)
    return;
  gcs_pgs_shutdown(m);
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);)
    pg_free(it.value);
  hmap_release(&m->by_id);
  free(m->removed);
  free(m);
}
