/*
 * statsd_test.c: the StatsD line parser on good and hostile input, the
 * aggregation into series (counters, gauge deltas, timers into buckets,
 * sets, sample rates, tags, caps), the config parser's positions, and the
 * real listener thread fed by a UDP socket on loopback.
 */
#include "testutil.h"
#include "statsd/statsd.h"
#include "util/yamlcfg.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse(const char *s, struct statsd_line *l, enum statsd_bad *why)
{
    return statsd_parse_line(s, strlen(s), l, why);
}

static void test_parse_good(void **state)
{
    (void)state;
    struct statsd_line l;
    enum statsd_bad why;
    assert_int_equal(parse("api.requests:3|c|@0.5|#env:prod,az:b,bare", &l, &why), 0);
    assert_string_equal(l.name, "api_requests");
    assert_int_equal(l.type, STATSD_COUNTER);
    assert_true(l.nvalues == 1 && l.values[0] == 3 && l.rate == 0.5);
    assert_int_equal(l.ntags, 2);
    assert_string_equal(l.tags[0].key, "az"); /* sorted */
    assert_string_equal(l.tags[1].value, "prod");
    assert_int_equal(parse("q-depth:-4|g", &l, &why), 0);
    assert_true(l.values[0] == -4 && l.delta[0]);
    assert_string_equal(l.name, "q_depth");
    assert_int_equal(parse("9lives:4|g|c:abc|T1656581400", &l, &why), 0);
    assert_true(!l.delta[0] && strcmp(l.name, "_9lives") == 0);
    assert_int_equal(parse("t:1:2.5:300|ms", &l, &why), 0);
    assert_int_equal(l.nvalues, 3);
    assert_true(l.values[0] == 0.001 && l.values[1] == 0.0025 && l.values[2] == 0.3); /* seconds */
    assert_int_equal(parse("users:al:ice|s", &l, &why), 0);
    assert_true(l.member_len == 6 && memcmp(l.member, "al:ice", 6) == 0);
    assert_int_equal(parse("d:1e3|d|#k:\xc3\xa9t\xc3\xa9", &l, &why), 0);
    assert_int_equal(l.type, STATSD_HISTOGRAM);
}

static void test_parse_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum statsd_bad why;
    } cases[] = {
        {"", STATSD_BAD_FORMAT},
        {"noval", STATSD_BAD_FORMAT},
        {"a:1", STATSD_BAD_FORMAT},
        {":1|c", STATSD_BAD_FORMAT},
        {"a:|c", STATSD_BAD_FORMAT},
        {"a:1|", STATSD_BAD_TYPE},
        {"a:1|x", STATSD_BAD_TYPE},
        {"a:1|cc", STATSD_BAD_TYPE},
        {"a:x|c", STATSD_BAD_VALUE},
        {"a:0x10|c", STATSD_BAD_VALUE},
        {"a:nan|g", STATSD_BAD_VALUE},
        {"a:inf|g", STATSD_BAD_VALUE},
        {"a:1e999|g", STATSD_BAD_VALUE},
        {"a:-1|c", STATSD_BAD_VALUE},
        {"a:-1|ms", STATSD_BAD_VALUE},
        {"a:1:|c", STATSD_BAD_VALUE},
        {"a:1|c|@0", STATSD_BAD_RATE},
        {"a:1|c|@2", STATSD_BAD_RATE},
        {"a:1|c|@", STATSD_BAD_RATE},
        {"a:1|c|#__x:1", STATSD_BAD_TAG},
        {"a:1|h|#le:1", STATSD_BAD_TAG},
        {"a:1|c|#k:1,k:2", STATSD_BAD_TAG},
        {"a:1|c|#k:\xff\xfe", STATSD_BAD_TAG},
        {"a:1|c|#k:\xc0\xaf", STATSD_BAD_TAG},     /* overlong '/' */
        {"a:1|c|#k:\xed\xa0\x80", STATSD_BAD_TAG}, /* surrogate */
        {"a:1|c|#k:\xe2\x82", STATSD_BAD_TAG},     /* truncated sequence */
        {"a:1|c|#a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1", STATSD_BAD_TAG},
    };
    struct statsd_line l;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum statsd_bad why = STATSD_BAD_NREASONS;
        if (parse(cases[i].in, &l, &why) != -1 || why != cases[i].why)
            fail_msg("case %zu '%s': why %d, want %d", i, cases[i].in, why, cases[i].why);
    }
    /* NUL byte inside the line. */
    enum statsd_bad why;
    assert_int_equal(statsd_parse_line("a:1\0|c", 6, &l, &why), -1);
    assert_int_equal(why, STATSD_BAD_FORMAT);
    /* Overlong name, tag value, value list, set member. */
    char big[70000];
    memset(big, 'n', sizeof(big));
    memcpy(big + 300, ":1|c", 5);
    assert_int_equal(parse(big, &l, &why), -1);
    assert_int_equal(why, STATSD_BAD_NAME);
    memset(big, '1', sizeof(big));
    memcpy(big, "a:", 2);
    memcpy(big + 5000, "|g", 3);
    assert_int_equal(parse(big, &l, &why), -1);
    assert_int_equal(why, STATSD_BAD_VALUE);
    char line[1024] = "a:1|c|#k:";
    memset(line + 9, 'v', 300);
    line[309] = 0;
    assert_int_equal(parse(line, &l, &why), -1);
    assert_int_equal(why, STATSD_BAD_TAG);
    /* Not NUL-terminated: the parser must not read past len. */
    char *exact = xmalloc(4);
    memcpy(exact, "a:1|", 4);
    assert_int_equal(statsd_parse_line(exact, 4, &l, &why), -1);
    free(exact);
}

