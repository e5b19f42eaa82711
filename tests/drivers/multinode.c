/*
 * Driver for the multi-host cluster test (tests/netns/cluster_multinode.sh). Runs inside host 1
 * against a 3-node cluster whose nodes carry the custom resources host1, host2 and host3 (node 3
 * also has "special"), checks what it sees, and exits non-zero on the first failed check.
 *
 *   multinode basic      spillback spread, custom resources, SPREAD, node affinity
 *   multinode pg         a STRICT_SPREAD placement group of 3 bundles lands one bundle per node
 *   multinode workload   tasks (and a STRICT_SPREAD group) across a GCS kill -9 and restart
 *   multinode killnode   tasks spread over the nodes; prints READY; node 3 is then killed by the
 *                        script; every task must still complete (retried elsewhere)
 *   multinode orphan     long tasks on nodes 2 and 3; prints READY and waits: the script SIGKILLs
 *                        it and checks that its workers there end and its job is finished
 *   multinode drain      two 4 s tasks on node 3; prints READY; the script runs `rayc stop` on
 *                        node 3 and creates $DRAIN_FILE once the node drains; then tasks must run
 *                        on nodes 1 and 2 only, a task needing node 3 must fail, and the first two
 *                        must complete on node 3 (max_retries 0: a retry would have failed them)
 *   multinode workload   tasks while the script kills -9 and restarts the GCS
 *   multinode pending_before / pending_after   a detached actor needing node 3's "special"
 *                        resource, created while node 3 is dead (PENDING), runs once it is back
 *   multinode actor_before / actor_after   a named detached counter on node 2, counted to 3
 *                        before the GCS restart; after it, found by name with its count intact
 */
#include <rayc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, ...)                    \
  do {                                      \
    if (!(cond)) {                          \
      printf("FAIL: " __VA_ARGS__);         \
      printf(" [%s]\n", rayc_last_error()); \
      exit(1);                              \
    }                                       \
  } while (0)

static char ids[4][RAYC_NODE_ID_HEX_LEN];

/* Submits where(ms) with opts; returns its ref. */
static rayc_ref where(int64_t ms, const rayc_task_opts *o)
{
  rayc_arg a = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref r;
  CHECK(rayc_remote("where", &a, 1, o, &r) == 0, "submit where");
  return r;
}

/* Gets a where() result: the node id; returns 0 or the error. */
static int node_of(const rayc_ref *r, char *out)
{
  rayc_buf b;
  int rc = rayc_get(r, 1, 120000, &b);
  if (rc == 0) {
    snprintf(out, RAYC_NODE_ID_HEX_LEN, "%.*s", (int)b.len, (const char *)b.data);
    rayc_buf_release(&b, 1);
  }
  rayc_ref_release(r);
  return rc;
}

static int node_index(const char *id)
{
  for (int i = 1; i <= 3; i++)
    if (strcmp(ids[i], id) == 0)
      return i;
  return 0;
}

static void learn_node_ids(void)
{
  for (int i = 1; i <= 3; i++) {
    char name[16];
    snprintf(name, sizeof(name), "host%d", i);
    rayc_resource res = {name, 1};
    rayc_task_opts o;
    rayc_task_opts_init(&o);
    o.resources = &res;
    o.nresources = 1;
    rayc_ref r = where(0, &o);
    CHECK(node_of(&r, ids[i]) == 0, "task needing %s", name);
    printf("node %d is %.8s\n", i, ids[i]);
  }
  CHECK(strcmp(ids[1], ids[2]) && strcmp(ids[2], ids[3]) && strcmp(ids[1], ids[3]), "three distinct nodes");
}

static void check_default_spreads(void)
{
  enum { N = 1000 };
  static rayc_ref refs[N];
  int count[4] = {0};
  for (int i = 0; i < N; i++)
    refs[i] = where(5, NULL);
  for (int i = 0; i < N; i++) {
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&refs[i], id) == 0, "task %d", i);
    count[node_index(id)]++;
  }
  printf("1000 tasks (default strategy): node1 %d, node2 %d, node3 %d\n", count[1], count[2], count[3]);
  CHECK(count[1] > 0 && count[2] > 0 && count[3] > 0 && count[0] == 0, "every node ran some of the 1000 tasks");
}

