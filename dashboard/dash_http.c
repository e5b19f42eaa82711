/*
 * rayc-dashboard's HTTP layer over libmicrohttpd: one thread per connection, request bodies
 * buffered (bounded), then one routing step: /login, the credentials check, the Jobs REST API,
 * the other JSON routes, the embedded pages. See dashboard/dash.h.
 */
#include "dashboard/dash.h"

#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result dash_reply(dash_req_t *r, unsigned code, const char *type, const void *body, size_t len)
{
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(resp, "Content-Type", type);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
  enum MHD_Result ret = MHD_queue_response(r->conn, code, resp);
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result dash_reply_json(dash_req_t *r, unsigned code, json_t *v)
{
  char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(v);
  if (!text)
    return dash_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", "{\"error\":\"encoding\"}", 20);
  enum MHD_Result ret = dash_reply(r, code, "application/json", text, strlen(text));
  free(text);
  return ret;
}

enum MHD_Result dash_reply_error(dash_req_t *r, unsigned code, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return dash_reply_json(r, code, json_pack("{s:b, s:s, s:s}", "result", 0, "msg", msg, "error", msg));
}

const char *dash_arg(dash_req_t *r, const char *name)
{
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The per-request state MHD keeps between calls of the handler. */
typedef struct dash_conn {
  char *body;
  size_t len;
  int too_big;
} dash_conn_t;

static enum MHD_Result dash_route(dash_req_t *r)
{
  const char *u = r->url;
  if (strcmp(u, "/login") == 0)
    return dash_login(r);
  const char *type;
  const unsigned char *data;
  size_t len;
  if (strcmp(u, "/static/style.css") == 0 && dash_static_find(u, &type, &data, &len)) /* the login page's too */
    return dash_reply(r, MHD_HTTP_OK, type, data, len);
  if (!dash_auth_ok(r))
    return dash_auth_reject(r);
  if (strcmp(u, "/logout") == 0)
    return dash_logout(r);
  int matched = 0;
  enum MHD_Result ret;
  if (strncmp(u, "/api/jobs", 9) == 0 || strncmp(u, "/api/packages", 13) == 0) {
    ret = dash_jobs(r, &matched);
    if (matched)
      return ret;
  }
  if (strncmp(u, "/api/", 5) == 0) {
    ret = dash_api(r, &matched);
    return matched ? ret : dash_reply_error(r, MHD_HTTP_NOT_FOUND, "no route %s %s", r->method, u);
  }
  if (strcmp(r->method, "GET") == 0 && dash_static_find(u, &type, &data, &len))
    return dash_reply(r, MHD_HTTP_OK, type, data, len);
  return dash_reply(r, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

static enum MHD_Result dash_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                   const char *version, const char *upload, size_t *upload_len, void **state)
{
  (void)version;
  dash_conn_t *c = *state;
  if (!c) { /* headers only so far */
    *state = xcalloc(1, sizeof(dash_conn_t));
    return MHD_YES;
  }
  if (*upload_len) {
    if (c->len + *upload_len > DASH_MAX_BODY)
      c->too_big = 1;
    if (!c->too_big) {
      c->body = xrealloc(c->body, c->len + *upload_len + 1);
      memcpy(c->body + c->len, upload, *upload_len);
      c->len += *upload_len;
      c->body[c->len] = '\0';
    }
    *upload_len = 0;
    return MHD_YES;
  }
  dash_req_t r = {.d = cls, .conn = conn, .method = method, .url = url, .body = c->body, .body_len = c->len};
  if (c->too_big)
    return dash_reply_error(&r, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than %d bytes", DASH_MAX_BODY);
  return dash_route(&r);
}

static void dash_completed(void *cls, struct MHD_Connection *conn, void **state, enum MHD_RequestTerminationCode why)
{
  (void)cls, (void)conn, (void)why;
  dash_conn_t *c = *state;
  if (c) {
    free(c->body);
    free(c);
  }
  *state = NULL;
}

static char *dash_read_file(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (cap - len < 4096)
      buf = xrealloc(buf, cap = cap * 2 + 8192);
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
  } while (n > 0);
  fclose(f);
  buf[len] = '\0';
  return buf;
}

int dash_http_start(dash_t *d, char **err)
{
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  const char *ip = d->conf.node_ip_address;
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)d->conf.port);
  } else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)d->conf.port);
    flags |= MHD_USE_IPv6;
  } else {
    *err = xasprintf("--node-ip-address %s is not a numeric address", ip);
    return -1;
  }
  char *cert = NULL, *key = NULL;
  if (rpc_tls_enabled(&d->tls)) {
    cert = dash_read_file(d->conf.tls_cert);
    key = dash_read_file(d->conf.tls_key);
    if (!cert || !key) {
      *err = xasprintf("cannot read --tls-cert %s or --tls-key %s", d->conf.tls_cert, d->conf.tls_key);
      free(cert);
      free(key);
      return -1;
    }
    flags |= MHD_USE_TLS;
    d->https = 1;
  }
  d->http = MHD_start_daemon(flags, (uint16_t)d->conf.port, NULL, NULL, dash_handle, d, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, dash_completed, NULL,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)DASH_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                             60u, d->https ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert, MHD_OPTION_HTTPS_MEM_KEY,
                             key, MHD_OPTION_END);
  d->tls_pem[0] = cert; /* libmicrohttpd may read them while it runs: freed by dash_http_stop */
  d->tls_pem[1] = key;
  if (!d->http) {
    *err = xasprintf("cannot listen on %s:%d (the port is taken, or the TLS files are unusable)", ip, d->conf.port);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->http, MHD_DAEMON_INFO_BIND_PORT);
  d->bound_port = info ? info->port : d->conf.port;
  return 0;
}

void dash_http_stop(dash_t *d)
{
  if (d->http)
    MHD_stop_daemon(d->http);
  d->http = NULL;
  free(d->tls_pem[0]);
  free(d->tls_pem[1]);
  d->tls_pem[0] = d->tls_pem[1] = NULL;
}
