/*
 * rayc stop: stops the daemons (and the raylet's workers) of the node started last on this machine,
 * the session <temp-dir>/session_latest names; with --all, of every session in the temp dir.
 */
#include "client/cli/cli.h"
#include "client/launch.h"

#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_stop_conf {
  int force;
  int all;
  int grace_period_ms;
  char *temp_dir;
} cli_stop_conf_t;

#define F(field) offsetof(cli_stop_conf_t, field)
static const cfg_entry_t cli_stop_table[] = {
    {"force", CFG_BOOL, F(force), "false", "kill at once (SIGKILL) instead of SIGTERM first"},
    {"all", CFG_BOOL, F(all), "false", "stop every session in the temp dir, not just the latest"},
    {"grace-period-ms", CFG_INT, F(grace_period_ms), "10000",
     "how long processes get to exit after SIGTERM before SIGKILL"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
};
#undef F

static const char cli_stop_summary[] =
    "Stops the node started last on this machine (<temp-dir>/session_latest): the raylet and its\n"
    "workers first, then the object store and the GCS.";

/* Stops one session and says what happened; returns 0 or a negative code. */
static int cli_stop_session(const cli_stop_conf_t *c, const char *session)
{
  int n = launch_node_stop(session, c->grace_period_ms, c->force);
  if (n < 0)
    fprintf(stderr, "rayc stop: cannot stop session %s: %s\n", session, rayc_strerror(n));
  else if (n == 0)
    printf("rayc stop: no process of session %s was running\n", session);
  else
    printf("rayc stop: stopped %d process%s of session %s\n", n, n == 1 ? "" : "es", session);
  return n < 0 ? n : 0;
}

static int cli_stop_all(const cli_stop_conf_t *c)
{
  char temp[PATH_MAX];
  DIR *d = realpath(c->temp_dir, temp) ? opendir(temp) : NULL;
  int rc = 0, found = 0;
  if (!d) {
    printf("rayc stop: no temp dir %s; nothing to stop\n", c->temp_dir);
    return 0;
  }
  for (struct dirent *e; (e = readdir(d));) {
    if (strncmp(e->d_name, "session_", 8) != 0 || strcmp(e->d_name, "session_latest") == 0)
      continue;
    char *session = xasprintf("%s/%s", temp, e->d_name);
    found++;
    if (cli_stop_session(c, session) < 0)
      rc = -1;
    free(session);
  }
  closedir(d);
  if (!found)
    printf("rayc stop: no session in %s; nothing to stop\n", temp);
  return rc;
}

int cli_stop(int argc, char **argv)
{
  cli_stop_conf_t c;
  int status = cli_parse("stop", cli_stop_summary, cli_stop_table, ARRAY_LEN(cli_stop_table), &c,
                         sizeof(c), argc, argv);
  if (status != CLI_CONTINUE)
    return status;
  char session[PATH_MAX];
  if (c.all)
    status = cli_stop_all(&c) < 0 ? CLI_FAIL : CLI_OK;
  else if (cli_session_latest(c.temp_dir, session, sizeof(session)) < 0)
    printf("rayc stop: no session in %s (no session_latest); nothing to stop\n", c.temp_dir);
  else
    status = cli_stop_session(&c, session) < 0 ? CLI_FAIL : CLI_OK;
  cfg_release(cli_stop_table, ARRAY_LEN(cli_stop_table), &c);
  return status == CLI_CONTINUE ? CLI_OK : status;
}
