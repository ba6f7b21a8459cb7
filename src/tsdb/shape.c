/*
 * shape.c: the series ids of a batch, reused from the same producer's last
 * batch run by run (private to src/tsdb/).
 *
 * A producer sends nearly the same series every tick: the host collector's
 * batch differs from the last one only in the few families that list the top
 * processes. Looking every sample's label set up in the index (hash, probe,
 * compare) was the largest part of appending. So each producer keeps its last
 * batch (strings, runs, sample layout) and the ids found for it, and a new
 * batch takes a run's ids from the old one when the run's bytes are the same:
 * the family name, help and label strings (one memcmp over the arena span of
 * the run) and each sample's offset and label count within that span (the
 * bytes alone do not say where one sample's labels end). Runs are matched in
 * order, looking a few runs ahead; past that, by name through a hash of the
 * last batch's runs, so runs that appeared, vanished or moved cost only their
 * own lookups. Only runs that did not match go to the index and to the
 * metadata table. A producer that keeps its batch and only sets new values
 * can say so (metric_buf_keep_shape): a batch with the same stamp as the
 * last one is that batch, with no comparison at all.
 *
 * Everything here runs under db->append.
 */
#include "tsdb/db.h"
#include "tsdb/head.h"
#include "tsdb/index.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far ahead of the expected old run a new run looks for its match. */
#define LOOKAHEAD 4
/* Runs of one name tried through the hash (per-device families repeat a name). */
#define SAME_NAME_MAX 64

struct tsdb__shape {
    char src[32];
    struct metric_buf last;     /* the producer's last batch (values unused) */
    struct tsdb__sid *ids;      /* per sample of last */
    struct tsdb__sid *next_ids; /* the batch being resolved; swapped with ids */
    size_t ids_cap, next_cap;
    uint8_t *fresh; /* per run of the batch: looked up, not reused */
    size_t fresh_cap;
    /*
     * last's runs by name: open addressing, one slot per name holding its
     * first and last run (index + 1; 0: empty); same_next chains each run
     * to the next of its name. (One slot per run made a name repeated by
     * thousands of runs one long cluster: quadratic to build.)
     */
    struct name_slot {
        uint32_t first, last;
    } * by_name;
    uint32_t *same_next; /* per run of last: the next run of its name + 1 */
    size_t by_name_cap, by_name_mask, same_next_cap;
    /* Scratch: one last-batch run's samples by label bytes (lookup_run). */
    uint32_t *samples_by;
    size_t samples_by_cap;
    /* last's accepted samples ordered by head stripe (reused while the
     * whole batch matches), and the scratch that orders them. */
    struct tsdb__head_series **refs;
    uint32_t *order;
    uint32_t *oids; /* the series id of each of refs (for the log) */
    struct pair {
        struct tsdb__head_series *ref;
        uint32_t i;
    } * pairs;
    size_t norder, refs_cap, order_cap, oids_cap, pairs_cap;
    uint64_t limit, invalid; /* last's samples refused by the series cap, invalid */
    uint64_t stamp;          /* last's shape_stamp (0: none) */
};

static void grow_to(void *pp, size_t *cap, size_t n, size_t elem)
{
    util_grow(pp, cap, n ? n : 1, elem);
}

/*
 * Make *pp hold exactly n elements unless it holds n with at most an eighth
 * to spare: for what a shape keeps per series until the batch changes
 * (doubling would leave up to half of it unused for good).
 */
static void fit(void *pp, size_t *cap, size_t n, size_t elem)
{
    if (!n)
        n = 1;
    if (*cap >= n && *cap - n <= n / 8)
        return;
    void **p = pp;
    *p = xrealloc(*p, n * elem);
    *cap = n;
}

/* The shape slot of producer src: its own, a free one, or the shared last. */
static struct tsdb__shape *slot(struct tsdb *db, const char *src)
{
    for (size_t i = 0; i < TSDB__SHAPES; i++) {
        struct tsdb__shape *s = db->shapes[i];
        if (!s) {
            s = db->shapes[i] = xcalloc(1, sizeof(*s));
            snprintf(s->src, sizeof(s->src), "%s", src);
            metric_buf_init(&s->last);
            return s;
        }
        if (strcmp(s->src, src) == 0 || i == TSDB__SHAPES - 1)
            return s;
    }
    return NULL; /* not reached */
}

