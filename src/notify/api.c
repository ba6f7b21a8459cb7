/*
 * api.c: Alertmanager's v2 HTTP API shape over the pipeline, so amtool,
 * Grafana's Alertmanager data source and scripts written for Alertmanager
 * work against sitrep: alerts (list with silenced/inhibited status, and
 * POST as Prometheus sends them) and silences (list, get, create or update,
 * expire). Bodies come capped by the HTTP layer; each handler holds the
 * pipeline's mutex only while it reads or changes state.
 */
#include "notify/notify_internal.h"
#include "http/http.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POSTED_ALERTS 10000

static void json_error(struct http_response *resp, int status, const char *msg)
{
    /* Alertmanager answers errors with a JSON string. */
    resp->status = status;
    resp->content_type = "application/json";
    sbuf_reset(&resp->body);
    json_str(&resp->body, msg);
    sbuf_addc(&resp->body, '\n');
}

/* ?filter=matcher (repeatable), as amtool sends them. */
static int add_filter(void *ctx, const char *value)
{
    struct notify_matchers *ms = ctx;
    char err[256];
    return notify_matchers_parse(value, ms, err, sizeof(err)) < 0 ? -1 : 0;
}

static int bool_arg(const struct http_request *req, const char *name, int dflt)
{
    const char *v = http_query_arg(req, name);
    if (!v)
        return dflt;
    return strcmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

/* ---- silences ---- */

static int sil_order(const void *x, const void *y, int64_t now)
{
    const struct notify__silence *a = *(const struct notify__silence *const *)x;
    const struct notify__silence *b = *(const struct notify__silence *const *)y;
    enum notify__sil_state sa = notify__silence_state(a, now), sb = notify__silence_state(b, now);
    /* Active first (soonest end first), then pending (soonest start), then expired (latest end). */
    static const int rank[] = {
        [NOTIFY_SIL_ACTIVE] = 0, [NOTIFY_SIL_PENDING] = 1, [NOTIFY_SIL_EXPIRED] = 2};
    if (sa != sb)
        return rank[sa] - rank[sb];
    int64_t ka = sa == NOTIFY_SIL_PENDING ? a->starts_ms : a->ends_ms;
    int64_t kb = sb == NOTIFY_SIL_PENDING ? b->starts_ms : b->ends_ms;
    int c = (ka > kb) - (ka < kb);
    return sa == NOTIFY_SIL_EXPIRED ? -c : c;
}

static void sort_silences(struct notify__silence **v, size_t n, int64_t now)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && sil_order(&v[k - 1], &v[k], now) > 0; k--) {
            struct notify__silence *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
}

/* Alertmanager filters silences by matching the filter against the silence's own matchers. */
static int silence_passes(const struct notify__silence *s, const struct notify_matchers *filter)
{
    if (!filter->n)
        return 1;
    struct notify_label l[NOTIFY_MAX_MATCHERS];
    size_t n = 0;
    for (size_t i = 0; i < s->matchers.n && n < ARRAY_SIZE(l); i++) {
        size_t k = 0;
        while (k < n && strcmp(l[k].name, s->matchers.v[i].name) != 0)
            k++;
        if (k == n)
            l[n++] = (struct notify_label){s->matchers.v[i].name, s->matchers.v[i].value};
    }
    struct notify__lset set;
    if (notify__lset_copy(&set, l, n) < 0)
        return 0;
    int ok = notify__matchers_match(filter, &set);
    notify__lset_free(&set);
    return ok;
}

