/*
 * index_fuzz.c: libFuzzer target for the series index (src/tsdb/index.c,
 * strtab.c, matcher.c). Each input is a program:
 *   1. options (series and label caps), then label sets, valid or not (names
 *      and values from small alphabets or raw input bytes). Each
 *      get-or-create is checked against a mirror that applies the rules
 *      independently: the same error class, the same id for the same set, a
 *      new dense id otherwise, and labels that read back sorted, without the
 *      empty ones;
 *   2. selections of up to four random matchers (regexes built from
 *      fragments or raw bytes). Each regex's shortcut kind (literal set,
 *      prefix, ...) must agree with PCRE2 itself on every stored value, and
 *      every evaluation strategy must select exactly what a scan of the
 *      mirror selects;
 *   3. the label name and value listings must equal the mirror's.
 *
 * Built by fuzz/run.sh (deps: src/tsdb/strtab.c src/tsdb/index.c
 * src/tsdb/matcher.c src/util/util.c, plus -lpcre2-8); standalone:
 *   clang -fsanitize=fuzzer,address,undefined -Isrc fuzz/index_fuzz.c \
 *       src/tsdb/{strtab,index,matcher}.c src/util/util.c -lpcre2-8 -lpthread
 * (all of src/util/ links too).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tsdb/index.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_SERIES 64
#define MAX_IN     8  /* labels per input label set */
#define STRCAP     48 /* bytes per fuzzed string, NUL included */

/* Reads bytes off the input; zeros once it is used up. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static unsigned take(struct cursor *c)
{
    if (!c->left)
        return 0;
    c->left--;
    return *c->p++;
}

static const char *const names[] = {"__name__", "a",  "b", "job", "le", "_x",
                                    "Z9",       "1a", "",  "a-b", "é"};
#define NVALID_NAMES 7 /* names[0..7) are valid */

static const char *const values[] = {
    "",    "x",           "y",    "xy",       "foo",          "foobar", "a|b", ".*", "\n",
    "x\n", "caf\xc3\xa9", "\xff", "\xc0\xaf", "\xed\xa0\x80", "Foo",    "1",   "12", "  "};

static const char *const frags[] = {
    "a", "x", "y",  "f",   "o",  ".",  "*", "+",     "?",    "|",    "(",    ")",  "[",   "]",
    "^", "$", "\\", "\\d", ".*", ".+", "é", "{1,2}", "(?i)", "[xy]", "[^x]", "\n", "foo", "(?:"};

/* A string from the alphabet, or raw input bytes, into buf (NUL-terminated). */
static const char *pick(struct cursor *c, const char *const *alpha, size_t nalpha, char *buf)
{
    unsigned b = take(c);
    if (b < 224)
        return alpha[b % nalpha];
    size_t n = b % 16, k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)take(c);
        if (ch) /* C strings: a NUL would end the value early */
            buf[k++] = ch;
    }
    buf[k] = '\0';
    return buf;
}

static const char *pick_regex(struct cursor *c, char *buf)
{
    unsigned b = take(c);
    if (b >= 240)
        return pick(c, values, sizeof(values) / sizeof(values[0]), buf);
    size_t n = b % 6, len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *f = frags[take(c) % (sizeof(frags) / sizeof(frags[0]))];
        size_t fl = strlen(f);
        if (len + fl >= STRCAP)
            break;
        memcpy(buf + len, f, fl + 1);
        len += fl;
    }
    return buf;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TSDB_MAX_NAME_LEN || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == n;
}

/* UTF-8 check through PCRE2 (independent of tsdb__utf8_valid). */
static pcre2_code *utf_probe;
static pcre2_match_data *utf_md;

static int utf8_ok(const char *s)
{
    int r = pcre2_match(utf_probe, (PCRE2_SPTR)s, strlen(s), 0, 0, utf_md, NULL);
    return r >= 0 || r == PCRE2_ERROR_NOMATCH;
}

/* A series of the mirror: its labels sorted by name, empty values dropped. */
struct mseries {
    size_t n;
    char name[MAX_IN][STRCAP];
    char value[MAX_IN][STRCAP];
};

struct mirror {
    size_t n;
    struct mseries s[MAX_SERIES];
};

static int mseries_eq(const struct mseries *a, const struct mseries *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->name[i], b->name[i]) != 0 || strcmp(a->value[i], b->value[i]) != 0)
            return 0;
    return 1;
}

/* The value of label name in series s, "" if absent. */
static const char *mvalue(const struct mseries *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return s->value[i];
    return "";
}

