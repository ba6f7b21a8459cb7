/*
 * gc.c: forgetting series the head no longer holds samples of.
 *
 * The index holds every series seen since the store opened, and a series
 * outlives its samples: once its last window is cut into a block, the
 * head's copy is dropped but the label set, postings and head slot stay.
 * Short-lived series (a process id in a top-N family, a client address,
 * a container) would pile up towards the series cap, after which every
 * new series is refused. After a cut has dropped samples, tsdb__gc()
 * rebuilds the index and the head's slots from the live series only.
 * Their samples in blocks are untouched: queries find them through each
 * block's own index.
 *
 * Ids change (the survivors are renumbered densely), so the rebuild
 * excludes every user of ids: queries (epoch, exclusively) and appends
 * (the append lock, held while producers' cached batch shapes are
 * dropped). The WAL then re-declares every survivor under its new id
 * before any sample that uses it: a replay maps WAL ids to series by
 * these SERIES records, so segments from before and after the rebuild
 * replay correctly, with or without a checkpoint in between.
 */
#include "tsdb/db.h"
#include "util/log.h"
#include "util/util.h"

#include <inttypes.h>
#include <stdlib.h>

/*
 * Rebuild only when it pays: a quarter of the series dead (the rebuild
 * costs about as much as creating the survivors again), or any dead
 * series once the index is three quarters full.
 */
static int worth_it(uint32_t n, uint32_t dead, uint32_t max_series)
{
    if (!dead)
        return 0;
    return (uint64_t)dead * 4 >= n || (uint64_t)n * 4 >= (uint64_t)max_series * 3;
}

int tsdb__gc(struct tsdb *db, int force)
{
    pthread_rwlock_wrlock(&db->epoch);
    pthread_mutex_lock(&db->append);
    uint32_t n = tsdb__index_series_count(db->idx);
    uint8_t *live = xmalloc(n ? n : 1);
    uint32_t nlive = tsdb__head_live(db->head, live, n);
    uint32_t dead = n - nlive;
    uint32_t max_series = db->o.max_series ? db->o.max_series : TSDB_MAX_SERIES_DEFAULT;
    if (!(force ? dead > 0 : worth_it(n, dead, max_series))) {
        pthread_mutex_unlock(&db->append);
        pthread_rwlock_unlock(&db->epoch);
        free(live);
        return 0;
    }
    int64_t t0 = util_mono_ns();
    uint32_t *newid = xmalloc((n ? n : 1) * sizeof(*newid));
    uint32_t kept = tsdb__index_compact(db->idx, live, newid);
    tsdb__head_renumber(db->head, newid, n, kept);
    /* Producers' cached shapes hold old ids and head references. */
    tsdb__shapes_release(db);
    struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
    for (uint32_t id = 0; id < kept; id++) {
        int nl = tsdb__index_labels(db->idx, id, ls, TSDB_MAX_LABELS_LIMIT);
        if (nl > 0)
            tsdb__log_series(db, id, ls, (size_t)nl);
    }
    pthread_mutex_unlock(&db->append);
    pthread_rwlock_unlock(&db->epoch);
    free(newid);
    free(live);
    atomic_fetch_add(&db->series_forgotten, dead);
    atomic_fetch_add(&db->gc_runs, 1);
    log_info("tsdb: %s: forgot %" PRIu32 " series with no samples left in memory, %" PRIu32
             " kept (%.0f ms)",
             db->dir, dead, kept, (double)(util_mono_ns() - t0) / 1e6);
    return (int)(dead > INT32_MAX ? INT32_MAX : dead);
}
