/*
 * head.c: per-series sample storage in memory (see head.h). A sample goes
 * into the series' raw tail; a full tail (TSDB_BLOCK_MAX samples) is encoded
 * onto the series' chunk for its aligned window (split at a window
 * boundary), so each chunk belongs to exactly one block window; a chunk that
 * reaches its byte cap is followed by another.
 *
 * The raw tail is a separate allocation (1 KiB), given back when a cut
 * leaves the series empty, so series that stopped reporting cost little.
 */
#include "tsdb/head.h"
#include "tsdb/chunk.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES     64
#define SLAB_SERIES 256

/*
 * Samples not yet encoded. Timestamps are kept as 32-bit offsets from the
 * first one (a sample more than 49 days after it seals the tail first):
 * 776 bytes instead of 1 KiB, for every series in memory.
 */
struct raw_tail {
    int64_t base;
    uint32_t dt[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
};

static inline int64_t tail_ts(const struct raw_tail *r, uint32_t i)
{
    return r->base + (int64_t)r->dt[i];
}

/* The tail's timestamps as int64 (out holds TSDB_BLOCK_MAX). */
static void tail_times(const struct raw_tail *r, uint32_t n, int64_t *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = tail_ts(r, i);
}

struct tsdb__head_series {
    struct tsdb__chunk *chunks; /* oldest first; the last one is open */
    uint32_t nchunks, cap;
    uint32_t nraw;
    uint32_t stripe;
    int64_t last_ts;
    int have_last;
    struct raw_tail *raw; /* NULL while empty */
};

struct tsdb__head {
    int64_t span;
    _Atomic int64_t min_valid;
    /* The oldest and newest timestamps ever appended or loaded (see tsdb__head_hints). */
    _Atomic int64_t lo_hint, hi_hint;
    pthread_rwlock_t grow; /* guards the series array itself */
    struct tsdb__head_series **series;
    size_t nseries, cap;
    pthread_mutex_t stripe[STRIPES];
    struct tsdb__head_series **slabs; /* series live in slabs, never freed alone */
    size_t nslabs, slab_used;
};

/* A zeroed series from the current slab (caller holds h->grow for writing). */
static struct tsdb__head_series *slab_get(struct tsdb__head *h)
{
    if (!h->nslabs || h->slab_used == SLAB_SERIES) {
        h->slabs = xrealloc(h->slabs, (h->nslabs + 1) * sizeof(*h->slabs));
        h->slabs[h->nslabs++] = xcalloc(SLAB_SERIES, sizeof(struct tsdb__head_series));
        h->slab_used = 0;
    }
    return &h->slabs[h->nslabs - 1][h->slab_used++];
}

struct tsdb__head *tsdb__head_new(int64_t span_ms)
{
    struct tsdb__head *h = xcalloc(1, sizeof(*h));
    h->span = span_ms > 0 ? span_ms : TSDB_HEAD_CHUNK_SPAN_MS;
    atomic_init(&h->min_valid, INT64_MIN);
    atomic_init(&h->lo_hint, INT64_MAX);
    atomic_init(&h->hi_hint, INT64_MIN);
    pthread_rwlock_init(&h->grow, NULL);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&h->stripe[i], NULL);
    return h;
}

/* Give back what a series holds (its struct stays in its slab). */
static void series_release(struct tsdb__head_series *s)
{
    for (size_t k = 0; k < s->nchunks; k++)
        tsdb__chunk_release(&s->chunks[k]);
    free(s->chunks);
    free(s->raw);
}

void tsdb__head_free(struct tsdb__head *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nseries; i++) {
        if (h->series[i])
            series_release(h->series[i]);
    }
    for (size_t i = 0; i < h->nslabs; i++)
        free(h->slabs[i]);
    free(h->slabs);
    free(h->series);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&h->stripe[i]);
    pthread_rwlock_destroy(&h->grow);
    free(h);
}

