/*
 * Request validation for every gRPC method, run by the server's dispatcher (common/rpc_server.c) after a
 * request decodes and before its handler sees it. A protobuf message that decodes is not yet a
 * sane request: proto3 makes every field optional, so an empty or random body decodes too. Two
 * layers, both driven by tables rather than per-handler code:
 *
 *   generic rules   applied to every field of every request, found by walking the protobuf-c
 *                   descriptors: ids have their exact size (job_id 4 bytes, actor_id 16, task_id
 *                   24, node/worker/object ids 28, placement_group_id 18; empty when optional),
 *                   packed id lists a whole number of ids, enums a declared value, resource
 *                   entries a name of 1..95 bytes and a finite amount >= 0, ports 0..65535, pids
 *                   >= 0, strings and bytes within size limits, repeated fields within a count.
 *   required fields each table row names the fields its handler needs ("job job.driver_pid"): a
 *                   dotted path is set when a message is present, a string or bytes non-empty, a
 *                   number non-zero, a repeated field non-empty; a path through a repeated
 *                   message applies to every element.
 *
 * Anything else a handler needs (a pair of fields, a range) is the row's own check function.
 * Failures answer INVALID_ARGUMENT with the first broken rule ("job.driver_pid is required").
 */
#ifndef RAYC_COMMON_RPC_VALID_H
#define RAYC_COMMON_RPC_VALID_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

enum {
  RPC_VALID_STRING_MAX = 1 << 20,   /* any string field */
  RPC_VALID_NAME_MAX = 4096,        /* names, namespaces, addresses, paths */
  RPC_VALID_KEY_MAX = 64 << 10,     /* KV keys and prefixes */
  RPC_VALID_REPEATED_MAX = 1 << 20, /* entries of any repeated field */
  RPC_VALID_RESOURCES_MAX = 1024,   /* entries of a resource list */
  RPC_VALID_RES_NAME_MAX = 95,      /* a resource name (the raylet keeps 96 bytes with the NUL) */
};
/* The largest resource amount a request may carry. */
#define RPC_VALID_AMOUNT_MAX 1e15

/* Checks m (borrowed) against the generic rules and the space-separated required paths (NULL or
 * "": none). Returns 0, or RAYC_EINVALID_ARGUMENT with a message naming the field in why. */
int rpc_valid_check(const ProtobufCMessage *m, const char *required, char *why, size_t len);

/* 0 when every path of required names a field of desc (through message fields); else
 * RAYC_EINVALID_ARGUMENT with the bad path in why. Servers check their tables with it at start. */
int rpc_valid_paths(const ProtobufCMessageDescriptor *desc, const char *required, char *why, size_t len);

#endif
