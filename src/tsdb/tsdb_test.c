/*
 * tsdb_test.c: the store end to end through its public API: batches in,
 * selections out bit-exact (NaN payloads included), across a clean reopen
 * and across an unclean one (no close: as after kill -9), with refusals
 * counted (out of order, series cap) and selector errors reported.
 */
#include "testutil.h"
#include "tsdb/db.h"
#include "tsdb/packed.h"
#include "tsdb/tsdb.h"
#include "util/log.h"

#include <math.h>

#define STALE_BITS 0x7ff0000000000002ull
#define T0         1700000000000ll
#define TICKS      300

static double stale(void)
{
    double v;
    uint64_t b = STALE_BITS;
    memcpy(&v, &b, 8);
    return v;
}

/* The value the generator gives series (cpu, mode) at tick t. */
static double value_at(int cpu, int mode, int t)
{
    if (mode == 2 && t % 50 == 49)
        return stale();
    return cpu * 1000.0 + mode * 10.0 + t * 0.01;
}

static void fill(struct metric_buf *b, int t)
{
    static const char *modes[] = {"user", "system", "idle"};
    metric_buf_reset(b, T0 + t * 1000ll);
    metric_fam(b, "node_cpu_seconds_total", "CPU.", METRIC_COUNTER);
    for (int cpu = 0; cpu < 2; cpu++)
        for (int m = 0; m < 3; m++) {
            char c[8];
            snprintf(c, sizeof(c), "%d", cpu);
            metric_add2(b, value_at(cpu, m, t), "cpu", c, "mode", modes[m]);
        }
    metric_fam(b, "node_load1", "Load.", METRIC_GAUGE);
    metric_add0(b, t % 7);
}

static struct tsdb *open_db(const char *dir, uint32_t max_series)
{
    struct tsdb *db;
    char err[256];
    struct tsdb_opts o = {.dir = dir, .max_series = max_series};
    assert_int_equal(tsdb_open(&db, &o, err, sizeof(err)), 0);
    return db;
}

static void append_ticks(struct tsdb *db, int from, int to, struct tsdb_append_stats *st)
{
    struct metric_buf b;
    metric_buf_init(&b);
    for (int t = from; t < to; t++) {
        fill(&b, t);
        assert_int_equal(tsdb_append_batch(db, "test", &b, st), 0);
    }
    metric_buf_release(&b);
}

struct got {
    int series;
    size_t samples;
    int bad;
};

/* Checks every delivered sample against the generator, bit for bit. */
static int check_series(void *ctx, const struct metric_label *ls, size_t n,
                        const struct tsdb_sample *s, size_t ns)
{
    struct got *g = ctx;
    g->series++;
    g->samples += ns;
    const char *cpu = NULL, *mode = NULL, *name = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(ls[i].name, "cpu"))
            cpu = ls[i].value;
        else if (!strcmp(ls[i].name, "mode"))
            mode = ls[i].value;
        else if (!strcmp(ls[i].name, "__name__"))
            name = ls[i].value;
    }
    if (!name || strcmp(name, "node_cpu_seconds_total") != 0 || !cpu || !mode) {
        g->bad++;
        return 0;
    }
    int m = !strcmp(mode, "user") ? 0 : !strcmp(mode, "system") ? 1 : 2;
    for (size_t i = 0; i < ns; i++) {
        int t = (int)((s[i].ts - T0) / 1000);
        double want = value_at(atoi(cpu), m, t);
        if (memcmp(&want, &s[i].v, 8) != 0 || (i && s[i].ts <= s[i - 1].ts))
            g->bad++;
    }
    return 0;
}

static struct got select_cpu(struct tsdb *db, const char *mode_re, int64_t mint, int64_t maxt)
{
    struct tsdb_matcher ms[] = {{TSDB_EQ, "__name__", "node_cpu_seconds_total"},
                                {TSDB_RE, "mode", mode_re}};
    struct got g = {0};
    char err[256];
    assert_int_equal(tsdb_select(db, ms, 2, mint, maxt, check_series, &g, err, sizeof(err)), 0);
    return g;
}

