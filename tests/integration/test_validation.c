/*
 * Request validation at the real daemons (issue 16), with the right cluster token, so every call
 * reaches the dispatcher's checks (common/rpc_valid.h):
 *
 *  - every method of every service at every server (GCS, raylet, object manager, an actor's
 *    worker, the driver's owner server) called with an empty request: a method whose table row
 *    names required fields answers INVALID_ARGUMENT naming the first missing one;
 *  - the malformed requests the issue found accepted (AddJob without a driver pid, KV puts and
 *    deletes without a key, bundle calls without bundles or with short ids, NaN resources, ...)
 *    are refused with INVALID_ARGUMENT, and the GCS log names the rejection;
 *  - a seeded storm of random messages (tests/integration/itest_pbrand.h) at every method of
 *    every server, except the two that stop the raylet on purpose: every daemon is still alive
 *    afterwards, the node is ALIVE, no job is RUNNING without a driver pid, the actor still counts
 *    and the object still reads back. The seed is printed; RAYC_SEED=N reruns one.
 */
#include "itest.h"

#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"
#include "itest_pbrand.h"
#include "itest_sh.h"
#include "proto/core_worker.pb-c.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_actor.pb-c.h"
#include "proto/job.pb-c.h"
#include "proto/gcs_task.pb-c.h"
#include "proto/node_manager.pb-c.h"
#include "proto/object_manager.pb-c.h"

#include <math.h>
#include <time.h>

/* Methods an authorized caller uses to stop or drain a node on purpose: not sent at random. */
static int on_purpose_stops(const char *method)
{
  return strcmp(method, "ShutdownRaylet") == 0 || strcmp(method, "DrainRaylet") == 0;
}

/* Methods that take an empty request (no required fields): everything else must refuse one. */
static const char *const empty_ok[] = {
    "GetAllNodeInfo",   "GetAllJobInfo", "GetAllWorkerInfo", "InternalKVKeys", "ListActors", "GetAllPlacementGroup",
    "GetNodeStats",     "HealthCheck",   "ShutdownRaylet",   "DrainRaylet",    "ListJobs",   "ListJobRecords",
    "AddTaskEventData", "GetTaskEvents", "GetClusterEvents", "ListObjects",    "ListLogs",
};

static int takes_empty(const char *method)
{
  for (size_t i = 0; i < ARRAY_LEN(empty_ok); i++)
    if (strcmp(method, empty_ok[i]) == 0)
      return 1;
  return 0;
}

typedef struct world {
  char gcs[128], raylet[128], om[128], worker[128], owner[128];
  rpc_client_t *c;
} world_t;

static int call(world_t *w, const char *target, const ProtobufCServiceDescriptor *svc, const char *method,
                const ProtobufCMessage *req, char **detail)
{
  ProtobufCMessage *resp = NULL;
  int rc = rpc_call_sync(rpc_channel_get(w->c, target), svc, method, req, 20000, &resp, detail);
  pb_free(resp);
  return rc;
}

static void addr_of(char *out, size_t n, const Rayc__Address *a)
{
  ck_assert_ptr_nonnull(a);
  if (a->port > 0)
    snprintf(out, n, "%s:%d", a->ip, a->port);
  else
    snprintf(out, n, "%s", a->ip);
}

