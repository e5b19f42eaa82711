/* Unit tests for common/local.c: a server on a libuv loop in its own thread, driven by clients on
 * the test thread that use the blocking frame helpers. The loop thread only records what happened
 * (under a mutex); assertions run on the test thread. Commands reach the loop by uv_async. */
#include "common/frame.h"
#include "common/local.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CMD_NONE, CMD_DESTROY };
static const char memfd_text[] = "from the server";

typedef struct srv {
  uv_loop_t loop;
  uv_async_t async;
  local_server_t *s;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char dir[64], path[128];
  int memfd;
  int cmd;
  /* recorded by the loop thread */
  int nconnect, nclose, nframes, destroyed;
  int close_at_destroy_return; /* on_close count right after local_server_destroy returned */
  int send_after_close;        /* local_conn_send's result after closing in on_frame */
  int flood_sent, flood_rc;
  pid_t peer_pid;
} srv_t;

static srv_t S;

static void srv_signal(srv_t *t)
{
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

/* ---- callbacks (loop thread) ---- */

static void on_connect(void *ctx, local_conn_t *c)
{
  srv_t *t = ctx;
  int *per_conn = xcalloc(1, sizeof(int)); /* freed in on_close: ASan finds a missed on_close */
  local_conn_set_data(c, per_conn);
  pthread_mutex_lock(&t->mu);
  t->nconnect++;
  t->peer_pid = local_conn_pid(c);
  srv_signal(t);
}

static void on_close(void *ctx, local_conn_t *c)
{
  srv_t *t = ctx;
  free(local_conn_data(c));
  local_conn_set_data(c, NULL);
  pthread_mutex_lock(&t->mu);
  t->nclose++;
  srv_signal(t);
}

static void do_flood(srv_t *t, local_conn_t *c)
{
  size_t n = 256 << 10;
  uint8_t *buf = xcalloc(1, n);
  int rc = 0, sent = 0;
  while (rc == 0 && sent < 1000)
    if ((rc = local_conn_send(c, buf, n, -1)) == 0)
      sent++;
  free(buf);
  pthread_mutex_lock(&t->mu);
  t->flood_sent = sent;
  t->flood_rc = rc;
  srv_signal(t);
}

static void do_many(local_conn_t *c, int count)
{
  size_t n = 64 << 10;
  uint8_t *buf = xmalloc(n);
  for (int i = 0; i < count; i++) {
    memset(buf, i & 0xff, n);
    local_conn_send(c, buf, n, -1);
  }
  free(buf);
}

static void do_msg(srv_t *t, local_conn_t *c)
{
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__StoreConnectReply r = RAYC__STORE_CONNECT_REPLY__INIT;
  r.region_size = 4096;
  m.seq = 99;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT_REPLY;
  m.store_connect_reply = &r;
  local_conn_send_msg(c, &m.base, t->memfd);
}

static void do_close(srv_t *t, local_conn_t *c)
{
  local_conn_close(c);
  local_conn_close(c); /* idempotent */
  int rc = local_conn_send(c, "late", 4, -1);
  *(int *)local_conn_data(c) += 1; /* still valid until on_close */
  pthread_mutex_lock(&t->mu);
  t->send_after_close = rc;
  srv_signal(t);
}

/* Queues more than the socket takes, then hangs up once it is all written. */
static void do_bye(srv_t *t, local_conn_t *c)
{
  do_many(c, 200);
  local_conn_close_after_flush(c);
  int rc = local_conn_send(c, "late", 4, -1);
  pthread_mutex_lock(&t->mu);
  t->send_after_close = rc;
  srv_signal(t);
}

/* Destroys the server from inside a callback; a second destroy must be a no-op. */
static void do_destroy(srv_t *t)
{
  local_server_destroy(t->s);
  local_server_destroy(t->s);
  t->s = NULL; /* freed by the close callbacks */
}

static void on_frame(void *ctx, local_conn_t *c, const uint8_t *p, size_t len)
{
  srv_t *t = ctx;
  pthread_mutex_lock(&t->mu);
  t->nframes++;
  srv_signal(t);
  if (len == 2 && memcmp(p, "fd", 2) == 0)
    local_conn_send(c, "fd", 2, t->memfd);
  else if (len == 3 && memcmp(p, "msg", 3) == 0)
    do_msg(t, c);
  else if (len == 5 && memcmp(p, "close", 5) == 0)
    do_close(t, c);
  else if (len == 5 && memcmp(p, "flood", 5) == 0)
    do_flood(t, c);
  else if (len == 4 && memcmp(p, "many", 4) == 0)
    do_many(c, 200);
  else if (len == 3 && memcmp(p, "bye", 3) == 0)
    do_bye(t, c);
  else if (len == 7 && memcmp(p, "destroy", 7) == 0)
    do_destroy(t);
  else
    local_conn_send(c, p, len, -1);
}

static void on_async(uv_async_t *a)
{
  srv_t *t = a->data;
  pthread_mutex_lock(&t->mu);
  int cmd = t->cmd;
  t->cmd = CMD_NONE;
  pthread_mutex_unlock(&t->mu);
  if (cmd != CMD_DESTROY)
    return;
  local_server_destroy(t->s);
  pthread_mutex_lock(&t->mu);
  t->close_at_destroy_return = t->nclose;
  t->destroyed = 1;
  srv_signal(t);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
  srv_t *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---- harness (test thread) ---- */

static local_server_t *srv_create(srv_t *t, int *err)
{
  local_server_cbs_t cbs = {on_connect, on_frame, on_close};
  return local_server_create(&t->loop, t->path, &cbs, t, err);
}

/* Makes the temp dir and loop; the server listens at dir/sub/sock unless the test changes path. */
static void srv_init(srv_t *t)
{
  memset(t, 0, sizeof(*t));
  strcpy(t->dir, "/tmp/rayc-test-local-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(t->dir));
  snprintf(t->path, sizeof(t->path), "%s/sub/sock", t->dir);
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  uv_loop_init(&t->loop);
  uv_async_init(&t->loop, &t->async, on_async);
  t->async.data = t;
  t->memfd = memfd_create("rayc-test", MFD_CLOEXEC);
  ck_assert_int_eq(pwrite(t->memfd, memfd_text, sizeof(memfd_text), 0), (ssize_t)sizeof(memfd_text));
}

static void srv_run(srv_t *t)
{
  pthread_create(&t->th, NULL, loop_main, t);
}

static void srv_start(srv_t *t)
{
  srv_init(t);
  int err = 0;
  t->s = srv_create(t, &err);
  ck_assert_msg(t->s != NULL, "local_server_create: %s", strerror(-err));
  srv_run(t);
}

static void srv_command(srv_t *t, int cmd)
{
  pthread_mutex_lock(&t->mu);
  t->cmd = cmd;
  pthread_mutex_unlock(&t->mu);
  uv_async_send(&t->async);
}

/* Waits (up to 3 s) until *field >= want; returns its value. */
static int srv_wait(srv_t *t, const int *field, int want)
{
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 3;
  pthread_mutex_lock(&t->mu);
  while (*field < want && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
    ;
  int v = *field;
  pthread_mutex_unlock(&t->mu);
  return v;
}

static void srv_stop(srv_t *t)
{
  if (!t->destroyed)
    srv_command(t, CMD_DESTROY);
  pthread_join(t->th, NULL);
  ck_assert_int_eq(uv_loop_close(&t->loop), 0); /* every handle was closed */
  close(t->memfd);
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/sub", t->dir);
  rmdir(sub);
  ck_assert_int_eq(rmdir(t->dir), 0);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
}

static int client_connect(const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  return fd;
}

/* Sends text and checks that it comes back. */
static void client_echo(int fd, const char *text)
{
  ck_assert_int_eq(frame_send(fd, text, strlen(text), -1), 0);
  void *p;
  size_t len;
  ck_assert_int_eq(frame_recv(fd, &p, &len, NULL), 0);
  ck_assert_uint_eq(len, strlen(text));
  ck_assert_mem_eq(p, text, len);
  free(p);
}

/* Reads until the server hangs up; returns the number of frames read first. */
static int client_drain_to_eof(int fd)
{
  void *p;
  size_t len;
  int n = 0, rc;
  while ((rc = frame_recv(fd, &p, &len, NULL)) == 0) {
    free(p);
    n++;
  }
  ck_assert(rc == RAYC_EUNAVAILABLE || rc == -ECONNRESET);
  return n;
}

/* ---- tests ---- */

START_TEST(test_echo_sizes)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(srv_wait(&S, &S.nconnect, 1), 1);
  ck_assert_int_eq(S.peer_pid, getpid());
  static const size_t sizes[] = {0, 1, 5, 4096, 65537, 300000, 2 << 20};
  for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
    uint8_t *buf = xmalloc(sizes[i] + 1);
    for (size_t k = 0; k < sizes[i]; k++)
      buf[k] = (uint8_t)(k * 13 + i);
    ck_assert_int_eq(frame_send(fd, buf, sizes[i], -1), 0);
    void *p;
    size_t len;
    ck_assert_int_eq(frame_recv(fd, &p, &len, NULL), 0);
    ck_assert_uint_eq(len, sizes[i]);
    ck_assert(len == 0 || memcmp(p, buf, len) == 0);
    free(p);
    free(buf);
  }
  for (int i = 0; i < 100; i++)
    client_echo(fd, "ping");
  close(fd);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  srv_stop(&S);
}
END_TEST

START_TEST(test_pipelined_frames)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  /* 50 frames in one write: the server's reader splits them. */
  uint8_t buf[50 * 8];
  for (int i = 0; i < 50; i++) {
    char digits[5];
    snprintf(digits, sizeof(digits), "%04d", i);
    memcpy(buf + 8 * i, "\x04\x00\x00\x00", 4);
    memcpy(buf + 8 * i + 4, digits, 4);
  }
  ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
  for (int i = 0; i < 50; i++) {
    void *p;
    size_t len;
    char want[5];
    snprintf(want, sizeof(want), "%04d", i);
    ck_assert_int_eq(frame_recv(fd, &p, &len, NULL), 0);
    ck_assert_mem_eq(p, want, 4);
    free(p);
  }
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_fd_passing)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "fd", 2, -1), 0);
  void *p;
  size_t len;
  int got = -1;
  ck_assert_int_eq(frame_recv(fd, &p, &len, &got), 0);
  free(p);
  ck_assert_int_ge(got, 0);
  char buf[sizeof(memfd_text)];
  ck_assert_int_eq(pread(got, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
  ck_assert_str_eq(buf, memfd_text);
  close(got);

  /* The same through local_conn_send_msg; the next plain frame carries no fd. */
  ck_assert_int_eq(frame_send(fd, "msg", 3, -1), 0);
  ck_assert_int_eq(frame_send(fd, "after", 5, -1), 0);
  ProtobufCMessage *m;
  got = -1;
  ck_assert_int_eq(frame_recv_msg(fd, &rayc__local_message__descriptor, &m, &got), 0);
  ck_assert_uint_eq(((Rayc__LocalMessage *)m)->seq, 99);
  ck_assert_uint_eq(((Rayc__LocalMessage *)m)->store_connect_reply->region_size, 4096);
  pb_free(m);
  ck_assert_int_ge(got, 0);
  close(got);
  got = 0;
  ck_assert_int_eq(frame_recv(fd, &p, &len, &got), 0);
  ck_assert_int_eq(got, -1);
  free(p);
  close(fd);
  srv_stop(&S);
}
END_TEST

/* A client sending fds to the server: they are closed, the connection keeps working. */
START_TEST(test_client_fds_closed)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  client_echo(fd, "warm up");
  int pfd[2];
  ck_assert_int_eq(pipe(pfd), 0);
  ck_assert_int_eq(frame_send(fd, "with fd", 7, pfd[0]), 0);
  close(pfd[0]);
  void *p;
  size_t len;
  ck_assert_int_eq(frame_recv(fd, &p, &len, NULL), 0);
  free(p);
  /* The server closed its copy of the read end: our write end sees EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  ck_assert_int_eq(write(pfd[1], "x", 1), -1);
  ck_assert_int_eq(errno, EPIPE);
  close(pfd[1]);
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_garbage_length)
{
  srv_start(&S);
  int bad = client_connect(S.path), good = client_connect(S.path);
  client_echo(good, "before");
  ck_assert_int_eq(write(bad,
                         "\xff\xff\xff\xff"
                         "junk",
                         8),
                   8);
  ck_assert_int_eq(client_drain_to_eof(bad), 0);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  client_echo(good, "after");
  int third = client_connect(S.path);
  client_echo(third, "new client");
  close(bad);
  close(good);
  close(third);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 3), 3);
  srv_stop(&S);
}
END_TEST

START_TEST(test_disconnect_mid_frame)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  client_echo(fd, "hello");
  ck_assert_int_eq(write(fd,
                         "\x64\x00\x00\x00"
                         "0123456789",
                         14),
                   14); /* 10 of 100 bytes */
  close(fd);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  /* A peer that dies with unread replies (a socket error on the server side). */
  fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "many", 4, -1), 0);
  usleep(20000);
  close(fd);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 2), 2);
  int other = client_connect(S.path);
  client_echo(other, "still serving");
  close(other);
  srv_stop(&S);
}
END_TEST

