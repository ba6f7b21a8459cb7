/*
 * tail.c: following log files. Each configured path or glob gives slots
 * (one per matching path, at most max_files per glob); a slot reads the
 * file now at its path and keeps reading, for a while, files moved away
 * from it (rotation by rename: the writer goes on writing to the renamed
 * file until it reopens). A file that shrinks below what was read was
 * truncated (copytruncate) and is read again from its start. Files are
 * identified by device and inode, never by name alone, so a glob that also
 * matches rotated names does not read a file twice.
 *
 * Reading uses pread from the consumed position into one shared buffer:
 * the tail of a half-written line is simply read again next time, so no
 * per-file buffer exists. The consumed position of every open file is
 * saved after each tick (ingest.c), in data_dir/ingest/offsets, so that
 * after a restart each file resumes exactly after the last line counted.
 */
#include "ingest/ingest_internal.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROTATE_WAIT_MS 30000  /* a moved-away file idle this long is done */
#define FORGET_MS      300000 /* a glob's path missing this long loses its slot */
#define DIR_SCAN_MAX   10000  /* directory entries searched for a moved file */
#define OFFSETS_MAGIC  "sitrep-ingest-offsets 1"
#define HEAD_BYTES     256 /* bytes of a file's start kept as its fingerprint */

struct saved_entry {
    char *service, *path; /* owned */
    dev_t dev;
    ino_t ino;
    int64_t pos;
    int skipping, retired, used;
    uint32_t head_len;
    uint64_t head_hash;
};

struct ingest__saved {
    struct saved_entry *e; /* owned */
    size_t n;
};

void ingest__tail_init(struct ingest__tail *t, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->buf = xmalloc(cap);
    t->cap = cap;
}

static void saved_free(struct ingest__saved *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].service);
        free(s->e[i].path);
    }
    free(s->e);
    free(s);
}

void ingest__tail_release(struct ingest__tail *t)
{
    free(t->buf);
    saved_free(t->saved);
    memset(t, 0, sizeof(*t));
}

static void file_close(struct ingest__file *f)
{
    if (f) {
        close(f->fd);
        free(f);
    }
}

static void slot_free(struct ingest__slot *s)
{
    file_close(s->cur);
    for (size_t i = 0; i < s->nold; i++)
        file_close(s->old[i]);
    free(s->path);
    free(s);
}

void ingest__source_close(struct ingest__source *src)
{
    for (size_t i = 0; i < src->nslots; i++)
        slot_free(src->slots[i]);
    free(src->slots);
    free(src->refused);
    src->slots = NULL;
    src->refused = NULL;
    src->nslots = 0;
}

/* ---- lines ---- */

/* Keep one of the first bad lines of a slot, for ingest_diagnose. */
static void keep_bad(struct ingest__slot *s, int64_t off, int64_t lineno, const char *reason,
                     const char *p, size_t n)
{
    if (s->nbad >= INGEST__BAD_KEEP)
        return;
    struct ingest__bad *b = &s->bad[s->nbad++];
    b->offset = off;
    b->lineno = lineno;
    b->reason = reason;
    b->len = n < INGEST__BAD_LEN ? n : INGEST__BAD_LEN;
    memcpy(b->line, p, b->len);
}

static const char *const format_reason[] = {
    [INGEST_FMT_COMMON] = "not a Common Log Format line",
    [INGEST_FMT_COMBINED] = "not a Combined Log Format line",
    [INGEST_FMT_JSON] = "not a JSON object with the configured fields",
    [INGEST_FMT_PATTERN] = "does not match the pattern",
};

static void one_line(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s,
                     int64_t off, int64_t lineno, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (!n)
        return;
    s->lines++;
    if (n > src->cfg.max_line) {
        s->overlong++;
        keep_bad(s, off, lineno, "longer than max_line", p, n);
        return;
    }
    if (src->svc.ncounters)
        ingest__service_match_line(&src->svc, p, n);
    struct ingest__rec r;
    if (ingest__parse(&src->parser, p, n, &r) < 0) {
        s->malformed++;
        keep_bad(s, off, lineno, format_reason[src->cfg.format], p, n);
        return;
    }
    ingest__service_observe(&src->svc, &r, t->now_ms);
}