static void world_learn(world_t *w)
{
  char *t = NULL, *err = NULL;
  ck_assert_int_eq(token_read_file(getenv("RAYC_TOKEN_FILE"), &t, &err), 0);
  w->c = rpc_client_create(&(rpc_client_opts_t){.token = t});
  token_free(t);
  snprintf(w->gcs, sizeof(w->gcs), "%s", it_address);
  ProtobufCMessage *resp = NULL;
  Rayc__GetAllNodeInfoRequest nreq = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ck_assert_int_eq(rpc_call_sync(rpc_channel_get(w->c, w->gcs), &rayc__node_info_gcs_service__descriptor,
                                 "GetAllNodeInfo", &nreq.base, 10000, &resp, NULL),
                   0);
  Rayc__GetAllNodeInfoReply *nodes = (Rayc__GetAllNodeInfoReply *)resp;
  ck_assert_uint_eq(nodes->n_nodes, 1);
  snprintf(w->raylet, sizeof(w->raylet), "%s:%d", nodes->nodes[0]->ip, nodes->nodes[0]->raylet_port);
  snprintf(w->om, sizeof(w->om), "%s:%d", nodes->nodes[0]->ip, nodes->nodes[0]->object_manager_port);
  pb_free(resp);
  Rayc__ListActorsRequest areq = RAYC__LIST_ACTORS_REQUEST__INIT;
  ck_assert_int_eq(rpc_call_sync(rpc_channel_get(w->c, w->gcs), &rayc__actor_info_gcs_service__descriptor, "ListActors",
                                 &areq.base, 10000, &resp, NULL),
                   0);
  Rayc__ListActorsReply *actors = (Rayc__ListActorsReply *)resp;
  ck_assert_uint_eq(actors->n_actors, 1);
  addr_of(w->worker, sizeof(w->worker), actors->actors[0]->address);
  addr_of(w->owner, sizeof(w->owner), actors->actors[0]->owner);
  pb_free(resp);
}

static int64_t actor_incr(const rayc_actor *a)
{
  int64_t by = 1;
  rayc_arg arg = RAYC_ARG_VAL(&by, sizeof(by));
  rayc_ref r;
  ck_assert_int_eq(rayc_actor_call(a, "incr", &arg, 1, NULL, &r), 0);
  int rc;
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "actor call: %s", rayc_last_error());
  rayc_ref_release(&r);
  return v;
}

/* Empty requests: refused by every method that needs fields, at every server that serves it. */
static void check_empty_requests(world_t *w)
{
  const char *targets[] = {w->gcs, w->raylet, w->om, w->worker, w->owner};
  int refused = 0;
  for (size_t t = 0; t < ARRAY_LEN(targets); t++)
    for (size_t i = 0; i < pb_n_services; i++)
      for (unsigned m = 0; m < pb_services[i]->n_methods; m++) {
        const ProtobufCMethodDescriptor *md = &pb_services[i]->methods[m];
        if (takes_empty(md->name))
          continue;
        ProtobufCMessage *req = xcalloc(1, md->input->sizeof_message);
        md->input->message_init(req);
        char *detail = NULL;
        int rc = call(w, targets[t], pb_services[i], md->name, req, &detail);
        free(req);
        ck_assert_msg(rc == RAYC_EUNIMPLEMENTED || rc == RAYC_EINVALID_ARGUMENT,
                      "%s/%s at %s with an empty request: %s (%s)", pb_services[i]->name, md->name, targets[t],
                      rayc_strerror(rc), detail ? detail : "");
        if (rc == RAYC_EINVALID_ARGUMENT) {
          ck_assert_msg(detail && strstr(detail, "is required"), "%s: %s", md->name, detail ? detail : "");
          refused++;
        }
        free(detail);
      }
  printf("validation: %d empty requests refused with INVALID_ARGUMENT\n", refused);
  /* GCS 38 methods - 11 that take an empty request, raylet 14 - 5, object manager 4 - 1, worker 9,
   * driver 7 - 2 that a driver does not serve at all (UNIMPLEMENTED); + LeaseWanted at the worker
   * and the driver; + PushTasks at the worker (a driver does not serve it) */
  ck_assert_int_eq(refused, 27 + 9 + 3 + 9 + 5 + 2 + 1);
}

/* Expects method to refuse req with INVALID_ARGUMENT whose detail contains want. */
static void expect_invalid(world_t *w, const char *target, const ProtobufCServiceDescriptor *svc, const char *method,
                           const ProtobufCMessage *req, const char *want)
{
  char *detail = NULL;
  int rc = call(w, target, svc, method, req, &detail);
  ck_assert_msg(rc == RAYC_EINVALID_ARGUMENT && detail && strstr(detail, want), "%s: %s (%s), wanted '%s'", method,
                rayc_strerror(rc), detail ? detail : "", want);
  free(detail);
}

