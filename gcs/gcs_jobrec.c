/* Governance records: building, chaining, storing and loading them. See gcs_jobrec.h. */
#include "gcs/gcs_jobrec.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/pkg.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_actor.h"
#include "gcs/gcs_jobsub.h"
#include "gcs/gcs_server.h"
#include "gcs/gcs_task.h"
#include "gcs/gcs_version.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GCS_JOBREC_TABLE "JOBREC"
#define JSON_CANON       (JSON_SORT_KEYS | JSON_COMPACT)

int gcs_jobrec_secret_name(const char *name)
{
  static const char *words[] = {"TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE"};
  for (size_t i = 0; i < ARRAY_LEN(words); i++)
    if (strcasestr(name, words[i]))
      return 1;
  return 0;
}

static json_t *jobrec_resources(Rayc__ResourceEntry **v, size_t n)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i]->name, json_real(v[i]->amount));
  return o;
}

char *gcs_jobrec_cluster_json(struct gcs_server *s)
{
  json_t *nodes = json_array();
  for (size_t i = 0; i < s->nodes.n; i++) {
    const gcs_node_t *n = s->nodes.v[i];
    char id[2 * ID_NODE_SIZE + 1];
    json_t *labels = json_object();
    for (size_t k = 0; k < n->info->n_labels; k++)
      json_object_set_new(labels, n->info->labels[k]->key, json_string(n->info->labels[k]->value));
    json_array_append_new(
        nodes, json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o}", "node_id", id_hex(n->id.b, ID_NODE_SIZE, id), "ip",
                         n->info->ip, "hostname", n->info->hostname, "is_head", n->info->is_head, "state",
                         n->state == GCS_NODE_ALIVE ? "ALIVE" : "DEAD", "resources",
                         jobrec_resources(n->info->resources_total, n->info->n_resources_total), "labels", labels));
  }
  char *out = json_dumps(nodes, JSON_CANON);
  json_decref(nodes);
  return out;
}

static json_t *jobrec_pairs(Rayc__StringPair **v, size_t n, int redact)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i]->key,
                        json_string(redact && gcs_jobrec_secret_name(v[i]->key) ? "<redacted>" : v[i]->value));
  return o;
}

static json_t *jobrec_runtime_env(const Rayc__JobRuntimeEnv *e)
{
  json_t *files = json_array();
  for (size_t i = 0; e && i < e->n_files; i++)
    json_array_append_new(files, json_pack("{s:s, s:s, s:I}", "path", e->files[i]->path, "sha256", e->files[i]->sha256,
                                           "size", (json_int_t)e->files[i]->size));
  return json_pack("{s:s, s:I, s:o, s:o, s:s}", "working_dir", e ? e->working_dir : "", "working_dir_bytes",
                   (json_int_t)(e ? e->working_dir_bytes : 0), "files", files, "env_vars",
                   jobrec_pairs(e ? e->env_vars : NULL, e ? e->n_env_vars : 0, 1), "code_path", e ? e->code_path : "");
}

static json_t *jobrec_submitter(const Rayc__Submitter *u)
{
  if (!u)
    return json_null();
  return json_pack("{s:i, s:s, s:s, s:s, s:s}", "uid", (int)u->uid, "user", u->user, "host", u->host, "credential",
                   u->credential, "peer", u->peer);
}

static json_t *jobrec_drivers(const Rayc__JobSubmission *j)
{
  json_t *a = json_array();
  for (size_t i = 0; i < j->n_driver_job_ids; i++) {
    char hex[2 * ID_JOB_SIZE + 1];
    json_array_append_new(a, json_string(id_hex(j->driver_job_ids[i].data,
                                                j->driver_job_ids[i].len == ID_JOB_SIZE ? ID_JOB_SIZE : 0, hex)));
  }
  return a;
}

