/*
 * index_test.c: the series index: string interning, get-or-create round
 * trips, limits and error codes, input validation, the four matchers with
 * Prometheus's empty-value semantics, regex anchoring and errors, listings,
 * random selections checked against a brute-force oracle under every
 * evaluation strategy, concurrent writers and readers, and the size and
 * speed of an index of 100,000 realistic series.
 */
#include "testutil.h"
#include "tsdb/index.h"

#include <malloc.h>
#include <pthread.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define MAXL 40

/* xorshift64*: fixed seeds keep every run the same. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rndn(size_t n)
{
    return (size_t)(rnd() % n);
}

/*
 * Parse "a=x,b=y" into labels (pointing into buf, a copy of spec). Values
 * cannot contain ','; "a=" is a label with an empty value.
 */
static size_t parse_labels(const char *spec, char *buf, size_t cap, struct tsdb__label *l)
{
    snprintf(buf, cap, "%s", spec);
    size_t n = 0;
    char *p = buf;
    while (*p && n < MAXL) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *eq = strchr(p, '=');
        assert_non_null(eq);
        *eq = '\0';
        l[n++] = (struct tsdb__label){p, eq + 1};
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

static int add(struct tsdb__index *idx, const char *spec, uint32_t *id)
{
    char buf[8192];
    struct tsdb__label l[MAXL];
    size_t n = parse_labels(spec, buf, sizeof(buf), l);
    return tsdb__index_get_or_create(idx, l, n, id);
}

static int get(struct tsdb__index *idx, const char *spec, uint32_t *id)
{
    char buf[8192];
    struct tsdb__label l[MAXL];
    size_t n = parse_labels(spec, buf, sizeof(buf), l);
    return tsdb__index_get(idx, l, n, id);
}

/* Series id's labels rendered as "a=x,b=y". */
static const char *render(struct tsdb__index *idx, uint32_t id)
{
    static char out[8192];
    struct tsdb__label l[TSDB_MAX_LABELS_LIMIT];
    int n = tsdb__index_labels(idx, id, l, ARRAY_SIZE(l));
    assert_true(n > 0);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s=%s", i ? "," : "", l[i].name,
                                l[i].value);
    return out;
}

/* Compile "name<op>value" (op one of = != =~ !~), failing the test on error. */
static void mc(struct tsdb__matcher *m, const char *spec)
{
    char name[256], err[256];
    size_t i = strspn(spec, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
    assert_true(i < sizeof(name));
    memcpy(name, spec, i);
    name[i] = '\0';
    const char *op = spec + i;
    enum tsdb__match_type t = TSDB__MATCH_EQ;
    if (strncmp(op, "=~", 2) == 0)
        t = TSDB__MATCH_RE;
    else if (strncmp(op, "!~", 2) == 0)
        t = TSDB__MATCH_NRE;
    else if (strncmp(op, "!=", 2) == 0)
        t = TSDB__MATCH_NE;
    else if (op[0] != '=')
        fail_msg("bad matcher spec %s", spec);
    const char *value = op + (t == TSDB__MATCH_EQ ? 1 : 2);
    int r = tsdb__matcher_compile(m, t, name, value, err, sizeof(err));
    if (r != 0)
        fail_msg("matcher %s: %s", spec, err);
}

/* Select with the matchers in specs (NULL-terminated) and render the ids as "0,2,5". */
static const char *select_str(struct tsdb__index *idx, int force, const char *const *specs)
{
    static char out[4096];
    struct tsdb__matcher ms[8];
    size_t n = 0;
    for (; specs[n]; n++)
        mc(&ms[n], specs[n]);
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    sel.force = force;
    assert_int_equal(tsdb__index_select(idx, ms, n, &sel), 0);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sel.n; i++)
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%u", i ? "," : "", sel.ids[i]);
    tsdb__sel_release(&sel);
    for (size_t i = 0; i < n; i++)
        tsdb__matcher_release(&ms[i]);
    return out;
}

static void test_strtab(void **state)
{
    (void)state;
    struct tsdb__strtab st;
    tsdb__strtab_init(&st);
    assert_int_equal(tsdb__strtab_find(&st, "x", 1), TSDB__NOSTR);
    assert_int_equal(tsdb__strtab_intern(&st, "", 0), 0);
    assert_int_equal(tsdb__strtab_intern(&st, "abc", 3), 1);
    const char *first = tsdb__strtab_str(&st, 1);
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        int len = snprintf(buf, sizeof(buf), "value-%d", i);
        assert_int_equal(tsdb__strtab_intern(&st, buf, (size_t)len), (uint32_t)i + 2);
    }
    /* A string longer than a block gets its own block. */
    char *big = xmalloc(100000);
    memset(big, 'z', 100000);
    uint32_t bid = tsdb__strtab_intern(&st, big, 100000);
    assert_int_equal(tsdb__strtab_len(&st, bid), 100000);
    assert_memory_equal(tsdb__strtab_str(&st, bid), big, 100000);
    free(big);
    for (int i = 0; i < 20000; i++) {
        int len = snprintf(buf, sizeof(buf), "value-%d", i);
        uint32_t id = tsdb__strtab_find(&st, buf, (size_t)len);
        assert_int_equal(id, (uint32_t)i + 2);
        assert_string_equal(tsdb__strtab_str(&st, id), buf);
        assert_int_equal(tsdb__strtab_intern(&st, buf, (size_t)len), id);
    }
    /* Interned strings never move. */
    assert_ptr_equal(tsdb__strtab_str(&st, 1), first);
    assert_string_equal(first, "abc");
    assert_int_equal(tsdb__strtab_find(&st, "ab", 2), TSDB__NOSTR);
    assert_int_equal(tsdb__strtab_find(&st, "abc", 3), 1);
    assert_int_equal(tsdb__strtab_find(&st, "", 0), 0);
    assert_int_equal(st.n, 20003);
    tsdb__strtab_release(&st);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct tsdb__index *idx = tsdb__index_new(NULL);
    uint32_t id = 99, id2 = 99;
    assert_int_equal(tsdb__index_series_count(idx), 0);
    assert_int_equal(get(idx, "__name__=up", &id), TSDB__ENOTFOUND);
    /* Input order does not matter; the index sorts by name. */
    assert_int_equal(add(idx, "job=node,__name__=up,instance=h1", &id), 1);
    assert_int_equal(id, 0);
    assert_string_equal(render(idx, 0), "__name__=up,instance=h1,job=node");
    /* Idempotent, whatever the order, and an empty value is an absent label. */
    assert_int_equal(add(idx, "__name__=up,instance=h1,job=node", &id2), 0);
    assert_int_equal(id2, 0);
    assert_int_equal(add(idx, "instance=h1,zone=,__name__=up,job=node", &id2), 0);
    assert_int_equal(id2, 0);
    assert_int_equal(get(idx, "job=node,instance=h1,__name__=up", &id2), 0);
    assert_int_equal(id2, 0);
    /* A subset, a superset or another value is another series. */
    assert_int_equal(get(idx, "__name__=up,job=node", &id2), TSDB__ENOTFOUND);
    assert_int_equal(get(idx, "__name__=up,job=node,instance=h1,x=y", &id2), TSDB__ENOTFOUND);
    assert_int_equal(get(idx, "__name__=up,job=node,instance=h2", &id2), TSDB__ENOTFOUND);
    assert_int_equal(tsdb__index_series_count(idx), 1);
    assert_int_equal(add(idx, "__name__=up,job=node", &id), 1);
    assert_int_equal(id, 1);
    assert_int_equal(add(idx, "__name__=up,job=node,instance=h2", &id), 1);
    assert_int_equal(id, 2);
    /* A value that is another label's name, and a name used as a value. */
    assert_int_equal(add(idx, "__name__=job,up=instance", &id), 1);
    assert_int_equal(id, 3);
    assert_string_equal(render(idx, 3), "__name__=job,up=instance");
    assert_int_equal(add(idx, "__name__=caf\xc3\xa9,v=\xe2\x82\xac \xf0\x9f\x98\x80", &id), 1);
    assert_string_equal(render(idx, 4), "__name__=caf\xc3\xa9,v=\xe2\x82\xac \xf0\x9f\x98\x80");
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(get(idx, render(idx, i), &id2), 0);
        assert_int_equal(id2, i);
    }
    /* Labels: out-of-range ids and short output arrays. */
    struct tsdb__label l[2];
    assert_int_equal(tsdb__index_labels(idx, 5, l, 2), TSDB__EBADARG);
    assert_int_equal(tsdb__index_labels(idx, UINT32_MAX, l, 2), TSDB__EBADARG);
    assert_int_equal(tsdb__index_labels(idx, 0, l, 2), TSDB__ELABEL_LIMIT);
    assert_int_equal(tsdb__index_labels(idx, 1, l, 2), 2);
    tsdb__index_free(idx);
}

