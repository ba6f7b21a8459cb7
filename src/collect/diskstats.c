/*
 * diskstats.c: placeholder until the diskstats source is written.
 */
#include "collect/collect_internal.h"

static int diskstats_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_diskstats = {
    .name = "diskstats",
    .collect = diskstats_collect,
};
