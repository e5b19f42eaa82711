/* Unit tests of the cluster-wide GCS state: node labels, the cluster view and its version, what
 * the node, job and worker tables publish, the wiring of a node's death to jobs and workers, the
 * worker table and its reload, and the health-check failure count. No RPC is made. */
#include "common/ids.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static gcs_store_t *store;
static gcs_pubsub_t ps;
static size_t replies;

static void count_reply(void *ctx, rpc_call_t *call, const Rayc__PollReply *r)
{
  (void)ctx, (void)call, (void)r;
  replies++;
}

static void setup(void)
{
  log_init("test", LOG_ERROR);
  store = gcs_store_create_memory();
  gcs_pubsub_init(&ps, 100, 1000, 1, count_reply, NULL);
}

/* Copies msg_at handed out (freed at teardown). */
static Rayc__PubMessage *read_back[8];
static size_t nread_back;

static void teardown(void)
{
  for (size_t i = 0; i < nread_back; i++)
    pb_free(read_back[i]);
  nread_back = 0;
  gcs_pubsub_release(&ps);
  gcs_store_destroy(store);
}

typedef struct test_node {
  Rayc__NodeInfo info;
  Rayc__ResourceEntry cpu, *res[1];
  Rayc__Label zone, *labels[1];
  id_node_t id;
} test_node_t;

static void test_node_make(test_node_t *t, double cpus, const char *zone)
{
  rayc__node_info__init(&t->info);
  rayc__resource_entry__init(&t->cpu);
  rayc__label__init(&t->zone);
  t->cpu.name = (char *)"CPU";
  t->cpu.amount = cpus;
  t->res[0] = &t->cpu;
  t->zone.key = (char *)"zone";
  t->zone.value = (char *)zone;
  t->labels[0] = &t->zone;
  t->id = id_node_random();
  t->info.node_id = pb_bytes(t->id.b, ID_NODE_SIZE);
  t->info.ip = (char *)"10.1.0.1";
  t->info.raylet_port = 4000;
  t->info.n_resources_total = 1;
  t->info.resources_total = t->res;
  t->info.n_labels = 1;
  t->info.labels = t->labels;
}

/* The messages of channel c, oldest first, as a poller reads them: the ring keeps payloads packed
 * (gcs_pubsub.c), so this returns an unpacked copy. */
static Rayc__PubMessage *msg_at(Rayc__PubChannel c, size_t i)
{
  const gcs_pub_channel_t *ch = &ps.ch[c];
  ck_assert_uint_lt(i, ch->count);
  ck_assert_uint_lt(nread_back, sizeof(read_back) / sizeof(read_back[0]));
  Rayc__PubMessage *m = (Rayc__PubMessage *)gcs_pb_dup(&ch->ring[(ch->head + i) % ps.cap]->base);
  read_back[nread_back++] = m;
  return m;
}

START_TEST(labels_are_kept_and_checked)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 1);
  test_node_t a;
  test_node_make(&a, 2, "eu-1");
  ck_assert_int_eq(gcs_nodes_register(&nodes, &a.info, 0, NULL), 0);
  Rayc__NodeInfo view;
  gcs_node_view(nodes.v[0], &view);
  ck_assert_uint_eq(view.n_labels, 1);
  ck_assert_str_eq(view.labels[0]->value, "eu-1");
  Rayc__Label dup = RAYC__LABEL__INIT, *two[2] = {&a.zone, &dup};
  dup.key = (char *)"zone";
  a.info.labels = two;
  a.info.n_labels = 2;
  const char *why = NULL;
  ck_assert_int_eq(gcs_nodes_register(&nodes, &a.info, 0, &why), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(why, "labels"));
  dup.key = (char *)"";
  ck_assert_int_eq(gcs_nodes_register(&nodes, &a.info, 0, &why), RAYC_EINVALID_ARGUMENT);
  /* reloaded with the node */
  gcs_nodes_t again;
  gcs_nodes_init(&again, store, 0, 1);
  ck_assert_str_eq(again.v[0]->info->labels[0]->key, "zone");
  gcs_nodes_release(&again);
  gcs_nodes_release(&nodes);
}
END_TEST

