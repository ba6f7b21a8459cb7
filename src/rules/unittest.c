/*
 * unittest.c: `sitrep test rules`, rule unit tests in promtool's file format
 * (rule_files, evaluation_interval, group_eval_order, tests with
 * input_series, alert_rule_test and promql_expr_test), run by sitrep's own
 * engine: each test loads its input series into a fresh store in a
 * temporary folder, evaluates every group with rules__eval_group at 0,
 * evaluation_interval, ... up to the last eval_time (manager.c's state
 * machine and template.c's templates, as the daemon runs them), and compares
 * the firing alerts and query answers with what the test expects. Semantics
 * and messages follow promtool's (cmd/promtool/unittest.go, read for
 * behaviour); docs/RULES.md lists where sitrep differs.
 *
 * A problem with the test file itself (YAML, unknown keys, a bad duration or
 * series) is an error with file:line:col, reported before anything runs;
 * rule files' errors are load.c's. Both make the exit status 2; a test that
 * runs and does not get what it expects makes it 1.
 */
#include "query/eval.h"
#include "rules/rules_internal.h"
#include "tsdb/tsdb.h"
#include "util/log.h"
#include "util/util.h"
#include "util/yamlcfg.h"

#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the test file ---- */

struct ut_series {
    char *name;                 /* the metric name */
    struct rules_label *labels; /* sorted by name, without __name__ */
    size_t nlabels;
    struct rules__sv *v; /* one per step of the test's interval */
    size_t nv;
};

/* An expected alert: labels (alertname added) and annotations, both sorted by name. */
struct ut_lset {
    struct rules_label *labels, *ann;
    size_t nlabels, nann;
};

struct ut_alert_test {
    int64_t at;
    char *alertname;
    struct ut_lset *exp;
    size_t nexp;
};

struct ut_sample {
    struct rules_label *labels; /* sorted by name, __name__ included */
    size_t nlabels;
    double v;
};

struct ut_expr_test {
    char *expr;
    int64_t at;
    struct ut_sample *exp;
    size_t nexp;
};

struct ut_group {
    char *name;
    int64_t interval_ms; /* 0: the file's evaluation_interval */
    struct ut_series *series;
    size_t nseries;
    struct ut_alert_test *alerts;
    size_t nalerts;
    struct ut_expr_test *exprs;
    size_t nexprs;
    struct rules_label *external;
    size_t nexternal;
    char *external_url;
};

struct ut_file {
    char **rule_files;
    size_t nrule_files;
    int64_t eval_ms;
    char **order; /* group_eval_order */
    size_t norder;
    struct ut_group *tests;
    size_t ntests;
};

