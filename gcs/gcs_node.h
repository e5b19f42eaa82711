/*
 * The GCS node table (Ray's GcsNodeManager): which raylets belong to the cluster, whether they are
 * alive, and the cluster resource view built from their reports.
 *
 * States: a node enters ALIVE when its raylet registers (RegisterNode, which also replaces an
 * earlier entry with the same id: a raylet that lost the GCS registers again). It becomes DEAD when
 * its raylet unregisters, when its health checks fail (gcs_health.c), or when no heartbeat arrived
 * for the heartbeat timeout (if one is set). A heartbeat from a node that is unknown or DEAD is
 * answered with unknown_node so that the raylet registers again. Every state change goes through
 * gcs_node_set_state(), which logs it; the table then writes the node through to the store (table
 * "NODE", key = node id), publishes it on the NODE channel and calls the on_dead hook for a death.
 * Heartbeats only update memory.
 *
 * After a GCS restart the nodes the store holds come back in their stored state, ALIVE ones with a
 * fresh start: their raylets' heartbeats keep them alive, and health checks kill those that never
 * come back.
 *
 * The cluster view: every ALIVE node's address, resources and labels, with a version that changes
 * whenever the view does (registration, death, a heartbeat reporting other available resources).
 * Versions start at the wall-clock ms of the GCS start (the epoch) and count up, so they never
 * repeat across restarts. Each node entry records the version of its last change; a heartbeat
 * reply carries nothing when the raylet's version is current, the changed entries when it holds an
 * older version of this epoch, and the full view otherwise (gcs_node_view.c). A raylet's report
 * (available and total resources, draining, infeasible demands) travels only when it changed: an
 * idle heartbeat says `unchanged` and carries no resources.
 */
#ifndef RAYC_GCS_NODE_H
#define RAYC_GCS_NODE_H

#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "gcs/gcs_pubsub.h"
#include "gcs/gcs_store.h"

#include <stddef.h>
#include <stdint.h>

enum gcs_node_state { GCS_NODE_ALIVE, GCS_NODE_DEAD };

typedef struct gcs_node {
  id_node_t id;
  enum gcs_node_state state;
  Rayc__NodeInfo *info;             /* owned, compact (free() it): as registered (its dynamic fields are ignored) */
  Rayc__ReportHeartbeatRequest *hb; /* owned: the last heartbeat; NULL before the first */
  int64_t last_seen_ms;             /* monotonic: registration or last heartbeat */
  int64_t last_heartbeat_wall_ms;   /* wall clock, reported to clients */
  char *death_reason;               /* owned; NULL while ALIVE */
  /* health checks (gcs_health.c) */
  uint64_t incarnation; /* counts registrations: a probe of an older one is ignored */
  int probe_in_flight;
  int64_t next_probe_ms; /* monotonic */
  int failures;          /* consecutive failed probes */
  int64_t view_changed;  /* the view version of this node's last change (gcs_node_view.c) */
  int report_stale;      /* the GCS replaced the raylet's report: an `unchanged` heartbeat is refused */
  int64_t report_seq;    /* the newest resource snapshot taken (ReportHeartbeatRequest.report_seq) */
  uint64_t udp_nonce;    /* the raylet's boot nonce from its last gRPC heartbeat; 0: none yet */
  uint64_t udp_seq;      /* the highest heartbeat datagram sequence number seen (gcs_hb_udp.c) */
} gcs_node_t;

struct gcs_nodes;
/* Called after a node became DEAD (and was stored and published). */
typedef void (*gcs_node_dead_fn)(void *arg, struct gcs_nodes *t, gcs_node_t *n);

typedef struct gcs_nodes {
  gcs_store_t *store;   /* borrowed */
  gcs_pubsub_t *pubsub; /* borrowed; NULL: nothing published */
  gcs_node_dead_fn on_dead;
  void *on_dead_arg;
  gcs_node_t **v; /* owned, in registration order */
  size_t n, cap;
  int64_t view_version; /* the cluster view's version */
  int64_t version0;     /* the first version: the view's epoch */
} gcs_nodes_t;

/* Makes an empty table over store (borrowed) and loads the nodes the store holds, the ALIVE ones
 * as just seen at now (monotonic ms). view_version starts at version0 (the GCS passes its start
 * time in wall-clock ms). Release with gcs_nodes_release(). */
void gcs_nodes_init(gcs_nodes_t *t, gcs_store_t *store, int64_t now, int64_t version0);
void gcs_nodes_release(gcs_nodes_t *t);

/* Returns the node with this id (borrowed), or NULL. */
gcs_node_t *gcs_nodes_find(const gcs_nodes_t *t, const void *id, size_t len);

/* The functions below that take peer input return RAYC_EINVALID_ARGUMENT for a node id that is
 * not ID_NODE_SIZE bytes, a resource amount that is negative or not finite, or a label with an
 * empty or repeated key, with *why (if not NULL) set to a static explanation. */

/* Registers info (copied) as ALIVE, replacing an entry with the same id. 0 or an error. */
int gcs_nodes_register(gcs_nodes_t *t, const Rayc__NodeInfo *info, int64_t now, const char **why);

/* Marks a node DEAD with reason: "unregistered by its raylet: <reason>", or with drained (its
 * raylet finished a drain) "drained: <reason>". 0, RAYC_ENOT_FOUND or RAYC_EINVALID_ARGUMENT. */
int gcs_nodes_unregister(gcs_nodes_t *t, const void *id, size_t len, const char *reason, int drained, const char **why);

