/*
 * eval_labels.c: a query's memory and its label sets. Every allocation is
 * tracked (so an error frees it all at once, see eval_internal.h); strings
 * and label sets are interned per query, so that equal label sets are the
 * same pointer: series are matched, grouped and deduplicated by pointer,
 * and label strings are stored once however many series carry them.
 */
#include "query/eval_internal.h"

#include <stdlib.h>
#include <string.h>

#include "query/lex.h"
#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

#define ARENA_CHUNK (64 * 1024)
#define ARENA_BIG   (8 * 1024) /* larger requests get their own block */

/* ---- tracked blocks ------------------------------------------------------- */

void query__mem_init(struct query__mem *m)
{
    memset(m, 0, sizeof(*m));
    m->head.prev = m->head.next = &m->head;
}

void query__mem_release(struct query__mem *m)
{
    struct query__blk *b = m->head.next;
    while (b && b != &m->head) {
        struct query__blk *next = b->next;
        free(b);
        b = next;
    }
    free(m->strs);
    free(m->sets);
    query__mem_init(m);
}

static void *mem_alloc(struct query__mem *m, size_t n)
{
    struct query__blk *b = xmalloc(sizeof(*b) + (n ? n : 1));
    b->next = m->head.next;
    b->prev = &m->head;
    m->head.next->prev = b;
    m->head.next = b;
    return b + 1;
}

void *query__alloc(struct query__ev *ev, size_t n)
{
    return mem_alloc(ev->mem, n);
}

void *query__zalloc(struct query__ev *ev, size_t n)
{
    void *p = mem_alloc(ev->mem, n);
    memset(p, 0, n ? n : 1);
    return p;
}

void query__free(struct query__ev *ev, void *p)
{
    (void)ev;
    if (!p)
        return;
    struct query__blk *b = (struct query__blk *)p - 1;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    free(b);
}

void *query__realloc(struct query__ev *ev, void *p, size_t n)
{
    if (!p)
        return query__alloc(ev, n);
    struct query__blk *b = (struct query__blk *)p - 1;
    struct query__blk *prev = b->prev, *next = b->next;
    struct query__blk *nb = xrealloc(b, sizeof(*nb) + (n ? n : 1));
    prev->next = nb;
    next->prev = nb;
    return nb + 1;
}

void *query__arena(struct query__ev *ev, size_t n)
{
    struct query__mem *m = ev->mem;
    n = (n + 15) & ~(size_t)15;
    if (n > ARENA_BIG)
        return mem_alloc(m, n);
    if (!m->arena || m->arena_used + n > m->arena_cap) {
        m->arena = mem_alloc(m, ARENA_CHUNK);
        m->arena_cap = ARENA_CHUNK;
        m->arena_used = 0;
    }
    void *p = m->arena + m->arena_used;
    m->arena_used += n;
    return p;
}

/* ---- hashing ----------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return mix64(h);
}

/* ---- strings ----------------------------------------------------------------- */

/* A string table entry is the string's pointer; its hash is kept just before it. */
static inline uint64_t str_hash(const char *s)
{
    uint64_t h;
    memcpy(&h, s - 8, 8);
    return h;
}

static void strs_grow(struct query__mem *m)
{
    size_t cap = m->strs_cap ? m->strs_cap * 2 : 256;
    const char **t = xcalloc(cap, sizeof(*t));
    for (size_t i = 0; i < m->strs_cap; i++) {
        const char *s = m->strs[i];
        if (!s)
            continue;
        size_t k = (size_t)str_hash(s) & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = s;
    }
    free(m->strs);
    m->strs = t;
    m->strs_cap = cap;
}

const char *query__str(struct query__ev *ev, const char *s, size_t len)
{
    struct query__mem *m = ev->mem;
    if ((m->nstrs + 1) * 2 > m->strs_cap)
        strs_grow(m);
    uint64_t h = hash_bytes(s, len);
    size_t k = (size_t)h & (m->strs_cap - 1);
    for (const char *e; (e = m->strs[k]); k = (k + 1) & (m->strs_cap - 1))
        if (str_hash(e) == h && strncmp(e, s, len) == 0 && e[len] == '\0')
            return e;
    char *p = query__arena(ev, 8 + len + 1);
    memcpy(p, &h, 8);
    memcpy(p + 8, s, len);
    p[8 + len] = '\0';
    m->strs[k] = p + 8;
    m->nstrs++;
    return p + 8;
}

