/* The GCS placement-group manager: its table, persistence, state changes, RPC handlers and life
 * cycle (gcs_pg_place.c places the bundles). See gcs_pg.h. */
#include "gcs/gcs_pg.h"
#include "gcs/gcs_pg_int.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pg_state_name(Rayc__PlacementGroupState st)
{
  static const char *names[] = {"PENDING", "CREATED", "REMOVED", "RESCHEDULING"};
  return (unsigned)st < 4 ? names[st] : "UNKNOWN";
}

const char *gcs_pg_strategy_name(Rayc__PlacementStrategy st)
{
  static const char *names[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
  return (unsigned)st < 4 ? names[st] : "UNKNOWN";
}

char *gcs_pg_hex(const gcs_pg_t *g, char *out)
{
  return id_hex(g->id, ID_PG_SIZE, out);
}

/* ---- persistence, state ---- */

static void pg_store(gcs_pgs_t *m, gcs_pg_t *g)
{
  int rc = gcs_store_put_msg(m->s->store, GCS_PG_TABLE, g->id, ID_PG_SIZE, &g->info->base);
  if (rc < 0)
    log_error("placement group table: storing a group failed: %s", rayc_strerror(rc));
}

void gcs_pg_set_detail(gcs_pg_t *g, const char *detail)
{
  if (g->info->state_detail != protobuf_c_empty_string)
    free(g->info->state_detail);
  g->info->state_detail = detail && *detail ? xstrdup(detail) : (char *)protobuf_c_empty_string;
}

void gcs_pg_set_node(Rayc__Bundle *b, const id_node_t *node)
{
  free(b->node_id.data);
  b->node_id.data = node ? xmemdup(node->b, ID_NODE_SIZE) : NULL;
  b->node_id.len = node ? ID_NODE_SIZE : 0;
}

/* Answers a CreatePlacementGroup: OK, saying whether g is CREATED by now. */
static void pg_answer_create(gcs_pgs_t *m, rpc_call_t *call, const gcs_pg_t *g)
{
  Rayc__CreatePlacementGroupReply rep = RAYC__CREATE_PLACEMENT_GROUP_REPLY__INIT;
  rep.created = g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED;
  gcs_server_reply(m->s, call, &rep.base);
}

static void pg_answer_waiters(gcs_pgs_t *m, gcs_pg_t *g)
{
  gcs_pg_waiter_t *w = g->waiters;
  g->waiters = NULL;
  char hex[2 * ID_PG_SIZE + 1];
  while (w) {
    gcs_pg_waiter_t *next = w->next;
    if (w->create) {
      pg_answer_create(m, w->call, g);
    } else if (g->info->state == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED) {
      Rayc__WaitPlacementGroupUntilReadyReply rep = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REPLY__INIT;
      gcs_server_reply(m->s, w->call, &rep.base);
    } else {
      rpc_reply_error(w->call, RAYC_ENOT_FOUND, "placement group %s was removed%s%s", gcs_pg_hex(g, hex),
                      *g->info->state_detail ? ": " : "", g->info->state_detail);
    }
    free(w);
    w = next;
  }
}

static int pg_waiting_state(Rayc__PlacementGroupState st)
{
  return st == RAYC__PLACEMENT_GROUP_STATE__PG_PENDING || st == RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING;
}

/* Counts a group entering (d 1) or leaving (d -1) state st in m->nwaiting. */
static void pg_count_waiting(gcs_pgs_t *m, Rayc__PlacementGroupState st, int d)
{
  if (pg_waiting_state(st))
    m->nwaiting = d > 0 ? m->nwaiting + 1 : m->nwaiting - 1;
}

static int pg_routine_step(Rayc__PlacementGroupState from, Rayc__PlacementGroupState to, const char *detail)
{
  if (from == RAYC__PLACEMENT_GROUP_STATE__PG_PENDING && to == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED)
    return 1;
  return to == RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED && detail && strcmp(detail, GCS_PG_REMOVED_BY_OWNER) == 0;
}

void gcs_pg_set_state(gcs_pgs_t *m, gcs_pg_t *g, Rayc__PlacementGroupState st, const char *detail)
{
  char hex[2 * ID_PG_SIZE + 1];
  /* The routine steps (PENDING -> CREATED, removal by the owner) are debug lines: at thousands of
   * groups a second, a line each was a write(2) and a formatted line per step. */
  if (g->info->state != st)
    log_msg(pg_routine_step(g->info->state, st, detail) ? LOG_DEBUG : LOG_INFO, "placement group %s (%s): %s -> %s%s%s",
            gcs_pg_hex(g, hex), *g->info->name ? g->info->name : "unnamed", pg_state_name(g->info->state),
            pg_state_name(st), detail ? ": " : "", detail ? detail : "");
  pg_count_waiting(m, g->info->state, -1);
  pg_count_waiting(m, st, 1);
  g->info->state = st;
  if (detail || st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED)
    gcs_pg_set_detail(g, detail);
  if (st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED)
    g->info->ready_time_ms = wall_ms();
  pg_store(m, g);
  if (st == RAYC__PLACEMENT_GROUP_STATE__PG_CREATED || st == RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED)
    pg_answer_waiters(m, g);
}

int gcs_pg_live(const gcs_pg_t *g)
{
  return g->info->state != RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED;
}

void gcs_pg_free(gcs_pg_t *g)
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

/* ---- events ---- */

void gcs_pgs_on_node_dead(gcs_pgs_t *m, const id_node_t *node)
{
  if (!m || m->stopping)
    return;
  gcs_pg_returns_drop_node(m, node);
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);) {
    gcs_pg_t *g = it.value;
    if (!gcs_pg_live(g))
      continue;
    int lost = 0, trying_there = 0;
    for (size_t i = 0; i < g->info->n_bundles; i++) {
      Rayc__Bundle *b = g->info->bundles[i];
      if (b->node_id.len == ID_NODE_SIZE && memcmp(b->node_id.data, node->b, ID_NODE_SIZE) == 0) {
        gcs_pg_set_node(b, NULL);
        lost++;
      }
      trying_there |= g->trying[i] && memcmp(g->try_node[i].b, node->b, ID_NODE_SIZE) == 0;
    }
    if (trying_there) /* the attempt in flight lost a node: start over */
      gcs_pg_attempt_failed(m, g, "a node chosen for it died");
    if (lost) {
      char *msg = xasprintf("%d bundle%s lost with a dead node", lost, lost == 1 ? "" : "s");
      g->retry_at_ms = 0;
      gcs_pg_set_state(m, g, RAYC__PLACEMENT_GROUP_STATE__PG_RESCHEDULING, msg);
      free(msg);
    }
  }
  if (!m->busy)
    gcs_pg_schedule_next(m);
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
    if (!gcs_pg_live(g) || g->info->is_detached || g->info->creator_job_id.len != ID_JOB_SIZE ||
        memcmp(g->info->creator_job_id.data, job->b, ID_JOB_SIZE) != 0)
      continue;
    if (n == cap)
      ids = xrealloc(ids, (cap *= 2) * ID_PG_SIZE);
    memcpy(ids[n++], g->id, ID_PG_SIZE);
  }
  for (size_t i = 0; i < n; i++) {
    gcs_pg_t *g = hmap_get(&m->by_id, ids[i], ID_PG_SIZE);
    if (g && gcs_pg_live(g))
      gcs_pg_remove(m, g, msg);
  }
  free(ids);
}

