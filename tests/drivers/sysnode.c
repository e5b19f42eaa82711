/*
 * Driver for the systemd test (tests/system/systemd_cluster.sh). Runs on the head of a cluster whose
 * daemons systemd runs, with no address or token given: rayc_init(NULL) must find the node by
 * itself (common/sysnode.h). The head's raylet offers the custom resource "host1", the other
 * node's "host2".
 *
 *   sysnode across    tasks needing host1 and host2: they must run on two different nodes;
 *                     prints "node1 <id>" and "node2 <id>"
 *   sysnode on2       one task needing host2 (waits up to 120 s): prints "node2 <id>"
 *   sysnode long2     prints READY, then a 6 s task needing host2 (max_retries 3) that the script
 *                     interrupts by killing the node's raylet: the task must still complete
 *                     (retried once the node is back); prints "node2 <id>"
 * Exits non-zero on the first failed check.
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

/* Runs where(ms) needing resource res; writes the node id that ran it into out. */
static void run_on(const char *res, int64_t ms, char out[RAYC_NODE_ID_HEX_LEN])
{
  rayc_task_opts o;
  rayc_task_opts_init(&o);
  rayc_resource r = {res, 1};
  o.resources = &r;
  o.nresources = 1;
  o.max_retries = 3;
  rayc_arg a = RAYC_ARG_VAL(&ms, sizeof(ms));
  rayc_ref ref;
  CHECK(rayc_remote("where", &a, 1, &o, &ref) == 0, "submit where on %s", res);
  rayc_buf b;
  CHECK(rayc_get(&ref, 1, 120000, &b) == 0, "where on %s", res);
  snprintf(out, RAYC_NODE_ID_HEX_LEN, "%.*s", (int)b.len, (const char *)b.data);
  rayc_buf_release(&b, 1);
  rayc_ref_release(&ref);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2)
    return 2;
  CHECK(rayc_init(NULL) == 0, "rayc_init with no address (the systemd node)");
  char n1[RAYC_NODE_ID_HEX_LEN] = "", n2[RAYC_NODE_ID_HEX_LEN] = "";
  if (strcmp(argv[1], "across") == 0) {
    run_on("host1", 0, n1);
    run_on("host2", 0, n2);
    CHECK(strlen(n1) == 56 && strlen(n2) == 56 && strcmp(n1, n2) != 0, "two nodes (%s, %s)", n1, n2);
    printf("node1 %s\n", n1);
  } else if (strcmp(argv[1], "on2") == 0) {
    run_on("host2", 0, n2);
  } else if (strcmp(argv[1], "long2") == 0) {
    printf("READY\n");
    run_on("host2", 6000, n2);
  } else {
    return 2;
  }
  printf("node2 %s\n", n2);
  rayc_shutdown();
  printf("PASS %s\n", argv[1]);
  return 0;
}
