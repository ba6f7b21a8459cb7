/*
 * chunk_test.c: the sample codec: bit-exact round trips over ordinary and
 * adversarial series (counters with resets, NaN payloads, -0.0, infinities,
 * denormals, INT64 timestamp extremes, every block size), the compact
 * method for common shapes, chunk iteration over a time range, refusal of
 * bad appends, and decoding of truncated, bit-flipped and random bytes, which
 * must give an error or samples but never a crash (run under ASan/UBSan).
 */
#include "testutil.h"
#include "tsdb/chunk.h"
#include "tsdb/crc32c.h"

#include <math.h>

#define STALE_NAN 0x7ff0000000000002ull

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* Build a chunk from ts/v in blocks of bs samples. */
static void build(struct tsdb__chunk *c, const int64_t *ts, const double *v, size_t n, size_t bs)
{
    tsdb__chunk_init(c);
    for (size_t i = 0; i < n; i += bs) {
        size_t k = n - i < bs ? n - i : bs;
        int r = tsdb__chunk_append(c, ts + i, v + i, k);
        if (r)
            fail_msg("append at %zu: %s", i, tsdb__strerror(r));
    }
    assert_int_equal(c->nsamples, n);
}

/*
 * Decoding block by block with a lower bound (tsdb__block_decode_from) gives
 * what a full decode gives: the same sizes, context and timestamps, the last
 * value always, every value when the block reaches the bound. The bound is
 * drawn per block: before, inside or after it.
 */
static void check_decode_from(const struct tsdb__chunk *c)
{
    /* Its own draws: the other tests' data must not depend on how often this ran. */
    uint64_t saved = rng_state;
    rng_state = (uint64_t)c->len * 0x9e3779b97f4a7c15ull ^ c->nsamples;
    struct tsdb__block_ctx full, part;
    tsdb__block_ctx_init(&full);
    tsdb__block_ctx_init(&part);
    size_t off = TSDB_CHUNK_HEADER;
    while (off < c->len) {
        int64_t ts1[TSDB_BLOCK_MAX], ts2[TSDB_BLOCK_MAX];
        double v1[TSDB_BLOCK_MAX], v2[TSDB_BLOCK_MAX];
        size_t n1, n2, used1, used2;
        assert_int_equal(tsdb__block_decode(&full, c->buf + off, c->len - off, ts1, v1,
                                            TSDB_BLOCK_MAX, &n1, &used1),
                         0);
        int64_t from;
        switch (rnd() % 3) {
        case 0:
            from = ts1[0] > INT64_MIN + 1000 ? ts1[0] - (int64_t)(rnd() % 1000) : INT64_MIN;
            break;
        case 1:
            from = ts1[rnd() % n1];
            break;
        default:
            from = ts1[n1 - 1] < INT64_MAX - 1001 ? ts1[n1 - 1] + 1 + (int64_t)(rnd() % 1000)
                                                  : INT64_MAX;
            break;
        }
        assert_int_equal(tsdb__block_decode_from(&part, c->buf + off, c->len - off, from, ts2, v2,
                                                 TSDB_BLOCK_MAX, &n2, &used2),
                         0);
        assert_int_equal(n1, n2);
        assert_int_equal(used1, used2);
        assert_memory_equal(&full, &part, sizeof(full));
        assert_memory_equal(ts1, ts2, n1 * sizeof(*ts1));
        assert_true(to_bits(v1[n1 - 1]) == to_bits(v2[n1 - 1]));
        if (ts1[n1 - 1] >= from)
            assert_memory_equal(v1, v2, n1 * sizeof(*v1));
        off += used1;
    }
    assert_int_equal(off, c->len);
    rng_state = saved;
}

/* Count and compare what two iterators give. */
static void same_samples(struct tsdb__chunk_iter *a, struct tsdb__chunk_iter *b)
{
    int ra, rb;
    int64_t ta, tb;
    double va, vb;
    do {
        ra = tsdb__chunk_iter_next(a, &ta, &va);
        rb = tsdb__chunk_iter_next(b, &tb, &vb);
        assert_int_equal(ra, rb);
        if (ra > 0) {
            assert_true(ta == tb);
            assert_true(to_bits(va) == to_bits(vb));
        }
    } while (ra > 0);
}

/*
 * Reading a chunk in memory from its seek points gives what reading its
 * bytes from the start gives, for ranges starting anywhere; and a chunk
 * loaded from its bytes has the seek points appending gave it.
 */
static void same_ctx(const struct tsdb__block_ctx *a, const struct tsdb__block_ctx *b)
{
    assert_true(a->ts == b->ts && a->delta == b->delta && a->v == b->v);
    assert_int_equal(a->valid, b->valid);
    assert_int_equal(a->hdr, b->hdr);
    assert_int_equal(a->dec, b->dec);
}

