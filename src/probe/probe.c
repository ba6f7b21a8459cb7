/*
 * probe.c: the prober (probe.h): one thread, one libcurl multi handle, one
 * easy handle per target reused between probes but with a fresh connection
 * each time (so DNS, connect and TLS are measured and the certificate is
 * seen on every probe). A finished transfer is judged (status set, regex),
 * its timings split into blackbox_exporter's phases, and emitted as a
 * batch; the tick folds the latest results into sitrep_probe_network_ok.
 */
#include "probe/probe.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <curl/curl.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum reason { R_DNS, R_CONNECT, R_TLS, R_TIMEOUT, R_STATUS, R_REGEX, R_OTHER, R_N };
static const char *const reason_names[R_N] = {"dns",    "connect", "tls",  "timeout",
                                              "status", "regex",   "other"};

enum phase { PH_RESOLVE, PH_CONNECT, PH_TLS, PH_PROCESSING, PH_TRANSFER, PH_N };
static const char *const phase_names[PH_N] = {"resolve", "connect", "tls", "processing",
                                              "transfer"};

/* A finished probe. */
struct result {
    int valid; /* a probe has finished */
    int success;
    enum reason reason;
    long status;
    double total, phase[PH_N];
    int tls;            /* the connection used TLS */
    double cert_expiry; /* earliest notAfter of the chain, unix seconds; 0: unknown */
    long redirects;
    int regex_failed;
    long http_version; /* 10, 11, 20, 30; 0: none */
    unsigned streak;   /* failed probes in a row, this one included; 0 if it succeeded */
};

struct target {
    struct probe_target *cfg; /* in the prober's config copy */
    char *url;                /* what curl is given (owned) */
    CURL *easy;
    struct curl_slist *hdrs;
    pcre2_code *re;
    pcre2_match_data *md;
    struct sbuf body;
    int inflight;
    int64_t next_due_ms, start_ms, last_ts_ms;
    struct result last; /* under the prober's lock */
    atomic_ullong checks, failures[R_N];
    int failing;     /* logged once per failure streak */
    unsigned streak; /* failed probes in a row */
};

struct probe {
    struct probe_config cfg; /* owned copy */
    struct target *targets;
    size_t n;
    int interval_s;
    CURLM *multi;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
    struct metric_buf work;
    pthread_mutex_t lock; /* guards published and the targets' last results */
    struct metric_buf published;
    int64_t last_tick_ms;
    pthread_t thread;
    int running;
    atomic_int stop;
};

/* ---- config copy ---- */

static char *dup0(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void target_copy(struct probe_target *d, const struct probe_target *s)
{
    *d = *s;
    d->name = dup0(s->name);
    d->target = dup0(s->target);
    d->method = xstrdup(s->method ? s->method : "GET");
    d->body_regex = dup0(s->body_regex);
    d->ca_file = dup0(s->ca_file);
    d->headers = xcalloc(s->nheaders ? s->nheaders : 1, sizeof(*d->headers));
    for (size_t i = 0; i < s->nheaders; i++)
        d->headers[i] =
            (struct probe_pair){xstrdup(s->headers[i].name), xstrdup(s->headers[i].value)};
    if (d->interval_ms <= 0)
        d->interval_ms = PROBE_DEFAULT_INTERVAL_MS;
    if (d->timeout_ms <= 0)
        d->timeout_ms = PROBE_DEFAULT_TIMEOUT_MS;
    if (d->timeout_ms > d->interval_ms)
        d->timeout_ms = d->interval_ms;
}

/* ---- setup ---- */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct target *t = ctx;
    /* Keep what fits for the regex; read (and drop) the rest so timing covers the transfer. */
    if (t->re && t->body.len < PROBE_BODY_LIMIT) {
        size_t room = PROBE_BODY_LIMIT - t->body.len;
        sbuf_add(&t->body, data, size * n < room ? size * n : room);
    }
    return size * n;
}

