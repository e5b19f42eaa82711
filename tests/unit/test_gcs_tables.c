/* Unit tests of the GCS tables (store, KV, nodes, jobs) and of its RPC table. */
#include "common/ids.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_kv.h"
#include "gcs/gcs_server.h"
#include "common/rpc_valid.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static gcs_store_t *store;

static void setup(void)
{
  log_init("test", LOG_ERROR);
  store = gcs_store_create_memory();
}

static void teardown(void)
{
  gcs_store_destroy(store);
  store = NULL;
}

/* ---- store ---- */

static void count_entry(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  (void)key, (void)klen, (void)val, (void)vlen;
  (*(int *)arg)++;
}

START_TEST(store_put_get_overwrite)
{
  uint8_t *v = NULL;
  size_t n = 0;
  ck_assert_int_eq(gcs_store_put(store, "T", "k", 1, "v1", 2, 0), 1);
  ck_assert_int_eq(gcs_store_put(store, "T", "k", 1, "v2", 2, 0), 0); /* kept */
  ck_assert_int_eq(gcs_store_get(store, "T", "k", 1, &v, &n), 1);
  ck_assert_mem_eq(v, "v1", 2);
  free(v);
  ck_assert_int_eq(gcs_store_put(store, "T", "k", 1, "v3!", 3, 1), 0); /* replaced */
  ck_assert_int_eq(gcs_store_get(store, "T", "k", 1, &v, &n), 1);
  ck_assert_uint_eq(n, 3);
  ck_assert_mem_eq(v, "v3!", 3);
  free(v);
  ck_assert_int_eq(gcs_store_get(store, "U", "k", 1, &v, &n), 0); /* tables are separate */
  ck_assert_int_eq(gcs_store_del(store, "T", "k", 1, 0), 1);
  ck_assert_int_eq(gcs_store_del(store, "T", "k", 1, 0), 0);
  ck_assert_int_eq(gcs_store_get(store, "T", "k", 1, &v, &n), 0);
}
END_TEST

START_TEST(store_many_keys_and_prefixes)
{
  char key[32];
  for (int i = 0; i < 1000; i++) {
    int len = snprintf(key, sizeof(key), "%s/%d", i % 2 ? "odd" : "even", i);
    ck_assert_int_eq(gcs_store_put(store, "T", key, (size_t)len, key, (size_t)len, 1), 1);
  }
  int n = 0;
  ck_assert_int_eq(gcs_store_scan(store, "T", "odd/", 4, count_entry, &n), 500);
  ck_assert_int_eq(n, 500);
  ck_assert_int_eq(gcs_store_scan(store, "T", NULL, 0, count_entry, &n), 1000);
  ck_assert_int_eq(gcs_store_del(store, "T", "even/", 5, 1), 500);
  ck_assert_int_eq(gcs_store_scan(store, "T", NULL, 0, count_entry, &n), 500);
  uint8_t *v;
  size_t vlen;
  ck_assert_int_eq(gcs_store_get(store, "T", "odd/999", 7, &v, &vlen), 1);
  ck_assert_mem_eq(v, "odd/999", 7);
  free(v);
}
END_TEST

/* ---- KV ---- */

static void collect_key(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  (void)val, (void)vlen;
  char *out = arg;
  strncat(out, (const char *)key, klen);
  strcat(out, ",");
}

START_TEST(kv_namespaces_are_separate)
{
  uint8_t *v = NULL;
  size_t n = 0;
  ck_assert_int_eq(gcs_kv_put(store, "a", "key", 3, "A", 1, 0), 1);
  ck_assert_int_eq(gcs_kv_put(store, "b", "key", 3, "B", 1, 0), 1);
  ck_assert_int_eq(gcs_kv_get(store, "a", "key", 3, &v, &n), 1);
  ck_assert_mem_eq(v, "A", 1);
  free(v);
  ck_assert_int_eq(gcs_kv_get(store, "b", "key", 3, &v, &n), 1);
  ck_assert_mem_eq(v, "B", 1);
  free(v);
  ck_assert_int_eq(gcs_kv_get(store, "", "key", 3, &v, &n), 0);
  /* an empty prefix deletes all of namespace "a" and nothing of "b" */
  ck_assert_int_eq(gcs_kv_del(store, "a", "", 0, 1), 1);
  ck_assert_int_eq(gcs_kv_get(store, "b", "key", 3, &v, &n), 1);
  free(v);
}
END_TEST

