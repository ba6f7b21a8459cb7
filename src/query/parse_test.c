/*
 * parse_test.c: the PromQL parser and printer (promql.h): literals,
 * selectors, modifiers, operator precedence, aggregations, functions,
 * Prometheus's type rules and error messages with their positions, the
 * canonical printer, parse/print round trips, the caps, and every eval
 * expression of the shared conformance scripts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/promql.h"
#include "util/util.h"

/* ------------------------------------------------------------------ helpers */

static struct query_node *parse_ok(const char *q)
{
    struct query_node *n = NULL;
    struct query_error err;
    if (query_parse(q, &n, &err) < 0)
        fail_msg("parse of %s failed: %s", q, err.msg);
    return n;
}

static char *format(const struct query_node *n)
{
    struct sbuf sb;
    sbuf_init(&sb, 0);
    assert_int_equal(query_format(n, &sb), 0);
    char *s = sbuf_detach(&sb, NULL);
    sbuf_release(&sb);
    return s;
}

/* Parse, print, parse the output: same tree, and printing again changes nothing. */
static void check_round_trip(const char *q, const struct query_node *n)
{
    char *out = format(n);
    struct query_node *again = NULL;
    struct query_error err;
    if (query_parse(out, &again, &err) < 0)
        fail_msg("%s printed as %s, which does not parse: %s", q, out, err.msg);
    if (!query_node_equal(n, again))
        fail_msg("%s printed as %s, which parses differently", q, out);
    char *out2 = format(again);
    if (strcmp(out, out2) != 0)
        fail_msg("%s: printed %s, then %s", q, out, out2);
    free(out2);
    query_node_free(again);
    free(out);
}

