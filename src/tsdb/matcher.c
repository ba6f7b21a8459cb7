/*
 * matcher.c: the four PromQL label matchers (=, !=, =~, !~) with Prometheus
 * semantics (see index.h). Regexes are compiled once with PCRE2 in UTF-8
 * mode, anchored at both ends by compile options rather than by wrapping the
 * text (so the offsets in error messages are the user's), JIT-compiled when
 * the library supports it, and recognised when they are really a literal
 * alternation, ".*", ".+", or a literal with ".*" before and/or after it,
 * which are then answered without PCRE2 (and lists of literals directly
 * from the postings).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "tsdb/index.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/banned.h"
#include "util/util.h"

/* PCRE2's backtracking budget per value (its default is 10 million). */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 100000u

/*
 * RE2-like options: whole-value match, '.' matches newline (Prometheus wraps
 * patterns in ^(?s:...)$), '$' only at the end, no \C (it can split UTF-8).
 */
#define COMPILE_OPTIONS                                                                            \
    (PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY |        \
     PCRE2_NEVER_BACKSLASH_C)

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int strref_cmp(const void *a, const void *b)
{
    const struct tsdb__strref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/*
 * Regex metacharacters, '|' excepted. Patterns reaching the checks below
 * compiled, so they are valid UTF-8 and their other bytes, non-ASCII ones
 * included, are literal characters.
 */
static const char meta[] = "\\^$.?*+()[]{}";

static int literal(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '|' || strchr(meta, p[i]))
            return 0;
    return 1;
}

/*
 * If the pattern is a plain alternation of literals ("a|b|c", "foo", "" or
 * "a|"), set m->set to its distinct alternatives and return 1.
 */
static int literal_set(struct tsdb__matcher *m)
{
    const char *p = m->value;
    size_t n = 1;
    for (size_t i = 0; i < m->value_len; i++) {
        if (p[i] == '|')
            n++;
        else if (strchr(meta, p[i]))
            return 0;
    }
    m->set = xmalloc(n * sizeof(*m->set));
    const char *start = p, *end = p + m->value_len;
    for (size_t k = 0; k < n; k++) {
        const char *bar = memchr(start, '|', (size_t)(end - start));
        const char *stop = bar ? bar : end;
        m->set[k] = (struct tsdb__strref){start, (size_t)(stop - start)};
        start = stop + 1;
    }
    qsort(m->set, n, sizeof(*m->set), strref_cmp);
    size_t u = 0;
    for (size_t k = 0; k < n; k++)
        if (u == 0 || strref_cmp(&m->set[u - 1], &m->set[k]) != 0)
            m->set[u++] = m->set[k];
    m->nset = u;
    return 1;
}

/*
 * "lit.*", ".*lit" and ".*lit.*" with a literal lit (set in m->lit): '.'
 * matches any character here (PCRE2_DOTALL), so these are prefix, suffix and
 * substring tests. Anything else is TSDB__RE_GENERIC.
 */
static enum tsdb__re_kind affix(struct tsdb__matcher *m)
{
    const char *p = m->value;
    size_t n = m->value_len;
    int lead = n >= 2 && memcmp(p, ".*", 2) == 0;
    int trail = n >= 2 + 2 * (size_t)lead && memcmp(p + n - 2, ".*", 2) == 0;
    size_t start = lead ? 2 : 0, len = n - start - (trail ? 2 : 0);
    if ((!lead && !trail) || !literal(p + start, len))
        return TSDB__RE_GENERIC;
    m->lit = (struct tsdb__strref){p + start, len};
    return lead && trail ? TSDB__RE_CONTAINS : lead ? TSDB__RE_SUFFIX : TSDB__RE_PREFIX;
}