static void add_series(struct tsdb__index *idx, struct mirror *m, struct cursor *c,
                       uint32_t max_series, uint32_t max_labels)
{
    size_t n = take(c) % (MAX_IN + 1);
    char buf[MAX_IN][2][STRCAP];
    struct tsdb__label l[MAX_IN];
    struct mseries want = {0};
    int valid = 1, dup = 0;
    size_t nonempty = 0;
    for (size_t i = 0; i < n; i++) {
        l[i].name = pick(c, names, sizeof(names) / sizeof(names[0]), buf[i][0]);
        l[i].value = pick(c, values, sizeof(values) / sizeof(values[0]), buf[i][1]);
        valid &= name_ok(l[i].name) && utf8_ok(l[i].value);
        if (!l[i].value[0] || !valid)
            continue;
        nonempty++;
        /* Insert sorted into want (capped at MAX_IN entries anyway). */
        size_t k = want.n++;
        while (k > 0 && strcmp(want.name[k - 1], l[i].name) > 0) {
            memcpy(want.name[k], want.name[k - 1], STRCAP);
            memcpy(want.value[k], want.value[k - 1], STRCAP);
            k--;
        }
        if (k > 0 && strcmp(want.name[k - 1], l[i].name) == 0)
            dup = 1;
        if (k + 1 < want.n && strcmp(want.name[k + 1], l[i].name) == 0)
            dup = 1;
        snprintf(want.name[k], STRCAP, "%s", l[i].name);
        snprintf(want.value[k], STRCAP, "%s", l[i].value);
    }
    uint32_t id = UINT32_MAX, before = tsdb__index_series_count(idx);
    int r = tsdb__index_get_or_create(idx, l, n, &id);
    if (!valid) {
        /* Which error depends on the order; the label limit may come first. */
        CHECK(r == TSDB__EBADNAME || r == TSDB__EBADVALUE || r == TSDB__ELABEL_LIMIT);
        CHECK(tsdb__index_series_count(idx) == before);
        return;
    }
    if (nonempty > max_labels) {
        CHECK(r == TSDB__ELABEL_LIMIT);
    } else if (nonempty == 0) {
        CHECK(r == TSDB__ENOLABELS);
    } else if (dup) {
        CHECK(r == TSDB__EDUPNAME);
    } else {
        size_t k = 0;
        while (k < m->n && !mseries_eq(&m->s[k], &want))
            k++;
        if (k < m->n) {
            CHECK(r == 0 && id == k);
        } else if (m->n == max_series) {
            CHECK(r == TSDB__ESERIES_LIMIT);
        } else {
            CHECK(r == 1 && id == m->n);
            m->s[m->n++] = want;
        }
        if (r >= 0) {
            struct tsdb__label got[TSDB_MAX_LABELS_LIMIT];
            CHECK(tsdb__index_labels(idx, id, got, TSDB_MAX_LABELS_LIMIT) == (int)want.n);
            for (size_t i = 0; i < want.n; i++)
                CHECK(strcmp(got[i].name, want.name[i]) == 0 &&
                      strcmp(got[i].value, want.value[i]) == 0);
            uint32_t id2;
            CHECK(tsdb__index_get(idx, l, n, &id2) == 0 && id2 == id);
        }
    }
    if (r < 0)
        CHECK(tsdb__index_series_count(idx) == before);
    CHECK(tsdb__index_series_count(idx) == m->n);
}

/* A regex's shortcut must agree with PCRE2 on s (compiled the way matcher.c documents). */
static void check_shortcut(struct tsdb__matcher *m, const char *s)
{
    if (m->type < TSDB__MATCH_RE || m->re_kind == TSDB__RE_GENERIC)
        return;
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)m->value, m->value_len,
                                   PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL |
                                       PCRE2_DOLLAR_ENDONLY,
                                   &err, &off, NULL);
    CHECK(re != NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int r = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    int want = r >= 0;
    if (m->type == TSDB__MATCH_NRE)
        want = !want;
    CHECK(tsdb__matcher_test(m, s, strlen(s)) == want);
}

