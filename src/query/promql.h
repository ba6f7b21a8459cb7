/*
 * promql.h: the PromQL parser: query text in, a typed syntax tree out, and
 * the tree printed back in Prometheus's canonical form (what its
 * /api/v1/format_query answers). The language is classic float PromQL as
 * Prometheus 3.x parses it with its default options; its grammar, type rules
 * and error messages are followed, positions included. The evaluator works
 * on the tree this module builds.
 *
 * What is refused with an error that says "not supported" (so that the
 * evaluator is never asked for something it would answer wrongly): the
 * experimental functions and aggregations Prometheus only enables behind
 * --enable-feature (info(), limitk(), limit_ratio(), mad_over_time(), ...,
 * see QUERY_FN_EXPERIMENTAL), duration arithmetic and step()/range()/
 * min_of()/max_of() inside brackets and after offset, the anchored and
 * smoothed modifiers, fill()/fill_left()/fill_right() on binary operators,
 * the native histogram trim operators </ and >/, and strings with NUL bytes
 * (\x00 escapes), which the rest of sitrep, in C strings, cannot carry.
 *
 * Ownership: query_parse() returns a tree the caller owns and frees with
 * query_node_free(). Every node owns its children, strings and arrays; no
 * node points into the query text, which may be freed after parsing.
 *
 * Threads: parsing and printing use no shared state; the function table is
 * constant.
 */
#ifndef SITREP_QUERY_PROMQL_H
#define SITREP_QUERY_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"
#include "util/sbuf.h"

/* Longest query text accepted, in bytes. */
#define QUERY_MAX_LEN 65536
/*
 * Deepest syntax tree accepted (a node with no children has depth 1). Keeps
 * the parser's recursion, and that of everything walking the tree
 * (printer, evaluator), far from the end of any thread's stack.
 */
#define QUERY_MAX_DEPTH 256
/* Size of query_error.msg; longer messages are cut. */
#define QUERY_ERROR_LEN 512

/* The value an expression evaluates to (Prometheus's ValueType). */
enum query_value_type {
    QUERY_VALUE_NONE,
    QUERY_VALUE_SCALAR,
    QUERY_VALUE_VECTOR, /* instant vector */
    QUERY_VALUE_MATRIX, /* range vector */
    QUERY_VALUE_STRING,
};

enum query_node_type {
    QUERY_NODE_NUMBER,          /* 1, 0x1f, 1e3, Inf, NaN, 5m (a duration used as seconds) */
    QUERY_NODE_STRING,          /* "a", 'a', `a` */
    QUERY_NODE_VECTOR_SELECTOR, /* foo{a="b"} offset 5m @ 100 */
    QUERY_NODE_MATRIX_SELECTOR, /* foo{a="b"}[5m] offset 5m @ 100 */
    QUERY_NODE_SUBQUERY,        /* expr[1h:5m] offset 5m @ 100 */
    QUERY_NODE_PAREN,           /* (expr) */
    QUERY_NODE_UNARY,           /* -expr, +expr (never directly on a number: folded) */
    QUERY_NODE_BINARY,          /* lhs op [bool] [on|ignoring (...) [group_x (...)]] rhs */
    QUERY_NODE_AGGREGATE,       /* sum by (a) (expr), topk(3, expr) */
    QUERY_NODE_CALL,            /* rate(foo[5m]) */
};

/* Binary operators (and, for QUERY_NODE_UNARY, QUERY_OP_ADD / QUERY_OP_SUB). */
enum query_op {
    QUERY_OP_ADD,
    QUERY_OP_SUB,
    QUERY_OP_MUL,
    QUERY_OP_DIV,
    QUERY_OP_MOD,
    QUERY_OP_POW,
    QUERY_OP_ATAN2,
    QUERY_OP_EQ, /* == */
    QUERY_OP_NE, /* != */
    QUERY_OP_GT,
    QUERY_OP_LT,
    QUERY_OP_GE,
    QUERY_OP_LE,
    QUERY_OP_AND,
    QUERY_OP_OR,
    QUERY_OP_UNLESS,
};

