/*
 * head.c: per-series sample storage in memory (see head.h). A sample goes
 * into the series' tail; a full tail (TSDB_BLOCK_MAX samples) is encoded
 * onto the series' chunk for its aligned window (split at a window
 * boundary), so each chunk belongs to exactly one block window; a chunk that
 * reaches its byte cap is followed by another.
 *
 * The tail is a small stream, encoded sample by sample on arrival (see
 * "The tail" below): 1-4 bytes a sample for the usual counters and gauges
 * instead of 12 raw, in a buffer that grows in small steps, keeps its size
 * from one block to the next and is given back when a cut leaves the series
 * empty, so series that stopped reporting cost little.
 */
#include "tsdb/head.h"
#include "tsdb/chunk.h"
#include "util/util.h"

#include <assert.h>
#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES     64
#define STRIPE_IDS  1024 /* consecutive ids per stripe: see tsdb__head_ref */
#define SLAB_SERIES 256

/*
 * One series: 64 bytes (a cache line), in a slab. The tail's encoder state
 * (last_ts, last_delta, last_v) is kept here so an append is O(1).
 */
struct tsdb__head_series {
    struct tsdb__chunk *chunks; /* oldest first; the last one is open */
    uint8_t *tail;              /* the encoded tail (NULL until the first sample) */
    int64_t t0;                 /* the tail's first timestamp (if nraw) */
    int64_t last_ts;            /* the series' last timestamp (INT64_MIN before any) */
    int64_t last_delta;         /* last_ts minus the tail sample before it */
    uint64_t last_v;            /* bits of the tail's last value */
    uint32_t nchunks, cap;
    uint16_t tail_len, tail_cap; /* bytes used and allocated */
    uint16_t group;              /* where the tail's last group starts */
    uint8_t nraw;                /* samples in the tail (at most TSDB_BLOCK_MAX) */
    uint8_t stripe;
};
_Static_assert(sizeof(struct tsdb__head_series) == 64, "a series is one cache line");

/*
 * The tail. Samples come in groups of TAIL_GROUP: the group's tag bytes
 * (one a sample, TAIL_GROUP slots reserved when the group starts), then each
 * sample's payload, a varint and value bytes:
 *
 *   tag bit 7      the step is the same as the previous one (the tail's
 *                  first sample sets it too: its time is s->t0)
 *   tag bits 4-6   lz: leading zero bytes of x = bits ^ previous bits
 *                  (the previous value is 0 for the tail's first sample)
 *   tag bits 0-3   len: the bytes of x from lz on (0: x is 0)
 *   [uvarint]      without bit 7: zigzag of step - previous step (mod 2^64,
 *                  the previous step 0 at the tail's first sample), 7 bits
 *                  a byte, low first
 *   [len bytes]    x >> 8 * (8 - lz - len), low byte first
 *
 * Tags apart from the payload because decoding is a chain: where a sample's
 * payload starts depends on the tags before it. With the group's tags in one
 * word, that chain is an addition a sample and a load a group, where a tag
 * in front of each payload made it a load a sample (the decode of a full
 * tail, at every seal, took a fifth of the append path). A constant at a
 * steady step takes one byte, a counter 2-4. The stream is in memory only
 * (never written or read from outside), so its decoder trusts it.
 */
#define TAIL_GROUP       8
#define TAIL_PAYLOAD_MAX 18                              /* 10-byte varint, 8 value bytes */
#define TAIL_SAMPLE_MAX  (TAIL_GROUP + TAIL_PAYLOAD_MAX) /* at most, with a group's tags */
#define TAIL_SAME_STEP   0x80u
_Static_assert(TSDB_BLOCK_MAX <= UINT8_MAX &&
                   TSDB_BLOCK_MAX * (1 + TAIL_PAYLOAD_MAX) + TAIL_GROUP <= UINT16_MAX,
               "the tail's counters are 8 and 16 bits");
_Static_assert(TAIL_GROUP == 8 && TSDB_BLOCK_MAX % TAIL_GROUP == 0,
               "a group's tags are one 64-bit word; a full tail is whole groups");

