/*
 * downsample_test.c: the tiers' aggregation: hand-checked buckets (bucket
 * edges, negative and extreme timestamps, stale markers, NaN, infinities,
 * signed zeros), avg and the other reads, empty input, a brute-force oracle
 * over random series at 1 min and 1 h, re-aggregation 1 min -> 1 h against
 * direct 1 h, and stability under splitting the input.
 */
#include "testutil.h"
#include "tsdb/downsample.h"

#include <math.h>

#define M TSDB_RES_1M_MS
#define H TSDB_RES_1H_MS

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

#define STALE     from_bits(TSDB_STALE_NAN)
#define QNAN_PAY  from_bits(0x7ff8000000000002ull) /* quiet twin of the marker: ordinary */
#define SNAN_OTHR from_bits(0x7ff0000000000001ull) /* another signalling NaN: ordinary */
#define NEG_NAN   from_bits(0xfff8000000000000ull)

/* One expected bucket. */
struct want {
    int64_t ts;
    double min, max, sum, count, last;
};

/* Bit-exact comparison, so NaN payloads and signed zeros count. */
static void assert_bits(double got, double want, const char *what, size_t i)
{
    if (to_bits(got) != to_bits(want))
        fail_msg("bucket %zu %s: got %a (%016llx), want %a (%016llx)", i, what, got,
                 (unsigned long long)to_bits(got), want, (unsigned long long)to_bits(want));
}

/* Every invariant of a struct tsdb__aggs, after every operation. */
static void check_invariants(const struct tsdb__aggs *a)
{
    assert_true(a->n <= a->cap);
    for (size_t i = 0; i < a->n; i++) {
        if (i > 0)
            assert_true(a->ts[i] > a->ts[i - 1]);
        double c = a->v[TSDB__AGG_COUNT][i];
        assert_true(c >= 1 && c == floor(c));
        for (int k = 0; k < TSDB__AGG_N; k++)
            assert_true(to_bits(a->v[k][i]) != TSDB_STALE_NAN);
        double mn = a->v[TSDB__AGG_MIN][i], mx = a->v[TSDB__AGG_MAX][i];
        assert_int_equal(isnan(mn), isnan(mx));
        if (!isnan(mn))
            assert_true(mn <= mx);
    }
}

static void check_buckets(const struct tsdb__aggs *a, const struct want *w, size_t n)
{
    check_invariants(a);
    assert_int_equal(a->n, n);
    for (size_t i = 0; i < n; i++) {
        if (a->ts[i] != w[i].ts)
            fail_msg("bucket %zu ts: got %lld, want %lld", i, (long long)a->ts[i],
                     (long long)w[i].ts);
        assert_bits(a->v[TSDB__AGG_MIN][i], w[i].min, "min", i);
        assert_bits(a->v[TSDB__AGG_MAX][i], w[i].max, "max", i);
        if (isnan(w[i].sum))
            assert_true(isnan(a->v[TSDB__AGG_SUM][i]));
        else
            assert_bits(a->v[TSDB__AGG_SUM][i], w[i].sum, "sum", i);
        assert_bits(a->v[TSDB__AGG_COUNT][i], w[i].count, "count", i);
        assert_bits(a->v[TSDB__AGG_LAST][i], w[i].last, "last", i);
    }
}

static void run(const struct tsdb_sample *s, size_t n, int64_t res, const struct want *w, size_t nw)
{
    struct tsdb__aggs a;
    tsdb__aggs_init(&a);
    tsdb__downsample(s, n, res, &a);
    check_buckets(&a, w, nw);
    tsdb__aggs_release(&a);
}

static void test_basic_buckets(void **state)
{
    (void)state;
    /* Bucket edges: [0, 60000) holds 59999, 60000 starts the next, 120000.. is empty. */
    const struct tsdb_sample s[] = {
        {0, 1}, {30000, 3}, {59999, 2}, {60000, 5}, {185000, -1}, {239999, -4},
    };
    const struct want w[] = {
        {59999, 1, 3, 6, 3, 2},
        {60000, 5, 5, 5, 1, 5},
        {239999, -4, -1, -5, 2, -4},
    };
    run(s, ARRAY_SIZE(s), M, w, ARRAY_SIZE(w));

    /* The same at 1 h: one bucket. */
    const struct want wh[] = {{239999, -4, 5, 6, 6, -4}};
    run(s, ARRAY_SIZE(s), H, wh, ARRAY_SIZE(wh));

    /* A single sample. */
    const struct want w1[] = {{0, 1, 1, 1, 1, 1}};
    run(s, 1, M, w1, 1);
}

