/*
 * checkpoint.c: the store's WAL records, replay, and checkpoints.
 *
 * Records (payloads, little-endian):
 *   SERIES  (1): u32 id | u16 n | n x (u16 len, name bytes, u16 len, value bytes)
 *   SAMPLES (2): i64 ts | u32 n | n x (u32 id, u64 value bits)  (older runs)
 *   PACKED  (5): i64 ts | u32 n | n packed samples (packed.h)     (appends)
 *   RAW     (3): u32 id | u32 n | n x (i64 ts, u64 value bits)   (older checkpoints)
 *   CHUNK   (4): u32 id | an encoded chunk's bytes                (checkpoints)
 *   TAIL    (6): u32 id | a chunk of the raw tail's samples       (checkpoints)
 *
 * A TAIL record is a one-block chunk: the tail's samples at ~0.5 bytes each
 * instead of RAW's 16 (most of a checkpoint was tails); replay appends them
 * one by one, as for RAW, so they stay raw.
 *
 * A checkpoint is a directory checkpoint.N holding WAL-format segments: a
 * SERIES record for every series, then each series' head chunks and raw
 * tail as they were after WAL segment N was started. It replaces segments
 * below N. Replay loads the newest checkpoint, then segments >= N in order.
 * A sample appended while the checkpoint was being written can be in both;
 * the second copy is refused as out of order (a series' samples only ever
 * grow in time), so nothing is duplicated. Samples before the end of the
 * newest raw block are refused as too old (they are in the block).
 *
 * Series ids in records are those of the run that wrote them. Every run
 * starts by writing a checkpoint, so the files on disk only ever use one
 * run's ids; replay maps them to the fresh index's ids anyway.
 */
#include "tsdb/chunk.h"
#include "tsdb/db.h"
#include "tsdb/le.h"
#include "tsdb/packed.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_PREFIX "checkpoint."

/* Room for len more bytes in the scratch buffer; returns where they go. */
static uint8_t *room(uint8_t **buf, size_t *cap, size_t len)
{
    if (len > *cap) {
        void *p = *buf;
        util_grow(&p, cap, len, 1);
        *buf = p;
    }
    return *buf;
}

static size_t series_record(uint8_t **buf, size_t *cap, uint32_t id, const struct tsdb__label *ls,
                            size_t n)
{
    size_t len = 6;
    for (size_t i = 0; i < n; i++)
        len += 4 + strlen(ls[i].name) + strlen(ls[i].value);
    uint8_t *p = room(buf, cap, len);
    tsdb__put32(p, id);
    tsdb__put16(p + 4, (uint16_t)n);
    p += 6;
    for (size_t i = 0; i < n; i++) {
        const char *s[2] = {ls[i].name, ls[i].value};
        for (int k = 0; k < 2; k++) {
            size_t l = strlen(s[k]);
            tsdb__put16(p, (uint16_t)l);
            memcpy(p + 2, s[k], l);
            p += 2 + l;
        }
    }
    return len;
}

void tsdb__log_series(struct tsdb *db, uint32_t id, const struct tsdb__label *ls, size_t n)
{
    size_t len = series_record(&db->rec, &db->rec_cap, id, ls, n);
    tsdb__wal_append(db->wal, TSDB__REC_SERIES, db->rec, len);
}

/* ------------------------------------------------------------- replay */

struct replay {
    struct tsdb *db;
    uint32_t skip_below; /* WAL segments the checkpoint covers */
    uint32_t *map;       /* record id -> index id, UINT32_MAX if unknown */
    size_t map_cap;
    uint64_t bad, samples, old;
};

static uint32_t *map_slot(struct replay *r, uint32_t wid)
{
    if (wid >= r->map_cap) {
        size_t old = r->map_cap;
        void *m = r->map;
        util_grow(&m, &r->map_cap, (size_t)wid + 1, sizeof(uint32_t));
        r->map = m;
        memset(r->map + old, 0xff, (r->map_cap - old) * sizeof(uint32_t));
    }
    return &r->map[wid];
}

static int replay_series(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 6)
        return -1;
    uint32_t wid = (uint32_t)tsdb__get32(p);
    size_t n = (size_t)tsdb__get16(p + 4), off = 6;
    if (n == 0 || n > TSDB_MAX_LABELS_LIMIT)
        return -1;
    struct tsdb__label ls[TSDB_MAX_LABELS_LIMIT];
    char *strs[2 * TSDB_MAX_LABELS_LIMIT];
    int rc = 0;
    size_t made = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        size_t l;
        if (off + 2 > len || (l = (size_t)tsdb__get16(p + off), off + 2 + l > len)) {
            rc = -1;
            break;
        }
        strs[made++] = xstrndup((const char *)p + off + 2, l);
        off += 2 + l;
    }
    uint32_t id = 0;
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            ls[i] = (struct tsdb__label){strs[2 * i], strs[2 * i + 1]};
        rc = tsdb__index_get_or_create(r->db->idx, ls, n, &id) < 0 ? -1 : 0;
    }
    for (size_t i = 0; i < made; i++)
        free(strs[i]);
    if (rc < 0)
        return -1;
    *map_slot(r, wid) = id;
    return 0;
}

