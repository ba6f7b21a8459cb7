/*
 * parse.c: the PromQL parser (see promql.h): a recursive-descent parser with
 * operator precedence that accepts the language of Prometheus's yacc
 * grammar (promql/parser/generated_parser.y), builds the same tree, and
 * then type-checks it as Prometheus's checkAST does.
 *
 * Errors follow Prometheus: the first one wins; syntax errors and the
 * checks the grammar's actions make come first, in the order the tokens
 * are read, and the type checks run only on a tree that parsed. A syntax
 * error names the token that was unexpected and, where the grammar has an
 * error rule there, the context and what was expected ("unexpected
 * identifier \"b\" in label matching, expected string"). Inside an
 * aggregation's arguments the context is "aggregation", as yacc's error
 * recovery makes it.
 */
#include "query/promql.h"
#include "query/lex.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/banned.h"
#include "util/util.h"

/* Precedence of binary operators, lowest first (Prometheus's %left/%right list). */
enum {
    PREC_NONE,
    PREC_OR,
    PREC_AND, /* and, unless */
    PREC_CMP, /* == != <= < >= > </ >/ */
    PREC_ADD,
    PREC_MUL, /* * / % atan2; also unary - and + */
    PREC_POW, /* right-associative */
};

#define NOT_SUPPORTED_EXPERIMENTAL "not supported (experimental in Prometheus)"

struct parser {
    struct query__lexer lx;
    struct query__token tok; /* the lookahead */
    uint32_t prev_end;       /* end of the last token consumed */
    const char *src;
    size_t len;
    int agg;   /* aggregations whose arguments are being read */
    int depth; /* recursion depth */
    int failed;
    struct query_error *err;
};

struct strlist {
    char **v;
    size_t n, cap;
};

static void strlist_add(struct strlist *l, char *s)
{
    void *p = l->v;
    util_grow(&p, &l->cap, l->n + 1, sizeof(char *));
    l->v = p;
    l->v[l->n++] = s;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void strlist_release(struct strlist *l)
{
    strv_free(l->v, l->n);
    memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------- errors */

/* Fill err as Prometheus's ParseErr.Error() would: "line:col: parse error: msg". */
static void set_error(struct query_error *err, const char *src, size_t len, size_t pos,
                      const char *msg)
{
    if (!err)
        return;
    if (pos > len)
        pos = len;
    err->pos = pos;
    unsigned line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos; i++)
        if (src[i] == '\n') {
            line++;
            last_nl = i;
        }
    err->line = len ? line : 0;
    err->col = len ? (unsigned)(pos - last_nl) : 0;
    int n = len ? snprintf(err->msg, sizeof(err->msg), "%u:%u: parse error: ", err->line, err->col)
                : snprintf(err->msg, sizeof(err->msg), "unknown position: parse error: ");
    size_t used = n > 0 ? (size_t)n : 0, room = sizeof(err->msg) - used - 1, mlen = strlen(msg);
    if (mlen > room) /* cut long messages */
        mlen = room;
    memcpy(err->msg + used, msg, mlen);
    err->msg[used + mlen] = '\0';
}

/* Record an error at pos unless one is recorded already. Returns NULL, for callers. */
static void *fail_at(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    p->failed = 1;
    char msg[QUERY_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_error(p->err, p->src, p->len, pos, msg);
    return NULL;
}

/* How Prometheus describes a token in messages (Item.desc()). */
static void tok_desc(const struct parser *p, const struct query__token *t, struct sbuf *sb)
{
    const char *text = p->src + t->pos;
    size_t n = t->len;
    const char *kind = NULL;
    switch (t->type) {
    case QT_EOF:
        sbuf_adds(sb, "end of input");
        return;
    case QT_IDENTIFIER:
        sbuf_adds(sb, "identifier ");
        query__quote(sb, text, n);
        return;
    case QT_METRIC_IDENTIFIER:
        sbuf_adds(sb, "metric identifier ");
        query__quote(sb, text, n);
        return;
    case QT_NUMBER:
        kind = "number ";
        break;
    case QT_DURATION:
        kind = "duration ";
        break;
    case QT_STRING:
        kind = "string ";
        break;
    case QT_COMMENT:
        kind = "comment ";
        break;
    default:
        if (QT_IS_KEYWORD(t->type)) {
            sbuf_addf(sb, "<%.*s>", (int)n, text);
            return;
        }
        if (QT_IS_OPERATOR(t->type)) {
            sbuf_addf(sb, "<op:%.*s>", (int)n, text);
            return;
        }
        if (QT_IS_AGGREGATOR(t->type)) {
            sbuf_addf(sb, "<aggr:%.*s>", (int)n, text);
            return;
        }
        break;
    }
    if (kind)
        sbuf_adds(sb, kind);
    if (n > 10) {
        query__quote_prefix(sb, text, n, 10);
        sbuf_adds(sb, "...");
    } else {
        query__quote(sb, text, n);
    }
}

/*
 * A syntax error at the lookahead: "unexpected <token>[ in <context>][,
 * expected <expected>]". A lexer error has been reported already. A NULL
 * context means the generic error, which names "aggregation" inside one.
 */
static void *unexpected(struct parser *p, const char *context, const char *expected)
{
    if (p->tok.type == QT_ERROR || p->failed)
        return NULL;
    if (!context && p->agg > 0)
        context = "aggregation";
    struct sbuf sb;
    sbuf_init(&sb, 4096);
    sbuf_adds(&sb, "unexpected ");
    tok_desc(p, &p->tok, &sb);
    if (context)
        sbuf_addf(&sb, " in %s", context);
    if (expected)
        sbuf_addf(&sb, ", expected %s", expected);
    fail_at(p, p->tok.pos, "%s", sb.buf);
    sbuf_release(&sb);
    return NULL;
}

/* ------------------------------------------------------------------- tokens */

static void lex_skip_comments(struct query__lexer *lx, struct query__token *t)
{
    do
        query__lex_next(lx, t);
    while (t->type == QT_COMMENT);
}

/* Consume the lookahead and read the next token. A lexer error is recorded as it is read. */
static void advance(struct parser *p)
{
    p->prev_end = p->tok.pos + p->tok.len;
    lex_skip_comments(&p->lx, &p->tok);
    if (p->tok.type == QT_ERROR)
        fail_at(p, p->tok.pos, "%s", p->lx.err);
}

/* The type of the token after the lookahead (the lexer state is copied, not advanced). */
static enum query__tok peek2(const struct parser *p)
{
    struct query__lexer lx = p->lx;
    struct query__token t;
    lex_skip_comments(&lx, &t);
    return t.type;
}

static const char *tok_text(const struct parser *p)
{
    return p->src + p->tok.pos;
}

/* Tokens that may name a metric (the grammar's metric_identifier). */
static int is_metric_identifier(enum query__tok t)
{
    switch (t) {
    case QT_IDENTIFIER:
    case QT_METRIC_IDENTIFIER:
    case QT_BY:
    case QT_LAND:
    case QT_LOR:
    case QT_LUNLESS:
    case QT_OFFSET:
    case QT_WITHOUT:
    case QT_START:
    case QT_END:
    case QT_STEP:
    case QT_RANGE:
    case QT_ANCHORED:
    case QT_SMOOTHED:
    case QT_MAX_OF:
    case QT_MIN_OF:
    case QT_FILL:
    case QT_FILL_LEFT:
    case QT_FILL_RIGHT:
        return 1;
    default:
        return QT_IS_AGGREGATOR(t);
    }
}

/* Tokens that may name a label in by (...), on (...) etc. (the grammar's maybe_label). */
static int is_maybe_label(enum query__tok t)
{
    switch (t) {
    case QT_BOOL:
    case QT_GROUP_LEFT:
    case QT_GROUP_RIGHT:
    case QT_IGNORING:
    case QT_ON:
    case QT_ATAN2:
        return 1;
    case QT_WITHOUT:
        return 0;
    default:
        return is_metric_identifier(t);
    }
}

static int can_start_expr(enum query__tok t)
{
    switch (t) {
    case QT_NUMBER:
    case QT_DURATION:
    case QT_STRING:
    case QT_LEFT_PAREN:
    case QT_LEFT_BRACE:
    case QT_ADD:
    case QT_SUB:
        return 1;
    default:
        return is_metric_identifier(t);
    }
}

static int binop_prec(enum query__tok t)
{
    switch (t) {
    case QT_LOR:
        return PREC_OR;
    case QT_LAND:
    case QT_LUNLESS:
        return PREC_AND;
    case QT_EQLC:
    case QT_NEQ:
    case QT_LTE:
    case QT_LSS:
    case QT_GTE:
    case QT_GTR:
    case QT_TRIM_UPPER:
    case QT_TRIM_LOWER:
        return PREC_CMP;
    case QT_ADD:
    case QT_SUB:
        return PREC_ADD;
    case QT_MUL:
    case QT_DIV:
    case QT_MOD:
    case QT_ATAN2:
        return PREC_MUL;
    case QT_POW:
        return PREC_POW;
    default:
        return PREC_NONE;
    }
}

static enum query_op tok_op(enum query__tok t)
{
    switch (t) {
    case QT_ADD:
        return QUERY_OP_ADD;
    case QT_SUB:
        return QUERY_OP_SUB;
    case QT_MUL:
        return QUERY_OP_MUL;
    case QT_DIV:
        return QUERY_OP_DIV;
    case QT_MOD:
        return QUERY_OP_MOD;
    case QT_POW:
        return QUERY_OP_POW;
    case QT_ATAN2:
        return QUERY_OP_ATAN2;
    case QT_EQLC:
        return QUERY_OP_EQ;
    case QT_NEQ:
        return QUERY_OP_NE;
    case QT_GTR:
        return QUERY_OP_GT;
    case QT_LSS:
        return QUERY_OP_LT;
    case QT_GTE:
        return QUERY_OP_GE;
    case QT_LTE:
        return QUERY_OP_LE;
    case QT_LAND:
        return QUERY_OP_AND;
    case QT_LOR:
        return QUERY_OP_OR;
    default:
        return QUERY_OP_UNLESS;
    }
}

static enum query_agg tok_agg(enum query__tok t)
{
    switch (t) {
    case QT_SUM:
        return QUERY_AGG_SUM;
    case QT_AVG:
        return QUERY_AGG_AVG;
    case QT_COUNT:
        return QUERY_AGG_COUNT;
    case QT_MIN:
        return QUERY_AGG_MIN;
    case QT_MAX:
        return QUERY_AGG_MAX;
    case QT_GROUP:
        return QUERY_AGG_GROUP;
    case QT_STDDEV:
        return QUERY_AGG_STDDEV;
    case QT_STDVAR:
        return QUERY_AGG_STDVAR;
    case QT_TOPK:
        return QUERY_AGG_TOPK;
    case QT_BOTTOMK:
        return QUERY_AGG_BOTTOMK;
    case QT_QUANTILE:
        return QUERY_AGG_QUANTILE;
    default:
        return QUERY_AGG_COUNT_VALUES;
    }
}

/* ------------------------------------------------------- literals and strings */

/*
 * Unquote a string token (strutil.Unquote; the lexer checked the escapes).
 * Returns the value, or NULL with an error: a NUL byte in a string is not
 * supported, since the rest of sitrep keeps strings NUL-terminated.
 */
static char *unquote(struct parser *p, const struct query__token *t)
{
    const char *s = p->src + t->pos + 1;
    size_t n = t->len - 2;
    char quote = s[-1];
    struct sbuf sb;
    sbuf_init(&sb, 0);
    if (quote == '`') {
        sbuf_add(&sb, s, n);
    } else {
        for (size_t i = 0; i < n;) {
            unsigned char c = (unsigned char)s[i];
            if (c != '\\') {
                sbuf_addc(&sb, (char)c);
                i++;
                continue;
            }
            char e = s[i + 1];
            i += 2;
            switch (e) {
            case 'a':
                sbuf_addc(&sb, '\a');
                break;
            case 'b':
                sbuf_addc(&sb, '\b');
                break;
            case 'f':
                sbuf_addc(&sb, '\f');
                break;
            case 'n':
                sbuf_addc(&sb, '\n');
                break;
            case 'r':
                sbuf_addc(&sb, '\r');
                break;
            case 't':
                sbuf_addc(&sb, '\t');
                break;
            case 'v':
                sbuf_addc(&sb, '\v');
                break;
            case 'x':
            case 'u':
            case 'U': {
                int k = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t v = 0;
                for (int j = 0; j < k; j++) {
                    char h = s[i + (size_t)j];
                    v = v * 16 + (uint32_t)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                i += (size_t)k;
                if (e == 'x')
                    sbuf_addc(&sb, (char)v);
                else
                    query__encode_rune(&sb, (int32_t)v);
                break;
            }
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7': {
                unsigned v = (unsigned)(e - '0');
                v = v * 8 + (unsigned)(s[i] - '0');
                v = v * 8 + (unsigned)(s[i + 1] - '0');
                i += 2;
                sbuf_addc(&sb, (char)v);
                break;
            }
            default: /* \\ and the quote */
                sbuf_addc(&sb, e);
                break;
            }
        }
    }
    if (memchr(sb.buf, '\0', sb.len)) {
        sbuf_release(&sb);
        return fail_at(p, t->pos, "strings with NUL bytes are not supported");
    }
    char *v = sbuf_detach(&sb, NULL);
    sbuf_release(&sb);
    return v;
}

static int underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    int hex = 0;
    if (n >= 2 && s[0] == '0' && strchr("bBoOxX", s[1])) {
        i = 2;
        saw = '0';
        hex = s[1] == 'x' || s[1] == 'X';
    }
    for (; i < n; i++) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || (hex && strchr("abcdefABCDEF", c))) {
            saw = '0';
            continue;
        }
        if (c == '_') {
            if (saw != '0')
                return 0;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return 0;
        saw = '!';
    }
    return saw != '_';
}