/* Records a heartbeat (copied). 0; 1 when the heartbeat says `unchanged` but the table holds no
 * report of the node to keep (after a GCS restart, or gcs_nodes_set_resources): the raylet should
 * send its full report; RAYC_ENOT_FOUND when the node is unknown or DEAD (it should register
 * again); RAYC_EINVALID_ARGUMENT. */
int gcs_nodes_heartbeat(gcs_nodes_t *t, const Rayc__ReportHeartbeatRequest *hb, int64_t now, const char **why);

/* Counts what heartbeats cost (gRPC and UDP alike): reports received in full or as `unchanged`,
 * and view entries sent (nodes plus removed ids) in full views and in deltas (v may be NULL). An
 * idle cluster moves only the first. */
void gcs_node_count_heartbeat(const Rayc__ReportHeartbeatRequest *r, const Rayc__ClusterView *v);

/* Replaces what the table knows of an ALIVE node's resources (the raylet's answer to a bundle
 * call, snapshot seq: fresher than its last heartbeat) and moves the view on. Invalid input, and
 * a snapshot older than the one the table holds, are ignored. */
void gcs_nodes_set_resources(gcs_nodes_t *t, gcs_node_t *n, Rayc__ResourceEntry **avail, size_t navail,
                             Rayc__ResourceEntry **total, size_t ntotal, int64_t seq);

/* Marks an ALIVE node DEAD with reason (copied): stores, publishes and calls on_dead. No-op for a
 * DEAD node. */
void gcs_nodes_mark_dead(gcs_nodes_t *t, gcs_node_t *n, const char *reason);

/* Marks DEAD every ALIVE node not heard from for timeout_ms (<= 0: never); returns how many. */
int gcs_nodes_check_timeouts(gcs_nodes_t *t, int64_t now, int timeout_ms);

/* Changes a node's state, logging the transition (and reason, kept for DEAD). */
void gcs_node_set_state(gcs_node_t *n, enum gcs_node_state state, const char *reason);

/* Fills out as a shallow view of n for a reply or the store: it borrows n's memory and stays valid
 * until n changes. */
void gcs_node_view(const gcs_node_t *n, Rayc__NodeInfo *out);

/* Returns "ALIVE" or "DEAD". */
const char *gcs_node_state_name(enum gcs_node_state state);

/* A cluster view borrowing the table's memory; valid until the table changes. */
typedef struct gcs_cluster_view {
  Rayc__ClusterView msg;
  Rayc__NodeResourceView *nodes;
  Rayc__NodeResourceView **ptrs;
  ProtobufCBinaryData *removed;
} gcs_cluster_view_t;

/* Sums the infeasible demands the ALIVE nodes reported by shape into a new array (*n entries;
 * free with gcs_demands_free). */
Rayc__ResourceDemand **gcs_nodes_demands(const gcs_nodes_t *t, size_t *n);
void gcs_demands_free(Rayc__ResourceDemand **v, size_t n);

/* Fills v with every ALIVE node that is not draining; release with gcs_cluster_view_release(). */
void gcs_nodes_cluster_view(const gcs_nodes_t *t, gcs_cluster_view_t *v);

/* What a raylet holding the view (epoch, version) needs: 0 when it is current (v is left empty);
 * else 1 with v filled with the delta since version (same epoch, version not ahead of the table)
 * or the full view. Release v with gcs_cluster_view_release() either way. */
int gcs_nodes_view_since(const gcs_nodes_t *t, int64_t epoch, int64_t version, gcs_cluster_view_t *v);
void gcs_cluster_view_release(gcs_cluster_view_t *v);

/* Bytes a ClusterView's fields other than its entries take packed, at most: version, epoch and
 * base_version (a tag and a 10-byte varint each) and delta (2). */
enum { GCS_VIEW_HEAD_MAX = 3 * 11 + 2 };

/* As gcs_nodes_view_since, for a reply of at most max_bytes (a heartbeat datagram's view): 0 when
 * the raylet is current; 1 with v filled with the delta since version, or with its oldest changes
 * that fit in max_bytes packed (v->msg.version is then the version of the last change it carries,
 * short of the table's: the delta since it brings the rest); -1 (v empty) when a full view is due
 * (another epoch), more than max_entries nodes changed since version, or not even one fits. */
int gcs_nodes_view_since_max(const gcs_nodes_t *t, int64_t epoch, int64_t version, size_t max_entries,
                             size_t max_bytes, gcs_cluster_view_t *v);

/* 1 when a raylet holding the view (epoch, version) is current (gcs_nodes_view_since would say 0). */
int gcs_nodes_view_current(const gcs_nodes_t *t, int64_t epoch, int64_t version);

struct gcs_server;

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_node_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_unregister(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_heartbeat(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
/* The heartbeat row's `lazy` test: a report marked unchanged (an idle node's) is handed to the loop
 * without waking it and handled at the next cron tick, with liveness taken at its arrival. */
int gcs_node_heartbeat_lazy(const ProtobufCMessage *req);
/* Answers the idle heartbeats gcs_node_on_heartbeat held (from the cron, and when stopping). An
 * idle node's heartbeat (report unchanged, its view current, nothing to tell it) is answered with
 * the others that came within the cron period: the replies go out in one burst, so the gRPC
 * thread wakes once for all their completions instead of once (or twice) for each. Liveness is
 * taken when the heartbeat arrives, so health checks see no delay. */
void gcs_node_heartbeats_flush(struct gcs_server *s);

#endif