/* A tree in prefix notation, to check its shape: (op lhs rhs), (neg x), (sum x) ... */
static void sx(const struct query_node *n, struct sbuf *sb)
{
    switch (n->type) {
    case QUERY_NODE_NUMBER:
        sbuf_addf(sb, "%g", n->number.value);
        break;
    case QUERY_NODE_STRING:
        sbuf_addf(sb, "\"%s\"", n->string.value);
        break;
    case QUERY_NODE_VECTOR_SELECTOR:
    case QUERY_NODE_MATRIX_SELECTOR: {
        char *s = format(n);
        sbuf_adds(sb, s);
        free(s);
        break;
    }
    case QUERY_NODE_SUBQUERY:
        sbuf_adds(sb, "(subquery ");
        sx(n->subquery.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_PAREN:
        sbuf_adds(sb, "(paren ");
        sx(n->paren.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_UNARY:
        sbuf_adds(sb, n->unary.op == QUERY_OP_SUB ? "(neg " : "(pos ");
        sx(n->unary.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_BINARY:
        sbuf_addf(sb, "(%s%s ", query_op_name(n->binary.op), n->binary.return_bool ? " bool" : "");
        sx(n->binary.lhs, sb);
        sbuf_addc(sb, ' ');
        sx(n->binary.rhs, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_AGGREGATE:
        sbuf_addf(sb, "(%s ", query_agg_name(n->aggregate.op));
        if (n->aggregate.param) {
            sx(n->aggregate.param, sb);
            sbuf_addc(sb, ' ');
        }
        sx(n->aggregate.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_CALL:
        sbuf_addf(sb, "(%s", n->call.func->name);
        for (size_t i = 0; i < n->call.nargs; i++) {
            sbuf_addc(sb, ' ');
            sx(n->call.args[i], sb);
        }
        sbuf_addc(sb, ')');
        break;
    }
}

/* ------------------------------------------------- canonical form, round trip */

/* Input and the canonical form Prometheus prints (NULL: the input itself). */
static const struct {
    const char *in, *out;
} formats[] = {
    /* From Prometheus's documented String() behaviour. */
    {"sum by() (task:errors:rate10s{job=\"s\"})", "sum(task:errors:rate10s{job=\"s\"})"},
    {"sum by(code) (task:errors:rate10s{job=\"s\"})",
     "sum by (code) (task:errors:rate10s{job=\"s\"})"},
    {"sum without() (task:errors:rate10s{job=\"s\"})",
     "sum without () (task:errors:rate10s{job=\"s\"})"},
    {"sum(task:errors:rate10s{job=\"s\"}) without(instance)",
     "sum without (instance) (task:errors:rate10s{job=\"s\"})"},
    {"sum by(\"foo.bar\") (x)", "sum by (\"foo.bar\") (x)"},
    {"count by(\"ööö\", job) (foo)", "count by (\"ööö\", job) (foo)"},
    {"topk(5, task:errors:rate10s{job=\"s\"})", NULL},
    {"count_values(\"value\", task:errors:rate10s{job=\"s\"})", NULL},
    {"a - on() c", "a - on () c"},
    {"a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"},
    {"a - on(b) group_left c", "a - on (b) group_left () c"},
    {"a - on(b) group_left() (c)", "a - on (b) group_left () (c)"},
    {"a - ignoring(b) c", "a - ignoring (b) c"},
    {"a - ignoring() c", "a - c"},
    {"a - ignoring() group_left(__metric__) c", "a - ignoring () group_left (__metric__) c"},
    {"foo / on(\"äää\") group_right(\"ööö\") bar", "foo / on (\"äää\") group_right (\"ööö\") bar"},
    {"up > bool 0", NULL},
    {"a offset 1m", NULL},
    {"a offset -7m", NULL},
    {"a{c=\"d\"}[5m] offset 1m", NULL},
    {"a[12m] offset -3m", NULL},
    {"a[1h:5m] offset 1m", NULL},
    {"{__name__=\"a\"}", NULL},
    {"a{b!~\"c\"}[1m]", NULL},
    {"a @ 10", "a @ 10.000"},
    {"a[1m] @ 10", "a[1m] @ 10.000"},
    {"a @ start()", NULL},
    {"a[1m] @ end()", NULL},
    {"{__name__=\"\",a=\"x\"}", NULL},
    {"{\"a.b\"=\"c\"}", NULL},
    {"{\"0\"=\"1\"}", NULL},
    {"{\"_0\"=\"1\"}", "{_0=\"1\"}"},
    {"{``=\"0\"}", "{\"\"=\"0\"}"},
    {"1048576", NULL},
    {"predict_linear(foo[1h], 3000)", NULL},
    /* Layout: spacing, sorted matchers, quotes, durations, numbers. */
    {"sum(rate(foo{b=\"c\",a=\"b\"}[90s])) by (job)",
     "sum by (job) (rate(foo{a=\"b\",b=\"c\"}[1m30s]))"},
    {"foo/bar", "foo / bar"},
    {"foo{a='b', c=~`d\\.e`,}", "foo{a=\"b\",c=~\"d\\\\.e\"}"},
    {"{\"foo\"}", "{__name__=\"foo\"}"},
    {"{\"foo\", a=\"b\"}", "{__name__=\"foo\",a=\"b\"}"},
    {"foo[7d]", "foo[1w]"},
    {"foo[14d]", "foo[2w]"},
    {"foo[90d]", "foo[90d]"},
    {"foo[365d]", "foo[1y]"},
    {"foo[3600s]", "foo[1h]"},
    {"foo[1500ms]", "foo[1s500ms]"},
    {"foo[300]", "foo[5m]"},
    {"foo[4.18]", "foo[4s180ms]"},
    {"foo[5m:]", NULL},
    {"foo[5m:1m] @ 10 offset 1h", "foo[5m:1m] @ 10.000 offset 1h"},
    {"foo offset 1h @ 10", "foo @ 10.000 offset 1h"},
    {"foo @ -100.5", "foo @ -100.500"},
    {"foo @ 1h", "foo @ 3600.000"},
    {"foo offset 300", "foo offset 5m"},
    {"foo @ start() offset -1m", NULL},
    {"1e3", "1000"},
    {"0x1f", "31"},
    {"0755", "493"},
    {"1_000", "1000"},
    {"12.34e-6", "0.00001234"},
    {"-0.2e-6", "-0.0000002"},
    {"1e21", "1000000000000000000000"},
    {".5", "0.5"},
    {"5.", "5"},
    {"inf", "+Inf"},
    {"-Inf", "-Inf"},
    {"NaN", "NaN"},
    {"9223372036854775807", "9223372036854776000"},
    {"5m", NULL},
    {"-5m", NULL},
    {"time() - 1h30m", NULL},
    {"\"double \\\" quote\"", NULL},
    {"'single \\' quote'", "\"single ' quote\""},
    {"`raw \\n`", "\"raw \\\\n\""},
    {"\"\\x41\\101\\u00e9\\U0001F600\"", "\"AAé😀\""},
    {"\"\\a\\b\\f\\n\\r\\t\\v\"", NULL},
    {"\"\\x7f\\u200b\"", "\"\\x7f\\u200b\""},
    {"-foo", NULL},
    {"- -foo", "--foo"},
    {"+foo", NULL},
    {"-(1 + 2)", NULL},
    {"- 1", "-1"},
    {"- -1", "1"},
    {"-1 ^ 2", NULL},
    {"2 ^ -1", NULL},
    {"1 == bool 1", NULL},
    {"a and on(b) c", "a and on (b) c"},
    {"a or ignoring(b) c", "a or ignoring (b) c"},
    {"a == bool on(b) group_right c", "a == bool on (b) group_right () c"},
    {"1 + on() 2", "1 + 2"},
    {"foo * ignoring() group_left 1", "foo * 1"},
    {"sum by (a, b,) (x)", "sum by (a, b) (x)"},
    {"sum by (sum, by, on, offset, bool, group_left, start, atan2, and) (x)",
     "sum by (sum, by, on, offset, bool, group_left, start, atan2, and) (x)"},
    {"sum by (foo:bar) (x)", "sum by (\"foo:bar\") (x)"},
    {"SUM(x) BY (job)", "sum by (job) (x)"},
    {"foo OFFSET 1h30m", "foo offset 1h30m"},
    {"quantile(0.9, x)", NULL},
    {"count_values without (a) (\"x\", y)", NULL},
    {"label_join(up, \"foo\", \",\", \"a\", \"b\", \"c\")", NULL},
    {"round(x)", NULL},
    {"round(x, 0.5)", NULL},
    {"hour()", NULL},
    {"days_in_month(vector(1454284800))", NULL},
    {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", NULL},
    {"sum + offset - by * and / start % end ^ step", NULL},
    {"anchored + smoothed", NULL},
    {"fill + fill_left", NULL},
    {"foo # a comment\n+ bar", "foo + bar"},
    {"foo{a=\"b\" # comment\n}", "foo{a=\"b\"}"},
    {"rate(foo[5m] offset -1h)", NULL},
    {"(foo + bar)[5m:1m]", NULL},
    {"min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]", NULL},
    {"foo offset 0", "foo"},
    {"foo offset 0 [5m]", "foo[5m]"},
    {"foo offset 5m [10m:5s]", "foo offset 5m[10m:5s]"},
    {"x[5m:] @ start()", NULL},
};

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        const char *in = formats[i].in, *want = formats[i].out ? formats[i].out : in;
        struct query_node *n = parse_ok(in);
        char *out = format(n);
        if (strcmp(out, want) != 0)
            fail_msg("%s printed as %s, want %s", in, out, want);
        check_round_trip(in, n);
        free(out);
        query_node_free(n);
    }
}

/* ---------------------------------------------------------- shape of the tree */

static const struct {
    const char *in, *tree;
} shapes[] = {
    /* Precedence, lowest first: or; and unless; comparisons; + -; * / % atan2; ^. */
    {"1 + 2 * 3", "(+ 1 (* 2 3))"},
    {"1 * 2 + 3", "(+ (* 1 2) 3)"},
    {"1 - 2 - 3", "(- (- 1 2) 3)"},
    {"1 / 2 / 3", "(/ (/ 1 2) 3)"},
    {"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"},
    {"2 * 3 ^ 2", "(* 2 (^ 3 2))"},
    {"a atan2 b * c", "(* (atan2 a b) c)"},
    {"a % b atan2 c", "(atan2 (% a b) c)"},
    {"a + b > c - d", "(> (+ a b) (- c d))"},
    {"a > b == c", "(== (> a b) c)"},
    {"a or b and c", "(or a (and b c))"},
    {"a and b or c", "(or (and a b) c)"},
    {"a and b unless c", "(unless (and a b) c)"},
    {"a unless b and c", "(and (unless a b) c)"},
    {"a == b and c", "(and (== a b) c)"},
    {"a or b > c + d * e ^ f", "(or a (> b (+ c (* d (^ e f)))))"},
    {"foo + bar or bla and blub", "(or (+ foo bar) (and bla blub))"},
    {"1 < bool 2 - 1 * 2", "(< bool 1 (- 2 (* 1 2)))"},
    /* Unary minus binds like *: tighter than + and *, looser than ^; numbers fold. */
    {"-1", "-1"},
    {"-1 ^ 2", "(neg (^ 1 2))"},
    {"-1 * 2", "(* -1 2)"},
    {"-1 + 2", "(+ -1 2)"},
    {"-1 ^ -2", "(neg (^ 1 -2))"},
    {"+1 + -2 * 1", "(+ 1 (* -2 1))"},
    {"-a * b", "(* (neg a) b)"},
    {"-a ^ b", "(neg (^ a b))"},
    {"a * -b ^ c", "(* a (neg (^ b c)))"},
    {"a ^ -b * c", "(* (^ a (neg b)) c)"},
    {"- - a", "(neg (neg a))"},
    {"-(1)", "(neg (paren 1))"},
    {"1 + 2/(3*1)", "(+ 1 (/ 2 (paren (* 3 1))))"},
    /* Modifiers bind to the closest operand. */
    {"a + b offset 5m", "(+ a b offset 5m)"},
    {"-a offset 5m", "(neg a offset 5m)"},
    {"a ^ b offset 1m", "(^ a b offset 1m)"},
    {"rate(a[5m:])", "(rate (subquery a))"},
    {"foo offset 5s - 8", "(- foo offset 5s 8)"},
    {"foo offset -1 ^ 1", "(^ foo offset -1s 1)"},
    {"foo @ 5 ^ 2", "(^ foo @ 5.000 2)"},
    /* Keywords as metric names; aggregations and calls. */
    {"foo * sum", "(* foo sum)"},
    {"min", "min"},
    {"and and and", "(and and and)"},
    {"sum(foo) + count(bar)", "(+ (sum foo) (count bar))"},
    {"topk(3, foo)", "(topk 3 foo)"},
    {"count_values(\"v\", foo)", "(count_values \"v\" foo)"},
    {"rate(foo[5m])", "(rate foo[5m])"},
    {"label_replace(a, \"b\", \"c\", \"d\", \"e\")", "(label_replace a \"b\" \"c\" \"d\" \"e\")"},
    {"time()", "(time)"},
    {"5m + 1", "(+ 300 1)"},
};

static void test_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
        struct query_node *n = parse_ok(shapes[i].in);
        struct sbuf sb;
        sbuf_init(&sb, 0);
        sx(n, &sb);
        if (strcmp(sb.buf, shapes[i].tree) != 0)
            fail_msg("%s parsed as %s, want %s", shapes[i].in, sb.buf, shapes[i].tree);
        check_round_trip(shapes[i].in, n);
        sbuf_release(&sb);
        query_node_free(n);
    }
}

/* ------------------------------------------------------------------- errors */

/* Input, where the error is (line:col) and what the message says after "parse error: ". */
static const struct {
    const char *in, *pos, *msg;
} errors[] = {
    {"", "unknown position", "no expression found in input"},
    {"# just a comment\n\n", "1:1", "no expression found in input"},
    {"1+", "1:3", "unexpected end of input"},
    {"1 /", "1:4", "unexpected end of input"},
    {"*1", "1:1", "unexpected <op:*>"},
    {"@@", "1:1", "unexpected <op:@>"},
    {"-=", "1:2", "unexpected \"=\""},
    {"e-+=/(0)", "1:4", "unexpected \"=\""},
    {"++-++-+-+-<", "1:11", "unexpected <op:<>"},
    {"foo bar", "1:5", "unexpected identifier \"bar\""},
    {"foo \"abcdefghijklmnop\"", "1:5", "unexpected string \"\\\"abcdefghi\"..."},
    {"foo 123456789012345", "1:5", "unexpected number \"1234567890\"..."},
    {"()", "1:2", "unexpected \")\""},
    {".", "1:1", "unexpected character: '.'"},
    {"foo é", "1:5", "unexpected character: 'é'"},
    {"foo $", "1:5", "unexpected character: '$'"},
    {"foo\n  + $", "2:5", "unexpected character: '$'"},
    {"2.5.", "1:1", "bad number or duration syntax: \"2.5.\""},
    {"100..4", "1:1", "bad number or duration syntax: \"100..\""},
    {"0deadbeef", "1:1", "bad number or duration syntax: \"0de\""},
    {"12.34e", "1:1", "bad number or duration syntax: \"12.34e\""},
    {"0.5. + 1", "1:1",
     "error parsing number: strconv.ParseFloat: parsing \"0.5.\": invalid syntax"},
    {"1e400", "1:1",
     "error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range"},
    {"(1))", "1:5", "unexpected right parenthesis ')'"},
    {"((1)", "1:5", "unclosed left parenthesis"},
    {"(", "1:2", "unclosed left parenthesis"},
    {"sum(rate(", "1:10", "unclosed left parenthesis"},
    {"foo]", "1:4", "unexpected right bracket ']'"},
    {"foo[5m", "1:7", "unclosed left bracket"},
    {"1 !~ 1", "1:3", "unexpected character after '!': '~'"},
    {"1 =~ 1", "1:3", "unexpected character after '=': '~'"},
    {"foo !", "1:5", "unexpected character after '!': '\xef\xbf\xbd'"},
    /* Strings. */
    {"\"unterminated", "1:1", "unterminated quoted string"},
    {"\"new\nline\"", "1:1", "unterminated quoted string"},
    {"`raw", "1:1", "unterminated raw string"},
    {"\"\\", "1:1", "escape sequence not terminated"},
    {"\"\\c\"", "1:1", "unknown escape sequence U+0063 'c'"},
    {"\"\\x.\"", "1:1", "illegal character U+002E '.' in escape sequence"},
    {"'\\\"'", "1:1", "unknown escape sequence U+0022 '\"'"},
    {"\"\\400\"", "1:1", "escape sequence is an invalid Unicode code point"},
    {"\"\\ud800\"", "1:1", "escape sequence is an invalid Unicode code point"},
    {"foo{a=\"\xff\"}", "1:7", "invalid UTF-8 rune"},
    {"label_replace(a, `b`, `c\xff`, `d`, `.*`)", "1:23", "invalid UTF-8 rune"},
    {"\"a\\x00b\"", "1:1", "strings with NUL bytes are not supported"},
    /* Selectors. */
    {"{", "1:2", "unexpected end of input inside braces"},
    {"}", "1:1", "unexpected character: '}'"},
    {"some{", "1:6", "unexpected end of input inside braces"},
    {"some_metric{a=b}", "1:15", "unexpected identifier \"b\" in label matching, expected string"},
    {"some_metric{a:b=\"b\"}", "1:14", "unexpected character inside braces: ':'"},
    {"foo{a*\"b\"}", "1:6", "unexpected character inside braces: '*'"},
    {"foo{gibberish}", "1:14",
     "unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{1}", "1:5", "unexpected character inside braces: '1'"},
    {"foo{,}", "1:5", "unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo{__name__ == \"bar\"}", "1:15", "unexpected \"=\" in label matching, expected string"},
    {"foo{__name__=\"bar\" lol}", "1:20",
     "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
    {"foo{\"a\"=}", "1:9", "unexpected \"}\" in label matching, expected string"},
    {"{\"a\" \"b\"}", "1:6",
     "unexpected string \"\\\"b\\\"\" in label matching, expected \",\" or \"}\""},
    {"foo{a!}", "1:6", "unexpected character after '!' inside braces: '}'"},
    {"foo{{", "1:5", "unexpected left brace '{'"},
    {"{}", "1:1", "vector selector must contain at least one non-empty matcher"},
    {"{x=\"\"}", "1:1", "vector selector must contain at least one non-empty matcher"},
    {"{x=~\".*\"}", "1:1", "vector selector must contain at least one non-empty matcher"},
    {"{x!~\".+\"}", "1:1", "vector selector must contain at least one non-empty matcher"},
    {"{x!=\"a\"}", "1:1", "vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}", "1:1", "metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{\"bar\"}", "1:1", "metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{a=~\"(\"}", "1:5", "error parsing regexp: missing closing parenthesis"},
    /* Ranges and subqueries. */
    {"foo[5mm]", "1:5", "bad number or duration syntax: \"5mm\""},
    {"foo[5m1]", "1:5", "bad number or duration syntax: \"5m1\""},
    {"foo[5m:1m1]", "1:8", "bad number or duration syntax: \"1m1\""},
    {"foo[5y1hs]", "1:5", "unknown unit \"hs\" in duration \"5y1hs\""},
    {"foo[5m1h]", "1:5", "not a valid duration string: \"5m1h\""},
    {"foo[1.5m]", "1:5", "unknown unit \".\" in duration \"1.5m\""},
    {"foo[0m]", "1:5", "duration must be greater than 0"},
    {"foo[-1]", "1:5", "duration must be greater than 0"},
    {"foo[5m:0s]", "1:8", "duration must be greater than 0"},
    {"foo[0.0001]", "1:5", "duration must be at least 1ms"},
    {"foo[9.5e10]", "1:5", "duration out of range"},
    {"foo[300y]", "1:5", "duration out of range"},
    {"foo[\"5m\"]", "1:5", "unexpected character in duration expression: '\"'"},
    {"foo[]", "1:5",
     "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or "
     "range()"},
    {"foo[step]", "1:9",
     "unexpected \"]\" in subquery or range selector, expected number, duration, step(), or "
     "range()"},
    {"foo[:5m]", "1:6", "unexpected colon before duration in duration expression"},
    {"foo[5m 5m]", "1:8",
     "unexpected duration \"5m\" in subquery or range, expected \":\" or \"]\""},
    {"foo[5m:1m 1m]", "1:11", "unexpected duration \"1m\" in subquery selector, expected \"]\""},
    {"foo[5m:,]", "1:8",
     "unexpected \",\" in subquery selector, expected number, duration, step(), range(), or "
     "\"]\""},
    {"foo[5s x 5s]", "1:8", "unexpected character: 'x', expected ':'"},
    {"foo[5m::]", "1:8", "unexpected colon ':'"},
    {"foo{bar=\"baz\"}[", "1:16", "unexpected end of input in duration expression"},
    {"(foo + bar)[5m]", "1:12", "ranges only allowed for vector selectors"},
    {"rate(foo[5m])[1h]", "1:14", "ranges only allowed for vector selectors"},
    {"some_metric OFFSET 1m[5m]", "1:22", "no offset modifiers allowed before range"},
    {"some_metric @ 1234 [5m]", "1:20", "no @ modifiers allowed before range"},
    {"some_metric @ start() [5m]", "1:23", "no @ modifiers allowed before range"},
    {"test[5d] OFFSET 10s [10m:5s]", "1:1",
     "subquery is only allowed on instant vector, got matrix instead"},
    {"1[5m:]", "1:1", "subquery is only allowed on instant vector, got scalar instead"},
    /* offset and @. */
    {"1 offset 1d", "1:1",
     "offset modifier must be preceded by an instant vector selector or range vector selector "
     "or a subquery"},
    {"rate(x[5m]) offset 1h", "1:1",
     "offset modifier must be preceded by an instant vector selector or range vector selector "
     "or a subquery"},
    {"foo offset 1s offset 2s", "1:1", "offset may not be set multiple times"},
    {"some_metric[5m] OFFSET 1mm", "1:24", "bad number or duration syntax: \"1mm\""},
    {"some_metric[5m] OFFSET", "1:23",
     "unexpected end of input in offset, expected number, duration, step(), or range()"},
    {"foo offset bar", "1:12",
     "unexpected identifier \"bar\" in offset, expected number, duration, step(), or range()"},
    {"foo offset 9.5e10", "1:12", "duration out of range"},
    {"foo offset -9.5e10", "1:12", "duration out of range"},
    {"some_metric[5m] @", "1:18", "unexpected end of input in @, expected timestamp"},
    {"foo @ start", "1:12", "unexpected end of input in @, expected timestamp"},
    {"foo @ start(1)", "1:13", "unexpected number \"1\" in @, expected timestamp"},
    {"foo @ bar", "1:7", "unexpected identifier \"bar\" in @, expected timestamp"},
    {"rate(some_metric[5m]) @ 1234", "1:1",
     "@ modifier must be preceded by an instant vector selector or range vector selector or a "
     "subquery"},
    {"foo @ 1 @ 2", "1:1", "@ <timestamp> may not be set multiple times"},
    {"foo @ +Inf", "1:1", "timestamp out of bounds for @ modifier: +Inf"},
    {"foo @ -Inf", "1:1", "timestamp out of bounds for @ modifier: -Inf"},
    {"foo @ NaN", "1:1", "timestamp out of bounds for @ modifier: NaN"},
    {"foo @ 1e20", "1:1", "timestamp out of bounds for @ modifier: 100000000000000000000.000000"},
    /* Operators and their type rules. */
    {"1 and 1", "1:1", "set operator \"and\" not allowed in binary scalar expression"},
    {"foo or 1", "1:1", "set operator \"or\" not allowed in binary scalar expression"},
    {"1 unless foo", "1:1", "set operator \"unless\" not allowed in binary scalar expression"},
    {"1 == 1", "1:3", "comparisons between scalars must use BOOL modifier"},
    {"foo + bool bar", "1:5", "bool modifier can only be used on comparison operators"},
    {"foo and bool 10", "1:5", "bool modifier can only be used on comparison operators"},
    {"foo == on(bar) 10", "1:1", "vector matching only allowed between instant vectors"},
    {"foo and on(bar) group_left(baz) bar", "1:1", "no grouping allowed for \"and\" operation"},
    {"foo or on(bar) group_right(baz) bar", "1:1", "no grouping allowed for \"or\" operation"},
    {"a + on(instance) group_left(job, instance) b", "1:3",
     "label \"instance\" must not occur in ON and GROUP clause at once"},
    {"a - on(b) ignoring(c) d", "1:11", "unexpected <ignoring>"},
    {"foo + group_left(baz) bar", "1:7", "unexpected <group_left>"},
    {"foo * on(a) group_left", "1:23", "unexpected end of input in grouping opts, expected \"(\""},
    {"foo * on(a) group_left == b", "1:24", "unexpected <op:==> in grouping opts, expected \"(\""},
    {"foo + on bar", "1:10", "unexpected identifier \"bar\" in grouping opts, expected \"(\""},
    {"-\"string\"", "1:1",
     "unary expression only allowed on expressions of type scalar or instant vector, got "
     "\"string\""},
    {"-test[5m]", "1:1",
     "unary expression only allowed on expressions of type scalar or instant vector, got \"range "
     "vector\""},
    {"\"a\" + 1", "1:1", "binary expression must contain only scalar and instant vector types"},
    {"foo + bar[5m]", "1:7", "binary expression must contain only scalar and instant vector types"},
    /* Aggregations. */
    {"sum by (\"foo)(some_metric{})", "1:9", "unterminated quoted string"},
    {"sum without(==)(some_metric)", "1:13", "unexpected <op:==> in grouping opts, expected label"},
    {"sum without(,)(some_metric)", "1:13", "unexpected \",\" in grouping opts, expected label"},
    {"sum without(foo,,)(some_metric)", "1:17",
     "unexpected \",\" in grouping opts, expected label"},
    {"sum by (a b) (x)", "1:11",
     "unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"sum by (nan) (x)", "1:9", "unexpected number \"nan\" in grouping opts, expected label"},
    {"sum by (\"\") (x)", "1:9", "invalid label name for grouping: \"\""},
    {"sum some_metric by (test)", "1:5", "unexpected identifier \"some_metric\""},
    {"sum (some_metric) by test", "1:22",
     "unexpected identifier \"test\" in grouping opts, expected \"(\""},
    {"sum by (a) foo", "1:12", "unexpected identifier \"foo\" in aggregation"},
    {"sum(foo bar)", "1:9", "unexpected identifier \"bar\" in aggregation"},
    {"rate(sum(foo +))", "1:15", "unexpected \")\" in aggregation"},
    {"sum(,)", "1:5", "unexpected \",\" in aggregation"},
    {"sum () by (test)", "1:1", "no arguments for aggregate expression provided"},
    {"MIN keep_common (some_metric)", "1:5", "unexpected identifier \"keep_common\""},
    {"MIN (some_metric) keep_common", "1:19", "unexpected identifier \"keep_common\""},
    {"sum (some_metric) without (test) by (test)", "1:34", "unexpected <by>"},
    {"topk(some_metric)", "1:1",
     "wrong number of arguments for aggregate expression provided, expected 2, got 1"},
    {"sum(a, b)", "1:1",
     "wrong number of arguments for aggregate expression provided, expected 1, got 2"},
    {"topk(some_metric,)", "1:17", "trailing commas not allowed in function call args"},
    {"topk(some_metric, other_metric)", "1:6",
     "expected type scalar in aggregation parameter, got instant vector"},
    {"count_values(5, other_metric)", "1:14",
     "expected type string in aggregation parameter, got scalar"},
    {"sum(1)", "1:5", "expected type instant vector in aggregation expression, got scalar"},
    {"sum(x) by (a", "1:13", "unclosed left parenthesis"},
    /* Functions. */
    {"floor()", "1:1", "expected 1 argument(s) in call to \"floor\", got 0"},
    {"floor(some_metric, other_metric)", "1:1",
     "expected 1 argument(s) in call to \"floor\", got 2"},
    {"floor(1)", "1:7", "expected type instant vector in call to function \"floor\", got scalar"},
    {"hour(a, a, a)", "1:1", "expected at most 1 argument(s) in call to \"hour\", got 3"},
    {"label_join(a, \"b\")", "1:1",
     "expected at least 3 argument(s) in call to \"label_join\", got 2"},
    {"label_join(a, \"b\", \"c\", 1)", "1:25",
     "expected type string in call to function \"label_join\", got scalar"},
    {"time(some_metric)", "1:1", "expected 0 argument(s) in call to \"time\", got 1"},
    {"non_existent_function_far_bar()", "1:1",
     "unknown function with name \"non_existent_function_far_bar\""},
    {"RATE(x[5m])", "1:1", "unknown function with name \"RATE\""},
    {"a>b()", "1:3", "unknown function with name \"b\""},
    {"absentsum(x))", "1:1", "unknown function with name \"absentsum\""},
    {"rate(some_metric)", "1:6",
     "expected type range vector in call to function \"rate\", got instant vector"},
    {"rate(avg)", "1:6",
     "expected type range vector in call to function \"rate\", got instant vector"},
    {"rate(foo[5m],)", "1:13", "trailing commas not allowed in function call args"},
    {"predict_linear(x[5m], )", "1:21", "trailing commas not allowed in function call args"},
    {"foo:bar(x)", "1:8", "unexpected \"(\""},
    /* What sitrep does not support, refused as such. */
    {"info(up)", "1:1", "function \"info\" is not supported"},
    {"mad_over_time(x[5m])", "1:1", "function \"mad_over_time\" is not supported"},
    {"double_exponential_smoothing(x[5m], 0.5, 0.5)", "1:1",
     "function \"double_exponential_smoothing\" is not supported"},
    {"sort_by_label(x, \"a\")", "1:1", "function \"sort_by_label\" is not supported"},
    {"histogram_quantiles(x, \"q\", 0.5)", "1:1",
     "function \"histogram_quantiles\" is not supported"},
    {"ts_of_max_over_time(x[5m])", "1:1", "function \"ts_of_max_over_time\" is not supported"},
    {"start_timestamp(x)", "1:1", "function \"start_timestamp\" is not supported"},
    {"step()", "1:1", "function \"step\" is not supported"},
    {"x + start()", "1:5", "function \"start\" is not supported"},
    {"limitk(2, x)", "1:1", "limitk() is not supported"},
    {"limit_ratio by (a) (0.5, x)", "1:1", "limit_ratio() is not supported"},
    {"foo[5m+1m]", "1:7", "duration expressions are not supported"},
    {"foo[5m:1m*2]", "1:10", "duration expressions are not supported"},
    {"foo[(5m)]", "1:5", "duration expressions are not supported"},
    {"foo[step()]", "1:5", "duration expressions are not supported"},
    {"foo[5m:range()]", "1:8", "duration expressions are not supported"},
    {"foo[-min_of(5m, 1m)]", "1:6", "duration expressions are not supported"},
    {"foo offset (5m)", "1:12", "duration expressions are not supported"},
    {"foo offset -step()", "1:13", "duration expressions are not supported"},
    {"foo anchored", "1:5", "anchored modifier is not supported"},
    {"foo[5m] smoothed", "1:9", "smoothed modifier is not supported"},
    {"a + fill(0) b", "1:5", "fill modifier is not supported"},
    {"a + on(x) group_left fill_left(1) b", "1:22", "fill_left modifier is not supported"},
    {"a </ 0.5", "1:3", "histogram trim operator \"</\" is not supported"},
    {"a >/ 0.5", "1:3", "histogram trim operator \">/\" is not supported"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
        struct query_node *n = (struct query_node *)1;
        struct query_error err;
        if (query_parse(errors[i].in, &n, &err) == 0) {
            char *out = format(n);
            fail_msg("%s parsed (as %s), want error %s", errors[i].in, out, errors[i].msg);
        }
        assert_null(n);
        char want[QUERY_ERROR_LEN];
        snprintf(want, sizeof(want), "%s: parse error: ", errors[i].pos);
        if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, errors[i].msg))
            fail_msg("%s: error %s, want %s%s", errors[i].in, err.msg, want, errors[i].msg);
    }
}

/* The error's position is also given as a byte offset, line and column. */
static void test_error_position(void **state)
{
    (void)state;
    struct query_node *n;
    struct query_error err;
    assert_int_equal(query_parse("sum(x)\n  + on(a) group_left b\n  * )", &n, &err), -1);
    /* Like Prometheus, the error is placed just after the extra ')'. */
    assert_int_equal(err.pos, 35);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 6);
    assert_string_equal(err.msg, "3:6: parse error: unexpected right parenthesis ')'");
    assert_int_equal(query_parse("", &n, &err), -1);
    assert_int_equal(err.line, 0);
    assert_int_equal(err.col, 0);
    /* NULL err is allowed. */
    assert_int_equal(query_parse("1 +", &n, NULL), -1);
    assert_null(n);
}

