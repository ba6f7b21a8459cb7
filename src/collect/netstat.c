/*
 * netstat.c: placeholder until the netstat source is written.
 */
#include "collect/collect_internal.h"

static int netstat_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_netstat = {
    .name = "netstat",
    .collect = netstat_collect,
};
