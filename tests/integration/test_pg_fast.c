/*
 * Placement groups created and removed fast (issue 17, session 8): a removed group's return to
 * its raylet is queued in the GCS and rides on the next prepare to that raylet (or leaves alone
 * 5 ms later), and the GCS counts queued returns free when it places. What a user sees must not
 * change: every group is CREATED when the node has room, no CPU is leaked or counted twice, and
 * removed groups stay removed across a GCS kill -9.
 *
 * One head on Redis (`--num-cpus 2`), started with a redis-server of its own before check forks:
 *   - every_cpu_comes_back: 300 groups of 1 or 2 CPUs created and removed in a row (each 2-CPU
 *     group needs the previous group's return applied on the raylet); then a group of both CPUs
 *     is CREATED, a 1-CPU group beside it stays pending (nothing counted twice) and is placed
 *     once the first is removed, and once both are removed `rayc status` shows 0.0/2.0 CPU used;
 *   - remove_races_create: groups created without waiting (CreatePlacementGroup with wait_ms 0)
 *     and removed at once, so removals land while the prepare is in flight; all stay REMOVED and
 *     the node's two CPUs come back (a 2-CPU group is CREATED afterwards);
 *   - bad_returns_rejected: a raylet given a malformed group id among a prepare's returns or a
 *     cancel's more_groups answers INVALID_ARGUMENT and returns nothing;
 *   - removed_groups_survive_gcs_kill9: both CPUs held by two groups, both removed, the GCS killed
 *     -9 at once (their returns still queued) and restarted: the groups are REMOVED and a 2-CPU
 *     group is CREATED (the restarted GCS sent the returns again).
 */
#include "itest.h"
#include "itest_sh.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/token.h"
#include "proto/node_manager.pb-c.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

static char redis_dir[64], redis_addr[160];
static pid_t redis_pid;

#define PG_SVC (&rayc__placement_group_info_gcs_service__descriptor)

/* ---- helpers ---- */

/* A 1-bundle group of cpus CPUs (PACK), created and waited for; fails the test if not CREATED. */
static rayc_placement_group pg_make(double cpus)
{
  rayc_resource cpu[] = {{"CPU", cpus}};
  rayc_bundle b = {.resources = cpu, .nresources = 1};
  rayc_placement_group pg;
  int rc = rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, &pg);
  ck_assert_msg(rc == 0, "create (%g CPU): %s", cpus, rayc_last_error());
  rc = rayc_placement_group_wait(&pg, 10000);
  ck_assert_msg(rc == 0, "a %g-CPU group on an otherwise empty node was not CREATED in 10 s: %d (%s)", cpus, rc,
                rayc_last_error());
  return pg;
}

/* Polls `rayc status` until it shows "<used>/2.0 CPU" (30 s at most). */
static void expect_cpu_used(const char *used)
{
  char needle[64], cmd[1600], *out;
  snprintf(needle, sizeof(needle), "%s/2.0 CPU", used);
  snprintf(cmd, sizeof(cmd), "%s/bin/rayc status --temp-dir %s", it_build, it_temp);
  ck_assert_msg(it_sh_until(&out, needle, 300, cmd), "rayc status does not show %s:\n%s", needle, out);
  free(out);
}

/* Both CPUs are free: a 2-CPU group is CREATED, a 1-CPU group beside it stays pending until the
 * first is removed, and after both are removed the node shows no CPU used. */
static void expect_node_whole(void)
{
  rayc_placement_group all = pg_make(2);
  static const rayc_resource cpu1[] = {{"CPU", 1}};
  rayc_bundle b = {.resources = cpu1, .nresources = 1};
  rayc_placement_group more;
  ck_assert_int_eq(rayc_placement_group_create(&b, 1, RAYC_PG_PACK, NULL, &more), 0);
  ck_assert_msg(rayc_placement_group_wait(&more, 1000) == RAYC_ETIMEOUT,
                "a third CPU was handed out on a 2-CPU node (%s)", rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&all), 0); /* the pending one fits now */
  int rc = rayc_placement_group_wait(&more, 5000);
  ck_assert_msg(rc == 0, "a pending group was not placed within 5 s of the removal that freed its CPU: %d (%s)", rc,
                rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&more), 0);
  expect_cpu_used("0.0");
}

