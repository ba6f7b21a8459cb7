/*
 * processes.c: one walk over /proc/<pid>/stat per tick -> processes by state,
 * PIDs and threads in use (node_exporter's "processes" collector, same
 * names), and the top N processes by CPU usage and by resident memory as
 * sitrep_process_* series labelled {pid, comm} (N = opts->top_processes; at
 * most 2N series per family, so cardinality stays bounded).
 *
 * CPU usage needs each process's CPU time at the previous tick. Two
 * open-addressing tables keyed by pid hold it: the walk fills the current one
 * while looking pids up in the previous one, then the two swap, so exited
 * processes are dropped without any deletion pass; a pid whose starttime
 * changed was reused. The tables grow only when more processes are alive than
 * ever before and the top-N heaps only up to N, so a steady host allocates
 * nothing per tick.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMM_MAX  64 /* kernel threads' names can be longer than TASK_COMM_LEN */
#define TABLE_MIN 1024
/*
 * Open /proc/<pid>/stat files kept between ticks and re-read with pread:
 * opening and closing them was half of this source's cost. Capped so a host
 * with many processes cannot push sitrep towards its file descriptor limit;
 * processes past the cap are opened and closed each tick as before.
 */
#define FD_CACHE_MAX 256

struct pid_slot {
    int32_t pid;    /* 0: empty */
    int32_t picked; /* already in this tick's top-N output */
    uint64_t start; /* starttime (clock ticks after boot): tells reused pids apart */
    uint64_t ticks; /* utime + stime at ts_ms */
    int64_t ts_ms;
    int fd; /* open <pid>/stat + 1, 0 if none (zeroed slots hold no fd) */
};

struct pid_table {
    struct pid_slot *slots; /* capacity is processes_state.cap */
    size_t n;
};

/* What the top-N series report about one process. */
struct proc_info {
    int32_t pid;
    uint64_t ticks; /* utime + stime */
    double ratio;   /* CPU seconds per wall second since the previous tick */
    uint64_t rss_pages;
    uint64_t threads;
    char comm[COMM_MAX];
};

typedef int (*better_fn)(const struct proc_info *a, const struct proc_info *b);

/* A min-heap of the best n seen so far: the worst of them at the root. */
struct top_heap {
    struct proc_info *v;
    size_t n, cap;
};

struct processes_state {
    DIR *dir; /* on proc_root, rewound every tick */
    struct pid_table tab[2];
    size_t cap; /* slots per table, a power of two (0 before the first tick) */
    int cur;    /* tab[cur] is being filled, tab[!cur] is the previous walk */
    int have_prev;
    int64_t prev_ts; /* timestamp of the last complete walk */
    struct top_heap by_cpu, by_rss;
    size_t nfds;     /* cached <pid>/stat descriptors held in the tables */
    char stat[1024]; /* one /proc/<pid>/stat; only its first ~25 fields matter */
};

/* Close the cached descriptors a table still holds. */
static void close_table_fds(struct processes_state *s, struct pid_table *t)
{
    for (size_t i = 0; i < s->cap; i++)
        if (t->slots[i].fd) {
            close(t->slots[i].fd - 1);
            t->slots[i].fd = 0;
            s->nfds--;
        }
}

/*
 * Read <pid>/stat into s->stat through the descriptor the previous walk kept
 * (*fd, or -1), falling back to opening it by path: the old descriptor fails
 * once its process is gone, even if a new process got the same pid. On
 * return *fd is the descriptor to keep (or -1). Returns the bytes read, <= 0
 * if the process is gone.
 */
