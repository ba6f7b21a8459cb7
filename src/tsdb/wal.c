/*
 * wal.c: write-ahead log segments: buffered append, write, fdatasync,
 * replay with checksum verification and resynchronisation past damage
 * (format in wal.h).
 *
 * Two locks keep appends off the file's I/O: buf_mu guards the buffer that
 * appends copy records into (memory only); io_mu guards the segment file
 * and the write buffer. A flush takes io_mu, swaps the append buffer for the
 * empty write buffer under buf_mu (an instant), then writes without buf_mu,
 * so appends go on meanwhile. fdatasync runs on a duplicate of the segment's
 * descriptor outside both. Lock order: io_mu, then buf_mu.
 */
#include "tsdb/wal.h"
#include "tsdb/crc32c.h"
#include "tsdb/le.h"
#include "util/log.h"
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_MAGIC     "SITRWAL1"
#define SEG_MAGIC_LEN 8
#define REC_MAGIC0    'S'
#define REC_MAGIC1    'R'

struct tsdb__wal {
    char *dir;
    int dirfd;
    int fd;       /* current segment */
    uint32_t seg; /* its number */
    size_t seg_size;
    uint64_t seg_bytes; /* bytes in the current segment file */
    pthread_mutex_t io_mu;
    uint8_t *wbuf; /* records taken for writing (under io_mu); kept after a failed write */
    size_t wlen, wcap;
    pthread_mutex_t buf_mu;
    uint8_t *buf; /* records appended since the last flush took them (under buf_mu) */
    size_t len, cap;
};

size_t tsdb__wal_bytes(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->buf_mu);
    size_t n = sizeof(*w) + w->cap;
    pthread_mutex_unlock(&w->buf_mu);
    pthread_mutex_lock(&w->io_mu);
    n += w->wcap;
    pthread_mutex_unlock(&w->io_mu);
    return n;
}

/* Write buffers up to this size are kept whatever a flush wrote. */
#define WAL_KEEP_BYTES ((size_t)64 << 10)

/* CRC of a record: header bytes 2..7 (type, flags, length), then the payload. */
static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return tsdb__crc32c(tsdb__crc32c(0, hdr + 2, 6), payload, len);
}

static int parse_seg_name(const char *name, uint32_t *seg)
{
    if (strlen(name) != 8)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(name[i] - '0');
    }
    *seg = v;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers present in dir, sorted; caller frees. -1 if dir unreadable. */
static int list_segments(const char *dir, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint32_t seg;
        if (parse_seg_name(de->d_name, &seg) < 0)
            continue;
        void *p = *out;
        util_grow(&p, &cap, *n + 1, sizeof(uint32_t));
        *out = p;
        (*out)[(*n)++] = seg;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof(uint32_t), cmp_u32);
    return 0;
}

static int open_segment(struct tsdb__wal *w, uint32_t seg)
{
    char name[16];
    snprintf(name, sizeof(name), "%08u", seg);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (write(fd, SEG_MAGIC, SEG_MAGIC_LEN) != SEG_MAGIC_LEN) {
        int e = errno ? errno : EIO;
        close(fd);
        unlinkat(w->dirfd, name, 0);
        errno = e;
        return -1;
    }
    /* The new file's name must survive a crash too. */
    fsync(w->dirfd);
    w->fd = fd;
    w->seg = seg;
    w->seg_bytes = SEG_MAGIC_LEN;
    return 0;
}

