/* Actors: not built yet (issue 5). Actor tasks are refused with a clear error. */
#include "worker/cw.h"

#include "common/status.h"

int cw_actor_push(cw_t *cw, rpc_call_t *call, const Rayc__PushTaskRequest *req)
{
  (void)cw;
  (void)req;
  rpc_reply_error(call, RAYC_EUNIMPLEMENTED, "actors are not implemented yet");
  return 1;
}
