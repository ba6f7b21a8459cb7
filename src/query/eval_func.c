/*
 * eval_func.c: functions whose arguments are instant vectors, scalars and
 * strings: the element-wise math (abs ... atanh, round, clamp), the date
 * functions, time(), scalar(), vector(), absent(), sort(), label_replace(),
 * label_join(), and histogram_quantile()/histogram_fraction() over classic
 * `le` buckets. Functions that read only native histograms answer an empty
 * vector (what Prometheus answers on float data). Element-wise functions
 * work in place on their argument's vector.
 */
#include "query/eval_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/lex.h"
#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

/* ---- element-wise ------------------------------------------------------------- */

static double sgn(double v)
{
    return v < 0 ? -1 : v > 0 ? 1 : v;
}

static double rad(double v)
{
    return v * M_PI / 180;
}

static double deg(double v)
{
    return v * 180 / M_PI;
}

static double (*simple_fn(enum query_func id))(double)
{
    switch (id) {
    case QUERY_FN_ABS:
        return fabs;
    case QUERY_FN_CEIL:
        return ceil;
    case QUERY_FN_FLOOR:
        return floor;
    case QUERY_FN_EXP:
        return exp;
    case QUERY_FN_SQRT:
        return sqrt;
    case QUERY_FN_LN:
        return log;
    case QUERY_FN_LOG2:
        return log2;
    case QUERY_FN_LOG10:
        return log10;
    case QUERY_FN_SIN:
        return sin;
    case QUERY_FN_COS:
        return cos;
    case QUERY_FN_TAN:
        return tan;
    case QUERY_FN_ASIN:
        return asin;
    case QUERY_FN_ACOS:
        return acos;
    case QUERY_FN_ATAN:
        return atan;
    case QUERY_FN_SINH:
        return sinh;
    case QUERY_FN_COSH:
        return cosh;
    case QUERY_FN_TANH:
        return tanh;
    case QUERY_FN_ASINH:
        return asinh;
    case QUERY_FN_ACOSH:
        return acosh;
    case QUERY_FN_ATANH:
        return atanh;
    case QUERY_FN_SGN:
        return sgn;
    case QUERY_FN_RAD:
        return rad;
    case QUERY_FN_DEG:
        return deg;
    default:
        return NULL;
    }
}

/* ---- dates (UTC, proleptic Gregorian, any int64 second) ----------------------- */

struct civil {
    int64_t year;
    int month, day, hour, minute, wday, yday;
};

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void civil_from_unix(int64_t sec, struct civil *c)
{
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    c->hour = (int)(rem / 3600);
    c->minute = (int)(rem % 3600 / 60);
    c->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    /* Howard Hinnant's civil_from_days. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = c->month <= 2 ? y + 1 : y;
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    c->yday = before[c->month - 1] + c->day + (c->month > 2 && is_leap(c->year));
}

static double date_part(enum query_func id, double secs)
{
    /* Go's int64(f): NaN and out-of-range values give the minimum on amd64. */
    int64_t s = (secs >= -9.2233720368547758e18 && secs < 9.2233720368547758e18) ? (int64_t)secs
                                                                                 : INT64_MIN;
    struct civil c;
    civil_from_unix(s, &c);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    switch (id) {
    case QUERY_FN_DAYS_IN_MONTH:
        return mdays[c.month - 1] + (c.month == 2 && is_leap(c.year));
    case QUERY_FN_DAY_OF_MONTH:
        return c.day;
    case QUERY_FN_DAY_OF_WEEK:
        return c.wday;
    case QUERY_FN_DAY_OF_YEAR:
        return c.yday;
    case QUERY_FN_HOUR:
        return c.hour;
    case QUERY_FN_MINUTE:
        return c.minute;
    case QUERY_FN_MONTH:
        return c.month;
    case QUERY_FN_YEAR:
        return (double)c.year;
    default:
        return NAN;
    }
}

static int is_date_fn(enum query_func id)
{
    return id == QUERY_FN_DAYS_IN_MONTH || id == QUERY_FN_DAY_OF_MONTH ||
           id == QUERY_FN_DAY_OF_WEEK || id == QUERY_FN_DAY_OF_YEAR || id == QUERY_FN_HOUR ||
           id == QUERY_FN_MINUTE || id == QUERY_FN_MONTH || id == QUERY_FN_YEAR;
}