static void test_limits(void **state)
{
    (void)state;
    struct tsdb__index_opts o = {.max_series = 3, .max_labels = 3};
    struct tsdb__index *idx = tsdb__index_new(&o);
    struct tsdb__index_stats before, after;
    uint32_t id;
    assert_int_equal(add(idx, "__name__=a", &id), 1);
    assert_int_equal(add(idx, "__name__=b", &id), 1);
    assert_int_equal(add(idx, "__name__=c,x=1", &id), 1);
    tsdb__index_stats(idx, &before);
    assert_int_equal(add(idx, "__name__=d", &id), TSDB__ESERIES_LIMIT);
    assert_int_equal(add(idx, "__name__=c,x=2", &id), TSDB__ESERIES_LIMIT);
    assert_int_equal(add(idx, "__name__=c,fresh=1", &id), TSDB__ESERIES_LIMIT);
    /* A refusal leaves no trace: no strings, names or values. */
    tsdb__index_stats(idx, &after);
    assert_int_equal(after.series, 3);
    assert_int_equal(after.strings, before.strings);
    assert_int_equal(after.names, before.names);
    assert_int_equal(after.pairs, before.pairs);
    struct tsdb__strlist sl;
    tsdb__strlist_init(&sl);
    tsdb__index_label_values(idx, "x", &sl);
    assert_int_equal(sl.n, 1);
    tsdb__index_label_values(idx, "fresh", &sl);
    assert_int_equal(sl.n, 0);
    tsdb__strlist_release(&sl);
    /* Existing series are still found when the index is full. */
    assert_int_equal(add(idx, "__name__=c,x=1", &id), 0);
    assert_int_equal(id, 2);
    /* Labels per series: empty values do not count. */
    assert_int_equal(add(idx, "__name__=a,b=1,c=2,d=3", &id), TSDB__ELABEL_LIMIT);
    assert_int_equal(add(idx, "__name__=a,b=,c=,d=", &id), 0);
    tsdb__index_free(idx);

    /* The defaults: 32 labels. */
    idx = tsdb__index_new(NULL);
    char spec[2048];
    size_t len = (size_t)snprintf(spec, sizeof(spec), "__name__=m");
    for (int i = 1; i < 32; i++)
        len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",l%02d=v", i);
    assert_int_equal(add(idx, spec, &id), 1);
    assert_int_equal(tsdb__index_labels(idx, id, (struct tsdb__label[32]){{0}}, 32), 32);
    snprintf(spec + len, sizeof(spec) - len, ",l99=v");
    assert_int_equal(add(idx, spec, &id), TSDB__ELABEL_LIMIT);

    /* Value and name lengths. */
    char *v = xmalloc(TSDB_MAX_VALUE_LEN + 2);
    memset(v, 'v', TSDB_MAX_VALUE_LEN + 1);
    v[TSDB_MAX_VALUE_LEN] = '\0';
    struct tsdb__label l[2] = {{"__name__", "m"}, {"big", v}};
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), 1);
    v[TSDB_MAX_VALUE_LEN] = 'v';
    v[TSDB_MAX_VALUE_LEN + 1] = '\0';
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), TSDB__EBADVALUE);
    free(v);
    char name[TSDB_MAX_NAME_LEN + 2];
    memset(name, 'n', sizeof(name));
    name[TSDB_MAX_NAME_LEN] = '\0';
    l[1] = (struct tsdb__label){name, "x"};
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), 1);
    name[TSDB_MAX_NAME_LEN] = 'n';
    name[TSDB_MAX_NAME_LEN + 1] = '\0';
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), TSDB__EBADNAME);

    /* Malformed label sets. */
    assert_int_equal(add(idx, "__name__=m,a=1,a=2", &id), TSDB__EDUPNAME);
    assert_int_equal(add(idx, "a=1,__name__=m,a=1", &id), TSDB__EDUPNAME);
    assert_int_equal(add(idx, "a=1,__name__=m,a=", &id), 1); /* the empty one is absent */
    assert_int_equal(add(idx, "a=", &id), TSDB__ENOLABELS);
    assert_int_equal(tsdb__index_get_or_create(idx, NULL, 0, &id), TSDB__ENOLABELS);
    assert_int_equal(tsdb__index_get(idx, l, 0, &id), TSDB__ENOLABELS);
    const char *bad_utf8[] = {"\xff",
                              "a\x80",
                              "\xc0\xaf",
                              "\xe0\x80\xaf",
                              "\xed\xa0\x80",
                              "\xf4\x90\x80\x80",
                              "\xf8\x88\x80\x80\x80",
                              "\xc3",
                              "\xe2\x82"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_utf8); i++) {
        l[1] = (struct tsdb__label){"v", bad_utf8[i]};
        assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), TSDB__EBADVALUE);
        assert_int_equal(tsdb__index_get(idx, l, 2, &id), TSDB__EBADVALUE);
    }
    l[1] = (struct tsdb__label){"v", NULL};
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), TSDB__EBADVALUE);
    l[1] = (struct tsdb__label){NULL, "x"};
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), TSDB__EBADNAME);
    assert_int_equal(tsdb__index_series_count(idx), 4);

    /* Every code has its own message. */
    int codes[] = {TSDB__ESERIES_LIMIT, TSDB__ELABEL_LIMIT, TSDB__EBADNAME,  TSDB__EBADVALUE,
                   TSDB__EDUPNAME,      TSDB__ENOLABELS,    TSDB__ENOTFOUND, TSDB__EREGEX,
                   TSDB__EMATCH,        TSDB__EEMPTYSEL,    TSDB__EBADARG};
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(tsdb__index_strerror(codes[i]), tsdb__index_strerror(codes[k]));
    tsdb__index_free(idx);
}

