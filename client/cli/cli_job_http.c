/*
 * The job commands over the head's HTTP endpoint: `rayc job submit|status|logs|stop|list|delete
 * --address http(s)://HEAD:8265`, as Ray's `ray job` CLI talks to Ray's dashboard. cli_job.c hands
 * every JobSubmissionService call (and the two KV calls that upload a working dir) here when the
 * address is a URL; each becomes a request of the Jobs REST API (dashboard/dash_jobs.c) with the
 * cluster token as a bearer header, and the JSON answer becomes the reply message the gRPC path
 * would have had, so the printing, log streaming and waiting code is shared:
 *   InternalKVKeys/InternalKVPut (ns "pkg")  GET/PUT /api/packages/gcs/pkg_<sha256>.tar
 *   SubmitJob   POST /api/jobs/ (Ray's body, plus rayc_submitter and rayc_files for the record)
 *   GetJob, ListJobs, StopJob, DeleteJob      GET /api/jobs/ID, GET /api/jobs/, POST .../stop, DELETE
 *   GetJobLogs  GET /api/jobs/ID/logs (the whole log; the part past the offset is returned)
 * Anything else (the governance records) is not served over HTTP: RAYC_EUNIMPLEMENTED.
 *
 * Why libcurl (Debian's libcurl4-openssl-dev): HTTP/1.1 with TLS, redirects, timeouts and proxies
 * done right, by a library every distribution keeps patched; the project writes none of HTTP.
 */
#include "client/cli/cli_job.h"

#include "common/status.h"
#include "common/util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HTTP_UPLOAD_MIN_MS = 300000 };

struct cli_http {
  CURL *curl;
  struct curl_slist *headers;
  char *base; /* the URL without a trailing '/' */
  char err[CURL_ERROR_SIZE];
};

typedef struct http_buf {
  char *data;
  size_t len;
} http_buf_t;

int cli_job_is_url(const char *address)
{
  return address && (strncmp(address, "http://", 7) == 0 || strncmp(address, "https://", 8) == 0);
}

int cli_job_http_open(cli_job_client_t *c, const char *url)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  cli_http_t *h = xcalloc(1, sizeof(*h));
  h->curl = curl_easy_init();
  if (!h->curl) {
    free(h);
    return RAYC_EIO;
  }
  h->base = xstrdup(url);
  for (size_t n = strlen(h->base); n > 0 && h->base[n - 1] == '/'; n--)
    h->base[n - 1] = '\0';
  if (c->auth.token) {
    char *hdr = xasprintf("Authorization: Bearer %s", c->auth.token);
    h->headers = curl_slist_append(h->headers, hdr);
    free(hdr);
  }
  const rpc_tls_t *t = &c->auth.tls;
  if (t->ca_file && *t->ca_file)
    curl_easy_setopt(h->curl, CURLOPT_CAINFO, t->ca_file);
  if (t->cert_file && *t->cert_file && t->key_file && *t->key_file) {
    curl_easy_setopt(h->curl, CURLOPT_SSLCERT, t->cert_file);
    curl_easy_setopt(h->curl, CURLOPT_SSLKEY, t->key_file);
  }
  curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->err);
  curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
  snprintf(c->address, sizeof(c->address), "%s", h->base);
  c->http = h;
  return 0;
}

void cli_job_http_close(cli_job_client_t *c)
{
  cli_http_t *h = c->http;
  if (!h)
    return;
  curl_slist_free_all(h->headers);
  curl_easy_cleanup(h->curl);
  free(h->base);
  free(h);
  c->http = NULL;
}

static size_t http_collect(char *p, size_t size, size_t n, void *arg)
{
  http_buf_t *b = arg;
  b->data = xrealloc(b->data, b->len + size * n + 1);
  memcpy(b->data + b->len, p, size * n);
  b->len += size * n;
  b->data[b->len] = '\0';
  return size * n;
}

