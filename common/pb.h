/*
 * All generated protobuf-c headers, and small helpers for their bytes fields.
 */
#ifndef RAYC_COMMON_PB_H
#define RAYC_COMMON_PB_H

#include "proto/common.pb-c.h"
#include "proto/core_worker.pb-c.h"
#include "proto/gcs.pb-c.h"
#include "proto/gcs_task.pb-c.h"
#include "proto/job.pb-c.h"
#include "proto/local.pb-c.h"
#include "proto/node_manager.pb-c.h"
#include "proto/object_manager.pb-c.h"

/* Every gRPC service of rayc (common/pb_services.c). */
extern const ProtobufCServiceDescriptor *const pb_services[];
extern const size_t pb_n_services;

/* A bytes field that borrows len bytes at p. */
static inline ProtobufCBinaryData pb_bytes(const void *p, size_t len)
{
  ProtobufCBinaryData b = {len, (uint8_t *)(uintptr_t)p};
  return b;
}

/* Frees a message unpacked by protobuf-c (accepts NULL). */
static inline void pb_free(void *m)
{
  if (m)
    protobuf_c_message_free_unpacked((ProtobufCMessage *)m, NULL);
}

/* Messages unpacked with &arena.alloc (protobuf-c's allocator) share the arena's blocks and are
 * freed all at once by pb_arena_release, never by pb_free (common/pb_arena.c). hint: about how
 * many bytes they will take (the first block's size; later blocks double). Not thread-safe. */
typedef struct pb_arena {
  ProtobufCAllocator alloc;
  struct pb_arena_block *blocks;
  char *cur;
  size_t left, next_size;
} pb_arena_t;
void pb_arena_init(pb_arena_t *a, size_t hint);
void pb_arena_release(pb_arena_t *a);

#endif
