/*
 * vfs.c: the kernel's VFS caches and file table, from /proc/sys/fs:
 * file-nr -> node_filefd_allocated and node_filefd_maximum (node_exporter's
 * "filefd" collector); dentry-state and inode-state -> sitrep_vfs_* gauges
 * (node_exporter has none). A dentry cache swollen with millions of negative
 * entries (lookups of names that do not exist) slows every path walk and
 * pins memory, which is why the negative count is exported on its own.
 *
 * Each file is optional: a missing one skips its gauges; the source is
 * missing only when all three are.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* Values of the files, parsed before anything is emitted. */
struct vfs_vals {
    int have_dentry, have_negative, have_inode, have_file;
    uint64_t dentries, dentries_unused, dentries_negative;
    uint64_t inodes, inodes_free;
    uint64_t files_allocated, files_max;
};

/*
 * Read the one-line file `path` (below the proc root) and parse up to `max`
 * (<= 8) numbers into v[]; *got is how many there were, at least `want`.
 * Returns COLLECT_OK, COLLECT_MISSING if the file is absent, or
 * COLLECT_FAILED.
 */
static int vfs_numbers(struct collect_ctx *ctx, const char *path, int want, uint64_t *v, int max,
                       int *got)
{
    long n = collect__read(ctx, ctx->proc_fd, path);
    if (n < 0)
        return collect__read_error(n);
    /* One line; cut it off so the newline does not stick to the last field. */
    char *cur = ctx->buf, *line = collect__line(&cur);
    char *f[8];
    int nf = line ? collect__fields(line, f, max) : 0;
    if (nf < want)
        return collect__fail(ctx, "%s/%s: want >= %d numbers, got %d (truncated?)",
                             ctx->opts->proc_root, path, want, nf);
    for (int i = 0; i < nf; i++)
        if (collect__u64(f[i], &v[i]) < 0)
            return collect__fail(ctx, "%s/%s: field %d: bad number '%.40s'", ctx->opts->proc_root,
                                 path, i + 1, f[i]);
    *got = nf;
    return COLLECT_OK;
}

static int vfs_collect(void *state, struct collect_ctx *ctx)
{
    (void)state;
    struct vfs_vals x;
    memset(&x, 0, sizeof(x));
    uint64_t v[8];
    int nf, rc, missing = 0;

    /* nr_dentry nr_unused age_limit want_pages nr_negative dummy */
    rc = vfs_numbers(ctx, "sys/fs/dentry-state", 4, v, 6, &nf);
    if (rc == COLLECT_FAILED)
        return rc;
    if (rc == COLLECT_OK) {
        x.have_dentry = 1;
        x.dentries = v[0];
        x.dentries_unused = v[1];
        /*
         * nr_negative is the fifth field since Linux 5.0; a file with only
         * four fields has no count to report. (Kernels before 5.0 print a
         * reserved 0 in that slot, which cannot be told from a real 0.)
         */
        if (nf >= 5) {
            x.have_negative = 1;
            x.dentries_negative = v[4];
        }
    } else {
        missing++;
    }

    /* nr_inodes nr_free_inodes preshrink dummy... */
    rc = vfs_numbers(ctx, "sys/fs/inode-state", 2, v, 7, &nf);
    if (rc == COLLECT_FAILED)
        return rc;
    if (rc == COLLECT_OK) {
        x.have_inode = 1;
        x.inodes = v[0];
        x.inodes_free = v[1];
    } else {
        missing++;
    }

    /* allocated unused(always 0 since 2.6) max */
    rc = vfs_numbers(ctx, "sys/fs/file-nr", 3, v, 3, &nf);
    if (rc == COLLECT_FAILED)
        return rc;
    if (rc == COLLECT_OK) {
        x.have_file = 1;
        x.files_allocated = v[0];
        x.files_max = v[2];
    } else {
        missing++;
    }
    if (missing == 3) {
        snprintf(ctx->err, sizeof(ctx->err), "%s/sys/fs: no dentry-state, inode-state or file-nr",
                 ctx->opts->proc_root);
        return COLLECT_MISSING;
    }

    struct metric_buf *b = ctx->out;
    if (x.have_file) {
        metric_fam(b, "node_filefd_allocated", "File descriptor statistics: allocated.",
                   METRIC_GAUGE);
        metric_add0(b, (double)x.files_allocated);
        metric_fam(b, "node_filefd_maximum", "File descriptor statistics: maximum.", METRIC_GAUGE);
        metric_add0(b, (double)x.files_max);
    }
    if (x.have_dentry) {
        metric_fam(b, "sitrep_vfs_dentries",
                   "Dentries (directory cache entries) allocated, in use or not "
                   "(nr_dentry of /proc/sys/fs/dentry-state).",
                   METRIC_GAUGE);
        metric_add0(b, (double)x.dentries);
        metric_fam(b, "sitrep_vfs_dentries_unused",
                   "Dentries not in use, kept on the LRU for reuse (nr_unused).", METRIC_GAUGE);
        metric_add0(b, (double)x.dentries_unused);
    }
    if (x.have_negative) {
        metric_fam(b, "sitrep_vfs_dentries_negative",
                   "Negative dentries: cached lookups of names that do not exist (nr_negative).",
                   METRIC_GAUGE);
        metric_add0(b, (double)x.dentries_negative);
    }
    if (x.have_inode) {
        metric_fam(b, "sitrep_vfs_inodes",
                   "Inodes allocated (nr_inodes of /proc/sys/fs/inode-state).", METRIC_GAUGE);
        metric_add0(b, (double)x.inodes);
        metric_fam(b, "sitrep_vfs_inodes_free", "Allocated inodes that are free (nr_free_inodes).",
                   METRIC_GAUGE);
        metric_add0(b, (double)x.inodes_free);
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_vfs = {
    .name = "vfs",
    .collect = vfs_collect,
};
