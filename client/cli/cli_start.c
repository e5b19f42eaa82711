/*
 * rayc start: starts this machine's node with client/launch.c, the head (--head: rayc-gcs, then
 * rayc-store and rayc-raylet) or a node joining a cluster (--address HOST:PORT), prints where it
 * runs and, with --block, stays in the foreground until SIGINT/SIGTERM or a daemon's death, then
 * stops the node.
 *
 * The cluster token: the head uses the one given (--token-file / $RAYC_TOKEN_FILE, else
 * $RAYC_TOKEN), else makes a new one and publishes it as <temp-dir>/cluster_token. A joining node
 * finds its cluster's token by token_find's rule (common/token.h) and proves it with a GCS call
 * before it starts anything, so a wrong token fails at once with a clear error. The token is never
 * printed: the guidance names the file.
 */
#include "client/cli/cli.h"
#include "client/launch.h"

#include "common/status.h"
#include "common/token.h"
#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CLI_STOP_GRACE_MS = 10000, CLI_PROBE_TIMEOUT_MS = 5000 };

typedef struct cli_start_conf {
  int head;
  char *address;
  int port;
  double num_cpus, num_gpus;
  int64_t memory, object_store_memory;
  char *resources;
  char *redis_address;
  char *redis_password, *redis_password_file;
  int restart_gcs;
  char *node_ip_address;
  char *temp_dir;
  char *config;
  char *log_level;
  int block;
  int gcs_only;
  int node_manager_port, object_manager_port;
  int min_worker_port, max_worker_port;
  int dashboard_port;
  cli_sec_t sec;
} cli_start_conf_t;

