/*
 * load.c: rule files in Prometheus's layout, read with libyaml's document
 * API so every problem is reported as file:line:col, all of them rather than
 * the first. What `promtool check rules` refuses is refused here too; what
 * sitrep cannot honour (query_offset) is an error that says so rather than
 * being ignored.
 */
#include "metric/metric.h"
#include "query/promql.h"
#include "rules/rules_internal.h"
#include "util/util.h"

#include <errno.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct lwalk {
    const char *file;
    yaml_document_t *doc;
    struct sbuf *errors;
    int nerr;
};

static void errat(struct lwalk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errat(struct lwalk *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    sbuf_addf(w->errors, "%s:%zu:%zu: ", w->file, n->start_mark.line + 1, n->start_mark.column + 1);
    size_t from = w->errors->len;
    va_start(ap, fmt);
    sbuf_vaddf(w->errors, fmt, ap);
    va_end(ap);
    /* One line per problem: a quoted value's newlines and control bytes show as '?'. */
    for (size_t i = from; i < w->errors->len; i++)
        if ((unsigned char)w->errors->buf[i] < 0x20 || w->errors->buf[i] == 0x7f)
            w->errors->buf[i] = '?';
    sbuf_addc(w->errors, '\n');
    w->nerr++;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int rules__duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000LL}, {"h", 3600000LL},
        {"m", 60000LL},          {"s", 1000LL},         {"ms", 1LL}};
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    int64_t total = 0;
    size_t next = 0; /* units must come in decreasing order, each at most once */
    const char *p = s;
    if (!*p)
        return -1;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (v > (INT64_MAX / 10))
                return -1;
            v = v * 10 + (*p - '0');
        }
        size_t i;
        for (i = next; i < ARRAY_SIZE(units); i++) {
            size_t ul = strlen(units[i].unit);
            /* "m" must not swallow the "m" of "ms" */
            if (strncmp(p, units[i].unit, ul) == 0 && !(ul == 1 && p[0] == 'm' && p[1] == 's'))
                break;
        }
        if (i == ARRAY_SIZE(units))
            return -1;
        if (v > INT64_MAX / units[i].ms || total > INT64_MAX - v * units[i].ms)
            return -1;
        total += v * units[i].ms;
        p += strlen(units[i].unit);
        next = i + 1;
    }
    *ms = total;
    return 0;
}

void rules__duration_format(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
        int whole; /* only when it divides the rest */
    } units[] = {{"y", 365LL * 86400000, 1},
                 {"w", 7LL * 86400000, 1},
                 {"d", 86400000LL, 0},
                 {"h", 3600000LL, 0},
                 {"m", 60000LL, 0},
                 {"s", 1000LL, 0},
                 {"ms", 1LL, 0}};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(units) && ms > 0 && n < cap; i++) {
        if (ms < units[i].ms || (units[i].whole && ms % units[i].ms))
            continue;
        n += (size_t)snprintf(out + n, cap - n, "%lld%s", (long long)(ms / units[i].ms),
                              units[i].unit);
        ms %= units[i].ms;
    }
    if (n == 0)
        snprintf(out, cap, "0s");
}

void rules__labels_free(struct rules_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].value);
    }
    free(l);
}

void rules__alert_free(struct rules__alert *a)
{
    if (!a)
        return;
    rules__labels_free(a->labels, a->nlabels);
    rules__labels_free(a->ann, a->nann);
    free(a);
}

void rules__rule_release(struct rules__rule *r)
{
    free(r->name);
    free(r->expr_text);
    query_node_free(r->expr);
    rules__labels_free(r->labels, r->nlabels);
    rules__labels_free(r->ann, r->nann);
    for (size_t i = 0; i < r->nalerts; i++)
        rules__alert_free(r->alerts[i]);
    free(r->alerts);
    metric_buf_release(&r->prev);
}

void rules__group_release(struct rules__group *g)
{
    for (size_t i = 0; i < g->nrules; i++)
        rules__rule_release(&g->rules[i]);
    free(g->rules);
    free(g->name);
    free(g->file);
}

void rules_set_free(struct rules_set *set)
{
    if (!set)
        return;
    for (size_t g = 0; g < set->ngroups; g++)
        rules__group_release(&set->groups[g]);
    free(set->groups);
    free(set);
}

size_t rules_set_groups(const struct rules_set *set)
{
    return set ? set->ngroups : 0;
}

