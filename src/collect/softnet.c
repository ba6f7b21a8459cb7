/*
 * softnet.c: /proc/net/softnet_stat -> packets processed, dropped (backlog
 * full) and times the softirq ran out of budget, per CPU (node_exporter's
 * "softnet" collector). Drops and squeezes here are the first sign that a
 * CPU cannot keep up with receive traffic.
 *
 * The file has one line per online CPU of fixed-width hex columns; the
 * first three are processed, dropped and time_squeezed. Since Linux 5.10 the
 * 13th column is the CPU's id, which differs from the line index when CPUs
 * are offline: use it when present, the line index otherwise (node_exporter
 * 1.5 always uses the line index; both agree on hosts with all CPUs online).
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>

#define SOFTNET_COLS    16
#define SOFTNET_CPU_COL 12 /* 0-based index of the CPU id column (5.10+) */

struct softnet_cpu {
    uint64_t cpu, v[3]; /* processed, dropped, time_squeezed */
};

struct softnet_state {
    struct softnet_cpu *cpus; /* grows to the CPU count once */
    size_t cap;
};

static void softnet_release(void *p)
{
    struct softnet_state *s = p;
    free(s->cpus);
}

static int softnet_collect(void *p, struct collect_ctx *ctx)
{
    struct softnet_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "net/softnet_stat");
    if (n < 0)
        return collect__read_error(n);
    const char *root = ctx->opts->proc_root;
    /* Parse every line first so a garbled one emits nothing half-done. */
    char *cur = ctx->buf, *line;
    size_t ncpu = 0;
    while ((line = collect__line(&cur))) {
        size_t lineno = ncpu + 1;
        char *f[SOFTNET_COLS];
        int nf = collect__fields(line, f, SOFTNET_COLS);
        if (nf < 3)
            return collect__fail(ctx, "%s/net/softnet_stat:%zu: %d columns, want >= 3", root,
                                 lineno, nf);
        uint64_t v[SOFTNET_COLS];
        for (int i = 0; i < nf; i++)
            if (collect__hex(f[i], &v[i]) < 0)
                return collect__fail(ctx, "%s/net/softnet_stat:%zu: bad hex '%.20s'", root, lineno,
                                     f[i]);
        void *g = s->cpus;
        util_grow(&g, &s->cap, ncpu + 1, sizeof(*s->cpus));
        s->cpus = g;
        struct softnet_cpu *c = &s->cpus[ncpu++];
        c->cpu = nf > SOFTNET_CPU_COL ? v[SOFTNET_CPU_COL] : ncpu - 1;
        for (int i = 0; i < 3; i++)
            c->v[i] = v[i];
    }
    if (ncpu == 0)
        return collect__fail(ctx, "%s/net/softnet_stat: empty (truncated?)", root);

    static const struct {
        const char *name, *help;
    } fams[] = {
        {"node_softnet_processed_total", "Number of processed packets"},
        {"node_softnet_dropped_total", "Number of dropped packets"},
        {"node_softnet_times_squeezed_total",
         "Number of times processing packets ran out of quota"},
    };
    for (int k = 0; k < 3; k++) {
        metric_fam(ctx->out, fams[k].name, fams[k].help, METRIC_COUNTER);
        for (size_t i = 0; i < ncpu; i++) {
            char id[24];
            snprintf(id, sizeof(id), "%llu", (unsigned long long)s->cpus[i].cpu);
            metric_add1(ctx->out, (double)s->cpus[i].v[k], "cpu", id);
        }
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_softnet = {
    .name = "softnet",
    .state_size = sizeof(struct softnet_state),
    .collect = softnet_collect,
    .release = softnet_release,
};
