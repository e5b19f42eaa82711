/*
 * The raylet's life: settings, log, loop, signals, the local socket, the gRPC service, the GCS
 * link, the cron that drives periodic work, and shutdown (SIGTERM/SIGINT, a finished drain, or no
 * GCS at start-up). Signals are loop events (uv_signal); shutdown is idempotent: it fails queued
 * requests, unregisters from the GCS, asks the workers to exit (SIGKILL after a grace period) and
 * closes every handle once none is left, which ends the loop.
 */
#include "raylet/raylet.h"

#include "common/cfg.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The cron ticks every CRON_MS while the node has work, and once a heartbeat period (at most
 * IDLE_CRON_MAX_MS) while it has none (no workers, drivers, leases or waiting requests): an idle
 * node then wakes once a second, for its heartbeat, not 20 times. Whatever comes in wakes the loop
 * by itself, and a lease request puts the cron back to CRON_MS (raylet_cron_busy). */
enum { CRON_MS = 50, IDLE_CRON_MAX_MS = 1000, SHUTDOWN_GRACE_MS = 2000, START_DEADLINE_MS = 30000 };

static int raylet_open_log(raylet_t *r)
{
  return daemon_log_open("raylet", r->cfg.session_dir, "raylet.log", r->cfg.log_level, 0);
}

/* <session>/address names the GCS for the node's workers and for `rayc` and drivers on this
 * machine; `rayc start` writes it too, a raylet run by systemd has no launcher to do it. */
static void raylet_write_address(const raylet_t *r)
{
  char *path = xasprintf("%s/address", r->cfg.session_dir), *text = xasprintf("%s\n", r->cfg.gcs_address);
  int rc = write_file_atomic(path, text, strlen(text));
  if (rc < 0)
    log_warn("cannot write %s: %s", path, rayc_strerror(rc));
  free(text);
  free(path);
}

