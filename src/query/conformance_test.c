/*
 * conformance_test.c: runs Prometheus' own PromQL test scripts
 * (the .test files of ../shared/conformance/promql, unchanged; format in that folder's
 * README) against sitrep's evaluator and its real store, and reports per
 * file how many evals passed, failed, or were skipped as unsupported (native
 * histograms, load_with_nhcb, @st start timestamps, and the experimental
 * features the parser refuses as "not supported").
 *
 * What a script says is done as Prometheus' runner (promqltest/test.go)
 * does it: each `clear` starts a new store (opened in a temporary folder,
 * no background thread), each `load` appends its samples one timestamp at a
 * time in time order; an instant eval also runs at the other times
 * Prometheus checks (every selector pinned with @, evaluated at -10t, 0,
 * t/5, t and 10t) and as a range query around t; results are compared with
 * its tolerance (relative 1e-6, NaN equals NaN, stale equals only stale),
 * annotations and error messages as its `expect` lines say.
 *
 * The test fails if an eval of the files that need only classic float
 * PromQL fails, unless it is in known_failures[] below (reviewed, with the
 * reason); an entry there that passes fails the test too, so the list stays
 * exact. Scripts are found at $SITREP_CONFORMANCE_DIR, else next to the
 * project in ../shared/conformance/promql; without them the test skips.
 */
#include "testutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <strings.h>
#include <sys/stat.h>

#include "query/eval.h"
#include "query/lex.h"
#include "query/promql.h"
#include "tsdb/tsdb.h"
#include "util/sbuf.h"

/* The files whose every eval must pass (classic float PromQL only). */
static const char *const required_files[] = {
    "literals.test",    "selectors.test",     "staleness.test",      "operators.test",
    "aggregators.test", "functions.test",     "trig_functions.test", "at_modifier.test",
    "subquery.test",    "range_queries.test", "collision.test",      "name_label_dropping.test",
    "histograms.test",
};

/* Reviewed evals of the required files that fail today: file, line, why. */
static const struct {
    const char *file;
    int line;
    const char *reason;
} known_failures[] = {
    {NULL, 0, NULL},
};

/* ---- small helpers ---------------------------------------------------------- */

static char *dupn(const char *s, size_t n)
{
    return xstrndup(s, n);
}

static pcre2_code *re_compile(const char *pat, uint32_t opts)
{
    int ec;
    PCRE2_SIZE eo;
    return pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts | PCRE2_UTF, &ec, &eo, NULL);
}

/* Unanchored search (Go's regexp.MatchString). */
static int re_search(pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Prometheus' model.ParseDuration (ms): 1h30m, 5m, 0, 10s53ms, 1y, 2w, 3d. */
static int parse_duration(const char *s, int64_t *ms)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"y", 365ll * 86400000},
                 {"w", 7ll * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"ms", 1},
                 {"m", 60000},
                 {"s", 1000}};
    int64_t total = 0;
    const char *p = s;
    if (!*p)
        return -1;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        int64_t n = 0;
        while (*p >= '0' && *p <= '9')
            n = n * 10 + (*p++ - '0');
        size_t k;
        for (k = 0; k < ARRAY_SIZE(units); k++)
            if (strncmp(p, units[k].u, strlen(units[k].u)) == 0 &&
                !(units[k].u[0] == 'm' && units[k].u[1] == '\0' && p[1] == 's'))
                break;
        if (k == ARRAY_SIZE(units))
            return -1;
        p += strlen(units[k].u);
        total += n * units[k].ms;
    }
    *ms = total;
    return 0;
}

/* Go's strconv.Unquote for "...", '...' and `...`. Returns a malloc'd string or NULL. */
static char *unquote(const char *s, size_t n, size_t *used)
{
    if (n < 2)
        return NULL;
    char q = s[0];
    if (q != '"' && q != '\'' && q != '`')
        return NULL;
    struct sbuf sb;
    sbuf_init(&sb, 0);
    size_t i = 1;
    for (; i < n && s[i] != q; i++) {
        if (q == '`' || s[i] != '\\') {
            sbuf_addc(&sb, s[i]);
            continue;
        }
        if (++i >= n)
            break;
        char c = s[i];
        switch (c) {
        case 'a':
            sbuf_addc(&sb, '\a');
            break;
        case 'b':
            sbuf_addc(&sb, '\b');
            break;
        case 'f':
            sbuf_addc(&sb, '\f');
            break;
        case 'n':
            sbuf_addc(&sb, '\n');
            break;
        case 'r':
            sbuf_addc(&sb, '\r');
            break;
        case 't':
            sbuf_addc(&sb, '\t');
            break;
        case 'v':
            sbuf_addc(&sb, '\v');
            break;
        case 'x':
            if (i + 2 < n) {
                char h[3] = {s[i + 1], s[i + 2], 0};
                sbuf_addc(&sb, (char)strtol(h, NULL, 16));
                i += 2;
            }
            break;
        case 'u':
        case 'U': {
            int len = c == 'u' ? 4 : 8;
            char h[9] = {0};
            for (int k = 0; k < len && i + 1 < n; k++)
                h[k] = s[++i];
            query__encode_rune(&sb, (int32_t)strtol(h, NULL, 16));
            break;
        }
        default:
            if (c >= '0' && c <= '7' && i + 2 < n) {
                char o[4] = {s[i], s[i + 1], s[i + 2], 0};
                sbuf_addc(&sb, (char)strtol(o, NULL, 8));
                i += 2;
            } else {
                sbuf_addc(&sb, c);
            }
        }
    }
    if (i >= n) {
        sbuf_release(&sb);
        return NULL;
    }
    *used = i + 1;
    char *r = sbuf_detach(&sb, NULL);
    sbuf_release(&sb); /* detach re-initialised it */
    return r;
}

/* ---- series descriptions: `name{a="b"} 1+2x3 _ stale` ---------------------------- */

struct label {
    char *name, *value;
};

struct labelset {
    struct label *l;
    size_t n;
};

enum { V_NUM, V_OMIT };

struct sval {
    int kind;
    double v;
};

struct sdesc {
    struct labelset ls;
    struct sval *v;
    size_t nv, cap;
    int native; /* a native histogram value ({{...}}) */
};

static void labelset_free(struct labelset *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->l[i].name);
        free(ls->l[i].value);
    }
    free(ls->l);
    ls->l = NULL;
    ls->n = 0;
}

static void sdesc_free(struct sdesc *d)
{
    labelset_free(&d->ls);
    free(d->v);
}

static void labelset_add(struct labelset *ls, char *name, char *value)
{
    if (!value[0]) { /* an empty value is no label */
        free(name);
        free(value);
        return;
    }
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->l[i].name, name) == 0) {
            free(ls->l[i].value);
            ls->l[i].value = value;
            free(name);
            return;
        }
    ls->l = xrealloc(ls->l, (ls->n + 1) * sizeof(*ls->l));
    size_t k = ls->n++;
    while (k > 0 && strcmp(ls->l[k - 1].name, name) > 0) {
        ls->l[k] = ls->l[k - 1];
        k--;
    }
    ls->l[k] = (struct label){name, value};
}

static int labelset_eq(const struct labelset *a, const struct label *l, size_t n)
{
    if (a->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(a->l[i].name, l[i].name) || strcmp(a->l[i].value, l[i].value))
            return 0;
    return 1;
}

static const char *labelset_get(const struct labelset *ls, const char *name)
{
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->l[i].name, name) == 0)
            return ls->l[i].value;
    return NULL;
}

