/*
 * The GCS node table and its RPC handlers (NodeInfoGcsService). See gcs_node.h for the state
 * machine and the cluster view. Nodes are kept in an array in registration order: clusters have at
 * most thousands of nodes and every lookup is by a 28-byte id, so a linear scan costs microseconds.
 */
#include "gcs/gcs_node.h"

#include "common/hb_udp.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_metrics.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GCS_NODE_TABLE "NODE"

const char *gcs_node_state_name(enum gcs_node_state state)
{
  return state == GCS_NODE_ALIVE ? "ALIVE" : "DEAD";
}

static int gcs_node_check_id(size_t len, const char **why)
{
  if (len == ID_NODE_SIZE)
    return 0;
  if (why)
    *why = "node_id must be 28 bytes";
  return RAYC_EINVALID_ARGUMENT;
}

static int gcs_node_check_resources(Rayc__ResourceEntry *const *v, size_t n, const char **why)
{
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(v[i]->amount) || v[i]->amount < 0 || v[i]->name[0] == '\0') {
      if (why)
        *why = "resources need a name and a finite amount >= 0";
      return RAYC_EINVALID_ARGUMENT;
    }
  }
  return 0;
}

static int gcs_node_check_labels(Rayc__Label *const *v, size_t n, const char **why)
{
  for (size_t i = 0; i < n; i++) {
    int bad = v[i]->key[0] == '\0';
    for (size_t j = 0; j < i && !bad; j++)
      bad = strcmp(v[i]->key, v[j]->key) == 0;
    if (bad) {
      if (why)
        *why = "labels need unique, non-empty keys";
      return RAYC_EINVALID_ARGUMENT;
    }
  }
  return 0;
}

static int gcs_node_check_info(const Rayc__NodeInfo *info, const char **why)
{
  int rc = gcs_node_check_id(info->node_id.len, why);
  if (rc == 0)
    rc = gcs_node_check_resources(info->resources_total, info->n_resources_total, why);
  if (rc == 0)
    rc = gcs_node_check_resources(info->resources_available, info->n_resources_available, why);
  if (rc == 0)
    rc = gcs_node_check_labels(info->labels, info->n_labels, why);
  return rc;
}

/* 1 when two resource lists are the same, entry by entry. */
static int gcs_node_same_resources(Rayc__ResourceEntry *const *a, size_t na, Rayc__ResourceEntry *const *b, size_t nb)
{
  if (na != nb)
    return 0;
  for (size_t i = 0; i < na; i++)
    if (a[i]->amount != b[i]->amount || strcmp(a[i]->name, b[i]->name) != 0)
      return 0;
  return 1;
}

static void gcs_node_free(gcs_node_t *n)
{
  if (!n)
    return;
  free(n->info); /* compact (gcs_pb_dup_compact) */
  pb_free(n->hb);
  free(n->death_reason);
  free(n);
}

void gcs_node_set_state(gcs_node_t *n, enum gcs_node_state state, const char *reason)
{
  char id[9];
  log_info("node %s: %s -> %s%s%s", id_short(n->id.b, ID_NODE_SIZE, id), gcs_node_state_name(n->state),
           gcs_node_state_name(state), reason ? ": " : "", reason ? reason : "");
  n->state = state;
  free(n->death_reason);
  n->death_reason = state == GCS_NODE_DEAD && reason ? xstrdup(reason) : NULL;
}

