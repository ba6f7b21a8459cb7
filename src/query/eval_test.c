/*
 * eval_test.c: the evaluator's API over a real store: result types and
 * their ownership, error types and messages, the limits (samples, points,
 * timeout, cancellation) and that a failed query gives back all its memory.
 * PromQL semantics themselves are checked by conformance_test.c against
 * Prometheus' own scripts.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>

#include "query/eval.h"
#include "query/promql.h"
#include "tsdb/tsdb.h"

#if defined(__SANITIZE_ADDRESS__)
/* From the sanitizer runtime (its header is not installed with gcc). */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}
#endif

#define T0      1700000000000ll
#define NSERIES 50
#define STEP    10000
#define NSTEPS  360 /* one hour */

static struct tsdb *db;
static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = xstrdup(tu_tmpdir("eval"));
    struct tsdb_opts o = {.dir = dir};
    char err[256];
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0)
        fail_msg("open: %s", err);
    struct metric_buf b;
    metric_buf_init(&b);
    for (int i = 0; i < NSTEPS; i++) {
        metric_buf_reset(&b, T0 + (int64_t)i * STEP);
        metric_fam(&b, "requests_total", "", METRIC_COUNTER);
        for (int s = 0; s < NSERIES; s++) {
            char id[8];
            snprintf(id, sizeof(id), "%d", s);
            metric_add2(&b, (double)i * (s + 1), "id", id, "job", s % 2 ? "odd" : "even");
        }
        metric_fam(&b, "temperature", "", METRIC_GAUGE);
        metric_add1(&b, 20 + i % 5, "room", "a");
        metric_add1(&b, 21 + i % 5, "room", "b");
        struct tsdb_append_stats st = {0};
        assert_int_equal(tsdb_append_batch(db, "test", &b, &st), 0);
    }
    metric_buf_release(&b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tsdb_close(db);
    tu_rmrf(dir);
    free(dir);
    return 0;
}

static const int64_t TEND = T0 + (int64_t)(NSTEPS - 1) * STEP;

static void run_ok(const char *q, int64_t t, struct query_result *r)
{
    struct query_eval_error err;
    if (query_run_instant(db, q, t, NULL, r, &err) < 0)
        fail_msg("%s: %s (%s)", q, err.msg, err.type);
}

static const char *label(const struct query_series *s, const char *name)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}

static void test_instant_vector(void **state)
{
    (void)state;
    struct query_result r;
    run_ok("rate(requests_total[5m])", TEND, &r);
    assert_int_equal(r.type, QUERY_VALUE_VECTOR);
    assert_int_equal(r.nseries, NSERIES);
    for (size_t i = 0; i < r.nseries; i++) {
        const struct query_series *s = &r.series[i];
        assert_null(label(s, "__name__")); /* rate drops the name */
        int id = atoi(label(s, "id"));
        assert_int_equal(s->npoints, 1);
        assert_int_equal(s->points[0].t, TEND);
        assert_true(fabs(s->points[0].v - (id + 1) / 10.0) < 1e-9);
    }
    assert_int_equal(r.nwarnings, 0);
    assert_int_equal(r.ninfos, 0);
    assert_true(r.samples_loaded > 0);
    query_result_release(&r);
    assert_null(r.mem);

    run_ok("sum by (job) (requests_total)", TEND, &r);
    assert_int_equal(r.nseries, 2);
    double total = 0;
    for (size_t i = 0; i < r.nseries; i++)
        total += r.series[i].points[0].v;
    assert_true(fabs(total - (NSTEPS - 1) * (NSERIES * (NSERIES + 1) / 2.0)) < 1e-6);
    query_result_release(&r);

    /* sort_desc orders an instant vector. */
    run_ok("sort_desc(temperature)", TEND, &r);
    assert_int_equal(r.nseries, 2);
    assert_string_equal(label(&r.series[0], "room"), "b");
    assert_string_equal(label(&r.series[0], "__name__"), "temperature");
    query_result_release(&r);
}