START_TEST(test_socket_modes)
{
  srv_start(&S);
  struct stat st;
  ck_assert_int_eq(stat(S.path, &st), 0);
  ck_assert(S_ISSOCK(st.st_mode));
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  char sub[160];
  snprintf(sub, sizeof(sub), "%s/sub", S.dir);
  ck_assert_int_eq(stat(sub, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0700);
  srv_stop(&S);
  ck_assert_int_ne(access(S.path, F_OK), 0); /* destroy unlinked the socket */
}
END_TEST

START_TEST(test_stale_file_replaced)
{
  srv_init(&S);
  snprintf(S.path, sizeof(S.path), "%s/sock", S.dir);
  FILE *f = fopen(S.path, "w");
  fputs("stale", f);
  fclose(f);
  int err = 0;
  S.s = srv_create(&S, &err);
  ck_assert_ptr_nonnull(S.s);
  srv_run(&S);
  int fd = client_connect(S.path);
  client_echo(fd, "works");
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_bad_path)
{
  srv_init(&S);
  char longpath[200];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0';
  strcpy(S.path, "");
  local_server_cbs_t cbs = {NULL, on_frame, NULL};
  int err = 0;
  ck_assert_ptr_null(local_server_create(&S.loop, longpath, &cbs, &S, &err));
  ck_assert_int_eq(err, -ENAMETOOLONG);
  ck_assert_ptr_null(local_server_create(&S.loop, "/proc/rayc-no/sock", &cbs, &S, &err));
  ck_assert_int_lt(err, 0);
  S.destroyed = 1;
  uv_close((uv_handle_t *)&S.async, NULL);
  srv_run(&S);
  srv_stop(&S);
}
END_TEST

START_TEST(test_close_in_on_frame)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "close", 5, -1), 0);
  ck_assert_int_eq(client_drain_to_eof(fd), 0);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  ck_assert_int_eq(S.send_after_close, RAYC_EUNAVAILABLE);
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_slow_consumer_dropped)
{
  srv_init(&S);
  int err;
  S.s = srv_create(&S, &err);
  local_server_set_output_limit(S.s, 4 << 20);
  srv_run(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "flood", 5, -1), 0);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  ck_assert_int_eq(S.flood_rc, RAYC_EUNAVAILABLE);
  ck_assert_int_gt(S.flood_sent, 4);
  ck_assert_int_lt(S.flood_sent, 1000);
  int n = client_drain_to_eof(fd);
  ck_assert_int_le(n, S.flood_sent);
  close(fd);
  srv_stop(&S);
}
END_TEST

