/*
 * Integration tests of the rayc CLI, the node launcher and rayc-gcs, with the real daemons from
 * $RAYC_BUILD/bin (default: ../bin next to this test). Every test uses its own temp dir and
 * ephemeral ports, and its teardown force-stops whatever the test started.
 */
#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"
#include "itest_sh.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char bin[PATH_MAX]; /* directory of rayc and the daemons */
static char base[64];      /* the suite's directory, holding one temp dir per test */
static char tmp[PATH_MAX]; /* this test's temp dir */

static void find_bin(void)
{
  const char *b = getenv("RAYC_BUILD");
  if (b && *b) {
    snprintf(bin, sizeof(bin), "%s/bin", b);
    return;
  }
  char self[PATH_MAX - 16];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ck_assert_int_gt(n, 0);
  self[n] = '\0';
  *strrchr(self, '/') = '\0';
  snprintf(bin, sizeof(bin), "%s/../bin", self);
}

/* Unchecked fixture (runs in the runner process, also when a forked test failed): the base dir,
 * and afterwards force-stopping every session of every test and removing everything. */
static void suite_setup(void)
{
  snprintf(base, sizeof(base), "/tmp/rayc-test-cli-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(base));
}

static void suite_teardown(void)
{
  find_bin();
  it_sh(NULL, "for d in %s/*/; do %s/rayc stop --all --force --temp-dir $d; done; rm -rf %s", base, bin, base);
}

static void setup(void)
{
  find_bin();
  snprintf(tmp, sizeof(tmp), "%s/XXXXXX", base);
  ck_assert_ptr_nonnull(mkdtemp(tmp));
}

/* Reads <session_latest>/pids/<name>.pid; 0 when absent. */
static pid_t read_pid(const char *name)
{
  char *path = xasprintf("%s/session_latest/pids/%s.pid", tmp, name);
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f && fscanf(f, "%d", &pid) != 1)
    pid = 0;
  if (f)
    fclose(f);
  free(path);
  return pid;
}

/* True while pid runs (a zombie waiting for its reaper counts as gone). */
static int pid_runs(pid_t pid)
{
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *end = strrchr(buf, ')');
  return end && end[2] != 'Z' && end[2] != 'X';
}

/* Reads the GCS address the session wrote. */
static void read_address(char *buf, size_t len)
{
  char *path = xasprintf("%s/session_latest/address", tmp);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "no address file %s", path);
  ck_assert_ptr_nonnull(fgets(buf, (int)len, f));
  buf[strcspn(buf, "\n")] = '\0';
  fclose(f);
  free(path);
}

