/* Helpers shared by the rayc commands: settings parsing, finding the local session, asking the
 * GCS. */
#include "client/cli/cli.h"

#include "common/rpc.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse(const char *cmd, const char *summary, const cfg_entry_t *table, size_t n, void *conf, size_t conf_size,
              int argc, char **argv)
{
  char *err = NULL, *prog = xasprintf("rayc %s", cmd);
  int next = argc, status = CLI_CONTINUE;
  memset(conf, 0, conf_size);
  cfg_set_program("rayc");
  int rc = cfg_load(table, n, conf, argc, argv, &next, &err);
  if (rc == CFG_HELP || rc == CFG_PRINTED) {
    if (rc == CFG_HELP)
      cfg_usage(stdout, prog, summary, table, n);
    status = CLI_OK;
  } else if (rc < 0 || next < argc) {
    if (rc < 0)
      fprintf(stderr, "%s: %s\n", prog, err);
    else
      fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[next]);
    fprintf(stderr, "Run `%s --help` for its flags.\n", prog);
    status = CLI_USAGE;
  }
  if (status != CLI_CONTINUE)
    cfg_release(table, n, conf);
  free(err);
  free(prog);
  return status;
}

int cli_session_latest(const char *temp_dir, char *buf, size_t len)
{
  char *link = xasprintf("%s/session_latest", temp_dir), *real = realpath(link, NULL);
  int rc = real && strlen(real) < len ? 0 : RAYC_ENOT_FOUND;
  if (rc == 0)
    snprintf(buf, len, "%s", real);
  free(real);
  free(link);
  return rc;
}

int cli_find_address(const char *given, const char *temp_dir, char *buf, size_t len)
{
  if (given && *given) {
    snprintf(buf, len, "%s", given);
    return 0;
  }
  char *path = xasprintf("%s/session_latest/address", temp_dir);
  FILE *f = fopen(path, "r");
  free(path);
  int rc = f && fgets(buf, (int)len, f) ? 0 : RAYC_ENOT_FOUND;
  if (f)
    fclose(f);
  if (rc == 0)
    buf[strcspn(buf, " \r\n")] = '\0';
  return rc == 0 && buf[0] ? 0 : RAYC_ENOT_FOUND;
}

int cli_auth_init(cli_auth_t *a, const cli_sec_t *sec, const char *temp_dir, const char *cmd)
{
  char *err = NULL;
  memset(a, 0, sizeof(*a));
  a->tls = (rpc_tls_t){sec->tls_cert, sec->tls_key, sec->tls_ca};
  int rc = token_find(sec->token_file, temp_dir, &a->token, &a->where, &err);
  if (rc == RAYC_ENOT_FOUND) {
    a->where = err;
    return 0;
  }
  if (rc < 0)
    fprintf(stderr, "rayc %s: %s\n", cmd, err);
  free(err);
  return rc;
}

void cli_auth_release(cli_auth_t *a)
{
  token_free(a->token);
  free(a->where);
  memset(a, 0, sizeof(*a));
}

rpc_client_t *cli_client_create(const cli_auth_t *a, const char *cmd)
{
  rpc_client_opts_t opts = {.token = a->token, .tls = &a->tls};
  rpc_client_t *c = rpc_client_create(&opts);
  if (!c)
    fprintf(stderr, "rayc %s: cannot make a gRPC client: %s\n", cmd,
            rpc_tls_enabled(&a->tls) ? "the TLS files are unusable (--tls-cert, --tls-key, --tls-ca all needed)"
                                     : "the token is malformed");
  return c;
}

void cli_auth_hint(FILE *out, const cli_auth_t *a, int rc)
{
  if (rc != RAYC_EUNAUTHENTICATED)
    return;
  if (a->token)
    fprintf(out, "The cluster rejected the token from %s. ", a->where);
  else
    fprintf(out, "The cluster wants a token and none was found (%s). ", a->where);
  fprintf(out, "Pass the head's <temp-dir>/cluster_token with --token-file (or RAYC_TOKEN_FILE), or the token "
               "itself in RAYC_TOKEN.\n");
}

int cli_gcs_get_nodes(const cli_auth_t *a, const char *address, int timeout_ms, Rayc__GetAllNodeInfoReply **out,
                      char **detail)
{
  rpc_client_opts_t opts = {.token = a->token, .tls = &a->tls};
  rpc_client_t *c = rpc_client_create(&opts);
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  *out = NULL;
  if (!c) {
    if (detail)
      *detail = xstrdup(rpc_tls_enabled(&a->tls) ? "the TLS files are unusable" : "the token is malformed");
    return RAYC_EINVALID_ARGUMENT;
  }
  int rc = rpc_call_sync(rpc_channel_get(c, address), &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo",
                         &req.base, timeout_ms, &resp, detail);
  rpc_client_destroy(c);
  *out = (Rayc__GetAllNodeInfoReply *)resp;
  return rc;
}
