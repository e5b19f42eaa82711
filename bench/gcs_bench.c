/*
 * gcs_bench: the GCS's cost of scale (BENCH.md gcs_bytes_per_actor, gcs_bytes_per_node).
 *
 *   gcs_bench actors|nodes COUNT REPS GCS_ADDRESS GCS_PID
 *
 * Talks to a running rayc-gcs over gRPC with the cluster token (found as drivers find it:
 * RAYC_TOKEN_FILE, RAYC_TOKEN, the session's file) and reads its resident set from
 * /proc/GCS_PID/status before and after each repetition. Prints `rep NAME BYTES B` per repetition.
 *
 * - actors: registers COUNT detached actors that need a resource no node has, so each stays in the
 *   GCS's actor table as PENDING_CREATION (a table entry with its creation spec, but no worker
 *   process: the figure is the GCS's own cost, which is what Ray's ~190 KB/actor measures too).
 * - nodes: registers COUNT nodes with fresh ids at an address nothing listens on; the growth is
 *   measured 1.5 s later, once the GCS has opened a health-check channel to each of them and before
 *   the checks mark them dead (the GCS keeps dead nodes in its table too).
 *
 * Run it against a head used for nothing else: the registrations stay until the head stops.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/ids.h"
#include "common/log.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/token.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_actor.pb-c.h"

#define CALL_TIMEOUT_MS 10000

static long rss_bytes(const char *pid)
{
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%s/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kib = -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

static int register_actor(rpc_channel_t *ch, const uint8_t job[ID_JOB_SIZE], char **detail)
{
  uint8_t actor_id[ID_ACTOR_SIZE], task_id[ID_TASK_SIZE];
  id_random(actor_id, 12);
  memcpy(actor_id + 12, job, ID_JOB_SIZE);
  id_random(task_id, ID_TASK_SIZE);
  Rayc__ResourceEntry want = RAYC__RESOURCE_ENTRY__INIT, *wantp = &want;
  want.name = (char *)"gcs_bench_no_node_has_this";
  want.amount = 1;
  Rayc__TaskSpec spec = RAYC__TASK_SPEC__INIT;
  spec.type = RAYC__TASK_TYPE__ACTOR_CREATION_TASK;
  spec.task_id = (ProtobufCBinaryData){ID_TASK_SIZE, task_id};
  spec.job_id = (ProtobufCBinaryData){ID_JOB_SIZE, (uint8_t *)job};
  spec.actor_id = (ProtobufCBinaryData){ID_ACTOR_SIZE, actor_id};
  spec.function_name = (char *)"BenchActor";
  spec.resources = &wantp;
  spec.n_resources = 1;
  Rayc__RegisterActorRequest req = RAYC__REGISTER_ACTOR_REQUEST__INIT;
  req.creation_spec = &spec;
  req.ray_namespace = (char *)"gcs_bench";
  req.detached = 1;
  ProtobufCMessage *resp = NULL;
  int rc = rpc_call_sync(ch, &rayc__actor_info_gcs_service__descriptor, "RegisterActor", &req.base, CALL_TIMEOUT_MS,
                         &resp, detail);
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  return rc;
}

static int register_node(rpc_channel_t *ch, int i, char **detail)
{
  uint8_t node_id[ID_NODE_SIZE];
  id_random(node_id, ID_NODE_SIZE);
  char host[32];
  snprintf(host, sizeof(host), "bench-node-%d", i);
  Rayc__ResourceEntry cpu = RAYC__RESOURCE_ENTRY__INIT, *cpup = &cpu;
  cpu.name = (char *)"CPU";
  cpu.amount = 2;
  Rayc__NodeInfo n = RAYC__NODE_INFO__INIT;
  n.node_id = (ProtobufCBinaryData){ID_NODE_SIZE, node_id};
  n.ip = (char *)"127.0.0.1";
  n.raylet_port = 1; /* nothing listens there: health checks fail later, after the measurement */
  n.object_manager_port = 1;
  n.hostname = host;
  n.resources_total = &cpup;
  n.n_resources_total = 1;
  n.resources_available = &cpup;
  n.n_resources_available = 1;
  Rayc__RegisterNodeRequest req = RAYC__REGISTER_NODE_REQUEST__INIT;
  req.node = &n;
  ProtobufCMessage *resp = NULL;
  int rc = rpc_call_sync(ch, &rayc__node_info_gcs_service__descriptor, "RegisterNode", &req.base, CALL_TIMEOUT_MS,
                         &resp, detail);
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  return rc;
}

int main(int argc, char **argv)
{
  if (argc != 6 || (strcmp(argv[1], "actors") != 0 && strcmp(argv[1], "nodes") != 0)) {
    fprintf(stderr, "usage: gcs_bench actors|nodes COUNT REPS GCS_ADDRESS GCS_PID\n");
    return 2;
  }
  int actors = strcmp(argv[1], "actors") == 0;
  int count = atoi(argv[2]), reps = atoi(argv[3]);
  const char *address = argv[4], *pid = argv[5];
  const char *metric = actors ? "gcs_bytes_per_actor" : "gcs_bytes_per_node";
  if (count <= 0 || reps <= 0) {
    printf("error %s COUNT and REPS must be positive\n", metric);
    return 2;
  }
  log_init("gcs_bench", LOG_WARN);
  char *token = NULL, *err = NULL;
  int rc = token_find(NULL, NULL, &token, NULL, &err);
  if (rc != 0 && rc != RAYC_ENOT_FOUND) {
    printf("error %s no cluster token: %s\n", metric, err ? err : rayc_strerror(rc));
    free(err);
    return 1;
  }
  free(err);
  rpc_client_opts_t opts = {.token = token};
  rpc_client_t *c = rpc_client_create(&opts);
  if (!c) {
    printf("error %s cannot create an rpc client\n", metric);
    token_free(token);
    return 1;
  }
  rpc_channel_t *ch = rpc_channel_get(c, address);
  uint8_t job[ID_JOB_SIZE];
  id_random(job, ID_JOB_SIZE);
  int status = 0;
  for (int r = 0; r < reps && status == 0; r++) {
    long before = rss_bytes(pid);
    for (int i = 0; i < count; i++) {
      char *detail = NULL;
      rc = actors ? register_actor(ch, job, &detail) : register_node(ch, r * count + i, &detail);
      if (rc != 0) {
        printf("error %s registration %d failed: %s\n", metric, i, detail ? detail : rayc_strerror(rc));
        free(detail);
        status = 1;
        break;
      }
    }
    if (!actors && status == 0)
      nanosleep(&(struct timespec){1, 500 * 1000 * 1000}, NULL); /* the first health checks */
    long after = rss_bytes(pid);
    if (status == 0 && (before < 0 || after < 0)) {
      printf("error %s cannot read the resident set of pid %s\n", metric, pid);
      status = 1;
    }
    if (status == 0)
      printf("rep %s %.1f B\n", metric, (double)(after - before) / count);
    fflush(stdout);
  }
  rpc_client_destroy(c);
  token_free(token);
  return status;
}
