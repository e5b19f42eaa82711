/*
 * The driver of the job tests, run as a job's entrypoint from its working directory (the task
 * library, libjob_tasks.so, comes with it through the runtime env's code_path).
 *
 *   job_driver spread N MS NODES   N jt_burn(MS) tasks with SPREAD; prints "burned_ms N*MS", the
 *                                  nodes they ran on, and fails unless they ran on NODES nodes
 *                                  (NODES 0: any number)
 *   job_driver spread N MS NODES A  the same, and A JtPin actors each called once; prints
 *                                  "actors A" and "tasks_run N+2A" (creations and calls count)
 *   job_driver pull N BYTES        N jt_blob(BYTES) tasks with SPREAD, each read here; prints
 *                                  "pulled_bytes X": the bytes of the blobs made on other nodes
 *   job_driver hold N MS           N jt_sleep(MS) tasks (1 CPU each); prints READY when they
 *                                  run, then waits for them
 * Exits 0 when every check passed.
 */
#include <rayc.h>

#include <stdint.h>
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

static rayc_ref submit(const char *fn, int64_t arg, int strategy)
{
  rayc_arg a = RAYC_ARG_VAL(&arg, sizeof(arg));
  rayc_task_opts o = {.strategy = strategy, .num_cpus = 1, .num_returns = 1};
  rayc_ref r;
  CHECK(rayc_remote(fn, &a, 1, &o, &r) == 0, "submit %s", fn);
  return r;
}

/* Waits for r (a node id result) into out. */
static void node_of(rayc_ref *r, char *out)
{
  rayc_buf b;
  CHECK(rayc_get(r, 1, 300000, &b) == 0, "get");
  snprintf(out, RAYC_NODE_ID_HEX_LEN, "%.*s", (int)b.len, (const char *)b.data);
  rayc_buf_release(&b, 1);
  rayc_ref_release(r);
}

static int spread(int n, int64_t ms, int want_nodes)
{
  rayc_ref *refs = calloc((size_t)n, sizeof(*refs));
  char(*nodes)[RAYC_NODE_ID_HEX_LEN] = calloc((size_t)n, RAYC_NODE_ID_HEX_LEN);
  for (int i = 0; i < n; i++)
    refs[i] = submit("jt_burn", ms, RAYC_STRATEGY_SPREAD);
  int distinct = 0;
  for (int i = 0; i < n; i++) {
    node_of(&refs[i], nodes[i]);
    int seen = 0;
    for (int k = 0; k < i; k++)
      seen |= strcmp(nodes[k], nodes[i]) == 0;
    distinct += !seen;
  }
  printf("burned_ms %lld\nnodes %d\n", (long long)n * ms, distinct);
  CHECK(want_nodes <= 0 || distinct == want_nodes, "the tasks ran on %d nodes, not %d", distinct, want_nodes);
  free(nodes);
  free(refs);
  return 0;
}

/* Creates n JtPin actors and calls each once; prints what ran. */
static void actors(int n, int tasks)
{
  for (int i = 0; i < n; i++) {
    rayc_actor a;
    CHECK(rayc_actor_create("JtPin", NULL, 0, NULL, &a) == 0, "create actor %d", i);
    rayc_task_opts o = {.num_returns = 1};
    rayc_ref r;
    CHECK(rayc_actor_call(&a, "where", NULL, 0, &o, &r) == 0, "call actor %d", i);
    char node[RAYC_NODE_ID_HEX_LEN];
    node_of(&r, node);
  }
  printf("actors %d\ntasks_run %d\n", n, tasks + 2 * n);
}

static int pull(int n, int64_t bytes)
{
  char here[RAYC_NODE_ID_HEX_LEN];
  CHECK(rayc_node_id(here) == 0, "rayc_node_id");
  rayc_ref *refs = calloc((size_t)n * 2, sizeof(*refs));
  int64_t pulled = 0;
  for (int i = 0; i < n; i++) {
    rayc_arg a = RAYC_ARG_VAL(&bytes, sizeof(bytes));
    rayc_task_opts o = {.strategy = RAYC_STRATEGY_SPREAD, .num_cpus = 1, .num_returns = 2};
    CHECK(rayc_remote("jt_blob", &a, 1, &o, &refs[2 * i]) == 0, "submit jt_blob");
  }
  for (int i = 0; i < n; i++) {
    rayc_buf b[2];
    CHECK(rayc_get(&refs[2 * i], 2, 300000, b) == 0, "get blob %d", i);
    CHECK(b[0].len == (size_t)bytes && ((const uint8_t *)b[0].data)[bytes - 1] == (uint8_t)(bytes - 1), "blob %d", i);
    if (b[1].len != strlen(here) || memcmp(b[1].data, here, b[1].len) != 0)
      pulled += bytes; /* made on another node: read here through this node's store */
    rayc_buf_release(b, 2);
    rayc_ref_release(&refs[2 * i]);
    rayc_ref_release(&refs[2 * i + 1]);
  }
  printf("pulled_bytes %lld\n", (long long)pulled);
  CHECK(pulled > 0, "no blob was made on another node");
  free(refs);
  return 0;
}

static int hold(int n, int64_t ms)
{
  rayc_ref *refs = calloc((size_t)n, sizeof(*refs));
  for (int i = 0; i < n; i++)
    refs[i] = submit("jt_sleep", ms, RAYC_STRATEGY_DEFAULT);
  printf("READY\n");
  fflush(stdout);
  for (int i = 0; i < n; i++) {
    char node[RAYC_NODE_ID_HEX_LEN];
    node_of(&refs[i], node);
  }
  free(refs);
  return 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 4) {
    fprintf(stderr, "usage: job_driver spread N MS NODES | pull N BYTES | hold N MS\n");
    return 2;
  }
  CHECK(rayc_init(NULL) == 0, "rayc_init");
  int rc = 2;
  if (strcmp(argv[1], "spread") == 0 && argc >= 5) {
    rc = spread(atoi(argv[2]), atoll(argv[3]), atoi(argv[4]));
    if (argc >= 6)
      actors(atoi(argv[5]), atoi(argv[2]));
  } else if (strcmp(argv[1], "pull") == 0)
    rc = pull(atoi(argv[2]), atoll(argv[3]));
  else if (strcmp(argv[1], "hold") == 0)
    rc = hold(atoi(argv[2]), atoll(argv[3]));
  rayc_shutdown();
  return rc;
}
