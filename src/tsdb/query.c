/*
 * query.c: reading the store (see tsdb.h): tsdb_query_open/next/close and
 * tsdb_select on top of them.
 *
 * A query first plans which tier serves which part of its time range: the
 * tier chosen by the step where it has data, then finer tiers (recent data
 * not downsampled yet), then coarser ones (old data whose finer tiers were
 * deleted). It then takes references to the blocks it needs and collects
 * the label sets matching its matchers from each source (the head's index
 * and each block's index, built on first use), merged and sorted. next()
 * reads one series at a time from every piece of the plan, oldest first.
 *
 * Consistency with the background cut: a query holds db->epoch shared from
 * open to close, and the head is read only from the end of the newest raw
 * block listed when it opened; the cutter publishes a block, then waits for
 * the epoch before dropping the head's copy, so a query sees each sample
 * exactly once (lifecycle_test's test_reads_during_cuts races the two).
 */
#include "tsdb/chunk.h"
#include "tsdb/db.h"
#include "tsdb/downsample.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIECES 16

struct piece {
    int tier;
    int64_t from, to; /* [from, to] inclusive */
};

/*
 * A matching series. While collecting, one entry per (source, series) with
 * that source's id; dedupe() sorts them by label set and folds the entries
 * of one series into its first, whose [first, first + count) in q->ids says
 * where it lives, so reading never looks a series up again.
 */
struct entry {
    char *key; /* name\0value\0... */
    size_t keylen;
    uint32_t src;   /* SRC_HEAD or a position in q->brefs */
    uint32_t id;    /* the series' id in that source's index */
    uint32_t first; /* after dedupe(): its sources in q->ids */
    uint32_t count;
};

#define SRC_HEAD UINT32_MAX

/* Where one series lives: a source (SRC_HEAD or a position in q->brefs) and its id there. */
struct src_id {
    uint32_t src, id;
};

struct tsdb_query {
    struct tsdb *db;
    struct tsdb_range r;
    struct piece pieces[MAX_PIECES];
    int npieces;
    struct tsdb__bref **brefs; /* referenced blocks, by tier then mint */
    size_t nbrefs;
    int64_t head_from;
    struct entry *e;
    size_t ne, ecap, pos;
    struct src_id *ids; /* dedupe(): the sources of each entry */
    struct metric_label *ml;
    struct tsdb__label *tl;
    struct tsdb_sample *out, *tmp;
    size_t out_cap, tmp_cap;
    struct tsdb__aggs aggs;
    struct tsdb__chunk_iter *ci; /* reused by every block read */
};

/* ------------------------------------------------------------- planning */

/* [lo, hi] covered by tier t in the block snapshot (head included for raw). */
static int coverage(struct tsdb_query *q, int t, int64_t *lo, int64_t *hi)
{
    int any = 0;
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (size_t i = 0; i < q->nbrefs; i++) {
        struct tsdb__bref *b = q->brefs[i];
        if (b->tier != t)
            continue;
        any = 1;
        if (b->mint < *lo)
            *lo = b->mint;
        if (b->maxt - 1 > *hi)
            *hi = b->maxt - 1;
    }
    if (t == TSDB__TIER_RAW) {
        if (!any)
            *lo = q->head_from == INT64_MIN ? INT64_MIN : q->head_from;
        *hi = INT64_MAX;
        any = 1;
    }
    return any;
}

