/*
 * entropy_test.c: entropy source against a recorded host, an older kernel's
 * values, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static void check_dir(const char *dir)
{
    char root[256], rel[256];
    snprintf(root, sizeof(root), "%s/proc", dir);
    struct collect *c = tu_collect_source(fixture(root), "entropy");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "entropy"), 1);
    snprintf(rel, sizeof(rel), "%s/proc/sys/kernel/random/entropy_avail", dir);
    assert_float_equal(tu_value(b, "node_entropy_available_bits", ""), tu_fixture_number(rel), 0);
    snprintf(rel, sizeof(rel), "%s/proc/sys/kernel/random/poolsize", dir);
    assert_float_equal(tu_value(b, "node_entropy_pool_size_bits", ""), tu_fixture_number(rel), 0);
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
    struct collect *c = tu_collect_source(fixture(root), "entropy");
    tu_assert_source_failed(collect_last(c), "entropy", 1, "node_entropy_");
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
