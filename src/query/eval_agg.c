/*
 * eval_agg.c: aggregation operators (sum, avg, count, min, max, group,
 * stddev, stdvar, quantile, topk, bottomk, count_values) with by/without.
 * Each input series is mapped to its group once; the steps then accumulate
 * per group, with Prometheus' numerics (Kahan summation, the overflow
 * fallback of avg, Welford's stddev) so results agree to the last bits
 * that matter. topk/bottomk filter their input in place.
 */
#include "query/eval_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    /* NaN sorts first, as Prometheus' vectorByValueHeap.Less says. */
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return (x > y) - (x < y);
}

double query__quantile(double q, double *values, size_t n)
{
    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(values, n, sizeof(double), cmp_double);
    double rank = q * (double)(n - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin((double)(n - 1), lower + 1);
    double weight = rank - floor(rank);
    return values[(size_t)lower] * (1 - weight) + values[(size_t)upper] * weight;
}

/* The group of a series: its labels after by/without (Prometheus' grouping labels). */
static const struct query__labels *group_labels(struct query__ev *ev, const struct query_node *n,
                                                const struct query__labels *ls)
{
    const char *const *names = (const char *const *)n->aggregate.grouping;
    size_t nn = n->aggregate.ngrouping;
    if (n->aggregate.without)
        return query__filter(ev, ls, names, nn, 0, 1);
    if (nn == 0)
        return ev->empty;
    return query__filter(ev, ls, names, nn, 1, 0);
}

/* ---- topk / bottomk ---------------------------------------------------------- */

struct kheap {
    size_t *idx; /* series indexes */
    double *val;
    size_t n;
    int bottom; /* bottomk: the root is the largest */
};

/* Prometheus' vectorByValueHeap / vectorByReverseValueHeap Less. */
static int kless(const struct kheap *h, size_t i, size_t j)
{
    double a = h->val[i], b = h->val[j];
    if (isnan(a))
        return 1;
    return h->bottom ? a > b : a < b;
}

static void kswap(struct kheap *h, size_t i, size_t j)
{
    size_t ti = h->idx[i];
    double tv = h->val[i];
    h->idx[i] = h->idx[j];
    h->val[i] = h->val[j];
    h->idx[j] = ti;
    h->val[j] = tv;
}

/* Go's container/heap up() and down(), so ties resolve as in Prometheus. */
static void kup(struct kheap *h, size_t j)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!kless(h, j, i))
            break;
        kswap(h, i, j);
        j = i;
    }
}

static int kdown(struct kheap *h, size_t i0, size_t n)
{
    size_t i = i0;
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= n)
            break;
        size_t j = j1;
        if (j1 + 1 < n && kless(h, j1 + 1, j1))
            j = j1 + 1;
        if (!kless(h, j, i))
            break;
        kswap(h, i, j);
        i = j;
    }
    return i > i0;
}

