/*
 * rules_test.c: the rules engine through its public header (and the
 * internal one for alert state): templates and Prometheus's humanize
 * functions, if/range/with and `query` (a test callback, and once through
 * the engine against a real store), their errors and bounds, rule file errors with their positions,
 * durations, and the alert state machine on a fake clock against a real store in a temporary
 * folder: pending -> firing after `for`, keep_firing_for, resolution,
 * flapping and un-flapping, restore after a restart (no lost `for`
 * progress, firing stays firing, nothing re-sent).
 */
#include "testutil.h"
#include "metric/metric.h"
#include "query/eval.h"
#include "query/promql.h"
#include "rules/rules_internal.h"
#include "tsdb/tsdb.h"

#include <math.h>
#include <unistd.h>

#define T0 1700000000000LL

/* ---- templates ---- */

typedef int (*query_fn)(void *, const char *, struct rules_tmpl_vec *, char *, size_t);

/* Expand against a fixed alert (and query, when not NULL): the output or "ERR " and the error. */
static char *tmpl_with(const char *src, double value, query_fn query)
{
    static char out[RULES_MAX_TEMPLATE_OUT + 64];
    struct rules_tmpl_label ls[] = {{"instance", "db1:9100"}, {"job", "node"}};
    struct rules_tmpl_label ext[] = {{"cluster", "eu1"}};
    struct rules_tmpl_data d = {.value = value,
                                .labels = ls,
                                .nlabels = 2,
                                .external = ext,
                                .nexternal = 1,
                                .external_url = "http://x",
                                .query = query};
    struct sbuf b;
    char err[256];
    sbuf_init(&b, 0);
    if (rules_template_expand(src, &d, &b, err, sizeof(err)) < 0)
        snprintf(out, sizeof(out), "ERR %s", err);
    else
        snprintf(out, sizeof(out), "%s", b.buf);
    sbuf_release(&b);
    return out;
}

static char *tmpl(const char *src, double value)
{
    return tmpl_with(src, value, NULL);
}

static void test_template_values(void **state)
{
    (void)state;
    assert_string_equal(tmpl("v={{ $value }}", 0.5), "v=0.5");
    assert_string_equal(tmpl("{{ $value }}", 1e6), "1e+06");
    assert_string_equal(tmpl("{{ $value }}", 123456), "123456");
    assert_string_equal(tmpl("{{ .Value }}", NAN), "NaN");
    assert_string_equal(tmpl("{{ $labels.instance }} {{ .Labels.job }}", 0), "db1:9100 node");
    assert_string_equal(tmpl("[{{ $labels.missing }}]", 0), "[]");
    assert_string_equal(tmpl("{{ $externalLabels.cluster }} {{ $externalURL }}", 0),
                        "eu1 http://x");
    assert_string_equal(tmpl("a  {{- $value -}}  b", 2), "a2b");
    assert_string_equal(tmpl("x{{/* a comment */}}y", 0), "xy");
}

static void test_template_functions(void **state)
{
    (void)state;
    assert_string_equal(tmpl("{{ $value | humanize }}", 1234567), "1.235M");
    assert_string_equal(tmpl("{{ humanize $value }}", 0.001234), "1.234m");
    assert_string_equal(tmpl("{{ $value | humanize }}", 0), "0");
    assert_string_equal(tmpl("{{ $value | humanize1024 }}", 1048576), "1Mi");
    assert_string_equal(tmpl("{{ $value | humanize1024 }}", 512), "512");
    assert_string_equal(tmpl("{{ $value | humanizeDuration }}", 90061), "1d 1h 1m 1s");
    assert_string_equal(tmpl("{{ $value | humanizeDuration }}", 3661), "1h 1m 1s");
    assert_string_equal(tmpl("{{ $value | humanizeDuration }}", 1.5), "1.5s");
    assert_string_equal(tmpl("{{ $value | humanizeDuration }}", 0.25), "250ms");
    assert_string_equal(tmpl("{{ $value | humanizeDuration }}", 0), "0s");
    assert_string_equal(tmpl("{{ $value | humanizePercentage }}", 0.1234), "12.34%");
    assert_string_equal(tmpl("{{ printf \"%.2f\" $value }}", 3.14159), "3.14");
    assert_string_equal(tmpl("{{ printf \"%s is %d%%\" $labels.job 5 }}", 0), "node is 5%");
    assert_string_equal(tmpl("{{ $value | printf \"%.1f\" }}", 2.25), "2.2");
    assert_string_equal(tmpl("{{ \"1024\" | humanize1024 }}", 0), "1Ki");
    assert_string_equal(tmpl("{{ $labels.job | toUpper }}", 0), "NODE");
    assert_string_equal(tmpl("{{ 1700000000 | humanizeTimestamp }}", 0),
                        "2023-11-14 22:13:20 +0000 UTC");
}