int64_t tsdb__head_span(const struct tsdb__head *h)
{
    return h->span;
}

int64_t tsdb__head_window(const struct tsdb__head *h, int64_t ts)
{
    int64_t w = ts / h->span;
    if (ts < 0 && w * h->span != ts)
        w--;
    return w * h->span;
}

void tsdb__head_set_min_valid(struct tsdb__head *h, int64_t t)
{
    int64_t cur = atomic_load(&h->min_valid);
    while (t > cur && !atomic_compare_exchange_weak(&h->min_valid, &cur, t))
        ;
}

int64_t tsdb__head_min_valid(const struct tsdb__head *h)
{
    return atomic_load(&((struct tsdb__head *)h)->min_valid);
}

/* Widen the hints to cover [lo, hi]: once per appended run, not per sample. */
static void note_range(struct tsdb__head *h, int64_t lo, int64_t hi)
{
    int64_t cur = atomic_load(&h->lo_hint);
    while (lo < cur && !atomic_compare_exchange_weak(&h->lo_hint, &cur, lo))
        ;
    cur = atomic_load(&h->hi_hint);
    while (hi > cur && !atomic_compare_exchange_weak(&h->hi_hint, &cur, hi))
        ;
}

void tsdb__head_hints(struct tsdb__head *h, int64_t *lo, int64_t *hi)
{
    *lo = atomic_load(&h->lo_hint);
    *hi = atomic_load(&h->hi_hint);
}

/* The series with id (NULL if none); caller holds h->grow. */
static struct tsdb__head_series *find(struct tsdb__head *h, uint32_t id)
{
    return id < h->nseries ? h->series[id] : NULL;
}

struct tsdb__head_series *tsdb__head_ref(struct tsdb__head *h, uint32_t id)
{
    pthread_rwlock_rdlock(&h->grow);
    struct tsdb__head_series *s = find(h, id);
    pthread_rwlock_unlock(&h->grow);
    if (s)
        return s;
    pthread_rwlock_wrlock(&h->grow);
    if (id >= h->nseries) {
        void *p = h->series;
        util_grow(&p, &h->cap, (size_t)id + 1, sizeof(*h->series));
        h->series = p;
        memset(h->series + h->nseries, 0, (h->cap - h->nseries) * sizeof(*h->series));
        h->nseries = h->cap;
    }
    if (!h->series[id]) {
        s = slab_get(h);
        /*
         * Runs of 16 consecutive ids share a stripe: a batch appended in
         * stripe order then walks neighbouring series, which the slab keeps
         * next to each other in memory.
         */
        s->stripe = (id / 16) % STRIPES;
        h->series[id] = s;
    }
    s = h->series[id];
    pthread_rwlock_unlock(&h->grow);
    return s;
}

void tsdb__head_refs(struct tsdb__head *h, const uint32_t *ids, size_t n,
                     struct tsdb__head_series **out)
{
    size_t missing = 0;
    pthread_rwlock_rdlock(&h->grow);
    for (size_t k = 0; k < n; k++)
        missing += !(out[k] = find(h, ids[k]));
    pthread_rwlock_unlock(&h->grow);
    for (size_t k = 0; missing && k < n; k++)
        if (!out[k]) {
            out[k] = tsdb__head_ref(h, ids[k]);
            missing--;
        }
}

unsigned tsdb__head_stripe(const struct tsdb__head_series *s)
{
    return s->stripe;
}

/* A new (uninitialised) last slot in s->chunks. */
static struct tsdb__chunk *add_chunk(struct tsdb__head_series *s)
{
    /* Usually one chunk (one window), two for a while around a cut: start at one. */
    if (s->nchunks == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1;
        s->chunks = xrealloc(s->chunks, s->cap * sizeof(*s->chunks));
    }
    return &s->chunks[s->nchunks++];
}

