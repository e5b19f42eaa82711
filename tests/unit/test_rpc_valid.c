/* Unit tests for common/rpc_valid.c: the generic field rules and required paths that the gRPC
 * dispatcher applies to every request before its handler runs. */
#include "common/pb.h"
#include "common/rpc_valid.h"
#include "common/status.h"
#include "proto/gcs.pb-c.h"
#include "proto/node_manager.pb-c.h"

#include <check.h>
#include <math.h>
#include <string.h>

static char why[300];

static int check(const ProtobufCMessage *m, const char *required)
{
  why[0] = 0;
  return rpc_valid_check(m, required, why, sizeof(why));
}

START_TEST(test_required_paths)
{
  Rayc__AddJobRequest add = RAYC__ADD_JOB_REQUEST__INIT;
  ck_assert_int_eq(check(&add.base, "job job.driver_pid"), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "job is required");
  Rayc__JobInfo job = RAYC__JOB_INFO__INIT;
  add.job = &job;
  ck_assert_int_eq(check(&add.base, "job job.driver_pid"), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "job.driver_pid is required");
  job.driver_pid = 12;
  ck_assert_int_eq(check(&add.base, "job  job.driver_pid "), 0);
  ck_assert_int_eq(check(&add.base, NULL), 0);
  ck_assert_int_eq(check(&add.base, ""), 0);
}
END_TEST

START_TEST(test_required_through_repeated)
{
  Rayc__PrepareBundleResourcesRequest r = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  const char *req = "bundles bundles.placement_group_id";
  ck_assert_int_eq(check(&r.base, req), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "bundles is required (at least one entry)");
  Rayc__BundleSpec a = RAYC__BUNDLE_SPEC__INIT, b = RAYC__BUNDLE_SPEC__INIT, *v[2] = {&a, &b};
  uint8_t pg[18] = {1};
  a.placement_group_id = pb_bytes(pg, sizeof(pg));
  r.bundles = v;
  r.n_bundles = 2;
  ck_assert_int_eq(check(&r.base, req), RAYC_EINVALID_ARGUMENT); /* the second lacks it */
  ck_assert_str_eq(why, "bundles.placement_group_id is required");
  b.placement_group_id = pb_bytes(pg, 17);
  ck_assert_int_eq(check(&r.base, req), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "bundles[1].placement_group_id must be 0 or 18 bytes (got 17)");
  b.placement_group_id = pb_bytes(pg, 18);
  ck_assert_int_eq(check(&r.base, req), 0);
}
END_TEST

START_TEST(test_ids_and_lists)
{
  Rayc__UnregisterNodeRequest u = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  uint8_t id[64] = {0};
  for (size_t n = 0; n < 64; n++) {
    u.node_id = pb_bytes(id, n);
    ck_assert_int_eq(check(&u.base, NULL), n == 0 || n == 28 ? 0 : RAYC_EINVALID_ARGUMENT);
  }
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  static uint8_t big[RPC_VALID_KEY_MAX + 1];
  put.key = pb_bytes(big, sizeof(big));
  ck_assert_int_eq(check(&put.base, "key"), RAYC_EINVALID_ARGUMENT);
  put.key = pb_bytes(big, RPC_VALID_KEY_MAX);
  ck_assert_int_eq(check(&put.base, "key"), 0);
}
END_TEST

START_TEST(test_resources_enums_ports)
{
  Rayc__RequestWorkerLeaseRequest r = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  Rayc__ResourceEntry e = RAYC__RESOURCE_ENTRY__INIT, *ep = &e;
  r.resources = &ep;
  r.n_resources = 1;
  e.name = (char *)"CPU";
  const double bad[] = {NAN, INFINITY, -1, 1e16};
  for (size_t i = 0; i < 4; i++) {
    e.amount = bad[i];
    ck_assert_int_eq(check(&r.base, NULL), RAYC_EINVALID_ARGUMENT);
  }
  e.amount = 0.5;
  ck_assert_int_eq(check(&r.base, NULL), 0);
  e.name = (char *)"";
  ck_assert_int_eq(check(&r.base, NULL), RAYC_EINVALID_ARGUMENT);
  e.name = (char *)"CPU";
  r.strategy = (Rayc__SchedulingStrategy)7;
  ck_assert_int_eq(check(&r.base, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(why, "is not a value of rayc.SchedulingStrategy"));
  r.strategy = RAYC__SCHEDULING_STRATEGY__SPREAD;
  ck_assert_int_eq(check(&r.base, NULL), 0);

  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  reg.node = &node;
  node.raylet_port = 65536;
  ck_assert_int_eq(check(&reg.base, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "node.raylet_port must be a port 0..65535 (got 65536)");
  node.raylet_port = 6379;
  ck_assert_int_eq(check(&reg.base, NULL), 0);
}
END_TEST

/* Regression (tests/fuzz/fuzz_rpc_request): protobuf-c decodes a field numbered 0 as an unknown
 * field and packs it in a form it cannot decode again; such requests are refused. */
START_TEST(test_field_number_zero_refused)
{
  static const uint8_t body[] = {0x80, 0x00, 0x65}; /* tag 0 (a two-byte varint), varint 0x65 */
  ProtobufCMessage *m = protobuf_c_message_unpack(&rayc__get_all_node_info_request__descriptor, NULL, sizeof(body),
                                                  body);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(check(m, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_str_eq(why, "field number 0 is not allowed");
  protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

START_TEST(test_paths_checked_against_descriptors)
{
  ck_assert_int_eq(rpc_valid_paths(&rayc__add_job_request__descriptor, "job job.driver_pid", why, sizeof(why)), 0);
  ck_assert_int_eq(rpc_valid_paths(&rayc__add_job_request__descriptor, "job.driver_pidd", why, sizeof(why)),
                   RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(rpc_valid_paths(&rayc__add_job_request__descriptor, "job.driver_pid.x", why, sizeof(why)),
                   RAYC_EINVALID_ARGUMENT);
  ck_assert_int_eq(rpc_valid_paths(&rayc__add_job_request__descriptor, "..", why, sizeof(why)), RAYC_EINVALID_ARGUMENT);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("rpc_valid");
  TCase *tc = tcase_create("valid");
  tcase_add_test(tc, test_required_paths);
  tcase_add_test(tc, test_required_through_repeated);
  tcase_add_test(tc, test_ids_and_lists);
  tcase_add_test(tc, test_resources_enums_ports);
  tcase_add_test(tc, test_paths_checked_against_descriptors);
  tcase_add_test(tc, test_field_number_zero_refused);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
