/*
 * scrape.c: the scraper (scrape.h): one thread, one libcurl multi handle,
 * one easy handle per target kept between scrapes (so keep-alive
 * connections are reused). A finished transfer is parsed with expfmt into
 * the work batch, stamped with the scrape's start, and handed to the sink.
 */
#include "scrape/scrape.h"
#include "ingest/expfmt.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_SCRATCH (EXPFMT_MAX_NAME + 16) /* "exported_" + a label name */
#define ACCEPT                                                                                     \
    "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

enum reason {
    R_CONNECT,
    R_TIMEOUT,
    R_TLS,
    R_STATUS,
    R_BODY_LIMIT,
    R_PARSE,
    R_SAMPLE_LIMIT,
    R_LABELS,
    R_OTHER,
    R_N
};
static const char *const reason_names[R_N] = {"connect",      "timeout",    "tls",
                                              "status",       "body_limit", "parse",
                                              "sample_limit", "labels",     "other"};

struct job_stats {
    atomic_ullong scrapes, failures[R_N];
};

struct target {
    const struct scrape_job *job; /* in the scraper's config copy */
    size_t job_idx;
    char *url, *instance;                              /* instance: the label's value */
    struct metric_label labels[SCRAPE_MAX_LABELS + 2]; /* job, instance, extras; sorted */
    size_t nlabels;
    CURL *easy;
    struct curl_slist *hdrs;
    struct sbuf body;
    int over_limit;
    int inflight;
    int64_t next_due_ms, start_ms, last_ts_ms;
    int64_t start_ns;
    /* Last result, for scrape_diagnose (under the scraper's lock). */
    int up;
    int64_t last_scrape_ms;
    double duration;
    size_t samples;
    char error[512];
    int failing; /* logged once per failure streak */
};

struct scrape {
    struct scrape_config cfg; /* owned copy */
    struct job_stats *stats;  /* one per job */
    struct target *targets;
    size_t ntargets;
    CURLM *multi;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
    struct metric_buf work;
    pthread_mutex_t lock; /* guards the targets' last results */
    pthread_t thread;
    int running;
    atomic_int stop;
};

/* ---- setup ---- */

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct metric_label *)a)->name, ((const struct metric_label *)b)->name);
}

/* The instance of a target: host[:port] of its URL. */
static char *instance_of(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* no credentials in a label */
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    return xstrndup(p, n);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct target *t = ctx;
    if (sbuf_add(&t->body, data, size * n) < 0) {
        t->over_limit = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* The value of label name in a's n pairs, or NULL. */
static const char *pair_get(const struct scrape_pair *a, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0)
            return a[i].value;
    return NULL;
}

/* Target spec of job ji, with group g's labels over the job's (g NULL: none). */
static void target_init(struct scrape *s, struct target *t, size_t ji, const char *spec,
                        const struct scrape_group *g)
{
    const struct scrape_job *j = &s->cfg.jobs[ji];
    t->job = j;
    t->job_idx = ji;
    if (strstr(spec, "://")) {
        t->url = xstrdup(spec);
    } else {
        size_t n = strlen(j->scheme) + strlen(spec) + strlen(j->metrics_path) + 4;
        t->url = xmalloc(n);
        snprintf(t->url, n, "%s://%s%s", j->scheme, spec, j->metrics_path);
    }
    const struct scrape_pair *gl = g ? g->labels : NULL;
    size_t ngl = g ? g->nlabels : 0;
    const char *inst = pair_get(gl, ngl, "instance");
    if (!inst)
        inst = pair_get(j->labels, j->nlabels, "instance");
    t->instance = inst ? xstrdup(inst) : instance_of(t->url);
    t->labels[t->nlabels++] = (struct metric_label){"job", j->job};
    t->labels[t->nlabels++] = (struct metric_label){"instance", t->instance};
    /* The config parser keeps the union at SCRAPE_MAX_LABELS; the bound guards hand-made ones. */
    for (size_t i = 0; i < j->nlabels && t->nlabels < ARRAY_SIZE(t->labels); i++)
        if (strcmp(j->labels[i].name, "instance") != 0 && !pair_get(gl, ngl, j->labels[i].name))
            t->labels[t->nlabels++] = (struct metric_label){j->labels[i].name, j->labels[i].value};
    for (size_t i = 0; i < ngl && t->nlabels < ARRAY_SIZE(t->labels); i++)
        if (strcmp(gl[i].name, "instance") != 0)
            t->labels[t->nlabels++] = (struct metric_label){gl[i].name, gl[i].value};
    qsort(t->labels, t->nlabels, sizeof(t->labels[0]), cmp_label);
    sbuf_init(&t->body, (size_t)j->body_limit);

    CURL *e = t->easy = curl_easy_init();
    if (!e) {
        log_error("scrape: out of memory for curl");
        abort();
    }
    t->hdrs = curl_slist_append(NULL, ACCEPT);
    char h[128];
    snprintf(h, sizeof(h), "X-Prometheus-Scrape-Timeout-Seconds: %g", j->timeout_ms / 1000.0);
    t->hdrs = curl_slist_append(t->hdrs, h);
    for (size_t i = 0; i < j->nheaders; i++) {
        struct sbuf hb;
        sbuf_init(&hb, 16384);
        sbuf_addf(&hb, "%s: %s", j->headers[i].name, j->headers[i].value);
        t->hdrs = curl_slist_append(t->hdrs, hb.buf);
        sbuf_release(&hb);
    }
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sitrep/" SITREP_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* gzip; the cap applies after decoding */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    if (j->tls_insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (j->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, j->ca_file);
}

static char **strs_copy(char *const *a, size_t n)
{
    char **b = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t k = 0; k < n; k++)
        b[k] = xstrdup(a[k]);
    return b;
}