START_TEST(kv_overwrite_flag)
{
  uint8_t *v = NULL;
  size_t n = 0;
  ck_assert_int_eq(gcs_kv_put(store, "ns", "k", 1, "1", 1, 0), 1);
  ck_assert_int_eq(gcs_kv_put(store, "ns", "k", 1, "2", 1, 0), 0);
  ck_assert_int_eq(gcs_kv_get(store, "ns", "k", 1, &v, &n), 1);
  ck_assert_mem_eq(v, "1", 1);
  free(v);
  ck_assert_int_eq(gcs_kv_put(store, "ns", "k", 1, "3", 1, 1), 0);
  ck_assert_int_eq(gcs_kv_get(store, "ns", "k", 1, &v, &n), 1);
  ck_assert_mem_eq(v, "3", 1);
  free(v);
  /* binary keys and empty values */
  ck_assert_int_eq(gcs_kv_put(store, "ns", "\0\1", 2, "", 0, 0), 1);
  ck_assert_int_eq(gcs_kv_get(store, "ns", "\0\1", 2, &v, &n), 1);
  ck_assert_uint_eq(n, 0);
  free(v);
}
END_TEST

START_TEST(kv_prefix_keys_and_delete)
{
  const char *keys[] = {"job:1", "job:2", "job:10", "fn:a", "jo"};
  for (size_t i = 0; i < 5; i++)
    gcs_kv_put(store, "ns", keys[i], strlen(keys[i]), "x", 1, 1);
  gcs_kv_put(store, "other", "job:1", 5, "x", 1, 1);
  char out[256] = "";
  ck_assert_int_eq(gcs_kv_keys(store, "ns", "job:", 4, collect_key, out), 3);
  ck_assert_ptr_nonnull(strstr(out, "job:10,"));
  ck_assert_ptr_null(strstr(out, "fn:a"));
  ck_assert_int_eq(gcs_kv_del(store, "ns", "job:", 4, 0), 0); /* exact: no such key */
  ck_assert_int_eq(gcs_kv_del(store, "ns", "job:", 4, 1), 3);
  out[0] = '\0';
  ck_assert_int_eq(gcs_kv_keys(store, "ns", NULL, 0, collect_key, out), 2);
  ck_assert_int_eq(gcs_kv_keys(store, "other", "job:", 4, collect_key, out), 1);
}
END_TEST

/* ---- nodes ---- */

typedef struct test_node {
  Rayc__NodeInfo info;
  Rayc__ResourceEntry cpu, *res[1];
  id_node_t id;
} test_node_t;

static void test_node_make(test_node_t *t, double cpus)
{
  rayc__node_info__init(&t->info);
  rayc__resource_entry__init(&t->cpu);
  t->cpu.name = (char *)"CPU";
  t->cpu.amount = cpus;
  t->res[0] = &t->cpu;
  t->id = id_node_random();
  t->info.node_id = pb_bytes(t->id.b, ID_NODE_SIZE);
  t->info.ip = (char *)"127.0.0.1";
  t->info.raylet_port = 1234;
  t->info.n_resources_total = 1;
  t->info.resources_total = t->res;
}

static Rayc__ReportHeartbeatRequest hb_make(const test_node_t *t, Rayc__ResourceEntry **avail, size_t n)
{
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(t->id.b, ID_NODE_SIZE);
  hb.n_resources_available = n;
  hb.resources_available = avail;
  return hb;
}