/* ---- helpers ------------------------------------------------------------------- */

static int64_t step_time(const struct query__grid *g, size_t j)
{
    return g->start + (int64_t)j * g->step;
}

/* A vector with one series {} valued f(step) where present. */
static struct query__vec *single(struct query__ev *ev, const struct query__grid *g,
                                 const struct query__labels *ls)
{
    struct query__vec *v = query__vec_new(ev, g->n, 1);
    query__vec_add(ev, v, ls, 0);
    return v;
}

/*
 * The labels absent() answers with: those of the selector's equality
 * matchers, except __name__ and names matched more than once.
 */
const struct query__labels *query__absent_labels(struct query__ev *ev, const struct query_node *arg)
{
    arg = query__unparen(arg);
    if (arg->type == QUERY_NODE_MATRIX_SELECTOR)
        arg = arg->matrix.vs;
    if (arg->type != QUERY_NODE_VECTOR_SELECTOR)
        return ev->empty;
    const struct query__labels *ls = ev->empty;
    size_t nm = arg->vs.nmatchers;
    const char **has = query__alloc(ev, (nm ? nm : 1) * sizeof(*has));
    size_t nhas = 0;
    for (size_t i = 0; i < nm; i++) {
        const struct tsdb_matcher *m = &arg->vs.matchers[i];
        if (strcmp(m->name, "__name__") == 0)
            continue;
        int seen = 0;
        for (size_t k = 0; k < nhas; k++)
            seen |= strcmp(has[k], m->name) == 0;
        if (m->op == TSDB_EQ && !seen) {
            ls = query__set(ev, ls, m->name, m->value);
            has[nhas++] = m->name;
        } else {
            ls = query__set(ev, ls, m->name, NULL);
        }
    }
    query__free(ev, has);
    return ls;
}

/* ---- sort ---------------------------------------------------------------------- */

static int sort_before(double a, double b, int desc)
{
    /* NaN goes last in both directions. */
    if (isnan(b))
        return !isnan(a);
    if (isnan(a))
        return 0;
    return desc ? a > b : a < b;
}

/* Stable merge sort of series by their value at step 0. */
static void sort_series(struct query__series *s, struct query__series *tmp, size_t n, int desc)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_series(s, tmp, h, desc);
    sort_series(s + h, tmp, n - h, desc);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (sort_before(s[j].v[0], s[i].v[0], desc))
            tmp[k++] = s[j++];
        else
            tmp[k++] = s[i++];
    }
    while (i < h)
        tmp[k++] = s[i++];
    while (j < n)
        tmp[k++] = s[j++];
    memcpy(s, tmp, n * sizeof(*s));
}

/* ---- label_replace / label_join ------------------------------------------------- */

static int valid_label_name(const char *s)
{
    /* Prometheus 3 accepts any non-empty UTF-8 label name. */
    return s[0] != '\0' && query__valid_utf8(s, strlen(s));
}

/* Go's regexp Expand: $1, ${1}, $name, ${name}, $$. */
static void expand(struct sbuf *out, const char *tmpl, const char *src, pcre2_code *re,
                   const PCRE2_SIZE *ov, int ngroups)
{
    const char *p = tmpl;
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d) {
            sbuf_adds(out, p);
            return;
        }
        sbuf_add(out, p, (size_t)(d - p));
        p = d + 1;
        if (*p == '$') {
            sbuf_addc(out, '$');
            p++;
            continue;
        }
        int brace = *p == '{';
        const char *q = p + brace;
        size_t len = 0;
        while (q[len] &&
               ((q[len] >= 'a' && q[len] <= 'z') || (q[len] >= 'A' && q[len] <= 'Z') ||
                (q[len] >= '0' && q[len] <= '9') || q[len] == '_' || (unsigned char)q[len] >= 0x80))
            len++;
        if (len == 0 || (brace && q[len] != '}')) {
            sbuf_addc(out, '$'); /* malformed: the $ is text */
            continue;
        }
        char name[128];
        size_t nl = len < sizeof(name) - 1 ? len : sizeof(name) - 1;
        memcpy(name, q, nl);
        name[nl] = '\0';
        p = q + len + brace;
        long num = 0;
        for (size_t i = 0; i < nl; i++) {
            if (name[i] < '0' || name[i] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name[i] - '0');
        }
        if (name[0] == '0' && nl > 1)
            num = -1;
        if (num < 0) {
            int k = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
            num = k > 0 ? k : -1;
        }
        if (num >= 0 && num < ngroups && ov[2 * num] != PCRE2_UNSET)
            sbuf_add(out, src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
}

