/* Unit tests for common/lease_client.c: the RequestWorkerLease request the GCS and the core worker
 * build, and the outcome each kind of reply (or call failure) is read as. */
#include "common/lease_client.h"

#include "common/pb.h"
#include "common/status.h"

#include <check.h>
#include <string.h>

static const uint8_t WORKER[ID_WORKER_SIZE] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                               15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
static const uint8_t NODE[ID_NODE_SIZE] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                           9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 7};
static const uint8_t LEASE[LEASE_ID_SIZE] = {0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* A reply granting the worker at ip:port, as the raylet's lease_grant builds it. */
static void grant(Rayc__RequestWorkerLeaseReply *rep, Rayc__Address *a, const char *ip, int port)
{
  rayc__request_worker_lease_reply__init(rep);
  rayc__address__init(a);
  a->ip = (char *)ip;
  a->port = port;
  a->worker_id = pb_bytes(WORKER, sizeof(WORKER));
  a->node_id = pb_bytes(NODE, sizeof(NODE));
  rep->worker = a;
  rep->lease_id = pb_bytes(LEASE, sizeof(LEASE));
}

START_TEST(test_granted)
{
  Rayc__RequestWorkerLeaseReply rep;
  Rayc__Address a;
  int32_t gpus[] = {0, 3};
  grant(&rep, &a, "10.1.2.3", 40001);
  rep.gpu_ids = gpus;
  rep.n_gpu_ids = 2;
  lease_reply_t r;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_GRANTED);
  ck_assert_int_eq(r.outcome, LEASE_GRANTED);
  ck_assert_int_eq(r.status, 0);
  ck_assert_mem_eq(r.worker.b, WORKER, ID_WORKER_SIZE);
  ck_assert_mem_eq(r.lease_id, LEASE, LEASE_ID_SIZE);
  ck_assert_int_eq(r.has_node, 1);
  ck_assert_mem_eq(r.node.b, NODE, ID_NODE_SIZE);
  ck_assert_str_eq(r.ip, "10.1.2.3");
  ck_assert_int_eq(r.port, 40001);
  ck_assert_str_eq(r.target, "10.1.2.3:40001");
  ck_assert_uint_eq(r.n_gpu_ids, 2);
  ck_assert_int_eq(r.gpu_ids[1], 3);
  ck_assert_str_eq(lease_outcome_name(r.outcome), "granted");

  grant(&rep, &a, "fd00::5", 7000); /* an IPv6 worker: a target gRPC can dial */
  ck_assert_int_eq(lease_reply_classify(0, "", &rep, &r), LEASE_GRANTED);
  ck_assert_str_eq(r.target, "[fd00::5]:7000");
}
END_TEST

START_TEST(test_spillback)
{
  Rayc__RequestWorkerLeaseReply rep = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  Rayc__Address to = RAYC__ADDRESS__INIT;
  to.ip = (char *)"10.0.0.9";
  to.port = 6380;
  to.node_id = pb_bytes(NODE, sizeof(NODE));
  rep.retry_at_raylet = &to;
  lease_reply_t r;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_SPILLBACK);
  ck_assert_str_eq(r.target, "10.0.0.9:6380");
  ck_assert_int_eq(r.has_node, 1);
  ck_assert_mem_eq(r.node.b, NODE, ID_NODE_SIZE);
  ck_assert_str_eq(lease_outcome_name(r.outcome), "spillback");

  to.node_id.len = 0; /* a raylet named without its node id is still a place to ask */
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_SPILLBACK);
  ck_assert_int_eq(r.has_node, 0);

  to.port = 0; /* nowhere to go: a malformed reply, not a spillback */
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  ck_assert_int_eq(r.status, RAYC_EPROTOCOL);
  to.port = 6380;
  to.ip = (char *)"";
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
}
END_TEST

START_TEST(test_rejected)
{
  Rayc__RequestWorkerLeaseReply rep = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  rep.rejected = 1;
  rep.reject_reason = (char *)"node is draining";
  lease_reply_t r;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_REJECTED);
  ck_assert_str_eq(r.reason, "node is draining");
  rep.reject_reason = NULL;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_REJECTED);
  ck_assert_str_eq(r.reason, "the raylet rejected the request");
}
END_TEST