static void check_seek(const struct tsdb__chunk *c, const int64_t *ts, size_t n)
{
    if (!n)
        return;
    struct tsdb__chunk l;
    assert_int_equal(tsdb__chunk_load(&l, c->buf, c->len), 0);
    assert_int_equal(l.since_seek, c->since_seek);
    assert_int_equal(!l.seek, !c->seek);
    for (int k = 0; c->seek && k < 2; k++) {
        assert_int_equal(l.seek[k].off, c->seek[k].off);
        assert_int_equal(l.seek[k].before, c->seek[k].before);
        if (c->seek[k].off)
            same_ctx(&l.seek[k].ctx, &c->seek[k].ctx);
    }
    struct tsdb__block_ctx lc = tsdb__chunk_ctx(&l), cc = tsdb__chunk_ctx(c);
    same_ctx(&lc, &cc);
    tsdb__chunk_release(&l);
    uint64_t saved = rng_state;
    rng_state = (uint64_t)n * 0x9e3779b97f4a7c15ull ^ c->len;
    for (int k = 0; k < 8; k++) {
        int64_t mint = ts[rnd() % n], maxt = INT64_MAX;
        if (mint > INT64_MIN && rnd() % 2)
            mint--;
        if (k & 1)
            maxt = ts[rnd() % n];
        struct tsdb__chunk_iter a, b;
        assert_int_equal(tsdb__chunk_iter_init(&a, c->buf, c->len, mint, maxt), 0);
        assert_int_equal(tsdb__chunk_iter_init_chunk(&b, c, mint, maxt), 0);
        same_samples(&a, &b);
        /* The last block a full read decoded is a seek point for the next reader. */
        struct tsdb__chunk_iter full, c1, c2;
        assert_int_equal(tsdb__chunk_iter_init(&full, c->buf, c->len, INT64_MIN, INT64_MAX), 0);
        int64_t ft;
        double fv;
        int fr;
        while ((fr = tsdb__chunk_iter_next(&full, &ft, &fv)) > 0)
            ;
        assert_int_equal(fr, 0);
        assert_int_equal(tsdb__chunk_iter_init(&c1, c->buf, c->len, mint, maxt), 0);
        assert_int_equal(tsdb__chunk_iter_init(&c2, c->buf, c->len, mint, maxt), 0);
        int moved = tsdb__chunk_iter_seek(&c2, &full.last);
        assert_true(!moved || (full.last.off && full.last.ctx.ts < mint));
        same_samples(&c1, &c2);
    }
    rng_state = saved;
}

/* Every sample comes back, bit for bit, for several block sizes. */
static void check_roundtrip(const int64_t *ts, const double *v, size_t n)
{
    static const size_t sizes[] = {1, 2, 7, 32, TSDB_BLOCK_MAX};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct tsdb__chunk c;
        build(&c, ts, v, n, sizes[s]);
        struct tsdb__chunk_iter it;
        assert_int_equal(tsdb__chunk_iter_init(&it, c.buf, c.len, INT64_MIN, INT64_MAX), 0);
        size_t i = 0;
        int64_t t;
        double x;
        int r;
        while ((r = tsdb__chunk_iter_next(&it, &t, &x)) > 0) {
            assert_true(i < n);
            if (t != ts[i] || to_bits(x) != to_bits(v[i]))
                fail_msg("block size %zu, sample %zu: got (%lld, %016llx) want (%lld, %016llx)",
                         sizes[s], i, (long long)t, (unsigned long long)to_bits(x),
                         (long long)ts[i], (unsigned long long)to_bits(v[i]));
            i++;
        }
        assert_int_equal(r, 0);
        assert_int_equal(i, n);
        assert_int_equal(tsdb__chunk_iter_next(&it, &t, &x), 0);
        if (n) {
            assert_true(c.mint == ts[0]);
            assert_true(c.maxt == ts[n - 1]);
        }
        check_decode_from(&c);
        check_seek(&c, ts, n);
        tsdb__chunk_release(&c);
    }
}

static void regular_ts(int64_t *ts, size_t n, int64_t start, int64_t step)
{
    for (size_t i = 0; i < n; i++)
        ts[i] = start + (int64_t)i * step;
}

#define N  1000
#define T0 1700000000000ll

static void test_constant_and_counters(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    regular_ts(ts, N, T0, 1000);

    for (size_t i = 0; i < N; i++)
        v[i] = 42;
    check_roundtrip(ts, v, N);

    /* Integer counter with resets and a decreasing stretch. */
    double c = 1e9;
    for (size_t i = 0; i < N; i++) {
        c += (double)(rnd() % 5000);
        if (i % 300 == 299)
            c = (double)(rnd() % 10);
        if (i > 900)
            c -= 7;
        v[i] = c;
    }
    check_roundtrip(ts, v, N);

    /* CPU seconds at 0.01 (ticks / 100) and at 0.001 by multiplication. */
    uint64_t ticks = 123456789;
    for (size_t i = 0; i < N; i++) {
        ticks += rnd() % 200;
        if (i == 500)
            ticks = 3;
        v[i] = (double)ticks / 100;
    }
    check_roundtrip(ts, v, N);
    for (size_t i = 0; i < N; i++)
        v[i] = (double)(ticks + i * (rnd() % 7)) * 0.001;
    check_roundtrip(ts, v, N);

    /* Gauges: load averages with 2 decimals, memory in bytes. */
    for (size_t i = 0; i < N; i++)
        v[i] = (double)(rnd() % 800) / 100;
    check_roundtrip(ts, v, N);
    double mem = 8e9;
    for (size_t i = 0; i < N; i++)
        v[i] = mem += (double)((int64_t)(rnd() % 64) - 32) * 4096;
    check_roundtrip(ts, v, N);
}