/* strconv.ParseInt(s, 0, 64). Returns 0 on success. */
static int parse_int0(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    unsigned base = 10;
    if (n >= 1 && s[0] == '0') {
        if (n >= 3 && (s[1] == 'x' || s[1] == 'X'))
            base = 16, i = 2;
        else if (n >= 3 && (s[1] == 'o' || s[1] == 'O'))
            base = 8, i = 2;
        else if (n >= 3 && (s[1] == 'b' || s[1] == 'B'))
            base = 2, i = 2;
        else
            base = 8, i = 1;
    }
    uint64_t v = 0;
    int underscores = 0;
    for (; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c == '_') {
            underscores = 1;
            continue;
        } else if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
            d = (unsigned)((c | 0x20) - 'a' + 10);
        } else {
            return -1;
        }
        if (d >= base)
            return -1;
        if (v > (UINT64_MAX - d) / base)
            return -1;
        v = v * base + d;
    }
    if (underscores && !underscore_ok(s, n))
        return -1;
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/*
 * strconv.ParseFloat(s, 64) for what the lexer yields (decimal literals;
 * hex ones have no 'p' exponent and so are not floats). Returns 0, or -1
 * for invalid syntax, or -2 when out of range.
 */
static int parse_float(const char *s, size_t n, double *out)
{
    if (n == 3 && (s[0] | 0x20) == 'i' && (s[1] | 0x20) == 'n' && (s[2] | 0x20) == 'f') {
        *out = INFINITY;
        return 0;
    }
    if (n == 3 && (s[0] | 0x20) == 'n' && (s[1] | 0x20) == 'a' && (s[2] | 0x20) == 'n') {
        *out = NAN;
        return 0;
    }
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return -1;
    char *buf = xmalloc(n + 16);
    size_t k = 0, i = 0;
    int digits = 0, dot = 0, underscores = 0, r = -1;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            underscores = 1;
            continue;
        }
        if (c == '.') {
            if (dot)
                break;
            dot = 1;
        } else if (c >= '0' && c <= '9') {
            digits = 1;
        } else {
            break;
        }
        buf[k++] = c;
    }
    if (!digits)
        goto out;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        buf[k++] = 'e';
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            buf[k++] = s[i++];
        if (i >= n || s[i] < '0' || s[i] > '9')
            goto out;
        int e = 0;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++) {
            if (s[i] == '_') {
                underscores = 1;
                continue;
            }
            if (e < 10000)
                e = e * 10 + (s[i] - '0');
        }
        k += (size_t)snprintf(buf + k, 8, "%d", e);
    }
    if (i != n || (underscores && !underscore_ok(s, n)))
        goto out;
    buf[k] = '\0';
    double v = strtod(buf, NULL);
    r = isinf(v) ? -2 : 0;
    if (r == 0)
        *out = v;
out:
    free(buf);
    return r;
}

/* The value of a number token, as Prometheus's parser.number(). */
static int number_value(struct parser *p, const struct query__token *t, double *out)
{
    const char *s = p->src + t->pos;
    size_t n = t->len;
    int64_t iv;
    if (parse_int0(s, n, &iv) == 0) {
        *out = (double)iv;
        return 0;
    }
    int r = parse_float(s, n, out);
    if (r == 0)
        return 0;
    struct sbuf sb;
    sbuf_init(&sb, 4096);
    sbuf_adds(&sb, "error parsing number: strconv.ParseFloat: parsing ");
    query__quote(&sb, s, n);
    sbuf_adds(&sb, r == -2 ? ": value out of range" : ": invalid syntax");
    fail_at(p, t->pos, "%s", sb.buf);
    sbuf_release(&sb);
    return -1;
}

