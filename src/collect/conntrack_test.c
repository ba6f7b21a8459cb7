/*
 * conntrack_test.c: netfilter conntrack source against a recorded host, a
 * hand-written older kernel's stat file with counts on two CPUs, a host
 * without the stat file, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static const char *const columns[] = {"found",         "invalid", "ignore",     "insert",
                                      "insert_failed", "drop",    "early_drop", "search_restart"};
#define NCOL (sizeof(columns) / sizeof(columns[0]))

/* Column sums of a stat fixture, located by header name, parsed here. */
static void stat_sums(const char *rel, double *sum)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    char line[1024];
    int idx[NCOL];
    assert_non_null(fgets(line, sizeof(line), f));
    int i = 0;
    for (size_t k = 0; k < NCOL; k++)
        idx[k] = -1;
    for (char *t = strtok(line, " \t\n"); t; t = strtok(NULL, " \t\n"), i++)
        for (size_t k = 0; k < NCOL; k++)
            if (strcmp(t, columns[k]) == 0)
                idx[k] = i;
    for (size_t k = 0; k < NCOL; k++) {
        assert_true(idx[k] >= 0);
        sum[k] = 0;
    }
    while (fgets(line, sizeof(line), f)) {
        i = 0;
        for (char *t = strtok(line, " \t\n"); t; t = strtok(NULL, " \t\n"), i++)
            for (size_t k = 0; k < NCOL; k++)
                if (idx[k] == i)
                    sum[k] += (double)strtoull(t, NULL, 16);
    }
    fclose(f);
}

static void check_dir(const char *dir)
{
    char root[256], rel[256];
    snprintf(root, sizeof(root), "%s/proc", dir);
    struct collect *c = tu_collect_source(fixture(root), "conntrack");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "conntrack"), 1);
    snprintf(rel, sizeof(rel), "%s/proc/sys/net/netfilter/nf_conntrack_count", dir);
    assert_float_equal(tu_value(b, "node_nf_conntrack_entries", ""), tu_fixture_number(rel), 0);
    snprintf(rel, sizeof(rel), "%s/proc/sys/net/netfilter/nf_conntrack_max", dir);
    assert_float_equal(tu_value(b, "node_nf_conntrack_entries_limit", ""), tu_fixture_number(rel),
                       0);
    double sum[NCOL];
    snprintf(rel, sizeof(rel), "%s/proc/net/stat/nf_conntrack", dir);
    stat_sums(rel, sum);
    for (size_t k = 0; k < NCOL; k++) {
        char name[96];
        snprintf(name, sizeof(name), "node_nf_conntrack_stat_%s", columns[k]);
        assert_float_equal(tu_value(b, name, ""), sum[k], 0);
        assert_int_equal(tu_count(b, name), 1);
    }
    collect_free(c);
}

static void test_host1(void **state)
{
    (void)state;
    check_dir("host1");
}

static void test_summed(void **state)
{
    (void)state;
    check_dir("odd-conntrack");
    /* And spelled out: found is 0x10 + 0x200, drop 0x9 + 0xa00. */
    struct collect *c = tu_collect_source(fixture("odd-conntrack/proc"), "conntrack");
    const struct metric_buf *b = collect_last(c);
    assert_float_equal(tu_value(b, "node_nf_conntrack_stat_found", ""), 0x210, 0);
    assert_float_equal(tu_value(b, "node_nf_conntrack_stat_drop", ""), 0xa09, 0);
    assert_float_equal(tu_value(b, "node_nf_conntrack_stat_search_restart", ""), 0xff0f, 0);
    collect_free(c);
}

static void test_no_stat_file(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("conntrack-nostat/proc"), "conntrack");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "conntrack"), 1);
    assert_float_equal(tu_value(b, "node_nf_conntrack_entries", ""), 7, 0);
    assert_float_equal(tu_value(b, "node_nf_conntrack_entries_limit", ""), 262144, 0);
    assert_int_equal(tu_count(b, "node_nf_conntrack_stat_found"), 0);
    collect_free(c);
}

/* A failing source leaves nothing of its own in the batch. */
static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "conntrack");
    tu_assert_source_failed(collect_last(c), "conntrack", 1, "node_nf_conntrack_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-conntrack/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    /* The sysctls are fine and emitted; the stat file is cut mid-line. */
    expect_failure("truncated-conntrack/proc");
}

static void test_missing(void **state)
{
    (void)state;
    /* nf_conntrack not loaded: no sysctls, the source is disabled. */
    expect_failure("odd-entropy/proc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),        cmocka_unit_test(test_summed),
        cmocka_unit_test(test_no_stat_file), cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),    cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
