/*
 * wal_test.c: write-ahead log: round trips across segments and reopenings,
 * torn tails, damaged bytes skipped with the rest replayed, and a full disk
 * (simulated with RLIMIT_FSIZE) losing nothing once space returns.
 */
#include "testutil.h"
#include "tsdb/wal.h"
#include "util/log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXREC 200

struct rec {
    uint8_t type;
    size_t len;
    uint8_t data[600];
};

struct seen {
    struct rec r[MAXREC * 2];
    size_t n;
};

static int collect_rec(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    (void)seg;
    struct seen *s = ctx;
    assert_true(s->n < ARRAY_SIZE(s->r));
    assert_true(len <= sizeof(s->r[0].data));
    s->r[s->n].type = type;
    s->r[s->n].len = len;
    memcpy(s->r[s->n].data, p, len);
    s->n++;
    return 0;
}

static void make_recs(struct rec *r, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        r[i].type = (uint8_t)(1 + rand() % 3);
        r[i].len = (size_t)(rand() % 600);
        for (size_t k = 0; k < r[i].len; k++)
            r[i].data[k] = (uint8_t)rand();
    }
}

static struct tsdb__wal *open_wal(const char *dir, size_t seg)
{
    struct tsdb__wal *w;
    char err[256];
    assert_int_equal(tsdb__wal_open(&w, dir, seg, err, sizeof(err)), 0);
    return w;
}

static void write_recs(struct tsdb__wal *w, const struct rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tsdb__wal_append(w, r[i].type, r[i].data, r[i].len), 0);
        if (i % 7 == 0)
            assert_int_equal(tsdb__wal_flush(w), 0);
    }
    assert_int_equal(tsdb__wal_sync(w), 0);
}

static void assert_same(const struct rec *a, const struct rec *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
}

static struct seen *replay(const char *dir, struct tsdb__wal_stats *st)
{
    struct seen *s = xcalloc(1, sizeof(*s));
    assert_int_equal(tsdb__wal_replay(dir, collect_rec, s, st), 0);
    return s;
}

static void test_round_trip_segments_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    static struct rec r[MAXREC];
    make_recs(r, MAXREC, 1);
    struct tsdb__wal *w = open_wal(dir, 4096); /* many small segments */
    write_recs(w, r, MAXREC / 2);
    uint32_t seg_mid = tsdb__wal_segment(w);
    assert_true(seg_mid > 5);
    tsdb__wal_close(w);
    w = open_wal(dir, 4096); /* reopening starts a new segment */
    assert_int_equal(tsdb__wal_segment(w), seg_mid + 1);
    write_recs(w, r + MAXREC / 2, MAXREC / 2);
    tsdb__wal_close(w);

    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(s->n, MAXREC);
    for (size_t i = 0; i < MAXREC; i++)
        assert_same(&s->r[i], &r[i]);
    assert_int_equal(st.corrupt_ranges, 0);
    assert_int_equal(st.torn_tail, 0);
    free(s);

    /* Dropping old segments removes exactly their records. */
    w = open_wal(dir, 4096);
    assert_true(tsdb__wal_truncate_before(w, seg_mid + 1) > 0);
    tsdb__wal_close(w);
    s = replay(dir, &st);
    assert_int_equal(s->n, MAXREC / 2);
    assert_same(&s->r[0], &r[MAXREC / 2]);
    free(s);
    tu_rmrf(dir);
}