/* Sums a numeric field over the per-node objects. */
static double jobrec_sum(json_t *nodes, const char *key, int max)
{
  double v = 0;
  size_t i;
  json_t *n;
  json_array_foreach(nodes, i, n)
  {
    double x = json_number_value(json_object_get(n, key));
    v = max ? (x > v ? x : v) : v + x;
  }
  return v;
}

/* Whether actor a belongs to one of j's drivers. */
static int jobrec_actor_of(const gcs_actor_t *a, const Rayc__JobSubmission *j)
{
  for (size_t i = 0; i < j->n_driver_job_ids; i++)
    if (j->driver_job_ids[i].len == ID_JOB_SIZE && memcmp(a->job.b, j->driver_job_ids[i].data, ID_JOB_SIZE) == 0)
      return 1;
  return 0;
}

/* Actors the job created, and the detached ones still alive (kept by design). */
static json_t *jobrec_actors(struct gcs_server *s, const Rayc__JobSubmission *j, json_t **kept)
{
  json_int_t created = 0;
  *kept = json_array();
  for (hmap_iter_t it = hmap_iter(&s->actors->by_id); hmap_next(&it);) {
    const gcs_actor_t *a = it.value;
    if (!jobrec_actor_of(a, j))
      continue;
    created++;
    char id[2 * ID_ACTOR_SIZE + 1];
    if (a->detached && a->state != RAYC__ACTOR_STATE__ACTOR_DEAD)
      json_array_append_new(
          *kept, json_pack("{s:s, s:s}", "actor_id", id_hex(a->id, ID_ACTOR_SIZE, id), "name", a->name ? a->name : ""));
  }
  return json_integer(created);
}

/* The actors, the cleanup list (what was left) and what is kept by design. */
static void jobrec_cleanup(json_t *o, struct gcs_server *s, const Rayc__JobSubmission *j, json_t *per_node,
                           json_t *procs, json_t *eps)
{
  json_t *kept;
  json_object_set_new(o, "actors_created", jobrec_actors(s, j, &kept));
  json_t *running = json_array();
  for (size_t d = 0; d < j->n_driver_job_ids; d++) {
    gcs_job_t *dj = gcs_jobs_find(&s->jobs, j->driver_job_ids[d].data, j->driver_job_ids[d].len);
    char hex[2 * ID_JOB_SIZE + 1];
    const Rayc__Address *da = dj && dj->info ? dj->info->driver : NULL;
    if (da && da->port > 0) { /* the driver's own CoreWorkerService */
      char *ep = xasprintf("%s:%d", da->ip, da->port);
      json_array_append_new(eps, json_string(ep));
      free(ep);
    }
    if (dj && dj->state == GCS_JOB_RUNNING)
      json_array_append_new(running, json_string(id_hex(dj->id.b, ID_JOB_SIZE, hex)));
  }
  json_t *cleanup = json_pack("{s:o, s:I, s:I, s:I, s:o}", "processes", procs, "objects_left",
                              (json_int_t)jobrec_sum(per_node, "objects_left", 0), "bytes_left",
                              (json_int_t)jobrec_sum(per_node, "bytes_left", 0), "spill_copies_left",
                              (json_int_t)jobrec_sum(per_node, "spilled_left", 0), "driver_jobs_still_running",
                              running);
  json_object_set_new(o, "cleanup", cleanup);
  const char *wd = j->runtime_env ? j->runtime_env->working_dir : "";
  char *copies = *wd ? xasprintf("<session>/runtime_env/%s on each node that ran the job: a shared, "
                                 "content-addressed cache",
                                 wd)
                     : xstrdup("");
  json_object_set_new(o, "kept_by_design",
                      json_pack("{s:o, s:s, s:I}", "detached_actors", kept, "working_dir_copies", copies,
                                "evictable_cached_copies", (json_int_t)jobrec_sum(per_node, "cached_copies_left", 0)));
  free(copies);
}

