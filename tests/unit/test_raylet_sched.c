/* Unit tests for raylet/raylet_sched.c: where lease requests go, from a raylet's own resources and
 * a cluster view built by hand (SPREAD balance, node affinity to a node not yet in the view, and
 * the later spillback of queued DEFAULT requests). */
#include "raylet/raylet.h"

#include "common/rpc_valid.h"
#include "common/util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A raylet with `cpus` CPUs whose view holds itself and nremote other nodes with `cpus` each. */
static raylet_t *sched_raylet(int nremote, double cpus)
{
  raylet_t *r = xcalloc(1, sizeof(*r));
  memset(r->node_id.b, 0xAA, ID_NODE_SIZE);
  raylet_res_set(&r->total, "CPU", cpus);
  r->available = r->total;
  r->view = xcalloc((size_t)nremote + 1, sizeof(*r->view));
  r->nview = r->view_cap = nremote + 1;
  for (int i = 0; i <= nremote; i++)
    r->view[i] = xcalloc(1, sizeof(**r->view));
  r->view[0]->id = r->node_id; /* the GCS's view lists this node too */
  r->view[0]->total = r->view[0]->avail = r->total;
  for (int i = 1; i <= nremote; i++) {
    memset(r->view[i]->id.b, i, ID_NODE_SIZE);
    snprintf(r->view[i]->ip, sizeof(r->view[i]->ip), "10.0.0.%d", i);
    r->view[i]->port = 1000 + i;
    raylet_res_set(&r->view[i]->total, "CPU", cpus);
    r->view[i]->avail = r->view[i]->total;
  }
  r->cfg.node_affinity_wait_ms = 5000;
  return r;
}

static void sched_raylet_free(raylet_t *r)
{
  raylet_sched_free(r);
  free(r);
}

static raylet_res_t one_cpu(void)
{
  raylet_res_t res = {0};
  raylet_res_set(&res, "CPU", 1);
  return res;
}

/* Index of the node a pick went to: 0 for this node, i for view entry i. */
static int pick_index(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req, const raylet_res_t *res)
{
  const raylet_view_node_t *t = NULL;
  const char *why = NULL;
  enum raylet_sched d = raylet_sched_pick(r, req, res, &t, &why);
  if (d == SCHED_LOCAL)
    return 0;
  ck_assert_int_eq(d, SCHED_SPILL);
  for (int i = 0; i < r->nview; i++)
    if (t == r->view[i])
      return i;
  ck_abort_msg("the pick is not in the view");
  return -1;
}

static void check_spread(int nodes, int picks)
{
  raylet_t *r = sched_raylet(nodes - 1, 1000);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  req.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  raylet_res_t res = one_cpu();
  int count[8] = {0};
  for (int i = 0; i < picks; i++)
    count[pick_index(r, &req, &res)]++;
  for (int i = 0; i < nodes; i++)
    ck_assert_msg(count[i] == picks / nodes, "%d SPREAD picks over %d nodes: node %d got %d", picks, nodes, i,
                  count[i]);
  sched_raylet_free(r);
}

START_TEST(test_spread_two_nodes_even)
{
  check_spread(2, 12);
}
END_TEST

START_TEST(test_spread_three_nodes_even)
{
  check_spread(3, 30);
}
END_TEST

/* A node busy with every CPU is skipped while others have room, and used again once they fill. */
START_TEST(test_spread_skips_full_node)
{
  raylet_t *r = sched_raylet(2, 2);
  raylet_res_set(&r->view[1]->avail, "CPU", 0);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  req.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  raylet_res_t res = one_cpu();
  int count[3] = {0};
  for (int i = 0; i < 4; i++)
    count[pick_index(r, &req, &res)]++;
  ck_assert_int_eq(count[1], 0);
  ck_assert_int_eq(count[2], 2);
  sched_raylet_free(r);
}
END_TEST

/* A hard affinity to a node the view does not show yet waits (it may have just joined); one the
 * view shows is spilled to; one that can never fit fails at once. */
