/*
 * notify_config_test.c: the notification config (Alertmanager's YAML
 * layout) and matchers: a full file parses to what it says, defaults and
 * global settings land where Alertmanager puts them, and every mistake is
 * reported with its file:line:col.
 */
#include "testutil.h"
#include "notify/notify_internal.h"

static int parse(const char *text, struct notify_config *cfg, struct sbuf *errors)
{
    notify_config_defaults(cfg);
    sbuf_init(errors, 1 << 20);
    return notify_config_parse(cfg, "am.yml", text, errors);
}

/* Parse text expecting an error whose message contains want (with its position). */
static void expect_error(const char *text, const char *want)
{
    struct notify_config cfg;
    struct sbuf errors;
    int rc = parse(text, &cfg, &errors);
    if (rc == 0 || !strstr(errors.buf, want))
        fail_msg("want error containing '%s', got rc %d:\n%s", want, rc, errors.buf);
    notify_config_release(&cfg);
    sbuf_release(&errors);
}

static void test_full(void **state)
{
    (void)state;
    static const char text[] = "global:\n"
                               "  resolve_timeout: 2m\n"
                               "  smtp_from: sitrep@example.org\n"
                               "  smtp_smarthost: mail.example.org:587\n"
                               "  smtp_auth_username: bot\n"
                               "  smtp_auth_password: secret\n"
                               "  slack_api_url: https://hooks.example.org/T/B/x\n"
                               "  pagerduty_url: https://ignored.example.org/\n"
                               "templates: ['/etc/alertmanager/*.tmpl']\n"
                               "route:\n"
                               "  receiver: team\n"
                               "  group_by: [alertname, cluster]\n"
                               "  group_wait: 10s\n"
                               "  group_interval: 1m\n"
                               "  repeat_interval: 1h30m\n"
                               "  routes:\n"
                               "    - matchers: ['severity=\"page\"', 'team=~\"db|web\"']\n"
                               "      receiver: pager\n"
                               "      continue: true\n"
                               "    - match: {service: api}\n"
                               "      match_re: {instance: 'api-.*'}\n"
                               "      group_by: ['...']\n"
                               "      routes:\n"
                               "        - receiver: fixer\n"
                               "          matchers: [alertname=DiskFull]\n"
                               "receivers:\n"
                               "  - name: team\n"
                               "    webhook_configs:\n"
                               "      - url: http://127.0.0.1:5001/hook\n"
                               "        max_alerts: 10\n"
                               "        http_config:\n"
                               "          authorization: {credentials: tok}\n"
                               "    slack_configs:\n"
                               "      - channel: '#ops'\n"
                               "    email_configs:\n"
                               "      - to: 'ops@example.org, oncall@example.org'\n"
                               "        headers: {Subject: 'sitrep alert'}\n"
                               "  - name: pager\n"
                               "    alertmanager_configs:\n"
                               "      - url: http://127.0.0.1:9093\n"
                               "  - name: fixer\n"
                               "    exec_configs:\n"
                               "      - command: [/usr/local/bin/fix, --disk]\n"
                               "        env: {MODE: auto}\n"
                               "        timeout: 5s\n"
                               "        max_per_hour: 2\n"
                               "inhibit_rules:\n"
                               "  - source_matchers: [alertname=HostDown]\n"
                               "    target_matchers: ['severity=~\"warning|page\"']\n"
                               "    equal: [instance]\n"
                               "outbox:\n"
                               "  max_entries: 500\n"
                               "  retry_initial: 2s\n"
                               "  retry_max: 1m\n"
                               "limits:\n"
                               "  max_alerts: 100\n";
    struct notify_config cfg;
    struct sbuf errors;
    if (parse(text, &cfg, &errors) != 0)
        fail_msg("%s", errors.buf);
    assert_int_equal(cfg.resolve_timeout_ms, 120000);
    assert_true(cfg.has_route);
    assert_string_equal(cfg.route.receiver, "team");
    assert_int_equal(cfg.route.ngroup_by, 2);
    assert_int_equal(cfg.route.group_wait_ms, 10000);
    assert_int_equal(cfg.route.repeat_interval_ms, 5400000);
    assert_int_equal(cfg.route.nroutes, 2);
    assert_true(cfg.route.routes[0].cont);
    assert_int_equal(cfg.route.routes[0].matchers.n, 2);
    assert_int_equal(cfg.route.routes[1].matchers.n, 2); /* match + match_re merged */
    assert_true(cfg.route.routes[1].group_by_all);
    assert_int_equal(cfg.route.routes[1].group_wait_ms, NOTIFY_UNSET);
    assert_int_equal(cfg.nreceivers, 3);
    const struct notify_receiver *team = &cfg.receivers[0];
    assert_int_equal(team->n, 3);
    assert_int_equal(team->v[0].kind, NOTIFY_WEBHOOK);
    assert_true(team->v[0].send_resolved); /* webhook default */
    assert_int_equal(team->v[0].max_alerts, 10);
    assert_string_equal(team->v[0].http.bearer_token, "tok");
    assert_int_equal(team->v[1].kind, NOTIFY_SLACK);
    assert_false(team->v[1].send_resolved);                                 /* slack default */
    assert_string_equal(team->v[1].url, "https://hooks.example.org/T/B/x"); /* from global */
    assert_int_equal(team->v[2].kind, NOTIFY_EMAIL);
    assert_string_equal(team->v[2].from, "sitrep@example.org");
    assert_string_equal(team->v[2].smarthost, "mail.example.org:587");
    assert_string_equal(team->v[2].auth_username, "bot");
    assert_string_equal(team->v[2].auth_password, "secret");
    assert_true(team->v[2].require_tls);
    assert_int_equal(team->v[2].nheaders, 1);
    assert_int_equal(cfg.receivers[1].v[0].kind, NOTIFY_ALERTMANAGER);
    const struct notify_integration *fx = &cfg.receivers[2].v[0];
    assert_int_equal(fx->kind, NOTIFY_EXEC);
    assert_int_equal(fx->argc, 2);
    assert_string_equal(fx->argv[1], "--disk");
    assert_null(fx->argv[2]);
    assert_int_equal(fx->timeout_ms, 5000);
    assert_int_equal(fx->max_per_hour, 2);
    assert_string_equal(fx->env[0].name, "MODE");
    assert_int_equal(cfg.ninhibit, 1);
    assert_int_equal(cfg.inhibit[0].nequal, 1);
    assert_int_equal(cfg.outbox_max, 500);
    assert_int_equal(cfg.retry_initial_ms, 2000);
    assert_int_equal(cfg.max_alerts, 100);
    assert_int_equal(cfg.max_groups, 2000); /* default kept */
    notify_config_release(&cfg);
    sbuf_release(&errors);
}

