/*
 * `rayc up CLUSTER.yaml`, `rayc up --status CLUSTER.yaml` and `rayc down CLUSTER.yaml`: see
 * cli_up.h. Host by host, head first (down: workers first); every host's outcome on one line.
 */
#include "client/cli/cli.h"
#include "client/cli/cli_up.h"

#include "common/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UP_STAMP "/var/lib/rayc/.up-package"
#define UP_DEB   "/tmp/rayc-up.deb"

typedef struct up_state {
  const up_cluster_t *c;
  char sha[65]; /* the package's sha256; "" without a package */
  char *token;  /* the head's cluster token, once known */
  char *notes;  /* what was done on the current host */
  char *survey; /* the current host's state, read in one command (up_survey) */
  int changed;  /* something the current host's daemons use changed */
} up_state_t;

static void up_note(up_state_t *s, const char *what)
{
  char *n = xasprintf("%s%s%s", s->notes ? s->notes : "", s->notes ? ", " : "", what);
  free(s->notes);
  s->notes = n;
}

/* sha256 of the file at path, in hex (OpenSSL's libcrypto). 0 or -1. */
static int up_sha256(const char *path, char hex[65])
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  for (size_t n; ok && (n = fread(buf, 1, sizeof(buf), f)) > 0;)
    ok = EVP_DigestUpdate(ctx, buf, n) == 1;
  ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
  EVP_MD_CTX_free(ctx);
  fclose(f);
  for (unsigned int i = 0; ok && i < mdlen; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return ok ? 0 : -1;
}

/* Runs cmd on h; on failure prints the host's error line (what: the step) and returns -1. */
static int up_do(up_state_t *s, const up_host_t *h, const char *what, const char *cmd, const char *in, up_run_t *r)
{
  up_ssh(s->c, h, cmd, in, r);
  if (r->status == 0)
    return 0;
  printf("  %s%s: %s: %s\n", h->host, h->head ? " (head)" : "", what,
         r->status == 255 ? up_ssh_error(r) : up_last_line(r->out));
  free(r->out);
  r->out = NULL;
  return -1;
}

/* One round trip reads all a host's state `up` compares with: sections "@@name" in the output. */
#define UP_SURVEY                                                                                              \
  "echo @@stamp; cat " UP_STAMP " 2>/dev/null; echo @@status; dpkg-query -W -f='${Status}' rayc 2>/dev/null; " \
  "echo; echo @@config; cat /etc/rayc/rayc.yaml 2>/dev/null; echo @@token; cat /etc/rayc/cluster_token "       \
  "2>/dev/null; echo @@end"

static int up_survey(up_state_t *s, const up_host_t *h)
{
  up_run_t r;
  free(s->survey);
  s->survey = NULL;
  if (up_do(s, h, "cannot run commands", UP_SURVEY, NULL, &r) < 0 || !strstr(r.out, "@@end\n")) {
    if (r.out)
      printf("  %s: cannot run commands: unexpected output: %s\n", h->host, up_last_line(r.out));
    free(r.out);
    return -1;
  }
  s->survey = r.out;
  return 0;
}

/* The text of survey section name (new; free()): the lines between "@@name\n" and the next "@@". */
static char *up_section(const up_state_t *s, const char *name)
{
  char *tag = xasprintf("@@%s\n", name);
  const char *from = strstr(s->survey, tag), *to;
  from = from ? from + strlen(tag) : "";
  free(tag);
  for (to = from; *to && !(to[0] == '@' && to[1] == '@' && (to == from || to[-1] == '\n')); to++)
    ;
  return xasprintf("%.*s", (int)(to - from), from);
}

