/* Settings of rayc-gcs: the one table that drives flags, RAYC_* variables, YAML and --help. */
#include "gcs/gcs_server.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(gcs_config_t, field)

const cfg_entry_t gcs_config_table[] = {
    {"session-dir", CFG_STRING, F(session_dir), NULL,
     "session directory: logs go to DIR/logs/gcs.log (unset: to stderr)"},
    {"port", CFG_INT, F(port), "6380", "gRPC port to listen on (0: an ephemeral port)"},
    {"node-ip-address", CFG_STRING, F(node_ip_address), "127.0.0.1",
     "this node's address; the only address the GCS listens on"},
    {"redis-address", CFG_STRING, F(redis_address), NULL,
     "Redis for persistent tables: HOST:PORT, [IPV6]:PORT or unix:/PATH (unset: in memory)"},
    {"redis-password", CFG_STRING, F(redis_password), NULL, "Redis AUTH password (unset: none)"},
    {"redis-key-prefix", CFG_STRING, F(redis_key_prefix), NULL,
     "prefix of this cluster's Redis keys, table T in hash PREFIX:T (unset: rayc:<port>)"},
    {"token-file", CFG_STRING, F(token_file), NULL,
     "file holding the cluster token every call must carry (unset: no token)"},
    {"tls-cert", CFG_STRING, F(tls_cert), NULL, "PEM certificate for TLS on every gRPC channel (unset: plaintext)"},
    {"tls-key", CFG_STRING, F(tls_key), NULL, "PEM private key of --tls-cert"},
    {"tls-ca", CFG_STRING, F(tls_ca), NULL, "PEM CA that signed the cluster's certificates"},
    {"heartbeat-timeout-ms", CFG_INT, F(heartbeat_timeout_ms), "30000",
     "a node with no heartbeat for this long is marked DEAD (0: never)"},
    {"health-check-period-ms", CFG_INT, F(health_check_period_ms), "1000", "how often the GCS probes each raylet"},
    {"health-check-timeout-ms", CFG_INT, F(health_check_timeout_ms), "1000", "a probe not answered within this fails"},
    {"health-check-failure-threshold", CFG_INT, F(health_check_failure_threshold), "5",
     "a node whose probes failed this many times in a row is marked DEAD"},
    {"pubsub-buffer", CFG_INT, F(pubsub_buffer), "1000",
     "messages kept per pub/sub channel; a subscriber further behind must resync"},
    {"pubsub-poll-timeout-ms", CFG_INT, F(pubsub_poll_timeout_ms), "30000",
     "a held Poll with nothing to deliver is answered empty after this long"},
    {"log-level", CFG_STRING, F(log_level), "info", "debug, info, warn or error"},
    {"metrics-port", CFG_INT, F(metrics_port), "0",
     "port of the Prometheus /metrics endpoint on --node-ip-address (0: an ephemeral port; -1: none)"},
    {"task-events-max", CFG_INT, F(task_events_max), "100000",
     "task attempts whose state the GCS keeps for rayc list tasks and the timeline (oldest dropped first)"},
    {"cluster-events-max", CFG_INT, F(cluster_events_max), "10000",
     "cluster events kept for rayc list cluster-events (oldest dropped first)"},
    {"job-package-ttl-ms", CFG_INT, F(job_package_ttl_ms), "600000",
     "a job working-dir package (KV namespace pkg) no job used for this long is deleted (0: never)"},
    {"heartbeat-udp", CFG_BOOL, F(heartbeat_udp), "true",
     "answer raylets' idle heartbeats sent as UDP datagrams to the gRPC port number (authenticated with the "
     "token), so an idle node needs no gRPC connection; off: every heartbeat is a gRPC call"},
    {"actors-per-worker", CFG_INT, F(actors_per_worker), "16",
     "actors created with share_worker that one worker process hosts at most (1: each gets its own)"},
};
const size_t gcs_config_table_len = ARRAY_LEN(gcs_config_table);

