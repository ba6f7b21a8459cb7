/*
 * probe_test.c: probes against real peers on loopback: Python's http.server
 * over HTTP and over HTTPS (a self-signed certificate made by openssl, to
 * read its expiry back), a closed port, an unresolvable name, a slow
 * endpoint and one whose first byte comes late (the phases add up);
 * sitrep_probe_network_ok when all or only some targets fail;
 * the config parser's positions; the thread. Skips, saying why, when
 * python3 or openssl is missing.
 */
#include "testutil.h"
#include "testnet.h"
#include "probe/probe.h"
#include "util/yamlcfg.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char peer_py[] =
    "import http.server, ssl, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def do_GET(self):\n"
    "        p, code, body, extra = self.path, 200, b'all good here', {}\n"
    "        if p == '/teapot': code, body = 418, b'short and stout'\n"
    "        elif p == '/moved': code, body, extra = 302, b'', {'Location': '/ok'}\n"
    "        elif p == '/slow': time.sleep(3)\n"
    "        elif p == '/late': time.sleep(0.5)\n"
    "        elif p == '/hdr': body = (self.headers.get('X-Probe') or 'none').encode()\n"
    "        self.send_response(code)\n"
    "        for k, v in extra.items(): self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "class S(http.server.ThreadingHTTPServer):\n"
    "    request_queue_size = 64\n"
    "    def handle_error(self, *a): pass\n"
    "s = S(('127.0.0.1', int(sys.argv[1])), H)\n"
    "if len(sys.argv) > 2:\n"
    "    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "    ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
    "    s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
    "s.serve_forever()\n";

static char dir[256];