/* Installs the package unless this very file is installed already. */
static int up_package(up_state_t *s, const up_host_t *h)
{
  up_run_t r;
  char *stamp = up_section(s, "stamp"), *st = up_section(s, "status");
  int installed = strstr(st, "install ok installed") != NULL, same = *s->sha && strstr(stamp, s->sha);
  free(stamp);
  free(st);
  if (installed && (same || !*s->sha))
    return 0;
  if (!*s->sha) {
    printf("  %s: rayc is not installed and the cluster file names no package\n", h->host);
    return -1;
  }
  up_scp(s->c, h, s->c->package, UP_DEB, &r);
  if (r.status != 0) {
    printf("  %s: copying the package failed: %s\n", h->host, r.status == 255 ? up_ssh_error(&r) : up_last_line(r.out));
    free(r.out);
    return -1;
  }
  free(r.out);
  char *cmd = xasprintf(
      "out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall --allow-downgrades " UP_DEB
      " 2>&1); rc=$?; rm -f " UP_DEB "; [ $rc = 0 ] && echo %s > " UP_STAMP "; echo \"$out\" | tail -3; exit $rc",
      s->sha);
  int rc = up_do(s, h, "install failed", cmd, NULL, &r);
  free(cmd);
  if (rc < 0)
    return -1;
  free(r.out);
  up_note(s, "package installed");
  s->changed = 1;
  return up_survey(s, h); /* the package may have made the config and the token */
}

/* Writes the host's rayc.yaml when it differs. */
static int up_config(up_state_t *s, const up_host_t *h)
{
  up_run_t r = {0, NULL};
  char *want = up_host_config(s->c, h), *have = up_section(s, "config");
  int rc = 0;
  if (strcmp(have, want) != 0) {
    rc = up_do(s, h, "writing /etc/rayc/rayc.yaml",
               "cat > /etc/rayc/rayc.yaml.up && mv -f /etc/rayc/rayc.yaml.up /etc/rayc/rayc.yaml", want, &r);
    if (rc == 0) {
      up_note(s, "config written");
      s->changed = 1;
    }
  }
  free(r.out);
  free(have);
  free(want);
  return rc;
}

/* The head's token is read; every other host gets it when its own differs. */
static int up_token(up_state_t *s, const up_host_t *h)
{
  up_run_t r = {0, up_section(s, "token")};
  r.out[strcspn(r.out, "\r\n")] = '\0';
  if (h->head) {
    free(s->token);
    s->token = r.out;
    return *s->token ? 0 : (printf("  %s (head): /etc/rayc/cluster_token is empty\n", h->host), -1);
  }
  int same = s->token && strcmp(r.out, s->token) == 0;
  free(r.out);
  if (same)
    return 0;
  if (!s->token) {
    printf("  %s: not started: the head is not up, so there is no cluster token to give\n", h->host);
    return -1;
  }
  char *tok = xasprintf("%s\n", s->token);
  int rc = up_do(s, h, "writing /etc/rayc/cluster_token",
                 "umask 077 && cat > /etc/rayc/cluster_token.up && chown rayc:rayc /etc/rayc/cluster_token.up && "
                 "mv -f /etc/rayc/cluster_token.up /etc/rayc/cluster_token",
                 tok, &r);
  explicit_bzero(tok, strlen(tok));
  free(tok);
  if (rc < 0)
    return -1;
  free(r.out);
  up_note(s, "token written");
  s->changed = 1;
  return 0;
}

/* Enables the host's target and starts it (restarts it when something changed); checks that its
 * daemons run. */
static int up_start(up_state_t *s, const up_host_t *h)
{
  const char *t = h->head ? "rayc-head.target" : "rayc-node.target";
  const char *units = h->head ? "rayc-gcs rayc-store rayc-raylet rayc-dashboard" : "rayc-store rayc-raylet";
  /* A restart names the services: restarting the target itself races its Upholds=. */
  char *cmd = xasprintf("systemctl enable --quiet %s 2>/dev/null; if systemctl is-active --quiet %s; then "
                        "if [ %d = 1 ]; then systemctl restart %s && echo restarted; else echo running; fi; "
                        "else systemctl start %s && echo started; fi || exit 1; for u in %s; do "
                        "systemctl is-active --quiet $u || { echo \"$u is not running: $(journalctl -q -n 1 -u $u "
                        "--no-pager)\"; exit 1; }; done",
                        t, t, s->changed, units, t, units);
  up_run_t r;
  int rc = up_do(s, h, t, cmd, NULL, &r);
  free(cmd);
  if (rc < 0)
    return -1;
  if (!strstr(r.out, "running")) {
    char *n = xasprintf("%s %s", t, strstr(r.out, "restarted") ? "restarted" : "started");
    up_note(s, n);
    free(n);
  }
  free(r.out);
  return 0;
}

