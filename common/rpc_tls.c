/* TLS settings and credentials for the gRPC layer (see rpc_tls.h). */
#include "common/rpc_tls.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"

#define RPC_PEM_MAX (1 << 20) /* bytes read from a TLS certificate or key file, at most */

void rpc_tls_from_env(rpc_tls_t *tls)
{
  tls->cert_file = getenv("RAYC_TLS_CERT");
  tls->key_file = getenv("RAYC_TLS_KEY");
  tls->ca_file = getenv("RAYC_TLS_CA");
}

static int tls_set(const char *f)
{
  return f && *f;
}

int rpc_tls_enabled(const rpc_tls_t *tls)
{
  return tls && (tls_set(tls->cert_file) || tls_set(tls->key_file) || tls_set(tls->ca_file));
}

/* Returns the contents of a PEM file as a new string, or NULL (logged). */
static char *tls_read_pem(const char *what, const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    log_error("rpc: cannot read the TLS %s %s: %s", what, path, strerror(errno));
    return NULL;
  }
  char *buf = xmalloc(RPC_PEM_MAX + 1);
  size_t n = fread(buf, 1, RPC_PEM_MAX + 1, f);
  int bad = ferror(f) || n == 0 || n > RPC_PEM_MAX;
  fclose(f);
  buf[bad ? 0 : n] = '\0';
  if (bad || !strstr(buf, "-----BEGIN")) {
    log_error("rpc: the TLS %s %s is not a PEM file (or is empty, or larger "
              "than %d bytes)",
              what, path, RPC_PEM_MAX);
    free(buf);
    return NULL;
  }
  return buf;
}

/* The three PEM files of tls, read; 0 or RAYC_EINVALID_ARGUMENT (logged). Free
 * with tls_pem_free. */
typedef struct tls_pem {
  char *cert, *key, *ca;
} tls_pem_t;

static void tls_pem_free(tls_pem_t *p)
{
  free(p->cert);
  if (p->key) /* a private key: do not leave it in freed memory */
    explicit_bzero(p->key, strlen(p->key));
  free(p->key);
  free(p->ca);
}

/* Checks what gRPC would only find at the first handshake: the certificate and
 * the CA parse, the key is the certificate's, and the certificate has not
 * expired. 0 or -1 (logged). */
static int tls_pem_check(const rpc_tls_t *tls, const tls_pem_t *p)
{
  BIO *cb = BIO_new_mem_buf(p->cert, -1), *kb = BIO_new_mem_buf(p->key, -1), *ab = BIO_new_mem_buf(p->ca, -1);
  X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
  X509 *ca = ab ? PEM_read_bio_X509(ab, NULL, NULL, NULL) : NULL;
  EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
  const char *why = !cert                                                 ? "the certificate does not parse"
                    : !key                                                ? "the key does not parse (or is encrypted)"
                    : !ca                                                 ? "the CA certificate does not parse"
                    : X509_check_private_key(cert, key) != 1              ? "the key does not belong to the certificate"
                    : X509_cmp_current_time(X509_get0_notAfter(cert)) < 0 ? "the certificate has expired"
                                                                          : NULL;
  if (why)
    log_error("rpc: TLS files %s, %s, %s: %s", tls->cert_file, tls->key_file, tls->ca_file, why);
  EVP_PKEY_free(key);
  X509_free(ca);
  X509_free(cert);
  BIO_free(ab);
  BIO_free(kb);
  BIO_free(cb);
  return why ? -1 : 0;
}

static int tls_pem_read(const rpc_tls_t *tls, tls_pem_t *p)
{
  memset(p, 0, sizeof(*p));
  if (!tls_set(tls->cert_file) || !tls_set(tls->key_file) || !tls_set(tls->ca_file)) {
    log_error("rpc: TLS needs a certificate, its key and the CA (--tls-cert, "
              "--tls-key, --tls-ca); got %s%s%s",
              tls_set(tls->cert_file) ? "cert " : "", tls_set(tls->key_file) ? "key " : "",
              tls_set(tls->ca_file) ? "ca" : "");
    return RAYC_EINVALID_ARGUMENT;
  }
  p->cert = tls_read_pem("certificate", tls->cert_file);
  p->key = p->cert ? tls_read_pem("key", tls->key_file) : NULL;
  p->ca = p->key ? tls_read_pem("CA", tls->ca_file) : NULL;
  if (!p->ca || tls_pem_check(tls, p) < 0) {
    tls_pem_free(p);
    return RAYC_EINVALID_ARGUMENT;
  }
  return 0;
}

grpc_server_credentials *rpc_tls_server_creds(const rpc_tls_t *tls)
{
  tls_pem_t p;
  if (tls_pem_read(tls, &p) < 0)
    return NULL;
  grpc_ssl_pem_key_cert_pair pair = {.private_key = p.key, .cert_chain = p.cert};
  grpc_server_credentials *c = grpc_ssl_server_credentials_create_ex(
      p.ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
  tls_pem_free(&p);
  if (!c)
    log_error("rpc: gRPC refused the TLS files %s, %s, %s", tls->cert_file, tls->key_file, tls->ca_file);
  return c;
}

grpc_channel_credentials *rpc_tls_channel_creds(const rpc_tls_t *tls)
{
  tls_pem_t p;
  if (tls_pem_read(tls, &p) < 0)
    return NULL;
  grpc_ssl_pem_key_cert_pair pair = {.private_key = p.key, .cert_chain = p.cert};
  grpc_channel_credentials *c = grpc_ssl_credentials_create(p.ca, &pair, NULL, NULL);
  tls_pem_free(&p);
  if (!c)
    log_error("rpc: gRPC refused the TLS files %s, %s, %s", tls->cert_file, tls->key_file, tls->ca_file);
  return c;
}