size_t ingest__consume(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s,
                       struct ingest__file *f, const char *buf, size_t n, int final)
{
    const char *p = buf, *e = buf + n;
    if (f->line_pos != f->pos) /* moved: known again only from the start of the file */
        f->line = f->pos == 0 ? 0 : -1;
    if (f->skipping) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            s->bytes += n;
            f->line_pos = f->pos + (int64_t)n;
            return n;
        }
        p = nl + 1;
        f->skipping = 0;
        f->line += f->line >= 0;
    }
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl)
            break;
        f->line += f->line >= 0;
        one_line(t, src, s, f->pos + (p - buf), f->line, p, (size_t)(nl - p));
        p = nl + 1;
    }
    size_t rest = (size_t)(e - p);
    if (rest > src->cfg.max_line) {
        /* Too long already and not ended: count it once, drop bytes up to its newline. */
        s->lines++;
        s->overlong++;
        keep_bad(s, f->pos + (p - buf), f->line >= 0 ? f->line + 1 : -1, "longer than max_line", p,
                 rest);
        f->skipping = 1;
        p = e;
    } else if (final && rest) {
        f->line += f->line >= 0;
        one_line(t, src, s, f->pos + (p - buf), f->line, p, rest);
        p = e;
    }
    s->bytes += (uint64_t)(p - buf);
    f->line_pos = f->pos + (p - buf);
    return (size_t)(p - buf);
}

/*
 * Whether the file no longer starts with the bytes it started with: a file
 * cut and written again (copytruncate) begins with other lines, even when
 * it grew past the old position before this look. Extends the fingerprint
 * while the file is shorter than HEAD_BYTES. Returns 1 if rewritten (the
 * fingerprint is then the new start's).
 */
static int head_rewritten(struct ingest__file *f, int64_t size)
{
    char h[HEAD_BYTES];
    size_t want = size < HEAD_BYTES ? (size_t)size : HEAD_BYTES;
    ssize_t r = want ? pread(f->fd, h, want, 0) : 0;
    if (r <= 0)
        return 0;
    size_t n = (size_t)r;
    int changed = f->head_len && (n < f->head_len || ingest__hash(h, f->head_len) != f->head_hash);
    if (changed || n > f->head_len) {
        f->head_len = (uint32_t)n;
        f->head_hash = ingest__hash(h, n);
    }
    return changed;
}

/* Start f over from byte 0 (it was truncated, maybe rewritten). */
static void restart_file(struct ingest__tail *t, struct ingest__slot *s, struct ingest__file *f)
{
    f->pos = 0;
    f->skipping = 0;
    s->truncations++;
    t->dirty = 1;
}

/*
 * Read what is new in f (up to t->budget bytes). final: the file is being
 * closed, so a last line without a newline counts too. Returns bytes consumed.
 */
static uint64_t read_file(struct ingest__tail *t, struct ingest__source *src,
                          struct ingest__slot *s, struct ingest__file *f, int final)
{
    struct stat st;
    uint64_t total = 0;
    if (fstat(f->fd, &st) < 0)
        return 0;
    if (st.st_size < f->pos) {
        /* copytruncate: the file was cut under us; what follows is new. */
        restart_file(t, s, f);
        f->head_len = 0;
    }
    if (st.st_size > f->pos && head_rewritten(f, st.st_size))
        restart_file(t, s, f);
    while (t->budget > 0 && (st.st_size > f->pos || final)) {
        /*
         * Read one byte early to see that pos still follows a newline: a file
         * truncated and rewritten past pos between two polls fails that.
         */
        int check = f->pos > 0 && !f->skipping;
        ssize_t r = pread(f->fd, t->buf, t->cap, f->pos - check);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            s->read_errors++;
            if (!s->read_failing)
                log_warn("ingest: %s: read: %s (logged once until it recovers)", s->path,
                         strerror(errno));
            s->read_failing = 1;
            break;
        }
        s->read_failing = 0;
        if (r <= check)
            break;
        if (check && t->buf[0] != '\n') {
            restart_file(t, s, f);
            f->head_len = 0;
            head_rewritten(f, st.st_size);
            continue;
        }
        size_t n = (size_t)r - (size_t)check;
        int at_end = (size_t)r < t->cap;
        size_t used = ingest__consume(t, src, s, f, t->buf + check, n, final && at_end);
        f->pos += (int64_t)used;
        total += used;
        t->budget = used < t->budget ? t->budget - used : 0;
        if (used < n || at_end)
            break; /* an unfinished line, or the end of the file */
    }
    if (total) {
        f->idle_ms = t->now_ms;
        t->dirty = 1;
    }
    return total;
}

