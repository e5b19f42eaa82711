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
  res_put_name(&r->total, "CPU", cpus);
  r->available = r->total;
  r->view = xcalloc((size_t)nremote + 1, sizeof(*r->view));
  r->nview = nremote + 1;
  r->view[0].id = r->node_id; /* the GCS's view lists this node too */
  r->view[0].total = r->view[0].avail = r->total;
  for (int i = 1; i <= nremote; i++) {
    memset(r->view[i].id.b, i, ID_NODE_SIZE);
    snprintf(r->view[i].ip, sizeof(r->view[i].ip), "10.0.0.%d", i);
    r->view[i].port = 1000 + i;
    res_put_name(&r->view[i].total, "CPU", cpus);
    r->view[i].avail = r->view[i].total;
  }
  r->cfg.node_affinity_wait_ms = 5000;
  return r;
}

static void sched_raylet_free(raylet_t *r)
{
  raylet_sched_free(r);
  free(r);
}

static res_set_t one_cpu(void)
{
  res_set_t res = {0};
  res_put_name(&res, "CPU", 1);
  return res;
}

/* Index of the node a pick went to: 0 for this node, i for view entry i. */
static int pick_index(raylet_t *r, const Rayc__RequestWorkerLeaseRequest *req, const res_set_t *res)
{
  const raylet_view_node_t *t = NULL;
  const char *why = NULL;
  enum raylet_sched d = raylet_sched_pick(r, req, res, &t, &why);
  if (d == SCHED_LOCAL)
    return 0;
  ck_assert_int_eq(d, SCHED_SPILL);
  return (int)(t - r->view);
}

static void check_spread(int nodes, int picks)
{
  raylet_t *r = sched_raylet(nodes - 1, 1000);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  req.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  res_set_t res = one_cpu();
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
  res_put_name(&r->view[1].avail, "CPU", 0);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  req.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  res_set_t res = one_cpu();
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
  res_set_t res = one_cpu();
  const raylet_view_node_t *t = NULL;
  const char *why = NULL;
  ck_assert_int_eq(raylet_sched_pick(r, &req, &res, &t, &why), SCHED_WAIT_NODE);

  req.affinity_node_id = pb_bytes(r->view[1].id.b, ID_NODE_SIZE);
  ck_assert_int_eq(raylet_sched_pick(r, &req, &res, &t, &why), SCHED_SPILL);
  ck_assert_ptr_eq(t, &r->view[1]);

  res_set_t big = {0};
  res_put_name(&big, "CPU", 64);
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
  res_put_name(&r->view[1].avail, "CPU", 1);
  Rayc__RequestWorkerLeaseRequest req = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  res_set_t res = one_cpu();
  raylet_view_node_t *t = raylet_sched_requeue(r, &req, &res);
  ck_assert_ptr_eq(t, &r->view[2]);
  ck_assert(res_get_name(&r->view[2].avail, "CPU") == 3); /* lowered until the next view */
  for (int i = 0; i < 3; i++)
    ck_assert_ptr_nonnull(raylet_sched_requeue(r, &req, &res));
  ck_assert(res_get_name(&r->view[1].avail, "CPU") + res_get_name(&r->view[2].avail, "CPU") == 1);
  ck_assert_ptr_nonnull(raylet_sched_requeue(r, &req, &res));
  ck_assert_ptr_null(raylet_sched_requeue(r, &req, &res)); /* the cluster is full: stay queued */

  res_put_name(&r->view[2].avail, "CPU", 4);
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
  tcase_add_test(tc, test_every_row_names_its_required_fields);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
