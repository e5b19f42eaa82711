/*
 * The node launcher (see launch.h): session directories, spawning the daemons and waiting for their
 * readiness, stopping them again.
 *
 * Readiness is systemd's protocol, so the same daemons run under systemd (Type=notify) and under
 * `rayc start`: the launcher binds a datagram socket <session>/sockets/notify (in the 0700
 * session, so only this user's processes can reach it), passes it as NOTIFY_SOCKET, and waits for a
 * datagram "READY=1" (with "RAYC_PORT=<n>" for daemons that listen on TCP) from that daemon's pid
 * (SO_PASSCRED), while polling waitpid() so that a daemon that dies is reported at once.
 *
 * Files of a session (all created by this file unless noted):
 *   <temp>/session_latest             symlink to the newest session that started, replaced atomically
 *   <session>/address                 "HOST:PORT\n" of the cluster's GCS (head, and joined nodes)
 *   <session>/cluster_token           the cluster token (0600), every daemon's --token-file
 *   <temp>/cluster_token              the head's token, published for other nodes and drivers (0600)
 *   <session>/token_published         this node wrote <temp>/cluster_token (rayc stop removes it)
 *   <session>/pids/<name>.pid         "<pid>\n" of gcs, store, raylet
 *   <session>/pids/worker-<pid>.pid   written by the raylet for each worker
 *   <session>/raylet_address          "IP:PORT" of the raylet's gRPC server, written by the raylet
 *                                     (rayc stop sends it DrainRaylet)
 *   <session>/logs/<name>.out         the daemon's stdout and stderr; <name>.log is its own log
 * Stopping trusts a pid only if /proc/<pid>/cmdline names the session directory, so a pid reused
 * by an unrelated process is never signalled.
 */
#include "client/launch.h"
#include "client/launch_int.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- small file helpers ---- */

/* Copies the last few lines of path (from its last KiB) into out, each on a new indented line;
 * "" when unreadable. */
