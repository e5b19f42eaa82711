/*
 * The Jobs REST API in Ray's paths and JSON shapes, over the GCS's JobSubmissionService (the job
 * supervisor, issue 12), so Ray's JobSubmissionClient, `ray job` and scripts written against Ray's
 * documentation work with a bearer header:
 *   GET  /api/jobs/                  list of JobDetails
 *   POST /api/jobs/                  {"entrypoint", "submission_id"?, "runtime_env"?, "metadata"?,
 *                                     "entrypoint_num_cpus"?} -> {"job_id", "submission_id"}
 *   GET  /api/jobs/{id}              JobDetails (404 when unknown)
 *   GET  /api/jobs/{id}/logs         {"logs": "..."}
 *   POST /api/jobs/{id}/stop         {"stopped": bool}
 *   DELETE /api/jobs/{id}            {"deleted": bool}
 *   GET|PUT /api/packages/{protocol}/{name}   a working-dir package Ray's client uploads
 *                                     ("gcs://_ray_pkg_<hash>.zip"): stored content-addressed in
 *                                     the GCS KV like `rayc job submit --working-dir` does, with
 *                                     the URI mapped to it (namespace "pkg_uri").
 * runtime_env.working_dir is such a URI or a "pkg_<sha256>" name: a package already uploaded.
 */
#include "dashboard/dash.h"

#include "common/ids.h"
#include "common/pb.h"
#include "common/pb_json.h"
#include "common/pkg.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/job.pb-c.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DASH_LOG_MAX = 16 << 20 };

static unsigned dash_http_of(int rc)
{
  switch (rc) {
    case RAYC_ENOT_FOUND:
      return MHD_HTTP_NOT_FOUND;
    case RAYC_EINVALID_ARGUMENT:
    case RAYC_EALREADY_EXISTS:
      return MHD_HTTP_BAD_REQUEST;
    case RAYC_EUNAUTHENTICATED:
      return MHD_HTTP_FORBIDDEN;
    default:
      return MHD_HTTP_SERVICE_UNAVAILABLE;
  }
}

/* Calls JobSubmissionService.method (or svc.method); on failure replies with the error. */
static int dash_call(dash_req_t *r, const ProtobufCServiceDescriptor *svc, const char *method,
                     const ProtobufCMessage *req, ProtobufCMessage **resp, enum MHD_Result *sent)
{
  char *detail = NULL;
  int rc = rpc_call_sync(r->d->src.gcs, svc ? svc : &rayc__job_submission_service__descriptor, method, req,
                         r->d->src.timeout_ms, resp, &detail);
  if (rc != 0)
    *sent = dash_reply_error(r, dash_http_of(rc), "%s", detail && *detail ? detail : rayc_strerror(rc));
  free(detail);
  return rc;
}

static const char *dash_job_status(Rayc__JobStatus s)
{
  const char *n = pb_json_enum_name(&rayc__job_status__descriptor, s);
  return strncmp(n, "JOB_", 4) == 0 ? n + 4 : n;
}

static json_t *dash_pairs(Rayc__StringPair **v, size_t n)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i]->key, json_string(v[i]->value));
  return o;
}

/* A JobSubmission as Ray's JobDetails. */
static json_t *dash_job_details(const Rayc__JobSubmission *j)
{
  char job[2 * ID_JOB_SIZE + 1] = "";
  if (j->n_driver_job_ids && j->driver_job_ids[0].len == ID_JOB_SIZE)
    id_hex(j->driver_job_ids[0].data, ID_JOB_SIZE, job);
  json_t *env = json_object();
  if (j->runtime_env) {
    if (*j->runtime_env->working_dir)
      json_object_set_new(env, "working_dir", json_string(j->runtime_env->working_dir));
    if (j->runtime_env->n_env_vars)
      json_object_set_new(env, "env_vars", dash_pairs(j->runtime_env->env_vars, j->runtime_env->n_env_vars));
    if (*j->runtime_env->code_path)
      json_object_set_new(env, "code_path", json_string(j->runtime_env->code_path));
  }
  return json_pack(
      "{s:s, s:o, s:s, s:n, s:s, s:s, s:s, s:n, s:I, s:o, s:o, s:o, s:n, s:n, s:o, s:f}", "type", "SUBMISSION",
      "job_id", *job ? json_string(job) : json_null(), "submission_id", j->submission_id, "driver_info", "status",
      dash_job_status(j->status), "entrypoint", j->entrypoint, "message", j->message, "error_type", "start_time",
      (json_int_t)(j->start_time_ms ? j->start_time_ms : j->submit_time_ms), "end_time",
      j->end_time_ms ? json_integer(j->end_time_ms) : json_null(), "metadata", dash_pairs(j->metadata, j->n_metadata),
      "runtime_env", env, "driver_agent_http_address", "driver_node_id", "driver_exit_code",
      j->has_exit_code ? json_integer(j->driver_exit_code) : json_null(), "entrypoint_num_cpus",
      j->entrypoint_num_cpus);
}