/* Append n raw samples of one window to the series' chunk for that window. */
static int seal_run(struct tsdb__head *h, struct tsdb__head_series *s, const int64_t *ts,
                    const double *v, size_t n)
{
    struct tsdb__chunk *open = s->nchunks ? &s->chunks[s->nchunks - 1] : NULL;
    if (open && open->nsamples && tsdb__head_window(h, open->mint) != tsdb__head_window(h, ts[0]))
        open = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!open) {
            open = add_chunk(s);
            tsdb__chunk_init(open);
        }
        int rc = tsdb__chunk_append(open, ts, v, n);
        if (rc != TSDB__EFULL)
            return rc;
        open = NULL; /* full: a second chunk in the same window */
    }
    return TSDB__EFULL;
}

/*
 * Encode the raw samples before t onto the chunks, a run per window, and
 * keep the rest raw. Chunks never straddle an aligned window, so whole
 * chunks can later be written into the block of their window.
 */
static int seal(struct tsdb__head *h, struct tsdb__head_series *s, int64_t t)
{
    int64_t ts[TSDB_BLOCK_MAX];
    tail_times(s->raw, s->nraw, ts);
    uint32_t i = 0, end = 0;
    while (end < s->nraw && ts[end] < t)
        end++;
    int rc = 0;
    while (i < end && rc == 0) {
        /* The window's end, once: no division per sample (hot: every 64). */
        int64_t w = tsdb__head_window(h, ts[i]);
        int64_t wend = w > INT64_MAX - h->span ? INT64_MAX : w + h->span;
        uint32_t j = i + 1;
        while (j < end && ts[j] < wend)
            j++;
        rc = seal_run(h, s, ts + i, s->raw->v + i, j - i);
        i = j;
    }
    s->nraw -= end;
    if (s->nraw && end) {
        /* The rest starts the tail again, from its own first timestamp. */
        uint32_t d0 = s->raw->dt[end];
        for (uint32_t k = 0; k < s->nraw; k++)
            s->raw->dt[k] = s->raw->dt[end + k] - d0;
        s->raw->base = ts[end];
        memmove(s->raw->v, s->raw->v + end, s->nraw * sizeof(double));
    }
    return rc;
}

/* Append under the series' stripe lock: 0, 1 (out of order) or 2 (too old). */
static int put(struct tsdb__head *h, struct tsdb__head_series *s, int64_t ts, double v,
               int64_t min_valid)
{
    if (ts < min_valid)
        return 2;
    if (s->have_last && ts <= s->last_ts)
        return 1;
    if (!s->raw)
        s->raw = xmalloc(sizeof(*s->raw));
    if (s->nraw && (uint64_t)(ts - s->raw->base) > UINT32_MAX)
        seal(h, s, INT64_MAX); /* too far from the tail's base: encode the tail first */
    if (!s->nraw)
        s->raw->base = ts;
    s->raw->dt[s->nraw] = (uint32_t)(ts - s->raw->base);
    s->raw->v[s->nraw] = v;
    s->nraw++;
    s->last_ts = ts;
    s->have_last = 1;
    if (s->nraw == TSDB_BLOCK_MAX)
        seal(h, s, INT64_MAX); /* cannot fail: the order was checked above */
    return 0;
}

int tsdb__head_append(struct tsdb__head *h, uint32_t id, int64_t ts, double v)
{
    struct tsdb__head_series *s = tsdb__head_ref(h, id);
    pthread_mutex_t *m = &h->stripe[s->stripe];
    pthread_mutex_lock(m);
    int rc = put(h, s, ts, v, tsdb__head_min_valid(h));
    pthread_mutex_unlock(m);
    if (rc == 0)
        note_range(h, ts, ts);
    return rc == 0 ? 0 : rc == 1 ? TSDB__EORDER : TSDB__EOLD;
}

