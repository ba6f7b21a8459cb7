/*
 * parse.c: one StatsD / DogStatsD line into a struct statsd_line (see
 * statsd.h). Pure and allocation-free, so the fuzzer can run it on anything.
 * Grammar: NAME ':' VALUE (':' VALUE)* '|' TYPE ('|' SECTION)*, where a
 * section is "@RATE", "#k:v,k2:v2" or anything else DogStatsD added later
 * (container ids "c:...", timestamps "T...": ignored, not refused).
 */
#include "statsd/statsd.h"
#include "util/banned.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *statsd_bad_name(enum statsd_bad r)
{
    static const char *const names[STATSD_BAD_NREASONS] = {"format", "name", "value",        "type",
                                                           "rate",   "tag",  "type_conflict"};
    return (unsigned)r < STATSD_BAD_NREASONS ? names[r] : "unknown";
}

static int alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Map the bytes of a StatsD name or tag key onto [a-zA-Z0-9_] ('.', '-',
 * '/' and any other byte become '_'), with a '_' in front of a leading
 * digit. Returns the length, or -1 if empty or longer than cap.
 */
static int sanitise(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (!n)
        return -1;
    if (s[0] >= '0' && s[0] <= '9')
        out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (o >= cap)
            return -1;
        out[o++] = alnum((unsigned char)s[i]) ? s[i] : '_';
    }
    out[o] = 0;
    return (int)o;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
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

/* A decimal number (no hex, inf or nan) in [p, p+n); 0 or -1. */
static int number(const char *p, size_t n, double *v)
{
    char tmp[64];
    if (!n || n >= sizeof(tmp))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            return -1;
    }
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    *v = strtod(tmp, &end);
    return end != tmp + n || !isfinite(*v) ? -1 : 0;
}

/*
 * Seconds from the text of a valid millisecond value (as number() took it),
 * rounded once: the decimal point moves in the text ("2.1" -> "2.1e-3").
 * 2.1 / 1000.0 is one ulp above 0.0021, so a value on a bucket bound would
 * miss its bucket; about one fractional value in eight does.
 */
static double ms_to_seconds(const char *p, size_t n)
{
    char tmp[96];
    long e = 0;
    size_t m = n;
    for (size_t i = 0; i < n; i++)
        if (p[i] == 'e' || p[i] == 'E') {
            char ex[64];
            memcpy(ex, p + i + 1, n - i - 1);
            ex[n - i - 1] = 0;
            e = strtol(ex, NULL, 10);
            m = i;
            break;
        }
    /* Beyond these the result is 0 or overflows however far it is shifted. */
    if (e > 100000)
        e = 100000;
    if (e < -100000)
        e = -100000;
    snprintf(tmp, sizeof(tmp), "%.*se%ld", (int)m, p, e - 3);
    return strtod(tmp, NULL);
}

static int type_of(const char *p, size_t n, enum statsd_type *t)
{
    if (n == 1 && p[0] == 'c')
        *t = STATSD_COUNTER;
    else if (n == 1 && p[0] == 'g')
        *t = STATSD_GAUGE;
    else if (n == 2 && p[0] == 'm' && p[1] == 's')
        *t = STATSD_TIMER;
    else if (n == 1 && (p[0] == 'h' || p[0] == 'd'))
        *t = STATSD_HISTOGRAM;
    else if (n == 1 && p[0] == 's')
        *t = STATSD_SET;
    else
        return -1;
    return 0;
}