static pid_t spawn_peer(int port, int tls)
{
    char script[300], ps[16], cert[300], key[300];
    snprintf(script, sizeof(script), "%s/peer.py", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(ps, sizeof(ps), "%d", port);
    char *argv[] = {"python3", script, ps, tls ? cert : NULL, tls ? key : NULL, NULL};
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

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sitrep-probe-test-%d", (int)getpid());
    mkdir(dir, 0700);
    char path[300], cmd[1024];
    snprintf(path, sizeof(path), "%s/peer.py", dir);
    FILE *f = fopen(path, "w");
    fputs(peer_py, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0)
        unlink(path); /* marks "no openssl" for the TLS test */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int have(const char *what)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", what);
    return system(cmd) == 0;
}

static int parse_node(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    return probe_config_parse_node(cfg, file, doc, root, errors);
}

static struct probe *make(const char *yaml, void (*sink)(void *, const struct metric_buf *),
                          void *ctx)
{
    struct probe_config c;
    probe_config_init(&c);
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    if (yamlcfg_parse_text("p.yml", yaml, &err, parse_node, &c) < 0)
        fail_msg("config: %s", err.buf);
    sbuf_release(&err);
    struct probe_opts o = {.config = &c, .sink = sink, .sink_ctx = ctx};
    struct probe *p = probe_new(&o);
    probe_config_release(&c);
    assert_non_null(p);
    return p;
}

/* Find a value in the snapshot by family and rendered labels; fails the test if absent. */
static double get(struct probe *p, const char *name, const char *labels)
{
    double v;
    if (!tu_find(probe_last(p), name, labels, &v)) {
        struct sbuf s;
        sbuf_init(&s, 1 << 20);
        probe_expose(p, &s);
        fail_msg("no %s{%s} in:\n%s", name, labels, s.buf);
    }
    return v;
}

/*
 * An HTTP probe's phases are there, none negative, the resolve phase is
 * probe_dns_lookup_time_seconds, processing (to the first byte) is at least
 * min_first_byte, and together they do not exceed the whole probe.
 */
static void check_phases(struct probe *p, const char *svc, int port, const char *path,
                         double min_first_byte)
{
    static const char *const phases[] = {"resolve", "connect", "tls", "processing", "transfer"};
    char l[256];
    double sum = 0, v[ARRAY_SIZE(phases)];
    for (size_t i = 0; i < ARRAY_SIZE(phases); i++) {
        snprintf(l, sizeof(l), "service=\"%s\",target=\"http://127.0.0.1:%d%s\",phase=\"%s\"", svc,
                 port, path, phases[i]);
        v[i] = get(p, "probe_http_duration_seconds", l);
        if (!(v[i] >= 0))
            fail_msg("%s: phase %s is %f", svc, phases[i], v[i]);
        sum += v[i];
    }
    snprintf(l, sizeof(l), "service=\"%s\",target=\"http://127.0.0.1:%d%s\"", svc, port, path);
    double total = get(p, "probe_duration_seconds", l);
    assert_true(get(p, "probe_dns_lookup_time_seconds", l) == v[0]);
    if (v[3] < min_first_byte)
        fail_msg("%s: processing %f, want at least %f", svc, v[3], min_first_byte);
    /* 1 ms: curl's times are whole microseconds, the phases their differences. */
    if (sum > total + 1e-3)
        fail_msg("%s: phases add up to %f, more than the total %f", svc, sum, total);
}

static void test_http_and_tcp(void **state)
{
    (void)state;
    if (!have("python3")) {
        print_message("SKIP: needs python3 (Debian package python3)\n");
        skip();
    }
    int port = tu_free_port(), closed = tu_free_port();
    pid_t pid = spawn_peer(port, 0);
    assert_true(pid > 0);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "- {name: ok, url: 'http://127.0.0.1:%d/ok', body_regex: 'good'}\n"
             "- {name: teapot, url: 'http://127.0.0.1:%d/teapot'}\n"
             "- {name: teapot_ok, url: 'http://127.0.0.1:%d/teapot', expect_status: [4xx]}\n"
             "- {name: regex, url: 'http://127.0.0.1:%d/ok', body_regex: '^bad'}\n"
             "- {name: moved, url: 'http://127.0.0.1:%d/moved'}\n"
             "- {name: nofollow, url: 'http://127.0.0.1:%d/moved', follow_redirects: false}\n"
             "- {name: slow, url: 'http://127.0.0.1:%d/slow', timeout: 1s}\n"
             "- {name: late, url: 'http://127.0.0.1:%d/late', timeout: 3s}\n"
             "- {name: hdr, url: 'http://127.0.0.1:%d/hdr', headers: {X-Probe: yes},\n"
             "   body_regex: '^yes$'}\n"
             "- {name: tcp_ok, tcp: '127.0.0.1:%d'}\n"
             "- {name: tcp_closed, tcp: '127.0.0.1:%d'}\n"
             "- {name: nxdomain, url: 'http://no-such-host.invalid/'}\n",
             port, port, port, port, port, port, port, port, port, port, closed);
    struct probe *p = make(yaml, NULL, NULL);
    probe_run_once(p);
    probe_tick(p, util_now_ms());
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char l[256];
#define L(svc, path)                                                                               \
    (snprintf(l, sizeof(l), "service=\"%s\",target=\"http://127.0.0.1:%d%s\"", svc, port, path), l)
    assert_true(get(p, "probe_success", L("ok", "/ok")) == 1);
    assert_true(get(p, "probe_http_status_code", L("ok", "/ok")) == 200);
    assert_true(get(p, "probe_failed_due_to_regex", L("ok", "/ok")) == 0);
    assert_true(get(p, "probe_http_version", L("ok", "/ok")) == 11);
    double total = get(p, "probe_duration_seconds", L("ok", "/ok"));
    assert_true(total > 0 && total < 5);
    snprintf(l, sizeof(l), "service=\"ok\",target=\"http://127.0.0.1:%d/ok\",phase=\"connect\"",
             port);
    assert_true(get(p, "probe_http_duration_seconds", l) > 0);
    check_phases(p, "ok", port, "/ok", 0);
    /* The peer sleeps 0.5 s before its first byte: that is processing time. */
    assert_true(get(p, "probe_success", L("late", "/late")) == 1);
    check_phases(p, "late", port, "/late", 0.5);
    assert_true(get(p, "probe_success", L("teapot", "/teapot")) == 0);
    assert_true(get(p, "probe_http_status_code", L("teapot", "/teapot")) == 418);
    snprintf(l, sizeof(l),
             "service=\"teapot\",target=\"http://127.0.0.1:%d/teapot\",reason="
             "\"status\"",
             port);
    assert_true(get(p, "sitrep_probe_failure_reason", l) == 1);
    assert_true(get(p, "probe_success", L("teapot_ok", "/teapot")) == 1);
    assert_true(get(p, "probe_success", L("regex", "/ok")) == 0);
    assert_true(get(p, "probe_failed_due_to_regex", L("regex", "/ok")) == 1);
    assert_true(get(p, "probe_success", L("moved", "/moved")) == 1);
    assert_true(get(p, "probe_http_redirects", L("moved", "/moved")) == 1);
    assert_true(get(p, "probe_success", L("nofollow", "/moved")) == 0);
    assert_true(get(p, "probe_http_status_code", L("nofollow", "/moved")) == 302);
    assert_true(get(p, "probe_success", L("slow", "/slow")) == 0);
    snprintf(l, sizeof(l),
             "service=\"slow\",target=\"http://127.0.0.1:%d/slow\",reason="
             "\"timeout\"",
             port);
    assert_true(get(p, "sitrep_probe_failure_reason", l) == 1);
    assert_true(get(p, "probe_success", L("hdr", "/hdr")) == 1);
    snprintf(l, sizeof(l), "service=\"tcp_ok\",target=\"127.0.0.1:%d\"", port);
    assert_true(get(p, "probe_success", l) == 1);
    snprintf(l, sizeof(l), "service=\"tcp_closed\",target=\"127.0.0.1:%d\"", closed);
    assert_true(get(p, "probe_success", l) == 0);
    snprintf(l, sizeof(l), "service=\"tcp_closed\",target=\"127.0.0.1:%d\",reason=\"connect\"",
             closed);
    assert_true(get(p, "sitrep_probe_failure_reason", l) == 1);
    assert_true(get(p, "probe_success",
                    "service=\"nxdomain\",target=\"http://no-such-host.invalid/\"") == 0);
    assert_true(
        get(p, "sitrep_probe_failure_reason",
            "service=\"nxdomain\",target=\"http://no-such-host.invalid/\",reason=\"dns\"") == 1);
    /* Some succeed: the network is fine, the failing services are the problem. */
    assert_true(get(p, "sitrep_probe_network_ok", "") == 1);
    assert_true(get(p, "sitrep_probe_targets", "state=\"up\"") == 6);
    assert_true(get(p, "sitrep_probe_targets", "state=\"down\"") == 6);
    assert_true(get(p, "sitrep_probe_checks_total", "service=\"ok\"") == 1);
    assert_true(get(p, "sitrep_probe_failures_total", "service=\"slow\",reason=\"timeout\"") == 1);
    /* Failures in a row: teapot failed once, ok never; with the peer gone, once more each. */
    assert_true(get(p, "sitrep_probe_consecutive_failures", L("teapot", "/teapot")) == 1);
    assert_true(get(p, "sitrep_probe_consecutive_failures", L("ok", "/ok")) == 0);
    probe_run_once(p);
    probe_tick(p, util_now_ms());
    assert_true(get(p, "sitrep_probe_consecutive_failures", L("teapot", "/teapot")) == 2);
    assert_true(get(p, "sitrep_probe_consecutive_failures", L("ok", "/ok")) == 1);
#undef L
    probe_free(p);
}