size_t tsdb__head_append_run(struct tsdb__head *h, struct tsdb__head_series *const *refs,
                             const uint32_t *idx, size_t n, int64_t ts, const void *vbase,
                             size_t vstride, uint8_t *res)
{
    size_t ok = 0;
    unsigned held = STRIPES;
    for (size_t k = 0; k < n; k++) {
        struct tsdb__head_series *s = refs[k];
        /*
         * A batch touches thousands of series, each in its own cache lines:
         * fetch the series a few ahead, and the tail slots of those nearer.
         * (The hot loop of appends; measured with bench/tsdb_bench.c.)
         */
        if (k + 16 < n)
            __builtin_prefetch(refs[k + 16], 1);
        if (k + 8 < n) {
            const struct tsdb__head_series *f = refs[k + 8];
            if (f->raw) {
                __builtin_prefetch(&f->raw->dt[f->nraw], 1);
                __builtin_prefetch(&f->raw->v[f->nraw], 1);
            }
        }
        if (s->stripe != held) {
            if (held != STRIPES)
                pthread_mutex_unlock(&h->stripe[held]);
            held = s->stripe;
            pthread_mutex_lock(&h->stripe[held]);
        }
        double v;
        memcpy(&v, (const char *)vbase + (size_t)idx[k] * vstride, sizeof(v));
        /* Read under the lock: a cut moves it, then seals each series under its lock. */
        res[k] = (uint8_t)put(h, s, ts, v, tsdb__head_min_valid(h));
        ok += res[k] == 0;
    }
    if (held != STRIPES)
        pthread_mutex_unlock(&h->stripe[held]);
    if (ok)
        note_range(h, ts, ts);
    return ok;
}

static void push(struct tsdb_sample **out, size_t *cap, size_t n, int64_t ts, double v)
{
    if (n >= *cap) {
        void *p = *out;
        util_grow(&p, cap, n + 1, sizeof(**out));
        *out = p;
    }
    (*out)[n].ts = ts;
    (*out)[n].v = v;
}

int tsdb__head_overlaps(struct tsdb__head *h, uint32_t id, int64_t mint, int64_t maxt)
{
    pthread_rwlock_rdlock(&h->grow);
    struct tsdb__head_series *s = find(h, id);
    pthread_rwlock_unlock(&h->grow);
    if (!s)
        return 0;
    pthread_mutex_lock(&h->stripe[s->stripe]);
    int64_t first = INT64_MAX;
    for (uint32_t k = 0; k < s->nchunks && first == INT64_MAX; k++)
        if (s->chunks[k].nsamples)
            first = s->chunks[k].mint;
    if (first == INT64_MAX && s->nraw)
        first = s->raw->base;
    int yes = first != INT64_MAX && first <= maxt && s->last_ts >= mint;
    pthread_mutex_unlock(&h->stripe[s->stripe]);
    return yes;
}

long tsdb__head_read(struct tsdb__head *h, uint32_t id, int64_t mint, int64_t maxt,
                     struct tsdb_sample **out, size_t *cap)
{
    pthread_rwlock_rdlock(&h->grow);
    struct tsdb__head_series *s = find(h, id);
    pthread_rwlock_unlock(&h->grow);
    if (!s)
        return 0;
    pthread_mutex_t *m = &h->stripe[s->stripe];
    pthread_mutex_lock(m);
    size_t n = 0;
    long rc = 0;
    struct tsdb__chunk_iter *it = NULL;
    for (size_t k = 0; k < s->nchunks && rc == 0; k++) {
        const struct tsdb__chunk *c = &s->chunks[k];
        if (!c->nsamples || c->maxt < mint || c->mint > maxt)
            continue;
        if (!it)
            it = xmalloc(sizeof(*it));
        int r = tsdb__chunk_iter_init_chunk(it, c, mint, maxt);
        int64_t t;
        double v;
        if (r == 0)
            while ((r = tsdb__chunk_iter_next(it, &t, &v)) > 0)
                push(out, cap, n++, t, v);
        if (r < 0)
            rc = r;
    }
    free(it);
    for (uint32_t i = 0; i < s->nraw && rc == 0; i++) {
        int64_t t = tail_ts(s->raw, i);
        if (t >= mint && t <= maxt)
            push(out, cap, n++, t, s->raw->v[i]);
    }
    pthread_mutex_unlock(m);
    return rc < 0 ? rc : (long)n;
}

