/*
 * functions.c: the table of PromQL functions: every function Prometheus 3
 * defines (promql/parser/functions.go), with its argument and return types
 * for the parser's type checks and an id for the evaluator's dispatch.
 * Experimental ones are listed so that calling them says "not supported"
 * rather than "unknown function".
 */
#include "query/promql.h"

#include <string.h>

#include "util/banned.h"

#define V              QUERY_VALUE_VECTOR
#define M              QUERY_VALUE_MATRIX
#define S              QUERY_VALUE_SCALAR
#define STR            QUERY_VALUE_STRING
#define EXPERIMENTAL   QUERY_FN_EXPERIMENTAL
#define HISTOGRAM_ONLY QUERY_FN_HISTOGRAM_ONLY

/* {name, id, argument types, how many, variadic, return type, flags}; sorted by name. */
const struct query_function query_functions[QUERY_FN_COUNT_] = {
    {"abs", QUERY_FN_ABS, {V}, 1, 0, V, 0},
    {"absent", QUERY_FN_ABSENT, {V}, 1, 0, V, 0},
    {"absent_over_time", QUERY_FN_ABSENT_OVER_TIME, {M}, 1, 0, V, 0},
    {"acos", QUERY_FN_ACOS, {V}, 1, 0, V, 0},
    {"acosh", QUERY_FN_ACOSH, {V}, 1, 0, V, 0},
    {"asin", QUERY_FN_ASIN, {V}, 1, 0, V, 0},
    {"asinh", QUERY_FN_ASINH, {V}, 1, 0, V, 0},
    {"atan", QUERY_FN_ATAN, {V}, 1, 0, V, 0},
    {"atanh", QUERY_FN_ATANH, {V}, 1, 0, V, 0},
    {"avg_over_time", QUERY_FN_AVG_OVER_TIME, {M}, 1, 0, V, 0},
    {"ceil", QUERY_FN_CEIL, {V}, 1, 0, V, 0},
    {"changes", QUERY_FN_CHANGES, {M}, 1, 0, V, 0},
    {"clamp", QUERY_FN_CLAMP, {V, S, S}, 3, 0, V, 0},
    {"clamp_max", QUERY_FN_CLAMP_MAX, {V, S}, 2, 0, V, 0},
    {"clamp_min", QUERY_FN_CLAMP_MIN, {V, S}, 2, 0, V, 0},
    {"cos", QUERY_FN_COS, {V}, 1, 0, V, 0},
    {"cosh", QUERY_FN_COSH, {V}, 1, 0, V, 0},
    {"count_over_time", QUERY_FN_COUNT_OVER_TIME, {M}, 1, 0, V, 0},
    {"day_of_month", QUERY_FN_DAY_OF_MONTH, {V}, 1, 1, V, 0},
    {"day_of_week", QUERY_FN_DAY_OF_WEEK, {V}, 1, 1, V, 0},
    {"day_of_year", QUERY_FN_DAY_OF_YEAR, {V}, 1, 1, V, 0},
    {"days_in_month", QUERY_FN_DAYS_IN_MONTH, {V}, 1, 1, V, 0},
    {"deg", QUERY_FN_DEG, {V}, 1, 0, V, 0},
    {"delta", QUERY_FN_DELTA, {M}, 1, 0, V, 0},
    {"deriv", QUERY_FN_DERIV, {M}, 1, 0, V, 0},
    {"double_exponential_smoothing",
     QUERY_FN_DOUBLE_EXPONENTIAL_SMOOTHING,
     {M, S, S},
     3,
     0,
     V,
     EXPERIMENTAL},
    {"end", QUERY_FN_END, {0}, 0, 0, S, EXPERIMENTAL},
    {"exp", QUERY_FN_EXP, {V}, 1, 0, V, 0},
    {"first_over_time", QUERY_FN_FIRST_OVER_TIME, {M}, 1, 0, V, 0},
    {"floor", QUERY_FN_FLOOR, {V}, 1, 0, V, 0},
    {"histogram_avg", QUERY_FN_HISTOGRAM_AVG, {V}, 1, 0, V, HISTOGRAM_ONLY},
    {"histogram_count", QUERY_FN_HISTOGRAM_COUNT, {V}, 1, 0, V, HISTOGRAM_ONLY},
    {"histogram_fraction", QUERY_FN_HISTOGRAM_FRACTION, {S, S, V}, 3, 0, V, 0},
    {"histogram_quantile", QUERY_FN_HISTOGRAM_QUANTILE, {S, V}, 2, 0, V, 0},
    {"histogram_quantiles", QUERY_FN_HISTOGRAM_QUANTILES, {V, STR, S, S}, 4, 9, V, EXPERIMENTAL},
    {"histogram_stddev", QUERY_FN_HISTOGRAM_STDDEV, {V}, 1, 0, V, HISTOGRAM_ONLY},
    {"histogram_stdvar", QUERY_FN_HISTOGRAM_STDVAR, {V}, 1, 0, V, HISTOGRAM_ONLY},
    {"histogram_sum", QUERY_FN_HISTOGRAM_SUM, {V}, 1, 0, V, HISTOGRAM_ONLY},
    {"hour", QUERY_FN_HOUR, {V}, 1, 1, V, 0},
    {"idelta", QUERY_FN_IDELTA, {M}, 1, 0, V, 0},
    {"increase", QUERY_FN_INCREASE, {M}, 1, 0, V, 0},
    {"info", QUERY_FN_INFO, {V, V}, 2, 1, V, EXPERIMENTAL},
    {"irate", QUERY_FN_IRATE, {M}, 1, 0, V, 0},
    {"label_join", QUERY_FN_LABEL_JOIN, {V, STR, STR, STR}, 4, -1, V, 0},
    {"label_replace", QUERY_FN_LABEL_REPLACE, {V, STR, STR, STR, STR}, 5, 0, V, 0},
    {"last_over_time", QUERY_FN_LAST_OVER_TIME, {M}, 1, 0, V, 0},
    {"ln", QUERY_FN_LN, {V}, 1, 0, V, 0},
    {"log10", QUERY_FN_LOG10, {V}, 1, 0, V, 0},
    {"log2", QUERY_FN_LOG2, {V}, 1, 0, V, 0},
    {"mad_over_time", QUERY_FN_MAD_OVER_TIME, {M}, 1, 0, V, EXPERIMENTAL},
    {"max_of", QUERY_FN_MAX_OF, {S, S}, 2, 0, S, EXPERIMENTAL},
    {"max_over_time", QUERY_FN_MAX_OVER_TIME, {M}, 1, 0, V, 0},
    {"min_of", QUERY_FN_MIN_OF, {S, S}, 2, 0, S, EXPERIMENTAL},
    {"min_over_time", QUERY_FN_MIN_OVER_TIME, {M}, 1, 0, V, 0},
    {"minute", QUERY_FN_MINUTE, {V}, 1, 1, V, 0},
    {"month", QUERY_FN_MONTH, {V}, 1, 1, V, 0},
    {"pi", QUERY_FN_PI, {0}, 0, 0, S, 0},
    {"predict_linear", QUERY_FN_PREDICT_LINEAR, {M, S}, 2, 0, V, 0},
    {"present_over_time", QUERY_FN_PRESENT_OVER_TIME, {M}, 1, 0, V, 0},
    {"quantile_over_time", QUERY_FN_QUANTILE_OVER_TIME, {S, M}, 2, 0, V, 0},
    {"rad", QUERY_FN_RAD, {V}, 1, 0, V, 0},
    {"range", QUERY_FN_RANGE, {0}, 0, 0, S, EXPERIMENTAL},
    {"rate", QUERY_FN_RATE, {M}, 1, 0, V, 0},
    {"resets", QUERY_FN_RESETS, {M}, 1, 0, V, 0},
    {"round", QUERY_FN_ROUND, {V, S}, 2, 1, V, 0},
    {"scalar", QUERY_FN_SCALAR, {V}, 1, 0, S, 0},
    {"sgn", QUERY_FN_SGN, {V}, 1, 0, V, 0},
    {"sin", QUERY_FN_SIN, {V}, 1, 0, V, 0},
    {"sinh", QUERY_FN_SINH, {V}, 1, 0, V, 0},
    {"sort", QUERY_FN_SORT, {V}, 1, 0, V, 0},
    {"sort_by_label", QUERY_FN_SORT_BY_LABEL, {V, STR}, 2, -1, V, EXPERIMENTAL},
    {"sort_by_label_desc", QUERY_FN_SORT_BY_LABEL_DESC, {V, STR}, 2, -1, V, EXPERIMENTAL},
    {"sort_desc", QUERY_FN_SORT_DESC, {V}, 1, 0, V, 0},
    {"sqrt", QUERY_FN_SQRT, {V}, 1, 0, V, 0},
    {"start", QUERY_FN_START, {0}, 0, 0, S, EXPERIMENTAL},
    {"start_timestamp", QUERY_FN_START_TIMESTAMP, {V}, 1, 0, V, EXPERIMENTAL},
    {"stddev_over_time", QUERY_FN_STDDEV_OVER_TIME, {M}, 1, 0, V, 0},
    {"stdvar_over_time", QUERY_FN_STDVAR_OVER_TIME, {M}, 1, 0, V, 0},
    {"step", QUERY_FN_STEP, {0}, 0, 0, S, EXPERIMENTAL},
    {"sum_over_time", QUERY_FN_SUM_OVER_TIME, {M}, 1, 0, V, 0},
    {"tan", QUERY_FN_TAN, {V}, 1, 0, V, 0},
    {"tanh", QUERY_FN_TANH, {V}, 1, 0, V, 0},
    {"time", QUERY_FN_TIME, {0}, 0, 0, S, 0},
    {"timestamp", QUERY_FN_TIMESTAMP, {V}, 1, 0, V, 0},
    {"ts_of_first_over_time", QUERY_FN_TS_OF_FIRST_OVER_TIME, {M}, 1, 0, V, EXPERIMENTAL},
    {"ts_of_last_over_time", QUERY_FN_TS_OF_LAST_OVER_TIME, {M}, 1, 0, V, EXPERIMENTAL},
    {"ts_of_max_over_time", QUERY_FN_TS_OF_MAX_OVER_TIME, {M}, 1, 0, V, EXPERIMENTAL},
    {"ts_of_min_over_time", QUERY_FN_TS_OF_MIN_OVER_TIME, {M}, 1, 0, V, EXPERIMENTAL},
    {"vector", QUERY_FN_VECTOR, {S}, 1, 0, V, 0},
    {"year", QUERY_FN_YEAR, {V}, 1, 1, V, 0},
};

const struct query_function *query_function_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = QUERY_FN_COUNT_;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *f = query_functions[mid].name;
        size_t flen = strlen(f);
        int c = memcmp(f, name, flen < len ? flen : len);
        if (c == 0)
            c = (flen > len) - (flen < len);
        if (c == 0)
            return &query_functions[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