static void pairs_copy(struct scrape_pair *dst, const struct scrape_pair *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dst[k] = (struct scrape_pair){xstrdup(src[k].name), xstrdup(src[k].value)};
}

static void config_copy(struct scrape_config *dst, const struct scrape_config *src)
{
    dst->njobs = src->njobs;
    dst->jobs = src->njobs ? xcalloc(src->njobs, sizeof(*dst->jobs)) : NULL;
    for (size_t i = 0; i < src->njobs; i++) {
        const struct scrape_job *a = &src->jobs[i];
        struct scrape_job *b = &dst->jobs[i];
        *b = *a;
        b->job = xstrdup(a->job);
        b->scheme = xstrdup(a->scheme ? a->scheme : "http");
        b->metrics_path = xstrdup(a->metrics_path ? a->metrics_path : "/metrics");
        b->ca_file = a->ca_file ? xstrdup(a->ca_file) : NULL;
        b->targets = strs_copy(a->targets, a->ntargets);
        pairs_copy(b->labels, a->labels, a->nlabels);
        b->groups = xcalloc(a->ngroups ? a->ngroups : 1, sizeof(*b->groups));
        for (size_t k = 0; k < a->ngroups; k++) {
            const struct scrape_group *ga = &a->groups[k];
            struct scrape_group *gb = &b->groups[k];
            *gb = *ga;
            gb->targets = strs_copy(ga->targets, ga->ntargets);
            pairs_copy(gb->labels, ga->labels, ga->nlabels);
        }
        b->headers = xcalloc(a->nheaders ? a->nheaders : 1, sizeof(*b->headers));
        pairs_copy(b->headers, a->headers, a->nheaders);
        if (b->interval_ms <= 0)
            b->interval_ms = SCRAPE_DEFAULT_INTERVAL_MS;
        if (b->timeout_ms <= 0 || b->timeout_ms > b->interval_ms)
            b->timeout_ms = b->interval_ms < SCRAPE_DEFAULT_TIMEOUT_MS ? b->interval_ms
                                                                       : SCRAPE_DEFAULT_TIMEOUT_MS;
        if (b->body_limit <= 0)
            b->body_limit = SCRAPE_DEFAULT_BODY_LIMIT;
    }
}