/* "#k:v,k2:v2": tags with a value become labels; bare tags are ignored. */
static int tags(const char *p, size_t n, struct statsd_line *out)
{
    size_t i = 0;
    while (i < n) {
        const char *t = p + i;
        const char *comma = memchr(t, ',', n - i);
        size_t tl = comma ? (size_t)(comma - t) : n - i;
        i += tl + (comma ? 1 : 0);
        const char *colon = memchr(t, ':', tl);
        if (!tl || !colon)
            continue; /* "a,,b" or a bare tag: nothing to label */
        size_t kl = (size_t)(colon - t), vl = tl - kl - 1;
        if (out->ntags == STATSD_MAX_TAGS || vl > STATSD_MAX_TAG_VALUE ||
            !utf8_valid((const unsigned char *)colon + 1, vl))
            return -1;
        struct statsd_tag *g = &out->tags[out->ntags];
        if (sanitise(t, kl, g->key, STATSD_MAX_TAG_KEY) < 0)
            return -1;
        /* Reserved names, and names the histogram and the scrape use themselves. */
        if ((g->key[0] == '_' && g->key[1] == '_') || strcmp(g->key, "le") == 0 ||
            strcmp(g->key, "job") == 0 || strcmp(g->key, "instance") == 0)
            return -1;
        memcpy(g->value, colon + 1, vl);
        g->value[vl] = 0;
        /* Insertion sort by key; a repeated key is refused. */
        size_t k = out->ntags;
        for (; k > 0; k--) {
            int c = strcmp(out->tags[k - 1].key, g->key);
            if (c == 0)
                return -1;
            if (c < 0)
                break;
        }
        if (k != out->ntags) {
            struct statsd_tag tmp = *g;
            memmove(&out->tags[k + 1], &out->tags[k], (out->ntags - k) * sizeof(*g));
            out->tags[k] = tmp;
        }
        out->ntags++;
    }
    return 0;
}

int statsd_parse_line(const char *line, size_t len, struct statsd_line *out, enum statsd_bad *why)
{
    out->nvalues = 0;
    out->ntags = 0;
    out->rate = 1;
    out->member = NULL;
    out->member_len = 0;
    if (memchr(line, 0, len)) {
        *why = STATSD_BAD_FORMAT;
        return -1;
    }
    const char *colon = memchr(line, ':', len);
    const char *bar = colon ? memchr(colon, '|', len - (size_t)(colon - line)) : NULL;
    if (!colon || !bar || colon == line || bar == colon + 1) {
        *why = STATSD_BAD_FORMAT;
        return -1;
    }
    if (sanitise(line, (size_t)(colon - line), out->name, STATSD_MAX_NAME) < 0) {
        *why = STATSD_BAD_NAME;
        return -1;
    }
    /* The type, up to the next '|'. */
    const char *end = line + len, *tp = bar + 1;
    const char *tend = memchr(tp, '|', (size_t)(end - tp));
    if (!tend)
        tend = end;
    if (type_of(tp, (size_t)(tend - tp), &out->type) < 0) {
        *why = STATSD_BAD_TYPE;
        return -1;
    }
    /* Values: one, or several separated by ':' (DogStatsD 1.1); a set takes its text whole. */
    const char *v = colon + 1;
    if (out->type == STATSD_SET) {
        out->member = v;
        out->member_len = (size_t)(bar - v);
        if (out->member_len > STATSD_MAX_SET_MEMBER) {
            *why = STATSD_BAD_VALUE;
            return -1;
        }
    } else {
        while (v < bar) {
            const char *c = memchr(v, ':', (size_t)(bar - v));
            const char *ve = c ? c : bar;
            if (out->nvalues == STATSD_MAX_VALUES ||
                number(v, (size_t)(ve - v), &out->values[out->nvalues]) < 0) {
                *why = STATSD_BAD_VALUE;
                return -1;
            }
            double x = out->values[out->nvalues];
            out->delta[out->nvalues] = *v == '+' || *v == '-';
            if ((out->type == STATSD_COUNTER || out->type == STATSD_TIMER) && x < 0) {
                *why = STATSD_BAD_VALUE;
                return -1;
            }
            if (out->type == STATSD_TIMER)
                out->values[out->nvalues] = ms_to_seconds(v, (size_t)(ve - v));
            out->nvalues++;
            v = c ? c + 1 : bar;
            if (c && v == bar) { /* "a:1:|c" */
                *why = STATSD_BAD_VALUE;
                return -1;
            }
        }
    }
    /* Sections. */
    for (const char *s = tend; s < end;) {
        s++; /* the '|' */
        const char *se = memchr(s, '|', (size_t)(end - s));
        if (!se)
            se = end;
        size_t sl = (size_t)(se - s);
        if (sl && s[0] == '@') {
            if (number(s + 1, sl - 1, &out->rate) < 0 || !(out->rate > 0 && out->rate <= 1)) {
                *why = STATSD_BAD_RATE;
                return -1;
            }
        } else if (sl && s[0] == '#') {
            if (tags(s + 1, sl - 1, out) < 0) {
                *why = STATSD_BAD_TAG;
                return -1;
            }
        }
        s = se;
    }
    return 0;
}