static int label_cmp(const void *a, const void *b)
{
    const struct rules_label *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void sort_labels(struct rules_label *l, size_t n)
{
    if (n > 1)
        qsort(l, n, sizeof(*l), label_cmp);
}

/* Prometheus's labels.Compare: pairwise by name then value, then the shorter first. */
static int lset_cmp(const struct rules_label *a, size_t na, const struct rules_label *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = label_cmp(&a[i], &b[i]);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb;
}

static void label_push(struct rules_label **ls, size_t *n, const char *name, const char *value)
{
    *ls = xrealloc(*ls, (*n + 1) * sizeof(**ls));
    (*ls)[*n].name = xstrdup(name);
    (*ls)[*n].value = xstrdup(value);
    (*n)++;
}

static void file_release(struct ut_file *f)
{
    for (size_t i = 0; i < f->nrule_files; i++)
        free(f->rule_files[i]);
    free(f->rule_files);
    for (size_t i = 0; i < f->norder; i++)
        free(f->order[i]);
    free(f->order);
    for (size_t t = 0; t < f->ntests; t++) {
        struct ut_group *g = &f->tests[t];
        for (size_t i = 0; i < g->nseries; i++) {
            free(g->series[i].name);
            rules__labels_free(g->series[i].labels, g->series[i].nlabels);
            free(g->series[i].v);
        }
        free(g->series);
        for (size_t i = 0; i < g->nalerts; i++) {
            free(g->alerts[i].alertname);
            for (size_t k = 0; k < g->alerts[i].nexp; k++) {
                rules__labels_free(g->alerts[i].exp[k].labels, g->alerts[i].exp[k].nlabels);
                rules__labels_free(g->alerts[i].exp[k].ann, g->alerts[i].exp[k].nann);
            }
            free(g->alerts[i].exp);
        }
        free(g->alerts);
        for (size_t i = 0; i < g->nexprs; i++) {
            free(g->exprs[i].expr);
            for (size_t k = 0; k < g->exprs[i].nexp; k++)
                rules__labels_free(g->exprs[i].exp[k].labels, g->exprs[i].exp[k].nlabels);
            free(g->exprs[i].exp);
        }
        free(g->exprs);
        rules__labels_free(g->external, g->nexternal);
        free(g->external_url);
        free(g->name);
    }
    free(f->tests);
}

static int get_dur(struct yamlcfg *w, yaml_node_t *v, const char *key, int64_t *dst)
{
    const char *s = yamlcfg_scalar(v);
    if (!s || rules__duration_parse(s, dst) < 0) {
        yamlcfg_err(w, v, "%s: not a valid duration: \"%s\" (e.g. 30s, 5m, 1h30m)", key,
                    s ? s : "(not a string)");
        return -1;
    }
    return 0;
}

/* A mapping of names to strings (exp_labels, exp_annotations, external_labels), sorted. */
static void get_strmap(struct yamlcfg *w, yaml_node_t *v, const char *key, struct rules_label **out,
                       size_t *n)
{
    if (yamlcfg_is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        yamlcfg_err(w, v, "%s: want a mapping of name: value", key);
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yamlcfg_node(w, p->key), *val = yamlcfg_node(w, p->value);
        const char *ks = yamlcfg_scalar(k), *vs = yamlcfg_scalar(val);
        if (!ks || !*ks) {
            yamlcfg_err(w, k, "%s: names must be non-empty strings", key);
            continue;
        }
        if (!vs) {
            yamlcfg_err(w, val, "%s: %s: want a string", key, ks);
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < *n; i++)
            dup |= strcmp((*out)[i].name, ks) == 0;
        if (dup) {
            yamlcfg_err(w, k, "%s: duplicate name %s", key, ks);
            continue;
        }
        label_push(out, n, ks, vs);
    }
    sort_labels(*out, *n);
}

/*
 * A series written as PromQL writes a selector (`up{job="a"}`,
 * `{__name__="up"}`): parsed by the PromQL parser, only `=` matchers. With
 * allow_empty, "{}" and "" are the empty set (a scalar's sample). Labels
 * sorted, __name__ included. 0, or -1 reported at v.
 */
static int get_metric(struct yamlcfg *w, yaml_node_t *v, const char *key, int allow_empty,
                      struct rules_label **out, size_t *n)
{
    const char *s = yamlcfg_scalar(v);
    if (!s) {
        yamlcfg_err(w, v, "%s: want a series such as 'up{job=\"node\"}'", key);
        return -1;
    }
    const char *t = s + strspn(s, " \t");
    if (allow_empty && (!*t || strncmp(t, "{}", 2) == 0) && !t[strspn(t, "{} \t")])
        return 0;
    struct query_node *node = NULL;
    struct query_error qe;
    if (query_parse(s, &node, &qe) < 0) {
        yamlcfg_err(w, v, "%s: %s", key, qe.msg);
        return -1;
    }
    int rc = 0;
    if (node->type != QUERY_NODE_VECTOR_SELECTOR || node->vs.offset_ms ||
        node->vs.at != QUERY_AT_NONE) {
        yamlcfg_err(w, v, "%s: want a series such as 'up{job=\"node\"}', not an expression", key);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < node->vs.nmatchers; i++) {
        const struct tsdb_matcher *m = &node->vs.matchers[i];
        int dup = 0;
        for (size_t k = 0; k < *n; k++)
            dup |= strcmp((*out)[k].name, m->name) == 0;
        if (m->op != TSDB_EQ || dup) {
            yamlcfg_err(w, v, "%s: label %s: want each label once, with =", key, m->name);
            rc = -1;
        } else if (*m->value) { /* an empty value is no label */
            label_push(out, n, m->name, m->value);
        }
    }
    query_node_free(node);
    sort_labels(*out, *n);
    return rc;
}

/* A float as YAML writes one: 1, -2.5, 1e3, .inf, -.Inf, .nan. 0, or -1 reported. */
static int get_float(struct yamlcfg *w, yaml_node_t *v, const char *key, double *dst)
{
    const char *s = yamlcfg_scalar(v);
    if (s) {
        const char *q = s + (*s == '+' || *s == '-');
        int neg = *s == '-';
        if (strcmp(q, ".inf") == 0 || strcmp(q, ".Inf") == 0 || strcmp(q, ".INF") == 0) {
            *dst = neg ? -INFINITY : INFINITY;
            return 0;
        }
        if (q == s &&
            (strcmp(q, ".nan") == 0 || strcmp(q, ".NaN") == 0 || strcmp(q, ".NAN") == 0)) {
            *dst = NAN;
            return 0;
        }
        char *end;
        if ((*q >= '0' && *q <= '9') || (*q == '.' && q[1] >= '0' && q[1] <= '9')) {
            double d = strtod(s, &end);
            if (!*end) {
                *dst = d;
                return 0;
            }
        }
    }
    yamlcfg_err(w, v, "%s: want a number (1, 2.5e3, .inf, .nan)", key);
    return -1;
}

struct walk {
    struct yamlcfg *w;
    struct ut_file *f;
    void *item; /* the test, alert test, expected alert, expr test, sample or series read */
    yaml_node_t *series_node;
    int have_alertname;
};

typedef void (*item_done_fn)(struct yamlcfg *w, yaml_node_t *node, struct walk *wk);

/*
 * A list of mappings (`tests:`, `input_series:`, ...): returns an array of
 * *n zeroed elements of elem bytes (the caller owns it), each read key by
 * key by fn with the walk's item pointing at it; done, when not NULL, then
 * checks what the item must have. NULL with *n 0 when v is no list.
 */
static void *each_item(struct yamlcfg *w, yaml_node_t *v, const char *key, size_t elem, size_t *n,
                       yamlcfg_key_fn fn, item_done_fn done)
{
    yaml_node_item_t *it;
    size_t cnt;
    if (yamlcfg_seq(w, v, key, &it, &cnt) < 0)
        return NULL;
    char *arr = xcalloc(cnt ? cnt : 1, elem);
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *node = yamlcfg_node(w, it[i]);
        struct walk sub = {.w = w, .item = arr + i * elem};
        if (yamlcfg_each_key(w, node, key, fn, &sub) == 0 && done)
            done(w, node, &sub);
    }
    *n = cnt;
    return arr;
}

