/*
 * lifecycle_test.c: the store over time, driven by tsdb_maintain() on
 * synthetic timestamps: windows are cut into raw blocks and 1 min / 1 h
 * tiers, compacted, deleted by retention and the size cap, and every sample
 * is read back exactly once, from whichever mix of head, blocks and tiers
 * holds it, also after a reopen (checkpoint + WAL) and after an unclean
 * stop. Queries with a step read the tier that serves it.
 */
#include "testutil.h"
#include "tsdb/tsdb.h"
#include "util/log.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#define NSERIES 20
#define T0      1700000000000ll /* not window-aligned on purpose */

static double value_at(int s, int64_t t)
{
    return s * 1e6 + (double)(t / 1000 % 100000); /* a counter per series */
}

static void append_range(struct tsdb *db, int64_t from, int64_t to, int64_t step, int maintain)
{
    struct metric_buf b;
    metric_buf_init(&b);
    for (int64_t t = from; t < to; t += step) {
        metric_buf_reset(&b, t);
        metric_fam(&b, "requests_total", "R.", METRIC_COUNTER);
        for (int s = 0; s < NSERIES; s++) {
            char v[8];
            snprintf(v, sizeof(v), "%d", s);
            metric_add1(&b, value_at(s, t), "id", v);
        }
        struct tsdb_append_stats st = {0};
        assert_int_equal(tsdb_append_batch(db, "test", &b, &st), 0);
        assert_int_equal(st.accepted, NSERIES);
        if (maintain && (t - from) % (60 * step) == 0)
            assert_int_equal(tsdb_maintain(db, 0), 0);
    }
    metric_buf_release(&b);
}

struct check {
    int64_t from, to, step; /* the samples expected: [from, to) every step */
    int series;
    size_t samples;
};

/* Read every series over [mint, maxt] raw; each must hold exactly the expected samples. */
static void check_raw(struct tsdb *db, struct check *c, int64_t mint, int64_t maxt)
{
    struct tsdb_matcher ms[] = {{TSDB_EQ, "__name__", "requests_total"}};
    struct tsdb_range r = {.mint = mint, .maxt = maxt};
    struct tsdb_query *q;
    char err[256];
    assert_int_equal(tsdb_query_open(db, ms, 1, &r, &q, err, sizeof(err)), 0);
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    int series = 0, rc;
    char prev[16] = "";
    while ((rc = tsdb_query_next(q, &ls, &nl, &ss, &ns)) > 0) {
        assert_int_equal(nl, 2);
        assert_string_equal(ls[0].name, "__name__");
        assert_true(strcmp(prev, ls[1].value) < 0); /* label order */
        snprintf(prev, sizeof(prev), "%s", ls[1].value);
        int s = atoi(ls[1].value);
        int64_t first = c->from;
        while (first < mint)
            first += c->step;
        int64_t last = c->to - c->step;
        while (last > maxt)
            last -= c->step;
        size_t want = (size_t)((last - first) / c->step + 1);
        if (ns != want)
            fail_msg("series %d: %zu samples, want %zu (first %lld last %lld)", s, ns, want,
                     (long long)(ns ? ss[0].ts : 0), (long long)(ns ? ss[ns - 1].ts : 0));
        for (size_t i = 0; i < ns; i++) {
            int64_t t = first + (int64_t)i * c->step;
            if (ss[i].ts != t || ss[i].v != value_at(s, t))
                fail_msg("series %d sample %zu: (%lld, %g), want (%lld, %g)", s, i,
                         (long long)ss[i].ts, ss[i].v, (long long)t, value_at(s, t));
        }
        series++;
    }
    assert_int_equal(rc, 0);
    tsdb_query_close(q);
    assert_int_equal(series, NSERIES);
}

static int count_dirs(const char *dir, const char *sub, const char *prefix)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/*
 * Per-minute sample counts of series id over [mint, maxt] (a 1 min step reads
 * the 1 min tier where it exists) into out[0..cap); returns how many.
 */