static void labelset_string(const struct labelset *ls, struct sbuf *sb)
{
    sbuf_addc(sb, '{');
    for (size_t i = 0; i < ls->n; i++)
        sbuf_addf(sb, "%s%s=\"%s\"", i ? ", " : "", ls->l[i].name, ls->l[i].value);
    sbuf_addc(sb, '}');
}

static void metric_string(const struct metric_label *l, size_t n, struct sbuf *sb)
{
    sbuf_addc(sb, '{');
    for (size_t i = 0; i < n; i++)
        sbuf_addf(sb, "%s%s=\"%s\"", i ? ", " : "", l[i].name, l[i].value);
    sbuf_addc(sb, '}');
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int ident_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* The label part of a series description. Returns the rest, or NULL. */
static const char *parse_labels(const char *p, struct labelset *ls)
{
    p = skip_ws(p);
    if (ident_char(*p, 1)) {
        const char *s = p;
        while (ident_char(*p, 0))
            p++;
        labelset_add(ls, xstrdup("__name__"), dupn(s, (size_t)(p - s)));
    }
    if (*p != '{')
        return p;
    p++;
    for (;;) {
        p = skip_ws(p);
        if (*p == '}')
            return p + 1;
        char *name;
        size_t used;
        if (*p == '"' || *p == '\'' || *p == '`') {
            name = unquote(p, strlen(p), &used);
            if (!name)
                return NULL;
            p = skip_ws(p + used);
            if (*p == ',' || *p == '}') { /* {"metric.name"} */
                labelset_add(ls, xstrdup("__name__"), name);
                if (*p == ',')
                    p++;
                continue;
            }
        } else {
            const char *s = p;
            while (ident_char(*p, p == s))
                p++;
            if (p == s)
                return NULL;
            name = dupn(s, (size_t)(p - s));
            p = skip_ws(p);
        }
        if (*p != '=') {
            free(name);
            return NULL;
        }
        p = skip_ws(p + 1);
        char *value = unquote(p, strlen(p), &used);
        if (!value) {
            free(name);
            return NULL;
        }
        labelset_add(ls, name, value);
        p = skip_ws(p + used);
        if (*p == ',')
            p++;
    }
}

/*
 * A number of a series value: [+-]? (Inf|NaN|digits[.digits][e[+-]digits]).
 * No hexadecimal: Prometheus' lexer refuses it in series descriptions,
 * where 1+0x5 means 1, then 5 more times +0.
 */
static const char *scan_number(const char *p, double *v)
{
    const char *s = p;
    if (*p == '+' || *p == '-')
        p++;
    if (strncasecmp(p, "inf", 3) == 0) {
        p += 3;
        *v = s[0] == '-' ? -INFINITY : INFINITY;
        return p;
    }
    if (strncasecmp(p, "nan", 3) == 0) {
        *v = NAN;
        return p + 3;
    }
    {
        const char *d = p;
        while (isdigit((unsigned char)*p))
            p++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p))
                p++;
        }
        if (p == d)
            return NULL;
        if ((*p == 'e' || *p == 'E') &&
            (isdigit((unsigned char)p[1]) ||
             ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
            p += 2;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    char buf[64];
    size_t n = (size_t)(p - s) < sizeof(buf) - 1 ? (size_t)(p - s) : sizeof(buf) - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *v = strtod(buf, NULL);
    return p;
}

static void sdesc_push(struct sdesc *d, int kind, double v)
{
    if (d->nv == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    d->v[d->nv++] = (struct sval){kind, v};
}

static double stale_nan(void)
{
    uint64_t b = 0x7ff0000000000002ull;
    double v;
    memcpy(&v, &b, 8);
    return v;
}

/* One value item: _, _xN, stale, a, axN, a+bxN, a-bxN; {{...}} marks native. 0 or -1. */
static int parse_item(const char *tok, size_t len, struct sdesc *d)
{
    char buf[256];
    if (memmem(tok, len, "{{", 2)) {
        d->native = 1;
        sdesc_push(d, V_OMIT, 0); /* a native value: not stored */
        return 0;
    }
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    if (strcmp(buf, "_") == 0) {
        sdesc_push(d, V_OMIT, 0);
        return 0;
    }
    if (buf[0] == '_' && buf[1] == 'x') {
        long n = strtol(buf + 2, NULL, 10);
        for (long i = 0; i < n; i++)
            sdesc_push(d, V_OMIT, 0);
        return 0;
    }
    double base, inc = 0;
    const char *p = buf;
    if (strncmp(p, "stale", 5) == 0) {
        base = stale_nan();
        p += 5;
    } else {
        p = scan_number(p, &base);
        if (!p)
            return -1;
    }
    int has_inc = 0;
    if (*p == '+' || *p == '-') {
        p = scan_number(p, &inc);
        if (!p)
            return -1;
        has_inc = 1;
    }
    if (*p == 'x') {
        char *end;
        long n = strtol(p + 1, &end, 10);
        if (*end)
            return -1;
        sdesc_push(d, V_NUM, base);
        for (long i = 1; i <= n; i++) {
            base += inc; /* accumulated, as Prometheus does */
            sdesc_push(d, V_NUM, base);
        }
        return 0;
    }
    if (*p || has_inc)
        return -1;
    sdesc_push(d, V_NUM, base);
    return 0;
}

/* A whole series description line. 0 or -1. */
static int parse_series(const char *line, struct sdesc *d)
{
    memset(d, 0, sizeof(*d));
    const char *p = parse_labels(line, &d->ls);
    if (!p)
        return -1;
    for (;;) {
        p = skip_ws(p);
        if (!*p)
            return 0;
        const char *s = p;
        int depth = 0;
        while (*p && (depth > 0 || (*p != ' ' && *p != '\t'))) {
            if (*p == '{')
                depth++;
            else if (*p == '}')
                depth--;
            p++;
        }
        if (parse_item(s, (size_t)(p - s), d) < 0)
            return -1;
    }
}

/* Go's parseNumber: ParseInt(s, 0, 64) or ParseFloat. 0 or -1. */
static int parse_plain_number(const char *s, double *v)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 0);
    if (!*end && errno == 0) {
        *v = (double)n;
        return 0;
    }
    const char *p = scan_number(s, v);
    return p && !*p ? 0 : -1;
}

/* ---- script commands ------------------------------------------------------------ */

enum expect_kind { EX_ORDERED, EX_FAIL, EX_WARN, EX_NO_WARN, EX_INFO, EX_NO_INFO };

struct expect {
    enum expect_kind kind;
    char *msg;      /* exact message, or NULL */
    pcre2_code *re; /* regex, or NULL (any) */
};

struct eval {
    int line;
    char *expr;
    int is_range;
    int64_t start, end, step; /* instant: start == end == t */
    int fail, warn, info, ordered;
    char *fail_msg;
    pcre2_code *fail_re;
    struct expect *ex;
    size_t nex;
    int expect_scalar;
    double scalar;
    struct sdesc *exp;
    size_t nexp;
    int *pos; /* 1-based position of each expected series */
    char *string;
    int has_string;
    int range_vector; /* instant query answering a range vector */
    int64_t rv_start, rv_end, rv_step;
    int exclude_range;
    int native_expected;
};

enum cmd_kind { CMD_CLEAR, CMD_LOAD, CMD_EVAL };

struct cmd {
    enum cmd_kind kind;
    int line;
    /* load */
    int64_t step;
    int nhcb;
    struct sdesc *series;
    size_t nseries;
    int *st; /* the series had an @st line */
    /* eval */
    struct eval ev;
};

struct script {
    struct cmd *c;
    size_t n;
};

static int has_expect(const struct eval *e, enum expect_kind k)
{
    for (size_t i = 0; i < e->nex; i++)
        if (e->ex[i].kind == k)
            return 1;
    return 0;
}

