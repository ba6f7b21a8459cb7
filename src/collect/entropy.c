/*
 * entropy.c: placeholder until the entropy source is written.
 */
#include "collect/collect_internal.h"

static int entropy_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_entropy = {
    .name = "entropy",
    .collect = entropy_collect,
};