static void h_silences_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    struct notify_matchers filter = {0};
    if (http_query_args(req, "filter", add_filter, &filter) != 0) {
        notify_matchers_release(&filter);
        json_error(resp, 400, "bad filter: want matchers such as alertname=\"HostDown\"");
        return;
    }
    resp->content_type = "application/json";
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    struct notify__silence **v = xmalloc((n->nsilences ? n->nsilences : 1) * sizeof(*v));
    size_t nv = 0;
    for (size_t i = 0; i < n->nsilences; i++)
        if (silence_passes(n->silences[i], &filter))
            v[nv++] = n->silences[i];
    sort_silences(v, nv, now);
    sbuf_addc(&resp->body, '[');
    for (size_t i = 0; i < nv; i++) {
        if (i)
            sbuf_addc(&resp->body, ',');
        notify__silence_json(&resp->body, v[i], now);
    }
    sbuf_adds(&resp->body, "]\n");
    pthread_mutex_unlock(&n->mu);
    free(v);
    notify_matchers_release(&filter);
}

static void h_silences_post(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    char err[512], id[37];
    struct notify__jv *body = notify__json_parse(req->body, req->body_len, err, sizeof(err));
    if (!body) {
        json_error(resp, 400, err);
        return;
    }
    pthread_mutex_lock(&n->mu);
    int status = notify__silence_post(n, body, id, err, sizeof(err));
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
    notify__jv_free(body);
    if (status) {
        json_error(resp, status, err);
        return;
    }
    resp->content_type = "application/json";
    sbuf_addf(&resp->body, "{\"silenceID\":\"%s\"}\n", id);
}

/* The ID of /api/v2/silence/ID, or NULL (answered) if malformed. */
static const char *silence_id(const struct http_request *req, struct http_response *resp)
{
    const char *id = req->path + strlen("/api/v2/silence/");
    size_t n = strlen(id);
    if (n == 0 || n > 36 || strspn(id, "0123456789abcdefABCDEF-") != n) {
        json_error(resp, 400, "want /api/v2/silence/ID with a silence ID");
        return NULL;
    }
    return id;
}

static void h_silence_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    const char *id = silence_id(req, resp);
    if (!id)
        return;
    pthread_mutex_lock(&n->mu);
    struct notify__silence *s = notify__silence_find(n, id);
    if (s) {
        resp->content_type = "application/json";
        notify__silence_json(&resp->body, s, notify__now(n));
        sbuf_addc(&resp->body, '\n');
    }
    pthread_mutex_unlock(&n->mu);
    if (!s)
        json_error(resp, 404, "silence not found");
}

static void h_silence_delete(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    const char *id = silence_id(req, resp);
    if (!id)
        return;
    pthread_mutex_lock(&n->mu);
    int status = notify__silence_expire(n, id);
    pthread_cond_broadcast(&n->wake);
    pthread_mutex_unlock(&n->mu);
    if (status)
        json_error(resp, status, "silence not found");
}

/* ---- alerts ---- */

struct alert_filter {
    struct notify_matchers m;
    int active, silenced, inhibited;
    struct notify_matcher receiver; /* regex on receiver names; re NULL: any */
};

static int by_fingerprint(const void *x, const void *y)
{
    uint64_t a = (*(const struct notify__alert *const *)x)->fp;
    uint64_t b = (*(const struct notify__alert *const *)y)->fp;
    return (a > b) - (a < b);
}