START_TEST(head_start_status_stop)
{
  char *out = NULL, addr[128];
  int rc = it_sh(&out,
                 "%s/rayc start --head --port 0 --dashboard-port 0 --temp-dir %s --num-cpus 3 "
                 "--object-store-memory 100M",
                 bin, tmp);
  ck_assert_msg(rc == 0, "rayc start failed (%d):\n%s", rc, out);
  ck_assert_ptr_nonnull(strstr(out, "export RAYC_ADDRESS="));
  free(out);
  pid_t pids[3] = {read_pid("gcs"), read_pid("store"), read_pid("raylet")};
  for (int i = 0; i < 3; i++)
    ck_assert_msg(pids[i] > 0 && pid_runs(pids[i]), "daemon %d not running", i);
  read_address(addr, sizeof(addr));
  ck_assert_ptr_nonnull(strstr(addr, "127.0.0.1:"));
  ck_assert_ptr_null(strstr(addr, ":6380"));

  rc = it_sh(&out, "%s/rayc status --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0, "rayc status failed (%d):\n%s", rc, out);
  ck_assert_ptr_nonnull(strstr(out, "Node status"));
  ck_assert_ptr_nonnull(strstr(out, "Resources"));
  ck_assert_msg(strstr(out, "ALIVE (head)") && strstr(out, "/3.0 CPU"), "status:\n%s", out);
  free(out);
  /* the same through RAYC_ADDRESS, from a directory with no session (the token named explicitly) */
  rc = it_sh(&out, "RAYC_ADDRESS=%s RAYC_TOKEN_FILE=%s/cluster_token %s/rayc status --temp-dir %s/none", addr, tmp, bin,
             tmp);
  ck_assert_msg(rc == 0 && strstr(out, "/3.0 CPU"), "status via RAYC_ADDRESS (%d):\n%s", rc, out);
  free(out);

  rc = it_sh(&out, "%s/rayc stop --temp-dir %s", bin, tmp);
  /* the GCS, store, raylet and the dashboard (on an ephemeral port here, 8265 by default) */
  ck_assert_msg(rc == 0 && strstr(out, "stopped 4 processes"), "rayc stop (%d):\n%s", rc, out);
  free(out);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(!pid_runs(pids[i]), "pid %d still runs after rayc stop", (int)pids[i]);
  ck_assert_int_eq(read_pid("gcs"), 0);
  char *path = xasprintf("%s/session_latest/address", tmp);
  ck_assert_int_ne(access(path, F_OK), 0);
  free(path);
}
END_TEST

START_TEST(second_node_joins_and_leaves)
{
  char *out = NULL, addr[128], *joiner = xasprintf("%s/XXXXXX", base);
  ck_assert_ptr_nonnull(mkdtemp(joiner));
  int rc = it_sh(&out,
                 "%s/rayc start --head --port 0 --temp-dir %s --num-cpus 1 "
                 "--object-store-memory 100M",
                 bin, tmp);
  ck_assert_msg(rc == 0, "head (%d):\n%s", rc, out);
  free(out);
  read_address(addr, sizeof(addr));
  rc = it_sh(&out,
             "%s/rayc start --address %s --temp-dir %s --num-cpus 2 --object-store-memory 100M "
             "--resources '{\"special\": 3}' --token-file %s/cluster_token",
             bin, addr, joiner, tmp);
  ck_assert_msg(rc == 0 && !strstr(out, "RAYC_ADDRESS="), "join (%d):\n%s", rc, out);
  free(out);
  rc = it_sh(&out, "%s/rayc status --temp-dir %s", bin, joiner); /* via the joiner's address file */
  ck_assert_msg(rc == 0 && strstr(out, "(2 nodes alive, 0 dead)") && strstr(out, "0.0/3.0 CPU") &&
                    strstr(out, "0.0/3.0 special"),
                "status:\n%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc stop --temp-dir %s && %s/rayc status --temp-dir %s", bin, joiner, bin, tmp);
  ck_assert_msg(rc == 0 && strstr(out, "(1 node alive, 1 dead)") && strstr(out, "DEAD: "),
                "after the joiner stopped:\n%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc start --address 127.0.0.1:1 --temp-dir %s", bin, joiner);
  ck_assert_msg(rc == 1 && strstr(out, "cannot reach the cluster's GCS at 127.0.0.1:1"), "%s", out);
  free(out);
  free(joiner);
}
END_TEST

START_TEST(bad_flag_and_no_cluster)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/rayc start --head --temp-dir %s --no-such-flag", bin, tmp);
  ck_assert_int_eq(rc, 2);
  ck_assert_msg(strstr(out, "unknown flag --no-such-flag"), "%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc start --temp-dir %s", bin, tmp);
  ck_assert_int_eq(rc, 2);
  ck_assert_msg(strstr(out, "--address HOST:PORT"), "%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc status --temp-dir %s", bin, tmp);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(out, "rayc status: no cluster found (no --address, no RAYC_ADDRESS") &&
                    strstr(out, "start one with `rayc start --head`"),
                "%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc stop --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0 && strstr(out, "nothing to stop"), "%s", out);
  free(out);
  rc = it_sh(&out, "%s/rayc bogus", bin);
  ck_assert_int_eq(rc, 2);
  free(out);
}
END_TEST