/* model.ParseDuration: a duration token (1h30m, 250ms) to nanoseconds. */
static int duration_value_ns(struct parser *p, const struct query__token *t, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"y", 365ull * 24 * 3600 * 1000000000ull},
        {"w", 7ull * 24 * 3600 * 1000000000ull},
        {"d", 24ull * 3600 * 1000000000ull},
        {"h", 3600ull * 1000000000ull},
        {"m", 60ull * 1000000000ull},
        {"s", 1000000000ull},
        {"ms", 1000000ull},
    };
    const char *s = p->src + t->pos, *orig = s;
    size_t n = t->len, on = n;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    uint64_t dur = 0;
    size_t last = 0; /* units in order, biggest first: index + 1 of the last one */
    struct sbuf sb;
    sbuf_init(&sb, 4096);
    while (n > 0) {
        size_t i = 0;
        uint64_t v = 0;
        int overflow = 0;
        if (s[0] < '0' || s[0] > '9')
            goto invalid;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                overflow = 1;
            else
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (overflow)
            goto invalid;
        s += i, n -= i;
        for (i = 0; i < n && !(s[i] >= '0' && s[i] <= '9'); i++)
            ;
        if (i == 0)
            goto invalid;
        size_t u;
        for (u = 0; u < ARRAY_SIZE(units); u++)
            if (strlen(units[u].unit) == i && memcmp(units[u].unit, s, i) == 0)
                break;
        if (u == ARRAY_SIZE(units)) {
            sbuf_adds(&sb, "unknown unit ");
            query__quote(&sb, s, i);
            sbuf_adds(&sb, " in duration ");
            query__quote(&sb, orig, on);
            goto fail;
        }
        if (u + 1 <= last)
            goto invalid;
        last = u + 1;
        s += i, n -= i;
        if (v > (1ull << 63) / units[u].mult) {
            sbuf_adds(&sb, "duration out of range");
            goto fail;
        }
        dur += v * units[u].mult;
        if (dur > (uint64_t)INT64_MAX) {
            sbuf_adds(&sb, "duration out of range");
            goto fail;
        }
    }
    sbuf_release(&sb);
    *out = (int64_t)dur;
    return 0;
invalid:
    sbuf_reset(&sb);
    sbuf_adds(&sb, "not a valid duration string: ");
    query__quote(&sb, orig, on);
fail:
    fail_at(p, t->pos, "%s", sb.buf);
    sbuf_release(&sb);
    return -1;
}

/*
 * Seconds (a number used as a duration) to whole milliseconds, as
 * Prometheus does: round to nanoseconds, then truncate to milliseconds.
 * Durations written with units (5m) are converted exactly instead: going
 * through float seconds can lose a millisecond on long ones (1y1ms).
 */
static int64_t seconds_to_ms(double v)
{
    double ns = round(v * 1e9);
    if (ns >= 9223372036854775807.0)
        return INT64_MAX / 1000000;
    if (ns <= -9223372036854775808.0)
        return INT64_MIN / 1000000;
    return (int64_t)ns / 1000000;
}

/*
 * The value in seconds of a NUMBER or DURATION token (time.Duration.Seconds()
 * for the latter). For a duration *ms also gets its exact milliseconds
 * (NULL ms is fine).
 */
static int literal_value_ms(struct parser *p, const struct query__token *t, double *out,
                            int64_t *ms)
{
    if (t->type == QT_NUMBER) {
        if (number_value(p, t, out) < 0)
            return -1;
        if (ms)
            *ms = seconds_to_ms(*out);
        return 0;
    }
    int64_t ns;
    if (duration_value_ns(p, t, &ns) < 0)
        return -1;
    *out = (double)(ns / 1000000000) + (double)(ns % 1000000000) / 1e9;
    if (ms)
        *ms = ns / 1000000;
    return 0;
}

static int literal_value(struct parser *p, const struct query__token *t, double *out)
{
    return literal_value_ms(p, t, out, NULL);
}

/* durationLiteralOutOfRange: seconds that overflow int64 nanoseconds. */
static int duration_out_of_range(double v)
{
    return v > 9223372036.854775807 || v < -9223372036.854775808;
}

/* ------------------------------------------------------------------- regexes */

/* The store's options (src/tsdb/matcher.c): fully anchored, '.' matches newlines, RE2-like. */
#define REGEX_OPTIONS                                                                              \
    (PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY |        \
     PCRE2_NEVER_BACKSLASH_C)

/*
 * Compile a matcher's regex to check it and to learn whether it matches
 * the empty string. Returns 0 and sets *empty, or -1 with msg filled.
 */
static int regex_check(const char *re, int *empty, char *msg, size_t msglen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, REGEX_OPTIONS, &code, &off, NULL);
    if (!c) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
            snprintf((char *)buf, sizeof(buf), "error %d", code);
        snprintf(msg, msglen, "error parsing regexp: %s at offset %zu", (char *)buf, (size_t)off);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) {
        fprintf(stderr, "sitrep: out of memory compiling a regex\n");
        abort();
    }
    int r = pcre2_match(c, (PCRE2_SPTR) "", 0, 0, 0, md, NULL);
    *empty = r >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    return 0;
}

/* ---------------------------------------------------------------------- nodes */

static struct query_node *new_node(enum query_node_type type, enum query_value_type vt,
                                   uint32_t start, uint32_t end)
{
    struct query_node *n = xcalloc(1, sizeof(*n));
    n->type = type;
    n->value_type = vt;
    n->pos.start = start;
    n->pos.end = end;
    n->depth = 1;
    return n;
}

static void free_matching(struct query_vector_matching *m)
{
    if (!m)
        return;
    strv_free(m->labels, m->nlabels);
    strv_free(m->include, m->ninclude);
    free(m);
}

void query_node_free(struct query_node *n)
{
    if (!n)
        return;
    switch (n->type) {
    case QUERY_NODE_NUMBER:
        break;
    case QUERY_NODE_STRING:
        free(n->string.value);
        break;
    case QUERY_NODE_VECTOR_SELECTOR:
        free(n->vs.name);
        for (size_t i = 0; i < n->vs.nmatchers; i++) {
            free((void *)n->vs.matchers[i].name);
            free((void *)n->vs.matchers[i].value);
        }
        free(n->vs.matchers);
        break;
    case QUERY_NODE_MATRIX_SELECTOR:
        query_node_free(n->matrix.vs);
        break;
    case QUERY_NODE_SUBQUERY:
        query_node_free(n->subquery.expr);
        break;
    case QUERY_NODE_PAREN:
        query_node_free(n->paren.expr);
        break;
    case QUERY_NODE_UNARY:
        query_node_free(n->unary.expr);
        break;
    case QUERY_NODE_BINARY:
        query_node_free(n->binary.lhs);
        query_node_free(n->binary.rhs);
        free_matching(n->binary.matching);
        break;
    case QUERY_NODE_AGGREGATE:
        query_node_free(n->aggregate.expr);
        query_node_free(n->aggregate.param);
        strv_free(n->aggregate.grouping, n->aggregate.ngrouping);
        break;
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->call.nargs; i++)
            query_node_free(n->call.args[i]);
        free(n->call.args);
        break;
    }
    free(n);
}

/* Give n (with a child of depth d) its depth; the tree's height is capped. */
static struct query_node *deepen(struct parser *p, struct query_node *n, int d)
{
    if (d + 1 > n->depth)
        n->depth = d + 1;
    if (n->depth > QUERY_MAX_DEPTH) {
        fail_at(p, n->pos.start, "expression nests too deeply (more than %d levels)",
                QUERY_MAX_DEPTH);
        query_node_free(n);
        return NULL;
    }
    return n;
}

/* ------------------------------------------------------------------- grammar */

static struct query_node *parse_expr(struct parser *p, int min_prec);

/*
 * A parenthesised label list: by (...), without (...), on (...),
 * ignoring (...), group_left (...), group_right (...). With consume 0 the
 * closing ')' is left as the lookahead (checks that yacc makes before
 * reading the next token come first).
 */
static int parse_grouping(struct parser *p, struct strlist *out, int consume)
{
    if (p->tok.type != QT_LEFT_PAREN)
        return unexpected(p, "grouping opts", "\"(\""), -1;
    advance(p);
    if (p->tok.type == QT_RIGHT_PAREN)
        goto close;
    for (;;) {
        char *label;
        if (p->tok.type == QT_STRING) {
            label = unquote(p, &p->tok);
            if (!label)
                return -1;
            if (!*label || !query__valid_utf8(label, strlen(label))) {
                struct sbuf sb;
                sbuf_init(&sb, 4096);
                query__quote(&sb, label, strlen(label));
                fail_at(p, p->tok.pos, "invalid label name for grouping: %s", sb.buf);
                sbuf_release(&sb);
                free(label);
                return -1;
            }
        } else if (is_maybe_label(p->tok.type)) {
            label = xstrndup(tok_text(p), p->tok.len);
        } else {
            return unexpected(p, "grouping opts", "label"), -1;
        }
        strlist_add(out, label);
        advance(p);
        if (p->tok.type == QT_COMMA) {
            advance(p);
            if (p->tok.type == QT_RIGHT_PAREN)
                goto close;
            continue;
        }
        if (p->tok.type == QT_RIGHT_PAREN)
            goto close;
        return unexpected(p, "grouping opts", "\",\" or \")\""), -1;
    }
close:
    if (consume)
        advance(p);
    return 0;
}

