/*
 * process_floor: what one process per actor cannot go below on this machine (docs/PERFORMANCE.md,
 * "Actor worker process, session 9"). It links librayc, so it maps the same ~80 libraries as the
 * worker zygote, and forks children the way the zygote does (run it with LD_BIND_NOW=1, as the
 * raylet starts the zygote). Each mode runs N children one after another and prints the CPU
 * (user + system, from wait4's rusage) per child and the parent's own CPU per fork:
 *
 *   fork N         a child that _exits at once: fork, the page tables of every mapping, exit
 *   grpc N         a child that runs grpc_init, a server on 127.0.0.1:0, then the full shutdown
 *   grpc_quick N   the same server, then _exit without shutdown (what a worker's quick exit does)
 *   exec N         posix_spawn of this program with "noop": the loader's cost that the zygote saves
 *   dlopen N LIB   a child that dlopens LIB (a job's code) and _exits: what a worker forked by the
 *                  node's zygote pays to load its job's code
 *   preloaded N LIB  LIB dlopened by the parent first, then children as in fork: what a worker
 *                  forked by its job's zygote pays instead (docs/PERFORMANCE.md, "A zygote per job")
 *
 *   LD_BIND_NOW=1 build/normal/bench/process_floor fork 200
 */
#include "rayc.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include <dlfcn.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static double tv_ms(struct timeval tv)
{
  return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static double self_cpu_ms(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
}

/* Drains cq until the tag comes back (or the queue shuts down). */
static void cq_wait(grpc_completion_queue *cq, void *tag)
{
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN || (ev.type == GRPC_OP_COMPLETE && ev.tag == tag))
      return;
  }
}

/* grpc_init, a started server on an ephemeral port, then (unless quick) its orderly shutdown. */
static int child_grpc(int quick)
{
  grpc_init();
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server *s = grpc_server_create(NULL, NULL);
  grpc_server_register_completion_queue(s, cq, NULL);
  grpc_server_credentials *cr = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(s, "127.0.0.1:0", cr);
  grpc_server_credentials_release(cr);
  grpc_server_start(s);
  if (quick)
    _exit(port > 0 ? 0 : 1);
  static int done;
  grpc_server_shutdown_and_notify(s, cq, &done);
  grpc_server_cancel_all_calls(s);
  cq_wait(cq, &done);
  grpc_server_destroy(s);
  grpc_completion_queue_shutdown(cq);
  cq_wait(cq, NULL);
  grpc_completion_queue_destroy(cq);
  grpc_shutdown_blocking();
  return port > 0 ? 0 : 1;
}

static pid_t start_child(const char *mode, char *self, const char *lib)
{
  if (strcmp(mode, "exec") == 0) {
    pid_t pid;
    char *argv[] = {self, (char *)"noop", NULL};
    return posix_spawn(&pid, self, NULL, NULL, argv, environ) == 0 ? pid : -1;
  }
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  if (strcmp(mode, "fork") == 0 || strcmp(mode, "preloaded") == 0)
    _exit(0);
  if (strcmp(mode, "dlopen") == 0)
    _exit(lib && dlopen(lib, RTLD_NOW | RTLD_GLOBAL) ? 0 : 1);
  _exit(child_grpc(strcmp(mode, "grpc_quick") == 0));
}

static int count_mappings(void)
{
  FILE *f = fopen("/proc/self/maps", "r");
  int n = 0, c;
  while (f && (c = fgetc(f)) != EOF)
    n += c == '\n';
  if (f)
    fclose(f);
  return n;
}

int main(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "noop") == 0)
    return rayc_strerror(0) ? 0 : 1; /* a symbol of librayc, so the link keeps it */
  if (argc < 3) {
    fprintf(stderr, "usage: process_floor fork|grpc|grpc_quick|exec N | dlopen|preloaded N LIB\n");
    return 2;
  }
  const char *lib = argc >= 4 ? argv[3] : NULL;
  if (strcmp(argv[1], "preloaded") == 0 && (!lib || !dlopen(lib, RTLD_NOW | RTLD_GLOBAL))) {
    fprintf(stderr, "process_floor: cannot load %s\n", lib ? lib : "(no library given)");
    return 2;
  }
  int n = atoi(argv[2]), failed = 0;
  double child_ms = 0, self0 = self_cpu_ms();
  long faults = 0, switches = 0;
  for (int i = 0; i < n; i++) {
    int st;
    struct rusage ru;
    pid_t pid = start_child(argv[1], argv[0], lib);
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      failed++;
    else
      child_ms += tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime), faults += ru.ru_minflt, switches += ru.ru_nvcsw;
  }
  int ok = n - failed ? n - failed : 1;
  printf("%s: %d children (%d failed), %d mappings: %.2f ms CPU, %ld page faults, %ld voluntary switches per child; "
         "%.2f ms in the parent per child\n",
         argv[1], n, failed, count_mappings(), child_ms / ok, faults / ok, switches / ok,
         (self_cpu_ms() - self0) / (n ? n : 1));
  return failed ? 1 : 0;
}
