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

enum { FRAME_MAX = 16 << 20, FRAME_HEADER = 4 };

/* Writes one frame (blocking, retrying on EINTR and short writes). pass_fd < 0: no fd.
 * Returns 0 or a negative errno / RAYC_E* code. */
int frame_send(int sock, const void *payload, size_t len, int pass_fd);

/* Reads one frame (blocking). On 0, *payload is new (free()) and *len its size; *recv_fd (if not
 * NULL) is the fd that came with it, or -1. Returns RAYC_EUNAVAILABLE on orderly EOF,
 * RAYC_EPROTOCOL for an oversized frame, or a negative errno. */
int frame_recv(int sock, void **payload, size_t *len, int *recv_fd);

/* Packs m and sends it as one frame. */
int frame_send_msg(int sock, const ProtobufCMessage *m, int pass_fd);

/* Receives one frame and unpacks it with desc. On 0, *m is new (free with
 * protobuf_c_message_free_unpacked). Malformed payload: RAYC_EPROTOCOL. */
int frame_recv_msg(int sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **m, int *recv_fd);

/* Incremental reader for non-blocking sockets. */
typedef struct frame_reader {
  uint8_t *buf;
  size_t len, cap;
  size_t consumed; /* bytes of buf already handed out as frames */
} frame_reader_t;

void frame_reader_init(frame_reader_t *r);
void frame_reader_release(frame_reader_t *r);

/* Appends n bytes read from the socket. */
void frame_reader_feed(frame_reader_t *r, const void *data, size_t n);

/* Takes the next complete frame: returns 1 with *payload (borrowed: valid until the next feed or
 * next call) and *len set, 0 when more bytes are needed, RAYC_EPROTOCOL when the length prefix
 * exceeds FRAME_MAX. */
int frame_reader_next(frame_reader_t *r, const uint8_t **payload, size_t *len);

#endif
