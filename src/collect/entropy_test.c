/*
 * entropy_test.c: entropy source against a recorded host, an older kernel's
 * values, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

/* Run one cycle on `root` with only the source `keep` enabled. */
static struct collect *run(const char *root, const char *keep)
{
    size_t n;
    const char *const *names = collect_source_names(&n);
    const char *disabled[64];
    size_t nd = 0;
    assert_true(n <= ARRAY_SIZE(disabled));
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], keep) != 0)
            disabled[nd++] = names[i];
    struct collect_opts o = {.proc_root = root, .disabled = disabled, .ndisabled = nd};
    struct collect *c = collect_new(&o);
    collect_once(c, 1000);
    return c;
}

/* The one number in a fixture file. */
static double number(const char *rel)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    unsigned long long v;
    assert_int_equal(fscanf(f, "%llu", &v), 1);
    fclose(f);
    return (double)v;
}

static void check_dir(const char *dir)
{
    char root[256], rel[256];
    snprintf(root, sizeof(root), "%s/proc", dir);
    struct collect *c = run(fixture(root), "entropy");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_value(b, "sitrep_collector_success", "collector=\"entropy\""), 1);
    snprintf(rel, sizeof(rel), "%s/proc/sys/kernel/random/entropy_avail", dir);
    assert_float_equal(tu_value(b, "node_entropy_available_bits", ""), number(rel), 0);
    snprintf(rel, sizeof(rel), "%s/proc/sys/kernel/random/poolsize", dir);
    assert_float_equal(tu_value(b, "node_entropy_pool_size_bits", ""), number(rel), 0);
    collect_free(c);
}

static void test_host1(void **state)
{
    (void)state;
    check_dir("host1");
}

static void test_old_kernel(void **state)
{
    (void)state;
    check_dir("odd-entropy"); /* 3011 of 4096, no trailing newline */
}

static void expect_failure(const char *root)
{
    struct collect *c = run(fixture(root), "entropy");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_value(b, "sitrep_collector_success", "collector=\"entropy\""), 0);
    assert_int_equal(tu_value(b, "sitrep_collector_errors_total", "collector=\"entropy\""), 1);
    assert_int_equal(tu_count(b, "node_entropy_available_bits"), 0);
    assert_int_equal(tu_count(b, "node_entropy_pool_size_bits"), 0);
    assert_true(tu_find(b, "sitrep_collect_ticks_total", "", NULL));
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-entropy/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-entropy/proc"); /* entropy_avail is empty */
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("odd-softnet/proc");
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