static void test_round_trip_and_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 0);
    struct tsdb_append_stats st = {0};
    append_ticks(db, 0, TICKS, &st);
    assert_int_equal(st.accepted, TICKS * 7);
    assert_int_equal(tsdb_series_count(db), 7);
    struct got g = select_cpu(db, "user|idle", 0, INT64_MAX);
    assert_int_equal(g.series, 4);
    assert_int_equal(g.samples, 4 * TICKS);
    assert_int_equal(g.bad, 0);
    /* A time range cuts exactly. */
    g = select_cpu(db, ".*", T0 + 10000, T0 + 19000);
    assert_int_equal(g.samples, 6 * 10);
    assert_int_equal(tsdb_sync(db), 0);
    tsdb_close(db);

    db = open_db(dir, 0);
    g = select_cpu(db, "user|system|idle", 0, INT64_MAX);
    assert_int_equal(g.series, 6);
    assert_int_equal(g.samples, 6 * TICKS);
    assert_int_equal(g.bad, 0);
    /* Appending goes on after a reopen, and old timestamps are refused. */
    memset(&st, 0, sizeof(st));
    append_ticks(db, TICKS - 1, TICKS + 10, &st);
    assert_int_equal(st.out_of_order, 7);
    assert_int_equal(st.accepted, 10 * 7);
    tsdb_close(db);
    tu_rmrf(dir);
}

/* No close, as after kill -9: everything appended is replayed. */
static void test_unclean_stop(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db1 = open_db(dir, 0);
    struct tsdb_append_stats st = {0};
    append_ticks(db1, 0, 130, &st);
    struct tsdb *db2 = open_db(dir, 0); /* replays what db1 wrote so far */
    struct got g = select_cpu(db2, ".+", 0, INT64_MAX);
    assert_int_equal(g.samples, 6 * 130);
    assert_int_equal(g.bad, 0);
    tsdb_close(db2);
    tsdb_close(db1);
    tu_rmrf(dir);
}

/*
 * A batch bigger than a WAL record holds goes to the log as several records
 * (the cap is 16 MiB, about 1.2 M samples; lowered here to 4): after an
 * unclean stop every sample is replayed, including those of slices where
 * some samples were refused.
 */
static void test_batch_over_record_cap(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db1 = open_db(dir, 0);
    db1->packed_slice = 4; /* 7 series a batch: records of 4 and 3 */
    struct tsdb_append_stats st = {0};
    append_ticks(db1, 0, 40, &st);
    append_ticks(db1, 39, 70, &st); /* tick 39 again: refused, nothing logged for it */
    assert_int_equal(st.accepted, 70 * 7);
    assert_int_equal(st.out_of_order, 7);
    struct tsdb *db2 = open_db(dir, 0); /* replays what db1 wrote */
    struct got g = select_cpu(db2, ".+", 0, INT64_MAX);
    assert_int_equal(g.series, 6);
    assert_int_equal(g.samples, 6 * 70);
    assert_int_equal(g.bad, 0);
    tsdb_close(db2);
    tsdb_close(db1);
    tu_rmrf(dir);
}

static void test_series_limit(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 3);
    struct tsdb_append_stats st = {0};
    append_ticks(db, 0, 5, &st);
    assert_int_equal(tsdb_series_count(db), 3);
    assert_int_equal(st.series_limit, 4 * 5);
    assert_int_equal(st.accepted, 3 * 5);
    tsdb_close(db);
    tu_rmrf(dir);
}

static int never(void *ctx, const struct metric_label *ls, size_t n, const struct tsdb_sample *s,
                 size_t ns)
{
    (void)ctx, (void)ls, (void)n, (void)s, (void)ns;
    fail_msg("no series should be delivered");
    return 1;
}

static void test_selector_errors(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 0);
    char err[256];
    struct tsdb_matcher bad[] = {{TSDB_RE, "mode", "us(er"}};
    assert_int_equal(tsdb_select(db, bad, 1, 0, 1, never, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "offset"));
    struct tsdb_matcher empty[] = {{TSDB_RE, "mode", ".*"}};
    assert_int_equal(tsdb_select(db, empty, 1, 0, 1, never, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "non-empty matcher"));
    tsdb_close(db);
    tu_rmrf(dir);
}

static int all_values(void *ctx, const struct metric_label *ls, size_t n,
                      const struct tsdb_sample *s, size_t ns)
{
    (void)ls, (void)n;
    double *want = ctx;
    for (size_t i = 0; i < ns; i++)
        if (s[i].v != *want)
            fail_msg("sample %zu: %g, want %g", i, s[i].v, *want);
    want[1] += (double)ns;
    return 0;
}

