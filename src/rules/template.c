/*
 * template.c: the small template language of alert labels and annotations,
 * the subset of Go's text/template that Prometheus rule files use in
 * practice: text with {{ actions }}, each a pipeline of commands separated
 * by '|', a command being a value ($value, $labels.x, $externalLabels.x,
 * $externalURL, .Value, .Labels.x, a string or a number) or a function with
 * arguments (humanize*, printf, toUpper, toLower, title), the previous
 * command's result passed as the last argument. Control structures (if,
 * range, with, define) are refused with an error rather than misread.
 *
 * Everything is bounded: the output of one expansion is capped at
 * RULES_MAX_TEMPLATE_OUT, arguments per command at TMPL_MAX_ARGS, and the
 * scanner never reads past the terminating NUL.
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

#define TMPL_MAX_ARGS 16

struct tval {
    int is_num;
    double num;
    char *str; /* owned; NULL when is_num */
};

struct tctx {
    const char *src; /* whole template, for positions */
    const char *p;   /* scan position inside the current action */
    const char *end; /* end of the current action's content */
    const struct rules_tmpl_data *data;
    char *err;
    size_t errcap;
    int failed;
};

static void tv_free(struct tval *v)
{
    free(v->str);
    v->str = NULL;
}

static struct tval tv_num(double d)
{
    return (struct tval){.is_num = 1, .num = d};
}

static struct tval tv_str(const char *s, size_t n)
{
    return (struct tval){.str = xstrndup(s, n)};
}

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

static void tv_print(struct sbuf *out, const struct tval *v)
{
    if (v->is_num)
        go_float(out, v->num);
    else
        sbuf_adds(out, v->str);
}

/* A value as a float (strings are parsed, as Prometheus's convertToFloat does). */
static int tv_float(struct tctx *c, const char *at, const struct tval *v, double *d)
{
    if (v->is_num) {
        *d = v->num;
        return 0;
    }
    char *end;
    *d = strtod(v->str, &end);
    if ((!*v->str || *end) && !c->data) {
        /* Only checking: labels hold "" now and whatever the series say later. */
        *d = 0;
        return 0;
    }
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

/* A `.a.b` field chain after a variable or at the start; returns its parts. */
static size_t scan_fields(struct tctx *c, const char **names, size_t *lens, size_t cap)
{
    size_t n = 0;
    while (c->p < c->end && *c->p == '.' && c->p + 1 < c->end && ident_char(c->p[1])) {
        c->p++;
        const char *s = c->p;
        while (c->p < c->end && ident_char(*c->p))
            c->p++;
        if (n < cap) {
            names[n] = s;
            lens[n] = (size_t)(c->p - s);
        }
        n++;
    }
    return n;
}

static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* Resolve $var.fields or .Fields to a value. which: 1 for '$' forms, 0 for '.' forms. */
static int resolve(struct tctx *c, const char *at, const char *var, size_t varlen, const char **f,
                   const size_t *fl, size_t nf, struct tval *out)
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
        /* Go prints a map as map[a:b c:d]; keep that shape. */
        struct sbuf b;
        sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
        sbuf_adds(&b, "map[");
        for (size_t i = 0; i < nls; i++)
            sbuf_addf(&b, "%s%s:%s", i ? " " : "", ls[i].name, ls[i].value);
        sbuf_adds(&b, "]");
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

/* One operand: a variable, a field, a literal. Returns 1 if one was read, 0 if none, -1. */
static int scan_operand(struct tctx *c, struct tval *out)
{
    const char *at = c->p;
    const char *f[4];
    size_t fl[4];
    if (*c->p == '"' || *c->p == '`')
        return scan_string(c, out) < 0 ? -1 : 1;
    if (*c->p == '$') {
        c->p++;
        const char *v = c->p;
        while (c->p < c->end && ident_char(*c->p))
            c->p++;
        size_t vl = (size_t)(c->p - v);
        if (vl == 0) { /* `$` alone is the dot, a map in Go: not useful here */
            fail_at(c, at, "bare $ is not supported");
            return -1;
        }
        size_t nf = scan_fields(c, f, fl, 4);
        return resolve(c, at, v, vl, f, fl, nf > 4 ? 4 : nf, out) < 0 ? -1 : 1;
    }
    if (*c->p == '.' && c->p + 1 < c->end && ident_char(c->p[1])) {
        size_t nf = scan_fields(c, f, fl, 4);
        if (nf == 0 || nf > 4) {
            fail_at(c, at, "bad field chain");
            return -1;
        }
        return resolve(c, at, f[0], fl[0], f + 1, fl + 1, nf - 1, out) < 0 ? -1 : 1;
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
        *out = tv_num(d);
        return 1;
    }
    return 0;
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
            if (!a->is_num && (verb == 'x' || verb == 'X')) {
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
            tv_print(&tmp, a);
            spec[sn++] = 's';
            spec[sn] = '\0';
            sbuf_addf(out, spec, tmp.buf);
            sbuf_release(&tmp);
            break;
        }
        case 'q':
            sbuf_addc(out, '"');
            if (a->is_num)
                go_float(out, a->num);
            else
                for (const char *s = a->str; *s; s++) {
                    if (*s == '"' || *s == '\\')
                        sbuf_addc(out, '\\');
                    sbuf_addc(out, *s);
                }
            sbuf_addc(out, '"');
            break;
        default:
            fail_at(c, at, "printf: verb %%%c is not supported", verb);
            return;
        }
    }
    if (ai < nargs) {
        sbuf_adds(out, "%!(EXTRA ");
        for (; ai < nargs; ai++) {
            sbuf_adds(out, args[ai].is_num ? "float64=" : "string=");
            tv_print(out, &args[ai]);
            if (ai + 1 < nargs)
                sbuf_adds(out, ", ");
        }
        sbuf_addc(out, ')');
    }
}