static void test_names(void **state)
{
    (void)state;
    const char *good[] = {"a", "_", "__name__", "A_b9", "_9", "le"};
    const char *bad[] = {"", "9a", "a-b", "a:b", "a b", "caf\xc3\xa9", "a.b", "a\n", "$"};
    struct tsdb__index *idx = tsdb__index_new(NULL);
    struct tsdb__matcher m;
    uint32_t id;
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        assert_true(tsdb__label_name_valid(good[i]));
        struct tsdb__label l = {good[i], "x"};
        assert_true(tsdb__index_get_or_create(idx, &l, 1, &id) >= 0);
        assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_EQ, good[i], "x", NULL, 0), 0);
        tsdb__matcher_release(&m);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_false(tsdb__label_name_valid(bad[i]));
        struct tsdb__label l = {bad[i], "x"};
        assert_int_equal(tsdb__index_get_or_create(idx, &l, 1, &id), TSDB__EBADNAME);
        char err[128] = "";
        assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_EQ, bad[i], "x", err, sizeof(err)),
                         TSDB__EBADNAME);
        assert_true(err[0] != '\0');
        tsdb__matcher_release(&m); /* harmless after a failure */
    }
    assert_false(tsdb__label_name_valid(NULL));
    assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_EQ, "a", NULL, NULL, 0), TSDB__EBADARG);
    assert_int_equal(tsdb__matcher_compile(&m, (enum tsdb__match_type)7, "a", "x", NULL, 0),
                     TSDB__EBADARG);
    assert_int_equal(tsdb__index_series_count(idx), ARRAY_SIZE(good));
    tsdb__index_free(idx);
}

