/*
 * uname.c: placeholder until the uname source is written.
 */
#include "collect/collect_internal.h"

static int uname_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_uname = {
    .name = "uname",
    .collect = uname_collect,
};
