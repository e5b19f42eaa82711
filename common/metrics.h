/*
 * Prometheus metrics: one registry per process, rendered in the text exposition format (0.0.4).
 *
 * Design. A daemon's loop, its gRPC completion-queue threads and the HTTP thread that serves
 * /metrics all touch the registry, so it is the one piece of shared mutable state that is locked:
 * one mutex guards the families, their series and every value (an update is a lock, a few adds and
 * an unlock: ~30 ns uncontended, far below a gRPC call). It is process-wide, as in every Prometheus
 * client library, because the rpc layer and the daemons both add to it and a scrape must see all
 * of it; nothing else in rayc is global.
 *
 * A family has a name ("rayc_tasks"), a type, a help line and label names ("State,Name"). A series
 * is one label-value combination of a family; metrics_series() returns the same series for the
 * same values, so callers on a hot path look it up once and keep the pointer (series live as long
 * as the process, unless their family is cleared). Gauges that mirror a table (tasks by state) are
 * rebuilt from a snapshot: metrics_family_clear() then metrics_set() on each value.
 *
 * Histograms share one set of bucket bounds meant for latencies in seconds (100 us .. 10 s).
 */
#ifndef RAYC_COMMON_METRICS_H
#define RAYC_COMMON_METRICS_H

#include <stddef.h>

typedef enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type_t;

typedef struct metrics_family metrics_family_t;
typedef struct metrics_series metrics_series_t;

/* Most label names a family may have. */
#define METRICS_MAX_LABELS 4

/* Returns the family called name, registering it on first use (later calls with the same name
 * return it, whatever their other arguments). name, help and labels (comma-separated label
 * names, NULL or "": none) are borrowed and must be string literals or outlive the process.
 * Thread-safe. Never returns NULL. */
metrics_family_t *metrics_family(const char *name, metrics_type_t type, const char *help, const char *labels);

/* Returns the series of f with the given label values (one per label name of f; borrowed, copied),
 * making it on first use. Values may hold any bytes but NUL; they are escaped when rendered.
 * Thread-safe. Never returns NULL. */
metrics_series_t *metrics_series(metrics_family_t *f, const char *const *values);

/* Shorthands for families with zero, one or two labels. */
metrics_series_t *metrics_series0(metrics_family_t *f);
metrics_series_t *metrics_series1(metrics_family_t *f, const char *v1);
metrics_series_t *metrics_series2(metrics_family_t *f, const char *v1, const char *v2);

/* Counter: adds v (>= 0; negative values are ignored). Gauge: adds v (may be negative). */
void metrics_add(metrics_series_t *s, double v);
/* Gauge: sets the value. */
void metrics_set(metrics_series_t *s, double v);
/* Histogram: counts one observation of v. */
void metrics_observe(metrics_series_t *s, double v);

/* Current value of a counter or gauge series (a histogram's count). Thread-safe; for tests. */
double metrics_value(metrics_series_t *s);

/* Drops every series of f: for gauges rebuilt from a snapshot. Pointers to its series become
 * invalid, so never clear a family whose series someone keeps. Thread-safe. */
void metrics_family_clear(metrics_family_t *f);

/* Renders every family in the text exposition format. Returns a new string (free()); *len (if
 * not NULL) is its length. Thread-safe. */
char *metrics_render(size_t *len);

/* Registers the standard process_* families (resident memory, CPU seconds, open fds, start time)
 * to be read from /proc at each render. Idempotent. */
void metrics_process_enable(void);

/* Registers the node's gauges, read from /proc at each render instead of on a timer (an idle
 * daemon then reads nothing): rayc_node_mem_capacity/_used, and rayc_node_cpu_utilization, the
 * machine's CPU use between two samples taken at renders at least a second apart (the first
 * against the call to this). Idempotent. */
void metrics_node_enable(void);

#endif
