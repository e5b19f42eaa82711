/*
 * TLS for the gRPC layer (common/rpc.h describes rpc_tls_t and what it turns
 * on): reading and checking the PEM files, and making gRPC's SSL credentials
 * from them. Internal to common/rpc_server.c and rpc_client.c.
 *
 * Mutual TLS: the server requires a client certificate that the CA signed
 * (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY); the client
 * shows its own and checks the server's against the CA and the host it dialled
 * (gRPC's default peer-name check). The files are checked with OpenSSL when the
 * credentials are made (they parse, the key is the certificate's, the
 * certificate has not expired), since gRPC itself would only fail at the first
 * handshake, far from the setting that caused it.
 */
#ifndef RAYC_COMMON_RPC_TLS_H
#define RAYC_COMMON_RPC_TLS_H

#include <grpc/grpc_security.h>

#include "common/rpc.h"

/* Server credentials for tls; NULL (logged) when the files are unusable.
 * Release with grpc_server_credentials_release(). */
grpc_server_credentials *rpc_tls_server_creds(const rpc_tls_t *tls);

/* Channel credentials for tls; NULL (logged) when the files are unusable.
 * Release with grpc_channel_credentials_release(). */
grpc_channel_credentials *rpc_tls_channel_creds(const rpc_tls_t *tls);

#endif
