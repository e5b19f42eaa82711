/*
 * Binary identifiers of Ray's sizes, printed as lowercase hex.
 *
 *   JobID 4 | ActorID 16 = 12 unique + JobID | TaskID 24 = 20 unique + JobID
 *   ObjectID 28 = the TaskID that created it + a 4-byte little-endian index
 *   NodeID 28 | WorkerID 28 | PlacementGroupID 18
 *
 * An ObjectID names its creating task so an owner can find the task to re-run. Put objects use
 * index values with the top bit set; task returns count from 1.
 */
#ifndef RAYC_COMMON_IDS_H
#define RAYC_COMMON_IDS_H

#include <stddef.h>
#include <stdint.h>

enum {
  ID_JOB_SIZE = 4,
  ID_ACTOR_SIZE = 16,
  ID_TASK_SIZE = 24,
  ID_OBJECT_SIZE = 28,
  ID_NODE_SIZE = 28,
  ID_WORKER_SIZE = 28,
  ID_PG_SIZE = 18,
  ID_MAX_SIZE = 28,
  ID_PUT_INDEX_FLAG = 0x40000000,
};

typedef struct {
  uint8_t b[ID_JOB_SIZE];
} id_job_t;
typedef struct {
  uint8_t b[ID_TASK_SIZE];
} id_task_t;
typedef struct {
  uint8_t b[ID_OBJECT_SIZE];
} id_object_t;
typedef struct {
  uint8_t b[ID_NODE_SIZE];
} id_node_t;
typedef struct {
  uint8_t b[ID_WORKER_SIZE];
} id_worker_t;

/* Fills buf with len random bytes from the kernel's generator (getrandom): up to 64 bytes come
 * from a per-thread block refilled 256 bytes at a time (a forked child starts with none). */
void id_random(void *buf, size_t len);

/* Writes 2*len hex digits and a NUL into out (which must hold 2*len+1 bytes); returns out. */
char *id_hex(const void *id, size_t len, char *out);

/* Parses 2*len hex digits; 0 on success, RAYC_EINVALID_ARGUMENT otherwise. */
int id_from_hex(const char *hex, void *id, size_t len);

/* Prints the first 8 hex digits, for log lines; returns a pointer into out (>= 9 bytes). */
char *id_short(const void *id, size_t len, char *out);

id_job_t id_job_from_int(uint32_t n);
id_task_t id_task_random(id_job_t job);
id_object_t id_object_for_task(id_task_t task, uint32_t index);
id_task_t id_object_task(const id_object_t *obj);
uint32_t id_object_index(const id_object_t *obj);
id_node_t id_node_random(void);
id_worker_t id_worker_random(void);

/* Compares len bytes against zero. */
int id_is_nil(const void *id, size_t len);

#endif
