/* Status codes: names, messages and the one table that maps them onto gRPC status codes. */
#include "common/status.h"

#include <grpc/status.h>
#include <string.h>

const char *rayc_strerror(int err)
{
  switch (err) {
    case 0:
      return "success";
#define RAYC_ERRNO_MSG(name, val, msg) \
  case (val):                          \
    return msg;
      RAYC_ERRNO_MAP(RAYC_ERRNO_MSG)
#undef RAYC_ERRNO_MSG
    default:
      return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
  }
}

const char *rayc_err_name(int err)
{
  switch (err) {
    case 0:
      return "OK";
#define RAYC_ERRNO_NAME(name, val, msg) \
  case (val):                           \
    return #name;
      RAYC_ERRNO_MAP(RAYC_ERRNO_NAME)
#undef RAYC_ERRNO_NAME
    default:
      return "UNKNOWN";
  }
}

static const struct {
  int rayc;
  grpc_status_code grpc;
} status_map[] = {
    {0, GRPC_STATUS_OK},
    {RAYC_ECANCELLED, GRPC_STATUS_CANCELLED},
    {RAYC_EINVALID_ARGUMENT, GRPC_STATUS_INVALID_ARGUMENT},
    {RAYC_ETIMEOUT, GRPC_STATUS_DEADLINE_EXCEEDED},
    {RAYC_ENOT_FOUND, GRPC_STATUS_NOT_FOUND},
    {RAYC_EALREADY_EXISTS, GRPC_STATUS_ALREADY_EXISTS},
    {RAYC_EOUT_OF_MEMORY, GRPC_STATUS_RESOURCE_EXHAUSTED},
    {RAYC_EINFEASIBLE, GRPC_STATUS_FAILED_PRECONDITION},
    {RAYC_EUNIMPLEMENTED, GRPC_STATUS_UNIMPLEMENTED},
    {RAYC_EINTERNAL, GRPC_STATUS_INTERNAL},
    {RAYC_EUNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
    {RAYC_EPROTOCOL, GRPC_STATUS_DATA_LOSS},
    {RAYC_EUNAUTHENTICATED, GRPC_STATUS_UNAUTHENTICATED},
    {RAYC_ETASK_FAILED, GRPC_STATUS_ABORTED},
};

int status_to_grpc(int rayc_err)
{
  for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
    if (status_map[i].rayc == rayc_err)
      return status_map[i].grpc;
  return GRPC_STATUS_UNKNOWN;
}

int status_from_grpc(int grpc_code)
{
  for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
    if ((int)status_map[i].grpc == grpc_code)
      return status_map[i].rayc;
  return RAYC_EINTERNAL;
}
