/*
 * metric_test.c: sample batches and the text exposition: grouping of runs,
 * escaping, number formatting, and no reallocation once a batch shape is
 * steady.
 */
#include "testutil.h"
#include "metric/metric.h"

#include <math.h>

static void test_format_value(void **state)
{
    (void)state;
    char b[32];
    metric_format_value(NAN, b);
    assert_string_equal(b, "NaN");
    metric_format_value(INFINITY, b);
    assert_string_equal(b, "+Inf");
    metric_format_value(-INFINITY, b);
    assert_string_equal(b, "-Inf");
    metric_format_value(42, b);
    assert_string_equal(b, "42");
    metric_format_value(-7, b);
    assert_string_equal(b, "-7");
    metric_format_value(0.1, b);
    assert_string_equal(b, "0.1");
    metric_format_value(1e300, b);
    assert_true(strtod(b, NULL) == 1e300);
    /* Shortest form that reads back exactly, for awkward values. */
    double vals[] = {1.0 / 3, 2.0 / 3, 1e-300, 123456.789, 9007199254740993.0, -0.0};
    for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
        metric_format_value(vals[i], b);
        assert_true(strtod(b, NULL) == vals[i]);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_true(metric_name_valid("node_load1"));
    assert_true(metric_name_valid("job:rate:5m"));
    assert_false(metric_name_valid("1abc"));
    assert_false(metric_name_valid(""));
    assert_false(metric_name_valid("a-b"));
    assert_true(metric_label_name_valid("_x1"));
    assert_false(metric_label_name_valid("a:b"));
}

static void fill(struct metric_buf *b)
{
    metric_buf_reset(b, 1000);
    metric_fam(b, "zeta_total", "Last family.", METRIC_COUNTER);
    metric_add1(b, 1, "device", "eth0");
    metric_fam(b, "alpha", "Help with \\ and\nnewline.", METRIC_GAUGE);
    metric_add1(b, 2.5, "v", "quote\" back\\slash\nnl");
    metric_fam(b, "zeta_total", "Last family.", METRIC_COUNTER);
    metric_add1(b, 3, "device", "eth1");
    metric_fam(b, "empty", "No samples: not written.", METRIC_GAUGE);
    metric_fam(b, "mid", "Untyped.", METRIC_UNTYPED);
    metric_add0(b, NAN);
}

static void test_expose(void **state)
{
    (void)state;
    struct metric_buf b;
    metric_buf_init(&b);
    fill(&b);
    struct sbuf out;
    sbuf_init(&out, 0);
    const struct metric_buf *bufs[] = {&b};
    assert_int_equal(metric_expose(bufs, 1, &out), 0);
    /* Runs of zeta_total are merged at its first place; empty families vanish. */
    const char *want = "# HELP zeta_total Last family.\n"
                       "# TYPE zeta_total counter\n"
                       "zeta_total{device=\"eth0\"} 1\n"
                       "zeta_total{device=\"eth1\"} 3\n"
                       "# HELP alpha Help with \\\\ and\\nnewline.\n"
                       "# TYPE alpha gauge\n"
                       "alpha{v=\"quote\\\" back\\\\slash\\nnl\"} 2.5\n"
                       "# HELP mid Untyped.\n"
                       "# TYPE mid untyped\n"
                       "mid NaN\n";
    assert_string_equal(out.buf, want);
    sbuf_release(&out);
    metric_buf_release(&b);
}

/* A capped output buffer fails cleanly instead of growing. */
static void test_expose_cap(void **state)
{
    (void)state;
    struct metric_buf b;
    metric_buf_init(&b);
    fill(&b);
    struct sbuf out;
    sbuf_init(&out, 40);
    const struct metric_buf *bufs[] = {&b};
    assert_int_equal(metric_expose(bufs, 1, &out), -1);
    assert_true(out.len <= 40);
    sbuf_release(&out);
    metric_buf_release(&b);
}

/* Refilling the same shape reuses memory: the steady state allocates nothing. */
static void test_steady_state(void **state)
{
    (void)state;
    struct metric_buf b;
    metric_buf_init(&b);
    fill(&b);
    char *arena = b.arena;
    void *fams = b.fams, *samples = b.samples;
    size_t caps[3] = {b.arena_cap, b.fams_cap, b.samples_cap};
    for (int i = 0; i < 100; i++)
        fill(&b);
    assert_ptr_equal(arena, b.arena);
    assert_ptr_equal(fams, b.fams);
    assert_ptr_equal(samples, b.samples);
    assert_int_equal(caps[0], b.arena_cap);
    assert_int_equal(caps[1], b.fams_cap);
    assert_int_equal(caps[2], b.samples_cap);
    assert_int_equal(b.nsamples, 4);
    metric_buf_release(&b);
}

/* Rolling back drops exactly what came after the mark. */
static void test_rollback(void **state)
{
    (void)state;
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, 0);
    metric_fam(&b, "kept", "Kept.", METRIC_GAUGE);
    metric_add0(&b, 1);
    struct metric_mark m;
    metric_buf_mark(&b, &m);
    metric_add0(&b, 2); /* into the family open at the mark */
    metric_fam(&b, "dropped", "Dropped.", METRIC_GAUGE);
    metric_add1(&b, 3, "a", "b");
    metric_buf_rollback(&b, &m);
    assert_int_equal(b.nfams, 1);
    assert_int_equal(b.nsamples, 1);
    assert_int_equal(b.fams[0].count, 1);
    struct sbuf out;
    sbuf_init(&out, 0);
    const struct metric_buf *bufs[] = {&b};
    metric_expose(bufs, 1, &out);
    assert_string_equal(out.buf, "# HELP kept Kept.\n# TYPE kept gauge\nkept 1\n");
    sbuf_release(&out);
    metric_buf_release(&b);
}

/* A kept shape's stamp is unique, and every change through the API voids it. */
static void test_keep_shape(void **state)
{
    (void)state;
    struct metric_buf b, c;
    metric_buf_init(&b);
    metric_buf_init(&c);
    metric_buf_reset(&b, 0);
    metric_fam(&b, "m", "M.", METRIC_GAUGE);
    metric_add0(&b, 1);
    assert_true(b.shape_stamp == 0);
    metric_buf_keep_shape(&b);
    metric_buf_keep_shape(&c);
    assert_true(b.shape_stamp != 0 && c.shape_stamp != 0 && b.shape_stamp != c.shape_stamp);
    uint64_t first = b.shape_stamp;
    metric_buf_keep_shape(&b);
    assert_true(b.shape_stamp != first);
    b.samples[0].value = 2; /* a value is not the shape */
    b.ts_ms = 1000;
    assert_true(b.shape_stamp != 0);
    struct metric_mark m;
    metric_buf_mark(&b, &m);
    metric_add0(&b, 3);
    assert_true(b.shape_stamp == 0);
    metric_buf_keep_shape(&b);
    metric_fam(&b, "n", "N.", METRIC_GAUGE);
    assert_true(b.shape_stamp == 0);
    metric_buf_keep_shape(&b);
    metric_buf_rollback(&b, &m);
    assert_true(b.shape_stamp == 0);
    metric_buf_keep_shape(&b);
    metric_buf_reset(&b, 0);
    assert_true(b.shape_stamp == 0);
    metric_buf_release(&b);
    metric_buf_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_value), cmocka_unit_test(test_names),
        cmocka_unit_test(test_expose),       cmocka_unit_test(test_expose_cap),
        cmocka_unit_test(test_steady_state), cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_keep_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
