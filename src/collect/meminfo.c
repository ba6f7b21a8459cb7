/*
 * meminfo.c: placeholder until the meminfo source is written.
 */
#include "collect/collect_internal.h"

static int meminfo_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_meminfo = {
    .name = "meminfo",
    .collect = meminfo_collect,
};
