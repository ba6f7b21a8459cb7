/*
 * block.c: immutable on-disk blocks (see block.h): the writer (validate,
 * build the symbol table, sort the series, stream both files, fsync, rename),
 * the reader (mmap, verify the index once, verify each chunk on first use
 * and skip the bad ones) and the merge of blocks for compaction.
 *
 * Byte layout. All fixed-width integers are little-endian; "uvarint" is
 * LEB128 (7 bits a byte, low first, at most 10 bytes).
 *
 * chunks:
 *   magic "SITRBCH2" (8 bytes)
 *   then one record per chunk, back to back in the order of the index's
 *   entries: len bytes (a struct tsdb__chunk's buf[0..len)) |
 *   u32 crc32c(those len bytes). The index gives each len, so a record's
 *   offset is the magic plus every record before it (the reader sums them
 *   once at open).
 *
 * index:
 *   magic "SITRBIX1" (8) | u8 version (3) | i64 mint | i64 maxt
 *   symbols: uvarint count, then per symbol: uvarint len, len bytes, one
 *            0 byte. Every distinct label name and value once, sorted
 *            bytewise, no duplicates, no 0 byte inside. A symbol's ref is
 *            its position (0-based) in this list.
 *   series:  uvarint count, then per series, sorted by label set (compared
 *            pair by pair as the sequence name ref, value ref, ...; refs
 *            follow byte order, so this is byte order of the strings; a
 *            shorter prefix sorts first; no duplicates):
 *              uvarint nlabels (1..TSDB_MAX_LABELS_LIMIT)
 *              nlabels x (uvarint name ref, uvarint value ref), names
 *                strictly increasing
 *              uvarint nchunks, then per chunk, sorted by (column, mint):
 *                uvarint column (< TSDB_BLOCK_MAX_COLS)
 *                uvarint (chunk mint - block mint)
 *                uvarint (chunk maxt - chunk mint)
 *                uvarint len of the chunk's bytes (TSDB_CHUNK_HEADER ..
 *                  TSDB_CHUNK_MAX_BYTES)
 *              with mint <= chunk mint <= chunk maxt < maxt, and within a
 *              column each chunk's mint above the previous chunk's maxt
 *              (columns are independent in time).
 *   u32 crc32c over every byte of the index before it.
 *
 * No postings section yet: a reader that needs label lookups builds them
 * from the series list (a later version adds the section and bumps the
 * version byte). Chunk records are verified lazily, on first read. Versions
 * 1 (no column field) and 2 (a u32 length in each record and its absolute
 * offset in the index: 6 bytes a chunk more) never left development and are
 * refused like any other unknown version.
 */
#include "tsdb/block.h"
#include "tsdb/crc32c.h"
#include "tsdb/le.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNKS_MAGIC  "SITRBCH2"
#define INDEX_MAGIC   "SITRBIX1"
#define MAGIC_LEN     8
#define INDEX_VERSION 3
#define INDEX_HEADER  (MAGIC_LEN + 1 + 16)
#define REC_OVERHEAD  4 /* the u32 crc after a chunk's bytes */
#define TMP_PREFIX    "tmp-"

void tsdb__block_dirname(char *buf, size_t cap, int64_t mint, int64_t maxt)
{
    snprintf(buf, cap, "b-%" PRId64 "-%" PRId64, mint, maxt);
}

/* ------------------------------------------------------------- writer */

/*
 * Where encoded bytes go: a file (fd >= 0, buffered, written with write(2)
 * when the buffer fills) or memory (fd < 0, the buffer grows).
 */
struct sink {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t total; /* bytes put so far (the next byte's offset) */
    uint32_t crc;   /* over every byte put */
};

#define SINK_FILE_BUF ((size_t)64 << 10)

static int sink_flush(struct sink *s)
{
    size_t done = 0;
    while (done < s->len) {
        ssize_t k = write(s->fd, s->buf + done, s->len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return -1;
        }
        done += (size_t)k;
    }
    s->len = 0;
    return 0;
}

