/*
 * stat_test.c: /proc/stat source against a recorded host and garbled input.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <unistd.h>

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "stat");
    const struct metric_buf *b = collect_last(c);
    double hz = (double)sysconf(_SC_CLK_TCK);
    /* cpu0 line of the fixture, recomputed from the file itself. */
    FILE *f = fopen(fixture("host1/proc/stat"), "r");
    assert_non_null(f);
    char line[512];
    unsigned long long v[8];
    int found = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "cpu0 %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8)
            found = 1;
    fclose(f);
    assert_true(found);
    assert_float_equal(tu_value(b, "node_cpu_seconds_total", "cpu=\"0\",mode=\"user\""),
                       (double)v[0] / hz, 1e-9);
    assert_float_equal(tu_value(b, "node_cpu_seconds_total", "cpu=\"0\",mode=\"steal\""),
                       (double)v[7] / hz, 1e-9);
    assert_int_equal(tu_count(b, "node_cpu_seconds_total") % 8, 0);
    assert_true(tu_count(b, "node_cpu_seconds_total") >= 8);
    assert_true(tu_value(b, "node_boot_time_seconds", "") > 1e9);
    assert_true(tu_value(b, "node_context_switches_total", "") > 0);
    assert_true(tu_value(b, "node_forks_total", "") > 0);
    assert_true(tu_find(b, "node_procs_running", "", NULL));
    assert_true(tu_find(b, "node_procs_blocked", "", NULL));
    assert_true(tu_find(b, "node_intr_total", "", NULL));
    assert_true(tu_find(b, "node_cpu_guest_seconds_total", "cpu=\"0\",mode=\"nice\"", NULL));
    assert_int_equal(tu_source_success(b, "stat"), 1);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("garbled/proc"), "stat");
    /* A failed source still leaves the rest of the batch intact. */
    tu_assert_source_failed(collect_last(c), "stat", 1, NULL);
    collect_free(c);
}

static void test_missing(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("does-not-exist"), "stat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "stat"), 0);
    assert_int_equal(tu_count(b, "node_cpu_seconds_total"), 0);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