/* 200 x 64 KiB replies: far more than the socket buffer, so the writer waits for UV_WRITABLE. */
START_TEST(test_large_output_drained)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "many", 4, -1), 0);
  usleep(10000);
  for (int i = 0; i < 200; i++) {
    void *p;
    size_t len;
    ck_assert_int_eq(frame_recv(fd, &p, &len, NULL), 0);
    ck_assert_uint_eq(len, 64 << 10);
    ck_assert_int_eq(((uint8_t *)p)[len - 1], i & 0xff);
    free(p);
  }
  client_echo(fd, "done");
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_close_after_flush)
{
  srv_start(&S);
  int fd = client_connect(S.path);
  ck_assert_int_eq(frame_send(fd, "bye", 3, -1), 0);
  ck_assert_int_eq(frame_send(fd, "ignored", 7, -1), 0);
  usleep(10000);
  ck_assert_int_eq(client_drain_to_eof(fd), 200);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 1), 1);
  ck_assert_int_eq(S.send_after_close, RAYC_EUNAVAILABLE);
  ck_assert_int_eq(S.nframes, 1);
  close(fd);
  srv_stop(&S);
}
END_TEST

START_TEST(test_destroy_with_clients)
{
  srv_start(&S);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = client_connect(S.path);
    client_echo(fds[i], "hi");
  }
  /* One connection is already closing when destroy runs. */
  ck_assert_int_eq(frame_send(fds[0], "close", 5, -1), 0);
  ck_assert_int_eq(srv_wait(&S, &S.nframes, 4), 4);
  srv_command(&S, CMD_DESTROY);
  ck_assert_int_eq(srv_wait(&S, &S.destroyed, 1), 1);
  ck_assert_int_eq(S.close_at_destroy_return, 3); /* on_close ran synchronously */
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(client_drain_to_eof(fds[i]), 0);
    close(fds[i]);
  }
  srv_stop(&S);
  ck_assert_int_eq(S.nclose, 3); /* exactly once each */
}
END_TEST

