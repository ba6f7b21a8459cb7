/*
 * maint.c: the store's background work (see tsdb_maintain in tsdb.h) and
 * its block lists.
 *
 * Each pass (once a second in the background thread):
 *   1. free space: below the floor the store stops writing (WAL, blocks,
 *      checkpoints) and keeps samples in memory; when space returns, a
 *      checkpoint makes memory durable again and writing resumes.
 *   2. sync the WAL.
 *   3. cut: every window of the head that ended at least half a span before
 *      the newest sample becomes a raw block, plus a 1 min and a 1 h block
 *      of its aggregates (min, max, sum, count, last). The block is
 *      published, queries that started before it are waited for (epoch),
 *      then the head's copy is dropped.
 *   4. compact: per tier, blocks filling an aligned larger window (x12, then
 *      x7: 2 h -> 1 d -> 1 w) are merged once that window is complete.
 *   5. retention by age (from the newest sample) per tier, then the size
 *      cap: oldest raw blocks go first, then 1 min, then 1 h, so resolution
 *      degrades before history does.
 *   6. checkpoint every checkpoint_interval (or when the WAL passes 64 MiB),
 *      which also truncates the WAL.
 * Passes are serialised by db->maint; appends and queries go on meanwhile.
 */
#include "tsdb/chunk.h"
#include "tsdb/db.h"
#include "tsdb/downsample.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WAL_CHECKPOINT_BYTES ((uint64_t)64 << 20)
/*
 * Between changes to the block list, the directory walk behind retention and
 * the size cap runs at most this often: only the WAL grows in between, by
 * kilobytes a second, and the walk (a stat per file) was the pass's largest
 * cost after the fsync.
 */
#define DU_EVERY_NS ((int64_t)10 * 1000000000)

static const char *const tier_names[TSDB__TIERS] = {"raw", "1m", "1h"};
static const int64_t tier_res[TSDB__TIERS] = {0, TSDB_RES_1M_MS, TSDB_RES_1H_MS};

const char *tsdb__tier_name(int t)
{
    return tier_names[t];
}

int64_t tsdb__tier_res(int t)
{
    return tier_res[t];
}

/* ------------------------------------------------------ block refs */