START_TEST(failed_start_names_the_daemon_and_log)
{
  char *out = NULL;
  int rc = it_sh(&out, "%s/rayc start --head --port 0 --temp-dir %s --redis-address 127.0.0.1:1", bin, tmp);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(out, "rayc-gcs did not start") && strstr(out, "logs/gcs.log") &&
                    strstr(out, "cannot connect to redis at 127.0.0.1:1"),
                "%s", out);
  free(out);
}
END_TEST

/* Runs `rayc status` until its output contains want (or, with absent, no longer does), for up to
 * timeout_ms; returns the last output (free()). */
static char *status_until(const char *want, int absent, int timeout_ms)
{
  char *out = NULL;
  for (int waited = 0;; waited += 200) {
    free(out);
    it_sh(&out, "%s/rayc status --temp-dir %s", bin, tmp);
    if ((strstr(out, want) != NULL) != absent || waited >= timeout_ms)
      return out;
    usleep(200 * 1000);
  }
}

/* Three drivers each submit a task asking for 1000 CPUs on a 2-CPU cluster: `rayc status` shows the
 * demand (summed over the requests) and the raylet warns once for the shape; one driver cancels
 * its task and the demand drops by one; when the other requests fail (infeasible timeout) the
 * demand is gone. Then `rayc stop` drains the node, and `rayc list
 * nodes` shows it drained. */
START_TEST(infeasible_demands_in_status)
{
  char *out = NULL;
  int rc = it_sh(&out,
                 "RAYC_INFEASIBLE_TIMEOUT_MS=10000 RAYC_HEARTBEAT_MS=200 %s/rayc start --head --port 0 "
                 "--temp-dir %s --num-cpus 2 --object-store-memory 100M",
                 bin, tmp);
  ck_assert_msg(rc == 0, "rayc start (%d):\n%s", rc, out);
  free(out);
  for (int i = 0; i < 3; i++) { /* the third one cancels its task */
    rc = it_sh(NULL,
               "RAYC_TOKEN_FILE=%s/cluster_token RAYC_ADDRESS=$(cat %s/session_latest/address) "
               "RAYC_CODE_PATH=%s/../lib/libtest_tasks.so DEMAND_CANCEL=%s/cancel DEMAND_EXIT=%s/exit "
               "%s/../tests/drivers/demand 1000 %s > %s/demand%d.out 2>&1 &",
               tmp, tmp, bin, tmp, tmp, bin, i == 2 ? "cancel" : "", tmp, i);
    ck_assert_int_eq(rc, 0);
  }
  out = status_until("{'CPU': 1000.0}: 3+ pending tasks (infeasible)", 0, 15000);
  ck_assert_msg(strstr(out, "Demands:") && strstr(out, "{'CPU': 1000.0}: 3+ pending tasks (infeasible)"),
                "no infeasible demand in:\n%s", out);
  free(out);
  /* a cancelled task's lease request is withdrawn: its demand goes while its driver stays */
  it_sh(NULL, "touch %s/cancel", tmp);
  out = status_until("{'CPU': 1000.0}: 2+ pending tasks (infeasible)", 0, 8000);
  ck_assert_msg(strstr(out, "{'CPU': 1000.0}: 2+ pending tasks (infeasible)"), "after the cancel:\n%s", out);
  free(out);
  for (int waited = 0; waited < 10000 && it_sh(NULL, "grep -q RESULT %s/demand2.out", tmp) != 0; waited += 100)
    usleep(100 * 1000);
  rc = it_sh(&out, "cat %s/demand2.out", tmp);
  char cancelled[64];
  snprintf(cancelled, sizeof(cancelled), "RESULT %d ", RAYC_ECANCELLED);
  ck_assert_msg(strstr(out, cancelled), "the cancelling driver:\n%s", out);
  free(out);
  it_sh(NULL, "touch %s/exit", tmp);
  /* the drivers' requests fail after the infeasible timeout; then the demand is gone */
  for (int i = 0; i < 2; i++) {
    char *path = xasprintf("%s/demand%d.out", tmp, i);
    for (int waited = 0; waited < 30000; waited += 200) {
      rc = it_sh(&out, "grep -h RESULT %s", path);
      free(out);
      if (rc == 0)
        break;
      usleep(200 * 1000);
    }
    rc = it_sh(&out, "cat %s", path);
    char want[64];
    snprintf(want, sizeof(want), "RESULT %d ", RAYC_EINFEASIBLE);
    ck_assert_msg(strstr(out, want), "driver %d:\n%s", i, out);
    free(out);
    free(path);
  }
  out = status_until("pending task", 1, 10000);
  ck_assert_msg(strstr(out, "(no resource demands)"), "the demand stayed:\n%s", out);
  free(out);
  rc = it_sh(&out, "grep -c 'no node of the cluster can run a task asking for' %s/session_latest/logs/raylet.log", tmp);
  ck_assert_msg(rc == 0 && atoi(out) == 1, "the raylet warned %s times, not once", out);
  free(out);

  /* rayc stop drains the node first; the GCS records it as drained, not failed */
  rc = it_sh(&out, "%s/rayc stop --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0 && strstr(out, "node drained") && strstr(out, "stopped 3 processes"), "rayc stop (%d):\n%s", rc,
                out);
  free(out);
  rc = it_sh(&out, "grep -h 'ALIVE -> DEAD: drained: rayc stop' %s/session_latest/logs/gcs.log", tmp);
  ck_assert_msg(rc == 0, "the GCS did not record a drain:\n%s", out);
  free(out);
}
END_TEST

