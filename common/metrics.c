/*
 * The process's metrics registry and its text rendering (Prometheus exposition format 0.0.4).
 * See common/metrics.h for the design: one mutex guards everything here.
 */
#include "common/metrics.h"

#include "common/hmap.h"
#include "common/util.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double metrics_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define NBOUNDS (sizeof(metrics_bounds) / sizeof(metrics_bounds[0]))

struct metrics_series {
  metrics_type_t type; /* its family's */
  char **values;
  double value;        /* counter, gauge; histogram: the sum */
  unsigned long count; /* histogram observations */
  unsigned long buckets[NBOUNDS];
  struct metrics_series *next; /* in creation order */
};

struct metrics_family {
  const char *name, *help;
  metrics_type_t type;
  char *labels[METRICS_MAX_LABELS];
  size_t nlabels;
  hmap_t by_values; /* joined label values -> series */
  metrics_series_t *first, **tail;
  struct metrics_family *next;
};

/* The registry. Process-wide on purpose (see the header); guarded by mu. */
static struct {
  pthread_mutex_t mu;
  metrics_family_t *first, **tail;
  int process;
  /* metrics_node_enable: /proc/stat's busy and total ticks at the last sample, and when (node_mu) */
  pthread_mutex_t node_mu;
  int node;
  unsigned long long cpu_busy, cpu_total;
  int64_t cpu_at_ms;
} reg = {PTHREAD_MUTEX_INITIALIZER, NULL, &reg.first, 0, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static void metrics_split_labels(metrics_family_t *f, const char *labels)
{
  const char *p = labels;
  while (p && *p && f->nlabels < METRICS_MAX_LABELS) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    f->labels[f->nlabels] = xmalloc(n + 1);
    memcpy(f->labels[f->nlabels], p, n);
    f->labels[f->nlabels++][n] = '\0';
    p = comma ? comma + 1 : NULL;
  }
}

metrics_family_t *metrics_family(const char *name, metrics_type_t type, const char *help, const char *labels)
{
  pthread_mutex_lock(&reg.mu);
  metrics_family_t *f = reg.first;
  while (f && strcmp(f->name, name) != 0)
    f = f->next;
  if (!f) {
    f = xcalloc(1, sizeof(*f));
    f->name = name;
    f->help = help ? help : "";
    f->type = type;
    metrics_split_labels(f, labels);
    hmap_init(&f->by_values);
    f->tail = &f->first;
    *reg.tail = f;
    reg.tail = &f->next;
  }
  pthread_mutex_unlock(&reg.mu);
  return f;
}

/* The hash key of a label-value combination: the values joined with NULs. Returns new. */
static char *metrics_key(const metrics_family_t *f, const char *const *values, size_t *klen)
{
  size_t n = 0;
  for (size_t i = 0; i < f->nlabels; i++)
    n += strlen(values[i] ? values[i] : "") + 1;
  char *key = xmalloc(n + 1), *p = key;
  for (size_t i = 0; i < f->nlabels; i++) {
    const char *v = values[i] ? values[i] : "";
    size_t l = strlen(v);
    memcpy(p, v, l + 1);
    p += l + 1;
  }
  *klen = n;
  return key;
}

metrics_series_t *metrics_series(metrics_family_t *f, const char *const *values)
{
  size_t klen;
  char *key = metrics_key(f, values, &klen);
  pthread_mutex_lock(&reg.mu);
  metrics_series_t *s = hmap_get(&f->by_values, key, klen);
  if (!s) {
    s = xcalloc(1, sizeof(*s));
    s->type = f->type;
    s->values = xcalloc(f->nlabels ? f->nlabels : 1, sizeof(char *));
    for (size_t i = 0; i < f->nlabels; i++)
      s->values[i] = xstrdup(values[i] ? values[i] : "");
    hmap_put(&f->by_values, key, klen, s);
    *f->tail = s;
    f->tail = &s->next;
  }
  pthread_mutex_unlock(&reg.mu);
  free(key);
  return s;
}

metrics_series_t *metrics_series0(metrics_family_t *f)
{
  return metrics_series(f, NULL);
}

metrics_series_t *metrics_series1(metrics_family_t *f, const char *v1)
{
  const char *v[1] = {v1};
  return metrics_series(f, v);
}

metrics_series_t *metrics_series2(metrics_family_t *f, const char *v1, const char *v2)
{
  const char *v[2] = {v1, v2};
  return metrics_series(f, v);
}

void metrics_add(metrics_series_t *s, double v)
{
  if (s->type == METRICS_COUNTER && !(v >= 0))
    return; /* a counter never goes down */
  pthread_mutex_lock(&reg.mu);
  s->value += v;
  pthread_mutex_unlock(&reg.mu);
}

void metrics_set(metrics_series_t *s, double v)
{
  pthread_mutex_lock(&reg.mu);
  s->value = v;
  pthread_mutex_unlock(&reg.mu);
}