static void test_range_matrix_scalar_string(void **state)
{
    (void)state;
    struct query_result r;
    struct query_eval_error err;
    assert_int_equal(
        query_run_range(db, "avg(temperature)", TEND - 600000, TEND, 60000, NULL, &r, &err), 0);
    assert_int_equal(r.type, QUERY_VALUE_MATRIX);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].nlabels, 0);
    assert_int_equal(r.series[0].npoints, 11);
    assert_int_equal(r.series[0].points[10].t, TEND);
    query_result_release(&r);

    /* A range query of a scalar is a matrix with one series {}. */
    assert_int_equal(query_run_range(db, "time()", T0, T0 + 120000, 60000, NULL, &r, &err), 0);
    assert_int_equal(r.type, QUERY_VALUE_MATRIX);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].npoints, 3);
    assert_true(r.series[0].points[2].v == (T0 + 120000) / 1000.0);
    query_result_release(&r);

    /* Instant query of a range vector: the raw samples of the window. */
    run_ok("temperature{room=\"a\"}[1m]", TEND, &r);
    assert_int_equal(r.type, QUERY_VALUE_MATRIX);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.series[0].npoints, 6);
    assert_int_equal(r.series[0].points[5].t, TEND);
    query_result_release(&r);

    run_ok("1 + 2 * 3", TEND, &r);
    assert_int_equal(r.type, QUERY_VALUE_SCALAR);
    assert_true(r.scalar == 7);
    assert_int_equal(r.t, TEND);
    query_result_release(&r);

    run_ok("\"hello\"", TEND, &r);
    assert_int_equal(r.type, QUERY_VALUE_STRING);
    assert_string_equal(r.string, "hello");
    query_result_release(&r);

    /* Nothing matches: an empty vector, not an error. */
    run_ok("nothing_here", TEND, &r);
    assert_int_equal(r.type, QUERY_VALUE_VECTOR);
    assert_int_equal(r.nseries, 0);
    query_result_release(&r);
}

static void expect_error(const char *q, int range, const struct query_opts *o, const char *type,
                         const char *msg)
{
    struct query_result r;
    struct query_eval_error err;
    size_t before = heap_in_use();
    int rc = range ? query_run_range(db, q, TEND - 3600000, TEND, 10000, o, &r, &err)
                   : query_run_instant(db, q, TEND, o, &r, &err);
    if (rc == 0)
        fail_msg("%s: no error", q);
    assert_null(r.mem);
    assert_int_equal(r.nseries, 0);
    if (strcmp(err.type, type) != 0 || (msg && !strstr(err.msg, msg)))
        fail_msg("%s: got %s: %s; want %s: %s", q, err.type, err.msg, type, msg ? msg : "");
    /* Everything the failed query allocated is given back. */
    size_t after = heap_in_use();
    if (after > before)
        fail_msg("%s: %zu bytes still held after the error", q, after - before);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("sum(", 0, NULL, QUERY_ERR_BAD_DATA, "1:5: parse error");
    expect_error("requests_total[5m]", 1, NULL, QUERY_ERR_BAD_DATA,
                 "invalid expression type \"range vector\" for range query, must be Scalar or "
                 "instant Vector");
    expect_error("\"str\"", 1, NULL, QUERY_ERR_BAD_DATA, "invalid expression type \"string\"");
    expect_error("requests_total * on() temperature", 0, NULL, QUERY_ERR_EXECUTION,
                 "many-to-many matching not allowed");
    expect_error("label_replace(temperature, \"room\", \"x\", \"room\", \".*\")", 0, NULL,
                 QUERY_ERR_EXECUTION, "vector cannot contain metrics with the same labelset");
    expect_error("requests_total + ignoring(id) sum by (job) (requests_total)", 0, NULL,
                 QUERY_ERR_EXECUTION,
                 "multiple matches for labels: many-to-one matching must be explicit");
    expect_error("topk(scalar(nothing), temperature)", 0, NULL, QUERY_ERR_EXECUTION,
                 "Parameter value is NaN");
    expect_error("label_replace(temperature, \"x\", \"y\", \"room\", \"(\")", 0, NULL,
                 QUERY_ERR_EXECUTION, "invalid regular expression in label_replace(): (");

    struct query_result r;
    struct query_eval_error err;
    assert_int_equal(query_run_range(db, "1", 0, 10, 0, NULL, &r, &err), -1);
    assert_string_equal(err.type, QUERY_ERR_BAD_DATA);
    assert_int_equal(query_run_range(db, "1", 10, 0, 1, NULL, &r, &err), -1);
    assert_string_equal(err.type, QUERY_ERR_BAD_DATA);
    struct query_opts o = {.max_points = 100};
    assert_int_equal(query_run_range(db, "1", 0, 1000, 1, &o, &r, &err), -1);
    assert_string_equal(err.type, QUERY_ERR_BAD_DATA);
    assert_non_null(strstr(err.msg, "exceeded maximum resolution of 100 points per timeseries"));
    assert_int_equal(query_run_range(db, "1", 0, 990, 10, &o, &r, &err), 0);
    query_result_release(&r);
}

