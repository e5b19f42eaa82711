/*
 * Peers that misbehave on the daemons' sockets (issue 16), against a real head node started with
 * small limits (RAYC_LOCAL_MAX_CONNECTIONS=200, RAYC_LOCAL_FRAME_STALL_MS=1000):
 *
 *  - on the raylet's and the store's Unix sockets: a 4 GiB length prefix is dropped at once; a
 *    frame of garbage is dropped; half a frame and then silence is dropped after the stall limit;
 *    2,000 connections at once: the daemon keeps 200 and closes the rest, logs the limit once,
 *    and its fd count comes back down once they close;
 *  - on the GCS's TCP port: garbage instead of HTTP/2 is dropped, and 1,000 silent TCP connections
 *    at once do not stop it from answering;
 *  - afterwards tasks still run, and every daemon is alive.
 */
#include "itest.h"
#include "itest_sh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

enum { MAX_CONNS = 200, STALL_MS = 1000, MANY = 2000 };

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sock_path(char *out, size_t n, const char *name)
{
  snprintf(out, n, "%s/session_latest/sockets/%s", it_temp, name);
}

static int connect_unix(const char *path)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* 1 when the peer closed fd within ms (EOF or reset); what it sends first is drained. */
static int closed_within(int fd, int ms)
{
  int64_t end = mono_ms() + ms;
  for (;;) {
    int left = (int)(end - mono_ms());
    if (left < 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0)
      continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      return 1;
  }
}

static void send_all(int fd, const void *p, size_t n)
{
  ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static const char *const local_sockets[] = {"raylet", "store"};

START_TEST(oversize_prefix_and_garbage_are_dropped)
{
  for (size_t i = 0; i < ARRAY_LEN(local_sockets); i++) {
    char path[700];
    sock_path(path, sizeof(path), local_sockets[i]);
    int fd = connect_unix(path);
    ck_assert_int_ge(fd, 0);
    const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff}; /* a 4 GiB frame */
    send_all(fd, huge, sizeof(huge));
    ck_assert_msg(closed_within(fd, 2000), "%s kept a connection that announced a 4 GiB frame", local_sockets[i]);
    close(fd);

    fd = connect_unix(path);
    uint8_t frame[4 + 64] = {64, 0, 0, 0};
    for (int k = 4; k < (int)sizeof(frame); k++)
      frame[k] = (uint8_t)(0xf7 ^ (k * 37)); /* not a LocalMessage */
    send_all(fd, frame, sizeof(frame));
    ck_assert_msg(closed_within(fd, 2000), "%s kept a connection that sent a frame of garbage", local_sockets[i]);
    close(fd);
  }
}
END_TEST

START_TEST(half_a_frame_then_silence_is_dropped)
{
  for (size_t i = 0; i < ARRAY_LEN(local_sockets); i++) {
    char path[700];
    sock_path(path, sizeof(path), local_sockets[i]);
    int fd = connect_unix(path);
    ck_assert_int_ge(fd, 0);
    uint8_t part[4 + 10] = {100, 0, 0, 0}; /* 10 of 100 bytes */
    int64_t t0 = mono_ms();
    send_all(fd, part, sizeof(part));
    ck_assert_msg(closed_within(fd, STALL_MS + 5000), "%s kept a connection stalled mid-frame", local_sockets[i]);
    int64_t ms = mono_ms() - t0;
    ck_assert_msg(ms >= STALL_MS - 100, "%s dropped a partial frame after %lld ms, before the limit", local_sockets[i],
                  (long long)ms);
    printf("limits: %s dropped half a frame after %lld ms of silence\n", local_sockets[i], (long long)ms);
    close(fd);
  }
}
END_TEST

/* Waits (up to ms) until at least want of fds[0..n) were closed by the peer, then a little more;
 * returns how many were (each is marked -2 and closed here). */
