/*
 * scrape_test.c: the scraper against a real HTTP peer on loopback (Python's
 * http.server serving good, OpenMetrics, malformed, oversized, slow and
 * failing endpoints) and a closed port; the config parser's positions; the
 * exposition parser's new refusals (UTF-8, overlong names). Skips, saying
 * why, when python3 is missing.
 */
#include "testutil.h"
#include "testnet.h"
#include "ingest/expfmt.h"
#include "scrape/scrape.h"
#include "util/yamlcfg.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char peer_py[] =
    "import http.server, sys, time\n"
    "GOOD = b'# HELP app_requests_total Requests.\\n# TYPE app_requests_total counter\\n'\\\n"
    "       b'app_requests_total{code=\"200\",job=\"inner\"} 7\\n'\\\n"
    "       b'app_requests_total{code=\"500\",instance=\"\"} 2 1700000000000\\n'\\\n"
    "       b'# TYPE lat histogram\\nlat_bucket{le=\"1\"} 3\\nlat_bucket{le=\"+Inf\"} 4\\n'\\\n"
    "       b'lat_sum 2.5\\nlat_count 4\\nqueue_depth 12\\n'\n"
    "OM = b'# TYPE q gauge\\nq{name=\"jobs\"} 5 1700000000.5\\n# EOF\\n'\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def do_GET(self):\n"
    "        p, ct, code = self.path, 'text/plain; version=0.0.4', 200\n"
    "        if p == '/metrics': body = GOOD\n"
    "        elif p == '/om': body, ct = OM, 'application/openmetrics-text; version=1.0.0'\n"
    "        elif p == '/om-cut': body, ct = OM[:-6], 'application/openmetrics-text'\n"
    "        elif p == '/bad': body = b'ok 1\\nok{a=\"x\"} 2\\nbroken{ 3\\n'\n"
    "        elif p == '/utf8': body = b'x{a=\"\\xff\"} 1\\n'\n"
    "        elif p == '/big': body = b'# ' + b'x' * 300000 + b'\\n'\n"
    "        elif p == '/slow': time.sleep(3); body = GOOD\n"
    "        else: body, code = b'no', 500\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Type', ct)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    request_queue_size = 64\n"
    "    def handle_error(self, *a): pass\n"
    "S(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

static int have_python(void)
{
    return system("python3 -c 'import http.server' >/dev/null 2>&1") == 0;
}