static void test_negative_and_extreme_ts(void **state)
{
    (void)state;
    /* Floor division: -1 and -60000 are in bucket -1, -60001 in bucket -2. */
    const struct tsdb_sample s[] = {
        {-120000, 8}, {-60001, 7}, {-60000, 6}, {-1, 9}, {0, 1},
    };
    const struct want w[] = {
        {-60001, 7, 8, 15, 2, 7},
        {-1, 6, 9, 15, 2, 9},
        {0, 1, 1, 1, 1, 1},
    };
    run(s, ARRAY_SIZE(s), M, w, ARRAY_SIZE(w));

    /* The ends of the int64 range: no overflow in bucket arithmetic. */
    const struct tsdb_sample e[] = {
        {INT64_MIN, 1}, {INT64_MIN + 1, 2}, {-1, 3}, {0, 4}, {INT64_MAX - 1, 5}, {INT64_MAX, 6},
    };
    const struct want we[] = {
        {INT64_MIN + 1, 1, 2, 3, 2, 2},
        {-1, 3, 3, 3, 1, 3},
        {0, 4, 4, 4, 1, 4},
        {INT64_MAX, 5, 6, 11, 2, 6},
    };
    run(e, ARRAY_SIZE(e), M, we, ARRAY_SIZE(we));
    run(e, ARRAY_SIZE(e), H, we, ARRAY_SIZE(we));
    /* res 1: every sample is its own bucket. */
    const struct want w1[] = {
        {INT64_MIN, 1, 1, 1, 1, 1}, {INT64_MIN + 1, 2, 2, 2, 1, 2}, {-1, 3, 3, 3, 1, 3},
        {0, 4, 4, 4, 1, 4},         {INT64_MAX - 1, 5, 5, 5, 1, 5}, {INT64_MAX, 6, 6, 6, 1, 6},
    };
    run(e, ARRAY_SIZE(e), 1, w1, ARRAY_SIZE(w1));
}

static void test_stale_markers(void **state)
{
    (void)state;
    /* clang-format off */
    const struct tsdb_sample s[] = {
        {1000, STALE}, {2000, STALE},   /* bucket 0: only markers: no bucket */
        {60000, 4}, {61000, STALE},     /* bucket 1: marker last: ts and last of the 4 */
        {120000, STALE}, {121000, 2},   /* bucket 2: markers around the numbers */
        {122000, STALE}, {123000, 3},
        {180000, STALE},                /* bucket 3: only a marker: no bucket */
    };
    /* clang-format on */
    const struct want w[] = {
        {60000, 4, 4, 4, 1, 4},
        {123000, 2, 3, 5, 2, 3},
    };
    run(s, ARRAY_SIZE(s), M, w, ARRAY_SIZE(w));
    run(s, 2, M, NULL, 0);
    const struct want wh[] = {{123000, 2, 4, 9, 3, 3}};
    run(s, ARRAY_SIZE(s), H, wh, ARRAY_SIZE(wh));
}

static void test_nan(void **state)
{
    (void)state;
    /* clang-format off */
    const struct tsdb_sample s[] = {
        {0, NAN}, {1, 2}, {2, 1},               /* min/max skip NaN; sum NaN */
        {60000, 3}, {60001, QNAN_PAY},          /* last is the NaN, bit for bit */
        {120000, SNAN_OTHR}, {120001, NEG_NAN}, /* only NaN: min/max are the first */
        {180000, NEG_NAN}, {180001, STALE},     /* NaN then a marker: marker ignored */
    };
    /* clang-format on */
    const struct want w[] = {
        {2, 1, 2, NAN, 3, 1},
        {60001, 3, 3, NAN, 2, QNAN_PAY},
        {120001, SNAN_OTHR, SNAN_OTHR, NAN, 2, NEG_NAN},
        {180000, NEG_NAN, NEG_NAN, NAN, 1, NEG_NAN},
    };
    run(s, ARRAY_SIZE(s), M, w, ARRAY_SIZE(w));
    /* At 1 h min/max find the numbers in the first minute. */
    const struct want wh[] = {{180000, 1, 3, NAN, 8, NEG_NAN}};
    run(s, ARRAY_SIZE(s), H, wh, ARRAY_SIZE(wh));
}

