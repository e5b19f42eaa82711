/* The GCS placement-group manager's placement half: choosing nodes for bundles (demands fitted
 * by gcs_fit.c), the prepare and commit phases on the raylets, removal. gcs_pg.c keeps the table,
 * persistence, state changes, handlers and life cycle. */
#include "gcs/gcs_pg_int.h"

#include "gcs/gcs_fit.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- talking to raylets ---- */

void gcs_pg_step_free(gcs_pg_step_t *st)
{
  free(st->more);
  free(st->ids);
  free(st->gens);
  free(st);
}

/* The ids as protobuf bytes (new array, pointing into ids). */
ProtobufCBinaryData *gcs_pg_ids_pb(uint8_t (*ids)[ID_PG_SIZE], size_t n)
{
  ProtobufCBinaryData *v = xcalloc(n ? n : 1, sizeof(*v));
  for (size_t i = 0; i < n; i++)
    v[i] = pb_bytes(ids[i], ID_PG_SIZE);
  return v;
}

static gcs_pg_step_t *step_new(gcs_pgs_t *m, const gcs_pg_t *g, const id_node_t *node)
{
  gcs_pg_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  memcpy(st->id, g->id, ID_PG_SIZE);
  st->gen = g->gen;
  st->node = *node;
  return st;
}

gcs_node_t *gcs_pg_alive_node(gcs_pgs_t *m, const id_node_t *id)
{
  gcs_node_t *n = gcs_nodes_find(&m->s->nodes, id->b, ID_NODE_SIZE);
  return n && n->state == GCS_NODE_ALIVE && n->info && n->info->raylet_port > 0 ? n : NULL;
}

rpc_channel_t *gcs_pg_raylet(gcs_pgs_t *m, const gcs_node_t *n)
{
  char target[96];
  int v6 = strchr(n->info->ip, ':') != NULL;
  snprintf(target, sizeof(target), "%s%s%s:%d", v6 ? "[" : "", n->info->ip, v6 ? "]" : "", n->info->raylet_port);
  return rpc_channel_get(m->client, target);
}

/* A raylet's answer carries its resources: fresher than its last heartbeat. */
void gcs_pg_node_resources(gcs_pgs_t *m, const id_node_t *id, Rayc__ResourceEntry **avail, size_t navail,
                              Rayc__ResourceEntry **total, size_t ntotal, int64_t seq)
{
  gcs_node_t *n = gcs_pg_alive_node(m, id);
  if (n && ntotal > 0)
    gcs_nodes_set_resources(&m->s->nodes, n, avail, navail, total, ntotal, seq);
}

/* ---- choosing nodes ---- */

typedef struct pg_cand {
  gcs_node_t *n;
  res_set_t avail;
  int count; /* bundles of this group on it (committed, or chosen in this pass) */
} pg_cand_t;

static int pg_same_node(const Rayc__Bundle *b, const gcs_node_t *n)
{
  return b->node_id.len == ID_NODE_SIZE && memcmp(b->node_id.data, n->id.b, ID_NODE_SIZE) == 0;
}

/* One placement pass (gcs_pg_schedule_next): the alive nodes' free resources less what the pass
 * chose so far, and the groups placed on one node gathered per node, to be sent together. */
typedef struct pg_batch {
  id_node_t node;
  gcs_pg_t **v;
  size_t n, cap;
} pg_batch_t;

typedef struct pg_pass {
  pg_cand_t *c; /* NULL until a group wants placement (cron passes often find none) */
  int nc;
  int nfull; /* alive nodes left out: no room for more bundles (pg_node_full) */
  pg_batch_t *b;
  size_t nb;
} pg_pass_t;

/* Whether node refused a group for lack of room for more bundles' resource names, and no group
 * was removed since (a raylet holds at most RES_MAX names: about 120 one-resource bundles). */
static int pg_node_full(const gcs_pgs_t *m, const id_node_t *node)
{
  for (size_t i = 0; i < m->nfull; i++)
    if (memcmp(m->full[i].b, node->b, ID_NODE_SIZE) == 0)
      return 1;
  return 0;
}

