/*
 * head_test.c: the in-memory head: samples come back exactly, out-of-order
 * ones are refused, and chunks never straddle an aligned block window (so
 * they can be written whole into blocks), also for irregular timestamps and
 * negative ones.
 */
#include "testutil.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int in_one_window(void *ctx, const struct tsdb__chunk *c)
{
    size_t *n = ctx;
    (*n)++;
    assert_true(c->nsamples > 0);
    assert_int_equal(floor_div(c->mint, TSDB_HEAD_CHUNK_SPAN_MS),
                     floor_div(c->maxt, TSDB_HEAD_CHUNK_SPAN_MS));
    return 0;
}

/* Append n samples from t0 with irregular steps; read them back exactly. */
static void run(int64_t t0, size_t n)
{
    struct tsdb__head *h = tsdb__head_new(0);
    int64_t *ts = xmalloc(n * sizeof(*ts));
    double *v = xmalloc(n * sizeof(*v));
    srand(7);
    int64_t t = t0;
    for (size_t i = 0; i < n; i++) {
        t += 1000 + (rand() % 5 == 0 ? rand() % 60000 : 0);
        ts[i] = t;
        v[i] = (double)(rand() % 1000) / 8;
        assert_int_equal(tsdb__head_append(h, 3, ts[i], v[i]), 0);
    }
    /* The same timestamp again, and an older one, are refused. */
    assert_int_equal(tsdb__head_append(h, 3, ts[n - 1], 1), TSDB__EORDER);
    assert_int_equal(tsdb__head_append(h, 3, ts[0], 1), TSDB__EORDER);

    struct tsdb_sample *out = NULL;
    size_t cap = 0;
    long got = tsdb__head_read(h, 3, INT64_MIN, INT64_MAX, &out, &cap);
    assert_int_equal(got, (long)n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].ts, ts[i]);
        assert_memory_equal(&out[i].v, &v[i], sizeof(double));
    }
    size_t nchunks = 0;
    assert_int_equal(tsdb__head_visit(h, 3, in_one_window, NULL, &nchunks), 0);
    /* The samples cover several windows, so there are several chunks. */
    assert_true(nchunks >= (size_t)((ts[n - 1] - ts[0]) / TSDB_HEAD_CHUNK_SPAN_MS));
    /* An unknown series reads as empty. */
    assert_int_equal(tsdb__head_read(h, 99, INT64_MIN, INT64_MAX, &out, &cap), 0);
    free(out);
    free(ts);
    free(v);
    tsdb__head_free(h);
}

/* Gaps past the raw tail's 32-bit offsets (49 days) and a read of the tail in between. */
static void test_long_gaps(void **state)
{
    (void)state;
    struct tsdb__head *h = tsdb__head_new(0);
    const int64_t day = 86400000;
    int64_t ts[] = {-3 * day, -3 * day + 1, 60 * day, 60 * day + 5, 200 * day, 20000 * day};
    size_t n = sizeof(ts) / sizeof(ts[0]);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tsdb__head_append(h, 0, ts[i], (double)i), 0);
        struct tsdb_sample *out = NULL;
        size_t cap = 0;
        long got = tsdb__head_read(h, 0, INT64_MIN, INT64_MAX, &out, &cap);
        assert_int_equal(got, (long)i + 1);
        for (size_t k = 0; k <= i; k++) {
            assert_int_equal(out[k].ts, ts[k]);
            assert_true(out[k].v == (double)k);
        }
        free(out);
    }
    assert_int_equal(tsdb__head_append(h, 0, 60 * day, 9), TSDB__EORDER);
    tsdb__head_free(h);
}

/*
 * The tail is encoded sample by sample (time as a delta of deltas, value as
 * an XOR of bytes): every bit pattern and step must come back exactly, read
 * after every append, so partial tails are decoded at each length and at
 * each position against the end of the tail's buffer.
 */
