/*
 * Status codes shared by every rayc process and the public API.
 *
 * Functions that can fail return 0 or a negative RAYC_E* code (libuv style). The same codes travel
 * on the wire (ErrorInfo.code, LocalStatus.code) and map one-to-one onto gRPC status codes through
 * one table (status.c), so an error keeps its meaning across every hop.
 */
#ifndef RAYC_COMMON_STATUS_H
#define RAYC_COMMON_STATUS_H

#include "rayc_errors.h"

/* Returns the gRPC status code (grpc_status_code as int) for a RAYC_E* code (0 -> OK). */
int status_to_grpc(int rayc_err);

/* Returns the RAYC_E* code for a gRPC status code (OK -> 0). */
int status_from_grpc(int grpc_code);

#endif
