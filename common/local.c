/*
 * Unix-socket frame servers on a libuv loop (see local.h).
 *
 * Design. The listening socket and every connection are raw non-blocking fds watched by uv_poll
 * handles: a uv_pipe cannot send an fd with an arbitrary frame, sendmsg() can. Input goes through a
 * frame_reader (read straight into its buffer); output is a FIFO of packed frames, each with an
 * optional fd that was dup'ed at enqueue and is closed once its frame's first byte is sent. A send
 * writes at once when the queue was empty (no extra loop turn); what the socket does not take waits
 * for UV_WRITABLE. The queue is bounded (output_limit): a client that does not read is dropped.
 *
 * Lifetimes (the re-entrancy rules). local_conn_close() never calls back and never frees: it drops
 * the queued output, stops the poll handle and uv_close()s it. The close callback (a later loop
 * turn) calls on_close and then frees the connection. So any callback may close any connection,
 * and the connection memory stays valid until on_close returns. The only exception is
 * local_server_destroy(), which calls on_close synchronously for every connection that has not had
 * it yet, so that nothing calls into the owner after destroy returns. The server struct itself is
 * freed when its listening handle and all its connections are closed.
 *
 * Received fds: clients have no reason to send fds to a daemon; any that arrive are closed.
 */
#include "common/local.h"

#include "common/frame.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

enum { LOCAL_READ_CHUNK = 64 << 10, LOCAL_READS_PER_EVENT = 16, LOCAL_IOV = 64 };

typedef struct local_out {
  struct local_out *next;
  int fd;          /* sent with data[0], then closed; -1: none */
  size_t len, off; /* header + payload; bytes already written */
  uint8_t data[];
} local_out_t;

struct local_conn {
  local_server_t *s;
  local_conn_t *prev, *next; /* s->conns, until the close callback */
  uv_poll_t poll;
  int fd;
  int events;   /* what poll is started with */
  int closing;  /* local_conn_close ran */
  int draining; /* local_conn_close_after_flush ran: no more input or output */
  int notified; /* on_close ran */
  uint64_t id;
  pid_t pid;
  void *data;
  frame_reader_t rd;
  int64_t partial_since; /* when the frame now buffered in part began (ms); 0: none */
  local_out_t *out_head, *out_tail;
  size_t out_bytes;
};

struct local_server {
  uv_loop_t *loop;
  uv_poll_t listen_poll;
  int listen_fd;
  int destroyed;
  int listen_open; /* listen_poll not yet closed */
  char *path;
  local_server_cbs_t cbs;
  void *ctx;
  local_conn_t *conns;
  size_t nconns;
  uint64_t next_id;
  size_t output_limit;
  local_limits_t limits;
  local_stats_t stats;
  int spare_fd;    /* given up to accept (and close) a connection when out of fds */
  unsigned warned; /* LOCAL_WARNED_* limits already logged */
};

enum { LOCAL_WARNED_CONNS = 1, LOCAL_WARNED_OVERSIZE = 2, LOCAL_WARNED_STALL = 4, LOCAL_WARNED_FDS = 8 };

/* Logs a limit hit at warning level the first time for this server, at debug level after. */
#define LOCAL_LIMIT_LOG(s, bit, ...)                                                        \
  do {                                                                                      \
    if ((s)->warned & (bit)) {                                                              \
      log_debug(__VA_ARGS__);                                                               \
    } else {                                                                                \
      (s)->warned |= (bit);                                                                 \
      log_warn(__VA_ARGS__);                                                                \
      log_warn("local: %s: further hits of this limit are counted, not logged", (s)->path); \
    }                                                                                       \
  } while (0)

static void local_conn_on_poll(uv_poll_t *h, int status, int events);

/* ---- server memory ---- */

static void local_server_maybe_free(local_server_t *s)
{
  if (s->listen_open || s->nconns || !s->destroyed)
    return;
  free(s->path);
  free(s);
}

/* ---- output queue ---- */

static local_out_t *local_out_new(size_t payload_len)
{
  local_out_t *o = xmalloc(sizeof(*o) + FRAME_HEADER + payload_len);
  o->next = NULL;
  o->fd = -1;
  o->len = FRAME_HEADER + payload_len;
  o->off = 0;
  for (int i = 0; i < FRAME_HEADER; i++)
    o->data[i] = (uint8_t)(payload_len >> (8 * i));
  return o;
}

