/*
 * collector.c: the collector thread and the table of sources. Each tick runs
 * every enabled source into one batch, adds the collector's own timings,
 * hands the batch to the sink and swaps it into the published snapshot.
 *
 * Timing: ticks fall on whole multiples of the interval in wall-clock time
 * (the sleep is absolute, so work time never accumulates into drift). If a
 * cycle overruns, the missed ticks are counted and skipped, never queued.
 */
#include "collect/collect_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static const struct collect_source *const sources[] = {
    &collect__src_stat,       &collect__src_loadavg,    &collect__src_meminfo,
    &collect__src_vmstat,     &collect__src_pressure,   &collect__src_vfs,
    &collect__src_netdev,     &collect__src_netclass,   &collect__src_diskstats,
    &collect__src_filesystem, &collect__src_netstat,    &collect__src_sockstat,
    &collect__src_processes,  &collect__src_softnet,    &collect__src_conntrack,
    &collect__src_entropy,    &collect__src_timex,      &collect__src_uname,
    &collect__src_os,         &collect__src_qdisc,      &collect__src_slabinfo,
    &collect__src_self,       &collect__src_interrupts, &collect__src_softirqs,
    &collect__src_schedstat,
};
#define NSOURCES ARRAY_SIZE(sources)

struct source_run {
    const struct collect_source *src;
    void *state;
    int enabled;
    int failing;       /* in a failure streak: already logged */
    double duration_s; /* last run */
    uint64_t errors;   /* failed runs */
    int last_ok;
};

struct collect {
    struct collect_opts opts;
    char *proc_root, *sys_root, *rootfs;
    struct collect_ctx ctx;
    struct source_run runs[NSOURCES];
    struct metric_buf work;

    pthread_mutex_t lock; /* guards published */
    struct metric_buf published;

    pthread_t thread;
    int running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;

    uint64_t ticks, missed;
    double cycle_s, cycle_cpu_s;
};

const char *const *collect_source_names(size_t *n)
{
    static const char *names[NSOURCES + 1];
    for (size_t i = 0; i < NSOURCES; i++)
        names[i] = sources[i]->name;
    *n = NSOURCES;
    return names;
}

/* Whether fd is a directory on a filesystem of this magic number. */
static int fs_is(int fd, long magic)
{
    struct statfs sf;
    return fd >= 0 && fstatfs(fd, &sf) == 0 && sf.f_type == magic;
}

static int is_disabled(const struct collect_opts *o, const char *name)
{
    for (size_t i = 0; i < o->ndisabled; i++)
        if (strcmp(o->disabled[i], name) == 0)
            return 1;
    return 0;
}

struct collect *collect_new(const struct collect_opts *opts)
{
    struct collect *c = xcalloc(1, sizeof(*c));
    c->opts = *opts;
    c->proc_root = xstrdup(opts->proc_root ? opts->proc_root : "/proc");
    c->sys_root = xstrdup(opts->sys_root ? opts->sys_root : "/sys");
    c->rootfs = xstrdup(opts->rootfs ? opts->rootfs : "");
    c->opts.proc_root = c->proc_root;
    c->opts.sys_root = c->sys_root;
    c->opts.rootfs = c->rootfs;
    c->opts.disabled = NULL; /* only read here, below */
    c->opts.ndisabled = 0;
    if (c->opts.interval_s <= 0)
        c->opts.interval_s = 1;
    if (c->opts.top_processes < 0)
        c->opts.top_processes = 0;
    else if (!opts->top_processes)
        c->opts.top_processes = 10;