static void pg_node_mark_full(gcs_pgs_t *m, const id_node_t *node)
{
  if (pg_node_full(m, node))
    return;
  if (m->nfull == m->full_cap)
    m->full = xrealloc(m->full, (m->full_cap = m->full_cap ? 2 * m->full_cap : 4) * sizeof(*m->full));
  m->full[m->nfull++] = *node;
  char hex[9];
  log_warn("node %s holds as many placement-group bundles as it can; groups that fit only there wait until "
           "some are removed", id_short(node->b, ID_NODE_SIZE, hex));
}

/* Fills the pass's candidates, once (a pass that finds no group to place builds none). */
static void pg_pass_init(gcs_pgs_t *m, pg_pass_t *p)
{
  gcs_nodes_t *t = &m->s->nodes;
  if (p->c)
    return;
  p->c = xcalloc(t->n ? t->n : 1, sizeof(*p->c));
  p->b = xcalloc(t->n ? t->n : 1, sizeof(*p->b));
  for (size_t k = 0; k < t->n; k++) {
    gcs_node_t *n = t->v[k];
    if (!gcs_fit_usable(n))
      continue;
    if (pg_node_full(m, &n->id)) {
      p->nfull++;
      continue;
    }
    pg_cand_t *x = &p->c[p->nc++];
    x->n = n;
    gcs_fit_free(n, &x->avail);
    gcs_pg_return_credit(m, &n->id, &x->avail); /* returns not sent yet: see gcs_pg_return.c */
  }
}

static int pg_cand_of(const pg_pass_t *p, const id_node_t *id)
{
  for (int k = 0; k < p->nc; k++)
    if (memcmp(p->c[k].n->id.b, id->b, ID_NODE_SIZE) == 0)
      return k;
  return -1;
}

/* Takes g's chosen bundles from the pass's free resources (d -1) or gives them back (d 1). */
static void pg_pass_take(pg_pass_t *p, const gcs_pg_t *g, const res_set_t *need, int d)
{
  for (size_t i = 0; i < g->info->n_bundles; i++) {
    int k = g->trying[i] ? pg_cand_of(p, &g->try_node[i]) : -1;
    if (k >= 0 && d < 0)
      res_sub(&p->c[k].avail, &need[i]);
    else if (k >= 0)
      res_add(&p->c[k].avail, &need[i]);
  }
}

/* PACK, STRICT_PACK: the one node that fits every bundle left, preferring the one holding the
 * group's other bundles (STRICT_PACK: only that one, if any). -1 when none fits. */
static int pg_pick_one_node(const gcs_pg_t *g, const res_set_t *need, const pg_cand_t *c, int nc, size_t off)
{
  int anchored = 0, best = -1;
  for (int k = 0; k < nc; k++)
    anchored |= c[k].count > 0;
  for (int j = 0; j < nc; j++) {
    int k = (int)((j + off) % (size_t)nc); /* round robin: ties go to the next node each group */
    if (g->info->strategy == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK && anchored && c[k].count == 0)
      continue;
    res_set_t a = c[k].avail;
    int ok = 1;
    for (size_t i = 0; i < g->info->n_bundles && ok; i++) {
      if (g->info->bundles[i]->node_id.len)
        continue;
      ok = res_fits(&a, &need[i]);
      res_sub(&a, &need[i]);
    }
    if (ok && (best < 0 || c[k].count > c[best].count))
      best = k;
  }
  return best;
}

/* PACK (fallback), SPREAD, STRICT_SPREAD: a node per bundle left, each where it fits with the most
 * (PACK) or fewest (SPREAD) of the group's bundles, or none (STRICT_SPREAD). Returns the first
 * bundle that fits nowhere, or -1. */
static int pg_pick_each(gcs_pg_t *g, const res_set_t *need, pg_cand_t *c, int nc, size_t off)
{
  Rayc__PlacementStrategy strat = g->info->strategy;
  for (size_t i = 0; i < g->info->n_bundles; i++) {
    const Rayc__Bundle *b = g->info->bundles[i];
    if (b->node_id.len || g->trying[i])
      continue;
    int best = -1;
    for (int j = 0; j < nc; j++) {
      int k = (int)((j + off) % (size_t)nc);
      if (!res_fits(&c[k].avail, &need[i]) || (strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD && c[k].count > 0))
        continue;
      if (best < 0 ||
          (strat == RAYC__PLACEMENT_STRATEGY__PG_PACK ? c[k].count > c[best].count : c[k].count < c[best].count))
        best = k;
    }
    if (best < 0)
      return (int)i;
    res_sub(&c[best].avail, &need[i]);
    c[best].count++;
    g->trying[i] = 1;
    g->try_node[i] = c[best].n->id;
  }
  return -1;
}

