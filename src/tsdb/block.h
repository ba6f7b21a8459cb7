/*
 * block.h: immutable on-disk blocks of the store (private to src/tsdb/). A
 * block holds the closed chunks of every series over one time window
 * [mint, maxt), in a directory <dir>/b-<mint>-<maxt>/ with two files:
 * `chunks` (the chunk bytes, each with its own CRC32C) and `index` (the
 * label sets, the chunk list of each series, one CRC32C over the file).
 * The byte layout is documented at the top of block.c.
 *
 * Writing: tsdb__block_write() builds the block under a temporary name
 * <dir>/tmp-b-<mint>-<maxt>, fsyncs the files and the directory, then
 * renames it into place, so a crash never leaves a half block under a
 * final name. tsdb__blocks_scan() deletes such leftovers and lists blocks.
 *
 * Reading: tsdb__block_open() maps both files read-only. The index is
 * verified as a whole at open (a bad index fails the open); each chunk is
 * verified the first time it is read: a bad one is logged once per open
 * block and skipped, everything else is still served. No offset or length
 * taken from the files is trusted: the reader never touches a byte outside
 * the mapping. (A file truncated by someone else *after* the open would
 * still raise SIGBUS on access; blocks are immutable, so the store must not
 * do that.)
 *
 * Threads: an open block is immutable except for the per-chunk "checked"
 * state, which is atomic; any number of threads may read one block
 * concurrently. Errors: -1 with a one-line message in err[0..errlen).
 */
#ifndef SITREP_TSDB_BLOCK_H
#define SITREP_TSDB_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/chunk.h"
#include "tsdb/index.h"

/*
 * Columns: a series' chunks form up to TSDB_BLOCK_MAX_COLS sequences. Raw
 * blocks use column 0 only; downsampled tiers store one aggregate per column
 * (0 min, 1 max, 2 sum, 3 count, 4 last).
 */
#define TSDB_BLOCK_MAX_COLS 8

/* One encoded chunk (the bytes of a struct tsdb__chunk), its time range and column. */
struct tsdb__block_chunk {
    const uint8_t *buf;
    size_t len;         /* TSDB_CHUNK_HEADER <= len <= TSDB_CHUNK_MAX_BYTES */
    int64_t mint, maxt; /* first and last timestamp in the chunk */
    uint8_t col;        /* < TSDB_BLOCK_MAX_COLS */
    uint32_t num;       /* block-wide chunk number (from tsdb__block_iter_next) */
};

/* The chunk view of a closed head chunk (c->nsamples > 0), in column 0. */
static inline struct tsdb__block_chunk tsdb__block_chunk_of(const struct tsdb__chunk *c)
{
    struct tsdb__block_chunk r = {.buf = c->buf, .len = c->len, .mint = c->mint, .maxt = c->maxt};
    return r;
}

/*
 * One series as the writer takes it: its labels sorted by name (bytewise,
 * no name twice, at least one, at most TSDB_MAX_LABELS_LIMIT) and its
 * chunks sorted by (col, mint): within a column oldest first, not
 * overlapping (each mint above the previous maxt); columns may overlap in
 * time. All inside the block's window. Everything is borrowed for the call.
 */
struct tsdb__block_series {
    const struct tsdb__label *labels;
    size_t nlabels;
    const struct tsdb__block_chunk *chunks;
    size_t nchunks;
};

/*
 * Write series[0..n) (in any order; the block stores them sorted by label
 * set) as the block <dir>/b-<mint>-<maxt> (dir must exist, mint < maxt).
 * Returns 0 once the block is durable under its final name, or -1 with err
 * filled: bad input (unsorted labels, the same label set twice, a chunk
 * outside [mint, maxt), out of order or of a column >= TSDB_BLOCK_MAX_COLS),
 * a block of that window already
 * present, or an I/O error with its errno text. On failure nothing is left
 * behind (the temporary directory is removed, also on ENOSPC) and errno
 * holds the cause (EINVAL for bad input).
 */
int tsdb__block_write(const char *dir, int64_t mint, int64_t maxt,
                      const struct tsdb__block_series *series, size_t n, char *err, size_t errlen);

/*
 * The same encoding into memory, for tests and the fuzzer: *index and
 * *chunks are allocated (caller frees) with the exact file contents.
 * Returns 0, or -1 with err filled for bad input.
 */
int tsdb__block_encode_mem(int64_t mint, int64_t maxt, const struct tsdb__block_series *series,
                           size_t n, uint8_t **index, size_t *index_len, uint8_t **chunks,
                           size_t *chunks_len, char *err, size_t errlen);

/* A block directory found by tsdb__blocks_scan(). */
struct tsdb__block_name {
    int64_t mint, maxt;
    char name[48]; /* "b-<mint>-<maxt>" */
};

/*
 * In dir: delete every tmp-* directory (a write that did not finish) and
 * list the b-<mint>-<maxt> directories into *out (allocated, caller frees),
 * sorted by mint then maxt. Returns 0 (an absent dir is empty), or -1 with
 * err filled if dir cannot be read. A leftover that cannot be removed is
 * logged, not fatal.
 */
