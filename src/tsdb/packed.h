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
 *   header bits 0-3  L: 0-8, the value is an "int" whose zigzag takes the
 *                    next L bytes, low first (L = 0: the value is 0);
 *                    9, the 8 bits of the value follow, low first;
 *                    10-15 are not used
 *
 * The record stands alone (no state from other records), so a damaged
 * record costs only its own samples. Ids run in the head's stripe order,
 * which is mostly the batch's order: a step of 1. A value is an "int" when
 * it is an integer of magnitude at most 2^53 other than -0.0: such a double
 * converts to int64 and back bit for bit, and counters (bytes, packets,
 * requests, histogram buckets) are such values, so a counter sample takes
 * 2-5 bytes instead of 12. Every other value (fractions, NaN payloads,
 * infinities, -0.0, huge magnitudes) keeps its exact bits. Fixed-width value
 * bytes rather than a varint: the writer stores 8 bytes and advances by L,
 * with no loop or branch on the length.
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
#define TSDB__PACKED_RAW   9

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
    /* NaN fails both comparisons; the range makes the conversion defined. */
    if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && bits != 0x8000000000000000ull) {
        int64_t i = (int64_t)v;
        if ((double)i == v) {
            uint64_t zi = ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
            unsigned len = zi ? (unsigned)(71 - __builtin_clzll(zi)) / 8 : 0;
            tsdb__put64(p, zi);
            *h = (uint8_t)(hdr | len);
            return p + len;
        }
    }
    tsdb__put64(p, bits);
    *h = (uint8_t)(hdr | TSDB__PACKED_RAW);
    return p + 8;
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
    if (at < 0 || at > (int64_t)UINT32_MAX || len > TSDB__PACKED_RAW ||
        (size_t)(end - q) < (len == TSDB__PACKED_RAW ? 8u : len))
        return -1;
    if (len == TSDB__PACKED_RAW) {
        *bits = tsdb__get64(q);
        q += 8;
    } else {
        uint64_t zi = 0;
        for (unsigned k = 0; k < len; k++)
            zi |= (uint64_t)q[k] << (8 * k);
        q += len;
        int64_t i = (int64_t)(zi >> 1) ^ -(int64_t)(zi & 1);
        if (i < -9007199254740992ll || i > 9007199254740992ll)
            return -1;
        double v = (double)i;
        memcpy(bits, &v, 8);
    }
    *id = *prev_id = (uint32_t)at;
    *p = q;
    return 0;
}

#endif