static void test_network_down(void **state)
{
    (void)state;
    int c1 = tu_free_port(), c2 = tu_free_port();
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "- {name: a, tcp: '127.0.0.1:%d'}\n"
             "- {name: b, url: 'http://127.0.0.1:%d/'}\n",
             c1, c2);
    struct probe *p = make(yaml, NULL, NULL);
    probe_tick(p, util_now_ms());
    /* Nothing known yet: no network_ok sample at all, rather than a false 0. */
    assert_false(tu_find(probe_last(p), "sitrep_probe_network_ok", "", NULL));
    assert_true(get(p, "sitrep_probe_targets", "state=\"pending\"") == 2);
    probe_run_once(p);
    probe_tick(p, util_now_ms());
    assert_true(get(p, "sitrep_probe_network_ok", "") == 0);
    probe_free(p);
}

static void test_tls(void **state)
{
    (void)state;
    char cert[300];
    snprintf(cert, sizeof(cert), "%s/peer.py", dir);
    if (!have("python3") || access(cert, F_OK) != 0) {
        print_message("SKIP: needs python3 and openssl (Debian packages python3, openssl)\n");
        skip();
    }
    int port = tu_free_port();
    pid_t pid = spawn_peer(port, 1);
    assert_true(pid > 0);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "- {name: verified, url: 'https://127.0.0.1:%d/ok'}\n"
             "- {name: insecure, url: 'https://127.0.0.1:%d/ok', tls_insecure_skip_verify: true}\n"
             "- {name: tcp_tls, tcp: '127.0.0.1:%d', tls: true, tls_insecure_skip_verify: true}\n",
             port, port, port);
    struct probe *p = make(yaml, NULL, NULL);
    probe_run_once(p);
    probe_tick(p, util_now_ms());
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char l[256];
    snprintf(l, sizeof(l), "service=\"verified\",target=\"https://127.0.0.1:%d/ok\"", port);
    assert_true(get(p, "probe_success", l) == 0); /* self-signed: verification fails */
    snprintf(l, sizeof(l), "service=\"verified\",target=\"https://127.0.0.1:%d/ok\",reason=\"tls\"",
             port);
    assert_true(get(p, "sitrep_probe_failure_reason", l) == 1);
    snprintf(l, sizeof(l), "service=\"insecure\",target=\"https://127.0.0.1:%d/ok\"", port);
    assert_true(get(p, "probe_success", l) == 1);
    assert_true(get(p, "probe_http_ssl", l) == 1);
    double expiry = get(p, "probe_ssl_earliest_cert_expiry", l);
    double want = (double)time(NULL) + 30 * 86400.0;
    if (fabs(expiry - want) > 3600)
        fail_msg("expiry %f, want about %f", expiry, want);
    snprintf(l, sizeof(l), "service=\"insecure\",target=\"https://127.0.0.1:%d/ok\",phase=\"tls\"",
             port);
    assert_true(get(p, "probe_http_duration_seconds", l) > 0);
    snprintf(l, sizeof(l), "service=\"tcp_tls\",target=\"127.0.0.1:%d\"", port);
    assert_true(get(p, "probe_success", l) == 1);
    assert_true(fabs(get(p, "probe_ssl_earliest_cert_expiry", l) - expiry) < 1);
    probe_free(p);
}