START_TEST(node_register_heartbeat_view)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 100);
  test_node_t t;
  test_node_make(&t, 4);
  ck_assert_int_eq(gcs_nodes_register(&nodes, &t.info, 0, NULL), 0);
  gcs_node_t *n = gcs_nodes_find(&nodes, t.id.b, ID_NODE_SIZE);
  ck_assert_ptr_nonnull(n);
  ck_assert_int_eq(n->state, GCS_NODE_ALIVE);
  Rayc__NodeInfo view;
  gcs_node_view(n, &view);
  ck_assert_uint_eq(view.n_resources_available, 1); /* total until the first heartbeat */
  ck_assert(view.resources_available[0]->amount == 4);

  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *avail[1] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 1.5;
  Rayc__ReportHeartbeatRequest hb = hb_make(&t, avail, 1);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 100, NULL), 0);
  gcs_node_view(n, &view);
  ck_assert(view.resources_available[0]->amount == 1.5);
  ck_assert_int_eq(view.state, RAYC__NODE_STATE__NODE_ALIVE);
  ck_assert_int_gt(view.last_heartbeat_ms, 0);
  gcs_nodes_release(&nodes);
}
END_TEST

START_TEST(node_unknown_and_invalid)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 100);
  test_node_t t;
  test_node_make(&t, 2);
  Rayc__ReportHeartbeatRequest hb = hb_make(&t, NULL, 0);
  const char *why = NULL;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 0, &why), RAYC_ENOT_FOUND);
  hb.node_id.len = 5;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 0, &why), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(why);
  t.info.node_id.len = 27;
  ck_assert_int_eq(gcs_nodes_register(&nodes, &t.info, 0, NULL), RAYC_EINVALID_ARGUMENT);
  t.info.node_id.len = ID_NODE_SIZE;
  t.cpu.amount = -1;
  ck_assert_int_eq(gcs_nodes_register(&nodes, &t.info, 0, NULL), RAYC_EINVALID_ARGUMENT);
  t.cpu.amount = NAN;
  ck_assert_int_eq(gcs_nodes_register(&nodes, &t.info, 0, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_uint_eq(nodes.n, 0);
  ck_assert_int_eq(gcs_nodes_unregister(&nodes, t.id.b, ID_NODE_SIZE, "x", 0, NULL), RAYC_ENOT_FOUND);
  ck_assert_int_eq(gcs_nodes_unregister(&nodes, t.id.b, 3, "x", 0, NULL), RAYC_EINVALID_ARGUMENT);
  gcs_nodes_release(&nodes);
}
END_TEST

START_TEST(node_death_by_timeout_and_reregister)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 100);
  test_node_t a, b;
  test_node_make(&a, 1);
  test_node_make(&b, 1);
  gcs_nodes_register(&nodes, &a.info, 1000, NULL);
  gcs_nodes_register(&nodes, &b.info, 1000, NULL);
  Rayc__ReportHeartbeatRequest hb = hb_make(&b, NULL, 0);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 5000, NULL), 0);
  ck_assert_int_eq(gcs_nodes_check_timeouts(&nodes, 11000, 10000), 0); /* exactly the timeout */
  ck_assert_int_eq(gcs_nodes_check_timeouts(&nodes, 11001, 10000), 1);
  gcs_node_t *na = gcs_nodes_find(&nodes, a.id.b, ID_NODE_SIZE);
  ck_assert_int_eq(na->state, GCS_NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(na->death_reason, "no heartbeat"));
  ck_assert_int_eq(gcs_nodes_find(&nodes, b.id.b, ID_NODE_SIZE)->state, GCS_NODE_ALIVE);
  ck_assert_int_eq(gcs_nodes_check_timeouts(&nodes, 20000, 10000), 1); /* b now, a only once */
  /* a dead node's heartbeat says "register again"; registering revives it in place */
  hb = hb_make(&a, NULL, 0);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 20000, NULL), RAYC_ENOT_FOUND);
  ck_assert_int_eq(gcs_nodes_register(&nodes, &a.info, 20000, NULL), 0);
  ck_assert_uint_eq(nodes.n, 2);
  ck_assert_int_eq(na->state, GCS_NODE_ALIVE);
  ck_assert_ptr_null(na->death_reason);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 20001, NULL), 0);
  gcs_nodes_release(&nodes);
}
END_TEST