static void check_issue_cases(world_t *w)
{
  const ProtobufCServiceDescriptor *jobs = &rayc__job_info_gcs_service__descriptor;
  const ProtobufCServiceDescriptor *kv = &rayc__internal_kvgcs_service__descriptor;
  const ProtobufCServiceDescriptor *nm = &rayc__node_manager_service__descriptor;
  Rayc__JobInfo job = RAYC__JOB_INFO__INIT;
  Rayc__AddJobRequest add = RAYC__ADD_JOB_REQUEST__INIT;
  expect_invalid(w, w->gcs, jobs, "AddJob", &add.base, "job is required");
  add.job = &job;
  expect_invalid(w, w->gcs, jobs, "AddJob", &add.base, "job.driver_pid is required");
  job.driver_pid = -5;
  expect_invalid(w, w->gcs, jobs, "AddJob", &add.base, "driver_pid must not be negative");

  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.value = pb_bytes("v", 1);
  expect_invalid(w, w->gcs, kv, "InternalKVPut", &put.base, "key is required");
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  del.by_prefix = 1;
  expect_invalid(w, w->gcs, kv, "InternalKVDel", &del.base, "key is required");

  Rayc__PrepareBundleResourcesRequest prep = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  expect_invalid(w, w->raylet, nm, "PrepareBundleResources", &prep.base, "bundles is required");
  Rayc__BundleSpec b = RAYC__BUNDLE_SPEC__INIT, *bp = &b;
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cp = &cpu;
  cpu.name = (char *)"CPU";
  cpu.amount = 1;
  b.placement_group_id = pb_bytes("short", 5);
  b.resources = &cp;
  b.n_resources = 1;
  prep.bundles = &bp;
  prep.n_bundles = 1;
  expect_invalid(w, w->raylet, nm, "PrepareBundleResources", &prep.base, "placement_group_id must be 0 or 18 bytes");
  Rayc__CommitBundleResourcesRequest commit = RAYC__COMMIT_BUNDLE_RESOURCES_REQUEST__INIT;
  expect_invalid(w, w->raylet, nm, "CommitBundleResources", &commit.base, "bundles is required");
  uint8_t pg[18] = {1};
  b.placement_group_id = pb_bytes(pg, sizeof(pg));
  cpu.amount = NAN;
  commit.bundles = &bp;
  commit.n_bundles = 1;
  expect_invalid(w, w->raylet, nm, "CommitBundleResources", &commit.base, "finite");

  Rayc__RequestWorkerLeaseRequest lease = RAYC__REQUEST_WORKER_LEASE_REQUEST__INIT;
  uint8_t job_id[4] = {0, 0, 0, 1}, wid[28] = {2}, lid[16] = {3};
  lease.job_id = pb_bytes(job_id, 4);
  lease.owner_worker_id = pb_bytes(wid, 28);
  lease.lease_id = pb_bytes(lid, 16);
  lease.resources = &cp;
  lease.n_resources = 1;
  cpu.amount = -1;
  expect_invalid(w, w->raylet, nm, "RequestWorkerLease", &lease.base, "resource amount");
  cpu.amount = 1;
  lease.strategy = (Rayc__SchedulingStrategy)42;
  expect_invalid(w, w->raylet, nm, "RequestWorkerLease", &lease.base, "is not a value of");

  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  uint8_t nid[27] = {9};
  node.node_id = pb_bytes(nid, sizeof(nid));
  node.ip = (char *)"10.1.1.1";
  reg.node = &node;
  expect_invalid(w, w->gcs, &rayc__node_info_gcs_service__descriptor, "RegisterNode", &reg.base,
                 "node.node_id must be 0 or 28 bytes");
  ck_assert_int_eq(it_sh(NULL,
                         "grep -q 'rpc: rejected /rayc.JobInfoGcsService/AddJob from .*AddJob: job is required' "
                         "%s/session_latest/logs/gcs.log",
                         it_temp),
                   0);
}