static int parse_node(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    return statsd_config_parse_node(cfg, file, doc, root, errors);
}

static struct statsd *new_statsd(const char *yaml)
{
    struct statsd_config c;
    statsd_config_defaults(&c);
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    if (yaml && yamlcfg_parse_text("t.yml", yaml, &err, parse_node, &c) < 0)
        fail_msg("config: %s", err.buf);
    sbuf_release(&err);
    struct statsd_opts o = {.config = &c};
    struct statsd *s = statsd_new(&o);
    statsd_config_release(&c);
    return s;
}

static void feed(struct statsd *s, const char *pkt, int64_t now)
{
    statsd_feed(s, pkt, strlen(pkt), now);
}

static void test_aggregate(void **state)
{
    (void)state;
    struct statsd *s = new_statsd("max_series: 8\nset_window: 10s\n");
    int64_t t0 = 1700000000000;
    feed(s, "hits:1|c|#route:/a\nhits:1|c|@0.1|#route:/a\nhits:2|c|#route:/b\n", t0);
    feed(s, "q:10|g\nq:+5|g\nq:-3|g\nlat:2|ms\nlat:700:20000|ms\n", t0);
    feed(s, "u:alice|s\nu:bob|s\nu:alice|s\n", t0);
    feed(s, "bad\nq:1|c\n\r\n", t0); /* malformed, type conflict, blank */
    statsd_tick(s, t0 + 1000);
    const struct metric_buf *b = statsd_last(s);
    double v;
    assert_true(tu_find(b, "hits_total", "route=\"/a\"", &v) && fabs(v - 11) < 1e-9);
    assert_true(tu_find(b, "hits_total", "route=\"/b\"", &v) && v == 2);
    assert_true(tu_find(b, "q", "", &v) && v == 12);
    assert_true(tu_find(b, "lat_bucket", "le=\"0.005\"", &v) && v == 1);
    assert_true(tu_find(b, "lat_bucket", "le=\"1\"", &v) && v == 2);
    assert_true(tu_find(b, "lat_bucket", "le=\"10\"", &v) && v == 2);
    assert_true(tu_find(b, "lat_bucket", "le=\"+Inf\"", &v) && v == 3);
    assert_true(tu_find(b, "lat_count", "", &v) && v == 3);
    assert_true(tu_find(b, "lat_sum", "", &v) && fabs(v - 20.702) < 1e-9);
    assert_true(tu_find(b, "u", "", &v) && v == 2); /* the open window, before one closed */
    assert_true(tu_find(b, "sitrep_statsd_bad_lines_total", "reason=\"format\"", &v) && v == 1);
    assert_true(tu_find(b, "sitrep_statsd_bad_lines_total", "reason=\"type_conflict\"", &v) &&
                v == 1);
    assert_true(tu_find(b, "sitrep_statsd_lines_total", "", &v) && v == 13);
    /* The next window: a new member, then the closed window's count is what shows. */
    feed(s, "u:carol|s\n", t0 + 10000);
    statsd_tick(s, t0 + 11000);
    assert_true(tu_find(statsd_last(s), "u", "", &v) && v == 2);
    statsd_tick(s, t0 + 20000);
    assert_true(tu_find(statsd_last(s), "u", "", &v) && v == 1);
    statsd_tick(s, t0 + 45000); /* windows with nothing in them */
    assert_true(tu_find(statsd_last(s), "u", "", &v) && v == 0);
    /* The series cap: 5 exist (hits x2, q, lat, u); 3 more fit, the rest are dropped. */
    for (int i = 0; i < 10; i++) {
        char pkt[64];
        snprintf(pkt, sizeof(pkt), "c%d:1|c", i);
        feed(s, pkt, t0 + 46000);
    }
    statsd_tick(s, t0 + 47000);
    b = statsd_last(s);
    assert_true(tu_find(b, "sitrep_statsd_series", "", &v) && v == 8);
    assert_true(tu_find(b, "sitrep_statsd_series_dropped_total", "", &v) && v == 7);
    assert_true(tu_find(b, "c2_total", "", NULL) && !tu_find(b, "c3_total", "", NULL));
    statsd_free(s);
}