static enum MHD_Result dash_jobs_list(dash_req_t *r)
{
  Rayc__ListJobsRequest req = RAYC__LIST_JOBS_REQUEST__INIT;
  ProtobufCMessage *resp;
  enum MHD_Result sent;
  if (dash_call(r, NULL, "ListJobs", &req.base, &resp, &sent) != 0)
    return sent;
  const Rayc__ListJobsReply *l = (const Rayc__ListJobsReply *)resp;
  json_t *jobs = json_array();
  for (size_t i = 0; i < l->n_jobs; i++)
    json_array_append_new(jobs, dash_job_details(l->jobs[i]));
  pb_free(resp);
  return dash_reply_json(r, MHD_HTTP_OK, jobs);
}

static enum MHD_Result dash_jobs_get(dash_req_t *r, const char *id)
{
  Rayc__GetJobRequest req = RAYC__GET_JOB_REQUEST__INIT;
  req.submission_id = (char *)id;
  ProtobufCMessage *resp;
  enum MHD_Result sent;
  if (dash_call(r, NULL, "GetJob", &req.base, &resp, &sent) != 0)
    return sent;
  json_t *d = dash_job_details(((Rayc__GetJobReply *)resp)->job);
  pb_free(resp);
  return dash_reply_json(r, MHD_HTTP_OK, d);
}

static enum MHD_Result dash_jobs_logs(dash_req_t *r, const char *id)
{
  Rayc__GetJobLogsRequest req = RAYC__GET_JOB_LOGS_REQUEST__INIT;
  req.submission_id = (char *)id;
  req.max_bytes = 1 << 20;
  char *logs = xstrdup("");
  size_t len = 0;
  for (;;) {
    ProtobufCMessage *resp;
    enum MHD_Result sent;
    if (dash_call(r, NULL, "GetJobLogs", &req.base, &resp, &sent) != 0) {
      free(logs);
      return sent;
    }
    const Rayc__GetJobLogsReply *l = (const Rayc__GetJobLogsReply *)resp;
    size_t n = l->data.len;
    int more = n > 0 && len + n <= DASH_LOG_MAX && l->next_offset > req.offset;
    if (n && len + n <= DASH_LOG_MAX) {
      logs = xrealloc(logs, len + n + 1);
      memcpy(logs + len, l->data.data, n);
      logs[len += n] = '\0';
    }
    req.offset = l->next_offset;
    pb_free(resp);
    if (!more)
      break;
  }
  json_t *s = json_stringn_nocheck(logs, len);
  free(logs);
  return dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "logs", s));
}

static enum MHD_Result dash_jobs_stop(dash_req_t *r, const char *id, int delete)
{
  Rayc__StopJobRequest sreq = RAYC__STOP_JOB_REQUEST__INIT;
  Rayc__DeleteJobRequest dreq = RAYC__DELETE_JOB_REQUEST__INIT;
  sreq.submission_id = dreq.submission_id = (char *)id;
  ProtobufCMessage *resp;
  enum MHD_Result sent;
  if (dash_call(r, NULL, delete ? "DeleteJob" : "StopJob", delete ? &dreq.base : &sreq.base, &resp, &sent) != 0)
    return sent;
  int done = delete ? ((Rayc__DeleteJobReply *)resp)->deleted : ((Rayc__StopJobReply *)resp)->stopped;
  pb_free(resp);
  return dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", delete ? "deleted" : "stopped", done));
}

/* ---- packages ---- */