START_TEST(test_affinity_unknown_node_waits)
{
  raylet_t *r = sched_raylet(1, 4);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  req.strategy = RAYC__SCHEDULING_STRATEGY__NODE_AFFINITY;
  uint8_t newcomer[ID_NODE_SIZE];
  memset(newcomer, 0x77, sizeof(newcomer));
  req.affinity_node_id = pb_bytes(newcomer, ID_NODE_SIZE);
  raylet_res_t res = one_cpu();
  const raylet_view_node_t *t = NULL;
  const char *why = NULL;
  ck_assert_int_eq(raylet_sched_pick(r, &req, &res, &t, &why), SCHED_WAIT_NODE);

  req.affinity_node_id = pb_bytes(r->view[1]->id.b, ID_NODE_SIZE);
  ck_assert_int_eq(raylet_sched_pick(r, &req, &res, &t, &why), SCHED_SPILL);
  ck_assert_ptr_eq(t, r->view[1]);

  raylet_res_t big = {0};
  raylet_res_set(&big, "CPU", 64);
  ck_assert_int_eq(raylet_sched_pick(r, &req, &big, &t, &why), SCHED_ERROR);
  ck_assert_ptr_nonnull(why);

  req.affinity_soft = 1; /* soft: DEFAULT instead of waiting */
  req.affinity_node_id = pb_bytes(newcomer, ID_NODE_SIZE);
  ck_assert_int_eq(raylet_sched_pick(r, &req, &res, &t, &why), SCHED_LOCAL);
  sched_raylet_free(r);
}
END_TEST

/* A queued DEFAULT request this node cannot run now moves to the least-utilized node with room;
 * requests that arrived by spillback, SPREAD ones and placement-group ones stay. */
START_TEST(test_requeue_moves_default_only)
{
  raylet_t *r = sched_raylet(2, 4);
  raylet_res_set(&r->view[1]->avail, "CPU", 1);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  raylet_res_t res = one_cpu();
  raylet_view_node_t *t = raylet_sched_requeue(r, &req, &res);
  ck_assert_ptr_eq(t, r->view[2]);
  ck_assert(raylet_res_get(&r->view[2]->avail, "CPU") == 3); /* lowered until the next view */
  for (int i = 0; i < 3; i++)
    ck_assert_ptr_nonnull(raylet_sched_requeue(r, &req, &res));
  ck_assert(raylet_res_get(&r->view[1]->avail, "CPU") + raylet_res_get(&r->view[2]->avail, "CPU") == 1);
  ck_assert_ptr_nonnull(raylet_sched_requeue(r, &req, &res));
  ck_assert_ptr_null(raylet_sched_requeue(r, &req, &res)); /* the cluster is full: stay queued */

  raylet_res_set(&r->view[2]->avail, "CPU", 4);
  req.spilled = 1;
  ck_assert_ptr_null(raylet_sched_requeue(r, &req, &res));
  req.spilled = 0;
  req.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  ck_assert_ptr_null(raylet_sched_requeue(r, &req, &res));
  req.strategy = RAYC__SCHEDULING_STRATEGY__DEFAULT;
  uint8_t pg[ID_PG_SIZE] = {1};
  req.placement_group_id = pb_bytes(pg, ID_PG_SIZE);
  ck_assert_ptr_null(raylet_sched_requeue(r, &req, &res));
  sched_raylet_free(r);
}
END_TEST

/* ---- the view from full views and deltas (raylet_view.c) ---- */

static Rayc__NodeResourceView view_entry(uint8_t id[ID_NODE_SIZE], int fill, Rayc__ResourceEntry **cpu)
{
  memset(id, fill, ID_NODE_SIZE);
  Rayc__NodeResourceView n = RAYC__NODE_RESOURCE_VIEW__INIT;
  n.node_id = pb_bytes(id, ID_NODE_SIZE);
  n.ip = (char *)"10.0.0.9";
  n.raylet_port = 1000 + fill;
  n.resources_total = n.resources_available = cpu;
  n.n_resources_total = n.n_resources_available = 1;
  return n;
}

