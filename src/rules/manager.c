/*
 * manager.c: the engine proper: the evaluation thread, one evaluation of a
 * group (query, alert state machine, flapping, ALERTS / ALERTS_FOR_STATE and
 * recording outputs into the store, alerts to notify), reloads that keep
 * unchanged rules' alerts, and self-metrics.
 *
 * The state machine follows Prometheus's alerting rule (rules/alerting.go's
 * Eval, read for semantics): an alert appears pending with activeAt = the
 * evaluation time, fires once `for` has passed, and when its series leaves
 * the result it resolves at once, or after `keep_firing_for` if it was
 * firing. Resolved alerts are kept and re-sent for resolved_retention.
 * Flapping is sitrep's: see flap_on_resolve().
 */
#include "metric/metric.h"
#include "notify/notify.h"
#include "query/eval.h"
#include "rules/rules_internal.h"
#include "tsdb/tsdb.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALE_NAN_BITS 0x7ff0000000000002ull

static double stale_nan(void)
{
    uint64_t u = STALE_NAN_BITS;
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

int64_t rules__now(const struct rules *r)
{
    return r->o.now_ms ? r->o.now_ms(r->o.clock_ctx) : util_now_ms();
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rules_label *)a)->name, ((const struct rules_label *)b)->name);
}

uint64_t rules__labels_fp(const struct rules_label *l, size_t n)
{
    struct notify_label tmp[METRIC_MAX_LABELS * 2];
    if (n > ARRAY_SIZE(tmp))
        n = ARRAY_SIZE(tmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = (struct notify_label){l[i].name, l[i].value};
    return notify_fingerprint(tmp, n);
}

/* Set name=value in a label array (replacing an existing value). */
static void label_set(struct rules_label **ls, size_t *n, const char *name, const char *value)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*ls)[i].name, name) == 0) {
            free((*ls)[i].value);
            (*ls)[i].value = xstrdup(value);
            return;
        }
    *ls = xrealloc(*ls, (*n + 1) * sizeof(**ls));
    (*ls)[*n].name = xstrdup(name);
    (*ls)[*n].value = xstrdup(value);
    (*n)++;
}

static void label_del(struct rules_label *ls, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(ls[i].name, name) == 0) {
            free(ls[i].name);
            free(ls[i].value);
            ls[i] = ls[--*n];
            return;
        }
}

/* Expand a template; on error the error text becomes the value (as Prometheus does). */
static char *expand(const char *tmpl, const struct rules_tmpl_data *d)
{
    struct sbuf out;
    char err[256];
    sbuf_init(&out, RULES_MAX_TEMPLATE_OUT + 64);
    if (rules_template_expand(tmpl, d, &out, err, sizeof(err)) < 0) {
        sbuf_reset(&out);
        sbuf_addf(&out, "<error expanding template: %s>", err);
    }
    size_t len;
    char *s = sbuf_detach(&out, &len);
    sbuf_release(&out); /* detach leaves a fresh empty buffer behind */
    return s;
}

/*
 * `query` in templates: instant queries at the rule's evaluation time, all of
 * one rule evaluation's templates within one budget (the group's query
 * timeout). The same expression is run once per evaluation: every alert of a
 * rule asking for the top processes gets the same answer without asking
 * the store again.
 */
void rules__tmpl_query_release(struct rules__tmpl_query *q)
{
    for (size_t i = 0; i < q->ncache; i++) {
        free(q->cache[i].expr);
        free(q->cache[i].err);
        rules_tmpl_vec_release(&q->cache[i].v);
    }
    q->ncache = 0;
}

/* Copy a query's answer (first RULES_TMPL_MAX_SAMPLES samples) into out; 0 or -1 with err. */
static int tmpl_query_run(struct rules__tmpl_query *q, const char *expr, struct rules_tmpl_vec *out,
                          char *err, size_t errcap)
{
    int64_t left_ms = (q->deadline_ns - util_mono_ns()) / 1000000;
    if (left_ms <= 0) {
        snprintf(err, errcap, "this rule's templates used up their %lld ms for queries",
                 (long long)q->budget_ms);
        return -1;
    }
    struct query_opts qo = {.timeout_ms = left_ms};
    struct query_result res;
    struct query_eval_error qerr;
    if (query_run_instant(q->db, expr, q->ts, &qo, &res, &qerr) < 0) {
        snprintf(err, errcap, "%s", qerr.msg);
        return -1;
    }
    int rc = 0;
    if (res.type == QUERY_VALUE_SCALAR) {
        rules_tmpl_vec_add(out, res.scalar, NULL, 0); /* Prometheus: a sample without labels */
    } else if (res.type == QUERY_VALUE_VECTOR) {
        for (size_t i = 0; i < res.nseries; i++) {
            const struct query_series *se = &res.series[i];
            struct rules_tmpl_label l[METRIC_MAX_LABELS * 2];
            size_t nl = se->nlabels < ARRAY_SIZE(l) ? se->nlabels : ARRAY_SIZE(l);
            for (size_t k = 0; k < nl; k++)
                l[k] = (struct rules_tmpl_label){se->labels[k].name, se->labels[k].value};
            if (rules_tmpl_vec_add(out, se->npoints ? se->points[0].v : NAN, l, nl) < 0)
                break;
        }
    } else {
        snprintf(err, errcap, "query result is not a vector or scalar");
        rc = -1;
    }
    query_result_release(&res);
    return rc;
}