static int target_init(struct target *t, struct probe_target *cfg)
{
    t->cfg = cfg;
    sbuf_init(&t->body, PROBE_BODY_LIMIT + 1);
    if (cfg->body_regex) {
        int ec;
        PCRE2_SIZE off;
        t->re =
            pcre2_compile((PCRE2_SPTR)cfg->body_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!t->re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            return log_error("probe %s: body_regex at %zu: %s", cfg->name, (size_t)off,
                             (char *)msg);
        }
        pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* best effort */
        t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    }
    if (cfg->kind == PROBE_TCP) {
        size_t n = strlen(cfg->target) + 16;
        t->url = xmalloc(n);
        /* CONNECT_ONLY: curl resolves, connects (and shakes hands for https), sends nothing. */
        snprintf(t->url, n, "%s://%s/", cfg->tls ? "https" : "http", cfg->target);
    } else {
        t->url = xstrdup(cfg->target);
    }
    CURL *e = t->easy = curl_easy_init();
    if (!e)
        return log_error("probe %s: cannot create a curl handle", cfg->name);
    for (size_t i = 0; i < cfg->nheaders; i++) {
        struct sbuf hb;
        sbuf_init(&hb, 16384);
        sbuf_addf(&hb, "%s: %s", cfg->headers[i].name, cfg->headers[i].value);
        t->hdrs = curl_slist_append(t->hdrs, hb.buf);
        sbuf_release(&hb);
    }
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sitrep-probe/" SITREP_VERSION);
    if (cfg->tls_insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->kind == PROBE_TCP) {
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, cfg->method);
        curl_easy_setopt(e, CURLOPT_NOBODY, strcasecmp(cfg->method, "HEAD") == 0 ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, cfg->follow_redirects ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    return 0;
}

static void target_release(struct probe *p, struct target *t)
{
    if (t->inflight)
        curl_multi_remove_handle(p->multi, t->easy);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    sbuf_release(&t->body);
    free(t->url);
}

void probe_free(struct probe *p)
{
    if (!p)
        return;
    probe_stop(p);
    for (size_t i = 0; i < p->n; i++)
        target_release(p, &p->targets[i]);
    free(p->targets);
    if (p->multi)
        curl_multi_cleanup(p->multi);
    metric_buf_release(&p->work);
    metric_buf_release(&p->published);
    pthread_mutex_destroy(&p->lock);
    probe_config_release(&p->cfg);
    free(p);
    curl_global_cleanup();
}

struct probe *probe_new(const struct probe_opts *o)
{
    struct probe *p = xcalloc(1, sizeof(*p));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    p->interval_s = o->interval_s > 0 ? o->interval_s : 1;
    p->sink = o->sink;
    p->sink_ctx = o->sink_ctx;
    metric_buf_init(&p->work);
    metric_buf_init(&p->published);
    pthread_mutex_init(&p->lock, NULL);
    p->multi = curl_multi_init();
    size_t n = o->config ? o->config->ntargets : 0;
    p->cfg.targets = xcalloc(n ? n : 1, sizeof(*p->cfg.targets));
    p->targets = xcalloc(n ? n : 1, sizeof(*p->targets));
    int64_t now = util_now_ms();
    for (size_t i = 0; i < n; i++) {
        target_copy(&p->cfg.targets[i], &o->config->targets[i]);
        p->cfg.ntargets++;
        struct target *t = &p->targets[i];
        p->n++;
        if (target_init(t, &p->cfg.targets[i]) < 0) {
            probe_free(p);
            return NULL;
        }
        /* Spread the first probes over the interval (by name), so they do not burst. */
        uint64_t h = 1469598103934665603ULL;
        for (const char *s = t->cfg->name; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        int64_t iv = t->cfg->interval_ms;
        t->next_due_ms = now + (int64_t)(h % (uint64_t)(iv < 2000 ? iv : 2000));
    }
    return p;
}

/* ---- one probe ---- */

static void start_one(struct probe *p, struct target *t, int64_t now_ms)
{
    sbuf_reset(&t->body);
    t->start_ms = now_ms;
    t->inflight = 1;
    curl_multi_add_handle(p->multi, t->easy);
}

/* The earliest "Expire date" of the certificate chain, or 0. */
static double cert_expiry(CURL *e)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci)
        return 0;
    double earliest = 0;
    for (int i = 0; i < ci->num_of_certs; i++)
        for (struct curl_slist *s = ci->certinfo[i]; s; s = s->next)
            if (strncmp(s->data, "Expire date:", 12) == 0) {
                time_t t = curl_getdate(s->data + 12, NULL);
                if (t > 0 && (!earliest || (double)t < earliest))
                    earliest = (double)t;
            }
    return earliest;
}