START_TEST(node_unregister_and_reload)
{
  gcs_nodes_t nodes, again;
  gcs_nodes_init(&nodes, store, 0, 100);
  test_node_t a, b;
  test_node_make(&a, 1);
  test_node_make(&b, 8);
  b.info.is_head = 1;
  gcs_nodes_register(&nodes, &a.info, 0, NULL);
  gcs_nodes_register(&nodes, &b.info, 0, NULL);
  ck_assert_int_eq(gcs_nodes_unregister(&nodes, a.id.b, ID_NODE_SIZE, "stopping", 0, NULL), 0);
  gcs_node_t *na = gcs_nodes_find(&nodes, a.id.b, ID_NODE_SIZE);
  ck_assert_int_eq(na->state, GCS_NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(na->death_reason, "stopping"));
  /* a second table over the same store (a restarted GCS) sees both nodes */
  gcs_nodes_init(&again, store, 50, 100);
  ck_assert_uint_eq(again.n, 2);
  gcs_node_t *ra = gcs_nodes_find(&again, a.id.b, ID_NODE_SIZE);
  gcs_node_t *rb = gcs_nodes_find(&again, b.id.b, ID_NODE_SIZE);
  ck_assert_int_eq(ra->state, GCS_NODE_DEAD);
  ck_assert_str_eq(ra->death_reason, na->death_reason);
  ck_assert_int_eq(rb->state, GCS_NODE_ALIVE);
  ck_assert(rb->info->is_head);
  ck_assert(rb->info->resources_total[0]->amount == 8);
  ck_assert_int_eq(rb->last_seen_ms, 50);
  gcs_nodes_release(&again);
  gcs_nodes_release(&nodes);
}
END_TEST

/* Draining nodes leave the cluster view; infeasible demands are summed by shape over the alive
 * nodes; a bad demand is refused; a drained node dies as "drained". */
START_TEST(node_draining_demands_drained)
{
  gcs_nodes_t nodes;
  gcs_nodes_init(&nodes, store, 0, 100);
  test_node_t a, b;
  test_node_make(&a, 2);
  test_node_make(&b, 2);
  gcs_nodes_register(&nodes, &a.info, 0, NULL);
  gcs_nodes_register(&nodes, &b.info, 0, NULL);
  Rayc__ResourceEntry big = RAYC__RESOURCE_ENTRY__INIT, gpu = RAYC__RESOURCE_ENTRY__INIT;
  big.name = (char *)"CPU";
  big.amount = 1000;
  gpu.name = (char *)"GPU";
  gpu.amount = 8;
  Rayc__ResourceEntry *shape1[1] = {&big}, *shape2[2] = {&gpu, &big}, *shape2r[2] = {&big, &gpu};
  Rayc__ResourceDemand d1 = RAYC__RESOURCE_DEMAND__INIT, d2 = RAYC__RESOURCE_DEMAND__INIT,
                       d3 = RAYC__RESOURCE_DEMAND__INIT;
  d1.shape = shape1, d1.n_shape = 1, d1.count = 2;
  d2.shape = shape2, d2.n_shape = 2, d2.count = 1;
  d3.shape = shape2r, d3.n_shape = 2, d3.count = 3; /* the same shape as d2, in another order */
  Rayc__ResourceDemand *da[2] = {&d1, &d2}, *db[1] = {&d3};
  Rayc__ReportHeartbeatRequest ha = hb_make(&a, NULL, 0), hb = hb_make(&b, NULL, 0);
  ha.infeasible_demands = da, ha.n_infeasible_demands = 2;
  hb.infeasible_demands = db, hb.n_infeasible_demands = 1;
  hb.draining = 1;
  int64_t v0 = nodes.view_version;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &ha, 10, NULL), 0);
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &hb, 10, NULL), 0);
  ck_assert_int_gt(nodes.view_version, v0);
  gcs_cluster_view_t view;
  gcs_nodes_cluster_view(&nodes, &view);
  ck_assert_uint_eq(view.msg.n_nodes, 1); /* b drains */
  ck_assert_mem_eq(view.msg.nodes[0]->node_id.data, a.id.b, ID_NODE_SIZE);
  gcs_cluster_view_release(&view);
  Rayc__NodeInfo info;
  gcs_node_view(gcs_nodes_find(&nodes, b.id.b, ID_NODE_SIZE), &info);
  ck_assert(info.draining);
  size_t n = 0;
  Rayc__ResourceDemand **sum = gcs_nodes_demands(&nodes, &n);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(sum[0]->count, 2);
  ck_assert_int_eq(sum[1]->count, 4);
  gcs_demands_free(sum, n);

  d1.count = -1; /* bad input is refused */
  const char *why = NULL;
  ck_assert_int_eq(gcs_nodes_heartbeat(&nodes, &ha, 20, &why), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_nonnull(why);

  ck_assert_int_eq(gcs_nodes_unregister(&nodes, b.id.b, ID_NODE_SIZE, "rayc stop", 1, NULL), 0);
  gcs_node_t *nb = gcs_nodes_find(&nodes, b.id.b, ID_NODE_SIZE);
  ck_assert_str_eq(nb->death_reason, "drained: rayc stop");
  sum = gcs_nodes_demands(&nodes, &n); /* only alive nodes count */
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(sum[1]->count, 1);
  gcs_demands_free(sum, n);
  gcs_nodes_release(&nodes);
}
END_TEST

