/*
 * The cluster resource view the GCS sends raylets on heartbeat replies: in full, or as the delta
 * since the version a raylet holds. See gcs_node.h.
 *
 * Every node entry remembers the view version of its last change (view_changed); nodes are never
 * dropped from the table (DEAD ones stay), so the delta since any version of this GCS's epoch is
 * the entries changed after it: ALIVE, non-draining ones as upserts, the others as removals. An
 * idle cluster's view does not move, so an idle heartbeat's reply carries nothing and costs the
 * GCS no scan at all; a change costs each raylet one entry on its next heartbeat. A heartbeat
 * datagram's answer has room for a few entries only (gcs_nodes_view_since_max): the changed nodes
 * go oldest change first, and a delta cut short names the version of the last change it carries.
 */
#include "gcs/gcs_node.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static int gcs_node_in_view(const gcs_node_t *n)
{
  return n->state == GCS_NODE_ALIVE && !(n->hb && n->hb->draining);
}

static void gcs_node_resource_view(const gcs_node_t *n, Rayc__NodeResourceView *out)
{
  Rayc__NodeInfo info;
  gcs_node_view(n, &info);
  rayc__node_resource_view__init(out);
  out->node_id = info.node_id;
  out->ip = info.ip;
  out->raylet_port = info.raylet_port;
  out->object_manager_port = info.object_manager_port;
  out->n_resources_total = info.n_resources_total;
  out->resources_total = info.resources_total;
  out->n_resources_available = info.n_resources_available;
  out->resources_available = info.resources_available;
  out->n_labels = info.n_labels;
  out->labels = info.labels;
  out->is_head = info.is_head;
}

/* Fills v with the nodes changed after base (all of them, as a full view, when full is set). */
static void gcs_nodes_view_fill(const gcs_nodes_t *t, gcs_cluster_view_t *v, int full, int64_t base)
{
  rayc__cluster_view__init(&v->msg);
  v->nodes = xcalloc(t->n ? t->n : 1, sizeof(*v->nodes));
  v->ptrs = xcalloc(t->n ? t->n : 1, sizeof(*v->ptrs));
  v->removed = xcalloc(t->n ? t->n : 1, sizeof(*v->removed));
  size_t k = 0, gone = 0;
  for (size_t i = 0; i < t->n; i++) {
    const gcs_node_t *n = t->v[i];
    if (!full && n->view_changed <= base)
      continue;
    if (gcs_node_in_view(n)) {
      gcs_node_resource_view(n, &v->nodes[k]);
      v->ptrs[k] = &v->nodes[k];
      k++;
    } else if (!full) {
      v->removed[gone++] = pb_bytes(n->id.b, ID_NODE_SIZE);
    }
  }
  v->msg.version = t->view_version;
  v->msg.epoch = t->version0;
  v->msg.delta = !full;
  v->msg.base_version = full ? 0 : base;
  v->msg.n_nodes = k;
  v->msg.nodes = v->ptrs;
  v->msg.n_removed = gone;
  v->msg.removed = v->removed;
}

void gcs_nodes_cluster_view(const gcs_nodes_t *t, gcs_cluster_view_t *v)
{
  gcs_nodes_view_fill(t, v, 1, 0);
}

int gcs_nodes_view_since(const gcs_nodes_t *t, int64_t epoch, int64_t version, gcs_cluster_view_t *v)
{
  memset(v, 0, sizeof(*v));
  int same_epoch = epoch == t->version0 && version >= t->version0 && version <= t->view_version;
  if (same_epoch && version == t->view_version)
    return 0;
  gcs_nodes_view_fill(t, v, !same_epoch, version);
  return 1;
}

int gcs_nodes_view_current(const gcs_nodes_t *t, int64_t epoch, int64_t version)
{
  return epoch == t->version0 && version == t->view_version;
}

static size_t varint_len(size_t v)
{
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static int node_changed_cmp(const void *a, const void *b)
{
  int64_t x = (*(const gcs_node_t *const *)a)->view_changed, y = (*(const gcs_node_t *const *)b)->view_changed;
  return x < y ? -1 : x > y;
}

/* The nodes changed after base, oldest change first, into a new array (*n of them). */
static const gcs_node_t **view_changed_since(const gcs_nodes_t *t, int64_t base, size_t *n)
{
  const gcs_node_t **ch = xcalloc(t->n ? t->n : 1, sizeof(*ch));
  size_t k = 0;
  for (size_t i = 0; i < t->n; i++)
    if (t->v[i]->view_changed > base)
      ch[k++] = t->v[i];
  qsort(ch, k, sizeof(*ch), node_changed_cmp);
  *n = k;
  return ch;
}

/* Adds n to the delta v as an upsert or a removal when its packed size fits within max bytes in all
 * (*used so far); returns whether it did. */
static int view_add_fitting(gcs_cluster_view_t *v, const gcs_node_t *n, size_t max, size_t *used)
{
  size_t k = v->msg.n_nodes, size;
  if (gcs_node_in_view(n)) {
    gcs_node_resource_view(n, &v->nodes[k]);
    size_t body = protobuf_c_message_get_packed_size(&v->nodes[k].base);
    size = 1 + varint_len(body) + body;
  } else {
    size = 1 + varint_len(ID_NODE_SIZE) + ID_NODE_SIZE;
  }
  if (*used + size > max)
    return 0;
  *used += size;
  if (gcs_node_in_view(n)) {
    v->ptrs[k] = &v->nodes[k];
    v->msg.n_nodes++;
  } else {
    v->removed[v->msg.n_removed++] = pb_bytes(n->id.b, ID_NODE_SIZE);
  }
  return 1;
}

int gcs_nodes_view_since_max(const gcs_nodes_t *t, int64_t epoch, int64_t version, size_t max_entries,
                             size_t max_bytes, gcs_cluster_view_t *v)
{
  memset(v, 0, sizeof(*v));
  if (gcs_nodes_view_current(t, epoch, version))
    return 0;
  if (epoch != t->version0 || version < t->version0 || version > t->view_version)
    return -1; /* a full view */
  size_t nch = 0;
  const gcs_node_t **ch = view_changed_since(t, version, &nch);
  if (nch > max_entries) {
    free(ch);
    return -1;
  }
  rayc__cluster_view__init(&v->msg);
  v->nodes = xcalloc(nch ? nch : 1, sizeof(*v->nodes));
  v->ptrs = xcalloc(nch ? nch : 1, sizeof(*v->ptrs));
  v->removed = xcalloc(nch ? nch : 1, sizeof(*v->removed));
  v->msg.nodes = v->ptrs;
  v->msg.removed = v->removed;
  size_t used = GCS_VIEW_HEAD_MAX, k = 0;
  while (k < nch && view_add_fitting(v, ch[k], max_bytes, &used))
    k++;
  /* each version belongs to one change of one node: every node left out changed after the last
   * one sent, so the delta since that version brings it */
  v->msg.version = k == nch ? t->view_version : k ? ch[k - 1]->view_changed : version;
  free(ch);
  if (k == 0) {
    gcs_cluster_view_release(v);
    return -1;
  }
  v->msg.epoch = t->version0;
  v->msg.delta = 1;
  v->msg.base_version = version;
  return 1;
}

void gcs_cluster_view_release(gcs_cluster_view_t *v)
{
  free(v->nodes);
  free(v->ptrs);
  free(v->removed);
  memset(v, 0, sizeof(*v));
}
