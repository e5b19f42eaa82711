/*
 * Length-prefixed frames over Unix stream sockets (see frame.h for the wire format).
 *
 * Sending: the header and payload go out in one sendmsg() gather; the fd, when there is one, rides
 * on the first sendmsg() of the frame so it is attached to the frame's first byte. Short writes and
 * EINTR are retried; MSG_NOSIGNAL turns a dead peer into -EPIPE instead of SIGPIPE.
 *
 * Receiving (blocking): the reader asks for exactly the bytes of the current frame, never more, so
 * an fd it receives belongs to that frame (the kernel delivers an fd with the first read of the
 * bytes it travelled with). Every received fd is opened close-on-exec (MSG_CMSG_CLOEXEC); the first
 * one is kept and any extra ones a misbehaving peer sends are closed, so nothing leaks.
 *
 * The incremental reader buffers bytes for non-blocking sockets: frames are handed out in place
 * (borrowed pointers into the buffer), and consumed bytes are dropped lazily on the next feed.
 */
#include "common/frame.h"

#include "common/status.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

enum { FRAME_CMSG_FDS = 8, FRAME_SMALL = 4096 };

/* Room for a few fds so that a peer sending several per message cannot make us lose track of
 * them (MSG_CTRUNC closes the ones that did not fit, which is fine). */
typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * FRAME_CMSG_FDS)];
} frame_cmsg_t;

static void frame_put_len(uint8_t *hdr, uint32_t len)
{
  for (int i = 0; i < FRAME_HEADER; i++)
    hdr[i] = (uint8_t)(len >> (8 * i));
}

static uint32_t frame_get_len(const uint8_t *hdr)
{
  uint32_t v = 0;
  for (int i = 0; i < FRAME_HEADER; i++)
    v |= (uint32_t)hdr[i] << (8 * i);
  return v;
}

ssize_t frame_sendmsg(int sock, const struct iovec *iov, int cnt, int pass_fd, int flags)
{
  frame_cmsg_t cm;
  struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)cnt};
  if (pass_fd >= 0) {
    memset(&cm, 0, sizeof(cm));
    msg.msg_control = cm.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

/* Drops n sent bytes from the front of an iovec array; returns the new first index. */
static int frame_iov_advance(struct iovec *iov, int cnt, int first, size_t n)
{
  while (first < cnt && n >= iov[first].iov_len) {
    n -= iov[first].iov_len;
    first++;
  }
  if (first < cnt) {
    iov[first].iov_base = (uint8_t *)iov[first].iov_base + n;
    iov[first].iov_len -= n;
  }
  return first;
}

int frame_send(int sock, const void *payload, size_t len, int pass_fd)
{
  if (len > FRAME_MAX)
    return RAYC_EPROTOCOL;
  uint8_t hdr[FRAME_HEADER];
  frame_put_len(hdr, (uint32_t)len);
  struct iovec iov[2] = {{hdr, FRAME_HEADER}, {(void *)(uintptr_t)payload, len}};
  int first = 0, cnt = len ? 2 : 1;
  while (first < cnt) {
    ssize_t n = frame_sendmsg(sock, iov + first, cnt - first, pass_fd, 0);
    if (n < 0)
      return (int)n;
    pass_fd = -1; /* sent with the first byte */
    first = frame_iov_advance(iov, cnt, first, (size_t)n);
  }
  return 0;
}

/* Collects fds from a received message: the first goes to *keep (when it is still -1 and keep is
 * not NULL); every other one is closed. */
static void frame_take_fds(struct msghdr *msg, int *keep)
{
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
      continue;
    size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfd; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (keep && *keep < 0)
        *keep = fd;
      else
        close(fd);
    }
  }
}

