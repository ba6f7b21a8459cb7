/*
 * chunk.c: the sample codec of the store: blocks of up to TSDB_BLOCK_MAX
 * samples, each coded with whichever of several timestamp and value methods
 * is smallest for that block, chained into chunks. Decoding is defensive:
 * any byte string gives samples or an error, never a crash or a long loop.
 *
 * Format (version 2). All multi-byte integers are little-endian. Version 1
 * spent 6 bits on every block header and decimal scale and 5 on every gcd,
 * about 4% of the store; it never left development and is refused.
 *
 * Chunk:  u8 version (2) | u32 sample count | blocks...
 *         The blocks hold exactly `count` samples and end at the chunk's end.
 *
 * Block:  a bit string, LSB-first within each byte, padded with zero bits
 *         to a whole byte. Fields, in order:
 *
 *   header: ts_method:2  v_method:3  full:1; after a chunk's first block
 *           it is preceded by one bit: 1 says "the previous block's header
 *           again" and the 6 bits are left out (four blocks in five repeat)
 *   [uvar n-1]                    only when !full (full: n = TSDB_BLOCK_MAX)
 *   [uvar zz(ts0)] [xor1(v0, 0)]  only in a chunk's first block: the first
 *                                 sample is written explicitly and the methods
 *                                 below code the other n-1 against it
 *   timestamps of the m coded samples (by ts_method)
 *   values of the m coded samples (by v_method)
 *
 * Every method codes the m samples against "prev", the sample before them
 * (the previous block's last one, or the explicit first). With m = 0 both
 * methods must be SAME. A block is read against the context its chunk's
 * earlier blocks leave (struct tsdb__block_ctx: the last sample and step,
 * the last header and decimal scale), which seek points keep whole.
 *
 * Building blocks:
 *   uvar       unsigned varint: 4-bit groups, low group first, each followed
 *              by a continue bit (5 bits per group, at most 16 groups).
 *   zz(x)      zigzag: (x << 1) ^ (x >> 63), so small negatives stay small.
 *   xor1(x, p) one value against p: d = x ^ p; lz:6 (leading zeros), len-1:6,
 *              then the len meaningful bits of d (d = 0 is lz 63, len 1, bit 0).
 *   pack(s[m]) mode:1, then
 *              mode 0, frame of reference: uvar zz(min), w:6 (63 means
 *                64); if w > 0: gcd(g), then m fields of w bits:
 *                (s[i]-min)/g, g being the gcd of all s[i]-min;
 *              mode 1, Exp-Golomb around a reference (the median): uvar
 *                zz(ref), gcd(g), k:6 (<= 55), then for each value
 *                u = zz((s[i]-ref)/g) (below 2^55) as an order-k Exp-Golomb
 *                code: q = (u >> k) + 1 has len+1 bits; len zero bits, a
 *                one bit, the low len bits of q, the low k bits of u.
 *                k = 63 instead says sparse: most values equal ref. Then
 *                k2:6 (<= 55), uvar c (1 <= c <= m), and for each of the c
 *                values that differ, in increasing position: its position
 *                in bitlen(m-1) bits, then u-1 (u as above, >= 1) as an
 *                order-k2 Exp-Golomb code; every other value is ref.
 *              All arithmetic is mod 2^64.
 *   gcd(g)     0 (one bit) for g = 1, which nearly every pack has; else 1
 *              and uvar (g-2)
 *   seq1(x[m], base)  deltas d[i] = x[i] - x[i-1] (x[-1] = base): pack(d)
 *   seq2(x[m], base)  uvar zz(d[0]), then pack(d[i] - d[i-1]) for i >= 1
 *
 * Timestamp methods (deltas are taken mod 2^64, so INT64 extremes work):
 *   0 SAME    every step equals the previous block's last step: 0 bits
 *   1 DELTA   seq1(ts, prev ts)  (regular steps: w = 0, about 3 bytes)
 *   2 DOD     seq2(ts, prev ts)  (jitter around a drifting step)
 *   3 VARINT  uvar zz(d[i]) for each delta
 *
 * Value methods (values as their 64 IEEE bits):
 *   0 SAME    all equal prev, bit for bit: 0 bits
 *   1 CONST   all equal one value c: xor1(c, prev)
 *   2 DEC     decimal: scale, explicit:1, then integers x[i] such
 *             that v[i] is, to the bit, x[i] / 10^e (mode 0), x[i] * 1e-e
 *             (mode 1: producers that multiply by 0.001) or x[i] / 10^e /
 *             100 (mode 2: a parsed percentage turned into a ratio); e is
 *             0..6 for k = 0..6 and 9 (nanoseconds) for k = 7; |x| <= 2^53.
 *             Mode 3 is invalid. The scale is k:3 mode:2 (5 bits) in a
 *             chunk's first decimal block; in later ones a 1 bit says "the
 *             last decimal block's k and mode again", a 0 bit precedes the 5.
 *             explicit = 0: prev converts the same way and is the base;
 *             explicit = 1: uvar zz(x[0]) and x[1..] use x[0] as base.
 *             Then seq1 of the integers.
 *   3 DEC_DOD as DEC with seq2
 *   4 XOR     Gorilla: per value d = v ^ previous value; "0" if d = 0; "10"
 *             + the bits of the current window if d fits it; else "11" +
 *             lz:6 + len-1:6 + len bits (the new window)
 *   5 RAW     64 bits per value
 *   6, 7      invalid
 */
#include "tsdb/chunk.h"
#include "tsdb/bitio.h"
#include "tsdb/le.h"
#include "util/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define FULL_BIT 32u

/* Decimal scales by their 3-bit code: 10^0..10^6 and 10^9 (nanoseconds). */
static const double P10[8] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e9};
static const double PINV[8] = {1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-9};

const char *tsdb__strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case TSDB__ECORRUPT:
        return "corrupt encoding";
    case TSDB__ETRUNC:
        return "truncated encoding";
    case TSDB__ESPACE:
        return "block larger than the output array";
    case TSDB__EORDER:
        return "timestamps not strictly increasing";
    case TSDB__EFULL:
        return "chunk full";
    case TSDB__EINVAL:
        return "invalid argument";
    }
    return "unknown error";
}

void tsdb__block_ctx_init(struct tsdb__block_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
}

/* ---- small integer helpers ---------------------------------------------- */

static inline uint64_t zz(uint64_t x)
{
    return (x << 1) ^ (0 - (x >> 63));
}

static inline uint64_t unzz(uint64_t u)
{
    return (u >> 1) ^ (0 - (u & 1));
}

static inline unsigned bitlen(uint64_t u)
{
    return u ? 64u - (unsigned)__builtin_clzll(u) : 0;
}

static inline unsigned uvar_bits(uint64_t u)
{
    unsigned g = (bitlen(u) + 3) / 4;
    return 5 * (g ? g : 1);
}

/* Bits of a gcd field (see put_g). */
static inline unsigned g_bits(uint64_t g)
{
    return g == 1 ? 1 : 1 + uvar_bits(g - 2);
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    int shift = __builtin_ctzll(a | b);
    a >>= __builtin_ctzll(a);
    do {
        b >>= __builtin_ctzll(b);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        b -= a;
    } while (b);
    return a << shift;
}

static inline uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}

static inline double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* Two's complement reinterpretation (well defined, unlike a cast of a big uint64). */
static inline int64_t as_i64(uint64_t u)
{
    int64_t x;
    memcpy(&x, &u, 8);
    return x;
}

