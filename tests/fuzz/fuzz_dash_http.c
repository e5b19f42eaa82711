/*
 * libFuzzer harness: the head's HTTP endpoint (dashboard/: routing, the token and session-cookie
 * checks, login, the state API and the Jobs REST API's JSON bodies), served by a real
 * libmicrohttpd daemon in this process on a loopback port, the way rayc-dashboard runs it. Its GCS
 * is a socket that does not exist, so every call fails fast and the routes answer 503.
 *
 * Input: byte 0 picks the credentials (none, the bearer token, the session cookie, the cookie with
 * X-Rayc-CSRF, a wrong bearer), byte 1 the method (GET, POST, PUT, DELETE, HEAD, or raw: the rest
 * is sent as it is); then the URL up to '\n', header lines up to an empty line, and the body.
 * "@T@" anywhere stands for the cluster token (so login and bearer paths are reachable).
 *
 * Properties, on the response: without credentials (or with wrong ones) nothing but /login and its
 * stylesheet answers 2xx, and /api/ answers 401; a cookie without X-Rayc-CSRF changes nothing
 * (no 2xx for POST, PUT, DELETE); neither the token nor the session cookie appears in a response
 * unless the request carried the token; a file outside the session's logs/ never appears; a
 * JSON reply parses as JSON.
 */
#include "dashboard/dash.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET_MARK "rayc-fuzz-secret-outside-logs"

static dash_t dash;
static char session[64];

static void fuzz_setup(void)
{
  log_init("fuzz", LOG_ERROR);
  snprintf(session, sizeof(session), "/tmp/rayc-fuzz-dash-XXXXXX");
  if (!mkdtemp(session))
    abort();
  char *p = xasprintf("%s/logs", session);
  mkdir(p, 0700);
  free(p);
  p = xasprintf("%s/logs/raylet.log", session);
  write_file_atomic(p, "a log line\n", 11);
  free(p);
  p = xasprintf("%s/secret", session);
  write_file_atomic(p, SECRET_MARK "\n", strlen(SECRET_MARK) + 1);
  free(p);
  uint8_t rnd[16];
  char hex[33];
  id_random(rnd, sizeof(rnd));
  dash.token = xstrdup(id_hex(rnd, sizeof(rnd), hex));
  dash.conf.session_dir = session;
  dash.conf.node_ip_address = (char *)"127.0.0.1";
  dash_auth_init(&dash);
  rpc_client_opts_t opts = {.token = dash.token};
  dash.client = rpc_client_create(&opts);
  dash.src.gcs = rpc_channel_get(dash.client, "unix:/nonexistent/rayc-fuzz-gcs");
  dash.src.timeout_ms = 200;
  char *err = NULL;
  if (dash_http_start(&dash, &err) != 0) {
    fprintf(stderr, "fuzz_dash_http: %s\n", err);
    abort();
  }
}

/* A copy of in with every "@T@" replaced by the token (new). */
static char *fuzz_subst(const char *in, size_t len, size_t *out_len)
{
  size_t tl = strlen(dash.token), cap = len * (tl + 1) + 1, n = 0;
  char *out = xmalloc(cap);
  for (size_t i = 0; i < len;)
    if (i + 3 <= len && memcmp(in + i, "@T@", 3) == 0) {
      memcpy(out + n, dash.token, tl);
      n += tl, i += 3;
    } else {
      out[n++] = in[i++];
    }
  out[n] = '\0';
  *out_len = n;
  return out;
}

/* Sends req over a new connection and returns the whole response (new; "" when none). */
static char *fuzz_exchange(const char *req, size_t len, size_t *rlen)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)dash.bound_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {.tv_sec = 8};
  struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* closed with a reset: no TIME_WAIT left here */
  int fd = -1, err = 0;
  for (int tries = 0; fd < 0 && tries < 300; tries++) { /* a busy loopback may refuse for a moment */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
      err = errno;
      close(fd);
      fd = -1;
      usleep(10000);
    }
  }
  if (fd < 0) {
    fprintf(stderr, "fuzz_dash_http: cannot connect to the endpoint: %s\n", strerror(err));
    abort(); /* the daemon stopped listening */
  }
  for (size_t off = 0; off < len;) {
    ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  shutdown(fd, SHUT_WR); /* the request ends here: a short body cannot leave the server waiting */
  size_t cap = 65536, n = 0;
  char *buf = xmalloc(cap);
  for (ssize_t k; (k = recv(fd, buf + n, cap - n - 1, 0)) > 0;)
    if ((n += (size_t)k) + 1 == cap)
      buf = xrealloc(buf, cap *= 2);
  close(fd);
  buf[n] = '\0';
  *rlen = n;
  return buf;
}

/* The bytes [p, end) as a string, NULs made '_' (new). */
static char *fuzz_text(const char *p, const char *end)
{
  char *s = xmalloc((size_t)(end - p) + 1);
  for (size_t i = 0; p + i < end; i++)
    s[i] = p[i] ? p[i] : '_';
  s[end - p] = '\0';
  return s;
}

/* s (freed) with each "\n" made "\r\n" (new). */
static char *fuzz_crlf(char *s)
{
  char *out = xmalloc(2 * strlen(s) + 1), *o = out;
  for (const char *p = s; *p; p++) {
    if (*p == '\n')
      *o++ = '\r';
    *o++ = *p;
  }
  *o = '\0';
  free(s);
  return out;
}

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};

/* Builds the request; *path gets the URL's path (new), *fuzz_auth whether the fuzzed part carries
 * credentials of its own. */
