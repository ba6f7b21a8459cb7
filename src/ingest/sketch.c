/*
 * sketch.c: fixed-size summaries of client addresses, so that millions of
 * distinct clients cost the same memory as ten: a space-saving heavy-hitter
 * sketch with exponential decay (who is sending the most requests right
 * now, and how many of theirs fail) and a HyperLogLog distinct counter. Also
 * the string hash both use.
 *
 * Space-saving keeps k counters; a client not among them replaces the one
 * with the smallest count and inherits that count (its overestimate). Any
 * client with more than 1/k of the requests is guaranteed a counter. Counts
 * are multiplied by a decay factor every tick, so they are recent rates,
 * and a client whose share jumps climbs to the top within a few ticks.
 */
#include "ingest/ingest_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <math.h>
#include <string.h>

#define K1 0x9e3779b97f4a7c15ULL
#define K2 0xbf58476d1ce4e5b9ULL
#define K3 0x94d049bb133111ebULL

uint64_t ingest__mix(uint64_t x)
{
    x ^= x >> 31;
    x *= K2;
    x ^= x >> 29;
    x *= K3;
    x ^= x >> 32;
    return x;
}

uint64_t ingest__hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = K1 ^ ((uint64_t)n * K3), w;
    while (n >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * K1;
        h = h << 27 | h >> 37;
        s += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w ^ ((uint64_t)n << 59)) * K1;
    return ingest__mix(h);
}

/* ---- space-saving top-k ---- */

void ingest__topk_init(struct ingest__topk *t, size_t k)
{
    size_t size = 4;
    while (size < 2 * k)
        size <<= 1;
    t->k = k;
    t->n = 0;
    t->e = xcalloc(k, sizeof(*t->e));
    t->heap = xcalloc(k, sizeof(*t->heap));
    t->index = xcalloc(size, sizeof(*t->index));
    t->mask = size - 1;
}

void ingest__topk_release(struct ingest__topk *t)
{
    free(t->e);
    free(t->heap);
    free(t->index);
    memset(t, 0, sizeof(*t));
}

/* The index slot holding client s, or the empty slot where it would go (*found 0). */
static size_t lookup(const struct ingest__topk *t, const char *s, size_t n, uint64_t h, int *found)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t v = t->index[i];
        if (!v) {
            *found = 0;
            return i;
        }
        const struct ingest__topk_entry *e = &t->e[v - 1];
        if (e->hash == h && e->len == n && memcmp(e->client, s, n) == 0) {
            *found = 1;
            return i;
        }
    }
}

/* Remove slot i from the linear-probing index, moving later entries of its run back. */
static void index_delete(struct ingest__topk *t, size_t i)
{
    size_t j = i;
    t->index[i] = 0;
    for (;;) {
        j = (j + 1) & t->mask;
        uint32_t v = t->index[j];
        if (!v)
            return;
        size_t home = t->e[v - 1].hash & t->mask;
        /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->index[i] = v;
            t->index[j] = 0;
            i = j;
        }
    }
}

static void heap_swap(struct ingest__topk *t, size_t a, size_t b)
{
    uint32_t x = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = x;
    t->e[t->heap[a]].heap_pos = (uint32_t)a;
    t->e[t->heap[b]].heap_pos = (uint32_t)b;
}

static void sift_down(struct ingest__topk *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && t->e[t->heap[l]].count < t->e[t->heap[m]].count)
            m = l;
        if (r < t->n && t->e[t->heap[r]].count < t->e[t->heap[m]].count)
            m = r;
        if (m == i)
            return;
        heap_swap(t, i, m);
        i = m;
    }
}

static void sift_up(struct ingest__topk *t, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (t->e[t->heap[p]].count <= t->e[t->heap[i]].count)
            return;
        heap_swap(t, i, p);
        i = p;
    }
}

void ingest__topk_add(struct ingest__topk *t, const char *s, size_t n, uint64_t h, int error)
{
    int found;
    if (n > INGEST__CLIENT_MAX)
        n = INGEST__CLIENT_MAX;
    size_t slot = lookup(t, s, n, h, &found);
    struct ingest__topk_entry *e;
    if (found) {
        e = &t->e[t->index[slot] - 1];
        e->count += 1;
        e->errors += error;
        sift_down(t, e->heap_pos);
        return;
    }
    size_t idx;
    int replaced = t->n == t->k;
    if (!replaced) {
        idx = t->n++;
        e = &t->e[idx];
        e->count = 1;
        e->over = 0;
        t->heap[idx] = (uint32_t)idx;
        e->heap_pos = (uint32_t)idx;
    } else {
        /* Replace the smallest: the newcomer inherits its count as an overestimate. */
        idx = t->heap[0];
        e = &t->e[idx];
        size_t vslot = lookup(t, e->client, e->len, e->hash, &found);
        index_delete(t, vslot);
        slot = lookup(t, s, n, h, &found);
        e->over = e->count;
        e->count += 1;
    }
    e->errors = error;
    e->hash = h;
    e->len = (uint8_t)n;
    memcpy(e->client, s, n);
    t->index[slot] = (uint32_t)idx + 1;
    if (replaced)
        sift_down(t, 0); /* it was the root and only grew */
    else
        sift_up(t, e->heap_pos);
}

void ingest__topk_decay(struct ingest__topk *t, double factor)
{
    for (size_t i = 0; i < t->n; i++) {
        t->e[i].count *= factor;
        t->e[i].errors *= factor;
        t->e[i].over *= factor;
    }
}

size_t ingest__topk_top(const struct ingest__topk *t, const struct ingest__topk_entry **out,
                        size_t max)
{
    size_t m = 0;
    /* Insertion into a sorted array of at most max: k is small. */
    for (size_t i = 0; i < t->n; i++) {
        const struct ingest__topk_entry *e = &t->e[i];
        if (m == max && out[m - 1]->count >= e->count)
            continue;
        size_t j = m < max ? m++ : m - 1;
        while (j > 0 && out[j - 1]->count < e->count) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = e;
    }
    return m;
}

/* ---- HyperLogLog ---- */

void ingest__hll_add(struct ingest__hll *h, uint64_t x)
{
    size_t idx = (size_t)(x >> (64 - INGEST__HLL_BITS));
    /* The low marker bit bounds the rank even when the remaining bits are all 0. */
    uint64_t w = x << INGEST__HLL_BITS | (1ULL << (INGEST__HLL_BITS - 1));
    uint8_t rank = (uint8_t)(__builtin_clzll(w) + 1);
    if (rank > h->reg[idx])
        h->reg[idx] = rank;
}

double ingest__hll_estimate(const struct ingest__hll *h)
{
    const double m = (double)(1 << INGEST__HLL_BITS);
    double sum = 0;
    size_t zeros = 0;
    for (size_t i = 0; i < (1u << INGEST__HLL_BITS); i++) {
        sum += ldexp(1.0, -(int)h->reg[i]);
        zeros += !h->reg[i];
    }
    double est = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (est <= 2.5 * m && zeros)
        est = m * log(m / (double)zeros); /* linear counting is better for small sets */
    return est;
}
