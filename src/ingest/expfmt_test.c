/* expfmt_test.c: the exposition parser on good, odd and hostile input. */
#include "ingest/expfmt.h"
#include "testutil.h"

#include <math.h>

static void test_samples(void **state)
{
    (void)state;
    const char *in = "# HELP http_requests_total Requests \"served\".\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{method=\"GET\",code=\"200\"} 1027 1395066363.5\n"
                     "http_requests_total{method=\"po\\\"st\\\\\\n\",code=\"400\",} 3 1395066363\n"
                     "# TYPE lat histogram\n"
                     "lat_bucket{le=\"+Inf\"} +Inf 10 # {trace_id=\"x\"} 1.5 10\n"
                     "odd NaN 20\n"
                     "neg -Inf 30\n"
                     "# EOF\n";
    struct expfmt p;
    expfmt_init(&p, in, strlen(in), EXPFMT_OPENMETRICS);
    struct expfmt_sample s;
    char err[256];
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_string_equal(s.name, "http_requests_total");
    assert_int_equal(s.nlabels, 2);
    assert_string_equal(s.labels[0].name, "method");
    assert_string_equal(s.labels[1].value, "200");
    assert_true(s.value == 1027 && s.has_ts && s.ts_ms == 1395066363500);
    assert_string_equal(s.type, "counter");
    assert_string_equal(s.help, "Requests \"served\".");
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_string_equal(s.labels[0].value, "po\"st\\\n");
    assert_int_equal(s.ts_ms, 1395066363000);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_string_equal(s.name, "lat_bucket");
    assert_string_equal(s.type, "histogram");
    assert_true(isinf(s.value) && s.value > 0 && s.ts_ms == 10000);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_true(isnan(s.value) && s.type == NULL);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_true(isinf(s.value) && s.value < 0);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 0);
    expfmt_release(&p);

    /* The text format: millisecond timestamps, none at all, blank lines. */
    const char *txt = "\nup 1\nup{job=\"a\"} 0 1700000000123\n";
    expfmt_init(&p, txt, strlen(txt), EXPFMT_TEXT);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_false(s.has_ts);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_int_equal(s.ts_ms, 1700000000123);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 0);
    expfmt_release(&p);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"up{a=\"b\" 1\n", "1:10: expected ',' or '}' after a label"},
        {"up{a=b} 1\n", "1:6: expected '\"' to start a label value"},
        {"up{a=\"b\\x\"} 1\n", "unknown escape"},
        {"up banana\n", "1:10: expected a number"},
        {"up 1 2 3\n", "1:8: unexpected text after the sample"},
        {"9up 1\n", "1:1: expected a metric name"},
        {"up{a=\"1\",a=\"2\"} 1\n", "label name repeated"},
        {"# TYPE up nonsense\n", "1:19: unknown metric type 'nonsense'"},
        {"up{a=\"unclosed} 1\n", "label value not closed"},
        {"up 0x10\n", "expected a number"},
        {"# EOF\nup 1\n", "2:1: text after # EOF"},
        {"up\n", "1:3: expected a space before the value"},
        {"up 1 12.5x\n", "expected a timestamp"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct expfmt p;
        expfmt_init(&p, cases[i].in, strlen(cases[i].in), EXPFMT_OPENMETRICS);
        struct expfmt_sample s;
        char err[256] = "";
        int r;
        while ((r = expfmt_next(&p, &s, err, sizeof(err))) > 0)
            ;
        if (r != -1 || !strstr(err, cases[i].err))
            fail_msg("case %zu (%s): got %d '%s', want '%s'", i, cases[i].in, r, err, cases[i].err);
        expfmt_release(&p);
    }
    /* A bad line is skipped; the next one is read. NUL bytes and huge numbers do no harm. */
    const char in[] = "bad line\nup 1 5\nx{a=\"\0\"} 1\nbig 1e400 1\n";
    struct expfmt p;
    expfmt_init(&p, in, sizeof(in) - 1, EXPFMT_OPENMETRICS);
    struct expfmt_sample s;
    char err[256];
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), -1);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_string_equal(s.name, "up");
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL"));
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 1);
    assert_true(isinf(s.value));
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), 0);
    expfmt_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