static void h_alerts_get(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    struct alert_filter f = {.active = bool_arg(req, "active", 1),
                             .silenced = bool_arg(req, "silenced", 1),
                             .inhibited = bool_arg(req, "inhibited", 1)};
    char err[256];
    const char *recv = http_query_arg(req, "receiver");
    if (http_query_args(req, "filter", add_filter, &f.m) != 0) {
        notify_matchers_release(&f.m);
        json_error(resp, 400, "bad filter: want matchers such as alertname=\"HostDown\"");
        return;
    }
    if (recv) {
        f.receiver.op = NOTIFY_RE;
        f.receiver.value = (char *)recv;
        if (notify__matcher_compile(&f.receiver, err, sizeof(err)) < 0) {
            notify_matchers_release(&f.m);
            json_error(resp, 400, err);
            return;
        }
    }
    resp->content_type = "application/json";
    pthread_mutex_lock(&n->mu);
    int64_t now = notify__now(n);
    /* In fingerprint order, as Alertmanager lists them. */
    const struct notify__alert **all = xmalloc((n->nalerts ? n->nalerts : 1) * sizeof(*all));
    size_t nall = 0;
    for (size_t i = 0; i < n->alerts.cap && nall < n->nalerts; i++)
        if (n->alerts.vals[i])
            all[nall++] = n->alerts.vals[i];
    qsort(all, nall, sizeof(*all), by_fingerprint);
    notify__inhibit_cache(n, now);
    sbuf_addc(&resp->body, '[');
    int first = 1;
    for (size_t i = 0; i < nall; i++) {
        const struct notify__alert *a = all[i];
        if (notify__alert_resolved(a, now) || !notify__matchers_match(&f.m, &a->labels))
            continue;
        char sil[37] = "";
        uint64_t inh = 0;
        int is_sil = notify__silenced(n, &a->labels, now, sil);
        int is_inh = notify__inhibited(n, &a->labels, now, &inh);
        if ((is_sil && !f.silenced) || (is_inh && !f.inhibited) ||
            (!is_sil && !is_inh && !f.active))
            continue;
        const struct notify__route *routes[64];
        size_t nr = notify__routes_match(&n->routes, &a->labels, routes, ARRAY_SIZE(routes));
        if (nr > ARRAY_SIZE(routes))
            nr = ARRAY_SIZE(routes);
        int recv_ok = !f.receiver.re;
        for (size_t k = 0; k < nr && !recv_ok; k++)
            recv_ok = notify__matcher_match(&f.receiver, routes[k]->receiver_name);
        if (!recv_ok)
            continue;
        struct sbuf *b = &resp->body;
        sbuf_adds(b, first ? "{\"annotations\":" : ",{\"annotations\":");
        first = 0;
        notify__lset_json(b, &a->annotations);
        sbuf_adds(b, ",\"endsAt\":");
        notify__time_json(b, a->ends_ms);
        sbuf_addf(b, ",\"fingerprint\":\"%016llx\",\"receivers\":[", (unsigned long long)a->fp);
        for (size_t k = 0; k < nr; k++) {
            size_t j = 0;
            while (j < k && strcmp(routes[j]->receiver_name, routes[k]->receiver_name) != 0)
                j++;
            if (j < k)
                continue;
            sbuf_adds(b, k ? ",{\"name\":" : "{\"name\":");
            json_str(b, routes[k]->receiver_name);
            sbuf_addc(b, '}');
        }
        sbuf_adds(b, "],\"startsAt\":");
        notify__time_json(b, a->starts_ms);
        sbuf_adds(b, ",\"status\":{\"inhibitedBy\":[");
        if (is_inh)
            sbuf_addf(b, "\"%016llx\"", (unsigned long long)inh);
        sbuf_adds(b, "],\"silencedBy\":[");
        if (is_sil)
            sbuf_addf(b, "\"%s\"", sil);
        sbuf_addf(b,
                  "],\"state\":\"%s\"},\"updatedAt\":", is_sil || is_inh ? "suppressed" : "active");
        notify__time_json(b, a->updated_ms);
        sbuf_adds(b, ",\"generatorURL\":");
        json_str(b, a->generator_url ? a->generator_url : "");
        sbuf_adds(b, ",\"labels\":");
        notify__lset_json(b, &a->labels);
        sbuf_addc(b, '}');
    }
    sbuf_adds(&resp->body, "]\n");
    notify__inhibit_uncache(n);
    pthread_mutex_unlock(&n->mu);
    free(all);
    notify_matchers_release(&f.m);
    if (f.receiver.re)
        notify__matcher_free_re(&f.receiver);
}

/* A JSON object of strings into labels (pointers into the tree). */
static int kv(const struct notify__jv *o, struct notify_label *out, size_t cap, size_t *n)
{
    *n = 0;
    if (!o)
        return 0;
    if (o->type != NJ_OBJ || o->n > cap)
        return -1;
    for (size_t i = 0; i < o->n; i++) {
        if (o->items[i].type != NJ_STR)
            return -1;
        out[(*n)++] = (struct notify_label){o->keys[i], o->items[i].str};
    }
    return 0;
}