static struct query__vec *label_replace(struct query__ev *ev, const struct query_node *n,
                                        const struct query__grid *g)
{
    const char *dst = query__eval_string(n->call.args[1]);
    const char *repl = query__eval_string(n->call.args[2]);
    const char *src = query__eval_string(n->call.args[3]);
    const char *regex = query__eval_string(n->call.args[4]);
    struct sbuf pat;
    sbuf_init(&pat, 0);
    sbuf_addf(&pat, "^(?s:%s)$", regex);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat.buf, pat.len,
                      PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK, &ecode, &eoff, NULL);
    sbuf_release(&pat);
    if (!re)
        query__fail(ev, QUERY_ERR_EXECUTION, "invalid regular expression in label_replace(): %s",
                    regex);
    if (!valid_label_name(dst)) {
        pcre2_code_free(re);
        query__fail(ev, QUERY_ERR_EXECUTION,
                    "invalid destination label name in label_replace(): %s", dst);
    }
    /*
     * Freed and compiled again after the argument is evaluated: evaluation
     * may fail, and only tracked memory may be held across it.
     */
    pcre2_code_free(re);
    struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
    sbuf_init(&pat, 0);
    sbuf_addf(&pat, "^(?s:%s)$", regex);
    re = pcre2_compile((PCRE2_SPTR)pat.buf, pat.len,
                       PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK, &ecode, &eoff, NULL);
    sbuf_release(&pat);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    const char *ndst = query__strz(ev, dst);
    struct sbuf out;
    sbuf_init(&out, 0);
    for (size_t i = 0; i < v->n; i++) {
        struct query__series *s = &v->s[i];
        const char *sv = query__get(s->ls, src);
        if (!sv)
            sv = "";
        int rc = pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0)
            continue; /* only replace where the regex matches */
        sbuf_reset(&out);
        expand(&out, repl, sv, re, pcre2_get_ovector_pointer(md), (int)pcre2_get_ovector_count(md));
        s->ls = query__set(ev, s->ls, ndst, out.buf);
        if (ndst == ev->s_name)
            s->flags &= ~QUERY__DROP_NAME; /* a name set explicitly is kept */
    }
    sbuf_release(&out);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    query__vec_merge_same(ev, v);
    return v;
}

static struct query__vec *label_join(struct query__ev *ev, const struct query_node *n,
                                     const struct query__grid *g)
{
    const char *dst = query__eval_string(n->call.args[1]);
    const char *sep = query__eval_string(n->call.args[2]);
    for (size_t i = 3; i < n->call.nargs; i++) {
        const char *srcl = query__eval_string(n->call.args[i]);
        if (!valid_label_name(srcl))
            query__fail(ev, QUERY_ERR_EXECUTION, "invalid source label name in label_join(): %s",
                        srcl);
    }
    if (!valid_label_name(dst))
        query__fail(ev, QUERY_ERR_EXECUTION, "invalid destination label name in label_join(): %s",
                    dst);
    struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
    const char *ndst = query__strz(ev, dst);
    struct sbuf out;
    sbuf_init(&out, 0);
    for (size_t i = 0; i < v->n; i++) {
        struct query__series *s = &v->s[i];
        sbuf_reset(&out);
        for (size_t a = 3; a < n->call.nargs; a++) {
            if (a > 3)
                sbuf_adds(&out, sep);
            const char *sv = query__get(s->ls, query__eval_string(n->call.args[a]));
            if (sv)
                sbuf_adds(&out, sv);
        }
        s->ls = query__set(ev, s->ls, ndst, out.buf);
        if (ndst == ev->s_name)
            s->flags &= ~QUERY__DROP_NAME;
    }
    sbuf_release(&out);
    query__vec_merge_same(ev, v);
    return v;
}

/* ---- classic histograms ------------------------------------------------------- */

