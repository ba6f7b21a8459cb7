/*
 * exec_test.c: exec sources with real commands (sh, printf, sleep, head):
 * good exposition with job labels, a non-zero exit, a timeout that kills
 * the whole process group, output over the cap, a malformed line (with
 * its line number), a program that does not exist; a slow command does
 * not hold up a fast one on the thread; the config parser's positions.
 */
#include "testutil.h"
#include "exec/exec.h"
#include "util/yamlcfg.h"

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

static int parse_node(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    return exec_config_parse_node(cfg, file, doc, root, errors);
}

static void load(struct exec_config *c, const char *yaml)
{
    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    exec_config_init(c);
    if (yamlcfg_parse_text("t.yml", yaml, &err, parse_node, c) < 0)
        fail_msg("config: %s", err.buf);
    sbuf_release(&err);
}

static void test_config(void **state)
{
    (void)state;
    struct exec_config c;
    load(&c, "- {job: a, command: [sh, -c, 'echo x 1']}\n"
             "- {job: b, command: '  /bin/echo  y\t2 ', interval: 30s, output_limit: 1MiB}\n");
    assert_int_equal(c.njobs, 2);
    assert_int_equal(c.jobs[0].argc, 3);
    assert_string_equal(c.jobs[0].argv[2], "echo x 1");
    assert_null(c.jobs[0].argv[3]);
    assert_int_equal(c.jobs[0].interval_ms, 10000);
    assert_int_equal(c.jobs[0].timeout_ms, 5000);
    assert_int_equal(c.jobs[0].output_limit, 4 << 20);
    assert_int_equal(c.jobs[1].argc, 3); /* split on spaces and tabs */
    assert_string_equal(c.jobs[1].argv[0], "/bin/echo");
    assert_string_equal(c.jobs[1].argv[2], "2");
    assert_int_equal(c.jobs[1].output_limit, 1 << 20);
    exec_config_release(&c);

    struct sbuf err;
    sbuf_init(&err, 1 << 16);
    exec_config_init(&c);
    const char *bad = "- {job: a, command: []}\n"
                      "- {job: b, command: x, interval: 2s, timeout: 3s}\n"
                      "- {command: x}\n"
                      "- {job: a, command: x, shell: true}\n"
                      "- {job: c, command: x, interval: 500ms}\n";
    assert_int_equal(yamlcfg_parse_text("e.yml", bad, &err, parse_node, &c), -1);
    const char *want[] = {
        "e.yml:1:21: exec.command: want a program",
        "e.yml:2:3: exec: timeout is longer than interval",
        "e.yml:3:3: exec: each entry needs job",
        "e.yml:4:3: exec: job 'a' is given twice",
        "e.yml:4:24: exec: unknown key 'shell'",
        "e.yml:5:34: exec.interval",
    };
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        if (!strstr(err.buf, want[i]))
            fail_msg("missing '%s' in:\n%s", want[i], err.buf);
    exec_config_release(&c);
    sbuf_release(&err);
}

