/*
 * promql_fuzz.c: libFuzzer target for the PromQL parser and printer
 * (src/query/lex.c, parse.c, print.c, functions.c). Every input is query
 * text, NUL bytes and invalid UTF-8 included. Parsing must either fail with
 * a "line:col: parse error: ..." message whose position lies within the
 * input, or give a tree within the depth cap that prints to text which
 * parses back to an equal tree (query_node_equal) and prints the same again.
 * Build and run with fuzz/run.sh.
 */
#include "query/promql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "promql_fuzz: check failed: %s\n", #x);                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/*
 * An @ timestamp beyond 2^53 ms (year 287396) is kept as Prometheus keeps
 * it, but its milliseconds do not survive the trip through decimal seconds.
 */
static int huge_at(const struct query_node *n)
{
    const int64_t lim = (int64_t)1 << 53;
    switch (n->type) {
    case QUERY_NODE_VECTOR_SELECTOR:
        return n->vs.at == QUERY_AT_TIME && (n->vs.at_ms > lim || n->vs.at_ms < -lim);
    case QUERY_NODE_MATRIX_SELECTOR:
        return huge_at(n->matrix.vs);
    case QUERY_NODE_SUBQUERY:
        return (n->subquery.at == QUERY_AT_TIME &&
                (n->subquery.at_ms > lim || n->subquery.at_ms < -lim)) ||
               huge_at(n->subquery.expr);
    case QUERY_NODE_PAREN:
        return huge_at(n->paren.expr);
    case QUERY_NODE_UNARY:
        return huge_at(n->unary.expr);
    case QUERY_NODE_BINARY:
        return huge_at(n->binary.lhs) || huge_at(n->binary.rhs);
    case QUERY_NODE_AGGREGATE:
        return huge_at(n->aggregate.expr) || (n->aggregate.param && huge_at(n->aggregate.param));
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->call.nargs; i++)
            if (huge_at(n->call.args[i]))
                return 1;
        return 0;
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct query_node *n = (struct query_node *)&n;
    struct query_error err;
    if (query_parse_len((const char *)data, size, &n, &err) < 0) {
        CHECK(n == NULL);
        CHECK(err.pos <= size);
        CHECK(strstr(err.msg, ": parse error: ") != NULL);
        CHECK(size == 0 || (err.line >= 1 && err.col >= 1));
        return 0;
    }
    CHECK(n != NULL && n->depth >= 1 && n->depth <= QUERY_MAX_DEPTH);
    CHECK(n->pos.start <= n->pos.end && n->pos.end <= size);
    struct sbuf out, again;
    sbuf_init(&out, 0);
    sbuf_init(&again, 0);
    CHECK(query_format(n, &out) == 0);
    if (out.len <= QUERY_MAX_LEN && !huge_at(n)) {
        struct query_node *m;
        if (query_parse_len(out.buf, out.len, &m, &err) < 0) {
            fprintf(stderr, "promql_fuzz: %.*s\nprinted as %s\nwhich fails: %s\n", (int)size,
                    (const char *)data, out.buf, err.msg);
            __builtin_trap();
        }
        if (!query_node_equal(n, m)) {
            fprintf(stderr, "promql_fuzz: %.*s\nprinted as %s\nwhich parses differently\n",
                    (int)size, (const char *)data, out.buf);
            __builtin_trap();
        }
        CHECK(query_format(m, &again) == 0);
        CHECK(strcmp(out.buf, again.buf) == 0);
        query_node_free(m);
    }
    sbuf_release(&again);
    sbuf_release(&out);
    query_node_free(n);
    return 0;
}