static void series_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                       void *ctx)
{
    struct walk *wk = ctx;
    struct ut_series *s = wk->item;
    if (strcmp(key, "series") == 0) {
        wk->series_node = v;
        struct rules_label *ls = NULL;
        size_t n = 0;
        if (get_metric(w, v, key, 0, &ls, &n) < 0) {
            rules__labels_free(ls, n);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (strcmp(ls[i].name, "__name__") != 0)
                continue;
            s->name = ls[i].value;
            free(ls[i].name);
            ls[i] = ls[--n];
            break;
        }
        sort_labels(ls, n);
        s->labels = ls;
        s->nlabels = n;
        if (!s->name || !metric_name_valid(s->name))
            yamlcfg_err(w, v, "series: want a valid metric name");
        else if (n + 1 > METRIC_MAX_LABELS)
            yamlcfg_err(w, v, "series: more than %d labels", METRIC_MAX_LABELS - 1);
    } else if (strcmp(key, "values") == 0) {
        const char *text = yamlcfg_scalar(v);
        if (!text) {
            yamlcfg_err(w, v, "values: want a string such as '1+1x10'");
            return;
        }
        char err[160];
        size_t col = 0;
        if (rules__series_values_parse(text, &s->v, &s->nv, &col, err, sizeof(err)) < 0) {
            /* point at the character: a quoted scalar starts one column before its text */
            yaml_mark_t m = v->start_mark;
            int quoted = v->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                         v->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            if (!strchr(text, '\n'))
                m.column += col - 1 + (size_t)quoted;
            yaml_node_t at = *v;
            at.start_mark = m;
            yamlcfg_err(w, &at, "values: %s", err);
        }
    } else {
        yamlcfg_err(w, k, "field %s not found in type series (known: series, values)", key);
    }
}

static void exp_alert_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *ctx)
{
    struct ut_lset *e = ((struct walk *)ctx)->item;
    if (strcmp(key, "exp_labels") == 0)
        get_strmap(w, v, key, &e->labels, &e->nlabels);
    else if (strcmp(key, "exp_annotations") == 0)
        get_strmap(w, v, key, &e->ann, &e->nann);
    else
        yamlcfg_err(w, k, "field %s not found in type alert (known: exp_labels, exp_annotations)",
                    key);
}

static void alert_test_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                           void *ctx)
{
    struct walk *wk = ctx;
    struct ut_alert_test *a = wk->item;
    if (strcmp(key, "eval_time") == 0) {
        get_dur(w, v, key, &a->at);
    } else if (strcmp(key, "alertname") == 0) {
        wk->have_alertname = yamlcfg_str(w, v, key, &a->alertname) == 0 && *a->alertname;
    } else if (strcmp(key, "exp_alerts") == 0) {
        a->exp = each_item(w, v, key, sizeof(*a->exp), &a->nexp, exp_alert_key, NULL);
    } else {
        yamlcfg_err(w, k,
                    "field %s not found in type alertTestCase (known: eval_time, alertname, "
                    "exp_alerts)",
                    key);
    }
}

static void sample_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                       void *ctx)
{
    struct ut_sample *s = ((struct walk *)ctx)->item;
    if (strcmp(key, "labels") == 0)
        get_metric(w, v, key, 1, &s->labels, &s->nlabels);
    else if (strcmp(key, "value") == 0)
        get_float(w, v, key, &s->v);
    else
        yamlcfg_err(w, k, "field %s not found in type sample (known: labels, value)", key);
}