void launch_tail(const char *path, char *out, size_t len)
{
  enum { LINES = 5 };
  char buf[1024], *lines[sizeof(buf) / 2], *save = NULL;
  size_t n_lines = 0, used = 0;
  out[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  char *p = from > 0 && strchr(buf, '\n') ? strchr(buf, '\n') + 1 : buf; /* skip a partial line */
  for (char *line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    lines[n_lines++] = line;
  for (size_t i = n_lines > LINES ? n_lines - LINES : 0; i < n_lines && used + 1 < len; i++)
    used += (size_t)snprintf(out + used, len - used, "\n    %s", lines[i]);
}

/* ---- options, paths ---- */

void launch_opts_init(launch_opts_t *o)
{
  memset(o, 0, sizeof(*o));
  o->temp_dir = "/tmp/rayc";
  o->gcs_port = 6380;
  o->node_ip = "127.0.0.1";
  o->num_cpus = -1;
  o->num_gpus = -1;
  o->dashboard_port = -1;
}

/* Writes realpath(<directory of file>/<rel>) into buf. */
static int launch_dir_near(const char *file, const char *rel, char *buf, size_t len)
{
  char *f = realpath(file, NULL), *dir = NULL;
  int rc = RAYC_ENOT_FOUND;
  if (f) {
    *strrchr(f, '/') = '\0';
    char *p = xasprintf("%s/%s", f, rel);
    dir = realpath(p, NULL);
    free(p);
  }
  if (dir && strlen(dir) < len) {
    snprintf(buf, len, "%s", dir);
    rc = 0;
  }
  free(dir);
  free(f);
  return rc;
}

int launch_bin_dir(char *buf, size_t len)
{
  const char *env = getenv("RAYC_BIN_DIR");
  if (env && *env) {
    if (strlen(env) >= len)
      return RAYC_EINVALID_ARGUMENT;
    snprintf(buf, len, "%s", env);
    return 0;
  }
  Dl_info info;
  if (dladdr((void *)launch_bin_dir, &info) && info.dli_fname && strchr(info.dli_fname, '/') &&
      launch_dir_near(info.dli_fname, "../bin", buf, len) == 0)
    return 0;
  return launch_dir_near("/proc/self/exe", ".", buf, len);
}

/* ---- session directory ---- */

/* Replaces <temp>/session_latest with a link to the session, atomically. */
static int launch_link_latest(const char *temp, const char *session)
{
  const char *base = strrchr(session, '/') + 1;
  char *tmp = xasprintf("%s/.session_latest.%d", temp, (int)getpid());
  char *link = xasprintf("%s/session_latest", temp);
  unlink(tmp);
  int rc = symlink(base, tmp) == 0 && rename(tmp, link) == 0 ? 0 : -errno;
  if (rc < 0)
    unlink(tmp);
  free(link);
  free(tmp);
  return rc;
}

/* Makes <temp>/session_<date>_<time>_<usec>_<pid>/ and its subdirectories, all 0700. (The
 * session_latest link moves only once the node is up, so that it never names a failed start.) */
static int launch_session_create(launch_t *l)
{
  static const char *const subdirs[] = {"logs", "sockets", "spill", "runtime_env", "pids"};
  char stamp[64];
  int rc = mkdir_p(l->opts->temp_dir, 0700);
  if (rc < 0 || !realpath(l->opts->temp_dir, l->temp)) {
    l->err = xasprintf("cannot create the temp dir %s: %s", l->opts->temp_dir, strerror(rc < 0 ? -rc : errno));
    return rc < 0 ? rc : -errno;
  }
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &tm);
  int len = snprintf(l->session, sizeof(l->session), "%s/session_%s_%06ld_%d", l->temp, stamp, (long)tv.tv_usec,
                     (int)getpid());
  if (len + sizeof("/sockets/raylet") > sizeof(((struct sockaddr_un *)0)->sun_path)) {
    l->err = xasprintf("the temp dir %s is too long: the session's Unix sockets need paths of at "
                       "most 107 bytes; use a shorter --temp-dir",
                       l->temp);
    return -ENAMETOOLONG;
  }
  rc = mkdir(l->session, 0700) == 0 ? 0 : -errno;
  for (size_t i = 0; rc == 0 && i < ARRAY_LEN(subdirs); i++) {
    char *sub = xasprintf("%s/%s", l->session, subdirs[i]);
    rc = mkdir(sub, 0700) == 0 ? 0 : -errno;
    free(sub);
  }
  if (rc < 0)
    l->err = xasprintf("cannot create the session dir %s: %s", l->session, strerror(-rc));
  return rc;
}

/* ---- readiness socket ---- */

/* Binds <session>/sockets/notify (the session check keeps its path within sun_path). */
int launch_notify_open(launch_t *l)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int one = 1;
  if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sockets/notify", l->session) >= (int)sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  l->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (l->notify_fd < 0 || bind(l->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      setsockopt(l->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
    return -errno;
  snprintf(l->notify_path, sizeof(l->notify_path), "%s", sa.sun_path);
  l->notify_env = xasprintf("NOTIFY_SOCKET=%s", l->notify_path);
  return 0;
}

void launch_notify_close(launch_t *l)
{
  if (l->notify_fd >= 0)
    close(l->notify_fd);
  if (l->notify_path[0])
    unlink(l->notify_path);
  free(l->notify_env);
}

/* ---- spawning ---- */

static void launch_arg(launch_argv_t *a, const char *flag, const char *val)
{
  if (a->n + 2 > LAUNCH_MAX_ARGS)
    abort(); /* the argv lists below are fixed and short */
  a->v[a->n++] = xstrdup(flag);
  if (val)
    a->v[a->n++] = xstrdup(val);
  a->v[a->n] = NULL;
}

static void launch_arg_num(launch_argv_t *a, const char *flag, double v)
{
  char buf[64];
  snprintf(buf, sizeof(buf), "%.17g", v);
  launch_arg(a, flag, buf);
}

void launch_argv_release(launch_argv_t *a)
{
  for (int i = 0; i < a->n; i++)
    free(a->v[i]);
  a->n = 0;
}