struct tsdb__bref *tsdb__bref_get(struct tsdb__bref *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void tsdb__bref_put(struct tsdb__bref *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    tsdb__block_close(r->b);
    if (atomic_load(&r->doomed) && util_remove_dir(AT_FDCWD, r->path) < 0)
        log_warn("tsdb: %s: cannot delete: %s", r->path, strerror(errno));
    tsdb__index_free(r->idx);
    pthread_mutex_destroy(&r->idx_mu);
    free(r->path);
    free(r);
}

struct tsdb__index *tsdb__bref_index(struct tsdb__bref *r)
{
    pthread_mutex_lock(&r->idx_mu);
    if (!r->idx) {
        uint32_t n = tsdb__block_series_count(r->b);
        struct tsdb__index_opts o = {.max_series = n ? n : 1, .max_labels = TSDB_MAX_LABELS_LIMIT};
        r->idx = tsdb__index_new(&o);
        struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
        for (uint32_t i = 0; i < n; i++) {
            int nl = tsdb__block_labels(r->b, i, ls, TSDB_MAX_LABELS_LIMIT);
            uint32_t id = UINT32_MAX;
            /* Ids are dense from 0, so block series i gets id i. */
            if (nl < 0 || tsdb__index_get_or_create(r->idx, ls, (size_t)nl, &id) < 0 || id != i)
                log_warn("tsdb: %s: series %u cannot be indexed; it will not be found", r->path, i);
        }
    }
    pthread_mutex_unlock(&r->idx_mu);
    return r->idx;
}

static struct tsdb__bref *bref_open(const char *path, int tier)
{
    char err[512];
    struct tsdb__block *b;
    if (tsdb__block_open(&b, path, err, sizeof(err)) < 0) {
        log_error("tsdb: %s; the block is not served", err);
        return NULL;
    }
    struct tsdb__bref *r = xcalloc(1, sizeof(*r));
    r->b = b;
    r->tier = tier;
    r->mint = tsdb__block_mint(b);
    r->maxt = tsdb__block_maxt(b);
    r->bytes = tsdb__block_bytes(b);
    r->path = xstrdup(path);
    atomic_init(&r->refs, 1);
    pthread_mutex_init(&r->idx_mu, NULL);
    return r;
}

static int by_mint(const void *a, const void *b)
{
    const struct tsdb__bref *x = *(struct tsdb__bref *const *)a,
                            *y = *(struct tsdb__bref *const *)b;
    if (x->mint != y->mint)
        return x->mint < y->mint ? -1 : 1;
    return (x->maxt < y->maxt) - (x->maxt > y->maxt); /* the larger first */
}

/* Insert r into tier's list (caller holds blocks_mu). */
static void list_add(struct tsdb *db, struct tsdb__bref *r)
{
    int t = r->tier;
    void *p = db->blocks[t];
    util_grow(&p, &db->blocks_cap[t], db->nblocks[t] + 1, sizeof(*db->blocks[t]));
    db->blocks[t] = p;
    db->blocks[t][db->nblocks[t]++] = r;
    qsort(db->blocks[t], db->nblocks[t], sizeof(*db->blocks[t]), by_mint);
}

/* Remove r from its list and mark it for deletion (caller holds blocks_mu). */
static void list_doom(struct tsdb *db, struct tsdb__bref *r)
{
    int t = r->tier;
    for (size_t i = 0; i < db->nblocks[t]; i++)
        if (db->blocks[t][i] == r) {
            memmove(db->blocks[t] + i, db->blocks[t] + i + 1,
                    (db->nblocks[t] - i - 1) * sizeof(*db->blocks[t]));
            db->nblocks[t]--;
            break;
        }
    atomic_store(&r->doomed, 1);
}

int tsdb__blocks_load(struct tsdb *db, char *err, size_t errlen)
{
    for (int t = 0; t < TSDB__TIERS; t++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", db->dir, tier_names[t]);
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
            return -1;
        }
        struct tsdb__block_name *names;
        size_t n;
        if (tsdb__blocks_scan(dir, &names, &n, err, errlen) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i].name);
            struct tsdb__bref *r = bref_open(path, t);
            if (r)
                list_add(db, r);
            else
                atomic_fetch_add(&db->blocks_unreadable, 1);
        }
        free(names);
        /*
         * A crash after a compaction wrote its block but before it deleted
         * the inputs leaves blocks inside another: the larger one wins.
         */
        for (size_t i = 0; i + 1 < db->nblocks[t];) {
            struct tsdb__bref *a = db->blocks[t][i], *b = db->blocks[t][i + 1];
            if (b->mint >= a->mint && b->maxt <= a->maxt) {
                log_info("tsdb: %s: inside %s (an interrupted compaction); deleting it", b->path,
                         a->path);
                list_doom(db, b);
                tsdb__bref_put(b);
            } else if (b->mint < a->maxt) {
                log_warn("tsdb: %s overlaps %s; the later one is not served", b->path, a->path);
                list_doom(db, b);
                atomic_store(&b->doomed, 0); /* keep it on disk for a human */
                tsdb__bref_put(b);
            } else {
                i++;
            }
        }
    }
    return 0;
}

void tsdb__blocks_release(struct tsdb *db)
{
    for (int t = 0; t < TSDB__TIERS; t++) {
        for (size_t i = 0; i < db->nblocks[t]; i++)
            tsdb__bref_put(db->blocks[t][i]);
        free(db->blocks[t]);
        db->blocks[t] = NULL;
        db->nblocks[t] = 0;
    }
}

int64_t tsdb__raw_maxt(struct tsdb *db)
{
    pthread_mutex_lock(&db->blocks_mu);
    int64_t m = INT64_MIN;
    for (size_t i = 0; i < db->nblocks[TSDB__TIER_RAW]; i++)
        if (db->blocks[TSDB__TIER_RAW][i]->maxt > m)
            m = db->blocks[TSDB__TIER_RAW][i]->maxt;
    pthread_mutex_unlock(&db->blocks_mu);
    return m;
}

/* Write a block and publish it. 0 or -1 (errno set, logged). */
static int write_block(struct tsdb *db, int tier, int64_t mint, int64_t maxt,
                       const struct tsdb__block_series *s, size_t n)
{
    char dir[4096], err[512], name[64], path[4200];
    snprintf(dir, sizeof(dir), "%s/%s", db->dir, tier_names[tier]);
    if (tsdb__block_write(dir, mint, maxt, s, n, err, sizeof(err)) < 0) {
        int e = errno;
        log_error("tsdb: %s", err);
        atomic_fetch_add(&db->block_failures, 1);
        errno = e;
        return -1;
    }
    tsdb__block_dirname(name, sizeof(name), mint, maxt);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct tsdb__bref *r = bref_open(path, tier);
    if (!r) {
        errno = EIO;
        return -1;
    }
    pthread_mutex_lock(&db->blocks_mu);
    list_add(db, r);
    pthread_mutex_unlock(&db->blocks_mu);
    return 0;
}

