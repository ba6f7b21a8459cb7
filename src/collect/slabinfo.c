/*
 * slabinfo.c: /proc/slabinfo -> the kernel's slab caches that hold the most
 * memory, so an alert can name the cache that grows ("dentry +40 MiB/s")
 * where meminfo only says that Slab grew. Series use node_exporter's
 * "slabinfo" names (node_slabinfo_active_objects, node_slabinfo_objects,
 * node_slabinfo_object_size_bytes; label slab) plus sitrep_slab_bytes, the
 * memory the cache's slabs hold: num_slabs x pagesperslab x page size
 * (slabtop's "cache size"; free objects and slab overhead included; under
 * SLUB pagesperslab is the preferred order, so slabs that fell back to a
 * smaller order make it an upper bound).
 *
 * Cardinality is bounded, unlike node_exporter's (every cache, ~240 here):
 * the caches in slab_fixed[] whenever present, plus the top SLAB_TOP by
 * bytes. Hysteresis keeps the set stable: a cache that enters the top
 * SLAB_TOP stays reported until it has been out of it for SLAB_HOLD_MS, so a
 * cache at the edge does not flap its series in and out every read; at most
 * SLAB_HELD_MAX such caches are held (the one out of the top longest goes
 * first). At most ARRAY_SIZE(slab_fixed) + SLAB_HELD_MAX series per family.
 *
 * The file is read every SLAB_EVERY_MS (generating it walks every cache's
 * partial slab lists; see docs/PERFORMANCE.md); the ticks between re-emit the
 * last read, so the series stay continuous for scrapers. It is root-only: an
 * unreadable file makes the source missing (logged once), not a failure.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLAB_TOP      10
#define SLAB_HELD_MAX 32
#define SLAB_HOLD_MS  (10 * 60 * 1000)
#define SLAB_EVERY_MS 5000
#define SLAB_NAME     64 /* longer cache names are cut (the kernel prints them whole) */

/* Caches named in VFS and memory incidents, always reported when present. */
static const char *const slab_fixed[] = {
    "dentry",
    "inode_cache",
    "ext4_inode_cache",
    "xfs_inode",
    "btrfs_inode",
    "shmem_inode_cache",
    "proc_inode_cache",
    "sock_inode_cache",
    "radix_tree_node",
    "buffer_head",
    "filp",
};

struct slab_cache {
    char name[SLAB_NAME];
    uint32_t hash; /* of name: most lookups end on it, not on strcmp */
    uint64_t active, objs, objsize, bytes;
    int pick; /* reported from this read */
};

struct slab_held {
    char name[SLAB_NAME];
    uint32_t hash;
    int64_t until_ms; /* reported until then unless back in the top */
};

struct slabinfo_state {
    struct slab_cache *c; /* the last successful read, in file order */
    size_t n, cap;
    struct slab_held held[SLAB_HELD_MAX];
    size_t nheld;
    int have;        /* c holds a read to re-emit */
    int64_t read_ms; /* tick of that read */
    uint64_t page_size;
    uint32_t fixed_hash[ARRAY_SIZE(slab_fixed)];
};

static void slabinfo_release(void *p)
{
    struct slabinfo_state *s = p;
    free(s->c);
}

/* FNV-1a over a name of n bytes. */
static uint32_t name_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static int is_fixed(const struct slabinfo_state *s, const struct slab_cache *c)
{
    for (size_t i = 0; i < ARRAY_SIZE(slab_fixed); i++)
        if (s->fixed_hash[i] == c->hash && strcmp(slab_fixed[i], c->name) == 0)
            return 1;
    return 0;
}

static struct slab_held *find_held(struct slabinfo_state *s, const struct slab_cache *c)
{
    for (size_t i = 0; i < s->nheld; i++)
        if (s->held[i].hash == c->hash && strcmp(s->held[i].name, c->name) == 0)
            return &s->held[i];
    return NULL;
}

/*
 * Parse ctx->buf (version 2.x: a version line, a "# name" header, then
 * "name active num objsize perslab pages : tunables a b c : slabdata x y z"
 * with more statistics appended on debug kernels) into s->c.
 */
static int slab_parse(struct slabinfo_state *s, struct collect_ctx *ctx)
{
    const char *root = ctx->opts->proc_root;
    char *cur = ctx->buf, *line = collect__line(&cur);
    if (!line || strncmp(line, "slabinfo - version: 2.", 22) != 0)
        return collect__fail(ctx, "%s/slabinfo:1: want 'slabinfo - version: 2.x', got '%.40s'",
                             root, line ? line : "");
    line = collect__line(&cur);
    if (!line || strncmp(line, "# name", 6) != 0)
        return collect__fail(ctx, "%s/slabinfo:2: want the '# name' header", root);
    s->n = 0;
    int lineno = 2;
    while ((line = collect__line(&cur))) {
        lineno++;
        char *f[17];
        int nf = collect__fields(line, f, 17);
        if (!nf)
            continue;
        if (nf < 16 || strcmp(f[6], ":") || strcmp(f[7], "tunables") || strcmp(f[11], ":") ||
            strcmp(f[12], "slabdata"))
            return collect__fail(ctx, "%s/slabinfo:%d: not a slab line (%d fields)", root, lineno,
                                 nf);
        uint64_t v[5], slabs;
        for (int i = 0; i < 5; i++)
            if (collect__u64(f[1 + i], &v[i]) < 0)
                return collect__fail(ctx, "%s/slabinfo:%d: bad number '%.40s'", root, lineno,
                                     f[1 + i]);
        if (collect__u64(f[14], &slabs) < 0)
            return collect__fail(ctx, "%s/slabinfo:%d: bad number '%.40s'", root, lineno, f[14]);
        void *g = s->c;
        util_grow(&g, &s->cap, s->n + 1, sizeof(*s->c));
        s->c = g;
        struct slab_cache *c = &s->c[s->n++];
        size_t len = strlen(f[0]);
        if (len >= sizeof(c->name))
            len = sizeof(c->name) - 1;
        memcpy(c->name, f[0], len);
        c->name[len] = '\0';
        c->hash = name_hash(c->name, len);
        c->active = v[0];
        c->objs = v[1];
        c->objsize = v[2];
        c->bytes = slabs * v[4] * s->page_size;
        c->pick = 0;
    }
    return COLLECT_OK;
}