enum query_agg {
    QUERY_AGG_SUM,
    QUERY_AGG_AVG,
    QUERY_AGG_COUNT,
    QUERY_AGG_MIN,
    QUERY_AGG_MAX,
    QUERY_AGG_GROUP,
    QUERY_AGG_STDDEV,
    QUERY_AGG_STDVAR,
    QUERY_AGG_TOPK,         /* param: scalar k */
    QUERY_AGG_BOTTOMK,      /* param: scalar k */
    QUERY_AGG_QUANTILE,     /* param: scalar phi */
    QUERY_AGG_COUNT_VALUES, /* param: string, the output label's name */
};

/* Vector matching cardinality of a binary operation between two vectors. */
enum query_card {
    QUERY_CARD_ONE_TO_ONE,
    QUERY_CARD_MANY_TO_ONE,  /* group_left */
    QUERY_CARD_ONE_TO_MANY,  /* group_right */
    QUERY_CARD_MANY_TO_MANY, /* and, or, unless (always) */
};

/* The @ modifier. */
enum query_at {
    QUERY_AT_NONE,
    QUERY_AT_TIME,  /* @ <timestamp>: at_ms */
    QUERY_AT_START, /* @ start(): the query's start time */
    QUERY_AT_END,   /* @ end(): the query's end time */
};

/* A node's place in the query text: bytes [start, end). */
struct query_pos {
    uint32_t start, end;
};

struct query_function;

struct query_vector_matching {
    enum query_card card;
    int on;        /* 1: on (labels); 0: ignoring (labels) */
    char **labels; /* the on / ignoring list */
    size_t nlabels;
    char **include; /* the group_left / group_right list */
    size_t ninclude;
};

struct query_node {
    enum query_node_type type;
    enum query_value_type value_type; /* computed at parse time */
    struct query_pos pos;
    int depth; /* height of the subtree (1: no children), <= QUERY_MAX_DEPTH */
    union {
        struct {
            double value;
            int duration; /* written as a duration (5m): printed as one */
        } number;
        struct {
            char *value; /* unquoted, escapes applied; never holds a NUL byte */
        } string;
        struct {
            /*
             * The metric name written before the braces, or NULL (no name,
             * or only {"name"} / {__name__="name"} inside them).
             */
            char *name;
            /*
             * Every matcher, in the order written; a name before the braces
             * adds __name__="name" as the last one. Strings are owned (free
             * through a cast); regexes are checked to compile, anchored.
             */
            struct tsdb_matcher *matchers;
            size_t nmatchers;
            int64_t offset_ms; /* offset modifier (negative: later), 0 if none */
            enum query_at at;
            int64_t at_ms; /* with QUERY_AT_TIME */
        } vs;
        struct {
            /* A QUERY_NODE_VECTOR_SELECTOR; its offset and @ apply to the range. */
            struct query_node *vs;
            int64_t range_ms; /* > 0 */
        } matrix;
        struct {
            struct query_node *expr; /* an instant vector */
            int64_t range_ms;        /* > 0 */
            int64_t step_ms;         /* > 0, or 0: none given, use the default */
            int64_t offset_ms;
            enum query_at at;
            int64_t at_ms;
        } subquery;
        struct {
            struct query_node *expr;
        } paren;
        struct {
            enum query_op op; /* QUERY_OP_ADD or QUERY_OP_SUB */
            struct query_node *expr;
        } unary;
        struct {
            enum query_op op;
            struct query_node *lhs, *rhs;
            int return_bool; /* comparison with the bool modifier */
            /*
             * Set only when both sides are instant vectors (NULL when either
             * is a scalar). Set operators always have QUERY_CARD_MANY_TO_MANY.
             */
            struct query_vector_matching *matching;
        } binary;
        struct {
            enum query_agg op;
            struct query_node *expr;  /* an instant vector */
            struct query_node *param; /* topk/bottomk/quantile/count_values, else NULL */
            char **grouping;          /* by / without labels */
            size_t ngrouping;
            int without; /* 1: without (grouping); 0: by (grouping), an empty list = by () */
        } aggregate;
        struct {
            const struct query_function *func; /* from query_functions[] */
            struct query_node **args;
            size_t nargs;
        } call;
    };
};

