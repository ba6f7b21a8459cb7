/*
 * db.h: the store's shared internals (private to src/tsdb/): struct tsdb
 * and what its parts (tsdb.c append and open, checkpoint.c WAL records and
 * checkpoints, query.c reads, maint.c the background work) call in each
 * other.
 *
 * On disk, under the store's directory:
 *   wal/%08u              write-ahead log segments (records: checkpoint.c)
 *   checkpoint.%08u/      the head as of WAL segment N (replaces segments < N)
 *   raw/b-<mint>-<maxt>/  blocks of 1 s samples
 *   1m/b-.../, 1h/b-.../  blocks of the downsampled tiers (5 columns a series)
 *
 * Locks, in the order they may be taken:
 *   maint    one maintenance pass at a time (cut, compact, retention, checkpoint)
 *   epoch    rwlock: a query holds it shared for its life; maint takes it
 *            exclusively (briefly, no I/O) between publishing a block and
 *            dropping the head chunks it holds, so no query sees both or neither
 *   append   one batch at a time: WAL order = append order
 *   blocks   the block lists (held only to copy or edit them, never across I/O)
 *   the head's and index's own locks
 */
#ifndef SITREP_TSDB_DB_H
#define SITREP_TSDB_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "tsdb/head.h"
#include "tsdb/index.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"

enum { TSDB__TIER_RAW, TSDB__TIER_1M, TSDB__TIER_1H, TSDB__TIERS };

/* WAL and checkpoint record types (payload layouts: checkpoint.c). */
enum {
    TSDB__REC_SERIES = 1,
    TSDB__REC_SAMPLES = 2, /* written before PACKED; still replayed */
    TSDB__REC_RAW = 3,
    TSDB__REC_CHUNK = 4,
    TSDB__REC_PACKED = 5,
    TSDB__REC_TAIL = 6,
};

/* An open block, shared by the block list and the queries using it. */
struct tsdb__bref {
    struct tsdb__block *b;
    int tier;
    int64_t mint, maxt;
    uint64_t bytes;
    char *path;
    atomic_int refs;   /* the list's reference plus one per user */
    atomic_int doomed; /* delete the directory when the last reference goes */
    pthread_mutex_t idx_mu;
    struct tsdb__index *idx; /* built on first query (series i = block series i) */
};

struct tsdb__bref *tsdb__bref_get(struct tsdb__bref *r);
void tsdb__bref_put(struct tsdb__bref *r);
/* The block's label index, built on first use. Never NULL. */
struct tsdb__index *tsdb__bref_index(struct tsdb__bref *r);

/* Refusals counted per producer. */
#define TSDB__MAX_SOURCES 32
struct tsdb__source {
    char name[32];
    atomic_uint_fast64_t accepted, out_of_order, too_old, series_limit, invalid;
};

#define TSDB__MAX_META 20000

struct tsdb__meta {
    char *name, *help;
    const char *type; /* "counter", "gauge", "unknown" */
};

/* Record the families of runs f of b with only[f] set (all if only is NULL) (meta.c). */
void tsdb__meta_note(struct tsdb *db, const struct metric_buf *b, const uint8_t *only);
void tsdb__meta_release(struct tsdb *db);

/*
 * Series ids of batches, reused from each producer's last batch run by run
 * (shape.c). Producers past TSDB__SHAPES - 1 share the last slot.
 */
#define TSDB__SHAPES 8
struct tsdb__shape;
/* A sample's series: id, or why it was refused (then id is UINT32_MAX). */
enum { TSDB__SID_OK, TSDB__SID_LIMIT, TSDB__SID_INVALID };
struct tsdb__sid {
    uint32_t id;
    uint8_t why;
};
/*
 * Resolve every sample of b from producer src (creating and logging new
 * series, noting new families' metadata); counts the samples refused by the
 * series cap and as invalid. The result stays valid until the next call.
 */
struct tsdb__shape *tsdb__shape_resolve(struct tsdb *db, const char *src,
                                        const struct metric_buf *b, uint64_t *limit,
                                        uint64_t *invalid);
/* The accepted samples ordered by head stripe (refs, their sample indexes
 * and their series ids, in that order); returns how many were accepted. */
size_t tsdb__shape_order(const struct tsdb__shape *s, struct tsdb__head_series *const **refs,
                         const uint32_t **order, const uint32_t **ids);