static void expr_test_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *ctx)
{
    struct ut_expr_test *e = ((struct walk *)ctx)->item;
    if (strcmp(key, "expr") == 0) {
        yamlcfg_str(w, v, key, &e->expr);
    } else if (strcmp(key, "eval_time") == 0) {
        get_dur(w, v, key, &e->at);
    } else if (strcmp(key, "exp_samples") == 0) {
        e->exp = each_item(w, v, key, sizeof(*e->exp), &e->nexp, sample_key, NULL);
    } else {
        yamlcfg_err(w, k,
                    "field %s not found in type promqlTestCase (known: expr, eval_time, "
                    "exp_samples)",
                    key);
    }
}

static void series_done(struct yamlcfg *w, yaml_node_t *node, struct walk *wk)
{
    if (!wk->series_node)
        yamlcfg_err(w, node, "input_series: an item misses `series`");
}

static void alert_test_done(struct yamlcfg *w, yaml_node_t *node, struct walk *wk)
{
    if (!wk->have_alertname)
        yamlcfg_err(w, node, "alert_rule_test: an item misses required attribute alertname");
}

static void expr_test_done(struct yamlcfg *w, yaml_node_t *node, struct walk *wk)
{
    if (!((struct ut_expr_test *)wk->item)->expr)
        yamlcfg_err(w, node, "promql_expr_test: an item misses `expr`");
}

static void group_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct ut_group *g = ((struct walk *)ctx)->item;
    if (strcmp(key, "interval") == 0) {
        if (get_dur(w, v, key, &g->interval_ms) == 0 && g->interval_ms <= 0)
            yamlcfg_err(w, v, "interval: must be above zero");
    } else if (strcmp(key, "name") == 0) {
        yamlcfg_str(w, v, key, &g->name);
    } else if (strcmp(key, "external_labels") == 0) {
        get_strmap(w, v, key, &g->external, &g->nexternal);
    } else if (strcmp(key, "external_url") == 0) {
        yamlcfg_str(w, v, key, &g->external_url);
    } else if (strcmp(key, "input_series") == 0) {
        g->series = each_item(w, v, key, sizeof(*g->series), &g->nseries, series_key, series_done);
    } else if (strcmp(key, "alert_rule_test") == 0) {
        g->alerts =
            each_item(w, v, key, sizeof(*g->alerts), &g->nalerts, alert_test_key, alert_test_done);
    } else if (strcmp(key, "promql_expr_test") == 0) {
        g->exprs =
            each_item(w, v, key, sizeof(*g->exprs), &g->nexprs, expr_test_key, expr_test_done);
    } else {
        yamlcfg_err(w, k,
                    "field %s not found in type testGroup (known: interval, input_series, "
                    "alert_rule_test, promql_expr_test, external_labels, external_url, name)",
                    key);
    }
}

static void file_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct ut_file *f = ((struct walk *)ctx)->f;
    if (strcmp(key, "rule_files") == 0) {
        yamlcfg_str_list(w, v, key, &f->rule_files, &f->nrule_files);
    } else if (strcmp(key, "evaluation_interval") == 0) {
        if (get_dur(w, v, key, &f->eval_ms) == 0 && f->eval_ms <= 0)
            yamlcfg_err(w, v, "evaluation_interval: must be above zero");
    } else if (strcmp(key, "group_eval_order") == 0) {
        size_t before = f->norder;
        if (yamlcfg_str_list(w, v, key, &f->order, &f->norder) < 0)
            return;
        for (size_t i = before; i < f->norder; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(f->order[i], f->order[j]) == 0)
                    yamlcfg_err(w, v, "group name repeated in evaluation order: %s", f->order[i]);
    } else if (strcmp(key, "tests") == 0) {
        f->tests = each_item(w, v, key, sizeof(*f->tests), &f->ntests, group_key, NULL);
    } else {
        yamlcfg_err(w, k,
                    "field %s not found in type unitTestFile (known: rule_files, "
                    "evaluation_interval, group_eval_order, tests)",
                    key);
    }
}

static int parse_root(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                      struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    struct walk wk = {.w = &w, .f = cfg};
    if (root)
        yamlcfg_each_key(&w, root, "test file", file_key, &wk);
    return w.nerr ? -1 : 0;
}

/* ---- printing, as promtool prints ---- */

/* Go's strconv.Quote, for the ASCII controls sitrep's strings can hold. */
static void quote(struct sbuf *b, const char *s)
{
    sbuf_addc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = *p == '"'    ? "\\\""
                          : *p == '\\' ? "\\\\"
                          : *p == '\n' ? "\\n"
                          : *p == '\t' ? "\\t"
                          : *p == '\r' ? "\\r"
                                       : NULL;
        if (esc)
            sbuf_adds(b, esc);
        else if (*p < 0x20 || *p == 0x7f)
            sbuf_addf(b, "\\x%02x", *p);
        else
            sbuf_addc(b, (char)*p);
    }
    sbuf_addc(b, '"');
}

