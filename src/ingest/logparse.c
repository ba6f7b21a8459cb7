/*
 * logparse.c: access-log line parsers. Common and Combined Log Format are
 * parsed by hand (they are the hot path: a million lines a second is the
 * target), JSON lines by a small validating scanner that picks out the
 * configured fields (dotted names reach into nested objects), and anything
 * else by a PCRE2 pattern with named groups. Every parser takes a line of
 * any bytes with an explicit length and either fills a record of slices or
 * refuses the line; none reads outside it, and numbers are range-checked
 * (a status is 100..599, sizes fit 64 bits, times stay below 1e15).
 */
#include "ingest/ingest_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const field_names[INGEST_NFIELDS] = {
    "client", "method", "path", "request", "status", "bytes", "duration", "time",
};
/* JSON field names when not configured: nginx's variable names where they exist. */
static const char *const field_defaults[INGEST_NFIELDS] = {
    "remote_addr", "method", "path", "request", "status", "body_bytes_sent", "request_time", "time",
};

const char *ingest_field_name(enum ingest_field f)
{
    return field_names[f];
}

const char *ingest_field_default(enum ingest_field f)
{
    return field_defaults[f];
}

int ingest_field_parse(const char *s, enum ingest_field *out)
{
    for (int i = 0; i < INGEST_NFIELDS; i++)
        if (strcmp(s, field_names[i]) == 0) {
            *out = (enum ingest_field)i;
            return 0;
        }
    return -1;
}

/* ---- numbers and times ---- */

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int ingest__parse_number(const char *s, size_t n, double *out)
{
    const char *p = s, *e = s + n;
    uint64_t mant = 0;
    int digits = 0, sig = 0, exp10 = 0;
    /* Digits past the 18th cannot change a double much; they only scale. */
    for (; p < e && *p >= '0' && *p <= '9'; p++, digits++) {
        if (sig < 18) {
            if (mant || *p != '0') {
                mant = mant * 10 + (uint64_t)(*p - '0');
                sig++;
            }
        } else {
            exp10++;
        }
    }
    if (p < e && *p == '.') {
        p++;
        for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
            if (sig < 18) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant)
                    sig++;
                exp10--;
            }
    }
    if (!digits)
        return -1;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int neg = 0, ed = 0, ev = 0;
        if (p < e && (*p == '+' || *p == '-'))
            neg = *p++ == '-';
        for (; p < e && *p >= '0' && *p <= '9'; p++, ed++)
            if (ev < 10000)
                ev = ev * 10 + (*p - '0');
        if (!ed)
            return -1;
        exp10 += neg ? -ev : ev;
    }
    if (p != e)
        return -1;
    double v = (double)mant;
    if (mant == 0)
        v = 0;
    else if (exp10 > 15)
        return -1; /* at least 1e15 */
    else if (exp10 >= 0)
        v *= pow10_tab[exp10];
    else if (exp10 >= -22)
        v /= pow10_tab[-exp10];
    else
        v = v * pow(10, exp10);
    if (!(v < 1e15))
        return -1;
    *out = v;
    return 0;
}

/* Unsigned decimal of up to 19 digits ("-" is 0). 0 or -1. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 1 && *s == '-') {
        *out = 0;
        return 0;
    }
    if (n == 0 || n > 19)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_status(const char *s, size_t n)
{
    if (n != 3)
        return -1;
    unsigned a = (unsigned char)s[0] - '0', b = (unsigned char)s[1] - '0',
             c = (unsigned char)s[2] - '0';
    if (a > 9 || b > 9 || c > 9)
        return -1;
    int v = (int)(a * 100 + b * 10 + c);
    return v >= 100 && v <= 599 ? v : -1;
}

/* A duration token in unit u into seconds; "-" and "" are absent (-1 in *out). */
static int parse_duration(const char *s, size_t n, enum ingest_unit u, double *out)
{
    if (n == 0 || (n == 1 && *s == '-')) {
        *out = -1;
        return 0;
    }
    double v;
    if (ingest__parse_number(s, n, &v) < 0)
        return -1;
    switch (u) {
    case INGEST_UNIT_MS:
        v /= 1e3;
        break;
    case INGEST_UNIT_US:
        v /= 1e6;
        break;
    default:
        break;
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s as an int, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return -1;
        v = v * 10 + (int)d;
    }
    return v;
}

