/*
 * Idle heartbeats over UDP (issue 17, session 11), end to end with real daemons: a head and nodes
 * joined with `rayc start --address`. An idle node stays ALIVE past the GCS's heartbeat timeout
 * while its raylet holds no TCP connection to the GCS, and runs a task when asked (its channel
 * reconnects); a node whose raylet is stopped is declared dead although forged datagrams (wrong
 * token, made-up nonce) and replays of its own captured datagrams keep arriving for it; garbage
 * datagrams leave the GCS serving; and a raylet whose datagrams nobody answers falls back to gRPC
 * heartbeats and stays ALIVE. Session 12: nodes that join and leave reach an idle raylet's view in
 * the GCS's answers to its datagrams, without a TCP connection to the GCS; a change of more nodes
 * than a datagram's delta takes (fake nodes registered at once) reaches it over gRPC. No timing is
 * asserted: each wait is generous and only bounds a hang.
 */
#include "itest.h"
#include "itest_proc.h"
#include "itest_sh.h"

#include "common/hb_udp.h"
#include "common/rpc.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static int gcs_port;

/* Starts node `name` joined to the head with extra environment; returns its raylet's pid. */
static long join_node(const char *name, const char *env)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "mkdir -p %s/%s && %s %s/bin/rayc start --address %s --temp-dir %s/%s --num-cpus 1 "
                 "--object-store-memory 80M --token-file %s/cluster_token",
                 it_temp, name, env, it_build, it_address, it_temp, name, it_temp);
  ck_assert_msg(rc == 0, "node %s did not join (%d):\n%s", name, rc, out);
  free(out);
  rc = it_sh(&out, "cat %s/%s/session_latest/pids/raylet.pid", it_temp, name);
  ck_assert_int_eq(rc, 0);
  long pid = atol(out);
  free(out);
  ck_assert_int_gt(pid, 0);
  return pid;
}

static void stop_node(const char *name)
{
  it_sh(NULL, "%s/bin/rayc stop --temp-dir %s/%s >/dev/null 2>&1", it_build, it_temp, name);
}

/* The state ("ALIVE", "DEAD") of the node whose session dir is under name, "" when not listed; the
 * node's hex id into id (RAYC_NODE_ID_HEX_LEN) and its raylet's metrics port into port, if not NULL. */
static const char *node_info(const char *name, char *id, int *port)
{
  static char state[16];
  char *out = NULL;
  state[0] = '\0';
  int rc = it_sh(&out, "%s/bin/rayc list nodes --format json --limit 0 --temp-dir %s 2>/dev/null", it_build,
                 it_temp);
  ck_assert_msg(rc == 0, "rayc list nodes (%d):\n%s", rc, out);
  json_error_t err;
  json_t *nodes = json_loads(out, 0, &err), *n;
  ck_assert_msg(nodes, "rayc list nodes printed no JSON:\n%s", out);
  char dir[700];
  snprintf(dir, sizeof(dir), "%s/%s/", it_temp, name);
  size_t i;
  json_array_foreach(nodes, i, n)
  {
    const char *sd = json_string_value(json_object_get(n, "session_dir"));
    if (!sd || strncmp(sd, dir, strlen(dir)) != 0)
      continue;
    snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(n, "state")));
    if (id)
      snprintf(id, RAYC_NODE_ID_HEX_LEN, "%s", json_string_value(json_object_get(n, "node_id")));
    if (port)
      *port = (int)json_integer_value(json_object_get(n, "metrics_export_port"));
  }
  json_decref(nodes);
  free(out);
  return state;
}

static const char *node_state(const char *name, char *id)
{
  return node_info(name, id, NULL);
}

/* Waits (generously) until the node is in state; returns whether it got there. */
static int wait_state(const char *name, const char *want, double seconds)
{
  for (double deadline = it_now_s() + seconds; it_now_s() < deadline; it_sleep_ms(500))
    if (strcmp(node_state(name, NULL), want) == 0)
      return 1;
  return strcmp(node_state(name, NULL), want) == 0;
}

/* A metric's value (series exactly as exposed) in the /metrics page out (freed); 0 when absent. */
static double metric_in(char *out, const char *series)
{
  double v = it_metric_value(out, series);
  free(out);
  return v;
}