static void check_custom_and_strategies(void)
{
  rayc_resource special = {"special", 1};
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.resources = &special;
  o.nresources = 1;
  char id[RAYC_NODE_ID_HEX_LEN];
  for (int i = 0; i < 5; i++) {
    rayc_ref r = where(0, &o);
    CHECK(node_of(&r, id) == 0 && node_index(id) == 3, "a task needing 'special' runs on node 3");
  }
  printf("tasks needing 'special' ran on node 3\n");

  usleep(300000); /* let this driver's idle leases go back, so every node is free */
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_SPREAD;
  int seen[4] = {0};
  rayc_ref refs[30];
  for (int i = 0; i < 30; i++)
    refs[i] = where(50, &o);
  for (int i = 0; i < 30; i++) {
    CHECK(node_of(&refs[i], id) == 0, "SPREAD task %d", i);
    seen[node_index(id)]++;
  }
  printf("30 SPREAD tasks: node1 %d, node2 %d, node3 %d\n", seen[1], seen[2], seen[3]);
  CHECK(seen[1] && seen[2] && seen[3], "SPREAD used every node");

  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_NODE_AFFINITY;
  o.node_affinity = ids[2];
  for (int i = 0; i < 10; i++) {
    rayc_ref r = where(0, &o);
    CHECK(node_of(&r, id) == 0 && node_index(id) == 2, "NODE_AFFINITY to node 2");
  }
  printf("NODE_AFFINITY tasks ran on node 2\n");
  char bogus[RAYC_NODE_ID_HEX_LEN];
  memset(bogus, 'a', 56);
  bogus[56] = '\0';
  o.node_affinity = bogus;
  o.node_affinity_soft = 1;
  rayc_ref r = where(0, &o);
  CHECK(node_of(&r, id) == 0 && node_index(id) > 0, "soft affinity to a missing node runs elsewhere");
  o.node_affinity_soft = 0;
  r = where(0, &o);
  CHECK(node_of(&r, id) == RAYC_EINFEASIBLE, "hard affinity to a missing node is infeasible");
  printf("affinity to a missing node: soft ran elsewhere, hard failed with INFEASIBLE\n");
}

/* An object made on node 2 is consumed by a task on node 3 and by this driver on node 1: each
 * pulls it from node 2's object manager. */
static void check_object_across_nodes(void)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_NODE_AFFINITY;
  o.node_affinity = ids[2];
  int64_t n = 3 << 20, seed = 5, want = 0;
  for (int64_t i = 0; i < n; i++)
    want += (uint8_t)(i + seed);
  rayc_arg a[2] = {RAYC_ARG_VAL(&n, 8), RAYC_ARG_VAL(&seed, 8)};
  rayc_ref obj, sum;
  CHECK(rayc_remote("bytes", a, 2, &o, &obj) == 0, "submit bytes on node 2");
  o.node_affinity = ids[3];
  rayc_arg ref = RAYC_ARG_REF(&obj);
  CHECK(rayc_remote("checksum", &ref, 1, &o, &sum) == 0, "submit checksum on node 3");
  rayc_buf b;
  CHECK(rayc_get(&sum, 1, 60000, &b) == 0 && b.len == 8, "checksum on node 3");
  int64_t got;
  memcpy(&got, b.data, 8);
  rayc_buf_release(&b, 1);
  CHECK(got == want, "node 3 read node 2's object: checksum %lld, want %lld", (long long)got, (long long)want);
  CHECK(rayc_get(&obj, 1, 60000, &b) == 0 && b.len == (size_t)n, "the driver on node 1 reads node 2's object");
  int ok = 1;
  for (int64_t i = 0; ok && i < n; i++)
    ok = ((const uint8_t *)b.data)[i] == (uint8_t)(i + seed);
  rayc_buf_release(&b, 1);
  CHECK(ok, "the bytes pulled to node 1 are right");
  rayc_ref_release(&sum);
  rayc_ref_release(&obj);
  printf("a 3 MiB object made on node 2 was read by a task on node 3 and by the driver on node 1\n");
}

/* A STRICT_SPREAD group of three {CPU: 1} bundles: one per node; tasks pinned to each bundle run
 * on three distinct nodes. */
