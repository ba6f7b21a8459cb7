/*
 * tsdb_corpus.c: the C side of bench/tsdb_vs_prometheus.py, which compares
 * the store (src/tsdb/) with Prometheus on one corpus: a recording of this
 * host made by bench/record_corpus.c plus synthetic web-service series
 * (request counters per service/instance/route/method/status and classic
 * latency histograms), generated deterministically for the recording's
 * timestamps. Each subcommand does one job and prints key=value figures:
 *
 *   info CORPUS                    series, ticks, samples, time range
 *   openmetrics CORPUS OUT         every sample as OpenMetrics text (for
 *                                  promtool tsdb create-blocks-from openmetrics)
 *   labels CORPUS OUT              the series as JSON lines (promtool tsdb bench write)
 *   expose CORPUS TICKS DIR        the first TICKS ticks as text expositions
 *                                  DIR/000000.prom ... (for a Prometheus scrape)
 *   load CORPUS DIR                every sample into a store at DIR, flushed
 *                                  into raw blocks; bytes per sample of raw/
 *   read DIR SELECTOR END_MS REPS  decode speed of the whole store and latency
 *                                  of reading [END_MS - 1 h, END_MS] of SELECTOR
 *   head CORPUS TICKS JOB INST     allocator bytes per series of a store's head
 *                                  after TICKS ticks (job/instance labels added
 *                                  where missing, as a Prometheus scrape does)
 *
 * Option -p host|syn|all (before the subcommand) keeps only the recorded
 * series, only the synthetic ones, or both (the default).
 */
#include "tsdb/tsdb.h"
#include "util/log.h"
#include "util/util.h"

#include <ftw.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CORPUS_MAX_LABELS 16

enum corpus_part { CORPUS_ALL, CORPUS_HOST, CORPUS_SYN };

struct corpus_series {
    const char *family; /* interned: equal names share the pointer */
    struct metric_label l[CORPUS_MAX_LABELS];
    size_t nl;
};

struct corpus_tick {
    int64_t ts;
    uint32_t count;
    const uint8_t *recs; /* count x (u32 id, u64 value bits), unaligned */
};

/* ---- synthetic web-service series ---------------------------------------- */

#define SYN_SERVICES  10
#define SYN_INSTANCES 5
#define SYN_ROUTES    10
#define SYN_COMBOS    (SYN_SERVICES * SYN_INSTANCES * SYN_ROUTES)
#define SYN_STATUSES  5
#define SYN_BUCKETS   12
/* Series per combo: status counters, buckets, _sum, _count. */
#define SYN_SERIES (SYN_COMBOS * (SYN_STATUSES + SYN_BUCKETS + 2))

static const char *const syn_services[SYN_SERVICES] = {
    "api-gateway", "auth",      "billing", "cart",   "catalog",
    "checkout",    "inventory", "orders",  "search", "users"};
static const char *const syn_routes[SYN_ROUTES] = {"/",
                                                   "/healthz",
                                                   "/api/v1/items",
                                                   "/api/v1/items/{id}",
                                                   "/api/v1/search",
                                                   "/api/v1/login",
                                                   "/api/v1/orders",
                                                   "/api/v1/orders/{id}",
                                                   "/api/v1/cart",
                                                   "/api/v1/events"};
static const char *const syn_methods[SYN_ROUTES] = {"GET",  "GET",  "GET", "GET", "GET",
                                                    "POST", "POST", "GET", "PUT", "POST"};
static const char *const syn_statuses[SYN_STATUSES] = {"200", "304", "400", "404", "500"};
static const double syn_le[SYN_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  INFINITY};
static const char *const syn_le_str[SYN_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};

struct syn_combo {
    double rate;                /* mean requests per second */
    double phase;               /* of the slow swing of the rate */
    double mu, sigma;           /* log-normal latency */
    double pst[SYN_STATUSES];   /* cumulative status probabilities */
    double cnt[SYN_STATUSES];   /* http_requests_total by status */
    double bucket[SYN_BUCKETS]; /* cumulative */
    double sum, count;
};

struct syn {
    uint64_t rng;
    struct syn_combo c[SYN_COMBOS];
    char *inst[SYN_SERVICES * SYN_INSTANCES];
};

