/*
 * loadavg_test.c: /proc/loadavg source against a recorded host and garbled,
 * truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static const char *const names[] = {"node_load1", "node_load5", "node_load15"};

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "loadavg");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "loadavg"), 1);
    double v[3];
    FILE *f = fopen(fixture("host1/proc/loadavg"), "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lf %lf %lf", &v[0], &v[1], &v[2]), 3);
    fclose(f);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(tu_value(b, names[i], ""), v[i], 0);
        assert_int_equal(tu_count(b, names[i]), 1);
    }
    collect_free(c);
}

static void test_values(void **state)
{
    (void)state;
    /* no-psi/proc/loadavg holds "0.50 0.25 0.10 1/80 1234". */
    struct collect *c = tu_collect_source(fixture("no-psi/proc"), "loadavg");
    const struct metric_buf *b = collect_last(c);
    assert_float_equal(tu_value(b, "node_load1", ""), 0.50, 0);
    assert_float_equal(tu_value(b, "node_load5", ""), 0.25, 0);
    assert_float_equal(tu_value(b, "node_load15", ""), 0.10, 0);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "loadavg");
    tu_assert_source_failed(collect_last(c), "loadavg", 1, "node_load");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-loadavg/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-loadavg/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("partial-vfs/proc"); /* a proc root without loadavg */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_values),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