static int sink_put(struct sink *s, const void *p, size_t n)
{
    s->crc = tsdb__crc32c(s->crc, p, n);
    s->total += n;
    if (s->fd < 0) {
        void *b = s->buf;
        util_grow(&b, &s->cap, s->len + n, 1);
        s->buf = b;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        return 0;
    }
    if (s->len + n > s->cap && s->len && sink_flush(s) < 0)
        return -1;
    if (n >= s->cap) { /* a large chunk: straight through */
        struct sink direct = {.fd = s->fd, .buf = (uint8_t *)p, .len = n};
        return sink_flush(&direct);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static int sink_uvarint(struct sink *s, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return sink_put(s, b, n);
}

static int sink_u32(struct sink *s, uint32_t v)
{
    uint8_t b[4];
    tsdb__put32(b, v);
    return sink_put(s, b, 4);
}

/* One series of the plan: its label refs and where it came from. */
struct plan_series {
    const uint32_t *refs; /* 2 * nlabels: name ref, value ref, ... */
    uint32_t nlabels;
    size_t src; /* index into the caller's array */
};

/* Everything the writer derives from its input before it writes a byte. */
struct plan {
    int64_t mint, maxt;
    const struct tsdb__block_series *in;
    size_t n;
    const char **syms; /* sorted, distinct */
    size_t nsyms;
    uint32_t *refs; /* all series' refs */
    struct plan_series *order;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_refs(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb)
{
    for (uint32_t i = 0; i < 2 * na && i < 2 * nb; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return na < nb ? -1 : na > nb;
}

static int cmp_series(const void *a, const void *b)
{
    const struct plan_series *x = a, *y = b;
    return cmp_refs(x->refs, x->nlabels, y->refs, y->nlabels);
}

static void plan_release(struct plan *p)
{
    free(p->syms);
    free(p->refs);
    free(p->order);
    memset(p, 0, sizeof(*p));
}

static int invalid(char *err, size_t errlen, size_t i, const char *what)
{
    snprintf(err, errlen, "block: series %zu: %s", i, what);
    errno = EINVAL;
    return -1;
}

/* Check the input and derive symbols and order. 0, or -1 (EINVAL) with err. */
static int plan_build(struct plan *p, int64_t mint, int64_t maxt,
                      const struct tsdb__block_series *in, size_t n, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->mint = mint;
    p->maxt = maxt;
    p->in = in;
    p->n = n;
    if (mint >= maxt) {
        snprintf(err, errlen, "block: empty window [%" PRId64 ", %" PRId64 ")", mint, maxt);
        errno = EINVAL;
        return -1;
    }
    if (n > UINT32_MAX)
        return invalid(err, errlen, n, "too many series");
    size_t nstr = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tsdb__block_series *s = &in[i];
        if (s->nlabels == 0 || s->nlabels > TSDB_MAX_LABELS_LIMIT)
            return invalid(err, errlen, i, "no labels or too many");
        for (size_t k = 0; k < s->nlabels; k++) {
            if (!s->labels[k].name || !s->labels[k].value)
                return invalid(err, errlen, i, "NULL label string");
            if (k && strcmp(s->labels[k - 1].name, s->labels[k].name) >= 0)
                return invalid(err, errlen, i, "labels not sorted by name or a name twice");
        }
        for (size_t k = 0; k < s->nchunks; k++) {
            const struct tsdb__block_chunk *c = &s->chunks[k], *prev = c - 1;
            if (!c->buf || c->len < TSDB_CHUNK_HEADER || c->len > TSDB_CHUNK_MAX_BYTES)
                return invalid(err, errlen, i, "chunk of a bad length");
            if (c->col >= TSDB_BLOCK_MAX_COLS)
                return invalid(err, errlen, i, "chunk of a bad column");
            if (c->mint > c->maxt || c->mint < mint || c->maxt >= maxt)
                return invalid(err, errlen, i, "chunk outside the block's window");
            if (k && (c->col < prev->col || (c->col == prev->col && c->mint <= prev->maxt)))
                return invalid(err, errlen, i, "chunks overlap or are out of order");
        }
        nstr += 2 * s->nlabels;
    }

    p->syms = xmalloc((nstr ? nstr : 1) * sizeof(*p->syms));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t l = 0; l < in[i].nlabels; l++) {
            p->syms[k++] = in[i].labels[l].name;
            p->syms[k++] = in[i].labels[l].value;
        }
    qsort(p->syms, nstr, sizeof(*p->syms), cmp_str);
    for (size_t i = 0; i < nstr; i++)
        if (p->nsyms == 0 || strcmp(p->syms[p->nsyms - 1], p->syms[i]) != 0)
            p->syms[p->nsyms++] = p->syms[i];

    p->refs = xmalloc((nstr ? nstr : 1) * sizeof(*p->refs));
    p->order = xmalloc((n ? n : 1) * sizeof(*p->order));
    k = 0;
    for (size_t i = 0; i < n; i++) {
        p->order[i] = (struct plan_series){p->refs + k, (uint32_t)in[i].nlabels, i};
        for (size_t l = 0; l < in[i].nlabels; l++)
            for (int side = 0; side < 2; side++) {
                const char *s = side ? in[i].labels[l].value : in[i].labels[l].name;
                const char **hit = bsearch(&s, p->syms, p->nsyms, sizeof(*p->syms), cmp_str);
                p->refs[k++] = (uint32_t)(hit - p->syms);
            }
    }
    if (n)
        qsort(p->order, n, sizeof(*p->order), cmp_series);
    for (size_t i = 1; i < n; i++)
        if (cmp_series(&p->order[i - 1], &p->order[i]) == 0)
            return invalid(err, errlen, p->order[i].src, "the same label set twice");
    return 0;
}

/* Stream the chunks file, then the index. 0, or -1 with errno from a sink. */
static int plan_emit(struct plan *p, struct sink *chunks, struct sink *index)
{
    if (sink_put(chunks, CHUNKS_MAGIC, MAGIC_LEN) < 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        const struct tsdb__block_series *s = &p->in[p->order[i].src];
        for (size_t k = 0; k < s->nchunks; k++) {
            const struct tsdb__block_chunk *ch = &s->chunks[k];
            if (sink_put(chunks, ch->buf, ch->len) < 0 ||
                sink_u32(chunks, tsdb__crc32c(0, ch->buf, ch->len)) < 0)
                return -1;
        }
    }

    uint8_t hdr[INDEX_HEADER];
    memcpy(hdr, INDEX_MAGIC, MAGIC_LEN);
    hdr[MAGIC_LEN] = INDEX_VERSION;
    tsdb__put64(hdr + MAGIC_LEN + 1, (uint64_t)p->mint);
    tsdb__put64(hdr + MAGIC_LEN + 9, (uint64_t)p->maxt);
    if (sink_put(index, hdr, sizeof(hdr)) < 0 || sink_uvarint(index, p->nsyms) < 0)
        return -1;
    for (size_t i = 0; i < p->nsyms; i++) {
        size_t len = strlen(p->syms[i]);
        if (sink_uvarint(index, len) < 0 || sink_put(index, p->syms[i], len + 1) < 0)
            return -1;
    }
    if (sink_uvarint(index, p->n) < 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        const struct plan_series *o = &p->order[i];
        const struct tsdb__block_series *s = &p->in[o->src];
        if (sink_uvarint(index, o->nlabels) < 0)
            return -1;
        for (uint32_t l = 0; l < 2 * o->nlabels; l++)
            if (sink_uvarint(index, o->refs[l]) < 0)
                return -1;
        if (sink_uvarint(index, s->nchunks) < 0)
            return -1;
        for (size_t k = 0; k < s->nchunks; k++) {
            const struct tsdb__block_chunk *ch = &s->chunks[k];
            if (sink_uvarint(index, ch->col) < 0 ||
                sink_uvarint(index, (uint64_t)ch->mint - (uint64_t)p->mint) < 0 ||
                sink_uvarint(index, (uint64_t)ch->maxt - (uint64_t)ch->mint) < 0 ||
                sink_uvarint(index, ch->len) < 0)
                return -1;
        }
    }
    return sink_u32(index, index->crc);
}

int tsdb__block_encode_mem(int64_t mint, int64_t maxt, const struct tsdb__block_series *series,
                           size_t n, uint8_t **index, size_t *index_len, uint8_t **chunks,
                           size_t *chunks_len, char *err, size_t errlen)
{
    struct plan p;
    if (plan_build(&p, mint, maxt, series, n, err, errlen) < 0) {
        plan_release(&p);
        return -1;
    }
    struct sink ci = {.fd = -1}, ii = {.fd = -1};
    plan_emit(&p, &ci, &ii); /* memory sinks cannot fail */
    plan_release(&p);
    *index = ii.buf;
    *index_len = ii.len;
    *chunks = ci.buf;
    *chunks_len = ci.len;
    return 0;
}

static int create_file(int dirfd, const char *name)
{
    return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

int tsdb__block_write(const char *dir, int64_t mint, int64_t maxt,
                      const struct tsdb__block_series *series, size_t n, char *err, size_t errlen)
{
    char final[sizeof(((struct tsdb__block_name *)0)->name)], tmp[64];
    tsdb__block_dirname(final, sizeof(final), mint, maxt);
    snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s", final);
    struct plan p;
    if (plan_build(&p, mint, maxt, series, n, err, errlen) < 0) {
        plan_release(&p);
        return -1;
    }
    struct sink cs = {.fd = -1}, is = {.fd = -1};
    int dirfd = -1, tfd = -1, e = 0, made = 0;
    const char *what = "", *file = "";
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        what = "open";
        goto fail;
    }
    if (faccessat(dirfd, final, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        what = "block already present";
        file = final;
        goto fail;
    }
    if (util_remove_dir(dirfd, tmp) < 0 && errno != ENOENT) {
        what = "remove stale temporary block";
        file = tmp;
        goto fail;
    }
    file = tmp;
    if (mkdirat(dirfd, tmp, 0750) < 0) {
        what = "mkdir";
        goto fail;
    }
    made = 1;
    tfd = openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd < 0) {
        what = "open";
        goto fail;
    }
    cs.buf = xmalloc(SINK_FILE_BUF);
    cs.cap = SINK_FILE_BUF;
    is.buf = xmalloc(SINK_FILE_BUF);
    is.cap = SINK_FILE_BUF;
    what = "create";
    if ((cs.fd = create_file(tfd, "chunks")) < 0 || (is.fd = create_file(tfd, "index")) < 0)
        goto fail;
    what = "write";
    if (plan_emit(&p, &cs, &is) < 0 || sink_flush(&cs) < 0 || sink_flush(&is) < 0)
        goto fail;
    what = "fsync";
    if (fsync(cs.fd) < 0 || fsync(is.fd) < 0 || fsync(tfd) < 0)
        goto fail;
    if (renameat(dirfd, tmp, dirfd, final) < 0) {
        what = "rename into place";
        goto fail;
    }
    made = 0;
    /* The rename itself must survive a crash too. */
    if (fsync(dirfd) < 0) {
        what = "fsync";
        file = ".";
        goto fail;
    }
    close(cs.fd);
    close(is.fd);
    close(tfd);
    close(dirfd);
    free(cs.buf);
    free(is.buf);
    plan_release(&p);
    return 0;

fail:
    e = errno ? errno : EIO;
    snprintf(err, errlen, "block: %s%s%s: %s: %s", dir, *file ? "/" : "", file, what, strerror(e));
    if (cs.fd >= 0)
        close(cs.fd);
    if (is.fd >= 0)
        close(is.fd);
    if (tfd >= 0)
        close(tfd);
    if (made && util_remove_dir(dirfd, tmp) < 0)
        log_error("block: %s/%s: cannot remove after a failed write: %s", dir, tmp,
                  strerror(errno));
    if (dirfd >= 0)
        close(dirfd);
    free(cs.buf);
    free(is.buf);
    plan_release(&p);
    errno = e;
    return -1;
}

/* -------------------------------------------------------- directory scan */

static int parse_i64(const char *s, char end, int64_t *v, const char **next)
{
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (e == s || errno || *e != end)
        return -1;
    *v = x;
    *next = e;
    return 0;
}

/* 1 if name is exactly the canonical "b-<mint>-<maxt>" with mint < maxt. */
static int parse_block_name(const char *name, int64_t *mint, int64_t *maxt)
{
    const char *p;
    if (strncmp(name, "b-", 2) != 0 || parse_i64(name + 2, '-', mint, &p) < 0 ||
        parse_i64(p + 1, '\0', maxt, &p) < 0 || *mint >= *maxt)
        return 0;
    char canon[sizeof(((struct tsdb__block_name *)0)->name)];
    tsdb__block_dirname(canon, sizeof(canon), *mint, *maxt);
    return strlen(name) < sizeof(canon) && strcmp(canon, name) == 0;
}

static int cmp_block_name(const void *a, const void *b)
{
    const struct tsdb__block_name *x = a, *y = b;
    if (x->mint != y->mint)
        return x->mint < y->mint ? -1 : 1;
    return x->maxt < y->maxt ? -1 : x->maxt > y->maxt;
}

int tsdb__blocks_scan(const char *dir, struct tsdb__block_name **out, size_t *n, char *err,
                      size_t errlen)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "block: %s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t mint, maxt;
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            log_warn("block: %s/%s: removing an unfinished block", dir, de->d_name);
            if (util_remove_dir(dirfd(d), de->d_name) < 0)
                log_error("block: %s/%s: cannot remove: %s", dir, de->d_name, strerror(errno));
        } else if (parse_block_name(de->d_name, &mint, &maxt)) {
            void *p = *out;
            util_grow(&p, &cap, *n + 1, sizeof(**out));
            *out = p;
            struct tsdb__block_name *b = &(*out)[(*n)++];
            b->mint = mint;
            b->maxt = maxt;
            /* parse_block_name() accepts canonical names only: they fit. */
            memcpy(b->name, de->d_name, strlen(de->d_name) + 1);
        }
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof(**out), cmp_block_name);
    return 0;
}