static void test_template_errors(void **state)
{
    (void)state;
    assert_string_equal(tmpl("x {{ $value | humanise }}", 0),
                        "ERR 1:15: function \"humanise\" not defined");
    assert_string_equal(tmpl("a\n {{ $value", 0), "ERR 2:2: unclosed action");
    assert_string_equal(tmpl("{{ define \"x\" }}x{{ end }}", 0),
                        "ERR 1:4: \"define\" is not supported in sitrep's templates");
    assert_string_equal(tmpl("{{ $nope }}", 0), "ERR 1:4: undefined variable \"nope\"");
    assert_string_equal(tmpl("{{ \"abc }}", 0), "ERR 1:4: unterminated quoted string");
    assert_string_equal(tmpl("{{ $value 3 }}", 0), "ERR 1:4: can't give argument to non-function");
    assert_string_equal(tmpl("{{ }}", 0), "ERR 1:1: missing value for command");
    assert_string_equal(tmpl("{{ humanize }}", 0),
                        "ERR 1:4: wrong number of args for humanize: want 1 got 0");
    assert_string_equal(tmpl("{{ \"x\" | humanize }}", 0),
                        "ERR 1:10: can't convert \"x\" to a number");
    /* hostile inputs: never a crash, always an answer */
    const char *junk[] = {"{{",
                          "}}",
                          "{{-",
                          "{{ | }}",
                          "{{ $ }}",
                          "{{ . }}",
                          "{{(}}",
                          "{{ \"\\",
                          "{{ printf \"%",
                          "{{/*}}",
                          "{{ 1e999999 }}",
                          "{{ if }}",
                          "{{ end }}{{ if",
                          "{{ range (((((((((1))))))))) }}",
                          "{{ else if }}",
                          "{{ with $ }}{{ . }}"};
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++)
        (void)tmpl(junk[i], 1);
}

/* ---- control structures and query, through a test callback ---- */

static unsigned queries_run;

/* A fixed answer per expression: "top" (3 processes), "none", "scalar", "many", "bad". */
static int fake_query(void *ctx, const char *expr, struct rules_tmpl_vec *out, char *err,
                      size_t errcap)
{
    (void)ctx;
    queries_run++;
    if (strcmp(expr, "top") == 0) {
        const struct rules_tmpl_label b[] = {{"comm", "b"}, {"pid", "2"}};
        const struct rules_tmpl_label a[] = {{"comm", "a"}, {"pid", "1"}};
        const struct rules_tmpl_label c[] = {{"comm", "c"}, {"pid", "3"}};
        rules_tmpl_vec_add(out, 0.5, b, 2);
        rules_tmpl_vec_add(out, 0.25, a, 2);
        rules_tmpl_vec_add(out, 0.125, c, 2);
    } else if (strcmp(expr, "scalar") == 0) {
        rules_tmpl_vec_add(out, 42, NULL, 0);
    } else if (strcmp(expr, "many") == 0) {
        for (int i = 0; i < 150; i++) {
            char v[16];
            snprintf(v, sizeof(v), "%d", i);
            const struct rules_tmpl_label l[] = {{"i", v}};
            if (rules_tmpl_vec_add(out, i, l, 1) < 0)
                break;
        }
    } else if (strcmp(expr, "none") != 0) {
        snprintf(err, errcap, "1:1: parse error: unexpected identifier \"%s\"", expr);
        return -1;
    }
    return 0;
}

static char *tmplq(const char *src, double value)
{
    return tmpl_with(src, value, fake_query);
}

/* The load-time check: "" or the error. Runs nothing. */
static char *check(const char *src)
{
    static char out[256];
    struct sbuf b;
    sbuf_init(&b, 0);
    out[0] = '\0';
    if (rules_template_expand(src, NULL, &b, out, sizeof(out)) == 0)
        assert_int_equal(b.len, 0);
    sbuf_release(&b);
    return out;
}

