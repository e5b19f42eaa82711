/*
 * The state commands (Ray's `ray list|get|summary|timeline`), over the state API's client side
 * (cli_state.c): rayc list KIND [--filter KEY=VALUE]... [--limit N] [--format table|json],
 * rayc get KIND ID, rayc summary tasks|actors, rayc timeline [--job ID] -o FILE, and
 * rayc metrics targets (Prometheus file_sd JSON). JSON is written by jansson.
 */
#include "client/cli/cli.h"

#include "client/cli/cli_state.h"
#include "common/status.h"
#include "common/util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_list(int argc, char **argv);
int cli_get(int argc, char **argv);
int cli_summary(int argc, char **argv);
int cli_timeline(int argc, char **argv);
int cli_metrics(int argc, char **argv);

enum { CLI_MAX_FILTERS = 16 };

typedef struct cli_state_conf {
  char *address;
  char *temp_dir;
  char *format;
  int timeout_ms;
  int limit;
  char *job;
  char *output;
  cli_sec_t sec;
} cli_state_conf_t;

#define F(field) offsetof(cli_state_conf_t, field)
static const cfg_entry_t cli_state_table[] = {
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the GCS (unset: <temp-dir>/session_latest/address)"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
    {"format", CFG_STRING, F(format), "table", "table or json"},
    {"timeout-ms", CFG_INT, F(timeout_ms), "10000", "how long to wait for the GCS"},
    {"limit", CFG_INT, F(limit), "100", "show at most this many rows (0: all)"},
    {"job", CFG_STRING, F(job), NULL, "tasks and timeline: only this job's (hex id)"},
    {"output", CFG_STRING, F(output), NULL, "timeline: the file to write (-o)"},
    CLI_SEC_SETTINGS(cli_state_conf_t, sec),
};
#undef F

/* One state command in progress: its settings, filters and GCS connection. */
typedef struct cli_state_run {
  char cmd[64];
  cli_state_conf_t c;
  const char *filters[CLI_MAX_FILTERS];
  int nfilters;
  char address[256];
  cli_auth_t auth;
  rpc_client_t *client;
  state_src_t src;
} cli_state_run_t;

/* Moves --filter K=V and -o FILE out of argv (cfg settings take a flag once); returns the new argc
 * or -1 (printed) for too many filters. */
static int cli_state_take_flags(cli_state_run_t *r, int argc, char **argv, char **out_flag)
{
  int k = 0;
  for (int i = 0; i < argc; i++) {
    int filter = strcmp(argv[i], "--filter") == 0, o = strcmp(argv[i], "-o") == 0;
    if ((filter || o) && i + 1 < argc) {
      if (o) {
        *out_flag = argv[++i];
        continue;
      }
      if (r->nfilters == CLI_MAX_FILTERS) {
        fprintf(stderr, "rayc %s: at most %d --filter flags\n", r->cmd, CLI_MAX_FILTERS);
        return -1;
      }
      r->filters[r->nfilters++] = argv[++i];
    } else if (strncmp(argv[i], "--filter=", 9) == 0 && r->nfilters < CLI_MAX_FILTERS) {
      r->filters[r->nfilters++] = argv[i] + 9;
    } else {
      argv[k++] = argv[i];
    }
  }
  return k;
}

/* Parses the settings and connects; CLI_CONTINUE or an exit status (printed). */
static int cli_state_open(cli_state_run_t *r, const char *summary, int argc, char **argv)
{
  char *o = NULL;
  int n = cli_state_take_flags(r, argc, argv, &o);
  if (n < 0)
    return CLI_USAGE;
  int status = cli_parse(r->cmd, summary, cli_state_table, ARRAY_LEN(cli_state_table), &r->c, sizeof(r->c), n, argv);
  if (status != CLI_CONTINUE)
    return status;
  if (o) {
    free(r->c.output);
    r->c.output = xstrdup(o);
  }
  if (strcmp(r->c.format, "json") != 0 && strcmp(r->c.format, "table") != 0) {
    fprintf(stderr, "rayc %s: --format must be table or json, not '%s'\n", r->cmd, r->c.format);
    return CLI_USAGE;
  }
  if (cli_find_address(r->c.address, r->c.temp_dir, r->address, sizeof(r->address)) < 0) {
    fprintf(stderr, "rayc %s: no cluster found (no --address, no RAYC_ADDRESS, no %s/session_latest/address)\n", r->cmd,
            r->c.temp_dir);
    return CLI_FAIL;
  }
  if (cli_auth_init(&r->auth, &r->c.sec, r->c.temp_dir, r->cmd) < 0 ||
      !(r->client = cli_client_create(&r->auth, r->cmd)))
    return CLI_FAIL;
  r->src.gcs = rpc_channel_get(r->client, r->address);
  r->src.client = r->client;
  r->src.timeout_ms = r->c.timeout_ms;
  return CLI_CONTINUE;
}

static void cli_state_close(cli_state_run_t *r)
{
  rpc_client_destroy(r->client);
  cli_auth_release(&r->auth);
  cfg_release(cli_state_table, ARRAY_LEN(cli_state_table), &r->c);
}

