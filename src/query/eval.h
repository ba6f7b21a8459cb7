/*
 * eval.h: the PromQL evaluator. A tree from query_parse() (promql.h) is
 * evaluated against the store as an instant query at one time or as a range
 * query over [start, end] every step, with Prometheus 3's semantics: 5 minute
 * lookback, staleness markers, offset and @ (start() and end() included),
 * subqueries, extrapolated rate/increase/delta, delayed __name__ removal,
 * vector matching with its errors, every aggregation and every classic
 * float function of the parser's table. Results have Prometheus's types
 * (scalar, string, instant vector, range vector) and its annotations
 * ("PromQL warning: ..." / "PromQL info: ..."). Design and conformance:
 * docs/PROMQL.md.
 *
 * A range query loads each selector's series once for the whole range and
 * evaluates all steps from memory; nothing is re-read from the store per step.
 *
 * Limits (struct query_opts): a timeout, a cap on samples held in memory at
 * once (as Prometheus counts them: loaded samples plus points of
 * intermediate results) and a cap on steps per series. Past a limit the
 * query fails with a clear error and everything it allocated is freed.
 *
 * Errors carry Prometheus's error type so that the HTTP API can map them to
 * its status codes: "bad_data" (400: syntax errors, bad parameters, a range
 * query over an expression that is not a scalar or an instant vector, too
 * many points), "execution" (422: e.g. "vector cannot contain metrics with
 * the same labelset", "many-to-many matching not allowed", too many
 * samples), "timeout" (503), "canceled" (499: the client went away) and
 * "internal" (500: the store failed).
 *
 * Threads: a query uses no shared state besides the store (which allows
 * concurrent readers); any number of queries may run at once.
 */
#ifndef SITREP_QUERY_EVAL_H
#define SITREP_QUERY_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "query/promql.h"
#include "tsdb/tsdb.h"

/* Defaults of struct query_opts (a field left 0 takes these). */
#define QUERY_DEFAULT_LOOKBACK_MS      (5 * 60 * 1000)
#define QUERY_DEFAULT_TIMEOUT_MS       (30 * 1000)
#define QUERY_DEFAULT_MAX_SAMPLES      50000000ull
#define QUERY_DEFAULT_MAX_POINTS       11000 /* Prometheus' API: max resolution */
#define QUERY_DEFAULT_SUBQUERY_STEP_MS (60 * 1000)

/* Error types (Prometheus' errorType strings). */
#define QUERY_ERR_BAD_DATA  "bad_data"
#define QUERY_ERR_EXECUTION "execution"
#define QUERY_ERR_TIMEOUT   "timeout"
#define QUERY_ERR_CANCELED  "canceled"
#define QUERY_ERR_INTERNAL  "internal"

struct query_opts {
    int64_t lookback_ms;      /* lookback delta of instant selectors; 0: 5 min */
    int64_t timeout_ms;       /* wall-clock budget; 0: 30 s, < 0: none */
    uint64_t max_samples;     /* samples held at once; 0: 50 million */
    uint64_t max_points;      /* steps of a range query; 0: 11,000 */
    int64_t subquery_step_ms; /* step of a subquery written without one; 0: 1 min */
    /* If set, the query stops with a "canceled" error once *cancel != 0. */
    const volatile int *cancel;
};

struct query_eval_error {
    const char *type; /* QUERY_ERR_*: a static string */
    char msg[QUERY_ERROR_LEN];
};

struct query_point {
    int64_t t; /* milliseconds since the epoch */
    double v;
};

struct query_series {
    const struct metric_label *labels; /* sorted by name, __name__ included if kept */
    size_t nlabels;
    /*
     * Instant vector: exactly one point, at the evaluation time. Range vector
     * (a range query, or an instant query of m[5m] or a subquery): the points,
     * oldest first.
     */
    const struct query_point *points;
    size_t npoints;
};

struct query__mem;

/*
 * The answer to a query. Everything it points to (series, labels, points,
 * strings) belongs to it and stays valid until query_result_release().
 */
struct query_result {
    /*
     * QUERY_VALUE_SCALAR: scalar, at t. QUERY_VALUE_STRING: string, at t.
     * QUERY_VALUE_VECTOR: series[0..nseries), one point each; in
     * Prometheus' order (evaluation order; sort(), topk() etc. order it).
     * QUERY_VALUE_MATRIX: series sorted by labels (always so for a range
     * query, whose type is QUERY_VALUE_MATRIX whatever the expression).
     */
    enum query_value_type type;
    double scalar;
    const char *string;
    int64_t t;
    const struct query_series *series;
    size_t nseries;
    /* Annotations, Prometheus' text with the position: "PromQL info: ... (1:6)". */
    const char *const *warnings;
    size_t nwarnings;
    const char *const *infos;
    size_t ninfos;
    uint64_t samples_loaded; /* samples read from the store (statistics) */
    struct query__mem *mem;  /* private: owns all of the above */
};

/*
 * Evaluate expr as an instant query at t (ms). text is the query expr was
 * parsed from (for the positions in annotations; may be NULL: then they say
 * "unknown position"). opts may be NULL (defaults). Returns 0 with *res
 * filled (release it with query_result_release), or -1 with err filled and
 * *res zeroed; either way nothing else is left allocated. expr is not
 * modified and may be shared between threads.
 */
int query_eval_instant(struct tsdb *db, const struct query_node *expr, const char *text, int64_t t,
                       const struct query_opts *opts, struct query_result *res,
                       struct query_eval_error *err);

/*
 * Evaluate expr as a range query: at start, start + step, ... up to end
 * (all ms; step > 0, end >= start). expr must be a scalar or an instant
 * vector (else a bad_data error, as Prometheus). The result is a
 * QUERY_VALUE_MATRIX with one point per step where the series has a value.
 * Returns as query_eval_instant.
 */
int query_eval_range(struct tsdb *db, const struct query_node *expr, const char *text,
                     int64_t start, int64_t end, int64_t step, const struct query_opts *opts,
                     struct query_result *res, struct query_eval_error *err);

/*
 * Parse text and evaluate it (a parse error is a bad_data error with the
 * parser's message, e.g. "1:7: parse error: unexpected <op:*>").
 */
int query_run_instant(struct tsdb *db, const char *text, int64_t t, const struct query_opts *opts,
                      struct query_result *res, struct query_eval_error *err);
int query_run_range(struct tsdb *db, const char *text, int64_t start, int64_t end, int64_t step,
                    const struct query_opts *opts, struct query_result *res,
                    struct query_eval_error *err);

/* Free everything res owns and zero it. A zeroed result is fine. */
void query_result_release(struct query_result *res);

/*
 * Format a float as Go's strconv.FormatFloat(v, 'f', -1, 64) does (the
 * shortest decimal that reads back exactly, no exponent; NaN, +Inf, -Inf),
 * which is what Prometheus' JSON answers and count_values labels use.
 * out must hold 400 bytes. Returns the length.
 */
size_t query_format_float(double v, char *out, size_t cap);

#endif
