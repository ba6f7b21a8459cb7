/*
 * config_test.c: YAML config loading: every key, defaults, and errors that
 * name file:line:col for each problem.
 */
#include "testutil.h"
#include "config/config.h"

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:9797");
    assert_string_equal(c.data_dir, "./sitrep-data");
    assert_int_equal(c.collect.interval_s, 1);
    assert_int_equal(c.collect.top_processes, 10);
    assert_null(c.http_token);
    config_release(&c);
}

static void test_good(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/good.yml"), &err), 0);
    assert_string_equal(err.buf, "");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.data_dir, "/var/lib/sitrep");
    assert_string_equal(c.listen, "[::1]:9898");
    assert_string_equal(c.http_token, "0123456789abcdef0123");
    assert_int_equal(c.collect.interval_s, 2);
    assert_int_equal(c.collect.top_processes, 5);
    assert_string_equal(c.collect.proc_root, "/host/proc");
    assert_string_equal(c.collect.sys_root, "/host/sys");
    assert_string_equal(c.collect.rootfs, "/host");
    assert_int_equal(c.collect.ndisable, 2);
    assert_string_equal(c.collect.disable[1], "filesystem");
    sbuf_release(&err);
    config_release(&c);
}

static void test_empty_file_is_defaults(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/empty.yml"), &err), 0);
    assert_string_equal(c.listen, "127.0.0.1:9797");
    sbuf_release(&err);
    config_release(&c);
}

/* Every problem in bad.yml is reported, each at its own line and column. */
static void test_bad(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    const char *path = fixture("config/bad.yml");
    char want[4096];
    assert_int_equal(config_load(&c, path, &err), -1);
    static const char *expect[] = {
        "bad.yml:1:12: log_level: want debug, info, warn or error",
        "bad.yml:3:11: http.listen: want ADDR:PORT",
        "bad.yml:4:3: http: unknown key 'tokn'",
        "bad.yml:6:13: collect.interval: want whole seconds",
        "bad.yml:7:18: collect.top_processes: want a whole number",
        "bad.yml:8:24: collect.disable: unknown source 'warp_drive'",
        "bad.yml:9:1: unknown key 'colect'",
        "bad.yml:10:1: top level: duplicate key 'log_level'",
    };
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++) {
        snprintf(want, sizeof(want), "%s", expect[i]);
        if (!strstr(err.buf, want))
            fail_msg("missing error '%s' in:\n%s", want, err.buf);
    }
    /* one line per problem */
    size_t lines = 0;
    for (const char *p = err.buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, ARRAY_SIZE(expect));
    sbuf_release(&err);
    config_release(&c);
}

static void test_syntax_error(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/syntax.yml"), &err), -1);
    assert_non_null(strstr(err.buf, "syntax.yml:3:1: "));
    sbuf_release(&err);
    config_release(&c);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, "/nonexistent/sitrep.yml", &err), -1);
    assert_non_null(strstr(err.buf, "/nonexistent/sitrep.yml: No such file"));
    sbuf_release(&err);
    config_release(&c);
}

static void test_listen_and_durations(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(config_parse_listen("127.0.0.1:9797", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9797);
    assert_int_equal(config_parse_listen("[::1]:80", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(config_parse_listen("::1:80", host, sizeof(host), &port), -1);
    assert_int_equal(config_parse_listen("host:", host, sizeof(host), &port), -1);
    assert_int_equal(config_parse_listen("host:70000", host, sizeof(host), &port), -1);
    assert_int_equal(config_parse_listen(":80", host, sizeof(host), &port), -1);
    long long ms;
    assert_int_equal(config_parse_duration_ms("15s", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(config_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(config_parse_duration_ms("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(config_parse_duration_ms("3", &ms), 0);
    assert_int_equal(ms, 3000);
    assert_int_equal(config_parse_duration_ms("1x", &ms), -1);
    assert_int_equal(config_parse_duration_ms("-1s", &ms), -1);
    assert_int_equal(config_parse_duration_ms("99999999999999999999d", &ms), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_empty_file_is_defaults),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_listen_and_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
