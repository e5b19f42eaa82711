/*
 * rayc job status|logs|stop|list|delete, the dispatch of `rayc job`, and the helpers every job
 * command shares (connecting, calling JobSubmissionService, exit codes, JSON). See cli_job.h.
 */
#include "client/cli/cli_job.h"

#include "common/status.h"
#include "common/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { CLI_JOB_FOLLOW_WAIT_MS = 120000 };

/* ---- shared ---- */

const char *cli_job_status_name(Rayc__JobStatus st)
{
  static const char *names[] = {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"};
  return (unsigned)st < ARRAY_LEN(names) ? names[st] : "UNKNOWN";
}

int cli_job_exit_for(int rc)
{
  switch (rc) {
    case RAYC_ENOT_FOUND:
      return CLI_JOB_NOT_FOUND;
    case RAYC_EUNAVAILABLE:
    case RAYC_ETIMEOUT:
    case RAYC_ENOT_CONNECTED:
      return CLI_JOB_NO_CLUSTER;
    case RAYC_EUNAUTHENTICATED:
      return CLI_JOB_AUTH;
    default:
      return CLI_FAIL;
  }
}

int cli_job_connect(cli_job_client_t *c, const cli_job_conn_t *conn, const char *cmd)
{
  memset(c, 0, sizeof(*c));
  c->cmd = cmd;
  c->timeout_ms = conn->timeout_ms > 0 ? conn->timeout_ms : 10000;
  const char *given = conn->address && *conn->address ? conn->address : getenv("RAYC_ADDRESS");
  if (cli_job_is_url(given)) {
    if (cli_auth_init(&c->auth, &conn->sec, conn->temp_dir, cmd) < 0)
      return CLI_FAIL;
    if (cli_job_http_open(c, given) != 0) {
      fprintf(stderr, "rayc %s: cannot set up an HTTP client\n", cmd);
      cli_auth_release(&c->auth);
      return CLI_FAIL;
    }
    return 0;
  }
  if (cli_find_address(given, conn->temp_dir, c->address, sizeof(c->address)) != 0) {
    fprintf(stderr,
            "rayc %s: no cluster: give --address HOST:PORT (or RAYC_ADDRESS), or start one here with "
            "`rayc start --head` (none found under %s)\n",
            cmd, conn->temp_dir);
    return CLI_JOB_NO_CLUSTER;
  }
  if (cli_auth_init(&c->auth, &conn->sec, conn->temp_dir, cmd) < 0)
    return CLI_FAIL;
  c->client = cli_client_create(&c->auth, cmd);
  if (!c->client) {
    cli_auth_release(&c->auth);
    return CLI_FAIL;
  }
  c->ch = rpc_channel_get(c->client, c->address);
  return 0;
}

void cli_job_disconnect(cli_job_client_t *c)
{
  cli_job_http_close(c);
  rpc_client_destroy(c->client);
  c->client = NULL;
  cli_auth_release(&c->auth);
}

int cli_job_call_raw(cli_job_client_t *c, const ProtobufCServiceDescriptor *svc, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  if (c->http)
    return cli_job_http_call(c, svc, method, req, timeout_ms, resp, detail);
  return rpc_call_sync(c->ch, svc, method, req, timeout_ms, resp, detail);
}

int cli_job_call(cli_job_client_t *c, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
  char *detail = NULL;
  *resp = NULL;
  int rc = cli_job_call_raw(c, &rayc__job_submission_service__descriptor, method, req, c->timeout_ms, resp, &detail);
  if (rc == 0)
    return 0;
  if (rc == RAYC_EUNAVAILABLE || rc == RAYC_ETIMEOUT)
    fprintf(stderr, "rayc %s: no cluster answers at %s: %s\n", c->cmd, c->address,
            detail && *detail ? detail : rayc_strerror(rc));
  else
    fprintf(stderr, "rayc %s: %s\n", c->cmd, detail && *detail ? detail : rayc_strerror(rc));
  cli_auth_hint(stderr, &c->auth, rc);
  free(detail);
  return cli_job_exit_for(rc);
}

static json_t *cli_job_pairs(Rayc__StringPair **v, size_t n)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i]->key, json_string(v[i]->value));
  return o;
}

static json_t *cli_job_ms(int64_t ms)
{
  return ms > 0 ? json_integer(ms) : json_null();
}

