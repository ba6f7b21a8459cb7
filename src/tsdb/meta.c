/*
 * meta.c: metric metadata (type and help per family name) as producers
 * declare it in their batches, for Prometheus's /api/v1/metadata. Kept in
 * memory only, updated when a batch's shape changes (so about never on the
 * append path), bounded by TSDB__MAX_META families; the newest declaration
 * of a name wins. Sorted by name for listing.
 */
#include "tsdb/db.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

static const char *type_name(enum metric_type t)
{
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "unknown";
}

/* Index of name in the sorted table, or where it would go (*found 0). */
static size_t find(const struct tsdb *db, const char *name, int *found)
{
    size_t lo = 0, hi = db->nmeta;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(db->meta[mid].name, name);
        if (!c) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

void tsdb__meta_note(struct tsdb *db, const struct metric_buf *b, const uint8_t *only)
{
    size_t f = 0;
    while (only && f < b->nfams && !only[f])
        f++;
    if (f == b->nfams)
        return;
    pthread_mutex_lock(&db->meta_mu);
    for (; f < b->nfams; f++) {
        if (only && !only[f])
            continue;
        const char *name = metric_str(b, b->fams[f].name), *help = metric_str(b, b->fams[f].help);
        const char *type = type_name(b->fams[f].type);
        int found;
        size_t i = find(db, name, &found);
        if (found) {
            struct tsdb__meta *m = &db->meta[i];
            if (strcmp(m->help, help) != 0) {
                free(m->help);
                m->help = xstrdup(help);
            }
            m->type = type;
            continue;
        }
        if (db->nmeta >= TSDB__MAX_META)
            continue; /* bounded: families past the cap have no metadata */
        void *p = db->meta;
        util_grow(&p, &db->meta_cap, db->nmeta + 1, sizeof(*db->meta));
        db->meta = p;
        memmove(db->meta + i + 1, db->meta + i, (db->nmeta - i) * sizeof(*db->meta));
        db->meta[i] = (struct tsdb__meta){xstrdup(name), xstrdup(help), type};
        db->nmeta++;
    }
    pthread_mutex_unlock(&db->meta_mu);
}

int tsdb_metadata(struct tsdb *db, const char *metric, tsdb_meta_fn fn, void *ctx)
{
    int rc = 0;
    pthread_mutex_lock(&db->meta_mu);
    if (metric) {
        int found;
        size_t i = find(db, metric, &found);
        if (found)
            rc = fn(ctx, db->meta[i].name, db->meta[i].type, db->meta[i].help);
    } else {
        for (size_t i = 0; i < db->nmeta && !rc; i++)
            rc = fn(ctx, db->meta[i].name, db->meta[i].type, db->meta[i].help);
    }
    pthread_mutex_unlock(&db->meta_mu);
    return rc;
}

void tsdb__meta_release(struct tsdb *db)
{
    for (size_t i = 0; i < db->nmeta; i++) {
        free(db->meta[i].name);
        free(db->meta[i].help);
    }
    free(db->meta);
    db->meta = NULL;
    db->nmeta = db->meta_cap = 0;
}
