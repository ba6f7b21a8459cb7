/*
 * agg.c: per-service aggregates of parsed requests, and the series they
 * become. Everything a line touches is in fixed arrays sized at startup:
 * a route table (at most max_routes learned routes plus the configured
 * patterns and "other"), per route a matrix of counts by method and status
 * class, a latency histogram and byte and retry counters; a client sketch,
 * a distinct-client counter and a retry table of fixed size. So a log with
 * millions of distinct URLs or clients cannot grow memory or series.
 *
 * Counters are cumulative from the ingester's start, so PromQL's rate()
 * and increase() work on them (a restart is an ordinary counter reset).
 */
#include "ingest/ingest_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Web latencies: 5 ms to a minute; 5 s ("slow") is an edge, so le="5" counts the not-slow. */
const double ingest__bucket_le[INGEST__NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                    1,     2.5,  5,     10,   30,  60,   INFINITY};
static const char *const le_text[INGEST__NBUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1",     "2.5",  "5",     "10",   "30",  "60",   "+Inf",
};
static const char *const method_names[INGEST__NMETHODS] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
};
static const char *const class_names[INGEST__NCLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

#define TOPK_CAPACITY 128  /* clients monitored per service (the top 10 are shown) */
#define RETRY_SLOTS   8192 /* (client, route) pairs remembered after a 429/503 */
#define RATE_TAU_S    60.0 /* time constant of the decayed client rates */
#define METHOD_OTHER  (INGEST__NMETHODS - 1)

static int method_id(const char *s, size_t n)
{
    for (int i = 0; i < METHOD_OTHER; i++)
        if (strlen(method_names[i]) == n && memcmp(method_names[i], s, n) == 0)
            return i;
    return METHOD_OTHER;
}

static size_t route_slot(const struct ingest__service *s, const char *name, uint64_t h, int *found)
{
    for (size_t i = h & s->route_mask;; i = (i + 1) & s->route_mask) {
        uint32_t v = s->route_index[i];
        if (!v) {
            *found = 0;
            return i;
        }
        const struct ingest__route *r = &s->routes[v - 1];
        if (r->hash == h && strcmp(r->name, name) == 0) {
            *found = 1;
            return i;
        }
    }
}

int ingest__service_init(struct ingest__service *s, const struct ingest_log *l, char *err,
                         size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->name = l->service;
    s->max_routes = l->max_routes ? l->max_routes : INGEST_DEFAULT_MAX_ROUTES;
    s->npatterns = l->nroutes;
    s->patterns = l->routes;
    size_t total = 1 + s->npatterns + s->max_routes, size = 4;
    while (size < 2 * total)
        size <<= 1;
    s->routes = xcalloc(total, sizeof(*s->routes));
    s->route_index = xcalloc(size, sizeof(*s->route_index));
    s->route_mask = size - 1;
    memcpy(s->routes[0].name, INGEST__OTHER, sizeof(INGEST__OTHER));
    s->nroutes = 1;
    /* Configured patterns have fixed ids 1..npatterns and are never looked up by name. */
    for (size_t i = 0; i < s->npatterns; i++)
        snprintf(s->routes[s->nroutes++].name, INGEST_MAX_ROUTE_LEN + 1, "%s", s->patterns[i]);
    ingest__topk_init(&s->top, TOPK_CAPACITY);
    s->retry = xcalloc(RETRY_SLOTS, sizeof(*s->retry));
    s->retry_mask = RETRY_SLOTS - 1;
    s->retry_window_ms =
        l->retry_window_ms > 0 ? l->retry_window_ms : INGEST_DEFAULT_RETRY_WINDOW_MS;
    s->ncounters = l->ncounters;
    s->counter_cfg = l->counters;
    if (s->ncounters) {
        s->counter_re = xcalloc(s->ncounters, sizeof(*s->counter_re));
        s->counter_hits = xcalloc(s->ncounters, sizeof(*s->counter_hits));
        for (size_t i = 0; i < s->ncounters; i++) {
            size_t off;
            char e[256];
            if (!(s->counter_re[i] = ingest__compile(l->counters[i].regex, e, sizeof(e), &off))) {
                snprintf(err, errlen, "counter %s: %s", l->counters[i].name, e);
                ingest__service_release(s);
                return -1;
            }
        }
        s->md = pcre2_match_data_create(1, NULL);
        s->mctx = ingest__match_context();
        if (!s->md || !s->mctx) {
            snprintf(err, errlen, "out of memory for regex match data");
            ingest__service_release(s);
            return -1;
        }
    }
    return 0;
}

void ingest__service_release(struct ingest__service *s)
{
    free(s->routes);
    free(s->route_index);
    ingest__topk_release(&s->top);
    free(s->retry);
    for (size_t i = 0; s->counter_re && i < s->ncounters; i++)
        if (s->counter_re[i])
            pcre2_code_free(s->counter_re[i]);
    free(s->counter_re);
    free(s->counter_hits);
    if (s->md)
        pcre2_match_data_free(s->md);
    if (s->mctx)
        pcre2_match_context_free(s->mctx);
    memset(s, 0, sizeof(*s));
}

/*
 * The route id of a request. A path not seen before becomes a route only
 * on a 2xx or 5xx answer: scanners probing random paths get 404s (or
 * redirects), and must not fill the table that real routes need.
 */
static size_t route_of(struct ingest__service *s, const struct ingest__rec *r)
{
    for (size_t i = 0; i < s->npatterns; i++)
        if (ingest__route_match(s->patterns[i], r->target.p, r->target.n))
            return 1 + i;
    char name[INGEST_MAX_ROUTE_LEN + 1];
    size_t len = ingest__route_normalise(r->target.p, r->target.n, name);
    if (name[0] != '/')
        return 0; /* "other" */
    uint64_t h = ingest__hash(name, len);
    int found;
    size_t slot = route_slot(s, name, h, &found);
    if (found)
        return s->route_index[slot] - 1;
    int cls = r->status / 100;
    if (cls != 2 && cls != 5)
        return 0;
    if (s->nroutes >= 1 + s->npatterns + s->max_routes) {
        s->routes_overflow++;
        return 0;
    }
    size_t id = s->nroutes++;
    memcpy(s->routes[id].name, name, len + 1);
    s->routes[id].hash = h;
    s->route_index[slot] = (uint32_t)id + 1;
    return id;
}

void ingest__service_observe(struct ingest__service *s, const struct ingest__rec *r, int64_t now_ms)
{
    size_t rid = route_of(s, r);
    struct ingest__route *rt = &s->routes[rid];
    rt->req[method_id(r->method.p, r->method.n)][r->status / 100 - 1]++;
    rt->bytes += r->bytes;
    if (r->duration_s >= 0) {
        int b = 0;
        while (r->duration_s > ingest__bucket_le[b]) /* the last edge is +Inf */
            b++;
        rt->bucket[b]++;
        rt->dur_count++;
        rt->dur_sum += r->duration_s;
    }
    s->requests++;
    s->decayed_requests += 1;
    if (!r->client.n)
        return;
    char client[INGEST__CLIENT_MAX + 1];
    size_t cn = ingest__client_clean(r->client.p, r->client.n, client, sizeof(client));
    if (!cn)
        return;
    uint64_t ch = ingest__hash(client, cn);
    ingest__topk_add(&s->top, client, cn, ch, r->status >= 500);
    ingest__hll_add(&s->hll, ch);
    /* Retries: the same client at the same route within the window after a 429/503. */
    uint64_t key = ingest__mix(ch ^ ((uint64_t)(rid + 1) * 0x9e3779b97f4a7c15ULL)) | 1;
    struct ingest__retry_slot *slot = &s->retry[key & s->retry_mask];
    int busy = r->status == 429 || r->status == 503;
    if (slot->key != key && !busy)
        return;
    /* The line's own time where it has one: a backlog read at once is not a burst. */
    int64_t t = now_ms;
    if (r->time.n && ingest__parse_time(r->time.p, r->time.n, &t) < 0)
        t = now_ms;
    if (slot->key == key && t >= slot->at_ms && t - slot->at_ms <= s->retry_window_ms)
        rt->retries++;
    if (busy) {
        slot->key = key;
        slot->at_ms = t;
    }
}

void ingest__service_match_line(struct ingest__service *s, const char *line, size_t n)
{
    for (size_t i = 0; i < s->ncounters; i++)
        if (pcre2_match(s->counter_re[i], (PCRE2_SPTR)line, n, 0, 0, s->md, s->mctx) >= 0)
            s->counter_hits[i]++;
}

static uint64_t route_requests(const struct ingest__route *r)
{
    uint64_t n = 0;
    for (int m = 0; m < INGEST__NMETHODS; m++)
        for (int c = 0; c < INGEST__NCLASSES; c++)
            n += r->req[m][c];
    return n;
}

static void emit_counts(struct ingest__service *const *svcs, size_t n, struct metric_buf *b)
{
    struct metric_label l[5];
    metric_fam(b, "accesslog_requests_total",
               "Requests answered, by service, method, status class (code) and route.",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            for (int m = 0; m < INGEST__NMETHODS; m++)
                for (int c = 0; c < INGEST__NCLASSES; c++) {
                    uint64_t v = svcs[i]->routes[r].req[m][c];
                    if (!v)
                        continue;
                    l[0] = (struct metric_label){"service", svcs[i]->name};
                    l[1] = (struct metric_label){"method", method_names[m]};
                    l[2] = (struct metric_label){"code", class_names[c]};
                    l[3] = (struct metric_label){"route", svcs[i]->routes[r].name};
                    metric_add(b, (double)v, 4, l);
                }
    /* Present (at 0) wherever requests are, so errors/requests ratios exist. */
    metric_fam(b, "accesslog_errors_total",
               "Requests answered with a 5xx status, by service, method and route.",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            for (int m = 0; m < INGEST__NMETHODS; m++) {
                const uint64_t *row = svcs[i]->routes[r].req[m];
                if (!(row[0] | row[1] | row[2] | row[3] | row[4]))
                    continue;
                l[0] = (struct metric_label){"service", svcs[i]->name};
                l[1] = (struct metric_label){"method", method_names[m]};
                l[2] = (struct metric_label){"route", svcs[i]->routes[r].name};
                metric_add(b, (double)row[4], 3, l);
            }
    metric_fam(b, "accesslog_response_bytes_total",
               "Response body bytes sent, by service and route.", METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            if (route_requests(&svcs[i]->routes[r]))
                metric_add2(b, (double)svcs[i]->routes[r].bytes, "service", svcs[i]->name, "route",
                            svcs[i]->routes[r].name);
}

static void emit_latency(struct ingest__service *const *svcs, size_t n, struct metric_buf *b)
{
    struct metric_label l[3];
    metric_fam(b, "accesslog_request_duration_seconds_bucket",
               "Requests by time taken (cumulative histogram buckets, le in seconds).",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++) {
            const struct ingest__route *rt = &svcs[i]->routes[r];
            if (!rt->dur_count)
                continue;
            uint64_t cum = 0;
            for (int k = 0; k < INGEST__NBUCKETS; k++) {
                cum += rt->bucket[k];
                l[0] = (struct metric_label){"service", svcs[i]->name};
                l[1] = (struct metric_label){"route", rt->name};
                l[2] = (struct metric_label){"le", le_text[k]};
                metric_add(b, (double)cum, 3, l);
            }
        }
    metric_fam(b, "accesslog_request_duration_seconds_sum",
               "Total time taken by requests, in seconds.", METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            if (svcs[i]->routes[r].dur_count)
                metric_add2(b, svcs[i]->routes[r].dur_sum, "service", svcs[i]->name, "route",
                            svcs[i]->routes[r].name);
    metric_fam(b, "accesslog_request_duration_seconds_count", "Requests with a request time.",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            if (svcs[i]->routes[r].dur_count)
                metric_add2(b, (double)svcs[i]->routes[r].dur_count, "service", svcs[i]->name,
                            "route", svcs[i]->routes[r].name);
}

static void emit_clients(struct ingest__service *const *svcs, size_t n, struct metric_buf *b,
                         int interval_s)
{
    const struct ingest__topk_entry *top[INGEST_TOP_CLIENTS];
    /* With counts decayed by d per tick, a steady r req/s settles at r * interval / (1 - d). */
    double d = exp(-(double)interval_s / RATE_TAU_S), per_s = (1 - d) / interval_s;
    static const struct {
        const char *name, *help;
    } fams[3] = {
        {"accesslog_top_client_requests_per_second",
         "Request rate of the busiest clients (exponentially weighted over about a minute)."},
        {"accesslog_top_client_errors_per_second",
         "5xx response rate of the busiest clients (same weighting)."},
        {"accesslog_top_client_share",
         "Busiest clients' fraction of the service's requests (same weighting)."},
    };
    for (int f = 0; f < 3; f++) {
        metric_fam(b, fams[f].name, fams[f].help, METRIC_GAUGE);
        for (size_t i = 0; i < n; i++) {
            size_t k = ingest__topk_top(&svcs[i]->top, top, INGEST_TOP_CLIENTS);
            for (size_t j = 0; j < k; j++) {
                double v = f == 0   ? top[j]->count * per_s
                           : f == 1 ? top[j]->errors * per_s
                           : svcs[i]->decayed_requests > 0
                               ? fmin(1.0, top[j]->count / svcs[i]->decayed_requests)
                               : 0;
                metric_add2(b, v, "service", svcs[i]->name, "client", top[j]->client);
            }
        }
    }
    metric_fam(b, "accesslog_clients_distinct_total",
               "Distinct client addresses seen (HyperLogLog estimate, about 1.6% error).",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++) {
        double est = round(ingest__hll_estimate(&svcs[i]->hll));
        if (est >
            svcs[i]->distinct) /* a counter: the estimate may wobble, the series never falls */
            svcs[i]->distinct = est;
        metric_add1(b, svcs[i]->distinct, "service", svcs[i]->name);
    }
}

void ingest__services_emit(struct ingest__service *const *svcs, size_t n, struct metric_buf *b,
                           int interval_s)
{
    if (interval_s <= 0)
        interval_s = 1;
    emit_counts(svcs, n, b);
    emit_latency(svcs, n, b);
    metric_fam(b, "accesslog_retries_total",
               "Requests from a client to a route within the retry window after a 429 or 503 "
               "to the same client and route.",
               METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < svcs[i]->nroutes; r++)
            if (svcs[i]->routes[r].retries)
                metric_add2(b, (double)svcs[i]->routes[r].retries, "service", svcs[i]->name,
                            "route", svcs[i]->routes[r].name);
    emit_clients(svcs, n, b, interval_s);
    metric_fam(b, "accesslog_counter_matches_total",
               "Lines matching each configured counter's regex.", METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < svcs[i]->ncounters; c++)
            metric_add2(b, (double)svcs[i]->counter_hits[c], "service", svcs[i]->name, "counter",
                        svcs[i]->counter_cfg[c].name);
    metric_fam(b, "sitrep_ingest_routes", "Routes learned from the log (besides other).",
               METRIC_GAUGE);
    for (size_t i = 0; i < n; i++)
        metric_add1(b, (double)(svcs[i]->nroutes - 1 - svcs[i]->npatterns), "service",
                    svcs[i]->name);
    metric_fam(b, "sitrep_ingest_routes_overflow_total",
               "Requests counted as route other because max_routes were learned.", METRIC_COUNTER);
    for (size_t i = 0; i < n; i++)
        metric_add1(b, (double)svcs[i]->routes_overflow, "service", svcs[i]->name);
    double d = exp(-(double)interval_s / RATE_TAU_S);
    for (size_t i = 0; i < n; i++) {
        ingest__topk_decay(&svcs[i]->top, d);
        svcs[i]->decayed_requests *= d;
    }
}