static int http_code_rc(long code)
{
  if (code >= 200 && code < 300)
    return 0;
  if (code == 401 || code == 403)
    return RAYC_EUNAUTHENTICATED;
  if (code == 404)
    return RAYC_ENOT_FOUND;
  if (code == 400 || code == 405 || code == 413)
    return RAYC_EINVALID_ARGUMENT;
  return RAYC_EUNAVAILABLE;
}

/* The error text of an answer: its JSON "msg", else its first line, else the status. New. */
static char *http_detail(long code, const http_buf_t *b)
{
  json_t *o = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
  const char *msg = json_string_value(json_object_get(o, "msg"));
  char *d = msg      ? xasprintf("%s", msg)
            : b->len ? xasprintf("HTTP %ld: %.*s", code, (int)strcspn(b->data, "\r\n"), b->data)
                     : xasprintf("HTTP %ld", code);
  json_decref(o);
  return d;
}

/* One request: method path (under the base URL) with body (may be NULL). 0 with *out the answer's
 * JSON (new; NULL when it is not JSON), or a RAYC_E* code with *detail new. */
static int http_request(cli_job_client_t *c, const char *method, const char *path, const void *body, size_t blen,
                        int timeout_ms, json_t **out, char **detail)
{
  cli_http_t *h = c->http;
  CURL *k = h->curl;
  http_buf_t b = {0};
  char *url = xasprintf("%s%s", h->base, path);
  struct curl_slist *hd = curl_slist_append(NULL, body ? "Content-Type: application/octet-stream" : "Accept: */*");
  for (struct curl_slist *s = h->headers; s; s = s->next)
    hd = curl_slist_append(hd, s->data);
  curl_easy_setopt(k, CURLOPT_URL, url);
  curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(k, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(k, CURLOPT_POSTFIELDS, body ? body : "");
  curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? blen : 0));
  curl_easy_setopt(k, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(k, CURLOPT_HTTPGET, strcmp(method, "GET") == 0 ? 1L : 0L);
  if (strcmp(method, "GET") == 0)
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, NULL);
  curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, http_collect);
  curl_easy_setopt(k, CURLOPT_WRITEDATA, &b);
  h->err[0] = '\0';
  CURLcode cc = curl_easy_perform(k);
  long code = 0;
  curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &code);
  int rc = cc != CURLE_OK ? (cc == CURLE_OPERATION_TIMEDOUT ? RAYC_ETIMEOUT : RAYC_EUNAVAILABLE) : http_code_rc(code);
  if (cc != CURLE_OK)
    *detail = xasprintf("%s %s: %s", method, url, h->err[0] ? h->err : curl_easy_strerror(cc));
  else if (rc != 0)
    *detail = http_detail(code, &b);
  else
    *out = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
  curl_slist_free_all(hd);
  free(b.data);
  free(url);
  return rc;
}

/* Hands a message built on the stack (pointing into JSON) back as a new message of its own. */
static ProtobufCMessage *http_own(const ProtobufCMessage *m)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = xmalloc(n ? n : 1);
  protobuf_c_message_pack(m, buf);
  ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
  free(buf);
  return out;
}

/* ---- Ray's JobDetails -> JobSubmission ---- */

typedef struct http_job {
  Rayc__JobSubmission j;
  Rayc__JobRuntimeEnv env;
  Rayc__StringPair *pairs, **meta, **vars;
} http_job_t;

static size_t http_pairs(json_t *o, Rayc__StringPair *pairs, Rayc__StringPair **ptrs)
{
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v)
  {
    if (!json_is_string(v))
      continue;
    rayc__string_pair__init(&pairs[n]);
    pairs[n].key = (char *)k;
    pairs[n].value = (char *)json_string_value(v);
    ptrs[n] = &pairs[n];
    n++;
  }
  return n;
}