static int civil_ms(int y, int mo, int d, int h, int mi, int se, int64_t *ms)
{
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60)
        return -1;
    *ms = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000LL +
          se * 1000LL;
    return 0;
}

int ingest__parse_time(const char *s, size_t n, int64_t *ms)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t t;
    /* CLF: 10/Oct/2000:13:55:36 -0700 */
    if (n == 26 && s[2] == '/' && s[6] == '/' && s[11] == ':' && s[20] == ' ') {
        int mo = 0;
        for (int i = 0; i < 12; i++)
            if (memcmp(months + 3 * i, s + 3, 3) == 0)
                mo = i + 1;
        int d = digits(s, 2), y = digits(s + 7, 4), h = digits(s + 12, 2), mi = digits(s + 15, 2),
            se = digits(s + 18, 2), oh = digits(s + 22, 2), om = digits(s + 24, 2);
        if (!mo || (s[21] != '+' && s[21] != '-') || oh < 0 || om < 0 || d < 0 || y < 0 || h < 0 ||
            mi < 0 || se < 0 || civil_ms(y, mo, d, h, mi, se, &t) < 0)
            return -1;
        int64_t off = (oh * 60 + om) * 60000LL;
        *ms = s[21] == '+' ? t - off : t + off;
        return 0;
    }
    /* RFC 3339: 2000-10-10T13:55:36[.123](Z|+02:00) */
    if (n >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && s[13] == ':' &&
        s[16] == ':') {
        int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
            mi = digits(s + 14, 2), se = digits(s + 17, 2);
        if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0 ||
            civil_ms(y, mo, d, h, mi, se, &t) < 0)
            return -1;
        size_t i = 19;
        if (i < n && s[i] == '.') {
            int frac = 0, nd = 0;
            for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
                if (nd < 3)
                    frac = frac * 10 + (s[i] - '0');
            if (!nd)
                return -1;
            for (; nd < 3; nd++)
                frac *= 10;
            t += frac;
        }
        if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
            *ms = t;
            return 0;
        }
        if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
            int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
            if (oh < 0 || om < 0)
                return -1;
            int64_t off = (oh * 60 + om) * 60000LL;
            *ms = s[i] == '+' ? t - off : t + off;
            return 0;
        }
        return -1;
    }
    double v;
    if (ingest__parse_number(s, n, &v) < 0)
        return -1;
    *ms = (int64_t)(v * 1000);
    return 0;
}

/* ---- Common / Combined Log Format ---- */

/*
 * s is just after an opening quote. The closing quote, or NULL: a quote
 * after an odd number of backslashes is part of the text (Apache writes \").
 */