/* "gcs/_ray_pkg_ab12.zip" -> a URI "gcs://_ray_pkg_ab12.zip" into uri; -1 for a malformed one. */
static int dash_pkg_uri(const char *rest, char *uri, size_t len)
{
  const char *slash = strchr(rest, '/');
  if (!slash || slash == rest || !slash[1] || strlen(rest) > 200)
    return -1;
  for (const char *p = rest; *p; p++)
    if (!(isalnum((unsigned char)*p) || strchr("_-./", *p)) || (p != slash && *p == '/'))
      return -1;
  if (strstr(rest, ".."))
    return -1;
  snprintf(uri, len, "%.*s://%s", (int)(slash - rest), rest, slash + 1);
  return 0;
}

/* The package name a URI was uploaded as ("pkg_<sha256>", new), or NULL. */
static char *dash_pkg_lookup(dash_req_t *r, const char *uri, enum MHD_Result *sent, int *failed)
{
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"pkg_uri";
  req.key = pb_bytes(uri, strlen(uri));
  ProtobufCMessage *resp;
  *failed = dash_call(r, &rayc__internal_kvgcs_service__descriptor, "InternalKVGet", &req.base, &resp, sent) != 0;
  if (*failed)
    return NULL;
  const Rayc__KVGetReply *g = (const Rayc__KVGetReply *)resp;
  char *name = g->found ? strndup((const char *)g->value.data, g->value.len) : NULL;
  pb_free(resp);
  return name;
}

static int dash_kv_put(dash_req_t *r, const char *ns, const char *key, const void *val, size_t len,
                       enum MHD_Result *sent)
{
  Rayc__KVPutRequest req = RAYC__KVPUT_REQUEST__INIT;
  req.ns = (char *)ns;
  req.key = pb_bytes(key, strlen(key));
  req.value = pb_bytes(val, len);
  req.overwrite = 1;
  ProtobufCMessage *resp;
  int rc = dash_call(r, &rayc__internal_kvgcs_service__descriptor, "InternalKVPut", &req.base, &resp, sent);
  if (rc == 0)
    pb_free(resp);
  return rc;
}

static enum MHD_Result dash_packages(dash_req_t *r, const char *rest)
{
  char uri[256];
  enum MHD_Result sent;
  int failed;
  if (dash_pkg_uri(rest, uri, sizeof(uri)) != 0)
    return dash_reply_error(r, MHD_HTTP_BAD_REQUEST, "a package path is /api/packages/PROTOCOL/NAME");
  if (strcmp(r->method, "GET") == 0) {
    char *name = dash_pkg_lookup(r, uri, &sent, &failed);
    if (failed)
      return sent;
    enum MHD_Result ret = name ? dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:s}", "result", 1, "package", name))
                               : dash_reply_error(r, MHD_HTTP_NOT_FOUND, "package %s is not uploaded", uri);
    free(name);
    return ret;
  }
  if (strcmp(r->method, "PUT") != 0)
    return dash_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "packages are read with GET and uploaded with PUT");
  if (!r->body_len)
    return dash_reply_error(r, MHD_HTTP_BAD_REQUEST, "the package is empty");
  char sha[65], name[69];
  pkg_sha256_hex(r->body, r->body_len, sha);
  snprintf(name, sizeof(name), "pkg_%s", sha);
  if (dash_kv_put(r, "pkg", name, r->body, r->body_len, &sent) != 0 ||
      dash_kv_put(r, "pkg_uri", uri, name, strlen(name), &sent) != 0)
    return sent;
  return dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:s, s:s}", "result", 1, "msg", "uploaded", "package", name));
}

/* ---- submit ---- */

/* Fills pairs from a JSON object of strings; 0, or -1 when a value is not a string. */
static int dash_pairs_from(json_t *obj, Rayc__StringPair ***out, size_t *n)
{
  *out = NULL;
  *n = 0;
  if (!obj || json_is_null(obj))
    return 0;
  if (!json_is_object(obj))
    return -1;
  *out = xcalloc(json_object_size(obj) + 1, sizeof(**out));
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v)
  {
    if (!json_is_string(v))
      return -1;
    Rayc__StringPair *p = xmalloc(sizeof(*p));
    rayc__string_pair__init(p);
    p->key = (char *)k;
    p->value = (char *)json_string_value(v);
    (*out)[(*n)++] = p;
  }
  return 0;
}