static long read_stat(struct processes_state *s, struct collect_ctx *ctx, const char *path, int *fd)
{
    ssize_t n = -1;
    if (*fd >= 0) {
        n = pread(*fd, s->stat, sizeof(s->stat) - 1, 0);
        if (n <= 0) {
            close(*fd);
            s->nfds--;
            *fd = -1;
        }
    }
    if (*fd < 0) {
        int f = openat(ctx->proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (f < 0)
            return -1;
        n = read(f, s->stat, sizeof(s->stat) - 1);
        if (n > 0 && s->nfds < FD_CACHE_MAX) {
            *fd = f;
            s->nfds++;
        } else {
            close(f);
        }
    }
    if (n > 0)
        s->stat[n] = '\0';
    return (long)n;
}

static void processes_release(void *p)
{
    struct processes_state *s = p;
    close_table_fds(s, &s->tab[0]);
    close_table_fds(s, &s->tab[1]);
    if (s->dir)
        closedir(s->dir);
    free(s->tab[0].slots);
    free(s->tab[1].slots);
    free(s->by_cpu.v);
    free(s->by_rss.v);
}

static size_t pid_hash(int32_t pid)
{
    return (size_t)((uint32_t)pid * 2654435761u);
}

static struct pid_slot *table_find(const struct pid_table *t, size_t cap, int32_t pid)
{
    if (!cap)
        return NULL;
    for (size_t i = pid_hash(pid) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (t->slots[i].pid == pid)
            return &t->slots[i];
        if (t->slots[i].pid == 0)
            return NULL;
    }
}

/* The empty slot where pid belongs (pid must be absent; the table must have room). */
static struct pid_slot *table_slot(struct pid_table *t, size_t cap, int32_t pid)
{
    size_t i = pid_hash(pid) & (cap - 1);
    while (t->slots[i].pid)
        i = (i + 1) & (cap - 1);
    return &t->slots[i];
}

/* Double both tables (rehashing their entries): only when the host has more
 * processes than it ever had, keeping the load factor at most one half. */
static void tables_grow(struct processes_state *s)
{
    size_t ncap = s->cap ? s->cap * 2 : TABLE_MIN;
    for (int k = 0; k < 2; k++) {
        struct pid_slot *old = s->tab[k].slots;
        struct pid_table nt = {.slots = xcalloc(ncap, sizeof(*nt.slots)), .n = s->tab[k].n};
        for (size_t i = 0; i < s->cap; i++)
            if (old[i].pid)
                *table_slot(&nt, ncap, old[i].pid) = old[i];
        free(old);
        s->tab[k] = nt;
    }
    s->cap = ncap;
}

static int cpu_better(const struct proc_info *a, const struct proc_info *b)
{
    if (a->ratio != b->ratio)
        return a->ratio > b->ratio;
    if (a->ticks != b->ticks) /* first tick: all ratios are 0, rank by total */
        return a->ticks > b->ticks;
    return a->pid < b->pid;
}

static int rss_better(const struct proc_info *a, const struct proc_info *b)
{
    if (a->rss_pages != b->rss_pages)
        return a->rss_pages > b->rss_pages;
    return a->pid < b->pid;
}

static void swap_info(struct proc_info *a, struct proc_info *b)
{
    struct proc_info t = *a;
    *a = *b;
    *b = t;
}

static void sift_down(struct proc_info *v, size_t n, size_t i, better_fn better)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&v[w], &v[l]))
            w = l;
        if (r < n && better(&v[w], &v[r]))
            w = r;
        if (w == i)
            return;
        swap_info(&v[i], &v[w]);
        i = w;
    }
}

/* Keep p if it is among the best `limit` seen so far: O(log limit). */
static void heap_offer(struct top_heap *h, size_t limit, const struct proc_info *p,
                       better_fn better)
{
    if (h->n < limit) {
        void *v = h->v;
        util_grow(&v, &h->cap, h->n + 1, sizeof(*h->v));
        h->v = v;
        size_t i = h->n++;
        h->v[i] = *p;
        while (i > 0 && better(&h->v[(i - 1) / 2], &h->v[i])) {
            swap_info(&h->v[(i - 1) / 2], &h->v[i]);
            i = (i - 1) / 2;
        }
    } else if (limit && better(p, &h->v[0])) {
        h->v[0] = *p;
        sift_down(h->v, h->n, 0, better);
    }
}

/* Sort the heap in place, best first (heapsort: no allocation). */
static void heap_sort(struct top_heap *h, better_fn better)
{
    for (size_t end = h->n; end > 1; end--) {
        swap_info(&h->v[0], &h->v[end - 1]);
        sift_down(h->v, end - 1, 0, better);
    }
}

/* Length of the valid UTF-8 character at s (n bytes left), or 0 if invalid. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (k > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t j = 2; j < k; j++)
        if (s[j] < 0x80 || s[j] > 0xbf)
            return 0;
    return k;
}

/* Copy a comm into a label value (COMM_MAX bytes): valid UTF-8 only, stray
 * bytes become '?', and a character is never cut in two. */
static void copy_comm(char *dst, const char *src, size_t len)
{
    const unsigned char *u = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_char(u + i, len - i);
        size_t w = k ? k : 1;
        if (o + w >= COMM_MAX)
            break;
        if (k)
            memcpy(dst + o, src + i, k);
        else
            dst[o] = '?';
        o += w;
        i += w;
    }
    dst[o] = '\0';
}