static rpc_client_t *client;

/* Calls method of service svc at target (NULL: the GCS); the reply is dropped. */
static int call_at(const char *target, const ProtobufCServiceDescriptor *svc, const char *method, const void *req,
                   void *resp, int timeout_ms);

static int gcs_call(const char *method, const void *req, void *resp, int timeout_ms)
{
  return call_at(NULL, PG_SVC, method, req, resp, timeout_ms);
}

static int call_at(const char *target, const ProtobufCServiceDescriptor *svc, const char *method, const void *req,
                   void *resp, int timeout_ms)
{
  if (!client) {
    char *t = NULL, *err = NULL; /* the cluster's token (it_start sets RAYC_TOKEN_FILE) */
    ck_assert_msg(token_read_file(getenv("RAYC_TOKEN_FILE"), &t, &err) == 0, "token: %s", err ? err : "");
    client = rpc_client_create(&(rpc_client_opts_t){.token = t});
    free(t);
  }
  ProtobufCMessage *r = NULL;
  char *detail = NULL;
  int rc = rpc_call_sync(rpc_channel_get(client, target ? target : it_address), svc, method, req, timeout_ms, &r,
                         &detail);
  if (resp)
    *(ProtobufCMessage **)resp = r;
  else
    pb_free(r);
  free(detail);
  return rc;
}

/* The state of group id as the GCS says (retried while the GCS is unreachable, 30 s). */
static int pg_state(const uint8_t *id)
{
  Rayc__GetPlacementGroupRequest req = RAYC__GET_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  Rayc__GetPlacementGroupReply *rep = NULL;
  int rc = RAYC_EUNAVAILABLE;
  for (int i = 0; i < 300 && rc != 0; i++) {
    if ((rc = gcs_call("GetPlacementGroup", &req, &rep, 2000)) != 0)
      usleep(100 * 1000);
  }
  ck_assert_msg(rc == 0, "GetPlacementGroup: %s", rayc_strerror(rc));
  int st = rep->placement_group->state;
  pb_free(rep);
  return st;
}

/* CreatePlacementGroup for a fresh id (1 bundle of cpus CPUs), answered at once (wait_ms 0). */
static void pg_create_nowait(uint8_t *id, double cpus)
{
  for (int i = 0; i < ID_PG_SIZE; i++)
    id[i] = (uint8_t)rand();
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpup[] = {&cpu};
  cpu.name = (char *)"CPU";
  cpu.amount = cpus;
  Rayc__Bundle b = RAYC__BUNDLE__INIT, *bp[] = {&b};
  b.resources = cpup;
  b.n_resources = 1;
  Rayc__PlacementGroupInfo info = RAYC__PLACEMENT_GROUP_INFO__INIT;
  info.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  info.strategy = RAYC__PLACEMENT_STRATEGY__PG_PACK;
  info.bundles = bp;
  info.n_bundles = 1;
  Rayc__CreatePlacementGroupRequest req = RAYC__CREATE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group = &info;
  ck_assert_int_eq(gcs_call("CreatePlacementGroup", &req, NULL, 5000), 0);
}

static void pg_remove_id(const uint8_t *id)
{
  Rayc__RemovePlacementGroupRequest req = RAYC__REMOVE_PLACEMENT_GROUP_REQUEST__INIT;
  req.placement_group_id = pb_bytes(id, ID_PG_SIZE);
  ck_assert_int_eq(gcs_call("RemovePlacementGroup", &req, NULL, 5000), 0);
}

/* ---- the GCS process (as test_gcs_restart.c) ---- */

static char cmdline[4096];
static char *gcs_argv[64];

static pid_t gcs_pid(void)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/session_latest/pids/gcs.pid", it_temp);
  FILE *f = fopen(path, "r");
  int pid = 0;
  if (f) {
    if (fscanf(f, "%d", &pid) != 1)
      pid = 0;
    fclose(f);
  }
  return pid;
}

