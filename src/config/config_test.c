/*
 * config_test.c: YAML config loading: every key, defaults, and errors that
 * name file:line:col for each problem.
 */
#include "testutil.h"
#include "config/config.h"

#include <limits.h>

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:9797");
    assert_string_equal(c.data_dir, "./sitrep-data");
    assert_int_equal(c.collect.interval_s, 1);
    assert_int_equal(c.collect.top_processes, 10);
    assert_null(c.collect.vmstat_fields); /* every field */
    assert_null(c.collect.netstat_fields);
    assert_null(c.http_token);
    assert_int_equal(c.storage.retention_raw_ms, 14 * 86400000LL);
    assert_int_equal(c.storage.retention_1m_ms, 90 * 86400000LL);
    assert_int_equal(c.storage.retention_1h_ms, 730 * 86400000LL);
    assert_int_equal(c.storage.max_bytes, 2LL << 30);
    assert_int_equal(c.storage.min_free_bytes, 1LL << 30);
    assert_int_equal(c.storage.min_free_percent, 5);
    assert_int_equal(c.storage.max_series, 200000);
    assert_int_equal(c.storage.max_labels, 32);
    assert_int_equal(c.storage.sync_interval_ms, 1000);
    assert_int_equal(c.storage.block_span_ms, 7200000);
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
    assert_string_equal(c.collect.vmstat_fields, "(oom_kill|pgpg|pswp|pg.*fault).*");
    assert_string_equal(c.collect.netstat_fields, "TcpExt_.*|Tcp_.*");
    assert_int_equal(c.storage.retention_raw_ms, 7200000);
    assert_int_equal(c.storage.retention_1m_ms, 30 * 86400000LL);
    assert_int_equal(c.storage.retention_1h_ms, 3650 * 86400000LL);
    assert_int_equal(c.storage.max_bytes, 3LL << 29);
    assert_int_equal(c.storage.min_free_bytes, 500000000);
    assert_int_equal(c.storage.min_free_percent, 10);
    assert_int_equal(c.storage.max_series, 50000);
    assert_int_equal(c.storage.max_labels, 16);
    assert_int_equal(c.storage.sync_interval_ms, 250);
    assert_int_equal(c.storage.block_span_ms, 600000);
    sbuf_release(&err);
    config_release(&c);
}

/* Both ends of every storage range are accepted. */
static void test_storage_range_ends(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    sbuf_init(&err, 0);
    config_defaults(&c);
    assert_int_equal(config_load(&c, fixture("config/storage-min.yml"), &err), 0);
    assert_string_equal(err.buf, "");
    assert_int_equal(c.storage.retention_raw_ms, 3600000);
    assert_int_equal(c.storage.retention_1m_ms, 86400000);
    assert_int_equal(c.storage.retention_1h_ms, 86400000);
    assert_int_equal(c.storage.max_bytes, 64LL << 20);
    assert_int_equal(c.storage.min_free_bytes, 0);
    assert_int_equal(c.storage.min_free_percent, 0);
    assert_int_equal(c.storage.max_series, 1000);
    assert_int_equal(c.storage.max_labels, 2);
    assert_int_equal(c.storage.sync_interval_ms, 100);
    assert_int_equal(c.storage.block_span_ms, 10000);
    config_release(&c);

    config_defaults(&c);
    assert_int_equal(config_load(&c, fixture("config/storage-max.yml"), &err), 0);
    assert_string_equal(err.buf, "");
    assert_int_equal(c.storage.retention_raw_ms, 36500 * 86400000LL);
    assert_int_equal(c.storage.retention_1m_ms, 36500 * 86400000LL);
    assert_int_equal(c.storage.retention_1h_ms, 36500 * 86400000LL);
    assert_int_equal(c.storage.max_bytes, 8388607LL << 40);
    assert_int_equal(c.storage.min_free_bytes, LLONG_MAX);
    assert_int_equal(c.storage.min_free_percent, 50);
    assert_int_equal(c.storage.max_series, 10000000);
    assert_int_equal(c.storage.max_labels, 64);
    assert_int_equal(c.storage.sync_interval_ms, 60000);
    assert_int_equal(c.storage.block_span_ms, 7200000);
    config_release(&c);
    sbuf_release(&err);
}

/*
 * Load a fixture that must fail and check that each of expect[] (file name
 * onwards) is a whole line of the errors, and that nothing else is. The
 * storage keys keep their defaults when their values are rejected.
 */