/* Returns a new environment: ours without NOTIFY_SOCKET, plus the launcher's NOTIFY_SOCKET. */
static char **launch_env(const launch_t *l)
{
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = xcalloc(n + 3, sizeof(*env));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
      env[k++] = environ[i];
  env[k++] = l->notify_env;
  if (l->extra_env)
    env[k] = l->extra_env;
  return env;
}

/* posix_spawn with stdin from /dev/null, stdout and stderr to logs/<name>.out, a new session (a
 * terminal's ^C reaches `rayc`, not the daemons), default signal dispositions and an empty mask. */
int launch_spawn(launch_t *l, const char *name, launch_argv_t *a, pid_t *pid)
{
  char *out = xasprintf("%s/logs/%s.out", l->session, name);
  char **env = launch_env(l);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  int rc = -posix_spawn(pid, a->v[0], &fa, &at, a->v, env);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  free(out);
  if (rc < 0) {
    l->err = xasprintf("cannot run %s: %s (set RAYC_BIN_DIR to the directory of the rayc-* "
                       "programs)",
                       a->v[0], strerror(-rc));
    return rc;
  }
  char *pidfile = xasprintf("%s/pids/%s.pid", l->session, name), text[32];
  snprintf(text, sizeof(text), "%d\n", (int)*pid);
  rc = write_file_atomic(pidfile, text, strlen(text));
  if (rc < 0) { /* unrecorded, rayc stop could never find it: do not leave it running */
    l->err = xasprintf("cannot write %s: %s", pidfile, strerror(-rc));
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
  }
  free(pidfile);
  return rc;
}

/* ---- the daemons ---- */

/* Starts argv with the flags every daemon takes: the program, --session-dir, --config,
 * --log-level. */
static void launch_argv_common(const launch_t *l, launch_argv_t *a, const char *prog)
{
  char *path = xasprintf("%s/%s", l->bin_dir, prog);
  a->n = 0;
  launch_arg(a, path, NULL);
  free(path);
  launch_arg(a, "--session-dir", l->session);
  launch_arg(a, "--token-file", l->token_file);
  if (l->opts->tls_cert && *l->opts->tls_cert)
    launch_arg(a, "--tls-cert", l->opts->tls_cert);
  if (l->opts->tls_key && *l->opts->tls_key)
    launch_arg(a, "--tls-key", l->opts->tls_key);
  if (l->opts->tls_ca && *l->opts->tls_ca)
    launch_arg(a, "--tls-ca", l->opts->tls_ca);
  if (l->opts->config_file)
    launch_arg(a, "--config", l->opts->config_file);
  if (l->opts->log_level)
    launch_arg(a, "--log-level", l->opts->log_level);
}

static int64_t launch_store_memory(const launch_opts_t *o)
{
  if (o->object_store_memory > 0)
    return o->object_store_memory;
  int64_t ram = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
  int64_t mem = ram / 10 * 3;
  return mem < (75 << 20) ? (75 << 20) : mem;
}

/* Keeps what `rayc start --restart-gcs` needs to start this GCS again: its argv (NUL-separated,
 * <session>/gcs.args) and its Redis password (<session>/redis_password, 0600), which also goes to
 * the GCS's environment as RAYC_REDIS_PASSWORD for this spawn. */
static int launch_gcs_save(launch_t *l, const launch_argv_t *a)
{
  size_t len = 0;
  for (int i = 0; i < a->n; i++)
    len += strlen(a->v[i]) + 1;
  char *buf = xmalloc(len + 1), *p = buf;
  for (int i = 0; i < a->n; i++)
    p += sprintf(p, "%s", a->v[i]) + 1;
  char *path = xasprintf("%s/gcs.args", l->session);
  int rc = write_file_atomic(path, buf, len);
  if (rc == 0 && l->opts->redis_password) {
    free(path);
    path = xasprintf("%s/redis_password", l->session);
    rc = token_write_file(path, l->opts->redis_password);
    l->extra_env = xasprintf("RAYC_REDIS_PASSWORD=%s", l->opts->redis_password);
  }
  if (rc < 0)
    l->err = xasprintf("cannot write %s: %s", path, strerror(-rc));
  free(path);
  free(buf);
  return rc;
}

