/*
 * tail_test.c: following real files (tail.c, ingest.c): where reading
 * starts, partial lines, rotation by rename (the renamed file still read)
 * and by copytruncate (also when the file grows back past the old position
 * between two polls), a file that disappears and comes back, restarts with
 * saved offsets (also across a rotation or a truncation while stopped),
 * overlong lines, globs and their cap, malformed lines kept for diagnosis,
 * a corrupt offsets file, and the thread with its final flush. Counts are
 * checked exactly: nothing lost, nothing counted twice.
 */
#include "testutil.h"
#include "ingest/ingest_internal.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir("ingest"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(dir);
    return 0;
}

static const char *path_of(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static void append(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* n common-format lines for route /pN (length varies with i, so offsets shift). */
static void append_lines(const char *name, int n, int first)
{
    char line[256];
    for (int i = first; i < first + n; i++) {
        snprintf(line, sizeof(line),
                 "10.0.0.%d - - [10/Oct/2000:13:55:36 +0000] \"GET /p/%d HTTP/1.1\" 200 %d\n",
                 i % 250, i, i);
        append(name, line);
    }
}

struct opts {
    const char *paths[3];
    int from_beginning;
    unsigned max_line, max_files;
};

static struct ingest *make(const struct opts *o)
{
    struct ingest_log l;
    ingest_log_defaults(&l);
    l.service = "web";
    l.format = INGEST_FMT_COMMON;
    char *paths[3];
    for (int i = 0; i < 3 && o->paths[i]; i++)
        paths[l.npaths++] = (char *)path_of(o->paths[i]);
    char *copies[3];
    for (size_t i = 0; i < l.npaths; i++)
        copies[i] = xstrdup(paths[i]);
    l.paths = copies;
    l.from_beginning = o->from_beginning;
    if (o->max_line)
        l.max_line = o->max_line;
    if (o->max_files)
        l.max_files = o->max_files;
    struct ingest_opts io = {
        .logs = &l, .nlogs = 1, .state_dir = path_of("state"), .interval_s = 1};
    struct ingest *ing = ingest_new(&io);
    for (size_t i = 0; i < l.npaths; i++)
        free(copies[i]);
    assert_non_null(ing);
    return ing;
}

static int64_t clock_ms = 1000000000000LL;

/* Poll until nothing more is read, then tick; the batch of that tick. */
static const struct metric_buf *step(struct ingest *ing)
{
    clock_ms += 1000;
    while (ingest_poll(ing, clock_ms) > 0)
        ;
    ingest_tick(ing, clock_ms);
    return ingest_last(ing);
}

static double sum(const struct metric_buf *b, const char *name)
{
    double v = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strcmp(metric_str(b, b->fams[i].name), name) == 0)
            for (uint32_t k = 0; k < b->fams[i].count; k++)
                v += b->samples[b->fams[i].first + k].value;
    return v;
}

static double requests(struct ingest *ing)
{
    return sum(step(ing), "accesslog_requests_total");
}

static double file_value(struct ingest *ing, const char *fam, const char *name, const char *extra)
{
    char l[512];
    snprintf(l, sizeof(l), "service=\"web\",path=\"%s\"%s", path_of(name), extra ? extra : "");
    return tu_value(ingest_last(ing), fam, l);
}

static void test_start_and_partial_lines(void **state)
{
    (void)state;
    append_lines("access.log", 3, 0);
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* lines before the first start are not "now" */
    append_lines("access.log", 2, 3);
    assert_int_equal(requests(ing), 2);
    append("access.log", "10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /half");
    assert_int_equal(requests(ing), 2); /* a half-written line waits */
    append("access.log", " HTTP/1.1\" 200 1\n");
    assert_int_equal(requests(ing), 3);
    assert_int_equal(file_value(ing, "sitrep_ingest_lines_total", "access.log", NULL), 3);
    ingest_free(ing);
}

static void test_from_beginning(void **state)
{
    (void)state;
    append_lines("access.log", 3, 0);
    struct opts o = {.paths = {"access.log"}, .from_beginning = 1};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 3);
    ingest_free(ing);
}