/* The per-node entry of node hex id in per_node, made (with the id only) when missing. */
static json_t *jobrec_node_entry(json_t *per_node, const char *hex)
{
  size_t i;
  json_t *n;
  json_array_foreach(per_node, i, n)
  {
    const char *id = json_string_value(json_object_get(n, "node_id"));
    if (id && strcmp(id, hex) == 0)
      return n;
  }
  n = json_pack("{s:s}", "node_id", hex);
  json_array_append_new(per_node, n);
  return n;
}

/* Adds tasks_run and actors_created to every node's entry, from the GCS's per-job per-node counts
 * of task events (gcs_task.h), summed over the job's drivers. */
static void jobrec_runs(struct gcs_server *s, const Rayc__JobSubmission *j, json_t *per_node)
{
  size_t i;
  json_t *n;
  json_array_foreach(per_node, i, n)
  {
    json_object_set_new(n, "tasks_run", json_integer(0));
    json_object_set_new(n, "actors_created", json_integer(0));
  }
  for (size_t d = 0; d < j->n_driver_job_ids; d++) {
    if (j->driver_job_ids[d].len != ID_JOB_SIZE)
      continue;
    gcs_task_runs_t *runs;
    size_t k = gcs_task_runs_of_job(s->events, j->driver_job_ids[d].data, &runs);
    for (size_t r = 0; r < k; r++) {
      char hex[2 * ID_NODE_SIZE + 1];
      json_t *e = jobrec_node_entry(per_node, id_hex(runs[r].node, ID_NODE_SIZE, hex));
      json_int_t t = json_integer_value(json_object_get(e, "tasks_run")) + runs[r].tasks;
      json_int_t a = json_integer_value(json_object_get(e, "actors_created")) + runs[r].actors;
      json_object_set_new(e, "tasks_run", json_integer(t));
      json_object_set_new(e, "actors_created", json_integer(a));
    }
    free(runs);
  }
}

/* Resource use, data movement, endpoints and the cleanup list, from the nodes' answers. */
static void jobrec_usage(json_t *o, struct gcs_server *s, const Rayc__JobSubmission *j, json_t *nodes)
{
  json_t *per_node = nodes ? json_deep_copy(nodes) : json_array(), *procs = json_array(), *eps = json_array();
  jobrec_runs(s, j, per_node);
  size_t i;
  json_t *n;
  json_array_foreach(per_node, i, n)
  {
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(n, "processes_left"), k, x)
        json_array_append_new(procs, json_pack("{s:O, s:O}", "node_ip", json_object_get(n, "ip"), "pid", x));
    json_array_extend(eps, json_object_get(n, "endpoints"));
  }
  json_object_set_new(o, "resources",
                      json_pack("{s:o, s:f, s:I, s:I, s:{s:s, s:f, s:I}}", "per_node", per_node, "cpu_seconds",
                                jobrec_sum(per_node, "cpu_seconds", 0), "tasks_run",
                                (json_int_t)jobrec_sum(per_node, "tasks_run", 0), "peak_rss_bytes",
                                (json_int_t)jobrec_sum(per_node, "peak_rss_bytes", 1), "entrypoint", "node_ip",
                                j->supervisor_node_ip, "cpu_seconds", j->entrypoint_cpu_seconds, "peak_rss_bytes",
                                (json_int_t)j->entrypoint_peak_rss_bytes));
  json_object_set_new(o, "objects",
                      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "objects_created",
                                (json_int_t)jobrec_sum(per_node, "objects_created", 0), "bytes_created",
                                (json_int_t)jobrec_sum(per_node, "bytes_created", 0), "objects_pulled_between_nodes",
                                (json_int_t)jobrec_sum(per_node, "objects_pulled", 0), "bytes_pulled_between_nodes",
                                (json_int_t)jobrec_sum(per_node, "bytes_pulled", 0), "objects_spilled",
                                (json_int_t)jobrec_sum(per_node, "objects_spilled", 0), "bytes_spilled",
                                (json_int_t)jobrec_sum(per_node, "bytes_spilled", 0)));
  json_object_set_new(o, "endpoints", eps);
  jobrec_cleanup(o, s, j, per_node, procs, eps);
  json_object_set_new(o, "usage_complete", json_boolean(nodes != NULL));
}