/* ---- jobs ---- */

START_TEST(job_ids_increase)
{
  gcs_jobs_t jobs;
  gcs_jobs_init(&jobs, store);
  Rayc__JobInfo info = RAYC__JOB_INFO__INIT;
  info.driver_pid = 42;
  info.entrypoint = (char *)"python x.py";
  for (uint32_t i = 1; i <= 300; i++) {
    gcs_job_t *j = gcs_jobs_add(&jobs, i == 2 ? NULL : &info);
    id_job_t want = id_job_from_int(i);
    ck_assert_uint_eq(j->num, i);
    ck_assert_mem_eq(j->id.b, want.b, ID_JOB_SIZE);
    ck_assert_int_eq(j->state, GCS_JOB_RUNNING);
  }
  id_job_t j1 = id_job_from_int(1), j256 = id_job_from_int(256);
  ck_assert_int_eq(j256.b[2], 1); /* big-endian */
  ck_assert_ptr_eq(gcs_jobs_find(&jobs, j256.b, ID_JOB_SIZE), jobs.v[255]);
  ck_assert_int_eq(gcs_jobs_finish(&jobs, j1.b, ID_JOB_SIZE, NULL), 0);
  ck_assert_int_eq(gcs_jobs_finish(&jobs, j1.b, ID_JOB_SIZE, NULL), 0); /* idempotent */
  ck_assert_int_eq(jobs.v[0]->state, GCS_JOB_FINISHED);
  ck_assert_int_gt(jobs.v[0]->end_time_ms, 0);
  Rayc__JobInfo view;
  gcs_job_view(jobs.v[0], &view);
  ck_assert(view.is_dead);
  ck_assert_int_eq(view.driver_pid, 42);
  ck_assert_uint_eq(view.job_id.len, ID_JOB_SIZE);
  id_job_t unknown = id_job_from_int(9999);
  ck_assert_int_eq(gcs_jobs_finish(&jobs, unknown.b, ID_JOB_SIZE, NULL), RAYC_ENOT_FOUND);
  ck_assert_int_eq(gcs_jobs_finish(&jobs, j1.b, 3, NULL), RAYC_EINVALID_ARGUMENT);
  ck_assert_ptr_null(gcs_jobs_find(&jobs, "\0\0\0\0", 4));
  gcs_jobs_release(&jobs);
}
END_TEST

START_TEST(job_reload_resumes_numbering)
{
  gcs_jobs_t jobs, again;
  gcs_jobs_init(&jobs, store);
  gcs_jobs_add(&jobs, NULL);
  gcs_job_t *j2 = gcs_jobs_add(&jobs, NULL);
  gcs_jobs_finish(&jobs, j2->id.b, ID_JOB_SIZE, "stopped by test");
  gcs_jobs_init(&again, store);
  ck_assert_uint_eq(again.n, 2);
  ck_assert_int_eq(again.v[1]->state, GCS_JOB_FINISHED);
  ck_assert_str_eq(again.v[1]->end_reason, "stopped by test");
  ck_assert_ptr_null(again.v[0]->end_reason);
  ck_assert_uint_eq(gcs_jobs_add(&again, NULL)->num, 3);
  gcs_jobs_release(&again);
  gcs_jobs_release(&jobs);
}
END_TEST