/* ------------------------------------------------------------- node contents */

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        double v;
        int duration;
    } cases[] = {
        {"1", 1, 0},
        {"+Inf", INFINITY, 0},
        {"-inf", -INFINITY, 0},
        {".5", 0.5, 0},
        {"5.", 5, 0},
        {"123.4567", 123.4567, 0},
        {"5e-3", 0.005, 0},
        {"5E3", 5000, 0},
        {"0xc", 12, 0},
        {"0X_1F", 31, 0},
        {"0755", 493, 0},
        {"08", 8, 0},
        {"-0755", -493, 0},
        {"+5.5e-3", 0.0055, 0},
        {"1_000_000", 1e6, 0},
        {"1h", 3600, 1},
        {"1h30m", 5400, 1},
        {"90s", 90, 1},
        {"1ms", 0.001, 1},
        {"-2d", -172800, 1},
        {"1y", 31536000, 1},
        {"2w", 1209600, 1},
        {"0", 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct query_node *n = parse_ok(cases[i].in);
        assert_int_equal(n->type, QUERY_NODE_NUMBER);
        assert_int_equal(n->value_type, QUERY_VALUE_SCALAR);
        if (n->number.value != cases[i].v)
            fail_msg("%s = %g, want %g", cases[i].in, n->number.value, cases[i].v);
        assert_int_equal(n->number.duration, cases[i].duration);
        assert_int_equal(n->pos.start, 0);
        assert_int_equal(n->pos.end, strlen(cases[i].in));
        query_node_free(n);
    }
    struct query_node *n = parse_ok("NaN");
    assert_true(isnan(n->number.value));
    query_node_free(n);
}

