/*
 * tsdb.c: the store's public API (see tsdb.h): batches -> index + WAL +
 * head; selections -> index + head. On open the WAL is replayed into a
 * fresh index and head.
 *
 * WAL records (payloads, little-endian):
 *   SERIES  (1): u32 id | u16 n | n x (u16 len, name bytes, u16 len, value bytes)
 *   SAMPLES (2): i64 ts | u32 n | n x (u32 id, u64 value bits)
 * Series ids in the WAL are those of the run that wrote it; replay maps
 * them to the ids the fresh index hands out (the same, in practice).
 */
#include "tsdb/tsdb.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/index.h"
#include "tsdb/wal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { REC_SERIES = 1, REC_SAMPLES = 2 };

struct tsdb {
    char *dir;
    struct tsdb__index *idx;
    struct tsdb__head *head;
    struct tsdb__wal *wal;
    uint32_t max_labels;
    pthread_mutex_t append; /* one batch at a time: WAL order = append order */
    uint8_t *rec;           /* scratch for WAL payloads (under append) */
    size_t rec_cap;
    uint32_t *ids; /* series id per sample of the last batch (UINT32_MAX: refused) */
    int8_t *why;   /* per refused sample: 1 series limit, 2 invalid */
    size_t ids_cap, why_cap;
    /*
     * The last batch's shape (its string arena and the layout of families and
     * labels): a producer sends the same shape tick after tick, and then the
     * ids above are reused instead of looking every series up again.
     */
    char *shape;
    size_t shape_len, shape_cap, shape_nfams, shape_nsamples;
};

struct wbuf {
    uint8_t **p;
    size_t *cap;
    size_t len;
};

static void wput(struct wbuf *w, const void *src, size_t n)
{
    void *p = *w->p;
    util_grow(&p, w->cap, w->len + n, 1);
    *w->p = p;
    memcpy(*w->p + w->len, src, n);
    w->len += n;
}

static void wput16(struct wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wput(w, b, 2);
}

static void wput32(struct wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wput(w, b, 4);
}

static void wput64(struct wbuf *w, uint64_t v)
{
    wput32(w, (uint32_t)v);
    wput32(w, (uint32_t)(v >> 32));
}

static uint64_t get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ------------------------------------------------------------- replay */

struct replay {
    struct tsdb *db;
    uint32_t *map; /* WAL id -> index id, UINT32_MAX if unknown */
    size_t map_cap;
    uint64_t bad, samples;
};

static int replay_series(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 6)
        return -1;
    uint32_t wid = (uint32_t)get(p, 4);
    size_t n = (size_t)get(p + 4, 2), off = 6;
    if (n == 0 || n > TSDB_MAX_LABELS_LIMIT)
        return -1;
    struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
    char *strs[2 * TSDB_MAX_LABELS_LIMIT];
    int rc = 0;
    size_t made = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t l;
        if (off + 2 > len || (l = (size_t)get(p + off, 2), off + 2 + l > len)) {
            rc = -1;
            break;
        }
        strs[made++] = xstrndup((const char *)p + off + 2, l);
        off += 2 + l;
    }
    uint32_t id = 0;
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            ls[i] = (struct tsdb__label){strs[2 * i], strs[2 * i + 1]};
        rc = tsdb__index_get_or_create(r->db->idx, ls, n, &id) < 0 ? -1 : 0;
    }
    for (size_t i = 0; i < made; i++)
        free(strs[i]);
    if (rc < 0)
        return -1;
    if (wid >= r->map_cap) {
        size_t old = r->map_cap;
        void *m = r->map;
        util_grow(&m, &r->map_cap, (size_t)wid + 1, sizeof(uint32_t));
        r->map = m;
        memset(r->map + old, 0xff, (r->map_cap - old) * sizeof(uint32_t));
    }
    r->map[wid] = id;
    return 0;
}

