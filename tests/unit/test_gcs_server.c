/*
 * Unit tests of the rayc-gcs handlers through the real RPC table: the server runs in-process on a
 * loop thread (ephemeral port on 127.0.0.1) and the tests call every row with built requests,
 * including empty ones and requests of the wrong type, which must be answered and never crash it.
 */
#include "common/ids.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"
#include "tests/helpers/gcs_inproc.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void)
{
  char *argv[] = {(char *)"rayc-gcs", (char *)"--port=0", (char *)"--heartbeat-timeout-ms=60000", NULL};
  gcs_inproc_start(3, argv);
}

static void teardown(void)
{
  gcs_inproc_stop();
}

/* Calls svc.method; returns the status, *resp (if not NULL) the reply (else freed). */
static int call(const ProtobufCServiceDescriptor *svc, const char *method, const void *req, ProtobufCMessage **resp)
{
  ProtobufCMessage *r = NULL;
  int rc = rpc_call_sync(channel, svc, method, req, 5000, &r, NULL);
  if (resp)
    *resp = r;
  else
    pb_free(r);
  return rc;
}

/* Returns a new, empty message of type d (free with pb_free). */
static ProtobufCMessage *empty_msg(const ProtobufCMessageDescriptor *d)
{
  ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
  protobuf_c_message_init(d, m);
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = xmalloc(len);
  protobuf_c_message_pack(m, buf);
  ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, len, buf);
  free(buf);
  free(m);
  return u;
}

static void assert_alive(void)
{
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ck_assert_int_eq(call(&rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req, NULL), 0);
}

START_TEST(every_row_answers_an_empty_request)
{
  for (size_t i = 0; i < gcs_rpc_methods_len; i++) {
    const rpc_method_t *row = &gcs_rpc_methods[i];
    const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(row->service, row->method);
    ProtobufCMessage *req = empty_msg(md->input);
    int rc = call(row->service, row->method, req, NULL);
    ck_assert_msg(rc == 0 || rc == RAYC_EINVALID_ARGUMENT || rc == RAYC_ENOT_FOUND, "%s: %s", row->method,
                  rayc_strerror(rc));
    pb_free(req);
  }
  assert_alive();
}
END_TEST

/* Sends, under each row's path, a request of another type with arbitrary bytes in its fields: the
 * server must answer (OK or INVALID_ARGUMENT) and keep serving. A copy of the service descriptor
 * whose method takes the foreign type makes the client send it. */
START_TEST(wrong_request_types_never_crash)
{
  static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x01, 0x80, 0x1a, 0x00};
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)"\x0a\x05junk";
  put.key = pb_bytes(junk, sizeof(junk));
  put.value = pb_bytes(junk, 3);
  put.overwrite = 1;
  for (size_t i = 0; i < gcs_rpc_methods_len; i++) {
    const rpc_method_t *row = &gcs_rpc_methods[i];
    ProtobufCServiceDescriptor svc = *row->service;
    ProtobufCMethodDescriptor *methods = xmemdup(svc.methods, svc.n_methods * sizeof(*methods));
    for (unsigned k = 0; k < svc.n_methods; k++)
      methods[k].input = &rayc__kvput_request__descriptor;
    svc.methods = methods;
    int rc = call(&svc, row->method, &put, NULL);
    ck_assert_msg(rc == 0 || rc == RAYC_EINVALID_ARGUMENT || rc == RAYC_ENOT_FOUND, "%s: %s", row->method,
                  rayc_strerror(rc));
    free(methods);
  }
  assert_alive();
}
END_TEST

