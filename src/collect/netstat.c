/*
 * netstat.c: /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6 -> the
 * protocol counters node_exporter's "netstat" collector exports by default
 * (node_netstat_<Proto>_<Field>, untyped), plus a few TcpExt counters that
 * explain drops under load (memory aborts, backlog drops, pruning).
 *
 * snmp and netstat come as pairs of lines, "Tcp: Name1 Name2 ..." followed by
 * "Tcp: 1 2 ..."; snmp6 has one "Ip6InReceives 123" per line. snmp6 is absent
 * when IPv6 is disabled, which is not an error.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/*
 * node_exporter 1.5 selects fields with a regular expression over
 * "<Proto>_<Field>" (its --collector.netstat.fields default); these rules
 * spell that expression out so no regex engine is needed. A NULL proto
 * matches any protocol; prefix rules match any field starting with `field`.
 */
struct field_rule {
    const char *proto;
    const char *field;
    int prefix;
};

static const struct field_rule rules[] = {
    {NULL, "InErrors", 0},
    {NULL, "InErrs", 0},
    {"Ip", "Forwarding", 0},
    {"Ip6", "InOctets", 0},
    {"Ip6", "OutOctets", 0},
    {"IpExt", "InOctets", 0},
    {"IpExt", "OutOctets", 0},
    {"Icmp", "InMsgs", 0},
    {"Icmp", "OutMsgs", 0},
    {"Icmp6", "InMsgs", 0},
    {"Icmp6", "OutMsgs", 0},
    {"TcpExt", "Listen", 1},
    {"TcpExt", "Syncookies", 1},
    {"TcpExt", "TCPSynRetrans", 0},
    {"TcpExt", "TCPTimeouts", 0},
    {"Tcp", "ActiveOpens", 0},
    {"Tcp", "InSegs", 0},
    {"Tcp", "OutSegs", 0},
    {"Tcp", "OutRsts", 0},
    {"Tcp", "PassiveOpens", 0},
    {"Tcp", "RetransSegs", 0},
    {"Tcp", "CurrEstab", 0},
    {"Udp", "InDatagrams", 0},
    {"Udp", "OutDatagrams", 0},
    {"Udp", "NoPorts", 0},
    {"Udp", "RcvbufErrors", 0},
    {"Udp", "SndbufErrors", 0},
    {"Udp6", "InDatagrams", 0},
    {"Udp6", "OutDatagrams", 0},
    {"Udp6", "NoPorts", 0},
    {"Udp6", "RcvbufErrors", 0},
    {"Udp6", "SndbufErrors", 0},
    /* Beyond node_exporter 1.5's default: what explains drops in an incident
     * (TCPOFOQueue is in later node_exporter defaults). */
    {"TcpExt", "TCPOFOQueue", 0},
    {"TcpExt", "TCPAbortOnMemory", 0},
    {"TcpExt", "TCPAbortOnTimeout", 0},
    {"TcpExt", "TCPBacklogDrop", 0},
    {"TcpExt", "PruneCalled", 0},
};

/*
 * The rules that can match fields of one protocol. Selected once per
 * protocol line, so the per-field test runs over a handful of rules instead
 * of all of them (this loop ran for every field of every tick).
 */
struct rule_set {
    const struct field_rule *r[ARRAY_SIZE(rules)];
    size_t n;
};

static void rules_for(const char *proto, struct rule_set *set)
{
    set->n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
        if (!rules[i].proto || strcmp(rules[i].proto, proto) == 0)
            set->r[set->n++] = &rules[i];
}

/* Whether field is one of the exported counters of the set's protocol. */
static int wanted(const struct rule_set *set, const char *field)
{
    for (size_t i = 0; i < set->n; i++) {
        const struct field_rule *r = set->r[i];
        if (r->field[0] != field[0])
            continue;
        if (r->prefix ? strncmp(field, r->field, strlen(r->field)) == 0
                      : strcmp(field, r->field) == 0)
            return 1;
    }
    return 0;
}

/* Parse a counter: unsigned, or signed when negative (Tcp MaxConn is -1). */
static int parse_num(const char *s, double *out)
{
    if (*s == '-') {
        int64_t v;
        if (collect__i64(s, &v) < 0)
            return -1;
        *out = (double)v;
        return 0;
    }
    uint64_t v;
    if (collect__u64(s, &v) < 0)
        return -1;
    *out = (double)v;
    return 0;
}

/* Cut the next blank-separated token off *cur (in place); NULL at the end. */
static char *next_token(char **cur)
{
    char *s = *cur;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s) {
        *cur = s;
        return NULL;
    }
    char *t = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    *cur = s;
    return t;
}

static size_t count_tokens(const char *s)
{
    size_t n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        n++;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return n;
}