/*
 * Batches whose shape changes from tick to tick (order, new series) must not
 * reuse the previous batch's series ids: each value lands in its own series.
 */
static void test_shape_changes(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 0);
    struct metric_buf b;
    metric_buf_init(&b);
    struct tsdb_append_stats st = {0};
    for (int t = 0; t < 40; t++) {
        metric_buf_reset(&b, T0 + t * 1000ll);
        metric_fam(&b, "m", "M.", METRIC_GAUGE);
        if (t % 2) {
            metric_add1(&b, 2, "a", "y");
            metric_add1(&b, 1, "a", "x");
        } else {
            metric_add1(&b, 1, "a", "x");
            metric_add1(&b, 2, "a", "y");
        }
        if (t >= 20) /* a third series from now on, same values otherwise */
            metric_add1(&b, 3, "a", "z");
        assert_int_equal(tsdb_append_batch(db, "test", &b, &st), 0);
    }
    metric_buf_release(&b);
    assert_int_equal(st.accepted, 40 * 2 + 20);
    static const char *names[] = {"x", "y", "z"};
    for (int k = 0; k < 3; k++) {
        double want[2] = {k + 1.0, 0};
        struct tsdb_matcher ms[] = {{TSDB_EQ, "a", names[k]}};
        char err[128];
        assert_int_equal(tsdb_select(db, ms, 1, 0, INT64_MAX, all_values, want, err, sizeof(err)),
                         0);
        assert_int_equal(want[1], k < 2 ? 40 : 20);
    }
    tsdb_close(db);
    tu_rmrf(dir);
}

/* Sum of the values of the series matching a="v" into want[1], checking each. */
static void expect_series(struct tsdb *db, const char *v, double value, double nsamples)
{
    double want[2] = {value, 0};
    struct tsdb_matcher ms[] = {{TSDB_EQ, "a", v}};
    char err[128];
    assert_int_equal(tsdb_select(db, ms, 1, 0, INT64_MAX, all_values, want, err, sizeof(err)), 0);
    if (want[1] != nsamples)
        fail_msg("a=%s: %g samples, want %g", v, want[1], nsamples);
}

/*
 * A producer that keeps its batch (metric_buf_keep_shape) and only sets the
 * values: every value lands in its series; a change through the API voids
 * the promise, so a series added later is found, and a second buffer with
 * the same shape under the same source is compared, not trusted.
 */
static void test_kept_shape(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 0);
    struct metric_buf b, o;
    metric_buf_init(&b);
    metric_buf_init(&o);
    struct tsdb_append_stats st = {0};
    metric_buf_reset(&b, 0);
    metric_fam(&b, "m", "M.", METRIC_GAUGE);
    metric_add1(&b, 0, "a", "x");
    metric_add1(&b, 0, "a", "y");
    metric_buf_keep_shape(&b);
    for (int t = 0; t < 30; t++) {
        b.ts_ms = T0 + t * 1000ll;
        b.samples[0].value = 1;
        b.samples[1].value = 2;
        if (t == 10) {
            metric_add1(&b, 3, "a", "z"); /* voids the stamp */
            assert_true(b.shape_stamp == 0);
            metric_buf_keep_shape(&b);
        }
        if (t >= 10)
            b.samples[2].value = 3;
        assert_int_equal(tsdb_append_batch(db, "test", &b, &st), 0);
        if (t == 20) {
            /* Another buffer, same source, the two first series swapped. */
            metric_buf_reset(&o, T0 + t * 1000ll + 500);
            metric_fam(&o, "m", "M.", METRIC_GAUGE);
            metric_add1(&o, 2, "a", "y");
            metric_add1(&o, 1, "a", "x");
            metric_add1(&o, 3, "a", "z");
            metric_buf_keep_shape(&o);
            assert_int_equal(tsdb_append_batch(db, "test", &o, &st), 0);
        }
    }
    assert_int_equal(st.accepted, 30 * 2 + 20 + 3);
    expect_series(db, "x", 1, 31);
    expect_series(db, "y", 2, 31);
    expect_series(db, "z", 3, 21);
    metric_buf_release(&b);
    metric_buf_release(&o);
    tsdb_close(db);
    tu_rmrf(dir);
}