/* ---- the RPC table ---- */

START_TEST(rpc_table_covers_every_method)
{
  const ProtobufCServiceDescriptor *svcs[] = {&rayc__node_info_gcs_service__descriptor,
                                              &rayc__job_info_gcs_service__descriptor,
                                              &rayc__worker_info_gcs_service__descriptor,
                                              &rayc__internal_kvgcs_service__descriptor,
                                              &rayc__internal_pub_sub_gcs_service__descriptor,
                                              &rayc__actor_info_gcs_service__descriptor,
                                              &rayc__placement_group_info_gcs_service__descriptor,
                                              &rayc__job_submission_service__descriptor,
                                              &rayc__task_info_gcs_service__descriptor,
                                              &rayc__event_gcs_service__descriptor};
  size_t total = 0;
  for (size_t i = 0; i < ARRAY_LEN(svcs); i++) {
    ck_assert_int_eq(rpc_methods_check(gcs_rpc_methods, gcs_rpc_methods_len, svcs[i]), 0);
    total += svcs[i]->n_methods;
  }
  ck_assert_uint_eq(gcs_rpc_methods_len, total); /* and no rows of other services */
}
END_TEST

START_TEST(config_defaults_and_errors)
{
  gcs_config_t conf;
  char *argv_ok[] = {(char *)"rayc-gcs", (char *)"--port", (char *)"0", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 3, argv_ok), 0);
  ck_assert_int_eq(conf.port, 0);
  ck_assert_str_eq(conf.node_ip_address, "127.0.0.1");
  ck_assert_int_eq(conf.heartbeat_timeout_ms, 30000);
  ck_assert_int_eq(conf.health_check_period_ms, 1000);
  ck_assert_int_eq(conf.health_check_timeout_ms, 1000);
  ck_assert_int_eq(conf.health_check_failure_threshold, 5);
  ck_assert_int_eq(conf.pubsub_buffer, 1000);
  ck_assert_int_eq(conf.pubsub_poll_timeout_ms, 30000);
  ck_assert_ptr_null(conf.redis_address);
  ck_assert_ptr_null(conf.session_dir);
  gcs_config_release(&conf);
  char *argv_bad[] = {(char *)"rayc-gcs", (char *)"--port", (char *)"70000", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 3, argv_bad), RAYC_EINVALID_ARGUMENT);
  char *argv_wild[] = {(char *)"rayc-gcs", (char *)"--node-ip-address=0.0.0.0", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 2, argv_wild), RAYC_EINVALID_ARGUMENT);
  char *argv_extra[] = {(char *)"rayc-gcs", (char *)"extra", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 2, argv_extra), RAYC_EINVALID_ARGUMENT);
  const char *bad_redis[] = {"localhost", "unix:relative", "h:0", "h:99999", "[::1]6379", ":1"};
  for (size_t i = 0; i < ARRAY_LEN(bad_redis); i++) {
    char *argv_r[] = {(char *)"rayc-gcs", (char *)"--redis-address", (char *)bad_redis[i], NULL};
    ck_assert_msg(gcs_config_load(&conf, 3, argv_r) == RAYC_EINVALID_ARGUMENT, "%s", bad_redis[i]);
  }
  char *argv_hc[] = {(char *)"rayc-gcs", (char *)"--health-check-failure-threshold=0", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 2, argv_hc), RAYC_EINVALID_ARGUMENT);
}
END_TEST

START_TEST(redis_address_forms)
{
  char *host, *path;
  int port;
  ck_assert_int_eq(gcs_redis_parse_address("127.0.0.1:6379", &host, &port, &path), 0);
  ck_assert_str_eq(host, "127.0.0.1");
  ck_assert_int_eq(port, 6379);
  ck_assert_ptr_null(path);
  free(host);
  ck_assert_int_eq(gcs_redis_parse_address("[::1]:7000", &host, &port, &path), 0);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 7000);
  free(host);
  ck_assert_int_eq(gcs_redis_parse_address("unix:/tmp/r.sock", &host, &port, &path), 0);
  ck_assert_ptr_null(host);
  ck_assert_str_eq(path, "/tmp/r.sock");
  free(path);
  /* no port, no host, a port out of range, a relative socket path: refused, nothing returned */
  const char *bad[] = {"127.0.0.1", ":6379", "localhost:", "localhost:65536", "[::1]:x", "unix:r.sock"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(gcs_redis_parse_address(bad[i], &host, &port, &path), RAYC_EINVALID_ARGUMENT);
    ck_assert_ptr_null(host);
    ck_assert_ptr_null(path);
  }
}
END_TEST