static const char *quote_end(const char *s, const char *e)
{
    const char *from = s;
    while (from < e) {
        const char *q = memchr(from, '"', (size_t)(e - from));
        if (!q)
            return NULL;
        size_t bs = 0;
        while (q - bs > s && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (!(bs & 1))
            return q;
        from = q + 1;
    }
    return NULL;
}

/* "GET /x HTTP/1.1" into method and target; anything else leaves both empty. */
static void split_request(const char *s, size_t n, struct ingest__rec *r)
{
    const char *e = s + n, *sp = memchr(s, ' ', n);
    if (!sp || sp == s) {
        r->method = (struct ingest__str){s, 0};
        r->target = (struct ingest__str){s, 0};
        return;
    }
    r->method = (struct ingest__str){s, (size_t)(sp - s)};
    const char *t = sp + 1, *sp2 = memchr(t, ' ', (size_t)(e - t));
    r->target = (struct ingest__str){t, (size_t)((sp2 ? sp2 : e) - t)};
}

/* Next space-terminated token at *s (advancing past the space); NULL at end of line. */
static inline const char *token(const char **s, const char *e, size_t *len)
{
    const char *t = *s, *sp = memchr(t, ' ', (size_t)(e - t));
    if (!sp)
        return NULL;
    *len = (size_t)(sp - t);
    *s = sp + 1;
    return t;
}

static int parse_clf(struct ingest__parser *p, const char *line, size_t n, struct ingest__rec *r)
{
    const char *s = line, *e = line + n, *t;
    size_t len;
    /* host ident user: the user may hold spaces (it comes from the client), so find " [". */
    if (!(t = token(&s, e, &len)) || !len)
        return -1;
    r->client = (struct ingest__str){t, len};
    if (!token(&s, e, &len))
        return -1;
    const char *lb = memchr(s, '[', (size_t)(e - s));
    if (!lb || lb == line || lb[-1] != ' ')
        return -1;
    const char *rb = memchr(lb, ']', (size_t)(e - lb));
    if (!rb || e - rb < 3 || rb[1] != ' ' || rb[2] != '"')
        return -1;
    r->time = (struct ingest__str){lb + 1, (size_t)(rb - lb - 1)};
    const char *rq = rb + 3, *rqe = quote_end(rq, e);
    if (!rqe || e - rqe < 2 || rqe[1] != ' ')
        return -1;
    split_request(rq, (size_t)(rqe - rq), r);
    s = rqe + 2;
    const char *st = s;
    while (s < e && *s != ' ')
        s++;
    if ((r->status = parse_status(st, (size_t)(s - st))) < 0)
        return -1;
    if (s == e)
        return -1;
    const char *bt = ++s;
    while (s < e && *s != ' ')
        s++;
    if (parse_u64(bt, (size_t)(s - bt), &r->bytes) < 0)
        return -1;
    if (p->format == INGEST_FMT_COMBINED) {
        /* "referer" "user-agent": present and closed; what follows them is allowed. */
        for (int i = 0; i < 2; i++) {
            if (e - s < 3 || s[0] != ' ' || s[1] != '"')
                return -1;
            const char *q = quote_end(s + 2, e);
            if (!q)
                return -1;
            s = q + 1;
        }
        /* nginx's "main" format: "$http_x_forwarded_for" next; "-" when there was none */
        if (p->forwarded && e - s >= 3 && s[0] == ' ' && s[1] == '"') {
            const char *q = quote_end(s + 2, e);
            if (q) {
                size_t xn = (size_t)(q - s - 2);
                if (xn && !(xn == 1 && s[2] == '-'))
                    r->client = (struct ingest__str){s + 2, xn};
                s = q + 1;
            }
        }
    }
    r->duration_s = -1;
    if (p->unit != INGEST_UNIT_NONE) {
        /* The request time is the line's last field (log formats append it). */
        const char *te = e;
        while (te > s && te[-1] == ' ')
            te--;
        const char *ts = te;
        while (ts > s && ts[-1] != ' ')
            ts--;
        if (ts == s || ts == te)
            return -1; /* no field after the fixed ones */
        if (parse_duration(ts, (size_t)(te - ts), p->unit, &r->duration_s) < 0)
            return -1;
    }
    return 0;
}

/* ---- JSON lines ---- */

#define JSON_MAX_DEPTH 32
#define JSON_PATH_MAX  256

struct jscan {
    struct ingest__parser *p;
    struct ingest__str val[INGEST_NFIELDS];
    unsigned char got[INGEST_NFIELDS]; /* 1 string, 2 number, 3 null/bool */
    size_t used;                       /* of p->scratch */
    char path[JSON_PATH_MAX];
    size_t path_len;
    int path_ok; /* 0 inside arrays and past the path cap: nothing matches */
};

static inline const char *ws(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
        s++;
    return s;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * A string body at s (after the opening quote). Returns the byte after the
 * closing quote, or NULL if the string is invalid or unterminated. With out,
 * the decoded bytes go there (never more than the raw length: every escape
 * is at least as long as what it stands for).
 */
static const char *jstring(const char *s, const char *e, char *out, size_t *outlen)
{
    size_t o = 0;
    while (s < e) {
        unsigned char c = (unsigned char)*s;
        if (c == '"') {
            if (outlen)
                *outlen = o;
            return s + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c != '\\') {
            if (out)
                out[o] = (char)c;
            o++;
            s++;
            continue;
        }
        if (e - s < 2)
            return NULL;
        char x = s[1], d;
        s += 2;
        switch (x) {
        case '"':
        case '\\':
        case '/':
            d = x;
            break;
        case 'b':
            d = '\b';
            break;
        case 'f':
            d = '\f';
            break;
        case 'n':
            d = '\n';
            break;
        case 'r':
            d = '\r';
            break;
        case 't':
            d = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (e - s < 4 || hex4(s, &cp) < 0)
                return NULL;
            s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && e - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
                hex4(s + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd; /* a lone surrogate */
            }
            if (out)
                o += put_utf8(out + o, cp);
            else
                o += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            continue;
        }
        default:
            return NULL;
        }
        if (out)
            out[o] = d;
        o++;
    }
    return NULL;
}

/* A JSON number token at s: its end, or NULL if it is not one. */
static const char *jnumber(const char *s, const char *e)
{
    const char *p = s;
    if (p < e && *p == '-')
        p++;
    const char *d = p;
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    if (p == d)
        return NULL;
    if (p < e && *p == '.') {
        d = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return NULL;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        d = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return NULL;
    }
    return p;
}

/* The wanted field the current path names, or -1. */
static int jfield(const struct jscan *c)
{
    if (!c->path_ok)
        return -1;
    for (int i = 0; i < INGEST_NFIELDS; i++)
        if (c->p->field_len[i] == c->path_len && memcmp(c->p->field[i], c->path, c->path_len) == 0)
            return i;
    return -1;
}

static const char *jvalue(struct jscan *c, const char *s, const char *e, int depth);

static const char *jobject(struct jscan *c, const char *s, const char *e, int depth)
{
    s = ws(s, e);
    if (s < e && *s == '}')
        return s + 1;
    for (;;) {
        if (s >= e || *s != '"')
            return NULL;
        size_t keep = c->path_len;
        int keep_ok = c->path_ok;
        char key[JSON_PATH_MAX];
        size_t klen;
        const char *ke = jstring(s + 1, e, NULL, &klen);
        if (!ke)
            return NULL;
        if (c->path_ok && klen < sizeof(key) && keep + 1 + klen < JSON_PATH_MAX) {
            jstring(s + 1, e, key, &klen);
            if (keep)
                c->path[c->path_len++] = '.';
            memcpy(c->path + c->path_len, key, klen);
            c->path_len += klen;
        } else {
            c->path_ok = 0;
        }
        s = ws(ke, e);
        if (s >= e || *s != ':')
            return NULL;
        s = jvalue(c, ws(s + 1, e), e, depth);
        c->path_len = keep;
        c->path_ok = keep_ok;
        if (!s)
            return NULL;
        s = ws(s, e);
        if (s < e && *s == ',') {
            s = ws(s + 1, e);
            continue;
        }
        if (s < e && *s == '}')
            return s + 1;
        return NULL;
    }
}

static const char *jvalue(struct jscan *c, const char *s, const char *e, int depth)
{
    if (s >= e)
        return NULL;
    int f = jfield(c);
    switch (*s) {
    case '"': {
        size_t len;
        if (f < 0)
            return jstring(s + 1, e, NULL, NULL);
        char *out = c->p->scratch + c->used;
        const char *end = jstring(s + 1, e, out, &len);
        if (end) {
            c->val[f] = (struct ingest__str){out, len};
            c->got[f] = 1;
            c->used += len;
        }
        return end;
    }
    case '{':
        if (depth >= JSON_MAX_DEPTH)
            return NULL;
        return jobject(c, s + 1, e, depth + 1);
    case '[': {
        if (depth >= JSON_MAX_DEPTH)
            return NULL;
        int keep_ok = c->path_ok;
        c->path_ok = 0;
        s = ws(s + 1, e);
        if (s < e && *s == ']') {
            c->path_ok = keep_ok;
            return s + 1;
        }
        for (;;) {
            s = jvalue(c, s, e, depth + 1);
            if (!s)
                return NULL;
            s = ws(s, e);
            if (s < e && *s == ',') {
                s = ws(s + 1, e);
                continue;
            }
            if (s < e && *s == ']') {
                c->path_ok = keep_ok;
                return s + 1;
            }
            return NULL;
        }
    }
    case 't':
    case 'f':
    case 'n': {
        static const char *const lits[] = {"true", "false", "null"};
        const char *lit = lits[*s == 't' ? 0 : *s == 'f' ? 1 : 2];
        size_t l = strlen(lit);
        if ((size_t)(e - s) < l || memcmp(s, lit, l) != 0)
            return NULL;
        if (f >= 0)
            c->got[f] = 3;
        return s + l;
    }
    default: {
        const char *end = jnumber(s, e);
        if (end && f >= 0) {
            c->val[f] = (struct ingest__str){s, (size_t)(end - s)};
            c->got[f] = 2;
        }
        return end;
    }
    }
}

static int parse_json(struct ingest__parser *p, const char *line, size_t n, struct ingest__rec *r)
{
    struct jscan c;
    memset(c.got, 0, sizeof(c.got));
    c.p = p;
    c.used = 0;
    c.path_len = 0;
    c.path_ok = 1;
    if (n > p->scratch_cap)
        return -1; /* longer than max_line: the reader never passes such lines */
    const char *e = line + n, *s = ws(line, e);
    if (s >= e || *s != '{')
        return -1;
    s = jobject(&c, s + 1, e, 1);
    if (!s || ws(s, e) != e)
        return -1;
    if (!c.got[INGEST_FIELD_STATUS] || c.got[INGEST_FIELD_STATUS] == 3 ||
        (r->status = parse_status(c.val[INGEST_FIELD_STATUS].p, c.val[INGEST_FIELD_STATUS].n)) < 0)
        return -1;
    struct ingest__str none = {line, 0};
#define VAL(f) (c.got[f] == 1 || c.got[f] == 2 ? c.val[f] : none)
    r->client = VAL(INGEST_FIELD_CLIENT);
    r->time = VAL(INGEST_FIELD_TIME);
    r->method = VAL(INGEST_FIELD_METHOD);
    r->target = VAL(INGEST_FIELD_PATH);
    if ((!r->method.n || !r->target.n) && VAL(INGEST_FIELD_REQUEST).n) {
        struct ingest__str m = r->method, t = r->target;
        split_request(c.val[INGEST_FIELD_REQUEST].p, c.val[INGEST_FIELD_REQUEST].n, r);
        if (m.n)
            r->method = m;
        if (t.n)
            r->target = t;
    }
    r->bytes = 0;
    struct ingest__str b = VAL(INGEST_FIELD_BYTES);
    if (b.n && parse_u64(b.p, b.n, &r->bytes) < 0)
        return -1;
    struct ingest__str d = VAL(INGEST_FIELD_DURATION);
#undef VAL
    if (parse_duration(d.p, d.n, p->unit, &r->duration_s) < 0)
        return -1;
    return 0;
}

/* ---- pattern ---- */

static int parse_pattern(struct ingest__parser *p, const char *line, size_t n,
                         struct ingest__rec *r)
{
    int rc = pcre2_match(p->re, (PCRE2_SPTR)line, n, 0, 0, p->md, p->mctx);
    if (rc < 0)
        return -1; /* no match, or a match limit hit */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
    uint32_t nov = pcre2_get_ovector_count(p->md);
    struct ingest__str v[INGEST_NFIELDS];
    for (int f = 0; f < INGEST_NFIELDS; f++) {
        int g = p->group[f];
        v[f] = (struct ingest__str){line, 0};
        if (g > 0 && (uint32_t)g < nov && ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] >= ov[2 * g])
            v[f] = (struct ingest__str){line + ov[2 * g], ov[2 * g + 1] - ov[2 * g]};
    }
    if ((r->status = parse_status(v[INGEST_FIELD_STATUS].p, v[INGEST_FIELD_STATUS].n)) < 0)
        return -1;
    r->client = v[INGEST_FIELD_CLIENT];
    r->time = v[INGEST_FIELD_TIME];
    r->method = v[INGEST_FIELD_METHOD];
    r->target = v[INGEST_FIELD_PATH];
    if ((!r->method.n || !r->target.n) && v[INGEST_FIELD_REQUEST].n) {
        struct ingest__str m = r->method, t = r->target;
        split_request(v[INGEST_FIELD_REQUEST].p, v[INGEST_FIELD_REQUEST].n, r);
        if (m.n)
            r->method = m;
        if (t.n)
            r->target = t;
    }
    r->bytes = 0;
    if (v[INGEST_FIELD_BYTES].n &&
        parse_u64(v[INGEST_FIELD_BYTES].p, v[INGEST_FIELD_BYTES].n, &r->bytes) < 0)
        return -1;
    return parse_duration(v[INGEST_FIELD_DURATION].p, v[INGEST_FIELD_DURATION].n, p->unit,
                          &r->duration_s);
}

