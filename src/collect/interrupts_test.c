/*
 * interrupts_test.c: /proc/interrupts source against a recorded host (every
 * row checked against a parse written here, node_exporter 1.5's rules spelled
 * out independently), CPUs going offline and coming back between ticks, very
 * long rows past the series cap, and garbled, truncated and missing files,
 * each rejected with its file:line.
 */
#include "testutil.h"
#include "collect/collect.h"
#include "util/log.h"

#define FAM "node_interrupts_total"

/*
 * Check b against the interrupts file at path: each row with counts for
 * every CPU and a description is one series per CPU; numbered rows split
 * the description into info (first word) and devices (the rest, blanks
 * squeezed). Returns the number of series.
 */
static size_t check_against(const struct metric_buf *b, const char *path)
{
    static char line[65536];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    char cpus[64][8];
    int ncpu = 0;
    for (char *t = strtok(line, " \n"); t; t = strtok(NULL, " \n"))
        snprintf(cpus[ncpu++], sizeof(cpus[0]), "%s", t + 3);
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        char *tok[512];
        int nt = 0;
        for (char *t = strtok(line, " \n"); t && nt < 512; t = strtok(NULL, " \n"))
            tok[nt++] = t;
        if (nt < ncpu + 2)
            continue; /* ERR, MIS */
        tok[0][strlen(tok[0]) - 1] = '\0';
        int num = tok[0][0] >= '0' && tok[0][0] <= '9';
        char info[1024] = "", devices[1024] = "";
        size_t ni = 0, nd = 0;
        for (int i = ncpu + 1; i < nt; i++) {
            int dev = num && i > ncpu + 1;
            char *dst = dev ? devices : info;
            size_t *len = dev ? &nd : &ni;
            *len +=
                (size_t)snprintf(dst + *len, sizeof(info) - *len, "%s%s", *len ? " " : "", tok[i]);
        }
        for (int c = 0; c < ncpu; c++) {
            char labels[2300];
            snprintf(labels, sizeof(labels), "cpu=\"%s\",type=\"%s\",info=\"%s\",devices=\"%s\"",
                     cpus[c], tok[0], info, devices);
            assert_float_equal(tu_value(b, FAM, labels), strtod(tok[1 + c], NULL), 0);
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
    struct collect *c = tu_collect_source(fixture("host1/proc"), "interrupts");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "interrupts"), 1);
    assert_int_equal(check_against(b, fixture("host1/proc/interrupts")), 66);
    assert_int_equal(tu_type(b, FAM), METRIC_COUNTER);
    assert_string_equal(tu_help(b, FAM), "Interrupt details.");
    /* As node_exporter 1.5 printed them on the recording host. */
    assert_true(tu_find(
        b, FAM, "cpu=\"1\",type=\"24\",info=\"IO-APIC\",devices=\"5-edge ACPI:Ged\"", NULL));
    assert_true(tu_find(
        b, FAM, "cpu=\"0\",type=\"LOC\",info=\"Local timer interrupts\",devices=\"\"", NULL));
    assert_float_equal(tu_value(b, "sitrep_interrupts_skipped", ""), 0, 0);
    collect_free(c);
}

/* CPU hot-plug: the header's columns change between ticks; labels follow the ids. */
static void test_hotplug(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX], path[TU_PATH_MAX];
    tu_scratch_proc("interrupts",
                    "       CPU0   CPU2   CPU3\n"
                    "  0:     10     20     30  IO-APIC   2-edge      timer\n"
                    "LOC:    100    200    300  Local timer interrupts\n"
                    "ERR:      0\n",
                    dir, path);
    struct collect *c = tu_collect_source(dir, "interrupts");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(check_against(b, path), 6);
    assert_float_equal(
        tu_value(b, FAM, "cpu=\"2\",type=\"0\",info=\"IO-APIC\",devices=\"2-edge timer\""), 20, 0);
    assert_false(
        tu_find(b, FAM, "cpu=\"1\",type=\"0\",info=\"IO-APIC\",devices=\"2-edge timer\"", NULL));
    assert_false(tu_find(b, FAM, "cpu=\"0\",type=\"ERR\",info=\"\",devices=\"\"", NULL));

    /* CPU 1 comes online: four columns. */
    tu_write_file(path, "       CPU0   CPU1   CPU2   CPU3\n"
                        "  0:     11      1     21     31  IO-APIC   2-edge      timer\n"
                        "LOC:    101      5    201    301  Local timer interrupts\n");
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_source_success(b, "interrupts"), 1);
    assert_int_equal(check_against(b, path), 8);
    assert_float_equal(
        tu_value(b, FAM, "cpu=\"1\",type=\"LOC\",info=\"Local timer interrupts\",devices=\"\""), 5,
        0);

    /* And two go away again. */
    tu_write_file(path, "       CPU1   CPU3\n"
                        "LOC:      6    302  Local timer interrupts\n");
    collect_once(c, 3000);
    b = collect_last(c);
    assert_int_equal(check_against(b, path), 2);
    assert_int_equal(tu_source_errors(b, "interrupts"), 0);
    collect_free(c);
    tu_rmrf(dir);
}

