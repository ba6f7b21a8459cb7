/*
 * sbuf.h: a growable byte buffer with a hard cap. Anything fed by untrusted
 * or unbounded input is built in an sbuf whose cap makes it fail cleanly
 * instead of eating memory. Invariant: buf is never NULL after sbuf_init and
 * is always NUL-terminated (buf[len] == '\0').
 */
#ifndef SITREP_SBUF_H
#define SITREP_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct sbuf {
    char *buf;
    size_t len;
    size_t cap;
    size_t max;   /* hard cap on len; 0 means SBUF_DEFAULT_MAX */
    int overflow; /* set once an append was refused for the cap */
};

#define SBUF_DEFAULT_MAX ((size_t)256 << 20)

void sbuf_init(struct sbuf *sb, size_t max);
void sbuf_release(struct sbuf *sb);
/* Empty the buffer, keeping its memory. */
void sbuf_reset(struct sbuf *sb);
/* Appends return 0, or -1 (and set overflow) when the cap would be passed. */
int sbuf_add(struct sbuf *sb, const void *data, size_t n);
/* Make room for n more bytes at once (a size hint; never past the cap). 0 or -1. */
int sbuf_reserve(struct sbuf *sb, size_t n);
int sbuf_adds(struct sbuf *sb, const char *s);
int sbuf_addc(struct sbuf *sb, char c);
int sbuf_addf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap);
/* Hand the buffer to the caller (who frees it) and re-initialise sb. */
char *sbuf_detach(struct sbuf *sb, size_t *len);

#endif
