/*
 * rayc list actors [--format table|json]: the cluster's actors as the GCS knows them (Ray's
 * `ray list actors`): id, class, name, state, restarts, where it runs, and why it died. Other kinds
 * (`rayc list nodes`, ...) arrive with their features.
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

static const char cli_list_summary[] = "Lists the cluster's actors: rayc list actors [--format table|json].";

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

int cli_list(int argc, char **argv)
{
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      printf("usage: rayc list actors [--format table|json] [--address HOST:PORT] [--temp-dir DIR]\n");
      return CLI_OK;
    }
    fprintf(stderr, "usage: rayc list actors [--format table|json] [--address HOST:PORT]\n");
    return CLI_USAGE;
  }
  if (strcmp(argv[1], "actors") != 0) {
    fprintf(stderr, "rayc list: '%s' cannot be listed yet (try: actors)\n", argv[1]);
    return CLI_USAGE;
  }
  cli_list_conf_t c;
  int status = cli_parse("list actors", cli_list_summary, cli_list_table, ARRAY_LEN(cli_list_table), &c, sizeof(c),
                         argc - 1, argv + 1);
  if (status != CLI_CONTINUE)
    return status;
  char address[256];
  if (strcmp(c.format, "json") != 0 && strcmp(c.format, "table") != 0) {
    fprintf(stderr, "rayc list actors: --format must be table or json, not '%s'\n", c.format);
    status = CLI_USAGE;
  } else if (cli_find_address(c.address, c.temp_dir, address, sizeof(address)) < 0) {
    fprintf(stderr, "rayc list actors: no cluster found (no --address, no RAYC_ADDRESS, no %s/session_latest/address)\n",
            c.temp_dir);
    status = CLI_FAIL;
  } else {
    status = list_actors(&c, address);
  }
  cfg_release(cli_list_table, ARRAY_LEN(cli_list_table), &c);
  return status;
}