void tsdb__shapes_release(struct tsdb *db)
{
    for (size_t i = 0; i < TSDB__SHAPES; i++) {
        struct tsdb__shape *s = db->shapes[i];
        if (!s)
            continue;
        metric_buf_release(&s->last);
        free(s->ids);
        free(s->next_ids);
        free(s->fresh);
        free(s->by_name);
        free(s->same_next);
        free(s->samples_by);
        free(s->refs);
        free(s->order);
        free(s->oids);
        free(s->pairs);
        free(s);
        db->shapes[i] = NULL;
    }
}

size_t tsdb__shapes_bytes(const struct tsdb *db)
{
    size_t total = 0;
    for (size_t i = 0; i < TSDB__SHAPES; i++) {
        const struct tsdb__shape *s = db->shapes[i];
        if (!s)
            continue;
        const struct metric_buf *l = &s->last;
        total += sizeof(*s) + l->arena_cap + l->fams_cap * sizeof(*l->fams) +
                 l->samples_cap * sizeof(*l->samples);
        total += (s->ids_cap + s->next_cap) * sizeof(*s->ids) + s->fresh_cap +
                 s->by_name_cap * sizeof(*s->by_name) + s->same_next_cap * sizeof(*s->same_next) +
                 s->samples_by_cap * sizeof(*s->samples_by);
        total += s->refs_cap * sizeof(*s->refs) + s->order_cap * sizeof(*s->order) +
                 s->oids_cap * sizeof(*s->oids) + s->pairs_cap * sizeof(*s->pairs);
    }
    return total;
}

/* The arena span of run f: its name, help and samples' label strings. */
static void span(const struct metric_buf *b, size_t f, size_t *lo, size_t *hi)
{
    *lo = b->fams[f].name;
    *hi = f + 1 < b->nfams ? b->fams[f + 1].name : b->arena_len;
}

/* Whether run f of b has the same series, in the same order, as run g of a. */
static int same_run(const struct metric_buf *b, size_t f, const struct metric_buf *a, size_t g)
{
    const struct metric_fam_rec *x = &b->fams[f], *y = &a->fams[g];
    size_t xlo, xhi, ylo, yhi;
    span(b, f, &xlo, &xhi);
    span(a, g, &ylo, &yhi);
    if (x->count != y->count || xhi - xlo != yhi - ylo ||
        memcmp(b->arena + xlo, a->arena + ylo, xhi - xlo) != 0)
        return 0;
    for (uint32_t k = 0; k < x->count; k++) {
        const struct metric_sample *s = &b->samples[x->first + k], *t = &a->samples[y->first + k];
        /* metric_buf writes a run's strings after its header, so a sample's
         * labels lie inside the span; anything else is not compared here. */
        if (s->labels < xlo || s->labels > xhi || s->nlabels != t->nlabels ||
            s->labels - xlo != t->labels - ylo)
            return 0;
    }
    return 1;
}

/*
 * Whether b is a byte for byte the same as a (values aside): the common case,
 * checked first with one memcmp over the strings and two over the layout,
 * cheaper than run by run when runs are small.
 */
static int same_batch(const struct metric_buf *b, const struct metric_buf *a)
{
    if (b->arena_len != a->arena_len || b->nfams != a->nfams || b->nsamples != a->nsamples ||
        memcmp(b->arena, a->arena, b->arena_len) != 0)
        return 0;
    for (size_t f = 0; f < b->nfams; f++)
        if (b->fams[f].name != a->fams[f].name || b->fams[f].first != a->fams[f].first ||
            b->fams[f].count != a->fams[f].count)
            return 0;
    for (size_t i = 0; i < b->nsamples; i++)
        if (b->samples[i].labels != a->samples[i].labels ||
            b->samples[i].nlabels != a->samples[i].nlabels)
            return 0;
    return 1;
}

/* The label set of sample s: __name__ first, then its labels. */
static size_t sample_labels(const struct metric_buf *b, const char *name,
                            const struct metric_sample *s, struct tsdb__label *ls, size_t cap)
{
    size_t n = 0;
    ls[n++] = (struct tsdb__label){"__name__", name};
    const char *p = metric_str(b, s->labels);
    for (uint32_t i = 0; i < s->nlabels && n < cap; i++) {
        const char *k = p, *v = p + strlen(p) + 1;
        ls[n++] = (struct tsdb__label){k, v};
        p = v + strlen(v) + 1;
    }
    return n;
}

