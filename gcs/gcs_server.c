/*
 * rayc-gcs server: storage selection, the RPC table, durable replies, the wiring between tables,
 * start-up, the cron and shutdown. The tables and their handlers live in gcs_node.c, gcs_job.c,
 * gcs_worker.c, gcs_kv.c and gcs_pubsub.c; see gcs_server.h for the design.
 */
#include "gcs/gcs_server.h"

#include "common/daemon.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_hb_udp.h"
#include "gcs/gcs_jobsub.h"
#include "gcs/gcs_kv.h"
#include "gcs/gcs_metrics.h"
#include "gcs/gcs_pg.h"
#include "gcs/gcs_task.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* Each row names the fields its handler needs (common/rpc_valid.h); the dispatcher refuses a request
 * without them (INVALID_ARGUMENT) before the handler runs. */
#define GCS_ROW(svc, name, fn, req, ...)                                                               \
  {                                                                                                    \
    .service = &rayc__##svc##__descriptor, .method = name, .handler = fn, .required = req, __VA_ARGS__ \
  }
/* A method called rarely (start-up, registration, the CLI and dashboard, one call per job, node,
 * actor or exported function): not registered with gRPC (RPC_COLD), so that each raylet's
 * connection does not carry a method-table slot pair for it (~165 B per method and connection:
 * docs/PERFORMANCE.md, "GCS memory per node (issue 17, session 8)" and "... session 10"). The
 * rows left as GCS_ROW are the ones the cluster calls all the time: heartbeats, task events,
 * pubsub polls, and placement-group creation and removal (the GCS-bound placement-group row). A
 * cold call costs one more batch (~2.4% more instructions per call). */
#define GCS_COLD(svc, name, fn, req, ...) GCS_ROW(svc, name, fn, req, .flags = RPC_COLD, __VA_ARGS__)

