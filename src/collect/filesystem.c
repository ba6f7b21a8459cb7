/*
 * filesystem.c: the mount table plus statfs() of each mount point -> size,
 * free and available bytes, inodes, read-only flag and an error flag per
 * filesystem, named as node_exporter's "filesystem" collector names them
 * (node_filesystem_*, labels device, fstype, mountpoint).
 *
 * Like node_exporter, the table is PID 1's (/proc/1/mounts: the host's view
 * even when sitrep runs in its own mount namespace), falling back to our own
 * and then to /proc/mounts, and pseudo filesystems and the default excluded
 * mount points are left out. A mount point listed twice (bind mounts,
 * mounts stacked on one directory) is reported once, for its last entry:
 * that is the one on top, the one statfs() sees.
 *
 * Known limitation: statfs() on a hung network filesystem (NFS, CIFS) blocks
 * the collector thread until it returns. node_exporter runs each stat under a
 * watchdog goroutine and marks the mount "stuck"; sitrep does not yet.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

struct fs_mount {
    const char *device, *mountpoint, *fstype; /* point into ctx->buf */
    int readonly;
    int error;   /* statfs failed: only device_error is reported */
    double v[5]; /* size, free, avail, files, files_free */
};

struct filesystem_state {
    struct fs_mount *mounts; /* this tick's table; grows to the mount count */
    size_t cap;
};

static void filesystem_release(void *p)
{
    struct filesystem_state *s = p;
    free(s->mounts);
}

/* node_exporter's default --collector.filesystem.fs-types-exclude. */
static const char *const fs_types_excluded[] = {
    "autofs",     "binfmt_misc", "bpf",       "cgroup",   "cgroup2",   "configfs",
    "debugfs",    "devpts",      "devtmpfs",  "fusectl",  "hugetlbfs", "iso9660",
    "mqueue",     "nsfs",        "overlay",   "proc",     "procfs",    "pstore",
    "rpc_pipefs", "securityfs",  "selinuxfs", "squashfs", "sysfs",     "tracefs",
};

static int fstype_excluded(const char *t)
{
    for (size_t i = 0; i < ARRAY_SIZE(fs_types_excluded); i++)
        if (strcmp(t, fs_types_excluded[i]) == 0)
            return 1;
    return 0;
}

/*
 * node_exporter's default --collector.filesystem.mount-points-exclude,
 * ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/),
 * by hand. For "X/.+($|/)" some non-empty run of characters other than
 * '\n' (what '.' matches) must follow X and be followed by the end or '/'.
 */
static int mountpoint_excluded(const char *mp)
{
    static const char *const whole[] = {"dev", "proc", "sys"};
    static const char *const below[] = {"run/credentials/", "var/lib/docker/",
                                        "var/lib/containers/storage/"};
    if (mp[0] != '/')
        return 0;
    const char *r = mp + 1;
    for (size_t i = 0; i < ARRAY_SIZE(whole); i++) {
        size_t n = strlen(whole[i]);
        if (strncmp(r, whole[i], n) == 0 && (r[n] == '\0' || r[n] == '/'))
            return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(below); i++) {
        size_t n = strlen(below[i]);
        if (strncmp(r, below[i], n) != 0)
            continue;
        for (const char *q = r + n; *q && *q != '\n'; q++)
            if (q[1] == '\0' || q[1] == '/')
                return 1;
    }
    return 0;
}

/*
 * Undo the kernel's octal escapes in a mount table field in place ("\040"
 * is a blank, "\011" a tab, "\012" a newline, "\134" a backslash). Anything
 * that is not a valid non-NUL escape is left as it is.
 */
static void unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            int c = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
            if (c) {
                *w++ = (char)c;
                r += 4;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
}

/* 1 if the comma-separated mount options include "ro". */
static int has_ro(const char *opts)
{
    for (const char *o = opts; *o;) {
        size_t n = strcspn(o, ",");
        if (n == 2 && o[0] == 'r' && o[1] == 'o')
            return 1;
        o += n + (o[n] == ',');
    }
    return 0;
}

/*
 * Read the mount table: PID 1's, then ours, then "mounts" (hidepid hides
 * /proc/1; a recorded fixture may only have "mounts"). Returns its length
 * or -errno of the last attempt, naming the path in ctx->err.
 */
static long read_mounts(struct collect_ctx *ctx, const char **path)
{
    static const char *const paths[] = {"1/mounts", "self/mounts", "mounts"};
    long n = -ENOENT;
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        *path = paths[i];
        if ((n = collect__read(ctx, ctx->proc_fd, paths[i])) >= 0)
            break;
    }
    return n;
}