/* ---- the GCS over RPC (head started with --gcs-only, short heartbeat timeout) ---- */

static rpc_client_t *client;
static rpc_channel_t *channel;

static void gcs_only_start(void)
{
  char *out = NULL, addr[128];
  int rc = it_sh(&out,
                 "RAYC_HEARTBEAT_TIMEOUT_MS=2500 %s/rayc start --head --gcs-only --port 0 "
                 "--temp-dir %s",
                 bin, tmp);
  ck_assert_msg(rc == 0, "rayc start --gcs-only (%d):\n%s", rc, out);
  free(out);
  read_address(addr, sizeof(addr));
  char *token = NULL, *path = xasprintf("%s/cluster_token", tmp);
  ck_assert_int_eq(token_read_file(path, &token, NULL), 0);
  rpc_client_opts_t opts = {.token = token};
  client = rpc_client_create(&opts);
  channel = rpc_channel_get(client, addr);
  token_free(token);
  free(path);
}

static ProtobufCMessage *call(const ProtobufCServiceDescriptor *svc, const char *method, const void *req, int want)
{
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(channel, svc, method, req, 5000, &resp, &detail);
  ck_assert_msg(rc == want, "%s: %s (%s)", method, rayc_strerror(rc), detail ? detail : "");
  free(detail);
  return resp;
}

