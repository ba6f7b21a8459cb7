/*
 * index.c: the series index (see index.h for the contract and the locking).
 *
 * Layout, all flat arrays of uint32 so a series costs a few dozen bytes:
 *   - names[]: one entry per distinct label name: its string, how many series
 *     carry it, and the pair ids of its distinct values (for regex matchers
 *     and the label-values listing). ntab, a small table of its own, finds a
 *     name by its bytes.
 *   - pairs[]: one entry per distinct (name, value): the value's string id
 *     and the postings list, the ascending ids of the series with that label.
 *     Ids are handed out in increasing order, so adding a series appends. A
 *     list of one id (the common case for high-cardinality labels) is stored
 *     inline, longer ones on the heap with power-of-two capacity derived from
 *     the length. pair_name[] holds each pair's name index; ptab maps
 *     (name index, value id) to the pair.
 *   - lab[]: every series' pair ids, sorted by label name, concatenated;
 *     series i owns lab[off[i] .. off[i+1]). That sequence is the series'
 *     identity: stab, an open-addressing table, hashes it. Each stab slot
 *     packs 8 bits of the hash above the 24-bit series id + 1, so a probe
 *     rarely compares label arrays that differ.
 * Every table probes with triangular steps over a power of two slots and
 * grows at 3/4 load.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#endif
#include "tsdb/index.h"

#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"
#include "util/util.h"

#define NONE     UINT32_MAX
#define SID_BITS 24
#define SID_MASK ((1u << SID_BITS) - 1)

struct pair {
    uint32_t value; /* string id */
    uint32_t n;     /* series in the postings list */
    union {
        uint32_t one;  /* n == 1 */
        uint32_t *ids; /* n >= 2: capacity is n rounded up to a power of two */
    } p;
};

struct lname {
    uint32_t str;     /* string id of the name */
    uint32_t nseries; /* series that have this label */
    uint32_t *vals;   /* pair ids of its distinct values, in creation order */
    size_t nvals, vals_cap;
};

struct tsdb__index {
    pthread_rwlock_t lock;
    uint32_t max_series, max_labels;
    struct tsdb__strtab st;

    struct lname *names;
    size_t nnames, names_cap;
    uint32_t *ntab; /* name index + 1, keyed by the name's bytes */
    uint32_t nmask;

    struct pair *pairs;
    uint32_t *pair_name;
    size_t npairs, pairs_cap;
    uint32_t *ptab; /* pair id + 1, keyed by (name index, value string id) */
    uint32_t pmask;
    size_t postings_bytes; /* heap bytes of postings lists */

    uint32_t *lab;
    size_t nlab, lab_cap;
    uint32_t *off; /* nseries + 1 entries once a series exists */
    size_t off_cap;
    uint32_t nseries;
    uint32_t *stab; /* (hash tag << SID_BITS) | (series id + 1) */
    uint32_t smask;
};

const char *tsdb__index_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case TSDB__ESERIES_LIMIT:
        return "series limit reached";
    case TSDB__ELABEL_LIMIT:
        return "too many labels";
    case TSDB__EBADNAME:
        return "invalid label name";
    case TSDB__EBADVALUE:
        return "invalid label value (too long or not UTF-8)";
    case TSDB__EDUPNAME:
        return "duplicate label name";
    case TSDB__ENOLABELS:
        return "empty label set";
    case TSDB__ENOTFOUND:
        return "no such series";
    case TSDB__EREGEX:
        return "invalid regex";
    case TSDB__EMATCH:
        return "regex match limit exceeded";
    case TSDB__EEMPTYSEL:
        return "vector selector must contain at least one non-empty matcher";
    case TSDB__EBADARG:
        return "invalid argument";
    }
    return "unknown index error";
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t series_hash(const uint32_t *pids, size_t n)
{
    uint64_t h = n;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ pids[i]) * 0x9e3779b97f4a7c15ull;
        h = (h << 29) | (h >> 35);
    }
    return mix64(h);
}

/* Slots for a table that must hold n entries at most 3/4 full. */
static uint32_t table_size(size_t n)
{
    uint32_t s = 16;
    while ((size_t)s * 3 < n * 4)
        s *= 2;
    return s;
}

/* ------------------------------------------------------------ names */

/*
 * Names are few, so they have their own small table keyed by the name's
 * bytes: resolving a label name never touches the big string table.
 */
static uint32_t name_slot(const struct tsdb__index *idx, const char *s, size_t len, uint64_t h)
{
    uint32_t i = (uint32_t)h & idx->nmask, step = 0;
    for (;;) {
        uint32_t v = idx->ntab[i];
        if (!v)
            return i;
        uint32_t str = idx->names[v - 1].str;
        if (tsdb__strtab_len(&idx->st, str) == len &&
            memcmp(tsdb__strtab_str(&idx->st, str), s, len) == 0)
            return i;
        i = (i + ++step) & idx->nmask;
    }
}

/* Index of the label name s[0..len), or NONE. */
static uint32_t name_find(const struct tsdb__index *idx, const char *s, size_t len)
{
    if (!idx->ntab)
        return NONE;
    uint32_t v = idx->ntab[name_slot(idx, s, len, tsdb__hash_bytes(s, len))];
    return v ? v - 1 : NONE;
}

