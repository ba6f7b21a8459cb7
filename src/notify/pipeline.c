/*
 * pipeline.c: the heart of notification, following Alertmanager's
 * dispatcher and notification pipeline: alerts are merged by fingerprint,
 * routed into aggregation groups, and each group is flushed group_wait
 * after it appeared and every group_interval after that. A flush drops
 * inhibited and silenced alerts, asks the notification log whether the
 * receiver must hear about the group again (Alertmanager's DedupStage), and
 * queues the rendered message in the outbox. Delivery workers take due
 * outbox entries, one at a time per receiver and group so messages about a
 * group arrive in order, and retry failures with capped exponential backoff.
 */
#include "notify/notify_internal.h"
#include "metric/metric.h"
#include "util/banned.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROUTES_PER_ALERT 64
#define GC_EVERY_MS          10000

int64_t notify__now(const struct notify *n)
{
    return n->opts.now_ms ? n->opts.now_ms(n->opts.clock_ctx) : util_now_ms();
}

const char *notify__kind_name(enum notify_kind k)
{
    static const char *const names[] = {"webhook", "slack", "email", "alertmanager", "exec"};
    return (unsigned)k < ARRAY_SIZE(names) ? names[k] : "unknown";
}

/* ---- alerts ---- */

static void alert_free(struct notify__alert *a)
{
    notify__lset_free(&a->labels);
    notify__lset_free(&a->annotations);
    free(a->generator_url);
    free(a);
}

/* Alertmanager's AlertSlice order: by job, then instance, then the whole label set. */
static int lset_before(const struct notify__lset *a, const struct notify__lset *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c)
            return c;
        c = strcmp(a->v[i].value, b->v[i].value);
        if (c)
            return c;
    }
    return (a->n > b->n) - (a->n < b->n);
}

static int has_label(const struct notify__lset *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return 1;
    return 0;
}

static int alert_cmp(const void *x, const void *y)
{
    const struct notify__alert *a = *(const struct notify__alert *const *)x;
    const struct notify__alert *b = *(const struct notify__alert *const *)y;
    static const char *const keys[] = {"job", "instance"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        int ha = has_label(&a->labels, keys[i]), hb = has_label(&b->labels, keys[i]);
        if (!ha && !hb)
            continue;
        if (!ha)
            return 1;
        if (!hb)
            return -1;
        int c =
            strcmp(notify__lset_get(&a->labels, keys[i]), notify__lset_get(&b->labels, keys[i]));
        if (c)
            return c;
    }
    return lset_before(&a->labels, &b->labels);
}

/* ---- groups ---- */

static void group_free(struct notify *n, struct notify__group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        struct notify__alert *a = notify__map_get(&n->alerts, g->fps[i]);
        if (a && a->refs)
            a->refs--;
    }
    notify__lset_free(&g->labels);
    free(g->key);
    free(g->fps);
    free(g);
}

static void group_destroy(struct notify *n, struct notify__group *g)
{
    notify__map_del(&n->groups, g->id);
    n->ngroups--;
    group_free(n, g);
}

/* The group of route r for alert a, created if needed. NULL past max_groups. */
static struct notify__group *group_for(struct notify *n, const struct notify__route *r,
                                       const struct notify__alert *a, int64_t now)
{
    struct notify_label tmp[NOTIFY_MAX_LABELS];
    size_t nl = 0;
    for (size_t i = 0; i < a->labels.n; i++) {
        int take = r->group_by_all;
        for (size_t k = 0; !take && k < r->ngroup_by; k++)
            take = strcmp(r->group_by[k], a->labels.v[i].name) == 0;
        if (take)
            tmp[nl++] = a->labels.v[i];
    }
    uint64_t h = notify_fingerprint(tmp, nl);
    h = notify__fnv_add(h, &r->idx, sizeof(r->idx));
    if (!h)
        h = 1;
    struct notify__group *g = notify__map_get(&n->groups, h);
    if (g)
        return g;
    if (n->ngroups >= n->cfg.max_groups)
        return NULL;
    g = xcalloc(1, sizeof(*g));
    g->id = h;
    g->route = r;
    notify__lset_copy(&g->labels, tmp, nl);
    struct sbuf key;
    sbuf_init(&key, 0);
    sbuf_adds(&key, r->key);
    sbuf_addc(&key, ':');
    notify__lset_string(&key, &g->labels);
    g->key = notify__sbuf_take(&key);
    g->next_ms = now + r->group_wait_ms;
    /* An alert that started longer than group_wait ago has waited enough
     * (after a restart or a reload, say): flush at once, as Alertmanager does. */
    if (a->starts_ms + r->group_wait_ms < now)
        g->next_ms = now;
    notify__map_put(&n->groups, h, g);
    n->ngroups++;
    return g;
}

static void group_add(struct notify__group *g, struct notify__alert *a)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->fps[i] == a->fp)
            return;
    util_grow((void **)&g->fps, &g->cap, g->n + 1, sizeof(*g->fps));
    g->fps[g->n++] = a->fp;
    a->refs++;
}

/* Put a into the groups of every route it matches. 0, or -1 if a group was refused. */
static int route_alert(struct notify *n, struct notify__alert *a, int64_t now)
{
    const struct notify__route *routes[MAX_ROUTES_PER_ALERT];
    size_t nr = notify__routes_match(&n->routes, &a->labels, routes, ARRAY_SIZE(routes));
    if (nr > ARRAY_SIZE(routes))
        nr = ARRAY_SIZE(routes);
    int rc = 0;
    for (size_t i = 0; i < nr; i++) {
        struct notify__group *g = group_for(n, routes[i], a, now);
        if (!g) {
            rc = -1;
            continue;
        }
        group_add(g, a);
    }
    return rc;
}

