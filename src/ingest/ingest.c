/*
 * ingest.c: the ingestion thread and the module's public face (ingest.h).
 * The thread polls its files every 200 ms (and without pause while there is
 * a backlog), and on every whole interval of wall-clock time emits one
 * batch: the services' series and its own counters, to the sink (the store)
 * and as the snapshot /metrics serves. Offsets are saved right after the
 * sink has taken the batch, so the saved positions and the counts in the
 * store describe the same lines.
 *
 * Also here: the config's `logs:` entries (defaults, copy, comparison,
 * names), which config.c fills and the daemon hands to ingest_new().
 */
#include "ingest/ingest_internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define POLL_MS      200
#define POLL_BUDGET  ((uint64_t)16 << 20) /* bytes per poll, so ticks stay on time */
#define MIN_READ_BUF ((size_t)256 << 10)

struct ingest {
    int interval_s;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
    char *offsets_path;            /* NULL: offsets are not kept; owned */
    struct ingest__source **srcs;  /* owned */
    struct ingest__service **svcs; /* &srcs[i]->svc, for emitting */
    size_t n;
    struct ingest__tail tail;
    int64_t last_scan_ms, last_tick_ms;
    uint64_t polls;
    int save_failing;

    struct metric_buf work;
    pthread_mutex_t lock; /* guards published and diag */
    struct metric_buf published;
    struct sbuf diag; /* ingest_diagnose's answer as of the last tick */

    pthread_t thread;
    int running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;
};

/* ---- the config's entries ---- */

void ingest_log_defaults(struct ingest_log *l)
{
    memset(l, 0, sizeof(*l));
    l->format = INGEST_FMT_COMBINED;
    l->max_routes = INGEST_DEFAULT_MAX_ROUTES;
    l->max_files = INGEST_DEFAULT_MAX_FILES;
    l->max_line = INGEST_DEFAULT_MAX_LINE;
    l->retry_window_ms = INGEST_DEFAULT_RETRY_WINDOW_MS;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ingest_log_release(struct ingest_log *l)
{
    free(l->service);
    free_strv(l->paths, l->npaths);
    for (int f = 0; f < INGEST_NFIELDS; f++)
        free(l->fields[f]);
    free(l->pattern);
    free_strv(l->routes, l->nroutes);
    for (size_t i = 0; i < l->ncounters; i++) {
        free(l->counters[i].name);
        free(l->counters[i].regex);
    }
    free(l->counters);
    memset(l, 0, sizeof(*l));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static char **dup_strv(char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void ingest_log_copy(struct ingest_log *dst, const struct ingest_log *src)
{
    *dst = *src;
    dst->service = dup_or_null(src->service);
    dst->paths = dup_strv(src->paths, src->npaths);
    for (int f = 0; f < INGEST_NFIELDS; f++)
        dst->fields[f] = dup_or_null(src->fields[f]);
    dst->pattern = dup_or_null(src->pattern);
    dst->routes = dup_strv(src->routes, src->nroutes);
    dst->counters = src->ncounters ? xcalloc(src->ncounters, sizeof(*dst->counters)) : NULL;
    for (size_t i = 0; i < src->ncounters; i++) {
        dst->counters[i].name = xstrdup(src->counters[i].name);
        dst->counters[i].regex = xstrdup(src->counters[i].regex);
    }
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return 0;
    return 1;
}

static int log_eq(const struct ingest_log *a, const struct ingest_log *b)
{
    if (!str_eq(a->service, b->service) || !strv_eq(a->paths, a->npaths, b->paths, b->npaths) ||
        a->format != b->format || a->request_time != b->request_time ||
        !str_eq(a->pattern, b->pattern) || !strv_eq(a->routes, a->nroutes, b->routes, b->nroutes) ||
        a->max_routes != b->max_routes || a->max_files != b->max_files ||
        a->max_line != b->max_line || a->retry_window_ms != b->retry_window_ms ||
        a->from_beginning != b->from_beginning || a->ncounters != b->ncounters ||
        a->client_forwarded != b->client_forwarded)
        return 0;
    for (int f = 0; f < INGEST_NFIELDS; f++)
        if (!str_eq(a->fields[f], b->fields[f]))
            return 0;
    for (size_t i = 0; i < a->ncounters; i++)
        if (!str_eq(a->counters[i].name, b->counters[i].name) ||
            !str_eq(a->counters[i].regex, b->counters[i].regex))
            return 0;
    return 1;
}

int ingest_logs_equal(const struct ingest_log *a, size_t na, const struct ingest_log *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!log_eq(&a[i], &b[i]))
            return 0;
    return 1;
}

int ingest_format_parse(const char *s, enum ingest_format *out)
{
    static const char *const names[] = {"common", "combined", "json", "pattern"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum ingest_format)i;
            return 0;
        }
    return -1;
}

int ingest_unit_parse(const char *s, enum ingest_unit *out)
{
    static const struct {
        const char *name;
        enum ingest_unit u;
    } names[] = {
        {"none", INGEST_UNIT_NONE},       {"s", INGEST_UNIT_S},
        {"seconds", INGEST_UNIT_S},       {"ms", INGEST_UNIT_MS},
        {"milliseconds", INGEST_UNIT_MS}, {"us", INGEST_UNIT_US},
        {"microseconds", INGEST_UNIT_US},
    };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].u;
            return 0;
        }
    return -1;
}

