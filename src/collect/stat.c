/*
 * stat.c: /proc/stat -> CPU time per cpu and mode, context switches, forks,
 * interrupts, boot time, running and blocked procs (node_exporter's "cpu"
 * and "stat" collectors, same names and units).
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cpu_guest {
    char id[12];
    double guest, guest_nice; /* seconds */
};

struct stat_state {
    struct cpu_guest *cpus; /* grows to the CPU count once */
    size_t cap;
};

static void stat_release(void *p)
{
    struct stat_state *s = p;
    free(s->cpus);
}

static const char *const modes[] = {"user",   "nice", "system",  "idle",
                                    "iowait", "irq",  "softirq", "steal"};

static int stat_collect(void *p, struct collect_ctx *ctx)
{
    struct stat_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "stat");
    if (n < 0)
        return collect__read_error(n);
    double hz = (double)sysconf(_SC_CLK_TCK);
    struct metric_buf *b = ctx->out;
    char *cur = ctx->buf, *line;
    size_t ncpu = 0;
    int lineno = 0, seen_cpu = 0;
    double ctxt = -1, btime = -1, forks = -1, running = -1, blocked = -1, intr = -1;

    metric_fam(b, "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", METRIC_COUNTER);
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[12];
        int nf = collect__fields(line, f, 12);
        if (nf < 2)
            continue;
        if (strncmp(f[0], "cpu", 3) == 0) {
            seen_cpu = 1;
            if (f[0][3] == '\0')
                continue; /* the all-CPU sum line */
            if (nf < 9)
                return collect__fail(ctx, "%s/stat:%d: %s has %d fields, want >= 9",
                                     ctx->opts->proc_root, lineno, f[0], nf);
            uint64_t v[10] = {0};
            for (int i = 1; i < nf && i <= 10; i++)
                if (collect__u64(f[i], &v[i - 1]) < 0)
                    return collect__fail(ctx, "%s/stat:%d: bad number '%s'", ctx->opts->proc_root,
                                         lineno, f[i]);
            const char *id = f[0] + 3;
            for (int m = 0; m < 8; m++)
                metric_add2(b, (double)v[m] / hz, "cpu", id, "mode", modes[m]);
            void *g = s->cpus;
            util_grow(&g, &s->cap, ncpu + 1, sizeof(*s->cpus));
            s->cpus = g;
            struct cpu_guest *cg = &s->cpus[ncpu++];
            snprintf(cg->id, sizeof(cg->id), "%s", id);
            cg->guest = (double)v[8] / hz;
            cg->guest_nice = (double)v[9] / hz;
            continue;
        }
        double *dst = NULL;
        if (strcmp(f[0], "ctxt") == 0)
            dst = &ctxt;
        else if (strcmp(f[0], "btime") == 0)
            dst = &btime;
        else if (strcmp(f[0], "processes") == 0)
            dst = &forks;
        else if (strcmp(f[0], "procs_running") == 0)
            dst = &running;
        else if (strcmp(f[0], "procs_blocked") == 0)
            dst = &blocked;
        else if (strcmp(f[0], "intr") == 0)
            dst = &intr;
        if (dst) {
            uint64_t v;
            if (collect__u64(f[1], &v) < 0)
                return collect__fail(ctx, "%s/stat:%d: bad number '%s' for %s",
                                     ctx->opts->proc_root, lineno, f[1], f[0]);
            *dst = (double)v;
        }
    }
    if (!seen_cpu)
        return collect__fail(ctx, "%s/stat: no cpu lines (truncated?)", ctx->opts->proc_root);

    metric_fam(b, "node_cpu_guest_seconds_total",
               "Seconds the CPUs spent in guests (VMs) for each mode.", METRIC_COUNTER);
    for (size_t i = 0; i < ncpu; i++) {
        metric_add2(b, s->cpus[i].guest, "cpu", s->cpus[i].id, "mode", "user");
        metric_add2(b, s->cpus[i].guest_nice, "cpu", s->cpus[i].id, "mode", "nice");
    }
    static const struct {
        const char *name, *help;
        enum metric_type type;
    } scalars[] = {
        {"node_context_switches_total", "Total number of context switches.", METRIC_COUNTER},
        {"node_boot_time_seconds", "Node boot time, in unixtime.", METRIC_GAUGE},
        {"node_forks_total", "Total number of forks.", METRIC_COUNTER},
        {"node_procs_running", "Number of processes in runnable state.", METRIC_GAUGE},
        {"node_procs_blocked", "Number of processes blocked waiting for I/O to complete.",
         METRIC_GAUGE},
        {"node_intr_total", "Total number of interrupts serviced.", METRIC_COUNTER},
    };
    const double vals[] = {ctxt, btime, forks, running, blocked, intr};
    for (size_t i = 0; i < ARRAY_SIZE(scalars); i++) {
        if (vals[i] < 0)
            continue;
        metric_fam(b, scalars[i].name, scalars[i].help, scalars[i].type);
        metric_add0(b, vals[i]);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_stat = {
    .name = "stat",
    .state_size = sizeof(struct stat_state),
    .collect = stat_collect,
    .release = stat_release,
};
