/*
 * slabinfo_test.c: /proc/slabinfo source against a recorded host, a debug
 * kernel's layout with duplicate, long and empty caches, garbled, truncated
 * and missing files; then the selection over ticks written here: the fixed
 * caches, the top 10 by bytes, the hysteresis that holds a cache for
 * SLAB_HOLD_MS after it left the top, the cap on held caches, and reads only
 * every 5 s with the last read repeated in between.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <unistd.h>

static const char *const families[] = {
    "node_slabinfo_active_objects",
    "node_slabinfo_objects",
    "node_slabinfo_object_size_bytes",
    "sitrep_slab_bytes",
};

#define HOLD_MS  (10 * 60 * 1000)
#define EVERY_MS 5000

static double page_size(void)
{
    return (double)sysconf(_SC_PAGESIZE);
}

static double slab(const struct metric_buf *b, const char *fam, const char *cache)
{
    char l[160];
    snprintf(l, sizeof(l), "slab=\"%s\"", cache);
    return tu_value(b, fam, l);
}

static int has(const struct metric_buf *b, const char *cache)
{
    char l[160];
    snprintf(l, sizeof(l), "slab=\"%s\"", cache);
    int n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(families); i++)
        n += tu_find(b, families[i], l, NULL);
    assert_true(n == 0 || n == (int)ARRAY_SIZE(families)); /* all four or none */
    return n > 0;
}

static struct collect *run(const char *proc_root)
{
    const char *keep = "slabinfo";
    struct collect_opts o = {.proc_root = proc_root};
    return tu_collect_only(&o, &keep, 1);
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = run(fixture("host1/proc"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "slabinfo"), 1);
    /* The recorded dentry line, field by field. */
    FILE *f = fopen(fixture("host1/proc/slabinfo"), "r");
    assert_non_null(f);
    char line[512];
    unsigned long long v[5], slabs = 0;
    int found = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line,
                   "dentry %llu %llu %llu %llu %llu : tunables %*u %*u %*u : slabdata %*u "
                   "%llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &slabs) == 6)
            found = 1;
    fclose(f);
    assert_true(found);
    assert_float_equal(slab(b, "node_slabinfo_active_objects", "dentry"), (double)v[0], 0);
    assert_float_equal(slab(b, "node_slabinfo_objects", "dentry"), (double)v[1], 0);
    assert_float_equal(slab(b, "node_slabinfo_object_size_bytes", "dentry"), (double)v[2], 0);
    assert_float_equal(slab(b, "sitrep_slab_bytes", "dentry"),
                       (double)slabs * (double)v[4] * page_size(), 0);
    assert_true(has(b, "inode_cache"));
    assert_true(has(b, "ext4_inode_cache"));
    /* The fixed caches present plus the top 10 of the rest: far fewer than the file. */
    size_t n = tu_count(b, "sitrep_slab_bytes");
    assert_true(n >= 10 + 3 && n <= 10 + 11);
    for (size_t i = 0; i < ARRAY_SIZE(families); i++) {
        assert_int_equal(tu_count(b, families[i]), n);
        assert_int_equal(tu_type(b, families[i]), METRIC_GAUGE);
    }
    collect_free(c);
}

static void test_odd(void **state)
{
    (void)state;
    struct collect *c = run(fixture("odd-slabinfo/proc"));
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "slabinfo"), 1);
    /* Debug kernels append globalstat and cpustat: the first fields still count. */
    assert_float_equal(slab(b, "node_slabinfo_active_objects", "dentry"), 1000, 0);
    assert_float_equal(slab(b, "sitrep_slab_bytes", "dentry"), 100 * page_size(), 0);
    /* A name twice: one series, the first line's. */
    assert_float_equal(slab(b, "node_slabinfo_active_objects", "twice"), 50, 0);
    /* A long name is cut to 63 bytes. */
    assert_true(has(b, "a_cache_whose_name_is_far_longer_than_the_sixty_four_bytes_kept"));
    /* An empty cache is no top cache. */
    assert_false(has(b, "empty"));
    assert_int_equal(tu_count(b, "sitrep_slab_bytes"), 3);
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = run(fixture(root));
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "slabinfo", 1, "node_slabinfo_");
    assert_int_equal(tu_count(b, "sitrep_slab_bytes"), 0);
    /* Still enabled: a garbled file is retried (and counted) every tick. */
    collect_once(c, 2000);
    tu_assert_source_failed(collect_last(c), "slabinfo", 2, "node_slabinfo_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-slabinfo/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-slabinfo/proc");
}

/* Missing (or unreadable: not root): one error, then the source is off. */
static void test_missing(void **state)
{
    (void)state;
    struct collect *c = run(fixture("no-psi/proc"));
    tu_assert_source_failed(collect_last(c), "slabinfo", 1, "node_slabinfo_");
    for (int i = 0; i < 3; i++)
        collect_once(c, 2000 + 1000 * i);
    tu_assert_source_failed(collect_last(c), "slabinfo", 1, "node_slabinfo_");
    collect_free(c);
}

/* ---- selection over ticks, on files written here ---- */

/* A slabinfo file in a temporary proc root: caches c01..c<n> and dentry. */
struct slab_files {
    char dir[128];
    struct row {
        const char *name;
        unsigned slabs; /* one page each: bytes = slabs x page size */
    } rows[64];
    char names[64][16];
    size_t n; /* rows, dentry (fixed, small) last */
};

