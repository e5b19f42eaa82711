/*
 * The GCS's side of idle heartbeats over UDP (common/hb_udp.h): a datagram socket bound to the
 * gRPC server's address and port number, drained by the cron (no wake-up of the loop per
 * heartbeat), each datagram checked and applied as an idle ReportHeartbeat and answered with one
 * datagram. docs/ARCHITECTURE.md "Idle heartbeats over UDP".
 */
#ifndef RAYC_GCS_HB_UDP_H
#define RAYC_GCS_HB_UDP_H

#include <stdint.h>

struct gcs_server;

/* Binds the heartbeat socket on the server's address and s->port (after the gRPC port is bound).
 * Not an error when it cannot (logged: raylets fall back to gRPC heartbeats); nothing with
 * --heartbeat-udp off, or with TLS but no token (a datagram could not be authenticated). */
void gcs_hb_udp_open(struct gcs_server *s);

/* Handles the datagrams that came since the last call, at most a bounded number (a flood cannot
 * hold the loop), answering each valid one; now is the liveness time (monotonic ms). */
void gcs_hb_udp_drain(struct gcs_server *s, int64_t now);

/* Closes the socket (idempotent). */
void gcs_hb_udp_close(struct gcs_server *s);

#endif
