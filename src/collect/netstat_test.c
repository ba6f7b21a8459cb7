/*
 * netstat_test.c: /proc/net/{snmp,netstat,snmp6} source against a recorded
 * host (every field, and node_exporter's default set through a field regex),
 * a host without IPv6, and garbled, truncated and missing input.
 */
#include "testutil.h"
#include "collect/collect.h"

/* proto's field in a header/value pair file, read straight from the fixture. */
static double pair_value(const char *path, const char *proto, const char *field)
{
    static char head[32768], vals[32768];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char want[64];
    snprintf(want, sizeof(want), "%s:", proto);
    while (fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
        char *hs, *vs;
        char *h = strtok_r(head, " \n", &hs), *v = strtok_r(vals, " \n", &vs);
        if (!h || strcmp(h, want) != 0)
            continue;
        while ((h = strtok_r(NULL, " \n", &hs)) && (v = strtok_r(NULL, " \n", &vs)))
            if (strcmp(h, field) == 0) {
                fclose(f);
                return strtod(v, NULL);
            }
    }
    fclose(f);
    fail_msg("%s: no %s %s", path, proto, field);
    return 0;
}

/* A "Name value" line of snmp6, read straight from the fixture. */
static double snmp6_value(const char *path, const char *name)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char k[128];
    double v;
    while (fscanf(f, "%127s %lf", k, &v) == 2)
        if (strcmp(k, name) == 0) {
            fclose(f);
            return v;
        }
    fclose(f);
    fail_msg("%s: no %s", path, name);
    return 0;
}

/* node_exporter 1.5's default --collector.netstat.fields, without its ^ and $. */
#define NE_DEFAULT                                                                                 \
    "(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|"  \
    "TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|"    \
    "OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|"         \
    "RcvbufErrors|SndbufErrors))"

/*
 * Every counter of a proc root's net/snmp, net/netstat and net/snmp6, read
 * straight from the files: checks each against b (present with its value,
 * untyped) and returns how many there are.
 */
static size_t check_all(const struct metric_buf *b, const char *root)
{
    static char head[32768], vals[32768];
    char path[4200], name[256];
    size_t n = 0;
    static const char *const pairs[] = {"net/snmp", "net/netstat"};
    for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
        snprintf(path, sizeof(path), "%s/%s", root, pairs[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
            char *hs, *vs;
            char *proto = strtok_r(head, " \n", &hs);
            strtok_r(vals, " \n", &vs);
            proto[strlen(proto) - 1] = '\0'; /* the ':' */
            char *h, *v;
            while ((h = strtok_r(NULL, " \n", &hs)) && (v = strtok_r(NULL, " \n", &vs))) {
                snprintf(name, sizeof(name), "node_netstat_%s_%s", proto, h);
                assert_float_equal(tu_value(b, name, ""), strtod(v, NULL), 0);
                assert_int_equal(tu_type(b, name), METRIC_UNTYPED);
                n++;
            }
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/net/snmp6", root);
    FILE *f = fopen(path, "r");
    if (f) {
        char k[128];
        double v;
        while (fscanf(f, "%127s %lf", k, &v) == 2) {
            char *six = strchr(k, '6');
            snprintf(name, sizeof(name), "node_netstat_%.*s_%s", (int)(six - k + 1), k, six + 1);
            assert_float_equal(tu_value(b, name, ""), v, 0);
            n++;
        }
        fclose(f);
    }
    assert_int_equal(tu_count_prefix(b, "node_netstat_"), n);
    return n;
}

/* The default: every counter, as --collector.netstat.fields='.*'. */
static void test_host1(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("host1/proc"), "netstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netstat"), 1);
    assert_true(check_all(b, fixture("host1/proc")) > 300);
    char netstat[4096];
    snprintf(netstat, sizeof(netstat), "%s", fixture("host1/proc/net/netstat"));
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_ListenDrops", ""),
                       pair_value(netstat, "TcpExt", "ListenDrops"), 0);
    assert_string_equal(tu_help(b, "node_netstat_TcpExt_ListenDrops"),
                        "Statistic TcpExtListenDrops.");
    assert_string_equal(tu_help(b, "node_netstat_Ip6_InOctets"), "Statistic Ip6InOctets.");
    assert_float_equal(tu_value(b, "node_netstat_Tcp_MaxConn", ""), -1, 0);
    assert_true(tu_find(b, "node_netstat_IcmpMsg_InType3", "", NULL));
    assert_true(tu_find(b, "node_netstat_Ip6_InReceives", "", NULL));
    collect_free(c);
}

