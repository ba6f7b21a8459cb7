/*
 * lex.h: the PromQL lexer and the Go-style quoting the parser's messages and
 * the printer share (private to src/query/). The lexer is a port of
 * Prometheus's promql/parser/lex.go state machine, so that tokens, their
 * positions and lexical errors are the same.
 */
#ifndef SITREP_QUERY_LEX_H
#define SITREP_QUERY_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

/* Token types, in Prometheus's order and groups (see the range macros below). */
enum query__tok {
    QT_EOF,
    QT_ERROR,
    QT_COMMENT,
    QT_IDENTIFIER,
    QT_METRIC_IDENTIFIER, /* an identifier with a ':' */
    QT_NUMBER,
    QT_DURATION,
    QT_STRING,
    QT_LEFT_PAREN,
    QT_RIGHT_PAREN,
    QT_LEFT_BRACE,
    QT_RIGHT_BRACE,
    QT_LEFT_BRACKET,
    QT_RIGHT_BRACKET,
    QT_COMMA,
    QT_EQL, /* = */
    QT_COLON,

    QT_OPERATORS_START_,
    QT_ADD,
    QT_DIV,
    QT_EQLC, /* == */
    QT_EQL_REGEX,
    QT_GTE,
    QT_GTR,
    QT_TRIM_UPPER, /* </ */
    QT_TRIM_LOWER, /* >/ */
    QT_LAND,
    QT_LOR,
    QT_LSS,
    QT_LTE,
    QT_LUNLESS,
    QT_MOD,
    QT_MUL,
    QT_NEQ,
    QT_NEQ_REGEX,
    QT_POW,
    QT_SUB,
    QT_AT,
    QT_ATAN2,
    QT_OPERATORS_END_,

    QT_AGGREGATORS_START_,
    QT_AVG,
    QT_BOTTOMK,
    QT_COUNT,
    QT_COUNT_VALUES,
    QT_GROUP,
    QT_MAX,
    QT_MIN,
    QT_QUANTILE,
    QT_STDDEV,
    QT_STDVAR,
    QT_SUM,
    QT_TOPK,
    QT_LIMITK,
    QT_LIMIT_RATIO,
    QT_AGGREGATORS_END_,

    QT_KEYWORDS_START_,
    QT_BOOL,
    QT_BY,
    QT_GROUP_LEFT,
    QT_GROUP_RIGHT,
    QT_FILL,
    QT_FILL_LEFT,
    QT_FILL_RIGHT,
    QT_IGNORING,
    QT_OFFSET,
    QT_SMOOTHED,
    QT_ANCHORED,
    QT_ON,
    QT_WITHOUT,
    QT_KEYWORDS_END_,

    /* "preprocessors": start() and end() of @, step() and friends of duration expressions */
    QT_START,
    QT_END,
    QT_STEP,
    QT_RANGE,
    QT_MAX_OF,
    QT_MIN_OF,
};

#define QT_IS_OPERATOR(t)   ((t) > QT_OPERATORS_START_ && (t) < QT_OPERATORS_END_)
#define QT_IS_AGGREGATOR(t) ((t) > QT_AGGREGATORS_START_ && (t) < QT_AGGREGATORS_END_)
#define QT_IS_KEYWORD(t)    ((t) > QT_KEYWORDS_START_ && (t) < QT_KEYWORDS_END_)

struct query__token {
    enum query__tok type;
    uint32_t pos, len; /* the text src[pos, pos + len); for QT_ERROR, where it is */
};

enum query__lex_mode { QL_STATEMENTS, QL_DURATION_EXPR, QL_DONE };

struct query__lexer {
    const char *src;
    size_t len;
    size_t pos, start; /* scan position; start of the token being scanned */
    size_t width;      /* bytes of the last rune read (for backing up) */
    int paren_depth;
    int brace_open, bracket_open, got_colon, got_duration;
    int string_open; /* the quote of the string being scanned */
    enum query__lex_mode mode;
    char err[256]; /* the message of the last QT_ERROR */
};

void query__lex_init(struct query__lexer *l, const char *src, size_t len);
/*
 * Scan the next token into *t (comments included). After QT_EOF or
 * QT_ERROR every call returns QT_EOF. The lexer is a plain value: copying
 * it saves the scan state (the parser peeks ahead that way).
 */
void query__lex_next(struct query__lexer *l, struct query__token *t);

/* The keyword token for word (case-insensitive), QT_NUMBER for inf/nan, else QT_EOF. */
enum query__tok query__keyword(const char *word, size_t len);

/* utf8.DecodeRuneInString: the rune at s (n > 0 bytes) and its width; 0xFFFD width 1 if invalid. */
int32_t query__decode_rune(const char *s, size_t n, int *width);
/* Append the UTF-8 encoding of r (valid). */
void query__encode_rune(struct sbuf *sb, int32_t r);
/* 1 if s[0, n) is valid UTF-8. */
int query__valid_utf8(const char *s, size_t n);
/* strconv.Quote: s in double quotes with Go's escapes. */
void query__quote(struct sbuf *sb, const char *s, size_t n);
/* fmt's %.<runes>q: quote at most the first `runes` runes of s. */
void query__quote_prefix(struct sbuf *sb, const char *s, size_t n, size_t runes);
/* strconv.QuoteRune: 'x' with Go's escapes. */
void query__quote_rune(struct sbuf *sb, int32_t r);

#endif