START_TEST(node_register_heartbeat_unregister)
{
  const ProtobufCServiceDescriptor *svc = &rayc__node_info_gcs_service__descriptor;
  id_node_t id = id_node_random();
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *res[1] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 8;
  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  node.node_id = pb_bytes(id.b, ID_NODE_SIZE);
  node.ip = (char *)"10.0.0.1";
  node.n_resources_total = 1;
  node.resources_total = res;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  reg.node = &node;
  ck_assert_int_eq(call(svc, "RegisterNode", &reg, NULL), 0);

  cpu.amount = 5;
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(id.b, ID_NODE_SIZE);
  hb.n_resources_available = 1;
  hb.resources_available = res;
  Rayc__ReportHeartbeatReply *hr = NULL;
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(!hr->unknown_node);
  pb_free(hr);

  Rayc__GetAllNodeInfoRequest all = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  Rayc__GetAllNodeInfoReply *ar = NULL;
  ck_assert_int_eq(call(svc, "GetAllNodeInfo", &all, (ProtobufCMessage **)&ar), 0);
  ck_assert_uint_eq(ar->n_nodes, 1);
  ck_assert_str_eq(ar->nodes[0]->ip, "10.0.0.1");
  ck_assert(ar->nodes[0]->resources_total[0]->amount == 8);
  ck_assert(ar->nodes[0]->resources_available[0]->amount == 5);
  ck_assert_int_eq(ar->nodes[0]->state, RAYC__NODE_STATE__NODE_ALIVE);
  pb_free(ar);

  Rayc__UnregisterNodeRequest un = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  un.node_id = pb_bytes(id.b, ID_NODE_SIZE);
  un.reason = (char *)"test over";
  ck_assert_int_eq(call(svc, "UnregisterNode", &un, NULL), 0);
  ck_assert_int_eq(call(svc, "GetAllNodeInfo", &all, (ProtobufCMessage **)&ar), 0);
  ck_assert_int_eq(ar->nodes[0]->state, RAYC__NODE_STATE__NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(ar->nodes[0]->death_reason, "test over"));
  pb_free(ar);
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(hr->unknown_node);
  pb_free(hr);
}
END_TEST

START_TEST(jobs_add_finish_list)
{
  const ProtobufCServiceDescriptor *svc = &rayc__job_info_gcs_service__descriptor;
  Rayc__JobInfo info = RAYC__JOB_INFO__INIT;
  info.driver_pid = 77;
  Rayc__AddJobRequest add = RAYC__ADD_JOB_REQUEST__INIT;
  add.job = &info;
  Rayc__AddJobReply *r = NULL;
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(call(svc, "AddJob", &add, (ProtobufCMessage **)&r), 0);
    pb_free(r);
  }
  id_job_t j2 = id_job_from_int(2), j9 = id_job_from_int(9);
  Rayc__MarkJobFinishedRequest fin = RAYC__MARK_JOB_FINISHED_REQUEST__INIT;
  fin.job_id = pb_bytes(j2.b, ID_JOB_SIZE);
  ck_assert_int_eq(call(svc, "MarkJobFinished", &fin, NULL), 0);
  fin.job_id = pb_bytes(j9.b, ID_JOB_SIZE);
  ck_assert_int_eq(call(svc, "MarkJobFinished", &fin, NULL), RAYC_ENOT_FOUND);
  Rayc__GetAllJobInfoRequest all = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
  Rayc__GetAllJobInfoReply *ar = NULL;
  ck_assert_int_eq(call(svc, "GetAllJobInfo", &all, (ProtobufCMessage **)&ar), 0);
  ck_assert_uint_eq(ar->n_jobs, 3);
  for (size_t i = 0; i < 3; i++) {
    id_job_t want = id_job_from_int((uint32_t)i + 1);
    ck_assert_mem_eq(ar->jobs[i]->job_id.data, want.b, ID_JOB_SIZE);
    ck_assert_int_eq(ar->jobs[i]->is_dead, i == 1);
    ck_assert_int_eq(ar->jobs[i]->driver_pid, 77);
  }
  pb_free(ar);
}
END_TEST