/* ---------------------------------------------------------------- cut */

/* One series of the window being cut. */
struct cut_series {
    uint32_t id;
    size_t first, n; /* its chunks in cut.chunks */
    struct tsdb__chunk tier[2][TSDB__AGG_N];
    int have_tier;
};

struct cut {
    struct tsdb *db;
    int64_t w0, w1;
    struct tsdb__block_chunk *chunks;
    size_t nchunks, cap;
};

static int take_chunk(void *ctx, const struct tsdb__chunk *c)
{
    struct cut *k = ctx;
    if (c->maxt >= k->w1 || c->mint < k->w0)
        return 0; /* newer window (or an older one a failed cut left: next pass) */
    void *p = k->chunks;
    util_grow(&p, &k->cap, k->nchunks + 1, sizeof(*k->chunks));
    k->chunks = p;
    k->chunks[k->nchunks++] = tsdb__block_chunk_of(c);
    return 0;
}

/* Encode one column of aggregates as chunks (one usually). */
static void encode_col(struct tsdb__chunk *c, const struct tsdb__aggs *a, int col)
{
    tsdb__chunk_init(c);
    for (size_t i = 0; i < a->n; i += TSDB_BLOCK_MAX) {
        size_t m = a->n - i < TSDB_BLOCK_MAX ? a->n - i : TSDB_BLOCK_MAX;
        if (tsdb__chunk_append(c, a->ts + i, a->v[col] + i, m) < 0)
            break; /* past 1 MiB: cannot happen for one window of buckets */
    }
}

/* Downsample series s's chunks of the window into its tier chunks. */
static void downsample(struct cut *k, struct cut_series *s, struct tsdb_sample **buf, size_t *cap,
                       struct tsdb__aggs *a)
{
    size_t n = 0;
    struct tsdb__chunk_iter *it = xmalloc(sizeof(*it));
    for (size_t j = 0; j < s->n; j++) {
        const struct tsdb__block_chunk *c = &k->chunks[s->first + j];
        int r = tsdb__chunk_iter_init(it, c->buf, c->len, INT64_MIN, INT64_MAX);
        int64_t t;
        double v;
        if (r == 0)
            while ((r = tsdb__chunk_iter_next(it, &t, &v)) > 0) {
                if (n >= *cap) {
                    void *p = *buf;
                    util_grow(&p, cap, n + 1, sizeof(**buf));
                    *buf = p;
                }
                (*buf)[n].ts = t;
                (*buf)[n++].v = v;
            }
    }
    free(it);
    for (int t = 0; t < 2; t++) {
        tsdb__aggs_reset(a);
        tsdb__downsample(*buf, n, tier_res[t + 1], a);
        for (int col = 0; col < TSDB__AGG_N; col++)
            encode_col(&s->tier[t][col], a, col);
    }
    s->have_tier = n > 0;
}

