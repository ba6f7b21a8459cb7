/*
 * block_test.c: on-disk blocks: a block of 100 series x 3 chunks written and
 * read back bit-exact (NaN payloads included), time ranges, a damaged chunk
 * skipped alone and reported once, a damaged index refused, a truncated
 * chunks file served up to the cut, leftovers of unfinished writes removed,
 * the empty block, refused input, a full disk leaving nothing behind,
 * chunk columns (round trip, column filter, writer and reader rules), and
 * merges of blocks (every sample once and in order, a damaged input chunk
 * skipped and counted, overlapping windows refused).
 */
#include "testutil.h"
#include "tsdb/block.h"
#include "tsdb/crc32c.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NSERIES  100
#define NCHUNKS  3
#define NSAMPLES 150 /* per chunk: two full codec blocks and a partial one */
#define STEP     1000
#define SPAN     ((int64_t)NSAMPLES * STEP)
#define T0       1700000000000ll
#define BMINT    T0
#define BMAXT    (T0 + NCHUNKS * SPAN)

struct fixture {
    char name[NSERIES][16], host[NSERIES][16];
    struct tsdb__label labels[NSERIES][3];
    struct tsdb__chunk chunks[NSERIES][NCHUNKS];
    struct tsdb__block_chunk refs[NSERIES][NCHUNKS];
    struct tsdb__block_series series[NSERIES];
    int64_t ts[NSERIES][NCHUNKS][NSAMPLES];
    double v[NSERIES][NCHUNKS][NSAMPLES];
};

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double value(int s, int c, int j)
{
    uint64_t u;
    switch ((s + j) % 11) {
    case 3:
        u = 0x7ff0000000000002ull; /* stale marker */
        break;
    case 7:
        u = 0x8000000000000000ull; /* -0.0 */
        break;
    default: {
        double d = s * 100.0 + (c * NSAMPLES + j) * 0.25;
        memcpy(&u, &d, 8);
    }
    }
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* 100 series {__name__="m", host="h<i%7>", idx="<i>"}, given in reverse order. */
static struct fixture *make_fixture(void)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    for (int i = 0; i < NSERIES; i++) {
        int s = NSERIES - 1 - i; /* the writer must sort */
        snprintf(f->host[i], sizeof(f->host[i]), "h%d", s % 7);
        snprintf(f->name[i], sizeof(f->name[i]), "%d", s);
        f->labels[i][0] = (struct tsdb__label){"__name__", "m"};
        f->labels[i][1] = (struct tsdb__label){"host", f->host[i]};
        f->labels[i][2] = (struct tsdb__label){"idx", f->name[i]};
        for (int c = 0; c < NCHUNKS; c++) {
            tsdb__chunk_init(&f->chunks[i][c]);
            for (int j = 0; j < NSAMPLES; j++) {
                f->ts[i][c][j] = T0 + c * SPAN + j * STEP + (s % 3);
                f->v[i][c][j] = value(s, c, j);
            }
            for (int j = 0; j < NSAMPLES; j += TSDB_BLOCK_MAX) {
                size_t n = NSAMPLES - j < TSDB_BLOCK_MAX ? NSAMPLES - j : TSDB_BLOCK_MAX;
                assert_int_equal(
                    tsdb__chunk_append(&f->chunks[i][c], &f->ts[i][c][j], &f->v[i][c][j], n), 0);
            }
            f->refs[i][c] = tsdb__block_chunk_of(&f->chunks[i][c]);
        }
        f->series[i] = (struct tsdb__block_series){f->labels[i], 3, f->refs[i], NCHUNKS};
    }
    return f;
}

static void free_fixture(struct fixture *f)
{
    for (int i = 0; i < NSERIES; i++)
        for (int c = 0; c < NCHUNKS; c++)
            tsdb__chunk_release(&f->chunks[i][c]);
    free(f);
}

/* The fixture's position of the series with these labels. */
static int find_series(const struct tsdb__label *ls, int n)
{
    assert_int_equal(n, 3);
    assert_string_equal(ls[0].name, "__name__");
    assert_string_equal(ls[1].name, "host");
    assert_string_equal(ls[2].name, "idx");
    int s = atoi(ls[2].value);
    assert_true(s >= 0 && s < NSERIES);
    char host[16];
    snprintf(host, sizeof(host), "h%d", s % 7);
    assert_string_equal(ls[1].value, host);
    return NSERIES - 1 - s;
}

