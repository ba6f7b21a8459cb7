/*
 * chunk_bench.c: size and speed of the store's sample codec (src/tsdb/chunk.c)
 * next to a plain Gorilla codec (the paper's delta-of-delta timestamps and
 * XOR values) measured in the same run on the same series. Series are cut
 * into 2 h chunks (7200 samples at 1 s) for both codecs.
 *
 * Corpora: synthetic series shaped like host metrics at 1 s, and optionally a
 * recording of this host made by bench/record_corpus.c.
 * Usage: chunk_bench [recorded-corpus-file]
 * Prints one markdown table; every decode is checked bit for bit.
 * Without a CMake target: gcc -O2 -Isrc bench/chunk_bench.c src/tsdb/chunk.c
 * src/tsdb/crc32c.c src/util/util.c -lm -lpthread -o chunk_bench
 */
#include "tsdb/chunk.h"
#include "tsdb/crc32c.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SAMPLES 7200
#define T0            1700000000000ll

struct series {
    char name[128];
    size_t n;
    int64_t *ts;
    double *v;
};

struct corpus {
    const char *name;
    struct series *s;
    size_t ns, cap;
};

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static struct series *add_series(struct corpus *c, const char *name, size_t n)
{
    if (c->ns == c->cap) {
        void *p = c->s;
        util_grow(&p, &c->cap, c->ns + 1, sizeof(*c->s));
        c->s = p;
    }
    struct series *s = &c->s[c->ns++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->n = n;
    s->ts = xmalloc(n * sizeof(*s->ts) + 1);
    s->v = xmalloc(n * sizeof(*s->v) + 1);
    for (size_t i = 0; i < n; i++)
        s->ts[i] = T0 + (int64_t)i * 1000;
    return s;
}

/* ---- synthetic host-metric shapes, one shape per group of series ------- */

#define SYN_N CHUNK_SAMPLES

static void syn_cpu(struct corpus *c)
{
    /* node_cpu_seconds_total: USER_HZ ticks / 100, per mode; idle takes the rest. */
    for (int cpu = 0; cpu < 8; cpu++) {
        static const double share[] = {0.06, 0.0, 0.03, 0.86, 0.02, 0.004, 0.01, 0.0};
        uint64_t ticks[8];
        struct series *s[8];
        for (int m = 0; m < 8; m++) {
            ticks[m] = rnd() % 10000000;
            s[m] = add_series(c, "cpu_seconds", SYN_N);
        }
        for (size_t i = 0; i < SYN_N; i++) {
            uint64_t left = 100;
            for (int m = 0; m < 8; m++) {
                uint64_t d = m == 3 ? left : (uint64_t)(share[m] * 100 * 2 * unif());
                d = d > left ? left : d;
                left -= d;
                ticks[m] += d;
                s[m]->v[i] = (double)ticks[m] / 100;
            }
        }
    }
}

static void syn_bytes(struct corpus *c)
{
    /* Network/disk byte counters: bursty, with a rare counter reset. */
    for (int k = 0; k < 32; k++) {
        struct series *s = add_series(c, "byte_counter", SYN_N);
        double x = (double)(rnd() % 1000000000000ull);
        double rate = 1000 * pow(10, 3 * unif());
        for (size_t i = 0; i < SYN_N; i++) {
            x += floor(rate * (0.2 + 1.6 * unif()) * (unif() < 0.05 ? 20 : 1));
            if (k == 0 && i == SYN_N / 2)
                x = 0;
            s->v[i] = x;
        }
    }
}

static void syn_memory(struct corpus *c)
{
    /* node_memory_*_bytes: kB * 1024, small random walks. */
    for (int k = 0; k < 32; k++) {
        struct series *s = add_series(c, "memory_bytes", SYN_N);
        int64_t kb = (int64_t)(rnd() % 16000000);
        for (size_t i = 0; i < SYN_N; i++) {
            if (unif() < 0.7)
                kb += (int64_t)(rnd() % 257) - 128;
            s->v[i] = (double)kb * 1024.0;
        }
    }
}

static void syn_load(struct corpus *c)
{
    /* node_load1/5/15: two decimals, smooth. */
    for (int k = 0; k < 12; k++) {
        struct series *s = add_series(c, "load_avg", SYN_N);
        double l = 0.5 + unif() * 2, target = l;
        double alpha = k % 3 == 0 ? 0.08 : k % 3 == 1 ? 0.016 : 0.0055;
        for (size_t i = 0; i < SYN_N; i++) {
            if (i % 5 == 0)
                target = fabs(target + (unif() - 0.5));
            l += alpha * (target - l);
            s->v[i] = round(l * 100) / 100;
        }
    }
}

static void syn_const(struct corpus *c)
{
    for (int k = 0; k < 32; k++) {
        struct series *s = add_series(c, "constant", SYN_N);
        double x = k % 2 ? (double)(rnd() % 100000000000ull) : 1;
        for (size_t i = 0; i < SYN_N; i++)
            s->v[i] = x;
    }
}

static void syn_requests(struct corpus *c)
{
    /* http_requests_total: a few requests a second. */
    for (int k = 0; k < 16; k++) {
        struct series *s = add_series(c, "request_counter", SYN_N);
        double x = (double)(rnd() % 100000);
        double lambda = 0.2 * (k + 1);
        for (size_t i = 0; i < SYN_N; i++) {
            double p = exp(-lambda), f = p, u = unif();
            int d = 0;
            while (u > f && d < 100) {
                p *= lambda / ++d;
                f += p;
            }
            x += d;
            s->v[i] = x;
        }
    }
}

static void syn_histogram(struct corpus *c)
{
    /* Request-duration histogram: cumulative buckets, 12 les + count. */
    static const double le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, INFINITY};
    for (int h = 0; h < 4; h++) {
        struct series *s[12];
        double cum[12] = {0};
        for (int b = 0; b < 12; b++)
            s[b] = add_series(c, "histogram_bucket", SYN_N);
        for (size_t i = 0; i < SYN_N; i++) {
            int reqs = (int)(rnd() % (unsigned)(2 + 4 * h));
            for (int r = 0; r < reqs; r++) {
                double lat = 0.003 * exp(3 * unif() * unif() * 3);
                for (int b = 0; b < 12; b++)
                    if (lat <= le[b])
                        cum[b] += 1;
            }
            for (int b = 0; b < 12; b++)
                s[b]->v[i] = cum[b];
        }
    }
}