/* The GCS's command line, with --port made explicit and the key prefix it used. */
static void gcs_read_cmdline(pid_t pid)
{
  char path[64];
  static char port_arg[48];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t len = fread(cmdline, 1, sizeof(cmdline) - 1, f);
  fclose(f);
  cmdline[len] = '\0';
  snprintf(port_arg, sizeof(port_arg), "--port=%s", strrchr(it_address, ':') + 1);
  int n = 0, prefix = 0;
  for (size_t i = 0; i < len && n < 60; i += strlen(cmdline + i) + 1) {
    char *a = cmdline + i;
    if (strcmp(a, "--port") == 0) { /* "--port" "0": skip both */
      i += strlen(a) + 1;
      continue;
    }
    if (strncmp(a, "--port=", 7) == 0)
      continue;
    prefix |= strncmp(a, "--redis-key-prefix", 18) == 0;
    gcs_argv[n++] = a;
  }
  gcs_argv[n++] = port_arg;
  if (!prefix) { /* the first GCS ran with --port 0: its default prefix was "rayc:0" */
    gcs_argv[n++] = (char *)"--redis-key-prefix";
    gcs_argv[n++] = (char *)"rayc:0";
  }
  gcs_argv[n] = NULL;
}

static void gcs_restart(void)
{
  char out[700], pidfile[700];
  snprintf(out, sizeof(out), "%s/session_latest/logs/gcs-restarted.out", it_temp);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
  pid_t pid;
  ck_assert_int_eq(posix_spawn(&pid, gcs_argv[0], &fa, &at, gcs_argv, environ), 0);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  snprintf(pidfile, sizeof(pidfile), "%s/session_latest/pids/gcs.pid", it_temp);
  FILE *f = fopen(pidfile, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%d\n", (int)pid);
  fclose(f);
}

/* ---- tests ---- */

START_TEST(every_cpu_comes_back)
{
  it_connect();
  for (int i = 0; i < 300; i++) {
    rayc_placement_group pg = pg_make(i % 3 == 2 ? 2 : 1);
    ck_assert_msg(rayc_placement_group_remove(&pg) == 0, "remove: %s", rayc_last_error());
  }
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

START_TEST(remove_races_create)
{
  it_connect();
  enum { N = 200 };
  static uint8_t ids[N][ID_PG_SIZE];
  srand((unsigned)getpid());
  for (int i = 0; i < N; i++) {
    pg_create_nowait(ids[i], i % 2 ? 2 : 1);
    pg_remove_id(ids[i]);
  }
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(pg_state(ids[i]), RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

START_TEST(removed_groups_survive_gcs_kill9)
{
  it_connect();
  rayc_placement_group a = pg_make(1), b = pg_make(1);
  pid_t pid = gcs_pid();
  ck_assert_int_gt(pid, 0);
  gcs_read_cmdline(pid);
  ck_assert_int_eq(rayc_placement_group_remove(&a), 0);
  ck_assert_int_eq(rayc_placement_group_remove(&b), 0);
  ck_assert_int_eq(kill(pid, SIGKILL), 0); /* the returns were queued for 5 ms */
  for (int i = 0; i < 500 && kill(pid, 0) == 0; i++)
    usleep(10000);
  gcs_restart();
  ck_assert_int_eq(pg_state(a.id), RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
  ck_assert_int_eq(pg_state(b.id), RAYC__PLACEMENT_GROUP_STATE__PG_REMOVED);
  /* the raylet got both CPUs back: a 2-CPU group fits (within 30 s: the driver and the raylet
   * reconnect first) */
  static const rayc_resource cpu2[] = {{"CPU", 2}};
  rayc_bundle bb = {.resources = cpu2, .nresources = 1};
  rayc_placement_group all;
  ck_assert_msg(rayc_placement_group_create(&bb, 1, RAYC_PG_PACK, NULL, &all) == 0, "%s", rayc_last_error());
  int rc = rayc_placement_group_wait(&all, 30000);
  ck_assert_msg(rc == 0, "the removed groups' CPUs did not come back after the GCS restart: %d (%s)", rc,
                rayc_last_error());
  ck_assert_int_eq(rayc_placement_group_remove(&all), 0);
  expect_cpu_used("0.0");
  rayc_shutdown();
}
END_TEST

/* A raylet given malformed returns answers INVALID_ARGUMENT and changes nothing. */
START_TEST(bad_returns_rejected)
{
  it_connect();
  char path[700], target[128] = "";
  snprintf(path, sizeof(path), "%s/session_latest/raylet_address", it_temp);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_nonnull(fgets(target, sizeof(target), f));
  fclose(f);
  target[strcspn(target, "\n")] = '\0';
  rayc_placement_group held = pg_make(1);
  ProtobufCBinaryData bad[2] = {pb_bytes(held.id, ID_PG_SIZE), pb_bytes(held.id, 3)};
  Rayc__PrepareBundleResourcesRequest prep = RAYC__PREPARE_BUNDLE_RESOURCES_REQUEST__INIT;
  prep.returns = bad;
  prep.n_returns = 2;
  const ProtobufCServiceDescriptor *nm = &rayc__node_manager_service__descriptor;
  ck_assert_int_eq(call_at(target, nm, "PrepareBundleResources", &prep, NULL, 5000), RAYC_EINVALID_ARGUMENT);
  Rayc__CancelResourceReserveRequest cancel = RAYC__CANCEL_RESOURCE_RESERVE_REQUEST__INIT;
  cancel.placement_group_id = pb_bytes(held.id, ID_PG_SIZE);
  cancel.bundle_index = -1;
  cancel.more_groups = bad + 1;
  cancel.n_more_groups = 1;
  ck_assert_int_eq(call_at(target, nm, "CancelResourceReserve", &cancel, NULL, 5000), RAYC_EINVALID_ARGUMENT);
  /* the group still holds its CPU: a 2-CPU group stays pending (had the raylet returned it, its
   * next report, forced within 50 ms, would let the group in) */
  static const rayc_resource cpu2[] = {{"CPU", 2}};
  rayc_bundle b2 = {.resources = cpu2, .nresources = 1};
  rayc_placement_group both;
  ck_assert_int_eq(rayc_placement_group_create(&b2, 1, RAYC_PG_PACK, NULL, &both), 0);
  ck_assert_msg(rayc_placement_group_wait(&both, 2000) == RAYC_ETIMEOUT, "a malformed call returned a CPU");
  ck_assert_int_eq(rayc_placement_group_remove(&both), 0);
  ck_assert_int_eq(rayc_placement_group_remove(&held), 0);
  expect_node_whole();
  rayc_shutdown();
}
END_TEST

/* ---- redis ---- */

static int redis_start(void)
{
  snprintf(redis_dir, sizeof(redis_dir), "/tmp/rayc-pgfast-XXXXXX");
  if (!mkdtemp(redis_dir))
    return -1;
  char sock[128], out[128];
  snprintf(sock, sizeof(sock), "%s/redis.sock", redis_dir);
  snprintf(out, sizeof(out), "%s/redis.out", redis_dir);
  snprintf(redis_addr, sizeof(redis_addr), "unix:%s", sock);
  char *argv[] = {(char *)"redis-server",
                  (char *)"--port",
                  (char *)"0",
                  (char *)"--unixsocket",
                  sock,
                  (char *)"--dir",
                  redis_dir,
                  (char *)"--save",
                  (char *)"",
                  (char *)"--appendonly",
                  (char *)"no",
                  NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawnp(&redis_pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
    usleep(10 * 1000);
  return access(sock, F_OK);
}

static void redis_stop(void)
{
  char cmd[200];
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", redis_dir);
  it_run(cmd);
}

int main(void)
{
  if (it_run("command -v redis-server > /dev/null 2>&1") != 0) {
    printf("redis-server not installed: skipping\n");
    return 0;
  }
  if (redis_start() != 0) {
    printf("could not start redis-server\n");
    return 1;
  }
  char flags[400];
  snprintf(flags, sizeof(flags), "--num-cpus 2 --object-store-memory 128M --redis-address %s", redis_addr);
  if (it_start("libtest_tasks.so", flags) != 0) {
    printf("could not start the head node\n");
    redis_stop();
    return 1;
  }
  Suite *s = suite_create("pg_fast");
  TCase *tc = tcase_create("pg_fast");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, every_cpu_comes_back);
  tcase_add_test(tc, remove_races_create);
  tcase_add_test(tc, removed_groups_survive_gcs_kill9);
  tcase_add_test(tc, bad_returns_rejected);
  suite_add_tcase(s, tc);
  int rc = it_finish(s);
  redis_stop();
  return rc;
}