START_TEST(kv_put_get_keys_del)
{
  const ProtobufCServiceDescriptor *svc = &rayc__internal_kvgcs_service__descriptor;
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  Rayc__KVPutReply *pr = NULL;
  put.ns = (char *)"fn";
  const char *keys[] = {"a:1", "a:2", "b:1"};
  for (int i = 0; i < 3; i++) {
    put.key = pb_bytes(keys[i], 3);
    put.value = pb_bytes("x", 1);
    ck_assert_int_eq(call(svc, "InternalKVPut", &put, (ProtobufCMessage **)&pr), 0);
    ck_assert(pr->added);
    pb_free(pr);
  }
  put.value = pb_bytes("y", 1); /* overwrite = false: kept */
  ck_assert_int_eq(call(svc, "InternalKVPut", &put, (ProtobufCMessage **)&pr), 0);
  ck_assert(!pr->added);
  pb_free(pr);
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  Rayc__KVGetReply *gr = NULL;
  get.ns = (char *)"fn";
  get.key = pb_bytes("b:1", 3);
  ck_assert_int_eq(call(svc, "InternalKVGet", &get, (ProtobufCMessage **)&gr), 0);
  ck_assert(gr->found);
  ck_assert_mem_eq(gr->value.data, "x", 1);
  pb_free(gr);
  Rayc__KVKeysRequest kr = RAYC__KVKEYS_REQUEST__INIT;
  Rayc__KVKeysReply *krr = NULL;
  kr.ns = (char *)"fn";
  kr.prefix = pb_bytes("a:", 2);
  ck_assert_int_eq(call(svc, "InternalKVKeys", &kr, (ProtobufCMessage **)&krr), 0);
  ck_assert_uint_eq(krr->n_keys, 2);
  pb_free(krr);
  Rayc__KVDelRequest del = RAYC__KVDEL_REQUEST__INIT;
  Rayc__KVDelReply *dr = NULL;
  del.ns = (char *)"fn";
  del.key = pb_bytes("a:", 2);
  del.by_prefix = 1;
  ck_assert_int_eq(call(svc, "InternalKVDel", &del, (ProtobufCMessage **)&dr), 0);
  ck_assert_int_eq(dr->deleted, 2);
  pb_free(dr);
  get.ns = (char *)"other";
  ck_assert_int_eq(call(svc, "InternalKVGet", &get, (ProtobufCMessage **)&gr), 0);
  ck_assert(!gr->found);
  pb_free(gr);
}
END_TEST

/* ---- pub/sub over RPC ---- */

typedef struct poll_arg {
  Rayc__PollRequest req;
  Rayc__PubChannel chan;
  Rayc__PollReply *reply;
  int rc;
  int64_t ms;
} poll_arg_t;

static void *poll_thread(void *arg)
{
  poll_arg_t *p = arg;
  int64_t t0 = now_ms();
  p->rc = call(&rayc__internal_pub_sub_gcs_service__descriptor, "Poll", &p->req, (ProtobufCMessage **)&p->reply);
  p->ms = now_ms() - t0;
  return NULL;
}

/* The first poll: resync, with the epoch and position to continue from. */
static void poll_first(poll_arg_t *p, Rayc__PubChannel chan)
{
  rayc__poll_request__init(&p->req);
  p->chan = chan;
  p->req.n_channels = 1;
  p->req.channels = &p->chan;
  p->req.subscriber_id = pb_bytes("sub", 3);
  Rayc__PollReply *r = NULL;
  ck_assert_int_eq(call(&rayc__internal_pub_sub_gcs_service__descriptor, "Poll", &p->req, (ProtobufCMessage **)&r), 0);
  ck_assert(r->resync);
  ck_assert_int_gt(r->epoch, 0);
  p->req.epoch = r->epoch;
  p->req.after_seq = r->last_seq;
  pb_free(r);
}

static void register_node(id_node_t *id, const char *ip)
{
  *id = id_node_random();
  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  node.node_id = pb_bytes(id->b, ID_NODE_SIZE);
  node.ip = (char *)ip;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  reg.node = &node;
  ck_assert_int_eq(call(&rayc__node_info_gcs_service__descriptor, "RegisterNode", &reg, NULL), 0);
}

