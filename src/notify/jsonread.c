/*
 * jsonread.c: a small JSON parser into a tree, for what the notification
 * pipeline reads: API request bodies (silences, alerts) and its own rows in
 * SQLite. Input is bounded by the caller (HTTP bodies are capped); nesting
 * is capped here so hostile input cannot exhaust the stack.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

struct parser {
    const char *start, *s, *end;
    char *err;
    size_t errcap;
    int failed;
};

static void fail(struct parser *p, const char *what)
{
    if (!p->failed)
        snprintf(p->err, p->errcap, "bad JSON at byte %zu: %s", (size_t)(p->s - p->start), what);
    p->failed = 1;
}

static void ws(struct parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void utf8(struct sbuf *b, unsigned cp)
{
    if (cp < 0x80) {
        sbuf_addc(b, (char)cp);
    } else if (cp < 0x800) {
        sbuf_addc(b, (char)(0xc0 | (cp >> 6)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sbuf_addc(b, (char)(0xe0 | (cp >> 12)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        sbuf_addc(b, (char)(0xf0 | (cp >> 18)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

static char *string(struct parser *p)
{
    struct sbuf b;
    sbuf_init(&b, 0);
    p->s++; /* the quote */
    while (p->s < p->end && *p->s != '"') {
        unsigned char c = (unsigned char)*p->s;
        if (c < 0x20) {
            fail(p, "control character in string");
            break;
        }
        if (c != '\\') {
            sbuf_addc(&b, (char)c);
            p->s++;
            continue;
        }
        if (p->s + 1 >= p->end) {
            fail(p, "unterminated escape");
            break;
        }
        char e = p->s[1];
        p->s += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            sbuf_addc(&b, e);
            break;
        case 'b':
            sbuf_addc(&b, '\b');
            break;
        case 'f':
            sbuf_addc(&b, '\f');
            break;
        case 'n':
            sbuf_addc(&b, '\n');
            break;
        case 'r':
            sbuf_addc(&b, '\r');
            break;
        case 't':
            sbuf_addc(&b, '\t');
            break;
        case 'u': {
            unsigned cp;
            if (p->end - p->s < 4 || hex4(p->s, &cp) < 0) {
                fail(p, "bad \\u escape");
                goto out;
            }
            p->s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && p->end - p->s >= 6 && p->s[0] == '\\' &&
                p->s[1] == 'u') {
                unsigned lo;
                if (hex4(p->s + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p->s += 6;
                }
            }
            if (cp == 0) {
                fail(p, "NUL in string");
                goto out;
            }
            utf8(&b, cp);
            break;
        }
        default:
            fail(p, "bad escape");
            goto out;
        }
    }
    if (!p->failed && p->s >= p->end)
        fail(p, "unterminated string");
    else if (!p->failed)
        p->s++;
out:
    if (p->failed) {
        sbuf_release(&b);
        return NULL;
    }
    return notify__sbuf_take(&b);
}

static void value(struct parser *p, struct notify__jv *v, int depth);

static void container(struct parser *p, struct notify__jv *v, int depth, int obj)
{
    size_t cap = 0;
    v->type = obj ? NJ_OBJ : NJ_ARR;
    p->s++;
    ws(p);
    if (p->s < p->end && *p->s == (obj ? '}' : ']')) {
        p->s++;
        return;
    }
    for (;;) {
        ws(p);
        char *key = NULL;
        if (obj) {
            if (p->s >= p->end || *p->s != '"') {
                fail(p, "want a key");
                return;
            }
            if (!(key = string(p)))
                return;
            ws(p);
            if (p->s >= p->end || *p->s != ':') {
                free(key);
                fail(p, "want ':'");
                return;
            }
            p->s++;
        }
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4;
            v->items = xrealloc(v->items, cap * sizeof(*v->items));
            if (obj)
                v->keys = xrealloc(v->keys, cap * sizeof(*v->keys));
        }
        memset(&v->items[v->n], 0, sizeof(v->items[v->n]));
        if (obj)
            v->keys[v->n] = key;
        v->n++;
        value(p, &v->items[v->n - 1], depth + 1);
        if (p->failed)
            return;
        ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == (obj ? '}' : ']')) {
            p->s++;
            return;
        }
        fail(p, obj ? "want ',' or '}'" : "want ',' or ']'");
        return;
    }
}

static void value(struct parser *p, struct notify__jv *v, int depth)
{
    if (depth > MAX_DEPTH) {
        fail(p, "nested too deep");
        return;
    }
    ws(p);
    if (p->s >= p->end) {
        fail(p, "unexpected end");
        return;
    }
    size_t left = (size_t)(p->end - p->s);
    switch (*p->s) {
    case '{':
        container(p, v, depth, 1);
        return;
    case '[':
        container(p, v, depth, 0);
        return;
    case '"':
        v->type = NJ_STR;
        v->str = string(p);
        return;
    case 't':
        if (left >= 4 && memcmp(p->s, "true", 4) == 0) {
            v->type = NJ_BOOL;
            v->b = 1;
            p->s += 4;
            return;
        }
        break;
    case 'f':
        if (left >= 5 && memcmp(p->s, "false", 5) == 0) {
            v->type = NJ_BOOL;
            p->s += 5;
            return;
        }
        break;
    case 'n':
        if (left >= 4 && memcmp(p->s, "null", 4) == 0) {
            v->type = NJ_NULL;
            p->s += 4;
            return;
        }
        break;
    default:
        if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9')) {
            char buf[64];
            size_t n = 0;
            while (p->s + n < p->end && n < sizeof(buf) - 1 && strchr("+-.eE0123456789", p->s[n]))
                n++;
            memcpy(buf, p->s, n);
            buf[n] = '\0';
            char *end;
            errno = 0;
            double d = strtod(buf, &end);
            if (end != buf + n || !isfinite(d)) {
                fail(p, "bad number");
                return;
            }
            v->type = NJ_NUM;
            v->num = d;
            p->s += n;
            return;
        }
    }
    fail(p, "unexpected character");
}

static void jv_release(struct notify__jv *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jv_release(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void notify__jv_free(struct notify__jv *v)
{
    if (!v)
        return;
    jv_release(v);
    free(v);
}

struct notify__jv *notify__json_parse(const char *s, size_t len, char *err, size_t errcap)
{
    struct parser p = {.start = s, .s = s, .end = s + len, .err = err, .errcap = errcap};
    struct notify__jv *v = xcalloc(1, sizeof(*v));
    value(&p, v, 0);
    if (!p.failed) {
        ws(&p);
        if (p.s != p.end)
            fail(&p, "trailing characters");
    }
    if (p.failed) {
        notify__jv_free(v);
        return NULL;
    }
    return v;
}

const struct notify__jv *notify__jv_get(const struct notify__jv *o, const char *key)
{
    if (!o || o->type != NJ_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->items[i];
    return NULL;
}

const char *notify__jv_str(const struct notify__jv *o, const char *key)
{
    const struct notify__jv *v = notify__jv_get(o, key);
    return v && v->type == NJ_STR ? v->str : NULL;
}