/* ---- submit ---- */

static int labels_ok(const struct notify_label *v, size_t n, size_t *bytes)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].name || !v[i].name[0])
            return 0;
        *bytes += strlen(v[i].name) + (v[i].value ? strlen(v[i].value) : 0) + 2;
    }
    return 1;
}

enum { TAKEN = -1, REJ_INVALID, REJ_LIMIT, REJ_GROUPS };

/* Free a resolved alert no group holds, to make room. 1 if one was freed. */
static int evict_one(struct notify *n, int64_t now)
{
    for (size_t i = 0; i < n->alerts.cap; i++) {
        struct notify__alert *a = n->alerts.vals[i];
        if (a && !a->refs && notify__alert_resolved(a, now)) {
            notify__map_del(&n->alerts, a->fp);
            n->nalerts--;
            alert_free(a);
            return 1;
        }
    }
    return 0;
}

/* Take one alert: TAKEN, or why not. */
static int submit_one(struct notify *n, const struct notify_alert *in, int64_t now)
{
    size_t bytes = in->generator_url ? strlen(in->generator_url) : 0;
    if (!in->nlabels || in->nlabels > NOTIFY_MAX_LABELS || in->nannotations > NOTIFY_MAX_LABELS ||
        !labels_ok(in->labels, in->nlabels, &bytes) ||
        !labels_ok(in->annotations, in->nannotations, &bytes) || bytes > NOTIFY_MAX_ALERT_BYTES)
        return REJ_INVALID;
    struct notify__lset labels, ann;
    if (notify__lset_copy(&labels, in->labels, in->nlabels) < 0)
        return REJ_INVALID;
    if (notify__lset_copy(&ann, in->annotations, in->nannotations) < 0) {
        notify__lset_free(&labels);
        return REJ_INVALID;
    }
    uint64_t fp = in->fingerprint ? in->fingerprint : notify_fingerprint(in->labels, in->nlabels);
    if (!fp)
        fp = 1;
    int64_t starts = in->starts_at_ms ? in->starts_at_ms : now;
    struct notify__alert *a = notify__map_get(&n->alerts, fp);
    if (!a) {
        if (n->nalerts >= n->cfg.max_alerts && !evict_one(n, now)) {
            notify__lset_free(&labels);
            notify__lset_free(&ann);
            return REJ_LIMIT;
        }
        a = xcalloc(1, sizeof(*a));
        a->fp = fp;
        a->labels = labels;
        a->starts_ms = starts;
        notify__map_put(&n->alerts, fp, a);
        n->nalerts++;
    } else {
        notify__lset_free(&labels);
        /* A resolved alert firing again is a new occurrence; otherwise keep
         * the earliest start, as Alertmanager's merge does. */
        if (notify__alert_resolved(a, now) && !(in->ends_at_ms && in->ends_at_ms <= now))
            a->starts_ms = starts;
        else if (starts < a->starts_ms)
            a->starts_ms = starts;
    }
    notify__lset_free(&a->annotations);
    a->annotations = ann;
    free(a->generator_url);
    a->generator_url = in->generator_url ? xstrdup(in->generator_url) : NULL;
    if (in->ends_at_ms) {
        a->ends_ms = in->ends_at_ms;
        a->timeout = 0;
    } else {
        /* Firing with no end: it resolves by itself unless sent again in time. */
        a->ends_ms = now + n->cfg.resolve_timeout_ms;
        a->timeout = 1;
    }
    a->updated_ms = now;
    if (route_alert(n, a, now) < 0)
        return REJ_GROUPS;
    return TAKEN;
}

size_t notify_submit(struct notify *n, const struct notify_alert *alerts, size_t count)
{
    size_t taken = 0;
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    for (size_t i = 0; i < count; i++) {
        int rej = submit_one(n, &alerts[i], now);
        n->alerts_received++;
        if (rej == TAKEN) {
            taken++;
            continue;
        }
        if (!n->alerts_rejected[rej]++ || n->alerts_rejected[rej] % 1000 == 0)
            log_warn("notify: alert dropped (%s; %llu so far)",
                     rej == REJ_INVALID ? "invalid: no labels, duplicate names or over 32 KiB"
                     : rej == REJ_LIMIT ? "limits.max_alerts reached"
                                        : "limits.max_groups reached",
                     (unsigned long long)n->alerts_rejected[rej]);
        if (rej == REJ_GROUPS)
            taken++; /* kept and listed; only a group was refused */
    }
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
    return taken;
}

/* ---- muting ---- */

int notify__silenced(struct notify *n, const struct notify__lset *l, int64_t now, char *by)
{
    for (size_t i = 0; i < n->nsilences; i++) {
        const struct notify__silence *s = n->silences[i];
        if (notify__silence_state(s, now) != NOTIFY_SIL_ACTIVE)
            continue;
        if (notify__matchers_match(&s->matchers, l)) {
            if (by)
                memcpy(by, s->id, sizeof(s->id));
            return 1;
        }
    }
    return 0;
}

void notify__inhibit_cache(struct notify *n, int64_t now)
{
    notify__inhibit_uncache(n);
    if (!n->cfg.ninhibit)
        return;
    n->inh_rules = n->cfg.ninhibit;
    n->inh_src = xcalloc(n->inh_rules, sizeof(*n->inh_src));
    n->inh_nsrc = xcalloc(n->inh_rules, sizeof(*n->inh_nsrc));
    for (size_t r = 0; r < n->cfg.ninhibit; r++) {
        size_t cap = 0;
        for (size_t i = 0; i < n->alerts.cap; i++) {
            const struct notify__alert *s = n->alerts.vals[i];
            if (!s || notify__alert_resolved(s, now) ||
                !notify__matchers_match(&n->cfg.inhibit[r].source, &s->labels))
                continue;
            util_grow((void **)&n->inh_src[r], &cap, n->inh_nsrc[r] + 1, sizeof(*n->inh_src[r]));
            n->inh_src[r][n->inh_nsrc[r]++] = s;
        }
    }
    n->inh_cached = 1;
}

