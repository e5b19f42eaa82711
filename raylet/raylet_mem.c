/*
 * The memory monitor (Ray's MemoryMonitor and its worker-killing policy): every
 * --memory-monitor-refresh-ms the cron reads how much memory the node uses against its limit, and
 * when the use passes --memory-usage-threshold of the limit it SIGKILLs the worker running a task
 * that uses the most memory, before the kernel's OOM killer picks a process itself (perhaps the
 * raylet, the store or a driver).
 *
 * What "the node's memory" is, in this order:
 *   - --memory-limit set: the limit is that, the use is the sum of this raylet's workers' RSS
 *     (/proc/PID/statm). For a node that shares its machine (namespace hosts, containers without
 *     their own cgroup) or a budget for tasks alone.
 *   - the raylet's cgroup v2 has a memory.max: memory.current less its inactive page cache
 *     (memory.stat inactive_file) against memory.max (what the kernel's cgroup OOM killer acts on).
 *   - else MemTotal - MemAvailable against MemTotal from /proc/meminfo.
 *
 * Policy (ours; Ray's groups workers by owner and prefers retriable tasks, newest first): the
 * leased worker with the largest RSS, the newest on a tie. Only workers holding a lease (running
 * a task or an actor) are candidates: idle workers hold little. One kill at a time: the next check
 * that may kill waits until the killed worker's exit is seen (at most KILL_WAIT_MS). The lease is
 * ended at once, so its resources come back.
 *
 * Each kill is remembered (the last KILLS_KEPT) so the task's owner, whose PushTask failed, can ask
 * GetWorkerFailureCause and fail or retry the task as OUT_OF_MEMORY rather than WORKER_DIED; it is
 * recorded as a cluster event (WORKER_OOM_KILLED) and counted (rayc_raylet_oom_kills_total).
 */
#include "raylet/raylet.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/util.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { KILLS_KEPT = 64, KILL_WAIT_MS = 5000, MIB = 1 << 20 };

enum mem_source { MEM_WORKERS, MEM_CGROUP, MEM_MEMINFO };

typedef struct mem_kill {
  id_worker_t worker;
  char *msg;
} mem_kill_t;

struct raylet_mem {
  enum mem_source source;
  char cgroup[PATH_MAX + 16]; /* MEM_CGROUP: the cgroup's directory */
  int64_t limit;
  int64_t next_ms;
  pid_t killing; /* a killed worker whose exit is not seen yet (0: none) */
  int64_t killed_ms;
  mem_kill_t kills[KILLS_KEPT];
  unsigned next_kill;
  uint64_t nkills;
};

static const char *const source_names[] = {"the workers' RSS", "cgroup memory.current", "/proc/meminfo"};

/* Reads one number from path ("max" reads as 0). 0 or -1. */
static int mem_read_num(const char *path, int64_t *v)
{
  FILE *f = fopen(path, "r");
  char buf[64] = "";
  int ok = f && fgets(buf, sizeof(buf), f);
  if (f)
    fclose(f);
  if (!ok)
    return -1;
  *v = strncmp(buf, "max", 3) == 0 ? 0 : strtoll(buf, NULL, 10);
  return 0;
}

/* The raylet's cgroup v2 directory when it has a memory limit; 1 found, 0 not. */
static int mem_find_cgroup(struct raylet_mem *m)
{
  char line[PATH_MAX], path[PATH_MAX + 64];
  int found = 0;
  line[0] = '\0';
  FILE *f = fopen("/proc/self/cgroup", "r");
  while (f && !found && fgets(line, sizeof(line), f)) {
    if (strncmp(line, "0::", 3) != 0)
      continue;
    line[strcspn(line, "\n")] = '\0';
    snprintf(m->cgroup, sizeof(m->cgroup), "/sys/fs/cgroup%.*s", PATH_MAX - 4, strcmp(line + 3, "/") ? line + 3 : "");
    snprintf(path, sizeof(path), "%s/memory.max", m->cgroup);
    found = mem_read_num(path, &m->limit) == 0 && m->limit > 0;
  }
  if (f)
    fclose(f);
  return found;
}

/* A process's resident set in bytes, from /proc/PID/statm; 0 when it is gone. */
static int64_t mem_rss(pid_t pid)
{
  char path[64];
  long long size = 0, resident = 0;
  snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
  FILE *f = fopen(path, "r");
  int n = f ? fscanf(f, "%lld %lld", &size, &resident) : 0;
  if (f)
    fclose(f);
  return n == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : 0;
}