void gcs_node_view(const gcs_node_t *n, Rayc__NodeInfo *out)
{
  *out = *n->info;
  out->state = n->state == GCS_NODE_ALIVE ? RAYC__NODE_STATE__NODE_ALIVE : RAYC__NODE_STATE__NODE_DEAD;
  if (n->hb) {
    out->n_resources_available = n->hb->n_resources_available;
    out->resources_available = n->hb->resources_available;
    if (n->hb->n_resources_total > 0) { /* placement-group bundles changed the total */
      out->n_resources_total = n->hb->n_resources_total;
      out->resources_total = n->hb->resources_total;
    }
  } else if (out->n_resources_available == 0) {
    out->n_resources_available = n->info->n_resources_total;
    out->resources_available = n->info->resources_total;
  }
  out->last_heartbeat_ms = n->last_heartbeat_wall_ms;
  out->draining = n->state == GCS_NODE_ALIVE && n->hb && n->hb->draining;
  out->n_infeasible_demands = n->state == GCS_NODE_ALIVE && n->hb ? n->hb->n_infeasible_demands : 0;
  out->infeasible_demands = out->n_infeasible_demands ? n->hb->infeasible_demands : NULL;
  out->death_reason = n->death_reason ? n->death_reason : (char *)protobuf_c_empty_string;
}

/* Moves the view on for a change of n. */
static void gcs_nodes_bump(gcs_nodes_t *t, gcs_node_t *n)
{
  n->view_changed = ++t->view_version;
}

/* After a state change: writes n through to the store (errors are logged: memory stays
 * authoritative), publishes it and moves the cluster view on. */
static void gcs_nodes_changed(gcs_nodes_t *t, gcs_node_t *n)
{
  Rayc__NodeInfo view;
  gcs_node_view(n, &view);
  int rc = gcs_store_put_msg(t->store, GCS_NODE_TABLE, n->id.b, ID_NODE_SIZE, &view.base);
  if (rc < 0)
    log_error("node table: storing a node failed: %s", rayc_strerror(rc));
  gcs_pubsub_publish_node(t->pubsub, &view);
  gcs_nodes_bump(t, n);
}

gcs_node_t *gcs_nodes_find(const gcs_nodes_t *t, const void *id, size_t len)
{
  if (len != ID_NODE_SIZE)
    return NULL;
  for (size_t i = 0; i < t->n; i++)
    if (memcmp(t->v[i]->id.b, id, ID_NODE_SIZE) == 0)
      return t->v[i];
  return NULL;
}

static gcs_node_t *gcs_nodes_add(gcs_nodes_t *t, Rayc__NodeInfo *info, int64_t now)
{
  gcs_node_t *n = xcalloc(1, sizeof(*n));
  memcpy(n->id.b, info->node_id.data, ID_NODE_SIZE);
  n->info = info;
  n->state = GCS_NODE_ALIVE;
  n->last_seen_ms = now;
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 16;
    t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
  }
  t->v[t->n++] = n;
  return n;
}

struct gcs_nodes_load {
  gcs_nodes_t *t;
  int64_t now;
};

static void gcs_nodes_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_nodes_t *t = ((struct gcs_nodes_load *)arg)->t;
  int64_t now = ((struct gcs_nodes_load *)arg)->now;
  Rayc__NodeInfo *info = (Rayc__NodeInfo *)gcs_pb_unpack_compact(&rayc__node_info__descriptor, vlen, val);
  if (!info || info->node_id.len != ID_NODE_SIZE || klen != ID_NODE_SIZE ||
      memcmp(key, info->node_id.data, ID_NODE_SIZE) != 0 || gcs_nodes_find(t, key, klen)) {
    log_warn("node table: skipping an unreadable stored node");
    free(info);
    return;
  }
  gcs_node_t *n = gcs_nodes_add(t, info, now);
  n->last_heartbeat_wall_ms = info->last_heartbeat_ms;
  n->view_changed = t->version0;
  if (info->state == RAYC__NODE_STATE__NODE_DEAD) {
    n->state = GCS_NODE_DEAD;
    n->death_reason = xstrdup(info->death_reason);
  }
}

void gcs_nodes_init(gcs_nodes_t *t, gcs_store_t *store, int64_t now, int64_t version0)
{
  memset(t, 0, sizeof(*t));
  t->store = store;
  t->view_version = version0;
  t->version0 = version0;
  struct gcs_nodes_load arg = {t, now};
  int rc = gcs_store_scan(store, GCS_NODE_TABLE, NULL, 0, gcs_nodes_load_one, &arg);
  if (rc > 0)
    log_info("node table: loaded %d nodes from storage", rc);
}

