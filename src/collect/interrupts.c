/*
 * interrupts.c: /proc/interrupts -> node_interrupts_total{cpu,type,info,
 * devices}, named and labelled as node_exporter 1.5's "interrupts" collector
 * (off by default there, --collector.interrupts): which device's IRQs land on
 * which CPU, and the per-CPU counts of NMIs, timer, rescheduling, TLB
 * shootdown and function-call interrupts that show a CPU being disturbed.
 *
 * The header lists the online CPUs ("CPU0 CPU1 ..."); each row is "TYPE:",
 * one count per CPU, then a description. For a numbered IRQ, info is the
 * first word of the description (the interrupt chip, "IO-APIC") and devices
 * the rest ("5-edge ACPI:Ged"); for a named one ("NMI", "LOC") info is the
 * whole description and devices is empty. Blank runs become one space. Rows
 * with no description after the counts (ERR, MIS: one total, not per CPU)
 * are skipped, as node_exporter skips them.
 *
 * Where this differs from node_exporter 1.5: the cpu label is the CPU's
 * number from the header, not the column's index, so the two disagree only
 * while a CPU is offline (node_exporter then shifts every later CPU's series
 * onto the wrong label). And a big host can have thousands of IRQ rows times
 * hundreds of CPUs: at most IRQ_MAX_SERIES series are exported, in file
 * order, and sitrep_interrupts_skipped says how many were left out.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IRQ_MAX_SERIES 4096

struct irq_state {
    struct collect_cpus cpus;
    uint64_t *vals; /* one row's counts; grows to the CPU count once */
    size_t vals_cap;
};

static void irq_release(void *p)
{
    struct irq_state *s = p;
    collect__cpus_release(&s->cpus);
    free(s->vals);
}

/* 1 if s is a whole decimal number: a numbered IRQ ("24"), not "NMI". */
static int numbered(const char *s)
{
    uint64_t v;
    return collect__u64(s, &v) == 0;
}

static int irq_collect(void *p, struct collect_ctx *ctx)
{
    struct irq_state *s = p;
    char *cur, *line;
    int rc = collect__read_cpu_table(ctx, "interrupts", &s->cpus, &cur);
    if (rc != COLLECT_OK)
        return rc;
    const char *root = ctx->opts->proc_root;
    size_t ncpu = s->cpus.n;
    void *g = s->vals;
    util_grow(&g, &s->vals_cap, ncpu, sizeof(*s->vals));
    s->vals = g;

    /* Samples are emitted while parsing: on an error the framework drops
     * whatever this tick emitted, so a garbled file still leaves nothing. */
    metric_fam(ctx->out, "node_interrupts_total", "Interrupt details.", METRIC_COUNTER);
    size_t emitted = 0, skipped = 0, rows = 0;
    for (int lineno = 2; (line = collect__line(&cur)); lineno++) {
        char *name, *rest, *t = NULL;
        if (!line[strspn(line, " \t")])
            continue; /* blank */
        if (collect__row_name(line, &name, &rest) < 0)
            return collect__fail(ctx, "%s/interrupts:%d: want 'TYPE: counts...'", root, lineno);
        size_t i = 0;
        for (; i < ncpu && (t = collect__token(&rest)); i++)
            if (collect__u64(t, &s->vals[i]) < 0)
                return collect__fail(ctx, "%s/interrupts:%d: %s: bad count '%.20s'", root, lineno,
                                     name, t);
        char *info = rest;
        while (*info == ' ' || *info == '\t')
            info++;
        if (i < ncpu || !*info)
            continue; /* ERR, MIS: a single total, no description */
        const char *devices = "";
        if (numbered(name)) {
            info = collect__token(&rest);
            devices = collect__squeeze(rest);
        } else {
            collect__squeeze(info);
        }
        rows++;
        for (i = 0; i < ncpu; i++) {
            if (emitted == IRQ_MAX_SERIES) {
                skipped += ncpu - i;
                break;
            }
            const struct metric_label l[] = {
                {"cpu", s->cpus.id[i]}, {"type", name}, {"info", info}, {"devices", devices}};
            metric_add(ctx->out, (double)s->vals[i], ARRAY_SIZE(l), l);
            emitted++;
        }
    }
    /* Every kernel has at least the timer's row; none means a cut file. */
    if (rows == 0)
        return collect__fail(ctx, "%s/interrupts: no interrupt rows (truncated?)", root);
    metric_fam(ctx->out, "sitrep_interrupts_skipped",
               "node_interrupts_total series left out of the last read, past sitrep's cap.",
               METRIC_GAUGE);
    metric_add0(ctx->out, (double)skipped);
    return COLLECT_OK;
}

const struct collect_source collect__src_interrupts = {
    .name = "interrupts",
    .state_size = sizeof(struct irq_state),
    .collect = irq_collect,
    .release = irq_release,
};