static void test_special_values(void **state)
{
    (void)state;
    const double specials[] = {from_bits(STALE_NAN),
                               NAN,
                               -NAN,
                               from_bits(0x7ff8000000000001ull),
                               from_bits(0xfff0000000000001ull),
                               from_bits(0x7fffffffffffffffull),
                               INFINITY,
                               -INFINITY,
                               0.0,
                               -0.0,
                               4.9e-324,
                               -4.9e-324,
                               2.2250738585072009e-308,
                               1e300,
                               -1e300,
                               1.7976931348623157e308,
                               0x1p53,
                               0x1p53 + 2,
                               -0x1p53,
                               9007199254740993.0,
                               0.1,
                               1234.56,
                               1.0 / 3};
    size_t ns = ARRAY_SIZE(specials);
    int64_t ts[N];
    double v[N];
    regular_ts(ts, N, T0, 1000);
    /* Runs of each special, then every pair, then random picks. */
    size_t n = 0;
    for (size_t i = 0; i < ns && n < N; i++)
        for (size_t k = 0; k < 10 && n < N; k++)
            v[n++] = specials[i];
    for (size_t i = 0; i < ns && n < N; i++)
        for (size_t k = 0; k < ns && n < N; k++) {
            v[n++] = specials[i];
            if (n < N)
                v[n++] = specials[k];
        }
    while (n < N)
        v[n++] = specials[rnd() % ns];
    check_roundtrip(ts, v, N);

    /* A counter interrupted by stale markers, as when a target disappears. */
    for (size_t i = 0; i < N; i++)
        v[i] = (i / 50) % 3 == 1 ? from_bits(STALE_NAN) : (double)(i * 3) / 10;
    check_roundtrip(ts, v, N);

    /* Huge jumps and all-random bit patterns (every NaN payload included). */
    for (size_t i = 0; i < N; i++)
        v[i] = i % 2 ? 1e300 : -1e300;
    check_roundtrip(ts, v, N);
    for (size_t i = 0; i < N; i++)
        v[i] = from_bits(rnd());
    check_roundtrip(ts, v, N);
    for (size_t i = 0; i < N; i++)
        v[i] = from_bits(0x7ff0000000000000ull | (rnd() & 0x000fffffffffffffull) | 1);
    check_roundtrip(ts, v, N);
}

static void test_timestamps(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = (double)i;

    /* Irregular: jitter, gaps, bursts. */
    int64_t t = T0;
    for (size_t i = 0; i < N; i++) {
        t += 1 + (int64_t)(rnd() % 3000);
        if (i % 97 == 0)
            t += 86400000;
        ts[i] = t;
    }
    check_roundtrip(ts, v, N);

    /* Negative timestamps crossing zero. */
    regular_ts(ts, N, -500 * 15000ll, 15000);
    check_roundtrip(ts, v, N);

    /* INT64 extremes: the first and last steps wrap when taken mod 2^64. */
    ts[0] = INT64_MIN;
    ts[1] = INT64_MIN + 1;
    for (size_t i = 2; i < N - 2; i++)
        ts[i] = (int64_t)(i - N / 2) * 1000;
    ts[N - 2] = INT64_MAX - 1;
    ts[N - 1] = INT64_MAX;
    check_roundtrip(ts, v, N);
    int64_t two[2] = {INT64_MIN, INT64_MAX};
    double tv[2] = {-0.0, from_bits(STALE_NAN)};
    check_roundtrip(two, tv, 2);

    /* Huge random steps: widths up to 58 bits. */
    t = INT64_MIN;
    for (size_t i = 0; i < 40; i++) {
        t += 1 + (int64_t)(rnd() >> (i % 2 ? 6 : 40)); /* stays below 2^62 in all */
        ts[i] = t;
    }
    check_roundtrip(ts, v, 40);

    /* Single samples. */
    check_roundtrip(ts, v, 1);
    ts[0] = INT64_MAX;
    check_roundtrip(ts, v, 1);
}

/* Random mixtures of every shape, many lengths. */
static void test_random_shapes(void **state)
{
    (void)state;
    int64_t ts[300];
    double v[300];
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rnd() % 300;
        int64_t t = (int64_t)rnd() >> (rnd() % 64);
        int64_t step = 1 + (int64_t)(rnd() % 20000);
        double x = (double)(rnd() % 100000) / 100;
        unsigned sparse = round % 3 == 0 ? 2 + (unsigned)(round % 40) : 0; /* 1 in `sparse` moves */
        for (size_t i = 0; i < n; i++) {
            if (sparse) {
                if (rnd() % sparse == 0)
                    x += (double)((int64_t)(rnd() % 9) - 4) * (round % 2 ? 1 : 0.25);
                v[i] = x;
                ts[i] = t;
                t += step;
                continue;
            }
            switch (rnd() % 6) {
            case 0:
                break; /* same value */
            case 1:
                x += (double)(rnd() % 100) / 100;
                break;
            case 2:
                x = (double)(rnd() % 1000);
                break;
            case 3:
                x = from_bits(rnd());
                break;
            case 4:
                x = from_bits(STALE_NAN);
                break;
            default:
                x = (double)(int64_t)(rnd() % 2000000) - 1e6;
                break;
            }
            v[i] = x;
            int64_t d = rnd() % 4 ? step : 1 + (int64_t)(rnd() % 100000);
            ts[i] = t;
            if (t > INT64_MAX - d) {
                n = i + 1;
                break;
            }
            t += d;
        }
        check_roundtrip(ts, v, n);
    }
}

/*
 * Encode one block after a warm-up block of two samples (1 s apart, value
 * warm); return its size and methods.
 */
