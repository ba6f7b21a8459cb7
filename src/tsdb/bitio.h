/*
 * bitio.h: the bit writer and reader under the chunk codec (private to
 * src/tsdb/). Bits are packed LSB-first: the first bit written is bit 0 of
 * the first byte. Both sides keep a 64-bit accumulator and move whole words
 * when at least 8 bytes of room (or input) remain, bytes one at a time near
 * the end, so neither ever touches memory outside [start, end).
 *
 * The reader never fails loudly: reading past the end sets `err`, returns
 * zeros from then on, and the caller checks `err` once it is done. Every
 * decoder loop is bounded by a count it validated before, so a reader stuck
 * at the end cannot make a caller spin.
 */
#ifndef SITREP_TSDB_BITIO_H
#define SITREP_TSDB_BITIO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct tsdb__bitw {
    uint8_t *start, *p, *end;
    uint64_t acc;  /* pending bits, LSB first */
    unsigned nacc; /* number of pending bits; < 8 between calls */
    int overflow;  /* set once a byte did not fit; nothing more is stored */
};

struct tsdb__bitr {
    const uint8_t *start, *p, *end;
    uint64_t acc;  /* bits not yet consumed, LSB first (bits >= nacc are stale or 0) */
    unsigned nacc; /* valid bits in acc */
    int err;       /* set once a read ran past the end */
};