static int is_match_op(enum query__tok t)
{
    return t == QT_EQL || t == QT_NEQ || t == QT_EQL_REGEX || t == QT_NEQ_REGEX;
}

static enum tsdb_match match_op(enum query__tok t)
{
    return t == QT_EQL ? TSDB_EQ : t == QT_NEQ ? TSDB_NEQ : t == QT_EQL_REGEX ? TSDB_RE : TSDB_NRE;
}

static void add_matcher(struct query_node *vs, size_t *cap, enum tsdb_match op, char *name,
                        char *value)
{
    void *v = vs->vs.matchers;
    util_grow(&v, cap, vs->vs.nmatchers + 1, sizeof(struct tsdb_matcher));
    vs->vs.matchers = v;
    vs->vs.matchers[vs->vs.nmatchers++] = (struct tsdb_matcher){op, name, value};
}

/* A matcher with a regex that does not compile fails at the label's position. */
static int check_regex(struct parser *p, enum tsdb_match op, const char *value, uint32_t pos)
{
    if (op != TSDB_RE && op != TSDB_NRE)
        return 0;
    char msg[QUERY_ERROR_LEN];
    int empty;
    if (regex_check(value, &empty, msg, sizeof(msg)) < 0) {
        fail_at(p, pos, "%s", msg);
        return -1;
    }
    return 0;
}

/*
 * A vector selector: the lookahead is the metric name (when named) or
 * '{'. Grammar: [metric_identifier] ['{' [matcher {',' matcher} [',']] '}'],
 * matcher: label op string | "name" op string | "name".
 */
static struct query_node *parse_vector_selector(struct parser *p, int named)
{
    struct query_node *n =
        new_node(QUERY_NODE_VECTOR_SELECTOR, QUERY_VALUE_VECTOR, p->tok.pos, p->tok.pos);
    size_t cap = 0;
    if (named) {
        n->vs.name = xstrndup(tok_text(p), p->tok.len);
        advance(p);
        n->pos.end = p->prev_end;
        if (p->tok.type != QT_LEFT_BRACE)
            goto done;
    }
    advance(p); /* '{' */
    if (p->tok.type == QT_RIGHT_BRACE)
        goto close;
    for (;;) {
        char *name = NULL, *value = NULL;
        uint32_t label_pos = p->tok.pos;
        enum tsdb_match op = TSDB_EQ;
        if (p->tok.type == QT_IDENTIFIER) {
            name = xstrndup(tok_text(p), p->tok.len);
            advance(p);
            if (!is_match_op(p->tok.type)) {
                free(name);
                unexpected(p, "label matching", "label matching operator");
                goto fail;
            }
        } else if (p->tok.type == QT_STRING) {
            if (!(name = unquote(p, &p->tok)))
                goto fail;
            advance(p);
            if (!is_match_op(p->tok.type)) { /* {"metric_name"} */
                add_matcher(n, &cap, TSDB_EQ, xstrdup("__name__"), name);
                goto next;
            }
        } else {
            unexpected(p, "label matching", "identifier or \"}\"");
            goto fail;
        }
        op = match_op(p->tok.type);
        advance(p);
        if (p->tok.type != QT_STRING) {
            free(name);
            unexpected(p, "label matching", "string");
            goto fail;
        }
        if (!(value = unquote(p, &p->tok))) {
            free(name);
            goto fail;
        }
        add_matcher(n, &cap, op, name, value);
        if (check_regex(p, op, value, label_pos) < 0)
            goto fail;
        advance(p);
    next:
        if (p->tok.type == QT_COMMA) {
            advance(p);
            if (p->tok.type == QT_RIGHT_BRACE)
                break;
            continue;
        }
        if (p->tok.type == QT_RIGHT_BRACE)
            break;
        unexpected(p, "label matching", "\",\" or \"}\"");
        goto fail;
    }
close:
    advance(p); /* '}' */
    n->pos.end = p->prev_end;
done:
    if (n->vs.name)
        add_matcher(n, &cap, TSDB_EQ, xstrdup("__name__"), xstrdup(n->vs.name));
    return n;
fail:
    query_node_free(n);
    return NULL;
}

/* Where the modifiers of a selector or subquery live, or NULL if e takes none. */
static void modifier_fields(struct query_node *e, int64_t **offset, enum query_at **at,
                            int64_t **at_ms)
{
    struct query_node *t = e->type == QUERY_NODE_MATRIX_SELECTOR ? e->matrix.vs : e;
    if (t->type == QUERY_NODE_VECTOR_SELECTOR) {
        *offset = &t->vs.offset_ms;
        *at = &t->vs.at;
        *at_ms = &t->vs.at_ms;
    } else if (t->type == QUERY_NODE_SUBQUERY) {
        *offset = &t->subquery.offset_ms;
        *at = &t->subquery.at;
        *at_ms = &t->subquery.at_ms;
    } else {
        *offset = NULL;
    }
}

/* The tokens that would start one of Prometheus's experimental duration expressions. */
static int starts_duration_expr(struct parser *p)
{
    switch (p->tok.type) {
    case QT_LEFT_PAREN:
        return 1;
    case QT_STEP:
    case QT_RANGE:
    case QT_MAX_OF:
    case QT_MIN_OF:
        return peek2(p) == QT_LEFT_PAREN;
    default:
        return 0;
    }
}

static int is_duration_op(enum query__tok t)
{
    return t == QT_ADD || t == QT_SUB || t == QT_MUL || t == QT_DIV || t == QT_MOD || t == QT_POW;
}

static void *duration_expr_not_supported(struct parser *p)
{
    return fail_at(p, p->tok.pos, "duration expressions are " NOT_SUPPORTED_EXPERIMENTAL);
}

/*
 * A syntax error where a duration was expected: step and range (without
 * their parentheses) are tokens of their own there, and it is the token
 * after them that the grammar finds unexpected.
 */
static void *duration_unexpected(struct parser *p, const char *context, const char *expected)
{
    if (p->tok.type == QT_STEP || p->tok.type == QT_RANGE || p->tok.type == QT_MAX_OF ||
        p->tok.type == QT_MIN_OF)
        advance(p);
    return unexpected(p, context, expected);
}

/*
 * A range or a subquery step (positive_duration_expr): signs, then a number
 * (seconds) or a duration. Returns 0 with *ms > 0, or -1.
 */
static int parse_positive_duration(struct parser *p, const char *context, const char *expected,
                                   int64_t *ms)
{
    uint32_t start = p->tok.pos;
    int neg = 0;
    while (p->tok.type == QT_ADD || p->tok.type == QT_SUB) {
        neg ^= p->tok.type == QT_SUB;
        advance(p);
    }
    if (p->tok.type != QT_NUMBER && p->tok.type != QT_DURATION) {
        if (starts_duration_expr(p))
            return duration_expr_not_supported(p), -1;
        return duration_unexpected(p, context, expected), -1;
    }
    struct query__token lit = p->tok;
    double v;
    if (literal_value_ms(p, &lit, &v, ms) < 0)
        return -1;
    advance(p);
    if (duration_out_of_range(v))
        return fail_at(p, lit.pos, "duration out of range"), -1;
    if (is_duration_op(p->tok.type))
        return duration_expr_not_supported(p), -1;
    if (neg)
        v = -v;
    if (!(v > 0))
        return fail_at(p, start, "duration must be greater than 0"), -1;
    if (*ms <= 0)
        return fail_at(p, start, "duration must be at least 1ms"), -1;
    return 0;
}

/* e[range] or e[range:step] or e[range:]; the lookahead is '['. */
static struct query_node *parse_brackets(struct parser *p, struct query_node *e)
{
    uint32_t lbracket = p->tok.pos;
    int64_t range, step = 0;
    advance(p);
    if (parse_positive_duration(p, "subquery or range selector",
                                "number, duration, step(), or range()", &range) < 0)
        goto fail;
    if (p->tok.type == QT_RIGHT_BRACKET) {
        const char *msg = NULL;
        if (e->type != QUERY_NODE_VECTOR_SELECTOR)
            msg = "ranges only allowed for vector selectors";
        else if (e->vs.offset_ms != 0)
            msg = "no offset modifiers allowed before range";
        else if (e->vs.at != QUERY_AT_NONE)
            msg = "no @ modifiers allowed before range";
        if (msg) {
            fail_at(p, lbracket, "%s", msg);
            goto fail;
        }
        advance(p);
        struct query_node *m =
            new_node(QUERY_NODE_MATRIX_SELECTOR, QUERY_VALUE_MATRIX, e->pos.start, p->prev_end);
        m->matrix.vs = e;
        m->matrix.range_ms = range;
        return deepen(p, m, e->depth);
    }
    if (p->tok.type != QT_COLON) {
        unexpected(p, "subquery or range", "\":\" or \"]\"");
        goto fail;
    }
    advance(p);
    if (p->tok.type != QT_RIGHT_BRACKET) {
        if (parse_positive_duration(p, "subquery selector",
                                    "number, duration, step(), range(), or \"]\"", &step) < 0)
            goto fail;
        if (p->tok.type != QT_RIGHT_BRACKET) {
            unexpected(p, "subquery selector", "\"]\"");
            goto fail;
        }
    }
    advance(p);
    struct query_node *s =
        new_node(QUERY_NODE_SUBQUERY, QUERY_VALUE_MATRIX, e->pos.start, p->prev_end);
    s->subquery.expr = e;
    s->subquery.range_ms = range;
    s->subquery.step_ms = step;
    return deepen(p, s, e->depth);
fail:
    query_node_free(e);
    return NULL;
}