static inline uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static inline double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/* Make room for need bytes in s->tail, in malloc-sized steps (16k + 8). */
static void tail_reserve(struct tsdb__head_series *s, size_t need)
{
    size_t cap = need + need / 8;
    cap = cap < 24 ? 24 : ((cap + 7) & ~(size_t)15) + 8;
    if (cap > UINT16_MAX)
        cap = UINT16_MAX; /* need is at most TSDB_BLOCK_MAX * TAIL_SAMPLE_MAX */
    s->tail = xrealloc(s->tail, cap);
    s->tail_cap = (uint16_t)cap;
}

/*
 * Encode (ts, bits)'s payload at out, which has room for TAIL_PAYLOAD_MAX
 * bytes (the value is stored as a whole word, at most 10 bytes in, so within
 * them); returns the payload's bytes and its tag in *tag. Updates the
 * encoder state, not the tail's length.
 */
static inline size_t tail_encode(struct tsdb__head_series *s, int64_t ts, uint64_t bits,
                                 uint8_t *out, uint8_t *tagp)
{
    uint8_t *p = out;
    unsigned tag = TAIL_SAME_STEP;
    uint64_t x;
    if (!s->nraw) {
        s->t0 = ts;
        s->last_delta = 0;
        x = bits;
    } else {
        uint64_t delta = (uint64_t)ts - (uint64_t)s->last_ts;
        uint64_t dod = delta - (uint64_t)s->last_delta;
        if (dod) {
            tag = 0;
            uint64_t u = (dod << 1) ^ (uint64_t)((int64_t)dod >> 63);
            while (u >= 0x80) {
                *p++ = (uint8_t)(u | 0x80);
                u >>= 7;
            }
            *p++ = (uint8_t)u;
        }
        s->last_delta = (int64_t)delta;
        x = bits ^ s->last_v;
    }
    if (x) {
        unsigned lz = (unsigned)__builtin_clzll(x) >> 3, tz = (unsigned)__builtin_ctzll(x) >> 3;
        uint64_t m = htole64(x >> (8 * tz));
        memcpy(p, &m, 8); /* a fixed-size store; only len bytes count */
        p += 8 - lz - tz;
        tag |= lz << 4 | (8 - lz - tz);
    }
    *tagp = (uint8_t)tag;
    s->last_ts = ts;
    s->last_v = bits;
    return (size_t)(p - out);
}

/* Copy n <= 24 bytes with fixed-size moves (overlapping where n is between
 * their sizes): a compiler turns a loop into a memcpy call. */
static inline void copy_small(uint8_t *to, const uint8_t *from, size_t n)
{
    if (n >= 8) {
        memcpy(to, from, 8);
        if (n > 16)
            memcpy(to + 8, from + 8, 8);
        memcpy(to + n - 8, from + n - 8, 8);
    } else if (n >= 4) {
        memcpy(to, from, 4);
        memcpy(to + n - 4, from + n - 4, 4);
    } else if (n) {
        to[0] = from[0];
        to[n / 2] = from[n / 2];
        to[n - 1] = from[n - 1];
    }
}

/*
 * tail_push's way for the last bytes of a buffer sized to the last block:
 * every block's last few samples come here. At most TAIL_PAYLOAD_MAX bytes:
 * a few moves, not a memcpy call. Out of line: the hot loop keeps the rest.
 */
static __attribute__((noinline)) void tail_push_tight(struct tsdb__head_series *s, int64_t ts,
                                                      uint64_t bits, unsigned slot, size_t head)
{
    uint8_t buf[TAIL_PAYLOAD_MAX], tag;
    size_t n = tail_encode(s, ts, bits, buf, &tag);
    if (s->tail_len + head + n > s->tail_cap)
        tail_reserve(s, s->tail_len + head + n);
    if (head)
        s->group = s->tail_len;
    copy_small(s->tail + s->tail_len + head, buf, n);
    s->tail[s->group + slot] = tag;
    s->tail_len = (uint16_t)(s->tail_len + head + n);
    s->nraw++;
}