static uint32_t name_add(struct tsdb__index *idx, const char *s, size_t len)
{
    uint32_t ni = name_find(idx, s, len);
    if (ni != NONE)
        return ni;
    if (!idx->ntab || (idx->nnames + 1) * 4 > ((size_t)idx->nmask + 1) * 3) {
        uint32_t size = table_size(idx->nnames + 1);
        free(idx->ntab);
        idx->ntab = xcalloc(size, sizeof(uint32_t));
        idx->nmask = size - 1;
        for (size_t k = 0; k < idx->nnames; k++) {
            uint32_t str = idx->names[k].str;
            const char *ks = tsdb__strtab_str(&idx->st, str);
            size_t klen = tsdb__strtab_len(&idx->st, str);
            idx->ntab[name_slot(idx, ks, klen, tsdb__hash_bytes(ks, klen))] = (uint32_t)k + 1;
        }
    }
    util_grow((void **)&idx->names, &idx->names_cap, idx->nnames + 1, sizeof(*idx->names));
    ni = (uint32_t)idx->nnames++;
    idx->names[ni] = (struct lname){.str = tsdb__strtab_intern(&idx->st, s, len)};
    idx->ntab[name_slot(idx, s, len, tsdb__hash_bytes(s, len))] = ni + 1;
    return ni;
}

/* ------------------------------------------------------------ pairs */

static uint32_t pair_slot(const struct tsdb__index *idx, uint32_t ni, uint32_t vid)
{
    uint32_t i = (uint32_t)mix64((uint64_t)ni << 32 | vid) & idx->pmask, step = 0;
    for (;;) {
        uint32_t v = idx->ptab[i];
        if (!v || (idx->pair_name[v - 1] == ni && idx->pairs[v - 1].value == vid))
            return i;
        i = (i + ++step) & idx->pmask;
    }
}

static uint32_t pair_find(const struct tsdb__index *idx, uint32_t ni, uint32_t vid)
{
    if (ni == NONE || vid == TSDB__NOSTR || !idx->ptab)
        return NONE;
    uint32_t v = idx->ptab[pair_slot(idx, ni, vid)];
    return v ? v - 1 : NONE;
}

static uint32_t pair_add(struct tsdb__index *idx, uint32_t ni, uint32_t vid)
{
    uint32_t pid = pair_find(idx, ni, vid);
    if (pid != NONE)
        return pid;
    if (!idx->ptab || (idx->npairs + 1) * 4 > ((size_t)idx->pmask + 1) * 3) {
        uint32_t size = table_size(idx->npairs + 1);
        free(idx->ptab);
        idx->ptab = xcalloc(size, sizeof(uint32_t));
        idx->pmask = size - 1;
        for (size_t k = 0; k < idx->npairs; k++)
            idx->ptab[pair_slot(idx, idx->pair_name[k], idx->pairs[k].value)] = (uint32_t)k + 1;
    }
    size_t cap = idx->pairs_cap;
    util_grow((void **)&idx->pairs, &idx->pairs_cap, idx->npairs + 1, sizeof(*idx->pairs));
    if (idx->pairs_cap != cap)
        idx->pair_name = xrealloc(idx->pair_name, idx->pairs_cap * sizeof(uint32_t));
    pid = (uint32_t)idx->npairs++;
    idx->pairs[pid] = (struct pair){.value = vid};
    idx->pair_name[pid] = ni;
    idx->ptab[pair_slot(idx, ni, vid)] = pid + 1;
    struct lname *ln = &idx->names[ni];
    util_grow((void **)&ln->vals, &ln->vals_cap, ln->nvals + 1, sizeof(uint32_t));
    ln->vals[ln->nvals++] = pid;
    return pid;
}

static const uint32_t *postings(const struct pair *p)
{
    return p->n == 1 ? &p->p.one : p->p.ids;
}

/* Append sid (above every id in the list) to the postings of p. */
static void postings_add(struct tsdb__index *idx, struct pair *p, uint32_t sid)
{
    if (p->n == 0) {
        p->p.one = sid;
    } else if (p->n == 1) {
        uint32_t first = p->p.one;
        p->p.ids = xmalloc(2 * sizeof(uint32_t));
        p->p.ids[0] = first;
        idx->postings_bytes += 2 * sizeof(uint32_t);
    } else if ((p->n & (p->n - 1)) == 0) {
        p->p.ids = xrealloc(p->p.ids, 2 * (size_t)p->n * sizeof(uint32_t));
        idx->postings_bytes += (size_t)p->n * sizeof(uint32_t);
    }
    if (p->n >= 1)
        p->p.ids[p->n] = sid;
    p->n++;
}

/* ----------------------------------------------------------- series */

/*
 * The stab slot holding the series whose pair ids are pids[0..n), or the
 * empty slot where it belongs (*sid is then NONE).
 */
static uint32_t series_slot(const struct tsdb__index *idx, const uint32_t *pids, size_t n,
                            uint64_t h, uint32_t *sid)
{
    uint32_t tag = (uint32_t)(h >> 56);
    uint32_t i = (uint32_t)h & idx->smask, step = 0;
    for (;;) {
        uint32_t v = idx->stab[i];
        if (!v) {
            *sid = NONE;
            return i;
        }
        if (v >> SID_BITS == tag) {
            uint32_t s = (v & SID_MASK) - 1;
            const uint32_t *l = idx->lab + idx->off[s];
            if (idx->off[s + 1] - idx->off[s] == n && memcmp(l, pids, n * sizeof(*pids)) == 0) {
                *sid = s;
                return i;
            }
        }
        i = (i + ++step) & idx->smask;
    }
}

