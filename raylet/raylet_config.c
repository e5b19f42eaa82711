/* The raylet's settings table: flags, RAYC_* environment, YAML and --help from one place. */
#include "raylet/raylet.h"

#include "common/cfg.h"
#include "common/log.h"
#include "common/rpc_valid.h"
#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F(field) offsetof(raylet_config_t, field)
static const cfg_entry_t raylet_settings[] = {
    {"session-dir", CFG_STRING, F(session_dir), NULL, "session directory (logs/, sockets/, pids/)"},
    {"gcs-address", CFG_STRING, F(gcs_address), NULL, "HOST:PORT of the cluster's GCS"},
    {"node-ip-address", CFG_STRING, F(node_ip), "127.0.0.1", "address this node listens on"},
    {"port", CFG_INT, F(port), "0", "NodeManagerService gRPC port (0: ephemeral)"},
    {"socket", CFG_STRING, F(socket), NULL, "Unix socket for workers (default SESSION/sockets/raylet)"},
    {"store-socket", CFG_STRING, F(store_socket), NULL, "the store's socket (default SESSION/sockets/store)"},
    {"num-cpus", CFG_DOUBLE, F(num_cpus), "-1", "CPUs to offer (default: the core count)"},
    {"num-gpus", CFG_DOUBLE, F(num_gpus), "0", "GPUs to offer"},
    {"memory", CFG_INT64, F(memory), "0", "memory resource in bytes (default: 70% of RAM)"},
    {"object-store-memory", CFG_INT64, F(object_store_memory), "0", "the store's capacity, reported as a resource"},
    {"resources", CFG_STRING, F(resources), NULL, "custom resources as JSON: {\"name\": amount}"},
    {"head", CFG_BOOL, F(head), "false", "this node is the head node"},
    {"worker-path", CFG_STRING, F(worker_path), NULL, "the rayc-worker executable (default: beside rayc-raylet)"},
    {"python", CFG_STRING, F(python), "/usr/bin/python3", "the interpreter of Python workers"},
    {"python-path", CFG_STRING, F(python_path), NULL,
     "PYTHONPATH of Python workers, where the rayc package is (default: ../python beside rayc-worker if it exists)"},
    {"log-level", CFG_STRING, F(log_level), "info", "debug, info, warn or error"},
    {"token-file", CFG_STRING, F(token_file), NULL, "file holding the cluster token"},
    {"tls-cert", CFG_STRING, F(tls_cert), NULL, "PEM certificate for TLS on every gRPC channel (unset: plaintext)"},
    {"tls-key", CFG_STRING, F(tls_key), NULL, "PEM private key of --tls-cert"},
    {"tls-ca", CFG_STRING, F(tls_ca), NULL, "PEM CA that signed the cluster's certificates"},
    {"min-worker-port", CFG_INT, F(min_worker_port), "0", "lowest port workers serve on (0: ephemeral ports)"},
    {"max-worker-port", CFG_INT, F(max_worker_port), "0", "highest port workers serve on"},
    {"heartbeat-ms", CFG_INT, F(heartbeat_ms), "1000", "period of heartbeats to the GCS"},
    {"heartbeat-udp", CFG_BOOL, F(heartbeat_udp), "true",
     "send heartbeats that report nothing new as UDP datagrams to the GCS's port number (authenticated with the "
     "token; back to gRPC while unanswered), so an idle node needs no gRPC connection to the GCS"},
    {"heartbeat-udp-port", CFG_INT, F(heartbeat_udp_port), "0",
     "UDP port of those heartbeats (0: the GCS's gRPC port number; another only for tests)"},
    {"gcs-idle-close-ms", CFG_INT, F(gcs_idle_close_ms), "10000",
     "the gRPC connection to the GCS closes after this long without a call (reopened by the next; 0: never)"},
    {"max-starting-workers", CFG_INT, F(max_starting_workers), "4", "workers starting at once, at most"},
    {"worker-register-timeout-ms", CFG_INT, F(worker_register_timeout_ms), "30000",
     "a worker that has not registered by then is killed"},
    {"infeasible-timeout-ms", CFG_INT, F(infeasible_timeout_ms), "60000",
     "a task no node can run fails after waiting this long for such a node"},
    {"idle-worker-timeout-ms", CFG_INT, F(idle_worker_timeout_ms), "60000",
     "a worker idle this long is stopped (a new one starts in milliseconds when needed)"},
    {"object-manager-port", CFG_INT, F(object_manager_port), "0", "this node's store's object manager port"},
    {"metrics-port", CFG_INT, F(metrics_port), "0",
     "port of the Prometheus /metrics endpoint on --node-ip-address (0: an ephemeral port; -1: none)"},
    {"store-metrics-port", CFG_INT, F(store_metrics_port), "0",
     "this node's store's /metrics port, listed by the GCS for scrapers (0: unknown)"},
    {"worker-zygote", CFG_INT, F(worker_zygote), "1",
     "start C workers by forking a rayc-worker that has loaded its libraries already (1), or exec each (0)"},
    {"prestart-workers", CFG_INT, F(prestart_workers), "-1",
     "workers started for a job when its driver registers here (-1: min(num-cpus, max-starting-workers))"},
    {"prestart-actor-workers", CFG_INT, F(prestart_actor_workers), "2",
     "idle workers kept ready for a job's next actors once it has created one here (refilled as actors take "
     "them; 0: none)"},
    {"drain-deadline-ms", CFG_INT, F(drain_deadline_ms), "30000",
     "after DrainRaylet (rayc stop), how long running leases may finish before they are ended"},
    {"runtime-env-ttl-ms", CFG_INT, F(runtime_env_ttl_ms), "600000",
     "a job's working-dir copy under <session>/runtime_env that nothing here used for this long is removed (0: never)"},
    {"node-affinity-wait-ms", CFG_INT, F(node_affinity_wait_ms), "5000",
     "a hard node-affinity task for a node not (yet) in the cluster view waits this long for it, then fails"},
    {"local-max-connections", CFG_INT, F(local_max_conns), "8192",
     "workers and drivers connected to the local socket at once, at most (more are refused; 0: no limit)"},
    {"local-frame-max", CFG_INT64, F(local_frame_max), "16M",
     "longest frame a local client may send (at most 16M); a longer one drops the client"},
    {"local-frame-stall-ms", CFG_INT, F(local_stall_ms), "10000",
     "a local client's frame must arrive whole within this long of its first byte (0: no limit)"},
    {"memory-monitor-refresh-ms", CFG_INT, F(mem_refresh_ms), "250",
     "how often the memory monitor checks the node's memory (0: off)"},
    {"memory-usage-threshold", CFG_DOUBLE, F(mem_threshold), "0.95",
     "above this fraction of --memory-limit in use, the worker using the most memory is killed"},
    {"memory-limit", CFG_INT64, F(mem_limit), "0",
     "the node's memory for the monitor; set: the sum of its workers' RSS counts against it (0: the raylet's "
     "cgroup v2 memory.max and memory.current if it has a limit, else MemTotal and MemAvailable of /proc/meminfo)"},
};
#undef F

