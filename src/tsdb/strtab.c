/*
 * strtab.c: string interning for the series index (see index.h). Each
 * distinct label name or value is stored once, NUL-terminated, in 64 KiB
 * blocks that are never moved or freed before the table, so pointers to
 * interned strings stay valid without a lock. Lookup is an open-addressing
 * table of ids probed by a 64-bit hash; each slot keeps 32 more bits of that
 * hash, so passing other strings costs no string compare. Also the two input checks the
 * index applies to every label: name syntax and UTF-8.
 */
#include "tsdb/index.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"
#include "util/util.h"

#define BLOCK_SIZE ((size_t)64 << 10)

/* Multiply-xorshift over 8-byte words, then a final avalanche. */
uint64_t tsdb__hash_bytes(const char *s, size_t len)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0x243f6a8885a308d3ull ^ (len * k);
    uint64_t w;
    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * k;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

void tsdb__strtab_init(struct tsdb__strtab *st)
{
    memset(st, 0, sizeof(*st));
}

void tsdb__strtab_release(struct tsdb__strtab *st)
{
    for (size_t i = 0; i < st->nblocks; i++)
        free(st->blocks[i]);
    free(st->blocks);
    free(st->ents);
    free(st->slots);
    memset(st, 0, sizeof(*st));
}

/*
 * Slot index holding the id of s, or of the empty slot where it belongs. A
 * slot is (high 32 bits of the hash) << 32 | (id + 1), so probing past other
 * strings reads only the slot array.
 */
static uint32_t probe(const struct tsdb__strtab *st, const char *s, size_t len, uint64_t h)
{
    uint32_t i = (uint32_t)h & st->mask, step = 0;
    uint64_t tag = h >> 32;
    for (;;) {
        uint64_t v = st->slots[i];
        if (v == 0)
            return i;
        if (v >> 32 == tag) {
            const struct tsdb__strent *e = &st->ents[(uint32_t)v - 1];
            if (e->len == len && memcmp(e->s, s, len) == 0)
                return i;
        }
        /* Triangular steps visit every slot of a power-of-two table. */
        i = (i + ++step) & st->mask;
    }
}

uint32_t tsdb__strtab_find(const struct tsdb__strtab *st, const char *s, size_t len)
{
    if (st->n == 0 || len >= UINT32_MAX)
        return TSDB__NOSTR;
    uint64_t v = st->slots[probe(st, s, len, tsdb__hash_bytes(s, len))];
    return v ? (uint32_t)v - 1 : TSDB__NOSTR;
}

static void rehash(struct tsdb__strtab *st, uint32_t nslots)
{
    free(st->slots);
    st->bytes -= st->mask ? ((size_t)st->mask + 1) * sizeof(*st->slots) : 0;
    st->slots = xcalloc(nslots, sizeof(*st->slots));
    st->mask = nslots - 1;
    st->bytes += (size_t)nslots * sizeof(*st->slots);
    for (size_t id = 0; id < st->n; id++) {
        const struct tsdb__strent *e = &st->ents[id];
        uint64_t h = tsdb__hash_bytes(e->s, e->len);
        uint32_t i = (uint32_t)h & st->mask, step = 0;
        while (st->slots[i])
            i = (i + ++step) & st->mask;
        st->slots[i] = (h >> 32) << 32 | (id + 1);
    }
}

/* Copy s[0..len) and a NUL into the current block (or a new one). */
static const char *store(struct tsdb__strtab *st, const char *s, size_t len)
{
    if (st->left < len + 1) {
        size_t size = len + 1 > BLOCK_SIZE ? len + 1 : BLOCK_SIZE;
        size_t old = st->blocks_cap;
        util_grow((void **)&st->blocks, &st->blocks_cap, st->nblocks + 1, sizeof(char *));
        st->bytes += (st->blocks_cap - old) * sizeof(char *);
        st->cur = xmalloc(size);
        st->blocks[st->nblocks++] = st->cur;
        st->left = size;
        st->bytes += size;
    }
    char *p = st->cur;
    memcpy(p, s, len);
    p[len] = '\0';
    st->cur += len + 1;
    st->left -= len + 1;
    return p;
}

uint32_t tsdb__strtab_intern(struct tsdb__strtab *st, const char *s, size_t len)
{
    /* Keep the load at or below 3/4. */
    if ((st->n + 1) * 4 > ((size_t)st->mask + 1) * 3 || st->mask == 0)
        rehash(st, st->mask ? (st->mask + 1) * 2 : 64);
    uint64_t h = tsdb__hash_bytes(s, len);
    uint32_t i = probe(st, s, len, h);
    if (st->slots[i])
        return (uint32_t)st->slots[i] - 1;
    size_t old = st->cap;
    util_grow((void **)&st->ents, &st->cap, st->n + 1, sizeof(*st->ents));
    st->bytes += (st->cap - old) * sizeof(*st->ents);
    struct tsdb__strent *e = &st->ents[st->n];
    e->s = store(st, s, len);
    e->len = (uint32_t)len;
    st->slots[i] = (h >> 32) << 32 | ++st->n;
    return (uint32_t)(st->n - 1);
}

int tsdb__label_name_valid(const char *s)
{
    if (!s)
        return 0;
    size_t i = 0;
    for (; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok || i >= TSDB_MAX_NAME_LEN)
            return 0;
    }
    return i > 0;
}

int tsdb__utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return 0;
        }
        if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi)
            return 0;
        for (size_t k = 2; k < n; k++)
            if ((s[k] & 0xc0) != 0x80)
                return 0;
        s += n;
    }
    return 1;
}