/* Fetches rows of kind and applies the filters; 0 with *rows, or CLI_FAIL/CLI_USAGE (printed). */
static int cli_state_rows(cli_state_run_t *r, const char *kind, json_t **rows)
{
  char *err = NULL;
  int rc = state_fetch(&r->src, kind, r->c.job, rows, &err);
  if (rc != 0) {
    fprintf(stderr, "rayc %s: cannot query the GCS at %s: %s\n", r->cmd, r->address, err);
    cli_auth_hint(stderr, &r->auth, rc);
    free(err);
    return CLI_FAIL;
  }
  for (int i = 0; i < r->nfilters; i++) {
    if (state_filter(*rows, r->filters[i]) != 0) {
      fprintf(stderr, "rayc %s: --filter wants KEY=VALUE or KEY!=VALUE, not '%s'\n", r->cmd, r->filters[i]);
      json_decref(*rows);
      return CLI_USAGE;
    }
  }
  return 0;
}

static void cli_print_json(json_t *v)
{
  json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  putchar('\n');
}

static void cli_print_table(const char *kind, json_t *rows, size_t total)
{
  const char *const *cols = state_columns(kind);
  size_t ncols = 0, width[16] = {0}, i;
  char buf[512];
  json_t *row;
  for (; cols[ncols] && ncols < 16; ncols++)
    width[ncols] = strlen(cols[ncols]);
  json_array_foreach(rows, i, row) for (size_t c = 0; c < ncols; c++)
  {
    size_t w = strlen(state_text(row, cols[c], buf, sizeof(buf)));
    width[c] = w > width[c] ? (w > 60 ? 60 : w) : width[c];
  }
  for (size_t c = 0; c < ncols; c++)
    printf("%-*s%s", (int)width[c], cols[c], c + 1 < ncols ? "  " : "\n");
  json_array_foreach(rows, i, row) for (size_t c = 0; c < ncols; c++)
  {
    printf("%-*.*s%s", (int)width[c], 200, state_text(row, cols[c], buf, sizeof(buf)), c + 1 < ncols ? "  " : "\n");
  }
  printf("%zu %s", json_array_size(rows), kind);
  if (total > json_array_size(rows))
    printf(" (of %zu; see --limit and --filter)", total);
  printf("\n");
}

static int cli_kind_arg(const char *cmd, int argc, char **argv, const char *usage)
{
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: rayc %s %s\n", cmd, usage);
    return CLI_OK;
  }
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: rayc %s %s\n", cmd, usage);
    return CLI_USAGE;
  }
  return CLI_CONTINUE;
}

static const char cli_list_usage[] =
    "nodes|jobs|actors|tasks|workers|placement-groups|cluster-events|objects [--filter KEY=VALUE]... [--limit N] "
    "[--format table|json] [--job ID] [--address HOST:PORT]";

int cli_list(int argc, char **argv)
{
  int status = cli_kind_arg("list", argc, argv, cli_list_usage);
  if (status != CLI_CONTINUE)
    return status;
  const char *kind = argv[1];
  if (!state_kind_valid(kind)) {
    fprintf(stderr,
            "rayc list: '%s' cannot be listed (try: nodes, jobs, actors, tasks, workers, placement-groups, objects, "
            "cluster-events)\n",
            kind);
    return CLI_USAGE;
  }
  cli_state_run_t r = {0};
  snprintf(r.cmd, sizeof(r.cmd), "list %s", kind);
  json_t *rows = NULL;
  status = cli_state_open(&r, "Lists the cluster's state (Ray's `ray list`).", argc - 1, argv + 1);
  if (status == CLI_CONTINUE && (status = cli_state_rows(&r, kind, &rows)) == 0) {
    size_t total = json_array_size(rows);
    state_limit(rows, r.c.limit);
    if (strcmp(r.c.format, "json") == 0)
      cli_print_json(rows);
    else
      cli_print_table(kind, rows, total);
    status = CLI_OK;
  }
  json_decref(rows);
  cli_state_close(&r);
  return status;
}

int cli_get(int argc, char **argv)
{
  int status = cli_kind_arg("get", argc, argv,
                            "KIND ID [--address HOST:PORT] (KIND: nodes, jobs, actors, tasks, "
                            "workers, placement-groups; ID: the id or an unambiguous prefix)");
  if (status != CLI_CONTINUE)
    return status;
  const char *kind = argv[1];
  if (!state_kind_valid(kind) || argc < 3 || argv[2][0] == '-') {
    fprintf(stderr, "usage: rayc get KIND ID (KIND: nodes, jobs, actors, tasks, workers, placement-groups)\n");
    return CLI_USAGE;
  }
  cli_state_run_t r = {0};
  snprintf(r.cmd, sizeof(r.cmd), "get %s", kind);
  json_t *rows = NULL;
  status = cli_state_open(&r, "Shows one object of the cluster's state as JSON.", argc - 2, argv + 2);
  if (status == CLI_CONTINUE && (status = cli_state_rows(&r, kind, &rows)) == 0) {
    json_t *row = state_find(rows, kind, argv[2]);
    if (row) {
      cli_print_json(row);
      status = CLI_OK;
    } else {
      fprintf(stderr, "rayc get %s: no %s with id %s (or the prefix is ambiguous)\n", kind, kind, argv[2]);
      status = CLI_FAIL;
    }
  }
  json_decref(rows);
  cli_state_close(&r);
  return status;
}

