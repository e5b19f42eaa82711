/*
 * The gRPC server's metrics (common/rpc_server.c counts every call of every table method once, in its
 * dispatcher): rayc_grpc_server_req_handling_seconds{Method} (a histogram from the request's
 * arrival to the reply), rayc_grpc_server_req_failed_total{Method} (replies with a status other
 * than OK) and rayc_grpc_server_unauthenticated_total (calls rejected for a missing or wrong token).
 */
#ifndef RAYC_COMMON_RPC_METRICS_H
#define RAYC_COMMON_RPC_METRICS_H

#include "common/metrics.h"

#include <stdint.h>

/* Looks up the series of method ("rayc.NodeInfoGcsService/RegisterNode"; borrowed). */
void rpc_metrics_row(const char *method, metrics_series_t **seconds, metrics_series_t **failed);

/* Counts a finished call accepted at t0_us (now_us()). */
void rpc_metrics_done(metrics_series_t *seconds, metrics_series_t *failed, int64_t t0_us, int error);

/* Counts a call rejected for its token. */
void rpc_metrics_unauthenticated(void);

#endif