/* 300 CPUs, long device lists: the rows parse whole, the series stop at 4096. */
static void test_long_lines(void **state)
{
    (void)state;
    enum { NCPU = 300, NROWS = 20 };
    struct sbuf t;
    sbuf_init(&t, 0);
    sbuf_adds(&t, "    ");
    for (int c = 0; c < NCPU; c++)
        sbuf_addf(&t, "      CPU%d", c);
    sbuf_adds(&t, "\n");
    for (int r = 0; r < NROWS; r++) {
        sbuf_addf(&t, "%3d:", 100 + r);
        for (int c = 0; c < NCPU; c++)
            sbuf_addf(&t, " %10d", r * 1000 + c);
        sbuf_adds(&t, "  PCI-MSI 524288-edge     ");
        for (int d = 0; d < 200; d++) /* a shared line: 200 devices, ~2 KB */
            sbuf_addf(&t, " nvme%dq%d,", r, d);
        sbuf_adds(&t, "\n");
    }
    char dir[TU_PATH_MAX], path[TU_PATH_MAX];
    tu_scratch_proc("interrupts", t.buf, dir, path);
    sbuf_release(&t);
    struct collect *c = tu_collect_source(dir, "interrupts");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "interrupts"), 1);
    assert_int_equal(tu_count(b, FAM), 4096);
    assert_float_equal(tu_value(b, "sitrep_interrupts_skipped", ""), NROWS * NCPU - 4096, 0);
    /* In file order: row 13 (4096 = 13 * 300 + 196) ends at CPU 195. */
    size_t found = 0;
    for (size_t i = 0; i < b->nfams; i++) {
        const struct metric_fam_rec *f = &b->fams[i];
        if (strcmp(metric_str(b, f->name), FAM) != 0)
            continue;
        const struct metric_sample *last = &b->samples[f->first + f->count - 1];
        assert_float_equal(last->value, 13 * 1000 + 195, 0);
        const char *p = metric_str(b, last->labels); /* "cpu\0195\0type\0113\0info..." */
        assert_string_equal(p + 4, "195");
        const char *type = p + 4 + 4 + 5;
        assert_string_equal(type, "113");
        const char *info = type + 4 + 5;
        assert_string_equal(info, "PCI-MSI");
        const char *devices = info + strlen(info) + 1 + 8;
        assert_true(strlen(devices) > 2000);
        assert_int_equal(strncmp(devices, "524288-edge nvme13q0, nvme13q1,", 31), 0);
        found++;
    }
    assert_int_equal(found, 1);
    collect_free(c);
    tu_rmrf(dir);
}

static void expect_rejected(const char *text, int line)
{
    tu_assert_rejects("interrupts", "interrupts", text, line, "node_interrupts_");
}

static void test_garbled(void **state)
{
    (void)state;
    expect_rejected("  CPU0 CPU1\n  0: 1 2 IO-APIC timer\nLOC: 3 4x Local timer\n", 3);
    expect_rejected("  CPU0 CPU1\n  0: 1 2 IO-APIC timer\nthis row has no colon\n", 3);
    expect_rejected("  CPU0 CPU1\nA B: 1 2 two words before the colon\n", 2);
    expect_rejected("  CPU0 GPU1\n  0: 1 2 IO-APIC timer\n", 1);
    expect_rejected("  0: 1 2 IO-APIC timer\n", 1); /* the header is missing */
    expect_rejected("  CPU0 CPU1\n  0: 1 -2 IO-APIC timer\n", 2);
}

static void test_truncated(void **state)
{
    (void)state;
    expect_rejected("", 0);
    expect_rejected("  CPU0 CPU1\n", 0);                 /* no rows */
    expect_rejected("  CPU0 CPU1\nERR: 0\nMIS: 0\n", 0); /* no per-CPU rows */
}

static void test_missing(void **state)
{
    (void)state;
    /* A proc root without interrupts: the source is switched off. */
    struct collect *c = tu_collect_source(fixture("odd-entropy/proc"), "interrupts");
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "interrupts", 1, "node_interrupts_");
    collect_once(c, 2000);
    assert_int_equal(tu_source_errors(collect_last(c), "interrupts"), 1);
    collect_free(c);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),      cmocka_unit_test(test_hotplug),
        cmocka_unit_test(test_long_lines), cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),  cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