/* Why bundle bad fits nowhere (new). */
static char *pg_why_bundle(const gcs_pg_t *g, int bad, int nc, int nfull)
{
  char res[256];
  size_t off = 0;
  res[0] = '\0';
  const Rayc__Bundle *b = g->info->bundles[bad];
  for (size_t j = 0; j < b->n_resources && off < sizeof(res); j++)
    off += (size_t)snprintf(res + off, sizeof(res) - off, "%s%s: %g", j ? ", " : "", b->resources[j]->name,
                            b->resources[j]->amount);
  char full[160] = "";
  if (nfull > 0)
    snprintf(full, sizeof(full), "; %d more hold%s as many placement-group bundles as a node can (about 120 of one "
             "resource) until some are removed", nfull, nfull == 1 ? "s" : "");
  return xasprintf("bundle %d {%s} fits no alive node%s (%d alive node%s%s)", bad, res,
                   g->info->strategy == RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD
                       ? " without another bundle of the group (STRICT_SPREAD)"
                       : "",
                   nc, nc == 1 ? "" : "s", full);
}

/* Picks a node for every bundle not committed yet, into g->try_node / g->trying. Returns 0, or
 * RAYC_EINFEASIBLE with *why (new) explaining. */
static int pg_choose(gcs_pgs_t *m, pg_pass_t *p, gcs_pg_t *g, char **why)
{
  int nc = p->nc, rc = 0;
  pg_cand_t *c = p->c;
  size_t nb = g->info->n_bundles, off = m->rr++;
  for (int k = 0; k < nc; k++) {
    c[k].count = 0;
    for (size_t i = 0; i < nb; i++)
      c[k].count += pg_same_node(g->info->bundles[i], c[k].n);
  }
  res_set_t *need = xmalloc(nb * sizeof(*need)); /* each bundle's demand, interned once per pass */
  for (size_t i = 0; i < nb; i++)
    gcs_fit_demand(&need[i], g->info->bundles[i]->resources, g->info->bundles[i]->n_resources);
  Rayc__PlacementStrategy strat = g->info->strategy;
  memset(g->trying, 0, nb);
  if (strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK || strat == RAYC__PLACEMENT_STRATEGY__PG_PACK) {
    int best = pg_pick_one_node(g, need, c, nc, off);
    for (size_t i = 0; best >= 0 && i < nb; i++)
      if (!g->info->bundles[i]->node_id.len) {
        g->trying[i] = 1;
        g->try_node[i] = c[best].n->id;
      }
    if (best >= 0) /* pg_pick_each below skips these; it takes its own picks as it goes */
      pg_pass_take(p, g, need, -1);
    if (best < 0 && strat == RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK) {
      rc = RAYC_EINFEASIBLE;
      *why = xasprintf("no alive node has the resources of all %zu bundles together (STRICT_PACK)%s", nb,
                       p->nfull ? "; some hold as many placement-group bundles as a node can until some are removed"
                                : "");
    }
  }
  if (rc == 0 && strat != RAYC__PLACEMENT_STRATEGY__PG_STRICT_PACK) {
    int bad = pg_pick_each(g, need, c, nc, off);
    if (bad >= 0) {
      rc = RAYC_EINFEASIBLE;
      *why = pg_why_bundle(g, bad, nc, p->nfull);
      pg_pass_take(p, g, need, 1);
      memset(g->trying, 0, nb);
    }
  }
  free(need);
  return rc;
}

/* ---- the two phases ---- */

void gcs_pg_schedule_next(gcs_pgs_t *m);

/* g's attempt is no longer in flight. */
static void pg_not_busy(gcs_pgs_t *m, gcs_pg_t *g)
{
  if (g->placing) {
    g->placing = 0;
    m->busy--;
  }
}