static void syn_ratio(struct corpus *c)
{
    /* A computed float gauge (utilisation ratio): no short decimal form. */
    for (int k = 0; k < 8; k++) {
        struct series *s = add_series(c, "ratio_gauge", SYN_N);
        double busy = 0;
        for (size_t i = 0; i < SYN_N; i++) {
            busy += 1 + (double)(rnd() % 7);
            s->v[i] = busy / (double)(5 * (i + 1));
        }
    }
}

/* ---- the recorded corpus ------------------------------------------------ */

static int load_recorded(struct corpus *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char magic[4];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "SRC1", 4) != 0) {
        fclose(f);
        return -1;
    }
    size_t *cap = NULL, ncap = 0;
    int tag;
    while ((tag = fgetc(f)) != EOF) {
        if (tag == 'S') {
            uint32_t id;
            uint16_t len;
            char key[4096];
            if (fread(&id, 4, 1, f) != 1 || fread(&len, 2, 1, f) != 1 ||
                fread(key, 1, len, f) != len)
                break;
            key[len] = '\0';
            while (c->ns <= id) {
                struct series *s = add_series(c, "", 0);
                s->n = 0;
            }
            size_t k = len < sizeof(c->s[id].name) ? len : sizeof(c->s[id].name) - 1;
            memcpy(c->s[id].name, key, k);
            c->s[id].name[k] = '\0';
            if (ncap <= id) {
                void *p = cap;
                size_t old = ncap;
                util_grow(&p, &ncap, id + 1, sizeof(*cap));
                cap = p;
                memset(cap + old, 0, (ncap - old) * sizeof(*cap));
            }
        } else if (tag == 'T') {
            int64_t ts;
            uint32_t cnt;
            if (fread(&ts, 8, 1, f) != 1 || fread(&cnt, 4, 1, f) != 1)
                break;
            for (uint32_t i = 0; i < cnt; i++) {
                uint32_t id;
                uint64_t b;
                if (fread(&id, 4, 1, f) != 1 || fread(&b, 8, 1, f) != 1 || id >= c->ns)
                    goto out;
                struct series *s = &c->s[id];
                if (s->n + 1 > cap[id]) {
                    size_t c2 = cap[id];
                    void *p = s->ts;
                    util_grow(&p, &c2, s->n + 1, sizeof(*s->ts));
                    s->ts = p;
                    p = s->v;
                    c2 = cap[id];
                    util_grow(&p, &c2, s->n + 1, sizeof(*s->v));
                    s->v = p;
                    cap[id] = c2;
                }
                s->ts[s->n] = ts;
                memcpy(&s->v[s->n], &b, 8);
                s->n++;
            }
        } else {
            break;
        }
    }