static void run_select(struct tsdb__index *idx, const struct mirror *mi, struct cursor *c,
                       struct tsdb__sel *sel)
{
    struct tsdb__matcher ms[4];
    char buf[4][STRCAP];
    size_t nm = take(c) % 5, k;
    for (k = 0; k < nm; k++) {
        enum tsdb__match_type type = (enum tsdb__match_type)(take(c) % 4);
        const char *name = names[take(c) % NVALID_NAMES];
        const char *value = type >= TSDB__MATCH_RE
                                ? pick_regex(c, buf[k])
                                : pick(c, values, sizeof(values) / sizeof(values[0]), buf[k]);
        char err[256];
        int r = tsdb__matcher_compile(&ms[k], type, name, value, err, sizeof(err));
        if (r != 0) {
            CHECK(r == TSDB__EREGEX && type >= TSDB__MATCH_RE && strstr(err, "offset"));
            break;
        }
        CHECK(ms[k].matches_empty == tsdb__matcher_test(&ms[k], "", 0));
        check_shortcut(&ms[k], "");
        for (size_t i = 0; i < mi->n; i++)
            check_shortcut(&ms[k], mvalue(&mi->s[i], name));
    }
    if (k == nm) {
        int nonempty = 0;
        for (size_t i = 0; i < nm; i++)
            nonempty |= !ms[i].matches_empty;
        CHECK((tsdb__matchers_check(ms, nm) == 0) == nonempty);
        uint32_t want[MAX_SERIES];
        size_t nwant = 0;
        int limit = 0; /* a regex hit PCRE2's match limit: strategies may differ */
        for (size_t s = 0; s < mi->n; s++) {
            int ok = 1;
            for (size_t i = 0; i < nm && ok > 0; i++) {
                const char *v = mvalue(&mi->s[s], ms[i].name);
                ok = tsdb__matcher_test(&ms[i], v, strlen(v));
            }
            limit |= ok < 0;
            if (ok > 0)
                want[nwant++] = (uint32_t)s;
        }
        for (int force = TSDB__SEL_AUTO; force <= TSDB__SEL_FILTER && !limit; force++) {
            sel->force = force;
            CHECK(tsdb__index_select(idx, ms, nm, sel) == 0);
            CHECK(sel->n == nwant);
            CHECK(nwant == 0 || memcmp(sel->ids, want, nwant * sizeof(uint32_t)) == 0);
        }
    }
    for (size_t i = 0; i < k; i++)
        tsdb__matcher_release(&ms[i]);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The listings equal the mirror's distinct names and, per name, values. */
static void check_listings(struct tsdb__index *idx, const struct mirror *mi)
{
    const char *want[MAX_SERIES * MAX_IN];
    struct tsdb__strlist got;
    tsdb__strlist_init(&got);
    size_t n = 0;
    for (size_t s = 0; s < mi->n; s++)
        for (size_t i = 0; i < mi->s[s].n; i++)
            want[n++] = mi->s[s].name[i];
    qsort(want, n, sizeof(*want), str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(want[u - 1], want[i]) != 0)
            want[u++] = want[i];
    tsdb__index_label_names(idx, &got);
    CHECK(got.n == u);
    for (size_t i = 0; i < u; i++)
        CHECK(strcmp(got.s[i], want[i]) == 0);
    for (size_t ni = 0; ni < NVALID_NAMES; ni++) {
        size_t nv = 0;
        for (size_t s = 0; s < mi->n; s++) {
            const char *v = mvalue(&mi->s[s], names[ni]);
            if (v[0])
                want[nv++] = v;
        }
        qsort(want, nv, sizeof(*want), str_cmp);
        u = 0;
        for (size_t i = 0; i < nv; i++)
            if (u == 0 || strcmp(want[u - 1], want[i]) != 0)
                want[u++] = want[i];
        tsdb__index_label_values(idx, names[ni], &got);
        CHECK(got.n == u);
        for (size_t i = 0; i < u; i++)
            CHECK(strcmp(got.s[i], want[i]) == 0);
    }
    tsdb__strlist_release(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mirror mi; /* big: keep it off the stack */
    if (!utf_probe) {
        int err;
        PCRE2_SIZE off;
        utf_probe = pcre2_compile((PCRE2_SPTR) "", 0, PCRE2_UTF, &err, &off, NULL);
        utf_md = pcre2_match_data_create(1, NULL);
        CHECK(utf_probe && utf_md);
    }
    struct cursor c = {data, size};
    struct tsdb__index_opts o = {.max_series = 1 + take(&c) % MAX_SERIES,
                                 .max_labels = 1 + take(&c) % MAX_IN};
    struct tsdb__index *idx = tsdb__index_new(&o);
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    mi.n = 0;
    while (c.left) {
        unsigned op = take(&c);
        if (op < 160)
            add_series(idx, &mi, &c, o.max_series, o.max_labels);
        else
            run_select(idx, &mi, &c, &sel);
    }
    check_listings(idx, &mi);
    tsdb__sel_release(&sel);
    tsdb__index_free(idx);
    return 0;
}
