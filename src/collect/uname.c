/*
 * uname.c: which kernel this is: uname(2) -> node_uname_info (node_exporter's
 * "uname" collector, same name and labels). Only the host name can change at
 * runtime, so uname(2) is called again every UNAME_RECHECK ticks, not every
 * tick.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define UNAME_RECHECK 60 /* ticks between uname(2) calls, for hostname changes */

struct uname_state {
    struct utsname uts;
    int have_uts;
    unsigned ticks; /* since the last uname(2) */
};

static int uname_collect(void *p, struct collect_ctx *ctx)
{
    struct uname_state *s = p;
    if (!s->have_uts || ++s->ticks >= UNAME_RECHECK) {
        if (uname(&s->uts) < 0)
            return collect__fail(ctx, "uname: %s", strerror(errno));
        s->have_uts = 1;
        s->ticks = 0;
    }
    const struct metric_label l[] = {
        {"domainname", s->uts.domainname}, {"machine", s->uts.machine},
        {"nodename", s->uts.nodename},     {"release", s->uts.release},
        {"sysname", s->uts.sysname},       {"version", s->uts.version},
    };
    metric_fam(ctx->out, "node_uname_info",
               "Labeled system information as provided by the uname system call.", METRIC_GAUGE);
    metric_add(ctx->out, 1, ARRAY_SIZE(l), l);
    return COLLECT_OK;
}

const struct collect_source collect__src_uname = {
    .name = "uname",
    .state_size = sizeof(struct uname_state),
    .collect = uname_collect,
    .flags = COLLECT_OWN_ROOT,
};