static size_t steady_block(const int64_t *ts, const double *v, size_t n, double warm, int *tm,
                           int *vm)
{
    struct tsdb__block_ctx ctx;
    tsdb__block_ctx_init(&ctx);
    uint8_t buf[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    int64_t wts[2] = {ts[0] - 2000, ts[0] - 1000};
    double wv[2] = {warm, warm};
    assert_true(tsdb__block_encode(&ctx, wts, wv, 2, buf, sizeof(buf)) > 0);
    struct tsdb__block_ctx before = ctx; /* a block's header is read against it */
    size_t len = tsdb__block_encode(&ctx, ts, v, n, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(tsdb__block_methods(&before, buf, len, tm, vm), 0);
    return len;
}

/*
 * A block repeats its predecessor's methods and decimal scale for one bit
 * each: the same block coded against a context that knows neither costs
 * 10 bits more (7 instead of 1 for the header, 5 instead of 1 for the scale),
 * and each decodes only against its own context.
 */
static void test_context_repeats(void **state)
{
    (void)state;
    int64_t ts[2 * TSDB_BLOCK_MAX];
    double v[2 * TSDB_BLOCK_MAX];
    regular_ts(ts, 2 * TSDB_BLOCK_MAX, T0, 1000);
    int64_t x = 5000;
    for (size_t i = 0; i < 2 * TSDB_BLOCK_MAX; i++) {
        x += (int64_t)(rnd() % 41) - 20;
        v[i] = (double)x / 100; /* a gauge with two decimals */
    }
    struct tsdb__block_ctx ctx;
    tsdb__block_ctx_init(&ctx);
    uint8_t a[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)], b[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    assert_true(tsdb__block_encode(&ctx, ts, v, TSDB_BLOCK_MAX, a, sizeof(a)) > 0);
    int tm, vm;
    /* What the second block's header and scale are, to put them in the context or not. */
    struct tsdb__block_ctx probe = ctx;
    assert_true(tsdb__block_encode(&probe, ts + TSDB_BLOCK_MAX, v + TSDB_BLOCK_MAX, TSDB_BLOCK_MAX,
                                   a, sizeof(a)) > 0);
    struct tsdb__block_ctx known = ctx, blank = ctx;
    known.hdr = probe.hdr;
    known.dec = probe.dec;
    blank.hdr = probe.hdr ^ 3; /* another timestamp method */
    blank.dec = 0;             /* no decimal block seen */
    struct tsdb__block_ctx ka = known, kb = blank;
    size_t la = tsdb__block_encode(&ka, ts + TSDB_BLOCK_MAX, v + TSDB_BLOCK_MAX, TSDB_BLOCK_MAX, a,
                                   sizeof(a));
    size_t lb = tsdb__block_encode(&kb, ts + TSDB_BLOCK_MAX, v + TSDB_BLOCK_MAX, TSDB_BLOCK_MAX, b,
                                   sizeof(b));
    assert_int_equal(tsdb__block_methods(&known, a, la, &tm, &vm), 0);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    assert_int_equal(tsdb__block_methods(&blank, b, lb, &tm, &vm), 0);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    if (!(la > 0 && lb >= la + 1 && lb <= la + 2))
        fail_msg("la %zu lb %zu", la, lb);

    int64_t dts[TSDB_BLOCK_MAX];
    double dv[TSDB_BLOCK_MAX];
    size_t n, used;
    struct tsdb__block_ctx d = known;
    assert_int_equal(tsdb__block_decode(&d, a, la, dts, dv, TSDB_BLOCK_MAX, &n, &used), 0);
    assert_int_equal(n, TSDB_BLOCK_MAX);
    assert_int_equal(used, la);
    for (size_t i = 0; i < n; i++)
        assert_true(dts[i] == ts[TSDB_BLOCK_MAX + i] && dv[i] == v[TSDB_BLOCK_MAX + i]);
    same_ctx(&d, &ka);
    d = blank;
    assert_int_equal(tsdb__block_decode(&d, b, lb, dts, dv, TSDB_BLOCK_MAX, &n, &used), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(dts[i] == ts[TSDB_BLOCK_MAX + i] && dv[i] == v[TSDB_BLOCK_MAX + i]);
    same_ctx(&d, &kb);
    /* The compact block read against the blank context is not the same samples. */
    d = blank;
    int r = tsdb__block_decode(&d, a, la, dts, dv, TSDB_BLOCK_MAX, &n, &used);
    int differs = r != 0 || n != TSDB_BLOCK_MAX;
    for (size_t i = 0; !differs && i < n; i++)
        differs = dts[i] != ts[TSDB_BLOCK_MAX + i] || dv[i] != v[TSDB_BLOCK_MAX + i];
    assert_true(differs);
}

static void test_compact_methods(void **state)
{
    (void)state;
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
    uint8_t buf[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    int tm, vm;
    regular_ts(ts, TSDB_BLOCK_MAX, T0, 1000);

    /*
     * 32 regular constant samples opening a chunk: the first sample is
     * explicit (a 41-bit ms timestamp, the value's 64 bits XORed with 0), the
     * 31 others cost a step and nothing per sample.
     */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = 12345.5;
    struct tsdb__block_ctx ctx;
    tsdb__block_ctx_init(&ctx);
    size_t len = tsdb__block_encode(&ctx, ts, v, 32, buf, sizeof(buf));
    assert_true(len > 0 && len <= 17);
    /* ... and the next full block costs one byte: SAME times, SAME values. */
    regular_ts(ts, TSDB_BLOCK_MAX, T0 + 32000, 1000);
    struct tsdb__block_ctx before = ctx;
    len = tsdb__block_encode(&ctx, ts, v, TSDB_BLOCK_MAX, buf, sizeof(buf));
    assert_int_equal(len, 1);
    assert_int_equal(tsdb__block_methods(&before, buf, len, &tm, &vm), 0);
    assert_int_equal(tm, TSDB__TS_SAME);
    assert_int_equal(vm, TSDB__V_SAME);

    /* A new constant: CONST. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = 7;
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 1, &tm, &vm);
    assert_int_equal(vm, TSDB__V_CONST);
    assert_true(len <= 4);

    /* CPU seconds at 0.01 with increments of 0..3 ticks: decimal, 2 bits each. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = (double)(1234567 + 2 * i + rnd() % 4) / 100;
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 1, &tm, &vm);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    assert_int_equal(tm, TSDB__TS_SAME);
    assert_true(len <= 8 + 3 * TSDB_BLOCK_MAX / 8);

    /* A counter growing by exactly 1 per step: no bits per sample. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = (double)(1000000 + i);
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 1, &tm, &vm);
    assert_int_equal(vm, TSDB__V_DEC);
    assert_true(len <= 6);

    /* Memory in bytes moving in whole pages: the gcd takes the page out. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = 8e9 + (double)(rnd() % 16) * 4096;
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 4096, &tm, &vm);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    assert_true(len <= 8 + 6 * TSDB_BLOCK_MAX / 8);

    /*
     * An error counter: flat but for 3 increments of 1..2 in the block. FOR
     * would pay 2 bits for each of the 64 values (20 bytes with headers); the
     * sparse form only for the three (their positions and sizes). A round trip
     * with sparse blocks of every density is in test_random_shapes.
     */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = 500 + (i >= 9) + (i >= 30) * 2 + (i >= 51);
    len = steady_block(ts, v, TSDB_BLOCK_MAX, 500, &tm, &vm);
    assert_int_equal(vm, TSDB__V_DEC);
    assert_true(len <= 10);
    double vs[3 * TSDB_BLOCK_MAX];
    int64_t tss[3 * TSDB_BLOCK_MAX];
    regular_ts(tss, 3 * TSDB_BLOCK_MAX, T0, 1000);
    for (size_t i = 0; i < 3 * TSDB_BLOCK_MAX; i++)
        vs[i] = (double)(i * 7 % 61 == 0 ? i : i / 61 * 61) - 1e6; /* steps, negative */
    check_roundtrip(tss, vs, 3 * TSDB_BLOCK_MAX);

    /* Jittered timestamps: delta coding in a few bits. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        ts[i] = T0 + (int64_t)i * 1000 + (int64_t)(rnd() % 8);
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 1, &tm, &vm);
    assert_true(tm == TSDB__TS_DELTA || tm == TSDB__TS_DOD);

    /* Random doubles: XOR or raw, never more than raw plus headers. */
    regular_ts(ts, TSDB_BLOCK_MAX, T0, 1000);
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = from_bits(rnd());
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0] - 1, &tm, &vm);
    assert_true(vm == TSDB__V_XOR || vm == TSDB__V_RAW);
    assert_true(len <= 8 * TSDB_BLOCK_MAX + 2);
}

/*
 * Decimal forms producers actually use, and values bunched around one level
 * with outliers (Exp-Golomb instead of a width set by the outlier).
 */
static void test_decimal_modes_and_outliers(void **state)
{
    (void)state;
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
    int tm, vm;
    size_t len;
    regular_ts(ts, TSDB_BLOCK_MAX, T0, 1000);

    /* Durations from a nanosecond clock: ns / 1e9. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = (double)(20000 + rnd() % 4096) / 1e9;
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0], &tm, &vm);
    assert_int_equal(vm, TSDB__V_DEC);
    assert_true(len <= 8 + 14 * TSDB_BLOCK_MAX / 8);

    /* Milliseconds times 0.001, as diskstats does. */
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = (double)(123456789 + 7 * i + rnd() % 4) * 0.001;
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0], &tm, &vm);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    assert_true(len <= 8 + 4 * TSDB_BLOCK_MAX / 8);

    /* A parsed percentage turned into a ratio: strtod("0.82") / 100. */
    char text[32];
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
        snprintf(text, sizeof(text), "%u.%02u", (unsigned)(rnd() % 3), (unsigned)(rnd() % 100));
        v[i] = strtod(text, NULL) / 100;
    }
    len = steady_block(ts, v, TSDB_BLOCK_MAX, v[0], &tm, &vm);
    assert_true(vm == TSDB__V_DEC || vm == TSDB__V_DEC_DOD);
    assert_true(len <= 8 + 10 * TSDB_BLOCK_MAX / 8);

    /* CPU idle ticks: 98..100 a second, once only 4 (FOR would need 7 bits each). */
    uint64_t ticks = 32029600;
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
        ticks += i == 40 ? 4 : 98 + rnd() % 3;
        v[i] = (double)ticks / 100;
    }
    len = steady_block(ts, v, TSDB_BLOCK_MAX, (double)32029500 / 100, &tm, &vm);
    assert_int_equal(vm, TSDB__V_DEC);
    assert_true(len <= 8 + 3 * TSDB_BLOCK_MAX / 8);

    /* Outliers around the Exp-Golomb limit (2^55) and far past it. */
    static const int64_t big[] = {1ll << 53, -(1ll << 53), 1ll << 54, (1ll << 54) + 1};
    for (size_t b = 0; b < ARRAY_SIZE(big); b++) {
        int64_t x = 0;
        for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
            x = i == 10 ? big[b] : i == 11 ? 0 : x + (int64_t)(rnd() % 5);
            v[i] = (double)x;
        }
        check_roundtrip(ts, v, TSDB_BLOCK_MAX);
    }
    int64_t t = INT64_MIN / 2;
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
        t += i == 20 ? (1ll << 56) + 12345 : i == 30 ? (1ll << 55) : 1000 + (int64_t)(rnd() % 9);
        ts[i] = t;
        v[i] = 1;
    }
    check_roundtrip(ts, v, TSDB_BLOCK_MAX);
}