void cli_job_print_json(const Rayc__JobSubmission *j)
{
  const Rayc__JobRuntimeEnv *e = j->runtime_env;
  json_t *env = json_object();
  if (e && *e->working_dir)
    json_object_set_new(env, "working_dir", json_string(e->working_dir));
  if (e && e->n_env_vars)
    json_object_set_new(env, "env_vars", cli_job_pairs(e->env_vars, e->n_env_vars));
  if (e && *e->code_path)
    json_object_set_new(env, "code_path", json_string(e->code_path));
  json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:f, s:s, s:s, s:o, s:o, s:o, s:o, s:s}", "type", "SUBMISSION",
                        "submission_id", j->submission_id, "entrypoint", j->entrypoint, "runtime_env", env, "metadata",
                        cli_job_pairs(j->metadata, j->n_metadata), "entrypoint_num_cpus", j->entrypoint_num_cpus,
                        "status", cli_job_status_name(j->status), "message", j->message, "start_time",
                        cli_job_ms(j->start_time_ms ? j->start_time_ms : j->submit_time_ms), "end_time",
                        cli_job_ms(j->end_time_ms), "driver_exit_code",
                        j->has_exit_code ? json_integer(j->driver_exit_code) : json_null(), "driver_job_ids",
                        json_array(), "log_path", j->log_path);
  json_t *ids = json_object_get(o, "driver_job_ids");
  for (size_t i = 0; i < j->n_driver_job_ids; i++) {
    char hex[16] = "";
    for (size_t k = 0; k < j->driver_job_ids[i].len && k < 7; k++)
      sprintf(hex + 2 * k, "%02x", j->driver_job_ids[i].data[k]);
    json_array_append_new(ids, json_string(hex));
  }
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  printf("%s\n", s);
  free(s);
  json_decref(o);
}

/* One GetJobLogs call; with follow, a GCS that does not answer (restarting) is waited for up to
 * CLI_JOB_FOLLOW_WAIT_MS. 0 with *resp, or an exit status (printed). */
static int cli_job_logs_call(cli_job_client_t *c, const Rayc__GetJobLogsRequest *req, int follow,
                             ProtobufCMessage **resp)
{
  int64_t since = 0;
  for (;;) {
    char *detail = NULL;
    int rc = cli_job_call_raw(c, &rayc__job_submission_service__descriptor, "GetJobLogs", &req->base, c->timeout_ms,
                              resp, &detail);
    free(detail);
    int away = rc == RAYC_EUNAVAILABLE || rc == RAYC_ETIMEOUT;
    if (!follow || !away || (since && now_ms() - since > CLI_JOB_FOLLOW_WAIT_MS))
      return rc == 0 ? 0 : cli_job_call(c, "GetJobLogs", &req->base, resp);
    if (!since) {
      since = now_ms();
      fprintf(stderr, "rayc %s: the GCS at %s does not answer; waiting for it (up to %d s)\n", c->cmd, c->address,
              CLI_JOB_FOLLOW_WAIT_MS / 1000);
    }
    usleep(500 * 1000);
  }
}

int cli_job_stream_logs(cli_job_client_t *c, const char *id, int follow)
{
  uint64_t off = 0;
  for (;;) {
    Rayc__GetJobLogsRequest req = RAYC__GET_JOB_LOGS_REQUEST__INIT;
    req.submission_id = (char *)id;
    req.offset = off;
    ProtobufCMessage *resp;
    int rc = cli_job_logs_call(c, &req, follow, &resp);
    if (rc != 0)
      return rc;
    Rayc__GetJobLogsReply *r = (Rayc__GetJobLogsReply *)resp;
    if (r->data.len)
      fwrite(r->data.data, 1, r->data.len, stdout);
    fflush(stdout);
    off = r->next_offset;
    int more = r->data.len > 0, ended = r->job_ended;
    pb_free(resp);
    if (!more && (!follow || ended))
      return 0;
    if (!more)
      usleep(250 * 1000);
  }
}

/* ---- the simple commands ---- */

typedef struct cli_job_id_conf {
  cli_job_conn_t conn;
  int follow;
} cli_job_id_conf_t;

#define F(field) offsetof(cli_job_id_conf_t, field)
static const cfg_entry_t cli_job_id_table[] = {
    CLI_JOB_CONN_SETTINGS(cli_job_id_conf_t, conn),
    {"follow", CFG_BOOL, F(follow), "false", "rayc job logs: keep printing until the job ends"},
};
#undef F

