/*
 * Who may use the head's HTTP endpoint: the cluster token as a bearer header, or the session
 * cookie POST /login sets. See dashboard/dash.h for the rules (cookie, CSRF header, redirects).
 */
#include "dashboard/dash.h"

#include "common/log.h"
#include "common/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DASH_COOKIE "rayc_session"
static const char dash_cookie_label[] = "rayc-dashboard-session-v1";

void dash_auth_init(dash_t *d)
{
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  d->cookie[0] = '\0';
  if (!d->token)
    return;
  HMAC(EVP_sha256(), d->token, (int)strlen(d->token), (const unsigned char *)dash_cookie_label,
       sizeof(dash_cookie_label) - 1, mac, &len);
  for (unsigned i = 0; i < len && 2 * i + 2 < sizeof(d->cookie); i++)
    snprintf(d->cookie + 2 * i, 3, "%02x", mac[i]);
}

/* Constant-time comparison of a received secret with ours. */
static int dash_secret_eq(const char *got, const char *want)
{
  size_t n = strlen(want);
  return got && strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
}

static int dash_state_changing(const char *method)
{
  return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0;
}

int dash_auth_ok(dash_req_t *r)
{
  dash_t *d = r->d;
  if (!d->token)
    return 1;
  const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (h && strncasecmp(h, "Bearer ", 7) == 0)
    return dash_secret_eq(h + 7, d->token);
  const char *c = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, DASH_COOKIE);
  if (!dash_secret_eq(c, d->cookie))
    return 0;
  r->by_cookie = 1;
  if (dash_state_changing(r->method)) { /* a cross-site form cannot set this header */
    const char *csrf = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Rayc-CSRF");
    return csrf && strcmp(csrf, "1") == 0;
  }
  return 1;
}

static enum MHD_Result dash_redirect(dash_req_t *r, const char *to, const char *cookie)
{
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, to);
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  if (cookie)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
  enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_SEE_OTHER, resp);
  MHD_destroy_response(resp);
  return ret;
}

enum MHD_Result dash_auth_reject(dash_req_t *r)
{
  if (strncmp(r->url, "/api/", 5) == 0) {
    static const char body[] = "{\"result\":false,\"msg\":\"unauthorized: give the cluster token\"}\n";
    struct MHD_Response *resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"rayc\"");
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_UNAUTHORIZED, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  return dash_redirect(r, "/login", NULL);
}

/* The value of field name in an application/x-www-form-urlencoded body (new, decoded), or NULL. */
static char *dash_form_field(const char *body, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
    if (strncmp(p, name, n) != 0 || p[n] != '=')
      continue;
    const char *v = p + n + 1, *end = strchr(v, '&');
    char *out = strndup(v, end ? (size_t)(end - v) : strlen(v));
    for (char *q = out; *q; q++)
      if (*q == '+')
        *q = ' ';
    MHD_http_unescape(out);
    return out;
  }
  return NULL;
}

/* A login POST from another site (Origin present and not this host) is refused. */
static int dash_same_origin(dash_req_t *r)
{
  const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
  const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  if (!origin || strcmp(origin, "null") == 0)
    return 1;
  const char *sep = strstr(origin, "://");
  return host && sep && strcmp(sep + 3, host) == 0;
}

enum MHD_Result dash_login(dash_req_t *r)
{
  if (strcmp(r->method, "POST") != 0) {
    const char *type;
    const unsigned char *data;
    size_t len;
    dash_static_find("/login.html", &type, &data, &len);
    const char *failed = dash_arg(r, "failed");
    if (!failed)
      return dash_reply(r, MHD_HTTP_OK, type, data, len);
    char *page = strndup((const char *)data, len), *hidden = strstr(page, " hidden>");
    if (hidden) /* show the error line */
      memmove(hidden, hidden + 7, strlen(hidden + 7) + 1);
    enum MHD_Result ret = dash_reply(r, MHD_HTTP_UNAUTHORIZED, type, page, strlen(page));
    free(page);
    return ret;
  }
  char *token = dash_form_field(r->body ? r->body : "", "token");
  int ok = dash_same_origin(r) && (!r->d->token || dash_secret_eq(token, r->d->token));
  if (token)
    explicit_bzero(token, strlen(token));
  free(token);
  if (!ok) {
    log_warn("dashboard: a login with a wrong token");
    return dash_redirect(r, "/login?failed=1", NULL);
  }
  char cookie[256];
  snprintf(cookie, sizeof(cookie), DASH_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", r->d->cookie,
           r->d->https ? "; Secure" : "");
  return dash_redirect(r, "/", cookie);
}

enum MHD_Result dash_logout(dash_req_t *r)
{
  return dash_redirect(r, "/login", DASH_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}