static void local_out_free(local_out_t *o)
{
  if (o->fd >= 0)
    close(o->fd);
  free(o);
}

static void local_conn_drop_output(local_conn_t *c)
{
  while (c->out_head) {
    local_out_t *o = c->out_head;
    c->out_head = o->next;
    local_out_free(o);
  }
  c->out_tail = NULL;
  c->out_bytes = 0;
}

/* Fills iov from the head of the queue; an fd-carrying frame other than the head starts a new
 * sendmsg so its fd lands on its own first byte. Returns the fd to attach, or -1. */
static int local_conn_gather(local_conn_t *c, struct iovec *iov, int *cnt)
{
  int n = 0;
  for (local_out_t *o = c->out_head; o && n < LOCAL_IOV; o = o->next) {
    if (o->fd >= 0 && o != c->out_head)
      break;
    iov[n].iov_base = o->data + o->off;
    iov[n].iov_len = o->len - o->off;
    n++;
  }
  *cnt = n;
  return c->out_head->off == 0 ? c->out_head->fd : -1;
}

/* Marks n written bytes; finished frames are freed (and their fds closed). */
static void local_conn_advance(local_conn_t *c, size_t n)
{
  c->out_bytes -= n;
  while (n > 0) {
    local_out_t *o = c->out_head;
    if (o->fd >= 0) { /* it went with the first byte */
      close(o->fd);
      o->fd = -1;
    }
    size_t left = o->len - o->off;
    if (n < left) {
      o->off += n;
      return;
    }
    n -= left;
    c->out_head = o->next;
    local_out_free(o);
  }
  if (!c->out_head)
    c->out_tail = NULL;
}

/* One sendmsg of the queue's head. Returns bytes written or a negative errno. */
static ssize_t local_conn_write_once(local_conn_t *c)
{
  struct iovec iov[LOCAL_IOV];
  int cnt;
  int fd = local_conn_gather(c, iov, &cnt);
  return frame_sendmsg(c->fd, iov, cnt, fd, MSG_DONTWAIT);
}

static void local_conn_set_events(local_conn_t *c, int events)
{
  if (c->closing || c->events == events)
    return;
  c->events = events;
  uv_poll_start(&c->poll, events, local_conn_on_poll);
}

