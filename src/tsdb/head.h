/*
 * head.h: the in-memory part of the store (private to src/tsdb/): for each
 * series, the newest samples raw (up to one encoding block) and the encoded
 * chunks before them. Series are addressed by the index's dense ids.
 *
 * Time is cut into aligned windows of `span` ms (the block size): a chunk
 * holds samples of one window only, so whole chunks can be written into the
 * block of their window and then dropped. Samples older than the head's
 * "min valid" time (the end of the last window cut into a block) are refused.
 *
 * Locking: 64 mutexes striped by series id guard the series' samples; the
 * series array itself grows under `grow` (a rwlock), so appends and reads
 * of existing series run concurrently. A series' struct never moves, so a
 * reference (tsdb__head_ref) stays valid until tsdb__head_renumber or
 * tsdb__head_free.
 */
#ifndef SITREP_TSDB_HEAD_H
#define SITREP_TSDB_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/packed.h"
#include "tsdb/tsdb.h"

/* The default window: chunks and blocks are cut at aligned 2 h windows. */
#define TSDB_HEAD_CHUNK_SPAN_MS ((int64_t)2 * 3600 * 1000)

/* Refusals (besides TSDB__EORDER from chunk.h). */
#define TSDB__EOLD (-7) /* before the head's min valid time (already cut to disk) */

struct tsdb__head;
struct tsdb__head_series;

/* span_ms: the window (0: TSDB_HEAD_CHUNK_SPAN_MS). */
struct tsdb__head *tsdb__head_new(int64_t span_ms);
void tsdb__head_free(struct tsdb__head *h);

/* The aligned window start of ts (floor to a multiple of the span). */
int64_t tsdb__head_window(const struct tsdb__head *h, int64_t ts);
int64_t tsdb__head_span(const struct tsdb__head *h);

/* Samples before t are refused from now on (t only grows). */
void tsdb__head_set_min_valid(struct tsdb__head *h, int64_t t);
int64_t tsdb__head_min_valid(const struct tsdb__head *h);

/* The series' slot (created on first use): a stable reference. */
struct tsdb__head_series *tsdb__head_ref(struct tsdb__head *h, uint32_t id);

/* out[k] = tsdb__head_ref(h, ids[k]) for k < n, under one lock for the
 * series that exist already (a batch's worth every tick). */
void tsdb__head_refs(struct tsdb__head *h, const uint32_t *ids, size_t n,
                     struct tsdb__head_series **out);

/*
 * Append one sample to series id. Returns 0, or TSDB__EORDER if ts is not
 * after the series' last sample, TSDB__EOLD if before the min valid time:
 * the sample is refused.
 */
int tsdb__head_append(struct tsdb__head *h, uint32_t id, int64_t ts, double v);

/*
 * The batch path: for k in [0, n), append (ts, value k) to refs[k], where
 * value k is the double at vbase + idx[k] * vstride bytes. Consecutive refs
 * of the same stripe share one lock (callers order refs by
 * tsdb__head_stripe for speed). Refused samples are counted into *refused
 * (which the caller zeroes). Returns the number accepted. log (may be
 * NULL): see below.
 */
struct tsdb__head_refused {
    uint64_t out_of_order, too_old;
};
struct tsdb__head_log;
size_t tsdb__head_append_run(struct tsdb__head *h, struct tsdb__head_series *const *refs,
                             const uint32_t *idx, size_t n, int64_t ts, const void *vbase,
                             size_t vstride, struct tsdb__head_refused *refused,
                             struct tsdb__head_log *log);
/*
 * The log entries of an append run (packed.h), written in the same walk
 * over the batch as the samples: each accepted sample k is packed at p with
 * the id ids[k], after st. A NULL log or p writes nothing. The caller makes
 * room for TSDB__PACKED_MAX bytes a sample plus TSDB__PACKED_SLACK.
 */
struct tsdb__head_log {
    uint8_t *p;
    struct tsdb__packed st;
    const uint32_t *ids;
};
/* The lock stripe of a series (for ordering a batch). */
unsigned tsdb__head_stripe(const struct tsdb__head_series *s);

/* Whether series id may have samples in [mint, maxt] (its first and last). */
int tsdb__head_overlaps(struct tsdb__head *h, uint32_t id, int64_t mint, int64_t maxt);

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
/* Called once with the raw tail (n may be 0). */
typedef int (*tsdb__head_raw_fn)(void *ctx, const int64_t *ts, const double *v, size_t n);

/*
 * Visit series id's encoded chunks, then (if raw_fn) its raw tail, under
 * its stripe lock: the callbacks must not call back into the head. Returns
 * the last callback result (0 if all were visited). For checkpoints, cutting
 * blocks and tests.
 */
int tsdb__head_visit(struct tsdb__head *h, uint32_t id, tsdb__head_chunk_fn fn,
                     tsdb__head_raw_fn raw_fn, void *ctx);

/*
 * Encode series id's raw samples older than t onto its chunks, so that
 * every sample before t is in a chunk (done before cutting a window ending
 * at t). Returns 0 or a negative TSDB__E*.
 */
int tsdb__head_seal_before(struct tsdb__head *h, uint32_t id, int64_t t);

/*
 * Free every chunk of every series whose samples all lie before t (they are
 * in a block now); a series left empty gives back its raw buffer. Returns
 * the bytes freed.
 */
size_t tsdb__head_drop_before(struct tsdb__head *h, int64_t t);

/*
 * Add an encoded chunk (bytes copied and decoded once to check them) at the
 * end of series id, when loading a checkpoint: its first sample must come
 * after the series' last. Returns 0 or a negative TSDB__E*.
 */
int tsdb__head_load_chunk(struct tsdb__head *h, uint32_t id, const uint8_t *buf, size_t len);

/* The oldest timestamp held (INT64_MAX if none) and the newest (INT64_MIN). */
void tsdb__head_range(struct tsdb__head *h, int64_t *oldest, int64_t *newest);

/*
 * Bounds without a scan: *lo is at most the oldest timestamp held (the
 * oldest ever appended or loaded; cuts only drop older ones) and *hi the
 * newest (samples are never dropped from the top). INT64_MAX / INT64_MIN
 * before the first sample. For the every-second "is a window due?" check,
 * which tsdb__head_range's visit of every series made a tenth of the
 * daemon's CPU.
 */
void tsdb__head_hints(struct tsdb__head *h, int64_t *lo, int64_t *hi);

/*
 * live[id] = 1 if series id holds samples (raw or in chunks), else 0, for
 * id < n. Returns how many do.
 */
uint32_t tsdb__head_live(struct tsdb__head *h, uint8_t *live, uint32_t n);

/*
 * Renumber the series after the index forgot some (tsdb__index_compact):
 * series id becomes newid[id] (ids below n), kept in all; the others (and
 * ids from n on) are freed with what they hold. The caller keeps every
 * other user of the head out: references taken before are invalid after.
 */
void tsdb__head_renumber(struct tsdb__head *h, const uint32_t *newid, uint32_t n, uint32_t kept);

/* Number of series slots (ids below it may have data). */
uint32_t tsdb__head_nseries(struct tsdb__head *h);

/* Bytes of encoded chunks and raw samples held (for the memory figures). */
size_t tsdb__head_bytes(struct tsdb__head *h);

#endif
