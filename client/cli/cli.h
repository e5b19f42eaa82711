/*
 * The `rayc` command-line tool: one file per command (cli_start.c, cli_stop.c, cli_status.c,
 * cli_list.c, cli_get_token.c), each parsing its own settings table (common/cfg.h) so that flags,
 * RAYC_* variables and --help agree. Commands that talk to a cluster find its token by one rule
 * (cli_auth_init, common/token.h) and take --tls-cert/--tls-key/--tls-ca; only `rayc get-token`
 * ever prints the token.
 *
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#ifndef RAYC_CLI_H
#define RAYC_CLI_H

#include "common/cfg.h"
#include "common/pb.h"
#include "common/rpc.h"

#include <stddef.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };
enum { CLI_CONTINUE = -1 };

/* The commands: argv[0] is the command name ("start"). Each returns an exit status. */
int cli_start(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_get_token(int argc, char **argv);
int cli_memory(int argc, char **argv);

/* Loads the settings of `rayc <cmd>` into conf (zeroed here). Returns CLI_CONTINUE to go on, or an
 * exit status after printing help (CLI_OK) or the error (CLI_USAGE; conf is released). */
int cli_parse(const char *cmd, const char *summary, const cfg_entry_t *table, size_t n, void *conf, size_t conf_size,
              int argc, char **argv);

/* Resolves <temp_dir>/session_latest to the session directory it names, into buf. 0, or a
 * negative code when there is no such link (or it is dangling). */
int cli_session_latest(const char *temp_dir, char *buf, size_t len);

/* Finds the cluster's GCS address: given (from --address or RAYC_ADDRESS) if not empty, else the
 * first line of <temp_dir>/session_latest/address. 0, or RAYC_ENOT_FOUND. */
int cli_find_address(const char *given, const char *temp_dir, char *buf, size_t len);

/* The security settings of every command that talks to a cluster, embedded in its conf struct as
 * a cli_sec_t and listed in its table with CLI_SEC_SETTINGS. */
typedef struct cli_sec {
  char *token_file;
  char *tls_cert, *tls_key, *tls_ca;
} cli_sec_t;

#define CLI_SEC_SETTINGS(type, field)                                                                         \
  {"token-file", CFG_STRING, offsetof(type, field.token_file), NULL,                                          \
   "file holding the cluster token (unset: $RAYC_TOKEN, else <temp-dir>/session_latest/cluster_token, "       \
   "else <temp-dir>/cluster_token)"},                                                                         \
      {"tls-cert", CFG_STRING, offsetof(type, field.tls_cert), NULL,                                          \
       "PEM certificate for TLS to the cluster (unset: plaintext)"},                                          \
      {"tls-key", CFG_STRING, offsetof(type, field.tls_key), NULL, "PEM private key of --tls-cert"},          \
  {                                                                                                           \
    "tls-ca", CFG_STRING, offsetof(type, field.tls_ca), NULL, "PEM CA that signed the cluster's certificates" \
  }

/* How a command authenticates to the cluster: the token (never printed, except by rayc get-token)
 * and the TLS files. */
typedef struct cli_auth {
  char *token;   /* NULL: none found */
  char *where;   /* where the token came from, or why none was found */
  rpc_tls_t tls; /* borrowed from the cli_sec_t */
} cli_auth_t;

/* Finds the token by token_find's rule (common/token.h) from sec->token_file and temp_dir. A token
 * that is not found is no error (the cluster says whether it wants one); a named source that
 * cannot be read is: then the error is printed prefixed "rayc <cmd>: " and a negative code
 * returned. Release with cli_auth_release() in every case. */
int cli_auth_init(cli_auth_t *a, const cli_sec_t *sec, const char *temp_dir, const char *cmd);
void cli_auth_release(cli_auth_t *a);

/* A gRPC client carrying a's token and TLS settings, or NULL (printed). */
rpc_client_t *cli_client_create(const cli_auth_t *a, const char *cmd);

/* After a call failed with rc: for RAYC_EUNAUTHENTICATED, prints how to give the right token. */
void cli_auth_hint(FILE *out, const cli_auth_t *a, int rc);

/* Asks the GCS at address ("HOST:PORT") for every node, authenticated by a. 0 with *out new
 * (pb_free), or a negative code with *detail (if not NULL) a new message (free()). */
int cli_gcs_get_nodes(const cli_auth_t *a, const char *address, int timeout_ms, Rayc__GetAllNodeInfoReply **out,
                      char **detail);

#endif