/* The GCS section of a shared config file is read; other programs' sections are not. */
START_TEST(config_yaml_section)
{
  char path[] = "/tmp/rayc-test-gcs-XXXXXX";
  int fd = mkstemp(path);
  const char *y = "port: 7001\nnum_cpus: 4\nraylet: {port: 0, bogus: 1}\n"
                  "gcs:\n  health_check_period_ms: 250\n  pubsub_buffer: 9\n";
  ck_assert_int_eq(write(fd, y, strlen(y)), (ssize_t)strlen(y));
  close(fd);
  gcs_config_t conf;
  char *argv[] = {(char *)"rayc-gcs", (char *)"--config", path, NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 3, argv), 0);
  ck_assert_int_eq(conf.port, 7001);
  ck_assert_int_eq(conf.health_check_period_ms, 250);
  ck_assert_int_eq(conf.pubsub_buffer, 9);
  gcs_config_release(&conf);
  unlink(path);
}
END_TEST

START_TEST(redis_unreachable_is_clear)
{
  gcs_config_t conf;
  char *argv[] = {(char *)"rayc-gcs", (char *)"--redis-address", (char *)"unix:/nonexistent/r.sock", NULL};
  ck_assert_int_eq(gcs_config_load(&conf, 3, argv), 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *err = NULL;
  ck_assert_ptr_null(gcs_server_create(&loop, &conf, &err));
  ck_assert_msg(strstr(err, "cannot connect to redis at unix:/nonexistent/r.sock"), "%s", err);
  free(err);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  gcs_config_release(&conf);
}
END_TEST

/* Every row of the GCS's method table says which fields its handler needs (an audited "" when
 * none), and every path names a real field. */
START_TEST(every_row_names_its_required_fields)
{
  for (size_t i = 0; i < gcs_rpc_methods_len; i++) {
    const rpc_method_t *row = &gcs_rpc_methods[i];
    ck_assert_msg(row->required != NULL, "%s lists no required fields", row->method);
    const ProtobufCMethodDescriptor *md = protobuf_c_service_descriptor_get_method_by_name(row->service, row->method);
    char why[200];
    ck_assert_msg(rpc_valid_paths(md->input, row->required, why, sizeof(why)) == 0, "%s: %s", row->method, why);
  }
}
END_TEST

static Suite *gcs_tables_suite(void)
{
  Suite *s = suite_create("gcs_tables");
  TCase *tc = tcase_create("tables");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, store_put_get_overwrite);
  tcase_add_test(tc, store_many_keys_and_prefixes);
  tcase_add_test(tc, kv_namespaces_are_separate);
  tcase_add_test(tc, every_row_names_its_required_fields);
  tcase_add_test(tc, kv_overwrite_flag);
  tcase_add_test(tc, kv_prefix_keys_and_delete);
  tcase_add_test(tc, node_register_heartbeat_view);
  tcase_add_test(tc, node_unknown_and_invalid);
  tcase_add_test(tc, node_death_by_timeout_and_reregister);
  tcase_add_test(tc, node_unregister_and_reload);
  tcase_add_test(tc, node_draining_demands_drained);
  tcase_add_test(tc, job_ids_increase);
  tcase_add_test(tc, job_reload_resumes_numbering);
  tcase_add_test(tc, rpc_table_covers_every_method);
  tcase_add_test(tc, config_defaults_and_errors);
  tcase_add_test(tc, redis_unreachable_is_clear);
  tcase_add_test(tc, redis_address_forms);
  tcase_add_test(tc, config_yaml_section);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(gcs_tables_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
