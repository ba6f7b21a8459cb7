/*
 * vmstat.c: /proc/vmstat -> node_vmstat_<field> (untyped, as node_exporter's
 * "vmstat" collector exposes them). Every field by default, as node_exporter
 * with --collector.vmstat.fields='.*': reclaim, compaction, THP, NUMA and
 * per-zone counters all help tell memory pressure apart from ordinary paging,
 * and the ~160 fields beyond sitrep's former subset cost 10-15 us a tick
 * here. collect: {vmstat_fields: RE} narrows it (fieldsel.c);
 * node_exporter's own default is "(oom_kill|pgpg|pswp|pg.*fault).*".
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest field name accepted; real ones are under 40 characters. */
#define VMSTAT_MAX_KEY 64

struct vmstat_field {
    const char *key; /* points into ctx->buf */
    double value;
};

struct vmstat_state {
    struct collect__fieldsel *sel; /* NULL: every field */
    /* Selected fields of this tick; grows to the selection's size once. */
    struct vmstat_field *fields;
    size_t cap;
};

static int vmstat_init(void *p, const struct collect_opts *opts, char *err, size_t errlen)
{
    struct vmstat_state *s = p;
    size_t off;
    return collect__fieldsel_new(opts->vmstat_fields, &s->sel, err, errlen, &off);
}

static void vmstat_release(void *p)
{
    struct vmstat_state *s = p;
    collect__fieldsel_free(s->sel);
    free(s->fields);
}

/* 1 if k can follow "node_vmstat_" in a metric name. */
static int vmstat_key_valid(const char *k)
{
    size_t n = 0;
    for (; k[n]; n++) {
        char c = k[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return n > 0 && n <= VMSTAT_MAX_KEY;
}

static int vmstat_collect(void *p, struct collect_ctx *ctx)
{
    struct vmstat_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "vmstat");
    if (n < 0)
        return collect__read_error(n);

    /* Parse and check every line first so a garbled file emits nothing. */
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    size_t nfields = 0;
    int lineno = 0, seen_pgfault = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[3];
        int nf = collect__fields(line, f, 3);
        if (nf == 0)
            continue;
        if (nf != 2)
            return collect__fail(ctx, "%s/vmstat:%d: want 'name value', got %d fields", root,
                                 lineno, nf);
        uint64_t v;
        if (!vmstat_key_valid(f[0]))
            return collect__fail(ctx, "%s/vmstat:%d: bad field name '%.40s'", root, lineno, f[0]);
        if (collect__u64(f[1], &v) < 0)
            return collect__fail(ctx, "%s/vmstat:%d: bad number '%.40s' for %s", root, lineno, f[1],
                                 f[0]);
        if (strcmp(f[0], "pgfault") == 0)
            seen_pgfault = 1;
        if (!collect__fieldsel_keep(s->sel, f[0], strlen(f[0])))
            continue;
        void *g = s->fields;
        util_grow(&g, &s->cap, nfields + 1, sizeof(*s->fields));
        s->fields = g;
        s->fields[nfields++] = (struct vmstat_field){.key = f[0], .value = (double)v};
    }
    /* Every kernel has pgfault; without it the file was cut short. */
    if (!seen_pgfault)
        return collect__fail(ctx, "%s/vmstat: no pgfault line (truncated?)", root);

    /* memcpy, not snprintf: this runs for ~190 fields a tick, and two snprintf
     * calls a field made the source 10-70% slower (docs/PERFORMANCE.md). */
    static const char prefix[] = "node_vmstat_", hprefix[] = "/proc/vmstat information field ";
    char name[sizeof(prefix) + VMSTAT_MAX_KEY];
    char help[sizeof(hprefix) + VMSTAT_MAX_KEY + 1];
    memcpy(name, prefix, sizeof(prefix) - 1);
    memcpy(help, hprefix, sizeof(hprefix) - 1);
    for (size_t i = 0; i < nfields; i++) {
        size_t kl = strlen(s->fields[i].key); /* <= VMSTAT_MAX_KEY: checked above */
        memcpy(name + sizeof(prefix) - 1, s->fields[i].key, kl + 1);
        memcpy(help + sizeof(hprefix) - 1, s->fields[i].key, kl);
        memcpy(help + sizeof(hprefix) - 1 + kl, ".", 2);
        metric_fam(ctx->out, name, help, METRIC_UNTYPED);
        metric_add0(ctx->out, s->fields[i].value);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_vmstat = {
    .name = "vmstat",
    .state_size = sizeof(struct vmstat_state),
    .collect = vmstat_collect,
    .release = vmstat_release,
    .init = vmstat_init,
};
