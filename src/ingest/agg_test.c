/*
 * agg_test.c: per-service aggregates and their series (agg.c): requests and
 * errors by method, status class and route; bytes; the latency histogram
 * (cumulative, 5 s an edge); retries after 429/503 within the window; the
 * route table's cap and the rule that 404s do not create routes;
 * configured route patterns; counters; top clients and distinct clients;
 * and bounded memory and series under a flood of distinct URLs and clients.
 */
#include "testutil.h"
#include "ingest/ingest_internal.h"

#include <math.h>

static struct ingest__rec rec(const char *method, const char *target, int status, uint64_t bytes,
                              double dur, const char *client, const char *time)
{
    struct ingest__rec r = {
        .method = {method, strlen(method)},
        .target = {target, strlen(target)},
        .client = {client, strlen(client)},
        .time = {time, strlen(time)},
        .status = status,
        .bytes = bytes,
        .duration_s = dur,
    };
    return r;
}

static void observe(struct ingest__service *s, const char *method, const char *target, int status,
                    uint64_t bytes, double dur, const char *client)
{
    struct ingest__rec r = rec(method, target, status, bytes, dur, client, "");
    ingest__service_observe(s, &r, 1000000);
}

static struct ingest__service *new_service(struct ingest_log *l)
{
    struct ingest__service *s = xcalloc(1, sizeof(*s));
    char err[256];
    if (!l->service)
        l->service = "web";
    assert_int_equal(ingest__service_init(s, l, err, sizeof(err)), 0);
    return s;
}

static void free_service(struct ingest__service *s)
{
    ingest__service_release(s);
    free(s);
}

static void emit(struct ingest__service *s, struct metric_buf *b)
{
    metric_buf_reset(b, 1000);
    ingest__services_emit(&s, 1, b, 1);
}

static void test_red(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    struct ingest__service *s = new_service(&l);
    observe(s, "GET", "/users/1?x", 200, 100, 0.003, "10.0.0.1");
    observe(s, "GET", "/users/2", 200, 50, 0.2, "10.0.0.1");
    observe(s, "GET", "/users/3", 503, 10, 5.0, "10.0.0.2");
    observe(s, "POST", "/users/4", 201, 0, 5.001, "10.0.0.2");
    observe(s, "BREW", "/users/5", 500, 0, 100, "10.0.0.3");
    observe(s, "GET", "/", 304, 0, -1, "10.0.0.3");
    struct metric_buf b;
    metric_buf_init(&b);
    emit(s, &b);
    const char *u = "route=\"/users/:num\"";
    char l1[256];
#define L(fmt) (snprintf(l1, sizeof(l1), fmt, u), l1)
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              L("service=\"web\",method=\"GET\",code=\"2xx\",%s")),
                     2);
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              L("service=\"web\",method=\"GET\",code=\"5xx\",%s")),
                     1);
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              L("service=\"web\",method=\"POST\",code=\"2xx\",%s")),
                     1);
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              L("service=\"web\",method=\"other\",code=\"5xx\",%s")),
                     1);
    /* a 304 to an unknown path makes no route */
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              "service=\"web\",method=\"GET\",code=\"3xx\",route=\"other\""),
                     1);
    assert_int_equal(tu_count(&b, "accesslog_requests_total"), 5);
    assert_int_equal(tu_value(&b, "accesslog_errors_total", L("service=\"web\",method=\"GET\",%s")),
                     1);
    assert_int_equal(
        tu_value(&b, "accesslog_errors_total", L("service=\"web\",method=\"POST\",%s")), 0);
    assert_int_equal(
        tu_value(&b, "accesslog_errors_total", L("service=\"web\",method=\"other\",%s")), 1);
    assert_int_equal(tu_value(&b, "accesslog_response_bytes_total", L("service=\"web\",%s")), 160);
    /* histogram: cumulative; exactly 5 s is not slow, 5.001 s is */
    static const struct {
        const char *le;
        int n;
    } want[] = {{"0.005", 1}, {"0.01", 1}, {"0.25", 2}, {"2.5", 2},
                {"5", 3},     {"10", 4},   {"60", 4},   {"+Inf", 5}};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        snprintf(l1, sizeof(l1), "service=\"web\",%s,le=\"%s\"", u, want[i].le);
        assert_int_equal(tu_value(&b, "accesslog_request_duration_seconds_bucket", l1), want[i].n);
    }
    assert_int_equal(tu_count(&b, "accesslog_request_duration_seconds_bucket"), INGEST__NBUCKETS);
    assert_int_equal(
        tu_value(&b, "accesslog_request_duration_seconds_count", L("service=\"web\",%s")), 5);
    assert_float_equal(
        tu_value(&b, "accesslog_request_duration_seconds_sum", L("service=\"web\",%s")),
        0.003 + 0.2 + 5.0 + 5.001 + 100, 1e-9);
    /* no time: no histogram series for route other */
    assert_false(tu_find(&b, "accesslog_request_duration_seconds_count",
                         "service=\"web\",route=\"other\"", NULL));
    tu_assert_prefix_type(&b, "accesslog_request", METRIC_COUNTER);
    /* counters stay cumulative across emits */
    observe(s, "GET", "/users/9", 200, 1, 0.001, "10.0.0.1");
    emit(s, &b);
    assert_int_equal(tu_value(&b, "accesslog_requests_total",
                              L("service=\"web\",method=\"GET\",code=\"2xx\",%s")),
                     3);