int rules__tmpl_query(void *ctx, const char *expr, struct rules_tmpl_vec *out, char *err,
                      size_t errcap)
{
    struct rules__tmpl_query *q = ctx;
    size_t i = 0;
    while (i < q->ncache && strcmp(q->cache[i].expr, expr) != 0)
        i++;
    if (i == q->ncache) {
        if (q->ncache == RULES_TMPL_QUERY_CACHE)
            return tmpl_query_run(q, expr, out, err, errcap);
        struct rules_tmpl_vec v = {0};
        char e[256] = "";
        int rc = tmpl_query_run(q, expr, &v, e, sizeof(e));
        q->cache[i].expr = xstrdup(expr);
        q->cache[i].v = v;
        q->cache[i].err = rc < 0 ? xstrdup(e) : NULL;
        q->ncache++;
    }
    if (q->cache[i].err) {
        snprintf(err, errcap, "%s", q->cache[i].err);
        return -1;
    }
    for (size_t k = 0; k < q->cache[i].v.n; k++) {
        const struct rules_tmpl_sample *s = &q->cache[i].v.s[k];
        rules_tmpl_vec_add(out, s->value, s->labels, s->nlabels);
    }
    return 0;
}

static struct rules__alert *find_alert(struct rules__rule *ru, uint64_t fp)
{
    for (size_t i = 0; i < ru->nalerts; i++)
        if (ru->alerts[i]->fp == fp)
            return ru->alerts[i];
    return NULL;
}

static void remove_alert(struct rules__rule *ru, size_t i)
{
    rules__alert_free(ru->alerts[i]);
    ru->alerts[i] = ru->alerts[--ru->nalerts];
}

static unsigned flap_threshold(const struct rules *r)
{
    return r->o.flap_threshold ? r->o.flap_threshold : 3;
}

static int64_t opt_ms(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

/*
 * The alert's series left the result and it would resolve at ts. Count the
 * cycle; at the threshold within the window it turns flapping instead: it
 * is held firing (so nothing is paged per cycle) until a quiet period
 * passes. Returns 1 if the alert is to stay firing.
 */
static int flap_on_resolve(struct rules *r, struct rules__alert *a, int64_t ts)
{
    int64_t window = opt_ms(r->o.flap_window_ms, 3600000);
    a->resolves[a->nresolves % RULES_FLAP_HISTORY] = ts;
    a->nresolves++;
    a->last_cycle = ts;
    unsigned n = 0;
    size_t kept = a->nresolves < RULES_FLAP_HISTORY ? a->nresolves : RULES_FLAP_HISTORY;
    for (size_t i = 0; i < kept; i++)
        if (ts - a->resolves[i] <= window)
            n++;
    if (n >= flap_threshold(r)) {
        a->flapping = 1;
        a->cycles = n;
        log_info("rules: alert %016llx flapping (%u cycles in %lld s): held firing",
                 (unsigned long long)a->fp, n, (long long)(window / 1000));
        return 1;
    }
    return 0;
}

static void set_flap_annotations(struct rules__alert *a)
{
    if (a->flapping) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%u", a->cycles);
        label_set(&a->ann, &a->nann, "flapping", "true");
        label_set(&a->ann, &a->nann, "flapping_cycles", buf);
    } else {
        label_del(a->ann, &a->nann, "flapping");
        label_del(a->ann, &a->nann, "flapping_cycles");
    }
}

/* Prometheus's /graph link for the rule's expression. */
static void generator_url(const struct rules *r, const char *expr, struct sbuf *out)
{
    sbuf_addf(out, "%s/graph?g0.expr=", r->external_url);
    for (const unsigned char *p = (const unsigned char *)expr; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            sbuf_addc(out, (char)*p);
        else
            sbuf_addf(out, "%%%02X", *p);
    }
    sbuf_adds(out, "&g0.tab=1");
}