static void test_inf_and_signed_zero(void **state)
{
    (void)state;
    /* clang-format off */
    const struct tsdb_sample s[] = {
        {0, INFINITY}, {1, 1}, {2, -INFINITY}, /* sum inf - inf = NaN */
        {60000, INFINITY}, {60001, 5},         /* sum +Inf */
        {120000, 0.0}, {120001, -0.0},         /* min -0, max +0 whatever the order */
        {180000, -0.0}, {180001, 0.0},
        {240000, -0.0},                        /* sum of a lone -0.0 is -0.0 */
    };
    /* clang-format on */
    const struct want w[] = {
        {2, -INFINITY, INFINITY, NAN, 3, -INFINITY}, {60001, 5, INFINITY, INFINITY, 2, 5},
        {120001, -0.0, 0.0, 0.0, 2, -0.0},           {180001, -0.0, 0.0, 0.0, 2, 0.0},
        {240000, -0.0, -0.0, -0.0, 1, -0.0},
    };
    run(s, ARRAY_SIZE(s), M, w, ARRAY_SIZE(w));
}

static void test_read(void **state)
{
    (void)state;
    const struct tsdb_sample s[] = {
        {0, 1}, {1, 2}, {2, 6}, {60000, NAN}, {60001, 4}, {120000, -3},
    };
    struct tsdb__aggs a;
    tsdb__aggs_init(&a);
    tsdb__downsample(s, ARRAY_SIZE(s), M, &a);
    struct tsdb_sample out[3];
    static const struct {
        enum tsdb__agg_read what;
        double v[3];
    } cases[] = {
        {TSDB__READ_MIN, {1, 4, -3}},   {TSDB__READ_MAX, {6, 4, -3}},
        {TSDB__READ_SUM, {9, NAN, -3}}, {TSDB__READ_COUNT, {3, 2, 1}},
        {TSDB__READ_LAST, {6, 4, -3}},  {TSDB__READ_AVG, {3, NAN, -3}},
    };
    const int64_t ts[3] = {2, 60001, 120000};
    for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
        assert_int_equal(tsdb__aggs_read(&a, cases[c].what, out), 3);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(out[i].ts, ts[i]);
            if (isnan(cases[c].v[i]))
                assert_true(isnan(out[i].v) && to_bits(out[i].v) != TSDB_STALE_NAN);
            else
                assert_true(out[i].v == cases[c].v[i]);
        }
    }
    tsdb__aggs_release(&a);
}

static void test_empty_and_lifecycle(void **state)
{
    (void)state;
    struct tsdb__aggs a, b;
    tsdb__aggs_init(&a);
    tsdb__aggs_init(&b);
    assert_null(a.ts);
    assert_int_equal(a.cap, 0);
    tsdb__downsample(NULL, 0, M, &a);
    tsdb__downsample_aggs(&a, H, &b);
    assert_int_equal(a.n, 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(a.cap, 0); /* nothing allocated for nothing */
    assert_int_equal(tsdb__aggs_read(&a, TSDB__READ_AVG, NULL), 0);
    const struct tsdb_sample st[] = {{5, STALE}, {6, STALE}};
    tsdb__downsample(st, 2, M, &a);
    assert_int_equal(a.n, 0);

    /* Empty input leaves a non-empty out alone; reset keeps the memory. */
    const struct tsdb_sample s[] = {{0, 1}, {60000, 2}};
    tsdb__downsample(s, 2, M, &a);
    tsdb__downsample(s, 0, M, &a);
    const struct want w[] = {{0, 1, 1, 1, 1, 1}, {60000, 2, 2, 2, 1, 2}};
    check_buckets(&a, w, 2);
    tsdb__downsample_aggs(&b, H, &a);
    check_buckets(&a, w, 2);
    size_t cap = a.cap;
    int64_t *p = a.ts;
    tsdb__aggs_reset(&a);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.cap, cap);
    assert_ptr_equal(a.ts, p);
    tsdb__downsample(s, 2, M, &a);
    check_buckets(&a, w, 2);
    assert_ptr_equal(a.ts, p);
    tsdb__aggs_release(&a);
    assert_null(a.ts);
    assert_int_equal(a.n + a.cap, 0);
    tsdb__aggs_release(&a); /* twice is fine */
    tsdb__aggs_release(&b);
}

/* ---- random series and the brute-force oracle ---- */