static const char *http_str(json_t *o, const char *key)
{
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* Fills x from d (borrowed: x points into it); free with http_job_release. */
static void http_job_from(json_t *d, http_job_t *x)
{
  memset(x, 0, sizeof(*x));
  rayc__job_submission__init(&x->j);
  rayc__job_runtime_env__init(&x->env);
  json_t *meta = json_object_get(d, "metadata"), *env = json_object_get(d, "runtime_env");
  json_t *vars = json_object_get(env, "env_vars");
  size_t nm = json_object_size(meta), nv = json_object_size(vars);
  x->pairs = xcalloc(nm + nv + 1, sizeof(*x->pairs));
  x->meta = xcalloc(nm + 1, sizeof(*x->meta));
  x->vars = xcalloc(nv + 1, sizeof(*x->vars));
  x->j.submission_id = (char *)http_str(d, "submission_id");
  x->j.entrypoint = (char *)http_str(d, "entrypoint");
  x->j.message = (char *)http_str(d, "message");
  char st[48];
  snprintf(st, sizeof(st), "JOB_%s", http_str(d, "status"));
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(&rayc__job_status__descriptor, st);
  x->j.status = ev ? (Rayc__JobStatus)ev->value : RAYC__JOB_STATUS__JOB_PENDING;
  x->j.start_time_ms = json_integer_value(json_object_get(d, "start_time"));
  x->j.end_time_ms = json_integer_value(json_object_get(d, "end_time"));
  json_t *code = json_object_get(d, "driver_exit_code");
  x->j.has_exit_code = json_is_integer(code);
  x->j.driver_exit_code = (int32_t)json_integer_value(code);
  x->j.entrypoint_num_cpus = json_number_value(json_object_get(d, "entrypoint_num_cpus"));
  x->j.n_metadata = http_pairs(meta, x->pairs, x->meta);
  x->j.metadata = x->meta;
  x->env.n_env_vars = http_pairs(vars, x->pairs + nm, x->vars);
  x->env.env_vars = x->vars;
  x->env.working_dir = (char *)http_str(env, "working_dir");
  x->env.code_path = (char *)http_str(env, "code_path");
  x->j.runtime_env = &x->env;
}

static void http_job_release(http_job_t *x)
{
  free(x->pairs);
  free(x->meta);
  free(x->vars);
}

/* ---- the calls ---- */

static int http_get_job(cli_job_client_t *c, const char *id, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  char *path = xasprintf("/api/jobs/%s", id);
  json_t *o = NULL;
  int rc = http_request(c, "GET", path, NULL, 0, timeout_ms, &o, detail);
  free(path);
  if (rc == 0) {
    http_job_t x;
    http_job_from(o, &x);
    Rayc__GetJobReply r = RAYC__GET_JOB_REPLY__INIT;
    r.job = &x.j;
    *resp = http_own(&r.base);
    http_job_release(&x);
  }
  json_decref(o);
  return rc;
}

static int http_list_jobs(cli_job_client_t *c, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  json_t *o = NULL;
  int rc = http_request(c, "GET", "/api/jobs/", NULL, 0, timeout_ms, &o, detail);
  if (rc != 0)
    return rc;
  size_t n = json_array_size(o);
  http_job_t *x = xcalloc(n + 1, sizeof(*x));
  Rayc__JobSubmission **v = xcalloc(n + 1, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    http_job_from(json_array_get(o, i), &x[i]);
    v[i] = &x[i].j;
  }
  Rayc__ListJobsReply r = RAYC__LIST_JOBS_REPLY__INIT;
  r.jobs = v;
  r.n_jobs = n;
  *resp = http_own(&r.base);
  for (size_t i = 0; i < n; i++)
    http_job_release(&x[i]);
  free(x);
  free(v);
  json_decref(o);
  return 0;
}

/* The log past req->offset; job_ended (asked only when nothing new came) from the job's status. */
static int http_logs(cli_job_client_t *c, const Rayc__GetJobLogsRequest *q, int timeout_ms, ProtobufCMessage **resp,
                     char **detail)
{
  char *path = xasprintf("/api/jobs/%s/logs", q->submission_id);
  json_t *o = NULL;
  int rc = http_request(c, "GET", path, NULL, 0, timeout_ms, &o, detail);
  free(path);
  if (rc != 0)
    return rc;
  const char *logs = http_str(o, "logs");
  size_t len = json_string_length(json_object_get(o, "logs")), off = q->offset < len ? (size_t)q->offset : len;
  Rayc__GetJobLogsReply r = RAYC__GET_JOB_LOGS_REPLY__INIT;
  r.data = pb_bytes(logs + off, len - off);
  r.next_offset = len;
  if (off == len) {
    ProtobufCMessage *j = NULL;
    rc = http_get_job(c, q->submission_id, timeout_ms, &j, detail);
    Rayc__JobStatus st = rc == 0 ? ((Rayc__GetJobReply *)j)->job->status : RAYC__JOB_STATUS__JOB_PENDING;
    r.job_ended = st != RAYC__JOB_STATUS__JOB_PENDING && st != RAYC__JOB_STATUS__JOB_RUNNING;
    pb_free(j);
  }
  if (rc == 0)
    *resp = http_own(&r.base);
  json_decref(o);
  return rc;
}

static int http_stop_delete(cli_job_client_t *c, const char *id, int del, int timeout_ms, ProtobufCMessage **resp,
                            char **detail)
{
  char *path = xasprintf(del ? "/api/jobs/%s" : "/api/jobs/%s/stop", id);
  json_t *o = NULL;
  int rc = http_request(c, del ? "DELETE" : "POST", path, NULL, 0, timeout_ms, &o, detail);
  free(path);
  if (rc == 0) {
    Rayc__StopJobReply s = RAYC__STOP_JOB_REPLY__INIT;
    Rayc__DeleteJobReply d = RAYC__DELETE_JOB_REPLY__INIT;
    s.stopped = json_is_true(json_object_get(o, "stopped"));
    d.deleted = json_is_true(json_object_get(o, "deleted"));
    *resp = http_own(del ? &d.base : &s.base);
  }
  json_decref(o);
  return rc;
}

static json_t *http_pairs_json(Rayc__StringPair **v, size_t n)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i]->key, json_string(v[i]->value));
  return o;
}