static void print_lset(struct sbuf *b, const struct rules_label *l, size_t n)
{
    sbuf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        sbuf_addf(b, "%s%s=", i ? ", " : "", l[i].name);
        quote(b, l[i].value);
    }
    sbuf_addc(b, '}');
}

/* Go's time.Duration String for whole milliseconds: 0s, 500ms, 1m0s, 1h2m3.5s. */
static void print_go_duration(struct sbuf *b, int64_t ms)
{
    if (ms > 0 && ms < 1000) {
        sbuf_addf(b, "%lldms", (long long)ms);
        return;
    }
    if (ms >= 3600000)
        sbuf_addf(b, "%lldh", (long long)(ms / 3600000));
    if (ms >= 60000)
        sbuf_addf(b, "%lldm", (long long)(ms / 60000 % 60));
    int64_t s = ms % 60000;
    sbuf_addf(b, "%lld", (long long)(s / 1000));
    if (s % 1000) {
        char frac[8];
        snprintf(frac, sizeof(frac), "%03lld", (long long)(s % 1000));
        for (size_t n = strlen(frac); n && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
        sbuf_addf(b, ".%s", frac);
    }
    sbuf_addc(b, 's');
}

static void print_duration(struct sbuf *b, int64_t ms)
{
    char d[64];
    rules__duration_format(ms, d, sizeof(d));
    sbuf_adds(b, d);
}

static int lset_pair_cmp(const void *a, const void *b)
{
    const struct ut_lset *x = a, *y = b;
    int c = lset_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
    return c ? c : lset_cmp(x->ann, x->nann, y->ann, y->nann);
}

/* promtool's list of alerts: "[]", or numbered Labels:/Annotations: blocks, indented. */
static void print_alerts(struct sbuf *b, const struct ut_lset *a, size_t n)
{
    static const char ind[] = "            ";
    if (!n) {
        sbuf_adds(b, "[]");
        return;
    }
    sbuf_adds(b, "[");
    for (size_t i = 0; i < n; i++) {
        sbuf_addf(b, "%s\n%s%zu:\n%s  Labels:", i ? "," : "", ind, i, ind);
        print_lset(b, a[i].labels, a[i].nlabels);
        sbuf_addf(b, "\n%s  Annotations:", ind);
        print_lset(b, a[i].ann, a[i].nann);
    }
    sbuf_addf(b, "\n%s]", ind);
}

static int sample_cmp(const void *a, const void *b)
{
    const struct ut_sample *x = a, *y = b;
    return lset_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static void print_samples(struct sbuf *b, const struct ut_sample *s, size_t n)
{
    if (!n)
        sbuf_adds(b, "nil");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_adds(b, ", ");
        print_lset(b, s[i].labels, s[i].nlabels);
        sbuf_addc(b, ' ');
        rules__go_float(b, s[i].v, 'E');
    }
}

/* ---- running one test ---- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* The store of one test, in a temporary folder removed when done. */
struct ut_env {
    char dir[PATH_MAX];
    struct tsdb *db;
    struct rules *r;
    struct rules__group **groups; /* in evaluation order */
    size_t ngroups;
    size_t loaded; /* steps of the input series appended so far */
};

static void env_close(struct ut_env *e)
{
    rules_free(e->r);
    tsdb_close(e->db);
    free(e->groups);
    if (e->dir[0])
        nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Append the input series' steps up to ts (promtool loads lazily too). */
static void load_till(struct ut_env *e, const struct ut_group *g, int64_t interval, int64_t ts)
{
    static const uint64_t stale_bits = 0x7ff0000000000002ull;
    double stale;
    memcpy(&stale, &stale_bits, sizeof(stale));
    struct metric_buf b;
    metric_buf_init(&b);
    for (;; e->loaded++) {
        int64_t t = (int64_t)e->loaded * interval;
        int more = 0;
        if (t > ts)
            break;
        metric_buf_reset(&b, t);
        for (size_t i = 0; i < g->nseries; i++) {
            const struct ut_series *s = &g->series[i];
            if (e->loaded >= s->nv)
                continue;
            more = 1;
            if (s->v[e->loaded].kind == RULES_SV_OMITTED)
                continue;
            struct metric_label l[METRIC_MAX_LABELS];
            for (size_t k = 0; k < s->nlabels; k++)
                l[k] = (struct metric_label){s->labels[k].name, s->labels[k].value};
            metric_fam(&b, s->name, "", METRIC_UNTYPED);
            metric_add(&b, s->v[e->loaded].kind == RULES_SV_STALE ? stale : s->v[e->loaded].v,
                       s->nlabels, l);
        }
        if (!more)
            break;
        if (b.nsamples)
            tsdb_append_batch(e->db, "test", &b, NULL);
    }
    metric_buf_release(&b);
}

/* The index of name in order, or the end (groups not named are evaluated last, as loaded). */
static size_t order_of(const struct ut_file *f, const char *name)
{
    for (size_t i = 0; i < f->norder; i++)
        if (strcmp(f->order[i], name) == 0)
            return i;
    return f->norder;
}

static int env_open(struct ut_env *e, const struct ut_file *f, const struct ut_group *g,
                    struct rules_set *set, struct sbuf *report)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof(e->dir), "%s/sitrep-test-rules.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir)) {
        sbuf_addf(report, "cannot create a temporary folder in %s: %s\n", tmp ? tmp : "/tmp",
                  strerror(errno));
        e->dir[0] = '\0';
        rules_set_free(set);
        return -1;
    }
    char tdir[PATH_MAX + 8], err[256];
    snprintf(tdir, sizeof(tdir), "%s/tsdb", e->dir);
    struct tsdb_opts to = {.dir = tdir};
    if (tsdb_open(&e->db, &to, err, sizeof(err)) < 0) {
        sbuf_addf(report, "cannot open a store in %s: %s\n", tdir, err);
        rules_set_free(set);
        return -1;
    }
    /* Stable by group_eval_order, else in load order (the pack's, then the files'). */
    e->groups = xcalloc(set->ngroups ? set->ngroups : 1, sizeof(*e->groups));
    for (size_t rank = 0; rank <= f->norder; rank++)
        for (size_t i = 0; i < set->ngroups; i++)
            if (order_of(f, set->groups[i].name) == rank)
                e->groups[e->ngroups++] = &set->groups[i];
    struct rules_opts o = {
        .db = e->db,
        .external = g->external,
        .nexternal = g->nexternal,
        .external_url = g->external_url,
        .flap_threshold = UINT_MAX, /* promtool knows no flapping: an alert resolves */
    };
    e->r = rules_new(&o, set);
    return e->r ? 0 : -1;
}

