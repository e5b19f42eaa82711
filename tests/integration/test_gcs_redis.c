/*
 * Integration tests of rayc-gcs as a process: persistence in a real redis-server across kill -9
 * (nodes, jobs, workers, KV, actors, placement groups; AddJob and RegisterActor answer a retry
 * alike), and health checks of raylets ending in a node's death that a Poll subscriber is told about.
 *
 * The suite starts one redis-server (a child, on a Unix socket in a temp dir, no persistence of
 * its own) before check forks; each test starts rayc-gcs with posix_spawn and its own key prefix,
 * learns its port from sd_notify (a NOTIFY_SOCKET datagram socket, as `rayc start` does), and
 * talks to it over gRPC from the forked child (gRPC is never initialised before the fork). The
 * "raylet" of the health test is an in-process gRPC server answering HealthCheck; the actor test's
 * fake node is one in-process server playing both the raylet (leases, probes) and the actor's
 * worker (the constructor, WaitActorExit), so the GCS's side of actor persistence is tested alone.
 */
#include "common/ids.h"
#include "common/log.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs_actor.pb-c.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char build[1024], tmp[64], redis_addr[256];
static pid_t redis_pid;
static int spawned; /* counts daemons started, for unique file names */

/* ---- processes ---- */

/* Remembers a pid in tmp/pids so the suite can kill what a failed test left running. */
static void remember_pid(pid_t pid)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/pids", tmp);
  FILE *f = fopen(path, "a");
  if (f) {
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
  }
}

/* Starts argv with stdout and stderr to out and extra_env added; returns the pid or -1. */
static pid_t spawn(char *const argv[], const char *out, const char *extra_env)
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + 2, sizeof(*env));
  memcpy(env, environ, n * sizeof(*env));
  env[n] = (char *)extra_env;
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, extra_env ? env : environ);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  if (rc != 0)
    return -1;
  remember_pid(pid);
  return pid;
}

/* Binds a datagram socket at path for sd_notify messages; returns the fd. */
static int notify_socket(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
  memcpy(sa.sun_path, path, strlen(path) + 1);
  unlink(path);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

/* Waits for READY=1 on fd; returns RAYC_PORT or -1 (timeout or the daemon exited). */
static int wait_ready(int fd, pid_t pid, int timeout_ms)
{
  int64_t end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) == 1) {
      char buf[512];
      ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);
      buf[len > 0 ? len : 0] = '\0';
      const char *port = strstr(buf, "RAYC_PORT=");
      if (strstr(buf, "READY=1") && port)
        return atoi(port + 10);
    }
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return -1;
  }
  return -1;
}

typedef struct gcs_proc {
  pid_t pid;
  int port;
  char out[256];
} gcs_proc_t;

/* Starts rayc-gcs with --port port (0: ephemeral) and extra flags (NULL-terminated). */
static void gcs_start(gcs_proc_t *g, int port, ...)
{
  char bin[1100], portarg[32], notify[256], env[300];
  snprintf(bin, sizeof(bin), "%s/bin/rayc-gcs", build);
  snprintf(portarg, sizeof(portarg), "--port=%d", port);
  int k = ++spawned;
  snprintf(notify, sizeof(notify), "%s/notify-%d.sock", tmp, k);
  snprintf(g->out, sizeof(g->out), "%s/gcs-%d.out", tmp, k);
  snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", notify);
  char *argv[32] = {bin, portarg};
  int argc = 2;
  va_list ap;
  va_start(ap, port);
  for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
    argv[argc++] = a;
  va_end(ap);
  int fd = notify_socket(notify);
  g->pid = spawn(argv, g->out, env);
  ck_assert_int_gt(g->pid, 0);
  g->port = wait_ready(fd, g->pid, 20000);
  close(fd);
  unlink(notify);
  ck_assert_msg(g->port > 0, "rayc-gcs did not start; see %s", g->out);
}

static void gcs_kill9(gcs_proc_t *g)
{
  kill(g->pid, SIGKILL);
  waitpid(g->pid, NULL, 0);
  g->pid = 0;
}

/* SIGTERM; returns the exit status (or -1 when it did not exit normally). */
static int gcs_stop(gcs_proc_t *g)
{
  int st = 0;
  kill(g->pid, SIGTERM);
  waitpid(g->pid, &st, 0);
  g->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- suite: one redis-server ---- */

static void suite_setup(void)
{
  const char *b = getenv("RAYC_BUILD");
  snprintf(build, sizeof(build), "%s", b ? b : "build/normal");
  snprintf(tmp, sizeof(tmp), "/tmp/rayc-gcs-itest-XXXXXX");
  if (!mkdtemp(tmp))
    abort();
  char sock[128], out[128];
  snprintf(sock, sizeof(sock), "%s/redis.sock", tmp);
  snprintf(out, sizeof(out), "%s/redis.out", tmp);
  snprintf(redis_addr, sizeof(redis_addr), "unix:%s", sock);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  tmp,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  NULL};
  redis_pid = spawn(argv, out, NULL);
  for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
    usleep(10 * 1000);
}

/* Kills what failed tests left running (pids whose command line names tmp). */
static void kill_leftovers(void)
{
  char path[256], cmd[300];
  snprintf(path, sizeof(path), "%s/pids", tmp);
  FILE *f = fopen(path, "r");
  for (int pid; f && fscanf(f, "%d", &pid) == 1;) {
    if (pid == redis_pid)
      continue;
    snprintf(cmd, sizeof(cmd), "/proc/%d/cmdline", pid);
    FILE *c = fopen(cmd, "r");
    char buf[2048] = "";
    size_t len = c ? fread(buf, 1, sizeof(buf) - 1, c) : 0;
    if (c)
      fclose(c);
    for (size_t i = 0; i < len; i++)
      buf[i] = buf[i] ? buf[i] : ' ';
    buf[len] = '\0';
    if (strstr(buf, tmp) || strstr(buf, "rayc-gcs"))
      kill(pid, SIGKILL), waitpid(pid, NULL, 0);
  }
  if (f)
    fclose(f);
}

