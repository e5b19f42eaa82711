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
 *
 * A job's zygote (ZYGOTE_KIND_JOB): the node's zygote forks a process that loads one job's code
 * (rayc_worker_preload: the job's libraries, its working dir) and then serves that job's spawn
 * requests the same way, on two new pairs whose other ends come with the request (SCM_RIGHTS, two
 * fds). Its request carries its own command line (for ps), the environment a worker gets, then
 * the session dir and the job's code path; the node's zygote answers with its pid. The job's
 * zygote reports {0, status} on its own exit pair once it has loaded the code (status 0) or could
 * not (a negative RAYC_E* code: it exits). When the raylet closes its request pair (the job
 * ended) it stops forking and exits once its last worker has (a detached actor's worker may
 * outlive the job). The node's zygote reports its exit like a worker's, with `zygote` set.
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

enum zygote_kind {
  ZYGOTE_KIND_WORKER = 0, /* fork a worker */
  ZYGOTE_KIND_JOB = 1,    /* fork a job's zygote (node's zygote only) */
};

typedef struct zygote_req {
  uint32_t magic, nargs, nenv;
  uint32_t kind; /* enum zygote_kind */
} zygote_req_t;

typedef struct zygote_exit {
  int32_t pid;    /* 0: the zygote is ready */
  int32_t status; /* pid 0: 0, or why a job's zygote could not load its code (RAYC_E*) */
  uint32_t cpu_us; /* user + system CPU of the child's whole life */
  uint32_t minflt; /* its page faults (copy-on-write after the fork, mostly) */
  uint32_t nvcsw;  /* its voluntary context switches */
  uint32_t zygote; /* 1: the child was a job's zygote (its workers' costs are in it) */
} zygote_exit_t;

#endif
