/*
 * The head's JSON routes other than jobs: /api/version (what Ray's job clients check first), the
 * state API /api/v0/<kind> in Ray's reply shape ({"result": true, "data": {"result": {"result":
 * rows, "total": N}}}), summaries, the timeline and the head's log files. Rows come from the state
 * API's client side (client/cli/cli_state.c), the same code `rayc list` uses.
 */
#include "dashboard/dash.h"

#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DASH_RAY_VERSION "2.9.0" /* the Ray release whose Jobs API and state API shapes we follow */

static enum MHD_Result dash_version(dash_req_t *r)
{
  const char *session = r->d->conf.session_dir ? strrchr(r->d->conf.session_dir, '/') : NULL;
  return dash_reply_json(r, MHD_HTTP_OK,
                         json_pack("{s:s, s:s, s:s, s:s}", "version", "4", "ray_version", DASH_RAY_VERSION,
                                   "ray_commit", "rayc", "session_name", session ? session + 1 : ""));
}

/* "placement_groups" -> "placement-groups": the URL uses Ray's names. */
static void dash_kind(const char *in, char *out, size_t len)
{
  snprintf(out, len, "%s", in);
  for (char *p = out; *p; p++)
    if (*p == '_')
      *p = '-';
}

static unsigned dash_status_of(int rc)
{
  return rc == RAYC_EINVALID_ARGUMENT ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Fetches rows of kind with the request's job_id and filter arguments; 0 or an HTTP error sent. */
static int dash_rows(dash_req_t *r, const char *kind, json_t **rows, enum MHD_Result *sent)
{
  char *err = NULL;
  int rc = state_fetch(&r->d->src, kind, dash_arg(r, "job_id"), rows, &err);
  if (rc != 0) {
    *sent = dash_reply_error(r, dash_status_of(rc), "%s", err);
    free(err);
    return -1;
  }
  const char *filter = dash_arg(r, "filter");
  if (filter && state_filter(*rows, filter) != 0) {
    json_decref(*rows);
    *sent = dash_reply_error(r, MHD_HTTP_BAD_REQUEST, "filter wants KEY=VALUE or KEY!=VALUE, not '%s'", filter);
    return -1;
  }
  return 0;
}

static enum MHD_Result dash_list(dash_req_t *r, const char *what)
{
  char kind[64];
  dash_kind(what, kind, sizeof(kind));
  if (!state_kind_valid(kind))
    return dash_reply_error(r, MHD_HTTP_NOT_FOUND,
                            "'%s' is not a kind of state (nodes, jobs, actors, tasks, workers, "
                            "placement_groups, cluster_events, objects)",
                            what);
  json_t *rows;
  enum MHD_Result sent;
  if (dash_rows(r, kind, &rows, &sent) != 0)
    return sent;
  size_t total = json_array_size(rows);
  const char *limit = dash_arg(r, "limit");
  state_limit(rows, limit ? atoi(limit) : 100);
  return dash_reply_json(r, MHD_HTTP_OK,
                         json_pack("{s:b, s:s, s:{s:{s:o, s:I, s:I}}}", "result", 1, "msg", "", "data", "result",
                                   "result", rows, "total", (json_int_t)total, "num_after_truncation",
                                   (json_int_t)json_array_size(rows)));
}

static enum MHD_Result dash_summary(dash_req_t *r, const char *kind)
{
  if (strcmp(kind, "tasks") != 0 && strcmp(kind, "actors") != 0 && strcmp(kind, "objects") != 0)
    return dash_reply_error(r, MHD_HTTP_NOT_FOUND, "summaries are of tasks, actors or objects");
  json_t *rows;
  enum MHD_Result sent;
  if (dash_rows(r, kind, &rows, &sent) != 0)
    return sent;
  json_t *sum = state_summary(kind, rows);
  json_decref(rows);
  return dash_reply_json(r, MHD_HTTP_OK,
                         json_pack("{s:b, s:s, s:{s:o}}", "result", 1, "msg", "", "data", "result", sum));
}

static enum MHD_Result dash_timeline(dash_req_t *r)
{
  json_t *rows;
  enum MHD_Result sent;
  if (dash_rows(r, "tasks", &rows, &sent) != 0)
    return sent;
  json_t *trace = state_timeline(rows);
  json_decref(rows);
  return dash_reply_json(r, MHD_HTTP_OK, trace);
}

/* A log file of the head's session: a plain name in <session>/logs (no path), its last `lines`. */
static enum MHD_Result dash_log(dash_req_t *r)
{
  const char *name = dash_arg(r, "file"), *lines_arg = dash_arg(r, "lines");
  if (!name || !*name || strchr(name, '/') || name[0] == '.' || !r->d->conf.session_dir)
    return dash_reply_error(r, MHD_HTTP_BAD_REQUEST, "give ?file=NAME, a file of the session's logs directory");
  long lines = lines_arg ? strtol(lines_arg, NULL, 10) : 1000;
  char *path = xasprintf("%s/logs/%s", r->d->conf.session_dir, name);
  FILE *f = fopen(path, "r");
  free(path);
  if (!f)
    return dash_reply_error(r, MHD_HTTP_NOT_FOUND, "no log file %s", name);
  fseek(f, 0, SEEK_END);
  long size = ftell(f), start = size > (8 << 20) ? size - (8 << 20) : 0; /* at most the last 8 MiB */
  fseek(f, start, SEEK_SET);
  char *buf = xmalloc((size_t)(size - start) + 1);
  size_t n = fread(buf, 1, (size_t)(size - start), f);
  fclose(f);
  buf[n] = '\0';
  char *p = buf + n;
  if (p > buf && p[-1] == '\n')
    p--;
  for (long k = 0; p > buf; p--) /* back to the start of the last `lines` lines */
    if (p[-1] == '\n' && ++k >= lines)
      break;
  enum MHD_Result ret = dash_reply(r, MHD_HTTP_OK, "text/plain; charset=utf-8", p, (size_t)(buf + n - p));
  free(buf);
  return ret;
}

/* The session's log files: [{"name", "size"}]. */
static enum MHD_Result dash_log_list(dash_req_t *r)
{
  json_t *files = json_array();
  char *dir = xasprintf("%s/logs", r->d->conf.session_dir ? r->d->conf.session_dir : "/nonexistent");
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    struct stat st;
    char *p = xasprintf("%s/%s", dir, e->d_name);
    if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
      json_array_append_new(files, json_pack("{s:s, s:I}", "name", e->d_name, "size", (json_int_t)st.st_size));
    free(p);
  }
  if (d)
    closedir(d);
  free(dir);
  return dash_reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:{s:o}}", "result", 1, "data", "result", files));
}

enum MHD_Result dash_api(dash_req_t *r, int *matched)
{
  const char *u = r->url;
  *matched = strcmp(r->method, "GET") == 0;
  if (!*matched)
    return MHD_NO;
  if (strcmp(u, "/api/version") == 0)
    return dash_version(r);
  if (strcmp(u, "/api/v0/timeline") == 0)
    return dash_timeline(r);
  if (strcmp(u, "/api/v0/logs/file") == 0)
    return dash_log(r);
  if (strcmp(u, "/api/v0/logs") == 0)
    return dash_log_list(r);
  if (strncmp(u, "/api/v0/summary/", 16) == 0)
    return dash_summary(r, u + 16);
  if (strncmp(u, "/api/v0/", 8) == 0 && u[8] && !strchr(u + 8, '/'))
    return dash_list(r, u + 8);
  *matched = 0;
  return MHD_NO;
}