static int suite_teardown(void)
{
  char cmd[512];
  kill_leftovers();
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  snprintf(cmd, sizeof(cmd), "grep -l -E 'Sanitizer|runtime error' %s/gcs-*.out", tmp);
  int reports = system(cmd) == 0;
  if (reports)
    printf("sanitizer reports in the files above (kept in %s)\n", tmp);
  else if (snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp) > 0 && system(cmd) != 0)
    printf("could not remove %s\n", tmp);
  return reports;
}

/* ---- gRPC helpers ---- */

static rpc_client_t *client;
static rpc_channel_t *channel;

static void connect_to(const gcs_proc_t *g)
{
  char target[64];
  if (!client) {
    rpc_client_opts_t o = {0};
    client = rpc_client_create(&o);
  }
  snprintf(target, sizeof(target), "127.0.0.1:%d", g->port);
  channel = rpc_channel_get(client, target);
}

static int call(const ProtobufCServiceDescriptor *svc, const char *method, const void *req, void *resp, int timeout_ms)
{
  ProtobufCMessage *r = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(channel, svc, method, req, timeout_ms, &r, &detail);
  if (resp)
    *(ProtobufCMessage **)resp = r;
  else
    pb_free(r);
  free(detail);
  return rc;
}

#define NODE_SVC   (&rayc__node_info_gcs_service__descriptor)
#define JOB_SVC    (&rayc__job_info_gcs_service__descriptor)
#define KV_SVC     (&rayc__internal_kvgcs_service__descriptor)
#define WORKER_SVC (&rayc__worker_info_gcs_service__descriptor)
#define PUBSUB_SVC (&rayc__internal_pub_sub_gcs_service__descriptor)

static void register_node(const id_node_t *id, int raylet_port)
{
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *res[1] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 4;
  Rayc__Label zone = RAYC__LABEL__INIT, *labels[1] = {&zone};
  zone.key = (char *)"zone";
  zone.value = (char *)"test";
  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  node.node_id = pb_bytes(id->b, ID_NODE_SIZE);
  node.ip = (char *)"127.0.0.1";
  node.raylet_port = raylet_port;
  node.n_resources_total = 1;
  node.resources_total = res;
  node.n_labels = 1;
  node.labels = labels;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  reg.node = &node;
  ck_assert_int_eq(call(NODE_SVC, "RegisterNode", &reg, NULL, 5000), 0);
}

static uint32_t add_job(int pid)
{
  Rayc__JobInfo info = RAYC__JOB_INFO__INIT;
  info.driver_pid = pid;
  Rayc__AddJobRequest req = RAYC__ADD_JOB_REQUEST__INIT;
  req.job = &info;
  Rayc__AddJobReply *r = NULL;
  ck_assert_int_eq(call(JOB_SVC, "AddJob", &req, &r, 5000), 0);
  ck_assert_uint_eq(r->job_id.len, ID_JOB_SIZE);
  uint32_t n = (uint32_t)r->job_id.data[0] << 24 | (uint32_t)r->job_id.data[1] << 16 |
               (uint32_t)r->job_id.data[2] << 8 | r->job_id.data[3];
  pb_free(r);
  return n;
}

static void kv_put(const char *ns, const char *key, const char *val)
{
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)ns;
  put.key = pb_bytes(key, strlen(key));
  put.value = pb_bytes(val, strlen(val));
  put.overwrite = 1;
  ck_assert_int_eq(call(KV_SVC, "InternalKVPut", &put, NULL, 5000), 0);
}

/* Returns the value of ns/key as a new string, or NULL. */
static char *kv_get(const char *ns, const char *key)
{
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  get.ns = (char *)ns;
  get.key = pb_bytes(key, strlen(key));
  Rayc__KVGetReply *r = NULL;
  ck_assert_int_eq(call(KV_SVC, "InternalKVGet", &get, &r, 5000), 0);
  char *v = r->found ? xasprintf("%.*s", (int)r->value.len, r->value.data) : NULL;
  pb_free(r);
  return v;
}

static Rayc__NodeInfo *find_node(Rayc__GetAllNodeInfoReply *r, const id_node_t *id)
{
  for (size_t i = 0; i < r->n_nodes; i++)
    if (r->nodes[i]->node_id.len == ID_NODE_SIZE && !memcmp(r->nodes[i]->node_id.data, id->b, ID_NODE_SIZE))
      return r->nodes[i];
  return NULL;
}

/* ---- persistence across kill -9 ---- */

#define PG_SVC (&rayc__placement_group_info_gcs_service__descriptor)

/* Creates placement group id of one {CPU: 100} bundle (no node has that: it stays PENDING). */
static void create_pg(const uint8_t *id, const char *name)
{
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpus[] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 100;
  Rayc__Bundle b = RAYC__BUNDLE__INIT, *bs[] = {&b};
  b.resources = cpus;
  b.n_resources = 1;
  Rayc__PlacementGroupInfo info = RAYC__PLACEMENT_GROUP_INFO__INIT;
  info.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  info.name = (char *)name;
  info.strategy = RAYC__PLACEMENT_STRATEGY__PG_PACK;
  info.bundles = bs;
  info.n_bundles = 1;
  Rayc__CreatePlacementGroupRequest req = RAYC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group = &info;
  ck_assert_int_eq(call(PG_SVC, "CreatePlacementGroup", &req, NULL, 5000), 0);
}