/* POST /api/jobs/ with Ray's body; rayc_submitter and rayc_files carry what the gRPC path reports
 * for the governance record (the dashboard adds the peer and the credential it checked). */
static int http_submit(cli_job_client_t *c, const Rayc__SubmitJobRequest *q, int timeout_ms, ProtobufCMessage **resp,
                       char **detail)
{
  const Rayc__JobSubmission *j = q->job;
  const Rayc__JobRuntimeEnv *e = j->runtime_env;
  json_t *env = json_object(), *files = json_array();
  if (e && *e->working_dir)
    json_object_set_new(env, "working_dir", json_string(e->working_dir));
  if (e && *e->code_path)
    json_object_set_new(env, "code_path", json_string(e->code_path));
  if (e && e->n_env_vars)
    json_object_set_new(env, "env_vars", http_pairs_json(e->env_vars, e->n_env_vars));
  for (size_t i = 0; e && i < e->n_files; i++)
    json_array_append_new(files, json_pack("{s:s, s:s, s:I}", "path", e->files[i]->path, "sha256", e->files[i]->sha256,
                                           "size", (json_int_t)e->files[i]->size));
  json_t *body = json_pack("{s:s, s:o, s:o, s:f, s:o, s:I}", "entrypoint", j->entrypoint, "runtime_env", env,
                           "metadata", http_pairs_json(j->metadata, j->n_metadata), "entrypoint_num_cpus",
                           j->entrypoint_num_cpus, "rayc_files", files, "rayc_working_dir_bytes",
                           (json_int_t)(e ? e->working_dir_bytes : 0));
  if (*j->submission_id)
    json_object_set_new(body, "submission_id", json_string(j->submission_id));
  if (j->submitter)
    json_object_set_new(body, "rayc_submitter",
                        json_pack("{s:I, s:s, s:s, s:s}", "uid", (json_int_t)j->submitter->uid, "user",
                                  j->submitter->user, "host", j->submitter->host, "credential",
                                  j->submitter->credential));
  char *text = json_dumps(body, JSON_COMPACT);
  json_t *o = NULL;
  int rc = http_request(c, "POST", "/api/jobs/", text, strlen(text), timeout_ms, &o, detail);
  if (rc == 0) {
    Rayc__SubmitJobReply r = RAYC__SUBMIT_JOB_REPLY__INIT;
    r.submission_id = (char *)http_str(o, "submission_id");
    *resp = http_own(&r.base);
  }
  json_decref(o);
  free(text);
  json_decref(body);
  return rc;
}

