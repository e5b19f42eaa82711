/*
 * rayc list actors [--format table|json]: the cluster's actors as the GCS knows them (Ray's
 * `ray list actors`): id, class, name, state, restarts, where it runs, and why it died.
 * rayc list nodes: every node, its state (ALIVE, ALIVE draining, DEAD) and why it died ("drained"
 * for a node `rayc stop` drained). rayc list jobs: every job, RUNNING or FINISHED, and why it ended.
 * rayc list placement-groups: id, name, strategy, state, bundles and where each is reserved.
 */
#include "client/cli/cli.h"

#include "common/ids.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs_actor.pb-c.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_list(int argc, char **argv);

typedef struct cli_list_conf {
  char *address;
  char *temp_dir;
  char *format;
  int timeout_ms;
  cli_sec_t sec;
} cli_list_conf_t;

#define F(field) offsetof(cli_list_conf_t, field)
static const cfg_entry_t cli_list_table[] = {
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the GCS (unset: <temp-dir>/session_latest/address)"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
    {"format", CFG_STRING, F(format), "table", "table or json"},
    {"timeout-ms", CFG_INT, F(timeout_ms), "5000", "how long to wait for the GCS"},
    CLI_SEC_SETTINGS(cli_list_conf_t, sec),
};
#undef F

static const char cli_list_summary[] =
    "Lists the cluster's actors, nodes, jobs or placement groups: rayc list actors|nodes|jobs|placement-groups "
    "[--format table|json].";

static const char *state_name(Rayc__ActorState s)
{
  static const char *names[] = {"PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"};
  return (unsigned)s < 4 ? names[s] : "UNKNOWN";
}

