/*
 * netdev.c: placeholder until the netdev source is written.
 */
#include "collect/collect_internal.h"

static int netdev_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_netdev = {
    .name = "netdev",
    .collect = netdev_collect,
};