static void dash_pairs_free(Rayc__StringPair **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* What `rayc job submit --address http://...` reports beside Ray's body, for the governance
 * record (the gRPC path sends the same in the request): the packed files and who submitted
 * ("rayc_submitter": uid, user, host, as the client says, like over gRPC). The files point into
 * body; free renv->files and its array. */
static void dash_rayc_extras(json_t *body, Rayc__JobRuntimeEnv *renv, Rayc__Submitter *u, char *hostbuf, size_t len)
{
  json_t *files = json_object_get(body, "rayc_files"), *f, *who = json_object_get(body, "rayc_submitter");
  size_t i;
  renv->files = xcalloc(json_array_size(files) + 1, sizeof(*renv->files));
  json_array_foreach(files, i, f)
  {
    const char *path = json_string_value(json_object_get(f, "path"));
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!path || !sha)
      continue;
    Rayc__PackedFile *p = xmalloc(sizeof(*p));
    rayc__packed_file__init(p);
    p->path = (char *)path;
    p->sha256 = (char *)sha;
    p->size = (uint64_t)json_integer_value(json_object_get(f, "size"));
    renv->files[renv->n_files++] = p;
  }
  renv->working_dir_bytes = (uint64_t)json_integer_value(json_object_get(body, "rayc_working_dir_bytes"));
  if (!json_is_object(who))
    return;
  const char *user = json_string_value(json_object_get(who, "user")),
             *host = json_string_value(json_object_get(who, "host"));
  if (json_is_integer(json_object_get(who, "uid")))
    u->uid = (uint32_t)json_integer_value(json_object_get(who, "uid"));
  if (user)
    u->user = (char *)user;
  if (host) { /* "its name (the address it connected from)" */
    char ip[64];
    snprintf(ip, sizeof(ip), "%s", hostbuf);
    snprintf(hostbuf, len, "%.*s (%s)", (int)(len > strlen(ip) + 4 ? len - strlen(ip) - 4 : 0), host, ip);
  }
}

/* The submitter as the HTTP side knows it: the client's address and how it authenticated. */
static void dash_submitter(dash_req_t *r, Rayc__Submitter *u, char *host, size_t len)
{
  rayc__submitter__init(u);
  u->uid = (uint32_t)-1;
  u->user = (char *)"http";
  host[0] = '\0';
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr) {
    const struct sockaddr *sa = ci->client_addr;
    const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    inet_ntop(sa->sa_family, a, host, (socklen_t)len);
  }
  u->host = host;
  u->credential = r->by_cookie ? (char *)"dashboard session cookie" : (char *)"bearer token (HTTP Jobs API)";
}

/* runtime_env.working_dir as a package name (new) or NULL for none; -1 with a reply sent. */
static int dash_working_dir(dash_req_t *r, json_t *env, char **pkg, enum MHD_Result *sent)
{
  const char *wd = json_string_value(json_object_get(env, "working_dir"));
  *pkg = NULL;
  if (!wd || !*wd)
    return 0;
  if (pkg_name_valid(wd)) {
    *pkg = xstrdup(wd);
    return 0;
  }
  const char *sep = strstr(wd, "://");
  char rest[256];
  int failed = 0;
  if (sep && (size_t)(sep - wd) < 32) {
    snprintf(rest, sizeof(rest), "%.*s/%s", (int)(sep - wd), wd, sep + 3);
    char uri[256];
    if (dash_pkg_uri(rest, uri, sizeof(uri)) == 0 && (*pkg = dash_pkg_lookup(r, uri, sent, &failed)))
      return 0;
    if (failed)
      return -1;
  }
  *sent = dash_reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "runtime_env.working_dir %s is not an uploaded package: upload it "
                           "with PUT /api/packages/PROTOCOL/NAME (Ray's job clients do) or rayc job submit",
                           wd);
  return -1;
}