/* Cut [w0, w1) of the head into blocks. 0, or -1 if a write failed. */
static int cut_window(struct tsdb *db, int64_t w0, int64_t w1)
{
    struct cut k = {.db = db, .w0 = w0, .w1 = w1};
    tsdb__head_set_min_valid(db->head, w1);
    uint32_t nseries = tsdb__head_nseries(db->head);
    struct cut_series *ss = xcalloc(nseries ? nseries : 1, sizeof(*ss));
    size_t nss = 0;
    for (uint32_t id = 0; id < nseries; id++) {
        tsdb__head_seal_before(db->head, id, w1);
        size_t before = k.nchunks;
        tsdb__head_visit(db->head, id, take_chunk, NULL, &k);
        if (k.nchunks > before)
            ss[nss++] = (struct cut_series){.id = id, .first = before, .n = k.nchunks - before};
    }
    int rc = 0;
    if (nss) {
        struct tsdb__block_series *bs = xcalloc(nss, sizeof(*bs));
        struct tsdb__label *ls = xmalloc(nss * TSDB_MAX_LABELS_LIMIT * sizeof(*ls));
        size_t nbs = 0;
        for (size_t i = 0; i < nss; i++) {
            struct tsdb__label *l = ls + i * TSDB_MAX_LABELS_LIMIT;
            int nl = tsdb__index_labels(db->idx, ss[i].id, l, TSDB_MAX_LABELS_LIMIT);
            if (nl < 0)
                continue;
            bs[nbs++] = (struct tsdb__block_series){l, (size_t)nl, k.chunks + ss[i].first, ss[i].n};
        }
        rc = write_block(db, TSDB__TIER_RAW, w0, w1, bs, nbs);
        /* Tiers whose buckets fit the window (tests cut smaller windows). */
        int tiers = (w1 - w0) % TSDB_RES_1H_MS == 0 ? 2 : (w1 - w0) % TSDB_RES_1M_MS == 0 ? 1 : 0;
        struct tsdb_sample *buf = NULL;
        size_t cap = 0;
        struct tsdb__aggs a;
        tsdb__aggs_init(&a);
        for (int t = 0; t < tiers && rc == 0; t++) {
            struct tsdb__block_chunk *tc = xmalloc(nss * TSDB__AGG_N * sizeof(*tc));
            size_t m = 0;
            for (size_t i = 0; i < nss; i++) {
                if (t == 0)
                    downsample(&k, &ss[i], &buf, &cap, &a);
                if (!ss[i].have_tier)
                    continue;
                struct tsdb__label *l = ls + i * TSDB_MAX_LABELS_LIMIT;
                int nl = tsdb__index_labels(db->idx, ss[i].id, l, TSDB_MAX_LABELS_LIMIT);
                if (nl < 0)
                    continue;
                for (int col = 0; col < TSDB__AGG_N; col++) {
                    tc[m * TSDB__AGG_N + col] = tsdb__block_chunk_of(&ss[i].tier[t][col]);
                    tc[m * TSDB__AGG_N + col].col = (uint8_t)col;
                }
                bs[m] =
                    (struct tsdb__block_series){l, (size_t)nl, tc + m * TSDB__AGG_N, TSDB__AGG_N};
                m++;
            }
            rc = write_block(db, t + 1, w0, w1, bs, m);
            free(tc);
        }
        tsdb__aggs_release(&a);
        free(buf);
        for (size_t i = 0; i < nss; i++)
            for (int t = 0; t < 2; t++)
                for (int col = 0; col < TSDB__AGG_N; col++)
                    if (ss[i].tier[t][col].buf)
                        tsdb__chunk_release(&ss[i].tier[t][col]);
        free(ls);
        free(bs);
    }
    free(ss);
    free(k.chunks);
    if (rc < 0)
        return -1;
    atomic_fetch_add(&db->blocks_written, 1);
    /* Queries that began before the block was listed finish before the head lets go. */
    pthread_rwlock_wrlock(&db->epoch);
    pthread_rwlock_unlock(&db->epoch);
    tsdb__head_drop_before(db->head, w1);
    return 0;
}

/* Cut every complete window (all of them with TSDB_MAINT_FLUSH): how many, or -1. */
static int cut(struct tsdb *db, int flags)
{
    int64_t span = tsdb__head_span(db->head), last = INT64_MIN;
    int done = 0;
    if (!(flags & TSDB_MAINT_FLUSH)) {
        /* Every sample held is at or after both the min valid time and the
         * oldest hint, so the first window starts no earlier than floor's:
         * until the newest sample is half a window past its end, nothing
         * is due, whatever the exact oldest (which takes a visit of every
         * series to know). */
        int64_t lo, hi, floor = tsdb__head_min_valid(db->head);
        tsdb__head_hints(db->head, &lo, &hi);
        if (hi == INT64_MIN)
            return 0;
        if (lo > floor)
            floor = lo;
        if (hi < tsdb__head_window(db->head, floor) + span + span / 2)
            return 0;
    }
    for (;;) {
        int64_t oldest, newest;
        tsdb__head_range(db->head, &oldest, &newest);
        if (oldest == INT64_MAX)
            return done;
        int64_t w0 = tsdb__head_window(db->head, oldest), w1 = w0 + span;
        if (w0 <= last) {
            log_error("tsdb: window %" PRId64 " still holds samples after its cut", w0);
            return -1;
        }
        last = w0;
        if (!(flags & TSDB_MAINT_FLUSH) && newest < w1 + span / 2)
            return done;
        if (cut_window(db, w0, w1) < 0)
            return -1;
        done++;
    }
}

/* ------------------------------------------------ tiers from raw blocks */

/*
 * A raw block whose window the cut could not downsample into tier t (the
 * block span is not a multiple of t's resolution, e.g. 10 s or 30 min
 * windows for the 1 h tier) gets its tier block once compaction has merged
 * raw windows into one that is: its samples in [lo, hi) (a gap in the
 * tier, see tier_gap) are decoded and aggregated into a tier block of that
 * window. Returns 0 (also when there is nothing to do) or -1 (write failed).
 */