/* ---- files and slots ---- */

/* Open path as a regular file. Returns the fd with *st filled, or -1. */
static int open_regular(int dirfd, const char *path, struct stat *st)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

static struct ingest__file *file_new(int fd, const struct stat *st, int64_t pos, int skipping,
                                     int64_t now_ms)
{
    struct ingest__file *f = xcalloc(1, sizeof(*f));
    f->fd = fd;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->pos = pos;
    f->skipping = skipping;
    f->idle_ms = now_ms;
    return f;
}

/* The file of src with this identity, its slot and its index in old (-1: it is cur). */
static struct ingest__file *find_inode(struct ingest__source *src, dev_t dev, ino_t ino,
                                       struct ingest__slot **owner, int *old_idx)
{
    for (size_t i = 0; i < src->nslots; i++) {
        struct ingest__slot *s = src->slots[i];
        if (s->cur && s->cur->dev == dev && s->cur->ino == ino) {
            *owner = s;
            *old_idx = -1;
            return s->cur;
        }
        for (size_t k = 0; k < s->nold; k++)
            if (s->old[k]->dev == dev && s->old[k]->ino == ino) {
                *owner = s;
                *old_idx = (int)k;
                return s->old[k];
            }
    }
    return NULL;
}

static void remember_retired(struct ingest__source *src, const struct ingest__file *f)
{
    struct ingest__retired *r = &src->retired[src->retired_next];
    src->retired_next = (src->retired_next + 1) % ARRAY_SIZE(src->retired);
    if (src->nretired < ARRAY_SIZE(src->retired))
        src->nretired++;
    r->dev = f->dev;
    r->ino = f->ino;
    r->pos = f->pos;
    r->head_len = f->head_len;
    r->head_hash = f->head_hash;
}

/* Drain old file k of s to its very end, retire and close it. */
static void retire_old(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s,
                       size_t k)
{
    struct ingest__file *f = s->old[k];
    uint64_t keep = t->budget;
    t->budget = UINT64_MAX; /* whatever is left of it must be read now or never */
    while (read_file(t, src, s, f, 1) > 0)
        ;
    t->budget = keep;
    remember_retired(src, f);
    file_close(f);
    s->old[k] = s->old[--s->nold];
    t->dirty = 1;
}

/* Move s->cur aside (rotated or gone); it is still read until idle. */
static void move_aside(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s)
{
    if (!s->cur)
        return;
    if (s->nold == INGEST__MAX_OLD)
        retire_old(t, src, s, 0);
    s->cur->idle_ms = t->now_ms;
    s->old[s->nold++] = s->cur;
    s->cur = NULL;
    s->renames++;
    t->dirty = 1;
}

static struct saved_entry *saved_find(struct ingest__tail *t, const char *service, const char *path,
                                      dev_t dev, ino_t ino)
{
    for (size_t i = 0; t->saved && i < t->saved->n; i++) {
        struct saved_entry *e = &t->saved->e[i];
        if (!e->retired && e->dev == dev && e->ino == ino && strcmp(e->service, service) == 0 &&
            (!path || strcmp(e->path, path) == 0))
            return e;
    }
    return NULL;
}

static int saved_has_service(struct ingest__tail *t, const char *service)
{
    for (size_t i = 0; t->saved && i < t->saved->n; i++)
        if (strcmp(t->saved->e[i].service, service) == 0)
            return 1;
    return 0;
}

