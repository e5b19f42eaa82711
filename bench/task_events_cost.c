/*
 * task_events_cost: what task events cost per task (issue 15), measured as CPU rather than as a
 * rate, so that a machine shared with other work still gives a usable number. Submits N no-op
 * tasks (bench_noop, in batches of 1000 as single_client_tasks_async does) after a warm-up, and
 * prints the wall-clock rate, this driver's CPU per task (getrusage, including rayc_shutdown,
 * which sends the last events) and the GCS's CPU per task (/proc/$RAYC_GCS_PID/stat, read after
 * the shutdown, when the GCS has merged every event), and the CPU per task of every process of the
 * session (the pids in $RAYC_SESSION_DIR/pids: GCS, raylet, store, workers) plus this driver: the
 * whole cluster's cost of a task. Run it with RAYC_TASK_EVENTS=0 and =1 in turns against one
 * cluster (bench/task_events_overhead.sh does).
 *
 *   RAYC_ADDRESS=... RAYC_GCS_PID=PID RAYC_SESSION_DIR=DIR task_events_cost [N]
 */
#include <rayc.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 1000, WARMUP = 2000 };

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of pid in seconds (fields 14 and 15 of /proc/PID/stat); -1 when unknown. */
static double pid_cpu_s(const char *pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%s/stat", pid ? pid : "0");
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

enum { MAX_PIDS = 256 };

/* The pids of the session's processes (pids/NAME.pid), into v; returns how many. */
static int session_pids(const char *dir, char v[][16])
{
  char path[600];
  snprintf(path, sizeof(path), "%s/pids", dir ? dir : "/nonexistent");
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && n < MAX_PIDS && (e = readdir(d));) {
    if (!strstr(e->d_name, ".pid"))
      continue;
    char file[900];
    snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
    FILE *f = fopen(file, "r");
    if (f && fscanf(f, "%15s", v[n]) == 1)
      n++;
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  return n;
}

/* The CPU seconds of the processes in v (those gone count 0; cpu0: their values at the start). */
static double pids_cpu_s(char v[][16], int n, double *each)
{
  double sum = 0;
  for (int i = 0; i < n; i++) {
    double c = pid_cpu_s(v[i]);
    each[i] = c < 0 ? each[i] : c; /* a process that ended keeps its last value */
    sum += each[i];
  }
  return sum;
}

static int batch(void)
{
  static rayc_ref refs[BATCH];
  static rayc_buf bufs[BATCH];
  for (int i = 0; i < BATCH; i++)
    if (rayc_remote("bench_noop", NULL, 0, NULL, &refs[i]) != 0)
      return -1;
  int rc = rayc_get(refs, BATCH, 120000, bufs);
  if (rc == 0)
    rayc_buf_release(bufs, BATCH);
  for (int i = 0; i < BATCH; i++)
    rayc_ref_release(&refs[i]);
  return rc;
}

int main(int argc, char **argv)
{
  long n = argc > 1 ? atol(argv[1]) : 20000;
  const char *gcs = getenv("RAYC_GCS_PID"), *ev = getenv("RAYC_TASK_EVENTS");
  if (rayc_init(NULL) != 0) {
    fprintf(stderr, "rayc_init: %s\n", rayc_last_error());
    return 1;
  }
  for (int i = 0; i < WARMUP / BATCH; i++)
    if (batch() != 0)
      return 1;
  sleep(2); /* the warm-up's events reach the GCS before its CPU is read */
  static char pids[MAX_PIDS][16];
  static double each[MAX_PIDS];
  int np = session_pids(getenv("RAYC_SESSION_DIR"), pids);
  double a0 = pids_cpu_s(pids, np, each);
  double c0 = self_cpu_s(), g0 = pid_cpu_s(gcs), t0 = now_s();
  for (long done = 0; done < n; done += BATCH)
    if (batch() != 0) {
      fprintf(stderr, "tasks failed: %s\n", rayc_last_error());
      return 1;
    }
  double wall = now_s() - t0;
  rayc_shutdown();
  double c1 = self_cpu_s(), g1 = pid_cpu_s(gcs), a1 = pids_cpu_s(pids, np, each);
  long tasks = (n + BATCH - 1) / BATCH * BATCH;
  printf("events=%s tasks=%ld rate=%.0f driver_cpu_us_per_task=%.2f gcs_cpu_us_per_task=%.2f "
         "cluster_cpu_us_per_task=%.2f\n",
         ev && *ev ? ev : "1", tasks, (double)tasks / wall, (c1 - c0) * 1e6 / (double)tasks,
         g0 >= 0 && g1 >= 0 ? (g1 - g0) * 1e6 / (double)tasks : -1.0, (c1 - c0 + a1 - a0) * 1e6 / (double)tasks);
  return 0;
}