struct seen {
    pthread_mutex_t mu;
    int results, ticks;
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (tu_count(b, "probe_success"))
        s->results++;
    if (tu_count(b, "sitrep_probe_targets"))
        s->ticks++;
    pthread_mutex_unlock(&s->mu);
}

static void test_thread(void **state)
{
    (void)state;
    int closed = tu_free_port();
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "- {name: a, tcp: '127.0.0.1:%d', interval: 1s}\n", closed);
    struct seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct probe *p = make(yaml, sink, &seen);
    assert_int_equal(probe_start(p), 0);
    sleep(4);
    probe_stop(p);
    assert_true(seen.results >= 2 && seen.results <= 5);
    assert_true(seen.ticks >= 3 && seen.ticks <= 5);
    struct sbuf out;
    sbuf_init(&out, 1 << 20);
    assert_int_equal(probe_expose(p, &out), 0);
    assert_non_null(strstr(out.buf, "sitrep_probe_network_ok 0"));
    sbuf_release(&out);
    probe_free(p);
}

/* What the store got for sitrep_probe_failure_reason{reason="connect"}, per batch. */
struct reasons {
    int batches, stale, ones;
};

static void reason_sink(void *ctx, const struct metric_buf *b)
{
    struct reasons *r = ctx;
    for (size_t f = 0; f < b->nfams; f++) {
        const struct metric_fam_rec *fam = &b->fams[f];
        if (strcmp(metric_str(b, fam->name), "sitrep_probe_failure_reason") != 0)
            continue;
        r->batches++;
        for (uint32_t k = 0; k < fam->count; k++) {
            double v = b->samples[fam->first + k].value;
            uint64_t bits;
            memcpy(&bits, &v, sizeof(bits));
            r->stale += bits == 0x7ff0000000000002ull;
            r->ones += v == 1;
        }
    }
}

