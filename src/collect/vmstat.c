/*
 * vmstat.c: placeholder until the vmstat source is written.
 */
#include "collect/collect_internal.h"

static int vmstat_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_vmstat = {
    .name = "vmstat",
    .collect = vmstat_collect,
};