/* e offset <duration>; the lookahead is `offset`. */
static struct query_node *parse_offset(struct parser *p, struct query_node *e)
{
    static const char expected[] = "number, duration, step(), or range()";
    advance(p);
    uint32_t range_pos = p->tok.pos;
    int neg = 0, signs = 0;
    while (p->tok.type == QT_ADD || p->tok.type == QT_SUB) {
        neg ^= p->tok.type == QT_SUB;
        signs++;
        advance(p);
    }
    if (p->tok.type != QT_NUMBER && p->tok.type != QT_DURATION) {
        if (starts_duration_expr(p))
            return duration_expr_not_supported(p), query_node_free(e), NULL;
        duration_unexpected(p, "offset", expected);
        query_node_free(e);
        return NULL;
    }
    struct query__token lit = p->tok;
    double v;
    int64_t ms;
    if (literal_value_ms(p, &lit, &v, &ms) < 0)
        goto fail;
    advance(p);
    /* -5m is one rule of the grammar (checked at the sign), --5m a duration expression. */
    if (duration_out_of_range(v)) {
        fail_at(p, signs == 1 ? range_pos : lit.pos, "duration out of range");
        goto fail;
    }
    int64_t *offset;
    enum query_at *at;
    int64_t *at_ms;
    modifier_fields(e, &offset, &at, &at_ms);
    if (!offset) {
        fail_at(p, e->pos.start,
                "offset modifier must be preceded by an instant vector selector or range vector "
                "selector or a subquery");
        goto fail;
    }
    if (*offset != 0) {
        fail_at(p, e->pos.start, "offset may not be set multiple times");
        goto fail;
    }
    *offset = neg ? -ms : ms;
    e->pos.end = p->prev_end;
    return e;
fail:
    query_node_free(e);
    return NULL;
}

/* Format a float as Go's %f does (Inf and NaN spelled as Go spells them). */
static void go_percent_f(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "NaN");
    else if (isinf(v))
        snprintf(buf, n, "%s", v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(buf, n, "%f", v);
}

/*
 * e @ <timestamp> | e @ start() | e @ end(); the lookahead is '@'. As in
 * yacc, the modifier is checked before the token after it is read.
 */
static struct query_node *parse_at(struct parser *p, struct query_node *e)
{
    advance(p);
    enum query_at kind = QUERY_AT_TIME;
    double ts = 0;
    if (p->tok.type == QT_START || p->tok.type == QT_END) {
        kind = p->tok.type == QT_START ? QUERY_AT_START : QUERY_AT_END;
        advance(p);
        if (p->tok.type != QT_LEFT_PAREN)
            goto syntax;
        advance(p);
        if (p->tok.type != QT_RIGHT_PAREN)
            goto syntax;
    } else {
        int neg = 0;
        if (p->tok.type == QT_ADD || p->tok.type == QT_SUB) {
            neg = p->tok.type == QT_SUB;
            advance(p);
        }
        if (p->tok.type != QT_NUMBER && p->tok.type != QT_DURATION)
            goto syntax;
        if (literal_value(p, &p->tok, &ts) < 0)
            goto fail;
        if (neg)
            ts = -ts;
        /*
         * Prometheus checks the seconds against int64's range; the
         * milliseconds (ts * 1000) must fit too, or the conversion overflows.
         */
        double ms = round(ts * 1000);
        if (isnan(ts) || !(ms < 9223372036854775807.0 && ms > -9223372036854775808.0)) {
            char num[512];
            go_percent_f(num, sizeof(num), ts);
            fail_at(p, e->pos.start, "timestamp out of bounds for @ modifier: %s", num);
            goto fail;
        }
    }
    int64_t *offset;
    enum query_at *at;
    int64_t *at_ms;
    modifier_fields(e, &offset, &at, &at_ms);
    if (!offset) {
        fail_at(p, e->pos.start,
                "@ modifier must be preceded by an instant vector selector or range vector "
                "selector or a subquery");
        goto fail;
    }
    if (*at != QUERY_AT_NONE) {
        fail_at(p, e->pos.start, "@ <timestamp> may not be set multiple times");
        goto fail;
    }
    *at = kind;
    if (kind == QUERY_AT_TIME)
        *at_ms = (int64_t)round(ts * 1000);
    advance(p);
    e->pos.end = p->prev_end;
    return e;
syntax:
    unexpected(p, "@", "timestamp");
fail:
    query_node_free(e);
    return NULL;
}

/* Modifiers after an expression: [range], [range:step], offset, @, in any number and order. */
static struct query_node *parse_postfix(struct parser *p, struct query_node *e)
{
    while (e) {
        switch (p->tok.type) {
        case QT_LEFT_BRACKET:
            e = parse_brackets(p, e);
            break;
        case QT_OFFSET:
            e = parse_offset(p, e);
            break;
        case QT_AT:
            e = parse_at(p, e);
            break;
        case QT_ANCHORED:
        case QT_SMOOTHED:
            fail_at(p, p->tok.pos, "%.*s modifier is " NOT_SUPPORTED_EXPERIMENTAL, (int)p->tok.len,
                    tok_text(p));
            query_node_free(e);
            return NULL;
        default:
            return e;
        }
    }
    return NULL;
}

/*
 * Arguments of a call or an aggregation: '(' [expr {',' expr}] ')'; the
 * lookahead is '('. Returns 0 with the arguments appended and the closing
 * ')' as the lookahead, or -1.
 */
static int parse_args(struct parser *p, struct query_node ***args, size_t *nargs)
{
    size_t cap = 0;
    advance(p);
    if (p->tok.type == QT_RIGHT_PAREN)
        return 0;
    for (;;) {
        struct query_node *a = parse_expr(p, PREC_NONE + 1);
        if (!a)
            return -1;
        void *v = *args;
        util_grow(&v, &cap, *nargs + 1, sizeof(**args));
        *args = v;
        (*args)[(*nargs)++] = a;
        if (p->tok.type == QT_COMMA) {
            uint32_t comma = p->tok.pos;
            advance(p);
            if (p->failed)
                return -1;
            if (!can_start_expr(p->tok.type))
                return fail_at(p, comma, "trailing commas not allowed in function call args"), -1;
            continue;
        }
        if (p->tok.type == QT_RIGHT_PAREN)
            return 0;
        return unexpected(p, NULL, NULL), -1;
    }
}

static int max_child_depth(struct query_node **v, size_t n)
{
    int d = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i]->depth > d)
            d = v[i]->depth;
    return d;
}

/* name(args); the lookahead is the name, followed by '('. */
static struct query_node *parse_call(struct parser *p)
{
    struct query__token name = p->tok;
    struct query_node *n = new_node(QUERY_NODE_CALL, QUERY_VALUE_NONE, name.pos, name.pos);
    advance(p);
    if (parse_args(p, &n->call.args, &n->call.nargs) < 0)
        goto fail;
    n->pos.end = p->tok.pos + 1;
    /* yacc reduces the call before it reads past the ')': its errors come first. */
    const struct query_function *f = query_function_lookup(p->src + name.pos, name.len);
    if (!f) {
        struct sbuf sb;
        sbuf_init(&sb, 4096);
        query__quote(&sb, p->src + name.pos, name.len);
        fail_at(p, name.pos, "unknown function with name %s", sb.buf);
        sbuf_release(&sb);
        goto fail;
    }
    if (f->flags & QUERY_FN_EXPERIMENTAL) {
        fail_at(p, name.pos, "function \"%s\" is " NOT_SUPPORTED_EXPERIMENTAL, f->name);
        goto fail;
    }
    n->call.func = f;
    n->value_type = f->ret;
    advance(p);
    return deepen(p, n, max_child_depth(n->call.args, n->call.nargs));
fail:
    query_node_free(n);
    return NULL;
}

static int agg_has_param(enum query_agg op)
{
    return op == QUERY_AGG_TOPK || op == QUERY_AGG_BOTTOMK || op == QUERY_AGG_QUANTILE ||
           op == QUERY_AGG_COUNT_VALUES;
}

/*
 * op [by|without (labels)] (args) [by|without (labels)]; the lookahead is
 * the aggregation, followed by '(', by or without.
 */
