/*
 * rayc-dashboard: the head's HTTP endpoint (default port 8265, as Ray's dashboard). A process of
 * its own next to rayc-gcs, talking gRPC to it like any client, so a GCS restart does not take it
 * down (its calls fail with 503 until the GCS is back) and a dashboard crash touches no cluster
 * state. It serves:
 *   - the dashboard: static HTML, CSS and JavaScript compiled into the binary (dash_static.c),
 *     no framework, no build step;
 *   - JSON: /api/version, the state API /api/v0/{nodes,jobs,actors,tasks,workers,placement_groups,
 *     cluster_events} (rows as `rayc list --format json` prints them), /api/v0/timeline,
 *     /api/cluster_status, /api/v0/logs (a file of the head's session logs);
 *   - the Jobs REST API in Ray's paths and shapes (dash_jobs.c), once the job supervisor exists.
 *
 * Threads: libmicrohttpd runs a thread per connection (at most DASH_MAX_CONNECTIONS); a request
 * makes blocking gRPC calls to the GCS (rpc_call_sync is thread-safe) and builds its reply with
 * jansson. The only shared state is the read-only configuration and the rpc client, so nothing
 * is locked here (the one-loop rule of the daemons is for daemons that own cluster state).
 *
 * Security (dash_auth.c): every route but /login needs the cluster token, as
 * `Authorization: Bearer <token>` or as the session cookie that POST /login sets after checking
 * the token (an HMAC-SHA256 of a fixed label under the token: HttpOnly, SameSite=Strict, Secure
 * with TLS; it reveals nothing about the token and is valid until the token changes). Without it,
 * /api/ routes answer 401 and pages redirect to /login. State-changing requests (POST, PUT,
 * DELETE) authenticated by the cookie must also carry `X-Rayc-CSRF: 1`, a header a cross-site
 * form cannot send; those with a bearer token need nothing more. With the cluster's TLS files
 * the endpoint speaks HTTPS.
 */
#ifndef RAYC_DASH_H
#define RAYC_DASH_H

#include "client/cli/cli_state.h"
#include "common/rpc.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

enum { DASH_MAX_CONNECTIONS = 64, DASH_MAX_BODY = 64 << 20 };

typedef struct dash_config {
  char *session_dir;
  char *gcs_address;
  char *node_ip_address;
  int port;
  char *token_file;
  char *tls_cert, *tls_key, *tls_ca;
  char *log_level;
} dash_config_t;

typedef struct dash {
  dash_config_t conf;
  char *token;          /* owned; NULL: no token (a cluster without one) */
  char cookie[65];      /* the session cookie's value: hex HMAC of a label under the token */
  rpc_tls_t tls;        /* borrowed from conf */
  rpc_client_t *client; /* owned */
  state_src_t src;      /* the GCS */
  struct MHD_Daemon *http;
  int bound_port;
  int https;
  char *tls_pem[2]; /* owned: the certificate and key text given to libmicrohttpd */
} dash_t;

/* One request as the handlers see it. The body (POST/PUT) is buffered whole, up to DASH_MAX_BODY. */
typedef struct dash_req {
  dash_t *d;
  struct MHD_Connection *conn;
  const char *method, *url;
  char *body;
  size_t body_len;
  int by_cookie; /* authenticated by the session cookie (not a bearer token) */
} dash_req_t;

/* dash_http.c: replies. Each queues the response and returns MHD's result. */
enum MHD_Result dash_reply(dash_req_t *r, unsigned code, const char *type, const void *body, size_t len);
/* Replies with v (consumed: json_decref'ed) as JSON. */
enum MHD_Result dash_reply_json(dash_req_t *r, unsigned code, json_t *v);
/* Replies {"error": msg} with code. */
enum MHD_Result dash_reply_error(dash_req_t *r, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A query argument, or NULL. */
const char *dash_arg(dash_req_t *r, const char *name);

/* dash_auth.c */
/* Fills d->cookie from d->token. */
void dash_auth_init(dash_t *d);
/* 1 when r carries the token (bearer) or the session cookie; sets r->by_cookie. */
int dash_auth_ok(dash_req_t *r);
/* Answers a request without credentials: 401 for /api/, a redirect to /login for pages. */
enum MHD_Result dash_auth_reject(dash_req_t *r);
/* GET /login (the form) and POST /login (check the token, set the cookie). */
enum MHD_Result dash_login(dash_req_t *r);
/* GET /logout: clears the cookie. */
enum MHD_Result dash_logout(dash_req_t *r);

/* dash_api.c: the JSON routes under /api/ that are not jobs; returns MHD_NO when none matched
 * (*matched = 0). */
enum MHD_Result dash_api(dash_req_t *r, int *matched);

/* dash_jobs.c: the Jobs REST API (/api/jobs/..., /api/packages/...); *matched as above. */
enum MHD_Result dash_jobs(dash_req_t *r, int *matched);

/* dash_static.c: the embedded page at path ("/", "/static/app.js"); 0 when there is none. */
int dash_static_find(const char *path, const char **type, const unsigned char **data, size_t *len);

/* dash_http.c */
int dash_http_start(dash_t *d, char **err);
void dash_http_stop(dash_t *d);

#endif