static void pg_check_spread(const rayc_placement_group *pg, const char *when, double num_cpus)
{
  int seen[4] = {0};
  for (int b = 0; b < 3; b++) {
    rayc_task_opts o;
    rayc_task_opts_init(&o);
    o.placement_group = pg;
    o.bundle_index = b;
    o.num_cpus = num_cpus;
    rayc_ref r = where(0, &o);
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&r, id) == 0, "task in bundle %d %s", b, when);
    int n = node_index(id);
    CHECK(n > 0 && !seen[n], "bundle %d %s ran on node %d, which another bundle uses", b, when, n);
    seen[n] = 1;
  }
  printf("placement group %s: bundles 0, 1, 2 ran their tasks on three distinct nodes\n", when);
}

static rayc_placement_group pg_strict_spread(int n)
{
  static const rayc_resource cpu1[] = {{"CPU", 1}};
  rayc_bundle b[4];
  for (int i = 0; i < n; i++)
    b[i] = (rayc_bundle){.resources = cpu1, .nresources = 1};
  rayc_placement_group pg;
  CHECK(rayc_placement_group_create(b, (size_t)n, RAYC_PG_STRICT_SPREAD, NULL, &pg) == 0, "create a group of %d", n);
  return pg;
}

static void check_placement_groups(void)
{
  rayc_placement_group pg = pg_strict_spread(3);
  CHECK(rayc_placement_group_wait(&pg, 30000) == 0, "STRICT_SPREAD x3 on 3 nodes");
  pg_check_spread(&pg, "just created", 1);
  rayc_placement_group four = pg_strict_spread(4);
  int rc = rayc_placement_group_wait(&four, 1500);
  CHECK(rc == RAYC_ETIMEOUT, "STRICT_SPREAD x4 on 3 nodes must stay pending, got %d", rc);
  CHECK(rayc_placement_group_remove(&four) == 0 && rayc_placement_group_remove(&pg) == 0, "remove the groups");
}

static int killnode(void)
{
  enum { N = 60 };
  rayc_ref refs[N];
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_SPREAD;
  o.max_retries = 5;
  /* a SPREAD group of three bundles: one on each node, so one is lost with node 3; of memory, so
   * that placing it again does not take the CPUs the tasks below need */
  static const rayc_resource mem[] = {{"memory", 1e6}};
  rayc_bundle bundles[3] = {{mem, 1}, {mem, 1}, {mem, 1}};
  rayc_placement_group pg;
  CHECK(rayc_placement_group_create(bundles, 3, RAYC_PG_SPREAD, "killnode", &pg) == 0, "create a SPREAD group");
  CHECK(rayc_placement_group_wait(&pg, 30000) == 0, "SPREAD x3 on 3 nodes");
  pg_check_spread(&pg, "before node 3 dies", 0);
  for (int i = 0; i < N; i++)
    refs[i] = where(1000, &o);
  usleep(300000);
  printf("READY\n");
  fflush(stdout);
  int count[4] = {0};
  for (int i = 0; i < N; i++) {
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&refs[i], id) == 0, "task %d after node 3 died", i);
    count[node_index(id)]++;
  }
  printf("after node 3 was killed, all %d tasks completed: node1 %d, node2 %d, node3 %d\n", N, count[1], count[2],
         count[3]);
  /* the bundle node 3 held is reserved again on a live node */
  CHECK(rayc_placement_group_wait(&pg, 60000) == 0, "the SPREAD group after node 3 died");
  for (int b = 0; b < 3; b++) {
    rayc_task_opts p;
    rayc_task_opts_init(&p);
    p.placement_group = &pg;
    p.bundle_index = b;
    p.num_cpus = 0;
    rayc_ref r = where(0, &p);
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&r, id) == 0, "task in bundle %d after node 3 died", b);
    CHECK(node_index(id) == 1 || node_index(id) == 2, "bundle %d is on node %d", b, node_index(id));
  }
  printf("the SPREAD group's bundle on node 3 was reserved again on a live node\n");
  return 0;
}

static rayc_task_opts needing(const char *res, rayc_resource *r)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  r->name = res;
  r->amount = 1;
  o.resources = r;
  o.nresources = 1;
  o.max_retries = 0;
  return o;
}

