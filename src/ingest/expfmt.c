/* expfmt.c: Prometheus text and OpenMetrics parsing (see expfmt.h). */
#include "ingest/expfmt.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void expfmt_init(struct expfmt *p, const char *buf, size_t len, enum expfmt_flavour f)
{
    memset(p, 0, sizeof(*p));
    p->buf = buf;
    p->len = len;
    p->flavour = f;
}

void expfmt_release(struct expfmt *p)
{
    free(p->scratch);
    free(p->help);
    memset(p, 0, sizeof(*p));
}

static int name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

struct line {
    const char *s;
    size_t n, i;
    char *out; /* scratch write position */
};

int expfmt_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A metric or label name at l->i into scratch; NULL if none or longer than EXPFMT_MAX_NAME. */
static const char *take_name(struct line *l, int metric)
{
    size_t st = l->i;
    if (l->i >= l->n ||
        !(metric ? name_start(l->s[l->i]) : name_start(l->s[l->i]) && l->s[l->i] != ':'))
        return NULL;
    while (l->i < l->n && name_char(l->s[l->i]) && (metric || l->s[l->i] != ':'))
        l->i++;
    if (l->i - st > EXPFMT_MAX_NAME) {
        l->i = st;
        return NULL;
    }
    char *o = l->out;
    memcpy(o, l->s + st, l->i - st);
    o[l->i - st] = 0;
    l->out += l->i - st + 1;
    return o;
}

/* A quoted label value with \\, \" and \n escapes; NULL (and *why) if malformed. */
static const char *take_value(struct line *l, const char **why)
{
    if (l->i >= l->n || l->s[l->i] != '"') {
        *why = "expected '\"' to start a label value";
        return NULL;
    }
    l->i++;
    char *o = l->out, *w = o;
    while (l->i < l->n && l->s[l->i] != '"') {
        char c = l->s[l->i++];
        if (c == '\\') {
            if (l->i >= l->n)
                break;
            char e = l->s[l->i++];
            if (e == 'n')
                c = '\n';
            else if (e == '\\' || e == '"')
                c = e;
            else {
                *why = "unknown escape in a label value (only \\\\, \\\" and \\n)";
                return NULL;
            }
        } else if (c == 0) {
            *why = "NUL byte in a label value";
            return NULL;
        }
        *w++ = c;
    }
    if (l->i >= l->n) {
        *why = "label value not closed";
        return NULL;
    }
    l->i++;
    *w = 0;
    if (!expfmt_utf8_valid(o, (size_t)(w - o))) {
        *why = "label value is not valid UTF-8";
        return NULL;
    }
    l->out = w + 1;
    return o;
}

static void skip_spaces(struct line *l)
{
    while (l->i < l->n && (l->s[l->i] == ' ' || l->s[l->i] == '\t'))
        l->i++;
}

/* The next space-delimited token (for numbers); NUL-terminated in scratch. */
static const char *take_token(struct line *l)
{
    size_t st = l->i;
    while (l->i < l->n && l->s[l->i] != ' ' && l->s[l->i] != '\t')
        l->i++;
    if (l->i == st)
        return NULL;
    char *o = l->out;
    memcpy(o, l->s + st, l->i - st);
    o[l->i - st] = 0;
    l->out += l->i - st + 1;
    return o;
}