size_t rules_set_rules(const struct rules_set *set)
{
    size_t n = 0;
    for (size_t g = 0; set && g < set->ngroups; g++)
        n += set->groups[g].nrules;
    return n;
}

/* A mapping of label or annotation names to strings; templates checked when tmpl. */
static void get_map(struct lwalk *w, yaml_node_t *v, const char *what, int tmpl, int label_names,
                    struct rules_label **out, size_t *n)
{
    if (v->type == YAML_SCALAR_NODE && !*scalar(v))
        return; /* `labels:` with nothing */
    if (v->type != YAML_MAPPING_NODE) {
        errat(w, v, "%s: want a mapping of name: value", what);
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(w->doc, p->value);
        const char *ks = scalar(k), *vs = scalar(val);
        if (!ks || (label_names ? !metric_label_name_valid(ks) : !*ks)) {
            errat(w, k, "invalid %s name: %s", what, ks ? ks : "(not a string)");
            continue;
        }
        if (label_names && strncmp(ks, "__", 2) == 0) {
            errat(w, k, "invalid %s name: %s (names starting with __ are reserved)", what, ks);
            continue;
        }
        if (!vs) {
            errat(w, val, "%s %s: want a string", what, ks);
            continue;
        }
        int dup = 0;
        for (size_t i = 0; i < *n; i++)
            dup |= strcmp((*out)[i].name, ks) == 0;
        if (dup) {
            errat(w, k, "duplicate %s name: %s", what, ks);
            continue;
        }
        if (tmpl) {
            char err[256];
            struct sbuf sink;
            sbuf_init(&sink, RULES_MAX_TEMPLATE_OUT);
            if (rules_template_expand(vs, NULL, &sink, err, sizeof(err)) < 0)
                errat(w, val, "%s %s: template: %s", what, ks, err);
            sbuf_release(&sink);
        }
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[*n].name = xstrdup(ks);
        (*out)[*n].value = xstrdup(vs);
        (*n)++;
    }
}

static void get_dur(struct lwalk *w, yaml_node_t *v, const char *key, int64_t *dst)
{
    const char *s = scalar(v);
    if (!s || rules__duration_parse(s, dst) < 0)
        errat(w, v, "%s: not a valid duration: \"%s\" (e.g. 30s, 5m, 1h30m)", key,
              s ? s : "(not a string)");
}

static void load_rule(struct lwalk *w, struct rules__group *g, yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "group \"%s\": a rule must be a mapping", g->name);
        return;
    }
    struct rules__rule r = {.line = (int)map->start_mark.line + 1};
    yaml_node_t *record = NULL, *alert = NULL, *expr = NULL, *forn = NULL, *kff = NULL,
                *annn = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *key = scalar(k);
        if (!key) {
            errat(w, k, "rule keys must be strings");
        } else if (strcmp(key, "record") == 0) {
            record = v;
        } else if (strcmp(key, "alert") == 0) {
            alert = v;
        } else if (strcmp(key, "expr") == 0) {
            expr = v;
        } else if (strcmp(key, "for") == 0) {
            forn = v;
            get_dur(w, v, "for", &r.for_ms);
        } else if (strcmp(key, "keep_firing_for") == 0) {
            kff = v;
            get_dur(w, v, "keep_firing_for", &r.keep_firing_for_ms);
        } else if (strcmp(key, "labels") == 0) {
            get_map(w, v, "label", 0, 1, &r.labels, &r.nlabels);
        } else if (strcmp(key, "annotations") == 0) {
            annn = v;
            get_map(w, v, "annotation", 1, 0, &r.ann, &r.nann);
        } else {
            errat(w, k,
                  "field %s not found in type rulefmt.Rule (known: record, alert, expr, for, "
                  "keep_firing_for, labels, annotations)",
                  key);
        }
    }
    if (record && alert)
        errat(w, map, "only one of 'record' and 'alert' must be set");
    else if (!record && !alert)
        errat(w, map, "one of 'record' or 'alert' must be set");
    r.alerting = alert != NULL;
    yaml_node_t *namen = alert ? alert : record;
    const char *name = scalar(namen);
    if (namen && (!name || !*name))
        errat(w, namen, "%s name must be a non-empty string", alert ? "alert" : "record");
    else if (record && !metric_name_valid(name))
        errat(w, record, "invalid recording rule name: %s", name);
    if (name)
        r.name = xstrdup(name);
    if (record) {
        if (forn)
            errat(w, forn, "invalid field 'for' in recording rule");
        if (kff)
            errat(w, kff, "invalid field 'keep_firing_for' in recording rule");
        if (annn)
            errat(w, annn, "invalid field 'annotations' in recording rule");
    }
    /* Alert labels are templates; recording rule labels are literal. */
    for (size_t i = 0; alert && i < r.nlabels; i++) {
        char err[256];
        struct sbuf sink;
        sbuf_init(&sink, RULES_MAX_TEMPLATE_OUT);
        if (rules_template_expand(r.labels[i].value, NULL, &sink, err, sizeof(err)) < 0)
            errat(w, map, "label %s: template: %s", r.labels[i].name, err);
        sbuf_release(&sink);
    }
    const char *es = scalar(expr);
    if (!expr) {
        errat(w, map, "field 'expr' must be set in rule");
    } else if (!es || !*es) {
        errat(w, expr, "field 'expr' must be a non-empty PromQL expression");
    } else {
        struct query_error qe;
        r.expr_text = xstrdup(es);
        if (query_parse(es, &r.expr, &qe) < 0) {
            errat(w, expr, "could not parse expression: %s", qe.msg);
        } else if (r.expr->value_type != QUERY_VALUE_VECTOR &&
                   r.expr->value_type != QUERY_VALUE_SCALAR) {
            errat(w, expr, "expression must be an instant vector or a scalar");
        }
    }
    if (rules_set_rules(NULL) + g->nrules >= RULES_MAX_RULES) {
        errat(w, map, "more than %d rules in a group", RULES_MAX_RULES);
        rules__rule_release(&r);
        return;
    }
    g->rules = xrealloc(g->rules, (g->nrules + 1) * sizeof(*g->rules));
    g->rules[g->nrules++] = r;
}

