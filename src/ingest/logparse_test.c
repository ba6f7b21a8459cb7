/*
 * logparse_test.c: the access-log line parsers (logparse.c): Common and
 * Combined Log Format with and without a trailing request time, JSON lines
 * with configured and nested fields, PCRE2 patterns, and the number and time
 * helpers; plus hostile input: every truncation of valid lines, NUL bytes,
 * invalid UTF-8, huge numbers, deep nesting and a pathological regex.
 */
#include "testutil.h"
#include "ingest/ingest_internal.h"

#include <math.h>

static struct ingest__parser parser_for(enum ingest_format fmt, enum ingest_unit unit,
                                        const char *pattern)
{
    struct ingest_log l;
    struct ingest__parser p;
    char err[256];
    ingest_log_defaults(&l);
    l.format = fmt;
    l.request_time = unit;
    l.pattern = (char *)pattern;
    assert_int_equal(ingest__parser_init(&p, &l, err, sizeof(err)), 0);
    return p;
}

static int parse(struct ingest__parser *p, const char *line, struct ingest__rec *r)
{
    return ingest__parse(p, line, strlen(line), r);
}

static void assert_str(struct ingest__str s, const char *want)
{
    if (s.n != strlen(want) || memcmp(s.p, want, s.n) != 0)
        fail_msg("want '%s', got '%.*s'", want, (int)s.n, s.p);
}

#define NGINX_LINE                                                                                 \
    "203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] \"GET /users/42?tab=1 HTTP/1.1\" 200 2326 "  \
    "\"http://example.com/start\" \"Mozilla/5.0 (X11; Linux x86_64)\""

static void test_combined(void **state)
{
    (void)state;
    struct ingest__parser p = parser_for(INGEST_FMT_COMBINED, INGEST_UNIT_NONE, NULL);
    struct ingest__rec r;
    assert_int_equal(parse(&p, NGINX_LINE, &r), 0);
    assert_str(r.client, "203.0.113.9");
    assert_str(r.method, "GET");
    assert_str(r.target, "/users/42?tab=1");
    assert_str(r.time, "10/Oct/2000:13:55:36 -0700");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.bytes, 2326);
    assert_true(r.duration_s < 0);
    /* nginx's "main" format appends X-Forwarded-For: allowed after the user agent */
    assert_int_equal(parse(&p, NGINX_LINE " \"198.51.100.1\"", &r), 0);
    ingest__parser_release(&p);
    /* client_from: forwarded_for takes the X-Forwarded-For field when there is one */
    struct ingest_log l;
    char err[256];
    ingest_log_defaults(&l);
    l.client_forwarded = 1;
    assert_int_equal(ingest__parser_init(&p, &l, err, sizeof(err)), 0);
    assert_int_equal(parse(&p, NGINX_LINE " \"198.51.100.1, 10.0.0.1\"", &r), 0);
    assert_str(r.client, "198.51.100.1, 10.0.0.1");
    assert_int_equal(parse(&p, NGINX_LINE " \"-\"", &r), 0);
    assert_str(r.client, "203.0.113.9");
    assert_int_equal(parse(&p, NGINX_LINE, &r), 0);
    assert_str(r.client, "203.0.113.9");
    ingest__parser_release(&p);
    l.request_time = INGEST_UNIT_S;
    assert_int_equal(ingest__parser_init(&p, &l, err, sizeof(err)), 0);
    assert_int_equal(parse(&p, NGINX_LINE " \"198.51.100.1\" 0.250", &r), 0);
    assert_str(r.client, "198.51.100.1");
    assert_float_equal(r.duration_s, 0.25, 1e-12);
    ingest__parser_release(&p);
    p = parser_for(INGEST_FMT_COMBINED, INGEST_UNIT_NONE, NULL);
    /* A user name with a space, and "-" for the size */
    assert_int_equal(parse(&p,
                           "::1 - a b [10/Oct/2000:13:55:36 +0000] \"HEAD / HTTP/1.0\" 304 - "
                           "\"-\" \"curl/7.88\"",
                           &r),
                     0);
    assert_str(r.client, "::1");
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.status, 304);
    /* Apache escapes quotes inside fields as \" */
    assert_int_equal(parse(&p,
                           "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /q\\\"x HTTP/1.1\" 200 "
                           "1 \"-\" \"agent \\\"quoted\\\"\"",
                           &r),
                     0);
    assert_str(r.target, "/q\\\"x");
    /* nginx's line for a connection that sent no request */
    assert_int_equal(
        parse(&p, "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"-\" 400 0 \"-\" \"-\"", &r), 0);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.method.n, 0);
    assert_int_equal(r.target.n, 0);
    /* A common-format line is not combined */
    assert_int_equal(
        parse(&p, "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1", &r), -1);
    ingest__parser_release(&p);
}