    c->ctx.opts = &c->opts;
    c->ctx.proc_fd = open(c->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    c->ctx.sys_fd = open(c->sys_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->ctx.proc_fd < 0)
        log_error("collect: cannot open %s: %s; host sources disabled", c->proc_root,
                  strerror(errno));
    if (c->ctx.sys_fd < 0)
        log_warn("collect: cannot open %s: %s; /sys sources skipped", c->sys_root, strerror(errno));
    c->ctx.keep_proc = fs_is(c->ctx.proc_fd, PROC_SUPER_MAGIC);
    c->ctx.keep_sys = fs_is(c->ctx.sys_fd, SYSFS_MAGIC);
    for (size_t i = 0; i < NSOURCES; i++) {
        struct source_run *r = &c->runs[i];
        r->src = sources[i];
        r->state = r->src->state_size ? xcalloc(1, r->src->state_size) : NULL;
        r->enabled = !is_disabled(opts, r->src->name);
        char err[256];
        if (r->enabled && r->src->init && r->src->init(r->state, opts, err, sizeof(err)) < 0) {
            log_error("collect: %s: %s; source switched off", r->src->name, err);
            r->enabled = 0;
        }
    }
    /* The field regexes were compiled by the sources' init above. */
    c->opts.vmstat_fields = c->opts.netstat_fields = NULL;
    metric_buf_init(&c->work);
    metric_buf_init(&c->published);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->stop_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&c->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    return c;
}

void collect_free(struct collect *c)
{
    if (!c)
        return;
    collect_stop(c);
    for (size_t i = 0; i < NSOURCES; i++) {
        if (c->runs[i].src->release)
            c->runs[i].src->release(c->runs[i].state);
        free(c->runs[i].state);
    }
    collect__forget(&c->ctx);
    if (c->ctx.proc_fd >= 0)
        close(c->ctx.proc_fd);
    if (c->ctx.sys_fd >= 0)
        close(c->ctx.sys_fd);
    free(c->ctx.buf);
    metric_buf_release(&c->work);
    metric_buf_release(&c->published);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->stop_lock);
    pthread_cond_destroy(&c->stop_cond);
    free(c->proc_root);
    free(c->sys_root);
    free(c->rootfs);
    free(c);
}

static void run_source(struct collect *c, struct source_run *r)
{
    c->ctx.err[0] = '\0';
    struct metric_mark mark;
    metric_buf_mark(&c->work, &mark);
    int64_t t0 = util_mono_ns();
    int rc = c->ctx.proc_fd < 0 && !(r->src->flags & COLLECT_OWN_ROOT)
                 ? COLLECT_MISSING
                 : r->src->collect(r->state, &c->ctx);
    r->duration_s = (double)(util_mono_ns() - t0) / 1e9;
    r->last_ok = rc == COLLECT_OK;
    if (rc != COLLECT_OK)
        metric_buf_rollback(&c->work, &mark);
    if (rc == COLLECT_OK) {
        if (r->failing)
            log_info("collect: %s: recovered", r->src->name);
        r->failing = 0;
    } else if (rc == COLLECT_MISSING) {
        log_warn("collect: %s: source not available (%s); skipping it", r->src->name,
                 c->ctx.err[0] ? c->ctx.err : "missing");
        r->enabled = 0;
        r->errors++;
    } else {
        if (!r->failing)
            log_warn("collect: %s: %s (logged once until it recovers)", r->src->name,
                     c->ctx.err[0] ? c->ctx.err : "failed");
        r->failing = 1;
        r->errors++;
    }
}