/* Brings one host up; 1 when something changed there, 0 when nothing did, -1 on failure (said). */
static int up_host_up(up_state_t *s, const up_host_t *h)
{
  s->changed = 0;
  free(s->notes);
  s->notes = NULL;
  if (up_survey(s, h) < 0 || up_package(s, h) < 0 || up_config(s, h) < 0 || up_token(s, h) < 0 || up_start(s, h) < 0)
    return -1;
  printf("  %s%s: %s\n", h->host, h->head ? " (head)" : "", s->notes ? s->notes : "unchanged");
  return s->notes ? 1 : 0;
}

static int up_cmd_up(const up_cluster_t *c)
{
  up_state_t s = {.c = c};
  if (c->package && up_sha256(c->package, s.sha) < 0) {
    fprintf(stderr, "rayc up: cannot read the package %s\n", c->package);
    return CLI_FAIL;
  }
  printf("rayc up: cluster %s, %zu host%s%s%s\n", c->name, c->n_hosts, c->n_hosts == 1 ? "" : "s",
         c->package ? ", package " : "", c->package ? c->package : "");
  fflush(stdout);
  size_t ok = 0, changed = 0;
  for (size_t i = 0; i < c->n_hosts; i++) {
    int rc = up_host_up(&s, &c->hosts[i]);
    ok += rc >= 0;
    changed += rc > 0;
    fflush(stdout);
  }
  if (changed == 0 && ok == c->n_hosts)
    printf("rayc up: nothing changed; %zu of %zu hosts up\n", ok, c->n_hosts);
  else
    printf("rayc up: %zu of %zu hosts up%s\n", ok, c->n_hosts, ok < c->n_hosts ? " (see the errors above)" : "");
  if (ok > 0 && c->hosts[0].host && s.token)
    printf("Drivers on the head need no settings; elsewhere: RAYC_ADDRESS=%s:%d and the token "
           "(`ssh %s rayc get-token`)\n",
           c->hosts[0].host, c->gcs_port, c->hosts[0].host);
  free(s.notes);
  free(s.survey);
  if (s.token)
    explicit_bzero(s.token, strlen(s.token));
  free(s.token);
  return ok == c->n_hosts ? CLI_OK : CLI_FAIL;
}

/* ---- down, status ---- */

static int up_host_down(up_state_t *s, const up_host_t *h)
{
  up_run_t r;
  if (up_do(s, h, "down failed",
            "dpkg-query -W -f='${Status}' rayc 2>/dev/null | grep -q 'install ok installed' || "
            "{ echo 'rayc is not installed'; exit 0; }; "
            "systemctl disable --quiet --now rayc-head.target rayc-node.target 2>/dev/null; "
            "systemctl stop rayc-dashboard.service rayc-raylet.service rayc-store.service rayc-gcs.service || exit 1; "
            "for i in $(seq 1 100); do pgrep -f '^/usr/bin/rayc-' >/dev/null || "
            "{ echo 'stopped and disabled; no rayc process runs'; exit 0; }; sleep 0.1; done; "
            "echo \"still running: $(pgrep -d ' ' -f '^/usr/bin/rayc-')\"; exit 1",
            NULL, &r) < 0)
    return -1;
  printf("  %s%s: %s\n", h->host, h->head ? " (head)" : "", up_last_line(r.out));
  free(r.out);
  return 0;
}