START_TEST(poll_is_held_until_a_node_registers)
{
  poll_arg_t p;
  poll_first(&p, RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE);
  p.req.timeout_ms = 10000;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, poll_thread, &p), 0);
  usleep(200 * 1000); /* the poll is held */
  id_node_t id;
  int64_t t0 = now_ms();
  register_node(&id, "10.9.9.9");
  pthread_join(t, NULL);
  ck_assert_int_eq(p.rc, 0);
  ck_assert_int_ge(p.ms, 150);
  ck_assert_int_lt(now_ms() - t0, 1000); /* answered by the publish, not the timeout */
  ck_assert(!p.reply->resync);
  ck_assert_uint_eq(p.reply->n_messages, 1);
  ck_assert_str_eq(p.reply->messages[0]->node->ip, "10.9.9.9");
  ck_assert_int_eq(p.reply->messages[0]->node->state, RAYC__NODE_STATE__NODE_ALIVE);
  ck_assert_int_eq(p.reply->last_seq, p.req.after_seq + 1);
  pb_free(p.reply);
}
END_TEST

START_TEST(poll_times_out_empty)
{
  poll_arg_t p;
  poll_first(&p, RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB);
  p.req.timeout_ms = 300;
  id_node_t id;
  register_node(&id, "10.9.9.8"); /* another channel: does not wake a JOB subscriber */
  poll_thread(&p);
  ck_assert_int_eq(p.rc, 0);
  ck_assert_int_ge(p.ms, 280);
  ck_assert_int_lt(p.ms, 2000);
  ck_assert_uint_eq(p.reply->n_messages, 0);
  ck_assert(!p.reply->resync);
  pb_free(p.reply);
}
END_TEST

START_TEST(heartbeat_carries_the_cluster_view_when_it_changed)
{
  const ProtobufCServiceDescriptor *svc = &rayc__node_info_gcs_service__descriptor;
  id_node_t a, b;
  register_node(&a, "10.0.0.1");
  register_node(&b, "10.0.0.2");
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(a.b, ID_NODE_SIZE);
  Rayc__ReportHeartbeatReply *hr = NULL;
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert_ptr_nonnull(hr->cluster_view);
  ck_assert(!hr->cluster_view->delta);
  ck_assert_uint_eq(hr->cluster_view->n_nodes, 2);
  hb.view_version = hr->cluster_view->version;
  hb.view_epoch = hr->cluster_view->epoch;
  pb_free(hr);
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert_ptr_null(hr->cluster_view); /* unchanged: nothing sent */
  pb_free(hr);
  Rayc__UnregisterNodeRequest un = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  un.node_id = pb_bytes(b.b, ID_NODE_SIZE);
  ck_assert_int_eq(call(svc, "UnregisterNode", &un, NULL), 0);
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert_ptr_nonnull(hr->cluster_view); /* the delta: b is gone, a did not change */
  ck_assert(hr->cluster_view->delta);
  ck_assert_int_eq(hr->cluster_view->base_version, hb.view_version);
  ck_assert_uint_eq(hr->cluster_view->n_nodes, 0);
  ck_assert_uint_eq(hr->cluster_view->n_removed, 1);
  ck_assert_mem_eq(hr->cluster_view->removed[0].data, b.b, ID_NODE_SIZE);
  ck_assert_int_gt(hr->cluster_view->version, hb.view_version);
  pb_free(hr);
  hb.view_epoch = hb.view_epoch + 1; /* a view of another GCS incarnation: the full view */
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(!hr->cluster_view->delta);
  ck_assert_uint_eq(hr->cluster_view->n_nodes, 1);
  ck_assert_mem_eq(hr->cluster_view->nodes[0]->node_id.data, a.b, ID_NODE_SIZE);
  pb_free(hr);
}
END_TEST

/* An idle raylet's heartbeat says `unchanged` and carries no resources: the report the GCS holds
 * stands; when it holds none of the raylet's own (just registered), it asks for the full one. */
