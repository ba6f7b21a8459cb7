/*
 * head.h: the in-memory part of the store (private to src/tsdb/): for each
 * series, the newest samples raw (up to one block) and the encoded chunks
 * before them. Series are addressed by the index's dense ids.
 *
 * Locking: 64 mutexes striped by series id guard the series' samples; the
 * series array itself grows under `grow` (a rwlock), so appends and reads
 * of existing series run concurrently.
 */
#ifndef SITREP_TSDB_HEAD_H
#define SITREP_TSDB_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"

/*
 * Chunks are cut at aligned windows of this span (the block size): a chunk
 * holds samples of one window only (or several chunks do, past the byte cap).
 */
#define TSDB_HEAD_CHUNK_SPAN_MS ((int64_t)2 * 3600 * 1000)

struct tsdb__head;

struct tsdb__head *tsdb__head_new(void);
void tsdb__head_free(struct tsdb__head *h);

/*
 * Append one sample to series id (creating its slot on first use). Returns
 * 0, or TSDB__EORDER (from chunk.h) if ts is not after the series' last
 * sample: the sample is refused.
 */
int tsdb__head_append(struct tsdb__head *h, uint32_t id, int64_t ts, double v);

/*
 * Copy the samples of series id with mint <= ts <= maxt into *out (grown as
 * needed, caller frees), oldest first. Returns their number, or a negative
 * TSDB__E* if a chunk proved corrupt (the samples before it are kept).
 */
long tsdb__head_read(struct tsdb__head *h, uint32_t id, int64_t mint, int64_t maxt,
                     struct tsdb_sample **out, size_t *cap);

struct tsdb__chunk;
/* Called for each encoded chunk of a series, oldest first; non-zero stops. */
typedef int (*tsdb__head_chunk_fn)(void *ctx, const struct tsdb__chunk *c);
/*
 * Visit series id's encoded chunks (not its raw tail) under its stripe lock:
 * fn must not call back into the head. Returns fn's last result (0 if all
 * were visited). For cutting blocks, and for tests.
 */
int tsdb__head_chunks(struct tsdb__head *h, uint32_t id, tsdb__head_chunk_fn fn, void *ctx);

/* Bytes of encoded chunks and raw samples held (for the memory figures). */
size_t tsdb__head_bytes(struct tsdb__head *h);

#endif