int ingest_check_service(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.:-") != n) {
        snprintf(err, errlen, "want 1 to 64 of A-Z a-z 0-9 _ . : -");
        return -1;
    }
    return 0;
}

/* ---- lifecycle ---- */

static void source_free(struct ingest__source *src)
{
    if (!src)
        return;
    ingest__source_close(src);
    ingest__parser_release(&src->parser);
    ingest__service_release(&src->svc);
    ingest_log_release(&src->cfg);
    free(src);
}

static void ingest_destroy(struct ingest *ing)
{
    for (size_t i = 0; i < ing->n; i++)
        source_free(ing->srcs[i]);
    free(ing->srcs);
    free(ing->svcs);
    free(ing->offsets_path);
    ingest__tail_release(&ing->tail);
    metric_buf_release(&ing->work);
    metric_buf_release(&ing->published);
    sbuf_release(&ing->diag);
    pthread_mutex_destroy(&ing->lock);
    pthread_mutex_destroy(&ing->stop_lock);
    pthread_cond_destroy(&ing->stop_cond);
    free(ing);
}

struct ingest *ingest_new(const struct ingest_opts *o)
{
    struct ingest *ing = xcalloc(1, sizeof(*ing));
    ing->interval_s = o->interval_s > 0 ? o->interval_s : 1;
    ing->sink = o->sink;
    ing->sink_ctx = o->sink_ctx;
    metric_buf_init(&ing->work);
    metric_buf_init(&ing->published);
    sbuf_init(&ing->diag, 1 << 20);
    pthread_mutex_init(&ing->lock, NULL);
    pthread_mutex_init(&ing->stop_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&ing->stop_cond, &ca);
    pthread_condattr_destroy(&ca);