out:
    fclose(f);
    free(cap);
    return 0;
}

/* ---- a plain Gorilla codec (Pelkonen et al., VLDB 2015), MSB-first ------ */

struct gbits {
    uint8_t *buf;
    size_t cap, nbits;
};

/* Append the low n bits of v, most significant first, a byte's worth at a time. */
static void gput(struct gbits *w, uint64_t v, unsigned n)
{
    size_t need = (w->nbits + n) / 8 + 1;
    if (need > w->cap) {
        void *p = w->buf;
        size_t old = w->cap;
        util_grow(&p, &w->cap, need, 1);
        w->buf = p;
        memset(w->buf + old, 0, w->cap - old);
    }
    while (n) {
        unsigned off = w->nbits & 7, take = 8 - off < n ? 8 - off : n;
        unsigned bits = (unsigned)(v >> (n - take)) & ((1u << take) - 1);
        w->buf[w->nbits >> 3] |= (uint8_t)(bits << (8 - off - take));
        w->nbits += take;
        n -= take;
    }
}

struct gread {
    const uint8_t *buf;
    size_t pos;
};

static uint64_t gget(struct gread *r, unsigned n)
{
    uint64_t v = 0;
    while (n) {
        unsigned off = r->pos & 7, take = 8 - off < n ? 8 - off : n;
        unsigned byte = r->buf[r->pos >> 3];
        v = v << take | ((byte >> (8 - off - take)) & ((1u << take) - 1));
        r->pos += take;
        n -= take;
    }
    return v;
}

static int64_t sext(uint64_t v, unsigned n)
{
    uint64_t m = 1ull << (n - 1);
    return (int64_t)((v ^ m) - m);
}