void launch_gcs_forget_password(launch_t *l)
{
  if (l->extra_env)
    explicit_bzero(l->extra_env, strlen(l->extra_env));
  free(l->extra_env);
  l->extra_env = NULL;
}

/* Spawns the GCS (its argv saved for --restart-gcs first) into *c. */
static int launch_gcs_spawn(launch_t *l, launch_child_t *c)
{
  launch_argv_t a;
  launch_argv_common(l, &a, "rayc-gcs");
  launch_arg_num(&a, "--port", l->opts->gcs_port);
  launch_arg(&a, "--node-ip-address", l->opts->node_ip);
  if (l->opts->redis_address)
    launch_arg(&a, "--redis-address", l->opts->redis_address);
  int rc = launch_gcs_save(l, &a);
  if (rc < 0) {
    launch_argv_release(&a);
    return rc;
  }
  rc = launch_spawn_child(l, "gcs", &a, c);
  launch_gcs_forget_password(l);
  return rc;
}

/* Takes the ready GCS's port into out->gcs_address. */
static int launch_gcs_ready(launch_t *l, const launch_child_t *c, launch_result_t *out)
{
  const char *ip = l->opts->node_ip;
  int v6 = strchr(ip, ':') != NULL;
  if (c->port <= 0) {
    l->err = xasprintf("rayc-gcs reported READY=1 without RAYC_PORT");
    return RAYC_EPROTOCOL;
  }
  snprintf(out->gcs_address, sizeof(out->gcs_address), "%s%s%s:%d", v6 ? "[" : "", ip, v6 ? "]" : "", c->port);
  return 0;
}

static int launch_store_spawn(launch_t *l, launch_child_t *c)
{
  launch_argv_t a;
  launch_argv_common(l, &a, "rayc-store");
  launch_arg_num(&a, "--object-store-memory", (double)launch_store_memory(l->opts));
  launch_arg(&a, "--node-ip-address", l->opts->node_ip);
  if (l->opts->object_manager_port > 0)
    launch_arg_num(&a, "--object-manager-port", l->opts->object_manager_port);
  return launch_spawn_child(l, "store", &a, c);
}

/* Starts the store, and on the head the GCS beside it (the store needs nothing from the GCS), and
 * waits until both are ready; out->gcs_address is set on the head. */
static int launch_gcs_and_store(launch_t *l, launch_result_t *out)
{
  launch_child_t c[2];
  int n = 0, rc = 0;
  if (l->opts->head && (rc = launch_gcs_spawn(l, &c[n++])) < 0)
    return rc;
  if (!l->opts->gcs_only && (rc = launch_store_spawn(l, &c[n++])) < 0)
    return rc;
  if ((rc = launch_wait_children(l, c, n)) < 0)
    return rc;
  if (l->opts->head && (rc = launch_gcs_ready(l, &c[0], out)) < 0)
    return rc;
  if (!l->opts->gcs_only) {
    l->store_om_port = c[n - 1].port;              /* its object manager, which the raylet advertises */
    l->store_metrics_port = c[n - 1].metrics_port; /* and its /metrics, which the GCS lists */
  }
  return 0;
}

static double launch_num_cpus(const launch_opts_t *o)
{
  cpu_set_t set;
  if (o->num_cpus >= 0)
    return o->num_cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    return CPU_COUNT(&set);
  return (double)sysconf(_SC_NPROCESSORS_ONLN);
}