static size_t minute_counts(struct tsdb *db, const char *id, int64_t mint, int64_t maxt,
                            struct tsdb_sample *out, size_t cap)
{
    struct tsdb_matcher m[] = {{TSDB_EQ, "id", id}};
    struct tsdb_range r = {.mint = mint, .maxt = maxt, .step_ms = 60000, .agg = TSDB_AGG_COUNT};
    struct tsdb_query *q;
    char err[256];
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns = 0;
    if (tsdb_query_open(db, m, 1, &r, &q, err, sizeof(err)) < 0)
        fail_msg("query: %s", err);
    assert_int_equal(tsdb_query_next(q, &ls, &nl, &ss, &ns), 1);
    assert_true(ns <= cap);
    memcpy(out, ss, ns * sizeof(*ss));
    tsdb_query_close(q);
    return ns;
}

static struct tsdb *open_span(const char *dir, int64_t span, int64_t retention_raw)
{
    struct tsdb *db;
    char err[256];
    struct tsdb_opts o = {.dir = dir, .block_span_ms = span, .retention_ms = {retention_raw}};
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0)
        fail_msg("open: %s", err);
    return db;
}

/* 7 hours at 10 s: three 2 h windows cut, raw and tiers; all samples once, across reopens. */
static void test_cut_tiers_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-life");
    struct tsdb *db = open_span(dir, 0, 0);
    const int64_t step = 10000, to = T0 + 7 * 3600 * 1000ll;
    append_range(db, T0, to, step, 1);
    assert_int_equal(tsdb_maintain(db, 0), 0);
    /* T0 is 1:13 into a window: windows ending before to - 1 h are cut. */
    assert_int_equal(count_dirs(dir, "raw", "b-"), 3);
    assert_int_equal(count_dirs(dir, "1m", "b-"), 3);
    assert_int_equal(count_dirs(dir, "1h", "b-"), 3);
    struct check c = {T0, to, step, 0, 0};
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    check_raw(db, &c, T0 + 3600 * 1000ll + 5, to - 3600 * 1000ll); /* across block and head */

    /* A step of 1 min reads the 1 min tier where it exists: one "last" per minute. */
    struct tsdb_matcher ms[] = {{TSDB_EQ, "id", "3"}};
    struct tsdb_range r = {.mint = T0, .maxt = to, .step_ms = 60000, .agg = TSDB_AGG_LAST};
    struct tsdb_query *q;
    char err[256];
    assert_int_equal(tsdb_query_open(db, ms, 1, &r, &q, err, sizeof(err)), 0);
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    assert_int_equal(tsdb_query_next(q, &ls, &nl, &ss, &ns), 1);
    size_t minute_points = 0;
    for (size_t i = 0; i < ns; i++) {
        assert_true(ss[i].v == value_at(3, ss[i].ts)); /* last of a bucket is a real sample */
        if (i && ss[i].ts - ss[i - 1].ts == 60000)
            minute_points++;
    }
    /* About 5 cut hours at one point a minute plus the head's raw hours at 10 s. */
    assert_true(minute_points > 250);
    assert_true(ns < (size_t)((to - T0) / step) - 250 * 5);
    assert_int_equal(tsdb_query_next(q, &ls, &nl, &ss, &ns), 0);
    tsdb_query_close(q);

    /* avg over the 1 h tier = mean of the raw samples in each hour bucket. */
    r.step_ms = 3600 * 1000;
    r.agg = TSDB_AGG_COUNT;
    assert_int_equal(tsdb_query_open(db, ms, 1, &r, &q, err, sizeof(err)), 0);
    assert_int_equal(tsdb_query_next(q, &ls, &nl, &ss, &ns), 1);
    assert_true(ns > 3);
    assert_true(ss[1].v == 360); /* a full hour of 10 s samples */
    tsdb_query_close(q);

    /* Clean reopen: checkpoint + blocks. */
    tsdb_close(db);
    assert_int_equal(count_dirs(dir, "", "checkpoint."), 1);
    db = open_span(dir, 0, 0);
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    /* Samples before the cut are refused as too old, after it as out of order. */
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, T0 + 1000);
    metric_fam(&b, "requests_total", "R.", METRIC_COUNTER);
    metric_add1(&b, 1, "id", "1");
    struct tsdb_append_stats st = {0};
    tsdb_append_batch(db, "test", &b, &st);
    assert_int_equal(st.too_old, 1);
    metric_buf_release(&b);

    /* More data, then an unclean stop (no close): the reopen still has it all once. */
    append_range(db, to, to + 3600 * 1000ll, step, 1);
    c.to = to + 3600 * 1000ll;
    struct tsdb *lost = db; /* not closed before the reopen, like a process killed with -9 */
    db = open_span(dir, 0, 0);
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    tsdb_close(db);
    tsdb_close(lost); /* only now, to free it */
    tu_rmrf(dir);
}

