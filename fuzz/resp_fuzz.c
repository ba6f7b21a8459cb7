/*
 * resp_fuzz.c: libFuzzer target for the RESP2 reply parser
 * (src/queue/resp.c). The input, copied into a buffer of exactly its size,
 * is parsed reply after reply. Invariants, beyond "no crash":
 *   - a complete reply takes 1..n bytes, and the bytes before its end are
 *     "incomplete" (0), never an error or another reply;
 *   - the reply written back as RESP parses to the same tree (the parser
 *     keeps everything it accepts: types, integers, binary strings);
 *   - limits hold: nesting, array sizes, bulk sizes;
 *   - an error says "malformed reply at byte N" with N inside the input.
 * Build and run with fuzz/run.sh.
 */
#include "queue/queue_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "resp_fuzz: check failed: %s\n", #x);                                  \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static void write_reply(struct sbuf *o, const struct queue__reply *r, int depth)
{
    CHECK(depth <= QUEUE__RESP_MAX_DEPTH);
    switch (r->type) {
    case QUEUE__STATUS:
    case QUEUE__ERROR:
        CHECK(!memchr(r->str, '\r', r->len) && !memchr(r->str, '\n', r->len));
        sbuf_addf(o, "%c%s\r\n", r->type == QUEUE__STATUS ? '+' : '-', r->str);
        break;
    case QUEUE__INT:
        sbuf_addf(o, ":%lld\r\n", r->integer);
        break;
    case QUEUE__NIL:
        sbuf_adds(o, "$-1\r\n");
        break;
    case QUEUE__BULK:
        CHECK(r->len <= QUEUE__RESP_MAX_BULK && r->str[r->len] == '\0');
        sbuf_addf(o, "$%zu\r\n", r->len);
        sbuf_add(o, r->str, r->len);
        sbuf_adds(o, "\r\n");
        break;
    case QUEUE__ARRAY:
        CHECK(r->n <= QUEUE__RESP_MAX_ARRAY);
        sbuf_addf(o, "*%zu\r\n", r->n);
        for (size_t i = 0; i < r->n; i++)
            write_reply(o, &r->elem[i], depth + 1);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    size_t off = 0;
    char err[256];
    while (off < size) {
        struct queue__reply *r = NULL;
        size_t used = 0;
        int rc = queue__resp_parse(buf + off, size - off, &r, &used, err, sizeof(err));
        if (rc <= 0) {
            if (rc < 0) {
                size_t at;
                CHECK(sscanf(err, "malformed reply at byte %zu", &at) == 1 && at <= size - off);
            }
            CHECK(!r);
            break;
        }
        CHECK(used >= 1 && used <= size - off);
        struct queue__reply *again = NULL;
        size_t u2;
        if (used > 1) {
            CHECK(queue__resp_parse(buf + off, used - 1, &again, &u2, err, sizeof(err)) == 0);
            CHECK(queue__resp_parse(buf + off, used / 2, &again, &u2, err, sizeof(err)) == 0);
        }
        struct sbuf a, b;
        sbuf_init(&a, 64 << 20);
        sbuf_init(&b, 64 << 20);
        write_reply(&a, r, 0);
        CHECK(queue__resp_parse(a.buf, a.len, &again, &u2, err, sizeof(err)) == 1);
        CHECK(u2 == a.len);
        write_reply(&b, again, 0);
        CHECK(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0);
        queue__reply_free(again);
        queue__reply_free(r);
        sbuf_release(&a);
        sbuf_release(&b);
        off += used;
    }
    free(buf);
    return 0;
}
