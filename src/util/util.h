/*
 * util.h: the few helpers every subsystem uses: allocation that aborts on
 * out-of-memory (so ordinary code needs no NULL checks), clocks, and small
 * macros. Lower layers only; nothing here knows about metrics or HTTP.
 */
#ifndef SITREP_UTIL_H
#define SITREP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED(x)     ((void)(x))

/* Allocation wrappers: never return NULL; print and abort when memory is gone. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/*
 * Grow *p (an array of elem-sized items with capacity *cap) so that it holds
 * at least need items. Doubles, so appends are amortised O(1); once a buffer
 * reached its steady-state size it is never reallocated again.
 */
void util_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Wall-clock time in milliseconds since the epoch. */
int64_t util_now_ms(void);
/* Monotonic clock in nanoseconds (for durations). */
int64_t util_mono_ns(void);
/* CPU time consumed by the calling thread, in nanoseconds. */
int64_t util_thread_cpu_ns(void);

#endif