/* Small windows: compaction merges, retention and the size cap delete, reads stay exact. */
static void test_compact_and_retention(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-compact");
    const int64_t span = 10000, step = 1000;
    const int64_t t0 = T0 / 120000 * 120000; /* aligned to the 2 min compaction window */
    struct tsdb *db = open_span(dir, span, 3600 * 1000ll);
    append_range(db, t0, t0 + 10 * 60 * 1000, step, 1);
    assert_int_equal(tsdb_maintain(db, 0), 0);
    /* 10 min in 10 s windows: the complete 2 min windows are merged (4 of them). */
    int raw = count_dirs(dir, "raw", "b-");
    assert_true(raw >= 4 && raw <= 4 + 12);
    struct check c = {t0, t0 + 10 * 60 * 1000, step, 0, 0};
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    /*
     * 10 s windows are no multiple of a minute, so the cut made no 1 min
     * tier; each merged 2 min window got one from its raw samples (which
     * the tier's own compaction may have merged in turn).
     */
    assert_true(count_dirs(dir, "1m", "b-") >= 1);
    assert_int_equal(count_dirs(dir, "1h", "b-"), 0);
    struct tsdb_sample ss1[16];
    size_t ns1 = minute_counts(db, "0", t0, t0 + 8 * 60 * 1000 - 1, ss1, 16);
    assert_int_equal(ns1, 8); /* 8 one-minute buckets of the 4 merged windows */
    for (size_t i = 0; i < ns1; i++)
        assert_true(ss1[i].v == 60);
    tsdb_close(db);

    /* Retention 1 min: only the newest blocks stay; the reads start later. */
    db = open_span(dir, span, 60 * 1000);
    append_range(db, t0 + 10 * 60 * 1000, t0 + 12 * 60 * 1000, step, 1);
    assert_int_equal(tsdb_maintain(db, 0), 0);
    struct tsdb_matcher ms[] = {{TSDB_EQ, "id", "0"}};
    struct tsdb_range r = {.mint = INT64_MIN, .maxt = INT64_MAX};
    struct tsdb_query *q;
    char err[256];
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    assert_int_equal(tsdb_query_open(db, ms, 1, &r, &q, err, sizeof(err)), 0);
    assert_int_equal(tsdb_query_next(q, &ls, &nl, &ss, &ns), 1);
    /*
     * Raw samples survive only for the newest minutes; older time is served
     * by the 1 min tier (one point a minute, at each minute's last sample).
     */
    size_t k = 0;
    while (k + 1 < ns && ss[k + 1].ts - ss[k].ts == 60000)
        k++;
    assert_true(k > 0 && ss[0].ts == t0 + 59 * 1000);
    assert_true(ss[k + 1].ts >= t0 + 10 * 60 * 1000 - 120 * 1000);
    for (size_t i = k + 1; i + 1 < ns; i++)
        assert_int_equal(ss[i + 1].ts - ss[i].ts, step);
    assert_true(ss[ns - 1].ts == t0 + 12 * 60 * 1000 - step);
    tsdb_query_close(q);
    tsdb_close(db);
    tu_rmrf(dir);
}

/*
 * 1 min windows: the cut makes the 1 min tier; when raw blocks merge into
 * 12 min windows, those tier blocks already cover them (no second copy, and
 * the tier's own compaction of the same window must not collide with one).
 */
