/*
 * block_fuzz.c: libFuzzer target for the block reader and writer
 * (src/tsdb/block.c), through tsdb__block_open_mem(). Two checks per input:
 *   1. The input split into an index and a chunks file (optionally with a
 *      valid magic and index checksum patched in, so the parser behind them
 *      is reached): open must fail cleanly or serve labels and chunks that
 *      lie inside the buffers, in (column, time) order, the same per
 *      column as over every column, and iterating and decoding everything
 *      must not crash.
 *   2. Series and chunks (in several columns) generated from the input,
 *      encoded with tsdb__block_encode_mem(), read back: every chunk must
 *      come back in its column and every sample bit for bit. Then one byte chosen by the input is
 * flipped: in the index, the open must fail; in the chunks file, exactly the chunk whose record
 *      holds the byte is skipped and every other chunk is served unchanged.
 * Built and run by fuzz/run.sh.
 */
#include "tsdb/block.h"
#include "tsdb/crc32c.h"
#include "util/log.h"
#include "util/util.h"
#include "fuzz_cursor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_SERIES  8
#define MAX_CHUNKS  4
#define MAX_SAMPLES 80

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static int inside(const uint8_t *p, size_t n, const uint8_t *lo, size_t len)
{
    return p >= lo && n <= len && (size_t)(p - lo) <= len - n;
}

/*
 * Read everything b serves; labels and chunks must lie in the buffers, and
 * each column's chunks must be the same alone as among every column's.
 */
static void read_all(struct tsdb__block *b, const uint8_t *idx, size_t ilen, const uint8_t *chk,
                     size_t clen, int64_t mint, int64_t maxt)
{
    struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
    for (uint32_t i = 0; i < tsdb__block_series_count(b); i++) {
        int n = tsdb__block_labels(b, i, ls, ARRAY_SIZE(ls));
        CHECK(n >= 1);
        for (int l = 0; l < n; l++) {
            CHECK(inside((const uint8_t *)ls[l].name, strlen(ls[l].name) + 1, idx, ilen));
            CHECK(inside((const uint8_t *)ls[l].value, strlen(ls[l].value) + 1, idx, ilen));
        }
        struct tsdb__block_iter it;
        struct tsdb__block_chunk c;
        tsdb__block_iter_init(&it, b, i, -1, mint, maxt);
        int64_t last = INT64_MIN;
        int first = 1, col = 0;
        size_t per_col[TSDB_BLOCK_MAX_COLS] = {0};
        while (tsdb__block_iter_next(&it, &c)) {
            CHECK(inside(c.buf, c.len, chk, clen));
            CHECK(c.col < TSDB_BLOCK_MAX_COLS && c.col >= col);
            CHECK(c.mint <= c.maxt && (first || c.col > col || c.mint > last));
            CHECK(c.maxt >= mint && c.mint <= maxt);
            last = c.maxt;
            first = 0;
            col = c.col;
            per_col[col]++;
            struct tsdb__chunk_iter ci;
            int64_t t;
            double v;
            if (tsdb__chunk_iter_init(&ci, c.buf, c.len, mint, maxt) == 0)
                while (tsdb__chunk_iter_next(&ci, &t, &v) > 0)
                    CHECK(t >= mint && t <= maxt);
        }
        for (int k = 0; k < TSDB_BLOCK_MAX_COLS; k++) {
            size_t got = 0;
            tsdb__block_iter_init(&it, b, i, k, mint, maxt);
            while (tsdb__block_iter_next(&it, &c)) {
                CHECK(c.col == k && inside(c.buf, c.len, chk, clen));
                got++;
            }
            CHECK(got == per_col[k]);
        }
    }
}

