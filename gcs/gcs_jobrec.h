/*
 * Governance records of submitted jobs (DESIGN.md "The governance record", issue 12).
 *
 * When a submitted job reaches a terminal state the GCS appends one record: canonical JSON (jansson,
 * sorted keys, compact) saying who submitted what (submitter, credential source, peer), when, with
 * which rayc (version, git revision), onto which cluster (nodes and their resources and labels at
 * submission), the entrypoint and runtime env (working-dir package hash and per-file SHA-256, env
 * var names with secret-looking values redacted), the drivers it started, how it ended and what it
 * left behind. Records are chained: chain_sha256 = SHA-256(prev chain hex + content SHA-256 hex),
 * so editing one (or removing one) breaks the chain at that record; the head of the chain is kept
 * too, so the last record is covered.
 *
 * Storage: table "JOBREC" of the GCS store (Redis when configured), key = the 8-byte big-endian
 * sequence number, value = JSON text {"seq", "submission_id", "prev_sha256", "content_sha256",
 * "chain_sha256", "content": {...}} that a person can read (and, for the test, edit) in Redis; key
 * "head" holds the chain head. A value that no longer parses is kept as text so that verification
 * names it. Verification itself is the client's job (`rayc job records --verify`): the GCS hands
 * out what it stores, it does not vouch for it.
 */
#ifndef RAYC_GCS_JOBREC_H
#define RAYC_GCS_JOBREC_H

#include "common/pb.h"
#include "proto/job.pb-c.h"

#include <stddef.h>

struct gcs_server;
struct gcs_jobsubs;
struct json_t;
typedef struct gcs_store gcs_store_t;

typedef struct gcs_jobrecs {
  gcs_store_t *store;  /* borrowed */
  Rayc__JobRecord **v; /* owned, by seq (v[i]->seq == i + 1 when nothing was removed) */
  size_t n, cap;
  char *head; /* owned: chain_sha256 of the last record, "" when none */
} gcs_jobrecs_t;

/* Returns the records loaded from store (borrowed). Destroy with gcs_jobrecs_destroy(). */
gcs_jobrecs_t *gcs_jobrecs_create(gcs_store_t *store);
void gcs_jobrecs_destroy(gcs_jobrecs_t *r);

/* Appends the record of job j (borrowed) as the cluster s sees it now, with nodes (borrowed: the
 * per-node answers of gcs_jobrec_collect.c, a JSON array; NULL: not gathered); idempotent per job. */
void gcs_jobrecs_append(gcs_jobrecs_t *r, struct gcs_server *s, const Rayc__JobSubmission *j, struct json_t *nodes);

/* gcs_jobrec_collect.c: gathers the per-node use of job j (copied: a delete meanwhile loses
 * nothing) after delay_ms (< 0: the default settle time), then appends its record; one collection
 * per job at a time. */
void gcs_jobrec_collect_start(struct gcs_jobsubs *t, const Rayc__JobSubmission *j, int64_t delay_ms);
/* Launches the collections that are due (from the GCS cron). */
void gcs_jobrec_collect_cron(struct gcs_jobsubs *t, int64_t now);
/* Frees collections not launched (their calls are cancelled with the client first). */
void gcs_jobrec_collect_release(struct gcs_jobsubs *t);

/* The record of submission id, borrowed, or NULL. */
Rayc__JobRecord *gcs_jobrecs_find(const gcs_jobrecs_t *r, const char *id);

/* Fills reply with views of every record and the head (borrowed from r). */
void gcs_jobrecs_view(const gcs_jobrecs_t *r, Rayc__ListJobRecordsReply *reply);

/* The content of j's record as of now (canonical JSON), new (free()); nodes as for
 * gcs_jobrecs_append. */
char *gcs_jobrec_content_json(struct gcs_server *s, const Rayc__JobSubmission *j, struct json_t *nodes);

/* The cluster's nodes (id, address, head, state, resources, labels) as JSON, new (free()). */
char *gcs_jobrec_cluster_json(struct gcs_server *s);

/* 1 when an environment variable name looks secret (TOKEN, KEY, SECRET, PASSWORD, PASSWD,
 * CREDENTIAL, AUTH, PRIVATE, case-insensitive), so its value is redacted in records. */
int gcs_jobrec_secret_name(const char *name);

#endif
