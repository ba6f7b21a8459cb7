/*
 * downsample.c: aggregation of raw samples, and of finer buckets, into the
 * min/max/sum/count/last buckets of the store's downsampled tiers. The rules
 * (stale markers, NaN, signed zeros, merge stability) are in downsample.h.
 *
 * Raw samples and finer buckets go through the same merge step: a raw
 * sample x is the bucket {min x, max x, sum x, count 1, last x}. That is
 * what makes re-aggregation agree with aggregation of the raw data.
 */
#include "tsdb/downsample.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int is_stale(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u == TSDB_STALE_NAN;
}

/* floor(ts / res) for res > 0; C division truncates toward zero. */
static int64_t bucket_of(int64_t ts, int64_t res)
{
    int64_t q = ts / res;
    if (ts % res < 0)
        q--;
    return q;
}

/* Is x a better min than the current m (NaN loses, -0.0 beats +0.0)? */
static int better_min(double x, double m)
{
    if (isnan(x))
        return 0;
    if (isnan(m) || x < m)
        return 1;
    return x == m && signbit(x) && !signbit(m);
}

static int better_max(double x, double m)
{
    if (isnan(x))
        return 0;
    if (isnan(m) || x > m)
        return 1;
    return x == m && !signbit(x) && signbit(m);
}

void tsdb__aggs_init(struct tsdb__aggs *a)
{
    memset(a, 0, sizeof(*a));
}

void tsdb__aggs_release(struct tsdb__aggs *a)
{
    free(a->ts);
    for (int c = 0; c < TSDB__AGG_N; c++)
        free(a->v[c]);
    tsdb__aggs_init(a);
}

void tsdb__aggs_reset(struct tsdb__aggs *a)
{
    a->n = 0;
}

/* Room for one more bucket; every array shares cap. */
static void reserve_one(struct tsdb__aggs *a)
{
    if (a->n < a->cap)
        return;
    size_t cap = a->cap ? a->cap * 2 : 16;
    a->ts = xrealloc(a->ts, cap * sizeof(*a->ts));
    for (int c = 0; c < TSDB__AGG_N; c++)
        a->v[c] = xrealloc(a->v[c], cap * sizeof(*a->v[c]));
    a->cap = cap;
}

/*
 * Fold one bucket-shaped input (t, v[]) at bucket id b into out: continue
 * out's last bucket if it is bucket b, else start a new one. *last_b caches
 * the bucket id of out's last bucket (valid when out->n > 0).
 */
static void fold(struct tsdb__aggs *out, int64_t *last_b, int64_t b, int64_t t,
                 const double v[TSDB__AGG_N])
{
    size_t i = out->n;
    if (i > 0 && *last_b == b) {
        i--;
        assert(t > out->ts[i]);
        if (better_min(v[TSDB__AGG_MIN], out->v[TSDB__AGG_MIN][i]))
            out->v[TSDB__AGG_MIN][i] = v[TSDB__AGG_MIN];
        if (better_max(v[TSDB__AGG_MAX], out->v[TSDB__AGG_MAX][i]))
            out->v[TSDB__AGG_MAX][i] = v[TSDB__AGG_MAX];
        out->v[TSDB__AGG_SUM][i] += v[TSDB__AGG_SUM];
        out->v[TSDB__AGG_COUNT][i] += v[TSDB__AGG_COUNT];
        out->v[TSDB__AGG_LAST][i] = v[TSDB__AGG_LAST];
        out->ts[i] = t;
        return;
    }
    assert(i == 0 || t > out->ts[i - 1]);
    reserve_one(out);
    out->ts[i] = t;
    for (int c = 0; c < TSDB__AGG_N; c++)
        out->v[c][i] = v[c];
    out->n = i + 1;
    *last_b = b;
}

void tsdb__downsample(const struct tsdb_sample *s, size_t n, int64_t res_ms, struct tsdb__aggs *out)
{
    assert(res_ms > 0);
    int64_t last_b = out->n ? bucket_of(out->ts[out->n - 1], res_ms) : 0;
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || s[i].ts > s[i - 1].ts);
        double x = s[i].v;
        if (is_stale(x))
            continue;
        const double v[TSDB__AGG_N] = {x, x, x, 1.0, x};
        fold(out, &last_b, bucket_of(s[i].ts, res_ms), s[i].ts, v);
    }
}

void tsdb__downsample_aggs(const struct tsdb__aggs *in, int64_t res_ms, struct tsdb__aggs *out)
{
    assert(res_ms > 0);
    assert(in != out);
    int64_t last_b = out->n ? bucket_of(out->ts[out->n - 1], res_ms) : 0;
    for (size_t i = 0; i < in->n; i++) {
        double v[TSDB__AGG_N];
        for (int c = 0; c < TSDB__AGG_N; c++)
            v[c] = in->v[c][i];
        fold(out, &last_b, bucket_of(in->ts[i], res_ms), in->ts[i], v);
    }
}

size_t tsdb__aggs_read(const struct tsdb__aggs *a, enum tsdb__agg_read what,
                       struct tsdb_sample *out)
{
    assert(what >= TSDB__READ_MIN && what <= TSDB__READ_AVG);
    for (size_t i = 0; i < a->n; i++) {
        out[i].ts = a->ts[i];
        if (what == TSDB__READ_AVG)
            out[i].v = a->v[TSDB__AGG_SUM][i] / a->v[TSDB__AGG_COUNT][i];
        else
            out[i].v = a->v[what][i];
    }
    return a->n;
}