static void series_rehash(struct tsdb__index *idx, uint32_t size)
{
    free(idx->stab);
    idx->stab = xcalloc(size, sizeof(uint32_t));
    idx->smask = size - 1;
    for (uint32_t s = 0; s < idx->nseries; s++) {
        const uint32_t *l = idx->lab + idx->off[s];
        size_t n = idx->off[s + 1] - idx->off[s];
        uint64_t h = series_hash(l, n);
        uint32_t i = (uint32_t)h & idx->smask, step = 0;
        while (idx->stab[i])
            i = (i + ++step) & idx->smask;
        idx->stab[i] = (uint32_t)(h >> 56) << SID_BITS | (s + 1);
    }
}

/* A label set after validation: sorted by name, no empty values. */
struct canon {
    size_t n;
    struct tsdb__label l[TSDB_MAX_LABELS_LIMIT];
    uint32_t nlen[TSDB_MAX_LABELS_LIMIT], vlen[TSDB_MAX_LABELS_LIMIT];
};

static int canonicalize(const struct tsdb__index *idx, const struct tsdb__label *in, size_t n,
                        struct canon *c)
{
    c->n = 0;
    if (n && !in)
        return TSDB__EBADARG;
    for (size_t i = 0; i < n; i++) {
        const char *name = in[i].name, *value = in[i].value;
        if (!tsdb__label_name_valid(name))
            return TSDB__EBADNAME;
        if (!value)
            return TSDB__EBADVALUE;
        size_t vlen = strnlen(value, TSDB_MAX_VALUE_LEN + 1);
        if (vlen > TSDB_MAX_VALUE_LEN || !tsdb__utf8_valid(value, vlen))
            return TSDB__EBADVALUE;
        if (vlen == 0)
            continue; /* an empty value is an absent label */
        if (c->n == idx->max_labels)
            return TSDB__ELABEL_LIMIT;
        /* Insertion sort by name: label sets are short. */
        size_t k = c->n++;
        while (k > 0 && strcmp(c->l[k - 1].name, name) > 0) {
            c->l[k] = c->l[k - 1];
            c->nlen[k] = c->nlen[k - 1];
            c->vlen[k] = c->vlen[k - 1];
            k--;
        }
        c->l[k] = (struct tsdb__label){name, value};
        c->nlen[k] = (uint32_t)strlen(name);
        c->vlen[k] = (uint32_t)vlen;
    }
    if (c->n == 0)
        return TSDB__ENOLABELS;
    for (size_t i = 1; i < c->n; i++)
        if (strcmp(c->l[i - 1].name, c->l[i].name) == 0)
            return TSDB__EDUPNAME;
    return 0;
}

/* The series id of c under either lock, or NONE. */
static uint32_t lookup(const struct tsdb__index *idx, const struct canon *c)
{
    uint32_t pids[TSDB_MAX_LABELS_LIMIT], sid;
    if (idx->nseries == 0)
        return NONE;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t ni = name_find(idx, c->l[i].name, c->nlen[i]);
        uint32_t vid = tsdb__strtab_find(&idx->st, c->l[i].value, c->vlen[i]);
        if ((pids[i] = pair_find(idx, ni, vid)) == NONE)
            return NONE;
    }
    series_slot(idx, pids, c->n, series_hash(pids, c->n), &sid);
    return sid;
}

/* Add the series c (known to be absent) under the write lock. Returns its id or an error. */
static int create(struct tsdb__index *idx, const struct canon *c, uint32_t *id)
{
    uint32_t pids[TSDB_MAX_LABELS_LIMIT], sid;
    /* Check every limit before touching anything: a refusal leaves no trace. */
    if (idx->nseries >= idx->max_series || idx->nlab + c->n > INT32_MAX)
        return TSDB__ESERIES_LIMIT;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t ni = name_add(idx, c->l[i].name, c->nlen[i]);
        uint32_t vid = tsdb__strtab_intern(&idx->st, c->l[i].value, c->vlen[i]);
        pids[i] = pair_add(idx, ni, vid);
    }
    if (!idx->stab || ((size_t)idx->nseries + 1) * 4 > ((size_t)idx->smask + 1) * 3)
        series_rehash(idx, table_size((size_t)idx->nseries + 1));
    uint64_t h = series_hash(pids, c->n);
    uint32_t slot = series_slot(idx, pids, c->n, h, &sid);
    if (sid != NONE) { /* cannot happen: the caller looked under the same lock */
        *id = sid;
        return 0;
    }
    sid = idx->nseries;
    util_grow((void **)&idx->lab, &idx->lab_cap, idx->nlab + c->n, sizeof(uint32_t));
    memcpy(idx->lab + idx->nlab, pids, c->n * sizeof(uint32_t));
    util_grow((void **)&idx->off, &idx->off_cap, (size_t)sid + 2, sizeof(uint32_t));
    idx->off[sid] = (uint32_t)idx->nlab;
    idx->nlab += c->n;
    idx->off[sid + 1] = (uint32_t)idx->nlab;
    idx->stab[slot] = (uint32_t)(h >> 56) << SID_BITS | (sid + 1);
    for (size_t i = 0; i < c->n; i++) {
        postings_add(idx, &idx->pairs[pids[i]], sid);
        idx->names[idx->pair_name[pids[i]]].nseries++;
    }
    idx->nseries++;
    *id = sid;
    return 1;
}

