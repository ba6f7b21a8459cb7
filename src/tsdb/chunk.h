/*
 * chunk.h: the sample codec of the time-series store (private to src/tsdb/).
 *
 * A sample is (int64 ms timestamp, float64 value). Values round-trip bit for
 * bit: every NaN payload (the Prometheus stale marker 0x7ff0000000000002),
 * -0.0, infinities and denormals come back exactly as they went in.
 *
 * Two levels:
 *   - a block: 1..TSDB_BLOCK_MAX consecutive samples of one series, encoded
 *     by trying several methods for timestamps and for values and keeping the
 *     smallest. Blocks chain: each is coded relative to the last sample of
 *     the block before it (struct tsdb__block_ctx), which is what lets a
 *     steady block cost about one byte. So a block can only be decoded after
 *     the blocks before it in the same chunk.
 *   - a chunk: a 5-byte header and the blocks of one series over a time
 *     range, built with tsdb__chunk_append() and read with a
 *     tsdb__chunk_iter. When to cut a chunk (time span, size) is the store's
 *     choice; the chunk only enforces TSDB_CHUNK_MAX_BYTES.
 *
 * The byte layout is documented at the top of chunk.c.
 *
 * Errors: functions return 0 or a negative TSDB__E* code; tsdb__strerror()
 * names it. Decoders never read outside the bytes they are given, never loop
 * more than the sample count they validated, and return TSDB__ECORRUPT or
 * TSDB__ETRUNC on bad input.
 */
#ifndef SITREP_TSDB_CHUNK_H
#define SITREP_TSDB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Samples per block (part of the format: a full block stores no count).
 * Measured on 1 s host metrics (bench/chunk_bench.c): 32 -> 64 saves 6-8%
 * of the bytes, 64 -> 128 another 3-4% but doubles the raw head the store
 * keeps per series (16 bytes a sample), which costs more RAM than it saves.
 * Every file must see the same value: override it only to measure.
 */
#ifndef TSDB_BLOCK_MAX
#define TSDB_BLOCK_MAX 64
#endif
/* Bytes one encoded block of n samples can take at most (any input). */
#define TSDB_BLOCK_BOUND(n) (32 + 18 * (size_t)(n))
/* Hard cap on one chunk's bytes; tsdb__chunk_append() refuses to grow past it. */
#define TSDB_CHUNK_MAX_BYTES (1u << 20)
/* Chunk header: format version byte, then the sample count (u32 LE). */
#define TSDB_CHUNK_HEADER  5
#define TSDB_CHUNK_VERSION 2

enum {
    TSDB__ECORRUPT = -1, /* input is not a valid encoding */
    TSDB__ETRUNC = -2,   /* input ends in the middle of a block */
    TSDB__ESPACE = -3,   /* a block holds more samples than the output array */
    TSDB__EORDER = -4,   /* timestamps are not strictly increasing */
    TSDB__EFULL = -5,    /* the chunk would exceed TSDB_CHUNK_MAX_BYTES */
    TSDB__EINVAL = -6,   /* bad argument (n out of range) */
};

/* A static string naming err (one of TSDB__E*). */
const char *tsdb__strerror(int err);

/*
 * What a block is coded against: the last sample of the block before it.
 * Start each chunk with tsdb__block_ctx_init(); encode and decode advance it.
 */
struct tsdb__block_ctx {
    int64_t ts;    /* last timestamp */
    int64_t delta; /* last timestamp step (0 if unknown) */
    uint64_t v;    /* bits of the last value */
    int valid;     /* 0 before the first block */
    uint8_t hdr;   /* the last block's header (methods and full bit), when valid */
    uint8_t dec;   /* the last decimal block's scale and mode, 0 before one */
};

void tsdb__block_ctx_init(struct tsdb__block_ctx *ctx);

/*
 * Encode n samples (1 <= n <= TSDB_BLOCK_MAX) into out[0..cap). Timestamps
 * must be strictly increasing and, if ctx->valid, above ctx->ts. Returns the
 * bytes written and advances *ctx; returns 0 (ctx untouched, out garbage) if
 * n is out of range, the order is wrong, or cap is too small
 * (cap >= TSDB_BLOCK_BOUND(n) always suffices).
 */
