/* rayc-dashboard: the head's HTTP endpoint. See dashboard/dash.h for the design. */
#include "dashboard/dash.h"

#include "common/cfg.h"
#include "common/log.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define F(field) offsetof(dash_config_t, field)
static const cfg_entry_t dash_config_table[] = {
    {"session-dir", CFG_STRING, F(session_dir), NULL, "the head's session: logs go to DIR/logs/dashboard.log"},
    {"gcs-address", CFG_STRING, F(gcs_address), NULL, "HOST:PORT of the GCS (required)"},
    {"node-ip-address", CFG_STRING, F(node_ip_address), "127.0.0.1", "the address to serve HTTP on"},
    {"port", CFG_INT, F(port), "8265", "the HTTP port (0: an ephemeral port)"},
    {"token-file", CFG_STRING, F(token_file), NULL, "file holding the cluster token (unset: no token)"},
    {"tls-cert", CFG_STRING, F(tls_cert), NULL, "PEM certificate: HTTPS, and TLS to the GCS (unset: plaintext)"},
    {"tls-key", CFG_STRING, F(tls_key), NULL, "PEM private key of --tls-cert"},
    {"tls-ca", CFG_STRING, F(tls_ca), NULL, "PEM CA that signed the cluster's certificates"},
    {"log-level", CFG_STRING, F(log_level), "info", "debug, info, warn or error"},
};
#undef F

static const char dash_summary[] =
    "rayc-dashboard: the head's HTTP endpoint (dashboard, state API as JSON, Jobs REST API), authenticated\n"
    "with the cluster token. Tells systemd (or rayc start) READY=1 and RAYC_PORT=<port>.";

/* Settings, log and token; 0, -1 after --help, or an exit status. */
static int dash_setup(dash_t *d, int argc, char **argv)
{
  char *err = NULL;
  cfg_set_program("dashboard");
  int rc = cfg_load(dash_config_table, ARRAY_LEN(dash_config_table), &d->conf, argc, argv, NULL, &err);
  if (rc == CFG_HELP || rc == CFG_PRINTED) { /* --print-config printed the settings */
    if (rc == CFG_HELP)
      cfg_usage(stdout, "rayc-dashboard", dash_summary, dash_config_table, ARRAY_LEN(dash_config_table));
    return -1;
  }
  if (rc == 0 && (!d->conf.gcs_address || d->conf.port < 0 || d->conf.port > 65535))
    err = xstrdup("--gcs-address is required and --port must be 0..65535"), rc = RAYC_EINVALID_ARGUMENT;
  if (rc == 0 && d->conf.token_file && token_read_file(d->conf.token_file, &d->token, &err) != 0)
    rc = RAYC_EINVALID_ARGUMENT;
  if (rc != 0) {
    fprintf(stderr, "rayc-dashboard: %s\n", err ? err : "bad settings");
    free(err);
    return 2;
  }
  log_init("dashboard", (enum log_level)log_level_parse(d->conf.log_level));
  if (d->conf.session_dir) {
    char *path = xasprintf("%s/logs/dashboard.log", d->conf.session_dir);
    if (log_open(path, 0) < 0)
      fprintf(stderr, "rayc-dashboard: cannot open %s\n", path);
    free(path);
  }
  d->tls = (rpc_tls_t){d->conf.tls_cert, d->conf.tls_key, d->conf.tls_ca};
  dash_auth_init(d);
  return 0;
}

static int dash_start(dash_t *d)
{
  rpc_client_opts_t opts = {.token = d->token, .tls = &d->tls};
  char *err = NULL;
  if (!(d->client = rpc_client_create(&opts))) {
    log_error("cannot make the gRPC client (token or TLS files unusable)");
    return 1;
  }
  d->src.gcs = rpc_channel_get(d->client, d->conf.gcs_address);
  d->src.client = d->client;
  d->src.timeout_ms = 10000;
  if (dash_http_start(d, &err) != 0) {
    log_error("%s", err);
    fprintf(stderr, "rayc-dashboard: %s\n", err);
    free(err);
    return 1;
  }
  log_info("serving %s://%s:%d/ (GCS %s, %s)", d->https ? "https" : "http", d->conf.node_ip_address, d->bound_port,
           d->conf.gcs_address, d->token ? "token required" : "no token");
  sd_notifyf(0, "READY=1\nRAYC_PORT=%d\nSTATUS=serving on port %d", d->bound_port, d->bound_port);
  return 0;
}

int main(int argc, char **argv)
{
  dash_t d;
  memset(&d, 0, sizeof(d));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits it: signals wait for sigwait */
  signal(SIGPIPE, SIG_IGN);
  int rc = dash_setup(&d, argc, argv);
  if (rc == 0 && (rc = dash_start(&d)) == 0) {
    int sig = 0;
    sigwait(&set, &sig);
    log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
  }
  dash_http_stop(&d);
  rpc_client_destroy(d.client);
  token_free(d.token);
  cfg_release(dash_config_table, ARRAY_LEN(dash_config_table), &d.conf);
  return rc < 0 ? 0 : rc; /* < 0: --help */
}
