/*
 * eval_internal.h: what the evaluator's files (eval*.c) share: the query's
 * memory, interned strings and label sets, the values an expression
 * evaluates to over a grid of steps, errors and annotations. Not part of
 * the public API (eval.h).
 *
 * Errors: query__fail() does not return. It records the error and longjmps to
 * the query's entry point (query_eval_*), which frees everything the query
 * allocated: every allocation of a query goes through query__alloc() (or the
 * arena) and is linked in the query's struct query__mem, so no error path
 * needs its own cleanup. The one rule that keeps this safe: never call
 * anything that may fail while a store query (tsdb_query_*) or another
 * untracked resource is open; close it first.
 */
#ifndef SITREP_QUERY_EVAL_INTERNAL_H
#define SITREP_QUERY_EVAL_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "query/eval.h"
#include "query/promql.h"

/* ---- memory --------------------------------------------------------------- */

/* A tracked heap block; the user's bytes follow the header. */
struct query__blk {
    struct query__blk *prev, *next;
};

struct query__labels;

/*
 * Everything a query allocated: tracked blocks, the arena (small immutable
 * things: strings, label sets) and the intern tables. Owned by the running
 * query, then by its result.
 */
struct query__mem {
    struct query__blk head; /* circular list of tracked blocks */
    char *arena;            /* current arena chunk (itself a tracked block) */
    size_t arena_used, arena_cap;
    /* Interned strings: open addressing, power-of-two size. */
    const char **strs;
    size_t nstrs, strs_cap;
    /* Interned label sets. */
    const struct query__labels **sets;
    size_t nsets, sets_cap;
};

/* ---- label sets ------------------------------------------------------------ */

/*
 * An interned label set: sorted by name, no empty values, every string
 * interned. Two label sets are equal exactly when their pointers are.
 */
struct query__labels {
    uint64_t hash;
    uint32_t n;
    struct metric_label l[];
};

/* ---- values over a grid ---------------------------------------------------- */

/* The steps an expression is evaluated at: start, start + step, ..., <= end. */
struct query__grid {
    int64_t start, end, step;
    size_t n;
};

#define QUERY__DROP_NAME 1u /* __name__ is to be removed at the end (delayed removal) */

/* One series of an instant vector, over a grid: v[i] is valid where ok[i]. */
struct query__series {
    const struct query__labels *ls;
    unsigned flags;
    double *v;
    uint8_t *ok;
};

/* An instant vector over a grid (or a scalar: one series, every ok[i] set). */
struct query__vec {
    struct query__series *s;
    size_t n, cap;
    size_t nsteps;
};

/* One series of a range vector: its samples (no stale markers), oldest first. */
struct query__rseries {
    const struct query__labels *ls;
    unsigned flags;
    struct tsdb_sample *ss;
    size_t n;
};

/*
 * A range vector (matrix selector or subquery) loaded for every step of a
 * grid. The window of step t is (e - range, e] with e = (at ? at_ms : t) -
 * offset.
 */
struct query__range {
    struct query__rseries *s;
    size_t n;
    int64_t range_ms, offset_ms;
    int has_at;
    int64_t at_ms;
    int from_subquery;
    const struct query_node *node; /* the matrix selector or subquery */
};

/* ---- the evaluator --------------------------------------------------------- */

enum query__anno_kind { QUERY__WARN, QUERY__INFO };

struct query__anno {
    enum query__anno_kind kind;
    const char *key; /* interned message without position: the dedup key */
    uint32_t pos;    /* byte offset in the query text */
    /* histogram_quantile monotonicity info: merged over steps. */
    int mono;
    int64_t min_ts, max_ts;
    double min_bucket, max_bucket, max_diff;
    uint64_t count;
};

struct query__ev {
    struct tsdb *db;
    struct query__mem *mem;
    jmp_buf *jmp;
    struct query_eval_error *err;
    const char *text;
    int64_t qstart, qend; /* the query's start and end: @ start(), @ end() */
    int range_query;      /* a range query (for sort()'s warning) */
    int64_t lookback, subq_step;
    uint64_t max_samples, samples, samples_loaded;
    int64_t deadline_ns; /* 0: none */
    const volatile int *cancel;
    unsigned tick;
    struct query__anno *annos;
    size_t nannos, annos_cap;
    /* Interned strings used everywhere. */
    const char *s_name, *s_type, *s_unit, *s_le, *s_empty;
    const struct query__labels *empty;
};

/* ---- eval.c: core ---------------------------------------------------------- */