enum { DEC_DIV, DEC_MUL, DEC_PERCENT, DEC_MODES };
/* In struct tsdb__block_ctx's dec: set once a decimal block was seen (k | mode << 3 below). */
#define DEC_KNOWN 32u

static inline double dec_value(int64_t x, unsigned k, unsigned mode)
{
    if (mode == DEC_MUL)
        return (double)x * PINV[k];
    if (mode == DEC_PERCENT)
        return (double)x / P10[k] / 100;
    return (double)x / P10[k];
}

/*
 * If v is exactly dec_value(x, k, mode) for an integer |x| <= 2^53, store x
 * and return 1. Encoder and decoder both call this on the previous value, so
 * it must be deterministic (it is: IEEE arithmetic, no library calls).
 */
static inline int dec_int(double v, unsigned k, unsigned mode, int64_t *x)
{
    double s = v * P10[k] * (mode == DEC_PERCENT ? 100 : 1);
    if (!(s >= -0x1p53 && s <= 0x1p53))
        return 0; /* also NaN */
    int64_t xi = (int64_t)(s + (s < 0 ? -0.5 : 0.5));
    if (dbits(dec_value(xi, k, mode)) != dbits(v))
        return 0;
    *x = xi;
    return 1;
}

/* Move ctx past a block of n samples whose last value has bits last_v. */
static void ctx_advance(struct tsdb__block_ctx *ctx, const int64_t *ts, size_t n, uint64_t last_v)
{
    uint64_t before = n >= 2 ? (uint64_t)ts[n - 2] : (uint64_t)ctx->ts;
    ctx->delta = n >= 2 || ctx->valid ? as_i64((uint64_t)ts[n - 1] - before) : 0;
    ctx->ts = ts[n - 1];
    ctx->v = last_v;
    ctx->valid = 1;
}

/* ---- writer side -------------------------------------------------------- */

static void put_uvar(struct tsdb__bitw *w, uint64_t u)
{
    while (u >= 16) {
        tsdb__bitw_put(w, (u & 15) | 16, 5);
        u >>= 4;
    }
    tsdb__bitw_put(w, u, 5);
}

/* A gcd field: one 0 bit for g = 1 (nearly every pack), else a 1 bit and uvar (g-2). */
static void put_g(struct tsdb__bitw *w, uint64_t g)
{
    if (g == 1) {
        tsdb__bitw_put(w, 0, 1);
        return;
    }
    tsdb__bitw_put(w, 1, 1);
    put_uvar(w, g - 2);
}

static void xor1_parts(uint64_t d, unsigned *lz, unsigned *len)
{
    if (!d) {
        *lz = 63;
        *len = 1;
        return;
    }
    *lz = (unsigned)__builtin_clzll(d);
    *len = 64 - *lz - (unsigned)__builtin_ctzll(d);
}

static unsigned xor1_bits(uint64_t x, uint64_t prev)
{
    unsigned lz, len;
    xor1_parts(x ^ prev, &lz, &len);
    return 12 + len;
}

static void put_xor1(struct tsdb__bitw *w, uint64_t x, uint64_t prev)
{
    uint64_t d = x ^ prev;
    unsigned lz, len;
    xor1_parts(d, &lz, &len);
    tsdb__bitw_put(w, lz | (uint64_t)(len - 1) << 6, 12);
    tsdb__bitw_put64(w, d >> (64 - lz - len), len);
}

/*
 * A plan for packing s[0..m): frame of reference (mode 0: fixed width w
 * above the minimum) or Exp-Golomb around the median (mode 1: order w),
 * whichever is smaller. FOR suits values spread evenly; Exp-Golomb suits
 * values bunched around one level with a few outliers (a CPU counter that
 * grows by 99..100 ticks a second but once by 4), where FOR would pay the
 * outlier's width on every value.
 */
struct pack {
    unsigned mode;
    uint64_t ref; /* FOR: the minimum; EG: the median */
    uint64_t g;   /* common divisor of s[i] - ref */
    unsigned w;   /* FOR: bit width; EG: order k */
    uint64_t bits;
};

#define EG_MAX_BITS 55 /* Exp-Golomb only for zigzagged residuals below 2^55 */
#define EG_SPARSE   63 /* in mode 1's order field: the sparse form follows */

static inline unsigned eg_bits(uint64_t u, unsigned k)
{
    return 2 * (bitlen((u >> k) + 1) - 1) + 1 + k;
}

/*
 * The reference for Exp-Golomb: the median of up to 9 values spread over
 * s[0..m). Close enough to the true median to code as well, and much
 * cheaper than selecting it (this runs for every candidate sequence).
 */
static uint64_t approx_median(const uint64_t *s, size_t m)
{
    int64_t t[9];
    size_t k = m < 9 ? m : 9;
    for (size_t i = 0; i < k; i++) {
        int64_t x = as_i64(s[i * m / k]);
        size_t j = i;
        for (; j > 0 && t[j - 1] > x; j--)
            t[j] = t[j - 1];
        t[j] = x;
    }
    return (uint64_t)t[k / 2];
}

/*
 * The Exp-Golomb order for m values whose bit lengths are counted in
 * hist[0..bmax]: a value of b bits costs 1 + k bits if b <= k, else
 * 2b - k - 1 (exact up to a carry); the caller costs the chosen k exactly.
 * `le` counts values of at most kk bits, `gt2b` sums 2b over the others.
 */
static unsigned eg_pick(const unsigned *hist, unsigned bmax, size_t m)
{
    uint64_t le = 0, gt2b = 0, kcost = UINT64_MAX;
    unsigned k = 0;
    for (unsigned b = 0; b <= bmax; b++)
        gt2b += 2 * (uint64_t)b * hist[b];
    for (unsigned kk = 0; kk <= bmax; kk++) {
        le += hist[kk];
        gt2b -= 2 * (uint64_t)kk * hist[kk];
        uint64_t c = le * (1 + kk) + gt2b - (m - le) * (kk + 1);
        if (c < kcost) {
            kcost = c;
            k = kk;
        }
    }
    return k;
}

static void put_eg(struct tsdb__bitw *w, uint64_t u, unsigned k)
{
    uint64_t q = (u >> k) + 1;
    unsigned len = bitlen(q) - 1;
    tsdb__bitw_put(w, (uint64_t)1 << len, len + 1); /* len zeros, then a one */
    tsdb__bitw_put(w, q & tsdb__mask(len), len);
    tsdb__bitw_put(w, u & tsdb__mask(k), k);
}

/*
 * Take an Exp-Golomb form (mode 1 or 2) of order k over u[0..n) if it is
 * smaller than best; `bits` is what it costs before the codes.
 */
static void eg_offer(struct pack *best, unsigned mode, uint64_t ref, uint64_t g, const uint64_t *u,
                     size_t n, unsigned k, uint64_t bits)
{
    for (size_t i = 0; i < n; i++)
        bits += eg_bits(u[i], k);
    if (bits < best->bits)
        *best = (struct pack){.mode = mode, .ref = ref, .g = g, .w = k, .bits = bits};
}

/*
 * Sparse: most of s[] equal one value (an error counter's deltas: zero but
 * for a few seconds a minute). FOR pays its width and Exp-Golomb at least a
 * bit on every value; this pays only for the ones that differ, with their
 * positions. The reference is the approximate median, which is the common
 * value whenever it is most of the block.
 */