static int tier_from_raw(struct tsdb *db, struct tsdb__bref *r, int t, int64_t lo, int64_t hi)
{
    uint32_t n = tsdb__block_series_count(r->b);
    struct tsdb__block_series *bs = xcalloc(n ? n : 1, sizeof(*bs));
    struct tsdb__label *ls = xmalloc((n ? n : 1) * TSDB_MAX_LABELS_LIMIT * sizeof(*ls));
    struct tsdb__block_chunk *tc = xmalloc((n ? n : 1) * TSDB__AGG_N * sizeof(*tc));
    struct tsdb__chunk *cols = xcalloc((n ? n : 1) * TSDB__AGG_N, sizeof(*cols));
    struct tsdb_sample *buf = NULL;
    size_t cap = 0, m = 0;
    struct tsdb__aggs a;
    tsdb__aggs_init(&a);
    struct tsdb__chunk_iter *it = xmalloc(sizeof(*it));
    for (uint32_t i = 0; i < n; i++) {
        struct tsdb__label *l = ls + (size_t)m * TSDB_MAX_LABELS_LIMIT;
        int nl = tsdb__block_labels(r->b, i, l, TSDB_MAX_LABELS_LIMIT);
        if (nl < 0)
            continue;
        size_t ns = 0;
        struct tsdb__block_iter bi;
        struct tsdb__block_chunk c;
        tsdb__block_iter_init(&bi, r->b, i, 0, lo, hi - 1);
        while (tsdb__block_iter_next(&bi, &c)) {
            int rc = tsdb__chunk_iter_init(it, c.buf, c.len, lo, hi - 1);
            int64_t ts;
            double v;
            if (rc == 0)
                while (tsdb__chunk_iter_next(it, &ts, &v) > 0) {
                    if (ns >= cap) {
                        void *p = buf;
                        util_grow(&p, &cap, ns + 1, sizeof(*buf));
                        buf = p;
                    }
                    buf[ns].ts = ts;
                    buf[ns++].v = v;
                }
        }
        if (!ns)
            continue;
        tsdb__aggs_reset(&a);
        tsdb__downsample(buf, ns, tier_res[t], &a);
        if (!a.n)
            continue; /* only stale markers */
        for (int col = 0; col < TSDB__AGG_N; col++) {
            struct tsdb__chunk *ch = &cols[m * TSDB__AGG_N + col];
            encode_col(ch, &a, col);
            tc[m * TSDB__AGG_N + col] = tsdb__block_chunk_of(ch);
            tc[m * TSDB__AGG_N + col].col = (uint8_t)col;
        }
        bs[m] = (struct tsdb__block_series){l, (size_t)nl, tc + m * TSDB__AGG_N, TSDB__AGG_N};
        m++;
    }
    free(it);
    /*
     * Written even with no series (a window of stale markers only): the
     * window is then covered, so it is not decoded again every pass and raw
     * retention does not wait for it forever.
     */
    int rc = write_block(db, t, lo, hi, bs, m);
    for (size_t k = 0; k < m * TSDB__AGG_N; k++)
        tsdb__chunk_release(&cols[k]);
    tsdb__aggs_release(&a);
    free(buf);
    free(cols);
    free(tc);
    free(ls);
    free(bs);
    return rc;
}

/*
 * Whether tier t's blocks cover [mint, maxt) (caller holds blocks_mu): one
 * merged block, or the per-window blocks the cut made, side by side.
 */
static int tier_covers(struct tsdb *db, int t, int64_t mint, int64_t maxt)
{
    int64_t have = 0;
    for (size_t k = 0; k < db->nblocks[t]; k++) {
        const struct tsdb__bref *b = db->blocks[t][k];
        int64_t lo = b->mint > mint ? b->mint : mint, hi = b->maxt < maxt ? b->maxt : maxt;
        if (hi > lo)
            have += hi - lo; /* blocks of a tier never overlap */
    }
    return have >= maxt - mint;
}

/*
 * The first part of [mint, maxt) that tier t's blocks leave uncovered, as
 * [*lo, *hi); returns 0 when they cover it all (caller holds blocks_mu).
 * A merged raw block spans its whole merge window (a day, say) while the
 * cut made tier blocks only for the windows that had data; the tier needs
 * blocks for the rest of the window only, never a second, overlapping copy
 * of what it has (its own compaction of the window would then collide).
 */