static int launch_raylet_spawn(launch_t *l, const launch_result_t *out, launch_child_t *c)
{
  launch_argv_t a;
  const launch_opts_t *o = l->opts;
  launch_argv_common(l, &a, "rayc-raylet");
  launch_arg(&a, "--gcs-address", out->gcs_address);
  launch_arg(&a, "--node-ip-address", o->node_ip);
  launch_arg_num(&a, "--port", o->node_manager_port > 0 ? o->node_manager_port : 0);
  launch_arg_num(&a, "--num-cpus", launch_num_cpus(o));
  launch_arg_num(&a, "--num-gpus", o->num_gpus >= 0 ? o->num_gpus : 0);
  if (o->memory > 0)
    launch_arg_num(&a, "--memory", (double)o->memory);
  if (o->resources_json)
    launch_arg(&a, "--resources", o->resources_json);
  launch_arg_num(&a, "--object-store-memory", (double)launch_store_memory(o));
  launch_arg_num(&a, "--object-manager-port", l->store_om_port);
  if (l->store_metrics_port > 0)
    launch_arg_num(&a, "--store-metrics-port", l->store_metrics_port);
  if (o->min_worker_port > 0) {
    launch_arg_num(&a, "--min-worker-port", o->min_worker_port);
    launch_arg_num(&a, "--max-worker-port", o->max_worker_port);
  }
  if (o->head)
    launch_arg(&a, "--head", NULL);
  char *worker = xasprintf("%s/rayc-worker", l->bin_dir);
  launch_arg(&a, "--worker-path", worker);
  free(worker);
  return launch_spawn_child(l, "raylet", &a, c);
}

/* The head's HTTP endpoint, spawned into *c (c->pid 0 when it could not be). Its failure is
 * reported in out->dashboard_error, not fatal: the cluster works without it. */
static void launch_dashboard_spawn(launch_t *l, launch_result_t *out, launch_child_t *c)
{
  launch_argv_t a;
  launch_argv_common(l, &a, "rayc-dashboard");
  launch_arg(&a, "--gcs-address", out->gcs_address);
  launch_arg(&a, "--node-ip-address", l->opts->node_ip);
  launch_arg_num(&a, "--port", l->opts->dashboard_port);
  if (launch_spawn_child(l, "dashboard", &a, c) < 0) {
    c->pid = 0;
    snprintf(out->dashboard_error, sizeof(out->dashboard_error), "%s", l->err);
    free(l->err);
    l->err = NULL;
  }
  c->optional = 1; /* its readiness is recorded while the raylet is waited for */
}

/* Waits for the dashboard spawned into c; its address goes to <session>/dashboard_address. */
static void launch_dashboard_wait(launch_t *l, launch_result_t *out, launch_child_t *c)
{
  if (c->pid <= 0)
    return;
  c->optional = 0;
  if (launch_wait_children(l, c, 1) != 0 || c->port <= 0) {
    snprintf(out->dashboard_error, sizeof(out->dashboard_error), "%s", l->err ? l->err : "no port reported");
    free(l->err);
    l->err = NULL;
    return;
  }
  out->dashboard_port = c->port;
  int v6 = strchr(l->opts->node_ip, ':') != NULL;
  char *file = xasprintf("%s/dashboard_address", l->session);
  char *text = xasprintf("%s%s%s:%d\n", v6 ? "[" : "", l->opts->node_ip, v6 ? "]" : "", c->port);
  write_file_atomic(file, text, strlen(text));
  free(text);
  free(file);
}

/* Starts the raylet, and on the head the dashboard beside it (it needs only the GCS), and waits
 * for the raylet; *dash is the dashboard (pid 0: none), for launch_dashboard_wait. */
static int launch_raylet_and_dashboard(launch_t *l, launch_result_t *out, launch_child_t *dash)
{
  launch_child_t c[2];
  int n = 0, rc = 0;
  memset(dash, 0, sizeof(*dash));
  if (!l->opts->gcs_only && (rc = launch_raylet_spawn(l, out, &c[n++])) < 0)
    return rc;
  if (l->opts->head && l->opts->dashboard_port >= 0)
    launch_dashboard_spawn(l, out, &c[n++]);
  if ((rc = launch_wait_children(l, c, n)) < 0)
    return rc;
  if (!l->opts->gcs_only)
    out->raylet_port = c[0].port;
  if (n > 0 && c[n - 1].optional)
    *dash = c[n - 1];
  return 0;
}

/* ---- start ---- */