static void test_strings(void **state)
{
    (void)state;
    static const struct {
        const char *in, *v;
    } cases[] = {
        {"\"double-quoted string \\\" with escaped quote\"",
         "double-quoted string \" with escaped quote"},
        {"'single-quoted string \\' with escaped quote'",
         "single-quoted string ' with escaped quote"},
        {"`backtick-quoted string`", "backtick-quoted string"},
        {"\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\" - \\xFF\\377\\u1234\\U00010111\\U0001011111☺\"",
         "\a\b\f\n\r\t\v\\\" - \xFF\377\xE1\x88\xB4\xF0\x90\x84\x91\xF0\x90\x84\x91"
         "11☺"},
        {"`\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\' - \\xFF`", "\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\' - \\xFF"},
        {"`multi\nline`", "multi\nline"},
        {"\"日本語\"", "日本語"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct query_node *n = parse_ok(cases[i].in);
        assert_int_equal(n->type, QUERY_NODE_STRING);
        assert_int_equal(n->value_type, QUERY_VALUE_STRING);
        assert_string_equal(n->string.value, cases[i].v);
        check_round_trip(cases[i].in, n);
        query_node_free(n);
    }
}

static void test_vector_selectors(void **state)
{
    (void)state;
    struct query_node *n =
        parse_ok("foo:bar{a=\"b\", c!='d', e=~`f.*`, g!~\"h\",} offset -5m @ 12.3456");
    assert_int_equal(n->type, QUERY_NODE_VECTOR_SELECTOR);
    assert_int_equal(n->value_type, QUERY_VALUE_VECTOR);
    assert_string_equal(n->vs.name, "foo:bar");
    assert_int_equal(n->vs.nmatchers, 5);
    static const struct {
        enum tsdb_match op;
        const char *name, *value;
    } want[] = {{TSDB_EQ, "a", "b"},
                {TSDB_NEQ, "c", "d"},
                {TSDB_RE, "e", "f.*"},
                {TSDB_NRE, "g", "h"},
                {TSDB_EQ, "__name__", "foo:bar"}};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        assert_int_equal(n->vs.matchers[i].op, want[i].op);
        assert_string_equal(n->vs.matchers[i].name, want[i].name);
        assert_string_equal(n->vs.matchers[i].value, want[i].value);
    }
    assert_int_equal(n->vs.offset_ms, -300000);
    assert_int_equal(n->vs.at, QUERY_AT_TIME);
    assert_int_equal(n->vs.at_ms, 12346);
    assert_int_equal(n->pos.start, 0);
    assert_int_equal(n->pos.end,
                     strlen("foo:bar{a=\"b\", c!='d', e=~`f.*`, g!~\"h\",} offset -5m @ 12.3456"));
    query_node_free(n);

    /* The name inside braces, UTF-8 style: no name, a __name__ matcher. */
    n = parse_ok("{\"some.metric\", \"service.name\"=\"api\"}");
    assert_null(n->vs.name);
    assert_int_equal(n->vs.nmatchers, 2);
    assert_string_equal(n->vs.matchers[0].name, "__name__");
    assert_string_equal(n->vs.matchers[0].value, "some.metric");
    assert_string_equal(n->vs.matchers[1].name, "service.name");
    query_node_free(n);

    /* Keywords are label names inside braces; metric names may be keywords. */
    n = parse_ok("offset{by=\"1\", on=\"2\", sum=\"3\", nan=\"4\", Inf=\"5\"}");
    assert_string_equal(n->vs.name, "offset");
    assert_string_equal(n->vs.matchers[3].name, "nan");
    query_node_free(n);

    n = parse_ok("foo @ end()");
    assert_int_equal(n->vs.at, QUERY_AT_END);
    query_node_free(n);

    n = parse_ok("rate(foo{job=\"a\"}[5m] offset 1h @ start())");
    assert_int_equal(n->type, QUERY_NODE_CALL);
    struct query_node *m = n->call.args[0];
    assert_int_equal(m->type, QUERY_NODE_MATRIX_SELECTOR);
    assert_int_equal(m->value_type, QUERY_VALUE_MATRIX);
    assert_int_equal(m->matrix.range_ms, 300000);
    assert_int_equal(m->matrix.vs->vs.offset_ms, 3600000);
    assert_int_equal(m->matrix.vs->vs.at, QUERY_AT_START);
    assert_int_equal(m->pos.start, 5);
    assert_int_equal(m->pos.end, 41);
    assert_int_equal(m->matrix.vs->pos.start, 5);
    assert_int_equal(m->matrix.vs->pos.end, 17);
    query_node_free(n);
}