/* The index of the first operand of argv[1..argc) (an argument that is neither a flag nor a flag's
 * value), or argc. Flags of table that are not CFG_BOOL take the next argument unless given "=". */
static int cli_job_operand(const cfg_entry_t *table, size_t n, int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0)
      return i + 1 < argc ? i + 1 : argc;
    if (a[0] != '-')
      return i;
    if (strchr(a, '='))
      continue;
    for (size_t k = 0; k < n; k++)
      if (strcmp(a + 2, table[k].name) == 0 && table[k].type != CFG_BOOL)
        i++;
  }
  return argc;
}

/* Parses `rayc job <cmd> [flags] ID [flags]` (or no ID for list). Returns CLI_CONTINUE with *id
 * set (borrowed from argv), or an exit status. */
static int cli_job_parse(const char *cmd, const char *summary, int want_id, cli_job_id_conf_t *conf, int argc,
                         char **argv, const char **id)
{
  *id = NULL;
  char *prog = xasprintf("rayc job %s", cmd), *err = NULL;
  char **args = xcalloc((size_t)argc + 1, sizeof(*args));
  int nargs = 0, op = want_id ? cli_job_operand(cli_job_id_table, ARRAY_LEN(cli_job_id_table), argc, argv) : argc;
  for (int i = 0; i < argc; i++)
    if (i != op)
      args[nargs++] = argv[i];
  if (op < argc)
    *id = argv[op];
  memset(conf, 0, sizeof(*conf));
  cfg_set_program("rayc");
  int next = nargs, rc = cfg_load(cli_job_id_table, ARRAY_LEN(cli_job_id_table), conf, nargs, args, &next, &err);
  int status = CLI_CONTINUE;
  if (rc == CFG_HELP) {
    cfg_usage(stdout, prog, summary, cli_job_id_table, ARRAY_LEN(cli_job_id_table));
    status = CLI_OK;
  } else if (rc < 0 || next < nargs || (want_id && !*id)) {
    fprintf(stderr, "%s: %s\nRun `%s --help` for its flags.\n", prog,
            rc < 0         ? err
            : next < nargs ? "too many arguments"
                           : "which job? give its submission id",
            prog);
    status = CLI_USAGE;
  }
  if (status != CLI_CONTINUE)
    cfg_release(cli_job_id_table, ARRAY_LEN(cli_job_id_table), conf);
  free(args);
  free(err);
  free(prog);
  return status;
}

static void cli_job_print_status(const Rayc__JobSubmission *j)
{
  printf("Status for job '%s': %s\n", j->submission_id, cli_job_status_name(j->status));
  if (*j->message)
    printf("Status message: %s\n", j->message);
}

static void cli_job_time(int64_t ms, char *buf, size_t len)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (ms <= 0 || !gmtime_r(&t, &tm))
    snprintf(buf, len, "-");
  else
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void cli_job_print_list(const Rayc__ListJobsReply *r, int json)
{
  if (json) {
    printf("[\n");
    for (size_t i = 0; i < r->n_jobs; i++) {
      cli_job_print_json(r->jobs[i]);
      if (i + 1 < r->n_jobs)
        printf(",\n");
    }
    printf("]\n");
    return;
  }
  printf("%-34s  %-9s  %-19s  %-19s  %s\n", "SUBMISSION_ID", "STATUS", "START (UTC)", "END (UTC)", "ENTRYPOINT");
  for (size_t i = 0; i < r->n_jobs; i++) {
    const Rayc__JobSubmission *j = r->jobs[i];
    char a[32], b[32];
    cli_job_time(j->start_time_ms ? j->start_time_ms : j->submit_time_ms, a, sizeof(a));
    cli_job_time(j->end_time_ms, b, sizeof(b));
    printf("%-34s  %-9s  %-19s  %-19s  %s\n", j->submission_id, cli_job_status_name(j->status), a, b, j->entrypoint);
  }
  printf("%zu job%s\n", r->n_jobs, r->n_jobs == 1 ? "" : "s");
}