START_TEST(heartbeat_unchanged_keeps_the_report)
{
  const ProtobufCServiceDescriptor *svc = &rayc__node_info_gcs_service__descriptor;
  id_node_t a;
  register_node(&a, "10.0.0.3");
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(a.b, ID_NODE_SIZE);
  hb.unchanged = 1;
  Rayc__ReportHeartbeatReply *hr = NULL;
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(hr->report_wanted);
  pb_free(hr);
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT;
  cpu.name = (char *)"CPU";
  cpu.amount = 3;
  Rayc__ResourceEntry *pc = &cpu;
  hb.unchanged = 0;
  hb.resources_available = &pc;
  hb.n_resources_available = 1;
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(!hr->report_wanted);
  pb_free(hr);
  hb.unchanged = 1;
  hb.resources_available = NULL;
  hb.n_resources_available = 0;
  ck_assert_int_eq(call(svc, "ReportHeartbeat", &hb, (ProtobufCMessage **)&hr), 0);
  ck_assert(!hr->report_wanted);
  pb_free(hr);
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  Rayc__GetAllNodeInfoReply *all = NULL;
  ck_assert_int_eq(call(svc, "GetAllNodeInfo", &req, (ProtobufCMessage **)&all), 0);
  int seen = 0;
  for (size_t i = 0; i < all->n_nodes; i++) {
    if (memcmp(all->nodes[i]->node_id.data, a.b, ID_NODE_SIZE) != 0)
      continue;
    seen = 1;
    ck_assert_uint_eq(all->nodes[i]->n_resources_available, 1);
    ck_assert(all->nodes[i]->resources_available[0]->amount == 3); /* the report still stands */
  }
  ck_assert(seen);
  pb_free(all);
}
END_TEST

/* A placement group on a cluster without nodes: it stays PENDING (with the reason), a wait times out,
 * bad groups are refused, a retried create is accepted once, removal ends it. */
START_TEST(placement_group_pending_without_nodes)
{
  const ProtobufCServiceDescriptor *svc = &rayc__placement_group_info_gcs_service__descriptor;
  uint8_t id[ID_PG_SIZE];
  id_random(id, sizeof(id));
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpus[] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 1;
  Rayc__Bundle b = RAYC__BUNDLE__INIT, *bs[] = {&b};
  b.resources = cpus;
  b.n_resources = 1;
  Rayc__PlacementGroupInfo info = RAYC__PLACEMENT_GROUP_INFO__INIT;
  info.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  info.name = (char *)"g";
  info.strategy = RAYC__PLACEMENT_STRATEGY__PG_STRICT_SPREAD;
  info.bundles = bs;
  info.n_bundles = 1;
  Rayc__CreatePlacementGroupRequest creq = RAYC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
  creq.placement_group = &info;
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), 0);
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), 0); /* a retry */
  Rayc__WaitPlacementGroupUntilReadyRequest wreq = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
  wreq.placement_group_id = info.placement_group_id;
  wreq.timeout_ms = 200;
  ck_assert_int_eq(call(svc, "WaitPlacementGroupUntilReady", &wreq, NULL), RAYC_ETIMEOUT);
  Rayc__GetPlacementGroupRequest greq = RAYC__GET_PLACEMENT_GROUP_REQUEST__INIT;
  greq.name = (char *)"g";
  ProtobufCMessage *resp = NULL;
  ck_assert_int_eq(call(svc, "GetPlacementGroup", &greq, &resp), 0);
  Rayc__PlacementGroupInfo *got = ((Rayc__GetPlacementGroupReply *)resp)->placement_group;
  ck_assert_int_eq(got->state, RAYC__PLACEMENT_GROUP_STATE__PG_PENDING);
  ck_assert_msg(strstr(got->state_detail, "fits no alive node"), "detail: %s", got->state_detail);
  ck_assert_uint_eq(got->n_bundles, 1);
  pb_free(resp);
  /* refused: a group resource name, no bundles, a wrong id size, an unknown strategy */
  cpu.name = (char *)"CPU_group_0_x";
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), RAYC_EINVALID_ARGUMENT);
  cpu.name = (char *)"CPU";
  info.n_bundles = 0;
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), RAYC_EINVALID_ARGUMENT);
  info.n_bundles = 1;
  info.placement_group_id.len = 5;
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), RAYC_EINVALID_ARGUMENT);
  info.placement_group_id.len = ID_PG_SIZE;
  info.strategy = (Rayc__PlacementStrategy)9;
  ck_assert_int_eq(call(svc, "CreatePlacementGroup", &creq, NULL), RAYC_EINVALID_ARGUMENT);
  Rayc__RemovePlacementGroupRequest rreq = RAYC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
  rreq.placement_group_id = info.placement_group_id;
  ck_assert_int_eq(call(svc, "RemovePlacementGroup", &rreq, NULL), 0);
  ck_assert_int_eq(call(svc, "WaitPlacementGroupUntilReady", &wreq, NULL), RAYC_ENOT_FOUND);
  Rayc__GetAllPlacementGroupRequest areq = RAYC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
  ck_assert_int_eq(call(svc, "GetAllPlacementGroup", &areq, &resp), 0);
  Rayc__GetAllPlacementGroupReply *all = (Rayc__GetAllPlacementGroupReply *)resp;
  ck_assert_uint_eq(all->n_placement_groups, 1);
  ck_assert_int_eq(all->placement_groups[0]->state, RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
  pb_free(resp);
}
END_TEST

