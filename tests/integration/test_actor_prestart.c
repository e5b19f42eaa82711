/*
 * Integration tests of the workers a raylet keeps ready for a job's actors
 * (--prestart-actor-workers, raylet/raylet_pool.c) against a real head node: once a job has
 * created an actor on a node, its next actor runs on a worker that was started before that actor
 * was asked for, and the workers kept ready end with the job instead of idling on.
 */
#include "itest.h"

#include <time.h>

static rayc_actor create(void)
{
  rayc_actor a;
  int rc = rayc_actor_create("TCounter", NULL, 0, NULL, &a);
  ck_assert_msg(rc == 0, "rayc_actor_create: %s", rayc_last_error());
  return a;
}

/* The pid of a's worker (TCounter.pid), once a is ALIVE. */
static long actor_pid(const rayc_actor *a)
{
  rayc_ref r;
  int rc = rayc_actor_call(a, "pid", NULL, 0, NULL, &r);
  ck_assert_msg(rc == 0, "rayc_actor_call pid: %s", rayc_last_error());
  long pid = (long)it_get_i64(&r, &rc);
  ck_assert_msg(rc == 0, "pid: %s", rayc_last_error());
  rayc_ref_release(&r);
  return pid;
}

/* When process pid started, in clock ticks since boot (field 22 of /proc/<pid>/stat). */
static unsigned long long start_ticks(long pid)
{
  char buf[1024];
  unsigned long long t = 0;
  const char *p = it_proc_stat(pid, buf, sizeof(buf));
  ck_assert_msg(p, "cannot read /proc/%ld/stat", pid);
  sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t);
  return t;
}

/* Now, in the clock ticks of start_ticks (CLOCK_BOOTTIME is the clock /proc's start times count). */
static unsigned long long now_ticks(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  long hz = sysconf(_SC_CLK_TCK);
  return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
         (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)hz);
}

/* Live worker processes of this session: rayc-worker programs whose command line names the
 * session's temp dir, but not the zygote. */
static long last_worker; /* a pid session_workers() counted */

static int session_workers(void)
{
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d))) {
    char path[300], buf[4096];
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
      fclose(f);
    buf[len] = '\0';
    size_t l0 = strlen(buf); /* argv[0] */
    int is_worker = l0 >= 11 && strcmp(buf + l0 - 11, "rayc-worker") == 0;
    for (size_t i = 0; i < len; i++)
      buf[i] = buf[i] ? buf[i] : ' ';
    if (is_worker && strstr(buf, it_temp) && !strstr(buf, "--zygote")) {
      n++;
      last_worker = atol(e->d_name);
    }
  }
  if (d)
    closedir(d);
  return n;
}

/* The job's first actor leases a worker; the raylet then starts workers for the job's next actors,
 * so the second actor's worker was already running (or starting) when it was created. */
START_TEST(test_next_actor_finds_its_worker_started)
{
  it_connect();
  rayc_actor first = create();
  long p1 = actor_pid(&first);
  usleep(100000); /* a clock tick (10 ms) or more between the spares' start and the next create */
  unsigned long long asked = now_ticks();
  rayc_actor second = create();
  long p2 = actor_pid(&second);
  ck_assert_int_ne(p1, p2);
  unsigned long long started = start_ticks(p2);
  ck_assert_msg(started < asked,
                "the second actor's worker (pid %ld) started at tick %llu, not before it was asked for (%llu)", p2,
                started, asked);
  rayc_shutdown();
}
END_TEST

/* The job ends (its driver exits): the workers kept ready for its actors end with it, along with
 * its actors and task workers, rather than idling until --idle-worker-timeout-ms (60 s). */
START_TEST(test_ready_workers_end_with_the_job)
{
  it_connect();
  rayc_actor a = create();
  ck_assert_int_gt(actor_pid(&a), 0);
  ck_assert_int_gt(session_workers(), 1); /* the actor's worker and at least one kept ready */
  rayc_shutdown();
  int left = -1;
  for (int i = 0; i < 300 && (left = session_workers()) > 0; i++)
    usleep(100000);
  ck_assert_msg(left == 0, "%d workers (pid %ld, ...) still running 30 s after the job ended", left, last_worker);
}
END_TEST

int main(void)
{
  if (it_start("libtest_tasks.so", "--num-cpus 2 --object-store-memory 128M") != 0) {
    printf("could not start the cluster\n");
    return 1;
  }
  Suite *s = suite_create("actor_prestart");
  TCase *tc = tcase_create("actor_prestart");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_next_actor_finds_its_worker_started);
  tcase_add_test(tc, test_ready_workers_end_with_the_job);
  suite_add_tcase(s, tc);
  return it_finish(s);
}