/* Running (a killed orphan may stay a zombie where nothing reaps orphans). */
static int proc_alive(int pid)
{
    char path[64], st[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(st, 1, sizeof(st) - 1, f);
    fclose(f);
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* The sink keeps the text of every batch, concatenated. */
struct got {
    struct sbuf text;
    int calls;
};

static void sink(void *ctx, const struct metric_buf *b)
{
    struct got *g = ctx;
    const struct metric_buf *bufs[] = {b};
    metric_expose(bufs, 1, &g->text);
    g->calls++;
}

static int has(const struct got *g, const char *line)
{
    return strstr(g->text.buf, line) != NULL;
}

#define WANT(g, line)                                                                              \
    do {                                                                                           \
        if (!has(g, line))                                                                         \
            fail_msg("missing '%s' in:\n%s", line, (g)->text.buf);                                 \
    } while (0)

static void test_runs(void **state)
{
    (void)state;
    char pidfile[128], yaml[2048];
    snprintf(pidfile, sizeof(pidfile), "/tmp/sitrep-exec-test-%d.pid", (int)getpid());
    snprintf(yaml, sizeof(yaml),
             "- {job: good, command: [printf, '%%s\\n', '# TYPE jobs gauge',\n"
             "   'jobs{job=\"x\",q=\"a\"} 3', 'up_total 7']}\n"
             "- {job: fails, command: [sh, -c, 'echo boom >&2; exit 3']}\n"
             "- {job: slow, command: [sh, -c, 'sleep 30 & echo $! > %s; sleep 30'],\n"
             "   interval: 1s, timeout: 300ms}\n"
             "- {job: big, command: [head, -c, '5000000', /dev/zero], output_limit: 1MiB}\n"
             "- {job: bad, command: [printf, 'ok 1\\nbroken{ 2\\n']}\n"
             "- {job: missing, command: /nonexistent/program}\n",
             pidfile);
    struct exec_config c;
    load(&c, yaml);
    struct got g = {.calls = 0};
    sbuf_init(&g.text, 1 << 20);
    struct exec *e = exec_new(&(struct exec_opts){.config = &c, .sink = sink, .sink_ctx = &g});
    int64_t t0 = util_mono_ns();
    exec_run_once(e);
    int64_t took = util_mono_ns() - t0;
    assert_true(took < 2000000000LL); /* the slow one was killed at 300 ms */
    assert_int_equal(g.calls, 6);

    WANT(&g, "jobs{exported_job=\"x\",job=\"good\",q=\"a\"} 3\n");
    WANT(&g, "up_total{job=\"good\"} 7\n");
    WANT(&g, "sitrep_exec_success{job=\"good\"} 1\n");
    WANT(&g, "sitrep_exec_samples{job=\"good\"} 2\n");
    WANT(&g, "sitrep_exec_exit_code{job=\"good\"} 0\n");
    WANT(&g, "sitrep_exec_success{job=\"fails\"} 0\n");
    WANT(&g, "sitrep_exec_exit_code{job=\"fails\"} 3\n");
    WANT(&g, "sitrep_exec_errors_total{job=\"fails\",reason=\"exit\"} 1\n");
    WANT(&g, "sitrep_exec_errors_total{job=\"slow\",reason=\"timeout\"} 1\n");
    WANT(&g, "sitrep_exec_errors_total{job=\"big\",reason=\"output_limit\"} 1\n");
    WANT(&g, "sitrep_exec_errors_total{job=\"bad\",reason=\"parse\"} 1\n");
    WANT(&g, "sitrep_exec_samples{job=\"bad\"} 0\n"); /* none of a bad run's samples kept */
    assert_false(has(&g, "ok{job=\"bad\"}"));
    WANT(&g, "sitrep_exec_success{job=\"missing\"} 0\n");

    /* The timeout killed the process group: the backgrounded sleep is gone too. */
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    int bg = 0;
    assert_int_equal(fscanf(f, "%d", &bg), 1);
    fclose(f);
    unlink(pidfile);
    int alive = 1;
    for (int i = 0; i < 50 && alive; i++) {
        alive = proc_alive(bg);
        usleep(20000);
    }
    assert_false(alive);
    exec_free(e);
    exec_config_release(&c);
    sbuf_release(&g.text);
}

/* The thread: a command that takes 3 s does not hold up one due every second. */
static void test_thread(void **state)
{
    (void)state;
    struct exec_config c;
    load(&c, "- {job: slow, command: [sleep, '3'], interval: 10s}\n"
             "- {job: fast, command: [echo, 'x 1'], interval: 1s}\n");
    struct got g = {.calls = 0};
    sbuf_init(&g.text, 1 << 20);
    struct exec *e = exec_new(&(struct exec_opts){.config = &c, .sink = sink, .sink_ctx = &g});
    assert_int_equal(exec_start(e), 0);
    usleep(2500000);
    exec_stop(e);
    /* fast ran at 0, 1 and 2 s while slow was still sleeping */
    int fast = 0;
    for (const char *p = g.text.buf; (p = strstr(p, "sitrep_exec_success{job=\"fast\"} 1")); p++)
        fast++;
    if (fast < 2)
        fail_msg("fast ran %d times:\n%s", fast, g.text.buf);
    assert_false(has(&g, "job=\"slow\""));
    exec_free(e); /* kills the sleep still running */
    exec_config_release(&c);
    sbuf_release(&g.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
