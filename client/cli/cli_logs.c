/*
 * rayc logs [NAME] [--node-id ID | --node-ip IP] [--worker-id ID | --pid PID [--suffix .out|.log]]
 *           [--tail N] [--follow]: the log files of any node, from any machine that reaches the
 * GCS (Ray's `ray logs`). The GCS's node table gives every alive node's raylet; each raylet serves
 * its session's logs directory (NodeManagerService.ListLogs / GetLog, raylet/raylet_logs.c),
 * authenticated by the cluster token like every call.
 *
 *   no NAME, no worker: lists the files of the node (of every alive node without --node-*)
 *   NAME: prints that file of the node (the head without --node-*)
 *   --worker-id ID / --pid PID: a worker's stdout and stderr (.out, default) or its log (.log),
 *     from the given node, else from whichever alive node has it
 * --tail N prints the last N lines; --follow keeps printing what is appended (until interrupted).
 */
#include "client/cli/cli.h"

#include "common/ids.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_logs(int argc, char **argv);

typedef struct cli_logs_conf {
  char *address, *temp_dir, *node_id, *node_ip, *worker_id, *suffix;
  int pid, tail, follow, timeout_ms;
  cli_sec_t sec;
} cli_logs_conf_t;

#define F(field) offsetof(cli_logs_conf_t, field)
static const cfg_entry_t cli_logs_table[] = {
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the GCS (unset: <temp-dir>/session_latest/address)"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
    {"node-id", CFG_STRING, F(node_id), NULL, "the node (hex id or an unambiguous prefix)"},
    {"node-ip", CFG_STRING, F(node_ip), NULL, "the node, by its address"},
    {"worker-id", CFG_STRING, F(worker_id), NULL, "a worker's log (hex id, 56 digits)"},
    {"pid", CFG_INT, F(pid), "0", "the log of the worker with this pid (it must be running)"},
    {"suffix", CFG_STRING, F(suffix), ".out", "a worker's .out (stdout and stderr) or .log (its rayc log)"},
    {"tail", CFG_INT, F(tail), "0", "print only the last N lines (0: the whole file)"},
    {"follow", CFG_BOOL, F(follow), "false", "keep printing what is appended"},
    {"timeout-ms", CFG_INT, F(timeout_ms), "10000", "how long to wait for each answer"},
    CLI_SEC_SETTINGS(cli_logs_conf_t, sec),
};
#undef F

static const char cli_logs_summary[] =
    "Lists or prints the log files of any node of the cluster: rayc logs [NAME] [--node-id ID | --node-ip IP]\n"
    "[--worker-id ID | --pid PID] [--tail N] [--follow]. Without NAME or a worker: the files of the node\n"
    "(of every node). NAME is a file of the node's logs directory (raylet.log, gcs.out, worker-....out).";

typedef struct cli_logs_run {
  cli_logs_conf_t c;
  const char *name;
  cli_auth_t auth;
  rpc_client_t *client;
  Rayc__GetAllNodeInfoReply *nodes;
} cli_logs_run_t;

static void logs_node_hex(const Rayc__NodeInfo *n, char *hex)
{
  hex[0] = '\0';
  if (n->node_id.len == ID_NODE_SIZE)
    id_hex(n->node_id.data, ID_NODE_SIZE, hex);
}

/* Whether node n is the one the flags name (with no flag: every node, or the head when head_only). */
static int logs_node_match(const cli_logs_run_t *r, const Rayc__NodeInfo *n, int head_only)
{
  char hex[2 * ID_NODE_SIZE + 1];
  logs_node_hex(n, hex);
  if (n->state != RAYC__NODE_STATE__NODE_ALIVE)
    return 0;
  if (r->c.node_id && *r->c.node_id)
    return strncmp(hex, r->c.node_id, strlen(r->c.node_id)) == 0;
  if (r->c.node_ip && *r->c.node_ip)
    return strcmp(n->ip, r->c.node_ip) == 0;
  return !head_only || n->is_head;
}