/* The firing alerts of the rules named name, sorted (labels and annotations copied). */
static struct ut_lset *firing(struct ut_env *e, const char *name, size_t *n)
{
    struct ut_lset *out = NULL;
    *n = 0;
    for (size_t g = 0; g < e->ngroups; g++)
        for (size_t i = 0; i < e->groups[g]->nrules; i++) {
            const struct rules__rule *ru = &e->groups[g]->rules[i];
            if (!ru->alerting || strcmp(ru->name, name) != 0)
                continue;
            for (size_t k = 0; k < ru->nalerts; k++) {
                const struct rules__alert *a = ru->alerts[k];
                if (a->state != RULES_FIRING)
                    continue;
                out = xrealloc(out, (*n + 1) * sizeof(*out));
                struct ut_lset *l = &out[(*n)++];
                *l = (struct ut_lset){0};
                for (size_t j = 0; j < a->nlabels; j++)
                    label_push(&l->labels, &l->nlabels, a->labels[j].name, a->labels[j].value);
                for (size_t j = 0; j < a->nann; j++)
                    label_push(&l->ann, &l->nann, a->ann[j].name, a->ann[j].value);
                sort_labels(l->labels, l->nlabels);
                sort_labels(l->ann, l->nann);
            }
        }
    if (*n > 1)
        qsort(out, *n, sizeof(*out), lset_pair_cmp);
    return out;
}

static void lsets_free(struct ut_lset *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rules__labels_free(l[i].labels, l[i].nlabels);
        rules__labels_free(l[i].ann, l[i].nann);
    }
    free(l);
}

/* One alert_rule_test against the engine's state now; a failure appended to errs. */
static int check_alerts(struct ut_env *e, const struct ut_group *g, const struct ut_alert_test *t,
                        struct sbuf *errs)
{
    size_t ngot;
    struct ut_lset *got = firing(e, t->alertname, &ngot);
    struct ut_lset *exp = xcalloc(t->nexp ? t->nexp : 1, sizeof(*exp));
    for (size_t i = 0; i < t->nexp; i++) {
        /* the test names the rule's labels; alertname is added as the engine adds it */
        int named = 0;
        for (size_t k = 0; k < t->exp[i].nlabels; k++) {
            const struct rules_label *l = &t->exp[i].labels[k];
            named |= strcmp(l->name, "alertname") == 0;
            label_push(&exp[i].labels, &exp[i].nlabels, l->name,
                       strcmp(l->name, "alertname") == 0 ? t->alertname : l->value);
        }
        if (!named)
            label_push(&exp[i].labels, &exp[i].nlabels, "alertname", t->alertname);
        for (size_t k = 0; k < t->exp[i].nann; k++)
            label_push(&exp[i].ann, &exp[i].nann, t->exp[i].ann[k].name, t->exp[i].ann[k].value);
        sort_labels(exp[i].labels, exp[i].nlabels);
    }
    if (t->nexp > 1)
        qsort(exp, t->nexp, sizeof(*exp), lset_pair_cmp);
    int same = ngot == t->nexp;
    for (size_t i = 0; same && i < ngot; i++)
        same = lset_pair_cmp(&got[i], &exp[i]) == 0;
    if (!same) {
        if (g->name && *g->name)
            sbuf_addf(errs, "    name: %s,\n", g->name);
        sbuf_addf(errs, "    alertname: %s, time: ", t->alertname);
        print_duration(errs, t->at);
        sbuf_adds(errs, ", \n        exp:");
        print_alerts(errs, exp, t->nexp);
        sbuf_adds(errs, ", \n        got:");
        print_alerts(errs, got, ngot);
        sbuf_adds(errs, "\n\n");
    }
    lsets_free(got, ngot);
    lsets_free(exp, t->nexp);
    return same ? 0 : -1;
}

