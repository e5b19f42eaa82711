/*
 * Internals shared by the placement-group manager's two files: gcs_pg.c (table, persistence, state,
 * handlers) and gcs_pg_place.c (choosing nodes, prepare/commit on the raylets, removal). All run on
 * the GCS loop; every gcs_pg_t pointer is borrowed from m->by_id.
 */
#ifndef RAYC_GCS_PG_INT_H
#define RAYC_GCS_PG_INT_H

#include "gcs/gcs_pg.h"

#include "common/res.h"

#define GCS_PG_TABLE            "PG"
#define GCS_PG_REMOVED_BY_OWNER "removed by its owner" /* the detail of a removal asked for (logged at debug) */

enum {
  PG_RETRY_MS = 200,             /* no feasible placement, or a reservation failed: try again after this */
  PG_RPC_MS = 10000,             /* prepare / commit deadline */
  PG_CANCEL_MS = 2000,           /* cancel deadline: a raylet answers it at once, or is unreachable */
  PG_CANCEL_RETRY_MS = 250,      /* a failed cancel is sent again after this, */
  PG_CANCEL_RETRY_MAX_MS = 4000, /* doubling up to this, while its node is ALIVE */
  PG_WAIT_MAX_MS = 3600000,
  PG_CREATE_WAIT_MAX_MS = 10000, /* the longest a CreatePlacementGroup is held (wait_ms) */
  PG_MAX_BUNDLES = 1000,
  GCS_PG_RETURN_MS = 5, /* a removed group's return waits this long for a prepare to its node to ride on */
};

/* ---- talking to raylets (gcs_pg_place.c; cancels in gcs_pg_cancel.c) ---- */

/* One call to a raylet about group id (or, for a prepare of several groups, ids[]). */
typedef struct pg_step {
  gcs_pgs_t *m;
  uint8_t id[ID_PG_SIZE];
  uint32_t gen;
  id_node_t node;
  int index;                   /* a cancel's bundle index (-1: all of the group's bundles there) */
  int64_t delay_ms;            /* a cancel's last retry delay (0: first attempt) */
  uint8_t (*more)[ID_PG_SIZE]; /* owned: removed groups whose return the call carries (a prepare's */
  size_t nmore;                /* returns, a cancel's more_groups), retried one by one if it fails */
  uint8_t (*ids)[ID_PG_SIZE];  /* owned: a prepare for several groups (pg_send_batch): theirs, */
  uint32_t *gens;              /* with the gen each had when it was sent; nids 0: the group is id */
  size_t nids;
} gcs_pg_step_t;

void gcs_pg_step_free(gcs_pg_step_t *st);
/* The ids as protobuf bytes (new array, pointing into ids). */
ProtobufCBinaryData *gcs_pg_ids_pb(uint8_t (*ids)[ID_PG_SIZE], size_t n);
/* The node with id if it is ALIVE with a raylet port, else NULL. */
struct gcs_node *gcs_pg_alive_node(gcs_pgs_t *m, const id_node_t *id);
/* The channel to node n's raylet. */
rpc_channel_t *gcs_pg_raylet(gcs_pgs_t *m, const struct gcs_node *n);
/* A raylet's answer carries its resources: they replace the node's in the view (seq-ordered). */
void gcs_pg_node_resources(gcs_pgs_t *m, const id_node_t *id, Rayc__ResourceEntry **avail, size_t navail,
                           Rayc__ResourceEntry **total, size_t ntotal, int64_t seq);
/* Makes every group that waits for resources try again now. */
void gcs_pg_kick(gcs_pgs_t *m);
/* Queues the returns st carried (st->more) to be sent again, one cancel per group; skip (NULL:
 * none) is left out (gcs_pg_cancel.c). */
void gcs_pg_more_later(gcs_pgs_t *m, const gcs_pg_step_t *st, const uint8_t *skip, const char *why);
/* Asks a node to return group g's bundle index (-1: all of its bundles there) (gcs_pg_cancel.c). */
void gcs_pg_cancel_on(gcs_pgs_t *m, const gcs_pg_t *g, const id_node_t *node, int index);

/* Returns the strategy's name for logs (static storage). */
const char *gcs_pg_strategy_name(Rayc__PlacementStrategy st);

/* Writes g's id in hex to out (2 * ID_PG_SIZE + 1 bytes) and returns out. */
char *gcs_pg_hex(const gcs_pg_t *g, char *out);

/* Replaces g's state detail with a copy of detail (NULL: none). */
void gcs_pg_set_detail(gcs_pg_t *g, const char *detail);

/* Records on b the node it is placed on (NULL: none). */
void gcs_pg_set_node(Rayc__Bundle *b, const id_node_t *node);

/* Moves g to st (logged, stored, waiters answered when it is final). */
void gcs_pg_set_state(gcs_pgs_t *m, gcs_pg_t *g, Rayc__PlacementGroupState st, const char *detail);

/* Returns whether g is not REMOVED. */
int gcs_pg_live(const gcs_pg_t *g);

/* Sends again the failed cancels that are due (gcs_pg_place.c). */
void gcs_pg_cancels_cron(gcs_pgs_t *m, int64_t now);
/* Forgets the failed cancels. */
void gcs_pg_cancels_release(gcs_pgs_t *m);

/* Frees g and everything it owns (NULL is fine). */
void gcs_pg_free(gcs_pg_t *g);

/* Ends g's placement attempt: releases what it reserved and retries later. */
void gcs_pg_attempt_failed(gcs_pgs_t *m, gcs_pg_t *g, const char *why);

/* Starts placing g now (its bundles chosen, prepare sent). */
void gcs_pg_schedule(gcs_pgs_t *m, gcs_pg_t *g);

/* Starts placing the next group that wants placement, if none is in flight. */
void gcs_pg_schedule_next(gcs_pgs_t *m);

/* Removes g: cancels its reservations on the raylets and marks it REMOVED. */
void gcs_pg_remove(gcs_pgs_t *m, gcs_pg_t *g, const char *why);

/* gcs_pg_return.c: returns of removed groups' committed bundles, queued per node (see there). */
/* Queues the return of group id's bundles on node; res (NULL: none) is their resources, counted
 * free on node until the return is sent. */
void gcs_pg_return_later(gcs_pgs_t *m, const uint8_t *id, const id_node_t *node, const res_set_t *res);
/* Adds the resources of the returns queued for node to avail. */
void gcs_pg_return_credit(gcs_pgs_t *m, const id_node_t *node, res_set_t *avail);
/* Takes the returns queued for node: a new array of *n ids (NULL when none). */
uint8_t (*gcs_pg_return_take(gcs_pgs_t *m, const id_node_t *node, size_t *n))[ID_PG_SIZE];
/* Sends every queued return now (one call per node). */
void gcs_pg_returns_flush(gcs_pgs_t *m);
/* Forgets the returns queued for a dead node. */
void gcs_pg_returns_drop_node(gcs_pgs_t *m, const id_node_t *node);
/* Makes the timer (on m's loop; started when returns were queued at load); _stop closes it. */
void gcs_pg_returns_start(gcs_pgs_t *m);
void gcs_pg_returns_stop(gcs_pgs_t *m);
/* Forgets every queued return. */
void gcs_pg_returns_release(gcs_pgs_t *m);
/* Sends one CancelResourceReserve returning the n groups ids (taken, freed) on node; a failed
 * one is retried per group like any cancel (gcs_pg_place.c). */
void gcs_pg_return_send(gcs_pgs_t *m, const id_node_t *node, uint8_t (*ids)[ID_PG_SIZE], size_t n);

#endif