/* A finite number: an integer (exact sums) or any double in +-1e6 (rounding). */
static double rnd_number(void)
{
    if (rnd() % 4 == 0)
        return (double)(int64_t)(rnd() % 2001) - 1000;
    return ((double)(rnd() >> 11) / 9007199254740992.0 - 0.5) * 2e6;
}

/* A random value: mostly numbers, with the special ones often enough to matter. */
static double rnd_value(void)
{
    switch (rnd() % 20) {
    case 0:
        return STALE;
    case 1:
        return NAN;
    case 2:
        return rnd() % 2 ? NEG_NAN : QNAN_PAY;
    case 3:
        return rnd() % 2 ? INFINITY : -INFINITY;
    case 4:
        return rnd() % 2 ? 0.0 : -0.0;
    case 5:
        return SNAN_OTHR;
    default:
        return rnd_number();
    }
}

/*
 * n samples from a random start (often negative, often whole seconds, often
 * just below zero) with random gaps: steady
 * seconds, jitter, 1 ms steps, jumps over buckets and hours, and runs of
 * stale markers that empty whole buckets. Values per rnd_value(), sometimes
 * only ordinary numbers (so re-aggregated sums stay finite to compare).
 */
static size_t rnd_series(struct tsdb_sample *s, size_t max, int specials)
{
    size_t n = 1 + rnd() % max;
    int64_t t = (int64_t)(rnd() % 40000000000ull) - 20000000000; /* +-~231 days */
    if (rnd() % 2) /* whole seconds: samples land on bucket edges */
        t -= t % 1000;
    if (rnd() % 3 == 0) /* cross zero, where truncating division would differ */
        t = -(int64_t)(rnd() % (3 * H));
    for (size_t i = 0; i < n; i++) {
        switch (rnd() % 16) {
        case 0:
            t += 1;
            break;
        case 1:
            t += 1 + (int64_t)(rnd() % 600000);
            break;
        case 2:
            t += 1 + (int64_t)(rnd() % 20000000);
            break;
        default:
            t += 1000 + (int64_t)(rnd() % 15) * 1000;
        }
        s[i].ts = t;
        s[i].v = specials ? rnd_value() : rnd_number();
        if (specials && rnd() % 50 == 0) /* a run of markers: the series went away */
            for (size_t k = rnd() % 200; k > 0 && i + 1 < n; k--) {
                t += 1000 + (int64_t)(rnd() % 60000);
                s[++i] = (struct tsdb_sample){t, STALE};
            }
    }
    return n;
}

static int is_stale_v(double v)
{
    return to_bits(v) == TSDB_STALE_NAN;
}

/* Bucket start by a different route than the code's: subtract the positive remainder. */
static int64_t oracle_start(int64_t ts, int64_t res)
{
    return ts - ((ts % res) + res) % res;
}

/*
 * Brute force: for each distinct bucket start (in order), scan the whole
 * input for that bucket's samples and compute each aggregate from its
 * definition. Returns the number of buckets written to w.
 */
static size_t oracle(const struct tsdb_sample *s, size_t n, int64_t res, struct want *w)
{
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t start = oracle_start(s[i].ts, res);
        if (i > 0 && oracle_start(s[i - 1].ts, res) == start)
            continue;
        struct want b = {0};
        int seen = 0, have_num = 0, have_neg0 = 0, have_pos0 = 0;
        for (size_t j = 0; j < n; j++) {
            if (s[j].ts < start || s[j].ts - start >= res || is_stale_v(s[j].v))
                continue;
            double x = s[j].v;
            b.sum = seen ? b.sum + x : x;
            if (!seen)
                b.min = b.max = x; /* the first NaN, if no number follows */
            seen = 1;
            b.count += 1;
            b.last = x;
            b.ts = s[j].ts;
            if (isnan(x))
                continue;
            if (!have_num || x < b.min)
                b.min = x;
            if (!have_num || x > b.max)
                b.max = x;
            have_num = 1;
            if (x == 0)
                *(signbit(x) ? &have_neg0 : &have_pos0) = 1;
        }
        if (!seen)
            continue;
        if (have_num && b.min == 0 && have_neg0)
            b.min = -0.0;
        if (have_num && b.max == 0 && have_pos0)
            b.max = 0.0;
        w[nw++] = b;
    }
    return nw;
}

#define MAXN 3000

