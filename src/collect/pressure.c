/*
 * pressure.c: placeholder until the pressure source is written.
 */
#include "collect/collect_internal.h"

static int pressure_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    return collect__fail(ctx, "not written yet");
}

const struct collect_source collect__src_pressure = {
    .name = "pressure",
    .collect = pressure_collect,
};