static int is_fail(const struct eval *e)
{
    return e->fail || has_expect(e, EX_FAIL);
}

static int is_ordered(const struct eval *e)
{
    return e->ordered || has_expect(e, EX_ORDERED);
}

static void eval_free(struct eval *e)
{
    free(e->expr);
    free(e->fail_msg);
    if (e->fail_re)
        pcre2_code_free(e->fail_re);
    for (size_t i = 0; i < e->nex; i++) {
        free(e->ex[i].msg);
        if (e->ex[i].re)
            pcre2_code_free(e->ex[i].re);
    }
    free(e->ex);
    for (size_t i = 0; i < e->nexp; i++)
        sdesc_free(&e->exp[i]);
    free(e->exp);
    free(e->pos);
    free(e->string);
}

static void script_free(struct script *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct cmd *c = &s->c[i];
        if (c->kind == CMD_LOAD) {
            for (size_t k = 0; k < c->nseries; k++)
                sdesc_free(&c->series[k]);
            free(c->series);
            free(c->st);
        } else if (c->kind == CMD_EVAL) {
            eval_free(&c->ev);
        }
    }
    free(s->c);
}

static struct cmd *new_cmd(struct script *s, enum cmd_kind k, int line)
{
    s->c = xrealloc(s->c, (s->n + 1) * sizeof(*s->c));
    struct cmd *c = &s->c[s->n++];
    memset(c, 0, sizeof(*c));
    c->kind = k;
    c->line = line;
    return c;
}

/* Captures of re against s: caps[i] (malloc'd) for i in 1..n. 1 if matched. */
static int re_caps(pcre2_code *re, const char *s, char **caps, int n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return 0;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (int i = 1; i <= n; i++)
        caps[i] = i < rc && ov[2 * i] != PCRE2_UNSET
                      ? dupn(s + ov[2 * i], ov[2 * i + 1] - ov[2 * i])
                      : xstrdup("");
    pcre2_match_data_free(md);
    return 1;
}

struct patterns {
    pcre2_code *load, *instant, *range, *expect, *expect_range, *ctxfn;
};

static void patterns_init(struct patterns *p)
{
    p->load = re_compile("^load(?:_(with_nhcb))?\\s+(.+?)$", 0);
    p->instant = re_compile(
        "^eval(?:_(fail|warn|ordered|info))?\\s+instant\\s+(?:at\\s+(.+?))?\\s+(.+)$", 0);
    p->range = re_compile(
        "^eval(?:_(fail|warn|info))?\\s+range\\s+from\\s+(.+)\\s+to\\s+(.+)\\s+step\\s+(.+?)\\s+"
        "(.+)$",
        0);
    p->expect = re_compile(
        "^expect\\s+(ordered|fail|warn|no_warn|info|no_info)(?:\\s+(regex|msg):(.+))?$", 0);
    p->expect_range =
        re_compile("^expect range vector\\s+from\\s+(.+)\\s+to\\s+(.+)\\s+step\\s+(.+)$", 0);
    p->ctxfn = re_compile("(start|end|range|step)\\(\\)", 0);
}