void tsdb__shapes_release(struct tsdb *db);
/* Bytes the producers' shapes hold (caller holds db->append). */
size_t tsdb__shapes_bytes(const struct tsdb *db);

struct tsdb {
    char *dir;
    struct tsdb_opts o; /* with defaults filled; o.dir points at dir */
    struct tsdb__index *idx;
    struct tsdb__head *head;
    struct tsdb__wal *wal;

    pthread_mutex_t append;
    uint8_t *rec; /* scratch for WAL series records (under append) */
    size_t rec_cap;
    /* Each producer's last batch and its series ids (shape.c), under append. */
    struct tsdb__shape *shapes[TSDB__SHAPES];
    /* Samples a PACKED record holds at most: the record cap's worth (a
     * bigger batch takes several); tests set it lower. */
    size_t packed_slice;

    pthread_mutex_t blocks_mu;
    struct tsdb__bref **blocks[TSDB__TIERS]; /* sorted by mint */
    size_t nblocks[TSDB__TIERS], blocks_cap[TSDB__TIERS];

    pthread_rwlock_t epoch;
    pthread_mutex_t maint;

    /* Background thread (maint.c). */
    pthread_t thread;
    int running;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
    int stop;
    int64_t last_checkpoint_ns;
    /* When maint last walked the directory for sizes and retention, and the
     * on-disk layout it saw then (layout_mark in maint.c). */
    int64_t last_du_ns;
    uint64_t du_mark;
    uint32_t checkpoint_seg; /* WAL segments below it are covered by the checkpoint */

    /* Self-metrics. */
    atomic_int blocked; /* free space below the floor or a write failed */
    atomic_uint_fast64_t wal_failures, blocks_written, block_failures, compactions,
        retention_deleted, size_deleted, checkpoints, checkpoint_failures, bad_chunks;
    atomic_uint_fast64_t series_forgotten, gc_runs; /* gc.c */
    /* Damage found at open: WAL/checkpoint ranges skipped, blocks not served. */
    atomic_uint_fast64_t wal_corrupt_ranges, blocks_unreadable;
    atomic_uint_fast64_t disk_bytes; /* measured by maint */
    /* Metric metadata (meta.c), sorted by name, under meta_mu. */
    pthread_mutex_t meta_mu;
    struct tsdb__meta *meta;
    size_t nmeta, meta_cap;
    pthread_mutex_t sources_mu;
    struct tsdb__source sources[TSDB__MAX_SOURCES];
    size_t nsources;
};

/* Checkpoints and WAL records (checkpoint.c). */
/* Replay the newest checkpoint and the WAL segments after it into db. */
int tsdb__replay(struct tsdb *db, char *err, size_t errlen);
/* Append the SERIES record of id to db->wal's buffer (caller holds append). */
void tsdb__log_series(struct tsdb *db, uint32_t id, const struct tsdb__label *ls, size_t n);
/*
 * Write a checkpoint of the head as of a fresh WAL segment and delete the
 * segments and checkpoints it replaces. Returns 0 or -1 (logged).
 */
int tsdb__checkpoint(struct tsdb *db);

/*
 * Forget the series with no samples in the head (gc.c): when enough are
 * dead to pay for the rebuild, or when force and any is. Takes epoch and
 * append; renumbers the rest. Returns how many were forgotten.
 */
int tsdb__gc(struct tsdb *db, int force);

/*
 * Stop writing to disk (maint.c): appends go to memory only until free space
 * is back above the floor. The first caller logs why, whichever path noticed
 * first (a WAL write, a sync, a block cut or the free-space check); later
 * callers only count. Thread-safe.
 */
void tsdb__stop_writing(struct tsdb *db, const char *why);

/* The background thread (maint.c): started by open if o.background. */
int tsdb__maint_start(struct tsdb *db, char *err, size_t errlen);
void tsdb__maint_stop(struct tsdb *db); /* no-op if not running */

/* Blocks (maint.c): open every block under dir at open; list helpers. */
int tsdb__blocks_load(struct tsdb *db, char *err, size_t errlen);
void tsdb__blocks_release(struct tsdb *db);
/* The end of the newest raw block (INT64_MIN if none). */
int64_t tsdb__raw_maxt(struct tsdb *db);
/* The directory of tier t ("raw", "1m", "1h"). */
const char *tsdb__tier_name(int t);
int64_t tsdb__tier_res(int t);

#endif