/* statfs() rootfs + m->mountpoint into m; sets m->error on failure. */
static void fs_stat(const struct collect_ctx *ctx, struct fs_mount *m)
{
    char path[PATH_MAX];
    struct statfs st;
    int len = snprintf(path, sizeof(path), "%s%s", ctx->opts->rootfs, m->mountpoint);
    /*
     * statfs(), not statvfs(): glibc's statvfs may scan /proc/mounts for the
     * mount flags (allocating a FILE) on kernels that do not report them.
     */
    if (len < 0 || (size_t)len >= sizeof(path) || statfs(path, &st) < 0) {
        m->error = 1;
        return;
    }
    /* f_blocks counts f_frsize units (the kernel sets it to f_bsize when 0). */
    double unit = st.f_frsize ? (double)st.f_frsize : (double)st.f_bsize;
    m->v[0] = (double)st.f_blocks * unit;
    m->v[1] = (double)st.f_bfree * unit;
    m->v[2] = (double)st.f_bavail * unit;
    m->v[3] = (double)st.f_files;
    m->v[4] = (double)st.f_ffree;
}

static const struct {
    const char *name, *help;
} fs_cols[5] = {
    {"node_filesystem_size_bytes", "Filesystem size in bytes."},
    {"node_filesystem_free_bytes", "Filesystem free space in bytes."},
    {"node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."},
    {"node_filesystem_files", "Filesystem total file nodes."},
    {"node_filesystem_files_free", "Filesystem total free file nodes."},
};

static void fs_add(struct metric_buf *b, const struct fs_mount *m, double v)
{
    const struct metric_label l[] = {
        {"device", m->device}, {"fstype", m->fstype}, {"mountpoint", m->mountpoint}};
    metric_add(b, v, ARRAY_SIZE(l), l);
}

static int filesystem_collect(void *p, struct collect_ctx *ctx)
{
    struct filesystem_state *s = p;
    const char *file;
    long n = read_mounts(ctx, &file);
    if (n < 0)
        return collect__read_error(n);

    /* Parse the whole table first so a garbled line emits nothing at all. */
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line;
    size_t nmounts = 0;
    int lineno = 0;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[4];
        int nf = collect__fields(line, f, 4);
        if (nf == 0)
            continue;
        /* "device mountpoint fstype options dump pass"; the last two are optional. */
        if (nf < 4)
            return collect__fail(ctx, "%s/%s:%d: %d fields, want >= 4", root, file, lineno, nf);
        unescape(f[1]);
        if (mountpoint_excluded(f[1]))
            continue;
        struct fs_mount m = {.device = f[0], .mountpoint = f[1], .fstype = f[2]};
        m.readonly = has_ro(f[3]);
        /*
         * A later entry for the same mount point is stacked on top of the
         * earlier one. Linear search: tables are tens to hundreds of lines
         * once the container layers (excluded above) are gone.
         */
        size_t i;
        for (i = 0; i < nmounts; i++)
            if (strcmp(s->mounts[i].mountpoint, m.mountpoint) == 0)
                break;
        if (i == nmounts) {
            void *g = s->mounts;
            util_grow(&g, &s->cap, nmounts + 1, sizeof(*s->mounts));
            s->mounts = g;
            nmounts++;
        }
        s->mounts[i] = m;
    }

    /* The type of the mount on top decides, so filter only after stacking. */
    size_t w = 0;
    for (size_t i = 0; i < nmounts; i++)
        if (!fstype_excluded(s->mounts[i].fstype))
            s->mounts[w++] = s->mounts[i];
    nmounts = w;
    if (!nmounts)
        return COLLECT_OK;
    for (size_t i = 0; i < nmounts; i++)
        fs_stat(ctx, &s->mounts[i]);

    struct metric_buf *b = ctx->out;
    metric_fam(b, "node_filesystem_device_error",
               "Whether an error occurred while getting statistics for the given device.",
               METRIC_GAUGE);
    for (size_t i = 0; i < nmounts; i++)
        fs_add(b, &s->mounts[i], s->mounts[i].error);
    for (size_t c = 0; c < ARRAY_SIZE(fs_cols); c++) {
        metric_fam(b, fs_cols[c].name, fs_cols[c].help, METRIC_GAUGE);
        for (size_t i = 0; i < nmounts; i++)
            if (!s->mounts[i].error)
                fs_add(b, &s->mounts[i], s->mounts[i].v[c]);
    }
    metric_fam(b, "node_filesystem_readonly", "Filesystem read-only status.", METRIC_GAUGE);
    for (size_t i = 0; i < nmounts; i++)
        if (!s->mounts[i].error)
            fs_add(b, &s->mounts[i], s->mounts[i].readonly);
    return COLLECT_OK;
}

const struct collect_source collect__src_filesystem = {
    .name = "filesystem",
    .state_size = sizeof(struct filesystem_state),
    .collect = filesystem_collect,
    .release = filesystem_release,
};
