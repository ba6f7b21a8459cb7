/*
 * series_notation.c: the "expanding notation" of input series in rule unit
 * test files (promtool's `values:`), read into one value per step for
 * unittest.c. The forms, separated by blanks:
 *
 *     7  -1.5  1e3  Inf  -Inf  NaN   one value (Inf/NaN in any case)
 *     a+bxN  a-bxN                   N+1 values a, a+b, ..., a+N*b
 *     axN  (also +axN, -axN)         N+1 values of a
 *     _                              no sample at this step
 *     _xN                            N steps without a sample
 *     stale                          a staleness marker
 *
 * As in Prometheus's series parser, a repetition writes N+1 values (the
 * first is "time 0"), while _xN skips exactly N steps; a+bxN adds b
 * repeatedly rather than multiplying, so 0.1 steps give the same doubles as
 * promtool. Hexadecimal numbers do not exist here: "0x10" is ten zeros
 * after the first.
 */
#include "rules/rules_internal.h"
#include "util/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOO_MANY "more than 1000000 values in one series"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * A number at *p (optionally signed when sign is set): decimal with
 * fraction and exponent, or Inf/NaN. Advances *p past it; 0, or -1 with *p
 * left where the problem is.
 */
static int number(const char **p, int sign, double *out)
{
    const char *s = *p, *q = s;
    int neg = 0;
    if (sign && (*q == '+' || *q == '-'))
        neg = *q++ == '-';
    if (strncasecmp(q, "inf", 3) == 0 || strncasecmp(q, "nan", 3) == 0) {
        /* "Infx2" is one word to Prometheus's lexer, not Inf repeated */
        char c = q[3];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return -1;
        *out = (q[0] == 'i' || q[0] == 'I') ? (neg ? -INFINITY : INFINITY) : NAN;
        *p = q + 3;
        return 0;
    }
    const char *d = q;
    while (*d >= '0' && *d <= '9')
        d++;
    if (*d == '.')
        d++;
    while (*d >= '0' && *d <= '9')
        d++;
    if (d == q || (d == q + 1 && *q == '.'))
        return -1;
    if (*d == 'e' || *d == 'E') {
        const char *e = d + 1;
        if (*e == '+' || *e == '-')
            e++;
        if (*e >= '0' && *e <= '9') {
            while (*e >= '0' && *e <= '9')
                e++;
            d = e;
        }
    }
    char buf[64];
    size_t len = (size_t)(d - q);
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, q, len);
    buf[len] = '\0';
    double v = strtod(buf, NULL);
    *out = neg ? -v : v;
    *p = d;
    return 0;
}

/* "xN" at *p: N, a whole number. 0, or -1 with *p at the problem. */
static int repetition(const char **p, unsigned long long *n)
{
    const char *q = *p + 1; /* past the x */
    if (*q < '0' || *q > '9') {
        *p = q;
        return -1;
    }
    unsigned long long v = 0;
    for (; *q >= '0' && *q <= '9'; q++) {
        if (v > (RULES_SERIES_MAX_VALUES + 9ULL) / 10) {
            *p = q;
            return -2; /* too many: reported as such */
        }
        v = v * 10 + (unsigned long long)(*q - '0');
    }
    *n = v;
    *p = q;
    return 0;
}

static int fail(const char *text, const char *at, size_t *err_col, char *err, size_t errcap,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(const char *text, const char *at, size_t *err_col, char *err, size_t errcap,
                const char *fmt, ...)
{
    va_list ap;
    *err_col = (size_t)(at - text) + 1;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return -1;
}

static int push(struct rules__sv **out, size_t *n, size_t *cap, enum rules__sv_kind kind, double v)
{
    if (*n >= RULES_SERIES_MAX_VALUES)
        return -1;
    util_grow((void **)out, cap, *n + 1, sizeof(**out));
    (*out)[(*n)++] = (struct rules__sv){kind, v};
    return 0;
}

int rules__series_values_parse(const char *text, struct rules__sv **out, size_t *nout,
                               size_t *err_col, char *err, size_t errcap)
{
    size_t cap = *nout, n = *nout;
    const char *p = text;
    int rc = 0;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        const char *item = p;
        unsigned long long reps = 0;
        if (*p == '_' || strncmp(p, "stale", 5) == 0) {
            int stale = *p == 's';
            p += stale ? 5 : 1;
            if (!stale && *p == 'x') {
                int r = repetition(&p, &reps);
                if (r < 0) {
                    rc = fail(text, r == -2 ? item : p, err_col, err, errcap, "%s",
                              r == -2 ? TOO_MANY : "invalid repetition after \"_x\"");
                    break;
                }
            } else {
                reps = 1;
            }
            if (*p && !is_blank(*p)) {
                rc = fail(text, p, err_col, err, errcap, "unexpected \"%.1s\" in series values", p);
                break;
            }
            for (unsigned long long i = 0; i < reps && rc == 0; i++)
                if (push(out, &n, &cap, stale ? RULES_SV_STALE : RULES_SV_OMITTED, 0) < 0)
                    rc = fail(text, item, err_col, err, errcap, TOO_MANY);
            if (rc < 0)
                break;
            continue;
        }
        double a, b = 0;
        if (number(&p, 1, &a) < 0) {
            const char *end = p;
            while (*end && !is_blank(*end))
                end++;
            char word[48];
            snprintf(word, sizeof(word), "%.*s", (int)(end - p < 40 ? end - p : 40), p);
            rc = fail(text, p, err_col, err, errcap,
                      "unexpected \"%s\" in series values, expected a number, \"_\" or \"stale\"",
                      word);
            break;
        }
        int repeat = 0;
        if (*p == '+' || *p == '-') {
            int neg = *p == '-';
            p++;
            if (number(&p, 0, &b) < 0) {
                rc = fail(text, p, err_col, err, errcap,
                          "expected the increment after \"%s\" in series values", neg ? "-" : "+");
                break;
            }
            if (neg)
                b = -b;
            if (*p != 'x') {
                rc = fail(text, p, err_col, err, errcap,
                          "expected \"x\" and a repetition after the increment");
                break;
            }
        }
        if (*p == 'x') {
            int r = repetition(&p, &reps);
            if (r < 0) {
                rc = fail(text, r == -2 ? item : p, err_col, err, errcap, "%s",
                          r == -2 ? TOO_MANY : "invalid repetition: want a whole number after x");
                break;
            }
            repeat = 1;
        }
        if (*p && !is_blank(*p)) {
            rc = fail(text, p, err_col, err, errcap, "unexpected \"%.1s\" in series values", p);
            break;
        }
        /* a, a+b, ... by repeated addition, as Prometheus does */
        for (unsigned long long i = 0; i <= (repeat ? reps : 0); i++) {
            if (push(out, &n, &cap, RULES_SV_VALUE, a) < 0) {
                rc = fail(text, item, err_col, err, errcap, TOO_MANY);
                break;
            }
            a += b;
        }
        if (rc < 0)
            break;
    }
    *nout = n;
    return rc;
}