/* Sample k of run f: where its label strings start and how many bytes. */
static size_t blob(const struct metric_buf *b, size_t f, uint32_t k, const char **p)
{
    const struct metric_fam_rec *fam = &b->fams[f];
    size_t lo, hi;
    span(b, f, &lo, &hi);
    size_t at = b->samples[fam->first + k].labels;
    size_t end = k + 1 < fam->count ? b->samples[fam->first + k + 1].labels : hi;
    *p = b->arena + at;
    return end - at;
}

/* Whether run f's samples' labels lie in its span in order, as metric_buf
 * writes them: what blob() relies on. */
static int laid_out(const struct metric_buf *b, size_t f)
{
    const struct metric_fam_rec *fam = &b->fams[f];
    size_t lo, hi, prev;
    span(b, f, &lo, &hi);
    prev = lo;
    for (uint32_t k = 0; k < fam->count; k++) {
        size_t at = b->samples[fam->first + k].labels;
        if (at < prev || at > hi)
            return 0;
        prev = at;
    }
    return 1;
}

/*
 * Index the samples of the last batch's run g by their label bytes in
 * s->samples_by (open addressing, sample number + 1). Returns the mask, or 0
 * when g is not usable (labels outside its span, see same_run).
 */
static size_t index_samples(struct tsdb__shape *s, size_t g)
{
    const struct metric_buf *a = &s->last;
    const struct metric_fam_rec *y = &a->fams[g];
    if (!laid_out(a, g))
        return 0;
    size_t size = 16;
    while (size < 2 * (size_t)y->count)
        size *= 2;
    grow_to(&s->samples_by, &s->samples_by_cap, size, sizeof(*s->samples_by));
    memset(s->samples_by, 0, size * sizeof(*s->samples_by));
    for (uint32_t k = 0; k < y->count; k++) {
        const char *p;
        size_t len = blob(a, g, k, &p);
        size_t h = tsdb__hash_bytes(p, len) & (size - 1);
        while (s->samples_by[h])
            h = (h + 1) & (size - 1);
        s->samples_by[h] = k + 1;
    }
    return size - 1;
}

/*
 * Resolve run f's samples: those whose labels appear in old run g (a run of
 * the same name, or -1) take its ids; the rest are looked up in the index
 * (creating and logging new series). A top-N family whose membership changed
 * by one process thus costs one lookup, not N.
 */
static void lookup_run(struct tsdb *db, struct tsdb__shape *s, const struct metric_buf *b, size_t f,
                       long g, struct tsdb__sid *ids)
{
    const struct metric_fam_rec *fam = &b->fams[f];
    const char *name = metric_str(b, fam->name);
    size_t mask = g >= 0 && laid_out(b, f) ? index_samples(s, (size_t)g) : 0;
    struct tsdb__label ls[METRIC_MAX_LABELS + 1];
    for (uint32_t k = 0; k < fam->count; k++) {
        size_t i = fam->first + k;
        if (mask) {
            const char *p, *q;
            size_t len = blob(b, f, k, &p);
            const struct metric_fam_rec *y = &s->last.fams[g];
            size_t h = tsdb__hash_bytes(p, len) & mask;
            for (; s->samples_by[h]; h = (h + 1) & mask) {
                uint32_t o = s->samples_by[h] - 1;
                if (s->last.samples[y->first + o].nlabels == b->samples[i].nlabels &&
                    blob(&s->last, (size_t)g, o, &q) == len && memcmp(p, q, len) == 0)
                    break;
            }
            if (s->samples_by[h]) {
                ids[i] = s->ids[y->first + s->samples_by[h] - 1];
                continue;
            }
        }
        size_t nl = sample_labels(b, name, &b->samples[i], ls, ARRAY_SIZE(ls));
        uint32_t id;
        int rc = nl > db->o.max_labels ? TSDB__ELABEL_LIMIT
                                       : tsdb__index_get_or_create(db->idx, ls, nl, &id);
        if (rc == 1)
            tsdb__log_series(db, id, ls, nl);
        ids[i].id = rc >= 0 ? id : UINT32_MAX;
        ids[i].why = rc >= 0                     ? TSDB__SID_OK
                     : rc == TSDB__ESERIES_LIMIT ? TSDB__SID_LIMIT
                                                 : TSDB__SID_INVALID;
    }
}