static void orphan(void)
{
  rayc_resource r2, r3;
  rayc_task_opts o2 = needing("host2", &r2), o3 = needing("host3", &r3);
  for (int i = 0; i < 2; i++) {
    where(600000, &o2);
    where(600000, &o3);
  }
  sleep(2); /* their workers start and run them */
  printf("READY\n");
  fflush(stdout);
  sleep(600);
}

static void drain(void)
{
  rayc_resource r3;
  rayc_task_opts o3 = needing("host3", &r3);
  rayc_ref first[2];
  for (int i = 0; i < 2; i++)
    first[i] = where(4000, &o3);
  sleep(1);
  printf("READY\n");
  fflush(stdout);
  const char *flag = getenv("DRAIN_FILE");
  CHECK(flag != NULL, "DRAIN_FILE is not set");
  for (int i = 0; i < 300 && access(flag, F_OK) != 0; i++)
    usleep(100000);
  CHECK(access(flag, F_OK) == 0, "node 3 did not start draining");
  enum { N = 20 };
  rayc_ref later[N];
  int count[4] = {0};
  char id[RAYC_NODE_ID_HEX_LEN];
  for (int i = 0; i < N; i++)
    later[i] = where(100, NULL);
  for (int i = 0; i < N; i++) {
    CHECK(node_of(&later[i], id) == 0, "task %d submitted while node 3 drained", i);
    count[node_index(id)]++;
  }
  printf("%d tasks submitted while node 3 drained: node1 %d, node2 %d, node3 %d\n", N, count[1], count[2], count[3]);
  CHECK(count[3] == 0 && count[1] + count[2] == N, "no task submitted during the drain ran on node 3");
  for (int i = 0; i < 2; i++) {
    CHECK(node_of(&first[i], id) == 0, "a task running on node 3 when it began to drain");
    CHECK(node_index(id) == 3, "the task that ran during the drain ran on node 3");
  }
  printf("both tasks running on node 3 when it began to drain completed there, without a retry\n");
  rayc_ref late = where(0, &o3);
  int rc = node_of(&late, id);
  CHECK(rc == RAYC_EINFEASIBLE, "a task needing node 3 after the drain is infeasible (got %d)", rc);
  printf("a task needing node 3 after its drain failed as infeasible\n");
}

/* 400 tasks over the cluster while the GCS is killed and restarted: all must complete. */
static void workload(void)
{
  enum { N = 400 };
  static rayc_ref refs[N];
  rayc_placement_group pg = pg_strict_spread(3);
  CHECK(rayc_placement_group_wait(&pg, 30000) == 0, "STRICT_SPREAD x3 before the GCS restart");
  for (int i = 0; i < N; i++)
    refs[i] = where(i < 20 ? 0 : 20, NULL);
  printf("READY\n");
  int count[4] = {0};
  for (int i = 0; i < N; i++) {
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&refs[i], id) == 0, "task %d while the GCS restarted", i);
    count[node_index(id)]++;
  }
  printf("%d tasks completed across a GCS restart: node1 %d, node2 %d, node3 %d\n", N, count[1], count[2], count[3]);
  /* the group outlived the GCS: reloaded from Redis as CREATED, its bundles still on their nodes */
  CHECK(rayc_placement_group_wait(&pg, 10000) == 0, "the group after the GCS restart");
  pg_check_spread(&pg, "after the GCS restart", 1);
  CHECK(rayc_placement_group_remove(&pg) == 0, "remove the group after the GCS restart");
}

/* The actor side of the GCS restart: a named detached counter placed on node 2. */
static int64_t counter_incr(const rayc_actor *a)
{
  rayc_ref r;
  rayc_buf b;
  int64_t v = -1;
  CHECK(rayc_actor_call(a, "incr", NULL, 0, NULL, &r) == 0, "call incr");
  CHECK(rayc_get(&r, 1, 60000, &b) == 0, "get incr");
  if (b.len == sizeof(v))
    memcpy(&v, b.data, sizeof(v));
  rayc_buf_release(&b, 1);
  rayc_ref_release(&r);
  return v;
}

