/*
 * block_test.c: on-disk blocks: a block of 100 series x 3 chunks written and
 * read back bit-exact (NaN payloads included), time ranges, a damaged chunk
 * skipped alone and reported once, a damaged index refused, a truncated
 * chunks file served up to the cut, leftovers of unfinished writes removed,
 * the empty block, refused input, and a full disk leaving nothing behind.
 */
#include "testutil.h"
#include "tsdb/block.h"
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
        tsdb__block_iter_init(&it, b, i, mint, maxt);
        while (tsdb__block_iter_next(&it, &c)) {
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
    return (size_t)(p - chunks) - 4;
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
    tsdb__block_iter_init(&it, b, NSERIES, INT64_MIN, INT64_MAX);
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
    flip_byte(file, off + 4 + f->chunks[S][K].len / 2);

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
             off + 8 + f->chunks[S][K].len);
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
            end[s][k] = record_offset(chk, clen, f, s, k) + 8 + f->chunks[s][k].len;
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
    tsdb__block_iter_init(&it, b, 0, INT64_MIN, INT64_MAX);
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

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_damaged_chunk),    cmocka_unit_test(test_damaged_index),
        cmocka_unit_test(test_truncated_chunks), cmocka_unit_test(test_leftover_tmp_removed),
        cmocka_unit_test(test_empty_block),      cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
