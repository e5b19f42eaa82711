/*
 * The GCS node table (Ray's GcsNodeManager): which raylets belong to the cluster and whether they
 * are alive.
 *
 * A node enters ALIVE when its raylet registers (RegisterNode, which also replaces an earlier entry
 * with the same id: a raylet that lost the GCS registers again). It becomes DEAD when its raylet
 * unregisters or when no heartbeat arrived for the heartbeat timeout; a heartbeat from a node that
 * is unknown or DEAD is answered with unknown_node so that the raylet registers again. Every state
 * change goes through gcs_node_set_state(), which logs it, and is written through to the store
 * (table "NODE", key = node id); heartbeats only update memory.
 */
#ifndef RAYC_GCS_NODE_H
#define RAYC_GCS_NODE_H

#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "gcs/gcs_store.h"

#include <stddef.h>
#include <stdint.h>

enum gcs_node_state { GCS_NODE_ALIVE, GCS_NODE_DEAD };

typedef struct gcs_node {
  id_node_t id;
  enum gcs_node_state state;
  Rayc__NodeInfo *info;              /* owned: as registered (its dynamic fields are ignored) */
  Rayc__ReportHeartbeatRequest *hb;  /* owned: the last heartbeat; NULL before the first */
  int64_t last_seen_ms;              /* monotonic: registration or last heartbeat */
  int64_t last_heartbeat_wall_ms;    /* wall clock, reported to clients */
  char *death_reason;                /* owned; NULL while ALIVE */
} gcs_node_t;

typedef struct gcs_nodes {
  gcs_store_t *store; /* borrowed */
  gcs_node_t **v;     /* owned, in registration order */
  size_t n, cap;
} gcs_nodes_t;

/* Makes an empty table over store (borrowed) and loads the nodes the store holds, as ALIVE with a
 * full heartbeat timeout to report in (they are dead otherwise). Release with gcs_nodes_release(). */
void gcs_nodes_init(gcs_nodes_t *t, gcs_store_t *store, int64_t now);
void gcs_nodes_release(gcs_nodes_t *t);

/* Returns the node with this id (borrowed), or NULL. */
gcs_node_t *gcs_nodes_find(const gcs_nodes_t *t, const void *id, size_t len);

/* The functions below that take peer input return RAYC_EINVALID_ARGUMENT for a node id that is
 * not ID_NODE_SIZE bytes or a resource amount that is negative or not finite, with *why (if not
 * NULL) set to a static explanation. */

/* Registers info (copied) as ALIVE, replacing an entry with the same id. 0 or an error. */
int gcs_nodes_register(gcs_nodes_t *t, const Rayc__NodeInfo *info, int64_t now, const char **why);

/* Marks a node DEAD with reason. 0, RAYC_ENOT_FOUND or RAYC_EINVALID_ARGUMENT. */
int gcs_nodes_unregister(gcs_nodes_t *t, const void *id, size_t len, const char *reason,
                         const char **why);

/* Records a heartbeat (copied). 0; RAYC_ENOT_FOUND when the node is unknown or DEAD (it should
 * register again); RAYC_EINVALID_ARGUMENT. */
int gcs_nodes_heartbeat(gcs_nodes_t *t, const Rayc__ReportHeartbeatRequest *hb, int64_t now,
                        const char **why);

/* Marks DEAD every ALIVE node not heard from for timeout_ms; returns how many. */
int gcs_nodes_check_timeouts(gcs_nodes_t *t, int64_t now, int timeout_ms);

/* Changes a node's state, logging the transition (and reason, kept for DEAD). */
void gcs_node_set_state(gcs_node_t *n, enum gcs_node_state state, const char *reason);

/* Fills out as a shallow view of n for a reply or the store: it borrows n's memory and stays valid
 * until n changes. */
void gcs_node_view(const gcs_node_t *n, Rayc__NodeInfo *out);

/* Returns "ALIVE" or "DEAD". */
const char *gcs_node_state_name(enum gcs_node_state state);

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_node_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_unregister(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_node_on_heartbeat(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
