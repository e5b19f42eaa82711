/*
 * Internals shared by the gRPC layer's two halves, rpc_server.c and rpc_client.c (rpc.h is the
 * public contract). Not for use outside common/rpc_*.c.
 */
#ifndef RAYC_COMMON_RPC_INT_H
#define RAYC_COMMON_RPC_INT_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_AUTH_KEY "authorization"

#define RPC_ARGS_MAX 12/* channel and server arguments rpc_args_fill() may set */

/* Fills a (room for RPC_ARGS_MAX) with the settings every channel and server uses; returns the count.
 * no_bdp (servers): no BDP probe pings (rpc_server_opts_t.no_bdp_probe). */
size_t rpc_args_fill(grpc_arg *a, int server, size_t server_max, int no_bdp);

/* Returns the gRPC deadline timeout_ms from now (<= 0: none). */
gpr_timespec rpc_deadline(int timeout_ms);

/* Returns a new byte buffer holding m packed (NULL: an empty message, every field default). */
grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m);

/* Returns the message unpacked from bb (new; free with protobuf_c_message_free_unpacked), or NULL
 * when bb is NULL or not a valid d. bb stays the caller's. */
ProtobufCMessage *rpc_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d);

/* Compares a received token with ours in time that does not depend on where they differ. */
int rpc_token_equal(const uint8_t *got, size_t got_len, const char *want, size_t want_len);

/* Turns abseil's mutex deadlock detector off in this process, once (rpc_absl.c says why). Safe
 * from any thread, at any time. */
void rpc_absl_quiet(void);

#endif