int tsdb__blocks_scan(const char *dir, struct tsdb__block_name **out, size_t *n, char *err,
                      size_t errlen);

/* Format "b-<mint>-<maxt>" into buf (cap >= sizeof(struct tsdb__block_name).name). */
void tsdb__block_dirname(char *buf, size_t cap, int64_t mint, int64_t maxt);

struct tsdb__block;

/*
 * Open the block directory path (as written by tsdb__block_write). Returns
 * 0 and *out, or -1 with err naming the file at fault: a missing or
 * unreadable file, a bad magic, an index whose checksum does not match, or
 * an index that is structurally invalid.
 */
int tsdb__block_open(struct tsdb__block **out, const char *path, char *err, size_t errlen);

/*
 * The same over two buffers holding the files' contents (borrowed: they
 * must outlive the block). name is used in messages as the block's path.
 */
int tsdb__block_open_mem(struct tsdb__block **out, const uint8_t *index, size_t index_len,
                         const uint8_t *chunks, size_t chunks_len, const char *name, char *err,
                         size_t errlen);

/* Unmap and free. NULL is fine. No iterator may be in use. */
void tsdb__block_close(struct tsdb__block *b);

/* The block's window [mint, maxt), as recorded in its index. */
int64_t tsdb__block_mint(const struct tsdb__block *b);
int64_t tsdb__block_maxt(const struct tsdb__block *b);

/* Number of series; they are numbered 0..n-1 in label-set order. */
uint32_t tsdb__block_series_count(const struct tsdb__block *b);

/*
 * The labels of series i, sorted by name, into out[0..cap). The strings
 * point into the block's mapping (NUL-terminated) and stay valid until
 * tsdb__block_close(). Returns their number (>= 1), or -1 if i is out of
 * range or cap is too small (cap >= TSDB_MAX_LABELS_LIMIT always suffices).
 */
int tsdb__block_labels(const struct tsdb__block *b, uint32_t i, struct tsdb__label *out,
                       size_t cap);

/* Chunks that failed verification so far (each counted and logged once). */
uint64_t tsdb__block_bad_chunks(const struct tsdb__block *b);

/* The size of the block's two files (index + chunks), in bytes. */
size_t tsdb__block_bytes(const struct tsdb__block *b);

/*
 * The chunks of series i overlapping [mint, maxt] in column col (0 ..
 * TSDB_BLOCK_MAX_COLS-1), oldest first; col -1 gives every column's, in
 * stored order (by column, then oldest first). Usage:
 *
 *     struct tsdb__block_iter it;
 *     struct tsdb__block_chunk c;
 *     tsdb__block_iter_init(&it, b, i, 0, mint, maxt);
 *     while (tsdb__block_iter_next(&it, &c))
 *         ... c.buf[0..c.len) is a verified chunk (tsdb__chunk_iter_init)
 *
 * A chunk whose bytes do not verify is skipped (logged once per block). An
 * out-of-range i or col gives no chunks. The iterator borrows the block.
 */
struct tsdb__block_iter {
    struct tsdb__block *b;
    const uint8_t *p, *end; /* the series' chunk list in the index */
    uint32_t left;          /* entries not yet read */
    uint32_t chunk;         /* block-wide number of the next entry */
    uint64_t off;           /* where the next entry's record starts in the chunks file */
    uint32_t series;
    int col; /* -1: every column */
    int64_t mint, maxt;
};

void tsdb__block_iter_init(struct tsdb__block_iter *it, struct tsdb__block *b, uint32_t i, int col,
                           int64_t mint, int64_t maxt);
/* 1 with the next chunk in *c, or 0 at the end. */
int tsdb__block_iter_next(struct tsdb__block_iter *it, struct tsdb__block_chunk *c);

/*
 * A seek point of chunk num (a tsdb__chunk_iter's `last`) kept for the next
 * reader: a small bounded cache per block, safe for concurrent queries.
 * get returns 1 with *out when one is known.
 */
int tsdb__block_seek_get(struct tsdb__block *b, uint32_t num, struct tsdb__chunk_seek *out);
void tsdb__block_seek_put(struct tsdb__block *b, uint32_t num, const struct tsdb__chunk_seek *p);

/*
 * Write the block <dir>/b-<mint>-<maxt> holding every series of in[0..n)
 * (open blocks, each window inside [mint, maxt), windows not overlapping,
 * given oldest first): series are matched by label set and their chunks
 * concatenated per column (bytes copied as they are, each verified first; a
 * chunk that fails verification is skipped and counted in *bad if bad != NULL).
 * Returns 0 once durable, or -1 with err filled (and nothing left behind).
 *
 * *bad is set (not added to) to the chunks skipped by this call, also those
 * an earlier read of the input had already found bad. errno is EINVAL for
 * inputs that break the window rules, else as for tsdb__block_write(). The
 * inputs are only read (per-chunk verdicts are kept, as by an iterator);
 * memory is proportional to the number of series and chunk entries, never
 * to the chunks' bytes. n == 0 writes an empty block.
 */
int tsdb__block_merge(const char *dir, int64_t mint, int64_t maxt, struct tsdb__block *const *in,
                      size_t n, uint64_t *bad, char *err, size_t errlen);

#endif
