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

/* A direct channel to target ("ip:port" or "[ipv6]:port"; rpc_direct.c): the connection is started
 * now and handed to gRPC, which owns it. insecure must be insecure credentials (gRPC takes no
 * others here). Returns the new channel and sets *watch_fd to a descriptor of the same connection
 * (the caller's: close it with the channel), or returns NULL when target is not a numeric address
 * or the connection could not even be started (the caller makes an ordinary channel instead). */
grpc_channel *rpc_direct_create(const char *target, grpc_channel_credentials *insecure, const grpc_channel_args *args,
                                int *watch_fd);

/* 1 when the connection of a direct channel has ended (the peer closed it, or it failed), else 0.
 * Does not block. */
int rpc_direct_ended(int watch_fd);

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
