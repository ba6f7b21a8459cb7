/*
 * diskstats_test.c: /proc/diskstats source against a recorded host, device
 * names the default exclusion must and must not skip, old and new kernels'
 * field counts, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <regex.h>

static const struct {
    const char *name;
    double scale;
} cols[17] = {
    {"node_disk_reads_completed_total", 1},
    {"node_disk_reads_merged_total", 1},
    {"node_disk_read_bytes_total", 512},
    {"node_disk_read_time_seconds_total", 0.001},
    {"node_disk_writes_completed_total", 1},
    {"node_disk_writes_merged_total", 1},
    {"node_disk_written_bytes_total", 512},
    {"node_disk_write_time_seconds_total", 0.001},
    {"node_disk_io_now", 1},
    {"node_disk_io_time_seconds_total", 0.001},
    {"node_disk_io_time_weighted_seconds_total", 0.001},
    {"node_disk_discards_completed_total", 1},
    {"node_disk_discards_merged_total", 1},
    {"node_disk_discarded_sectors_total", 1},
    {"node_disk_discard_time_seconds_total", 0.001},
    {"node_disk_flush_requests_total", 1},
    {"node_disk_flush_requests_time_seconds_total", 0.001},
};

/*
 * Check the file at path line by line against the batch. The exclusion is
 * node_exporter's default regexp (plus eMMC partitions) run through libc's
 * regex, independently of the source's hand-written matcher. Returns the
 * number of devices reported.
 */
static size_t check_file(const struct metric_buf *b, const char *path)
{
    regex_t re;
    assert_int_equal(
        regcomp(&re, "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme[0-9]+n[0-9]+p|mmcblk[0-9]+p)[0-9]+$",
                REG_EXTENDED | REG_NOSUB),
        0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    size_t ndevs = 0, nsamples = 0;
    while (fgets(line, sizeof(line), f)) {
        char *tok[32];
        int nt = 0;
        for (char *t = strtok(line, " \t\n"); t && nt < 32; t = strtok(NULL, " \t\n"))
            tok[nt++] = t;
        if (nt == 0)
            continue;
        assert_true(nt >= 14);
        char labels[128];
        snprintf(labels, sizeof(labels), "device=\"%s\"", tok[2]);
        if (regexec(&re, tok[2], 0, NULL, 0) == 0) {
            assert_int_equal(tu_find(b, "node_disk_reads_completed_total", labels, NULL), 0);
            continue;
        }
        int nstat = nt - 3 < 17 ? nt - 3 : 17;
        for (int i = 0; i < 17; i++) {
            if (i < nstat) {
                double want = strtod(tok[3 + i], NULL) * cols[i].scale;
                assert_float_equal(tu_value(b, cols[i].name, labels), want, 1e-9 * want);
                nsamples++;
            } else {
                assert_false(tu_find(b, cols[i].name, labels, NULL));
            }
        }
        ndevs++;
    }
    fclose(f);
    regfree(&re);
    assert_int_equal(tu_count_prefix(b, "node_disk_"), nsamples);
    return ndevs;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "diskstats");
    const struct metric_buf *b = collect_last(c);
    char path[4096];
    snprintf(path, sizeof(path), "%s", fixture("host1/proc/diskstats"));
    size_t ndevs = check_file(b, path);
    assert_true(ndevs >= 1);
    assert_int_equal(tu_source_success(b, "diskstats"), 1);
    assert_false(tu_find(b, "node_disk_reads_completed_total", "device=\"loop0\"", NULL));
    for (size_t i = 0; i < b->nfams; i++) {
        const char *name = metric_str(b, b->fams[i].name);
        if (strncmp(name, "node_disk_", 10) == 0)
            assert_int_equal(b->fams[i].type,
                             strcmp(name, "node_disk_io_now") ? METRIC_COUNTER : METRIC_GAUGE);
    }
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(check_file(b, path), ndevs);
    collect_free(c);
}

/* Partitions, loop/ram/floppy skipped; look-alikes kept; 11 to 20 counters. */
static void test_odd_devices(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("odd-diskstats/proc"), "diskstats");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "diskstats"), 1);
    char path[4096];
    snprintf(path, sizeof(path), "%s", fixture("odd-diskstats/proc/diskstats"));
    assert_int_equal(check_file(b, path), 9);
    static const char *const kept[] = {"sda",  "sdaa1", "xvda", "nvme0n1", "mmcblk0",
                                       "dm-0", "md127", "sr0",  "loopback"};
    static const char *const skipped[] = {"sda1", "xvda1", "nvme0n1p1", "mmcblk0p1",
                                          "ram0", "ram15", "loop0",     "fd0"};
    char labels[64];
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++) {
        snprintf(labels, sizeof(labels), "device=\"%s\"", kept[i]);
        assert_true(tu_find(b, "node_disk_io_time_weighted_seconds_total", labels, NULL));
    }
    for (size_t i = 0; i < ARRAY_SIZE(skipped); i++) {
        snprintf(labels, sizeof(labels), "device=\"%s\"", skipped[i]);
        assert_false(tu_find(b, "node_disk_reads_completed_total", labels, NULL));
    }
    /* sda: units as node_exporter has them. */
    assert_float_equal(tu_value(b, "node_disk_read_bytes_total", "device=\"sda\""), 800 * 512.0, 0);
    assert_float_equal(tu_value(b, "node_disk_read_time_seconds_total", "device=\"sda\""), 0.030,
                       1e-12);
    assert_float_equal(tu_value(b, "node_disk_discarded_sectors_total", "device=\"sda\""), 8000, 0);
    assert_float_equal(tu_value(b, "node_disk_flush_requests_time_seconds_total", "device=\"sda\""),
                       0.011, 1e-12);
    /* A pre-4.18 line has no discard fields, a pre-5.5 one no flush fields. */
    assert_false(tu_find(b, "node_disk_discards_completed_total", "device=\"xvda\"", NULL));
    assert_true(tu_find(b, "node_disk_discard_time_seconds_total", "device=\"nvme0n1\"", NULL));
    assert_false(tu_find(b, "node_disk_flush_requests_total", "device=\"nvme0n1\"", NULL));
    collect_free(c);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "diskstats");
    tu_assert_source_failed(collect_last(c), "diskstats", 1, "node_disk_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-diskstats/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-diskstats/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* a proc root without diskstats */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_odd_devices),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