int tsdb__wal_open(struct tsdb__wal **out, const char *dir, size_t seg_size, char *err,
                   size_t errlen)
{
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    uint32_t *segs;
    size_t n;
    if (list_segments(dir, &segs, &n) < 0) {
        snprintf(err, errlen, "%s: cannot list: %s", dir, strerror(errno));
        return -1;
    }
    uint32_t next = n ? segs[n - 1] + 1 : 1;
    free(segs);
    struct tsdb__wal *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->io_mu, NULL);
    pthread_mutex_init(&w->buf_mu, NULL);
    w->dir = xstrdup(dir);
    w->seg_size = seg_size ? seg_size : (size_t)16 << 20;
    w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0 || open_segment(w, next) < 0) {
        snprintf(err, errlen, "%s: cannot open segment %08u: %s", dir, next, strerror(errno));
        if (w->dirfd >= 0)
            close(w->dirfd);
        pthread_mutex_destroy(&w->io_mu);
        pthread_mutex_destroy(&w->buf_mu);
        free(w->dir);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

void tsdb__wal_close(struct tsdb__wal *w)
{
    if (!w)
        return;
    if (tsdb__wal_sync(w) < 0)
        log_error("wal: %s: final sync failed: %s; %zu bytes not written", w->dir, strerror(errno),
                  tsdb__wal_pending(w));
    close(w->fd);
    close(w->dirfd);
    pthread_mutex_destroy(&w->io_mu);
    pthread_mutex_destroy(&w->buf_mu);
    free(w->wbuf);
    free(w->buf);
    free(w->dir);
    free(w);
}

uint8_t *tsdb__wal_reserve(struct tsdb__wal *w, size_t cap)
{
    if (cap > TSDB_WAL_MAX_RECORD) {
        errno = EMSGSIZE;
        return NULL;
    }
    pthread_mutex_lock(&w->buf_mu);
    void *p = w->buf;
    util_grow(&p, &w->cap, w->len + TSDB_WAL_HEADER + cap, 1);
    w->buf = p;
    return w->buf + w->len + TSDB_WAL_HEADER;
}

void tsdb__wal_commit(struct tsdb__wal *w, uint8_t type, size_t len)
{
    uint8_t *h = w->buf + w->len;
    h[0] = REC_MAGIC0;
    h[1] = REC_MAGIC1;
    h[2] = type;
    h[3] = 0;
    tsdb__put32(h + 4, (uint32_t)len);
    tsdb__put32(h + 8, rec_crc(h, h + TSDB_WAL_HEADER, len));
    w->len += TSDB_WAL_HEADER + len;
    pthread_mutex_unlock(&w->buf_mu);
}

void tsdb__wal_cancel(struct tsdb__wal *w)
{
    pthread_mutex_unlock(&w->buf_mu);
}

int tsdb__wal_append(struct tsdb__wal *w, uint8_t type, const void *payload, size_t len)
{
    uint8_t *p = tsdb__wal_reserve(w, len);
    if (!p)
        return -1;
    if (len)
        memcpy(p, payload, len);
    tsdb__wal_commit(w, type, len);
    return 0;
}

/* Write n bytes fully at the end of the segment, or cut it back and fail. */
static int write_all(struct tsdb__wal *w, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(w->fd, p + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            /* A partial record would sit in front of the next write: remove it. */
            if (ftruncate(w->fd, (off_t)w->seg_bytes) < 0 ||
                lseek(w->fd, (off_t)w->seg_bytes, SEEK_SET) < 0)
                log_error("wal: %s/%08u: cannot cut back to %llu: %s", w->dir, w->seg,
                          (unsigned long long)w->seg_bytes, strerror(errno));
            errno = e;
            return -1;
        }
        done += (size_t)k;
    }
    w->seg_bytes += n;
    return 0;
}

/* Close the full segment durably and start the next one. */
static int roll(struct tsdb__wal *w)
{
    if (fdatasync(w->fd) < 0)
        return -1;
    int old = w->fd;
    if (open_segment(w, w->seg + 1) < 0)
        return -1;
    close(old);
    return 0;
}

/* Take the appended records into the write buffer (caller holds io_mu). */
static void take(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->buf_mu);
    if (!w->wlen) {
        /* The usual case: swap buffers, no copy. */
        uint8_t *b = w->wbuf;
        size_t c = w->wcap;
        w->wbuf = w->buf;
        w->wlen = w->len;
        w->wcap = w->cap;
        w->buf = b;
        w->cap = c;
    } else if (w->len) {
        /* Behind the records a failed write left. */
        void *p = w->wbuf;
        util_grow(&p, &w->wcap, w->wlen + w->len, 1);
        w->wbuf = p;
        memcpy(w->wbuf + w->wlen, w->buf, w->len);
        w->wlen += w->len;
    }
    w->len = 0;
    pthread_mutex_unlock(&w->buf_mu);
}

