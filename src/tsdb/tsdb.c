/*
 * tsdb.c: the store's public entry points for writing (see tsdb.h): open
 * (blocks, then checkpoint + WAL replay), close, append, sync, and the
 * self-metrics. Reads are in query.c, background work in maint.c, WAL
 * records and checkpoints in checkpoint.c; struct tsdb is in db.h.
 */
#include "tsdb/chunk.h"
#include "tsdb/db.h"
#include "tsdb/le.h"
#include "tsdb/packed.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DAY_MS ((int64_t)24 * 3600 * 1000)

static void fill_defaults(struct tsdb_opts *o)
{
    static const int64_t retention[3] = {14 * DAY_MS, 90 * DAY_MS, 730 * DAY_MS};
    if (!o->block_span_ms || TSDB_HEAD_CHUNK_SPAN_MS % o->block_span_ms)
        o->block_span_ms = TSDB_HEAD_CHUNK_SPAN_MS;
    for (int t = 0; t < 3; t++)
        if (o->retention_ms[t] <= 0)
            o->retention_ms[t] = retention[t];
    if (!o->max_bytes)
        o->max_bytes = (uint64_t)2 << 30;
    if (o->sync_interval_ms <= 0)
        o->sync_interval_ms = 1000;
    if (o->checkpoint_interval_ms <= 0)
        o->checkpoint_interval_ms = 5 * 60 * 1000;
    if (!o->max_labels)
        o->max_labels = TSDB_MAX_LABELS_DEFAULT;
}