/* Function table (functions.c): every function Prometheus 3 knows. */
enum query_func {
    QUERY_FN_ABS,
    QUERY_FN_ABSENT,
    QUERY_FN_ABSENT_OVER_TIME,
    QUERY_FN_ACOS,
    QUERY_FN_ACOSH,
    QUERY_FN_ASIN,
    QUERY_FN_ASINH,
    QUERY_FN_ATAN,
    QUERY_FN_ATANH,
    QUERY_FN_AVG_OVER_TIME,
    QUERY_FN_CEIL,
    QUERY_FN_CHANGES,
    QUERY_FN_CLAMP,
    QUERY_FN_CLAMP_MAX,
    QUERY_FN_CLAMP_MIN,
    QUERY_FN_COS,
    QUERY_FN_COSH,
    QUERY_FN_COUNT_OVER_TIME,
    QUERY_FN_DAY_OF_MONTH,
    QUERY_FN_DAY_OF_WEEK,
    QUERY_FN_DAY_OF_YEAR,
    QUERY_FN_DAYS_IN_MONTH,
    QUERY_FN_DEG,
    QUERY_FN_DELTA,
    QUERY_FN_DERIV,
    QUERY_FN_DOUBLE_EXPONENTIAL_SMOOTHING,
    QUERY_FN_END,
    QUERY_FN_EXP,
    QUERY_FN_FIRST_OVER_TIME,
    QUERY_FN_FLOOR,
    QUERY_FN_HISTOGRAM_AVG,
    QUERY_FN_HISTOGRAM_COUNT,
    QUERY_FN_HISTOGRAM_FRACTION,
    QUERY_FN_HISTOGRAM_QUANTILE,
    QUERY_FN_HISTOGRAM_QUANTILES,
    QUERY_FN_HISTOGRAM_STDDEV,
    QUERY_FN_HISTOGRAM_STDVAR,
    QUERY_FN_HISTOGRAM_SUM,
    QUERY_FN_HOUR,
    QUERY_FN_IDELTA,
    QUERY_FN_INCREASE,
    QUERY_FN_INFO,
    QUERY_FN_IRATE,
    QUERY_FN_LABEL_JOIN,
    QUERY_FN_LABEL_REPLACE,
    QUERY_FN_LAST_OVER_TIME,
    QUERY_FN_LN,
    QUERY_FN_LOG10,
    QUERY_FN_LOG2,
    QUERY_FN_MAD_OVER_TIME,
    QUERY_FN_MAX_OF,
    QUERY_FN_MAX_OVER_TIME,
    QUERY_FN_MIN_OF,
    QUERY_FN_MIN_OVER_TIME,
    QUERY_FN_MINUTE,
    QUERY_FN_MONTH,
    QUERY_FN_PI,
    QUERY_FN_PREDICT_LINEAR,
    QUERY_FN_PRESENT_OVER_TIME,
    QUERY_FN_QUANTILE_OVER_TIME,
    QUERY_FN_RAD,
    QUERY_FN_RANGE,
    QUERY_FN_RATE,
    QUERY_FN_RESETS,
    QUERY_FN_ROUND,
    QUERY_FN_SCALAR,
    QUERY_FN_SGN,
    QUERY_FN_SIN,
    QUERY_FN_SINH,
    QUERY_FN_SORT,
    QUERY_FN_SORT_BY_LABEL,
    QUERY_FN_SORT_BY_LABEL_DESC,
    QUERY_FN_SORT_DESC,
    QUERY_FN_SQRT,
    QUERY_FN_START,
    QUERY_FN_START_TIMESTAMP,
    QUERY_FN_STDDEV_OVER_TIME,
    QUERY_FN_STDVAR_OVER_TIME,
    QUERY_FN_STEP,
    QUERY_FN_SUM_OVER_TIME,
    QUERY_FN_TAN,
    QUERY_FN_TANH,
    QUERY_FN_TIME,
    QUERY_FN_TIMESTAMP,
    QUERY_FN_TS_OF_FIRST_OVER_TIME,
    QUERY_FN_TS_OF_LAST_OVER_TIME,
    QUERY_FN_TS_OF_MAX_OVER_TIME,
    QUERY_FN_TS_OF_MIN_OVER_TIME,
    QUERY_FN_VECTOR,
    QUERY_FN_YEAR,
    QUERY_FN_COUNT_ /* number of functions */
};

