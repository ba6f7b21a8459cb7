/*
 * wal_fuzz.c: libFuzzer target for the WAL reader (src/tsdb/wal.c).
 * Two checks per input:
 *   1. The raw bytes as a segment: replay must not crash, every delivered
 *      payload must lie inside the input, and records + damaged bytes can
 *      never add up to more than the input.
 *   2. The bytes cut into payloads, framed as wal.h specifies, then damaged
 *      at one position chosen by the input: replay must return every record
 *      whose bytes were not touched, in order, and nothing else but record
 *      images its resynchronisation may find in payloads after the damage.
 * Built and run by fuzz/run.sh.
 */
#include "tsdb/crc32c.h"
#include "tsdb/wal.h"
#include "util/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IMAGES 256

struct check {
    const uint8_t *lo, *hi; /* the buffer replayed */
    size_t delivered;
    /* for the round trip */
    const uint8_t *const *want;
    const size_t *want_len;
    const int *want_ok;
    size_t nwant, next;
    const uint8_t *dmg_lo, *dmg_hi;                         /* the damaged record's bytes */
    const uint8_t *img_lo[MAX_IMAGES], *img_hi[MAX_IMAGES]; /* record images delivered */
    size_t nimg;
    int *got;
    const size_t *start; /* each expected record's offset in seg */
    const uint8_t *seg;
};

static int on_raw(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    (void)seg;
    (void)type;
    struct check *c = ctx;
    if (p < c->lo || p + len > c->hi)
        abort();
    c->delivered += len + TSDB_WAL_HEADER;
    return 0;
}

/*
 * Resynchronising after damage can find a record image that a payload
 * happened to contain (the input controls payloads; real damage never forges
 * checksums). Reading on from such an image can land inside a later record,
 * be damaged again and find another image: a chain. So a delivered record
 * that does not start where a framed record starts is an image: allowed only
 * after the damage, and everything it covers is swallowed. A delivered
 * record that does start at a framed record's offset must be that record,
 * undamaged, in order.
 */
static int on_framed(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    (void)seg;
    (void)type;
    struct check *c = ctx;
    const uint8_t *hdr = p - TSDB_WAL_HEADER;
    size_t i = 0;
    while (i < c->nwant && c->seg + c->start[i] != hdr)
        i++;
    if (i == c->nwant) {
        if (!c->dmg_lo || hdr < c->dmg_lo || c->nimg == MAX_IMAGES)
            abort(); /* an image with no damage before it */
        c->img_lo[c->nimg] = hdr;
        c->img_hi[c->nimg++] = p + len;
        return 0;
    }
    if (!c->want_ok[i] || i < c->next || len != c->want_len[i] || memcmp(p, c->want[i], len) != 0)
        abort();
    c->next = i + 1;
    c->got[i] = 1;
    return 0;
}

/* Whether a record image delivered covers offset q (the record there was swallowed). */
static int swallowed(const struct check *c, const uint8_t *q)
{
    for (size_t k = 0; k < c->nimg; k++)
        if (q >= c->img_lo[k] && q < c->img_hi[k])
            return 1;
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_set_level(LOG_ERROR);
    struct tsdb__wal_stats st;
    memset(&st, 0, sizeof(st));
    struct check c = {.lo = data, .hi = data + size};
    tsdb__wal_replay_buf("fuzz", 1, data, size, on_raw, &c, &st);
    if (c.delivered + st.corrupt_bytes > size)
        abort();

    /* Round trip: payload lengths from the input's bytes, framed by hand. */
    if (size < 2)
        return 0;
    size_t flip = ((size_t)data[0] << 8 | data[1]);
    const uint8_t *in = data + 2;
    size_t left = size - 2;
    enum { MAXR = 64 };
    const uint8_t *want[MAXR];
    size_t want_len[MAXR], start[MAXR];
    int want_ok[MAXR], delivered[MAXR] = {0};
    size_t n = 0, total = 8;
    uint8_t *seg = malloc(8 + left + MAXR * TSDB_WAL_HEADER);
    memcpy(seg, "SITRWAL1", 8);
    while (left && n < MAXR) {
        size_t len = in[0] % 64;
        in++;
        left--;
        if (len > left)
            len = left;
        uint8_t *h = seg + total;
        h[0] = 'S';
        h[1] = 'R';
        h[2] = (uint8_t)n;
        h[3] = 0;
        put32(h + 4, (uint32_t)len);
        memcpy(h + TSDB_WAL_HEADER, in, len);
        put32(h + 8, tsdb__crc32c(tsdb__crc32c(0, h + 2, 6), in, len));
        want[n] = in;
        want_len[n] = len;
        start[n] = total;
        total += TSDB_WAL_HEADER + len;
        in += len;
        left -= len;
        n++;
    }
    flip %= total + 1; /* total: no damage */
    const uint8_t *dmg_lo = NULL, *dmg_hi = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t end = start[i] + TSDB_WAL_HEADER + want_len[i];
        want_ok[i] = !(flip >= start[i] && flip < end);
        if (!want_ok[i]) {
            dmg_lo = seg + start[i];
            dmg_hi = seg + end;
        }
    }
    if (flip < total)
        seg[flip] ^= 0x20;
    struct check f = {.want = want,
                      .want_len = want_len,
                      .want_ok = want_ok,
                      .nwant = n,
                      .dmg_lo = dmg_lo,
                      .dmg_hi = dmg_hi,
                      .got = delivered,
                      .start = start,
                      .seg = seg};
    memset(&st, 0, sizeof(st));
    tsdb__wal_replay_buf("fuzz-framed", 1, seg, total, on_framed, &f, &st);
    /* Every undamaged record came back, but for any a record image swallowed. */
    for (size_t i = 0; i < n; i++)
        if (want_ok[i] && !delivered[i] && !swallowed(&f, seg + start[i]))
            abort();
    free(seg);
    return 0;
}