static void sparse_plan(const uint64_t *s, size_t m, struct pack *best)
{
    uint64_t ref = approx_median(s, m), g = 0;
    size_t c = 0;
    for (size_t i = 0; i < m; i++) {
        if (s[i] == ref)
            continue;
        uint64_t d = s[i] - ref;
        g = gcd64(g, as_i64(d) < 0 ? 0 - d : d);
        c++;
    }
    if (!c || c > m / 4 || g > INT64_MAX)
        return;
    unsigned hist[65] = {0};
    uint64_t maxu = 0, u[TSDB_BLOCK_MAX];
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        if (s[i] == ref)
            continue;
        int64_t q = as_i64(s[i] - ref);
        u[n] = zz((uint64_t)(g == 1 ? q : q / (int64_t)g)) - 1;
        maxu = u[n] > maxu ? u[n] : maxu;
        hist[bitlen(u[n++])]++;
    }
    unsigned bmax = bitlen(maxu);
    if (bmax > EG_MAX_BITS)
        return;
    uint64_t bits =
        1 + uvar_bits(zz(ref)) + g_bits(g) + 6 + 6 + uvar_bits(c) + (uint64_t)c * bitlen(m - 1);
    eg_offer(best, 2, ref, g, u, c, eg_pick(hist, bmax, c), bits);
}

static void eg_plan(const uint64_t *s, size_t m, struct pack *best)
{
    uint64_t ref = approx_median(s, m), g = 0;
    for (size_t i = 0; i < m && g != 1; i++) {
        uint64_t d = s[i] - ref;
        g = gcd64(g, as_i64(d) < 0 ? 0 - d : d);
    }
    if (g == 0 || g > INT64_MAX)
        return; /* all equal (FOR does that in 0 bits per value), or absurd */
    uint64_t u[TSDB_BLOCK_MAX], maxu = 0;
    unsigned hist[65] = {0};
    for (size_t i = 0; i < m; i++) {
        int64_t q = as_i64(s[i] - ref);
        u[i] = zz((uint64_t)(g == 1 ? q : q / (int64_t)g));
        maxu = u[i] > maxu ? u[i] : maxu;
        hist[bitlen(u[i])]++;
    }
    unsigned bmax = bitlen(maxu);
    if (bmax > EG_MAX_BITS)
        return;
    uint64_t bits = 1 + uvar_bits(zz(ref)) + g_bits(g) + 6;
    eg_offer(best, 1, ref, g, u, m, eg_pick(hist, bmax, m), bits);
}

/* pack_plan for m >= 1 values whose least and greatest (as int64) are
 * known: the callers find them in the pass that makes the values. */
static void pack_plan_range(const uint64_t *s, size_t m, int64_t mn, int64_t mx, struct pack *p)
{
    p->mode = 0;
    p->g = 1;
    p->w = 0;
    p->ref = (uint64_t)mn;
    uint64_t range = (uint64_t)mx - (uint64_t)mn;
    if (range) {
        uint64_t g = 0;
        for (size_t i = 0; i < m && g != 1; i++)
            g = gcd64(g, s[i] - p->ref);
        p->g = g;
        p->w = bitlen(range / g);
        if (p->w == 63)
            p->w = 64; /* the 6-bit field spells 64 as 63 */
    }
    p->bits = 1 + uvar_bits(zz(p->ref)) + 6;
    if (p->w) {
        p->bits += g_bits(p->g) + (uint64_t)m * p->w;
        if (m > 2 && p->w > 2)
            eg_plan(s, m, p); /* at 1..2 bits a value, FOR is as good as it gets... */
        if (m >= 16)
            sparse_plan(s, m, p); /* ...unless nearly all of them are one value */
    }
}

static void pack_plan(const uint64_t *s, size_t m, struct pack *p)
{
    if (!m) {
        *p = (struct pack){.g = 1};
        return;
    }
    int64_t mn = as_i64(s[0]), mx = mn;
    for (size_t i = 1; i < m; i++) {
        int64_t x = as_i64(s[i]);
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
    }
    pack_plan_range(s, m, mn, mx, p);
}

static void put_pack(struct tsdb__bitw *w, const uint64_t *s, size_t m, const struct pack *p)
{
    if (!m)
        return;
    tsdb__bitw_put(w, p->mode != 0, 1);
    put_uvar(w, zz(p->ref));
    if (p->mode == 1) {
        put_g(w, p->g);
        tsdb__bitw_put(w, p->w, 6);
        for (size_t i = 0; i < m; i++) {
            int64_t d = as_i64(s[i] - p->ref);
            put_eg(w, zz((uint64_t)(p->g == 1 ? d : d / (int64_t)p->g)), p->w);
        }
        return;
    }
    if (p->mode == 2) {
        put_g(w, p->g);
        tsdb__bitw_put(w, EG_SPARSE, 6);
        tsdb__bitw_put(w, p->w, 6);
        size_t c = 0;
        for (size_t i = 0; i < m; i++)
            c += s[i] != p->ref;
        put_uvar(w, c);
        unsigned pb = bitlen(m - 1);
        for (size_t i = 0; i < m; i++) {
            if (s[i] == p->ref)
                continue;
            int64_t d = as_i64(s[i] - p->ref);
            tsdb__bitw_put(w, i, pb);
            put_eg(w, zz((uint64_t)(p->g == 1 ? d : d / (int64_t)p->g)) - 1, p->w);
        }
        return;
    }
    tsdb__bitw_put(w, p->w == 64 ? 63 : p->w, 6);
    if (!p->w)
        return;
    put_g(w, p->g);
    if (p->g == 1) {
        for (size_t i = 0; i < m; i++)
            tsdb__bitw_put64(w, s[i] - p->ref, p->w);
    } else {
        for (size_t i = 0; i < m; i++)
            tsdb__bitw_put64(w, (s[i] - p->ref) / p->g, p->w);
    }
}

/*
 * A plan for coding x[0..m) against base with seq1 (order 1) or seq2
 * (order 2). d holds the deltas (order 1) or the first delta and then the
 * delta-of-deltas (order 2).
 */
struct seq {
    int order;
    uint64_t d[TSDB_BLOCK_MAX];
    struct pack p;
    uint64_t bits;
};

static inline __attribute__((always_inline)) void
seq_plan_as(const uint64_t *x, size_t m, uint64_t base, int order, struct seq *q)
{
    q->order = order;
    if (m == 0 || (order == 2 && m == 1)) {
        pack_plan(q->d, 0, &q->p);
        q->d[0] = m ? x[0] - base : 0;
        q->bits = m ? uvar_bits(zz(q->d[0])) : 0;
        return;
    }
    /* The values the pack codes and their least and greatest, in one pass. */
    q->d[0] = x[0] - base;
    size_t from = order == 1 ? 0 : 1;
    uint64_t prev = x[0], prevd = q->d[0];
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    if (order == 1)
        mn = mx = as_i64(q->d[0]);
    for (size_t i = 1; i < m; i++) {
        uint64_t d = x[i] - prev;
        prev = x[i];
        uint64_t e = order == 1 ? d : d - prevd;
        prevd = d;
        q->d[i] = e;
        int64_t se = as_i64(e);
        mn = se < mn ? se : mn;
        mx = se > mx ? se : mx;
    }
    pack_plan_range(q->d + from, m - from, mn, mx, &q->p);
    q->bits = (order == 1 ? 0 : uvar_bits(zz(q->d[0]))) + q->p.bits;
}

/* seq_plan_as compiled once per order: the loop's choice is a constant. */
static void seq_plan(const uint64_t *x, size_t m, uint64_t base, int order, struct seq *q)
{
    if (order == 1)
        seq_plan_as(x, m, base, 1, q);
    else
        seq_plan_as(x, m, base, 2, q);
}