/* The worst inputs fit TSDB_BLOCK_BOUND; a smaller cap gives 0, not an overrun. */
static void test_bound_and_cap(void **state)
{
    (void)state;
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
    uint8_t buf[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    for (int round = 0; round < 100; round++) {
        int64_t t = INT64_MIN;
        for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
            t += 1 + (int64_t)(rnd() >> 8);
            ts[i] = t;
            v[i] = from_bits(rnd());
        }
        struct tsdb__block_ctx ctx, c2;
        tsdb__block_ctx_init(&ctx);
        size_t n = 1 + rnd() % TSDB_BLOCK_MAX;
        size_t len = tsdb__block_encode(&ctx, ts, v, n, buf, TSDB_BLOCK_BOUND(n));
        assert_true(len > 0 && len <= TSDB_BLOCK_BOUND(n));
        tsdb__block_ctx_init(&c2);
        assert_int_equal(tsdb__block_encode(&c2, ts, v, n, buf, len - 1), 0);
        assert_false(c2.valid);
        /* An exact fit writes the same bytes (the writer's byte-wise tail). */
        uint8_t *exact = xmalloc(len);
        assert_int_equal(tsdb__block_encode(&c2, ts, v, n, exact, len), len);
        assert_memory_equal(exact, buf, len);
        same_ctx(&c2, &ctx);
        free(exact);
        /* The next block must start after the last timestamp. */
        assert_int_equal(tsdb__block_encode(&c2, ts + n - 1, v, 1, buf, sizeof(buf)), 0);
    }
    /* Bad arguments. */
    struct tsdb__block_ctx ctx;
    tsdb__block_ctx_init(&ctx);
    assert_int_equal(tsdb__block_encode(&ctx, ts, v, 0, buf, sizeof(buf)), 0);
    ts[1] = ts[0];
    assert_int_equal(tsdb__block_encode(&ctx, ts, v, 2, buf, sizeof(buf)), 0);
}