/* Runs one of status, logs, stop, list, delete on a connected client. */
static int cli_job_run(cli_job_client_t *c, const char *cmd, const char *id, const cli_job_id_conf_t *conf)
{
  int json = strcmp(conf->conn.format, "json") == 0;
  ProtobufCMessage *resp = NULL;
  int rc;
  if (strcmp(cmd, "logs") == 0)
    return cli_job_stream_logs(c, id, conf->follow);
  if (strcmp(cmd, "list") == 0) {
    Rayc__ListJobsRequest req = RAYC__LIST_JOBS_REQUEST__INIT;
    if ((rc = cli_job_call(c, "ListJobs", &req.base, &resp)) == 0)
      cli_job_print_list((Rayc__ListJobsReply *)resp, json);
  } else if (strcmp(cmd, "status") == 0) {
    Rayc__GetJobRequest req = RAYC__GET_JOB_REQUEST__INIT;
    req.submission_id = (char *)id;
    if ((rc = cli_job_call(c, "GetJob", &req.base, &resp)) == 0) {
      if (json)
        cli_job_print_json(((Rayc__GetJobReply *)resp)->job);
      else
        cli_job_print_status(((Rayc__GetJobReply *)resp)->job);
    }
  } else if (strcmp(cmd, "stop") == 0) {
    Rayc__StopJobRequest req = RAYC__STOP_JOB_REQUEST__INIT;
    req.submission_id = (char *)id;
    if ((rc = cli_job_call(c, "StopJob", &req.base, &resp)) == 0)
      printf(((Rayc__StopJobReply *)resp)->stopped ? "Job '%s' is being stopped\n" : "Job '%s' had already ended\n",
             id);
  } else {
    Rayc__DeleteJobRequest req = RAYC__DELETE_JOB_REQUEST__INIT;
    req.submission_id = (char *)id;
    if ((rc = cli_job_call(c, "DeleteJob", &req.base, &resp)) == 0)
      printf("Job '%s' deleted\n", id);
  }
  pb_free(resp);
  return rc;
}

static int cli_job_simple(const char *cmd, int argc, char **argv)
{
  static const struct {
    const char *name, *summary;
    int want_id;
  } cmds[] = {
      {"status", "Prints a job's status (rayc job status ID [--format json]).", 1},
      {"logs", "Prints a job's output so far; with --follow until it ends (rayc job logs ID [--follow]).", 1},
      {"stop", "Stops a job: SIGTERM to its process group, SIGKILL after a grace period (rayc job stop ID).", 1},
      {"list", "Lists the submitted jobs (rayc job list [--format json]).", 0},
      {"delete", "Deletes a job that ended, and its log; its governance record stays (rayc job delete ID).", 1},
  };
  for (size_t i = 0; i < ARRAY_LEN(cmds); i++) {
    if (strcmp(cmd, cmds[i].name) != 0)
      continue;
    cli_job_id_conf_t conf;
    const char *id;
    int st = cli_job_parse(cmd, cmds[i].summary, cmds[i].want_id, &conf, argc, argv, &id);
    if (st != CLI_CONTINUE)
      return st;
    char *name = xasprintf("job %s", cmd);
    cli_job_client_t c;
    st = cli_job_connect(&c, &conf.conn, name);
    if (st == 0) {
      st = cli_job_run(&c, cmd, id, &conf);
      cli_job_disconnect(&c);
    }
    free(name);
    cfg_release(cli_job_id_table, ARRAY_LEN(cli_job_id_table), &conf);
    return st;
  }
  return -1;
}

static void cli_job_usage(FILE *out)
{
  fprintf(out, "usage: rayc job <command> [flags]\n\ncommands:\n"
               "  submit   run an entrypoint on the cluster's head: rayc job submit [flags] -- CMD...\n"
               "  status   a job's status\n"
               "  logs     a job's output (--follow: until it ends)\n"
               "  stop     stop a running job\n"
               "  list     every submitted job\n"
               "  delete   forget a job that ended (its record stays)\n"
               "  record   a job's governance record\n"
               "  records  every record; --verify checks the chain\n"
               "\nExit status: 0 ok, 1 job failed or error, 2 usage, 3 no such job, 4 no cluster, 5 bad token.\n");
}

int cli_job(int argc, char **argv)
{
  if (argc < 2) {
    cli_job_usage(stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    cli_job_usage(stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "submit") == 0)
    return cli_job_submit(argc - 1, argv + 1);
  if (strcmp(cmd, "record") == 0)
    return cli_job_record(argc - 1, argv + 1);
  if (strcmp(cmd, "records") == 0)
    return cli_job_records(argc - 1, argv + 1);
  int st = cli_job_simple(cmd, argc - 1, argv + 1);
  if (st >= 0)
    return st;
  fprintf(stderr, "rayc job: unknown command '%s'\n", cmd);
  cli_job_usage(stderr);
  return CLI_USAGE;
}