static void emit_self(struct collect *c)
{
    struct metric_buf *b = &c->work;
    metric_fam(b, "sitrep_collector_duration_seconds",
               "Wall time the host collection source took in the last cycle.", METRIC_GAUGE);
    for (size_t i = 0; i < NSOURCES; i++)
        if (c->runs[i].enabled)
            metric_add1(b, c->runs[i].duration_s, "collector", c->runs[i].src->name);
    metric_fam(b, "sitrep_collector_success",
               "Whether the source succeeded in the last cycle (0 also when disabled).",
               METRIC_GAUGE);
    for (size_t i = 0; i < NSOURCES; i++)
        metric_add1(b, c->runs[i].enabled && c->runs[i].last_ok, "collector", c->runs[i].src->name);
    metric_fam(b, "sitrep_collector_errors_total",
               "Cycles in which the source failed or was found missing.", METRIC_COUNTER);
    for (size_t i = 0; i < NSOURCES; i++)
        metric_add1(b, (double)c->runs[i].errors, "collector", c->runs[i].src->name);
    metric_fam(b, "sitrep_collect_cycle_duration_seconds",
               "Wall time of the previous full collection cycle.", METRIC_GAUGE);
    metric_add0(b, c->cycle_s);
    metric_fam(b, "sitrep_collect_cycle_cpu_seconds",
               "CPU time the collector thread spent in the previous full cycle.", METRIC_GAUGE);
    metric_add0(b, c->cycle_cpu_s);
    metric_fam(b, "sitrep_collect_ticks_total", "Collection cycles run.", METRIC_COUNTER);
    metric_add0(b, (double)c->ticks);
    metric_fam(b, "sitrep_collect_missed_ticks_total",
               "Ticks skipped because a cycle overran its interval.", METRIC_COUNTER);
    metric_add0(b, (double)c->missed);
}

void collect_once(struct collect *c, int64_t ts_ms)
{
    int64_t w0 = util_mono_ns(), cpu0 = util_thread_cpu_ns();
    metric_buf_reset(&c->work, ts_ms);
    c->ctx.out = &c->work;
    c->ctx.ts_ms = ts_ms;
    for (size_t i = 0; i < NSOURCES; i++)
        if (c->runs[i].enabled)
            run_source(c, &c->runs[i]);
    c->ticks++;
    emit_self(c);
    if (c->opts.sink)
        c->opts.sink(c->opts.sink_ctx, &c->work);
    pthread_mutex_lock(&c->lock);
    metric_buf_swap(&c->work, &c->published);
    pthread_mutex_unlock(&c->lock);
    c->cycle_s = (double)(util_mono_ns() - w0) / 1e9;
    c->cycle_cpu_s = (double)(util_thread_cpu_ns() - cpu0) / 1e9;
}

const struct metric_buf *collect_last(struct collect *c)
{
    return &c->published;
}

int collect_expose(struct collect *c, struct sbuf *out)
{
    pthread_mutex_lock(&c->lock);
    const struct metric_buf *b = &c->published;
    int rc = metric_expose(&b, 1, out);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Sleep until wall-clock ms `at`; returns 1 if asked to stop meanwhile. */
static int sleep_until(struct collect *c, int64_t at)
{
    struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000};
    pthread_mutex_lock(&c->stop_lock);
    while (!c->stop) {
        if (pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &ts) == ETIMEDOUT)
            break;
    }
    int stop = c->stop;
    pthread_mutex_unlock(&c->stop_lock);
    return stop;
}

static void *thread_main(void *arg)
{
    struct collect *c = arg;
    int64_t step = (int64_t)c->opts.interval_s * 1000;
    int64_t next = (util_now_ms() / step + 1) * step;
    while (!sleep_until(c, next)) {
        collect_once(c, next);
        int64_t now = util_now_ms();
        next += step;
        if (now >= next) {
            /* Overran (or the clock jumped forward): skip to the next slot. */
            int64_t slot = (now / step + 1) * step;
            c->missed += (uint64_t)((slot - next) / step);
            next = slot;
        } else if (next - now > 2 * step) {
            next = (now / step + 1) * step; /* the clock stepped back */
        }
    }
    return NULL;
}

int collect_start(struct collect *c)
{
    c->stop = 0;
    int e = pthread_create(&c->thread, NULL, thread_main, c);
    if (e)
        return log_error("collect: cannot start thread: %s", strerror(e));
    c->running = 1;
    return 0;
}

void collect_stop(struct collect *c)
{
    if (!c->running)
        return;
    pthread_mutex_lock(&c->stop_lock);
    c->stop = 1;
    pthread_cond_signal(&c->stop_cond);
    pthread_mutex_unlock(&c->stop_lock);
    pthread_join(c->thread, NULL);
    c->running = 0;
}
