/*
 * packed.h: the per-sample encoding of the WAL's PACKED samples record
 * (private to src/tsdb/). Every append batch writes one such record, so its
 * bytes are written, checksummed and copied into the page cache once per
 * sample: at 12 bytes a sample (u32 id, u64 value) that copy was the
 * largest single cost of appending. Packed, a sample is
 *
 *   uvarint((zigzag(id - previous id) << 1) | is_int)
 *   is_int ? uvarint(zigzag((int64) value)) : the 8 value bits, LE
 *
 * The record stands alone (no state from other records), so a damaged
 * record costs only its own samples. Ids run in the head's stripe order,
 * mostly a small step apart: one byte. A value is an "int" when it is an
 * integer of magnitude at most 2^53 other than -0.0: such a double converts
 * to int64 and back bit for bit, and counters (bytes, packets, requests,
 * histogram buckets) are such values, so they take 1-8 bytes instead of 8.
 * Every other value (fractions, NaN payloads, infinities, -0.0, huge
 * magnitudes) keeps its exact bits.
 */
#ifndef SITREP_TSDB_PACKED_H
#define SITREP_TSDB_PACKED_H

#include "tsdb/le.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bytes one packed sample takes at most: a 5-byte id varint, 8 value bytes
 * (an int's zigzag is below 2^54: 8 varint bytes). */
#define TSDB__PACKED_MAX 13

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
 * the end of what was written (at most TSDB__PACKED_MAX bytes). */
static inline uint8_t *tsdb__packed_put(uint8_t *p, uint32_t *prev_id, uint32_t id, double v)
{
    int64_t d = (int64_t)id - (int64_t)*prev_id;
    uint64_t zd = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
    *prev_id = id;
    uint64_t bits;
    memcpy(&bits, &v, 8);
    /* NaN fails both comparisons; the range makes the conversion defined. */
    if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && bits != 0x8000000000000000ull) {
        int64_t i = (int64_t)v;
        if ((double)i == v) {
            p += tsdb__put_uvarint(p, zd << 1 | 1);
            uint64_t zi = ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
            return p + tsdb__put_uvarint(p, zi);
        }
    }
    p += tsdb__put_uvarint(p, zd << 1);
    tsdb__put64(p, bits);
    return p + 8;
}

/* Read one sample from [*p, end) after *prev_id; returns 0 and advances *p,
 * or -1 on a malformed or truncated sample or an id outside 32 bits. */
static inline int tsdb__packed_get(const uint8_t **p, const uint8_t *end, uint32_t *prev_id,
                                   uint32_t *id, uint64_t *bits)
{
    uint64_t h, x;
    size_t n = tsdb__get_uvarint(*p, end, &h);
    if (!n)
        return -1;
    *p += n;
    uint64_t zd = h >> 1;
    int64_t d = (int64_t)(zd >> 1) ^ -(int64_t)(zd & 1);
    int64_t at = (int64_t)*prev_id + d;
    if (at < 0 || at > (int64_t)UINT32_MAX)
        return -1;
    *id = *prev_id = (uint32_t)at;
    if (h & 1) {
        n = tsdb__get_uvarint(*p, end, &x);
        int64_t i = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
        if (!n || i < -9007199254740992ll || i > 9007199254740992ll)
            return -1;
        *p += n;
        double v = (double)i;
        memcpy(bits, &v, 8);
        return 0;
    }
    if (end - *p < 8)
        return -1;
    *bits = tsdb__get64(*p);
    *p += 8;
    return 0;
}

#endif