static void expect_errors(const char *rel, const char *const *expect, size_t n)
{
    struct config c;
    struct sbuf err;
    char want[1024];
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture(rel), &err), -1);
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "/%s\n", expect[i]);
        if (!strstr(err.buf, want))
            fail_msg("missing error '%s' in:\n%s", expect[i], err.buf);
    }
    size_t lines = 0;
    for (const char *p = err.buf; *p; p++)
        lines += *p == '\n';
    if (lines != n)
        fail_msg("want %zu errors, got %zu:\n%s", n, lines, err.buf);
    struct config d;
    config_defaults(&d);
    assert_memory_equal(&c.storage, &d.storage, sizeof(d.storage));
    config_release(&d);
    sbuf_release(&err);
    config_release(&c);
}

#define UNITS "units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

static void test_storage_below_range(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "storage-low.yml:3:10: storage.retention.raw: want a duration from 1h to 36500d (e.g. 14d)",
        "storage-low.yml:4:9: storage.retention.1m: want a duration from 1d to 36500d (e.g. 90d)",
        "storage-low.yml:5:9: storage.retention.1h: want a duration from 1d to 36500d (e.g. 730d)",
        "storage-low.yml:6:13: storage.max_size: want a size of at least 64MiB (e.g. 2GiB); " UNITS,
        "storage-low.yml:7:13: storage.min_free: want a size of 0 (off) or more (e.g. "
        "1GiB); " UNITS,
        "storage-low.yml:8:21: storage.min_free_percent: want a whole number from 0 to 50",
        "storage-low.yml:9:15: storage.max_series: want a whole number from 1000 to 10000000",
        "storage-low.yml:10:15: storage.max_labels: want a whole number from 2 to 64",
        "storage-low.yml:11:18: storage.sync_interval: want a duration from 100ms to 60s (e.g. 1s)",
        "storage-low.yml:12:15: storage.block_span: want a duration from 10s to 2h (e.g. 2h)",
    };
    expect_errors("config/storage-low.yml", expect, ARRAY_SIZE(expect));
}

static void test_storage_above_range(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "storage-high.yml:3:10: storage.retention.raw: want a duration from 1h to 36500d (e.g. "
        "14d)",
        "storage-high.yml:4:9: storage.retention.1m: want a duration from 1d to 36500d (e.g. 90d)",
        "storage-high.yml:5:9: storage.retention.1h: want a duration from 1d to 36500d (e.g. 730d)",
        "storage-high.yml:6:13: storage.max_size: want a size of at least 64MiB (e.g. "
        "2GiB); " UNITS,
        "storage-high.yml:7:13: storage.min_free: want a size of 0 (off) or more (e.g. "
        "1GiB); " UNITS,
        "storage-high.yml:8:21: storage.min_free_percent: want a whole number from 0 to 50",
        "storage-high.yml:9:15: storage.max_series: want a whole number from 1000 to 10000000",
        "storage-high.yml:10:15: storage.max_labels: want a whole number from 2 to 64",
        "storage-high.yml:11:18: storage.sync_interval: want a duration from 100ms to 60s (e.g. "
        "1s)",
        "storage-high.yml:12:15: storage.block_span: want a duration from 10s to 2h (e.g. 2h)",
    };
    expect_errors("config/storage-high.yml", expect, ARRAY_SIZE(expect));
}

/* Values of the wrong kind, and a block span in range that does not divide 2h. */
static void test_storage_wrong_types(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "storage-types.yml:2:14: storage.retention: want a mapping of keys",
        "storage-types.yml:3:13: storage.max_size: want a size of at least 64MiB (e.g. "
        "2GiB); " UNITS,
        "storage-types.yml:4:13: storage.min_free: want a size of 0 (off) or more (e.g. "
        "1GiB); " UNITS,
        "storage-types.yml:5:21: storage.min_free_percent: want a whole number from 0 to 50",
        "storage-types.yml:6:15: storage.max_series: want a whole number from 1000 to 10000000",
        "storage-types.yml:7:15: storage.max_labels: want a whole number from 2 to 64",
        "storage-types.yml:8:18: storage.sync_interval: want a duration from 100ms to 60s (e.g. "
        "1s)",
        "storage-types.yml:9:15: storage.block_span: must divide 2h evenly (e.g. 2h, 1h, 30m, 1m, "
        "10s)",
    };
    expect_errors("config/storage-types.yml", expect, ARRAY_SIZE(expect));
}