/* The index id of record id wid, or UINT32_MAX (counted as bad). */
static uint32_t mapped(struct replay *r, uint32_t wid)
{
    if (wid >= r->map_cap || r->map[wid] == UINT32_MAX) {
        r->bad++;
        return UINT32_MAX;
    }
    return r->map[wid];
}

static void add(struct replay *r, uint32_t id, int64_t ts, uint64_t bits)
{
    double v;
    memcpy(&v, &bits, 8);
    int rc = tsdb__head_append(r->db->head, id, ts, v);
    if (rc == 0)
        r->samples++;
    else if (rc == TSDB__EOLD)
        r->old++;
}

static int replay_samples(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 12)
        return -1;
    int64_t ts = (int64_t)tsdb__get64(p);
    size_t n = (size_t)tsdb__get32(p + 8);
    if (n > (len - 12) / 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = p + 12 + 12 * i;
        uint32_t id = mapped(r, (uint32_t)tsdb__get32(e));
        if (id != UINT32_MAX)
            add(r, id, ts, tsdb__get64(e + 4));
    }
    return 0;
}

static int replay_packed(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 12)
        return -1;
    int64_t ts = (int64_t)tsdb__get64(p);
    size_t n = (size_t)tsdb__get32(p + 8);
    const uint8_t *at = p + 12, *end = p + len;
    struct tsdb__packed st = {0, 0};
    uint32_t wid;
    uint64_t bits;
    for (size_t i = 0; i < n; i++) {
        if (tsdb__packed_get(&at, end, &st, &wid, &bits) < 0)
            return -1; /* the samples before it stay: each was intact */
        uint32_t id = mapped(r, wid);
        if (id != UINT32_MAX)
            add(r, id, ts, bits);
    }
    return at == end ? 0 : -1;
}

static int replay_raw(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 8)
        return -1;
    size_t n = (size_t)tsdb__get32(p + 4);
    if (n > (len - 8) / 16)
        return -1;
    uint32_t id = mapped(r, (uint32_t)tsdb__get32(p));
    for (size_t i = 0; i < n && id != UINT32_MAX; i++)
        add(r, id, (int64_t)tsdb__get64(p + 8 + 16 * i), tsdb__get64(p + 16 + 16 * i));
    return 0;
}

/* Append the samples of chunk bytes p[0..len) at or after mint one by one
 * (those before a damaged block stay); 0 or a chunk error. */
static int add_each(struct replay *r, uint32_t id, const uint8_t *p, size_t len, int64_t mint)
{
    struct tsdb__chunk_iter *it = xmalloc(sizeof(*it));
    int rc = tsdb__chunk_iter_init(it, p, len, mint, INT64_MAX);
    int64_t t;
    double v;
    if (rc == 0)
        while ((rc = tsdb__chunk_iter_next(it, &t, &v)) > 0) {
            uint64_t bits;
            memcpy(&bits, &v, 8);
            add(r, id, t, bits);
        }
    free(it);
    return rc;
}

static int replay_tail(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 4)
        return -1;
    uint32_t id = mapped(r, (uint32_t)tsdb__get32(p));
    if (id == UINT32_MAX)
        return 0;
    return add_each(r, id, p + 4, len - 4, INT64_MIN) < 0 ? -1 : 0;
}

static int replay_chunk(struct replay *r, const uint8_t *p, size_t len)
{
    if (len < 4)
        return -1;
    uint32_t id = mapped(r, (uint32_t)tsdb__get32(p));
    if (id == UINT32_MAX)
        return 0;
    int64_t min_valid = tsdb__head_min_valid(r->db->head);
    struct tsdb__chunk_iter *it = xmalloc(sizeof(*it));
    int rc = tsdb__chunk_iter_init(it, p + 4, len - 4, INT64_MIN, INT64_MAX);
    int64_t t, first = 0, last = 0;
    double v;
    size_t n = 0;
    if (rc == 0)
        while ((rc = tsdb__chunk_iter_next(it, &t, &v)) > 0) {
            if (!n++)
                first = t;
            last = t;
        }
    if (rc == 0 && n && last < min_valid) {
        r->old += n; /* in a block already */
    } else if (rc == 0 && n && first >= min_valid) {
        rc = tsdb__head_load_chunk(r->db->head, id, p + 4, len - 4);
        if (rc == 0)
            r->samples += n;
    } else if (rc == 0 && n) {
        /* Straddles the cut (the block span changed): sample by sample. */
        rc = add_each(r, id, p + 4, len - 4, min_valid);
    }
    free(it);
    return rc < 0 ? -1 : 0;
}