/* Record the error and unwind to the query's entry point. */
_Noreturn void query__fail(struct query__ev *ev, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Timeout and cancellation check; cheap, call it in loops. */
void query__check(struct query__ev *ev);
/* The same without unwinding: 0, or -1 with the error recorded (see query__stream). */
int query__check_soft(struct query__ev *ev);
/* Account for n more samples held (fails past the limit) / n fewer. */
void query__hold(struct query__ev *ev, uint64_t n);
void query__unhold(struct query__ev *ev, uint64_t n);

void *query__alloc(struct query__ev *ev, size_t n);
void *query__zalloc(struct query__ev *ev, size_t n);
void *query__realloc(struct query__ev *ev, void *p, size_t n);
void query__free(struct query__ev *ev, void *p);
/* Arena memory: freed with the query (or its result) only. */
void *query__arena(struct query__ev *ev, size_t n);

/* Add an annotation (deduplicated by message). pos: node whose start is reported. */
void query__anno(struct query__ev *ev, enum query__anno_kind kind, const struct query_node *pos,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* histogram_quantile's "needed to be fixed for monotonicity" info, merged over steps. */
void query__anno_mono(struct query__ev *ev, const struct query_node *pos, const char *metric,
                      int64_t ts, double min_bucket, double max_bucket, double max_diff);

/* Unwrap parentheses. */
const struct query_node *query__unparen(const struct query_node *n);

/* Evaluate an instant-vector expression over g. The caller owns the result. */
struct query__vec *query__eval_vec(struct query__ev *ev, const struct query_node *n,
                                   const struct query__grid *g);
/* Evaluate a scalar expression over g: g->n values, owned by the caller (query__free). */
double *query__eval_scalar(struct query__ev *ev, const struct query_node *n,
                           const struct query__grid *g);
/* Load a matrix selector or evaluate a subquery for every step of g. */
struct query__range *query__eval_range(struct query__ev *ev, const struct query_node *n,
                                       const struct query__grid *g);
/*
 * A matrix selector's series read one at a time straight from the store,
 * for functions that need one series at a time: no copy of all samples.
 * While a stream is open nothing may unwind (query__fail, query__check, query__hold):
 * use the _soft variants, and on an error stop reading; query__stream_close()
 * then reports it.
 */
struct query__stream {
    struct tsdb_query *q;
    struct query__range win;   /* the window parameters (s, n unused) */
    struct query__rseries cur; /* the current series; samples without stale markers */
    size_t cap;
    int failed;
};

void query__stream_open(struct query__ev *ev, struct query__stream *st, const struct query_node *n,
                        const struct query__grid *g);
/* 1 with st->cur set, or 0 at the end or on an error (st->failed). Never unwinds. */
int query__stream_next(struct query__ev *ev, struct query__stream *st);
/* Close the store query; unwinds if reading failed. */
void query__stream_close(struct query__ev *ev, struct query__stream *st);

/* The string of a string literal (in parentheses or not). */
const char *query__eval_string(const struct query_node *n);

/* Vectors. */
struct query__vec *query__vec_new(struct query__ev *ev, size_t nsteps, size_t cap);
/* Append a series with all steps absent; returns it (pointer valid until the next add). */
struct query__series *query__vec_add(struct query__ev *ev, struct query__vec *vec,
                                     const struct query__labels *ls, unsigned flags);
/* query__vec_add that does not unwind: NULL (error recorded) past the samples limit. */
struct query__series *query__vec_add_soft(struct query__ev *ev, struct query__vec *vec,
                                          const struct query__labels *ls, unsigned flags);
void query__vec_free(struct query__ev *ev, struct query__vec *vec);
/* Drop the last series of vec (one just added that got no point). */
void query__vec_pop(struct query__ev *ev, struct query__vec *vec);
/* Drop series without any point, keeping the order. */
void query__vec_compact(struct query__ev *ev, struct query__vec *vec);
void query__range_free(struct query__ev *ev, struct query__range *r);

/*
 * Merge series with equal label sets (e.g. after label_replace or delayed
 * name removal); fails with "vector cannot contain metrics with the same
 * labelset" if two have a point at the same step.
 */
void query__vec_merge_same(struct query__ev *ev, struct query__vec *vec);

/* Go's math.Max / math.Min: NaN wins. */
double query__go_max(double a, double b);
double query__go_min(double a, double b);
/* Go's %g and %v (shortest) formatting of a float into out (>= 32 bytes). */
void query__fmt_g(double v, char *out, size_t cap);

/* ---- eval_labels.c: strings and label sets ---------------------------------- */

void query__mem_init(struct query__mem *m);
void query__mem_release(struct query__mem *m);

const char *query__str(struct query__ev *ev, const char *s, size_t len);
const char *query__strz(struct query__ev *ev, const char *s);
/* Intern the label set l[0..n) (any order, names unique, strings any). */
const struct query__labels *query__labels(struct query__ev *ev, const struct metric_label *l,
                                          size_t n);
/* Intern l[0..n), already sorted by name with interned strings and no empty values. */
const struct query__labels *query__labels_sorted(struct query__ev *ev, const struct metric_label *l,
                                                 size_t n);
/* The value of label name (interned or not), or NULL. */
const char *query__get(const struct query__labels *ls, const char *name);
/*
 * ls without the metric name (delayed name removal): Prometheus drops the
 * schema labels __name__, __type__ and __unit__ together.
 */
const struct query__labels *query__drop_name(struct query__ev *ev, const struct query__labels *ls);
/* ls with name set to value (removed if value is empty). */
const struct query__labels *query__set(struct query__ev *ev, const struct query__labels *ls,
                                       const char *name, const char *value);
/*
 * Keep only the labels in names[0..n) (keep != 0) or drop them (keep == 0);
 * names need not be interned or sorted. drop_name also removes __name__
 * (only it).
 */
const struct query__labels *query__filter(struct query__ev *ev, const struct query__labels *ls,
                                          const char *const *names, size_t n, int keep,
                                          int drop_name);
/* Compare by labels as Prometheus' labels.Compare (for sorting). */
int query__labels_cmp(const struct query__labels *a, const struct query__labels *b);
/* Prometheus' Labels.String(): {__name__="x", a="b"}. */
void query__labels_string(const struct query__labels *ls, struct sbuf *sb);

/* A map from label sets to indexes (open addressing, grows). */
struct query__lsmap {
    const struct query__labels **key;
    size_t *val;
    size_t cap, n;
};

void query__lsmap_init(struct query__ev *ev, struct query__lsmap *m, size_t expected);
/* The value slot of ls; *found says whether it existed (else it is added, value unset). */
size_t *query__lsmap_get(struct query__ev *ev, struct query__lsmap *m,
                         const struct query__labels *ls, int *found);
void query__lsmap_free(struct query__ev *ev, struct query__lsmap *m);

/* ---- eval_binary.c --------------------------------------------------------- */

struct query__vec *query__eval_binary(struct query__ev *ev, const struct query_node *n,
                                      const struct query__grid *g);
double *query__eval_binary_scalar(struct query__ev *ev, const struct query_node *n,
                                  const struct query__grid *g);
double query__scalar_op(enum query_op op, double a, double b);

/* ---- eval_agg.c ------------------------------------------------------------ */

struct query__vec *query__eval_aggregate(struct query__ev *ev, const struct query_node *n,
                                         const struct query__grid *g);
/* The φ-quantile of values[0..n) (sorted in place), as Prometheus' quantile(). */
double query__quantile(double q, double *values, size_t n);

/* ---- eval_func.c ----------------------------------------------------------- */

/* A call returning an instant vector whose arguments are not range vectors. */
struct query__vec *query__eval_call(struct query__ev *ev, const struct query_node *n,
                                    const struct query__grid *g);
/*
 * The labels absent() and absent_over_time() answer with: those of the
 * selector's equality matchers, except __name__ and names matched twice.
 */
const struct query__labels *query__absent_labels(struct query__ev *ev,
                                                 const struct query_node *arg);
/* A call returning a scalar (time(), pi(), scalar(), ...). */
double *query__eval_call_scalar(struct query__ev *ev, const struct query_node *n,
                                const struct query__grid *g);

/* ---- eval_range.c ---------------------------------------------------------- */

/* A call with a range-vector argument (rate(), *_over_time(), ...). */
struct query__vec *query__eval_range_call(struct query__ev *ev, const struct query_node *n,
                                          const struct query__grid *g);

/* Kahan-Babuska-Neumaier summation step, as Prometheus' kahansum.Inc. */
static inline void query__kahan_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    double as = *sum < 0 ? -*sum : *sum, ai = inc < 0 ? -inc : inc;
    if (t > 1.7976931348623157e308 || t < -1.7976931348623157e308)
        *c = 0;
    else if (as >= ai) /* false for NaN: then c becomes NaN, as in Go */
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

#endif