size_t tsdb__block_encode(struct tsdb__block_ctx *ctx, const int64_t *ts, const double *v, size_t n,
                          uint8_t *out, size_t cap);

/*
 * Decode one block from in[0..len) into ts[0..cap_n) and v[0..cap_n).
 * Returns 0 with *n_out samples and *consumed bytes (the block's length) and
 * advances *ctx; or a negative TSDB__E* (ctx untouched, ts/v garbage): ETRUNC
 * when the block runs past len, ESPACE when it holds more than cap_n samples,
 * ECORRUPT for anything else malformed, including timestamps that are not
 * strictly increasing.
 */
int tsdb__block_decode(struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len, int64_t *ts,
                       double *v, size_t cap_n, size_t *n_out, size_t *consumed);

/*
 * tsdb__block_decode for a reader that wants only samples at or after from:
 * if the block's last timestamp is before from, every timestamp but only
 * the last value (v[*n_out - 1]) is decoded, the rest of v[] left undefined;
 * ctx advances and errors are detected exactly as in a full decode.
 */
int tsdb__block_decode_from(struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len,
                            int64_t from, int64_t *ts, double *v, size_t cap_n, size_t *n_out,
                            size_t *consumed);

/*
 * Which methods a block used (for tests and benchmarks). ts_method is one of
 * TSDB__TS_*, v_method one of TSDB__V_*. Returns 0 or a negative TSDB__E*.
 */
enum { TSDB__TS_SAME, TSDB__TS_DELTA, TSDB__TS_DOD, TSDB__TS_VARINT };
enum {
    TSDB__V_SAME,
    TSDB__V_CONST,
    TSDB__V_DEC,
    TSDB__V_DEC_DOD,
    TSDB__V_XOR,
    TSDB__V_RAW,
};
int tsdb__block_methods(const struct tsdb__block_ctx *ctx, const uint8_t *in, size_t len,
                        int *ts_method, int *v_method);

/*
 * Every TSDB_SEEK_BLOCKS blocks a chunk remembers where the next block
 * starts and the context to decode it from, keeping the last two such
 * points (in memory only: the bytes do not change). A reader that wants only
 * recent samples starts at the newest point before its range instead of the
 * chunk's first block: rule evaluation reads the last minutes of chunks that
 * hold hours. With 5 blocks, the older point is at least 320 samples back
 * (over 5 minutes at 1 s), so a 5-minute range never decodes from the start.
 */
#define TSDB_SEEK_BLOCKS 5
struct tsdb__chunk_seek {
    uint32_t off;               /* where the next block starts; 0: no point */
    uint32_t before;            /* samples before it */
    struct tsdb__block_ctx ctx; /* the context to decode it from */
};

/*
 * One series' samples over a time range: header + blocks in buf, always a
 * complete, readable chunk. The chunk owns buf (and seek); an append may
 * move buf, so an iterator over c->buf must not outlive the next append.
 * Not locked: the store serialises access.
 *
 * 64 bytes, as the head keeps one or two per series: the encoder's context
 * (tsdb__chunk_ctx) is kept as its parts (valid is nsamples > 0, ts is
 * maxt), and the seek points are allocated with the first of them.
 */
struct tsdb__chunk {
    uint8_t *buf;
    uint32_t len, cap; /* len <= TSDB_CHUNK_MAX_BYTES */
    uint32_t nsamples;
    uint8_t hdr, dec;              /* the encoder context's last header and decimal scale */
    uint8_t since_seek;            /* blocks since the last seek point (< TSDB_SEEK_BLOCKS) */
    int64_t mint, maxt;            /* first and last timestamp; valid when nsamples > 0 */
    int64_t delta;                 /* the encoder context's last step */
    uint64_t v;                    /* the encoder context's last value bits */
    struct tsdb__chunk_seek *seek; /* NULL, or [2] with [0] the newest */
};