static void test_rename_rotation(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 5, 0);
    assert_int_equal(requests(ing), 5);
    assert_int_equal(rename(path_of("access.log"), path_of("access.log.1")), 0);
    append_lines("access.log.1", 2, 5); /* the writer has not reopened yet */
    assert_int_equal(requests(ing), 7);
    append_lines("access.log", 3, 7);    /* it has */
    append_lines("access.log.1", 1, 10); /* a late line to the old file still counts */
    assert_int_equal(requests(ing), 11);
    assert_int_equal(
        file_value(ing, "sitrep_ingest_rotations_total", "access.log", ",kind=\"rename\""), 1);
    assert_int_equal(tu_value(ingest_last(ing), "sitrep_ingest_files_followed", "service=\"web\""),
                     2);
    clock_ms += 31000; /* idle long enough: the old file is done */
    assert_int_equal(requests(ing), 11);
    assert_int_equal(tu_value(ingest_last(ing), "sitrep_ingest_files_followed", "service=\"web\""),
                     1);
    ingest_free(ing);
}

static void test_copytruncate(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 5, 0);
    assert_int_equal(requests(ing), 5);
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    append_lines("access.log", 2, 100);
    assert_int_equal(requests(ing), 7);
    /* cut and written past the old position before the next poll */
    off_t before;
    struct stat st;
    assert_int_equal(stat(path_of("access.log"), &st), 0);
    before = st.st_size;
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    append_lines("access.log", 8, 10000); /* longer lines: old offsets fall inside them */
    assert_int_equal(stat(path_of("access.log"), &st), 0);
    assert_true(st.st_size > before);
    assert_int_equal(requests(ing), 15);
    /*
     * Cut and rewritten with lines of the same lengths, so that a newline
     * still precedes the old position: the file's first bytes tell.
     */
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    append_lines("access.log", 16, 20000);
    assert_int_equal(requests(ing), 31);
    assert_int_equal(
        file_value(ing, "sitrep_ingest_rotations_total", "access.log", ",kind=\"truncate\""), 3);
    ingest_free(ing);
}

static void test_disappear_and_return(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 2, 0);
    assert_int_equal(requests(ing), 2);
    assert_int_equal(unlink(path_of("access.log")), 0);
    assert_int_equal(requests(ing), 2);
    assert_int_equal(requests(ing), 2);
    append_lines("access.log", 4, 2);
    assert_int_equal(requests(ing), 6);
    ingest_free(ing);
}

static void test_restart(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 5, 0);
    assert_int_equal(requests(ing), 5);
    ingest_free(ing);
    append_lines("access.log", 3, 5); /* while stopped */
    ing = make(&o);
    assert_int_equal(requests(ing), 3); /* exactly the new ones */
    append_lines("access.log", 1, 8);
    append("access.log", "10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x");
    assert_int_equal(requests(ing), 4);
    ingest_free(ing);
    /* stopped: the half line is finished, the file rotated, a new one written */
    append("access.log", " HTTP/1.1\" 200 1\n");
    append_lines("access.log", 2, 9);
    assert_int_equal(rename(path_of("access.log"), path_of("access.log.1")), 0);
    append_lines("access.log", 4, 11);
    ing = make(&o);
    assert_int_equal(requests(ing), 7);
    ingest_free(ing);
    /* a corrupt offsets file is ignored: files start at their end */
    FILE *f = fopen(path_of("state/offsets"), "w");
    fputs("sitrep-ingest-offsets 1\nF\tweb\tnot-a-number\n", f);
    fclose(f);
    append_lines("access.log", 2, 20);
    ing = make(&o);
    assert_int_equal(requests(ing), 0);
    append_lines("access.log", 1, 30);
    assert_int_equal(requests(ing), 1);
    ingest_free(ing);
}

/*
 * copytruncate while sitrep is down: the file keeps its inode but is now
 * shorter than the saved position, so the saved offset must not be trusted.
 */