static void h_alerts_post(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct notify *n = ctx;
    char err[512];
    struct notify__jv *body = notify__json_parse(req->body, req->body_len, err, sizeof(err));
    if (!body) {
        json_error(resp, 400, err);
        return;
    }
    if (body->type != NJ_ARR || body->n > MAX_POSTED_ALERTS) {
        notify__jv_free(body);
        json_error(resp, 400, "want a JSON list of alerts (at most 10000)");
        return;
    }
    /* Label slots for what the body holds (bounded by its 1 MiB), not for the caps. */
    size_t nslots = 0;
    for (size_t i = 0; i < body->n; i++) {
        const struct notify__jv *l = notify__jv_get(&body->items[i], "labels");
        const struct notify__jv *an = notify__jv_get(&body->items[i], "annotations");
        nslots += (l ? l->n : 0) + (an ? an->n : 0);
    }
    struct notify_alert *alerts = xcalloc(body->n ? body->n : 1, sizeof(*alerts));
    struct notify_label *labels = xcalloc(nslots ? nslots : 1, sizeof(*labels));
    struct notify_label *next = labels;
    for (size_t i = 0; i < body->n; i++) {
        const struct notify__jv *o = &body->items[i];
        struct notify_alert *a = &alerts[i];
        struct notify_label *l = next;
        const char *starts = notify__jv_str(o, "startsAt"), *ends = notify__jv_str(o, "endsAt");
        if (o->type != NJ_OBJ ||
            kv(notify__jv_get(o, "labels"), l, NOTIFY_MAX_LABELS, &a->nlabels) < 0 || !a->nlabels ||
            kv(notify__jv_get(o, "annotations"), l + a->nlabels, NOTIFY_MAX_LABELS,
               &a->nannotations) < 0 ||
            (starts && *starts && notify__time_parse(starts, &a->starts_at_ms) < 0) ||
            (ends && *ends && notify__time_parse(ends, &a->ends_at_ms) < 0)) {
            snprintf(err, sizeof(err),
                     "alert %zu: want {\"labels\": {...} (at least one), \"annotations\": {...}, "
                     "\"startsAt\": RFC 3339, \"endsAt\": RFC 3339, \"generatorURL\": ...}",
                     i);
            json_error(resp, 400, err);
            goto out;
        }
        /* Go's zero time means unset. */
        if (a->starts_at_ms < 0)
            a->starts_at_ms = 0;
        if (a->ends_at_ms < 0)
            a->ends_at_ms = 0;
        if (a->starts_at_ms && a->ends_at_ms && a->ends_at_ms < a->starts_at_ms) {
            snprintf(err, sizeof(err), "alert %zu: endsAt is before startsAt", i);
            json_error(resp, 400, err);
            goto out;
        }
        a->labels = l;
        a->annotations = l + a->nlabels;
        next += a->nlabels + a->nannotations;
        a->generator_url = notify__jv_str(o, "generatorURL");
    }
    notify_submit(n, alerts, body->n);
out:
    free(alerts);
    free(labels);
    notify__jv_free(body);
}

void notify_register_http(struct http_server *s, struct notify *n)
{
    http_route(s, "GET", "/api/v2/alerts", HTTP_READ, h_alerts_get, n);
    http_route(s, "POST", "/api/v2/alerts", HTTP_MUTATES, h_alerts_post, n);
    http_route(s, "GET", "/api/v2/silences", HTTP_READ, h_silences_get, n);
    http_route(s, "POST", "/api/v2/silences", HTTP_MUTATES, h_silences_post, n);
    http_route(s, "GET", "/api/v2/silence/*", HTTP_READ, h_silence_get, n);
    http_route(s, "DELETE", "/api/v2/silence/*", HTTP_MUTATES, h_silence_delete, n);
}
