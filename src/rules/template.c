/*
 * template.c: the small template language of alert labels and annotations,
 * the subset of Go's text/template that Prometheus rule files use: text
 * with {{ actions }}, each a pipeline of commands separated by '|', a
 * command being a value ($value, $labels.x, $externalLabels.x,
 * $externalURL, the dot and its fields, a string, a number, true, false, a
 * parenthesised pipeline) or a function with arguments, the previous
 * command's result passed as the last argument; and the control structures
 * if, range and with (with else, else if, else with, end). `query` runs a
 * PromQL instant query through the caller's callback (struct
 * rules_tmpl_data) and gives its samples to range/with/first/label/value.
 * define, template, block, break, continue and variables are refused with
 * an error rather than misread.
 *
 * A template is parsed whole into a tree first (so every branch is checked,
 * taken or not), then run. Everything is bounded: output at
 * RULES_MAX_TEMPLATE_OUT, arguments per command at TMPL_MAX_ARGS, nesting
 * at RULES_TMPL_MAX_DEPTH, query results at RULES_TMPL_MAX_SAMPLES, queries
 * at RULES_TMPL_MAX_QUERIES and work at TMPL_MAX_STEPS; the scanner never
 * reads past the terminating NUL.
 */
#include "rules/rules.h"
#include "util/util.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TMPL_MAX_ARGS   16
#define TMPL_MAX_FIELDS 4
#define TMPL_MAX_STEPS  100000 /* actions run in one expansion (a range runs its body n times) */

/* ---- values ---- */

enum tkind {
    TV_STR,
    TV_NUM,
    TV_BOOL,
    TV_VEC,    /* a query result */
    TV_SAMPLE, /* one sample of a query result */
    TV_TOP,    /* the alert's data: the top-level dot and $ */
};

/* A query result shared by the values that point into it. */
struct tvec {
    unsigned refs;
    struct rules_tmpl_vec v;
};

struct tval {
    enum tkind k;
    double num;       /* TV_NUM; TV_BOOL: 0 or 1 */
    char *str;        /* TV_STR: owned */
    struct tvec *vec; /* TV_VEC, TV_SAMPLE: one reference */
    size_t idx;       /* TV_SAMPLE: which */
};

/* ---- the parsed template ---- */

enum targ_kind { A_NUM, A_STR, A_BOOL, A_VAR, A_DOT, A_PIPE };

struct tpipe;

/* An operand: a literal, $var.fields, .fields (or the dot), or (pipeline). */
struct targ {
    enum targ_kind k;
    const char *at;
    double num;
    char *str;       /* A_STR: owned */
    const char *var; /* A_VAR: the name; "" (varlen 0) for $ */
    size_t varlen;
    const char *f[TMPL_MAX_FIELDS];
    size_t fl[TMPL_MAX_FIELDS];
    size_t nf;
    struct tpipe *pipe; /* A_PIPE: owned */
};

/* A function (fn >= 0, an index into fns) with its arguments, or one operand (fn < 0). */
struct tcmd {
    const char *at;
    int fn;
    struct targ *args;
    size_t nargs;
};

struct tpipe {
    const char *at;
    struct tcmd *cmds;
    size_t ncmds;
};

enum tnode_kind { N_TEXT, N_PRINT, N_IF, N_RANGE, N_WITH };

struct tnode {
    enum tnode_kind k;
    const char *at;   /* the action (N_PRINT) or its keyword, for errors */
    const char *text; /* N_TEXT: a span of the source */
    size_t len;
    struct tpipe pipe;  /* all but N_TEXT */
    struct tnode *body; /* if/range/with: the list run when true (non-empty) */
    struct tnode *els;  /* ... and otherwise */
    int chained;        /* els is the single if/with of an `else if` / `else with` */
    struct tnode *next;
};

struct tctx {
    const char *src; /* whole template, for positions */
    const char *p;   /* scan position inside the current action */
    const char *end; /* end of the current action's content */
    const struct rules_tmpl_data *data;
    char *err;
    size_t errcap;
    int failed;
    unsigned steps, queries;
};