/* Write the write buffer out (caller holds io_mu). 0, or -1 with errno. */
static int flush_locked(struct tsdb__wal *w)
{
    take(w);
    size_t off = 0;
    while (off < w->wlen) {
        size_t rl = TSDB_WAL_HEADER + tsdb__get32(w->wbuf + off + 4);
        if (w->seg_bytes > SEG_MAGIC_LEN && w->seg_bytes + rl > w->seg_size && roll(w) < 0)
            goto fail;
        /* The run of whole records that fits in this segment (at least one). */
        size_t end = off + rl;
        while (end < w->wlen) {
            size_t l = TSDB_WAL_HEADER + tsdb__get32(w->wbuf + end + 4);
            if (w->seg_bytes + (end - off) + l > w->seg_size)
                break;
            end += l;
        }
        if (write_all(w, w->wbuf + off, end - off) < 0)
            goto fail;
        off = end;
    }
    /*
     * A burst (the first batch names every series; a replay's checkpoint)
     * must not keep its buffer for good: one four times what this flush
     * wrote goes, and the next take swaps in the other one.
     */
    if (w->wcap > WAL_KEEP_BYTES && w->wcap / 4 > w->wlen) {
        free(w->wbuf);
        w->wbuf = NULL;
        w->wcap = 0;
    }
    w->wlen = 0;
    return 0;
fail:;
    /* Keep what was not written for the next try. */
    int e = errno;
    memmove(w->wbuf, w->wbuf + off, w->wlen - off);
    w->wlen -= off;
    errno = e;
    return -1;
}

int tsdb__wal_flush(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    int rc = flush_locked(w);
    pthread_mutex_unlock(&w->io_mu);
    return rc;
}

int tsdb__wal_sync(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    int rc = flush_locked(w), fd = -1;
    if (rc == 0 && (fd = dup(w->fd)) < 0)
        rc = -1;
    pthread_mutex_unlock(&w->io_mu);
    if (fd >= 0) {
        /* Outside the locks: flushes (and so appenders) do not wait for the disk. */
        rc = fdatasync(fd);
        int e = errno;
        close(fd);
        errno = e;
    }
    return rc;
}

int tsdb__wal_cut(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    int rc = flush_locked(w);
    if (rc == 0)
        rc = roll(w);
    pthread_mutex_unlock(&w->io_mu);
    return rc;
}

void tsdb__wal_discard(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    pthread_mutex_lock(&w->buf_mu);
    w->len = 0;
    w->wlen = 0;
    pthread_mutex_unlock(&w->buf_mu);
    pthread_mutex_unlock(&w->io_mu);
}

size_t tsdb__wal_pending(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    pthread_mutex_lock(&w->buf_mu);
    size_t n = w->len + w->wlen;
    pthread_mutex_unlock(&w->buf_mu);
    pthread_mutex_unlock(&w->io_mu);
    return n;
}

uint32_t tsdb__wal_segment(struct tsdb__wal *w)
{
    pthread_mutex_lock(&w->io_mu);
    uint32_t seg = w->seg;
    pthread_mutex_unlock(&w->io_mu);
    return seg;
}

int tsdb__wal_truncate_before(struct tsdb__wal *w, uint32_t seg)
{
    uint32_t *segs;
    size_t n;
    int deleted = 0;
    if (list_segments(w->dir, &segs, &n) < 0)
        return 0;
    uint32_t current = tsdb__wal_segment(w);
    for (size_t i = 0; i < n && segs[i] < seg && segs[i] != current; i++) {
        char name[16];
        snprintf(name, sizeof(name), "%08u", segs[i]);
        if (unlinkat(w->dirfd, name, 0) == 0)
            deleted++;
    }
    free(segs);
    return deleted;
}

/* Whether a valid record starts at p (within n bytes); stores its length. */
static int record_at(const uint8_t *p, size_t n, size_t *rec_len)
{
    if (n < TSDB_WAL_HEADER || p[0] != REC_MAGIC0 || p[1] != REC_MAGIC1)
        return 0;
    size_t len = tsdb__get32(p + 4);
    if (len > TSDB_WAL_MAX_RECORD || len > n - TSDB_WAL_HEADER)
        return 0;
    if (rec_crc(p, p + TSDB_WAL_HEADER, len) != tsdb__get32(p + 8))
        return 0;
    *rec_len = TSDB_WAL_HEADER + len;
    return 1;
}