/* The attempt failed: return what it prepared, retry later. */
void gcs_pg_attempt_failed(gcs_pgs_t *m, gcs_pg_t *g, const char *why)
{
  for (size_t i = 0; i < g->info->n_bundles; i++)
    if (g->trying[i])
      gcs_pg_cancel_on(m, g, &g->try_node[i], (int)i);
  memset(g->trying, 0, g->info->n_bundles);
  g->gen++;
  g->committing = 0;
  g->retry_at_ms = now_ms() + PG_RETRY_MS;
  gcs_pg_set_detail(g, why);
  char hex[2 * ID_PG_SIZE + 1];
  log_info("placement group %s: reservation failed (%s); retrying", gcs_pg_hex(g, hex), why);
  pg_not_busy(m, g);
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
      gcs_pg_set_node(g->info->bundles[i], &g->try_node[i]);
  memset(g->trying, 0, g->info->n_bundles);
  g->committing = 0;
  g->gen++;
  pg_not_busy(m, g);
  gcs_pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_CREATED, NULL);
}

/* One group's answer from a raylet: ok (its bundles there kept), committed (and committed). kept:
 * something of it may be held there (a removed group's is given back). */
static void pg_step_answer(gcs_pgs_t *m, const uint8_t *id, uint32_t gen, const id_node_t *node, int ok, int committed,
                           int kept, int commit)
{
  gcs_pg_t *g = m->stopping ? NULL : hmap_get(&m->by_id, id, ID_PG_SIZE);
  if (!g || g->gen != gen || !gcs_pg_live(g)) {
    /* abandoned (removed, or a node died meanwhile): give back what this step reserved */
    if (g && !gcs_pg_live(g) && kept)
      gcs_pg_cancel_on(m, g, node, -1);
    return;
  }
  if (!ok)
    g->failed = 1;
  if (--g->in_flight > 0)
    return;
  if (g->failed)
    gcs_pg_attempt_failed(m, g,
                          commit ? "a raylet failed to commit its bundles"
                                 : "a node no longer had the resources when asked to reserve them");
  else if (!commit && !committed) /* committed: a one-node attempt, prepared and committed at once */
    pg_send_phase(m, g, 1);
  else
    pg_created(m, g);
}

static int pg_id_in(const ProtobufCBinaryData *v, size_t n, const uint8_t *id)
{
  for (size_t i = 0; i < n; i++)
    if (v[i].len == ID_PG_SIZE && memcmp(v[i].data, id, ID_PG_SIZE) == 0)
      return 1;
  return 0;
}

/* The answer to a prepare for several groups on one node (pg_send_batch): each group kept or not. */
static void batch_answers(gcs_pg_step_t *st, int status, const Rayc__PrepareBundleResourcesReply *rep)
{
  for (size_t j = 0; j < st->nids; j++) {
    /* success false without failed_groups: none kept (all or nothing, as for one group) */
    int fit = status == 0 && (rep->success || (rep->n_failed_groups > 0 &&
                                               !pg_id_in(rep->failed_groups, rep->n_failed_groups, st->ids[j])));
    gcs_pg_t *g = status == 0 && !fit ? hmap_get(&st->m->by_id, st->ids[j], ID_PG_SIZE) : NULL;
    if (g && g->gen == st->gens[j]) /* nothing of it kept anywhere (one node): nothing to cancel */
      memset(g->trying, 0, g->info->n_bundles);
    pg_step_answer(st->m, st->ids[j], st->gens[j], &st->node, fit, fit && rep->committed, fit, 0);
  }
}

static void phase_done(void *arg, int status, const char *detail, ProtobufCMessage *resp, int commit)
{
  gcs_pg_step_t *st = arg;
  gcs_pgs_t *m = st->m;
  int ok = status == 0, committed = 0;
  if (!ok && st->nmore && !m->stopping) /* the returns it carried may not have arrived */
    gcs_pg_more_later(m, st, NULL, detail && *detail ? detail : rayc_strerror(status));
  if (status != 0 && !m->stopping)
    log_warn("placement group: %s on a raylet failed: %s (%s)", commit ? "commit" : "prepare", rayc_strerror(status),
             detail ? detail : "");
  if (ok && !commit) {
    Rayc__PrepareBundleResourcesReply *rep = (Rayc__PrepareBundleResourcesReply *)resp;
    ok = rep->success;
    if (rep->bundles_full && !m->stopping)
      pg_node_mark_full(m, &st->node);
    committed = ok && rep->committed;
    if (!m->stopping)
      gcs_pg_node_resources(m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                        rep->n_resources_total, rep->report_seq);
  } else if (ok && !m->stopping) {
    Rayc__CommitBundleResourcesReply *rep = (Rayc__CommitBundleResourcesReply *)resp;
    gcs_pg_node_resources(m, &st->node, rep->resources_available, rep->n_resources_available, rep->resources_total,
                      rep->n_resources_total, rep->report_seq);
  }
  if (!m->stopping) {
    if (st->nids)
      batch_answers(st, status, (Rayc__PrepareBundleResourcesReply *)resp);
    else
      pg_step_answer(m, st->id, st->gen, &st->node, ok, committed, status == 0, commit);
    if (!m->busy)
      gcs_pg_schedule_next(m);
  }
  pb_free(resp);
  gcs_pg_step_free(st);
}

