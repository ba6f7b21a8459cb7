/*
 * tsdb.h: sitrep's embedded time-series store, the public API. Producers
 * append batches of samples (struct metric_buf); readers select series by
 * label matchers over a time range. Everything appended is written to a
 * write-ahead log under dir/wal before the call returns and survives a
 * crash; tsdb_sync() makes it survive power loss too.
 *
 * Status: head (memory) + WAL. Blocks on disk, compaction, tiers and
 * retention are next (docs/TSDB.md); until then the WAL is never truncated,
 * so the daemon does not write into the store yet.
 *
 * Threads: any number of threads may call tsdb_select() while one or more
 * append; appends are serialised internally.
 */
#ifndef SITREP_TSDB_H
#define SITREP_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"

struct tsdb;

struct tsdb_opts {
    const char *dir;     /* data directory of the store (created if absent) */
    uint32_t max_series; /* 0: 200,000 */
    uint32_t max_labels; /* per series; 0: 32 */
};

/* Open (replaying the WAL). Returns 0 and *out, or -1 with err filled. */
int tsdb_open(struct tsdb **out, const struct tsdb_opts *opts, char *err, size_t errlen);
/* Flush, sync and free. NULL is fine. */
void tsdb_close(struct tsdb *db);

/* What happened to the samples of one append (added to, not reset). */
struct tsdb_append_stats {
    uint64_t accepted;
    uint64_t out_of_order; /* timestamp not after the series' last one: refused */
    uint64_t series_limit; /* new series past max_series: refused */
    uint64_t invalid;      /* bad label names/values, too many labels: refused */
};

/*
 * Append every sample of b at b->ts_ms; its series is {__name__=family,
 * labels...}. Returns 0, or -1 if the WAL could not be written (disk full):
 * the samples are then in memory and the WAL keeps them buffered for the
 * next successful append or sync.
 */
int tsdb_append_batch(struct tsdb *db, const struct metric_buf *b, struct tsdb_append_stats *st);
/* Make everything appended so far durable (fdatasync). 0 or -1. */
int tsdb_sync(struct tsdb *db);

enum tsdb_match { TSDB_EQ, TSDB_NEQ, TSDB_RE, TSDB_NRE };

struct tsdb_matcher {
    enum tsdb_match op;
    const char *name;
    const char *value; /* regexes are fully anchored, PromQL-style */
};

struct tsdb_sample {
    int64_t ts;
    double v;
};

/*
 * Called once per selected series (in series id order) with its labels
 * (sorted by name) and its samples in [mint, maxt], oldest first. The
 * arrays are valid during the call only. Non-zero stops the selection.
 */
typedef int (*tsdb_series_fn)(void *ctx, const struct metric_label *labels, size_t nlabels,
                              const struct tsdb_sample *samples, size_t nsamples);

/*
 * Select the series matching all of ms[0..n) and deliver their samples in
 * [mint, maxt]. At least one matcher must not match the empty string.
 * Returns 0, or -1 with err filled (bad regex with its offset, empty
 * selector, regex too costly).
 */
int tsdb_select(struct tsdb *db, const struct tsdb_matcher *ms, size_t n, int64_t mint,
                int64_t maxt, tsdb_series_fn fn, void *ctx, char *err, size_t errlen);

/* Series in the store. */
uint32_t tsdb_series_count(struct tsdb *db);

#endif