void metrics_observe(metrics_series_t *s, double v)
{
  pthread_mutex_lock(&reg.mu);
  s->value += v;
  s->count++;
  for (size_t i = 0; i < NBOUNDS; i++)
    if (v <= metrics_bounds[i])
      s->buckets[i]++;
  pthread_mutex_unlock(&reg.mu);
}

double metrics_value(metrics_series_t *s)
{
  pthread_mutex_lock(&reg.mu);
  double v = s->count ? (double)s->count : s->value;
  pthread_mutex_unlock(&reg.mu);
  return v;
}

static void metrics_series_free(metrics_series_t *s, size_t nlabels)
{
  for (size_t i = 0; i < nlabels; i++)
    free(s->values[i]);
  free(s->values);
  free(s);
}

void metrics_family_clear(metrics_family_t *f)
{
  pthread_mutex_lock(&reg.mu);
  metrics_series_t *s = f->first;
  while (s) {
    metrics_series_t *next = s->next;
    metrics_series_free(s, f->nlabels);
    s = next;
  }
  hmap_release(&f->by_values);
  hmap_init(&f->by_values);
  f->first = NULL;
  f->tail = &f->first;
  pthread_mutex_unlock(&reg.mu);
}

/* ---- rendering ---- */

typedef struct mbuf {
  char *p;
  size_t len, cap;
} mbuf_t;

static void mbuf_put(mbuf_t *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void mbuf_printf(mbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mbuf_printf(mbuf_t *b, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof(tmp)) {
    mbuf_put(b, tmp, (size_t)n);
    return;
  }
  char *big = xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  mbuf_put(b, big, (size_t)n);
  free(big);
}

/* A label value escaped as the format requires: backslash, double quote and newline. */
static void mbuf_escaped(mbuf_t *b, const char *v)
{
  for (; *v; v++) {
    if (*v == '\\')
      mbuf_put(b, "\\\\", 2);
    else if (*v == '"')
      mbuf_put(b, "\\\"", 2);
    else if (*v == '\n')
      mbuf_put(b, "\\n", 2);
    else
      mbuf_put(b, v, 1);
  }
}

static void mbuf_number(mbuf_t *b, double v)
{
  if (isnan(v))
    mbuf_put(b, "NaN", 3);
  else if (isinf(v))
    mbuf_printf(b, "%s", v > 0 ? "+Inf" : "-Inf");
  else
    mbuf_printf(b, "%.17g", v);
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels. */
static void metrics_render_labels(mbuf_t *b, const metrics_family_t *f, const metrics_series_t *s, const char *le)
{
  if (!f->nlabels && !le)
    return;
  mbuf_put(b, "{", 1);
  for (size_t i = 0; i < f->nlabels; i++) {
    mbuf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
    mbuf_escaped(b, s->values[i]);
    mbuf_put(b, "\"", 1);
  }
  if (le)
    mbuf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
  mbuf_put(b, "}", 1);
}

static void metrics_render_histogram(mbuf_t *b, const metrics_family_t *f, const metrics_series_t *s)
{
  char le[32];
  for (size_t i = 0; i < NBOUNDS; i++) {
    snprintf(le, sizeof(le), "%g", metrics_bounds[i]);
    mbuf_printf(b, "%s_bucket", f->name);
    metrics_render_labels(b, f, s, le);
    mbuf_printf(b, " %lu\n", s->buckets[i]);
  }
  mbuf_printf(b, "%s_bucket", f->name);
  metrics_render_labels(b, f, s, "+Inf");
  mbuf_printf(b, " %lu\n%s_sum", s->count, f->name);
  metrics_render_labels(b, f, s, NULL);
  mbuf_put(b, " ", 1);
  mbuf_number(b, s->value);
  mbuf_printf(b, "\n%s_count", f->name);
  metrics_render_labels(b, f, s, NULL);
  mbuf_printf(b, " %lu\n", s->count);
}

static void metrics_render_family(mbuf_t *b, const metrics_family_t *f)
{
  static const char *const types[] = {"counter", "gauge", "histogram"};
  mbuf_printf(b, "# HELP %s ", f->name);
  mbuf_escaped(b, f->help); /* HELP escapes only \ and newline; a quote never appears in ours */
  mbuf_printf(b, "\n# TYPE %s %s\n", f->name, types[f->type]);
  for (const metrics_series_t *s = f->first; s; s = s->next) {
    if (f->type == METRICS_HISTOGRAM) {
      metrics_render_histogram(b, f, s);
      continue;
    }
    mbuf_put(b, f->name, strlen(f->name));
    metrics_render_labels(b, f, s, NULL);
    mbuf_put(b, " ", 1);
    mbuf_number(b, s->value);
    mbuf_put(b, "\n", 1);
  }
}

/* ---- process_* metrics, read from /proc at each render ---- */

/* Reads utime, stime, starttime (clock ticks) and rss (pages) of /proc/self/stat; 0 or -1. */
static int metrics_proc_stat(double *cpu_s, double *start_s, double *rss_bytes)
{
  char buf[2048];
  FILE *fp = fopen("/proc/self/stat", "r");
  if (!fp)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  fclose(fp);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long long ut, st, start;
  long rss;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %*u %ld",
                   &ut, &st, &start, &rss) != 4)
    return -1;
  double hz = (double)sysconf(_SC_CLK_TCK);
  *cpu_s = (double)(ut + st) / hz;
  *start_s = (double)start / hz;
  *rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
  return 0;
}

