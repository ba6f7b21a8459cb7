/*
 * queue_test.c: the queue poller against a real redis-server on loopback
 * (lists, sorted sets, streams with consumer groups, globs, the key cap,
 * AUTH and SELECT), a closed port, a peer that never answers (timeout) and
 * one that answers garbage (protocol); the config parser's positions.
 * Skips, saying why, when redis-server is missing.
 */
#include "testutil.h"
#include "testnet.h"
#include "queue/queue.h"
#include "util/yamlcfg.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int parse_node(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    return queue_config_parse_node(cfg, file, doc, root, errors);
}

static void test_config(void **state)
{
    (void)state;
    struct queue_config c;
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    queue_config_init(&c);
    const char *good = "- {redis: '127.0.0.1:6379', keys: [jobs, 'events:*']}\n"
                       "- {redis: '[::1]:6380', keys: [a], db: 2, password: pw, interval: 5s,\n"
                       "   timeout: 2s, max_keys: 10}\n";
    assert_int_equal(yamlcfg_parse_text("q.yml", good, &err, parse_node, &c), 0);
    assert_int_equal(c.nservers, 2);
    assert_int_equal(c.servers[0].interval_ms, 1000);
    assert_int_equal(c.servers[0].timeout_ms, 1000);
    assert_int_equal(c.servers[0].max_keys, 1000);
    assert_string_equal(c.servers[0].instance, "127.0.0.1:6379");
    assert_string_equal(c.servers[1].instance, "[::1]:6380/2");
    assert_int_equal(c.servers[1].timeout_ms, 2000);
    assert_int_equal(c.servers[1].max_keys, 10);
    struct queue_config d;
    queue_config_init(&d);
    assert_int_equal(yamlcfg_parse_text("q.yml", good, &err, parse_node, &d), 0);
    assert_true(queue_config_equal(&c, &d));
    d.servers[1].db = 3;
    assert_false(queue_config_equal(&c, &d));
    queue_config_release(&d);
    queue_config_release(&c);

    const char *bad = "- {redis: 'localhost', keys: [a]}\n"  /* 1:11 */
                      "- {redis: '127.0.0.1:1', keys: []}\n" /* 2:3 */
                      "- {redis: '127.0.0.1:2', keys: [a], interval: 1s, timeout: 2s}\n"
                      "- {redis: '127.0.0.1:3', keys: [a], bogus: 1}\n"    /* 4:37 */
                      "- {redis: '127.0.0.1:4', keys: [a], max_keys: 0}\n" /* 5:47 */
                      "- {redis: '127.0.0.1:4', keys: [b]}\n"              /* twice */
                      "- {keys: [a], username: u}\n";
    queue_config_init(&c);
    assert_int_equal(yamlcfg_parse_text("q.yml", bad, &err, parse_node, &c), -1);
    const char *want[] = {
        "q.yml:1:11: queues.redis: want host:port",
        "q.yml:2:3: queues: each entry needs keys",
        "q.yml:3:3: queues: timeout is longer than interval",
        "q.yml:4:37: queues: unknown key 'bogus'",
        "q.yml:5:47: queues.max_keys",
        "q.yml:6:3: queues: redis 127.0.0.1:4 is given twice",
        "q.yml:7:3: queues: each entry needs redis",
        "q.yml:7:3: queues: username needs a password",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    queue_config_release(&c);
    sbuf_release(&err);
}

/* ---- against real peers ---- */

/* Start a peer with its output to /dev/null (a peer left behind must not hold ctest's pipe). */
static pid_t spawn(char *const argv[])
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static pid_t start_redis(int port, const char *password)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *argv[] = {"redis-server",
                    "--port",
                    p,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                    password ? "--requirepass" : NULL,
                    (char *)password,
                    NULL};
    pid_t pid = spawn(argv);
    if (pid > 0 && tu_wait_port(port) < 0) {
        stop(pid);
        return -1;
    }
    return pid;
}

static void cli(int port, const char *cmd)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "redis-cli -p %d %s >/dev/null", port, cmd);
    assert_int_equal(system(buf), 0);
}

struct got {
    struct metric_buf last;
    int calls;
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct got *g = ctx;
    metric_buf_reset(&g->last, b->ts_ms);
    struct sbuf text;
    sbuf_init(&text, 1 << 20);
    /* copy by re-adding: families and samples as they are */
    for (size_t i = 0; i < b->nfams; i++) {
        const struct metric_fam_rec *f = &b->fams[i];
        metric_fam(&g->last, metric_str(b, f->name), metric_str(b, f->help), f->type);
        for (uint32_t k = 0; k < f->count; k++) {
            const struct metric_sample *s = &b->samples[f->first + k];
            struct metric_label l[METRIC_MAX_LABELS];
            const char *p = metric_str(b, s->labels);
            for (uint32_t j = 0; j < s->nlabels; j++) {
                l[j].name = p;
                l[j].value = p + strlen(p) + 1;
                p = l[j].value + strlen(l[j].value) + 1;
            }
            metric_add(&g->last, s->value, s->nlabels, l);
        }
    }
    sbuf_release(&text);
    g->calls++;
}