/* Encode (ts, bits) at the end of the tail (ts after s->last_ts; not full). */
static inline __attribute__((always_inline)) void tail_push(struct tsdb__head_series *s, int64_t ts,
                                                            uint64_t bits)
{
    unsigned slot = s->nraw % TAIL_GROUP;
    size_t head = slot ? 0 : TAIL_GROUP; /* a group starts: its tags first */
    if (__builtin_expect((size_t)(s->tail_cap - s->tail_len) < head + TAIL_PAYLOAD_MAX, 0)) {
        tail_push_tight(s, ts, bits, slot, head);
        return;
    }
    /* The usual case: the buffer keeps its size from one block to the next. */
    if (head)
        s->group = s->tail_len;
    uint8_t tag;
    size_t at = s->tail_len + head;
    size_t n = tail_encode(s, ts, bits, s->tail + at, &tag);
    s->tail[s->group + slot] = tag;
    s->tail_len = (uint16_t)(at + n);
    s->nraw++;
}

/*
 * What a tag says about where its value bytes go, looked up rather than
 * worked out per sample: (64 - 8 * len) | 8 * (8 - lz - len) << 8, the
 * shifts that take the len bytes from the top of a word to their place
 * (len 0: no bytes; lz + len > 8 never occurs).
 */
#define TAIL_D(t)                                                                                  \
    ((uint16_t)((64 - 8 * ((t)&15)) & 63) |                                                        \
     (uint16_t)((8 * (8 - (((t) >> 4) & 7) - ((t)&15))) & 63) << 8)
#define TAIL_D4(t)  TAIL_D(t), TAIL_D((t) + 1), TAIL_D((t) + 2), TAIL_D((t) + 3)
#define TAIL_D16(t) TAIL_D4(t), TAIL_D4((t) + 4), TAIL_D4((t) + 8), TAIL_D4((t) + 12)
#define TAIL_D64(t) TAIL_D16(t), TAIL_D16((t) + 16), TAIL_D16((t) + 32), TAIL_D16((t) + 48)
static const uint16_t tail_dec[128] = {TAIL_D64(0), TAIL_D64(64)};

/* Decode the tail into ts[0..s->nraw) and v[0..s->nraw) (TSDB_BLOCK_MAX each). */
static void tail_decode(const struct tsdb__head_series *s, int64_t *ts, double *v)
{
    const uint8_t *p = s->tail;
    uint64_t t = (uint64_t)s->t0, delta = 0, bits = 0;
    for (uint32_t g = 0; g < s->nraw; g += TAIL_GROUP) {
        uint64_t tags;
        memcpy(&tags, p, 8); /* reserved whole when the group started */
        tags = le64toh(tags);
        p += TAIL_GROUP;
        uint32_t end = s->nraw - g < TAIL_GROUP ? s->nraw : g + TAIL_GROUP;
        for (uint32_t i = g; i < end; i++, tags >>= 8) {
            unsigned tag = (unsigned)tags & 0xff;
            if (!(tag & TAIL_SAME_STEP)) {
                uint64_t u = 0;
                for (unsigned sh = 0;; sh += 7) {
                    uint8_t b = *p++;
                    u |= (uint64_t)(b & 0x7f) << sh;
                    if (!(b & 0x80))
                        break;
                }
                delta += (u >> 1) ^ (0 - (u & 1));
            }
            t += delta; /* 0 at the first sample: its tag always has TAIL_SAME_STEP */
            unsigned len = tag & 15;
            unsigned d = tail_dec[tag & 127];
            if (len) {
                /* The word that ends with the value's bytes: within the
                 * buffer, as the group's tags are before them. */
                uint64_t m;
                memcpy(&m, p + len - 8, 8);
                m = le64toh(m);
                p += len;
                bits ^= (m >> (d & 63)) << (d >> 8);
            }
            ts[i] = (int64_t)t;
            v[i] = bitsd(bits);
        }
    }
    assert(!s->nraw || p == s->tail + s->tail_len);
}