static int by_from(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* Split [mint, maxt] between the tiers in order of preference. */
static void plan(struct tsdb_query *q)
{
    int chosen = TSDB__TIER_RAW;
    for (int t = TSDB__TIERS - 1; t > 0; t--)
        if (q->r.step_ms >= tsdb__tier_res(t)) {
            chosen = t;
            break;
        }
    int pref[TSDB__TIERS], np = 0;
    for (int t = chosen; t >= 0; t--)
        pref[np++] = t;
    for (int t = chosen + 1; t < TSDB__TIERS; t++)
        pref[np++] = t;

    struct piece todo[MAX_PIECES];
    int nt = 0;
    todo[nt++] = (struct piece){-1, q->r.mint, q->r.maxt};
    for (int k = 0; k < np && nt; k++) {
        int64_t lo, hi;
        if (!coverage(q, pref[k], &lo, &hi))
            continue;
        struct piece left[MAX_PIECES];
        int nl = 0;
        for (int i = 0; i < nt; i++) {
            struct piece u = todo[i];
            int64_t a = u.from > lo ? u.from : lo, b = u.to < hi ? u.to : hi;
            if (a > b) {
                left[nl++] = u;
                continue;
            }
            if (q->npieces < MAX_PIECES)
                q->pieces[q->npieces++] = (struct piece){pref[k], a, b};
            if (u.from < a && nl < MAX_PIECES)
                left[nl++] = (struct piece){-1, u.from, a - 1};
            if (b < u.to && nl < MAX_PIECES)
                left[nl++] = (struct piece){-1, b + 1, u.to};
        }
        memcpy(todo, left, sizeof(left[0]) * (size_t)nl);
        nt = nl;
    }
    qsort(q->pieces, (size_t)q->npieces, sizeof(q->pieces[0]), by_from);
}

/* Whether tier t's block b is needed by some piece. */
static int needed(const struct tsdb_query *q, const struct tsdb__bref *b)
{
    for (int i = 0; i < q->npieces; i++)
        if (q->pieces[i].tier == b->tier && b->mint <= q->pieces[i].to &&
            b->maxt - 1 >= q->pieces[i].from)
            return 1;
    return 0;
}

/* ---------------------------------------------------------- series set */

static char *make_key(const struct tsdb__label *ls, int n, size_t *len)
{
    size_t l = 0;
    for (int i = 0; i < n; i++)
        l += strlen(ls[i].name) + strlen(ls[i].value) + 2;
    char *k = xmalloc(l ? l : 1), *p = k;
    for (int i = 0; i < n; i++) {
        size_t a = strlen(ls[i].name) + 1, b = strlen(ls[i].value) + 1;
        memcpy(p, ls[i].name, a);
        memcpy(p + a, ls[i].value, b);
        p += a + b;
    }
    *len = l;
    return k;
}

static int cmp_key(const struct entry *x, const struct entry *y)
{
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = cmp_key(x, y);
    return c ? c : (x->src > y->src) - (x->src < y->src);
}

/* Add the series of idx (source src) matching ms to q's entries. Returns 0 or -1. */
static int collect(struct tsdb_query *q, uint32_t src, struct tsdb__index *idx,
                   struct tsdb__matcher *ms, size_t n, struct tsdb__sel *sel)
{
    if (tsdb__index_select(idx, ms, n, sel) < 0)
        return -1;
    for (size_t i = 0; i < sel->n; i++) {
        int nl = tsdb__index_labels(idx, sel->ids[i], q->tl, TSDB_MAX_LABELS_LIMIT);
        if (nl < 0)
            continue;
        if (q->ne == q->ecap) {
            void *p = q->e;
            util_grow(&p, &q->ecap, q->ne + 1, sizeof(*q->e));
            q->e = p;
        }
        q->e[q->ne].key = make_key(q->tl, nl, &q->e[q->ne].keylen);
        q->e[q->ne].src = src;
        q->e[q->ne].id = sel->ids[i];
        q->ne++;
    }
    return 0;
}

/* Sort the entries and fold the sources of each series into one entry. */
static void dedupe(struct tsdb_query *q)
{
    if (!q->ne)
        return; /* q->e may be NULL: qsort's pointer must not be */
    /* One block's series come in label order already: skip the sort then. */
    size_t sorted = 1;
    while (sorted < q->ne && cmp_entry(&q->e[sorted - 1], &q->e[sorted]) <= 0)
        sorted++;
    if (sorted < q->ne)
        qsort(q->e, q->ne, sizeof(*q->e), cmp_entry);
    q->ids = xmalloc(q->ne * sizeof(*q->ids));
    size_t w = 0;
    for (size_t i = 0; i < q->ne; i++) {
        q->ids[i] = (struct src_id){q->e[i].src, q->e[i].id};
        if (w && cmp_key(&q->e[w - 1], &q->e[i]) == 0) {
            free(q->e[i].key);
            q->e[w - 1].count++;
            continue;
        }
        q->e[w] = q->e[i];
        q->e[w].first = (uint32_t)i;
        q->e[w].count = 1;
        w++;
    }
    q->ne = w;
}

/* The id of entry e in source src, or -1 if the series is not there. */
static long source_id(const struct tsdb_query *q, const struct entry *e, uint32_t src)
{
    for (uint32_t k = e->first; k < e->first + e->count; k++)
        if (q->ids[k].src == src)
            return q->ids[k].id;
    return -1;
}

/* --------------------------------------------------------------- open */

int tsdb_query_open(struct tsdb *db, const struct tsdb_matcher *ms, size_t n,
                    const struct tsdb_range *range, struct tsdb_query **out, char *err,
                    size_t errlen)
{
    static const enum tsdb__match_type types[] = {TSDB__MATCH_EQ, TSDB__MATCH_NE, TSDB__MATCH_RE,
                                                  TSDB__MATCH_NRE};
    struct tsdb__matcher *m = xcalloc(n ? n : 1, sizeof(*m));
    size_t ok = 0;
    int rc = 0;
    for (; ok < n; ok++)
        if ((unsigned)ms[ok].op > TSDB_NRE ||
            tsdb__matcher_compile(&m[ok], types[ms[ok].op], ms[ok].name, ms[ok].value, err,
                                  errlen) < 0) {
            if ((unsigned)ms[ok].op > TSDB_NRE)
                snprintf(err, errlen, "unknown matcher type %d", (int)ms[ok].op);
            rc = -1;
            break;
        }
    if (rc == 0 && tsdb__matchers_check(m, n) < 0) {
        snprintf(err, errlen, "vector selector must contain at least one non-empty matcher");
        rc = -1;
    }
    struct tsdb_query *q = NULL;
    if (rc == 0) {
        q = xcalloc(1, sizeof(*q));
        q->db = db;
        q->r = *range;
        q->tl = xmalloc(TSDB_MAX_LABELS_LIMIT * sizeof(*q->tl));
        q->ml = xmalloc(TSDB_MAX_LABELS_LIMIT * sizeof(*q->ml));
        tsdb__aggs_init(&q->aggs);
        pthread_rwlock_rdlock(&db->epoch);
        /* Snapshot the blocks overlapping the range (references, no lock kept). */
        pthread_mutex_lock(&db->blocks_mu);
        size_t total = 0;
        for (int t = 0; t < TSDB__TIERS; t++)
            total += db->nblocks[t];
        q->brefs = xmalloc((total ? total : 1) * sizeof(*q->brefs));
        /*
         * The head is read from the end of the newest raw block listed now,
         * not from the head's min_valid: the cutter raises min_valid before
         * it lists the window's block, and until it drops the head's copy
         * (after this query closes) the head still holds that window.
         */
        q->head_from = INT64_MIN;
        for (int t = 0; t < TSDB__TIERS; t++)
            for (size_t i = 0; i < db->nblocks[t]; i++) {
                struct tsdb__bref *b = db->blocks[t][i];
                if (t == TSDB__TIER_RAW && b->maxt > q->head_from)
                    q->head_from = b->maxt;
                if (b->mint <= range->maxt && b->maxt - 1 >= range->mint)
                    q->brefs[q->nbrefs++] = tsdb__bref_get(b);
            }
        pthread_mutex_unlock(&db->blocks_mu);
        plan(q);
        /* Keep only the blocks the plan reads. */
        size_t w = 0;
        for (size_t i = 0; i < q->nbrefs; i++) {
            if (needed(q, q->brefs[i]))
                q->brefs[w++] = q->brefs[i];
            else
                tsdb__bref_put(q->brefs[i]);
        }
        q->nbrefs = w;
        struct tsdb__sel sel;
        tsdb__sel_init(&sel);
        int head_used = 0;
        for (int i = 0; i < q->npieces; i++)
            head_used |= q->pieces[i].tier == TSDB__TIER_RAW;
        if (head_used && collect(q, SRC_HEAD, db->idx, m, n, &sel) < 0)
            rc = -1;
        for (size_t i = 0; rc == 0 && i < q->nbrefs; i++)
            if (collect(q, (uint32_t)i, tsdb__bref_index(q->brefs[i]), m, n, &sel) < 0)
                rc = -1;
        tsdb__sel_release(&sel);
        if (rc < 0)
            snprintf(err, errlen, "a regex hit its match limit; simplify it");
        dedupe(q);
    }
    for (size_t i = 0; i < ok; i++)
        tsdb__matcher_release(&m[i]);
    free(m);
    if (rc < 0) {
        tsdb_query_close(q);
        return -1;
    }
    *out = q;
    return 0;
}

void tsdb_query_close(struct tsdb_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nbrefs; i++)
        tsdb__bref_put(q->brefs[i]);
    pthread_rwlock_unlock(&q->db->epoch);
    for (size_t i = 0; i < q->ne; i++)
        free(q->e[i].key);
    free(q->e);
    free(q->ids);
    free(q->brefs);
    free(q->ml);
    free(q->tl);
    free(q->out);
    free(q->tmp);
    free(q->ci);
    tsdb__aggs_release(&q->aggs);
    free(q);
}