static void json_str(const char *s)
{
  putchar('"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void print_json(const Rayc__ListActorsReply *r)
{
  printf("[");
  for (size_t i = 0; i < r->n_actors; i++) {
    const Rayc__ActorInfo *a = r->actors[i];
    char id[33], job[9];
    id_hex(a->actor_id.data, a->actor_id.len == ID_ACTOR_SIZE ? ID_ACTOR_SIZE : 0, id);
    id_hex(a->job_id.data, a->job_id.len == ID_JOB_SIZE ? ID_JOB_SIZE : 0, job);
    printf("%s\n  {\"actor_id\": \"%s\", \"class_name\": ", i ? "," : "", id);
    json_str(a->class_name);
    printf(", \"name\": ");
    json_str(a->name);
    printf(", \"namespace\": ");
    json_str(a->ray_namespace);
    printf(", \"state\": \"%s\", \"job_id\": \"%s\", \"num_restarts\": %d, \"max_restarts\": %d, "
           "\"detached\": %s, \"address\": ",
           state_name(a->state), job, a->num_restarts, a->max_restarts, a->detached ? "true" : "false");
    if (a->address)
      printf("\"%s:%d\"", a->address->ip, a->address->port);
    else
      printf("null");
    printf(", \"death_cause\": \"%s\", \"death_message\": ",
           protobuf_c_enum_descriptor_get_value(&rayc__actor_death_cause__descriptor, a->death_cause)
               ? protobuf_c_enum_descriptor_get_value(&rayc__actor_death_cause__descriptor, a->death_cause)->name
               : "?");
    json_str(a->death_message);
    printf("}");
  }
  printf("%s]\n", r->n_actors ? "\n" : "");
}

static void print_table(const Rayc__ListActorsReply *r)
{
  printf("%-32s  %-16s  %-16s  %-16s  %8s  %-21s  %s\n", "ACTOR_ID", "CLASS", "NAME", "STATE", "RESTARTS", "ADDRESS",
         "DEATH");
  for (size_t i = 0; i < r->n_actors; i++) {
    const Rayc__ActorInfo *a = r->actors[i];
    char id[33], addr[80] = "-";
    id_hex(a->actor_id.data, a->actor_id.len == ID_ACTOR_SIZE ? ID_ACTOR_SIZE : 0, id);
    if (a->address)
      snprintf(addr, sizeof(addr), "%s:%d", a->address->ip, a->address->port);
    printf("%-32s  %-16s  %-16s  %-16s  %8d  %-21s  %s\n", id, a->class_name, *a->name ? a->name : "-",
           state_name(a->state), a->num_restarts, addr, a->state == RAYC__ACTOR_STATE__ACTOR_DEAD ? a->death_message : "");
  }
  printf("%zu actor%s\n", r->n_actors, r->n_actors == 1 ? "" : "s");
}

static int list_actors(const cli_list_conf_t *c, const char *address)
{
  cli_auth_t auth;
  rpc_client_t *client = cli_auth_init(&auth, &c->sec, c->temp_dir, "list actors") < 0
                             ? NULL
                             : cli_client_create(&auth, "list actors");
  Rayc__ListActorsRequest req = RAYC__LIST_ACTORS_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = client ? rpc_call_sync(rpc_channel_get(client, address), &rayc__actor_info_gcs_service__descriptor,
                                  "ListActors", &req.base, c->timeout_ms, &resp, &detail)
                  : RAYC_EINTERNAL;
  rpc_client_destroy(client);
  if (rc != 0) {
    fprintf(stderr, "rayc list actors: cannot query the GCS at %s: %s\n", address,
            detail && *detail ? detail : rayc_strerror(rc));
    cli_auth_hint(stderr, &auth, rc);
    cli_auth_release(&auth);
    free(detail);
    return CLI_FAIL;
  }
  cli_auth_release(&auth);
  if (strcmp(c->format, "json") == 0)
    print_json((Rayc__ListActorsReply *)resp);
  else
    print_table((Rayc__ListActorsReply *)resp);
  pb_free(resp);
  return CLI_OK;
}

/* ---- placement groups ---- */

static const char *pg_state(Rayc__PlacementGroupState s)
{
  static const char *names[] = {"PENDING", "CREATED", "REMOVED", "RESCHEDULING"};
  return (unsigned)s < 4 ? names[s] : "UNKNOWN";
}

static const char *pg_strategy(Rayc__PlacementStrategy s)
{
  static const char *names[] = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"};
  return (unsigned)s < 4 ? names[s] : "UNKNOWN";
}

static void print_pg_json(const Rayc__GetAllPlacementGroupReply *r)
{
  printf("[");
  for (size_t i = 0; i < r->n_placement_groups; i++) {
    const Rayc__PlacementGroupInfo *g = r->placement_groups[i];
    char id[2 * ID_PG_SIZE + 1], job[9];
    id_hex(g->placement_group_id.data, g->placement_group_id.len == ID_PG_SIZE ? ID_PG_SIZE : 0, id);
    id_hex(g->creator_job_id.data, g->creator_job_id.len == ID_JOB_SIZE ? ID_JOB_SIZE : 0, job);
    printf("%s\n  {\"placement_group_id\": \"%s\", \"name\": ", i ? "," : "", id);
    json_str(g->name);
    printf(", \"strategy\": \"%s\", \"state\": \"%s\", \"creator_job_id\": \"%s\", \"detached\": %s, "
           "\"state_detail\": ",
           pg_strategy(g->strategy), pg_state(g->state), job, g->is_detached ? "true" : "false");
    json_str(g->state_detail);
    printf(", \"bundles\": [");
    for (size_t b = 0; b < g->n_bundles; b++) {
      const Rayc__Bundle *x = g->bundles[b];
      char node[2 * ID_NODE_SIZE + 1];
      printf("%s{\"index\": %d, \"resources\": {", b ? ", " : "", x->index);
      for (size_t k = 0; k < x->n_resources; k++) {
        printf("%s", k ? ", " : "");
        json_str(x->resources[k]->name);
        printf(": %g", x->resources[k]->amount);
      }
      printf("}, \"node_id\": ");
      if (x->node_id.len == ID_NODE_SIZE)
        printf("\"%s\"}", id_hex(x->node_id.data, ID_NODE_SIZE, node));
      else
        printf("null}");
    }
    printf("]}");
  }
  printf("%s]\n", r->n_placement_groups ? "\n" : "");
}

static void print_pg_table(const Rayc__GetAllPlacementGroupReply *r)
{
  printf("%-36s  %-16s  %-13s  %-12s  %s\n", "PLACEMENT_GROUP_ID", "NAME", "STRATEGY", "STATE", "BUNDLES");
  for (size_t i = 0; i < r->n_placement_groups; i++) {
    const Rayc__PlacementGroupInfo *g = r->placement_groups[i];
    char id[2 * ID_PG_SIZE + 1], bundles[512];
    size_t off = 0;
    bundles[0] = '\0';
    id_hex(g->placement_group_id.data, g->placement_group_id.len == ID_PG_SIZE ? ID_PG_SIZE : 0, id);
    for (size_t b = 0; b < g->n_bundles && off < sizeof(bundles); b++) {
      const Rayc__Bundle *x = g->bundles[b];
      char node[2 * ID_NODE_SIZE + 1] = "-";
      if (x->node_id.len == ID_NODE_SIZE)
        id_short(x->node_id.data, ID_NODE_SIZE, node);
      off += (size_t)snprintf(bundles + off, sizeof(bundles) - off, "%s{", b ? " " : "");
      for (size_t k = 0; k < x->n_resources && off < sizeof(bundles); k++)
        off += (size_t)snprintf(bundles + off, sizeof(bundles) - off, "%s%s:%g", k ? "," : "", x->resources[k]->name,
                                x->resources[k]->amount);
      if (off < sizeof(bundles))
        off += (size_t)snprintf(bundles + off, sizeof(bundles) - off, "}@%s", node);
    }
    printf("%-36s  %-16s  %-13s  %-12s  %s%s%s\n", id, *g->name ? g->name : "-", pg_strategy(g->strategy),
           pg_state(g->state), bundles, *g->state_detail ? "  " : "", g->state_detail);
  }
  printf("%zu placement group%s\n", r->n_placement_groups, r->n_placement_groups == 1 ? "" : "s");
}

/* Calls svc.method on the GCS with an empty request; 0 with *resp, or CLI_FAIL (printed). */
static int list_call(const cli_list_conf_t *c, const char *address, const char *what,
                     const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req,
                     ProtobufCMessage **resp)
{
  char cmd[32];
  snprintf(cmd, sizeof(cmd), "list %s", what);
  cli_auth_t auth;
  rpc_client_t *client = cli_auth_init(&auth, &c->sec, c->temp_dir, cmd) < 0 ? NULL : cli_client_create(&auth, cmd);
  char *detail = NULL;
  int rc = client ? rpc_call_sync(rpc_channel_get(client, address), svc, method, req, c->timeout_ms, resp, &detail)
                  : RAYC_EINTERNAL;
  rpc_client_destroy(client);
  if (rc != 0) {
    fprintf(stderr, "rayc %s: cannot query the GCS at %s: %s\n", cmd, address,
            detail && *detail ? detail : rayc_strerror(rc));
    cli_auth_hint(stderr, &auth, rc);
  }
  cli_auth_release(&auth);
  free(detail);
  return rc ? CLI_FAIL : 0;
}

static int list_nodes(const cli_list_conf_t *c, const char *address)
{
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  if (list_call(c, address, "nodes", &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, &resp))
    return CLI_FAIL;
  const Rayc__GetAllNodeInfoReply *r = (const Rayc__GetAllNodeInfoReply *)resp;
  int json = strcmp(c->format, "json") == 0;
  if (json)
    printf("[");
  else
    printf("%-56s  %-15s  %-5s  %-16s  %s\n", "NODE_ID", "IP", "HEAD", "STATE", "DEATH");
  for (size_t i = 0; i < r->n_nodes; i++) {
    const Rayc__NodeInfo *n = r->nodes[i];
    char id[2 * ID_NODE_SIZE + 1] = "?";
    int alive = n->state == RAYC__NODE_STATE__NODE_ALIVE;
    const char *state = alive ? (n->draining ? "ALIVE (draining)" : "ALIVE") : "DEAD";
    if (n->node_id.len == ID_NODE_SIZE)
      id_hex(n->node_id.data, ID_NODE_SIZE, id);
    if (json) {
      printf("%s\n  {\"node_id\": \"%s\", \"ip\": ", i ? "," : "", id);
      json_str(n->ip);
      printf(", \"is_head\": %s, \"state\": \"%s\", \"draining\": %s, \"death_reason\": ", n->is_head ? "true" : "false",
             alive ? "ALIVE" : "DEAD", n->draining ? "true" : "false");
      json_str(alive ? "" : n->death_reason);
      printf("}");
    } else {
      printf("%-56s  %-15s  %-5s  %-16s  %s\n", id, n->ip, n->is_head ? "yes" : "no", state, alive ? "" : n->death_reason);
    }
  }
  if (json)
    printf("%s]\n", r->n_nodes ? "\n" : "");
  else
    printf("%zu node%s\n", r->n_nodes, r->n_nodes == 1 ? "" : "s");
  pb_free(resp);
  return CLI_OK;
}

static int list_jobs(const cli_list_conf_t *c, const char *address)
{
  Rayc__GetAllJobInfoRequest req = RAYC__GET_ALL_JOB_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  if (list_call(c, address, "jobs", &rayc__job_info_gcs_service__descriptor, "GetAllJobInfo", &req.base, &resp))
    return CLI_FAIL;
  const Rayc__GetAllJobInfoReply *r = (const Rayc__GetAllJobInfoReply *)resp;
  int json = strcmp(c->format, "json") == 0;
  if (json)
    printf("[");
  else
    printf("%-8s  %-8s  %10s  %s\n", "JOB_ID", "STATUS", "DRIVER_PID", "END_REASON");
  for (size_t i = 0; i < r->n_jobs; i++) {
    const Rayc__JobInfo *j = r->jobs[i];
    char id[2 * ID_JOB_SIZE + 1] = "?";
    if (j->job_id.len == ID_JOB_SIZE)
      id_hex(j->job_id.data, ID_JOB_SIZE, id);
    const char *status = j->is_dead ? "FINISHED" : "RUNNING";
    if (json) {
      printf("%s\n  {\"job_id\": \"%s\", \"status\": \"%s\", \"driver_pid\": %d, \"end_reason\": ", i ? "," : "", id,
             status, j->driver_pid);
      json_str(j->end_reason);
      printf("}");
    } else {
      printf("%-8s  %-8s  %10d  %s\n", id, status, j->driver_pid, j->end_reason);
    }
  }
  if (json)
    printf("%s]\n", r->n_jobs ? "\n" : "");
  else
    printf("%zu job%s\n", r->n_jobs, r->n_jobs == 1 ? "" : "s");
  pb_free(resp);
  return CLI_OK;
}

static int list_pgs(const cli_list_conf_t *c, const char *address)
{
  Rayc__GetAllPlacementGroupRequest req = RAYC__GET_ALL_PLACEMENT_GROUP_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  if (list_call(c, address, "placement-groups", &rayc__placement_group_info_gcs_service__descriptor,
                "GetAllPlacementGroup", &req.base, &resp) != 0)
    return CLI_FAIL;
  if (strcmp(c->format, "json") == 0)
    print_pg_json((Rayc__GetAllPlacementGroupReply *)resp);
  else
    print_pg_table((Rayc__GetAllPlacementGroupReply *)resp);
  pb_free(resp);
  return CLI_OK;
}

int cli_list(int argc, char **argv)
{
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      printf("usage: rayc list actors|nodes|jobs|placement-groups [--format table|json] [--address HOST:PORT] [--temp-dir DIR]\n");
      return CLI_OK;
    }
    fprintf(stderr, "usage: rayc list actors|nodes|jobs|placement-groups [--format table|json] [--address HOST:PORT]\n");
    return CLI_USAGE;
  }
  const char *what = argv[1];
  if (strcmp(what, "actors") != 0 && strcmp(what, "nodes") != 0 && strcmp(what, "jobs") != 0 &&
      strcmp(what, "placement-groups") != 0) {
    fprintf(stderr, "rayc list: '%s' cannot be listed (try: actors, nodes, jobs, placement-groups)\n", what);
    return CLI_USAGE;
  }
  char cmd[32];
  snprintf(cmd, sizeof(cmd), "list %s", what);
  cli_list_conf_t c;
  int status = cli_parse(cmd, cli_list_summary, cli_list_table, ARRAY_LEN(cli_list_table), &c, sizeof(c),
                         argc - 1, argv + 1);
  if (status != CLI_CONTINUE)
    return status;
  char address[256];
  if (strcmp(c.format, "json") != 0 && strcmp(c.format, "table") != 0) {
    fprintf(stderr, "rayc %s: --format must be table or json, not '%s'\n", cmd, c.format);
    status = CLI_USAGE;
  } else if (cli_find_address(c.address, c.temp_dir, address, sizeof(address)) < 0) {
    fprintf(stderr, "rayc %s: no cluster found (no --address, no RAYC_ADDRESS, no %s/session_latest/address)\n", cmd,
            c.temp_dir);
    status = CLI_FAIL;
  } else {
    status = strcmp(what, "nodes") == 0              ? list_nodes(&c, address)
             : strcmp(what, "jobs") == 0             ? list_jobs(&c, address)
             : strcmp(what, "placement-groups") == 0 ? list_pgs(&c, address)
                                                     : list_actors(&c, address);
  }
  cfg_release(cli_list_table, ARRAY_LEN(cli_list_table), &c);
  return status;
}
