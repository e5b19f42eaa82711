/*
 * A running task's context (rayc_task_ctx): its results as the task sets them (inline on the heap
 * or created in the node's store), the refs they contain, its error, and its cancel flag.
 * cw_task_ctx.c holds the public calls a task makes on it (rayc_return_*, rayc_task_fail, ...);
 * cw_exec.c builds one per task and turns it into the reply.
 */
#ifndef RAYC_WORKER_CW_TASK_CTX_H
#define RAYC_WORKER_CW_TASK_CTX_H

#include "worker/cw.h"

enum { RET_NONE, RET_HEAP, RET_STORE };

struct rayc_task_ctx {
  cw_t *cw;
  const Rayc__TaskSpec *spec;
  rayc_buf *rets;
  size_t nrets;
  uint8_t *kind;          /* per result: RET_NONE (unset, or set by the task itself), RET_HEAP, RET_STORE */
  cw_nested_t **ret_refs; /* per result: the refs it contains (rayc_return_refs), each held (CW_HOLD_LOCAL) */
  size_t *ret_nrefs;
  char *error;
  int cancelled;     /* set by CancelTask from the rpc thread; read with atomics */
  uint32_t nyielded; /* a streaming task's items reported so far (cw_stream.c) */
};

/* The id of result i (0-based) of ctx's task. */
id_object_t cw_ctx_return_id(rayc_task_ctx *ctx, size_t i);
/* Frees what result i holds (aborts it in the store if it was created there); it becomes unset. */
void cw_ctx_drop_return(rayc_task_ctx *ctx, size_t i);
/* Drops the holds of every result's refs. */
void cw_ctx_drop_ret_refs(rayc_task_ctx *ctx);

#endif