static void raw(const uint8_t *data, size_t size)
{
    struct cursor c = {data, size};
    unsigned mode = (unsigned)take(&c, 1);
    size_t cut = (size_t)take(&c, 2);
    if (cut > c.left)
        cut = c.left;
    size_t ilen = cut, clen = c.left - cut;
    uint8_t *idx = xmalloc(ilen + 1), *chk = xmalloc(clen + 1);
    memcpy(idx, c.p, ilen);
    memcpy(chk, c.p + cut, clen);
    if ((mode & 1) && ilen >= 9) {
        memcpy(idx, "SITRBIX1", 8);
        idx[8] = 3; /* the index version */
    }
    if ((mode & 2) && clen >= 8)
        memcpy(chk, "SITRBCH2", 8);
    if ((mode & 4) && ilen >= 4) {
        uint32_t crc = tsdb__crc32c(0, idx, ilen - 4);
        for (int i = 0; i < 4; i++)
            idx[ilen - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    struct tsdb__block *b;
    char err[256];
    if (tsdb__block_open_mem(&b, idx, ilen, chk, clen, "fuzz", err, sizeof(err)) == 0) {
        read_all(b, idx, ilen, chk, clen, INT64_MIN, INT64_MAX);
        int64_t lo = (int64_t)take(&c, 8), hi = (int64_t)take(&c, 8);
        read_all(b, idx, ilen, chk, clen, lo, hi);
        tsdb__block_close(b);
    } else {
        CHECK(strstr(err, "fuzz/index") || strstr(err, "fuzz/chunks"));
    }
    free(idx);
    free(chk);
}

struct gen {
    char strs[MAX_SERIES][3][8];
    struct tsdb__label labels[MAX_SERIES][3];
    struct tsdb__chunk chunks[MAX_SERIES][MAX_CHUNKS];
    struct tsdb__block_chunk refs[MAX_SERIES][MAX_CHUNKS];
    struct tsdb__block_series series[MAX_SERIES];
    int64_t ts[MAX_SERIES][MAX_CHUNKS][MAX_SAMPLES];
    double v[MAX_SERIES][MAX_CHUNKS][MAX_SAMPLES];
    size_t n[MAX_SERIES][MAX_CHUNKS];
};

/* What a clean open served of one chunk: for comparison after damage. */
struct seen {
    size_t off, len; /* its record in the chunks file: len bytes, then a u32 CRC */
    int64_t mint;
    int col; /* with mint, names the chunk */
};

static void roundtrip(const uint8_t *data, size_t size)
{
    static struct gen g;
    static struct seen seen[MAX_SERIES][MAX_CHUNKS];
    static size_t nseen[MAX_SERIES];
    struct cursor c = {data, size};
    size_t ns = take(&c, 1) % (MAX_SERIES + 1);
    int64_t t = (int64_t)(take(&c, 6) << 16) >> 16; /* 48-bit signed start */
    int64_t bmint = t - (int64_t)take(&c, 1), bmaxt = bmint + 1;
    memset(g.n, 0, sizeof(g.n));
    for (size_t i = 0; i < ns; i++) {
        /* {a="<x>", id="<i>", z="<y>"} with a and z optional: distinct by id. */
        size_t nl = 0;
        unsigned shape = (unsigned)take(&c, 1);
        if (shape & 1) {
            snprintf(g.strs[i][nl], 8, "%u", (shape >> 2) & 3);
            g.labels[i][nl] = (struct tsdb__label){"a", g.strs[i][nl]};
            nl++;
        }
        snprintf(g.strs[i][nl], 8, "%zu", i);
        g.labels[i][nl] = (struct tsdb__label){"id", g.strs[i][nl]};
        nl++;
        if (shape & 2) {
            snprintf(g.strs[i][nl], 8, "%u", (shape >> 4) & 3);
            g.labels[i][nl] = (struct tsdb__label){"z", g.strs[i][nl]};
            nl++;
        }
        size_t nc = take(&c, 1) % (MAX_CHUNKS + 1);
        int64_t s = t;
        unsigned col = 0;
        for (size_t k = 0; k < nc; k++) {
            unsigned step = (unsigned)take(&c, 1) % 4; /* a later column restarts the clock */
            if (k && step && col + step < TSDB_BLOCK_MAX_COLS) {
                col += step;
                s = t;
            }
            size_t n = 1 + take(&c, 1) % MAX_SAMPLES;
            tsdb__chunk_init(&g.chunks[i][k]);
            for (size_t j = 0; j < n; j++) {
                s += 1 + (int64_t)take(&c, 1);
                g.ts[i][k][j] = s;
                uint64_t u = take(&c, 1) & 1 ? take(&c, 8) : bits((double)(j + take(&c, 1)));
                memcpy(&g.v[i][k][j], &u, 8);
            }
            for (size_t j = 0; j < n; j += TSDB_BLOCK_MAX) {
                size_t m = n - j < TSDB_BLOCK_MAX ? n - j : TSDB_BLOCK_MAX;
                CHECK(tsdb__chunk_append(&g.chunks[i][k], &g.ts[i][k][j], &g.v[i][k][j], m) == 0);
            }
            g.n[i][k] = n;
            g.refs[i][k] = tsdb__block_chunk_of(&g.chunks[i][k]);
            g.refs[i][k].col = (uint8_t)col;
            s += (int64_t)take(&c, 1); /* a gap before the next chunk */
            if (s >= bmaxt)
                bmaxt = s + 1;
        }
        g.series[i] = (struct tsdb__block_series){g.labels[i], nl, g.refs[i], nc};
    }

    uint8_t *idx, *chk;
    size_t ilen, clen;
    char err[256];
    CHECK(tsdb__block_encode_mem(bmint, bmaxt, g.series, ns, &idx, &ilen, &chk, &clen, err,
                                 sizeof(err)) == 0);
    struct tsdb__block *b;
    CHECK(tsdb__block_open_mem(&b, idx, ilen, chk, clen, "rt", err, sizeof(err)) == 0);
    CHECK(tsdb__block_series_count(b) == ns);
    for (uint32_t i = 0; i < ns; i++) {
        struct tsdb__label ls[3];
        int nl = tsdb__block_labels(b, i, ls, 3);
        size_t src = MAX_SERIES;
        for (int l = 0; l < nl; l++)
            if (strcmp(ls[l].name, "id") == 0)
                src = (size_t)atoi(ls[l].value);
        CHECK(src < ns && (size_t)nl == g.series[src].nlabels);
        for (int l = 0; l < nl; l++)
            CHECK(!strcmp(ls[l].name, g.labels[src][l].name) &&
                  !strcmp(ls[l].value, g.labels[src][l].value));
        struct tsdb__block_iter it;
        struct tsdb__block_chunk ch;
        tsdb__block_iter_init(&it, b, i, -1, INT64_MIN, INT64_MAX);
        size_t k = 0;
        nseen[i] = 0;
        while (tsdb__block_iter_next(&it, &ch)) {
            CHECK(k < g.series[src].nchunks && ch.col == g.refs[src][k].col);
            CHECK(ch.len == g.chunks[src][k].len && !memcmp(ch.buf, g.chunks[src][k].buf, ch.len));
            CHECK(ch.mint == g.ts[src][k][0] && ch.maxt == g.ts[src][k][g.n[src][k] - 1]);
            struct tsdb__chunk_iter ci;
            CHECK(tsdb__chunk_iter_init(&ci, ch.buf, ch.len, INT64_MIN, INT64_MAX) == 0);
            int64_t tt;
            double vv;
            size_t j = 0;
            int r;
            while ((r = tsdb__chunk_iter_next(&ci, &tt, &vv)) > 0) {
                CHECK(j < g.n[src][k] && tt == g.ts[src][k][j] && bits(vv) == bits(g.v[src][k][j]));
                j++;
            }
            CHECK(r == 0 && j == g.n[src][k]);
            seen[i][nseen[i]++] = (struct seen){(size_t)(ch.buf - chk), ch.len, ch.mint, ch.col};
            k++;
        }
        CHECK(k == g.series[src].nchunks);
        /* One column at a time: that column's chunks, in the same order. */
        for (int col = 0; col < TSDB_BLOCK_MAX_COLS; col++) {
            tsdb__block_iter_init(&it, b, i, col, INT64_MIN, INT64_MAX);
            for (k = 0; k < g.series[src].nchunks; k++)
                if (g.refs[src][k].col == col)
                    CHECK(tsdb__block_iter_next(&it, &ch) && ch.col == col &&
                          ch.buf == chk + seen[i][k].off);
            CHECK(!tsdb__block_iter_next(&it, &ch));
        }
    }
    CHECK(tsdb__block_bad_chunks(b) == 0);
    tsdb__block_close(b);

    /* One flipped byte. */
    size_t pos = (size_t)take(&c, 4) % (ilen + clen);
    uint8_t x = (uint8_t)(take(&c, 1) | 1);
    if (pos < ilen) {
        idx[pos] ^= x;
        CHECK(tsdb__block_open_mem(&b, idx, ilen, chk, clen, "rt", err, sizeof(err)) < 0);
        CHECK(strstr(err, "rt/index"));
    } else if ((pos -= ilen) >= 8) {
        chk[pos] ^= x;
        CHECK(tsdb__block_open_mem(&b, idx, ilen, chk, clen, "rt", err, sizeof(err)) == 0);
        for (uint32_t i = 0; i < ns; i++) {
            struct tsdb__block_iter it;
            struct tsdb__block_chunk ch;
            tsdb__block_iter_init(&it, b, i, -1, INT64_MIN, INT64_MAX);
            int have = tsdb__block_iter_next(&it, &ch);
            for (size_t k = 0; k < nseen[i]; k++) {
                const struct seen *s = &seen[i][k];
                if (pos >= s->off && pos < s->off + s->len + 4) {
                    CHECK(!have || ch.mint != s->mint || ch.col != s->col); /* a CRC catches it */
                    continue;
                }
                CHECK(have && ch.mint == s->mint && ch.col == s->col && ch.len == s->len &&
                      ch.buf == chk + s->off);
                have = tsdb__block_iter_next(&it, &ch);
            }
            CHECK(!have);
        }
        CHECK(tsdb__block_bad_chunks(b) <= 1);
        tsdb__block_close(b);
    }
    free(idx);
    free(chk);
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < g.series[i].nchunks; k++)
            tsdb__chunk_release(&g.chunks[i][k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = 1;
    }
    raw(data, size);
    roundtrip(data, size);
    return 0;
}
