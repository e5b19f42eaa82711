/*
 * rayc memory: what this node's object store holds, in the spirit of Ray's `ray memory
 * --stats-only`: objects and bytes in shared memory (primary and secondary copies), bytes spilled
 * to disk, and the totals of spilling, restoring, eviction and node-to-node transfer.
 *
 * The store is found at --socket, else <temp-dir>/session_latest/sockets/store (the node started
 * last on this machine). Later: every node of the cluster, through the GCS's node table.
 */
#include "client/cli/cli.h"

#include "common/status.h"
#include "common/util.h"
#include "object-store/store_client.h"

#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_memory(int argc, char **argv);

typedef struct cli_memory_conf {
  char *temp_dir;
  char *socket;
} cli_memory_conf_t;

#define F(field) offsetof(cli_memory_conf_t, field)
static const cfg_entry_t cli_memory_table[] = {
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
    {"socket", CFG_STRING, F(socket), NULL, "the store's socket (unset: <temp-dir>/session_latest/sockets/store)"},
};
#undef F

static const char cli_memory_summary[] =
    "Shows what this node's object store holds: objects and bytes in shared memory, bytes spilled\n"
    "to disk, and totals of spilling, restoring, eviction and transfers.";

/* "1.50 GiB" into buf. */
static const char *cli_bytes(uint64_t v, char *buf, size_t len)
{
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = (double)v;
  size_t u = 0;
  for (; x >= 1024 && u + 1 < ARRAY_LEN(units); u++)
    x /= 1024;
  snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", x, units[u]);
  return buf;
}

static void cli_memory_print(const char *socket, const store_stats_t *st)
{
  char a[32], b[32], c[32], d[32];
  printf("======== Object store of this node (%s) ========\n", socket);
  printf("Objects:        %" PRIu64 " (%" PRIu64 " in memory, %" PRIu64 " on disk only)\n", st->num_objects,
         st->num_in_memory, st->num_spilled_only);
  printf("Shared memory:  %s used of %s (%.1f%% full): %s primary copies, %s secondary copies\n",
         cli_bytes(st->bytes_used, a, sizeof(a)), cli_bytes(st->capacity, b, sizeof(b)),
         st->capacity ? 100.0 * (double)st->bytes_used / (double)st->capacity : 0.0,
         cli_bytes(st->bytes_primary, c, sizeof(c)), cli_bytes(st->bytes_secondary, d, sizeof(d)));
  printf("Spilled:        %s in %" PRIu64 " objects, %" PRIu64 " files (%s on disk)\n",
         cli_bytes(st->bytes_spilled, a, sizeof(a)), st->num_spilled, st->spill_files,
         cli_bytes(st->spill_file_bytes, b, sizeof(b)));
  printf("Since start:    spilled %" PRIu64 " objects (%s), restored %" PRIu64 " (%s), evicted %" PRIu64 " (%s)\n",
         st->total_spilled_objects, cli_bytes(st->total_spilled_bytes, a, sizeof(a)), st->total_restored_objects,
         cli_bytes(st->total_restored_bytes, b, sizeof(b)), st->total_evicted_objects,
         cli_bytes(st->total_evicted_bytes, c, sizeof(c)));
  printf("Transfers:      pulled %" PRIu64 " objects (%s), served %" PRIu64 " chunks (%s); %u pulls active; "
         "object manager port %d\n",
         st->total_pulled_objects, cli_bytes(st->total_pulled_bytes, a, sizeof(a)), st->total_served_chunks,
         cli_bytes(st->total_served_bytes, b, sizeof(b)), st->num_pulls_active, st->object_manager_port);
}

/* The store socket to ask (new string), or NULL with the reason printed. */
static char *cli_memory_socket(const cli_memory_conf_t *conf)
{
  char session[PATH_MAX];
  if (conf->socket && conf->socket[0])
    return xstrdup(conf->socket);
  if (cli_session_latest(conf->temp_dir, session, sizeof(session)) < 0) {
    fprintf(stderr, "rayc memory: no node was started here (no %s/session_latest); start one with `rayc start`\n",
            conf->temp_dir);
    return NULL;
  }
  return xasprintf("%s/sockets/store", session);
}

int cli_memory(int argc, char **argv)
{
  cli_memory_conf_t conf;
  int status = cli_parse("memory", cli_memory_summary, cli_memory_table, ARRAY_LEN(cli_memory_table), &conf,
                         sizeof(conf), argc, argv);
  if (status != CLI_CONTINUE)
    return status;
  status = CLI_FAIL;
  store_client_t *c = NULL;
  store_stats_t st;
  char *socket = cli_memory_socket(&conf);
  if (!socket)
    goto out;
  if (store_client_connect(socket, &c) < 0 || store_client_stats(c, &st) < 0) {
    fprintf(stderr, "rayc memory: cannot ask the object store at %s: %s\n", socket, store_client_last_error());
    goto out;
  }
  cli_memory_print(socket, &st);
  status = CLI_OK;
out:
  store_client_destroy(c);
  free(socket);
  cfg_release(cli_memory_table, ARRAY_LEN(cli_memory_table), &conf);
  return status;
}
