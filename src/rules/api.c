/*
 * api.c: GET /api/v1/rules and GET /api/v1/alerts in Prometheus's JSON
 * shape, so Grafana's and promtool's readers of a Prometheus work against
 * sitrep. Only pending and firing alerts are listed (as Prometheus does).
 */
#include "http/http.h"
#include "rules/rules_internal.h"
#include "util/json.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *state_name(enum rules__state s)
{
    return s == RULES_FIRING ? "firing" : s == RULES_PENDING ? "pending" : "inactive";
}

/* RFC 3339 in UTC with Go's trimmed fraction: "2024-05-01T10:00:00.25Z". */
static void rfc3339(struct sbuf *b, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_addf(b, "\"%s", buf);
    int frac = (int)(ms % 1000);
    if (frac) {
        char f[8];
        snprintf(f, sizeof(f), ".%03d", frac);
        for (size_t n = strlen(f); f[n - 1] == '0'; n--)
            f[n - 1] = '\0';
        sbuf_adds(b, f);
    }
    sbuf_adds(b, "Z\"");
}

static void labels_json(struct sbuf *b, const struct rules_label *l, size_t n)
{
    sbuf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_addc(b, ',');
        json_str(b, l[i].name);
        sbuf_addc(b, ':');
        json_str(b, l[i].value);
    }
    sbuf_addc(b, '}');
}

