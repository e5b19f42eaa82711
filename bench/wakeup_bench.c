/*
 * wakeup_bench: the machine's cost of one thread waking another, the baseline beside
 * task_latency_sync (a sync task is four such wake-ups in a row: the worker's poller, its
 * executor, the driver's poller, the getter; docs/PERFORMANCE.md "Synchronous latency").
 *
 *   wakeup_bench [REPS]
 *
 * Two processes bounce a byte through two pipes; after each wake-up the woken side works ~5 µs
 * before it wakes the other and blocks (as rayc's threads do: the waker is still running when
 * the wakee is given a CPU). Per repetition (BENCH_REP_SECONDS, default 1 s) it prints the
 * median round trip (two wake-ups and the two sides' 5 µs of work: 10 µs on one CPU, overlapping
 * on two) of each placement, as `rep NAME VALUE us`:
 *
 *   wakeup_round_trip_us            where the kernel puts the two (what the latency row gets)
 *   wakeup_round_trip_same_cpu_us   both pinned to CPU 0
 *   wakeup_round_trip_cross_cpu_us  pinned to CPUs 0 and 1: every wake-up crosses vCPUs
 *
 * No cluster is involved. When the first reads like the third, the kernel spreads ping-pong
 * partners over the vCPUs (as it does when the other vCPU is idle), and each of a sync task's four
 * wake-ups pays the cross-vCPU price.
 */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_TRIPS = 200000, WORK_US = 5 };

static cpu_set_t all_cpus; /* the affinity it started with, restored after a pinned placement */

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void work(void)
{
  double t0 = now_us();
  while (now_us() - t0 < WORK_US)
    ;
}

/* cpu -1: back to every CPU it started with */
static int pin(int cpu)
{
  cpu_set_t set = all_cpus;
  if (cpu >= 0) {
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
  }
  return sched_setaffinity(0, sizeof(set), &set);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The echoing side: until its pipe closes. */
static void echo_loop(int in, int out, int cpu)
{
  char c;
  if (pin(cpu) != 0)
    _exit(1);
  while (read(in, &c, 1) == 1) {
    work();
    if (write(out, &c, 1) != 1)
      _exit(1);
  }
  _exit(0);
}

/* One repetition of one placement (cpu -1: unpinned); prints its median round trip. */
static int run(const char *name, int my_cpu, int peer_cpu, double rep_s, double *trips)
{
  int to[2], from[2];
  if (pipe(to) != 0 || pipe(from) != 0)
    return printf("error %s pipe: %m\n", name), -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(to[1]);
    close(from[0]);
    echo_loop(to[0], from[1], peer_cpu);
  }
  close(to[0]);
  close(from[1]);
  int rc = pid < 0 || pin(my_cpu) != 0 ? -1 : 0;
  long n = 0;
  char c = 0;
  double t_end = now_us() + rep_s * 1e6;
  for (long i = 0; rc == 0 && i < MAX_TRIPS + 100 && (n < 1000 || now_us() < t_end); i++) {
    double t0 = now_us();
    if (write(to[1], &c, 1) != 1)
      rc = -1;
    work();
    if (rc == 0 && read(from[0], &c, 1) != 1)
      rc = -1;
    if (i >= 100) /* warm-up: both sides settled where the kernel puts them */
      trips[n++] = now_us() - t0;
  }
  close(to[1]);
  close(from[0]);
  int st = 0;
  if (pid > 0)
    waitpid(pid, &st, 0);
  pin(-1);
  if (rc != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return printf("error %s the round trips failed (pinning to CPU %d or %d?)\n", name, my_cpu, peer_cpu), -1;
  qsort(trips, (size_t)n, sizeof(*trips), cmp_double);
  printf("rep %s %.4g us\n", name, trips[n / 2]);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv)
{
  const char *rs = getenv("BENCH_REP_SECONDS");
  double rep_s = rs && atof(rs) > 0 ? atof(rs) : 1.0;
  int reps = argc > 1 && atoi(argv[1]) > 0 ? atoi(argv[1]) : 5;
  double *trips = malloc((MAX_TRIPS + 100) * sizeof(*trips));
  if (!trips || sched_getaffinity(0, sizeof(all_cpus), &all_cpus) != 0)
    return printf("error wakeup_round_trip_us setup failed\n"), 1;
  int two = CPU_ISSET(0, &all_cpus) && CPU_ISSET(1, &all_cpus);
  signal(SIGPIPE, SIG_IGN);
  int rc = 0;
  for (int r = 0; rc == 0 && r < reps; r++) {
    rc = run("wakeup_round_trip_us", -1, -1, rep_s, trips);
    if (rc == 0 && two)
      rc = run("wakeup_round_trip_same_cpu_us", 0, 0, rep_s / 2, trips);
    if (rc == 0 && two)
      rc = run("wakeup_round_trip_cross_cpu_us", 0, 1, rep_s / 2, trips);
  }
  free(trips);
  return rc == 0 ? 0 : 1;
}