/* Forget the tail's samples (its buffer is kept for the next ones). */
static void tail_reset(struct tsdb__head_series *s)
{
    s->nraw = 0;
    s->tail_len = 0;
    s->group = 0;
}

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
    free(s->tail);
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
        s->last_ts = INT64_MIN;
        /*
         * Runs of 1,024 consecutive ids share a stripe: a producer's series
         * get ids in its batch's order when first seen, so its batch sorted
         * by stripe stays in nearly that order and walks its values, ids
         * and neighbouring series (the slab keeps them next to each other)
         * front to back. (Runs of 16 made the walk stride across the batch:
         * 4-6% slower appends, bench/tsdb_bench.c.)
         */
        s->stripe = (uint8_t)((id / STRIPE_IDS) % STRIPES);
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
    double v[TSDB_BLOCK_MAX];
    tail_decode(s, ts, v);
    uint32_t i = 0, end = 0, n = s->nraw;
    if (n && ts[n - 1] < t)
        end = n; /* the usual case (a full tail): no walk */
    else
        while (end < n && ts[end] < t)
            end++;
    int rc = 0;
    while (i < end && rc == 0) {
        /* The window's end, once: no division per sample (hot: every 64). */
        int64_t w = tsdb__head_window(h, ts[i]);
        int64_t wend = w > INT64_MAX - h->span ? INT64_MAX : w + h->span;
        uint32_t j = i + 1;
        if (ts[end - 1] < wend)
            j = end; /* all in one window: no walk */
        while (j < end && ts[j] < wend)
            j++;
        rc = seal_run(h, s, ts + i, v + i, j - i);
        i = j;
    }
    if (end) {
        /* The rest starts the tail again (rare: only a cut splits a tail). */
        tail_reset(s);
        for (uint32_t k = end; k < n; k++)
            tail_push(s, ts[k], dbits(v[k]));
    }
    return rc;
}

