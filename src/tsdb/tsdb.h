/*
 * tsdb.h: sitrep's embedded time-series store, the public API. Producers
 * append batches of samples (struct metric_buf); readers select series by
 * label matchers over a time range, from the raw samples or from a
 * downsampled tier chosen by the query's step. Everything appended is
 * written to a write-ahead log under dir/wal before the call returns and
 * survives a crash of the process; tsdb_sync() (about once a second, by the
 * background thread) makes it survive power loss too.
 *
 * The newest samples live in memory (the head); complete time windows are
 * cut into immutable blocks on disk, downsampled into 1 min and 1 h tiers,
 * merged by compaction and deleted by retention and the size cap, all by a
 * background thread (or by tsdb_maintain() calls). Design: docs/TSDB.md.
 *
 * Threads: any number of threads may append and query concurrently; appends
 * are serialised internally, queries never block appends.
 */
#ifndef SITREP_TSDB_H
#define SITREP_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"

struct tsdb;

struct tsdb_opts {
    const char *dir;          /* data directory of the store (created if absent) */
    uint32_t max_series;      /* 0: 200,000 */
    uint32_t max_labels;      /* per series, __name__ included; 0: 32 */
    int64_t block_span_ms;    /* window of a block cut from memory; 0: 2 h (must divide 2 h) */
    int64_t retention_ms[3];  /* raw, 1 min and 1 h tiers; 0: 14 d, 90 d, 730 d */
    uint64_t max_bytes;       /* cap on blocks + WAL + checkpoint; 0: 2 GiB */
    uint64_t min_free_bytes;  /* stop writing below this much free space (0: no floor) */
    int min_free_percent;     /* ... or below this % of the file system (0: none) */
    int64_t sync_interval_ms; /* WAL fsync period of the background thread; 0: 1 s */
    int64_t checkpoint_interval_ms; /* 0: 5 min (and whenever the WAL passes 64 MiB) */
    int background;                 /* run maintenance in a thread (else call tsdb_maintain) */
};

/* Open (loading blocks, replaying the WAL). Returns 0 and *out, or -1 with err filled. */
int tsdb_open(struct tsdb **out, const struct tsdb_opts *opts, char *err, size_t errlen);
/* Stop the background thread, write a checkpoint, sync and free. NULL is fine. */
void tsdb_close(struct tsdb *db);

/* What happened to the samples of one append (added to, not reset). */
struct tsdb_append_stats {
    uint64_t accepted;
    uint64_t out_of_order; /* timestamp not after the series' last one: refused */
    uint64_t too_old;      /* before the window already written to disk: refused */
    uint64_t series_limit; /* new series past max_series: refused */
    uint64_t invalid;      /* bad label names/values, too many labels: refused */
};

/*
 * Append every sample of b at b->ts_ms; its series is {__name__=family,
 * labels...}. source names the producer (e.g. "collect", a scrape job) for
 * the per-source refusal counters (at most 32 distinct names; more share
 * "other"). Returns 0, or -1 if the WAL could not be written (disk full):
 * the samples are then kept in memory and made durable by a checkpoint once
 * space returns.
 */
int tsdb_append_batch(struct tsdb *db, const char *source, const struct metric_buf *b,
                      struct tsdb_append_stats *st);
/* Make everything appended so far durable (fdatasync). 0 or -1. */
int tsdb_sync(struct tsdb *db);

enum {
    TSDB_MAINT_FLUSH = 1, /* also cut the newest, still open window (benchmarks, tests) */
};
/*
 * One maintenance pass (what the background thread does each second): sync
 * the WAL, cut every complete window of the head into a block and its
 * downsampled blocks, compact, apply retention and the size cap, check free
 * space, and write a checkpoint when one is due. Returns 0, or -1 if some
 * step failed (logged, counted, retried next pass).
 */
int tsdb_maintain(struct tsdb *db, int flags);

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

/* What to read from a downsampled tier (ignored for raw samples). */
enum tsdb_agg {
    TSDB_AGG_LAST,
    TSDB_AGG_MIN,
    TSDB_AGG_MAX,
    TSDB_AGG_SUM,
    TSDB_AGG_COUNT,
    TSDB_AGG_AVG
};

/* What a query reads. */
struct tsdb_range {
    int64_t mint, maxt; /* inclusive */
    int64_t step_ms;    /* the coarsest tier whose resolution is <= step serves it; 0: raw */
    enum tsdb_agg agg;
    /*
     * Label sets only (the series API, label listings): next() gives every
     * matching series of the blocks overlapping the range and of memory,
     * with no samples, without reading any.
     */
    int series_only;
};

/*
 * The series matching all of ms[0..n) with samples in the range, in label
 * order. Usage:
 *
 *     struct tsdb_query *q;
 *     if (tsdb_query_open(db, ms, n, &range, &q, err, sizeof(err)) < 0) ...
 *     while ((r = tsdb_query_next(q, &ls, &nls, &ss, &nss)) > 0)
 *         ... labels ls[0..nls) sorted by name, samples ss[0..nss) oldest first
 *     tsdb_query_close(q);
 *
 * The arrays are valid until the next call. Samples come from the tier
 * chosen by the step where it has data, else from the finest that has.
 * At least one matcher must not match the empty string. open returns 0, or
 * -1 with err filled (bad regex with its offset, empty selector, regex too
 * costly); next returns 1, 0 at the end, or -1 with err (from open) filled.
 * A query holds blocks open (not locks appends wait for); close it soon.
 */
struct tsdb_query;
struct tsdb_matcher;
int tsdb_query_open(struct tsdb *db, const struct tsdb_matcher *ms, size_t n,
                    const struct tsdb_range *range, struct tsdb_query **out, char *err,
                    size_t errlen);
int tsdb_query_next(struct tsdb_query *q, const struct metric_label **labels, size_t *nlabels,
                    const struct tsdb_sample **samples, size_t *nsamples);
void tsdb_query_close(struct tsdb_query *q);

/*
 * Called once per selected series (in label order) with its labels
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

/*
 * Metric metadata as producers declared it (type "counter", "gauge" or
 * "unknown", help text), by family name in name order; only metric's when
 * metric is not NULL. fn returning nonzero stops (and is returned). Called
 * under a lock: fn must not call back into the store.
 */
typedef int (*tsdb_meta_fn)(void *ctx, const char *name, const char *type, const char *help);
int tsdb_metadata(struct tsdb *db, const char *metric, tsdb_meta_fn fn, void *ctx);

/* Series in the store's index (head and blocks loaded since open). */
uint32_t tsdb_series_count(struct tsdb *db);

/*
 * Where the store's memory goes: bytes allocated (capacities, without the
 * allocator's own overhead), for self-metrics and benchmarks.
 */
struct tsdb_memory {
    size_t index;  /* label index: strings, postings, each series' labels */
    size_t head;   /* samples in memory: series, tails, open chunks */
    size_t shapes; /* producers' last batches and their series ids */
    size_t wal;    /* write-ahead log buffers and record scratch */
};
void tsdb_memory(struct tsdb *db, struct tsdb_memory *m);

/* The store's self-metrics (sitrep_tsdb_*) into b. */
void tsdb_expose(struct tsdb *db, struct metric_buf *b);

#endif