#undef L
    metric_buf_release(&b);
    free_service(s);
}

static void test_retries(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    l.retry_window_ms = 10000;
    struct ingest__service *s = new_service(&l);
    struct ingest__rec r;
    /* the line's own time decides the window (a backlog read at once is not a burst) */
#define AT(client, target, status, t)                                                              \
    (r = rec("GET", target, status, 0, -1, client, t), ingest__service_observe(s, &r, 0))
    AT("c1", "/api", 200, "10/Oct/2000:13:55:00 +0000");
    AT("c1", "/api", 200, "10/Oct/2000:13:55:01 +0000"); /* before any 503: no retry */
    AT("c1", "/api", 503, "10/Oct/2000:13:55:02 +0000");
    AT("c1", "/api", 503, "10/Oct/2000:13:55:03 +0000");   /* retry 1, still busy */
    AT("c1", "/api", 200, "10/Oct/2000:13:55:13 +0000");   /* retry 2: 10 s after the last 503 */
    AT("c1", "/api", 200, "10/Oct/2000:13:55:14 +0000");   /* 11 s: no */
    AT("c2", "/api", 200, "10/Oct/2000:13:55:04 +0000");   /* another client: no */
    AT("c1", "/other", 200, "10/Oct/2000:13:55:04 +0000"); /* another route: no */
    AT("c3", "/api", 429, "10/Oct/2000:13:56:00 +0000");
    AT("c3", "/api", 200, "10/Oct/2000:13:56:11 +0000"); /* 11 s later: no */
#undef AT
    /* without a time in the line, the ingestion time */
    r = rec("GET", "/api", 429, 0, -1, "c4", "");
    ingest__service_observe(s, &r, 50000);
    r = rec("GET", "/api", 200, 0, -1, "c4", "");
    ingest__service_observe(s, &r, 55000); /* retry 3 */
    ingest__service_observe(s, &r, 70000); /* 20 s: no */
    struct metric_buf b;
    metric_buf_init(&b);
    emit(s, &b);
    assert_int_equal(tu_value(&b, "accesslog_retries_total", "service=\"web\",route=\"/api\""), 3);
    assert_false(tu_find(&b, "accesslog_retries_total", "service=\"web\",route=\"/other\"", NULL));
    metric_buf_release(&b);
    free_service(s);
}

static void test_route_cap(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    l.max_routes = 3;
    char *routes[] = {"/static/**", "/users/:id"};
    l.routes = routes;
    l.nroutes = 2;
    struct ingest__service *s = new_service(&l);
    observe(s, "GET", "/a", 200, 0, -1, "");
    observe(s, "GET", "/b", 404, 0, -1, ""); /* 404: no route made */
    observe(s, "GET", "/b", 500, 0, -1, ""); /* 5xx: made */
    observe(s, "GET", "/b", 404, 0, -1, ""); /* now known: counted there */
    observe(s, "GET", "/c/1", 201, 0, -1, "");
    observe(s, "GET", "/d", 200, 0, -1, ""); /* table full */
    observe(s, "GET", "/static/css/x.css", 200, 0, -1, "");
    observe(s, "GET", "/users/alice", 200, 0, -1, "");
    observe(s, "GET", "/a?q=1", 200, 0, -1, "");
    struct metric_buf b;
    metric_buf_init(&b);
    emit(s, &b);
    static const struct {
        const char *route, *code;
        int n;
    } want[] = {
        {"/a", "2xx", 2},         {"/b", "4xx", 1},         {"/b", "5xx", 1},
        {"/c/:num", "2xx", 1},    {"other", "4xx", 1},      {"other", "2xx", 1},
        {"/static/**", "2xx", 1}, {"/users/:id", "2xx", 1},
    };
    char lb[256];
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        snprintf(lb, sizeof(lb), "service=\"web\",method=\"GET\",code=\"%s\",route=\"%s\"",
                 want[i].code, want[i].route);
        assert_int_equal(tu_value(&b, "accesslog_requests_total", lb), want[i].n);
    }
    assert_int_equal(tu_count(&b, "accesslog_requests_total"), ARRAY_SIZE(want));
    assert_int_equal(tu_value(&b, "sitrep_ingest_routes", "service=\"web\""), 3);
    assert_int_equal(tu_value(&b, "sitrep_ingest_routes_overflow_total", "service=\"web\""), 1);
    metric_buf_release(&b);
    free_service(s);
}