static int tier_gap(struct tsdb *db, int t, int64_t mint, int64_t maxt, int64_t *lo, int64_t *hi)
{
    int64_t cur = mint;
    for (size_t k = 0; k < db->nblocks[t] && cur < maxt; k++) {
        const struct tsdb__bref *b = db->blocks[t][k]; /* sorted by mint, never overlapping */
        if (b->maxt <= cur)
            continue;
        if (b->mint >= maxt)
            break;
        if (b->mint > cur) {
            *lo = cur;
            *hi = b->mint;
            return 1;
        }
        cur = b->maxt;
    }
    if (cur >= maxt)
        return 0;
    *lo = cur;
    *hi = maxt;
    return 1;
}

/* Whether tier t is made from merged raw windows (not at the cut) for this span. */
static int tier_from_merges(int64_t span, int t)
{
    return span % tier_res[t] != 0 && (span * 12) % tier_res[t] == 0;
}

/*
 * Whether raw block r still has to feed a tier made from merged windows
 * (caller holds blocks_mu): retention must keep it until then.
 */
static int tier_pending(struct tsdb *db, const struct tsdb__bref *r)
{
    int64_t span = tsdb__head_span(db->head);
    for (int t = 1; t < TSDB__TIERS; t++) {
        if (tier_from_merges(span, t) && !tier_covers(db, t, r->mint, r->maxt))
            return 1;
    }
    return 0;
}

/* Give every raw block whose window fits a tier's resolution its tier block. */
static int fill_tiers(struct tsdb *db)
{
    for (int t = 1; t < TSDB__TIERS; t++) {
        struct tsdb__bref *todo = NULL;
        int64_t lo = 0, hi = 0;
        pthread_mutex_lock(&db->blocks_mu);
        for (size_t i = 0; i < db->nblocks[TSDB__TIER_RAW] && !todo; i++) {
            struct tsdb__bref *r = db->blocks[TSDB__TIER_RAW][i];
            if ((r->maxt - r->mint) % tier_res[t] != 0 || r->mint % tier_res[t] != 0)
                continue;
            /* Older than the tier keeps: it would only be deleted again. */
            if (tier_gap(db, t, r->mint, r->maxt, &lo, &hi) && lo % tier_res[t] == 0 &&
                hi % tier_res[t] == 0 &&
                hi > db->blocks[TSDB__TIER_RAW][db->nblocks[0] - 1]->maxt - db->o.retention_ms[t])
                todo = tsdb__bref_get(r);
        }
        pthread_mutex_unlock(&db->blocks_mu);
        if (!todo)
            continue;
        int rc = tier_from_raw(db, todo, t, lo, hi);
        tsdb__bref_put(todo);
        if (rc < 0)
            return -1;
        t--; /* more blocks of this tier may wait */
    }
    return 0;
}

/* ------------------------------------------------------------ compact */

static int compact_tier(struct tsdb *db, int t)
{
    int64_t span = tsdb__head_span(db->head);
    int64_t levels[3] = {span * 12, span * 12 * 7, 0};
    int nlev = t == TSDB__TIER_RAW ? 1 : 2;
    for (int l = 0; l < nlev; l++) {
        int64_t L = levels[l];
        pthread_mutex_lock(&db->blocks_mu);
        size_t n = db->nblocks[t];
        int64_t newest = n ? db->blocks[t][n - 1]->maxt : INT64_MIN;
        struct tsdb__bref *in[64];
        size_t nin = 0;
        int64_t W = 0;
        for (size_t i = 0; i < n && nin < 2; i++) {
            struct tsdb__bref *b = db->blocks[t][i];
            int64_t w = b->mint / L * L - (b->mint < 0 && b->mint % L ? L : 0);
            if (b->maxt - b->mint >= L || b->maxt > w + L || w + L > newest)
                continue;
            /* Gather the blocks of window w. */
            nin = 0;
            W = w;
            for (size_t j = i; j < n && nin < ARRAY_SIZE(in); j++) {
                struct tsdb__bref *c = db->blocks[t][j];
                if (c->mint >= w + L)
                    break;
                if (c->maxt <= w + L)
                    in[nin++] = tsdb__bref_get(c);
            }
            if (nin < 2) {
                for (size_t j = 0; j < nin; j++)
                    tsdb__bref_put(in[j]);
                nin = 0;
            }
        }
        pthread_mutex_unlock(&db->blocks_mu);
        if (nin < 2)
            continue;
        char dir[4096], err[512], name[64], path[4200];
        snprintf(dir, sizeof(dir), "%s/%s", db->dir, tier_names[t]);
        struct tsdb__block *blocks[64];
        for (size_t j = 0; j < nin; j++)
            blocks[j] = in[j]->b;
        uint64_t bad = 0;
        int rc = tsdb__block_merge(dir, W, W + L, blocks, nin, &bad, err, sizeof(err));
        if (rc == 0) {
            tsdb__block_dirname(name, sizeof(name), W, W + L);
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            struct tsdb__bref *r = bref_open(path, t);
            pthread_mutex_lock(&db->blocks_mu);
            if (r)
                list_add(db, r);
            for (size_t j = 0; j < nin && r; j++) {
                list_doom(db, in[j]);
                tsdb__bref_put(in[j]); /* the list's reference */
            }
            pthread_mutex_unlock(&db->blocks_mu);
            atomic_fetch_add(&db->compactions, 1);
        } else {
            log_error("tsdb: compaction: %s", err);
        }
        for (size_t j = 0; j < nin; j++)
            tsdb__bref_put(in[j]);
        if (rc < 0)
            return -1;
        l--; /* the same level may have more windows to merge */
    }
    return 0;
}