/* Emit one counter; fails if the name cannot be a metric name (garbled file). */
static int emit(struct collect_ctx *ctx, const char *file, int lineno, const char *proto,
                const char *field, double v)
{
    char name[160], help[160];
    int n = snprintf(name, sizeof(name), "node_netstat_%s_%s", proto, field);
    if (n < 0 || (size_t)n >= sizeof(name) || !metric_name_valid(name))
        return collect__fail(ctx, "%s/%s:%d: bad counter name '%.40s_%.40s'", ctx->opts->proc_root,
                             file, lineno, proto, field);
    snprintf(help, sizeof(help), "Statistic %s%s.", proto, field);
    metric_fam(ctx->out, name, help, METRIC_UNTYPED);
    metric_add0(ctx->out, v);
    return COLLECT_OK;
}

/*
 * Parse a file of header/value line pairs (net/snmp, net/netstat) in
 * ctx->buf. Every value must be a number and each pair must agree on the
 * protocol and the number of fields, as node_exporter requires.
 */
static int parse_pairs(struct collect_ctx *ctx, const char *file)
{
    char *cur = ctx->buf, *head;
    int lineno = 0;
    while ((head = collect__line(&cur))) {
        lineno++;
        if (count_tokens(head) == 0)
            continue;
        char *vals = collect__line(&cur);
        lineno++;
        if (!vals)
            return collect__fail(ctx, "%s/%s:%d: header line without a value line (truncated?)",
                                 ctx->opts->proc_root, file, lineno - 1);
        if (count_tokens(head) != count_tokens(vals))
            return collect__fail(ctx, "%s/%s:%d: %zu values for %zu names", ctx->opts->proc_root,
                                 file, lineno, count_tokens(vals), count_tokens(head));
        char *hp = next_token(&head), *vp = next_token(&vals);
        size_t plen = strlen(hp);
        if (plen < 2 || hp[plen - 1] != ':' || strcmp(hp, vp) != 0)
            return collect__fail(ctx, "%s/%s:%d: value line '%.40s' does not match header '%.40s'",
                                 ctx->opts->proc_root, file, lineno, vp, hp);
        hp[plen - 1] = '\0';
        const char *proto = hp;
        struct rule_set set;
        rules_for(proto, &set);
        char *field, *val;
        while ((field = next_token(&head)) && (val = next_token(&vals))) {
            double v;
            if (parse_num(val, &v) < 0)
                return collect__fail(ctx, "%s/%s:%d: %s%s: bad number '%.40s'",
                                     ctx->opts->proc_root, file, lineno, proto, field, val);
            if (wanted(&set, field) && emit(ctx, file, lineno, proto, field, v) != COLLECT_OK)
                return COLLECT_FAILED;
        }
    }
    return COLLECT_OK;
}

/* Parse net/snmp6 in ctx->buf: "Ip6InReceives 123"; the protocol ends at the '6'. */
static int parse_snmp6(struct collect_ctx *ctx)
{
    char *cur = ctx->buf, *line;
    int lineno = 0;
    char last[32] = "";
    struct rule_set set = {.n = 0};
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[3];
        if (collect__fields(line, f, 3) < 2)
            continue;
        char *six = strchr(f[0], '6');
        if (!six)
            continue;
        char proto[32];
        size_t plen = (size_t)(six - f[0]) + 1;
        if (plen >= sizeof(proto))
            return collect__fail(ctx, "%s/net/snmp6:%d: name too long '%.40s'",
                                 ctx->opts->proc_root, lineno, f[0]);
        memcpy(proto, f[0], plen);
        proto[plen] = '\0';
        const char *field = six + 1;
        if (strcmp(proto, last) != 0) { /* lines come grouped by protocol */
            rules_for(proto, &set);
            memcpy(last, proto, plen + 1);
        }
        double v;
        if (parse_num(f[1], &v) < 0)
            return collect__fail(ctx, "%s/net/snmp6:%d: %.40s: bad number '%.40s'",
                                 ctx->opts->proc_root, lineno, f[0], f[1]);
        if (wanted(&set, field) && emit(ctx, "net/snmp6", lineno, proto, field, v) != COLLECT_OK)
            return COLLECT_FAILED;
    }
    return COLLECT_OK;
}

static int netstat_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    /* Both pair files are required, as in node_exporter; snmp is read first
     * so that a host without them is found missing before anything is emitted. */
    static const char *const pair_files[] = {"net/snmp", "net/netstat"};
    for (size_t i = 0; i < ARRAY_SIZE(pair_files); i++) {
        long n = collect__read(ctx, ctx->proc_fd, pair_files[i]);
        if (n < 0)
            return collect__read_error(n);
        if (parse_pairs(ctx, pair_files[i]) != COLLECT_OK)
            return COLLECT_FAILED;
    }
    long n = collect__read(ctx, ctx->proc_fd, "net/snmp6");
    if (n < 0)
        return collect__read_error(n) == COLLECT_MISSING ? COLLECT_OK : COLLECT_FAILED;
    return parse_snmp6(ctx);
}

const struct collect_source collect__src_netstat = {
    .name = "netstat",
    .collect = netstat_collect,
};