/* ---- setup ---- */

/* Compile re; on error fill err and *offset. Returns the code or NULL. */
static pcre2_code *compile(const char *re, char *err, size_t errlen, size_t *offset)
{
    int ec;
    PCRE2_SIZE off;
    /* Byte mode, not UTF: log lines need not be valid UTF-8, and a UTF-8 literal in a
     * pattern still matches itself byte by byte. */
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)off, msg);
        if (offset)
            *offset = off;
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter serves if JIT is missing */
    return code;
}

pcre2_code *ingest__compile(const char *re, char *err, size_t errlen, size_t *offset)
{
    return compile(re, err, errlen, offset);
}

pcre2_match_context *ingest__match_context(void)
{
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (mc) {
        pcre2_set_match_limit(mc, INGEST__MATCH_LIMIT);
        pcre2_set_depth_limit(mc, INGEST__MATCH_LIMIT / 10);
    }
    return mc;
}

int ingest_check_regex(const char *re, char *err, size_t errlen, size_t *offset)
{
    *offset = 0;
    pcre2_code *c = compile(re, err, errlen, offset);
    if (!c)
        return -1;
    pcre2_code_free(c);
    return 0;
}

int ingest_check_pattern(const char *re, char *err, size_t errlen, size_t *offset)
{
    *offset = 0;
    pcre2_code *c = compile(re, err, errlen, offset);
    if (!c)
        return -1;
    int st = pcre2_substring_number_from_name(c, (PCRE2_SPTR) "status");
    int pa = pcre2_substring_number_from_name(c, (PCRE2_SPTR) "path");
    int rq = pcre2_substring_number_from_name(c, (PCRE2_SPTR) "request");
    pcre2_code_free(c);
    if (st <= 0) {
        snprintf(err, errlen, "pattern needs a named group (?<status>...)");
        return -1;
    }
    if (pa <= 0 && rq <= 0) {
        snprintf(err, errlen, "pattern needs a named group (?<path>...) or (?<request>...)");
        return -1;
    }
    return 0;
}