static void test_random_vs_oracle(void **state)
{
    (void)state;
    static struct tsdb_sample s[MAXN];
    static struct want w[MAXN];
    static const int64_t res[] = {M, H};
    struct tsdb__aggs a;
    tsdb__aggs_init(&a);
    for (int round = 0; round < 300; round++) {
        size_t n = rnd_series(s, round % 10 == 0 ? MAXN : 300, 1);
        for (size_t r = 0; r < ARRAY_SIZE(res); r++) {
            tsdb__aggs_reset(&a);
            tsdb__downsample(s, n, res[r], &a);
            size_t nw = oracle(s, n, res[r], w);
            check_buckets(&a, w, nw);
        }
    }
    tsdb__aggs_release(&a);
}

/* Re-aggregated sums: exact for NaN/Inf, else within 1e-9 of the bucket's sum of |x|. */
static void check_reagg(const struct tsdb__aggs *got, const struct tsdb__aggs *want,
                        const struct tsdb_sample *s, size_t n, int64_t res)
{
    check_invariants(got);
    assert_int_equal(got->n, want->n);
    size_t j = 0;
    for (size_t i = 0; i < got->n; i++) {
        assert_int_equal(got->ts[i], want->ts[i]);
        for (int c = 0; c < TSDB__AGG_N; c++)
            if (c != TSDB__AGG_SUM)
                assert_bits(got->v[c][i], want->v[c][i], "column", i);
        double abs_sum = 0;
        for (; j < n && s[j].ts <= want->ts[i]; j++)
            if (isfinite(s[j].v) && oracle_start(s[j].ts, res) == oracle_start(want->ts[i], res))
                abs_sum += fabs(s[j].v);
        double g = got->v[TSDB__AGG_SUM][i], e = want->v[TSDB__AGG_SUM][i];
        if (!isfinite(e) || !isfinite(g)) {
            if (isnan(e))
                assert_true(isnan(g));
            else
                assert_true(g == e);
        } else if (fabs(g - e) > 1e-9 * abs_sum) {
            fail_msg("bucket %zu sum: %.17g vs %.17g (sum|x| %g)", i, g, e, abs_sum);
        }
    }
}

static void test_reaggregate_minute_to_hour(void **state)
{
    (void)state;
    static struct tsdb_sample s[MAXN];
    struct tsdb__aggs m, h, direct;
    tsdb__aggs_init(&m);
    tsdb__aggs_init(&h);
    tsdb__aggs_init(&direct);
    for (int round = 0; round < 300; round++) {
        /* Specials in most rounds; plain numbers in the rest so sums compare numerically. */
        size_t n = rnd_series(s, round % 10 == 0 ? MAXN : 600, round % 3 != 0);
        tsdb__aggs_reset(&m);
        tsdb__aggs_reset(&h);
        tsdb__aggs_reset(&direct);
        tsdb__downsample(s, n, M, &m);
        tsdb__downsample_aggs(&m, H, &h);
        tsdb__downsample(s, n, H, &direct);
        check_reagg(&h, &direct, s, n, H);
        /* Re-aggregating at the same resolution is the identity. */
        tsdb__aggs_reset(&h);
        tsdb__downsample_aggs(&m, M, &h);
        assert_int_equal(h.n, m.n);
        for (size_t i = 0; i < m.n; i++) {
            assert_int_equal(h.ts[i], m.ts[i]);
            for (int c = 0; c < TSDB__AGG_N; c++)
                assert_int_equal(to_bits(h.v[c][i]), to_bits(m.v[c][i]));
        }
    }
    tsdb__aggs_release(&m);
    tsdb__aggs_release(&h);
    tsdb__aggs_release(&direct);
}

static void assert_aggs_equal(const struct tsdb__aggs *a, const struct tsdb__aggs *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->ts[i], b->ts[i]);
        for (int c = 0; c < TSDB__AGG_N; c++)
            if (c == TSDB__AGG_SUM && isnan(a->v[c][i]))
                assert_true(isnan(b->v[c][i]));
            else
                assert_bits(a->v[c][i], b->v[c][i], "column", i);
    }
}

/* Append b's buckets after a's (what concatenating two tier blocks does). */
static void concat(struct tsdb__aggs *a, const struct tsdb__aggs *b)
{
    for (size_t i = 0; i < b->n; i++) {
        struct tsdb__aggs one = {.ts = &b->ts[i], .n = 1, .cap = 1};
        for (int c = 0; c < TSDB__AGG_N; c++)
            one.v[c] = &b->v[c][i];
        /* Re-aggregating one bucket at res 1 copies it as a new bucket. */
        tsdb__downsample_aggs(&one, 1, a);
    }
}