static int parse_float(const char *t, double *v)
{
    if (strcasecmp(t, "nan") == 0) {
        *v = NAN;
        return 0;
    }
    if (strcasecmp(t, "+inf") == 0 || strcasecmp(t, "inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcasecmp(t, "-inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    *v = strtod(t, &end);
    return end == t || *end || (t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) ? -1 : 0;
}

/* # HELP / # TYPE / # EOF; other comments are ignored. */
static int comment(struct expfmt *p, struct line *l, char *err, size_t errlen)
{
    l->i = 1;
    skip_spaces(l);
    const char *kw = take_token(l);
    if (!kw)
        return 0;
    if (strcmp(kw, "EOF") == 0) {
        p->eof = 1;
        return 0;
    }
    if (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0)
        return 0;
    skip_spaces(l);
    const char *name = take_name(l, 1);
    if (!name) {
        snprintf(err, errlen, "%u:%zu: expected a metric name after # %s", p->line, l->i + 1, kw);
        return -1;
    }
    skip_spaces(l);
    if (strcmp(kw, "TYPE") == 0) {
        const char *t = take_token(l);
        static const char *const types[] = {"counter", "gauge",    "histogram",
                                            "summary", "untyped",  "unknown",
                                            "info",    "stateset", "gaugehistogram"};
        size_t k = 0;
        while (t && k < ARRAY_SIZE(types) && strcmp(types[k], t) != 0)
            k++;
        if (!t || k == ARRAY_SIZE(types)) {
            snprintf(err, errlen, "%u:%zu: unknown metric type '%s'", p->line, l->i + 1,
                     t ? t : "");
            return -1;
        }
        if (strcmp(p->fam, name) != 0) {
            free(p->help);
            p->help = NULL;
        }
        snprintf(p->fam, sizeof(p->fam), "%s", name);
        snprintf(p->type, sizeof(p->type), "%s", t);
    } else {
        if (strcmp(p->fam, name) != 0)
            p->type[0] = 0;
        snprintf(p->fam, sizeof(p->fam), "%s", name);
        if (!expfmt_utf8_valid(l->s + l->i, l->n - l->i) || memchr(l->s + l->i, 0, l->n - l->i)) {
            snprintf(err, errlen, "%u:%zu: help text is not valid UTF-8", p->line, l->i + 1);
            return -1;
        }
        free(p->help);
        p->help = xstrndup(l->s + l->i, l->n - l->i);
    }
    return 0;
}

/* Whether sample name belongs to the declared family (name or name_suffix). */
static int in_family(const struct expfmt *p, const char *name)
{
    size_t n = strlen(p->fam);
    if (!n || strncmp(name, p->fam, n) != 0)
        return 0;
    static const char *const sfx[] = {"",         "_total", "_bucket", "_sum", "_count",
                                      "_created", "_info",  "_gcount", "_gsum"};
    for (size_t k = 0; k < ARRAY_SIZE(sfx); k++)
        if (strcmp(name + n, sfx[k]) == 0)
            return 1;
    return 0;
}

static int sample(struct expfmt *p, struct line *l, struct expfmt_sample *s, char *err,
                  size_t errlen)
{
    const char *why = NULL;
    memset(s, 0, sizeof(*s));
    s->name = take_name(l, 1);
    if (!s->name) {
        why = "expected a metric name";
        goto bad;
    }
    if (l->i < l->n && l->s[l->i] == '{') {
        l->i++;
        for (;;) {
            skip_spaces(l);
            if (l->i < l->n && l->s[l->i] == '}') {
                l->i++;
                break;
            }
            if (s->nlabels == EXPFMT_MAX_LABELS) {
                why = "too many labels";
                goto bad;
            }
            const char *n = take_name(l, 0);
            if (!n) {
                why = "expected a label name or '}'";
                goto bad;
            }
            skip_spaces(l);
            if (l->i >= l->n || l->s[l->i] != '=') {
                why = "expected '=' after a label name";
                goto bad;
            }
            l->i++;
            skip_spaces(l);
            const char *v = take_value(l, &why);
            if (!v)
                goto bad;
            for (size_t k = 0; k < s->nlabels; k++)
                if (strcmp(s->labels[k].name, n) == 0) {
                    why = "label name repeated";
                    goto bad;
                }
            s->labels[s->nlabels++] = (struct metric_label){n, v};
            skip_spaces(l);
            if (l->i < l->n && l->s[l->i] == ',') {
                l->i++;
                continue;
            }
            if (l->i < l->n && l->s[l->i] == '}') {
                l->i++;
                break;
            }
            why = "expected ',' or '}' after a label";
            goto bad;
        }
    }
    if (l->i >= l->n || (l->s[l->i] != ' ' && l->s[l->i] != '\t')) {
        why = "expected a space before the value";
        goto bad;
    }
    skip_spaces(l);
    const char *tok = take_token(l);
    if (!tok || parse_float(tok, &s->value) < 0) {
        why = "expected a number (or NaN, +Inf, -Inf) as the value";
        goto bad;
    }
    skip_spaces(l);
    if (l->i < l->n && l->s[l->i] != '#') {
        tok = take_token(l);
        double t;
        if (p->flavour == EXPFMT_OPENMETRICS) {
            if (parse_float(tok, &t) < 0 || !isfinite(t) || fabs(t) > 9.2e15) {
                why = "expected a timestamp in seconds";
                goto bad;
            }
            s->ts_ms = (int64_t)llround(t * 1000);
        } else {
            char *end;
            errno = 0;
            long long ms = strtoll(tok, &end, 10);
            if (end == tok || *end || errno) {
                why = "expected a timestamp in milliseconds";
                goto bad;
            }
            s->ts_ms = ms;
        }
        s->has_ts = 1;
        skip_spaces(l);
    }
    /* An OpenMetrics exemplar (" # {...} v [t]") is allowed and ignored. */
    if (l->i < l->n && l->s[l->i] != '#') {
        why = "unexpected text after the sample";
        goto bad;
    }
    if (in_family(p, s->name)) {
        s->type = p->type[0] ? p->type : NULL;
        s->help = p->help ? p->help : "";
    } else {
        s->help = "";
    }
    return 1;
bad:
    snprintf(err, errlen, "%u:%zu: %s", p->line, l->i + 1, why);
    return -1;
}

int expfmt_next(struct expfmt *p, struct expfmt_sample *s, char *err, size_t errlen)
{
    while (p->pos < p->len) {
        const char *st = p->buf + p->pos;
        const char *nl = memchr(st, '\n', p->len - p->pos);
        size_t n = nl ? (size_t)(nl - st) : p->len - p->pos;
        p->pos += n + (nl ? 1 : 0);
        p->line++;
        if (n && st[n - 1] == '\r')
            n--;
        if (p->eof) {
            snprintf(err, errlen, "%u:1: text after # EOF", p->line);
            p->pos = p->len;
            return -1;
        }
        if (n > EXPFMT_MAX_LINE) {
            snprintf(err, errlen, "%u:1: line longer than %d bytes", p->line, EXPFMT_MAX_LINE);
            return -1;
        }
        if (!n)
            continue;
        if (2 * n + 64 > p->scratch_cap) {
            p->scratch_cap = 2 * n + 64;
            p->scratch = xrealloc(p->scratch, p->scratch_cap);
        }
        struct line l = {st, n, 0, p->scratch};
        if (st[0] == '#') {
            if (comment(p, &l, err, errlen) < 0)
                return -1;
            continue;
        }
        return sample(p, &l, s, err, errlen);
    }
    return 0;
}

enum metric_type expfmt_metric_type(const struct expfmt_sample *e)
{
    if (!e->type)
        return METRIC_UNTYPED;
    if (strcmp(e->type, "gauge") == 0)
        return METRIC_GAUGE;
    if (strcmp(e->type, "counter") == 0)
        return METRIC_COUNTER;
    if (strcmp(e->type, "histogram") == 0 || strcmp(e->type, "summary") == 0) {
        size_t n = strlen(e->name);
        if ((n > 7 && strcmp(e->name + n - 7, "_bucket") == 0) ||
            (n > 6 && strcmp(e->name + n - 6, "_count") == 0) ||
            (n > 4 && strcmp(e->name + n - 4, "_sum") == 0))
            return METRIC_COUNTER;
        return METRIC_GAUGE; /* a summary's quantiles */
    }
    return METRIC_UNTYPED;
}