static void test_chunk_iter_range(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    regular_ts(ts, N, T0, 1000);
    for (size_t i = 0; i < N; i++)
        v[i] = (double)i;
    struct tsdb__chunk c;
    build(&c, ts, v, N, TSDB_BLOCK_MAX);
    struct {
        int64_t mint, maxt;
        size_t first, count;
    } cases[] = {
        {T0 + 100500, T0 + 200000, 101, 100}, /* inside, bounds between samples */
        {T0, T0, 0, 1},                       /* the first sample only */
        {INT64_MIN, T0 - 1, 0, 0},            /* before */
        {T0 + N * 1000, INT64_MAX, 0, 0},     /* after */
        {T0 + 5000, T0 + 4000, 0, 0},         /* empty range */
        {T0 + 999000, INT64_MAX, 999, 1},     /* the last sample */
    };
    for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
        struct tsdb__chunk_iter it;
        assert_int_equal(tsdb__chunk_iter_init(&it, c.buf, c.len, cases[k].mint, cases[k].maxt), 0);
        int64_t t;
        double x;
        size_t got = 0;
        while (tsdb__chunk_iter_next(&it, &t, &x) > 0) {
            assert_true(t == ts[cases[k].first + got]);
            assert_true(x == v[cases[k].first + got]);
            got++;
        }
        assert_int_equal(got, cases[k].count);
    }

    /* Header checks: short, wrong version, count beyond the blocks, trailing bytes. */
    struct tsdb__chunk_iter it;
    assert_int_equal(tsdb__chunk_iter_init(&it, c.buf, 3, 0, 0), TSDB__ETRUNC);
    uint8_t *copy = xmalloc(c.len + 1);
    memcpy(copy, c.buf, c.len);
    copy[0] = 9;
    assert_int_equal(tsdb__chunk_iter_init(&it, copy, c.len, 0, 0), TSDB__ECORRUPT);
    copy[0] = TSDB_CHUNK_VERSION;
    copy[1]++;
    int64_t t;
    double x;
    int r;
    assert_int_equal(tsdb__chunk_iter_init(&it, copy, c.len, INT64_MIN, INT64_MAX), 0);
    while ((r = tsdb__chunk_iter_next(&it, &t, &x)) > 0)
        ;
    assert_true(r < 0);
    assert_int_equal(tsdb__chunk_iter_next(&it, &t, &x), r); /* sticky */
    copy[1]--;
    copy[c.len] = 0;
    assert_int_equal(tsdb__chunk_iter_init(&it, copy, c.len + 1, INT64_MIN, INT64_MAX), 0);
    while ((r = tsdb__chunk_iter_next(&it, &t, &x)) > 0)
        ;
    assert_int_equal(r, TSDB__ECORRUPT);
    free(copy);

    /* An empty chunk iterates to nothing. */
    struct tsdb__chunk e;
    tsdb__chunk_init(&e);
    assert_int_equal(tsdb__chunk_iter_init(&it, e.buf, e.len, INT64_MIN, INT64_MAX), 0);
    assert_int_equal(tsdb__chunk_iter_next(&it, &t, &x), 0);
    tsdb__chunk_release(&e);
    tsdb__chunk_release(&c);
}