/* c01 the largest (base + 10 n slabs), each next one 10 slabs less. */
static void slab_files_init(struct slab_files *f, size_t n, unsigned base)
{
    snprintf(f->dir, sizeof(f->dir), "%s", tu_tmpdir("slabinfo"));
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "c%02u", (unsigned)(i + 1) % 100);
        f->rows[i] = (struct row){f->names[i], base + (unsigned)(n - i) * 10};
    }
    f->rows[n] = (struct row){"dentry", 1};
    f->n = n + 1;
}

/* Write the first nrows rows under the version line `header`. */
static void slab_files_write(const struct slab_files *f, size_t nrows, const char *header)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/slabinfo", f->dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fprintf(out,
            "%s\n# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
            "tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> "
            "<num_slabs> <sharedavail>\n",
            header);
    for (size_t i = 0; i < nrows; i++)
        fprintf(out, "%s %u %u 64 64 1 : tunables 0 0 0 : slabdata %u %u 0\n", f->rows[i].name,
                f->rows[i].slabs * 60, f->rows[i].slabs * 64, f->rows[i].slabs, f->rows[i].slabs);
    fclose(out);
}

#define V21 "slabinfo - version: 2.1"

static void test_hysteresis(void **state)
{
    (void)state;
    static struct slab_files f;
    slab_files_init(&f, 15, 100);
    slab_files_write(&f, f.n, V21);
    struct collect *c = run(f.dir);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "slabinfo"), 1);
    assert_true(has(b, "dentry"));
    assert_true(has(b, "c01") && has(b, "c10"));
    assert_false(has(b, "c11"));
    assert_int_equal(tu_count(b, "sitrep_slab_bytes"), 11);
    assert_float_equal(slab(b, "sitrep_slab_bytes", "c01"), 250 * page_size(), 0);

    /* c11 jumps to the top, c10 falls out of it: c10 is still reported. */
    f.rows[10].slabs = 1000;
    f.rows[9].slabs = 2;
    slab_files_write(&f, f.n, V21);
    int64_t t = 1000 + EVERY_MS / 2;
    collect_once(c, t); /* between reads: the last read again */
    b = collect_last(c);
    assert_false(has(b, "c11"));
    assert_float_equal(slab(b, "sitrep_slab_bytes", "c10"), 160 * page_size(), 0);
    t = 1000 + EVERY_MS;
    collect_once(c, t);
    b = collect_last(c);
    assert_true(has(b, "c11"));
    assert_true(has(b, "c10"));
    assert_float_equal(slab(b, "sitrep_slab_bytes", "c10"), 2 * page_size(), 0);
    assert_int_equal(tu_count(b, "sitrep_slab_bytes"), 12);

    /* Out of the top for the whole hold (since the read at 1000): dropped; c11 stays. */
    for (t += EVERY_MS; t <= 1000 + HOLD_MS; t += EVERY_MS) {
        collect_once(c, t);
        assert_true(has(collect_last(c), "c10"));
    }
    collect_once(c, t);
    b = collect_last(c);
    assert_false(has(b, "c10"));
    assert_true(has(b, "c11"));
    assert_int_equal(tu_count(b, "sitrep_slab_bytes"), 11);
    assert_int_equal(tu_source_errors(b, "slabinfo"), 0);

    /* A fixed cache that disappears is simply not reported. */
    slab_files_write(&f, f.n - 1, V21);
    collect_once(c, t += EVERY_MS);
    assert_false(has(collect_last(c), "dentry"));

    /* A header of an unknown version fails the read (and the repeats stop). */
    slab_files_write(&f, f.n, "slabinfo - version: 3.0");
    collect_once(c, t += EVERY_MS);
    tu_assert_source_failed(collect_last(c), "slabinfo", 1, "node_slabinfo_");
    collect_free(c);
    tu_rmrf(f.dir);
}

/* Ever-changing top caches: at most 32 held besides the fixed ones. */
static void test_held_cap(void **state)
{
    (void)state;
    static struct slab_files f;
    slab_files_init(&f, 60, 0);
    struct collect *c = NULL;
    int64_t t = 1000;
    for (size_t round = 0; round < 6; round++, t += EVERY_MS) {
        /* This round's ten lead by far. */
        for (size_t i = 0; i < 60; i++)
            f.rows[i].slabs = i / 10 == round ? 1000 + (unsigned)i : 1 + (unsigned)i;
        slab_files_write(&f, f.n, V21);
        if (!c)
            c = run(f.dir);
        else
            collect_once(c, t);
        const struct metric_buf *b = collect_last(c);
        for (size_t i = round * 10; i < round * 10 + 10; i++)
            assert_true(has(b, f.names[i]));
        size_t held = (round + 1) * 10 < 32 ? (round + 1) * 10 : 32;
        assert_int_equal(tu_count(b, "sitrep_slab_bytes"), held + 1 /* dentry */);
    }
    collect_free(c);
    tu_rmrf(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),    cmocka_unit_test(test_odd),
        cmocka_unit_test(test_garbled),  cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),  cmocka_unit_test(test_hysteresis),
        cmocka_unit_test(test_held_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
