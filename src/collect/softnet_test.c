/*
 * softnet_test.c: /proc/net/softnet_stat source against a recorded host,
 * hand-written current (CPU id column, an offline CPU) and pre-5.10 files,
 * and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static const char *const fams[] = {"node_softnet_processed_total", "node_softnet_dropped_total",
                                   "node_softnet_times_squeezed_total"};

/*
 * Check every sample against the fixture file, parsed here independently:
 * columns 1-3 are the values, the 13th (if present) the CPU id, else the
 * line index. Returns the number of CPU lines.
 */
static size_t check_against(const struct metric_buf *b, const char *rel)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    char line[1024];
    size_t idx = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long col[16];
        int nc = 0;
        for (char *t = strtok(line, " \t\n"); t && nc < 16; t = strtok(NULL, " \t\n"))
            col[nc++] = strtoull(t, NULL, 16);
        assert_true(nc >= 3);
        char labels[64];
        snprintf(labels, sizeof(labels), "cpu=\"%llu\"", nc >= 13 ? col[12] : idx);
        for (int k = 0; k < 3; k++)
            assert_float_equal(tu_value(b, fams[k], labels), (double)col[k], 0);
        idx++;
    }
    fclose(f);
    for (int k = 0; k < 3; k++)
        assert_int_equal(tu_count(b, fams[k]), idx);
    return idx;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "softnet");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "softnet"), 1);
    assert_true(check_against(b, "host1/proc/net/softnet_stat") >= 1);
    collect_free(c);
}

static void test_offline_cpu(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("odd-softnet/proc"), "softnet");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "softnet"), 1);
    assert_int_equal(check_against(b, "odd-softnet/proc/net/softnet_stat"), 3);
    /* CPU 1 is offline: the second line is CPU 2, labelled by its id. */
    assert_false(tu_find(b, "node_softnet_processed_total", "cpu=\"1\"", NULL));
    assert_float_equal(tu_value(b, "node_softnet_processed_total", "cpu=\"2\""), 4294967295.0, 0);
    assert_float_equal(tu_value(b, "node_softnet_times_squeezed_total", "cpu=\"2\""), 31, 0);
    assert_float_equal(tu_value(b, "node_softnet_dropped_total", "cpu=\"3\""), 256, 0);
    collect_free(c);
}

static void test_old_kernel(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("old-softnet/proc"), "softnet");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "softnet"), 1);
    assert_int_equal(check_against(b, "old-softnet/proc/net/softnet_stat"), 2);
    assert_float_equal(tu_value(b, "node_softnet_processed_total", "cpu=\"1\""), 2000, 0);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "softnet");
    tu_assert_source_failed(collect_last(c), "softnet", 1, "node_softnet_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-softnet/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-softnet/proc");
}

static void test_missing(void **state)
{
    (void)state;
    /* A proc root without net/softnet_stat: the source is disabled. */
    expect_failure("odd-entropy/proc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),      cmocka_unit_test(test_offline_cpu),
        cmocka_unit_test(test_old_kernel), cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),  cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