static int count_closed(int *fds, int n, int want, int ms)
{
  static struct pollfd p[MANY];
  int closed = 0;
  int64_t end = mono_ms() + ms, settle = 0;
  while (mono_ms() < end && (!settle || mono_ms() < settle)) {
    int np = 0;
    for (int k = 0; k < n; k++)
      if (fds[k] >= 0)
        p[np++] = (struct pollfd){.fd = fds[k], .events = POLLIN};
    if (poll(p, (nfds_t)np, 100) < 0)
      break;
    for (int j = 0; j < np; j++) {
      char buf[256];
      if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t r = recv(p[j].fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
        continue;
      for (int k = 0; k < n; k++)
        if (fds[k] == p[j].fd) {
          close(fds[k]);
          fds[k] = -2;
        }
      closed++;
    }
    if (closed >= want && !settle)
      settle = mono_ms() + 500; /* the ones kept must stay open */
  }
  return closed;
}

static int daemon_fds(const char *name)
{
  char *out = NULL;
  ck_assert_int_eq(it_sh(&out, "ls /proc/$(cat %s/session_latest/pids/%s.pid)/fd | wc -l", it_temp, name), 0);
  int n = atoi(out);
  free(out);
  return n;
}

START_TEST(thousands_of_connections)
{
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < MANY + 100 && rl.rlim_max >= MANY + 100) {
    rl.rlim_cur = MANY + 100;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ck_assert_msg(rl.rlim_cur >= MANY + 100, "RLIMIT_NOFILE %llu is too low for this test",
                (unsigned long long)rl.rlim_cur);
  static int fds[MANY];
  for (size_t i = 0; i < ARRAY_LEN(local_sockets); i++) {
    char path[700];
    sock_path(path, sizeof(path), local_sockets[i]);
    int before = daemon_fds(local_sockets[i]);
    int made = 0;
    for (int k = 0; k < MANY; k++)
      made += (fds[k] = connect_unix(path)) >= 0;
    /* connect() succeeds from the listen backlog before the daemon accepts; it then keeps
     * MAX_CONNS and closes the rest */
    int closed = count_closed(fds, MANY, MANY - MAX_CONNS, 20000);
    printf("limits: %s: %d of %d connections made, %d closed by the daemon (limit %d)\n", local_sockets[i], made, MANY,
           closed, MAX_CONNS);
    ck_assert_int_ge(closed, MANY - MAX_CONNS - 50);
    ck_assert_int_le(made - closed, MAX_CONNS);
    for (int k = 0; k < MANY; k++)
      if (fds[k] >= 0)
        close(fds[k]);
    int after = -1;
    for (int tries = 0; tries < 100 && (after = daemon_fds(local_sockets[i])) > before + 5; tries++)
      usleep(100000);
    ck_assert_msg(after <= before + 5, "%s holds %d fds after the connections closed (%d before)", local_sockets[i],
                  after, before);
    ck_assert_int_eq(it_sh(NULL, "test $(grep -c 'local-max-connections' %s/session_latest/logs/%s.log) = 1", it_temp,
                           local_sockets[i]),
                     0);
  }
}
END_TEST

static int connect_tcp(const char *hostport)
{
  char host[64];
  int port = 0;
  ck_assert_int_eq(sscanf(hostport, "%63[^:]:%d", host, &port), 2);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, host, &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

START_TEST(gcs_port_survives_garbage_and_crowds)
{
  int fd = connect_tcp(it_address);
  ck_assert_int_ge(fd, 0);
  char junk[1024];
  for (size_t k = 0; k < sizeof(junk); k++)
    junk[k] = (char)(k * 131 + 7);
  send_all(fd, junk, sizeof(junk));
  ck_assert_msg(closed_within(fd, 5000), "the GCS kept a TCP connection that sent garbage");
  close(fd);

  static int fds[1000];
  int made = 0;
  for (int k = 0; k < 1000; k++)
    made += (fds[k] = connect_tcp(it_address)) >= 0;
  char *out = NULL;
  int rc = it_sh(&out, "%s/bin/rayc status --address %s", it_build, it_address);
  ck_assert_msg(rc == 0 && strstr(out, "1 node"), "rayc status with %d idle TCP connections open: %s", made,
                out ? out : "");
  free(out);
  for (int k = 0; k < 1000; k++)
    if (fds[k] >= 0)
      close(fds[k]);
  printf("limits: the GCS answered with %d silent TCP connections open\n", made);
}
END_TEST

START_TEST(tasks_still_run)
{
  it_connect();
  int64_t x = 20;
  rayc_arg a = RAYC_ARG_VAL(&x, sizeof(x));
  rayc_ref r;
  ck_assert_int_eq(rayc_remote("add1", &a, 1, NULL, &r), 0);
  int rc;
  int64_t v = it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0 && v == 21, "add1(20): %lld (%s)", (long long)v, rayc_last_error());
  rayc_ref_release(&r);
  rayc_shutdown();
}
END_TEST

int main(void)
{
  unsetenv("RAYC_TOKEN");
  unsetenv("RAYC_TEMP_DIR");
  char v[32];
  snprintf(v, sizeof(v), "%d", MAX_CONNS);
  setenv("RAYC_LOCAL_MAX_CONNECTIONS", v, 1);
  snprintf(v, sizeof(v), "%d", STALL_MS);
  setenv("RAYC_LOCAL_FRAME_STALL_MS", v, 1);
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 128M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  unsetenv("RAYC_LOCAL_MAX_CONNECTIONS");
  unsetenv("RAYC_LOCAL_FRAME_STALL_MS");
  Suite *s = suite_create("limits");
  TCase *tc = tcase_create("limits");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, oversize_prefix_and_garbage_are_dropped);
  tcase_add_test(tc, half_a_frame_then_silence_is_dropped);
  tcase_add_test(tc, thousands_of_connections);
  tcase_add_test(tc, gcs_port_survives_garbage_and_crowds);
  tcase_add_test(tc, tasks_still_run);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  failed += it_stop();
  return failed ? 1 : 0;
}