/*
 * Producers' batches change run by run (a top-N family), interleave with
 * other producers', and may hold the same bytes split differently into
 * samples: ids are reused only for runs that are the same, so every value
 * lands in its own series, and refusals are counted on every batch.
 */
static void test_shape_runs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 8);
    struct metric_buf b, o;
    metric_buf_init(&b);
    metric_buf_init(&o);
    struct tsdb_append_stats st = {0}, ost = {0};
    for (int t = 0; t < 30; t++) {
        metric_buf_reset(&b, T0 + t * 1000ll);
        metric_fam(&b, "stable", "S.", METRIC_GAUGE);
        metric_add1(&b, 1, "a", "s1");
        metric_fam(&b, "top", "T.", METRIC_GAUGE);
        /* The changing run: one of two processes, then both, in turn. */
        if (t % 3 == 0)
            metric_add1(&b, 2, "a", "p1");
        else if (t % 3 == 1)
            metric_add1(&b, 3, "a", "p2");
        else {
            metric_add1(&b, 3, "a", "p2");
            metric_add1(&b, 2, "a", "p1");
        }
        if (t >= 10) { /* a run that appears... */
            metric_fam(&b, "late", "L.", METRIC_GAUGE);
            metric_add1(&b, 4, "a", "l1");
        }
        metric_fam(&b, "stable2", "S2.", METRIC_GAUGE);
        /* ... and the same bytes "a\0x\0b\0y\0" as one sample with two
         * labels, then as two samples with one each. */
        if (t < 20) {
            metric_add2(&b, 5, "a", "x", "b", "y");
        } else {
            metric_add1(&b, 6, "a", "x");
            metric_add1(&b, 6, "b", "y");
        }
        assert_int_equal(tsdb_append_batch(db, "one", &b, &st), 0);
        /* Another producer in between, with a series past the cap of 8 once
         * there are 8 (its refusal is counted on every batch). */
        metric_buf_reset(&o, T0 + t * 1000ll);
        metric_fam(&o, "other", "O.", METRIC_GAUGE);
        metric_add1(&o, 7, "a", "o1");
        metric_add1(&o, 7, "a", t < 25 ? "o2" : "o3");
        assert_int_equal(tsdb_append_batch(db, "two", &o, &ost), 0);
    }
    metric_buf_release(&b);
    metric_buf_release(&o);
    expect_series(db, "s1", 1, 30);
    expect_series(db, "p1", 2, 20);
    expect_series(db, "p2", 3, 20);
    expect_series(db, "l1", 4, 20);
    /* a="x",b="y" (20 samples of 5) is its own series; a="x" alone has 10 of 6. */
    struct tsdb_matcher both[] = {{TSDB_EQ, "a", "x"}, {TSDB_EQ, "b", "y"}};
    double want[2] = {5, 0};
    char err[128];
    assert_int_equal(tsdb_select(db, both, 2, 0, INT64_MAX, all_values, want, err, sizeof(err)), 0);
    assert_int_equal(want[1], 20);
    struct tsdb_matcher xonly[] = {{TSDB_EQ, "a", "x"}, {TSDB_EQ, "b", ""}};
    double want6[2] = {6, 0};
    assert_int_equal(tsdb_select(db, xonly, 2, 0, INT64_MAX, all_values, want6, err, sizeof(err)),
                     0);
    assert_int_equal(want6[1], 10);
    expect_series(db, "o1", 7, 30);
    expect_series(db, "o2", 7, 25);
    /* Series: s1 p1 p2 xy o1 o2 l1 x = 8, the cap; b="y" alone and o3 are refused. */
    assert_int_equal(tsdb_series_count(db), 8);
    assert_int_equal(st.series_limit, 10);
    assert_int_equal(ost.series_limit, 5);
    expect_series(db, "o3", 7, 0);
    tsdb_close(db);
    tu_rmrf(dir);
}

/*
 * A name repeated by many runs (one family per sample, as some exporters
 * write), interleaved with another name, then the runs in reverse order and
 * the two names apart: each run's ids are found again by name (or looked
 * up), so every value lands in its own series and none is created twice.
 */