/* ALERTS{..., alertstate} and ALERTS_FOR_STATE{...} samples of one alert. */
static void emit_alert_series(struct metric_buf *b, const struct rules__alert *a, int state,
                              double alerts_value, double for_value, int with_for)
{
    if (a->nlabels + 1 > METRIC_MAX_LABELS)
        return; /* the store could not hold it; the alert itself still works */
    struct metric_label l[METRIC_MAX_LABELS];
    for (size_t i = 0; i < a->nlabels; i++)
        l[i] = (struct metric_label){a->labels[i].name, a->labels[i].value};
    metric_fam(b, "ALERTS", "Alerts of sitrep's alerting rules.", METRIC_GAUGE);
    l[a->nlabels] =
        (struct metric_label){"alertstate", state == RULES_FIRING ? "firing" : "pending"};
    metric_add(b, alerts_value, a->nlabels + 1, l);
    if (with_for) {
        metric_fam(b, "ALERTS_FOR_STATE", "When each active alert became active, in unixtime.",
                   METRIC_GAUGE);
        metric_add(b, for_value, a->nlabels, l);
    }
}

/* Fail the rule: record the error (logged when it changes). */
static void rule_error(struct rules__rule *ru, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rule_error(struct rules__rule *ru, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ru->health != -1 || strcmp(msg, ru->last_error) != 0)
        log_warn("rules: rule %s: %s", ru->name, msg);
    ru->health = -1;
    snprintf(ru->last_error, sizeof(ru->last_error), "%s", msg);
}

/* The result as (labels, value) pairs: a scalar is one sample with no labels. */
struct sample_view {
    const struct metric_label *labels;
    size_t nlabels;
    double v;
};

/* One result sample made into an alert's identity and annotations, before the state machine. */
struct alert_prep {
    struct rules_label *ls, *ann; /* labels sorted, alertname included */
    size_t nls, nann;
    uint64_t fp;
    double v;
};

static size_t alert_cap(const struct rules__group *g)
{
    return g->limit ? g->limit : RULES_MAX_ALERTS_PER_RULE;
}

/*
 * Expand the rule's label and annotation templates for each of the n
 * samples. Runs without the engine's mutex, since templates may query the
 * store: it reads only what does not change while the evaluation thread
 * runs (the rule's text, which rules_update swaps with the thread stopped,
 * and r's copies of the options). Returns n entries (the caller frees them).
 */
static struct alert_prep *prepare_alerts(const struct rules *r, const struct rules__rule *ru,
                                         int64_t ts, int64_t timeout_ms,
                                         const struct sample_view *sv, size_t n)
{
    struct alert_prep *prep = xcalloc(n ? n : 1, sizeof(*prep));
    struct rules_tmpl_label ext[64];
    size_t next = r->o.nexternal < 64 ? r->o.nexternal : 64;
    for (size_t i = 0; i < next; i++)
        ext[i] = (struct rules_tmpl_label){r->external[i].name, r->external[i].value};
    struct rules__tmpl_query q = {.db = r->o.db,
                                  .ts = ts,
                                  .deadline_ns = util_mono_ns() + timeout_ms * 1000000,
                                  .budget_ms = timeout_ms};
    for (size_t s = 0; s < n; s++) {
        /* labels: the series' minus __name__, then the rule's (templated), then alertname */
        struct alert_prep *p = &prep[s];
        struct rules_tmpl_label tl[METRIC_MAX_LABELS * 2];
        size_t ntl = 0;
        for (size_t i = 0; i < sv[s].nlabels; i++) {
            if (strcmp(sv[s].labels[i].name, "__name__") == 0)
                continue;
            label_set(&p->ls, &p->nls, sv[s].labels[i].name, sv[s].labels[i].value);
            if (ntl < ARRAY_SIZE(tl))
                tl[ntl++] = (struct rules_tmpl_label){sv[s].labels[i].name, sv[s].labels[i].value};
        }
        struct rules_tmpl_data d = {.value = sv[s].v,
                                    .labels = tl,
                                    .nlabels = ntl,
                                    .external = ext,
                                    .nexternal = next,
                                    .external_url = r->external_url,
                                    .query = rules__tmpl_query,
                                    .query_ctx = &q};
        for (size_t i = 0; i < ru->nlabels; i++) {
            char *v = expand(ru->labels[i].value, &d);
            if (*v)
                label_set(&p->ls, &p->nls, ru->labels[i].name, v);
            else
                label_del(p->ls, &p->nls, ru->labels[i].name); /* an empty label is no label */
            free(v);
        }
        label_set(&p->ls, &p->nls, "alertname", ru->name);
        qsort(p->ls, p->nls, sizeof(*p->ls), label_cmp);
        p->fp = rules__labels_fp(p->ls, p->nls);
        for (size_t i = 0; i < ru->nann; i++) {
            char *v = expand(ru->ann[i].value, &d);
            label_set(&p->ann, &p->nann, ru->ann[i].name, v);
            free(v);
        }
        p->v = sv[s].v;
    }
    rules__tmpl_query_release(&q);
    return prep;
}