static void test_limits(void **state)
{
    (void)state;
    /* Samples: each step of each series held counts, as do loaded samples. */
    struct query_opts o = {.max_samples = 1000};
    expect_error("requests_total", 1, &o, QUERY_ERR_EXECUTION,
                 "query processing would load too many samples into memory in query execution");
    expect_error("sum(rate(requests_total[1h]))", 1, &o, QUERY_ERR_EXECUTION, "too many samples");
    expect_error("max_over_time(requests_total[1h:10s])", 0, &o, QUERY_ERR_EXECUTION,
                 "too many samples");
    struct query_result r;
    struct query_eval_error err;
    assert_int_equal(query_run_instant(db, "sum(requests_total)", TEND, &o, &r, &err), 0);
    query_result_release(&r);

    /* Cancellation: a set flag stops the query. */
    volatile int cancel = 1;
    struct query_opts oc = {.cancel = &cancel};
    expect_error("sum(rate(requests_total[5m]))", 1, &oc, QUERY_ERR_CANCELED, "query was canceled");

    /* Timeout: a query far longer than its budget. */
    struct query_opts ot = {.timeout_ms = 1};
    expect_error("predict_linear(requests_total[1h], 60) + ignoring(x) "
                 "deriv(requests_total[1h]) + ignoring(y) "
                 "max_over_time(stddev_over_time(requests_total[1h])[1h:10s])",
                 1, &ot, QUERY_ERR_TIMEOUT, "query timed out in expression evaluation");
}

static void test_annotations(void **state)
{
    (void)state;
    struct query_result r;
    run_ok("sum(rate(temperature[5m]))", TEND, &r);
    assert_int_equal(r.ninfos, 1);
    assert_string_equal(r.infos[0], "PromQL info: metric might not be a counter, name does not "
                                    "end in _total/_sum/_count/_bucket: \"temperature\" (1:10)");
    query_result_release(&r);
    run_ok("quantile(2, temperature)", TEND, &r);
    assert_int_equal(r.nwarnings, 1);
    assert_string_equal(r.warnings[0],
                        "PromQL warning: quantile value should be between 0 and 1, got 2 (1:10)");
    assert_true(isinf(r.series[0].points[0].v));
    query_result_release(&r);
    /* Without the query text the position is unknown. */
    struct query_node *n;
    assert_int_equal(query_parse("rate(temperature[5m])", &n, NULL), 0);
    struct query_eval_error err;
    assert_int_equal(query_eval_instant(db, n, NULL, TEND, NULL, &r, &err), 0);
    assert_int_equal(r.ninfos, 1);
    assert_non_null(strstr(r.infos[0], "(unknown position)"));
    query_result_release(&r);
    query_node_free(n);
}

static void test_release_zeroed(void **state)
{
    (void)state;
    struct query_result r;
    memset(&r, 0, sizeof(r));
    query_result_release(&r);
    query_result_release(NULL);
}

static void test_format_float(void **state)
{
    (void)state;
    char b[400];
    static const struct {
        double v;
        const char *want;
    } cases[] = {{1, "1"},
                 {0.1, "0.1"},
                 {-2.5, "-2.5"},
                 {1e21, "1000000000000000000000"},
                 {1.5e-7, "0.00000015"},
                 {INFINITY, "+Inf"},
                 {-INFINITY, "-Inf"},
                 {0.30000000000000004, "0.30000000000000004"}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        query_format_float(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].want);
    }
    query_format_float(NAN, b, sizeof(b));
    assert_string_equal(b, "NaN");
}

/* Queries share no state: run some at once (also under ThreadSanitizer). */
static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        struct query_result r;
        struct query_eval_error err;
        if (query_run_range(db, "sum by (job) (rate(requests_total[5m]))", TEND - 1800000, TEND,
                            30000, NULL, &r, &err) < 0)
            return (void *)1;
        int bad = r.nseries != 2;
        query_result_release(&r);
        if (bad)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instant_vector), cmocka_unit_test(test_range_matrix_scalar_string),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_limits),
        cmocka_unit_test(test_annotations),    cmocka_unit_test(test_release_zeroed),
        cmocka_unit_test(test_format_float),   cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
