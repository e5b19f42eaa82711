/*
 * Length-prefixed frames over Unix stream sockets, with file descriptors passed by SCM_RIGHTS.
 *
 * A frame is a 4-byte little-endian payload length followed by the payload (a packed
 * rayc.LocalMessage). At most one fd travels with a frame, attached to its first byte. Frames
 * larger than FRAME_MAX are a protocol error: local frames carry control, never object data.
 *
 * The blocking helpers serve clients (a worker talking to its store); the incremental reader serves
 * daemons reading non-blocking sockets on a loop (common/local.h).
 */
#ifndef RAYC_COMMON_FRAME_H
#define RAYC_COMMON_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct iovec;

enum { FRAME_MAX = 16 << 20, FRAME_HEADER = 4 };

/* Writes one frame (blocking, retrying on EINTR and short writes). pass_fd < 0: no fd; otherwise
 * it is borrowed (the caller still closes it). Returns 0, RAYC_EPROTOCOL when len > FRAME_MAX, or a
 * negative errno (-EPIPE when the peer is gone; never raises SIGPIPE). After an error part of the
 * frame may have been written: close the socket. */
int frame_send(int sock, const void *payload, size_t len, int pass_fd);

/* Reads one frame (blocking). On 0, *payload is new (free(); never NULL, even for len 0) and *len
 * its size; *recv_fd (if not NULL) is the fd that came with it (new, close-on-exec), or -1; with
 * recv_fd NULL a received fd is closed. Returns RAYC_EUNAVAILABLE on EOF (also in the middle of a
 * frame), RAYC_EPROTOCOL for an oversized frame, or a negative errno (e.g. -ECONNRESET, or -EAGAIN
 * when SO_RCVTIMEO expires); then *recv_fd is -1, *payload untouched, and the stream is out of
 * step: close the socket. */
int frame_recv(int sock, void **payload, size_t *len, int *recv_fd);

/* Packs m and sends it as one frame (same returns as frame_send). */
int frame_send_msg(int sock, const ProtobufCMessage *m, int pass_fd);

/* Receives one frame and unpacks it with desc. On 0, *m is new (free with
 * protobuf_c_message_free_unpacked) and *recv_fd as for frame_recv. Malformed payload:
 * RAYC_EPROTOCOL (the fd that came with it is closed). On error *m is NULL and *recv_fd -1. */
int frame_recv_msg(int sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m, int *recv_fd);

/* Incremental reader for non-blocking sockets. */
typedef struct frame_reader {
  uint8_t *buf;
  size_t len, cap;
  size_t consumed; /* bytes of buf already handed out as frames */
  size_t max;      /* longest frame accepted; 0: FRAME_MAX (frame_reader_init) */
} frame_reader_t;

void frame_reader_init(frame_reader_t *r);
void frame_reader_release(frame_reader_t *r);

/* Appends n bytes read from the socket. */
void frame_reader_feed(frame_reader_t *r, const void *data, size_t n);

/* Takes the next complete frame: returns 1 with *payload (borrowed: valid until the next feed or
 * next call) and *len set, 0 when more bytes are needed, RAYC_EPROTOCOL when the length prefix
 * exceeds FRAME_MAX (the reader then stays in error: drop the connection). */
int frame_reader_next(frame_reader_t *r, const uint8_t **payload, size_t *len);
/* Lowers the longest frame r accepts (0 or more than FRAME_MAX: FRAME_MAX); a longer length prefix
 * is refused as soon as its header arrives, before any of its payload is buffered. */
void frame_reader_set_max(frame_reader_t *r, size_t max);

/* Zero-copy feeding: returns room for at least want bytes at the end of the buffer (this drops the
 * frames already handed out, so earlier payload pointers die); read into it, then commit the number
 * of bytes actually stored. */
uint8_t *frame_reader_space(frame_reader_t *r, size_t want);
void frame_reader_commit(frame_reader_t *r, size_t n);

/* Bytes buffered but not yet handed out as frames (non-zero at EOF means a truncated frame). */
size_t frame_reader_pending(const frame_reader_t *r);

/* One sendmsg() of cnt iovecs (EINTR retried, MSG_NOSIGNAL added to flags), with pass_fd (if >= 0,
 * borrowed) attached as SCM_RIGHTS to the first byte written. Returns the byte count or a negative
 * errno (-EAGAIN when a non-blocking socket is full, in which case the fd was not sent). */
ssize_t frame_sendmsg(int sock, const struct iovec *iov, int cnt, int pass_fd, int flags);

/* One recvmsg() (EINTR retried, MSG_CMSG_CLOEXEC added to flags) into buf. Received fds: when fd is
 * not NULL and *fd < 0, the first is stored in *fd; all others are closed. Returns the byte count
 * (0 at EOF) or a negative errno (-EAGAIN on an empty non-blocking socket). */
ssize_t frame_recvmsg(int sock, void *buf, size_t len, int flags, int *fd);

#endif