static int compile_regex(struct tsdb__matcher *m, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    if (m->value_len > TSDB_MAX_REGEX_LEN)
        return fail(TSDB__EREGEX, err, errlen, "regex for label %s is longer than %d bytes",
                    m->name, TSDB_MAX_REGEX_LEN);
    m->re = pcre2_compile((PCRE2_SPTR)m->value, m->value_len, COMPILE_OPTIONS, &code, &off, NULL);
    if (!m->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        return fail(TSDB__EREGEX, err, errlen,
                    "invalid regex \"%.*s%s\" for label %s: %s at offset %zu",
                    m->value_len > 64 ? 64 : (int)m->value_len, m->value,
                    m->value_len > 64 ? "..." : "", m->name, (char *)msg, (size_t)off);
    }
    /* JIT is an optimisation: without it (unsupported CPU, no memory) PCRE2 interprets. */
    pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);
    /* One pair of offsets is all a yes/no match needs (a return of 0 still means a match). */
    m->md = pcre2_match_data_create(1, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    if (!m->md || !m->mctx) {
        fprintf(stderr, "sitrep: out of memory compiling a regex\n");
        abort();
    }
    pcre2_set_match_limit(m->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(m->mctx, DEPTH_LIMIT);

    if (m->value_len == 2 && memcmp(m->value, ".*", 2) == 0)
        m->re_kind = TSDB__RE_ANY;
    else if (m->value_len == 2 && memcmp(m->value, ".+", 2) == 0)
        m->re_kind = TSDB__RE_NONEMPTY;
    else if (literal_set(m))
        m->re_kind = TSDB__RE_SET;
    else
        m->re_kind = affix(m);
    return 0;
}

int tsdb__matcher_compile(struct tsdb__matcher *m, enum tsdb__match_type type, const char *name,
                          const char *value, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (!tsdb__label_name_valid(name))
        return fail(TSDB__EBADNAME, err, errlen, "invalid label name in matcher");
    if (!value || type < TSDB__MATCH_EQ || type > TSDB__MATCH_NRE)
        return fail(TSDB__EBADARG, err, errlen, "invalid matcher for label %s", name);
    m->type = type;
    m->name = xstrdup(name);
    m->value_len = strlen(value);
    m->value = xstrndup(value, m->value_len);
    if (type == TSDB__MATCH_RE || type == TSDB__MATCH_NRE) {
        int r = compile_regex(m, err, errlen);
        if (r < 0) {
            tsdb__matcher_release(m);
            return r;
        }
    }
    int r = tsdb__matcher_test_utf8(m, "", 0);
    if (r < 0) {
        tsdb__matcher_release(m);
        return fail(r, err, errlen, "regex for label %s is too expensive", name);
    }
    m->matches_empty = r;
    return 0;
}

void tsdb__matcher_release(struct tsdb__matcher *m)
{
    free(m->name);
    free(m->value);
    free(m->set);
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_code_free(m->re);
    memset(m, 0, sizeof(*m));
}

static int in_set(const struct tsdb__matcher *m, const char *s, size_t len)
{
    struct tsdb__strref key = {s, len};
    return bsearch(&key, m->set, m->nset, sizeof(*m->set), strref_cmp) != NULL;
}

/* The regex part of RE/NRE: 1, 0 or TSDB__EMATCH. */
static int regex_test(struct tsdb__matcher *m, const char *s, size_t len)
{
    switch (m->re_kind) {
    case TSDB__RE_ANY:
        return 1;
    case TSDB__RE_NONEMPTY:
        return len > 0;
    case TSDB__RE_SET:
        return in_set(m, s, len);
    case TSDB__RE_PREFIX:
        return len >= m->lit.len && memcmp(s, m->lit.s, m->lit.len) == 0;
    case TSDB__RE_SUFFIX:
        return len >= m->lit.len && memcmp(s + len - m->lit.len, m->lit.s, m->lit.len) == 0;
    case TSDB__RE_CONTAINS:
        return m->lit.len == 0 || memmem(s, len, m->lit.s, m->lit.len) != NULL;
    case TSDB__RE_GENERIC:
        break;
    }
    /* s is valid UTF-8 here, so PCRE2 need not check it again for every value. */
    int r = pcre2_match(m->re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    if (r >= 0)
        return 1;
    return r == PCRE2_ERROR_NOMATCH ? 0 : TSDB__EMATCH;
}

/* utf8: 1 if s is known to be valid UTF-8, 0 if it must be checked. */
static int test(struct tsdb__matcher *m, const char *s, size_t len, int utf8)
{
    int r;
    switch (m->type) {
    case TSDB__MATCH_EQ:
        return len == m->value_len && memcmp(s, m->value, len) == 0;
    case TSDB__MATCH_NE:
        return !(len == m->value_len && memcmp(s, m->value, len) == 0);
    case TSDB__MATCH_RE:
    case TSDB__MATCH_NRE:
        /* A string that is not UTF-8 (never a stored value) matches no regex. */
        r = utf8 || tsdb__utf8_valid(s, len) ? regex_test(m, s, len) : 0;
        if (r < 0 || m->type == TSDB__MATCH_RE)
            return r;
        return !r;
    }
    return TSDB__EBADARG;
}

int tsdb__matcher_test(struct tsdb__matcher *m, const char *s, size_t len)
{
    return test(m, s, len, 0);
}

int tsdb__matcher_test_utf8(struct tsdb__matcher *m, const char *s, size_t len)
{
    return test(m, s, len, 1);
}

int tsdb__matchers_check(const struct tsdb__matcher *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ms[i].matches_empty)
            return 0;
    return TSDB__EEMPTYSEL;
}