static void test_subqueries(void **state)
{
    (void)state;
    struct query_node *n = parse_ok("max_over_time(rate(x[1m])[1h:5m] offset 10m @ 100)");
    struct query_node *s = n->call.args[0];
    assert_int_equal(s->type, QUERY_NODE_SUBQUERY);
    assert_int_equal(s->value_type, QUERY_VALUE_MATRIX);
    assert_int_equal(s->subquery.range_ms, 3600000);
    assert_int_equal(s->subquery.step_ms, 300000);
    assert_int_equal(s->subquery.offset_ms, 600000);
    assert_int_equal(s->subquery.at, QUERY_AT_TIME);
    assert_int_equal(s->subquery.at_ms, 100000);
    assert_int_equal(s->subquery.expr->type, QUERY_NODE_CALL);
    query_node_free(n);

    n = parse_ok("foo[10m:]");
    assert_int_equal(n->subquery.step_ms, 0);
    assert_int_equal(n->subquery.expr->type, QUERY_NODE_VECTOR_SELECTOR);
    query_node_free(n);
}

static void test_binary(void **state)
{
    (void)state;
    struct query_node *n = parse_ok("a + on(x, y) group_left(z) b");
    assert_int_equal(n->type, QUERY_NODE_BINARY);
    assert_int_equal(n->binary.op, QUERY_OP_ADD);
    const struct query_vector_matching *m = n->binary.matching;
    assert_non_null(m);
    assert_int_equal(m->card, QUERY_CARD_MANY_TO_ONE);
    assert_true(m->on);
    assert_int_equal(m->nlabels, 2);
    assert_string_equal(m->labels[1], "y");
    assert_int_equal(m->ninclude, 1);
    assert_string_equal(m->include[0], "z");
    query_node_free(n);

    n = parse_ok("a unless ignoring(x) b");
    assert_int_equal(n->binary.matching->card, QUERY_CARD_MANY_TO_MANY);
    assert_false(n->binary.matching->on);
    query_node_free(n);

    n = parse_ok("a > bool 1");
    assert_true(n->binary.return_bool);
    assert_null(n->binary.matching); /* a scalar side: no vector matching */
    assert_int_equal(n->value_type, QUERY_VALUE_VECTOR);
    query_node_free(n);

    n = parse_ok("1 > bool 2");
    assert_int_equal(n->value_type, QUERY_VALUE_SCALAR);
    query_node_free(n);

    n = parse_ok("a - on(b) group_right c");
    assert_int_equal(n->binary.matching->card, QUERY_CARD_ONE_TO_MANY);
    assert_int_equal(n->binary.matching->ninclude, 0);
    query_node_free(n);
}

