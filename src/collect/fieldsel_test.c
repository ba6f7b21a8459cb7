/*
 * fieldsel_test.c: field selection (collect: {vmstat_fields, netstat_fields}):
 * whole-name matching, the per-name decision cache (the regex runs once per
 * distinct name, however many ticks), its bound, and bad regexes with their
 * offsets.
 */
#include "testutil.h"
#include "collect/collect_internal.h"

static int keep(struct collect__fieldsel *s, const char *name)
{
    return collect__fieldsel_keep(s, name, strlen(name));
}

static void test_null_keeps_everything(void **state)
{
    (void)state;
    struct collect__fieldsel *s = (void *)1;
    char err[256];
    size_t off = 99;
    assert_int_equal(collect__fieldsel_new(NULL, &s, err, sizeof(err), &off), 0);
    assert_null(s);
    assert_int_equal(off, 0);
    assert_int_equal(keep(s, "pgfault"), 1);
    assert_int_equal(keep(s, ""), 1);
    assert_int_equal(collect__fieldsel_matches(s), 0);
    collect__fieldsel_free(s);
}

static void test_whole_name(void **state)
{
    (void)state;
    struct collect__fieldsel *s;
    char err[256];
    size_t off;
    assert_int_equal(
        collect__fieldsel_new("Tcp_.*|TcpExt_Listen(Drops|Overflows)", &s, err, sizeof(err), &off),
        0);
    assert_int_equal(keep(s, "Tcp_InSegs"), 1);
    assert_int_equal(keep(s, "TcpExt_ListenDrops"), 1);
    assert_int_equal(keep(s, "TcpExt_ListenDropsX"), 0); /* anchored at the end */
    assert_int_equal(keep(s, "XTcp_InSegs"), 0);         /* and at the start */
    assert_int_equal(keep(s, "Udp_InErrors"), 0);
    /* The name is the len bytes given, not up to a NUL. */
    assert_int_equal(collect__fieldsel_keep(s, "Tcp_InSegs and more", 10), 1);
    assert_int_equal(collect__fieldsel_keep(s, "TcpExt_ListenDropsX", 18), 1);
    collect__fieldsel_free(s);
}

/* Ticks repeat the same names: after the first, no regex runs at all. */
static void test_decisions_cached(void **state)
{
    (void)state;
    struct collect__fieldsel *s;
    char err[256];
    size_t off;
    assert_int_equal(collect__fieldsel_new("pg.*", &s, err, sizeof(err), &off), 0);
    char name[32];
    for (int tick = 0; tick < 5; tick++) {
        for (int i = 0; i < 600; i++) { /* more than the table's first size */
            snprintf(name, sizeof(name), "%s_%d", i % 2 ? "pgscan" : "nr", i);
            assert_int_equal(keep(s, name), i % 2);
        }
        assert_int_equal(collect__fieldsel_matches(s), 600);
    }
    /* A new name (a kernel module's counters) is matched once, then remembered. */
    assert_int_equal(keep(s, "pgnew"), 1);
    assert_int_equal(keep(s, "pgnew"), 1);
    assert_int_equal(collect__fieldsel_matches(s), 601);
    collect__fieldsel_free(s);
}

/* Past the cache's bound answers stay right; the regex just runs every time. */
static void test_cache_bounded(void **state)
{
    (void)state;
    struct collect__fieldsel *s;
    char err[256];
    size_t off;
    assert_int_equal(collect__fieldsel_new("a.*7", &s, err, sizeof(err), &off), 0);
    char name[32];
    for (int tick = 0; tick < 2; tick++)
        for (int i = 0; i < 5000; i++) {
            snprintf(name, sizeof(name), "a%d", i);
            assert_int_equal(keep(s, name), i % 10 == 7);
        }
    uint64_t m = collect__fieldsel_matches(s);
    assert_true(m > 5000 && m < 10000); /* the first 4096 names were remembered */
    collect__fieldsel_free(s);
}

static void test_bad_regex(void **state)
{
    (void)state;
    struct collect__fieldsel *s = (void *)1;
    char err[256];
    size_t off;
    assert_int_equal(collect__fieldsel_new("pg(fault", &s, err, sizeof(err), &off), -1);
    assert_null(s);
    assert_int_equal(off, 8);
    assert_non_null(strstr(err, "bad regex at offset 8: missing closing parenthesis"));
    assert_int_equal(collect_check_fields("a[", err, sizeof(err), &off), -1);
    assert_int_equal(off, 2);
    assert_int_equal(collect_check_fields(".*", err, sizeof(err), &off), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_keeps_everything),
        cmocka_unit_test(test_whole_name),
        cmocka_unit_test(test_decisions_cached),
        cmocka_unit_test(test_cache_bounded),
        cmocka_unit_test(test_bad_regex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
