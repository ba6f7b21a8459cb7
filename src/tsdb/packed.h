/*
 * packed.h: the per-sample encoding of the WAL's PACKED samples record
 * (private to src/tsdb/). Every append batch writes one such record, so its
 * bytes are written, checksummed and copied into the page cache once per
 * sample: at 12 bytes a sample (u32 id, u64 value) that copy was the
 * largest single cost of appending. Packed, a sample is a header byte,
 * then:
 *
 *   header bits 4-7  D: 1-15, the id is the previous id + D (the previous id
 *                    is 0 before the first sample); 0, a uvarint of the
 *                    zigzag of (id - previous id) follows the header
 *   header bits 0-3  C: 0-8, the value's bits are the next C bytes, high
 *                    byte last, followed by 8 - C zero bytes (C = 0: +0.0);
 *                    9-15, the same with L = C - 7 (2-8) bytes of which
 *                    only the low L - 1 follow: the high byte is that of
 *                    the previous sample's value in the record (0 before
 *                    the first)
 *
 * The record stands alone (no state from other records), so a damaged
 * record costs only its own samples. Ids run in the head's stripe order,
 * which is mostly the batch's order: a step of 1. Dropping a value's low
 * zero bytes is what makes it short: a double holding an integer below 2^k
 * uses only its top 12 + k bits (a counter below a million takes 4 bytes,
 * one below 2^36 6), a short binary fraction (0.5, 0.25) 1-2, and every
 * value, NaN payloads and -0.0 included, comes back bit for bit without a
 * case of its own. The high byte (sign and top exponent bits) is the same
 * for values within a factor of about 2^16 of each other, as neighbouring
 * series' values mostly are: a byte less. It costs one bit scan, one fixed
 * 8-byte store and no conversion: an integer test per value (zigzag varints
 * of integers) took longer than the bytes it saved cost to write.
 */
#ifndef SITREP_TSDB_PACKED_H
#define SITREP_TSDB_PACKED_H

#include "tsdb/le.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bytes one packed sample takes at most (header, a 5-byte id varint, 8
 * value bytes), and the slack past the last one the writer may touch. */
#define TSDB__PACKED_MAX   14
#define TSDB__PACKED_SLACK 8

static inline size_t tsdb__put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Read a uvarint from [p, end); returns its length, or 0 if it is truncated
 * or longer than 10 bytes. */
static inline size_t tsdb__get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t n = 0; n < 10 && p + n < end; n++) {
        x |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if (!(p[n] & 0x80)) {
            *v = x;
            return n + 1;
        }
    }
    return 0;
}

/* What a record's next sample is coded against: zero it before the first. */
struct tsdb__packed {
    uint32_t id;  /* the previous sample's id */
    unsigned top; /* the previous sample's value's high byte */
};

/* Append sample (id, v) after *st at p; returns the end of what was written
 * (at most TSDB__PACKED_MAX bytes), and may write up to TSDB__PACKED_SLACK
 * bytes past it. */
static inline uint8_t *tsdb__packed_put(uint8_t *p, struct tsdb__packed *st, uint32_t id, double v)
{
    int64_t d = (int64_t)id - (int64_t)st->id;
    uint8_t *h = p++;
    unsigned hdr;
    if ((uint64_t)d - 1u < 15u) {
        hdr = (unsigned)d << 4;
    } else {
        hdr = 0;
        p += tsdb__put_uvarint(p, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    }
    st->id = id;
    uint64_t bits;
    memcpy(&bits, &v, 8);
    unsigned tz = bits ? (unsigned)__builtin_ctzll(bits) / 8 : 8, len = 8 - tz;
    unsigned top = (unsigned)(bits >> 56);
    /* Bytes low first: the high byte is the last, so dropping it is writing
     * one byte less. */
    unsigned same = len >= 2 && top == st->top;
    st->top = top;
    tsdb__put64(p, tz < 8 ? bits >> (8 * tz) : 0);
    *h = (uint8_t)(hdr | (same ? len + 7 : len));
    return p + len - same;
}

/* Read one sample from [*p, end) after *st; returns 0 and advances *p, or
 * -1 on a malformed or truncated sample or an id outside 32 bits. */
static inline int tsdb__packed_get(const uint8_t **p, const uint8_t *end, struct tsdb__packed *st,
                                   uint32_t *id, uint64_t *bits)
{
    const uint8_t *q = *p;
    if (q >= end)
        return -1;
    unsigned hdr = *q++, code = hdr & 15;
    int64_t d = hdr >> 4;
    if (!d) {
        uint64_t z;
        size_t n = tsdb__get_uvarint(q, end, &z);
        if (!n)
            return -1;
        q += n;
        d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    }
    int64_t at = (int64_t)st->id + d;
    unsigned same = code > 8, len = same ? code - 7 : code, stored = len - same;
    if (at < 0 || at > (int64_t)UINT32_MAX || (size_t)(end - q) < stored)
        return -1;
    uint64_t x = 0;
    for (unsigned k = 0; k < stored; k++)
        x |= (uint64_t)q[k] << (8 * k);
    if (same)
        x |= (uint64_t)st->top << (8 * stored);
    *bits = len ? x << (64 - 8 * len) : 0;
    st->top = (unsigned)(*bits >> 56);
    *id = st->id = (uint32_t)at;
    *p = q + stored;
    return 0;
}

#endif
