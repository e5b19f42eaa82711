/*
 * The GCS worker table (Ray's GcsWorkerManager): the workers raylets started, and how they ended.
 *
 * A worker is ALIVE from RegisterWorker until ReportWorkerFailure (from its raylet) or the death
 * of its node makes it DEAD, with an exit type and detail. A worker reported dead without having
 * been registered is added DEAD. State changes go through gcs_worker_set_state(), which logs them;
 * every change is written through to the store (table "WORKER", key = worker id), and deaths are
 * published on the WORKER channel, so owners learn that a borrower or an actor's worker died.
 *
 * Dead workers are kept (up to GCS_WORKER_MAX_DEAD; the oldest are forgotten, in memory and in
 * the store) so that `rayc list workers` can say why a worker ended.
 */
#ifndef RAYC_GCS_WORKER_H
#define RAYC_GCS_WORKER_H

#include "common/hmap.h"
#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "gcs/gcs_pubsub.h"
#include "gcs/gcs_store.h"

#include <stddef.h>
#include <stdint.h>

enum { GCS_WORKER_MAX_DEAD = 10000 };

enum gcs_worker_state { GCS_WORKER_ALIVE, GCS_WORKER_DEAD };

typedef struct gcs_worker {
  id_worker_t id;
  enum gcs_worker_state state;
  Rayc__WorkerInfo *info; /* owned; is_alive, exit and end time kept in sync with state */
  uint64_t died;          /* order of death (1, 2...), for forgetting the oldest */
} gcs_worker_t;

typedef struct gcs_workers {
  gcs_store_t *store;   /* borrowed */
  gcs_pubsub_t *pubsub; /* borrowed; NULL: nothing published */
  hmap_t map;           /* worker id -> gcs_worker_t (owned) */
  size_t ndead;
  uint64_t deaths;
} gcs_workers_t;

/* Makes an empty table over store (borrowed) and loads the workers it holds. Release with
 * gcs_workers_release(). */
void gcs_workers_init(gcs_workers_t *t, gcs_store_t *store);
void gcs_workers_release(gcs_workers_t *t);

/* Returns the worker with this id (borrowed), or NULL. */
gcs_worker_t *gcs_workers_find(const gcs_workers_t *t, const void *id, size_t len);

/* Registers info (copied) as ALIVE, replacing an entry with the same id. 0 or
 * RAYC_EINVALID_ARGUMENT (worker_id not ID_WORKER_SIZE bytes). */
int gcs_workers_register(gcs_workers_t *t, const Rayc__WorkerInfo *info);

/* Marks a worker DEAD (adding it, with address, when unknown); idempotent. 0 or
 * RAYC_EINVALID_ARGUMENT. */
int gcs_workers_fail(gcs_workers_t *t, const Rayc__ReportWorkerFailureRequest *r);

/* Marks DEAD every ALIVE worker of node_id (ID_NODE_SIZE bytes); returns how many. */
int gcs_workers_on_node_dead(gcs_workers_t *t, const void *node_id);

/* Changes a worker's state, logging the transition. */
void gcs_worker_set_state(gcs_worker_t *w, enum gcs_worker_state state);

/* RPC handlers (rows of gcs_rpc_methods; ctx is the gcs_server_t). */
void gcs_worker_on_register(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_worker_on_report_failure(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);
void gcs_worker_on_get_all(void *ctx, rpc_call_t *call, const ProtobufCMessage *req);

#endif
