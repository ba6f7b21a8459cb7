/*
 * rules_bench.c: CPU cost of rule evaluation at a 1 s interval, against a
 * store holding what a day-old daemon holds. The host series are this
 * host's own (one real collection cycle: names, labels and starting values
 * of every source), continued synthetically: counters grow at a steady
 * per-series rate (counters at 0 stay there), gauges have 0.1% noise
 * around their value. Web-service
 * series (two services, eight routes: access-log counters and histograms,
 * top clients, probes) are added as src/ingest and src/probe name them.
 * HISTORY seconds of 1 s samples are appended first (cut into blocks as the
 * daemon's maintenance does), then the rules engine runs for SECONDS of
 * simulated time, one tick per second, with data appended before each.
 * Only the evaluation thread's work (rules_tick: queries, alert states,
 * ALERTS writes, state file) is timed, on the thread CPU clock. The
 * evaluation starts half-way through the store's 2 h head window (see
 * main), where the cost is its average over the window.
 *
 * Usage: rules_bench pack [HISTORY [SECONDS]]           the built-in pack
 *        rules_bench synthetic N [HISTORY [SECONDS]]    N generated rules
 * Prints rules, series, CPU ms per second of evaluation and that as % of one
 * core, then the five rules that took the longest (wall time).
 */
#include "collect/collect.h"
#include "metric/metric.h"
#include "rules/rules_internal.h"
#include "tsdb/tsdb.h"
#include "util/log.h"
#include "util/sbuf.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The host batch of one real cycle, copied so that values can be rewritten per tick. */
struct host {
    struct metric_buf b;
    double *v0, *rate; /* per sample: starting value; counters' growth per second, -1 for gauges */
};