static void load_group(struct lwalk *w, struct rules_set *set, size_t first, yaml_node_t *map,
                       int64_t default_interval_ms)
{
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "a group must be a mapping with name and rules");
        return;
    }
    struct rules__group g = {.interval_ms = default_interval_ms, .file = xstrdup(w->file)};
    yaml_node_t *rules = NULL, *namen = NULL;
    struct rules_label *glabels = NULL;
    size_t nglabels = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *key = scalar(k);
        if (!key) {
            errat(w, k, "group keys must be strings");
        } else if (strcmp(key, "name") == 0) {
            namen = v;
        } else if (strcmp(key, "interval") == 0) {
            if (get_dur(w, v, "interval", &g.interval_ms), g.interval_ms <= 0)
                errat(w, v, "interval: must be above zero");
        } else if (strcmp(key, "limit") == 0) {
            const char *s = scalar(v);
            char *end;
            errno = 0;
            long lim = s ? strtol(s, &end, 10) : -1;
            if (!s || !*s || *end || errno || lim < 0 || lim > 1000000)
                errat(w, v, "limit: want a whole number from 0 to 1000000");
            else
                g.limit = (unsigned)lim;
        } else if (strcmp(key, "rules") == 0) {
            rules = v;
        } else if (strcmp(key, "labels") == 0) {
            get_map(w, v, "label", 0, 1, &glabels, &nglabels);
        } else if (strcmp(key, "query_offset") == 0 || strcmp(key, "eval_delay") == 0) {
            errat(w, k, "%s is not supported by sitrep (its own samples are never late)", key);
        } else {
            errat(w, k,
                  "field %s not found in type rulefmt.RuleGroup (known: name, interval, limit, "
                  "labels, rules)",
                  key);
        }
    }
    const char *name = scalar(namen);
    if (!namen || !name || !*name) {
        errat(w, namen ? namen : map, "groupname must not be empty");
    } else {
        g.name = xstrdup(name);
        for (size_t i = first; i < set->ngroups; i++)
            if (strcmp(set->groups[i].name, name) == 0)
                errat(w, namen, "groupname: \"%s\" is repeated in the same file", name);
    }
    if (!g.name)
        g.name = xstrdup("");
    if (rules && rules->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = rules->data.sequence.items.start;
             it < rules->data.sequence.items.top; it++)
            load_rule(w, &g, yaml_document_get_node(w->doc, *it));
    } else if (rules && !(rules->type == YAML_SCALAR_NODE && !*scalar(rules))) {
        errat(w, rules, "rules: want a list of rules");
    }
    /* Group labels (Prometheus 3) go into every rule unless the rule sets the same name. */
    for (size_t i = 0; i < g.nrules; i++) {
        struct rules__rule *r = &g.rules[i];
        for (size_t k = 0; k < nglabels; k++) {
            size_t j = 0;
            while (j < r->nlabels && strcmp(r->labels[j].name, glabels[k].name) != 0)
                j++;
            if (j < r->nlabels)
                continue;
            r->labels = xrealloc(r->labels, (r->nlabels + 1) * sizeof(*r->labels));
            r->labels[r->nlabels].name = xstrdup(glabels[k].name);
            r->labels[r->nlabels++].value = xstrdup(glabels[k].value);
        }
    }
    rules__labels_free(glabels, nglabels);
    set->groups = xrealloc(set->groups, (set->ngroups + 1) * sizeof(*set->groups));
    set->groups[set->ngroups++] = g;
}