char *gcs_jobrec_content_json(struct gcs_server *s, const Rayc__JobSubmission *j, struct json_t *nodes)
{
  json_t *cluster = json_loads(j->cluster_json, 0, NULL);
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:o, s:i, s:o, s:{s:I, s:I, s:I}, s:{s:s, s:s}, s:o, s:s, s:f, s:o, s:o, s:o, s:s, s:i}",
      "submission_id", j->submission_id, "status", gcs_jobsub_status_name(j->status), "message", j->message,
      "driver_exit_code", j->has_exit_code ? json_integer(j->driver_exit_code) : json_null(), "term_signal",
      j->term_signal, "submitter", jobrec_submitter(j->submitter), "times", "submit_ms", (json_int_t)j->submit_time_ms,
      "start_ms", (json_int_t)j->start_time_ms, "end_ms", (json_int_t)j->end_time_ms, "rayc", "version", gcs_version(),
      "revision", gcs_git_revision(), "cluster_at_submission", cluster ? cluster : json_null(), "entrypoint",
      j->entrypoint, "entrypoint_num_cpus", j->entrypoint_num_cpus, "runtime_env", jobrec_runtime_env(j->runtime_env),
      "metadata", jobrec_pairs(j->metadata, j->n_metadata, 0), "driver_job_ids", jobrec_drivers(j),
      "supervisor_node_ip", j->supervisor_node_ip, "supervisor_pid", j->supervisor_pid);
  if (o)
    jobrec_usage(o, s, j, nodes);
  char *out = o ? json_dumps(o, JSON_CANON) : xstrdup("{}");
  json_decref(o);
  return out;
}

/* ---- the chain ---- */

static void jobrec_push(gcs_jobrecs_t *r, Rayc__JobRecord *rec)
{
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 16;
    r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
  }
  r->v[r->n++] = rec;
}

static void jobrec_key(uint64_t seq, uint8_t key[8])
{
  for (int i = 0; i < 8; i++)
    key[i] = (uint8_t)(seq >> (56 - 8 * i));
}

/* The stored text of rec: its fields and the content as a JSON object. */
static char *jobrec_stored_text(const Rayc__JobRecord *rec)
{
  json_t *content = json_loads(rec->content_json, 0, NULL);
  json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "seq", (json_int_t)rec->seq, "submission_id",
                        rec->submission_id, "prev_sha256", rec->prev_sha256, "content_sha256", rec->content_sha256,
                        "chain_sha256", rec->chain_sha256, "content", content ? content : json_null());
  char *out = json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1));
  json_decref(o);
  return out;
}

static Rayc__JobRecord *jobrec_new(uint64_t seq, const char *sid, const char *content, const char *prev)
{
  Rayc__JobRecord *rec = xcalloc(1, sizeof(*rec));
  rayc__job_record__init(rec);
  char h[65];
  rec->seq = seq;
  rec->submission_id = xstrdup(sid);
  rec->content_json = xstrdup(content);
  pkg_sha256_hex(content, strlen(content), h);
  rec->content_sha256 = xstrdup(h);
  rec->prev_sha256 = xstrdup(prev);
  char *link = xasprintf("%s%s", prev, rec->content_sha256);
  pkg_sha256_hex(link, strlen(link), h);
  free(link);
  rec->chain_sha256 = xstrdup(h);
  return rec;
}

