/*
 * sketch_test.c: the client sketches (sketch.c): space-saving's guarantees
 * (exact while clients fit; a heavy hitter is found among a million
 * one-off clients; counts never underestimate), its heap and hash index
 * after every operation, decay, the HyperLogLog estimate's error, and the
 * hash.
 */
#include "testutil.h"
#include "ingest/ingest_internal.h"

#include <math.h>

/* Heap order, index <-> entry consistency, and heap positions. */
static void check_topk(const struct ingest__topk *t)
{
    size_t indexed = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        uint32_t v = t->index[i];
        if (!v)
            continue;
        indexed++;
        assert_true(v - 1 < t->n);
        const struct ingest__topk_entry *e = &t->e[v - 1];
        /* reachable from its home slot without crossing an empty slot */
        for (size_t j = e->hash & t->mask; j != i; j = (j + 1) & t->mask)
            assert_int_not_equal(t->index[j], 0);
    }
    assert_int_equal(indexed, t->n);
    for (size_t i = 0; i < t->n; i++) {
        assert_int_equal(t->e[t->heap[i]].heap_pos, i);
        if (i)
            assert_true(t->e[t->heap[(i - 1) / 2]].count <= t->e[t->heap[i]].count);
    }
}

static void add(struct ingest__topk *t, const char *s, int error)
{
    ingest__topk_add(t, s, strlen(s), ingest__hash(s, strlen(s)), error);
}

static void test_exact_when_fits(void **state)
{
    (void)state;
    struct ingest__topk t;
    ingest__topk_init(&t, 16);
    char name[32];
    for (int i = 0; i < 10; i++)
        for (int k = 0; k <= i; k++) {
            snprintf(name, sizeof(name), "10.0.0.%d", i);
            add(&t, name, k == 0);
            check_topk(&t);
        }
    const struct ingest__topk_entry *top[INGEST_TOP_CLIENTS];
    assert_int_equal(ingest__topk_top(&t, top, 3), 3);
    assert_string_equal(top[0]->client, "10.0.0.9");
    assert_float_equal(top[0]->count, 10, 0);
    assert_float_equal(top[0]->errors, 1, 0);
    assert_string_equal(top[1]->client, "10.0.0.8");
    assert_string_equal(top[2]->client, "10.0.0.7");
    assert_int_equal(ingest__topk_top(&t, top, INGEST_TOP_CLIENTS), 10);
    assert_float_equal(top[9]->count, 1, 0);
    ingest__topk_release(&t);
}

/*
 * One client with 5% of a million requests, the rest from distinct
 * addresses: space-saving keeps it (k = 128 > 1/5%) and never reports less
 * than its true count; memory stays k entries.
 */
static void test_heavy_hitter(void **state)
{
    (void)state;
    struct ingest__topk t;
    ingest__topk_init(&t, 128);
    char name[32];
    int heavy = 0;
    for (int i = 0; i < 1000000; i++) {
        if (i % 20 == 0) {
            add(&t, "198.51.100.66", 1);
            heavy++;
        } else {
            snprintf(name, sizeof(name), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
            add(&t, name, 0);
        }
        if (i % 100000 == 0)
            check_topk(&t);
    }
    check_topk(&t);
    assert_int_equal(t.n, 128);
    const struct ingest__topk_entry *top[INGEST_TOP_CLIENTS];
    assert_int_equal(ingest__topk_top(&t, top, INGEST_TOP_CLIENTS), INGEST_TOP_CLIENTS);
    assert_string_equal(top[0]->client, "198.51.100.66");
    assert_true(top[0]->count >= heavy);
    assert_true(top[0]->count - top[0]->over <= heavy);
    /* errors are counted only since it last entered: at most its true errors */
    assert_true(top[0]->errors <= heavy);
    assert_true(top[0]->errors > heavy / 2);
    for (int i = 1; i < INGEST_TOP_CLIENTS; i++)
        assert_true(top[i]->count <= top[i - 1]->count);
    ingest__topk_release(&t);
}

/* Decay keeps order and scales counts; a new burst overtakes a faded leader. */
static void test_decay(void **state)
{
    (void)state;
    struct ingest__topk t;
    ingest__topk_init(&t, 8);
    for (int i = 0; i < 100; i++)
        add(&t, "old", 0);
    for (int i = 0; i < 50; i++)
        add(&t, "mid", 0);
    ingest__topk_decay(&t, 0.5);
    check_topk(&t);
    const struct ingest__topk_entry *top[2];
    ingest__topk_top(&t, top, 2);
    assert_string_equal(top[0]->client, "old");
    assert_float_equal(top[0]->count, 50, 1e-9);
    for (int k = 0; k < 5; k++)
        ingest__topk_decay(&t, 0.5);
    for (int i = 0; i < 10; i++)
        add(&t, "new", 0);
    check_topk(&t);
    ingest__topk_top(&t, top, 1);
    assert_string_equal(top[0]->client, "new");
    ingest__topk_release(&t);
}

/* Replacing entries keeps the index right when runs of the table wrap around. */
static void test_churn(void **state)
{
    (void)state;
    struct ingest__topk t;
    ingest__topk_init(&t, 4); /* 8 slots: collisions and wrap-around all the time */
    char name[16];
    uint64_t x = 1;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(name, sizeof(name), "c%u", (unsigned)(x >> 58));
        add(&t, name, 0);
        check_topk(&t);
    }
    ingest__topk_release(&t);
}

static void test_hll(void **state)
{
    (void)state;
    static const int sizes[] = {0, 1, 10, 1000, 50000, 1000000};
    char name[32];
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct ingest__hll *h = xcalloc(1, sizeof(*h));
        for (int i = 0; i < sizes[s]; i++) {
            int n = snprintf(name, sizeof(name), "2001:db8::%x", i);
            ingest__hll_add(h, ingest__hash(name, (size_t)n));
        }
        for (int i = 0; i < sizes[s] && i < 1000; i++) { /* duplicates add nothing */
            int n = snprintf(name, sizeof(name), "2001:db8::%x", i);
            ingest__hll_add(h, ingest__hash(name, (size_t)n));
        }
        double est = ingest__hll_estimate(h), want = sizes[s];
        if (fabs(est - want) > 0.05 * want + 0.5)
            fail_msg("%d distinct: estimate %.1f", sizes[s], est);
        free(h);
    }
}

static void test_hash(void **state)
{
    (void)state;
    assert_int_equal(ingest__hash("abc", 3), ingest__hash("abc", 3));
    assert_int_not_equal(ingest__hash("abc", 3), ingest__hash("abd", 3));
    assert_int_not_equal(ingest__hash("a", 1), ingest__hash("a\0", 2));
    assert_int_not_equal(ingest__hash("", 0), ingest__hash("\0", 1));
    assert_int_not_equal(ingest__hash("12345678", 8), ingest__hash("123456789", 9));
    /* Top bits spread: 4096 buckets over 40,000 keys, none empty, none crowded. */
    static int buckets[4096];
    char name[32];
    for (int i = 0; i < 40000; i++) {
        int n = snprintf(name, sizeof(name), "10.0.%d.%d", i / 256, i % 256);
        buckets[ingest__hash(name, (size_t)n) >> 52]++;
    }
    for (int i = 0; i < 4096; i++)
        assert_true(buckets[i] > 0 && buckets[i] < 35);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_when_fits),
        cmocka_unit_test(test_heavy_hitter),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_hll),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