static void test_aggregations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        enum query_agg op;
        int without;
        size_t ngrouping;
        int param;
    } cases[] = {
        {"sum by (foo) (x)", QUERY_AGG_SUM, 0, 1, 0},
        {"avg(x) by (foo, bar)", QUERY_AGG_AVG, 0, 2, 0},
        {"max without (foo) (x)", QUERY_AGG_MAX, 1, 1, 0},
        {"min(x) without ()", QUERY_AGG_MIN, 1, 0, 0},
        {"count(x)", QUERY_AGG_COUNT, 0, 0, 0},
        {"group by () (x)", QUERY_AGG_GROUP, 0, 0, 0},
        {"stddev(x)", QUERY_AGG_STDDEV, 0, 0, 0},
        {"stdvar(x)", QUERY_AGG_STDVAR, 0, 0, 0},
        {"topk(5, x)", QUERY_AGG_TOPK, 0, 0, 1},
        {"bottomk by (a) (5, x)", QUERY_AGG_BOTTOMK, 0, 1, 1},
        {"quantile(0.9, x) without (a)", QUERY_AGG_QUANTILE, 1, 1, 1},
        {"count_values(\"v\", x)", QUERY_AGG_COUNT_VALUES, 0, 0, 1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct query_node *n = parse_ok(cases[i].in);
        assert_int_equal(n->type, QUERY_NODE_AGGREGATE);
        assert_int_equal(n->value_type, QUERY_VALUE_VECTOR);
        assert_int_equal(n->aggregate.op, cases[i].op);
        assert_int_equal(n->aggregate.without, cases[i].without);
        assert_int_equal(n->aggregate.ngrouping, cases[i].ngrouping);
        assert_int_equal(n->aggregate.param != NULL, cases[i].param);
        assert_int_equal(n->pos.start, 0);
        assert_int_equal(n->pos.end, strlen(cases[i].in));
        check_round_trip(cases[i].in, n);
        query_node_free(n);
    }
    struct query_node *n = parse_ok("sum without (and, by, avg, count, alert, annotations) (x)");
    assert_int_equal(n->aggregate.ngrouping, 6);
    assert_string_equal(n->aggregate.grouping[1], "by");
    query_node_free(n);
}