/*
 * A lower bound on seq_plan(x, m, base, 2)'s bits: the first delta's uvar,
 * then a pack of m - 1 values takes at least mode:1, a 5-bit uvar and w:6.
 */
static uint64_t seq2_floor(const uint64_t *x, size_t m, uint64_t base)
{
    if (!m)
        return 0;
    return uvar_bits(zz(x[0] - base)) + (m > 1 ? 12 : 0);
}

static void put_seq(struct tsdb__bitw *w, size_t m, const struct seq *q)
{
    if (q->order == 1 || m == 0) {
        put_pack(w, q->d, m, &q->p);
    } else {
        put_uvar(w, zz(q->d[0]));
        put_pack(w, q->d + 1, m - 1, &q->p);
    }
}

/* Gorilla XOR: writes when w is not NULL; returns the bits either way. */
static uint64_t xor_run(struct tsdb__bitw *w, uint64_t prev, const uint64_t *x, size_t m)
{
    uint64_t bits = 0;
    unsigned wl = 0, wt = 0, wlen = 0;
    int have = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t d = x[i] ^ prev;
        prev = x[i];
        if (!d) {
            bits += 1;
            if (w)
                tsdb__bitw_put(w, 0, 1);
            continue;
        }
        unsigned lz = (unsigned)__builtin_clzll(d), tz = (unsigned)__builtin_ctzll(d);
        if (have && lz >= wl && tz >= wt) {
            bits += 2 + wlen;
            if (w) {
                tsdb__bitw_put(w, 1, 2);
                tsdb__bitw_put64(w, d >> wt, wlen);
            }
        } else {
            wl = lz;
            wt = tz;
            wlen = 64 - lz - tz;
            have = 1;
            bits += 14 + wlen;
            if (w) {
                tsdb__bitw_put(w, 3 | (uint64_t)lz << 2 | (uint64_t)(wlen - 1) << 8, 14);
                tsdb__bitw_put64(w, d >> tz, wlen);
            }
        }
    }
    return bits;
}

/* The chosen value coding for one block. */
struct vplan {
    int method;
    uint64_t bits;
    unsigned k, mode, explicit_base;
    int64_t x0;
    struct seq *seq;   /* the winning sequence: one of buf */
    struct seq buf[2]; /* a candidate goes in the one seq is not (no copies) */
};

/* Where the next candidate sequence goes: the buffer the winner is not in. */
static inline struct seq *spare(struct seq *buf, const struct seq *won)
{
    return won == &buf[0] ? &buf[1] : &buf[0];
}

/*
 * What one pass over a block's m samples (after the first of a chunk) finds
 * for the planners: tsdb__block_encode makes it with the order check, so
 * the planners need no pass of their own for the common verdicts.
 */
struct scan {
    int steady;                 /* every step is the context's step: TS_SAME */
    uint64_t changes;           /* values unlike the one before (the first: the context's) */
    int varies;                 /* some value is unlike the first */
    int ints;                   /* every value is an integer (scale 0, see dec_find) */
    int64_t xi[TSDB_BLOCK_MAX]; /* the values as integers, when ints */
};

/*
 * Find the smallest decimal scale k (and mode) at which every value is an
 * exact integer, past the scan's scale 0; fill xi. Returns 0 if there is
 * none.
 */
static int dec_find(const uint64_t *vb, size_t m, unsigned *k_out, unsigned *mode_out, int64_t *xi)
{
    for (unsigned k = 0; k < 8; k++) {
        for (unsigned mode = 0; mode < DEC_MODES; mode++) {
            if (mode == DEC_MUL && k == 0)
                continue; /* the same as DEC_DIV */
            if (k == 0 && mode == DEC_DIV)
                continue; /* the scan's verdict */
            size_t i = 0;
            while (i < m && dec_int(bitsd(vb[i]), k, mode, &xi[i]))
                i++;
            if (i == m) {
                *k_out = k;
                *mode_out = mode;
                return 1;
            }
        }
    }
    return 0;
}

static void plan_dec(uint64_t prev, unsigned last_dec, const uint64_t *vb, size_t m,
                     const struct scan *sc, struct vplan *best);

/* Plan m values against prev; last_dec is the context's (struct tsdb__block_ctx dec). */
static void plan_values(uint64_t prev, unsigned last_dec, const uint64_t *vb, size_t m,
                        const struct scan *sc, struct vplan *best)
{
    uint64_t changes = sc->changes;
    if (!changes) {
        best->method = TSDB__V_SAME;
        best->bits = 0;
        return;
    }
    if (!sc->varies) {
        best->method = TSDB__V_CONST;
        best->bits = xor1_bits(vb[0], prev);
        return; /* nothing else beats one value for the whole block */
    }
    best->method = TSDB__V_RAW;
    best->bits = 64 * (uint64_t)m;

    /*
     * XOR costs at least 1 bit per unchanged value and 3 per changed one; a
     * decimal coding under that bound wins without running XOR's estimate
     * (counters and most gauges: the common case on the append path).
     */
    uint64_t xor_floor = m + 2 * changes;
    plan_dec(prev, last_dec, vb, m, sc, best);
    if (best->method != TSDB__V_RAW && best->bits < xor_floor)
        return;
    uint64_t xb = xor_run(NULL, prev, vb, m);
    /* Ties go to XOR, as when it was tried first. */
    if (xb < 64 * (uint64_t)m && xb <= best->bits) {
        best->method = TSDB__V_XOR;
        best->bits = xb;
    }
}

/* The bits of a decimal block's scale and mode: 1 when they repeat the last ones. */
static inline unsigned dec_param_bits(unsigned last_dec, unsigned code)
{
    if (!(last_dec & DEC_KNOWN))
        return 5;
    return (last_dec & 31) == code ? 1 : 6;
}

/* The best decimal coding if it beats best (RAW on entry). */
static void plan_dec(uint64_t prev, unsigned last_dec, const uint64_t *vb, size_t m,
                     const struct scan *sc, struct vplan *best)
{
    int64_t xi_buf[TSDB_BLOCK_MAX];
    const int64_t *xi = sc->xi;
    unsigned k, mode;
    if (!sc->ints) {
        if (!dec_find(vb, m, &k, &mode, xi_buf))
            return;
        xi = xi_buf;
    } else {
        k = 0;
        mode = DEC_DIV;
    }
    /* The same integers as the unsigned words the sequence codes (an
     * object may be read through the unsigned type of its signed type). */
    const uint64_t *xs = (const uint64_t *)xi;
    /*
     * Code against prev when it converts at this scale (it usually does),
     * else from an explicit first integer. Trying the explicit form as well
     * when prev converts buys little: a jump from prev is one outlier, which
     * Exp-Golomb takes in stride.
     */
    int64_t px;
    unsigned expl = !dec_int(bitsd(prev), k, mode, &px);
    uint64_t head = dec_param_bits(last_dec, k | mode << 3) + 1 + (expl ? uvar_bits(zz(xs[0])) : 0);
    const uint64_t *sx = expl ? xs + 1 : xs, sbase = expl ? xs[0] : (uint64_t)px;
    size_t sm = expl ? m - 1 : m;
    for (int order = 1; order <= 2; order++) {
        /* Order 2 only replaces order 1 when smaller: skip it when it cannot be. */
        if (order == 2 && best->method == TSDB__V_DEC &&
            head + seq2_floor(sx, sm, sbase) >= best->bits)
            break;
        struct seq *tmp = spare(best->buf, best->seq);
        seq_plan(sx, sm, sbase, order, tmp);
        if (head + tmp->bits < best->bits) {
            best->method = order == 1 ? TSDB__V_DEC : TSDB__V_DEC_DOD;
            best->bits = head + tmp->bits;
            best->k = k;
            best->mode = mode;
            best->explicit_base = expl;
            best->x0 = xi[0];
            best->seq = tmp;
        }
    }
}