static char *write_fixture(struct fixture *f, char *path, size_t cap)
{
    char *dir = tu_tmpdir("block");
    char err[256], name[48];
    int rc = tsdb__block_write(dir, BMINT, BMAXT, f->series, NSERIES, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    tsdb__block_dirname(name, sizeof(name), BMINT, BMAXT);
    snprintf(path, cap, "%s/%s", dir, name);
    return dir;
}

static struct tsdb__block *open_block(const char *path)
{
    struct tsdb__block *b;
    char err[256];
    if (tsdb__block_open(&b, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return b;
}

/*
 * Read every series of b over [mint, maxt] and compare with the fixture.
 * got[i][c] is set to 1 for each fixture chunk served. Returns the samples.
 */
static size_t check_block(struct tsdb__block *b, struct fixture *f, int64_t mint, int64_t maxt,
                          int got[NSERIES][NCHUNKS])
{
    memset(got, 0, sizeof(int) * NSERIES * NCHUNKS);
    size_t total = 0;
    assert_int_equal(tsdb__block_series_count(b), NSERIES);
    struct tsdb__label ls[8], prev[8];
    int nprev = 0;
    for (uint32_t i = 0; i < NSERIES; i++) {
        int n = tsdb__block_labels(b, i, ls, ARRAY_SIZE(ls));
        int s = find_series(ls, n);
        if (i) { /* sorted by label set: here by the idx value, as a string */
            assert_int_equal(nprev, 3);
            assert_true(strcmp(prev[1].value, ls[1].value) < 0 ||
                        (strcmp(prev[1].value, ls[1].value) == 0 &&
                         strcmp(prev[2].value, ls[2].value) < 0));
        }
        memcpy(prev, ls, sizeof(ls));
        nprev = n;
        struct tsdb__block_iter it;
        struct tsdb__block_chunk c;
        tsdb__block_iter_init(&it, b, i, -1, mint, maxt);
        while (tsdb__block_iter_next(&it, &c)) {
            assert_int_equal(c.col, 0);
            int k = (int)((c.mint - T0) / SPAN);
            assert_true(k >= 0 && k < NCHUNKS);
            assert_false(got[s][k]);
            got[s][k] = 1;
            assert_int_equal(c.mint, f->ts[s][k][0]);
            assert_int_equal(c.maxt, f->ts[s][k][NSAMPLES - 1]);
            assert_int_equal(c.len, f->chunks[s][k].len);
            struct tsdb__chunk_iter ci;
            assert_int_equal(tsdb__chunk_iter_init(&ci, c.buf, c.len, mint, maxt), 0);
            int64_t t;
            double v;
            int r, j = 0;
            while (j < NSAMPLES && f->ts[s][k][j] < mint)
                j++;
            while ((r = tsdb__chunk_iter_next(&ci, &t, &v)) > 0) {
                assert_true(j < NSAMPLES);
                assert_int_equal(t, f->ts[s][k][j]);
                assert_int_equal(bits(v), bits(f->v[s][k][j]));
                j++;
                total++;
            }
            assert_int_equal(r, 0);
            assert_true(j == NSAMPLES || f->ts[s][k][j] > maxt);
        }
        /* One column (every chunk here is column 0) gives the same chunks,
         * whether or not the iterator starts at the series' last entry. */
        int64_t seen[NCHUNKS];
        int nseen = 0;
        tsdb__block_iter_init(&it, b, i, 0, mint, maxt);
        while (tsdb__block_iter_next(&it, &c)) {
            assert_true(nseen < NCHUNKS);
            seen[nseen++] = c.mint;
        }
        int want = 0;
        for (int k = 0; k < NCHUNKS; k++)
            if (got[s][k]) {
                assert_true(want < nseen);
                assert_int_equal(seen[want], f->ts[s][k][0]);
                want++;
            }
        assert_int_equal(want, nseen);
    }
    return total;
}

/* Offset of fixture chunk (s, k)'s record in the chunks file bytes. */
static size_t record_offset(const uint8_t *chunks, size_t len, struct fixture *f, int s, int k)
{
    const struct tsdb__chunk *c = &f->chunks[s][k];
    const uint8_t *p = memmem(chunks, len, c->buf, c->len);
    assert_non_null(p);
    assert_null(memmem(p + 1, len - (size_t)(p + 1 - chunks), c->buf, c->len)); /* unique */
    return (size_t)(p - chunks); /* a record is the chunk's bytes, then its CRC */
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = xmalloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return p;
}

static void flip_byte(const char *path, size_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char path[256];
    char *dir = write_fixture(f, path, sizeof(path));
    struct tsdb__block_name *names;
    size_t n;
    char err[256];
    assert_int_equal(tsdb__blocks_scan(dir, &names, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(names[0].mint, BMINT);
    assert_int_equal(names[0].maxt, BMAXT);
    free(names);

    struct tsdb__block *b = open_block(path);
    assert_int_equal(tsdb__block_mint(b), BMINT);
    assert_int_equal(tsdb__block_maxt(b), BMAXT);
    static int got[NSERIES][NCHUNKS];
    assert_int_equal(check_block(b, f, INT64_MIN, INT64_MAX, got), NSERIES * NCHUNKS * NSAMPLES);
    for (int s = 0; s < NSERIES; s++)
        for (int k = 0; k < NCHUNKS; k++)
            assert_true(got[s][k]);
    assert_int_equal(tsdb__block_bad_chunks(b), 0);
    /* Out of range: no labels, no chunks. */
    struct tsdb__label ls[3];
    assert_int_equal(tsdb__block_labels(b, NSERIES, ls, 3), -1);
    assert_int_equal(tsdb__block_labels(b, 0, ls, 2), -1);
    struct tsdb__block_iter it;
    struct tsdb__block_chunk c;
    tsdb__block_iter_init(&it, b, NSERIES, -1, INT64_MIN, INT64_MAX);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    tsdb__block_close(b);

    /* The memory encoding is the files' exact contents, and opens the same. */
    uint8_t *idx, *chk;
    size_t ilen, clen, fl;
    assert_int_equal(tsdb__block_encode_mem(BMINT, BMAXT, f->series, NSERIES, &idx, &ilen, &chk,
                                            &clen, err, sizeof(err)),
                     0);
    char file[300];
    snprintf(file, sizeof(file), "%s/index", path);
    uint8_t *on_disk = read_file(file, &fl);
    assert_int_equal(fl, ilen);
    assert_memory_equal(on_disk, idx, ilen);
    free(on_disk);
    snprintf(file, sizeof(file), "%s/chunks", path);
    on_disk = read_file(file, &fl);
    assert_int_equal(fl, clen);
    assert_memory_equal(on_disk, chk, clen);
    free(on_disk);
    assert_int_equal(tsdb__block_open_mem(&b, idx, ilen, chk, clen, "mem", err, sizeof(err)), 0);
    assert_int_equal(check_block(b, f, INT64_MIN, INT64_MAX, got), NSERIES * NCHUNKS * NSAMPLES);
    tsdb__block_close(b);
    free(idx);
    free(chk);

    /* The same window again is refused; the first block is untouched. */
    assert_int_equal(tsdb__block_write(dir, BMINT, BMAXT, f->series, NSERIES, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "already present"));
    b = open_block(path);
    assert_int_equal(check_block(b, f, INT64_MIN, INT64_MAX, got), NSERIES * NCHUNKS * NSAMPLES);
    tsdb__block_close(b);
    tu_rmrf(dir);
    free_fixture(f);
}

static void test_time_range(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char path[256];
    char *dir = write_fixture(f, path, sizeof(path));
    struct tsdb__block *b = open_block(path);
    static int got[NSERIES][NCHUNKS];
    /* Inside chunk 1 only: chunks 0 and 2 are not even returned. */
    int64_t lo = T0 + SPAN + 10 * STEP, hi = T0 + SPAN + 19 * STEP + 2;
    assert_int_equal(check_block(b, f, lo, hi, got), NSERIES * 10);
    for (int s = 0; s < NSERIES; s++)
        assert_true(!got[s][0] && got[s][1] && !got[s][2]);
    /* Across the boundary of chunks 0 and 1: the last 5 of one, first 5 of the next. */
    lo = T0 + (NSAMPLES - 5) * STEP;
    hi = T0 + SPAN + 4 * STEP + 2;
    assert_int_equal(check_block(b, f, lo, hi, got), NSERIES * 10);
    /* Inside the last chunk (the iterator starts at the last entry), and from its first sample. */
    lo = T0 + (NCHUNKS - 1) * SPAN + 3 * STEP;
    assert_int_equal(check_block(b, f, lo, INT64_MAX, got), NSERIES * (NSAMPLES - 3));
    for (int s = 0; s < NSERIES; s++)
        assert_true(!got[s][0] && got[s][NCHUNKS - 1]);
    assert_int_equal(check_block(b, f, T0 + (NCHUNKS - 1) * SPAN, INT64_MAX, got),
                     NSERIES * NSAMPLES);
    /* Bounds are inclusive: a single timestamp gives the one sample of the series on it. */
    assert_int_equal(check_block(b, f, T0 + SPAN, T0 + SPAN, got), (NSERIES + 2) / 3);
    /* Outside the block, and an inverted range. */
    assert_int_equal(check_block(b, f, BMAXT, INT64_MAX, got), 0);
    assert_int_equal(check_block(b, f, INT64_MIN, BMINT - 1, got), 0);
    assert_int_equal(check_block(b, f, BMAXT, BMINT, got), 0);
    tsdb__block_close(b);
    tu_rmrf(dir);
    free_fixture(f);
}

static void test_damaged_chunk(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char path[256], file[300], err[256];
    char *dir = write_fixture(f, path, sizeof(path));
    snprintf(file, sizeof(file), "%s/chunks", path);
    size_t clen;
    uint8_t *chk = read_file(file, &clen);
    const int S = 42, K = 1;
    size_t off = record_offset(chk, clen, f, S, K);
    free(chk);
    flip_byte(file, off + f->chunks[S][K].len / 2);

    /* Capture the log to see the report. */
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    int saved = dup(STDERR_FILENO), lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && lfd >= 0);
    dup2(lfd, STDERR_FILENO);
    log_set_level(LOG_WARN);

    struct tsdb__block *b = open_block(path);
    static int got[NSERIES][NCHUNKS];
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(check_block(b, f, INT64_MIN, INT64_MAX, got),
                         (NSERIES * NCHUNKS - 1) * NSAMPLES);
        for (int s = 0; s < NSERIES; s++)
            for (int k = 0; k < NCHUNKS; k++)
                assert_int_equal(got[s][k], !(s == S && k == K));
        assert_int_equal(tsdb__block_bad_chunks(b), 1);
    }
    tsdb__block_close(b);

    log_set_level(LOG_ERROR);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(lfd);
    size_t loglen;
    uint8_t *log = read_file(logpath, &loglen);
    log = xrealloc(log, loglen + 1);
    log[loglen] = 0;
    char want[400];
    snprintf(want, sizeof(want), "%s/chunks: bytes %zu-%zu: ", path, off,
             off + 4 + f->chunks[S][K].len);
    const char *hit = strstr((char *)log, want);
    if (!hit)
        fail_msg("no report like '%s' in: %s", want, log);
    assert_non_null(strstr(hit, "checksum mismatch"));
    assert_null(strstr(strstr(hit, "skipped") + 1, "skipped")); /* reported once */
    free(log);
    (void)err;
    tu_rmrf(dir);
    free_fixture(f);
}

static void test_damaged_index(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char path[256], file[300], err[256];
    char *dir = write_fixture(f, path, sizeof(path));
    snprintf(file, sizeof(file), "%s/index", path);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    size_t where[] = {0, 9, (size_t)st.st_size / 2, (size_t)st.st_size - 1};
    for (size_t i = 0; i < ARRAY_SIZE(where); i++) {
        flip_byte(file, where[i]);
        struct tsdb__block *b = NULL;
        assert_int_equal(tsdb__block_open(&b, path, err, sizeof(err)), -1);
        assert_null(b);
        assert_non_null(strstr(err, file));
        flip_byte(file, where[i]);
    }
    /* Truncated, empty, missing. */
    assert_int_equal(truncate(file, st.st_size - 1), 0);
    struct tsdb__block *b;
    assert_int_equal(tsdb__block_open(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, file));
    assert_int_equal(truncate(file, 0), 0);
    assert_int_equal(tsdb__block_open(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, file));
    unlink(file);
    assert_int_equal(tsdb__block_open(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, file));
    tu_rmrf(dir);
    free_fixture(f);
}

static void test_truncated_chunks(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char path[256], file[300];
    char *dir = write_fixture(f, path, sizeof(path));
    snprintf(file, sizeof(file), "%s/chunks", path);
    size_t clen;
    uint8_t *chk = read_file(file, &clen);
    static size_t end[NSERIES][NCHUNKS];
    for (int s = 0; s < NSERIES; s++)
        for (int k = 0; k < NCHUNKS; k++)
            end[s][k] = record_offset(chk, clen, f, s, k) + 4 + f->chunks[s][k].len;
    free(chk);
    static int got[NSERIES][NCHUNKS];
    /* Cut in the middle, one byte short of a record, and down to the magic alone. */
    size_t cuts[] = {clen / 2, end[17][2] - 1, 8};
    if (cuts[1] > cuts[0]) { /* descending: truncate(2) must never extend */
        cuts[1] = cuts[0];
        cuts[0] = end[17][2] - 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
        assert_int_equal(truncate(file, (off_t)cuts[i]), 0);
        struct tsdb__block *b = open_block(path);
        size_t want = 0, bad = 0;
        for (int s = 0; s < NSERIES; s++)
            for (int k = 0; k < NCHUNKS; k++)
                end[s][k] <= cuts[i] ? want++ : bad++;
        assert_true(bad > 0);
        assert_int_equal(check_block(b, f, INT64_MIN, INT64_MAX, got), want * NSAMPLES);
        for (int s = 0; s < NSERIES; s++)
            for (int k = 0; k < NCHUNKS; k++)
                assert_int_equal(got[s][k], end[s][k] <= cuts[i]);
        assert_int_equal(tsdb__block_bad_chunks(b), bad);
        tsdb__block_close(b);
    }
    /* Shorter than the magic: the open fails naming the chunks file. */
    assert_int_equal(truncate(file, 3), 0);
    struct tsdb__block *b;
    char err[256];
    assert_int_equal(tsdb__block_open(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, file));
    tu_rmrf(dir);
    free_fixture(f);
}

static void test_leftover_tmp_removed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block");
    char p[300], err[256];
    snprintf(p, sizeof(p), "%s/tmp-b-0-100", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/tmp-b-0-100/chunks", dir);
    tu_write_file(p, "half");
    snprintf(p, sizeof(p), "%s/tmp-stray", dir);
    tu_write_file(p, "x");
    /* Not blocks: kept, not listed. */
    snprintf(p, sizeof(p), "%s/b-010-20", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/b-20-10", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    struct tsdb__label l = {"a", "b"};
    struct tsdb__block_series s = {&l, 1, NULL, 0};
    assert_int_equal(tsdb__block_write(dir, -5, 7, &s, 1, err, sizeof(err)), 0);
    assert_int_equal(tsdb__block_write(dir, 7, 100, &s, 1, err, sizeof(err)), 0);
    /* A stale temporary block of the same window is replaced by a write. */
    snprintf(p, sizeof(p), "%s/tmp-b-100-200", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/tmp-b-100-200/index", dir);
    tu_write_file(p, "stale");
    assert_int_equal(tsdb__block_write(dir, 100, 200, &s, 1, err, sizeof(err)), 0);

    struct tsdb__block_name *names;
    size_t n;
    assert_int_equal(tsdb__blocks_scan(dir, &names, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0].name, "b--5-7");
    assert_int_equal(names[0].mint, -5);
    assert_string_equal(names[1].name, "b-7-100");
    assert_string_equal(names[2].name, "b-100-200");
    free(names);
    assert_int_equal(count_entries(dir), 5); /* 3 blocks + 2 non-blocks */
    snprintf(p, sizeof(p), "%s/tmp-b-0-100", dir);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/tmp-stray", dir);
    assert_int_equal(access(p, F_OK), -1);
    /* An absent directory holds no blocks. */
    assert_int_equal(tsdb__blocks_scan("/nonexistent/blocks", &names, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    tu_rmrf(dir);
}

static void test_empty_block(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block");
    char p[300], err[256];
    assert_int_equal(tsdb__block_write(dir, 0, 1, NULL, 0, err, sizeof(err)), 0);
    snprintf(p, sizeof(p), "%s/b-0-1", dir);
    struct tsdb__block *b = open_block(p);
    assert_int_equal(tsdb__block_series_count(b), 0);
    struct tsdb__label l;
    assert_int_equal(tsdb__block_labels(b, 0, &l, 1), -1);
    struct tsdb__block_iter it;
    struct tsdb__block_chunk c;
    tsdb__block_iter_init(&it, b, 0, -1, INT64_MIN, INT64_MAX);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    tsdb__block_close(b);
    tu_rmrf(dir);
}

static void test_bad_input(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block");
    char err[256];
    struct tsdb__chunk ch;
    tsdb__chunk_init(&ch);
    int64_t ts[2] = {100, 200};
    double v[2] = {1, 2};
    assert_int_equal(tsdb__chunk_append(&ch, ts, v, 2), 0);
    struct tsdb__block_chunk c = tsdb__block_chunk_of(&ch), cc[2] = {c, c};
    struct tsdb__label unsorted[2] = {{"b", "1"}, {"a", "1"}}, dup[2] = {{"a", "1"}, {"a", "2"}};
    struct tsdb__label ok[1] = {{"a", "1"}};
    struct tsdb__block_series cases[][2] = {
        {{unsorted, 2, NULL, 0}},
        {{dup, 2, NULL, 0}},
        {{ok, 0, NULL, 0}},
        {{ok, 1, NULL, 0}, {ok, 1, NULL, 0}}, /* the same series twice */
        {{ok, 1, &c, 1}, {NULL, 0, NULL, 0}}, /* no labels */
        {{ok, 1, cc, 2}},                     /* overlapping chunks */
    };
    size_t ns[] = {1, 1, 1, 2, 2, 1};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        errno = 0;
        assert_int_equal(tsdb__block_write(dir, 0, 1000, cases[i], ns[i], err, sizeof(err)), -1);
        assert_int_equal(errno, EINVAL);
    }
    struct tsdb__block_series one = {ok, 1, &c, 1};
    assert_int_equal(tsdb__block_write(dir, 101, 1000, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(tsdb__block_write(dir, 0, 200, &one, 1, err, sizeof(err)), -1); /* [0,200) */
    assert_int_equal(tsdb__block_write(dir, 5, 5, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(count_entries(dir), 0);
    assert_int_equal(tsdb__block_write(dir, 100, 201, &one, 1, err, sizeof(err)), 0);
    assert_int_equal(count_entries(dir), 1);
    tsdb__chunk_release(&ch);
    tu_rmrf(dir);
}

/* A full disk (RLIMIT_FSIZE stands in for ENOSPC): the write fails, nothing is left. */
static void test_disk_full(void **state)
{
    (void)state;
    struct fixture *f = make_fixture();
    char *dir = tu_tmpdir("block");
    char err[256];
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    size_t limits[] = {0, 100, 5000, 70000};
    for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
        lim = old;
        lim.rlim_cur = limits[i];
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        int rc = tsdb__block_write(dir, BMINT, BMAXT, f->series, NSERIES, err, sizeof(err));
        int e = errno;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        assert_int_equal(rc, -1);
        assert_int_equal(e, EFBIG);
        assert_non_null(strstr(err, "tmp-b-"));
        assert_non_null(strstr(err, strerror(EFBIG)));
        assert_int_equal(count_entries(dir), 0);
    }
    /* Space is back: the write goes through. */
    assert_int_equal(tsdb__block_write(dir, BMINT, BMAXT, f->series, NSERIES, err, sizeof(err)), 0);
    assert_int_equal(count_entries(dir), 1);
    tu_rmrf(dir);
    free_fixture(f);
}

/* ---------------------------------------------------- columns and merge */

/* c := a chunk of ts[0..n), v[0..n). */
static void make_chunk(struct tsdb__chunk *c, const int64_t *ts, const double *v, size_t n)
{
    tsdb__chunk_init(c);
    for (size_t j = 0; j < n; j += TSDB_BLOCK_MAX) {
        size_t m = n - j < TSDB_BLOCK_MAX ? n - j : TSDB_BLOCK_MAX;
        assert_int_equal(tsdb__chunk_append(c, ts + j, v + j, m), 0);
    }
}

/* Decode c into ts/v (cap entries); returns the count. */
static size_t decode_chunk(const struct tsdb__block_chunk *c, int64_t *ts, double *v, size_t cap)
{
    struct tsdb__chunk_iter ci;
    assert_int_equal(tsdb__chunk_iter_init(&ci, c->buf, c->len, INT64_MIN, INT64_MAX), 0);
    size_t n = 0;
    int r;
    while ((r = tsdb__chunk_iter_next(&ci, &ts[n], &v[n])) > 0) {
        n++;
        assert_true(n < cap);
    }
    assert_int_equal(r, 0);
    return n;
}

/* Column c's chunk k of the column test: 20 samples, columns overlapping in time. */
#define CN 20
static int64_t col_ts(int c, int k, int i)
{
    return 1000 + c * 3 + k * 10000 + i * 10;
}

/*
 * Encode {a="1"} with the chunks two[0..2) over [1000, 2000), set the column
 * of the last entry (4 one-byte uvarints just before the CRC) to col and,
 * if len >= 0, its chunk length to len, make the CRC good again and open
 * it: 0 or -1.
 */
static int open_patched(const struct tsdb__block_chunk *two, uint8_t col, int len)
{
    struct tsdb__label l = {"a", "1"};
    struct tsdb__block_series one = {&l, 1, two, 2};
    uint8_t *idx, *chk;
    size_t ilen, clen;
    char err[256];
    assert_int_equal(
        tsdb__block_encode_mem(1000, 2000, &one, 1, &idx, &ilen, &chk, &clen, err, sizeof(err)), 0);
    assert_true(two[1].len < 100 && two[1].mint - 1000 < 128 && two[1].maxt == two[1].mint);
    uint8_t entry[] = {two[1].col, (uint8_t)(two[1].mint - 1000), 0, (uint8_t)two[1].len};
    assert_memory_equal(idx + ilen - 8, entry, sizeof(entry));
    idx[ilen - 8] = col;
    if (len >= 0)
        idx[ilen - 5] = (uint8_t)len;
    uint32_t crc = tsdb__crc32c(0, idx, ilen - 4);
    for (int k = 0; k < 4; k++)
        idx[ilen - 4 + (size_t)k] = (uint8_t)(crc >> (8 * k));
    struct tsdb__block *b = NULL;
    int rc = tsdb__block_open_mem(&b, idx, ilen, chk, clen, "mem", err, sizeof(err));
    if (rc == 0)
        tsdb__block_close(b);
    else
        assert_non_null(strstr(err, "mem/index"));
    free(idx);
    free(chk);
    return rc;
}

static void test_columns(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block");
    char err[256], path[300];
    /* {a="1"}: columns 0-4 with two chunks each and column 7 with one; {a="2"}: column 2. */
    static const struct {
        uint8_t col, k;
    } plan[] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {2, 0}, {2, 1},
                {3, 0}, {3, 1}, {4, 0}, {4, 1}, {7, 0}};
    struct tsdb__chunk ch[ARRAY_SIZE(plan) + 1];
    struct tsdb__block_chunk refs[ARRAY_SIZE(plan) + 1];
    int64_t ts[CN];
    double v[CN];
    for (size_t p = 0; p <= ARRAY_SIZE(plan); p++) {
        int col = p < ARRAY_SIZE(plan) ? plan[p].col : 2, k = p < ARRAY_SIZE(plan) ? plan[p].k : 0;
        for (int i = 0; i < CN; i++) {
            ts[i] = col_ts(col, k, i);
            v[i] = (double)(p * 1000 + (size_t)i);
        }
        make_chunk(&ch[p], ts, v, CN);
        refs[p] = tsdb__block_chunk_of(&ch[p]);
        assert_int_equal(refs[p].col, 0);
        refs[p].col = (uint8_t)col;
    }
    struct tsdb__label l1 = {"a", "1"}, l2 = {"a", "2"};
    struct tsdb__block_series series[2] = {{&l2, 1, &refs[ARRAY_SIZE(plan)], 1},
                                           {&l1, 1, refs, ARRAY_SIZE(plan)}};
    assert_int_equal(tsdb__block_write(dir, 0, 100000, series, 2, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/b-0-100000", dir);
    struct tsdb__block *b = open_block(path);
    struct stat st;
    size_t bytes = 0;
    char file[400];
    snprintf(file, sizeof(file), "%s/index", path);
    assert_int_equal(stat(file, &st), 0);
    bytes += (size_t)st.st_size;
    snprintf(file, sizeof(file), "%s/chunks", path);
    assert_int_equal(stat(file, &st), 0);
    bytes += (size_t)st.st_size;
    assert_int_equal(tsdb__block_bytes(b), bytes);

    /* Every column, in stored order, bytes and ranges intact. */
    struct tsdb__block_iter it;
    struct tsdb__block_chunk c;
    tsdb__block_iter_init(&it, b, 0, -1, INT64_MIN, INT64_MAX);
    size_t p = 0;
    for (; tsdb__block_iter_next(&it, &c); p++) {
        assert_true(p < ARRAY_SIZE(plan));
        assert_int_equal(c.col, plan[p].col);
        assert_int_equal(c.mint, col_ts(plan[p].col, plan[p].k, 0));
        assert_int_equal(c.maxt, col_ts(plan[p].col, plan[p].k, CN - 1));
        assert_int_equal(c.len, refs[p].len);
        assert_memory_equal(c.buf, refs[p].buf, c.len);
        int64_t got_ts[CN + 1];
        double got_v[CN + 1];
        assert_int_equal(decode_chunk(&c, got_ts, got_v, CN + 1), CN);
        for (int i = 0; i < CN; i++) {
            assert_int_equal(got_ts[i], col_ts(plan[p].col, plan[p].k, i));
            assert_true(got_v[i] == (double)(p * 1000 + (size_t)i));
        }
    }
    assert_int_equal(p, ARRAY_SIZE(plan));
    /* One column at a time. */
    for (int col = 0; col < TSDB_BLOCK_MAX_COLS + 2; col++) {
        size_t want = 0, got = 0;
        for (p = 0; p < ARRAY_SIZE(plan); p++)
            want += plan[p].col == col;
        tsdb__block_iter_init(&it, b, 0, col, INT64_MIN, INT64_MAX);
        int64_t last = INT64_MIN;
        while (tsdb__block_iter_next(&it, &c)) {
            assert_int_equal(c.col, col);
            assert_true(c.mint > last);
            last = c.maxt;
            got++;
        }
        assert_int_equal(got, want);
    }
    tsdb__block_iter_init(&it, b, 0, 1000, INT64_MIN, INT64_MAX);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    tsdb__block_iter_init(&it, b, 1, 2, INT64_MIN, INT64_MAX); /* {a="2"} */
    assert_int_equal(tsdb__block_iter_next(&it, &c), 1);
    assert_int_equal(c.col, 2);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    tsdb__block_iter_init(&it, b, 1, 0, INT64_MIN, INT64_MAX);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    /* A time range over every column: the first chunk of each (past one column's end, on to the
     * next). */
    tsdb__block_iter_init(&it, b, 0, -1, 0, 9999);
    for (int col = 0; col < TSDB_BLOCK_MAX_COLS; col++) {
        if (col == 5 || col == 6)
            continue;
        assert_int_equal(tsdb__block_iter_next(&it, &c), 1);
        assert_int_equal(c.col, col);
        assert_int_equal(c.mint, col_ts(col, 0, 0));
    }
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    tsdb__block_iter_init(&it, b, 0, 3, 10000, INT64_MAX);
    assert_int_equal(tsdb__block_iter_next(&it, &c), 1);
    assert_int_equal(c.mint, col_ts(3, 1, 0));
    assert_int_equal(tsdb__block_iter_next(&it, &c), 0);
    assert_int_equal(tsdb__block_bad_chunks(b), 0);
    tsdb__block_close(b);

    /* The writer's column rules. */
    struct tsdb__block_chunk bad[2] = {refs[2], refs[0]}; /* column 1, then column 0 */
    struct tsdb__block_series one = {&l1, 1, bad, 2};
    errno = 0;
    assert_int_equal(tsdb__block_write(dir, 0, 100000, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    bad[0] = refs[1]; /* column 0 twice, the later chunk first */
    bad[1] = refs[0];
    errno = 0;
    assert_int_equal(tsdb__block_write(dir, 0, 100000, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    bad[0] = refs[0]; /* column 0 twice, the same chunk */
    errno = 0;
    assert_int_equal(tsdb__block_write(dir, 0, 100000, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    bad[1].col = TSDB_BLOCK_MAX_COLS; /* a column past the last */
    errno = 0;
    assert_int_equal(tsdb__block_write(dir, 0, 100000, &one, 1, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "column"));
    assert_int_equal(count_entries(dir), 1);

    /* The reader's: the same rules, checked at open. */
    struct tsdb__block_chunk two[2] = {refs[0], refs[0]};
    two[0].mint = two[0].maxt = two[1].mint = two[1].maxt = 1000;
    two[1].col = 1;
    assert_int_equal(open_patched(two, 1, -1), 0);
    assert_int_equal(open_patched(two, 0, -1), -1); /* overlapping in one column */
    assert_int_equal(open_patched(two, TSDB_BLOCK_MAX_COLS, -1), -1);
    assert_int_equal(open_patched(two, 0x7f, -1), -1);
    /* A chunk length below a chunk header is refused at open, like any malformed entry. */
    assert_int_equal(open_patched(two, 1, (int)two[1].len), 0);
    assert_int_equal(open_patched(two, 1, TSDB_CHUNK_HEADER - 1), -1);
    two[0].col = 1;
    two[1].col = 2;
    two[1].mint = two[1].maxt = 1001;
    assert_int_equal(open_patched(two, 2, -1), 0);
    assert_int_equal(open_patched(two, 1, -1), 0);  /* one column, in order */
    assert_int_equal(open_patched(two, 0, -1), -1); /* columns out of order */
    for (p = 0; p <= ARRAY_SIZE(plan); p++)
        tsdb__chunk_release(&ch[p]);
    tu_rmrf(dir);
}

/*
 * The merge fixture: three input blocks, windows [T0 + j*MW, T0 + (j+1)*MW),
 * holding overlapping and disjoint sets of series 0..MSERIES-1, each with
 * the chunks of mplan: two in column 0, one each in columns 3 and 4,
 * overlapping in time across columns.
 */
#define MW      10000
#define MBLOCKS 3
#define MSERIES 23
#define MN      30
static const struct {
    uint8_t col, k;
} mplan[] = {{0, 0}, {0, 1}, {3, 0}, {4, 0}};

static int64_t mts(int blk, int col, int k, int i)
{
    return T0 + blk * MW + k * 4000 + col * 7 + i * 100;
}

static double mval(int s, int col, int64_t t)
{
    return s * 1e9 + col * 1e7 + (double)(t - T0);
}

static int in_block(int s, int blk)
{
    switch (blk) {
    case 0:
        return s < 10;
    case 1:
        return s >= 5 && s < 15;
    default:
        return s < 3 || s >= 20;
    }
}

/* Series s: {__name__="m", id="<s/2>"} and, for odd s, zone="z" too (a longer set, same prefix). */
static int mlabels(int s, char id[16], struct tsdb__label *out)
{
    snprintf(id, 16, "%d", s / 2);
    out[0] = (struct tsdb__label){"__name__", "m"};
    out[1] = (struct tsdb__label){"id", id};
    out[2] = (struct tsdb__label){"zone", "z"};
    return s % 2 ? 3 : 2;
}

static void make_mchunk(struct tsdb__chunk *c, int s, int blk, size_t p)
{
    int64_t ts[MN];
    double v[MN];
    for (int i = 0; i < MN; i++) {
        ts[i] = mts(blk, mplan[p].col, mplan[p].k, i);
        v[i] = mval(s, mplan[p].col, ts[i]);
    }
    make_chunk(c, ts, v, MN);
}

/* Write input block blk under dir and open it. */
static struct tsdb__block *write_minput(const char *dir, int blk)
{
    static struct tsdb__chunk ch[MSERIES][ARRAY_SIZE(mplan)];
    static struct tsdb__block_chunk refs[MSERIES][ARRAY_SIZE(mplan)];
    static struct tsdb__label labels[MSERIES][3];
    static char ids[MSERIES][16];
    struct tsdb__block_series series[MSERIES];
    size_t n = 0;
    for (int s = MSERIES - 1; s >= 0; s--) { /* the writer sorts */
        if (!in_block(s, blk))
            continue;
        int nl = mlabels(s, ids[s], labels[s]);
        for (size_t p = 0; p < ARRAY_SIZE(mplan); p++) {
            make_mchunk(&ch[s][p], s, blk, p);
            refs[s][p] = tsdb__block_chunk_of(&ch[s][p]);
            refs[s][p].col = mplan[p].col;
        }
        series[n++] =
            (struct tsdb__block_series){labels[s], (size_t)nl, refs[s], ARRAY_SIZE(mplan)};
    }
    char err[256], path[300], name[48];
    int64_t lo = T0 + blk * MW, hi = lo + MW;
    if (tsdb__block_write(dir, lo, hi, series, n, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    for (int s = 0; s < MSERIES; s++)
        if (in_block(s, blk))
            for (size_t p = 0; p < ARRAY_SIZE(mplan); p++)
                tsdb__chunk_release(&ch[s][p]);
    tsdb__block_dirname(name, sizeof(name), lo, hi);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return open_block(path);
}

/*
 * Check the merged block at path: exactly the series of the inputs in
 * blocks[0..nb), labels intact and sorted, and per column every sample of
 * every input once, in order, except the chunk (skip_s, skip_blk, skip_p).
 */
static void check_merged(const char *path, const int *blocks, int nb, int skip_s, int skip_blk,
                         size_t skip_p)
{
    struct tsdb__block *b = open_block(path);
    uint32_t want_series = 0;
    for (int s = 0; s < MSERIES; s++)
        for (int j = 0; j < nb; j++)
            if (in_block(s, blocks[j])) {
                want_series++;
                break;
            }
    assert_int_equal(tsdb__block_series_count(b), want_series);
    struct tsdb__label ls[4], prev[4], want[3];
    int nprev = 0;
    char id[16];
    for (uint32_t i = 0; i < want_series; i++) {
        int nl = tsdb__block_labels(b, i, ls, ARRAY_SIZE(ls));
        assert_true(nl == 2 || nl == 3);
        assert_string_equal(ls[1].name, "id");
        int s = 2 * atoi(ls[1].value) + (nl == 3);
        assert_true(s >= 0 && s < MSERIES);
        assert_int_equal(mlabels(s, id, want), nl);
        for (int l = 0; l < nl; l++) {
            assert_string_equal(ls[l].name, want[l].name);
            assert_string_equal(ls[l].value, want[l].value);
        }
        if (i) { /* strictly increasing: same id with zone after, else by the id string */
            int c = strcmp(prev[1].value, ls[1].value);
            assert_true(c < 0 || (c == 0 && nprev < nl));
        }
        memcpy(prev, ls, sizeof(ls));
        nprev = nl;
        size_t all = 0;
        for (int col = 0; col < TSDB_BLOCK_MAX_COLS; col++) {
            /* The expected samples of this column, oldest first. */
            int64_t exp[MBLOCKS * ARRAY_SIZE(mplan) * MN];
            size_t nexp = 0, nchunks = 0;
            for (int j = 0; j < nb; j++) {
                if (!in_block(s, blocks[j]))
                    continue;
                for (size_t p = 0; p < ARRAY_SIZE(mplan); p++) {
                    if (mplan[p].col != col ||
                        (s == skip_s && blocks[j] == skip_blk && p == skip_p))
                        continue;
                    for (int k = 0; k < MN; k++)
                        exp[nexp++] = mts(blocks[j], col, mplan[p].k, k);
                    nchunks++;
                }
            }
            struct tsdb__block_iter it;
            struct tsdb__block_chunk c;
            tsdb__block_iter_init(&it, b, i, col, INT64_MIN, INT64_MAX);
            size_t got = 0, gotc = 0;
            while (tsdb__block_iter_next(&it, &c)) {
                assert_int_equal(c.col, col);
                int64_t ts[MN + 1];
                double v[MN + 1];
                size_t n = decode_chunk(&c, ts, v, MN + 1);
                assert_int_equal(c.mint, ts[0]);
                assert_int_equal(c.maxt, ts[n - 1]);
                for (size_t k = 0; k < n; k++, got++) {
                    assert_true(got < nexp);
                    assert_int_equal(ts[k], exp[got]);
                    assert_true(v[k] == mval(s, col, ts[k]));
                }
                gotc++;
            }
            assert_int_equal(got, nexp);
            assert_int_equal(gotc, nchunks);
            all += nchunks;
        }
        /* Every column at once: stored order is by column. */
        struct tsdb__block_iter it;
        struct tsdb__block_chunk c;
        tsdb__block_iter_init(&it, b, i, -1, INT64_MIN, INT64_MAX);
        int lastcol = 0;
        size_t n = 0;
        while (tsdb__block_iter_next(&it, &c)) {
            assert_true(c.col >= lastcol);
            lastcol = c.col;
            n++;
        }
        assert_int_equal(n, all);
    }
    assert_int_equal(tsdb__block_bad_chunks(b), 0);
    tsdb__block_close(b);
}

static void test_merge(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block"), out[300], path[400], err[256];
    struct tsdb__block *in[MBLOCKS];
    for (int j = 0; j < MBLOCKS; j++)
        in[j] = write_minput(dir, j);
    snprintf(out, sizeof(out), "%s/out", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    uint64_t bad = 99;
    int64_t lo = T0, hi = T0 + MBLOCKS * MW;
    if (tsdb__block_merge(out, lo, hi, in, MBLOCKS, &bad, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(bad, 0);
    snprintf(path, sizeof(path), "%s/b-%lld-%lld", out, (long long)lo, (long long)hi);
    static const int all[] = {0, 1, 2};
    check_merged(path, all, 3, -1, -1, 0);

    /* Two inputs with a gap between them, into a wider window; bad may be NULL. */
    struct tsdb__block *two[2] = {in[0], in[2]};
    assert_int_equal(tsdb__block_merge(out, lo - 5, hi + 5, two, 2, NULL, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/b-%lld-%lld", out, (long long)lo - 5, (long long)hi + 5);
    static const int ends[] = {0, 2};
    check_merged(path, ends, 2, -1, -1, 0);

    /* One input: a copy. None: an empty block. */
    assert_int_equal(tsdb__block_merge(out, lo, hi + 1, &in[1], 1, &bad, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/b-%lld-%lld", out, (long long)lo, (long long)hi + 1);
    static const int mid[] = {1};
    check_merged(path, mid, 1, -1, -1, 0);
    assert_int_equal(tsdb__block_merge(out, 0, 1, NULL, 0, &bad, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/b-0-1", out);
    struct tsdb__block *b = open_block(path);
    assert_int_equal(tsdb__block_series_count(b), 0);
    tsdb__block_close(b);
    assert_int_equal(count_entries(out), 4);

    /* The same window again: refused, nothing else written. */
    assert_int_equal(tsdb__block_merge(out, lo, hi, in, MBLOCKS, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(count_entries(out), 4);
    for (int j = 0; j < MBLOCKS; j++) {
        assert_int_equal(tsdb__block_bad_chunks(in[j]), 0);
        tsdb__block_close(in[j]);
    }
    tu_rmrf(dir);
}

static void test_merge_bad_chunk(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block"), out[300], path[400], file[400], err[256], name[48];
    struct tsdb__block *in[MBLOCKS];
    for (int j = 0; j < MBLOCKS; j++)
        in[j] = write_minput(dir, j);
    /* Damage series 6's second column-0 chunk in input 1, on disk (then open it again). */
    const int S = 6, BLK = 1;
    const size_t P = 1;
    struct tsdb__chunk c;
    make_mchunk(&c, S, BLK, P);
    tsdb__block_dirname(name, sizeof(name), T0 + BLK * MW, T0 + (BLK + 1) * MW);
    snprintf(file, sizeof(file), "%s/%s/chunks", dir, name);
    size_t clen;
    uint8_t *chk = read_file(file, &clen);
    const uint8_t *at = memmem(chk, clen, c.buf, c.len);
    assert_non_null(at);
    assert_null(memmem(at + 1, clen - (size_t)(at + 1 - chk), c.buf, c.len));
    tsdb__block_close(in[BLK]);
    flip_byte(file, (size_t)(at - chk) + c.len / 2);
    free(chk);
    tsdb__chunk_release(&c);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    in[BLK] = open_block(path);

    snprintf(out, sizeof(out), "%s/out", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    int64_t lo = T0, hi = T0 + MBLOCKS * MW;
    uint64_t bad = 0;
    static const int all[] = {0, 1, 2};
    /* Twice: the second time the input already knows the chunk is bad, and it still counts. */
    for (int pass = 0; pass < 2; pass++) {
        if (tsdb__block_merge(out, lo, hi + pass, in, MBLOCKS, &bad, err, sizeof(err)) != 0)
            fail_msg("%s", err);
        assert_int_equal(bad, 1);
        assert_int_equal(tsdb__block_bad_chunks(in[BLK]), 1);
        snprintf(path, sizeof(path), "%s/b-%lld-%lld", out, (long long)lo, (long long)hi + pass);
        check_merged(path, all, 3, S, BLK, P);
    }
    for (int j = 0; j < MBLOCKS; j++)
        tsdb__block_close(in[j]);
    tu_rmrf(dir);
}

static void test_merge_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("block"), out[300], err[256];
    struct tsdb__block *in[MBLOCKS];
    for (int j = 0; j < MBLOCKS; j++)
        in[j] = write_minput(dir, j);
    snprintf(out, sizeof(out), "%s/out", dir);
    assert_int_equal(mkdir(out, 0700), 0);
    int64_t lo = T0, hi = T0 + MBLOCKS * MW;
    struct tsdb__block *same[2] = {in[0], in[0]}, *reversed[2] = {in[1], in[0]};
    uint64_t bad = 7;
    errno = 0;
    assert_int_equal(tsdb__block_merge(out, lo, hi, same, 2, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "overlaps"));
    assert_int_equal(bad, 0);
    errno = 0;
    assert_int_equal(tsdb__block_merge(out, lo, hi, reversed, 2, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    /* Windows not inside the merged one. */
    errno = 0;
    assert_int_equal(tsdb__block_merge(out, lo + 1, hi, in, MBLOCKS, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_non_null(strstr(err, "outside"));
    errno = 0;
    assert_int_equal(tsdb__block_merge(out, lo, hi - 1, in, MBLOCKS, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(tsdb__block_merge(out, hi, lo, in, MBLOCKS, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(count_entries(out), 0);
    /* A directory that is not there: an I/O error, nothing behind. */
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    assert_int_equal(tsdb__block_merge(missing, lo, hi, in, MBLOCKS, &bad, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOENT);
    for (int j = 0; j < MBLOCKS; j++)
        tsdb__block_close(in[j]);
    tu_rmrf(dir);
}

/*
 * The seeds of fuzz/block_fuzz.c (fuzz/corpus/block/), written into the
 * directory $BLOCK_FUZZ_SEEDS instead of running the tests when that is set:
 * each is a mode byte (0), the index length (u16, little-endian), the index
 * and the chunks file of a small block. Rerun after a format change.
 */
static void write_seed(const char *dir, const char *name, const struct tsdb__block_series *series,
                       size_t n)
{
    uint8_t *idx, *chk;
    size_t ilen, clen;
    char err[256], path[4096];
    if (tsdb__block_encode_mem(0, 100000, series, n, &idx, &ilen, &chk, &clen, err, sizeof(err)))
        fail_msg("%s", err);
    assert_true(ilen <= UINT16_MAX);
    struct tsdb__block *b;
    if (tsdb__block_open_mem(&b, idx, ilen, chk, clen, name, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(tsdb__block_series_count(b), n);
    tsdb__block_close(b);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint8_t hdr[3] = {0, (uint8_t)ilen, (uint8_t)(ilen >> 8)};
    assert_int_equal(fwrite(hdr, 1, 3, fp), 3);
    assert_int_equal(fwrite(idx, 1, ilen, fp), ilen);
    assert_int_equal(fwrite(chk, 1, clen, fp), clen);
    assert_int_equal(fclose(fp), 0);
    free(idx);
    free(chk);
}

static void write_fuzz_seeds(const char *dir)
{
    /* Raw: chunk a 70 samples from 1000, chunk b 5 from 2000, column 0. */
    int64_t ts[70];
    double v[70];
    struct tsdb__chunk ch[7];
    struct tsdb__block_chunk c[7];
    for (int i = 0; i < 70; i++) {
        ts[i] = 1000 + 10 * i;
        v[i] = 1;
    }
    make_chunk(&ch[0], ts, v, 70);
    for (int i = 0; i < 5; i++) {
        ts[i] = 2000 + 10 * i;
        v[i] = i;
    }
    make_chunk(&ch[1], ts, v, 5);
    /* Downsampled: min, max, sum, count, last of 10 steps, one chunk each (columns 0-4). */
    for (int col = 0; col < 5; col++) {
        for (int i = 0; i < 10; i++) {
            ts[i] = 500 + 9000 * i; /* inside [0, 100000) */
            v[i] = col == 3 ? 60 : col * 10.0 + i * 0.5;
        }
        make_chunk(&ch[2 + col], ts, v, 10);
    }
    for (int k = 0; k < 7; k++) {
        c[k] = tsdb__block_chunk_of(&ch[k]);
        c[k].col = (uint8_t)(k < 2 ? 0 : k - 2);
    }
    struct tsdb__label up[2] = {{"__name__", "up"}, {"job", "node"}};
    struct tsdb__label cpu[2] = {{"__name__", "cpu"}, {"host", "a"}};
    write_seed(dir, "empty-block", NULL, 0);
    struct tsdb__block_series one = {up, 2, c, 2};
    write_seed(dir, "one-series", &one, 1);
    struct tsdb__block_series two[2] = {{up, 2, c, 2}, {up, 1, &c[1], 1}};
    write_seed(dir, "two-series", two, 2);
    struct tsdb__block_series cols[2] = {{cpu, 2, &c[2], 5}, {up, 1, &c[1], 1}};
    write_seed(dir, "columns", cols, 2);
    for (int k = 0; k < 7; k++)
        tsdb__chunk_release(&ch[k]);
}

int main(void)
{
    const char *seeds = getenv("BLOCK_FUZZ_SEEDS");
    if (seeds) {
        write_fuzz_seeds(seeds);
        return 0;
    }
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_damaged_chunk),
        cmocka_unit_test(test_damaged_index),
        cmocka_unit_test(test_truncated_chunks),
        cmocka_unit_test(test_leftover_tmp_removed),
        cmocka_unit_test(test_empty_block),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_bad_chunk),
        cmocka_unit_test(test_merge_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