void gcs_nodes_release(gcs_nodes_t *t)
{
  for (size_t i = 0; i < t->n; i++)
    gcs_node_free(t->v[i]);
  free(t->v);
  memset(t, 0, sizeof(*t));
}

/* A raylet restarted on the same host (systemd restarting it, same ip and session directory)
 * registers as a new node: its old incarnation's workers died with it, so the old node is marked
 * DEAD now rather than after the health checks fail, and its actors and tasks move on at once. */
static void gcs_nodes_retire_previous(gcs_nodes_t *t, const gcs_node_t *n)
{
  const Rayc__NodeInfo *ni = n->info;
  if (!ni->session_dir || !*ni->session_dir)
    return;
  for (size_t i = 0; i < t->n; i++) {
    gcs_node_t *o = t->v[i];
    if (o == n || o->state == GCS_NODE_DEAD || strcmp(o->info->ip, ni->ip) != 0 ||
        strcmp(o->info->session_dir, ni->session_dir) != 0)
      continue;
    char id[9];
    char *why = xasprintf("replaced by node %s: its raylet restarted on the same host and session",
                          id_short(n->id.b, ID_NODE_SIZE, id));
    gcs_nodes_mark_dead(t, o, why);
    free(why);
  }
}

int gcs_nodes_register(gcs_nodes_t *t, const Rayc__NodeInfo *info, int64_t now, const char **why)
{
  int rc = gcs_node_check_info(info, why);
  if (rc < 0)
    return rc;
  /* Kept for the node's life: one block instead of ~25 (gcs_pb_dup_compact). */
  Rayc__NodeInfo *copy = (Rayc__NodeInfo *)gcs_pb_dup_compact(&info->base);
  gcs_node_t *n = gcs_nodes_find(t, info->node_id.data, info->node_id.len);
  char id[9];
  if (n) {
    free(n->info);
    pb_free(n->hb);
    n->info = copy;
    n->hb = NULL;
    n->report_stale = 0;
    n->last_seen_ms = now;
    gcs_node_set_state(n, GCS_NODE_ALIVE, "registered again");
  } else {
    n = gcs_nodes_add(t, copy, now);
    log_info("node %s: registered (ALIVE): ip %s, raylet port %d%s", id_short(n->id.b, ID_NODE_SIZE, id), copy->ip,
             copy->raylet_port, copy->is_head ? ", head" : "");
  }
  n->last_heartbeat_wall_ms = wall_ms();
  n->incarnation++;
  n->udp_nonce = n->udp_seq = 0; /* the next gRPC heartbeat names the raylet's nonce */
  n->failures = 0;
  n->next_probe_ms = now;
  gcs_nodes_changed(t, n);
  gcs_nodes_retire_previous(t, n);
  return 0;
}

int gcs_nodes_unregister(gcs_nodes_t *t, const void *id, size_t len, const char *reason, int drained, const char **why)
{
  int rc = gcs_node_check_id(len, why);
  if (rc < 0)
    return rc;
  gcs_node_t *n = gcs_nodes_find(t, id, len);
  if (!n) {
    if (why)
      *why = "unknown node";
    return RAYC_ENOT_FOUND;
  }
  if (n->state != GCS_NODE_DEAD) {
    char *r = xasprintf("%s%s%s", drained ? "drained" : "unregistered by its raylet", reason && *reason ? ": " : "",
                        reason ? reason : "");
    gcs_nodes_mark_dead(t, n, r);
    free(r);
  }
  return 0;
}

