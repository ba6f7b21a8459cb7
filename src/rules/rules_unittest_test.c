/*
 * rules_unittest_test.c: `sitrep test rules` below the command line: the
 * expanding notation of input series (every form, the values it expands to,
 * errors with their columns), and the runner on small inline test files
 * against rule files in a temporary folder: a passing test, failing ones
 * whose report shows what was expected and what was got (in promtool's
 * words), `for` (pending alerts are not listed) and keep_firing_for,
 * promql_expr_test with vectors and scalars, a rule that fails to
 * evaluate, errors in the test file with file:line:col, group_eval_order,
 * and the built-in pack added by --builtin.
 */
#include "testutil.h"
#include "rules/rules_internal.h"

#include <math.h>

/* ---- the notation ---- */

/* The values of text as "1 2 _ S" (S: stale), or "ERR col: message". */
static const char *expand(const char *text)
{
    static char out[4096];
    struct rules__sv *v = NULL;
    size_t n = 0, col = 0;
    char err[160];
    if (rules__series_values_parse(text, &v, &n, &col, err, sizeof(err)) < 0) {
        snprintf(out, sizeof(out), "ERR %zu: %s", col, err);
    } else {
        size_t len = 0;
        out[0] = '\0';
        for (size_t i = 0; i < n && len < sizeof(out) - 32; i++) {
            const char *sep = i ? " " : "";
            if (v[i].kind == RULES_SV_OMITTED)
                len += (size_t)snprintf(out + len, sizeof(out) - len, "%s_", sep);
            else if (v[i].kind == RULES_SV_STALE)
                len += (size_t)snprintf(out + len, sizeof(out) - len, "%sS", sep);
            else
                len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%g", sep, v[i].v);
        }
    }
    free(v);
    return out;
}

static void test_notation_forms(void **state)
{
    (void)state;
    /* text, what it expands to */
    static const char *const cases[][2] = {
        {"", ""},
        {"1 2.5 -3 +4 1e3 .5 1.", "1 2.5 -3 4 1000 0.5 1"},
        {"Inf -inf +INF NaN nan", "inf -inf inf nan nan"},
        {"1+2x3", "1 3 5 7"},
        {"5-1x2", "5 4 3"},
        {"-1-1x2", "-1 -2 -3"},
        {"7x2", "7 7 7"},
        {"+1x2 -2x1", "1 1 1 -2 -2"},
        {"1x0", "1"},
        {"_ _x3 stale", "_ _ _ _ S"},
        {"_x0 4", "4"},
        {"  1\t2  ", "1 2"},
        {"0x10", "0 0 0 0 0 0 0 0 0 0 0"}, /* no hex: a zero and ten more */
        {"1 stale _ 2", "1 S _ 2"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_string_equal(expand(cases[i][0]), cases[i][1]);

    /* a+bxN adds b repeatedly, as Prometheus does (0.1 steps: same doubles) */
    struct rules__sv *v = NULL;
    size_t n = 0, col;
    char err[160];
    assert_int_equal(rules__series_values_parse("0.1+0.1x9", &v, &n, &col, err, sizeof(err)), 0);
    assert_int_equal(n, 10);
    double want = 0.1;
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i].v == want);
        want += 0.1;
    }
    /* appends to what is there */
    assert_int_equal(rules__series_values_parse("_ 3", &v, &n, &col, err, sizeof(err)), 0);
    assert_int_equal(n, 12);
    assert_int_equal(v[10].kind, RULES_SV_OMITTED);
    assert_true(v[11].v == 3);
    free(v);
}