static uint64_t syn_rnd(struct syn *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

/* Uniform in (0, 1). */
static double syn_unif(struct syn *s)
{
    return ((double)(syn_rnd(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double syn_gauss(struct syn *s)
{
    return sqrt(-2 * log(syn_unif(s))) * cos(2 * M_PI * syn_unif(s));
}

static int syn_poisson(struct syn *s, double lambda)
{
    if (lambda > 30)
        return (int)fmax(0, floor(lambda + sqrt(lambda) * syn_gauss(s) + 0.5));
    double l = exp(-lambda), p = syn_unif(s);
    int k = 0;
    while (p > l) {
        p *= syn_unif(s);
        k++;
    }
    return k;
}

/* Fixed per-combo parameters, from a fixed seed: every run makes the same series. */
static void syn_init(struct syn *s)
{
    memset(s, 0, sizeof(*s));
    s->rng = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < SYN_SERVICES * SYN_INSTANCES; i++) {
        char b[32];
        snprintf(b, sizeof(b), "10.0.%d.%d:8080", i / SYN_INSTANCES, 10 + i % SYN_INSTANCES);
        s->inst[i] = xstrdup(b);
    }
    for (int i = 0; i < SYN_COMBOS; i++) {
        struct syn_combo *c = &s->c[i];
        int route = i % SYN_ROUTES;
        c->rate = 0.05 * pow(800, syn_unif(s)); /* 0.05 .. 40 requests/s, log-uniform */
        if (route == 1)
            c->rate = 0.2; /* health checks */
        c->phase = 2 * M_PI * syn_unif(s);
        c->mu = log(0.004 * pow(60, syn_unif(s))); /* medians 4 ms .. 240 ms */
        c->sigma = 0.3 + 0.7 * syn_unif(s);
        double p304 = strcmp(syn_methods[route], "GET") == 0 ? 0.15 * syn_unif(s) : 0;
        double p400 = 0.01 * syn_unif(s), p404 = 0.04 * syn_unif(s);
        double p500 = 0.02 * syn_unif(s) * syn_unif(s);
        double p[SYN_STATUSES] = {1 - p304 - p400 - p404 - p500, p304, p400, p404, p500};
        double acc = 0;
        for (int k = 0; k < SYN_STATUSES; k++)
            c->pst[k] = acc += p[k];
    }
}

static void syn_release(struct syn *s)
{
    for (int i = 0; i < SYN_SERVICES * SYN_INSTANCES; i++)
        free(s->inst[i]);
}

/* Advance every combo by one second: t is the tick number (for the rate's swing). */
static void syn_step(struct syn *s, size_t t)
{
    for (int i = 0; i < SYN_COMBOS; i++) {
        struct syn_combo *c = &s->c[i];
        double lambda = c->rate * (1 + 0.3 * sin(2 * M_PI * (double)t / 1800 + c->phase));
        int n = syn_poisson(s, lambda);
        for (int r = 0; r < n; r++) {
            double u = syn_unif(s);
            int st = 0;
            while (st < SYN_STATUSES - 1 && u > c->pst[st])
                st++;
            c->cnt[st] += 1;
            double lat = exp(c->mu + c->sigma * syn_gauss(s));
            if (st == 4)
                lat *= 4; /* errors are often timeouts */
            int b = 0;
            while (lat > syn_le[b])
                b++;
            for (; b < SYN_BUCKETS; b++)
                c->bucket[b] += 1;
            c->sum += lat;
            c->count += 1;
        }
    }
}

/* Value of synthetic series k (0 .. SYN_SERIES). */
static double syn_value(const struct syn *s, size_t k)
{
    if (k < SYN_COMBOS * SYN_STATUSES)
        return s->c[k / SYN_STATUSES].cnt[k % SYN_STATUSES];
    k -= SYN_COMBOS * SYN_STATUSES;
    if (k < SYN_COMBOS * SYN_BUCKETS)
        return s->c[k / SYN_BUCKETS].bucket[k % SYN_BUCKETS];
    k -= SYN_COMBOS * SYN_BUCKETS;
    if (k < SYN_COMBOS)
        return s->c[k].sum;
    return s->c[k - SYN_COMBOS].count;
}

/* ---- the corpus: recorded file + synthetic series ------------------------- */

struct corpus {
    uint8_t *buf; /* the recording, whole */
    size_t len;
    struct corpus_series *s; /* recorded ids first, then SYN_SERIES synthetic ones */
    size_t nrec, ns;
    struct corpus_tick *ticks;
    size_t nticks;
    enum corpus_part part;
    char **fams; /* interned family names */
    size_t nfams;
    /* iteration */
    struct syn syn;
    size_t next; /* tick to deliver next */
    uint32_t *ids;
    double *vals;
};

static const char *corpus_intern(struct corpus *c, const char *name)
{
    for (size_t i = 0; i < c->nfams; i++)
        if (strcmp(c->fams[i], name) == 0)
            return c->fams[i];
    c->fams = xrealloc(c->fams, (c->nfams + 1) * sizeof(*c->fams));
    return c->fams[c->nfams++] = xstrdup(name);
}

static int label_name_start(const char *p)
{
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
           (*p >= '0' && *p <= '9'))
        p++;
    return p[0] == '=' && p[1] == '"';
}

/*
 * Parse a recorded key, family{k="v",...}. record_corpus does not escape
 * values, so a value ends at a quote followed by '}' at the end or by ','
 * and another label.
 */
static int corpus_parse_key(struct corpus *c, char *key, struct corpus_series *out)
{
    char *brace = strchr(key, '{');
    out->nl = 0;
    if (!brace) {
        out->family = corpus_intern(c, key);
        return 0;
    }
    *brace = '\0';
    out->family = corpus_intern(c, key);
    char *p = brace + 1;
    while (*p && *p != '}' && out->nl < CORPUS_MAX_LABELS) {
        char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return -1;
        *eq = '\0';
        char *v = eq + 2, *e = v;
        for (;; e++) {
            if (!*e)
                return -1;
            if (*e == '"' &&
                ((e[1] == '}' && e[2] == '\0') || (e[1] == ',' && label_name_start(e + 2))))
                break;
        }
        out->l[out->nl++] = (struct metric_label){xstrdup(p), xstrndup(v, (size_t)(e - v))};
        p = e + 1;
        if (*p == ',')
            p++;
    }
    return 0;
}

static void corpus_add_synthetic(struct corpus *c)
{
    static const char *const fam[4] = {
        "http_requests_total", "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum", "http_request_duration_seconds_count"};
    const char *f[4];
    for (int i = 0; i < 4; i++)
        f[i] = corpus_intern(c, fam[i]);
    struct corpus_series *s = &c->s[c->nrec];
    for (size_t k = 0; k < SYN_SERIES; k++, s++) {
        size_t q = k, combo, g, extra = 0;
        if (q < SYN_COMBOS * SYN_STATUSES) {
            g = 0, combo = q / SYN_STATUSES, extra = q % SYN_STATUSES;
        } else if ((q -= SYN_COMBOS * SYN_STATUSES) < SYN_COMBOS * SYN_BUCKETS) {
            g = 1, combo = q / SYN_BUCKETS, extra = q % SYN_BUCKETS;
        } else if ((q -= SYN_COMBOS * SYN_BUCKETS) < SYN_COMBOS) {
            g = 2, combo = q;
        } else {
            g = 3, combo = q - SYN_COMBOS;
        }
        size_t svc = combo / (SYN_INSTANCES * SYN_ROUTES), route = combo % SYN_ROUTES;
        size_t inst = combo / SYN_ROUTES;
        s->family = f[g];
        s->l[0] = (struct metric_label){"service", syn_services[svc]};
        s->l[1] = (struct metric_label){"instance", c->syn.inst[inst]};
        s->l[2] = (struct metric_label){"route", syn_routes[route]};
        s->l[3] = (struct metric_label){"method", syn_methods[route]};
        s->nl = 4;
        if (g == 0)
            s->l[s->nl++] = (struct metric_label){"status", syn_statuses[extra]};
        else if (g == 1)
            s->l[s->nl++] = (struct metric_label){"le", syn_le_str[extra]};
    }
}

static int corpus_load(struct corpus *c, const char *path, enum corpus_part part)
{
    memset(c, 0, sizeof(*c));
    c->part = part;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    c->buf = xmalloc((size_t)len + 1);
    c->len = fread(c->buf, 1, (size_t)len, f);
    fclose(f);
    if (c->len < 4 || memcmp(c->buf, "SRC1", 4) != 0) {
        fprintf(stderr, "%s: not a record_corpus file\n", path);
        return -1;
    }
    size_t cap = 0, tcap = 0, p = 4;
    while (p < c->len) {
        uint8_t tag = c->buf[p++];
        if (tag == 'S' && p + 6 <= c->len) {
            uint32_t id;
            uint16_t klen;
            memcpy(&id, c->buf + p, 4);
            memcpy(&klen, c->buf + p + 4, 2);
            p += 6;
            if (p + klen > c->len)
                break;
            if (id >= cap) {
                size_t old = cap;
                void *q = c->s;
                util_grow(&q, &cap, id + 1, sizeof(*c->s));
                c->s = q;
                memset(c->s + old, 0, (cap - old) * sizeof(*c->s));
            }
            char *key = xstrndup((const char *)c->buf + p, klen);
            if (corpus_parse_key(c, key, &c->s[id]) < 0) {
                fprintf(stderr, "bad series key %.*s\n", (int)klen, c->buf + p);
                free(key);
                return -1;
            }
            free(key);
            p += klen;
            if (id + 1 > c->nrec)
                c->nrec = id + 1;
        } else if (tag == 'T' && p + 12 <= c->len) {
            struct corpus_tick t;
            memcpy(&t.ts, c->buf + p, 8);
            memcpy(&t.count, c->buf + p + 8, 4);
            p += 12;
            if (p + (size_t)t.count * 12 > c->len)
                break; /* a recording cut short mid-tick */
            t.recs = c->buf + p;
            p += (size_t)t.count * 12;
            if (c->nticks == tcap) {
                void *q = c->ticks;
                util_grow(&q, &tcap, c->nticks + 1, sizeof(*c->ticks));
                c->ticks = q;
            }
            c->ticks[c->nticks++] = t;
        } else {
            break;
        }
    }
    syn_init(&c->syn);
    c->ns = c->nrec + SYN_SERIES;
    c->s = xrealloc(c->s, c->ns * sizeof(*c->s));
    memset(c->s + c->nrec, 0, SYN_SERIES * sizeof(*c->s));
    corpus_add_synthetic(c);
    size_t most = 0;
    for (size_t i = 0; i < c->nticks; i++)
        if (c->ticks[i].count > most)
            most = c->ticks[i].count;
    c->ids = xmalloc((most + SYN_SERIES) * sizeof(*c->ids));
    c->vals = xmalloc((most + SYN_SERIES) * sizeof(*c->vals));
    return 0;
}

static void corpus_release(struct corpus *c)
{
    for (size_t i = 0; i < c->nrec; i++)
        for (size_t k = 0; k < c->s[i].nl; k++) {
            free((char *)c->s[i].l[k].name);
            free((char *)c->s[i].l[k].value);
        }
    for (size_t i = 0; i < c->nfams; i++)
        free(c->fams[i]);
    syn_release(&c->syn);
    free(c->fams);
    free(c->s);
    free(c->ticks);
    free(c->ids);
    free(c->vals);
    free(c->buf);
}

/* Is series id part of the selected corpus? */
static int corpus_keeps(const struct corpus *c, size_t id)
{
    return c->part == CORPUS_ALL || (c->part == CORPUS_HOST) == (id < c->nrec);
}

/* Restart the iteration (the synthetic series start over from zero). */
static void corpus_rewind(struct corpus *c)
{
    struct syn fresh;
    syn_init(&fresh);
    for (int i = 0; i < SYN_SERVICES * SYN_INSTANCES; i++)
        free(fresh.inst[i]);
    memcpy(fresh.inst, c->syn.inst, sizeof(fresh.inst));
    c->syn = fresh;
    c->next = 0;
}

/*
 * The next tick: its timestamp and its samples (series ids and values, valid
 * until the next call), recorded ones first, in the recording's order.
 * Returns 0 at the end.
 */
static int corpus_next(struct corpus *c, int64_t *ts, const uint32_t **ids, const double **vals,
                       size_t *n)
{
    if (c->next >= c->nticks)
        return 0;
    const struct corpus_tick *t = &c->ticks[c->next];
    size_t k = 0;
    if (c->part != CORPUS_SYN)
        for (uint32_t i = 0; i < t->count; i++) {
            memcpy(&c->ids[k], t->recs + 12 * i, 4);
            memcpy(&c->vals[k], t->recs + 12 * i + 4, 8);
            if (c->ids[k] < c->nrec)
                k++;
        }
    if (c->part != CORPUS_HOST) {
        syn_step(&c->syn, c->next);
        for (size_t i = 0; i < SYN_SERIES; i++) {
            c->ids[k] = (uint32_t)(c->nrec + i);
            c->vals[k++] = syn_value(&c->syn, i);
        }
    }
    c->next++;
    *ts = t->ts;
    *ids = c->ids;
    *vals = c->vals;
    *n = k;
    return 1;
}

/* ---- helpers ---------------------------------------------------------------- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v * 1024;
}

/* Bytes the allocator has handed out and not had back (all arenas, mmapped too). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Write s with \\, \" and \n escaped (Prometheus text, OpenMetrics and JSON agree on these). */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*s, f);
    }
}