void gcs_jobrecs_append(gcs_jobrecs_t *r, struct gcs_server *s, const Rayc__JobSubmission *j, struct json_t *nodes)
{
  if (gcs_jobrecs_find(r, j->submission_id))
    return;
  char *content = gcs_jobrec_content_json(s, j, nodes);
  uint64_t seq = r->n ? r->v[r->n - 1]->seq + 1 : 1;
  Rayc__JobRecord *rec = jobrec_new(seq, j->submission_id, content, r->head);
  free(content);
  jobrec_push(r, rec);
  free(r->head);
  r->head = xstrdup(rec->chain_sha256);
  char *text = jobrec_stored_text(rec);
  uint8_t key[8];
  jobrec_key(seq, key);
  int rc = gcs_store_put(r->store, GCS_JOBREC_TABLE, key, 8, text, strlen(text), 1);
  if (rc >= 0)
    rc = gcs_store_put(r->store, GCS_JOBREC_TABLE, "head", 4, r->head, strlen(r->head), 1);
  if (rc < 0)
    log_error("job %s: storing its governance record failed: %s", j->submission_id, rayc_strerror(rc));
  else
    log_info("job %s: governance record %llu appended (chain %.16s...)", j->submission_id, (unsigned long long)seq,
             r->head);
  free(text);
}

static char *jobrec_strndup(const uint8_t *p, size_t n)
{
  char *s = xmalloc(n + 1);
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

static const char *jobrec_jstr(json_t *o, const char *k)
{
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

/* Rebuilds a record from its stored text; a value that does not parse is kept as its text. */
static void jobrec_load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
  gcs_jobrecs_t *r = arg;
  if (klen == 4 && memcmp(key, "head", 4) == 0) {
    free(r->head);
    r->head = jobrec_strndup(val, vlen);
    return;
  }
  uint64_t seq = 0;
  for (size_t i = 0; i < klen && i < 8; i++)
    seq = seq << 8 | key[i];
  Rayc__JobRecord *rec = xcalloc(1, sizeof(*rec));
  rayc__job_record__init(rec);
  rec->seq = seq;
  json_t *o = json_loadb((const char *)val, vlen, 0, NULL);
  json_t *content = o ? json_object_get(o, "content") : NULL;
  rec->content_json = content ? json_dumps(content, JSON_CANON | JSON_ENCODE_ANY) : jobrec_strndup(val, vlen);
  rec->submission_id = xstrdup(jobrec_jstr(o, "submission_id"));
  rec->prev_sha256 = xstrdup(jobrec_jstr(o, "prev_sha256"));
  rec->content_sha256 = xstrdup(jobrec_jstr(o, "content_sha256"));
  rec->chain_sha256 = xstrdup(jobrec_jstr(o, "chain_sha256"));
  json_decref(o);
  jobrec_push(r, rec);
}

static int jobrec_cmp(const void *a, const void *b)
{
  uint64_t x = (*(Rayc__JobRecord *const *)a)->seq, y = (*(Rayc__JobRecord *const *)b)->seq;
  return x < y ? -1 : x > y;
}

gcs_jobrecs_t *gcs_jobrecs_create(gcs_store_t *store)
{
  gcs_jobrecs_t *r = xcalloc(1, sizeof(*r));
  r->store = store;
  r->head = xstrdup("");
  int rc = gcs_store_scan(store, GCS_JOBREC_TABLE, NULL, 0, jobrec_load_one, r);
  if (r->n)
    qsort(r->v, r->n, sizeof(*r->v), jobrec_cmp);
  if (rc > 0)
    log_info("governance records: loaded %zu", r->n);
  return r;
}

void gcs_jobrecs_destroy(gcs_jobrecs_t *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    pb_free(r->v[i]);
  free(r->v);
  free(r->head);
  free(r);
}

Rayc__JobRecord *gcs_jobrecs_find(const gcs_jobrecs_t *r, const char *id)
{
  for (size_t i = r->n; id && i-- > 0;)
    if (strcmp(r->v[i]->submission_id, id) == 0)
      return r->v[i];
  return NULL;
}

void gcs_jobrecs_view(const gcs_jobrecs_t *r, Rayc__ListJobRecordsReply *reply)
{
  reply->n_records = r->n;
  reply->records = r->v;
  reply->head_sha256 = r->head;
}