static struct query_node *parse_aggregate(struct parser *p)
{
    struct query__token optok = p->tok;
    if (optok.type == QT_LIMITK || optok.type == QT_LIMIT_RATIO)
        return fail_at(p, optok.pos, "%.*s() is " NOT_SUPPORTED_EXPERIMENTAL, (int)optok.len,
                       p->src + optok.pos);
    struct query_node *n = new_node(QUERY_NODE_AGGREGATE, QUERY_VALUE_VECTOR, optok.pos, optok.pos);
    n->aggregate.op = tok_agg(optok.type);
    struct strlist grouping = {0};
    struct query_node **args = NULL;
    size_t nargs = 0;
    int modifier = 0;
    p->agg++;
    advance(p);
    if (p->tok.type == QT_BY || p->tok.type == QT_WITHOUT) {
        n->aggregate.without = p->tok.type == QT_WITHOUT;
        modifier = 1;
        advance(p);
        if (parse_grouping(p, &grouping, 1) < 0)
            goto fail;
    }
    if (p->tok.type != QT_LEFT_PAREN) {
        unexpected(p, NULL, NULL);
        goto fail;
    }
    if (parse_args(p, &args, &nargs) < 0)
        goto fail;
    /*
     * yacc reduces the aggregation as soon as it is complete: at the last
     * ')' when it cannot go on with by/without; its errors come before the
     * next token's.
     */
    if (!modifier) {
        advance(p);
        if (p->tok.type == QT_BY || p->tok.type == QT_WITHOUT) {
            n->aggregate.without = p->tok.type == QT_WITHOUT;
            modifier = 1;
            advance(p);
            if (parse_grouping(p, &grouping, 0) < 0)
                goto fail;
        }
    }
    p->agg--;
    /* The lookahead is the closing ')' when modifier is set. */
    n->pos.end = modifier ? p->tok.pos + 1 : p->prev_end;
    n->aggregate.grouping = grouping.v;
    n->aggregate.ngrouping = grouping.n;
    grouping = (struct strlist){0};
    if (nargs == 0) {
        fail_at(p, n->pos.start, "no arguments for aggregate expression provided");
        goto fail;
    }
    size_t want = agg_has_param(n->aggregate.op) ? 2 : 1;
    if (nargs != want) {
        fail_at(p, n->pos.start,
                "wrong number of arguments for aggregate expression provided, expected %zu, got "
                "%zu",
                want, nargs);
        goto fail;
    }
    if (modifier)
        advance(p);
    n->aggregate.expr = args[want - 1];
    n->aggregate.param = want == 2 ? args[0] : NULL;
    int d = max_child_depth(args, nargs);
    free(args);
    return deepen(p, n, d);
fail:
    strlist_release(&grouping);
    for (size_t i = 0; i < nargs; i++)
        query_node_free(args[i]);
    free(args);
    query_node_free(n);
    return NULL;
}

static struct query_node *parse_primary(struct parser *p)
{
    enum query__tok t = p->tok.type;
    switch (t) {
    case QT_NUMBER:
    case QT_DURATION: {
        struct query__token lit = p->tok;
        double v;
        if (literal_value(p, &lit, &v) < 0)
            return NULL;
        advance(p);
        struct query_node *n =
            new_node(QUERY_NODE_NUMBER, QUERY_VALUE_SCALAR, lit.pos, lit.pos + lit.len);
        n->number.value = v;
        n->number.duration = t == QT_DURATION;
        return n;
    }
    case QT_STRING: {
        struct query__token lit = p->tok;
        char *s = unquote(p, &lit);
        if (!s)
            return NULL;
        advance(p);
        struct query_node *n =
            new_node(QUERY_NODE_STRING, QUERY_VALUE_STRING, lit.pos, lit.pos + lit.len);
        n->string.value = s;
        return n;
    }
    case QT_LEFT_PAREN: {
        uint32_t start = p->tok.pos;
        advance(p);
        struct query_node *e = parse_expr(p, PREC_NONE + 1);
        if (!e)
            return NULL;
        if (p->tok.type != QT_RIGHT_PAREN) {
            query_node_free(e);
            return unexpected(p, NULL, NULL);
        }
        advance(p);
        struct query_node *n = new_node(QUERY_NODE_PAREN, e->value_type, start, p->prev_end);
        n->paren.expr = e;
        return deepen(p, n, e->depth);
    }
    case QT_LEFT_BRACE:
        return parse_vector_selector(p, 0);
    default:
        break;
    }
    if (QT_IS_AGGREGATOR(t)) {
        enum query__tok next = peek2(p);
        if (next == QT_LEFT_PAREN || next == QT_BY || next == QT_WITHOUT)
            return parse_aggregate(p);
        return parse_vector_selector(p, 1);
    }
    if (t == QT_IDENTIFIER || t == QT_START || t == QT_END || t == QT_STEP || t == QT_RANGE ||
        t == QT_MAX_OF || t == QT_MIN_OF) {
        if (peek2(p) == QT_LEFT_PAREN)
            return parse_call(p);
        return parse_vector_selector(p, 1);
    }
    if (is_metric_identifier(t))
        return parse_vector_selector(p, 1);
    return unexpected(p, NULL, NULL);
}

/* A unary expression: +e and -e bind tighter than * and looser than ^. */
static struct query_node *parse_unary(struct parser *p)
{
    if (p->tok.type != QT_ADD && p->tok.type != QT_SUB)
        return parse_postfix(p, parse_primary(p));
    struct query__token op = p->tok;
    advance(p);
    struct query_node *e = parse_expr(p, PREC_POW);
    if (!e)
        return NULL;
    if (e->type == QUERY_NODE_NUMBER) {
        if (op.type == QT_SUB)
            e->number.value = -e->number.value;
        e->pos.start = op.pos;
        return e;
    }
    struct query_node *n = new_node(QUERY_NODE_UNARY, e->value_type, op.pos, e->pos.end);
    n->unary.op = op.type == QT_SUB ? QUERY_OP_SUB : QUERY_OP_ADD;
    n->unary.expr = e;
    return deepen(p, n, e->depth);
}

/* bool, on/ignoring (...), group_left/group_right [(...)] after a binary operator. */
static int parse_bin_modifiers(struct parser *p, struct query_node *n)
{
    struct query_vector_matching *m = xcalloc(1, sizeof(*m));
    n->binary.matching = m;
    if (p->tok.type == QT_BOOL) {
        n->binary.return_bool = 1;
        advance(p);
    }
    if (p->tok.type == QT_ON || p->tok.type == QT_IGNORING) {
        struct strlist l = {0};
        m->on = p->tok.type == QT_ON;
        advance(p);
        int r = parse_grouping(p, &l, 1);
        m->labels = l.v, m->nlabels = l.n;
        if (r < 0)
            return -1;
        if (p->tok.type == QT_GROUP_LEFT || p->tok.type == QT_GROUP_RIGHT) {
            m->card =
                p->tok.type == QT_GROUP_LEFT ? QUERY_CARD_MANY_TO_ONE : QUERY_CARD_ONE_TO_MANY;
            advance(p);
            /*
             * The labels are optional, but yacc only goes on without them
             * when an operand (or fill) follows; else it is an error here.
             */
            enum query__tok t = p->tok.type;
            if (t != QT_LEFT_PAREN && !can_start_expr(t) && t != QT_FILL && t != QT_FILL_LEFT &&
                t != QT_FILL_RIGHT)
                return unexpected(p, "grouping opts", "\"(\""), -1;
            if (t == QT_LEFT_PAREN) {
                struct strlist inc = {0};
                r = parse_grouping(p, &inc, 1);
                m->include = inc.v, m->ninclude = inc.n;
                if (r < 0)
                    return -1;
            }
        }
    }
    if (p->tok.type == QT_FILL || p->tok.type == QT_FILL_LEFT || p->tok.type == QT_FILL_RIGHT)
        return fail_at(p, p->tok.pos, "%.*s modifier is " NOT_SUPPORTED_EXPERIMENTAL,
                       (int)p->tok.len, tok_text(p)),
               -1;
    return 0;
}

/* Binary operations whose operators have at least min_prec (precedence climbing). */
static struct query_node *parse_expr(struct parser *p, int min_prec)
{
    if (++p->depth > QUERY_MAX_DEPTH) {
        p->depth--;
        return fail_at(p, p->tok.pos, "expression nests too deeply (more than %d levels)",
                       QUERY_MAX_DEPTH);
    }
    struct query_node *lhs = parse_unary(p);
    while (lhs) {
        int prec = binop_prec(p->tok.type);
        if (prec == PREC_NONE || prec < min_prec)
            break;
        struct query__token op = p->tok;
        if (op.type == QT_TRIM_UPPER || op.type == QT_TRIM_LOWER) {
            fail_at(p, op.pos,
                    "histogram trim operator \"%.*s\" is not supported (native histograms only)",
                    (int)op.len, p->src + op.pos);
            query_node_free(lhs);
            lhs = NULL;
            break;
        }
        advance(p);
        struct query_node *n =
            new_node(QUERY_NODE_BINARY, QUERY_VALUE_VECTOR, lhs->pos.start, lhs->pos.end);
        n->binary.op = tok_op(op.type);
        n->binary.lhs = lhs;
        lhs = NULL;
        if (parse_bin_modifiers(p, n) < 0) {
            query_node_free(n);
            break;
        }
        struct query_node *rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
        if (!rhs) {
            query_node_free(n);
            break;
        }
        n->binary.rhs = rhs;
        n->pos.end = rhs->pos.end;
        if (n->binary.lhs->value_type == QUERY_VALUE_SCALAR &&
            rhs->value_type == QUERY_VALUE_SCALAR)
            n->value_type = QUERY_VALUE_SCALAR;
        int d = n->binary.lhs->depth > rhs->depth ? n->binary.lhs->depth : rhs->depth;
        lhs = deepen(p, n, d);
    }
    p->depth--;
    return lhs;
}

