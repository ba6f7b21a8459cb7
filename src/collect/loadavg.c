/*
 * loadavg.c: /proc/loadavg -> node_load1, node_load5, node_load15.
 */
#include "collect/collect_internal.h"

static int loadavg_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    long n = collect__read(ctx, ctx->proc_fd, "loadavg");
    if (n < 0)
        return collect__read_error(n);
    char *f[5];
    double v[3];
    if (collect__fields(ctx->buf, f, 5) < 3)
        return collect__fail(ctx, "%s/loadavg: want 3 numbers, got '%.40s'", ctx->opts->proc_root,
                             ctx->buf);
    for (int i = 0; i < 3; i++)
        if (collect__f64(f[i], &v[i]) < 0)
            return collect__fail(ctx, "%s/loadavg: field %d: bad number '%.40s'",
                                 ctx->opts->proc_root, i + 1, f[i]);
    static const char *names[] = {"node_load1", "node_load5", "node_load15"};
    static const char *helps[] = {"1m load average.", "5m load average.", "15m load average."};
    for (int i = 0; i < 3; i++) {
        metric_fam(ctx->out, names[i], helps[i], METRIC_GAUGE);
        metric_add0(ctx->out, v[i]);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_loadavg = {
    .name = "loadavg",
    .collect = loadavg_collect,
};