/* Writes what the socket takes. A write error closes the connection. */
static void local_conn_flush(local_conn_t *c)
{
  while (c->out_head && !c->closing) {
    ssize_t n = local_conn_write_once(c);
    if (n == -EAGAIN || n == -EWOULDBLOCK)
      break;
    if (n < 0) {
      log_debug("local: connection %llu (pid %d): write failed: %s", (unsigned long long)c->id, (int)c->pid,
                strerror((int)-n));
      local_conn_close(c);
      return;
    }
    local_conn_advance(c, (size_t)n);
  }
  if (!c->out_head && c->draining) {
    local_conn_close(c);
    return;
  }
  local_conn_set_events(c, c->out_head ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* ---- connection lifetime ---- */

static void local_conn_notify_close(local_conn_t *c)
{
  if (c->notified)
    return;
  c->notified = 1;
  if (c->s->cbs.on_close)
    c->s->cbs.on_close(c->s->ctx, c);
}

static void local_conn_on_closed(uv_handle_t *h)
{
  local_conn_t *c = h->data;
  local_server_t *s = c->s;
  local_conn_notify_close(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->nconns--;
  close(c->fd);
  local_conn_drop_output(c);
  frame_reader_release(&c->rd);
  free(c);
  local_server_maybe_free(s);
}

void local_conn_close(local_conn_t *c)
{
  if (!c || c->closing)
    return;
  c->closing = 1;
  local_conn_drop_output(c);
  uv_close((uv_handle_t *)&c->poll, local_conn_on_closed);
}

void local_conn_close_after_flush(local_conn_t *c)
{
  if (!c || c->closing || c->draining)
    return;
  c->draining = 1;
  local_conn_flush(c);
}

/* ---- input ---- */

/* Hands every complete buffered frame to on_frame; a bad length prefix drops the peer. */
static void local_conn_deliver(local_conn_t *c)
{
  const uint8_t *p;
  size_t len;
  int rc = 0;
  while (!c->closing && !c->draining && (rc = frame_reader_next(&c->rd, &p, &len)) == 1)
    c->s->cbs.on_frame(c->s->ctx, c, p, len);
  if (c->draining)
    frame_reader_release(&c->rd); /* input after the goodbye is ignored */
  if (!c->closing && rc < 0) {
    local_server_t *s = c->s;
    s->stats.frames_oversize++;
    LOCAL_LIMIT_LOG(s, LOCAL_WARNED_OVERSIZE,
                    "local: connection %llu (pid %d) on %s sent a frame longer than %zu bytes; "
                    "closing it",
                    (unsigned long long)c->id, (int)c->pid, s->path,
                    s->limits.frame_max ? s->limits.frame_max : (size_t)FRAME_MAX);
    local_conn_close(c);
  }
}

/* Reads what is available (bounded, for fairness between clients) and delivers frames. */
static void local_conn_read(local_conn_t *c)
{
  for (int i = 0; i < LOCAL_READS_PER_EVENT && !c->closing; i++) {
    uint8_t *buf = frame_reader_space(&c->rd, LOCAL_READ_CHUNK);
    ssize_t n = frame_recvmsg(c->fd, buf, LOCAL_READ_CHUNK, MSG_DONTWAIT, NULL);
    if (n == -EAGAIN || n == -EWOULDBLOCK)
      return;
    if (n <= 0) {
      if (n < 0 || frame_reader_pending(&c->rd))
        log_debug("local: connection %llu (pid %d) dropped%s: %s", (unsigned long long)c->id, (int)c->pid,
                  frame_reader_pending(&c->rd) ? " mid-frame" : "", n < 0 ? strerror((int)-n) : "EOF");
      local_conn_close(c);
      return;
    }
    frame_reader_commit(&c->rd, (size_t)n);
    size_t before = frame_reader_pending(&c->rd);
    local_conn_deliver(c);
    size_t after = frame_reader_pending(&c->rd);
    /* the stall clock restarts with each new frame, not with each byte */
    if (after == 0)
      c->partial_since = 0;
    else if (c->partial_since == 0 || after < before)
      c->partial_since = now_ms();
  }
}

static void local_conn_on_poll(uv_poll_t *h, int status, int events)
{
  local_conn_t *c = h->data;
  if (status < 0) {
    /* A peer that dies with unread data leaves a socket error: libuv reports it as a poll
     * error, which is just another way to hang up. */
    log_debug("local: connection %llu (pid %d): %s", (unsigned long long)c->id, (int)c->pid, uv_strerror(status));
    local_conn_close(c);
    return;
  }
  if (events & UV_WRITABLE)
    local_conn_flush(c);
  if ((events & UV_READABLE) && !c->closing)
    local_conn_read(c);
}

/* ---- accepting ---- */

/* Returns 0 when the peer runs as our uid or as root; logs and returns -EPERM otherwise. */
static int local_check_peer(int fd, pid_t *pid)
{
  struct ucred cr;
  socklen_t len = sizeof(cr);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
    log_warn("local: SO_PEERCRED failed: %s; refusing the connection", strerror(errno));
    return -errno;
  }
  *pid = cr.pid;
  if (cr.uid != geteuid() && cr.uid != 0) {
    log_warn("local: refusing connection from pid %d: uid %u is not ours (%u)", (int)cr.pid, (unsigned)cr.uid,
             (unsigned)geteuid());
    return -EPERM;
  }
  return 0;
}

static local_conn_t *local_conn_new(local_server_t *s, int fd, pid_t pid)
{
  local_conn_t *c = xcalloc(1, sizeof(*c));
  c->s = s;
  c->fd = fd;
  c->pid = pid;
  c->id = ++s->next_id;
  frame_reader_init(&c->rd);
  frame_reader_set_max(&c->rd, s->limits.frame_max);
  int rc = uv_poll_init(s->loop, &c->poll, fd);
  if (rc < 0) {
    log_warn("local: cannot watch connection from pid %d: %s", (int)pid, uv_strerror(rc));
    frame_reader_release(&c->rd);
    free(c);
    return NULL;
  }
  c->poll.data = c;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  local_conn_set_events(c, UV_READABLE);
  return c;
}

static void local_accept_one(local_server_t *s, int fd)
{
  pid_t pid = 0;
  if (local_check_peer(fd, &pid) < 0) {
    close(fd);
    return;
  }
  if (s->limits.max_conns && s->nconns >= s->limits.max_conns) {
    s->stats.conns_refused++;
    LOCAL_LIMIT_LOG(s, LOCAL_WARNED_CONNS,
                    "local: %s has %zu connections (--local-max-connections); refusing one "
                    "from pid %d",
                    s->path, s->nconns, (int)pid);
    close(fd);
    return;
  }
  local_conn_t *c = local_conn_new(s, fd, pid);
  if (!c) {
    close(fd);
    return;
  }
  log_debug("local: connection %llu from pid %d on %s", (unsigned long long)c->id, (int)pid, s->path);
  if (s->cbs.on_connect)
    s->cbs.on_connect(s->ctx, c);
}

/* Out of fds: the pending connection would keep the listening socket readable (a busy loop), so
 * the spare fd is given up to accept it and close it at once. Returns 1 when one was refused. */
static int local_accept_without_fds(local_server_t *s)
{
  if (s->spare_fd < 0)
    return 0;
  close(s->spare_fd);
  int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0)
    close(fd);
  s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  s->stats.conns_refused++;
  LOCAL_LIMIT_LOG(s, LOCAL_WARNED_FDS, "local: %s: out of file descriptors with %zu connections; refusing new ones",
                  s->path, s->nconns);
  return 1;
}

static void local_server_on_poll(uv_poll_t *h, int status, int events)
{
  local_server_t *s = h->data;
  (void)events;
  if (status < 0) {
    log_error("local: listening socket %s: %s", s->path, uv_strerror(status));
    return;
  }
  while (!s->destroyed) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && errno == EINTR)
      continue;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && local_accept_without_fds(s))
      continue;
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
        log_warn("local: accept on %s: %s", s->path, strerror(errno));
      return;
    }
    local_accept_one(s, fd);
  }
}