int ingest__parser_init(struct ingest__parser *p, const struct ingest_log *l, char *err,
                        size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->format = l->format;
    p->unit = l->request_time;
    p->forwarded = l->client_forwarded;
    if (p->format == INGEST_FMT_JSON) {
        for (int f = 0; f < INGEST_NFIELDS; f++) {
            p->field[f] = xstrdup(l->fields[f] ? l->fields[f] : field_defaults[f]);
            p->field_len[f] = strlen(p->field[f]);
        }
        p->scratch_cap = l->max_line ? l->max_line : INGEST_DEFAULT_MAX_LINE;
        p->scratch = xmalloc(p->scratch_cap);
    } else if (p->format == INGEST_FMT_PATTERN) {
        size_t off;
        if (!l->pattern) {
            snprintf(err, errlen, "format pattern needs a pattern");
            return -1;
        }
        if (!(p->re = compile(l->pattern, err, errlen, &off)))
            return -1;
        for (int f = 0; f < INGEST_NFIELDS; f++) {
            int g = pcre2_substring_number_from_name(p->re, (PCRE2_SPTR)field_names[f]);
            p->group[f] = g > 0 ? g : 0;
        }
        p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
        p->mctx = ingest__match_context();
        if (!p->md || !p->mctx) {
            ingest__parser_release(p);
            snprintf(err, errlen, "out of memory for pattern match data");
            return -1;
        }
    }
    return 0;
}

void ingest__parser_release(struct ingest__parser *p)
{
    for (int f = 0; f < INGEST_NFIELDS; f++)
        free(p->field[f]);
    free(p->scratch);
    if (p->md)
        pcre2_match_data_free(p->md);
    if (p->mctx)
        pcre2_match_context_free(p->mctx);
    if (p->re)
        pcre2_code_free(p->re);
    memset(p, 0, sizeof(*p));
}

int ingest__parse(struct ingest__parser *p, const char *line, size_t n, struct ingest__rec *r)
{
    r->duration_s = -1;
    switch (p->format) {
    case INGEST_FMT_COMMON:
    case INGEST_FMT_COMBINED:
        return parse_clf(p, line, n, r);
    case INGEST_FMT_JSON:
        return parse_json(p, line, n, r);
    case INGEST_FMT_PATTERN:
        return parse_pattern(p, line, n, r);
    }
    return -1;
}