/* Append under the series' stripe lock: 0, 1 (out of order) or 2 (too old). */
static inline __attribute__((always_inline)) int
put(struct tsdb__head *h, struct tsdb__head_series *s, int64_t ts, double v, int64_t min_valid)
{
    if (ts < min_valid)
        return 2;
    if (ts <= s->last_ts) /* INT64_MIN is refused: that is "no sample yet" */
        return 1;
    tail_push(s, ts, dbits(v));
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

/* The state of one walk over a batch (tsdb__head_append_run), in locals. */
struct walk {
    struct tsdb__head *h;
    struct tsdb__head_series *const *refs;
    const uint32_t *idx;
    const char *vbase;
    const uint32_t *ids;
    size_t vstride;
    int64_t ts, min_valid;
    uint8_t *lp;
    struct tsdb__head_refused *refused;
    struct tsdb__packed st;
    unsigned held;
};

/*
 * A batch touches thousands of series, each in its own cache lines: fetch
 * the series 16 ahead, and the tail end of the one 8 ahead. (The hot loop
 * of appends; measured with bench/tsdb_bench.c.)
 */
static inline __attribute__((always_inline)) void fetch_ahead(struct tsdb__head_series *const *refs,
                                                              size_t at16, size_t at8)
{
    __builtin_prefetch(refs[at16], 1);
    const struct tsdb__head_series *f = refs[at8];
    /* Integer arithmetic: a series without a tail yet has NULL there (a
     * prefetch of it is harmless, a test costs a branch per sample). */
    __builtin_prefetch((const void *)((uintptr_t)f->tail + f->tail_len), 1);
    __builtin_prefetch((const void *)((uintptr_t)f->tail + f->group), 1); /* its tag's slot */
    /* A tail this sample fills is decoded whole (seal): fetch it all, and
     * the open chunk the block goes to. */
    if (f->nraw == TSDB_BLOCK_MAX - 1) {
        for (unsigned off = 0; off < f->tail_len; off += 64)
            __builtin_prefetch(f->tail + off, 0);
        if (f->nchunks)
            __builtin_prefetch(&f->chunks[f->nchunks - 1], 1);
    }
}

/* Append sample k of the walk, and its log entry. */
static inline __attribute__((always_inline)) void walk_one(struct walk *w, size_t k)
{
    struct tsdb__head_series *s = w->refs[k];
    if (s->stripe != w->held) {
        if (w->held != STRIPES)
            pthread_mutex_unlock(&w->h->stripe[w->held]);
        w->held = s->stripe;
        pthread_mutex_lock(&w->h->stripe[w->held]);
        /* Read under the lock: a cut moves it, then seals each series
         * under its lock. Once per lock taken, not per sample. */
        w->min_valid = tsdb__head_min_valid(w->h);
    }
    double v;
    memcpy(&v, w->vbase + (size_t)w->idx[k] * w->vstride, sizeof(v));
    int r = put(w->h, s, w->ts, v, w->min_valid);
    if (__builtin_expect(r == 0, 1)) {
        if (w->lp)
            w->lp = tsdb__packed_put(w->lp, &w->st, w->ids[k], v);
    } else if (r == 1) {
        w->refused->out_of_order++;
    } else {
        w->refused->too_old++;
    }
}

size_t tsdb__head_append_run(struct tsdb__head *h, struct tsdb__head_series *const *refs,
                             const uint32_t *idx, size_t n, int64_t ts, const void *vbase,
                             size_t vstride, struct tsdb__head_refused *refused,
                             struct tsdb__head_log *log)
{
    uint64_t before = refused->out_of_order + refused->too_old;
    /*
     * The log's fields in locals: stores through the byte pointers (the log
     * entries, the tails) may alias anything, so fields read through log
     * would be loaded again after each.
     */
    struct walk w = {.h = h,
                     .refs = refs,
                     .idx = idx,
                     .vbase = vbase,
                     .ids = log ? log->ids : NULL,
                     .vstride = vstride,
                     .ts = ts,
                     .refused = refused,
                     .lp = log ? log->p : NULL,
                     .st = log ? log->st : (struct tsdb__packed){0, 0},
                     .held = STRIPES};
    /* The bulk without bounds on the fetches ahead, then the last 16. */
    size_t k = 0;
    for (; k + 16 < n; k++) {
        fetch_ahead(refs, k + 16, k + 8);
        walk_one(&w, k);
    }
    for (; k < n; k++) {
        if (k + 8 < n)
            fetch_ahead(refs, n - 1, k + 8);
        walk_one(&w, k);
    }
    if (w.held != STRIPES)
        pthread_mutex_unlock(&h->stripe[w.held]);
    if (log) {
        log->p = w.lp;
        log->st = w.st;
    }
    size_t ok = n - (size_t)(refused->out_of_order + refused->too_old - before);
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
        first = s->t0;
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
    if (s->nraw && rc == 0 && s->t0 <= maxt && s->last_ts >= mint) {
        int64_t ts[TSDB_BLOCK_MAX];
        double v[TSDB_BLOCK_MAX];
        tail_decode(s, ts, v);
        for (uint32_t i = 0; i < s->nraw; i++)
            if (ts[i] >= mint && ts[i] <= maxt)
                push(out, cap, n++, ts[i], v[i]);
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
            double v[TSDB_BLOCK_MAX];
            tail_decode(s, ts, v);
            rc = raw_fn(ctx, ts, v, s->nraw);
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
            freed += tsdb__chunk_bytes(&s->chunks[k]);
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
        if (!s->nraw && s->tail) {
            freed += s->tail_cap;
            free(s->tail);
            s->tail = NULL;
            s->tail_cap = 0;
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
    if (c.mint <= s->last_ts || s->nraw) {
        rc = TSDB__EORDER;
        tsdb__chunk_release(&c);
    } else {
        *add_chunk(s) = c;
        s->last_ts = c.maxt;
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
        else if (!s->nchunks && s->nraw && s->t0 < lo)
            lo = s->t0;
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
        d->stripe = (uint8_t)((to / STRIPE_IDS) % STRIPES); /* as tsdb__head_ref assigns it */
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
        total += sizeof(*s) + s->cap * sizeof(*s->chunks) + s->tail_cap;
        for (size_t k = 0; k < s->nchunks; k++)
            total += tsdb__chunk_bytes(&s->chunks[k]);
        pthread_mutex_unlock(&h->stripe[s->stripe]);
    }
    pthread_rwlock_unlock(&h->grow);
    return total;
}