void gcs_nodes_mark_dead(gcs_nodes_t *t, gcs_node_t *n, const char *reason)
{
  if (n->state == GCS_NODE_DEAD)
    return;
  gcs_node_set_state(n, GCS_NODE_DEAD, reason);
  gcs_nodes_changed(t, n);
  if (t->on_dead)
    t->on_dead(t->on_dead_arg, t, n);
}

static int gcs_node_check_report(const Rayc__ReportHeartbeatRequest *hb, const char **why)
{
  int rc = gcs_node_check_id(hb->node_id.len, why);
  if (rc == 0)
    rc = gcs_node_check_resources(hb->resources_available, hb->n_resources_available, why);
  for (size_t i = 0; rc == 0 && i < hb->n_infeasible_demands; i++) {
    const Rayc__ResourceDemand *d = hb->infeasible_demands[i];
    rc = gcs_node_check_resources(d->shape, d->n_shape, why);
    if (rc == 0 && d->count < 0) {
      if (why)
        *why = "demand counts must not be negative";
      rc = RAYC_EINVALID_ARGUMENT;
    }
  }
  if (rc == 0)
    rc = gcs_node_check_resources(hb->resources_total, hb->n_resources_total, why);
  return rc;
}

/* Keeps a full report (copied) as n's, moving the view on when it changes what the view shows. */
static void gcs_node_take_report(gcs_nodes_t *t, gcs_node_t *n, const Rayc__ReportHeartbeatRequest *hb)
{
  const Rayc__ReportHeartbeatRequest *old = n->hb;
  if ((old ? old->draining : 0) != hb->draining) {
    char id[9];
    log_info("node %s: %s", id_short(n->id.b, ID_NODE_SIZE, id), hb->draining ? "draining" : "no longer draining");
    gcs_nodes_bump(t, n);
  }
  if (!old ? !gcs_node_same_resources(n->info->resources_total, n->info->n_resources_total, hb->resources_available,
                                      hb->n_resources_available)
           : !gcs_node_same_resources(old->resources_available, old->n_resources_available, hb->resources_available,
                                      hb->n_resources_available) ||
                 !gcs_node_same_resources(old ? old->resources_total : NULL, old ? old->n_resources_total : 0,
                                          hb->resources_total, hb->n_resources_total))
    gcs_nodes_bump(t, n);
  pb_free(n->hb);
  n->hb = (Rayc__ReportHeartbeatRequest *)gcs_pb_dup(&hb->base);
  n->report_stale = 0;
}

int gcs_nodes_heartbeat(gcs_nodes_t *t, const Rayc__ReportHeartbeatRequest *hb, int64_t now, const char **why)
{
  int rc = gcs_node_check_report(hb, why);
  if (rc < 0)
    return rc;
  gcs_node_t *n = gcs_nodes_find(t, hb->node_id.data, hb->node_id.len);
  if (!n || n->state == GCS_NODE_DEAD) {
    if (why)
      *why = n ? "node is dead" : "unknown node";
    return RAYC_ENOT_FOUND;
  }
  n->last_seen_ms = now;
  n->last_heartbeat_wall_ms = wall_ms();
  if (hb->udp_nonce && hb->udp_nonce != n->udp_nonce) { /* over gRPC only: names the datagrams' nonce */
    n->udp_nonce = hb->udp_nonce;
    n->udp_seq = hb->udp_seq;
  } else if (hb->udp_nonce && hb->udp_seq > n->udp_seq) {
    n->udp_seq = hb->udp_seq;
  }
  if (hb->unchanged) /* the report the table holds stands, if it holds the raylet's own */
    return n->hb && !n->report_stale ? 0 : 1;
  if (hb->report_seq > 0 && hb->report_seq < n->report_seq)
    return 0; /* older than a bundle call's answer the table holds: the next heartbeat is newer */
  if (hb->report_seq > 0)
    n->report_seq = hb->report_seq;
  gcs_node_take_report(t, n, hb);
  return 0;
}

/* A copy of v[0..n) as protobuf-c's unpack makes it (each entry and name its own block), so that
 * pb_free frees it with the message; NULL for none. */
