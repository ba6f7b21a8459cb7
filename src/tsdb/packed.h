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
 *   header bits 0-3  L: 0-8, the value's bits are the next L bytes, high
 *                    byte last, followed by 8 - L zero bytes (L = 0: +0.0);
 *                    9-15 are not used
 *
 * The record stands alone (no state from other records), so a damaged
 * record costs only its own samples. Ids run in the head's stripe order,
 * which is mostly the batch's order: a step of 1. Dropping a value's low
 * zero bytes is what makes it short: a double holding an integer below 2^k
 * uses only its top 12 + k bits (a counter below a million takes 4 bytes,
 * one below 2^36 6), a short binary fraction (0.5, 0.25) 1-2, and every
 * value, NaN payloads and -0.0 included, comes back bit for bit without a
 * case of its own. It costs one bit scan, one fixed 8-byte store and no
 * conversion: an integer test per value (zigzag varints of integers, a byte
 * shorter) took longer than the bytes it saved cost to write.
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

/* Append sample (id, v) after *prev_id (0 before the first) at p; returns
 * the end of what was written (at most TSDB__PACKED_MAX bytes), and may
 * write up to TSDB__PACKED_SLACK bytes past it. */
static inline uint8_t *tsdb__packed_put(uint8_t *p, uint32_t *prev_id, uint32_t id, double v)
{
    int64_t d = (int64_t)id - (int64_t)*prev_id;
    uint8_t *h = p++;
    unsigned hdr;
    if ((uint64_t)d - 1u < 15u) {
        hdr = (unsigned)d << 4;
    } else {
        hdr = 0;
        p += tsdb__put_uvarint(p, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    }
    *prev_id = id;
    uint64_t bits;
    memcpy(&bits, &v, 8);
    unsigned tz = bits ? (unsigned)__builtin_ctzll(bits) / 8 : 8;
    tsdb__put64(p, tz < 8 ? bits >> (8 * tz) : 0);
    *h = (uint8_t)(hdr | (8 - tz));
    return p + 8 - tz;
}

/* Read one sample from [*p, end) after *prev_id; returns 0 and advances *p,
 * or -1 on a malformed or truncated sample or an id outside 32 bits. */
static inline int tsdb__packed_get(const uint8_t **p, const uint8_t *end, uint32_t *prev_id,
                                   uint32_t *id, uint64_t *bits)
{
    const uint8_t *q = *p;
    if (q >= end)
        return -1;
    unsigned hdr = *q++, len = hdr & 15;
    int64_t d = hdr >> 4;
    if (!d) {
        uint64_t z;
        size_t n = tsdb__get_uvarint(q, end, &z);
        if (!n)
            return -1;
        q += n;
        d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
    }
    int64_t at = (int64_t)*prev_id + d;
    if (at < 0 || at > (int64_t)UINT32_MAX || len > 8 || (size_t)(end - q) < len)
        return -1;
    uint64_t x = 0;
    for (unsigned k = 0; k < len; k++)
        x |= (uint64_t)q[k] << (8 * k);
    *bits = len ? x << (64 - 8 * len) : 0;
    *id = *prev_id = (uint32_t)at;
    *p = q + len;
    return 0;
}

#endif