void notify__inhibit_uncache(struct notify *n)
{
    for (size_t r = 0; n->inh_src && r < n->inh_rules; r++)
        free(n->inh_src[r]);
    free(n->inh_src);
    free(n->inh_nsrc);
    n->inh_src = NULL;
    n->inh_nsrc = NULL;
    n->inh_cached = 0;
    n->inh_rules = 0;
}

/* Does source alert s mute l under rule? */
static int inhibits(const struct notify_inhibit_rule *rule, const struct notify__alert *s,
                    const struct notify__lset *l, int both)
{
    /* An alert matching both sides cannot be muted by another such alert. */
    if (both && notify__matchers_match(&rule->target, &s->labels))
        return 0;
    for (size_t k = 0; k < rule->nequal; k++)
        if (strcmp(notify__lset_get(l, rule->equal[k]),
                   notify__lset_get(&s->labels, rule->equal[k])) != 0)
            return 0;
    return 1;
}

int notify__inhibited(struct notify *n, const struct notify__lset *l, int64_t now, uint64_t *by)
{
    for (size_t r = 0; r < n->cfg.ninhibit; r++) {
        const struct notify_inhibit_rule *rule = &n->cfg.inhibit[r];
        if (!notify__matchers_match(&rule->target, l))
            continue;
        int both = notify__matchers_match(&rule->source, l);
        if (n->inh_cached) {
            /* The firing source alerts of each rule, listed once per flush round. */
            for (size_t i = 0; i < n->inh_nsrc[r]; i++)
                if (inhibits(rule, n->inh_src[r][i], l, both)) {
                    if (by)
                        *by = n->inh_src[r][i]->fp;
                    return 1;
                }
            continue;
        }
        for (size_t i = 0; i < n->alerts.cap; i++) {
            const struct notify__alert *s = n->alerts.vals[i];
            if (!s || notify__alert_resolved(s, now) ||
                !notify__matchers_match(&rule->source, &s->labels) || !inhibits(rule, s, l, both))
                continue;
            if (by)
                *by = s->fp;
            return 1;
        }
    }
    return 0;
}

/* ---- notification log ---- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = notify__fnv_add(notify__fnv_init(), s, strlen(s));
    return h ? h : 1;
}

static char *nflog_key(const char *receiver, size_t idx, const char *group_key)
{
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_addf(&b, "%s\x1f%zu\x1f%s", receiver, idx, group_key);
    return notify__sbuf_take(&b);
}

static void nflog_free(struct notify__nflog *e)
{
    free(e->key);
    free(e->firing);
    free(e->resolved);
    free(e);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int subset(const uint64_t *sub, size_t nsub, const uint64_t *set, size_t nset)
{
    for (size_t i = 0; i < nsub; i++)
        if (!bsearch(&sub[i], set, nset, sizeof(*set), u64_cmp))
            return 0;
    return 1;
}

int notify__needs_update(const struct notify__nflog *entry, const uint64_t *firing, size_t nf,
                         const uint64_t *resolved, size_t nr, int send_resolved,
                         long long repeat_ms, int64_t now)
{
    if (!entry)
        return nf > 0; /* first notification, unless there is only resolved news */
    if (!subset(firing, nf, entry->firing, entry->nfiring))
        return 1; /* new alerts in the group */
    if (nf == 0)
        /* All resolved: tell a receiver that heard of firing alerts (whatever
         * send_resolved says, to clear the log); alerts that fired and
         * resolved between two flushes are news to no one. */
        return entry->nfiring > 0;
    if (send_resolved && !subset(resolved, nr, entry->resolved, entry->nresolved))
        return 1;
    return entry->ts_ms < now - repeat_ms;
}

static void nflog_put(struct notify *n, const char *key, const uint64_t *firing, size_t nf,
                      const uint64_t *resolved, size_t nr, int64_t now, long long repeat_ms)
{
    uint64_t h = str_hash(key);
    struct notify__nflog *e = notify__map_get(&n->nflog_idx, h);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        notify__map_put(&n->nflog_idx, h, e);
        n->nnflog++;
    }
    free(e->firing);
    free(e->resolved);
    e->firing = xmalloc((nf ? nf : 1) * sizeof(uint64_t));
    e->resolved = xmalloc((nr ? nr : 1) * sizeof(uint64_t));
    if (nf)
        memcpy(e->firing, firing, nf * sizeof(uint64_t));
    if (nr)
        memcpy(e->resolved, resolved, nr * sizeof(uint64_t));
    e->nfiring = nf;
    e->nresolved = nr;
    e->ts_ms = now;
    /* Kept at least as long as it decides a repeat. */
    long long keep = n->cfg.silence_retention_ms;
    if (keep < 2 * repeat_ms)
        keep = 2 * repeat_ms;
    e->expires_ms = now + keep;
    if (n->db && notify__store_nflog_put(n->db, e) < 0)
        n->db_errors++;
}

/* ---- outbox ---- */

struct notify__counter *notify__counter(struct notify *n, const char *receiver, unsigned index,
                                        enum notify_kind kind)
{
    for (size_t i = 0; i < n->ncounters; i++)
        if (n->counters[i].index == index && n->counters[i].kind == kind &&
            strcmp(n->counters[i].receiver, receiver) == 0)
            return &n->counters[i];
    n->counters = xrealloc(n->counters, (n->ncounters + 1) * sizeof(*n->counters));
    struct notify__counter *c = &n->counters[n->ncounters++];
    memset(c, 0, sizeof(*c));
    c->receiver = xstrdup(receiver);
    c->index = index;
    c->kind = kind;
    return c;
}