static void test_utf8(void **state)
{
    (void)state;
    const char *good[] = {"",
                          "abc",
                          "\xc2\x80",
                          "\xdf\xbf",
                          "\xe0\xa0\x80",
                          "\xed\x9f\xbf",
                          "\xee\x80\x80",
                          "\xef\xbf\xbf",
                          "\xf0\x90\x80\x80",
                          "\xf4\x8f\xbf\xbf"};
    const char *bad[] = {"\x80",
                         "\xc1\xbf",
                         "\xc2",
                         "\xc2\x41",
                         "\xe0\x9f\xbf",
                         "\xed\xa0\x80",
                         "\xed\xbf\xbf",
                         "\xf0\x8f\xbf\xbf",
                         "\xf4\x90\x80\x80",
                         "\xf5\x80\x80\x80",
                         "\xfe",
                         "\xe2\x82\x41"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        assert_true(tsdb__utf8_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_false(tsdb__utf8_valid(bad[i], strlen(bad[i])));
    /* Length-bounded: a NUL inside is a character, a cut sequence is not. */
    assert_true(tsdb__utf8_valid("a\0b", 3));
    assert_false(tsdb__utf8_valid("\xe2\x82\xac", 2));
}

/* Series for the fixed semantics checks (ids in comments). */
static struct tsdb__index *semantics_index(void)
{
    struct tsdb__index *idx = tsdb__index_new(NULL);
    const char *series[] = {
        "__name__=m,a=x",      /* 0 */
        "__name__=m,a=y",      /* 1 */
        "__name__=m",          /* 2 */
        "__name__=m,a=xy,b=1", /* 3 */
        "__name__=n,b=2",      /* 4 */
        "__name__=n,a=foobar", /* 5 */
        "__name__=n,a=foo",    /* 6 */
    };
    uint32_t id;
    for (size_t i = 0; i < ARRAY_SIZE(series); i++) {
        assert_int_equal(add(idx, series[i], &id), 1);
        assert_int_equal(id, i);
    }
    return idx;
}

static void test_matcher_semantics(void **state)
{
    (void)state;
    struct tsdb__index *idx = semantics_index();
    static const struct {
        const char *m[4];
        const char *want;
    } cases[] = {
        {{"a="}, "2,4"},
        {{"a!="}, "0,1,3,5,6"},
        {{"a=~.*"}, "0,1,2,3,4,5,6"},
        {{"a=~.+"}, "0,1,3,5,6"},
        {{"a!~.*"}, ""},
        {{"a!~.+"}, "2,4"},
        {{"a=~"}, "2,4"},
        {{"a!~"}, "0,1,3,5,6"},
        {{"a=x"}, "0"},
        {{"a!=x"}, "1,2,3,4,5,6"},
        {{"a=nope"}, ""},
        {{"a!=nope"}, "0,1,2,3,4,5,6"},
        {{"a=~x|y"}, "0,1"},
        {{"a=~y|x|y"}, "0,1"},
        {{"a!~x|y"}, "2,3,4,5,6"},
        {{"a=~x|"}, "0,2,4"},
        {{"a!~x|"}, "1,3,5,6"},
        {{"a=~x.*"}, "0,3"},
        {{"a!~x.*"}, "1,2,4,5,6"},
        {{"a=~foo"}, "6"}, /* anchored: not foobar */
        {{"a=~(foo|x)?"}, "0,2,4,6"},
        {{"a=~[a-z]"}, "0,1"},
        {{"zz="}, "0,1,2,3,4,5,6"},
        {{"zz!="}, ""},
        {{"zz=x"}, ""},
        {{"zz!=x"}, "0,1,2,3,4,5,6"},
        {{"zz=~x"}, ""},
        {{"zz!~x"}, "0,1,2,3,4,5,6"},
        {{"zz=~.*"}, "0,1,2,3,4,5,6"},
        {{"__name__=m", "a="}, "2"},
        {{"__name__=m", "a!~x"}, "1,2,3"},
        {{"__name__=~m|n", "b!="}, "3,4"},
        {{"__name__=n", "a=~foo.*", "b="}, "5,6"},
        {{"__name__=m", "__name__=n"}, ""},
        {{"__name__=m", "a=x", "a=~x"}, "0"},
        {{"a!=x", "b="}, "1,2,5,6"},
        {{"b=", "a=", "zz="}, "2"},
        {{NULL}, "0,1,2,3,4,5,6"},
    };
    for (int force = TSDB__SEL_AUTO; force <= TSDB__SEL_FILTER; force++)
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
            const char *got = select_str(idx, force, cases[i].m);
            if (strcmp(got, cases[i].want) != 0)
                fail_msg("case %zu (%s ...), strategy %d: got {%s}, want {%s}", i,
                         cases[i].m[0] ? cases[i].m[0] : "none", force, got, cases[i].want);
        }
    tsdb__index_free(idx);
}

static int test1(const char *re, const char *s)
{
    struct tsdb__matcher m;
    mc(&m, re);
    int r = tsdb__matcher_test(&m, s, strlen(s));
    tsdb__matcher_release(&m);
    return r;
}

static void test_regex_anchoring(void **state)
{
    (void)state;
    assert_int_equal(test1("a=~foo", "foo"), 1);
    assert_int_equal(test1("a=~foo", "foobar"), 0);
    assert_int_equal(test1("a=~foo", "xfoo"), 0);
    assert_int_equal(test1("a=~fo.", "foobar"), 0);
    assert_int_equal(test1("a=~foo.*", "foobar"), 1);
    assert_int_equal(test1("a=~.*bar", "foobar"), 1);
    assert_int_equal(test1("a=~bar", "foobar"), 0);
    assert_int_equal(test1("a=~a|ab", "ab"), 1); /* the whole value, not the first alternative */
    assert_int_equal(test1("a=~ab|a", "a"), 1);
    assert_int_equal(test1("a=~(a|ab)(c|bcd)", "abcd"), 1);
    assert_int_equal(test1("a=~^foo$", "foo"), 1);  /* explicit anchors are harmless */
    assert_int_equal(test1("a=~foo$", "foo\n"), 0); /* $ only at the very end */
    assert_int_equal(test1("a=~a.b", "a\nb"), 1);   /* . matches newline, as (?s) */
    assert_int_equal(test1("a=~.*", "line1\nline2"), 1);
    assert_int_equal(test1("a=~(?i)FOO", "foo"), 1);
    assert_int_equal(test1("a=~\\d+", "123"), 1);
    assert_int_equal(test1("a=~\\d+", "\xd9\xa1"), 0); /* ASCII \d, as RE2 */
    assert_int_equal(test1("a=~.", "\xc3\xa9"), 1);    /* one character, two bytes */
    assert_int_equal(test1("a=~..", "\xc3\xa9"), 0);
    assert_int_equal(test1("a=~caf\xc3\xa9|tea", "caf\xc3\xa9"), 1);
    assert_int_equal(test1("a!~foo", "foobar"), 1);
    assert_int_equal(test1("a!~foo", "foo"), 0);
    /* Not UTF-8: matches no regex, whatever the shortcut. */
    assert_int_equal(test1("a=~.*", "\xff"), 0);
    assert_int_equal(test1("a=~.+", "\xff"), 0);
    assert_int_equal(test1("a!~.*", "\xff"), 1);
    assert_int_equal(test1("a=\xff", "\xff"), 1);

    /* Shortcuts the index relies on. */
    struct tsdb__matcher m;
    mc(&m, "a=~x|y|x");
    assert_int_equal(m.re_kind, TSDB__RE_SET);
    assert_int_equal(m.nset, 2);
    assert_false(m.matches_empty);
    tsdb__matcher_release(&m);
    mc(&m, "a=~x|");
    assert_int_equal(m.re_kind, TSDB__RE_SET);
    assert_true(m.matches_empty);
    tsdb__matcher_release(&m);
    mc(&m, "a=~.*");
    assert_int_equal(m.re_kind, TSDB__RE_ANY);
    tsdb__matcher_release(&m);
    mc(&m, "a=~.+");
    assert_int_equal(m.re_kind, TSDB__RE_NONEMPTY);
    tsdb__matcher_release(&m);
    mc(&m, "a=~x.y");
    assert_int_equal(m.re_kind, TSDB__RE_GENERIC);
    tsdb__matcher_release(&m);
    static const struct {
        const char *spec;
        enum tsdb__re_kind kind;
        const char *yes, *no;
    } affixes[] = {
        {"a=~foo.*", TSDB__RE_PREFIX, "foo\nbar", "xfoo"},
        {"a=~.*bar", TSDB__RE_SUFFIX, "foo\nbar", "bar\n"},
        {"a=~.*oo.*", TSDB__RE_CONTAINS, "foo", "fo"},
        {"a=~.*.*", TSDB__RE_CONTAINS, "", NULL},
        {"a=~.*caf\xc3\xa9", TSDB__RE_SUFFIX, "un caf\xc3\xa9", "caf"},
        {"a=~f\\.*", TSDB__RE_GENERIC, "f...", "fo"},
        {"a=~.*?", TSDB__RE_GENERIC, "x", NULL},
        {"a=~x+.*", TSDB__RE_GENERIC, "xxy", "y"},
        {"a=~.*a|b", TSDB__RE_GENERIC, "ba", "ab"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(affixes); i++) {
        mc(&m, affixes[i].spec);
        assert_int_equal(m.re_kind, affixes[i].kind);
        assert_int_equal(tsdb__matcher_test(&m, affixes[i].yes, strlen(affixes[i].yes)), 1);
        if (affixes[i].no)
            assert_int_equal(tsdb__matcher_test(&m, affixes[i].no, strlen(affixes[i].no)), 0);
        tsdb__matcher_release(&m);
    }

    /* Through the index: foo does not select foobar. */
    struct tsdb__index *idx = semantics_index();
    assert_string_equal(select_str(idx, 0, (const char *[]){"a=~foo", NULL}), "6");
    assert_string_equal(select_str(idx, 0, (const char *[]){"a=~fo", NULL}), "");
    assert_string_equal(select_str(idx, 0, (const char *[]){"a=~.*bar", NULL}), "5");
    tsdb__index_free(idx);
}

static void expect_bad_regex(const char *pattern, const char *reason, const char *where)
{
    struct tsdb__matcher m;
    char err[512] = "";
    assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_RE, "a", pattern, err, sizeof(err)),
                     TSDB__EREGEX);
    if (!strstr(err, reason) || !strstr(err, where))
        fail_msg("regex %s: message \"%s\" lacks \"%s\" or \"%s\"", pattern, err, reason, where);
    tsdb__matcher_release(&m);
    assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_NRE, "a", pattern, NULL, 0),
                     TSDB__EREGEX);
}