/* Poll the one server of yaml once; the batch lands in g->last. */
static void poll_once(const char *yaml, struct got *g)
{
    struct queue_config c;
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    queue_config_init(&c);
    if (yamlcfg_parse_text("t.yml", yaml, &err, parse_node, &c) < 0)
        fail_msg("config: %s", err.buf);
    struct queue *q = queue_new(&(struct queue_opts){.config = &c, .sink = sink, .sink_ctx = g});
    queue_run_once(q);
    queue_free(q);
    queue_config_release(&c);
    sbuf_release(&err);
}

static double val(struct got *g, const char *name, const char *labels)
{
    double v;
    if (!tu_find(&g->last, name, labels, &v))
        return -1;
    return v;
}

static int have_redis(void)
{
    return system("command -v redis-server >/dev/null && command -v redis-cli >/dev/null") == 0;
}

static void test_redis(void **state)
{
    (void)state;
    if (!have_redis()) {
        print_message("SKIP: needs redis-server and redis-cli (Debian package redis-server)\n");
        skip();
    }
    int port = tu_free_port();
    pid_t pid = start_redis(port, NULL);
    assert_true(pid > 0);
    cli(port, "RPUSH jobs a b c");
    cli(port, "ZADD delayed 1 x 2 y");
    cli(port, "XADD events:1 '*' k 1");
    cli(port, "XADD events:1 '*' k 2");
    cli(port, "XADD events:1 '*' k 3");
    cli(port, "XGROUP CREATE events:1 workers 0");
    cli(port, "XGROUP CREATE events:1 idle '$'");
    cli(port, "XREADGROUP GROUP workers w1 COUNT 2 STREAMS events:1 '>'");
    cli(port, "XADD events:2 '*' k 1");
    cli(port, "SET plain 1");
    cli(port, "-n 3 RPUSH other 1 2");

    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "- {redis: '127.0.0.1:%d', keys: [jobs, delayed, 'events:*', plain, gone]}\n", port);
    struct got g = {.calls = 0};
    metric_buf_init(&g.last);
    poll_once(yaml, &g);
    char inst[64], l[256];
    snprintf(inst, sizeof(inst), "127.0.0.1:%d", port);
#define Q(key)                                                                                     \
    (snprintf(l, sizeof(l), "instance=\"%s\",queue=\"%s\",source=\"redis\"", inst, key), l)
#define G(key, grp)                                                                                \
    (snprintf(l, sizeof(l), "group=\"%s\",instance=\"%s\",queue=\"%s\",source=\"redis\"", grp,     \
              inst, key),                                                                          \
     l)
    assert_int_equal(g.calls, 1);
    assert_true(val(&g, "sitrep_queue_depth", Q("jobs")) == 3);
    assert_true(val(&g, "sitrep_queue_depth", Q("delayed")) == 2);
    assert_true(val(&g, "sitrep_queue_depth", Q("events:1")) == 3);
    assert_true(val(&g, "sitrep_queue_depth", Q("events:2")) == 1);
    assert_true(val(&g, "sitrep_queue_depth", Q("gone")) == 0);   /* named, absent: drained */
    assert_true(val(&g, "sitrep_queue_depth", Q("plain")) == -1); /* a string is no queue */
    assert_true(val(&g, "sitrep_queue_pending", G("events:1", "workers")) == 2);
    assert_true(val(&g, "sitrep_queue_lag", G("events:1", "workers")) == 1);
    assert_true(val(&g, "sitrep_queue_consumers", G("events:1", "workers")) == 1);
    assert_true(val(&g, "sitrep_queue_pending", G("events:1", "idle")) == 0);
    assert_true(val(&g, "sitrep_queue_lag", G("events:1", "idle")) == 0);
    assert_true(val(&g, "sitrep_queue_consumers", G("events:1", "idle")) == 0);
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_up", l) == 1);
    assert_true(val(&g, "sitrep_queue_keys", l) == 6);
    assert_true(val(&g, "sitrep_queue_keys_dropped", l) == 0);

    /* The cap: 3 keys at most; the rest counted. SELECT picks db 3. */
    cli(port, "RPUSH q:1 1");
    cli(port, "RPUSH q:2 1");
    cli(port, "RPUSH q:3 1");
    cli(port, "RPUSH q:4 1");
    cli(port, "RPUSH q:5 1");
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: ['q:*'], max_keys: 3}\n", port);
    poll_once(yaml, &g);
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_keys", l) == 3);
    assert_true(val(&g, "sitrep_queue_keys_dropped", l) == 2);
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [other], db: 3}\n", port);
    poll_once(yaml, &g);
    snprintf(inst, sizeof(inst), "127.0.0.1:%d/3", port);
    assert_true(val(&g, "sitrep_queue_depth", Q("other")) == 2);
    stop(pid);

    /* A server restarted between two polls: the dead kept connection is replaced at once. */
    snprintf(inst, sizeof(inst), "127.0.0.1:%d", port);
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [jobs]}\n", port);
    pid = start_redis(port, NULL);
    assert_true(pid > 0);
    cli(port, "RPUSH jobs 1");
    struct queue_config qc;
    struct sbuf qe;
    sbuf_init(&qe, 4096);
    queue_config_init(&qc);
    assert_int_equal(yamlcfg_parse_text("t.yml", yaml, &qe, parse_node, &qc), 0);
    struct queue *q = queue_new(&(struct queue_opts){.config = &qc, .sink = sink, .sink_ctx = &g});
    queue_run_once(q);
    assert_true(val(&g, "sitrep_queue_depth", Q("jobs")) == 1);
    stop(pid);
    pid = start_redis(port, NULL);
    assert_true(pid > 0);
    cli(port, "RPUSH jobs 1 2");
    queue_run_once(q);
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_up", l) == 1);
    assert_true(val(&g, "sitrep_queue_depth", Q("jobs")) == 2);
    queue_free(q);
    queue_config_release(&qc);
    sbuf_release(&qe);
    stop(pid);

    /* AUTH: the right password works, a wrong one is an `auth` error. */
    port = tu_free_port();
    pid = start_redis(port, "s3cret");
    assert_true(pid > 0);
    snprintf(inst, sizeof(inst), "127.0.0.1:%d", port);
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [jobs], password: s3cret}\n",
             port);
    poll_once(yaml, &g);
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_up", l) == 1);
    assert_true(val(&g, "sitrep_queue_depth", Q("jobs")) == 0);
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [jobs], password: nope}\n", port);
    poll_once(yaml, &g);
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_up", l) == 0);
    snprintf(l, sizeof(l), "instance=\"%s\",reason=\"auth\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_errors_total", l) == 1);
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [jobs]}\n", port);
    poll_once(yaml, &g); /* no password: the first command is refused (NOAUTH) */
    snprintf(l, sizeof(l), "instance=\"%s\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_up", l) == 0);
    snprintf(l, sizeof(l), "instance=\"%s\",reason=\"auth\",source=\"redis\"", inst);
    assert_true(val(&g, "sitrep_queue_errors_total", l) == 1);
    stop(pid);
    metric_buf_release(&g.last);
}