/* ------------------------------------------------------------- reader */

enum { CHUNK_UNCHECKED, CHUNK_GOOD, CHUNK_BAD };

struct block_series {
    uint32_t labels; /* offset in the index of nlabels */
    uint32_t chunks; /* offset in the index of nchunks */
    uint32_t first;  /* block-wide number of its first chunk */
    uint32_t last;   /* offset in the index of its last chunk entry (0: none) */
    uint64_t off;    /* offset in the chunks file of its first chunk's record */
};

struct tsdb__block {
    char *name;
    const uint8_t *idx, *chk;
    size_t idx_len, chk_len;
    void *idx_map, *chk_map; /* mmap'ed (NULL for buffers or empty files) */
    int64_t mint, maxt;
    uint32_t nsyms;
    uint32_t *syms; /* offset of each symbol's bytes in the index */
    uint32_t nseries;
    struct block_series *series;
    uint32_t nchunks;
    atomic_uchar *state; /* per chunk: CHUNK_* */
    atomic_uint_fast64_t bad;
    /* Seek points readers found in its chunks (seek_get/put), allocated on first use. */
    pthread_mutex_t seek_mu;
    struct seek_slot *seeks;
};

/*
 * A chunk's seek point, remembered for the next read of the same recent
 * data (an instant query, a rule every second): the start of the last
 * block a reader decoded. Direct-mapped by chunk number and bounded, so a
 * block costs at most SEEK_SLOTS slots (192 KiB) however many chunks it
 * has; a collision just forgets the older point.
 */