static void test_bad_regex(void **state)
{
    (void)state;
    expect_bad_regex("a(b", "missing closing parenthesis", "at offset 3");
    expect_bad_regex("*a", "quantifier does not follow", "at offset 0");
    expect_bad_regex("a)|(b", "unmatched closing parenthesis", "at offset 1");
    expect_bad_regex("foo\\", "\\ at end of pattern", "at offset 4");
    expect_bad_regex("[z-a]", "range out of order", "at offset 3");
    expect_bad_regex("ab\xff", "UTF-8", "at offset 2");
    expect_bad_regex("\\C", "\\C is disabled", "at offset 2");
    char *big = xmalloc(TSDB_MAX_REGEX_LEN + 2);
    memset(big, 'a', TSDB_MAX_REGEX_LEN + 1);
    big[TSDB_MAX_REGEX_LEN + 1] = '\0';
    expect_bad_regex(big, "longer than", "label a");
    free(big);
    /* The message quotes the pattern, cut at 64 bytes. */
    struct tsdb__matcher m;
    char err[512];
    tsdb__matcher_compile(&m, TSDB__MATCH_RE, "job",
                          "(xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                          err, sizeof(err));
    assert_non_null(strstr(err, "xxx...\" for label job"));
    assert_non_null(strstr(err, "at offset 71"));
    /* Equality matchers take any value, regex metacharacters included. */
    assert_int_equal(tsdb__matcher_compile(&m, TSDB__MATCH_EQ, "a", "a(b", NULL, 0), 0);
    tsdb__matcher_release(&m);
}

/* A catastrophic pattern is stopped by the match limit instead of hanging the query. */
static void test_match_limit(void **state)
{
    (void)state;
    struct tsdb__index *idx = tsdb__index_new(NULL);
    uint32_t id;
    char v[64];
    memset(v, 'a', 40);
    snprintf(v + 40, sizeof(v) - 40, "!");
    struct tsdb__label l[2] = {{"__name__", "m"}, {"a", v}};
    assert_int_equal(tsdb__index_get_or_create(idx, l, 2, &id), 1);
    struct tsdb__matcher ms[2];
    mc(&ms[0], "__name__=m");
    mc(&ms[1], "a=~(a|aa)+(?!x)b|(?=a)(a*)*\\1c");
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    for (int force = 0; force <= TSDB__SEL_FILTER; force++) {
        sel.force = force;
        assert_int_equal(tsdb__index_select(idx, ms, 2, &sel), TSDB__EMATCH);
        assert_int_equal(sel.n, 0);
    }
    tsdb__sel_release(&sel);
    tsdb__matcher_release(&ms[0]);
    tsdb__matcher_release(&ms[1]);
    tsdb__index_free(idx);
}

static void test_matchers_check(void **state)
{
    (void)state;
    static const struct {
        const char *m[3];
        int ok;
    } cases[] = {
        {{"a="}, 0},        {{"a=", "b=x"}, 1},     {{"a=~.*"}, 0}, {{"a=~.+"}, 1},
        {{"a!="}, 1},       {{"a!~x"}, 0},          {{"a!~.*"}, 1}, {{"a=~x|"}, 0},
        {{"a=~x"}, 1},      {{"a!=x", "b=~.*"}, 0}, {{"a=~x*"}, 0}, {{"a=~x+"}, 1},
        {{"a!~", "b="}, 1},
    };
    struct tsdb__matcher ms[3];
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t n = 0;
        for (; n < 3 && cases[i].m[n]; n++)
            mc(&ms[n], cases[i].m[n]);
        assert_int_equal(tsdb__matchers_check(ms, n), cases[i].ok ? 0 : TSDB__EEMPTYSEL);
        for (size_t k = 0; k < n; k++)
            tsdb__matcher_release(&ms[k]);
    }
    assert_int_equal(tsdb__matchers_check(NULL, 0), TSDB__EEMPTYSEL);
}

static void test_listing(void **state)
{
    (void)state;
    struct tsdb__index *idx = semantics_index();
    struct tsdb__strlist l;
    tsdb__strlist_init(&l);
    tsdb__index_label_names(idx, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.s[0], "__name__");
    assert_string_equal(l.s[1], "a");
    assert_string_equal(l.s[2], "b");
    tsdb__index_label_values(idx, "a", &l);
    const char *want[] = {"foo", "foobar", "x", "xy", "y"};
    assert_int_equal(l.n, ARRAY_SIZE(want));
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.s[i], want[i]);
    tsdb__index_label_values(idx, "__name__", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.s[0], "m");
    assert_string_equal(l.s[1], "n");
    tsdb__index_label_values(idx, "nope", &l);
    assert_int_equal(l.n, 0);
    /* A string known only as a value is no label name. */
    tsdb__index_label_values(idx, "x", &l);
    assert_int_equal(l.n, 0);
    tsdb__index_label_values(idx, NULL, &l);
    assert_int_equal(l.n, 0);
    tsdb__strlist_release(&l);
    struct tsdb__index *empty = tsdb__index_new(NULL);
    tsdb__index_label_names(empty, &l);
    assert_int_equal(l.n, 0);
    tsdb__strlist_release(&l);
    tsdb__index_free(empty);
    tsdb__index_free(idx);
}

/* Forgetting series: the rest renumbered in order, postings, strings and the limit follow. */
static void test_compact(void **state)
{
    (void)state;
    struct tsdb__index_opts o = {.max_series = 8};
    struct tsdb__index *idx = tsdb__index_new(&o);
    const char *specs[] = {
        "__name__=cpu,pid=1", "__name__=cpu,pid=2",   "__name__=mem,pid=1", "__name__=cpu,pid=3",
        "__name__=mem,pid=3", "__name__=up,job=node", "__name__=cpu,pid=4", "__name__=mem,pid=4",
    };
    uint32_t id;
    for (size_t i = 0; i < ARRAY_SIZE(specs); i++) {
        assert_int_equal(add(idx, specs[i], &id), 1);
        assert_int_equal(id, i);
    }
    assert_int_equal(add(idx, "__name__=cpu,pid=5", &id), TSDB__ESERIES_LIMIT);
    struct tsdb__index_stats before, after;
    tsdb__index_stats(idx, &before);
    /* Processes 2 and 3 are gone. */
    const uint8_t keep[] = {1, 0, 1, 0, 0, 1, 1, 1};
    uint32_t newid[ARRAY_SIZE(keep)];
    assert_int_equal(tsdb__index_compact(idx, keep, newid), 5);
    const uint32_t want[] = {0, UINT32_MAX, 1, UINT32_MAX, UINT32_MAX, 2, 3, 4};
    for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
        assert_int_equal(newid[i], want[i]);
        if (keep[i])
            assert_string_equal(render(idx, newid[i]), specs[i]);
    }
    assert_int_equal(tsdb__index_series_count(idx), 5);
    assert_int_equal(get(idx, "__name__=cpu,pid=2", &id), TSDB__ENOTFOUND);
    assert_int_equal(get(idx, "__name__=mem,pid=4", &id), 0);
    assert_int_equal(id, 4);
    /* Postings and the listings speak of the survivors only. */
    assert_string_equal(select_str(idx, 0, (const char *const[]){"__name__=cpu", NULL}), "0,3");
    assert_string_equal(select_str(idx, 0, (const char *const[]){"pid=~[23]", NULL}), "");
    assert_string_equal(select_str(idx, 0, (const char *const[]){"pid!=1", NULL}), "2,3,4");
    struct tsdb__strlist l;
    tsdb__strlist_init(&l);
    tsdb__index_label_values(idx, "pid", &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.s[0], "1");
    assert_string_equal(l.s[1], "4");
    tsdb__strlist_release(&l);
    tsdb__index_stats(idx, &after);
    assert_int_equal(after.series, 5);
    assert_int_equal(after.pairs, before.pairs - 2);     /* pid=2, pid=3 */
    assert_int_equal(after.strings, before.strings - 2); /* "2", "3" */
    /* Room again under the cap; new series continue the dense ids. */
    assert_int_equal(add(idx, "__name__=cpu,pid=5", &id), 1);
    assert_int_equal(id, 5);
    assert_int_equal(add(idx, "__name__=cpu,pid=2", &id), 1);
    assert_int_equal(id, 6);
    /* Forgetting everything leaves an empty, working index. */
    uint8_t none[7] = {0};
    uint32_t ids[7];
    assert_int_equal(tsdb__index_compact(idx, none, ids), 0);
    assert_int_equal(tsdb__index_series_count(idx), 0);
    assert_int_equal(add(idx, "__name__=up,job=node", &id), 1);
    assert_int_equal(id, 0);
    tsdb__index_free(idx);
}

/* ------------------------------------------------------------ oracle */

static const char *const o_names[] = {"__name__", "a", "b", "c", "d"};
static const char *const o_values[] = {"",    "x",      "y",    "xy",  "yx",          "xx",
                                       "foo", "foobar", "a\nb", "x\n", "caf\xc3\xa9", "X",
                                       "1",   "12",     "a|b",  "."};