static void fail_at(struct tctx *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error, with line:col of `at` in the template. */
static void fail_at(struct tctx *c, const char *at, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    unsigned line = 1, col = 1;
    for (const char *q = c->src; q < at && *q; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    int n = snprintf(c->err, c->errcap, "%u:%u: ", line, col);
    if (n < 0 || (size_t)n >= c->errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errcap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- number formatting as Go's fmt does it ---- */

/*
 * Go's %v of a float64: the shortest digits that read back, in %e form when
 * the exponent is below -4 or at least 6 (strconv's shortest 'g'), e.g.
 * 0.5, 123456, 1e+06, 1.234567e+06.
 */
static void go_float(struct sbuf *out, double v)
{
    if (isnan(v)) {
        sbuf_adds(out, "NaN");
        return;
    }
    if (isinf(v)) {
        sbuf_adds(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[64];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
    int exp = atoi(strchr(buf, 'e') + 1);
    if (exp < -4 || exp >= 6) {
        sbuf_adds(out, buf);
        return;
    }
    int decimals = prec - 1 - exp;
    sbuf_addf(out, "%.*f", decimals > 0 ? decimals : 0, v);
}

/* Go's %.4g: as C's, except for how NaN and infinities are spelled. */
static void go_g4(struct sbuf *out, double v, const char *suffix)
{
    if (isnan(v))
        sbuf_addf(out, "NaN%s", suffix);
    else if (isinf(v))
        sbuf_addf(out, "%s%s", v > 0 ? "+Inf" : "-Inf", suffix);
    else
        sbuf_addf(out, "%.4g%s", v, suffix);
}

static void humanize(struct sbuf *out, double v)
{
    static const char *const big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
    static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    const char *prefix = "";
    if (v == 0 || isnan(v) || isinf(v)) {
        go_g4(out, v, "");
        return;
    }
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < ARRAY_SIZE(big) && fabs(v) >= 1000; i++) {
            prefix = big[i];
            v /= 1000;
        }
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(small) && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    go_g4(out, v, prefix);
}

static void humanize1024(struct sbuf *out, double v)
{
    static const char *const big[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
    const char *prefix = "";
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
        go_g4(out, v, "");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(big) && fabs(v) >= 1024; i++) {
        prefix = big[i];
        v /= 1024;
    }
    go_g4(out, v, prefix);
}

static void humanize_duration(struct sbuf *out, double v)
{
    static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    if (isnan(v) || isinf(v)) {
        go_g4(out, v, "");
        return;
    }
    if (v == 0) {
        sbuf_adds(out, "0s");
        return;
    }
    if (fabs(v) >= 1) {
        const char *sign = v < 0 ? "-" : "";
        v = fabs(v);
        long long d = v < 9.2e18 ? (long long)v : 9200000000000000000LL;
        long long s = d % 60, m = (d / 60) % 60, h = (d / 3600) % 24, days = d / 86400;
        if (days)
            sbuf_addf(out, "%s%lldd %lldh %lldm %llds", sign, days, h, m, s);
        else if (h)
            sbuf_addf(out, "%s%lldh %lldm %llds", sign, h, m, s);
        else if (m)
            sbuf_addf(out, "%s%lldm %llds", sign, m, s);
        else
            sbuf_addf(out, "%s%.4gs", sign, v);
        return;
    }
    const char *prefix = "";
    for (size_t i = 0; i < ARRAY_SIZE(small) && fabs(v) < 1; i++) {
        prefix = small[i];
        v *= 1000;
    }
    sbuf_addf(out, "%.4g%ss", v, prefix);
}

static void humanize_timestamp(struct sbuf *out, double v)
{
    if (isnan(v) || isinf(v) || fabs(v) > 1e13) {
        go_g4(out, v, "");
        return;
    }
    time_t t = (time_t)floor(v);
    long long nanos = (long long)llround((v - floor(v)) * 1e9);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    sbuf_adds(out, buf);
    if (nanos) {
        char frac[16];
        snprintf(frac, sizeof(frac), ".%09lld", nanos);
        for (size_t n = strlen(frac); n > 1 && frac[n - 1] == '0'; n--)
            frac[n - 1] = '\0';
        sbuf_adds(out, frac);
    }
    sbuf_adds(out, " +0000 UTC");
}

/* ---- values ---- */

int rules_tmpl_vec_add(struct rules_tmpl_vec *v, double value, const struct rules_tmpl_label *ls,
                       size_t n)
{
    if (v->n >= RULES_TMPL_MAX_SAMPLES)
        return -1;
    /* the label array and its strings in one allocation, freed at once */
    size_t bytes = n * sizeof(*ls);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(ls[i].name) + strlen(ls[i].value) + 2;
    struct rules_tmpl_label *copy = xmalloc(bytes ? bytes : 1);
    char *strs = (char *)(copy + n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(ls[i].name) + 1, vl = strlen(ls[i].value) + 1;
        memcpy(strs, ls[i].name, nl);
        copy[i].name = strs;
        memcpy(strs + nl, ls[i].value, vl);
        copy[i].value = strs + nl;
        strs += nl + vl;
    }
    if ((v->n & (v->n - 1)) == 0) /* 0, 1, 2, 4, ...: grow to the next power of two */
        v->s = xrealloc(v->s, (v->n ? 2 * v->n : 1) * sizeof(*v->s));
    v->s[v->n++] = (struct rules_tmpl_sample){.labels = copy, .nlabels = n, .value = value};
    return 0;
}

void rules_tmpl_vec_release(struct rules_tmpl_vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        free((void *)v->s[i].labels);
    free(v->s);
    v->s = NULL;
    v->n = 0;
}

static void tv_free(struct tval *v)
{
    free(v->str);
    v->str = NULL;
    if (v->vec && --v->vec->refs == 0) {
        rules_tmpl_vec_release(&v->vec->v);
        free(v->vec);
    }
    v->vec = NULL;
}

static struct tval tv_dup(const struct tval *v)
{
    struct tval d = *v;
    if (v->str)
        d.str = xstrdup(v->str);
    if (v->vec)
        v->vec->refs++;
    return d;
}

static struct tval tv_num(double d)
{
    return (struct tval){.k = TV_NUM, .num = d};
}

static struct tval tv_bool(int b)
{
    return (struct tval){.k = TV_BOOL, .num = b != 0};
}

static struct tval tv_str(const char *s, size_t n)
{
    return (struct tval){.k = TV_STR, .str = xstrndup(s, n)};
}

static const struct rules_tmpl_sample *tv_sample(const struct tval *v)
{
    return &v->vec->v.s[v->idx];
}

/* Go's name of a value's type, for messages. */
static const char *tv_type(const struct tval *v)
{
    static const char *const names[] = {"string", "float64", "bool",
                                        "vector", "sample",  "the alert's data"};
    return names[v->k];
}

/* Go's truth: false, 0, "" and an empty vector are false. */
static int tv_truth(const struct tval *v)
{
    switch (v->k) {
    case TV_STR:
        return v->str[0] != '\0';
    case TV_NUM:
    case TV_BOOL:
        return v->num != 0;
    case TV_VEC:
        return v->vec->v.n > 0;
    default:
        return 1;
    }
}

/* Go prints a map as map[a:b c:d]. */
static void print_map(struct sbuf *out, const struct rules_tmpl_label *ls, size_t n)
{
    sbuf_adds(out, "map[");
    for (size_t i = 0; i < n; i++)
        sbuf_addf(out, "%s%s:%s", i ? " " : "", ls[i].name, ls[i].value);
    sbuf_adds(out, "]");
}

static void print_sample(struct sbuf *out, const struct rules_tmpl_sample *s)
{
    sbuf_addc(out, '{');
    print_map(out, s->labels, s->nlabels);
    sbuf_addc(out, ' ');
    go_float(out, s->value);
    sbuf_addc(out, '}');
}

static void tv_print(struct tctx *c, struct sbuf *out, const struct tval *v)
{
    switch (v->k) {
    case TV_STR:
        sbuf_adds(out, v->str);
        break;
    case TV_NUM:
        go_float(out, v->num);
        break;
    case TV_BOOL:
        sbuf_adds(out, v->num ? "true" : "false");
        break;
    case TV_VEC:
        sbuf_addc(out, '[');
        for (size_t i = 0; i < v->vec->v.n && !out->overflow; i++) {
            if (i)
                sbuf_addc(out, ' ');
            print_sample(out, &v->vec->v.s[i]);
        }
        sbuf_addc(out, ']');
        break;
    case TV_SAMPLE:
        print_sample(out, tv_sample(v));
        break;
    case TV_TOP: {
        const struct rules_tmpl_data *d = c->data;
        sbuf_addc(out, '{');
        print_map(out, d->labels, d->nlabels);
        sbuf_addc(out, ' ');
        print_map(out, d->external, d->nexternal);
        sbuf_addf(out, " %s ", d->external_url ? d->external_url : "");
        go_float(out, d->value);
        sbuf_addc(out, '}');
        break;
    }
    }
}

/* A value as a float (strings are parsed, as Prometheus's convertToFloat does). */
static int tv_float(struct tctx *c, const char *at, const struct tval *v, double *d)
{
    if (v->k == TV_NUM) {
        *d = v->num;
        return 0;
    }
    if (v->k != TV_STR) {
        fail_at(c, at, "can't convert %s to a number", tv_type(v));
        return -1;
    }
    char *end;
    *d = strtod(v->str, &end);
    if (!*v->str || *end) {
        fail_at(c, at, "can't convert \"%s\" to a number", v->str);
        return -1;
    }
    return 0;
}

static const char *label_get(const struct rules_tmpl_label *ls, size_t n, const char *name,
                             size_t namelen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(ls[i].name) == namelen && memcmp(ls[i].name, name, namelen) == 0)
            return ls[i].value;
    return "";
}

static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/*
 * The alert's data: $var.fields, or .Var.fields on the top-level dot. With
 * c->data NULL (parsing) the values are empty but the errors the same, so
 * the parser calls it to check the alert's variables and fields.
 */
static int resolve(struct tctx *c, const char *at, const char *var, size_t varlen,
                   const char *const *f, const size_t *fl, size_t nf, struct tval *out)
{
    static const struct rules_tmpl_data empty = {0};
    const struct rules_tmpl_data *d = c->data ? c->data : &empty;
    /* Map the dot forms onto the variables Prometheus defines from them. */
    if (word_is(var, varlen, "Value") || word_is(var, varlen, "value")) {
        if (nf) {
            fail_at(c, at, "can't evaluate a field of a number");
            return -1;
        }
        *out = tv_num(d->value);
        return 0;
    }
    if (word_is(var, varlen, "externalURL") || word_is(var, varlen, "ExternalURL")) {
        if (nf) {
            fail_at(c, at, "can't evaluate a field of a string");
            return -1;
        }
        const char *u = d->external_url ? d->external_url : "";
        *out = tv_str(u, strlen(u));
        return 0;
    }
    const struct rules_tmpl_label *ls = NULL;
    size_t nls = 0;
    if (word_is(var, varlen, "labels") || word_is(var, varlen, "Labels")) {
        ls = d->labels;
        nls = d->nlabels;
    } else if (word_is(var, varlen, "externalLabels") || word_is(var, varlen, "ExternalLabels")) {
        ls = d->external;
        nls = d->nexternal;
    } else {
        fail_at(c, at, "undefined variable \"%.*s\"", (int)varlen, var);
        return -1;
    }
    if (nf == 0) {
        struct sbuf b;
        sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
        print_map(&b, ls, nls);
        *out = tv_str(b.buf, b.len);
        sbuf_release(&b);
        return 0;
    }
    if (nf > 1) {
        fail_at(c, at, "can't evaluate a field of a string");
        return -1;
    }
    const char *v = label_get(ls, nls, f[0], fl[0]);
    *out = tv_str(v, strlen(v));
    return 0;
}

/* base.f[0].f[1]...: the fields of a sample (Labels, Value) or of the alert's data. */
static int eval_fields(struct tctx *c, const char *at, const struct tval *base,
                       const char *const *f, const size_t *fl, size_t nf, struct tval *out)
{
    if (nf == 0) {
        *out = tv_dup(base);
        return 0;
    }
    if (base->k == TV_TOP)
        return resolve(c, at, f[0], fl[0], f + 1, fl + 1, nf - 1, out);
    if (base->k == TV_SAMPLE && word_is(f[0], fl[0], "Value") && nf == 1) {
        *out = tv_num(tv_sample(base)->value);
        return 0;
    }
    if (base->k == TV_SAMPLE && word_is(f[0], fl[0], "Labels") && nf <= 2) {
        const struct rules_tmpl_sample *s = tv_sample(base);
        if (nf == 2) {
            const char *v = label_get(s->labels, s->nlabels, f[1], fl[1]);
            *out = tv_str(v, strlen(v));
        } else {
            struct sbuf b;
            sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
            print_map(&b, s->labels, s->nlabels);
            *out = tv_str(b.buf, b.len);
            sbuf_release(&b);
        }
        return 0;
    }
    if (base->k == TV_SAMPLE && (word_is(f[0], fl[0], "Value") || word_is(f[0], fl[0], "Labels")))
        fail_at(c, at, "can't evaluate a field of a %s", f[0][0] == 'V' ? "number" : "string");
    else
        fail_at(c, at, "can't evaluate field %.*s in type %s", (int)fl[0], f[0], tv_type(base));
    return -1;
}

/* ---- functions ---- */

struct tfn {
    const char *name;
    unsigned min, max; /* arguments, the piped one included */
};

enum {
    F_HUMANIZE,
    F_HUMANIZE1024,
    F_HUMANIZE_DURATION,
    F_HUMANIZE_PERCENTAGE,
    F_HUMANIZE_TIMESTAMP,
    F_PRINTF,
    F_TO_UPPER,
    F_TO_LOWER,
    F_TITLE,
    F_QUERY,
    F_FIRST,
    F_LABEL,
    F_VALUE,
    F_SORT_BY_LABEL,
    F_LEN,
    F_EQ,
    F_NE,
    F_LT,
    F_LE,
    F_GT,
    F_GE,
    F_AND,
    F_OR,
    F_NOT
};

static const struct tfn fns[] = {
    [F_HUMANIZE] = {"humanize", 1, 1},
    [F_HUMANIZE1024] = {"humanize1024", 1, 1},
    [F_HUMANIZE_DURATION] = {"humanizeDuration", 1, 1},
    [F_HUMANIZE_PERCENTAGE] = {"humanizePercentage", 1, 1},
    [F_HUMANIZE_TIMESTAMP] = {"humanizeTimestamp", 1, 1},
    [F_PRINTF] = {"printf", 1, TMPL_MAX_ARGS},
    [F_TO_UPPER] = {"toUpper", 1, 1},
    [F_TO_LOWER] = {"toLower", 1, 1},
    [F_TITLE] = {"title", 1, 1},
    [F_QUERY] = {"query", 1, 1},
    [F_FIRST] = {"first", 1, 1},
    [F_LABEL] = {"label", 2, 2},
    [F_VALUE] = {"value", 1, 1},
    [F_SORT_BY_LABEL] = {"sortByLabel", 2, 2},
    [F_LEN] = {"len", 1, 1},
    [F_EQ] = {"eq", 2, TMPL_MAX_ARGS},
    [F_NE] = {"ne", 2, 2},
    [F_LT] = {"lt", 2, 2},
    [F_LE] = {"le", 2, 2},
    [F_GT] = {"gt", 2, 2},
    [F_GE] = {"ge", 2, 2},
    [F_AND] = {"and", 1, TMPL_MAX_ARGS},
    [F_OR] = {"or", 1, TMPL_MAX_ARGS},
    [F_NOT] = {"not", 1, 1},
};

/* Go's and Prometheus's words sitrep does not implement: refused by name. */
static const char *const unsupported[] = {
    "define",    "template",   "block",         "break",       "continue",
    "index",     "slice",      "call",          "print",       "println",
    "html",      "js",         "urlquery",      "nil",         "strvalue",
    "args",      "tmpl",       "safeHtml",      "match",       "reReplaceAll",
    "graphLink", "tableLink",  "parseDuration", "stripPort",   "stripDomain",
    "toTime",    "toDuration", "pathPrefix",    "externalURL", "humanizeDurationFloat"};

/* ---- the scanner inside an action ---- */

static void skip_ws(struct tctx *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static int ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

/* The identifier at c->p (possibly empty); advances past it. */
static size_t scan_ident(struct tctx *c, const char **name)
{
    *name = c->p;
    while (c->p < c->end && ident_char(*c->p))
        c->p++;
    return (size_t)(c->p - *name);
}

/* A `.a.b` field chain; returns how many (only the first TMPL_MAX_FIELDS are kept). */
static size_t scan_fields(struct tctx *c, const char **names, size_t *lens)
{
    size_t n = 0;
    while (c->p < c->end && *c->p == '.' && c->p + 1 < c->end && ident_char(c->p[1])) {
        c->p++;
        const char *s;
        size_t l = scan_ident(c, &s);
        if (n < TMPL_MAX_FIELDS) {
            names[n] = s;
            lens[n] = l;
        }
        n++;
    }
    return n;
}

/* A quoted string literal at c->p ("..." with Go escapes, or `raw`). */
static int scan_string(struct tctx *c, struct tval *out)
{
    const char *at = c->p;
    char q = *c->p++;
    struct sbuf b;
    sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
    while (c->p < c->end && *c->p != q) {
        char ch = *c->p++;
        if (q == '"' && ch == '\\') {
            if (c->p >= c->end)
                break;
            char e = *c->p++;
            switch (e) {
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case '\\':
            case '"':
            case '\'':
                ch = e;
                break;
            default:
                sbuf_release(&b);
                fail_at(c, c->p - 2, "unknown escape sequence \\%c", e);
                return -1;
            }
        } else if (q == '"' && ch == '\n') {
            break;
        }
        sbuf_addc(&b, ch);
    }
    if (c->p >= c->end || *c->p != q) {
        sbuf_release(&b);
        fail_at(c, at, "unterminated quoted string");
        return -1;
    }
    c->p++;
    *out = tv_str(b.buf, b.len);
    sbuf_release(&b);
    return 0;
}

static void pipe_free(struct tpipe *pp);

static void arg_free(struct targ *a)
{
    free(a->str);
    if (a->pipe) {
        pipe_free(a->pipe);
        free(a->pipe);
    }
}

static void pipe_free(struct tpipe *pp)
{
    for (size_t i = 0; i < pp->ncmds; i++) {
        for (size_t k = 0; k < pp->cmds[i].nargs; k++)
            arg_free(&pp->cmds[i].args[k]);
        free(pp->cmds[i].args);
    }
    free(pp->cmds);
    pp->cmds = NULL;
    pp->ncmds = 0;
}

/* Where a command's arguments stop: the action's end, '|', or ')' inside parentheses. */
static int at_cmd_end(const struct tctx *c, int pdepth)
{
    return c->p >= c->end || *c->p == '|' || (pdepth > 0 && *c->p == ')');
}

static int parse_pipe(struct tctx *c, struct tpipe *pp, int pdepth, int dot_top);

/*
 * One operand at c->p into *a. dot_top: the dot is the alert's data here
 * (outside range and with), so its fields are checked now. Returns 1 if one
 * was read, 0 if there is none, -1 on error.
 */
static int parse_arg(struct tctx *c, struct targ *a, int pdepth, int dot_top)
{
    *a = (struct targ){.at = c->p};
    const char *at = c->p;
    struct tval chk = {0};
    if (*c->p == '"' || *c->p == '`') {
        if (scan_string(c, &chk) < 0)
            return -1;
        a->k = A_STR;
        a->str = chk.str;
        return 1;
    }
    if (*c->p == '$' || (*c->p == '.' && !(c->p + 1 < c->end && isdigit((unsigned char)c->p[1])))) {
        int var = *c->p == '$';
        a->k = var ? A_VAR : A_DOT;
        if (var) {
            c->p++;
            a->varlen = scan_ident(c, &a->var);
        }
        a->nf = scan_fields(c, a->f, a->fl);
        if (!var && a->nf == 0)
            c->p++; /* the dot itself */
        if (a->nf > TMPL_MAX_FIELDS) {
            fail_at(c, at, "bad field chain");
            return -1;
        }
        const char *after = c->p;
        skip_ws(c);
        if (var && c->p < c->end && (*c->p == ':' || *c->p == '=' || *c->p == ',')) {
            fail_at(c, at, "declaring variables is not supported in sitrep's templates");
            return -1;
        }
        c->p = after;
        /* the alert's variables (and the dot, where it is the alert's data): checked now */
        int rc = 0;
        if (var && a->varlen)
            rc = resolve(c, at, a->var, a->varlen, a->f, a->fl, a->nf, &chk);
        else if ((var || dot_top) && a->nf)
            rc = resolve(c, at, a->f[0], a->fl[0], a->f + 1, a->fl + 1, a->nf - 1, &chk);
        tv_free(&chk);
        return rc < 0 ? -1 : 1;
    }
    if (*c->p == '(') {
        if (pdepth >= RULES_TMPL_MAX_DEPTH) {
            fail_at(c, at, "parentheses nested deeper than %d", RULES_TMPL_MAX_DEPTH);
            return -1;
        }
        c->p++;
        a->k = A_PIPE;
        a->pipe = xcalloc(1, sizeof(*a->pipe));
        if (parse_pipe(c, a->pipe, pdepth + 1, dot_top) < 0)
            return -1;
        if (c->p >= c->end || *c->p != ')') {
            fail_at(c, at, "unclosed left paren");
            return -1;
        }
        c->p++;
        if (c->p < c->end && *c->p == '.') {
            fail_at(c, c->p, "fields of a parenthesised pipeline are not supported");
            return -1;
        }
        return 1;
    }
    if (isalpha((unsigned char)*c->p) || *c->p == '_') {
        const char *name;
        size_t nl = scan_ident(c, &name);
        if (word_is(name, nl, "true") || word_is(name, nl, "false")) {
            a->k = A_BOOL;
            a->num = name[0] == 't';
            return 1;
        }
        c->p = at;
        return 0; /* a function: not an operand */
    }
    if (isdigit((unsigned char)*c->p) || ((*c->p == '-' || *c->p == '+' || *c->p == '.') &&
                                          c->p + 1 < c->end && isdigit((unsigned char)c->p[1]))) {
        char buf[64];
        size_t n = 0;
        while (c->p < c->end && !isspace((unsigned char)*c->p) && *c->p != '|' && *c->p != ')' &&
               n + 1 < sizeof(buf))
            buf[n++] = *c->p++;
        buf[n] = '\0';
        char *e;
        double d = strtod(buf, &e);
        if (*e) {
            fail_at(c, at, "bad number syntax: \"%s\"", buf);
            return -1;
        }
        a->k = A_NUM;
        a->num = d;
        return 1;
    }
    return 0;
}

/* A function's name at c->p: its index, or -1 with the error set. */
static int parse_fn_name(struct tctx *c)
{
    const char *at = c->p, *name;
    size_t nl = scan_ident(c, &name);
    for (size_t i = 0; i < ARRAY_SIZE(fns); i++)
        if (word_is(name, nl, fns[i].name))
            return (int)i;
    static const char *const keywords[] = {"if", "else", "end", "range", "with"};
    for (size_t k = 0; k < ARRAY_SIZE(keywords); k++)
        if (word_is(name, nl, keywords[k])) {
            fail_at(c, at, "unexpected \"%.*s\" in command", (int)nl, name);
            return -1;
        }
    for (size_t k = 0; k < ARRAY_SIZE(unsupported); k++)
        if (word_is(name, nl, unsupported[k])) {
            fail_at(c, at, "\"%.*s\" is not supported in sitrep's templates", (int)nl, name);
            return -1;
        }
    fail_at(c, at, "function \"%.*s\" not defined", (int)nl, name);
    return -1;
}

/*
 * One command into *cmd: an operand alone, or a function name and its
 * arguments. piped: the previous command's result will be the last
 * argument (counted when checking the function's number of arguments).
 */
static int parse_cmd(struct tctx *c, struct tcmd *cmd, int piped, int pdepth, int dot_top)
{
    skip_ws(c);
    cmd->at = c->p;
    cmd->fn = -1;
    if (at_cmd_end(c, pdepth)) {
        fail_at(c, cmd->at, "missing value for command");
        return -1;
    }
    cmd->args = xcalloc(TMPL_MAX_ARGS, sizeof(*cmd->args));
    int r = parse_arg(c, &cmd->args[0], pdepth, dot_top);
    if (r < 0) {
        cmd->nargs = 1; /* freed with the rest */
        return -1;
    }
    if (r == 1) {
        cmd->nargs = 1;
        skip_ws(c);
        if (piped || !at_cmd_end(c, pdepth)) {
            fail_at(c, cmd->at, "can't give argument to non-function");
            return -1;
        }
        return 0;
    }
    if (!isalpha((unsigned char)*c->p) && *c->p != '_') {
        fail_at(c, cmd->at, "unexpected \"%c\" in command", *c->p);
        return -1;
    }
    if ((cmd->fn = parse_fn_name(c)) < 0)
        return -1;
    for (;;) {
        skip_ws(c);
        if (at_cmd_end(c, pdepth))
            break;
        if (cmd->nargs + (piped ? 1 : 0) == TMPL_MAX_ARGS) {
            fail_at(c, c->p, "too many arguments");
            return -1;
        }
        const char *aat = c->p;
        struct targ *a = &cmd->args[cmd->nargs++];
        r = parse_arg(c, a, pdepth, dot_top);
        if (r < 0)
            return -1;
        if (r == 0) {
            cmd->nargs--;
            if (isalpha((unsigned char)*aat) || *aat == '_') {
                /* a function named as an argument is called with none; every one wants some */
                int fn = parse_fn_name(c);
                if (fn >= 0)
                    fail_at(c, aat, "wrong number of args for %s: want %u got 0", fns[fn].name,
                            fns[fn].min);
            } else {
                fail_at(c, aat, "unexpected \"%c\" in command", *aat);
            }
            return -1;
        }
    }
    const struct tfn *f = &fns[cmd->fn];
    size_t n = cmd->nargs + (piped ? 1 : 0);
    if (cmd->fn == F_PRINTF && n == 0) {
        fail_at(c, cmd->at, "printf: want a format string first");
        return -1;
    }
    if (n < f->min || n > f->max) {
        if (f->min == f->max)
            fail_at(c, cmd->at, "wrong number of args for %s: want %u got %zu", f->name, f->min, n);
        else
            fail_at(c, cmd->at, "wrong number of args for %s: want at least %u got %zu", f->name,
                    f->min, n);
        return -1;
    }
    return 0;
}

/* Commands separated by '|' up to the action's end (or the ')' closing pdepth). */
static int parse_pipe(struct tctx *c, struct tpipe *pp, int pdepth, int dot_top)
{
    skip_ws(c);
    pp->at = c->p;
    for (;;) {
        pp->cmds = xrealloc(pp->cmds, (pp->ncmds + 1) * sizeof(*pp->cmds));
        struct tcmd *cmd = &pp->cmds[pp->ncmds++];
        *cmd = (struct tcmd){0};
        if (parse_cmd(c, cmd, pp->ncmds > 1, pdepth, dot_top) < 0)
            return -1;
        skip_ws(c);
        if (c->p >= c->end || (pdepth > 0 && *c->p == ')'))
            return 0;
        if (*c->p != '|') {
            fail_at(c, c->p, "unexpected \"%c\" in command", *c->p);
            return -1;
        }
        c->p++;
    }
}

/* ---- the structure: actions into a tree ---- */

/* One piece of the template: text (trimmed already) or an action's content. */
struct titem {
    int action;
    const char *s, *e;
    const char *open; /* the action's "{{" */
};

struct tparse {
    struct titem *items;
    size_t n, i;
};

/*
 * Split src into text and actions, applying {{- and -}} trimming; comments
 * leave nothing. Returns 0 or -1 (unclosed action or comment).
 */
static int split(struct tctx *c, struct tparse *tp)
{
    const char *p = c->src;
    int trim_next = 0;
    size_t cap = 0;
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *text_end = open ? open : p + strlen(p);
        const char *ts = p;
        if (trim_next)
            while (ts < text_end && isspace((unsigned char)*ts))
                ts++;
        const char *te = text_end;
        int trim_prev = open && open[2] == '-' && open[3] && isspace((unsigned char)open[3]);
        if (trim_prev)
            while (te > ts && isspace((unsigned char)te[-1]))
                te--;
        if (tp->n + 2 > cap) {
            cap = cap ? 2 * cap : 16;
            tp->items = xrealloc(tp->items, cap * sizeof(*tp->items));
        }
        if (te > ts)
            tp->items[tp->n++] = (struct titem){.s = ts, .e = te};
        if (!open)
            break;
        const char *body = open + 2 + (trim_prev ? 2 : 0);
        const char *close = strstr(body, "}}");
        if (!close) {
            fail_at(c, open, "unclosed action");
            return -1;
        }
        const char *body_end = close;
        trim_next = 0;
        if (close - body >= 2 && close[-1] == '-' && isspace((unsigned char)close[-2])) {
            trim_next = 1;
            body_end = close - 1;
        }
        c->p = body;
        c->end = body_end;
        skip_ws(c);
        if (c->end - c->p >= 2 && c->p[0] == '/' && c->p[1] == '*') {
            const char *e = c->end;
            while (e > c->p && isspace((unsigned char)e[-1]))
                e--;
            if (e - c->p < 4 || e[-1] != '/' || e[-2] != '*') {
                fail_at(c, c->p, "unclosed comment");
                return -1;
            }
        } else if (c->p >= c->end) {
            fail_at(c, open, "missing value for command");
            return -1;
        } else {
            tp->items[tp->n++] =
                (struct titem){.action = 1, .s = body, .e = body_end, .open = open};
        }
        p = close + 2;
    }
    return 0;
}

static void node_free(struct tnode *n);

static void list_free(struct tnode *n)
{
    while (n) {
        struct tnode *next = n->next;
        node_free(n);
        n = next;
    }
}

/* Frees n and, iteratively, the else-if chain it heads. */
static void node_free(struct tnode *n)
{
    while (n) {
        struct tnode *chain = n->chained ? n->els : NULL;
        pipe_free(&n->pipe);
        list_free(n->body);
        if (!n->chained)
            list_free(n->els);
        free(n);
        n = chain;
    }
}

/* The keyword an action starts with (if, else, ...), or NULL; c->p is left past it. */
static const char *action_keyword(struct tctx *c)
{
    static const char *const kw[] = {"if", "range", "with", "else", "end"};
    const char *save = c->p, *w;
    size_t n = scan_ident(c, &w);
    for (size_t k = 0; k < ARRAY_SIZE(kw); k++)
        if (word_is(w, n, kw[k]))
            return kw[k];
    c->p = save;
    return NULL;
}

static struct tnode *parse_list(struct tctx *c, struct tparse *tp, int depth, int dot_top,
                                const char **stop);

/*
 * A block (if, range or with) whose keyword kw was read at `at`; c->p is at
 * its pipeline. Parses through the matching {{ end }}, `else if` and `else
 * with` as a chain. Returns the node, or NULL with the error set.
 */
static struct tnode *parse_block(struct tctx *c, struct tparse *tp, const char *kw, const char *at,
                                 int depth, int dot_top)
{
    if (depth >= RULES_TMPL_MAX_DEPTH) {
        fail_at(c, at, "if/range/with nested deeper than %d", RULES_TMPL_MAX_DEPTH);
        return NULL;
    }
    struct tnode *head = NULL, **link = &head;
    for (;;) {
        struct tnode *n = xcalloc(1, sizeof(*n));
        *link = n;
        n->k = kw[0] == 'i' ? N_IF : kw[0] == 'r' ? N_RANGE : N_WITH;
        n->at = at;
        skip_ws(c);
        if (c->p >= c->end) {
            fail_at(c, at, "missing value for %s", kw);
            goto fail;
        }
        if (parse_pipe(c, &n->pipe, 0, dot_top) < 0)
            goto fail;
        const char *stop = NULL;
        n->body = parse_list(c, tp, depth + 1, dot_top && n->k == N_IF, &stop);
        if (c->failed)
            goto fail;
        if (!stop) {
            fail_at(c, at, "unclosed \"%s\": missing {{ end }}", kw);
            goto fail;
        }
        if (stop[0] == 'e' && stop[1] == 'n')
            return head;
        /* else: plain, or `else if` / `else with` continuing the chain */
        const struct titem *it = &tp->items[tp->i - 1];
        c->p = stop + 4;
        c->end = it->e;
        skip_ws(c);
        if (c->p < c->end) {
            const char *kat = c->p;
            const char *k2 = action_keyword(c);
            if (!k2 || (strcmp(k2, "if") != 0 && strcmp(k2, "with") != 0)) {
                int wl = 0;
                while (kat + wl < c->end && !isspace((unsigned char)kat[wl]))
                    wl++;
                fail_at(c, kat, "unexpected \"%.*s\" after else", wl, kat);
                goto fail;
            }
            n->chained = 1;
            link = &n->els;
            kw = k2;
            at = kat;
            continue;
        }
        n->els = parse_list(c, tp, depth + 1, dot_top, &stop);
        if (c->failed)
            goto fail;
        if (!stop || !(stop[0] == 'e' && stop[1] == 'n')) {
            if (stop)
                fail_at(c, stop, "unexpected {{ else }} after {{ else }}");
            else
                fail_at(c, at, "unclosed \"%s\": missing {{ end }}", kw);
            goto fail;
        }
        return head;
    }
fail:
    node_free(head);
    return NULL;
}

/*
 * Nodes up to the end of the template or an {{ else }} / {{ end }} (then
 * *stop points at that keyword and tp->i is past its action).
 */
static struct tnode *parse_list(struct tctx *c, struct tparse *tp, int depth, int dot_top,
                                const char **stop)
{
    struct tnode *head = NULL, **link = &head;
    *stop = NULL;
    while (tp->i < tp->n && !c->failed) {
        const struct titem *it = &tp->items[tp->i++];
        struct tnode *n = NULL;
        if (!it->action) {
            n = xcalloc(1, sizeof(*n));
            n->k = N_TEXT;
            n->text = it->s;
            n->len = (size_t)(it->e - it->s);
        } else {
            c->p = it->s;
            c->end = it->e;
            skip_ws(c);
            const char *at = c->p;
            const char *kw = action_keyword(c);
            if (kw && (kw[0] == 'i' || kw[0] == 'r' || kw[0] == 'w')) {
                n = parse_block(c, tp, kw, at, depth, dot_top);
            } else if (kw) { /* else, end */
                if (kw[1] == 'n') {
                    skip_ws(c);
                    if (c->p < c->end) {
                        fail_at(c, c->p, "unexpected \"%c\" in end", *c->p);
                        break;
                    }
                }
                *stop = at;
                break;
            } else {
                n = xcalloc(1, sizeof(*n));
                n->k = N_PRINT;
                n->at = at;
                parse_pipe(c, &n->pipe, 0, dot_top);
            }
        }
        if (n) {
            *link = n;
            link = &n->next;
        }
    }
    if (c->failed) {
        list_free(head);
        return NULL;
    }
    return head;
}

/* ---- printf ---- */

/*
 * The spec was built by go_printf from a fixed alphabet (flags, digits, one
 * verb matching the argument's type), so a non-literal format is safe here.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static void go_printf(struct tctx *c, const char *at, struct sbuf *out, const char *fmt,
                      struct tval *args, size_t nargs)
{
    size_t ai = 0;
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            sbuf_addc(out, *p++);
            continue;
        }
        p++;
        if (*p == '%') {
            sbuf_addc(out, '%');
            p++;
            continue;
        }
        char spec[32];
        size_t sn = 0;
        spec[sn++] = '%';
        while (*p && strchr("+-# 0", *p) && sn < 8)
            spec[sn++] = *p++;
        while (isdigit((unsigned char)*p) && sn < 16)
            spec[sn++] = *p++;
        if (*p == '.') {
            spec[sn++] = *p++;
            while (isdigit((unsigned char)*p) && sn < 24)
                spec[sn++] = *p++;
        }
        char verb = *p;
        if (!verb) {
            sbuf_adds(out, "%!(NOVERB)");
            break;
        }
        p++;
        if (ai >= nargs) {
            sbuf_addf(out, "%%!%c(MISSING)", verb);
            continue;
        }
        struct tval *a = &args[ai++];
        double d;
        switch (verb) {
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (tv_float(c, at, a, &d) < 0)
                return;
            if (!isfinite(d)) {
                go_g4(out, d, "");
                break;
            }
            spec[sn++] = verb;
            spec[sn] = '\0';
            sbuf_addf(out, spec, d);
            break;
        case 'd':
        case 'x':
        case 'X':
        case 'o':
            if (a->k == TV_STR && (verb == 'x' || verb == 'X')) {
                for (const char *s = a->str; *s; s++)
                    sbuf_addf(out, verb == 'x' ? "%02x" : "%02X", (unsigned char)*s);
                break;
            }
            if (tv_float(c, at, a, &d) < 0)
                return;
            if (d != floor(d) || fabs(d) > 9e18) {
                sbuf_addf(out, "%%!%c(float64=", verb);
                go_float(out, d);
                sbuf_addc(out, ')');
                break;
            }
            spec[sn++] = 'l';
            spec[sn++] = 'l';
            spec[sn++] = verb;
            spec[sn] = '\0';
            sbuf_addf(out, spec, (long long)d);
            break;
        case 's':
        case 'v': {
            struct sbuf tmp;
            sbuf_init(&tmp, RULES_MAX_TEMPLATE_OUT);
            tv_print(c, &tmp, a);
            spec[sn++] = 's';
            spec[sn] = '\0';
            sbuf_addf(out, spec, tmp.buf);
            sbuf_release(&tmp);
            break;
        }
        case 'q': {
            struct sbuf tmp;
            sbuf_init(&tmp, RULES_MAX_TEMPLATE_OUT);
            tv_print(c, &tmp, a);
            sbuf_addc(out, '"');
            for (const char *s = tmp.buf; *s; s++) {
                if (a->k != TV_NUM && (*s == '"' || *s == '\\'))
                    sbuf_addc(out, '\\');
                sbuf_addc(out, *s);
            }
            sbuf_addc(out, '"');
            sbuf_release(&tmp);
            break;
        }
        default:
            fail_at(c, at, "printf: verb %%%c is not supported", verb);
            return;
        }
    }
    if (ai < nargs) {
        sbuf_adds(out, "%!(EXTRA ");
        for (; ai < nargs; ai++) {
            sbuf_addf(out, "%s=", tv_type(&args[ai]));
            tv_print(c, out, &args[ai]);
            if (ai + 1 < nargs)
                sbuf_adds(out, ", ");
        }
        sbuf_addc(out, ')');
    }
}

#pragma GCC diagnostic pop

/* ---- running it ---- */

/* The sample list a function was given, or -1 with the error set. */
static int want(struct tctx *c, const char *at, const struct tval *v, enum tkind k)
{
    if (v->k == k)
        return 0;
    static const char *const names[] = {"string", "number", "bool", "vector", "sample", ""};
    fail_at(c, at, "wrong type for value; expected %s; got %s", names[k], tv_type(v));
    return -1;
}

/* Go's eq/lt on basic values: 0 with *cmp (-1, 0, 1), or -1 with the error set. */
static int compare(struct tctx *c, const char *at, const struct tval *a, const struct tval *b,
                   int *cmp)
{
    int basic_a = a->k == TV_STR || a->k == TV_NUM || a->k == TV_BOOL;
    int basic_b = b->k == TV_STR || b->k == TV_NUM || b->k == TV_BOOL;
    if (!basic_a || !basic_b) {
        fail_at(c, at, "invalid type for comparison");
        return -1;
    }
    if (a->k != b->k) {
        fail_at(c, at, "incompatible types for comparison");
        return -1;
    }
    if (a->k == TV_STR) {
        int r = strcmp(a->str, b->str);
        *cmp = (r > 0) - (r < 0);
    } else {
        /* NaN is neither less, nor greater, nor equal: 2 makes every test false but ne */
        *cmp = a->num < b->num ? -1 : a->num > b->num ? 1 : a->num == b->num ? 0 : 2;
    }
    return 0;
}

/* `query`: the caller's callback, bounded; the result a new vector value. */
static int run_query(struct tctx *c, const char *at, const struct tval *q, struct tval *res)
{
    if (want(c, at, q, TV_STR) < 0)
        return -1;
    if (!c->data->query) {
        fail_at(c, at, "query is not available here");
        return -1;
    }
    if (++c->queries > RULES_TMPL_MAX_QUERIES) {
        fail_at(c, at, "more than %d queries in one expansion", RULES_TMPL_MAX_QUERIES);
        return -1;
    }
    struct tvec *v = xcalloc(1, sizeof(*v));
    v->refs = 1;
    char err[200] = "";
    if (c->data->query(c->data->query_ctx, q->str, &v->v, err, sizeof(err)) < 0) {
        rules_tmpl_vec_release(&v->v);
        free(v);
        fail_at(c, at, "error calling query: %s", err[0] ? err : "failed");
        return -1;
    }
    *res = (struct tval){.k = TV_VEC, .vec = v};
    return 0;
}

/* Call function fn on args (the piped value last); *res is set on success. */
static int call_fn(struct tctx *c, const char *at, int fn, struct tval *args, size_t nargs,
                   struct tval *res)
{
    struct tval *last = &args[nargs - 1];
    double d;
    int cmp;
    switch (fn) {
    case F_QUERY:
        return run_query(c, at, last, res);
    case F_FIRST:
        if (want(c, at, last, TV_VEC) < 0)
            return -1;
        if (last->vec->v.n == 0) {
            fail_at(c, at, "first() called on vector with no elements");
            return -1;
        }
        *res = (struct tval){.k = TV_SAMPLE, .vec = last->vec};
        last->vec->refs++;
        return 0;
    case F_LABEL:
        if (want(c, at, &args[0], TV_STR) < 0 || want(c, at, last, TV_SAMPLE) < 0)
            return -1;
        {
            const struct rules_tmpl_sample *s = tv_sample(last);
            const char *v = label_get(s->labels, s->nlabels, args[0].str, strlen(args[0].str));
            *res = tv_str(v, strlen(v));
        }
        return 0;
    case F_VALUE:
        if (want(c, at, last, TV_SAMPLE) < 0)
            return -1;
        *res = tv_num(tv_sample(last)->value);
        return 0;
    case F_SORT_BY_LABEL: {
        if (want(c, at, &args[0], TV_STR) < 0 || want(c, at, last, TV_VEC) < 0)
            return -1;
        const struct rules_tmpl_vec *in = &last->vec->v;
        /* insertion sort of indexes (at most RULES_TMPL_MAX_SAMPLES): stable, as Go's
         * sort.Stable, and no state outside this call */
        const char *key = args[0].str;
        size_t *order = xcalloc(in->n ? in->n : 1, sizeof(*order));
        for (size_t i = 0; i < in->n; i++) {
            const struct rules_tmpl_sample *si = &in->s[i];
            const char *li = label_get(si->labels, si->nlabels, key, strlen(key));
            size_t k = i;
            for (; k > 0; k--) {
                const struct rules_tmpl_sample *sk = &in->s[order[k - 1]];
                if (strcmp(label_get(sk->labels, sk->nlabels, key, strlen(key)), li) <= 0)
                    break;
                order[k] = order[k - 1];
            }
            order[k] = i;
        }
        struct tvec *v = xcalloc(1, sizeof(*v));
        v->refs = 1;
        for (size_t i = 0; i < in->n; i++) {
            const struct rules_tmpl_sample *si = &in->s[order[i]];
            rules_tmpl_vec_add(&v->v, si->value, si->labels, si->nlabels);
        }
        free(order);
        *res = (struct tval){.k = TV_VEC, .vec = v};
        return 0;
    }
    case F_LEN:
        if (last->k == TV_VEC)
            *res = tv_num((double)last->vec->v.n);
        else if (last->k == TV_STR)
            *res = tv_num((double)strlen(last->str));
        else {
            fail_at(c, at, "len of %s", tv_type(last));
            return -1;
        }
        return 0;
    case F_EQ:
        for (size_t i = 1; i < nargs; i++) {
            if (compare(c, at, &args[0], &args[i], &cmp) < 0)
                return -1;
            if (cmp == 0) {
                *res = tv_bool(1);
                return 0;
            }
        }
        *res = tv_bool(0);
        return 0;
    case F_NE:
    case F_LT:
    case F_LE:
    case F_GT:
    case F_GE:
        if (compare(c, at, &args[0], &args[1], &cmp) < 0)
            return -1;
        if (args[0].k == TV_BOOL && fn != F_NE) {
            fail_at(c, at, "invalid type for comparison");
            return -1;
        }
        *res = tv_bool(fn == F_NE   ? cmp != 0
                       : fn == F_LT ? cmp == -1
                       : fn == F_LE ? cmp == -1 || cmp == 0
                       : fn == F_GT ? cmp == 1
                                    : cmp == 1 || cmp == 0);
        return 0;
    case F_NOT:
        *res = tv_bool(!tv_truth(last));
        return 0;
    default:
        break;
    }
    struct sbuf b;
    sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
    int rc = -1;
    if (fn == F_PRINTF) {
        if (args[0].k != TV_STR) {
            fail_at(c, at, "printf: want a format string first");
            goto out;
        }
        go_printf(c, at, &b, args[0].str, args + 1, nargs - 1);
        if (c->failed)
            goto out;
    } else if (fn == F_TO_UPPER || fn == F_TO_LOWER || fn == F_TITLE) {
        tv_print(c, &b, last);
        int word_start = 1;
        for (size_t i = 0; i < b.len; i++) {
            unsigned char ch = (unsigned char)b.buf[i];
            if (fn == F_TITLE)
                b.buf[i] = (char)(word_start ? toupper(ch) : ch);
            else
                b.buf[i] = (char)(fn == F_TO_UPPER ? toupper(ch) : tolower(ch));
            word_start = isspace(ch) || ch == '-' || ch == '_';
        }
    } else {
        if (tv_float(c, at, last, &d) < 0)
            goto out;
        if (fn == F_HUMANIZE)
            humanize(&b, d);
        else if (fn == F_HUMANIZE1024)
            humanize1024(&b, d);
        else if (fn == F_HUMANIZE_DURATION)
            humanize_duration(&b, d);
        else if (fn == F_HUMANIZE_PERCENTAGE)
            go_g4(&b, d * 100, "%");
        else
            humanize_timestamp(&b, d);
    }
    *res = tv_str(b.buf, b.len);
    rc = 0;
out:
    sbuf_release(&b);
    return rc;
}

static int eval_pipe(struct tctx *c, const struct tpipe *pp, const struct tval *dot,
                     struct tval *res);

static int eval_arg(struct tctx *c, const struct targ *a, const struct tval *dot, struct tval *res)
{
    static const struct tval top = {.k = TV_TOP};
    switch (a->k) {
    case A_NUM:
        *res = tv_num(a->num);
        return 0;
    case A_BOOL:
        *res = tv_bool(a->num != 0);
        return 0;
    case A_STR:
        *res = tv_str(a->str, strlen(a->str));
        return 0;
    case A_VAR:
        if (a->varlen)
            return resolve(c, a->at, a->var, a->varlen, a->f, a->fl, a->nf, res);
        return eval_fields(c, a->at, &top, a->f, a->fl, a->nf, res);
    case A_DOT:
        return eval_fields(c, a->at, dot, a->f, a->fl, a->nf, res);
    case A_PIPE:
        return eval_pipe(c, a->pipe, dot, res);
    }
    return -1;
}

/* One command; piped (owned, may be NULL) is the previous command's result. */
static int eval_cmd(struct tctx *c, const struct tcmd *cmd, const struct tval *dot,
                    struct tval *piped, struct tval *res)
{
    if (cmd->fn < 0)
        return eval_arg(c, &cmd->args[0], dot, res);
    struct tval args[TMPL_MAX_ARGS];
    size_t n = 0;
    int rc = 0;
    int lazy = cmd->fn == F_AND || cmd->fn == F_OR;
    for (size_t i = 0; i < cmd->nargs; i++) {
        if (eval_arg(c, &cmd->args[i], dot, &args[n]) < 0) {
            rc = -1;
            break;
        }
        n++;
        /* and/or stop at the first false/true argument, as Go's do */
        if (lazy && tv_truth(&args[n - 1]) == (cmd->fn == F_OR)) {
            *res = args[--n];
            goto done;
        }
    }
    if (rc == 0 && piped) {
        args[n++] = *piped;
        *piped = (struct tval){0};
    }
    if (rc == 0 && lazy) {
        *res = args[--n];
        goto done;
    }
    if (rc == 0)
        rc = call_fn(c, cmd->at, cmd->fn, args, n, res);
done:
    for (size_t k = 0; k < n; k++)
        tv_free(&args[k]);
    return rc;
}

static int eval_pipe(struct tctx *c, const struct tpipe *pp, const struct tval *dot,
                     struct tval *res)
{
    struct tval cur = {0};
    for (size_t i = 0; i < pp->ncmds; i++) {
        struct tval next = {0};
        if (eval_cmd(c, &pp->cmds[i], dot, i ? &cur : NULL, &next) < 0) {
            tv_free(&cur);
            return -1;
        }
        tv_free(&cur);
        cur = next;
    }
    *res = cur;
    return 0;
}

/* One step of work; fails past TMPL_MAX_STEPS or once the output is full. */
static int step(struct tctx *c, const char *at, const struct sbuf *out)
{
    if (++c->steps > TMPL_MAX_STEPS) {
        fail_at(c, at, "more than %d actions run in one expansion", TMPL_MAX_STEPS);
        return -1;
    }
    if (out->overflow) {
        fail_at(c, c->src, "expansion longer than %d bytes", RULES_MAX_TEMPLATE_OUT);
        return -1;
    }
    return 0;
}

static int exec_list(struct tctx *c, const struct tnode *n, const struct tval *dot,
                     struct sbuf *out);

/* An if/with chain (else if, else with) from n, or a range. */
static int exec_block(struct tctx *c, const struct tnode *n, const struct tval *dot,
                      struct sbuf *out)
{
    for (;;) {
        struct tval v;
        if (step(c, n->at, out) < 0 || eval_pipe(c, &n->pipe, dot, &v) < 0)
            return -1;
        int rc = 0;
        if (n->k == N_RANGE) {
            if (v.k != TV_VEC) {
                fail_at(c, n->pipe.at, "range can't iterate over %s", tv_type(&v));
                rc = -1;
            } else if (v.vec->v.n == 0) {
                rc = exec_list(c, n->els, dot, out);
            }
            for (size_t i = 0; rc == 0 && v.k == TV_VEC && i < v.vec->v.n; i++) {
                struct tval s = {.k = TV_SAMPLE, .vec = v.vec, .idx = i};
                rc = exec_list(c, n->body, &s, out);
            }
            tv_free(&v);
            return rc;
        }
        if (tv_truth(&v)) {
            rc = exec_list(c, n->body, n->k == N_WITH ? &v : dot, out);
            tv_free(&v);
            return rc;
        }
        tv_free(&v);
        if (!n->chained)
            return exec_list(c, n->els, dot, out);
        n = n->els;
    }
}

static int exec_list(struct tctx *c, const struct tnode *n, const struct tval *dot,
                     struct sbuf *out)
{
    for (; n; n = n->next) {
        if (n->k == N_TEXT) {
            sbuf_add(out, n->text, n->len);
            continue;
        }
        if (n->k != N_PRINT) {
            if (exec_block(c, n, dot, out) < 0)
                return -1;
            continue;
        }
        struct tval v;
        if (step(c, n->at, out) < 0 || eval_pipe(c, &n->pipe, dot, &v) < 0)
            return -1;
        tv_print(c, out, &v);
        tv_free(&v);
    }
    return 0;
}

int rules_template_expand(const char *src, const struct rules_tmpl_data *data, struct sbuf *out,
                          char *err, size_t errcap)
{
    struct tctx c = {.src = src, .data = data, .err = err, .errcap = errcap};
    struct tparse tp = {0};
    struct tnode *tree = NULL;
    const char *stop = NULL;
    if (split(&c, &tp) == 0)
        tree = parse_list(&c, &tp, 0, 1, &stop);
    if (!c.failed && stop)
        fail_at(&c, stop, "unexpected {{ %s }}", stop[1] == 'n' ? "end" : "else");
    if (!c.failed && data) {
        struct sbuf b;
        sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
        const struct tval top = {.k = TV_TOP};
        exec_list(&c, tree, &top, &b);
        if (!c.failed && b.overflow)
            fail_at(&c, src, "expansion longer than %d bytes", RULES_MAX_TEMPLATE_OUT);
        if (!c.failed)
            sbuf_add(out, b.buf, b.len);
        sbuf_release(&b);
    }
    list_free(tree);
    free(tp.items);
    return c.failed ? -1 : 0;
}
