/*
 * Fitting demands to nodes (see gcs_fit.h). A node's resources stay protobuf entries as the
 * heartbeat brought them: a demand (a few names) is looked up in them by name, which costs less
 * than converting every node's entries on every placement pass.
 */
#include "gcs/gcs_fit.h"

#include <string.h>

int gcs_fit_usable(const gcs_node_t *n)
{
  return n->state == GCS_NODE_ALIVE && n->info && n->info->raylet_port > 0;
}

void gcs_fit_free(const gcs_node_t *n, res_set_t *avail)
{
  if (n->hb)
    res_from_pb(avail, n->hb->resources_available, n->hb->n_resources_available);
  else
    res_from_pb(avail, n->info->resources_total, n->info->n_resources_total);
}

static double fit_amount(Rayc__ResourceEntry *const *have, size_t nhave, const char *name)
{
  for (size_t i = 0; i < nhave; i++)
    if (have[i]->name && strcmp(have[i]->name, name) == 0)
      return have[i]->amount;
  return 0;
}

static int fit_entries(Rayc__ResourceEntry *const *have, size_t nhave, const res_set_t *demand)
{
  for (uint32_t i = 0; i < demand->n; i++)
    if (demand->amt[i] > RES_EPS && fit_amount(have, nhave, res_name(demand->id[i])) + RES_EPS < demand->amt[i])
      return 0;
  return 1;
}

enum gcs_fit gcs_fit_node(const gcs_node_t *n, const res_set_t *demand)
{
  int total_ok = n->hb && n->hb->n_resources_total > 0
                     ? fit_entries(n->hb->resources_total, n->hb->n_resources_total, demand)
                     : fit_entries(n->info->resources_total, n->info->n_resources_total, demand);
  if (!total_ok)
    return GCS_FIT_NEVER;
  return !n->hb || fit_entries(n->hb->resources_available, n->hb->n_resources_available, demand) ? GCS_FIT_NOW
                                                                                                 : GCS_FIT_LATER;
}

void gcs_fit_demand(res_set_t *d, Rayc__ResourceEntry *const *e, size_t n)
{
  (void)res_from_pb(d, e, n);
}