START_TEST(test_destroy_in_on_frame)
{
  srv_start(&S);
  int a = client_connect(S.path), b = client_connect(S.path);
  client_echo(b, "b");
  ck_assert_int_eq(frame_send(a, "destroy", 7, -1), 0);
  ck_assert_int_eq(client_drain_to_eof(a), 0);
  ck_assert_int_eq(client_drain_to_eof(b), 0);
  ck_assert_int_eq(srv_wait(&S, &S.nclose, 2), 2);
  ck_assert_int_ne(access(S.path, F_OK), 0);
  close(a);
  close(b);
  srv_stop(&S);
}
END_TEST

/* As root, a peer that switched to another uid is refused. */
START_TEST(test_other_uid_refused)
{
  if (geteuid() != 0)
    return;
  srv_init(&S);
  ck_assert_int_eq(chmod(S.dir, 0755), 0);
  snprintf(S.path, sizeof(S.path), "%s/sock", S.dir);
  int err;
  S.s = srv_create(&S, &err);
  ck_assert_int_eq(chmod(S.path, 0777), 0);
  srv_run(&S);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(2);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, S.path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
      _exit(3);
    char c;
    ssize_t n = read(fd, &c, 1); /* the server hangs up at once */
    _exit(n <= 0 ? 0 : 4);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  ck_assert_int_eq(S.nconnect, 0);
  int fd = client_connect(S.path);
  client_echo(fd, "root is fine");
  close(fd);
  srv_stop(&S);
}
END_TEST

static Suite *local_suite(void)
{
  Suite *s = suite_create("local");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_echo_sizes);
  tcase_add_test(tc, test_pipelined_frames);
  tcase_add_test(tc, test_fd_passing);
  tcase_add_test(tc, test_client_fds_closed);
  tcase_add_test(tc, test_garbage_length);
  tcase_add_test(tc, test_disconnect_mid_frame);
  tcase_add_test(tc, test_socket_modes);
  tcase_add_test(tc, test_stale_file_replaced);
  tcase_add_test(tc, test_bad_path);
  tcase_add_test(tc, test_close_in_on_frame);
  tcase_add_test(tc, test_slow_consumer_dropped);
  tcase_add_test(tc, test_large_output_drained);
  tcase_add_test(tc, test_close_after_flush);
  tcase_add_test(tc, test_destroy_with_clients);
  tcase_add_test(tc, test_destroy_in_on_frame);
  tcase_add_test(tc, test_other_uid_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(local_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