static void patterns_free(struct patterns *p)
{
    pcre2_code_free(p->load);
    pcre2_code_free(p->instant);
    pcre2_code_free(p->range);
    pcre2_code_free(p->expect);
    pcre2_code_free(p->expect_range);
    pcre2_code_free(p->ctxfn);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static void free_caps(char **caps, int n)
{
    for (int i = 1; i <= n; i++)
        free(caps[i]);
}

/* Parse a script into commands. Returns 0, or -1 with err (file:line) filled. */
static int parse_script(const struct patterns *pt, char *text, struct script *s, char *err,
                        size_t errlen)
{
    memset(s, 0, sizeof(*s));
    size_t nlines = 0, cap = 0;
    char **lines = NULL;
    for (char *p = text; p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (nlines == cap) {
            cap = cap ? cap * 2 : 256;
            lines = xrealloc(lines, cap * sizeof(*lines));
        }
        char *l = trim(p);
        lines[nlines++] = l[0] == '#' ? l + strlen(l) : l;
        p = nl ? nl + 1 : NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < nlines && rc == 0; i++) {
        char *l = lines[i];
        if (!*l)
            continue;
        char *caps[8] = {0};
        if (strcasecmp(l, "clear") == 0) {
            new_cmd(s, CMD_CLEAR, (int)i + 1);
        } else if (strncasecmp(l, "load", 4) == 0) {
            if (!re_caps(pt->load, l, caps, 2)) {
                snprintf(err, errlen, "line %zu: bad load", i + 1);
                rc = -1;
                break;
            }
            struct cmd *c = new_cmd(s, CMD_LOAD, (int)i + 1);
            c->nhcb = caps[1][0] != '\0';
            if (parse_duration(caps[2], &c->step) < 0) {
                snprintf(err, errlen, "line %zu: bad step %s", i + 1, caps[2]);
                rc = -1;
            }
            free_caps(caps, 2);
            int pending_st = 0;
            while (rc == 0 && i + 1 < nlines && lines[i + 1][0]) {
                char *d = lines[++i];
                /* `name{...}@st offsets`: start timestamps for the next line's series. */
                char *sp = strpbrk(d, " \t");
                if (sp && sp - d >= 3 && strncmp(sp - 3, "@st", 3) == 0) {
                    pending_st = 1;
                    continue;
                }
                struct sdesc sd;
                if (parse_series(d, &sd) < 0) {
                    snprintf(err, errlen, "line %zu: bad series %s", i + 1, d);
                    sdesc_free(&sd);
                    rc = -1;
                    break;
                }
                /* A series defined twice in one load: the last definition wins. */
                size_t k;
                for (k = 0; k < c->nseries; k++)
                    if (labelset_eq(&c->series[k].ls, sd.ls.l, sd.ls.n))
                        break;
                if (k == c->nseries) {
                    c->series = xrealloc(c->series, (c->nseries + 1) * sizeof(*c->series));
                    c->st = xrealloc(c->st, (c->nseries + 1) * sizeof(*c->st));
                    c->nseries++;
                } else {
                    sdesc_free(&c->series[k]);
                }
                c->series[k] = sd;
                c->st[k] = pending_st;
                pending_st = 0;
            }
        } else if (strncasecmp(l, "eval", 4) == 0) {
            struct cmd *c = new_cmd(s, CMD_EVAL, (int)i + 1);
            struct eval *e = &c->ev;
            e->line = (int)i + 1;
            const char *mod;
            if (re_caps(pt->instant, l, caps, 3)) {
                mod = caps[1];
                e->expr = xstrdup(caps[3]);
                if (parse_duration(caps[2], &e->start) < 0) {
                    snprintf(err, errlen, "line %zu: bad time %s", i + 1, caps[2]);
                    rc = -1;
                }
                e->end = e->start;
                e->ordered = strcmp(mod, "ordered") == 0;
                e->fail = strcmp(mod, "fail") == 0;
                e->warn = strcmp(mod, "warn") == 0;
                e->info = strcmp(mod, "info") == 0;
                free_caps(caps, 3);
            } else if (re_caps(pt->range, l, caps, 5)) {
                e->is_range = 1;
                mod = caps[1];
                e->expr = xstrdup(caps[5]);
                if (parse_duration(caps[2], &e->start) < 0 ||
                    parse_duration(caps[3], &e->end) < 0 || parse_duration(caps[4], &e->step) < 0) {
                    snprintf(err, errlen, "line %zu: bad range", i + 1);
                    rc = -1;
                }
                e->fail = strcmp(mod, "fail") == 0;
                e->warn = strcmp(mod, "warn") == 0;
                e->info = strcmp(mod, "info") == 0;
                free_caps(caps, 5);
            } else {
                snprintf(err, errlen, "line %zu: bad eval", i + 1);
                rc = -1;
                break;
            }
            int j = 0;
            while (rc == 0 && i + 1 < nlines && lines[i + 1][0]) {
                char *d = lines[++i];
                j++;
                if (e->fail && strncmp(d, "expected_fail_message", 21) == 0) {
                    e->fail_msg = xstrdup(trim(d + 21));
                    break;
                }
                if (e->fail && strncmp(d, "expected_fail_regexp", 20) == 0) {
                    e->fail_re = re_compile(trim(d + 20), 0);
                    break;
                }
                if (strncmp(d, "expect range vector", 19) == 0) {
                    if (!re_caps(pt->expect_range, d, caps, 3) ||
                        parse_duration(caps[1], &e->rv_start) < 0 ||
                        parse_duration(caps[2], &e->rv_end) < 0 ||
                        parse_duration(caps[3], &e->rv_step) < 0) {
                        snprintf(err, errlen, "line %zu: bad range vector", i + 1);
                        rc = -1;
                    }
                    free_caps(caps, 3);
                    e->range_vector = 1;
                    e->exclude_range = 1;
                    continue;
                }
                if (strncmp(d, "expect string", 13) == 0) {
                    const char *q = d + 13;
                    q += *q == ' ';
                    size_t used;
                    e->string = unquote(q, strlen(q), &used);
                    if (!e->string) {
                        snprintf(err, errlen, "line %zu: bad expect string", i + 1);
                        rc = -1;
                    }
                    e->has_string = 1;
                    e->exclude_range = 1;
                    continue;
                }
                if (strncmp(d, "expect", 6) == 0 && (d[6] == ' ' || d[6] == '\0')) {
                    if (!re_caps(pt->expect, d, caps, 3)) {
                        snprintf(err, errlen, "line %zu: bad expect line", i + 1);
                        rc = -1;
                        break;
                    }
                    static const char *const kinds[] = {"ordered", "fail", "warn",
                                                        "no_warn", "info", "no_info"};
                    struct expect x = {0};
                    for (int k = 0; k < 6; k++)
                        if (strcmp(caps[1], kinds[k]) == 0)
                            x.kind = (enum expect_kind)k;
                    if (strcmp(caps[2], "msg") == 0)
                        x.msg = xstrdup(trim(caps[3]));
                    else if (strcmp(caps[2], "regex") == 0)
                        x.re = re_compile(trim(caps[3]), 0);
                    free_caps(caps, 3);
                    e->ex = xrealloc(e->ex, (e->nex + 1) * sizeof(*e->ex));
                    e->ex[e->nex++] = x;
                    j--;
                    continue;
                }
                double v;
                if (parse_plain_number(d, &v) == 0) {
                    e->expect_scalar = 1;
                    e->scalar = v;
                    break;
                }
                struct sdesc sd;
                if (parse_series(d, &sd) < 0) {
                    snprintf(err, errlen, "line %zu: bad expected series %s", i + 1, d);
                    sdesc_free(&sd);
                    rc = -1;
                    break;
                }
                if (sd.native)
                    e->native_expected = 1;
                e->expect_scalar = 0;
                size_t k;
                for (k = 0; k < e->nexp; k++)
                    if (labelset_eq(&e->exp[k].ls, sd.ls.l, sd.ls.n))
                        break;
                if (k == e->nexp) {
                    e->exp = xrealloc(e->exp, (e->nexp + 1) * sizeof(*e->exp));
                    e->pos = xrealloc(e->pos, (e->nexp + 1) * sizeof(*e->pos));
                    e->nexp++;
                } else {
                    sdesc_free(&e->exp[k]);
                }
                e->exp[k] = sd;
                e->pos[k] = j;
            }
        } else {
            snprintf(err, errlen, "line %zu: invalid command %s", i + 1, l);
            rc = -1;
        }
    }
    free(lines);
    return rc;
}

/* ---- the store ------------------------------------------------------------------ */

/* A series that is not stored, or not as Prometheus would: evals reading it are skipped. */
struct marked {
    struct labelset ls;
    const char *why;
};

struct world {
    char root[128];
    char dir[192];
    int seq;
    struct tsdb *db;
    struct marked *m;
    size_t nm;
};

static void world_mark(struct world *w, const struct labelset *ls, const char *why)
{
    w->m = xrealloc(w->m, (w->nm + 1) * sizeof(*w->m));
    struct marked *x = &w->m[w->nm++];
    x->ls.n = 0;
    x->ls.l = NULL;
    for (size_t i = 0; i < ls->n; i++)
        labelset_add(&x->ls, xstrdup(ls->l[i].name), xstrdup(ls->l[i].value));
    x->why = why;
}

static void world_clear(struct world *w)
{
    if (w->db)
        tsdb_close(w->db);
    w->db = NULL;
    for (size_t i = 0; i < w->nm; i++)
        labelset_free(&w->m[i].ls);
    free(w->m);
    w->m = NULL;
    w->nm = 0;
    snprintf(w->dir, sizeof(w->dir), "%s/%d", w->root, w->seq++);
    struct tsdb_opts o = {.dir = w->dir, .background = 0};
    char err[256];
    if (tsdb_open(&w->db, &o, err, sizeof(err)) < 0)
        fail_msg("tsdb_open %s: %s", w->dir, err);
}

static int storable(const struct labelset *ls)
{
    const char *name = labelset_get(ls, "__name__");
    if (!name || !metric_name_valid(name) || ls->n - 1 > METRIC_MAX_LABELS)
        return 0;
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->l[i].name, "__name__") != 0 && !metric_label_name_valid(ls->l[i].name))
            return 0;
    return 1;
}

struct pending {
    int64_t t;
    size_t series;
    double v;
};

static int cmp_pending(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return (x->series > y->series) - (x->series < y->series);
}

/* Append a load block: per timestamp, in time order. Returns samples refused. */
static uint64_t world_load(struct world *w, const struct cmd *c)
{
    struct pending *p = NULL;
    size_t np = 0, cap = 0;
    for (size_t k = 0; k < c->nseries; k++) {
        const struct sdesc *d = &c->series[k];
        if (d->native || !storable(&d->ls) || c->st[k]) {
            world_mark(w, &d->ls,
                       d->native  ? "native histogram samples"
                       : c->st[k] ? "start timestamps (@st lines)"
                                  : "label names the store does not accept");
            if (!storable(&d->ls))
                continue;
            /* The float samples of a series mixing floats and histograms are stored. */
        }
        for (size_t i = 0; i < d->nv; i++) {
            if (d->v[i].kind != V_NUM)
                continue;
            if (np == cap) {
                cap = cap ? cap * 2 : 1024;
                p = xrealloc(p, cap * sizeof(*p));
            }
            p[np++] = (struct pending){(int64_t)i * c->step, k, d->v[i].v};
        }
    }
    if (c->nhcb) {
        /* Prometheus also stores each classic histogram as a native one named after it. */
        for (size_t k = 0; k < c->nseries; k++) {
            const struct labelset *ls = &c->series[k].ls;
            const char *name = labelset_get(ls, "__name__");
            static const char *const sfx[] = {"_bucket", "_count", "_sum"};
            for (size_t s = 0; name && s < 3; s++) {
                size_t nl = strlen(name), sl = strlen(sfx[s]);
                if (nl <= sl || strcmp(name + nl - sl, sfx[s]) != 0)
                    continue;
                struct labelset base = {0};
                for (size_t i = 0; i < ls->n; i++) {
                    if (strcmp(ls->l[i].name, "le") == 0)
                        continue;
                    labelset_add(&base, xstrdup(ls->l[i].name),
                                 strcmp(ls->l[i].name, "__name__") == 0 ? dupn(name, nl - sl)
                                                                        : xstrdup(ls->l[i].value));
                }
                world_mark(w, &base, "load_with_nhcb (native histograms)");
                labelset_free(&base);
            }
        }
    }
    if (np)
        qsort(p, np, sizeof(*p), cmp_pending);
    struct metric_buf b;
    metric_buf_init(&b);
    uint64_t refused = 0;
    for (size_t i = 0; i < np;) {
        size_t j = i;
        metric_buf_reset(&b, p[i].t);
        for (; j < np && p[j].t == p[i].t; j++) {
            const struct labelset *ls = &c->series[p[j].series].ls;
            struct metric_label l[METRIC_MAX_LABELS];
            size_t nl = 0;
            for (size_t k = 0; k < ls->n; k++)
                if (strcmp(ls->l[k].name, "__name__") != 0)
                    l[nl++] = (struct metric_label){ls->l[k].name, ls->l[k].value};
            metric_fam(&b, labelset_get(ls, "__name__"), "", METRIC_UNTYPED);
            metric_add(&b, p[j].v, nl, l);
        }
        struct tsdb_append_stats st = {0};
        if (tsdb_append_batch(w->db, "conformance", &b, &st) < 0)
            fail_msg("append failed");
        refused += st.out_of_order + st.too_old + st.series_limit + st.invalid;
        i = j;
    }
    metric_buf_release(&b);
    free(p);
    return refused;
}