/* Index of the first sample at or after bucket boundary t, from i on. */
static size_t seek(const struct tsdb_sample *s, size_t n, size_t i, int64_t t)
{
    while (i < n && s[i].ts < t)
        i++;
    return i;
}

static void test_split_stability(void **state)
{
    (void)state;
    static struct tsdb_sample s[MAXN];
    static const int64_t res[] = {M, H};
    const int64_t win = 2 * H;
    struct tsdb__aggs whole, parts, part, cont, fine, fine_parts;
    tsdb__aggs_init(&whole);
    tsdb__aggs_init(&parts);
    tsdb__aggs_init(&part);
    tsdb__aggs_init(&cont);
    tsdb__aggs_init(&fine);
    tsdb__aggs_init(&fine_parts);
    for (int round = 0; round < 300; round++) {
        size_t n = rnd_series(s, round % 10 == 0 ? MAXN : 600, 1);
        for (size_t r = 0; r < ARRAY_SIZE(res); r++) {
            tsdb__aggs_reset(&whole);
            tsdb__aggs_reset(&parts);
            tsdb__aggs_reset(&cont);
            tsdb__downsample(s, n, res[r], &whole);

            /* The streaming shape: 2 h windows, each into its own aggs, concatenated. */
            for (size_t i = 0; i < n;) {
                int64_t end = oracle_start(s[i].ts, win) + win;
                size_t j = seek(s, n, i, end);
                tsdb__aggs_reset(&part);
                tsdb__downsample(s + i, j - i, res[r], &part);
                concat(&parts, &part);
                i = j;
            }
            assert_aggs_equal(&parts, &whole);

            /* Random splits on bucket boundaries, also into separate aggs. */
            tsdb__aggs_reset(&parts);
            for (size_t i = 0; i < n;) {
                int64_t end = oracle_start(s[i].ts, res[r]) + res[r] * (1 + (int64_t)(rnd() % 5));
                size_t j = seek(s, n, i, end);
                tsdb__aggs_reset(&part);
                tsdb__downsample(s + i, j - i, res[r], &part);
                concat(&parts, &part);
                i = j;
            }
            assert_aggs_equal(&parts, &whole);

            /* Splits anywhere, even inside a bucket, into the same out: continued. */
            for (size_t i = 0; i < n;) {
                size_t k = 1 + rnd() % 40;
                k = k < n - i ? k : n - i;
                tsdb__downsample(s + i, k, res[r], &cont);
                check_invariants(&cont);
                i += k;
            }
            assert_aggs_equal(&cont, &whole);
        }

        /* Re-aggregation of minute buckets window by window, into one out and separately. */
        tsdb__aggs_reset(&fine);
        tsdb__downsample(s, n, M, &fine);
        tsdb__aggs_reset(&whole);
        tsdb__downsample_aggs(&fine, H, &whole);
        tsdb__aggs_reset(&cont);
        tsdb__aggs_reset(&parts);
        for (size_t i = 0; i < n;) {
            int64_t end = oracle_start(s[i].ts, win) + win;
            size_t j = seek(s, n, i, end);
            tsdb__aggs_reset(&fine_parts);
            tsdb__downsample(s + i, j - i, M, &fine_parts);
            tsdb__downsample_aggs(&fine_parts, H, &cont);
            tsdb__aggs_reset(&part);
            tsdb__downsample_aggs(&fine_parts, H, &part);
            concat(&parts, &part);
            i = j;
        }
        assert_aggs_equal(&cont, &whole);
        assert_aggs_equal(&parts, &whole);
    }
    tsdb__aggs_release(&whole);
    tsdb__aggs_release(&parts);
    tsdb__aggs_release(&part);
    tsdb__aggs_release(&cont);
    tsdb__aggs_release(&fine);
    tsdb__aggs_release(&fine_parts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_buckets),
        cmocka_unit_test(test_negative_and_extreme_ts),
        cmocka_unit_test(test_stale_markers),
        cmocka_unit_test(test_nan),
        cmocka_unit_test(test_inf_and_signed_zero),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_empty_and_lifecycle),
        cmocka_unit_test(test_random_vs_oracle),
        cmocka_unit_test(test_reaggregate_minute_to_hour),
        cmocka_unit_test(test_split_stability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