/*
 * The state machine over one evaluation's alerts: prep (n entries, from
 * prepare_alerts; taken over, NULL when n is over the limit) under the
 * engine's mutex.
 */
static void eval_alerting(struct rules *r, struct rules__group *g, struct rules__rule *ru,
                          int64_t ts, struct alert_prep *prep, size_t n, struct metric_buf *b)
{
    size_t cap = alert_cap(g);
    for (size_t i = 0; i < ru->nalerts; i++)
        ru->alerts[i]->present = 0;
    int over = n > cap || !prep;
    if (n > cap)
        rule_error(ru, "exceeded limit of %zu with %zu alerts", cap, n);
    for (size_t s = 0; !over && s < n; s++) {
        struct alert_prep *p = &prep[s];
        struct rules__alert *a = find_alert(ru, p->fp);
        if (a && a->present) {
            rule_error(ru, "vector contains metrics with the same labelset after applying alert "
                           "labels");
            over = 1;
            break;
        }
        if (!a) {
            a = xcalloc(1, sizeof(*a));
            a->fp = p->fp;
            ru->alerts = xrealloc(ru->alerts, (ru->nalerts + 1) * sizeof(*ru->alerts));
            ru->alerts[ru->nalerts++] = a;
        }
        rules__labels_free(a->labels, a->nlabels);
        rules__labels_free(a->ann, a->nann);
        a->labels = p->ls;
        a->nlabels = p->nls;
        a->ann = p->ann;
        a->nann = p->nann;
        p->ls = p->ann = NULL;
        p->nls = p->nann = 0;
        a->value = p->v;
        a->present = 1;
        if (a->state == RULES_INACTIVE && !a->flapping) {
            /* new, or resolved and back: a new occurrence */
            a->state = RULES_PENDING;
            a->active_at = ts;
            a->fired_at = a->resolved_at = a->keep_firing_since = 0;
            r->dirty = 1;
        }
    }
    if (over) /* Prometheus drops every alert of a rule over its limit */
        for (size_t i = 0; i < ru->nalerts; i++)
            ru->alerts[i]->present = 0;
    for (size_t s = 0; prep && s < n; s++) {
        rules__labels_free(prep[s].ls, prep[s].nls);
        rules__labels_free(prep[s].ann, prep[s].nann);
    }
    free(prep);

    int64_t quiet = opt_ms(r->o.flap_quiet_ms, 30 * 60000);
    int64_t retention = opt_ms(r->o.resolved_retention_ms, 15 * 60000);
    int64_t window = opt_ms(r->o.flap_window_ms, 3600000);
    for (size_t i = 0; i < ru->nalerts;) {
        struct rules__alert *a = ru->alerts[i];
        if (a->flapping && ts - a->last_cycle >= quiet) {
            a->flapping = 0; /* quiet long enough: judge it on its own again */
            a->cycles = 0;
            a->nresolves = 0;
            r->dirty = 1;
            log_info("rules: alert %s %016llx no longer flapping", ru->name,
                     (unsigned long long)a->fp);
        }
        int was_present = a->was_present;
        a->was_present = a->present;
        if (!a->present) {
            int keep = 0;
            if (a->state == RULES_FIRING && ru->keep_firing_for_ms > 0) {
                if (!a->keep_firing_since)
                    a->keep_firing_since = ts;
                keep = ts - a->keep_firing_since < ru->keep_firing_for_ms;
            }
            if (a->state == RULES_FIRING && !keep && a->flapping) {
                keep = 1; /* held while flapping; each absence after a presence is a cycle */
                if (was_present) {
                    a->cycles++;
                    a->last_cycle = ts;
                    r->dirty = 1;
                }
            } else if (a->state == RULES_FIRING && !keep && flap_on_resolve(r, a, ts)) {
                keep = 1;
                r->dirty = 1;
            }
            if (a->state == RULES_PENDING ||
                (a->state == RULES_INACTIVE && ts - a->resolved_at > retention &&
                 ts - a->resolved_at > window)) {
                if (a->state == RULES_PENDING && a->written)
                    emit_alert_series(b, a, a->written, stale_nan(), stale_nan(), 1);
                remove_alert(ru, i);
                r->dirty = 1;
                continue;
            }
            if (a->state != RULES_INACTIVE && !keep) {
                a->state = RULES_INACTIVE;
                a->resolved_at = ts;
                r->dirty = 1;
            }
        } else {
            a->keep_firing_since = 0;
            if (a->state == RULES_PENDING && ts - a->active_at >= ru->for_ms) {
                a->state = RULES_FIRING;
                a->fired_at = ts;
                r->dirty = 1;
            }
        }
        set_flap_annotations(a);
        /* series: stale markers for what is no longer true, then the current ones */
        if (a->written && a->written != a->state)
            emit_alert_series(b, a, a->written, stale_nan(), stale_nan(),
                              a->state == RULES_INACTIVE);
        if (a->state != RULES_INACTIVE)
            emit_alert_series(b, a, a->state, 1, (double)a->active_at / 1000.0, 1);
        a->written = a->state;
        i++;
    }
}