static void put_series(FILE *f, const struct corpus_series *s)
{
    fputs(s->family, f);
    if (!s->nl)
        return;
    fputc('{', f);
    for (size_t i = 0; i < s->nl; i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", s->l[i].name);
        put_escaped(f, s->l[i].value);
        fputc('"', f);
    }
    fputc('}', f);
}

static void put_value(FILE *f, double v)
{
    char num[32];
    size_t n = metric_format_value(v, num);
    fwrite(num, 1, n, f);
}

static int64_t last_ts(const struct corpus *c)
{
    return c->nticks ? c->ticks[c->nticks - 1].ts : 0;
}

/* ---- subcommands ------------------------------------------------------------ */

static int cmd_info(struct corpus *c)
{
    size_t samples = 0, nonfinite = 0, whole_s = 1;
    const uint32_t *ids;
    const double *vals;
    size_t n;
    int64_t ts;
    while (corpus_next(c, &ts, &ids, &vals, &n)) {
        samples += n;
        for (size_t i = 0; i < n; i++)
            nonfinite += !isfinite(vals[i]);
        whole_s &= ts % 1000 == 0;
    }
    size_t series = 0;
    for (size_t i = 0; i < c->ns; i++)
        series += corpus_keeps(c, i);
    printf("series=%zu recorded_series=%zu synthetic_series=%d ticks=%zu samples=%zu "
           "nonfinite=%zu first_ms=%lld last_ms=%lld whole_seconds=%zu\n",
           series, c->nrec, SYN_SERIES, c->nticks, samples, nonfinite,
           (long long)(c->nticks ? c->ticks[0].ts : 0), (long long)last_ts(c), whole_s);
    return 0;
}

