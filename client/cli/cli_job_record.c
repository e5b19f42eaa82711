/*
 * rayc job record ID [--format json]: a job's governance record (gcs/gcs_jobrec.h); for a job
 * still running, what its record says so far (not yet chained).
 * rayc job records [--verify] [--format json]: every record; --verify recomputes each record's
 * SHA-256 and the chain and names the first record whose content or chain was altered (exit 1).
 */
#include "client/cli/cli_job.h"

#include "common/pkg.h"
#include "common/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec_conf {
  cli_job_conn_t conn;
  int verify;
} rec_conf_t;

#define F(field) offsetof(rec_conf_t, field)
static const cfg_entry_t rec_table[] = {
    CLI_JOB_CONN_SETTINGS(rec_conf_t, conn),
    {"verify", CFG_BOOL, F(verify), "false", "rayc job records: check every record's hash and the chain"},
};
#undef F

static void rec_print_content(const char *content)
{
  json_t *o = json_loads(content, 0, NULL);
  char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  printf("%s\n", s ? s : content);
  free(s);
  json_decref(o);
}

static int rec_show(cli_job_client_t *c, const char *id, int json)
{
  Rayc__GetJobRecordRequest req = RAYC__GET_JOB_RECORD_REQUEST__INIT;
  req.submission_id = (char *)id;
  ProtobufCMessage *resp;
  int rc = cli_job_call(c, "GetJobRecord", &req.base, &resp);
  if (rc != 0)
    return rc;
  const Rayc__GetJobRecordReply *r = (const Rayc__GetJobRecordReply *)resp;
  if (!json)
    printf("# governance record of job %s: %s\n", id,
           r->final ? "final" : "the job has not ended: what its record says so far (not chained yet)");
  if (r->final && !json)
    printf("# seq %llu, content sha256 %s, chain sha256 %s\n", (unsigned long long)r->record->seq,
           r->record->content_sha256, r->record->chain_sha256);
  rec_print_content(r->record->content_json);
  pb_free(resp);
  return 0;
}

/* Checks the records; returns the index of the first bad one (n when all are good), *why static. */
static size_t rec_verify(Rayc__JobRecord **v, size_t n, const char *head, const char **why)
{
  const char *prev = "";
  for (size_t i = 0; i < n; i++) {
    char h[65], c[65];
    pkg_sha256_hex(v[i]->content_json, strlen(v[i]->content_json), h);
    char *link = xasprintf("%s%s", v[i]->prev_sha256, v[i]->content_sha256);
    pkg_sha256_hex(link, strlen(link), c);
    free(link);
    *why = v[i]->seq != i + 1                     ? "a record before it is missing (sequence gap)"
           : strcmp(h, v[i]->content_sha256) != 0 ? "its content was altered (its SHA-256 does not match)"
           : strcmp(v[i]->prev_sha256, prev) != 0 ? "the chain is broken: it does not follow the record before it"
           : strcmp(c, v[i]->chain_sha256) != 0   ? "its chain hash was altered"
                                                  : NULL;
    if (*why)
      return i;
    prev = v[i]->chain_sha256;
  }
  *why = strcmp(prev, head) != 0 ? "the chain's head does not match the last record (records removed or added)" : NULL;
  return *why ? n : n + 1;
}

static int rec_list(cli_job_client_t *c, int verify, int json)
{
  Rayc__ListJobRecordsRequest req = RAYC__LIST_JOB_RECORDS_REQUEST__INIT;
  ProtobufCMessage *resp;
  int rc = cli_job_call(c, "ListJobRecords", &req.base, &resp);
  if (rc != 0)
    return rc;
  const Rayc__ListJobRecordsReply *r = (const Rayc__ListJobRecordsReply *)resp;
  if (json) {
    printf("[");
    for (size_t i = 0; i < r->n_records; i++) {
      printf("%s\n{\"seq\": %llu, \"submission_id\": \"%s\", \"content_sha256\": \"%s\", \"prev_sha256\": \"%s\", "
             "\"chain_sha256\": \"%s\", \"content\": %s}",
             i ? "," : "", (unsigned long long)r->records[i]->seq, r->records[i]->submission_id,
             r->records[i]->content_sha256, r->records[i]->prev_sha256, r->records[i]->chain_sha256,
             r->records[i]->content_json);
    }
    printf("\n]\n");
  } else if (!verify) {
    printf("%-5s  %-34s  %s\n", "SEQ", "SUBMISSION_ID", "CHAIN_SHA256");
    for (size_t i = 0; i < r->n_records; i++)
      printf("%-5llu  %-34s  %s\n", (unsigned long long)r->records[i]->seq, r->records[i]->submission_id,
             r->records[i]->chain_sha256);
    printf("%zu record%s\n", r->n_records, r->n_records == 1 ? "" : "s");
  }
  if (verify) {
    const char *why;
    size_t bad = rec_verify(r->records, r->n_records, r->head_sha256, &why);
    if (bad < r->n_records) {
      fprintf(stderr, "record %llu (job %s) FAILED verification: %s\n", (unsigned long long)r->records[bad]->seq,
              r->records[bad]->submission_id, why);
      rc = CLI_FAIL;
    } else if (bad == r->n_records) {
      fprintf(stderr, "the record chain FAILED verification: %s\n", why);
      rc = CLI_FAIL;
    } else {
      printf("%zu record%s verified: every content hash and the chain are intact (head %s)\n", r->n_records,
             r->n_records == 1 ? "" : "s", r->head_sha256);
    }
  }
  pb_free(resp);
  return rc;
}

static int rec_main(const char *cmd, const char *summary, int want_id, int argc, char **argv)
{
  rec_conf_t conf;
  const char *id = NULL;
  char **args = xcalloc((size_t)argc + 1, sizeof(*args));
  int nargs = 0;
  for (int i = 0; i < argc; i++) { /* the id: the first argument that is neither a flag nor a value */
    int is_value = i > 1 && argv[i - 1][0] == '-' && !strchr(argv[i - 1], '=') && strcmp(argv[i - 1], "--verify") != 0;
    if (want_id && !id && i > 0 && argv[i][0] != '-' && !is_value)
      id = argv[i];
    else
      args[nargs++] = argv[i];
  }
  int st = cli_parse(cmd, summary, rec_table, ARRAY_LEN(rec_table), &conf, sizeof(conf), nargs, args);
  free(args);
  if (st != CLI_CONTINUE)
    return st;
  if (want_id && !id) {
    fprintf(stderr, "rayc %s: which job? rayc %s ID [--format json]\n", cmd, cmd);
    cfg_release(rec_table, ARRAY_LEN(rec_table), &conf);
    return CLI_USAGE;
  }
  cli_job_client_t c;
  st = cli_job_connect(&c, &conf.conn, cmd);
  if (st == 0) {
    int json = strcmp(conf.conn.format, "json") == 0;
    st = want_id ? rec_show(&c, id, json) : rec_list(&c, conf.verify, json);
    cli_job_disconnect(&c);
  }
  cfg_release(rec_table, ARRAY_LEN(rec_table), &conf);
  return st;
}

int cli_job_record(int argc, char **argv)
{
  return rec_main("job record", "Prints a job's governance record: rayc job record ID [--format json].", 1, argc, argv);
}

int cli_job_records(int argc, char **argv)
{
  return rec_main("job records",
                  "Lists the governance records; --verify checks each record's hash and the chain and names the "
                  "first altered record.",
                  0, argc, argv);
}