/* ---------------------------------------------------------- retention */

static void retention(struct tsdb *db)
{
    int64_t oldest, newest;
    tsdb__head_hints(db->head, &oldest, &newest);
    struct tsdb__bref *gone[256];
    size_t ngone = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (int t = 0; t < TSDB__TIERS; t++)
        if (db->nblocks[t] && db->blocks[t][db->nblocks[t] - 1]->maxt - 1 > newest)
            newest = db->blocks[t][db->nblocks[t] - 1]->maxt - 1;
    for (int t = 0; t < TSDB__TIERS && newest != INT64_MIN; t++)
        while (ngone < ARRAY_SIZE(gone) && db->nblocks[t] &&
               db->blocks[t][0]->maxt <= newest - db->o.retention_ms[t] &&
               !(t == TSDB__TIER_RAW && tier_pending(db, db->blocks[t][0]))) {
            log_info("tsdb: deleting %s (older than the %s retention)", db->blocks[t][0]->path,
                     tier_names[t]);
            gone[ngone++] = db->blocks[t][0];
            list_doom(db, db->blocks[t][0]);
            atomic_fetch_add(&db->retention_deleted, 1);
        }
    pthread_mutex_unlock(&db->blocks_mu);

    uint64_t total = util_dir_bytes(db->dir);
    pthread_mutex_lock(&db->blocks_mu);
    for (int t = 0; t < TSDB__TIERS && total > db->o.max_bytes; t++)
        while (ngone < ARRAY_SIZE(gone) && total > db->o.max_bytes && db->nblocks[t]) {
            struct tsdb__bref *b = db->blocks[t][0];
            log_warn("tsdb: deleting %s: the store is over its size cap (%" PRIu64 " > %" PRIu64
                     " bytes)",
                     b->path, total, db->o.max_bytes);
            total = total > b->bytes ? total - b->bytes : 0;
            gone[ngone++] = b;
            list_doom(db, b);
            atomic_fetch_add(&db->size_deleted, 1);
        }
    pthread_mutex_unlock(&db->blocks_mu);
    /* Deleting happens when the last query lets go, outside the list lock. */
    for (size_t i = 0; i < ngone; i++)
        tsdb__bref_put(gone[i]);
    atomic_store(&db->disk_bytes, util_dir_bytes(db->dir));
}

/* ------------------------------------------------------------- space */

/* Whether free space is above the floor (1), below (0); 1 if unknown. On
 * 0, why says how far below. */
static int space_ok(struct tsdb *db, char *why, size_t whylen)
{
    uint64_t avail, total;
    if (util_fs_space(db->dir, &avail, &total) < 0)
        return 1;
    uint64_t floor = db->o.min_free_bytes;
    uint64_t pct = total / 100 * (uint64_t)db->o.min_free_percent;
    if (pct > floor)
        floor = pct;
    if (avail >= floor)
        return 1;
    snprintf(why, whylen,
             "free space is below the floor (%" PRIu64 " bytes free, floor %" PRIu64 ")", avail,
             floor);
    return 0;
}

void tsdb__stop_writing(struct tsdb *db, const char *why)
{
    if (!atomic_exchange(&db->blocked, 1))
        log_error("tsdb: %s: %s; the store stops writing to disk and keeps new samples in "
                  "memory until it can write again (sitrep_tsdb_writes_blocked)",
                  db->dir, why);
}

