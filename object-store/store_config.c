/* rayc-store's settings table and the checks that follow loading it. */
#include "object-store/store_config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
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
  {"log-level", CFG_STRING, offsetof(store_config_t, log_level), "info", "debug, info, warn or error"},
  {"log-stderr", CFG_BOOL, offsetof(store_config_t, log_stderr), "false", "also write log lines to stderr"},
};

/* 30% of physical memory, never below the minimum. */
static int64_t store_default_memory(void)
{
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  int64_t bytes = pages > 0 && page > 0 ? (int64_t)pages * page / 10 * 3 : 0;
  return bytes < STORE_MIN_MEMORY ? STORE_MIN_MEMORY : bytes;
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
  return 0;
}

int store_config_load(store_config_t *conf, int argc, char **argv, char **err)
{
  int next = argc;
  *err = NULL;
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
  cfg_release(store_cfg_table, ARRAY_LEN(store_cfg_table), conf);
}