static void test_counters(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    struct ingest_counter c[] = {{"login", "POST /login"}, {"bots", "(?i)bot"}};
    l.counters = c;
    l.ncounters = 2;
    struct ingest__service *s = new_service(&l);
    const char *lines[] = {"x \"POST /login HTTP/1.1\" 200", "x \"GET /login\" Googlebot",
                           "x \"POST /login\" BOT", "nothing"};
    for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
        ingest__service_match_line(s, lines[i], strlen(lines[i]));
    struct metric_buf b;
    metric_buf_init(&b);
    emit(s, &b);
    assert_int_equal(
        tu_value(&b, "accesslog_counter_matches_total", "service=\"web\",counter=\"login\""), 2);
    assert_int_equal(
        tu_value(&b, "accesslog_counter_matches_total", "service=\"web\",counter=\"bots\""), 2);
    metric_buf_release(&b);
    free_service(s);
}

static void test_clients(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    struct ingest__service *s = new_service(&l);
    char client[32];
    /* 12 clients; client i sends 10 * (i + 1) requests, the busiest half of them 5xx */
    for (int i = 0; i < 12; i++)
        for (int k = 0; k < 10 * (i + 1); k++) {
            snprintf(client, sizeof(client), "192.0.2.%d", i);
            observe(s, "GET", "/", i == 11 && k % 2 ? 502 : 200, 0, -1, client);
        }
    observe(s, "GET", "/", 200, 0, -1, ""); /* no client: counted, not in the sketch */
    struct metric_buf b;
    metric_buf_init(&b);
    emit(s, &b);
    assert_int_equal(tu_count(&b, "accesslog_top_client_requests_per_second"), INGEST_TOP_CLIENTS);
    assert_false(tu_find(&b, "accesslog_top_client_requests_per_second",
                         "service=\"web\",client=\"192.0.2.1\"", NULL));
    double d = exp(-1.0 / 60), rate = tu_value(&b, "accesslog_top_client_requests_per_second",
                                               "service=\"web\",client=\"192.0.2.11\"");
    assert_float_equal(rate, 120 * (1 - d), 1e-9);
    assert_float_equal(tu_value(&b, "accesslog_top_client_errors_per_second",
                                "service=\"web\",client=\"192.0.2.11\""),
                       60 * (1 - d), 1e-9);
    assert_float_equal(
        tu_value(&b, "accesslog_top_client_share", "service=\"web\",client=\"192.0.2.11\""),
        120.0 / 781, 1e-9);
    /* the first sample is the busiest */
    const struct metric_fam_rec *f = tu_fam_must(&b, "accesslog_top_client_requests_per_second");
    char lb[256];
    tu_labels(&b, &b.samples[f->first], lb, sizeof(lb));
    assert_string_equal(lb, "service=\"web\",client=\"192.0.2.11\"");
    assert_int_equal(tu_value(&b, "accesslog_clients_distinct_total", "service=\"web\""), 12);
    tu_assert_prefix_type(&b, "accesslog_top_client", METRIC_GAUGE);
    /* after the tick's decay the rates fall, the distinct count does not */
    emit(s, &b);
    assert_float_equal(tu_value(&b, "accesslog_top_client_requests_per_second",
                                "service=\"web\",client=\"192.0.2.11\""),
                       rate * d, 1e-9);
    assert_int_equal(tu_value(&b, "accesslog_clients_distinct_total", "service=\"web\""), 12);
    metric_buf_release(&b);
    free_service(s);
}

/*
 * A million requests with distinct URLs and distinct clients: the route
 * table stops at max_routes, the batch stays the same size, and the
 * service's memory is what it was after the first thousand.
 */
static void test_bounded(void **state)
{
    (void)state;
    struct ingest_log l;
    ingest_log_defaults(&l);
    struct ingest__service *s = new_service(&l);
    char target[64], client[64];
    struct metric_buf b;
    metric_buf_init(&b);
    size_t samples_at_10k = 0;
    for (int i = 0; i < 1000000; i++) {
        snprintf(target, sizeof(target), "/p%d/x", i);
        snprintf(client, sizeof(client), "c%d", i);
        observe(s, i % 3 ? "GET" : "PUT", target, 200 + (i % 4) * 100, 1, 0.01, client);
        if (i == 10000) {
            emit(s, &b);
            samples_at_10k = b.nsamples;
        }
    }
    emit(s, &b);
    assert_int_equal(s->nroutes, 1 + INGEST_DEFAULT_MAX_ROUTES);
    assert_int_equal(b.nsamples, samples_at_10k);
    assert_true(s->routes_overflow > 400000); /* the 2xx and 5xx half */
    double distinct = tu_value(&b, "accesslog_clients_distinct_total", "service=\"web\"");
    assert_true(fabs(distinct - 1e6) < 0.05e6);
    metric_buf_release(&b);
    free_service(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_red),       cmocka_unit_test(test_retries),
        cmocka_unit_test(test_route_cap), cmocka_unit_test(test_counters),
        cmocka_unit_test(test_clients),   cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