static enum MHD_Result dash_jobs_submit(dash_req_t *r)
{
  json_error_t jerr;
  json_t *body = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
  const char *entry = json_string_value(json_object_get(body, "entrypoint"));
  if (!json_is_object(body) || !entry || !*entry) {
    json_decref(body);
    return dash_reply_error(r, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object with an \"entrypoint\"%s%s",
                            body ? "" : ": ", body ? "" : jerr.text);
  }
  json_t *env = json_object_get(body, "runtime_env");
  const char *sid = json_string_value(json_object_get(body, "submission_id"));
  if (!sid)
    sid = json_string_value(json_object_get(body, "job_id")); /* Ray's older name */
  Rayc__JobRuntimeEnv renv = RAYC__JOB_RUNTIME_ENV__INIT;
  Rayc__JobSubmission job = RAYC__JOB_SUBMISSION__INIT;
  Rayc__Submitter who;
  char host[320], *pkg = NULL;
  enum MHD_Result sent = MHD_YES;
  int bad = (env && !json_is_null(env) && !json_is_object(env)) ||
            dash_pairs_from(json_object_get(env, "env_vars"), &renv.env_vars, &renv.n_env_vars) != 0 ||
            dash_pairs_from(json_object_get(body, "metadata"), &job.metadata, &job.n_metadata) != 0;
  if (bad)
    sent = dash_reply_error(r, MHD_HTTP_BAD_REQUEST,
                            "runtime_env must be an object; env_vars and metadata objects of strings");
  else if (dash_working_dir(r, env, &pkg, &sent) == 0) {
    renv.working_dir = pkg ? pkg : (char *)"";
    const char *cp = json_string_value(json_object_get(env, "code_path"));
    renv.code_path = (char *)(cp ? cp : "");
    dash_submitter(r, &who, host, sizeof(host));
    dash_rayc_extras(body, &renv, &who, host, sizeof(host));
    job.submission_id = (char *)(sid ? sid : "");
    job.entrypoint = (char *)entry;
    job.runtime_env = &renv;
    job.entrypoint_num_cpus = json_number_value(json_object_get(body, "entrypoint_num_cpus"));
    job.submitter = &who;
    Rayc__SubmitJobRequest req = RAYC__SUBMIT_JOB_REQUEST__INIT;
    req.job = &job;
    ProtobufCMessage *resp;
    if (dash_call(r, NULL, "SubmitJob", &req.base, &resp, &sent) == 0) {
      const char *id = ((Rayc__SubmitJobReply *)resp)->submission_id;
      sent = dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:s}", "job_id", id, "submission_id", id));
      pb_free(resp);
    }
  }
  dash_pairs_free(renv.env_vars, renv.n_env_vars);
  dash_pairs_free(job.metadata, job.n_metadata);
  for (size_t i = 0; i < renv.n_files; i++)
    free(renv.files[i]);
  free(renv.files);
  free(pkg);
  json_decref(body);
  return sent;
}

enum MHD_Result dash_jobs(dash_req_t *r, int *matched)
{
  const char *u = r->url, *m = r->method;
  *matched = 1;
  if (strncmp(u, "/api/packages/", 14) == 0)
    return dash_packages(r, u + 14);
  if (strcmp(u, "/api/jobs") == 0 || strcmp(u, "/api/jobs/") == 0) {
    if (strcmp(m, "GET") == 0)
      return dash_jobs_list(r);
    if (strcmp(m, "POST") == 0)
      return dash_jobs_submit(r);
    return dash_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "GET lists jobs, POST submits one");
  }
  if (strncmp(u, "/api/jobs/", 10) != 0) {
    *matched = 0;
    return MHD_NO;
  }
  char id[128];
  const char *rest = u + 10, *slash = strchr(rest, '/');
  size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
  if (n == 0 || n >= sizeof(id))
    return dash_reply_error(r, MHD_HTTP_NOT_FOUND, "no route %s %s", m, u);
  memcpy(id, rest, n);
  id[n] = '\0';
  const char *tail = slash ? slash : "";
  if (!*tail && strcmp(m, "GET") == 0)
    return dash_jobs_get(r, id);
  if (!*tail && strcmp(m, "DELETE") == 0)
    return dash_jobs_stop(r, id, 1);
  if (strcmp(tail, "/logs") == 0 && strcmp(m, "GET") == 0)
    return dash_jobs_logs(r, id);
  if (strcmp(tail, "/stop") == 0 && strcmp(m, "POST") == 0)
    return dash_jobs_stop(r, id, 0);
  return dash_reply_error(r, MHD_HTTP_NOT_FOUND, "no route %s %s", m, u);
}
