/*
 * vmstat.c: /proc/vmstat -> node_vmstat_<field> (untyped, as node_exporter's
 * "vmstat" collector exposes them). The set is node_exporter's default
 * (oom_kill, pgpg*, pswp*, pg*fault*) plus the reclaim and compaction
 * counters that tell memory pressure apart from ordinary paging: direct
 * reclaim stalls, pages scanned and stolen, refaults, compaction stalls and
 * manual cache drops.
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
    /* Selected fields of this tick; grows to the selection's size once. */
    struct vmstat_field *fields;
    size_t cap;
};

static void vmstat_release(void *p)
{
    struct vmstat_state *s = p;
    free(s->fields);
}

/*
 * Fields to export, by prefix unless `exact`. Prefixes without a trailing
 * '_' also catch the older kernels' unsuffixed forms ("allocstall",
 * "workingset_refault" before the per-zone / per-LRU split).
 */
static const struct {
    const char *name;
    int exact;
} wanted[] = {
    {"oom_kill", 0},           {"pgpg", 0},          {"pswp", 0},
    {"allocstall", 0},         {"pgscan_", 0},       {"pgsteal_", 0},
    {"workingset_refault", 0}, {"compact_stall", 1}, {"drop_slab", 1},
    {"drop_pagecache", 1},
};

static int vmstat_wanted(const char *k)
{
    /* node_exporter's "pg.*fault": pgfault, pgmajfault and any later kin. */
    if (strncmp(k, "pg", 2) == 0 && strstr(k + 2, "fault"))
        return 1;
    for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
        if (wanted[i].name[0] != k[0]) /* cheap reject: runs for ~180 fields a tick */
            continue;
        if (wanted[i].exact ? strcmp(k, wanted[i].name) == 0
                            : strncmp(k, wanted[i].name, strlen(wanted[i].name)) == 0)
            return 1;
    }
    return 0;
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
        if (!vmstat_wanted(f[0]))
            continue;
        uint64_t v;
        if (!vmstat_key_valid(f[0]))
            return collect__fail(ctx, "%s/vmstat:%d: bad field name '%.40s'", root, lineno, f[0]);
        if (collect__u64(f[1], &v) < 0)
            return collect__fail(ctx, "%s/vmstat:%d: bad number '%.40s' for %s", root, lineno, f[1],
                                 f[0]);
        if (strcmp(f[0], "pgfault") == 0)
            seen_pgfault = 1;
        void *g = s->fields;
        util_grow(&g, &s->cap, nfields + 1, sizeof(*s->fields));
        s->fields = g;
        s->fields[nfields++] = (struct vmstat_field){.key = f[0], .value = (double)v};
    }
    /* Every kernel has pgfault; without it the file was cut short. */
    if (!seen_pgfault)
        return collect__fail(ctx, "%s/vmstat: no pgfault line (truncated?)", root);

    char name[sizeof("node_vmstat_") + VMSTAT_MAX_KEY];
    char help[sizeof(name) + 40];
    for (size_t i = 0; i < nfields; i++) {
        snprintf(name, sizeof(name), "node_vmstat_%s", s->fields[i].key);
        snprintf(help, sizeof(help), "/proc/vmstat information field %s.", s->fields[i].key);
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
};