static pid_t start_peer(int port, char *script, size_t cap)
{
    snprintf(script, cap, "/tmp/sitrep-scrape-peer-%d.py", (int)getpid());
    FILE *f = fopen(script, "w");
    fputs(peer_py, f);
    fclose(f);
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    char *argv[] = {"python3", script, ps, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "python3", NULL, NULL, argv, environ) != 0)
        return -1;
    if (tu_wait_port(port) < 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

/* Batches the sink saw, rendered as exposition text (one string per scrape). */
struct seen {
    struct sbuf text;
    int batches;
    int64_t ts[16];
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct seen *s = ctx;
    const struct metric_buf *bufs[] = {b};
    if (s->batches < 16)
        s->ts[s->batches] = b->ts_ms;
    s->batches++;
    metric_expose(bufs, 1, &s->text);
}

static int parse_node(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    return scrape_config_parse_node(cfg, file, doc, root, errors);
}

static void load(struct scrape_config *c, const char *yaml)
{
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    scrape_config_init(c);
    if (yamlcfg_parse_text("t.yml", yaml, &err, parse_node, c) < 0)
        fail_msg("config: %s", err.buf);
    sbuf_release(&err);
}

static void test_scrape_peer(void **state)
{
    (void)state;
    if (!have_python()) {
        print_message("SKIP: needs python3 (Debian package python3)\n");
        skip();
    }
    int port = tu_free_port(), closed = tu_free_port();
    char script[256];
    pid_t pid = start_peer(port, script, sizeof(script));
    assert_true(pid > 0);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "- job: app\n"
             "  targets: ['127.0.0.1:%d']\n"
             "  labels: {env: test}\n"
             "- job: honor\n"
             "  honor_labels: true\n"
             "  targets: ['http://127.0.0.1:%d/metrics']\n"
             "- job: om\n"
             "  targets: ['http://127.0.0.1:%d/om']\n"
             "- job: broken\n"
             "  body_limit: 100KiB\n"
             "  timeout: 1s\n"
             "  interval: 2s\n"
             "  targets: ['http://127.0.0.1:%d/bad', 'http://127.0.0.1:%d/big',\n"
             "            'http://127.0.0.1:%d/slow', 'http://127.0.0.1:%d/nope',\n"
             "            'http://127.0.0.1:%d/utf8', 'http://127.0.0.1:%d/om-cut',\n"
             "            '127.0.0.1:%d']\n"
             "- job: limited\n"
             "  sample_limit: 3\n"
             "  targets: ['127.0.0.1:%d']\n"
             "- job: fleet\n"
             "  labels: {env: e, zone: z}\n"
             "  static_configs:\n"
             "    - targets: ['127.0.0.1:%d']\n"
             "      labels: {instance: web-1, zone: a}\n"
             "    - targets: ['http://127.0.0.1:%d/om']\n"
             "      labels: {instance: web-2}\n",
             port, port, port, port, port, port, port, port, port, closed, port, port, port);
    struct scrape_config c;
    load(&c, yaml);
    struct seen seen = {.batches = 0};
    sbuf_init(&seen.text, 1 << 22);
    struct scrape_opts o = {.config = &c, .sink = sink, .sink_ctx = &seen};
    struct scrape *s = scrape_new(&o);
    scrape_config_release(&c);
    int64_t before = util_now_ms();
    scrape_run_once(s);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(script);
    assert_int_equal(seen.batches, 13);
    /* Every sample lands at the scrape's start, whatever timestamp the target wrote. */
    for (int i = 0; i < 13; i++)
        assert_true(seen.ts[i] >= before && seen.ts[i] <= before + 5000);
    const char *t = seen.text.buf;
    /* Clashing scraped labels become exported_*; an empty one is dropped; target labels added. */
    assert_non_null(strstr(t, "app_requests_total{code=\"200\",env=\"test\",exported_job=\"inner\","
                              "instance=\"127.0.0.1:"));
    /* honor_labels: the target's job loses; instance="" removes the label. */
    assert_non_null(strstr(t, "app_requests_total{code=\"200\",instance=\"127.0.0.1:"));
    assert_non_null(strstr(t, "\",job=\"inner\"} 7\n"));
    assert_non_null(strstr(t, "app_requests_total{code=\"500\",job=\"honor\"} 2\n"));
    assert_non_null(strstr(t, "lat_bucket{env=\"test\",instance="));
    assert_non_null(strstr(t, "q{instance=\"127.0.0.1:"));
    /* static_configs: two targets of one job, each with its instance; a group's zone wins. */
    assert_non_null(strstr(t, "app_requests_total{code=\"200\",env=\"e\",exported_job=\"inner\","
                              "instance=\"web-1\",job=\"fleet\",zone=\"a\"} 7\n"));
    assert_non_null(strstr(t, "app_requests_total{code=\"500\",env=\"e\",instance=\"web-1\","
                              "job=\"fleet\",zone=\"a\"} 2\n"));
    assert_non_null(strstr(t, "q{env=\"e\",instance=\"web-2\",job=\"fleet\",name=\"jobs\","
                              "zone=\"z\"} 5\n"));
    assert_non_null(strstr(t, "up{env=\"e\",instance=\"web-2\",job=\"fleet\",zone=\"z\"} 1\n"));
    char want[256];
    snprintf(want, sizeof(want), "up{instance=\"127.0.0.1:%d\",job=\"om\"} 1", port);
    assert_non_null(strstr(t, want));
    snprintf(want, sizeof(want),
             "scrape_samples_scraped{env=\"test\",instance=\"127.0.0.1:%d\","
             "job=\"app\"} 7",
             port);
    if (!strstr(t, want))
        fail_msg("no '%s' in:\n%s", want, t);
    /* No sample of a failed scrape is kept: "ok 1" of /bad is nowhere. */
    assert_null(strstr(t, "\nok{"));
    assert_null(strstr(t, "\nok "));
    struct metric_buf self;
    metric_buf_init(&self);
    scrape_emit_self(s, &self);
    double v;
    static const char *const reasons[] = {"parse",  "body_limit", "timeout",
                                          "status", "connect",    "sample_limit"};
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
        char l[128];
        snprintf(l, sizeof(l), "job=\"%s\",reason=\"%s\"",
                 strcmp(reasons[i], "sample_limit") ? "broken" : "limited", reasons[i]);
        if (!tu_find(&self, "sitrep_scrape_failures_total", l, &v) || v < 1)
            fail_msg("no failure counted for %s", l);
    }
    assert_true(
        tu_find(&self, "sitrep_scrape_failures_total", "job=\"broken\",reason=\"parse\"", &v) &&
        v == 3); /* /bad, /utf8, /om-cut */
    metric_buf_release(&self);
    struct sbuf d;
    sbuf_init(&d, 1 << 20);
    scrape_diagnose(s, &d);
    assert_non_null(strstr(d.buf, "\"error\":\"3:9: expected a label name or '}'"));
    assert_non_null(strstr(d.buf, "label value is not valid UTF-8"));
    assert_non_null(strstr(d.buf, "without # EOF"));
    sbuf_release(&d);
    sbuf_release(&seen.text);
    scrape_free(s);
}