static char *fuzz_request(const uint8_t *data, size_t size, size_t *len, char **path, int *fuzz_auth)
{
  int mode = data[0] % 5;
  const char *m = methods[data[1] % 6];
  const char *rest = (const char *)data + 2, *end = rest + size - 2;
  const char *nl = memchr(rest, '\n', (size_t)(end - rest));
  const char *url_end = nl ? nl : end, *hdr = nl ? nl + 1 : end, *hend = hdr;
  while (hend < end && !(hend[0] == '\n' && (hend == hdr || hend[-1] == '\n')))
    hend++;
  const char *body = hend < end ? hend + 1 : end;
  char *url = fuzz_text(rest, url_end), *hdrs = fuzz_text(hdr, hend);
  *path = xstrdup(url);
  (*path)[strcspn(*path, "?")] = '\0';
  *fuzz_auth = strcasestr(hdrs, "authorization") || strcasestr(hdrs, "cookie") || strcasestr(hdrs, "csrf") ||
               memmem(data, size, "@T@", 3);
  hdrs = fuzz_crlf(hdrs);
  static const char *const auth[] = {"", "Authorization: Bearer @T@\r\n", "Cookie: rayc_session=@C@\r\n",
                                     "Cookie: rayc_session=@C@\r\nX-Rayc-CSRF: 1\r\n",
                                     "Authorization: Bearer nope\r\n"};
  char *a = xstrdup(auth[mode]), *c = strstr(a, "@C@");
  if (c) {
    char *b = xasprintf("%.*s%s%s", (int)(c - a), a, dash.cookie, c + 3);
    free(a);
    a = b;
  }
  size_t blen, hlen;
  char *b = fuzz_subst(body, (size_t)(end - body), &blen);
  char *t = xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n", m,
                      url, a, hdrs, *hdrs ? "\r\n" : "", blen);
  char *h = fuzz_subst(t, strlen(t), &hlen);
  char *out = xmalloc(hlen + blen + 1);
  memcpy(out, h, hlen);
  memcpy(out + hlen, b, blen);
  *len = hlen + blen;
  free(a);
  free(b);
  free(h);
  free(hdrs);
  free(t);
  free(url);
  return out;
}

static int fuzz_status(const char *resp)
{
  return strncmp(resp, "HTTP/1.", 7) == 0 && strlen(resp) > 12 ? atoi(resp + 9) : 0;
}

/* The body of a JSON reply parses. */
static void fuzz_check_json(const char *resp, size_t rlen)
{
  const char *hend = strstr(resp, "\r\n\r\n"), *ct = strcasestr(resp, "\r\nContent-Type: application/json");
  if (!hend || !ct || ct > hend)
    return;
  json_error_t err;
  json_t *v = json_loadb(hend + 4, rlen - (size_t)(hend + 4 - resp), 0, &err);
  if (!v)
    abort(); /* a JSON reply that is not JSON */
  json_decref(v);
}

/* 1 when libmicrohttpd sees the path as written: printable, no space, no escapes. */
static int fuzz_plain(const char *path)
{
  for (const char *p = path; *p; p++)
    if (*p <= ' ' || *p >= 127 || *p == '%' || *p == '#')
      return 0;
  return 1;
}

static void fuzz_check(const uint8_t *data, size_t size, const char *path, int fuzz_auth, const char *resp, size_t rlen)
{
  int mode = data[0] % 5, sel = data[1] % 6, raw = sel == 5, st = fuzz_status(resp);
  const char *m = raw ? "GET" : methods[sel];
  if (resp[0] && !st)
    abort(); /* a response that is not HTTP */
  int open_path = strcmp(path, "/login") == 0 || strcmp(path, "/static/style.css") == 0 || !fuzz_plain(path);
  int changing = strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
  if (!raw && !fuzz_auth && !open_path && (mode == 0 || mode == 4 || (mode == 2 && changing))) {
    if (st >= 200 && st < 300)
      abort(); /* served without credentials */
    if (strncmp(path, "/api/", 5) == 0 && st && st != 401 && st != 400)
      abort(); /* the API answers 401 without credentials (400: a request MHD refused) */
  }
  /* error replies echo the URL: a request holding a secret (or %-escapes that decode to one) may see it */
  int echo = memchr(data, '%', size) || memmem(data, size, dash.token, strlen(dash.token)) ||
             memmem(data, size, dash.cookie, strlen(dash.cookie)) || memmem(data, size, "secret", 6);
  if (!echo && !fuzz_auth && !raw && (strstr(resp, dash.token) || strstr(resp, dash.cookie)))
    abort(); /* a secret leaked to a request that did not carry it */
  if (!echo && strstr(resp, SECRET_MARK))
    abort(); /* a file outside logs/ served */
  if (st && !raw && strcmp(m, "HEAD") != 0)
    fuzz_check_json(resp, rlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!dash.http)
    fuzz_setup();
  if (size < 2 || size > 16384)
    return 0;
  size_t len, rlen;
  char *path = NULL, *req;
  int fuzz_auth = 1;
  if (data[1] % 6 == 5) {
    req = fuzz_subst((const char *)data + 2, size - 2, &len);
    path = xstrdup("");
  } else {
    req = fuzz_request(data, size, &len, &path, &fuzz_auth);
  }
  char *resp = fuzz_exchange(req, len, &rlen);
  fuzz_check(data, size, path, fuzz_auth, resp, rlen);
  free(resp);
  free(req);
  free(path);
  return 0;
}