static int up_cmd_down(const up_cluster_t *c)
{
  up_state_t s = {.c = c};
  size_t ok = 0;
  printf("rayc down: cluster %s, %zu host%s\n", c->name, c->n_hosts, c->n_hosts == 1 ? "" : "s");
  for (size_t i = c->n_hosts; i-- > 0;) { /* workers first, the head last */
    ok += up_host_down(&s, &c->hosts[i]) == 0;
    fflush(stdout);
  }
  printf("rayc down: %zu of %zu hosts down\n", ok, c->n_hosts);
  return ok == c->n_hosts ? CLI_OK : CLI_FAIL;
}

static int up_host_status(up_state_t *s, const up_host_t *h)
{
  up_run_t r;
  char *cmd = xasprintf("v=$(dpkg-query -W -f='${Version}' rayc 2>/dev/null) || v=none; printf 'rayc %%s;' \"$v\"; "
                        "for u in %s rayc-store rayc-raylet; do printf ' %%s %%s' ${u#rayc-} "
                        "$(systemctl is-active $u 2>/dev/null || true); done; %s echo",
                        h->head ? "rayc-head.target rayc-gcs" : "rayc-node.target",
                        h->head ? "printf '; %s' \"$(rayc status 2>&1 | grep -o '[0-9]* nodes alive, [0-9]* dead')\";"
                                : "");
  int rc = up_do(s, h, "status", cmd, NULL, &r);
  free(cmd);
  if (rc < 0)
    return -1;
  printf("  %s%s: %s\n", h->host, h->head ? " (head)" : "", up_last_line(r.out));
  free(r.out);
  return 0;
}

static int up_cmd_status(const up_cluster_t *c)
{
  up_state_t s = {.c = c};
  size_t ok = 0;
  printf("rayc up --status: cluster %s, %zu host%s\n", c->name, c->n_hosts, c->n_hosts == 1 ? "" : "s");
  for (size_t i = 0; i < c->n_hosts; i++)
    ok += up_host_status(&s, &c->hosts[i]) == 0;
  return ok == c->n_hosts ? CLI_OK : CLI_FAIL;
}

/* ---- entry points ---- */

static const char up_usage[] =
    "usage: rayc up [--status] CLUSTER.yaml\n"
    "       rayc down CLUSTER.yaml\n"
    "Brings the cluster the file describes up over ssh (OpenSSH): installs its package where it is\n"
    "missing, writes each host's /etc/rayc/rayc.yaml and the head's token, and starts rayc-head.target\n"
    "on the head and rayc-node.target on the workers, restarting only hosts where something changed.\n"
    "--status shows each host; `rayc down` stops and disables the targets. The file's keys:\n"
    "cluster_name, ssh_user, ssh_key, ssh_port, ssh_options, package, gcs_port, settings (rayc.yaml\n"
    "keys for every host), head {host, settings}, workers [{host, settings}]. See OPERATIONS.md.\n";

static int up_main(int argc, char **argv, int down)
{
  int status_only = 0;
  const char *file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(up_usage, stdout);
      return CLI_OK;
    }
    if (!down && strcmp(argv[i], "--status") == 0)
      status_only = 1;
    else if (argv[i][0] != '-' && !file)
      file = argv[i];
    else {
      fprintf(stderr, "rayc %s: unexpected argument '%s'\n%s", argv[0], argv[i], up_usage);
      return CLI_USAGE;
    }
  }
  if (!file) {
    fprintf(stderr, "rayc %s: no cluster file given\n%s", argv[0], up_usage);
    return CLI_USAGE;
  }
  up_cluster_t c;
  char *err = NULL;
  int rc = CLI_USAGE;
  if (up_cluster_load(file, &c, &err) < 0)
    fprintf(stderr, "rayc %s: %s\n", argv[0], err);
  else {
    up_ssh_share_start(&c);
    rc = down ? up_cmd_down(&c) : status_only ? up_cmd_status(&c) : up_cmd_up(&c);
    up_ssh_share_stop(&c);
  }
  free(err);
  up_cluster_release(&c);
  return rc;
}

int cli_up(int argc, char **argv)
{
  return up_main(argc, argv, 0);
}

int cli_down(int argc, char **argv)
{
  return up_main(argc, argv, 1);
}