static void test_template_query(void **state)
{
    (void)state;
    assert_string_equal(tmplq("{{ range query \"top\" }}{{ .Labels.comm }} ({{ .Labels.pid }}) "
                              "{{ .Value | humanizePercentage }}; {{ end }}",
                              0),
                        "b (2) 50%; a (1) 25%; c (3) 12.5%; ");
#define GROWER(q)                                                                                  \
    "{{ with query \"" q "\" }}{{ . | first | label \"comm\" }} grows "                            \
    "{{ . | first | value | humanize1024 }}B/s{{ else }}no grower found{{ end }}"
    assert_string_equal(tmplq(GROWER("top"), 0), "b grows 0.5B/s");
    assert_string_equal(tmplq(GROWER("none"), 0), "no grower found");
    /* a scalar is one sample without labels, as in Prometheus */
    assert_string_equal(tmplq("{{ query \"scalar\" | first | value }} "
                              "{{ range query \"scalar\" }}{{ .Labels }} {{ . }}{{ end }}",
                              0),
                        "42 map[] {map[] 42}");
    assert_string_equal(tmplq("{{ range query \"top\" | sortByLabel \"comm\" }}{{ .Labels.comm }}"
                              "{{ end }}",
                              0),
                        "abc");
    /* stable: equal keys (a missing label is "") keep the query's order */
    assert_string_equal(tmplq("{{ range query \"top\" | sortByLabel \"nope\" }}{{ .Labels.comm }}"
                              "{{ end }}",
                              0),
                        "bac");
    assert_string_equal(tmplq("{{ with query \"top\" }}{{ . | first }}{{ end }}", 0),
                        "{map[comm:b pid:2] 0.5}");
    assert_string_equal(tmplq("{{ query \"top\" | len }} {{ len \"abcd\" }}", 0), "3 4");
    /* results are cut at RULES_TMPL_MAX_SAMPLES */
    assert_string_equal(tmplq("{{ query \"many\" | len }}", 0), "100");
    /* inside range and with, $labels and $value stay the alert's; $ is the alert's data */
    assert_string_equal(tmplq("{{ range query \"top\" }}{{ $labels.job }}{{ $.Labels.instance }}"
                              "{{ $value }} {{ end }}",
                              7),
                        "nodedb1:91007 nodedb1:91007 nodedb1:91007 ");
    /* outside range and with, the dot is the alert's data as before */
    assert_string_equal(tmplq("{{ if true }}{{ .Labels.job }} {{ .Value }}{{ end }}", 3), "node 3");
    /* range's else: no samples */
    assert_string_equal(tmplq("{{ range query \"none\" }}x{{ else }}nothing{{ end }}", 0),
                        "nothing");
    /* a query-made expression, through a pipe */
    assert_string_equal(tmplq("{{ with printf \"%s\" \"scalar\" | query }}{{ . | first | value }}"
                              "{{ end }}",
                              0),
                        "42");
    /* nothing runs when only checking */
    queries_run = 0;
    assert_string_equal(check("{{ range query \"top\" }}{{ .Labels.x }}{{ end }}"), "");
    assert_int_equal(queries_run, 0);
}

static void test_template_control(void **state)
{
    (void)state;
    const char *level = "{{ if gt $value 0.9 }}high{{ else if gt $value 0.5 }}mid{{ else }}low"
                        "{{ end }}";
    assert_string_equal(tmplq(level, 0.95), "high");
    assert_string_equal(tmplq(level, 0.6), "mid");
    assert_string_equal(tmplq(level, 0.1), "low");
    /* with: the dot is the value; empty string, zero and empty lists are false */
    assert_string_equal(tmplq("{{ with $labels.job }}[{{ . }}]{{ end }}", 0), "[node]");
    assert_string_equal(tmplq("{{ with $labels.nope }}[{{ . }}]{{ else }}-{{ end }}", 0), "-");
    assert_string_equal(tmplq("{{ with $value }}{{ . | humanize }}{{ else }}zero{{ end }}", 0),
                        "zero");
    assert_string_equal(
        tmplq("{{ with $labels.nope }}a{{ else with $labels.job }}{{ . }}{{ end }}", 0), "node");
    /* comparisons, and, or, not */
    assert_string_equal(
        tmplq("{{ eq $labels.job \"x\" \"node\" }} {{ ne 1 2 }} {{ lt \"a\" \"b\" }} "
              "{{ le 2 2 }} {{ ge 1 2 }} {{ not 0 }} {{ and 1 0 }} {{ or 0 \"x\" }}",
              0),
        "true true true true false true 0 x");
    assert_string_equal(tmplq("{{ if and (gt $value 1.0) (lt $value 3.0) }}in{{ end }}", 2), "in");
    assert_string_equal(tmplq("{{ if gt (query \"top\" | first | value) 0.4 }}busy{{ end }}", 0),
                        "busy");
    /* and/or stop at their answer: the failing query is not run */
    assert_string_equal(tmplq("{{ or 1 (query \"bad\") }}", 0), "1");
    /* nesting */
    assert_string_equal(tmplq("{{ with query \"top\" }}{{ range . }}{{ if eq .Labels.comm \"a\" }}"
                              "[{{ .Value }}]{{ end }}{{ end }}{{ end }}",
                              0),
                        "[0.25]");
    /* trimming around the structures */
    assert_string_equal(
        tmplq("x\n{{- range query \"top\" }}\n  {{ .Labels.comm }}\n{{- end }}\ny", 0),
        "x\n  b\n  a\n  c\ny");
    assert_string_equal(tmplq("a {{- if true -}} b {{- else -}} c {{- end -}} d", 0), "abd");
    assert_string_equal(tmplq("{{ if false }}{{/* c */}}{{ end }}ok", 0), "ok");
}