START_TEST(test_view_full_then_deltas)
{
  raylet_t *r = xcalloc(1, sizeof(*r));
  r->cfg.heartbeat_ms = 1000;
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, half = RAYC__RESOURCE_ENTRY__INIT;
  cpu.name = half.name = (char *)"CPU";
  cpu.amount = 4;
  half.amount = 2;
  Rayc__ResourceEntry *pc = &cpu, *ph = &half;
  uint8_t a[ID_NODE_SIZE], b[ID_NODE_SIZE], c[ID_NODE_SIZE];
  Rayc__NodeResourceView na = view_entry(a, 1, &pc), nb = view_entry(b, 2, &pc), nc = view_entry(c, 3, &pc);
  Rayc__NodeResourceView *full[] = {&na, &nb};
  Rayc__ClusterView v = RAYC__CLUSTER_VIEW__INIT;
  v.epoch = 77;
  v.version = 100;
  v.nodes = full;
  v.n_nodes = 2;
  raylet_view_apply(r, &v);
  ck_assert_int_eq(r->nview, 2);
  int64_t e, ver;
  raylet_view_wanted(r, now_ms(), &e, &ver);
  ck_assert(e == 77 && ver == 100);
  /* a delta from the version held: c joins, b changes, a dies */
  nb.resources_available = &ph;
  Rayc__NodeResourceView *changed[] = {&nc, &nb};
  ProtobufCBinaryData gone = pb_bytes(a, ID_NODE_SIZE);
  Rayc__ClusterView d = RAYC__CLUSTER_VIEW__INIT;
  d.epoch = 77;
  d.delta = 1;
  d.base_version = 100;
  d.version = 103;
  d.nodes = changed;
  d.n_nodes = 2;
  d.removed = &gone;
  d.n_removed = 1;
  raylet_view_apply(r, &d);
  ck_assert_int_eq(r->nview, 2);
  ck_assert_int_eq((int)r->view_version, 103);
  for (int i = 0; i < r->nview; i++) {
    ck_assert_int_ne(r->view[i]->id.b[0], 1);
    if (r->view[i]->id.b[0] == 2)
      ck_assert(raylet_res_get(&r->view[i]->avail, "CPU") == 2);
  }
  /* a delta on another base (one was missed): dropped, and the next heartbeat asks for all */
  d.base_version = 105;
  d.version = 106;
  raylet_view_apply(r, &d);
  raylet_view_wanted(r, now_ms(), &e, &ver);
  ck_assert(e == 0 && ver == 0);
  ck_assert_int_eq(r->nview, 2);
  raylet_sched_free(r);
  free(r);
}
END_TEST

/* A spillback lowers a node's free resources locally; once that is older than two heartbeats the
 * raylet asks for the full view, which refreshes them. */
START_TEST(test_view_lowered_entry_asks_for_full_view)
{
  raylet_t *r = sched_raylet(2, 4);
  r->cfg.heartbeat_ms = 1000;
  r->view_epoch = 5;
  r->view_version = 9;
  r->view_full_ms = 1000;
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  raylet_res_t res = one_cpu();
  raylet_res_set(&r->available, "CPU", 0);
  ck_assert_ptr_nonnull(raylet_sched_requeue(r, &req, &res));
  int64_t e, ver;
  raylet_view_wanted(r, 2000, &e, &ver);
  ck_assert(e == 5 && ver == 9);
  raylet_view_wanted(r, 3500, &e, &ver);
  ck_assert(e == 0 && ver == 0);
  sched_raylet_free(r);
}
END_TEST

/* Every row of the raylet's method table says which fields its handler needs. */
const rpc_method_t *raylet_service_methods(size_t *n);

START_TEST(test_every_row_names_its_required_fields)
{
  size_t n;
  const rpc_method_t *rows = raylet_service_methods(&n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(rows[i].required != NULL, "%s lists no required fields", rows[i].method);
    const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(rows[i].service,
                                                                                           rows[i].method);
    char why[200];
    ck_assert_msg(rpc_valid_paths(md->input, rows[i].required, why, sizeof(why)) == 0, "%s: %s", rows[i].method, why);
  }
}
END_TEST

int main(void)
{
  Suite *s = suite_create("raylet_sched");
  TCase *tc = tcase_create("sched");
  tcase_add_test(tc, test_spread_two_nodes_even);
  tcase_add_test(tc, test_spread_three_nodes_even);
  tcase_add_test(tc, test_spread_skips_full_node);
  tcase_add_test(tc, test_affinity_unknown_node_waits);
  tcase_add_test(tc, test_requeue_moves_default_only);
  tcase_add_test(tc, test_view_full_then_deltas);
  tcase_add_test(tc, test_view_lowered_entry_asks_for_full_view);
  tcase_add_test(tc, test_every_row_names_its_required_fields);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