static uint64_t name_hash(const struct metric_buf *b, size_t f)
{
    const char *name = metric_str(b, b->fams[f].name);
    return tsdb__hash_bytes(name, strlen(name));
}

/* Whether runs f and g of b have the same name. */
static int name_eq(const struct metric_buf *b, size_t f, size_t g)
{
    return b->fams[f].name == b->fams[g].name ||
           strcmp(metric_str(b, b->fams[f].name), metric_str(b, b->fams[g].name)) == 0;
}

/* Copy b into s->last (strings, runs, sample layout) and index its runs. */
static void keep(struct tsdb__shape *s, const struct metric_buf *b)
{
    struct metric_buf *l = &s->last;
    fit(&l->arena, &l->arena_cap, b->arena_len, 1);
    fit(&l->fams, &l->fams_cap, b->nfams, sizeof(*b->fams));
    fit(&l->samples, &l->samples_cap, b->nsamples, sizeof(*b->samples));
    memcpy(l->arena, b->arena, b->arena_len);
    memcpy(l->fams, b->fams, b->nfams * sizeof(*b->fams));
    memcpy(l->samples, b->samples, b->nsamples * sizeof(*b->samples));
    l->arena_len = b->arena_len;
    l->nfams = b->nfams;
    l->nsamples = b->nsamples;
    size_t size = 16;
    while (size < 2 * b->nfams)
        size *= 2;
    grow_to(&s->by_name, &s->by_name_cap, size, sizeof(*s->by_name));
    memset(s->by_name, 0, size * sizeof(*s->by_name));
    s->by_name_mask = size - 1;
    fit(&s->same_next, &s->same_next_cap, b->nfams, sizeof(*s->same_next));
    struct name_slot *last_slot = NULL;
    for (size_t f = 0; f < b->nfams; f++) {
        s->same_next[f] = 0;
        /* Runs of one name are usually adjacent: no probe for those. */
        if (!last_slot || !name_eq(l, f, f - 1)) {
            size_t h = name_hash(b, f) & s->by_name_mask;
            while (s->by_name[h].first && !name_eq(l, s->by_name[h].first - 1, f))
                h = (h + 1) & s->by_name_mask;
            last_slot = &s->by_name[h];
        }
        if (last_slot->first)
            s->same_next[last_slot->last - 1] = (uint32_t)f + 1;
        else
            last_slot->first = (uint32_t)f + 1;
        last_slot->last = (uint32_t)f + 1;
    }
}

/* The run of the last batch with the same series as run f of b, found by
 * name; -1 if none. *named is the first run of that name (-1 if none). */
static long find_by_name(const struct tsdb__shape *s, const struct metric_buf *b, size_t f,
                         long *named)
{
    *named = -1;
    if (!s->by_name || !s->last.nfams)
        return -1;
    const char *name = metric_str(b, b->fams[f].name);
    size_t h = name_hash(b, f) & s->by_name_mask;
    while (s->by_name[h].first &&
           strcmp(metric_str(&s->last, s->last.fams[s->by_name[h].first - 1].name), name) != 0)
        h = (h + 1) & s->by_name_mask;
    uint32_t g1 = s->by_name[h].first;
    if (g1)
        *named = (long)g1 - 1;
    for (int tried = 0; g1 && tried < SAME_NAME_MAX; tried++, g1 = s->same_next[g1 - 1])
        if (same_run(b, f, &s->last, g1 - 1))
            return (long)g1 - 1;
    return -1;
}

/* Order the accepted samples by head stripe, stable by index: the head
 * takes each stripe's lock once per batch instead of once per sample. */