struct bucket {
    double upper, count;
};

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const struct bucket *)a)->upper, y = ((const struct bucket *)b)->upper;
    return (x > y) - (x < y);
}

/* Go's strconv.ParseFloat(s, 64) succeeds: a whole number, "Inf", "NaN", ... */
static int parse_le(const char *s, double *out)
{
    if (!s || !s[0] || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0')
        return -1;
    /* C accepts "nan(...)" and "infinity" variants Go refuses or accepts alike. */
    if (strchr(s, '(') != NULL)
        return -1;
    *out = v;
    return 0;
}

/* Merge buckets with the same upper bound (sorted input). Returns the new count. */
static size_t coalesce(struct bucket *b, size_t n)
{
    struct bucket last = b[0];
    size_t i = 0;
    for (size_t k = 1; k < n; k++) {
        if (b[k].upper == last.upper) {
            last.count += b[k].count;
        } else {
            b[i++] = last;
            last = b[k];
        }
    }
    b[i++] = last;
    return i;
}

static int almost_equal(double a, double b, double eps)
{
    if (a == b)
        return 1;
    double absum = fabs(a) + fabs(b), diff = fabs(a - b);
    const double min_normal = 2.2250738585072014e-308;
    if (a == 0 || b == 0 || absum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(absum, 1.7976931348623157e308) < eps;
}

/* Prometheus' ensureMonotonicAndIgnoreSmallDeltas. Returns forced monotonicity. */
static int monotonic(struct bucket *b, size_t n, double *min_b, double *max_b, double *max_diff)
{
    int forced = 0;
    *min_b = INFINITY;
    *max_b = -INFINITY;
    *max_diff = 0;
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev)
            continue;
        if (almost_equal(prev, cur, 1e-12)) {
            b[i].count = prev;
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            forced = 1;
            if (b[i].upper < *min_b)
                *min_b = b[i].upper;
            if (b[i].upper > *max_b)
                *max_b = b[i].upper;
            if (prev - cur > *max_diff)
                *max_diff = prev - cur;
            continue;
        }
        prev = cur;
    }
    return forced;
}

/* Prometheus' BucketQuantile. */
static double bucket_quantile(double q, struct bucket *b, size_t n, int *forced, double *min_b,
                              double *max_b, double *max_diff)
{
    *forced = 0;
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(b, n, sizeof(*b), cmp_bucket);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
        return NAN;
    n = coalesce(b, n);
    *forced = monotonic(b, n, min_b, max_b, max_diff);
    if (n < 2)
        return NAN;
    double obs = b[n - 1].count;
    if (obs == 0)
        return NAN;
    double rank = q * obs;
    size_t lo = 0, hi = n - 1; /* first i < n-1 with count >= rank, else n-1 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t i = lo;
    if (i == n - 1)
        return b[n - 2].upper;
    if (i == 0 && b[0].upper <= 0)
        return b[0].upper;
    double start = 0, end = b[i].upper, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* Prometheus' BucketFraction. */
static double bucket_fraction(double lower, double upper, struct bucket *b, size_t n)
{
    qsort(b, n, sizeof(*b), cmp_bucket);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
        return NAN;
    n = coalesce(b, n);
    double count = b[n - 1].count;
    if (count == 0 || isnan(lower) || isnan(upper))
        return NAN;
    if (lower >= upper)
        return 0;
    double rank = 0, lower_rank = 0, upper_rank = 0;
    int lower_set = 0, upper_set = 0;
    double lower_bound = b[0].upper <= 0 ? -INFINITY : 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lower_bound = b[i - 1].upper;
        double upper_bound = b[i].upper;
        if (!lower_set && lower_bound >= lower) {
            lower_rank = rank;
            lower_set = 1;
        }
        if (!upper_set && lower_bound >= upper) {
            upper_rank = rank;
            upper_set = 1;
        }
        if (lower_set && upper_set)
            break;
        if (!lower_set && lower_bound < lower && upper_bound > lower) {
            lower_rank = isinf(lower_bound) && lower_bound < 0
                             ? b[i].count
                             : rank + (b[i].count - rank) * (lower - lower_bound) /
                                          (upper_bound - lower_bound);
            lower_set = 1;
        }
        if (!upper_set && lower_bound < upper && upper_bound > upper) {
            upper_rank = isinf(lower_bound) && lower_bound < 0
                             ? b[i].count
                             : rank + (b[i].count - rank) * (upper - lower_bound) /
                                          (upper_bound - lower_bound);
            upper_set = 1;
        }
        if (lower_set && upper_set)
            break;
        rank = b[i].count;
    }
    if (!lower_set || lower_rank > count)
        lower_rank = count;
    if (!upper_set || upper_rank > count)
        upper_rank = count;
    return (upper_rank - lower_rank) / count;
}

