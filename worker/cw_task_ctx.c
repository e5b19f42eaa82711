/*
 * What a running task calls on its context: setting results (rayc_return_alloc hands it a pointer
 * into the store for a large one, so it is written exactly once), the refs a result contains,
 * failing, and asking whether it was cancelled or streams. cw_exec.c runs the task and builds its
 * reply from the context.
 */
#include "worker/cw_task_ctx.h"

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rayc_task_streaming(const rayc_task_ctx *ctx)
{
  return ctx && ctx->spec->streaming;
}

uint32_t *cw_exec_stream_state(rayc_task_ctx *ctx, cw_t **cw, const Rayc__TaskSpec **spec)
{
  *cw = ctx->cw;
  *spec = ctx->spec;
  return ctx->spec->streaming ? &ctx->nyielded : NULL;
}

int rayc_task_cancelled(const rayc_task_ctx *ctx)
{
  return ctx ? __atomic_load_n(&ctx->cancelled, __ATOMIC_ACQUIRE) : 0;
}

id_object_t cw_ctx_return_id(rayc_task_ctx *ctx, size_t i)
{
  id_task_t t;
  memcpy(t.b, ctx->spec->task_id.data, ID_TASK_SIZE);
  return id_object_for_task(t, (uint32_t)i + 1);
}

void cw_ctx_drop_return(rayc_task_ctx *ctx, size_t i)
{
  if (ctx->kind[i] == RET_STORE) {
    id_object_t id = cw_ctx_return_id(ctx, i);
    store_client_abort(ctx->cw->store, id.b);
  } else if (ctx->kind[i] == RET_HEAP) {
    free((void *)ctx->rets[i].data);
  }
  ctx->rets[i] = (rayc_buf){0};
  ctx->kind[i] = RET_NONE;
}

void *rayc_return_alloc(rayc_task_ctx *ctx, size_t i, size_t len)
{
  if (!ctx || i >= ctx->nrets)
    return NULL;
  cw_ctx_drop_return(ctx, i);
  if (len <= CW_INLINE_MAX) {
    ctx->rets[i] = (rayc_buf){.data = xmalloc(len), .len = len};
    ctx->kind[i] = RET_HEAP;
    return (void *)ctx->rets[i].data;
  }
  uint8_t buf[512];
  size_t olen = ctx->spec->caller && rayc__address__get_packed_size(ctx->spec->caller) <= sizeof(buf)
                    ? rayc__address__pack(ctx->spec->caller, buf)
                    : 0;
  id_object_t id = cw_ctx_return_id(ctx, i);
  uint8_t *data = NULL;
  int rc = store_client_create(ctx->cw->store, id.b, len, 0, buf, olen, 10000, &data);
  if (rc != 0) {
    log_error("result %zu of task %s (%zu bytes) could not be created in the store: %s", i, ctx->spec->function_name,
              len, rayc_strerror(rc));
    return NULL;
  }
  ctx->rets[i] = (rayc_buf){.data = data, .len = len};
  ctx->kind[i] = RET_STORE;
  return data;
}

int rayc_return_parts(rayc_task_ctx *ctx, size_t i, size_t len, const rayc_part *parts, size_t nparts)
{
  if (!ctx || i >= ctx->nrets)
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_return_parts: no result %zu in this task", i);
  if (cw_parts_check("rayc_return_parts", len, parts, nparts) != 0)
    return RAYC_EINVALID_ARGUMENT;
  uint8_t *p = rayc_return_alloc(ctx, i, len);
  if (!p)
    return cw_set_error(RAYC_EOUT_OF_MEMORY, "result %zu (%zu bytes) could not be created in the store", i, len);
  cw_copy_parts(ctx->cw->copy, p, len, parts, nparts);
  return 0;
}

int rayc_return_copy(rayc_task_ctx *ctx, size_t i, const void *data, size_t len)
{
  rayc_part part = {.offset = 0, .data = data, .len = len};
  return rayc_return_parts(ctx, i, len, &part, 1);
}

int rayc_return_refs(rayc_task_ctx *ctx, size_t i, const rayc_ref *refs, size_t nrefs)
{
  if (!ctx || i >= ctx->nrets || (!refs && nrefs))
    return cw_set_error(RAYC_EINVALID_ARGUMENT, "rayc_return_refs: result %zu out of range, or refs NULL", i);
  cw_t *cw = ctx->cw;
  cw_nested_t *v = NULL;
  pthread_mutex_lock(&cw->mu);
  int rc = cw_nested_from_refs(cw, refs, nrefs, CW_HOLD_LOCAL, &v, "rayc_return_refs");
  if (rc == 0) {
    cw_nested_drop(cw, ctx->ret_refs[i], ctx->ret_nrefs[i], CW_HOLD_LOCAL);
    ctx->ret_refs[i] = v;
    ctx->ret_nrefs[i] = nrefs;
  }
  pthread_mutex_unlock(&cw->mu);
  return rc;
}

void cw_ctx_drop_ret_refs(rayc_task_ctx *ctx)
{
  pthread_mutex_lock(&ctx->cw->mu);
  for (size_t i = 0; i < ctx->nrets; i++) {
    cw_nested_drop(ctx->cw, ctx->ret_refs[i], ctx->ret_nrefs[i], CW_HOLD_LOCAL);
    ctx->ret_refs[i] = NULL;
    ctx->ret_nrefs[i] = 0;
  }
  pthread_mutex_unlock(&ctx->cw->mu);
}

int rayc_task_fail(rayc_task_ctx *ctx, const char *fmt, ...)
{
  if (!ctx)
    return RAYC_ETASK_FAILED;
  free(ctx->error);
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&ctx->error, fmt, ap) < 0)
    ctx->error = NULL;
  va_end(ap);
  return RAYC_ETASK_FAILED;
}
