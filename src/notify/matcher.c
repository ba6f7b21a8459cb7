/*
 * matcher.c: Alertmanager's label matchers: parsing its `matchers:` strings
 * (`severity="page"`, `job=~"api|web"`, `{a!=b, c!~"x.*"}`), matching label
 * sets, and printing them the way Alertmanager does in route and group keys.
 * Regexes are PCRE2 compiled anchored at both ends, as Alertmanager anchors
 * RE2 with ^(?:...)$.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/util.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int notify__matcher_compile(struct notify_matcher *m, char *err, size_t errcap)
{
    if (m->op != NOTIFY_RE && m->op != NOTIFY_NRE)
        return 0;
    int ec;
    PCRE2_SIZE off;
    /* MATCH_INVALID_UTF: label values from the network need not be valid UTF-8. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)m->value, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF |
                                       PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
                                   &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errcap, "bad regex \"%s\" at offset %zu: %s", m->value, (size_t)off,
                 (const char *)msg);
        return -1;
    }
    m->re = re;
    return 0;
}

void notify__matcher_free_re(struct notify_matcher *m)
{
    pcre2_code_free(m->re);
    m->re = NULL;
}

int notify__matcher_match(const struct notify_matcher *m, const char *value)
{
    switch (m->op) {
    case NOTIFY_EQ:
        return strcmp(value, m->value) == 0;
    case NOTIFY_NE:
        return strcmp(value, m->value) != 0;
    case NOTIFY_RE:
    case NOTIFY_NRE: {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int rc = pcre2_match(m->re, (PCRE2_SPTR)value, strlen(value), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return (rc >= 0) == (m->op == NOTIFY_RE);
    }
    }
    return 0;
}

int notify__matcher_matches_empty(const struct notify_matcher *m)
{
    return notify__matcher_match(m, "");
}

int notify__matchers_match(const struct notify_matchers *ms, const struct notify__lset *l)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!notify__matcher_match(&ms->v[i], notify__lset_get(l, ms->v[i].name)))
            return 0;
    return 1;
}

static const char *op_str(enum notify_match_op op)
{
    static const char *s[] = {"=", "!=", "=~", "!~"};
    return s[op];
}

/* A name the unquoted syntax reads back: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int name_plain(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':'))
        return 0;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == ':'))
            return 0;
    return 1;
}

static void quote(struct sbuf *b, const char *s)
{
    sbuf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sbuf_addc(b, '\\');
        if (*s == '\n') {
            sbuf_adds(b, "\\n");
            continue;
        }
        sbuf_addc(b, *s);
    }
    sbuf_addc(b, '"');
}

void notify__matcher_string(struct sbuf *b, const struct notify_matcher *m)
{
    if (name_plain(m->name))
        sbuf_adds(b, m->name);
    else
        quote(b, m->name);
    sbuf_adds(b, op_str(m->op));
    quote(b, m->value);
}

/* Alertmanager's Matchers.Less: by name, then value, then type. */
static int matcher_cmp(const void *a, const void *b)
{
    const struct notify_matcher *x = *(const struct notify_matcher *const *)a;
    const struct notify_matcher *y = *(const struct notify_matcher *const *)b;
    int c = strcmp(x->name, y->name);
    if (!c)
        c = strcmp(x->value, y->value);
    if (!c)
        c = (int)x->op - (int)y->op;
    return c;
}

void notify__matchers_string(struct sbuf *b, const struct notify_matchers *ms)
{
    const struct notify_matcher **sorted = xmalloc((ms->n ? ms->n : 1) * sizeof(*sorted));
    for (size_t i = 0; i < ms->n; i++)
        sorted[i] = &ms->v[i];
    qsort(sorted, ms->n, sizeof(*sorted), matcher_cmp);
    sbuf_addc(b, '{');
    for (size_t i = 0; i < ms->n; i++) {
        if (i)
            sbuf_addc(b, ',');
        notify__matcher_string(b, sorted[i]);
    }
    sbuf_addc(b, '}');
    free(sorted);
}

void notify_matchers_release(struct notify_matchers *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        free(ms->v[i].name);
        free(ms->v[i].value);
        pcre2_code_free(ms->v[i].re);
    }
    free(ms->v);
    ms->v = NULL;
    ms->n = 0;
}