    size_t cap = MIN_READ_BUF;
    ing->srcs = o->nlogs ? xcalloc(o->nlogs, sizeof(*ing->srcs)) : NULL;
    ing->svcs = o->nlogs ? xcalloc(o->nlogs, sizeof(*ing->svcs)) : NULL;
    for (size_t i = 0; i < o->nlogs; i++) {
        struct ingest__source *src = xcalloc(1, sizeof(*src));
        ing->srcs[ing->n++] = src;
        ingest_log_copy(&src->cfg, &o->logs[i]);
        struct ingest_log *l = &src->cfg;
        if (!l->max_line)
            l->max_line = INGEST_DEFAULT_MAX_LINE;
        if (!l->max_files)
            l->max_files = INGEST_DEFAULT_MAX_FILES;
        if (!l->max_routes)
            l->max_routes = INGEST_DEFAULT_MAX_ROUTES;
        /* Room for a whole line of max_line plus the byte before it, with slack. */
        if (2 * (size_t)l->max_line + 2 > cap)
            cap = 2 * (size_t)l->max_line + 2;
        char err[512];
        if (ingest__parser_init(&src->parser, l, err, sizeof(err)) < 0 ||
            ingest__service_init(&src->svc, l, err, sizeof(err)) < 0) {
            log_error("ingest: %s: %s", l->service, err);
            ingest_destroy(ing);
            return NULL;
        }
        ing->svcs[i] = &src->svc;
    }
    ingest__tail_init(&ing->tail, cap);
    if (o->state_dir && ing->n) {
        if (mkdir(o->state_dir, 0750) < 0 && errno != EEXIST)
            log_warn("ingest: cannot create %s: %s; offsets will not be kept", o->state_dir,
                     strerror(errno));
        else {
            size_t len = strlen(o->state_dir) + sizeof("/offsets");
            ing->offsets_path = xmalloc(len);
            snprintf(ing->offsets_path, len, "%s/offsets", o->state_dir);
            ingest__offsets_load(&ing->tail, ing->offsets_path);
            for (size_t i = 0; i < ing->n; i++)
                ingest__offsets_apply_retired(&ing->tail, ing->srcs[i]);
        }
    }
    return ing;
}

void ingest_free(struct ingest *ing)
{
    if (!ing)
        return;
    ingest_stop(ing);
    ingest_destroy(ing);
}

uint64_t ingest_poll(struct ingest *ing, int64_t now_ms)
{
    uint64_t total = 0;
    int rescan = !ing->last_scan_ms || now_ms - ing->last_scan_ms >= 1000;
    ing->tail.now_ms = now_ms;
    ing->tail.budget = POLL_BUDGET;
    /* Start with another log each time, so one with a huge backlog cannot starve the rest. */
    for (size_t k = 0; k < ing->n; k++)
        total += ingest__source_poll(&ing->tail, ing->srcs[(ing->polls + k) % ing->n], rescan);
    ing->polls++;
    if (rescan)
        ing->last_scan_ms = now_ms;
    return total;
}

/* ---- the batch ---- */

/* A file path as a label value: printable ASCII (the store takes UTF-8 only). */
static const char *path_label(const char *p, char *out, size_t cap)
{
    size_t o = 0;
    for (; *p && o + 1 < cap; p++)
        out[o++] = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f ? *p : '_';
    out[o] = '\0';
    return out;
}

static void emit_self(struct ingest *ing, struct metric_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } per_file[] = {
        {"sitrep_ingest_lines_total", "Non-empty lines read, malformed and overlong included.",
         offsetof(struct ingest__slot, lines)},
        {"sitrep_ingest_malformed_lines_total", "Lines that did not parse in the log's format.",
         offsetof(struct ingest__slot, malformed)},
        {"sitrep_ingest_overlong_lines_total", "Lines longer than max_line, skipped.",
         offsetof(struct ingest__slot, overlong)},
        {"sitrep_ingest_bytes_total", "Bytes of log read.", offsetof(struct ingest__slot, bytes)},
        {"sitrep_ingest_read_errors_total", "Failed reads of a log file.",
         offsetof(struct ingest__slot, read_errors)},
    };
    char path[512];
    for (size_t f = 0; f < ARRAY_SIZE(per_file); f++) {
        metric_fam(b, per_file[f].name, per_file[f].help, METRIC_COUNTER);
        for (size_t i = 0; i < ing->n; i++)
            for (size_t k = 0; k < ing->srcs[i]->nslots; k++) {
                const struct ingest__slot *s = ing->srcs[i]->slots[k];
                uint64_t v = *(const uint64_t *)((const char *)s + per_file[f].off);
                metric_add2(b, (double)v, "service", ing->srcs[i]->cfg.service, "path",
                            path_label(s->path, path, sizeof(path)));
            }
    }
    metric_fam(b, "sitrep_ingest_rotations_total",
               "Log rotations seen: the file moved away or deleted (rename), or cut (truncate).",
               METRIC_COUNTER);
    for (size_t i = 0; i < ing->n; i++)
        for (size_t k = 0; k < ing->srcs[i]->nslots; k++) {
            const struct ingest__slot *s = ing->srcs[i]->slots[k];
            struct metric_label l[3] = {{"service", ing->srcs[i]->cfg.service},
                                        {"path", path_label(s->path, path, sizeof(path))},
                                        {"kind", "rename"}};
            metric_add(b, (double)s->renames, 3, l);
            l[2].value = "truncate";
            metric_add(b, (double)s->truncations, 3, l);
        }
    metric_fam(b, "sitrep_ingest_files_followed",
               "Log files open: at their configured path, or moved away and still read.",
               METRIC_GAUGE);
    for (size_t i = 0; i < ing->n; i++) {
        size_t open = 0;
        for (size_t k = 0; k < ing->srcs[i]->nslots; k++)
            open += (ing->srcs[i]->slots[k]->cur != NULL) + ing->srcs[i]->slots[k]->nold;
        metric_add1(b, (double)open, "service", ing->srcs[i]->cfg.service);
    }
    metric_fam(b, "sitrep_ingest_files_refused",
               "Files a glob matched beyond max_files in the last scan (not followed).",
               METRIC_GAUGE);
    for (size_t i = 0; i < ing->n; i++) {
        size_t r = 0;
        for (size_t g = 0; ing->srcs[i]->refused && g < ing->srcs[i]->cfg.npaths; g++)
            r += ing->srcs[i]->refused[g];
        metric_add1(b, (double)r, "service", ing->srcs[i]->cfg.service);
    }
    metric_fam(b, "sitrep_ingest_cpu_seconds_total", "CPU time of the ingestion thread.",
               METRIC_COUNTER);
    metric_add0(b, (double)util_thread_cpu_ns() / 1e9);
}

