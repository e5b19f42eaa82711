/* Start-up and shutdown steps shared by the daemons (see daemon.h). */
#include "common/daemon.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

int daemon_log_open(const char *program, const char *session_dir, const char *file, const char *level, int also_stderr)
{
  int lvl = log_level_parse(level ? level : "info");
  log_init(program, lvl < 0 ? LOG_INFO : (enum log_level)lvl);
  if (!session_dir)
    return 0;
  char *logs = xasprintf("%s/logs", session_dir), *pids = xasprintf("%s/pids", session_dir);
  char *path = xasprintf("%s/%s", logs, file);
  int rc = mkdir_p(logs, 0700);
  if (rc == 0)
    rc = mkdir_p(pids, 0700);
  if (rc == 0)
    rc = log_open(path, also_stderr);
  if (rc < 0)
    fprintf(stderr, "%s: cannot open log %s: %s\n", program, path, rayc_strerror(rc));
  free(path);
  free(pids);
  free(logs);
  return rc;
}

void daemon_notify_ready(int port, int metrics_port, const char *status)
{
  int rc = sd_notifyf(0, "READY=1\nRAYC_PORT=%d\nRAYC_METRICS_PORT=%d%s%s", port, metrics_port,
                      status ? "\nSTATUS=" : "", status ? status : "");
  if (rc < 0)
    log_warn("cannot notify readiness: %s", strerror(-rc));
}

void daemon_notify_stopping(void)
{
  sd_notify(0, "STOPPING=1");
}