static void put_values(struct tsdb__bitw *w, uint64_t prev, unsigned last_dec, const uint64_t *vb,
                       size_t m, const struct vplan *p)
{
    switch (p->method) {
    case TSDB__V_SAME:
        break;
    case TSDB__V_CONST:
        put_xor1(w, vb[0], prev);
        break;
    case TSDB__V_DEC:
    case TSDB__V_DEC_DOD: {
        unsigned code = p->k | p->mode << 3;
        if (!(last_dec & DEC_KNOWN)) {
            tsdb__bitw_put(w, code, 5);
        } else if ((last_dec & 31) == code) {
            tsdb__bitw_put(w, 1, 1);
        } else {
            tsdb__bitw_put(w, 0, 1);
            tsdb__bitw_put(w, code, 5);
        }
        tsdb__bitw_put(w, p->explicit_base, 1);
        if (p->explicit_base) {
            put_uvar(w, zz((uint64_t)p->x0));
            put_seq(w, m - 1, p->seq);
        } else {
            put_seq(w, m, p->seq);
        }
        break;
    }
    case TSDB__V_XOR:
        xor_run(w, prev, vb, m);
        break;
    default:
        for (size_t i = 0; i < m; i++)
            tsdb__bitw_put64(w, vb[i], 64);
        break;
    }
}

/* The chosen timestamp coding for one block. */
struct tplan {
    int method;
    uint64_t bits;
    struct seq *seq, buf[2]; /* as in struct vplan */
};

static void plan_times(const struct tsdb__block_ctx *c, const int64_t *ts, size_t m,
                       const struct scan *sc, struct tplan *best)
{
    if (sc->steady) { /* most blocks, and it needs nothing else */
        best->method = TSDB__TS_SAME;
        best->bits = 0;
        return;
    }
    uint64_t t[TSDB_BLOCK_MAX];
    uint64_t vbits = 0, prev = (uint64_t)c->ts;
    for (size_t i = 0; i < m; i++) {
        t[i] = (uint64_t)ts[i];
        vbits += uvar_bits(zz(t[i] - prev));
        prev = t[i];
    }
    best->method = TSDB__TS_VARINT;
    best->bits = vbits;
    for (int order = 1; order <= 2; order++) {
        if (order == 2 && seq2_floor(t, m, (uint64_t)c->ts) > best->bits)
            break; /* order 2 cannot reach best, even on a tie */
        struct seq *tmp = spare(best->buf, best->seq);
        seq_plan(t, m, (uint64_t)c->ts, order, tmp);
        if (tmp->bits <= best->bits) {
            best->method = order == 1 ? TSDB__TS_DELTA : TSDB__TS_DOD;
            best->bits = tmp->bits;
            best->seq = tmp;
        }
    }
}

static void put_times(struct tsdb__bitw *w, const struct tsdb__block_ctx *c, const int64_t *ts,
                      size_t m, const struct tplan *p)
{
    if (p->method == TSDB__TS_DELTA || p->method == TSDB__TS_DOD) {
        put_seq(w, m, p->seq);
    } else if (p->method == TSDB__TS_VARINT) {
        uint64_t prev = (uint64_t)c->ts;
        for (size_t i = 0; i < m; i++) {
            put_uvar(w, zz((uint64_t)ts[i] - prev));
            prev = (uint64_t)ts[i];
        }
    }
}

size_t tsdb__block_encode(struct tsdb__block_ctx *ctx, const int64_t *ts, const double *v, size_t n,
                          uint8_t *out, size_t cap)
{
    if (n < 1 || n > TSDB_BLOCK_MAX)
        return 0;
    struct tsdb__block_ctx c = *ctx;
    uint64_t vb[TSDB_BLOCK_MAX];
    vb[0] = dbits(v[0]);
    size_t first = 0;
    if (!c.valid) {
        c.ts = ts[0];
        c.delta = 0;
        c.v = vb[0];
        first = 1;
    }
    size_t m = n - first;

    /*
     * One pass, without branches: the order check, the values' bits, and
     * what the planners would each loop over the block for (struct scan).
     */
    struct scan sc;
    /*
     * tprev starts at the context's time: the first sample is checked
     * against it (a chunk's first block has c.ts = ts[0] and starts at 1).
     * Differences are ORed, not compared per sample: a step unlike the
     * context's, a value that is no integer (out of range or NaN converts
     * to 0, whose bits are not the value's).
     */
    int64_t tprev = c.ts;
    uint64_t changes = 0, vprev = c.v, stepdiff = 0, intdiff = 0;
    for (size_t i = first; i < n; i++) {
        uint64_t b = dbits(v[i]);
        vb[i] = b;
        stepdiff |= ((uint64_t)ts[i] - (uint64_t)tprev) ^ (uint64_t)c.delta;
        tprev = ts[i];
        changes += b != vprev;
        vprev = b;
        /* Scale 0 of dec_find, without dec_int's multiply and divide (both
         * by 1, so exact): the verdict is dec_int's, bit for bit. */
        double d = v[i];
        int64_t x = (int64_t)(__builtin_fabs(d) <= 0x1p53 ? d : 0.0);
        intdiff |= dbits((double)x) ^ b;
        sc.xi[i - first] = x;
    }
    int steady = stepdiff == 0, ints = intdiff == 0;
    /*
     * Order. Steady, the times are c.ts + k * c.delta (k = 1..n - first)
     * modulo 2^64: increasing if the step is positive and the last does
     * not pass INT64_MAX. Otherwise, look.
     */
    int bad = 0;
    if (steady && first < n)
        bad = c.delta <= 0 ||
              (uint64_t)c.delta > ((uint64_t)INT64_MAX - (uint64_t)c.ts) / (n - first);
    for (size_t i = first; !steady && i < n && !bad; i++)
        bad = ts[i] <= (i > first ? ts[i - 1] : c.ts);
    if (bad)
        return 0;
    sc.steady = steady;
    sc.changes = changes;
    /* Every value is the first one unless neighbours differ past it: no
     * change, or one at the first (against the context's value). */
    sc.varies = !(changes == 0 || (changes == 1 && first < n && vb[first] != c.v));
    sc.ints = ints;

    uint64_t bits = n == TSDB_BLOCK_MAX ? 0 : uvar_bits(n - 1);
    if (first)
        bits += uvar_bits(zz((uint64_t)ts[0])) + xor1_bits(vb[0], 0);
    struct {
        struct tplan t;
        struct vplan v;
    } pl;
    pl.t.seq = pl.v.seq = NULL;
    plan_times(&c, ts + first, m, &sc, &pl.t);
    plan_values(c.v, ctx->dec, vb + first, m, &sc, &pl.v);
    unsigned hdr =
        (unsigned)pl.t.method | (unsigned)pl.v.method << 2 | (n == TSDB_BLOCK_MAX ? FULL_BIT : 0);
    int same = ctx->valid && hdr == ctx->hdr;
    bits += (ctx->valid ? 1 : 0) + (same ? 0 : 6) + pl.t.bits + pl.v.bits;
    if ((bits + 7) / 8 > cap)
        return 0;

    struct tsdb__bitw w;
    tsdb__bitw_init(&w, out, cap);
    if (ctx->valid)
        tsdb__bitw_put(&w, (unsigned)same, 1);
    if (!same)
        tsdb__bitw_put(&w, hdr, 6);
    if (n != TSDB_BLOCK_MAX)
        put_uvar(&w, n - 1);
    if (first) {
        put_uvar(&w, zz((uint64_t)ts[0]));
        put_xor1(&w, vb[0], 0);
    }
    put_times(&w, &c, ts + first, m, &pl.t);
    put_values(&w, c.v, ctx->dec, vb + first, m, &pl.v);
    size_t used = tsdb__bitw_finish(&w);
    assert(used == (bits + 7) / 8); /* the plans' costs are exact */
    if (!used)
        return 0;

    ctx_advance(ctx, ts, n, vb[n - 1]);
    ctx->hdr = (uint8_t)hdr;
    if (pl.v.method == TSDB__V_DEC || pl.v.method == TSDB__V_DEC_DOD)
        ctx->dec = (uint8_t)(DEC_KNOWN | pl.v.k | pl.v.mode << 3);
    return used;
}

