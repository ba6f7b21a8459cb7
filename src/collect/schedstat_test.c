/*
 * schedstat_test.c: /proc/schedstat source on versions 14 (12 fields per
 * cpu line), 15 and 17 (9 fields, different domain lines), an offline CPU,
 * and garbled, truncated, too old and missing files.
 */
#include "testutil.h"
#include "collect/collect.h"

static const char *const fams[] = {"node_schedstat_running_seconds_total",
                                   "node_schedstat_waiting_seconds_total",
                                   "node_schedstat_timeslices_total"};

/* Run the schedstat source on a scratch proc root holding text. */
static struct collect *run_text(const char *text, char *dir)
{
    char path[TU_PATH_MAX];
    tu_scratch_proc("schedstat", text, dir, path);
    return tu_collect_source(dir, "schedstat");
}

/* cpu's three values: running and waiting in ns, timeslices. */
static void expect_cpu(const struct metric_buf *b, const char *cpu, double run_ns, double wait_ns,
                       double slices)
{
    char l[32];
    snprintf(l, sizeof(l), "cpu=\"%s\"", cpu);
    assert_float_equal(tu_value(b, fams[0], l), run_ns / 1e9, 1e-12);
    assert_float_equal(tu_value(b, fams[1], l), wait_ns / 1e9, 1e-12);
    assert_float_equal(tu_value(b, fams[2], l), slices, 0);
}

/* Linux 6.1 (version 15): 9 fields, domain lines in between. */
static const char v15[] =
    "version 15\n"
    "timestamp 4295328236\n"
    "cpu0 0 0 0 0 0 0 1503469286 152387567 13289\n"
    "domain0 00000003 5 5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "cpu1 0 0 0 0 0 0 2900000000123 700000000 99\n"
    "domain0 00000003 7 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

static void test_v15(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    struct collect *c = run_text(v15, dir);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 1);
    for (size_t i = 0; i < ARRAY_SIZE(fams); i++) {
        assert_int_equal(tu_count(b, fams[i]), 2);
        assert_int_equal(tu_type(b, fams[i]), METRIC_COUNTER);
    }
    expect_cpu(b, "0", 1503469286, 152387567, 13289);
    expect_cpu(b, "1", 2900000000123, 700000000, 99);
    collect_free(c);
    tu_rmrf(dir);
}

/*
 * Version 14 has 12 fields (three more yield counters first): the last three
 * are still running, waiting and timeslices. Version 17 (domain lines carry
 * the domain's name) with CPU 1 offline: labels are the CPU numbers.
 */
static void test_other_versions(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    struct collect *c = run_text("version 14\ntimestamp 100\n"
                                 "cpu0 7 7 7 0 0 0 0 0 0 111 222 333\n"
                                 "domain0 3 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n",
                                 dir);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 1);
    expect_cpu(b, "0", 111, 222, 333);
    collect_free(c);
    tu_rmrf(dir);

    c = run_text("version 17\ntimestamp 4294967296\n"
                 "cpu0 0 0 10 1 5 2 5000 6000 7\n"
                 "domain0 SMT 00000005 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
                 "cpu2 0 0 10 1 5 2 8000 9000 11\n"
                 "domain0 SMT 00000005 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
                 dir);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 1);
    expect_cpu(b, "0", 5000, 6000, 7);
    expect_cpu(b, "2", 8000, 9000, 11);
    assert_false(tu_find(b, fams[0], "cpu=\"1\"", NULL));
    collect_free(c);
    tu_rmrf(dir);
}

/* Too old a layout is not an error to count every tick: the source goes off. */
static void test_too_old(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    struct collect *c = run_text("version 12\ntimestamp 1\ncpu0 1 2 3 4 5 6 7 8 9 10 11 12\n", dir);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 0);
    assert_int_equal(tu_count_prefix(b, "node_schedstat_"), 0);
    collect_once(c, 2000);
    b = collect_last(c);
    assert_float_equal(tu_source_errors(b, "schedstat"), 1, 0); /* once, then off */
    collect_free(c);
    tu_rmrf(dir);
}

static void test_garbled(void **state)
{
    (void)state;
    /* No version line first. */
    tu_assert_rejects("schedstat", "schedstat", "timestamp 1\ncpu0 0 0 0 0 0 0 1 2 3\n", 1,
                      "node_schedstat_");
    tu_assert_rejects("schedstat", "schedstat", "version fifteen\ncpu0 0 0 0 0 0 0 1 2 3\n", 1,
                      "node_schedstat_");
    /* A bad number in a field read, on the second CPU: nothing of the first
     * is emitted either. */
    tu_assert_rejects("schedstat", "schedstat",
                      "version 15\ntimestamp 1\ncpu0 0 0 0 0 0 0 1 2 3\ncpu1 0 0 0 0 0 0 1 -2 3\n",
                      4, "node_schedstat_");
    /* Cut short. */
    tu_assert_rejects("schedstat", "schedstat", "version 15\ntimestamp 1\ncpu0 0 0 0 0 1 2 3\n", 3,
                      "node_schedstat_");
    /* No cpu line at all. */
    tu_assert_rejects("schedstat", "schedstat", "version 15\ntimestamp 1\n", 0, "node_schedstat_");
    tu_assert_rejects("schedstat", "schedstat", "", 0, "node_schedstat_");
}

/* "cpu" alone or "cpuX" are no CPU lines: skipped, as later additions would be. */
static void test_unknown_lines(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    struct collect *c = run_text("version 15\ntimestamp 1\ncpu 1 2\ncpuX 1\nfuture 1 2 3\n"
                                 "cpu3 0 0 0 0 0 0 30 40 50\n",
                                 dir);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 1);
    assert_int_equal(tu_count(b, fams[0]), 1);
    expect_cpu(b, "3", 30, 40, 50);
    collect_free(c);
    tu_rmrf(dir);
}

/* A kernel without CONFIG_SCHEDSTATS has no file: logged once and off. */
static void test_missing(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "schedstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "schedstat"), 0);
    assert_int_equal(tu_count_prefix(b, "node_schedstat_"), 0);
    collect_once(c, 2000);
    assert_float_equal(tu_source_errors(collect_last(c), "schedstat"), 1, 0);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v15),           cmocka_unit_test(test_other_versions),
        cmocka_unit_test(test_too_old),       cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_unknown_lines), cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