static void test_tiers_cut_then_compacted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-tiers");
    const int64_t span = 60000, t0 = T0 / 720000 * 720000;
    struct tsdb *db = open_span(dir, span, 3600 * 1000ll);
    append_range(db, t0, t0 + 40 * 60 * 1000, 1000, 1); /* asserts every pass succeeds */
    assert_int_equal(tsdb_maintain(db, 0), 0);
    struct tsdb_sample ss[64];
    size_t ns = minute_counts(db, "5", t0, t0 + 36 * 60 * 1000 - 1, ss, 64);
    assert_int_equal(ns, 36);
    for (size_t i = 0; i < ns; i++)
        assert_true(ss[i].v == 60);
    tsdb_close(db);
    tu_rmrf(dir);
}

/* Whether the blocks under dir/sub ("b-MINT-MAXT") overlap; fails if they do. */
static void assert_no_overlap(const char *dir, const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    assert_non_null(d);
    long long lo[64], hi[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64)
        if (sscanf(de->d_name, "b-%lld-%lld", &lo[n], &hi[n]) == 2)
            n++;
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (lo[i] < hi[j] && lo[j] < hi[i])
                fail_msg("%s: b-%lld-%lld overlaps b-%lld-%lld", sub, lo[i], hi[i], lo[j], hi[j]);
}

/*
 * Data in the last minutes of a merge window only (a store started late in
 * the day): the cut made tier blocks for those minutes; when raw merges into
 * the whole window, the tier gets blocks for the rest of the window, never a
 * second copy of the minutes it has (its compaction of the window collided
 * with that copy: "block already present", and maintenance failed).
 */
static void test_tiers_partial_merge_window(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-partial");
    const int64_t span = 60000, L = 12 * span, t0 = T0 / L * L;
    struct tsdb *db = open_span(dir, span, 3600 * 1000ll);
    append_range(db, t0 + 9 * span, t0 + 30 * span, 1000, 1); /* asserts every pass succeeds */
    assert_int_equal(tsdb_maintain(db, 0), 0);
    assert_no_overlap(dir, "raw");
    assert_no_overlap(dir, "1m");
    /* Minutes 9 .. 23 read at a 1 min step, each minute once (from the tier where cut). */
    struct tsdb_sample ss[32];
    size_t ns = minute_counts(db, "5", t0, t0 + 24 * span - 1, ss, 32);
    assert_int_equal(ns, 15); /* minutes 9 .. 23 */
    for (size_t i = 0; i < ns; i++) {
        assert_true(ss[i].ts == t0 + (int64_t)(9 + i) * span + 59000); /* its last sample */
        assert_true(ss[i].v == 60);
    }
    tsdb_close(db);
    tu_rmrf(dir);
}

/* Windows holding only stale markers: their tiers are empty, maintenance still moves on. */
static void test_stale_only_windows(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-stale");
    const int64_t t0 = T0 / 120000 * 120000;
    struct tsdb *db = open_span(dir, 10000, 60 * 1000ll);
    uint64_t bits = 0x7ff0000000000002ull; /* Prometheus's stale marker */
    double stale;
    memcpy(&stale, &bits, 8);
    struct metric_buf b;
    metric_buf_init(&b);
    for (int64_t t = t0; t < t0 + 5 * 60 * 1000; t += 1000) {
        metric_buf_reset(&b, t);
        metric_fam(&b, "gone", "", METRIC_GAUGE);
        metric_add0(&b, stale);
        assert_int_equal(tsdb_append_batch(db, "test", &b, NULL), 0);
        if ((t - t0) % 10000 == 0)
            assert_int_equal(tsdb_maintain(db, 0), 0); /* returns: no endless retry */
    }
    metric_buf_release(&b);
    assert_true(count_dirs(dir, "1m", "b-") >= 1); /* empty, but it covers the window */
    /* Raw retention (1 min) is not held back by tiers that never fill. */
    assert_true(count_dirs(dir, "raw", "b-") <= 12);
    tsdb_close(db);
    tu_rmrf(dir);
}

/* A reader racing the cutter: what it reads has no gap, ever (cut -> list -> drop). */
struct race {
    struct tsdb *db;
    int64_t t0;
    atomic_int done;
    int gaps, reads;
};

