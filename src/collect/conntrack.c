/*
 * conntrack.c: placeholder until the conntrack source is written.
 */
#include "collect/collect_internal.h"

static int conntrack_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_conntrack = {
    .name = "conntrack",
    .collect = conntrack_collect,
};