static struct query__vec *eval_topk(struct query__ev *ev, const struct query_node *n,
                                    const struct query__grid *g)
{
    int bottom = n->aggregate.op == QUERY_AGG_BOTTOMK;
    double *kp = query__eval_scalar(ev, n->aggregate.param, g);
    struct query__vec *in = query__eval_vec(ev, n->aggregate.expr, g);
    double maxv = -1.7976931348623157e308, minv = 1.7976931348623157e308;
    int anynan = 0;
    for (size_t j = 0; j < g->n; j++) {
        maxv = query__go_max(maxv, kp[j]);
        minv = query__go_min(minv, kp[j]);
        anynan |= isnan(kp[j]);
    }
    if (maxv < 1) { /* nothing at any step */
        query__free(ev, kp);
        for (size_t i = 0; i < in->n; i++)
            memset(in->s[i].ok, 0, g->n);
        query__vec_compact(ev, in);
        return in;
    }
    if (anynan)
        query__fail(ev, QUERY_ERR_EXECUTION, "Parameter value is NaN");
    char buf[40];
    if (minv <= -9223372036854775808.0) {
        query__fmt_g(minv, buf, sizeof(buf));
        query__fail(ev, QUERY_ERR_EXECUTION, "Scalar value %s underflows int64", buf);
    }
    if (maxv >= 9223372036854775807.0) {
        query__fmt_g(maxv, buf, sizeof(buf));
        query__fail(ev, QUERY_ERR_EXECUTION, "Scalar value %s overflows int64", buf);
    }
    /* Groups: index per series, first-seen order. */
    size_t *grp = query__alloc(ev, (in->n ? in->n : 1) * sizeof(size_t));
    struct query__lsmap map;
    query__lsmap_init(ev, &map, in->n);
    size_t ngroups = 0;
    for (size_t i = 0; i < in->n; i++) {
        int found;
        size_t *slot = query__lsmap_get(ev, &map, group_labels(ev, n, in->s[i].ls), &found);
        if (!found)
            *slot = ngroups++;
        grp[i] = *slot;
    }
    query__lsmap_free(ev, &map);
    /* Heaps of all groups share one buffer of capacity k each (k <= series). */
    size_t kmax = (size_t)(maxv < (double)in->n ? (int64_t)maxv : (int64_t)in->n);
    if (kmax < 1)
        kmax = 1;
    struct kheap *heaps = query__alloc(ev, (ngroups ? ngroups : 1) * sizeof(*heaps));
    size_t nbuf = ngroups * kmax > 0 ? ngroups * kmax : 1;
    size_t *ibuf = query__alloc(ev, nbuf * sizeof(size_t));
    double *vbuf = query__alloc(ev, nbuf * sizeof(double));
    uint8_t *keep = query__alloc(ev, in->n ? in->n : 1);
    size_t *order = NULL, norder = 0;
    if (g->n == 1)
        order = query__alloc(ev, (in->n ? in->n : 1) * sizeof(size_t));
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        int64_t k64 = (int64_t)kp[j];
        if (k64 > (int64_t)in->n)
            k64 = (int64_t)in->n;
        for (size_t gi = 0; gi < ngroups; gi++)
            heaps[gi] = (struct kheap){ibuf + gi * kmax, vbuf + gi * kmax, 0, bottom};
        memset(keep, 0, in->n ? in->n : 1);
        if (k64 >= 1) {
            size_t k = (size_t)k64;
            for (size_t i = 0; i < in->n; i++) {
                if (!in->s[i].ok[j])
                    continue;
                struct kheap *h = &heaps[grp[i]];
                double v = in->s[i].v[j];
                if (h->n < k) {
                    h->idx[h->n] = i;
                    h->val[h->n] = v;
                    h->n++;
                    kup(h, h->n - 1);
                    continue;
                }
                double root = h->val[0];
                int better = bottom ? (root > v || (isnan(root) && !isnan(v)))
                                    : (root < v || (isnan(root) && !isnan(v)));
                if (better) {
                    h->idx[0] = i;
                    h->val[0] = v;
                    if (k > 1 && !kdown(h, 0, h->n))
                        kup(h, 0);
                }
            }
            for (size_t gi = 0; gi < ngroups; gi++)
                for (size_t m = 0; m < heaps[gi].n; m++)
                    keep[heaps[gi].idx[m]] = 1;
        }
        for (size_t i = 0; i < in->n; i++)
            if (!keep[i])
                in->s[i].ok[j] = 0;
        if (order) {
            /* Instant query: groups in order, each sorted best first, NaN last. */
            for (size_t gi = 0; gi < ngroups; gi++) {
                struct kheap *h = &heaps[gi];
                for (size_t a = 1; a < h->n; a++) /* insertion sort: k is small here */
                    for (size_t b = a; b > 0; b--) {
                        double x = h->val[b - 1], y = h->val[b];
                        int before = isnan(x) ? 0 : isnan(y) ? 1 : bottom ? x <= y : x >= y;
                        if (before)
                            break;
                        kswap(h, b - 1, b);
                    }
                for (size_t m = 0; m < h->n; m++)
                    order[norder++] = h->idx[m];
            }
        }
    }
    if (order) {
        /* Reorder the series: selected ones first, in the answer's order. */
        struct query__series *s = query__alloc(ev, (in->n ? in->n : 1) * sizeof(*s));
        uint8_t *used = query__zalloc(ev, in->n ? in->n : 1);
        size_t k = 0;
        for (size_t m = 0; m < norder; m++) {
            s[k++] = in->s[order[m]];
            used[order[m]] = 1;
        }
        for (size_t i = 0; i < in->n; i++)
            if (!used[i])
                s[k++] = in->s[i];
        memcpy(in->s, s, in->n * sizeof(*s));
        query__free(ev, s);
        query__free(ev, used);
        query__free(ev, order);
    }
    query__free(ev, heaps);
    query__free(ev, ibuf);
    query__free(ev, vbuf);
    query__free(ev, keep);
    query__free(ev, grp);
    query__free(ev, kp);
    query__vec_compact(ev, in);
    return in;
}

/* ---- count_values -------------------------------------------------------------- */

static int valid_utf8_name(const char *s)
{
    if (!s[0])
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int len = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || (len == 2 && *p < 0xc2))
            return 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        if (len == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0)))
            return 0;
        if (len == 4 &&
            ((p[0] == 0xf0 && p[1] < 0x90) || p[0] > 0xf4 || (p[0] == 0xf4 && p[1] >= 0x90)))
            return 0;
        p += len;
    }
    return 1;
}