static void test_truncate_while_stopped(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 5, 0);
    assert_int_equal(requests(ing), 5);
    ingest_free(ing);
    struct stat before, after;
    assert_int_equal(stat(path_of("access.log"), &before), 0);
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    append_lines("access.log", 2, 100);
    assert_int_equal(stat(path_of("access.log"), &after), 0);
    assert_true(after.st_ino == before.st_ino && after.st_size < before.st_size);
    ing = make(&o);
    assert_int_equal(requests(ing), 2); /* the new lines, from byte 0 */
    assert_int_equal(
        file_value(ing, "sitrep_ingest_rotations_total", "access.log", ",kind=\"truncate\""), 1);
    append_lines("access.log", 1, 102);
    assert_int_equal(requests(ing), 3); /* and on from there, nothing read twice */
    ingest_free(ing);
    /* cut to nothing while stopped, written only after the start */
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    ing = make(&o);
    assert_int_equal(requests(ing), 0);
    append_lines("access.log", 4, 200);
    assert_int_equal(requests(ing), 4);
    ingest_free(ing);
    /* cut and written past the saved position while stopped: still read from 0 */
    assert_int_equal(truncate(path_of("access.log"), 0), 0);
    append_lines("access.log", 8, 10000);
    ing = make(&o);
    assert_int_equal(requests(ing), 8);
    ingest_free(ing);
}

static void test_overlong(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}, .max_line = 256};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    char big[1200];
    memset(big, 'x', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    append_lines("access.log", 1, 0);
    append("access.log", big);
    append_lines("access.log", 1, 1);
    assert_int_equal(requests(ing), 2);
    /* one spread over polls, not yet ended */
    append("access.log", big + 1000); /* 198 bytes: not too long, but no request */
    big[sizeof(big) - 2] = 'x';
    append("access.log", big); /* 1198 bytes, no newline yet */
    assert_int_equal(requests(ing), 2);
    append("access.log", "tail of the long line\n");
    append_lines("access.log", 1, 2);
    assert_int_equal(requests(ing), 3);
    assert_int_equal(file_value(ing, "sitrep_ingest_overlong_lines_total", "access.log", NULL), 2);
    assert_int_equal(file_value(ing, "sitrep_ingest_malformed_lines_total", "access.log", NULL), 1);
    assert_int_equal(file_value(ing, "sitrep_ingest_lines_total", "access.log", NULL), 6);
    ingest_free(ing);
}

static void test_globs(void **state)
{
    (void)state;
    append_lines("a.log", 1, 0);
    append_lines("b.log", 1, 0);
    append_lines("c.log", 1, 0);
    struct opts o = {.paths = {"*.log"}, .max_files = 2, .from_beginning = 1};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 2);
    assert_int_equal(tu_value(ingest_last(ing), "sitrep_ingest_files_refused", "service=\"web\""),
                     1);
    ingest_free(ing);

    /* A glob that matches rotated names too reads each file once. */
    struct opts o2 = {.paths = {"x.log*"}};
    ing = make(&o2);
    assert_int_equal(requests(ing), 0);
    append_lines("x.log", 3, 0); /* a file that appears later is read from its start */
    assert_int_equal(requests(ing), 3);
    assert_int_equal(rename(path_of("x.log"), path_of("x.log.1")), 0);
    append_lines("x.log", 2, 3);
    append_lines("x.log.1", 1, 5);
    assert_int_equal(requests(ing), 6);
    clock_ms += 31000; /* x.log.1 is retired, then found by the glob: resumes at its end */
    assert_int_equal(requests(ing), 6);
    assert_int_equal(requests(ing), 6);
    append_lines("x.log.1", 1, 6);
    assert_int_equal(requests(ing), 7);
    ingest_free(ing);
}

static void test_malformed_kept(void **state)
{
    (void)state;
    struct opts o = {.paths = {"access.log"}};
    struct ingest *ing = make(&o);
    assert_int_equal(requests(ing), 0); /* started before the file exists */
    append_lines("access.log", 1, 0);
    for (int i = 0; i < 7; i++)
        append("access.log", "garbage \x01\xff \"line\"\n");
    FILE *f = fopen(path_of("access.log"), "a");
    fwrite("nul\0byte\n", 1, 9, f);
    fclose(f);
    append_lines("access.log", 1, 1);
    assert_int_equal(requests(ing), 2);
    assert_int_equal(file_value(ing, "sitrep_ingest_malformed_lines_total", "access.log", NULL), 8);
    struct sbuf d;
    sbuf_init(&d, 0);
    ingest_diagnose(ing, &d);
    assert_non_null(strstr(d.buf, "\"malformed\":8,"));
    assert_non_null(strstr(d.buf, "\"line\":\"garbage \\\\x01\\\\xff \\\"line\\\"\""));
    size_t n = 0;
    for (const char *p = d.buf; (p = strstr(p, "\"offset\":")); p++)
        n++;
    assert_int_equal(n, INGEST__BAD_KEEP);
    /* after the first, 68-byte line: line 2, and why */
    assert_non_null(strstr(d.buf, "\"offset\":68,\"line_number\":2,\"reason\":\"not a Common "
                                  "Log Format line\""));
    assert_non_null(strstr(d.buf, "\"offset\":140,\"line_number\":6,"));
    sbuf_release(&d);
    ingest_free(ing);
}

