/*
 * vmstat_test.c: /proc/vmstat source against a recorded host, a 4.x-era
 * field set, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/*
 * The documented selection, spelled out independently of vmstat.c:
 * node_exporter's ^(oom_kill|pgpg|pswp|pg.*fault) plus the reclaim set.
 */
static int selected(const char *k)
{
    if (starts(k, "oom_kill") || starts(k, "pgpg") || starts(k, "pswp"))
        return 1;
    if (starts(k, "pg") && strstr(k, "fault"))
        return 1;
    return starts(k, "allocstall") || starts(k, "pgscan_") || starts(k, "pgsteal_") ||
           starts(k, "workingset_refault") || !strcmp(k, "compact_stall") ||
           !strcmp(k, "drop_slab") || !strcmp(k, "drop_pagecache");
}

/* Value of field k in fixture file rel, failing the test if absent. */
static double fixture_field(const char *rel, const char *k)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    char name[128];
    unsigned long long v;
    double out = -1;
    while (fscanf(f, "%127s %llu", name, &v) == 2)
        if (strcmp(name, k) == 0)
            out = (double)v;
    fclose(f);
    if (out < 0)
        fail_msg("fixture %s has no %s", rel, k);
    return out;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "vmstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vmstat"), 1);

    /* Every selected line of the fixture, with its value; nothing else. */
    FILE *f = fopen(fixture("host1/proc/vmstat"), "r");
    assert_non_null(f);
    char k[128], name[160];
    unsigned long long v;
    size_t nsel = 0;
    while (fscanf(f, "%127s %llu", k, &v) == 2) {
        snprintf(name, sizeof(name), "node_vmstat_%s", k);
        if (selected(k)) {
            assert_float_equal(tu_value(b, name, ""), (double)v, 0);
            nsel++;
        } else {
            assert_false(tu_find(b, name, "", NULL));
        }
    }
    fclose(f);
    assert_int_equal(tu_count_prefix(b, "node_vmstat_"), nsel);

    /* The fields the brief requires, named explicitly. */
    static const char *const must[] = {
        "pswpin",
        "pswpout",
        "pgmajfault",
        "oom_kill",
        "pgfault",
        "pgpgin",
        "pgpgout",
        "allocstall_normal",
        "pgscan_kswapd",
        "pgscan_direct",
        "pgsteal_kswapd",
        "pgsteal_direct",
        "compact_stall",
        "drop_slab",
        "drop_pagecache",
        "workingset_refault_anon",
        "workingset_refault_file",
    };
    for (size_t i = 0; i < ARRAY_SIZE(must); i++) {
        snprintf(name, sizeof(name), "node_vmstat_%s", must[i]);
        assert_float_equal(tu_value(b, name, ""), fixture_field("host1/proc/vmstat", must[i]), 0);
    }
    assert_false(tu_find(b, "node_vmstat_nr_free_pages", "", NULL));
    assert_false(tu_find(b, "node_vmstat_compact_fail", "", NULL));
    tu_assert_prefix_type(b, "node_vmstat_", METRIC_UNTYPED);
    collect_free(c);
}

static void test_old_kernel(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("old-vmstat/proc"), "vmstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vmstat"), 1);
    /* Values as written in old-vmstat/proc/vmstat. */
    assert_float_equal(tu_value(b, "node_vmstat_allocstall", ""), 2, 0);
    assert_float_equal(tu_value(b, "node_vmstat_workingset_refault", ""), 41, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgscan_kswapd_normal", ""), 77, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgscan_direct_normal", ""), 78, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgsteal_kswapd_normal", ""), 70, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pswpin", ""), 3, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgmajfault", ""), 6, 0);
    assert_float_equal(tu_value(b, "node_vmstat_compact_stall", ""), 1, 0);
    assert_false(tu_find(b, "node_vmstat_thp_fault_alloc", "", NULL));
    assert_false(tu_find(b, "node_vmstat_pgalloc_normal", "", NULL));
    assert_false(tu_find(b, "node_vmstat_oom_kill", "", NULL));
    /* pgpgin pgpgout pswpin pswpout pgfault pgmajfault workingset_refault
     * pgscan x2 pgsteal allocstall compact_stall */
    assert_int_equal(tu_count_prefix(b, "node_vmstat_"), 12);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "vmstat");
    tu_assert_source_failed(collect_last(c), "vmstat", 1, "node_vmstat_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-vmstat/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-vmstat/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* a proc root without vmstat */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_old_kernel),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