/* A GCS metric's value (series exactly as exposed) from its /metrics; 0 when absent. */
static double gcs_metric(const char *series)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "t=$(%s/bin/rayc metrics targets --temp-dir %s 2>/dev/null | python3 -c 'import json,sys; "
                 "print([g[\"targets\"][0] for g in json.load(sys.stdin) if g[\"labels\"][\"daemon\"]==\"gcs\"][0])') && "
                 "curl -sSf --max-time 10 http://$t/metrics",
                 it_build, it_temp);
  ck_assert_msg(rc == 0, "scraping the GCS (%d): %s", rc, out);
  return metric_in(out, series);
}

/* The number of nodes in the cluster view of the raylet whose metrics are on port (-1: none yet). */
static double view_nodes(int port)
{
  char *out = NULL;
  int rc = it_sh(&out, "curl -sSf --max-time 10 http://127.0.0.1:%d/metrics", port);
  ck_assert_msg(rc == 0, "scraping a raylet (%d): %s", rc, out);
  int set = strstr(out, "\nrayc_raylet_view_nodes ") != NULL;
  double v = metric_in(out, "rayc_raylet_view_nodes");
  return set ? v : -1;
}

/* Waits (generously) until the raylet's view holds want nodes; returns whether it got there. */
static int wait_view(int port, double want, double seconds)
{
  for (double deadline = it_now_s() + seconds; it_now_s() < deadline; it_sleep_ms(200))
    if (view_nodes(port) == want)
      return 1;
  return view_nodes(port) == want;
}

#define DGRAMS(result) "rayc_gcs_heartbeat_datagrams_total{Result=\"" result "\"}"

/* Sends len bytes to the GCS's UDP port. */
static void send_to_gcs(int fd, const void *buf, size_t len)
{
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gcs_port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to));
}

static void hex_to_id(const char *hex, uint8_t *id)
{
  for (int i = 0; i < ID_NODE_SIZE; i++)
    sscanf(hex + 2 * i, "%2hhx", &id[i]);
}

static char *read_token(void)
{
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out, "cat %s/cluster_token", it_temp), 0);
  out[strcspn(out, "\r\n")] = '\0';
  return out;
}

/* An idle node's raylet closes its connection to the GCS and heartbeats by datagram: it stays ALIVE
 * well past the GCS's heartbeat timeout (4 s here) holding no TCP connection to the GCS port, then
 * runs a task placed on it (which needs the GCS: the job's news, the worker's registration). */
START_TEST(idle_node_holds_no_connection)
{
  long pid = join_node("idle", "RAYC_GCS_IDLE_CLOSE_MS=1000");
  ck_assert(wait_state("idle", "ALIVE", 60));
  double deadline = it_now_s() + 60;
  while (it_connections_to(pid, gcs_port) > 0 && it_now_s() < deadline)
    it_sleep_ms(250);
  ck_assert_msg(it_connections_to(pid, gcs_port) == 0, "the idle raylet still holds a connection to the GCS");
  double ok0 = gcs_metric(DGRAMS("ok"));
  for (int i = 0; i < 40; i++) { /* 10 s: more than twice the heartbeat timeout */
    ck_assert_msg(it_connections_to(pid, gcs_port) == 0, "the idle raylet reconnected to the GCS");
    it_sleep_ms(250);
  }
  ck_assert_str_eq(node_state("idle", NULL), "ALIVE");
  ck_assert_msg(gcs_metric(DGRAMS("ok")) > ok0, "no heartbeat datagram was accepted while the node idled");

  char id[RAYC_NODE_ID_HEX_LEN];
  node_state("idle", id);
  it_connect();
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_NODE_AFFINITY;
  o.node_affinity = id;
  int64_t x = 41;
  rayc_arg a = RAYC_ARG_VAL(&x, 8);
  rayc_ref r;
  ck_assert_msg(rayc_remote("add1", &a, 1, &o, &r) == 0, "rayc_remote: %s", rayc_last_error());
  int rc;
  ck_assert_int_eq(it_get_i64(&r, &rc), 42);
  ck_assert_int_eq(rc, 0);
  rayc_ref_release(&r);
  rayc_shutdown();
  stop_node("idle");
}
END_TEST