static int troubled(const char *name)
{
    static const char *const words[] = {"err", "drop",    "fail",   "overflow",
                                        "oom", "retrans", "timeout"};
    for (size_t i = 0; i < ARRAY_SIZE(words); i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

static void host_init(struct host *h)
{
    struct collect *c = collect_new(&(struct collect_opts){0});
    collect_once(c, util_now_ms());
    const struct metric_buf *src = collect_last(c);
    metric_buf_init(&h->b);
    h->v0 = xcalloc(src->nsamples, sizeof(double));
    h->rate = xcalloc(src->nsamples, sizeof(double));
    for (size_t f = 0; f < src->nfams; f++) {
        const struct metric_fam_rec *fr = &src->fams[f];
        metric_fam(&h->b, metric_str(src, fr->name), metric_str(src, fr->help), fr->type);
        for (uint32_t k = 0; k < fr->count; k++) {
            const struct metric_sample *s = &src->samples[fr->first + k];
            struct metric_label l[METRIC_MAX_LABELS];
            const char *p = metric_str(src, s->labels);
            for (uint32_t i = 0; i < s->nlabels; i++) {
                l[i].name = p;
                l[i].value = p + strlen(p) + 1;
                p = l[i].value + strlen(l[i].value) + 1;
            }
            size_t idx = h->b.nsamples;
            h->v0[idx] = s->value;
            /* counters (and node_exporter's untyped vmstat counters) grow, unless at 0 or
             * counting trouble (a healthy host's error counters stand still) */
            if (fr->type == METRIC_GAUGE)
                h->rate[idx] = -1;
            else if (s->value != 0 && !troubled(metric_str(src, fr->name)))
                h->rate[idx] = (double)(idx * 7919 % 1000) / 10.0;
            metric_add(&h->b, s->value, s->nlabels, l);
        }
    }
    collect_free(c);
}

static void host_at(struct host *h, int64_t t0, int64_t ts)
{
    double s = (double)(ts - t0) / 1000.0;
    h->b.ts_ms = ts;
    for (size_t i = 0; i < h->b.nsamples; i++) {
        /* gauges: noise of 0.1% without a trend, so that nothing predicts exhaustion */
        uint64_t x = ((uint64_t)ts * 2654435761u) ^ ((uint64_t)i * 40503u);
        x ^= x >> 17;
        x *= 0xed5ad4bbu;
        double noise = (double)(x >> 40 & 0xffff) / 32768.0 - 1;
        h->b.samples[i].value =
            h->rate[i] >= 0 ? h->v0[i] + h->rate[i] * s : h->v0[i] * (1 + 0.001 * noise);
    }
}

/* Two services with eight routes each, as the access-log ingester and the prober name them. */
static void services_at(struct metric_buf *b, int64_t t0, int64_t ts)
{
    static const char *const svc[] = {"web", "api"};
    static const char *const le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                     "1",     "2.5",  "5",     "10",   "30",  "60",   "+Inf"};
    static const double share[] = {0.02, 0.05, 0.12,  0.25,  0.45, 0.7, 0.85,
                                   0.95, 0.99, 0.997, 0.999, 1,    1,   1};
    double s = (double)(ts - t0) / 1000.0;
    metric_buf_reset(b, ts);
    char route[16], client[16];
    metric_fam(b, "accesslog_requests_total", "", METRIC_COUNTER);
    for (int v = 0; v < 2; v++)
        for (int r = 0; r < 8; r++) {
            snprintf(route, sizeof(route), "/r%d", r);
            static const char *const code[] = {"200", "404", "500"};
            static const double rate[] = {10, 0.3, 0.03};
            for (int k = 0; k < 3; k++) {
                struct metric_label l[] = {
                    {"service", svc[v]}, {"method", "GET"}, {"code", code[k]}, {"route", route}};
                metric_add(b, rate[k] * s, 4, l);
            }
        }
    metric_fam(b, "accesslog_errors_total", "", METRIC_COUNTER);
    for (int v = 0; v < 2; v++)
        for (int r = 0; r < 8; r++) {
            snprintf(route, sizeof(route), "/r%d", r);
            struct metric_label l[] = {{"service", svc[v]}, {"method", "GET"}, {"route", route}};
            metric_add(b, 0.03 * s, 3, l);
        }
    metric_fam(b, "accesslog_retries_total", "", METRIC_COUNTER);
    for (int v = 0; v < 2; v++)
        for (int r = 0; r < 8; r++) {
            snprintf(route, sizeof(route), "/r%d", r);
            metric_add2(b, 0.01 * s, "service", svc[v], "route", route);
        }
    metric_fam(b, "accesslog_request_duration_seconds_bucket", "", METRIC_COUNTER);
    for (int v = 0; v < 2; v++)
        for (int r = 0; r < 8; r++) {
            snprintf(route, sizeof(route), "/r%d", r);
            for (size_t k = 0; k < ARRAY_SIZE(le); k++) {
                struct metric_label l[] = {{"service", svc[v]}, {"route", route}, {"le", le[k]}};
                metric_add(b, 10.33 * s * share[k], 3, l);
            }
        }
    static const char *const sc[] = {"accesslog_request_duration_seconds_count",
                                     "accesslog_request_duration_seconds_sum"};
    for (int m = 0; m < 2; m++) {
        metric_fam(b, sc[m], "", METRIC_COUNTER);
        for (int v = 0; v < 2; v++)
            for (int r = 0; r < 8; r++) {
                snprintf(route, sizeof(route), "/r%d", r);
                metric_add2(b, 10.33 * s * (m ? 0.08 : 1), "service", svc[v], "route", route);
            }
    }
    static const char *const top[] = {"accesslog_top_client_requests_per_second",
                                      "accesslog_top_client_errors_per_second",
                                      "accesslog_top_client_share"};
    for (int m = 0; m < 3; m++) {
        metric_fam(b, top[m], "", METRIC_GAUGE);
        for (int v = 0; v < 2; v++)
            for (int c = 0; c < 10; c++) {
                snprintf(client, sizeof(client), "10.1.0.%d", c + 1);
                double sh = 0.2 / (c + 1);
                metric_add2(b,
                            m == 0   ? 82.6 * sh
                            : m == 1 ? 0.25 * sh
                                     : sh,
                            "service", svc[v], "client", client);
            }
    }
    metric_fam(b, "probe_success", "", METRIC_GAUGE);
    for (int v = 0; v < 2; v++)
        metric_add1(b, 1, "service", svc[v]);
    metric_fam(b, "sitrep_probe_network_ok", "", METRIC_GAUGE);
    metric_add0(b, 1);
}

/* N alerting and recording rules of the shapes people write, in groups of 100 at 1 s. */
static char *synthetic_rules(int n)
{
    static const char *const shapes[] = {
        "rate(node_network_receive_bytes_total{device!=\"lo\"}[1m]) > %d",
        "node_filesystem_avail_bytes{fstype!=\"tmpfs\"} / node_filesystem_size_bytes < 0.0%d",
        "avg(rate(node_cpu_seconds_total{mode=\"idle\"}[1m])) < 0.%d",
        "node_load1 > %d",
        "predict_linear(node_memory_MemAvailable_bytes[5m], 3600) < %d",
        "sum by (service) (rate(accesslog_errors_total[1m])) / sum by (service) "
        "(rate(accesslog_requests_total[1m])) > 0.00%d",
        "histogram_quantile(0.99, sum by (service, le) "
        "(rate(accesslog_request_duration_seconds_bucket[5m]))) > %d",
        "increase(node_vmstat_pgmajfault[5m]) > %d",
        "max_over_time(node_memory_MemAvailable_bytes[10m]) - "
        "min_over_time(node_memory_MemAvailable_bytes[10m]) > %d000000",
        "sum by (mode) (rate(node_cpu_seconds_total[1m])) * %d",
    };
    struct sbuf y;
    sbuf_init(&y, 0);
    sbuf_adds(&y, "groups:\n");
    for (int i = 0; i < n; i++) {
        if (i % 100 == 0)
            sbuf_addf(&y, "  - name: bench-%d\n    rules:\n", i / 100);
        size_t shape = (size_t)i % ARRAY_SIZE(shapes);
        /* the shape's "%d" is the threshold (formats are not passed on: -Wformat-nonliteral) */
        const char *k = strstr(shapes[shape], "%d");
        char expr[512];
        snprintf(expr, sizeof(expr), "%.*s%d%s", (int)(k - shapes[shape]), shapes[shape],
                 i / (int)ARRAY_SIZE(shapes) % 10, k + 2);
        if (shape == ARRAY_SIZE(shapes) - 1)
            sbuf_addf(&y, "      - record: bench:cpu_mode:rate%d\n        expr: '%s'\n", i, expr);
        else
            sbuf_addf(&y,
                      "      - alert: Bench%d\n        expr: '%s'\n        for: 1m\n"
                      "        labels: {severity: ticket}\n"
                      "        annotations: {summary: '{{ $labels.instance }} at {{ $value | "
                      "humanize }}'}\n",
                      i, expr);
    }
    return y.buf; /* the sbuf's buffer, handed over */
}

struct slow {
    const char *name;
    double seconds;
};

static int by_seconds(const void *a, const void *b)
{
    double x = ((const struct slow *)a)->seconds, y = ((const struct slow *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int64_t fake_now(void *ctx)
{
    return *(const int64_t *)ctx;
}

int main(int argc, char **argv)
{
    int synth = argc > 1 && strcmp(argv[1], "synthetic") == 0;
    if (argc < 2 || (!synth && strcmp(argv[1], "pack") != 0) || (synth && argc < 3)) {
        fputs("usage: rules_bench pack [HISTORY [SECONDS]]\n"
              "       rules_bench synthetic N [HISTORY [SECONDS]]\n",
              stderr);
        return 2;
    }
    int nsynth = synth ? atoi(argv[2]) : 0;
    int a = synth ? 3 : 2;
    int64_t history = argc > a ? atoll(argv[a]) : 6 * 3600;
    int64_t seconds = argc > a + 1 ? atoll(argv[a + 1]) : 300;
    log_set_level(LOG_ERROR);

    char dir[] = "/tmp/sitrep-rules-bench-XXXXXX", tdir[64], err[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(tdir, sizeof(tdir), "%s/tsdb", dir);
    struct tsdb *db;
    if (tsdb_open(&db, &(struct tsdb_opts){.dir = tdir, .max_bytes = 16ULL << 30}, err,
                  sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct host h;
    host_init(&h);
    struct metric_buf svc;
    metric_buf_init(&svc);
    /* Evaluation starts half-way through a 2 h head window: a head chunk spans its window
     * and a read decodes it from its start, so the cost climbs through each window and
     * its middle is the average. */
    const int64_t span = 2 * 3600 * 1000;
    int64_t start = ((util_now_ms() - 3 * span) / span) * span + span / 2;
    int64_t t0 = start - history * 1000, now = t0;
    for (; now < t0 + history * 1000; now += 1000) {
        host_at(&h, t0, now);
        services_at(&svc, t0, now);
        tsdb_append_batch(db, "collect", &h.b, NULL);
        tsdb_append_batch(db, "accesslog", &svc, NULL);
        if ((now - t0) % 600000 == 0)
            tsdb_maintain(db, 0); /* blocks are cut as the daemon's maintenance cuts them */
    }
    tsdb_maintain(db, 0);

    struct rules_set *set = NULL;
    struct sbuf errors;
    sbuf_init(&errors, 0);
    int rc;
    if (synth) {
        char *y = synthetic_rules(nsynth);
        rc = rules_parse(&set, "synthetic.yml", y, strlen(y), 1000, &errors);
        free(y);
    } else {
        rc = rules_builtin_parse(&set, 1000, &errors);
    }
    if (rc < 0) {
        fprintf(stderr, "%s", errors.buf);
        return 1;
    }
    struct rules *r = rules_new(
        &(struct rules_opts){.db = db, .data_dir = dir, .now_ms = fake_now, .clock_ctx = &now},
        set);
    size_t nrules = rules_set_rules(r->set);
    struct slow *slow = xcalloc(nrules, sizeof(*slow));
    int64_t cpu = 0;
    for (int64_t end = now + seconds * 1000; now < end; now += 1000) {
        host_at(&h, t0, now);
        services_at(&svc, t0, now);
        tsdb_append_batch(db, "collect", &h.b, NULL);
        tsdb_append_batch(db, "accesslog", &svc, NULL);
        int64_t c0 = util_thread_cpu_ns();
        rules_tick(r);
        cpu += util_thread_cpu_ns() - c0;
        size_t k = 0;
        for (size_t g = 0; g < r->set->ngroups; g++)
            for (size_t i = 0; i < r->set->groups[g].nrules; i++, k++) {
                const struct rules__rule *ru = &r->set->groups[g].rules[i];
                slow[k].name = ru->name;
                if (ru->last_eval_ms == now)
                    slow[k].seconds += ru->eval_seconds;
            }
        if ((now - t0) % 600000 == 0)
            tsdb_maintain(db, 0);
    }
    size_t firing = 0;
    struct sbuf names;
    sbuf_init(&names, 4096);
    for (size_t g = 0; g < r->set->ngroups; g++)
        for (size_t i = 0; i < r->set->groups[g].nrules; i++) {
            const struct rules__rule *ru = &r->set->groups[g].rules[i];
            for (size_t k = 0; k < ru->nalerts; k++)
                if (ru->alerts[k]->state == RULES_FIRING) {
                    if (!firing++ || names.len < 200)
                        sbuf_addf(&names, "%s%s", names.len ? "," : "", ru->name);
                }
        }
    double ms_per_s = (double)cpu / 1e6 / (double)seconds;
    printf("rules=%zu series_per_tick=%zu history_s=%lld eval_s=%lld cpu_ms_per_s=%.3f "
           "core_pct=%.3f firing=%zu (%s)\n",
           nrules, h.b.nsamples + svc.nsamples, (long long)history, (long long)seconds, ms_per_s,
           ms_per_s / 10.0, firing, names.len ? names.buf : "none");
    sbuf_release(&names);
    qsort(slow, nrules, sizeof(*slow), by_seconds);
    for (size_t i = 0; i < nrules && i < 5; i++)
        printf("  %-32s %.3f ms/s\n", slow[i].name, slow[i].seconds * 1e3 / (double)seconds);
    free(slow);
    rules_free(r);
    sbuf_release(&errors);
    metric_buf_release(&svc);
    metric_buf_release(&h.b);
    free(h.v0);
    free(h.rate);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