/* Experimental in Prometheus (behind a feature flag): the parser refuses it as not supported. */
#define QUERY_FN_EXPERIMENTAL 1u
/*
 * Reads native histogram samples only and ignores float samples, so on a
 * float-only store it always returns an empty vector (what Prometheus
 * answers for float data). Parsed normally.
 */
#define QUERY_FN_HISTOGRAM_ONLY 2u

struct query_function {
    const char *name;
    enum query_func id;
    /*
     * Argument types, as Prometheus declares them. With variadic == 0 the
     * call takes exactly nargtypes arguments. Otherwise the last one is
     * optional and may repeat: the call takes nargtypes - 1 arguments plus
     * up to `variadic` more (no limit with -1), all of the last type.
     */
    enum query_value_type argtypes[5];
    int nargtypes;
    int variadic;
    enum query_value_type ret;
    unsigned flags; /* QUERY_FN_* */
};

/* Indexed by enum query_func (sorted by name). */
extern const struct query_function query_functions[QUERY_FN_COUNT_];

/* The function called name (len bytes), or NULL. */
const struct query_function *query_function_lookup(const char *name, size_t len);

struct query_error {
    size_t pos;         /* byte offset in the query where the error is */
    unsigned line, col; /* 1-based line and byte column of pos; 0, 0 for an empty query */
    /*
     * The whole message, as Prometheus words it:
     * "1:7: parse error: unexpected <op:*>" (line:col: parse error: what).
     */
    char msg[QUERY_ERROR_LEN];
};

/*
 * Parse the query text src[0, len). Returns 0 with *out set to the tree
 * (caller frees it with query_node_free), or -1 with *out = NULL and err
 * filled (err may be NULL). Errors are syntax errors (what was unexpected
 * and, where the grammar knows it, what was expected), type errors (e.g.
 * rate() of an instant vector, set operators with scalars), the "not
 * supported" features listed at the top of this file, and the caps
 * QUERY_MAX_LEN and QUERY_MAX_DEPTH. A NUL byte is an unexpected character
 * outside strings, and not supported inside them.
 */
int query_parse_len(const char *src, size_t len, struct query_node **out, struct query_error *err);
/* query_parse_len() on a NUL-terminated string. */
int query_parse(const char *src, struct query_node **out, struct query_error *err);

/* Free a tree from query_parse (NULL is fine). */
void query_node_free(struct query_node *n);

/*
 * Append n in Prometheus's canonical form (Expr.String(): what
 * /api/v1/format_query returns), e.g. `sum by (job) (rate(foo{a="b"}[5m]))`.
 * Parsing the output gives a tree equal to n (query_node_equal). The text
 * differs from Prometheus's only where Prometheus's would not read back the
 * same: duration literals are rounded to the millisecond (it truncates 1s1ms
 * to 1s), by/on labels named inf, nan or without are quoted, Inf as the left
 * operand of ^ loses its '+', U+FFFD in strings is escaped, and characters
 * Go leaves unescaped may be escaped here (or the reverse for unassigned
 * code points). Returns 0, or -1 if the buffer's cap was reached (the
 * output is then cut short).
 */
int query_format(const struct query_node *n, struct sbuf *sb);

/*
 * 1 if the trees are the same expression, else 0: every field but the
 * source positions and depths; a selector's matchers in any order.
 */
int query_node_equal(const struct query_node *a, const struct query_node *b);

/* "scalar", "instant vector", "range vector", "string" or "none" (Prometheus's wording). */
const char *query_value_type_name(enum query_value_type t);
/* The operator or aggregation as written in PromQL ("+", "==", "and", "count_values"). */
const char *query_op_name(enum query_op op);
const char *query_agg_name(enum query_agg op);
/* ==, !=, >, <, >=, <= */
int query_op_is_comparison(enum query_op op);
/* and, or, unless */
int query_op_is_set(enum query_op op);

/*
 * Append a duration in Prometheus's notation (model.Duration): 1h30m, 90d,
 * 1w, 1y, 250ms, 0s; negative values get a leading '-'. Returns 0 or -1
 * as sbuf_add.
 */
int query_format_duration(int64_t ms, struct sbuf *sb);

#endif