static void test_common(void **state)
{
    (void)state;
    struct ingest__parser p = parser_for(INGEST_FMT_COMMON, INGEST_UNIT_NONE, NULL);
    struct ingest__rec r;
    assert_int_equal(
        parse(&p, "10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"POST /login HTTP/1.1\" 302 0", &r),
        0);
    assert_str(r.method, "POST");
    assert_str(r.target, "/login");
    assert_int_equal(r.status, 302);
    /* Combined lines are common lines with more after them */
    assert_int_equal(parse(&p, NGINX_LINE, &r), 0);
    assert_int_equal(r.bytes, 2326);
    ingest__parser_release(&p);
}

static void test_request_time(void **state)
{
    (void)state;
    struct ingest__rec r;
    struct ingest__parser s = parser_for(INGEST_FMT_COMBINED, INGEST_UNIT_S, NULL);
    assert_int_equal(parse(&s, NGINX_LINE " 0.004", &r), 0);
    assert_float_equal(r.duration_s, 0.004, 1e-12);
    assert_int_equal(parse(&s, NGINX_LINE " \"198.51.100.1\" 5.000", &r), 0);
    assert_float_equal(r.duration_s, 5.0, 1e-12);
    assert_int_equal(parse(&s, NGINX_LINE " -", &r), 0); /* "-": no time */
    assert_true(r.duration_s < 0);
    assert_int_equal(parse(&s, NGINX_LINE, &r), -1); /* the time is missing */
    assert_int_equal(parse(&s, NGINX_LINE " abc", &r), -1);
    assert_int_equal(parse(&s, NGINX_LINE " -1", &r), -1);
    assert_int_equal(parse(&s, NGINX_LINE " 1e300", &r), -1);
    assert_int_equal(parse(&s, NGINX_LINE " 99999999999999999999", &r), -1);
    ingest__parser_release(&s);
    struct ingest__parser us = parser_for(INGEST_FMT_COMMON, INGEST_UNIT_US, NULL);
    assert_int_equal(
        parse(&us, "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5 1500000", &r),
        0);
    assert_float_equal(r.duration_s, 1.5, 1e-12);
    ingest__parser_release(&us);
    struct ingest__parser ms = parser_for(INGEST_FMT_COMMON, INGEST_UNIT_MS, NULL);
    assert_int_equal(
        parse(&ms, "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5 250", &r), 0);
    assert_float_equal(r.duration_s, 0.25, 1e-12);
    ingest__parser_release(&ms);
}

static void test_clf_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "-",
        "garbage",
        "1.2.3.4",
        " - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        "1.2.3.4 - - 10/Oct/2000:13:55:36 +0000 \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000 \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] GET / HTTP/1.1 200 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1 200 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 2000 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 099 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 600 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 2x0 1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 12a \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 "
        "99999999999999999999999 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 -1 \"-\" \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"unclosed",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1 \"-\"",
        "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET / HTTP/1.1\" 200",
    };
    struct ingest__parser p = parser_for(INGEST_FMT_COMBINED, INGEST_UNIT_NONE, NULL);
    struct ingest__rec r;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (parse(&p, bad[i], &r) != -1)
            fail_msg("accepted: %s", bad[i]);
    ingest__parser_release(&p);
}

/*
 * Every proper prefix of a combined line is refused (its closing quote is
 * gone) and every parse stays inside the bytes given: run under ASan, with
 * each prefix copied to a buffer of exactly its length.
 */
static void test_truncations(void **state)
{
    (void)state;
    static const char *const lines[] = {
        NGINX_LINE,
        "{\"remote_addr\":\"1.2.3.4\",\"request\":\"GET /a HTTP/1.1\",\"status\":200,"
        "\"body_bytes_sent\":12,\"request_time\":0.5,\"x\":[1,{\"y\":null}]}",
    };
    const enum ingest_format fmts[] = {INGEST_FMT_COMBINED, INGEST_FMT_JSON};
    for (size_t k = 0; k < ARRAY_SIZE(lines); k++) {
        struct ingest__parser p = parser_for(fmts[k], INGEST_UNIT_NONE, NULL);
        struct ingest__rec r;
        size_t n = strlen(lines[k]);
        for (size_t len = 0; len <= n; len++) {
            char *copy = xmalloc(len ? len : 1);
            memcpy(copy, lines[k], len);
            int rc = ingest__parse(&p, copy, len, &r);
            if (len < n && rc != -1)
                fail_msg("prefix of %zu bytes accepted: %.*s", len, (int)len, lines[k]);
            if (len == n)
                assert_int_equal(rc, 0);
            free(copy);
        }
        ingest__parser_release(&p);
    }
}