START_TEST(cluster_view_versions)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 5000);
  ck_assert_int_eq(nodes.view_version, 5000);
  test_node_t a, b;
  test_node_make(&a, 4, "z1");
  test_node_make(&b, 8, "z2");
  gcs_nodes_register(&nodes, &a.info, 0, NULL);
  gcs_nodes_register(&nodes, &b.info, 0, NULL);
  int64_t v = nodes.view_version;
  ck_assert_int_eq(v, 5002);
  /* a heartbeat that reports the totals as available changes nothing */
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(a.id.b, ID_NODE_SIZE);
  hb.n_resources_available = 1;
  hb.resources_available = a.res;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 1, NULL), 0);
  ck_assert_int_eq(nodes.view_version, v);
  Rayc__ResourceEntry used = RAYC__RESOURCE_ENTRY__INIT, *uv[1] = {&used};
  used.name = (char *)"CPU";
  used.amount = 1;
  hb.resources_available = uv;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 2, NULL), 0);
  ck_assert_int_eq(nodes.view_version, v + 1);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 3, NULL), 0); /* same again */
  ck_assert_int_eq(nodes.view_version, v + 1);
  gcs_cluster_view_t view;
  gcs_nodes_cluster_view(&nodes, &view);
  ck_assert_int_eq(view.msg.version, v + 1);
  ck_assert_uint_eq(view.msg.n_nodes, 2);
  ck_assert(view.msg.nodes[0]->resources_available[0]->amount == 1);
  ck_assert(view.msg.nodes[0]->resources_total[0]->amount == 4);
  ck_assert_int_eq(view.msg.nodes[1]->raylet_port, 4000);
  ck_assert_str_eq(view.msg.nodes[1]->labels[0]->value, "z2");
  gcs_cluster_view_release(&view);
  /* a death removes the node from the view */
  gcs_nodes_mark_dead(&nodes, nodes.v[1], "test");
  ck_assert_int_eq(nodes.view_version, v + 2);
  gcs_nodes_cluster_view(&nodes, &view);
  ck_assert_uint_eq(view.msg.n_nodes, 1);
  ck_assert_mem_eq(view.msg.nodes[0]->node_id.data, a.id.b, ID_NODE_SIZE);
  gcs_cluster_view_release(&view);
  gcs_nodes_release(&nodes);
}
END_TEST

/* Applies a delta to a raylet's copy of the view as raylet_view_apply does: a list of node ids with
 * the CPU each has free (removed ones gone). */
typedef struct seen_view {
  uint8_t id[8][ID_NODE_SIZE];
  double cpu[8];
  int n;
  int64_t version;
} seen_view_t;

static void seen_apply(seen_view_t *s, const Rayc__ClusterView *v)
{
  ck_assert(v->delta);
  ck_assert_int_eq(v->base_version, s->version);
  for (size_t i = 0; i < v->n_removed; i++)
    for (int k = 0; k < s->n; k++)
      if (memcmp(s->id[k], v->removed[i].data, ID_NODE_SIZE) == 0) {
        memcpy(s->id[k], s->id[--s->n], ID_NODE_SIZE);
        s->cpu[k] = s->cpu[s->n];
      }
  for (size_t i = 0; i < v->n_nodes; i++) {
    int k = 0;
    while (k < s->n && memcmp(s->id[k], v->nodes[i]->node_id.data, ID_NODE_SIZE) != 0)
      k++;
    if (k == s->n)
      memcpy(s->id[s->n++], v->nodes[i]->node_id.data, ID_NODE_SIZE);
    s->cpu[k] = v->nodes[i]->resources_available[0]->amount;
  }
  s->version = v->version;
}

/* Takes deltas of at most max_bytes until the view is current; returns how many it took. */
static int seen_catch_up(gcs_nodes_t *nodes, seen_view_t *s, size_t max_bytes)
{
  int parts = 0;
  gcs_cluster_view_t v;
  while (gcs_nodes_view_since_max(nodes, 5000, s->version, 16, max_bytes, &v) == 1) {
    ck_assert_uint_le(protobuf_c_message_get_packed_size(&v.msg.base), max_bytes);
    ck_assert_int_le(v.msg.version, nodes->view_version);
    seen_apply(s, &v.msg);
    gcs_cluster_view_release(&v);
    ck_assert_int_lt(++parts, 100);
  }
  ck_assert(gcs_nodes_view_current(nodes, 5000, s->version));
  return parts;
}

