/*
 * route_test.c: route normalisation (ids and query strings collapsed, the
 * length cap, hostile bytes), its idempotence, configured route patterns,
 * and the cleaning of client addresses into label values.
 */
#include "testutil.h"
#include "ingest/ingest_internal.h"

static const char *norm(const char *t, size_t n, char *out)
{
    ingest__route_normalise(t, n, out);
    return out;
}

static void test_normalise(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"/users/123/orders?page=2", "/users/:num/orders"},
        {"/users/456/orders", "/users/:num/orders"},
        {"/u/550e8400-e29b-41d4-a716-446655440000", "/u/:uuid"},
        {"/u/550E8400-E29B-41D4-A716-446655440000/x", "/u/:uuid/x"},
        {"/commit/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commit/:hex"},
        {"/blob/deadbeef01", "/blob/:hex"},
        {"/words/deadbeef", "/words/deadbeef"}, /* hex letters only: a word */
        {"/short/abc123", "/short/abc123"},     /* too short for a hex id */
        {"/v2/items/", "/v2/items/"},
        {"//a///b//", "/a/b/"},
        {"/a#frag", "/a"},
        {"/search?q=/etc/passwd", "/search"},
        {"?only=query", "other"},
        {"", "other"},
        {"*", "other"},
        {"-", "other"},
        {"users/1", "other"},
        {"http://example.com/a/1?x", "/a/:num"},
        {"https://example.com", "/"},
        {"HTTP://example.com/A", "/A"},
        {"/a b/\x01\x7f\xff", "/a_b/___"},
        {"/%41/12", "/%41/:num"},
    };
    char out[INGEST_MAX_ROUTE_LEN + 1];
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        norm(cases[i].in, strlen(cases[i].in), out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("'%s': want '%s', got '%s'", cases[i].in, cases[i].want, out);
    }
    static const char nul[] = "/a\0b/7";
    assert_string_equal(norm(nul, sizeof(nul) - 1, out), "/a_b/:num");
}

/* Long paths are cut at a segment boundary, end in "/\x2a" and stay within the cap. */
static void test_cap(void **state)
{
    (void)state;
    char in[2048], out[INGEST_MAX_ROUTE_LEN + 1];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "/seg%02d", i);
    size_t len = ingest__route_normalise(in, n, out);
    assert_true(len <= INGEST_MAX_ROUTE_LEN);
    assert_int_equal(len, strlen(out));
    assert_string_equal(out + len - 2, "/*");
    assert_int_equal(strncmp(out, "/seg00/seg01/", 13), 0);
    /* one segment longer than the cap */
    memset(in, 'x', 1000);
    in[0] = '/';
    len = ingest__route_normalise(in, 1000, out);
    assert_string_equal(out, "/*");
}

/* Normalising a route again changes nothing (checked on random bytes too). */
static void test_idempotent(void **state)
{
    (void)state;
    char in[300], a[INGEST_MAX_ROUTE_LEN + 1], b[INGEST_MAX_ROUTE_LEN + 1];
    static const char alphabet[] = "/aZ09f-?#.:%_* \x01\xff";
    uint64_t x = 12345;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = (size_t)(iter % 300);
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            in[i] = alphabet[(x >> 33) % (sizeof(alphabet) - 1)];
        }
        if (n && iter % 3)
            in[0] = '/';
        size_t la = ingest__route_normalise(in, n, a);
        size_t lb = ingest__route_normalise(a, la, b);
        if (la > INGEST_MAX_ROUTE_LEN || lb != la || strcmp(a, b) != 0)
            fail_msg("not idempotent: '%.*s' -> '%s' -> '%s'", (int)n, in, a, b);
        for (size_t i = 0; i < la; i++)
            assert_true(a[i] > 0x20 && a[i] < 0x7f);
    }
}

static void test_match(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *target;
        int want;
    } cases[] = {
        {"/users/:id", "/users/42", 1},
        {"/users/:id", "/users/42?x=1", 1},
        {"/users/:id", "/users/42/orders", 0},
        {"/users/:id", "/users", 0},
        {"/users/:id", "/users/", 0},
        {"/users/*/orders", "/users/a/orders", 1},
        {"/static/**", "/static/css/site.css", 1},
        {"/static/**", "/static", 1},
        {"/static/**", "/statics/x", 0},
        {"/health", "/health", 1},
        {"/health", "//health/", 1},
        {"/health", "/Health", 0},
        {"/", "/", 1},
        {"/", "/a", 0},
        {"/a", "http://h/a", 1},
        {"/a", "-", 0},
        {"/**", "/anything/at/all", 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        if (ingest__route_match(cases[i].pat, cases[i].target, strlen(cases[i].target)) !=
            cases[i].want)
            fail_msg("%s vs %s: want %d", cases[i].pat, cases[i].target, cases[i].want);
}

static void test_check_route(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(ingest_check_route("/users/:id", err, sizeof(err)), 0);
    assert_int_equal(ingest_check_route("/static/**", err, sizeof(err)), 0);
    assert_int_equal(ingest_check_route("users", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_route("/a?b", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_route("/a b", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_route("/**/x", err, sizeof(err)), -1);
    assert_int_equal(ingest_check_route("/a**", err, sizeof(err)), -1);
    char long_route[200];
    memset(long_route, 'a', sizeof(long_route) - 1);
    long_route[0] = '/';
    long_route[sizeof(long_route) - 1] = '\0';
    assert_int_equal(ingest_check_route(long_route, err, sizeof(err)), -1);
}

static void test_client_clean(void **state)
{
    (void)state;
    char out[INGEST__CLIENT_MAX + 1];
    assert_int_equal(ingest__client_clean("203.0.113.1", 11, out, sizeof(out)), 11);
    assert_string_equal(out, "203.0.113.1");
    ingest__client_clean(" 198.51.100.2 , 10.0.0.1, 10.0.0.2", 34, out, sizeof(out));
    assert_string_equal(out, "198.51.100.2");
    ingest__client_clean("a\x01\xff\"b", 5, out, sizeof(out));
    assert_string_equal(out, "a__\"b"); /* quotes are fine in label values */
    char longc[200];
    memset(longc, '7', sizeof(longc));
    assert_int_equal(ingest__client_clean(longc, sizeof(longc), out, sizeof(out)),
                     INGEST__CLIENT_MAX);
    assert_int_equal(ingest__client_clean(", x", 3, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),   cmocka_unit_test(test_cap),
        cmocka_unit_test(test_idempotent),  cmocka_unit_test(test_match),
        cmocka_unit_test(test_check_route), cmocka_unit_test(test_client_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