/* One promql_expr_test; a failure appended to errs. */
static int check_expr(struct ut_env *e, const struct ut_expr_test *t, struct sbuf *errs)
{
    struct query_result res;
    struct query_eval_error qerr;
    struct sbuf q;
    sbuf_init(&q, 0);
    quote(&q, t->expr);
    if (query_run_instant(e->db, t->expr, t->at, NULL, &res, &qerr) < 0) {
        sbuf_addf(errs, "    expr: %s, time: ", q.buf);
        print_duration(errs, t->at);
        sbuf_addf(errs, ", err: %s\n\n", qerr.msg);
        sbuf_release(&q);
        return -1;
    }
    int rc = 0;
    size_t n = res.type == QUERY_VALUE_SCALAR ? 1 : res.nseries;
    struct ut_sample *got = xcalloc(n ? n : 1, sizeof(*got));
    if (res.type == QUERY_VALUE_SCALAR) {
        got[0].v = res.scalar;
    } else if (res.type == QUERY_VALUE_VECTOR) {
        for (size_t i = 0; i < n; i++) {
            const struct query_series *s = &res.series[i];
            for (size_t k = 0; k < s->nlabels; k++)
                label_push(&got[i].labels, &got[i].nlabels, s->labels[k].name, s->labels[k].value);
            got[i].v = s->npoints ? s->points[0].v : NAN;
        }
    } else {
        sbuf_addf(errs, "    expr: %s, time: ", q.buf);
        print_duration(errs, t->at);
        sbuf_adds(errs, ", err: rule result is not a vector or scalar\n\n");
        n = 0;
        rc = -1;
    }
    query_result_release(&res);
    if (rc == 0) {
        struct ut_sample *exp = xcalloc(t->nexp ? t->nexp : 1, sizeof(*exp));
        if (t->nexp)
            memcpy(exp, t->exp, t->nexp * sizeof(*exp));
        qsort(exp, t->nexp, sizeof(*exp), sample_cmp);
        qsort(got, n, sizeof(*got), sample_cmp);
        int same = n == t->nexp;
        for (size_t i = 0; same && i < n; i++)
            same = sample_cmp(&got[i], &exp[i]) == 0 &&
                   (got[i].v == exp[i].v || (isnan(got[i].v) && isnan(exp[i].v)));
        if (!same) {
            sbuf_addf(errs, "    expr: %s, time: ", q.buf);
            print_duration(errs, t->at);
            sbuf_adds(errs, ",\n        exp: ");
            print_samples(errs, exp, t->nexp);
            sbuf_adds(errs, "\n        got: ");
            print_samples(errs, got, n);
            sbuf_adds(errs, "\n\n");
            rc = -1;
        }
        free(exp);
    }
    for (size_t i = 0; i < n; i++)
        rules__labels_free(got[i].labels, got[i].nlabels);
    free(got);
    sbuf_release(&q);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Run one test group over set (taken over). Failures are appended to errs.
 * Returns 0 if it passed, 1 if it failed, 2 if it could not run.
 */
static int run_group(const struct ut_file *f, const struct ut_group *g, struct rules_set *set,
                     struct sbuf *errs)
{
    struct ut_env e = {0};
    if (env_open(&e, f, g, set, errs) < 0) {
        env_close(&e);
        return 2;
    }
    int64_t eval = f->eval_ms, interval = g->interval_ms ? g->interval_ms : f->eval_ms;
    int64_t maxt = 0;
    int64_t *times = xcalloc(g->nalerts ? g->nalerts : 1, sizeof(*times));
    for (size_t i = 0; i < g->nalerts; i++) {
        times[i] = g->alerts[i].at;
        maxt = times[i] > maxt ? times[i] : maxt;
    }
    for (size_t i = 0; i < g->nexprs; i++)
        maxt = g->exprs[i].at > maxt ? g->exprs[i].at : maxt;
    qsort(times, g->nalerts, sizeof(*times), cmp_i64);
    size_t ntimes = 0;
    for (size_t i = 0; i < g->nalerts; i++)
        if (!ntimes || times[ntimes - 1] != times[i])
            times[ntimes++] = times[i];
    int failed = 0, broken = 0;
    size_t curr = 0;
    for (int64_t ts = 0; ts <= maxt && !broken; ts += eval) {
        load_till(&e, g, interval, ts);
        for (size_t i = 0; i < e.ngroups && !broken; i++) {
            rules__eval_group(e.r, e.groups[i], ts);
            for (size_t k = 0; k < e.groups[i]->nrules; k++) {
                const struct rules__rule *ru = &e.groups[i]->rules[k];
                if (ru->health >= 0)
                    continue;
                sbuf_addf(errs, "    rule: %s, time: ", ru->name);
                print_go_duration(errs, ts);
                sbuf_addf(errs, ", err: %s\n\n", ru->last_error);
                broken = 1; /* as promtool: the rest of this test is not run */
            }
        }
        /* eval_times in [ts, ts + evaluation_interval) are checked against this evaluation */
        for (; !broken && curr < ntimes && times[curr] >= ts && times[curr] < ts + eval; curr++)
            for (size_t i = 0; i < g->nalerts; i++)
                if (g->alerts[i].at == times[curr])
                    failed |= check_alerts(&e, g, &g->alerts[i], errs) < 0;
    }
    for (size_t i = 0; !broken && i < g->nexprs; i++)
        failed |= check_expr(&e, &g->exprs[i], errs) < 0;
    free(times);
    env_close(&e);
    return failed || broken ? 1 : 0;
}

/* promtool warns about a rule_files pattern that matches nothing; so do we. */
static void warn_unmatched(const struct ut_file *f, const char *base_dir, struct sbuf *report)
{
    for (size_t i = 0; i < f->nrule_files; i++) {
        char pat[PATH_MAX];
        if (f->rule_files[i][0] != '/' && base_dir)
            snprintf(pat, sizeof(pat), "%s/%s", base_dir, f->rule_files[i]);
        else
            snprintf(pat, sizeof(pat), "%s", f->rule_files[i]);
        glob_t gl;
        if (glob(pat, 0, NULL, &gl) == GLOB_NOMATCH)
            sbuf_addf(report, "  WARNING: no file match pattern %s\n", pat);
        globfree(&gl);
    }
}

int rules__unittest_run(const char *name, const char *text, size_t len, const char *base_dir,
                        int builtin, struct sbuf *report)
{
    struct ut_file f = {0};
    struct sbuf errors;
    sbuf_init(&errors, 1 << 20);
    char *copy = xstrndup(text, len);
    int rc = yamlcfg_parse_text(name, copy, &errors, parse_root, &f);
    free(copy);
    if (rc < 0) {
        sbuf_add(report, errors.buf, errors.len);
        sbuf_release(&errors);
        file_release(&f);
        return 2;
    }
    if (!f.eval_ms)
        f.eval_ms = 60000;
    warn_unmatched(&f, base_dir, report);
    int result = 0;
    struct sbuf fails;
    sbuf_init(&fails, 0);
    for (size_t t = 0; t < f.ntests && result < 2; t++) {
        /* a fresh set per test: alerts and their state must not leak between tests */
        struct rules_set *set = NULL;
        struct rules_sources src = {.builtin = builtin,
                                    .patterns = (const char *const *)f.rule_files,
                                    .npatterns = f.nrule_files,
                                    .base_dir = base_dir,
                                    .default_interval_ms = f.eval_ms};
        sbuf_reset(&errors);
        if (rules_load(&set, &src, &errors) < 0) {
            sbuf_add(report, errors.buf, errors.len);
            result = 2;
            break;
        }
        int r = run_group(&f, &f.tests[t], set, &fails);
        result = r > result ? r : result;
    }
    if (result == 1) {
        sbuf_adds(report, "  FAILED:\n");
        sbuf_add(report, fails.buf, fails.len);
    }
    sbuf_release(&fails);
    sbuf_release(&errors);
    file_release(&f);
    return result;
}

int rules__unittest_file(const char *path, int builtin, struct sbuf *report)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sbuf_addf(report, "%s: %s\n", path, strerror(errno));
        return 2;
    }
    struct sbuf text;
    sbuf_init(&text, RULES_MAX_FILE_BYTES);
    char buf[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), fp)) > 0)
        if (sbuf_add(&text, buf, n) < 0) {
            sbuf_addf(report, "%s: larger than %d bytes\n", path, RULES_MAX_FILE_BYTES);
            rc = 2;
        }
    if (rc == 0 && ferror(fp)) {
        sbuf_addf(report, "%s: %s\n", path, strerror(errno));
        rc = 2;
    }
    fclose(fp);
    if (rc == 0) {
        char *dir = xstrdup(path), *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        rc = rules__unittest_run(path, text.buf, text.len, slash ? (*dir ? dir : "/") : NULL,
                                 builtin, report);
        free(dir);
    }
    sbuf_release(&text);
    return rc;
}