#pragma GCC diagnostic pop

/* ---- functions ---- */

static const char *const fn_names[] = {"humanize",
                                       "humanize1024",
                                       "humanizeDuration",
                                       "humanizePercentage",
                                       "humanizeTimestamp",
                                       "printf",
                                       "toUpper",
                                       "toLower",
                                       "title"};

static int call_fn(struct tctx *c, const char *at, const char *name, size_t nl, struct tval *args,
                   size_t nargs, struct tval *res)
{
    struct sbuf b;
    sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
    double d;
    int rc = -1;
    if (word_is(name, nl, "printf")) {
        if (nargs < 1 || args[0].is_num) {
            fail_at(c, at, "printf: want a format string first");
            goto out;
        }
        go_printf(c, at, &b, args[0].str, args + 1, nargs - 1);
        if (c->failed)
            goto out;
    } else if (nargs != 1) {
        fail_at(c, at, "wrong number of args for %.*s: want 1 got %zu", (int)nl, name, nargs);
        goto out;
    } else if (word_is(name, nl, "toUpper") || word_is(name, nl, "toLower") ||
               word_is(name, nl, "title")) {
        tv_print(&b, &args[0]);
        int up = name[2] == 'U', word_start = 1;
        for (size_t i = 0; i < b.len; i++) {
            unsigned char ch = (unsigned char)b.buf[i];
            if (name[0] == 't' && name[1] == 'i')
                b.buf[i] = (char)(word_start ? toupper(ch) : ch);
            else
                b.buf[i] = (char)(up ? toupper(ch) : tolower(ch));
            word_start = isspace(ch) || ch == '-' || ch == '_';
        }
    } else {
        if (tv_float(c, at, &args[0], &d) < 0)
            goto out;
        if (word_is(name, nl, "humanize"))
            humanize(&b, d);
        else if (word_is(name, nl, "humanize1024"))
            humanize1024(&b, d);
        else if (word_is(name, nl, "humanizeDuration"))
            humanize_duration(&b, d);
        else if (word_is(name, nl, "humanizePercentage"))
            go_g4(&b, d * 100, "%");
        else if (word_is(name, nl, "humanizeTimestamp"))
            humanize_timestamp(&b, d);
    }
    *res = tv_str(b.buf, b.len);
    rc = 0;
out:
    sbuf_release(&b);
    return rc;
}

/*
 * One command: an operand alone, or a function name and its arguments; the
 * previous command's result (piped, may be NULL) becomes the last argument.
 */
