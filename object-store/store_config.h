/*
 * rayc-store's settings: one table (common/cfg.h) drives the flags, the RAYC_* variables, the
 * YAML file and --help.
 */
#ifndef RAYC_STORE_CONFIG_H
#define RAYC_STORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

enum { STORE_MIN_MEMORY = 75 << 20 }; /* Ray's minimum object store size */

typedef struct store_config {
  char *session_dir;           /* required */
  char *socket;                /* default: <session_dir>/sockets/store */
  int64_t object_store_memory; /* bytes; 0 in the table means 30% of RAM */
  char *spill_dir;             /* default: <session_dir>/spill */
  double spill_threshold;      /* share of capacity past which primary copies spill */
  int io_threads;
  char *node_ip_address;             /* the object manager's address */
  int object_manager_port;           /* 0: ephemeral */
  int metrics_port;                  /* Prometheus /metrics on node_ip_address; 0: ephemeral, < 0: none */
  char *token_file;                  /* NULL: no cluster token */
  char *token;                       /* read from token_file (derived, not a setting) */
  char *tls_cert, *tls_key, *tls_ca; /* TLS for the object manager; NULL: plaintext */
  char *log_level;
  int log_stderr;
  int local_max_conns; /* limits on the local socket's peers (common/local.h) */
  int64_t local_frame_max;
  int local_stall_ms;
} store_config_t;

/* Loads conf (zeroed by the caller) from argv, the environment and --config, then fills the
 * derived defaults and checks the values. Returns 0, CFG_HELP, or RAYC_EINVALID_ARGUMENT with *err
 * a new message (free()). Release conf with store_config_release() in every case. */
int store_config_load(store_config_t *conf, int argc, char **argv, char **err);

/* Prints --help text. */
void store_config_usage(FILE *out, const char *prog);

/* Frees the strings held by conf. Accepts NULL. */
void store_config_release(store_config_t *conf);

#endif