static void test_template_structure_errors(void **state)
{
    (void)state;
    assert_string_equal(tmplq("{{ end }}", 0), "ERR 1:4: unexpected {{ end }}");
    assert_string_equal(tmplq("x\n {{ else }}", 0), "ERR 2:5: unexpected {{ else }}");
    assert_string_equal(tmplq("{{ if 1 }}x", 0), "ERR 1:4: unclosed \"if\": missing {{ end }}");
    assert_string_equal(tmplq("{{ range query \"top\" }}\n{{ else }}{{ else }}{{ end }}", 0),
                        "ERR 2:14: unexpected {{ else }} after {{ else }}");
    assert_string_equal(tmplq("{{ if }}x{{ end }}", 0), "ERR 1:4: missing value for if");
    assert_string_equal(tmplq("{{ if 1 }}{{ end x }}", 0), "ERR 1:18: unexpected \"x\" in end");
    assert_string_equal(tmplq("{{ if 1 }}{{ else range 1 }}{{ end }}", 0),
                        "ERR 1:19: unexpected \"range\" after else");
    assert_string_equal(tmplq("{{ $x := 1 }}", 0),
                        "ERR 1:4: declaring variables is not supported in sitrep's templates");
    assert_string_equal(tmplq("{{ 1 | if }}", 0), "ERR 1:8: unexpected \"if\" in command");
    /* a parse error counts in a branch that would not run, and when only checking */
    assert_string_equal(tmplq("{{ if false }}{{ humanize 1 2 }}{{ end }}", 0),
                        "ERR 1:18: wrong number of args for humanize: want 1 got 2");
    assert_string_equal(check("{{ if false }}{{ first }}{{ end }}"),
                        "1:18: wrong number of args for first: want 1 got 0");
    assert_string_equal(check("{{ with query \"x\" }}{{ label }}{{ end }}"),
                        "1:24: wrong number of args for label: want 2 got 0");
    assert_string_equal(check("{{ range query \"x\" }}{{ $value.x }}{{ end }}"),
                        "1:25: can't evaluate a field of a number");
    assert_string_equal(check("{{ if 1 }}{{ else }}"), "1:4: unclosed \"if\": missing {{ end }}");
    /* nesting is bounded */
    char deep[512] = "", *p = deep;
    for (int i = 0; i < RULES_TMPL_MAX_DEPTH + 1; i++)
        p += sprintf(p, "{{ if 1 }}");
    assert_string_equal(check(deep), "1:84: if/range/with nested deeper than 8");
}

static void test_template_runtime_errors(void **state)
{
    (void)state;
    assert_string_equal(tmplq("{{ with query \"none\" | first }}x{{ end }}", 0),
                        "ERR 1:24: first() called on vector with no elements");
    assert_string_equal(
        tmplq("ab {{ query \"bad\" }}", 0),
        "ERR 1:7: error calling query: 1:1: parse error: unexpected identifier \"bad\"");
    assert_string_equal(tmplq("{{ range 3 }}x{{ end }}", 0),
                        "ERR 1:10: range can't iterate over float64");
    assert_string_equal(tmplq("{{ label \"a\" $value }}", 0),
                        "ERR 1:4: wrong type for value; expected sample; got float64");
    assert_string_equal(tmplq("{{ eq 1 \"1\" }}", 0), "ERR 1:4: incompatible types for comparison");
    assert_string_equal(tmplq("{{ range query \"top\" }}{{ .Nope }}{{ end }}", 0),
                        "ERR 1:27: can't evaluate field Nope in type sample");
    assert_string_equal(tmplq("{{ query \"top\" | humanize }}", 0),
                        "ERR 1:18: can't convert vector to a number");
    /* without a callback (a test, a tool): an error, not a crash */
    assert_string_equal(tmpl("{{ query \"up\" }}", 0), "ERR 1:4: query is not available here");
}