static int status_ok(const struct probe_target *c, long status)
{
    if (!c->nexpect)
        return status >= 200 && status <= 299;
    for (size_t i = 0; i < c->nexpect; i++)
        if (status >= c->expect[i].lo && status <= c->expect[i].hi)
            return 1;
    return 0;
}

static double info_time(CURL *e, CURLINFO what)
{
    curl_off_t us = 0;
    curl_easy_getinfo(e, what, &us);
    return (double)us / 1e6;
}

static void judge(struct target *t, CURLcode res, struct result *r)
{
    CURL *e = t->easy;
    memset(r, 0, sizeof(*r));
    r->valid = 1;
    /* curl's times are cumulative from the start; blackbox's phases are their differences. */
    double dns = info_time(e, CURLINFO_NAMELOOKUP_TIME_T);
    double conn = info_time(e, CURLINFO_CONNECT_TIME_T);
    double app = info_time(e, CURLINFO_APPCONNECT_TIME_T);
    double first = info_time(e, CURLINFO_STARTTRANSFER_TIME_T);
    r->total = info_time(e, CURLINFO_TOTAL_TIME_T);
    double after_conn = app > 0 ? app : conn;
    r->phase[PH_RESOLVE] = dns;
    r->phase[PH_CONNECT] = conn > dns ? conn - dns : 0;
    r->phase[PH_TLS] = app > conn ? app - conn : 0;
    r->phase[PH_PROCESSING] = first > after_conn ? first - after_conn : 0;
    r->phase[PH_TRANSFER] = r->total > first && first > 0 ? r->total - first : 0;
    r->tls = app > 0;
    r->cert_expiry = cert_expiry(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &r->redirects);
    long ver = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver);
    r->http_version = ver == CURL_HTTP_VERSION_1_0   ? 10
                      : ver == CURL_HTTP_VERSION_1_1 ? 11
                      : ver == CURL_HTTP_VERSION_2_0 ? 20
                      : ver == CURL_HTTP_VERSION_3   ? 30
                                                     : 0;
    if (res != CURLE_OK) {
        r->reason = res == CURLE_COULDNT_RESOLVE_HOST ? R_DNS
                    : res == CURLE_COULDNT_CONNECT    ? R_CONNECT
                    : res == CURLE_OPERATION_TIMEDOUT ? R_TIMEOUT
                    : res == CURLE_SSL_CONNECT_ERROR || res == CURLE_PEER_FAILED_VERIFICATION ||
                            res == CURLE_SSL_CERTPROBLEM || res == CURLE_SSL_CACERT_BADFILE
                        ? R_TLS
                        : R_OTHER;
        /* A timeout before the connection was up is a connect problem, as blackbox says. */
        if (r->reason == R_TIMEOUT && conn == 0 && dns > 0)
            r->reason = R_CONNECT;
        return;
    }
    if (t->cfg->kind == PROBE_TCP) {
        r->success = 1;
        return;
    }
    if (!status_ok(t->cfg, r->status)) {
        r->reason = R_STATUS;
        return;
    }
    if (t->re) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)(t->body.buf ? t->body.buf : ""), t->body.len, 0, 0,
                             t->md, NULL);
        if (rc < 0) {
            r->regex_failed = 1;
            r->reason = R_REGEX;
            return;
        }
    }
    r->success = 1;
}

