/*
 * meminfo.c: /proc/meminfo -> one gauge per field, named as node_exporter's
 * "meminfo" collector names them: "Active(anon): 992 kB" becomes
 * node_memory_Active_anon_bytes 1015808 (kB fields are scaled to bytes and
 * get the _bytes suffix), "HugePages_Total: 0" stays node_memory_HugePages_Total.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest field name accepted; real ones are under 20 characters. */
#define MEMINFO_MAX_KEY 64

struct meminfo_field {
    const char *key; /* sanitised in place in ctx->buf */
    double value;
    int bytes; /* the line had a kB unit */
};

struct meminfo_state {
    /* Parsed fields of this tick; grows to the field count once. */
    struct meminfo_field *fields;
    size_t cap;
};

static void meminfo_release(void *p)
{
    struct meminfo_state *s = p;
    free(s->fields);
}

/*
 * Turn "Active(anon):" into "Active_anon" in place (node_exporter replaces
 * "(x)" with "_x"); any other character a metric name cannot hold becomes
 * '_' so a future kernel's odd field cannot produce an invalid name.
 * Returns 0, or -1 if the key lacks its ':' or is empty or too long.
 */
static int meminfo_key(char *k)
{
    size_t n = strlen(k);
    if (n < 2 || k[n - 1] != ':' || n - 1 > MEMINFO_MAX_KEY)
        return -1;
    k[n - 1] = '\0';
    char *w = k;
    for (const char *r = k; *r; r++) {
        char c = *r;
        if (c == ')')
            continue;
        if (c == '(')
            c = '_';
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        *w++ = c;
    }
    *w = '\0';
    return w == k ? -1 : 0;
}

static int meminfo_collect(void *p, struct collect_ctx *ctx)
{
    struct meminfo_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "meminfo");
    if (n < 0)
        return collect__read_error(n);

    /* Parse everything first so a garbled line emits nothing at all. */
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    size_t nfields = 0;
    int lineno = 0, seen_total = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[4];
        int nf = collect__fields(line, f, 4);
        if (nf == 0)
            continue;
        if (nf < 2 || nf > 3)
            return collect__fail(ctx, "%s/meminfo:%d: want 'Key: value [kB]', got %d fields", root,
                                 lineno, nf);
        if (nf == 3 && strcmp(f[2], "kB") != 0)
            return collect__fail(ctx, "%s/meminfo:%d: unknown unit '%.16s'", root, lineno, f[2]);
        if (strcmp(f[0], "MemTotal:") == 0)
            seen_total = 1;
        if (meminfo_key(f[0]) < 0)
            return collect__fail(ctx, "%s/meminfo:%d: bad field name '%.40s'", root, lineno, f[0]);
        uint64_t v;
        if (collect__u64(f[1], &v) < 0)
            return collect__fail(ctx, "%s/meminfo:%d: bad number '%.40s' for %s", root, lineno,
                                 f[1], f[0]);
        void *g = s->fields;
        util_grow(&g, &s->cap, nfields + 1, sizeof(*s->fields));
        s->fields = g;
        s->fields[nfields++] = (struct meminfo_field){
            .key = f[0],
            .value = nf == 3 ? (double)v * 1024.0 : (double)v,
            .bytes = nf == 3,
        };
    }
    if (!seen_total)
        return collect__fail(ctx, "%s/meminfo: no MemTotal line (truncated?)", root);

    char name[sizeof("node_memory_") + MEMINFO_MAX_KEY + sizeof("_bytes")];
    char help[sizeof(name) + 40];
    for (size_t i = 0; i < nfields; i++) {
        const struct meminfo_field *m = &s->fields[i];
        const char *suffix = m->bytes ? "_bytes" : "";
        snprintf(name, sizeof(name), "node_memory_%s%s", m->key, suffix);
        snprintf(help, sizeof(help), "Memory information field %s%s.", m->key, suffix);
        metric_fam(ctx->out, name, help, METRIC_GAUGE);
        metric_add0(ctx->out, m->value);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_meminfo = {
    .name = "meminfo",
    .state_size = sizeof(struct meminfo_state),
    .collect = meminfo_collect,
    .release = meminfo_release,
};