START_TEST(gcs_node_death_over_rpc)
{
  gcs_only_start();
  id_node_t id = id_node_random();
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *res[1] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = 4;
  Rayc__NodeInfo node = RAYC__NODE_INFO__INIT;
  node.node_id = pb_bytes(id.b, ID_NODE_SIZE);
  node.ip = (char *)"127.0.0.7";
  node.n_resources_total = 1;
  node.resources_total = res;
  Rayc__RegisterNodeRequest reg = RAYC__REGISTER_NODE_REQUEST__INIT;
  reg.node = &node;
  const ProtobufCServiceDescriptor *nsvc = &rayc__node_info_gcs_service__descriptor;
  pb_free(call(nsvc, "RegisterNode", &reg, 0));
  node.node_id.len = 3; /* bad ids are rejected, never crash the GCS */
  pb_free(call(nsvc, "RegisterNode", &reg, RAYC_EINVALID_ARGUMENT));

  char *out = NULL;
  int rc = it_sh(&out, "%s/rayc status --temp-dir %s", bin, tmp);
  ck_assert_msg(rc == 0 && strstr(out, "127.0.0.7  ALIVE") && strstr(out, "0.0/4.0 CPU"), "%s", out);
  free(out);

  /* no heartbeat: DEAD after the timeout (2.5 s: long enough that a loaded machine's `rayc status`
   * above still sees it ALIVE), and a late heartbeat is told to register again */
  out = status_until("DEAD: no heartbeat", 0, 20000);
  ck_assert_msg(strstr(out, "DEAD: no heartbeat"), "%s", out);
  free(out);
  Rayc__ReportHeartbeatRequest hb = RAYC__REPORT_HEARTBEAT_REQUEST__INIT;
  hb.node_id = pb_bytes(id.b, ID_NODE_SIZE);
  Rayc__ReportHeartbeatReply *hr = (void *)call(nsvc, "ReportHeartbeat", &hb, 0);
  ck_assert(hr->unknown_node);
  pb_free(hr);
  rpc_client_destroy(client);
}
END_TEST

START_TEST(gcs_jobs_kv_over_rpc)
{
  gcs_only_start();
  const ProtobufCServiceDescriptor *jsvc = &rayc__job_info_gcs_service__descriptor;
  Rayc__AddJobRequest aj = RAYC__ADD_JOB_REQUEST__INIT;
  Rayc__JobInfo info = RAYC__JOB_INFO__INIT;
  aj.job = &info;
  for (uint32_t i = 1; i <= 2; i++) {
    info.driver_pid = (int32_t)(1000 + i); /* a job needs its driver's pid */
    Rayc__AddJobReply *r = (void *)call(jsvc, "AddJob", &aj, 0);
    id_job_t want = id_job_from_int(i);
    ck_assert_uint_eq(r->job_id.len, ID_JOB_SIZE);
    ck_assert_mem_eq(r->job_id.data, want.b, ID_JOB_SIZE);
    pb_free(r);
  }

  const ProtobufCServiceDescriptor *ksvc = &rayc__internal_kvgcs_service__descriptor;
  Rayc__KVPutRequest put = RAYC__KVPUT_REQUEST__INIT;
  put.ns = (char *)"test";
  put.key = pb_bytes("k", 1);
  put.value = pb_bytes("v", 1);
  Rayc__KVPutReply *pr = (void *)call(ksvc, "InternalKVPut", &put, 0);
  ck_assert(pr->added);
  pb_free(pr);
  Rayc__KVGetRequest get = RAYC__KVGET_REQUEST__INIT;
  get.ns = (char *)"test";
  get.key = pb_bytes("k", 1);
  Rayc__KVGetReply *gr = (void *)call(ksvc, "InternalKVGet", &get, 0);
  ck_assert(gr->found);
  ck_assert_mem_eq(gr->value.data, "v", 1);
  pb_free(gr);
  rpc_client_destroy(client);
}
END_TEST

static Suite *cli_suite(void)
{
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 60);
  tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, head_start_status_stop);
  tcase_add_test(tc, second_node_joins_and_leaves);
  tcase_add_test(tc, bad_flag_and_no_cluster);
  tcase_add_test(tc, failed_start_names_the_daemon_and_log);
  tcase_add_test(tc, gcs_node_death_over_rpc);
  tcase_add_test(tc, gcs_jobs_kv_over_rpc);
  tcase_add_test(tc, infeasible_demands_in_status);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  unsetenv("RAYC_ADDRESS"); /* the tests say where their cluster is, and where its token is */
  unsetenv("RAYC_TOKEN");
  unsetenv("RAYC_TOKEN_FILE");
  unsetenv("RAYC_TEMP_DIR");
  SRunner *sr = srunner_create(cli_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