static void test_tail_exact(void **state)
{
    (void)state;
    static const uint64_t special[] = {
        0x7ff0000000000002ull, /* Prometheus' stale marker */
        0x7ff8000000000000ull, /* NaN */
        0xfff8000000000001ull, /* a NaN with sign and payload */
        0x7ff0000000000000ull, /* +Inf */
        0xfff0000000000000ull, /* -Inf */
        0x8000000000000000ull, /* -0 */
        0,
        1, /* the smallest subnormal */
        0xffffffffffffffffull,
        0x00ff00000000ff00ull,
    };
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4; round++) {
        struct tsdb__head *h = tsdb__head_new(0);
        enum { N = 3 * TSDB_BLOCK_MAX + 7 };
        int64_t ts[N];
        uint64_t bits[N];
        int64_t t = round == 3 ? INT64_MIN / 2 : 1700000000000ll;
        for (size_t i = 0; i < N; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            /* Steps: steady, jittered, and jumps of up to 2^40 ms. */
            int64_t step = (r >> 60) < 8    ? 1000
                           : (r >> 60) < 12 ? 1 + (int64_t)(r % 5000)
                                            : (int64_t)(r >> 24);
            t += step;
            ts[i] = t;
            if (round == 0)
                bits[i] = special[r % (sizeof(special) / sizeof(special[0]))];
            else if (round == 1)
                bits[i] = r; /* random bit patterns */
            else {
                double v = (double)(i / 3) * 0.25;
                memcpy(&bits[i], &v, 8); /* a counter that holds its value for 3 samples */
            }
            double v;
            memcpy(&v, &bits[i], 8);
            assert_int_equal(tsdb__head_append(h, 1, ts[i], v), 0);
            struct tsdb_sample *out = NULL;
            size_t cap = 0;
            assert_int_equal(tsdb__head_read(h, 1, INT64_MIN, INT64_MAX, &out, &cap), (long)i + 1);
            for (size_t k = 0; k <= i; k++) {
                assert_int_equal(out[k].ts, ts[k]);
                assert_memory_equal(&out[k].v, &bits[k], 8);
            }
            free(out);
        }
        tsdb__head_free(h);
    }
}

static void test_windows(void **state)
{
    (void)state;
    run(1700000000000ll, 30000); /* about 11 hours with gaps */
}

static void test_negative_timestamps(void **state)
{
    (void)state;
    run(-4 * TSDB_HEAD_CHUNK_SPAN_MS - 5000, 20000);
}

/* Cutting: seal before t, copy the chunks out, drop them; the rest stays. */
struct collected {
    int64_t t;
    size_t n;
    uint8_t *bufs[64];
    size_t lens[64];
};

static int collect_before(void *ctx, const struct tsdb__chunk *c)
{
    struct collected *col = ctx;
    if (c->maxt < col->t) {
        assert_true(col->n < 64);
        col->bufs[col->n] = xmalloc(c->len);
        memcpy(col->bufs[col->n], c->buf, c->len);
        col->lens[col->n++] = c->len;
    }
    return 0;
}

static void test_cut_and_reload(void **state)
{
    (void)state;
    const int64_t span = 60000, t0 = 1700000000000ll / span * span;
    struct tsdb__head *h = tsdb__head_new(span);
    assert_int_equal(tsdb__head_span(h), span);
    assert_int_equal(tsdb__head_window(h, t0 + 59999), t0);
    assert_int_equal(tsdb__head_window(h, -1), -span);
    for (int i = 0; i < 150; i++) /* 2.5 windows at 1 s */
        assert_int_equal(tsdb__head_append(h, 0, t0 + i * 1000, i), 0);
    int64_t lo, hi;
    tsdb__head_range(h, &lo, &hi);
    assert_int_equal(lo, t0);
    assert_int_equal(hi, t0 + 149000);

    /* Cut the first window: after seal_before every sample before t is in a chunk. */
    int64_t t = t0 + span;
    tsdb__head_set_min_valid(h, t);
    assert_int_equal(tsdb__head_append(h, 0, t - 1, 0), TSDB__EOLD);
    assert_int_equal(tsdb__head_seal_before(h, 0, t), 0);
    struct collected col = {.t = t};
    assert_int_equal(tsdb__head_visit(h, 0, collect_before, NULL, &col), 0);
    assert_int_equal(col.n, 1);
    assert_true(tsdb__head_drop_before(h, t) > 0);

    struct tsdb_sample *out = NULL;
    size_t cap = 0;
    long got = tsdb__head_read(h, 0, INT64_MIN, INT64_MAX, &out, &cap);
    assert_int_equal(got, 90);
    assert_int_equal(out[0].ts, t);

    /* The dropped chunk loads into a fresh head and reads back exactly. */
    struct tsdb__head *h2 = tsdb__head_new(span);
    assert_int_equal(tsdb__head_load_chunk(h2, 5, col.bufs[0], col.lens[0]), 0);
    /* Loading it twice is out of order; a damaged copy is refused. */
    assert_int_equal(tsdb__head_load_chunk(h2, 5, col.bufs[0], col.lens[0]), TSDB__EORDER);
    assert_true(tsdb__head_load_chunk(h2, 6, col.bufs[0], col.lens[0] - 1) < 0);
    got = tsdb__head_read(h2, 5, INT64_MIN, INT64_MAX, &out, &cap);
    assert_int_equal(got, 60);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(out[i].ts, t0 + i * 1000);
        assert_true(out[i].v == i);
    }
    /* Appends continue the loaded chunk. */
    assert_int_equal(tsdb__head_append(h2, 5, t0 + 59000, 1), TSDB__EORDER);
    for (int i = 60; i < 200; i++)
        assert_int_equal(tsdb__head_append(h2, 5, t0 + i * 1000, i), 0);
    got = tsdb__head_read(h2, 5, INT64_MIN, INT64_MAX, &out, &cap);
    assert_int_equal(got, 200);
    for (int i = 0; i < 200; i++)
        assert_true(out[i].ts == t0 + i * 1000 && out[i].v == i);
    free(out);
    free(col.bufs[0]);
    tsdb__head_free(h2);
    tsdb__head_free(h);
}

