/*
 * pressure.c: /proc/pressure/{cpu,memory,io} (pressure stall information) ->
 * node_exporter's "pressure" counters (the "some" and "full" total= stall
 * time in seconds) plus sitrep_pressure_*_avg10_ratio gauges, the kernel's
 * own 10-second share, so alert rules need no rate() window of their own.
 *
 * node_exporter 1.5 ignores the "full" line of cpu (newer kernels have one);
 * it is exported as sitrep_pressure_cpu_stalled_seconds_total.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { PSI_SOME, PSI_FULL, PSI_KINDS };

struct psi_line {
    int present;
    double avg10;   /* percent */
    uint64_t total; /* microseconds */
};

static const struct {
    const char *file;
    const char *total_name[PSI_KINDS], *total_help[PSI_KINDS];
    const char *avg_name[PSI_KINDS], *avg_help[PSI_KINDS];
} resources[] = {
    {
        "pressure/cpu",
        {"node_pressure_cpu_waiting_seconds_total", "sitrep_pressure_cpu_stalled_seconds_total"},
        {"Total time in seconds that processes have waited for CPU time",
         "Total time in seconds no process could make progress due to CPU congestion"},
        {"sitrep_pressure_cpu_waiting_avg10_ratio", "sitrep_pressure_cpu_stalled_avg10_ratio"},
        {"Share of the last 10 seconds in which some process waited for CPU time (PSI avg10).",
         "Share of the last 10 seconds in which no process could make progress due to CPU "
         "congestion (PSI avg10)."},
    },
    {
        "pressure/memory",
        {"node_pressure_memory_waiting_seconds_total",
         "node_pressure_memory_stalled_seconds_total"},
        {"Total time in seconds that processes have waited for memory",
         "Total time in seconds no process could make progress due to memory congestion"},
        {"sitrep_pressure_memory_waiting_avg10_ratio",
         "sitrep_pressure_memory_stalled_avg10_ratio"},
        {"Share of the last 10 seconds in which some process waited for memory (PSI avg10).",
         "Share of the last 10 seconds in which no process could make progress due to memory "
         "congestion (PSI avg10)."},
    },
    {
        "pressure/io",
        {"node_pressure_io_waiting_seconds_total", "node_pressure_io_stalled_seconds_total"},
        {"Total time in seconds that processes have waited due to IO congestion",
         "Total time in seconds no process could make progress due to IO congestion"},
        {"sitrep_pressure_io_waiting_avg10_ratio", "sitrep_pressure_io_stalled_avg10_ratio"},
        {"Share of the last 10 seconds in which some process waited due to IO congestion (PSI "
         "avg10).",
         "Share of the last 10 seconds in which no process could make progress due to IO "
         "congestion (PSI avg10)."},
    },
};
#define NRES ARRAY_SIZE(resources)

/*
 * Parse one pressure file (in ctx->buf) into out[]. Lines other than "some"
 * and "full" are ignored, as are keys other than avg10 and total. Returns
 * COLLECT_OK or COLLECT_FAILED (with ctx->err set).
 */
static int psi_parse(struct collect_ctx *ctx, const char *file, struct psi_line out[PSI_KINDS])
{
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    int lineno = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[8];
        int nf = collect__fields(line, f, 8);
        if (nf == 0)
            continue;
        int kind;
        if (strcmp(f[0], "some") == 0)
            kind = PSI_SOME;
        else if (strcmp(f[0], "full") == 0)
            kind = PSI_FULL;
        else
            continue;
        int have_avg = 0, have_total = 0;
        struct psi_line *l = &out[kind];
        for (int i = 1; i < nf; i++) {
            if (strncmp(f[i], "avg10=", 6) == 0) {
                if (collect__f64(f[i] + 6, &l->avg10) < 0 || l->avg10 < 0)
                    return collect__fail(ctx, "%s/%s:%d: bad avg10 '%.40s'", root, file, lineno,
                                         f[i]);
                have_avg = 1;
            } else if (strncmp(f[i], "total=", 6) == 0) {
                if (collect__u64(f[i] + 6, &l->total) < 0)
                    return collect__fail(ctx, "%s/%s:%d: bad total '%.40s'", root, file, lineno,
                                         f[i]);
                have_total = 1;
            }
        }
        if (!have_avg || !have_total)
            return collect__fail(ctx, "%s/%s:%d: %s line lacks avg10= or total= (truncated?)", root,
                                 file, lineno, f[0]);
        l->present = 1;
    }
    if (!out[PSI_SOME].present)
        return collect__fail(ctx, "%s/%s: no 'some' line", root, file);
    return COLLECT_OK;
}

static int pressure_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    struct psi_line psi[NRES][PSI_KINDS];
    memset(psi, 0, sizeof(psi));
    size_t found = 0;
    /* Read all three before emitting anything, so a failure emits nothing. */
    for (size_t r = 0; r < NRES; r++) {
        long n = collect__read(ctx, ctx->proc_fd, resources[r].file);
        if (n < 0) {
            /* No PSI in this kernel, disabled (psi=0), or hidden in a container. */
            if (n == -EOPNOTSUPP || collect__read_error(n) == COLLECT_MISSING)
                continue;
            return COLLECT_FAILED;
        }
        int rc = psi_parse(ctx, resources[r].file, psi[r]);
        if (rc != COLLECT_OK)
            return rc;
        found++;
    }
    if (!found) {
        snprintf(ctx->err, sizeof(ctx->err), "%s/pressure: no cpu, memory or io file",
                 ctx->opts->proc_root);
        return COLLECT_MISSING;
    }

    for (size_t r = 0; r < NRES; r++) {
        for (int k = 0; k < PSI_KINDS; k++) {
            const struct psi_line *l = &psi[r][k];
            if (!l->present)
                continue;
            metric_fam(ctx->out, resources[r].total_name[k], resources[r].total_help[k],
                       METRIC_COUNTER);
            metric_add0(ctx->out, (double)l->total / 1e6);
            metric_fam(ctx->out, resources[r].avg_name[k], resources[r].avg_help[k], METRIC_GAUGE);
            metric_add0(ctx->out, l->avg10 / 100.0);
        }
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_pressure = {
    .name = "pressure",
    .collect = pressure_collect,
};