/* Refresh the held set from this read's top SLAB_TOP and mark what to report. */
static void slab_pick(struct slabinfo_state *s, int64_t now)
{
    size_t top[SLAB_TOP], ntop = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->c[i].bytes || is_fixed(s, &s->c[i]))
            continue; /* empty, or reported anyway: leave the top to the others */
        size_t k = ntop < SLAB_TOP ? ntop++ : SLAB_TOP;
        if (k == SLAB_TOP && s->c[i].bytes <= s->c[top[SLAB_TOP - 1]].bytes)
            continue;
        if (k == SLAB_TOP)
            k--;
        while (k > 0 && s->c[top[k - 1]].bytes < s->c[i].bytes) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = i;
    }
    for (size_t t = 0; t < ntop; t++) {
        const struct slab_cache *c = &s->c[top[t]];
        struct slab_held *h = find_held(s, c);
        if (!h && s->nheld < SLAB_HELD_MAX) {
            h = &s->held[s->nheld++];
        } else if (!h) {
            /* Full: replace the one out of the top longest (never one refreshed now). */
            h = &s->held[0];
            for (size_t i = 1; i < s->nheld; i++)
                if (s->held[i].until_ms < h->until_ms)
                    h = &s->held[i];
        }
        memcpy(h->name, c->name, sizeof(h->name));
        h->hash = c->hash;
        h->until_ms = now + SLAB_HOLD_MS;
    }
    for (size_t i = 0; i < s->nheld;)
        if (s->held[i].until_ms < now)
            s->held[i] = s->held[--s->nheld];
        else
            i++;
    for (size_t i = 0; i < s->n; i++) {
        struct slab_cache *c = &s->c[i];
        c->pick = is_fixed(s, c) || find_held(s, c);
        /* A name twice in the file (or two cut to one) would be one series twice. */
        for (size_t j = 0; c->pick && j < i; j++)
            if (s->c[j].pick && s->c[j].hash == c->hash && strcmp(s->c[j].name, c->name) == 0)
                c->pick = 0;
    }
}

static int slabinfo_collect(void *p, struct collect_ctx *ctx)
{
    struct slabinfo_state *s = p;
    if (!s->have || ctx->ts_ms - s->read_ms >= SLAB_EVERY_MS || ctx->ts_ms < s->read_ms) {
        s->have = 0;
        if (!s->page_size) {
            long ps = sysconf(_SC_PAGESIZE);
            s->page_size = ps > 0 ? (uint64_t)ps : 4096;
            for (size_t i = 0; i < ARRAY_SIZE(slab_fixed); i++)
                s->fixed_hash[i] = name_hash(slab_fixed[i], strlen(slab_fixed[i]));
        }
        long n = collect__read(ctx, ctx->proc_fd, "slabinfo");
        if (n < 0)
            return collect__read_error(n);
        int rc = slab_parse(s, ctx);
        if (rc != COLLECT_OK)
            return rc;
        slab_pick(s, ctx->ts_ms);
        s->have = 1;
        s->read_ms = ctx->ts_ms;
    }

    static const struct {
        const char *name, *help;
        size_t off;
    } fams[] = {
        {"node_slabinfo_active_objects",
         "The number of objects that are currently active (i.e., in use).",
         offsetof(struct slab_cache, active)},
        {"node_slabinfo_objects",
         "The total number of allocated objects (i.e., objects that are both in use and not in "
         "use).",
         offsetof(struct slab_cache, objs)},
        {"node_slabinfo_object_size_bytes", "The size of objects in this slab, in bytes.",
         offsetof(struct slab_cache, objsize)},
        {"sitrep_slab_bytes",
         "Memory held by the slab cache's slabs: num_slabs x pagesperslab x page size "
         "(free objects included).",
         offsetof(struct slab_cache, bytes)},
    };
    struct metric_buf *b = ctx->out;
    for (size_t f = 0; f < ARRAY_SIZE(fams); f++) {
        int started = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!s->c[i].pick)
                continue;
            if (!started++)
                metric_fam(b, fams[f].name, fams[f].help, METRIC_GAUGE);
            uint64_t v;
            memcpy(&v, (const char *)&s->c[i] + fams[f].off, sizeof(v));
            metric_add1(b, (double)v, "slab", s->c[i].name);
        }
    }
    return COLLECT_OK;
}

const struct collect_source collect__src_slabinfo = {
    .name = "slabinfo",
    .state_size = sizeof(struct slabinfo_state),
    .collect = slabinfo_collect,
    .release = slabinfo_release,
};