/* Bytes of a kept line as JSON string content: printable ASCII, the rest as \xHH. */
static void json_bytes(struct sbuf *o, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_addc(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            sbuf_addc(o, '\\');
            sbuf_addc(o, (char)c);
        } else if (c >= 0x20 && c < 0x7f) {
            sbuf_addc(o, (char)c);
        } else {
            char e[5] = {'\\', '\\', 'x', hex[c >> 4], hex[c & 15]};
            sbuf_add(o, e, 5);
        }
    }
    sbuf_addc(o, '"');
}

static void render_diag(struct ingest *ing, struct sbuf *o)
{
    sbuf_reset(o);
    sbuf_adds(o, "{\"files\":[");
    int first = 1;
    for (size_t i = 0; i < ing->n; i++)
        for (size_t k = 0; k < ing->srcs[i]->nslots; k++) {
            const struct ingest__slot *s = ing->srcs[i]->slots[k];
            sbuf_adds(o, first ? "{\"service\":" : ",{\"service\":");
            first = 0;
            json_str(o, ing->srcs[i]->cfg.service);
            sbuf_adds(o, ",\"path\":");
            json_bytes(o, s->path, strlen(s->path));
            sbuf_addf(o, ",\"lines\":%llu,\"malformed\":%llu,\"overlong\":%llu,\"samples\":[",
                      (unsigned long long)s->lines, (unsigned long long)s->malformed,
                      (unsigned long long)s->overlong);
            for (size_t b = 0; b < s->nbad; b++) {
                const struct ingest__bad *bad = &s->bad[b];
                sbuf_addf(o, "%s{\"offset\":%lld,\"line_number\":", b ? "," : "",
                          (long long)bad->offset);
                if (bad->lineno > 0)
                    sbuf_addf(o, "%lld", (long long)bad->lineno);
                else
                    sbuf_adds(o, "null");
                sbuf_adds(o, ",\"reason\":");
                json_str(o, bad->reason);
                sbuf_adds(o, ",\"line\":");
                json_bytes(o, bad->line, bad->len);
                sbuf_addc(o, '}');
            }
            sbuf_adds(o, "]}");
        }
    sbuf_adds(o, "]}\n");
}

