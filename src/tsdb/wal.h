/*
 * wal.h: the store's write-ahead log (private to src/tsdb/). Records are
 * appended to numbered segment files in one directory, buffered in memory,
 * written with write(2) on flush and made durable with fdatasync(2) on sync
 * (the store syncs about once a second). A record is framed as
 *
 *   magic "SR" (2 bytes) | type (1) | flags (1, 0) | length (u32 LE) |
 *   crc32c over type, flags, length and payload (u32 LE) | payload
 *
 * so replay can verify each record and, past a damaged one, find the next
 * intact record by its magic and checksum instead of giving up on the file.
 * Segment files start with the 8 bytes "SITRWAL1" and are named %08u.
 *
 * Threads: any number of threads may append, flush and sync at once;
 * appends never wait for the disk (they copy into a buffer), flushes write
 * outside the append buffer's lock, and sync's fdatasync holds no lock.
 * Records of one thread land in the order it appended them. Replay runs
 * before the writer opens.
 */
#ifndef SITREP_TSDB_WAL_H
#define SITREP_TSDB_WAL_H

#include <stddef.h>
#include <stdint.h>

#define TSDB_WAL_MAX_RECORD ((size_t)16 << 20) /* a record's payload, at most */
#define TSDB_WAL_HEADER     12

struct tsdb__wal;

/*
 * Open dir (created if absent) for appending: writing starts in a new
 * segment numbered after the highest one present, so a torn tail left by a
 * crash is never appended to. seg_size is the size at which a segment is
 * closed (0: 16 MiB). Returns 0 and *out, or -1 with err filled.
 */
int tsdb__wal_open(struct tsdb__wal **out, const char *dir, size_t seg_size, char *err,
                   size_t errlen);
/* Sync and close. NULL is fine. */
void tsdb__wal_close(struct tsdb__wal *w);

/*
 * Append one record to the in-memory buffer (copied). Nothing reaches the
 * file before tsdb__wal_flush. Returns 0, or -1 if len is over the cap.
 */
int tsdb__wal_append(struct tsdb__wal *w, uint8_t type, const void *payload, size_t len);
/*
 * The same without a copy: reserve room for a payload of up to cap bytes and
 * get where it goes, write it, then tsdb__wal_commit() it with its length
 * (at most cap) or tsdb__wal_cancel() it. Other appends and flushes wait in
 * between, so keep it short. Returns NULL (nothing held) if cap is over the
 * record cap.
 */
uint8_t *tsdb__wal_reserve(struct tsdb__wal *w, size_t cap);
void tsdb__wal_commit(struct tsdb__wal *w, uint8_t type, size_t len);
void tsdb__wal_cancel(struct tsdb__wal *w);
/*
 * Write the buffered records. On failure (disk full, I/O error) the segment
 * is cut back to its last complete record, the records stay buffered for the
 * next try, and -1 is returned with errno set.
 */
int tsdb__wal_flush(struct tsdb__wal *w);

/* Bytes the log's buffers hold. */
size_t tsdb__wal_bytes(struct tsdb__wal *w);
/* Flush, then fdatasync the segment. Returns 0 or -1 (errno set). */
int tsdb__wal_sync(struct tsdb__wal *w);
/*
 * Flush, close the current segment durably and start the next one: every record appended later
 * lands in a segment numbered tsdb__wal_segment() or above. Returns 0 or -1 (errno set).
 */
int tsdb__wal_cut(struct tsdb__wal *w);
/*
 * Drop the records buffered but not written (when the disk is full and the
 * store relies on a checkpoint of memory instead once space returns).
 */
void tsdb__wal_discard(struct tsdb__wal *w);
/* Bytes appended but not yet written. */
size_t tsdb__wal_pending(struct tsdb__wal *w);
/* Number of the segment being written. */
uint32_t tsdb__wal_segment(struct tsdb__wal *w);
/*
 * Delete whole segments numbered below `seg` (their records were persisted
 * elsewhere). Returns the number deleted.
 */
int tsdb__wal_truncate_before(struct tsdb__wal *w, uint32_t seg);

struct tsdb__wal_stats {
    uint64_t segments, records, bytes;
    uint64_t corrupt_ranges; /* damaged spans skipped (each logged with file and range) */
    uint64_t corrupt_bytes;
    uint64_t torn_tail; /* an incomplete last record after a crash: normal, not an error */
};

/* Called for each intact record during replay; non-zero stops the replay. */
typedef int (*tsdb__wal_fn)(void *ctx, uint32_t seg, uint8_t type, const uint8_t *payload,
                            size_t len);

/*
 * Read every segment of dir in order and call fn for each intact record.
 * Damaged spans are reported (log_warn with file and byte range) and
 * skipped; the rest is still delivered. An absent dir is an empty log.
 * Returns 0, or -1 if a segment could not be read at all (logged).
 */
int tsdb__wal_replay(const char *dir, tsdb__wal_fn fn, void *ctx, struct tsdb__wal_stats *st);

/*
 * Replay one segment's bytes (already in memory) as tsdb__wal_replay does;
 * name labels the log lines. Returns 1 if fn stopped it, else 0. Exposed for
 * the fuzz target, which feeds it arbitrary bytes.
 */
int tsdb__wal_replay_buf(const char *name, uint32_t seg, const uint8_t *buf, size_t n,
                         tsdb__wal_fn fn, void *ctx, struct tsdb__wal_stats *st);

#endif