/*
 * A failure reason that no longer holds is ended in the store with a
 * staleness marker (else a query would see it for 5 more minutes), and the
 * /metrics snapshot leaves it out.
 */
static void test_reason_ends(void **state)
{
    (void)state;
    int port = tu_free_port();
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "- {name: a, tcp: '127.0.0.1:%d'}\n", port);
    struct reasons seen = {0};
    struct probe *p = make(yaml, reason_sink, &seen);
    probe_run_once(p); /* nothing listens: connect fails */
    assert_int_equal(seen.ones, 1);
    assert_int_equal(seen.stale, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    probe_run_once(p); /* succeeds */
    assert_int_equal(seen.ones, 1);
    assert_int_equal(seen.stale, 1);
    probe_tick(p, util_now_ms());
    char l[128];
    snprintf(l, sizeof(l), "service=\"a\",target=\"127.0.0.1:%d\"", port);
    assert_true(get(p, "probe_success", l) == 1);
    assert_int_equal(tu_count(probe_last(p), "sitrep_probe_failure_reason"), 0);
    probe_run_once(p); /* succeeds again: nothing more to end */
    assert_int_equal(seen.stale, 1);
    close(fd);
    probe_free(p);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct probe_config c;
    probe_config_init(&c);
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    const char *y = "- name: a\n"
                    "  url: ftp://x\n"
                    "  expect_status: [200, 6xx, abc]\n"
                    "  body_regex: '(unclosed'\n"
                    "  interval: 2s\n"
                    "  timeout: 3s\n"
                    "- name: a\n"
                    "  tcp: 'host'\n"
                    "  headers: {X: y}\n"
                    "- {url: 'http://x/', tcp: 'x:1'}\n"
                    "- {name: m, url: 'http://x/', method: 'get me', colour: red}\n";
    assert_int_equal(yamlcfg_parse_text("p.yml", y, &err, parse_node, &c), -1);
    static const char *const want[] = {
        "p.yml:2:8: probes.url: want an http",
        "p.yml:3:24: probes.expect_status",
        "p.yml:3:29: probes.expect_status",
        "p.yml:4:15: probes.body_regex: at offset 9: missing closing parenthesis",
        "p.yml:1:3: probes: timeout is longer than interval",
        "p.yml:8:8: probes.tcp: want host:port",
        "p.yml:7:3: probes: body_regex, expect_status and headers need url:",
        "p.yml:7:3: probes: name 'a' is given twice",
        "p.yml:10:3: probes: each entry needs exactly one of url: or tcp:",
        "p.yml:10:3: probes: each entry needs name",
        "p.yml:11:39: probes.method",
        "p.yml:11:49: probes: unknown key 'colour'",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    probe_config_release(&c);
    sbuf_release(&err);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_network_down),
        cmocka_unit_test(test_http_and_tcp),  cmocka_unit_test(test_tls),
        cmocka_unit_test(test_thread),        cmocka_unit_test(test_reason_ends),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
