/*
 * eval_binary.c: binary operators. Scalar with scalar, vector with scalar
 * (worked in place on the vector), and vector with vector: set operators
 * (and, or, unless) and arithmetic/comparison with vector matching (on,
 * ignoring, group_left, group_right) and Prometheus' errors for ambiguous
 * matches. Matching signatures are computed once per series, not per step;
 * each step then only looks up ordinals.
 */
#include "query/eval_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/sbuf.h"
#include "util/util.h"
#include "util/banned.h"

static int is_arith(enum query_op op)
{
    return op == QUERY_OP_ADD || op == QUERY_OP_SUB || op == QUERY_OP_MUL || op == QUERY_OP_DIV ||
           op == QUERY_OP_MOD || op == QUERY_OP_POW || op == QUERY_OP_ATAN2;
}

/* Arithmetic, or a comparison as 0/1 (scalar results). */
double query__scalar_op(enum query_op op, double a, double b)
{
    switch (op) {
    case QUERY_OP_ADD:
        return a + b;
    case QUERY_OP_SUB:
        return a - b;
    case QUERY_OP_MUL:
        return a * b;
    case QUERY_OP_DIV:
        return a / b;
    case QUERY_OP_MOD:
        return fmod(a, b);
    case QUERY_OP_POW:
        return pow(a, b);
    case QUERY_OP_ATAN2:
        return atan2(a, b);
    case QUERY_OP_EQ:
        return a == b;
    case QUERY_OP_NE:
        return a != b;
    case QUERY_OP_GT:
        return a > b;
    case QUERY_OP_LT:
        return a < b;
    case QUERY_OP_GE:
        return a >= b;
    case QUERY_OP_LE:
        return a <= b;
    default:
        return NAN;
    }
}

/*
 * One element: arithmetic gives its value (keep = 1); a comparison keeps
 * lhs (the left operand's value) where it holds.
 */
static inline double elem_op(enum query_op op, double l, double r, int *keep)
{
    if (is_arith(op)) {
        *keep = 1;
        return query__scalar_op(op, l, r);
    }
    *keep = query__scalar_op(op, l, r) != 0;
    return l;
}

double *query__eval_binary_scalar(struct query__ev *ev, const struct query_node *n,
                                  const struct query__grid *g)
{
    double *a = query__eval_scalar(ev, n->binary.lhs, g);
    double *b = query__eval_scalar(ev, n->binary.rhs, g);
    for (size_t i = 0; i < g->n; i++)
        a[i] = query__scalar_op(n->binary.op, a[i], b[i]);
    query__free(ev, b);
    return a;
}

/* Vector op scalar (swap: scalar op vector), in place on the vector. */
static struct query__vec *vector_scalar(struct query__ev *ev, const struct query_node *n,
                                        const struct query__grid *g, int swap)
{
    enum query_op op = n->binary.op;
    int rbool = n->binary.return_bool;
    struct query__vec *v = query__eval_vec(ev, swap ? n->binary.rhs : n->binary.lhs, g);
    double *sc = query__eval_scalar(ev, swap ? n->binary.lhs : n->binary.rhs, g);
    for (size_t i = 0; i < v->n; i++) {
        struct query__series *s = &v->s[i];
        if (is_arith(op) || rbool)
            s->flags |= QUERY__DROP_NAME;
        for (size_t j = 0; j < g->n; j++) {
            if (!s->ok[j])
                continue;
            double l = s->v[j], r = sc[j];
            if (swap) {
                l = sc[j];
                r = s->v[j];
            }
            int keep;
            double x = elem_op(op, l, r, &keep);
            if (!is_arith(op))
                x = s->v[j]; /* comparisons keep the vector's value, whichever side */
            if (rbool) {
                s->v[j] = keep;
                continue;
            }
            if (keep)
                s->v[j] = x;
            else
                s->ok[j] = 0;
        }
    }
    query__free(ev, sc);
    query__vec_compact(ev, v);
    return v;
}

