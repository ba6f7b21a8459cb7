/*
 * print.c: a syntax tree back to PromQL text, in the canonical form of
 * Prometheus's Expr.String() (promql/parser/printer.go), which is what its
 * /api/v1/format_query answers: single spaces around binary operators,
 * "sum by (job) (x)", matchers sorted, durations normalised (90s -> 1m30s),
 * numbers in their shortest form, strings double-quoted with Go's escapes.
 */
#include "query/promql.h"
#include "query/lex.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"
#include "util/util.h"

int query_format_duration(int64_t ms, struct sbuf *sb)
{
    static const struct {
        const char *unit;
        int64_t mult;
        int exact; /* years and weeks only when nothing smaller remains: 90d, not 12w6d */
    } units[] = {
        {"y", 365LL * 24 * 3600 * 1000, 1},
        {"w", 7LL * 24 * 3600 * 1000, 1},
        {"d", 24LL * 3600 * 1000, 0},
        {"h", 3600LL * 1000, 0},
        {"m", 60LL * 1000, 0},
        {"s", 1000, 0},
        {"ms", 1, 0},
    };
    if (ms == 0)
        return sbuf_adds(sb, "0s");
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    int r = ms < 0 ? sbuf_addc(sb, '-') : 0;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        uint64_t mult = (uint64_t)units[i].mult;
        if (units[i].exact && u % mult != 0)
            continue;
        uint64_t v = u / mult;
        if (v > 0) {
            r |= sbuf_addf(sb, "%llu%s", (unsigned long long)v, units[i].unit);
            u -= v * mult;
        }
    }
    return r;
}

/*
 * strconv.FormatFloat(v, 'f', -1, 64): the fewest digits that read back as
 * v, without an exponent.
 */