/* node_exporter's default regex gives node_exporter's default set. */
static void test_fields_regex(void **state)
{
    (void)state;
    struct collect_opts o = {.proc_root = fixture("host1/proc"), .netstat_fields = NE_DEFAULT};
    const char *src = "netstat";
    struct collect *c = tu_collect_only(&o, &src, 1);
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netstat"), 1);
    char snmp[4096], netstat[4096], snmp6[4096];
    snprintf(snmp, sizeof(snmp), "%s", fixture("host1/proc/net/snmp"));
    snprintf(netstat, sizeof(netstat), "%s", fixture("host1/proc/net/netstat"));
    snprintf(snmp6, sizeof(snmp6), "%s", fixture("host1/proc/net/snmp6"));

    assert_float_equal(tu_value(b, "node_netstat_TcpExt_ListenOverflows", ""),
                       pair_value(netstat, "TcpExt", "ListenOverflows"), 0);
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_TCPTimeouts", ""),
                       pair_value(netstat, "TcpExt", "TCPTimeouts"), 0);
    assert_float_equal(tu_value(b, "node_netstat_IpExt_InOctets", ""),
                       pair_value(netstat, "IpExt", "InOctets"), 0);
    assert_float_equal(tu_value(b, "node_netstat_Tcp_RetransSegs", ""),
                       pair_value(snmp, "Tcp", "RetransSegs"), 0);
    assert_float_equal(tu_value(b, "node_netstat_Ip_Forwarding", ""),
                       pair_value(snmp, "Ip", "Forwarding"), 0);
    assert_float_equal(tu_value(b, "node_netstat_Ip6_InOctets", ""),
                       snmp6_value(snmp6, "Ip6InOctets"), 0);
    assert_float_equal(tu_value(b, "node_netstat_Udp6_InDatagrams", ""),
                       snmp6_value(snmp6, "Udp6InDatagrams"), 0);

    /* node_exporter 1.5's default set on this kernel (from its live output). */
    static const char *const want[] = {
        "Icmp6_InErrors",
        "Icmp6_InMsgs",
        "Icmp6_OutMsgs",
        "Icmp_InErrors",
        "Icmp_InMsgs",
        "Icmp_OutMsgs",
        "Ip6_InOctets",
        "Ip6_OutOctets",
        "IpExt_InOctets",
        "IpExt_OutOctets",
        "Ip_Forwarding",
        "TcpExt_ListenDrops",
        "TcpExt_ListenOverflows",
        "TcpExt_SyncookiesFailed",
        "TcpExt_SyncookiesRecv",
        "TcpExt_SyncookiesSent",
        "TcpExt_TCPSynRetrans",
        "TcpExt_TCPTimeouts",
        "Tcp_ActiveOpens",
        "Tcp_CurrEstab",
        "Tcp_InErrs",
        "Tcp_InSegs",
        "Tcp_OutRsts",
        "Tcp_OutSegs",
        "Tcp_PassiveOpens",
        "Tcp_RetransSegs",
        "Udp6_InDatagrams",
        "Udp6_InErrors",
        "Udp6_NoPorts",
        "Udp6_OutDatagrams",
        "Udp6_RcvbufErrors",
        "Udp6_SndbufErrors",
        "UdpLite6_InErrors",
        "UdpLite_InErrors",
        "Udp_InDatagrams",
        "Udp_InErrors",
        "Udp_NoPorts",
        "Udp_OutDatagrams",
        "Udp_RcvbufErrors",
        "Udp_SndbufErrors",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        char name[128];
        snprintf(name, sizeof(name), "node_netstat_%s", want[i]);
        const struct metric_fam_rec *f = tu_fam(b, name);
        if (!f)
            fail_msg("missing %s", name);
        assert_int_equal(f->type, METRIC_UNTYPED);
        assert_int_equal(f->count, 1);
    }
    assert_int_equal(tu_count_prefix(b, "node_netstat_"), ARRAY_SIZE(want));
    assert_null(tu_fam(b, "node_netstat_Tcp_MaxConn"));
    assert_null(tu_fam(b, "node_netstat_TcpExt_TW"));
    assert_null(tu_fam(b, "node_netstat_Ip6_InReceives"));
    assert_null(tu_fam(b, "node_netstat_IcmpMsg_InType3"));
    collect_free(c);
}