static void test_storage_unknown_keys(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "storage-unknown.yml:4:5: storage.retention: unknown key '5m' (known: raw, 1m, 1h)",
        "storage-unknown.yml:5:3: storage: unknown key 'max_sise' (known: retention, max_size, "
        "min_free, min_free_percent, max_series, max_labels, sync_interval, block_span)",
        "storage-unknown.yml:6:15: storage.block_span: must divide 2h evenly (e.g. 2h, 1h, 30m, "
        "1m, "
        "10s)",
    };
    expect_errors("config/storage-unknown.yml", expect, ARRAY_SIZE(expect));
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        long long bytes; /* -1: rejected */
    } cases[] = {
        {"0", 0},
        {"1", 1},
        {"1024", 1024},
        {"007", 7},
        {"0B", 0},
        {"512B", 512},
        {"1KB", 1000},
        {"1MB", 1000000},
        {"1GB", 1000000000},
        {"2TB", 2000000000000LL},
        {"1KiB", 1024},
        {"64MiB", 64LL << 20},
        {"2GiB", 2LL << 30},
        {"1TiB", 1LL << 40},
        {"1.5GiB", 3LL << 29},
        {"0.5KiB", 512},
        {"1.5KB", 1500},
        {"2.25MiB", 2359296},
        {"1.1KiB", 1126},         /* 1126.4 rounds down */
        {"0.000000001TB", 1000},  /* 9 places */
        {"0.999999999KiB", 1023}, /* 1023.99999... rounds down */
        {"0.000000001KiB", 0},
        {"9223372036854775807", LLONG_MAX},
        {"9223372036854775807B", LLONG_MAX},
        {"8388607TiB", 8388607LL << 40},
        {"8388607.999999999TiB", 9223372036854774708LL},
        {"9223372036854775808", -1}, /* LLONG_MAX + 1 */
        {"8388608TiB", -1},          /* 2^63 */
        {"9223372036854775KB", 9223372036854775000LL},
        {"9223372036854776KB", -1},
        {"99999999999999999999999", -1},
        {"", -1},
        {"B", -1},
        {"GiB", -1},
        {"-1", -1},
        {"-1GiB", -1},
        {"+1GiB", -1},
        {" 1GiB", -1},
        {"1 GiB", -1},
        {"1GiB ", -1},
        {"1GiBs", -1},
        {"1gib", -1},
        {"1GIB", -1},
        {"1kB", -1},
        {"1Kb", -1},
        {"1K", -1},
        {"1k", -1},
        {"1G", -1},
        {"1g", -1},
        {"1EiB", -1},
        {"1PB", -1},
        {"1iB", -1},
        {"1.5", -1}, /* a fraction of a byte */
        {"1.5B", -1},
        {"1.0B", -1},
        {"1.", -1},
        {"1.GiB", -1},
        {".5GiB", -1},
        {"1..5GiB", -1},
        {"1.5.5GiB", -1},
        {"0.0000000001TiB", -1}, /* 10 places */
        {"1e9", -1},
        {"0x10", -1},
        {"1,000", -1},
        {"1_000", -1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        long long bytes = -42;
        int rc = config_parse_size(cases[i].s, &bytes);
        if (cases[i].bytes < 0) {
            if (rc != -1)
                fail_msg("'%s': want rejected, got %lld", cases[i].s, bytes);
            if (bytes != -42)
                fail_msg("'%s': rejected but wrote %lld", cases[i].s, bytes);
        } else if (rc != 0 || bytes != cases[i].bytes) {
            fail_msg("'%s': want %lld, got rc %d, %lld", cases[i].s, cases[i].bytes, rc, bytes);
        }
    }
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

/* Field regexes are compiled at load: a bad one is an error at its place, with the offset. */
static void test_collect_fields_bad(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/collect-fields-bad.yml"), &err), -1);
    assert_non_null(strstr(err.buf, "collect-fields-bad.yml:3:18: collect.vmstat_fields: bad regex "
                                    "at offset 8: missing closing parenthesis\n"));
    assert_non_null(strstr(err.buf, "collect-fields-bad.yml:4:19: collect.netstat_fields: bad "
                                    "regex at offset 11: missing closing parenthesis\n"));
    size_t lines = 0;
    for (const char *p = err.buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2);
    sbuf_release(&err);
    config_release(&c);
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/collect-fields-list.yml"), &err), -1);
    assert_non_null(
        strstr(err.buf, "collect-fields-list.yml:2:18: collect.vmstat_fields: want a string\n"));
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
    assert_int_equal(config_parse_duration_ms("100ms", &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(config_parse_duration_ms("60s", &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(config_parse_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(config_parse_duration_ms("14d", &ms), 0);
    assert_int_equal(ms, 14 * 86400000LL);
    assert_int_equal(config_parse_duration_ms("90d", &ms), 0);
    assert_int_equal(ms, 90 * 86400000LL);
    assert_int_equal(config_parse_duration_ms("730d", &ms), 0);
    assert_int_equal(ms, 730 * 86400000LL);
    assert_int_equal(config_parse_duration_ms("36500d", &ms), 0);
    assert_int_equal(ms, 36500 * 86400000LL);
    assert_int_equal(config_parse_duration_ms("1x", &ms), -1);
    assert_int_equal(config_parse_duration_ms("", &ms), -1);
    assert_int_equal(config_parse_duration_ms("d", &ms), -1);
    assert_int_equal(config_parse_duration_ms("1.5s", &ms), -1);
    assert_int_equal(config_parse_duration_ms("14 d", &ms), -1);
    assert_int_equal(config_parse_duration_ms("14D", &ms), -1);
    assert_int_equal(config_parse_duration_ms("+1s", &ms), -1);
    assert_int_equal(config_parse_duration_ms("-1s", &ms), -1);
    assert_int_equal(config_parse_duration_ms("99999999999999999999d", &ms), -1);
}

static void test_logs_default_none(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_int_equal(c.nlogs, 0);
    assert_null(c.logs);
    config_release(&c);
}

static void test_logs_good(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(config_load(&c, fixture("config/logs-good.yml"), &err), 0);
    assert_string_equal(err.buf, "");
    assert_int_equal(c.nlogs, 3);
    const struct ingest_log *w = &c.logs[0], *a = &c.logs[1], *g = &c.logs[2];
    assert_string_equal(w->service, "web");
    assert_int_equal(w->npaths, 1);
    assert_string_equal(w->paths[0], "/var/log/nginx/access.log");
    assert_int_equal(w->format, INGEST_FMT_COMBINED);
    assert_int_equal(w->request_time, INGEST_UNIT_NONE);
    assert_int_equal(w->max_routes, 200);
    assert_int_equal(w->max_files, 64);
    assert_int_equal(w->max_line, 16384);
    assert_int_equal(w->retry_window_ms, 10000);
    assert_int_equal(w->from_beginning, 0);
    assert_int_equal(w->client_forwarded, 1);
    assert_int_equal(w->nroutes + w->ncounters, 0);
    assert_string_equal(a->service, "api");
    assert_int_equal(a->npaths, 2);
    assert_string_equal(a->paths[1], "/srv/api/access.log");
    assert_int_equal(a->format, INGEST_FMT_JSON);
    assert_int_equal(a->request_time, INGEST_UNIT_MS);
    assert_string_equal(a->fields[INGEST_FIELD_CLIENT], "http_x_forwarded_for");
    assert_string_equal(a->fields[INGEST_FIELD_PATH], "request.uri");
    assert_string_equal(a->fields[INGEST_FIELD_DURATION], "took");
    assert_null(a->fields[INGEST_FIELD_STATUS]);
    assert_int_equal(a->nroutes, 2);
    assert_string_equal(a->routes[1], "/static/**");
    assert_int_equal(a->ncounters, 2);
    assert_string_equal(a->counters[0].name, "login");
    assert_string_equal(a->counters[0].regex, "POST /login");
    assert_string_equal(a->counters[1].regex, "(?i)bot");
    assert_int_equal(a->max_routes, 50);
    assert_int_equal(a->max_files, 8);
    assert_int_equal(a->max_line, 65536);
    assert_int_equal(a->retry_window_ms, 30000);
    assert_int_equal(a->from_beginning, 1);
    assert_int_equal(a->client_forwarded, 0);
    assert_string_equal(g->service, "legacy");
    assert_int_equal(g->format, INGEST_FMT_PATTERN);
    assert_int_equal(g->request_time, INGEST_UNIT_US);
    assert_string_equal(g->pattern, "^(?<client>\\S+) (?<status>\\d{3}) \"(?<request>[^\"]*)\"$");
    sbuf_release(&err);
    config_release(&c);
}

/* Every problem of every entry, each at its own line and column, and nothing else. */
static void test_logs_bad(void **state)
{
    (void)state;
    static const char *const expect[] = {
        "logs-bad.yml:2:14: logs[0].service: want 1 to 64 of A-Z a-z 0-9 _ . : -",
        "logs-bad.yml:3:11: logs[0].path: want at least one file path or glob",
        "logs-bad.yml:4:13: logs[0].format: want common, combined, json or pattern",
        "logs-bad.yml:5:19: logs[0].request_time: want none, seconds, milliseconds or "
        "microseconds (s, ms, us)",
        "logs-bad.yml:7:14: logs[0].routes: 'users': a route pattern starts with '/'",
        "logs-bad.yml:7:21: logs[0].routes: '/a/**/b': '**' may only be the last segment of a "
        "route pattern",
        "logs-bad.yml:8:23: logs[0].counters.login: bad regex at offset 12: missing closing "
        "parenthesis",
        "logs-bad.yml:8:39: logs[0].counters: counter name: want 1 to 64 of A-Z a-z 0-9 _ . : -",
        "logs-bad.yml:9:17: logs[0].max_routes: want a whole number from 1 to 100000",
        "logs-bad.yml:10:16: logs[0].max_files: want a whole number from 1 to 100000",
        "logs-bad.yml:11:15: logs[0].max_line: want a size from 256B to 1MiB (e.g. 16KiB)",
        "logs-bad.yml:12:19: logs[0].retry_window: want a duration from 1s to 1h (e.g. 10s)",
        "logs-bad.yml:13:15: logs[0].start_at: want end or beginning",
        "logs-bad.yml:14:5: logs[0]: unknown key 'colour' (known: service, path, format, "
        "request_time, fields, pattern, routes, counters, max_routes, max_files, max_line, "
        "retry_window, client_from, start_at)",
        "logs-bad.yml:6:5: logs[0]: fields: only with format: json",
        "logs-bad.yml:15:5: logs[1]: service: missing (the name its series are labelled with)",
        "logs-bad.yml:15:5: logs[1]: format pattern needs a pattern (a PCRE2 regex with named "
        "groups)",
        "logs-bad.yml:19:14: logs[2].pattern: bad regex at offset 13: missing closing parenthesis",
        "logs-bad.yml:17:5: logs[2]: pattern: only with format: pattern",
        "logs-bad.yml:23:14: logs[3].pattern: pattern needs a named group (?<status>...)",
        "logs-bad.yml:20:5: logs[3]: service 'web2' is already the service of logs[2]",
        "logs-bad.yml:24:5: logs[4]: want a mapping with service, path and format",
        "logs-bad.yml:28:5: logs[5]: client_from: only with format: combined (json: "
        "fields.client; pattern: a client group)",
        "logs-bad.yml:31:18: logs[6].client_from: want remote_addr or forwarded_for",
    };
    expect_errors("config/logs-bad.yml", expect, ARRAY_SIZE(expect));
    static const char *const notlist[] = {
        "logs-notlist.yml:2:3: logs: want a list of {service, path, format, ...}",
    };
    expect_errors("config/logs-notlist.yml", notlist, ARRAY_SIZE(notlist));
}

/* Write text to a temporary file; returns its path (static buffer per slot). */
static const char *tmp_file(int slot, const char *name, const char *text)
{
    static char paths[2][256];
    static char dir[128];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/sitrep-config-test.XXXXXX");
        assert_non_null(mkdtemp(dir));
    }
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", dir, name);
    FILE *f = fopen(paths[slot], "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return paths[slot];
}

static void test_rules_and_alerting(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    config_defaults(&c);
    sbuf_init(&err, 0);
    assert_int_equal(c.rules.interval_ms, 1000);
    assert_int_equal(c.rules.flap_threshold, 3);
    assert_int_equal(c.rules.default_pack, 1);
    assert_int_equal(c.has_alerting, 0);
    const char *p = tmp_file(0, "a.yml",
                             "rule_files: [rules/*.yml, /etc/sitrep/extra.yml]\n"
                             "rules:\n"
                             "  interval: 5s\n"
                             "  resend_delay: 30s\n"
                             "  outage_tolerance: 2h\n"
                             "  flapping: {threshold: 4, window: 30m, quiet: 10m}\n"
                             "  external_labels: {cluster: eu1}\n"
                             "  default_pack: false\n"
                             "  disable: [CPUSaturated, OOMKill]\n"
                             "alerting:\n"
                             "  route: {receiver: hook, group_wait: 1s}\n"
                             "  receivers:\n"
                             "    - name: hook\n"
                             "      webhook_configs: [{url: 'http://127.0.0.1:1/x'}]\n");
    assert_int_equal(config_load(&c, p, &err), 0);
    assert_string_equal(err.buf, "");
    assert_int_equal(c.nrule_files, 2);
    assert_string_equal(c.rule_files[0], "rules/*.yml");
    assert_int_equal(c.rules.interval_ms, 5000);
    assert_int_equal(c.rules.resend_delay_ms, 30000);
    assert_int_equal(c.rules.outage_tolerance_ms, 7200000);
    assert_int_equal(c.rules.flap_threshold, 4);
    assert_int_equal(c.rules.flap_window_ms, 1800000);
    assert_int_equal(c.rules.flap_quiet_ms, 600000);
    assert_int_equal(c.rules.nexternal, 1);
    assert_string_equal(c.rules.external_values[0], "eu1");
    assert_int_equal(c.rules.default_pack, 0);
    assert_int_equal(c.rules.ndisable, 2);
    assert_string_equal(c.rules.disable[1], "OOMKill");
    assert_int_equal(c.has_alerting, 1);
    assert_int_equal(c.alerting.has_route, 1);
    assert_string_equal(c.alerting.receivers[0].name, "hook");
    char dir[4096];
    config_dir(&c, dir, sizeof(dir));
    assert_true(strncmp(dir, "/tmp/sitrep-config-test.", 24) == 0);
    config_release(&c);

    /* alerting: as a path relative to the config file's folder */
    tmp_file(1, "am.yml", "route: {receiver: r}\nreceivers: [{name: r}]\n");
    p = tmp_file(0, "b.yml", "alerting: am.yml\n");
    config_defaults(&c);
    assert_int_equal(config_load(&c, p, &err), 0);
    assert_int_equal(c.alerting.has_route, 1);
    config_release(&c);

    /* errors, each with its position */
    p = tmp_file(0, "c.yml",
                 "rule_files: 3\n"
                 "rules:\n"
                 "  interval: soon\n"
                 "  flapping: {threshold: 1}\n"
                 "  bogus: 1\n"
                 "alerting:\n"
                 "  route: {receiver: nobody}\n");
    config_defaults(&c);
    sbuf_reset(&err);
    assert_int_equal(config_load(&c, p, &err), -1);
    assert_non_null(strstr(err.buf, "c.yml:3:13: rules.interval: want a duration from 1s to 1h"));
    assert_non_null(strstr(err.buf, "c.yml:4:25: rules.flapping.threshold: want a whole number"));
    assert_non_null(strstr(err.buf, "c.yml:5:3: rules: unknown key 'bogus'"));
    assert_non_null(strstr(err.buf, "c.yml:7:"));
    assert_non_null(strstr(err.buf, "nobody"));
    config_release(&c);

    /* the pack's switches: a boolean, and names the pack has (a typo must not go unseen) */
    p = tmp_file(0, "c.yml",
                 "rules:\n"
                 "  default_pack: no\n"
                 "  disable: [CPUSaturated, CPUSaturate]\n");
    config_defaults(&c);
    sbuf_reset(&err);
    assert_int_equal(config_load(&c, p, &err), -1);
    assert_non_null(strstr(err.buf, "c.yml:2:17: rules.default_pack: want true or false"));
    assert_non_null(strstr(err.buf, "c.yml:3:27: rules.disable: no built-in rule named "
                                    "'CPUSaturate' (sitrep rules builtin lists them)"));
    config_dir(&c, dir, sizeof(dir));
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    config_release(&c);
    sbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_empty_file_is_defaults),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_collect_fields_bad),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_listen_and_durations),
        cmocka_unit_test(test_storage_range_ends),
        cmocka_unit_test(test_storage_below_range),
        cmocka_unit_test(test_storage_above_range),
        cmocka_unit_test(test_storage_wrong_types),
        cmocka_unit_test(test_storage_unknown_keys),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_logs_default_none),
        cmocka_unit_test(test_rules_and_alerting),
        cmocka_unit_test(test_logs_good),
        cmocka_unit_test(test_logs_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