static void stripe_order(struct tsdb *db, struct tsdb__shape *s, size_t n)
{
    grow_to(&s->pairs, &s->pairs_cap, n, sizeof(*s->pairs));
    fit(&s->refs, &s->refs_cap, n, sizeof(*s->refs));
    fit(&s->order, &s->order_cap, n, sizeof(*s->order));
    fit(&s->oids, &s->oids_cap, n, sizeof(*s->oids));
    size_t m = 0, count[65] = {0};
    /* order holds the accepted ids for the one head lookup, then the sort. */
    for (size_t i = 0; i < n; i++)
        if (s->ids[i].why == TSDB__SID_OK) {
            s->pairs[m].i = (uint32_t)i;
            s->order[m++] = s->ids[i].id;
        }
    tsdb__head_refs(db->head, s->order, m, s->refs);
    for (size_t k = 0; k < m; k++) {
        s->pairs[k].ref = s->refs[k];
        count[tsdb__head_stripe(s->refs[k]) + 1]++;
    }
    for (int k = 0; k < 64; k++)
        count[k + 1] += count[k];
    for (size_t k = 0; k < m; k++) {
        size_t at = count[tsdb__head_stripe(s->pairs[k].ref)]++;
        s->refs[at] = s->pairs[k].ref;
        s->order[at] = s->pairs[k].i;
        s->oids[at] = s->ids[s->pairs[k].i].id;
    }
    s->norder = m;
    /* Scratch of a changed batch only: not kept per series between changes. */
    free(s->pairs);
    s->pairs = NULL;
    s->pairs_cap = 0;
}

struct tsdb__shape *tsdb__shape_resolve(struct tsdb *db, const char *src,
                                        const struct metric_buf *b, uint64_t *limit,
                                        uint64_t *invalid)
{
    struct tsdb__shape *s = slot(db, src);
    const struct metric_buf *old = &s->last;
    size_t n = b->nsamples;
    /* The producer's promise (metric_buf_keep_shape), else the bytes. */
    if ((b->shape_stamp && b->shape_stamp == s->stamp) || same_batch(b, old)) {
        s->stamp = b->shape_stamp;
        *limit = s->limit;
        *invalid = s->invalid;
        return s;
    }
    fit(&s->next_ids, &s->next_cap, n, sizeof(*s->next_ids));
    grow_to(&s->fresh, &s->fresh_cap, b->nfams, 1);
    struct tsdb__sid *ids = s->next_ids;
    int whole = b->nfams == old->nfams && n == old->nsamples;
    size_t j = 0; /* the old run expected next */
    for (size_t f = 0; f < b->nfams; f++) {
        long g = -1, named = -1;
        for (size_t k = j; k < j + LOOKAHEAD && k < old->nfams && g < 0; k++)
            if (same_run(b, f, old, k))
                g = (long)k;
        if (g < 0)
            g = find_by_name(s, b, f, &named);
        s->fresh[f] = g < 0;
        if (g >= 0) {
            const struct metric_fam_rec *x = &b->fams[f], *y = &old->fams[g];
            memcpy(ids + x->first, s->ids + y->first, x->count * sizeof(*ids));
            whole &= (size_t)g == f;
            j = (size_t)g + 1;
        } else {
            lookup_run(db, s, b, f, named, ids);
            whole = 0;
        }
    }
    if (whole) {
        /* Every run where it was: the batch is the last one byte for byte
         * (the runs cover the arena), so all that was kept still holds. */
        s->stamp = b->shape_stamp;
        *limit = s->limit;
        *invalid = s->invalid;
        return s;
    }
    tsdb__meta_note(db, b, s->fresh);
    *limit = *invalid = 0;
    for (size_t i = 0; i < n; i++) {
        *limit += ids[i].why == TSDB__SID_LIMIT;
        *invalid += ids[i].why == TSDB__SID_INVALID;
    }
    s->limit = *limit;
    s->invalid = *invalid;
    /* The batch's ids become the last batch's; the old ones go (see pairs). */
    free(s->ids);
    s->ids = ids;
    s->ids_cap = s->next_cap;
    s->next_ids = NULL;
    s->next_cap = 0;
    keep(s, b);
    s->stamp = b->shape_stamp;
    stripe_order(db, s, n);
    return s;
}

size_t tsdb__shape_order(const struct tsdb__shape *s, struct tsdb__head_series *const **refs,
                         const uint32_t **order, const uint32_t **ids)
{
    *refs = s->refs;
    *order = s->order;
    *ids = s->oids;
    return s->norder;
}