static void remove_pg(const uint8_t *id)
{
  Rayc__RemovePlacementGroupRequest req = RAYC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  ck_assert_int_eq(call(PG_SVC, "RemovePlacementGroup", &req, NULL, 5000), 0);
}

/* The groups pending and removed, after a restart: as they were; then the pending one is removed. */
static void check_pgs(const uint8_t *pending, const uint8_t *removed)
{
  Rayc__GetAllPlacementGroupRequest req = RAYC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
  Rayc__GetAllPlacementGroupReply *r = NULL;
  ck_assert_int_eq(call(PG_SVC, "GetAllPlacementGroup", &req, &r, 5000), 0);
  ck_assert_uint_eq(r->n_placement_groups, 2);
  int seen = 0;
  for (size_t i = 0; i < r->n_placement_groups; i++) {
    const Rayc__PlacementGroupInfo *g = r->placement_groups[i];
    if (memcmp(g->placement_group_id.data, pending, ID_PG_SIZE) == 0) {
      ck_assert_int_eq(g->state, RAYC__PLACEMENT_GROUP_STATE__PG_PENDING);
      ck_assert_str_eq(g->name, "waits");
      ck_assert(g->n_bundles == 1 && g->bundles[0]->resources[0]->amount == 100);
      seen |= 1;
    } else if (memcmp(g->placement_group_id.data, removed, ID_PG_SIZE) == 0) {
      ck_assert_int_eq(g->state, RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
      seen |= 2;
    }
  }
  ck_assert_int_eq(seen, 3);
  pb_free(r);
  remove_pg(pending); /* reloaded while pending: cancelled on every alive node (none answers here) */
  Rayc__WaitPlacementGroupUntilReadyRequest w = RAYC__WAIT_PLACEMENT_GROUP_UNTIL_READY_REQUEST__INIT;
  w.placement_group_id = pb_bytes(pending, ID_PG_SIZE);
  w.timeout_ms = 100;
  ck_assert_int_eq(call(PG_SVC, "WaitPlacementGroupUntilReady", &w, NULL, 5000), RAYC_ENOT_FOUND);
}

/* Fills the tables of a GCS: nodes a (alive) and b (dead), jobs 1 (finished) and 2, KV in two
 * namespaces, a worker. */
static void fill_tables(const id_node_t *a, const id_node_t *b, const id_worker_t *w)
{
  register_node(a, 0);
  register_node(b, 0);
  Rayc__UnregisterNodeRequest un = RAYC__UNREGISTER_NODE_REQUEST__INIT;
  un.node_id = pb_bytes(b->b, ID_NODE_SIZE);
  un.reason = (char *)"scaled down";
  ck_assert_int_eq(call(NODE_SVC, "UnregisterNode", &un, NULL, 5000), 0);
  ck_assert_uint_eq(add_job(101), 1);
  ck_assert_uint_eq(add_job(102), 2);
  id_job_t j1 = id_job_from_int(1);
  Rayc__MarkJobFinishedRequest fin = RAYC__MARK_JOB_FINISHED_REQUEST__INIT;
  fin.job_id = pb_bytes(j1.b, ID_JOB_SIZE);
  ck_assert_int_eq(call(JOB_SVC, "MarkJobFinished", &fin, NULL, 5000), 0);
  kv_put("fn", "add", "code-of-add");
  kv_put("session", "add", "other-namespace");
  Rayc__WorkerInfo wi = RAYC__WORKER_INFO__INIT;
  wi.worker_id = pb_bytes(w->b, ID_WORKER_SIZE);
  wi.pid = 4321;
  Rayc__RegisterWorkerRequest rw = RAYC__REGISTER_WORKER_REQUEST__INIT;
  rw.worker = &wi;
  ck_assert_int_eq(call(WORKER_SVC, "RegisterWorker", &rw, NULL, 5000), 0);
}

static void check_nodes(const id_node_t *a, const id_node_t *b)
{
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  Rayc__GetAllNodeInfoReply *r = NULL;
  ck_assert_int_eq(call(NODE_SVC, "GetAllNodeInfo", &req, &r, 5000), 0);
  ck_assert_uint_eq(r->n_nodes, 2);
  Rayc__NodeInfo *na = find_node(r, a), *nb = find_node(r, b);
  ck_assert(na && nb);
  ck_assert_int_eq(na->state, RAYC__NODE_STATE__NODE_ALIVE);
  ck_assert_str_eq(na->labels[0]->value, "test");
  ck_assert(na->resources_total[0]->amount == 4);
  ck_assert_int_eq(nb->state, RAYC__NODE_STATE__NODE_DEAD);
  ck_assert_ptr_nonnull(strstr(nb->death_reason, "scaled down"));
  pb_free(r);
  /* the reloaded node's raylet keeps heartbeating: it is known, not told to register again */
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(a->b, ID_NODE_SIZE);
  Rayc__ReportHeartbeatReply *hr = NULL;
  ck_assert_int_eq(call(NODE_SVC, "ReportHeartbeat", &hb, &hr, 5000), 0);
  ck_assert(!hr->unknown_node);
  ck_assert_ptr_nonnull(hr->cluster_view);
  ck_assert_uint_eq(hr->cluster_view->n_nodes, 1);
  pb_free(hr);
}

static void check_jobs_kv_workers(const id_worker_t *w)
{
  Rayc__GetAllJobInfoRequest req = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
  Rayc__GetAllJobInfoReply *r = NULL;
  ck_assert_int_eq(call(JOB_SVC, "GetAllJobInfo", &req, &r, 5000), 0);
  ck_assert_uint_eq(r->n_jobs, 2);
  ck_assert(r->jobs[0]->is_dead);
  ck_assert(!r->jobs[1]->is_dead);
  ck_assert_int_eq(r->jobs[1]->driver_pid, 102);
  pb_free(r);
  ck_assert_uint_eq(add_job(103), 3); /* ids continue, never reused */
  char *v = kv_get("fn", "add");
  ck_assert_str_eq(v, "code-of-add");
  free(v);
  v = kv_get("session", "add");
  ck_assert_str_eq(v, "other-namespace");
  free(v);
  Rayc__GetAllWorkerInfoRequest wr = RAYC__GET_ALL_WORKER_INFO_REQUEST__INIT;
  Rayc__GetAllWorkerInfoReply *wrr = NULL;
  ck_assert_int_eq(call(WORKER_SVC, "GetAllWorkerInfo", &wr, &wrr, 5000), 0);
  ck_assert_uint_eq(wrr->n_workers, 1);
  ck_assert_mem_eq(wrr->workers[0]->worker_id.data, w->b, ID_WORKER_SIZE);
  ck_assert_int_eq(wrr->workers[0]->pid, 4321);
  pb_free(wrr);
}

START_TEST(kill9_and_restart_loses_nothing)
{
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", redis_addr, "--redis-key-prefix", "itest:restart", "--node-ip-address",
            "127.0.0.1", NULL);
  connect_to(&g);
  id_node_t a = id_node_random(), b = id_node_random();
  id_worker_t w = id_worker_random();
  fill_tables(&a, &b, &w);
  kv_put("fn", "last", "acknowledged just before the crash");
  uint8_t pg_pending[ID_PG_SIZE], pg_removed[ID_PG_SIZE];
  id_random(pg_pending, ID_PG_SIZE);
  id_random(pg_removed, ID_PG_SIZE);
  create_pg(pg_pending, "waits");
  create_pg(pg_removed, "gone");
  remove_pg(pg_removed);
  int port = g.port;
  gcs_kill9(&g);

  /* while it is down, calls fail (clients retry) */
  ck_assert_int_eq(
      call(JOB_SVC, "GetAllJobInfo", &(Rayc__GetAllJobInfoRequest)RAYC__GET_ALL_JOB_INFO_REQUEST__INIT, NULL, 2000),
      RAYC_EUNAVAILABLE);

  int64_t t0 = now_ms();
  gcs_start(&g, port, "--redis-address", redis_addr, "--redis-key-prefix", "itest:restart", NULL);
  printf("rayc-gcs restarted on port %d in %lld ms\n", g.port, (long long)(now_ms() - t0));
  ck_assert_int_eq(g.port, port);
  int64_t t1 = now_ms();
  int rc = RAYC_EUNAVAILABLE;
  while (rc == RAYC_EUNAVAILABLE && now_ms() - t1 < 10000) /* the channel reconnects */
    rc = call(NODE_SVC, "GetAllNodeInfo", &(Rayc__GetAllNodeInfoRequest)RAYC__GET_ALL_NODE_INFO_REQUEST__INIT, NULL,
              2000);
  ck_assert_int_eq(rc, 0);
  check_nodes(&a, &b);
  check_jobs_kv_workers(&w);
  check_pgs(pg_pending, pg_removed);
  char *v = kv_get("fn", "last");
  ck_assert_str_eq(v, "acknowledged just before the crash");
  free(v);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* A different key prefix is a different cluster: nothing of the other shows. */
START_TEST(prefixes_separate_clusters)
{
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", redis_addr, "--redis-key-prefix", "itest:other", NULL);
  connect_to(&g);
  ck_assert_uint_eq(add_job(1), 1);
  ck_assert_ptr_null(kv_get("fn", "add"));
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* A driver retries AddJob when the GCS went away before answering: the retry gets the same job. */
START_TEST(add_job_retry_is_idempotent)
{
  gcs_proc_t g;
  gcs_start(&g, 0, NULL);
  connect_to(&g);
  Rayc__JobInfo info = RAYC__JOB_INFO__INIT;
  info.driver_pid = 4242;
  info.start_time_ms = 1700000000123;
  Rayc__AddJobRequest req = RAYC__ADD_JOB_REQUEST__INIT;
  req.job = &info;
  Rayc__AddJobReply *a = NULL, *b = NULL;
  ck_assert_int_eq(call(JOB_SVC, "AddJob", &req, &a, 5000), 0);
  ck_assert_int_eq(call(JOB_SVC, "AddJob", &req, &b, 5000), 0);
  ck_assert_mem_eq(a->job_id.data, b->job_id.data, ID_JOB_SIZE);
  pb_free(b);
  info.start_time_ms++; /* another driver (or this one started again): a new job */
  ck_assert_int_eq(call(JOB_SVC, "AddJob", &req, &b, 5000), 0);
  ck_assert_mem_ne(a->job_id.data, b->job_id.data, ID_JOB_SIZE);
  pb_free(a);
  pb_free(b);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* ---- health checks ---- */

/* The fake raylet: answers HealthCheck with its node id. */
static id_node_t fake_id;

static void fake_health_check(void *ctx, rpc_call_t *call_, const ProtobufCMessage *req)
{
  (void)ctx, (void)req;
  Rayc__HealthCheckReply r = RAYC__HEALTH_CHECK_REPLY__INIT;
  r.node_id = pb_bytes(fake_id.b, ID_NODE_SIZE);
  rpc_reply(call_, &r.base);
}

static const rpc_method_t fake_raylet_methods[] = {
    {.service = &rayc__node_manager_service__descriptor, .method = "HealthCheck", .handler = fake_health_check},
};

/* Polls NODE messages until one says node id is DEAD; returns its death reason (new) or NULL. */
static char *wait_node_death(Rayc__PollRequest *req, const id_node_t *id, int timeout_ms)
{
  int64_t end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    Rayc__PollReply *r = NULL;
    req->timeout_ms = 1000;
    ck_assert_int_eq(call(PUBSUB_SVC, "Poll", req, &r, 5000), 0);
    ck_assert(!r->resync);
    req->after_seq = r->last_seq;
    char *reason = NULL;
    for (size_t i = 0; i < r->n_messages && !reason; i++) {
      Rayc__NodeInfo *n = r->messages[i]->node;
      if (n && n->state == RAYC__NODE_STATE__NODE_DEAD && !memcmp(n->node_id.data, id->b, ID_NODE_SIZE))
        reason = xstrdup(n->death_reason);
    }
    pb_free(r);
    if (reason)
      return reason;
  }
  return NULL;
}

/* A free TCP port on 127.0.0.1 with nothing listening. */
static int dead_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(sa);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  close(fd);
  return ntohs(sa.sin_port);
}

START_TEST(dead_raylet_is_marked_dead_and_published)
{
  enum { PERIOD = 100, THRESHOLD = 3 };
  gcs_proc_t g;
  /* a generous probe timeout: a live raylet slowed down by a loaded machine must not die */
  gcs_start(&g, 0, "--health-check-period-ms=100", "--health-check-timeout-ms=1000",
            "--health-check-failure-threshold=3", NULL);
  connect_to(&g);
  Rayc__PubChannel chan = RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE;
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  req.subscriber_id = pb_bytes("itest", 5);
  req.n_channels = 1;
  req.channels = &chan;
  Rayc__PollReply *first = NULL;
  ck_assert_int_eq(call(PUBSUB_SVC, "Poll", &req, &first, 5000), 0);
  ck_assert(first->resync);
  req.epoch = first->epoch;
  req.after_seq = first->last_seq;
  pb_free(first);

  /* a live raylet passes its checks */
  fake_id = id_node_random();
  rpc_server_opts_t so = {0};
  rpc_server_t *raylet = rpc_server_create(fake_raylet_methods, 1, &so);
  int port = rpc_server_listen(raylet, "127.0.0.1:0");
  ck_assert_int_gt(port, 0);
  ck_assert_int_eq(rpc_server_start(raylet), 0);
  register_node(&fake_id, port);
  ck_assert_ptr_null(wait_node_death(&req, &fake_id, 5 * PERIOD * THRESHOLD));

  /* it dies: DEAD after period * threshold (+ probe timeouts), and published */
  int64_t t0 = now_ms();
  rpc_server_destroy(raylet);
  char *reason = wait_node_death(&req, &fake_id, 10000);
  int64_t took = now_ms() - t0;
  printf("a stopped raylet was marked DEAD after %lld ms (period %d ms, threshold %d)\n", (long long)took, PERIOD,
         THRESHOLD);
  ck_assert_msg(reason != NULL, "no death message");
  ck_assert_msg(strstr(reason, "health checks failed 3 times"), "%s", reason);
  /* no bound on took: under load it varies; the reason shows the health checks did it, long
   * before the 30 s heartbeat timeout could have */
  free(reason);

  /* a node registered on a port where nothing listens dies the same way */
  id_node_t never = id_node_random();
  register_node(&never, dead_port());
  reason = wait_node_death(&req, &never, 10000);
  ck_assert_msg(reason != NULL, "no death message for a dead port");
  free(reason);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* A reloaded ALIVE node whose raylet never comes back is killed by its health checks. */
START_TEST(reloaded_node_that_never_returns_dies)
{
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", redis_addr, "--redis-key-prefix", "itest:gone", NULL);
  connect_to(&g);
  id_node_t id = id_node_random();
  register_node(&id, dead_port()); /* probed every 1 s by default: alive for now */
  int port = g.port;
  gcs_kill9(&g);
  gcs_start(&g, port, "--redis-address", redis_addr, "--redis-key-prefix", "itest:gone", "--health-check-period-ms=100",
            "--health-check-timeout-ms=100", "--health-check-failure-threshold=2", NULL);
  Rayc__PubChannel chan = RAYC__PUB_CHANNEL__PUB_CHANNEL_NODE;
  Rayc__PollRequest req = RAYC__POLL_REQUEST__INIT;
  req.n_channels = 1;
  req.channels = &chan;
  Rayc__PollReply *first = NULL;
  int rc = RAYC_EUNAVAILABLE;
  for (int64_t t = now_ms(); rc == RAYC_EUNAVAILABLE && now_ms() - t < 10000;)
    rc = call(PUBSUB_SVC, "Poll", &req, &first, 2000);
  ck_assert_int_eq(rc, 0);
  req.epoch = first->epoch;
  req.after_seq = 0; /* the death may already be published: read from the start */
  pb_free(first);
  char *reason = wait_node_death(&req, &id, 10000);
  ck_assert_msg(reason != NULL, "the reloaded node never died");
  free(reason);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* ---- actors across kill -9 ---- */

#define ACTOR_SVC (&rayc__actor_info_gcs_service__descriptor)

/* The fake node: raylet and actor worker in one server, on its own completion-queue thread. */
static struct {
  pthread_mutex_t mu;
  id_node_t node;
  id_worker_t worker;
  int port;
  int leases, creations;
  int refuse;           /* leases are refused (the raylet has no worker to give) */
  rpc_call_t *held[16]; /* WaitActorExit calls not answered yet */
  int nheld, waits;     /* held now, received in all */
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fake_lease(void *ctx, rpc_call_t *c, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__RequestWorkerLeaseRequest *req = (const Rayc__RequestWorkerLeaseRequest *)m;
  Rayc__Address w = RAYC__ADDRESS__INIT;
  Rayc__RequestWorkerLeaseReply r = RAYC__REQUEST_WORKER_LEASE_REPLY__INIT;
  pthread_mutex_lock(&fake.mu);
  fake.leases++;
  if (fake.refuse) {
    pthread_mutex_unlock(&fake.mu);
    rpc_reply_error(c, RAYC_EUNAVAILABLE, "no worker for now");
    return;
  }
  w.worker_id = pb_bytes(fake.worker.b, ID_WORKER_SIZE);
  w.node_id = pb_bytes(fake.node.b, ID_NODE_SIZE);
  w.ip = (char *)"127.0.0.1";
  w.port = fake.port;
  pthread_mutex_unlock(&fake.mu);
  r.worker = &w;
  r.lease_id = req->lease_id;
  rpc_reply(c, &r.base);
}

static void fake_push(void *ctx, rpc_call_t *c, const ProtobufCMessage *m)
{
  (void)ctx, (void)m;
  pthread_mutex_lock(&fake.mu);
  fake.creations++;
  pthread_mutex_unlock(&fake.mu);
  rpc_reply(c, NULL); /* no error in the returns: the constructor succeeded */
}

static void fake_wait_exit(void *ctx, rpc_call_t *c, const ProtobufCMessage *m)
{
  (void)ctx, (void)m;
  pthread_mutex_lock(&fake.mu);
  fake.waits++;
  if (fake.nheld < 16)
    fake.held[fake.nheld++] = c;
  else
    rpc_reply_error(c, RAYC_EUNAVAILABLE, "too many");
  pthread_mutex_unlock(&fake.mu);
}

static void fake_ok(void *ctx, rpc_call_t *c, const ProtobufCMessage *m)
{
  (void)ctx, (void)m;
  rpc_reply(c, NULL);
}

static const rpc_method_t fake_node_methods[] = {
    {.service = &rayc__node_manager_service__descriptor, .method = "HealthCheck", .handler = fake_health_check},
    {.service = &rayc__node_manager_service__descriptor, .method = "RequestWorkerLease", .handler = fake_lease},
    {.service = &rayc__node_manager_service__descriptor, .method = "ReturnWorker", .handler = fake_ok},
    {.service = &rayc__node_manager_service__descriptor, .method = "GetNodeStats", .handler = fake_ok},
    {.service = &rayc__core_worker_service__descriptor, .method = "PushTask", .handler = fake_push},
    {.service = &rayc__actor_worker_service__descriptor, .method = "WaitActorExit", .handler = fake_wait_exit},
    {.service = &rayc__actor_worker_service__descriptor, .method = "KillActorWorker", .handler = fake_ok},
};

/* Fresh counters (tests share the process under CK_FORK=no). */
static void fake_reset(void)
{
  pthread_mutex_lock(&fake.mu);
  fake.leases = fake.creations = fake.refuse = fake.nheld = fake.waits = 0;
  pthread_mutex_unlock(&fake.mu);
}

/* Starts the fake node and registers it with the GCS; returns its server. */
static rpc_server_t *fake_start(void)
{
  fake_reset();
  fake.node = id_node_random();
  fake.worker = id_worker_random();
  rpc_server_opts_t so = {0};
  rpc_server_t *node = rpc_server_create(fake_node_methods, ARRAY_LEN(fake_node_methods), &so);
  fake.port = rpc_server_listen(node, "127.0.0.1:0");
  ck_assert_int_gt(fake.port, 0);
  ck_assert_int_eq(rpc_server_start(node), 0);
  fake_id = fake.node;
  register_node(&fake.node, fake.port);
  return node;
}

/* Answers the held WaitActorExit calls: the worker "died" (exited = false). */
static void fake_release_waits(void)
{
  pthread_mutex_lock(&fake.mu);
  for (int i = 0; i < fake.nheld; i++)
    rpc_reply(fake.held[i], NULL);
  fake.nheld = 0;
  pthread_mutex_unlock(&fake.mu);
}

static int fake_count(int *what)
{
  pthread_mutex_lock(&fake.mu);
  int n = *what;
  pthread_mutex_unlock(&fake.mu);
  return n;
}

static int wait_count(int *what, int want, int timeout_ms)
{
  int64_t end = now_ms() + timeout_ms;
  while (fake_count(what) < want && now_ms() < end)
    usleep(10000);
  return fake_count(what);
}

static void register_actor(const uint8_t *id, const char *name, int max_restarts, const char *resource)
{
  id_job_t job = id_job_from_int(1);
  id_task_t task = id_task_random(job);
  Rayc__ResourceEntry res = RAYC__RESOURCE_ENTRY__INIT, *resv[1] = {&res};
  res.name = (char *)resource;
  res.amount = 1;
  Rayc__TaskSpec spec = RAYC__TASK_SPEC__INIT;
  spec.type = RAYC__TASK_TYPE__ACTOR_CREATION_TASK;
  spec.actor_id = pb_bytes(id, ID_ACTOR_SIZE);
  spec.job_id = pb_bytes(job.b, ID_JOB_SIZE);
  spec.task_id = pb_bytes(task.b, ID_TASK_SIZE);
  spec.function_name = (char *)"Keeper";
  spec.resources = resv;
  spec.n_resources = 1;
  Rayc__RegisterActorRequest req = RAYC__REGISTER_ACTOR_REQUEST__INIT;
  req.creation_spec = &spec;
  req.name = (char *)name;
  req.ray_namespace = (char *)"ft";
  req.detached = 1;
  req.max_restarts = max_restarts;
  ck_assert_int_eq(call(ACTOR_SVC, "RegisterActor", &req, NULL, 5000), 0);
  /* a retry of the same registration (a lost reply) is answered the same way */
  Rayc__RegisterActorReply *r = NULL;
  ck_assert_int_eq(call(ACTOR_SVC, "RegisterActor", &req, &r, 5000), 0);
  ck_assert_mem_eq(r->actor_id.data, id, ID_ACTOR_SIZE);
  pb_free(r);
}

/* The actor's info once its state is want (or the last seen after timeout_ms); new, pb_free. */
static Rayc__ActorInfo *wait_actor(const uint8_t *id, Rayc__ActorState want, int timeout_ms)
{
  int64_t end = now_ms() + timeout_ms;
  Rayc__GetActorInfoReply *r = NULL;
  for (;;) {
    Rayc__GetActorInfoRequest req = RAYC__GET_ACTOR_INFO_REQUEST__INIT;
    req.actor_id = pb_bytes(id, ID_ACTOR_SIZE);
    int rc = call(ACTOR_SVC, "GetActorInfo", &req, &r, 5000);
    if (rc == 0 && (r->actor->state == want || now_ms() >= end))
      break;
    ck_assert_msg(rc == 0 || rc == RAYC_EUNAVAILABLE, "GetActorInfo: %s", rayc_strerror(rc));
    ck_assert_msg(now_ms() < end, "GetActorInfo kept failing");
    pb_free(r);
    r = NULL;
    usleep(20000);
  }
  Rayc__ActorInfo *info = r->actor;
  r->actor = NULL;
  pb_free(r);
  return info;
}

START_TEST(actors_survive_kill9)
{
  const char *prefix = "itest:actors";
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", redis_addr, "--redis-key-prefix", prefix, "--heartbeat-timeout-ms=0", NULL);
  connect_to(&g);
  rpc_server_t *node = fake_start();

  uint8_t alive[ID_ACTOR_SIZE], pending[ID_ACTOR_SIZE], late[ID_ACTOR_SIZE];
  id_random(alive, sizeof(alive));
  id_random(pending, sizeof(pending));
  id_random(late, sizeof(late));
  register_actor(alive, "survivor", 1, "CPU");
  register_actor(pending, "", 0, "GPU"); /* no node has a GPU: it stays pending */
  Rayc__ActorInfo *a = wait_actor(alive, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_ALIVE);
  uint64_t version = a->version;
  pb_free(a);
  ck_assert_int_eq(wait_count(&fake.waits, 1, 10000), 1);
  /* one more, pending when the GCS dies: its node has no worker for it yet */
  pthread_mutex_lock(&fake.mu);
  fake.refuse = 1;
  int leases = fake.leases;
  pthread_mutex_unlock(&fake.mu);
  register_actor(late, "late", 0, "CPU");
  ck_assert_int_gt(wait_count(&fake.leases, leases + 1, 10000), leases);

  int port = g.port;
  gcs_kill9(&g);
  gcs_start(&g, port, "--redis-address", redis_addr, "--redis-key-prefix", prefix, "--heartbeat-timeout-ms=0", NULL);

  /* ALIVE at the same worker, same version, not restarted; the GCS watches the worker again */
  a = wait_actor(alive, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_ALIVE);
  ck_assert_uint_eq(a->version, version);
  ck_assert_int_eq(a->num_restarts, 0);
  ck_assert_ptr_nonnull(a->address);
  ck_assert_int_eq(a->address->port, fake.port);
  pb_free(a);
  ck_assert_int_eq(wait_count(&fake.waits, 2, 10000), 2);
  ck_assert_int_eq(fake_count(&fake.creations), 1);
  Rayc__GetNamedActorRequest byname = RAYC__GET_NAMED_ACTOR_REQUEST__INIT;
  byname.name = (char *)"survivor";
  byname.ray_namespace = (char *)"ft";
  Rayc__GetNamedActorReply *nr = NULL;
  ck_assert_int_eq(call(ACTOR_SVC, "GetNamedActor", &byname, &nr, 5000), 0);
  ck_assert_mem_eq(nr->actor->actor_id.data, alive, ID_ACTOR_SIZE);
  pb_free(nr);
  a = wait_actor(pending, RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION, 5000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION);
  pb_free(a);
  /* the reloaded pending actor is placed once its node has a worker */
  a = wait_actor(late, RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION, 5000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_PENDING_CREATION);
  pb_free(a);
  pthread_mutex_lock(&fake.mu);
  fake.refuse = 0;
  pthread_mutex_unlock(&fake.mu);
  a = wait_actor(late, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_ALIVE);
  pb_free(a);
  ck_assert_int_eq(wait_count(&fake.creations, 2, 10000), 2);
  ck_assert_int_eq(wait_count(&fake.waits, 3, 10000), 3);

  /* the reloaded actor's worker dies: restarted (max_restarts 1) by the restarted GCS */
  fake_release_waits();
  for (int64_t end = now_ms() + 10000; now_ms() < end; usleep(20000)) {
    a = wait_actor(alive, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
    int restarted = a->num_restarts == 1;
    pb_free(a);
    if (restarted)
      break;
  }
  ck_assert_int_eq(fake_count(&fake.creations), 3);

  /* its node dies while the GCS is down: the restarted GCS finds out, and no restarts are left */
  ck_assert_int_eq(wait_count(&fake.waits, 4, 10000), 4);
  gcs_kill9(&g);
  rpc_server_destroy(node);
  fake_release_waits(); /* orphaned by the destroy: they still must be finished */
  gcs_start(&g, port, "--redis-address", redis_addr, "--redis-key-prefix", prefix, "--health-check-period-ms=100",
            "--health-check-timeout-ms=100", "--health-check-failure-threshold=2", NULL);
  a = wait_actor(alive, RAYC__ACTOR_STATE__ACTOR_DEAD, 15000);
  ck_assert_int_eq(a->state, RAYC__ACTOR_STATE__ACTOR_DEAD);
  ck_assert_int_eq(a->death_cause, RAYC__ACTOR_DEATH_CAUSE__ACTOR_NODE_DIED);
  pb_free(a);
  ck_assert_int_eq(call(ACTOR_SVC, "GetNamedActor", &byname, NULL, 5000), RAYC_ENOT_FOUND);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

static void kill_actor(const uint8_t *id, const char *request_id)
{
  Rayc__KillActorRequest req = RAYC__KILL_ACTOR_REQUEST__INIT;
  req.actor_id = pb_bytes(id, ID_ACTOR_SIZE);
  req.request_id = pb_bytes(request_id, strlen(request_id));
  ck_assert_int_eq(call(ACTOR_SVC, "KillActor", &req, NULL, 5000), 0);
}

/* KillActor with restart, retried with the same request id (also across a restart of the GCS),
 * restarts the actor once; a new id restarts it again. */
START_TEST(kill_retry_restarts_once)
{
  const char *prefix = "itest:kill";
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", redis_addr, "--redis-key-prefix", prefix, "--heartbeat-timeout-ms=0", NULL);
  connect_to(&g);
  rpc_server_t *node = fake_start();
  uint8_t id[ID_ACTOR_SIZE];
  id_random(id, sizeof(id));
  register_actor(id, "", 5, "CPU");
  pb_free(wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000));
  kill_actor(id, "kill-1");
  Rayc__ActorInfo *a = wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->num_restarts, 1);
  pb_free(a);
  kill_actor(id, "kill-1");
  a = wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->num_restarts, 1);
  pb_free(a);
  int port = g.port;
  gcs_kill9(&g);
  gcs_start(&g, port, "--redis-address", redis_addr, "--redis-key-prefix", prefix, "--heartbeat-timeout-ms=0", NULL);
  pb_free(wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000)); /* waits out the channel's reconnection */
  kill_actor(id, "kill-1");
  a = wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->num_restarts, 1);
  pb_free(a);
  kill_actor(id, "kill-2");
  a = wait_actor(id, RAYC__ACTOR_STATE__ACTOR_ALIVE, 10000);
  ck_assert_int_eq(a->num_restarts, 2);
  pb_free(a);
  ck_assert_int_eq(gcs_stop(&g), 0);
  rpc_server_destroy(node);
  fake_release_waits();
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

/* The GCS cannot persist without Redis: it stops with exit status 1 (for a supervisor to restart
 * it), and changes it could not store are refused, never acknowledged. */
START_TEST(redis_loss_stops_the_gcs)
{
  char sock[128], out[128], addr2[160];
  snprintf(sock, sizeof(sock), "%s/redis2.sock", tmp);
  snprintf(out, sizeof(out), "%s/redis2.out", tmp);
  snprintf(addr2, sizeof(addr2), "unix:%s", sock);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  tmp,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  NULL};
  pid_t r2 = spawn(argv, out, NULL);
  for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
    usleep(10 * 1000);
  gcs_proc_t g;
  gcs_start(&g, 0, "--redis-address", addr2, "--redis-key-prefix", "itest:loss", NULL);
  connect_to(&g);
  kv_put("ns", "before", "stored");
  kill(r2, SIGKILL);
  waitpid(r2, NULL, 0);
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)"ns";
  put.key = pb_bytes("after", 5);
  put.value = pb_bytes("lost", 4);
  /* The write must be refused, never acknowledged. Which refusal the client sees depends on a
   * race it cannot control: the GCS answers UNAVAILABLE if the call reaches it before it notices
   * the lost connection, and the call is cancelled or refused if it is already stopping. */
  int rc = call(KV_SVC, "InternalKVPut", &put, NULL, 5000);
  ck_assert_msg(rc == RAYC_EUNAVAILABLE || rc == RAYC_ECANCELLED,
                "a write after redis died returned %d (%s), not a refusal", rc, rayc_strerror(rc));
  int st = 0;
  for (int i = 0; i < 500 && waitpid(g.pid, &st, WNOHANG) == 0; i++)
    usleep(10 * 1000);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "rayc-gcs did not exit with status 1");
  rpc_client_destroy(client);
  client = NULL;
}
END_TEST

int main(void)
{
  if (system("command -v redis-server > /dev/null 2>&1") != 0) {
    printf("redis-server not installed: skipping\n");
    return 0;
  }
  log_init("test", LOG_ERROR);
  suite_setup();
  Suite *s = suite_create("gcs_redis");
  TCase *tc = tcase_create("gcs");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, kill9_and_restart_loses_nothing);
  tcase_add_test(tc, prefixes_separate_clusters);
  tcase_add_test(tc, add_job_retry_is_idempotent);
  tcase_add_test(tc, dead_raylet_is_marked_dead_and_published);
  tcase_add_test(tc, reloaded_node_that_never_returns_dies);
  tcase_add_test(tc, actors_survive_kill9);
  tcase_add_test(tc, kill_retry_restarts_once);
  tcase_add_test(tc, redis_loss_stops_the_gcs);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  failed += suite_teardown();
  return failed ? 1 : 0;
}