static const char *const o_regexes[] = {
    "x",
    "y",
    "x|y",
    ".*",
    ".+",
    "x.*",
    ".*y",
    "",
    "x|",
    "(x|y)+",
    "[xy]",
    "[^x]*",
    "foo",
    "fo+",
    "caf.",
    "a.b",
    "(?i)x",
    "x*",
    "xy|yx|foo",
    "x\\n",
    "\\d+",
    "1|12",
    "a\\|b",
    "\\.",
    "(foo)?bar|foo",
    "y|x|y",
    "[^y]+",
    "(?:x|yx)x?",
    "|x|y",
    "foo.+",
    "(a|b|x|y)\\|?",
    "X|x",
    ".",
    "..",
    ".*x.*",
    ".*\n",
    "fo.*",
    ".*\n.*",
    ".*o",
    ".*.*",
    "y.*",
    ".*caf\xc3\xa9",
};

struct o_series {
    const char *v[ARRAY_SIZE(o_names)]; /* "" for absent */
};

/* Independent regex oracle: Prometheus's formulation, ^(?s:re)$ (here \A...\z). */
static int oracle_regex(const char *re, const char *s)
{
    char pat[512];
    snprintf(pat, sizeof(pat), "\\A(?s:%s)\\z", re);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    assert_non_null(code);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int r = pcre2_match(code, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    assert_true(r >= 0 || r == PCRE2_ERROR_NOMATCH);
    return r >= 0;
}

struct o_matcher {
    enum tsdb__match_type type;
    size_t name;
    const char *value;
};

static int oracle_test(const struct o_matcher *m, const char *v)
{
    switch (m->type) {
    case TSDB__MATCH_EQ:
        return strcmp(v, m->value) == 0;
    case TSDB__MATCH_NE:
        return strcmp(v, m->value) != 0;
    case TSDB__MATCH_RE:
        return oracle_regex(m->value, v);
    case TSDB__MATCH_NRE:
        return !oracle_regex(m->value, v);
    }
    return -1;
}

/*
 * One round: a random index of up to nmax series (skewed alphabets, so
 * there are both big and tiny postings lists) and nsel random selections,
 * each checked under every strategy against a scan of all series.
 */
static void oracle_round(size_t nmax, size_t nsel)
{
    struct tsdb__index *idx = tsdb__index_new(NULL);
    struct o_series *mirror = xcalloc(nmax, sizeof(*mirror));
    size_t n = 0;
    /* Per round, how likely each label is and how many values it draws from. */
    size_t present[ARRAY_SIZE(o_names)], nvals[ARRAY_SIZE(o_names)];
    for (size_t k = 0; k < ARRAY_SIZE(o_names); k++) {
        present[k] = k == 0 ? 9 : rndn(11);
        nvals[k] = 1 + rndn(ARRAY_SIZE(o_values));
    }
    for (size_t i = 0; i < nmax; i++) {
        struct tsdb__label l[ARRAY_SIZE(o_names)];
        struct o_series s;
        size_t nl = 0;
        for (size_t k = 0; k < ARRAY_SIZE(o_names); k++) {
            s.v[k] = rndn(10) < present[k] ? o_values[rndn(nvals[k])] : "";
            /* Sometimes pass the empty value explicitly: it must mean "absent". */
            if (s.v[k][0] || rndn(4) == 0)
                l[nl++] = (struct tsdb__label){o_names[k], s.v[k]};
        }
        /* Shuffle: the index sorts. */
        for (size_t k = nl; k > 1; k--) {
            size_t j = rndn(k);
            struct tsdb__label t = l[k - 1];
            l[k - 1] = l[j];
            l[j] = t;
        }
        uint32_t id;
        int r = tsdb__index_get_or_create(idx, l, nl, &id);
        int empty = 1;
        for (size_t k = 0; k < ARRAY_SIZE(o_names); k++)
            empty &= s.v[k][0] == '\0';
        if (empty) {
            assert_int_equal(r, TSDB__ENOLABELS);
            continue;
        }
        if (r == 1) {
            assert_int_equal(id, n);
            mirror[n++] = s;
        } else {
            assert_int_equal(r, 0);
            assert_true(id < n);
            for (size_t k = 0; k < ARRAY_SIZE(o_names); k++)
                assert_string_equal(mirror[id].v[k], s.v[k]);
        }
    }
    assert_int_equal(tsdb__index_series_count(idx), n);
    /* Every series reads back as its mirror. */
    for (size_t i = 0; i < n; i++) {
        struct tsdb__label l[ARRAY_SIZE(o_names)];
        int nl = tsdb__index_labels(idx, (uint32_t)i, l, ARRAY_SIZE(l));
        int k2 = 0;
        for (size_t k = 0; k < ARRAY_SIZE(o_names); k++) {
            if (!mirror[i].v[k][0])
                continue;
            assert_true(k2 < nl);
            assert_string_equal(l[k2].name, o_names[k]); /* o_names is sorted */
            assert_string_equal(l[k2].value, mirror[i].v[k]);
            k2++;
        }
        assert_int_equal(k2, nl);
    }

    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    uint32_t *want = xmalloc((n + 1) * sizeof(uint32_t));
    for (size_t q = 0; q < nsel; q++) {
        struct o_matcher om[4];
        struct tsdb__matcher ms[4];
        size_t nm = rndn(4) + (q % 8 != 0); /* sometimes no matcher at all */
        for (size_t k = 0; k < nm; k++) {
            om[k].type = (enum tsdb__match_type)rndn(4);
            om[k].name = rndn(ARRAY_SIZE(o_names) + 1); /* the extra one is never present */
            if (om[k].type <= TSDB__MATCH_NE)
                om[k].value = o_values[rndn(ARRAY_SIZE(o_values))];
            else
                om[k].value = o_regexes[rndn(ARRAY_SIZE(o_regexes))];
            const char *name = om[k].name < ARRAY_SIZE(o_names) ? o_names[om[k].name] : "zz";
            assert_int_equal(tsdb__matcher_compile(&ms[k], om[k].type, name, om[k].value, NULL, 0),
                             0);
        }
        size_t nwant = 0;
        for (size_t i = 0; i < n; i++) {
            int ok = 1;
            for (size_t k = 0; k < nm && ok; k++) {
                const char *v = om[k].name < ARRAY_SIZE(o_names) ? mirror[i].v[om[k].name] : "";
                ok = oracle_test(&om[k], v);
            }
            if (ok)
                want[nwant++] = (uint32_t)i;
        }
        for (int force = TSDB__SEL_AUTO; force <= TSDB__SEL_FILTER; force++) {
            sel.force = force;
            assert_int_equal(tsdb__index_select(idx, ms, nm, &sel), 0);
            if (sel.n != nwant || (nwant && memcmp(sel.ids, want, nwant * 4) != 0)) {
                for (size_t k = 0; k < nm; k++)
                    print_message("matcher %zu: %s type %d \"%s\"\n", k, ms[k].name, om[k].type,
                                  om[k].value);
                fail_msg("strategy %d: %zu series selected, %zu expected", force, sel.n, nwant);
            }
        }
        for (size_t k = 0; k < nm; k++)
            tsdb__matcher_release(&ms[k]);
    }
    free(want);
    tsdb__sel_release(&sel);
    free(mirror);
    tsdb__index_free(idx);
}

static void test_oracle(void **state)
{
    (void)state;
    rng_state = 0x5eed5eed1234ull;
    for (int round = 0; round < 40; round++)
        oracle_round(1 + rndn(round % 4 == 3 ? 3000 : 200), 100);
}

/* ------------------------------------------------------- concurrency */

#define CONC_SERIES 20000

struct conc {
    struct tsdb__index *idx;
    int reverse;
    int done; /* atomic: writers finished */
    long checks;
};

static void conc_labels(unsigned i, char *ibuf, size_t ilen, char *gbuf, size_t glen,
                        struct tsdb__label *l)
{
    snprintf(ibuf, ilen, "%u", i);
    snprintf(gbuf, glen, "g%u", i % 10);
    l[0] = (struct tsdb__label){"__name__", "conc_total"};
    l[1] = (struct tsdb__label){"i", ibuf};
    l[2] = (struct tsdb__label){"g", gbuf};
}

/* Writers create the same series in opposite orders: every create races with the other. */
static void *conc_writer(void *arg)
{
    struct conc *c = arg;
    for (unsigned k = 0; k < CONC_SERIES; k++) {
        unsigned i = c->reverse ? CONC_SERIES - 1 - k : k;
        char ib[16], gb[16];
        struct tsdb__label l[3];
        conc_labels(i, ib, sizeof(ib), gb, sizeof(gb), l);
        uint32_t id;
        if (tsdb__index_get_or_create(c->idx, l, 3, &id) < 0)
            abort();
    }
    return NULL;
}

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    struct tsdb__matcher ms[2];
    mc(&ms[0], "__name__=conc_total");
    mc(&ms[1], c->reverse ? "g=~g3|g7" : "g=g3");
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    size_t last = 0;
    uint64_t seed = c->reverse ? 7 : 11;
    while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
        if (tsdb__index_select(c->idx, ms, 2, &sel) != 0)
            abort();
        /* Series are never removed: a later selection sees a superset. */
        if (sel.n < last)
            abort();
        last = sel.n;
        for (size_t i = 1; i < sel.n; i++)
            if (sel.ids[i - 1] >= sel.ids[i])
                abort();
        /* Spot-check the answers and the read-only lookup path. */
        uint32_t count = tsdb__index_series_count(c->idx);
        for (int k = 0; k < 20 && count; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t id = (uint32_t)((seed >> 33) % count), id2;
            struct tsdb__label l[4];
            if (tsdb__index_labels(c->idx, id, l, 4) != 3)
                abort();
            if (tsdb__index_get_or_create(c->idx, l, 3, &id2) != 0 || id2 != id)
                abort();
        }
        if (sel.n) {
            struct tsdb__label l[4];
            if (tsdb__index_labels(c->idx, sel.ids[sel.n / 2], l, 4) != 3)
                abort();
            if (strcmp(l[1].value, "g3") != 0 && (!c->reverse || strcmp(l[1].value, "g7") != 0))
                abort();
        }
        c->checks++;
    }
    tsdb__sel_release(&sel);
    tsdb__matcher_release(&ms[0]);
    tsdb__matcher_release(&ms[1]);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct tsdb__index *idx = tsdb__index_new(NULL);
    struct conc w[2] = {{.idx = idx, .reverse = 0}, {.idx = idx, .reverse = 1}};
    struct conc r[2] = {{.idx = idx, .reverse = 0}, {.idx = idx, .reverse = 1}};
    pthread_t tw[2], tr[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tr[i], NULL, conc_reader, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&tw[i], NULL, conc_writer, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(tw[i], NULL);
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&r[i].done, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(tr[i], NULL);
    /* The racing creators made each series exactly once. */
    assert_int_equal(tsdb__index_series_count(idx), CONC_SERIES);
    assert_string_equal(select_str(idx, 0, (const char *[]){"i=20000", NULL}), "");
    struct tsdb__matcher m;
    mc(&m, "g=g3");
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    assert_int_equal(tsdb__index_select(idx, &m, 1, &sel), 0);
    assert_int_equal(sel.n, CONC_SERIES / 10);
    tsdb__sel_release(&sel);
    tsdb__matcher_release(&m);
    print_message("concurrent: %ld + %ld reader passes during the writes\n", r[0].checks,
                  r[1].checks);
    tsdb__index_free(idx);
}