/*
 * A saved position is kept only if the file still has that many bytes and
 * the byte before it ends a line (else the file was truncated, and maybe
 * rewritten, while nobody watched): then the file is read from 0.
 */
static int64_t check_pos(struct ingest__slot *s, struct ingest__file *f, const struct stat *st,
                         int64_t pos, int skipping, uint32_t head_len, uint64_t head_hash)
{
    char c, h[HEAD_BYTES];
    if (pos > st->st_size ||
        (pos > 0 && !skipping && (pread(f->fd, &c, 1, pos - 1) != 1 || c != '\n')) ||
        (head_len && (head_len > HEAD_BYTES || pread(f->fd, h, head_len, 0) != (ssize_t)head_len ||
                      ingest__hash(h, head_len) != head_hash))) {
        s->truncations++;
        return 0;
    }
    f->head_len = head_len;
    f->head_hash = head_hash;
    return pos;
}

/* Offset just after the last newline of the file: where a reader "from the end" starts. */
static int64_t line_end_before(int fd, int64_t size)
{
    char buf[4096];
    int64_t at = size;
    while (at > 0) {
        size_t n = at < (int64_t)sizeof(buf) ? (size_t)at : sizeof(buf);
        if (pread(fd, buf, n, at - (int64_t)n) != (ssize_t)n)
            return size;
        for (size_t i = n; i > 0; i--)
            if (buf[i - 1] == '\n')
                return at - (int64_t)n + (int64_t)i;
        at -= (int64_t)n;
        if (size - at > 1 << 20)
            return size; /* no newline in the last MiB: start at the end */
    }
    return 0;
}

/*
 * After a restart: a file saved for this slot that is no longer at its path
 * was rotated while sitrep was down. Find it in the same directory and read
 * the rest of it, so its last lines are not lost.
 */
static void restore_moved(struct ingest__tail *t, struct ingest__source *src,
                          struct ingest__slot *s, const struct stat *cur)
{
    for (size_t i = 0; t->saved && i < t->saved->n; i++) {
        struct saved_entry *e = &t->saved->e[i];
        if (e->used || e->retired || strcmp(e->service, src->cfg.service) != 0 ||
            strcmp(e->path, s->path) != 0 ||
            (cur && e->dev == cur->st_dev && e->ino == cur->st_ino))
            continue;
        e->used = 1;
        struct ingest__slot *owner;
        int idx;
        if (find_inode(src, e->dev, e->ino, &owner, &idx))
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", s->path);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            dir[1] = '\0';
        else if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), ".");
        DIR *d = opendir(dir);
        int found = 0;
        struct dirent *de;
        for (int n = 0; d && n < DIR_SCAN_MAX && (de = readdir(d)) != NULL; n++) {
            if ((ino_t)de->d_ino != e->ino)
                continue;
            struct stat st;
            int fd = open_regular(dirfd(d), de->d_name, &st);
            if (fd < 0)
                continue;
            if (st.st_dev != e->dev || st.st_ino != e->ino) {
                close(fd);
                continue;
            }
            struct ingest__file *f = file_new(fd, &st, 0, 0, t->now_ms);
            f->pos = check_pos(s, f, &st, e->pos, e->skipping, e->head_len, e->head_hash);
            f->skipping = f->pos ? e->skipping : 0;
            if (s->nold == INGEST__MAX_OLD)
                retire_old(t, src, s, 0);
            s->old[s->nold++] = f;
            log_info("ingest: %s: resuming %s/%s (rotated while stopped) at byte %lld", s->path,
                     dir, de->d_name, (long long)f->pos);
            found = 1;
            break;
        }
        if (d)
            closedir(d);
        if (!found)
            log_warn("ingest: %s: the file read up to byte %lld before the restart (inode %llu) "
                     "is gone; lines written to it after that are lost",
                     s->path, (long long)e->pos, (unsigned long long)e->ino);
    }
}