/* A positive decimal pid as /proc lists it, or 0. */
static int32_t pid_of(const char *name)
{
    uint64_t v;
    if (name[0] == '0' || strlen(name) > 10 || collect__u64(name, &v) < 0 || v == 0 ||
        v > INT32_MAX)
        return 0;
    return (int32_t)v;
}

/* Optional limit file (sys/kernel/pid_max etc.): absent is fine, garbage is not. */
static int emit_limit(struct collect_ctx *ctx, const char *file, const char *name, const char *help)
{
    char buf[32];
    long n = collect__read_small(ctx->proc_fd, file, buf, sizeof(buf));
    if (n < 0)
        return COLLECT_OK;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    uint64_t v;
    if (collect__u64(buf, &v) < 0)
        return collect__fail(ctx, "%s/%s:1: bad number '%.20s'", ctx->opts->proc_root, file, buf);
    metric_fam(ctx->out, name, help, METRIC_GAUGE);
    metric_add0(ctx->out, (double)v);
    return COLLECT_OK;
}

/*
 * Walk proc_root once: count states and threads, remember each process's CPU
 * time, and offer it to the two top-N heaps. Returns COLLECT_OK or _FAILED.
 */
static int walk(struct processes_state *s, struct collect_ctx *ctx, uint32_t *states,
                uint64_t *npids, uint64_t *nthreads)
{
    double hz = (double)sysconf(_SC_CLK_TCK);
    size_t limit = (size_t)ctx->opts->top_processes;
    struct pid_table *now = &s->tab[s->cur];
    struct dirent *de;
    rewinddir(s->dir);
    for (;;) {
        errno = 0;
        if (!(de = readdir(s->dir)))
            break;
        int32_t pid = pid_of(de->d_name);
        if (!pid)
            continue;
        char path[32]; /* "<d_name>/stat": pid_of accepted d_name, so it is short digits */
        size_t nl = strlen(de->d_name);
        memcpy(path, de->d_name, nl);
        memcpy(path + nl, "/stat", 6);
        /* The previous walk's record of this pid (copied: the tables may grow). */
        struct pid_slot *prev = table_find(&s->tab[!s->cur], s->cap, pid);
        struct pid_slot old = prev ? *prev : (struct pid_slot){0};
        int fd = old.fd - 1;
        if (prev)
            prev->fd = 0; /* the descriptor moves to this walk's slot */
        if (read_stat(s, ctx, path, &fd) <= 0)
            continue; /* exited since readdir saw it */
        struct collect_pidstat ps;
        const char *err = NULL;
        int bad = collect__parse_pidstat(s->stat, &ps, &err) < 0;
        if (!bad && (now->n + 1) * 2 > s->cap)
            tables_grow(s);
        if (bad || table_find(&s->tab[s->cur], s->cap, pid)) {
            if (fd >= 0) {
                close(fd);
                s->nfds--;
            }
            if (bad)
                return collect__fail(ctx, "%s/%s:1: %s", ctx->opts->proc_root, path, err);
            continue; /* listed twice while the directory changed */
        }
        now = &s->tab[s->cur];
        uint64_t ticks = ps.utime + ps.stime;
        (*npids)++;
        *nthreads += ps.num_threads;
        states[(unsigned char)ps.state]++;

        struct proc_info pi = {
            .pid = pid, .ticks = ticks, .rss_pages = ps.rss_pages, .threads = ps.num_threads};
        if (prev && old.start == ps.starttime) {
            if (ticks > old.ticks && ctx->ts_ms > old.ts_ms)
                pi.ratio =
                    (double)(ticks - old.ticks) / hz / ((double)(ctx->ts_ms - old.ts_ms) / 1000.0);
        } else if (s->have_prev && ctx->ts_ms > s->prev_ts) {
            /* New (or reused pid): it started after the previous walk, so
             * all of its CPU time falls within this interval. */
            pi.ratio = (double)ticks / hz / ((double)(ctx->ts_ms - s->prev_ts) / 1000.0);
        }
        struct pid_slot *slot = table_slot(now, s->cap, pid);
        *slot = (struct pid_slot){
            .pid = pid, .start = ps.starttime, .ticks = ticks, .ts_ms = ctx->ts_ms, .fd = fd + 1};
        now->n++;
        if (limit) {
            copy_comm(pi.comm, ps.comm, ps.comm_len);
            heap_offer(&s->by_cpu, limit, &pi, cpu_better);
            heap_offer(&s->by_rss, limit, &pi, rss_better);
        }
    }
    if (errno)
        return collect__fail(ctx, "%s: readdir: %s", ctx->opts->proc_root, strerror(errno));
    return COLLECT_OK;
}

