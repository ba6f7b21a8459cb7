/*
 * processes.c: one walk over /proc/<pid>/stat per tick -> processes by state,
 * PIDs and threads in use (node_exporter's "processes" collector, same
 * names), and, for the top N processes by CPU usage, by resident memory and
 * by disk IO rate, what each is doing: sitrep_process_* series labelled
 * {pid, comm} (N = opts->top_processes; at most 3N processes per family, so
 * cardinality stays bounded). docs/COLLECT.md lists the series.
 *
 * CPU usage needs each process's CPU time at the previous tick. Two
 * open-addressing tables keyed by pid hold it: the walk fills the current one
 * while looking pids up in the previous one, then the two swap, so exited
 * processes are dropped without any deletion pass; a pid whose starttime
 * changed was reused. The tables grow only when more processes are alive than
 * ever before and the top-N heaps only up to N, so a steady host allocates
 * nothing per tick.
 *
 * The IO rate needs <pid>/io, which costs about as much as <pid>/stat, so the
 * walk reads it only for processes that may have done IO since it last did:
 * those that ran (utime + stime moved), are in uninterruptible sleep (D),
 * are new, or were picked last tick; every other process is read every
 * IO_REFRESH ticks, staggered by pid. Storage IO is issued (reads) or
 * accounted (dirtied pages) in the process's own context, so one that did not
 * run did none; one whose CPU time is below the clock tick is caught by the
 * D state or the refresh, and its rate is then averaged since its last read.
 * The per-process detail (/proc/<pid>/{io,fd,status}) is read only for the
 * picked processes (fd and status every DETAIL_EVERY_MS), whose io and status
 * files stay open while they are picked (the stat files of all processes stay open, up to
 * FD_CACHE_MAX).
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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
/*
 * Ticks between <pid>/io reads of a process that shows no sign of activity
 * (a backstop: IO shows as CPU time or the D state nearly always). Kernel
 * threads are left out of it. At 150 processes, about 9 reads a tick.
 */
#define IO_REFRESH 10
#define PF_KTHREAD 0x00200000 /* stat flags: a kernel thread */
/*
 * A process picked tick after tick has its open descriptors and context
 * switches (fd/, status: the dearest per-process files, ~5% of the daemon's
 * CPU when read every second) read every DETAIL_EVERY_MS, and on the tick it
 * is first picked; in between those series skip a beat. Nothing alerts on
 * them: they are context, and their rates are taken over minutes.
 */
#define DETAIL_EVERY_MS 5000
/* /proc/<pid>/status is about 1.5 KiB; the CPU and NUMA masks make it grow
 * on big hosts. The context switch lines come last: past this they are lost. */
#define STATUS_MAX 8192

struct pid_slot {
    int32_t pid;       /* 0: empty */
    uint8_t picked;    /* in this tick's detail list (read next tick: picked last tick) */
    uint8_t io_denied; /* <pid>/io cannot be read (another user's process, no root) */
    uint8_t has_io;    /* io_bytes and io_ts_ms hold a reading of this process */
    uint64_t start;    /* starttime (clock ticks after boot): tells reused pids apart */
    uint64_t ticks;    /* utime + stime at ts_ms */
    int64_t ts_ms;
    uint64_t io_bytes; /* read_bytes + write_bytes at io_ts_ms */
    int64_t io_ts_ms;
    int64_t detail_ms; /* when fd/ and status were last read (0: not while picked) */
    int fd;            /* open <pid>/stat + 1, 0 if none (zeroed slots hold no fd) */
    /* Open <pid>/io and <pid>/status + 1, held while the process is picked. */
    int io_fd, status_fd;
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
    uint64_t minflt, majflt;
    int has_io;                 /* io_read and io_write were read this tick */
    uint64_t io_read, io_write; /* <pid>/io read_bytes, write_bytes */
    uint64_t io_total;          /* last known read + write bytes: ranks ties */
    double io_rate;             /* read + write bytes per second since the last reading */
    /* Read for picked processes only; -1: unknown. */
    int64_t fds, ctx_vol, ctx_nonvol;
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
    struct top_heap by_cpu, by_rss, by_io;
    struct top_heap picked; /* the union of the three, with detail: at most 3N */
    uint64_t walks;         /* complete walks so far: staggers the io refresh */
    int fd_sizes;    /* fd directories' sizes are their counts: 0 not known yet, 1 yes, 2 no */
    size_t nfds;     /* cached <pid>/{stat,io,status} descriptors held in the tables */
    char stat[1024]; /* one /proc/<pid>/stat; only its first ~25 fields matter */
    char status[STATUS_MAX];
};

