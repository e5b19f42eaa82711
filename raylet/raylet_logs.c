/*
 * ListLogs and GetLog: this node's log files over the network, for `rayc logs` from any machine
 * (issue 15). Only regular files directly in <session>/logs are served: a name with a '/', a
 * leading '.', an empty one, one over 200 bytes, or one that is a link or not a regular file is
 * refused with INVALID_ARGUMENT or NOT_FOUND, and the file is opened with openat() relative to the
 * logs directory with O_NOFOLLOW, so no name reaches outside it. A worker's file is named by its
 * id or (while it runs) its pid. Reads are bounded (LOGS_MAX_READ a call) and done on the loop:
 * a page cache read of at most 4 MiB.
 */
#include "raylet/raylet.h"

#include "common/ids.h"
#include "common/status.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { LOGS_MAX_READ = 4 << 20, LOGS_NAME_MAX = 200 };

/* The logs directory, opened (O_DIRECTORY); -1 with errno. */
static int logs_dir(raylet_t *r)
{
  char *dir = xasprintf("%s/logs", r->cfg.session_dir);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  return fd;
}

void raylet_logs_on_list(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  (void)req;
  raylet_t *r = ctx;
  int fd = logs_dir(r);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  Rayc__LogFileInfo *v = NULL, **pv = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    struct stat st;
    if (e->d_name[0] == '.' || fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 32;
      v = xrealloc(v, cap * sizeof(*v));
    }
    rayc__log_file_info__init(&v[n]);
    v[n].name = xstrdup(e->d_name);
    v[n].size = (uint64_t)st.st_size;
    v[n].mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    n++;
  }
  pv = xcalloc(n + 1, sizeof(*pv));
  for (size_t i = 0; i < n; i++)
    pv[i] = &v[i];
  Rayc__ListLogsReply reply = RAYC__LIST_LOGS_REPLY__INIT;
  reply.files = pv;
  reply.n_files = n;
  rpc_reply(call, &reply.base);
  for (size_t i = 0; i < n; i++)
    free(v[i].name);
  free(v);
  free(pv);
  if (d)
    closedir(d);
  else if (fd >= 0)
    close(fd);
}

static int logs_name_ok(const char *name)
{
  size_t n = strlen(name);
  return n > 0 && n <= LOGS_NAME_MAX && name[0] != '.' && !strchr(name, '/');
}

/* The file the request names, into name (LOGS_NAME_MAX + 1); 0, or a code with *why (new). */
static int logs_resolve(raylet_t *r, const Rayc__GetLogRequest *q, char *name, char **why)
{
  const char *suffix = *q->suffix ? q->suffix : ".out";
  const uint8_t *id = q->worker_id.len == ID_WORKER_SIZE ? q->worker_id.data : NULL;
  if (*q->name) {
    snprintf(name, LOGS_NAME_MAX + 1, "%s", q->name);
    if (logs_name_ok(q->name))
      return 0;
    *why = xasprintf("'%s' is not a log file name: give a plain name of the logs directory (no '/', "
                     "not starting with '.')",
                     q->name);
    return RAYC_EINVALID_ARGUMENT;
  }
  if (strcmp(suffix, ".out") != 0 && strcmp(suffix, ".log") != 0) {
    *why = xasprintf("a worker's log suffix is .out or .log, not '%s'", suffix);
    return RAYC_EINVALID_ARGUMENT;
  }
  for (raylet_worker_t *w = r->workers; !id && q->pid > 0 && w; w = w->next)
    if (w->pid == q->pid)
      id = w->id.b;
  if (!id) {
    *why = q->pid > 0 ? xasprintf("no worker with pid %d runs on this node", q->pid)
                      : xasprintf("name, worker_id (%d bytes) or pid is required", ID_WORKER_SIZE);
    return q->pid > 0 ? RAYC_ENOT_FOUND : RAYC_EINVALID_ARGUMENT;
  }
  char hex[2 * ID_WORKER_SIZE + 1];
  id_hex(id, ID_WORKER_SIZE, hex);
  snprintf(name, LOGS_NAME_MAX + 1, "worker-%.16s%s", hex, suffix);
  return 0;
}

/* Where to start reading: offset, or the start of the last tail_lines lines of [size - max, size). */
static uint64_t logs_tail_start(int fd, uint64_t size, int lines)
{
  uint64_t from = size > LOGS_MAX_READ ? size - LOGS_MAX_READ : 0;
  size_t len = (size_t)(size - from);
  char *buf = xmalloc(len + 1);
  ssize_t got = pread(fd, buf, len, (off_t)from);
  size_t n = got > 0 ? (size_t)got : 0;
  size_t p = n > 0 && buf[n - 1] == '\n' ? n - 1 : n;
  for (int k = 0; p > 0; p--)
    if (buf[p - 1] == '\n' && ++k >= lines)
      break;
  free(buf);
  return from + p;
}

void raylet_logs_on_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *req)
{
  raylet_t *r = ctx;
  const Rayc__GetLogRequest *q = (const Rayc__GetLogRequest *)req;
  char name[LOGS_NAME_MAX + 1], *why = NULL;
  int rc = logs_resolve(r, q, name, &why);
  if (rc != 0) {
    rpc_reply_error(call, rc, "%s", why);
    free(why);
    return;
  }
  int dir = logs_dir(r);
  int fd = dir >= 0 ? openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rpc_reply_error(call, RAYC_ENOT_FOUND, "no log file %s on this node (%s)", name,
                    fd < 0 ? strerror(errno) : "not a regular file");
  } else {
    uint64_t size = (uint64_t)st.st_size,
             max = q->max_bytes && q->max_bytes < LOGS_MAX_READ ? q->max_bytes : LOGS_MAX_READ;
    uint64_t off = q->tail_lines > 0 ? logs_tail_start(fd, size, q->tail_lines) : q->offset < size ? q->offset : size;
    size_t len = (size_t)(size - off < max ? size - off : max);
    uint8_t *buf = xmalloc(len + 1);
    ssize_t got = pread(fd, buf, len, (off_t)off);
    Rayc__GetLogReply reply = RAYC__GET_LOG_REPLY__INIT;
    reply.name = name;
    reply.data = pb_bytes(buf, got > 0 ? (size_t)got : 0);
    reply.offset = off;
    reply.size = size;
    rpc_reply(call, &reply.base);
    free(buf);
  }
  if (fd >= 0)
    close(fd);
  if (dir >= 0)
    close(dir);
}
