/*
 * queue_resp_test.c: the RESP2 parser on good replies, replies cut at every
 * byte, and hostile ones (huge and negative lengths, bad integers, unknown
 * type bytes, NUL bytes, deep nesting, too many values); command encoding;
 * the XINFO field lookup and the lag derivation for servers without `lag`.
 */
#include "testutil.h"
#include "queue/queue_internal.h"

static int parse(const char *buf, size_t n, struct queue__reply **r, size_t *used, char *err)
{
    return queue__resp_parse(buf, n, r, used, err, 256);
}

static void test_good(void **state)
{
    (void)state;
    static const char in[] = "*5\r\n+OK\r\n:-42\r\n$5\r\na\0b\r\n\r\n$-1\r\n*2\r\n$0\r\n\r\n*0\r\n"
                             "+next\r\n";
    size_t n = sizeof(in) - 1, used;
    struct queue__reply *r;
    char err[256];
    assert_int_equal(parse(in, n, &r, &used, err), 1);
    assert_int_equal(used, n - 7); /* the next reply is left */
    assert_int_equal(r->type, QUEUE__ARRAY);
    assert_int_equal(r->n, 5);
    assert_int_equal(r->elem[0].type, QUEUE__STATUS);
    assert_string_equal(r->elem[0].str, "OK");
    assert_int_equal(r->elem[1].integer, -42);
    assert_int_equal(r->elem[2].type, QUEUE__BULK);
    assert_int_equal(r->elem[2].len, 5);
    assert_memory_equal(r->elem[2].str, "a\0b\r\n", 5); /* binary-safe */
    assert_int_equal(r->elem[3].type, QUEUE__NIL);
    assert_int_equal(r->elem[4].n, 2);
    assert_int_equal(r->elem[4].elem[0].len, 0);
    assert_int_equal(r->elem[4].elem[1].n, 0);
    queue__reply_free(r);

    /* Every cut short of the end is "need more", never an error or a crash. */
    for (size_t cut = 0; cut < n - 7; cut++) {
        char *p = xmalloc(cut ? cut : 1); /* exact size: ASan sees any read past it */
        memcpy(p, in, cut);
        assert_int_equal(parse(p, cut, &r, &used, err), 0);
        free(p);
    }
    assert_int_equal(parse("-ERR wrong\r\n", 12, &r, &used, err), 1);
    assert_int_equal(r->type, QUEUE__ERROR);
    assert_string_equal(r->str, "ERR wrong");
    queue__reply_free(r);
}

static void test_hostile(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "?x\r\n",                    /* unknown type byte */
        "\0\r\n",                    /* NUL as type */
        ":12a\r\n",                  /* not a number */
        ":\r\n",                     /* empty number */
        ":-\r\n",                    /* sign only */
        ":+5\r\n",                   /* plus sign */
        ":99999999999999999999\r\n", /* overflow */
        ":9223372036854775808\r\n",  /* LLONG_MAX + 1 */
        "$-2\r\n",                   /* negative length */
        "$99999999999\r\n",          /* huge bulk */
        "$1073741824\r\n",           /* 1 GiB bulk */
        "$3\r\nabcd\r\n",            /* bulk longer than said */
        "$3\r\nab\r\n\r\n",          /* CRLF where the data should be, then no CRLF */
        "*99999999999\r\n",          /* huge array */
        "*-5\r\n",                   /* negative array */
        "*1\r\n?\r\n",               /* bad element */
        "+OK\rX",                    /* CR without LF */
        "+O\nK\r\n",                 /* LF inside a line */
        "-E\0R\r\n",                 /* NUL inside a line */
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", /* too deep */
    };
    static const size_t lens[] = {4,  3,  6,  3,  4, 5, 23, 22, 5, 14,
                                  13, 10, 10, 14, 5, 7, 5,  6,  6, 40};
    assert_int_equal(ARRAY_SIZE(bad), ARRAY_SIZE(lens));
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct queue__reply *r = NULL;
        size_t used = 0;
        char err[256] = "";
        char *p = xmalloc(lens[i]);
        memcpy(p, bad[i], lens[i]);
        int rc = parse(p, lens[i], &r, &used, err);
        if (rc != -1)
            fail_msg("case %zu: want -1, got %d", i, rc);
        assert_non_null(strstr(err, "malformed reply at byte"));
        assert_null(r);
        free(p);
    }

    /* A line that never ends: an error once past the line limit, not a wait forever. */
    size_t n = QUEUE__RESP_MAX_LINE + 10;
    char *p = xmalloc(n);
    memset(p, 'x', n);
    p[0] = '+';
    struct queue__reply *r;
    size_t used;
    char err[256];
    assert_int_equal(parse(p, n, &r, &used, err), -1);
    assert_non_null(strstr(err, "line too long"));
    free(p);

    /* Many small values: the node cap stops them (arrays of arrays of 1000). */
    struct sbuf b;
    sbuf_init(&b, 64 << 20);
    sbuf_adds(&b, "*1000\r\n");
    for (int i = 0; i < 1000; i++) {
        sbuf_adds(&b, "*300\r\n");
        for (int k = 0; k < 300; k++)
            sbuf_adds(&b, ":1\r\n");
    }
    assert_int_equal(parse(b.buf, b.len, &r, &used, err), -1);
    assert_non_null(strstr(err, "too many values"));
    sbuf_release(&b);
}