static void entry_free(struct notify__entry *e)
{
    free(e->receiver);
    free(e->group_key);
    free(e->body);
    free(e);
}

static void outbox_remove_at(struct notify *n, size_t i)
{
    struct notify__entry *e = n->outbox[i];
    if (n->db && notify__store_outbox_del(n->db, e->id) < 0)
        n->db_errors++;
    memmove(&n->outbox[i], &n->outbox[i + 1], (n->noutbox - i - 1) * sizeof(*n->outbox));
    n->noutbox--;
    entry_free(e);
}

static void outbox_append(struct notify *n, struct notify__entry *e)
{
    e->order_key = notify__fnv_add(str_hash(e->receiver), &e->index, sizeof(e->index));
    e->order_key = notify__fnv_add(e->order_key, e->group_key, strlen(e->group_key));
    if (!e->order_key)
        e->order_key = 1;
    util_grow((void **)&n->outbox, &n->outbox_cap, n->noutbox + 1, sizeof(*n->outbox));
    n->outbox[n->noutbox++] = e;
}

/* Queue a rendered message. 0, or -1 if the database refused it. */
static int enqueue(struct notify *n, const char *receiver, size_t idx, enum notify_kind kind,
                   const char *group_key, int firing, const struct sbuf *body, int64_t now)
{
    /* Bounded: past the cap the oldest entry not being sent goes. */
    while (n->noutbox >= n->cfg.outbox_max) {
        size_t i = 0;
        while (i < n->noutbox && n->outbox[i]->in_flight)
            i++;
        if (i == n->noutbox)
            break;
        struct notify__entry *old = n->outbox[i];
        notify__counter(n, old->receiver, old->index, old->kind)->n[NOTIFY_OUT_DROPPED]++;
        n->outbox_dropped++;
        log_warn("notify: outbox full (%u entries): dropped the oldest, a %s notification to "
                 "%s queued %llds ago",
                 n->cfg.outbox_max, old->status, old->receiver,
                 (long long)((now - old->created_ms) / 1000));
        outbox_remove_at(n, i);
    }
    struct notify__entry *e = xcalloc(1, sizeof(*e));
    e->receiver = xstrdup(receiver);
    e->index = (unsigned)idx;
    e->kind = kind;
    e->group_key = xstrdup(group_key);
    snprintf(e->status, sizeof(e->status), "%s", firing ? "firing" : "resolved");
    e->created_ms = e->next_ms = now;
    if (n->db) {
        if (notify__store_outbox_add(n->db, e, body->buf, body->len) < 0) {
            n->db_errors++;
            entry_free(e);
            return -1;
        }
    } else {
        e->id = ++n->next_id;
        e->body = xstrndup(body->buf, body->len);
        e->body_len = body->len;
    }
    outbox_append(n, e);
    return 0;
}

/* ---- flush ---- */

/* Flush one group (under mu). Alertmanager's aggrGroup.flush and the stages behind it. */
static void flush_group(struct notify *n, struct notify__group *g, int64_t now)
{
    const struct notify__route *r = g->route;
    g->next_ms = now + r->group_interval_ms;
    n->flushes++;
    struct notify__alert **all = xmalloc((g->n ? g->n : 1) * sizeof(*all));
    const struct notify__alert **live = xmalloc((g->n ? g->n : 1) * sizeof(*live));
    const struct notify__alert **send = xmalloc((g->n ? g->n : 1) * sizeof(*send));
    uint64_t *firing = xmalloc((g->n ? g->n : 1) * sizeof(*firing));
    uint64_t *resolved = xmalloc((g->n ? g->n : 1) * sizeof(*resolved));
    size_t nall = 0, nlive = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct notify__alert *a = notify__map_get(&n->alerts, g->fps[i]);
        if (a)
            all[nall++] = a;
    }
    qsort(all, nall, sizeof(*all), alert_cmp);
    for (size_t i = 0; i < nall; i++)
        if (!notify__inhibited(n, &all[i]->labels, now, NULL) &&
            !notify__silenced(n, &all[i]->labels, now, NULL))
            live[nlive++] = all[i];
    size_t nf = 0, nr = 0;
    for (size_t i = 0; i < nlive; i++) {
        if (notify__alert_resolved(live[i], now))
            resolved[nr++] = live[i]->fp;
        else
            firing[nf++] = live[i]->fp;
    }
    qsort(firing, nf, sizeof(*firing), u64_cmp);
    qsort(resolved, nr, sizeof(*resolved), u64_cmp);

    int ok = 1;
    const struct notify_receiver *recv = r->receiver;
    struct sbuf body;
    sbuf_init(&body, NOTIFY_MAX_PAYLOAD);
    for (size_t i = 0; nlive && recv && i < recv->n; i++) {
        const struct notify_integration *it = &recv->v[i];
        size_t nsend = 0;
        char *key = NULL;
        if (it->kind != NOTIFY_ALERTMANAGER) {
            key = nflog_key(recv->name, i, g->key);
            const struct notify__nflog *entry = notify__map_get(&n->nflog_idx, str_hash(key));
            if (!notify__needs_update(entry, firing, nf, resolved, nr, it->send_resolved,
                                      r->repeat_interval_ms, now)) {
                free(key);
                continue;
            }
        }
        /* A forward (no log) is a resend, like Prometheus's every minute: the
         * Alertmanager dedups, and needs fresh endsAt to keep alerts open. */
        for (size_t k = 0; k < nlive; k++)
            if (it->send_resolved || !notify__alert_resolved(live[k], now))
                send[nsend++] = live[k];
        int queued = 1;
        if (nsend) {
            struct notify__msg m = {.receiver = recv->name,
                                    .group_key = g->key,
                                    .group_labels = &g->labels,
                                    .alerts = send,
                                    .nalerts = nsend,
                                    .now = now,
                                    .external_url = n->external_url,
                                    .group_interval_ms = r->group_interval_ms};
            int any_firing = 0;
            for (size_t k = 0; k < nsend; k++)
                any_firing |= !notify__alert_resolved(send[k], now);
            sbuf_reset(&body);
            if (notify__render(&body, &m, it) < 0)
                /* It would not fit next time either: logged, and counted as told. */
                log_error("notify: %s: notification for %s larger than %d bytes; not sent",
                          recv->name, g->key, NOTIFY_MAX_PAYLOAD);
            else if (enqueue(n, recv->name, i, it->kind, g->key, any_firing, &body, now) < 0)
                queued = 0;
        }
        /* The log says "told" only once the message is safely queued; else the
         * next flush tries again. Empty sends (send_resolved: false) are logged too. */
        if (key && queued)
            nflog_put(n, key, firing, nf, resolved, nr, now, r->repeat_interval_ms);
        if (!queued)
            ok = 0;
        free(key);
    }
    sbuf_release(&body);

    if (ok) {
        /* Resolved alerts have been told: they leave the group (and the group
         * goes once empty). One that fires again comes back with its next submit. */
        size_t w = 0;
        for (size_t i = 0; i < g->n; i++) {
            struct notify__alert *a = notify__map_get(&n->alerts, g->fps[i]);
            if (a && notify__alert_resolved(a, now)) {
                a->refs--;
                continue;
            }
            if (a)
                g->fps[w++] = g->fps[i];
        }
        g->n = w;
    }
    free(all);
    free(live);
    free(send);
    free(firing);
    free(resolved);
    if (!g->n)
        group_destroy(n, g);
}

