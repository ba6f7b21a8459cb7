/*
 * sbuf.c: capped growable buffer (see sbuf.h).
 */
#include "util/sbuf.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *sb, size_t max)
{
    sb->cap = 64;
    sb->buf = xmalloc(sb->cap);
    sb->buf[0] = '\0';
    sb->len = 0;
    sb->max = max ? max : SBUF_DEFAULT_MAX;
    sb->overflow = 0;
}

void sbuf_release(struct sbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

void sbuf_reset(struct sbuf *sb)
{
    sb->len = 0;
    sb->buf[0] = '\0';
    sb->overflow = 0;
}

static int reserve(struct sbuf *sb, size_t n)
{
    if (n > sb->max - sb->len) {
        sb->overflow = 1;
        return -1;
    }
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap;
        void *p = sb->buf;
        util_grow(&p, &cap, sb->len + n + 1, 1);
        sb->buf = p;
        sb->cap = cap;
    }
    return 0;
}

int sbuf_reserve(struct sbuf *sb, size_t n)
{
    if (n > sb->max - sb->len)
        n = sb->max - sb->len; /* a hint: room up to the cap, no overflow */
    return reserve(sb, n);
}

int sbuf_add(struct sbuf *sb, const void *data, size_t n)
{
    if (reserve(sb, n) < 0)
        return -1;
    memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
    return 0;
}

int sbuf_adds(struct sbuf *sb, const char *s)
{
    return sbuf_add(sb, s, strlen(s));
}

int sbuf_addc(struct sbuf *sb, char c)
{
    return sbuf_add(sb, &c, 1);
}

int sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -1;
    if ((size_t)n >= sb->cap - sb->len) {
        if (reserve(sb, (size_t)n) < 0) {
            sb->buf[sb->len] = '\0';
            return -1;
        }
        vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    } else if ((size_t)n > sb->max - sb->len) {
        sb->overflow = 1;
        sb->buf[sb->len] = '\0';
        return -1;
    }
    sb->len += (size_t)n;
    return 0;
}

int sbuf_addf(struct sbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = sbuf_vaddf(sb, fmt, ap);
    va_end(ap);
    return r;
}

char *sbuf_detach(struct sbuf *sb, size_t *len)
{
    char *b = sb->buf;
    if (len)
        *len = sb->len;
    sbuf_init(sb, sb->max);
    return b;
}
