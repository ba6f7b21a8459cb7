/*
 * eval.c: the evaluator's core: the entry points and their limits, errors
 * and annotations; the walk over the tree; instant and range selectors
 * (lookback, staleness, offset, @) and subqueries; and the final result,
 * where delayed __name__ removal happens and duplicate label sets are
 * merged or refused.
 *
 * Every instant-vector expression is evaluated once for all steps of a
 * grid (struct query__grid): a selector reads its series from the store once
 * for the whole range and computes every step from memory with a cursor
 * per series, so a range query costs one store read per selector however
 * many steps it has. Operators and functions then work series by series
 * over dense arrays of steps (eval_binary.c, eval_agg.c, eval_func.c,
 * eval_range.c).
 */
#include "query/eval_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/lex.h"
#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

#define STALE_NAN_BITS 0x7ff0000000000002ull

static int is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b == STALE_NAN_BITS;
}

/* ---- errors and limits ------------------------------------------------------ */

_Noreturn void query__fail(struct query__ev *ev, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->err->msg, sizeof(ev->err->msg), fmt, ap);
    va_end(ap);
    ev->err->type = type;
    longjmp(*ev->jmp, 1);
}

/* 0, or -1 with the error recorded (for places that must clean up before failing). */
int query__check_soft(struct query__ev *ev)
{
    if (ev->cancel && *ev->cancel) {
        ev->err->type = QUERY_ERR_CANCELED;
        snprintf(ev->err->msg, sizeof(ev->err->msg), "query was canceled in expression evaluation");
        return -1;
    }
    if (ev->deadline_ns && util_mono_ns() > ev->deadline_ns) {
        ev->err->type = QUERY_ERR_TIMEOUT;
        snprintf(ev->err->msg, sizeof(ev->err->msg), "query timed out in expression evaluation");
        return -1;
    }
    return 0;
}

void query__check(struct query__ev *ev)
{
    /* The clock is read every 64 calls: loops call this per series or per step. */
    if ((++ev->tick & 63) == 0 && query__check_soft(ev) < 0)
        longjmp(*ev->jmp, 1);
}

static int hold_soft(struct query__ev *ev, uint64_t n)
{
    ev->samples += n;
    if (ev->samples > ev->max_samples) {
        ev->err->type = QUERY_ERR_EXECUTION;
        snprintf(ev->err->msg, sizeof(ev->err->msg),
                 "query processing would load too many samples into memory in query execution");
        return -1;
    }
    return 0;
}

void query__hold(struct query__ev *ev, uint64_t n)
{
    if (hold_soft(ev, n) < 0)
        longjmp(*ev->jmp, 1);
}

void query__unhold(struct query__ev *ev, uint64_t n)
{
    ev->samples = n > ev->samples ? 0 : ev->samples - n;
}

/* ---- float formatting as Go does it ------------------------------------------ */

/*
 * The shortest decimal digits of |v| that read back as v: digits d[0..nd)
 * and the decimal point position dp (v = 0.d1d2... * 10^dp). v finite, != 0.
 * If the value has a round-tripping form of at most 15 significant digits,
 * rounding it to 15 digits gives exactly that form (plus zeros), because v
 * lies within half an ulp of it; so 15, then 16, then 17 digits are tried.
 * Subnormal numbers have fewer bits: for them every precision is tried.
 */
static void shortest_digits(double v, char *d, int *nd, int *dp)
{
    char buf[40];
    if (v < 0)
        v = -v;
    for (int p = v < 2.2250738585072014e-308 ? 1 : 15; p <= 17; p++) {
        snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
        if (p == 17 || strtod(buf, NULL) == v)
            break;
    }
    /* buf: d.ddde[+-]XX */
    int n = 0;
    const char *s = buf;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            d[n++] = *s;
    int e = atoi(s + 1);
    while (n > 1 && d[n - 1] == '0')
        n--;
    *nd = n;
    *dp = e + 1;
}

/* Append to out[*k] (bounded by cap, always terminated). */
static void put(char *out, size_t cap, size_t *k, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *k + 1 < cap; i++)
        out[(*k)++] = s[i];
    if (cap)
        out[*k < cap ? *k : cap - 1] = '\0';
}

size_t query_format_float(double v, char *out, size_t cap)
{
    size_t k = 0;
    if (cap)
        out[0] = '\0';
    if (isnan(v)) {
        put(out, cap, &k, "NaN", 3);
    } else if (isinf(v)) {
        put(out, cap, &k, v > 0 ? "+Inf" : "-Inf", 4);
    } else if (v == 0) {
        put(out, cap, &k, signbit(v) ? "-0" : "0", signbit(v) ? 2 : 1);
    } else if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
        char buf[24]; /* the common case: an integer */
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
        put(out, cap, &k, buf, (size_t)n);
    } else {
        char d[20];
        int nd, dp;
        shortest_digits(v, d, &nd, &dp);
        if (v < 0)
            put(out, cap, &k, "-", 1);
        if (dp <= 0) {
            put(out, cap, &k, "0.", 2);
            for (int i = 0; i < -dp; i++)
                put(out, cap, &k, "0", 1);
            put(out, cap, &k, d, (size_t)nd);
        } else if (dp >= nd) {
            put(out, cap, &k, d, (size_t)nd);
            for (int i = nd; i < dp; i++)
                put(out, cap, &k, "0", 1);
        } else {
            put(out, cap, &k, d, (size_t)dp);
            put(out, cap, &k, ".", 1);
            put(out, cap, &k, d + dp, (size_t)(nd - dp));
        }
    }
    return k;
}

