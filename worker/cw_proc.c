/*
 * librayc's runtime context, the one process-wide variable of the core worker (why: cw_proc.h).
 */
#include "worker/cw_proc.h"
#include "worker/cw.h"

#include "common/status.h"

/* The only mutable file-scope variable in the core worker: rayc.h's API takes no handle, and
 * functions register from constructors before rayc_init() (cw_proc.h). */
cw_proc_t cw_proc = {
    .api_mu = PTHREAD_MUTEX_INITIALIZER,
    .tasks_mu = PTHREAD_MUTEX_INITIALIZER,
    .classes_mu = PTHREAD_MUTEX_INITIALIZER,
    .actor = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER},
    .exec = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER},
    .events = {.mu = PTHREAD_MUTEX_INITIALIZER},
    .lang_mu = PTHREAD_MUTEX_INITIALIZER,
    .err_once = PTHREAD_ONCE_INIT,
    .send_mu = PTHREAD_MUTEX_INITIALIZER,
};

cw_t *cw_api(void)
{
  cw_t *cw = cw_proc.cw;
  if (!cw)
    cw_set_error(RAYC_ENOT_CONNECTED, "rayc_init() has not been called");
  else
    cw_bg_kick(cw); /* the call may leave work for the background thread (cw_bg.c) */
  return cw;
}