#define SEEK_SLOTS 4096
struct seek_slot {
    uint32_t num1; /* chunk number + 1; 0: empty */
    struct tsdb__chunk_seek s;
};

/* A bounded reader over the index; any overrun sets bad and yields 0. */
struct rd {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t rd_uvarint(struct rd *r)
{
    /* Fast path (index entries are read on every query): 10 bytes at hand. */
    if (r->end - r->p >= 10) {
        const uint8_t *p = r->p;
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 63; shift += 7) {
            uint8_t b = *p++;
            v |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80)) {
                r->p = p;
                return v;
            }
        }
        uint8_t b = *p++; /* the 10th byte holds bit 63 only */
        if (b <= 1) {
            r->p = p;
            return v | (uint64_t)b << 63;
        }
        r->bad = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            break;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    r->p = r->end;
    return 0;
}

static size_t rd_left(const struct rd *r)
{
    return (size_t)(r->end - r->p);
}

/* One chunk entry of the index, decoded. */
struct entry {
    int col;
    int64_t mint, maxt;
    uint32_t len; /* of the chunk's bytes (its record adds REC_OVERHEAD) */
    uint64_t off; /* of its record in the chunks file (iter_entry's, unchecked) */
};

/* Decode one chunk entry against the block window; 0, or -1 if invalid. */
static int rd_chunk(struct rd *r, int64_t bmint, int64_t bmaxt, struct entry *e)
{
    uint64_t col = rd_uvarint(r), d1 = rd_uvarint(r), d2 = rd_uvarint(r), len = rd_uvarint(r);
    uint64_t w = (uint64_t)bmaxt - (uint64_t)bmint;
    if (r->bad || col >= TSDB_BLOCK_MAX_COLS || d1 >= w || d2 >= w - d1 ||
        len < TSDB_CHUNK_HEADER || len > TSDB_CHUNK_MAX_BYTES)
        return -1;
    e->len = (uint32_t)len;
    e->col = (int)col;
    e->mint = (int64_t)((uint64_t)bmint + d1);
    e->maxt = (int64_t)((uint64_t)e->mint + d2);
    return 0;
}

static int syms_less(const struct tsdb__block *b, uint32_t i, const uint8_t *s, size_t len)
{
    const uint8_t *q = b->idx + b->syms[i];
    size_t ql = strlen((const char *)q);
    int c = memcmp(q, s, ql < len ? ql : len);
    return c < 0 || (c == 0 && ql < len);
}