/* The batch path agrees with one-by-one appends and reports refusals. */
static void test_append_run(void **state)
{
    (void)state;
    struct tsdb__head *h = tsdb__head_new(0);
    struct tsdb__head_series *refs[100];
    uint32_t idx[100];
    double vals[100];
    struct tsdb__head_refused res = {0, 0};
    for (uint32_t i = 0; i < 100; i++) {
        refs[i] = tsdb__head_ref(h, i * 7);
        idx[i] = i;
        vals[i] = i * 1.5;
    }
    assert_int_equal(
        tsdb__head_append_run(h, refs, idx, 100, 1000, vals, sizeof(double), &res, NULL), 100);
    assert_true(res.out_of_order == 0 && res.too_old == 0);
    assert_int_equal(tsdb__head_append(h, 7, 2000, 9), 0);
    /* Series 7 (ref 1) now has ts 2000: the next run at 2000 refuses it only. */
    assert_int_equal(
        tsdb__head_append_run(h, refs, idx, 100, 2000, vals, sizeof(double), &res, NULL), 99);
    assert_true(res.out_of_order == 1 && res.too_old == 0);
    tsdb__head_set_min_valid(h, 5000);
    assert_int_equal(
        tsdb__head_append_run(h, refs, idx, 100, 3000, vals, sizeof(double), &res, NULL), 0);
    assert_true(res.out_of_order == 1 && res.too_old == 100);
    struct tsdb_sample *out = NULL;
    size_t cap = 0;
    assert_int_equal(tsdb__head_read(h, 14, INT64_MIN, INT64_MAX, &out, &cap), 2);
    assert_true(out[0].v == 3.0 && out[1].ts == 2000);
    /* The refused one is series 7's: its 2000 is the single sample's 9. */
    assert_int_equal(tsdb__head_read(h, 7, INT64_MIN, INT64_MAX, &out, &cap), 2);
    assert_true(out[0].v == 1.5 && out[1].ts == 2000 && out[1].v == 9);
    free(out);
    tsdb__head_free(h);
}

/* The hints bound what a scan finds: lo never above the oldest sample held,
 * hi the newest; refused samples do not move them. */
static void test_hints(void **state)
{
    (void)state;
    struct tsdb__head *h = tsdb__head_new(1000);
    int64_t lo, hi, oldest, newest;
    tsdb__head_hints(h, &lo, &hi);
    assert_true(lo == INT64_MAX && hi == INT64_MIN);
    struct tsdb__head_series *refs[2] = {tsdb__head_ref(h, 0), tsdb__head_ref(h, 1)};
    uint32_t idx[2] = {0, 1};
    double vals[2] = {1, 2};
    struct tsdb__head_refused res = {0, 0};
    for (int64_t t = 500; t <= 3500; t += 500)
        assert_int_equal(
            tsdb__head_append_run(h, refs, idx, 2, t, vals, sizeof(double), &res, NULL), 2);
    assert_int_equal(tsdb__head_append(h, 2, 4200, 1), 0);
    tsdb__head_hints(h, &lo, &hi);
    tsdb__head_range(h, &oldest, &newest);
    assert_true(lo == 500 && hi == 4200 && oldest == 500 && newest == 4200);
    /* Refused (too old, out of order): no change. */
    tsdb__head_set_min_valid(h, 2000);
    assert_int_equal(tsdb__head_append_run(h, refs, idx, 2, 1500, vals, sizeof(double), &res, NULL),
                     0);
    assert_true(res.too_old == 2);
    assert_int_equal(tsdb__head_append(h, 2, 4100, 1), TSDB__EORDER);
    /* A cut drops the old windows: lo stays a lower bound, hi exact. */
    for (uint32_t id = 0; id < 3; id++)
        assert_int_equal(tsdb__head_seal_before(h, id, 2000), 0);
    tsdb__head_drop_before(h, 2000);
    tsdb__head_hints(h, &lo, &hi);
    tsdb__head_range(h, &oldest, &newest);
    assert_true(oldest == 2000 && newest == 4200);
    assert_true(lo <= oldest && hi == newest);
    tsdb__head_free(h);
}