/*
 * histogram_quantile(q, v) and histogram_fraction(lo, hi, v) over classic
 * histograms: per step, the series of v are grouped by their labels
 * without `le` into buckets.
 */
static struct query__vec *classic_histogram(struct query__ev *ev, const struct query_node *n,
                                            const struct query__grid *g, int fraction)
{
    double *p1 = query__eval_scalar(ev, n->call.args[0], g);
    double *p2 = fraction ? query__eval_scalar(ev, n->call.args[1], g) : NULL;
    const struct query_node *varg = n->call.args[fraction ? 2 : 1];
    struct query__vec *in = query__eval_vec(ev, varg, g);
    /* Per input series: its group (labels without le) and its upper bound. */
    size_t *grp = query__alloc(ev, (in->n ? in->n : 1) * sizeof(size_t));
    double *upper = query__alloc(ev, (in->n ? in->n : 1) * sizeof(double));
    uint8_t *bad = query__alloc(ev, in->n ? in->n : 1);
    struct query__vec *out = query__vec_new(ev, g->n, 16);
    struct query__lsmap map;
    query__lsmap_init(ev, &map, in->n);
    for (size_t i = 0; i < in->n; i++) {
        bad[i] = parse_le(query__get(in->s[i].ls, ev->s_le), &upper[i]) < 0;
        if (bad[i])
            continue;
        const char *le = ev->s_le;
        const struct query__labels *gl = query__filter(ev, in->s[i].ls, &le, 1, 0, 0);
        int found;
        size_t *slot = query__lsmap_get(ev, &map, gl, &found);
        if (!found) {
            *slot = out->n;
            query__vec_add(ev, out, gl, QUERY__DROP_NAME);
        }
        grp[i] = *slot;
    }
    query__lsmap_free(ev, &map);
    size_t *nb = query__alloc(ev, (out->n ? out->n : 1) * sizeof(size_t));
    size_t *off = query__alloc(ev, (out->n + 1) * sizeof(size_t));
    struct bucket *bk = query__alloc(ev, (in->n ? in->n : 1) * sizeof(*bk));
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        if (!fraction && (isnan(p1[j]) || p1[j] < 0 || p1[j] > 1)) {
            char buf[40];
            query__fmt_g(p1[j], buf, sizeof(buf));
            query__anno(ev, QUERY__WARN, n->call.args[0],
                        "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
        }
        memset(nb, 0, (out->n ? out->n : 1) * sizeof(size_t));
        for (size_t i = 0; i < in->n; i++) {
            if (!in->s[i].ok[j])
                continue;
            if (bad[i]) {
                const char *name = query__get(in->s[i].ls, ev->s_name);
                const char *le = query__get(in->s[i].ls, ev->s_le);
                struct sbuf sb;
                sbuf_init(&sb, 0);
                sbuf_adds(&sb, "PromQL warning: bucket label \"le\" is missing or has a "
                               "malformed value of ");
                query__quote(&sb, le ? le : "", le ? strlen(le) : 0);
                if (name) {
                    sbuf_adds(&sb, " for metric name ");
                    query__quote(&sb, name, strlen(name));
                }
                query__anno(ev, QUERY__WARN, varg, "%s", sb.buf);
                sbuf_release(&sb);
                continue;
            }
            nb[grp[i]]++;
        }
        off[0] = 0;
        for (size_t gi = 0; gi < out->n; gi++)
            off[gi + 1] = off[gi] + nb[gi];
        memset(nb, 0, (out->n ? out->n : 1) * sizeof(size_t));
        for (size_t i = 0; i < in->n; i++)
            if (in->s[i].ok[j] && !bad[i])
                bk[off[grp[i]] + nb[grp[i]]++] = (struct bucket){upper[i], in->s[i].v[j]};
        for (size_t gi = 0; gi < out->n; gi++) {
            if (!nb[gi])
                continue;
            struct bucket *b = bk + off[gi];
            double v;
            if (fraction) {
                v = bucket_fraction(p1[j], p2[j], b, nb[gi]);
            } else {
                int forced;
                double min_b, max_b, max_diff;
                v = bucket_quantile(p1[j], b, nb[gi], &forced, &min_b, &max_b, &max_diff);
                if (forced)
                    query__anno_mono(ev, varg, query__get(out->s[gi].ls, ev->s_name),
                                     step_time(g, j), min_b, max_b, max_diff);
            }
            out->s[gi].ok[j] = 1;
            out->s[gi].v[j] = v;
        }
    }
    query__free(ev, nb);
    query__free(ev, off);
    query__free(ev, bk);
    query__free(ev, grp);
    query__free(ev, upper);
    query__free(ev, bad);
    query__free(ev, p1);
    query__free(ev, p2);
    query__vec_free(ev, in);
    query__vec_compact(ev, out);
    return out;
}

