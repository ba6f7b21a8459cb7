/*
 * chunk_fuzz.c: libFuzzer target for the sample codec (src/tsdb/chunk.c).
 * Every input is used three ways:
 *   1. decoded as a chunk and as a single block (with and without a context
 *      taken from the input): must give samples or an error, never a crash,
 *      and samples that decode must re-encode and decode to the same bits;
 *   2. read as a program that generates samples (steps, counters, decimals,
 *      NaN payloads, extremes), which are chunked, encoded and decoded: the
 *      result must equal the input bit for bit;
 *   3. checksummed by both CRC32C implementations, which must agree.
 * Build and run with fuzz/run.sh.
 */
#include "tsdb/chunk.h"
#include "tsdb/crc32c.h"
#include "fuzz_cursor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAMPLES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double of_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Samples that decode from arbitrary bytes must survive a fresh round trip. */
static void reencode(const struct tsdb__block_ctx *before, const int64_t *ts, const double *v,
                     size_t n, const struct tsdb__block_ctx *after)
{
    static uint8_t buf[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    int64_t ts2[TSDB_BLOCK_MAX];
    double v2[TSDB_BLOCK_MAX];
    struct tsdb__block_ctx ec = *before, dc = *before;
    size_t len = tsdb__block_encode(&ec, ts, v, n, buf, sizeof(buf));
    CHECK(len > 0);
    size_t n2, used;
    CHECK(tsdb__block_decode(&dc, buf, len, ts2, v2, TSDB_BLOCK_MAX, &n2, &used) == 0);
    CHECK(n2 == n && used == len);
    for (size_t i = 0; i < n; i++)
        CHECK(ts2[i] == ts[i] && bits_of(v2[i]) == bits_of(v[i]));
    CHECK(memcmp(&ec, &dc, sizeof(ec)) == 0);
    /* The methods (hdr, dec) are the encoder's choice, not necessarily the input's. */
    CHECK(ec.ts == after->ts && ec.delta == after->delta && ec.v == after->v);
}

static void decode_garbage(const uint8_t *data, size_t size)
{
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];

    struct tsdb__chunk_iter it;
    if (tsdb__chunk_iter_init(&it, data, size, INT64_MIN, INT64_MAX) == 0) {
        int64_t t, last = 0;
        double x;
        size_t k = 0;
        while (tsdb__chunk_iter_next(&it, &t, &x) > 0) {
            CHECK(k == 0 || t > last);
            last = t;
            k++;
        }
    }

    for (int with_ctx = 0; with_ctx <= 1; with_ctx++) {
        struct cursor c = {data, size};
        struct tsdb__block_ctx ctx;
        tsdb__block_ctx_init(&ctx);
        if (with_ctx) {
            ctx.valid = 1;
            ctx.ts = (int64_t)take(&c, 8);
            ctx.delta = (int64_t)take(&c, 2);
            ctx.v = take(&c, 1) & 1 ? take(&c, 8) : bits_of((double)take(&c, 2) / 100);
            ctx.hdr = (uint8_t)(take(&c, 1) & 63); /* the last block's header */
            ctx.dec = (uint8_t)(take(&c, 1) & 63); /* 32 | scale: a decimal block was seen */
        }
        struct tsdb__block_ctx before = ctx;
        size_t n, used;
        if (tsdb__block_decode(&ctx, c.p, c.left, ts, v, TSDB_BLOCK_MAX, &n, &used) == 0) {
            CHECK(n >= 1 && n <= TSDB_BLOCK_MAX && used <= c.left);
            reencode(&before, ts, v, n, &ctx);
        }
    }
}

