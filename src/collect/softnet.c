/*
 * softnet.c: placeholder until the softnet source is written.
 */
#include "collect/collect_internal.h"

static int softnet_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_softnet = {
    .name = "softnet",
    .collect = softnet_collect,
};
