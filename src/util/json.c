/* json.c: JSON output in Prometheus's HTTP API dialect (see json.h). */
#include "util/json.h"

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

/*
 * The shortest decimal digits that read back as v (v finite, > 0), and the
 * decimal exponent of the first digit: v = 0.d1d2... * 10^(exp + 1).
 */
static int shortest(double v, char *digits, int *exp)
{
    char buf[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* buf: d[.ddd]e[+-]XX */
    int n = 0;
    char *p = buf;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = 0;
    *exp = atoi(p + 1);
    return n;
}

size_t json_format_value(double v, char *out)
{
    if (isnan(v))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, 32, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return (size_t)snprintf(out, 32, signbit(v) ? "-0" : "0");
    char d[24];
    int e, n = shortest(fabs(v), d, &e);
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

void json_time(struct sbuf *b, int64_t ms)
{
    /* As Prometheus: the sign, whole seconds, then the milliseconds if any. */
    uint64_t a = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(a % 1000);
    sbuf_addf(b, "%s%llu", ms < 0 ? "-" : "", (unsigned long long)(a / 1000));
    if (!frac)
        return;
    char f[4];
    snprintf(f, sizeof(f), "%03u", frac);
    int n = 3;
    while (f[n - 1] == '0')
        n--;
    f[n] = 0;
    sbuf_addf(b, ".%s", f);
}
