/*
 * eval_range.c: functions of a range vector (a matrix selector or a
 * subquery): rate, increase, delta with Prometheus' extrapolation and
 * counter-reset handling, irate, idelta, deriv, predict_linear, resets,
 * changes, the *_over_time family and absent_over_time. The range vector
 * is loaded once for the whole grid; each series' window then slides over
 * its samples with two cursors as the steps advance.
 */
#include "query/eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/lex.h"
#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

/* The samples of one window: ss[0..n), oldest first. */
struct win {
    const struct tsdb_sample *ss;
    size_t n;
    int64_t range_start, range_end; /* (start, end] in ms */
    double range_s;
};

/*
 * Prometheus' extrapolatedRate for float samples. 0: no result. resets: the
 * window has a counter reset (known from prefix counts, so that the common
 * window without one costs O(1)).
 */
static int extrapolated_rate(const struct win *w, int is_counter, int is_rate, int resets,
                             double *out)
{
    if (w->n < 2)
        return 0;
    const struct tsdb_sample *s = w->ss;
    size_t last = w->n - 1;
    double result = s[last].v - s[0].v;
    if (is_counter && resets)
        for (size_t i = 1; i < w->n; i++)
            if (s[i].v < s[i - 1].v)
                result += s[i - 1].v;
    double to_start = (double)(s[0].ts - w->range_start) / 1000;
    double to_end = (double)(w->range_end - s[last].ts) / 1000;
    double sampled = (double)(s[last].ts - s[0].ts) / 1000;
    double avg = sampled / (double)last;
    double threshold = avg * 1.1;
    if (to_start >= threshold)
        to_start = avg / 2;
    if (is_counter) {
        /* A counter cannot go below zero: do not extrapolate past that point. */
        double to_zero = to_start;
        if (result > 0 && s[0].v >= 0)
            to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    if (to_end >= threshold)
        to_end = avg / 2;
    double factor = 1.0;
    if (sampled != 0)
        factor = (sampled + to_start + to_end) / sampled;
    if (is_rate)
        factor /= w->range_s;
    *out = result * factor;
    return 1;
}

/* Prometheus' instantValue (irate, idelta) for float samples. */
static int instant_value(const struct win *w, int is_rate, double *out)
{
    if (w->n < 2)
        return 0;
    const struct tsdb_sample *a = &w->ss[w->n - 2], *b = &w->ss[w->n - 1];
    int64_t interval = b->ts - a->ts;
    if (interval == 0)
        return 0;
    double r = b->v;
    if (!is_rate || !(b->v < a->v))
        r = b->v - a->v;
    if (is_rate)
        r /= (double)interval / 1000;
    *out = r;
    return 1;
}

/* Least squares over the window, x in seconds relative to t0. */
static void linear_regression(const struct win *w, int64_t t0, double *slope, double *intercept)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init = w->ss[0].v;
    int const_y = 1;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->ss[i].v;
        if (const_y && i > 0 && v != init)
            const_y = 0;
        n += 1.0;
        double x = (double)(w->ss[i].ts - t0) / 1e3;
        query__kahan_inc(x, &sx, &cx);
        query__kahan_inc(v, &sy, &cy);
        query__kahan_inc(x * v, &sxy, &cxy);
        query__kahan_inc(x * x, &sx2, &cx2);
    }
    if (const_y) {
        if (isinf(init)) {
            *slope = *intercept = NAN;
            return;
        }
        *slope = 0;
        *intercept = init;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n;
    double var = sx2 - sx * sx / n;
    *slope = cov / var;
    *intercept = sy / n - *slope * sx / n;
}

