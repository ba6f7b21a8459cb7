/*
 * diskstats.c: /proc/diskstats -> per-device I/O counters, named as
 * node_exporter's "diskstats" collector names them (node_disk_*, label
 * device; sectors scaled to bytes, milliseconds to seconds). Partitions and
 * loop, ram and floppy devices are skipped as node_exporter's default
 * --collector.diskstats.device-exclude skips them, so whole disks are not
 * counted twice; eMMC partitions (mmcblk0p1) are skipped too.
 *
 * The file has 11 counters per device up to Linux 4.18, 15 with the discard
 * fields, 17 with the flush fields (5.5): what a line has is what is emitted.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* Counters node_exporter knows; a newer kernel's extra ones are ignored. */
#define DISK_COLS 17

struct disk_dev {
    const char *name; /* points into ctx->buf */
    int ncols;        /* counters on the line, at most DISK_COLS */
    uint64_t v[DISK_COLS];
};

struct diskstats_state {
    struct disk_dev *devs; /* this tick's parse; grows to the device count */
    size_t cap;
};

static void diskstats_release(void *p)
{
    struct diskstats_state *s = p;
    free(s->devs);
}

static const struct {
    const char *name, *help;
    enum metric_type type;
    double scale; /* sectors -> bytes, ms -> s */
} disk_cols[DISK_COLS] = {
    {"node_disk_reads_completed_total", "The total number of reads completed successfully.",
     METRIC_COUNTER, 1},
    {"node_disk_reads_merged_total", "The total number of reads merged.", METRIC_COUNTER, 1},
    {"node_disk_read_bytes_total", "The total number of bytes read successfully.", METRIC_COUNTER,
     512},
    {"node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.",
     METRIC_COUNTER, 1e-3},
    {"node_disk_writes_completed_total", "The total number of writes completed successfully.",
     METRIC_COUNTER, 1},
    {"node_disk_writes_merged_total", "The number of writes merged.", METRIC_COUNTER, 1},
    {"node_disk_written_bytes_total", "The total number of bytes written successfully.",
     METRIC_COUNTER, 512},
    {"node_disk_write_time_seconds_total",
     "This is the total number of seconds spent by all writes.", METRIC_COUNTER, 1e-3},
    {"node_disk_io_now", "The number of I/Os currently in progress.", METRIC_GAUGE, 1},
    {"node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", METRIC_COUNTER, 1e-3},
    {"node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.",
     METRIC_COUNTER, 1e-3},
    {"node_disk_discards_completed_total", "The total number of discards completed successfully.",
     METRIC_COUNTER, 1},
    {"node_disk_discards_merged_total", "The total number of discards merged.", METRIC_COUNTER, 1},
    /* Sectors, not bytes: node_exporter's name and unit. */
    {"node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.",
     METRIC_COUNTER, 1},
    {"node_disk_discard_time_seconds_total",
     "This is the total number of seconds spent by all discards.", METRIC_COUNTER, 1e-3},
    {"node_disk_flush_requests_total", "The total number of flush requests completed successfully",
     METRIC_COUNTER, 1},
    {"node_disk_flush_requests_time_seconds_total",
     "This is the total number of seconds spent by all flush requests.", METRIC_COUNTER, 1e-3},
};

/* Skip the digits at *s; returns how many there were. */
static int digits(const char **s)
{
    int n = 0;
    while (**s >= '0' && **s <= '9') {
        (*s)++;
        n++;
    }
    return n;
}

/* 1 if s starts with prefix; then *rest is what follows it. */
static int prefix(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return 0;
    *rest = s + n;
    return 1;
}

/* 1 if s, from here to its end, is one or more digits. */
static int all_digits(const char *s)
{
    return digits(&s) > 0 && *s == '\0';
}

/*
 * node_exporter's default exclusion, by hand:
 * ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$, plus mmcblk\d+p\d+.
 */
static int disk_ignored(const char *name)
{
    const char *r;
    if (prefix(name, "ram", &r) || prefix(name, "loop", &r) || prefix(name, "fd", &r))
        return all_digits(r);
    if (prefix(name, "xvd", &r) || prefix(name, "hd", &r) || prefix(name, "sd", &r) ||
        prefix(name, "vd", &r))
        return *r >= 'a' && *r <= 'z' && all_digits(r + 1);
    if (prefix(name, "nvme", &r))
        return digits(&r) && *r++ == 'n' && digits(&r) && *r++ == 'p' && all_digits(r);
    if (prefix(name, "mmcblk", &r))
        return digits(&r) && *r++ == 'p' && all_digits(r);
    return 0;
}

static int diskstats_collect(void *p, struct collect_ctx *ctx)
{
    struct diskstats_state *s = p;
    long n = collect__read(ctx, ctx->proc_fd, "diskstats");
    if (n < 0)
        return collect__read_error(n);

    /* Parse everything first so a garbled line emits nothing at all. */
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    size_t ndevs = 0;
    int lineno = 0, maxcols = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[3 + DISK_COLS];
        int nf = collect__fields(line, f, 3 + DISK_COLS);
        if (nf == 0)
            continue;
        /* major, minor, name and at least the 11 counters every kernel has. */
        if (nf < 14)
            return collect__fail(ctx, "%s/diskstats:%d: %d fields, want >= 14", root, lineno, nf);
        uint64_t major, minor;
        if (collect__u64(f[0], &major) < 0 || collect__u64(f[1], &minor) < 0)
            return collect__fail(ctx, "%s/diskstats:%d: bad device number '%.20s %.20s'", root,
                                 lineno, f[0], f[1]);
        if (disk_ignored(f[2]))
            continue;
        void *g = s->devs;
        util_grow(&g, &s->cap, ndevs + 1, sizeof(*s->devs));
        s->devs = g;
        struct disk_dev *d = &s->devs[ndevs];
        d->name = f[2];
        d->ncols = nf - 3;
        for (int i = 0; i < d->ncols; i++)
            if (collect__u64(f[3 + i], &d->v[i]) < 0)
                return collect__fail(ctx, "%s/diskstats:%d: %s: bad number '%.40s'", root, lineno,
                                     d->name, f[3 + i]);
        if (d->ncols > maxcols)
            maxcols = d->ncols;
        ndevs++;
    }

    for (int c = 0; c < maxcols; c++) {
        metric_fam(ctx->out, disk_cols[c].name, disk_cols[c].help, disk_cols[c].type);
        for (size_t i = 0; i < ndevs; i++)
            if (c < s->devs[i].ncols)
                metric_add1(ctx->out, (double)s->devs[i].v[c] * disk_cols[c].scale, "device",
                            s->devs[i].name);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_diskstats = {
    .name = "diskstats",
    .state_size = sizeof(struct diskstats_state),
    .collect = diskstats_collect,
    .release = diskstats_release,
};
