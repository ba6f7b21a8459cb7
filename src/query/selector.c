/*
 * selector.c: a small recursive-descent parser for series selectors (see
 * selector.h). Grammar:
 *
 *   selector := [metric_name] ['{' [matcher {',' matcher} [',']] '}']
 *   matcher  := label_name op string
 *   op       := '=' | '!=' | '=~' | '!~'
 */
#include "query/selector.h"
#include "util/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s, *p;
    char *out; /* where the next string goes in sel->strs */
    char *err;
    size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *ps, const char *fmt, ...)
{
    int n = snprintf(ps->err, ps->errlen, "1:%d: ", (int)(ps->p - ps->s) + 1);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < ps->errlen)
        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_space(struct parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

/* An identifier ([a-zA-Z_:][a-zA-Z0-9_:]*, colons only if allowed) copied out. */
static const char *ident(struct parser *ps, int colons)
{
    const char *b = ps->p;
    while (isalpha((unsigned char)*ps->p) || *ps->p == '_' || (colons && *ps->p == ':') ||
           (ps->p > b && isdigit((unsigned char)*ps->p)))
        ps->p++;
    if (ps->p == b)
        return NULL;
    char *o = ps->out;
    memcpy(o, b, (size_t)(ps->p - b));
    o[ps->p - b] = 0;
    ps->out += ps->p - b + 1;
    return o;
}

static const char *string(struct parser *ps)
{
    char q = *ps->p;
    if (q != '"' && q != '\'' && q != '`') {
        fail(ps, "expected a quoted string");
        return NULL;
    }
    ps->p++;
    char *o = ps->out, *w = o;
    while (*ps->p && *ps->p != q) {
        char c = *ps->p++;
        if (c == '\\' && q != '`') {
            char e = *ps->p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
            case '"':
            case '\'':
                c = e;
                break;
            default:
                ps->p -= 2;
                fail(ps, "unknown escape sequence '\\%c'", e ? e : ' ');
                return NULL;
            }
        }
        *w++ = c;
    }
    if (*ps->p != q) {
        fail(ps, "unterminated string");
        return NULL;
    }
    ps->p++;
    *w = 0;
    ps->out = w + 1;
    return o;
}

int query_parse_selector(const char *s, struct query_selector *sel, char *err, size_t errlen)
{
    memset(sel, 0, sizeof(*sel));
    sel->strs = xmalloc(strlen(s) + 2 * QUERY_MAX_MATCHERS + 16);
    struct parser ps = {s, s, sel->strs, err, errlen};
    skip_space(&ps);
    const char *name = ident(&ps, 1);
    if (name)
        sel->m[sel->n++] = (struct tsdb_matcher){TSDB_EQ, "__name__", name};
    skip_space(&ps);
    int rc = 0;
    if (*ps.p == '{') {
        ps.p++;
        for (;;) {
            skip_space(&ps);
            if (*ps.p == '}')
                break;
            const char *l = ident(&ps, 0);
            if (!l) {
                rc = fail(&ps, "expected a label name or '}'");
                break;
            }
            skip_space(&ps);
            enum tsdb_match op;
            if (ps.p[0] == '=' && ps.p[1] == '~')
                op = TSDB_RE, ps.p += 2;
            else if (ps.p[0] == '!' && ps.p[1] == '~')
                op = TSDB_NRE, ps.p += 2;
            else if (ps.p[0] == '!' && ps.p[1] == '=')
                op = TSDB_NEQ, ps.p += 2;
            else if (ps.p[0] == '=')
                op = TSDB_EQ, ps.p += 1;
            else {
                rc = fail(&ps, "expected '=', '!=', '=~' or '!~' after %s", l);
                break;
            }
            skip_space(&ps);
            const char *v = string(&ps);
            if (!v) {
                rc = -1;
                break;
            }
            if (sel->n == QUERY_MAX_MATCHERS) {
                rc = fail(&ps, "more than %d matchers", QUERY_MAX_MATCHERS);
                break;
            }
            sel->m[sel->n++] = (struct tsdb_matcher){op, l, v};
            skip_space(&ps);
            if (*ps.p == ',') {
                ps.p++;
                continue;
            }
            if (*ps.p != '}') {
                rc = fail(&ps, "expected ',' or '}'");
                break;
            }
        }
        if (rc == 0)
            ps.p++;
        skip_space(&ps);
    }
    if (rc == 0 && *ps.p)
        rc = fail(&ps, "unexpected '%c'", *ps.p);
    if (rc == 0 && sel->n == 0)
        rc = fail(&ps, "empty selector");
    if (rc < 0)
        query_selector_release(sel);
    return rc;
}

void query_selector_release(struct query_selector *sel)
{
    free(sel->strs);
    sel->strs = NULL;
    sel->n = 0;
}