/* ---- matchers (to find evals that read marked series) ----------------------------- */

static int matcher_matches(const struct tsdb_matcher *m, const struct labelset *ls)
{
    const char *v = labelset_get(ls, m->name);
    if (!v)
        v = "";
    switch (m->op) {
    case TSDB_EQ:
        return strcmp(v, m->value) == 0;
    case TSDB_NEQ:
        return strcmp(v, m->value) != 0;
    case TSDB_RE:
    case TSDB_NRE: {
        pcre2_code *re = re_compile(m->value, PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL);
        int hit = re && re_search(re, v);
        if (re)
            pcre2_code_free(re);
        return m->op == TSDB_RE ? hit : !hit;
    }
    }
    return 0;
}

/* The reason an eval must be skipped because it reads a marked series, or NULL. */
static const char *reads_marked(const struct world *w, const struct query_node *n)
{
    if (!n)
        return NULL;
    switch (n->type) {
    case QUERY_NODE_VECTOR_SELECTOR:
        for (size_t i = 0; i < w->nm; i++) {
            size_t k = 0;
            while (k < n->vs.nmatchers && matcher_matches(&n->vs.matchers[k], &w->m[i].ls))
                k++;
            if (k == n->vs.nmatchers)
                return w->m[i].why;
        }
        return NULL;
    case QUERY_NODE_MATRIX_SELECTOR:
        return reads_marked(w, n->matrix.vs);
    case QUERY_NODE_SUBQUERY:
        return reads_marked(w, n->subquery.expr);
    case QUERY_NODE_PAREN:
        return reads_marked(w, n->paren.expr);
    case QUERY_NODE_UNARY:
        return reads_marked(w, n->unary.expr);
    case QUERY_NODE_BINARY: {
        const char *r = reads_marked(w, n->binary.lhs);
        return r ? r : reads_marked(w, n->binary.rhs);
    }
    case QUERY_NODE_AGGREGATE: {
        const char *r = reads_marked(w, n->aggregate.expr);
        return r ? r : reads_marked(w, n->aggregate.param);
    }
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->call.nargs; i++) {
            const char *r = reads_marked(w, n->call.args[i]);
            if (r)
                return r;
        }
        return NULL;
    default:
        return NULL;
    }
}

/* ---- comparing results -------------------------------------------------------------- */

static int is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b == 0x7ff0000000000002ull;
}