/* --------------------------------------------------------------- next */

static void push(struct tsdb_query *q, size_t *n, int64_t ts, double v)
{
    if (*n && ts <= q->out[*n - 1].ts)
        return; /* never twice, never backwards, whatever the sources hold */
    if (*n >= q->out_cap) {
        void *p = q->out;
        util_grow(&p, &q->out_cap, *n + 1, sizeof(*q->out));
        q->out = p;
    }
    q->out[*n].ts = ts;
    q->out[*n].v = v;
    (*n)++;
}

/* Decode the chunks of column col of block series i in [from, to] into q->tmp. */
static size_t read_col(struct tsdb_query *q, struct tsdb__bref *b, uint32_t i, int col,
                       int64_t from, int64_t to)
{
    struct tsdb__block_iter it;
    struct tsdb__block_chunk c;
    size_t n = 0;
    tsdb__block_iter_init(&it, b->b, i, col, from, to);
    while (tsdb__block_iter_next(&it, &c)) {
        /* Kept for the query's life: one per read was a malloc per series. */
        if (!q->ci)
            q->ci = xmalloc(sizeof(*q->ci));
        struct tsdb__chunk_iter *ci = q->ci;
        int r = tsdb__chunk_iter_init(ci, c.buf, c.len, from, to);
        /* A later part of the chunk: start where an earlier read's last block began. */
        struct tsdb__chunk_seek sk;
        int seeked = r == 0 && from > c.mint && tsdb__block_seek_get(b->b, c.num, &sk) &&
                     tsdb__chunk_iter_seek(ci, &sk);
        int64_t t;
        double v;
        if (r == 0)
            while ((r = tsdb__chunk_iter_next(ci, &t, &v)) > 0) {
                if (n >= q->tmp_cap) {
                    void *p = q->tmp;
                    util_grow(&p, &q->tmp_cap, n + 1, sizeof(*q->tmp));
                    q->tmp = p;
                }
                q->tmp[n].ts = t;
                q->tmp[n++].v = v;
            }
        if (r < 0)
            log_warn("tsdb: %s: chunk of series %u does not decode (%s); rest skipped", b->path, i,
                     tsdb__strerror(r));
        else if (!seeked && from > c.mint && ci->last.off)
            tsdb__block_seek_put(b->b, c.num, &ci->last);
    }
    return n;
}

