/*
 * The `rayc` command-line tool: one file per command (cli_start.c, cli_stop.c, cli_status.c), each
 * parsing its own settings table (common/cfg.h) so that flags, RAYC_* variables and --help agree.
 *
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#ifndef RAYC_CLI_H
#define RAYC_CLI_H

#include "common/cfg.h"
#include "common/pb.h"

#include <stddef.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };
enum { CLI_CONTINUE = -1 };

/* The commands: argv[0] is the command name ("start"). Each returns an exit status. */
int cli_start(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_status(int argc, char **argv);

/* Loads the settings of `rayc <cmd>` into conf (zeroed here). Returns CLI_CONTINUE to go on, or an
 * exit status after printing help (CLI_OK) or the error (CLI_USAGE; conf is released). */
int cli_parse(const char *cmd, const char *summary, const cfg_entry_t *table, size_t n, void *conf,
              size_t conf_size, int argc, char **argv);

/* Resolves <temp_dir>/session_latest to the session directory it names, into buf. 0, or a
 * negative code when there is no such link (or it is dangling). */
int cli_session_latest(const char *temp_dir, char *buf, size_t len);

/* Finds the cluster's GCS address: given (from --address or RAYC_ADDRESS) if not empty, else the
 * first line of <temp_dir>/session_latest/address. 0, or RAYC_ENOT_FOUND. */
int cli_find_address(const char *given, const char *temp_dir, char *buf, size_t len);

/* Asks the GCS at address ("HOST:PORT") for every node. 0 with *out new (pb_free), or a negative
 * code with *detail (if not NULL) a new message (free()). */
int cli_gcs_get_nodes(const char *address, int timeout_ms, Rayc__GetAllNodeInfoReply **out,
                      char **detail);

#endif