/*
 * OpenMetrics text, tick by tick, no metadata (every family "unknown"),
 * timestamps in seconds. promtool reads all of it once per 2 h block.
 */
static int cmd_openmetrics(struct corpus *c, const char *out)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    static char fbuf[1 << 20];
    setvbuf(f, fbuf, _IOFBF, sizeof(fbuf));
    const uint32_t *ids;
    const double *vals;
    size_t n, samples = 0;
    int64_t ts;
    while (corpus_next(c, &ts, &ids, &vals, &n)) {
        char tsbuf[32];
        if (ts % 1000 == 0)
            snprintf(tsbuf, sizeof(tsbuf), " %lld\n", (long long)(ts / 1000));
        else
            snprintf(tsbuf, sizeof(tsbuf), " %lld.%03lld\n", (long long)(ts / 1000),
                     (long long)(ts % 1000));
        for (size_t i = 0; i < n; i++) {
            put_series(f, &c->s[ids[i]]);
            fputc(' ', f);
            put_value(f, vals[i]);
            fputs(tsbuf, f);
        }
        samples += n;
    }
    fputs("# EOF\n", f);
    if (fclose(f) != 0) {
        perror(out);
        return 1;
    }
    printf("samples=%zu\n", samples);
    return 0;
}

/*
 * promtool's label-file reader strips '"', '{' and '}' and splits on ',' and
 * ':' without looking at JSON quoting, so values holding those characters
 * would lose their tail there (and kworker series would collide). Write them
 * as '_' so both tools read the same label sets, and skip repeats.
 */