static void test_calls(void **state)
{
    (void)state;
    struct query_node *n = parse_ok("round(some_metric, 5)");
    assert_int_equal(n->type, QUERY_NODE_CALL);
    assert_int_equal(n->call.func->id, QUERY_FN_ROUND);
    assert_int_equal(n->call.nargs, 2);
    assert_int_equal(n->value_type, QUERY_VALUE_VECTOR);
    query_node_free(n);
    n = parse_ok("scalar(x)");
    assert_int_equal(n->value_type, QUERY_VALUE_SCALAR);
    query_node_free(n);
    n = parse_ok("pi()");
    assert_int_equal(n->call.func->id, QUERY_FN_PI);
    assert_int_equal(n->call.nargs, 0);
    query_node_free(n);
    /* Native-histogram-only functions parse (they return nothing for floats). */
    n = parse_ok("histogram_count(rate(x[5m]))");
    assert_true(n->call.func->flags & QUERY_FN_HISTOGRAM_ONLY);
    query_node_free(n);
}

static void test_function_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < QUERY_FN_COUNT_; i++) {
        const struct query_function *f = &query_functions[i];
        assert_int_equal(f->id, i);
        if (i > 0)
            assert_true(strcmp(query_functions[i - 1].name, f->name) < 0);
        assert_ptr_equal(query_function_lookup(f->name, strlen(f->name)), f);
        assert_true(f->nargtypes >= 0 && f->nargtypes <= 5);
    }
    assert_null(query_function_lookup("rat", 3));
    assert_null(query_function_lookup("rates", 5));
    assert_null(query_function_lookup("", 0));
    assert_ptr_equal(query_function_lookup("rate(", 4), &query_functions[QUERY_FN_RATE]);
    assert_int_equal(query_functions[QUERY_FN_LABEL_REPLACE].nargtypes, 5);
    assert_int_equal(query_functions[QUERY_FN_LABEL_JOIN].variadic, -1);
    assert_true(query_functions[QUERY_FN_INFO].flags & QUERY_FN_EXPERIMENTAL);
    assert_false(query_functions[QUERY_FN_RATE].flags);
}

static void test_positions(void **state)
{
    (void)state;
    const char *q = "sum by (a) (rate(foo{b=\"c\"}[5m])) / -2 + (bar)";
    struct query_node *n = parse_ok(q);
    /* ((sum / -2) + (bar)) */
    assert_int_equal(n->pos.start, 0);
    assert_int_equal(n->pos.end, strlen(q));
    struct query_node *div = n->binary.lhs, *sum = div->binary.lhs, *two = div->binary.rhs;
    assert_int_equal(sum->pos.start, 0);
    assert_int_equal(sum->pos.end, 33);
    assert_int_equal(two->pos.start, 36);
    assert_int_equal(two->pos.end, 38);
    struct query_node *rate = sum->aggregate.expr;
    assert_int_equal(rate->pos.start, 12);
    assert_int_equal(rate->pos.end, 32);
    struct query_node *paren = n->binary.rhs;
    assert_int_equal(paren->pos.start, 41);
    assert_int_equal(paren->pos.end, 46);
    assert_int_equal(paren->paren.expr->pos.start, 42);
    query_node_free(n);
}

/* ------------------------------------------------------------------- limits */