struct scrape *scrape_new(const struct scrape_opts *o)
{
    struct scrape *s = xcalloc(1, sizeof(*s));
    curl_global_init(CURL_GLOBAL_DEFAULT); /* refcounted; idempotent after the first */
    if (o->config)
        config_copy(&s->cfg, o->config);
    s->sink = o->sink;
    s->sink_ctx = o->sink_ctx;
    metric_buf_init(&s->work);
    pthread_mutex_init(&s->lock, NULL);
    s->stats = xcalloc(s->cfg.njobs ? s->cfg.njobs : 1, sizeof(*s->stats));
    for (size_t i = 0; i < s->cfg.njobs; i++) {
        s->ntargets += s->cfg.jobs[i].ntargets;
        for (size_t g = 0; g < s->cfg.jobs[i].ngroups; g++)
            s->ntargets += s->cfg.jobs[i].groups[g].ntargets;
    }
    s->targets = xcalloc(s->ntargets ? s->ntargets : 1, sizeof(*s->targets));
    s->multi = curl_multi_init();
    size_t n = 0;
    int64_t now = util_now_ms();
    for (size_t i = 0; i < s->cfg.njobs; i++) {
        const struct scrape_job *j = &s->cfg.jobs[i];
        for (size_t k = 0; k < j->ntargets; k++)
            target_init(s, &s->targets[n++], i, j->targets[k], NULL);
        for (size_t g = 0; g < j->ngroups; g++)
            for (size_t k = 0; k < j->groups[g].ntargets; k++)
                target_init(s, &s->targets[n++], i, j->groups[g].targets[k], &j->groups[g]);
    }
    for (size_t i = 0; i < s->ntargets; i++) {
        /* Spread targets over their interval (by URL), as Prometheus does. */
        struct target *t = &s->targets[i];
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = t->url; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        int64_t iv = t->job->interval_ms;
        t->next_due_ms = (now / iv) * iv + (int64_t)(h % (uint64_t)iv);
        if (t->next_due_ms < now)
            t->next_due_ms += iv;
    }
    return s;
}

void scrape_free(struct scrape *s)
{
    if (!s)
        return;
    scrape_stop(s);
    for (size_t i = 0; i < s->ntargets; i++) {
        struct target *t = &s->targets[i];
        if (t->inflight)
            curl_multi_remove_handle(s->multi, t->easy);
        curl_easy_cleanup(t->easy);
        curl_slist_free_all(t->hdrs);
        sbuf_release(&t->body);
        free(t->url);
        free(t->instance);
    }
    curl_multi_cleanup(s->multi);
    free(s->targets);
    free(s->stats);
    metric_buf_release(&s->work);
    pthread_mutex_destroy(&s->lock);
    scrape_config_release(&s->cfg);
    free(s);
    curl_global_cleanup();
}

/* ---- one scrape ---- */

static void start_one(struct scrape *s, struct target *t, int64_t now_ms)
{
    sbuf_reset(&t->body);
    t->over_limit = 0;
    t->start_ms = now_ms;
    t->start_ns = util_mono_ns();
    t->inflight = 1;
    curl_multi_add_handle(s->multi, t->easy);
}

/*
 * The sample's labels merged with the target's into out, sorted by name. Returns the count, or -1
 * if more than METRIC_MAX_LABELS. Scraped labels that clash with a target label become
 * exported_NAME unless honor_labels; empty values drop the label (Prometheus: an empty label is an
 * absent one).
 */
static int merge_labels(const struct target *t, const struct expfmt_sample *e,
                        struct metric_label *out, char (*names)[NAME_SCRATCH])
{
    size_t n = 0;
    int honor = t->job->honor_labels;
    for (size_t i = 0; i < e->nlabels; i++) {
        const char *name = e->labels[i].name;
        if (name[0] == '_' && name[1] == '_')
            continue; /* reserved for the store */
        const struct metric_label *clash = NULL;
        for (size_t k = 0; k < t->nlabels && !clash; k++)
            if (strcmp(t->labels[k].name, name) == 0)
                clash = &t->labels[k];
        if (clash && !honor) {
            snprintf(names[i], NAME_SCRATCH, "exported_%s", name);
            name = names[i];
        }
        if (!e->labels[i].value[0])
            continue;
        if (n == METRIC_MAX_LABELS)
            return -1;
        out[n++] = (struct metric_label){name, e->labels[i].value};
    }
    for (size_t k = 0; k < t->nlabels; k++) {
        int have = 0;
        for (size_t i = 0; i < n && !have; i++)
            have = strcmp(out[i].name, t->labels[k].name) == 0;
        if (have)
            continue;
        /* honor_labels: a scraped empty value removed the label on purpose. */
        int emptied = 0;
        for (size_t i = 0; honor && i < e->nlabels && !emptied; i++)
            emptied = !e->labels[i].value[0] && strcmp(e->labels[i].name, t->labels[k].name) == 0;
        if (emptied || !t->labels[k].value[0])
            continue;
        if (n == METRIC_MAX_LABELS)
            return -1;
        out[n++] = t->labels[k];
    }
    qsort(out, n, sizeof(*out), cmp_label);
    return (int)n;
}

