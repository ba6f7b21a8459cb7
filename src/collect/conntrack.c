/*
 * conntrack.c: netfilter connection tracking -> table fill and limit
 * (/proc/sys/net/netfilter/nf_conntrack_{count,max}) and the event counters
 * of /proc/net/stat/nf_conntrack summed over CPUs (node_exporter's
 * "conntrack" collector). A full table drops new connections silently, so
 * entries against entries_limit, insert_failed and drop matter in incidents.
 *
 * The source is missing when nf_conntrack is not loaded. The per-CPU stat
 * file is optional (some kernels and namespaces lack it). Its columns are
 * located by header name, since kernels renamed some unused ones over time
 * (searched -> clashres, delete_list -> chainlength) while keeping these.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* The stat columns node_exporter exports, with its names and help. */
static const struct {
    const char *column, *name, *help;
} stats[] = {
    {"found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."},
    {"invalid", "node_nf_conntrack_stat_invalid",
     "Number of packets seen which can not be tracked."},
    {"ignore", "node_nf_conntrack_stat_ignore",
     "Number of packets seen which are already connected to a conntrack entry."},
    {"insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."},
    {"insert_failed", "node_nf_conntrack_stat_insert_failed",
     "Number of entries for which list insertion was attempted but failed."},
    {"drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."},
    {"early_drop", "node_nf_conntrack_stat_early_drop",
     "Number of dropped conntrack entries to make room for new ones, if maximum table size was "
     "reached."},
    {"search_restart", "node_nf_conntrack_stat_search_restart",
     "Number of conntrack table lookups which had to be restarted due to hashtable resizes."},
};
#define NSTATS     (sizeof(stats) / sizeof(stats[0]))
#define STAT_WIDTH 32 /* columns we look at; the kernel prints 17 */

/* Sum the per-CPU lines of net/stat/nf_conntrack and emit; absent is fine. */
static int conntrack_stats(struct collect_ctx *ctx)
{
    const char *root = ctx->opts->proc_root;
    long n = collect__read(ctx, ctx->proc_fd, "net/stat/nf_conntrack");
    if (n < 0)
        return collect__read_error(n) == COLLECT_MISSING ? COLLECT_OK : COLLECT_FAILED;
    char *cur = ctx->buf, *line = collect__line(&cur);
    char *f[STAT_WIDTH];
    int nh = line ? collect__fields(line, f, STAT_WIDTH) : 0;
    if (nh < 1 || strcmp(f[0], "entries") != 0)
        return collect__fail(ctx, "%s/net/stat/nf_conntrack:1: no 'entries ...' header", root);
    int col[NSTATS];
    for (size_t k = 0; k < NSTATS; k++) {
        col[k] = -1;
        for (int i = 0; i < nh; i++)
            if (strcmp(f[i], stats[k].column) == 0)
                col[k] = i;
    }
    uint64_t sum[NSTATS] = {0};
    int lineno = 1, ncpu = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        int nf = collect__fields(line, f, STAT_WIDTH);
        if (nf == 0)
            continue;
        if (nf < nh)
            return collect__fail(ctx, "%s/net/stat/nf_conntrack:%d: %d columns, header has %d",
                                 root, lineno, nf, nh);
        for (int i = 0; i < nf; i++) {
            uint64_t v;
            if (collect__hex(f[i], &v) < 0)
                return collect__fail(ctx, "%s/net/stat/nf_conntrack:%d: bad hex '%.20s'", root,
                                     lineno, f[i]);
            for (size_t k = 0; k < NSTATS; k++)
                if (col[k] == i)
                    sum[k] += v;
        }
        ncpu++;
    }
    if (ncpu == 0)
        return collect__fail(ctx, "%s/net/stat/nf_conntrack: no CPU lines (truncated?)", root);
    for (size_t k = 0; k < NSTATS; k++) {
        if (col[k] < 0)
            continue;
        /* node_exporter types these as gauges although they only grow. */
        metric_fam(ctx->out, stats[k].name, stats[k].help, METRIC_GAUGE);
        metric_add0(ctx->out, (double)sum[k]);
    }
    return COLLECT_OK;
}

static int conntrack_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    uint64_t count, max;
    int rc = collect__read_u64(ctx, "sys/net/netfilter/nf_conntrack_count", &count);
    if (rc != COLLECT_OK)
        return rc; /* missing: the module is not loaded */
    /* The limit alone may be hidden (e.g. in a network namespace). */
    int rcmax = collect__read_u64(ctx, "sys/net/netfilter/nf_conntrack_max", &max);
    if (rcmax == COLLECT_FAILED)
        return rcmax;
    metric_fam(ctx->out, "node_nf_conntrack_entries",
               "Number of currently allocated flow entries for connection tracking.", METRIC_GAUGE);
    metric_add0(ctx->out, (double)count);
    if (rcmax == COLLECT_OK) {
        metric_fam(ctx->out, "node_nf_conntrack_entries_limit",
                   "Maximum size of connection tracking table.", METRIC_GAUGE);
        metric_add0(ctx->out, (double)max);
    }
    return conntrack_stats(ctx);
}

const struct collect_source collect__src_conntrack = {
    .name = "conntrack",
    .collect = conntrack_collect,
};
