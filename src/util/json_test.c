/* json_test.c: Prometheus's JSON dialect for values, times and strings. */
#include "testutil.h"
#include "util/json.h"

#include <math.h>

static void check_value(double v, const char *want)
{
    char out[48];
    json_format_value(v, out);
    if (strcmp(out, want) != 0)
        fail_msg("%.17g: got %s, want %s", v, out, want);
}

static void test_values(void **state)
{
    (void)state;
    /* Go: strconv.FormatFloat(v, 'f' or 'e', -1, 64) as Prometheus picks. */
    check_value(0, "0");
    check_value(1, "1");
    check_value(-1.5, "-1.5");
    check_value(0.1, "0.1");
    check_value(123456789.123, "123456789.123");
    check_value(1e20, "100000000000000000000");
    check_value(1e21, "1e+21");
    check_value(1.5e21, "1.5e+21");
    check_value(1e-6, "0.000001");
    check_value(1e-7, "1e-07");
    check_value(-2.5e-10, "-2.5e-10");
    check_value(1.7976931348623157e308, "1.7976931348623157e+308");
    check_value(5e-324, "5e-324");
    check_value(NAN, "NaN");
    check_value(INFINITY, "+Inf");
    check_value(-INFINITY, "-Inf");
    check_value(0.30000000000000004, "0.30000000000000004");
    check_value(100, "100");
    check_value(1234.5, "1234.5");
    /* Every value reads back exactly. */
    for (int i = 0; i < 2000; i++) {
        double v = ldexp((double)rand() / RAND_MAX, rand() % 200 - 100) * (i % 2 ? -1 : 1);
        char out[48];
        json_format_value(v, out);
        assert_true(strtod(out, NULL) == v);
    }
}

static void test_times_and_strings(void **state)
{
    (void)state;
    struct sbuf b;
    sbuf_init(&b, 0);
    json_time(&b, 1435781451781);
    sbuf_addc(&b, ' ');
    json_time(&b, 1500);
    sbuf_addc(&b, ' ');
    json_time(&b, 7000);
    sbuf_addc(&b, ' ');
    json_time(&b, -1500);
    sbuf_addc(&b, ' ');
    json_time(&b, 10);
    sbuf_addc(&b, ' ');
    json_str(&b, "a\"b\\c\n\x01é");
    assert_string_equal(b.buf, "1435781451.781 1.5 7 -1.5 0.01 \"a\\\"b\\\\c\\n\\u0001é\"");
    sbuf_release(&b);
}

/* A point is [time,"value"]: json_time and json_value's text, in one append. */
static void test_points(void **state)
{
    (void)state;
    static const int64_t ts[] = {1435781451781, 0, -1500, INT64_MAX, INT64_MIN + 1};
    static const double vs[] = {0.3148148148148148, -0.0, 1e300, -2.5e-7, 42};
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
        struct sbuf want, got;
        sbuf_init(&want, 0);
        sbuf_init(&got, 0);
        sbuf_addc(&want, '[');
        json_time(&want, ts[i]);
        sbuf_addc(&want, ',');
        json_value(&want, vs[i]);
        sbuf_addc(&want, ']');
        json_point(&got, ts[i], vs[i]);
        assert_string_equal(got.buf, want.buf);
        sbuf_release(&want);
        sbuf_release(&got);
    }
    struct sbuf b;
    sbuf_init(&b, 0);
    json_point(&b, 1500, 1.0 / 0.0);
    json_point(&b, 10, 0.0 / 0.0);
    assert_string_equal(b.buf, "[1.5,\"+Inf\"][0.01,\"NaN\"]");
    sbuf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_times_and_strings),
        cmocka_unit_test(test_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