static void gc(struct notify *n, int64_t now)
{
    n->last_gc_ms = now;
    for (size_t i = 0; i < n->alerts.cap; i++) {
        struct notify__alert *a = n->alerts.vals[i];
        if (a && !a->refs && notify__alert_resolved(a, now)) {
            notify__map_del(&n->alerts, a->fp);
            n->nalerts--;
            alert_free(a);
            i--; /* the slot may hold a moved entry now */
        }
    }
    for (size_t i = 0; i < n->nflog_idx.cap; i++) {
        struct notify__nflog *e = n->nflog_idx.vals[i];
        if (e && e->expires_ms <= now) {
            if (n->db && notify__store_nflog_del(n->db, e->key) < 0)
                n->db_errors++;
            notify__map_del(&n->nflog_idx, n->nflog_idx.keys[i]);
            n->nnflog--;
            nflog_free(e);
            i--;
        }
    }
    notify__silences_gc(n, now);
}

/* Flush the due groups (under mu). Returns the time the next group is due. */
static int64_t run_timers(struct notify *n, int64_t now)
{
    int64_t next = now + 1000;
    struct notify__group **due = NULL;
    size_t ndue = 0, cap = 0;
    for (size_t i = 0; i < n->groups.cap; i++) {
        struct notify__group *g = n->groups.vals[i];
        if (!g)
            continue;
        if (g->next_ms <= now) {
            util_grow((void **)&due, &cap, ndue + 1, sizeof(*due));
            due[ndue++] = g;
        } else if (g->next_ms < next) {
            next = g->next_ms;
        }
    }
    if (ndue && n->db && notify__store_begin(n->db) < 0)
        n->db_errors++;
    if (ndue)
        notify__inhibit_cache(n, now); /* flushes change no alert: one list serves all */
    for (size_t i = 0; i < ndue; i++)
        flush_group(n, due[i], now);
    notify__inhibit_uncache(n);
    if (ndue && n->db && notify__store_commit(n->db) < 0)
        n->db_errors++;
    free(due);
    /* A flush may have kept a group (its next flush a group_interval away). */
    if (now - n->last_gc_ms >= GC_EVERY_MS)
        gc(n, now);
    return next;
}

/* ---- delivery ---- */

static const struct notify_integration *find_integration(const struct notify_config *cfg,
                                                         const char *receiver, unsigned idx,
                                                         enum notify_kind kind)
{
    for (size_t i = 0; i < cfg->nreceivers; i++)
        if (strcmp(cfg->receivers[i].name, receiver) == 0)
            return idx < cfg->receivers[i].n && cfg->receivers[i].v[idx].kind == kind
                       ? &cfg->receivers[i].v[idx]
                       : NULL;
    return NULL;
}

static long long backoff_ms(const struct notify *n, unsigned attempts)
{
    long long d = n->cfg.retry_initial_ms;
    for (unsigned i = 1; i < attempts && d < n->cfg.retry_max_ms; i++)
        d *= 2;
    return d < n->cfg.retry_max_ms ? d : n->cfg.retry_max_ms;
}

/*
 * The next entry to send (under mu): the oldest entry of its receiver and
 * group that is not in flight and is due. *next_due gets the earliest time
 * a waiting entry falls due. Drops entries whose integration left the
 * config.
 */
static struct notify__entry *pick(struct notify *n, int64_t now, int64_t *next_due)
{
    struct notify__map seen = {0};
    struct notify__entry *found = NULL;
    for (size_t i = 0; i < n->noutbox; i++) {
        struct notify__entry *e = n->outbox[i];
        if (notify__map_get(&seen, e->order_key))
            continue;
        notify__map_put(&seen, e->order_key, e);
        if (e->in_flight)
            continue;
        if (!find_integration(&n->cfg, e->receiver, e->index, e->kind)) {
            log_warn("notify: dropped a notification to %s (%s[%u]): no longer in the config",
                     e->receiver, notify__kind_name(e->kind), e->index);
            notify__counter(n, e->receiver, e->index, e->kind)->n[NOTIFY_OUT_DROPPED]++;
            outbox_remove_at(n, i);
            i--;
            continue;
        }
        if (e->next_ms <= now) {
            found = e;
            break;
        }
        if (e->next_ms < *next_due)
            *next_due = e->next_ms;
    }
    notify__map_release(&seen);
    return found;
}

