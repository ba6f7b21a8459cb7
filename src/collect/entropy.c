/*
 * entropy.c: /proc/sys/kernel/random/{entropy_avail,poolsize} ->
 * node_entropy_available_bits and node_entropy_pool_size_bits
 * (node_exporter's "entropy" collector). Since Linux 5.18 both read 256
 * always; on older kernels a starved pool stalls /dev/random readers.
 */
#include "collect/collect_internal.h"

#include <stdio.h>
#include <string.h>

/*
 * Read a one-number sysctl below proc into *out. Returns COLLECT_OK,
 * COLLECT_MISSING if absent, or COLLECT_FAILED (ctx->err filled).
 */
static int read_bits(struct collect_ctx *ctx, const char *path, uint64_t *out)
{
    char buf[64];
    long n = collect__read_small(ctx->proc_fd, path, buf, sizeof(buf));
    if (n < 0) {
        snprintf(ctx->err, sizeof(ctx->err), "%s/%s: %s", ctx->opts->proc_root, path,
                 strerror((int)-n));
        return collect__read_error(n);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (collect__u64(buf, out) < 0)
        return collect__fail(ctx, "%s/%s: want one number, got '%.20s'", ctx->opts->proc_root, path,
                             buf);
    return COLLECT_OK;
}

static int entropy_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    uint64_t avail, pool;
    int rc = read_bits(ctx, "sys/kernel/random/entropy_avail", &avail);
    if (rc != COLLECT_OK)
        return rc;
    metric_fam(ctx->out, "node_entropy_available_bits", "Bits of available entropy.", METRIC_GAUGE);
    metric_add0(ctx->out, (double)avail);
    rc = read_bits(ctx, "sys/kernel/random/poolsize", &pool);
    if (rc == COLLECT_MISSING)
        return COLLECT_OK; /* entropy_avail alone is still worth having */
    if (rc != COLLECT_OK)
        return rc;
    metric_fam(ctx->out, "node_entropy_pool_size_bits", "Bits of entropy pool.", METRIC_GAUGE);
    metric_add0(ctx->out, (double)pool);
    return COLLECT_OK;
}

const struct collect_source collect__src_entropy = {
    .name = "entropy",
    .collect = entropy_collect,
};
