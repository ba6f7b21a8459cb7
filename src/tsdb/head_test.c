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
    struct tsdb__head *h = tsdb__head_new();
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
    assert_int_equal(tsdb__head_chunks(h, 3, in_one_window, &nchunks), 0);
    /* The samples cover several windows, so there are several chunks. */
    assert_true(nchunks >= (size_t)((ts[n - 1] - ts[0]) / TSDB_HEAD_CHUNK_SPAN_MS));
    /* An unknown series reads as empty. */
    assert_int_equal(tsdb__head_read(h, 99, INT64_MIN, INT64_MAX, &out, &cap), 0);
    free(out);
    free(ts);
    free(v);
    tsdb__head_free(h);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_negative_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