/* Prometheus' staleness marker: the series ended (a NaN the store keeps bit-exact). */
static double stale_nan(void)
{
    const uint64_t bits = 0x7ff0000000000002ull;
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/*
 * Append one target's latest result to b. prev, for the store only, is the
 * result before it: a failure reason that no longer holds gets a staleness
 * marker, so a query stops seeing it at once instead of for the 5-minute
 * lookback (the /metrics snapshot simply leaves it out).
 */
static void emit_result(struct metric_buf *b, const struct target *t, const struct result *r,
                        const struct result *prev)
{
    const char *svc = t->cfg->name, *tg = t->cfg->target;
    struct metric_label l[3] = {{"service", svc}, {"target", tg}, {NULL, NULL}};
    metric_fam(b, "probe_success", "1 if the probe succeeded, else 0.", METRIC_GAUGE);
    metric_add(b, r->success, 2, l);
    /* "Down for two probes in a row" holds at any interval; a `for:` would not. */
    metric_fam(b, "sitrep_probe_consecutive_failures",
               "Failed probes in a row up to the latest (0 once one succeeds).", METRIC_GAUGE);
    metric_add(b, r->streak, 2, l);
    metric_fam(b, "probe_duration_seconds", "How long the probe took, in seconds.", METRIC_GAUGE);
    metric_add(b, r->total, 2, l);
    metric_fam(b, "probe_dns_lookup_time_seconds", "Time spent resolving the name.", METRIC_GAUGE);
    metric_add(b, r->phase[PH_RESOLVE], 2, l);
    metric_fam(b,
               t->cfg->kind == PROBE_HTTP ? "probe_http_duration_seconds"
                                          : "probe_tcp_duration_seconds",
               "Duration of each phase of the probe (resolve, connect, tls, processing "
               "= to the first byte, transfer).",
               METRIC_GAUGE);
    size_t nph = t->cfg->kind == PROBE_HTTP ? PH_N : PH_PROCESSING;
    for (size_t i = 0; i < nph; i++) {
        l[2] = (struct metric_label){"phase", phase_names[i]};
        metric_add(b, r->phase[i], 3, l);
    }
    if (t->cfg->kind == PROBE_HTTP) {
        metric_fam(b, "probe_http_status_code", "Response status of the last request (0: none).",
                   METRIC_GAUGE);
        metric_add(b, (double)r->status, 2, l);
        metric_fam(b, "probe_http_version", "HTTP version of the response (11 = 1.1).",
                   METRIC_GAUGE);
        metric_add(b, (double)r->http_version, 2, l);
        metric_fam(b, "probe_http_redirects", "Redirects followed.", METRIC_GAUGE);
        metric_add(b, (double)r->redirects, 2, l);
        metric_fam(b, "probe_http_ssl", "1 if the final connection used TLS.", METRIC_GAUGE);
        metric_add(b, r->tls, 2, l);
        if (t->re) {
            metric_fam(b, "probe_failed_due_to_regex", "1 if the body did not match body_regex.",
                       METRIC_GAUGE);
            metric_add(b, r->regex_failed, 2, l);
        }
    }
    if (r->cert_expiry > 0) {
        metric_fam(b, "probe_ssl_earliest_cert_expiry",
                   "When the first certificate of the chain expires, in unixtime.", METRIC_GAUGE);
        metric_add(b, r->cert_expiry, 2, l);
    }
    int ended = prev && prev->valid && !prev->success && (r->success || r->reason != prev->reason);
    if (!r->success || ended) {
        metric_fam(b, "sitrep_probe_failure_reason",
                   "1 for the reason the latest probe failed (dns, connect, tls, timeout, "
                   "status, regex, other).",
                   METRIC_GAUGE);
        if (ended) {
            l[2] = (struct metric_label){"reason", reason_names[prev->reason]};
            metric_add(b, stale_nan(), 3, l);
        }
        if (!r->success) {
            l[2] = (struct metric_label){"reason", reason_names[r->reason]};
            metric_add(b, 1, 3, l);
        }
    }
}

static void finish_one(struct probe *p, struct target *t, CURLcode res)
{
    curl_multi_remove_handle(p->multi, t->easy);
    t->inflight = 0;
    struct result r;
    judge(t, res, &r);
    atomic_fetch_add(&t->checks, 1);
    if (!r.success)
        atomic_fetch_add(&t->failures[r.reason], 1);
    t->streak = r.success ? 0 : t->streak + 1;
    r.streak = t->streak;
    int64_t ts = t->start_ms > t->last_ts_ms ? t->start_ms : t->last_ts_ms + 1;
    t->last_ts_ms = ts;
    metric_buf_reset(&p->work, ts);
    emit_result(&p->work, t, &r, &t->last); /* t->last: written by this thread only */
    if (p->sink)
        p->sink(p->sink_ctx, &p->work);
    if (!r.success && !t->failing)
        log_warn("probe %s (%s): failed: %s%s%s", t->cfg->name, t->cfg->target,
                 reason_names[r.reason], res != CURLE_OK ? ": " : "",
                 res != CURLE_OK ? curl_easy_strerror(res) : "");
    else if (r.success && t->failing)
        log_info("probe %s (%s): succeeds again", t->cfg->name, t->cfg->target);
    t->failing = !r.success;
    pthread_mutex_lock(&p->lock);
    t->last = r;
    pthread_mutex_unlock(&p->lock);
}

static void reap(struct probe *p)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(p->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            struct target *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            finish_one(p, t, msg->data.result);
        }
}