/* Emit one sitrep_process_* family over the top processes (by CPU, then the
 * ones only in the RSS list); `picked` marks pids already emitted. */
static void emit_top(struct processes_state *s, struct collect_ctx *ctx, const char *name,
                     const char *help, enum metric_type type, int what)
{
    double hz = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    struct pid_table *now = &s->tab[s->cur];
    metric_fam(ctx->out, name, help, type);
    for (int k = 0; k < 2; k++) {
        const struct top_heap *h = k ? &s->by_rss : &s->by_cpu;
        for (size_t i = 0; i < h->n; i++) {
            const struct proc_info *p = &h->v[i];
            struct pid_slot *slot = table_find(now, s->cap, p->pid);
            if (slot->picked == what + 1)
                continue;
            slot->picked = what + 1;
            double v = what == 0   ? (double)p->ticks / hz
                       : what == 1 ? p->ratio
                       : what == 2 ? (double)p->rss_pages * page
                                   : (double)p->threads;
            char pid[16];
            snprintf(pid, sizeof(pid), "%d", (int)p->pid);
            metric_add2(ctx->out, v, "pid", pid, "comm", p->comm);
        }
    }
}

static int processes_collect(void *p, struct collect_ctx *ctx)
{
    struct processes_state *s = p;
    if (!s->dir) {
        int fd = openat(ctx->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(s->dir = fdopendir(fd))) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return collect__fail(ctx, "%s: %s", ctx->opts->proc_root, strerror(e));
        }
    }
    if (s->cap)
        memset(s->tab[s->cur].slots, 0, s->cap * sizeof(*s->tab[s->cur].slots));
    s->tab[s->cur].n = 0;
    s->by_cpu.n = s->by_rss.n = 0;
    uint32_t states[256] = {0};
    uint64_t npids = 0, nthreads = 0;
    if (walk(s, ctx, states, &npids, &nthreads) != COLLECT_OK) {
        /* The previous walk stays the reference; the descriptors moved into
         * this one would be lost when it is cleared next tick. */
        close_table_fds(s, &s->tab[s->cur]);
        return COLLECT_FAILED;
    }
    close_table_fds(s, &s->tab[!s->cur]); /* processes that are gone */

    struct metric_buf *b = ctx->out;
    metric_fam(b, "node_processes_state", "Number of processes in each state.", METRIC_GAUGE);
    for (int c = 0; c < 256; c++)
        if (states[c]) {
            char st[2] = {(char)c, '\0'};
            metric_add1(b, states[c], "state", st);
        }
    metric_fam(b, "node_processes_pids", "Number of PIDs", METRIC_GAUGE);
    metric_add0(b, (double)npids);
    metric_fam(b, "node_processes_threads", "Allocated threads in system", METRIC_GAUGE);
    metric_add0(b, (double)nthreads);

    if (ctx->opts->top_processes > 0) {
        heap_sort(&s->by_cpu, cpu_better);
        heap_sort(&s->by_rss, rss_better);
        emit_top(s, ctx, "sitrep_process_cpu_seconds_total",
                 "CPU time (user + system) of the top processes by CPU or by resident memory.",
                 METRIC_COUNTER, 0);
        emit_top(s, ctx, "sitrep_process_cpu_usage_ratio",
                 "CPU seconds per second since the previous tick (1 = one full core), top "
                 "processes.",
                 METRIC_GAUGE, 1);
        emit_top(s, ctx, "sitrep_process_resident_memory_bytes",
                 "Resident memory of the top processes by CPU or by resident memory.", METRIC_GAUGE,
                 2);
        emit_top(s, ctx, "sitrep_process_threads",
                 "Threads of the top processes by CPU or by resident memory.", METRIC_GAUGE, 3);
    }
    s->cur = !s->cur;
    s->have_prev = 1;
    s->prev_ts = ctx->ts_ms;

    if (emit_limit(ctx, "sys/kernel/threads-max", "node_processes_max_threads",
                   "Limit of threads in the system") != COLLECT_OK ||
        emit_limit(ctx, "sys/kernel/pid_max", "node_processes_max_processes",
                   "Number of max PIDs limit") != COLLECT_OK)
        return COLLECT_FAILED;
    return COLLECT_OK;
}

const struct collect_source collect__src_processes = {
    .name = "processes",
    .state_size = sizeof(struct processes_state),
    .collect = processes_collect,
    .release = processes_release,
};
