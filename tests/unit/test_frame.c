/* Unit tests for common/frame.c: blocking frames over socketpairs, fd passing, the incremental
 * reader, and malformed input. */
#include "common/frame.h"
#include "common/pb.h"
#include "common/status.h"
#include "common/util.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 100, 4095, 4096, 4097, 65535, 65536, 200000, 1 << 20, 3 << 20};

static void fill(uint8_t *p, size_t n, size_t seed)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static int check_fill(const uint8_t *p, size_t n, size_t seed)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(i * 31 + seed * 7 + (i >> 8)))
      return 0;
  return 1;
}

/* Header + payload of one frame; free(). */
static uint8_t *encode(size_t len, size_t seed, size_t *out_len)
{
  uint8_t *b = xmalloc(len + FRAME_HEADER);
  for (int i = 0; i < FRAME_HEADER; i++)
    b[i] = (uint8_t)(len >> (8 * i));
  fill(b + FRAME_HEADER, len, seed);
  *out_len = len + FRAME_HEADER;
  return b;
}

static int count_fds(void)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void make_pair(int sv[2])
{
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- senders running on another thread ---- */

typedef struct sender {
  int sock;
  int byte_by_byte;
  int rc;
} sender_t;

static void *send_all_sizes(void *arg)
{
  sender_t *s = arg;
  for (size_t i = 0; i < ARRAY_LEN(sizes) && s->rc == 0; i++) {
    size_t n;
    uint8_t *b = encode(sizes[i], i, &n);
    if (!s->byte_by_byte) {
      s->rc = frame_send(s->sock, b + FRAME_HEADER, sizes[i], -1);
    } else {
      size_t step = sizes[i] > 70000 ? 4093 : 1; /* keep big frames fast */
      for (size_t off = 0; off < n && s->rc == 0; off += step) {
        size_t k = n - off < step ? n - off : step;
        if (write(s->sock, b + off, k) != (ssize_t)k)
          s->rc = -errno;
        if (off % 97 == 0)
          usleep(10);
      }
    }
    free(b);
  }
  return NULL;
}

static void recv_all_sizes(int byte_by_byte)
{
  int sv[2];
  make_pair(sv);
  sender_t s = {sv[0], byte_by_byte, 0};
  pthread_t th;
  pthread_create(&th, NULL, send_all_sizes, &s);
  for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
    void *p = NULL;
    size_t len = 99;
    int fd = 5;
    ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
    ck_assert_uint_eq(len, sizes[i]);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fd, -1);
    ck_assert(check_fill(p, len, i));
    free(p);
  }
  pthread_join(th, NULL);
  ck_assert_int_eq(s.rc, 0);
  close(sv[0]);
  void *p;
  size_t len;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EUNAVAILABLE);
  close(sv[1]);
}

START_TEST(test_round_trip_sizes)
{
  recv_all_sizes(0);
}
END_TEST

START_TEST(test_round_trip_partial_writes)
{
  recv_all_sizes(1);
}
END_TEST

