/*
 * dtoa.c: Grisu2 (see dtoa.h). Numbers are "diy" floats f x 2^e with a
 * 64-bit f. The cached powers of ten, 10^k for every k a double can need,
 * are computed once, exactly, with a small big-integer routine (so no table
 * is copied from anywhere and each entry is correctly rounded).
 */
#include "util/dtoa.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define KMIN (-348)
#define KMAX 340
#define BIGW 48 /* 32-bit words: 10^348 and 2^1300 fit */

struct diy {
    uint64_t f;
    int e;
};

static struct diy powers[KMAX - KMIN + 1];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------- big integers */

struct big {
    uint32_t w[BIGW]; /* little-endian words */
};

static int big_bits(const struct big *b)
{
    for (int i = BIGW - 1; i >= 0; i--)
        if (b->w[i])
            return i * 32 + 64 - __builtin_clzll((uint64_t)b->w[i]);
    return 0;
}

static int big_bit(const struct big *b, int i)
{
    return (int)((b->w[i / 32] >> (i % 32)) & 1);
}

static void big_mul_small(struct big *b, uint32_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < BIGW; i++) {
        uint64_t t = (uint64_t)b->w[i] * m + carry;
        b->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
}

static void big_shl1(struct big *b, int in)
{
    uint32_t carry = (uint32_t)in;
    for (int i = 0; i < BIGW; i++) {
        uint32_t n = b->w[i] >> 31;
        b->w[i] = b->w[i] << 1 | carry;
        carry = n;
    }
}