/* Open the file now at s->path as s->cur, choosing where to start reading. */
static void open_cur(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s)
{
    struct stat st;
    int fd = open_regular(AT_FDCWD, s->path, &st);
    if (fd < 0) {
        if (!s->read_failing)
            log_warn("ingest: %s: cannot open: %s (logged once until it recovers)", s->path,
                     strerror(errno));
        s->read_failing = 1;
        return;
    }
    s->read_failing = 0;
    struct ingest__file *f = file_new(fd, &st, 0, 0, t->now_ms);
    struct saved_entry *e = saved_find(t, src->cfg.service, s->path, st.st_dev, st.st_ino);
    if (!e)
        e = saved_find(t, src->cfg.service, NULL, st.st_dev, st.st_ino);
    if (e) {
        e->used = 1;
        f->pos = check_pos(s, f, &st, e->pos, e->skipping, e->head_len, e->head_hash);
        f->skipping = f->pos ? e->skipping : 0;
    } else {
        int retired = 0;
        for (size_t i = 0; i < src->nretired; i++) {
            const struct ingest__retired *r = &src->retired[i];
            if (r->dev == st.st_dev && r->ino == st.st_ino) {
                f->pos = check_pos(s, f, &st, r->pos, 0, r->head_len, r->head_hash);
                retired = 1;
            }
        }
        /*
         * A service seen for the first time starts at the end of files that
         * exist now (their past is not "now"); any file found later, or once
         * offsets were saved for the service, is new and read from 0.
         */
        if (!retired && !src->scanned && !src->cfg.from_beginning &&
            !saved_has_service(t, src->cfg.service))
            f->pos = line_end_before(fd, st.st_size);
    }
    s->cur = f;
    t->dirty = 1;
}

static void check_slot(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s)
{
    struct stat st;
    int ok = stat(s->path, &st) == 0 && S_ISREG(st.st_mode);
    if (!src->scanned)
        restore_moved(t, src, s, ok ? &st : NULL);
    if (!ok) {
        move_aside(t, src, s);
        if (!s->missing_ms)
            s->missing_ms = t->now_ms;
        return;
    }
    s->missing_ms = 0;
    if (s->cur && s->cur->dev == st.st_dev && s->cur->ino == st.st_ino)
        return;
    struct ingest__slot *owner;
    int idx;
    struct ingest__file *f = find_inode(src, st.st_dev, st.st_ino, &owner, &idx);
    if (f && owner == s && idx >= 0) {
        /* Moved back to its path: it is the current file again. */
        s->old[idx] = s->old[--s->nold];
        move_aside(t, src, s);
        s->cur = f;
        return;
    }
    move_aside(t, src, s);
    if (!f) /* (a file another path of this log follows stays there) */
        open_cur(t, src, s);
}

static int has_glob_chars(const char *p)
{
    return strpbrk(p, "*?[") != NULL;
}

static struct ingest__slot *slot_add(struct ingest__source *src, const char *path, size_t g,
                                     int literal)
{
    struct ingest__slot *s = xcalloc(1, sizeof(*s));
    s->path = xstrdup(path);
    s->glob = g;
    s->literal = literal;
    src->slots = xrealloc(src->slots, (src->nslots + 1) * sizeof(*src->slots));
    src->slots[src->nslots++] = s;
    return s;
}

static struct ingest__slot *slot_by_path(struct ingest__source *src, const char *path)
{
    for (size_t i = 0; i < src->nslots; i++)
        if (strcmp(src->slots[i]->path, path) == 0)
            return src->slots[i];
    return NULL;
}

/* Find the paths each configured path or glob names now; add slots for new ones. */
static void scan(struct ingest__source *src)
{
    if (!src->refused)
        src->refused = xcalloc(src->cfg.npaths, sizeof(*src->refused));
    for (size_t g = 0; g < src->cfg.npaths; g++) {
        const char *pat = src->cfg.paths[g];
        if (!has_glob_chars(pat)) {
            if (!slot_by_path(src, pat))
                slot_add(src, pat, g, 1);
            continue;
        }
        size_t have = 0, refused = 0;
        for (size_t i = 0; i < src->nslots; i++)
            have += src->slots[i]->glob == g && !src->slots[i]->literal;
        glob_t gl;
        if (glob(pat, 0, NULL, &gl) != 0) {
            src->refused[g] = 0;
            continue;
        }
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            const char *p = gl.gl_pathv[i];
            struct stat st;
            if (slot_by_path(src, p) || strchr(p, '\n') || stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            struct ingest__slot *owner;
            int idx;
            if (find_inode(src, st.st_dev, st.st_ino, &owner, &idx))
                continue; /* a rotated name of a file already read */
            if (have >= src->cfg.max_files) {
                refused++;
                continue;
            }
            slot_add(src, p, g, 0);
            have++;
        }
        if (refused && !src->refused[g])
            log_warn("ingest: %s: %zu more files match than max_files (%u); not followed", pat,
                     refused, src->cfg.max_files);
        src->refused[g] = refused;
        globfree(&gl);
    }
}