static int64_t mem_workers_rss(raylet_t *r)
{
  int64_t sum = 0;
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->proc_open && w->pid > 0)
      sum += mem_rss(w->pid);
  return sum;
}

/* The cgroup's inactive page cache (memory.stat inactive_file): counted in memory.current, but the
 * kernel reclaims it before any OOM kill, so it is not use (Ray subtracts it too). */
static int64_t mem_cgroup_inactive_file(const struct raylet_mem *m)
{
  char path[PATH_MAX + 64], line[256];
  long long v = 0;
  snprintf(path, sizeof(path), "%s/memory.stat", m->cgroup);
  FILE *f = fopen(path, "r");
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "inactive_file %lld", &v) == 1)
      break;
  if (f)
    fclose(f);
  return v > 0 ? v : 0;
}

/* The node's memory in use now, by the source found at start; -1 when it cannot be read. */
static int64_t mem_used(raylet_t *r)
{
  struct raylet_mem *m = r->mem;
  int64_t v = -1, total, avail;
  char path[PATH_MAX + 64];
  switch (m->source) {
    case MEM_WORKERS:
      return mem_workers_rss(r);
    case MEM_CGROUP:
      snprintf(path, sizeof(path), "%s/memory.current", m->cgroup);
      return mem_read_num(path, &v) == 0 ? v - mem_cgroup_inactive_file(m) : -1;
    case MEM_MEMINFO:
      return read_meminfo(&total, &avail) == 0 ? total - avail : -1;
  }
  return -1;
}

static void mem_count(const struct raylet_mem *m)
{
  metrics_set(metrics_series0(metrics_family("rayc_raylet_oom_kills_total", METRICS_COUNTER,
                                             "Workers the memory monitor killed on this node.", NULL)),
              (double)m->nkills);
}

int raylet_mem_start(raylet_t *r)
{
  struct raylet_mem *m = r->mem = xcalloc(1, sizeof(*r->mem));
  int64_t avail;
  mem_count(m); /* 0 from the start, so a scraper sees the series before any kill */
  if (r->cfg.mem_limit > 0) {
    m->source = MEM_WORKERS;
    m->limit = r->cfg.mem_limit;
  } else if (mem_find_cgroup(m)) {
    m->source = MEM_CGROUP;
  } else if (read_meminfo(&m->limit, &avail) == 0) {
    m->source = MEM_MEMINFO;
  } else {
    log_warn("memory monitor off: neither a cgroup v2 limit nor /proc/meminfo can be read");
    r->cfg.mem_refresh_ms = 0;
    return 0;
  }
  if (r->cfg.mem_refresh_ms > 0)
    log_info("memory monitor: every %d ms, limit %" PRId64 " MiB (%s), a worker is killed above %.0f%%",
             r->cfg.mem_refresh_ms, m->limit / MIB, source_names[m->source], r->cfg.mem_threshold * 100);
  return 0;
}

void raylet_mem_destroy(raylet_t *r)
{
  struct raylet_mem *m = r->mem;
  if (!m)
    return;
  for (int i = 0; i < KILLS_KEPT; i++)
    free(m->kills[i].msg);
  free(m);
  r->mem = NULL;
}

/* The candidate to kill: the leased worker with the largest RSS, the newest on a tie. */
static raylet_worker_t *mem_pick(raylet_t *r, int64_t *rss)
{
  raylet_worker_t *best = NULL;
  *rss = -1;
  for (raylet_worker_t *w = r->workers; w; w = w->next) {
    if (w->state != WORKER_LEASED || !w->lease || !w->proc_open || w->pid <= 0)
      continue;
    int64_t v = mem_rss(w->pid);
    if (v > *rss || (v == *rss && best && w->started_ms > best->started_ms))
      best = w, *rss = v;
  }
  return best;
}

static void mem_event_done(void *arg, int status, const char *detail, ProtobufCMessage *resp)
{
  (void)arg;
  if (status != 0 && status != RAYC_ECANCELLED)
    log_warn("reporting an OOM kill to the GCS failed: %s (%s)", rayc_strerror(status), detail);
  pb_free(resp);
}