/* Prometheus' almost.Equal with its test epsilon. */
static int almost_equal(double a, double b)
{
    const double eps = 1e-6, min_normal = 2.2250738585072014e-308;
    if (is_stale(a) || is_stale(b))
        return is_stale(a) && is_stale(b);
    if (isnan(a) && isnan(b))
        return 1;
    if (a == b)
        return 1;
    double absum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (a == 0 || b == 0 || absum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(absum, 1.7976931348623157e308) < eps;
}

static int find_expected(const struct eval *e, const struct query_series *s)
{
    for (size_t i = 0; i < e->nexp; i++) {
        const struct labelset *ls = &e->exp[i].ls;
        if (ls->n != s->nlabels)
            continue;
        size_t k = 0;
        while (k < ls->n && strcmp(ls->l[k].name, s->labels[k].name) == 0 &&
               strcmp(ls->l[k].value, s->labels[k].value) == 0)
            k++;
        if (k == ls->n)
            return (int)i;
    }
    return -1;
}

/*
 * Compare an answer with the expectation, as Prometheus' compareResult.
 * For matrices, expected point i is at start + i * step. 0, or -1 with why.
 */
static int compare(const struct eval *e, const struct query_result *r, int64_t start, int64_t end,
                   int64_t step, int ordered, struct sbuf *why)
{
    switch (r->type) {
    case QUERY_VALUE_MATRIX: {
        if (ordered)
            return sbuf_adds(why, "expected ordered result, but query returned a matrix"), -1;
        if (e->expect_scalar)
            return sbuf_adds(why, "expected scalar result, but got matrix"), -1;
        uint8_t *seen = xcalloc(e->nexp + 1, 1);
        int rc = 0;
        for (size_t i = 0; i < r->nseries && rc == 0; i++) {
            const struct query_series *s = &r->series[i];
            int x = find_expected(e, s);
            if (x < 0) {
                sbuf_adds(why, "unexpected metric ");
                metric_string(s->labels, s->nlabels, why);
                sbuf_addf(why, " in result (%zu points, first %g)", s->npoints,
                          s->npoints ? s->points[0].v : 0.0);
                rc = -1;
                break;
            }
            seen[x] = 1;
            const struct sdesc *d = &e->exp[x];
            size_t k = 0;
            for (size_t j = 0; j < d->nv && rc == 0; j++) {
                int64_t t = start + (int64_t)j * step;
                if (t > end) {
                    sbuf_addf(why, "expected %zu points, more than the range holds", d->nv);
                    rc = -1;
                    break;
                }
                if (d->v[j].kind != V_NUM)
                    continue;
                if (k >= s->npoints) {
                    sbuf_adds(why, "missing points for ");
                    labelset_string(&d->ls, why);
                    rc = -1;
                    break;
                }
                if (s->points[k].t != t || !almost_equal(s->points[k].v, d->v[j].v)) {
                    sbuf_adds(why, "for ");
                    labelset_string(&d->ls, why);
                    sbuf_addf(why, " expected %g at %lld, got %g at %lld", d->v[j].v, (long long)t,
                              s->points[k].v, (long long)s->points[k].t);
                    rc = -1;
                    break;
                }
                k++;
            }
            if (rc == 0 && k != s->npoints) {
                sbuf_adds(why, "extra points for ");
                labelset_string(&d->ls, why);
                sbuf_addf(why, ": %zu, expected %zu (first extra at %lld = %g)", s->npoints, k,
                          (long long)s->points[k].t, s->points[k].v);
                rc = -1;
            }
        }
        for (size_t i = 0; i < e->nexp && rc == 0; i++)
            if (!seen[i]) {
                sbuf_adds(why, "expected metric ");
                labelset_string(&e->exp[i].ls, why);
                sbuf_adds(why, " not found");
                rc = -1;
            }
        free(seen);
        return rc;
    }
    case QUERY_VALUE_VECTOR: {
        if (e->expect_scalar)
            return sbuf_adds(why, "expected scalar result, but got vector"), -1;
        uint8_t *seen = xcalloc(e->nexp + 1, 1);
        int rc = 0;
        for (size_t i = 0; i < r->nseries && rc == 0; i++) {
            const struct query_series *s = &r->series[i];
            int x = find_expected(e, s);
            if (x < 0) {
                sbuf_adds(why, "unexpected metric ");
                metric_string(s->labels, s->nlabels, why);
                sbuf_addf(why, " in result, has value %g", s->points[0].v);
                rc = -1;
                break;
            }
            if (ordered && e->pos[x] != (int)i + 1) {
                sbuf_adds(why, "expected metric ");
                labelset_string(&e->exp[x].ls, why);
                sbuf_addf(why, " at position %d but was at %zu", e->pos[x], i + 1);
                rc = -1;
                break;
            }
            double want = e->exp[x].nv ? e->exp[x].v[0].v : 0;
            if (!almost_equal(want, s->points[0].v)) {
                sbuf_addf(why, "expected %g for ", want);
                labelset_string(&e->exp[x].ls, why);
                sbuf_addf(why, " but got %g", s->points[0].v);
                rc = -1;
                break;
            }
            seen[x] = 1;
        }
        for (size_t i = 0; i < e->nexp && rc == 0; i++)
            if (!seen[i]) {
                sbuf_adds(why, "expected metric ");
                labelset_string(&e->exp[i].ls, why);
                sbuf_adds(why, " not found");
                rc = -1;
            }
        free(seen);
        return rc;
    }
    case QUERY_VALUE_SCALAR:
        if (!e->expect_scalar)
            return sbuf_addf(why, "expected vector or matrix result, but got scalar %g", r->scalar),
                   -1;
        if (!almost_equal(e->scalar, r->scalar))
            return sbuf_addf(why, "expected scalar %g but got %g", e->scalar, r->scalar), -1;
        return 0;
    case QUERY_VALUE_STRING:
        if (!e->string || strcmp(e->string, r->string) != 0)
            return sbuf_addf(why, "expected string \"%s\" but got \"%s\"",
                             e->string ? e->string : "", r->string),
                   -1;
        return 0;
    default:
        return sbuf_adds(why, "unexpected result type"), -1;
    }
}

static int expect_matches(const struct expect *x, const char *s)
{
    if (x->msg)
        return strcmp(x->msg, s) == 0;
    return !x->re || re_search(x->re, s);
}

/* Prometheus' checkAnnotations. */
static int check_annotations(const struct eval *e, const struct query_result *r, struct sbuf *why)
{
    if (e->warn && r->nwarnings == 0)
        return sbuf_adds(why, "expected warnings but got none"), -1;
    if (e->info && r->ninfos == 0)
        return sbuf_adds(why, "expected info annotations but got none"), -1;
    struct {
        enum expect_kind want, no;
        const char *const *got;
        size_t n;
        const char *what;
    } kinds[2] = {{EX_WARN, EX_NO_WARN, r->warnings, r->nwarnings, "warn"},
                  {EX_INFO, EX_NO_INFO, r->infos, r->ninfos, "info"}};
    for (int k = 0; k < 2; k++) {
        int any = has_expect(e, kinds[k].want);
        if (any && kinds[k].n == 0)
            return sbuf_addf(why, "expected %s annotations but none were found", kinds[k].what), -1;
        if (any) {
            for (size_t i = 0; i < e->nex; i++) {
                if (e->ex[i].kind != kinds[k].want)
                    continue;
                size_t j = 0;
                while (j < kinds[k].n && !expect_matches(&e->ex[i], kinds[k].got[j]))
                    j++;
                if (j == kinds[k].n) {
                    sbuf_addf(why, "expected %s annotation matching %s, found:", kinds[k].what,
                              e->ex[i].msg ? e->ex[i].msg : "a pattern");
                    for (j = 0; j < kinds[k].n; j++)
                        sbuf_addf(why, " [%s]", kinds[k].got[j]);
                    return -1;
                }
            }
            for (size_t j = 0; j < kinds[k].n; j++) {
                size_t i = 0;
                while (i < e->nex && !(e->ex[i].kind == kinds[k].want &&
                                       expect_matches(&e->ex[i], kinds[k].got[j])))
                    i++;
                if (i == e->nex)
                    return sbuf_addf(why, "unexpected %s annotation %s", kinds[k].what,
                                     kinds[k].got[j]),
                           -1;
            }
        }
        if (has_expect(e, kinds[k].no) && kinds[k].n > 0)
            return sbuf_addf(why, "unexpected %s annotation: %s", kinds[k].what, kinds[k].got[0]),
                   -1;
    }
    return 0;
}

/* Prometheus' checkExpectedFailure. */
static int check_failure(const struct eval *e, const struct query_eval_error *err, struct sbuf *why)
{
    if (e->fail_msg && strcmp(e->fail_msg, err->msg) != 0)
        return sbuf_addf(why, "expected error \"%s\", got \"%s\"", e->fail_msg, err->msg), -1;
    if (e->fail_re && !re_search(e->fail_re, err->msg))
        return sbuf_addf(why, "expected error matching a pattern, got \"%s\"", err->msg), -1;
    for (size_t i = 0; i < e->nex; i++)
        if (e->ex[i].kind == EX_FAIL) {
            if (!expect_matches(&e->ex[i], err->msg))
                return sbuf_addf(why, "expected error \"%s\", got \"%s\"",
                                 e->ex[i].msg ? e->ex[i].msg : "(pattern)", err->msg),
                       -1;
            break;
        }
    return 0;
}

/* ---- running evals -------------------------------------------------------------------- */

static const struct query_opts run_opts = {.timeout_ms = 100000};

/* Functions whose value depends on the evaluation time itself. */
static int at_unsafe(const struct query_node *n)
{
    if (!n)
        return 0;
    switch (n->type) {
    case QUERY_NODE_CALL: {
        static const enum query_func unsafe[] = {
            QUERY_FN_DAYS_IN_MONTH,  QUERY_FN_DAY_OF_MONTH, QUERY_FN_DAY_OF_WEEK,
            QUERY_FN_DAY_OF_YEAR,    QUERY_FN_END,          QUERY_FN_HOUR,
            QUERY_FN_MINUTE,         QUERY_FN_MONTH,        QUERY_FN_YEAR,
            QUERY_FN_PREDICT_LINEAR, QUERY_FN_RANGE,        QUERY_FN_START,
            QUERY_FN_STEP,           QUERY_FN_TIME,         QUERY_FN_TIMESTAMP};
        for (size_t i = 0; i < ARRAY_SIZE(unsafe); i++)
            if (n->call.func->id == unsafe[i])
                return 1;
        for (size_t i = 0; i < n->call.nargs; i++)
            if (at_unsafe(n->call.args[i]))
                return 1;
        return 0;
    }
    case QUERY_NODE_MATRIX_SELECTOR:
        return at_unsafe(n->matrix.vs);
    case QUERY_NODE_SUBQUERY:
        return at_unsafe(n->subquery.expr);
    case QUERY_NODE_PAREN:
        return at_unsafe(n->paren.expr);
    case QUERY_NODE_UNARY:
        return at_unsafe(n->unary.expr);
    case QUERY_NODE_BINARY:
        return at_unsafe(n->binary.lhs) || at_unsafe(n->binary.rhs);
    case QUERY_NODE_AGGREGATE:
        return at_unsafe(n->aggregate.expr) || at_unsafe(n->aggregate.param);
    default:
        return 0;
    }
}

/* Pin every selector and subquery outside subqueries to t (Prometheus' atModifierTestCases). */
static void pin_at(struct query_node *n, int64_t t)
{
    if (!n)
        return;
    switch (n->type) {
    case QUERY_NODE_VECTOR_SELECTOR:
        if (n->vs.at != QUERY_AT_TIME) {
            n->vs.at = QUERY_AT_TIME;
            n->vs.at_ms = t;
        }
        return;
    case QUERY_NODE_MATRIX_SELECTOR:
        pin_at(n->matrix.vs, t);
        return;
    case QUERY_NODE_SUBQUERY:
        if (n->subquery.at != QUERY_AT_TIME) {
            n->subquery.at = QUERY_AT_TIME;
            n->subquery.at_ms = t;
        }
        return; /* what is inside keeps its times */
    case QUERY_NODE_PAREN:
        pin_at(n->paren.expr, t);
        return;
    case QUERY_NODE_UNARY:
        pin_at(n->unary.expr, t);
        return;
    case QUERY_NODE_BINARY:
        pin_at(n->binary.lhs, t);
        pin_at(n->binary.rhs, t);
        return;
    case QUERY_NODE_AGGREGATE:
        pin_at(n->aggregate.expr, t);
        pin_at(n->aggregate.param, t);
        return;
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->call.nargs; i++)
            pin_at(n->call.args[i], t);
        return;
    default:
        return;
    }
}