static const int agg_col[] = {
    [TSDB_AGG_LAST] = TSDB__AGG_LAST,   [TSDB_AGG_MIN] = TSDB__AGG_MIN,
    [TSDB_AGG_MAX] = TSDB__AGG_MAX,     [TSDB_AGG_SUM] = TSDB__AGG_SUM,
    [TSDB_AGG_COUNT] = TSDB__AGG_COUNT, [TSDB_AGG_AVG] = TSDB__AGG_SUM,
};

/* Append block b's samples of its series i in [from, to]. */
static void read_block(struct tsdb_query *q, struct tsdb__bref *b, uint32_t i, int64_t from,
                       int64_t to, size_t *n)
{
    if (b->tier == TSDB__TIER_RAW) {
        size_t k = read_col(q, b, i, 0, from, to);
        for (size_t j = 0; j < k; j++)
            push(q, n, q->tmp[j].ts, q->tmp[j].v);
        return;
    }
    enum tsdb_agg a = q->r.agg <= TSDB_AGG_AVG ? q->r.agg : TSDB_AGG_LAST;
    size_t k = read_col(q, b, i, agg_col[a], from, to);
    if (a != TSDB_AGG_AVG) {
        for (size_t j = 0; j < k; j++)
            push(q, n, q->tmp[j].ts, q->tmp[j].v);
        return;
    }
    /* avg = sum / count, bucket by bucket (both columns share timestamps). */
    struct tsdb_sample *sums = xmalloc((k ? k : 1) * sizeof(*sums));
    memcpy(sums, q->tmp, k * sizeof(*sums));
    size_t kc = read_col(q, b, i, TSDB__AGG_COUNT, from, to);
    for (size_t j = 0, c = 0; j < k; j++) {
        while (c < kc && q->tmp[c].ts < sums[j].ts)
            c++;
        if (c < kc && q->tmp[c].ts == sums[j].ts && q->tmp[c].v > 0)
            push(q, n, sums[j].ts, sums[j].v / q->tmp[c].v);
    }
    free(sums);
}