static void prepare_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  phase_done(arg, status, detail, resp, 0);
}

/* Sends step st's PrepareBundleResources of specs to node n (commit: in the same call), with the
 * node's queued returns (counted free when its groups were chosen). 0, or rpc_call's error. */
static int pg_send_prepare(gcs_pgs_t *m, gcs_node_t *n, const id_node_t *node, gcs_pg_step_t *st,
                           Rayc__BundleSpec **specs, size_t nspecs, int commit)
{
  Rayc__PrepareBundleResourcesRequest req = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  req.bundles = specs;
  req.n_bundles = nspecs;
  req.commit = commit;
  st->more = gcs_pg_return_take(m, node, &st->nmore);
  req.returns = gcs_pg_ids_pb(st->more, st->nmore);
  req.n_returns = st->nmore;
  int rc = rpc_call(gcs_pg_raylet(m, n), &rayc__node_manager_service__descriptor, "PrepareBundleResources", &req.base,
                    PG_RPC_MS, prepare_done, st);
  free(req.returns);
  return rc;
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
    gcs_node_t *n = gcs_pg_alive_node(m, &nodes[k]);
    size_t ns;
    Rayc__BundleSpec **specs = pg_specs_for(g, &nodes[k], &ns);
    gcs_pg_step_t *st = step_new(m, g, &nodes[k]);
    int rc = RAYC_EUNAVAILABLE;
    if (n && commit) {
      Rayc__CommitBundleResourcesRequest req = RAYC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
      req.bundles = specs;
      req.n_bundles = ns;
      rc = rpc_call(gcs_pg_raylet(m, n), &rayc__node_manager_service__descriptor, "CommitBundleResources", &req.base,
                    PG_RPC_MS, commit_done, st);
    } else if (n) {
      /* the whole attempt on one node: prepare and commit in one call */
      rc = pg_send_prepare(m, n, &nodes[k], st, specs, ns, nn == 1);
    }
    pg_specs_free(specs, ns);
    if (rc == 0) {
      g->in_flight++;
    } else {
      gcs_pg_more_later(m, st, NULL, "the call could not be made");
      gcs_pg_step_free(st);
      g->failed = 1;
    }
  }
  free(nodes);
  if (g->in_flight == 0) /* nothing could be sent */
    gcs_pg_attempt_failed(m, g, "the chosen nodes could not be reached");
}

/* Sends one PrepareBundleResources (with commit, and the node's queued returns) for every group
 * of batch b: all their bundles are on b's node. Each group is fitted on its own there. */
static void pg_send_batch(gcs_pgs_t *m, pg_batch_t *b)
{
  gcs_node_t *n = gcs_pg_alive_node(m, &b->node);
  gcs_pg_step_t *st = xcalloc(1, sizeof(*st));
  st->m = m;
  st->node = b->node;
  st->ids = xcalloc(b->n, ID_PG_SIZE);
  st->gens = xcalloc(b->n, sizeof(*st->gens));
  st->nids = b->n;
  size_t nspecs = 0, cap = 0;
  for (size_t j = 0; j < b->n; j++)
    cap += b->v[j]->info->n_bundles;
  Rayc__BundleSpec **specs = xcalloc(cap ? cap : 1, sizeof(*specs));
  for (size_t j = 0; j < b->n; j++) {
    gcs_pg_t *g = b->v[j];
    g->in_flight = 1;
    g->failed = 0;
    g->committing = 0;
    g->gen++;
    memcpy(st->ids[j], g->id, ID_PG_SIZE);
    st->gens[j] = g->gen;
    size_t ns;
    Rayc__BundleSpec **one = pg_specs_for(g, &b->node, &ns);
    memcpy(specs + nspecs, one, ns * sizeof(*one));
    nspecs += ns;
    free(one); /* the specs themselves now in specs[] */
  }
  int rc = RAYC_EUNAVAILABLE;
  if (n)
    rc = pg_send_prepare(m, n, &b->node, st, specs, nspecs, 1);
  pg_specs_free(specs, nspecs);
  if (rc == 0)
    return;
  gcs_pg_more_later(m, st, NULL, "the call could not be made");
  for (size_t j = 0; j < b->n; j++)
    gcs_pg_attempt_failed(m, b->v[j], "the chosen nodes could not be reached");
  gcs_pg_step_free(st);
}

