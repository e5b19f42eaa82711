/*
 * What the gRPC layer's server (rpc_server.c) and client (rpc_client.c) halves share: channel and
 * server arguments, deadlines, packing messages into byte buffers and back, the token comparison.
 */

#include "common/rpc_int.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <string.h>

/* Fills args (room for RPC_ARGS_MAX) with the settings every channel and server uses; returns the count. */
size_t rpc_args_fill(grpc_arg *a, int server, size_t server_max, int no_bdp)
{
  size_t n = 0;
  memset(a, 0, RPC_ARGS_MAX * sizeof(*a));
#define RPC_ARG_INT(k, v) (a[n].type = GRPC_ARG_INTEGER, a[n].key = (char *)(k), a[n++].value.integer = (v))
  /* Objects travel in 5 MiB chunks: lift the 4 MiB default limits. */
  RPC_ARG_INT(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
  if (server) {
    /* A server takes no message longer than this: its length prefix alone is refused
     * (RESOURCE_EXHAUSTED), so a peer cannot make it buffer gigabytes before the token check. */
    RPC_ARG_INT(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, server_max > INT32_MAX ? INT32_MAX : (int)server_max);
    /* gRPC binds with SO_REUSEPORT by default: a second daemon on a taken port must fail. */
    RPC_ARG_INT(GRPC_ARG_ALLOW_REUSEPORT, 0);
  } else {
    RPC_ARG_INT(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
    /* Never route cluster traffic through a proxy named in the environment. */
    RPC_ARG_INT(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    /* A restarted daemon (GCS failover) must be found again in seconds, not minutes. */
    RPC_ARG_INT(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    RPC_ARG_INT(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  }
  if (no_bdp) {
    /* No BDP pings (each answered data with a PING whose ACK woke both ends once more): a fixed
     * 1 MiB window per stream instead of one grown by probing. */
    RPC_ARG_INT(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    RPC_ARG_INT(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1 << 20);
  }
#undef RPC_ARG_INT
  return n;
}

gpr_timespec rpc_deadline(int timeout_ms)
{
  if (timeout_ms <= 0)
    return gpr_inf_future(GPR_CLOCK_REALTIME);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* Returns a new byte buffer holding m packed (NULL: an empty message, every field default). */
grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m)
{
  size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
  grpc_slice sl = grpc_slice_malloc(n);
  if (n)
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(sl));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
  grpc_slice_unref(sl);
  return bb;
}

/* Returns the message unpacked from bb, or NULL when bb is NULL or not a valid d. */
ProtobufCMessage *rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
  if (!bb)
    return NULL;
  /* Small messages arrive as one slice: unpack in place instead of copying it out. */
  if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
      bb->data.raw.slice_buffer.count == 1) {
    grpc_slice sl = bb->data.raw.slice_buffer.slices[0];
    return protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
  }
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb))
    return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return m;
}

/* Compares a received token with ours in time that does not depend on where they differ. */
int rpc_token_equal(const uint8_t *got, size_t got_len, const char *want, size_t want_len)
{
  unsigned char diff = got_len != want_len;
  for (size_t i = 0; i < want_len; i++)
    diff |= (unsigned char)((i < got_len ? got[i] : 0) ^ (unsigned char)want[i]);
  return diff == 0;
}