static rpc_channel_t *logs_raylet(cli_logs_run_t *r, const Rayc__NodeInfo *n)
{
  int v6 = strchr(n->ip, ':') != NULL;
  char addr[300];
  snprintf(addr, sizeof(addr), "%s%s%s:%d", v6 ? "[" : "", n->ip, v6 ? "]" : "", n->raylet_port);
  return rpc_channel_get(r->client, addr);
}

/* Calls the raylet of n; 0 with *resp, or a code with the error printed unless quiet. */
static int logs_call(cli_logs_run_t *r, const Rayc__NodeInfo *n, const char *method, const ProtobufCMessage *req,
                     ProtobufCMessage **resp, int quiet)
{
  char *detail = NULL;
  int rc = rpc_call_sync(logs_raylet(r, n), &rayc__node_manager_service__descriptor, method, req, r->c.timeout_ms, resp,
                         &detail);
  if (rc != 0 && !quiet) {
    fprintf(stderr, "rayc logs: node %s (%s): %s\n", n->ip, method, detail && *detail ? detail : rayc_strerror(rc));
    cli_auth_hint(stderr, &r->auth, rc);
  }
  free(detail);
  return rc;
}

static int logs_list(cli_logs_run_t *r)
{
  int status = CLI_OK, any = 0;
  for (size_t i = 0; i < r->nodes->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes->nodes[i];
    if (!logs_node_match(r, n, 0))
      continue;
    any = 1;
    Rayc__ListLogsRequest req = RAYC__LIST_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    if (logs_call(r, n, "ListLogs", &req.base, &resp, 0) != 0) {
      status = CLI_FAIL;
      continue;
    }
    char hex[2 * ID_NODE_SIZE + 1];
    logs_node_hex(n, hex);
    printf("node %s (%s%s):\n", hex, n->ip, n->is_head ? ", head" : "");
    const Rayc__ListLogsReply *l = (const Rayc__ListLogsReply *)resp;
    for (size_t k = 0; k < l->n_files; k++)
      printf("  %-40s %12llu\n", l->files[k]->name, (unsigned long long)l->files[k]->size);
    pb_free(resp);
  }
  if (!any) {
    fprintf(stderr, "rayc logs: no alive node matches the --node-id/--node-ip given\n");
    return CLI_FAIL;
  }
  return status;
}

/* Fills the request's file from the flags; 0 or CLI_USAGE (printed). */
static int logs_request(cli_logs_run_t *r, Rayc__GetLogRequest *q, uint8_t *wid)
{
  rayc__get_log_request__init(q);
  q->name = (char *)(r->name ? r->name : "");
  q->suffix = r->c.suffix;
  q->pid = r->c.pid;
  q->tail_lines = r->c.tail;
  if (r->c.worker_id && *r->c.worker_id) {
    if (id_from_hex(r->c.worker_id, wid, ID_WORKER_SIZE) != 0) {
      fprintf(stderr, "rayc logs: --worker-id wants %d hex digits, not '%s'\n", 2 * ID_WORKER_SIZE, r->c.worker_id);
      return CLI_USAGE;
    }
    q->worker_id = pb_bytes(wid, ID_WORKER_SIZE);
  }
  return 0;
}

/* Prints the file from node n; with --follow, then what is appended. */
static int logs_print(cli_logs_run_t *r, const Rayc__NodeInfo *n, Rayc__GetLogRequest *q, ProtobufCMessage *first)
{
  ProtobufCMessage *resp = first;
  for (;;) {
    const Rayc__GetLogReply *g = (const Rayc__GetLogReply *)resp;
    fwrite(g->data.data, 1, g->data.len, stdout);
    fflush(stdout);
    uint64_t next = g->offset + g->data.len;
    int more = next < g->size;
    pb_free(resp);
    if (!more && !r->c.follow)
      return CLI_OK;
    if (!more)
      usleep(500 * 1000);
    q->tail_lines = 0;
    q->offset = next;
    if (logs_call(r, n, "GetLog", &q->base, &resp, 0) != 0)
      return CLI_FAIL;
  }
}