/* Parse the body into b; 0, or -1 with err and *why. */
static int parse_body(struct target *t, const char *ctype, struct metric_buf *b, size_t *nsamples,
                      enum reason *why, char *err, size_t errlen)
{
    enum expfmt_flavour f = ctype && strncmp(ctype, "application/openmetrics-text", 28) == 0
                                ? EXPFMT_OPENMETRICS
                                : EXPFMT_TEXT;
    struct expfmt p;
    expfmt_init(&p, t->body.buf ? t->body.buf : "", t->body.len, f);
    struct expfmt_sample e;
    struct metric_label lab[METRIC_MAX_LABELS];
    char names[EXPFMT_MAX_LABELS][NAME_SCRATCH];
    char prev[256] = "";
    int r, rc = 0;
    *nsamples = 0;
    while ((r = expfmt_next(&p, &e, err, errlen)) != 0) {
        if (r < 0) {
            *why = R_PARSE;
            rc = -1;
            break;
        }
        if (t->job->sample_limit && *nsamples >= t->job->sample_limit) {
            snprintf(err, errlen, "more than sample_limit (%u) samples", t->job->sample_limit);
            *why = R_SAMPLE_LIMIT;
            rc = -1;
            break;
        }
        int n = merge_labels(t, &e, lab, names);
        if (n < 0) {
            snprintf(err, errlen, "%u: more than %d labels with the target's", p.line,
                     METRIC_MAX_LABELS);
            *why = R_LABELS;
            rc = -1;
            break;
        }
        if (strcmp(prev, e.name) != 0) {
            metric_fam(b, e.name, e.help ? e.help : "", expfmt_metric_type(&e));
            snprintf(prev, sizeof(prev), "%s", e.name);
        }
        metric_add(b, e.value, (size_t)n, lab);
        (*nsamples)++;
    }
    if (rc == 0 && f == EXPFMT_OPENMETRICS && !p.eof) {
        snprintf(err, errlen, "%u: OpenMetrics exposition without # EOF (truncated?)", p.line);
        *why = R_PARSE;
        rc = -1;
    }
    expfmt_release(&p);
    return rc;
}

static void add_meta(struct metric_buf *b, const struct target *t, const char *name,
                     const char *help, double v)
{
    metric_fam(b, name, help, METRIC_GAUGE);
    metric_add(b, v, t->nlabels, t->labels);
}

static void finish_one(struct scrape *s, struct target *t, CURLcode res)
{
    curl_multi_remove_handle(s->multi, t->easy);
    t->inflight = 0;
    double dur = (double)(util_mono_ns() - t->start_ns) / 1e9;
    int64_t ts = t->start_ms > t->last_ts_ms ? t->start_ms : t->last_ts_ms + 1;
    t->last_ts_ms = ts;
    struct job_stats *st = &s->stats[t->job_idx];
    atomic_fetch_add(&st->scrapes, 1);

    char err[512] = "";
    enum reason why = R_OTHER;
    int ok = 0;
    size_t nsamples = 0;
    metric_buf_reset(&s->work, ts);
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (t->over_limit) {
        why = R_BODY_LIMIT;
        snprintf(err, sizeof(err), "body larger than body_limit (%lld bytes)", t->job->body_limit);
    } else if (res != CURLE_OK) {
        why = res == CURLE_OPERATION_TIMEDOUT                                           ? R_TIMEOUT
              : res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST       ? R_CONNECT
              : res == CURLE_SSL_CONNECT_ERROR || res == CURLE_PEER_FAILED_VERIFICATION ? R_TLS
                                                                                        : R_OTHER;
        snprintf(err, sizeof(err), "%s", curl_easy_strerror(res));
    } else if (status != 200) {
        why = R_STATUS;
        snprintf(err, sizeof(err), "HTTP status %ld", status);
    } else {
        char *ctype = NULL;
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
        struct metric_mark m;
        metric_buf_mark(&s->work, &m);
        if (parse_body(t, ctype, &s->work, &nsamples, &why, err, sizeof(err)) == 0)
            ok = 1;
        else
            metric_buf_rollback(&s->work, &m); /* a failed scrape keeps none of its samples */
    }
    if (!ok) {
        atomic_fetch_add(&st->failures[why], 1);
        nsamples = 0;
    }
    add_meta(&s->work, t, "up", "1 if the last scrape of the target succeeded, else 0.", ok);
    add_meta(&s->work, t, "scrape_duration_seconds", "How long the scrape took.", dur);
    add_meta(&s->work, t, "scrape_samples_scraped", "Samples the target exposed.",
             (double)nsamples);
    add_meta(&s->work, t, "scrape_body_size_bytes",
             "Uncompressed size of the last scrape's body (to the cap).", (double)t->body.len);
    if (s->sink)
        s->sink(s->sink_ctx, &s->work);

    if (!ok && !t->failing)
        log_warn("scrape: %s (job %s): %s", t->url, t->job->job, err);
    else if (ok && t->failing)
        log_info("scrape: %s (job %s) answers again", t->url, t->job->job);
    pthread_mutex_lock(&s->lock);
    t->failing = !ok;
    t->up = ok;
    t->last_scrape_ms = ts;
    t->duration = dur;
    t->samples = nsamples;
    snprintf(t->error, sizeof(t->error), "%s", err);
    pthread_mutex_unlock(&s->lock);
}