int tsdb_open(struct tsdb **out, const struct tsdb_opts *opts, char *err, size_t errlen)
{
    if (mkdir(opts->dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", opts->dir, strerror(errno));
        return -1;
    }
    struct tsdb *db = xcalloc(1, sizeof(*db));
    db->packed_slice = (TSDB_WAL_MAX_RECORD - 12 - TSDB__PACKED_SLACK) / TSDB__PACKED_MAX;
    db->dir = xstrdup(opts->dir);
    db->o = *opts;
    db->o.dir = db->dir;
    fill_defaults(&db->o);
    struct tsdb__index_opts io = {.max_series = db->o.max_series, .max_labels = db->o.max_labels};
    db->idx = tsdb__index_new(&io);
    db->head = tsdb__head_new(db->o.block_span_ms);
    pthread_mutex_init(&db->append, NULL);
    pthread_mutex_init(&db->blocks_mu, NULL);
    pthread_mutex_init(&db->maint, NULL);
    pthread_mutex_init(&db->sources_mu, NULL);
    pthread_mutex_init(&db->meta_mu, NULL);
    pthread_mutex_init(&db->wake_mu, NULL);
    pthread_cond_init(&db->wake, NULL);
    pthread_rwlock_init(&db->epoch, NULL);

    /*
     * Blocks first: samples before the end of the newest raw block are on
     * disk already, so the replay refuses them instead of duplicating them.
     */
    if (tsdb__blocks_load(db, err, errlen) < 0 || tsdb__replay(db, err, errlen) < 0) {
        tsdb_close(db);
        return -1;
    }
    char wal[4096];
    snprintf(wal, sizeof(wal), "%s/wal", db->dir);
    if (tsdb__wal_open(&db->wal, wal, 0, err, errlen) < 0) {
        tsdb_close(db);
        return -1;
    }
    /*
     * Start from a checkpoint of what was replayed, so the log on disk only
     * ever speaks of this run's series ids. Failing here (disk full) is not
     * fatal: the old checkpoint and segments are still there.
     */
    tsdb__gc(db, 1); /* series replayed without samples (theirs are in blocks) */
    if (tsdb__checkpoint(db) < 0)
        log_warn("tsdb: %s: could not write the startup checkpoint; the previous one stays",
                 db->dir);
    db->last_checkpoint_ns = util_mono_ns();
    if (db->o.background && tsdb__maint_start(db, err, errlen) < 0) {
        tsdb_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

void tsdb_close(struct tsdb *db)
{
    if (!db)
        return;
    tsdb__maint_stop(db);
    if (db->wal && !atomic_load(&db->blocked) && tsdb__checkpoint(db) < 0)
        log_warn("tsdb: %s: final checkpoint failed; the WAL still holds everything", db->dir);
    tsdb__wal_close(db->wal);
    tsdb__blocks_release(db);
    tsdb__head_free(db->head);
    tsdb__index_free(db->idx);
    pthread_mutex_destroy(&db->append);
    pthread_mutex_destroy(&db->blocks_mu);
    pthread_mutex_destroy(&db->maint);
    pthread_mutex_destroy(&db->sources_mu);
    tsdb__meta_release(db);
    pthread_mutex_destroy(&db->meta_mu);
    pthread_mutex_destroy(&db->wake_mu);
    pthread_cond_destroy(&db->wake);
    pthread_rwlock_destroy(&db->epoch);
    free(db->rec);
    tsdb__shapes_release(db);
    free(db->dir);
    free(db);
}

uint32_t tsdb_series_count(struct tsdb *db)
{
    return tsdb__index_series_count(db->idx);
}

/* ------------------------------------------------------------- append */

/* Count refusals per producer (the first 31 names, then "other"). */
static struct tsdb__source *source(struct tsdb *db, const char *name)
{
    if (!name || !*name)
        name = "unknown";
    size_t n = __atomic_load_n(&db->nsources, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++)
        if (strcmp(db->sources[i].name, name) == 0)
            return &db->sources[i];
    pthread_mutex_lock(&db->sources_mu);
    struct tsdb__source *s = NULL;
    for (size_t i = 0; i < db->nsources && !s; i++)
        if (strcmp(db->sources[i].name, name) == 0)
            s = &db->sources[i];
    if (!s && db->nsources == TSDB__MAX_SOURCES - 1)
        name = "other";
    for (size_t i = 0; i < db->nsources && !s; i++)
        if (strcmp(db->sources[i].name, name) == 0)
            s = &db->sources[i];
    if (!s) {
        s = &db->sources[db->nsources];
        snprintf(s->name, sizeof(s->name), "%s", name);
        __atomic_store_n(&db->nsources, db->nsources + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&db->sources_mu);
    return s;
}

int tsdb_append_batch(struct tsdb *db, const char *src, const struct metric_buf *b,
                      struct tsdb_append_stats *st)
{
    struct tsdb_append_stats mine = {0};
    pthread_mutex_lock(&db->append);
    uint64_t limit, invalid;
    struct tsdb__shape *sh = tsdb__shape_resolve(db, src, b, &limit, &invalid);
    mine.series_limit = limit;
    mine.invalid = invalid;
    struct tsdb__head_series *const *refs;
    const uint32_t *order;
    const uint32_t *ids;
    size_t m = tsdb__shape_order(sh, &refs, &order, &ids);
    /*
     * A PACKED record, i64 ts | u32 n | n packed samples (packed.h), written
     * straight into the log's buffer by the head as it appends each sample:
     * one for the batch, or one per packed_slice samples of a batch too big
     * for a record. Disk full: memory only; a checkpoint persists it once
     * space returns.
     */
    int blocked = atomic_load(&db->blocked), rc = blocked ? -1 : 0;
    struct tsdb__head_refused refused = {0, 0};
    for (size_t off = 0; off < m;) {
        size_t k = m - off < db->packed_slice ? m - off : db->packed_slice;
        uint8_t *rec =
            blocked ? NULL
                    : tsdb__wal_reserve(db->wal, 12 + TSDB__PACKED_MAX * k + TSDB__PACKED_SLACK);
        struct tsdb__head_log lg = {rec ? rec + 12 : NULL, {0, 0}, ids + off};
        size_t got =
            tsdb__head_append_run(db->head, refs + off, order + off, k, b->ts_ms,
                                  &b->samples[0].value, sizeof(b->samples[0]), &refused, &lg);
        if (rec && got) {
            tsdb__put64(rec, (uint64_t)b->ts_ms);
            tsdb__put32(rec + 8, (uint32_t)got);
            tsdb__wal_commit(db->wal, TSDB__REC_PACKED, (size_t)(lg.p - rec));
        } else if (rec) {
            tsdb__wal_cancel(db->wal);
        }
        mine.accepted += got;
        off += k;
    }
    mine.out_of_order = refused.out_of_order;
    mine.too_old = refused.too_old;
    pthread_mutex_unlock(&db->append);

    /*
     * Written now (a kill -9 loses nothing written), outside the append lock:
     * other producers append meanwhile, and one write may carry several
     * producers' records.
     */
    if (!blocked && tsdb__wal_flush(db->wal) < 0) {
        char why[160];
        snprintf(why, sizeof(why), "writing the WAL failed: %s", strerror(errno));
        atomic_fetch_add(&db->wal_failures, 1);
        tsdb__stop_writing(db, why);
        tsdb__wal_discard(db->wal);
        rc = -1;
    }

    struct tsdb__source *s = source(db, src);
    atomic_fetch_add(&s->accepted, mine.accepted);
    atomic_fetch_add(&s->out_of_order, mine.out_of_order);
    atomic_fetch_add(&s->too_old, mine.too_old);
    atomic_fetch_add(&s->series_limit, mine.series_limit);
    atomic_fetch_add(&s->invalid, mine.invalid);
    if (st) {
        st->accepted += mine.accepted;
        st->out_of_order += mine.out_of_order;
        st->too_old += mine.too_old;
        st->series_limit += mine.series_limit;
        st->invalid += mine.invalid;
    }
    return rc;
}

int tsdb_sync(struct tsdb *db)
{
    return atomic_load(&db->blocked) ? -1 : tsdb__wal_sync(db->wal);
}

/* -------------------------------------------------------- self-metrics */

void tsdb_memory(struct tsdb *db, struct tsdb_memory *m)
{
    struct tsdb__index_stats st;
    tsdb__index_stats(db->idx, &st);
    m->index = st.bytes;
    m->head = tsdb__head_bytes(db->head);
    m->wal = tsdb__wal_bytes(db->wal);
    pthread_mutex_lock(&db->append);
    m->shapes = tsdb__shapes_bytes(db);
    pthread_mutex_unlock(&db->append);
}

void tsdb_expose(struct tsdb *db, struct metric_buf *b)
{
    struct tsdb_memory mem;
    tsdb_memory(db, &mem);
    metric_fam(b, "sitrep_tsdb_memory_bytes",
               "Bytes the store has allocated, by part (index, head, shapes, wal).", METRIC_GAUGE);
    metric_add1(b, (double)mem.index, "part", "index");
    metric_add1(b, (double)mem.head, "part", "head");
    metric_add1(b, (double)mem.shapes, "part", "shapes");
    metric_add1(b, (double)mem.wal, "part", "wal");
    metric_fam(b, "sitrep_tsdb_series", "Series in the store's index.", METRIC_GAUGE);
    metric_add0(b, tsdb__index_series_count(db->idx));
    metric_fam(b, "sitrep_tsdb_head_bytes", "Bytes of samples held in memory.", METRIC_GAUGE);
    metric_add0(b, (double)tsdb__head_bytes(db->head));
    metric_fam(b, "sitrep_tsdb_head_min_time_seconds",
               "Samples before this time are on disk in blocks; older appends are refused.",
               METRIC_GAUGE);
    int64_t mv = tsdb__head_min_valid(db->head);
    metric_add0(b, mv == INT64_MIN ? 0 : (double)mv / 1000);
    metric_fam(b, "sitrep_tsdb_blocks", "Blocks on disk by tier.", METRIC_GAUGE);
    pthread_mutex_lock(&db->blocks_mu);
    size_t nb[TSDB__TIERS];
    uint64_t bad = 0;
    for (int t = 0; t < TSDB__TIERS; t++) {
        nb[t] = db->nblocks[t];
        for (size_t i = 0; i < nb[t]; i++)
            bad += tsdb__block_bad_chunks(db->blocks[t][i]->b);
    }
    /* Never goes down when a block holding bad chunks is deleted. */
    if (bad > atomic_load(&db->bad_chunks))
        atomic_store(&db->bad_chunks, bad);
    pthread_mutex_unlock(&db->blocks_mu);
    for (int t = 0; t < TSDB__TIERS; t++)
        metric_add1(b, (double)nb[t], "tier", tsdb__tier_name(t));
    metric_fam(b, "sitrep_tsdb_disk_bytes",
               "Bytes the store takes on disk (blocks, WAL, checkpoint).", METRIC_GAUGE);
    metric_add0(b, (double)atomic_load(&db->disk_bytes));
    metric_fam(b, "sitrep_tsdb_max_bytes", "The store's size cap.", METRIC_GAUGE);
    metric_add0(b, (double)db->o.max_bytes);
    metric_fam(b, "sitrep_tsdb_writes_blocked",
               "1 while the store does not write to disk (free space below the floor, or a write "
               "failed); samples are kept in memory meanwhile.",
               METRIC_GAUGE);
    metric_add0(b, atomic_load(&db->blocked));

    struct {
        const char *name, *help;
        atomic_uint_fast64_t *v;
    } counters[] = {
        {"sitrep_tsdb_wal_write_failures_total", "WAL writes that failed.", &db->wal_failures},
        {"sitrep_tsdb_blocks_written_total", "Blocks cut from memory.", &db->blocks_written},
        {"sitrep_tsdb_block_write_failures_total", "Block writes that failed (retried).",
         &db->block_failures},
        {"sitrep_tsdb_compactions_total", "Blocks merged into larger ones.", &db->compactions},
        {"sitrep_tsdb_checkpoints_total", "Checkpoints of memory written.", &db->checkpoints},
        {"sitrep_tsdb_checkpoint_failures_total", "Checkpoints that failed.",
         &db->checkpoint_failures},
        {"sitrep_tsdb_corrupt_chunks_total",
         "Chunks whose checksum did not match (skipped, logged with file and offset).",
         &db->bad_chunks},
        {"sitrep_tsdb_wal_corrupt_ranges_total",
         "Damaged byte ranges of the WAL or checkpoint skipped at start (logged with file and "
         "range).",
         &db->wal_corrupt_ranges},
        {"sitrep_tsdb_series_forgotten_total",
         "Series dropped from memory once their samples were all on disk (queries still find "
         "them in blocks).",
         &db->series_forgotten},
        {"sitrep_tsdb_blocks_unreadable_total",
         "Blocks not served because their index or files are damaged (logged, kept on disk).",
         &db->blocks_unreadable},
    };
    for (size_t i = 0; i < ARRAY_SIZE(counters); i++) {
        metric_fam(b, counters[i].name, counters[i].help, METRIC_COUNTER);
        metric_add0(b, (double)atomic_load(counters[i].v));
    }
    metric_fam(b, "sitrep_tsdb_blocks_deleted_total", "Blocks deleted, by reason.", METRIC_COUNTER);
    metric_add1(b, (double)atomic_load(&db->retention_deleted), "reason", "retention");
    metric_add1(b, (double)atomic_load(&db->size_deleted), "reason", "size");

    size_t ns = __atomic_load_n(&db->nsources, __ATOMIC_ACQUIRE);
    metric_fam(b, "sitrep_tsdb_samples_appended_total", "Samples accepted, by producer.",
               METRIC_COUNTER);
    for (size_t i = 0; i < ns; i++)
        metric_add1(b, (double)atomic_load(&db->sources[i].accepted), "source",
                    db->sources[i].name);
    metric_fam(b, "sitrep_tsdb_samples_refused_total", "Samples refused, by producer and reason.",
               METRIC_COUNTER);
    for (size_t i = 0; i < ns; i++) {
        struct tsdb__source *s = &db->sources[i];
        metric_add2(b, (double)atomic_load(&s->out_of_order), "source", s->name, "reason",
                    "out_of_order");
        metric_add2(b, (double)atomic_load(&s->too_old), "source", s->name, "reason", "too_old");
        metric_add2(b, (double)atomic_load(&s->series_limit), "source", s->name, "reason",
                    "series_limit");
        metric_add2(b, (double)atomic_load(&s->invalid), "source", s->name, "reason", "invalid");
    }
}