/* Random messages at every method of every server; returns how many were sent. */
static int random_storm(world_t *w, unsigned seed, int rounds, int *accepted, int *refused)
{
  const char *targets[] = {w->gcs, w->raylet, w->om, w->worker, w->owner};
  int sent = 0;
  for (int r = 0; r < rounds; r++)
    for (size_t t = 0; t < ARRAY_LEN(targets); t++)
      for (size_t i = 0; i < pb_n_services; i++)
        for (unsigned m = 0; m < pb_services[i]->n_methods; m++) {
          const ProtobufCMethodDescriptor *md = &pb_services[i]->methods[m];
          if (on_purpose_stops(md->name))
            continue;
          ProtobufCMessage *req = pbr_message(md->input, &seed, 0);
          char *detail = NULL;
          int rc = call(w, targets[t], pb_services[i], md->name, req, &detail);
          ck_assert_msg(rc != RAYC_EUNAVAILABLE && rc != RAYC_ETIMEOUT, "%s/%s at %s: %s (%s): the server died or hung",
                        pb_services[i]->name, md->name, targets[t], rayc_strerror(rc), detail ? detail : "");
          free(detail);
          protobuf_c_message_free_unpacked(req, NULL);
          *accepted += rc == 0;
          *refused += rc == RAYC_EINVALID_ARGUMENT;
          sent++;
        }
  return sent;
}

/* No job is RUNNING without a driver pid; the node is ALIVE. */
static void check_state_sane(world_t *w)
{
  ProtobufCMessage *resp = NULL;
  Rayc__GetAllJobInfoRequest jreq = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
  ck_assert_int_eq(rpc_call_sync(rpc_channel_get(w->c, w->gcs), &rayc__job_info_gcs_service__descriptor,
                                 "GetAllJobInfo", &jreq.base, 10000, &resp, NULL),
                   0);
  Rayc__GetAllJobInfoReply *jobs = (Rayc__GetAllJobInfoReply *)resp;
  for (size_t i = 0; i < jobs->n_jobs; i++)
    ck_assert_msg(jobs->jobs[i]->is_dead || jobs->jobs[i]->driver_pid > 0, "job %zu RUNNING with driver pid %d", i,
                  jobs->jobs[i]->driver_pid);
  pb_free(resp);
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list nodes --address %s", it_build, it_address), 0);
  ck_assert_msg(strstr(out, "ALIVE"), "rayc list nodes: %s", out);
  free(out);
}

START_TEST(requests_are_validated)
{
  rayc_config cfg = {.address = it_address, .code_path = it_code_path, .log_level = "error"};
  ck_assert_msg(rayc_init(&cfg) == 0, "rayc_init: %s", rayc_last_error());
  rayc_actor actor;
  ck_assert_int_eq(rayc_actor_create("TCounter", NULL, 0, NULL, &actor), 0);
  ck_assert_int_eq(actor_incr(&actor), 1);
  char big[200 * 1024];
  memset(big, 'o', sizeof(big));
  rayc_ref obj;
  ck_assert_int_eq(rayc_put(big, sizeof(big), &obj), 0);
  world_t w = {0};
  world_learn(&w);

  check_empty_requests(&w);
  check_issue_cases(&w);
  const char *env = getenv("RAYC_SEED");
  unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
  printf("validation: random requests with seed %u (RAYC_SEED=%u reruns them)\n", seed, seed);
  int accepted = 0, refused = 0;
  int sent = random_storm(&w, seed, 10, &accepted, &refused);
  printf("validation: %d random requests (%d refused INVALID_ARGUMENT, %d answered OK, the rest other errors); "
         "every server still answers\n",
         sent, refused, accepted);

  check_state_sane(&w);
  ck_assert_int_eq(actor_incr(&actor), 2);
  rayc_buf b;
  ck_assert_int_eq(rayc_get(&obj, 1, 10000, &b), 0);
  ck_assert_uint_eq(b.len, sizeof(big));
  rayc_buf_release(&b, 1);
  rayc_ref_release(&obj);
  rpc_client_destroy(w.c);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  unsetenv("RAYC_TOKEN");
  unsetenv("RAYC_TEMP_DIR");
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 128M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("validation");
  TCase *tc = tcase_create("validation");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, requests_are_validated);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  failed += it_stop();
  return failed ? 1 : 0;
}