/* Parse and validate everything after the header. 0, or -1 with err. */
static int parse_index(struct tsdb__block *b, char *err, size_t errlen)
{
    struct rd r = {b->idx + INDEX_HEADER, b->idx + b->idx_len - 4, 0};
    const char *why = "malformed";
    uint64_t n = rd_uvarint(&r);
    if (r.bad || n > rd_left(&r) / 2)
        goto bad;
    b->nsyms = (uint32_t)n;
    b->syms = xmalloc((n ? n : 1) * sizeof(*b->syms));
    for (uint32_t i = 0; i < b->nsyms; i++) {
        uint64_t len = rd_uvarint(&r);
        if (r.bad || len >= rd_left(&r) || r.p[len] != 0 || memchr(r.p, 0, len)) {
            why = "bad symbol";
            goto bad;
        }
        if (i && !syms_less(b, i - 1, r.p, len)) {
            why = "symbols not sorted";
            goto bad;
        }
        b->syms[i] = (uint32_t)(r.p - b->idx);
        r.p += len + 1;
    }

    n = rd_uvarint(&r);
    if (r.bad || n > rd_left(&r) / 4) /* a series takes at least 4 bytes */
        goto bad;
    b->nseries = (uint32_t)n;
    b->series = xmalloc((n ? n : 1) * sizeof(*b->series));
    uint32_t prev[2 * TSDB_MAX_LABELS_LIMIT], cur[2 * TSDB_MAX_LABELS_LIMIT];
    uint32_t nprev = 0;
    uint64_t nchunks = 0, off = MAGIC_LEN;
    for (uint32_t i = 0; i < b->nseries; i++) {
        struct block_series *s = &b->series[i];
        s->labels = (uint32_t)(r.p - b->idx);
        uint64_t nl = rd_uvarint(&r);
        if (r.bad || nl == 0 || nl > TSDB_MAX_LABELS_LIMIT) {
            why = "bad label count";
            goto bad;
        }
        for (uint32_t l = 0; l < 2 * nl; l++) {
            uint64_t ref = rd_uvarint(&r);
            if (r.bad || ref >= b->nsyms) {
                why = "bad symbol ref";
                goto bad;
            }
            cur[l] = (uint32_t)ref;
            if (l >= 2 && l % 2 == 0 && cur[l] <= cur[l - 2]) {
                why = "labels not sorted by name";
                goto bad;
            }
        }
        if (i && cmp_refs(prev, nprev, cur, (uint32_t)nl) >= 0) {
            why = "series not sorted";
            goto bad;
        }
        memcpy(prev, cur, 2 * nl * sizeof(*cur));
        nprev = (uint32_t)nl;

        s->chunks = (uint32_t)(r.p - b->idx);
        s->first = (uint32_t)nchunks;
        s->off = off;
        uint64_t nc = rd_uvarint(&r);
        if (r.bad || nc > rd_left(&r) / 4 || nc > UINT32_MAX - nchunks) {
            why = "bad chunk count";
            goto bad;
        }
        nchunks += nc;
        struct entry e, last = {0};
        s->last = 0;
        for (uint64_t k = 0; k < nc; k++) {
            s->last = (uint32_t)(r.p - b->idx);
            if (rd_chunk(&r, b->mint, b->maxt, &e) < 0) {
                why = "bad chunk entry";
                goto bad;
            }
            if (k && (e.col < last.col || (e.col == last.col && e.mint <= last.maxt))) {
                why = "chunk entries out of order";
                goto bad;
            }
            last = e;
            off += e.len + REC_OVERHEAD;
        }
    }
    if (r.p != r.end) {
        why = "trailing bytes";
        goto bad;
    }
    b->nchunks = (uint32_t)nchunks;
    b->state = xcalloc(nchunks ? nchunks : 1, sizeof(*b->state));
    return 0;
bad:
    snprintf(err, errlen, "block: %s/index: %s near byte %zu", b->name, why,
             (size_t)(r.p - b->idx));
    return -1;
}

static int open_common(struct tsdb__block *b, char *err, size_t errlen)
{
    if (b->idx_len < INDEX_HEADER + 4 || memcmp(b->idx, INDEX_MAGIC, MAGIC_LEN) != 0) {
        snprintf(err, errlen, "block: %s/index: not a block index (bad magic or too short)",
                 b->name);
        return -1;
    }
    if (b->idx_len > UINT32_MAX) {
        snprintf(err, errlen, "block: %s/index: larger than 4 GiB", b->name);
        return -1;
    }
    uint32_t want = tsdb__get32(b->idx + b->idx_len - 4);
    if (tsdb__crc32c(0, b->idx, b->idx_len - 4) != want) {
        snprintf(err, errlen,
                 "block: %s/index: bytes 0-%zu: checksum mismatch (file damaged); the block's "
                 "data cannot be located",
                 b->name, b->idx_len);
        return -1;
    }
    if (b->idx[MAGIC_LEN] != INDEX_VERSION) {
        snprintf(err, errlen, "block: %s/index: unknown version %u", b->name, b->idx[MAGIC_LEN]);
        return -1;
    }
    b->mint = (int64_t)tsdb__get64(b->idx + MAGIC_LEN + 1);
    b->maxt = (int64_t)tsdb__get64(b->idx + MAGIC_LEN + 9);
    if (b->mint >= b->maxt) {
        snprintf(err, errlen, "block: %s/index: empty window", b->name);
        return -1;
    }
    if (b->chk_len < MAGIC_LEN || memcmp(b->chk, CHUNKS_MAGIC, MAGIC_LEN) != 0) {
        snprintf(err, errlen, "block: %s/chunks: not a block chunks file (bad magic or too short)",
                 b->name);
        return -1;
    }
    return parse_index(b, err, errlen);
}