static void reap(struct scrape *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            struct target *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            finish_one(s, t, msg->data.result);
        }
}

void scrape_run_once(struct scrape *s)
{
    int64_t now = util_now_ms();
    for (size_t i = 0; i < s->ntargets; i++)
        if (!s->targets[i].inflight)
            start_one(s, &s->targets[i], now);
    int running = 1;
    while (running) {
        curl_multi_perform(s->multi, &running);
        reap(s);
        if (running)
            curl_multi_poll(s->multi, NULL, 0, 100, NULL);
    }
    reap(s);
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct scrape *s = arg;
    while (!atomic_load(&s->stop)) {
        int64_t now = util_now_ms(), next = now + 1000;
        for (size_t i = 0; i < s->ntargets; i++) {
            struct target *t = &s->targets[i];
            int64_t iv = t->job->interval_ms;
            if (now >= t->next_due_ms) {
                if (!t->inflight) /* a scrape still running (timeout = interval) is not doubled */
                    start_one(s, t, now);
                t->next_due_ms += iv;
                if (t->next_due_ms <= now) /* overran: skip, never queue */
                    t->next_due_ms += (now - t->next_due_ms) / iv * iv + iv;
            }
            if (t->next_due_ms < next)
                next = t->next_due_ms;
        }
        int running;
        curl_multi_perform(s->multi, &running);
        reap(s);
        int64_t wait = next - util_now_ms();
        curl_multi_poll(s->multi, NULL, 0, (int)(wait < 0 ? 0 : wait > 1000 ? 1000 : wait), NULL);
    }
    return NULL;
}

int scrape_start(struct scrape *s)
{
    if (!s->ntargets || s->running)
        return 0;
    atomic_store(&s->stop, 0);
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0)
        return log_error("scrape: cannot start thread: %s", strerror(rc));
    s->running = 1;
    return 0;
}

void scrape_stop(struct scrape *s)
{
    if (!s || !s->running)
        return;
    atomic_store(&s->stop, 1);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);
    s->running = 0;
}

/* ---- reporting ---- */

void scrape_emit_self(struct scrape *s, struct metric_buf *b)
{
    if (!s)
        return;
    metric_fam(b, "sitrep_scrape_targets", "Scrape targets configured.", METRIC_GAUGE);
    metric_add0(b, (double)s->ntargets);
    metric_fam(b, "sitrep_scrape_scrapes_total", "Scrapes done, by job.", METRIC_COUNTER);
    for (size_t i = 0; i < s->cfg.njobs; i++)
        metric_add1(b, (double)atomic_load(&s->stats[i].scrapes), "job", s->cfg.jobs[i].job);
    metric_fam(b, "sitrep_scrape_failures_total", "Failed scrapes, by job and reason.",
               METRIC_COUNTER);
    for (size_t i = 0; i < s->cfg.njobs; i++)
        for (int r = 0; r < R_N; r++)
            metric_add2(b, (double)atomic_load(&s->stats[i].failures[r]), "job", s->cfg.jobs[i].job,
                        "reason", reason_names[r]);
}

void scrape_diagnose(struct scrape *s, struct sbuf *out)
{
    sbuf_adds(out, "{\"targets\":[");
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->ntargets; i++) {
        const struct target *t = &s->targets[i];
        sbuf_adds(out, i ? ",{\"job\":" : "{\"job\":");
        json_str(out, t->job->job);
        sbuf_adds(out, ",\"url\":");
        json_str(out, t->url);
        sbuf_adds(out, ",\"instance\":");
        json_str(out, t->instance);
        sbuf_addf(out, ",\"up\":%d,\"last_scrape_ms\":%lld,\"duration_seconds\":", t->up,
                  (long long)t->last_scrape_ms);
        json_value(out, t->duration);
        sbuf_addf(out, ",\"samples\":%zu,\"error\":", t->samples);
        json_str(out, t->error);
        sbuf_addc(out, '}');
    }
    pthread_mutex_unlock(&s->lock);
    sbuf_adds(out, "]}\n");
}