/* Hand the rule's alerts to notify, as Prometheus's sendAlerts does. */
static void send_alerts(struct rules *r, struct rules__rule *ru, int64_t ts)
{
    if (!r->o.notify)
        return;
    int64_t resend = opt_ms(r->o.resend_delay_ms, 60000);
    int64_t retention = opt_ms(r->o.resolved_retention_ms, 15 * 60000);
    struct sbuf url;
    sbuf_init(&url, 0);
    for (size_t i = 0; i < ru->nalerts; i++) {
        struct rules__alert *a = ru->alerts[i];
        if (a->state == RULES_PENDING)
            continue;
        if (a->state == RULES_INACTIVE && ts - a->resolved_at > retention)
            continue;
        int due = (a->state == RULES_INACTIVE && a->resolved_at > a->last_sent) ||
                  a->last_sent == 0 || a->last_sent + resend <= ts;
        if (!due)
            continue;
        if (!url.len) /* built for the first alert that is sent, most ticks none */
            generator_url(r, ru->expr_text, &url);
        struct notify_label ls[METRIC_MAX_LABELS * 2], an[64];
        size_t nls = a->nlabels < ARRAY_SIZE(ls) ? a->nlabels : ARRAY_SIZE(ls);
        size_t nan = a->nann < ARRAY_SIZE(an) ? a->nann : ARRAY_SIZE(an);
        for (size_t k = 0; k < nls; k++)
            ls[k] = (struct notify_label){a->labels[k].name, a->labels[k].value};
        for (size_t k = 0; k < nan; k++)
            an[k] = (struct notify_label){a->ann[k].name, a->ann[k].value};
        struct notify_alert na = {
            .labels = ls,
            .nlabels = nls,
            .annotations = an,
            .nannotations = nan,
            .starts_at_ms = a->fired_at ? a->fired_at : a->active_at,
            .ends_at_ms = a->state == RULES_INACTIVE ? a->resolved_at : 0,
            .generator_url = url.buf,
            .fingerprint = a->fp,
        };
        notify_submit(r->o.notify, &na, 1);
        a->last_sent = ts;
        r->notified++;
        r->dirty = 1;
    }
    sbuf_release(&url);
}

static void eval_recording(struct rules__group *g, struct rules__rule *ru,
                           const struct sample_view *sv, size_t n, struct metric_buf *b)
{
    size_t cap = g->limit ? g->limit : RULES_MAX_ALERTS_PER_RULE * 10;
    if (n > cap) {
        rule_error(ru, "exceeded limit of %zu with %zu series", cap, n);
        return;
    }
    metric_fam(b, ru->name, "", METRIC_UNTYPED);
    for (size_t s = 0; s < n; s++) {
        struct metric_label l[METRIC_MAX_LABELS];
        size_t nl = 0;
        for (size_t i = 0; i < sv[s].nlabels; i++) {
            if (strcmp(sv[s].labels[i].name, "__name__") == 0)
                continue;
            size_t k = 0;
            while (k < ru->nlabels && strcmp(ru->labels[k].name, sv[s].labels[i].name) != 0)
                k++;
            if (k < ru->nlabels)
                continue; /* the rule's label wins */
            if (nl == METRIC_MAX_LABELS)
                goto too_many;
            l[nl++] = sv[s].labels[i];
        }
        for (size_t k = 0; k < ru->nlabels; k++) {
            if (!*ru->labels[k].value)
                continue;
            if (nl == METRIC_MAX_LABELS)
                goto too_many;
            l[nl++] = (struct metric_label){ru->labels[k].name, ru->labels[k].value};
        }
        metric_add(b, sv[s].v, nl, l);
        continue;
    too_many:
        rule_error(ru, "a result series has more than %d labels", METRIC_MAX_LABELS);
    }
}

/* ---- staleness of recording rules' outputs ---- */