#define F(field) offsetof(cli_start_conf_t, field)
static const cfg_entry_t cli_start_table[] = {
    {"head", CFG_BOOL, F(head), "false", "start the head node (runs the GCS too)"},
    {"address", CFG_STRING, F(address), NULL, "HOST:PORT of the cluster's GCS, to join it"},
    {"port", CFG_INT, F(port), "6380", "head: the GCS port (0: an ephemeral port)"},
    {"num-cpus", CFG_DOUBLE, F(num_cpus), "-1", "CPUs this node offers (-1: its core count)"},
    {"num-gpus", CFG_DOUBLE, F(num_gpus), "-1", "GPUs this node offers (-1: detect; 0 for now)"},
    {"memory", CFG_INT64, F(memory), "0", "bytes of memory for tasks to reserve (0: default)"},
    {"resources", CFG_STRING, F(resources), NULL, "custom resources as JSON: '{\"name\": 2}'"},
    {"object-store-memory", CFG_INT64, F(object_store_memory), "0",
     "bytes of shared memory for objects (0: 30% of RAM)"},
    {"redis-address", CFG_STRING, F(redis_address), NULL, "head: Redis for the GCS tables"},
    {"redis-password", CFG_STRING, F(redis_password), NULL,
     "head: Redis AUTH password (a flag shows in ps: prefer the variable or --redis-password-file)"},
    {"redis-password-file", CFG_STRING, F(redis_password_file), NULL,
     "head: a file whose first line is the Redis AUTH password"},
    {"restart-gcs", CFG_BOOL, F(restart_gcs), "false",
     "restart the GCS of this machine's head (<temp-dir>/session_latest) after it died, as first started"},
    {"node-ip-address", CFG_STRING, F(node_ip_address), "127.0.0.1",
     "this node's IP address, the one other nodes reach it on"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions (logs, sockets) live"},
    {"config", CFG_STRING, F(config), NULL, "YAML settings passed to every daemon"},
    {"log-level", CFG_STRING, F(log_level), NULL, "daemons' log level: debug, info, warn, error"},
    {"block", CFG_BOOL, F(block), "false", "stay in the foreground; ^C stops the node"},
    {"gcs-only", CFG_BOOL, F(gcs_only), "false", "head: run the GCS alone (no tasks here)"},
    {"node-manager-port", CFG_INT, F(node_manager_port), "0", "the raylet's gRPC port (0: an ephemeral port)"},
    {"object-manager-port", CFG_INT, F(object_manager_port), "0",
     "the object store's gRPC port, for transfers between nodes (0: an ephemeral port)"},
    {"min-worker-port", CFG_INT, F(min_worker_port), "0",
     "lowest port workers (and drivers' actor owners) serve on (0: ephemeral ports)"},
    {"max-worker-port", CFG_INT, F(max_worker_port), "0", "highest port workers serve on"},
    {"dashboard-port", CFG_INT, F(dashboard_port), "8265",
     "head: the HTTP port of the dashboard, state API and Jobs REST API (0: an ephemeral port; -1: none)"},
    CLI_SEC_SETTINGS(cli_start_conf_t, sec),
};
#undef F

static const char cli_start_summary[] =
    "Starts a node on this machine: `rayc start --head` makes a new cluster, `rayc start --address\n"
    "HOST:PORT` joins one. The session (logs, sockets) goes to <temp-dir>/session_latest.";

static void cli_start_opts(const cli_start_conf_t *c, launch_opts_t *o)
{
  launch_opts_init(o);
  o->head = c->head;
  o->gcs_address = c->address;
  o->gcs_port = c->port;
  o->node_ip = c->node_ip_address;
  o->num_cpus = c->num_cpus;
  o->num_gpus = c->num_gpus;
  o->memory = c->memory;
  o->object_store_memory = c->object_store_memory;
  o->resources_json = c->resources;
  o->redis_address = c->redis_address;
  o->redis_password = c->redis_password;
  o->temp_dir = c->temp_dir;
  o->config_file = c->config;
  o->log_level = c->log_level;
  o->gcs_only = c->gcs_only;
  o->node_manager_port = c->node_manager_port;
  o->object_manager_port = c->object_manager_port;
  o->min_worker_port = c->min_worker_port;
  o->max_worker_port = c->max_worker_port;
  o->tls_cert = c->sec.tls_cert;
  o->tls_key = c->sec.tls_key;
  o->tls_ca = c->sec.tls_ca;
  o->publish_token = 1;
  o->dashboard_port = c->dashboard_port;
}

/* Returns a static message for a bad combination of flags, or NULL. */
static const char *cli_start_check(cli_start_conf_t *c)
{
  if (c->restart_gcs)
    return NULL; /* takes only --temp-dir */
  if (c->head && c->address && *c->address) {
    fprintf(stderr,
            "rayc start: --head starts a new cluster: ignoring the address %s "
            "(from --address or RAYC_ADDRESS)\n",
            c->address);
    free(c->address);
    c->address = NULL;
  }
  if (!c->head && (!c->address || !*c->address))
    return "say --head to start a new cluster, or --address HOST:PORT to join one";
  if (!c->head && (c->gcs_only || c->redis_address || c->redis_password || c->redis_password_file))
    return "--gcs-only and --redis-address/--redis-password[-file] only apply to the head (--head)";
  if ((c->redis_password || c->redis_password_file) && !(c->redis_address && *c->redis_address))
    return "--redis-password[-file] needs --redis-address";
  if (c->node_manager_port < 0 || c->node_manager_port > 65535 || c->object_manager_port < 0 ||
      c->object_manager_port > 65535)
    return "--node-manager-port and --object-manager-port must be ports (0..65535)";
  if (c->min_worker_port < 0 || c->min_worker_port > 65535 ||
      (c->min_worker_port > 0 && (c->max_worker_port < c->min_worker_port || c->max_worker_port > 65535)))
    return "--min-worker-port..--max-worker-port must be a range of ports (0: ephemeral ports)";
  return NULL;
}

/* --redis-password-file: its first line replaces c->redis_password. 0, or -1 (printed). */
static int cli_start_redis_password(cli_start_conf_t *c)
{
  if (!c->redis_password_file || !*c->redis_password_file)
    return 0;
  FILE *f = fopen(c->redis_password_file, "r");
  char line[1024] = "";
  int ok = f && fgets(line, sizeof(line), f);
  if (f)
    fclose(f);
  line[strcspn(line, "\r\n")] = '\0';
  if (!ok || !line[0]) {
    fprintf(stderr, "rayc start: --redis-password-file %s: %s\n", c->redis_password_file,
            ok ? "its first line is empty" : strerror(errno));
    return -1;
  }
  free(c->redis_password);
  c->redis_password = xstrdup(line);
  explicit_bzero(line, sizeof(line));
  return 0;
}

/* --restart-gcs: the GCS of the head session this machine started last, again. */
static int cli_start_restart_gcs(const cli_start_conf_t *c)
{
  char session[PATH_MAX], addr[256] = "";
  char *err = NULL;
  pid_t pid = 0;
  if (cli_session_latest(c->temp_dir, session, sizeof(session)) < 0) {
    fprintf(stderr, "rayc start --restart-gcs: no session in %s (no session_latest)\n", c->temp_dir);
    return CLI_FAIL;
  }
  if (launch_gcs_restart(session, 10000, &pid, &err) < 0) {
    fprintf(stderr, "rayc start --restart-gcs: %s\n", err);
    free(err);
    return CLI_FAIL;
  }
  cli_find_address(NULL, c->temp_dir, addr, sizeof(addr));
  printf("rayc: restarted the GCS of session %s (pid %d) at %s; the nodes and drivers of the cluster\n"
         "reconnect to it (with Redis it reloaded its tables). `rayc stop` stops it with the node.\n",
         session, (int)pid, addr);
  return CLI_OK;
}

/* Makes a TLS file path absolute, since daemons and workers read it later. 0, or -1 (printed). */
static int cli_start_abs(char **path, const char *flag)
{
  char buf[PATH_MAX];
  if (!*path || !**path)
    return 0;
  if (!realpath(*path, buf)) {
    fprintf(stderr, "rayc start: %s %s: %s\n", flag, *path, strerror(errno));
    return -1;
  }
  free(*path);
  *path = xstrdup(buf);
  return 0;
}

static int cli_start_tls(cli_start_conf_t *c)
{
  cli_sec_t *s = &c->sec;
  int n = !!(s->tls_cert && *s->tls_cert) + !!(s->tls_key && *s->tls_key) + !!(s->tls_ca && *s->tls_ca);
  if (n != 0 && n != 3) {
    fprintf(stderr, "rayc start: TLS needs all of --tls-cert, --tls-key and --tls-ca\n");
    return -1;
  }
  return cli_start_abs(&s->tls_cert, "--tls-cert") || cli_start_abs(&s->tls_key, "--tls-key") ||
                 cli_start_abs(&s->tls_ca, "--tls-ca")
             ? -1
             : 0;
}

/* The head's token: the one given (--token-file, else $RAYC_TOKEN), or NULL for a new one. */
static int cli_start_head_token(const cli_start_conf_t *c, char **token)
{
  char *err = NULL;
  const char *env = getenv("RAYC_TOKEN");
  *token = NULL;
  if (c->sec.token_file && *c->sec.token_file) {
    int rc = token_read_file(c->sec.token_file, token, &err);
    if (rc < 0)
      fprintf(stderr, "rayc start: %s\n", err);
    free(err);
    return rc;
  }
  if (env && *env && !token_valid(env)) {
    fprintf(stderr, "rayc start: RAYC_TOKEN is not a token (printable characters without spaces)\n");
    return RAYC_EINVALID_ARGUMENT;
  }
  *token = env && *env ? xstrdup(env) : NULL;
  return 0;
}

static void cli_start_report(const cli_start_conf_t *c, const launch_result_t *r)
{
  printf("rayc: started %s\n", c->head ? "the head node of a new cluster" : "a node");
  printf("  session  %s\n  logs     %s/logs\n  GCS      %s\n", r->session_dir, r->session_dir, r->gcs_address);
  if (!c->gcs_only)
    printf("  raylet   port %d, socket %s\n", r->raylet_port, r->raylet_socket);
  printf("  token    %s (0600; `rayc get-token` prints it)\n", r->token_file);
  if (r->dashboard_port > 0)
    printf("  dashboard %s://%s:%d/ (log in with the token)\n", c->sec.tls_cert ? "https" : "http", c->node_ip_address,
           r->dashboard_port);
  else if (r->dashboard_error[0])
    fprintf(stderr, "rayc start: warning: the dashboard did not start (the cluster runs without it): %s\n",
            r->dashboard_error);
  if (c->head) {
    char *published = xasprintf("%s/" TOKEN_FILE_NAME, c->temp_dir);
    int pub = access(published, F_OK) == 0;
    printf("\nTo use this cluster from this machine:\n  export RAYC_ADDRESS=%s\n", r->gcs_address);
    if (strcmp(c->temp_dir, TOKEN_DEFAULT_TEMP_DIR) != 0)
      printf("  export RAYC_TEMP_DIR=%s    (where drivers find the cluster token)\n", c->temp_dir);
    printf("If the GCS dies, `rayc start --restart-gcs%s%s` starts it again at %s in this session.\n",
           strcmp(c->temp_dir, "/tmp/rayc") ? " --temp-dir " : "", strcmp(c->temp_dir, "/tmp/rayc") ? c->temp_dir : "",
           r->gcs_address);
    printf("To add a node (on another machine, with its own --node-ip-address), copy the cluster token\n"
           "file %s there (keep it 0600) and run:\n"
           "  rayc start --address %s --token-file <that copy>\n",
           pub ? published : r->token_file, r->gcs_address);
    free(published);
  }
  printf("To stop this node: rayc stop%s%s\n", strcmp(c->temp_dir, "/tmp/rayc") ? " --temp-dir " : "",
         strcmp(c->temp_dir, "/tmp/rayc") ? c->temp_dir : "");
  fflush(stdout);
}

/* Before joining: checks that the GCS at address answers and takes our token, so that a wrong
 * address or token fails at once, before anything starts. */
static int cli_start_probe(const char *address, const cli_auth_t *a)
{
  Rayc__GetAllNodeInfoReply *reply = NULL;
  char *detail = NULL;
  int rc = cli_gcs_get_nodes(a, address, CLI_PROBE_TIMEOUT_MS, &reply, &detail);
  if (rc == RAYC_EUNAUTHENTICATED && a->token)
    fprintf(stderr, "rayc start: the cluster at %s rejected the token (from %s); nothing was started.\n", address,
            a->where);
  else if (rc == RAYC_EUNAUTHENTICATED)
    fprintf(stderr, "rayc start: the cluster at %s wants a token and none was found (%s); nothing was started.\n",
            address, a->where);
  else if (rc < 0)
    fprintf(stderr, "rayc start: cannot reach the cluster's GCS at %s: %s\n", address,
            detail && *detail ? detail : rayc_strerror(rc));
  if (rc == RAYC_EUNAUTHENTICATED)
    fprintf(stderr, "Pass a copy of the head's <temp-dir>/cluster_token with --token-file, or set RAYC_TOKEN.\n");
  else if (rc == 0 && !a->token) {
    fprintf(stderr, "rayc start: no cluster token found (%s); every node needs its cluster's token\n", a->where);
    rc = RAYC_EUNAUTHENTICATED;
  }
  pb_free(reply);
  free(detail);
  return rc;
}

/* --block: waits for SIGINT/SIGTERM (blocked since before the launch) or a daemon's exit. */
static int cli_start_block(const launch_result_t *r, const sigset_t *set)
{
  int status = CLI_OK;
  printf("Blocking: ^C (SIGINT) or SIGTERM stops the node.\n");
  fflush(stdout);
  for (;;) {
    int sig = sigwaitinfo(set, NULL), wst;
    pid_t pid = sig == SIGCHLD ? waitpid(-1, &wst, WNOHANG) : 0;
    if (sig == SIGINT || sig == SIGTERM) {
      printf("rayc: received %s, stopping the node\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (pid > 0) {
      fprintf(stderr, "rayc: a daemon of the node (pid %d) exited; see %s/logs; stopping the node\n", (int)pid,
              r->session_dir);
      status = CLI_FAIL;
      break;
    }
  }
  launch_node_stop(r->session_dir, CLI_STOP_GRACE_MS, 0);
  return status;
}

int cli_start(int argc, char **argv)
{
  cli_start_conf_t c;
  int status = cli_parse("start", cli_start_summary, cli_start_table, ARRAY_LEN(cli_start_table), &c, sizeof(c), argc,
                         argv);
  if (status != CLI_CONTINUE)
    return status;
  const char *bad = cli_start_check(&c);
  launch_opts_t o;
  launch_result_t r;
  cli_auth_t auth = {0};
  sigset_t set;
  char *err = NULL, *token = NULL;
  if (bad || c.restart_gcs) {
    if (bad)
      fprintf(stderr, "rayc start: %s\nRun `rayc start --help` for its flags.\n", bad);
    status = bad ? CLI_USAGE : cli_start_restart_gcs(&c);
    goto out;
  }
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  if (c.block) /* before the launch, so that a ^C while starting still stops the node */
    sigprocmask(SIG_BLOCK, &set, NULL);
  if (cli_start_tls(&c) < 0 || cli_start_redis_password(&c) < 0) {
    status = CLI_USAGE;
    goto out;
  }
  cli_start_opts(&c, &o);
  if (c.head ? cli_start_head_token(&c, &token) < 0
             : cli_auth_init(&auth, &c.sec, c.temp_dir, "start") < 0 || cli_start_probe(c.address, &auth) < 0) {
    status = CLI_FAIL;
    goto out;
  }
  o.token = c.head ? token : auth.token;
  if (launch_node_start(&o, &r, &err) < 0) {
    fprintf(stderr, "rayc start: %s\n", err);
    status = CLI_FAIL;
    goto out;
  }
  cli_start_report(&c, &r);
  status = c.block ? cli_start_block(&r, &set) : CLI_OK;
out:
  explicit_bzero(r.token, sizeof(r.token));
  token_free(token);
  cli_auth_release(&auth);
  free(err);
  cfg_release(cli_start_table, ARRAY_LEN(cli_start_table), &c);
  return status;
}
