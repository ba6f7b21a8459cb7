/*
 * netstat.c: /proc/net/snmp, /proc/net/netstat and /proc/net/snmp6 -> every
 * protocol counter as node_netstat_<Proto>_<Field> (untyped), as
 * node_exporter's "netstat" collector with --collector.netstat.fields='.*'.
 * node_exporter's default keeps about 40 of the 400 or so; the rest (TcpExt's
 * drop, prune and retransmit reasons, Icmp per type, Ip6 per cause) are what
 * explains a network incident, and cost 25-50 us a tick here (the kernel's
 * part, generating the three files, is ~110 us either way).
 * collect: {netstat_fields: RE} narrows the set (fieldsel.c); RE matches
 * "<Proto>_<Field>", e.g. "TcpExt_Listen.*".
 *
 * snmp and netstat come as pairs of lines, "Tcp: Name1 Name2 ..." followed by
 * "Tcp: 1 2 ..."; snmp6 has one "Ip6InReceives 123" per line. snmp6 is absent
 * when IPv6 is disabled, which is not an error.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

struct netstat_state {
    struct collect__fieldsel *sel; /* NULL: every field */
};

static int netstat_init(void *p, const struct collect_opts *opts, char *err, size_t errlen)
{
    struct netstat_state *s = p;
    size_t off;
    return collect__fieldsel_new(opts->netstat_fields, &s->sel, err, errlen, &off);
}

static void netstat_release(void *p)
{
    struct netstat_state *s = p;
    collect__fieldsel_free(s->sel);
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

/*
 * Emit one counter if the selection keeps it; fails if the name cannot be a
 * metric name (garbled file), kept or not.
 */
static int emit(struct netstat_state *s, struct collect_ctx *ctx, const char *file, int lineno,
                const char *proto, const char *field, double v)
{
    /* Built with memcpy, not snprintf: this runs for all ~400 counters every
     * tick, and two snprintf calls a counter were a third of the source's time. */
    static const char prefix[] = "node_netstat_", hprefix[] = "Statistic ";
    char name[160], help[160];
    size_t pl = strlen(proto), fl = strlen(field);
    if (sizeof(prefix) + pl + 1 + fl > sizeof(name))
        return collect__fail(ctx, "%s/%s:%d: counter name too long '%.40s_%.40s'",
                             ctx->opts->proc_root, file, lineno, proto, field);
    char *w = mempcpy(name, prefix, sizeof(prefix) - 1), *key = w;
    w = mempcpy(w, proto, pl);
    *w++ = '_';
    *(char *)mempcpy(w, field, fl) = '\0';
    if (!metric_name_valid(name))
        return collect__fail(ctx, "%s/%s:%d: bad counter name '%.40s_%.40s'", ctx->opts->proc_root,
                             file, lineno, proto, field);
    if (!collect__fieldsel_keep(s->sel, key, pl + 1 + fl))
        return COLLECT_OK;
    w = mempcpy(help, hprefix, sizeof(hprefix) - 1);
    w = mempcpy(w, proto, pl);
    w = mempcpy(w, field, fl);
    memcpy(w, ".", 2);
    metric_fam(ctx->out, name, help, METRIC_UNTYPED);
    metric_add0(ctx->out, v);
    return COLLECT_OK;
}

/*
 * Parse a file of header/value line pairs (net/snmp, net/netstat) in
 * ctx->buf. Every value must be a number and each pair must agree on the
 * protocol and the number of fields, as node_exporter requires.
 */
static int parse_pairs(struct netstat_state *s, struct collect_ctx *ctx, const char *file)
{
    char *cur = ctx->buf, *head;
    int lineno = 0;
    while ((head = collect__line(&cur))) {
        lineno++;
        size_t nnames = count_tokens(head);
        if (nnames == 0)
            continue;
        char *vals = collect__line(&cur);
        lineno++;
        if (!vals)
            return collect__fail(ctx, "%s/%s:%d: header line without a value line (truncated?)",
                                 ctx->opts->proc_root, file, lineno - 1);
        size_t nvals = count_tokens(vals);
        if (nnames != nvals)
            return collect__fail(ctx, "%s/%s:%d: %zu values for %zu names", ctx->opts->proc_root,
                                 file, lineno, nvals, nnames);
        char *hp = collect__token(&head), *vp = collect__token(&vals);
        size_t plen = strlen(hp);
        if (plen < 2 || hp[plen - 1] != ':' || strcmp(hp, vp) != 0)
            return collect__fail(ctx, "%s/%s:%d: value line '%.40s' does not match header '%.40s'",
                                 ctx->opts->proc_root, file, lineno, vp, hp);
        hp[plen - 1] = '\0';
        const char *proto = hp;
        char *field, *val;
        while ((field = collect__token(&head)) && (val = collect__token(&vals))) {
            double v;
            if (parse_num(val, &v) < 0)
                return collect__fail(ctx, "%s/%s:%d: %s%s: bad number '%.40s'",
                                     ctx->opts->proc_root, file, lineno, proto, field, val);
            if (emit(s, ctx, file, lineno, proto, field, v) != COLLECT_OK)
                return COLLECT_FAILED;
        }
    }
    return COLLECT_OK;
}

/* Parse net/snmp6 in ctx->buf: "Ip6InReceives 123"; the protocol ends at the '6'. */
static int parse_snmp6(struct netstat_state *s, struct collect_ctx *ctx)
{
    char *cur = ctx->buf, *line;
    int lineno = 0;
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
        double v;
        if (parse_num(f[1], &v) < 0)
            return collect__fail(ctx, "%s/net/snmp6:%d: %.40s: bad number '%.40s'",
                                 ctx->opts->proc_root, lineno, f[0], f[1]);
        if (emit(s, ctx, "net/snmp6", lineno, proto, field, v) != COLLECT_OK)
            return COLLECT_FAILED;
    }
    return COLLECT_OK;
}

static int netstat_collect(void *state, struct collect_ctx *ctx)
{
    struct netstat_state *s = state;
    /* Both pair files are required, as in node_exporter; snmp is read first
     * so that a host without them is found missing before anything is emitted. */
    static const char *const pair_files[] = {"net/snmp", "net/netstat"};
    for (size_t i = 0; i < ARRAY_SIZE(pair_files); i++) {
        long n = collect__read(ctx, ctx->proc_fd, pair_files[i]);
        if (n < 0)
            return collect__read_error(n);
        if (parse_pairs(s, ctx, pair_files[i]) != COLLECT_OK)
            return COLLECT_FAILED;
    }
    long n = collect__read(ctx, ctx->proc_fd, "net/snmp6");
    if (n < 0)
        return collect__read_error(n) == COLLECT_MISSING ? COLLECT_OK : COLLECT_FAILED;
    return parse_snmp6(s, ctx);
}

const struct collect_source collect__src_netstat = {
    .name = "netstat",
    .state_size = sizeof(struct netstat_state),
    .collect = netstat_collect,
    .release = netstat_release,
    .init = netstat_init,
};