static Rayc__ResourceEntry **node_res_dup(Rayc__ResourceEntry *const *v, size_t n)
{
  if (n == 0)
    return NULL;
  Rayc__ResourceEntry **out = xcalloc(n, sizeof(*out));
  for (size_t i = 0; i < n; i++) {
    out[i] = xmalloc(sizeof(*out[i]));
    rayc__resource_entry__init(out[i]);
    out[i]->name = xstrdup(v[i]->name);
    out[i]->amount = v[i]->amount;
  }
  return out;
}

void gcs_nodes_set_resources(gcs_nodes_t *t, gcs_node_t *n, Rayc__ResourceEntry **avail, size_t navail,
                             Rayc__ResourceEntry **total, size_t ntotal, int64_t seq)
{
  if (n->state != GCS_NODE_ALIVE || gcs_node_check_resources(avail, navail, NULL) < 0 ||
      gcs_node_check_resources(total, ntotal, NULL) < 0 || (seq > 0 && seq < n->report_seq))
    return;
  if (seq > 0)
    n->report_seq = seq;
  /* Built by hand, not packed and unpacked (gcs_pb_dup: ~23k instructions per bundle answer, 11%
   * of the GCS's work per placement group): the two resource lists copied, the demands moved
   * over from the last report, freed as one unpacked message. */
  Rayc__ReportHeartbeatRequest *hb = xmalloc(sizeof(*hb)), *old = n->hb;
  rayc__report_heartbeat_request__init(hb);
  hb->node_id.data = xmalloc(ID_NODE_SIZE);
  memcpy(hb->node_id.data, n->id.b, ID_NODE_SIZE);
  hb->node_id.len = ID_NODE_SIZE;
  hb->view_version = old ? old->view_version : 0;
  hb->resources_available = node_res_dup(avail, navail);
  hb->n_resources_available = navail;
  hb->resources_total = node_res_dup(total, ntotal);
  hb->n_resources_total = ntotal;
  hb->draining = old && old->draining;
  if (old) {
    hb->infeasible_demands = old->infeasible_demands;
    hb->n_infeasible_demands = old->n_infeasible_demands;
    old->infeasible_demands = NULL;
    old->n_infeasible_demands = 0;
  }
  n->hb = hb;
  pb_free(old);
  n->report_stale = 1; /* the raylet's last report no longer stands: it must send its next in full */
  gcs_nodes_bump(t, n);
}

int gcs_nodes_check_timeouts(gcs_nodes_t *t, int64_t now, int timeout_ms)
{
  int dead = 0;
  for (size_t i = 0; timeout_ms > 0 && i < t->n; i++) {
    gcs_node_t *n = t->v[i];
    int64_t silent = now - n->last_seen_ms;
    if (n->state != GCS_NODE_ALIVE || silent <= timeout_ms)
      continue;
    char *reason = xasprintf("no heartbeat for %lld ms (timeout %d ms)", (long long)silent, timeout_ms);
    gcs_nodes_mark_dead(t, n, reason);
    free(reason);
    dead++;
  }
  return dead;
}

/* 1 when two demand shapes name the same amounts (in any order). */
static int gcs_same_shape(const Rayc__ResourceDemand *a, const Rayc__ResourceDemand *b)
{
  if (a->n_shape != b->n_shape)
    return 0;
  for (size_t i = 0; i < a->n_shape; i++) {
    size_t j = 0;
    while (j < b->n_shape && strcmp(a->shape[i]->name, b->shape[j]->name) != 0)
      j++;
    if (j == b->n_shape || a->shape[i]->amount != b->shape[j]->amount)
      return 0;
  }
  return 1;
}