void probe_run_once(struct probe *p)
{
    int64_t now = util_now_ms();
    for (size_t i = 0; i < p->n; i++)
        if (!p->targets[i].inflight)
            start_one(p, &p->targets[i], now);
    int running = 1;
    while (running) {
        curl_multi_perform(p->multi, &running);
        reap(p);
        if (running)
            curl_multi_poll(p->multi, NULL, 0, 100, NULL);
    }
    reap(p);
}

/* ---- the tick: network_ok, self-metrics, snapshot ---- */

static void emit_network_ok(struct probe *p, struct metric_buf *b, const struct result *last)
{
    size_t done = 0, ok = 0;
    for (size_t i = 0; i < p->n; i++) {
        done += last[i].valid;
        ok += last[i].valid && last[i].success;
    }
    if (!done)
        return; /* nothing known yet: no sample rather than a false alarm */
    metric_fam(b, "sitrep_probe_network_ok",
               "1 if at least one target's latest probe succeeded; 0 if all failed (the "
               "daemon's own network is likely at fault, not the services).",
               METRIC_GAUGE);
    metric_add0(b, ok ? 1 : 0);
}

void probe_emit_self(struct probe *p, struct metric_buf *b)
{
    if (!p)
        return;
    metric_fam(b, "sitrep_probe_checks_total", "Probes run, by service.", METRIC_COUNTER);
    for (size_t i = 0; i < p->n; i++)
        metric_add1(b, (double)atomic_load(&p->targets[i].checks), "service",
                    p->targets[i].cfg->name);
    metric_fam(b, "sitrep_probe_failures_total", "Failed probes, by service and reason.",
               METRIC_COUNTER);
    for (size_t i = 0; i < p->n; i++)
        for (int r = 0; r < R_N; r++)
            metric_add2(b, (double)atomic_load(&p->targets[i].failures[r]), "service",
                        p->targets[i].cfg->name, "reason", reason_names[r]);
    size_t up = 0, down = 0, pending = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++) {
        const struct result *r = &p->targets[i].last;
        if (!r->valid)
            pending++;
        else if (r->success)
            up++;
        else
            down++;
    }
    pthread_mutex_unlock(&p->lock);
    metric_fam(b, "sitrep_probe_targets", "Probe targets by the state of their latest probe.",
               METRIC_GAUGE);
    metric_add1(b, (double)up, "state", "up");
    metric_add1(b, (double)down, "state", "down");
    metric_add1(b, (double)pending, "state", "pending");
}