START_TEST(workers_over_rpc)
{
  const ProtobufCServiceDescriptor *svc = &rayc__worker_info_gcs_service__descriptor;
  id_worker_t w = id_worker_random();
  Rayc__WorkerInfo info = RAYC__WORKER_INFO__INIT;
  info.worker_id = pb_bytes(w.b, ID_WORKER_SIZE);
  info.pid = 1234;
  Rayc__RegisterWorkerRequest reg = RAYC__REGISTER_WORKER_REQUEST__INIT;
  reg.worker = &info;
  ck_assert_int_eq(call(svc, "RegisterWorker", &reg, NULL), 0);
  Rayc__ReportWorkerFailureRequest f = RAYC__REPORT_WORKER_FAILURE_REQUEST__INIT;
  f.worker_id = info.worker_id;
  f.exit_type = RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_SYSTEM_ERROR;
  f.exit_detail = (char *)"killed by signal 9";
  ck_assert_int_eq(call(svc, "ReportWorkerFailure", &f, NULL), 0);
  Rayc__GetAllWorkerInfoRequest all = RAYC__GET_ALL_WORKER_INFO_REQUEST__INIT;
  Rayc__GetAllWorkerInfoReply *r = NULL;
  ck_assert_int_eq(call(svc, "GetAllWorkerInfo", &all, (ProtobufCMessage **)&r), 0);
  ck_assert_uint_eq(r->n_workers, 1);
  ck_assert(!r->workers[0]->is_alive);
  ck_assert_int_eq(r->workers[0]->pid, 1234);
  ck_assert_str_eq(r->workers[0]->exit_detail, "killed by signal 9");
  pb_free(r);
}
END_TEST

static Suite *gcs_server_suite(void)
{
  Suite *s = suite_create("gcs_server");
  TCase *tc = tcase_create("rpc");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, every_row_answers_an_empty_request);
  tcase_add_test(tc, wrong_request_types_never_crash);
  tcase_add_test(tc, node_register_heartbeat_unregister);
  tcase_add_test(tc, jobs_add_finish_list);
  tcase_add_test(tc, kv_put_get_keys_del);
  tcase_add_test(tc, poll_is_held_until_a_node_registers);
  tcase_add_test(tc, poll_times_out_empty);
  tcase_add_test(tc, heartbeat_carries_the_cluster_view_when_it_changed);
  tcase_add_test(tc, heartbeat_unchanged_keeps_the_report);
  tcase_add_test(tc, workers_over_rpc);
  tcase_add_test(tc, placement_group_pending_without_nodes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(gcs_server_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
