/*
 * processes.c: placeholder until the processes source is written.
 */
#include "collect/collect_internal.h"

static int processes_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_processes = {
    .name = "processes",
    .collect = processes_collect,
};
