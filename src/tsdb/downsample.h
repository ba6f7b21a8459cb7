/*
 * downsample.h: the pure-function core of the store's downsampled tiers
 * (1 min and 1 h; private to src/tsdb/). A tier keeps, per series and per
 * bucket, five aggregates of the raw samples in the bucket: min, max, sum,
 * count and last. Nothing here does I/O or locking; the store decides what
 * to feed in and where the buckets go.
 *
 * Buckets. Bucket k of resolution res holds the samples with
 * k * res <= ts < (k + 1) * res, k = floor(ts / res): aligned to multiples of
 * res since the epoch, negative timestamps included (floor, not C's
 * truncating division). A bucket is stamped with the timestamp of the last
 * sample that went into it, so (ts, last) is a real raw sample and a reader
 * gets points no later than the data it has. Buckets with nothing in them
 * do not exist (no empty or NaN-filled buckets).
 *
 * Values:
 *   - Prometheus stale markers (the NaN with bits exactly
 *     0x7ff0000000000002, TSDB_STALE_NAN) are excluded from every aggregate,
 *     including count and last, and from the bucket's timestamp. A bucket
 *     that holds only stale markers produces no bucket. A tier therefore
 *     does not record staleness: a series that ended shows as missing
 *     buckets, which is what a reader of 1 min or 1 h points sees anyway.
 *   - Any other NaN is a value: count includes it and last may be it (bit
 *     for bit). min and max skip NaN unless the bucket holds nothing else,
 *     then they are the bucket's first NaN (as Prometheus's
 *     min_over_time/max_over_time: a NaN is replaced by any number). sum
 *     becomes NaN, by IEEE arithmetic: count counts the NaN, so avg =
 *     sum / count must not pretend it was not there, and sum_over_time /
 *     avg_over_time over the raw samples give NaN too. Skipping NaN in sum
 *     would make avg disagree with the raw data it summarises.
 *   - +-Inf are ordinary numbers (sum of +Inf and -Inf is NaN, as IEEE).
 *   - min takes -0.0 as below +0.0 and max +0.0 as above -0.0, so both are
 *     independent of sample order.
 *   - No aggregate is ever the stale marker (min, max and last are non-stale
 *     inputs; arithmetic never produces a signalling NaN), so a reader can
 *     pass tier points to code that treats stale markers specially.
 *
 * Merge stability. Aggregating adjacent time ranges separately and
 * concatenating gives the same buckets as aggregating them together when
 * the split is on a bucket boundary, and the same holds for re-aggregation:
 * downsample_aggs(downsample(x, 60 s), 1 h) equals downsample(x, 1 h)
 * exactly in min, max, count, last and ts; sum differs only by the rounding
 * of adding the per-minute sums instead of the samples one by one.
 *
 * Streaming. The head hands over a series' raw samples in windows aligned to
 * 2 h (its chunk windows). As long as res divides 2 h (60 s and 3600 s do),
 * no bucket straddles two windows, so each window can be downsampled into
 * its own tsdb__aggs (one per block on disk) and the results concatenated.
 * That is a precondition for separate outputs: a bucket split across two
 * outputs would appear in both. Appending consecutive windows to the same
 * `out` is always correct: a call whose first samples fall in out's last
 * bucket continues that bucket (giving exactly what one call over the
 * concatenated input would give).
 */
#ifndef SITREP_TSDB_DOWNSAMPLE_H
#define SITREP_TSDB_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

/* Prometheus's stale marker, as bits (compare bits: every NaN != itself). */
#define TSDB_STALE_NAN 0x7ff0000000000002ull

/* Tier resolutions. Each divides the head's 2 h window (see Streaming). */
#define TSDB_RES_1M_MS 60000
#define TSDB_RES_1H_MS 3600000

/* The columns of a tier. */
enum tsdb__agg {
    TSDB__AGG_MIN,
    TSDB__AGG_MAX,
    TSDB__AGG_SUM,
    TSDB__AGG_COUNT, /* a whole number >= 1, exact up to 2^53 */
    TSDB__AGG_LAST,
    TSDB__AGG_N
};

/*
 * The aggregated buckets of one series, oldest first: bucket i has the
 * timestamp ts[i] in every column v[c][i], and ts is strictly increasing
 * (one entry per non-empty bucket). The arrays hold cap entries, n of them
 * used; all NULL while cap == 0. The struct owns its arrays.
 */
struct tsdb__aggs {
    int64_t *ts;            /* per bucket: timestamp of its last sample */
    double *v[TSDB__AGG_N]; /* per column (enum tsdb__agg) */
    size_t n, cap;
};

/* Empty; allocates nothing. */
void tsdb__aggs_init(struct tsdb__aggs *a);
/* Free the arrays; a is empty (and initialised) afterwards. */
void tsdb__aggs_release(struct tsdb__aggs *a);
/* n = 0, keeping the memory for reuse. */
void tsdb__aggs_reset(struct tsdb__aggs *a);

/*
 * Append the aggregates of the raw samples s[0..n) in buckets of res_ms to
 * out. Preconditions (asserted): res_ms > 0; timestamps strictly
 * increasing and, if out is not empty, above out's last ts. If the first
 * samples fall in out's last bucket, that bucket is continued. n == 0 does
 * nothing. Allocation aborts on out-of-memory, so this cannot fail.
 */
void tsdb__downsample(const struct tsdb_sample *s, size_t n, int64_t res_ms,
                      struct tsdb__aggs *out);

/*
 * Append to out the re-aggregation of the finer buckets in into buckets of
 * res_ms: min of mins, max of maxes (with the NaN and signed-zero rules
 * above), sum of sums, sum of counts, last of lasts; ts is the last input
 * ts in the bucket. An input bucket belongs where its ts falls, so res_ms
 * must be a multiple of the resolution `in` was built with (not checked:
 * `in` does not know it). Same other preconditions and continuation as
 * tsdb__downsample(). in and out must be different structs.
 */
void tsdb__downsample_aggs(const struct tsdb__aggs *in, int64_t res_ms, struct tsdb__aggs *out);

/* What a reader wants from a tier: a column, or avg = sum / count. */
enum tsdb__agg_read {
    TSDB__READ_MIN = TSDB__AGG_MIN,
    TSDB__READ_MAX = TSDB__AGG_MAX,
    TSDB__READ_SUM = TSDB__AGG_SUM,
    TSDB__READ_COUNT = TSDB__AGG_COUNT,
    TSDB__READ_LAST = TSDB__AGG_LAST,
    TSDB__READ_AVG = TSDB__AGG_N,
};

/*
 * Write the points of `what`, (ts[i], value of bucket i), into
 * out[0..a->n), which the caller sizes. Returns a->n.
 */
size_t tsdb__aggs_read(const struct tsdb__aggs *a, enum tsdb__agg_read what,
                       struct tsdb_sample *out);

#endif