static long n_instant, n_range;

/* One instant query (a variant of the eval) with Prometheus' checks. 0 or -1. */
static int run_instant(struct tsdb *db, const struct patterns *pt, const struct eval *e,
                       const char *text, int64_t t, struct sbuf *why)
{
    struct query_result r;
    struct query_eval_error err;
    struct query_node *n;
    struct query_error perr;
    if (query_parse(text, &n, &perr) < 0)
        return sbuf_addf(why, "parse error: %s", perr.msg), -1;
    n_instant++;
    int rc = query_eval_instant(db, n, text, t, &run_opts, &r, &err);
    if (rc < 0) {
        query_node_free(n);
        if (is_fail(e))
            return check_failure(e, &err, why);
        return sbuf_addf(why, "error evaluating %s at %lld: %s (%s)", text, (long long)t, err.msg,
                         err.type),
               -1;
    }
    int ret = 0;
    if (is_fail(e)) {
        sbuf_addf(why, "expected error evaluating %s but got none", text);
        ret = -1;
    } else if (check_annotations(e, &r, why) < 0 ||
               compare(e, &r, e->range_vector ? e->rv_start : t, e->range_vector ? e->rv_end : t,
                       e->range_vector ? e->rv_step : 1, is_ordered(e), why) < 0) {
        sbuf_addf(why, " [%s at %lld]", text, (long long)t);
        ret = -1;
    }
    enum query_value_type rtype = r.type;
    query_result_release(&r);
    if (ret < 0 || e->exclude_range || re_search(pt->ctxfn, text) || is_ordered(e)) {
        query_node_free(n);
        return ret;
    }
    /* The same query as a range query around t must agree at t. */
    n_range++;
    rc = query_eval_range(db, n, text, t - 60000, t + 60000, 60000, &run_opts, &r, &err);
    query_node_free(n);
    if (rc < 0)
        return sbuf_addf(why, "error evaluating %s in range mode: %s", text, err.msg), -1;
    struct query_result v = {0};
    struct query_series *ss = xcalloc(r.nseries + 1, sizeof(*ss));
    size_t k = 0;
    double scalar = NAN;
    for (size_t i = 0; i < r.nseries; i++)
        for (size_t j = 0; j < r.series[i].npoints; j++)
            if (r.series[i].points[j].t == t) {
                ss[k] = r.series[i];
                ss[k].points = &r.series[i].points[j];
                ss[k].npoints = 1;
                if (k == 0)
                    scalar = r.series[i].points[j].v;
                k++;
                break;
            }
    v.series = ss;
    v.nseries = k;
    if (rtype == QUERY_VALUE_SCALAR) {
        v.type = QUERY_VALUE_SCALAR;
        v.scalar = scalar;
        if (k == 0) {
            sbuf_adds(why, "range mode: no scalar point");
            ret = -1;
        }
    } else {
        v.type = QUERY_VALUE_VECTOR;
    }
    if (ret == 0 && compare(e, &v, t, t, 1, 0, why) < 0) {
        sbuf_addf(why, " [%s in range mode at %lld]", text, (long long)t);
        ret = -1;
    }
    free(ss);
    query_result_release(&r);
    return ret;
}

enum outcome { PASS, FAIL, SKIP };

static int verbose(void);
static enum outcome run_query(struct world *w, const struct patterns *pt, const struct eval *e,
                              struct query_node *n, struct sbuf *why);

/* Run one eval. why gets the failure or skip reason. */
static enum outcome run_eval(struct world *w, const struct patterns *pt, const struct eval *e,
                             struct sbuf *why)
{
    struct query_node *n;
    struct query_error perr;
    if (query_parse(e->expr, &n, &perr) < 0) {
        if (strstr(perr.msg, "not supported")) {
            const char *p = strstr(perr.msg, "parse error: ");
            sbuf_adds(why, p ? p + 13 : perr.msg);
            return SKIP;
        }
        sbuf_addf(why, "parse error: %s", perr.msg);
        return FAIL;
    }
    if (e->native_expected) {
        query_node_free(n);
        sbuf_adds(why, "expects native histogram values");
        return SKIP;
    }
    /*
     * An eval reading series the store could not hold as Prometheus does
     * (native histogram samples, start timestamps) still runs: if the
     * answer is Prometheus' all the same it passes; if not, the difference
     * is the unsupported data's and the eval counts as skipped.
     */
    const char *m = reads_marked(w, n);
    enum outcome o = run_query(w, pt, e, n, why);
    query_node_free(n);
    if (o == FAIL && m) {
        if (verbose())
            fprintf(stderr, "%s: fails but reads series with %s: %s\n", e->expr, m, why->buf);
        sbuf_reset(why);
        sbuf_addf(why, "reads series with %s", m);
        return SKIP;
    }
    return o;
}

/* Run the eval's query n (and its variants). */
static enum outcome run_query(struct world *w, const struct patterns *pt, const struct eval *e,
                              struct query_node *n, struct sbuf *why)
{
    if (e->is_range) {
        struct query_result r;
        struct query_eval_error err;
        int rc =
            query_eval_range(w->db, n, e->expr, e->start, e->end, e->step, &run_opts, &r, &err);
        if (rc < 0) {
            if (is_fail(e))
                return check_failure(e, &err, why) < 0 ? FAIL : PASS;
            sbuf_addf(why, "error: %s (%s)", err.msg, err.type);
            return FAIL;
        }
        int bad = 0;
        if (is_fail(e)) {
            sbuf_adds(why, "expected an error but got none");
            bad = 1;
        } else if (check_annotations(e, &r, why) < 0 ||
                   compare(e, &r, e->start, e->end, e->step, is_ordered(e), why) < 0) {
            bad = 1;
        }
        query_result_release(&r);
        return bad ? FAIL : PASS;
    }
    /* Instant: the query itself, then the @ variants Prometheus runs. */
    int rc = run_instant(w->db, pt, e, e->expr, e->start, why);
    if (rc == 0 && !at_unsafe(n)) {
        int64_t t = e->start;
        int64_t times[5];
        size_t nt;
        if (t == 0) {
            times[0] = -1000;
            times[1] = 0;
            times[2] = 1000;
            nt = 3;
        } else {
            times[0] = -10 * t;
            times[1] = 0;
            times[2] = t / 5;
            times[3] = t;
            times[4] = 10 * t;
            nt = 5;
        }
        pin_at(n, t);
        struct sbuf text;
        sbuf_init(&text, 0);
        query_format(n, &text);
        for (size_t i = 0; i < nt && rc == 0; i++)
            rc = run_instant(w->db, pt, e, text.buf, times[i], why);
        sbuf_release(&text);
    }
    return rc == 0 ? PASS : FAIL;
}

