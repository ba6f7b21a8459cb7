/*
 * sockstat.c: placeholder until the sockstat source is written.
 */
#include "collect/collect_internal.h"

static int sockstat_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_sockstat = {
    .name = "sockstat",
    .collect = sockstat_collect,
};
