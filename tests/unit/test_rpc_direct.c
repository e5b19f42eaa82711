/*
 * Direct channels (rpc_channel_get_direct, common/rpc_direct.c): the GCS's channels to actors'
 * workers. Over real gRPC on loopback, with servers in this process (handlers on their
 * completion-queue thread):
 *  - calls on a direct channel are answered, and rpc_channel_get of the same target returns it;
 *  - once its server is gone, a call on it fails with UNAVAILABLE (it never reconnects), and a new
 *    server on the same port (a new worker on a reused port) is reached through the next
 *    rpc_channel_get_direct: the channel whose connection ended is replaced, not handed out again;
 *  - a holder's ref (rpc_channel_ref: the creator's record of an actor) keeps a replaced channel
 *    usable (its calls fail UNAVAILABLE) until rpc_channel_unref, and an ordinary rpc_channel_get
 *    replaces an ended direct channel too; a ref still held when the client is destroyed is freed
 *    with it (ASan: no leak, no use after free);
 *  - a refused connection fails its calls at once;
 *  - direct channels whose connections ended are closed by a later sweep, so a client that talked
 *    to many peers that are gone holds no descriptors for them.
 */
#include <check.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/pb.h"
#include "common/rpc.h"
#include "common/status.h"
#include "common/util.h"
#include "proto/gcs.pb-c.h"

#define TOKEN  "0123456789abcdef0123456789abcdef"
#define KV_SVC (&rayc__internal_kvgcs_service__descriptor)

static void echo_get(void *ctx, rpc_call_t *call, const ProtobufCMessage *m)
{
  (void)ctx;
  const Rayc__KVGetRequest *req = (const Rayc__KVGetRequest *)m;
  Rayc__KVGetReply r = RAYC__KVGET_REPLY__INIT;
  r.found = 1;
  r.value = req->key;
  rpc_reply(call, &r.base);
}

static const rpc_method_t methods[] = {{.service = KV_SVC, .method = "InternalKVGet", .handler = echo_get}};

/* A server on addr ("127.0.0.1:0" or a given port); *port is the port it listens on. */
static rpc_server_t *server_at(const char *addr, int *port)
{
  rpc_server_opts_t so = {.token = TOKEN};
  rpc_server_t *s = rpc_server_create(methods, ARRAY_LEN(methods), &so);
  ck_assert_ptr_nonnull(s);
  *port = rpc_server_listen(s, addr);
  ck_assert_int_gt(*port, 0);
  ck_assert_int_eq(rpc_server_start(s), 0);
  return s;
}

/* An echo of key over ch: 0 when it came back, else the error. */
static int echo(rpc_channel_t *ch, const char *key)
{
  Rayc__KVGetRequest req = RAYC__KVGET_REQUEST__INIT;
  req.ns = (char *)"d";
  req.key = (ProtobufCBinaryData){strlen(key), (uint8_t *)(uintptr_t)key};
  ProtobufCMessage *resp = NULL;
  int err = rpc_call_sync(ch, KV_SVC, "InternalKVGet", &req.base, 5000, &resp, NULL);
  if (err == 0) {
    Rayc__KVGetReply *r = (Rayc__KVGetReply *)resp;
    ck_assert(r->found && r->value.len == strlen(key) && memcmp(r->value.data, key, r->value.len) == 0);
    pb_free(resp);
  }
  return err;
}

static int open_fds(void)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

START_TEST(test_direct_calls_and_reused_port)
{
  log_init("test_rpc_direct", LOG_ERROR);
  int port, port2;
  rpc_server_t *s = server_at("127.0.0.1:0", &port);
  char target[64], addr[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *ch = rpc_channel_get_direct(c, target);
  for (int i = 0; i < 100; i++)
    ck_assert_int_eq(echo(ch, "first"), 0);
  ck_assert_ptr_eq(rpc_channel_get(c, target), ch); /* one channel per target, whichever kind */
  rpc_server_destroy(s);
  int err = echo(ch, "gone");
  ck_assert_msg(err == RAYC_EUNAVAILABLE, "a call after the server went: %s", rayc_err_name(err));
  /* Another server at the same address: the next get must not hand out the ended channel. */
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  s = server_at(addr, &port2);
  ck_assert_int_eq(port2, port);
  ch = rpc_channel_get_direct(c, target);
  ck_assert_int_eq(echo(ch, "second"), 0);
  rpc_client_destroy(c);
  rpc_server_destroy(s);
}
END_TEST

START_TEST(test_direct_ref_outlives_replacement)
{
  log_init("test_rpc_direct", LOG_ERROR);
  int port, port2;
  rpc_server_t *s = server_at("127.0.0.1:0", &port);
  char target[64], addr[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  rpc_channel_t *held = rpc_channel_get_direct(c, target);
  rpc_channel_ref(held);
  ck_assert_int_eq(echo(held, "first"), 0);
  rpc_server_destroy(s);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  s = server_at(addr, &port2);
  ck_assert_int_eq(port2, port);
  /* A get of either kind replaces the ended channel: the peer at that port is a new one. */
  rpc_channel_t *now = rpc_channel_get(c, target);
  ck_assert_ptr_ne(now, held);
  ck_assert_int_eq(echo(now, "second"), 0);
  int err = echo(held, "stale"); /* still a channel (the ref), one whose connection ended */
  ck_assert_msg(err == RAYC_EUNAVAILABLE, "a call on the replaced channel: %s", rayc_err_name(err));
  rpc_channel_unref(held); /* the last hold: freed */
  rpc_channel_ref(now);    /* held at destroy: the client frees it */
  rpc_client_destroy(c);
  rpc_server_destroy(s);
}
END_TEST

START_TEST(test_direct_refused)
{
  log_init("test_rpc_direct", LOG_ERROR);
  char target[64];
  snprintf(target, sizeof(target), "127.0.0.1:%d", closed_port());
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  int err = echo(rpc_channel_get_direct(c, target), "x");
  ck_assert_msg(err == RAYC_EUNAVAILABLE, "a call to a closed port: %s", rayc_err_name(err));
  rpc_client_destroy(c);
}
END_TEST

START_TEST(test_direct_swept)
{
  log_init("test_rpc_direct", LOG_ERROR);
  enum { N = 70 }; /* more than the client makes between two sweeps of the whole list (64) */
  int port;
  rpc_client_t *c = rpc_client_create(&(rpc_client_opts_t){.token = TOKEN});
  char target[64];
  rpc_server_destroy(server_at("127.0.0.1:0", &port)); /* gRPC's own descriptors opened */
  int fds0 = open_fds();
  for (int i = 0; i < N; i++) {
    rpc_server_t *s = server_at("127.0.0.1:0", &port);
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    ck_assert_int_eq(echo(rpc_channel_get_direct(c, target), "up"), 0);
    rpc_server_destroy(s); /* the peer goes away for good */
  }
  int fds1 = open_fds();
  rpc_client_destroy(c);
  /* Each ended channel that was kept would hold at least its connection's descriptor: N of them.
   * The sweep at the 65th closed the 64 before it. */
  ck_assert_msg(fds1 - fds0 < N / 2, "%d descriptors more after talking to %d peers that went away", fds1 - fds0, N);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("rpc_direct");
  TCase *t = tcase_create("direct");
  tcase_set_timeout(t, 60);
  tcase_add_test(t, test_direct_calls_and_reused_port);
  tcase_add_test(t, test_direct_ref_outlives_replacement);
  tcase_add_test(t, test_direct_refused);
  tcase_add_test(t, test_direct_swept);
  suite_add_tcase(s, t);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