/* 1 if an exec integration may run now (and records the run). Under mu. */
static int exec_allowed(struct notify__counter *c, const struct notify_integration *it, int64_t now)
{
    size_t cap = it->max_per_hour;
    if (!c->runs || c->nruns > cap) {
        free(c->runs);
        c->runs = xcalloc(cap, sizeof(*c->runs));
        c->nruns = 0;
        c->runs_head = 0;
    }
    size_t live = 0;
    for (size_t i = 0; i < c->nruns; i++)
        live += c->runs[i] > now - 3600000;
    if (live >= cap)
        return 0;
    /* Overwrite the oldest slot (ring). */
    if (c->nruns < cap) {
        c->runs[c->nruns++] = now;
    } else {
        c->runs[c->runs_head] = now;
        c->runs_head = (c->runs_head + 1) % cap;
    }
    return 1;
}

static void retire_configs(struct notify *n)
{
    if (n->inflight)
        return;
    for (size_t i = 0; i < n->nretired; i++) {
        notify_config_release(n->retired[i]);
        free(n->retired[i]);
    }
    free(n->retired);
    n->retired = NULL;
    n->nretired = 0;
}

/* Make one delivery attempt if one is due. Called without mu. 1 if it did. */
static int deliver_one(struct notify *n, int64_t *next_due)
{
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    struct notify__entry *e = pick(n, now, next_due);
    if (!e) {
        pthread_mutex_unlock(&n->mu);
        return 0;
    }
    const struct notify_integration *it = find_integration(&n->cfg, e->receiver, e->index, e->kind);
    struct notify__counter *c = notify__counter(n, e->receiver, e->index, e->kind);
    if (it->kind == NOTIFY_EXEC && !exec_allowed(c, it, now)) {
        c->n[NOTIFY_OUT_RATE_LIMITED]++;
        log_warn("notify: %s: exec ran %u times in the last hour (max_per_hour); the %s "
                 "notification for %s is dropped",
                 e->receiver, it->max_per_hour, e->status, e->group_key);
        for (size_t i = 0; i < n->noutbox; i++)
            if (n->outbox[i] == e) {
                outbox_remove_at(n, i);
                break;
            }
        pthread_mutex_unlock(&n->mu);
        return 1;
    }
    size_t len = e->body_len;
    char *body = n->db ? notify__store_outbox_body(n->db, e->id, &len) : xstrndup(e->body, len);
    if (!body) {
        n->db_errors++;
        body = xstrdup("");
        len = 0;
    }
    e->in_flight = 1;
    n->inflight++;
    struct notify_delivery d = {.receiver = e->receiver,
                                .integration = it,
                                .index = e->index,
                                .body = body,
                                .body_len = len,
                                .status = e->status,
                                .group_key = e->group_key,
                                .attempt = e->attempts + 1};
    notify_transport send = n->opts.transport ? n->opts.transport : notify__send;
    void *sctx = n->opts.transport ? n->opts.transport_ctx : NULL;
    pthread_mutex_unlock(&n->mu);

    /* e, it and the strings d points to stay valid: e is in flight (no one
     * removes it), and a reload retires the old config until inflight is 0. */
    char err[512] = "";
    enum notify_result res = send(sctx, &d, err, sizeof(err));
    free(body);

    pthread_mutex_lock(&n->mu);
    now = notify__now(n);
    e->in_flight = 0;
    n->inflight--;
    e->attempts++;
    size_t pos = 0;
    while (pos < n->noutbox && n->outbox[pos] != e)
        pos++;
    if (pos == n->noutbox) { /* cannot happen: nothing removes an entry in flight */
        log_error("notify: lost track of an outbox entry in flight");
        retire_configs(n);
        pthread_mutex_unlock(&n->mu);
        return 1;
    }
    c = notify__counter(n, e->receiver, e->index, e->kind);
    if (res == NOTIFY_SENT) {
        c->n[NOTIFY_OUT_SUCCESS]++;
        if (e->attempts > 1)
            log_info("notify: %s (%s): delivered the %s notification for %s after %u attempts",
                     e->receiver, notify__kind_name(e->kind), e->status, e->group_key, e->attempts);
        outbox_remove_at(n, pos);
    } else if (res == NOTIFY_REJECTED) {
        c->n[NOTIFY_OUT_REJECTED]++;
        log_error("notify: %s (%s): the %s notification for %s was rejected, not retried: %s",
                  e->receiver, notify__kind_name(e->kind), e->status, e->group_key, err);
        outbox_remove_at(n, pos);
    } else if (now - e->created_ms >= n->cfg.give_up_after_ms) {
        c->n[NOTIFY_OUT_RETRY]++;
        c->n[NOTIFY_OUT_EXPIRED]++;
        log_error("notify: %s (%s): gave up on the %s notification for %s after %u attempts "
                  "(outbox.give_up_after): %s",
                  e->receiver, notify__kind_name(e->kind), e->status, e->group_key, e->attempts,
                  err);
        outbox_remove_at(n, pos);
    } else {
        c->n[NOTIFY_OUT_RETRY]++;
        e->next_ms = now + backoff_ms(n, e->attempts);
        /* Once per failure streak at warn; the rest at debug. */
        if (e->attempts == 1)
            log_warn("notify: %s (%s): sending failed, will retry with backoff: %s", e->receiver,
                     notify__kind_name(e->kind), err);
        else
            log_debug("notify: %s (%s): attempt %u failed: %s", e->receiver,
                      notify__kind_name(e->kind), e->attempts, err);
        if (n->db && notify__store_outbox_update(n->db, e) < 0)
            n->db_errors++;
    }
    retire_configs(n);
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
    return 1;
}

