/*
 * collect_util.c: reading and tokenising /proc and /sys files for the
 * sources. Everything here parses in place in a reused buffer so a tick
 * allocates nothing once the buffer has grown to the largest file.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * At most this many files are kept open: the host sources read about 50.
 * Paths longer than KEPT_PATH are simply reopened each time.
 */
#define KEPT_MAX 96

static struct collect__kept *kept_find(struct collect_ctx *ctx, int dirfd, const char *path)
{
    for (size_t i = 0; i < ctx->nkept; i++)
        if (ctx->kept[i].dirfd == dirfd && strcmp(ctx->kept[i].path, path) == 0)
            return &ctx->kept[i];
    return NULL;
}

/* Whether fd (just opened and read) may be kept: it becomes ctx's. */
static int kept_add(struct collect_ctx *ctx, int dirfd, const char *path, int fd)
{
    int keep = (dirfd == ctx->proc_fd && ctx->keep_proc) || (dirfd == ctx->sys_fd && ctx->keep_sys);
    if (!keep || ctx->nkept >= KEPT_MAX || strlen(path) >= KEPT_PATH)
        return 0;
    if (!ctx->kept)
        ctx->kept = xcalloc(KEPT_MAX, sizeof(*ctx->kept));
    struct collect__kept *k = &ctx->kept[ctx->nkept++];
    k->dirfd = dirfd;
    k->fd = fd;
    snprintf(k->path, sizeof(k->path), "%s", path);
    return 1;
}

static void kept_drop(struct collect_ctx *ctx, struct collect__kept *k)
{
    close(k->fd);
    *k = ctx->kept[--ctx->nkept];
}

void collect__forget(struct collect_ctx *ctx)
{
    while (ctx->nkept)
        kept_drop(ctx, &ctx->kept[0]);
    free(ctx->kept);
    ctx->kept = NULL;
}

/* Read fd whole from offset 0 into ctx->buf. Returns the length or -errno. */
static long read_whole(struct collect_ctx *ctx, int fd, const char *path)
{
    size_t len = 0;
    for (;;) {
        if (ctx->buf_cap - len < 4096) {
            if (ctx->buf_cap >= COLLECT_MAX_FILE) {
                snprintf(ctx->err, sizeof(ctx->err), "%s: larger than %u bytes", path,
                         COLLECT_MAX_FILE);
                return -EFBIG;
            }
            void *p = ctx->buf;
            util_grow(&p, &ctx->buf_cap, len + 8192, 1);
            ctx->buf = p;
        }
        ssize_t n = pread(fd, ctx->buf + len, ctx->buf_cap - len - 1, (off_t)len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            snprintf(ctx->err, sizeof(ctx->err), "%s: read: %s", path, strerror(e));
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    ctx->buf[len] = '\0';
    return (long)len;
}

/* Read one buffer's worth of fd from offset 0 into the buffer arg points to. */
struct small {
    char *buf;
    size_t cap;
};

static long read_small_fd(struct collect_ctx *ctx, int fd, const char *path, void *arg)
{
    struct small *sm = arg;
    ssize_t n;
    while ((n = pread(fd, sm->buf, sm->cap - 1, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0) {
        int e = errno;
        snprintf(ctx->err, sizeof(ctx->err), "%s: read: %s", path, strerror(e));
        return -e;
    }
    sm->buf[n] = '\0';
    return (long)n;
}

static long read_whole_fd(struct collect_ctx *ctx, int fd, const char *path, void *arg)
{
    (void)arg;
    return read_whole(ctx, fd, path);
}

/* Read dirfd/path with fn through a kept descriptor where there is one. */
static long read_via(struct collect_ctx *ctx, int dirfd, const char *path,
                     long (*fn)(struct collect_ctx *, int, const char *, void *), void *arg)
{
    struct collect__kept *k = kept_find(ctx, dirfd, path);
    if (k) {
        long n = fn(ctx, k->fd, path, arg);
        if (n >= 0)
            return n;
        /* Gone or replaced (an interface removed, say): try the path afresh. */
        kept_drop(ctx, k);
    }
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(ctx->err, sizeof(ctx->err), "%s: %s", path, strerror(e));
        return -e;
    }
    long n = fn(ctx, fd, path, arg);
    if (n < 0 || !kept_add(ctx, dirfd, path, fd))
        close(fd);
    return n;
}

long collect__read(struct collect_ctx *ctx, int dirfd, const char *path)
{
    return read_via(ctx, dirfd, path, read_whole_fd, NULL);
}

long collect__read_into(struct collect_ctx *ctx, int dirfd, const char *path, char *buf, size_t cap)
{
    struct small sm = {buf, cap};
    return read_via(ctx, dirfd, path, read_small_fd, &sm);
}

long collect__read_small(int dirfd, const char *path, char *buf, size_t cap)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return (long)n;
}

int collect__fail(struct collect_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return COLLECT_FAILED;
}

int collect__read_error(long err)
{
    return (err == -ENOENT || err == -EACCES || err == -ENOTDIR) ? COLLECT_MISSING : COLLECT_FAILED;
}

char *collect__line(char **cursor)
{
    char *s = *cursor;
    if (!s || !*s)
        return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    return s;
}

int collect__fields(char *s, char **fields, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        fields[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
    }
    return n;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

char *collect__token(char **cursor)
{
    char *s = *cursor;
    while (is_blank(*s))
        s++;
    if (!*s) {
        *cursor = s;
        return NULL;
    }
    char *t = s;
    while (*s && !is_blank(*s))
        s++;
    if (*s)
        *s++ = '\0';
    *cursor = s;
    return t;
}

char *collect__squeeze(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        while (is_blank(*r))
            r++;
        if (!*r)
            break;
        if (w != s)
            *w++ = ' ';
        while (*r && !is_blank(*r))
            *w++ = *r++;
    }
    *w = '\0';
    return s;
}

int collect__cpus_parse(struct collect_cpus *c, char *line, const char **why)
{
    c->n = 0;
    char *t;
    while ((t = collect__token(&line))) {
        uint64_t id;
        if (strncmp(t, "CPU", 3) != 0 || strlen(t + 3) >= sizeof(*c->id) ||
            collect__u64(t + 3, &id) < 0) {
            *why = "header column is not CPU<n>";
            return -1;
        }
        void *g = c->id;
        util_grow(&g, &c->cap, c->n + 1, sizeof(*c->id));
        c->id = g;
        memcpy(c->id[c->n++], t + 3, strlen(t + 3) + 1);
    }
    if (c->n == 0) {
        *why = "no CPU columns in the header";
        return -1;
    }
    return 0;
}

void collect__cpus_release(struct collect_cpus *c)
{
    free(c->id);
}

int collect__read_cpu_table(struct collect_ctx *ctx, const char *path, struct collect_cpus *cpus,
                            char **cursor)
{
    long n = collect__read(ctx, ctx->proc_fd, path);
    if (n < 0)
        return collect__read_error(n);
    const char *why;
    *cursor = ctx->buf;
    char *head = collect__line(cursor);
    if (!head)
        return collect__fail(ctx, "%s/%s: empty (truncated?)", ctx->opts->proc_root, path);
    if (collect__cpus_parse(cpus, head, &why) < 0)
        return collect__fail(ctx, "%s/%s:1: %s", ctx->opts->proc_root, path, why);
    return COLLECT_OK;
}

int collect__row_name(char *line, char **name, char **rest)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    while (is_blank(*line))
        line++;
    if (!*line || strpbrk(line, " \t"))
        return -1;
    *name = line;
    *rest = colon + 1;
    return 0;
}

int collect__u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*s)
        return -1;
    *out = v;
    return 0;
}

