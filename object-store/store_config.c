/* rayc-store's settings table and the checks that follow loading it. */
#include "object-store/store_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

static const cfg_entry_t store_cfg_table[] = {
    {"session-dir", CFG_STRING, offsetof(store_config_t, session_dir), NULL,
     "session directory (required): logs go to DIR/logs/store.log"},
    {"socket", CFG_STRING, offsetof(store_config_t, socket), NULL,
     "Unix socket clients connect to (default DIR/sockets/store)"},
    {"object-store-memory", CFG_INT64, offsetof(store_config_t, object_store_memory), "0",
     "shared-memory capacity in bytes, suffixes K/M/G (0: 30% of RAM; at least 75M)"},
    {"spill-dir", CFG_STRING, offsetof(store_config_t, spill_dir), NULL,
     "directory for spilled objects (default DIR/spill)"},
    {"spill-threshold", CFG_DOUBLE, offsetof(store_config_t, spill_threshold), "0.8",
     "spill primary copies once they fill this share of the store (0 < x <= 1)"},
    {"spill-io-threads", CFG_INT, offsetof(store_config_t, io_threads), "2",
     "threads that write spill files and restore from them"},
    {"node-ip-address", CFG_STRING, offsetof(store_config_t, node_ip_address), "127.0.0.1",
     "address the object manager serves on (other nodes pull from it)"},
    {"metrics-port", CFG_INT, offsetof(store_config_t, metrics_port), "0",
     "port of the Prometheus /metrics endpoint on --node-ip-address (0: an ephemeral port; -1: none)"},
    {"object-manager-port", CFG_INT, offsetof(store_config_t, object_manager_port), "0",
     "object manager TCP port (0: ephemeral; announced as RAYC_PORT)"},
    {"token-file", CFG_STRING, offsetof(store_config_t, token_file), NULL,
     "file holding the cluster token object-manager calls must carry (unset: no token)"},
    {"tls-cert", CFG_STRING, offsetof(store_config_t, tls_cert), NULL,
     "PEM certificate for TLS on the object manager's gRPC (unset: plaintext)"},
    {"tls-key", CFG_STRING, offsetof(store_config_t, tls_key), NULL, "PEM private key of --tls-cert"},
    {"tls-ca", CFG_STRING, offsetof(store_config_t, tls_ca), NULL, "PEM CA that signed the cluster's certificates"},
    {"log-level", CFG_STRING, offsetof(store_config_t, log_level), "info", "debug, info, warn or error"},
    {"log-stderr", CFG_BOOL, offsetof(store_config_t, log_stderr), "false", "also write log lines to stderr"},
    {"local-max-connections", CFG_INT, offsetof(store_config_t, local_max_conns), "8192",
     "clients connected to the local socket at once, at most (more are refused; 0: no limit)"},
    {"local-frame-max", CFG_INT64, offsetof(store_config_t, local_frame_max), "16M",
     "longest frame a local client may send (at most 16M); a longer one drops the client"},
    {"local-frame-stall-ms", CFG_INT, offsetof(store_config_t, local_stall_ms), "10000",
     "a local client's frame must arrive whole within this long of its first byte (0: no limit)"},
};

/* 30% of physical memory, never below the minimum. */
static int64_t store_default_memory(void)
{
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  int64_t bytes = pages > 0 && page > 0 ? (int64_t)pages * page / 10 * 3 : 0;
  return bytes < STORE_MIN_MEMORY ? STORE_MIN_MEMORY : bytes;
}

/* Reads the cluster token: the file's first line, surrounding white space removed. */
static int store_config_read_token(store_config_t *conf, char **err)
{
  char line[512];
  FILE *f = fopen(conf->token_file, "r");
  if (!f) {
    *err = xasprintf("cannot read --token-file %s: %s", conf->token_file, strerror(errno));
    return RAYC_EINVALID_ARGUMENT;
  }
  char *t = fgets(line, sizeof(line), f);
  fclose(f);
  while (t && isspace((unsigned char)*t))
    t++;
  size_t n = t ? strlen(t) : 0;
  while (n > 0 && isspace((unsigned char)t[n - 1]))
    t[--n] = '\0';
  if (n == 0) {
    *err = xasprintf("--token-file %s holds no token", conf->token_file);
    return RAYC_EINVALID_ARGUMENT;
  }
  conf->token = xstrdup(t);
  return 0;
}

/* The settings besides memory: spill, object manager, token. */
static int store_config_check_more(store_config_t *conf, char **err)
{
  if (!conf->spill_dir || !conf->spill_dir[0]) {
    free(conf->spill_dir);
    conf->spill_dir = xasprintf("%s/spill", conf->session_dir);
  }
  if (!(conf->spill_threshold > 0 && conf->spill_threshold <= 1)) {
    *err = xasprintf("--spill-threshold %g is not in (0, 1]", conf->spill_threshold);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (conf->io_threads < 1 || conf->io_threads > 64) {
    *err = xasprintf("--spill-io-threads %d is not in 1..64", conf->io_threads);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (conf->object_manager_port < 0 || conf->object_manager_port > 65535) {
    *err = xasprintf("--object-manager-port %d is not a port", conf->object_manager_port);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!conf->node_ip_address || !conf->node_ip_address[0]) {
    *err = xstrdup("--node-ip-address must not be empty");
    return RAYC_EINVALID_ARGUMENT;
  }
  return conf->token_file && conf->token_file[0] ? store_config_read_token(conf, err) : 0;
}

static int store_config_check(store_config_t *conf, char **err)
{
  if (!conf->session_dir || !conf->session_dir[0]) {
    *err = xstrdup("--session-dir is required");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!conf->socket || !conf->socket[0]) {
    free(conf->socket);
    conf->socket = xasprintf("%s/sockets/store", conf->session_dir);
  }
  if (conf->object_store_memory == 0)
    conf->object_store_memory = store_default_memory();
  if (conf->object_store_memory < STORE_MIN_MEMORY) {
    *err = xasprintf("--object-store-memory %" PRId64 " is below the minimum of %d bytes (75 MiB)",
                     conf->object_store_memory, STORE_MIN_MEMORY);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (log_level_parse(conf->log_level ? conf->log_level : "") < 0) {
    *err = xasprintf("--log-level %s is not one of debug, info, warn, error", conf->log_level);
    return RAYC_EINVALID_ARGUMENT;
  }
  return store_config_check_more(conf, err);
}

int store_config_load(store_config_t *conf, int argc, char **argv, char **err)
{
  int next = argc;
  *err = NULL;
  cfg_set_program("store");
  int rc = cfg_load(store_cfg_table, ARRAY_LEN(store_cfg_table), conf, argc, argv, &next, err);
  if (rc != 0)
    return rc;
  if (next < argc) {
    *err = xasprintf("unexpected argument '%s'", argv[next]);
    return RAYC_EINVALID_ARGUMENT;
  }
  return store_config_check(conf, err);
}

void store_config_usage(FILE *out, const char *prog)
{
  cfg_usage(out, prog, "The node's shared-memory object store.", store_cfg_table, ARRAY_LEN(store_cfg_table));
}

void store_config_release(store_config_t *conf)
{
  if (!conf)
    return;
  cfg_release(store_cfg_table, ARRAY_LEN(store_cfg_table), conf);
  free(conf->token);
  conf->token = NULL;
}