/* ---- matching signatures ------------------------------------------------------ */

/* The label set that identifies a series for matching (Prometheus' MatchLabels). */
static const struct query__labels *sig_labels(struct query__ev *ev, const struct query__labels *ls,
                                              const struct query_vector_matching *m)
{
    if (m->on)
        return query__filter(ev, ls, (const char *const *)m->labels, m->nlabels, 1, 0);
    return query__filter(ev, ls, (const char *const *)m->labels, m->nlabels, 0, 1);
}

/* Signature ordinals of every series of a and b (shared numbering). */
static void signatures(struct query__ev *ev, const struct query__vec *a, const struct query__vec *b,
                       const struct query_vector_matching *m, size_t **sa, size_t **sb,
                       size_t *nsigs)
{
    struct query__lsmap map;
    query__lsmap_init(ev, &map, a->n + b->n);
    size_t next = 0;
    const struct query__vec *v[2] = {a, b};
    size_t *out[2];
    for (int k = 0; k < 2; k++) {
        out[k] = query__alloc(ev, (v[k]->n ? v[k]->n : 1) * sizeof(size_t));
        for (size_t i = 0; i < v[k]->n; i++) {
            int found;
            size_t *slot = query__lsmap_get(ev, &map, sig_labels(ev, v[k]->s[i].ls, m), &found);
            if (!found)
                *slot = next++;
            out[k][i] = *slot;
        }
    }
    query__lsmap_free(ev, &map);
    *sa = out[0];
    *sb = out[1];
    *nsigs = next;
}

/* ---- set operators ------------------------------------------------------------ */

/* Whether v holds a sample at any step. */
static int any_sample(const struct query__vec *v)
{
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < v->nsteps; j++)
            if (v->s[i].ok[j])
                return 1;
    return 0;
}

static struct query__vec *set_op(struct query__ev *ev, const struct query_node *n,
                                 struct query__vec *l, struct query__vec *r,
                                 const struct query__grid *g)
{
    size_t *sl, *sr, nsigs;
    signatures(ev, l, r, n->binary.matching, &sl, &sr, &nsigs);
    /* present[sig] == step + 1: the signature is on the other side at this step. */
    size_t *present = query__zalloc(ev, (nsigs ? nsigs : 1) * sizeof(size_t));
    enum query_op op = n->binary.op;
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        size_t nl = 0, nr = 0;
        for (size_t i = 0; i < l->n; i++)
            nl += l->s[i].ok[j];
        for (size_t i = 0; i < r->n; i++)
            nr += r->s[i].ok[j];
        if (op == QUERY_OP_AND && (!nl || !nr)) {
            for (size_t i = 0; i < l->n; i++)
                l->s[i].ok[j] = 0;
            continue;
        }
        if (op == QUERY_OP_UNLESS && (!nl || !nr))
            continue;
        if (op == QUERY_OP_OR) {
            /* Right-hand series whose signature the left has at this step are dropped. */
            for (size_t i = 0; i < l->n; i++)
                if (l->s[i].ok[j])
                    present[sl[i]] = j + 1;
            for (size_t i = 0; i < r->n; i++)
                if (r->s[i].ok[j] && present[sr[i]] == j + 1)
                    r->s[i].ok[j] = 0;
            continue;
        }
        for (size_t i = 0; i < r->n; i++)
            if (r->s[i].ok[j])
                present[sr[i]] = j + 1;
        for (size_t i = 0; i < l->n; i++) {
            if (!l->s[i].ok[j])
                continue;
            int there = present[sl[i]] == j + 1;
            if (op == QUERY_OP_AND ? !there : there)
                l->s[i].ok[j] = 0;
        }
    }
    query__free(ev, present);
    query__free(ev, sl);
    query__free(ev, sr);
    if (op == QUERY_OP_OR) {
        /*
         * Series with equal labels on both sides become one; Prometheus keeps
         * the flags (delayed name removal) of the one with the earliest point.
         */
        struct query__lsmap map;
        query__lsmap_init(ev, &map, l->n);
        for (size_t i = 0; i < l->n; i++) {
            int found;
            *query__lsmap_get(ev, &map, l->s[i].ls, &found) = i;
        }
        for (size_t i = 0; i < r->n; i++) {
            int found;
            size_t *slot = query__lsmap_get(ev, &map, r->s[i].ls, &found);
            if (!found)
                *slot = SIZE_MAX;
            if (*slot == SIZE_MAX)
                continue;
            struct query__series *ls = &l->s[*slot], *rs = &r->s[i];
            size_t fl = 0, fr = 0;
            while (fl < g->n && !ls->ok[fl])
                fl++;
            while (fr < g->n && !rs->ok[fr])
                fr++;
            if (fr < fl)
                ls->flags = rs->flags;
        }
        query__lsmap_free(ev, &map);
        /* Append the right-hand side; series with equal labels become one. */
        for (size_t i = 0; i < r->n; i++) {
            if (l->n == l->cap) {
                l->cap *= 2;
                l->s = query__realloc(ev, l->s, l->cap * sizeof(*l->s));
            }
            l->s[l->n++] = r->s[i];
        }
        r->n = 0;
        query__vec_compact(ev, l);
        query__vec_merge_same(ev, l);
    } else {
        query__vec_compact(ev, l);
    }
    query__vec_free(ev, r);
    return l;
}