static int eval_command(struct tctx *c, struct tval *piped, struct tval *res)
{
    skip_ws(c);
    const char *at = c->p;
    if (c->p >= c->end) {
        fail_at(c, at, "missing value for command");
        return -1;
    }
    if (*c->p == '(') {
        fail_at(c, at, "parenthesised pipelines are not supported");
        return -1;
    }
    if (isalpha((unsigned char)*c->p) || *c->p == '_') {
        const char *name = c->p;
        while (c->p < c->end && ident_char(*c->p))
            c->p++;
        size_t nl = (size_t)(c->p - name);
        static const char *const keywords[] = {
            "if",    "else",     "end", "range", "with", "define", "template", "block",
            "break", "continue", "and", "or",    "not",  "len",    "index",    "query"};
        size_t i;
        for (i = 0; i < ARRAY_SIZE(fn_names) && !word_is(name, nl, fn_names[i]); i++)
            ;
        if (i == ARRAY_SIZE(fn_names)) {
            for (size_t k = 0; k < ARRAY_SIZE(keywords); k++)
                if (word_is(name, nl, keywords[k])) {
                    fail_at(c, at, "\"%.*s\" is not supported in sitrep's templates", (int)nl,
                            name);
                    return -1;
                }
            fail_at(c, at, "function \"%.*s\" not defined", (int)nl, name);
            return -1;
        }
        struct tval args[TMPL_MAX_ARGS + 1];
        size_t nargs = 0;
        int rc = 0;
        for (;;) {
            skip_ws(c);
            if (c->p >= c->end || *c->p == '|')
                break;
            if (nargs == TMPL_MAX_ARGS) {
                fail_at(c, c->p, "too many arguments");
                rc = -1;
                break;
            }
            const char *aat = c->p;
            int r = scan_operand(c, &args[nargs]);
            if (r < 0) {
                rc = -1;
                break;
            }
            if (r == 0) {
                fail_at(c, aat, "unexpected \"%c\" in command", *aat);
                rc = -1;
                break;
            }
            nargs++;
        }
        if (rc == 0 && piped) {
            args[nargs++] = *piped;
            *piped = (struct tval){0};
        }
        if (rc == 0)
            rc = call_fn(c, at, name, nl, args, nargs, res);
        for (size_t k = 0; k < nargs; k++)
            tv_free(&args[k]);
        return rc;
    }
    int r = scan_operand(c, res);
    if (r <= 0) {
        if (r == 0)
            fail_at(c, at, "unexpected \"%c\" in command", *at);
        return -1;
    }
    skip_ws(c);
    if (piped || (c->p < c->end && *c->p != '|')) {
        tv_free(res);
        fail_at(c, at, "can't give argument to non-function");
        return -1;
    }
    return 0;
}

/* The pipeline of one action, printed to out. */
static int eval_action(struct tctx *c, struct sbuf *out)
{
    struct tval cur = {0};
    int have = 0;
    for (;;) {
        struct tval next = {0};
        if (eval_command(c, have ? &cur : NULL, &next) < 0) {
            tv_free(&cur);
            return -1;
        }
        tv_free(&cur);
        cur = next;
        have = 1;
        skip_ws(c);
        if (c->p >= c->end)
            break;
        if (*c->p != '|') {
            tv_free(&cur);
            fail_at(c, c->p, "unexpected \"%c\" in command", *c->p);
            return -1;
        }
        c->p++;
    }
    tv_print(out, &cur);
    tv_free(&cur);
    return 0;
}

int rules_template_expand(const char *src, const struct rules_tmpl_data *data, struct sbuf *out,
                          char *err, size_t errcap)
{
    struct tctx c = {.src = src, .data = data, .err = err, .errcap = errcap};
    struct sbuf b;
    sbuf_init(&b, RULES_MAX_TEMPLATE_OUT);
    const char *p = src;
    int trim_next = 0;
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
        sbuf_add(&b, ts, (size_t)(te - ts));
        if (!open)
            break;
        const char *body = open + 2 + (trim_prev ? 2 : 0);
        const char *close = strstr(body, "}}");
        if (!close) {
            fail_at(&c, open, "unclosed action");
            break;
        }
        const char *body_end = close;
        trim_next = 0;
        if (close - body >= 2 && close[-1] == '-' && isspace((unsigned char)close[-2])) {
            trim_next = 1;
            body_end = close - 1;
        }
        c.p = body;
        c.end = body_end;
        skip_ws(&c);
        if (c.end - c.p >= 2 && c.p[0] == '/' && c.p[1] == '*') {
            const char *e = c.end;
            while (e > c.p && isspace((unsigned char)e[-1]))
                e--;
            if (e - c.p < 4 || e[-1] != '/' || e[-2] != '*') {
                fail_at(&c, c.p, "unclosed comment");
                break;
            }
        } else if (c.p >= c.end) {
            fail_at(&c, open, "missing value for command");
            break;
        } else if (eval_action(&c, &b) < 0) {
            break;
        }
        p = close + 2;
    }
    if (!c.failed && b.overflow)
        fail_at(&c, src, "expansion longer than %d bytes", RULES_MAX_TEMPLATE_OUT);
    if (!c.failed)
        sbuf_add(out, b.buf, b.len);
    sbuf_release(&b);
    return c.failed ? -1 : 0;
}