static void test_notation_errors(void **state)
{
    (void)state;
    /* text, the column and message of its error */
    static const char *const cases[][2] = {
        {"1 abc",
         "ERR 3: unexpected \"abc\" in series values, expected a number, \"_\" or \"stale\""},
        {"1+x2", "ERR 3: expected the increment after \"+\" in series values"},
        {"1x", "ERR 3: invalid repetition: want a whole number after x"},
        {"1x-1", "ERR 3: invalid repetition: want a whole number after x"},
        {"1+1", "ERR 4: expected \"x\" and a repetition after the increment"},
        {"1+1 x3", "ERR 4: expected \"x\" and a repetition after the increment"},
        {"1x2.5", "ERR 4: unexpected \".\" in series values"},
        {"1x2x3", "ERR 4: unexpected \"x\" in series values"},
        {"1,2", "ERR 2: unexpected \",\" in series values"},
        {"2 stalex2", "ERR 8: unexpected \"x\" in series values"},
        {"_x", "ERR 3: invalid repetition after \"_x\""},
        {"_+1x2", "ERR 2: unexpected \"+\" in series values"},
        {"Infx2",
         "ERR 1: unexpected \"Infx2\" in series values, expected a number, \"_\" or \"stale\""},
        {"1 1x99999999999", "ERR 3: more than 1000000 values in one "
                            "series"},
        {"1x999999 2x5", "ERR 10: more than 1000000 values in one series"},
        {"_x2000000", "ERR 1: more than 1000000 values in one series"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_string_equal(expand(cases[i][0]), cases[i][1]);
}

/* ---- the runner ---- */

static const char rules_yml[] = "groups:\n"
                                "- name: g\n"
                                "  rules:\n"
                                "  - record: job:x:sum\n"
                                "    expr: sum by (job) (x)\n"
                                "  - alert: High\n"
                                "    expr: x > 5\n"
                                "    for: 2m\n"
                                "    labels: {severity: page}\n"
                                "    annotations:\n"
                                "      summary: '{{ $labels.instance }} is {{ $value }}'\n"
                                "  - alert: Sticky\n"
                                "    expr: y > 0\n"
                                "    keep_firing_for: 3m\n"
                                "- name: h\n"
                                "  rules:\n"
                                "  - record: twice\n"
                                "    expr: job:x:sum * 2\n"
                                "  - record: broken\n"
                                "    expr: z + on() w\n";

struct run {
    char *dir;
    struct sbuf report;
    int rc;
};

/* Run a test file's text with rules_yml beside it as r.yml. */
static void run(struct run *r, const char *text, int builtin)
{
    char path[4096];
    r->dir = xstrdup(tu_tmpdir("unittest"));
    snprintf(path, sizeof(path), "%s/r.yml", r->dir);
    tu_write_file(path, rules_yml);
    sbuf_init(&r->report, 0);
    r->rc = rules__unittest_run("t.yml", text, strlen(text), r->dir, builtin, &r->report);
}

static void done(struct run *r)
{
    sbuf_release(&r->report);
    tu_rmrf(r->dir);
    free(r->dir);
}

/* Run text, which must pass with nothing to report. */
static void expect_pass(const char *text, int builtin)
{
    struct run r;
    run(&r, text, builtin);
    if (r.rc != 0 || r.report.len)
        fail_msg("rc %d: %s", r.rc, r.report.buf);
    done(&r);
}

#define SERIES                                                                                     \
    "  input_series:\n"                                                                            \
    "  - series: 'x{instance=\"a\",job=\"j\"}'\n"                                                  \
    "    values: '0+2x10'\n"                                                                       \
    "  - series: 'x{instance=\"b\",job=\"j\"}'\n"                                                  \
    "    values: '1x3 _x2 stale'\n"

static void test_pass(void **state)
{
    (void)state;
    expect_pass("rule_files: [r.yml]\n"
                "evaluation_interval: 1m\n"
                "tests:\n"
                "- interval: 1m\n" SERIES "  alert_rule_test:\n"
                "  - eval_time: 3m\n" /* x=6 since 3m: pending, not listed */
                "    alertname: High\n"
                "    exp_alerts: []\n"
                "  - eval_time: 5m\n" /* 2m of for passed at 5m */
                "    alertname: High\n"
                "    exp_alerts:\n"
                "    - exp_labels: {severity: page, instance: a, job: j}\n"
                "      exp_annotations: {summary: a is 10}\n"
                "  - eval_time: 5m30s\n" /* checked against the evaluation at 5m */
                "    alertname: High\n"
                "    exp_alerts:\n"
                "    - exp_labels: {alertname: High, severity: page, instance: a, job: j}\n"
                "      exp_annotations: {summary: a is 10}\n"
                "  - eval_time: 1m\n"
                "    alertname: NoSuchAlert\n"
                "  promql_expr_test:\n"
                "  - expr: job:x:sum\n"
                "    eval_time: 1m\n"
                "    exp_samples: [{labels: 'job:x:sum{job=\"j\"}', value: 3}]\n"
                "  - expr: x\n"
                "    eval_time: 6m\n" /* b: stale at 6m */
                "    exp_samples: [{labels: 'x{job=\"j\",instance=\"a\"}', value: 12}]\n"
                "  - expr: twice\n" /* group h after g: it sees this evaluation's job:x:sum */
                "    eval_time: 2m\n"
                "    exp_samples: [{labels: 'twice{job=\"j\"}', value: 10}]\n"
                "  - expr: scalar(sum(x)) / 2\n"
                "    eval_time: 1m\n"
                "    exp_samples: [{labels: '{}', value: 1.5}]\n"
                "  - expr: x{instance=\"none\"}\n"
                "    eval_time: 1m\n",
                0);
}

static void test_fail_reports_difference(void **state)
{
    (void)state;
    struct run r;
    run(&r,
        "rule_files: [r.yml]\n"
        "tests:\n"
        "- interval: 1m\n"
        "  name: my test\n" SERIES "  alert_rule_test:\n"
        "  - eval_time: 4m\n" /* still pending */
        "    alertname: High\n"
        "    exp_alerts:\n"
        "    - exp_labels: {severity: page, instance: a, job: j}\n"
        "  - eval_time: 5m\n"
        "    alertname: High\n"
        "    exp_alerts: []\n"
        "  promql_expr_test:\n"
        "  - expr: job:x:sum\n"
        "    eval_time: 1m\n"
        "    exp_samples: [{labels: 'job:x:sum{job=\"j\"}', value: 4}]\n"
        "  - expr: x[5m]\n"
        "    eval_time: 1m\n",
        0);
    assert_int_equal(r.rc, 1);
    assert_string_equal(
        r.report.buf,
        "  FAILED:\n"
        "    name: my test,\n"
        "    alertname: High, time: 4m, \n"
        "        exp:[\n"
        "            0:\n"
        "              Labels:{alertname=\"High\", instance=\"a\", job=\"j\", severity=\"page\"}\n"
        "              Annotations:{}\n"
        "            ], \n"
        "        got:[]\n"
        "\n"
        "    name: my test,\n"
        "    alertname: High, time: 5m, \n"
        "        exp:[], \n"
        "        got:[\n"
        "            0:\n"
        "              Labels:{alertname=\"High\", instance=\"a\", job=\"j\", severity=\"page\"}\n"
        "              Annotations:{summary=\"a is 10\"}\n"
        "            ]\n"
        "\n"
        "    expr: \"job:x:sum\", time: 1m,\n"
        "        exp: {__name__=\"job:x:sum\", job=\"j\"} 4E+00\n"
        "        got: {__name__=\"job:x:sum\", job=\"j\"} 3E+00\n"
        "\n"
        "    expr: \"x[5m]\", time: 1m, err: rule result is not a vector or scalar\n"
        "\n");
    done(&r);
}

/* keep_firing_for holds a firing alert after its series is gone; for 0 fires at once. */
static void test_keep_firing_for(void **state)
{
    (void)state;
    expect_pass("rule_files: [r.yml]\n"
                "tests:\n"
                "- interval: 1m\n"
                "  input_series:\n"
                "  - series: y\n"
                "    values: '1 1 0x10'\n"
                "  alert_rule_test:\n"
                "  - {eval_time: 0m, alertname: Sticky, exp_alerts: [{}]}\n"
                "  - {eval_time: 4m, alertname: Sticky, exp_alerts: [{}]}\n"
                "  - {eval_time: 5m, alertname: Sticky, exp_alerts: []}\n",
                0);
}

/* A rule that fails to evaluate stops the test, reported as promtool does. */
static void test_rule_error(void **state)
{
    (void)state;
    struct run r;
    run(&r,
        "rule_files: [r.yml]\n"
        "tests:\n"
        "- interval: 1m\n"
        "  input_series:\n"
        "  - {series: 'z{a=\"1\"}', values: '1x5'}\n"
        "  - {series: 'z{a=\"2\"}', values: '_ 1x5'}\n"
        "  - {series: w, values: '1x5'}\n"
        "  promql_expr_test:\n"
        "  - {expr: 'w', eval_time: 2m, exp_samples: [{labels: w, value: 2}]}\n",
        0);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.report.buf,
                        "  FAILED:\n"
                        "    rule: broken, time: 1m0s, err: multiple matches for labels: "
                        "many-to-one matching must be explicit (group_left/group_right)\n\n");
    done(&r);
}

/* group_eval_order: h before g, so `twice` sees the previous evaluation's job:x:sum. */
static void test_group_order(void **state)
{
    (void)state;
    expect_pass("rule_files: [r.yml]\n"
                "group_eval_order: [h, g]\n"
                "tests:\n"
                "- interval: 1m\n" SERIES "  promql_expr_test:\n"
                "  - expr: twice\n"
                "    eval_time: 2m\n"
                "    exp_samples: [{labels: 'twice{job=\"j\"}', value: 6}]\n",
                0);
}

/* Problems in the test file: all of them, with file:line:col, and nothing runs. */
static void test_file_errors(void **state)
{
    (void)state;
    struct run r;
    run(&r,
        "rule_files: [r.yml, nothing*.yml]\n"
        "evaluation_interval: 1x\n"
        "tests:\n"
        "- interval: 1m\n"
        "  input_sries: []\n"
        "  input_series:\n"
        "  - series: 'x{a=\"b\"'\n"
        "    values: '1 2 3+x4'\n"
        "  - values: \"1 2 abc\"\n"
        "  - series: 'rate(x[5m])'\n"
        "    values: 1\n"
        "  alert_rule_test:\n"
        "  - eval_time: 1m\n"
        "  promql_expr_test:\n"
        "  - expr: x\n"
        "    exp_samples: [{labels: 'x{a=~\"b\"}', value: one}]\n",
        0);
    assert_int_equal(r.rc, 2);
    assert_string_equal(
        r.report.buf,
        "t.yml:2:22: evaluation_interval: not a valid duration: \"1x\" (e.g. 30s, 5m, 1h30m)\n"
        "t.yml:5:3: field input_sries not found in type testGroup (known: interval, "
        "input_series, alert_rule_test, promql_expr_test, external_labels, external_url, "
        "name)\n"
        "t.yml:7:13: series: 1:8: parse error: unexpected end of input inside braces\n"
        "t.yml:8:20: values: expected the increment after \"+\" in series values\n"
        "t.yml:9:18: values: unexpected \"abc\" in series values, expected a number, \"_\" or "
        "\"stale\"\n"
        "t.yml:9:5: input_series: an item misses `series`\n"
        "t.yml:10:13: series: want a series such as 'up{job=\"node\"}', not an expression\n"
        "t.yml:13:5: alert_rule_test: an item misses required attribute alertname\n"
        "t.yml:16:28: labels: label a: want each label once, with =\n"
        "t.yml:16:48: value: want a number (1, 2.5e3, .inf, .nan)\n");
    done(&r);

    /* a rule file's errors are load.c's, with its own positions */
    run(&r, "rule_files: [bad.yml]\ntests: [{interval: 1m}]\n", 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s/bad.yml", r.dir);
    tu_write_file(path, "groups:\n- name: b\n  rules:\n  - record: x\n    expr: sum(\n");
    sbuf_reset(&r.report);
    const char *text = "rule_files: [bad.yml]\ntests: [{interval: 1m}]\n";
    r.rc = rules__unittest_run("t.yml", text, strlen(text), r.dir, 0, &r.report);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.report.buf, "/bad.yml:5:11: could not parse expression"));
    done(&r);

    /* a pattern that matches nothing is a warning, as in promtool */
    run(&r, "rule_files: [none*.yml]\ntests: [{interval: 1m}]\n", 0);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.report.buf, "  WARNING: no file match pattern "));
    done(&r);
}

