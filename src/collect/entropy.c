/*
 * entropy.c: /proc/sys/kernel/random/{entropy_avail,poolsize} ->
 * node_entropy_available_bits and node_entropy_pool_size_bits
 * (node_exporter's "entropy" collector). Since Linux 5.18 both read 256
 * always; on older kernels a starved pool stalls /dev/random readers.
 */
#include "collect/collect_internal.h"

#include <stdio.h>
#include <string.h>

static int entropy_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    uint64_t avail, pool;
    int rc = collect__read_u64(ctx, "sys/kernel/random/entropy_avail", &avail);
    if (rc != COLLECT_OK)
        return rc;
    metric_fam(ctx->out, "node_entropy_available_bits", "Bits of available entropy.", METRIC_GAUGE);
    metric_add0(ctx->out, (double)avail);
    rc = collect__read_u64(ctx, "sys/kernel/random/poolsize", &pool);
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