static char *last_segment(const char *dir, int back)
{
    static char path[256];
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls '%s' | sort | tail -n %d | head -n 1", dir, back + 1);
    FILE *p = popen(cmd, "r");
    char name[64] = "";
    assert_non_null(fgets(name, sizeof(name), p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static void test_torn_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    static struct rec r[20];
    make_recs(r, 20, 2);
    struct tsdb__wal *w = open_wal(dir, 0);
    write_recs(w, r, 20);
    tsdb__wal_close(w);
    /* Cut the last record in half, as a crash during write(2) would. */
    const char *seg = last_segment(dir, 0);
    struct stat st0;
    assert_int_equal(stat(seg, &st0), 0);
    assert_int_equal(truncate(seg, st0.st_size - (off_t)(r[19].len / 2 + 3)), 0);
    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(s->n, 19);
    for (size_t i = 0; i < 19; i++)
        assert_same(&s->r[i], &r[i]);
    assert_int_equal(st.torn_tail, 1);
    assert_int_equal(st.corrupt_ranges, 0);
    free(s);
    tu_rmrf(dir);
}

/* Flip one byte at `at` bytes into the segment; replay skips one record. */
static void flip_and_check(off_t at, size_t victim)
{
    char *dir = tu_tmpdir("wal");
    static struct rec r[30];
    make_recs(r, 30, 3);
    for (size_t i = 0; i < 30; i++)
        r[i].len = 100; /* fixed sizes so the victim's offset is known */
    struct tsdb__wal *w = open_wal(dir, 0);
    write_recs(w, r, 30);
    tsdb__wal_close(w);
    const char *seg = last_segment(dir, 0);
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(st.corrupt_ranges, 1);
    assert_int_equal(s->n, 29);
    for (size_t i = 0, k = 0; i < 30; i++) {
        if (i == victim)
            continue;
        assert_same(&s->r[k++], &r[i]);
    }
    free(s);
    tu_rmrf(dir);
}

static void test_damage_payload(void **state)
{
    (void)state;
    size_t rl = TSDB_WAL_HEADER + 100;
    flip_and_check((off_t)(8 + 12 * rl + TSDB_WAL_HEADER + 40), 12);
}

static void test_damage_length_field(void **state)
{
    (void)state;
    size_t rl = TSDB_WAL_HEADER + 100;
    flip_and_check((off_t)(8 + 5 * rl + 5), 5); /* inside the length */
}

static void test_not_a_segment(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[256];
    snprintf(path, sizeof(path), "%s/00000003", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a wal segment at all, just text\n", f);
    fclose(f);
    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(s->n, 0);
    assert_int_equal(st.corrupt_ranges, 1);
    free(s);
    /* And writing goes on after it. */
    struct tsdb__wal *w = open_wal(dir, 0);
    assert_int_equal(tsdb__wal_segment(w), 4);
    tsdb__wal_close(w);
    tu_rmrf(dir);
}

/*
 * A full disk: writes fail part-way (RLIMIT_FSIZE stands in for ENOSPC).
 * Nothing half-written stays in the segment, what was not written stays
 * buffered, and once space returns every record lands exactly once.
 */
static void test_disk_full(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    static struct rec r[60];
    make_recs(r, 60, 4);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    struct tsdb__wal *w = open_wal(dir, 0);
    lim = old;
    lim.rlim_cur = 6000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int failed = 0;
    for (size_t i = 0; i < 60; i++) {
        assert_int_equal(tsdb__wal_append(w, r[i].type, r[i].data, r[i].len), 0);
        if (tsdb__wal_flush(w) < 0)
            failed = 1;
    }
    assert_true(failed);
    assert_true(tsdb__wal_pending(w) > 0);
    /* Only whole records are on disk meanwhile. */
    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(st.corrupt_ranges + st.torn_tail, 0);
    size_t on_disk = s->n;
    assert_true(on_disk > 0 && on_disk < 60);
    free(s);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(tsdb__wal_sync(w), 0);
    assert_int_equal(tsdb__wal_pending(w), 0);
    tsdb__wal_close(w);
    s = replay(dir, &st);
    assert_int_equal(s->n, 60);
    for (size_t i = 0; i < 60; i++)
        assert_same(&s->r[i], &r[i]);
    assert_int_equal(st.corrupt_ranges + st.torn_tail, 0);
    free(s);
    tu_rmrf(dir);
}

static void test_limits(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    struct tsdb__wal *w = open_wal(dir, 0);
    assert_int_equal(tsdb__wal_append(w, 1, "", TSDB_WAL_MAX_RECORD + 1), -1);
    assert_int_equal(tsdb__wal_append(w, 1, NULL, 0), 0);
    tsdb__wal_close(w);
    struct tsdb__wal_stats st;
    struct seen *s = replay(dir, &st);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->r[0].len, 0);
    free(s);
    /* An absent directory is an empty log. */
    assert_int_equal(tsdb__wal_replay("/nonexistent/wal", collect_rec, NULL, &st), 0);
    assert_int_equal(st.records, 0);
    tu_rmrf(dir);
}

/* Types and lengths of replayed records, for records too large to keep. */
struct lens {
    uint8_t type[8];
    size_t len[8];
    size_t n;
};

static int collect_len(void *ctx, uint32_t seg, uint8_t type, const uint8_t *p, size_t len)
{
    (void)seg;
    (void)p;
    struct lens *l = ctx;
    assert_true(l->n < ARRAY_SIZE(l->len));
    l->type[l->n] = type;
    l->len[l->n++] = len;
    return 0;
}

/*
 * A record written in place: a cancelled reservation leaves nothing, a
 * committed one only its length; a burst's buffers are given back once
 * later flushes are small (the first batch names every series).
 */
static void test_reserve_and_shrink(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    struct tsdb__wal *w = open_wal(dir, 0);
    assert_null(tsdb__wal_reserve(w, TSDB_WAL_MAX_RECORD + 1));
    uint8_t *p = tsdb__wal_reserve(w, 100);
    assert_non_null(p);
    memset(p, 0xaa, 100);
    tsdb__wal_cancel(w);
    assert_int_equal(tsdb__wal_pending(w), 0);
    p = tsdb__wal_reserve(w, 100);
    memcpy(p, "abc", 3);
    tsdb__wal_commit(w, 7, 3);
    assert_int_equal(tsdb__wal_pending(w), TSDB_WAL_HEADER + 3);

    size_t big = (size_t)4 << 20;
    uint8_t *burst = xcalloc(1, big);
    assert_int_equal(tsdb__wal_append(w, 8, burst, big), 0);
    free(burst);
    assert_int_equal(tsdb__wal_flush(w), 0);
    assert_true(tsdb__wal_bytes(w) >= big);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tsdb__wal_append(w, 9, "small", 5), 0);
        assert_int_equal(tsdb__wal_flush(w), 0);
    }
    assert_true(tsdb__wal_bytes(w) < big / 4);
    tsdb__wal_close(w);

    struct tsdb__wal_stats st;
    struct lens l = {0};
    assert_int_equal(tsdb__wal_replay(dir, collect_len, &l, &st), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(l.type[0], 7);
    assert_int_equal(l.len[0], 3);
    assert_int_equal(l.len[1], big);
    assert_int_equal(l.type[4], 9);
    assert_int_equal(st.corrupt_ranges + st.torn_tail, 0);
    tu_rmrf(dir);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_segments_reopen),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_damage_payload),
        cmocka_unit_test(test_damage_length_field),
        cmocka_unit_test(test_not_a_segment),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_reserve_and_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