static int replay_samples(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 12)
        return -1;
    int64_t ts = (int64_t)get(p, 8);
    size_t n = (size_t)get(p + 8, 4);
    if (n > (len - 12) / 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = p + 12 + 12 * i;
        uint32_t wid = (uint32_t)get(e, 4);
        uint64_t bits = get(e + 4, 8);
        double v;
        memcpy(&v, &bits, 8);
        if (wid >= r->map_cap || r->map[wid] == UINT32_MAX) {
            r->bad++;
            continue;
        }
        if (tsdb__head_append(r->db->head, r->map[wid], ts, v) == 0)
            r->samples++;
    }
    return 0;
}

static int on_record(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    (void)seg;
    struct replay *r = ctx;
    int rc = type == REC_SERIES    ? replay_series(r, p, len)
             : type == REC_SAMPLES ? replay_samples(r, p, len)
                                   : -1;
    if (rc < 0)
        r->bad++;
    return 0;
}

/* --------------------------------------------------------------- open */

int tsdb_open(struct tsdb **out, const struct tsdb_opts *opts, char *err, size_t errlen)
{
    if (mkdir(opts->dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", opts->dir, strerror(errno));
        return -1;
    }
    struct tsdb *db = xcalloc(1, sizeof(*db));
    db->dir = xstrdup(opts->dir);
    struct tsdb__index_opts io = {.max_series = opts->max_series, .max_labels = opts->max_labels};
    db->max_labels = opts->max_labels ? opts->max_labels : TSDB_MAX_LABELS_DEFAULT;
    db->idx = tsdb__index_new(&io);
    db->head = tsdb__head_new();
    pthread_mutex_init(&db->append, NULL);

    char wal[4096];
    snprintf(wal, sizeof(wal), "%s/wal", opts->dir);
    struct replay r = {.db = db};
    struct tsdb__wal_stats st;
    int64_t t0 = util_mono_ns();
    int rc = tsdb__wal_replay(wal, on_record, &r, &st);
    free(r.map);
    if (st.records)
        log_info("tsdb: replayed %llu WAL records (%llu samples, %u series) in %.0f ms%s",
                 (unsigned long long)st.records, (unsigned long long)r.samples,
                 tsdb__index_series_count(db->idx), (double)(util_mono_ns() - t0) / 1e6,
                 st.corrupt_ranges ? "; damaged ranges skipped (see above)" : "");
    if (r.bad)
        log_warn("tsdb: %llu WAL records or samples could not be applied",
                 (unsigned long long)r.bad);
    if (rc < 0 || tsdb__wal_open(&db->wal, wal, 0, err, errlen) < 0) {
        if (rc < 0)
            snprintf(err, errlen, "%s: WAL could not be read", wal);
        tsdb_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void tsdb_close(struct tsdb *db)
{
    if (!db)
        return;
    tsdb__wal_close(db->wal);
    tsdb__head_free(db->head);
    tsdb__index_free(db->idx);
    pthread_mutex_destroy(&db->append);
    free(db->rec);
    free(db->ids);
    free(db->why);
    free(db->shape);
    free(db->dir);
    free(db);
}

uint32_t tsdb_series_count(struct tsdb *db)
{
    return tsdb__index_series_count(db->idx);
}

/* ------------------------------------------------------------- append */

/* The label set of sample s: __name__ first, then its labels. */
static size_t sample_labels(const struct metric_buf *b, const char *name,
                            const struct metric_sample *s, struct tsdb__label *ls, size_t cap)
{
    size_t n = 0;
    ls[n++] = (struct tsdb__label){"__name__", name};
    const char *p = metric_str(b, s->labels);
    for (uint32_t i = 0; i < s->nlabels && n < cap; i++) {
        const char *k = p, *v = p + strlen(p) + 1;
        ls[n++] = (struct tsdb__label){k, v};
        p = v + strlen(v) + 1;
    }
    return n;
}

static void log_series(struct tsdb *db, uint32_t id, const struct tsdb__label *ls, size_t n)
{
    struct wbuf w = {&db->rec, &db->rec_cap, 0};
    wput32(&w, id);
    wput16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(ls[i].name), vl = strlen(ls[i].value);
        wput16(&w, (uint16_t)kl);
        wput(&w, ls[i].name, kl);
        wput16(&w, (uint16_t)vl);
        wput(&w, ls[i].value, vl);
    }
    tsdb__wal_append(db->wal, REC_SERIES, db->rec, w.len);
}

/* Whether b has the same series, in the same order, as the last batch. */
static int same_shape(const struct tsdb *db, const struct metric_buf *b)
{
    if (db->shape_len != b->arena_len || db->shape_nfams != b->nfams ||
        db->shape_nsamples != b->nsamples || memcmp(db->shape, b->arena, b->arena_len) != 0)
        return 0;
    /* Equal arenas hold equal strings; the offsets say which go together. */
    const uint32_t *lay = (const uint32_t *)(db->shape + ((db->shape_len + 3) & ~(size_t)3));
    for (size_t f = 0; f < b->nfams; f++, lay += 3)
        if (lay[0] != b->fams[f].name || lay[1] != b->fams[f].first || lay[2] != b->fams[f].count)
            return 0;
    for (size_t i = 0; i < b->nsamples; i++, lay += 2)
        if (lay[0] != b->samples[i].labels || lay[1] != b->samples[i].nlabels)
            return 0;
    return 1;
}

static void save_shape(struct tsdb *db, const struct metric_buf *b)
{
    size_t base = (b->arena_len + 3) & ~(size_t)3;
    size_t need = base + (3 * b->nfams + 2 * b->nsamples) * sizeof(uint32_t);
    void *p = db->shape;
    util_grow(&p, &db->shape_cap, need, 1);
    db->shape = p;
    memcpy(db->shape, b->arena, b->arena_len);
    uint32_t *lay = (uint32_t *)(db->shape + base);
    for (size_t f = 0; f < b->nfams; f++) {
        *lay++ = b->fams[f].name;
        *lay++ = b->fams[f].first;
        *lay++ = b->fams[f].count;
    }
    for (size_t i = 0; i < b->nsamples; i++) {
        *lay++ = b->samples[i].labels;
        *lay++ = b->samples[i].nlabels;
    }
    db->shape_len = b->arena_len;
    db->shape_nfams = b->nfams;
    db->shape_nsamples = b->nsamples;
}

/* Resolve every sample's series id (creating and logging new series). */
static void resolve(struct tsdb *db, const struct metric_buf *b)
{
    struct tsdb__label ls[METRIC_MAX_LABELS + 1];
    for (size_t f = 0; f < b->nfams; f++) {
        const struct metric_fam_rec *fam = &b->fams[f];
        const char *name = metric_str(b, fam->name);
        for (uint32_t k = 0; k < fam->count; k++) {
            size_t i = fam->first + k;
            size_t n = sample_labels(b, name, &b->samples[i], ls, ARRAY_SIZE(ls));
            uint32_t id;
            int rc = tsdb__index_get_or_create(db->idx, ls, n, &id);
            if (rc == 1)
                log_series(db, id, ls, n);
            db->why[i] = rc >= 0 ? 0 : rc == TSDB__ESERIES_LIMIT ? 1 : 2;
            db->ids[i] = rc >= 0 ? id : UINT32_MAX;
        }
    }
}

int tsdb_append_batch(struct tsdb *db, const struct metric_buf *b, struct tsdb_append_stats *st)
{
    pthread_mutex_lock(&db->append);
    if (!same_shape(db, b)) {
        void *p = db->ids;
        util_grow(&p, &db->ids_cap, b->nsamples + 1, sizeof(uint32_t));
        db->ids = p;
        p = db->why;
        util_grow(&p, &db->why_cap, b->nsamples + 1, 1);
        db->why = p;
        resolve(db, b);
        save_shape(db, b);
    }
    /* One SAMPLES record for the batch. */
    struct wbuf w = {&db->rec, &db->rec_cap, 0};
    wput64(&w, (uint64_t)b->ts_ms);
    wput32(&w, 0); /* count, patched below */
    uint32_t count = 0;
    for (size_t i = 0; i < b->nsamples; i++) {
        if (db->ids[i] == UINT32_MAX) {
            if (db->why[i] == 1)
                st->series_limit++;
            else
                st->invalid++;
            continue;
        }
        double v = b->samples[i].value;
        if (tsdb__head_append(db->head, db->ids[i], b->ts_ms, v) != 0) {
            st->out_of_order++;
            continue;
        }
        uint64_t bits;
        memcpy(&bits, &v, 8);
        wput32(&w, db->ids[i]);
        wput64(&w, bits);
        count++;
        st->accepted++;
    }
    for (int k = 0; k < 4; k++)
        db->rec[8 + k] = (uint8_t)(count >> (8 * k));
    if (count)
        tsdb__wal_append(db->wal, REC_SAMPLES, db->rec, w.len);
    int rc = tsdb__wal_flush(db->wal);
    pthread_mutex_unlock(&db->append);
    return rc;
}

int tsdb_sync(struct tsdb *db)
{
    pthread_mutex_lock(&db->append);
    int rc = tsdb__wal_sync(db->wal);
    pthread_mutex_unlock(&db->append);
    return rc;
}

/* ------------------------------------------------------------- select */

int tsdb_select(struct tsdb *db, const struct tsdb_matcher *ms, size_t n, int64_t mint,
                int64_t maxt, tsdb_series_fn fn, void *ctx, char *err, size_t errlen)
{
    static const enum tsdb__match_type types[] = {TSDB__MATCH_EQ, TSDB__MATCH_NE, TSDB__MATCH_RE,
                                                  TSDB__MATCH_NRE};
    struct tsdb__matcher *m = xcalloc(n ? n : 1, sizeof(*m));
    size_t ok = 0;
    int rc = 0;
    for (; ok < n; ok++)
        if (tsdb__matcher_compile(&m[ok], types[ms[ok].op], ms[ok].name, ms[ok].value, err,
                                  errlen) < 0) {
            rc = -1;
            break;
        }
    if (rc == 0 && tsdb__matchers_check(m, n) < 0) {
        snprintf(err, errlen, "vector selector must contain at least one non-empty matcher");
        rc = -1;
    }
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    if (rc == 0 && tsdb__index_select(db->idx, m, n, &sel) < 0) {
        snprintf(err, errlen, "a regex hit its match limit; simplify it");
        rc = -1;
    }
    struct tsdb__label *tl = xmalloc(db->max_labels * sizeof(*tl));
    struct metric_label *ml = xmalloc(db->max_labels * sizeof(*ml));
    struct tsdb_sample *samples = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < sel.n; i++) {
        int nl = tsdb__index_labels(db->idx, sel.ids[i], tl, db->max_labels);
        long ns = tsdb__head_read(db->head, sel.ids[i], mint, maxt, &samples, &cap);
        if (nl < 0 || ns < 0) {
            snprintf(err, errlen, "series %u: %s", sel.ids[i],
                     ns < 0 ? tsdb__strerror((int)ns) : tsdb__index_strerror(nl));
            rc = -1;
            break;
        }
        for (int k = 0; k < nl; k++)
            ml[k] = (struct metric_label){tl[k].name, tl[k].value};
        if (ns > 0 && fn(ctx, ml, (size_t)nl, samples, (size_t)ns))
            break;
    }
    free(samples);
    free(ml);
    free(tl);
    tsdb__sel_release(&sel);
    for (size_t i = 0; i < ok; i++)
        tsdb__matcher_release(&m[i]);
    free(m);
    return rc;
}