static int big_cmp(const struct big *a, const struct big *b)
{
    for (int i = BIGW - 1; i >= 0; i--)
        if (a->w[i] != b->w[i])
            return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

static void big_sub(struct big *a, const struct big *b)
{
    uint64_t borrow = 0;
    for (int i = 0; i < BIGW; i++) {
        uint64_t t = (uint64_t)a->w[i] - b->w[i] - borrow;
        a->w[i] = (uint32_t)t;
        borrow = (t >> 63) & 1;
    }
}

/* The top 64 bits of b (which has nbits bits), rounded half up; *carry set on overflow. */
static uint64_t big_top64(const struct big *b, int nbits, int *carry)
{
    uint64_t f = 0;
    for (int i = 0; i < 64; i++)
        f = f << 1 | (uint64_t)(nbits - 1 - i >= 0 ? big_bit(b, nbits - 1 - i) : 0);
    *carry = 0;
    if (nbits > 64 && big_bit(b, nbits - 65)) {
        f++;
        if (!f) {
            f = (uint64_t)1 << 63;
            *carry = 1;
        }
    }
    return f;
}

static void setup(void)
{
    /* 10^k, k >= 0: exact, then its top 64 bits. */
    struct big p;
    memset(&p, 0, sizeof(p));
    p.w[0] = 1;
    for (int k = 0; k <= KMAX; k++) {
        int n = big_bits(&p), c;
        uint64_t f = big_top64(&p, n, &c);
        powers[k - KMIN] = (struct diy){f, n - 64 + c};
        big_mul_small(&p, 10);
    }
    /* 10^-k = 2^s / 10^k: 70 quotient bits by shift-and-subtract division. */
    memset(&p, 0, sizeof(p));
    p.w[0] = 1;
    for (int k = 1; k <= -KMIN; k++) {
        big_mul_small(&p, 10); /* p = 10^k */
        int n = big_bits(&p), s = n + 70;
        struct big r, q;
        memset(&r, 0, sizeof(r));
        memset(&q, 0, sizeof(q));
        for (int i = s; i >= 0; i--) {
            big_shl1(&r, i == s); /* the dividend 2^s: a single one bit */
            big_shl1(&q, 0);
            if (big_cmp(&r, &p) >= 0) {
                big_sub(&r, &p);
                q.w[0] |= 1;
            }
        }
        int qn = big_bits(&q), c;
        uint64_t f = big_top64(&q, qn, &c);
        powers[-k - KMIN] = (struct diy){f, qn - 64 + c - s};
    }
}

/* ------------------------------------------------------------ Grisu2 */

static struct diy mul(struct diy a, struct diy b)
{
    unsigned __int128 t = (unsigned __int128)a.f * b.f;
    uint64_t f = (uint64_t)(t >> 64) + (uint64_t)((t >> 63) & 1); /* rounded */
    return (struct diy){f, a.e + b.e + 64};
}

static struct diy normalize(struct diy d)
{
    int s = __builtin_clzll(d.f);
    return (struct diy){d.f << s, d.e - s};
}

/* Move the last digit down while that stays in range and gets closer to w. */
static void round_weed(char *buf, int len, uint64_t dist, uint64_t delta, uint64_t rest,
                       uint64_t ten_kappa)
{
    while (rest < dist && delta - rest >= ten_kappa &&
           (rest + ten_kappa < dist || dist - rest > rest + ten_kappa - dist)) {
        buf[len - 1]--;
        rest += ten_kappa;
    }
}

static const uint32_t pow10_32[] = {1,      10,      100,      1000,      10000,
                                    100000, 1000000, 10000000, 100000000, 1000000000};

/* Digits of the number between lo and hi closest to w (all scaled alike). */
static int digit_gen(struct diy w, struct diy hi, uint64_t delta, char *buf, int *K)
{
    struct diy one = {(uint64_t)1 << -hi.e, hi.e};
    uint64_t wdist = hi.f - w.f;
    uint32_t p1 = (uint32_t)(hi.f >> -one.e);
    uint64_t p2 = hi.f & (one.f - 1);
    int kappa = 10;
    while (kappa > 0 && p1 < pow10_32[kappa - 1])
        kappa--;
    /* p1's kappa digits at once, by division by the constant 10 (a multiply):
     * dividing by each power of ten in turn cost most of the conversion. */
    uint8_t dec[10];
    uint32_t x = p1;
    for (int i = kappa - 1; i >= 0; i--) {
        dec[i] = (uint8_t)(x % 10);
        x /= 10;
    }
    int len = 0, next = 0;
    while (kappa > 0) {
        uint32_t div = pow10_32[kappa - 1];
        uint32_t d = dec[next++];
        p1 -= d * div;
        if (d || len)
            buf[len++] = (char)('0' + d);
        kappa--;
        uint64_t rest = ((uint64_t)p1 << -one.e) + p2;
        if (rest <= delta) {
            *K += kappa;
            round_weed(buf, len, wdist, delta, rest, (uint64_t)div << -one.e);
            return len;
        }
    }
    for (;;) {
        p2 *= 10;
        delta *= 10;
        wdist *= 10;
        char d = (char)(p2 >> -one.e);
        if (d || len)
            buf[len++] = (char)('0' + d);
        p2 &= one.f - 1;
        kappa--;
        if (p2 <= delta) {
            *K += kappa;
            round_weed(buf, len, wdist, delta, p2, one.f);
            return len;
        }
    }
}

int util_dtoa_digits(double v, char *digits, int *exp10)
{
    pthread_once(&once, setup);
    uint64_t bits;
    memcpy(&bits, &v, 8);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    int bexp = (int)((bits >> 52) & 0x7ff);
    struct diy w =
        bexp ? (struct diy){frac | (uint64_t)1 << 52, bexp - 1075} : (struct diy){frac, -1074};
    /* The boundaries halfway to the neighbouring doubles. */
    struct diy hi = normalize((struct diy){(w.f << 1) + 1, w.e - 1});
    struct diy lo = (frac == 0 && bexp > 1) ? (struct diy){(w.f << 2) - 1, w.e - 2}
                                            : (struct diy){(w.f << 1) - 1, w.e - 1};
    lo.f <<= lo.e - hi.e;
    lo.e = hi.e;
    w = normalize(w);
    /* A cached power that brings hi's exponent into [-59, -32]. */
    /* powers[k].e is about k log2(10) - 63: start next to the answer, so
     * the loops below move it by a step at most (from a wrong start they
     * took ~19 steps per call, a third of a range answer's formatting). */
    int k = (int)ceil((-60 - hi.e) * 0.30102999566398114);
    while (k >= KMIN && k <= KMAX && powers[k - KMIN].e + hi.e + 64 < -59)
        k++;
    while (k >= KMIN && k <= KMAX && powers[k - KMIN].e + hi.e + 64 > -32)
        k--;
    struct diy c = powers[k - KMIN];
    struct diy W = mul(w, c), Hi = mul(hi, c), Lo = mul(lo, c);
    Hi.f--; /* the products are off by up to one unit either way: stay inside */
    Lo.f++;
    int K = -k, len = digit_gen(W, Hi, Hi.f - Lo.f, digits, &K);
    while (len > 1 && digits[len - 1] == '0') {
        len--;
        K++;
    }
    digits[len] = 0;
    *exp10 = K + len - 1;
    return len;
}