static void test_thread(void **state)
{
    (void)state;
    if (!have_python()) {
        print_message("SKIP: needs python3\n");
        skip();
    }
    int port = tu_free_port();
    char script[256];
    pid_t pid = start_peer(port, script, sizeof(script));
    assert_true(pid > 0);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "- job: app\n  interval: 1s\n  targets: ['127.0.0.1:%d']\n", port);
    struct scrape_config c;
    load(&c, yaml);
    struct seen seen = {.batches = 0};
    sbuf_init(&seen.text, 1 << 22);
    struct scrape_opts o = {.config = &c, .sink = sink, .sink_ctx = &seen};
    struct scrape *s = scrape_new(&o);
    scrape_config_release(&c);
    assert_int_equal(scrape_start(s), 0);
    sleep(3);
    scrape_stop(s); /* the sink runs on the thread: read its counts only after the join */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    unlink(script);
    assert_true(seen.batches >= 2 && seen.batches <= 4);
    assert_true(seen.ts[1] - seen.ts[0] >= 900 && seen.ts[1] - seen.ts[0] <= 1100);
    sbuf_release(&seen.text);
    scrape_free(s);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct scrape_config c;
    scrape_config_init(&c);
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    const char *y = "- job: a\n"
                    "  targets: ['ftp://x/']\n"
                    "  interval: 5s\n"
                    "  timeout: 10s\n"
                    "  labels: {__x: 1, job: 2}\n"
                    "  headers: {X-A: \"a\\r\\nb\"}\n"
                    "  body_limit: 12\n"
                    "  what: 1\n"
                    "- targets: []\n"
                    "- job: a\n"
                    "  targets: [h:1]\n";
    assert_int_equal(yamlcfg_parse_text("c.yml", y, &err, parse_node, &c), -1);
    static const char *const want[] = {
        "c.yml:2:12: scrape.targets: only http",
        "c.yml:5:12: scrape.labels: '__x'",
        "c.yml:5:20: scrape.labels: 'job'",
        "c.yml:6:18: scrape.headers: a value cannot hold a line break",
        "c.yml:7:15: scrape.body_limit",
        "c.yml:8:3: scrape: unknown key 'what'",
        "c.yml:1:3: scrape: timeout is longer than interval",
        "c.yml:9:3: scrape: each entry needs job",
        "c.yml:9:12: scrape: each entry needs targets",
        "c.yml:10:3: scrape: job 'a' is given twice",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    scrape_config_release(&c);
    sbuf_release(&err);
}