static void test_chunk_append_errors(void **state)
{
    (void)state;
    int64_t ts[TSDB_BLOCK_MAX + 1];
    double v[TSDB_BLOCK_MAX + 1];
    regular_ts(ts, TSDB_BLOCK_MAX + 1, T0, 1000);
    for (size_t i = 0; i <= TSDB_BLOCK_MAX; i++)
        v[i] = 1;
    struct tsdb__chunk c;
    tsdb__chunk_init(&c);
    assert_int_equal(tsdb__chunk_append(&c, ts, v, 0), TSDB__EINVAL);
    assert_int_equal(tsdb__chunk_append(&c, ts, v, TSDB_BLOCK_MAX + 1), TSDB__EINVAL);
    assert_int_equal(tsdb__chunk_append(&c, ts, v, 10), 0);
    size_t len = c.len;
    assert_int_equal(tsdb__chunk_append(&c, ts + 9, v, 5), TSDB__EORDER); /* overlaps */
    int64_t bad[2] = {T0 + 20000, T0 + 20000};
    assert_int_equal(tsdb__chunk_append(&c, bad, v, 2), TSDB__EORDER);
    assert_int_equal(c.len, len);
    assert_int_equal(c.nsamples, 10);
    /*
     * Steps all equal to the last one (the encoder's steady case) are in
     * order only while they are positive and do not wrap past INT64_MAX:
     * a steady block of zero steps, and one whose steps are the context's
     * but whose last time wraps, are refused; one that ends at INT64_MAX
     * exactly is taken.
     */
    int64_t same[3] = {T0 + 10000, T0 + 10000, T0 + 10000};
    assert_int_equal(tsdb__chunk_append(&c, same, v, 3), TSDB__EORDER);
    tsdb__chunk_release(&c);
    int64_t step = INT64_MAX / 4; /* INT64_MAX = 4 * step + 3 */
    int64_t edge[2] = {3, step + 3};
    tsdb__chunk_init(&c);
    assert_int_equal(tsdb__chunk_append(&c, edge, v, 2), 0); /* the context's step is step */
    int64_t wrap[4];
    for (int i = 0; i < 4; i++)
        wrap[i] = (int64_t)((uint64_t)edge[1] + (uint64_t)(i + 1) * (uint64_t)step);
    assert_true(wrap[2] == INT64_MAX && wrap[3] < wrap[2]); /* the fourth wraps */
    assert_int_equal(tsdb__chunk_append(&c, wrap, v, 4), TSDB__EORDER);
    assert_int_equal(c.nsamples, 2);
    assert_int_equal(tsdb__chunk_append(&c, wrap, v, 3), 0);
    assert_int_equal(c.maxt, INT64_MAX);
    tsdb__chunk_release(&c);

    /* Fill with incompressible samples until the chunk refuses. */
    tsdb__chunk_init(&c);
    int64_t t = 0;
    int r = 0;
    size_t total = 0;
    while (r == 0) {
        for (size_t i = 0; i < TSDB_BLOCK_MAX; i++) {
            ts[i] = t += 1 + (int64_t)(rnd() & 0xffffffff);
            v[i] = from_bits(rnd());
        }
        r = tsdb__chunk_append(&c, ts, v, TSDB_BLOCK_MAX);
        if (r == 0)
            total += TSDB_BLOCK_MAX;
    }
    assert_int_equal(r, TSDB__EFULL);
    assert_true(c.len <= TSDB_CHUNK_MAX_BYTES);
    assert_int_equal(c.nsamples, total);
    struct tsdb__chunk_iter it;
    assert_int_equal(tsdb__chunk_iter_init(&it, c.buf, c.len, INT64_MIN, INT64_MAX), 0);
    int64_t tt;
    double x;
    size_t got = 0;
    while ((r = tsdb__chunk_iter_next(&it, &tt, &x)) > 0)
        got++;
    assert_int_equal(r, 0);
    assert_int_equal(got, total);
    tsdb__chunk_release(&c);
}

/* Decode a chunk's bytes to the end; returns samples or a negative error. */
static long drain(const uint8_t *buf, size_t len)
{
    struct tsdb__chunk_iter it;
    int r = tsdb__chunk_iter_init(&it, buf, len, INT64_MIN, INT64_MAX);
    if (r)
        return r;
    int64_t t, last = INT64_MIN;
    double x;
    long n = 0;
    while ((r = tsdb__chunk_iter_next(&it, &t, &x)) > 0) {
        assert_true(n == 0 || t > last); /* decoders only ever give increasing times */
        last = t;
        n++;
    }
    return r < 0 ? r : n;
}