/* Boot time (seconds since the epoch) from /proc/stat's btime; 0 when unknown. */
static double metrics_boot_time(void)
{
  char line[256];
  double bt = 0;
  FILE *fp = fopen("/proc/stat", "r");
  while (fp && fgets(line, sizeof(line), fp))
    if (sscanf(line, "btime %lf", &bt) == 1)
      break;
  if (fp)
    fclose(fp);
  return bt;
}

static double metrics_open_fds(void)
{
  double n = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir(d));)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n > 0 ? n - 1 : 0; /* not the directory's own fd */
}

static void metrics_process_update(void)
{
  double cpu, start, rss;
  if (metrics_proc_stat(&cpu, &start, &rss) < 0)
    return;
  metrics_set(metrics_series0(metrics_family("process_cpu_seconds_total", METRICS_COUNTER,
                                             "User and system CPU time spent in seconds.", NULL)),
              cpu);
  metrics_set(metrics_series0(metrics_family("process_resident_memory_bytes", METRICS_GAUGE,
                                             "Resident memory size in bytes.", NULL)),
              rss);
  metrics_set(metrics_series0(metrics_family("process_start_time_seconds", METRICS_GAUGE,
                                             "Start time of the process since unix epoch in seconds.", NULL)),
              metrics_boot_time() + start);
  metrics_set(
      metrics_series0(metrics_family("process_open_fds", METRICS_GAUGE, "Number of open file descriptors.", NULL)),
      metrics_open_fds());
}

/* ---- rayc_node_* metrics, read from /proc at a render ---- */

/* The machine's busy (all but idle and iowait) and total CPU ticks from /proc/stat; 0 or -1. */
static int metrics_cpu_ticks(unsigned long long *busy, unsigned long long *total)
{
  unsigned long long v[8] = {0};
  FILE *fp = fopen("/proc/stat", "r");
  int n = fp ? fscanf(fp, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                      &v[6], &v[7])
             : 0;
  if (fp)
    fclose(fp);
  if (n < 4)
    return -1;
  *total = 0;
  for (int i = 0; i < 8; i++)
    *total += v[i];
  *busy = *total - v[3] - v[4];
  return 0;
}

static void metrics_node_update(void)
{
  pthread_mutex_lock(&reg.node_mu);
  if (!reg.node) {
    pthread_mutex_unlock(&reg.node_mu);
    return;
  }
  unsigned long long busy, total;
  int64_t now = now_ms();
  if (now - reg.cpu_at_ms >= 1000 && metrics_cpu_ticks(&busy, &total) == 0 && total > reg.cpu_total) {
    if (reg.cpu_total)
      metrics_set(metrics_series0(metrics_family("rayc_node_cpu_utilization", METRICS_GAUGE,
                                                 "The node's CPU use in percent between the last two samples "
                                                 "(taken at scrapes, at least a second apart).",
                                                 NULL)),
                  100.0 * (double)(busy - reg.cpu_busy) / (double)(total - reg.cpu_total));
    reg.cpu_busy = busy;
    reg.cpu_total = total;
    reg.cpu_at_ms = now;
  }
  pthread_mutex_unlock(&reg.node_mu);
  int64_t mem_total, avail;
  if (read_meminfo(&mem_total, &avail) != 0)
    return;
  metrics_set(
      metrics_series0(metrics_family("rayc_node_mem_capacity", METRICS_GAUGE, "The node's memory in bytes.", NULL)),
      (double)mem_total);
  metrics_set(metrics_series0(metrics_family("rayc_node_mem_used", METRICS_GAUGE,
                                             "The node's memory in use (total minus available) in bytes.", NULL)),
              (double)(mem_total - avail));
}

void metrics_node_enable(void)
{
  pthread_mutex_lock(&reg.node_mu);
  if (!reg.node && metrics_cpu_ticks(&reg.cpu_busy, &reg.cpu_total) == 0)
    reg.cpu_at_ms = now_ms() - 1000; /* the first scrape reports the use since now */
  reg.node = 1;
  pthread_mutex_unlock(&reg.node_mu);
}

char *metrics_render(size_t *len)
{
  mbuf_t b = {0};
  mbuf_put(&b, "", 0);
  if (reg.process)
    metrics_process_update();
  metrics_node_update();
  pthread_mutex_lock(&reg.mu);
  for (const metrics_family_t *f = reg.first; f; f = f->next)
    metrics_render_family(&b, f);
  pthread_mutex_unlock(&reg.mu);
  if (len)
    *len = b.len;
  return b.p;
}

void metrics_process_enable(void)
{
  pthread_mutex_lock(&reg.mu);
  reg.process = 1;
  pthread_mutex_unlock(&reg.mu);
}