/* Bytes of n "name\0value\0" pairs starting at p. */
static size_t pairs_len(const char *p, uint32_t n)
{
    const char *q = p;
    for (uint32_t i = 0; i < 2 * n; i++)
        q += strlen(q) + 1;
    return (size_t)(q - p);
}

struct lkey {
    const char *p;
    size_t len;
};

static int lkey_cmp(const void *a, const void *b)
{
    const struct lkey *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Append a stale marker to b for every sample of `from` for which keep() is false. */
static void add_stale(struct metric_buf *b, const char *family, const struct metric_buf *from,
                      const struct lkey *keep, size_t nkeep)
{
    for (size_t j = 0; j < from->nsamples; j++) {
        const struct metric_sample *ms = &from->samples[j];
        const char *p = from->arena + ms->labels;
        struct lkey k = {p, pairs_len(p, ms->nlabels)};
        if (nkeep && bsearch(&k, keep, nkeep, sizeof(*keep), lkey_cmp))
            continue;
        struct metric_label l[METRIC_MAX_LABELS];
        size_t nl = 0;
        for (uint32_t i = 0; i < ms->nlabels && nl < METRIC_MAX_LABELS; i++) {
            l[nl].name = p;
            p += strlen(p) + 1;
            l[nl++].value = p;
            p += strlen(p) + 1;
        }
        if (!b->nfams)
            metric_fam(b, family, "", METRIC_UNTYPED);
        metric_add(b, stale_nan(), nl, l);
    }
}

/*
 * b holds recording rule ru's output of this evaluation: add stale markers
 * for the series of its previous output that are gone.
 */
static void stale_gone(struct rules__rule *ru, struct metric_buf *b)
{
    if (!ru->prev.nsamples)
        return;
    size_t n = b->nsamples;
    struct lkey *keys = xmalloc((n ? n : 1) * sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        const char *p = b->arena + b->samples[i].labels;
        keys[i] = (struct lkey){p, pairs_len(p, b->samples[i].nlabels)};
    }
    qsort(keys, n, sizeof(*keys), lkey_cmp);
    add_stale(b, ru->name, &ru->prev, keys, n);
    free(keys);
}

void rules__eval_group(struct rules *r, struct rules__group *g, int64_t ts)
{
    int64_t t0 = util_mono_ns();
    struct metric_buf b;
    metric_buf_init(&b);
    for (size_t i = 0; i < g->nrules; i++) {
        struct rules__rule *ru = &g->rules[i];
        int64_t r0 = util_mono_ns();
        struct query_result res;
        struct query_eval_error qerr;
        /* a query may not take longer than its group's interval (nor more than 30 s) */
        struct query_opts qo = {.timeout_ms = g->interval_ms < 30000 ? g->interval_ms : 30000};
        int rc = query_eval_instant(r->o.db, ru->expr, ru->expr_text, ts, &qo, &res, &qerr);
        size_t n = 0;
        struct sample_view *sv = NULL;
        struct alert_prep *prep = NULL;
        if (rc == 0) {
            n = res.type == QUERY_VALUE_SCALAR ? 1 : res.nseries;
            sv = xcalloc(n ? n : 1, sizeof(*sv));
            if (res.type == QUERY_VALUE_SCALAR)
                sv[0].v = res.scalar;
            else
                for (size_t k = 0; k < n; k++)
                    sv[k] = (struct sample_view){res.series[k].labels, res.series[k].nlabels,
                                                 res.series[k].npoints ? res.series[k].points[0].v
                                                                       : NAN};
            /* templates run before the lock: they may query the store */
            if (ru->alerting && n <= alert_cap(g))
                prep = prepare_alerts(r, ru, ts, qo.timeout_ms, sv, n);
        }
        metric_buf_reset(&b, ts);
        pthread_mutex_lock(&r->mu);
        r->evals++;
        if (rc < 0) {
            r->eval_failures++;
            rule_error(ru, "%s", qerr.msg);
        } else {
            ru->health = 1;
            ru->last_error[0] = '\0';
            if (ru->alerting)
                eval_alerting(r, g, ru, ts, prep, n, &b);
            else
                eval_recording(g, ru, sv, n, &b);
            free(sv);
            if (ru->alerting)
                send_alerts(r, ru, ts);
            query_result_release(&res);
        }
        ru->last_eval_ms = ts;
        ru->eval_seconds = (double)(util_mono_ns() - r0) / 1e9;
        pthread_mutex_unlock(&r->mu);
        struct metric_mark cur;
        int recorded = rc == 0 && !ru->alerting;
        if (recorded) {
            metric_buf_mark(&b, &cur);
            stale_gone(ru, &b);
        }
        /* appended per rule so later rules of the group see earlier ones' outputs */
        if (b.nsamples)
            tsdb_append_batch(r->o.db, "rules", &b, NULL);
        if (recorded) { /* this output, without the markers, is the next one's "previous" */
            metric_buf_rollback(&b, &cur);
            metric_buf_swap(&ru->prev, &b);
        }
    }
    metric_buf_release(&b);
    pthread_mutex_lock(&r->mu);
    g->last_eval_ms = ts;
    g->eval_seconds = (double)(util_mono_ns() - t0) / 1e9;
    pthread_mutex_unlock(&r->mu);
}

/* ---- lifecycle ---- */

struct rules *rules_new(const struct rules_opts *o, struct rules_set *set)
{
    struct rules *r = xcalloc(1, sizeof(*r));
    r->o = *o;
    if (o->nexternal) {
        r->external = xcalloc(o->nexternal, sizeof(*r->external));
        for (size_t i = 0; i < o->nexternal; i++) {
            r->external[i].name = xstrdup(o->external[i].name);
            r->external[i].value = xstrdup(o->external[i].value);
        }
    }
    r->o.external = r->external;
    r->external_url = xstrdup(o->external_url ? o->external_url : "");
    r->o.external_url = r->external_url;
    r->o.data_dir = NULL; /* not kept: the caller's string */
    if (o->data_dir) {
        size_t n = strlen(o->data_dir) + 32;
        r->state_path = xmalloc(n);
        snprintf(r->state_path, n, "%s/rules.state", o->data_dir);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->set = set ? set : xcalloc(1, sizeof(*r->set));
    rules__state_restore(r, r->set);
    return r;
}

/* The first evaluation time at or after now on the group's grid (whole intervals). */
static int64_t next_slot(int64_t now, int64_t interval)
{
    return (now / interval + 1) * interval;
}

int64_t rules_tick(struct rules *r)
{
    int64_t now = rules__now(r);
    int64_t wait = 1000;
    struct rules_set *set = r->set; /* only this thread (or rules_update under mu) swaps it */
    for (size_t i = 0; i < set->ngroups; i++) {
        struct rules__group *g = &set->groups[i];
        if (g->next_ms == 0)
            g->next_ms = now; /* evaluate at once after a start or reload */
        if (g->next_ms <= now) {
            rules__eval_group(r, g, now);
            g->next_ms = next_slot(now, g->interval_ms);
        }
        if (g->next_ms - now < wait)
            wait = g->next_ms - now;
    }
    pthread_mutex_lock(&r->mu);
    /* Saved on change, and every 10 s anyway: the file's time says until when the state
     * was known, which is what a restore subtracts from pending alerts' `for` progress. */
    int save = r->dirty || now - r->saved_ms >= 10000;
    r->dirty = 0;
    pthread_mutex_unlock(&r->mu);
    if (save) {
        rules__state_save(r);
        r->saved_ms = now;
    }
    return wait > 0 ? wait : 0;
}

static void *eval_thread(void *arg)
{
    struct rules *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        int64_t wait = rules_tick(r);
        pthread_mutex_lock(&r->mu);
        if (r->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (wait % 1000) * 1000000 + 1000000; /* +1 ms past the slot */
        ts.tv_sec += wait / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&r->cond, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int rules_start(struct rules *r)
{
    if (pthread_create(&r->thread, NULL, eval_thread, r) != 0)
        return log_error("rules: cannot start the evaluation thread: %s", strerror(errno));
    r->running = 1;
    log_info("rules: %zu groups, %zu rules", rules_set_groups(r->set), rules_set_rules(r->set));
    return 0;
}

void rules_stop(struct rules *r)
{
    if (!r || !r->running)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    r->running = 0;
    r->stop = 0;
    rules__state_save(r);
}

void rules_free(struct rules *r)
{
    if (!r)
        return;
    int was_running = r->running;
    rules_stop(r);
    if (!was_running) /* rules_stop saved otherwise */
        rules__state_save(r);
    rules_set_free(r->set);
    rules__labels_free(r->external, r->o.nexternal);
    free(r->external_url);
    free(r->state_path);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r);
}

static struct rules__rule *match_rule(struct rules_set *old, const struct rules__group *ng,
                                      const struct rules__rule *nr)
{
    for (size_t g = 0; g < old->ngroups; g++) {
        struct rules__group *og = &old->groups[g];
        if (strcmp(og->name, ng->name) != 0 || strcmp(og->file, ng->file) != 0)
            continue;
        for (size_t i = 0; i < og->nrules; i++) {
            struct rules__rule *orl = &og->rules[i];
            if (orl->alerting == nr->alerting && strcmp(orl->name, nr->name) == 0 &&
                strcmp(orl->expr_text, nr->expr_text) == 0 && orl->alerts)
                return orl;
        }
    }
    return NULL;
}

/*
 * A reload: a recording rule of the same group and name keeps the previous
 * output (so what it no longer returns still gets its stale marker); what a
 * removed or renamed rule wrote is marked stale now, as Prometheus does, so
 * it does not linger for the lookback. The evaluation thread is stopped.
 */
static void carry_recorded(struct rules *r, struct rules_set *old, struct rules_set *set)
{
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, rules__now(r));
    for (size_t g = 0; g < old->ngroups; g++) {
        struct rules__group *og = &old->groups[g];
        for (size_t i = 0; i < og->nrules; i++) {
            struct rules__rule *orl = &og->rules[i];
            if (orl->alerting || !orl->prev.nsamples)
                continue;
            struct rules__rule *nr = NULL;
            for (size_t ng = 0; ng < set->ngroups && !nr; ng++) {
                struct rules__group *sg = &set->groups[ng];
                if (strcmp(sg->name, og->name) != 0 || strcmp(sg->file, og->file) != 0)
                    continue;
                for (size_t k = 0; k < sg->nrules && !nr; k++)
                    if (!sg->rules[k].alerting && strcmp(sg->rules[k].name, orl->name) == 0 &&
                        !sg->rules[k].prev.nsamples)
                        nr = &sg->rules[k];
            }
            if (nr) {
                metric_buf_swap(&nr->prev, &orl->prev);
                continue;
            }
            b.nfams = 0; /* each rule its own family run */
            add_stale(&b, orl->name, &orl->prev, NULL, 0);
            if (b.nsamples)
                tsdb_append_batch(r->o.db, "rules", &b, NULL);
            metric_buf_reset(&b, b.ts_ms);
        }
    }
    metric_buf_release(&b);
}

void rules_update(struct rules *r, struct rules_set *set)
{
    if (!set)
        set = xcalloc(1, sizeof(*set));
    /* Stop the thread around the swap: an evaluation in flight uses the old set's trees. */
    int was_running = r->running;
    if (was_running) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        r->running = 0;
        r->stop = 0;
    }
    pthread_mutex_lock(&r->mu);
    struct rules_set *old = r->set;
    for (size_t g = 0; g < set->ngroups; g++)
        for (size_t i = 0; i < set->groups[g].nrules; i++) {
            struct rules__rule *nr = &set->groups[g].rules[i];
            struct rules__rule *orl = match_rule(old, &set->groups[g], nr);
            if (!orl)
                continue;
            nr->alerts = orl->alerts;
            nr->nalerts = orl->nalerts;
            orl->alerts = NULL;
            orl->nalerts = 0;
        }
    r->set = set;
    r->dirty = 1;
    pthread_mutex_unlock(&r->mu);
    carry_recorded(r, old, set);
    rules_set_free(old);
    log_info("rules: reloaded: %zu groups, %zu rules", rules_set_groups(set), rules_set_rules(set));
    if (was_running)
        rules_start(r);
}

int rules_save(struct rules *r)
{
    return rules__state_save(r);
}

void rules_expose(struct rules *r, struct metric_buf *b)
{
    pthread_mutex_lock(&r->mu);
    size_t n[3] = {0};
    for (size_t g = 0; g < r->set->ngroups; g++)
        for (size_t i = 0; i < r->set->groups[g].nrules; i++) {
            struct rules__rule *ru = &r->set->groups[g].rules[i];
            for (size_t k = 0; k < ru->nalerts; k++)
                n[ru->alerts[k]->state]++;
        }
    metric_fam(b, "sitrep_rule_evaluations_total", "Rule evaluations.", METRIC_COUNTER);
    metric_add0(b, (double)r->evals);
    metric_fam(b, "sitrep_rule_evaluation_failures_total", "Rule evaluations that failed.",
               METRIC_COUNTER);
    metric_add0(b, (double)r->eval_failures);
    metric_fam(b, "sitrep_rule_group_rules", "Rules loaded.", METRIC_GAUGE);
    metric_add0(b, (double)rules_set_rules(r->set));
    metric_fam(b, "sitrep_alerts", "Alerts of the alerting rules, by state.", METRIC_GAUGE);
    metric_add1(b, (double)n[RULES_PENDING], "state", "pending");
    metric_add1(b, (double)n[RULES_FIRING], "state", "firing");
    metric_add1(b, (double)n[RULES_INACTIVE], "state", "resolved");
    metric_fam(b, "sitrep_alerts_sent_total", "Alerts handed to the notification pipeline.",
               METRIC_COUNTER);
    metric_add0(b, (double)r->notified);
    pthread_mutex_unlock(&r->mu);
}