Rayc__ResourceDemand **gcs_nodes_demands(const gcs_nodes_t *t, size_t *n)
{
  size_t cap = 0, k = 0;
  for (size_t i = 0; i < t->n; i++)
    if (t->v[i]->state == GCS_NODE_ALIVE && t->v[i]->hb)
      cap += t->v[i]->hb->n_infeasible_demands;
  Rayc__ResourceDemand **v = xcalloc(cap ? cap : 1, sizeof(*v));
  for (size_t i = 0; i < t->n; i++) {
    const gcs_node_t *node = t->v[i];
    for (size_t d = 0; node->state == GCS_NODE_ALIVE && node->hb && d < node->hb->n_infeasible_demands; d++) {
      const Rayc__ResourceDemand *x = node->hb->infeasible_demands[d];
      size_t j = 0;
      while (j < k && !gcs_same_shape(v[j], x))
        j++;
      if (j == k) {
        v[k] = xmalloc(sizeof(**v));
        rayc__resource_demand__init(v[k]);
        v[k]->shape = x->shape; /* borrowed from the heartbeat */
        v[k]->n_shape = x->n_shape;
        k++;
      }
      v[j]->count += x->count;
    }
  }
  *n = k;
  return v;
}

void gcs_demands_free(Rayc__ResourceDemand **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* ---- handlers ---- */

void gcs_node_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__RegisterNodeRequest *r = (const Rayc__RegisterNodeRequest *)req;
  const char *why = "no node given";
  int rc = r->node ? gcs_nodes_register(&s->nodes, r->node, now_ms(), &why) : RAYC_EINVALID_ARGUMENT;
  if (rc < 0) {
    rpc_reply_error(call, rc, "RegisterNode: %s", why);
    return;
  }
  s->last_join_ms = now_ms(); /* gcs_hb_udp_drain trims the heap once the joins' connections closed */
  char id[9];
  gcs_event_add(s, RAYC__CLUSTER_EVENT_SEVERITY__EVENT_INFO, "NODE_ADDED", r->node->node_id.data, NULL, NULL, NULL,
                "node %s (%s%s) joined", id_short(r->node->node_id.data, ID_NODE_SIZE, id), r->node->ip,
                r->node->is_head ? ", head" : "");
  Rayc__RegisterNodeReply reply = RAYC__REGISTER_NODE_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_node_on_unregister(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__UnregisterNodeRequest *r = (const Rayc__UnregisterNodeRequest *)req;
  const char *why = "";
  int rc = gcs_nodes_unregister(&s->nodes, r->node_id.data, r->node_id.len, r->reason, r->drained, &why);
  if (rc < 0) {
    rpc_reply_error(call, rc, "UnregisterNode: %s", why);
    return;
  }
  Rayc__UnregisterNodeReply reply = RAYC__UNREGISTER_NODE_REPLY__INIT;
  gcs_server_reply(s, call, &reply.base);
}

void gcs_node_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  (void)req;
  Rayc__NodeInfo *views = xcalloc(s->nodes.n, sizeof(*views));
  Rayc__NodeInfo **ptrs = xcalloc(s->nodes.n, sizeof(*ptrs));
  for (size_t i = 0; i < s->nodes.n; i++) {
    gcs_node_view(s->nodes.v[i], &views[i]);
    ptrs[i] = &views[i];
  }
  Rayc__GetAllNodeInfoReply reply = RAYC__GET_ALL_NODE_INFO_REPLY__INIT;
  reply.n_nodes = s->nodes.n;
  reply.nodes = ptrs;
  reply.infeasible_demands = gcs_nodes_demands(&s->nodes, &reply.n_infeasible_demands);
  reply.gcs_metrics_port = gcs_metrics_port(s);
  gcs_server_reply(s, call, &reply.base);
  gcs_demands_free(reply.infeasible_demands, reply.n_infeasible_demands);
  free(ptrs);
  free(views);
}

