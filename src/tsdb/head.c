/*
 * head.c: per-series sample storage in memory (see head.h). A sample goes
 * into the series' raw tail; a full tail (TSDB_BLOCK_MAX samples) is encoded
 * onto the series' chunk for its aligned TSDB_HEAD_CHUNK_SPAN_MS window
 * (split at a window boundary), so each chunk belongs to exactly one block
 * window; a chunk that reaches its byte cap is followed by another.
 */
#include "tsdb/head.h"
#include "tsdb/chunk.h"
#include "util/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64

struct head_series {
    struct tsdb__chunk *chunks; /* oldest first; the last one is open */
    size_t nchunks, cap;
    int64_t last_ts;
    int have_last;
    uint32_t nraw;
    int64_t raw_ts[TSDB_BLOCK_MAX];
    double raw_v[TSDB_BLOCK_MAX];
};

struct tsdb__head {
    pthread_rwlock_t grow; /* guards the series array itself */
    struct head_series **series;
    size_t nseries, cap;
    pthread_mutex_t stripe[STRIPES];
};

struct tsdb__head *tsdb__head_new(void)
{
    struct tsdb__head *h = xcalloc(1, sizeof(*h));
    pthread_rwlock_init(&h->grow, NULL);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&h->stripe[i], NULL);
    return h;
}

void tsdb__head_free(struct tsdb__head *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nseries; i++) {
        struct head_series *s = h->series[i];
        if (!s)
            continue;
        for (size_t k = 0; k < s->nchunks; k++)
            tsdb__chunk_release(&s->chunks[k]);
        free(s->chunks);
        free(s);
    }
    free(h->series);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&h->stripe[i]);
    pthread_rwlock_destroy(&h->grow);
    free(h);
}

/* The series' slot, created if needed. Returns with h->grow read-locked. */
static struct head_series *slot(struct tsdb__head *h, uint32_t id)
{
    pthread_rwlock_rdlock(&h->grow);
    if (id < h->nseries && h->series[id])
        return h->series[id];
    pthread_rwlock_unlock(&h->grow);
    pthread_rwlock_wrlock(&h->grow);
    if (id >= h->nseries) {
        void *p = h->series;
        util_grow(&p, &h->cap, (size_t)id + 1, sizeof(*h->series));
        h->series = p;
        memset(h->series + h->nseries, 0, (h->cap - h->nseries) * sizeof(*h->series));
        h->nseries = h->cap;
    }
    if (!h->series[id])
        h->series[id] = xcalloc(1, sizeof(struct head_series));
    pthread_rwlock_unlock(&h->grow);
    pthread_rwlock_rdlock(&h->grow);
    return h->series[id];
}

/* The aligned window (of TSDB_HEAD_CHUNK_SPAN_MS) a timestamp falls in. */
static int64_t window_of(int64_t ts)
{
    int64_t w = ts / TSDB_HEAD_CHUNK_SPAN_MS;
    return ts < 0 && w * TSDB_HEAD_CHUNK_SPAN_MS != ts ? w - 1 : w;
}