static int on_record(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    struct replay *r = ctx;
    if (seg < r->skip_below)
        return 0;
    int rc = type == TSDB__REC_SERIES    ? replay_series(r, p, len)
             : type == TSDB__REC_SAMPLES ? replay_samples(r, p, len)
             : type == TSDB__REC_PACKED  ? replay_packed(r, p, len)
             : type == TSDB__REC_RAW     ? replay_raw(r, p, len)
             : type == TSDB__REC_CHUNK   ? replay_chunk(r, p, len)
             : type == TSDB__REC_TAIL    ? replay_tail(r, p, len)
                                         : -1;
    if (rc < 0)
        r->bad++;
    return 0;
}

/*
 * The newest complete checkpoint's number (0 if none). Unfinished ones
 * (*.tmp) and older ones are deleted.
 */
static uint32_t find_checkpoint(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint32_t best = 0;
    struct dirent *de;
    char names[64][64];
    size_t nn = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) != 0)
            continue;
        const char *num = de->d_name + strlen(CKPT_PREFIX);
        char *end;
        unsigned long v = strtoul(num, &end, 10);
        int done = *end == 0 && end - num == 8;
        if (done && v > best)
            best = (uint32_t)v;
        if (nn < ARRAY_SIZE(names) && strlen(de->d_name) < sizeof(names[0]))
            memcpy(names[nn++], de->d_name, strlen(de->d_name) + 1);
    }
    closedir(d);
    char keep[64];
    snprintf(keep, sizeof(keep), CKPT_PREFIX "%08u", best);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < nn && dfd >= 0; i++)
        if (strcmp(names[i], keep) != 0 && util_remove_dir(dfd, names[i]) < 0)
            log_warn("tsdb: %s/%s: cannot remove: %s", dir, names[i], strerror(errno));
    if (dfd >= 0)
        close(dfd);
    return best;
}

int tsdb__replay(struct tsdb *db, char *err, size_t errlen)
{
    tsdb__head_set_min_valid(db->head, tsdb__raw_maxt(db));
    struct replay r = {.db = db};
    uint32_t ck = find_checkpoint(db->dir);
    char path[4096];
    struct tsdb__wal_stats st = {0}, st2 = {0};
    int64_t t0 = util_mono_ns();
    int rc = 0;
    if (ck) {
        snprintf(path, sizeof(path), "%s/" CKPT_PREFIX "%08u", db->dir, ck);
        rc = tsdb__wal_replay(path, on_record, &r, &st);
        r.skip_below = ck;
    }
    db->checkpoint_seg = ck;
    snprintf(path, sizeof(path), "%s/wal", db->dir);
    if (rc == 0)
        rc = tsdb__wal_replay(path, on_record, &r, &st2);
    free(r.map);
    atomic_fetch_add(&db->wal_corrupt_ranges, st.corrupt_ranges + st2.corrupt_ranges);
    if (rc < 0) {
        snprintf(err, errlen, "%s: checkpoint or WAL could not be read (see log)", db->dir);
        return -1;
    }
    if (st.records + st2.records)
        log_info("tsdb: %s: loaded %llu samples of %u series from %s%llu WAL records in %.0f ms%s",
                 db->dir, (unsigned long long)r.samples, tsdb__index_series_count(db->idx),
                 ck ? "a checkpoint and " : "", (unsigned long long)st2.records,
                 (double)(util_mono_ns() - t0) / 1e6,
                 st.corrupt_ranges + st2.corrupt_ranges ? "; damaged ranges skipped (see above)"
                                                        : "");
    if (r.bad)
        log_warn("tsdb: %s: %llu records or samples could not be applied", db->dir,
                 (unsigned long long)r.bad);
    return 0;
}

/* --------------------------------------------------------- checkpoint */

struct writer {
    struct tsdb__wal *w;
    uint32_t id;
    uint8_t *buf;
    size_t cap;
};