void gcs_pgs_cron(gcs_pgs_t *m, int64_t now)
{
  if (!m || m->stopping)
    return;
  gcs_pg_cancels_cron(m, now);
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
      if (w->create) {
        pg_answer_create(m, w->call, g);
        free(w);
        continue;
      }
      rpc_reply_error(w->call, RAYC_ETIMEOUT, "placement group %s is still %s after %lld ms%s%s", gcs_pg_hex(g, hex),
                      pg_state_name(g->info->state), (long long)(now - w->since_ms), *g->info->state_detail ? ": " : "",
                      g->info->state_detail);
      free(w);
    }
  }
  if (!m->busy)
    gcs_pg_schedule_next(m);
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

/* Holds a CreatePlacementGroup until g is CREATED or removed, or wait_ms passes (the cron). */
static void pg_hold_create(gcs_pg_t *g, rpc_call_t *call, int32_t wait_ms)
{
  gcs_pg_waiter_t *w = xcalloc(1, sizeof(*w));
  w->call = call;
  w->create = 1;
  w->since_ms = now_ms();
  w->deadline_ms = w->since_ms + (wait_ms < PG_CREATE_WAIT_MAX_MS ? wait_ms : PG_CREATE_WAIT_MAX_MS);
  w->next = g->waiters;
  g->waiters = w;
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
  gcs_pg_t *old = hmap_get(&m->by_id, r->placement_group->placement_group_id.data, ID_PG_SIZE);
  if (old) {
    pg_answer_create(m, call, old); /* a retry */
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
    gcs_pg_set_node(info->bundles[i], NULL);
  }
  gcs_pg_t *g = pg_new(info);
  hmap_put(&m->by_id, g->id, ID_PG_SIZE, g);
  pg_count_waiting(m, info->state, 1);
  char hex[2 * ID_PG_SIZE + 1];
  log_debug("placement group %s (%s): created (PENDING): %zu bundles, %s", gcs_pg_hex(g, hex),
            *info->name ? info->name : "unnamed", info->n_bundles, gcs_pg_strategy_name(info->strategy));
  pg_store(m, g);
  if (!m->busy)
    gcs_pg_schedule(m, g);
  if (r->wait_ms > 0 && g->info->state != RAYC__PLACEMENT_GROUP_STATE__PG_CREATED && gcs_pg_live(g))
    pg_hold_create(g, call, r->wait_ms);
  else
    pg_answer_create(m, call, g);
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
  if (gcs_pg_live(g))
    gcs_pg_remove(s->pgs, g, GCS_PG_REMOVED_BY_OWNER);
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
      if (gcs_pg_live(x) && strcmp(x->info->name, r->name) == 0 &&
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
  } else if (!gcs_pg_live(g)) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "placement group %s was removed%s%s", gcs_pg_hex(g, hex),
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
  pg_count_waiting(m, info->state, 1);
  for (size_t i = 0; !gcs_pg_live(g) && i < info->n_return_nodes; i++) {
    id_node_t node; /* removed, its return queued when the GCS stopped: send it again */
    if (info->return_nodes[i].len != ID_NODE_SIZE)
      continue;
    memcpy(node.b, info->return_nodes[i].data, ID_NODE_SIZE);
    gcs_pg_return_later(m, g->id, &node, NULL);
  }
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
      if (gcs_pg_live(g))
        live++;
      else if (m->nremoved < GCS_PG_REMOVED_KEPT)
        memcpy(m->removed[m->nremoved++], g->id, ID_PG_SIZE);
    }
    log_info("placement group table: loaded %d groups (%d not removed) from storage", rc, live);
  }
  gcs_pg_returns_start(m);
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
  gcs_pg_returns_stop(m);
  rpc_client_destroy(m->client); /* callbacks see m->stopping */
  m->client = NULL;
}

void gcs_pgs_destroy(gcs_pgs_t *m)
{
  if (!m)
    return;
  gcs_pgs_shutdown(m);
  for (hmap_iter_t it = hmap_iter(&m->by_id); hmap_next(&it);)
    gcs_pg_free(it.value);
  hmap_release(&m->by_id);
  free(m->full);
  gcs_pg_cancels_release(m);
  gcs_pg_returns_release(m);
  free(m->removed);
  free(m);
}