/* ---- files ------------------------------------------------------------------------------ */

struct file_stats {
    char name[64];
    int pass, fail, skip, known;
    char reasons[2048]; /* skip reasons with counts, short */
};

static int is_required(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(required_files); i++)
        if (strcmp(required_files[i], name) == 0)
            return 1;
    return 0;
}

static int known_index(const char *file, int line)
{
    for (size_t i = 0; i < ARRAY_SIZE(known_failures); i++)
        if (known_failures[i].file && strcmp(known_failures[i].file, file) == 0 &&
            known_failures[i].line == line)
            return (int)i;
    return -1;
}

struct reason_count {
    char *why;
    int n;
};

static void add_reason(struct reason_count **r, size_t *n, const char *why)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*r)[i].why, why) == 0) {
            (*r)[i].n++;
            return;
        }
    *r = xrealloc(*r, (*n + 1) * sizeof(**r));
    (*r)[(*n)++] = (struct reason_count){xstrdup(why), 1};
}

static int verbose(void)
{
    const char *v = getenv("SITREP_CONFORMANCE_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

/* Run one script. Returns the number of unexpected outcomes (new failures, stale entries). */
static int run_file(const struct patterns *pt, const char *dir, const char *name,
                    struct file_stats *fs, uint8_t *known_seen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return fprintf(stderr, "%s: cannot open\n", path), 1;
    struct sbuf sb;
    sbuf_init(&sb, 0);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
        sbuf_add(&sb, buf, got);
    fclose(f);
    memset(fs, 0, sizeof(*fs));
    snprintf(fs->name, sizeof(fs->name), "%s", name);
    struct script s;
    char err[256];
    int bad = 0;
    if (parse_script(pt, sb.buf, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", name, err);
        script_free(&s);
        sbuf_release(&sb);
        return 1;
    }
    struct world w = {0};
    snprintf(w.root, sizeof(w.root), "%s", tu_tmpdir("promql"));
    world_clear(&w);
    struct reason_count *reasons = NULL;
    size_t nreasons = 0;
    int required = is_required(name);
    for (size_t i = 0; i < s.n; i++) {
        struct cmd *c = &s.c[i];
        if (c->kind == CMD_CLEAR) {
            world_clear(&w);
            continue;
        }
        if (c->kind == CMD_LOAD) {
            uint64_t refused = world_load(&w, c);
            if (refused)
                fprintf(stderr, "%s:%d: the store refused %llu samples of this load\n", name,
                        c->line, (unsigned long long)refused);
            continue;
        }
        struct sbuf why;
        sbuf_init(&why, 4096);
        enum outcome o = run_eval(&w, pt, &c->ev, &why);
        int k = known_index(name, c->line);
        if (o == PASS) {
            fs->pass++;
            if (k >= 0) {
                fprintf(stderr, "%s:%d: listed as a known failure but passes now: %s\n", name,
                        c->line, c->ev.expr);
                bad += required;
            }
        } else if (o == SKIP) {
            fs->skip++;
            add_reason(&reasons, &nreasons, why.buf);
            if (verbose())
                fprintf(stderr, "%s:%d: SKIP %s: %s\n", name, c->line, c->ev.expr, why.buf);
        } else {
            fs->fail++;
            if (k >= 0) {
                fs->known++;
                known_seen[k] = 1;
            } else if (required) {
                bad++;
            }
            if (k < 0 || verbose())
                fprintf(stderr, "%s:%d: FAIL%s %s\n    %s\n", name, c->line,
                        k >= 0     ? " (known)"
                        : required ? ""
                                   : " (not required)",
                        c->ev.expr, why.buf);
        }
        sbuf_release(&why);
    }
    /* The reasons for skips, most frequent first, cut to fit. */
    for (size_t i = 0; i < nreasons; i++)
        for (size_t j = i + 1; j < nreasons; j++)
            if (reasons[j].n > reasons[i].n) {
                struct reason_count t = reasons[i];
                reasons[i] = reasons[j];
                reasons[j] = t;
            }
    size_t used = 0;
    for (size_t i = 0; i < nreasons; i++) {
        if (used < sizeof(fs->reasons))
            used += (size_t)snprintf(fs->reasons + used, sizeof(fs->reasons) - used, "%s%d: %s",
                                     i ? "; " : "", reasons[i].n, reasons[i].why);
        free(reasons[i].why);
    }
    free(reasons);
    if (w.db)
        tsdb_close(w.db);
    w.db = NULL;
    for (size_t i = 0; i < w.nm; i++)
        labelset_free(&w.m[i].ls);
    free(w.m);
    tu_rmrf(w.root);
    script_free(&s);
    sbuf_release(&sb);
    return bad;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_conformance(void **state)
{
    (void)state;
    char dir[512];
    const char *env = getenv("SITREP_CONFORMANCE_DIR");
    snprintf(dir, sizeof(dir), "%s",
             env && *env ? env
                         : SITREP_FIXTURES_DIR "/../../../shared/"
                                               "conformance/promql");
    DIR *d = opendir(dir);
    if (!d) {
        printf("conformance: no PromQL test scripts at %s: skipped (set "
               "SITREP_CONFORMANCE_DIR)\n",
               dir);
        skip();
        return;
    }
    char **files = NULL;
    size_t nfiles = 0;
    const char *only = getenv("SITREP_CONFORMANCE_ONLY"); /* one file, for debugging */
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".test") != 0)
            continue;
        if (only && *only && strcmp(only, de->d_name) != 0)
            continue;
        files = xrealloc(files, (nfiles + 1) * sizeof(*files));
        files[nfiles++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(files, nfiles, sizeof(*files), cmp_str);
    struct patterns pt;
    patterns_init(&pt);
    uint8_t known_seen[ARRAY_SIZE(known_failures)] = {0};
    int bad = 0;
    struct file_stats *stats = xcalloc(nfiles + 1, sizeof(*stats));
    int64_t t0 = util_mono_ns();
    for (size_t i = 0; i < nfiles; i++)
        bad += run_file(&pt, dir, files[i], &stats[i], known_seen);
    printf("\nPromQL conformance (%s), %.1f s:\n", dir, (double)(util_mono_ns() - t0) / 1e9);
    printf("%-28s %6s %6s %6s  %s\n", "file", "passed", "failed", "skipped", "skip reasons");
    int tp = 0, tf = 0, ts = 0;
    for (size_t i = 0; i < nfiles; i++) {
        const struct file_stats *f = &stats[i];
        printf("%-28s %6d %6d %6d  %s%s\n", f->name, f->pass, f->fail, f->skip,
               is_required(f->name) ? "" : "(not required) ", f->reasons);
        tp += f->pass;
        tf += f->fail;
        ts += f->skip;
        free(files[i]);
    }
    printf("%-28s %6d %6d %6d   (%ld instant and %ld range queries for the instant evals)\n",
           "total", tp, tf, ts, n_instant, n_range);
    for (size_t i = 0; i < ARRAY_SIZE(known_failures); i++)
        if (known_failures[i].file && !known_seen[i] && !only)
            printf("known failure %s:%d did not fail (remove it from the list)\n",
                   known_failures[i].file, known_failures[i].line);
    free(files);
    free(stats);
    patterns_free(&pt);
    if (bad)
        fail_msg("%d conformance evals failed that are not in known_failures[]", bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
