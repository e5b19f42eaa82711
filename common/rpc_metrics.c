/* The gRPC server's metrics; see common/rpc_metrics.h. */
#include "common/rpc_metrics.h"

#include "common/util.h"

static metrics_family_t *rpc_metrics_seconds(void)
{
  return metrics_family("rayc_grpc_server_req_handling_seconds", METRICS_HISTOGRAM,
                        "Time from a gRPC request's arrival to its reply, by method.", "Method");
}

void rpc_metrics_row(const char *method, metrics_series_t **seconds, metrics_series_t **failed)
{
  *seconds = metrics_series1(rpc_metrics_seconds(), method);
  *failed = metrics_series1(metrics_family("rayc_grpc_server_req_failed_total", METRICS_COUNTER,
                                           "gRPC requests answered with an error status, by method.", "Method"),
                            method);
}

void rpc_metrics_done(metrics_series_t *seconds, metrics_series_t *failed, int64_t t0_us, int error)
{
  metrics_observe(seconds, (double)(now_us() - t0_us) / 1e6);
  if (error)
    metrics_add(failed, 1);
}

void rpc_metrics_unauthenticated(void)
{
  metrics_add(metrics_series0(metrics_family("rayc_grpc_server_unauthenticated_total", METRICS_COUNTER,
                                             "gRPC calls rejected for a missing or wrong cluster token.", NULL)),
              1);
}
