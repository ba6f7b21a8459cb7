/*
 * vfs_test.c: /proc/sys/fs source (dentry-state, inode-state, file-nr)
 * against a recorded host, a host with only some of the files, and
 * garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

static const char *const families[] = {
    "node_filefd_allocated",      "node_filefd_maximum",          "sitrep_vfs_dentries",
    "sitrep_vfs_dentries_unused", "sitrep_vfs_dentries_negative", "sitrep_vfs_inodes",
    "sitrep_vfs_inodes_free",
};

static size_t count_all(const struct metric_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(families); i++)
        n += tu_count(b, families[i]);
    return n;
}

/* Read up to max numbers from a one-line fixture file; returns how many. */
static int read_numbers(const char *rel, unsigned long long *v, int max)
{
    FILE *f = fopen(fixture(rel), "r");
    assert_non_null(f);
    int n = 0;
    while (n < max && fscanf(f, "%llu", &v[n]) == 1)
        n++;
    fclose(f);
    return n;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "vfs");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vfs"), 1);
    unsigned long long d[6], in[7], fnr[3];
    assert_int_equal(read_numbers("host1/proc/sys/fs/dentry-state", d, 6), 6);
    assert_int_equal(read_numbers("host1/proc/sys/fs/inode-state", in, 7), 7);
    assert_int_equal(read_numbers("host1/proc/sys/fs/file-nr", fnr, 3), 3);
    assert_float_equal(tu_value(b, "sitrep_vfs_dentries", ""), (double)d[0], 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_dentries_unused", ""), (double)d[1], 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_dentries_negative", ""), (double)d[4], 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_inodes", ""), (double)in[0], 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_inodes_free", ""), (double)in[1], 0);
    assert_float_equal(tu_value(b, "node_filefd_allocated", ""), (double)fnr[0], 0);
    assert_float_equal(tu_value(b, "node_filefd_maximum", ""), (double)fnr[2], 0);
    assert_int_equal(count_all(b), ARRAY_SIZE(families));
    for (size_t i = 0; i < b->nfams; i++)
        for (size_t k = 0; k < ARRAY_SIZE(families); k++)
            if (strcmp(metric_str(b, b->fams[i].name), families[k]) == 0)
                assert_int_equal(b->fams[i].type, METRIC_GAUGE);
    collect_free(c);
}

static void test_partial(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("partial-vfs/proc"), "vfs");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "vfs"), 1);
    /* Values as written in partial-vfs/proc/sys/fs. */
    assert_float_equal(tu_value(b, "node_filefd_allocated", ""), 96, 0);
    assert_float_equal(tu_value(b, "node_filefd_maximum", ""), 1000000, 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_dentries", ""), 5000, 0);
    assert_float_equal(tu_value(b, "sitrep_vfs_dentries_unused", ""), 4000, 0);
    /* Four-field dentry-state: no nr_negative to report. */
    assert_false(tu_find(b, "sitrep_vfs_dentries_negative", "", NULL));
    /* No inode-state: its part is skipped, not the source. */
    assert_false(tu_find(b, "sitrep_vfs_inodes", "", NULL));
    assert_false(tu_find(b, "sitrep_vfs_inodes_free", "", NULL));
    assert_int_equal(count_all(b), 4);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "vfs");
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "vfs", 1, "sitrep_vfs_");
    /* The well-formed file-nr beside the bad file is not emitted either. */
    assert_int_equal(count_all(b), 0);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-vfs/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-vfs/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* none of the three files */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_partial),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
