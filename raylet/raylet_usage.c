/*
 * What each job's worker processes use on this node, for governance records (issue 12): CPU time
 * (utime + stime from /proc/<pid>/stat) and peak RSS (VmHWM from /proc/<pid>/status) of every
 * worker, sampled once a second from the cron and right before the raylet ends a finished job's
 * workers (so the CPU they burned up to their end is counted), plus the port each listened on.
 * A sample is kept per process after it exits: a job's totals are the sums of the last samples
 * of all its workers. Actor workers run under the job id with its top bit set and count for the
 * job. GetJobUsage answers for the jobs asked (the GCS, when it writes a job's record).
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { USAGE_PERIOD_MS = 1000, USAGE_MAX_PROCS = 100000 };

typedef struct usage_proc {
  pid_t pid;
  uint64_t start_ticks;     /* the process's start time: tells a reused pid apart */
  uint8_t job[ID_JOB_SIZE]; /* top bit cleared */
  uint64_t cpu_ticks, hwm_kb;
  int port;
} usage_proc_t;

struct raylet_usage {
  usage_proc_t *v;
  size_t n, cap;
  int64_t next_ms;
};

/* Reads utime + stime and the start time of pid. 0 or -1. */
static int usage_read_stat(pid_t pid, uint64_t *cpu, uint64_t *start)
{
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* after "pid (comm)": state is field 3; utime 14, stime 15, start 22 */
  unsigned long long ut, st, sv;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu", &ut,
                   &st, &sv) != 3)
    return -1;
  *cpu = ut + st;
  *start = sv;
  return 0;
}

static uint64_t usage_read_hwm(pid_t pid)
{
  char path[64], line[256];
  unsigned long long kb = 0;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

static usage_proc_t *usage_slot(raylet_usage_t *u, pid_t pid, uint64_t start)
{
  for (size_t i = u->n; i-- > 0;)
    if (u->v[i].pid == pid && u->v[i].start_ticks == start)
      return &u->v[i];
  if (u->n >= USAGE_MAX_PROCS)
    return NULL;
  if (u->n == u->cap) {
    u->cap = u->cap ? 2 * u->cap : 64;
    u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
  }
  usage_proc_t *p = &u->v[u->n++];
  memset(p, 0, sizeof(*p));
  p->pid = pid;
  p->start_ticks = start;
  return p;
}

void raylet_usage_sample(raylet_t *r)
{
  if (!r->usage)
    r->usage = xcalloc(1, sizeof(*r->usage));
  for (raylet_worker_t *w = r->workers; w; w = w->next) {
    uint64_t cpu, start;
    if (w->pid <= 0 || !w->proc_open || usage_read_stat(w->pid, &cpu, &start) != 0)
      continue;
    usage_proc_t *p = usage_slot(r->usage, w->pid, start);
    if (!p)
      continue;
    memcpy(p->job, w->job.b, ID_JOB_SIZE);
    p->job[0] &= 0x7f;
    p->cpu_ticks = cpu;
    uint64_t hwm = usage_read_hwm(w->pid);
    p->hwm_kb = hwm > p->hwm_kb ? hwm : p->hwm_kb;
    if (w->port > 0)
      p->port = w->port;
  }
}

void raylet_usage_cron(raylet_t *r)
{
  int64_t now = now_ms();
  if (r->usage && now < r->usage->next_ms)
    return;
  raylet_usage_sample(r);
  r->usage->next_ms = now + USAGE_PERIOD_MS;
}

void raylet_usage_destroy(raylet_t *r)
{
  if (r->usage)
    free(r->usage->v);
  free(r->usage);
  r->usage = NULL;
}

/* 1 when the sampled process is still running (same pid, same start time, not a zombie). */
static int usage_alive(const usage_proc_t *p)
{
  uint64_t cpu, start;
  return usage_read_stat(p->pid, &cpu, &start) == 0 && start == p->start_ticks && kill(p->pid, 0) == 0;
}

/* Fills out (its fields new) with job's totals. */
static void usage_job(raylet_t *r, const uint8_t *job, Rayc__JobUsage *out)
{
  long hz = sysconf(_SC_CLK_TCK);
  uint64_t ticks = 0;
  for (size_t i = 0; i < r->usage->n; i++) {
    usage_proc_t *p = &r->usage->v[i];
    if (memcmp(p->job, job, ID_JOB_SIZE) != 0)
      continue;
    out->workers++;
    ticks += p->cpu_ticks;
    if (p->hwm_kb * 1024 > out->peak_rss_bytes)
      out->peak_rss_bytes = p->hwm_kb * 1024;
    if (usage_alive(p)) {
      out->live_pids = xrealloc(out->live_pids, (out->n_live_pids + 1) * sizeof(*out->live_pids));
      out->live_pids[out->n_live_pids++] = p->pid;
    }
    if (p->port > 0) {
      out->endpoints = xrealloc(out->endpoints, (out->n_endpoints + 1) * sizeof(*out->endpoints));
      out->endpoints[out->n_endpoints++] = xasprintf("%s:%d", r->cfg.node_ip, p->port);
    }
  }
  out->cpu_seconds = hz > 0 ? (double)ticks / (double)hz : 0;
}

void raylet_usage_on_get(raylet_t *r, rpc_call_t *call, const Rayc__GetJobUsageRequest *req)
{
  raylet_usage_sample(r);
  Rayc__GetJobUsageReply reply = RAYC__GET_JOB_USAGE_REPLY__INIT;
  Rayc__JobUsage *v = xcalloc(req->n_job_ids + 1, sizeof(*v));
  Rayc__JobUsage **pv = xcalloc(req->n_job_ids + 1, sizeof(*pv));
  for (size_t i = 0; i < req->n_job_ids; i++) {
    if (req->job_ids[i].len != ID_JOB_SIZE)
      continue;
    Rayc__JobUsage *u = &v[reply.n_jobs];
    rayc__job_usage__init(u);
    uint8_t job[ID_JOB_SIZE];
    memcpy(job, req->job_ids[i].data, ID_JOB_SIZE);
    job[0] &= 0x7f;
    u->job_id = req->job_ids[i];
    usage_job(r, job, u);
    pv[reply.n_jobs++] = u;
  }
  reply.jobs = pv;
  rpc_reply(call, &reply.base);
  for (size_t i = 0; i < reply.n_jobs; i++) {
    for (size_t k = 0; k < v[i].n_endpoints; k++)
      free(v[i].endpoints[k]);
    free(v[i].endpoints);
    free(v[i].live_pids);
  }
  free(pv);
  free(v);
}
