/*
 * A real rayc-gcs in the test's own process (test_gcs_server, test_gcs_task): its loop runs on a
 * thread of its own, it listens on an ephemeral port on 127.0.0.1, and the test talks to it over
 * real gRPC through `gcs_channel`. Header-only: each test binary includes it once and runs one
 * GCS at a time.
 */
#ifndef RAYC_TESTS_GCS_INPROC_H
#define RAYC_TESTS_GCS_INPROC_H

#include "common/log.h"
#include "common/rpc.h"
#include "gcs/gcs_server.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>

static gcs_config_t gcs_conf;
static uv_loop_t gcs_loop;
static uv_async_t gcs_stop_async;
static gcs_server_t *srv;
static pthread_t gcs_loop_thread;
static rpc_client_t *gcs_client;
static rpc_channel_t *channel;

static void gcs_inproc_on_stop(uv_async_t *a)
{
  gcs_server_stop(srv);
  uv_close((uv_handle_t *)a, NULL);
}

static void *gcs_inproc_run(void *arg)
{
  (void)arg;
  uv_run(&gcs_loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Starts the GCS with argv (argv[0] the program name, NULL-terminated) and connects `channel`. */
static inline void gcs_inproc_start(int argc, char **argv)
{
  char *err = NULL, target[64];
  log_init("test", LOG_ERROR);
  ck_assert_int_eq(gcs_config_load(&gcs_conf, argc, argv), 0);
  uv_loop_init(&gcs_loop);
  srv = gcs_server_create(&gcs_loop, &gcs_conf, &err);
  ck_assert_msg(srv != NULL, "%s", err);
  ck_assert_int_eq(gcs_server_start(srv, &err), 0);
  uv_async_init(&gcs_loop, &gcs_stop_async, gcs_inproc_on_stop);
  ck_assert_int_eq(pthread_create(&gcs_loop_thread, NULL, gcs_inproc_run, NULL), 0);
  rpc_client_opts_t opts = {0};
  gcs_client = rpc_client_create(&opts);
  snprintf(target, sizeof(target), "127.0.0.1:%d", srv->port);
  channel = rpc_channel_get(gcs_client, target);
}

/* Stops the GCS started by gcs_inproc_start and frees everything it made. */
static inline void gcs_inproc_stop(void)
{
  rpc_client_destroy(gcs_client);
  uv_async_send(&gcs_stop_async);
  pthread_join(gcs_loop_thread, NULL);
  gcs_server_destroy(srv);
  ck_assert_int_eq(uv_loop_close(&gcs_loop), 0);
  gcs_config_release(&gcs_conf);
}

#endif
