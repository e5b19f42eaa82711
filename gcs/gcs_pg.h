/*
 * The GCS placement-group manager (Ray's GcsPlacementGroupManager + GcsPlacementGroupScheduler).
 *
 * A placement group is a list of bundles (resource sets) reserved together on the cluster's
 * nodes with a strategy: PACK (few nodes, best effort), SPREAD (many nodes, best effort),
 * STRICT_PACK (one node), STRICT_SPREAD (one node per bundle). States:
 *
 *   PENDING --every bundle reserved--> CREATED --a node holding bundles died--> RESCHEDULING
 *      ^  (no feasible placement: retried)              ^-------- reserved again --------'
 *   any state --RemovePlacementGroup, or its job finished (unless detached)--> REMOVED
 *
 * Scheduling places one group at a time (as Ray does), so each placement sees the resources the
 * previous one took. It picks nodes for the bundles not yet reserved from the cluster view (alive
 * nodes' available resources), then reserves in two phases: PrepareBundleResources on every
 * chosen node (resources set aside), and only when all succeeded CommitBundleResources (they
 * become CPU_group_<i>_<pg> ... resources on the raylet); if any prepare fails, the prepared
 * bundles are cancelled (CancelResourceReserve) and the group is retried later. Raylets answer
 * with their resources, which update the cluster view at once. Removal cancels the group's bundles
 * on every node holding them (the raylets kill workers leased on them) and kills the actors
 * placed in it. WaitPlacementGroupUntilReady is held until CREATED or its timeout.
 *
 * Persistence: every group is written to the store (table "PG", key = id) on each state change,
 * with the nodes of its committed bundles, and reloaded when the GCS starts: groups not yet
 * CREATED are scheduled again. REMOVED groups are kept (for listing) up to a bound.
 */
#ifndef RAYC_GCS_PG_H
#define RAYC_GCS_PG_H

#include "common/hmap.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"

#include <stdint.h>
#include <uv.h>

struct gcs_server;

typedef struct gcs_pg_waiter {
  struct gcs_pg_waiter *next;
  rpc_call_t *call;
  int64_t deadline_ms;
  int64_t since_ms;
  int create; /* a held CreatePlacementGroup (wait_ms): answered OK, created or not */
} gcs_pg_waiter_t;

typedef struct gcs_pg {
  uint8_t id[ID_PG_SIZE];
  Rayc__PlacementGroupInfo *info; /* owned; bundle node_id: where it is committed (empty: not) */
  uint32_t gen;                   /* bumped by every change of plan; stale callbacks compare it */
  id_node_t *try_node;            /* per bundle: the node of the attempt in flight */
  uint8_t *trying;                /* per bundle: part of the attempt in flight */
  int in_flight, failed;          /* RPCs of the current phase; did one fail */
  int placing;                    /* its attempt is in flight (counted in gcs_pgs_t.busy) */
  int committing;
  int unsure; /* loaded not CREATED: a GCS that died may have left bundles prepared
                                     anywhere, so removal asks every alive node */
  int64_t retry_at_ms;
  gcs_pg_waiter_t *waiters;
} gcs_pg_t;

enum { GCS_PG_REMOVED_KEPT = 1000 };

typedef struct gcs_pgs {
  struct gcs_server *s;           /* borrowed */
  rpc_client_t *client;           /* raylets */
  hmap_t by_id;                   /* id -> gcs_pg_t (owned) */
  size_t busy;                    /* groups whose attempt is in flight (one pass places all that wait) */
  uint8_t (*removed)[ID_PG_SIZE]; /* ring of removed ids, oldest dropped first */
  size_t nremoved;
  size_t rr;
  struct gcs_pg_cancel *cancels; /* failed cancels to send again (gcs_pg_place.c) */
  size_t nwaiting;               /* groups PENDING or RESCHEDULING: the scans for placement skip at 0 */
  struct gcs_pg_ret *rets;       /* returns not sent yet, per node (gcs_pg_return.c) */
  uv_timer_t *ret_timer;         /* sends them GCS_PG_RETURN_MS after the first was queued */
  id_node_t *full;               /* nodes that refused a group for lack of room for more bundles (bundles_full) */
  size_t nfull, full_cap;        /* ... not offered more until a group is removed */
  int stopping;
} gcs_pgs_t;

/* Makes the manager of server s and loads the groups its store holds. NULL if the rpc client
 * cannot be made. */
gcs_pgs_t *gcs_pgs_create(struct gcs_server *s);
void gcs_pgs_shutdown(gcs_pgs_t *m);
void gcs_pgs_destroy(gcs_pgs_t *m);

/* Periodic work: expired waits, placement retries. */
void gcs_pgs_cron(gcs_pgs_t *m, int64_t now);
/* A node died: its bundles are placed again. */
void gcs_pgs_on_node_dead(gcs_pgs_t *m, const id_node_t *node);
/* A job finished: its groups that are not detached are removed. */
void gcs_pgs_on_job_finished(gcs_pgs_t *m, const id_job_t *job);

/* Handlers of PlacementGroupInfoGcsService (ctx is the gcs_server_t). */
void gcs_pg_on_create(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_pg_on_remove(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_pg_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_pg_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_pg_on_wait(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