/* Captures up to max of the datagrams sent to the GCS's UDP port on loopback for about seconds;
 * returns how many (0 when raw sockets are not allowed here). */
static int capture(uint8_t (*got)[HB_UDP_MAX], int max, double seconds)
{
  int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
  if (fd < 0)
    return 0;
  struct sockaddr_ll lo = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = (int)if_nametoindex("lo")};
  struct timeval tv = {.tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  bind(fd, (struct sockaddr *)&lo, sizeof(lo));
  int n = 0;
  uint8_t pkt[2048];
  for (double deadline = it_now_s() + seconds; n < max && it_now_s() < deadline;) {
    ssize_t len = recv(fd, pkt, sizeof(pkt), 0);
    if (len < 28 || (pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_UDP)
      continue;
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if ((size_t)len < ihl + 8 + HB_UDP_MAX || ((pkt[ihl + 2] << 8) | pkt[ihl + 3]) != gcs_port ||
        (size_t)len - ihl - 8 != HB_UDP_MAX || pkt[ihl + 8 + 3] != HB_UDP_REQUEST)
      continue;
    memcpy(got[n++], pkt + ihl + 8, HB_UDP_MAX);
  }
  close(fd);
  return n;
}

/* A stopped raylet is declared dead as before although datagrams for its node keep coming: made with
 * a wrong token, with the right token but a made-up nonce, and (where raw sockets are allowed)
 * replays of its own datagrams captured on loopback. None of them counts as its heartbeat. */
START_TEST(stopped_node_dies_despite_forged_datagrams)
{
  long pid = join_node("stopped", "");
  ck_assert(wait_state("stopped", "ALIVE", 60));
  char hex[RAYC_NODE_ID_HEX_LEN];
  node_state("stopped", hex);
  uint8_t captured[8][HB_UDP_MAX];
  int ncap = capture(captured, 8, 6);
  if (ncap == 0)
    printf("no raw socket here: replays of captured datagrams not tested\n");
  hb_udp_msg_t m = {.kind = HB_UDP_REQUEST, .nonce = 12345, .seq = 1ull << 40};
  hex_to_id(hex, m.node);
  char *token = read_token();
  double mac0 = gcs_metric(DGRAMS("mac")), replay0 = gcs_metric(DGRAMS("replayed"));
  ck_assert_int_eq(kill((pid_t)pid, SIGSTOP), 0);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int dead = 0;
  for (double deadline = it_now_s() + 90; !dead && it_now_s() < deadline;) {
    for (int i = 0; i < 10; i++) {
      uint8_t buf[HB_UDP_MAX];
      m.seq++;
      send_to_gcs(fd, buf, hb_udp_encode(&m, "not the token", buf)); /* forged */
      send_to_gcs(fd, buf, hb_udp_encode(&m, token, buf));           /* a nonce the GCS never got */
      for (int k = 0; k < ncap; k++)
        send_to_gcs(fd, captured[k], HB_UDP_MAX); /* replayed */
      it_sleep_ms(100);
    }
    dead = strcmp(node_state("stopped", NULL), "DEAD") == 0;
  }
  kill((pid_t)pid, SIGCONT);
  close(fd);
  free(token);
  ck_assert_msg(dead, "the stopped node was not declared dead");
  ck_assert_msg(gcs_metric(DGRAMS("mac")) > mac0, "forged datagrams were not refused for their MAC");
  ck_assert_msg(gcs_metric(DGRAMS("replayed")) > replay0, "replayed datagrams were not refused");
  stop_node("stopped");
}
END_TEST

/* Garbage of every size, bad magic and versions, a truncated and an overlong datagram: all refused
 * and counted, and the GCS goes on serving (its nodes stay ALIVE, rayc list nodes answers). */
START_TEST(garbage_leaves_gcs_serving)
{
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  uint8_t buf[4096];
  unsigned seed = 17;
  double refused0 = gcs_metric(DGRAMS("size")) + gcs_metric(DGRAMS("format")) + gcs_metric(DGRAMS("mac"));
  for (int i = 0; i < 3000; i++) {
    size_t len = (size_t)(rand_r(&seed) % (i < 2000 ? 130 : (int)sizeof(buf)));
    for (size_t k = 0; k < len; k++)
      buf[k] = (uint8_t)rand_r(&seed);
    if (i % 3 == 0 && len >= 4) { /* past the magic and version, to reach the later checks */
      buf[0] = 'r', buf[1] = 'h', buf[2] = HB_UDP_VERSION, buf[3] = HB_UDP_REQUEST;
    }
    send_to_gcs(fd, buf, len);
  }
  close(fd);
  it_sleep_ms(1000);
  double refused = gcs_metric(DGRAMS("size")) + gcs_metric(DGRAMS("format")) + gcs_metric(DGRAMS("mac"));
  ck_assert_msg(refused > refused0, "garbage datagrams were not counted as refused");
  ck_assert_msg(gcs_metric(DGRAMS("ok")) > 0, "no heartbeat datagram accepted");
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out, "%s/bin/rayc list nodes --temp-dir %s", it_build, it_temp), 0);
  ck_assert_msg(strstr(out, "ALIVE") != NULL, "no ALIVE node after the garbage:\n%s", out);
  free(out);
}
END_TEST

