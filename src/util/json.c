/* json.c: JSON output in Prometheus's HTTP API dialect (see json.h). */
#include "util/json.h"
#include "util/dtoa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_strn(struct sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            sbuf_adds(b, "\\\"");
            break;
        case '\\':
            sbuf_adds(b, "\\\\");
            break;
        case '\n':
            sbuf_adds(b, "\\n");
            break;
        case '\r':
            sbuf_adds(b, "\\r");
            break;
        case '\t':
            sbuf_adds(b, "\\t");
            break;
        default:
            if (c < 0x20) {
                char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                sbuf_adds(b, u);
            } else {
                sbuf_addc(b, (char)c);
            }
        }
    }
    sbuf_addc(b, '"');
}

void json_str(struct sbuf *b, const char *s)
{
    json_strn(b, s, strlen(s));
}

/* Decimal digits of u into the end of buf (which holds 20); returns where they start. */
static char *utoa(uint64_t u, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return p;
}

size_t json_format_value(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return (size_t)snprintf(out, 32, signbit(v) ? "-0" : "0");
    if (v == (double)(int64_t)v && fabs(v) < 1e15) {
        /* Integers (counters, counts): their digits as they are. */
        char buf[24], *end = buf + sizeof(buf),
                      *p = utoa(v < 0 ? (uint64_t) - (int64_t)v : (uint64_t)v, end);
        if (v < 0)
            *--p = '-';
        memcpy(out, p, (size_t)(end - p));
        out[end - p] = 0;
        return (size_t)(end - p);
    }
    char d[24];
    int e, n = util_dtoa_digits(fabs(v), d, &e);
    char *o = out;
    if (v < 0)
        *o++ = '-';
    double a = fabs(v);
    if (a < 1e-6 || a >= 1e21) {
        /* Go's 'e': d[.ddd]e±XX, at least two exponent digits. */
        *o++ = d[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)n - 1);
            o += n - 1;
        }
        o += snprintf(o, 8, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++)
            *o++ = '0';
        memcpy(o, d, (size_t)n);
        o += n;
    } else {
        /* ddd[000][.ddd] */
        for (int i = 0; i <= e; i++)
            *o++ = i < n ? d[i] : '0';
        if (n > e + 1) {
            *o++ = '.';
            memcpy(o, d + e + 1, (size_t)(n - e - 1));
            o += n - e - 1;
        }
    }
    *o = 0;
    return (size_t)(o - out);
}

void json_value(struct sbuf *b, double v)
{
    char s[48];
    size_t n = json_format_value(v, s);
    sbuf_addc(b, '"');
    sbuf_add(b, s, n);
    sbuf_addc(b, '"');
}

/* ms as Prometheus prints a time, ending at end; returns where it starts. */
static char *format_time(int64_t ms, char *end)
{
    /* The sign, whole seconds, then the milliseconds if any (no printf: hot). */
    uint64_t a = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(a % 1000);
    char *p = end;
    if (frac) {
        char f[3] = {(char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                     (char)('0' + frac % 10)};
        int n = f[2] != '0' ? 3 : f[1] != '0' ? 2 : 1;
        p -= n;
        memcpy(p, f, (size_t)n);
        *--p = '.';
    }
    p = utoa(a / 1000, p);
    if (ms < 0)
        *--p = '-';
    return p;
}

void json_time(struct sbuf *b, int64_t ms)
{
    char buf[32], *end = buf + sizeof(buf);
    char *p = format_time(ms, end);
    sbuf_add(b, p, (size_t)(end - p));
}

void json_point(struct sbuf *b, int64_t ms, double v)
{
    /* One append per point: range answers hold millions of them. */
    char buf[96], *end = buf + 32;
    char *p = format_time(ms, end);
    *--p = '[';
    char *q = end;
    *q++ = ',';
    *q++ = '"';
    q += json_format_value(v, q);
    *q++ = '"';
    *q++ = ']';
    sbuf_add(b, p, (size_t)(q - p));
}