/* NAME from the named node (or the head); a worker's log from the named node or any that has it. */
static int logs_get(cli_logs_run_t *r)
{
  uint8_t wid[ID_WORKER_SIZE];
  Rayc__GetLogRequest q;
  if (logs_request(r, &q, wid) != 0)
    return CLI_USAGE;
  int named = (r->c.node_id && *r->c.node_id) || (r->c.node_ip && *r->c.node_ip), search = !named && !*q.name;
  int last_rc = RAYC_ENOT_FOUND, tried = 0;
  for (size_t i = 0; i < r->nodes->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes->nodes[i];
    if (!logs_node_match(r, n, !search))
      continue;
    tried++;
    ProtobufCMessage *resp = NULL;
    last_rc = logs_call(r, n, "GetLog", &q.base, &resp, search);
    if (last_rc == 0)
      return logs_print(r, n, &q, resp);
    if (!search || last_rc != RAYC_ENOT_FOUND)
      return last_rc == RAYC_EINVALID_ARGUMENT ? CLI_USAGE : CLI_FAIL;
  }
  if (!tried)
    fprintf(stderr, "rayc logs: no alive node matches the --node-id/--node-ip given\n");
  else if (search)
    fprintf(stderr, "rayc logs: no alive node has the log of that worker (%d asked); give --node-ip if it ended\n",
            tried);
  return CLI_FAIL;
}

static int logs_connect(cli_logs_run_t *r)
{
  char address[256];
  if (cli_find_address(r->c.address, r->c.temp_dir, address, sizeof(address)) < 0) {
    fprintf(stderr, "rayc logs: no cluster found (no --address, no RAYC_ADDRESS, no %s/session_latest/address)\n",
            r->c.temp_dir);
    return CLI_FAIL;
  }
  if (cli_auth_init(&r->auth, &r->c.sec, r->c.temp_dir, "logs") < 0 ||
      !(r->client = cli_client_create(&r->auth, "logs")))
    return CLI_FAIL;
  char *detail = NULL;
  int rc = cli_gcs_get_nodes(&r->auth, address, r->c.timeout_ms, &r->nodes, &detail);
  if (rc != 0) {
    fprintf(stderr, "rayc logs: cannot ask the GCS at %s for the nodes: %s\n", address,
            detail && *detail ? detail : rayc_strerror(rc));
    cli_auth_hint(stderr, &r->auth, rc);
    free(detail);
    return CLI_FAIL;
  }
  return 0;
}

int cli_logs(int argc, char **argv)
{
  cli_logs_run_t r;
  memset(&r, 0, sizeof(r));
  char **args = xcalloc((size_t)argc + 1, sizeof(*args));
  int nargs = 0;
  for (int i = 0; i < argc; i++) { /* NAME: the first argument that is not a flag or a flag's value */
    int value = 0;
    for (size_t k = 0; i > 0 && argv[i][0] == '-' && !strchr(argv[i], '=') && k < ARRAY_LEN(cli_logs_table); k++)
      value |= strcmp(argv[i] + 2, cli_logs_table[k].name) == 0 && cli_logs_table[k].type != CFG_BOOL;
    if (i > 0 && !r.name && argv[i][0] != '-') {
      r.name = argv[i];
      continue;
    }
    args[nargs++] = argv[i];
    if (value && i + 1 < argc)
      args[nargs++] = argv[++i];
  }
  int status = cli_parse("logs", cli_logs_summary, cli_logs_table, ARRAY_LEN(cli_logs_table), &r.c, sizeof(r.c), nargs,
                         args);
  free(args);
  if (status != CLI_CONTINUE)
    return status;
  status = logs_connect(&r);
  if (status == 0) {
    int want_file = r.name || (r.c.worker_id && *r.c.worker_id) || r.c.pid > 0;
    status = want_file ? logs_get(&r) : logs_list(&r);
  }
  pb_free(r.nodes);
  rpc_client_destroy(r.client);
  cli_auth_release(&r.auth);
  cfg_release(cli_logs_table, ARRAY_LEN(cli_logs_table), &r.c);
  return status;
}