/* Append n raw samples of one window to the series' chunk for that window. */
static int seal_run(struct head_series *s, const int64_t *ts, const double *v, size_t n)
{
    struct tsdb__chunk *open = s->nchunks ? &s->chunks[s->nchunks - 1] : NULL;
    if (open && open->nsamples && window_of(open->mint) != window_of(ts[0]))
        open = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!open) {
            void *p = s->chunks;
            util_grow(&p, &s->cap, s->nchunks + 1, sizeof(*s->chunks));
            s->chunks = p;
            open = &s->chunks[s->nchunks++];
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
 * Encode the raw tail onto the chunks. Chunks never straddle an aligned
 * window, so whole chunks can later be written into the block of their
 * window; a tail that crosses a boundary is split there.
 */
static int seal_tail(struct head_series *s)
{
    uint32_t i = 0;
    int rc = 0;
    while (i < s->nraw && rc == 0) {
        int64_t w = window_of(s->raw_ts[i]);
        uint32_t j = i + 1;
        while (j < s->nraw && window_of(s->raw_ts[j]) == w)
            j++;
        rc = seal_run(s, s->raw_ts + i, s->raw_v + i, j - i);
        i = j;
    }
    s->nraw = 0;
    return rc;
}

int tsdb__head_append(struct tsdb__head *h, uint32_t id, int64_t ts, double v)
{
    struct head_series *s = slot(h, id);
    pthread_mutex_t *m = &h->stripe[id % STRIPES];
    pthread_mutex_lock(m);
    int rc = 0;
    if (s->have_last && ts <= s->last_ts) {
        rc = TSDB__EORDER;
    } else {
        s->raw_ts[s->nraw] = ts;
        s->raw_v[s->nraw] = v;
        s->nraw++;
        s->last_ts = ts;
        s->have_last = 1;
        if (s->nraw == TSDB_BLOCK_MAX)
            rc = seal_tail(s);
    }
    pthread_mutex_unlock(m);
    pthread_rwlock_unlock(&h->grow);
    return rc;
}

static void push(struct tsdb_sample **out, size_t *cap, size_t n, int64_t ts, double v)
{
    void *p = *out;
    util_grow(&p, cap, n + 1, sizeof(**out));
    *out = p;
    (*out)[n].ts = ts;
    (*out)[n].v = v;
}

long tsdb__head_read(struct tsdb__head *h, uint32_t id, int64_t mint, int64_t maxt,
                     struct tsdb_sample **out, size_t *cap)
{
    pthread_rwlock_rdlock(&h->grow);
    struct head_series *s = id < h->nseries ? h->series[id] : NULL;
    if (!s) {
        pthread_rwlock_unlock(&h->grow);
        return 0;
    }
    pthread_mutex_t *m = &h->stripe[id % STRIPES];
    pthread_mutex_lock(m);
    size_t n = 0;
    long rc = 0;
    for (size_t k = 0; k < s->nchunks && rc == 0; k++) {
        const struct tsdb__chunk *c = &s->chunks[k];
        if (!c->nsamples || c->maxt < mint || c->mint > maxt)
            continue;
        struct tsdb__chunk_iter *it = xmalloc(sizeof(*it));
        int r = tsdb__chunk_iter_init(it, c->buf, c->len, mint, maxt);
        int64_t t;
        double v;
        if (r == 0)
            while ((r = tsdb__chunk_iter_next(it, &t, &v)) > 0)
                push(out, cap, n++, t, v);
        free(it);
        if (r < 0)
            rc = r;
    }
    for (uint32_t i = 0; i < s->nraw && rc == 0; i++)
        if (s->raw_ts[i] >= mint && s->raw_ts[i] <= maxt)
            push(out, cap, n++, s->raw_ts[i], s->raw_v[i]);
    pthread_mutex_unlock(m);
    pthread_rwlock_unlock(&h->grow);
    return rc < 0 ? rc : (long)n;
}

int tsdb__head_chunks(struct tsdb__head *h, uint32_t id, tsdb__head_chunk_fn fn, void *ctx)
{
    pthread_rwlock_rdlock(&h->grow);
    struct head_series *s = id < h->nseries ? h->series[id] : NULL;
    int rc = 0;
    if (s) {
        pthread_mutex_lock(&h->stripe[id % STRIPES]);
        for (size_t k = 0; k < s->nchunks && rc == 0; k++)
            rc = fn(ctx, &s->chunks[k]);
        pthread_mutex_unlock(&h->stripe[id % STRIPES]);
    }
    pthread_rwlock_unlock(&h->grow);
    return rc;
}

size_t tsdb__head_bytes(struct tsdb__head *h)
{
    size_t total = 0;
    pthread_rwlock_rdlock(&h->grow);
    total += h->cap * sizeof(*h->series);
    for (size_t i = 0; i < h->nseries; i++) {
        struct head_series *s = h->series[i];
        if (!s)
            continue;
        pthread_mutex_lock(&h->stripe[i % STRIPES]);
        total += sizeof(*s) + s->cap * sizeof(*s->chunks);
        for (size_t k = 0; k < s->nchunks; k++)
            total += s->chunks[k].cap;
        pthread_mutex_unlock(&h->stripe[i % STRIPES]);
    }
    pthread_rwlock_unlock(&h->grow);
    return total;
}