static void test_template_bounds(void **state)
{
    (void)state;
    /* queries per expansion */
    assert_string_equal(tmplq("{{ range query \"many\" }}{{ query \"top\" | len }}{{ end }}", 0),
                        "ERR 1:28: more than 16 queries in one expansion");
    /* the output cap holds over a range of a long body */
    char *src = xmalloc(2048);
    char *p = src + sprintf(src, "{{ range query \"many\" }}");
    memset(p, 'x', 1000);
    p += 1000;
    strcpy(p, "{{ end }}");
    assert_string_equal(tmplq(src, 0), "ERR 1:1: expansion longer than 16384 bytes");
    free(src);
    /* work: 100 samples times 1001 actions that print nothing */
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_adds(&b, "{{ range query \"many\" }}");
    for (int i = 0; i < 1001; i++)
        sbuf_adds(&b, "{{ \"\" }}");
    sbuf_adds(&b, "{{ end }}");
    assert_non_null(strstr(tmplq(b.buf, 0), "more than 100000 actions run in one expansion"));
    sbuf_release(&b);
}

/* ---- rule files ---- */

static char *load_errors(const char *yaml)
{
    static char out[4096];
    struct rules_set *set = NULL;
    struct sbuf e;
    sbuf_init(&e, 0);
    int rc = rules_parse(&set, "r.yml", yaml, strlen(yaml), 1000, &e);
    snprintf(out, sizeof(out), "%s", rc == 0 ? "" : e.buf);
    sbuf_release(&e);
    rules_set_free(set);
    return out;
}

static void test_load_ok(void **state)
{
    (void)state;
    const char *y = "groups:\n"
                    "  - name: a\n"
                    "    interval: 1m30s\n"
                    "    limit: 5\n"
                    "    rules:\n"
                    "      - alert: X\n"
                    "        expr: up == 0\n"
                    "        for: 5m\n"
                    "        keep_firing_for: 1m\n"
                    "        labels: {severity: page}\n"
                    "        annotations: {summary: '{{ $labels.instance }} down'}\n"
                    "      - record: job:up:sum\n"
                    "        expr: sum by (job) (up)\n"
                    "  - name: b\n"
                    "    rules: []\n";
    struct rules_set *set = NULL;
    struct sbuf e;
    sbuf_init(&e, 0);
    assert_int_equal(rules_parse(&set, "r.yml", y, strlen(y), 1000, &e), 0);
    assert_int_equal(rules_set_groups(set), 2);
    assert_int_equal(rules_set_rules(set), 2);
    assert_int_equal(set->groups[0].interval_ms, 90000);
    assert_int_equal(set->groups[0].limit, 5);
    assert_int_equal(set->groups[1].interval_ms, 1000); /* the default */
    assert_int_equal(set->groups[0].rules[0].for_ms, 300000);
    assert_int_equal(set->groups[0].rules[0].keep_firing_for_ms, 60000);
    sbuf_release(&e);
    rules_set_free(set);
}

