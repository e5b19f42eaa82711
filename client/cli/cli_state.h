/*
 * The state API's client side, shared by the `rayc` CLI (list, get, summary, timeline, metrics)
 * and the head's HTTP endpoint (rayc-dashboard): it asks the GCS over gRPC and returns rows as
 * JSON (jansson), one object per node, job, actor, task, worker, placement group or cluster event,
 * with the proto field names (common/pb_json.h) and a few of Ray's derived fields (status,
 * duration_ms ...). Filtering, limits, summaries and the Chrome-trace timeline work on those rows,
 * so every front end shows the same thing.
 */
#ifndef RAYC_CLI_STATE_H
#define RAYC_CLI_STATE_H

#include "common/rpc.h"

#include <jansson.h>
#include <stddef.h>

/* Where the state comes from: the GCS channel (borrowed), the client it belongs to (borrowed: for
 * calls to the nodes' daemons, e.g. objects; NULL: those kinds fail) and a per-call deadline. */
typedef struct state_src {
  rpc_channel_t *gcs;
  rpc_client_t *client;
  int timeout_ms;
} state_src_t;

/* The kinds `rayc list` knows, NULL-terminated. */
extern const char *const state_kinds[];

/* 1 when kind is one of state_kinds. */
int state_kind_valid(const char *kind);

/* The id field of a kind's rows ("node_id" for nodes ...). */
const char *state_id_key(const char *kind);

/* The columns a table of kind shows, NULL-terminated. */
const char *const *state_columns(const char *kind);

/* Fetches every row of kind (for tasks, of job job_hex when not NULL or ""). Returns 0 with *rows
 * a new JSON array, or a negative RAYC_E* code with *err a new message. */
int state_fetch(const state_src_t *s, const char *kind, const char *job_hex, json_t **rows, char **err);

/* cli_state_objects.c: the objects in every alive node's store, as rows (see there). 0 with *rows
 * new, or a code with *err new. Nodes that do not answer are skipped with a warning on stderr. */
int state_fetch_objects(const state_src_t *s, json_t **rows, char **err);

/* Keeps the rows (in place) whose field key, shown as text, equals value (key=value) or differs
 * from it (key!=value). Returns 0, or RAYC_EINVALID_ARGUMENT for a filter without = . */
int state_filter(json_t *rows, const char *filter);

/* Keeps the first limit rows (limit <= 0: all). */
void state_limit(json_t *rows, int limit);

/* The row of rows whose id field (state_id_key) equals id or starts with it when that is
 * unambiguous; borrowed from rows, or NULL. */
json_t *state_find(json_t *rows, const char *kind, const char *id);

/* A field of row as text, into buf. */
const char *state_text(json_t *row, const char *key, char *buf, size_t len);

/* Summaries (Ray's `ray summary`): for tasks, per name the count in each state; for actors, per
 * class; for objects, per node ip the count of each reference type and their bytes. Returns a new object {"summary": {...}, "total": N}. */
json_t *state_summary(const char *kind, json_t *rows);

/* The Chrome trace (loadable in Perfetto and chrome://tracing) of task rows: one complete event
 * ("ph": "X") per task attempt that ran, on a track per node and worker process. Returns new. */
json_t *state_timeline(json_t *tasks);

/* Prometheus file_sd targets of the cluster: [{"targets": ["ip:port"...], "labels": {...}}, ...],
 * one group per daemon kind. gcs_host is the GCS's host as the caller dialled it. Returns 0 with
 * *out new, or a negative code with *err. */
int state_metrics_targets(const state_src_t *s, const char *gcs_host, json_t **out, char **err);

#endif
