/*
 * schedstat.c: /proc/schedstat -> per CPU, the time spent running tasks, the
 * time tasks spent runnable but waiting for that CPU (run-queue delay), and
 * the timeslices run (node_exporter's "schedstat" collector, same names and
 * units). Waiting time growing on a CPU is CPU saturation measured directly:
 * tasks that wanted to run and could not.
 *
 * The file starts with "version N" and "timestamp T", then per CPU a
 * "cpuN ..." line followed by its "domainN ..." lines (load balancing
 * statistics, not read here). In every version from 14 on, the last three
 * fields of a cpu line are rq_cpu_time and run_delay (nanoseconds) and
 * pcount (timeslices); version 14 has 12 fields, 15 dropped three of the
 * yield counters (9 fields), and 16 and 17 changed the domain lines only.
 * node_exporter 1.5 takes fields 7-9 of the line, which is the same from
 * version 15 on (and wrong for 14). The file exists only on kernels built
 * with CONFIG_SCHEDSTATS; without it the source is logged once and off.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEDSTAT_MIN_VERSION 14
#define SCHEDSTAT_MIN_FIELDS  9  /* of a cpu line after "cpuN" (15 and later) */
#define SCHEDSTAT_MAX_FIELDS  32 /* a longer cpu line is not one we know */

struct schedstat_cpu {
    char id[12];               /* the N of "cpuN" */
    uint64_t run, wait, count; /* rq_cpu_time ns, run_delay ns, pcount */
};

struct schedstat_state {
    struct schedstat_cpu *cpus; /* grows to the CPU count once */
    size_t cap;
};

static void schedstat_release(void *p)
{
    struct schedstat_state *s = p;
    free(s->cpus);
}

/* 1 if name is "cpu" followed by a CPU number (not "cpu" alone). */
static int cpu_id(const char *name, const char **id)
{
    uint64_t v;
    if (strncmp(name, "cpu", 3) != 0 ||
        strlen(name + 3) >= sizeof(((struct schedstat_cpu *)0)->id) ||
        collect__u64(name + 3, &v) < 0)
        return 0;
    *id = name + 3;
    return 1;
}

static int schedstat_collect(void *p, struct collect_ctx *ctx)
{
    struct schedstat_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "schedstat");
    if (n < 0)
        return collect__read_error(n);
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    int lineno = 0, have_version = 0;
    size_t ncpu = 0;
    /* Parse every line first so a garbled one emits nothing half-done. */
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[SCHEDSTAT_MAX_FIELDS + 1];
        int nf = collect__fields(line, f, SCHEDSTAT_MAX_FIELDS + 1);
        if (nf == 0)
            continue;
        if (!have_version) { /* the layout depends on it: it must come first */
            uint64_t version;
            if (nf != 2 || strcmp(f[0], "version") != 0 || collect__u64(f[1], &version) < 0)
                return collect__fail(ctx, "%s/schedstat:%d: want 'version N' first", root, lineno);
            if (version < SCHEDSTAT_MIN_VERSION) {
                /* Not garbled, just older than the layout read here: off. */
                snprintf(ctx->err, sizeof(ctx->err),
                         "%s/schedstat:%d: version %llu, sitrep reads %d and later", root, lineno,
                         (unsigned long long)version, SCHEDSTAT_MIN_VERSION);
                return COLLECT_MISSING;
            }
            have_version = 1;
            continue;
        }
        const char *id;
        if (!cpu_id(f[0], &id))
            continue; /* timestamp, domainN, or a line a later kernel adds */
        if (nf - 1 < SCHEDSTAT_MIN_FIELDS || nf - 1 > SCHEDSTAT_MAX_FIELDS)
            return collect__fail(ctx, "%s/schedstat:%d: %s: %d fields, want %d to %d", root, lineno,
                                 f[0], nf - 1, SCHEDSTAT_MIN_FIELDS, SCHEDSTAT_MAX_FIELDS);
        uint64_t v[3];
        for (int i = 0; i < 3; i++)
            if (collect__u64(f[nf - 3 + i], &v[i]) < 0)
                return collect__fail(ctx, "%s/schedstat:%d: %s: bad number '%.20s'", root, lineno,
                                     f[0], f[nf - 3 + i]);
        void *g = s->cpus;
        util_grow(&g, &s->cap, ncpu + 1, sizeof(*s->cpus));
        s->cpus = g;
        struct schedstat_cpu *c = &s->cpus[ncpu++];
        snprintf(c->id, sizeof(c->id), "%s", id);
        c->run = v[0];
        c->wait = v[1];
        c->count = v[2];
    }
    if (ncpu == 0)
        return collect__fail(ctx, "%s/schedstat: no cpu lines (truncated?)", root);

    struct metric_buf *b = ctx->out;
    metric_fam(b, "node_schedstat_running_seconds_total",
               "Number of seconds CPU spent running a process.", METRIC_COUNTER);
    for (size_t i = 0; i < ncpu; i++)
        metric_add1(b, (double)s->cpus[i].run / 1e9, "cpu", s->cpus[i].id);
    metric_fam(b, "node_schedstat_waiting_seconds_total",
               "Number of seconds spent by processing waiting for this CPU.", METRIC_COUNTER);
    for (size_t i = 0; i < ncpu; i++)
        metric_add1(b, (double)s->cpus[i].wait / 1e9, "cpu", s->cpus[i].id);
    metric_fam(b, "node_schedstat_timeslices_total", "Number of timeslices executed by CPU.",
               METRIC_COUNTER);
    for (size_t i = 0; i < ncpu; i++)
        metric_add1(b, (double)s->cpus[i].count, "cpu", s->cpus[i].id);
    return COLLECT_OK;
}

const struct collect_source collect__src_schedstat = {
    .name = "schedstat",
    .state_size = sizeof(struct schedstat_state),
    .collect = schedstat_collect,
    .release = schedstat_release,
};
