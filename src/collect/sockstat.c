/*
 * sockstat.c: /proc/net/sockstat and /proc/net/sockstat6 -> sockets in use
 * per protocol and their memory (node_exporter's "sockstat" collector, same
 * names: node_sockstat_<PROTO>_<key>, plus _mem_bytes where the kernel
 * reports memory in pages). sockstat6 is absent without IPv6; not an error.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The keys node_exporter knows, in its order; others are ignored as it does. */
static const char *const keys[] = {"inuse", "orphan", "tw", "alloc", "mem", "memory"};
#define NKEYS ARRAY_SIZE(keys)

static void emit(struct collect_ctx *ctx, const char *proto, const char *key, double v)
{
    char name[128], help[160];
    snprintf(name, sizeof(name), "node_sockstat_%s_%s", proto, key);
    snprintf(help, sizeof(help), "Number of %s sockets in state %s.", proto, key);
    metric_fam(ctx->out, name, help, METRIC_GAUGE);
    metric_add0(ctx->out, v);
}

/*
 * Parse one sockstat file in ctx->buf: lines "PROTO: key value key value...".
 * The "sockets: used N" line is exported only from the IPv4 file, as
 * node_exporter does.
 */
static int parse(struct collect_ctx *ctx, const char *file, int v6)
{
    double page = (double)sysconf(_SC_PAGESIZE);
    char *cur = ctx->buf, *line;
    int lineno = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[16];
        int nf = collect__fields(line, f, 16);
        if (nf == 0)
            continue;
        size_t plen = strlen(f[0]);
        if (nf < 3 || (nf - 1) % 2 != 0 || plen < 2 || f[0][plen - 1] != ':')
            return collect__fail(ctx, "%s/%s:%d: want 'PROTO: key value ...', got %d fields",
                                 ctx->opts->proc_root, file, lineno, nf);
        f[0][plen - 1] = '\0';
        const char *proto = f[0];
        /* The name must be valid even if only "inuse" is present; a protocol
         * name too long for the buffer or with odd characters is garbage. */
        char probe[96];
        int pn = snprintf(probe, sizeof(probe), "node_sockstat_%s_memory_bytes", proto);
        if (pn < 0 || (size_t)pn >= sizeof(probe) || !metric_name_valid(probe))
            return collect__fail(ctx, "%s/%s:%d: bad protocol name '%.40s'", ctx->opts->proc_root,
                                 file, lineno, proto);
        double val[NKEYS] = {0};
        int have[NKEYS] = {0}, used_seen = 0;
        double used = 0;
        for (int i = 1; i + 1 < nf; i += 2) {
            int64_t v;
            if (collect__i64(f[i + 1], &v) < 0)
                return collect__fail(ctx, "%s/%s:%d: %s %s: bad number '%.40s'",
                                     ctx->opts->proc_root, file, lineno, proto, f[i], f[i + 1]);
            if (strcmp(f[i], "used") == 0) {
                used = (double)v;
                used_seen = 1;
            }
            for (size_t k = 0; k < NKEYS; k++)
                if (strcmp(f[i], keys[k]) == 0) {
                    val[k] = (double)v;
                    have[k] = 1;
                }
        }
        if (strcmp(proto, "sockets") == 0) {
            if (!v6) {
                metric_fam(ctx->out, "node_sockstat_sockets_used", "Number of IPv4 sockets in use.",
                           METRIC_GAUGE);
                metric_add0(ctx->out, used_seen ? used : 0);
            }
            continue;
        }
        for (size_t k = 0; k < NKEYS; k++)
            if (have[k] || k == 0) /* node_exporter always exports inuse */
                emit(ctx, proto, keys[k], have[k] ? val[k] : 0);
        if (have[4])
            emit(ctx, proto, "mem_bytes", val[4] * page);
    }
    return COLLECT_OK;
}

static int sockstat_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    long n = collect__read(ctx, ctx->proc_fd, "net/sockstat");
    if (n < 0)
        return collect__read_error(n);
    if (parse(ctx, "net/sockstat", 0) != COLLECT_OK)
        return COLLECT_FAILED;
    n = collect__read(ctx, ctx->proc_fd, "net/sockstat6");
    if (n < 0)
        return collect__read_error(n) == COLLECT_MISSING ? COLLECT_OK : COLLECT_FAILED;
    return parse(ctx, "net/sockstat6", 1);
}

const struct collect_source collect__src_sockstat = {
    .name = "sockstat",
    .collect = sockstat_collect,
};