int collect__i64(const char *s, int64_t *out)
{
    int neg = *s == '-';
    uint64_t v;
    if (collect__u64(s + neg, &v) < 0 || v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    /* -(v - 1) - 1 rather than -v: INT64_MIN's magnitude is no int64_t. */
    *out = neg ? (v ? -(int64_t)(v - 1) - 1 : 0) : (int64_t)v;
    return 0;
}

int collect__f64(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || isnan(v))
        return -1;
    *out = v;
    return 0;
}

int collect__hex(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    for (; *s; s++, n++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return -1;
        if (n >= 16)
            return -1;
        v = v << 4 | d;
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

static int pidstat_error(const char **why, const char *what)
{
    if (why)
        *why = what;
    return -1;
}

int collect__parse_pidstat(char *buf, struct collect_pidstat *out, const char **why)
{
    char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
    if (!lp || !rp || rp < lp)
        return pidstat_error(why, "no '(comm)'");
    out->comm = lp + 1;
    out->comm_len = (size_t)(rp - lp - 1);
    char *nl = strchr(rp, '\n');
    if (nl)
        *nl = '\0';
    /* f[i] is field i+3 of proc(5): f[0] is state (3), f[21] rss (24). */
    char *f[22];
    if (collect__fields(rp + 1, f, 22) < 22)
        return pidstat_error(why, "too few fields (truncated?)");
    if (f[0][1] != '\0' ||
        !((f[0][0] >= 'A' && f[0][0] <= 'Z') || (f[0][0] >= 'a' && f[0][0] <= 'z')))
        return pidstat_error(why, "bad state");
    out->state = f[0][0];
    int64_t rss;
    if (collect__u64(f[6], &out->flags) < 0 || collect__u64(f[7], &out->minflt) < 0 ||
        collect__u64(f[9], &out->majflt) < 0 || collect__u64(f[11], &out->utime) < 0 ||
        collect__u64(f[12], &out->stime) < 0 || collect__u64(f[17], &out->num_threads) < 0 ||
        collect__u64(f[19], &out->starttime) < 0 || collect__u64(f[20], &out->vsize) < 0 ||
        collect__i64(f[21], &rss) < 0)
        return pidstat_error(why, "bad number");
    out->rss_pages = rss > 0 ? (uint64_t)rss : 0;
    return 0;
}

int collect__read_u64(struct collect_ctx *ctx, const char *path, uint64_t *out)
{
    char buf[64];
    long n = collect__read_into(ctx, ctx->proc_fd, path, buf, sizeof(buf));
    if (n < 0) {
        snprintf(ctx->err, sizeof(ctx->err), "%s/%s: %s", ctx->opts->proc_root, path,
                 strerror((int)-n));
        return collect__read_error(n);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (collect__u64(buf, out) < 0)
        return collect__fail(ctx, "%s/%s: want one number, got '%.20s'", ctx->opts->proc_root, path,
                             buf);
    return COLLECT_OK;
}