/* A raylet whose datagrams go to a UDP port that nobody answers (a socket this test holds and never
 * reads) falls back to gRPC heartbeats, says so in its log, and stays ALIVE past the GCS's
 * heartbeat timeout. */
START_TEST(unanswered_udp_falls_back_to_grpc)
{
  int sink = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t alen = sizeof(a);
  ck_assert_int_eq(bind(sink, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(sink, (struct sockaddr *)&a, &alen), 0);
  char env[64];
  snprintf(env, sizeof(env), "RAYC_HEARTBEAT_UDP_PORT=%d", ntohs(a.sin_port));
  join_node("filtered", env);
  ck_assert(wait_state("filtered", "ALIVE", 60));
  char *out = NULL;
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "for i in $(seq 120); do grep -q 'heartbeats go over gRPC' %s/filtered/session_latest/logs/raylet.log && exit 0; sleep 0.5; done; exit 1", it_temp);
  ck_assert_msg(it_run(cmd) == 0, "the raylet did not fall back to gRPC heartbeats");
  it_sleep_ms(10000); /* more than twice the heartbeat timeout */
  ck_assert_str_eq(node_state("filtered", NULL), "ALIVE");
  free(out);
  close(sink);
  stop_node("filtered");
}
END_TEST

/* Samples, every 20 ms until stopped, the most TCP connections a process held to the GCS port. */
typedef struct conn_watch {
  long pid;
  atomic_int stop, most;
  pthread_t thread;
} conn_watch_t;

static void *conn_watch_run(void *arg)
{
  conn_watch_t *w = arg;
  while (!atomic_load(&w->stop)) {
    int n = it_connections_to(w->pid, gcs_port);
    if (n > atomic_load(&w->most))
      atomic_store(&w->most, n);
    it_sleep_ms(20);
  }
  return NULL;
}

static void conn_watch_start(conn_watch_t *w, long pid)
{
  w->pid = pid;
  atomic_init(&w->stop, 0);
  atomic_init(&w->most, 0);
  ck_assert_int_eq(pthread_create(&w->thread, NULL, conn_watch_run, w), 0);
}

static int conn_watch_stop(conn_watch_t *w)
{
  atomic_store(&w->stop, 1);
  pthread_join(w->thread, NULL);
  return atomic_load(&w->most);
}

/* Joins (or, with stop, stops) nodes name1..nameN at once; returns when all are done. */
static void nodes_at_once(const char *name, int n, int stop)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "for i in $(seq %d); do d=%s/%s$i; ( if [ %d = 1 ]; then %s/bin/rayc stop --temp-dir $d; else "
                 "mkdir -p $d && %s/bin/rayc start --address %s --temp-dir $d --num-cpus 1 --object-store-memory 80M "
                 "--token-file %s/cluster_token; fi ) >$d.out 2>&1 & done; wait; "
                 "for i in $(seq %d); do [ %d = 1 ] || [ -f %s/%s$i/session_latest/pids/raylet.pid ] || { cat %s/%s$i.out; "
                 "exit 1; }; done",
                 n, it_temp, name, stop, it_build, it_build, it_address, it_temp, n, stop, it_temp, name, it_temp, name);
  ck_assert_msg(rc == 0, "nodes %s1..%d did not %s:\n%s", name, n, stop ? "stop" : "join", out);
  free(out);
}