static void test_empty_and_defaults(void **state)
{
    (void)state;
    struct notify_config cfg;
    struct sbuf errors;
    assert_int_equal(parse("", &cfg, &errors), 0);
    assert_false(cfg.has_route);
    assert_int_equal(cfg.resolve_timeout_ms, 300000);
    notify_config_release(&cfg);
    sbuf_release(&errors);
    assert_int_equal(parse("route: {receiver: x}\nreceivers: [{name: x}]\n", &cfg, &errors), 0);
    assert_true(cfg.has_route);
    assert_int_equal(cfg.receivers[0].n, 0); /* a receiver with nothing: a black hole, as in AM */
    notify_config_release(&cfg);
    sbuf_release(&errors);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("route:\n  receiver: x\n  group_wiat: 1s\nreceivers: [{name: x}]\n",
                 "am.yml:3:3: route: unknown or unsupported key 'group_wiat'");
    expect_error("route:\n  receiver: nobody\nreceivers: [{name: x}]\n",
                 "am.yml:2:3: route: receiver 'nobody' is not defined");
    expect_error("route:\n  group_by: [a]\nreceivers: [{name: x}]\n",
                 "route: the top-level route needs a receiver");
    expect_error("route:\n  receiver: x\n  matchers: [a=b]\nreceivers: [{name: x}]\n",
                 "top-level route must not have matchers");
    expect_error("route:\n  receiver: x\n  routes:\n    - matchers: ['a=~\"(\"']\n"
                 "receivers: [{name: x}]\n",
                 "am.yml:4:18: route.matchers: bad regex");
    expect_error("route:\n  receiver: x\n  group_interval: 0s\nreceivers: [{name: x}]\n",
                 "am.yml:3:19: route.group_interval: must be at least 1ms");
    expect_error("route:\n  receiver: x\n  group_wait: 5 minutes\nreceivers: [{name: x}]\n",
                 "am.yml:3:15: route.group_wait: want a duration");
    expect_error("route:\n  receiver: x\n  group_by: ['...', job]\nreceivers: [{name: x}]\n",
                 "'...' groups by all labels and must be alone");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n  - name: x\n",
                 "am.yml:4:11: receivers[1]: receiver 'x' is defined twice");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n    pagerduty_configs: []\n",
                 "am.yml:4:5: receivers[0]: pagerduty_configs are not supported by sitrep");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n    webhook_configs:\n"
                 "      - send_resolved: true\n",
                 "am.yml:5:9: receivers[0].webhook_configs[0]: url missing");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n    slack_configs:\n"
                 "      - api_url: https://h/x\n        title: '{{ .Status }}'\n",
                 "am.yml:6:16: receivers[0].slack_configs[0].title: Go templates are not "
                 "supported");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n    email_configs:\n"
                 "      - to: a@b\n",
                 "from missing");
    expect_error("route: {receiver: x}\nreceivers:\n  - name: x\n    exec_configs:\n"
                 "      - command: []\n",
                 "want a program and its arguments");
    expect_error("route:\n  receiver: x\n  mute_time_intervals: [night]\nreceivers: [{name: x}]\n",
                 "am.yml:3:3: route.mute_time_intervals: time intervals are not supported");
    expect_error("inhibit_rules:\n  - source_matchers: [a=b]\n",
                 "am.yml:2:5: inhibit_rules[0]: target_matchers missing");
    expect_error("global:\n  resolve_timout: 5m\n", "am.yml:2:3: global: unknown");
    expect_error("route: [\n", "am.yml:");
    expect_error("receivers: [{name: x}]\n", "receivers given but no route");
    expect_error("route: {receiver: x}\nroute: {receiver: x}\nreceivers: [{name: x}]\n",
                 "am.yml:2:1: top level: duplicate key 'route'");
    /* Every problem is reported, not just the first. */
    struct notify_config cfg;
    struct sbuf errors;
    assert_int_equal(
        parse("route:\n  receiver: a\n  bogus: 1\nreceivers: [{name: b, x: 1}]\n", &cfg, &errors),
        -1);
    assert_non_null(strstr(errors.buf, "am.yml:3:3:"));
    assert_non_null(strstr(errors.buf, "am.yml:4:23:"));
    assert_non_null(strstr(errors.buf, "receiver 'a' is not defined"));
    notify_config_release(&cfg);
    sbuf_release(&errors);
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir("notify-cfg"));
    snprintf(path, sizeof(path), "%s/am.yml", dir);
    tu_write_file(path, "route:\n  receiver: x\n  group_wait: oops\nreceivers: [{name: x}]\n");
    struct notify_config cfg;
    struct sbuf errors;
    notify_config_defaults(&cfg);
    sbuf_init(&errors, 1 << 20);
    assert_int_equal(notify_config_load(&cfg, path, &errors), -1);
    char want[300];
    snprintf(want, sizeof(want), "%s:3:15: route.group_wait", path);
    assert_non_null(strstr(errors.buf, want));
    notify_config_release(&cfg);
    sbuf_reset(&errors);
    notify_config_defaults(&cfg);
    assert_int_equal(notify_config_load(&cfg, "/nonexistent/am.yml", &errors), -1);
    assert_non_null(strstr(errors.buf, "/nonexistent/am.yml: No such file"));
    notify_config_release(&cfg);
    sbuf_release(&errors);
    tu_rmrf(dir);
}