/* Chooses nodes for g in pass p: an attempt on one node joins that node's batch, one on several
 * nodes sends its prepares now (two phases). */
static void pg_pass_add(gcs_pgs_t *m, pg_pass_t *p, gcs_pg_t *g)
{
  char *why = NULL;
  g->retry_at_ms = 0;
  pg_pass_init(m, p);
  if (pg_choose(m, p, g, &why) != 0) {
    char hex[2 * ID_PG_SIZE + 1];
    if (!*g->info->state_detail || strcmp(g->info->state_detail, why) != 0)
      log_warn("placement group %s (%s): no feasible placement yet: %s", gcs_pg_hex(g, hex),
               gcs_pg_strategy_name(g->info->strategy), why);
    gcs_pg_set_detail(g, why);
    free(why);
    g->retry_at_ms = now_ms() + PG_RETRY_MS;
    return;
  }
  id_node_t *nodes;
  size_t nn = pg_attempt_nodes(g, &nodes);
  if (nn == 0) { /* every bundle is committed already */
    free(nodes);
    pg_created(m, g);
    return;
  }
  g->placing = 1;
  m->busy++;
  int k = nn == 1 ? pg_cand_of(p, &nodes[0]) : -1; /* chosen from the candidates: found */
  if (k < 0) {
    pg_send_phase(m, g, 0);
  } else {
    pg_batch_t *b = &p->b[k];
    b->node = nodes[0];
    if (b->n == b->cap)
      b->v = xrealloc(b->v, (b->cap = b->cap ? 2 * b->cap : 4) * sizeof(*b->v));
    b->v[b->n++] = g;
  }
  free(nodes);
}

/* Sends the pass's batches and frees it. */
static void pg_pass_send(gcs_pgs_t *m, pg_pass_t *p)
{
  for (int k = 0; k < p->nc; k++) {
    if (p->b[k].n)
      pg_send_batch(m, &p->b[k]);
    free(p->b[k].v);
  }
  free(p->b);
  free(p->c);
}

void gcs_pg_schedule(gcs_pgs_t *m, gcs_pg_t *g)
{
  pg_pass_t p = {0};
  pg_pass_add(m, &p, g);
  pg_pass_send(m, &p);
}

static int pg_wants_placement(const gcs_pg_t *g, int64_t now)
{
  return (g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_PENDING ||
          g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING) &&
         g->retry_at_ms <= now && !g->placing;
}

/* Places every group that waits, in one pass (one prepare per node for the groups placed on one
 * node), once no attempt is in flight: groups created meanwhile wait for the next pass together. */
void gcs_pg_schedule_next(gcs_pgs_t *m)
{
  if (m->nwaiting == 0 || m->busy || m->stopping) /* the table keeps up to GCS_PG_REMOVED_KEPT removed groups */
    return;
  int64_t now = now_ms();
  pg_pass_t p = {0};
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (pg_wants_placement(g, now))
      pg_pass_add(m, &p, g);
  }
  pg_pass_send(m, &p);
}

/* Makes every group that waits for resources try again now. */
void gcs_pg_kick(gcs_pgs_t *m)
{
  /* the group being placed needs no kick: scan only when another one waits */
  size_t busy_waits = m->busy; /* groups being placed wait too */
  for (hmap_iter_t it = hmap_iter(&m->by_id); m->nwaiting > busy_waits && hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (pg_wants_placement(g, INT64_MAX))
      g->retry_at_ms = 0;
  }
  if (!m->busy)
    gcs_pg_schedule_next(m);
}

/* ---- removal ---- */

static void pg_forget_oldest_removed(gcs_pgs_t *m, const uint8_t *id)
{
  size_t slot = m->nremoved % GCS_PG_REMOVED_KEPT;
  if (m->nremoved >= GCS_PG_REMOVED_KEPT) {
    gcs_pg_t *old = hmap_del(&m->by_id, m->removed[slot], ID_PG_SIZE);
    if (old) {
      gcs_store_del(m->s->store, GCS_PG_TABLE, old->id, ID_PG_SIZE, 0);
      gcs_pg_free(old);
    }
  }
  memcpy(m->removed[slot], id, ID_PG_SIZE);
  m->nremoved++;
}

