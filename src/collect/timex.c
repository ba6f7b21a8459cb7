/*
 * timex.c: placeholder until the timex source is written.
 */
#include "collect/collect_internal.h"

static int timex_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_timex = {
    .name = "timex",
    .collect = timex_collect,
};