static int put_chunk(void *ctx, const struct tsdb__chunk *c)
{
    struct writer *wr = ctx;
    uint8_t *p = room(&wr->buf, &wr->cap, 4 + c->len);
    tsdb__put32(p, wr->id);
    memcpy(p + 4, c->buf, c->len);
    return tsdb__wal_append(wr->w, TSDB__REC_CHUNK, p, 4 + c->len);
}

static int put_raw(void *ctx, const int64_t *ts, const double *v, size_t n)
{
    struct writer *wr = ctx;
    if (!n)
        return 0;
    /* A tail is at most one block, strictly increasing: a TAIL record. */
    struct tsdb__chunk c;
    tsdb__chunk_init(&c);
    if (tsdb__chunk_append(&c, ts, v, n) == 0) {
        size_t len = 4 + c.len;
        uint8_t *p = room(&wr->buf, &wr->cap, len);
        tsdb__put32(p, wr->id);
        memcpy(p + 4, c.buf, c.len);
        tsdb__chunk_release(&c);
        return tsdb__wal_append(wr->w, TSDB__REC_TAIL, p, len);
    }
    tsdb__chunk_release(&c);
    uint8_t *p = room(&wr->buf, &wr->cap, 8 + 16 * n);
    tsdb__put32(p, wr->id);
    tsdb__put32(p + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], 8);
        tsdb__put64(p + 8 + 16 * i, (uint64_t)ts[i]);
        tsdb__put64(p + 16 + 16 * i, bits);
    }
    return tsdb__wal_append(wr->w, TSDB__REC_RAW, p, 8 + 16 * n);
}

/* Write everything into the checkpoint directory path. 0 or -1 (errno). */
static int write_checkpoint(struct tsdb *db, const char *path)
{
    char err[256];
    struct writer wr = {0};
    if (tsdb__wal_open(&wr.w, path, (size_t)64 << 20, err, sizeof(err)) < 0) {
        log_error("tsdb: checkpoint: %s", err);
        return -1;
    }
    int rc = 0;
    uint32_t n = tsdb__index_series_count(db->idx);
    struct tsdb__label *ls = xmalloc(TSDB_MAX_LABELS_LIMIT * sizeof(*ls));
    for (uint32_t id = 0; id < n && rc == 0; id++) {
        int nl = tsdb__index_labels(db->idx, id, ls, TSDB_MAX_LABELS_LIMIT);
        if (nl < 0)
            continue;
        size_t len = series_record(&wr.buf, &wr.cap, id, ls, (size_t)nl);
        tsdb__wal_append(wr.w, TSDB__REC_SERIES, wr.buf, len);
        wr.id = id;
        tsdb__head_visit(db->head, id, put_chunk, put_raw, &wr);
        /* Write outside the head's locks, a few MiB at a time. */
        if (tsdb__wal_pending(wr.w) > ((size_t)4 << 20))
            rc = tsdb__wal_flush(wr.w);
    }
    free(ls);
    free(wr.buf);
    if (rc == 0)
        rc = tsdb__wal_sync(wr.w);
    int e = errno;
    if (rc < 0)
        tsdb__wal_discard(wr.w);
    tsdb__wal_close(wr.w);
    errno = e;
    return rc;
}

int tsdb__checkpoint(struct tsdb *db)
{
    /*
     * No append lock: a record appended before the cut was appended after its
     * samples reached the head (tsdb_append_batch does both under its lock),
     * so what lands in segments below seg is in the snapshot taken next.
     * Records appended after it may be in both: replay refuses the second.
     */
    int rc = tsdb__wal_cut(db->wal);
    uint32_t seg = tsdb__wal_segment(db->wal);
    if (rc < 0) {
        log_error("tsdb: %s/wal: cannot start a segment for a checkpoint: %s", db->dir,
                  strerror(errno));
        atomic_fetch_add(&db->checkpoint_failures, 1);
        return -1;
    }
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof(tmp), "%s/" CKPT_PREFIX "%08u.tmp", db->dir, seg);
    snprintf(final, sizeof(final), "%s/" CKPT_PREFIX "%08u", db->dir, seg);
    util_remove_dir(AT_FDCWD, tmp);
    if (write_checkpoint(db, tmp) < 0 || rename(tmp, final) < 0 || util_fsync_dir(db->dir) < 0) {
        log_error("tsdb: %s: checkpoint failed: %s", final, strerror(errno));
        util_remove_dir(AT_FDCWD, tmp);
        atomic_fetch_add(&db->checkpoint_failures, 1);
        return -1;
    }
    tsdb__wal_truncate_before(db->wal, seg);
    db->checkpoint_seg = seg;
    find_checkpoint(db->dir); /* deletes the older ones */
    atomic_fetch_add(&db->checkpoints, 1);
    return 0;
}