int tsdb__block_open_mem(struct tsdb__block **out, const uint8_t *index, size_t index_len,
                         const uint8_t *chunks, size_t chunks_len, const char *name, char *err,
                         size_t errlen)
{
    struct tsdb__block *b = xcalloc(1, sizeof(*b));
    pthread_mutex_init(&b->seek_mu, NULL);
    b->name = xstrdup(name);
    b->idx = index;
    b->idx_len = index_len;
    b->chk = chunks;
    b->chk_len = chunks_len;
    atomic_init(&b->bad, 0);
    if (open_common(b, err, errlen) < 0) {
        tsdb__block_close(b);
        return -1;
    }
    *out = b;
    return 0;
}

/* Map path/file read-only: 0 with *map (NULL if empty) and *len, or -1 with err. */
static int map_file(const char *path, const char *file, void **map, size_t *len, char *err,
                    size_t errlen)
{
    char full[4096];
    snprintf(full, sizeof(full), "%s/%s", path, file);
    *map = NULL;
    *len = 0;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "block: %s: cannot open: %s", full, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            snprintf(err, errlen, "block: %s: cannot map: %s", full, strerror(errno));
            close(fd);
            return -1;
        }
        *map = p;
        *len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

int tsdb__block_open(struct tsdb__block **out, const char *path, char *err, size_t errlen)
{
    struct tsdb__block *b = xcalloc(1, sizeof(*b));
    pthread_mutex_init(&b->seek_mu, NULL);
    b->name = xstrdup(path);
    atomic_init(&b->bad, 0);
    if (map_file(path, "index", &b->idx_map, &b->idx_len, err, errlen) < 0 ||
        map_file(path, "chunks", &b->chk_map, &b->chk_len, err, errlen) < 0)
        goto fail;
    static const uint8_t none[1];
    b->idx = b->idx_map ? b->idx_map : none;
    b->chk = b->chk_map ? b->chk_map : none;
    if (open_common(b, err, errlen) < 0)
        goto fail;
    *out = b;
    return 0;
fail:
    tsdb__block_close(b);
    return -1;
}

void tsdb__block_close(struct tsdb__block *b)
{
    if (!b)
        return;
    if (b->idx_map)
        munmap(b->idx_map, b->idx_len);
    if (b->chk_map)
        munmap(b->chk_map, b->chk_len);
    free(b->syms);
    free(b->series);
    free((void *)b->state);
    free(b->seeks);
    pthread_mutex_destroy(&b->seek_mu);
    free(b->name);
    free(b);
}

int tsdb__block_seek_get(struct tsdb__block *b, uint32_t num, struct tsdb__chunk_seek *out)
{
    int hit = 0;
    pthread_mutex_lock(&b->seek_mu);
    if (b->seeks && b->seeks[num % SEEK_SLOTS].num1 == num + 1) {
        *out = b->seeks[num % SEEK_SLOTS].s;
        hit = 1;
    }
    pthread_mutex_unlock(&b->seek_mu);
    return hit;
}

void tsdb__block_seek_put(struct tsdb__block *b, uint32_t num, const struct tsdb__chunk_seek *p)
{
    pthread_mutex_lock(&b->seek_mu);
    if (!b->seeks)
        b->seeks = xcalloc(SEEK_SLOTS, sizeof(*b->seeks));
    b->seeks[num % SEEK_SLOTS] = (struct seek_slot){num + 1, *p};
    pthread_mutex_unlock(&b->seek_mu);
}

int64_t tsdb__block_mint(const struct tsdb__block *b)
{
    return b->mint;
}

int64_t tsdb__block_maxt(const struct tsdb__block *b)
{
    return b->maxt;
}

uint32_t tsdb__block_series_count(const struct tsdb__block *b)
{
    return b->nseries;
}

uint64_t tsdb__block_bad_chunks(const struct tsdb__block *b)
{
    return atomic_load(&b->bad);
}

size_t tsdb__block_bytes(const struct tsdb__block *b)
{
    return b->idx_len + b->chk_len;
}

int tsdb__block_labels(const struct tsdb__block *b, uint32_t i, struct tsdb__label *out, size_t cap)
{
    if (i >= b->nseries)
        return -1;
    /* Validated at open; the bounds checks only keep a bug from reading past the index. */
    struct rd r = {b->idx + b->series[i].labels, b->idx + b->idx_len - 4, 0};
    uint64_t nl = rd_uvarint(&r);
    if (nl > cap)
        return -1;
    for (uint64_t l = 0; l < nl; l++) {
        uint64_t name = rd_uvarint(&r), value = rd_uvarint(&r);
        if (r.bad || name >= b->nsyms || value >= b->nsyms)
            return -1;
        out[l].name = (const char *)b->idx + b->syms[name];
        out[l].value = (const char *)b->idx + b->syms[value];
    }
    return (int)nl;
}

void tsdb__block_iter_init(struct tsdb__block_iter *it, struct tsdb__block *b, uint32_t i, int col,
                           int64_t mint, int64_t maxt)
{
    memset(it, 0, sizeof(*it));
    it->b = b;
    it->series = i;
    it->col = col < 0 ? -1 : col;
    it->mint = mint;
    it->maxt = maxt;
    if (i >= b->nseries || col >= TSDB_BLOCK_MAX_COLS)
        return;
    struct rd r = {b->idx + b->series[i].chunks, b->idx + b->idx_len - 4, 0};
    uint64_t n = rd_uvarint(&r);
    if (r.bad || n > UINT32_MAX)
        return;
    it->left = (uint32_t)n;
    it->p = r.p;
    it->end = r.end;
    it->chunk = b->series[i].first;
    it->off = b->series[i].off;
    /*
     * Reading recent data (instant queries, rules) wants the series' last
     * chunk: when the range starts at or after it, every earlier chunk of its
     * column ends before the range (a column's chunks do not overlap), so
     * start at the last entry instead of reading them all.
     */
    if (col >= 0 && n > 1) {
        struct rd l = {b->idx + b->series[i].last, r.end, 0};
        struct entry e;
        if (rd_chunk(&l, b->mint, b->maxt, &e) == 0 && e.col == col && e.mint <= mint) {
            /* Its record follows the others': add up their lengths (no chunk is read). */
            struct rd w = r;
            for (uint64_t k = 0; k + 1 < n && rd_chunk(&w, b->mint, b->maxt, &e) == 0; k++)
                it->off += e.len + REC_OVERHEAD;
            it->p = b->idx + b->series[i].last;
            it->left = 1;
            it->chunk += (uint32_t)n - 1;
        }
    }
}