uint64_t ingest__source_poll(struct ingest__tail *t, struct ingest__source *src, int rescan)
{
    uint64_t total = 0;
    if (rescan || !src->scanned)
        scan(src);
    for (size_t i = 0; i < src->nslots; i++)
        check_slot(t, src, src->slots[i]);
    src->scanned = 1;
    for (size_t i = 0; i < src->nslots; i++) {
        struct ingest__slot *s = src->slots[i];
        /* Old files first: their lines were written before the current file's. */
        for (size_t k = 0; k < s->nold;) {
            struct ingest__file *f = s->old[k];
            uint64_t n = read_file(t, src, s, f, 0);
            total += n;
            if (!n && t->budget && t->now_ms - f->idle_ms >= ROTATE_WAIT_MS) {
                retire_old(t, src, s, k);
                continue;
            }
            k++;
        }
        if (s->cur)
            total += read_file(t, src, s, s->cur, 0);
    }
    /* Forget glob paths gone for a while (their series end with them). */
    for (size_t i = 0; i < src->nslots;) {
        struct ingest__slot *s = src->slots[i];
        if (!s->literal && !s->cur && !s->nold && s->missing_ms &&
            t->now_ms - s->missing_ms >= FORGET_MS) {
            slot_free(s);
            src->slots[i] = src->slots[--src->nslots];
            continue;
        }
        i++;
    }
    return total;
}

/* ---- offsets ---- */

/*
 * The offsets file: a magic line, then one line per file, tab-separated:
 *   F  service  dev  inode  pos  skipping  head_len:head_hash  path
 * for files being read (path: the slot, last so it may hold tabs), and R
 * lines (path "-") for files closed after rotation.
 */
#define OFFSETS_FIELDS 8

void ingest__offsets_load(struct ingest__tail *t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT)
            log_warn("ingest: cannot read %s: %s; files start from their end", path,
                     strerror(errno));
        return;
    }
    struct ingest__saved *sv = xcalloc(1, sizeof(*sv));
    char line[8192];
    size_t lineno = 0, cap = 0;
    int bad = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (!len || line[len - 1] != '\n') {
            bad = 1;
            break;
        }
        line[len - 1] = '\0';
        if (lineno == 1) {
            if (strcmp(line, OFFSETS_MAGIC) != 0) {
                bad = 1;
                break;
            }
            continue;
        }
        char *fields[OFFSETS_FIELDS];
        size_t nf = 0;
        for (char *p = line, *tab;; p = tab + 1) {
            fields[nf++] = p;
            if (nf == OFFSETS_FIELDS || !(tab = strchr(p, '\t')))
                break;
            *tab = '\0';
        }
        char *end[6];
        unsigned long long dev = 0, ino = 0, hash = 0;
        long long pos = -1;
        long sk = -1, hlen = -1;
        if (nf == OFFSETS_FIELDS) {
            dev = strtoull(fields[2], &end[0], 10);
            ino = strtoull(fields[3], &end[1], 10);
            pos = strtoll(fields[4], &end[2], 10);
            sk = strtol(fields[5], &end[3], 10);
            hlen = strtol(fields[6], &end[4], 10);
            hash = *end[4] == ':' ? strtoull(end[4] + 1, &end[5], 16) : 0;
        }
        if (nf != OFFSETS_FIELDS || strlen(fields[0]) != 1 ||
            (fields[0][0] != 'F' && fields[0][0] != 'R') || *end[0] || *end[1] || *end[2] ||
            *end[3] || *end[4] != ':' || *end[5] || pos < 0 || (sk != 0 && sk != 1) || hlen < 0 ||
            hlen > HEAD_BYTES) {
            bad = 1;
            break;
        }
        util_grow((void **)&sv->e, &cap, sv->n + 1, sizeof(*sv->e));
        sv->e[sv->n++] = (struct saved_entry){
            .service = xstrdup(fields[1]),
            .path = xstrdup(fields[7]),
            .dev = (dev_t)dev,
            .ino = (ino_t)ino,
            .pos = pos,
            .skipping = (int)sk,
            .retired = fields[0][0] == 'R',
            .head_len = (uint32_t)hlen,
            .head_hash = hash,
        };
    }
    fclose(f);
    if (bad) {
        log_warn("ingest: %s:%zu: not a valid offsets file; ignored (files start from their end)",
                 path, lineno);
        saved_free(sv);
        return;
    }
    saved_free(t->saved);
    t->saved = sv;
}