/* A raylet's view brought up to date with deltas of a bounded size (a heartbeat datagram's): the
 * oldest changes first, each part a version the next delta starts from, and the end the same as the
 * full view, also when a node changed again after the part that carried it, and when one died. A
 * full view, too many changes or too few bytes for one entry say -1. */
START_TEST(view_delta_within_bytes)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 5000);
  test_node_t t[6];
  for (int i = 0; i < 6; i++) {
    test_node_make(&t[i], 1 + i, "z");
    gcs_nodes_register(&nodes, &t[i].info, 0, NULL);
  }
  seen_view_t seen = {.version = 5000};
  gcs_cluster_view_t v;
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, 5000, 16, 10000, &v), 1);
  ck_assert_uint_eq(v.msg.n_nodes, 6);
  ck_assert_int_eq(v.msg.version, 5006);
  size_t six = protobuf_c_message_get_packed_size(&v.msg.base);
  gcs_cluster_view_release(&v);
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, 5005, 16, 10000, &v), 1);
  ck_assert_uint_eq(v.msg.n_nodes, 1);
  size_t one = (six - protobuf_c_message_get_packed_size(&v.msg.base)) / 5; /* bytes of one node's entry */
  gcs_cluster_view_release(&v);
  ck_assert_int_eq(seen_catch_up(&nodes, &seen, GCS_VIEW_HEAD_MAX + 2 * one + 4), 3); /* two nodes a part */
  ck_assert_int_eq(seen.n, 6);
  /* node 0 changes, then node 1 dies, node 0 changes again: two entries since 5006 */
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  Rayc__ResourceEntry used = RAYC__RESOURCE_ENTRY__INIT, *uv[1] = {&used};
  used.name = (char *)"CPU";
  hb.node_id = pb_bytes(t[0].id.b, ID_NODE_SIZE);
  hb.n_resources_available = 1;
  hb.resources_available = uv;
  used.amount = 0.5;
  gcs_nodes_heartbeat(&nodes, &hb, 1, NULL);
  int64_t mid = nodes.view_version;
  gcs_nodes_mark_dead(&nodes, nodes.v[1], "test");
  used.amount = 0.25;
  gcs_nodes_heartbeat(&nodes, &hb, 2, NULL);
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, seen.version, 16, 10000, &v), 1);
  ck_assert_uint_eq(v.msg.n_nodes + v.msg.n_removed, 2);
  gcs_cluster_view_release(&v);
  ck_assert_int_eq(seen_catch_up(&nodes, &seen, GCS_VIEW_HEAD_MAX + one + 4), 2); /* the death, then node 0 */
  ck_assert_int_eq(seen.n, 5);
  for (int k = 0; k < seen.n; k++) {
    ck_assert(memcmp(seen.id[k], t[1].id.b, ID_NODE_SIZE) != 0);
    if (memcmp(seen.id[k], t[0].id.b, ID_NODE_SIZE) == 0)
      ck_assert(seen.cpu[k] == 0.25);
  }
  /* what goes over gRPC instead */
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, seen.version, 16, 10000, &v), 0);
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 0, 0, 16, 10000, &v), -1);          /* none held */
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 4999, mid, 16, 10000, &v), -1);     /* another epoch */
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, nodes.view_version + 1, 16, 10000, &v), -1);
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, 5000, 5, 10000, &v), -1);     /* 6 changed */
  ck_assert_int_eq(gcs_nodes_view_since_max(&nodes, 5000, 5000, 16, GCS_VIEW_HEAD_MAX + one - 1, &v), -1);
  ck_assert_ptr_null(v.nodes);
  gcs_nodes_release(&nodes);
}
END_TEST