static void *race_reader(void *arg)
{
    struct race *r = arg;
    struct tsdb_matcher ms[] = {{TSDB_EQ, "id", "3"}};
    struct tsdb_range range = {.mint = INT64_MIN, .maxt = INT64_MAX};
    char err[256];
    while (!atomic_load(&r->done)) {
        struct tsdb_query *q;
        if (tsdb_query_open(r->db, ms, 1, &range, &q, err, sizeof(err)) < 0)
            break;
        const struct metric_label *ls;
        const struct tsdb_sample *ss;
        size_t nl, ns;
        if (tsdb_query_next(q, &ls, &nl, &ss, &ns) > 0) {
            r->reads++;
            if (ss[0].ts != r->t0 || ss[ns - 1].ts != r->t0 + (int64_t)(ns - 1) * 100)
                r->gaps++;
        }
        tsdb_query_close(q);
    }
    return NULL;
}

static void test_reads_during_cuts(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb-race");
    struct race r = {.db = open_span(dir, 10000, 3600 * 1000ll), .t0 = T0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_reader, &r), 0);
    /* 3 min at 100 ms: 18 windows cut (and some compacted) while reads go on. */
    append_range(r.db, T0, T0 + 180 * 1000, 100, 1);
    atomic_store(&r.done, 1);
    pthread_join(th, NULL);
    assert_true(r.reads > 0);
    if (r.gaps)
        fail_msg("%d of %d reads had a gap", r.gaps, r.reads);
    tsdb_close(r.db);
    tu_rmrf(dir);
}

/* The value of a self-metric without labels from tsdb_expose. */
static double self_metric(struct tsdb *db, const char *name)
{
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, 0);
    tsdb_expose(db, &b);
    double v = tu_value(&b, name, "");
    metric_buf_release(&b);
    return v;
}

#define PID_EVERY_MS 30000 /* a new process id every 30 s */
#define MAX_KEPT     ((NSERIES + 4) * 4 / 3)

/* One tick: NSERIES steady counters and the cpu of the current process id. */
static void churn_tick(struct tsdb *db, struct metric_buf *b, int64_t t)
{
    metric_buf_reset(b, t);
    metric_fam(b, "requests_total", "R.", METRIC_COUNTER);
    for (int s = 0; s < NSERIES; s++) {
        char v[8];
        snprintf(v, sizeof(v), "%d", s);
        metric_add1(b, value_at(s, t), "id", v);
    }
    char pid[24];
    snprintf(pid, sizeof(pid), "%lld", (long long)(t / PID_EVERY_MS));
    metric_fam(b, "process_cpu", "P.", METRIC_GAUGE);
    metric_add1(b, (double)(t % 1000003), "pid", pid);
    struct tsdb_append_stats st = {0};
    assert_int_equal(tsdb_append_batch(db, "test", b, &st), 0);
    assert_int_equal(st.accepted, NSERIES + 1);
}

/* Every process series over all time, each with all its samples at step. */
static void check_pids(struct tsdb *db, int64_t from, int64_t to, int64_t step)
{
    struct tsdb_matcher ms[] = {{TSDB_EQ, "__name__", "process_cpu"}};
    struct tsdb_range r = {.mint = INT64_MIN, .maxt = INT64_MAX};
    struct tsdb_query *q;
    char err[256];
    assert_int_equal(tsdb_query_open(db, ms, 1, &r, &q, err, sizeof(err)), 0);
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns, total = 0;
    int series = 0, rc;
    while ((rc = tsdb_query_next(q, &ls, &nl, &ss, &ns)) > 0) {
        int64_t pid = atoll(ls[1].value);
        for (size_t i = 0; i < ns; i++)
            if (ss[i].ts / PID_EVERY_MS != pid || ss[i].v != (double)(ss[i].ts % 1000003))
                fail_msg("pid %lld: sample (%lld, %g) is not its own", (long long)pid,
                         (long long)ss[i].ts, ss[i].v);
        total += ns;
        series++;
    }
    assert_int_equal(rc, 0);
    tsdb_query_close(q);
    assert_int_equal(total, (size_t)((to - from) / step));
    int64_t first = from / PID_EVERY_MS, last = (to - step) / PID_EVERY_MS;
    assert_int_equal(series, (int)(last - first + 1));
}

