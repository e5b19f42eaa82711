/* rayc: the command-line tool. Dispatches to one function per command (see cli.h). */
#include "client/cli/cli.h"
#include "client/cli/cli_job.h"
#include "client/cli/cli_up.h"

#include "common/sysnode.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_list(int argc, char **argv); /* cli_list.c: the state commands */
int cli_get(int argc, char **argv);
int cli_summary(int argc, char **argv);
int cli_timeline(int argc, char **argv);
int cli_metrics(int argc, char **argv);
int cli_logs(int argc, char **argv);

typedef struct cli_command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *doc;
} cli_command_t;

static const cli_command_t cli_commands[] = {
    {"start", cli_start, "start a node: the head (--head) or one joining a cluster (--address)"},
    {"stop", cli_stop, "stop the node started last on this machine (or --all sessions)"},
    {"status", cli_status, "show the cluster's nodes and resources"},
    {"list", cli_list,
     "list the cluster's state: rayc list nodes|jobs|actors|tasks|workers|placement-groups|cluster-events|objects "
     "[--filter "
     "K=V] [--limit N] [--format table|json]"},
    {"get", cli_get, "show one node, job, actor, task, worker or placement group as JSON: rayc get KIND ID"},
    {"summary", cli_summary,
     "count tasks by name or actors by class, per state, or objects by node: rayc summary tasks|actors|objects"},
    {"timeline", cli_timeline, "write the tasks' Chrome trace for Perfetto: rayc timeline [--job ID] -o FILE"},
    {"metrics", cli_metrics, "print every daemon's Prometheus /metrics address: rayc metrics targets > targets.json"},
    {"logs", cli_logs,
     "list or print any node's log files: rayc logs [NAME] [--node-ip IP] [--worker-id ID | --pid PID] [--tail N]"},
    {"memory", cli_memory, "show this node's object store: objects, bytes in memory, bytes spilled"},
    {"get-token", cli_get_token, "print the cluster token (the only command that shows it)"},
    {"job", cli_job,
     "submit, watch and stop jobs; their governance records (rayc job "
     "submit|status|logs|stop|list|delete|record|records)"},
    {"job-supervisor", cli_job_supervisor, "(internal) the job supervisor the GCS starts for each job"},
    {"up", cli_up, "bring a cluster of machines up over ssh (rayc up [--status] CLUSTER.yaml)"},
    {"down", cli_down, "stop a cluster brought up by rayc up (rayc down CLUSTER.yaml)"},
};

static void cli_usage(FILE *out)
{
  fprintf(out, "usage: rayc <command> [flags]\n\ncommands:\n");
  for (size_t i = 0; i < ARRAY_LEN(cli_commands); i++)
    fprintf(out, "  %-9s  %s\n", cli_commands[i].name, cli_commands[i].doc);
  fprintf(out, "\nRun `rayc <command> --help` for the flags of a command.\n");
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    cli_usage(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    cli_usage(stdout);
    return CLI_OK;
  }
  /* On a systemd node every command but start finds the node without flags (common/sysnode.h). */
  const char *temp = getenv("RAYC_TEMP_DIR");
  if ((!temp || !*temp) && strcmp(cmd, "start") != 0 && sysnode_present())
    setenv("RAYC_TEMP_DIR", SYSNODE_DIR, 1);
  for (size_t i = 0; i < ARRAY_LEN(cli_commands); i++)
    if (strcmp(cmd, cli_commands[i].name) == 0)
      return cli_commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "rayc: unknown command '%s'\n", cmd);
  cli_usage(stderr);
  return CLI_USAGE;
}
