/*
 * netdev_test.c: /proc/net/dev source against a recorded host, odd
 * interface names, interfaces that come and go between ticks, and garbled,
 * truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <sys/stat.h>
#include <unistd.h>

static const char *const cols[16] = {
    "receive_bytes",  "receive_packets",  "receive_errs",       "receive_drop",
    "receive_fifo",   "receive_frame",    "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs",      "transmit_drop",
    "transmit_fifo",  "transmit_colls",   "transmit_carrier",   "transmit_compressed",
};

/*
 * Check every column of every interface of the file at `path` (read here
 * with sscanf, independently of the source) and that nothing else is there.
 * Returns the number of interfaces.
 */
static size_t check_file(const struct metric_buf *b, const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t nifaces = 0;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (!colon || strchr(line, '|'))
            continue;
        *colon = '\0';
        char dev[32];
        assert_int_equal(sscanf(line, " %31s", dev), 1);
        unsigned long long v[16];
        assert_int_equal(sscanf(colon + 1,
                                "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                                "%llu %llu %llu %llu",
                                &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
                                &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]),
                         16);
        char name[96], labels[64];
        snprintf(labels, sizeof(labels), "device=\"%s\"", dev);
        for (int i = 0; i < 16; i++) {
            snprintf(name, sizeof(name), "node_network_%s_total", cols[i]);
            assert_float_equal(tu_value(b, name, labels), (double)v[i], 0);
        }
        nifaces++;
    }
    fclose(f);
    assert_int_equal(tu_count_prefix(b, "node_network_"), 16 * nifaces);
    for (int i = 0; i < 16; i++) {
        char name[96];
        snprintf(name, sizeof(name), "node_network_%s_total", cols[i]);
        assert_int_equal(tu_count(b, name), nifaces);
    }
    return nifaces;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "netdev");
    const struct metric_buf *b = collect_last(c);
    char path[4096];
    snprintf(path, sizeof(path), "%s", fixture("host1/proc/net/dev"));
    size_t nifaces = check_file(b, path);
    assert_true(nifaces >= 2);
    /* lo is reported like any other interface. */
    assert_true(tu_find(b, "node_network_receive_bytes_total", "device=\"lo\"", NULL));
    assert_int_equal(tu_source_success(b, "netdev"), 1);
    for (size_t i = 0; i < b->nfams; i++)
        if (strncmp(metric_str(b, b->fams[i].name), "node_network_", 13) == 0) {
            assert_int_equal(b->fams[i].type, METRIC_COUNTER);
            assert_true(strncmp(metric_str(b, b->fams[i].help), "Network device statistic ", 25) ==
                        0);
        }

    /* The next tick reuses the state and emits the same shape. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(check_file(b, path), nifaces);
    collect_free(c);
}

/* Long names with no blank after ':', dots and dashes, a blank line, 2^64-1. */
static void test_odd_names(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("odd-netdev/proc"), "netdev");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netdev"), 1);
    char path[4096];
    snprintf(path, sizeof(path), "%s", fixture("odd-netdev/proc/net/dev"));
    assert_int_equal(check_file(b, path), 4);
    assert_float_equal(
        tu_value(b, "node_network_receive_bytes_total", "device=\"veth1a2b3c4d5e6\""),
        12345678901234.0, 0);
    assert_float_equal(tu_value(b, "node_network_transmit_compressed_total", "device=\"br-0.10\""),
                       16, 0);
    assert_float_equal(tu_value(b, "node_network_receive_bytes_total", "device=\"eth0\""),
                       18446744073709551615.0, 0);
    collect_free(c);
}

/* Interfaces appear and vanish between ticks (containers' veth pairs). */
static void test_come_and_go(void **state)
{
    (void)state;
    char root[] = "/tmp/sitrep-netdev-XXXXXX", dir[64], path[96];
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/net", root);
    snprintf(path, sizeof(path), "%s/net/dev", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *hdr = "Inter-|   Receive |  Transmit\n"
                      " face |bytes packets errs drop fifo frame compressed multicast|bytes ...\n";
    const char *lo = "lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
    const char *veth = "veth0: 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    char text[4096];
    snprintf(text, sizeof(text), "%s%s%s", hdr, lo, veth);
    tu_write_file(path, text);
    struct collect *c = tu_collect_source(root, "netdev");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_count(b, "node_network_receive_bytes_total"), 2);
    assert_float_equal(tu_value(b, "node_network_receive_bytes_total", "device=\"veth0\""), 7, 0);

    for (int i = 1; i <= 20; i++) {
        /* Tick i: lo plus veth1 .. veth<i>, veth0 gone. */
        size_t n = (size_t)snprintf(text, sizeof(text), "%s%s", hdr, lo);
        for (int k = 1; k <= i; k++)
            n += (size_t)snprintf(text + n, sizeof(text) - n,
                                  "veth%d: %d 0 0 0 0 0 0 0 0 0 0 0 0 0 0 %d\n", k, k, k * 2);
        tu_write_file(path, text);
        collect_once(c, 1000 + 1000 * i);
        b = collect_last(c);
        assert_int_equal(tu_count(b, "node_network_receive_bytes_total"), 1 + (size_t)i);
        assert_false(tu_find(b, "node_network_receive_bytes_total", "device=\"veth0\"", NULL));
        assert_float_equal(
            tu_value(b, "node_network_transmit_compressed_total", "device=\"veth1\""), 2, 0);
    }
    /* Back to lo alone. */
    snprintf(text, sizeof(text), "%s%s", hdr, lo);
    tu_write_file(path, text);
    collect_once(c, 30000);
    b = collect_last(c);
    assert_int_equal(tu_count(b, "node_network_receive_bytes_total"), 1);
    assert_float_equal(tu_value(b, "node_network_transmit_compressed_total", "device=\"lo\""), 16,
                       0);
    assert_int_equal(tu_source_errors(b, "netdev"), 0);
    collect_free(c);
    unlink(path);
    rmdir(dir);
    rmdir(root);
}

static void expect_failure(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "netdev");
    /* Nothing half-parsed leaks into the batch. */
    tu_assert_source_failed(collect_last(c), "netdev", 1, "node_network_");
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    expect_failure("garbled-netdev/proc");
}

static void test_truncated(void **state)
{
    (void)state;
    expect_failure("truncated-netdev/proc");
}

static void test_missing(void **state)
{
    (void)state;
    expect_failure("no-psi/proc"); /* a proc root without net/dev */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),       cmocka_unit_test(test_odd_names),
        cmocka_unit_test(test_come_and_go), cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated),   cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