struct tsdb__index *tsdb__index_new(const struct tsdb__index_opts *opts)
{
    struct tsdb__index *idx = xcalloc(1, sizeof(*idx));
    idx->max_series = opts && opts->max_series ? opts->max_series : TSDB_MAX_SERIES_DEFAULT;
    if (idx->max_series > TSDB_MAX_SERIES_LIMIT)
        idx->max_series = TSDB_MAX_SERIES_LIMIT;
    idx->max_labels = opts && opts->max_labels ? opts->max_labels : TSDB_MAX_LABELS_DEFAULT;
    if (idx->max_labels > TSDB_MAX_LABELS_LIMIT)
        idx->max_labels = TSDB_MAX_LABELS_LIMIT;
    tsdb__strtab_init(&idx->st);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* glibc prefers readers by default, which lets queries starve the collector. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&idx->lock, &attr) != 0) {
        fprintf(stderr, "sitrep: cannot create the index lock\n");
        abort();
    }
    pthread_rwlockattr_destroy(&attr);
    return idx;
}

void tsdb__index_free(struct tsdb__index *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->npairs; i++)
        if (idx->pairs[i].n >= 2)
            free(idx->pairs[i].p.ids);
    for (size_t i = 0; i < idx->nnames; i++)
        free(idx->names[i].vals);
    free(idx->names);
    free(idx->ntab);
    free(idx->pairs);
    free(idx->pair_name);
    free(idx->ptab);
    free(idx->lab);
    free(idx->off);
    free(idx->stab);
    tsdb__strtab_release(&idx->st);
    pthread_rwlock_destroy(&idx->lock);
    free(idx);
}

/* Canonicalise labels and look the series up under the read lock. */
static int find(struct tsdb__index *idx, const struct tsdb__label *labels, size_t n,
                struct canon *c, uint32_t *sid)
{
    int r = canonicalize(idx, labels, n, c);
    if (r < 0)
        return r;
    pthread_rwlock_rdlock(&idx->lock);
    *sid = lookup(idx, c);
    pthread_rwlock_unlock(&idx->lock);
    return 0;
}

int tsdb__index_get_or_create(struct tsdb__index *idx, const struct tsdb__label *labels, size_t n,
                              uint32_t *id)
{
    struct canon c;
    uint32_t sid;
    int r = find(idx, labels, n, &c, &sid);
    if (r < 0)
        return r;
    if (sid != NONE) {
        *id = sid;
        return 0;
    }
    pthread_rwlock_wrlock(&idx->lock);
    /* Another writer may have created it between the two locks. */
    sid = lookup(idx, &c);
    if (sid != NONE) {
        *id = sid;
        r = 0;
    } else {
        r = create(idx, &c, id);
    }
    pthread_rwlock_unlock(&idx->lock);
    return r;
}

int tsdb__index_get(struct tsdb__index *idx, const struct tsdb__label *labels, size_t n,
                    uint32_t *id)
{
    struct canon c;
    uint32_t sid;
    int r = find(idx, labels, n, &c, &sid);
    if (r < 0)
        return r;
    if (sid == NONE)
        return TSDB__ENOTFOUND;
    *id = sid;
    return 0;
}

/* tsdb__index_labels without the lock (caller holds it). */
static int labels_locked(const struct tsdb__index *idx, uint32_t id, struct tsdb__label *out,
                         size_t cap)
{
    if (id >= idx->nseries)
        return TSDB__EBADARG;
    if (idx->off[id + 1] - idx->off[id] > cap)
        return TSDB__ELABEL_LIMIT;
    int r = (int)(idx->off[id + 1] - idx->off[id]);
    for (int i = 0; i < r; i++) {
        uint32_t pid = idx->lab[idx->off[id] + (uint32_t)i];
        out[i].name = tsdb__strtab_str(&idx->st, idx->names[idx->pair_name[pid]].str);
        out[i].value = tsdb__strtab_str(&idx->st, idx->pairs[pid].value);
    }
    return r;
}

int tsdb__index_labels(struct tsdb__index *idx, uint32_t id, struct tsdb__label *out, size_t cap)
{
    pthread_rwlock_rdlock(&idx->lock);
    int r = labels_locked(idx, id, out, cap);
    pthread_rwlock_unlock(&idx->lock);
    return r;
}

uint32_t tsdb__index_compact(struct tsdb__index *idx, const uint8_t *keep, uint32_t *newid)
{
    struct tsdb__index_opts o = {.max_series = idx->max_series, .max_labels = idx->max_labels};
    struct tsdb__index *fresh = tsdb__index_new(&o);
    struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
    pthread_rwlock_wrlock(&idx->lock);
    uint32_t kept = 0;
    for (uint32_t id = 0; id < idx->nseries; id++) {
        newid[id] = UINT32_MAX;
        if (!keep[id])
            continue;
        int nl = labels_locked(idx, id, ls, TSDB_MAX_LABELS_LIMIT);
        uint32_t nid;
        /* Same limits, valid labels, distinct sets: creation cannot fail,
         * and ids come out dense in the old order. */
        if (nl < 0 || tsdb__index_get_or_create(fresh, ls, (size_t)nl, &nid) != 1 || nid != kept)
            abort();
        newid[id] = kept++;
    }
    /*
     * Swap everything but the lock: idx takes the new tables, fresh the old
     * ones, which go (strings included) with it.
     */
    size_t at = offsetof(struct tsdb__index, max_series);
    unsigned char tmp[sizeof(struct tsdb__index)];
    memcpy(tmp, (unsigned char *)idx + at, sizeof(*idx) - at);
    memcpy((unsigned char *)idx + at, (unsigned char *)fresh + at, sizeof(*idx) - at);
    memcpy((unsigned char *)fresh + at, tmp, sizeof(*idx) - at);
    pthread_rwlock_unlock(&idx->lock);
    tsdb__index_free(fresh);
    return kept;
}