/* Creates a detached TCounter named name (namespace "multinode") that needs 1 of resource. */
static rayc_actor detached_counter(const char *name, const char *resource)
{
  rayc_actor_opts o;
  rayc_actor_opts_init(&o);
  rayc_resource need = {.name = resource, .amount = 1};
  o.name = name;
  o.ns = "multinode";
  o.detached = 1;
  o.resources = &need;
  o.num_resources = 1;
  rayc_actor a;
  CHECK(rayc_actor_create("TCounter", NULL, 0, &o, &a) == 0, "create the detached counter %s", name);
  return a;
}

static void actor_before(void)
{
  rayc_actor a = detached_counter("gcs-ft", "host2");
  for (int64_t i = 1; i <= 3; i++)
    CHECK(counter_incr(&a) == i, "counter at %lld", (long long)i);
  printf("a named detached counter on node 2 counted to 3\n");
}

static void actor_after(void)
{
  rayc_actor a;
  rayc_actor_state st;
  int restarts = -1;
  CHECK(rayc_get_actor("gcs-ft", "multinode", &a) == 0, "the named actor after the GCS restart");
  CHECK(counter_incr(&a) == 4, "the counter kept its count across the GCS restart");
  CHECK(rayc_actor_get_state(&a, &st, &restarts) == 0 && st == RAYC_ACTOR_ALIVE && restarts == 0,
        "the actor is ALIVE and was not restarted (state %d, restarts %d)", (int)st, restarts);
  CHECK(rayc_actor_kill(&a, 1) == 0, "kill the counter");
  printf("after the GCS restart the named counter was found, at 4, never restarted\n");
}

/* Node 3 is dead: an actor that needs its "special" resource stays PENDING_CREATION. */
static void pending_before(void)
{
  rayc_actor a = detached_counter("needs-special", "special");
  rayc_actor_state st = RAYC_ACTOR_ALIVE;
  usleep(1500 * 1000); /* more than one placement retry */
  CHECK(rayc_actor_get_state(&a, &st, NULL) == 0 && st == RAYC_ACTOR_PENDING_CREATION,
        "with node 3 dead the actor is pending (state %d)", (int)st);
  printf("an actor needing node 3's 'special' resource waits while node 3 is dead\n");
}

/* Node 3 is back: the pending actor is placed there and answers. */
static void pending_after(void)
{
  rayc_actor a;
  rayc_actor_state st = RAYC_ACTOR_PENDING_CREATION;
  CHECK(rayc_get_actor("needs-special", "multinode", &a) == 0, "the pending actor by name");
  CHECK(counter_incr(&a) == 1, "the actor counts once node 3 is back");
  CHECK(rayc_actor_get_state(&a, &st, NULL) == 0 && st == RAYC_ACTOR_ALIVE, "ALIVE (state %d)", (int)st);
  CHECK(rayc_actor_kill(&a, 1) == 0, "kill it");
  printf("the pending actor was placed on the node that came back\n");
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2)
    return 2;
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  if (strcmp(argv[1], "pending_before") == 0 || strcmp(argv[1], "pending_after") == 0) {
    /* no learn_node_ids(): node 3 may be dead */
    if (argv[1][8] == 'b')
      pending_before();
    else
      pending_after();
    rayc_shutdown();
    printf("PASS %s\n", argv[1]);
    return 0;
  }
  learn_node_ids();
  if (strcmp(argv[1], "basic") == 0) {
    check_default_spreads();
    check_custom_and_strategies();
    check_object_across_nodes();
    check_placement_groups();
  } else if (strcmp(argv[1], "killnode") == 0) {
    killnode();
  } else if (strcmp(argv[1], "workload") == 0) {
    workload();
  } else if (strcmp(argv[1], "orphan") == 0) {
    orphan();
  } else if (strcmp(argv[1], "drain") == 0) {
    drain();
  } else if (strcmp(argv[1], "actor_before") == 0) {
    actor_before();
  } else if (strcmp(argv[1], "actor_after") == 0) {
    actor_after();
  } else if (strcmp(argv[1], "nodes") == 0) {
    /* learn_node_ids() above already ran a task on each of the three nodes */
  } else {
    return 2;
  }
  rayc_shutdown();
  printf("PASS %s\n", argv[1]);
  return 0;
}
