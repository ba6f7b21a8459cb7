/*
 * meminfo_test.c: /proc/meminfo source against a recorded host, odd field
 * names, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

/*
 * Every line of the fixture, renamed the way node_exporter documents it:
 * "(x)" -> "_x", kB -> bytes with a _bytes suffix, no suffix without unit.
 */
static void check_all_fields(const struct metric_buf *b, size_t *nlines)
{
    FILE *f = fopen(fixture("host1/proc/meminfo"), "r");
    assert_non_null(f);
    char line[256];
    *nlines = 0;
    while (fgets(line, sizeof(line), f)) {
        char key[64], unit[8] = "";
        unsigned long long v;
        int nf = sscanf(line, "%63[^:]: %llu %7s", key, &v, unit);
        assert_true(nf >= 2);
        char base[64], name[128];
        size_t w = 0;
        for (const char *r = key; *r; r++)
            if (*r != ')')
                base[w++] = *r == '(' ? '_' : *r;
        base[w] = '\0';
        double want = (double)v;
        if (nf == 3) {
            assert_string_equal(unit, "kB");
            want *= 1024;
        }
        snprintf(name, sizeof(name), "node_memory_%s%s", base, nf == 3 ? "_bytes" : "");
        assert_float_equal(tu_value(b, name, ""), want, 0);
        assert_int_equal(tu_type(b, name), METRIC_GAUGE);
        (*nlines)++;
    }
    fclose(f);
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "meminfo");
    const struct metric_buf *b = collect_last(c);
    size_t nlines;
    check_all_fields(b, &nlines);
    assert_true(nlines > 40);
    assert_int_equal(tu_count_prefix(b, "node_memory_"), nlines);
    /* Names spelled out, as node_exporter 1.5 prints them. */
    assert_true(tu_find(b, "node_memory_Active_anon_bytes", "", NULL));
    assert_true(tu_find(b, "node_memory_HugePages_Total", "", NULL));
    assert_true(tu_find(b, "node_memory_Hugepagesize_bytes", "", NULL));
    assert_string_equal(tu_help(b, "node_memory_MemTotal_bytes"),
                        "Memory information field MemTotal_bytes.");
    assert_int_equal(tu_source_success(b, "meminfo"), 1);

    /* The next tick reuses the state and emits the same shape. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_count_prefix(b, "node_memory_"), nlines);
    check_all_fields(b, &nlines);
    collect_free(c);
}

static void test_odd_names(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("odd-meminfo/proc"), "meminfo");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "meminfo"), 1);
    assert_float_equal(tu_value(b, "node_memory_MemTotal_bytes", ""), 1000 * 1024, 0);
    assert_float_equal(tu_value(b, "node_memory_Active_anon_bytes", ""), 992 * 1024, 0);
    /* Characters a metric name cannot hold become '_'. */
    assert_float_equal(tu_value(b, "node_memory_Odd_Field_x_bytes", ""), 7 * 1024, 0);
    assert_float_equal(tu_value(b, "node_memory_Nr_a_b", ""), 5, 0);
    assert_float_equal(tu_value(b, "node_memory_HugePages_Total", ""), 3, 0);
    assert_int_equal(tu_count_prefix(b, "node_memory_"), 5);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "meminfo");
    /* Nothing half-parsed leaks into the batch. */
    tu_assert_source_failed(collect_last(c), "meminfo", 1, "node_memory_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-meminfo/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-meminfo/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* a proc root without meminfo */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_odd_names),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