/*
 * A classic histogram's buckets (cumulative, +Inf last), _sum and _count:
 * counts exactly, the sum to rounding. tags is "" or `k="v"`.
 */
static void check_hist(const struct metric_buf *b, const char *name, const char *tags,
                       const char *const *les, const double *want, size_t n, double sum,
                       double count)
{
    char fam[128], lab[256];
    double v;
    snprintf(fam, sizeof(fam), "%s_bucket", name);
    assert_int_equal(tu_count(b, fam) % n, 0); /* no bucket beside those listed */
    for (size_t i = 0; i < n; i++) {
        snprintf(lab, sizeof(lab), "%s%sle=\"%s\"", tags, *tags ? "," : "", les[i]);
        if (!tu_find(b, fam, lab, &v) || v != want[i])
            fail_msg("%s{%s}: %g, want %g", fam, lab, tu_find(b, fam, lab, &v) ? v : -1, want[i]);
    }
    snprintf(fam, sizeof(fam), "%s_count", name);
    if (!tu_find(b, fam, tags, &v) || v != count)
        fail_msg("%s{%s}: %g, want %g", fam, tags, v, count);
    snprintf(fam, sizeof(fam), "%s_sum", name);
    if (!tu_find(b, fam, tags, &v) || fabs(v - sum) > 1e-9)
        fail_msg("%s{%s}: %.17g, want %g", fam, tags, v, sum);
}

/*
 * |h and |d land in histogram_buckets in their own unit, |ms in
 * timer_buckets in seconds; a value on a bound counts in that bound's
 * bucket (le is <=); a sampled timer value counts 1/rate times, in the
 * buckets, _count and _sum alike (docs/SIGNALS.md).
 */