ssize_t frame_recvmsg(int sock, void *buf, size_t len, int flags, int *fd)
{
  frame_cmsg_t cm;
  struct iovec iov = {buf, len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
  ssize_t n;
  do
    n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  frame_take_fds(&msg, fd);
  return n;
}

/* Reads exactly len bytes. Returns 0, RAYC_EUNAVAILABLE on EOF (before or inside the frame), or
 * a negative errno. */
static int frame_read_full(int sock, void *buf, size_t len, int *fd)
{
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = frame_recvmsg(sock, p, len, 0, fd);
    if (n < 0)
      return (int)n;
    if (n == 0)
      return RAYC_EUNAVAILABLE;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int frame_recv(int sock, void **payload, size_t *len, int *recv_fd)
{
  uint8_t hdr[FRAME_HEADER];
  uint8_t *buf = NULL;
  int fd = -1;
  if (recv_fd)
    *recv_fd = -1;
  int rc = frame_read_full(sock, hdr, FRAME_HEADER, &fd);
  if (rc < 0)
    goto out;
  uint32_t n = frame_get_len(hdr);
  if (n > FRAME_MAX) {
    rc = RAYC_EPROTOCOL;
    goto out;
  }
  buf = xmalloc(n);
  rc = frame_read_full(sock, buf, n, &fd);
  if (rc < 0)
    goto out;
  *payload = buf;
  *len = n;
  buf = NULL;
  if (recv_fd) {
    *recv_fd = fd;
    fd = -1;
  }
out:
  free(buf);
  if (fd >= 0)
    close(fd);
  return rc;
}

int frame_send_msg(int sock, const ProtobufCMessage *m, int pass_fd)
{
  uint8_t small[FRAME_SMALL];
  size_t len = protobuf_c_message_get_packed_size(m);
  if (len > FRAME_MAX)
    return RAYC_EPROTOCOL;
  uint8_t *buf = len <= sizeof(small) ? small : xmalloc(len);
  protobuf_c_message_pack(m, buf);
  int rc = frame_send(sock, buf, len, pass_fd);
  if (buf != small)
    free(buf);
  return rc;
}

int frame_recv_msg(int sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m, int *recv_fd)
{
  void *buf = NULL;
  size_t len = 0;
  int fd = -1;
  *m = NULL;
  if (recv_fd)
    *recv_fd = -1;
  int rc = frame_recv(sock, &buf, &len, &fd);
  if (rc < 0)
    return rc;
  *m = protobuf_c_message_unpack(desc, NULL, len, buf);
  free(buf);
  if (!*m) {
    if (fd >= 0)
      close(fd);
    return RAYC_EPROTOCOL;
  }
  if (recv_fd)
    *recv_fd = fd;
  else if (fd >= 0)
    close(fd);
  return 0;
}

/* ---- incremental reader ---- */

void frame_reader_init(frame_reader_t *r)
{
  memset(r, 0, sizeof(*r));
}

void frame_reader_release(frame_reader_t *r)
{
  if (!r)
    return;
  free(r->buf);
  memset(r, 0, sizeof(*r));
}

/* Drops the bytes already handed out, so the pending ones start at buf[0]. */
static void frame_reader_compact(frame_reader_t *r)
{
  if (r->consumed == 0)
    return;
  r->len -= r->consumed;
  if (r->len)
    memmove(r->buf, r->buf + r->consumed, r->len);
  r->consumed = 0;
}

uint8_t *frame_reader_space(frame_reader_t *r, size_t want)
{
  frame_reader_compact(r);
  if (r->cap - r->len < want) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap - r->len < want)
      cap *= 2;
    r->buf = xrealloc(r->buf, cap);
    r->cap = cap;
  }
  return r->buf + r->len;
}

void frame_reader_commit(frame_reader_t *r, size_t n)
{
  r->len += n;
}

void frame_reader_feed(frame_reader_t *r, const void *data, size_t n)
{
  if (n == 0)
    return;
  memcpy(frame_reader_space(r, n), data, n);
  frame_reader_commit(r, n);
}

int frame_reader_next(frame_reader_t *r, const uint8_t **payload, size_t *len)
{
  size_t avail = r->len - r->consumed;
  if (avail < FRAME_HEADER)
    return 0;
  uint32_t n = frame_get_len(r->buf + r->consumed);
  if (n > (r->max ? r->max : FRAME_MAX))
    return RAYC_EPROTOCOL;
  if (avail - FRAME_HEADER < n)
    return 0;
  *payload = r->buf + r->consumed + FRAME_HEADER;
  *len = n;
  r->consumed += FRAME_HEADER + (size_t)n;
  return 1;
}

void frame_reader_set_max(frame_reader_t *r, size_t max)
{
  r->max = max > FRAME_MAX ? 0 : max;
}

size_t frame_reader_pending(const frame_reader_t *r)
{
  return r->len - r->consumed;
}