int64_t notify_tick(struct notify *n)
{
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    int64_t next = run_timers(n, now);
    pthread_mutex_unlock(&n->mu);
    while (deliver_one(n, &next))
        ;
    int64_t wait = next - now;
    return wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
}

/* ---- threads ---- */

static void timed_wait(struct notify *n, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 1)
        ms = 1;
    if (ms > 1000)
        ms = 1000;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&n->wake, &n->mu, &ts);
}

static void *timer_main(void *arg)
{
    struct notify *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stopping) {
        int64_t now = notify__now(n);
        int64_t next = run_timers(n, now);
        pthread_cond_broadcast(&n->wake); /* flushes may have queued work */
        timed_wait(n, next - now);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct notify *n = arg;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        int stop = n->stopping;
        pthread_mutex_unlock(&n->mu);
        if (stop)
            break;
        int64_t next = notify__now(n) + 1000;
        if (deliver_one(n, &next))
            continue;
        pthread_mutex_lock(&n->mu);
        if (!n->stopping)
            timed_wait(n, next - notify__now(n));
        pthread_mutex_unlock(&n->mu);
    }
    return NULL;
}

int notify_start(struct notify *n)
{
    pthread_mutex_lock(&n->mu);
    int running = n->running;
    n->stopping = 0;
    pthread_mutex_unlock(&n->mu);
    if (running)
        return 0;
    int nw = n->opts.workers > 0 ? n->opts.workers : 2;
    n->workers = xcalloc((size_t)nw, sizeof(*n->workers));
    if (pthread_create(&n->timer_thread, NULL, timer_main, n) != 0)
        return log_error("notify: cannot start the timer thread");
    n->running = 1;
    for (int i = 0; i < nw; i++) {
        if (pthread_create(&n->workers[i], NULL, worker_main, n) != 0) {
            log_error("notify: cannot start delivery worker %d", i);
            break;
        }
        n->nworkers++;
    }
    return 0;
}

void notify_stop(struct notify *n)
{
    if (!n || !n->running)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->timer_thread, NULL);
    for (int i = 0; i < n->nworkers; i++)
        pthread_join(n->workers[i], NULL);
    free(n->workers);
    n->workers = NULL;
    n->nworkers = 0;
    n->running = 0;
}

/* ---- lifecycle ---- */

static void load_entry(void *ctx, struct notify__entry *e)
{
    outbox_append(ctx, e);
}

static void load_silence(void *ctx, struct notify__silence *s)
{
    struct notify *n = ctx;
    n->silences = xrealloc(n->silences, (n->nsilences + 1) * sizeof(*n->silences));
    n->silences[n->nsilences++] = s;
}

static void load_nflog(void *ctx, struct notify__nflog *e)
{
    struct notify *n = ctx;
    uint64_t h = str_hash(e->key);
    struct notify__nflog *old = notify__map_get(&n->nflog_idx, h);
    if (old) { /* a hash collision between keys: keep one, the other re-notifies once */
        nflog_free(e);
        return;
    }
    qsort(e->firing, e->nfiring, sizeof(uint64_t), u64_cmp);
    qsort(e->resolved, e->nresolved, sizeof(uint64_t), u64_cmp);
    notify__map_put(&n->nflog_idx, h, e);
    n->nnflog++;
}

struct notify *notify_new(const struct notify_opts *o, struct notify_config *cfg)
{
    struct notify *n = xcalloc(1, sizeof(*n));
    n->opts = *o;
    n->opts.data_dir = NULL; /* not kept: the caller's string */
    n->opts.external_url = NULL;
    n->external_url = xstrdup(o->external_url ? o->external_url : "");
    n->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->wake, &ca);
    pthread_condattr_destroy(&ca);
    notify__routes_build(&n->routes, &n->cfg);
    n->last_gc_ms = notify__now(n);
    if (o->data_dir) {
        if (!(n->db = notify__store_open(o->data_dir)) ||
            notify__store_silence_load(n->db, load_silence, n) < 0 ||
            notify__store_nflog_load(n->db, load_nflog, n) < 0 ||
            notify__store_outbox_load(n->db, load_entry, n) < 0) {
            notify_free(n);
            return NULL;
        }
        if (n->noutbox)
            log_info("notify: %zu pending notifications from before the restart", n->noutbox);
    }
    if (!o->transport && notify__send_init() < 0) {
        notify_free(n);
        return NULL;
    }
    return n;
}

