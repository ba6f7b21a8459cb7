/*
 * softirqs.c: /proc/softirqs -> node_softirqs_functions_total{cpu,type}: how
 * often each softirq (TIMER, NET_RX, BLOCK, RCU, ...) ran on each CPU. A CPU
 * whose NET_RX or BLOCK rate stands out is the one receive or block
 * completion work is piled on.
 *
 * node_exporter 1.5 (Debian 12's) has no collector for this file; its
 * --collector.stat.softirq exports only the all-CPU sums from /proc/stat as
 * node_softirqs_total{vector}. Names and labels here follow the "softirqs"
 * collector of later node_exporter releases (off by default there): type is
 * the row name as the kernel writes it, cpu the CPU's number from the header.
 *
 * The file has a header of CPU columns ("CPU0 CPU1 ...", every possible CPU,
 * so it does not change with hot-plug) and one row per softirq, "NAME:"
 * followed by exactly one count per column.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

struct softirqs_state {
    struct collect_cpus cpus;
};

static void softirqs_release(void *p)
{
    struct softirqs_state *s = p;
    collect__cpus_release(&s->cpus);
}

static int softirqs_collect(void *p, struct collect_ctx *ctx)
{
    struct softirqs_state *s = p;
    char *cur, *line;
    int rc = collect__read_cpu_table(ctx, "softirqs", &s->cpus, &cur);
    if (rc != COLLECT_OK)
        return rc;
    const char *root = ctx->opts->proc_root;

    /* Emitted while parsing: the framework drops it all if a row is bad. */
    metric_fam(ctx->out, "node_softirqs_functions_total", "Softirq counts per CPU.",
               METRIC_COUNTER);
    size_t rows = 0;
    for (int lineno = 2; (line = collect__line(&cur)); lineno++) {
        char *name, *rest, *t;
        if (!line[strspn(line, " \t")])
            continue; /* blank */
        if (collect__row_name(line, &name, &rest) < 0)
            return collect__fail(ctx, "%s/softirqs:%d: want 'NAME: counts...'", root, lineno);
        size_t i = 0;
        for (; (t = collect__token(&rest)); i++) {
            uint64_t v;
            if (i == s->cpus.n)
                return collect__fail(ctx, "%s/softirqs:%d: %s: more counts than the %zu CPUs", root,
                                     lineno, name, s->cpus.n);
            if (collect__u64(t, &v) < 0)
                return collect__fail(ctx, "%s/softirqs:%d: %s: bad count '%.20s'", root, lineno,
                                     name, t);
            metric_add2(ctx->out, (double)v, "cpu", s->cpus.id[i], "type", name);
        }
        if (i < s->cpus.n)
            return collect__fail(ctx, "%s/softirqs:%d: %s: %zu counts for %zu CPUs", root, lineno,
                                 name, i, s->cpus.n);
        rows++;
    }
    /* Every kernel has the TIMER row at least. */
    if (rows == 0)
        return collect__fail(ctx, "%s/softirqs: no softirq rows (truncated?)", root);
    return COLLECT_OK;
}

const struct collect_source collect__src_softirqs = {
    .name = "softirqs",
    .state_size = sizeof(struct softirqs_state),
    .collect = softirqs_collect,
    .release = softirqs_release,
};
