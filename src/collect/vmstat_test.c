/*
 * vmstat_test.c: /proc/vmstat source against a recorded host, a 4.x-era
 * field set, a narrowing field regex, and garbled, truncated and missing
 * input.
 */
#include "testutil.h"
#include "collect/collect.h"
#include "util/log.h"

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* node_exporter 1.5's default "^(oom_kill|pgpg|pswp|pg.*fault).*", spelled out. */
#define NE_DEFAULT "(oom_kill|pgpg|pswp|pg.*fault).*"

static int no_field(const char *k)
{
    (void)k;
    return 0;
}

static int pgpg_fields(const char *k)
{
    return starts(k, "pgpg");
}

static int ne_default(const char *k)
{
    if (starts(k, "oom_kill") || starts(k, "pgpg") || starts(k, "pswp"))
        return 1;
    return starts(k, "pg") && strstr(k, "fault");
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

/*
 * Run the vmstat source on fixture proc root rel with field regex re and
 * check every line of its vmstat: present with its value when keep(name)
 * says so, absent otherwise. Returns the number exported.
 */
static size_t check_fields(const char *rel, const char *re, int (*keep)(const char *))
{
    char root[4096];
    snprintf(root, sizeof(root), "%s/proc", fixture(rel));
    struct collect_opts o = {.proc_root = root, .vmstat_fields = re};
    const char *src = "vmstat";
    struct collect *c = tu_collect_only(&o, &src, 1);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vmstat"), 1);
    char path[4200];
    snprintf(path, sizeof(path), "%s/vmstat", root);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char k[128], name[160];
    unsigned long long v;
    size_t nsel = 0;
    while (fscanf(f, "%127s %llu", k, &v) == 2) {
        snprintf(name, sizeof(name), "node_vmstat_%s", k);
        if (!keep || keep(k)) {
            assert_float_equal(tu_value(b, name, ""), (double)v, 0);
            nsel++;
        } else {
            assert_false(tu_find(b, name, "", NULL));
        }
    }
    fclose(f);
    assert_int_equal(tu_count_prefix(b, "node_vmstat_"), nsel);
    tu_assert_prefix_type(b, "node_vmstat_", METRIC_UNTYPED);
    collect_free(c);
    return nsel;
}

/* The default: every field of the file, as --collector.vmstat.fields='.*'. */
static void test_host1(void **state)
{
    (void)state;
    assert_true(check_fields("host1", NULL, NULL) > 150);
    struct collect *c = tu_collect_source(fixture("host1/proc"), "vmstat");
    const struct metric_buf *b = collect_last(c);
    /* The reclaim and compaction fields incidents need, named explicitly. */
    static const char *const must[] = {
        "pswpin",
        "pswpout",
        "pgmajfault",
        "oom_kill",
        "pgfault",
        "pgpgin",
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
        "nr_free_pages",
        "compact_fail",
    };
    char name[160];
    for (size_t i = 0; i < ARRAY_SIZE(must); i++) {
        snprintf(name, sizeof(name), "node_vmstat_%s", must[i]);
        assert_float_equal(tu_value(b, name, ""), fixture_field("host1/proc/vmstat", must[i]), 0);
    }
    assert_string_equal(tu_help(b, "node_vmstat_pgfault"),
                        "/proc/vmstat information field pgfault.");
    collect_free(c);
}

/* A custom regex narrows the set; it has to match the whole name. */
static void test_fields_regex(void **state)
{
    (void)state;
    check_fields("host1", NE_DEFAULT, ne_default);
    check_fields("old-vmstat", NE_DEFAULT, ne_default);
    /* Anchored: "pgpg" alone is the field pgpg (there is none), not a prefix. */
    assert_int_equal(check_fields("host1", "pgpg", no_field), 0);
    assert_int_equal(check_fields("host1", "pgpg.*", pgpg_fields), 2);
}

/* A regex that does not compile switches the source off, logged, not counted. */
static void test_bad_regex(void **state)
{
    (void)state;
    struct collect_opts o = {.proc_root = fixture("host1/proc"), .vmstat_fields = "pg(fault"};
    const char *src = "vmstat";
    struct collect *c = tu_collect_only(&o, &src, 1);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vmstat"), 0);
    assert_int_equal(tu_source_errors(b, "vmstat"), 0);
    assert_int_equal(tu_count_prefix(b, "node_vmstat_"), 0);
    collect_free(c);
}

static void test_old_kernel(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("old-vmstat/proc"), "vmstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vmstat"), 1);
    /* Every line, with the values as written in old-vmstat/proc/vmstat. */
    assert_int_equal(check_fields("old-vmstat", NULL, NULL), 16);
    assert_float_equal(tu_value(b, "node_vmstat_allocstall", ""), 2, 0);
    assert_float_equal(tu_value(b, "node_vmstat_workingset_refault", ""), 41, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgscan_kswapd_normal", ""), 77, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgscan_direct_normal", ""), 78, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgsteal_kswapd_normal", ""), 70, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pswpin", ""), 3, 0);
    assert_float_equal(tu_value(b, "node_vmstat_pgmajfault", ""), 6, 0);
    assert_float_equal(tu_value(b, "node_vmstat_compact_stall", ""), 1, 0);
    assert_float_equal(tu_value(b, "node_vmstat_thp_fault_alloc", ""), 9, 0);
    assert_float_equal(tu_value(b, "node_vmstat_nr_free_pages", ""), 100, 0);
    assert_false(tu_find(b, "node_vmstat_oom_kill", "", NULL));
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
    log_set_level(LOG_ERROR); /* test_bad_regex's log line is expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),     cmocka_unit_test(test_fields_regex),
        cmocka_unit_test(test_bad_regex), cmocka_unit_test(test_old_kernel),
        cmocka_unit_test(test_garbled),   cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