static struct query__vec *eval_count_values(struct query__ev *ev, const struct query_node *n,
                                            const struct query__grid *g)
{
    const char *label = query__eval_string(n->aggregate.param);
    if (!valid_utf8_name(label)) {
        struct sbuf sb;
        sbuf_init(&sb, 0);
        query_format(n->aggregate.param, &sb);
        char msg[QUERY_ERROR_LEN];
        snprintf(msg, sizeof(msg), "invalid label name %s", sb.buf);
        sbuf_release(&sb);
        query__fail(ev, QUERY_ERR_EXECUTION, "%s", msg);
    }
    label = query__strz(ev, label);
    /* by (...) also groups by the new label; without (...) keeps it anyway. */
    size_t nn = n->aggregate.ngrouping;
    const char **names = query__alloc(ev, (nn + 1) * sizeof(*names));
    for (size_t i = 0; i < nn; i++)
        names[i] = n->aggregate.grouping[i];
    if (!n->aggregate.without)
        names[nn++] = label;
    struct query__vec *in = query__eval_vec(ev, n->aggregate.expr, g);
    struct query__vec *out = query__vec_new(ev, g->n, 16);
    struct query__lsmap map;
    query__lsmap_init(ev, &map, 16);
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        for (size_t i = 0; i < in->n; i++) {
            if (!in->s[i].ok[j])
                continue;
            char val[400];
            query_format_float(in->s[i].v[j], val, sizeof(val));
            const struct query__labels *ls = query__set(ev, in->s[i].ls, label, val);
            const struct query__labels *gl;
            if (n->aggregate.without)
                gl = query__filter(ev, ls, names, nn, 0, 1);
            else
                gl = query__filter(ev, ls, names, nn, 1, 0);
            int found;
            size_t *slot = query__lsmap_get(ev, &map, gl, &found);
            if (!found) {
                *slot = out->n;
                query__vec_add(ev, out, gl, 0);
            }
            struct query__series *o = &out->s[*slot];
            if (!o->ok[j]) {
                o->ok[j] = 1;
                o->v[j] = 0;
            }
            o->v[j]++;
        }
    }
    query__lsmap_free(ev, &map);
    query__free(ev, names);
    query__vec_free(ev, in);
    return out;
}

/* ---- the other aggregations ------------------------------------------------------ */

struct group {
    double value, mean, c, count;
    int seen, incremental, drop;
    double *heap; /* quantile: the values at this step */
    size_t nheap, heap_cap;
};