/* The working-dir upload: is pkg_<sha256> there (GET), upload it (PUT), under the URI
 * gcs://pkg_<sha256>.tar (the dashboard names what it stores by its SHA-256 too). */
static int http_kv(cli_job_client_t *c, const char *method, const ProtobufCMessage *req, int timeout_ms,
                   ProtobufCMessage **resp, char **detail)
{
  int put = strcmp(method, "InternalKVPut") == 0;
  const ProtobufCBinaryData *key = put ? &((const Rayc__KVPutRequest *)req)->key
                                       : &((const Rayc__KVKeysRequest *)req)->prefix;
  char *path = xasprintf("/api/packages/gcs/%.*s.tar", (int)key->len, (const char *)key->data);
  json_t *o = NULL;
  int rc;
  if (put) {
    const ProtobufCBinaryData *v = &((const Rayc__KVPutRequest *)req)->value;
    int ms = timeout_ms > HTTP_UPLOAD_MIN_MS ? timeout_ms : HTTP_UPLOAD_MIN_MS;
    rc = http_request(c, "PUT", path, v->data, v->len, ms, &o, detail);
    Rayc__KVPutReply r = RAYC__KVPUT_REPLY__INIT;
    if (rc == 0)
      *resp = http_own(&r.base);
  } else {
    rc = http_request(c, "GET", path, NULL, 0, timeout_ms, &o, detail);
    Rayc__KVKeysReply r = RAYC__KVKEYS_REPLY__INIT;
    ProtobufCBinaryData k = *key;
    r.keys = &k;
    r.n_keys = rc == 0;
    if (rc == RAYC_ENOT_FOUND) {
      free(*detail);
      *detail = NULL;
      rc = 0;
    }
    if (rc == 0)
      *resp = http_own(&r.base);
  }
  json_decref(o);
  free(path);
  return rc;
}

int cli_job_http_call(cli_job_client_t *c, const ProtobufCServiceDescriptor *svc, const char *method,
                      const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  char *d = NULL;
  int rc = RAYC_EUNIMPLEMENTED;
  *resp = NULL;
  if (svc == &rayc__internal_kvgcs_service__descriptor &&
      (strcmp(method, "InternalKVKeys") == 0 || strcmp(method, "InternalKVPut") == 0))
    rc = http_kv(c, method, req, timeout_ms, resp, &d);
  else if (svc != &rayc__job_submission_service__descriptor)
    ;
  else if (strcmp(method, "SubmitJob") == 0)
    rc = http_submit(c, (const Rayc__SubmitJobRequest *)req, timeout_ms, resp, &d);
  else if (strcmp(method, "GetJob") == 0)
    rc = http_get_job(c, ((const Rayc__GetJobRequest *)req)->submission_id, timeout_ms, resp, &d);
  else if (strcmp(method, "ListJobs") == 0)
    rc = http_list_jobs(c, timeout_ms, resp, &d);
  else if (strcmp(method, "GetJobLogs") == 0)
    rc = http_logs(c, (const Rayc__GetJobLogsRequest *)req, timeout_ms, resp, &d);
  else if (strcmp(method, "StopJob") == 0)
    rc = http_stop_delete(c, ((const Rayc__StopJobRequest *)req)->submission_id, 0, timeout_ms, resp, &d);
  else if (strcmp(method, "DeleteJob") == 0)
    rc = http_stop_delete(c, ((const Rayc__DeleteJobRequest *)req)->submission_id, 1, timeout_ms, resp, &d);
  if (rc == RAYC_EUNIMPLEMENTED && !d)
    d = xasprintf("%s is not served by the HTTP endpoint %s: give the GCS's HOST:PORT as --address", method,
                  c->address);
  if (detail)
    *detail = d;
  else
    free(d);
  return rc;
}
