/*
 * rayc-gcs server: storage selection, the RPC table, start-up, the cron and shutdown. The tables
 * and their handlers live in gcs_node.c, gcs_job.c and gcs_kv.c; see gcs_server.h for the design.
 */
#include "gcs/gcs_server.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_kv.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#define GCS_ROW(svc, name, fn) {.service = &rayc__##svc##__descriptor, .method = name, .handler = fn}

const rpc_method_t gcs_rpc_methods[] = {
    GCS_ROW(node_info_gcs_service, "RegisterNode", gcs_node_on_register),
    GCS_ROW(node_info_gcs_service, "UnregisterNode", gcs_node_on_unregister),
    GCS_ROW(node_info_gcs_service, "GetAllNodeInfo", gcs_node_on_get_all),
    GCS_ROW(node_info_gcs_service, "ReportHeartbeat", gcs_node_on_heartbeat),
    GCS_ROW(job_info_gcs_service, "AddJob", gcs_job_on_add),
    GCS_ROW(job_info_gcs_service, "MarkJobFinished", gcs_job_on_mark_finished),
    GCS_ROW(job_info_gcs_service, "GetAllJobInfo", gcs_job_on_get_all),
    GCS_ROW(internal_kvgcs_service, "InternalKVGet", gcs_kv_on_get),
    GCS_ROW(internal_kvgcs_service, "InternalKVPut", gcs_kv_on_put),
    GCS_ROW(internal_kvgcs_service, "InternalKVDel", gcs_kv_on_del),
    GCS_ROW(internal_kvgcs_service, "InternalKVKeys", gcs_kv_on_keys),
};
const size_t gcs_rpc_methods_len = ARRAY_LEN(gcs_rpc_methods);

/* Picks the storage backend the config asks for. Returns NULL with *err set when it cannot. */
static gcs_store_t *gcs_server_open_store(const gcs_config_t *conf, char **err)
{
  if (conf->redis_address && *conf->redis_address) {
    *err = xasprintf("redis storage not implemented yet (--redis-address %s); start without "
                     "--redis-address to keep the tables in memory",
                     conf->redis_address);
    return NULL;
  }
  log_info("storage: in memory (tables are lost when the GCS exits)");
  return gcs_store_create_memory();
}

/* Reads the cluster token: the file's first line, surrounding white space removed. */
static char *gcs_server_read_token(const char *path, char **err)
{
  char buf[4096];
  FILE *f = fopen(path, "r");
  if (!f) {
    *err = xasprintf("cannot read --token-file %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  char *start = buf;
  while (isspace((unsigned char)*start))
    start++;
  size_t len = strlen(start);
  while (len > 0 && isspace((unsigned char)start[len - 1]))
    start[--len] = '\0';
  if (len == 0) {
    *err = xasprintf("--token-file %s holds no token", path);
    return NULL;
  }
  return xstrdup(start);
}

static void gcs_server_free(gcs_server_t *s)
{
  rpc_server_destroy(s->rpc);
  gcs_jobs_release(&s->jobs);
  gcs_nodes_release(&s->nodes);
  gcs_store_destroy(s->store);
  free(s->token);
  free(s);
}

gcs_server_t *gcs_server_create(uv_loop_t *loop, const gcs_config_t *conf, char **err)
{
  char *e = NULL;
  gcs_server_t *s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->conf = conf;
  s->store = gcs_server_open_store(conf, &e);
  if (s->store && conf->token_file)
    s->token = gcs_server_read_token(conf->token_file, &e);
  if (e)
    goto fail;
  gcs_nodes_init(&s->nodes, s->store, now_ms());
  gcs_jobs_init(&s->jobs, s->store);
  rpc_server_opts_t opts = {.loop = loop, .token = s->token, .ctx = s};
  s->rpc = rpc_server_create(gcs_rpc_methods, gcs_rpc_methods_len, &opts);
  if (!s->rpc) {
    e = xstrdup("the GCS RPC table does not match proto/gcs.proto");
    goto fail;
  }
  uv_timer_init(loop, &s->cron);
  uv_signal_init(loop, &s->sig_term);
  uv_signal_init(loop, &s->sig_int);
  s->cron.data = s->sig_term.data = s->sig_int.data = s;
  return s;
fail:
  if (err)
    *err = e;
  else
    free(e);
  gcs_server_free(s);
  return NULL;
}

void gcs_server_cron(gcs_server_t *s, int64_t now)
{
  gcs_nodes_check_timeouts(&s->nodes, now, s->conf->heartbeat_timeout_ms);
}

static void gcs_server_on_cron(uv_timer_t *t)
{
  gcs_server_cron(t->data, now_ms());
}

static void gcs_server_on_signal(uv_signal_t *h, int signum)
{
  log_info("received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  gcs_server_stop(h->data);
}

/* The cron period: a tenth of the heartbeat timeout, between 10 ms and 1 s. */
static uint64_t gcs_server_cron_ms(const gcs_config_t *conf)
{
  int ms = conf->heartbeat_timeout_ms / 10;
  return (uint64_t)(ms < 10 ? 10 : ms > 1000 ? 1000 : ms);
}

int gcs_server_start(gcs_server_t *s, char **err)
{
  const char *ip = s->conf->node_ip_address;
  int v6 = strchr(ip, ':') != NULL;
  char *addr = xasprintf("%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", s->conf->port);
  int rc = rpc_server_listen(s->rpc, addr);
  if (rc > 0) {
    s->port = rc;
    rc = rpc_server_start(s->rpc);
  }
  if (rc < 0) {
    char *e = xasprintf("cannot serve on %s: %s", addr, rayc_strerror(rc));
    log_error("%s", e);
    if (err)
      *err = e;
    else
      free(e);
    free(addr);
    return rc;
  }
  free(addr);
  uint64_t period = gcs_server_cron_ms(s->conf);
  uv_timer_start(&s->cron, gcs_server_on_cron, period, period);
  uv_signal_start(&s->sig_term, gcs_server_on_signal, SIGTERM);
  uv_signal_start(&s->sig_int, gcs_server_on_signal, SIGINT);
  s->started = 1;
  log_info("listening on %s:%d (token %s, heartbeat timeout %d ms)", ip, s->port,
           s->token ? "required" : "not required", s->conf->heartbeat_timeout_ms);
  sd_notifyf(0, "READY=1\nRAYC_PORT=%d\nSTATUS=serving on %s:%d", s->port, ip, s->port);
  return 0;
}

void gcs_server_stop(gcs_server_t *s)
{
  if (!s || s->stopping)
    return;
  s->stopping = 1;
  if (s->started)
    sd_notify(0, "STOPPING=1");
  rpc_server_destroy(s->rpc);
  s->rpc = NULL;
  uv_close((uv_handle_t *)&s->cron, NULL);
  uv_close((uv_handle_t *)&s->sig_term, NULL);
  uv_close((uv_handle_t *)&s->sig_int, NULL);
}

void gcs_server_destroy(gcs_server_t *s)
{
  if (!s)
    return;
  if (s->started)
    log_info("stopped (nodes known: %zu, jobs: %zu)", s->nodes.n, s->jobs.n);
  gcs_server_free(s);
}