static void raylet_close_all(raylet_t *r)
{
  raylet_sched_free(r);
  raylet_bundle_free(r);
  raylet_usage_destroy(r);
  raylet_rtenv_destroy(r);
  raylet_mem_destroy(r);
  raylet_zygote_stop(r);
  rpc_server_destroy(r->server);
  r->server = NULL;
  raylet_metrics_stop(r);
  local_server_destroy(r->local);
  r->local = NULL;
  raylet_gcs_flush_task_events(r, TEV_LAST); /* the workers' last reports, before the client goes */
  rpc_client_destroy(r->client);
  r->client = NULL;
  raylet_hb_udp_stop(r);
  free(r->hb_report); /* after the client: a cancelled heartbeat's callback forgets it too */
  r->hb_report = NULL;
  uv_close((uv_handle_t *)&r->cron, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
  uv_close((uv_handle_t *)&r->sigint, NULL);
}

void raylet_shutdown(raylet_t *r, const char *why)
{
  if (r->stopping)
    return;
  r->stopping = now_ms();
  log_info("shutting down: %s", why);
  raylet_queue_fail_all(r, RAYC_EUNAVAILABLE, "the raylet is shutting down");
  if (!r->drained) /* a finished drain has unregistered already */
    raylet_gcs_unregister(r, why, 0);
  raylet_pool_kill_all(r, SIGTERM);
}

static void raylet_cron_tick(uv_timer_t *t);

static int raylet_idle(const raylet_t *r)
{
  return r->registered && !r->stopping && !r->draining && !r->workers && !r->drivers && !r->leases && !r->queue &&
         !r->infeasible && !r->bundle_wanted;
}

/* Sets the cron's period for what the node has to do now. */
static void raylet_cron_pace(raylet_t *r, int idle)
{
  int hb = r->cfg.heartbeat_ms;
  uint64_t want = !idle ? CRON_MS : hb < CRON_MS ? CRON_MS : hb > IDLE_CRON_MAX_MS ? IDLE_CRON_MAX_MS : (uint64_t)hb;
  if (uv_timer_get_repeat(&r->cron) != want)
    uv_timer_start(&r->cron, raylet_cron_tick, want, want);
}

void raylet_cron_busy(raylet_t *r)
{
  if (r->loop_open && !r->stopping)
    raylet_cron_pace(r, 0);
}

static void raylet_cron(raylet_t *r)
{
  raylet_gcs_flush_task_events(r, r->stopping ? TEV_LAST : TEV_SOON); /* stopping: answered before the client goes */
  if (r->stopping) {
    if (now_ms() - r->stopping > SHUTDOWN_GRACE_MS)
      raylet_pool_kill_all(r, SIGKILL);
    if (!r->workers)
      raylet_close_all(r);
    return;
  }
  if (!r->registered && now_ms() - r->start_ms > START_DEADLINE_MS) {
    log_error("the GCS at %s did not answer for %d ms; giving up", r->cfg.gcs_address, START_DEADLINE_MS);
    raylet_shutdown(r, "no GCS");
    return;
  }
  raylet_gcs_heartbeat(r);
  raylet_jobs_cron(r);
  raylet_drain_cron(r);
  raylet_metrics_cron(r);
  if (r->stopping)
    return;
  raylet_usage_cron(r);
  raylet_rtenv_cron(r);
  raylet_mem_cron(r);
  raylet_pool_reap_stuck(r);
  raylet_pool_reap_idle(r);
  local_server_cron(r->local);
  if (r->infeasible)
    raylet_sched_retry_infeasible(r);
  if (r->queue)
    raylet_lease_spill_queued(r);
}

static void raylet_cron_tick(uv_timer_t *t)
{
  raylet_t *r = t->data;
  raylet_cron(r);
  if (!r->stopping)
    raylet_cron_pace(r, raylet_idle(r));
}

static void raylet_on_signal(uv_signal_t *s, int signum)
{
  raylet_shutdown(s->data, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int raylet_start_loop(raylet_t *r)
{
  uv_loop_init(&r->loop);
  r->loop_open = 1;
  r->start_ms = now_ms();
  uv_timer_init(&r->loop, &r->cron);
  r->cron.data = r;
  uv_signal_init(&r->loop, &r->sigterm);
  uv_signal_init(&r->loop, &r->sigint);
  r->sigterm.data = r->sigint.data = r;
  uv_signal_start(&r->sigterm, raylet_on_signal, SIGTERM);
  uv_signal_start(&r->sigint, raylet_on_signal, SIGINT);
  signal(SIGPIPE, SIG_IGN);
  return uv_timer_start(&r->cron, raylet_cron_tick, CRON_MS, CRON_MS);
}

int raylet_server_run(int argc, char **argv)
{
  raylet_t *r = xcalloc(1, sizeof(*r));
  int rc = raylet_config_load(r, argc, argv);
  if (rc == 0 && (rc = raylet_open_log(r)) != 0)
    fprintf(stderr, "rayc-raylet: cannot open log in %s/logs: %s\n", r->cfg.session_dir, rayc_strerror(rc));
  if (rc != 0)
    goto out;
  r->node_id = id_node_random();
  raylet_write_address(r);
  if ((rc = raylet_start_loop(r)) != 0 || (rc = raylet_local_start(r)) != 0 || (rc = raylet_service_start(r)) != 0 ||
      (rc = raylet_metrics_start(r)) != 0 || (rc = raylet_mem_start(r)) != 0 || (rc = raylet_gcs_start(r)) != 0)
    goto stop;
  char res[512], id[9];
  res_format(&r->total, res, sizeof(res));
  log_info("node %s serving on %s:%d, socket %s, resources %s", id_short(r->node_id.b, ID_NODE_SIZE, id),
           r->cfg.node_ip, r->port, r->cfg.socket, res);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  goto out;
stop:
  raylet_close_all(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
out:
  if (r->loop_open && uv_loop_close(&r->loop) != 0)
    log_warn("handles still open at exit");
  raylet_jobs_release(r);
  raylet_usage_destroy(r); /* again: a job that ended while the loop closed may have sampled anew */
  raylet_config_release(r);
  free(r);
  return rc == CFG_HELP ? 0 : rc ? 1 : 0;
}
