/*
 * The worker fork server's wire format, shared by the raylet (raylet/raylet_zygote.c) and
 * `rayc-worker --zygote` (worker/zygote.c).
 *
 * The raylet starts one zygote per node the first time it needs a C worker. The zygote has
 * loaded librayc and the ~80 libraries it links (gRPC, absl, OpenSSL...), which is most of what a
 * worker's exec costs, and nothing else: it never initializes gRPC or starts a thread, so it can
 * fork safely. Each fork is a fresh worker that then runs rayc_worker_main() as an exec'ed one would.
 *
 * Two SOCK_SEQPACKET socket pairs, so that every record is one message:
 *  - ZYGOTE_REQ_FD: the raylet sends a spawn request (zygote_req_t, then nargs + nenv + 1
 *    NUL-terminated strings: the arguments, the environment, the log file); the zygote answers
 *    with one int32: the child's pid, or a negative errno.
 *  - ZYGOTE_EXIT_FD: the zygote reports {0, 0} once it is ready, then {pid, wait status} and
 *    what the child cost over its whole life, exit included (its rusage from wait4), for every
 *    child it reaps.
 */
#ifndef RAYC_COMMON_ZYGOTE_H
#define RAYC_COMMON_ZYGOTE_H

#include <stdint.h>

enum {
  ZYGOTE_REQ_FD = 3,
  ZYGOTE_EXIT_FD = 4,
  ZYGOTE_MAX_REQUEST = 192 * 1024, /* a request larger than this (a huge environment) is exec'ed */
  ZYGOTE_MAGIC = 0x7a79676f,
};

typedef struct zygote_req {
  uint32_t magic, nargs, nenv, reserved;
} zygote_req_t;

typedef struct zygote_exit {
  int32_t pid; /* 0: the zygote is ready */
  int32_t status;
  uint32_t cpu_us; /* user + system CPU of the child's whole life */
  uint32_t minflt; /* its page faults (copy-on-write after the fork, mostly) */
  uint32_t nvcsw;  /* its voluntary context switches */
  uint32_t reserved;
} zygote_exit_t;

#endif