START_TEST(test_pass_pipe_fd)
{
  int sv[2], pfd[2];
  make_pair(sv);
  ck_assert_int_eq(pipe(pfd), 0);
  ck_assert_int_eq(frame_send(sv[0], "no fd", 5, -1), 0);
  ck_assert_int_eq(frame_send(sv[0], "pipe", 4, pfd[1]), 0);
  ck_assert_int_eq(frame_send(sv[0], "", 0, -1), 0);
  close(pfd[1]); /* the sender keeps ownership of its fd */

  void *p;
  size_t len;
  int fd;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
  ck_assert_int_eq(fd, -1);
  ck_assert_mem_eq(p, "no fd", 5);
  free(p);
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
  ck_assert_uint_eq(len, 4);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  free(p);
  ck_assert_int_eq(write(fd, "hello", 5), 5);
  close(fd);
  char buf[8] = {0};
  ck_assert_int_eq(read(pfd[0], buf, sizeof(buf)), 5);
  ck_assert_str_eq(buf, "hello");
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(fd, -1);
  free(p);
  close(pfd[0]);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_pass_memfd)
{
  int sv[2];
  make_pair(sv);
  int mfd = memfd_create("rayc-test", MFD_CLOEXEC);
  ck_assert_int_ge(mfd, 0);
  ck_assert_int_eq(ftruncate(mfd, 4096), 0);
  char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  strcpy(m, "shared bytes");
  ck_assert_int_eq(frame_send(sv[0], "region", 6, mfd), 0);
  close(mfd);

  void *p;
  size_t len;
  int fd;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
  free(p);
  char *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ck_assert_ptr_ne(r, MAP_FAILED);
  ck_assert_str_eq(r, "shared bytes");
  strcpy(r, "written back");
  ck_assert_str_eq(m, "written back");
  munmap(r, 4096);
  munmap(m, 4096);
  close(fd);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* A fd that arrives when the caller does not want one is closed, not leaked; extra fds sent with
 * one message are closed too. */
START_TEST(test_unwanted_fds_closed)
{
  int sv[2], pfd[2];
  make_pair(sv);
  ck_assert_int_eq(pipe(pfd), 0);
  int before = count_fds();
  ck_assert_int_eq(frame_send(sv[0], "x", 1, pfd[0]), 0);
  void *p;
  size_t len;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), 0);
  free(p);
  ck_assert_int_eq(count_fds(), before);

  /* Three fds on one sendmsg: the first is kept, two are closed. */
  uint8_t hdr[5] = {1, 0, 0, 0, 'y'};
  struct iovec iov = {hdr, sizeof(hdr)};
  union {
    struct cmsghdr a;
    char buf[CMSG_SPACE(3 * sizeof(int))];
  } cm;
  memset(&cm, 0, sizeof(cm));
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  int fds[3] = {pfd[0], pfd[1], pfd[0]};
  memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ck_assert_int_eq(sendmsg(sv[0], &msg, 0), 5);
  int fd = -1;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, &fd), 0);
  free(p);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(count_fds(), before + 1);
  close(fd);
  close(pfd[0]);
  close(pfd[1]);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_oversize_rejected)
{
  int sv[2];
  make_pair(sv);
  uint8_t dummy[1];
  ck_assert_int_eq(frame_send(sv[0], dummy, (size_t)FRAME_MAX + 1, -1), RAYC_EPROTOCOL);
  uint32_t big = (uint32_t)FRAME_MAX + 1;
  uint8_t hdr[4] = {(uint8_t)big, (uint8_t)(big >> 8), (uint8_t)(big >> 16), (uint8_t)(big >> 24)};
  ck_assert_int_eq(write(sv[0], hdr, 4), 4);
  void *p = NULL;
  size_t len;
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EPROTOCOL);
  ck_assert_ptr_null(p);
  uint8_t ff[4] = {0xff, 0xff, 0xff, 0xff};
  ck_assert_int_eq(write(sv[0], ff, 4), 4);
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EPROTOCOL);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

START_TEST(test_eof)
{
  int sv[2];
  void *p;
  size_t len;
  make_pair(sv);
  close(sv[0]);
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EUNAVAILABLE);
  close(sv[1]);

  /* EOF inside the header and inside the payload. */
  make_pair(sv);
  ck_assert_int_eq(write(sv[0], "\x0a\x00", 2), 2);
  close(sv[0]);
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EUNAVAILABLE);
  close(sv[1]);
  make_pair(sv);
  ck_assert_int_eq(write(sv[0],
                         "\x0a\x00\x00\x00"
                         "abc",
                         7),
                   7);
  close(sv[0]);
  ck_assert_int_eq(frame_recv(sv[1], &p, &len, NULL), RAYC_EUNAVAILABLE);

  /* Writing to a closed peer is -EPIPE, not SIGPIPE. */
  ck_assert_int_eq(frame_send(sv[1], "x", 1, -1), -EPIPE);
  close(sv[1]);
}
END_TEST

START_TEST(test_msg_round_trip)
{
  int sv[2], pfd[2];
  make_pair(sv);
  ck_assert_int_eq(pipe(pfd), 0);
  Rayc__LocalMessage m = RAYC__LOCAL_MESSAGE__INIT;
  Rayc__StoreConnectRequest req = RAYC__STORE_CONNECT_REQUEST__INIT;
  req.pid = 4242;
  m.seq = 7;
  m.body_case = RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT;
  m.store_connect = &req;
  ck_assert_int_eq(frame_send_msg(sv[0], &m.base, pfd[1]), 0);
  Rayc__LocalMessage empty = RAYC__LOCAL_MESSAGE__INIT;
  ck_assert_int_eq(frame_send_msg(sv[0], &empty.base, -1), 0);

  ProtobufCMessage *got = NULL;
  int fd = -1;
  ck_assert_int_eq(frame_recv_msg(sv[1], &rayc__local_message__descriptor, &got, &fd), 0);
  Rayc__LocalMessage *g = (Rayc__LocalMessage *)got;
  ck_assert_uint_eq(g->seq, 7);
  ck_assert_int_eq(g->body_case, RAYC__LOCAL_MESSAGE__BODY_STORE_CONNECT);
  ck_assert_int_eq(g->store_connect->pid, 4242);
  ck_assert_int_ge(fd, 0);
  close(fd);
  pb_free(got);
  ck_assert_int_eq(frame_recv_msg(sv[1], &rayc__local_message__descriptor, &got, NULL), 0);
  ck_assert_uint_eq(((Rayc__LocalMessage *)got)->seq, 0);
  pb_free(got);

  /* A payload that is not a LocalMessage. */
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  ck_assert_int_eq(frame_send(sv[0], junk, sizeof(junk), pfd[0]), 0);
  int before = count_fds();
  fd = 123;
  ck_assert_int_eq(frame_recv_msg(sv[1], &rayc__local_message__descriptor, &got, &fd), RAYC_EPROTOCOL);
  ck_assert_int_eq(count_fds(), before); /* the fd that came with it was closed */
  ck_assert_int_eq(fd, -1);
  ck_assert_ptr_null(got);
  close(pfd[0]);
  close(pfd[1]);
  close(sv[0]);
  close(sv[1]);
}
END_TEST