struct sink_state {
    pthread_mutex_t mu;
    int batches;
    double last_requests;
    int64_t last_ts;
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct sink_state *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->batches++;
    s->last_requests = sum(b, "accesslog_requests_total");
    s->last_ts = b->ts_ms;
    pthread_mutex_unlock(&s->mu);
}

/* The thread ticks on whole seconds, and its stop emits what was counted since. */
static void test_thread(void **state)
{
    (void)state;
    struct sink_state st = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct ingest_log l;
    ingest_log_defaults(&l);
    l.service = "web";
    l.format = INGEST_FMT_COMMON;
    char *paths[] = {(char *)path_of("access.log")};
    l.paths = paths;
    l.npaths = 1;
    struct ingest_opts io = {.logs = &l,
                             .nlogs = 1,
                             .state_dir = path_of("state"),
                             .interval_s = 1,
                             .sink = sink,
                             .sink_ctx = &st};
    struct ingest *ing = ingest_new(&io);
    assert_int_equal(ingest_start(ing), 0);
    usleep(300000);
    append_lines("access.log", 4, 0);
    usleep(1500000);
    pthread_mutex_lock(&st.mu);
    assert_true(st.batches >= 1);
    assert_int_equal(st.last_requests, 4);
    assert_int_equal(st.last_ts % 1000, 0);
    int before = st.batches;
    pthread_mutex_unlock(&st.mu);
    append_lines("access.log", 2, 4);
    usleep(600000); /* polls every 200 ms; a tick may or may not come */
    ingest_stop(ing);
    assert_true(st.batches > before);
    assert_int_equal(st.last_requests, 6);
    struct sbuf out;
    sbuf_init(&out, 0);
    assert_int_equal(ingest_expose(ing, &out), 0);
    assert_non_null(strstr(out.buf, "# TYPE accesslog_requests_total counter\n"));
    sbuf_release(&out);
    ingest_free(ing);
    /* no logs configured: nothing runs, nothing is exposed */
    struct ingest_opts none = {.interval_s = 1};
    ing = ingest_new(&none);
    assert_int_equal(ingest_start(ing), 0);
    sbuf_init(&out, 0);
    ingest_expose(ing, &out);
    assert_int_equal(out.len, 0);
    sbuf_release(&out);
    ingest_free(ing);
}

static void test_config_helpers(void **state)
{
    (void)state;
    struct ingest_log a, b;
    ingest_log_defaults(&a);
    a.service = "web";
    char *paths[] = {"/var/log/nginx/access.log"};
    a.paths = paths;
    a.npaths = 1;
    struct ingest_counter c = {"login", "POST /login"};
    a.counters = &c;
    a.ncounters = 1;
    ingest_log_copy(&b, &a);
    assert_true(ingest_logs_equal(&a, 1, &b, 1));
    assert_true(b.service != a.service);
    free(b.counters[0].regex);
    b.counters[0].regex = xstrdup("POST /logout");
    assert_false(ingest_logs_equal(&a, 1, &b, 1));
    assert_false(ingest_logs_equal(&a, 1, &b, 0));
    ingest_log_release(&b);
    char err[128];
    assert_int_equal(ingest_check_service("api-v2.prod:eu", err, sizeof(err)), 0);
    assert_int_equal(ingest_check_service("", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_service("a b", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_service("caf\xc3\xa9", err, sizeof(err)), -1);
    enum ingest_unit u;
    assert_int_equal(ingest_unit_parse("microseconds", &u), 0);
    assert_int_equal(u, INGEST_UNIT_US);
    assert_int_equal(ingest_unit_parse("minutes", &u), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_start_and_partial_lines),
        T(test_from_beginning),
        T(test_rename_rotation),
        T(test_copytruncate),
        T(test_disappear_and_return),
        T(test_restart),
        T(test_truncate_while_stopped),
        T(test_overlong),
        T(test_globs),
        T(test_malformed_kept),
        T(test_thread),
        cmocka_unit_test(test_config_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
