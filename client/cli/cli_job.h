/*
 * `rayc job ...`: the job commands (cli_job.c: status, logs, stop, list, delete and the dispatch;
 * cli_job_submit.c; cli_job_record.c: record, records; cli_job_supervisor.c: the supervisor the GCS
 * starts). Every command talks to the GCS's JobSubmissionService (proto/job.proto), so it works
 * from any host that reaches the GCS; with an http(s):// address the same calls go to the head's
 * Jobs REST API instead (cli_job_http.c), as Ray's `ray job` does.
 *
 * Exit status (distinct, so scripts can tell failures apart): 0 success (for submit and logs
 * --follow: the job SUCCEEDED), 1 the job failed or was stopped / another failure, 2 bad usage,
 * 3 no such job, 4 no cluster (no address known, or the GCS cannot be reached), 5 the cluster
 * refused the token.
 */
#ifndef RAYC_CLI_JOB_H
#define RAYC_CLI_JOB_H

#include "client/cli/cli.h"
#include "common/pb.h"

enum { CLI_JOB_NOT_FOUND = 3, CLI_JOB_NO_CLUSTER = 4, CLI_JOB_AUTH = 5 };

/* Connection settings every job command takes. */
typedef struct cli_job_conn {
  char *address;
  char *temp_dir;
  char *format;
  int timeout_ms;
  cli_sec_t sec;
} cli_job_conn_t;

#define CLI_JOB_CONN_SETTINGS(type, field)                                                                         \
  {"address", CFG_STRING, offsetof(type, field.address), NULL,                                                     \
   "HOST:PORT of the GCS, or http(s)://HEAD:8265 (the Jobs REST API) (unset: $RAYC_ADDRESS, else "                 \
   "<temp-dir>/session_latest/address)"},                                                                          \
      {"temp-dir", CFG_STRING, offsetof(type, field.temp_dir), "/tmp/rayc", "where sessions live"},                \
      {"format", CFG_STRING, offsetof(type, field.format), "table", "table or json"},                              \
      {"timeout-ms", CFG_INT, offsetof(type, field.timeout_ms), "10000", "how long to wait for the GCS per call"}, \
      CLI_SEC_SETTINGS(type, field.sec)

typedef struct cli_http cli_http_t;

/* An open connection to the GCS, or to the head's HTTP endpoint (http set). */
typedef struct cli_job_client {
  cli_auth_t auth;
  rpc_client_t *client;
  rpc_channel_t *ch;
  cli_http_t *http; /* owned; NULL: gRPC to the GCS */
  char address[512];
  int timeout_ms;
  const char *cmd; /* "job status"... for messages */
} cli_job_client_t;

/* Finds the address and token and connects. 0, or an exit status after printing why. */
int cli_job_connect(cli_job_client_t *c, const cli_job_conn_t *conn, const char *cmd);
void cli_job_disconnect(cli_job_client_t *c);

/* Calls JobSubmissionService.method. 0 with *resp new (pb_free), or an exit status after printing
 * the error (prefixed "rayc <cmd>: "). */
int cli_job_call(cli_job_client_t *c, const char *method, const ProtobufCMessage *req, ProtobufCMessage **resp);

/* Calls any service's method on the GCS: 0 or a negative RAYC_E* code, *detail new on failure. */
int cli_job_call_raw(cli_job_client_t *c, const ProtobufCServiceDescriptor *svc, const char *method,
                     const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail);

/* cli_job_http.c: whether address is an http:// or https:// URL; opening c's HTTP side (0 or a
 * RAYC_E* code; after cli_auth_init); closing it (accepts none); a call made over HTTP, with the
 * same contract as cli_job_call_raw. */
int cli_job_is_url(const char *address);
int cli_job_http_open(cli_job_client_t *c, const char *url);
void cli_job_http_close(cli_job_client_t *c);
int cli_job_http_call(cli_job_client_t *c, const ProtobufCServiceDescriptor *svc, const char *method,
                      const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail);

/* The exit status for a failed call's code. */
int cli_job_exit_for(int rc);

/* Streams the job's log from offset to stdout; with follow, until the job ends. Returns 0 or an
 * exit status. */
int cli_job_stream_logs(cli_job_client_t *c, const char *id, int follow);

/* Prints a job as Ray's JobDetails JSON (one object, a newline after). */
void cli_job_print_json(const Rayc__JobSubmission *j);

/* "SUCCEEDED"... */
const char *cli_job_status_name(Rayc__JobStatus st);

int cli_job_submit(int argc, char **argv);     /* cli_job_submit.c */
int cli_job_record(int argc, char **argv);     /* cli_job_record.c */
int cli_job_records(int argc, char **argv);    /* cli_job_record.c */
int cli_job_supervisor(int argc, char **argv); /* cli_job_supervisor.c */

/* The `rayc job` command and the hidden `rayc job-supervisor`. */
int cli_job(int argc, char **argv);

#endif