static int launch_check_opts(launch_t *l)
{
  const launch_opts_t *o = l->opts;
  if (!o->head && (!o->gcs_address || !*o->gcs_address))
    l->err = xstrdup("a node that is not the head needs the GCS address (HOST:PORT) to join");
  else if (!o->head && o->gcs_only)
    l->err = xstrdup("only the head can run the GCS alone");
  else if (o->head && (o->gcs_port < 0 || o->gcs_port > 65535))
    l->err = xasprintf("invalid GCS port %d", o->gcs_port);
  return l->err ? RAYC_EINVALID_ARGUMENT : 0;
}

/* The node's token: the one given, or (head) a new one; kept in <session>/cluster_token (0600). */
static int launch_token_prepare(launch_t *l)
{
  char fresh[TOKEN_HEX_LEN + 1];
  int rc = 0;
  if (l->opts->token && !token_valid(l->opts->token)) {
    l->err = xstrdup("the cluster token is malformed (printable characters without spaces, at most 512)");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!l->opts->token && !l->opts->head) {
    l->err = xstrdup("a node joining a cluster needs the cluster's token");
    return RAYC_EINVALID_ARGUMENT;
  }
  if (!l->opts->token && (rc = token_generate(fresh)) < 0) {
    l->err = xasprintf("cannot make a cluster token: %s", strerror(-rc));
    return rc;
  }
  l->token_new = !l->opts->token;
  l->token = xstrdup(l->opts->token ? l->opts->token : fresh);
  explicit_bzero(fresh, sizeof(fresh));
  snprintf(l->token_file, sizeof(l->token_file), "%s/" TOKEN_FILE_NAME, l->session);
  if ((rc = token_write_file(l->token_file, l->token)) < 0)
    l->err = xasprintf("cannot write %s: %s", l->token_file, strerror(-rc));
  return rc;
}

/* A new head's token goes to <temp>/cluster_token, where other nodes and drivers look for it;
 * <session>/token_published marks that this node wrote it (so stopping it removes only that). */
static int launch_token_publish(launch_t *l)
{
  if (!l->opts->head || !l->token_new || !l->opts->publish_token)
    return 0;
  char *path = xasprintf("%s/" TOKEN_FILE_NAME, l->temp), *mark = xasprintf("%s/token_published", l->session);
  int rc = token_write_file(path, l->token);
  if (rc < 0)
    l->err = xasprintf("cannot write %s: %s", path, strerror(-rc));
  else if ((rc = write_file_atomic(mark, "", 0)) < 0)
    l->err = xasprintf("cannot write %s: %s", mark, strerror(-rc));
  free(mark);
  free(path);
  return rc;
}

/* Runs the start sequence: session, notify socket, gcs (head) and store -> address -> raylet and
 * dashboard (head). */
static int launch_run(launch_t *l, launch_result_t *out)
{
  int rc = launch_check_opts(l);
  if (rc == 0 && l->opts->bin_dir)
    snprintf(l->bin_dir, sizeof(l->bin_dir), "%s", l->opts->bin_dir);
  else if (rc == 0 && (rc = launch_bin_dir(l->bin_dir, sizeof(l->bin_dir))) < 0)
    l->err = xstrdup("cannot find the rayc-* programs: set RAYC_BIN_DIR");
  if (rc == 0)
    rc = launch_session_create(l);
  if (rc < 0)
    return rc;
  snprintf(out->session_dir, sizeof(out->session_dir), "%s", l->session);
  if ((rc = launch_token_prepare(l)) < 0)
    return rc;
  if ((rc = launch_notify_open(l)) < 0) {
    l->err = xasprintf("cannot bind the readiness socket in %s: %s", l->session, strerror(-rc));
    return rc;
  }
  launch_child_t dash;
  if (!l->opts->head)
    snprintf(out->gcs_address, sizeof(out->gcs_address), "%s", l->opts->gcs_address);
  rc = launch_gcs_and_store(l, out);
  char *addr_file = xasprintf("%s/address", l->session), *addr = xasprintf("%s\n", out->gcs_address);
  if (rc == 0 && (rc = write_file_atomic(addr_file, addr, strlen(addr))) < 0)
    l->err = xasprintf("cannot write %s: %s", addr_file, strerror(-rc));
  free(addr);
  free(addr_file);
  if (rc == 0)
    rc = launch_raylet_and_dashboard(l, out, &dash);
  if (rc == 0 && (rc = launch_link_latest(l->temp, l->session)) < 0)
    l->err = xasprintf("cannot link %s/session_latest: %s", l->temp, strerror(-rc));
  if (rc == 0)
    rc = launch_token_publish(l);
  if (rc == 0)
    launch_dashboard_wait(l, out, &dash);
  return rc;
}