static double avg_over_time(const struct win *w)
{
    double sum = w->ss[0].v, count = 1, mean = 0, c = 0;
    int incremental = 0;
    for (size_t i = 1; i < w->n; i++) {
        double f = w->ss[i].v;
        count = (double)(i + 1);
        if (!incremental) {
            double ns = sum, nc = c;
            query__kahan_inc(f, &ns, &nc);
            if (!isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = 1;
            mean = sum / (count - 1);
            c /= count - 1;
        }
        double q = (count - 1) / count;
        double m = q * mean, mc = q * c;
        query__kahan_inc(f / count, &m, &mc);
        mean = m;
        c = mc;
    }
    if (incremental)
        return mean + c;
    return sum / count + c / count;
}

static double variance_over_time(const struct win *w)
{
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (size_t i = 0; i < w->n; i++) {
        double f = w->ss[i].v;
        count++;
        double delta = f - (mean + cmean);
        query__kahan_inc(delta / count, &mean, &cmean);
        query__kahan_inc(delta * (f - (mean + cmean)), &aux, &caux);
    }
    return (aux + caux) / count;
}

static int supported(enum query_func id)
{
    switch (id) {
    case QUERY_FN_RATE:
    case QUERY_FN_INCREASE:
    case QUERY_FN_DELTA:
    case QUERY_FN_IRATE:
    case QUERY_FN_IDELTA:
    case QUERY_FN_DERIV:
    case QUERY_FN_PREDICT_LINEAR:
    case QUERY_FN_RESETS:
    case QUERY_FN_CHANGES:
    case QUERY_FN_AVG_OVER_TIME:
    case QUERY_FN_SUM_OVER_TIME:
    case QUERY_FN_COUNT_OVER_TIME:
    case QUERY_FN_LAST_OVER_TIME:
    case QUERY_FN_FIRST_OVER_TIME:
    case QUERY_FN_PRESENT_OVER_TIME:
    case QUERY_FN_MAX_OVER_TIME:
    case QUERY_FN_MIN_OVER_TIME:
    case QUERY_FN_QUANTILE_OVER_TIME:
    case QUERY_FN_STDDEV_OVER_TIME:
    case QUERY_FN_STDVAR_OVER_TIME:
    case QUERY_FN_ABSENT_OVER_TIME:
        return 1;
    default:
        return 0;
    }
}

/*
 * The value of function id over one window. 0: no result at this step.
 * npre: prefix counts over the whole series for resets()/changes()/rate
 * (pre[i] = events among samples 1..i); lo: the window's first index.
 * Does not unwind (it runs while a store query is open).
 */
static int apply(struct query__ev *ev, const struct query_node *n, enum query_func id,
                 const struct win *w, int64_t t, double param, double *tmp, const uint32_t *pre,
                 size_t lo, double *out)
{
    size_t k = w->n;
    const struct tsdb_sample *s = w->ss;
    uint32_t events = k ? pre[lo + k - 1] - pre[lo] : 0;
    switch (id) {
    case QUERY_FN_RATE:
        return extrapolated_rate(w, 1, 1, events != 0, out);
    case QUERY_FN_INCREASE:
        return extrapolated_rate(w, 1, 0, events != 0, out);
    case QUERY_FN_DELTA:
        return extrapolated_rate(w, 0, 0, 0, out);
    case QUERY_FN_IRATE:
        return instant_value(w, 1, out);
    case QUERY_FN_IDELTA:
        return instant_value(w, 0, out);
    case QUERY_FN_DERIV: {
        if (k < 2)
            return 0;
        double slope, icpt;
        linear_regression(w, s[0].ts, &slope, &icpt);
        *out = slope;
        return 1;
    }
    case QUERY_FN_PREDICT_LINEAR: {
        if (k < 2)
            return 0;
        double slope, icpt;
        linear_regression(w, t, &slope, &icpt);
        *out = slope * param + icpt;
        return 1;
    }
    case QUERY_FN_RESETS:
    case QUERY_FN_CHANGES:
        *out = events;
        return 1;
    case QUERY_FN_AVG_OVER_TIME:
        *out = avg_over_time(w);
        return 1;
    case QUERY_FN_SUM_OVER_TIME: {
        double sum = 0, c = 0;
        for (size_t i = 0; i < k; i++)
            query__kahan_inc(s[i].v, &sum, &c);
        *out = isinf(sum) ? sum : sum + c;
        return 1;
    }
    case QUERY_FN_COUNT_OVER_TIME:
        *out = (double)k;
        return 1;
    case QUERY_FN_LAST_OVER_TIME:
        *out = s[k - 1].v;
        return 1;
    case QUERY_FN_FIRST_OVER_TIME:
        *out = s[0].v;
        return 1;
    case QUERY_FN_PRESENT_OVER_TIME:
        *out = 1;
        return 1;
    case QUERY_FN_MAX_OVER_TIME:
    case QUERY_FN_MIN_OVER_TIME: {
        double m = s[0].v;
        for (size_t i = 0; i < k; i++) {
            double f = s[i].v;
            if ((id == QUERY_FN_MAX_OVER_TIME ? f > m : f < m) || isnan(m))
                m = f;
        }
        *out = m;
        return 1;
    }
    case QUERY_FN_QUANTILE_OVER_TIME: {
        if (isnan(param) || param < 0 || param > 1) {
            char buf[40];
            query__fmt_g(param, buf, sizeof(buf));
            query__anno(ev, QUERY__WARN, n->call.args[0],
                        "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
        }
        for (size_t i = 0; i < k; i++)
            tmp[i] = s[i].v;
        *out = query__quantile(param, tmp, k);
        return 1;
    }
    case QUERY_FN_STDDEV_OVER_TIME:
        *out = sqrt(variance_over_time(w));
        return 1;
    case QUERY_FN_STDVAR_OVER_TIME:
        *out = variance_over_time(w);
        return 1;
    case QUERY_FN_ABSENT_OVER_TIME:
    default: /* only supported() functions get here */
        *out = 1;
        return 1;
    }
}

static int counter_suffix(const char *name)
{
    static const char *const sfx[] = {"_total", "_sum", "_count", "_bucket"};
    size_t len = strlen(name);
    for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
        size_t l = strlen(sfx[i]);
        if (len >= l && strcmp(name + len - l, sfx[i]) == 0)
            return 1;
    }
    return 0;
}

/* absent_over_time: one series where no input series has a point. */
static struct query__vec *absent_over_time(struct query__ev *ev, const struct query_node *n,
                                           struct query__vec *found, const struct query__grid *g)
{
    struct query__vec *out = query__vec_new(ev, g->n, 1);
    const struct query__labels *ls = query__absent_labels(ev, n->call.args[0]);
    struct query__series *o = query__vec_add(ev, out, ls, QUERY__DROP_NAME);
    for (size_t j = 0; j < g->n; j++) {
        int any = 0;
        for (size_t i = 0; i < found->n && !any; i++)
            any = found->s[i].ok[j];
        o->ok[j] = !any;
        o->v[j] = 1;
    }
    query__vec_free(ev, found);
    query__vec_compact(ev, out);
    return out;
}

/* ---- sliding-window regression (deriv, predict_linear in range queries) ---- */

/*
 * Over a range query the windows of consecutive steps share most of their
 * samples, so the sums a regression needs are kept up to date as samples
 * enter and leave the window instead of being recomputed: O(1) per step
 * instead of O(window). Time sums are exact (integer milliseconds from a
 * per-series origin, 128 bits); value sums are double-double, whose error
 * (about 2^-106 per operation) stays far below what one rounding to double
 * costs. The window's sums are then rounded once and fed to the same
 * formulas as linear_regression(), so the result differs from Prometheus'
 * own Kahan sums only in the last bits. A window holding a NaN or an Inf
 * is computed directly (such values would poison running sums).
 */
struct dd {
    double hi, lo;
};

static inline void dd_add(struct dd *x, double yh, double yl)
{
    double s = x->hi + yh;
    double bb = s - x->hi;
    double e = (x->hi - (s - bb)) + (yh - bb); /* TwoSum */
    e += x->lo + yl;
    x->hi = s + e;
    x->lo = e - (x->hi - s);
}

/* The exact product a * b as hi + lo. */
static inline void two_prod(double a, double b, double *hi, double *lo)
{
    *hi = a * b;
    *lo = fma(a, b, -*hi);
}

struct slider {
    int64_t origin;
    __int128 sx, sxx;  /* sums of (t - origin) and its square, in ms */
    struct dd sy, sxy; /* sums of v and (t - origin) * v */
    size_t lo, hi;     /* the samples [lo, hi) are in the sums */
    size_t fresh;      /* the sums restart once the window passes this sample */
};

static void slider_add(struct slider *sl, const struct tsdb_sample *p, int sign)
{
    __int128 x = (__int128)(p->ts - sl->origin);
    double v = sign > 0 ? p->v : -p->v, ph, pl;
    sl->sx += sign > 0 ? x : -x;
    sl->sxx += sign > 0 ? x * x : -(x * x);
    dd_add(&sl->sy, v, 0);
    two_prod((double)(p->ts - sl->origin), v, &ph, &pl);
    dd_add(&sl->sxy, ph, pl);
}

/*
 * The regression of the window [lo, hi) of rs with x in seconds relative to
 * t0, as linear_regression() computes it. Moves the sums to that window.
 * Returns 0, or -1 if the window is ill-conditioned: the covariance or the
 * variance cancels most of its terms, so that Prometheus' result (rounded
 * differently) may differ in more than the last bits; then the caller
 * computes it directly, exactly as Prometheus does.
 */
static int slide_regression(struct slider *sl, const struct query__rseries *rs, size_t lo,
                            size_t hi, int64_t t0, double *slope, double *intercept)
{
    /*
     * Restart from zero once every sample of the last restart has left the
     * window: errors (a huge value absorbing small ones while it was in the
     * window) then never outlive one window. This also skips samples that
     * lie between windows, which may be NaN.
     */
    if (lo >= sl->fresh) {
        sl->sx = sl->sxx = 0;
        sl->sy = sl->sxy = (struct dd){0, 0};
        sl->lo = sl->hi = lo;
        sl->fresh = hi;
    }
    while (sl->lo < lo)
        slider_add(sl, &rs->ss[sl->lo++], -1);
    while (sl->hi < hi)
        slider_add(sl, &rs->ss[sl->hi++], 1);
    double n = (double)(hi - lo);
    __int128 d = (__int128)(t0 - sl->origin), cnt = (__int128)(hi - lo);
    double sum_x = (double)(sl->sx - cnt * d) / 1e3;
    double sum_x2 = (double)(sl->sxx - 2 * d * sl->sx + cnt * d * d) / 1e6;
    double sum_y = sl->sy.hi + sl->sy.lo;
    /* sxy - d * sy, in double-double. */
    struct dd xy = sl->sxy;
    double ph, pl;
    two_prod((double)d, sl->sy.hi, &ph, &pl);
    dd_add(&xy, -ph, -pl - (double)d * sl->sy.lo);
    double sum_xy = (xy.hi + xy.lo) / 1e3;
    double cov = sum_xy - sum_x * sum_y / n;
    double var = sum_x2 - sum_x * sum_x / n;
    const double max_cancel = 1e3; /* keeps differences near 1e-12 relative */
    if (!(fabs(cov) * max_cancel > fabs(sum_xy) + fabs(sum_x * sum_y / n)) ||
        !(var * max_cancel > sum_x2 + sum_x * sum_x / n))
        return -1;
    *slope = cov / var;
    *intercept = sum_y / n - *slope * sum_x / n;
    return 0;
}

/* What the steps of one series need; scratch buffers grow and are reused. */
struct stepper {
    struct query__ev *ev;
    const struct query_node *n;
    enum query_func id;
    const struct query__range *win;
    const struct query__grid *g;
    const double *param;
    double *tmp;
    uint32_t *pre;
    uint32_t *bad; /* sliding regression: prefix counts of NaN/Inf values */
    uint32_t *neq; /* ... and of values differing from the previous one */
    size_t cap;
    int keep_name;
};

/* Prefix counts of the events resets()/changes()/rate need: pre[i] for samples 1..i. */
static void prefix(enum query_func id, const struct query__rseries *rs, uint32_t *pre)
{
    pre[0] = 0;
    for (size_t i = 1; i < rs->n; i++) {
        double a = rs->ss[i - 1].v, b = rs->ss[i].v;
        int ev = id == QUERY_FN_CHANGES ? (b != a && !(isnan(b) && isnan(a))) : b < a;
        pre[i] = pre[i - 1] + (uint32_t)ev;
    }
}

/*
 * deriv/predict_linear of the window [lo, hi) from the sliding sums, when
 * that is safe: at least two samples, no NaN or Inf, and a well-conditioned
 * window (else 0: compute it directly). t is the step's time.
 */
static int slid_regression(const struct stepper *sp, struct slider *sl,
                           const struct query__rseries *rs, size_t lo, size_t hi, int64_t t,
                           double *slope, double *icpt)
{
    if (hi - lo < 2 || sp->bad[hi - 1] - (lo ? sp->bad[lo - 1] : 0) != 0)
        return 0;
    if (sp->neq[hi - 1] - sp->neq[lo] == 0) { /* constant, as in linear_regression() */
        *slope = 0;
        *icpt = rs->ss[lo].v;
        return 1;
    }
    int64_t t0 = sp->id == QUERY_FN_DERIV ? rs->ss[lo].ts : t;
    return slide_regression(sl, rs, lo, hi, t0, slope, icpt) == 0;
}

/*
 * Compute one series' value at every step into a new series of out. Does
 * not unwind (it may run while a store query is open): 0, or -1 past the
 * samples limit (error recorded).
 */
static int series_steps(struct stepper *sp, const struct query__rseries *rs, struct query__vec *out)
{
    struct query__ev *ev = sp->ev;
    const struct query__range *r = sp->win;
    const struct query__grid *g = sp->g;
    unsigned flags = sp->keep_name ? rs->flags : (rs->flags | QUERY__DROP_NAME);
    struct query__series *o = query__vec_add_soft(ev, out, rs->ls, flags);
    if (!o)
        return -1;
    if (rs->n > sp->cap) {
        while (sp->cap < rs->n)
            sp->cap *= 2;
        sp->tmp = query__realloc(ev, sp->tmp, sp->cap * sizeof(*sp->tmp));
        sp->pre = query__realloc(ev, sp->pre, sp->cap * sizeof(*sp->pre));
        sp->bad = query__realloc(ev, sp->bad, sp->cap * sizeof(*sp->bad));
        sp->neq = query__realloc(ev, sp->neq, sp->cap * sizeof(*sp->neq));
    }
    prefix(sp->id, rs, sp->pre);
    /* Regression functions over moving windows slide their sums (see struct slider). */
    int slide = (sp->id == QUERY_FN_DERIV || sp->id == QUERY_FN_PREDICT_LINEAR) && g->n > 1 &&
                !r->has_at && rs->n > 0;
    struct slider sl = {0};
    if (slide) {
        sl.origin = rs->ss[0].ts;
        sp->bad[0] = !isfinite(rs->ss[0].v);
        sp->neq[0] = 0;
        for (size_t i = 1; i < rs->n; i++) {
            sp->bad[i] = sp->bad[i - 1] + !isfinite(rs->ss[i].v);
            sp->neq[i] = sp->neq[i - 1] + (rs->ss[i].v != rs->ss[i - 1].v);
        }
    }
    struct win w;
    w.range_s = (double)r->range_ms / 1000;
    size_t lo = 0, hi = 0, points = 0;
    for (size_t j = 0; j < g->n; j++) {
        int64_t t = g->start + (int64_t)j * g->step;
        int64_t e = (r->has_at ? r->at_ms : t) - r->offset_ms;
        while (hi < rs->n && rs->ss[hi].ts <= e)
            hi++;
        while (lo < hi && rs->ss[lo].ts <= e - r->range_ms)
            lo++;
        if (lo == hi)
            continue;
        w.ss = rs->ss + lo;
        w.n = hi - lo;
        w.range_end = e;
        w.range_start = e - r->range_ms;
        double v;
        double slope, icpt;
        if (slide && slid_regression(sp, &sl, rs, lo, hi, t, &slope, &icpt)) {
            o->ok[j] = 1;
            o->v[j] = sp->id == QUERY_FN_DERIV ? slope : slope * sp->param[j] + icpt;
            points++;
        } else if (apply(ev, sp->n, sp->id, &w, t, sp->param ? sp->param[j] : 0, sp->tmp, sp->pre,
                         lo, &v)) {
            o->ok[j] = 1;
            o->v[j] = v;
            points++;
        }
    }
    if (!points) {
        query__vec_pop(ev, out);
        return 0;
    }
    if (sp->id == QUERY_FN_RATE || sp->id == QUERY_FN_INCREASE) {
        const char *name = query__get(rs->ls, ev->s_name);
        if (name && !counter_suffix(name)) {
            struct sbuf sb;
            sbuf_init(&sb, 0);
            query__quote(&sb, name, strlen(name));
            query__anno(ev, QUERY__INFO, sp->n->call.args[0],
                        "PromQL info: metric might not be a counter, name does not end in "
                        "_total/_sum/_count/_bucket: %s",
                        sb.buf);
            sbuf_release(&sb);
        }
    }
    return 0;
}

struct query__vec *query__eval_range_call(struct query__ev *ev, const struct query_node *n,
                                          const struct query__grid *g)
{
    enum query_func id = n->call.func->id;
    if (!supported(id))
        query__fail(ev, QUERY_ERR_BAD_DATA, "function %s() is not supported", n->call.func->name);
    size_t mi = 0;
    while (mi < n->call.nargs && n->call.args[mi]->value_type != QUERY_VALUE_MATRIX)
        mi++;
    /* The one scalar parameter some functions take (predict_linear, quantile_over_time). */
    double *param = NULL;
    for (size_t i = 0; i < n->call.nargs; i++)
        if (i != mi && n->call.args[i]->value_type == QUERY_VALUE_SCALAR && !param)
            param = query__eval_scalar(ev, n->call.args[i], g);
    struct stepper sp = {ev, n, id, NULL, g, param, NULL, NULL, NULL, NULL, 256, 0};
    sp.keep_name = id == QUERY_FN_LAST_OVER_TIME || id == QUERY_FN_FIRST_OVER_TIME;
    sp.tmp = query__alloc(ev, sp.cap * sizeof(*sp.tmp));
    sp.pre = query__alloc(ev, sp.cap * sizeof(*sp.pre));
    sp.bad = query__alloc(ev, sp.cap * sizeof(*sp.bad));
    sp.neq = query__alloc(ev, sp.cap * sizeof(*sp.neq));
    struct query__vec *out = query__vec_new(ev, g->n, 16);
    const struct query_node *arg = query__unparen(n->call.args[mi]);
    if (arg->type == QUERY_NODE_MATRIX_SELECTOR) {
        /* One series at a time from the store: nothing but the answer is kept. */
        struct query__stream st;
        query__stream_open(ev, &st, arg, g);
        sp.win = &st.win;
        while (query__stream_next(ev, &st))
            if (series_steps(&sp, &st.cur, out) < 0) {
                st.failed = 1;
                break;
            }
        query__stream_close(ev, &st);
    } else {
        struct query__range *r = query__eval_range(ev, arg, g);
        sp.win = r;
        for (size_t i = 0; i < r->n; i++) {
            query__check(ev);
            if (series_steps(&sp, &r->s[i], out) < 0)
                longjmp(*ev->jmp, 1);
        }
        query__range_free(ev, r);
    }
    query__free(ev, sp.tmp);
    query__free(ev, sp.pre);
    query__free(ev, sp.bad);
    query__free(ev, sp.neq);
    query__free(ev, param);
    if (id == QUERY_FN_ABSENT_OVER_TIME)
        return absent_over_time(ev, n, out, g);
    return out;
}