/* -------------------------------------------------------------- scale */

#define SCALE_SERIES 100000

/* Sanitizers slow everything down and replace malloc: timings and heap sizes are off. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Add one synthetic series, given as a NULL-terminated name/value list. */
static void scale_add(struct tsdb__index *idx, size_t *n, ...)
{
    struct tsdb__label l[MAXL];
    size_t nl = 0;
    va_list ap;
    va_start(ap, n);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        l[nl].name = k;
        l[nl++].value = va_arg(ap, const char *);
    }
    va_end(ap);
    uint32_t id;
    if (*n < SCALE_SERIES)
        assert_int_equal(tsdb__index_get_or_create(idx, l, nl, &id), 1);
    else
        return;
    (*n)++;
}

/* 100,000 series shaped like a host and a few services. */
static size_t scale_fill(struct tsdb__index *idx)
{
    static const char *modes[] = {"user",   "nice", "system",  "idle",
                                  "iowait", "irq",  "softirq", "steal"};
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *codes[] = {"200", "201", "204", "304", "400", "404", "500", "503"};
    static const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
    static const char *netm[] = {"receive_bytes_total",   "transmit_bytes_total",
                                 "receive_packets_total", "transmit_packets_total",
                                 "receive_errs_total",    "transmit_errs_total",
                                 "receive_drop_total",    "transmit_drop_total"};
    static const char *procm[] = {"cpu_seconds_total", "resident_memory_bytes", "open_fds",
                                  "threads", "read_bytes_total"};
    char a[64], b[64], c[128], d[128];
    size_t n = 0;
    for (int cpu = 0; cpu < 128; cpu++)
        for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
            snprintf(a, sizeof(a), "%d", cpu);
            scale_add(idx, &n, "__name__", "node_cpu_seconds_total", "cpu", a, "mode", modes[m],
                      NULL);
        }
    for (int inst = 0; inst < 10; inst++)
        for (int route = 0; route < 50; route++) {
            snprintf(a, sizeof(a), "web-%02d:8080", inst);
            snprintf(c, sizeof(c), "/api/v%d/resource%d/{id}", 1 + route % 2, route);
            for (size_t m = 0; m < ARRAY_SIZE(methods); m++) {
                for (size_t s = 0; s < ARRAY_SIZE(codes); s++)
                    scale_add(idx, &n, "__name__", "http_requests_total", "instance", a, "job",
                              "web", "method", methods[m], "route", c, "status", codes[s], NULL);
                for (size_t le = 0; le < ARRAY_SIZE(les); le++)
                    scale_add(idx, &n, "__name__", "http_request_duration_seconds_bucket",
                              "instance", a, "job", "web", "le", les[le], "method", methods[m],
                              "route", c, NULL);
            }
        }
    for (int dev = 0; dev < 1000; dev++) {
        if (dev < 4)
            snprintf(a, sizeof(a), "eth%d", dev);
        else
            snprintf(a, sizeof(a), "veth%08x", (unsigned)dev * 2654435761u);
        for (size_t m = 0; m < ARRAY_SIZE(netm); m++) {
            snprintf(c, sizeof(c), "node_network_%s", netm[m]);
            scale_add(idx, &n, "__name__", c, "device", a, NULL);
        }
    }
    for (int p = 0; p < 4000; p++) {
        snprintf(a, sizeof(a), "%d", 1000 + p * 7);
        snprintf(b, sizeof(b), "proc%d", p % 150);
        for (size_t m = 0; m < ARRAY_SIZE(procm); m++) {
            snprintf(c, sizeof(c), "process_%s", procm[m]);
            scale_add(idx, &n, "__name__", c, "comm", b, "pid", a, NULL);
        }
    }
    for (int k = 0; n < SCALE_SERIES; k++) {
        snprintf(a, sizeof(a), "%016llx%016llx", (unsigned long long)k * 0x9e3779b97f4a7c15ull,
                 (unsigned long long)k * 0xc2b2ae3d27d4eb4full);
        snprintf(b, sizeof(b), "pod-%d", k / 3);
        snprintf(c, sizeof(c), "ns%d", k % 40);
        snprintf(d, sizeof(d), "container_%s",
                 k % 2 ? "memory_usage_bytes" : "cpu_usage_seconds_total");
        scale_add(idx, &n, "__name__", d, "container_id", a, "namespace", c, "pod", b, NULL);
    }
    return n;
}