START_TEST(tables_publish_changes)
{
  gcs_nodes_t nodes;
  gcs_jobs_t jobs;
  gcs_nodes_init(&nodes, store, 0, 1);
  gcs_jobs_init(&jobs, store);
  nodes.pubsub = jobs.pubsub = &ps;
  test_node_t a;
  test_node_make(&a, 1, "z");
  gcs_nodes_register(&nodes, &a.info, 0, NULL);
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(a.id.b, ID_NODE_SIZE);
  gcs_nodes_heartbeat(&nodes, &hb, 1, NULL); /* heartbeats are not published */
  ck_assert_int_eq(gcs_nodes_check_timeouts(&nodes, 1000, 500), 1);
  ck_assert_uint_eq(ps.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE].count, 2);
  Rayc__PubMessage *m = msg_at(RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE, 1);
  ck_assert_int_eq(m->node->state, RAYC__NODE_STATE__NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(m->node->death_reason, "no heartbeat"));
  gcs_job_t *j = gcs_jobs_add(&jobs, NULL);
  gcs_jobs_finish(&jobs, j->id.b, ID_JOB_SIZE, "driver exited");
  ck_assert_uint_eq(ps.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB].count, 2);
  m = msg_at(RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB, 1);
  ck_assert(m->job->is_dead);
  ck_assert_str_eq(m->job->end_reason, "driver exited");
  ck_assert_int_eq(m->seq, 4);
  gcs_jobs_release(&jobs);
  gcs_nodes_release(&nodes);
}
END_TEST

/* A node's death through the server's wiring: jobs whose driver ran there finish, its workers
 * die, others are untouched, and everything is published. */
START_TEST(node_death_ends_jobs_and_workers)
{
  gcs_config_t conf;
  char *argv[] = {(char *)"rayc-gcs", (char *)"--port=0", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 2, argv), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *err = NULL;
  gcs_server_t *s = gcs_server_create(&loop, &conf, &err);
  ck_assert_msg(s != NULL, "%s", err);
  test_node_t a, b;
  test_node_make(&a, 1, "z");
  test_node_make(&b, 1, "z");
  gcs_nodes_register(&s->nodes, &a.info, 0, NULL);
  gcs_nodes_register(&s->nodes, &b.info, 0, NULL);
  Rayc__Address on_a = RAYC__ADDRESS__INIT, on_b = RAYC__ADDRESS__INIT;
  on_a.node_id = a.info.node_id;
  on_b.node_id = b.info.node_id;
  Rayc__JobInfo ja = RAYC__JOB_INFO__INIT, jb = RAYC__JOB_INFO__INIT;
  ja.driver = &on_a;
  jb.driver = &on_b;
  gcs_job_t *job_a = gcs_jobs_add(&s->jobs, &ja), *job_b = gcs_jobs_add(&s->jobs, &jb);
  id_worker_t wa = id_worker_random(), wb = id_worker_random();
  Rayc__WorkerInfo w = RAYC__WORKER_INFO__INIT;
  w.worker_id = pb_bytes(wa.b, ID_WORKER_SIZE);
  w.address = &on_a;
  ck_assert_int_eq(gcs_workers_register(&s->workers, &w), 0);
  w.worker_id = pb_bytes(wb.b, ID_WORKER_SIZE);
  w.address = &on_b;
  ck_assert_int_eq(gcs_workers_register(&s->workers, &w), 0);
  size_t before = s->pubsub.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB].count;

  gcs_nodes_mark_dead(&s->nodes, s->nodes.v[0], "test kill");
  ck_assert_int_eq(job_a->state, GCS_JOB_FINISHED);
  ck_assert_str_eq(job_a->end_reason, "the node of its driver died");
  ck_assert_int_eq(job_b->state, GCS_JOB_RUNNING);
  gcs_worker_t *dead = gcs_workers_find(&s->workers, wa.b, ID_WORKER_SIZE);
  ck_assert_int_eq(dead->state, GCS_WORKER_DEAD);
  ck_assert_int_eq(dead->info->exit_type, RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_NODE_DIED);
  ck_assert_int_eq(gcs_workers_find(&s->workers, wb.b, ID_WORKER_SIZE)->state, GCS_WORKER_ALIVE);
  ck_assert_uint_eq(s->pubsub.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_JOB].count, before + 1);
  ck_assert_uint_eq(s->pubsub.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_WORKER].count, 1);

  gcs_server_stop(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  gcs_server_destroy(s);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  gcs_config_release(&conf);
}
END_TEST