/* Adds node to nodes[0..*nn) unless there; returns its index. */
static size_t pg_node_add(id_node_t *nodes, size_t *nn, const id_node_t *node)
{
  size_t j = 0;
  while (j < *nn && memcmp(nodes[j].b, node->b, ID_NODE_SIZE) != 0)
    j++;
  if (j == *nn)
    nodes[(*nn)++] = *node;
  return j;
}

/* The nodes that must return g's bundles at once, in now[] (a prepare may be in flight there, or
 * a reloaded group could have left bundles anywhere), and the nodes of its committed bundles
 * whose return can wait (later[], with their bundles' resources in res[]). Returns *nlater. */
static size_t pg_remove_nodes(gcs_pgs_t *m, gcs_pg_t *g, id_node_t *now, size_t *nnow, id_node_t *later, res_set_t *res)
{
  size_t nb = g->info->n_bundles, nlater = 0;
  *nnow = 0;
  for (size_t i = 0; i < nb; i++)
    if (g->trying[i])
      pg_node_add(now, nnow, &g->try_node[i]);
  gcs_nodes_t *t = &m->s->nodes;
  for (size_t k = 0; g->unsure && k < t->n; k++)
    if (t->v[k]->state == GCS_NODE_ALIVE)
      pg_node_add(now, nnow, &t->v[k]->id);
  for (size_t i = 0; i < nb; i++) {
    const Rayc__Bundle *b = g->info->bundles[i];
    if (b->node_id.len != ID_NODE_SIZE)
      continue;
    id_node_t node;
    memcpy(node.b, b->node_id.data, ID_NODE_SIZE);
    size_t n0 = *nnow;
    if (pg_node_add(now, nnow, &node) < n0) /* returned at once there anyway */
      continue;
    *nnow = n0;
    size_t j = pg_node_add(later, &nlater, &node); /* res[] starts zeroed: empty sets */
    res_set_t d;
    gcs_fit_demand(&d, b->resources, b->n_resources);
    res_add(&res[j], &d);
  }
  return nlater;
}

void gcs_pg_remove(gcs_pgs_t *m, gcs_pg_t *g, const char *why)
{
  char hex[2 * ID_PG_SIZE + 1];
  gcs_pg_hex(g, hex);
  gcs_actors_on_pg_removed(m->s->actors, hex);
  m->nfull = 0; /* its bundles' names go (their returns ride the next prepare): full nodes may take more */
  size_t nb = g->info->n_bundles, nnow;
  id_node_t *now = xcalloc(nb + m->s->nodes.n + 1, sizeof(*now)), *later = xcalloc(nb + 1, sizeof(*later));
  res_set_t *res = xcalloc(nb + 1, sizeof(*res));
  size_t nlater = pg_remove_nodes(m, g, now, &nnow, later, res);
  g->gen++;
  for (size_t i = 0; i < nb; i++)
    gcs_pg_set_node(g->info->bundles[i], NULL);
  memset(g->trying, 0, nb);
  /* stored with the nodes whose return is queued: a GCS killed before it leaves sends it again */
  ProtobufCBinaryData *rn = xcalloc(nlater + 1, sizeof(*rn));
  for (size_t j = 0; j < nlater; j++)
    rn[j] = pb_bytes(later[j].b, ID_NODE_SIZE);
  g->info->return_nodes = rn;
  g->info->n_return_nodes = nlater;
  gcs_pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED, why);
  g->info->return_nodes = NULL;
  g->info->n_return_nodes = 0;
  free(rn);
  for (size_t j = 0; j < nnow; j++)
    gcs_pg_cancel_on(m, g, &now[j], -1);
  for (size_t j = 0; j < nlater; j++)
    gcs_pg_return_later(m, g->id, &later[j], &res[j]);
  free(now);
  free(later);
  free(res);
  pg_not_busy(m, g);
  pg_forget_oldest_removed(m, g->id);
  if (nlater) /* its resources count free now: groups waiting for them try at once */
    gcs_pg_kick(m);
  else if (!m->busy)
    gcs_pg_schedule_next(m);
}