/* ---- arithmetic and comparison between vectors ------------------------------ */

/* The result's labels (Prometheus' resultMetric); many: the "many" side's series. */
static const struct query__labels *result_labels(struct query__ev *ev, const struct query_node *n,
                                                 const struct query__labels *many,
                                                 const struct query__labels *one)
{
    const struct query_vector_matching *m = n->binary.matching;
    const struct query__labels *ls = many;
    if (is_arith(n->binary.op)) /* the result is no longer the metric: schema labels go */
        ls = query__drop_name(ev, ls);
    if (m->card == QUERY_CARD_ONE_TO_ONE) {
        if (m->on)
            ls = query__filter(ev, ls, (const char *const *)m->labels, m->nlabels, 1, 0);
        else
            ls = query__filter(ev, ls, (const char *const *)m->labels, m->nlabels, 0, 0);
    }
    for (size_t i = 0; i < m->ninclude; i++) {
        const char *v = query__get(one, m->include[i]);
        ls = query__set(ev, ls, m->include[i], v);
    }
    return ls;
}

/* A small set of (signature, output series) pairs seen in one step. */
struct pairset {
    uint64_t *key; /* (sig << 32 | out) + 1; 0: empty */
    size_t *stamp;
    size_t cap;
};

static int pairset_add(struct pairset *p, size_t step, size_t sig, size_t out)
{
    uint64_t key = ((uint64_t)sig << 32 | (uint64_t)out) + 1;
    size_t k = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (p->cap - 1);
    for (;; k = (k + 1) & (p->cap - 1)) {
        if (p->stamp[k] != step + 1) {
            p->stamp[k] = step + 1;
            p->key[k] = key;
            return 0;
        }
        if (p->key[k] == key)
            return 1;
    }
}