/* The batch lookup gives what one lookup per id gives, creating the missing. */
static void test_refs(void **state)
{
    (void)state;
    struct tsdb__head *h = tsdb__head_new(0);
    struct tsdb__head_series *a = tsdb__head_ref(h, 5), *b = tsdb__head_ref(h, 40);
    uint32_t ids[4] = {40, 7, 5, 300};
    struct tsdb__head_series *out[4];
    tsdb__head_refs(h, ids, 4, out);
    assert_ptr_equal(out[0], b);
    assert_ptr_equal(out[2], a);
    assert_ptr_equal(out[1], tsdb__head_ref(h, 7));
    assert_ptr_equal(out[3], tsdb__head_ref(h, 300));
    assert_ptr_not_equal(out[1], out[3]);
    assert_int_equal(tsdb__head_nseries(h) > 300, 1);
    tsdb__head_free(h);
}

/*
 * Series with samples (raw, encoded, or both) are live; renumbering keeps
 * their samples under the new ids, frees the rest, and appends go on.
 */
static void test_live_and_renumber(void **state)
{
    (void)state;
    const int64_t span = 60000;
    struct tsdb__head *h = tsdb__head_new(span);
    /* 0: cut away, 1: 200 samples (chunks + raw), 2: never appended,
     * 3: 10 raw samples, 4: cut away, 5: samples after the cut. */
    for (int64_t t = 0; t < 200; t++) {
        assert_int_equal(tsdb__head_append(h, 1, t * 1000, (double)t), 0);
        if (t < 30) {
            assert_int_equal(tsdb__head_append(h, 0, t * 1000, 1.0), 0);
            assert_int_equal(tsdb__head_append(h, 4, t * 1000, 4.0), 0);
        }
    }
    tsdb__head_ref(h, 2);
    for (int64_t t = 0; t < 10; t++)
        assert_int_equal(tsdb__head_append(h, 3, 120000 + t * 1000, -(double)t), 0);
    assert_int_equal(tsdb__head_append(h, 5, 61000, 5.0), 0);
    for (uint32_t id = 0; id < 6; id++)
        tsdb__head_seal_before(h, id, span);
    tsdb__head_set_min_valid(h, span);
    tsdb__head_drop_before(h, span);
    uint8_t live[6];
    assert_int_equal(tsdb__head_live(h, live, 6), 3);
    const uint8_t want[6] = {0, 1, 0, 1, 0, 1};
    assert_memory_equal(live, want, 6);
    const uint32_t newid[6] = {UINT32_MAX, 0, UINT32_MAX, 1, UINT32_MAX, 2};
    tsdb__head_renumber(h, newid, 6, 3);
    assert_int_equal(tsdb__head_nseries(h), 3);
    struct tsdb_sample *out = NULL;
    size_t cap = 0;
    assert_int_equal(tsdb__head_read(h, 0, INT64_MIN, INT64_MAX, &out, &cap), 140);
    for (int i = 0; i < 140; i++)
        assert_true(out[i].ts == (60 + i) * 1000ll && out[i].v == 60 + i);
    assert_int_equal(tsdb__head_read(h, 1, INT64_MIN, INT64_MAX, &out, &cap), 10);
    assert_true(out[9].ts == 129000 && out[9].v == -9.0);
    assert_int_equal(tsdb__head_read(h, 2, INT64_MIN, INT64_MAX, &out, &cap), 1);
    assert_true(out[0].ts == 61000 && out[0].v == 5.0);
    /* Order checks go on per series; new ids get fresh slots. */
    assert_int_equal(tsdb__head_append(h, 1, 129000, 0), TSDB__EORDER);
    assert_int_equal(tsdb__head_append(h, 0, 200000, 200), 0);
    assert_int_equal(tsdb__head_append(h, 3, 200000, 7), 0);
    assert_int_equal(tsdb__head_read(h, 3, INT64_MIN, INT64_MAX, &out, &cap), 1);
    assert_int_equal(tsdb__head_live(h, live, 4), 4);
    free(out);
    tsdb__head_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_gaps),
        cmocka_unit_test(test_tail_exact),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_negative_timestamps),
        cmocka_unit_test(test_cut_and_reload),
        cmocka_unit_test(test_append_run),
        cmocka_unit_test(test_hints),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_live_and_renumber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