static void test_corrupt_input(void **state)
{
    (void)state;
    int64_t ts[200];
    double v[200];
    int64_t t = T0;
    for (size_t i = 0; i < 200; i++) {
        ts[i] = t += i % 50 < 25 ? 1000 : 1 + (int64_t)(rnd() % 5000);
        switch ((i / 20) % 5) {
        case 0:
            v[i] = 5;
            break;
        case 1:
            v[i] = (double)(1000 + i * (rnd() % 9)) / 100;
            break;
        case 2:
            v[i] = from_bits(rnd());
            break;
        case 3:
            v[i] = from_bits(STALE_NAN);
            break;
        default:
            v[i] = (double)(rnd() % 4096) * 1024;
            break;
        }
    }
    struct tsdb__chunk c;
    build(&c, ts, v, 200, 32);
    assert_int_equal(drain(c.buf, c.len), 200);

    /* Every truncation: an error, never samples beyond what fits. */
    uint8_t *copy = xmalloc(c.len);
    for (size_t len = 0; len < c.len; len++) {
        /* A heap copy of exactly len bytes, so ASan sees any overread. */
        uint8_t *exact = xmalloc(len ? len : 1);
        memcpy(exact, c.buf, len);
        assert_true(drain(exact, len) < 0);
        free(exact);
    }
    /* Every single bit flipped: an error or some samples, no crash. */
    for (size_t bit = 0; bit < c.len * 8; bit++) {
        memcpy(copy, c.buf, c.len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(drain(copy, c.len) <= 200);
    }
    /* Random byte runs written over the blocks. */
    for (int round = 0; round < 2000; round++) {
        memcpy(copy, c.buf, c.len);
        size_t at = TSDB_CHUNK_HEADER + rnd() % (c.len - TSDB_CHUNK_HEADER);
        size_t k = 1 + rnd() % 16;
        for (size_t i = at; i < at + k && i < c.len; i++)
            copy[i] = (uint8_t)rnd();
        (void)drain(copy, c.len);
    }
    free(copy);
    tsdb__chunk_release(&c);

    /* Pure garbage blocks, with and without a context. */
    uint8_t junk[64];
    int64_t ots[TSDB_BLOCK_MAX];
    double ov[TSDB_BLOCK_MAX];
    for (int round = 0; round < 20000; round++) {
        size_t len = rnd() % sizeof(junk);
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rnd();
        struct tsdb__block_ctx ctx;
        tsdb__block_ctx_init(&ctx);
        if (round % 2) {
            ctx.valid = 1;
            ctx.ts = (int64_t)rnd();
            ctx.delta = (int64_t)(rnd() % 2000);
            ctx.v = rnd() % 3 ? to_bits((double)(rnd() % 1000) / 10) : rnd();
        }
        uint8_t *exact = xmalloc(len ? len : 1);
        memcpy(exact, junk, len);
        size_t n = 0, used = 0;
        int r = tsdb__block_decode(&ctx, exact, len, ots, ov, TSDB_BLOCK_MAX, &n, &used);
        if (r == 0) {
            assert_true(n >= 1 && n <= TSDB_BLOCK_MAX);
            assert_true(used <= len);
            for (size_t i = 1; i < n; i++)
                assert_true(ots[i] > ots[i - 1]);
        }
        free(exact);
    }
}

/* A small output array is refused up front, not overrun. */
static void test_decode_space(void **state)
{
    (void)state;
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
    regular_ts(ts, TSDB_BLOCK_MAX, T0, 1000);
    for (size_t i = 0; i < TSDB_BLOCK_MAX; i++)
        v[i] = (double)i;
    uint8_t buf[TSDB_BLOCK_BOUND(TSDB_BLOCK_MAX)];
    struct tsdb__block_ctx ctx, dctx;
    tsdb__block_ctx_init(&ctx);
    size_t len = tsdb__block_encode(&ctx, ts, v, 20, buf, sizeof(buf));
    assert_true(len > 0);
    int64_t ots[19];
    double ov[19];
    size_t n, used;
    tsdb__block_ctx_init(&dctx);
    assert_int_equal(tsdb__block_decode(&dctx, buf, len, ots, ov, 19, &n, &used), TSDB__ESPACE);
    assert_false(dctx.valid);
    int64_t ots2[20];
    double ov2[20];
    assert_int_equal(tsdb__block_decode(&dctx, buf, len, ots2, ov2, 20, &n, &used), 0);
    assert_int_equal(n, 20);
    assert_int_equal(used, len);
    same_ctx(&dctx, &ctx);
    assert_string_equal(tsdb__strerror(TSDB__ECORRUPT), "corrupt encoding");
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(tsdb__crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(tsdb__crc32c_sw(0, "123456789", 9), 0xe3069283u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(tsdb__crc32c(0, zeros, 32), 0x8a9136aau); /* RFC 3720 B.4 */
    assert_int_equal(tsdb__crc32c(0, ones, 32), 0x62a8ab43u);
    assert_int_equal(tsdb__crc32c(0, NULL, 0), 0);
    /* Up to 100 KB: long inputs take the 3-stream path (see crc32c.c). */
    size_t len = 100000;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rnd();
    for (int round = 0; round < 500; round++) {
        size_t lim = round % 2 ? 1000 : len;
        size_t off = rnd() % 16, n = rnd() % (lim - off), cut = n ? rnd() % n : 0;
        uint32_t whole = tsdb__crc32c(0, buf + off, n);
        assert_int_equal(whole, tsdb__crc32c_sw(0, buf + off, n));
        assert_int_equal(whole,
                         tsdb__crc32c(tsdb__crc32c(0, buf + off, cut), buf + off + cut, n - cut));
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_and_counters),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_compact_methods),
        cmocka_unit_test(test_context_repeats),
        cmocka_unit_test(test_decimal_modes_and_outliers),
        cmocka_unit_test(test_bound_and_cap),
        cmocka_unit_test(test_chunk_iter_range),
        cmocka_unit_test(test_chunk_append_errors),
        cmocka_unit_test(test_corrupt_input),
        cmocka_unit_test(test_decode_space),
        cmocka_unit_test(test_crc32c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