static void put_label_value(char *out, size_t cap, const char *v)
{
    size_t n = 0;
    for (; *v && n + 1 < cap; v++)
        out[n++] = strchr(":,{}\"\\\n", *v) ? '_' : *v;
    out[n] = '\0';
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int cmd_labels(struct corpus *c, const char *out)
{
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    size_t cap = 1;
    while (cap < 2 * c->ns)
        cap *= 2;
    uint64_t *seen = xcalloc(cap, sizeof(*seen));
    size_t n = 0, dups = 0;
    for (size_t i = 0; i < c->ns; i++) {
        if (!corpus_keeps(c, i))
            continue;
        const struct corpus_series *s = &c->s[i];
        char line[8192], v[1024];
        size_t len = (size_t)snprintf(line, sizeof(line), "{\"__name__\":\"%s\"", s->family);
        for (size_t k = 0; k < s->nl && len < sizeof(line); k++) {
            put_label_value(v, sizeof(v), s->l[k].value);
            len +=
                (size_t)snprintf(line + len, sizeof(line) - len, ",\"%s\":\"%s\"", s->l[k].name, v);
        }
        uint64_t h = fnv(line, 1469598103934665603ull) | 1;
        size_t j = h & (cap - 1);
        while (seen[j] && seen[j] != h)
            j = (j + 1) & (cap - 1);
        if (seen[j]) {
            dups++;
            continue;
        }
        seen[j] = h;
        fprintf(f, "%s}\n", line);
        n++;
    }
    free(seen);
    if (fclose(f) != 0) {
        perror(out);
        return 1;
    }
    printf("series=%zu merged=%zu\n", n, dups);
    return 0;
}

static int cmd_expose(struct corpus *c, long ticks, const char *dir)
{
    const uint32_t *ids;
    const double *vals;
    size_t n, samples = 0;
    int64_t ts;
    long t = 0;
    mkdir(dir, 0755);
    for (; t < ticks && corpus_next(c, &ts, &ids, &vals, &n); t++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%06ld.prom", dir, t);
        FILE *f = fopen(path, "w");
        if (!f) {
            perror(path);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            put_series(f, &c->s[ids[i]]);
            fputc(' ', f);
            put_value(f, vals[i]);
            fputc('\n', f);
        }
        fclose(f);
        samples += n;
    }
    printf("ticks=%ld samples=%zu\n", t, samples);
    return 0;
}

/*
 * Fill b with one tick. extra (may be NULL) holds labels added to every
 * series that lacks them, like a scrape's target labels.
 */
static void build_batch(const struct corpus *c, struct metric_buf *b, int64_t ts,
                        const uint32_t *ids, const double *vals, size_t n,
                        const struct metric_label *extra, size_t nextra)
{
    metric_buf_reset(b, ts);
    const char *fam = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct corpus_series *s = &c->s[ids[i]];
        if (s->family != fam) {
            metric_fam(b, s->family, "", METRIC_UNTYPED);
            fam = s->family;
        }
        struct metric_label l[CORPUS_MAX_LABELS + 2];
        size_t nl = s->nl;
        memcpy(l, s->l, nl * sizeof(*l));
        for (size_t e = 0; e < nextra; e++) {
            size_t k = 0;
            while (k < s->nl && strcmp(s->l[k].name, extra[e].name) != 0)
                k++;
            if (k == s->nl)
                l[nl++] = extra[e];
        }
        metric_add(b, vals[i], nl, l);
    }
}

