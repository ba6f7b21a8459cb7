/*
 * filesystem.c: placeholder until the filesystem source is written.
 */
#include "collect/collect_internal.h"

static int filesystem_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_filesystem = {
    .name = "filesystem",
    .collect = filesystem_collect,
};