void ingest__offsets_apply_retired(struct ingest__tail *t, struct ingest__source *src)
{
    for (size_t i = 0; t->saved && i < t->saved->n; i++) {
        struct saved_entry *e = &t->saved->e[i];
        if (!e->retired || strcmp(e->service, src->cfg.service) != 0)
            continue;
        struct ingest__file f = {.dev = e->dev,
                                 .ino = e->ino,
                                 .pos = e->pos,
                                 .head_len = e->head_len,
                                 .head_hash = e->head_hash};
        remember_retired(src, &f);
    }
}

static void write_entry(FILE *f, char kind, const char *service, dev_t dev, ino_t ino, int64_t pos,
                        int skipping, uint32_t head_len, uint64_t head_hash, const char *path)
{
    fprintf(f, "%c\t%s\t%llu\t%llu\t%lld\t%d\t%u:%llx\t%s\n", kind, service,
            (unsigned long long)dev, (unsigned long long)ino, (long long)pos, skipping,
            (unsigned)head_len, (unsigned long long)head_hash, path);
}

static void write_file(FILE *f, const char *service, const char *path,
                       const struct ingest__file *fl)
{
    write_entry(f, 'F', service, fl->dev, fl->ino, fl->pos, fl->skipping, fl->head_len,
                fl->head_hash, path);
}

int ingest__offsets_save(struct ingest__tail *t, struct ingest__source *const *srcs, size_t n,
                         const char *path, int sync)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return log_error("ingest: cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "%s\n", OFFSETS_MAGIC);
    for (size_t i = 0; i < n; i++) {
        const struct ingest__source *src = srcs[i];
        for (size_t k = 0; k < src->nslots; k++) {
            const struct ingest__slot *s = src->slots[k];
            if (s->cur)
                write_file(f, src->cfg.service, s->path, s->cur);
            for (size_t o = 0; o < s->nold; o++)
                write_file(f, src->cfg.service, s->path, s->old[o]);
        }
        for (size_t k = 0; k < src->nretired; k++) {
            const struct ingest__retired *r = &src->retired[k];
            write_entry(f, 'R', src->cfg.service, r->dev, r->ino, r->pos, 0, r->head_len,
                        r->head_hash, "-");
        }
    }
    /*
     * Entries of the last load not used yet (a path not found so far) are
     * kept, or a restart before the file shows up would forget them.
     */
    for (size_t i = 0; t->saved && i < t->saved->n; i++) {
        const struct saved_entry *e = &t->saved->e[i];
        if (!e->used && !e->retired)
            write_entry(f, 'F', e->service, e->dev, e->ino, e->pos, e->skipping, e->head_len,
                        e->head_hash, e->path);
    }
    int rc = fflush(f) == 0 && !ferror(f) && (!sync || fdatasync(fileno(f)) == 0) ? 0 : -1;
    int err = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -1;
        err = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        return log_error("ingest: cannot save offsets to %s: %s", path, strerror(err));
    }
    t->dirty = 0;
    return 0;
}