int launch_node_start(const launch_opts_t *opts, launch_result_t *out, char **err)
{
  launch_opts_t o = *opts, def;
  launch_opts_init(&def);
  o.temp_dir = o.temp_dir && *o.temp_dir ? o.temp_dir : def.temp_dir; /* NULL: the defaults */
  o.node_ip = o.node_ip && *o.node_ip ? o.node_ip : def.node_ip;
  launch_t l = {.opts = &o, .notify_fd = -1};
  memset(out, 0, sizeof(*out));
  int rc = launch_run(&l, out);
  launch_notify_close(&l);
  if (rc == 0) {
    snprintf(out->raylet_socket, sizeof(out->raylet_socket), "%s/sockets/raylet", l.session);
    snprintf(out->store_socket, sizeof(out->store_socket), "%s/sockets/store", l.session);
    snprintf(out->token_file, sizeof(out->token_file), "%s", l.token_file);
    snprintf(out->token, sizeof(out->token), "%s", l.token);
  } else {
    if (l.session[0])
      launch_node_stop(l.session, LAUNCH_FAIL_GRACE_MS, 0);
    if (!l.err)
      l.err = xasprintf("starting the node failed: %s", rayc_strerror(rc));
  }
  token_free(l.token);
  if (err)
    *err = l.err;
  else
    free(l.err);
  return rc;
}

/* ---- stop ---- */

typedef struct launch_proc {
  char *pidfile; /* owned */
  pid_t pid;
  int rank; /* signalling order: raylet, workers, store, others, gcs */
  int running;
} launch_proc_t;

static int launch_rank(const char *name)
{
  if (strcmp(name, "raylet.pid") == 0)
    return 0;
  if (strncmp(name, "worker-", 7) == 0)
    return 1;
  if (strcmp(name, "store.pid") == 0)
    return 2;
  return strcmp(name, "gcs.pid") == 0 ? 4 : 3;
}

/* True when an argument names the session: "DIR", "DIR/...", or "--flag=DIR[/...]". */
static int launch_arg_names(const char *arg, const char *dir, size_t dlen)
{
  const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
  if (eq)
    arg = eq + 1;
  return strncmp(arg, dir, dlen) == 0 && (arg[dlen] == '\0' || arg[dlen] == '/');
}

/* True when /proc/<pid>/cmdline has an argument naming session_dir. */
int launch_cmdline_names(pid_t pid, const char *dir)
{
  char path[64], buf[16384];
  snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  size_t dlen = strlen(dir);
  for (char *a = buf; a < buf + n; a += strlen(a) + 1)
    if (launch_arg_names(a, dir, dlen))
      return 1;
  return 0;
}