/* ---- dispatch ----------------------------------------------------------------- */

struct query__vec *query__eval_call(struct query__ev *ev, const struct query_node *n,
                                    const struct query__grid *g)
{
    enum query_func id = n->call.func->id;
    double (*fn)(double) = simple_fn(id);
    if (fn) {
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        for (size_t i = 0; i < v->n; i++) {
            struct query__series *s = &v->s[i];
            s->flags |= QUERY__DROP_NAME;
            for (size_t j = 0; j < g->n; j++)
                if (s->ok[j])
                    s->v[j] = fn(s->v[j]);
        }
        return v;
    }
    if (is_date_fn(id)) {
        if (n->call.nargs == 0) {
            struct query__vec *v = single(ev, g, ev->empty);
            for (size_t j = 0; j < g->n; j++) {
                v->s[0].ok[j] = 1;
                v->s[0].v[j] = date_part(id, (double)(step_time(g, j) / 1000));
            }
            return v;
        }
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        for (size_t i = 0; i < v->n; i++) {
            v->s[i].flags |= QUERY__DROP_NAME;
            for (size_t j = 0; j < g->n; j++)
                if (v->s[i].ok[j])
                    v->s[i].v[j] = date_part(id, v->s[i].v[j]);
        }
        return v;
    }
    switch (id) {
    case QUERY_FN_ROUND: {
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        double *to = n->call.nargs > 1 ? query__eval_scalar(ev, n->call.args[1], g) : NULL;
        for (size_t i = 0; i < v->n; i++) {
            struct query__series *s = &v->s[i];
            s->flags |= QUERY__DROP_NAME;
            for (size_t j = 0; j < g->n; j++) {
                if (!s->ok[j])
                    continue;
                double inv = 1.0 / (to ? to[j] : 1.0);
                s->v[j] = floor(s->v[j] * inv + 0.5) / inv;
            }
        }
        query__free(ev, to);
        return v;
    }
    case QUERY_FN_CLAMP:
    case QUERY_FN_CLAMP_MAX:
    case QUERY_FN_CLAMP_MIN: {
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        double *a = query__eval_scalar(ev, n->call.args[1], g);
        double *b = id == QUERY_FN_CLAMP ? query__eval_scalar(ev, n->call.args[2], g) : NULL;
        for (size_t i = 0; i < v->n; i++) {
            struct query__series *s = &v->s[i];
            s->flags |= QUERY__DROP_NAME;
            for (size_t j = 0; j < g->n; j++) {
                double lo = id == QUERY_FN_CLAMP_MAX ? -INFINITY : a[j];
                double hi = id == QUERY_FN_CLAMP       ? b[j]
                            : id == QUERY_FN_CLAMP_MAX ? a[j]
                                                       : INFINITY;
                if (!s->ok[j])
                    continue;
                if (hi < lo) {
                    s->ok[j] = 0;
                    continue;
                }
                s->v[j] = query__go_max(lo, query__go_min(hi, s->v[j]));
            }
        }
        query__free(ev, a);
        query__free(ev, b);
        query__vec_compact(ev, v);
        return v;
    }
    case QUERY_FN_TIMESTAMP: {
        /* Of an expression (not a selector): the evaluation time. */
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        for (size_t i = 0; i < v->n; i++) {
            v->s[i].flags |= QUERY__DROP_NAME;
            for (size_t j = 0; j < g->n; j++)
                v->s[i].v[j] = (double)step_time(g, j) / 1000;
        }
        return v;
    }
    case QUERY_FN_VECTOR: {
        double *sc = query__eval_scalar(ev, n->call.args[0], g);
        struct query__vec *v = single(ev, g, ev->empty);
        for (size_t j = 0; j < g->n; j++) {
            v->s[0].ok[j] = 1;
            v->s[0].v[j] = sc[j];
        }
        query__free(ev, sc);
        return v;
    }
    case QUERY_FN_ABSENT: {
        struct query__vec *in = query__eval_vec(ev, n->call.args[0], g);
        struct query__vec *v = single(ev, g, query__absent_labels(ev, n->call.args[0]));
        for (size_t j = 0; j < g->n; j++) {
            int any = 0;
            for (size_t i = 0; i < in->n && !any; i++)
                any = in->s[i].ok[j];
            v->s[0].ok[j] = !any;
            v->s[0].v[j] = 1;
        }
        query__vec_free(ev, in);
        query__vec_compact(ev, v);
        return v;
    }
    case QUERY_FN_SORT:
    case QUERY_FN_SORT_DESC: {
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        if (g->start != g->end) /* Prometheus: the evaluator covers more than one step */
            query__anno(ev, QUERY__WARN, n,
                        "PromQL warning: sort is ineffective for range queries since results are "
                        "always ordered by labels");
        if (g->n == 1) {
            /* Only present series take part; absent ones go last (they are dropped). */
            size_t k = 0;
            for (size_t i = 0; i < v->n; i++)
                if (v->s[i].ok[0]) {
                    struct query__series t = v->s[k];
                    v->s[k++] = v->s[i];
                    v->s[i] = t;
                }
            struct query__series *tmp = query__alloc(ev, (k ? k : 1) * sizeof(*tmp));
            sort_series(v->s, tmp, k, id == QUERY_FN_SORT_DESC);
            query__free(ev, tmp);
        }
        return v;
    }
    case QUERY_FN_LABEL_REPLACE:
        return label_replace(ev, n, g);
    case QUERY_FN_LABEL_JOIN:
        return label_join(ev, n, g);
    case QUERY_FN_HISTOGRAM_QUANTILE:
        return classic_histogram(ev, n, g, 0);
    case QUERY_FN_HISTOGRAM_FRACTION:
        return classic_histogram(ev, n, g, 1);
    default:
        break;
    }
    if (n->call.func->flags & QUERY_FN_HISTOGRAM_ONLY) {
        /* Float samples are ignored: on this store the answer is always empty. */
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        for (size_t i = 0; i < v->n; i++)
            memset(v->s[i].ok, 0, g->n);
        query__vec_compact(ev, v);
        return v;
    }
    query__fail(ev, QUERY_ERR_BAD_DATA, "function %s() is not supported", n->call.func->name);
}

double *query__eval_call_scalar(struct query__ev *ev, const struct query_node *n,
                                const struct query__grid *g)
{
    double *out = query__alloc(ev, g->n * sizeof(double));
    switch (n->call.func->id) {
    case QUERY_FN_TIME:
        for (size_t j = 0; j < g->n; j++)
            out[j] = (double)step_time(g, j) / 1000;
        return out;
    case QUERY_FN_PI:
        for (size_t j = 0; j < g->n; j++)
            out[j] = M_PI;
        return out;
    case QUERY_FN_SCALAR: {
        struct query__vec *v = query__eval_vec(ev, n->call.args[0], g);
        for (size_t j = 0; j < g->n; j++) {
            size_t cnt = 0;
            double x = NAN;
            for (size_t i = 0; i < v->n && cnt < 2; i++)
                if (v->s[i].ok[j]) {
                    cnt++;
                    x = v->s[i].v[j];
                }
            out[j] = cnt == 1 ? x : NAN;
        }
        query__vec_free(ev, v);
        return out;
    }
    default:
        break;
    }
    query__fail(ev, QUERY_ERR_BAD_DATA, "function %s() is not supported", n->call.func->name);
}