static void check_space(struct tsdb *db)
{
    char why[160];
    int ok = space_ok(db, why, sizeof(why));
    if (!atomic_load(&db->blocked)) {
        if (!ok)
            tsdb__stop_writing(db, why);
        return;
    }
    if (!ok)
        return;
    /* Space is back: resume the WAL, then persist what only memory holds. */
    atomic_store(&db->blocked, 0);
    if (tsdb__checkpoint(db) < 0) {
        tsdb__stop_writing(db, "the checkpoint after space returned failed");
        return;
    }
    db->last_checkpoint_ns = util_mono_ns();
    log_info("tsdb: %s: writing again; memory made durable by a checkpoint", db->dir);
}

/* --------------------------------------------------------------- pass */

/* Changes whenever a block is written, merged or deleted, a checkpoint is
 * taken or the WAL moves to a new segment. */
static uint64_t layout_mark(struct tsdb *db)
{
    return atomic_load(&db->blocks_written) + atomic_load(&db->compactions) +
           atomic_load(&db->retention_deleted) + atomic_load(&db->size_deleted) +
           atomic_load(&db->checkpoints) + (db->wal ? tsdb__wal_segment(db->wal) : 0);
}

int tsdb_maintain(struct tsdb *db, int flags)
{
    pthread_mutex_lock(&db->maint);
    int rc = 0;
    check_space(db);
    int blocked = atomic_load(&db->blocked);
    if (!blocked && tsdb_sync(db) < 0 && !atomic_load(&db->blocked)) {
        char why[160];
        snprintf(why, sizeof(why), "syncing the WAL failed: %s", strerror(errno));
        tsdb__stop_writing(db, why);
        blocked = 1;
    }
    int cuts = blocked ? 0 : cut(db, flags);
    if (cuts < 0) {
        rc = -1;
        if (errno == ENOSPC || errno == EDQUOT) {
            char why[160];
            snprintf(why, sizeof(why), "cutting a block failed: %s", strerror(errno));
            tsdb__stop_writing(db, why);
        }
    } else if (cuts > 0) {
        /* Series whose last samples went to disk now hold nothing here. */
        tsdb__gc(db, 0);
    }
    for (int t = 0; t < TSDB__TIERS && !atomic_load(&db->blocked); t++)
        if (compact_tier(db, t) < 0 || (t == TSDB__TIER_RAW && fill_tiers(db) < 0))
            rc = -1;
    /* Retention and the WAL's size need a directory walk: on every explicit
     * call, when blocks or segments came or went, and every DU_EVERY_NS. */
    int64_t now = util_mono_ns();
    uint64_t mark = layout_mark(db);
    int walk =
        !db->o.background || flags || mark != db->du_mark || now - db->last_du_ns >= DU_EVERY_NS;
    if (walk) {
        retention(db);
        db->du_mark = layout_mark(db);
        db->last_du_ns = now;
    }
    char wal[4096];
    snprintf(wal, sizeof(wal), "%s/wal", db->dir);
    if (!atomic_load(&db->blocked) &&
        (now - db->last_checkpoint_ns >= db->o.checkpoint_interval_ms * 1000000 ||
         (walk && util_dir_bytes(wal) > WAL_CHECKPOINT_BYTES))) {
        if (tsdb__checkpoint(db) < 0)
            rc = -1;
        db->last_checkpoint_ns = util_mono_ns();
    }
    pthread_mutex_unlock(&db->maint);
    return rc;
}

static void *maint_main(void *arg)
{
    struct tsdb *db = arg;
    pthread_mutex_lock(&db->wake_mu);
    while (!db->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + db->o.sync_interval_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&db->wake, &db->wake_mu, &ts);
        if (db->stop)
            break;
        pthread_mutex_unlock(&db->wake_mu);
        tsdb_maintain(db, 0);
        pthread_mutex_lock(&db->wake_mu);
    }
    pthread_mutex_unlock(&db->wake_mu);
    return NULL;
}

int tsdb__maint_start(struct tsdb *db, char *err, size_t errlen)
{
    int e = pthread_create(&db->thread, NULL, maint_main, db);
    if (e) {
        snprintf(err, errlen, "tsdb: cannot start its thread: %s", strerror(e));
        return -1;
    }
    db->running = 1;
    return 0;
}

void tsdb__maint_stop(struct tsdb *db)
{
    if (!db->running)
        return;
    pthread_mutex_lock(&db->wake_mu);
    db->stop = 1;
    pthread_cond_signal(&db->wake);
    pthread_mutex_unlock(&db->wake_mu);
    pthread_join(db->thread, NULL);
    db->running = 0;
}
