/*
 * route.c: turning request targets into route labels of bounded
 * cardinality. "/users/123/orders?page=2" and "/users/456/orders" are one
 * route, "/users/:num/orders": ids in paths (numbers, UUIDs, hex ids) and
 * query strings are what makes raw URLs unbounded. Configured route
 * patterns (such as "/users/:id") are matched first by the
 * aggregates; this file has both the normaliser and the matcher, plus the
 * cleaning of client addresses into label values.
 */
#include "ingest/ingest_internal.h"
#include "util/banned.h"

#include <stdio.h>
#include <string.h>

/*
 * The path part of a target: no query or fragment, no scheme and host.
 * Returns 1 if the target had a scheme and host (then an empty path is "/").
 */
static int path_part(const char *t, size_t n, const char **ps, const char **pe)
{
    const char *e = t + n, *q = t;
    while (q < e && *q != '?' && *q != '#')
        q++;
    e = q;
    /* Absolute form (proxies log "GET http://host/x"): keep the path. */
    if (e - t > 7 && (t[0] | 0x20) == 'h' && (t[1] | 0x20) == 't' && (t[2] | 0x20) == 't' &&
        (t[3] | 0x20) == 'p') {
        const char *s = t + 4;
        if (s < e && (*s | 0x20) == 's')
            s++;
        if (e - s >= 3 && s[0] == ':' && s[1] == '/' && s[2] == '/') {
            const char *slash = memchr(s + 3, '/', (size_t)(e - s - 3));
            *ps = slash ? slash : e;
            *pe = e;
            return 1;
        }
    }
    *ps = t;
    *pe = e;
    return 0;
}

static inline int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* ":num", ":uuid", ":hex", or NULL for a segment kept as text. */
static const char *classify(const char *s, size_t n)
{
    size_t i, digits = 0, hex = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9')
            digits++;
        else if (!is_hex(c))
            break;
        hex++;
    }
    if (digits == n)
        return ":num";
    if (n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-') {
        for (i = 0; i < 36; i++)
            if (i != 8 && i != 13 && i != 18 && i != 23 && !is_hex((unsigned char)s[i]))
                break;
        if (i == 36)
            return ":uuid";
    }
    if (hex == n && n >= 8 && digits)
        return ":hex";
    return NULL;
}

size_t ingest__route_normalise(const char *target, size_t n, char *out)
{
    const char *s, *e;
    if (path_part(target, n, &s, &e) && s == e) {
        /* "http://host" with no path: the root */
        out[0] = '/';
        out[1] = '\0';
        return 1;
    }
    if (s == e || *s != '/') {
        memcpy(out, INGEST__OTHER, sizeof(INGEST__OTHER));
        return sizeof(INGEST__OTHER) - 1;
    }
    /* Two bytes are kept back for the slash and star that end a route cut at the cap. */
    const size_t cap = INGEST_MAX_ROUTE_LEN - 2;
    size_t o = 0;
    int trailing = 0;
    while (s < e) {
        while (s < e && *s == '/') /* "//" adds nothing a route needs */
            s++;
        if (s == e) {
            trailing = 1;
            break;
        }
        const char *seg = s;
        while (s < e && *s != '/')
            s++;
        size_t len = (size_t)(s - seg);
        const char *cls = classify(seg, len);
        size_t want = cls ? strlen(cls) : len;
        if (o + 1 + want > cap) {
            out[o++] = '/';
            out[o++] = '*';
            out[o] = '\0';
            return o;
        }
        out[o++] = '/';
        if (cls) {
            memcpy(out + o, cls, want);
            o += want;
        } else {
            for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)seg[i];
                out[o++] = c > 0x20 && c < 0x7f ? (char)c : '_';
            }
        }
    }
    if (trailing || o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return o;
}

/* The next non-empty segment at *s (< e), or NULL; advances *s past it. */
static const char *next_seg(const char **s, const char *e, size_t *len)
{
    const char *p = *s;
    while (p < e && *p == '/')
        p++;
    if (p == e) {
        *s = p;
        return NULL;
    }
    const char *seg = p;
    while (p < e && *p != '/')
        p++;
    *len = (size_t)(p - seg);
    *s = p;
    return seg;
}

int ingest__route_match(const char *pat, const char *target, size_t n)
{
    const char *s, *e;
    path_part(target, n, &s, &e);
    if (s == e || *s != '/')
        return 0;
    const char *ps = pat, *pe = pat + strlen(pat);
    for (;;) {
        size_t plen = 0, tlen = 0;
        const char *pseg = next_seg(&ps, pe, &plen);
        if (pseg && plen == 2 && pseg[0] == '*' && pseg[1] == '*' && ps == pe)
            return 1;
        const char *tseg = next_seg(&s, e, &tlen);
        if (!pseg || !tseg)
            return !pseg && !tseg;
        if ((plen == 1 && *pseg == '*') || *pseg == ':')
            continue;
        if (plen != tlen || memcmp(pseg, tseg, plen) != 0)
            return 0;
    }
}

size_t ingest__client_clean(const char *s, size_t n, char *out, size_t cap)
{
    const char *e = memchr(s, ',', n);
    if (!e)
        e = s + n;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t o = 0;
    for (; s < e && o + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = c > 0x20 && c < 0x7f ? (char)c : '_';
    }
    out[o] = '\0';
    return o;
}

int ingest_check_route(const char *route, char *err, size_t errlen)
{
    size_t n = strlen(route);
    if (n == 0 || route[0] != '/') {
        snprintf(err, errlen, "a route pattern starts with '/'");
        return -1;
    }
    if (n > INGEST_MAX_ROUTE_LEN) {
        snprintf(err, errlen, "a route pattern has at most %d bytes", INGEST_MAX_ROUTE_LEN);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)route[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
            snprintf(err, errlen,
                     "a route pattern is a path of printable ASCII without spaces, '?' or '#'");
            return -1;
        }
    }
    const char *dd = strstr(route, "**");
    if (dd && (dd[-1] != '/' || dd[2] != '\0')) {
        snprintf(err, errlen, "'**' may only be the last segment of a route pattern");
        return -1;
    }
    return 0;
}