/* A job is added by its driver: its pid and start time identify it (a retried AddJob). */
static int gcs_check_add_job(const ProtobufCMessage *m, char *why, size_t len)
{
  const Rayc__AddJobRequest *r = (const Rayc__AddJobRequest *)m;
  if (r->job->driver_pid <= 0 || r->job->start_time_ms < 0 || r->job->is_dead) {
    snprintf(why, len, "job.driver_pid must be > 0, job.start_time_ms >= 0 and a new job is not dead");
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

static int gcs_check_get_pg(const ProtobufCMessage *m, char *why, size_t len)
{
  const Rayc__GetPlacementGroupRequest *r = (const Rayc__GetPlacementGroupRequest *)m;
  if (r->placement_group_id.len == 0 && (!r->name || !*r->name)) {
    snprintf(why, len, "placement_group_id or name is required");
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

const rpc_method_t gcs_rpc_methods[] = {
    GCS_COLD(node_info_gcs_service, "RegisterNode", gcs_node_on_register, "node node.node_id node.ip"),
    GCS_COLD(node_info_gcs_service, "UnregisterNode", gcs_node_on_unregister, "node_id"),
    GCS_COLD(node_info_gcs_service, "GetAllNodeInfo", gcs_node_on_get_all, ""),
    GCS_ROW(node_info_gcs_service, "ReportHeartbeat", gcs_node_on_heartbeat, "node_id",
            .lazy = gcs_node_heartbeat_lazy),
    GCS_COLD(job_info_gcs_service, "AddJob", gcs_job_on_add, "job job.driver_pid", .check = gcs_check_add_job),
    GCS_COLD(job_info_gcs_service, "MarkJobFinished", gcs_job_on_mark_finished, "job_id"),
    GCS_COLD(job_info_gcs_service, "GetAllJobInfo", gcs_job_on_get_all, ""),
    GCS_COLD(worker_info_gcs_service, "RegisterWorker", gcs_worker_on_register, "worker worker.worker_id"),
    GCS_COLD(worker_info_gcs_service, "ReportWorkerFailure", gcs_worker_on_report_failure, "worker_id"),
    GCS_COLD(worker_info_gcs_service, "GetAllWorkerInfo", gcs_worker_on_get_all, ""),
    GCS_COLD(internal_kvgcs_service, "InternalKVGet", gcs_kv_on_get, "key"),
    GCS_COLD(internal_kvgcs_service, "InternalKVPut", gcs_kv_on_put, "key"),
    GCS_COLD(internal_kvgcs_service, "InternalKVDel", gcs_kv_on_del, "key"),
    GCS_COLD(internal_kvgcs_service, "InternalKVKeys", gcs_kv_on_keys, ""),
    GCS_ROW(internal_pub_sub_gcs_service, "Poll", gcs_pubsub_on_poll, "channels"),
    GCS_COLD(
        actor_info_gcs_service, "RegisterActor", gcs_actor_on_register,
        "creation_spec creation_spec.actor_id creation_spec.job_id creation_spec.task_id creation_spec.function_name"),
    GCS_COLD(actor_info_gcs_service, "GetActorInfo", gcs_actor_on_get_info, "actor_id"),
    GCS_COLD(actor_info_gcs_service, "GetNamedActor", gcs_actor_on_get_named, "name"),
    GCS_COLD(actor_info_gcs_service, "KillActor", gcs_actor_on_kill, "actor_id"),
    GCS_COLD(actor_info_gcs_service, "ListActors", gcs_actor_on_list, ""),
    GCS_ROW(placement_group_info_gcs_service, "CreatePlacementGroup", gcs_pg_on_create,
            "placement_group placement_group.placement_group_id placement_group.bundles"),
    GCS_ROW(placement_group_info_gcs_service, "RemovePlacementGroup", gcs_pg_on_remove, "placement_group_id"),
    GCS_COLD(placement_group_info_gcs_service, "GetPlacementGroup", gcs_pg_on_get, "", .check = gcs_check_get_pg),
    GCS_COLD(placement_group_info_gcs_service, "GetAllPlacementGroup", gcs_pg_on_get_all, ""),
    GCS_COLD(placement_group_info_gcs_service, "WaitPlacementGroupUntilReady", gcs_pg_on_wait, "placement_group_id"),
    GCS_COLD(job_submission_service, "SubmitJob", gcs_jobsub_on_submit, "job job.entrypoint"),
    GCS_COLD(job_submission_service, "GetJob", gcs_jobsub_on_get, "submission_id"),
    GCS_COLD(job_submission_service, "ListJobs", gcs_jobsub_on_list, ""),
    GCS_COLD(job_submission_service, "StopJob", gcs_jobsub_on_stop, "submission_id"),
    GCS_COLD(job_submission_service, "DeleteJob", gcs_jobsub_on_delete, "submission_id"),
    GCS_COLD(job_submission_service, "GetJobLogs", gcs_jobsub_on_logs, "submission_id"),
    GCS_COLD(job_submission_service, "ReportJobStatus", gcs_jobsub_on_report, "job job.submission_id"),
    GCS_COLD(job_submission_service, "GetJobRecord", gcs_jobsub_on_get_record, "submission_id"),
    GCS_COLD(job_submission_service, "ListJobRecords", gcs_jobsub_on_list_records, ""),
    GCS_ROW(task_info_gcs_service, "AddTaskEventData", gcs_task_on_add, ""),
    GCS_COLD(task_info_gcs_service, "GetTaskEvents", gcs_task_on_get, ""),
    GCS_COLD(event_gcs_service, "ReportClusterEvent", gcs_event_on_report, "event event.kind"),
    GCS_COLD(event_gcs_service, "GetClusterEvents", gcs_event_on_get, ""),
};
const size_t gcs_rpc_methods_len = ARRAY_LEN(gcs_rpc_methods);

/* ---- durable replies ---- */

/* A reply waiting for the store. While `inline_phase` is set, gcs_store_sync() is still running
 * and msg is the caller's; after, msg is our copy. */
typedef struct gcs_reply_wait {
  rpc_call_t *call;
  const ProtobufCMessage *msg;
  ProtobufCMessage *copy;
  int inline_phase, replied;
} gcs_reply_wait_t;

static void gcs_server_on_synced(void *arg, int status)
{
  gcs_reply_wait_t *w = arg;
  if (status == 0)
    rpc_reply(w->call, w->msg);
  else
    rpc_reply_error(w->call, status, "the GCS could not store the change: %s", rayc_strerror(status));
  w->replied = 1;
  if (!w->inline_phase) {
    pb_free(w->copy);
    free(w);
  }
}

void gcs_server_reply(gcs_server_t *s, rpc_call_t *call, const ProtobufCMessage *msg)
{
  gcs_reply_wait_t *w = xcalloc(1, sizeof(*w));
  w->call = call;
  w->msg = msg;
  w->inline_phase = 1;
  gcs_store_sync(s->store, gcs_server_on_synced, w);
  if (w->replied) {
    free(w);
    return;
  }
  w->copy = msg ? gcs_pb_dup(msg) : NULL; /* the caller's msg dies when it returns */
  w->msg = w->copy;
  w->inline_phase = 0;
}

/* ---- wiring between tables ---- */

static void gcs_server_on_node_dead(void *arg, gcs_nodes_t *t, gcs_node_t *n)
{
  gcs_server_t *s = arg;
  (void)t;
  int jobs = gcs_jobs_on_node_dead(&s->jobs, n->id.b);
  int workers = gcs_workers_on_node_dead(&s->workers, n->id.b);
  char id[9];
  id_short(n->id.b, ID_NODE_SIZE, id);
  if (jobs || workers)
    log_info("node %s: death ended %d jobs and %d workers", id_short(n->id.b, ID_NODE_SIZE, id), jobs, workers);
  gcs_event_add(s, RAYC__CLUSTER_EVENT_SEVERITY__EVENT_ERROR, "NODE_DEAD", n->id.b, NULL, NULL, NULL,
                "node %s (%s) is dead: %s", id, n->info->ip, n->death_reason ? n->death_reason : "unknown cause");
  gcs_actors_on_node_dead(s->actors, &n->id);
  gcs_pgs_on_node_dead(s->pgs, &n->id);
}

static void gcs_server_on_job_finished(void *arg, gcs_jobs_t *t, gcs_job_t *j)
{
  (void)t;
  char id[9];
  gcs_event_add(arg, RAYC__CLUSTER_EVENT_SEVERITY__EVENT_INFO, "JOB_FINISHED", NULL, j->id.b, NULL, NULL,
                "job %s finished: %s", id_hex(j->id.b, ID_JOB_SIZE, id),
                j->end_reason ? j->end_reason : "driver exited");
  /* Raylets kill the job's workers when they see the JOB message; its owned actors die here. */
  gcs_actors_on_job_finished(((gcs_server_t *)arg)->actors, &j->id);
  gcs_pgs_on_job_finished(((gcs_server_t *)arg)->pgs, &j->id); /* its groups that are not detached */
}

/* ---- storage ---- */

static void gcs_server_on_store_fatal(void *arg, const char *msg)
{
  gcs_server_t *s = arg;
  log_error("storage failed: %s; stopping (restart rayc-gcs: it reloads its tables)", msg);
  s->failed = 1;
  gcs_server_stop(s);
}

/* Picks the storage backend the config asks for. Returns NULL with *err set when it cannot. */
static gcs_store_t *gcs_server_open_store(gcs_server_t *s, char **err)
{
  const gcs_config_t *conf = s->conf;
  if (!conf->redis_address || !*conf->redis_address) {
    log_info("storage: in memory (tables are lost when the GCS exits)");
    return gcs_store_create_memory();
  }
  s->redis_prefix = conf->redis_key_prefix && *conf->redis_key_prefix ? xstrdup(conf->redis_key_prefix)
                                                                      : xasprintf("rayc:%d", conf->port);
  if (conf->port == 0 && !(conf->redis_key_prefix && *conf->redis_key_prefix))
    log_warn("storage: --port 0 with redis and no --redis-key-prefix: every such GCS shares the "
             "tables under '%s'",
             s->redis_prefix);
  gcs_redis_opts_t o = {.address = conf->redis_address,
                        .password = conf->redis_password,
                        .prefix = s->redis_prefix,
                        .loop = s->loop,
                        .on_fatal = gcs_server_on_store_fatal,
                        .fatal_arg = s};
  return gcs_store_create_redis(&o, err);
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

/* ---- create, destroy ---- */

static void gcs_server_free(gcs_server_t *s)
{
  rpc_server_destroy(s->rpc);
  gcs_jobsubs_destroy(s->jobsubs);
  gcs_pgs_destroy(s->pgs);
  gcs_actors_destroy(s->actors);
  gcs_health_release(&s->health);
  gcs_pubsub_release(&s->pubsub);
  gcs_workers_release(&s->workers);
  gcs_jobs_release(&s->jobs);
  gcs_nodes_release(&s->nodes);
  gcs_store_destroy(s->store);
  gcs_events_destroy(s->events);
  free(s->hb_held);
  gcs_hb_udp_close(s);
  free(s->redis_prefix);
  free(s->token);
  free(s);
}

static void gcs_server_reply_poll(void *ctx, rpc_call_t *call, const Rayc__PollReply *reply)
{
  gcs_server_reply(ctx, call, &reply->base);
}

/* Loads the tables from the store and wires them together. */
static void gcs_server_init_tables(gcs_server_t *s)
{
  const gcs_config_t *c = s->conf;
  int64_t start = wall_ms();
  gcs_pubsub_init(&s->pubsub, (size_t)c->pubsub_buffer, c->pubsub_poll_timeout_ms, start, gcs_server_reply_poll, s);
  gcs_nodes_init(&s->nodes, s->store, now_ms(), start);
  gcs_jobs_init(&s->jobs, s->store);
  gcs_workers_init(&s->workers, s->store);
  s->nodes.pubsub = s->jobs.pubsub = s->workers.pubsub = &s->pubsub;
  s->nodes.on_dead = gcs_server_on_node_dead;
  s->nodes.on_dead_arg = s;
  s->jobs.on_finished = gcs_server_on_job_finished;
  s->jobs.on_finished_arg = s;
  s->jobsubs = gcs_jobsubs_create(s);
}

gcs_server_t *gcs_server_create(uv_loop_t *loop, const gcs_config_t *conf, char **err)
{
  char *e = NULL;
  rpc_small_reads_setup(); /* before the first gRPC use: see rpc_server_opts_t.small_reads */
  gcs_server_t *s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->conf = conf;
  s->tls = (rpc_tls_t){conf->tls_cert, conf->tls_key, conf->tls_ca};
  s->hb_udp_fd = -1;
  signal(SIGPIPE, SIG_IGN); /* a write to a Redis that died must fail with EPIPE, not kill us */
  if (conf->token_file)
    s->token = gcs_server_read_token(conf->token_file, &e);
  if (!e)
    s->store = gcs_server_open_store(s, &e);
  if (e)
    goto fail;
  s->events = gcs_events_create((size_t)conf->task_events_max, (size_t)conf->cluster_events_max);
  gcs_server_init_tables(s);
  if (gcs_health_init(&s->health, loop, s->token, &s->tls, &s->nodes, conf->health_check_period_ms,
                      conf->health_check_timeout_ms, conf->health_check_failure_threshold) < 0) {
    e = xstrdup("cannot make the health-check client (is the token printable ASCII? see the log for TLS)");
    goto fail;
  }
  if (!(s->actors = gcs_actors_create(s))) {
    e = xstrdup("cannot make the actor manager's rpc client");
    goto fail;
  }
  if (!(s->pgs = gcs_pgs_create(s))) {
    e = xstrdup("cannot make the placement-group manager's rpc client");
    goto fail;
  }
  rpc_server_opts_t opts = {.loop = loop,
                            .token = s->token,
                            .ctx = s,
                            .tls = &s->tls,
                            .no_bdp_probe = 1,
                            .small_reads = 1,
                            .no_header_table = 1};
  s->rpc = rpc_server_create(gcs_rpc_methods, gcs_rpc_methods_len, &opts);
  if (!s->rpc) {
    e = xstrdup("cannot make the GCS RPC server (its table does not match the protos, or the TLS files are "
                "unusable: see the log)");
    goto fail;
  }
  uv_timer_init(loop, &s->cron);
  uv_check_init(loop, &s->flush);
  uv_signal_init(loop, &s->sig_term);
  uv_signal_init(loop, &s->sig_int);
  s->cron.data = s->flush.data = s->sig_term.data = s->sig_int.data = s;
  return s;
fail:
  if (err)
    *err = e;
  else
    free(e);
  gcs_store_close(s->store);
  gcs_server_free(s);
  return NULL;
}

/* ---- running ---- */

void gcs_server_cron(gcs_server_t *s, int64_t now)
{
  rpc_server_flush(s->rpc); /* the idle heartbeats that came since the last tick, then their replies */
  gcs_node_heartbeats_flush(s);
  gcs_hb_udp_drain(s, now); /* the idle heartbeats that came as datagrams */
  gcs_pubsub_expire(&s->pubsub, now);
  gcs_health_tick(&s->health, now);
  gcs_actors_cron(s->actors, now);
  gcs_pgs_cron(s->pgs, now);
  gcs_jobsubs_cron(s->jobsubs, now);
  gcs_metrics_cron(s, now);
  gcs_nodes_check_timeouts(&s->nodes, now, s->conf->heartbeat_timeout_ms);
}

static void gcs_server_on_cron(uv_timer_t *t)
{
  gcs_server_cron(t->data, now_ms());
}

static void gcs_server_on_check(uv_check_t *h)
{
  gcs_server_t *s = h->data;
  gcs_pubsub_flush(&s->pubsub);
}

static void gcs_server_on_signal(uv_signal_t *h, int signum)
{
  log_info("received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  gcs_server_stop(h->data);
}

/* The cron period: a tenth of the shortest period it serves, between 10 and 100 ms. */
static uint64_t gcs_server_cron_ms(const gcs_config_t *conf)
{
  int ms = conf->health_check_period_ms / 10;
  if (conf->heartbeat_timeout_ms > 0 && conf->heartbeat_timeout_ms / 10 < ms)
    ms = conf->heartbeat_timeout_ms / 10;
  return (uint64_t)(ms < 10 ? 10 : ms > 100 ? 100 : ms);
}

/* Binds the RPC server; returns the port or a negative code with *err set. */
static int gcs_server_listen(gcs_server_t *s, char **err)
{
  const char *ip = s->conf->node_ip_address;
  int v6 = strchr(ip, ':') != NULL;
  char *addr = xasprintf("%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", s->conf->port);
  int rc = rpc_server_listen(s->rpc, addr);
  int port = rc;
  if (rc > 0)
    rc = rpc_server_start(s->rpc);
  if (rc < 0)
    *err = xasprintf("cannot serve on %s: %s", addr, rayc_strerror(rc));
  free(addr);
  return rc < 0 ? rc : port;
}

int gcs_server_start(gcs_server_t *s, char **err)
{
  char *e = NULL;
  int rc = gcs_server_listen(s, &e);
  if (rc < 0) {
    log_error("%s", e);
    if (err)
      *err = e;
    else
      free(e);
    return rc;
  }
  s->port = rc;
  gcs_hb_udp_open(s);
  if ((rc = gcs_metrics_start(s, err)) < 0)
    return rc;
  const gcs_config_t *c = s->conf;
  uint64_t period = gcs_server_cron_ms(c);
  uv_timer_start(&s->cron, gcs_server_on_cron, period, period);
  uv_check_start(&s->flush, gcs_server_on_check);
  uv_signal_start(&s->sig_term, gcs_server_on_signal, SIGTERM);
  uv_signal_start(&s->sig_int, gcs_server_on_signal, SIGINT);
  s->started = 1;
  gcs_actors_resume(s->actors); /* reloaded actors: watch the live ones, place the others */
  log_info("listening on %s:%d (token %s, %s, storage %s, health checks every %d ms, timeout %d ms, "
           "dead after %d failures)",
           c->node_ip_address, s->port, s->token ? "required" : "not required",
           rpc_tls_enabled(&s->tls) ? "mutual TLS" : "plaintext", gcs_store_name(s->store), c->health_check_period_ms,
           c->health_check_timeout_ms, c->health_check_failure_threshold);
  char status[300];
  snprintf(status, sizeof(status), "serving on %s:%d", c->node_ip_address, s->port);
  daemon_notify_ready(s->port, gcs_metrics_port(s), status);
  return 0;
}

void gcs_server_stop(gcs_server_t *s)
{
  if (!s || s->stopping)
    return;
  s->stopping = 1;
  if (s->started)
    daemon_notify_stopping();
  rpc_server_flush(s->rpc);       /* idle heartbeats not yet handled: answered below */
  gcs_node_heartbeats_flush(s);   /* answers the held heartbeats, likewise */
  gcs_hb_udp_close(s);            /* datagrams not drained go unanswered: their raylets send again */
  gcs_pubsub_release(&s->pubsub); /* answers the held polls while their clients still listen */
  gcs_actors_shutdown(s->actors);
  gcs_pgs_shutdown(s->pgs);
  rpc_server_destroy(s->rpc);
  s->rpc = NULL;
  gcs_metrics_stop(s);
  gcs_health_release(&s->health);
  gcs_store_close(s->store); /* replies still waiting for the store go out (orphaned) as it drains */
  gcs_jobsubs_stop(s->jobsubs);
  uv_close((uv_handle_t *)&s->cron, NULL);
  uv_close((uv_handle_t *)&s->flush, NULL);
  uv_close((uv_handle_t *)&s->sig_term, NULL);
  uv_close((uv_handle_t *)&s->sig_int, NULL);
}

void gcs_server_destroy(gcs_server_t *s)
{
  if (!s)
    return;
  if (s->started)
    log_info("stopped (nodes known: %zu, jobs: %zu, workers: %zu)", s->nodes.n, s->jobs.n, s->workers.map.count);
  gcs_server_free(s);
}

/* Reports a fatal start-up error in the log and on stderr (which rayc start keeps in gcs.out). */
static void gcs_main_fail(char *err)
{
  log_error("%s", err);
  fprintf(stderr, "rayc-gcs: %s\n", err);
  free(err);
}

int gcs_server_run(int argc, char **argv)
{
  gcs_config_t conf;
  int rc = gcs_config_load(&conf, argc, argv);
  if (rc != 0)
    return rc == CFG_HELP ? 0 : 2;
  if (daemon_log_open("gcs", conf.session_dir, "gcs.log", conf.log_level, 0) < 0) {
    gcs_config_release(&conf);
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  char *err = NULL;
  gcs_server_t *s = gcs_server_create(&loop, &conf, &err);
  rc = s ? gcs_server_start(s, &err) : RAYC_EINVALID_ARGUMENT;
  if (rc == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  else
    gcs_main_fail(err);
  gcs_server_stop(s);
  uv_run(&loop, UV_RUN_DEFAULT); /* drains the store's writes, runs the close callbacks */
  if (s && s->failed)
    rc = RAYC_EUNAVAILABLE; /* the storage failed: exit non-zero so a supervisor restarts us */
  gcs_server_destroy(s);
  uv_loop_close(&loop);
  gcs_config_release(&conf);
  return rc == 0 ? 0 : 1;
}