/* NUL bytes and invalid UTF-8 are data: parsed around, never a string end. */
static void test_nul_and_utf8(void **state)
{
    (void)state;
    static const char line[] = "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\0b HTTP/1.1\" "
                               "200 7 \"\xff\xfe\" \"\xc3\x28 bad\0agent\"";
    struct ingest__parser p = parser_for(INGEST_FMT_COMBINED, INGEST_UNIT_NONE, NULL);
    struct ingest__rec r;
    assert_int_equal(ingest__parse(&p, line, sizeof(line) - 1, &r), 0);
    assert_int_equal(r.target.n, 4);
    assert_memory_equal(r.target.p, "/a\0b", 4);
    assert_int_equal(r.bytes, 7);
    ingest__parser_release(&p);
}

static struct ingest__parser json_parser(const char *const *names, enum ingest_unit unit)
{
    struct ingest_log l;
    struct ingest__parser p;
    char err[256];
    ingest_log_defaults(&l);
    l.format = INGEST_FMT_JSON;
    l.request_time = unit;
    for (int f = 0; names && f < INGEST_NFIELDS; f++)
        l.fields[f] = (char *)names[f];
    assert_int_equal(ingest__parser_init(&p, &l, err, sizeof(err)), 0);
    return p;
}

static void test_json(void **state)
{
    (void)state;
    struct ingest__parser p = json_parser(NULL, INGEST_UNIT_NONE);
    struct ingest__rec r;
    /* nginx escape=json with the default names */
    assert_int_equal(parse(&p,
                           "{\"time\":\"2024-05-01T10:00:00+00:00\",\"remote_addr\":\"10.1.1.1\","
                           "\"request\":\"PUT /v1/items/7 HTTP/2.0\",\"status\":\"201\","
                           "\"body_bytes_sent\":\"15\",\"request_time\":\"0.120\"}",
                           &r),
                     0);
    assert_str(r.client, "10.1.1.1");
    assert_str(r.method, "PUT");
    assert_str(r.target, "/v1/items/7");
    assert_int_equal(r.status, 201);
    assert_int_equal(r.bytes, 15);
    assert_float_equal(r.duration_s, 0.12, 1e-12);
    assert_str(r.time, "2024-05-01T10:00:00+00:00");
    /* numbers, escapes, fields in any order, unknown fields of every kind skipped */
    assert_int_equal(
        parse(&p,
              " { \"status\" : 503 , \"path\":\"\\/a\\u002Fb\\\"c\",\"method\":\"GET\","
              "\"x\":[true,false,null,-1.5e3,{\"k\":[]}],\"y\":{},"
              "\"remote_addr\":\"\\ud83d\\ude00\",\"request_time\":1.5E-3 } ",
              &r),
        0);
    assert_int_equal(r.status, 503);
    assert_str(r.target, "/a/b\"c");
    assert_str(r.client, "\xf0\x9f\x98\x80");
    assert_float_equal(r.duration_s, 0.0015, 1e-12);
    assert_int_equal(r.bytes, 0);
    /* method and path win over request */
    assert_int_equal(
        parse(&p, "{\"status\":200,\"method\":\"POST\",\"request\":\"GET /x HTTP/1.1\"}", &r), 0);
    assert_str(r.method, "POST");
    assert_str(r.target, "/x");
    ingest__parser_release(&p);

    /* Configured and nested names (Caddy's shape), milliseconds */
    const char *names[INGEST_NFIELDS] = {0};
    names[INGEST_FIELD_CLIENT] = "request.remote_ip";
    names[INGEST_FIELD_METHOD] = "request.method";
    names[INGEST_FIELD_PATH] = "request.uri";
    names[INGEST_FIELD_BYTES] = "size";
    names[INGEST_FIELD_DURATION] = "duration";
    p = json_parser(names, INGEST_UNIT_MS);
    assert_int_equal(parse(&p,
                           "{\"request\":{\"remote_ip\":\"192.0.2.7\",\"method\":\"DELETE\","
                           "\"uri\":\"/x/1\",\"headers\":{\"A\":[\"b\"]}},\"status\":204,"
                           "\"size\":0,\"duration\":12.5}",
                           &r),
                     0);
    assert_str(r.client, "192.0.2.7");
    assert_str(r.method, "DELETE");
    assert_str(r.target, "/x/1");
    assert_float_equal(r.duration_s, 0.0125, 1e-12);
    /* a name at the wrong depth is not the field */
    assert_int_equal(parse(&p, "{\"remote_ip\":\"x\",\"status\":200,\"request\":{}}", &r), 0);
    assert_int_equal(r.client.n, 0);
    ingest__parser_release(&p);
}