static int tree_bytes_cb(const char *path, const struct stat *st, int type, struct FTW *ftw);
static uint64_t tree_total, tree_files;

static int tree_bytes_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F) {
        tree_total += (uint64_t)st->st_size;
        tree_files++;
    }
    return 0;
}

/* Apparent size (st_size) of the regular files under dir; 0 if absent. */
static uint64_t tree_bytes(const char *dir, uint64_t *files)
{
    tree_total = tree_files = 0;
    nftw(dir, tree_bytes_cb, 16, FTW_PHYS);
    if (files)
        *files = tree_files;
    return tree_total;
}

static struct tsdb *open_store(const char *dir, uint32_t max_series)
{
    struct tsdb *db;
    char err[512];
    struct tsdb_opts o = {.dir = dir, .max_series = max_series};
    if (tsdb_open(&db, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    return db;
}

static int cmd_load(struct corpus *c, const char *dir)
{
    struct tsdb *db = open_store(dir, (uint32_t)c->ns + 1000);
    if (!db)
        return 1;
    struct metric_buf b;
    metric_buf_init(&b);
    struct tsdb_append_stats st = {0};
    const uint32_t *ids;
    const double *vals;
    size_t n;
    int64_t ts;
    double gen = 0, c0 = cpu_now(), w0 = wall_now();
    while (corpus_next(c, &ts, &ids, &vals, &n)) {
        double g0 = cpu_now();
        build_batch(c, &b, ts, ids, vals, n, NULL, 0);
        gen += cpu_now() - g0;
        if (tsdb_append_batch(db, "corpus", &b, &st) < 0) {
            fprintf(stderr, "append failed\n");
            return 1;
        }
    }
    double append_cpu = cpu_now() - c0 - gen;
    /* Before the flush: once every window is in blocks, the store forgets the series. */
    uint32_t series = tsdb_series_count(db);
    double f0 = cpu_now();
    /*
     * A failed pass is reported, not fatal: the raw tier may be complete
     * while a later step (tier compaction) failed; `read` then counts what
     * the store serves.
     */
    int flush_ok = tsdb_maintain(db, TSDB_MAINT_FLUSH) == 0;
    if (!flush_ok)
        fprintf(stderr, "tsdb_corpus: tsdb_maintain(FLUSH) failed (see the log above)\n");
    double flush_cpu = cpu_now() - f0, wall = wall_now() - w0;
    tsdb_close(db);
    metric_buf_release(&b);
    char path[4096];
    uint64_t files, raw, tiers = 0;
    snprintf(path, sizeof(path), "%s/raw", dir);
    raw = tree_bytes(path, &files);
    snprintf(path, sizeof(path), "%s/1m", dir);
    tiers += tree_bytes(path, NULL);
    snprintf(path, sizeof(path), "%s/1h", dir);
    tiers += tree_bytes(path, NULL);
    uint64_t refused = st.out_of_order + st.too_old + st.series_limit + st.invalid;
    printf("series=%u samples=%llu refused=%llu raw_bytes=%llu raw_files=%llu "
           "bytes_per_sample=%.4f tier_bytes=%llu append_cpu_s=%.2f flush_cpu_s=%.2f "
           "batch_build_cpu_s=%.2f wall_s=%.2f flush_ok=%d\n",
           series, (unsigned long long)st.accepted, (unsigned long long)refused,
           (unsigned long long)raw, (unsigned long long)files,
           st.accepted ? (double)raw / (double)st.accepted : 0, (unsigned long long)tiers,
           append_cpu, flush_cpu, gen, wall, flush_ok);
    return refused ? 1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A series selector, name{l="v", l2=~"re", ...}, as store matchers. */
#define SEL_MAX 16
struct sel {
    struct tsdb_matcher m[SEL_MAX];
    size_t n;
    char buf[1024]; /* the matchers' strings */
};

static int is_name_char(char ch, int first)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':' ||
           (!first && ch >= '0' && ch <= '9');
}

/* Parse s (double-quoted values, \\ and \" escapes). 0, or -1 if malformed. */
static int sel_parse(const char *s, struct sel *out)
{
    char *w = out->buf, *end = out->buf + sizeof(out->buf);
    out->n = 0;
    if (is_name_char(*s, 1)) {
        out->m[out->n++] = (struct tsdb_matcher){TSDB_EQ, "__name__", w};
        while (is_name_char(*s, 0) && w < end - 1)
            *w++ = *s++;
        *w++ = '\0';
    }
    if (!*s)
        return out->n ? 0 : -1;
    if (*s++ != '{')
        return -1;
    while (*s && *s != '}' && out->n < SEL_MAX) {
        struct tsdb_matcher *m = &out->m[out->n++];
        m->name = w;
        while (is_name_char(*s, 0) && w < end - 1)
            *w++ = *s++;
        if (w >= end - 1)
            return -1;
        *w++ = '\0';
        if (s[0] == '=' && s[1] == '~')
            m->op = TSDB_RE, s += 2;
        else if (s[0] == '!' && s[1] == '~')
            m->op = TSDB_NRE, s += 2;
        else if (s[0] == '!' && s[1] == '=')
            m->op = TSDB_NEQ, s += 2;
        else if (s[0] == '=')
            m->op = TSDB_EQ, s += 1;
        else
            return -1;
        if (*s++ != '"')
            return -1;
        m->value = w;
        while (*s && *s != '"' && w < end - 1) {
            if (*s == '\\' && s[1])
                s++;
            *w++ = *s++;
        }
        if (*s++ != '"' || w >= end - 1)
            return -1;
        *w++ = '\0';
        if (*s == ',')
            s++;
    }
    return *s == '}' && out->n ? 0 : -1;
}

struct read_result {
    size_t series, samples;
    double check, wall, cpu;
};

/* One query through the iterator API, reading every sample. */
static int read_once(struct tsdb *db, const struct sel *sel, int64_t mint, int64_t maxt,
                     struct read_result *r)
{
    struct tsdb_range range = {.mint = mint, .maxt = maxt};
    struct tsdb_query *q;
    char err[512];
    memset(r, 0, sizeof(*r));
    double w0 = wall_now(), c0 = cpu_now();
    if (tsdb_query_open(db, sel->m, sel->n, &range, &q, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    int rc;
    while ((rc = tsdb_query_next(q, &ls, &nl, &ss, &ns)) > 0) {
        r->series++;
        r->samples += ns;
        for (size_t i = 0; i < ns; i++)
            r->check += ss[i].v; /* every value is read */
    }
    tsdb_query_close(q);
    r->wall = wall_now() - w0;
    r->cpu = cpu_now() - c0;
    if (rc < 0) {
        fprintf(stderr, "query failed\n");
        return -1;
    }
    return 0;
}

static int cmd_read(const char *dir, const char *selector, int64_t end_ms, int reps)
{
    struct tsdb *db = open_store(dir, 0);
    if (!db)
        return 1;
    static struct sel all, sel;
    if (sel_parse("{__name__=~\".+\"}", &all) < 0 || sel_parse(selector, &sel) < 0) {
        fprintf(stderr, "selector: cannot parse %s\n", selector);
        return 1;
    }
    struct read_result first, r;
    /* The first query after open also builds each block's label index. */
    if (read_once(db, &all, INT64_MIN / 2, INT64_MAX / 2, &first) < 0)
        return 1;
    double *dec = xcalloc((size_t)reps, sizeof(double)),
           *lat = xcalloc((size_t)reps, sizeof(double));
    double *latcpu = xcalloc((size_t)reps, sizeof(double));
    size_t sel_series = 0, sel_samples = 0;
    for (int i = 0; i < reps; i++) {
        if (read_once(db, &all, INT64_MIN / 2, INT64_MAX / 2, &r) < 0)
            return 1;
        dec[i] = (double)r.samples / r.cpu;
    }
    for (int i = 0; i < reps; i++) {
        if (read_once(db, &sel, end_ms - 3600 * 1000, end_ms, &r) < 0)
            return 1;
        lat[i] = r.wall * 1e3;
        latcpu[i] = r.cpu * 1e3;
        sel_series = r.series;
        sel_samples = r.samples;
    }
    /* median() sorts in place: take every figure before printing. */
    double dec_med = median(dec, reps), lat_med = median(lat, reps);
    double latcpu_med = median(latcpu, reps), lat_min = lat[0];
    printf("all_series=%zu all_samples=%zu first_query_s=%.3f decode_samples_per_cpu_s=%.0f "
           "sel_series=%zu sel_samples=%zu sel_ms_median=%.2f sel_cpu_ms_median=%.2f "
           "sel_ms_min=%.2f\n",
           first.series, first.samples, first.wall, dec_med, sel_series, sel_samples, lat_med,
           latcpu_med, lat_min);
    free(dec);
    free(lat);
    free(latcpu);
    tsdb_close(db);
    return 0;
}

static int cmd_head(struct corpus *c, long ticks, const char *job, const char *inst)
{
    char dir[] = "/tmp/sitrep-head-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct metric_label extra[2] = {{"job", job}, {"instance", inst}};
    struct metric_buf b;
    metric_buf_init(&b);
    /* Grow the producer's batch to the corpus' largest tick before the baseline. */
    const uint32_t *ids;
    const double *vals;
    size_t n;
    int64_t ts;
    size_t most = 0, most_tick = 0;
    for (size_t i = 0; i < c->nticks; i++)
        if (c->ticks[i].count > most)
            most = c->ticks[i].count, most_tick = i;
    for (size_t i = 0; i <= most_tick && corpus_next(c, &ts, &ids, &vals, &n); i++)
        ;
    build_batch(c, &b, ts, ids, vals, n, extra, 2);
    corpus_rewind(c);

    struct tsdb *db = open_store(dir, (uint32_t)c->ns + 1000);
    if (!db)
        return 1;
    malloc_trim(0);
    size_t heap0 = heap_in_use();
    long rss0 = rss_bytes();
    struct tsdb_append_stats st = {0};
    long t = 0;
    for (; t < ticks && corpus_next(c, &ts, &ids, &vals, &n); t++) {
        build_batch(c, &b, ts, ids, vals, n, extra, 2);
        tsdb_append_batch(db, "corpus", &b, &st);
    }
    size_t heap1 = heap_in_use();
    long rss1 = rss_bytes();
    uint32_t series = tsdb_series_count(db);
    struct tsdb_memory m;
    tsdb_memory(db, &m);
    printf("ticks=%ld series=%u samples=%llu heap_bytes=%zu heap_per_series=%.0f "
           "rss_bytes=%ld rss_per_series=%.0f per_series_index=%.0f head=%.0f shapes=%.0f "
           "wal=%.0f\n",
           t, series, (unsigned long long)st.accepted, heap1 - heap0,
           (double)(heap1 - heap0) / series, rss1 - rss0, (double)(rss1 - rss0) / series,
           (double)m.index / series, (double)m.head / series, (double)m.shapes / series,
           (double)m.wal / series);
    tsdb_close(db);
    metric_buf_release(&b);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) != 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: tsdb_corpus [-p host|syn|all] info CORPUS\n"
                    "       tsdb_corpus [-p ...] openmetrics CORPUS OUT\n"
                    "       tsdb_corpus [-p ...] labels CORPUS OUT.jsonl\n"
                    "       tsdb_corpus [-p ...] expose CORPUS TICKS DIR\n"
                    "       tsdb_corpus [-p ...] load CORPUS DIR\n"
                    "       tsdb_corpus read DIR SELECTOR END_MS REPS\n"
                    "       tsdb_corpus [-p ...] head CORPUS TICKS JOB INSTANCE\n");
    return 2;
}

int main(int argc, char **argv)
{
    enum corpus_part part = CORPUS_ALL;
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "-p") == 0) {
        if (strcmp(argv[2], "host") == 0)
            part = CORPUS_HOST;
        else if (strcmp(argv[2], "syn") == 0)
            part = CORPUS_SYN;
        else if (strcmp(argv[2], "all") != 0)
            return usage();
        a = 3;
    }
    if (argc - a < 2)
        return usage();
    log_set_level(LOG_WARN);
    const char *cmd = argv[a];
    if (strcmp(cmd, "read") == 0) {
        if (argc - a != 5)
            return usage();
        return cmd_read(argv[a + 1], argv[a + 2], atoll(argv[a + 3]), atoi(argv[a + 4]));
    }
    struct corpus c;
    if (corpus_load(&c, argv[a + 1], part) < 0)
        return 1;
    int rc;
    if (strcmp(cmd, "info") == 0 && argc - a == 2)
        rc = cmd_info(&c);
    else if (strcmp(cmd, "openmetrics") == 0 && argc - a == 3)
        rc = cmd_openmetrics(&c, argv[a + 2]);
    else if (strcmp(cmd, "labels") == 0 && argc - a == 3)
        rc = cmd_labels(&c, argv[a + 2]);
    else if (strcmp(cmd, "expose") == 0 && argc - a == 4)
        rc = cmd_expose(&c, atol(argv[a + 2]), argv[a + 3]);
    else if (strcmp(cmd, "load") == 0 && argc - a == 3)
        rc = cmd_load(&c, argv[a + 2]);
    else if (strcmp(cmd, "head") == 0 && argc - a == 5)
        rc = cmd_head(&c, atol(argv[a + 2]), argv[a + 3], argv[a + 4]);
    else
        rc = usage();
    corpus_release(&c);
    return rc;
}