/* ----------------------------------------------------------------- type check */

static const char *raw_type_name(enum query_value_type t)
{
    switch (t) {
    case QUERY_VALUE_SCALAR:
        return "scalar";
    case QUERY_VALUE_VECTOR:
        return "vector";
    case QUERY_VALUE_MATRIX:
        return "matrix";
    case QUERY_VALUE_STRING:
        return "string";
    default:
        return "none";
    }
}

static int check(struct parser *p, struct query_node *n);

static int expect_type(struct parser *p, struct query_node *n, enum query_value_type want,
                       const char *context)
{
    if (check(p, n) < 0)
        return -1;
    if (n->value_type != want)
        return fail_at(p, n->pos.start, "expected type %s in %s, got %s",
                       query_value_type_name(want), context, query_value_type_name(n->value_type)),
               -1;
    return 0;
}

/* Where a binary expression's operator starts (Prometheus's opRange()). */
static uint32_t op_pos(const struct parser *p, const struct query_node *n)
{
    uint32_t i = n->binary.lhs->pos.end;
    while (i < p->len && p->src[i] && strchr(" \t\n\r", p->src[i]))
        i++;
    return i;
}

static int check_binary(struct parser *p, struct query_node *n)
{
    struct query_node *lhs = n->binary.lhs, *rhs = n->binary.rhs;
    struct query_vector_matching *m = n->binary.matching;
    enum query_op op = n->binary.op;
    if (check(p, lhs) < 0 || check(p, rhs) < 0)
        return -1;
    enum query_value_type lt = lhs->value_type, rt = rhs->value_type;
    if (n->binary.return_bool && !query_op_is_comparison(op))
        return fail_at(p, op_pos(p, n), "bool modifier can only be used on comparison operators"),
               -1;
    if (query_op_is_comparison(op) && !n->binary.return_bool && lt == QUERY_VALUE_SCALAR &&
        rt == QUERY_VALUE_SCALAR)
        return fail_at(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier"), -1;
    if (query_op_is_set(op) && m->card == QUERY_CARD_ONE_TO_ONE)
        m->card = QUERY_CARD_MANY_TO_MANY;
    if (m->on)
        for (size_t i = 0; i < m->nlabels; i++)
            for (size_t k = 0; k < m->ninclude; k++)
                if (strcmp(m->labels[i], m->include[k]) == 0) {
                    struct sbuf sb;
                    sbuf_init(&sb, 4096);
                    query__quote(&sb, m->labels[i], strlen(m->labels[i]));
                    fail_at(p, op_pos(p, n),
                            "label %s must not occur in ON and GROUP clause at once", sb.buf);
                    sbuf_release(&sb);
                    return -1;
                }
    if (lt != QUERY_VALUE_SCALAR && lt != QUERY_VALUE_VECTOR)
        return fail_at(p, lhs->pos.start,
                       "binary expression must contain only scalar and instant vector types"),
               -1;
    if (rt != QUERY_VALUE_SCALAR && rt != QUERY_VALUE_VECTOR)
        return fail_at(p, rhs->pos.start,
                       "binary expression must contain only scalar and instant vector types"),
               -1;
    if (lt != QUERY_VALUE_VECTOR || rt != QUERY_VALUE_VECTOR) {
        if (m->nlabels > 0)
            return fail_at(p, n->pos.start, "vector matching only allowed between instant vectors"),
                   -1;
        free_matching(m);
        n->binary.matching = NULL;
    } else if (query_op_is_set(op)) {
        if (m->card == QUERY_CARD_ONE_TO_MANY || m->card == QUERY_CARD_MANY_TO_ONE)
            return fail_at(p, n->pos.start, "no grouping allowed for \"%s\" operation",
                           query_op_name(op)),
                   -1;
        if (m->card != QUERY_CARD_MANY_TO_MANY)
            return fail_at(p, n->pos.start, "set operations must always be many-to-many"), -1;
    }
    if ((lt == QUERY_VALUE_SCALAR || rt == QUERY_VALUE_SCALAR) && query_op_is_set(op))
        return fail_at(p, n->pos.start,
                       "set operator \"%s\" not allowed in binary scalar expression",
                       query_op_name(op)),
               -1;
    return 0;
}

static int check_call(struct parser *p, struct query_node *n)
{
    const struct query_function *f = n->call.func;
    size_t nargs = n->call.nargs, ntypes = (size_t)f->nargtypes;
    if (f->variadic == 0) {
        if (ntypes != nargs)
            return fail_at(p, n->pos.start, "expected %zu argument(s) in call to \"%s\", got %zu",
                           ntypes, f->name, nargs),
                   -1;
    } else {
        size_t min = ntypes - 1;
        if (min > nargs)
            return fail_at(p, n->pos.start,
                           "expected at least %zu argument(s) in call to \"%s\", got %zu", min,
                           f->name, nargs),
                   -1;
        if (f->variadic > 0 && min + (size_t)f->variadic < nargs)
            return fail_at(p, n->pos.start,
                           "expected at most %zu argument(s) in call to \"%s\", got %zu",
                           min + (size_t)f->variadic, f->name, nargs),
                   -1;
    }
    for (size_t i = 0; i < nargs; i++) {
        size_t k = i;
        if (k >= ntypes) {
            if (f->variadic == 0)
                break;
            k = ntypes - 1;
        }
        struct query_node *a = n->call.args[i];
        if (check(p, a) < 0)
            return -1;
        if (a->value_type != f->argtypes[k])
            return fail_at(p, a->pos.start, "expected type %s in call to function \"%s\", got %s",
                           query_value_type_name(f->argtypes[k]), f->name,
                           query_value_type_name(a->value_type)),
                   -1;
    }
    return 0;
}

static int matches_empty(const struct tsdb_matcher *m)
{
    int empty = 0;
    char msg[8];
    switch (m->op) {
    case TSDB_EQ:
        return m->value[0] == '\0';
    case TSDB_NEQ:
        return m->value[0] != '\0';
    case TSDB_RE:
        return regex_check(m->value, &empty, msg, sizeof(msg)) == 0 && empty;
    default:
        return !(regex_check(m->value, &empty, msg, sizeof(msg)) == 0 && empty);
    }
}

static int check_vector_selector(struct parser *p, struct query_node *n)
{
    if (n->vs.name) {
        /* The last matcher is the name's; another __name__ matcher sets it twice. */
        for (size_t i = 0; i + 1 < n->vs.nmatchers; i++)
            if (strcmp(n->vs.matchers[i].name, "__name__") == 0) {
                struct sbuf sb;
                sbuf_init(&sb, 4096);
                sbuf_adds(&sb, "metric name must not be set twice: ");
                query__quote(&sb, n->vs.name, strlen(n->vs.name));
                sbuf_adds(&sb, " or ");
                query__quote(&sb, n->vs.matchers[i].value, strlen(n->vs.matchers[i].value));
                fail_at(p, n->pos.start, "%s", sb.buf);
                sbuf_release(&sb);
                return -1;
            }
        return 0;
    }
    for (size_t i = 0; i < n->vs.nmatchers; i++)
        if (!matches_empty(&n->vs.matchers[i]))
            return 0;
    return fail_at(p, n->pos.start, "vector selector must contain at least one non-empty matcher"),
           -1;
}

/* Prometheus's checkAST: children first, then the node's own rules. Returns 0 or -1. */
static int check(struct parser *p, struct query_node *n)
{
    switch (n->type) {
    case QUERY_NODE_NUMBER:
    case QUERY_NODE_STRING:
        return 0;
    case QUERY_NODE_VECTOR_SELECTOR:
        return check_vector_selector(p, n);
    case QUERY_NODE_MATRIX_SELECTOR:
        return check(p, n->matrix.vs);
    case QUERY_NODE_SUBQUERY:
        if (check(p, n->subquery.expr) < 0)
            return -1;
        if (n->subquery.expr->value_type != QUERY_VALUE_VECTOR)
            return fail_at(p, n->pos.start,
                           "subquery is only allowed on instant vector, got %s instead",
                           raw_type_name(n->subquery.expr->value_type)),
                   -1;
        return 0;
    case QUERY_NODE_PAREN:
        return check(p, n->paren.expr);
    case QUERY_NODE_UNARY: {
        if (check(p, n->unary.expr) < 0)
            return -1;
        enum query_value_type t = n->unary.expr->value_type;
        if (t != QUERY_VALUE_SCALAR && t != QUERY_VALUE_VECTOR)
            return fail_at(p, n->pos.start,
                           "unary expression only allowed on expressions of type scalar or "
                           "instant vector, got \"%s\"",
                           query_value_type_name(t)),
                   -1;
        return 0;
    }
    case QUERY_NODE_BINARY:
        return check_binary(p, n);
    case QUERY_NODE_AGGREGATE:
        if (expect_type(p, n->aggregate.expr, QUERY_VALUE_VECTOR, "aggregation expression") < 0)
            return -1;
        if (n->aggregate.param)
            return expect_type(p, n->aggregate.param,
                               n->aggregate.op == QUERY_AGG_COUNT_VALUES ? QUERY_VALUE_STRING
                                                                         : QUERY_VALUE_SCALAR,
                               "aggregation parameter");
        return 0;
    case QUERY_NODE_CALL:
        return check_call(p, n);
    }
    return 0;
}

/* ---------------------------------------------------------------------- entry */

int query_parse_len(const char *src, size_t len, struct query_node **out, struct query_error *err)
{
    struct parser p = {.src = src, .len = len, .err = err};
    *out = NULL;
    if (len > QUERY_MAX_LEN) {
        fail_at(&p, QUERY_MAX_LEN, "query is longer than %d bytes", QUERY_MAX_LEN);
        return -1;
    }
    query__lex_init(&p.lx, src, len);
    lex_skip_comments(&p.lx, &p.tok);
    if (p.tok.type == QT_ERROR) {
        fail_at(&p, p.tok.pos, "%s", p.lx.err);
        return -1;
    }
    if (p.tok.type == QT_EOF) {
        fail_at(&p, 0, "no expression found in input");
        return -1;
    }
    struct query_node *n = parse_expr(&p, PREC_NONE + 1);
    if (n && p.tok.type != QT_EOF)
        unexpected(&p, NULL, NULL);
    if (n && !p.failed)
        check(&p, n);
    if (p.failed) {
        query_node_free(n);
        return -1;
    }
    *out = n;
    return 0;
}

int query_parse(const char *src, struct query_node **out, struct query_error *err)
{
    return query_parse_len(src, strlen(src), out, err);
}

/* ------------------------------------------------------------------- helpers */

const char *query_value_type_name(enum query_value_type t)
{
    switch (t) {
    case QUERY_VALUE_SCALAR:
        return "scalar";
    case QUERY_VALUE_VECTOR:
        return "instant vector";
    case QUERY_VALUE_MATRIX:
        return "range vector";
    case QUERY_VALUE_STRING:
        return "string";
    default:
        return "none";
    }
}

const char *query_op_name(enum query_op op)
{
    static const char *const names[] = {
        [QUERY_OP_ADD] = "+",         [QUERY_OP_SUB] = "-",   [QUERY_OP_MUL] = "*",
        [QUERY_OP_DIV] = "/",         [QUERY_OP_MOD] = "%",   [QUERY_OP_POW] = "^",
        [QUERY_OP_ATAN2] = "atan2",   [QUERY_OP_EQ] = "==",   [QUERY_OP_NE] = "!=",
        [QUERY_OP_GT] = ">",          [QUERY_OP_LT] = "<",    [QUERY_OP_GE] = ">=",
        [QUERY_OP_LE] = "<=",         [QUERY_OP_AND] = "and", [QUERY_OP_OR] = "or",
        [QUERY_OP_UNLESS] = "unless",
    };
    return (size_t)op < ARRAY_SIZE(names) ? names[op] : "?";
}

const char *query_agg_name(enum query_agg op)
{
    static const char *const names[] = {
        [QUERY_AGG_SUM] = "sum",           [QUERY_AGG_AVG] = "avg",
        [QUERY_AGG_COUNT] = "count",       [QUERY_AGG_MIN] = "min",
        [QUERY_AGG_MAX] = "max",           [QUERY_AGG_GROUP] = "group",
        [QUERY_AGG_STDDEV] = "stddev",     [QUERY_AGG_STDVAR] = "stdvar",
        [QUERY_AGG_TOPK] = "topk",         [QUERY_AGG_BOTTOMK] = "bottomk",
        [QUERY_AGG_QUANTILE] = "quantile", [QUERY_AGG_COUNT_VALUES] = "count_values",
    };
    return (size_t)op < ARRAY_SIZE(names) ? names[op] : "?";
}

int query_op_is_comparison(enum query_op op)
{
    return op == QUERY_OP_EQ || op == QUERY_OP_NE || op == QUERY_OP_GT || op == QUERY_OP_LT ||
           op == QUERY_OP_GE || op == QUERY_OP_LE;
}

int query_op_is_set(enum query_op op)
{
    return op == QUERY_OP_AND || op == QUERY_OP_OR || op == QUERY_OP_UNLESS;
}

/* --------------------------------------------------------------------- equal */

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int strv_eq(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static int number_eq(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b; /* 0 == -0: a duration literal prints -0s as 0s */
}

/* Is every matcher of a one of b's? */
static int matchers_in(const struct query_node *a, const struct query_node *b)
{
    for (size_t i = 0; i < a->vs.nmatchers; i++) {
        const struct tsdb_matcher *m = &a->vs.matchers[i];
        size_t k;
        for (k = 0; k < b->vs.nmatchers; k++) {
            const struct tsdb_matcher *o = &b->vs.matchers[k];
            if (m->op == o->op && strcmp(m->name, o->name) == 0 && strcmp(m->value, o->value) == 0)
                break;
        }
        if (k == b->vs.nmatchers)
            return 0;
    }
    return 1;
}

int query_node_equal(const struct query_node *a, const struct query_node *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->value_type != b->value_type)
        return 0;
    switch (a->type) {
    case QUERY_NODE_NUMBER:
        return number_eq(a->number.value, b->number.value) &&
               a->number.duration == b->number.duration;
    case QUERY_NODE_STRING:
        return strcmp(a->string.value, b->string.value) == 0;
    case QUERY_NODE_VECTOR_SELECTOR:
        if (!str_eq(a->vs.name, b->vs.name) || a->vs.nmatchers != b->vs.nmatchers ||
            a->vs.offset_ms != b->vs.offset_ms || a->vs.at != b->vs.at ||
            (a->vs.at == QUERY_AT_TIME && a->vs.at_ms != b->vs.at_ms))
            return 0;
        /* The same matchers in any order (the printer sorts them). */
        return matchers_in(a, b) && matchers_in(b, a);
    case QUERY_NODE_MATRIX_SELECTOR:
        return a->matrix.range_ms == b->matrix.range_ms &&
               query_node_equal(a->matrix.vs, b->matrix.vs);
    case QUERY_NODE_SUBQUERY:
        return a->subquery.range_ms == b->subquery.range_ms &&
               a->subquery.step_ms == b->subquery.step_ms &&
               a->subquery.offset_ms == b->subquery.offset_ms && a->subquery.at == b->subquery.at &&
               (a->subquery.at != QUERY_AT_TIME || a->subquery.at_ms == b->subquery.at_ms) &&
               query_node_equal(a->subquery.expr, b->subquery.expr);
    case QUERY_NODE_PAREN:
        return query_node_equal(a->paren.expr, b->paren.expr);
    case QUERY_NODE_UNARY:
        return a->unary.op == b->unary.op && query_node_equal(a->unary.expr, b->unary.expr);
    case QUERY_NODE_BINARY: {
        const struct query_vector_matching *x = a->binary.matching, *y = b->binary.matching;
        if (a->binary.op != b->binary.op || a->binary.return_bool != b->binary.return_bool ||
            !x != !y)
            return 0;
        if (x && (x->card != y->card || x->on != y->on ||
                  !strv_eq(x->labels, x->nlabels, y->labels, y->nlabels) ||
                  !strv_eq(x->include, x->ninclude, y->include, y->ninclude)))
            return 0;
        return query_node_equal(a->binary.lhs, b->binary.lhs) &&
               query_node_equal(a->binary.rhs, b->binary.rhs);
    }
    case QUERY_NODE_AGGREGATE:
        return a->aggregate.op == b->aggregate.op && a->aggregate.without == b->aggregate.without &&
               strv_eq(a->aggregate.grouping, a->aggregate.ngrouping, b->aggregate.grouping,
                       b->aggregate.ngrouping) &&
               query_node_equal(a->aggregate.expr, b->aggregate.expr) &&
               query_node_equal(a->aggregate.param, b->aggregate.param);
    case QUERY_NODE_CALL:
        if (a->call.func != b->call.func || a->call.nargs != b->call.nargs)
            return 0;
        for (size_t i = 0; i < a->call.nargs; i++)
            if (!query_node_equal(a->call.args[i], b->call.args[i]))
                return 0;
        return 1;
    }
    return 0;
}