/* An idle raylet (its GCS channel closed) learns of nodes that join and leave, several at once, from
 * the GCS's answers to its heartbeat datagrams: its view (rayc_raylet_view_nodes) follows them while
 * it opens no TCP connection to the GCS port, and the GCS counts datagrams answered with the view.
 * (Session 11's GCS answered `view_stale` and the raylet made a gRPC heartbeat for each change.) */
START_TEST(joins_reach_idle_raylets_over_udp)
{
  long pid = join_node("watch", "RAYC_GCS_IDLE_CLOSE_MS=1000");
  int port = 0;
  ck_assert(wait_state("watch", "ALIVE", 60));
  node_info("watch", NULL, &port);
  ck_assert_int_gt(port, 0);
  double deadline = it_now_s() + 60;
  while (it_connections_to(pid, gcs_port) > 0 && it_now_s() < deadline)
    it_sleep_ms(250);
  ck_assert_msg(it_connections_to(pid, gcs_port) == 0, "the idle raylet still holds a connection to the GCS");
  double before = view_nodes(port), view0 = gcs_metric(DGRAMS("view"));
  ck_assert_double_gt(before, 0);
  conn_watch_t w;
  conn_watch_start(&w, pid);
  nodes_at_once("join", 4, 0);
  int joined = wait_view(port, before + 4, 60);
  it_sleep_ms(2500); /* a gRPC heartbeat's connection would stay open 1 s (RAYC_GCS_IDLE_CLOSE_MS) */
  int most = conn_watch_stop(&w);
  ck_assert_msg(joined, "the idle raylet's view holds %g nodes, not %g", view_nodes(port), before + 4);
  ck_assert_msg(most == 0, "the idle raylet opened %d connection(s) to the GCS while nodes joined", most);
  ck_assert_msg(gcs_metric(DGRAMS("view")) > view0, "no datagram was answered with the view");

  conn_watch_start(&w, pid);
  nodes_at_once("join", 4, 1);
  int left = wait_view(port, before, 60);
  it_sleep_ms(2500);
  most = conn_watch_stop(&w);
  ck_assert_msg(left, "the idle raylet's view holds %g nodes, not %g", view_nodes(port), before);
  ck_assert_msg(most == 0, "the idle raylet opened %d connection(s) to the GCS while nodes left", most);
  stop_node("watch");
}
END_TEST

/* Made-up nodes registered from this process (nobody behind their ports): alive while fake_beat
 * keeps them so, dead at the heartbeat timeout after. */
enum { FAKE_NODES = 20 };
typedef struct fake_nodes {
  rpc_client_t *client;
  rpc_channel_t *ch;
  uint8_t id[FAKE_NODES][ID_NODE_SIZE];
} fake_nodes_t;

static void fake_call(fake_nodes_t *f, const char *method, ProtobufCMessage *req)
{
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(f->ch, &rayc__node_info_gcs_service__descriptor, method, req, 10000, &resp, &detail);
  ck_assert_msg(rc == 0, "%s: %s", method, detail ? detail : "");
  pb_free(resp);
  free(detail);
}

static void fake_register(fake_nodes_t *f)
{
  char *token = read_token();
  rpc_client_opts_t opts = {.token = token};
  f->client = rpc_client_create(&opts);
  free(token);
  ck_assert_ptr_nonnull(f->client);
  f->ch = rpc_channel_get(f->client, it_address);
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpup = &cpu;
  cpu.name = (char *)"CPU";
  cpu.amount = 1;
  for (int i = 0; i < FAKE_NODES; i++) {
    id_random(f->id[i], ID_NODE_SIZE);
    Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
    node.node_id = pb_bytes(f->id[i], ID_NODE_SIZE);
    node.ip = (char *)"127.0.0.1";
    node.raylet_port = node.object_manager_port = 1;
    node.hostname = (char *)"fake";
    node.resources_total = node.resources_available = &cpup;
    node.n_resources_total = node.n_resources_available = 1;
    Rayc__RegisterNodeRequest req = RAYC__REGISTER_NODE_REQUEST__INIT;
    req.node = &node;
    fake_call(f, "RegisterNode", &req.base);
  }
}