int rules_parse(struct rules_set **setp, const char *name, const char *text, size_t len,
                int64_t default_interval_ms, struct sbuf *errors)
{
    if (!*setp)
        *setp = xcalloc(1, sizeof(**setp));
    struct rules_set *set = *setp;
    if (default_interval_ms <= 0)
        default_interval_ms = 60000;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        sbuf_addf(errors, "%s:%zu:%zu: %s%s%s\n", name, parser.problem_mark.line + 1,
                  parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    struct lwalk w = {.file = name, .doc = &doc, .errors = errors};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    size_t first = set->ngroups;
    if (root && !(root->type == YAML_SCALAR_NODE && !*scalar(root))) {
        if (root->type != YAML_MAPPING_NODE) {
            errat(&w, root, "want a mapping with a `groups:` list");
        } else {
            for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
                 p < root->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(&doc, p->key);
                yaml_node_t *v = yaml_document_get_node(&doc, p->value);
                const char *key = scalar(k);
                if (!key || strcmp(key, "groups") != 0) {
                    errat(&w, k, "field %s not found in type rulefmt.RuleGroups (known: groups)",
                          key ? key : "(not a string)");
                    continue;
                }
                if (v->type == YAML_SCALAR_NODE && !*scalar(v))
                    continue;
                if (v->type != YAML_SEQUENCE_NODE) {
                    errat(&w, v, "groups: want a list of groups");
                    continue;
                }
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top; it++)
                    load_group(&w, set, first, yaml_document_get_node(&doc, *it),
                               default_interval_ms);
            }
        }
    }
    if (rules_set_rules(set) > RULES_MAX_RULES) {
        sbuf_addf(errors, "%s: more than %d rules in all\n", name, RULES_MAX_RULES);
        w.nerr++;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return w.nerr ? -1 : 0;
}

int rules_load_file(struct rules_set **set, const char *path, int64_t default_interval_ms,
                    struct sbuf *errors)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sbuf_addf(errors, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    struct sbuf text;
    sbuf_init(&text, RULES_MAX_FILE_BYTES);
    char buf[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (sbuf_add(&text, buf, n) < 0) {
            sbuf_addf(errors, "%s: larger than %d bytes\n", path, RULES_MAX_FILE_BYTES);
            rc = -1;
            break;
        }
    if (rc == 0 && ferror(f)) {
        sbuf_addf(errors, "%s: %s\n", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc == 0)
        rc = rules_parse(set, path, text.buf, text.len, default_interval_ms, errors);
    sbuf_release(&text);
    return rc;
}

int rules_load_globs(struct rules_set **setp, const char *const *patterns, size_t n,
                     const char *base_dir, int64_t default_interval_ms, struct sbuf *errors)
{
    if (!*setp)
        *setp = xcalloc(1, sizeof(**setp));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char pat[4096];
        if (patterns[i][0] != '/' && base_dir && *base_dir && strcmp(base_dir, ".") != 0)
            snprintf(pat, sizeof(pat), "%s/%s", base_dir, patterns[i]);
        else
            snprintf(pat, sizeof(pat), "%s", patterns[i]);
        glob_t gl;
        int g = glob(pat, GLOB_ERR, NULL, &gl);
        if (g == GLOB_NOMATCH) {
            globfree(&gl);
            continue;
        }
        if (g != 0) {
            sbuf_addf(errors, "%s: cannot read the folder of this pattern\n", pat);
            globfree(&gl);
            rc = -1;
            continue;
        }
        for (size_t k = 0; k < gl.gl_pathc; k++)
            if (rules_load_file(setp, gl.gl_pathv[k], default_interval_ms, errors) < 0)
                rc = -1;
        globfree(&gl);
    }
    return rc;
}