static void format_float(struct sbuf *sb, double v)
{
    if (isnan(v)) {
        sbuf_adds(sb, "NaN");
        return;
    }
    if (isinf(v)) {
        sbuf_adds(sb, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        sbuf_adds(sb, signbit(v) ? "-0" : "0");
        return;
    }
    char buf[64];
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* buf is [-]d[.ddd]e(+|-)xx: collect the digits and the decimal exponent. */
    char digits[32];
    size_t nd = 0;
    const char *p = buf;
    if (*p == '-') {
        sbuf_addc(sb, '-');
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof(digits))
            digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    long point = (long)exp + 1; /* digits before the decimal point */
    if (point <= 0) {
        sbuf_adds(sb, "0.");
        for (long i = 0; i < -point; i++)
            sbuf_addc(sb, '0');
        sbuf_add(sb, digits, nd);
    } else if ((size_t)point >= nd) {
        sbuf_add(sb, digits, nd);
        for (long i = 0; i < point - (long)nd; i++)
            sbuf_addc(sb, '0');
    } else {
        sbuf_add(sb, digits, (size_t)point);
        sbuf_addc(sb, '.');
        sbuf_add(sb, digits + point, nd - (size_t)point);
    }
}

/*
 * A number literal written as a duration. Prometheus prints
 * model.Duration(v * 1e9), whose truncation turns 1s1ms into 1s; rounding
 * to the millisecond prints the value the literal has.
 */
static void format_duration_literal(struct sbuf *sb, double v)
{
    double ms = round(fabs(v) * 1000);
    if (v < 0)
        sbuf_addc(sb, '-');
    query_format_duration(ms >= 9223372036854775807.0 ? INT64_MAX : (int64_t)ms, sb);
}

/* A classic label name ([a-zA-Z_][a-zA-Z0-9_]*), printed without quotes. */
static int legacy_label_name(const char *s)
{
    if (!*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/*
 * A label name in by (...), on (...) etc.: as is when a classic name, else
 * quoted. Unlike Prometheus, which prints them bare and cannot read them
 * back, inf, nan and without are quoted too: there they are not labels.
 */
static void format_labels(struct sbuf *sb, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_adds(sb, ", ");
        enum query__tok kw = query__keyword(v[i], strlen(v[i]));
        if (legacy_label_name(v[i]) && kw != QT_NUMBER && kw != QT_WITHOUT)
            sbuf_adds(sb, v[i]);
        else
            query__quote(sb, v[i], strlen(v[i]));
    }
}

static const char *match_op_str(enum tsdb_match op)
{
    switch (op) {
    case TSDB_EQ:
        return "=";
    case TSDB_NEQ:
        return "!=";
    case TSDB_RE:
        return "=~";
    default:
        return "!~";
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The name and matchers of a vector selector, without its modifiers. */
static void format_selector(struct sbuf *sb, const struct query_node *n)
{
    size_t cnt = 0;
    char **strs = xcalloc(n->vs.nmatchers + 1, sizeof(char *));
    for (size_t i = 0; i < n->vs.nmatchers; i++) {
        const struct tsdb_matcher *m = &n->vs.matchers[i];
        /* The name written before the braces is printed there, not as a matcher. */
        if (n->vs.name && m->op == TSDB_EQ && strcmp(m->name, "__name__") == 0 &&
            strcmp(m->value, n->vs.name) == 0 && m->value[0])
            continue;
        struct sbuf s;
        sbuf_init(&s, 0);
        if (legacy_label_name(m->name))
            sbuf_adds(&s, m->name);
        else
            query__quote(&s, m->name, strlen(m->name));
        sbuf_adds(&s, match_op_str(m->op));
        query__quote(&s, m->value, strlen(m->value));
        strs[cnt++] = sbuf_detach(&s, NULL);
        sbuf_release(&s);
    }
    if (n->vs.name)
        sbuf_adds(sb, n->vs.name);
    if (cnt > 0) {
        qsort(strs, cnt, sizeof(char *), cmp_str);
        sbuf_addc(sb, '{');
        for (size_t i = 0; i < cnt; i++) {
            if (i > 0)
                sbuf_addc(sb, ',');
            sbuf_adds(sb, strs[i]);
            free(strs[i]);
        }
        sbuf_addc(sb, '}');
    }
    free(strs);
}

static void format_at_offset(struct sbuf *sb, enum query_at at, int64_t at_ms, int64_t offset_ms)
{
    switch (at) {
    case QUERY_AT_TIME:
        sbuf_addf(sb, " @ %.3f", (double)at_ms / 1000.0);
        break;
    case QUERY_AT_START:
        sbuf_adds(sb, " @ start()");
        break;
    case QUERY_AT_END:
        sbuf_adds(sb, " @ end()");
        break;
    default:
        break;
    }
    if (offset_ms != 0) {
        sbuf_adds(sb, " offset ");
        query_format_duration(offset_ms, sb);
    }
}

static void format(const struct query_node *n, struct sbuf *sb)
{
    switch (n->type) {
    case QUERY_NODE_NUMBER:
        if (n->number.duration)
            format_duration_literal(sb, n->number.value);
        else
            format_float(sb, n->number.value);
        break;
    case QUERY_NODE_STRING:
        query__quote(sb, n->string.value, strlen(n->string.value));
        break;
    case QUERY_NODE_VECTOR_SELECTOR:
        format_selector(sb, n);
        format_at_offset(sb, n->vs.at, n->vs.at_ms, n->vs.offset_ms);
        break;
    case QUERY_NODE_MATRIX_SELECTOR: {
        const struct query_node *vs = n->matrix.vs;
        format_selector(sb, vs);
        sbuf_addc(sb, '[');
        query_format_duration(n->matrix.range_ms, sb);
        sbuf_addc(sb, ']');
        format_at_offset(sb, vs->vs.at, vs->vs.at_ms, vs->vs.offset_ms);
        break;
    }
    case QUERY_NODE_SUBQUERY:
        format(n->subquery.expr, sb);
        sbuf_addc(sb, '[');
        query_format_duration(n->subquery.range_ms, sb);
        sbuf_addc(sb, ':');
        if (n->subquery.step_ms != 0)
            query_format_duration(n->subquery.step_ms, sb);
        sbuf_addc(sb, ']');
        format_at_offset(sb, n->subquery.at, n->subquery.at_ms, n->subquery.offset_ms);
        break;
    case QUERY_NODE_PAREN:
        sbuf_addc(sb, '(');
        format(n->paren.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_UNARY:
        sbuf_adds(sb, query_op_name(n->unary.op));
        format(n->unary.expr, sb);
        break;
    case QUERY_NODE_BINARY: {
        const struct query_vector_matching *m = n->binary.matching;
        const struct query_node *l = n->binary.lhs;
        /* "+Inf ^ 2" would read back as +(Inf ^ 2); Prometheus prints it so anyway. */
        if (n->binary.op == QUERY_OP_POW && l->type == QUERY_NODE_NUMBER && !l->number.duration &&
            isinf(l->number.value) && l->number.value > 0)
            sbuf_adds(sb, "Inf");
        else
            format(l, sb);
        sbuf_addc(sb, ' ');
        sbuf_adds(sb, query_op_name(n->binary.op));
        if (n->binary.return_bool)
            sbuf_adds(sb, " bool");
        if (m) {
            int group = m->card == QUERY_CARD_MANY_TO_ONE || m->card == QUERY_CARD_ONE_TO_MANY;
            if (m->nlabels > 0 || m->on || group) {
                sbuf_adds(sb, m->on ? " on (" : " ignoring (");
                format_labels(sb, m->labels, m->nlabels);
                sbuf_addc(sb, ')');
            }
            if (group) {
                sbuf_adds(sb,
                          m->card == QUERY_CARD_MANY_TO_ONE ? " group_left (" : " group_right (");
                format_labels(sb, m->include, m->ninclude);
                sbuf_addc(sb, ')');
            }
        }
        sbuf_addc(sb, ' ');
        format(n->binary.rhs, sb);
        break;
    }
    case QUERY_NODE_AGGREGATE:
        sbuf_adds(sb, query_agg_name(n->aggregate.op));
        if (n->aggregate.without || n->aggregate.ngrouping > 0) {
            sbuf_adds(sb, n->aggregate.without ? " without (" : " by (");
            format_labels(sb, n->aggregate.grouping, n->aggregate.ngrouping);
            sbuf_adds(sb, ") ");
        }
        sbuf_addc(sb, '(');
        if (n->aggregate.param) {
            format(n->aggregate.param, sb);
            sbuf_adds(sb, ", ");
        }
        format(n->aggregate.expr, sb);
        sbuf_addc(sb, ')');
        break;
    case QUERY_NODE_CALL:
        sbuf_adds(sb, n->call.func->name);
        sbuf_addc(sb, '(');
        for (size_t i = 0; i < n->call.nargs; i++) {
            if (i > 0)
                sbuf_adds(sb, ", ");
            format(n->call.args[i], sb);
        }
        sbuf_addc(sb, ')');
        break;
    }
}

int query_format(const struct query_node *n, struct sbuf *sb)
{
    int before = sb->overflow;
    sb->overflow = 0;
    format(n, sb);
    int r = sb->overflow ? -1 : 0;
    sb->overflow |= before;
    return r;
}
