/*
 * rayc stop: stops the daemons (and the raylet's workers) of the node started last on this machine,
 * the session <temp-dir>/session_latest names; with --all, of every session in the temp dir.
 *
 * Without --force the node is drained first: `rayc stop` asks its raylet (DrainRaylet, at the
 * address in <session>/raylet_address, with the session's token) to take no new work, let its
 * running tasks finish (up to --drain-deadline-ms), leave the cluster as "drained" and exit; it
 * waits for that, then stops the rest as before. A raylet that cannot be asked is just stopped.
 */
#include "client/cli/cli.h"
#include "client/launch.h"

#include "common/rpc.h"
#include "common/status.h"
#include "common/sysnode.h"
#include "common/token.h"
#include "common/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_stop_conf {
  int force;
  int all;
  int grace_period_ms;
  int drain_deadline_ms;
  char *temp_dir;
} cli_stop_conf_t;

#define F(field) offsetof(cli_stop_conf_t, field)
static const cfg_entry_t cli_stop_table[] = {
    {"force", CFG_BOOL, F(force), "false", "kill at once (SIGKILL) instead of SIGTERM first"},
    {"all", CFG_BOOL, F(all), "false", "stop every session in the temp dir, not just the latest"},
    {"grace-period-ms", CFG_INT, F(grace_period_ms), "10000",
     "how long processes get to exit after SIGTERM before SIGKILL"},
    {"drain-deadline-ms", CFG_INT, F(drain_deadline_ms), "0",
     "how long the node's running tasks may take to finish before it stops (0: the raylet's "
     "--drain-deadline-ms, 30 s)"},
    {"temp-dir", CFG_STRING, F(temp_dir), "/tmp/rayc", "where sessions live"},
};
#undef F

static const char cli_stop_summary[] =
    "Stops the node started last on this machine (<temp-dir>/session_latest): the raylet and its\n"
    "workers first, then the object store and the GCS. Unless --force, the node is drained first:\n"
    "it takes no new tasks, lets its running ones finish, and leaves the cluster as \"drained\".";

/* Reads the first line of <session>/<name> into buf; 0 or -1. */
static int cli_read_line(const char *session, const char *name, char *buf, size_t len)
{
  char *path = xasprintf("%s/%s", session, name);
  FILE *f = fopen(path, "r");
  free(path);
  if (!f)
    return -1;
  int ok = fgets(buf, (int)len, f) != NULL;
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  return ok && *buf ? 0 : -1;
}

/* Asks the session's raylet to drain and waits until it has exited. 1 when it drained and exited,
 * 0 when it could not be asked (it is then stopped the old way). */
static int cli_stop_drain(const cli_stop_conf_t *c, const char *session)
{
  char text[32], address[200];
  if (cli_read_line(session, "pids/raylet.pid", text, sizeof(text)) < 0)
    return 0;
  pid_t pid = (pid_t)strtol(text, NULL, 10);
  if (pid <= 1 || !launch_pid_alive(pid) || cli_read_line(session, "raylet_address", address, sizeof(address)) < 0)
    return 0;
  char *token = NULL, *path = xasprintf("%s/" TOKEN_FILE_NAME, session);
  if (token_read_file(path, &token, NULL) < 0)
    token = NULL;
  free(path);
  rpc_tls_t tls;
  rpc_tls_from_env(&tls);
  rpc_client_opts_t opts = {.token = token, .tls = &tls};
  rpc_client_t *client = rpc_client_create(&opts);
  Rayc__DrainRayletRequest req = RAYC__DRAIN_RAYLET_REQUEST__INIT;
  req.reason = (char *)"rayc stop";
  req.deadline_ms = c->drain_deadline_ms > 0 ? c->drain_deadline_ms : 0;
  ProtobufCMessage *resp = NULL;
  char *detail = NULL;
  int rc = client ? rpc_call_sync(rpc_channel_get(client, address), &rayc__node_manager_service__descriptor,
                                  "DrainRaylet", &req.base, 5000, &resp, &detail)
                  : RAYC_EINTERNAL;
  rpc_client_destroy(client);
  token_free(token);
  Rayc__DrainRayletReply *rep = (Rayc__DrainRayletReply *)resp;
  if (rc != 0 || !rep->accepted) {
    printf("rayc stop: could not drain the node (%s); stopping it\n",
           rc ? (detail && *detail ? detail : rayc_strerror(rc)) : "the raylet is already shutting down");
    free(detail);
    pb_free(resp);
    return 0;
  }
  int64_t wait_ms = rep->deadline_ms + 10000, start = now_ms();
  printf("rayc stop: draining the node (raylet pid %d): its running tasks may take up to %lld ms\n", (int)pid,
         (long long)rep->deadline_ms);
  fflush(stdout);
  pb_free(resp);
  free(detail);
  while (launch_pid_alive(pid) && now_ms() - start < wait_ms)
    usleep(50 * 1000);
  if (launch_pid_alive(pid)) {
    printf("rayc stop: the raylet did not finish draining in %lld ms; stopping it\n", (long long)wait_ms);
    return 0;
  }
  printf("rayc stop: node drained in %lld ms\n", (long long)(now_ms() - start));
  return 1;
}

/* Stops one session and says what happened; returns 0 or a negative code. */
static int cli_stop_session(const cli_stop_conf_t *c, const char *session)
{
  int drained = c->force ? 0 : cli_stop_drain(c, session);
  int n = launch_node_stop(session, c->grace_period_ms, c->force);
  if (n >= 0)
    n += drained; /* the raylet, which exited by itself */
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

/* A node run by systemd is stopped by systemd: signalling its daemons would only have them
 * restarted (Restart=on-failure, Upholds=). */
static int cli_stop_systemd(const char *session)
{
  fprintf(stderr,
          "rayc stop: the node in %s is managed by systemd; stop it with\n"
          "  systemctl stop rayc-node.target     (a worker node)\n"
          "  systemctl stop rayc-head.target     (the head node)\n"
          "and keep it from starting at boot with `systemctl disable` of the same target.\n",
          session);
  return CLI_FAIL;
}

int cli_stop(int argc, char **argv)
{
  cli_stop_conf_t c;
  int status = cli_parse("stop", cli_stop_summary, cli_stop_table, ARRAY_LEN(cli_stop_table), &c, sizeof(c), argc,
                         argv);
  if (status != CLI_CONTINUE)
    return status;
  char session[PATH_MAX];
  if (c.all)
    status = cli_stop_all(&c) < 0 ? CLI_FAIL : CLI_OK;
  else if (cli_session_latest(c.temp_dir, session, sizeof(session)) < 0)
    printf("rayc stop: no session in %s (no session_latest); nothing to stop\n", c.temp_dir);
  else if (sysnode_is_session(session))
    status = cli_stop_systemd(session);
  else
    status = cli_stop_session(&c, session) < 0 ? CLI_FAIL : CLI_OK;
  cfg_release(cli_stop_table, ARRAY_LEN(cli_stop_table), &c);
  return status == CLI_CONTINUE ? CLI_OK : status;
}