static void test_no_ipv6(void **state)
{
    (void)state;
    struct collect *c = tu_collect_source(fixture("nov6-netstat/proc"), "netstat");
    const struct metric_buf *b = collect_last(c);
    assert_int_equal(tu_source_success(b, "netstat"), 1);
    /* Every counter, with the values as written in nov6-netstat/proc/net/{snmp,netstat}. */
    assert_int_equal(check_all(b, fixture("nov6-netstat/proc")), 14);
    assert_float_equal(tu_value(b, "node_netstat_Ip_Forwarding", ""), 2, 0);
    assert_float_equal(tu_value(b, "node_netstat_Tcp_CurrEstab", ""), 3, 0);
    assert_float_equal(tu_value(b, "node_netstat_Tcp_RetransSegs", ""), 7, 0);
    assert_float_equal(tu_value(b, "node_netstat_Udp_InDatagrams", ""), 10, 0);
    assert_float_equal(tu_value(b, "node_netstat_Udp_NoPorts", ""), 11, 0);
    assert_float_equal(tu_value(b, "node_netstat_Udp_InErrors", ""), 12, 0);
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_SyncookiesSent", ""), 1, 0);
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_ListenOverflows", ""), 4, 0);
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_ListenDrops", ""), 5, 0);
    assert_float_equal(tu_value(b, "node_netstat_TcpExt_TCPBacklogDrop", ""), 2, 0);
    assert_int_equal(tu_count_prefix(b, "node_netstat_Ip6"), 0);
    assert_float_equal(tu_value(b, "node_netstat_Tcp_MaxConn", ""), -1, 0);
    collect_free(c);
}

/* The source must fail (not crash), be counted, and leave the batch intact. */
static void check_fails(const char *root)
{
    struct collect *c = tu_collect_source(fixture(root), "netstat");
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "netstat", 1, NULL);
    /* Still failing, still counted, on the next tick. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_source_errors(b, "netstat"), 2);
    collect_free(c);
}

static void test_garbled(void **state)
{
    (void)state;
    check_fails("garbled-netstat/proc");  /* 2 values for 3 names */
    check_fails("mismatch-netstat/proc"); /* "IpExt:" values under a "TcpExt:" header */
    check_fails("badnum-netstat/proc");   /* "6x4" */
    check_fails("badname-netstat/proc");  /* "Listen-Weird" is no metric name */
}

static void test_truncated(void **state)
{
    (void)state;
    check_fails("truncated-netstat/proc"); /* header line without its value line */
}

static void test_missing(void **state)
{
    (void)state;
    /* garbled/proc exists but has no net/ at all. */
    struct collect *c = tu_collect_source(fixture("garbled/proc"), "netstat");
    const struct metric_buf *b = collect_last(c);
    tu_assert_source_failed(b, "netstat", 1, "node_netstat_");
    /* Missing means disabled: not retried, not counted again. */
    collect_once(c, 2000);
    b = collect_last(c);
    assert_int_equal(tu_source_errors(b, "netstat"), 1);
    collect_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host1),     cmocka_unit_test(test_fields_regex),
        cmocka_unit_test(test_no_ipv6),   cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_truncated), cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