uint32_t tsdb__index_series_count(struct tsdb__index *idx)
{
    pthread_rwlock_rdlock(&idx->lock);
    uint32_t n = idx->nseries;
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

/* ---------------------------------------------------------- listings */

void tsdb__strlist_init(struct tsdb__strlist *l)
{
    memset(l, 0, sizeof(*l));
}

void tsdb__strlist_release(struct tsdb__strlist *l)
{
    free(l->s);
    memset(l, 0, sizeof(*l));
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tsdb__index_label_names(struct tsdb__index *idx, struct tsdb__strlist *out)
{
    pthread_rwlock_rdlock(&idx->lock);
    util_grow((void **)&out->s, &out->cap, idx->nnames, sizeof(*out->s));
    out->n = idx->nnames;
    for (size_t i = 0; i < idx->nnames; i++)
        out->s[i] = tsdb__strtab_str(&idx->st, idx->names[i].str);
    pthread_rwlock_unlock(&idx->lock);
    /* The strings never move, so sorting needs no lock. */
    if (out->n > 1)
        qsort(out->s, out->n, sizeof(*out->s), str_cmp);
}

void tsdb__index_label_values(struct tsdb__index *idx, const char *name, struct tsdb__strlist *out)
{
    out->n = 0;
    if (!name)
        return;
    pthread_rwlock_rdlock(&idx->lock);
    uint32_t ni = name_find(idx, name, strlen(name));
    if (ni != NONE) {
        const struct lname *ln = &idx->names[ni];
        util_grow((void **)&out->s, &out->cap, ln->nvals, sizeof(*out->s));
        out->n = ln->nvals;
        for (size_t i = 0; i < ln->nvals; i++)
            out->s[i] = tsdb__strtab_str(&idx->st, idx->pairs[ln->vals[i]].value);
    }
    pthread_rwlock_unlock(&idx->lock);
    if (out->n > 1)
        qsort(out->s, out->n, sizeof(*out->s), str_cmp);
}

void tsdb__index_stats(struct tsdb__index *idx, struct tsdb__index_stats *st)
{
    pthread_rwlock_rdlock(&idx->lock);
    st->series = idx->nseries;
    st->names = (uint32_t)idx->nnames;
    st->pairs = (uint32_t)idx->npairs;
    st->strings = (uint32_t)idx->st.n;
    st->label_refs = idx->nlab;
    st->string_bytes = idx->st.bytes;
    size_t b = sizeof(*idx) + idx->st.bytes + idx->postings_bytes;
    b += idx->names_cap * sizeof(struct lname) + (idx->ntab ? (idx->nmask + 1u) * 4u : 0);
    for (size_t i = 0; i < idx->nnames; i++)
        b += idx->names[i].vals_cap * sizeof(uint32_t);
    b += idx->pairs_cap * (sizeof(struct pair) + sizeof(uint32_t));
    b += idx->ptab ? ((size_t)idx->pmask + 1) * 4 : 0;
    b += (idx->lab_cap + idx->off_cap) * sizeof(uint32_t);
    b += idx->stab ? ((size_t)idx->smask + 1) * 4 : 0;
    st->bytes = b;
    pthread_rwlock_unlock(&idx->lock);
}

/* --------------------------------------------------------- selection */

void tsdb__sel_init(struct tsdb__sel *sel)
{
    memset(sel, 0, sizeof(*sel));
}

void tsdb__sel_release(struct tsdb__sel *sel)
{
    free(sel->ids);
    free(sel->bits);
    free(sel->lists);
    free(sel->plan);
    memset(sel, 0, sizeof(*sel));
}

/*
 * Which of a label's values a step of the selection needs, given how the
 * matcher treats stored (never empty) values.
 */
enum want {
    WANT_NONE, /* no value */
    WANT_ALL,  /* every value */
    WANT_LIST, /* the matcher's literals (its = / != value, or its alternation) */
    WANT_SCAN, /* test every value */
};

/*
 * One matcher of a selection. A positive step keeps the series that have a
 * value the matcher accepts (the matcher rejects ""). A negative step (the
 * matcher accepts "", so also series without the label) removes the series
 * that have a value it rejects. `want` says which values form that set.
 */
struct step {
    struct tsdb__matcher *m;
    uint32_t ni;
    int positive;
    enum want want;
    size_t est;      /* series in the set (exact unless WANT_SCAN: then an upper bound) */
    size_t cost;     /* estimated work to build the set from postings */
    uint32_t nfound; /* WANT_LIST: how many of the literals are values of the label */
};

/* The literals of a matcher: its = / != value, or a literal regex alternation's members. */
static const struct tsdb__strref *literals(const struct tsdb__matcher *m, struct tsdb__strref *one,
                                           size_t *n)
{
    if (m->type == TSDB__MATCH_EQ || m->type == TSDB__MATCH_NE) {
        *one = (struct tsdb__strref){m->value, m->value_len};
        *n = 1;
        return one;
    }
    *n = m->nset;
    return m->set;
}

static size_t test_cost(const struct tsdb__matcher *m)
{
    int regex = m->type == TSDB__MATCH_RE || m->type == TSDB__MATCH_NRE;
    return regex && m->re_kind == TSDB__RE_GENERIC ? 32 : 2;
}

/*
 * Fill sel->lists with the pair ids whose value the step needs and return
 * the total of their postings lengths, or TSDB__EMATCH.
 */
static long long step_lists(struct tsdb__index *idx, const struct step *s, struct tsdb__sel *sel)
{
    const struct lname *ln = &idx->names[s->ni];
    struct tsdb__matcher *m = s->m;
    long long total = 0;
    sel->nlists = 0;
    if (s->want == WANT_NONE)
        return 0;
    util_grow((void **)&sel->lists, &sel->lists_cap, ln->nvals, sizeof(uint32_t));
    if (s->want == WANT_LIST) {
        struct tsdb__strref one;
        size_t nlit;
        const struct tsdb__strref *lit = literals(m, &one, &nlit);
        for (size_t i = 0; i < nlit; i++) {
            uint32_t pid = pair_find(idx, s->ni, tsdb__strtab_find(&idx->st, lit[i].s, lit[i].len));
            if (pid != NONE) {
                sel->lists[sel->nlists++] = pid;
                total += idx->pairs[pid].n;
            }
        }
        return total;
    }
    int want = s->positive; /* the test result of the values to collect */
    for (size_t i = 0; i < ln->nvals; i++) {
        uint32_t pid = ln->vals[i];
        if (s->want == WANT_SCAN) {
            uint32_t v = idx->pairs[pid].value;
            int r = tsdb__matcher_test_utf8(m, tsdb__strtab_str(&idx->st, v),
                                            tsdb__strtab_len(&idx->st, v));
            if (r < 0)
                return r;
            if (r != want)
                continue;
        }
        sel->lists[sel->nlists++] = pid;
        total += idx->pairs[pid].n;
    }
    return total;
}

/*
 * Plan one matcher: resolve its label and decide which values it needs.
 * Returns 0, or 1 if the matcher alone selects nothing.
 */
static int plan_step(struct tsdb__index *idx, struct tsdb__matcher *m, struct step *s)
{
    s->m = m;
    s->ni = name_find(idx, m->name, strlen(m->name));
    s->positive = !m->matches_empty;
    s->want = WANT_NONE;
    s->est = s->cost = 0;
    s->nfound = 0;
    if (s->ni == NONE) /* no series has the label: every value is "" */
        return s->positive;
    const struct lname *ln = &idx->names[s->ni];

    /*
     * On stored (never empty) values a matcher is constant, or tests that the
     * value is one of its literals (MEMBER) or none of them (NONMEMBER), or
     * needs the general test.
     */
    enum { CONST_FALSE, CONST_TRUE, MEMBER, NONMEMBER, GENERAL } kind = GENERAL;
    switch (m->type) {
    case TSDB__MATCH_EQ:
    case TSDB__MATCH_NE:
        if (m->value_len == 0)
            kind = m->type == TSDB__MATCH_EQ ? CONST_FALSE : CONST_TRUE;
        else
            kind = m->type == TSDB__MATCH_EQ ? MEMBER : NONMEMBER;
        break;
    case TSDB__MATCH_RE:
    case TSDB__MATCH_NRE: {
        int re = m->type == TSDB__MATCH_RE;
        if (m->re_kind == TSDB__RE_ANY || m->re_kind == TSDB__RE_NONEMPTY)
            kind = re ? CONST_TRUE : CONST_FALSE;
        else if (m->re_kind == TSDB__RE_SET)
            kind = re ? MEMBER : NONMEMBER;
        break;
    }
    }
    /* Positive steps collect the values the matcher accepts, negative ones those it rejects. */
    int want = s->positive;
    switch (kind) {
    case CONST_FALSE:
    case CONST_TRUE:
        s->want = (kind == CONST_TRUE) == want ? WANT_ALL : WANT_NONE;
        break;
    case MEMBER:
    case NONMEMBER:
        s->want = (kind == MEMBER) == want ? WANT_LIST : WANT_SCAN;
        break;
    case GENERAL:
        s->want = WANT_SCAN;
        break;
    }
    switch (s->want) {
    case WANT_NONE:
        return s->positive;
    case WANT_ALL:
        s->est = ln->nseries;
        s->cost = ln->nseries + ln->nvals;
        break;
    case WANT_SCAN:
        s->est = ln->nseries;
        s->cost = ln->nseries + ln->nvals * test_cost(m);
        break;
    case WANT_LIST: {
        struct tsdb__strref one;
        size_t nlit;
        const struct tsdb__strref *lit = literals(m, &one, &nlit);
        for (size_t i = 0; i < nlit; i++) {
            uint32_t pid = pair_find(idx, s->ni, tsdb__strtab_find(&idx->st, lit[i].s, lit[i].len));
            if (pid != NONE) {
                s->est += idx->pairs[pid].n;
                s->nfound++;
            }
        }
        s->cost = s->est + nlit;
        if (s->nfound == 0) { /* none of the literals is a value of the label */
            s->want = WANT_NONE;
            return s->positive;
        }
        break;
    }
    }
    return 0;
}

static int step_order(const void *a, const void *b)
{
    const struct step *x = a, *y = b;
    /* Positive steps first, cheapest first: the first one sets the result size. */
    if (x->positive != y->positive)
        return y->positive - x->positive;
    return (x->cost > y->cost) - (x->cost < y->cost);
}

static void ensure_ids(struct tsdb__sel *sel, size_t n)
{
    util_grow((void **)&sel->ids, &sel->cap, n, sizeof(uint32_t));
}

/* A zeroed bitmap of nseries bits in sel->bits. */
static uint64_t *bitmap(struct tsdb__sel *sel, uint32_t nseries)
{
    size_t words = ((size_t)nseries + 63) / 64;
    util_grow((void **)&sel->bits, &sel->bits_cap, words, sizeof(uint64_t));
    memset(sel->bits, 0, words * sizeof(uint64_t));
    return sel->bits;
}

static void bits_set_lists(struct tsdb__index *idx, struct tsdb__sel *sel, uint64_t *bits,
                           int value)
{
    for (size_t i = 0; i < sel->nlists; i++) {
        const struct pair *p = &idx->pairs[sel->lists[i]];
        const uint32_t *ids = postings(p);
        if (value)
            for (uint32_t k = 0; k < p->n; k++)
                bits[ids[k] / 64] |= 1ull << (ids[k] % 64);
        else
            for (uint32_t k = 0; k < p->n; k++)
                bits[ids[k] / 64] &= ~(1ull << (ids[k] % 64));
    }
}

/* Store the set bits of bits[0..nseries) as the result. */
static void bits_extract(struct tsdb__sel *sel, const uint64_t *bits, uint32_t nseries)
{
    size_t words = ((size_t)nseries + 63) / 64, n = 0;
    for (size_t w = 0; w < words; w++)
        n += (size_t)__builtin_popcountll(bits[w]);
    ensure_ids(sel, n);
    n = 0;
    for (size_t w = 0; w < words; w++)
        for (uint64_t b = bits[w]; b; b &= b - 1)
            sel->ids[n++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
    sel->n = n;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The union of sel->lists (disjoint: one label has one value per series) as the result. */
static void union_to_result(struct tsdb__index *idx, struct tsdb__sel *sel, size_t total,
                            uint32_t nseries)
{
    if (sel->nlists == 1 || total <= 64) {
        ensure_ids(sel, total);
        size_t n = 0;
        for (size_t i = 0; i < sel->nlists; i++) {
            const struct pair *p = &idx->pairs[sel->lists[i]];
            memcpy(sel->ids + n, postings(p), p->n * sizeof(uint32_t));
            n += p->n;
        }
        if (sel->nlists > 1)
            qsort(sel->ids, n, sizeof(uint32_t), u32_cmp);
        sel->n = n;
        return;
    }
    uint64_t *bits = bitmap(sel, nseries);
    bits_set_lists(idx, sel, bits, 1);
    bits_extract(sel, bits, nseries);
}

/* First index i >= lo with a[i] >= x (n if none): exponential, then binary search. */
static size_t gallop(const uint32_t *a, size_t n, size_t lo, uint32_t x)
{
    size_t hi = lo, step = 1;
    while (hi < n && a[hi] < x) {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    if (hi > n)
        hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Keep in sel->ids the ids that are (keep_found = 1) or are not (0) in the
 * sorted list l[0..nl). Gallops through l when it is much longer.
 */
static void merge_list(struct tsdb__sel *sel, const uint32_t *l, size_t nl, int keep_found)
{
    size_t out = 0, j = 0;
    int skewed = nl / 16 > sel->n;
    for (size_t i = 0; i < sel->n; i++) {
        uint32_t x = sel->ids[i];
        if (skewed) {
            j = gallop(l, nl, j, x);
        } else {
            while (j < nl && l[j] < x)
                j++;
        }
        int found = j < nl && l[j] == x;
        if (found == keep_found)
            sel->ids[out++] = x;
    }
    sel->n = out;
}

/* The value string id of label ni in series sid, or NONE. */
static uint32_t series_value(const struct tsdb__index *idx, uint32_t sid, uint32_t ni)
{
    for (uint32_t k = idx->off[sid]; k < idx->off[sid + 1]; k++) {
        uint32_t pid = idx->lab[k];
        if (idx->pair_name[pid] == ni)
            return idx->pairs[pid].value;
    }
    return NONE;
}

/* Apply a step to the current result by testing each series' own value. */
static int apply_filter(struct tsdb__index *idx, const struct step *s, struct tsdb__sel *sel)
{
    size_t out = 0;
    for (size_t i = 0; i < sel->n; i++) {
        uint32_t v = series_value(idx, sel->ids[i], s->ni);
        int r = v == NONE ? s->m->matches_empty
                          : tsdb__matcher_test_utf8(s->m, tsdb__strtab_str(&idx->st, v),
                                                    tsdb__strtab_len(&idx->st, v));
        if (r < 0)
            return r;
        if (r)
            sel->ids[out++] = sel->ids[i];
    }
    sel->n = out;
    return 0;
}

/* Apply a step to the current result (sel->ids) through postings. */
static int apply_postings(struct tsdb__index *idx, const struct step *s, struct tsdb__sel *sel,
                          uint32_t nseries)
{
    long long total = step_lists(idx, s, sel);
    if (total < 0)
        return (int)total;
    if (sel->nlists <= 1) {
        const struct pair *p = sel->nlists ? &idx->pairs[sel->lists[0]] : NULL;
        merge_list(sel, p ? postings(p) : NULL, p ? p->n : 0, s->positive);
        return 0;
    }
    /* Several lists: mark their union in a bitmap, then test each remaining id. */
    uint64_t *bits = bitmap(sel, nseries);
    bits_set_lists(idx, sel, bits, 1);
    size_t out = 0;
    for (size_t i = 0; i < sel->n; i++) {
        uint32_t x = sel->ids[i];
        int in = (bits[x / 64] >> (x % 64)) & 1;
        if (in == s->positive)
            sel->ids[out++] = x;
    }
    sel->n = out;
    return 0;
}

/*
 * Apply a WANT_LIST step to the current result by looking for the wanted
 * pair ids among each series' own: no strings, no other tables.
 */
static void apply_filter_ids(struct tsdb__index *idx, const struct step *s, struct tsdb__sel *sel)
{
    step_lists(idx, s, sel); /* WANT_LIST only looks values up: cannot fail */
    size_t out = 0;
    for (size_t i = 0; i < sel->n; i++) {
        uint32_t sid = sel->ids[i];
        int found = 0;
        for (uint32_t k = idx->off[sid]; k < idx->off[sid + 1] && !found; k++)
            for (size_t j = 0; j < sel->nlists; j++)
                found |= idx->lab[k] == sel->lists[j];
        if (found == s->positive)
            sel->ids[out++] = sid;
    }
    sel->n = out;
}

/* Largest number of pair ids apply_filter_ids() compares each label with. */
#define FILTER_IDS_MAX 8

enum how { BY_POSTINGS, BY_IDS, BY_VALUE };

static size_t log2_ceil(size_t x)
{
    size_t r = 1;
    while (r < 63 && ((size_t)1 << r) < x)
        r++;
    return r;
}

/*
 * How to apply a step to a result of sel->n series: through postings, or by
 * checking each series (its pair ids, or its value against the matcher).
 * The costs are rough counts of memory touched; a series' labels cost a few
 * cache misses, a postings list its length (or a gallop through it).
 */
static enum how choose(const struct tsdb__sel *sel, const struct step *s, uint32_t nseries)
{
    int ids = s->want == WANT_LIST && s->nfound <= FILTER_IDS_MAX;
    if (sel->force)
        return sel->force == TSDB__SEL_POSTINGS ? BY_POSTINGS : ids ? BY_IDS : BY_VALUE;
    size_t n = sel->n, postings, filter;
    if (s->want == WANT_LIST && s->nfound == 1) {
        postings = n * log2_ceil(s->est + 1);
        if (s->est + n < postings)
            postings = s->est + n;
    } else {
        postings = s->cost + nseries / 64 + n; /* a bitmap of the union */
    }
    filter = ids ? n * (4 + s->nfound) : n * (12 + test_cost(s->m));
    if (filter >= postings)
        return BY_POSTINGS;
    return ids ? BY_IDS : BY_VALUE;
}

static int select_locked(struct tsdb__index *idx, struct tsdb__matcher *ms, size_t n,
                         struct tsdb__sel *sel)
{
    uint32_t nseries = idx->nseries;
    util_grow(&sel->plan, &sel->plan_cap, n, sizeof(struct step));
    struct step *steps = sel->plan;
    size_t nsteps = 0, npos = 0;
    sel->n = 0;
    if (nseries == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct step *s = &steps[nsteps];
        if (plan_step(idx, &ms[i], s))
            return 0; /* this matcher selects nothing, so neither does the intersection */
        if (s->want == WANT_NONE)
            continue; /* a negative step with nothing to remove */
        npos += s->positive;
        nsteps++;
    }
    if (nsteps > 1)
        qsort(steps, nsteps, sizeof(*steps), step_order);

    size_t first = 0;
    if (npos > 0) {
        long long total = step_lists(idx, &steps[0], sel);
        if (total < 0)
            return (int)total;
        union_to_result(idx, sel, (size_t)total, nseries);
        first = 1;
    } else if (sel->force == TSDB__SEL_FILTER) {
        ensure_ids(sel, nseries);
        for (uint32_t i = 0; i < nseries; i++)
            sel->ids[i] = i;
        sel->n = nseries;
    } else {
        /* Only negative steps: start from every series and clear what they remove. */
        uint64_t *bits = bitmap(sel, nseries);
        memset(bits, 0xff, nseries / 64 * sizeof(uint64_t));
        if (nseries % 64)
            bits[nseries / 64] = (1ull << (nseries % 64)) - 1;
        for (size_t i = 0; i < nsteps; i++) {
            long long total = step_lists(idx, &steps[i], sel);
            if (total < 0)
                return (int)total;
            bits_set_lists(idx, sel, bits, 0);
        }
        bits_extract(sel, bits, nseries);
        return 0;
    }
    for (size_t i = first; i < nsteps && sel->n > 0; i++) {
        int r = 0;
        switch (choose(sel, &steps[i], nseries)) {
        case BY_POSTINGS:
            r = apply_postings(idx, &steps[i], sel, nseries);
            break;
        case BY_IDS:
            apply_filter_ids(idx, &steps[i], sel);
            break;
        case BY_VALUE:
            r = apply_filter(idx, &steps[i], sel);
            break;
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int tsdb__index_select(struct tsdb__index *idx, struct tsdb__matcher *ms, size_t n,
                       struct tsdb__sel *sel)
{
    pthread_rwlock_rdlock(&idx->lock);
    int r = select_locked(idx, ms, n, sel);
    pthread_rwlock_unlock(&idx->lock);
    if (r < 0)
        sel->n = 0;
    return r;
}