static double ms_since(int64_t t0)
{
    return (double)(util_mono_ns() - t0) / 1e6;
}

static void test_scale(void **state)
{
    (void)state;
    const int asan = SANITIZED;
    /* Small blocks are in uordblks, big ones (the arrays) mmap'd in hblkhd. */
    struct mallinfo2 mi = mallinfo2();
    size_t heap0 = mi.uordblks + mi.hblkhd;
    int64_t t0 = util_mono_ns();
    struct tsdb__index *idx = tsdb__index_new(NULL);
    size_t n = scale_fill(idx);
    double create_ms = ms_since(t0);
    mi = mallinfo2();
    size_t heap1 = mi.uordblks + mi.hblkhd;
    assert_int_equal(n, SCALE_SERIES);
    struct tsdb__index_stats st;
    tsdb__index_stats(idx, &st);
    print_message("index: %u series, %u names, %u pairs, %u strings, %zu label refs\n", st.series,
                  st.names, st.pairs, st.strings, st.label_refs);
    print_message("index: %zu bytes = %.1f bytes/series (strings %.1f); created in %.0f ms%s\n",
                  st.bytes, (double)st.bytes / st.series, (double)st.string_bytes / st.series,
                  create_ms, asan ? " (sanitizer build)" : "");
    if (!asan && heap1 > heap0)
        print_message("index: malloc'd heap %.1f bytes/series (with allocator overhead)\n",
                      (double)(heap1 - heap0) / st.series);

    /* Getting existing series (the appender's steady state), in a scattered order. */
    enum { NGET = 10000 };
    struct tsdb__label(*gl)[MAXL] = xmalloc(NGET * sizeof(*gl));
    int *gn = xmalloc(NGET * sizeof(int));
    for (uint32_t i = 0; i < NGET; i++)
        gn[i] = tsdb__index_labels(idx, (i * 7919) % st.series, gl[i], MAXL);
    t0 = util_mono_ns();
    for (uint32_t i = 0; i < NGET; i++) {
        uint32_t id;
        assert_int_equal(tsdb__index_get_or_create(idx, gl[i], (size_t)gn[i], &id), 0);
        assert_int_equal(id, (i * 7919) % st.series);
    }
    print_message("index: get of an existing series %.0f ns\n", ms_since(t0) * 1e6 / NGET);
    free(gl);
    free(gn);

    static const char *const shapes[][4] = {
        {"__name__=node_cpu_seconds_total", "mode=idle"},
        {"__name__=node_cpu_seconds_total", "cpu=7"},
        {"__name__=http_requests_total", "status=~5.."},
        {"__name__=http_requests_total", "route=~/api/v1/.*", "method!=GET"},
        {"__name__=http_requests_total", "instance=web-03:8080", "status!~2.."},
        {"__name__=http_request_duration_seconds_bucket", "le=+Inf", "job=web"},
        {"__name__=~node_network_.*_bytes_total", "device=~eth.*"},
        {"__name__=process_cpu_seconds_total", "pid=12998"},
        {"__name__=~process_cpu_seconds_total|process_open_fds", "comm=proc7"},
        {"container_id=~.+"},
        {"__name__=~container_.*", "namespace=ns3", "pod!~pod-1.*"},
        {"job=web", "le="},
    };
    struct tsdb__sel sel;
    tsdb__sel_init(&sel);
    for (size_t s = 0; s < ARRAY_SIZE(shapes); s++) {
        struct tsdb__matcher ms[4];
        size_t nm = 0;
        for (; nm < 4 && shapes[s][nm]; nm++)
            mc(&ms[nm], shapes[s][nm]);
        /* The best of 5 batches: the machine may be busy with something else. */
        double us = 1e30;
        for (int batch = 0; batch < 5; batch++) {
            int reps = 0;
            t0 = util_mono_ns();
            do {
                assert_int_equal(tsdb__index_select(idx, ms, nm, &sel), 0);
                reps++;
            } while (util_mono_ns() - t0 < 4 * 1000000ll && reps < 400);
            if (ms_since(t0) * 1000 / reps < us)
                us = ms_since(t0) * 1000 / reps;
        }
        /* Check the answer against a scan of every series. */
        size_t nwant = 0;
        for (uint32_t i = 0; i < st.series; i++) {
            struct tsdb__label l[MAXL];
            int nl = tsdb__index_labels(idx, i, l, MAXL), ok = 1;
            for (size_t k = 0; k < nm && ok; k++) {
                const char *v = "";
                for (int j = 0; j < nl; j++)
                    if (strcmp(l[j].name, ms[k].name) == 0)
                        v = l[j].value;
                ok = tsdb__matcher_test(&ms[k], v, strlen(v));
            }
            if (ok) {
                assert_true(nwant < sel.n);
                assert_int_equal(sel.ids[nwant], i);
                nwant++;
            }
        }
        assert_int_equal(nwant, sel.n);
        char desc[256];
        size_t len = 0;
        for (size_t k = 0; k < nm; k++)
            len += (size_t)snprintf(desc + len, sizeof(desc) - len, "%s%s", k ? ", " : "",
                                    shapes[s][k]);
        print_message("select {%s}: %zu series, %.1f us\n", desc, sel.n, us);
        for (size_t k = 0; k < nm; k++)
            tsdb__matcher_release(&ms[k]);
    }
    tsdb__sel_release(&sel);
    tsdb__index_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_matcher_semantics),
        cmocka_unit_test(test_regex_anchoring),
        cmocka_unit_test(test_bad_regex),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_matchers_check),
        cmocka_unit_test(test_listing),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_oracle),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
