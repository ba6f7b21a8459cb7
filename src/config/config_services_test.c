/*
 * config_services_test.c: the `services:` section: each service becomes a
 * default HTTP probe and, with a log, an access log to follow, wherever
 * the section stands against `probes:` and `logs:`; errors name
 * file:line:col, clashes with explicit entries included.
 */
#include "testutil.h"
#include "config/config.h"

#include <unistd.h>

static char path[256];

static int load(struct config *c, const char *text, struct sbuf *err)
{
    snprintf(path, sizeof(path), "/tmp/sitrep-services-test-%d.yml", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    config_defaults(c);
    int rc = config_load(c, path, err);
    unlink(path);
    return rc;
}

static void test_services(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    const char *y = "services:\n"
                    "  - {name: web, url: 'http://127.0.0.1:8080/', log: /var/log/nginx/a.log}\n"
                    "  - {name: api, url: 'https://api.local/health', interval: 30s}\n"
                    "  - {name: batch, log: '/var/log/batch/*.log', log_format: json}\n"
                    "probes:\n"
                    "  - {name: db, tcp: '127.0.0.1:5432'}\n";
    if (load(&c, y, &err) < 0)
        fail_msg("%s", err.buf);
    assert_int_equal(c.probes.ntargets, 3); /* db, then web and api */
    assert_string_equal(c.probes.targets[0].name, "db");
    const struct probe_target *web = &c.probes.targets[1], *api = &c.probes.targets[2];
    assert_string_equal(web->name, "web");
    assert_int_equal(web->kind, PROBE_HTTP);
    assert_string_equal(web->target, "http://127.0.0.1:8080/");
    assert_int_equal(web->interval_ms, 10000);
    assert_int_equal(web->timeout_ms, 5000);
    assert_string_equal(web->method, "GET");
    assert_string_equal(api->name, "api");
    assert_int_equal(api->interval_ms, 30000);
    assert_int_equal(c.nlogs, 2);
    assert_string_equal(c.logs[0].service, "web");
    assert_string_equal(c.logs[0].paths[0], "/var/log/nginx/a.log");
    assert_int_equal(c.logs[0].format, INGEST_FMT_COMBINED);
    assert_string_equal(c.logs[1].service, "batch");
    assert_int_equal(c.logs[1].format, INGEST_FMT_JSON);

    /* Loading again gives equal probes and logs: a reload keeps the prober and the ingester. */
    struct config d;
    assert_int_equal(load(&d, y, &err), 0);
    assert_true(probe_config_equal(&c.probes, &d.probes));
    assert_true(ingest_logs_equal(c.logs, c.nlogs, d.logs, d.nlogs));
    config_release(&d);
    config_release(&c);
    sbuf_release(&err);
}

static void test_errors(void **state)
{
    (void)state;
    struct config c;
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    const char *y = "services:\n"
                    "  - {name: 'bad name', url: 'http://x/'}\n"
                    "  - {name: a, url: 'ftp://x/'}\n"
                    "  - {name: b}\n"
                    "  - {url: 'http://x/'}\n"
                    "  - {name: c, url: 'http://x/', log_format: pattern}\n"
                    "  - {name: d, url: 'http://x/', retries: 3}\n"
                    "  - {name: d, log: /x}\n";
    assert_int_equal(load(&c, y, &err), -1);
    const char *want[] = {
        ":2:12: services.name: want 1 to 64 of",
        ":3:20: services.url: want an http:// or https:// URL",
        ":4:5: services: a service needs url: (probed) or log: (followed)",
        ":5:5: services: each entry needs name",
        ":6:45: services.log_format: want common, combined or json",
        ":7:33: services: unknown key 'retries'",
        ":8:5: services: 'd' is given twice",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    config_release(&c);

    /* A name an explicit probe or log already has: said at the service, after everything. */
    sbuf_reset(&err);
    y = "services:\n"
        "  - {name: web, url: 'http://127.0.0.1/', log: /var/log/a.log}\n"
        "probes:\n"
        "  - {name: web, url: 'http://127.0.0.1/health'}\n"
        "logs:\n"
        "  - {service: web, path: /var/log/b.log}\n";
    assert_int_equal(load(&c, y, &err), -1);
    if (!strstr(err.buf, ":2:5: services: 'web' already has an entry in probes:") ||
        !strstr(err.buf, ":2:5: services: 'web' already has an entry in logs:"))
        fail_msg("%s", err.buf);
    config_release(&c);
    sbuf_release(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