int launch_pid_alive(pid_t pid)
{
  char path[64], buf[512];
  waitpid(pid, NULL, WNOHANG);
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *end = strrchr(buf, ')'); /* "pid (comm) S ..." */
  return end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

static int launch_proc_cmp(const void *a, const void *b)
{
  return ((const launch_proc_t *)a)->rank - ((const launch_proc_t *)b)->rank;
}

/* Reads the <dir>/pids/<name>.pid files into *out (sorted by rank); stale files (no such process, or one that
 * does not belong to the session) are removed. Returns the count, or a negative errno. */
static int launch_procs_read(const char *dir, launch_proc_t **out)
{
  char *pids = xasprintf("%s/pids", dir);
  DIR *d = opendir(pids);
  int n = 0, cap = 0;
  *out = NULL;
  for (struct dirent *e; d && (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0)
      continue;
    char *file = xasprintf("%s/%s", pids, e->d_name), text[32] = "";
    FILE *f = fopen(file, "r");
    long pid = f && fgets(text, sizeof(text), f) ? strtol(text, NULL, 10) : 0;
    if (f)
      fclose(f);
    if (pid <= 1 || pid > INT_MAX || !launch_pid_alive((pid_t)pid) || !launch_cmdline_names((pid_t)pid, dir)) {
      unlink(file);
      free(file);
      continue;
    }
    if (n == cap)
      *out = xrealloc(*out, (size_t)(cap = cap ? 2 * cap : 8) * sizeof(**out));
    (*out)[n++] = (launch_proc_t){file, (pid_t)pid, launch_rank(e->d_name), 1};
  }
  int rc = d ? n : -errno;
  if (d)
    closedir(d);
  free(pids);
  if (rc > 1)
    qsort(*out, (size_t)rc, sizeof(**out), launch_proc_cmp);
  return rc;
}

/* The node is gone: its token file goes, and the temp dir's too when this node published it and
 * it still holds the same token (a token file the user gave is never removed). */
static void launch_token_forget(const char *session_dir)
{
  char *mine = xasprintf("%s/" TOKEN_FILE_NAME, session_dir), *dir = xstrdup(session_dir);
  char *mark = xasprintf("%s/token_published", session_dir);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  char *published = xasprintf("%s/" TOKEN_FILE_NAME, slash ? dir : ".");
  char *a = NULL, *b = NULL;
  if (access(mark, F_OK) == 0 && token_read_file(mine, &a, NULL) == 0 && token_read_file(published, &b, NULL) == 0 &&
      strcmp(a, b) == 0)
    unlink(published);
  unlink(mark);
  free(mark);
  unlink(mine);
  token_free(a);
  token_free(b);
  free(published);
  free(dir);
  free(mine);
}

/* Sends sig to the running procs with rank in [lo, hi]. */
static void launch_signal(launch_proc_t *p, int n, int lo, int hi, int sig)
{
  for (int i = 0; i < n; i++)
    if (p[i].running && p[i].rank >= lo && p[i].rank <= hi)
      kill(p[i].pid, sig);
}

/* Waits until no proc with rank <= hi runs, or until the deadline; returns how many still run. */
static int launch_wait_exit(launch_proc_t *p, int n, int hi, int64_t deadline)
{
  for (;;) {
    int left = 0;
    for (int i = 0; i < n; i++) {
      if (p[i].running && !launch_pid_alive(p[i].pid)) {
        p[i].running = 0;
        unlink(p[i].pidfile);
      }
      left += p[i].running && p[i].rank <= hi;
    }
    if (left == 0 || now_ms() >= deadline)
      return left;
    usleep(LAUNCH_POLL_MS * 1000);
  }
}

int launch_node_stop(const char *session_dir, int grace_ms, int force)
{
  launch_proc_t *p;
  int n = launch_procs_read(session_dir, &p);
  if (n < 0)
    return n == -ENOENT ? 0 : n;
  int64_t start = now_ms(), deadline = start + (grace_ms > 0 ? grace_ms : 0);
  if (!force) {
    /* The raylet first, so that it can unregister from the GCS and stop its workers. */
    launch_signal(p, n, 0, 0, SIGTERM);
    launch_wait_exit(p, n, 0, start + (grace_ms > 0 ? grace_ms / 2 : 0));
    launch_signal(p, n, 1, 4, SIGTERM);
    launch_wait_exit(p, n, 4, deadline);
  }
  launch_signal(p, n, 0, 4, SIGKILL);
  int left = launch_wait_exit(p, n, 4, now_ms() + 5000);
  if (left == 0) {
    char *addr = xasprintf("%s/address", session_dir);
    unlink(addr); /* the cluster is gone: clients must not find it any more */
    free(addr);
    launch_token_forget(session_dir);
  }
  for (int i = 0; i < n; i++)
    free(p[i].pidfile);
  free(p);
  return n;
}
