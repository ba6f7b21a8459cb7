/*
 * packed_test.c: the WAL's packed sample encoding (packed.h): every value
 * comes back bit for bit (ints, fractions, NaN payloads, the stale marker,
 * +-Inf, -0.0, denormals, values of every length), ids in any order
 * including the extremes, no sample over TSDB__PACKED_MAX bytes, and a
 * truncated or malformed input is refused without reading past its end.
 */
#include "testutil.h"
#include "tsdb/packed.h"

#include <math.h>

#define N 4096

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, 8);
    return v;
}

/* Special and edge values: NaN payloads, infinities, zeros, denormals, 2^53 and around. */
static double edge(size_t i)
{
    static const uint64_t bits[] = {
        0x7ff0000000000002ull, /* stale marker */
        0x7ff8000000000001ull, /* a quiet NaN with a payload */
        0xfff0000000000001ull, /* a negative signalling NaN */
        0x7ff0000000000000ull, /* +Inf */
        0xfff0000000000000ull, /* -Inf */
        0x8000000000000000ull, /* -0.0 */
        0x0000000000000000ull, /* +0.0 */
        0x0000000000000001ull, /* smallest denormal */
        0x8000000000000001ull,
    };
    static const double vals[] = {
        9007199254740992.0,
        -9007199254740992.0,
        9007199254740994.0,
        -9007199254740994.0,
        9007199254740991.0,
        1e300,
        -1e300,
        0.5,
        -0.5,
        1.0,
        -1.0,
        4503599627370495.5,
        18446744073709551616.0,
        9223372036854775807.0,
        -9223372036854775808.0,
        123456789.0,
    };
    size_t nb = ARRAY_SIZE(bits);
    return i < nb ? from_bits(bits[i]) : vals[(i - nb) % ARRAY_SIZE(vals)];
}

static void test_round_trip(void **state)
{
    (void)state;
    static uint32_t ids[N];
    static uint64_t want[N];
    static uint8_t buf[N * TSDB__PACKED_MAX + TSDB__PACKED_SLACK];
    for (int round = 0; round < 8; round++) {
        uint8_t *p = buf;
        struct tsdb__packed prev = {0, 0};
        for (size_t i = 0; i < N; i++) {
            switch (round % 4) {
            case 0:
                ids[i] = (uint32_t)i;
                break; /* ascending */
            case 1:
                ids[i] = (uint32_t)next();
                break; /* anywhere */
            case 2:
                ids[i] = i % 2 ? UINT32_MAX : 0;
                break; /* the extremes */
            default:
                ids[i] = (uint32_t)(N - i) * 1009u;
                break; /* descending */
            }
            double v;
            switch ((i + (size_t)round) % 5) {
            case 0:
                v = edge(i / 5);
                break;
            case 1:
                v = (double)(int64_t)(next() >> (next() % 64));
                break; /* ints of every size */
            case 2:
                v = -(double)(next() >> 11);
                break;
            case 3:
                v = from_bits(next());
                break; /* any bits at all */
            default:
                v = (double)(next() % 100000) / 100.0;
                break; /* decimals */
            }
            memcpy(&want[i], &v, 8);
            uint8_t *q = tsdb__packed_put(p, &prev, ids[i], v);
            assert_true(q > p && q - p <= TSDB__PACKED_MAX);
            p = q;
        }
        const uint8_t *r = buf, *end = p;
        prev = (struct tsdb__packed){0, 0};
        for (size_t i = 0; i < N; i++) {
            uint32_t id;
            uint64_t bits;
            if (tsdb__packed_get(&r, end, &prev, &id, &bits) != 0 || id != ids[i])
                fail_msg("round %d sample %zu (id %u, %016llx) did not come back", round, i, ids[i],
                         (unsigned long long)want[i]);
            if (bits != want[i])
                fail_msg("round %d sample %zu: %016llx came back as %016llx", round, i,
                         (unsigned long long)want[i], (unsigned long long)bits);
        }
        assert_ptr_equal(r, end);
    }
}

