/*
 * Whether resource demands fit the GCS's nodes: the one fitting module behind actor placement
 * (gcs_actor_place.c) and placement-group placement (gcs_pg_place.c). It reads what the GCS knows
 * of each node (its registration, its last heartbeat) and never changes it. Loop thread only.
 */
#ifndef RAYC_GCS_FIT_H
#define RAYC_GCS_FIT_H

#include "common/res.h"
#include "gcs/gcs_node.h"

enum gcs_fit {
  GCS_FIT_NEVER, /* the node cannot run it: not usable, or its total falls short */
  GCS_FIT_LATER, /* its total suffices, what it has free now does not */
  GCS_FIT_NOW,   /* it fits what the node has free now */
};

/* Returns whether n can take placements at all: alive, registered, with a raylet port. n borrowed. */
int gcs_fit_usable(const gcs_node_t *n);
/* Fills avail with what n has free: its last heartbeat's available resources, or before the first
 * heartbeat its registered total. */
void gcs_fit_free(const gcs_node_t *n, res_set_t *avail);
/* Returns how demand fits usable node n. The total is the last heartbeat's when it has one
 * (placement-group bundles add resources), else the registered one. Both borrowed. */
enum gcs_fit gcs_fit_node(const gcs_node_t *n, const res_set_t *demand);
/* Fills d with a demand given as protobuf entries (a task spec's or a bundle's; borrowed). */
void gcs_fit_demand(res_set_t *d, Rayc__ResourceEntry *const *e, size_t n);

#endif
