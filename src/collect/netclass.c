/*
 * netclass.c: placeholder until the netclass source is written.
 */
#include "collect/collect_internal.h"

static int netclass_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_netclass = {
    .name = "netclass",
    .collect = netclass_collect,
};