void rules__go_float(struct sbuf *b, double v, char e)
{
    if (isnan(v)) {
        sbuf_adds(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sbuf_adds(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[64];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), e == 'E' ? "%.*E" : "%.*e", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sbuf_adds(b, buf);
}

/* Prometheus writes an alert's value with strconv.FormatFloat(v, 'e', -1, 64). */
static void value_e(struct sbuf *b, double v)
{
    sbuf_addc(b, '"');
    rules__go_float(b, v, 'e');
    sbuf_addc(b, '"');
}

static void alert_json(struct sbuf *b, const struct rules__alert *a)
{
    sbuf_adds(b, "{\"labels\":");
    labels_json(b, a->labels, a->nlabels);
    sbuf_adds(b, ",\"annotations\":");
    labels_json(b, a->ann, a->nann);
    sbuf_addf(b, ",\"state\":\"%s\",\"activeAt\":", state_name(a->state));
    rfc3339(b, a->active_at);
    if (a->keep_firing_since > 0) {
        sbuf_adds(b, ",\"keepFiringSince\":");
        rfc3339(b, a->keep_firing_since);
    }
    sbuf_adds(b, ",\"value\":");
    value_e(b, a->value);
    sbuf_addc(b, '}');
}

static int listed(const struct rules__alert *a)
{
    return a->state == RULES_PENDING || a->state == RULES_FIRING;
}

static void h_alerts(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct rules *r = ctx;
    struct sbuf *b = &resp->body;
    resp->content_type = "application/json";
    sbuf_adds(b, "{\"status\":\"success\",\"data\":{\"alerts\":[");
    int first = 1;
    pthread_mutex_lock(&r->mu);
    for (size_t g = 0; g < r->set->ngroups; g++)
        for (size_t i = 0; i < r->set->groups[g].nrules; i++) {
            const struct rules__rule *ru = &r->set->groups[g].rules[i];
            for (size_t k = 0; k < ru->nalerts; k++) {
                if (!listed(ru->alerts[k]))
                    continue;
                if (!first)
                    sbuf_addc(b, ',');
                first = 0;
                alert_json(b, ru->alerts[k]);
            }
        }
    pthread_mutex_unlock(&r->mu);
    sbuf_adds(b, "]}}");
}

static void h_rules(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct rules *r = ctx;
    struct sbuf *b = &resp->body;
    const char *type = http_query_arg(req, "type");
    int want_alert = 1, want_record = 1;
    if (type && strcmp(type, "alert") == 0)
        want_record = 0;
    else if (type && strcmp(type, "record") == 0)
        want_alert = 0;
    else if (type && *type) {
        http_error(resp, 400,
                   "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                   "\"unsupported type \\\"%s\\\"\"}",
                   strchr(type, '"') || strchr(type, '\\') ? "?" : type);
        resp->content_type = "application/json";
        return;
    }
    resp->content_type = "application/json";
    sbuf_adds(b, "{\"status\":\"success\",\"data\":{\"groups\":[");
    pthread_mutex_lock(&r->mu);
    for (size_t g = 0; g < r->set->ngroups; g++) {
        const struct rules__group *gr = &r->set->groups[g];
        if (g)
            sbuf_addc(b, ',');
        sbuf_adds(b, "{\"name\":");
        json_str(b, gr->name);
        sbuf_adds(b, ",\"file\":");
        json_str(b, gr->file);
        sbuf_adds(b, ",\"rules\":[");
        int first = 1;
        for (size_t i = 0; i < gr->nrules; i++) {
            const struct rules__rule *ru = &gr->rules[i];
            if (ru->alerting ? !want_alert : !want_record)
                continue;
            if (!first)
                sbuf_addc(b, ',');
            first = 0;
            sbuf_addc(b, '{');
            if (ru->alerting) {
                enum rules__state st = RULES_INACTIVE;
                for (size_t k = 0; k < ru->nalerts; k++)
                    if (listed(ru->alerts[k]) && ru->alerts[k]->state > st)
                        st = ru->alerts[k]->state;
                sbuf_addf(b, "\"state\":\"%s\",", state_name(st));
            }
            sbuf_adds(b, "\"name\":");
            json_str(b, ru->name);
            sbuf_adds(b, ",\"query\":");
            json_str(b, ru->expr_text);
            if (ru->alerting) {
                sbuf_addf(b, ",\"duration\":%lld,\"keepFiringFor\":%lld",
                          (long long)(ru->for_ms / 1000),
                          (long long)(ru->keep_firing_for_ms / 1000));
            }
            sbuf_adds(b, ",\"labels\":");
            labels_json(b, ru->labels, ru->nlabels);
            if (ru->alerting) {
                sbuf_adds(b, ",\"annotations\":");
                labels_json(b, ru->ann, ru->nann);
                sbuf_adds(b, ",\"alerts\":[");
                int fa = 1;
                for (size_t k = 0; k < ru->nalerts; k++) {
                    if (!listed(ru->alerts[k]))
                        continue;
                    if (!fa)
                        sbuf_addc(b, ',');
                    fa = 0;
                    alert_json(b, ru->alerts[k]);
                }
                sbuf_addc(b, ']');
            }
            sbuf_addf(b, ",\"health\":\"%s\",",
                      ru->health > 0   ? "ok"
                      : ru->health < 0 ? "err"
                                       : "unknown");
            if (ru->health < 0) {
                sbuf_adds(b, "\"lastError\":");
                json_str(b, ru->last_error);
                sbuf_addc(b, ',');
            }
            sbuf_addf(b, "\"evaluationTime\":%.9f,\"lastEvaluation\":", ru->eval_seconds);
            if (ru->last_eval_ms)
                rfc3339(b, ru->last_eval_ms);
            else
                sbuf_adds(b, "\"0001-01-01T00:00:00Z\"");
            sbuf_addf(b, ",\"type\":\"%s\"}", ru->alerting ? "alerting" : "recording");
        }
        sbuf_addf(b, "],\"interval\":%g,\"limit\":%u,\"evaluationTime\":%.9f,\"lastEvaluation\":",
                  (double)gr->interval_ms / 1000.0, gr->limit, gr->eval_seconds);
        if (gr->last_eval_ms)
            rfc3339(b, gr->last_eval_ms);
        else
            sbuf_adds(b, "\"0001-01-01T00:00:00Z\"");
        sbuf_addc(b, '}');
    }
    pthread_mutex_unlock(&r->mu);
    sbuf_adds(b, "]}}");
}

void rules_register_http(struct http_server *s, struct rules *r)
{
    http_route(s, "GET", "/api/v1/rules", HTTP_READ, h_rules, r);
    http_route(s, "GET", "/api/v1/alerts", HTTP_READ, h_alerts, r);
}