/* Encode one chunk; returns its size in bytes (whole bytes, as stored). */
static size_t gorilla_encode(struct gbits *w, const int64_t *ts, const double *v, size_t n)
{
    memset(w->buf, 0, w->cap);
    w->nbits = 0;
    gput(w, (uint64_t)ts[0], 64);
    gput(w, bits_of(v[0]), 64);
    int64_t prev_ts = ts[0], prev_d = 0;
    uint64_t prev_v = bits_of(v[0]);
    unsigned pl = 0, pt = 0;
    int have = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t d = ts[i] - prev_ts;
        if (i == 1) {
            gput(w, (uint64_t)d, 32); /* the paper's 14 bits, widened for gaps */
        } else {
            int64_t dod = d - prev_d;
            if (dod == 0)
                gput(w, 0, 1);
            else if (dod >= -63 && dod <= 64)
                gput(w, 2, 2), gput(w, (uint64_t)dod & 0x7f, 7);
            else if (dod >= -255 && dod <= 256)
                gput(w, 6, 3), gput(w, (uint64_t)dod & 0x1ff, 9);
            else if (dod >= -2047 && dod <= 2048)
                gput(w, 14, 4), gput(w, (uint64_t)dod & 0xfff, 12);
            else
                gput(w, 15, 4), gput(w, (uint64_t)dod & 0xffffffff, 32);
        }
        prev_d = d;
        prev_ts = ts[i];
        uint64_t x = bits_of(v[i]) ^ prev_v;
        prev_v = bits_of(v[i]);
        if (!x) {
            gput(w, 0, 1);
            continue;
        }
        unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
        if (lz > 31)
            lz = 31;
        if (have && lz >= pl && tz >= pt) {
            gput(w, 2, 2);
            gput(w, x >> pt, 64 - pl - pt);
        } else {
            gput(w, 3, 2);
            gput(w, lz, 5);
            gput(w, 64 - lz - tz - 1, 6); /* length 1..64 stored as 0..63 */
            gput(w, x >> tz, 64 - lz - tz);
            pl = lz;
            pt = tz;
            have = 1;
        }
    }
    return (w->nbits + 7) / 8;
}

static void gorilla_decode(const uint8_t *buf, size_t n, int64_t *ts, double *v)
{
    struct gread r = {buf, 0};
    ts[0] = (int64_t)gget(&r, 64);
    uint64_t pv = gget(&r, 64);
    memcpy(&v[0], &pv, 8);
    int64_t d = 0;
    unsigned pl = 0, pt = 0;
    for (size_t i = 1; i < n; i++) {
        if (i == 1) {
            d = (int64_t)gget(&r, 32);
        } else if (gget(&r, 1)) {
            if (!gget(&r, 1))
                d += sext(gget(&r, 7), 7);
            else if (!gget(&r, 1))
                d += sext(gget(&r, 9), 9);
            else if (!gget(&r, 1))
                d += sext(gget(&r, 12), 12);
            else
                d += sext(gget(&r, 32), 32);
        }
        ts[i] = ts[i - 1] + d;
        if (gget(&r, 1)) {
            if (gget(&r, 1)) {
                pl = (unsigned)gget(&r, 5);
                unsigned len = (unsigned)gget(&r, 6) + 1;
                pt = 64 - pl - len;
            }
            pv ^= gget(&r, 64 - pl - pt) << pt;
        }
        memcpy(&v[i], &pv, 8);
    }
}

/* ---- measurement -------------------------------------------------------- */

struct result {
    size_t samples, bytes;
    double enc_ns, dec_ns;
    size_t methods[4][8];
};

static void fail(const char *what, const struct series *s, size_t i)
{
    fprintf(stderr, "chunk_bench: %s: %s sample %zu does not round-trip\n", what, s->name, i);
    exit(1);
}