void query__fmt_g(double v, char *out, size_t cap)
{
    if (isnan(v) || isinf(v) || v == 0) {
        query_format_float(v, out, cap);
        return;
    }
    char d[20];
    int nd, dp;
    shortest_digits(v, d, &nd, &dp);
    int exp = dp - 1;
    if (exp < -4 || exp >= 6) {
        char mant[40];
        size_t k = 0;
        if (v < 0)
            mant[k++] = '-';
        mant[k++] = d[0];
        if (nd > 1) {
            mant[k++] = '.';
            memcpy(mant + k, d + 1, (size_t)(nd - 1));
            k += (size_t)(nd - 1);
        }
        mant[k] = '\0';
        snprintf(out, cap, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    query_format_float(v, out, cap);
}

double query__go_max(double a, double b)
{
    if (isinf(a) && a > 0)
        return a;
    if (isinf(b) && b > 0)
        return b;
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

double query__go_min(double a, double b)
{
    if (isinf(a) && a < 0)
        return a;
    if (isinf(b) && b < 0)
        return b;
    if (isnan(a) || isnan(b))
        return NAN;
    return a < b ? a : b;
}

/* ---- annotations ------------------------------------------------------------- */

static struct query__anno *anno_slot(struct query__ev *ev, enum query__anno_kind kind,
                                     const char *key)
{
    for (size_t i = 0; i < ev->nannos; i++)
        if (ev->annos[i].key == key && ev->annos[i].kind == kind)
            return &ev->annos[i];
    if (ev->nannos == ev->annos_cap) {
        ev->annos_cap = ev->annos_cap ? ev->annos_cap * 2 : 8;
        ev->annos = query__realloc(ev, ev->annos, ev->annos_cap * sizeof(*ev->annos));
    }
    struct query__anno *a = &ev->annos[ev->nannos++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->key = key;
    return a;
}

void query__anno(struct query__ev *ev, enum query__anno_kind kind, const struct query_node *pos,
                 const char *fmt, ...)
{
    char msg[QUERY_ERROR_LEN * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct query__anno *a = anno_slot(ev, kind, query__strz(ev, msg));
    a->pos = pos ? pos->pos.start : 0; /* the last one added wins, as in Prometheus */
}

void query__anno_mono(struct query__ev *ev, const struct query_node *pos, const char *metric,
                      int64_t ts, double min_bucket, double max_bucket, double max_diff)
{
    char msg[QUERY_ERROR_LEN];
    struct sbuf sb;
    sbuf_init(&sb, sizeof(msg));
    sbuf_adds(&sb, "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
                   "(see https://prometheus.io/docs/prometheus/latest/querying/functions/"
                   "#histogram_quantile)");
    if (metric && metric[0]) {
        sbuf_adds(&sb, " for metric name ");
        query__quote(&sb, metric, strlen(metric));
    }
    const char *key = query__str(ev, sb.buf, sb.len);
    sbuf_release(&sb);
    int found = 0;
    for (size_t i = 0; i < ev->nannos; i++)
        found |= ev->annos[i].key == key;
    struct query__anno *a = anno_slot(ev, QUERY__INFO, key);
    a->pos = pos ? pos->pos.start : 0;
    if (!found) {
        a->mono = 1;
        a->min_ts = a->max_ts = ts;
        a->min_bucket = min_bucket;
        a->max_bucket = max_bucket;
        a->max_diff = max_diff;
        a->count = 0;
        return;
    }
    if (ts < a->min_ts)
        a->min_ts = ts;
    if (ts > a->max_ts)
        a->max_ts = ts;
    if (min_bucket < a->min_bucket)
        a->min_bucket = min_bucket;
    if (max_bucket > a->max_bucket)
        a->max_bucket = max_bucket;
    if (max_diff > a->max_diff)
        a->max_diff = max_diff;
    a->count++;
}

/* "line:col" of byte offset pos in text, as Prometheus' StartPosInput. */
static void pos_string(const char *text, uint32_t pos, char *out, size_t cap)
{
    if (!text || !text[0]) {
        snprintf(out, cap, "unknown position");
        return;
    }
    size_t len = strlen(text);
    if (pos > len) {
        snprintf(out, cap, "invalid position");
        return;
    }
    long last_break = -1;
    unsigned line = 1;
    for (uint32_t i = 0; i < pos; i++)
        if (text[i] == '\n') {
            last_break = (long)i;
            line++;
        }
    snprintf(out, cap, "%u:%ld", line, (long)pos - last_break);
}

static void rfc3339(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000); /* Go's time.Unix(ms/1000, 0) */
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *anno_text(struct query__ev *ev, const struct query__anno *a)
{
    char where[48];
    pos_string(ev->text, a->pos, where, sizeof(where));
    struct sbuf sb;
    sbuf_init(&sb, 0);
    sbuf_adds(&sb, a->key);
    if (a->mono) {
        char b1[40], b2[40], t1[40], t2[40];
        query__fmt_g(a->min_bucket, b1, sizeof(b1));
        query__fmt_g(a->max_bucket, b2, sizeof(b2));
        rfc3339(a->min_ts, t1, sizeof(t1));
        rfc3339(a->max_ts, t2, sizeof(t2));
        sbuf_addf(&sb,
                  ", from buckets %s to %s, with a max diff of %.2g, over %" PRIu64
                  " samples from %s to %s",
                  b1, b2, a->max_diff, a->count + 1, t1, t2);
    }
    sbuf_addf(&sb, " (%s)", where);
    const char *s = query__str(ev, sb.buf, sb.len);
    sbuf_release(&sb);
    return s;
}

/* ---- vectors ------------------------------------------------------------------ */

struct query__vec *query__vec_new(struct query__ev *ev, size_t nsteps, size_t cap)
{
    struct query__vec *v = query__alloc(ev, sizeof(*v));
    v->n = 0;
    v->cap = cap ? cap : 4;
    v->nsteps = nsteps;
    v->s = query__alloc(ev, v->cap * sizeof(*v->s));
    return v;
}

struct query__series *query__vec_add(struct query__ev *ev, struct query__vec *vec,
                                     const struct query__labels *ls, unsigned flags)
{
    if (vec->n == vec->cap) {
        vec->cap *= 2;
        vec->s = query__realloc(ev, vec->s, vec->cap * sizeof(*vec->s));
    }
    query__hold(ev, vec->nsteps);
    struct query__series *s = &vec->s[vec->n++];
    s->ls = ls;
    s->flags = flags;
    /* One block: the values, then the flags. */
    s->v = query__alloc(ev, vec->nsteps * (sizeof(double) + 1));
    s->ok = (uint8_t *)(s->v + vec->nsteps);
    memset(s->ok, 0, vec->nsteps);
    return s;
}

struct query__series *query__vec_add_soft(struct query__ev *ev, struct query__vec *vec,
                                          const struct query__labels *ls, unsigned flags)
{
    if (hold_soft(ev, vec->nsteps) < 0)
        return NULL;
    query__unhold(ev, vec->nsteps); /* held again below, which cannot fail now */
    return query__vec_add(ev, vec, ls, flags);
}

static void series_free(struct query__ev *ev, struct query__vec *vec, struct query__series *s)
{
    query__free(ev, s->v);
    s->v = NULL;
    s->ok = NULL;
    query__unhold(ev, vec->nsteps);
}

void query__vec_pop(struct query__ev *ev, struct query__vec *vec)
{
    vec->n--;
    series_free(ev, vec, &vec->s[vec->n]);
}

void query__vec_free(struct query__ev *ev, struct query__vec *vec)
{
    if (!vec)
        return;
    for (size_t i = 0; i < vec->n; i++)
        if (vec->s[i].v)
            series_free(ev, vec, &vec->s[i]);
    query__free(ev, vec->s);
    query__free(ev, vec);
}

void query__vec_compact(struct query__ev *ev, struct query__vec *vec)
{
    size_t k = 0;
    for (size_t i = 0; i < vec->n; i++) {
        struct query__series *s = &vec->s[i];
        int any = 0;
        for (size_t j = 0; j < vec->nsteps && !any; j++)
            any = s->ok[j];
        if (!any) {
            series_free(ev, vec, s);
            continue;
        }
        vec->s[k++] = *s;
    }
    vec->n = k;
}

void query__vec_merge_same(struct query__ev *ev, struct query__vec *vec)
{
    if (vec->n < 2)
        return;
    struct query__lsmap x;
    query__lsmap_init(ev, &x, vec->n);
    size_t k = 0;
    for (size_t i = 0; i < vec->n; i++) {
        struct query__series *s = &vec->s[i];
        int found;
        size_t *slot = query__lsmap_get(ev, &x, s->ls, &found);
        if (!found) {
            *slot = k;
            vec->s[k++] = *s;
            continue;
        }
        struct query__series *base = &vec->s[*slot];
        for (size_t j = 0; j < vec->nsteps; j++) {
            if (!s->ok[j])
                continue;
            if (base->ok[j])
                query__fail(ev, QUERY_ERR_EXECUTION,
                            "vector cannot contain metrics with the same labelset");
            base->ok[j] = 1;
            base->v[j] = s->v[j];
        }
        series_free(ev, vec, s);
    }
    vec->n = k;
    query__lsmap_free(ev, &x);
}

void query__range_free(struct query__ev *ev, struct query__range *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        query__unhold(ev, r->s[i].n);
        query__free(ev, r->s[i].ss);
    }
    query__free(ev, r->s);
    query__free(ev, r);
}

/* ---- selectors -------------------------------------------------------------- */

const struct query_node *query__unparen(const struct query_node *n)
{
    while (n && n->type == QUERY_NODE_PAREN)
        n = n->paren.expr;
    return n;
}

/* The time a selector or subquery with @ is pinned to. */
static int64_t at_time(const struct query__ev *ev, enum query_at at, int64_t at_ms)
{
    return at == QUERY_AT_START ? ev->qstart : at == QUERY_AT_END ? ev->qend : at_ms;
}

/* Intern a series' labels from the store (sorted, interned, no empty values). */
static const struct query__labels *store_labels(struct query__ev *ev, const struct metric_label *l,
                                                size_t n)
{
    struct metric_label buf[64];
    struct metric_label *b = n <= ARRAY_SIZE(buf) ? buf : xmalloc(n * sizeof(*b));
    size_t k = 0;
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        if (!l[i].value[0])
            continue;
        b[k] = (struct metric_label){query__strz(ev, l[i].name), query__strz(ev, l[i].value)};
        if (k && strcmp(b[k - 1].name, b[k].name) >= 0)
            sorted = 0;
        k++;
    }
    const struct query__labels *ls =
        sorted ? query__labels_sorted(ev, b, k) : query__labels(ev, b, k);
    if (b != buf)
        free(b);
    return ls;
}

struct store_iter {
    struct tsdb_query *q;
};

static void store_open(struct query__ev *ev, struct store_iter *it, const struct query_node *vs,
                       int64_t mint, int64_t maxt)
{
    struct tsdb_range r = {.mint = mint, .maxt = maxt};
    char err[256];
    if (tsdb_query_open(ev->db, vs->vs.matchers, vs->vs.nmatchers, &r, &it->q, err, sizeof(err)) <
        0)
        query__fail(ev, QUERY_ERR_EXECUTION, "expanding series: %s", err);
}

/*
 * Evaluate a vector selector over g: each series' value at every step is
 * its newest sample at or before the step (minus offset) within the
 * lookback window, unless that sample is a staleness marker. want_ts: the
 * value is the sample's timestamp in seconds instead (timestamp(sel)).
 */
static struct query__vec *eval_selector(struct query__ev *ev, const struct query_node *n,
                                        const struct query__grid *g, int want_ts)
{
    int has_at = n->vs.at != QUERY_AT_NONE;
    int64_t at = has_at ? at_time(ev, n->vs.at, n->vs.at_ms) : 0;
    int64_t off = n->vs.offset_ms;
    /*
     * Prometheus evaluates timestamp(sel @ t) at t exactly, ignoring the
     * selector's offset (it overrides the offset to pin the time); do the same.
     */
    if (want_ts && has_at)
        off = 0;
    int64_t first = (has_at ? at : g->start) - off, last = (has_at ? at : g->end) - off;
    struct query__vec *vec = query__vec_new(ev, g->n, 16);
    struct store_iter it;
    store_open(ev, &it, n, first - ev->lookback + 1, last);
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nls, nss;
    int rc, bad = 0;
    while ((rc = tsdb_query_next(it.q, &ls, &nls, &ss, &nss)) > 0) {
        if (query__check_soft(ev) < 0 || hold_soft(ev, g->n) < 0) {
            bad = 1;
            break;
        }
        ev->samples_loaded += nss;
        query__unhold(ev, g->n); /* query__vec_add holds it again (and cannot fail now) */
        struct query__series *s = query__vec_add(ev, vec, store_labels(ev, ls, nls), 0);
        size_t j = 0, found = 0;
        for (size_t i = 0; i < g->n; i++) {
            int64_t ref = has_at ? at - off : g->start + (int64_t)i * g->step - off;
            if (has_at && i > 0) {
                s->ok[i] = s->ok[0];
                s->v[i] = s->v[0];
                continue;
            }
            while (j < nss && ss[j].ts <= ref)
                j++;
            if (j == 0)
                continue;
            const struct tsdb_sample *p = &ss[j - 1];
            if (p->ts <= ref - ev->lookback || is_stale(p->v))
                continue;
            s->ok[i] = 1;
            s->v[i] = want_ts ? (double)p->ts / 1000 : p->v;
            found = 1;
        }
        if (!found) { /* no point at any step: not part of the result */
            vec->n--;
            series_free(ev, vec, s);
        }
    }
    tsdb_query_close(it.q);
    if (bad)
        longjmp(*ev->jmp, 1);
    if (rc < 0)
        query__fail(ev, QUERY_ERR_INTERNAL, "expanding series: reading the store failed");
    return vec;
}

/* The window parameters of a matrix selector, for every step of g. */
static void matrix_window(struct query__ev *ev, const struct query_node *n, struct query__range *r)
{
    const struct query_node *vs = n->matrix.vs;
    r->node = n;
    r->range_ms = n->matrix.range_ms;
    r->offset_ms = vs->vs.offset_ms;
    r->has_at = vs->vs.at != QUERY_AT_NONE;
    r->at_ms = r->has_at ? at_time(ev, vs->vs.at, vs->vs.at_ms) : 0;
}

void query__stream_open(struct query__ev *ev, struct query__stream *st, const struct query_node *n,
                        const struct query__grid *g)
{
    memset(st, 0, sizeof(*st));
    matrix_window(ev, n, &st->win);
    int64_t first = (st->win.has_at ? st->win.at_ms : g->start) - st->win.offset_ms;
    int64_t last = (st->win.has_at ? st->win.at_ms : g->end) - st->win.offset_ms;
    st->cap = 256;
    st->cur.ss = query__alloc(ev, st->cap * sizeof(*st->cur.ss));
    struct store_iter it;
    store_open(ev, &it, n->matrix.vs, first - st->win.range_ms + 1, last);
    st->q = it.q;
}

int query__stream_next(struct query__ev *ev, struct query__stream *st)
{
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nls, nss;
    if (st->failed || !st->q)
        return 0;
    int rc = tsdb_query_next(st->q, &ls, &nls, &ss, &nss);
    if (rc < 0) {
        ev->err->type = QUERY_ERR_INTERNAL;
        snprintf(ev->err->msg, sizeof(ev->err->msg), "expanding series: reading the store failed");
        st->failed = 1;
        return 0;
    }
    if (rc == 0)
        return 0;
    if (query__check_soft(ev) < 0) {
        st->failed = 1;
        return 0;
    }
    ev->samples_loaded += nss;
    if (nss > st->cap) {
        while (st->cap < nss)
            st->cap *= 2;
        st->cur.ss = query__realloc(ev, st->cur.ss, st->cap * sizeof(*st->cur.ss));
    }
    st->cur.ls = store_labels(ev, ls, nls);
    st->cur.flags = 0;
    st->cur.n = 0;
    for (size_t i = 0; i < nss; i++)
        if (!is_stale(ss[i].v))
            st->cur.ss[st->cur.n++] = ss[i];
    return 1;
}

void query__stream_close(struct query__ev *ev, struct query__stream *st)
{
    if (st->q)
        tsdb_query_close(st->q);
    st->q = NULL;
    query__free(ev, st->cur.ss);
    st->cur.ss = NULL;
    if (st->failed)
        longjmp(*ev->jmp, 1);
}

/* Load a matrix selector's samples (stale markers dropped) for every step of g. */
static struct query__range *load_matrix(struct query__ev *ev, const struct query_node *n,
                                        const struct query__grid *g)
{
    struct query__range *r = query__zalloc(ev, sizeof(*r));
    struct query__stream st;
    query__stream_open(ev, &st, n, g);
    *r = st.win;
    size_t cap = 16;
    r->s = query__alloc(ev, cap * sizeof(*r->s));
    while (query__stream_next(ev, &st)) {
        if (hold_soft(ev, st.cur.n) < 0) {
            st.failed = 1;
            break;
        }
        if (r->n == cap) {
            cap *= 2;
            r->s = query__realloc(ev, r->s, cap * sizeof(*r->s));
        }
        struct query__rseries *s = &r->s[r->n++];
        *s = st.cur;
        s->ss = query__alloc(ev, (st.cur.n ? st.cur.n : 1) * sizeof(*s->ss));
        memcpy(s->ss, st.cur.ss, st.cur.n * sizeof(*s->ss));
    }
    query__stream_close(ev, &st);
    return r;
}

/*
 * Evaluate a subquery for every step of g: the inner expression runs on
 * its own grid, aligned to multiples of its step (absolute time), covering
 * every outer window; the points become the samples of a range vector.
 */
static struct query__range *eval_subquery(struct query__ev *ev, const struct query_node *n,
                                          const struct query__grid *g)
{
    struct query__range *r = query__zalloc(ev, sizeof(*r));
    r->node = n;
    r->from_subquery = 1;
    r->range_ms = n->subquery.range_ms;
    r->offset_ms = n->subquery.offset_ms;
    r->has_at = n->subquery.at != QUERY_AT_NONE;
    r->at_ms = r->has_at ? at_time(ev, n->subquery.at, n->subquery.at_ms) : 0;
    int64_t step = n->subquery.step_ms ? n->subquery.step_ms : ev->subq_step;
    /* With @, the subquery is evaluated as if the outer grid were just that time. */
    int64_t ostart = r->has_at ? r->at_ms : g->start;
    int64_t oend = r->has_at ? r->at_ms : g->start + ((g->end - g->start) / g->step) * g->step;
    struct query__grid inner;
    inner.step = step;
    inner.end = oend - r->offset_ms;
    int64_t lo = ostart - r->offset_ms - r->range_ms;
    /* Go's integer division truncates toward zero, like C's. */
    inner.start = step * (lo / step);
    if (inner.start <= lo)
        inner.start += step;
    if (inner.end < inner.start) {
        r->s = query__alloc(ev, sizeof(*r->s));
        return r;
    }
    inner.n = (size_t)((inner.end - inner.start) / step) + 1;
    struct query__vec *vec = query__eval_vec(ev, n->subquery.expr, &inner);
    r->s = query__alloc(ev, (vec->n ? vec->n : 1) * sizeof(*r->s));
    for (size_t i = 0; i < vec->n; i++) {
        struct query__series *s = &vec->s[i];
        size_t cnt = 0;
        for (size_t j = 0; j < inner.n; j++)
            cnt += s->ok[j];
        if (!cnt)
            continue;
        query__hold(ev, cnt);
        struct query__rseries *rs = &r->s[r->n++];
        rs->ls = s->ls;
        rs->flags = s->flags;
        rs->ss = query__alloc(ev, cnt * sizeof(*rs->ss));
        rs->n = 0;
        for (size_t j = 0; j < inner.n; j++)
            if (s->ok[j])
                rs->ss[rs->n++] = (struct tsdb_sample){inner.start + (int64_t)j * step, s->v[j]};
    }
    query__vec_free(ev, vec);
    return r;
}

struct query__range *query__eval_range(struct query__ev *ev, const struct query_node *n,
                                       const struct query__grid *g)
{
    n = query__unparen(n);
    query__check(ev);
    if (n->type == QUERY_NODE_MATRIX_SELECTOR)
        return load_matrix(ev, n, g);
    if (n->type == QUERY_NODE_SUBQUERY)
        return eval_subquery(ev, n, g);
    query__fail(ev, QUERY_ERR_INTERNAL, "unexpected range vector expression");
}

/* ---- the walk ------------------------------------------------------------------ */

const char *query__eval_string(const struct query_node *n)
{
    n = query__unparen(n);
    return n->type == QUERY_NODE_STRING ? n->string.value : "";
}

static int has_matrix_arg(const struct query_node *n)
{
    for (size_t i = 0; i < n->call.nargs; i++)
        if (n->call.args[i]->value_type == QUERY_VALUE_MATRIX)
            return 1;
    return 0;
}

struct query__vec *query__eval_vec(struct query__ev *ev, const struct query_node *n,
                                   const struct query__grid *g)
{
    n = query__unparen(n);
    query__check(ev);
    switch (n->type) {
    case QUERY_NODE_VECTOR_SELECTOR:
        return eval_selector(ev, n, g, 0);
    case QUERY_NODE_UNARY: {
        struct query__vec *v = query__eval_vec(ev, n->unary.expr, g);
        if (n->unary.op == QUERY_OP_SUB) {
            for (size_t i = 0; i < v->n; i++) {
                struct query__series *s = &v->s[i];
                s->flags |= QUERY__DROP_NAME;
                for (size_t j = 0; j < g->n; j++)
                    s->v[j] = -s->v[j];
            }
        }
        return v;
    }
    case QUERY_NODE_BINARY:
        return query__eval_binary(ev, n, g);
    case QUERY_NODE_AGGREGATE:
        return query__eval_aggregate(ev, n, g);
    case QUERY_NODE_CALL:
        if (n->call.func->id == QUERY_FN_TIMESTAMP) {
            const struct query_node *a = query__unparen(n->call.args[0]);
            if (a->type == QUERY_NODE_VECTOR_SELECTOR) {
                struct query__vec *v = eval_selector(ev, a, g, 1);
                for (size_t i = 0; i < v->n; i++)
                    v->s[i].flags |= QUERY__DROP_NAME;
                return v;
            }
        }
        return has_matrix_arg(n) ? query__eval_range_call(ev, n, g) : query__eval_call(ev, n, g);
    default:
        break;
    }
    query__fail(ev, QUERY_ERR_INTERNAL, "unexpected %s where an instant vector was expected",
                query_value_type_name(n->value_type));
}

double *query__eval_scalar(struct query__ev *ev, const struct query_node *n,
                           const struct query__grid *g)
{
    n = query__unparen(n);
    query__check(ev);
    switch (n->type) {
    case QUERY_NODE_NUMBER: {
        double *v = query__alloc(ev, g->n * sizeof(double));
        for (size_t i = 0; i < g->n; i++)
            v[i] = n->number.value;
        return v;
    }
    case QUERY_NODE_UNARY: {
        double *v = query__eval_scalar(ev, n->unary.expr, g);
        if (n->unary.op == QUERY_OP_SUB)
            for (size_t i = 0; i < g->n; i++)
                v[i] = -v[i];
        return v;
    }
    case QUERY_NODE_BINARY:
        return query__eval_binary_scalar(ev, n, g);
    case QUERY_NODE_CALL:
        return query__eval_call_scalar(ev, n, g);
    default:
        break;
    }
    query__fail(ev, QUERY_ERR_INTERNAL, "unexpected %s where a scalar was expected",
                query_value_type_name(n->value_type));
}

/* ---- results --------------------------------------------------------------------- */

static int cmp_series_labels(const void *a, const void *b)
{
    const struct query_series *x = a, *y = b;
    /* labels point at query__labels::l; recover the sets to compare. */
    const struct query__labels *lx =
        (const void *)((const char *)x->labels - offsetof(struct query__labels, l));
    const struct query__labels *ly =
        (const void *)((const char *)y->labels - offsetof(struct query__labels, l));
    return query__labels_cmp(lx, ly);
}

static const struct query__labels *final_labels(struct query__ev *ev,
                                                const struct query__labels *ls, unsigned flags)
{
    return (flags & QUERY__DROP_NAME) ? query__drop_name(ev, ls) : ls;
}

/* An instant vector result: names dropped, duplicates refused. */
static void result_vector(struct query__ev *ev, struct query__vec *vec, int64_t t,
                          struct query_result *res)
{
    size_t n = 0;
    for (size_t i = 0; i < vec->n; i++)
        n += vec->s[i].ok[0];
    struct query_series *out = query__arena(ev, (n ? n : 1) * sizeof(*out));
    struct query_point *pts = query__arena(ev, (n ? n : 1) * sizeof(*pts));
    struct query__lsmap x;
    query__lsmap_init(ev, &x, n);
    size_t k = 0;
    for (size_t i = 0; i < vec->n; i++) {
        struct query__series *s = &vec->s[i];
        if (!s->ok[0])
            continue;
        const struct query__labels *ls = final_labels(ev, s->ls, s->flags);
        int found;
        query__lsmap_get(ev, &x, ls, &found);
        if (found)
            query__fail(ev, QUERY_ERR_EXECUTION,
                        "vector cannot contain metrics with the same labelset");
        pts[k] = (struct query_point){t, s->v[0]};
        out[k] = (struct query_series){ls->l, ls->n, &pts[k], 1};
        k++;
    }
    query__lsmap_free(ev, &x);
    res->type = QUERY_VALUE_VECTOR;
    res->series = out;
    res->nseries = k;
}

/*
 * A range vector result from parallel arrays of labels/flags and points:
 * names dropped, series with equal labels merged (overlapping points are an
 * error), sorted by labels.
 */
struct mat_in {
    const struct query__labels *ls;
    unsigned flags;
    struct query_point *pts;
    size_t n;
};

static int cmp_point(const void *a, const void *b)
{
    const struct query_point *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

static void result_matrix(struct query__ev *ev, struct mat_in *in, size_t n,
                          struct query_result *res)
{
    struct query_series *out = query__arena(ev, (n ? n : 1) * sizeof(*out));
    struct query__lsmap x;
    query__lsmap_init(ev, &x, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in[i].n)
            continue;
        const struct query__labels *ls = final_labels(ev, in[i].ls, in[i].flags);
        int found;
        size_t *slot = query__lsmap_get(ev, &x, ls, &found);
        if (!found) {
            *slot = k;
            out[k++] = (struct query_series){ls->l, ls->n, in[i].pts, in[i].n};
            continue;
        }
        /* Merge into the first series with these labels. */
        struct query_series *base = &out[*slot];
        size_t m = base->npoints + in[i].n;
        struct query_point *p = query__arena(ev, m * sizeof(*p));
        memcpy(p, base->points, base->npoints * sizeof(*p));
        memcpy(p + base->npoints, in[i].pts, in[i].n * sizeof(*p));
        qsort(p, m, sizeof(*p), cmp_point);
        for (size_t j = 1; j < m; j++)
            if (p[j].t == p[j - 1].t)
                query__fail(ev, QUERY_ERR_EXECUTION,
                            "vector cannot contain metrics with the same labelset");
        base->points = p;
        base->npoints = m;
    }
    query__lsmap_free(ev, &x);
    qsort(out, k, sizeof(*out), cmp_series_labels);
    res->type = QUERY_VALUE_MATRIX;
    res->series = out;
    res->nseries = k;
}

static void result_from_vec(struct query__ev *ev, struct query__vec *vec,
                            const struct query__grid *g, struct query_result *res)
{
    struct mat_in *in = query__alloc(ev, (vec->n ? vec->n : 1) * sizeof(*in));
    for (size_t i = 0; i < vec->n; i++) {
        struct query__series *s = &vec->s[i];
        size_t cnt = 0;
        for (size_t j = 0; j < g->n; j++)
            cnt += s->ok[j];
        struct query_point *p = query__arena(ev, (cnt ? cnt : 1) * sizeof(*p));
        size_t k = 0;
        for (size_t j = 0; j < g->n; j++)
            if (s->ok[j])
                p[k++] = (struct query_point){g->start + (int64_t)j * g->step, s->v[j]};
        in[i] = (struct mat_in){s->ls, s->flags, p, k};
    }
    result_matrix(ev, in, vec->n, res);
    query__free(ev, in);
}

/* An instant query of a range vector: the samples of each series' window at t. */
static void result_range_at(struct query__ev *ev, struct query__range *r, int64_t t,
                            struct query_result *res)
{
    int64_t e = (r->has_at ? r->at_ms : t) - r->offset_ms;
    struct mat_in *in = query__alloc(ev, (r->n ? r->n : 1) * sizeof(*in));
    for (size_t i = 0; i < r->n; i++) {
        struct query__rseries *s = &r->s[i];
        struct query_point *p = query__arena(ev, (s->n ? s->n : 1) * sizeof(*p));
        size_t k = 0;
        for (size_t j = 0; j < s->n; j++)
            if (s->ss[j].ts > e - r->range_ms && s->ss[j].ts <= e)
                p[k++] = (struct query_point){s->ss[j].ts, s->ss[j].v};
        in[i] = (struct mat_in){s->ls, s->flags, p, k};
    }
    result_matrix(ev, in, r->n, res);
    query__free(ev, in);
}

static void finish_annotations(struct query__ev *ev, struct query_result *res)
{
    size_t nw = 0, ni = 0;
    for (size_t i = 0; i < ev->nannos; i++) {
        if (ev->annos[i].kind == QUERY__WARN)
            nw++;
        else
            ni++;
    }
    const char **w = query__arena(ev, (nw + 1) * sizeof(*w));
    const char **in = query__arena(ev, (ni + 1) * sizeof(*in));
    nw = ni = 0;
    for (size_t i = 0; i < ev->nannos; i++) {
        const char *s = anno_text(ev, &ev->annos[i]);
        if (ev->annos[i].kind == QUERY__WARN)
            w[nw++] = s;
        else
            in[ni++] = s;
    }
    res->warnings = w;
    res->nwarnings = nw;
    res->infos = in;
    res->ninfos = ni;
}

/* ---- entry points ------------------------------------------------------------------ */

static void ev_init(struct query__ev *ev, struct tsdb *db, struct query__mem *mem, jmp_buf *jmp,
                    struct query_eval_error *err, const char *text, const struct query_opts *o)
{
    memset(ev, 0, sizeof(*ev));
    ev->db = db;
    ev->mem = mem;
    ev->jmp = jmp;
    ev->err = err;
    ev->text = text;
    ev->lookback = o && o->lookback_ms > 0 ? o->lookback_ms : QUERY_DEFAULT_LOOKBACK_MS;
    ev->subq_step =
        o && o->subquery_step_ms > 0 ? o->subquery_step_ms : QUERY_DEFAULT_SUBQUERY_STEP_MS;
    ev->max_samples = o && o->max_samples ? o->max_samples : QUERY_DEFAULT_MAX_SAMPLES;
    int64_t timeout = o && o->timeout_ms ? o->timeout_ms : QUERY_DEFAULT_TIMEOUT_MS;
    ev->deadline_ns = timeout > 0 ? util_mono_ns() + timeout * 1000000 : 0;
    ev->cancel = o ? o->cancel : NULL;
    ev->s_name = query__strz(ev, "__name__");
    ev->s_type = query__strz(ev, "__type__");
    ev->s_unit = query__strz(ev, "__unit__");
    ev->s_le = query__strz(ev, "le");
    ev->s_empty = query__strz(ev, "");
    ev->empty = query__labels_sorted(ev, NULL, 0);
}

/* One query: what the protected part needs, so that nothing it uses after a longjmp is a local. */
struct run {
    struct tsdb *db;
    const struct query_node *expr;
    const char *text;
    int64_t start, end, step;
    int is_range;
    const struct query_opts *opts;
    struct query_result *res;
    struct query_eval_error *err;
    struct query__mem *mem;
};

/* Evaluate r->expr into r->res. 0, or -1 after an error (r->err filled). */
static int eval_protected(struct run *r)
{
    jmp_buf jmp;
    struct query__ev ev; /* not read after a longjmp */
    if (setjmp(jmp))
        return -1;
    ev_init(&ev, r->db, r->mem, &jmp, r->err, r->text, r->opts);
    ev.qstart = r->start;
    ev.qend = r->end;
    ev.range_query = r->is_range;
    struct query_result *res = r->res;
    struct query__grid g = {r->start, r->end, r->is_range ? r->step : 1, 0};
    g.n = r->is_range ? (size_t)((r->end - r->start) / r->step) + 1 : 1;
    res->t = r->start;
    const struct query_node *expr = r->expr;
    switch (expr->value_type) {
    case QUERY_VALUE_STRING:
        res->type = QUERY_VALUE_STRING;
        res->string = query__strz(&ev, query__eval_string(expr));
        break;
    case QUERY_VALUE_SCALAR: {
        double *v = query__eval_scalar(&ev, expr, &g);
        if (r->is_range) {
            struct mat_in in = {ev.empty, 0, query__arena(&ev, g.n * sizeof(struct query_point)),
                                g.n};
            for (size_t i = 0; i < g.n; i++)
                in.pts[i] = (struct query_point){r->start + (int64_t)i * r->step, v[i]};
            result_matrix(&ev, &in, 1, res);
        } else {
            res->type = QUERY_VALUE_SCALAR;
            res->scalar = v[0];
        }
        query__free(&ev, v);
        break;
    }
    case QUERY_VALUE_VECTOR: {
        struct query__vec *v = query__eval_vec(&ev, expr, &g);
        if (r->is_range)
            result_from_vec(&ev, v, &g, res);
        else
            result_vector(&ev, v, r->start, res);
        query__vec_free(&ev, v);
        break;
    }
    case QUERY_VALUE_MATRIX: {
        struct query__range *rv = query__eval_range(&ev, expr, &g);
        result_range_at(&ev, rv, r->start, res);
        query__range_free(&ev, rv);
        break;
    }
    default:
        query__fail(&ev, QUERY_ERR_BAD_DATA, "cannot evaluate an expression of no type");
    }
    finish_annotations(&ev, res);
    res->samples_loaded = ev.samples_loaded;
    return 0;
}

static int eval_common(struct tsdb *db, const struct query_node *expr, const char *text,
                       int64_t start, int64_t end, int64_t step, int is_range,
                       const struct query_opts *opts, struct query_result *res,
                       struct query_eval_error *err)
{
    struct query_eval_error dummy;
    if (!err)
        err = &dummy;
    memset(res, 0, sizeof(*res));
    err->type = NULL;
    err->msg[0] = '\0';
    if (is_range) {
        uint64_t maxp = opts && opts->max_points ? opts->max_points : QUERY_DEFAULT_MAX_POINTS;
        if (step <= 0 || end < start) {
            err->type = QUERY_ERR_BAD_DATA;
            snprintf(err->msg, sizeof(err->msg),
                     step <= 0 ? "zero or negative query resolution step widths are not "
                                 "accepted. Try a positive integer"
                               : "end timestamp must not be before start time");
            return -1;
        }
        if ((uint64_t)((end - start) / step) + 1 > maxp) {
            err->type = QUERY_ERR_BAD_DATA;
            snprintf(err->msg, sizeof(err->msg),
                     "exceeded maximum resolution of %" PRIu64 " points per timeseries. Try "
                     "decreasing the query resolution (?step=XX)",
                     maxp);
            return -1;
        }
        if (expr->value_type != QUERY_VALUE_SCALAR && expr->value_type != QUERY_VALUE_VECTOR) {
            err->type = QUERY_ERR_BAD_DATA;
            snprintf(err->msg, sizeof(err->msg),
                     "invalid expression type \"%s\" for range query, must be Scalar or instant "
                     "Vector",
                     query_value_type_name(expr->value_type));
            return -1;
        }
    }
    struct query__mem *mem = xmalloc(sizeof(*mem));
    query__mem_init(mem);
    struct run r = {db, expr, text, start, end, step, is_range, opts, res, err, mem};
    if (eval_protected(&r) < 0) {
        /* Everything the query allocated is in mem: the error frees it all. */
        query__mem_release(mem);
        free(mem);
        memset(res, 0, sizeof(*res));
        if (!err->type)
            err->type = QUERY_ERR_INTERNAL;
        return -1;
    }
    res->mem = mem;
    return 0;
}

int query_eval_instant(struct tsdb *db, const struct query_node *expr, const char *text, int64_t t,
                       const struct query_opts *opts, struct query_result *res,
                       struct query_eval_error *err)
{
    return eval_common(db, expr, text, t, t, 0, 0, opts, res, err);
}

int query_eval_range(struct tsdb *db, const struct query_node *expr, const char *text,
                     int64_t start, int64_t end, int64_t step, const struct query_opts *opts,
                     struct query_result *res, struct query_eval_error *err)
{
    return eval_common(db, expr, text, start, end, step, 1, opts, res, err);
}

static int run(struct tsdb *db, const char *text, int64_t start, int64_t end, int64_t step,
               int is_range, const struct query_opts *opts, struct query_result *res,
               struct query_eval_error *err)
{
    struct query_node *n;
    struct query_error perr;
    memset(res, 0, sizeof(*res));
    if (query_parse(text, &n, &perr) < 0) {
        if (err) {
            err->type = QUERY_ERR_BAD_DATA;
            snprintf(err->msg, sizeof(err->msg), "%s", perr.msg);
        }
        return -1;
    }
    int rc = eval_common(db, n, text, start, end, step, is_range, opts, res, err);
    query_node_free(n);
    return rc;
}

int query_run_instant(struct tsdb *db, const char *text, int64_t t, const struct query_opts *opts,
                      struct query_result *res, struct query_eval_error *err)
{
    return run(db, text, t, t, 0, 0, opts, res, err);
}

int query_run_range(struct tsdb *db, const char *text, int64_t start, int64_t end, int64_t step,
                    const struct query_opts *opts, struct query_result *res,
                    struct query_eval_error *err)
{
    return run(db, text, start, end, step, 1, opts, res, err);
}

void query_result_release(struct query_result *res)
{
    if (!res)
        return;
    if (res->mem) {
        query__mem_release(res->mem);
        free(res->mem);
    }
    memset(res, 0, sizeof(*res));
}