void gcs_node_count_heartbeat(const Rayc__ReportHeartbeatRequest *r, const Rayc__ClusterView *v)
{
  metrics_family_t *hb = metrics_family("rayc_gcs_heartbeats_total", METRICS_COUNTER,
                                        "Heartbeats received, by whether they carried the node's report.", "Report");
  metrics_add(metrics_series1(hb, r->unchanged ? "unchanged" : "full"), 1);
  if (!v)
    return;
  metrics_family_t *sent = metrics_family("rayc_gcs_view_entries_sent_total", METRICS_COUNTER,
                                          "Cluster view entries sent on heartbeat replies, by full view or delta.",
                                          "Kind");
  metrics_add(metrics_series1(sent, v->delta ? "delta" : "full"), (double)(v->n_nodes + v->n_removed));
}

/* Holds an idle heartbeat's call for gcs_node_heartbeats_flush. */
static void gcs_node_hold_heartbeat(gcs_server_t *s, rpc_call_t *call)
{
  if (s->n_hb_held == s->cap_hb_held) {
    s->cap_hb_held = s->cap_hb_held ? 2 * s->cap_hb_held : 64;
    s->hb_held = xrealloc(s->hb_held, s->cap_hb_held * sizeof(*s->hb_held));
  }
  s->hb_held[s->n_hb_held++] = call;
}

void gcs_node_heartbeats_flush(gcs_server_t *s)
{
  Rayc__ReportHeartbeatReply reply = RAYC__REPORT_HEARTBEAT_REPLY__INIT;
  reply.job_seq = gcs_pubsub_channel_seq(&s->pubsub, RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB);
  reply.pubsub_epoch = s->pubsub.epoch;
  reply.udp_version = HB_UDP_VERSION;
  for (size_t i = 0; i < s->n_hb_held; i++)
    gcs_server_reply(s, s->hb_held[i], &reply.base);
  s->n_hb_held = 0;
  if (s->stopping) {
    free(s->hb_held);
    s->hb_held = NULL;
    s->cap_hb_held = 0;
  }
}

int gcs_node_heartbeat_lazy(const ProtobufCMessage *req)
{
  return ((const Rayc__ReportHeartbeatRequest *)req)->unchanged;
}

void gcs_node_on_heartbeat(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  gcs_server_t *s = ctx;
  const Rayc__ReportHeartbeatRequest *r = (const Rayc__ReportHeartbeatRequest *)req;
  const char *why = "";
  /* Liveness as of its arrival: an idle heartbeat waits for the cron tick (gcs_node_heartbeat_lazy) */
  int rc = gcs_nodes_heartbeat(&s->nodes, r, rpc_call_arrival_ms(call), &why);
  if (rc == RAYC_EINVALID_ARGUMENT) {
    rpc_reply_error(call, rc, "ReportHeartbeat: %s", why);
    return;
  }
  Rayc__ReportHeartbeatReply reply = RAYC__REPORT_HEARTBEAT_REPLY__INIT;
  gcs_cluster_view_t view = {0};
  reply.unknown_node = rc == RAYC_ENOT_FOUND;
  reply.report_wanted = rc == 1;
  const gcs_node_t *known = gcs_nodes_find(&s->nodes, r->node_id.data, r->node_id.len);
  reply.node_dead = known && known->state == GCS_NODE_DEAD;
  reply.job_seq = gcs_pubsub_channel_seq(&s->pubsub, RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB);
  reply.pubsub_epoch = s->pubsub.epoch;
  reply.udp_version = HB_UDP_VERSION;
  if (!reply.unknown_node && gcs_nodes_view_since(&s->nodes, r->view_epoch, r->view_version, &view))
    reply.cluster_view = &view.msg;
  gcs_node_count_heartbeat(r, reply.cluster_view);
  if (r->unchanged && rc == 0 && !reply.node_dead && !reply.cluster_view && !s->stopping)
    gcs_node_hold_heartbeat(s, call); /* idle: nothing to say that cannot wait for the cron */
  else
    gcs_server_reply(s, call, &reply.base);
  gcs_cluster_view_release(&view);
}
