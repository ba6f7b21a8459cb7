/*
 * collect_util_test.c: the parsing helpers every source builds on:
 * /proc/<pid>/stat lines (comm with blanks and ')', truncated and garbled
 * lines), whole-number and double parsing at their limits, and splitting
 * into lines, fields and tokens, per-CPU table headers and row names. Inputs are copied into
 * exactly sized heap buffers so the ASan build catches any read past the terminating NUL.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "collect/collect_internal.h"

/* A heap copy of s, exactly strlen(s) + 1 bytes. */
static char *dup_exact(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

/*
 * Parse line (copied) into *out; comm is copied into comm_out. Returns what
 * collect__parse_pidstat() returns; *why is set on failure.
 */
static int parse_pidstat(const char *line, struct collect_pidstat *out, char *comm_out,
                         size_t comm_cap, const char **why)
{
    char *buf = dup_exact(line);
    *why = NULL;
    int rc = collect__parse_pidstat(buf, out, why);
    if (rc == 0)
        snprintf(comm_out, comm_cap, "%.*s", (int)out->comm_len, out->comm);
    free(buf);
    return rc;
}

/* Assert that line is rejected, with a reason given. */
static void expect_pidstat_error(const char *line)
{
    struct collect_pidstat ps;
    char comm[64];
    const char *why;
    if (parse_pidstat(line, &ps, comm, sizeof(comm), &why) != -1)
        fail_msg("accepted: '%s'", line);
    assert_non_null(why);
    assert_true(why[0] != '\0');
    /* why is optional. */
    char *buf = dup_exact(line);
    assert_int_equal(collect__parse_pidstat(buf, &ps, NULL), -1);
    free(buf);
}

/* A whole line as Linux 6.x prints it (52 fields). */
static const char normal_line[] =
    "30394 (cat) R 30390 30390 26472 0 -1 4194304 102 0 0 0 15 7 0 0 20 0 3 0 429162 3133440 413 "
    "18446744073709551615 93878941429760 93878941449641 140724600182096 0 0 0 0 0 0 0 0 0 17 0 0 "
    "0 0 0 0 93878941465648 93878941467264 93878979969024 140724600183426 140724600183446 "
    "140724600183446 140724600184811 0\n";

static void test_pidstat_normal(void **state)
{
    (void)state;
    struct collect_pidstat ps;
    char comm[64];
    const char *why;
    assert_int_equal(parse_pidstat(normal_line, &ps, comm, sizeof(comm), &why), 0);
    assert_null(why);
    assert_string_equal(comm, "cat");
    assert_int_equal(ps.comm_len, 3);
    assert_int_equal(ps.state, 'R');
    assert_int_equal(ps.flags, 4194304);
    assert_int_equal(ps.minflt, 102);
    assert_int_equal(ps.majflt, 0);
    assert_int_equal(ps.utime, 15);
    assert_int_equal(ps.stime, 7);
    assert_int_equal(ps.num_threads, 3);
    assert_int_equal(ps.starttime, 429162);
    assert_int_equal(ps.vsize, 3133440);
    assert_int_equal(ps.rss_pages, 413);

    /* Exactly 24 fields, no newline, a kernel thread's comm. */
    assert_int_equal(parse_pidstat("2 (kworker/0:1-events) I 0 0 0 0 -1 69238880 0 0 0 0 "
                                   "18446744073709551615 1 0 0 20 0 1 0 12 0 -5",
                                   &ps, comm, sizeof(comm), &why),
                     0);
    assert_string_equal(comm, "kworker/0:1-events");
    assert_int_equal(ps.state, 'I');
    assert_int_equal(ps.utime, UINT64_MAX);
    assert_int_equal(ps.stime, 1);
    assert_int_equal(ps.starttime, 12);
    assert_int_equal(ps.vsize, 0);
    assert_int_equal(ps.rss_pages, 0); /* negative reads as 0 */
}

static void test_pidstat_odd_comm(void **state)
{
    (void)state;
    struct collect_pidstat ps;
    char comm[64];
    const char *why;
    /* comm runs from the first '(' to the last ')'. */
    assert_int_equal(parse_pidstat("42 (my proc) (x) S 1 42 42 0 -1 0 0 0 0 0 100 50 0 0 20 0 2 0 "
                                   "777 8192 99 0 0\n",
                                   &ps, comm, sizeof(comm), &why),
                     0);
    assert_string_equal(comm, "my proc) (x");
    assert_int_equal(ps.comm_len, strlen("my proc) (x"));
    assert_int_equal(ps.state, 'S');
    assert_int_equal(ps.utime, 100);
    assert_int_equal(ps.stime, 50);
    assert_int_equal(ps.num_threads, 2);
    assert_int_equal(ps.starttime, 777);
    assert_int_equal(ps.vsize, 8192);
    assert_int_equal(ps.rss_pages, 99);

    /* Empty comm, and one that is only ") (". */
    assert_int_equal(parse_pidstat("7 () Z 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5", &ps, comm,
                                   sizeof(comm), &why),
                     0);
    assert_string_equal(comm, "");
    assert_int_equal(ps.comm_len, 0);
    assert_int_equal(ps.state, 'Z');
    assert_int_equal(parse_pidstat("8 () () D 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5\n", &ps,
                                   comm, sizeof(comm), &why),
                     0);
    assert_string_equal(comm, ") (");
    assert_int_equal(ps.state, 'D');
    assert_int_equal(ps.rss_pages, 5);
}

static void test_pidstat_truncated(void **state)
{
    (void)state;
    char line[sizeof(normal_line)];
    /* Every prefix that stops before the rss field (24, "413") begins is
     * rejected, from the empty string through cuts inside comm. */
    size_t rss_at = (size_t)(strstr(normal_line, " 413 ") + 1 - normal_line);
    for (size_t n = 0; n <= rss_at; n++) {
        memcpy(line, normal_line, n);
        line[n] = '\0';
        expect_pidstat_error(line);
    }
    /* Cut after stime, as a process exiting mid-read can leave it. */
    expect_pidstat_error("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 12 34");
    /* A newline ends the line: fields after it do not count. */
    expect_pidstat_error("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 12 34\n"
                         "0 0 20 0 1 0 5 6 7 8 9");
}

static void test_pidstat_garbage(void **state)
{
    (void)state;
    expect_pidstat_error("");
    expect_pidstat_error("garbage");
    expect_pidstat_error("\n\n\n");
    expect_pidstat_error(")(");
    expect_pidstat_error("1 x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5");
    expect_pidstat_error("1 (x S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5");
    /* Nothing but blanks after comm; a state of two letters or a digit. */
    expect_pidstat_error("1 (x)                                                  ");
    expect_pidstat_error("1 (x) SS 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5");
    expect_pidstat_error("1 (x) 1 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5");
    /* Bad numbers in each field that is read. */
    static const char *const bad[] = {
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1a 2 0 0 20 0 1 0 3 4 5",    /* utime */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 -2 0 0 20 0 1 0 3 4 5",    /* stime */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 x 0 3 4 5",     /* num_threads */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3.0 4 5",   /* starttime */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 0x4 5",   /* vsize */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5five", /* rss */
        "1 (x) S 0 1 1 0 -1 0 0 0 0 0 18446744073709551616 2 0 0 20 0 1 0 3 4 5",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        expect_pidstat_error(bad[i]);
    /* The same line with good numbers parses: the cases above fail on the
     * field they change and nothing else. */
    struct collect_pidstat ps;
    char comm[8];
    const char *why;
    assert_int_equal(parse_pidstat("1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5", &ps, comm,
                                   sizeof(comm), &why),
                     0);
}

static void test_u64(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(collect__u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(collect__u64("0042", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(collect__u64("18446744073709551615", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    static const char *const bad[] = {
        "",
        "18446744073709551616",
        "99999999999999999999",
        "184467440737095516150",
        "-1",
        "+1",
        " 1",
        "1 ",
        "12x",
        "0x1",
        "1.0",
        "\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (collect__u64(bad[i], &v) != -1)
            fail_msg("u64 accepted '%s'", bad[i]);
}

static void test_i64(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(collect__i64("-42", &v), 0);
    assert_int_equal(v, -42);
    assert_int_equal(collect__i64("-0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(collect__i64("9223372036854775807", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(collect__i64("-9223372036854775807", &v), 0);
    assert_true(v == -INT64_MAX);
    assert_int_equal(collect__i64("-9223372036854775808", &v), 0);
    assert_true(v == INT64_MIN);
    static const char *const bad[] = {
        "",
        "-",
        "--1",
        "+1",
        "1-",
        " -1",
        "-1 ",
        "-1x",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "-18446744073709551616",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (collect__i64(bad[i], &v) != -1)
            fail_msg("i64 accepted '%s'", bad[i]);
}

static void test_f64(void **state)
{
    (void)state;
    double v;
    assert_int_equal(collect__f64("0.25", &v), 0);
    assert_float_equal(v, 0.25, 0);
    assert_int_equal(collect__f64("-3", &v), 0);
    assert_float_equal(v, -3, 0);
    assert_int_equal(collect__f64("1e3", &v), 0);
    assert_float_equal(v, 1000, 0);
    assert_int_equal(collect__f64("18446744073709551615", &v), 0);
    assert_float_equal(v, 18446744073709551615.0, 0);
    static const char *const bad[] = {
        "", "x", "1.5x", "1.5 ", "nan", "NaN", "1e999", "-1e999", "0.5.5", "1,5",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (collect__f64(bad[i], &v) != -1)
            fail_msg("f64 accepted '%s'", bad[i]);
}

static void test_hex(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(collect__hex("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(collect__hex("ff", &v), 0);
    assert_int_equal(v, 255);
    assert_int_equal(collect__hex("DeadBeef", &v), 0);
    assert_int_equal(v, 0xdeadbeef);
    assert_int_equal(collect__hex("ffffffffffffffff", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(collect__hex("0000000000000001", &v), 0);
    assert_int_equal(v, 1);
    static const char *const bad[] = {
        "", "10000000000000000", "00000000000000001", "0x1", "g", "1 ", " 1", "-1", "ff\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (collect__hex(bad[i], &v) != -1)
            fail_msg("hex accepted '%s'", bad[i]);
}

static void test_fields(void **state)
{
    (void)state;
    char *f[4];
    char *s = dup_exact("  a\tbb  c \t");
    assert_int_equal(collect__fields(s, f, 4), 3);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "bb");
    assert_string_equal(f[2], "c");
    free(s);

    /* At most max fields; the rest of the string is left alone. */
    s = dup_exact("one two three four five");
    assert_int_equal(collect__fields(s, f, 2), 2);
    assert_string_equal(f[0], "one");
    assert_string_equal(f[1], "two");
    assert_string_equal(f[1] + 4, "three four five");
    free(s);

    s = dup_exact("");
    assert_int_equal(collect__fields(s, f, 4), 0);
    free(s);
    s = dup_exact(" \t  ");
    assert_int_equal(collect__fields(s, f, 4), 0);
    free(s);
    s = dup_exact("x");
    assert_int_equal(collect__fields(s, f, 4), 1);
    assert_string_equal(f[0], "x");
    free(s);
}

static void test_line(void **state)
{
    (void)state;
    char *buf = dup_exact("a b\n\nlast"), *cur = buf;
    assert_string_equal(collect__line(&cur), "a b");
    assert_string_equal(collect__line(&cur), "");
    assert_string_equal(collect__line(&cur), "last"); /* no trailing newline */
    assert_null(collect__line(&cur));
    assert_null(collect__line(&cur)); /* and stays at the end */
    free(buf);

    buf = dup_exact("x\n");
    cur = buf;
    assert_string_equal(collect__line(&cur), "x");
    assert_null(collect__line(&cur));
    free(buf);

    buf = dup_exact("");
    cur = buf;
    assert_null(collect__line(&cur));
    free(buf);
    cur = NULL;
    assert_null(collect__line(&cur));
}

static void test_token_squeeze(void **state)
{
    (void)state;
    char *buf = dup_exact("  a\tbb   c ");
    char *cur = buf;
    assert_string_equal(collect__token(&cur), "a");
    assert_string_equal(collect__token(&cur), "bb");
    assert_string_equal(collect__token(&cur), "c");
    assert_null(collect__token(&cur));
    assert_null(collect__token(&cur));
    free(buf);
    static const char *const cases[][2] = {
        {"", ""},
        {"   ", ""},
        {"x", "x"},
        {" a  b\t c ", "a b c"},
        {"5-edge      ACPI:Ged", "5-edge ACPI:Ged"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        buf = dup_exact(cases[i][0]);
        assert_string_equal(collect__squeeze(buf), cases[i][1]);
        free(buf);
    }
}

static void test_cpus_and_rows(void **state)
{
    (void)state;
    struct collect_cpus c = {0};
    const char *why = NULL;
    char *buf = dup_exact("           CPU0       CPU2     CPU13   ");
    assert_int_equal(collect__cpus_parse(&c, buf, &why), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.id[0], "0");
    assert_string_equal(c.id[1], "2");
    assert_string_equal(c.id[2], "13");
    free(buf);
    static const char *const bad[] = {"",    "   ",       "CPU0 CPUx",         "CPU0 cpu1",
                                      "CPU", "CPU0 GPU1", "CPU123456789012345"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        buf = dup_exact(bad[i]);
        why = NULL;
        if (collect__cpus_parse(&c, buf, &why) != -1)
            fail_msg("accepted header '%s'", bad[i]);
        assert_non_null(why);
        free(buf);
    }
    collect__cpus_release(&c);

    char *name, *rest;
    buf = dup_exact("  24:   1   0  IO-APIC   5-edge      ACPI:Ged");
    assert_int_equal(collect__row_name(buf, &name, &rest), 0);
    assert_string_equal(name, "24");
    assert_string_equal(rest, "   1   0  IO-APIC   5-edge      ACPI:Ged");
    free(buf);
    buf = dup_exact("IPI0:12 34 Rescheduling interrupts"); /* aarch64: no blank after ':' */
    assert_int_equal(collect__row_name(buf, &name, &rest), 0);
    assert_string_equal(name, "IPI0");
    assert_string_equal(rest, "12 34 Rescheduling interrupts");
    free(buf);
    static const char *const badrows[] = {"no colon here", "   : 1 2", "A B: 1 2", ""};
    for (size_t i = 0; i < ARRAY_SIZE(badrows); i++) {
        buf = dup_exact(badrows[i]);
        if (collect__row_name(buf, &name, &rest) != -1)
            fail_msg("accepted row '%s'", badrows[i]);
        free(buf);
    }
}

/*
 * Below a real procfs root collect__read keeps the file open and re-reads it
 * from offset 0; a kept file that stops reading (here: its descriptor now
 * names a directory) is dropped and the path opened afresh; below any other
 * root nothing is kept.
 */
static void test_read_keeps_proc_files(void **st)
{
    (void)st;
    struct collect_ctx ctx = {.proc_fd = open("/proc", O_RDONLY | O_DIRECTORY), .sys_fd = -1};
    assert_true(ctx.proc_fd >= 0);
    ctx.keep_proc = 1;
    for (int i = 0; i < 3; i++) {
        long n = collect__read(&ctx, ctx.proc_fd, "meminfo");
        assert_true(n > 0);
        assert_non_null(strstr(ctx.buf, "MemTotal:"));
        assert_int_equal(ctx.nkept, 1);
    }
    int kept = ctx.kept[0].fd;
    assert_true(dup2(ctx.proc_fd, kept) == kept); /* reading it now fails: EISDIR */
    long n = collect__read(&ctx, ctx.proc_fd, "meminfo");
    assert_true(n > 0);
    assert_non_null(strstr(ctx.buf, "MemTotal:"));
    assert_int_equal(ctx.nkept, 1);
    assert_true(collect__read(&ctx, ctx.proc_fd, "no/such/file") == -ENOENT);
    assert_int_equal(ctx.nkept, 1);
    collect__forget(&ctx);
    assert_int_equal(ctx.nkept, 0);

    ctx.keep_proc = 0; /* a fixture root: every read opens the file again */
    assert_true(collect__read(&ctx, ctx.proc_fd, "loadavg") > 0);
    assert_int_equal(ctx.nkept, 0);
    close(ctx.proc_fd);
    free(ctx.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidstat_normal),
        cmocka_unit_test(test_pidstat_odd_comm),
        cmocka_unit_test(test_pidstat_truncated),
        cmocka_unit_test(test_pidstat_garbage),
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_f64),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_token_squeeze),
        cmocka_unit_test(test_cpus_and_rows),
        cmocka_unit_test(test_read_keeps_proc_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