/* A call that failed: its status decides, whatever the (absent) reply. */
START_TEST(test_errors)
{
  static const struct {
    int status;
    enum lease_outcome want;
  } rows[] = {
      {RAYC_EINFEASIBLE, LEASE_INFEASIBLE}, {RAYC_EUNAVAILABLE, LEASE_UNAVAILABLE}, {RAYC_ECANCELLED, LEASE_CANCELLED},
      {RAYC_ETIMEOUT, LEASE_FAILED},        {RAYC_EINVALID_ARGUMENT, LEASE_FAILED},
  };
  lease_reply_t r;
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    ck_assert_int_eq(lease_reply_classify(rows[i].status, "the detail", NULL, &r), rows[i].want);
    ck_assert_int_eq(r.status, rows[i].status);
    ck_assert_str_eq(r.reason, "the detail");
  }
  ck_assert_int_eq(lease_reply_classify(RAYC_EINFEASIBLE, NULL, NULL, &r), LEASE_INFEASIBLE);
  ck_assert_str_eq(r.reason, rayc_strerror(RAYC_EINFEASIBLE)); /* no detail: the code's message */
  ck_assert_str_eq(lease_outcome_name(LEASE_UNAVAILABLE), "unavailable");
}
END_TEST

/* Replies that grant nothing usable are failures, never a half-filled grant. */
START_TEST(test_malformed_grants)
{
  Rayc__RequestWorkerLeaseReply rep;
  Rayc__Address a;
  lease_reply_t r;
  grant(&rep, &a, "127.0.0.1", 5000);
  a.worker_id.len = 27;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  grant(&rep, &a, "127.0.0.1", 5000);
  rep.lease_id.len = 8;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  grant(&rep, &a, "127.0.0.1", 0);
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  grant(&rep, &a, "127.0.0.1", 70000);
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  grant(&rep, &a, NULL, 5000);
  ck_assert_int_eq(lease_reply_classify(0, NULL, &rep, &r), LEASE_FAILED);
  Rayc__RequestWorkerLeaseReply empty = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  ck_assert_int_eq(lease_reply_classify(0, NULL, &empty, &r), LEASE_FAILED);
  ck_assert_int_eq(r.status, RAYC_EPROTOCOL);
  ck_assert_ptr_nonnull(strstr(r.reason, "no usable worker"));
  ck_assert_int_eq(lease_reply_classify(0, NULL, NULL, &r), LEASE_FAILED);
  ck_assert_str_eq(lease_outcome_name((enum lease_outcome)42), "unknown");
}
END_TEST

/* The request survives the wire whole, with the fields the raylet validates. */
START_TEST(test_request)
{
  res_set_t res;
  res_clear(&res);
  res_put_name(&res, "CPU", 1);
  res_put_name(&res, "GPU", 0.5);
  Rayc__ResourceEntry ents[4], *ptrs[4];
  lease_params_t p = {.resources = ptrs, .code_path = NULL, .language = 1, .spilled = 1};
  p.n_resources = lease_res_entries(&res, ents, ptrs);
  ck_assert_uint_eq(p.n_resources, 2);
  p.job.b[3] = 7;
  memcpy(p.owner.b, WORKER, ID_WORKER_SIZE);
  Rayc__RequestWorkerLeaseRequest req;
  uint8_t id1[LEASE_ID_SIZE], id2[LEASE_ID_SIZE];
  lease_request_init(&req, &p, id2);
  lease_request_init(&req, &p, id1);
  ck_assert_mem_ne(id1, id2, LEASE_ID_SIZE); /* every request its own id */
  uint8_t buf[512];
  size_t len = rayc__request_worker_lease_request__pack(&req, buf);
  Rayc__RequestWorkerLeaseRequest *back = rayc__request_worker_lease_request__unpack(NULL, len, buf);
  ck_assert_ptr_nonnull(back);
  ck_assert_uint_eq(back->job_id.len, ID_JOB_SIZE);
  ck_assert_int_eq(back->job_id.data[3], 7);
  ck_assert_mem_eq(back->owner_worker_id.data, WORKER, ID_WORKER_SIZE);
  ck_assert_uint_eq(back->lease_id.len, LEASE_ID_SIZE);
  ck_assert_mem_eq(back->lease_id.data, id1, LEASE_ID_SIZE);
  ck_assert_str_eq(back->code_path, "");
  ck_assert_int_eq(back->language, 1);
  ck_assert_int_eq(back->spilled, 1);
  ck_assert_uint_eq(back->n_resources, 2);
  ck_assert_str_eq(back->resources[0]->name, "CPU");
  ck_assert_double_eq(back->resources[1]->amount, 0.5);
  ck_assert_int_eq(back->strategy, 0);
  ck_assert_uint_eq(back->placement_group_id.len, 0);
  rayc__request_worker_lease_request__free_unpacked(back, NULL);
}
END_TEST

static Suite *lease_suite(void)
{
  Suite *s = suite_create("lease_client");
  TCase *tc = tcase_create("lease_client");
  tcase_add_test(tc, test_granted);
  tcase_add_test(tc, test_spillback);
  tcase_add_test(tc, test_rejected);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_malformed_grants);
  tcase_add_test(tc, test_request);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(lease_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