/* ---- listening ---- */

/* Makes the directory holding path (0700) when it is missing. */
static int local_make_dir(const char *path)
{
  char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  int rc = 0;
  if (slash && slash != dir) {
    *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
      rc = mkdir_p(dir, 0700);
  }
  free(dir);
  return rc;
}

/* Creates, binds (0600) and listens; returns the fd or a negative errno. */
static int local_listen_fd(const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  int rc = local_make_dir(path);
  if (rc < 0)
    return rc;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (unlink(path) != 0 && errno != ENOENT) {
    rc = -errno;
    goto out;
  }
  mode_t old = umask(0177); /* the file is born 0600: no window where others could connect */
  rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
  umask(old);
  if (rc == 0 && chmod(path, 0600) != 0)
    rc = -errno;
  if (rc == 0 && listen(fd, SOMAXCONN) != 0)
    rc = -errno;
out:
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

local_server_t *local_server_create(uv_loop_t *loop, const char *path, const local_server_cbs_t *cbs, void *ctx,
                                    int *err)
{
  int fd = local_listen_fd(path);
  int rc = fd < 0 ? fd : 0;
  local_server_t *s = NULL;
  if (rc < 0)
    goto out;
  s = xcalloc(1, sizeof(*s));
  s->loop = loop;
  s->listen_fd = fd;
  s->path = xstrdup(path);
  s->cbs = *cbs;
  s->ctx = ctx;
  s->output_limit = LOCAL_OUTPUT_MAX;
  s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  rc = uv_poll_init(loop, &s->listen_poll, fd);
  if (rc < 0) {
    unlink(path);
    close(fd);
    if (s->spare_fd >= 0)
      close(s->spare_fd);
    free(s->path);
    free(s);
    s = NULL;
    goto out;
  }
  s->listen_poll.data = s;
  s->listen_open = 1;
  rc = uv_poll_start(&s->listen_poll, UV_READABLE, local_server_on_poll);
  if (rc < 0) {
    local_server_destroy(s);
    s = NULL;
  }
out:
  if (rc < 0) {
    log_error("local: cannot listen on %s: %s", path, strerror(-rc));
    *err = rc;
  }
  return s;
}

static void local_server_on_closed(uv_handle_t *h)
{
  local_server_t *s = h->data;
  close(s->listen_fd);
  if (s->spare_fd >= 0)
    close(s->spare_fd);
  s->spare_fd = -1;
  s->listen_open = 0;
  local_server_maybe_free(s);
}

void local_server_destroy(local_server_t *s)
{
  if (!s || s->destroyed)
    return;
  s->destroyed = 1;
  for (local_conn_t *c = s->conns; c; c = c->next)
    local_conn_close(c);
  for (local_conn_t *c = s->conns; c; c = c->next)
    local_conn_notify_close(c);
  unlink(s->path);
  uv_close((uv_handle_t *)&s->listen_poll, local_server_on_closed);
}

void local_server_set_limits(local_server_t *s, const local_limits_t *l)
{
  s->limits = *l;
  for (local_conn_t *c = s->conns; c; c = c->next)
    frame_reader_set_max(&c->rd, l->frame_max);
}

void local_server_get_stats(const local_server_t *s, local_stats_t *out)
{
  *out = s->stats;
  out->conns = s->nconns;
}

void local_server_cron(local_server_t *s)
{
  if (!s || !s->limits.stall_ms)
    return;
  int64_t now = now_ms();
  for (local_conn_t *c = s->conns; c; c = c->next) {
    if (c->closing || !c->partial_since || now - c->partial_since < s->limits.stall_ms)
      continue;
    s->stats.conns_stalled++;
    LOCAL_LIMIT_LOG(s, LOCAL_WARNED_STALL,
                    "local: connection %llu (pid %d) on %s sent part of a frame (%zu bytes) and "
                    "nothing more for %d ms; closing it",
                    (unsigned long long)c->id, (int)c->pid, s->path, frame_reader_pending(&c->rd), s->limits.stall_ms);
    local_conn_close(c);
  }
}

void local_server_set_output_limit(local_server_t *s, size_t bytes)
{
  s->output_limit = bytes;
}

const char *local_server_path(const local_server_t *s)
{
  return s->path;
}

/* ---- sending ---- */

/* Queues o (taking it) and writes what the socket takes now. */
static int local_conn_enqueue(local_conn_t *c, local_out_t *o)
{
  if (c->out_bytes + o->len > c->s->output_limit) {
    log_warn("local: connection %llu (pid %d) is not reading (%zu bytes queued); closing it", (unsigned long long)c->id,
             (int)c->pid, c->out_bytes);
    local_out_free(o);
    local_conn_close(c);
    return RAYC_EUNAVAILABLE;
  }
  if (c->out_tail)
    c->out_tail->next = o;
  else
    c->out_head = o;
  c->out_tail = o;
  c->out_bytes += o->len;
  if (c->out_head == o)
    local_conn_flush(c);
  return c->closing ? RAYC_EUNAVAILABLE : 0;
}

/* Returns a new queue entry for a payload of len bytes carrying a dup of pass_fd, or NULL with
 * *rc set. */
static local_out_t *local_out_prepare(local_conn_t *c, size_t len, int pass_fd, int *rc)
{
  *rc = 0;
  if (c->closing || c->draining)
    *rc = RAYC_EUNAVAILABLE;
  else if (len > FRAME_MAX)
    *rc = RAYC_EPROTOCOL;
  if (*rc < 0)
    return NULL;
  int fd = -1;
  if (pass_fd >= 0 && (fd = fcntl(pass_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    *rc = -errno;
    return NULL;
  }
  local_out_t *o = local_out_new(len);
  o->fd = fd;
  return o;
}

int local_conn_send(local_conn_t *c, const void *payload, size_t len, int pass_fd)
{
  int rc;
  local_out_t *o = local_out_prepare(c, len, pass_fd, &rc);
  if (!o)
    return rc;
  if (len)
    memcpy(o->data + FRAME_HEADER, payload, len);
  return local_conn_enqueue(c, o);
}

int local_conn_send_msg(local_conn_t *c, const ProtobufCMessage *m, int pass_fd)
{
  int rc;
  size_t len = protobuf_c_message_get_packed_size(m);
  local_out_t *o = local_out_prepare(c, len, pass_fd, &rc);
  if (!o)
    return rc;
  protobuf_c_message_pack(m, o->data + FRAME_HEADER);
  return local_conn_enqueue(c, o);
}

/* ---- accessors ---- */

void local_conn_set_data(local_conn_t *c, void *data)
{
  c->data = data;
}

void *local_conn_data(const local_conn_t *c)
{
  return c->data;
}

pid_t local_conn_pid(const local_conn_t *c)
{
  return c->pid;
}

uint64_t local_conn_id(const local_conn_t *c)
{
  return c->id;
}

size_t local_conn_queued(const local_conn_t *c)
{
  return c->out_bytes;
}

int local_conn_is_closing(const local_conn_t *c)
{
  return c->closing || c->draining;
}