START_TEST(workers_register_fail_reload)
{
  gcs_workers_t t, again;
  gcs_workers_init(&t, store);
  t.pubsub = &ps;
  id_worker_t a = id_worker_random(), b = id_worker_random();
  Rayc__WorkerInfo w = RAYC__WORKER_INFO__INIT;
  w.worker_id = pb_bytes(a.b, ID_WORKER_SIZE);
  w.pid = 99;
  ck_assert_int_eq(gcs_workers_register(&t, &w), 0);
  ck_assert(gcs_workers_find(&t, a.b, ID_WORKER_SIZE)->info->is_alive);
  Rayc__ReportWorkerFailureRequest f = RAYC__REPORT_WORKER_FAILURE_REQUEST__INIT;
  f.worker_id = pb_bytes(a.b, ID_WORKER_SIZE);
  f.exit_type = RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_USER_ERROR;
  f.exit_detail = (char *)"exit(3)";
  ck_assert_int_eq(gcs_workers_fail(&t, &f), 0);
  ck_assert_int_eq(gcs_workers_fail(&t, &f), 0); /* idempotent: published once */
  f.worker_id = pb_bytes(b.b, ID_WORKER_SIZE);   /* never registered: added dead */
  f.exit_type = RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_NONE;
  ck_assert_int_eq(gcs_workers_fail(&t, &f), 0);
  ck_assert_uint_eq(ps.ch[RAYC__PUB_CHANNEL__PUB_CHANNEL_WORKER].count, 2);
  ck_assert_uint_eq(t.ndead, 2);
  f.worker_id.len = 3;
  ck_assert_int_eq(gcs_workers_fail(&t, &f), RAYC_EINVALID_ARGUMENT);
  w.worker_id.len = 5;
  ck_assert_int_eq(gcs_workers_register(&t, &w), RAYC_EINVALID_ARGUMENT);

  gcs_workers_init(&again, store);
  gcs_worker_t *ra = gcs_workers_find(&again, a.b, ID_WORKER_SIZE);
  ck_assert_int_eq(ra->state, GCS_WORKER_DEAD);
  ck_assert_str_eq(ra->info->exit_detail, "exit(3)");
  ck_assert_int_eq(ra->info->pid, 99);
  ck_assert_int_eq(gcs_workers_find(&again, b.b, ID_WORKER_SIZE)->info->exit_type,
                   RAYC__WORKER_EXIT_TYPE__WORKER_EXIT_SYSTEM_ERROR);
  gcs_workers_release(&again);
  gcs_workers_release(&t);
}
END_TEST

START_TEST(health_failures_reach_threshold)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 1);
  nodes.pubsub = &ps;
  test_node_t a;
  test_node_make(&a, 1, "z");
  gcs_nodes_register(&nodes, &a.info, 0, NULL);
  gcs_health_t h = {.nodes = &nodes, .threshold = 3};
  gcs_node_t *n = nodes.v[0];
  gcs_health_result(&h, n, 0, "refused");
  gcs_health_result(&h, n, 0, "refused");
  gcs_health_result(&h, n, 1, NULL); /* a success resets the count */
  ck_assert_int_eq(n->failures, 0);
  gcs_health_result(&h, n, 0, "refused");
  gcs_health_result(&h, n, 0, "refused");
  ck_assert_int_eq(n->state, GCS_NODE_ALIVE);
  gcs_health_result(&h, n, 0, "deadline exceeded");
  ck_assert_int_eq(n->state, GCS_NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(n->death_reason, "health checks failed 3 times"));
  ck_assert_ptr_nonnull(strstr(n->death_reason, "deadline exceeded"));
  ck_assert_uint_eq(h.failed, 5);
  /* registering again starts a new incarnation with a clean count */
  uint64_t inc = n->incarnation;
  gcs_nodes_register(&nodes, &a.info, 10, NULL);
  ck_assert_int_eq(n->state, GCS_NODE_ALIVE);
  ck_assert_uint_eq(n->incarnation, inc + 1);
  ck_assert_int_eq(n->failures, 0);
  gcs_nodes_release(&nodes);
}
END_TEST

static Suite *gcs_cluster_suite(void)
{
  Suite *s = suite_create("gcs_cluster");
  TCase *tc = tcase_create("cluster");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, labels_are_kept_and_checked);
  tcase_add_test(tc, cluster_view_versions);
  tcase_add_test(tc, view_delta_within_bytes);
  tcase_add_test(tc, tables_publish_changes);
  tcase_add_test(tc, node_death_ends_jobs_and_workers);
  tcase_add_test(tc, workers_register_fail_reload);
  tcase_add_test(tc, health_failures_reach_threshold);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(gcs_cluster_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