static void test_histograms(void **state)
{
    (void)state;
    struct statsd *s = new_statsd("histogram_buckets: [1, 5, 10]\n");
    int64_t t0 = 1700000000000;
    feed(s, "size:0.5:1|h\nsize:3|h\nsize:5|h\nsize:11|h\n", t0);
    feed(s, "dist:-2|d\ndist:10|d\ndist:10.5|d|#k:v\n", t0);
    feed(s, "t:250|ms|@0.1\n", t0); /* two packets: 20 observations of 0.25 s */
    feed(s, "t:250|ms|@0.1\nt:5|ms\nt:1:3000|ms|@0.5\n", t0);
    statsd_tick(s, t0 + 1000);
    const struct metric_buf *b = statsd_last(s);
    static const char *const hle[] = {"1", "5", "10", "+Inf"};
    check_hist(b, "size", "", hle, (const double[]){2, 4, 4, 5}, 4, 20.5, 5);
    /* Same name, other tags: another series; |d and |h are one type. */
    check_hist(b, "dist", "", hle, (const double[]){1, 1, 2, 2}, 4, 8, 2);
    check_hist(b, "dist", "k=\"v\"", hle, (const double[]){0, 0, 0, 1}, 4, 10.5, 1);
    static const char *const tle[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                      "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
    /* 5 ms and 1 ms (x2) in le=0.005; 250 ms (x10 x2) on the 0.25 bound; 3 s (x2). */
    static const double tw[] = {3, 3, 3, 3, 3, 23, 23, 23, 23, 25, 25, 25};
    check_hist(b, "t", "", tle, tw, ARRAY_SIZE(tle), 20 * 0.25 + 0.005 + 2 * 0.001 + 2 * 3, 25);
    statsd_free(s);
    /* Fractional milliseconds on a bound: 2.1 / 1000.0 would be an ulp above 0.0021. */
    s = new_statsd("timer_buckets: [0.0021, 0.0049]\n");
    feed(s, "e:2.1|ms\ne:2.1e0|ms\ne:4.9|ms\ne:0.0049e3|ms\ne:4900E-3|ms\n", t0);
    statsd_tick(s, t0 + 1000);
    static const char *const ele[] = {"0.0021", "0.0049", "+Inf"};
    check_hist(statsd_last(s), "e", "", ele, (const double[]){2, 5, 5}, 3, 0.0189, 5);
    statsd_free(s);
}

static void test_config(void **state)
{
    (void)state;
    struct statsd_config c;
    statsd_config_defaults(&c);
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    const char *y = "listen: 127.0.0.1:9125\n"
                    "max_series: 0\n"
                    "timer_buckets: [0.1, 0.05]\n"
                    "set_window: 1y\n"
                    "bogus: 1\n";
    assert_int_equal(yamlcfg_parse_text("s.yml", y, &err, parse_node, &c), -1);
    assert_non_null(strstr(err.buf, "s.yml:2:13: statsd.max_series"));
    assert_non_null(strstr(err.buf, "s.yml:3:22: statsd.timer_buckets"));
    assert_non_null(strstr(err.buf, "s.yml:4:13: statsd.set_window"));
    assert_non_null(strstr(err.buf, "s.yml:5:1: statsd: unknown key 'bogus'"));
    assert_string_equal(c.listen, "127.0.0.1:9125");
    assert_true(c.enabled);
    statsd_config_release(&c);
    statsd_config_defaults(&c);
    sbuf_reset(&err);
    assert_int_equal(yamlcfg_parse_text("s.yml", "enabled: false\nhistogram_buckets: [1, 10]\n",
                                        &err, parse_node, &c),
                     0);
    assert_true(!c.enabled && c.nhistogram_buckets == 2);
    statsd_config_release(&c);
    sbuf_release(&err);
}

/* The thread's batches, counted by a sink that keeps the latest value of one series. */
struct seen {
    pthread_mutex_t mu;
    double hits, bad;
    int batches;
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct seen *s = ctx;
    double v;
    pthread_mutex_lock(&s->mu);
    s->batches++;
    if (tu_find(b, "hits_total", "env=\"e2e\"", &v))
        s->hits = v;
    if (tu_find(b, "sitrep_statsd_bad_lines_total", "reason=\"format\"", &v))
        s->bad = v;
    pthread_mutex_unlock(&s->mu);
}

static void test_udp_listener(void **state)
{
    (void)state;
    struct statsd_config c;
    statsd_config_defaults(&c);
    c.enabled = 1;
    free(c.listen);
    c.listen = xstrdup("127.0.0.1:0");
    struct seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct statsd_opts o = {.config = &c, .sink = sink, .sink_ctx = &seen};
    struct statsd *s = statsd_new(&o);
    statsd_config_release(&c);
    assert_int_equal(statsd_start(s), 0);
    int port = statsd_port(s);
    assert_true(port > 0);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    for (int i = 0; i < 100; i++) {
        const char *pkt = i % 10 ? "hits:1|c|#env:e2e" : "garbage\nhits:1|c|#env:e2e";
        sendto(fd, pkt, strlen(pkt), 0, (struct sockaddr *)&to, sizeof(to));
    }
    /* 65000 bytes of junk: one more bad line, read whole. */
    char *big = xmalloc(65000);
    memset(big, 'x', 65000);
    sendto(fd, big, 65000, 0, (struct sockaddr *)&to, sizeof(to));
    free(big);
    close(fd);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        usleep(100000);
        pthread_mutex_lock(&seen.mu);
        ok = seen.hits == 100 && seen.bad == 11;
        pthread_mutex_unlock(&seen.mu);
    }
    statsd_stop(s);
    if (!ok)
        fail_msg("hits %g bad %g after %d batches", seen.hits, seen.bad, seen.batches);
    struct sbuf out;
    sbuf_init(&out, 1 << 20);
    assert_int_equal(statsd_expose(s, &out), 0);
    assert_non_null(strstr(out.buf, "hits_total{env=\"e2e\"} 100"));
    sbuf_release(&out);
    statsd_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_aggregate),  cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_config),     cmocka_unit_test(test_udp_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