/* Close a cached descriptor (stored + 1; 0: none). */
static void drop_fd(struct processes_state *s, int *fd)
{
    if (*fd) {
        close(*fd - 1);
        *fd = 0;
        s->nfds--;
    }
}

/* Close the cached descriptors a table still holds. */
static void close_table_fds(struct processes_state *s, struct pid_table *t)
{
    for (size_t i = 0; i < s->cap; i++) {
        drop_fd(s, &t->slots[i].fd);
        drop_fd(s, &t->slots[i].io_fd);
        drop_fd(s, &t->slots[i].status_fd);
    }
}

/*
 * Read path into buf (NUL-terminated) through the cached descriptor *fd
 * (stored + 1, 0: none), falling back to opening it; a fresh descriptor is
 * kept in *fd if keep and the cache has room. Returns the bytes read, or
 * -errno (the process is gone, or its file is not ours to read).
 */
static long read_kept(struct processes_state *s, struct collect_ctx *ctx, const char *path, int *fd,
                      int keep, char *buf, size_t cap)
{
    if (*fd) {
        ssize_t n = pread(*fd - 1, buf, cap - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            return (long)n;
        }
        drop_fd(s, fd);
    }
    int f = openat(ctx->proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -errno;
    ssize_t n = read(f, buf, cap - 1);
    int e = errno;
    /* Below a fixture root a file may be replaced or removed while the
     * process "lives": only procfs files are kept (see collect__read). */
    if (n > 0 && keep && ctx->keep_proc && s->nfds < FD_CACHE_MAX) {
        *fd = f + 1;
        s->nfds++;
    } else {
        close(f);
    }
    if (n < 0)
        return -e;
    buf[n] = '\0';
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
    free(s->by_io.v);
    free(s->picked.v);
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

static int io_better(const struct proc_info *a, const struct proc_info *b)
{
    if (a->io_rate != b->io_rate)
        return a->io_rate > b->io_rate;
    if (a->io_total != b->io_total)
        return a->io_total > b->io_total;
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
    long n = collect__read_into(ctx, ctx->proc_fd, file, buf, sizeof(buf));
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
 * The number after key (a whole line's name with its ':', e.g.
 * "\nread_bytes:") in a NUL-terminated "name: value" file such as <pid>/io
 * or <pid>/status. Returns 0, or -1 if the key is absent or not followed by
 * a number. A search rather than a line-by-line parse: status has ~55 lines
 * and only the last two matter.
 */
static int key_u64(const char *buf, const char *key, uint64_t *out)
{
    const char *k = strstr(buf, key);
    if (!k)
        return -1;
    char num[24];
    const char *v = k + strlen(key);
    v += strspn(v, " \t");
    size_t n = strspn(v, "0123456789");
    if (n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, v, n);
    num[n] = '\0';
    return collect__u64(num, out);
}

/*
 * Read <pid>/io (path "<pid>/io") into p and take the rate since the reading
 * slot holds, then make this reading the slot's. since_ms > 0 means the
 * process is new since that walk (it did all of its IO after it); without a
 * reading to compare with, the rate stays 0. An unreadable file (another
 * user's process without root; the kernel checks ptrace access) marks the
 * slot so it is not tried again for this process; a gone process or a file
 * without the two fields just leaves p without io. Neither is an error: the
 * series are skipped for that process.
 */
static void io_sample(struct processes_state *s, struct collect_ctx *ctx, const char *path,
                      struct pid_slot *slot, struct proc_info *p, int64_t since_ms, int keep)
{
    char buf[512]; /* 7 lines of at most 20 digits */
    long n = read_kept(s, ctx, path, &slot->io_fd, keep, buf, sizeof(buf));
    if (n < 0) {
        if (n != -ENOENT && n != -ESRCH)
            slot->io_denied = 1;
        return;
    }
    uint64_t rd, wr;
    /* The '\n' anchors the name to a line start: "cancelled_write_bytes:"
     * ends with "write_bytes:". */
    if (key_u64(buf, "\nread_bytes:", &rd) < 0 || key_u64(buf, "\nwrite_bytes:", &wr) < 0)
        return;
    uint64_t total = rd + wr;
    p->has_io = 1;
    p->io_read = rd;
    p->io_write = wr;
    p->io_total = total;
    p->io_rate = 0;
    if (slot->has_io && ctx->ts_ms > slot->io_ts_ms && total >= slot->io_bytes)
        p->io_rate =
            (double)(total - slot->io_bytes) / ((double)(ctx->ts_ms - slot->io_ts_ms) / 1000.0);
    else if (!slot->has_io && since_ms > 0 && ctx->ts_ms > since_ms)
        p->io_rate = (double)total / ((double)(ctx->ts_ms - since_ms) / 1000.0);
    slot->has_io = 1;
    slot->io_bytes = total;
    slot->io_ts_ms = ctx->ts_ms;
}

/*
 * Open descriptors of a process: the entries of path ("<pid>/fd"), or -1 if
 * it cannot be read (another user's process without root, or gone). Since
 * Linux 6.2 a procfs fd directory's size is the count, which spares the
 * listing; whether this one does is told once by sitrep's own, which always
 * has descriptors open. Elsewhere (older kernels report 0, fixtures are real
 * directories) the entries are counted with getdents64 into a stack buffer,
 * as readdir() would allocate.
 */
static int64_t count_fds(struct processes_state *s, struct collect_ctx *ctx, const char *path)
{
    struct stat st;
    if (!s->fd_sizes) {
        struct statfs sf;
        s->fd_sizes = fstatfs(ctx->proc_fd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC &&
                              fstatat(ctx->proc_fd, "self/fd", &st, 0) == 0 && st.st_size > 0
                          ? 1
                          : 2;
    }
    if (s->fd_sizes == 1)
        return fstatat(ctx->proc_fd, path, &st, 0) == 0 ? (int64_t)st.st_size : -1;
    int fd = openat(ctx->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    _Alignas(struct dirent64) char buf[4096];
    int64_t count = 0;
    ssize_t n;
    while ((n = getdents64(fd, buf, sizeof(buf))) > 0)
        for (ssize_t off = 0; off < n;) {
            const struct dirent64 *d = (const struct dirent64 *)(buf + off);
            if (d->d_name[0] != '.') /* ".", ".."; descriptors are digits */
                count++;
            off += d->d_reclen;
        }
    close(fd);
    return n < 0 ? -1 : count;
}

/*
 * Fill in what the walk does not read for one picked process: io (if the
 * walk skipped it), and, when due (DETAIL_EVERY_MS), open descriptors and
 * context switches. Whatever is not read stays unknown and its series are
 * skipped.
 */
static void detail(struct processes_state *s, struct collect_ctx *ctx, struct proc_info *p,
                   struct pid_slot *slot)
{
    char path[32];
    int pl = snprintf(path, sizeof(path), "%d/", (int)p->pid);
    if (!p->has_io && !slot->io_denied) {
        memcpy(path + pl, "io", 3);
        io_sample(s, ctx, path, slot, p, 0, 1);
    }
    p->fds = p->ctx_vol = p->ctx_nonvol = -1;
    if (slot->detail_ms && ctx->ts_ms - slot->detail_ms < DETAIL_EVERY_MS)
        return;
    slot->detail_ms = ctx->ts_ms;
    memcpy(path + pl, "fd", 3);
    p->fds = count_fds(s, ctx, path);
    memcpy(path + pl, "status", 7);
    uint64_t vol, nonvol;
    if (read_kept(s, ctx, path, &slot->status_fd, 1, s->status, sizeof(s->status)) > 0 &&
        key_u64(s->status, "\nvoluntary_ctxt_switches:", &vol) == 0 &&
        key_u64(s->status, "\nnonvoluntary_ctxt_switches:", &nonvol) == 0) {
        p->ctx_vol = (int64_t)vol;
        p->ctx_nonvol = (int64_t)nonvol;
    }
}

/*
 * Walk proc_root once: count states and threads, remember each process's CPU
 * time (and io, for those that may have done IO), and offer it to the three
 * top-N heaps. Returns COLLECT_OK or _FAILED.
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
        /* The old descriptor fails once its process is gone, even if a new
         * process got the same pid: read_kept then opens the path afresh. */
        int fd = old.fd;
        if (prev) /* the descriptors move to this walk's slot */
            prev->fd = prev->io_fd = prev->status_fd = 0;
        if (read_kept(s, ctx, path, &fd, 1, s->stat, sizeof(s->stat)) <= 0) {
            drop_fd(s, &fd);
            drop_fd(s, &old.io_fd);
            drop_fd(s, &old.status_fd);
            continue; /* exited since readdir saw it */
        }
        struct collect_pidstat ps;
        const char *err = NULL;
        int bad = collect__parse_pidstat(s->stat, &ps, &err) < 0;
        if (!bad && (now->n + 1) * 2 > s->cap)
            tables_grow(s);
        if (bad || table_find(&s->tab[s->cur], s->cap, pid)) {
            drop_fd(s, &fd);
            drop_fd(s, &old.io_fd);
            drop_fd(s, &old.status_fd);
            if (bad)
                return collect__fail(ctx, "%s/%s:1: %s", ctx->opts->proc_root, path, err);
            continue; /* listed twice while the directory changed */
        }
        now = &s->tab[s->cur];
        uint64_t ticks = ps.utime + ps.stime;
        (*npids)++;
        *nthreads += ps.num_threads;
        states[(unsigned char)ps.state]++;

        struct proc_info pi = {.pid = pid,
                               .ticks = ticks,
                               .rss_pages = ps.rss_pages,
                               .threads = ps.num_threads,
                               .minflt = ps.minflt,
                               .majflt = ps.majflt};
        int same = prev && old.start == ps.starttime;
        if (same) {
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
            .pid = pid, .start = ps.starttime, .ticks = ticks, .ts_ms = ctx->ts_ms, .fd = fd};
        if (same) { /* the io reading carries over; a reused pid starts afresh */
            slot->io_denied = old.io_denied;
            slot->has_io = old.has_io;
            slot->io_bytes = old.io_bytes;
            slot->io_ts_ms = old.io_ts_ms;
        }
        /* A picked process keeps its io and status files open; one that was
         * not picked last tick, or whose pid was reused, lets them go. */
        if (same && old.picked) {
            slot->io_fd = old.io_fd;
            slot->status_fd = old.status_fd;
            slot->detail_ms = old.detail_ms;
        } else {
            drop_fd(s, &old.io_fd);
            drop_fd(s, &old.status_fd);
        }
        now->n++;
        if (limit) {
            pi.io_total = slot->io_bytes;
            if (!slot->io_denied && (!slot->has_io || ticks != old.ticks || ps.state == 'D' ||
                                     old.picked || ((uint64_t)pid + s->walks) % IO_REFRESH == 0)) {
                memcpy(path + nl, "/io", 4);
                io_sample(s, ctx, path, slot, &pi,
                          same           ? 0
                          : s->have_prev ? s->prev_ts
                                         : 0,
                          same && old.picked);
            }
            copy_comm(pi.comm, ps.comm, ps.comm_len);
            heap_offer(&s->by_cpu, limit, &pi, cpu_better);
            heap_offer(&s->by_rss, limit, &pi, rss_better);
            /* Only processes doing storage IO now: an idle host adds no
             * series, unlike CPU and RSS, which always rank everyone. */
            if (pi.io_rate > 0)
                heap_offer(&s->by_io, limit, &pi, io_better);
        }
    }
    if (errno)
        return collect__fail(ctx, "%s: readdir: %s", ctx->opts->proc_root, strerror(errno));
    return COLLECT_OK;
}

static int by_pid(const void *a, const void *b)
{
    int32_t x = ((const struct proc_info *)a)->pid, y = ((const struct proc_info *)b)->pid;
    return (x > y) - (x < y);
}

/*
 * Gather the union of the three sorted top lists into s->picked (by CPU
 * first, then those only in the RSS list, then those only in the IO list),
 * each process once, with its detail read.
 */
static void pick(struct processes_state *s, struct collect_ctx *ctx)
{
    struct pid_table *now = &s->tab[s->cur];
    const struct top_heap *lists[] = {&s->by_cpu, &s->by_rss, &s->by_io};
    s->picked.n = 0;
    for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
        for (size_t i = 0; i < lists[k]->n; i++) {
            const struct proc_info *p = &lists[k]->v[i];
            struct pid_slot *slot = table_find(now, s->cap, p->pid);
            if (slot->picked)
                continue;
            slot->picked = 1;
            void *v = s->picked.v;
            util_grow(&v, &s->picked.cap, s->picked.n + 1, sizeof(*s->picked.v));
            s->picked.v = v;
            struct proc_info *d = &s->picked.v[s->picked.n++];
            *d = *p;
            detail(s, ctx, d, slot);
        }
}

/* The sitrep_process_* families with one value per picked process. */
enum pick_value {
    PV_CPU_SECONDS,
    PV_CPU_RATIO,
    PV_RSS,
    PV_THREADS,
    PV_IO_READ,
    PV_IO_WRITE,
    PV_IO_RATE,
    PV_FDS,
    PV_MINFLT,
    PV_MAJFLT,
};

static const struct {
    const char *name, *help;
    enum metric_type type;
} pick_families[] = {
    [PV_CPU_SECONDS] = {"sitrep_process_cpu_seconds_total",
                        "CPU time (user + system) of the top processes by CPU, resident memory or "
                        "disk IO.",
                        METRIC_COUNTER},
    [PV_CPU_RATIO] = {"sitrep_process_cpu_usage_ratio",
                      "CPU seconds per second since the previous tick (1 = one full core), top "
                      "processes.",
                      METRIC_GAUGE},
    [PV_RSS] = {"sitrep_process_resident_memory_bytes", "Resident memory of the top processes.",
                METRIC_GAUGE},
    [PV_THREADS] = {"sitrep_process_threads", "Threads of the top processes.", METRIC_GAUGE},
    [PV_IO_READ] = {"sitrep_process_io_read_bytes_total",
                    "Bytes the top processes caused to be read from storage (/proc/<pid>/io "
                    "read_bytes).",
                    METRIC_COUNTER},
    [PV_IO_WRITE] = {"sitrep_process_io_write_bytes_total",
                     "Bytes the top processes caused to be written to storage (/proc/<pid>/io "
                     "write_bytes, counted when pages are dirtied).",
                     METRIC_COUNTER},
    [PV_IO_RATE] = {"sitrep_process_io_bytes_per_second",
                    "Storage bytes read + written per second since the previous reading, top "
                    "processes.",
                    METRIC_GAUGE},
    [PV_FDS] = {"sitrep_process_open_fds", "Open file descriptors of the top processes.",
                METRIC_GAUGE},
    [PV_MINFLT] = {"sitrep_process_minor_faults_total",
                   "Page faults served without storage IO, top processes.", METRIC_COUNTER},
    [PV_MAJFLT] = {"sitrep_process_major_faults_total",
                   "Page faults that read from storage, top processes.", METRIC_COUNTER},
};

/* The value of family `what` for p; 0 if p has none (unreadable file). */
static int pick_value(const struct proc_info *p, enum pick_value what, double *v)
{
    double hz = (double)sysconf(_SC_CLK_TCK), page = (double)sysconf(_SC_PAGESIZE);
    switch (what) {
    case PV_CPU_SECONDS:
        *v = (double)p->ticks / hz;
        return 1;
    case PV_CPU_RATIO:
        *v = p->ratio;
        return 1;
    case PV_RSS:
        *v = (double)p->rss_pages * page;
        return 1;
    case PV_THREADS:
        *v = (double)p->threads;
        return 1;
    case PV_IO_READ:
        *v = (double)p->io_read;
        return p->has_io;
    case PV_IO_WRITE:
        *v = (double)p->io_write;
        return p->has_io;
    case PV_IO_RATE:
        *v = p->io_rate;
        return p->has_io;
    case PV_FDS:
        *v = (double)p->fds;
        return p->fds >= 0;
    case PV_MINFLT:
        *v = (double)p->minflt;
        return 1;
    case PV_MAJFLT:
        *v = (double)p->majflt;
        return 1;
    }
    return 0;
}

/* Every sitrep_process_* family over s->picked. */
static void emit_picked(struct processes_state *s, struct collect_ctx *ctx)
{
    for (size_t f = 0; f < ARRAY_SIZE(pick_families); f++) {
        metric_fam(ctx->out, pick_families[f].name, pick_families[f].help, pick_families[f].type);
        for (size_t i = 0; i < s->picked.n; i++) {
            const struct proc_info *p = &s->picked.v[i];
            double v;
            if (!pick_value(p, (enum pick_value)f, &v))
                continue;
            char pid[16];
            snprintf(pid, sizeof(pid), "%d", (int)p->pid);
            metric_add2(ctx->out, v, "pid", pid, "comm", p->comm);
        }
    }
    metric_fam(ctx->out, "sitrep_process_context_switches_total",
               "Context switches of the top processes: voluntary (blocked, waiting for IO or a "
               "lock) and nonvoluntary (preempted).",
               METRIC_COUNTER);
    for (size_t i = 0; i < s->picked.n; i++) {
        const struct proc_info *p = &s->picked.v[i];
        if (p->ctx_vol < 0)
            continue;
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)p->pid);
        struct metric_label l[3] = {{"pid", pid}, {"comm", p->comm}, {"kind", "voluntary"}};
        metric_add(ctx->out, (double)p->ctx_vol, 3, l);
        l[2].value = "nonvoluntary";
        metric_add(ctx->out, (double)p->ctx_nonvol, 3, l);
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
    s->by_cpu.n = s->by_rss.n = s->by_io.n = 0;
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
        heap_sort(&s->by_io, io_better);
        pick(s, ctx);
        /* Emitted in pid order, not rank order: while the same processes
         * stay on top, each family's run is the same as the last tick's and
         * the store reuses its series ids (src/tsdb/shape.c). */
        qsort(s->picked.v, s->picked.n, sizeof(*s->picked.v), by_pid);
        emit_picked(s, ctx);
    }
    s->cur = !s->cur;
    s->have_prev = 1;
    s->walks++;
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
