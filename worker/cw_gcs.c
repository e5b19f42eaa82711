/*
 * Calls to the GCS that ride out a GCS restart. gRPC channels reconnect by themselves (with a
 * backoff capped at 2 s, common/rpc_common.c), but a call made while the GCS is down fails at once with
 * UNAVAILABLE, and one in flight when it dies fails too. cw_gcs_call retries such calls with a
 * growing pause (100 ms doubling to 1 s) until the GCS answers or gcs_rpc_reconnect_timeout_ms
 * has passed since the first failure, then fails with RAYC_EUNAVAILABLE and a message naming the
 * setting. Every synchronous GCS call of drivers and workers goes through it; the GCS makes the
 * calls that change something idempotent (RegisterActor by actor id) or harmless to repeat.
 */
#include "worker/cw.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { GCS_RETRY_FIRST_MS = 100, GCS_RETRY_MAX_MS = 1000 };

int cw_gcs_reconnect_timeout_ms(void)
{
  const char *v = getenv("RAYC_GCS_RPC_RECONNECT_TIMEOUT_MS");
  long ms = v && *v ? strtol(v, NULL, 10) : 0;
  return ms > 0 && ms <= 24L * 3600 * 1000 ? (int)ms : CW_GCS_RECONNECT_TIMEOUT_MS;
}

/* 1 when a call that failed with rc may succeed once the GCS is back. CANCELLED comes from a GCS
 * shutting down, or from our own client being destroyed (then nothing is retried). */
static int gcs_retryable(cw_t *cw, int rc)
{
  if (rc == RAYC_EUNAVAILABLE)
    return 1;
  if (rc != RAYC_ECANCELLED)
    return 0;
  pthread_mutex_lock(&cw->mu);
  int closing = cw->client_closing || cw->stopping;
  pthread_mutex_unlock(&cw->mu);
  return !closing;
}

static void gcs_sleep_ms(int ms)
{
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int cw_gcs_call_on(cw_t *cw, rpc_channel_t *ch, const ProtobufCServiceDescriptor *svc, const char *method,
                   const ProtobufCMessage *req, int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  int wait_ms = cw->gcs_reconnect_timeout_ms > 0 ? cw->gcs_reconnect_timeout_ms : CW_GCS_RECONNECT_TIMEOUT_MS;
  int64_t deadline = 0;
  int pause = GCS_RETRY_FIRST_MS, tries = 0;
  for (;;) {
    char *why = NULL;
    int rc = rpc_call_sync(ch, svc, method, req, timeout_ms, resp, &why);
    tries++;
    int64_t now = now_ms();
    if (rc == 0 || !gcs_retryable(cw, rc) || (deadline && now >= deadline)) {
      if (rc == 0 && tries > 1)
        log_info("GCS call %s succeeded after %d tries: the GCS is back", method, tries);
      if (rc != 0 && deadline && now >= deadline) {
        char *msg = xasprintf("the GCS did not answer for %d ms (gcs_rpc_reconnect_timeout_ms, "
                              "RAYC_GCS_RPC_RECONNECT_TIMEOUT_MS): %s",
                              wait_ms, why ? why : rayc_strerror(rc));
        free(why);
        why = msg;
        rc = RAYC_EUNAVAILABLE;
      }
      if (detail)
        *detail = why;
      else
        free(why);
      return rc;
    }
    if (!deadline) {
      deadline = now + wait_ms;
      log_warn("GCS call %s failed (%s: %s); retrying for up to %d ms while the GCS restarts", method,
               rayc_strerror(rc), why ? why : "", wait_ms);
    }
    free(why);
    int left = (int)(deadline - now);
    gcs_sleep_ms(pause < left ? pause : left);
    pause = pause * 2 < GCS_RETRY_MAX_MS ? pause * 2 : GCS_RETRY_MAX_MS;
  }
}

int cw_gcs_call(cw_t *cw, const ProtobufCServiceDescriptor *svc, const char *method, const ProtobufCMessage *req,
                int timeout_ms, ProtobufCMessage **resp, char **detail)
{
  return cw_gcs_call_on(cw, cw->gcs, svc, method, req, timeout_ms, resp, detail);
}