/*
 * Check chunk number num, whose record e locates (its offset summed from the
 * index's lengths): bounds and CRC, once per open block (the verdict is
 * kept). 1 with *c if good.
 */
static int check_chunk(struct tsdb__block *b, uint32_t num, uint32_t series, const struct entry *e,
                       struct tsdb__block_chunk *c)
{
    unsigned char st = atomic_load_explicit(&b->state[num], memory_order_relaxed);
    if (st == CHUNK_BAD)
        return 0;
    const char *why = NULL;
    uint64_t off = e->off, len = e->len, end = off + len + REC_OVERHEAD;
    if (off > b->chk_len)
        why = "record outside the file (chunks file truncated)";
    else if (len + REC_OVERHEAD > b->chk_len - off)
        why = "runs past the end of the file";
    if (!why && st == CHUNK_UNCHECKED) {
        if (tsdb__crc32c(0, b->chk + off, len) != tsdb__get32(b->chk + off + len))
            why = "checksum mismatch";
        else
            atomic_store_explicit(&b->state[num], CHUNK_GOOD, memory_order_relaxed);
    }
    if (why) {
        unsigned char expect = CHUNK_UNCHECKED;
        if (atomic_compare_exchange_strong(&b->state[num], &expect, CHUNK_BAD)) {
            atomic_fetch_add(&b->bad, 1);
            log_warn("block: %s/chunks: bytes %" PRIu64 "-%" PRIu64
                     ": chunk %u of series %u skipped: %s",
                     b->name, off, end > off ? end : off, num, series, why);
        }
        return 0;
    }
    c->buf = b->chk + off;
    c->len = (size_t)len;
    return 1;
}

/* The next entry of the iterator's series, unfiltered: 1 with *e and its number, or 0. */
static int iter_entry(struct tsdb__block_iter *it, struct entry *e, uint32_t *num)
{
    if (!it->left)
        return 0;
    struct rd r = {it->p, it->end, 0};
    if (rd_chunk(&r, it->b->mint, it->b->maxt, e) < 0) {
        it->left = 0; /* cannot happen: the index was validated at open */
        return 0;
    }
    it->p = r.p;
    it->left--;
    *num = it->chunk++;
    e->off = it->off;
    it->off += e->len + REC_OVERHEAD;
    return 1;
}