/* The encoder's context after the chunk's last block. */
static inline struct tsdb__block_ctx tsdb__chunk_ctx(const struct tsdb__chunk *c)
{
    return (struct tsdb__block_ctx){.ts = c->maxt,
                                    .delta = c->delta,
                                    .v = c->v,
                                    .valid = c->nsamples > 0,
                                    .hdr = c->hdr,
                                    .dec = c->dec};
}

/* The heap bytes a chunk holds (its buffer and seek points). */
static inline size_t tsdb__chunk_bytes(const struct tsdb__chunk *c)
{
    return c->cap + (c->seek ? 2 * sizeof(*c->seek) : 0);
}

/* An empty chunk (header only). Allocates; release with tsdb__chunk_release(). */
void tsdb__chunk_init(struct tsdb__chunk *c);
void tsdb__chunk_release(struct tsdb__chunk *c);

/*
 * Encode n samples (1 <= n <= TSDB_BLOCK_MAX, usually a full block from the
 * head) as one block at the end of the chunk. Returns 0; TSDB__EINVAL for a
 * bad n; TSDB__EORDER if the timestamps are not strictly increasing or not
 * after c->maxt; TSDB__EFULL if the chunk would pass TSDB_CHUNK_MAX_BYTES.
 * On error the chunk is unchanged.
 */
int tsdb__chunk_append(struct tsdb__chunk *c, const int64_t *ts, const double *v, size_t n);

/*
 * Make c a copy of the encoded chunk buf[0..len) (decoded once to check it
 * and to learn its range and encoder state, so appends can continue it).
 * Returns 0, or a negative TSDB__E* (c untouched) if it does not decode or
 * holds no sample.
 */
int tsdb__chunk_load(struct tsdb__chunk *c, const uint8_t *buf, size_t len);

/*
 * Iterate the samples with mint <= ts <= maxt of an encoded chunk (its bytes
 * are borrowed and must outlive the iterator). Usage:
 *
 *     struct tsdb__chunk_iter it;
 *     int r = tsdb__chunk_iter_init(&it, buf, len, mint, maxt);
 *     if (r == 0)
 *         while ((r = tsdb__chunk_iter_next(&it, &t, &v)) > 0)
 *             use(t, v);
 *     if (r < 0) ... corrupt chunk
 */
struct tsdb__chunk_iter {
    const uint8_t *buf;
    size_t len, off;
    uint32_t left; /* samples not yet decoded */
    int64_t mint, maxt;
    struct tsdb__block_ctx ctx;
    size_t i, n;    /* position in the decoded block */
    int done;       /* reached maxt or the last sample */
    int err;        /* sticky TSDB__E* once the chunk proved corrupt */
    uint32_t total; /* the header's sample count */
    /* Where the last block decoded started, a seek point for later reads (off 0: none). */
    struct tsdb__chunk_seek last;
    int64_t ts[TSDB_BLOCK_MAX];
    double v[TSDB_BLOCK_MAX];
};

/* Returns 0, or TSDB__ECORRUPT/TSDB__ETRUNC if the header is bad. */
int tsdb__chunk_iter_init(struct tsdb__chunk_iter *it, const uint8_t *buf, size_t len, int64_t mint,
                          int64_t maxt);
/*
 * The same over a chunk in memory, starting at its newest seek point before
 * mint when it has one (the samples are the same; fewer blocks are decoded).
 * c must not change while the iterator is in use.
 */
int tsdb__chunk_iter_init_chunk(struct tsdb__chunk_iter *it, const struct tsdb__chunk *c,
                                int64_t mint, int64_t maxt);
/*
 * Start a freshly initialised iterator at seek point p of its chunk (one
 * the chunk's own `last` gave, kept by the caller) if p is before the
 * iterator's mint and fits the chunk. Returns 1 if it moved, else 0.
 */
int tsdb__chunk_iter_seek(struct tsdb__chunk_iter *it, const struct tsdb__chunk_seek *p);
/*
 * Returns 1 with the next sample in range, 0 at the end (or once past maxt),
 * or a negative TSDB__E* if the chunk is corrupt (sticky: later calls return
 * it again).
 */
int tsdb__chunk_iter_next(struct tsdb__chunk_iter *it, int64_t *ts, double *v);

#endif
