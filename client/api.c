/*
 * rayc_init and rayc_shutdown: connecting a driver to a cluster (or starting a private one), and
 * leaving it. The rest of the public API lives in the core worker (worker/cw_*.c).
 *
 * The driver's cluster token is the private cluster's, or else found by token_find's rule
 * (common/token.h: $RAYC_TOKEN_FILE, $RAYC_TOKEN, <temp-dir>/session_latest/cluster_token,
 * <temp-dir>/cluster_token, with <temp-dir> from rayc_config.temp_dir, $RAYC_TEMP_DIR or
 * /tmp/rayc). TLS files come from $RAYC_TLS_CERT, $RAYC_TLS_KEY and $RAYC_TLS_CA.
 *
 * A driver given no address ($RAYC_ADDRESS, rayc_config.address) and no temp dir joins the node
 * systemd runs on this machine when there is one (common/sysnode.h), else starts a private cluster.
 */
#include "client/launch.h"
#include "worker/cw.h"
#include "worker/cw_proc.h"
#include "worker/cw_actor.h"

#include "common/log.h"
#include "common/status.h"
#include "common/sysnode.h"
#include "common/token.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Makes every code path entry absolute, so workers started elsewhere find the same files. Under a
 * submitted job with a working dir (RAYC_WORKING_DIR, RAYC_WORKING_DIR_PKG: set by the job
 * supervisor), an entry inside the working dir becomes "pkg_<sha256>/<path inside>", which workers
 * on every node resolve to their own copy of the package (worker/cw_rtenv.h). */
static char *api_code_path(const char *in)
{
  if (!in || !*in)
    return xstrdup("");
  char *copy = xstrdup(in), *save = NULL, *out = xstrdup("");
  const char *wd = getenv("RAYC_WORKING_DIR"), *pkg = getenv("RAYC_WORKING_DIR_PKG");
  char wdabs[PATH_MAX];
  if (!wd || !pkg || !realpath(wd, wdabs))
    wd = NULL;
  for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
    char abs[PATH_MAX], rel[PATH_MAX + 80];
    const char *use = realpath(p, abs) ? abs : p;
    size_t n = wd ? strlen(wdabs) : 0;
    if (wd && use == abs && strncmp(abs, wdabs, n) == 0 && (abs[n] == '/' || abs[n] == '\0')) {
      snprintf(rel, sizeof(rel), "%s%s", pkg, abs + n);
      use = rel;
    }
    char *next = xasprintf("%s%s%s", out, *out ? ":" : "", use);
    free(out);
    out = next;
  }
  free(copy);
  return out;
}

static int api_start_private(cw_t *cw, const rayc_config *cfg, launch_result_t *res)
{
  launch_opts_t lo;
  launch_opts_init(&lo);
  lo.head = 1;
  lo.gcs_port = 0;
  lo.temp_dir = cfg && cfg->temp_dir ? cfg->temp_dir : NULL;
  lo.num_cpus = cfg && cfg->num_cpus > 0 ? cfg->num_cpus : -1;
  lo.object_store_memory = 256ll << 20;
  lo.tls_cert = cw->tls.cert_file;
  lo.tls_key = cw->tls.key_file;
  lo.tls_ca = cw->tls.ca_file;
  char *err = NULL;
  int rc = launch_node_start(&lo, res, &err);
  if (rc != 0) {
    cw_set_error(rc, "could not start a private cluster: %s", err ? err : rayc_strerror(rc));
    free(err);
    return rc;
  }
  cw->session_dir = xstrdup(res->session_dir);
  token_free(cw->token);
  cw->token = xstrdup(res->token);
  return 0;
}

/* Sets cw->token by token_find's rule; *where (new) says where it came from, for messages. A
 * missing token is no error here: the cluster may not want one, and if it does, the first call
 * says so. */
static int api_find_token(cw_t *cw, const char *temp_dir, char **where)
{
  char *err = NULL, *token = NULL;
  int rc = token_find(NULL, temp_dir, &token, where, &err);
  if (rc == RAYC_ENOT_FOUND) {
    *where = err;
    return 0;
  }
  if (rc < 0) {
    cw_set_error(rc, "cannot read the cluster token: %s", err);
    free(err);
    return rc;
  }
  token_free(cw->token);
  cw->token = token;
  return 0;
}