static char *raylet_default_worker_path(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return xstrdup("rayc-worker");
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0';
  return xasprintf("%s/rayc-worker", exe);
}

/* <dir of rayc-worker>/../python when it holds the rayc package (a build tree), else "" (the
 * package is installed where the interpreter finds it). */
static char *raylet_default_python_path(const char *worker_path)
{
  char *dir = xstrdup(worker_path);
  char *slash = strrchr(dir, '/');
  char *out = NULL;
  if (slash) {
    *slash = '\0';
    char *pkg = xasprintf("%s/../python/rayc/__init__.py", dir), real[PATH_MAX];
    if (realpath(pkg, real)) {
      real[strlen(real) - strlen("/rayc/__init__.py")] = '\0';
      out = xstrdup(real);
    }
    free(pkg);
  }
  free(dir);
  return out ? out : xstrdup("");
}

static int raylet_config_defaults(raylet_t *r)
{
  raylet_config_t *c = &r->cfg;
  if (!c->session_dir || !c->gcs_address) {
    fprintf(stderr, "rayc-raylet: --session-dir and --gcs-address are required\n");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!c->socket)
    c->socket = xasprintf("%s/sockets/raylet", c->session_dir);
  if (!c->store_socket)
    c->store_socket = xasprintf("%s/sockets/store", c->session_dir);
  if (!c->worker_path)
    c->worker_path = raylet_default_worker_path();
  if (!c->python_path)
    c->python_path = raylet_default_python_path(c->worker_path);
  if (c->num_cpus < 0)
    c->num_cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
  if (c->memory <= 0)
    c->memory = (int64_t)((double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) * 0.7);
  if (c->heartbeat_ms < 10)
    c->heartbeat_ms = 10;
  if (c->max_starting_workers < 1)
    c->max_starting_workers = 1;
  if (c->prestart_workers < 0) {
    double n = c->num_cpus < c->max_starting_workers ? c->num_cpus : c->max_starting_workers;
    c->prestart_workers = (int)n;
  } else if (c->prestart_workers > c->num_cpus) {
    c->prestart_workers = (int)c->num_cpus;
  }
  if (c->prestart_actor_workers < 0)
    c->prestart_actor_workers = 0;
  if (c->drain_deadline_ms < 0)
    c->drain_deadline_ms = 0;
  if (!(c->mem_threshold > 0 && c->mem_threshold <= 1) || c->mem_limit < 0 || c->mem_refresh_ms < 0) {
    fprintf(stderr, "rayc-raylet: --memory-usage-threshold must be in (0, 1], --memory-limit and "
                    "--memory-monitor-refresh-ms not negative\n");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (c->min_worker_port < 0 || c->min_worker_port > 65535 ||
      (c->min_worker_port > 0 && (c->max_worker_port < c->min_worker_port || c->max_worker_port > 65535))) {
    fprintf(stderr, "rayc-raylet: --min-worker-port..--max-worker-port must be a range of ports\n");
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

static int raylet_config_resources(raylet_t *r)
{
  raylet_config_t *c = &r->cfg;
  res_put_name(&r->total, "CPU", c->num_cpus);
  res_put_name(&r->total, "GPU", c->num_gpus);
  res_put_name(&r->total, "memory", (double)c->memory);
  res_put_name(&r->total, "object_store_memory", (double)c->object_store_memory);
  if (c->resources && res_parse_json(&r->total, c->resources) != 0) {
    fprintf(stderr, "rayc-raylet: --resources must be a JSON object of name: number (0..1e15), got '%s'\n",
            c->resources);
    return RAYC_EINVALID_ARGUMENT;
  }
  for (uint32_t i = 0; i < r->total.n; i++)
    if (!(r->total.amt[i] >= 0 && r->total.amt[i] <= RPC_VALID_AMOUNT_MAX)) {
      fprintf(stderr, "rayc-raylet: %s must be 0..1e15, got %g\n", res_name(r->total.id[i]), r->total.amt[i]);
      return RAYC_EINVALID_ARGUMENT;
    }
  r->available = r->total;
  return 0;
}

int raylet_config_load(raylet_t *r, int argc, char **argv)
{
  char *err = NULL;
  cfg_set_program("raylet");
  int rc = cfg_load(raylet_settings, ARRAY_LEN(raylet_settings), &r->cfg, argc, argv, NULL, &err);
  if (rc == CFG_PRINTED)
    return CFG_HELP; /* --print-config printed the settings: exit 0 */
  if (rc == CFG_HELP) {
    cfg_usage(stdout, "rayc-raylet", "the rayc node manager", raylet_settings, ARRAY_LEN(raylet_settings));
    return CFG_HELP;
  }
  if (rc != 0) {
    fprintf(stderr, "rayc-raylet: %s\n", err ? err : "invalid settings");
    free(err);
    return rc;
  }
  if ((rc = raylet_config_defaults(r)) != 0 || (rc = raylet_config_resources(r)) != 0)
    return rc;
  if (r->cfg.token_file && *r->cfg.token_file && (rc = token_read_file(r->cfg.token_file, &r->token, &err)) < 0) {
    fprintf(stderr, "rayc-raylet: %s\n", err);
    free(err);
    return RAYC_EINVALID_ARGUMENT;
  }
  r->tls = (rpc_tls_t){r->cfg.tls_cert, r->cfg.tls_key, r->cfg.tls_ca};
  return 0;
}

void raylet_config_release(raylet_t *r)
{
  cfg_release(raylet_settings, ARRAY_LEN(raylet_settings), &r->cfg);
  token_free(r->token);
  r->token = NULL;
}