static void cli_print_summary(const char *kind, json_t *sum)
{
  const char *k;
  json_t *states, *n;
  printf("%-32s  %s\n",
         strcmp(kind, "actors") == 0    ? "CLASS"
         : strcmp(kind, "objects") == 0 ? "NODE"
                                        : "NAME",
         strcmp(kind, "objects") == 0 ? "REFERENCE TYPES, BYTES" : "STATES");
  json_object_foreach(json_object_get(sum, "summary"), k, states)
  {
    printf("%-32s ", k);
    const char *st;
    json_object_foreach(states, st, n) printf(" %s: %lld", st, (long long)json_integer_value(n));
    printf("\n");
  }
  printf("%lld %s\n", (long long)json_integer_value(json_object_get(sum, "total")), kind);
}

int cli_summary(int argc, char **argv)
{
  int status = cli_kind_arg("summary", argc, argv, "tasks|actors|objects [--job ID] [--format table|json]");
  if (status != CLI_CONTINUE)
    return status;
  const char *kind = argv[1];
  if (strcmp(kind, "tasks") != 0 && strcmp(kind, "actors") != 0 && strcmp(kind, "objects") != 0) {
    fprintf(stderr, "rayc summary: '%s' cannot be summarized (try: tasks, actors, objects)\n", kind);
    return CLI_USAGE;
  }
  cli_state_run_t r = {0};
  snprintf(r.cmd, sizeof(r.cmd), "summary %s", kind);
  json_t *rows = NULL;
  status = cli_state_open(&r, "Counts tasks by name and actors by class, per state.", argc - 1, argv + 1);
  if (status == CLI_CONTINUE && (status = cli_state_rows(&r, kind, &rows)) == 0) {
    json_t *sum = state_summary(kind, rows);
    if (strcmp(r.c.format, "json") == 0)
      cli_print_json(sum);
    else
      cli_print_summary(kind, sum);
    json_decref(sum);
    status = CLI_OK;
  }
  json_decref(rows);
  cli_state_close(&r);
  return status;
}

int cli_timeline(int argc, char **argv)
{
  cli_state_run_t r = {0};
  snprintf(r.cmd, sizeof(r.cmd), "timeline");
  json_t *rows = NULL;
  int status = cli_state_open(&r,
                              "Writes the tasks' Chrome trace (load it in Perfetto or chrome://tracing): "
                              "rayc timeline [--job ID] -o FILE.",
                              argc, argv);
  if (status == CLI_CONTINUE && !r.c.output) {
    fprintf(stderr, "rayc timeline: name the file to write with -o FILE\n");
    status = CLI_USAGE;
  }
  if (status == CLI_CONTINUE && (status = cli_state_rows(&r, "tasks", &rows)) == 0) {
    json_t *trace = state_timeline(rows);
    if (json_dump_file(trace, r.c.output, JSON_COMPACT) != 0) {
      fprintf(stderr, "rayc timeline: cannot write %s\n", r.c.output);
      status = CLI_FAIL;
    } else {
      printf("wrote %zu task events to %s (open it in https://ui.perfetto.dev or chrome://tracing)\n",
             json_array_size(json_object_get(trace, "traceEvents")), r.c.output);
      status = CLI_OK;
    }
    json_decref(trace);
  }
  json_decref(rows);
  cli_state_close(&r);
  return status;
}

int cli_metrics(int argc, char **argv)
{
  if (argc < 2 || strcmp(argv[1], "targets") != 0) {
    fprintf(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
            "usage: rayc metrics targets [--address HOST:PORT] > targets.json\n"
            "Prints every daemon's /metrics address as Prometheus file_sd JSON.\n");
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CLI_OK : CLI_USAGE;
  }
  cli_state_run_t r = {0};
  snprintf(r.cmd, sizeof(r.cmd), "metrics targets");
  int status = cli_state_open(&r, "Prints the cluster's Prometheus file_sd targets.", argc - 1, argv + 1);
  if (status == CLI_CONTINUE) {
    char host[sizeof(r.address)], *err = NULL;
    int port;
    if (hostport_split(r.address, host, sizeof(host), &port) != 0)
      snprintf(host, sizeof(host), "%s", r.address);
    json_t *targets = NULL;
    if (state_metrics_targets(&r.src, host, &targets, &err) != 0) {
      fprintf(stderr, "rayc metrics targets: cannot query the GCS at %s: %s\n", r.address, err);
      free(err);
      status = CLI_FAIL;
    } else {
      cli_print_json(targets);
      json_decref(targets);
      status = CLI_OK;
    }
  }
  cli_state_close(&r);
  return status;
}
