/*
 * fieldsel.c: which fields of a kernel statistics file a source exports
 * (collect: {vmstat_fields, netstat_fields}). A PCRE2 regex, compiled once
 * when the collector is made, has to match a field's whole name; the
 * keep/drop decision is remembered per name, because those files list the
 * same names every tick and a regex run per field per tick would cost more
 * than reading the file.
 */
#include "collect/collect_internal.h"
#include "util/util.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Distinct names remembered at most. Real files have a few hundred; past the
 * cap (a garbled or hostile file) the regex simply runs for every new name,
 * so memory stays bounded and answers stay right.
 */
#define FIELDSEL_MAX_NAMES 4096

struct fieldsel_entry {
    uint64_t hash;
    char *name; /* owned, NUL-terminated; NULL: free slot */
    size_t len;
    int keep;
};

struct collect__fieldsel {
    pcre2_code *re;
    pcre2_match_data *md;
    struct fieldsel_entry *tab; /* open addressing, linear probing */
    size_t cap, n;              /* cap is 0 or a power of two; n <= cap / 2 */
    uint64_t matches;
};

int collect__fieldsel_new(const char *re, struct collect__fieldsel **out, char *err, size_t errlen,
                          size_t *offset)
{
    *out = NULL;
    *offset = 0;
    if (!re)
        return 0;
    int ec;
    PCRE2_SIZE off;
    /* Anchored at both ends, as Prometheus anchors relabelling regexes: "pgpg"
     * means the field pgpg, not every field starting with it. Byte mode: field
     * names are ASCII. */
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                     PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ec, &off, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)off, msg);
        *offset = off;
        return -1;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter serves if JIT is missing */
    struct collect__fieldsel *s = xcalloc(1, sizeof(*s));
    s->re = code;
    s->md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!s->md) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    *out = s;
    return 0;
}

void collect__fieldsel_free(struct collect__fieldsel *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->tab[i].name);
    free(s->tab);
    pcre2_match_data_free(s->md);
    pcre2_code_free(s->re);
    free(s);
}

/* FNV-1a: names are short, and this runs for every field of every tick. */
static uint64_t name_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The slot holding name, or the free slot where it belongs. cap > 0. */
static struct fieldsel_entry *slot(struct fieldsel_entry *tab, size_t cap, uint64_t h,
                                   const char *name, size_t len)
{
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        struct fieldsel_entry *e = &tab[i];
        if (!e->name || (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0))
            return e;
    }
}

static void grow(struct collect__fieldsel *s)
{
    size_t cap = s->cap ? s->cap * 2 : 256;
    struct fieldsel_entry *tab = xcalloc(cap, sizeof(*tab));
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].name)
            *slot(tab, cap, s->tab[i].hash, s->tab[i].name, s->tab[i].len) = s->tab[i];
    free(s->tab);
    s->tab = tab;
    s->cap = cap;
}

int collect__fieldsel_keep(struct collect__fieldsel *s, const char *name, size_t len)
{
    if (!s)
        return 1;
    uint64_t h = name_hash(name, len);
    struct fieldsel_entry *e = s->cap ? slot(s->tab, s->cap, h, name, len) : NULL;
    if (e && e->name)
        return e->keep;
    s->matches++;
    int keep = pcre2_match(s->re, (PCRE2_SPTR)name, len, 0, 0, s->md, NULL) >= 0;
    if (s->n >= FIELDSEL_MAX_NAMES)
        return keep;
    if ((s->n + 1) * 2 > s->cap) {
        grow(s);
        e = slot(s->tab, s->cap, h, name, len);
    }
    *e = (struct fieldsel_entry){.hash = h, .name = xstrndup(name, len), .len = len, .keep = keep};
    s->n++;
    return keep;
}

uint64_t collect__fieldsel_matches(const struct collect__fieldsel *s)
{
    return s ? s->matches : 0;
}

int collect_check_fields(const char *re, char *err, size_t errlen, size_t *offset)
{
    struct collect__fieldsel *s;
    if (collect__fieldsel_new(re, &s, err, errlen, offset) < 0)
        return -1;
    collect__fieldsel_free(s);
    return 0;
}