void ingest_tick(struct ingest *ing, int64_t ts_ms)
{
    if (!ing->n)
        return;
    metric_buf_reset(&ing->work, ts_ms);
    ingest__services_emit(ing->svcs, ing->n, &ing->work, ing->interval_s);
    emit_self(ing, &ing->work);
    if (ing->sink)
        ing->sink(ing->sink_ctx, &ing->work);
    struct sbuf d;
    sbuf_init(&d, 1 << 20);
    render_diag(ing, &d);
    pthread_mutex_lock(&ing->lock);
    metric_buf_swap(&ing->work, &ing->published);
    struct sbuf old = ing->diag;
    ing->diag = d;
    pthread_mutex_unlock(&ing->lock);
    sbuf_release(&old);
    ing->last_tick_ms = ts_ms;
    /* After the sink: a saved position never runs ahead of the counts in the store. */
    if (ing->offsets_path && ing->tail.dirty) {
        int rc = ingest__offsets_save(&ing->tail, ing->srcs, ing->n, ing->offsets_path, 0);
        if (rc == 0 && ing->save_failing)
            log_info("ingest: offsets saved again");
        ing->save_failing = rc < 0;
    }
}

const struct metric_buf *ingest_last(struct ingest *ing)
{
    return &ing->published;
}

int ingest_expose(struct ingest *ing, struct sbuf *out)
{
    if (!ing)
        return 0;
    pthread_mutex_lock(&ing->lock);
    const struct metric_buf *bufs[] = {&ing->published};
    int rc = metric_expose(bufs, 1, out);
    pthread_mutex_unlock(&ing->lock);
    return rc;
}

void ingest_diagnose(struct ingest *ing, struct sbuf *out)
{
    pthread_mutex_lock(&ing->lock);
    if (ing->diag.len)
        sbuf_add(out, ing->diag.buf, ing->diag.len);
    else
        sbuf_adds(out, "{\"files\":[]}\n");
    pthread_mutex_unlock(&ing->lock);
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct ingest *ing = arg;
    const int64_t interval = (int64_t)ing->interval_s * 1000;
    int64_t now = util_now_ms(), next_tick = (now / interval + 1) * interval, next_poll = now;
    for (;;) {
        now = util_now_ms();
        uint64_t got = 0;
        if (now >= next_poll) {
            got = ingest_poll(ing, now);
            next_poll = now + POLL_MS;
        }
        now = util_now_ms();
        if (now >= next_tick) {
            ingest_tick(ing, next_tick);
            next_tick += interval;
            if (now >= next_tick) /* overran: skip the missed ticks, never queue them */
                next_tick = (now / interval + 1) * interval;
        }
        int64_t wake = got >= POLL_BUDGET ? now : (next_poll < next_tick ? next_poll : next_tick);
        struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (long)(wake % 1000) * 1000000};
        pthread_mutex_lock(&ing->stop_lock);
        while (!ing->stop && util_now_ms() < wake)
            if (pthread_cond_timedwait(&ing->stop_cond, &ing->stop_lock, &ts) != 0)
                break;
        int stop = ing->stop;
        pthread_mutex_unlock(&ing->stop_lock);
        if (stop)
            break;
        if (got >= POLL_BUDGET)
            next_poll = 0; /* a backlog: read on at once */
    }
    /* A last batch of what was counted since the last tick, then its offsets, synced. */
    now = util_now_ms();
    ingest_tick(ing, now > ing->last_tick_ms ? now : ing->last_tick_ms + 1);
    if (ing->offsets_path)
        ingest__offsets_save(&ing->tail, ing->srcs, ing->n, ing->offsets_path, 1);
    return NULL;
}

int ingest_start(struct ingest *ing)
{
    if (!ing->n || ing->running)
        return 0;
    ing->stop = 0;
    int rc = pthread_create(&ing->thread, NULL, run, ing);
    if (rc != 0)
        return log_error("ingest: cannot start thread: %s", strerror(rc));
    ing->running = 1;
    return 0;
}

void ingest_stop(struct ingest *ing)
{
    if (!ing || !ing->running)
        return;
    pthread_mutex_lock(&ing->stop_lock);
    ing->stop = 1;
    pthread_cond_signal(&ing->stop_cond);
    pthread_mutex_unlock(&ing->stop_lock);
    pthread_join(ing->thread, NULL);
    ing->running = 0;
}
