/* rayc-gcs: the cluster's control store. See gcs/gcs_server.h for the design. */
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "gcs/gcs_server.h"

#include <stdio.h>
#include <stdlib.h>

/* Logs to <session-dir>/logs/gcs.log, or to stderr without a session directory. */
static int gcs_main_open_log(const gcs_config_t *conf)
{
  log_init("gcs", (enum log_level)log_level_parse(conf->log_level));
  if (!conf->session_dir)
    return 0;
  char *dir = xasprintf("%s/logs", conf->session_dir);
  char *path = xasprintf("%s/gcs.log", dir);
  int rc = mkdir_p(dir, 0700);
  if (rc == 0)
    rc = log_open(path, 0);
  if (rc < 0)
    fprintf(stderr, "rayc-gcs: cannot open log %s: %s\n", path, rayc_strerror(rc));
  free(path);
  free(dir);
  return rc;
}

/* Reports a fatal start-up error in the log and on stderr (which rayc start keeps in gcs.out). */
static void gcs_main_fail(char *err)
{
  log_error("%s", err);
  fprintf(stderr, "rayc-gcs: %s\n", err);
  free(err);
}

int main(int argc, char **argv)
{
  gcs_config_t conf;
  int rc = gcs_config_load(&conf, argc, argv);
  if (rc != 0)
    return rc == CFG_HELP ? 0 : 2;
  if (gcs_main_open_log(&conf) < 0) {
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
