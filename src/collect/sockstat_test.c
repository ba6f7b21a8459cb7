/*
 * sockstat_test.c: /proc/net/sockstat{,6} source against a recorded host, a
 * host without IPv6, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

#include <unistd.h>

/* Every key/value pair of the fixture file must be exported under its
 * node_exporter name (except "sockets" in the IPv6 file); returns how many
 * families that makes, including the _mem_bytes ones. */
static size_t check_file(const struct metric_buf *b, const char *path, int v6)
{
    double page = (double)sysconf(_SC_PAGESIZE);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t fams = 0;
    while (fgets(line, sizeof(line), f)) {
        char *save, *proto = strtok_r(line, ": \n", &save), *k, *v;
        if (!proto)
            continue;
        while ((k = strtok_r(NULL, " \n", &save)) && (v = strtok_r(NULL, " \n", &save))) {
            char name[128];
            if (strcmp(proto, "sockets") == 0) {
                if (v6)
                    continue;
                assert_string_equal(k, "used");
                snprintf(name, sizeof(name), "node_sockstat_sockets_used");
            } else {
                snprintf(name, sizeof(name), "node_sockstat_%s_%s", proto, k);
            }
            assert_float_equal(tu_value(b, name, ""), strtod(v, NULL), 0);
            fams++;
            if (strcmp(k, "mem") == 0) {
                snprintf(name, sizeof(name), "node_sockstat_%s_mem_bytes", proto);
                assert_float_equal(tu_value(b, name, ""), strtod(v, NULL) * page, 0);
                fams++;
            }
        }
    }
    fclose(f);
    return fams;
}

static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "sockstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "sockstat"), 1);
    char v4[4096], v6[4096];
    snprintf(v4, sizeof(v4), "%s", fixture("host1/proc/net/sockstat"));
    snprintf(v6, sizeof(v6), "%s", fixture("host1/proc/net/sockstat6"));
    size_t n = check_file(b, v4, 0) + check_file(b, v6, 1);
    assert_int_equal(tu_count_prefix(b, "node_sockstat_"), n);
    /* The names node_exporter 1.5 exports on this kernel. */
    static const char *const want[] = {
        "sockets_used",  "TCP_inuse",      "TCP_orphan", "TCP_tw",      "TCP_alloc",
        "TCP_mem",       "TCP_mem_bytes",  "UDP_inuse",  "UDP_mem",     "UDP_mem_bytes",
        "UDPLITE_inuse", "RAW_inuse",      "FRAG_inuse", "FRAG_memory", "TCP6_inuse",
        "UDP6_inuse",    "UDPLITE6_inuse", "RAW6_inuse", "FRAG6_inuse", "FRAG6_memory",
    };
    assert_int_equal(n, ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        char name[128];
        snprintf(name, sizeof(name), "node_sockstat_%s", want[i]);
        assert_true(tu_find(b, name, "", NULL));
    }
    tu_assert_prefix_type(b, "node_sockstat_", METRIC_GAUGE);
    collect_free(c);
}

static void test_no_ipv6(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("nov6-sockstat/proc"), "sockstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "sockstat"), 1);
    /* As written in nov6-sockstat/proc/net/sockstat. */
    assert_float_equal(tu_value(b, "node_sockstat_sockets_used", ""), 12, 0);
    assert_float_equal(tu_value(b, "node_sockstat_TCP_tw", ""), 2, 0);
    assert_float_equal(tu_value(b, "node_sockstat_TCP_mem_bytes", ""),
                       5.0 * (double)sysconf(_SC_PAGESIZE), 0);
    assert_float_equal(tu_value(b, "node_sockstat_UDP_mem_bytes", ""),
                       7.0 * (double)sysconf(_SC_PAGESIZE), 0);
    assert_float_equal(tu_value(b, "node_sockstat_RAW_inuse", ""), 1, 0);
    assert_false(tu_find(b, "node_sockstat_TCP6_inuse", "", NULL));
    assert_int_equal(tu_count_prefix(b, "node_sockstat_"), 14);
    collect_free(c);
}

static void check_fails(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "sockstat");
    tu_assert_source_failed(collect_last(c), "sockstat", 1, NULL);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    check_fails("garbled-sockstat/proc"); /* "orphan" without a value */
}

static void test_truncated(void **state)
{
    (void)state;
    check_fails("truncated-sockstat/proc"); /* "TCP: inuse" cut off */
}

static void test_missing(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("garbled/proc"), "sockstat"); /* no net/ */
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "sockstat"), 0);
    assert_int_equal(tu_count_prefix(b, "node_sockstat_"), 0);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),   cmocka_unit_test(test_no_ipv6),
        cmocka_unit_test(test_garbled), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