static void test_load_errors(void **state)
{
    (void)state;
    assert_string_equal(load_errors("groups:\n  - name: a\n    rules:\n      - alert: X\n"
                                    "        expr: sum(\n"),
                        "r.yml:5:15: could not parse expression: 1:5: parse error: unclosed left "
                        "parenthesis\n");
    char *e = load_errors("groups:\n  - name: a\n    rules:\n      - record: 'bad name'\n"
                          "        expr: up\n        for: 1m\n");
    assert_non_null(strstr(e, "r.yml:4:17: invalid recording rule name: bad name"));
    assert_non_null(strstr(e, "r.yml:6:14: invalid field 'for' in recording rule"));
    e = load_errors("groups:\n  - name: a\n    rules:\n      - expr: up\n");
    assert_non_null(strstr(e, "r.yml:4:9: one of 'record' or 'alert' must be set"));
    e = load_errors("groups:\n  - name: a\n  - name: a\n");
    assert_non_null(strstr(e, "r.yml:3:11: groupname: \"a\" is repeated in the same file"));
    e = load_errors("groups:\n  - name: a\n    interval: 5 minutes\n    bogus: 1\n");
    assert_non_null(strstr(e, "r.yml:3:15: interval: not a valid duration"));
    assert_non_null(strstr(e, "r.yml:4:5: field bogus not found"));
    e = load_errors("groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n"
                    "        annotations:\n          s: '{{ $value | nope }}'\n");
    assert_non_null(strstr(e, "r.yml:7:14: annotation s: template: 1:13: function \"nope\""));
    /* a label's value is unknown when checking: a number later, perhaps */
    assert_string_equal(load_errors("groups:\n  - name: a\n    rules:\n      - alert: X\n"
                                    "        expr: up\n        annotations:\n"
                                    "          s: '{{ $labels.limit | humanize }} "
                                    "{{ printf \"%d\" $labels.n }}'\n"),
                        "");
    e = load_errors("groups: [\n");
    assert_non_null(strstr(e, "r.yml:2:1:"));
    e = load_errors(
        "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: rate(up[5m])[1m:]\n");
    assert_non_null(strstr(e, "expression must be an instant vector or a scalar"));
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(rules__duration_parse("1h30m", &ms), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(rules__duration_parse("1d2h3m4s5ms", &ms), 0);
    assert_int_equal(ms, 93784005);
    assert_int_equal(rules__duration_parse("0", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(rules__duration_parse("100ms", &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(rules__duration_parse("5m1h", &ms), -1);
    assert_int_equal(rules__duration_parse("1.5h", &ms), -1);
    assert_int_equal(rules__duration_parse("", &ms), -1);
    assert_int_equal(rules__duration_parse("10", &ms), -1);
    assert_int_equal(rules__duration_parse("99999999999999999999s", &ms), -1);
}

/* ---- the state machine on a fake clock ---- */

struct env {
    char dir[128];
    struct tsdb *db;
    struct rules *r;
    int64_t now;
};

static int64_t fake_now(void *ctx)
{
    return ((struct env *)ctx)->now;
}

static void env_open(struct env *e)
{
    if (!e->dir[0]) {
        snprintf(e->dir, sizeof(e->dir), "/tmp/sitrep-rules-test.XXXXXX");
        assert_non_null(mkdtemp(e->dir));
        e->now = T0;
    }
    char tdir[256], err[256];
    snprintf(tdir, sizeof(tdir), "%s/tsdb", e->dir);
    struct tsdb_opts o = {.dir = tdir};
    assert_int_equal(tsdb_open(&e->db, &o, err, sizeof(err)), 0);
}

static void start_rules(struct env *e, const char *yaml, unsigned flap_threshold)
{
    struct rules_set *set = NULL;
    struct sbuf errs;
    sbuf_init(&errs, 0);
    if (rules_parse(&set, "t.yml", yaml, strlen(yaml), 1000, &errs) < 0)
        fail_msg("%s", errs.buf);
    sbuf_release(&errs);
    struct rules_opts o = {.db = e->db,
                           .data_dir = e->dir,
                           .now_ms = fake_now,
                           .clock_ctx = e,
                           .flap_threshold = flap_threshold,
                           .flap_window_ms = 3600000,
                           .flap_quiet_ms = 600000};
    e->r = rules_new(&o, set);
}

static void env_close(struct env *e, int keep)
{
    rules_free(e->r);
    e->r = NULL;
    tsdb_close(e->db);
    e->db = NULL;
    if (!keep) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* Store x=v at the current time, then evaluate. */
static void step(struct env *e, double v)
{
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, e->now);
    metric_fam(&b, "x", "", METRIC_GAUGE);
    metric_add1(&b, v, "instance", "a");
    assert_int_equal(tsdb_append_batch(e->db, "test", &b, NULL), 0);
    metric_buf_release(&b);
    rules_tick(e->r);
}

static struct rules__alert *the_alert(struct env *e)
{
    struct rules__rule *ru = &e->r->set->groups[0].rules[0];
    return ru->nalerts ? ru->alerts[0] : NULL;
}

static const char *ann(const struct rules__alert *a, const char *name)
{
    for (size_t i = 0; i < a->nann; i++)
        if (strcmp(a->ann[i].name, name) == 0)
            return a->ann[i].value;
    return NULL;
}

#define RULE_FOR_3S                                                                                \
    "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: XHigh\n"                   \
    "        expr: x > 0\n        for: 3s\n        labels: {severity: page}\n"                     \
    "        annotations: {summary: 'x is {{ $value }} on {{ $labels.instance }}'}\n"

static void test_pending_firing_resolved(void **state)
{
    (void)state;
    struct env e = {0};
    env_open(&e);
    start_rules(&e, RULE_FOR_3S, 3);
    step(&e, 0);
    assert_null(the_alert(&e));
    e.now += 1000;
    step(&e, 5);
    struct rules__alert *a = the_alert(&e);
    assert_non_null(a);
    assert_int_equal(a->state, RULES_PENDING);
    assert_int_equal(a->active_at, T0 + 1000);
    assert_string_equal(ann(a, "summary"), "x is 5 on a");
    e.now += 2000;
    step(&e, 5);
    assert_int_equal(the_alert(&e)->state, RULES_PENDING); /* 2 s < for */
    e.now += 1000;
    step(&e, 5);
    a = the_alert(&e);
    assert_int_equal(a->state, RULES_FIRING);
    assert_int_equal(a->fired_at, T0 + 4000);
    e.now += 1000;
    step(&e, 0);
    a = the_alert(&e);
    assert_int_equal(a->state, RULES_INACTIVE);
    assert_int_equal(a->resolved_at, T0 + 5000);
    /* back: a new occurrence, pending again from now */
    e.now += 1000;
    step(&e, 1);
    a = the_alert(&e);
    assert_int_equal(a->state, RULES_PENDING);
    assert_int_equal(a->active_at, T0 + 6000);
    /* a pending alert whose condition goes away is dropped, not resolved */
    e.now += 1000;
    step(&e, 0);
    assert_null(the_alert(&e));
    env_close(&e, 0);
}

/* Whether the store answers instant query `expr` at `at` with any series. */
static size_t answers(struct env *e, const char *expr, int64_t at)
{
    struct query_node *q;
    struct query_error pe;
    if (query_parse(expr, &q, &pe) < 0)
        fail_msg("%s: %s", expr, pe.msg);
    struct query_result res;
    struct query_eval_error qe;
    if (query_eval_instant(e->db, q, expr, at, NULL, &res, &qe) < 0)
        fail_msg("%s: %s", expr, qe.msg);
    size_t n = res.nseries;
    query_result_release(&res);
    query_node_free(q);
    return n;
}

/*
 * A recording rule's series that it no longer returns, and every series of a
 * rule a reload removed, end with a stale marker at once (Prometheus's
 * behaviour), rather than answering for the 5 minutes of lookback.
 */
static void test_recording_staleness(void **state)
{
    (void)state;
    struct env e = {0};
    env_open(&e);
    start_rules(&e,
                "groups:\n  - name: g\n    interval: 1s\n    rules:\n"
                "      - record: x:high\n        expr: x > 1\n"
                "      - record: x:any\n        expr: x\n",
                3);
    step(&e, 5);
    assert_int_equal(answers(&e, "x:high", e.now), 1);
    e.now += 1000;
    step(&e, 0); /* x:high returns nothing now */
    assert_int_equal(answers(&e, "x:high", e.now), 0);
    assert_int_equal(answers(&e, "x:any", e.now), 1);
    e.now += 1000;
    step(&e, 7); /* back */
    assert_int_equal(answers(&e, "x:high", e.now), 1);

    /* a reload keeps x:high (its previous output carried over) and drops x:any */
    struct rules_set *set = NULL;
    struct sbuf errs;
    sbuf_init(&errs, 0);
    const char *y = "groups:\n  - name: g\n    interval: 1s\n    rules:\n"
                    "      - record: x:high\n        expr: x > 1\n";
    assert_int_equal(rules_parse(&set, "t.yml", y, strlen(y), 1000, &errs), 0);
    sbuf_release(&errs);
    e.now += 1000;
    rules_update(e.r, set); /* marks x:any stale now */
    assert_int_equal(answers(&e, "x:any", e.now), 0);
    step(&e, 0);
    assert_int_equal(answers(&e, "x:high", e.now), 0);
    env_close(&e, 0);
}

static void test_keep_firing_for(void **state)
{
    (void)state;
    struct env e = {0};
    env_open(&e);
    start_rules(&e,
                "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: X\n"
                "        expr: x > 0\n        keep_firing_for: 3s\n",
                3);
    step(&e, 1);
    assert_int_equal(the_alert(&e)->state, RULES_FIRING); /* no `for`: fires at once */
    /* held for 3 s after the first absent evaluation (at T0 + 1 s), resolved at T0 + 4 s */
    for (int i = 1; i <= 4; i++) {
        e.now += 1000;
        step(&e, 0);
        assert_int_equal(the_alert(&e)->state, i < 4 ? RULES_FIRING : RULES_INACTIVE);
        assert_int_equal(the_alert(&e)->keep_firing_since, T0 + 1000);
    }
    env_close(&e, 0);
}

static void test_flapping(void **state)
{
    (void)state;
    struct env e = {0};
    env_open(&e);
    start_rules(&e,
                "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: X\n"
                "        expr: x > 0\n",
                3);
    /* two full fire/resolve cycles: ordinary */
    for (int c = 0; c < 2; c++) {
        step(&e, 1);
        assert_int_equal(the_alert(&e)->state, RULES_FIRING);
        e.now += 1000;
        step(&e, 0);
        assert_int_equal(the_alert(&e)->state, RULES_INACTIVE);
        e.now += 1000;
    }
    /* the third resolve makes it flap: held firing, marked, with its cycle count */
    step(&e, 1);
    int64_t fired = the_alert(&e)->fired_at;
    e.now += 1000;
    step(&e, 0);
    struct rules__alert *a = the_alert(&e);
    assert_int_equal(a->state, RULES_FIRING);
    assert_true(a->flapping);
    assert_string_equal(ann(a, "flapping"), "true");
    assert_string_equal(ann(a, "flapping_cycles"), "3");
    /* more cycles while flapping: still the same firing alert, cycles counted */
    for (int c = 0; c < 2; c++) {
        e.now += 1000;
        step(&e, 1);
        e.now += 1000;
        step(&e, 0);
        assert_int_equal(the_alert(&e)->state, RULES_FIRING);
        assert_int_equal(the_alert(&e)->fired_at, fired);
    }
    assert_string_equal(ann(the_alert(&e), "flapping_cycles"), "5");
    /* quiet for flap_quiet (10 min): un-flaps, and being absent, resolves */
    e.now += 600000;
    step(&e, 0);
    a = the_alert(&e);
    assert_false(a->flapping);
    assert_null(ann(a, "flapping"));
    assert_int_equal(a->state, RULES_INACTIVE);
    env_close(&e, 0);
}

static void test_restore_after_restart(void **state)
{
    (void)state;
    const char *two =
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: XHigh\n"
        "        expr: x > 0\n        for: 3s\n      - alert: XPending\n        expr: x > 0\n"
        "        for: 1h\n";
    struct env e = {0};
    env_open(&e);
    start_rules(&e, two, 3);
    for (int i = 0; i < 5; i++) {
        step(&e, 1);
        e.now += 1000;
    }
    assert_int_equal(the_alert(&e)->state, RULES_FIRING);
    struct rules__alert a0 = *the_alert(&e);
    struct rules__alert *p = e.r->set->groups[0].rules[1].alerts[0];
    assert_int_equal(p->state, RULES_PENDING);
    int64_t pending_since = p->active_at;
    env_close(&e, 1);

    /* down for 60 s, then up again */
    e.now += 60000;
    env_open(&e);
    start_rules(&e, two, 3);
    struct rules__alert *a = the_alert(&e);
    assert_non_null(a);
    assert_int_equal(a->state, RULES_FIRING);
    assert_int_equal(a->active_at, a0.active_at);
    assert_int_equal(a->fired_at, a0.fired_at);
    assert_int_equal(a->last_sent, a0.last_sent);
    assert_int_equal(a->fp, a0.fp);
    p = e.r->set->groups[0].rules[1].alerts[0];
    assert_int_equal(p->state, RULES_PENDING);
    assert_int_equal(p->active_at, pending_since + 60000); /* downtime does not count */
    step(&e, 1);
    assert_int_equal(the_alert(&e)->state, RULES_FIRING);
    assert_int_equal(the_alert(&e)->fired_at, a0.fired_at);
    env_close(&e, 1);

    /* down longer than the outage tolerance (1 h): nothing restored */
    e.now += 2 * 3600000LL;
    env_open(&e);
    start_rules(&e, two, 3);
    assert_null(the_alert(&e));
    env_close(&e, 0);
}

/* Annotations that query the store, through the real engine. */
static void test_annotation_query(void **state)
{
    (void)state;
    struct env e = {0};
    env_open(&e);
    start_rules(&e,
                "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: XHigh\n"
                "        expr: x > 0\n        annotations:\n"
                "          context: '{{ range query \"topk(2, proc)\" }}{{ .Labels.comm }} "
                "({{ .Labels.pid }}) {{ .Value | humanizePercentage }}; {{ end }}'\n"
                "          same: '{{ with query \"topk(2, proc)\" }}{{ . | first | label "
                "\"comm\" }}{{ end }} {{ query \"scalar(x)\" | first | value }}'\n"
                "          broken: '{{ query \"sum(\" }}'\n",
                3);
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, e.now);
    metric_fam(&b, "proc", "", METRIC_GAUGE);
    metric_add2(&b, 0.25, "comm", "a", "pid", "1");
    metric_add2(&b, 0.05, "comm", "b", "pid", "2");
    metric_add2(&b, 0.5, "comm", "c", "pid", "3");
    assert_int_equal(tsdb_append_batch(e.db, "test", &b, NULL), 0);
    metric_buf_release(&b);
    step(&e, 5);
    struct rules__alert *a = the_alert(&e);
    assert_non_null(a);
    assert_string_equal(ann(a, "context"), "c (3) 50%; a (1) 25%; ");
    assert_string_equal(ann(a, "same"), "c 5");
    /* a failing query fails that annotation only, as any expansion error does */
    assert_non_null(strstr(
        ann(a, "broken"), "<error expanding template: 1:4: error calling query: 1:5: parse error"));
    assert_int_equal(e.r->set->groups[0].rules[0].health, 1);
    env_close(&e, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_values),
        cmocka_unit_test(test_template_functions),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_template_query),
        cmocka_unit_test(test_template_control),
        cmocka_unit_test(test_template_structure_errors),
        cmocka_unit_test(test_template_runtime_errors),
        cmocka_unit_test(test_template_bounds),
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_pending_firing_resolved),
        cmocka_unit_test(test_keep_firing_for),
        cmocka_unit_test(test_recording_staleness),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_restore_after_restart),
        cmocka_unit_test(test_annotation_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
