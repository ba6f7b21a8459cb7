/*
 * self.c: sitrep's own process -> the standard Prometheus client process
 * metrics (process_cpu_seconds_total, process_resident_memory_bytes, ...,
 * named and described as client_golang does) plus sitrep_threads, which
 * client_golang has no equivalent for.
 *
 * It always reads the real /proc/self, never proc_root: a fixture describes
 * some other host, while these metrics describe this very process. The
 * directories and files are opened once and kept (files re-read from offset
 * 0), so a tick allocates nothing and opens nothing.
 */
#include "collect/collect_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct self_state {
    int opened;
    int self_fd;            /* /proc/self as resolved at open: this process, not a thread */
    DIR *fds;               /* /proc/self/fd, rewound every tick */
    int stat_fd, limits_fd; /* /proc/self/{stat,limits} + 1, 0 until opened */
    int have_start;
    double start_time; /* seconds since the epoch; constant once known */
    char buf[4096];    /* stat or limits (about 1.5 KiB) */
};

static void self_release(void *p)
{
    struct self_state *s = p;
    if (s->fds)
        closedir(s->fds);
    if (s->stat_fd)
        close(s->stat_fd - 1);
    if (s->limits_fd)
        close(s->limits_fd - 1);
    if (s->opened)
        close(s->self_fd);
}

static int open_self(struct self_state *s, struct collect_ctx *ctx)
{
    s->self_fd = openat(AT_FDCWD, "/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->self_fd < 0) {
        int e = errno;
        snprintf(ctx->err, sizeof(ctx->err), "/proc/self: %s", strerror(e));
        return collect__read_error(-e);
    }
    int fd = openat(s->self_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(s->fds = fdopendir(fd))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        close(s->self_fd);
        s->opened = 0; /* try again next tick */
        return collect__fail(ctx, "/proc/self/fd: %s", strerror(e));
    }
    s->opened = 1;
    /* Opened now, not at first read, so every tick's descriptor count
     * (which includes them) is the same. */
    int f = openat(s->self_fd, "stat", O_RDONLY | O_CLOEXEC);
    s->stat_fd = f >= 0 ? f + 1 : 0;
    f = openat(s->self_fd, "limits", O_RDONLY | O_CLOEXEC);
    s->limits_fd = f >= 0 ? f + 1 : 0;
    return COLLECT_OK;
}

/* Boot time from the real /proc/stat's "btime" line; -1 if absent. */
static double boot_time(struct collect_ctx *ctx)
{
    if (collect__read(ctx, AT_FDCWD, "/proc/stat") < 0)
        return -1;
    char *cur = ctx->buf, *line;
    while ((line = collect__line(&cur))) {
        char *f[3];
        uint64_t v;
        if (collect__fields(line, f, 3) == 2 && strcmp(f[0], "btime") == 0 &&
            collect__u64(f[1], &v) == 0)
            return (double)v;
    }
    return -1;
}

/* The soft limit on the limits line starting with `name`; "unlimited" is
 * reported as 2^64-1, as client_golang does. Returns 0, or -1 if absent. */
static int soft_limit(char *limits, const char *name, double *out)
{
    size_t len = strlen(name);
    for (char *p = limits; p && *p;) {
        char *next = strchr(p, '\n');
        if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '\t')) {
            const char *s = p + len;
            while (*s == ' ' || *s == '\t')
                s++;
            if (strncmp(s, "unlimited", 9) == 0) {
                *out = (double)UINT64_MAX;
                return 0;
            }
            if (*s < '0' || *s > '9')
                return -1;
            uint64_t v = 0;
            for (; *s >= '0' && *s <= '9'; s++)
                v = v * 10 + (uint64_t)(*s - '0');
            *out = (double)v;
            return 0;
        }
        p = next ? next + 1 : NULL;
    }
    return -1;
}

/* Read /proc/self/<name> into s->buf through the kept descriptor *fd. */
static long read_self(struct self_state *s, const char *name, int *fd)
{
    if (!*fd) {
        int f = openat(s->self_fd, name, O_RDONLY | O_CLOEXEC);
        if (f < 0)
            return -errno;
        *fd = f + 1;
    }
    ssize_t n = pread(*fd - 1, s->buf, sizeof(s->buf) - 1, 0);
    if (n < 0) {
        int e = errno;
        close(*fd - 1);
        *fd = 0;
        return -e;
    }
    s->buf[n] = '\0';
    return (long)n;
}

static void gauge(struct collect_ctx *ctx, const char *name, const char *help, double v)
{
    metric_fam(ctx->out, name, help, METRIC_GAUGE);
    metric_add0(ctx->out, v);
}

static int self_collect(void *p, struct collect_ctx *ctx)
{
    struct self_state *s = p;
    if (!s->opened) {
        int rc = open_self(s, ctx);
        if (rc != COLLECT_OK)
            return rc;
    }
    double hz = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);

    long n = read_self(s, "stat", &s->stat_fd);
    if (n < 0)
        return collect__fail(ctx, "/proc/self/stat: %s", strerror((int)-n));
    struct collect_pidstat ps;
    const char *err;
    if (collect__parse_pidstat(s->buf, &ps, &err) < 0)
        return collect__fail(ctx, "/proc/self/stat:1: %s", err);

    if (!s->have_start) {
        double bt = boot_time(ctx);
        if (bt < 0)
            return collect__fail(ctx, "/proc/stat: no btime line");
        s->start_time = bt + (double)ps.starttime / hz;
        s->have_start = 1;
    }

    /* Counting entries of /proc/self/fd includes the one the DIR holds, as
     * client_golang's count includes its own. Since Linux 6.2 the
     * directory's size is that count, which spares the listing. */
    double nfds = 0;
    struct stat st;
    if (fstat(dirfd(s->fds), &st) == 0 && st.st_size > 0) {
        nfds = (double)st.st_size;
    } else {
        struct dirent *de;
        rewinddir(s->fds);
        while ((de = readdir(s->fds)))
            if (de->d_name[0] != '.')
                nfds++;
    }

    n = read_self(s, "limits", &s->limits_fd);
    if (n < 0)
        return collect__fail(ctx, "/proc/self/limits: %s", strerror((int)-n));
    double max_fds, max_vm;
    if (soft_limit(s->buf, "Max open files", &max_fds) < 0 ||
        soft_limit(s->buf, "Max address space", &max_vm) < 0)
        return collect__fail(ctx, "/proc/self/limits: no 'Max open files' or 'Max address space'");

    metric_fam(ctx->out, "process_cpu_seconds_total",
               "Total user and system CPU time spent in seconds.", METRIC_COUNTER);
    metric_add0(ctx->out, (double)(ps.utime + ps.stime) / hz);
    gauge(ctx, "process_open_fds", "Number of open file descriptors.", nfds);
    gauge(ctx, "process_max_fds", "Maximum number of open file descriptors.", max_fds);
    gauge(ctx, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double)ps.vsize);
    gauge(ctx, "process_virtual_memory_max_bytes",
          "Maximum amount of virtual memory available in bytes.", max_vm);
    gauge(ctx, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)ps.rss_pages * page);
    gauge(ctx, "process_start_time_seconds",
          "Start time of the process since unix epoch in seconds.", s->start_time);
    gauge(ctx, "sitrep_threads", "Number of OS threads in the sitrep process.",
          (double)ps.num_threads);
    return COLLECT_OK;
}

const struct collect_source collect__src_self = {
    .name = "self",
    .flags = COLLECT_OWN_ROOT,
    .state_size = sizeof(struct self_state),
    .collect = self_collect,
    .release = self_release,
};