/* ---- reader side -------------------------------------------------------- */

struct rd {
    struct tsdb__bitr b;
    int bad; /* malformed (as opposed to truncated, which b.err says) */
};

static uint64_t get_uvar(struct rd *r)
{
    uint64_t u = 0;
    for (unsigned i = 0; i < 16; i++) {
        uint64_t g = tsdb__bitr_get(&r->b, 5);
        u |= (g & 15) << (4 * i);
        if (!(g & 16))
            return u;
    }
    r->bad = 1; /* a 17th group would not fit 64 bits */
    return 0;
}

static uint64_t get_g(struct rd *r)
{
    if (!tsdb__bitr_get(&r->b, 1))
        return 1;
    uint64_t u = get_uvar(r);
    if (u > UINT64_MAX - 2) {
        r->bad = 1; /* g would wrap to 0 or 1, which the writer never spells this way */
        return 1;
    }
    return u + 2;
}

static uint64_t get_xor1(struct rd *r, uint64_t prev)
{
    uint64_t f = tsdb__bitr_get(&r->b, 12);
    unsigned lz = (unsigned)(f & 63), len = (unsigned)(f >> 6) + 1;
    if (lz + len > 64) {
        r->bad = 1;
        return 0;
    }
    return prev ^ tsdb__bitr_get64(&r->b, len) << (64 - lz - len);
}

/* One order-k Exp-Golomb code (k <= EG_MAX_BITS); a longer prefix is malformed. */
static uint64_t get_eg(struct rd *r, unsigned k)
{
    unsigned len = tsdb__bitr_zeros(&r->b);
    if (len > EG_MAX_BITS) {
        r->bad = 1;
        return 0;
    }
    uint64_t q = (uint64_t)1 << len | tsdb__bitr_get(&r->b, len);
    return (q - 1) << k | tsdb__bitr_get(&r->b, k);
}

/* The sparse form of mode 1, after its k field: see the format above. */
static void get_sparse(struct rd *r, uint64_t *s, size_t m, uint64_t ref, uint64_t g)
{
    unsigned k = (unsigned)tsdb__bitr_get(&r->b, 6);
    uint64_t c = get_uvar(r);
    if (k > EG_MAX_BITS || c == 0 || c > m) {
        r->bad = 1;
        return;
    }
    for (size_t i = 0; i < m; i++)
        s[i] = ref;
    unsigned pb = bitlen(m - 1);
    size_t next = 0; /* positions increase: each is at least this */
    for (uint64_t j = 0; j < c; j++) {
        uint64_t pos = tsdb__bitr_get(&r->b, pb);
        uint64_t u = get_eg(r, k) + 1;
        if (pos < next || pos >= m || r->bad) {
            r->bad = 1;
            return;
        }
        s[pos] = ref + g * unzz(u);
        next = (size_t)pos + 1;
    }
}

static void get_pack(struct rd *r, uint64_t *s, size_t m)
{
    if (!m)
        return;
    unsigned mode = (unsigned)tsdb__bitr_get(&r->b, 1);
    uint64_t ref = unzz(get_uvar(r));
    if (mode == 1) {
        uint64_t g = get_g(r);
        unsigned k = (unsigned)tsdb__bitr_get(&r->b, 6);
        if (k == EG_SPARSE) {
            get_sparse(r, s, m, ref, g);
            return;
        }
        if (k > EG_MAX_BITS) {
            r->bad = 1;
            return;
        }
        for (size_t i = 0; i < m && !r->bad; i++)
            s[i] = ref + g * unzz(get_eg(r, k));
        return;
    }
    unsigned w = (unsigned)tsdb__bitr_get(&r->b, 6);
    if (!w) {
        for (size_t i = 0; i < m; i++)
            s[i] = ref;
        return;
    }
    if (w == 63)
        w = 64;
    uint64_t g = get_g(r);
    if (w <= 56 && tsdb__bitr_unpack(&r->b, w, ref, g, s, m))
        return;
    if (w <= 56) {
        for (size_t i = 0; i < m; i++)
            s[i] = ref + g * tsdb__bitr_get(&r->b, w);
    } else {
        for (size_t i = 0; i < m; i++)
            s[i] = ref + g * tsdb__bitr_get64(&r->b, w);
    }
}

/* Decode seq1/seq2 of m integers against base into x. */
static void get_seq(struct rd *r, int order, uint64_t base, uint64_t *x, size_t m)
{
    if (!m)
        return;
    if (order == 1) {
        get_pack(r, x, m);
        for (size_t i = 0; i < m; i++)
            x[i] = base += x[i];
        return;
    }
    uint64_t d = unzz(get_uvar(r));
    get_pack(r, x + 1, m - 1);
    x[0] = base += d;
    for (size_t i = 1; i < m; i++) {
        d += x[i];
        x[i] = base += d;
    }
}

static void get_times(struct rd *r, int method, const struct tsdb__block_ctx *c, int64_t *ts,
                      size_t m)
{
    uint64_t t[TSDB_BLOCK_MAX];
    uint64_t prev = (uint64_t)c->ts;
    switch (method) {
    case TSDB__TS_SAME:
        for (size_t i = 0; i < m; i++)
            t[i] = prev += (uint64_t)c->delta;
        break;
    case TSDB__TS_DELTA:
    case TSDB__TS_DOD:
        get_seq(r, method == TSDB__TS_DELTA ? 1 : 2, prev, t, m);
        break;
    default:
        for (size_t i = 0; i < m; i++)
            t[i] = prev += unzz(get_uvar(r));
        break;
    }
    for (size_t i = 0; i < m; i++)
        ts[i] = as_i64(t[i]);
}

static void get_xor(struct rd *r, uint64_t prev, uint64_t *x, size_t m)
{
    unsigned wt = 0, wlen = 0;
    int have = 0;
    for (size_t i = 0; i < m; i++) {
        if (tsdb__bitr_get(&r->b, 1)) {
            if (tsdb__bitr_get(&r->b, 1)) {
                uint64_t f = tsdb__bitr_get(&r->b, 12);
                unsigned lz = (unsigned)(f & 63);
                wlen = (unsigned)(f >> 6) + 1;
                if (lz + wlen > 64) {
                    r->bad = 1;
                    return;
                }
                wt = 64 - lz - wlen;
                have = 1;
            } else if (!have) {
                r->bad = 1;
                return;
            }
            prev ^= tsdb__bitr_get64(&r->b, wlen) << wt;
        }
        x[i] = prev;
    }
}