int tsdb__head_visit(struct tsdb__head *h, uint32_t id, tsdb__head_chunk_fn fn,
                     tsdb__head_raw_fn raw_fn, void *ctx)
{
    pthread_rwlock_rdlock(&h->grow);
    struct tsdb__head_series *s = find(h, id);
    pthread_rwlock_unlock(&h->grow);
    int rc = 0;
    if (s) {
        pthread_mutex_lock(&h->stripe[s->stripe]);
        for (size_t k = 0; k < s->nchunks && rc == 0; k++)
            if (fn && s->chunks[k].nsamples)
                rc = fn(ctx, &s->chunks[k]);
        if (rc == 0 && raw_fn) {
            int64_t ts[TSDB_BLOCK_MAX];
            if (s->raw)
                tail_times(s->raw, s->nraw, ts);
            rc = raw_fn(ctx, s->raw ? ts : NULL, s->raw ? s->raw->v : NULL, s->nraw);
        }
        pthread_mutex_unlock(&h->stripe[s->stripe]);
    }
    return rc;
}

int tsdb__head_seal_before(struct tsdb__head *h, uint32_t id, int64_t t)
{
    pthread_rwlock_rdlock(&h->grow);
    struct tsdb__head_series *s = find(h, id);
    pthread_rwlock_unlock(&h->grow);
    if (!s)
        return 0;
    pthread_mutex_lock(&h->stripe[s->stripe]);
    int rc = s->nraw ? seal(h, s, t) : 0;
    pthread_mutex_unlock(&h->stripe[s->stripe]);
    return rc;
}

size_t tsdb__head_drop_before(struct tsdb__head *h, int64_t t)
{
    size_t freed = 0;
    pthread_rwlock_rdlock(&h->grow);
    for (size_t i = 0; i < h->nseries; i++) {
        struct tsdb__head_series *s = h->series[i];
        if (!s)
            continue;
        pthread_mutex_lock(&h->stripe[s->stripe]);
        uint32_t k = 0;
        while (k < s->nchunks && (!s->chunks[k].nsamples || s->chunks[k].maxt < t)) {
            freed += s->chunks[k].cap;
            tsdb__chunk_release(&s->chunks[k]);
            k++;
        }
        if (k) {
            s->nchunks -= k;
            memmove(s->chunks, s->chunks + k, s->nchunks * sizeof(*s->chunks));
        }
        if (!s->nchunks && s->cap) {
            free(s->chunks);
            s->chunks = NULL;
            s->cap = 0;
        }
        if (!s->nraw && s->raw) {
            free(s->raw);
            s->raw = NULL;
            freed += sizeof(struct raw_tail);
        }
        pthread_mutex_unlock(&h->stripe[s->stripe]);
    }
    pthread_rwlock_unlock(&h->grow);
    return freed;
}

int tsdb__head_load_chunk(struct tsdb__head *h, uint32_t id, const uint8_t *buf, size_t len)
{
    struct tsdb__chunk c;
    int rc = tsdb__chunk_load(&c, buf, len);
    if (rc < 0)
        return rc;
    struct tsdb__head_series *s = tsdb__head_ref(h, id);
    pthread_mutex_lock(&h->stripe[s->stripe]);
    if ((s->have_last && c.mint <= s->last_ts) || s->nraw) {
        rc = TSDB__EORDER;
        tsdb__chunk_release(&c);
    } else {
        *add_chunk(s) = c;
        s->last_ts = c.maxt;
        s->have_last = 1;
    }
    pthread_mutex_unlock(&h->stripe[s->stripe]);
    if (rc == 0)
        note_range(h, c.mint, c.maxt);
    return rc;
}