static void test_same_name_runs(void **state)
{
    (void)state;
    enum { RUNS = 2100, T = 6 }; /* ids over three head stripes */
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, 0);
    struct metric_buf b;
    metric_buf_init(&b);
    struct tsdb_append_stats st = {0};
    for (int t = 0; t < T; t++) {
        metric_buf_reset(&b, T0 + t * 1000ll);
        for (int k = 0; k < RUNS; k++) {
            int i;
            const char *name;
            if (t % 2 == 0) {
                i = k;
                name = i % 2 ? "n" : "m";
            } else { /* all "m" runs, then all "n" runs, each reversed */
                int j = k < RUNS / 2 ? k : k - RUNS / 2;
                i = 2 * (RUNS / 2 - 1 - j) + (k >= RUNS / 2);
                name = k < RUNS / 2 ? "m" : "n";
            }
            char v[16];
            snprintf(v, sizeof(v), "%d", i);
            metric_fam(&b, name, "", METRIC_GAUGE);
            metric_add1(&b, 1000 + i, "a", v);
        }
        assert_int_equal(tsdb_append_batch(db, "test", &b, &st), 0);
    }
    metric_buf_release(&b);
    assert_int_equal(st.accepted, RUNS * T);
    assert_int_equal(st.out_of_order, 0);
    assert_int_equal(tsdb_series_count(db), RUNS);
    for (int i = 0; i < RUNS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        expect_series(db, v, 1000 + i, T);
    }
    /* The log names each sample's series in the batch's new order too:
     * replayed without a close (as after kill -9), every value is its own. */
    struct tsdb *again = open_db(dir, 0);
    assert_int_equal(tsdb_series_count(again), RUNS);
    for (int i = 0; i < RUNS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        expect_series(again, v, 1000 + i, T);
    }
    tsdb_close(again);
    tsdb_close(db);
    tu_rmrf(dir);
}

/*
 * What the store keeps per series stays in proportion: the first batch,
 * which names every series, leaves no log buffer of its size behind; the
 * head holds samples well under their raw 12 bytes; the producer's shape
 * keeps its last batch without doubling's slack.
 */
static void test_memory_bounded(void **state)
{
    (void)state;
    enum { NS = 3000, NT = 200 };
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db = open_db(dir, NS + 10);
    struct metric_buf b;
    metric_buf_init(&b);
    struct tsdb_memory first = {0}, m;
    for (int t = 0; t < NT; t++) {
        metric_buf_reset(&b, T0 + t * 1000ll);
        metric_fam(&b, "app_requests_total", "Requests.", METRIC_COUNTER);
        for (int i = 0; i < NS; i++) {
            char path[128];
            snprintf(path, sizeof(path), "/api/v1/tenants/%04d/projects/resources/items/detail", i);
            metric_add1(&b, (double)(t * (i % 7 + 1)), "path", path);
        }
        assert_int_equal(tsdb_append_batch(db, "test", &b, NULL), 0);
        if (t == 0)
            tsdb_memory(db, &first);
    }
    tsdb_memory(db, &m);
    size_t record = 12 + TSDB__PACKED_MAX * (size_t)NS + 64;
    /* The burst (series records with every label) went; two buffers of a batch remain. */
    assert_true(first.wal > (size_t)NS * 60);
    assert_true(m.wal < first.wal / 2);
    assert_true(m.wal <= 2 * ((size_t)64 << 10) + 4 * record);
    /* Samples in memory compressed: under a third of 12 raw bytes each, plus 128 a series. */
    assert_true(m.head < (size_t)NS * (128 + NT * 12 / 3));
    /* The shape: the batch's bytes and ids, within an eighth. */
    size_t kept = b.arena_len + b.nsamples * (sizeof(*b.samples) + 8 + 8 + 4) + 4096;
    assert_true(m.shapes <= kept + kept / 8);
    assert_true(m.index > 0);
    metric_buf_release(&b);
    tsdb_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_reopen),
        cmocka_unit_test(test_unclean_stop),
        cmocka_unit_test(test_batch_over_record_cap),
        cmocka_unit_test(test_series_limit),
        cmocka_unit_test(test_selector_errors),
        cmocka_unit_test(test_shape_changes),
        cmocka_unit_test(test_shape_runs),
        cmocka_unit_test(test_same_name_runs),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_kept_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
