/*
 * Driver for the scheduling test (tests/netns/sched_multinode.sh). Runs inside host 1 against a
 * cluster whose nodes carry the custom resources host1, host2 and host3, and exits non-zero on the
 * first failed check.
 *
 *   sched affinity HEX   hard NODE_AFFINITY tasks to node HEX (which has just joined) run there
 *   sched default N MS   N DEFAULT tasks of MS ms each, submitted here: every node runs a share
 *                        (at least N/8), not only this one
 *   sched spread N       N SPREAD tasks of 300 ms, after a DEFAULT round that leaves idle workers
 *                        on every node: each node runs N/3, give or take N/10
 */
#include <rayc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                    \
  do {                                      \
    if (!(cond)) {                          \
      printf("FAIL: " __VA_ARGS__);         \
      printf(" [%s]\n", rayc_last_error()); \
      exit(1);                              \
    }                                       \
  } while (0)

static char ids[4][RAYC_NODE_ID_HEX_LEN];

static rayc_ref where(int64_t ms, const rayc_task_opts *o)
{
  rayc_arg a = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref r;
  CHECK(rayc_remote("where", &a, 1, o, &r) == 0, "submit where");
  return r;
}

/* The node id a where() ran on; 0 or the error. */
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
  }
}

/* Runs n where(ms) tasks with o and counts them per node into count[0..3]. */
static void run_counted(int n, int64_t ms, const rayc_task_opts *o, int *count)
{
  rayc_ref *refs = calloc((size_t)n, sizeof(*refs));
  CHECK(refs != NULL, "calloc");
  for (int i = 0; i < n; i++)
    refs[i] = where(ms, o);
  for (int i = 0; i < n; i++) {
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&refs[i], id) == 0, "task %d", i);
    count[node_index(id)]++;
  }
  free(refs);
}

static void check_affinity(const char *hex)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_NODE_AFFINITY;
  o.node_affinity = hex;
  for (int i = 0; i < 3; i++) {
    rayc_ref r = where(0, &o);
    char id[RAYC_NODE_ID_HEX_LEN];
    CHECK(node_of(&r, id) == 0, "hard NODE_AFFINITY task %d to the node that just joined", i);
    CHECK(strcmp(id, hex) == 0, "NODE_AFFINITY task ran on %.8s, not on %.8s", id, hex);
  }
  printf("3 hard NODE_AFFINITY tasks ran on the node that had just joined\n");
}

static void check_default(int n, int64_t ms)
{
  int count[4] = {0};
  run_counted(n, ms, NULL, count);
  printf("%d DEFAULT tasks of %lld ms: node1 %d, node2 %d, node3 %d\n", n, (long long)ms, count[1], count[2], count[3]);
  CHECK(count[0] == 0, "tasks ran on an unknown node");
  for (int i = 1; i <= 3; i++)
    CHECK(count[i] >= n / 8, "node %d ran %d of %d DEFAULT tasks (at least %d expected)", i, count[i], n, n / 8);
}

static void check_spread(int n)
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  o.strategy = RAYC_STRATEGY_SPREAD;
  int count[4] = {0};
  run_counted(n, 300, &o, count);
  printf("%d SPREAD tasks: node1 %d, node2 %d, node3 %d\n", n, count[1], count[2], count[3]);
  CHECK(count[0] == 0, "tasks ran on an unknown node");
  for (int i = 1; i <= 3; i++)
    CHECK(abs(count[i] - n / 3) <= n / 10, "node %d ran %d of %d SPREAD tasks (%d +- %d expected)", i, count[i], n,
          n / 3, n / 10);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2)
    return 2;
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  if (strcmp(argv[1], "affinity") == 0 && argc == 3) {
    check_affinity(argv[2]);
  } else if (strcmp(argv[1], "default") == 0 && argc == 4) {
    learn_node_ids();
    check_default(atoi(argv[2]), atoll(argv[3]));
  } else if (strcmp(argv[1], "spread") == 0 && argc == 3) {
    learn_node_ids();
    int warm[4] = {0};
    run_counted(12, 300, NULL, warm); /* workers of this job start on every node */
    check_spread(atoi(argv[2]));
  } else {
    return 2;
  }
  rayc_shutdown();
  printf("PASS %s\n", argv[1]);
  return 0;
}