const char *query__strz(struct query__ev *ev, const char *s)
{
    return query__str(ev, s, strlen(s));
}

/* ---- label sets -------------------------------------------------------------- */

static uint64_t labels_hash(const struct metric_label *l, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h = mix64(h ^ (uint64_t)(uintptr_t)l[i].name);
        h = mix64(h ^ (uint64_t)(uintptr_t)l[i].value);
    }
    return h;
}

static void sets_grow(struct query__mem *m)
{
    size_t cap = m->sets_cap ? m->sets_cap * 2 : 256;
    const struct query__labels **t = xcalloc(cap, sizeof(*t));
    for (size_t i = 0; i < m->sets_cap; i++) {
        const struct query__labels *ls = m->sets[i];
        if (!ls)
            continue;
        size_t k = (size_t)ls->hash & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = ls;
    }
    free(m->sets);
    m->sets = t;
    m->sets_cap = cap;
}

const struct query__labels *query__labels_sorted(struct query__ev *ev, const struct metric_label *l,
                                                 size_t n)
{
    struct query__mem *m = ev->mem;
    if ((m->nsets + 1) * 2 > m->sets_cap)
        sets_grow(m);
    uint64_t h = labels_hash(l, n);
    size_t k = (size_t)h & (m->sets_cap - 1);
    for (const struct query__labels *e; (e = m->sets[k]); k = (k + 1) & (m->sets_cap - 1)) {
        if (e->hash != h || e->n != n)
            continue;
        size_t i = 0;
        while (i < n && e->l[i].name == l[i].name && e->l[i].value == l[i].value)
            i++;
        if (i == n)
            return e;
    }
    struct query__labels *ls = query__arena(ev, sizeof(*ls) + n * sizeof(ls->l[0]));
    ls->hash = h;
    ls->n = (uint32_t)n;
    if (n)
        memcpy(ls->l, l, n * sizeof(*l));
    m->sets[k] = ls;
    m->nsets++;
    return ls;
}

/* Scratch for building label sets; grows on demand (label sets are short). */
struct lbuf {
    struct metric_label small[32];
    struct metric_label *l;
    size_t n, cap;
};

static void lbuf_init(struct lbuf *b, size_t need)
{
    b->n = 0;
    b->l = b->small;
    b->cap = ARRAY_SIZE(b->small);
    if (need > b->cap) {
        b->l = xmalloc(need * sizeof(*b->l));
        b->cap = need;
    }
}

static void lbuf_release(struct lbuf *b)
{
    if (b->l != b->small)
        free(b->l);
}

const struct query__labels *query__labels(struct query__ev *ev, const struct metric_label *l,
                                          size_t n)
{
    struct lbuf b;
    lbuf_init(&b, n);
    for (size_t i = 0; i < n; i++) {
        if (!l[i].value || !l[i].value[0])
            continue;
        struct metric_label x = {query__strz(ev, l[i].name), query__strz(ev, l[i].value)};
        size_t k = b.n++;
        while (k > 0 && strcmp(b.l[k - 1].name, x.name) > 0) {
            b.l[k] = b.l[k - 1];
            k--;
        }
        b.l[k] = x;
    }
    const struct query__labels *ls = query__labels_sorted(ev, b.l, b.n);
    lbuf_release(&b);
    return ls;
}

const char *query__get(const struct query__labels *ls, const char *name)
{
    for (uint32_t i = 0; i < ls->n; i++)
        if (ls->l[i].name == name || strcmp(ls->l[i].name, name) == 0)
            return ls->l[i].value;
    return NULL;
}

const struct query__labels *query__drop_name(struct query__ev *ev, const struct query__labels *ls)
{
    struct lbuf b;
    lbuf_init(&b, ls->n);
    for (uint32_t k = 0; k < ls->n; k++) {
        const char *nm = ls->l[k].name;
        if (nm != ev->s_name && nm != ev->s_type && nm != ev->s_unit)
            b.l[b.n++] = ls->l[k];
    }
    const struct query__labels *r = b.n == ls->n ? ls : query__labels_sorted(ev, b.l, b.n);
    lbuf_release(&b);
    return r;
}