/* Counters pack small: the reason for the format. */
static void test_counters_are_small(void **state)
{
    (void)state;
    uint8_t buf[N * TSDB__PACKED_MAX + TSDB__PACKED_SLACK], *p = buf;
    struct tsdb__packed prev = {0, 0};
    for (uint32_t i = 0; i < N; i++)
        p = tsdb__packed_put(p, &prev, i, (double)(i * 37u));
    /* id step 1 in the header; values below 2^18: the top 30 bits, 4 bytes,
     * of which the high byte is the previous value's after the first few. */
    assert_true((size_t)(p - buf) <= (size_t)N * 4 + 64);
}

/* Every prefix of a sample is refused, and so is an id outside 32 bits,
 * without reading past the end. */
static void test_truncated_and_malformed(void **state)
{
    (void)state;
    const double vals[] = {1.0, 0.25, 9007199254740993.0, NAN, 0.1};
    for (size_t k = 0; k < ARRAY_SIZE(vals); k++) {
        uint8_t buf[TSDB__PACKED_MAX + TSDB__PACKED_SLACK];
        struct tsdb__packed prev = {0, 0};
        size_t len = (size_t)(tsdb__packed_put(buf, &prev, 3000000000u, vals[k]) - buf);
        for (size_t cut = 0; cut < len; cut++) {
            /* A heap copy of exactly cut bytes: ASan catches any read past it. */
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, buf, cut);
            const uint8_t *r = copy;
            uint32_t id;
            uint64_t bits;
            prev = (struct tsdb__packed){0, 0};
            assert_int_equal(tsdb__packed_get(&r, copy + cut, &prev, &id, &bits), -1);
            free(copy);
        }
    }
    /* An id below zero: a step of -1 (zigzag 1) from 0, value 0. */
    uint8_t neg[2] = {0x00, 0x01};
    const uint8_t *r = neg;
    struct tsdb__packed prev = {0, 0};
    uint32_t id;
    uint64_t bits;
    assert_int_equal(tsdb__packed_get(&r, neg + sizeof(neg), &prev, &id, &bits), -1);
    neg[1] = 0x02; /* a step of +1 is fine */
    r = neg;
    assert_int_equal(tsdb__packed_get(&r, neg + sizeof(neg), &prev, &id, &bits), 0);
    assert_int_equal(id, 1);
    assert_true(r == neg + 2 && bits == 0);
    /* A value whose high byte is the previous one's (code 9: one byte
     * stored of two), cut anywhere after the first sample. */
    uint8_t two[2 * TSDB__PACKED_MAX + TSDB__PACKED_SLACK];
    struct tsdb__packed w = {0, 0};
    uint8_t *mid = tsdb__packed_put(two, &w, 1, 2.0);
    uint8_t *q = tsdb__packed_put(mid, &w, 2, 3.0);
    assert_int_equal(mid[0] & 15, 9);
    assert_int_equal(q - mid, 2);
    for (const uint8_t *cut = mid; cut <= q; cut++) {
        prev = (struct tsdb__packed){0, 0};
        r = two;
        assert_int_equal(tsdb__packed_get(&r, cut, &prev, &id, &bits), 0);
        int rc = tsdb__packed_get(&r, cut, &prev, &id, &bits);
        if (cut < q) {
            assert_int_equal(rc, -1);
        } else {
            double v;
            memcpy(&v, &bits, 8);
            assert_true(rc == 0 && id == 2 && v == 3.0);
        }
    }
    /* An id varint of 11 bytes. */
    uint8_t longv[12];
    memset(longv, 0x80, sizeof(longv));
    longv[0] = 0;
    r = longv;
    assert_int_equal(tsdb__packed_get(&r, longv + sizeof(longv), &prev, &id, &bits), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_counters_are_small),
        cmocka_unit_test(test_truncated_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
