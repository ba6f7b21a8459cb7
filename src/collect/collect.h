/*
 * collect.h: host collection. A collector thread wakes on every whole
 * wall-clock second (aligned, so it never drifts), runs each source once
 * (one file of /proc or /sys per source, as node_exporter names them), and
 * publishes the batch: to the sink (later the time-series store) and as the
 * snapshot that /metrics serves.
 *
 * Threads: collect_start() creates the one collector thread; everything
 * else may be called from any thread. The collector owns its batches; the
 * sink sees a batch only during the callback.
 */
#ifndef SITREP_COLLECT_H
#define SITREP_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct collect_opts {
    const char *proc_root; /* default "/proc" */
    const char *sys_root;  /* default "/sys" */
    const char *rootfs;    /* prefix for mount points in statvfs; default "" */
    int interval_s;        /* seconds between ticks; default 1 */
    int top_processes;     /* top N processes by CPU and by RSS; default 10 */
    /*
     * Field selection: PCRE2 regexes that must match a whole field name, of
     * /proc/vmstat ("pgfault") and of netstat's "<Proto>_<Field>"
     * ("TcpExt_ListenDrops"). NULL keeps every field. Compiled by
     * collect_new(); one that collect_check_fields() refuses switches its
     * source off (logged). Only read during collect_new().
     */
    const char *vmstat_fields;
    const char *netstat_fields;
    /* Names of sources to skip (see collect_source_names()). */
    const char *const *disabled;
    size_t ndisabled;
    /* Called on the collector thread with each finished batch. */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct collect;

/* Create a collector; copies what it needs from opts. Never NULL. */
struct collect *collect_new(const struct collect_opts *opts);
/* Stop the thread if running and free everything. NULL is fine. */
void collect_free(struct collect *c);

/* Start the collector thread. Returns 0, or -1 (logged). */
int collect_start(struct collect *c);
/* Ask the thread to stop and join it; returns within one cycle's work. */
void collect_stop(struct collect *c);

/*
 * Run one full cycle now on the calling thread, timestamped ts_ms, and
 * publish it. For tests and benchmarks; must not run while the thread does.
 */
void collect_once(struct collect *c, int64_t ts_ms);

/* Append the latest published batch in text exposition format. */
int collect_expose(struct collect *c, struct sbuf *out);

/*
 * The latest published batch, for tests on the calling thread (no locking:
 * only valid while the collector thread is not running).
 */
const struct metric_buf *collect_last(struct collect *c);

/*
 * Check a field-selection regex (collect_opts.vmstat_fields, netstat_fields)
 * for config validation. Returns 0, or -1 with err set to "bad regex at
 * offset N: why" and *offset to N (a byte offset into re).
 */
int collect_check_fields(const char *re, char *err, size_t errlen, size_t *offset);

/* Names of all known sources, for config validation and --help. */
const char *const *collect_source_names(size_t *n);

#endif
