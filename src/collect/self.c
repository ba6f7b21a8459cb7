/*
 * self.c: placeholder until the self source is written.
 */
#include "collect/collect_internal.h"

static int self_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_self = {
    .name = "self",
    .collect = self_collect,
};