struct query__vec *query__eval_aggregate(struct query__ev *ev, const struct query_node *n,
                                         const struct query__grid *g)
{
    enum query_agg op = n->aggregate.op;
    if (op == QUERY_AGG_TOPK || op == QUERY_AGG_BOTTOMK)
        return eval_topk(ev, n, g);
    if (op == QUERY_AGG_COUNT_VALUES)
        return eval_count_values(ev, n, g);
    double *qp = NULL;
    if (op == QUERY_AGG_QUANTILE) {
        qp = query__eval_scalar(ev, n->aggregate.param, g);
        const struct query_node *pos = n->aggregate.param;
        double maxv = -1.7976931348623157e308, minv = 1.7976931348623157e308;
        int anynan = 0;
        if (query__unparen(pos)->type == QUERY_NODE_NUMBER) {
            maxv = minv = qp[0];
            anynan = isnan(qp[0]);
        } else {
            for (size_t j = 0; j < g->n; j++) {
                maxv = query__go_max(maxv, qp[j]);
                minv = query__go_min(minv, qp[j]);
                anynan |= isnan(qp[j]);
            }
        }
        char buf[40];
        if (anynan)
            query__anno(ev, QUERY__WARN, pos,
                        "PromQL warning: quantile value should be between 0 and 1, got NaN");
        if (maxv > 1) {
            query__fmt_g(maxv, buf, sizeof(buf));
            query__anno(ev, QUERY__WARN, pos,
                        "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
        }
        if (minv < 0) {
            query__fmt_g(minv, buf, sizeof(buf));
            query__anno(ev, QUERY__WARN, pos,
                        "PromQL warning: quantile value should be between 0 and 1, got %s", buf);
        }
    }
    struct query__vec *in = query__eval_vec(ev, n->aggregate.expr, g);
    size_t *grp = query__alloc(ev, (in->n ? in->n : 1) * sizeof(size_t));
    struct query__vec *out = query__vec_new(ev, g->n, 16);
    struct query__lsmap map;
    query__lsmap_init(ev, &map, in->n);
    for (size_t i = 0; i < in->n; i++) {
        const struct query__labels *gl = group_labels(ev, n, in->s[i].ls);
        int found;
        size_t *slot = query__lsmap_get(ev, &map, gl, &found);
        if (!found) {
            *slot = out->n;
            query__vec_add(ev, out, gl, 0);
        }
        grp[i] = *slot;
    }
    query__lsmap_free(ev, &map);
    struct group *gs = query__zalloc(ev, (out->n ? out->n : 1) * sizeof(*gs));
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        for (size_t gi = 0; gi < out->n; gi++) {
            gs[gi].seen = 0;
            gs[gi].nheap = 0;
        }
        for (size_t i = 0; i < in->n; i++) {
            if (!in->s[i].ok[j])
                continue;
            double f = in->s[i].v[j];
            struct group *gr = &gs[grp[i]];
            int drop = (in->s[i].flags & QUERY__DROP_NAME) != 0;
            if (!gr->seen) {
                gr->seen = 1;
                gr->value = f;
                gr->mean = f;
                gr->c = 0;
                gr->count = 1;
                gr->incremental = 0;
                gr->drop = drop;
                switch (op) {
                case QUERY_AGG_STDVAR:
                case QUERY_AGG_STDDEV:
                    gr->value = (isnan(f) || isinf(f)) ? NAN : 0;
                    break;
                case QUERY_AGG_GROUP:
                    gr->value = 1;
                    break;
                case QUERY_AGG_QUANTILE:
                    if (gr->heap_cap == 0) {
                        gr->heap_cap = 8;
                        gr->heap = query__alloc(ev, gr->heap_cap * sizeof(double));
                    }
                    gr->heap[0] = f;
                    gr->nheap = 1;
                    break;
                default:
                    break;
                }
                continue;
            }
            gr->drop |= drop;
            switch (op) {
            case QUERY_AGG_SUM:
                query__kahan_inc(f, &gr->value, &gr->c);
                break;
            case QUERY_AGG_AVG:
                gr->count++;
                if (!gr->incremental) {
                    double nv = gr->value, nc = gr->c;
                    query__kahan_inc(f, &nv, &nc);
                    if (!isinf(nv)) {
                        gr->value = nv;
                        gr->c = nc;
                        break;
                    }
                    /* The sum would overflow: continue with an incremental mean. */
                    gr->incremental = 1;
                    gr->mean = gr->value / (gr->count - 1);
                    gr->c /= gr->count - 1;
                }
                {
                    double q = (gr->count - 1) / gr->count;
                    double m = q * gr->mean, c = q * gr->c;
                    query__kahan_inc(f / gr->count, &m, &c);
                    gr->mean = m;
                    gr->c = c;
                }
                break;
            case QUERY_AGG_MAX:
                if (gr->value < f || isnan(gr->value))
                    gr->value = f;
                break;
            case QUERY_AGG_MIN:
                if (gr->value > f || isnan(gr->value))
                    gr->value = f;
                break;
            case QUERY_AGG_COUNT:
                gr->count++;
                break;
            case QUERY_AGG_STDVAR:
            case QUERY_AGG_STDDEV: {
                gr->count++;
                double delta = f - gr->mean;
                gr->mean += delta / gr->count;
                gr->value += delta * (f - gr->mean);
                break;
            }
            case QUERY_AGG_QUANTILE:
                if (gr->nheap == gr->heap_cap) {
                    gr->heap_cap *= 2;
                    gr->heap = query__realloc(ev, gr->heap, gr->heap_cap * sizeof(double));
                }
                gr->heap[gr->nheap++] = f;
                break;
            default:
                break;
            }
        }
        for (size_t gi = 0; gi < out->n; gi++) {
            struct group *gr = &gs[gi];
            if (!gr->seen)
                continue;
            double v = gr->value;
            switch (op) {
            case QUERY_AGG_AVG:
                v = gr->incremental ? gr->mean + gr->c : gr->value / gr->count + gr->c / gr->count;
                break;
            case QUERY_AGG_COUNT:
                v = gr->count;
                break;
            case QUERY_AGG_STDVAR:
                v = gr->value / gr->count;
                break;
            case QUERY_AGG_STDDEV:
                v = sqrt(gr->value / gr->count);
                break;
            case QUERY_AGG_QUANTILE:
                v = query__quantile(qp[j], gr->heap, gr->nheap);
                break;
            case QUERY_AGG_SUM:
                v = gr->value + gr->c;
                break;
            default:
                break;
            }
            struct query__series *o = &out->s[gi];
            o->ok[j] = 1;
            o->v[j] = v;
            /* The flag of the last step the group was seen at, as Prometheus. */
            o->flags = gr->drop ? QUERY__DROP_NAME : 0;
        }
    }
    for (size_t gi = 0; gi < out->n; gi++)
        query__free(ev, gs[gi].heap);
    query__free(ev, gs);
    query__free(ev, grp);
    query__free(ev, qp);
    query__vec_free(ev, in);
    query__vec_compact(ev, out);
    return out;
}