int tsdb_query_next(struct tsdb_query *q, const struct metric_label **labels, size_t *nlabels,
                    const struct tsdb_sample **samples, size_t *nsamples)
{
    while (q->pos < q->ne) {
        struct entry *e = &q->e[q->pos++];
        int nl = 0;
        for (const char *p = e->key; p < e->key + e->keylen && nl < TSDB_MAX_LABELS_LIMIT; nl++) {
            q->tl[nl].name = p;
            p += strlen(p) + 1;
            q->tl[nl].value = p;
            p += strlen(p) + 1;
            q->ml[nl] = (struct metric_label){q->tl[nl].name, q->tl[nl].value};
        }
        size_t n = 0;
        long head_id = source_id(q, e, SRC_HEAD);
        if (q->r.series_only) {
            /* Listed when a block of the range holds it, or memory has samples in range. */
            int have = e->count > (head_id >= 0) ||
                       (head_id >= 0 &&
                        tsdb__head_overlaps(q->db->head, (uint32_t)head_id, q->r.mint, q->r.maxt));
            if (!have)
                continue;
            *labels = q->ml;
            *nlabels = (size_t)nl;
            *samples = NULL;
            *nsamples = 0;
            return 1;
        }
        for (int k = 0; k < q->npieces; k++) {
            struct piece *pc = &q->pieces[k];
            for (size_t i = 0; i < q->nbrefs; i++) {
                struct tsdb__bref *b = q->brefs[i];
                long id;
                if (b->tier == pc->tier && b->mint <= pc->to && b->maxt - 1 >= pc->from &&
                    (id = source_id(q, e, (uint32_t)i)) >= 0)
                    read_block(q, b, (uint32_t)id, pc->from, pc->to, &n);
            }
            if (pc->tier != TSDB__TIER_RAW)
                continue;
            int64_t from = pc->from > q->head_from ? pc->from : q->head_from;
            if (from > pc->to || head_id < 0)
                continue;
            long k2 =
                tsdb__head_read(q->db->head, (uint32_t)head_id, from, pc->to, &q->tmp, &q->tmp_cap);
            for (long j = 0; j < k2; j++)
                push(q, &n, q->tmp[j].ts, q->tmp[j].v);
        }
        if (!n)
            continue;
        *labels = q->ml;
        *nlabels = (size_t)nl;
        *samples = q->out;
        *nsamples = n;
        return 1;
    }
    return 0;
}

int tsdb_select(struct tsdb *db, const struct tsdb_matcher *ms, size_t n, int64_t mint,
                int64_t maxt, tsdb_series_fn fn, void *ctx, char *err, size_t errlen)
{
    struct tsdb_range r = {.mint = mint, .maxt = maxt};
    struct tsdb_query *q;
    if (tsdb_query_open(db, ms, n, &r, &q, err, errlen) < 0)
        return -1;
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    while (tsdb_query_next(q, &ls, &nl, &ss, &ns) > 0)
        if (fn(ctx, ls, nl, ss, ns))
            break;
    tsdb_query_close(q);
    return 0;
}