/*
 * Decode m values against prev into x (as IEEE bits). With last_only, only
 * x[m - 1] need be right (a block the reader skips still has to be decoded
 * to the end for the next block's context, but not every value converted).
 */
static void get_values(struct rd *r, int method, uint64_t prev, uint8_t *last_dec, uint64_t *x,
                       size_t m, int last_only)
{
    switch (method) {
    case TSDB__V_SAME:
        for (size_t i = 0; i < m; i++)
            x[i] = prev;
        break;
    case TSDB__V_CONST: {
        uint64_t c = get_xor1(r, prev);
        for (size_t i = 0; i < m; i++)
            x[i] = c;
        break;
    }
    case TSDB__V_DEC:
    case TSDB__V_DEC_DOD: {
        uint64_t f;
        if ((*last_dec & DEC_KNOWN) && tsdb__bitr_get(&r->b, 1))
            f = *last_dec & 31;
        else
            f = tsdb__bitr_get(&r->b, 5);
        unsigned k = (unsigned)(f & 7), mode = (unsigned)(f >> 3) & 3;
        unsigned expl = (unsigned)tsdb__bitr_get(&r->b, 1);
        int64_t base;
        if (mode >= DEC_MODES) {
            r->bad = 1;
            return;
        }
        *last_dec = (uint8_t)(DEC_KNOWN | f);
        int order = method == TSDB__V_DEC ? 1 : 2;
        if (expl) {
            x[0] = unzz(get_uvar(r));
            get_seq(r, order, x[0], x + 1, m - 1);
        } else {
            if (!dec_int(bitsd(prev), k, mode, &base)) {
                r->bad = 1;
                return;
            }
            get_seq(r, order, (uint64_t)base, x, m);
        }
        for (size_t i = last_only && m ? m - 1 : 0; i < m; i++)
            x[i] = dbits(dec_value(as_i64(x[i]), k, mode));
        break;
    }
    case TSDB__V_XOR:
        get_xor(r, prev, x, m);
        break;
    case TSDB__V_RAW:
        for (size_t i = 0; i < m; i++)
            x[i] = tsdb__bitr_get64(&r->b, 64);
        break;
    default:
        r->bad = 1;
        break;
    }
}

/* A block's header against ctx (see the format); sets r->b.err if the input ends. */
static unsigned get_hdr(struct rd *r, const struct tsdb__block_ctx *ctx)
{
    if (ctx->valid && tsdb__bitr_get(&r->b, 1))
        return ctx->hdr;
    return (unsigned)tsdb__bitr_get(&r->b, 6);
}

int tsdb__block_methods(const struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len,
                        int *ts_method, int *v_method)
{
    struct rd r = {.bad = 0};
    tsdb__bitr_init(&r.b, in, len);
    unsigned hdr = get_hdr(&r, ctx);
    if (r.b.err)
        return TSDB__ETRUNC;
    *ts_method = (int)(hdr & 3);
    *v_method = (int)(hdr >> 2) & 7;
    return *v_method > TSDB__V_RAW ? TSDB__ECORRUPT : 0;
}

int tsdb__block_decode(struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len, int64_t *ts,
                       double *v, size_t cap_n, size_t *n_out, size_t *consumed)
{
    return tsdb__block_decode_from(ctx, in, len, INT64_MIN, ts, v, cap_n, n_out, consumed);
}

int tsdb__block_decode_from(struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len,
                            int64_t from, int64_t *ts, double *v, size_t cap_n, size_t *n_out,
                            size_t *consumed)
{
    struct rd r = {.bad = 0};
    tsdb__bitr_init(&r.b, in, len);
    unsigned hdr = get_hdr(&r, ctx);
    int tm = (int)(hdr & 3), vm = (int)(hdr >> 2) & 7;
    uint64_t n = TSDB_BLOCK_MAX;
    if (!(hdr & FULL_BIT)) {
        n = get_uvar(&r) + 1;
        if (n >= TSDB_BLOCK_MAX || n == 0) /* a full block must say so; 0 is a wrap */
            return r.b.err ? TSDB__ETRUNC : TSDB__ECORRUPT;
    }
    if (r.b.err)
        return TSDB__ETRUNC;
    if (vm > TSDB__V_RAW)
        return TSDB__ECORRUPT;
    if (n > cap_n)
        return TSDB__ESPACE;

    struct tsdb__block_ctx c = *ctx;
    uint64_t vb[TSDB_BLOCK_MAX];
    size_t first = 0;
    if (!c.valid) {
        ts[0] = as_i64(unzz(get_uvar(&r)));
        vb[0] = get_xor1(&r, 0);
        c.ts = ts[0];
        c.delta = 0;
        c.v = vb[0];
        first = 1;
    }
    size_t m = (size_t)n - first;
    if (m == 0 && (tm != TSDB__TS_SAME || vm != TSDB__V_SAME))
        return TSDB__ECORRUPT;
    get_times(&r, tm, &c, ts + first, m);
    int skip = ts[n - 1] < from; /* the reader wants none of this block's values */
    get_values(&r, vm, c.v, &c.dec, vb + first, m, skip);
    if (r.bad)
        return TSDB__ECORRUPT;
    if (r.b.err)
        return TSDB__ETRUNC;
    if (ctx->valid && ts[0] <= ctx->ts)
        return TSDB__ECORRUPT;
    for (size_t i = 1; i < n; i++)
        if (ts[i] <= ts[i - 1])
            return TSDB__ECORRUPT;

    for (size_t i = skip ? n - 1 : 0; i < n; i++)
        v[i] = bitsd(vb[i]);
    ctx_advance(ctx, ts, n, vb[n - 1]);
    ctx->hdr = (uint8_t)hdr;
    ctx->dec = c.dec;
    *n_out = (size_t)n;
    *consumed = tsdb__bitr_consumed(&r.b);
    return 0;
}

/* ---- chunks ------------------------------------------------------------- */

void tsdb__chunk_init(struct tsdb__chunk *c)
{
    memset(c, 0, sizeof(*c));
    c->cap = 56; /* a 64-byte allocation */
    c->buf = xmalloc(c->cap);
    c->buf[0] = TSDB_CHUNK_VERSION;
    tsdb__put32(c->buf + 1, 0);
    c->len = TSDB_CHUNK_HEADER;
}

void tsdb__chunk_release(struct tsdb__chunk *c)
{
    free(c->buf);
    free(c->seek);
    memset(c, 0, sizeof(*c));
}

/* Keep the encoder's context ctx, after a block that ended the chunk. */
static void set_ctx(struct tsdb__chunk *c, const struct tsdb__block_ctx *ctx)
{
    c->delta = ctx->delta;
    c->v = ctx->v;
    c->hdr = ctx->hdr;
    c->dec = ctx->dec;
}

/* A block was added (len, nsamples and the context are past it): maybe a seek point. */
static void note_block(struct tsdb__chunk *c)
{
    if (++c->since_seek < TSDB_SEEK_BLOCKS)
        return;
    c->since_seek = 0;
    if (!c->seek)
        c->seek = xcalloc(2, sizeof(*c->seek));
    c->seek[1] = c->seek[0];
    c->seek[0] =
        (struct tsdb__chunk_seek){.off = c->len, .before = c->nsamples, .ctx = tsdb__chunk_ctx(c)};
}