/* --builtin: the pack's groups run beside the test's own rule files. */
static void test_builtin(void **state)
{
    (void)state;
    struct run r;
    const char *text = "rule_files: [r.yml]\n"
                       "evaluation_interval: 10s\n"
                       "tests:\n"
                       "- interval: 10s\n"
                       "  input_series:\n"
                       "  - series: 'sitrep_probe_consecutive_failures{service=\"web\","
                       "target=\"http://x/\"}'\n"
                       "    values: '0 1 2 2 0'\n"
                       "  - series: 'probe_success{service=\"web\",target=\"http://x/\"}'\n"
                       "    values: '1 0 0 0 1'\n"
                       "  alert_rule_test:\n"
                       "  - eval_time: 10s\n"
                       "    alertname: EndpointDown\n"
                       "  - eval_time: 40s\n"
                       "    alertname: EndpointDown\n"
                       "  promql_expr_test:\n"
                       "  - expr: count(ALERTS{alertname=\"EndpointDown\",alertstate=\"firing\"})\n"
                       "    eval_time: 20s\n"
                       "    exp_samples: [{labels: '{}', value: 1}]\n";
    expect_pass(text, 1);
    /* without the pack, no such alert fires */
    run(&r, text, 0);
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.report.buf, "got: nil"));
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notation_forms),
        cmocka_unit_test(test_notation_errors),
        cmocka_unit_test(test_pass),
        cmocka_unit_test(test_fail_reports_difference),
        cmocka_unit_test(test_keep_firing_for),
        cmocka_unit_test(test_rule_error),
        cmocka_unit_test(test_group_order),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_builtin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