static void test_json_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "null",
        "{\"status\":200",
        "{\"status\":200}}",
        "{\"status\":200} x",
        "{\"status\":200,}",
        "{'status':200}",
        "{\"status\":\"2000\"}",
        "{\"status\":null}",
        "{\"status\":true}",
        "{\"status\":200.0}",
        "{\"status\":2e2}",
        "{\"status\":200000000000000000000000000000}",
        "{\"status\":200,\"body_bytes_sent\":1e400}",
        "{\"status\":200,\"body_bytes_sent\":-1}",
        "{\"status\":200,\"body_bytes_sent\":123456789012345678901234567890}",
        "{\"status\":200,\"request_time\":1e400}",
        "{\"status\":200,\"request_time\":-0.5}",
        "{\"status\":200,\"request_time\":\"soon\"}",
        "{\"status\":200,\"x\":tru}",
        "{\"status\":200,\"x\":01x}",
        "{\"status\":200,\"x\":\"\\q\"}",
        "{\"status\":200,\"x\":\"\\u12\"}",
        "{\"status\":200,\"x\":\"a\tb\"}",
        "{\"status\":200,\"x\":[1,]}",
        "{\"status\":200,\"x\":-}",
        "{\"status\":200,\"x\":1.}",
        "{\"status\":200 \"x\":1}",
    };
    struct ingest__parser p = json_parser(NULL, INGEST_UNIT_NONE);
    struct ingest__rec r;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (parse(&p, bad[i], &r) != -1)
            fail_msg("accepted: %s", bad[i]);
    /* nesting far past the depth cap fails without deep recursion */
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"status\":200,\"x\":");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    assert_int_equal(ingest__parse(&p, deep, n, &r), -1);
    /* 30 levels are fine */
    n = (size_t)snprintf(deep, sizeof(deep), "{\"status\":200,\"x\":");
    for (int i = 0; i < 30; i++)
        deep[n++] = '[';
    for (int i = 0; i < 30; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    assert_int_equal(ingest__parse(&p, deep, n, &r), 0);
    /* NULs in a string are invalid JSON (control characters) */
    static const char nul[] = "{\"status\":200,\"path\":\"/a\0b\"}";
    assert_int_equal(ingest__parse(&p, nul, sizeof(nul) - 1, &r), -1);
    ingest__parser_release(&p);
}

static void test_pattern(void **state)
{
    (void)state;
    struct ingest__parser p = parser_for(
        INGEST_FMT_PATTERN, INGEST_UNIT_US,
        "^(?<client>\\S+) (?<method>[A-Z]+) (?<path>\\S+) (?<status>\\d{3}) (?<duration>\\d+)$");
    struct ingest__rec r;
    assert_int_equal(parse(&p, "10.0.0.2 GET /a/b 404 2500", &r), 0);
    assert_str(r.client, "10.0.0.2");
    assert_str(r.method, "GET");
    assert_str(r.target, "/a/b");
    assert_int_equal(r.status, 404);
    assert_float_equal(r.duration_s, 0.0025, 1e-12);
    assert_int_equal(parse(&p, "10.0.0.2 GET /a/b 404", &r), -1);
    assert_int_equal(parse(&p, "10.0.0.2 GET /a/b 999 1", &r), -1); /* matches, bad status */
    ingest__parser_release(&p);

    /* request instead of method/path; an optional group left unset */
    p = parser_for(INGEST_FMT_PATTERN, INGEST_UNIT_NONE,
                   "\"(?<request>[^\"]*)\" (?<status>\\d+)(?: (?<bytes>\\d+))?");
    assert_int_equal(parse(&p, "\"GET /x HTTP/1.1\" 200", &r), 0);
    assert_str(r.method, "GET");
    assert_str(r.target, "/x");
    assert_int_equal(r.bytes, 0);
    ingest__parser_release(&p);

    /* Catastrophic backtracking stops at the match limit: the line fails, quickly. */
    p = parser_for(INGEST_FMT_PATTERN, INGEST_UNIT_NONE, "^(a+)+$(?<status>x)?(?<path>y)?");
    char line[64];
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 2] = 'b';
    line[sizeof(line) - 1] = '\0';
    int64_t t0 = util_mono_ns();
    assert_int_equal(parse(&p, line, &r), -1);
    assert_true(util_mono_ns() - t0 < 2000000000LL);
    ingest__parser_release(&p);
}

