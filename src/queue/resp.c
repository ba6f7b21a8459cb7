/*
 * resp.c: RESP2, the protocol Redis speaks: replies parsed defensively
 * (every length checked against the bytes there and against the limits in
 * queue_internal.h, CRLF required, integers strict) and commands encoded as
 * arrays of bulk strings. A reply is first checked without allocating, so
 * a partial reply costs nothing but a rescan when more bytes come.
 */
#include "queue/queue_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rp {
    const char *buf;
    size_t n, pos;
    size_t nodes;
    char *err;
    size_t errlen;
};

static int bad(struct rp *p, const char *what)
{
    snprintf(p->err, p->errlen, "malformed reply at byte %zu: %s", p->pos, what);
    return -1;
}

/* The line at p->pos up to CRLF: 1 with *s and *len (CRLF consumed), 0 if incomplete, -1. */
static int line(struct rp *p, const char **s, size_t *len)
{
    const char *start = p->buf + p->pos;
    size_t avail = p->n - p->pos,
           look = avail < QUEUE__RESP_MAX_LINE + 1 ? avail : QUEUE__RESP_MAX_LINE + 1;
    const char *cr = memchr(start, '\r', look);
    if (!cr)
        return avail > QUEUE__RESP_MAX_LINE ? bad(p, "line too long") : 0;
    size_t l = (size_t)(cr - start);
    if (l + 1 >= avail)
        return 0;
    if (cr[1] != '\n')
        return bad(p, "CR without LF");
    if (memchr(start, '\n', l) || memchr(start, '\0', l))
        return bad(p, "LF or NUL inside a line");
    *s = start;
    *len = l;
    p->pos += l + 2;
    return 1;
}

/* A strict decimal: optional '-', 1..19 digits, no overflow. 0 or -1. */
static int number(const char *s, size_t len, long long *v)
{
    int neg = len && s[0] == '-';
    size_t i = (size_t)neg;
    if (i == len || len - i > 19)
        return -1;
    unsigned long long x = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (unsigned long long)(s[i] - '0');
    }
    if (x > (unsigned long long)LLONG_MAX)
        return -1;
    *v = neg ? -(long long)x : (long long)x;
    return 0;
}

static char *copy(const char *s, size_t len)
{
    char *c = xmalloc(len + 1);
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

/* One value at p->pos; out NULL only checks. 1, 0 (incomplete) or -1. */
static int value(struct rp *p, int depth, struct queue__reply *out)
{
    if (p->pos >= p->n)
        return 0;
    if (++p->nodes > QUEUE__RESP_MAX_NODES)
        return bad(p, "too many values in one reply");
    char t = p->buf[p->pos++];
    const char *s;
    size_t len;
    long long v;
    int r = line(p, &s, &len);
    if (r <= 0)
        return r;
    switch (t) {
    case '+':
    case '-':
        if (out) {
            out->type = t == '+' ? QUEUE__STATUS : QUEUE__ERROR;
            out->str = copy(s, len);
            out->len = len;
        }
        return 1;
    case ':':
        if (number(s, len, &v) < 0)
            return bad(p, "bad integer");
        if (out) {
            out->type = QUEUE__INT;
            out->integer = v;
        }
        return 1;
    case '$':
        if (number(s, len, &v) < 0 || v < -1)
            return bad(p, "bad bulk length");
        if (v == -1) {
            if (out)
                out->type = QUEUE__NIL;
            return 1;
        }
        if (v > QUEUE__RESP_MAX_BULK)
            return bad(p, "bulk string over the size limit");
        if (p->n - p->pos < (size_t)v + 2)
            return 0;
        if (p->buf[p->pos + (size_t)v] != '\r' || p->buf[p->pos + (size_t)v + 1] != '\n')
            return bad(p, "bulk string not ended by CRLF");
        if (out) {
            out->type = QUEUE__BULK;
            out->str = copy(p->buf + p->pos, (size_t)v);
            out->len = (size_t)v;
        }
        p->pos += (size_t)v + 2;
        return 1;
    case '*':
        if (number(s, len, &v) < 0 || v < -1)
            return bad(p, "bad array length");
        if (v == -1) {
            if (out)
                out->type = QUEUE__NIL;
            return 1;
        }
        if (v > QUEUE__RESP_MAX_ARRAY)
            return bad(p, "array over the size limit");
        if (depth >= QUEUE__RESP_MAX_DEPTH)
            return bad(p, "arrays nested too deep");
        if (out) {
            out->type = QUEUE__ARRAY;
            out->n = (size_t)v;
            out->elem = v ? xcalloc((size_t)v, sizeof(*out->elem)) : NULL;
        }
        for (long long i = 0; i < v; i++)
            if ((r = value(p, depth + 1, out ? &out->elem[i] : NULL)) <= 0)
                return r;
        return 1;
    default:
        p->pos--;
        return bad(p, "unknown type byte");
    }
}

int queue__resp_parse(const char *buf, size_t n, struct queue__reply **out, size_t *used, char *err,
                      size_t errlen)
{
    struct rp p = {.buf = buf, .n = n, .err = err, .errlen = errlen};
    int r = value(&p, 0, NULL);
    if (r <= 0)
        return r;
    size_t end = p.pos;
    /* Complete and valid: build it (cannot fail now). */
    p.pos = 0;
    p.nodes = 0;
    struct queue__reply *rep = xcalloc(1, sizeof(*rep));
    value(&p, 0, rep);
    *out = rep;
    *used = end;
    return 1;
}

static void reply_clear(struct queue__reply *r)
{
    free(r->str);
    for (size_t i = 0; i < r->n; i++)
        reply_clear(&r->elem[i]);
    free(r->elem);
}

void queue__reply_free(struct queue__reply *r)
{
    if (!r)
        return;
    reply_clear(r);
    free(r);
}

const struct queue__reply *queue__reply_field(const struct queue__reply *r, const char *name)
{
    if (!r || r->type != QUEUE__ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->n; i += 2)
        if ((r->elem[i].type == QUEUE__BULK || r->elem[i].type == QUEUE__STATUS) &&
            strcmp(r->elem[i].str, name) == 0)
            return &r->elem[i + 1];
    return NULL;
}

int queue__resp_command(struct sbuf *req, size_t argc, const char *const *argv)
{
    int rc = sbuf_addf(req, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc && rc == 0; i++) {
        size_t len = strlen(argv[i]);
        rc = sbuf_addf(req, "$%zu\r\n", len);
        if (rc == 0)
            rc = sbuf_add(req, argv[i], len);
        if (rc == 0)
            rc = sbuf_add(req, "\r\n", 2);
    }
    return rc;
}