void probe_tick(struct probe *p, int64_t ts_ms)
{
    if (!p->n)
        return;
    struct result *last = xcalloc(p->n, sizeof(*last));
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++)
        last[i] = p->targets[i].last;
    pthread_mutex_unlock(&p->lock);
    /* To the store: network_ok and self (the results went out as they finished). */
    metric_buf_reset(&p->work, ts_ms);
    emit_network_ok(p, &p->work, last);
    probe_emit_self(p, &p->work);
    if (p->sink)
        p->sink(p->sink_ctx, &p->work);
    /* The snapshot for /metrics: every target's latest result too. */
    metric_buf_reset(&p->work, ts_ms);
    for (size_t i = 0; i < p->n; i++)
        if (last[i].valid)
            emit_result(&p->work, &p->targets[i], &last[i], NULL);
    emit_network_ok(p, &p->work, last);
    probe_emit_self(p, &p->work);
    pthread_mutex_lock(&p->lock);
    metric_buf_swap(&p->work, &p->published);
    pthread_mutex_unlock(&p->lock);
    free(last);
    p->last_tick_ms = ts_ms;
}

const struct metric_buf *probe_last(struct probe *p)
{
    return &p->published;
}

int probe_expose(struct probe *p, struct sbuf *out)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    const struct metric_buf *bufs[] = {&p->published};
    int rc = p->published.nfams ? metric_expose(bufs, 1, out) : 0;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct probe *p = arg;
    const int64_t tick = (int64_t)p->interval_s * 1000;
    int64_t next_tick = (util_now_ms() / tick + 1) * tick;
    while (!atomic_load(&p->stop)) {
        int64_t now = util_now_ms(), next = next_tick;
        for (size_t i = 0; i < p->n; i++) {
            struct target *t = &p->targets[i];
            int64_t iv = t->cfg->interval_ms;
            if (now >= t->next_due_ms) {
                if (!t->inflight)
                    start_one(p, t, now);
                t->next_due_ms += iv;
                if (t->next_due_ms <= now) /* overran: skip, never queue */
                    t->next_due_ms += (now - t->next_due_ms) / iv * iv + iv;
            }
            if (t->next_due_ms < next)
                next = t->next_due_ms;
        }
        int running;
        curl_multi_perform(p->multi, &running);
        reap(p);
        now = util_now_ms();
        if (now >= next_tick) {
            probe_tick(p, next_tick);
            next_tick += tick;
            if (now >= next_tick)
                next_tick = (now / tick + 1) * tick;
        }
        int64_t wait = (next < next_tick ? next : next_tick) - util_now_ms();
        curl_multi_poll(p->multi, NULL, 0, (int)(wait < 0 ? 0 : wait > 1000 ? 1000 : wait), NULL);
    }
    return NULL;
}

int probe_start(struct probe *p)
{
    if (!p->n || p->running)
        return 0;
    atomic_store(&p->stop, 0);
    int rc = pthread_create(&p->thread, NULL, run, p);
    if (rc != 0)
        return log_error("probe: cannot start thread: %s", strerror(rc));
    p->running = 1;
    return 0;
}

void probe_stop(struct probe *p)
{
    if (!p || !p->running)
        return;
    atomic_store(&p->stop, 1);
    curl_multi_wakeup(p->multi);
    pthread_join(p->thread, NULL);
    p->running = 0;
}