static void test_check_pattern(void **state)
{
    (void)state;
    char err[256];
    size_t off;
    assert_int_equal(ingest_check_pattern("(?<status>\\d+) (?<path>\\S+)", err, sizeof(err), &off),
                     0);
    assert_int_equal(ingest_check_pattern("(?<status>\\d+) (?<request>.*)", err, sizeof(err), &off),
                     0);
    assert_int_equal(ingest_check_pattern("(?<path>\\S+)", err, sizeof(err), &off), -1);
    assert_non_null(strstr(err, "status"));
    assert_int_equal(ingest_check_pattern("(?<status>\\d+)", err, sizeof(err), &off), -1);
    assert_non_null(strstr(err, "path"));
    assert_int_equal(ingest_check_pattern("(?<status>\\d+", err, sizeof(err), &off), -1);
    assert_int_equal(off, 13);
    assert_non_null(strstr(err, "offset 13"));
    assert_int_equal(ingest_check_regex("a[", err, sizeof(err), &off), -1);
    assert_int_equal(off, 2);
    assert_int_equal(ingest_check_regex("POST /login", err, sizeof(err), &off), 0);
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        double v; /* -1: refused */
    } cases[] = {
        {"0", 0},
        {"12", 12},
        {"0.004", 0.004},
        {"000.5", 0.5},
        {"1.5e-3", 0.0015},
        {"1E2", 100},
        {"2.", 2},
        {".5", 0.5},
        {"123456789012345678901234", -1}, /* above 1e15 */
        {"999999999999999", 999999999999999},
        {"1e15", -1},
        {"1e-400", 0},
        {"", -1},
        {".", -1},
        {"-1", -1},
        {"+1", -1},
        {"1e", -1},
        {"1e+", -1},
        {"1.2.3", -1},
        {"0x10", -1},
        {"1 ", -1},
        {"nan", -1},
        {"inf", -1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        double v = -42;
        int rc = ingest__parse_number(cases[i].s, strlen(cases[i].s), &v);
        if (cases[i].v < 0) {
            if (rc != -1)
                fail_msg("'%s' accepted as %g", cases[i].s, v);
        } else if (rc != 0 || fabs(v - cases[i].v) > 1e-12 * (1 + cases[i].v)) {
            fail_msg("'%s': want %g, got rc %d, %g", cases[i].s, cases[i].v, rc, v);
        }
    }
}

static void test_times(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(ingest__parse_time("10/Oct/2000:13:55:36 -0700", 26, &ms), 0);
    assert_int_equal(ms, 971211336000LL);
    assert_int_equal(ingest__parse_time("10/Oct/2000:20:55:36 +0000", 26, &ms), 0);
    assert_int_equal(ms, 971211336000LL);
    assert_int_equal(ingest__parse_time("2000-10-10T20:55:36Z", 20, &ms), 0);
    assert_int_equal(ms, 971211336000LL);
    assert_int_equal(ingest__parse_time("2000-10-10T22:55:36.250+02:00", 29, &ms), 0);
    assert_int_equal(ms, 971211336250LL);
    assert_int_equal(ingest__parse_time("971211336.5", 11, &ms), 0);
    assert_int_equal(ms, 971211336500LL);
    static const char *const bad[] = {
        "10/Okt/2000:13:55:36 -0700",
        "10/Oct/2000:13:55:36 0700",
        "32/Oct/2000:13:55:36 +0000",
        "10/Oct/2000:25:55:36 +0000",
        "2000-10-10T20:55:36",
        "2000-13-10T20:55:36Z",
        "2000-10-10T20:55:36+0200",
        "yesterday",
        "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (ingest__parse_time(bad[i], strlen(bad[i]), &ms) != -1)
            fail_msg("accepted time '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined),     cmocka_unit_test(test_common),
        cmocka_unit_test(test_request_time), cmocka_unit_test(test_clf_malformed),
        cmocka_unit_test(test_truncations),  cmocka_unit_test(test_nul_and_utf8),
        cmocka_unit_test(test_json),         cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_pattern),      cmocka_unit_test(test_check_pattern),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