/* Build samples from the input, chunk them, and demand them back exactly. */
static void roundtrip(const uint8_t *data, size_t size)
{
    static int64_t ts[MAX_SAMPLES];
    static double v[MAX_SAMPLES];
    static const double p10[] = {1, 10, 100, 1000, 1e4, 1e5, 1e6};
    struct cursor c = {data, size};
    size_t bs = 1 + take(&c, 1) % TSDB_BLOCK_MAX;
    int64_t t = (int64_t)take(&c, 8);
    uint64_t step = 1000;
    uint64_t counter = 0; /* unsigned: wraps instead of overflowing */
    double x = 0;
    size_t n = 0;
    while (c.left && n < MAX_SAMPLES) {
        unsigned op = (unsigned)take(&c, 1);
        switch (op & 3) {
        case 0:
            break;
        case 1:
            step = 1 + take(&c, 1) * 10;
            break;
        case 2:
            step = 1 + take(&c, 2);
            break;
        default:
            step = 1 + (take(&c, 8) >> (take(&c, 1) & 63));
            break;
        }
        unsigned k = (op >> 5) % 7;
        switch ((op >> 2) & 7) {
        case 0:
            break; /* same value */
        case 1:
            counter += (uint64_t)(int64_t)(int8_t)take(&c, 1);
            x = (double)(int64_t)counter / p10[k];
            break;
        case 2:
            counter += take(&c, 2);
            x = (double)(int64_t)counter * (k ? 1.0 / p10[k] : 1.0);
            break;
        case 3:
            x = of_bits(take(&c, 8));
            break;
        case 4:
            x = of_bits(0x7ff0000000000002ull); /* Prometheus stale marker */
            break;
        case 5:
            counter = take(&c, 8) >> (take(&c, 1) & 63);
            x = (double)(int64_t)counter;
            break;
        case 6: {
            static const uint64_t special[] = {0x8000000000000000ull, 0x7ff0000000000000ull,
                                               0xfff0000000000000ull, 0x0000000000000001ull,
                                               0x7ff8000000000000ull, 0x0010000000000000ull};
            x = of_bits(special[take(&c, 1) % 6]);
            break;
        }
        default:
            x = x * 2 + 1;
            break;
        }
        if (step == 0 || step > INT64_MAX)
            step = step ? INT64_MAX : 1;
        if (n && t > INT64_MAX - (int64_t)step)
            break;
        if (n)
            t += (int64_t)step;
        ts[n] = t;
        v[n] = x;
        n++;
    }

    struct tsdb__chunk ch;
    tsdb__chunk_init(&ch);
    for (size_t i = 0; i < n; i += bs) {
        size_t k = n - i < bs ? n - i : bs;
        CHECK(tsdb__chunk_append(&ch, ts + i, v + i, k) == 0);
    }
    struct tsdb__chunk_iter it;
    CHECK(tsdb__chunk_iter_init(&it, ch.buf, ch.len, INT64_MIN, INT64_MAX) == 0);
    size_t i = 0;
    int64_t tt;
    double xx;
    int r;
    while ((r = tsdb__chunk_iter_next(&it, &tt, &xx)) > 0) {
        CHECK(i < n);
        CHECK(tt == ts[i] && bits_of(xx) == bits_of(v[i]));
        i++;
    }
    CHECK(r == 0 && i == n);

    /* A range in the middle gives exactly the samples inside it. */
    if (n >= 3) {
        int64_t lo = ts[n / 3], hi = ts[2 * n / 3];
        CHECK(tsdb__chunk_iter_init(&it, ch.buf, ch.len, lo, hi) == 0);
        i = n / 3;
        while ((r = tsdb__chunk_iter_next(&it, &tt, &xx)) > 0) {
            CHECK(tt == ts[i] && bits_of(xx) == bits_of(v[i]));
            i++;
        }
        CHECK(r == 0 && i == 2 * n / 3 + 1);
    }
    tsdb__chunk_release(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_garbage(data, size);
    roundtrip(data, size);
    size_t cut = size ? data[0] % (size + 1) : 0;
    uint32_t crc = tsdb__crc32c(tsdb__crc32c(0, data, cut), data + cut, size - cut);
    CHECK(crc == tsdb__crc32c_sw(0, data, size));
    return 0;
}