static void run_ours(const struct corpus *c, struct result *r, int reps)
{
    memset(r, 0, sizeof(*r));
    int64_t *ts = xmalloc(CHUNK_SAMPLES * sizeof(*ts));
    double *v = xmalloc(CHUNK_SAMPLES * sizeof(*v));
    for (int rep = 0; rep < reps; rep++) {
        for (size_t k = 0; k < c->ns; k++) {
            const struct series *s = &c->s[k];
            for (size_t start = 0; start < s->n; start += CHUNK_SAMPLES) {
                size_t n = s->n - start < CHUNK_SAMPLES ? s->n - start : CHUNK_SAMPLES;
                struct tsdb__chunk ch;
                int64_t t0 = util_thread_cpu_ns();
                tsdb__chunk_init(&ch);
                for (size_t i = 0; i < n; i += TSDB_BLOCK_MAX) {
                    size_t b = n - i < TSDB_BLOCK_MAX ? n - i : TSDB_BLOCK_MAX;
                    if (tsdb__chunk_append(&ch, s->ts + start + i, s->v + start + i, b))
                        fail("append", s, start + i);
                }
                int64_t t1 = util_thread_cpu_ns();
                struct tsdb__chunk_iter it;
                size_t got = 0;
                int64_t t;
                double x;
                tsdb__chunk_iter_init(&it, ch.buf, ch.len, INT64_MIN, INT64_MAX);
                while (tsdb__chunk_iter_next(&it, &t, &x) > 0) {
                    ts[got] = t;
                    v[got++] = x;
                }
                int64_t t2 = util_thread_cpu_ns();
                if (got != n)
                    fail("ours", s, start + got);
                for (size_t i = 0; i < n; i++)
                    if (ts[i] != s->ts[start + i] || bits_of(v[i]) != bits_of(s->v[start + i]))
                        fail("ours", s, start + i);
                r->enc_ns += (double)(t1 - t0);
                r->dec_ns += (double)(t2 - t1);
                if (rep == 0) {
                    r->samples += n;
                    r->bytes += ch.len;
                    /* Which methods the blocks chose. */
                    struct tsdb__block_ctx ctx;
                    tsdb__block_ctx_init(&ctx);
                    size_t off = TSDB_CHUNK_HEADER, bn, used;
                    int64_t bts[TSDB_BLOCK_MAX];
                    double bv[TSDB_BLOCK_MAX];
                    while (off < ch.len) {
                        int tm, vm;
                        tsdb__block_methods(&ctx, ch.buf + off, ch.len - off, &tm, &vm);
                        r->methods[tm][vm]++;
                        if (tsdb__block_decode(&ctx, ch.buf + off, ch.len - off, bts, bv,
                                               TSDB_BLOCK_MAX, &bn, &used))
                            break;
                        off += used;
                    }
                }
                tsdb__chunk_release(&ch);
            }
        }
    }
    r->enc_ns /= reps;
    r->dec_ns /= reps;
    free(ts);
    free(v);
}

static void run_gorilla(const struct corpus *c, struct result *r, int reps)
{
    memset(r, 0, sizeof(*r));
    struct gbits w = {xcalloc(1, 4096), 4096, 0};
    int64_t *ts = xmalloc(CHUNK_SAMPLES * sizeof(*ts));
    double *v = xmalloc(CHUNK_SAMPLES * sizeof(*v));
    for (int rep = 0; rep < reps; rep++) {
        for (size_t k = 0; k < c->ns; k++) {
            const struct series *s = &c->s[k];
            for (size_t start = 0; start < s->n; start += CHUNK_SAMPLES) {
                size_t n = s->n - start < CHUNK_SAMPLES ? s->n - start : CHUNK_SAMPLES;
                int64_t t0 = util_thread_cpu_ns();
                size_t bytes = gorilla_encode(&w, s->ts + start, s->v + start, n);
                int64_t t1 = util_thread_cpu_ns();
                gorilla_decode(w.buf, n, ts, v);
                int64_t t2 = util_thread_cpu_ns();
                for (size_t i = 0; i < n; i++)
                    if (ts[i] != s->ts[start + i] || bits_of(v[i]) != bits_of(s->v[start + i]))
                        fail("gorilla", s, start + i);
                r->enc_ns += (double)(t1 - t0);
                r->dec_ns += (double)(t2 - t1);
                if (rep == 0) {
                    r->samples += n;
                    r->bytes += bytes;
                }
            }
        }
    }
    r->enc_ns /= reps;
    r->dec_ns /= reps;
    free(w.buf);
    free(ts);
    free(v);
}