static void test_limits(void **state)
{
    (void)state;
    struct query_node *n;
    struct query_error err;
    /* Too long. */
    size_t len = QUERY_MAX_LEN + 1;
    char *q = xmalloc(len + 1);
    memset(q, ' ', len);
    q[0] = '1';
    q[len] = '\0';
    assert_int_equal(query_parse(q, &n, &err), -1);
    assert_non_null(strstr(err.msg, "longer than 65536 bytes"));
    q[len - 1] = '\0';
    assert_int_equal(query_parse(q, &n, &err), 0);
    query_node_free(n);
    free(q);

    /* Deep nesting of every kind fails cleanly, without exhausting the stack. */
    static const char *const units[][3] = {
        {"(", "1", ")"},    {"-(", "1", ")"}, {"abs(", "x", ")"},
        {"sum(", "x", ")"}, {"-", "x", ""},   {"1^", "1", ""},
        {"", "x", "[5m:]"}, {"1+", "1", ""},  {"x+on(a)", "x", ""},
    };
    for (size_t u = 0; u < ARRAY_SIZE(units); u++) {
        struct sbuf sb;
        sbuf_init(&sb, 0);
        for (int i = 0; i < 20000; i++)
            sbuf_adds(&sb, units[u][0]);
        sbuf_adds(&sb, units[u][1]);
        for (int i = 0; i < 20000; i++)
            sbuf_adds(&sb, units[u][2]);
        if (sb.len > QUERY_MAX_LEN)
            sb.buf[QUERY_MAX_LEN] = '\0';
        assert_int_equal(query_parse(sb.buf, &n, &err), -1);
        sbuf_release(&sb);
    }
    /* 250 levels are fine. */
    struct sbuf sb;
    sbuf_init(&sb, 0);
    for (int i = 0; i < 250; i++)
        sbuf_adds(&sb, "(");
    sbuf_adds(&sb, "1");
    for (int i = 0; i < 250; i++)
        sbuf_adds(&sb, ")");
    n = parse_ok(sb.buf);
    assert_true(n->depth <= QUERY_MAX_DEPTH);
    check_round_trip(sb.buf, n);
    query_node_free(n);
    sbuf_reset(&sb);
    for (int i = 0; i < 300; i++)
        sbuf_adds(&sb, "(");
    sbuf_adds(&sb, "1");
    for (int i = 0; i < 300; i++)
        sbuf_adds(&sb, ")");
    assert_int_equal(query_parse(sb.buf, &n, &err), -1);
    assert_non_null(strstr(err.msg, "nests too deeply"));
    sbuf_release(&sb);

    /* A NUL byte in the text is an unexpected character. */
    assert_int_equal(query_parse_len("foo\0bar", 7, &n, &err), -1);
    assert_string_equal(err.msg, "1:4: parse error: unexpected character: '\\x00'");
    assert_int_equal(query_parse_len("foo", 3, &n, &err), 0);
    query_node_free(n);
}

/* ------------------------------------------------------------- conformance */

static const char *const experimental_files[] = {
    "duration_expression.test",
    "extended_vectors.test",
    "fill-modifier.test",
    "info.test",
    "limit.test",
};

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The expression of an eval line (after "at <time>" or "step <step>"), or NULL. */
static const char *eval_expr(const char *line, int *fail)
{
    static const char *const heads[] = {"eval_fail ", "eval_warn ", "eval_info ", "eval_ordered ",
                                        "eval "};
    size_t h;
    for (h = 0; h < ARRAY_SIZE(heads); h++)
        if (strncmp(line, heads[h], strlen(heads[h])) == 0)
            break;
    if (h == ARRAY_SIZE(heads))
        return NULL;
    *fail = h == 0;
    const char *p = line + strlen(heads[h]);
    /* instant at T EXPR | range from A to B step S EXPR: skip 3 or 7 words. */
    int words = strncmp(p + strspn(p, " \t"), "instant", 7) == 0 ? 3 : 7;
    for (int w = 0; w < words; w++) {
        p += strspn(p, " \t");
        p += strcspn(p, " \t");
    }
    p += strspn(p, " \t");
    return *p ? p : NULL;
}

struct conformance_counts {
    int parsed, expected_fail, not_supported, bad;
};

static void conformance_file(const char *dir, const char *name, struct conformance_counts *c)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char **lines = NULL;
    size_t n = 0, cap = 0;
    char buf[70000];
    while (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        void *v = lines;
        util_grow(&v, &cap, n + 1, sizeof(char *));
        lines = v;
        lines[n++] = xstrdup(buf);
    }
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        int fail = 0;
        const char *expr = eval_expr(lines[i], &fail);
        if (!expr)
            continue;
        for (size_t k = i + 1; k < n && (lines[k][0] == ' ' || lines[k][0] == '\t'); k++)
            if (strstr(lines[k], "expect fail"))
                fail = 1;
        struct query_node *node;
        struct query_error err;
        if (query_parse(expr, &node, &err) == 0) {
            c->parsed++;
            check_round_trip(expr, node);
            query_node_free(node);
        } else if (strstr(err.msg, "not supported")) {
            c->not_supported++;
        } else if (fail) {
            c->expected_fail++;
        } else {
            c->bad++;
            print_error("%s:%zu: %s: %s\n", name, i + 1, expr, err.msg);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static void test_conformance(void **state)
{
    (void)state;
    char dir[4096];
    const char *env = getenv("SITREP_CONFORMANCE_DIR");
    snprintf(dir, sizeof(dir), "%s",
             env ? env : SITREP_FIXTURES_DIR "/../../../shared/conformance/promql");
    DIR *d = opendir(dir);
    if (!d) {
        print_message("conformance: skipped, no scripts at %s (set SITREP_CONFORMANCE_DIR)\n", dir);
        skip();
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".test") != 0)
            continue;
        void *v = names;
        util_grow(&v, &cap, n + 1, sizeof(char *));
        names = v;
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_names);
    struct conformance_counts total = {0};
    for (size_t i = 0; i < n; i++) {
        struct conformance_counts c = {0};
        conformance_file(dir, names[i], &c);
        int experimental = 0;
        for (size_t k = 0; k < ARRAY_SIZE(experimental_files); k++)
            experimental |= strcmp(names[i], experimental_files[k]) == 0;
        print_message("conformance: %-26s parsed %3d, expected fail %2d, not supported %3d%s%s\n",
                      names[i], c.parsed, c.expected_fail, c.not_supported,
                      c.bad ? ", UNEXPECTED ERRORS " : "", experimental ? " (experimental)" : "");
        total.parsed += c.parsed;
        total.expected_fail += c.expected_fail;
        total.not_supported += c.not_supported;
        total.bad += c.bad;
        free(names[i]);
    }
    free(names);
    print_message("conformance: %d files: parsed %d, expected fail %d, not supported %d\n", (int)n,
                  total.parsed, total.expected_fail, total.not_supported);
    assert_true(n > 0);
    assert_int_equal(total.bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_vector_selectors),
        cmocka_unit_test(test_subqueries),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_aggregations),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_function_table),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_conformance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