static int matches(const char *matchers, const struct notify_label *l, size_t n)
{
    struct notify_matchers ms = {0};
    char err[256];
    if (notify_matchers_parse(matchers, &ms, err, sizeof(err)) < 0)
        fail_msg("%s: %s", matchers, err);
    struct notify__lset set;
    assert_int_equal(notify__lset_copy(&set, l, n), 0);
    int r = notify__matchers_match(&ms, &set);
    notify__lset_free(&set);
    notify_matchers_release(&ms);
    return r;
}

static void test_matchers(void **state)
{
    (void)state;
    struct notify_label l[] = {{"alertname", "HostDown"}, {"job", "node"}, {"msg", "a \"b\""}};
    assert_true(matches("alertname=HostDown", l, 3));
    assert_true(matches("alertname=\"HostDown\"", l, 3));
    assert_true(matches("{alertname=\"HostDown\", job!=api}", l, 3));
    assert_false(matches("alertname!=HostDown", l, 3));
    assert_true(matches("job=~\"no.*\"", l, 3));
    assert_false(matches("job=~\"no\"", l, 3)); /* anchored both ends */
    assert_false(matches("job=~\"ode\"", l, 3));
    assert_true(matches("job!~\"api|web\"", l, 3));
    assert_true(matches("missing=\"\"", l, 3)); /* absent is empty */
    assert_true(matches("missing!~\".+\"", l, 3));
    assert_true(matches("msg=\"a \\\"b\\\"\"", l, 3));
    assert_true(matches("  job = node ", l, 3));
    /* Errors. */
    struct notify_matchers ms = {0};
    char err[256];
    assert_int_equal(notify_matchers_parse("job", &ms, err, sizeof(err)), -1);
    assert_int_equal(notify_matchers_parse("job=~\"(\"", &ms, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad regex"));
    assert_int_equal(notify_matchers_parse("job=\"x", &ms, err, sizeof(err)), -1);
    assert_int_equal(notify_matchers_parse("{a=b", &ms, err, sizeof(err)), -1);
    assert_int_equal(notify_matchers_parse("a=b\"c", &ms, err, sizeof(err)), -1);
    assert_int_equal(ms.n, 0);
    /* Printing as Alertmanager does (sorted by name, then value, then type). */
    assert_int_equal(
        notify_matchers_parse("{z=1, a!~\"x.y\", a=b, c=\"q\\\\r\"}", &ms, err, sizeof(err)), 0);
    struct sbuf b;
    sbuf_init(&b, 0);
    notify__matchers_string(&b, &ms);
    assert_string_equal(b.buf, "{a=\"b\",a!~\"x.y\",c=\"q\\\\r\",z=\"1\"}");
    sbuf_release(&b);
    notify_matchers_release(&ms);
}

static void test_durations_and_times(void **state)
{
    (void)state;
    long long ms;
    assert_int_equal(notify__duration_parse("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(notify__duration_parse("100ms", &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(notify__duration_parse("1d2h", &ms), 0);
    assert_int_equal(ms, 93600000);
    assert_int_equal(notify__duration_parse("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(notify__duration_parse("1m1h", &ms), -1); /* order */
    assert_int_equal(notify__duration_parse("5", &ms), -1);
    assert_int_equal(notify__duration_parse("-5s", &ms), -1);
    assert_int_equal(notify__duration_parse("", &ms), -1);
    char out[32];
    notify__duration_format(5400000, out);
    assert_string_equal(out, "1h30m");
    int64_t t;
    assert_int_equal(notify__time_parse("2024-05-01T10:20:30.5Z", &t), 0);
    assert_int_equal(t, 1714558830500LL);
    assert_int_equal(notify__time_parse("2024-05-01T12:20:30+02:00", &t), 0);
    assert_int_equal(t, 1714558830000LL);
    assert_int_equal(notify__time_parse("2024-05-01 10:20:30Z", &t), 0);
    assert_int_equal(notify__time_parse("2024-05-01T10:20:30", &t), -1);
    assert_int_equal(notify__time_parse("yesterday", &t), -1);
    struct sbuf b;
    sbuf_init(&b, 0);
    notify__time_json(&b, 1714558830500LL);
    notify__time_json(&b, 1714558830000LL);
    notify__time_json(&b, 1714558830120LL);
    notify__time_json(&b, 0);
    assert_string_equal(b.buf, "\"2024-05-01T10:20:30.5Z\"\"2024-05-01T10:20:30Z\""
                               "\"2024-05-01T10:20:30.12Z\"\"0001-01-01T00:00:00Z\"");
    sbuf_release(&b);
}

static void test_json_reader(void **state)
{
    (void)state;
    char err[128];
    const char *s = "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\\ud83d\\ude00\"], \"b\": {}}";
    struct notify__jv *v = notify__json_parse(s, strlen(s), err, sizeof(err));
    assert_non_null(v);
    const struct notify__jv *a = notify__jv_get(v, "a");
    assert_int_equal(a->n, 5);
    assert_true(a->items[1].num == -2500);
    assert_string_equal(a->items[4].str, "x\xc3\xa9\n\xf0\x9f\x98\x80");
    assert_int_equal(notify__jv_get(v, "b")->type, NJ_OBJ);
    notify__jv_free(v);
    static const char *const bad[] = {"{",   "[1,]", "{\"a\" 1}", "\"\\u0000\"",
                                      "01x", "[] x", "\"abc"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (notify__json_parse(bad[i], strlen(bad[i]), err, sizeof(err)))
            fail_msg("accepted %s", bad[i]);
    /* Deep nesting is refused, not recursed into. */
    char deep[400];
    memset(deep, '[', sizeof(deep));
    assert_null(notify__json_parse(deep, sizeof(deep), err, sizeof(err)));
    assert_non_null(strstr(err, "nested too deep"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),        cmocka_unit_test(test_empty_and_defaults),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_matchers),    cmocka_unit_test(test_durations_and_times),
        cmocka_unit_test(test_json_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