int tsdb__chunk_append(struct tsdb__chunk *c, const int64_t *ts, const double *v, size_t n)
{
    if (n < 1 || n > TSDB_BLOCK_MAX)
        return TSDB__EINVAL;
    if (c->nsamples && ts[0] <= c->maxt)
        return TSDB__EORDER;
    size_t room = TSDB_BLOCK_BOUND(n);
    if (room > TSDB_CHUNK_MAX_BYTES - c->len)
        room = TSDB_CHUNK_MAX_BYTES - c->len;
    /*
     * Encode into scratch, then grow the chunk by what the block took: a
     * block's bound is ~18 bytes a sample but it usually takes well under
     * one, and the head keeps one open chunk per series (memory per series).
     */
    uint8_t scratch[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    struct tsdb__block_ctx ctx = tsdb__chunk_ctx(c);
    size_t used = tsdb__block_encode(&ctx, ts, v, n, scratch, room);
    if (!used) {
        /* The encoder refuses both disorder and too little room: which? */
        for (size_t i = 1; i < n; i++)
            if (ts[i] <= ts[i - 1])
                return TSDB__EORDER;
        return TSDB__EFULL;
    }
    if (c->len + used > c->cap) {
        size_t cap = c->cap + c->cap / 4;
        if (cap < c->len + used)
            cap = c->len + used;
        cap = ((cap + 7) & ~(size_t)15) + 8; /* what glibc's malloc hands out: 16k + 8 */
        c->buf = xrealloc(c->buf, cap);
        c->cap = (uint32_t)cap;
    }
    memcpy(c->buf + c->len, scratch, used);
    set_ctx(c, &ctx);
    c->len += (uint32_t)used;
    if (!c->nsamples)
        c->mint = ts[0];
    c->maxt = ts[n - 1];
    c->nsamples += (uint32_t)n;
    tsdb__put32(c->buf + 1, c->nsamples);
    note_block(c);
    return 0;
}

int tsdb__chunk_iter_init(struct tsdb__chunk_iter *it, const uint8_t *buf, size_t len, int64_t mint,
                          int64_t maxt)
{
    it->buf = buf;
    it->len = len;
    it->off = TSDB_CHUNK_HEADER;
    it->mint = mint;
    it->maxt = maxt;
    it->i = it->n = 0;
    it->done = 0;
    it->err = 0;
    it->left = it->total = 0;
    memset(&it->last, 0, sizeof(it->last));
    tsdb__block_ctx_init(&it->ctx);
    if (len < TSDB_CHUNK_HEADER)
        return it->err = TSDB__ETRUNC;
    if (buf[0] != TSDB_CHUNK_VERSION)
        return it->err = TSDB__ECORRUPT;
    it->left = it->total = tsdb__get32(buf + 1);
    return 0;
}

int tsdb__chunk_iter_init_chunk(struct tsdb__chunk_iter *it, const struct tsdb__chunk *c,
                                int64_t mint, int64_t maxt)
{
    int r = tsdb__chunk_iter_init(it, c->buf, c->len, mint, maxt);
    if (r)
        return r;
    for (int k = 0; c->seek && k < 2 && !tsdb__chunk_iter_seek(it, &c->seek[k]); k++)
        ;
    return 0;
}

int tsdb__chunk_iter_seek(struct tsdb__chunk_iter *it, const struct tsdb__chunk_seek *p)
{
    /* Every sample after the point is after p->ts: none before it is wanted. */
    if (it->err || it->off != TSDB_CHUNK_HEADER || !p->off || p->ctx.ts >= it->mint ||
        p->off > it->len || p->off < TSDB_CHUNK_HEADER || p->before > it->left)
        return 0;
    it->off = p->off;
    it->left -= p->before;
    it->ctx = p->ctx;
    it->ctx.valid = 1;
    return 1;
}

int tsdb__chunk_iter_next(struct tsdb__chunk_iter *it, int64_t *ts, double *v)
{
    if (it->err)
        return it->err;
    if (it->done)
        return 0;
    for (;;) {
        while (it->i < it->n) {
            size_t k = it->i++;
            if (it->ts[k] > it->maxt) {
                it->done = 1;
                return 0;
            }
            if (it->ts[k] >= it->mint) {
                *ts = it->ts[k];
                *v = it->v[k];
                return 1;
            }
        }
        if (!it->left) {
            it->done = 1;
            /* A chunk's blocks end exactly at its end. */
            return it->off == it->len ? 0 : (it->err = TSDB__ECORRUPT);
        }
        size_t n, used;
        int here_valid = it->ctx.valid; /* not a chunk's first block: its context is known */
        struct tsdb__chunk_seek here = {
            .off = (uint32_t)it->off, .before = it->total - it->left, .ctx = it->ctx};
        int r = tsdb__block_decode_from(&it->ctx, it->buf + it->off, it->len - it->off, it->mint,
                                        it->ts, it->v, TSDB_BLOCK_MAX, &n, &used);
        if (r == 0 && here_valid)
            it->last = here;
        if (r)
            return it->err = r == TSDB__ESPACE ? TSDB__ECORRUPT : r;
        if (n > it->left)
            return it->err = TSDB__ECORRUPT;
        it->left -= (uint32_t)n;
        it->off += used;
        /* A block wholly before mint was decoded for its context only. */
        it->i = it->ts[n - 1] < it->mint ? n : 0;
        it->n = n;
    }
}

int tsdb__chunk_load(struct tsdb__chunk *c, const uint8_t *buf, size_t len)
{
    if (len > TSDB_CHUNK_MAX_BYTES)
        return TSDB__ECORRUPT;
    if (len < TSDB_CHUNK_HEADER)
        return TSDB__ETRUNC;
    if (buf[0] != TSDB_CHUNK_VERSION)
        return TSDB__ECORRUPT;
    /* Decode block by block: the checks of a read, and the seek points of an append. */
    struct tsdb__chunk t;
    memset(&t, 0, sizeof(t));
    struct tsdb__block_ctx ctx;
    tsdb__block_ctx_init(&ctx);
    t.len = TSDB_CHUNK_HEADER;
    uint32_t count = tsdb__get32(buf + 1);
    int64_t *ts = xmalloc(TSDB_BLOCK_MAX * sizeof(*ts));
    double *v = xmalloc(TSDB_BLOCK_MAX * sizeof(*v));
    int r = 0;
    while (r == 0 && t.len < len) {
        size_t n, used;
        int64_t prev = ctx.ts;
        int had = ctx.valid;
        r = tsdb__block_decode(&ctx, buf + t.len, len - t.len, ts, v, TSDB_BLOCK_MAX, &n, &used);
        if (r == TSDB__ESPACE)
            r = TSDB__ECORRUPT;
        if (r == 0 && (n > count - t.nsamples || (had && ts[0] <= prev)))
            r = TSDB__ECORRUPT;
        if (r)
            break;
        if (!t.nsamples)
            t.mint = ts[0];
        t.maxt = ts[n - 1];
        t.nsamples += (uint32_t)n;
        t.len += (uint32_t)used;
        set_ctx(&t, &ctx);
        note_block(&t);
    }
    free(ts);
    free(v);
    /* Exactly the samples the header counts, and no bytes after the last block. */
    if (r == 0 && (t.nsamples == 0 || t.nsamples != count || t.len != len))
        r = TSDB__ECORRUPT;
    if (r < 0) {
        free(t.seek);
        return r;
    }
    t.cap = (uint32_t)len;
    t.buf = xmalloc(len);
    memcpy(t.buf, buf, len);
    *c = t;
    return 0;
}