/*
 * Series that stop (a process id of a top-N family) are forgotten once
 * their samples are all in blocks, so the index stays near the live set;
 * their data stays readable from the blocks, the live series go on, and
 * both a reopen and an unclean stop right after the forgetting read every
 * sample once (the WAL re-declares the renumbered series).
 */
static void test_series_forgotten(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    const int64_t span = 60000, step = 5000, from = T0, to = T0 + 20 * 60000;
    struct tsdb *db = open_span(dir, span, 0);
    struct metric_buf b;
    metric_buf_init(&b);
    for (int64_t t = from; t < to; t += step) {
        churn_tick(db, &b, t);
        assert_int_equal(tsdb_maintain(db, 0), 0);
    }
    /*
     * 41 process ids came and went. The head holds a window and a half at
     * most (4 ids), and the store forgets once a quarter of its series are
     * dead: at most 4/3 of the live ones remain (60 without forgetting).
     */
    int64_t pids = (to - step) / PID_EVERY_MS - from / PID_EVERY_MS + 1;
    uint32_t n = tsdb_series_count(db);
    double forgotten = self_metric(db, "sitrep_tsdb_series_forgotten_total");
    assert_true(n <= MAX_KEPT);
    assert_int_equal((int64_t)n + (int64_t)forgotten, NSERIES + pids);
    struct check c = {.from = from, .to = to, .step = step, .series = NSERIES};
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    check_pids(db, from, to, step);

    /* An unclean stop after more ticks and another forgetting. */
    int64_t to2 = to + 5 * 60000;
    for (int64_t t = to; t < to2; t += step) {
        churn_tick(db, &b, t);
        assert_int_equal(tsdb_maintain(db, 0), 0);
    }
    assert_true(self_metric(db, "sitrep_tsdb_series_forgotten_total") > forgotten);
    struct tsdb *lost = db; /* not closed: as after kill -9 */
    db = open_span(dir, span, 0);
    c.to = to2;
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    check_pids(db, from, to2, step);
    assert_true(tsdb_series_count(db) <= MAX_KEPT);
    /* And a clean reopen after more ticks on the new instance. */
    int64_t to3 = to2 + 3 * 60000;
    for (int64_t t = to2; t < to3; t += step) {
        churn_tick(db, &b, t);
        assert_int_equal(tsdb_maintain(db, 0), 0);
    }
    tsdb_close(db);
    db = open_span(dir, span, 0);
    c.to = to3;
    check_raw(db, &c, INT64_MIN, INT64_MAX);
    check_pids(db, from, to3, step);
    tsdb_close(db);
    tsdb_close(lost);
    metric_buf_release(&b);
    tu_rmrf(dir);
}

/*
 * What forgetting is for: a series cap that only the live series should
 * fill. 20 steady series and a new process id every 30 s under a cap of 40:
 * without forgetting, the 21st process would be refused (churn_tick checks
 * that every sample of every tick is accepted); with it, 41 come and go.
 */
static void test_series_cap_with_churn(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("tsdb");
    struct tsdb *db;
    char err[256];
    struct tsdb_opts o = {.dir = dir, .block_span_ms = 60000, .max_series = 40};
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0)
        fail_msg("open: %s", err);
    struct metric_buf b;
    metric_buf_init(&b);
    const int64_t from = T0, to = T0 + 20 * 60000, step = 5000;
    for (int64_t t = from; t < to; t += step) {
        churn_tick(db, &b, t);
        assert_int_equal(tsdb_maintain(db, 0), 0);
        assert_true(tsdb_series_count(db) <= 40);
    }
    check_pids(db, from, to, step);
    tsdb_close(db);
    metric_buf_release(&b);
    tu_rmrf(dir);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_tiers_reopen),
        cmocka_unit_test(test_compact_and_retention),
        cmocka_unit_test(test_reads_during_cuts),
        cmocka_unit_test(test_tiers_cut_then_compacted),
        cmocka_unit_test(test_stale_only_windows),
        cmocka_unit_test(test_tiers_partial_merge_window),
        cmocka_unit_test(test_series_forgotten),
        cmocka_unit_test(test_series_cap_with_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