static struct query__vec *vector_vector(struct query__ev *ev, const struct query_node *n,
                                        struct query__vec *l, struct query__vec *r,
                                        const struct query__grid *g)
{
    const struct query_vector_matching *m = n->binary.matching;
    enum query_op op = n->binary.op;
    int rbool = n->binary.return_bool;
    int swapped = m->card == QUERY_CARD_ONE_TO_MANY;
    /* After the swap, "many" (mv) is iterated and "one" (ov) is looked up. */
    struct query__vec *mv = swapped ? r : l, *ov = swapped ? l : r;
    size_t *sm, *so, nsigs;
    signatures(ev, mv, ov, m, &sm, &so, &nsigs);
    size_t ns = nsigs ? nsigs : 1;
    size_t *oseen = query__zalloc(ev, ns * sizeof(size_t)); /* step + 1 */
    size_t *oidx = query__alloc(ev, ns * sizeof(size_t));
    size_t *matched = query__zalloc(ev, ns * sizeof(size_t)); /* one-to-one: step + 1 */
    /* Output label sets: per many-series when they do not depend on the other side. */
    size_t *out_of = query__alloc(ev, (mv->n ? mv->n : 1) * sizeof(size_t));
    for (size_t i = 0; i < mv->n; i++)
        out_of[i] = SIZE_MAX;
    struct query__lsmap outmap; /* output label set -> index in out */
    query__lsmap_init(ev, &outmap, mv->n);
    struct query__lsmap pairmap; /* with group_x labels: labels of (many, one) pairs */
    int by_pair = m->ninclude > 0;
    if (by_pair)
        query__lsmap_init(ev, &pairmap, mv->n);
    struct pairset ps = {0};
    if (m->card != QUERY_CARD_ONE_TO_ONE) {
        ps.cap = 16;
        while (ps.cap < mv->n * 2)
            ps.cap *= 2;
        ps.key = query__alloc(ev, ps.cap * sizeof(*ps.key));
        ps.stamp = query__zalloc(ev, ps.cap * sizeof(*ps.stamp));
    }
    struct query__vec *out = query__vec_new(ev, g->n, mv->n);
    size_t *written = NULL; /* per output: step + 1 of the last point */
    size_t written_cap = 0;
    for (size_t j = 0; j < g->n; j++) {
        query__check(ev);
        size_t nm = 0, no = 0;
        for (size_t i = 0; i < mv->n; i++)
            nm += mv->s[i].ok[j];
        for (size_t i = 0; i < ov->n; i++)
            no += ov->s[i].ok[j];
        if (!nm || !no)
            continue;
        for (size_t i = 0; i < ov->n; i++) {
            if (!ov->s[i].ok[j])
                continue;
            size_t sg = so[i];
            if (oseen[sg] == j + 1) {
                /* Two series of the "one" side match the same group. */
                struct sbuf a, b, grp;
                sbuf_init(&a, 0);
                sbuf_init(&b, 0);
                sbuf_init(&grp, 0);
                query__labels_string(ov->s[i].ls, &a);
                query__labels_string(ov->s[oidx[sg]].ls, &b);
                query__labels_string(sig_labels(ev, ov->s[i].ls, m), &grp);
                int lt = strcmp(a.buf, b.buf) <= 0;
                char msg[QUERY_ERROR_LEN];
                snprintf(msg, sizeof(msg),
                         "found duplicate series for the match group %s on the %s hand-side of "
                         "the operation: [%s, %s];many-to-many matching not allowed: matching "
                         "labels must be unique on one side",
                         grp.buf, swapped ? "left" : "right", lt ? a.buf : b.buf,
                         lt ? b.buf : a.buf);
                sbuf_release(&a);
                sbuf_release(&b);
                sbuf_release(&grp);
                query__fail(ev, QUERY_ERR_EXECUTION, "%s", msg);
            }
            oseen[sg] = j + 1;
            oidx[sg] = i;
        }
        int dup_labelset = 0;
        for (size_t i = 0; i < mv->n; i++) {
            struct query__series *ms = &mv->s[i];
            if (!ms->ok[j] || oseen[sm[i]] != j + 1)
                continue;
            size_t sg = sm[i];
            struct query__series *os = &ov->s[oidx[sg]];
            double lv = ms->v[j], rv = os->v[j];
            if (swapped) {
                lv = os->v[j];
                rv = ms->v[j];
            }
            int keep;
            double x = elem_op(op, lv, rv, &keep);
            if (rbool)
                x = keep;
            /* The output series for this (many, one) pair. */
            size_t o;
            if (!by_pair && out_of[i] != SIZE_MAX) {
                o = out_of[i];
            } else {
                const struct query__labels *key = NULL, *ls;
                size_t *pslot = NULL;
                int found = 0;
                if (by_pair) {
                    /*
                     * Key the pair by an interned one-"label" set holding
                     * the two sides' label-set pointers: interning hashes
                     * and compares pointers only, never reads them.
                     */
                    struct metric_label kl = {(const char *)ms->ls, (const char *)os->ls};
                    key = query__labels_sorted(ev, &kl, 1);
                    pslot = query__lsmap_get(ev, &pairmap, key, &found);
                }
                if (found) {
                    o = *pslot;
                } else {
                    ls = result_labels(ev, n, ms->ls, os->ls);
                    size_t *slot = query__lsmap_get(ev, &outmap, ls, &found);
                    if (!found) {
                        *slot = out->n;
                        query__vec_add(ev, out, ls, rbool ? QUERY__DROP_NAME : 0);
                        if (out->n > written_cap) {
                            size_t c = written_cap ? written_cap * 2 : 16;
                            while (c < out->n)
                                c *= 2;
                            written = query__realloc(ev, written, c * sizeof(*written));
                            memset(written + written_cap, 0, (c - written_cap) * sizeof(*written));
                            written_cap = c;
                        }
                    }
                    o = *slot;
                    if (by_pair)
                        *pslot = o;
                    else
                        out_of[i] = o;
                }
            }
            if (m->card == QUERY_CARD_ONE_TO_ONE) {
                if (matched[sg] == j + 1)
                    query__fail(
                        ev, QUERY_ERR_EXECUTION,
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)");
                matched[sg] = j + 1;
            } else if (pairset_add(&ps, j, sg, o)) {
                query__fail(
                    ev, QUERY_ERR_EXECUTION,
                    "multiple matches for labels: grouping labels must ensure unique matches");
            }
            if (!keep && !rbool)
                continue;
            if (written[o] == j + 1) {
                dup_labelset = 1; /* reported after the step, as Prometheus does */
                continue;
            }
            written[o] = j + 1;
            out->s[o].ok[j] = 1;
            out->s[o].v[j] = x;
        }
        if (dup_labelset)
            query__fail(ev, QUERY_ERR_EXECUTION,
                        "vector cannot contain metrics with the same labelset");
    }
    query__free(ev, written);
    query__free(ev, sm);
    query__free(ev, so);
    query__free(ev, oseen);
    query__free(ev, oidx);
    query__free(ev, matched);
    query__free(ev, out_of);
    query__lsmap_free(ev, &outmap);
    if (by_pair)
        query__lsmap_free(ev, &pairmap);
    query__free(ev, ps.key);
    query__free(ev, ps.stamp);
    query__vec_free(ev, l);
    query__vec_free(ev, r);
    query__vec_compact(ev, out);
    return out;
}