static const char junk_py[] =
    "import socket, sys, time\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.recv(65536)\n"
    "    if sys.argv[2] == 'junk': c.sendall(b'*2\\r\\n$999999999999\\r\\n')\n"
    "    elif sys.argv[2] == 'huge': c.sendall(b'$' + str(1 << 30).encode() + b'\\r\\n')\n"
    "    else: time.sleep(5)\n"
    "    c.close()\n";

static void test_bad_peers(void **state)
{
    (void)state;
    if (system("python3 -c 'import socket' >/dev/null 2>&1") != 0) {
        print_message("SKIP: needs python3\n");
        skip();
    }
    char script[128];
    snprintf(script, sizeof(script), "/tmp/sitrep-queue-peer-%d.py", (int)getpid());
    FILE *f = fopen(script, "w");
    fputs(junk_py, f);
    fclose(f);
    struct got g = {.calls = 0};
    metric_buf_init(&g.last);
    const char *modes[] = {"junk", "huge", "silent"};
    const char *reasons[] = {"protocol", "protocol", "timeout"};
    char yaml[512], l[256], p[16];
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        int port = tu_free_port();
        snprintf(p, sizeof(p), "%d", port);
        char *argv[] = {"python3", script, p, (char *)modes[i], NULL};
        pid_t pid = spawn(argv);
        assert_int_equal(tu_wait_port(port), 0);
        snprintf(yaml, sizeof(yaml),
                 "- {redis: '127.0.0.1:%d', keys: ['a:*'], interval: 1s, timeout: 300ms}\n", port);
        int64_t t0 = util_mono_ns();
        poll_once(yaml, &g);
        assert_true(util_mono_ns() - t0 < 2000000000LL); /* bounded by the timeout */
        snprintf(l, sizeof(l), "instance=\"127.0.0.1:%d\",source=\"redis\"", port);
        assert_true(val(&g, "sitrep_queue_up", l) == 0);
        snprintf(l, sizeof(l), "instance=\"127.0.0.1:%d\",reason=\"%s\",source=\"redis\"", port,
                 reasons[i]);
        if (val(&g, "sitrep_queue_errors_total", l) != 1)
            fail_msg("%s: want one %s error", modes[i], reasons[i]);
        stop(pid);
    }
    /* A closed port. */
    int closed = tu_free_port();
    snprintf(yaml, sizeof(yaml), "- {redis: '127.0.0.1:%d', keys: [a]}\n", closed);
    poll_once(yaml, &g);
    snprintf(l, sizeof(l), "instance=\"127.0.0.1:%d\",reason=\"connect\",source=\"redis\"", closed);
    assert_true(val(&g, "sitrep_queue_errors_total", l) == 1);
    unlink(script);
    metric_buf_release(&g.last);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_bad_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
