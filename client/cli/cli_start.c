/*
 * rayc start: starts this machine's node with client/launch.c, the head (--head: rayc-gcs, then
 * rayc-store and rayc-raylet) or a node joining a cluster (--address HOST:PORT), prints where it
 * runs and, with --block, stays in the foreground until SIGINT/SIGTERM or a daemon's death, then
 * stops the node.
 */
#include "client/cli/cli.h"
#include "client/launch.h"

#include "common/status.h"
#include "common/util.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

enum { CLI_STOP_GRACE_MS = 10000, CLI_PROBE_TIMEOUT_MS = 5000 };

typedef struct cli_start_conf {
  int head;
  char *address;
  int port;
  double num_cpus, num_gpus;
  int64_t memory, object_store_memory;
  char *resources;
  char *redis_address;
  char *node_ip_address;
  char *temp_dir;
  char *config;
  char *log_level;
  int block;
  int gcs_only;
} cli_start_conf_t;

#define F(field) offsetof(cli_start_conf_t, field)
static const cfg_entry_t cli_start_table[] = {
    {"head", CFG_BOOL, F(head), "false", "start the head node (runs the GCS too)"},
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the cluster's GCS, to join it"},
    {"port", CFG_INT, F(port), "6380", "head: the GCS port (0: an ephemeral port)"},
    {"num-cpus", CFG_DOUBLE, F(num_cpus), "-1", "CPUs this node offers (-1: its core count)"},
    {"num-gpus", CFG_DOUBLE, F(num_gpus), "-1", "GPUs this node offers (-1: detect; 0 for now)"},
    {"memory", CFG_INT64, F(memory), "0", "bytes of memory for tasks to reserve (0: default)"},
    {"resources", CFG_STRING, F(resources), NULL, "custom resources as JSON: '{\"name\": 2}'"},
    {"object-store-memory", CFG_INT64, F(object_store_memory), "0",
     "bytes of shared memory for objects (0: 30% of RAM)"},
    {"redis-address", CFG_STRING, F(redis_address), NULL, "head: Redis for the GCS tables"},
    {"node-ip-address", CFG_STRING, F(node_ip_address), "127.0.0.1",
     "this node's IP address, the one other nodes reach it on"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions (logs, sockets) live"},
    {"config", CFG_STRING, F(config), NULL, "YAML settings passed to every daemon"},
    {"log-level", CFG_STRING, F(log_level), NULL, "daemons' log level: debug, info, warn, error"},
    {"block", CFG_BOOL, F(block), "false", "stay in the foreground; ^C stops the node"},
    {"gcs-only", CFG_BOOL, F(gcs_only), "false", "head: run the GCS alone (no tasks here)"},
};
#undef F

static const char cli_start_summary[] =
    "Starts a node on this machine: `rayc start --head` makes a new cluster, `rayc start --address\n"
    "HOST:PORT` joins one. The session (logs, sockets) goes to <temp-dir>/session_latest.";

static void cli_start_opts(const cli_start_conf_t *c, launch_opts_t *o)
{
  launch_opts_init(o);
  o->head = c->head;
  o->gcs_address = c->address;
  o->gcs_port = c->port;
  o->node_ip = c->node_ip_address;
  o->num_cpus = c->num_cpus;
  o->num_gpus = c->num_gpus;
  o->memory = c->memory;
  o->object_store_memory = c->object_store_memory;
  o->resources_json = c->resources;
  o->redis_address = c->redis_address;
  o->temp_dir = c->temp_dir;
  o->config_file = c->config;
  o->log_level = c->log_level;
  o->gcs_only = c->gcs_only;
}

/* Returns a static message for a bad combination of flags, or NULL. */
static const char *cli_start_check(cli_start_conf_t *c)
{
  if (c->head && c->address && *c->address) {
    fprintf(stderr, "rayc start: --head starts a new cluster: ignoring the address %s "
                    "(from --address or RAYC_ADDRESS)\n", c->address);
    free(c->address);
    c->address = NULL;
  }
  if (!c->head && (!c->address || !*c->address))
    return "say --head to start a new cluster, or --address HOST:PORT to join one";
  if (!c->head && (c->gcs_only || c->redis_address))
    return "--gcs-only and --redis-address only apply to the head (--head)";
  return NULL;
}

static void cli_start_report(const cli_start_conf_t *c, const launch_result_t *r)
{
  printf("rayc: started %s\n", c->head ? "the head node of a new cluster" : "a node");
  printf("  session  %s\n  logs     %s/logs\n  GCS      %s\n", r->session_dir, r->session_dir,
         r->gcs_address);
  if (!c->gcs_only)
    printf("  raylet   port %d, socket %s\n", r->raylet_port, r->raylet_socket);
  if (c->head) {
    printf("\nTo use this cluster from this machine:\n  export RAYC_ADDRESS=%s\n", r->gcs_address);
    printf("To add a node (on another machine, with its own --node-ip-address):\n"
           "  rayc start --address %s\n", r->gcs_address);
  }
  printf("To stop this node: rayc stop%s%s\n", strcmp(c->temp_dir, "/tmp/rayc") ? " --temp-dir " : "",
         strcmp(c->temp_dir, "/tmp/rayc") ? c->temp_dir : "");
  fflush(stdout);
}

/* Before joining: checks that the GCS at address answers, so that a wrong address fails at once. */
static int cli_start_probe(const char *address)
{
  Rayc__GetAllNodeInfoReply *reply = NULL;
  char *detail = NULL;
  int rc = cli_gcs_get_nodes(address, CLI_PROBE_TIMEOUT_MS, &reply, &detail);
  if (rc < 0)
    fprintf(stderr, "rayc start: cannot reach the cluster's GCS at %s: %s\n", address,
            detail && *detail ? detail : rayc_strerror(rc));
  pb_free(reply);
  free(detail);
  return rc;
}

/* --block: waits for SIGINT/SIGTERM (blocked since before the launch) or a daemon's exit. */
static int cli_start_block(const launch_result_t *r, const sigset_t *set)
{
  int status = CLI_OK;
  printf("Blocking: ^C (SIGINT) or SIGTERM stops the node.\n");
  fflush(stdout);
  for (;;) {
    int sig = sigwaitinfo(set, NULL), wst;
    pid_t pid = sig == SIGCHLD ? waitpid(-1, &wst, WNOHANG) : 0;
    if (sig == SIGINT || sig == SIGTERM) {
      printf("rayc: received %s, stopping the node\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (pid > 0) {
      fprintf(stderr, "rayc: a daemon of the node (pid %d) exited; see %s/logs; stopping the node\n",
              (int)pid, r->session_dir);
      status = CLI_FAIL;
      break;
    }
  }
  launch_node_stop(r->session_dir, CLI_STOP_GRACE_MS, 0);
  return status;
}

int cli_start(int argc, char **argv)
{
  cli_start_conf_t c;
  int status = cli_parse("start", cli_start_summary, cli_start_table, ARRAY_LEN(cli_start_table),
                         &c, sizeof(c), argc, argv);
  if (status != CLI_CONTINUE)
    return status;
  const char *bad = cli_start_check(&c);
  launch_opts_t o;
  launch_result_t r;
  sigset_t set;
  char *err = NULL;
  if (bad) {
    fprintf(stderr, "rayc start: %s\nRun `rayc start --help` for its flags.\n", bad);
    status = CLI_USAGE;
    goto out;
  }
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  if (c.block) /* before the launch, so that a ^C while starting still stops the node */
    sigprocmask(SIG_BLOCK, &set, NULL);
  cli_start_opts(&c, &o);
  if (!c.head && cli_start_probe(c.address) < 0) {
    status = CLI_FAIL;
    goto out;
  }
  if (launch_node_start(&o, &r, &err) < 0) {
    fprintf(stderr, "rayc start: %s\n", err);
    status = CLI_FAIL;
    goto out;
  }
  cli_start_report(&c, &r);
  status = c.block ? cli_start_block(&r, &set) : CLI_OK;
out:
  free(err);
  cfg_release(cli_start_table, ARRAY_LEN(cli_start_table), &c);
  return status;
}