static int api_add_job(cw_t *cw, const char *token_where)
{
  Rayc__AddJobRequest req = RAYC__ADD_JOB_REQUEST__INIT;
  Rayc__JobInfo job = RAYC__JOB_INFO__INIT;
  job.driver_pid = getpid();
  job.start_time_ms = wall_ms();
  const char *sid = getenv("RAYC_JOB_SUBMISSION_ID"); /* set by the job supervisor: links us to it */
  job.submission_id = sid ? (char *)sid : (char *)"";
  req.job = &job;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = cw_gcs_call(cw, &rayc__job_info_gcs_service__descriptor, "AddJob", &req.base, 10000, &resp, &detail);
  Rayc__AddJobReply *rep = (Rayc__AddJobReply *)resp;
  if (rc == 0 && rep->job_id.len != ID_JOB_SIZE)
    rc = RAYC_EPROTOCOL;
  if (rc == 0)
    memcpy(cw->job.b, rep->job_id.data, ID_JOB_SIZE);
  else if (rc == RAYC_EUNAUTHENTICATED)
    cw_set_error(rc,
                 "the cluster rejected this driver's token (%s%s): set RAYC_TOKEN_FILE to a copy of the "
                 "head's <temp-dir>/cluster_token, or RAYC_TOKEN to the token (`rayc get-token` prints it)",
                 cw->token ? "from " : "", token_where ? token_where : "none");
  else
    cw_set_error(rc, "the GCS did not register the job: %s (%s)", rayc_strerror(rc), detail ? detail : "");
  free(detail);
  pb_free(resp);
  return rc;
}

/* 1 if ip is the address of one of this host's interfaces (this network namespace's). */
static int api_is_local_ip(const char *ip)
{
  struct ifaddrs *ifs = NULL, *i;
  int found = 0;
  if (getifaddrs(&ifs) != 0)
    return 0;
  for (i = ifs; i && !found; i = i->ifa_next) {
    char buf[INET6_ADDRSTRLEN];
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
      continue;
    inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, buf, sizeof(buf));
    found = strcmp(buf, ip) == 0;
  }
  freeifaddrs(ifs);
  return found;
}

/* Finds this machine's raylet socket among the cluster's nodes: the node at RAYC_NODE_IP_ADDRESS
 * if set, else an alive node whose socket exists here and whose address is one of this host's
 * (several nodes of one machine in network namespaces share a file system), else the first alive
 * node whose socket exists here. */
static int api_find_raylet(cw_t *cw, char *sock, size_t len)
{
  Rayc__GetAllNodeInfoRequest req = RAYC__GET_ALL_NODE_INFO_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = cw_gcs_call(cw, &rayc__node_info_gcs_service__descriptor, "GetAllNodeInfo", &req.base, 10000, &resp,
                       &detail);
  if (rc != 0) {
    cw_set_error(rc, "cannot list the cluster's nodes: %s (%s)", rayc_strerror(rc), detail ? detail : "");
    free(detail);
    return rc;
  }
  Rayc__GetAllNodeInfoReply *rep = (Rayc__GetAllNodeInfoReply *)resp;
  const char *want_ip = getenv("RAYC_NODE_IP_ADDRESS");
  rc = cw_set_error(RAYC_ENOT_FOUND, "no alive node of this cluster runs on this machine");
  for (int pass = 0; pass < 2 && rc != 0; pass++) {
    for (size_t i = 0; i < rep->n_nodes; i++) {
      Rayc__NodeInfo *n = rep->nodes[i];
      if (n->state != RAYC__NODE_STATE__NODE_ALIVE || (want_ip && strcmp(want_ip, n->ip) != 0) ||
          access(n->raylet_socket, F_OK) != 0 || (pass == 0 && !want_ip && !api_is_local_ip(n->ip)))
        continue;
      snprintf(sock, len, "%s", n->raylet_socket);
      rc = 0;
      break;
    }
  }
  pb_free(resp);
  return rc;
}

static int api_connect(cw_t *cw, const char *address, const char *raylet_socket, const char *token_where)
{
  rpc_client_opts_t copts = {.loop = NULL, .token = cw->token, .tls = &cw->tls};
  cw->client = rpc_client_create(&copts);
  if (!cw->client)
    return cw_set_error(RAYC_EINTERNAL, "cannot create the gRPC client (a malformed token, or unusable TLS files "
                                        "in RAYC_TLS_CERT, RAYC_TLS_KEY, RAYC_TLS_CA)");
  cw->gcs = rpc_channel_get(cw->client, address);
  int rc = api_add_job(cw, token_where);
  char sock[600];
  if (rc == 0 && !raylet_socket && (rc = api_find_raylet(cw, sock, sizeof(sock))) == 0)
    raylet_socket = sock;
  if (rc == 0)
    rc = cw_connect_node(cw, raylet_socket, 1);
  if (rc == 0) /* owners of objects others may borrow answer them: every driver serves */
    rc = cw_driver_serve(cw);
  return rc;
}

/* The address of the systemd node on this machine, when the caller named no cluster and no temp
 * dir; 0 or RAYC_ENOT_FOUND. */