/* ---- incremental reader ---- */

START_TEST(test_reader_byte_by_byte)
{
  size_t total = 0, n;
  uint8_t *all = NULL;
  for (size_t i = 0; i < 12; i++) { /* sizes up to 65536 */
    uint8_t *b = encode(sizes[i], i, &n);
    all = xrealloc(all, total + n);
    memcpy(all + total, b, n);
    total += n;
    free(b);
  }
  frame_reader_t r;
  frame_reader_init(&r);
  size_t next = 0;
  for (size_t off = 0; off < total; off++) {
    frame_reader_feed(&r, all + off, 1);
    const uint8_t *p;
    size_t len;
    int rc;
    while ((rc = frame_reader_next(&r, &p, &len)) == 1) {
      ck_assert_uint_eq(len, sizes[next]);
      ck_assert(check_fill(p, len, next));
      next++;
    }
    ck_assert_int_eq(rc, 0);
  }
  ck_assert_uint_eq(next, 12);
  ck_assert_uint_eq(frame_reader_pending(&r), 0);
  frame_reader_release(&r);
  free(all);
}
END_TEST

START_TEST(test_reader_many_per_feed)
{
  frame_reader_t r;
  frame_reader_init(&r);
  uint8_t buf[3 * 9];
  for (int i = 0; i < 3; i++) {
    memcpy(buf + 9 * i, "\x05\x00\x00\x00", 4);
    memcpy(buf + 9 * i + 4, "abcde", 5);
    buf[9 * i + 4] = (uint8_t)('0' + i);
  }
  /* Feed 2.5 frames, then the rest through the zero-copy path. */
  frame_reader_feed(&r, buf, 22);
  const uint8_t *p;
  size_t len;
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 1);
  ck_assert_mem_eq(p, "0bcde", 5);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 1);
  ck_assert_mem_eq(p, "1bcde", 5);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 0);
  ck_assert_uint_eq(frame_reader_pending(&r), 4);
  uint8_t *space = frame_reader_space(&r, 1000);
  memcpy(space, buf + 22, 5);
  frame_reader_commit(&r, 5);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 1);
  ck_assert_mem_eq(p, "2bcde", 5);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 0);
  frame_reader_release(&r);
  frame_reader_release(NULL);
}
END_TEST

START_TEST(test_reader_oversize)
{
  frame_reader_t r;
  frame_reader_init(&r);
  frame_reader_feed(&r, "\x00\x00\x00\x00", 4); /* an empty frame first */
  frame_reader_feed(&r, "\xff\xff\xff\x7f", 3);
  const uint8_t *p;
  size_t len;
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 1);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 0);
  frame_reader_feed(&r, "\x7f", 1);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), RAYC_EPROTOCOL);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), RAYC_EPROTOCOL);
  frame_reader_release(&r);

  /* Exactly FRAME_MAX is allowed (it just needs more bytes). */
  frame_reader_init(&r);
  uint32_t m = FRAME_MAX;
  uint8_t hdr[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
  frame_reader_feed(&r, hdr, 4);
  ck_assert_int_eq(frame_reader_next(&r, &p, &len), 0);
  frame_reader_release(&r);
}
END_TEST

static Suite *frame_suite(void)
{
  Suite *s = suite_create("frame");
  TCase *tc = tcase_create("blocking");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_round_trip_sizes);
  tcase_add_test(tc, test_round_trip_partial_writes);
  tcase_add_test(tc, test_pass_pipe_fd);
  tcase_add_test(tc, test_pass_memfd);
  tcase_add_test(tc, test_unwanted_fds_closed);
  tcase_add_test(tc, test_oversize_rejected);
  tcase_add_test(tc, test_eof);
  tcase_add_test(tc, test_msg_round_trip);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("reader");
  tcase_add_test(tr, test_reader_byte_by_byte);
  tcase_add_test(tr, test_reader_many_per_feed);
  tcase_add_test(tr, test_reader_oversize);
  suite_add_tcase(s, tr);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(frame_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
