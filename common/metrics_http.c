/*
 * The /metrics HTTP endpoint over libmicrohttpd (one internal polling thread). libmicrohttpd is a
 * well-kept GNU library in Debian that does the HTTP parsing, keep-alive and limits for us; see
 * docs/ARCHITECTURE.md "Observability".
 */
#include "common/metrics_http.h"

#include "common/metrics.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct metrics_http {
  struct MHD_Daemon *d;
  int port;
};

static enum MHD_Result mh_reply(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result mh_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_len, void **state)
{
  (void)cls;
  (void)version;
  (void)upload;
  if (!*state) { /* first call for this request: headers only */
    *state = c;
    return MHD_YES;
  }
  if (*upload_len) { /* a body nobody asked for: skip it */
    *upload_len = 0;
    return MHD_YES;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return mh_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", xstrdup("method not allowed\n"), 19);
  if (strcmp(url, "/metrics") == 0) {
    size_t len;
    char *text = metrics_render(&len);
    return mh_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
  }
  if (strcmp(url, "/") == 0)
    return mh_reply(c, MHD_HTTP_OK, "text/plain", xstrdup("rayc metrics: see /metrics\n"), 27);
  return mh_reply(c, MHD_HTTP_NOT_FOUND, "text/plain", xstrdup("not found\n"), 10);
}

/* Fills ss from a numeric host and port; 0, or -1 for a bad or wildcard address. */
static int mh_addr(const char *host, int port, struct sockaddr_storage *ss, int *v6)
{
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  *v6 = 0;
  if (host && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    return in4->sin_addr.s_addr == htonl(INADDR_ANY) ? -1 : 0;
  }
  if (host && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *v6 = 1;
    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ? -1 : 0;
  }
  return -1;
}

metrics_http_t *metrics_http_start(const char *host, int port, char **err)
{
  struct sockaddr_storage ss;
  int v6;
  if (port < 0 || port > 65535 || mh_addr(host, port, &ss, &v6) < 0) {
    if (err)
      *err = xasprintf("metrics: cannot listen on %s:%d: give a numeric, non-wildcard address and a port "
                       "in 0..65535",
                       host ? host : "(none)", port);
    return NULL;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, mh_handle, NULL, MHD_OPTION_SOCK_ADDR,
                                          (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                          MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  if (!d) {
    if (err)
      *err = xasprintf("metrics: cannot listen on %s:%d (port taken?)", host, port);
    return NULL;
  }
  metrics_http_t *m = xcalloc(1, sizeof(*m));
  m->d = d;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  m->port = info ? info->port : port;
  metrics_process_enable();
  return m;
}

int metrics_http_port(const metrics_http_t *m)
{
  return m->port;
}

void metrics_http_stop(metrics_http_t *m)
{
  if (!m)
    return;
  MHD_stop_daemon(m->d);
  free(m);
}