/* Records the kill as a cluster event, counts it, and keeps its message for the owner. */
static void mem_record(raylet_t *r, raylet_worker_t *w, char *msg)
{
  struct raylet_mem *m = r->mem;
  mem_kill_t *k = &m->kills[m->next_kill++ % KILLS_KEPT];
  free(k->msg);
  k->worker = w->id;
  k->msg = msg;
  m->nkills++;
  mem_count(m);
  if (!r->gcs)
    return;
  Rayc__ClusterEvent ev = RAYC__CLUSTER_EVENT__INIT;
  ev.severity = RAYC__CLUSTER_EVENT_SEVERITY__EVENT_WARNING;
  ev.source = (char *)"RAYLET";
  ev.kind = (char *)"WORKER_OOM_KILLED";
  ev.message = msg;
  ev.node_id = pb_bytes(r->node_id.b, ID_NODE_SIZE);
  ev.job_id = pb_bytes(w->job.b, ID_JOB_SIZE);
  ev.worker_id = pb_bytes(w->id.b, ID_WORKER_SIZE);
  Rayc__ReportClusterEventRequest req = RAYC__REPORT_CLUSTER_EVENT_REQUEST__INIT;
  req.event = &ev;
  rpc_call(r->gcs, &rayc__event_gcs_service__descriptor, "ReportClusterEvent", &req.base, 5000, mem_event_done, r);
}

static void mem_kill(raylet_t *r, raylet_worker_t *w, int64_t rss, int64_t used)
{
  struct raylet_mem *m = r->mem;
  char node[2 * ID_NODE_SIZE + 1], wid[9];
  id_hex(r->node_id.b, ID_NODE_SIZE, node);
  id_short(w->id.b, ID_WORKER_SIZE, wid);
  char *msg = xasprintf("the task's worker %s (pid %d) was killed by the memory monitor of node %s (%s): "
                        "the node used %" PRId64 " MiB of its %" PRId64 " MiB (%s), over the threshold of %.0f%% "
                        "(%" PRId64 " MiB); the worker used %" PRId64 " MiB (RSS), the most of any worker running "
                        "a task there. Use less memory per task, run fewer at once (request the memory "
                        "resource), or raise --memory-limit / --memory-usage-threshold",
                        wid, (int)w->pid, node, r->cfg.node_ip, used / MIB, m->limit / MIB, source_names[m->source],
                        r->cfg.mem_threshold * 100, (int64_t)(r->cfg.mem_threshold * (double)m->limit) / MIB,
                        rss / MIB);
  log_warn("out of memory: %s", msg);
  m->killing = w->pid;
  m->killed_ms = now_ms();
  mem_record(r, w, msg);
  raylet_lease_kill(r, w->lease);
}

/* 1 while the last killed worker's exit has not been seen (and not for too long). */
static int mem_kill_pending(raylet_t *r)
{
  struct raylet_mem *m = r->mem;
  if (!m->killing)
    return 0;
  for (raylet_worker_t *w = r->workers; w; w = w->next)
    if (w->pid == m->killing && w->proc_open && now_ms() - m->killed_ms < KILL_WAIT_MS)
      return 1;
  m->killing = 0;
  return 0;
}

void raylet_mem_cron(raylet_t *r)
{
  struct raylet_mem *m = r->mem;
  /* No worker, no candidate: an idle node reads nothing (the first worker is checked at once). */
  if (!m || !r->workers || r->cfg.mem_refresh_ms <= 0 || now_ms() < m->next_ms)
    return;
  m->next_ms = now_ms() + r->cfg.mem_refresh_ms;
  if (mem_kill_pending(r))
    return;
  int64_t used = mem_used(r);
  if (used < 0 || (double)used <= r->cfg.mem_threshold * (double)m->limit)
    return;
  int64_t rss;
  raylet_worker_t *w = mem_pick(r, &rss);
  if (w)
    mem_kill(r, w, rss, used);
}

void raylet_mem_on_failure_cause(raylet_t *r, rpc_call_t *call, const Rayc__GetWorkerFailureCauseRequest *req)
{
  Rayc__GetWorkerFailureCauseReply rep = RAYC__GET_WORKER_FAILURE_CAUSE_REPLY__INIT;
  struct raylet_mem *m = r->mem;
  for (int i = 0; m && i < KILLS_KEPT; i++)
    if (m->kills[i].msg && req->worker_id.len == ID_WORKER_SIZE &&
        memcmp(m->kills[i].worker.b, req->worker_id.data, ID_WORKER_SIZE) == 0) {
      rep.killed_for_memory = 1;
      rep.message = m->kills[i].msg;
    }
  rpc_reply(call, &rep.base);
}
