/*
 * pressure_test.c: /proc/pressure source against a recorded host, a kernel
 * with memory PSI only, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

/* Samples in families whose name contains part. */
static size_t count_containing(const struct metric_buf *b, const char *part)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strstr(metric_str(b, b->fams[i].name), part))
            n += b->fams[i].count;
    return n;
}

struct psi {
    double avg10[2];
    unsigned long long total[2];
};

/* Read a fixture pressure file: [0] the "some" line, [1] the "full" one. */
static struct psi read_psi(const char *rel)
{
    struct psi p;
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    for (int k = 0; k < 2; k++)
        assert_int_equal(
            fscanf(f, " %*s avg10=%lf avg60=%*f avg300=%*f total=%llu", &p.avg10[k], &p.total[k]),
            2);
    fclose(f);
    return p;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "pressure");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "pressure"), 1);
    static const struct {
        const char *file, *res;
        const char *total[2];
    } cases[] = {
        {"host1/proc/pressure/cpu",
         "cpu",
         {"node_pressure_cpu_waiting_seconds_total", "sitrep_pressure_cpu_stalled_seconds_total"}},
        {"host1/proc/pressure/memory",
         "memory",
         {"node_pressure_memory_waiting_seconds_total",
          "node_pressure_memory_stalled_seconds_total"}},
        {"host1/proc/pressure/io",
         "io",
         {"node_pressure_io_waiting_seconds_total", "node_pressure_io_stalled_seconds_total"}},
    };
    static const char *const kind[] = {"waiting", "stalled"};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct psi p = read_psi(cases[i].file);
        for (int k = 0; k < 2; k++) {
            assert_float_equal(tu_value(b, cases[i].total[k], ""), (double)p.total[k] / 1e6, 1e-12);
            assert_int_equal(tu_type(b, cases[i].total[k]), METRIC_COUNTER);
            char avg[96];
            snprintf(avg, sizeof(avg), "sitrep_pressure_%s_%s_avg10_ratio", cases[i].res, kind[k]);
            assert_float_equal(tu_value(b, avg, ""), p.avg10[k] / 100, 1e-12);
            assert_int_equal(tu_type(b, avg), METRIC_GAUGE);
        }
    }
    /* node_exporter 1.5 has no cpu "full" metric: ours is sitrep_-named. */
    assert_false(tu_find(b, "node_pressure_cpu_stalled_seconds_total", "", NULL));
    assert_int_equal(count_containing(b, "_pressure_"), 12);
    collect_free(c);
}

static void test_memory_only(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("partial-pressure/proc"), "pressure");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "pressure"), 1);
    /* Values as written in partial-pressure/proc/pressure/memory. */
    assert_float_equal(tu_value(b, "node_pressure_memory_waiting_seconds_total", ""), 2.5, 1e-12);
    assert_float_equal(tu_value(b, "node_pressure_memory_stalled_seconds_total", ""), 1.25, 1e-12);
    assert_float_equal(tu_value(b, "sitrep_pressure_memory_waiting_avg10_ratio", ""), 0.1234,
                       1e-12);
    assert_float_equal(tu_value(b, "sitrep_pressure_memory_stalled_avg10_ratio", ""), 0.075, 1e-12);
    assert_int_equal(count_containing(b, "_pressure_cpu_"), 0);
    assert_int_equal(count_containing(b, "_pressure_io_"), 0);
    assert_int_equal(count_containing(b, "_pressure_"), 4);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "pressure");
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "pressure", 1, NULL);
    /* Not even the well-formed files are emitted. */
    assert_int_equal(count_containing(b, "_pressure_"), 0);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-pressure/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-pressure/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* no /proc/pressure at all */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_memory_only),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