static void test_command_and_fields(void **state)
{
    (void)state;
    struct sbuf b;
    sbuf_init(&b, 1024);
    const char *argv[] = {"XINFO", "GROUPS", "events:1"};
    assert_int_equal(queue__resp_command(&b, 3, argv), 0);
    assert_string_equal(b.buf, "*3\r\n$5\r\nXINFO\r\n$6\r\nGROUPS\r\n$8\r\nevents:1\r\n");
    /* What we encode parses back. */
    struct queue__reply *r;
    size_t used;
    char err[256];
    assert_int_equal(parse(b.buf, b.len, &r, &used, err), 1);
    assert_string_equal(r->elem[2].str, "events:1");
    queue__reply_free(r);
    sbuf_release(&b);

    /* An XINFO GROUPS element of Redis 6 (no lag) and of Redis 7. */
    static const char v6[] = "*8\r\n$4\r\nname\r\n$2\r\ng1\r\n$9\r\nconsumers\r\n:2\r\n"
                             "$7\r\npending\r\n:3\r\n$17\r\nlast-delivered-id\r\n$3\r\n5-0\r\n";
    assert_int_equal(parse(v6, sizeof(v6) - 1, &r, &used, err), 1);
    struct queue__group g;
    assert_int_equal(queue__group_read(&g, r), 0);
    assert_string_equal(g.name, "g1");
    assert_int_equal(g.pending, 3);
    assert_int_equal(g.consumers, 2);
    assert_false(g.has_lag);
    assert_int_equal(queue__stream_lag(&g, 10, NULL), -1);  /* cannot know */
    assert_int_equal(queue__stream_lag(&g, 10, "5-0"), 0);  /* read up to the newest */
    assert_int_equal(queue__stream_lag(&g, 10, "9-0"), -1); /* behind by an unknown count */
    assert_int_equal(queue__stream_lag(&g, 0, NULL), 0);    /* empty stream */
    queue__reply_free(r);
    snprintf(g.last_id, sizeof(g.last_id), "0-0");
    assert_int_equal(queue__stream_lag(&g, 7, NULL), 7); /* nothing delivered yet */

    static const char v7[] = "*4\r\n$4\r\nname\r\n$2\r\ng2\r\n$3\r\nlag\r\n$-1\r\n";
    assert_int_equal(parse(v7, sizeof(v7) - 1, &r, &used, err), 1);
    assert_int_equal(queue__group_read(&g, r), 0);
    assert_true(g.has_lag);
    assert_int_equal(queue__stream_lag(&g, 7, NULL), -1); /* nil: Redis cannot know */
    assert_int_equal(g.pending, -1);                      /* absent fields are unknown */
    queue__reply_free(r);

    /* A group whose name is not a string, or not UTF-8, is skipped. */
    static const char noname[] = "*2\r\n$4\r\nname\r\n:5\r\n";
    assert_int_equal(parse(noname, sizeof(noname) - 1, &r, &used, err), 1);
    assert_int_equal(queue__group_read(&g, r), -1);
    queue__reply_free(r);
    static const char badutf[] = "*2\r\n$4\r\nname\r\n$1\r\n\xff\r\n";
    assert_int_equal(parse(badutf, sizeof(badutf) - 1, &r, &used, err), 1);
    assert_int_equal(queue__group_read(&g, r), -1);
    assert_null(queue__reply_field(&r->elem[1], "name")); /* not an array: no fields */
    queue__reply_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_command_and_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
