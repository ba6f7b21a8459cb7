/* dtoa_test.c: Grisu2's digits read back exactly, and are (nearly always) the shortest. */
#include "testutil.h"
#include "util/dtoa.h"

#include <float.h>
#include <math.h>

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Shortest digits by brute force: the fewest %.*e digits that read back. */
static int shortest_len(double v)
{
    char buf[40];
    for (int p = 0; p < 17; p++) {
        snprintf(buf, sizeof(buf), "%.*e", p, v);
        if (strtod(buf, NULL) == v)
            return p + 1;
    }
    return 17;
}

static int longer; /* values printed one digit longer than the shortest */

static void check(double v, int check_short)
{
    char d[24], s[48];
    int e, n = util_dtoa_digits(v, d, &e);
    assert_true(n >= 1 && n <= 17 && d[0] != '0' && d[n - 1] != '0');
    snprintf(s, sizeof(s), "%c.%se%d", d[0], d + 1, e);
    if (strtod(s, NULL) != v)
        fail_msg("%.17g printed as %s", v, s);
    if (check_short) {
        int want = shortest_len(v);
        if (n < want)
            fail_msg("%.17g: %d digits (%s), fewer than the shortest %d?", v, n, s, want);
        longer += n > want; /* Grisu2's known misses, e.g. 1e23 as 9.999999999999999e22 */
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    double edge[] = {DBL_MIN,
                     DBL_MAX,
                     5e-324,
                     1e-323,
                     2.2250738585072009e-308,
                     1,
                     2,
                     0.1,
                     0.2,
                     0.3,
                     1e21,
                     1e22,
                     1e23,
                     9007199254740993.0,
                     123456789.123,
                     1.5,
                     100,
                     1e-7,
                     0.30000000000000004,
                     4.35,
                     1e300,
                     1.7976931348623155e308};
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        check(edge[i], 1);
    for (int p = -1074; p <= 1023; p++)
        check(ldexp(1, p), 0);
    for (int p = -323; p <= 308; p++)
        check(pow(10, p), 0);
    /* Random bit patterns, and numbers like monitoring data (decimals, counters, ratios). */
    for (int i = 0; i < 600000; i++) {
        uint64_t b = rnd64() & ~(1ull << 63);
        double v;
        memcpy(&v, &b, 8);
        if (isfinite(v) && v > 0)
            check(v, i < 20000);
    }
    for (int i = 0; i < 100000; i++) {
        double v = (double)(rnd64() % 100000000) / pow(10, (double)(rnd64() % 12));
        if (v > 0)
            check(v, i < 20000);
        check((double)(rnd64() % 1000000 + 1) / 7.0, i < 2000);
    }
    print_message("%d of about 42000 checked values printed longer than the shortest\n", longer);
    assert_true(longer < 420); /* under 1% */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