/* One heartbeat of each made-up node (a full report: nothing else changes). */
static void fake_beat(fake_nodes_t *f)
{
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpup = &cpu;
  cpu.name = (char *)"CPU";
  cpu.amount = 1;
  for (int i = 0; i < FAKE_NODES; i++) {
    Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
    hb.node_id = pb_bytes(f->id[i], ID_NODE_SIZE);
    hb.resources_available = &cpup;
    hb.n_resources_available = 1;
    fake_call(f, "ReportHeartbeat", &hb.base);
  }
}

/* More nodes change at once than a datagram's delta may carry (20 made-up nodes registered, then
 * dead at the heartbeat timeout): the GCS answers the idle raylet `view_stale`, and its view still
 * converges, through a gRPC heartbeat, both ways. */
START_TEST(long_view_change_converges_over_grpc)
{
  join_node("gap", "RAYC_GCS_IDLE_CLOSE_MS=1000");
  int port = 0;
  ck_assert(wait_state("gap", "ALIVE", 60));
  node_info("gap", NULL, &port);
  for (double deadline = it_now_s() + 60; view_nodes(port) <= 0 && it_now_s() < deadline;)
    it_sleep_ms(200); /* its first view */
  double before = view_nodes(port), stale0 = gcs_metric(DGRAMS("view_stale"));
  ck_assert_double_gt(before, 0);
  fake_nodes_t f;
  fake_register(&f);
  int joined = 0;
  for (double deadline = it_now_s() + 60; !joined && it_now_s() < deadline; it_sleep_ms(200)) {
    fake_beat(&f);
    joined = view_nodes(port) == before + FAKE_NODES;
  }
  rpc_client_destroy(f.client);
  ck_assert_msg(joined, "the raylet's view holds %g nodes, not %g", view_nodes(port), before + FAKE_NODES);
  ck_assert_msg(gcs_metric(DGRAMS("view_stale")) > stale0, "no datagram was answered view_stale");
  ck_assert_msg(wait_view(port, before, 90), "the dead nodes stay in the raylet's view (%g, not %g)", view_nodes(port),
                before);
  stop_node("gap");
}
END_TEST

int main(void)
{
  /* the GCS: a node silent for 4 s is DEAD (heartbeats are what keep an idle node ALIVE) */
  setenv("RAYC_HEARTBEAT_TIMEOUT_MS", "4000", 1);
  if (it_start("libtest_tasks.so", "--num-cpus 1 --object-store-memory 80M") != 0) {
    fprintf(stderr, "cannot start the head node\n");
    return 1;
  }
  unsetenv("RAYC_HEARTBEAT_TIMEOUT_MS");
  const char *colon = strrchr(it_address, ':');
  gcs_port = colon ? atoi(colon + 1) : 0;
  Suite *s = suite_create("hb_udp");
  TCase *tc = tcase_create("hb_udp");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, idle_node_holds_no_connection);
  tcase_add_test(tc, stopped_node_dies_despite_forged_datagrams);
  tcase_add_test(tc, garbage_leaves_gcs_serving);
  tcase_add_test(tc, unanswered_udp_falls_back_to_grpc);
  tcase_add_test(tc, joins_reach_idle_raylets_over_udp);
  tcase_add_test(tc, long_view_change_converges_over_grpc);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  const char *names[] = {"idle", "stopped", "filtered", "watch", "gap",
                         "join1", "join2", "join3", "join4"}; /* also those a failed test left running */
  for (int i = 0; i < 9; i++) {
    char *cmd = xasprintf("[ -d %s/%s ] && %s/bin/rayc stop --temp-dir %s/%s >/dev/null 2>&1; true", it_temp,
                          names[i], it_build, it_temp, names[i]);
    it_run(cmd);
    free(cmd);
  }
  failed += it_stop();
  return failed ? 1 : 0;
}