void notify__matchers_copy(struct notify_matchers *dst, const struct notify_matchers *src)
{
    char err[256];
    dst->v = xcalloc(src->n ? src->n : 1, sizeof(*dst->v));
    dst->n = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = xstrdup(src->v[i].name);
        dst->v[i].value = xstrdup(src->v[i].value);
        dst->v[i].op = src->v[i].op;
        /* It compiled once, so it compiles again. */
        if (notify__matcher_compile(&dst->v[i], err, sizeof(err)) < 0)
            abort();
    }
}

/* ---- parsing ---- */

static void skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/*
 * A quoted string at *p (the opening quote): unescape \" \\ \n; any other
 * escape keeps its backslash, as Alertmanager's parser does.
 */
static char *parse_quoted(const char **p, char *err, size_t errcap)
{
    struct sbuf b;
    sbuf_init(&b, 1 << 20);
    const char *s = *p + 1;
    for (; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            if (*s == 'n')
                sbuf_addc(&b, '\n');
            else if (*s == '"' || *s == '\\')
                sbuf_addc(&b, *s);
            else {
                sbuf_addc(&b, '\\');
                sbuf_addc(&b, *s);
            }
            continue;
        }
        sbuf_addc(&b, *s);
    }
    if (*s != '"') {
        snprintf(err, errcap, "unterminated quoted string");
        sbuf_release(&b);
        return NULL;
    }
    *p = s + 1;
    return notify__sbuf_take(&b);
}

/* One matcher at *p; stops before ',' or '}' or the end. */
static int parse_one(const char **p, struct notify_matcher *m, int braced, char *err, size_t errcap)
{
    const char *s = *p;
    skip_space(&s);
    if (*s == '"') {
        if (!(m->name = parse_quoted(&s, err, errcap)))
            return -1;
    } else {
        const char *start = s;
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':')) {
            snprintf(err, errcap, "bad matcher: want a label name at '%.40s'", s);
            return -1;
        }
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
               *s == '_' || *s == ':')
            s++;
        m->name = xstrndup(start, (size_t)(s - start));
    }
    skip_space(&s);
    if (strncmp(s, "=~", 2) == 0)
        m->op = NOTIFY_RE, s += 2;
    else if (strncmp(s, "!~", 2) == 0)
        m->op = NOTIFY_NRE, s += 2;
    else if (strncmp(s, "!=", 2) == 0)
        m->op = NOTIFY_NE, s += 2;
    else if (*s == '=')
        m->op = NOTIFY_EQ, s += 1;
    else {
        snprintf(err, errcap, "bad matcher '%s...': want =, !=, =~ or !~ after the name", m->name);
        return -1;
    }
    skip_space(&s);
    if (*s == '"') {
        if (!(m->value = parse_quoted(&s, err, errcap)))
            return -1;
    } else {
        /* Unquoted: up to the next ',' (or '}' when braced), spaces trimmed. */
        const char *start = s;
        while (*s && *s != ',' && !(braced && *s == '}')) {
            if (*s == '"') {
                snprintf(err, errcap, "matcher value contains an unescaped double quote");
                return -1;
            }
            s++;
        }
        const char *end = s;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        m->value = xstrndup(start, (size_t)(end - start));
    }
    skip_space(&s);
    *p = s;
    return notify__matcher_compile(m, err, errcap);
}

int notify_matchers_parse(const char *s, struct notify_matchers *out, char *err, size_t errcap)
{
    const char *p = s;
    skip_space(&p);
    int braced = *p == '{';
    if (braced)
        p++;
    size_t added = 0;
    for (;;) {
        skip_space(&p);
        if (braced && *p == '}')
            break;
        if (!*p)
            break;
        struct notify_matcher m = {0};
        if (parse_one(&p, &m, braced, err, errcap) < 0) {
            free(m.name);
            free(m.value);
            goto fail;
        }
        out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
        out->v[out->n++] = m;
        added++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (braced && *p == '}')
            break;
        if (*p) {
            snprintf(err, errcap, "bad matcher: unexpected '%.20s'", p);
            goto fail;
        }
    }
    if (braced) {
        if (*p != '}') {
            snprintf(err, errcap, "missing closing '}'");
            goto fail;
        }
        p++;
        skip_space(&p);
        if (*p) {
            snprintf(err, errcap, "unexpected '%.20s' after '}'", p);
            goto fail;
        }
    }
    if (!added && !braced) {
        snprintf(err, errcap, "empty matcher");
        return -1;
    }
    return 0;
fail:
    /* Drop what this call added; leave earlier matchers to the caller. */
    while (added--) {
        struct notify_matcher *m = &out->v[--out->n];
        free(m->name);
        free(m->value);
        pcre2_code_free(m->re);
    }
    return -1;
}