const struct query__labels *query__set(struct query__ev *ev, const struct query__labels *ls,
                                       const char *name, const char *value)
{
    name = query__strz(ev, name);
    value = value && value[0] ? query__strz(ev, value) : NULL;
    struct lbuf b;
    lbuf_init(&b, ls->n + 1);
    int done = 0;
    for (uint32_t i = 0; i < ls->n; i++) {
        int c = strcmp(ls->l[i].name, name);
        if (!done && c >= 0) {
            if (value)
                b.l[b.n++] = (struct metric_label){name, value};
            done = 1;
            if (c == 0)
                continue;
        }
        b.l[b.n++] = ls->l[i];
    }
    if (!done && value)
        b.l[b.n++] = (struct metric_label){name, value};
    const struct query__labels *r = query__labels_sorted(ev, b.l, b.n);
    lbuf_release(&b);
    return r;
}

static int in_list(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] == name || strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

const struct query__labels *query__filter(struct query__ev *ev, const struct query__labels *ls,
                                          const char *const *names, size_t n, int keep,
                                          int drop_name)
{
    struct lbuf b;
    lbuf_init(&b, ls->n);
    for (uint32_t i = 0; i < ls->n; i++) {
        const char *nm = ls->l[i].name;
        if (drop_name && nm == ev->s_name)
            continue;
        if (in_list(nm, names, n) == !!keep)
            b.l[b.n++] = ls->l[i];
    }
    const struct query__labels *r = b.n == ls->n ? ls : query__labels_sorted(ev, b.l, b.n);
    lbuf_release(&b);
    return r;
}

int query__labels_cmp(const struct query__labels *a, const struct query__labels *b)
{
    if (a == b)
        return 0;
    uint32_t n = a->n < b->n ? a->n : b->n;
    for (uint32_t i = 0; i < n; i++) {
        int c = a->l[i].name == b->l[i].name ? 0 : strcmp(a->l[i].name, b->l[i].name);
        if (c)
            return c;
        c = a->l[i].value == b->l[i].value ? 0 : strcmp(a->l[i].value, b->l[i].value);
        if (c)
            return c;
    }
    return (int)a->n - (int)b->n;
}

static int legacy_name(const char *s)
{
    if (!s[0])
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void query__labels_string(const struct query__labels *ls, struct sbuf *sb)
{
    sbuf_addc(sb, '{');
    for (uint32_t i = 0; i < ls->n; i++) {
        if (i)
            sbuf_adds(sb, ", ");
        if (legacy_name(ls->l[i].name))
            sbuf_adds(sb, ls->l[i].name);
        else
            query__quote(sb, ls->l[i].name, strlen(ls->l[i].name));
        sbuf_addc(sb, '=');
        query__quote(sb, ls->l[i].value, strlen(ls->l[i].value));
    }
    sbuf_addc(sb, '}');
}

/* ---- maps keyed by label set ----------------------------------------------- */

void query__lsmap_init(struct query__ev *ev, struct query__lsmap *m, size_t expected)
{
    m->cap = 16;
    while (m->cap < expected * 2)
        m->cap *= 2;
    m->n = 0;
    m->key = query__zalloc(ev, m->cap * sizeof(*m->key));
    m->val = query__alloc(ev, m->cap * sizeof(*m->val));
}

size_t *query__lsmap_get(struct query__ev *ev, struct query__lsmap *m,
                         const struct query__labels *ls, int *found)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct query__lsmap g;
        query__lsmap_init(ev, &g, m->cap);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i])
                continue;
            size_t k = (size_t)m->key[i]->hash & (g.cap - 1);
            while (g.key[k])
                k = (k + 1) & (g.cap - 1);
            g.key[k] = m->key[i];
            g.val[k] = m->val[i];
        }
        g.n = m->n;
        query__lsmap_free(ev, m);
        *m = g;
    }
    size_t k = (size_t)ls->hash & (m->cap - 1);
    while (m->key[k] && m->key[k] != ls)
        k = (k + 1) & (m->cap - 1);
    *found = m->key[k] != NULL;
    if (!*found) {
        m->key[k] = ls;
        m->n++;
    }
    return &m->val[k];
}

void query__lsmap_free(struct query__ev *ev, struct query__lsmap *m)
{
    query__free(ev, m->key);
    query__free(ev, m->val);
    m->key = NULL;
    m->val = NULL;
}