static void report(const char *name, const struct corpus *c, int reps, int show_methods)
{
    struct result o, g;
    run_ours(c, &o, reps);
    run_gorilla(c, &g, reps);
    double ob = (double)o.bytes / (double)o.samples, gb = (double)g.bytes / (double)g.samples;
    printf("| %-18s | %6zu | %9zu | %6.3f | %6.3f | %5.2fx | %6.1f | %6.1f | %6.1f | %6.1f |\n",
           name, c->ns, o.samples, ob, gb, gb / ob, (double)o.samples / o.enc_ns * 1e3,
           (double)o.samples / o.dec_ns * 1e3, (double)g.samples / g.enc_ns * 1e3,
           (double)g.samples / g.dec_ns * 1e3);
    if (!show_methods)
        return;
    static const char *tn[] = {"same", "delta", "dod", "varint"};
    static const char *vn[] = {"same", "const", "dec", "dec_dod", "xor", "raw"};
    size_t total = 0;
    for (int t = 0; t < 4; t++)
        for (int vm = 0; vm < 6; vm++)
            total += o.methods[t][vm];
    printf("|   blocks by method: ");
    for (int t = 0; t < 4; t++)
        for (int vm = 0; vm < 6; vm++)
            if (o.methods[t][vm] * 1000 >= total)
                printf("%s/%s %.1f%%  ", tn[t], vn[vm], 100.0 * (double)o.methods[t][vm] / total);
    printf("|\n");
}

static void free_corpus(struct corpus *c)
{
    for (size_t i = 0; i < c->ns; i++) {
        free(c->s[i].ts);
        free(c->s[i].v);
    }
    free(c->s);
    memset(c, 0, sizeof(*c));
}

static void crc_speed(void)
{
    size_t n = 1 << 20;
    uint8_t *buf = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rnd();
    uint32_t x = 0;
    int64_t t0 = util_thread_cpu_ns();
    for (int i = 0; i < 200; i++)
        x ^= tsdb__crc32c(0, buf, n);
    int64_t t1 = util_thread_cpu_ns();
    for (int i = 0; i < 20; i++)
        x ^= tsdb__crc32c_sw(0, buf, n);
    int64_t t2 = util_thread_cpu_ns();
    printf("\ncrc32c: %.2f GB/s (dispatch), %.2f GB/s (slicing-by-8) [%08x]\n",
           200.0 * (double)n / (double)(t1 - t0), 20.0 * (double)n / (double)(t2 - t1), x);
    free(buf);
}

int main(int argc, char **argv)
{
    static void (*const gens[])(struct corpus *) = {syn_cpu,       syn_bytes, syn_memory,
                                                    syn_load,      syn_const, syn_requests,
                                                    syn_histogram, syn_ratio};
    static const char *names[] = {"cpu seconds", "byte counters", "memory bytes", "load avg",
                                  "constant",    "requests",      "histogram",    "ratio gauge"};
    printf("Block size %d samples; chunks of %d samples; throughput in million samples per "
           "CPU-second.\n\n",
           TSDB_BLOCK_MAX, CHUNK_SAMPLES);
    printf("| corpus             | series | samples   | B/smp  | gorilla| ratio  | enc/s  | dec/s  "
           "| g enc  | g dec  |\n");
    printf("|--------------------|-------:|----------:|-------:|-------:|-------:|-------:|-------:"
           "|-------:|-------:|\n");
    struct corpus all = {"synthetic", NULL, 0, 0};
    for (size_t g = 0; g < ARRAY_SIZE(gens); g++) {
        struct corpus c = {names[g], NULL, 0, 0};
        gens[g](&c);
        report(names[g], &c, 3, 1);
        /* Move the series into the combined corpus. */
        for (size_t i = 0; i < c.ns; i++) {
            struct series *s = add_series(&all, c.s[i].name, 0);
            free(s->ts);
            free(s->v);
            *s = c.s[i];
        }
        free(c.s);
    }
    report("all synthetic", &all, 3, 1);
    free_corpus(&all);

    if (argc > 1) {
        struct corpus rec = {"recorded", NULL, 0, 0};
        if (load_recorded(&rec, argv[1]) != 0) {
            fprintf(stderr, "chunk_bench: cannot read %s\n", argv[1]);
            return 1;
        }
        report("recorded host", &rec, 3, 1);
        free_corpus(&rec);
    }
    crc_speed();
    return 0;
}
