/*
 * vfs.c: placeholder until the vfs source is written.
 */
#include "collect/collect_internal.h"

static int vfs_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_vfs = {
    .name = "vfs",
    .collect = vfs_collect,
};