static inline uint64_t tsdb__load64le(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

static inline void tsdb__store64le(uint8_t *p, uint64_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    memcpy(p, &x, 8);
}

static inline uint64_t tsdb__mask(unsigned n)
{
    return n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
}

static inline void tsdb__bitw_init(struct tsdb__bitw *w, uint8_t *out, size_t cap)
{
    w->start = w->p = out;
    w->end = out + cap;
    w->acc = 0;
    w->nacc = 0;
    w->overflow = 0;
}

/* Append the low n bits of v (n <= 57; v must have no bits at or above n). */
static inline void tsdb__bitw_put(struct tsdb__bitw *w, uint64_t v, unsigned n)
{
    w->acc |= v << w->nacc;
    w->nacc += n;
    if (w->end - w->p >= 8) {
        tsdb__store64le(w->p, w->acc);
        unsigned bytes = w->nacc >> 3;
        w->p += bytes;
        w->acc = bytes >= 8 ? 0 : w->acc >> (bytes * 8);
        w->nacc &= 7;
        return;
    }
    while (w->nacc >= 8) {
        if (w->p == w->end) {
            w->overflow = 1;
            w->acc = 0;
            w->nacc = 0;
            return;
        }
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->nacc -= 8;
    }
}

/* Append the low n bits of v, n <= 64. */
static inline void tsdb__bitw_put64(struct tsdb__bitw *w, uint64_t v, unsigned n)
{
    if (n > 32) {
        tsdb__bitw_put(w, v & 0xffffffffu, 32);
        tsdb__bitw_put(w, v >> 32, n - 32);
    } else {
        tsdb__bitw_put(w, v, n);
    }
}

/* Pad the last byte with zero bits. Returns the bytes written, or 0 on overflow. */
static inline size_t tsdb__bitw_finish(struct tsdb__bitw *w)
{
    if (w->nacc) {
        if (w->p == w->end)
            w->overflow = 1;
        else
            *w->p++ = (uint8_t)w->acc;
        w->acc = 0;
        w->nacc = 0;
    }
    return w->overflow ? 0 : (size_t)(w->p - w->start);
}

static inline void tsdb__bitr_init(struct tsdb__bitr *r, const uint8_t *in, size_t len)
{
    r->start = r->p = in;
    r->end = in + len;
    r->acc = 0;
    r->nacc = 0;
    r->err = 0;
}

/* Read n bits (n <= 56). Past the end: sets err and returns 0. */
static inline uint64_t tsdb__bitr_get(struct tsdb__bitr *r, unsigned n)
{
    if (r->nacc < n) {
        if (r->end - r->p >= 8) {
            /* Bits that land above the new nacc are the next bytes' own
             * bits, so OR-ing them in again on the next refill is harmless. */
            r->acc |= tsdb__load64le(r->p) << r->nacc;
            unsigned bytes = (63 - r->nacc) >> 3;
            r->p += bytes;
            r->nacc += bytes * 8;
        } else {
            while (r->nacc <= 56 && r->p < r->end) {
                r->acc |= (uint64_t)*r->p++ << r->nacc;
                r->nacc += 8;
            }
            if (r->nacc < n) {
                r->err = 1;
                r->acc = 0;
                r->nacc = 0;
                r->p = r->end;
                return 0;
            }
        }
    }
    uint64_t v = r->acc & tsdb__mask(n);
    r->acc = n >= 64 ? 0 : r->acc >> n;
    r->nacc -= n;
    return v;
}

/* Read n bits, n <= 64. */
static inline uint64_t tsdb__bitr_get64(struct tsdb__bitr *r, unsigned n)
{
    if (n > 32) {
        uint64_t lo = tsdb__bitr_get(r, 32);
        return lo | tsdb__bitr_get(r, n - 32) << 32;
    }
    return tsdb__bitr_get(r, n);
}

/*
 * Read a unary prefix: count zero bits up to and including the next one bit.
 * Returns the number of zeros (at most 55), or 56 if 56 zeros come first
 * (never valid: the caller treats it as corrupt). If the input ends first,
 * sets err and returns 0.
 */
static inline unsigned tsdb__bitr_zeros(struct tsdb__bitr *r)
{
    if (r->nacc < 56) {
        if (r->end - r->p >= 8) {
            r->acc |= tsdb__load64le(r->p) << r->nacc;
            unsigned bytes = (63 - r->nacc) >> 3;
            r->p += bytes;
            r->nacc += bytes * 8;
        } else {
            while (r->nacc <= 56 && r->p < r->end) {
                r->acc |= (uint64_t)*r->p++ << r->nacc;
                r->nacc += 8;
            }
        }
    }
    uint64_t x = r->acc & tsdb__mask(r->nacc < 56 ? r->nacc : 56);
    if (!x) {
        if (r->nacc >= 56)
            return 56;
        r->err = 1;
        r->acc = 0;
        r->nacc = 0;
        r->p = r->end;
        return 0;
    }
    unsigned z = (unsigned)__builtin_ctzll(x);
    r->acc >>= z + 1;
    r->nacc -= z + 1;
    return z;
}

/*
 * Unpack m fields of w bits each (1 <= w <= 56) as ref + g * field into s,
 * as m calls of tsdb__bitr_get(r, w) would read them, with one unaligned
 * load per field instead of the reader's refills. Returns 0 (nothing read)
 * when the fields and 8 bytes of slack do not fit before the end: the caller
 * then takes the bit-by-bit path, which also reports truncation.
 */
static inline int tsdb__bitr_unpack(struct tsdb__bitr *r, unsigned w, uint64_t ref, uint64_t g,
                                    uint64_t *s, size_t m)
{
    size_t pos = (size_t)(r->p - r->start) * 8 - r->nacc; /* next bit to read */
    size_t endpos = pos + (size_t)w * m;
    size_t len = (size_t)(r->end - r->start);
    if (r->err || (endpos >> 3) + 8 > len)
        return 0;
    const uint8_t *base = r->start;
    uint64_t mask = tsdb__mask(w);
    for (size_t i = 0; i < m; i++, pos += w)
        s[i] = ref + g * ((tsdb__load64le(base + (pos >> 3)) >> (pos & 7)) & mask);
    r->p = base + (endpos >> 3);
    r->acc = 0;
    r->nacc = 0;
    if (endpos & 7) {
        r->acc = (uint64_t)*r->p++ >> (endpos & 7);
        r->nacc = 8 - (unsigned)(endpos & 7);
    }
    return 1;
}

/* Bytes touched so far, counting a partly read last byte. */
static inline size_t tsdb__bitr_consumed(const struct tsdb__bitr *r)
{
    size_t bits = (size_t)(r->p - r->start) * 8 - r->nacc;
    return (bits + 7) / 8;
}

#endif
