/*
 * The /metrics endpoint every daemon serves: a small libmicrohttpd server on its own thread that
 * renders the process's metrics registry (common/metrics.h) in Prometheus's text format.
 *
 * It listens on the node's address only (as the gRPC servers do) and needs no token: like Ray's
 * metrics agent, it exposes counts and sizes for a scraper, never ids, names of objects or data.
 * Only GET /metrics (and GET /, a pointer to it) are served; anything else is 404 or 405.
 */
#ifndef RAYC_COMMON_METRICS_HTTP_H
#define RAYC_COMMON_METRICS_HTTP_H

typedef struct metrics_http metrics_http_t;

/* Serves /metrics on host:port (port 0: an ephemeral port). host is a numeric IPv4 or IPv6
 * address; a wildcard ("0.0.0.0", "::", "") is refused as rpc_server_listen() refuses it. Returns a
 * new server or NULL with *err (if not NULL) a new message; stop with metrics_http_stop(). */
metrics_http_t *metrics_http_start(const char *host, int port, char **err);

/* The bound TCP port. */
int metrics_http_port(const metrics_http_t *m);

/* Stops serving and joins the server's thread. Accepts NULL. */
void metrics_http_stop(metrics_http_t *m);

#endif
