/*
 * softirqs_test.c: /proc/softirqs source against a recorded host (every
 * count checked against the file), a header whose CPU columns change
 * between ticks, a 512-CPU host's long rows, and garbled, truncated and
 * missing files, each rejected with its file:line.
 */
#include "testutil.h"
#include "collect/collect.h"

#define FAM "node_softirqs_functions_total"

/* Check b against the softirqs file at path, parsed here; returns the series count. */
static size_t check_against(const struct metric_buf *b, const char *path)
{
    static char line[65536];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    static char cpus[1024][8];
    int ncpu = 0;
    for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n"))
        snprintf(cpus[ncpu++], sizeof(cpus[0]), "%s", t + 3);
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        char *name = strtok(line, " :\n");
        for (int c = 0; c < ncpu; c++) {
            char labels[128];
            snprintf(labels, sizeof(labels), "cpu=\"%s\",type=\"%s\"", cpus[c], name);
            assert_float_equal(tu_value(b, FAM, labels), strtod(strtok(NULL, " \n"), NULL), 0);
            n++;
        }
    }
    fclose(f);
    assert_int_equal(tu_count(b, FAM), n);
    return n;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "softirqs");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "softirqs"), 1);
    assert_int_equal(check_against(b, fixture("host1/proc/softirqs")), 20);
    assert_int_equal(tu_type(b, FAM), METRIC_COUNTER);
    assert_string_equal(tu_help(b, FAM), "Softirq counts per CPU.");
    /* The type label is the row name as the kernel writes it. */
    assert_true(tu_find(b, FAM, "cpu=\"1\",type=\"NET_RX\"", NULL));
    assert_true(tu_find(b, FAM, "cpu=\"0\",type=\"IRQ_POLL\"", NULL));
    collect_free(c);
}

/* The header is read every tick: a change of columns is followed at once. */
static void test_columns_change(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX], path[TU_PATH_MAX];
    tu_scratch_proc("softirqs", "       CPU0   CPU1\n        HI:   1   2\n     TIMER:   3   4\n",
                    dir, path);
    struct collect *c = tu_collect_source(dir, "softirqs");
    assert_int_equal(check_against(collect_last(c), path), 4);
    tu_write_file(path, "       CPU0   CPU1   CPU2\n"
                        "        HI:   1   2   0\n"
                        "     TIMER:   5   6   7\n"
                        "    NET_RX:   8   9  10\n");
    collect_once(c, 2000);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(check_against(b, path), 9);
    assert_float_equal(tu_value(b, FAM, "cpu=\"2\",type=\"NET_RX\""), 10, 0);
    assert_int_equal(tu_source_errors(b, "softirqs"), 0);
    collect_free(c);
    tu_rmrf(dir);
}

/* 512 possible CPUs: rows of 6 KB, every count in place. */
static void test_long_lines(void **state)
{
    (void)state;
    static const char *const rows[] = {"HI",       "TIMER",   "NET_TX", "NET_RX",  "BLOCK",
                                       "IRQ_POLL", "TASKLET", "SCHED",  "HRTIMER", "RCU"};
    struct sbuf t;
    sbuf_init(&t, 0);
    sbuf_adds(&t, "        ");
    for (int c = 0; c < 512; c++)
        sbuf_addf(&t, "     CPU%-4d", c);
    sbuf_adds(&t, "\n");
    for (size_t r = 0; r < ARRAY_SIZE(rows); r++) {
        sbuf_addf(&t, "%10s:", rows[r]);
        for (int c = 0; c < 512; c++)
            sbuf_addf(&t, " %10zu", r * 100000 + (size_t)c);
        sbuf_adds(&t, "\n");
    }
    char dir[TU_PATH_MAX], path[TU_PATH_MAX];
    tu_scratch_proc("softirqs", t.buf, dir, path);
    sbuf_release(&t);
    struct collect *c = tu_collect_source(dir, "softirqs");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "softirqs"), 1);
    assert_int_equal(tu_count(b, FAM), 5120);
    /* Spot checks: check_against() would take seconds over 5120 series. */
    for (size_t r = 0; r < ARRAY_SIZE(rows); r += 3)
        for (int cpu = 0; cpu < 512; cpu += 73) {
            char labels[64];
            snprintf(labels, sizeof(labels), "cpu=\"%d\",type=\"%s\"", cpu, rows[r]);
            assert_float_equal(tu_value(b, FAM, labels), (double)(r * 100000 + (size_t)cpu), 0);
        }
    assert_float_equal(tu_value(b, FAM, "cpu=\"511\",type=\"RCU\""), 900511, 0);
    collect_free(c);
    tu_rmrf(dir);
}

static void expect_rejected(const char *text, int line)
{
    tu_assert_rejects("softirqs", "softirqs", text, line, "node_softirqs_");
}

static void test_garbled(void **state)
{
    (void)state;
    const char *head = "  CPU0 CPU1\n";
    char text[256];
    static const struct {
        const char *rows;
        int line;
    } cases[] = {
        {"HI: 1 2\nTIMER: 3 x4\n", 3}, /* bad count */
        {"HI: 1 2\nTIMER: 3\n", 3},    /* a count missing */
        {"HI: 1 2 3\n", 2},            /* one too many */
        {"HI: 1 2\nTIMER 3 4\n", 3},   /* no ':' */
        {"HI: 1 2\nNET RX: 3 4\n", 3}, /* a blank in the name */
        {"HI: -1 2\n", 2},             /* negative */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        snprintf(text, sizeof(text), "%s%s", head, cases[i].rows);
        expect_rejected(text, cases[i].line);
    }
    expect_rejected("  CPU0 CPUone\nHI: 1 2\n", 1);
}

static void test_truncated(void **state)
{
    (void)state;
    expect_rejected("", 0);
    expect_rejected("  CPU0 CPU1\n", 0);
}

static void test_missing(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("odd-entropy/proc"), "softirqs");
    tu_assert_source_failed(collect_last(c), "softirqs", 1, "node_softirqs_");
    collect_once(c, 2000);
    assert_int_equal(tu_source_errors(collect_last(c), "softirqs"), 1); /* switched off */
    collect_free(c);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),      cmocka_unit_test(test_columns_change),
        cmocka_unit_test(test_long_lines), cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),  cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