static int api_sysnode_address(const rayc_config *cfg, char *buf, size_t len)
{
  const char *env_temp = getenv("RAYC_TEMP_DIR");
  if ((cfg && cfg->temp_dir) || (env_temp && *env_temp) || !sysnode_present())
    return RAYC_ENOT_FOUND;
  FILE *f = fopen(SYSNODE_DIR "/session_latest/address", "r");
  int ok = f && fgets(buf, (int)len, f);
  if (f)
    fclose(f);
  if (ok)
    buf[strcspn(buf, " \r\n")] = '\0';
  return ok && buf[0] ? 0 : RAYC_ENOT_FOUND;
}

int rayc_init(const rayc_config *cfg)
{
  pthread_mutex_lock(&cw_proc.api_mu);
  if (cw_proc.cw) {
    pthread_mutex_unlock(&cw_proc.api_mu);
    return 0;
  }
  const char *lvl = cfg && cfg->log_level ? cfg->log_level : getenv("RAYC_LOG_LEVEL");
  int level = lvl ? log_level_parse(lvl) : LOG_WARN;
  log_init("driver", level < 0 ? LOG_WARN : (enum log_level)level);
  signal(SIGPIPE, SIG_IGN);
  cw_t *cw = cw_create(0);
  cw->code_path = api_code_path(cfg && cfg->code_path ? cfg->code_path : getenv("RAYC_CODE_PATH"));
  cw->language = cfg ? cfg->language : RAYC_LANG_C;
  if (cfg && cfg->gcs_rpc_reconnect_timeout_ms > 0)
    cw->gcs_reconnect_timeout_ms = cfg->gcs_rpc_reconnect_timeout_ms;
  if (cfg && cfg->object_store_put_timeout_ms > 0)
    cw->put_timeout_ms = cfg->object_store_put_timeout_ms;
  const char *address = cfg && cfg->address ? cfg->address : getenv("RAYC_ADDRESS");
  launch_result_t res;
  char *where = NULL, sysaddr[256];
  const char *temp_dir = cfg ? cfg->temp_dir : NULL;
  int rc = 0;
  if ((!address || !*address) && api_sysnode_address(cfg, sysaddr, sizeof(sysaddr)) == 0) {
    address = sysaddr;
    temp_dir = SYSNODE_DIR;
  }
  if (!address || !*address) {
    rc = api_start_private(cw, cfg, &res);
    address = res.gcs_address;
  } else {
    rc = api_find_token(cw, temp_dir, &where);
  }
  if (rc == 0)
    rc = api_connect(cw, address, cw->session_dir ? res.raylet_socket : NULL, where);
  free(where);
  explicit_bzero(res.token, sizeof(res.token));
  if (rc == 0) {
    cw->current_task = id_task_random(cw->job);
    cw_proc.cw = cw;
  } else {
    char *session = cw->session_dir ? xstrdup(cw->session_dir) : NULL;
    rpc_server_destroy(cw->server);
    cw->server = NULL;
    cw_destroy(cw);
    if (session)
      launch_node_stop(session, 2000, 0);
    free(session);
  }
  pthread_mutex_unlock(&cw_proc.api_mu);
  return rc;
}

static void api_mark_finished(cw_t *cw)
{
  Rayc__MarkJobFinishedRequest req = RAYC__MARK_JOB_FINISHED_REQUEST__INIT;
  req.job_id = pb_bytes(cw->job.b, ID_JOB_SIZE);
  ProtobufCMessage *resp = NULL;
  cw_gcs_call(cw, &rayc__job_info_gcs_service__descriptor, "MarkJobFinished", &req.base, 2000, &resp, NULL);
  pb_free(resp);
}

void rayc_shutdown(void)
{
  pthread_mutex_lock(&cw_proc.api_mu);
  cw_t *cw = cw_proc.cw;
  if (!cw) {
    pthread_mutex_unlock(&cw_proc.api_mu);
    return;
  }
  cw_pg_drain(cw, CW_PG_CREATE_WAIT_MS + 2000); /* no create sent ahead lands after the job finished */
  api_mark_finished(cw);
  char *session = cw->session_dir ? xstrdup(cw->session_dir) : NULL;
  cw_actor_owner_release(cw);     /* the GCS and owners of refs we borrow hear that we exit */
  rpc_server_destroy(cw->server); /* no handler runs from now on */
  cw->server = NULL;
  cw_destroy(cw);
  cw_proc.cw = NULL;
  if (session)
    launch_node_stop(session, 3000, 0);
  free(session);
  pthread_mutex_unlock(&cw_proc.api_mu);
}

const char *rayc_version(int *number)
{
  if (number)
    *number = RAYC_VERSION_NUMBER;
  return RAYC_VERSION_STRING;
}