void notify_set_config(struct notify *n, struct notify_config *cfg)
{
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    /* Groups point into the old route tree: drop them and regroup every
     * alert under the new one. The notification log keeps receivers from
     * hearing about unchanged groups again. */
    for (size_t i = 0; i < n->groups.cap; i++)
        if (n->groups.vals[i])
            group_free(n, n->groups.vals[i]);
    notify__map_release(&n->groups);
    n->ngroups = 0;
    notify__routes_free(&n->routes);
    notify__inhibit_uncache(n);
    struct notify_config *old = xmalloc(sizeof(*old));
    *old = n->cfg;
    n->retired = xrealloc(n->retired, (n->nretired + 1) * sizeof(*n->retired));
    n->retired[n->nretired++] = old;
    n->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));
    notify__routes_build(&n->routes, &n->cfg);
    for (size_t i = 0; i < n->alerts.cap; i++) {
        struct notify__alert *a = n->alerts.vals[i];
        if (a) {
            a->refs = 0;
            route_alert(n, a, now);
        }
    }
    retire_configs(n);
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    notify_stop(n);
    for (size_t i = 0; i < n->groups.cap; i++)
        if (n->groups.vals[i])
            group_free(n, n->groups.vals[i]);
    notify__map_release(&n->groups);
    for (size_t i = 0; i < n->alerts.cap; i++)
        if (n->alerts.vals[i])
            alert_free(n->alerts.vals[i]);
    notify__map_release(&n->alerts);
    for (size_t i = 0; i < n->nflog_idx.cap; i++)
        if (n->nflog_idx.vals[i])
            nflog_free(n->nflog_idx.vals[i]);
    notify__map_release(&n->nflog_idx);
    for (size_t i = 0; i < n->nsilences; i++)
        notify__silence_free(n->silences[i]);
    free(n->silences);
    for (size_t i = 0; i < n->noutbox; i++)
        entry_free(n->outbox[i]);
    free(n->outbox);
    for (size_t i = 0; i < n->ncounters; i++) {
        free(n->counters[i].receiver);
        free(n->counters[i].runs);
    }
    free(n->counters);
    notify__routes_free(&n->routes);
    notify__inhibit_uncache(n);
    n->inflight = 0;
    retire_configs(n);
    notify_config_release(&n->cfg);
    notify__store_close(n->db);
    free(n->external_url);
    pthread_cond_destroy(&n->wake);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

/* ---- self-metrics ---- */

void notify_expose(struct notify *n, struct metric_buf *b)
{
    static const char *const outcomes[NOTIFY_OUT_N] = {"success", "retry",        "rejected",
                                                       "expired", "rate_limited", "dropped"};
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    metric_fam(b, "sitrep_notifications_total",
               "Notification delivery attempts and drops, by receiver, integration and outcome.",
               METRIC_COUNTER);
    for (size_t i = 0; i < n->ncounters; i++) {
        const struct notify__counter *c = &n->counters[i];
        char integ[48];
        snprintf(integ, sizeof(integ), "%s[%u]", notify__kind_name(c->kind), c->index);
        for (int k = 0; k < NOTIFY_OUT_N; k++) {
            struct metric_label l[3] = {
                {"receiver", c->receiver}, {"integration", integ}, {"outcome", outcomes[k]}};
            metric_add(b, (double)c->n[k], 3, l);
        }
    }
    int64_t oldest = now;
    for (size_t i = 0; i < n->noutbox; i++)
        if (n->outbox[i]->created_ms < oldest)
            oldest = n->outbox[i]->created_ms;
    metric_fam(b, "sitrep_notify_queue_length", "Notifications waiting in the outbox.",
               METRIC_GAUGE);
    metric_add0(b, (double)n->noutbox);
    metric_fam(b, "sitrep_notify_queue_oldest_seconds",
               "Age of the oldest notification waiting in the outbox (0 when empty).",
               METRIC_GAUGE);
    metric_add0(b, (double)(now - oldest) / 1000.0);
    metric_fam(b, "sitrep_notify_outbox_dropped_total",
               "Notifications dropped because the outbox was full (outbox.max_entries).",
               METRIC_COUNTER);
    metric_add0(b, (double)n->outbox_dropped);
    size_t active = 0, suppressed = 0, resolved = 0;
    notify__inhibit_cache(n, now);
    for (size_t i = 0; i < n->alerts.cap; i++) {
        const struct notify__alert *a = n->alerts.vals[i];
        if (!a)
            continue;
        if (notify__alert_resolved(a, now))
            resolved++;
        else if (notify__silenced(n, &a->labels, now, NULL) ||
                 notify__inhibited(n, &a->labels, now, NULL))
            suppressed++;
        else
            active++;
    }
    notify__inhibit_uncache(n);
    metric_fam(b, "sitrep_notify_alerts", "Alerts the notification pipeline holds, by state.",
               METRIC_GAUGE);
    metric_add1(b, (double)active, "state", "active");
    metric_add1(b, (double)suppressed, "state", "suppressed");
    metric_add1(b, (double)resolved, "state", "resolved");
    metric_fam(b, "sitrep_notify_alerts_received_total", "Alerts handed to the pipeline.",
               METRIC_COUNTER);
    metric_add0(b, (double)n->alerts_received);
    metric_fam(b, "sitrep_notify_alerts_rejected_total",
               "Alerts refused: invalid, or past limits.max_alerts or limits.max_groups.",
               METRIC_COUNTER);
    metric_add1(b, (double)n->alerts_rejected[REJ_INVALID], "reason", "invalid");
    metric_add1(b, (double)n->alerts_rejected[REJ_LIMIT], "reason", "max_alerts");
    metric_add1(b, (double)n->alerts_rejected[REJ_GROUPS], "reason", "max_groups");
    metric_fam(b, "sitrep_notify_groups", "Aggregation groups.", METRIC_GAUGE);
    metric_add0(b, (double)n->ngroups);
    size_t st[3] = {0};
    for (size_t i = 0; i < n->nsilences; i++)
        st[notify__silence_state(n->silences[i], now)]++;
    metric_fam(b, "sitrep_notify_silences", "Silences, by state.", METRIC_GAUGE);
    for (int k = 0; k < 3; k++)
        metric_add1(b, (double)st[k], "state",
                    notify__silence_state_name((enum notify__sil_state)k));
    metric_fam(b, "sitrep_notify_db_errors_total",
               "Failed writes or reads of the notification database (notify.db).", METRIC_COUNTER);
    metric_add0(b, (double)n->db_errors);
    pthread_mutex_unlock(&n->mu);
}