struct query__vec *query__eval_binary(struct query__ev *ev, const struct query_node *n,
                                      const struct query__grid *g)
{
    enum query_value_type lt = n->binary.lhs->value_type, rt = n->binary.rhs->value_type;
    if (lt == QUERY_VALUE_VECTOR && rt == QUERY_VALUE_SCALAR)
        return vector_scalar(ev, n, g, 0);
    if (lt == QUERY_VALUE_SCALAR && rt == QUERY_VALUE_VECTOR)
        return vector_scalar(ev, n, g, 1);
    struct query__vec *l = query__eval_vec(ev, n->binary.lhs, g);
    /*
     * Nothing `and` or `unless` anything is nothing: the right side is not
     * evaluated. Alert rules put their cheap threshold first and it is
     * empty nearly always, so a healthy host skips the costly trend on the
     * right. (Prometheus evaluates both; only an error the right side would
     * have raised, such as a limit, can tell the difference.)
     */
    if ((n->binary.op == QUERY_OP_AND || n->binary.op == QUERY_OP_UNLESS) && !any_sample(l))
        return l;
    struct query__vec *r = query__eval_vec(ev, n->binary.rhs, g);
    if (query_op_is_set(n->binary.op))
        return set_op(ev, n, l, r, g);
    return vector_vector(ev, n, l, r, g);
}