int tsdb__block_iter_next(struct tsdb__block_iter *it, struct tsdb__block_chunk *c)
{
    struct entry e;
    uint32_t num;
    while (iter_entry(it, &e, &num)) {
        if (it->col >= 0 && e.col != it->col) {
            if (e.col > it->col) /* entries are sorted by column: none of ours follow */
                it->left = 0;
            continue;
        }
        if (e.maxt < it->mint)
            continue;
        if (e.mint > it->maxt) {
            /* The rest of this column is later still; with every column, the next may not be. */
            if (it->col >= 0)
                it->left = 0;
            continue;
        }
        if (check_chunk(it->b, num, it->series, &e, c)) {
            c->mint = e.mint;
            c->maxt = e.maxt;
            c->col = (uint8_t)e.col;
            c->num = num;
            return 1;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- merge */

/* One input of a merge: its next series and that series' labels. */
struct merge_cursor {
    struct tsdb__block *b;
    size_t in;       /* position in the caller's array: breaks ties, oldest first */
    uint32_t series; /* the next series */
    int nlabels;
    struct tsdb__label labels[TSDB_MAX_LABELS_LIMIT];
};

/*
 * Label sets compared as the index sorts them: name, value, name, ...
 * bytewise, a shorter prefix first. Symbol refs follow byte order, so this
 * is each block's own series order.
 */
static int cmp_labels(const struct tsdb__label *a, int na, const struct tsdb__label *b, int nb)
{
    for (int i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (!c)
            c = strcmp(a[i].value, b[i].value);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb;
}

static int cursor_less(const struct merge_cursor *x, const struct merge_cursor *y)
{
    int c = cmp_labels(x->labels, x->nlabels, y->labels, y->nlabels);
    return c < 0 || (c == 0 && x->in < y->in);
}

/* Load the labels of the cursor's current series: 1, or 0 past the last one. */
static int cursor_load(struct merge_cursor *m)
{
    if (m->series >= m->b->nseries)
        return 0;
    m->nlabels = tsdb__block_labels(m->b, m->series, m->labels, ARRAY_SIZE(m->labels));
    if (m->nlabels < 0) /* cannot happen: validated at open; the writer refuses an empty set */
        m->nlabels = 0;
    return 1;
}

static void heap_down(struct merge_cursor **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cursor_less(h[l], h[m]))
            m = l;
        if (l + 1 < n && cursor_less(h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct merge_cursor *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Growable arrays of the merged block's descriptors. */
struct merge_out {
    struct tsdb__block_series *series;
    size_t nseries, series_cap;
    size_t *first; /* per series: its first label, then its first chunk */
    size_t first_cap;
    struct tsdb__label *labels;
    size_t nlabels, labels_cap;
    struct tsdb__block_chunk *chunks, *scratch;
    size_t nchunks, chunks_cap, scratch_cap;
};

/*
 * Append the verified chunks of series i of b to o->chunks in stored order,
 * counting the entries skipped in *bad.
 */
static void merge_collect(struct merge_out *o, struct tsdb__block *b, uint32_t i, uint64_t *bad)
{
    struct tsdb__block_iter it;
    struct entry e;
    uint32_t num;
    tsdb__block_iter_init(&it, b, i, -1, INT64_MIN, INT64_MAX);
    while (iter_entry(&it, &e, &num)) {
        struct tsdb__block_chunk c;
        if (!check_chunk(b, num, i, &e, &c)) {
            (*bad)++;
            continue;
        }
        c.mint = e.mint;
        c.maxt = e.maxt;
        c.col = (uint8_t)e.col;
        void *p = o->chunks;
        util_grow(&p, &o->chunks_cap, o->nchunks + 1, sizeof(*o->chunks));
        o->chunks = p;
        o->chunks[o->nchunks++] = c;
    }
}

/*
 * Order c[0..n) by column, keeping the order within a column: each input's
 * chunks are sorted by (column, mint) and the inputs come oldest first, so
 * this gives the (column, mint) order the writer wants.
 */
static void merge_sort_cols(struct merge_out *o, struct tsdb__block_chunk *c, size_t n)
{
    size_t k = 1;
    while (k < n && c[k - 1].col <= c[k].col)
        k++;
    if (k == n) /* the usual case: one input, or one column */
        return;
    size_t at[TSDB_BLOCK_MAX_COLS + 1] = {0};
    for (k = 0; k < n; k++)
        at[c[k].col + 1]++;
    for (int col = 1; col <= TSDB_BLOCK_MAX_COLS; col++)
        at[col] += at[col - 1];
    void *p = o->scratch;
    util_grow(&p, &o->scratch_cap, n, sizeof(*o->scratch));
    o->scratch = p;
    for (k = 0; k < n; k++)
        o->scratch[at[c[k].col]++] = c[k];
    memcpy(c, o->scratch, n * sizeof(*c));
}

int tsdb__block_merge(const char *dir, int64_t mint, int64_t maxt, struct tsdb__block *const *in,
                      size_t n, uint64_t *bad, char *err, size_t errlen)
{
    uint64_t skipped = 0;
    if (bad)
        *bad = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tsdb__block *b = in[i];
        const char *why = NULL;
        if (b->mint < mint || b->maxt > maxt)
            why = "outside the merged window";
        else if (i && b->mint < in[i - 1]->maxt)
            why = "overlaps the previous input or comes before it";
        if (why) {
            snprintf(err, errlen,
                     "block: merge into [%" PRId64 ", %" PRId64 "): input %zu (%s, [%" PRId64
                     ", %" PRId64 ")): %s",
                     mint, maxt, i, b->name, b->mint, b->maxt, why);
            errno = EINVAL;
            return -1;
        }
    }

    struct merge_cursor *cur = xcalloc(n ? n : 1, sizeof(*cur));
    struct merge_cursor **heap = xmalloc((n ? n : 1) * sizeof(*heap));
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        cur[i].b = in[i];
        cur[i].in = i;
        if (cursor_load(&cur[i]))
            heap[h++] = &cur[i];
    }
    for (size_t i = h / 2; i-- > 0;)
        heap_down(heap, h, i);

    struct merge_out o = {0};
    while (h) {
        /* A new series: the smallest label set, from every input holding it, oldest first. */
        const struct merge_cursor *top = heap[0];
        size_t lab = o.nlabels, chk = o.nchunks;
        void *p = o.labels;
        util_grow(&p, &o.labels_cap, lab + (size_t)top->nlabels, sizeof(*o.labels));
        o.labels = p;
        memcpy(o.labels + lab, top->labels, (size_t)top->nlabels * sizeof(*o.labels));
        o.nlabels += (size_t)top->nlabels;
        int nl = top->nlabels;
        while (h && cmp_labels(heap[0]->labels, heap[0]->nlabels, o.labels + lab, nl) == 0) {
            struct merge_cursor *m = heap[0];
            merge_collect(&o, m->b, m->series, &skipped);
            m->series++;
            if (!cursor_load(m))
                heap[0] = heap[--h];
            heap_down(heap, h, 0);
        }
        if (o.nchunks > chk)
            merge_sort_cols(&o, o.chunks + chk, o.nchunks - chk);
        p = o.series;
        util_grow(&p, &o.series_cap, o.nseries + 1, sizeof(*o.series));
        o.series = p;
        p = o.first;
        util_grow(&p, &o.first_cap, 2 * (o.nseries + 1), sizeof(*o.first));
        o.first = p;
        o.first[2 * o.nseries] = lab;
        o.first[2 * o.nseries + 1] = chk;
        o.series[o.nseries++] =
            (struct tsdb__block_series){NULL, (size_t)nl, NULL, o.nchunks - chk};
    }
    /* The arrays have stopped moving: point the series into them. */
    for (size_t i = 0; i < o.nseries; i++) {
        o.series[i].labels = o.labels + o.first[2 * i];
        o.series[i].chunks = o.series[i].nchunks ? o.chunks + o.first[2 * i + 1] : NULL;
    }
    int rc = tsdb__block_write(dir, mint, maxt, o.series, o.nseries, err, errlen);
    int e = errno;
    free(o.series);
    free(o.first);
    free(o.labels);
    free(o.chunks);
    free(o.scratch);
    free(heap);
    free(cur);
    if (bad)
        *bad = skipped;
    errno = e;
    return rc;
}