/* static_configs: groups of targets with their own labels, over the job's. */
static void test_static_configs(void **state)
{
    (void)state;
    struct scrape_config c, d;
    const char *y = "- job_name: fleet\n"
                    "  labels: {env: prod, zone: z}\n"
                    "  targets: ['127.0.0.1:9100']\n"
                    "  static_configs:\n"
                    "    - targets: ['127.0.0.1:8080', 'http://10.0.0.5:9100/m']\n"
                    "      labels: {instance: web-1, zone: a}\n"
                    "    - targets: ['127.0.0.1:8081']\n";
    load(&c, y);
    assert_int_equal(c.njobs, 1);
    const struct scrape_job *j = &c.jobs[0];
    assert_string_equal(j->job, "fleet");
    assert_true(j->ntargets == 1 && j->ngroups == 2 && j->nlabels == 2);
    assert_true(j->groups[0].ntargets == 2 && j->groups[0].nlabels == 2);
    assert_string_equal(j->groups[0].targets[1], "http://10.0.0.5:9100/m");
    assert_string_equal(j->groups[0].labels[0].name, "instance");
    assert_string_equal(j->groups[0].labels[0].value, "web-1");
    assert_true(j->groups[1].ntargets == 1 && j->groups[1].nlabels == 0);
    /* A reload sees a group's label change. */
    load(&d, y);
    assert_true(scrape_config_equal(&c, &d));
    free(d.jobs[0].groups[0].labels[1].value);
    d.jobs[0].groups[0].labels[1].value = xstrdup("b");
    assert_false(scrape_config_equal(&c, &d));
    scrape_config_release(&d);
    /* Four targets, each with its own diagnosis entry and instance. */
    struct scrape_opts o = {.config = &c};
    struct scrape *s = scrape_new(&o);
    struct sbuf out;
    sbuf_init(&out, 1 << 16);
    scrape_diagnose(s, &out);
    assert_non_null(strstr(out.buf, "\"url\":\"http://127.0.0.1:9100/metrics\","
                                    "\"instance\":\"127.0.0.1:9100\""));
    assert_non_null(strstr(out.buf, "\"url\":\"http://127.0.0.1:8080/metrics\","
                                    "\"instance\":\"web-1\""));
    assert_non_null(strstr(out.buf, "\"url\":\"http://10.0.0.5:9100/m\",\"instance\":\"web-1\""));
    assert_non_null(strstr(out.buf, "\"url\":\"http://127.0.0.1:8081/metrics\","
                                    "\"instance\":\"127.0.0.1:8081\""));
    sbuf_release(&out);
    scrape_free(s);
    scrape_config_release(&c);

    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    scrape_config_init(&c);
    const char *bad = "- job: g\n"
                      "  static_configs:\n"
                      "    - targets: ['ftp://x/']\n"
                      "      labels: {job: x, __y: 1}\n"
                      "    - labels: {instance: a}\n"
                      "    - targets: []\n"
                      "      what: 1\n"
                      "    - 7\n"
                      "- job: h\n"
                      "  static_configs: {targets: [a:1]}\n"
                      "- job: k\n"
                      "  labels: {a: 1, b: 1, c: 1, d: 1, e: 1}\n"
                      "  static_configs:\n"
                      "    - targets: [k:1]\n"
                      "      labels: {f: 1, g: 1, h: 1, a: 2}\n"
                      "    - targets: [k:2]\n"
                      "      labels: {f: 1, g: 1, h: 1, i: 1}\n"
                      "- job: e\n"
                      "  static_configs: []\n";
    assert_int_equal(yamlcfg_parse_text("s.yml", bad, &err, parse_node, &c), -1);
    static const char *const want[] = {
        "s.yml:3:16: scrape.static_configs.targets: only http",
        "s.yml:4:16: scrape.static_configs.labels: 'job' is not a label name",
        "s.yml:4:24: scrape.static_configs.labels: '__y' is not a label name",
        "s.yml:5:7: scrape.static_configs: each entry needs targets",
        "s.yml:6:16: scrape.static_configs.targets: want at least one",
        "s.yml:7:7: scrape.static_configs: unknown key 'what'",
        "s.yml:8:7: scrape.static_configs[]: want a mapping",
        "s.yml:10:19: scrape.static_configs: want a list",
        "s.yml:17:15: scrape.static_configs.labels: at most 8 labels with the job's",
        "s.yml:19:19: scrape: each entry needs targets",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    /* Group k:1 overrides a of the job: 8 names, no error at its line; one error per place. */
    assert_null(strstr(err.buf, "s.yml:15:"));
    assert_null(strstr(err.buf, "s.yml:10:19: scrape: each entry"));
    scrape_config_release(&c);
    sbuf_release(&err);
}

static void test_expfmt_hostile(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *err;
    } cases[] = {
        {"a{b=\"\xc3\x28\"} 1\n", 0, "label value is not valid UTF-8"},
        {"# HELP a \xff\n", 0, "1:10: help text is not valid UTF-8"},
        {"a{b=\"x\0y\"} 1\n", 13, "NUL byte in a label value"},
        {"a 1e99999\n", 0, NULL}, /* +Inf from strtod: accepted, as Prometheus does */
        {"a 12345678901234567890123456789\n", 0, NULL},
        {"a 1 99999999999999999999\n", 0, "expected a timestamp in milliseconds"},
        {"a{b=\"x\"", 0, "expected ',' or '}' after a label"},
        {"a{b=\"x", 0, "label value not closed"},
        {"a{b=\"x\"} ", 0, "expected a number"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct expfmt p;
        size_t n = cases[i].len ? cases[i].len : strlen(cases[i].in);
        expfmt_init(&p, cases[i].in, n, EXPFMT_TEXT);
        struct expfmt_sample s;
        char err[256] = "";
        int r;
        while ((r = expfmt_next(&p, &s, err, sizeof(err))) > 0)
            ;
        if (cases[i].err ? r != -1 || !strstr(err, cases[i].err) : r != 0)
            fail_msg("case %zu: r=%d err '%s'", i, r, err);
        expfmt_release(&p);
    }
    /* An overlong name, an overlong line. */
    size_t big = 2u << 20;
    char *buf = xmalloc(big + 1);
    memset(buf, 'a', big);
    memcpy(buf + 300, " 1\n", 3);
    struct expfmt p;
    struct expfmt_sample s;
    char err[256];
    expfmt_init(&p, buf, 303, EXPFMT_TEXT);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected a metric name"));
    expfmt_release(&p);
    memset(buf + 300, 'a', 3);
    expfmt_init(&p, buf, big, EXPFMT_TEXT);
    assert_int_equal(expfmt_next(&p, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line longer than"));
    expfmt_release(&p);
    free(buf);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),  cmocka_unit_test(test_static_configs),
        cmocka_unit_test(test_expfmt_hostile), cmocka_unit_test(test_scrape_peer),
        cmocka_unit_test(test_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