static const char gcs_config_summary[] =
    "rayc-gcs: the cluster's control store (nodes, jobs, workers, internal KV, pub/sub, health\n"
    "checks), in memory or persisted to Redis. Tells systemd (or rayc start) READY=1 and\n"
    "RAYC_PORT=<port> once it listens; SIGTERM or SIGINT stops it.";

static int gcs_config_bad_redis(const char *addr)
{
  char *host = NULL, *path = NULL;
  int port, rc = gcs_redis_parse_address(addr, &host, &port, &path);
  free(host);
  free(path);
  return rc < 0;
}

/* Returns a static message for the first bad value, or NULL. */
static const char *gcs_config_check(const gcs_config_t *c)
{
  if (c->port < 0 || c->port > 65535)
    return "--port must be between 0 and 65535";
  if (c->heartbeat_timeout_ms < 0)
    return "--heartbeat-timeout-ms must be 0 (never) or positive";
  if (c->health_check_period_ms <= 0 || c->health_check_timeout_ms <= 0)
    return "--health-check-period-ms and --health-check-timeout-ms must be positive";
  if (c->health_check_failure_threshold <= 0)
    return "--health-check-failure-threshold must be positive";
  if (c->pubsub_buffer <= 0 || c->pubsub_poll_timeout_ms <= 0)
    return "--pubsub-buffer and --pubsub-poll-timeout-ms must be positive";
  if (c->redis_address && *c->redis_address && gcs_config_bad_redis(c->redis_address))
    return "--redis-address must be HOST:PORT, [IPV6]:PORT or unix:/PATH";
  if (c->metrics_port < -1 || c->metrics_port > 65535)
    return "--metrics-port must be -1 (none), 0 (ephemeral) or a port";
  if (c->actors_per_worker < 1 || c->actors_per_worker > 1000)
    return "--actors-per-worker must be between 1 and 1000";
  if (c->task_events_max <= 0 || c->cluster_events_max <= 0)
    return "--task-events-max and --cluster-events-max must be positive";
  if (log_level_parse(c->log_level) < 0)
    return "--log-level must be debug, info, warn or error";
  if (!c->node_ip_address || !*c->node_ip_address)
    return "--node-ip-address must not be empty";
  if (strcmp(c->node_ip_address, "0.0.0.0") == 0 || strcmp(c->node_ip_address, "::") == 0)
    return "--node-ip-address must be an address other nodes reach this one on, not a wildcard";
  if (c->session_dir && c->session_dir[0] != '/')
    return "--session-dir must be an absolute path";
  return NULL;
}

int gcs_config_load(gcs_config_t *conf, int argc, char **argv)
{
  char *err = NULL;
  int next = argc;
  memset(conf, 0, sizeof(*conf));
  cfg_set_program("gcs"); /* the YAML section "gcs:" is ours */
  int rc = cfg_load(gcs_config_table, gcs_config_table_len, conf, argc, argv, &next, &err);
  if (rc == CFG_PRINTED) { /* --print-config printed the settings: exit 0 */
    gcs_config_release(conf);
    return CFG_HELP;
  }
  if (rc == CFG_HELP) {
    cfg_usage(stdout, "rayc-gcs", gcs_config_summary, gcs_config_table, gcs_config_table_len);
    return CFG_HELP;
  }
  const char *bad = rc == 0 ? gcs_config_check(conf) : NULL;
  if (rc == 0 && !bad && next < argc)
    bad = "unexpected argument (rayc-gcs takes only flags)";
  if (rc < 0 || bad) {
    fprintf(stderr, "rayc-gcs: %s (see rayc-gcs --help)\n", bad ? bad : err);
    free(err);
    gcs_config_release(conf);
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

void gcs_config_release(gcs_config_t *conf)
{
  cfg_release(gcs_config_table, gcs_config_table_len, conf);
}