/* Read a whole file; caller frees. NULL with errno on failure. */
static uint8_t *read_file(int dirfd, const char *name, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return NULL;
    }
    uint8_t *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    *len = got;
    return buf;
}

/*
 * Replay one segment. A damaged span is skipped up to the next offset where
 * an intact record starts (found by its magic, then verified by checksum);
 * a record the file ends inside of is a write cut short by a crash, counted
 * but not reported as damage.
 */
int tsdb__wal_replay_buf(const char *name, uint32_t seg, const uint8_t *buf, size_t n,
                         tsdb__wal_fn fn, void *ctx, struct tsdb__wal_stats *st)
{
    st->segments++;
    size_t off = SEG_MAGIC_LEN;
    if (n < SEG_MAGIC_LEN || memcmp(buf, SEG_MAGIC, SEG_MAGIC_LEN) != 0) {
        if (n > 0)
            log_warn("wal: %s: bytes 0-%zu: not a WAL segment header; scanning for records", name,
                     n < SEG_MAGIC_LEN ? n : (size_t)SEG_MAGIC_LEN);
        off = 0;
    }
    while (off < n) {
        size_t rl;
        if (record_at(buf + off, n - off, &rl)) {
            st->records++;
            st->bytes += rl;
            if (fn(ctx, seg, buf[off + 2], buf + off + TSDB_WAL_HEADER, rl - TSDB_WAL_HEADER))
                return 1;
            off += rl;
            continue;
        }
        /* Damage or a torn tail: find the next intact record, if any. */
        size_t next = off + 1;
        while (next < n) {
            const uint8_t *m = memchr(buf + next, REC_MAGIC0, n - next);
            if (!m) {
                next = n;
                break;
            }
            next = (size_t)(m - buf);
            if (record_at(buf + next, n - next, &rl))
                break;
            next++;
        }
        /* The file ends inside this record: a write cut short by a crash. */
        int cut_short = next >= n && (n - off < TSDB_WAL_HEADER ||
                                      (buf[off] == REC_MAGIC0 && buf[off + 1] == REC_MAGIC1 &&
                                       tsdb__get32(buf + off + 4) > n - off - TSDB_WAL_HEADER));
        if (cut_short) {
            st->torn_tail++;
            log_info("wal: %s: incomplete record at bytes %zu-%zu (interrupted write); ignored",
                     name, off, n);
        } else {
            st->corrupt_ranges++;
            st->corrupt_bytes += (next < n ? next : n) - off;
            log_warn("wal: %s: bytes %zu-%zu damaged (checksum or framing); skipped, "
                     "replaying the rest",
                     name, off, next < n ? next : n);
        }
        off = next;
    }
    return 0;
}

static int replay_segment(const char *dir, int dirfd, uint32_t seg, tsdb__wal_fn fn, void *ctx,
                          struct tsdb__wal_stats *st)
{
    char name[16], label[4096];
    snprintf(name, sizeof(name), "%08u", seg);
    snprintf(label, sizeof(label), "%s/%s", dir, name);
    size_t n;
    uint8_t *buf = read_file(dirfd, name, &n);
    if (!buf)
        return log_error("wal: %s: cannot read: %s", label, strerror(errno));
    int rc = tsdb__wal_replay_buf(label, seg, buf, n, fn, ctx, st);
    free(buf);
    return rc;
}

int tsdb__wal_replay(const char *dir, tsdb__wal_fn fn, void *ctx, struct tsdb__wal_stats *st)
{
    memset(st, 0, sizeof(*st));
    uint32_t *segs;
    size_t n;
    if (list_segments(dir, &segs, &n) < 0)
        return log_error("wal: %s: cannot list: %s", dir, strerror(errno));
    int dirfd = n ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int rc = 0;
    for (size_t i = 0; i < n && dirfd >= 0; i++) {
        int r = replay_segment(dir, dirfd, segs[i], fn, ctx, st);
        if (r < 0)
            rc = -1;
        if (r > 0)
            break;
    }
    if (dirfd >= 0)
        close(dirfd);
    free(segs);
    return rc;
}