void tsdb__head_range(struct tsdb__head *h, int64_t *oldest, int64_t *newest)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    pthread_rwlock_rdlock(&h->grow);
    for (size_t i = 0; i < h->nseries; i++) {
        struct tsdb__head_series *s = h->series[i];
        if (!s)
            continue;
        pthread_mutex_lock(&h->stripe[s->stripe]);
        if (s->nchunks && s->chunks[0].nsamples && s->chunks[0].mint < lo)
            lo = s->chunks[0].mint;
        else if (!s->nchunks && s->nraw && s->raw->base < lo)
            lo = s->raw->base;
        if ((s->nchunks || s->nraw) && s->last_ts > hi)
            hi = s->last_ts;
        pthread_mutex_unlock(&h->stripe[s->stripe]);
    }
    pthread_rwlock_unlock(&h->grow);
    *oldest = lo;
    *newest = hi;
}

uint32_t tsdb__head_live(struct tsdb__head *h, uint8_t *live, uint32_t n)
{
    uint32_t count = 0;
    pthread_rwlock_rdlock(&h->grow);
    for (uint32_t id = 0; id < n; id++) {
        struct tsdb__head_series *s = find(h, id);
        live[id] = 0;
        if (!s)
            continue;
        pthread_mutex_lock(&h->stripe[s->stripe]);
        live[id] = s->nchunks || s->nraw;
        pthread_mutex_unlock(&h->stripe[s->stripe]);
        count += live[id];
    }
    pthread_rwlock_unlock(&h->grow);
    return count;
}

void tsdb__head_renumber(struct tsdb__head *h, const uint32_t *newid, uint32_t n, uint32_t kept)
{
    pthread_rwlock_wrlock(&h->grow);
    struct tsdb__head_series **old = h->series, **oslabs = h->slabs;
    size_t nold = h->nseries, noslabs = h->nslabs;
    h->series = xcalloc(kept ? kept : 1, sizeof(*h->series));
    h->nseries = h->cap = kept;
    h->slabs = NULL;
    h->nslabs = h->slab_used = 0;
    /* New slabs in the new order, so a batch in stripe order walks neighbours again. */
    for (size_t id = 0; id < nold; id++) {
        struct tsdb__head_series *s = old[id];
        uint32_t to = id < n ? newid[id] : UINT32_MAX;
        if (!s)
            continue; /* a kept id the head never saw: its slot comes on first use */
        if (to == UINT32_MAX || to >= kept) {
            series_release(s);
            continue;
        }
        struct tsdb__head_series *d = slab_get(h);
        *d = *s;
        d->stripe = (to / 16) % STRIPES; /* as tsdb__head_ref assigns it */
        h->series[to] = d;
    }
    for (size_t i = 0; i < noslabs; i++)
        free(oslabs[i]);
    free(oslabs);
    free(old);
    pthread_rwlock_unlock(&h->grow);
}

uint32_t tsdb__head_nseries(struct tsdb__head *h)
{
    pthread_rwlock_rdlock(&h->grow);
    uint32_t n = (uint32_t)h->nseries;
    pthread_rwlock_unlock(&h->grow);
    return n;
}

size_t tsdb__head_bytes(struct tsdb__head *h)
{
    size_t total = 0;
    pthread_rwlock_rdlock(&h->grow);
    total += h->cap * sizeof(*h->series);
    for (size_t i = 0; i < h->nseries; i++) {
        struct tsdb__head_series *s = h->series[i];
        if (!s)
            continue;
        pthread_mutex_lock(&h->stripe[s->stripe]);
        total += sizeof(*s) + s->cap * sizeof(*s->chunks) + (s->raw ? sizeof(*s->raw) : 0);
        for (size_t k = 0; k < s->nchunks; k++)
            total += s->chunks[k].cap;
        pthread_mutex_unlock(&h->stripe[s->stripe]);
    }
    pthread_rwlock_unlock(&h->grow);
    return total;
}
