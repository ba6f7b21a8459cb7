/*
 * serve.c: the daemon's lifecycle. The main thread parses flags, loads the
 * config, starts the collector and HTTP threads, then waits in sigwait():
 * SIGHUP reloads the config (keeping the old one if the new one is bad),
 * SIGTERM/SIGINT stop everything and exit. All signals are blocked in every
 * other thread so exactly one place handles them.
 */
#include "serve/serve.h"
#include "collect/collect.h"
#include "config/config.h"
#include "exec/exec.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "metric/metric.h"
#include "notify/notify.h"
#include "probe/probe.h"
#include "queue/queue.h"
#include "scrape/scrape.h"
#include "statsd/statsd.h"
#include "query/api.h"
#include "query/export.h"
#include "rules/rules.h"
#include "tsdb/tsdb.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SITREP_REVISION
#define SITREP_REVISION "unknown"
#endif

struct daemon {
    struct config cfg;
    const char *flag_listen, *flag_data, *flag_config, *flag_log_level;
    struct collect *collect;
    struct ingest *ingest; /* access logs; swapped on reload only when `logs:` changed */
    struct tsdb *db;
    struct http_server *http;
    struct notify *notify; /* alert notification pipeline (docs/NOTIFY.md) */
    struct rules *rules;   /* rules engine (docs/RULES.md); uses db and notify */
    /* Service signals (docs/SIGNALS.md); each swapped on reload only when its section changed. */
    struct probe *probe;
    struct statsd *statsd;
    struct scrape *scrape;
    struct queue *queue;
    struct exec *exec;
    int lock_fd;
    int64_t start_ms;

    pthread_mutex_t lock; /* guards collect (swapped on reload) and the reload fields */
    pthread_cond_t reloaded;
    unsigned reload_gen;
    int reload_ok;
    int64_t reload_ms;
    uint64_t reloads_ok, reloads_failed;
    char reload_err[1024];
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: sitrep serve [options]\n"
            "\n"
            "Watch this host every second and serve what it sees over HTTP.\n"
            "Runs on built-in defaults; a config file and flags override them.\n"
            "\n"
            "Options:\n"
            "  -l, --listen ADDR:PORT   HTTP listen address (default %s)\n"
            "  -d, --data DIR           data directory (default %s)\n"
            "  -c, --config FILE        YAML config file (every key optional)\n"
            "      --log-level LEVEL    debug, info, warn or error (default info)\n"
            "  -h, --help               show this help\n"
            "\n"
            "Signals: SIGHUP reloads the config file; SIGTERM or SIGINT stop cleanly.\n"
            "\n"
            "Examples:\n"
            "  sitrep serve\n"
            "  sitrep serve --listen 127.0.0.1:9797 --data /var/lib/sitrep\n"
            "  sitrep serve --config /etc/sitrep/sitrep.yml\n",
            CONFIG_DEFAULT_LISTEN, CONFIG_DEFAULT_DATA);
}

void serve_print_version(void)
{
    printf("sitrep %s (revision %s, built %s with %s)\n", SITREP_VERSION, SITREP_REVISION, __DATE__,
           __VERSION__);
}

static void set_str(char **dst, const char *v)
{
    if (v) {
        free(*dst);
        *dst = xstrdup(v);
    }
}

/* Defaults, then the file, then the flags. Returns 0, or -1 with errors filled. */
static int load_config(struct daemon *d, struct config *cfg, struct sbuf *errors)
{
    config_defaults(cfg);
    if (d->flag_config && config_load(cfg, d->flag_config, errors) < 0)
        return -1;
    set_str(&cfg->listen, d->flag_listen);
    set_str(&cfg->data_dir, d->flag_data);
    set_str(&cfg->log_level, d->flag_log_level);
    return 0;
}

/* The built-in pack and the rule files cfg names, parsed. 0 and *set, or -1 with errors filled. */
static int load_rules(const struct config *cfg, struct rules_set **set, struct sbuf *errors)
{
    char dir[4096];
    config_dir(cfg, dir, sizeof(dir));
    struct rules_sources src = {
        .builtin = cfg->rules.default_pack,
        .disable = (const char *const *)cfg->rules.disable,
        .ndisable = cfg->rules.ndisable,
        .patterns = (const char *const *)cfg->rule_files,
        .npatterns = cfg->nrule_files,
        .base_dir = dir,
        .default_interval_ms = cfg->rules.interval_ms,
    };
    return rules_load(set, &src, errors);
}

/* The collector's sink: every batch goes into the store. */
static void store_batch(void *ctx, const struct metric_buf *batch)
{
    struct daemon *d = ctx;
    tsdb_append_batch(d->db, "collect", batch, NULL);
}

/* The access-log ingester's sink: its batches go into the store too. */
static void store_ingest_batch(void *ctx, const struct metric_buf *batch)
{
    struct daemon *d = ctx;
    tsdb_append_batch(d->db, "accesslog", batch, NULL);
}

static void store_probe_batch(void *ctx, const struct metric_buf *batch)
{
    tsdb_append_batch(((struct daemon *)ctx)->db, "probe", batch, NULL);
}

static void store_statsd_batch(void *ctx, const struct metric_buf *batch)
{
    tsdb_append_batch(((struct daemon *)ctx)->db, "statsd", batch, NULL);
}

static void store_scrape_batch(void *ctx, const struct metric_buf *batch)
{
    tsdb_append_batch(((struct daemon *)ctx)->db, "scrape", batch, NULL);
}

static void store_queue_batch(void *ctx, const struct metric_buf *batch)
{
    tsdb_append_batch(((struct daemon *)ctx)->db, "queue", batch, NULL);
}

/* NULL if a regex of the config fails here (logged). */
static struct probe *make_probe(struct daemon *d, const struct config *cfg)
{
    return probe_new(&(struct probe_opts){.config = &cfg->probes,
                                          .interval_s = cfg->collect.interval_s,
                                          .sink = store_probe_batch,
                                          .sink_ctx = d});
}

static struct statsd *make_statsd(struct daemon *d, const struct config *cfg)
{
    return statsd_new(&(struct statsd_opts){.config = &cfg->statsd,
                                            .interval_s = cfg->collect.interval_s,
                                            .sink = store_statsd_batch,
                                            .sink_ctx = d});
}

static struct scrape *make_scrape(struct daemon *d, const struct config *cfg)
{
    return scrape_new(
        &(struct scrape_opts){.config = &cfg->scrape, .sink = store_scrape_batch, .sink_ctx = d});
}

static void store_exec_batch(void *ctx, const struct metric_buf *batch)
{
    tsdb_append_batch(((struct daemon *)ctx)->db, "exec", batch, NULL);
}

static struct exec *make_exec(struct daemon *d, const struct config *cfg)
{
    return exec_new(
        &(struct exec_opts){.config = &cfg->exec, .sink = store_exec_batch, .sink_ctx = d});
}

static struct queue *make_queue(struct daemon *d, const struct config *cfg)
{
    return queue_new(
        &(struct queue_opts){.config = &cfg->queues, .sink = store_queue_batch, .sink_ctx = d});
}

/* NULL if a regex of the config does not compile here (logged). */
static struct ingest *make_ingest(struct daemon *d, const struct config *cfg)
{
    char state[4096];
    snprintf(state, sizeof(state), "%s/ingest", cfg->data_dir);
    struct ingest_opts o = {
        .logs = cfg->logs,
        .nlogs = cfg->nlogs,
        .state_dir = state,
        .interval_s = cfg->collect.interval_s,
        .sink = store_ingest_batch,
        .sink_ctx = d,
    };
    return ingest_new(&o);
}

static struct collect *make_collector(struct daemon *d, const struct config *cfg)
{
    struct collect_opts o = {
        .sink = store_batch,
        .sink_ctx = d,
        .proc_root = cfg->collect.proc_root,
        .sys_root = cfg->collect.sys_root,
        .rootfs = cfg->collect.rootfs,
        .interval_s = cfg->collect.interval_s,
        .top_processes = cfg->collect.top_processes ? cfg->collect.top_processes : -1,
        .disabled = (const char *const *)cfg->collect.disable,
        .ndisabled = cfg->collect.ndisable,
        .vmstat_fields = cfg->collect.vmstat_fields,
        .netstat_fields = cfg->collect.netstat_fields,
    };
    return collect_new(&o);
}

/* Build the daemon's own metrics: build info, reload state, HTTP counters. */
static void emit_daemon_metrics(struct daemon *d, struct metric_buf *b)
{
    metric_fam(b, "sitrep_build_info", "A metric with a constant '1' labelled by build.",
               METRIC_GAUGE);
    struct metric_label l[2] = {{"version", SITREP_VERSION}, {"revision", SITREP_REVISION}};
    metric_add(b, 1, 2, l);
    metric_fam(b, "sitrep_start_time_seconds", "When this sitrep started, in unixtime.",
               METRIC_GAUGE);
    metric_add0(b, (double)d->start_ms / 1000.0);
    metric_fam(b, "sitrep_config_last_reload_successful",
               "Whether the last configuration load or reload succeeded.", METRIC_GAUGE);
    metric_add0(b, d->reload_ok);
    metric_fam(b, "sitrep_config_reloads_total", "Configuration reloads, by result.",
               METRIC_COUNTER);
    metric_add1(b, (double)d->reloads_ok, "result", "success");
    metric_add1(b, (double)d->reloads_failed, "result", "failure");
    metric_fam(b, "sitrep_config_last_reload_success_timestamp_seconds",
               "When the configuration was last loaded successfully, in unixtime.", METRIC_GAUGE);
    metric_add0(b, (double)d->reload_ms / 1000.0);
    http_emit_metrics(d->http, b);
    tsdb_expose(d->db, b);
    if (d->notify)
        notify_expose(d->notify, b);
    if (d->rules)
        rules_expose(d->rules, b);
    scrape_emit_self(d->scrape, b);
}

static int open_store(struct daemon *d)
{
    const struct config_storage *c = &d->cfg.storage;
    char dir[4096], err[1024];
    snprintf(dir, sizeof(dir), "%s/tsdb", d->cfg.data_dir);
    struct tsdb_opts o = {
        .dir = dir,
        .max_series = c->max_series,
        .max_labels = c->max_labels,
        .block_span_ms = c->block_span_ms,
        .retention_ms = {c->retention_raw_ms, c->retention_1m_ms, c->retention_1h_ms},
        .max_bytes = (uint64_t)c->max_bytes,
        .min_free_bytes = (uint64_t)c->min_free_bytes,
        .min_free_percent = c->min_free_percent,
        .sync_interval_ms = c->sync_interval_ms,
        .background = 1,
    };
    if (tsdb_open(&d->db, &o, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

static void h_metrics(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct daemon *d = ctx;
    struct metric_buf own;
    metric_buf_init(&own);
    pthread_mutex_lock(&d->lock);
    emit_daemon_metrics(d, &own);
    collect_expose(d->collect, &resp->body);
    ingest_expose(d->ingest, &resp->body);
    probe_expose(d->probe, &resp->body);
    statsd_expose(d->statsd, &resp->body);
    pthread_mutex_unlock(&d->lock);
    const struct metric_buf *bufs[] = {&own};
    metric_expose(bufs, 1, &resp->body);
    metric_buf_release(&own);
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* GET /api/v1/sitrep/ingest: the access logs' malformed-line diagnosis (ingest_diagnose). */
static void h_ingest_diag(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct daemon *d = ctx;
    struct sbuf diag;
    sbuf_init(&diag, 1 << 20);
    pthread_mutex_lock(&d->lock); /* the ingester is swapped on reload under it */
    ingest_diagnose(d->ingest, &diag);
    pthread_mutex_unlock(&d->lock);
    while (diag.len && diag.buf[diag.len - 1] == '\n')
        diag.buf[--diag.len] = '\0';
    resp->content_type = "application/json";
    sbuf_adds(&resp->body, "{\"status\":\"success\",\"data\":");
    sbuf_add(&resp->body, diag.buf, diag.len);
    sbuf_adds(&resp->body, "}\n");
    sbuf_release(&diag);
}

static void h_healthy(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    sbuf_adds(&resp->body, "sitrep is Healthy.\n");
}

static void h_buildinfo(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->content_type = "application/json";
    sbuf_addf(&resp->body,
              "{\"status\":\"success\",\"data\":{\"version\":\"%s\",\"revision\":\"%s\","
              "\"branch\":\"main\",\"buildUser\":\"\",\"buildDate\":\"%s\","
              "\"goVersion\":\"none (C, gcc %d.%d)\"}}",
              SITREP_VERSION, SITREP_REVISION, __DATE__, __GNUC__, __GNUC_MINOR__);
}

static void h_index(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    (void)req;
    sbuf_adds(&resp->body, "sitrep " SITREP_VERSION "\n\n"
                           "GET  /metrics                    host metrics (Prometheus text)\n"
                           "GET  /-/healthy                  liveness\n"
                           "GET  /-/ready                    readiness\n"
                           "GET  /api/v1/status/buildinfo    build information (JSON)\n"
                           "GET  /api/v1/export?match[]=     raw samples (JSON lines)\n"
                           "GET  /api/v1/series?match[]=     series (Prometheus API)\n"
                           "GET  /api/v1/labels              label names\n"
                           "GET  /api/v1/label/NAME/values   a label's values\n"
                           "GET  /api/v1/metadata            metric types and help\n"
                           "GET  /api/v1/format_query?query= a query in canonical form\n"
                           "GET  /api/v1/query?query=        PromQL (also query_range)\n"
                           "GET  /api/v1/rules               rule groups and their health\n"
                           "GET  /api/v1/alerts              pending and firing alerts\n"
                           "GET  /api/v2/alerts              alerts as the notifier sees them\n"
                           "GET  /api/v2/silences            silences (POST to add)\n"
                           "GET  /api/v1/sitrep/ingest       access logs' malformed lines\n"
                           "POST /-/reload                   reload the config file\n");
}

static int do_reload(struct daemon *d);

/* POST /-/reload: same path as SIGHUP, answered with the outcome. */
static void h_reload(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct daemon *d = ctx;
    if (do_reload(d) < 0)
        http_error(resp, 500, "reload failed:\n%s", d->reload_err);
    else
        sbuf_adds(&resp->body, "reloaded\n");
}

/*
 * Re-read the config. On error, keep running on the old config. The listen
 * address and data directory are fixed for the life of the process (as in
 * Prometheus): a change is reported, not applied.
 */
static int do_reload(struct daemon *d)
{
    struct config cfg;
    struct sbuf errors;
    struct rules_set *set = NULL;
    sbuf_init(&errors, 64 << 10);
    int rc = load_config(d, &cfg, &errors);
    if (rc == 0)
        rc = load_rules(&cfg, &set, &errors); /* a bad rule file keeps the old rules too */
    pthread_mutex_lock(&d->lock);
    if (rc < 0) {
        snprintf(d->reload_err, sizeof(d->reload_err), "%s", errors.buf);
        d->reload_ok = 0;
        d->reloads_failed++;
        pthread_mutex_unlock(&d->lock);
        log_error("reload: config has errors; keeping the running config:\n%s", errors.buf);
        config_release(&cfg);
        sbuf_release(&errors);
        return -1;
    }
    if (strcmp(cfg.listen, d->cfg.listen) != 0 || strcmp(cfg.data_dir, d->cfg.data_dir) != 0)
        log_warn("reload: listen address and data directory changes need a restart");
    set_str(&cfg.listen, d->cfg.listen);
    set_str(&cfg.data_dir, d->cfg.data_dir);
    log_set_level((enum log_level)log_level_parse(cfg.log_level));
    notify_set_config(d->notify, &cfg.alerting); /* takes it over */
    rules_update(d->rules, set);
    /* The ingester keeps its counts and open files unless its part of the config changed. */
    struct ingest *old_ingest = NULL;
    if (!ingest_logs_equal(cfg.logs, cfg.nlogs, d->cfg.logs, d->cfg.nlogs) ||
        cfg.collect.interval_s != d->cfg.collect.interval_s) {
        ingest_stop(d->ingest); /* saves its offsets, which the new one loads */
        struct ingest *ni = make_ingest(d, &cfg);
        if (!ni) {
            log_error("reload: logs: keeping the running access-log ingestion");
            ingest_start(d->ingest);
        } else {
            old_ingest = d->ingest;
            d->ingest = ni;
            ingest_start(ni);
        }
    }
    /* Probes, StatsD and scrapes keep running unless their own section changed. */
    struct probe *old_probe = NULL;
    struct statsd *old_statsd = NULL;
    struct scrape *old_scrape = NULL;
    if (!probe_config_equal(&cfg.probes, &d->cfg.probes) ||
        cfg.collect.interval_s != d->cfg.collect.interval_s) {
        struct probe *np = make_probe(d, &cfg);
        if (np && probe_start(np) == 0) {
            old_probe = d->probe;
            d->probe = np;
            probe_stop(old_probe);
        } else {
            log_error("reload: probes: keeping the running probes");
            probe_free(np);
        }
    }
    if (!statsd_config_equal(&cfg.statsd, &d->cfg.statsd) ||
        cfg.collect.interval_s != d->cfg.collect.interval_s) {
        struct statsd *ns = make_statsd(d, &cfg);
        statsd_stop(d->statsd); /* the new one binds the same port */
        if (ns && statsd_start(ns) == 0) {
            old_statsd = d->statsd;
            d->statsd = ns;
        } else {
            log_error("reload: statsd: keeping the running listener");
            statsd_free(ns);
            statsd_start(d->statsd);
        }
    }
    if (!scrape_config_equal(&cfg.scrape, &d->cfg.scrape)) {
        struct scrape *nc = make_scrape(d, &cfg);
        if (nc && scrape_start(nc) == 0) {
            old_scrape = d->scrape;
            d->scrape = nc;
            scrape_stop(old_scrape);
        } else {
            log_error("reload: scrape: keeping the running scrapes");
            scrape_free(nc);
        }
    }
    struct queue *old_queue = NULL;
    if (!queue_config_equal(&cfg.queues, &d->cfg.queues)) {
        struct queue *nq = make_queue(d, &cfg);
        if (queue_start(nq) == 0) {
            old_queue = d->queue;
            d->queue = nq;
            queue_stop(old_queue);
        } else {
            log_error("reload: queues: keeping the running queue polls");
            queue_free(nq);
        }
    }
    struct exec *old_exec = NULL;
    if (!exec_config_equal(&cfg.exec, &d->cfg.exec)) {
        struct exec *ne = make_exec(d, &cfg);
        if (exec_start(ne) == 0) {
            old_exec = d->exec;
            d->exec = ne;
            exec_stop(old_exec);
        } else {
            log_error("reload: exec: keeping the running commands");
            exec_free(ne);
        }
    }
    struct collect *old = d->collect;
    collect_stop(old);
    d->collect = make_collector(d, &cfg);
    collect_start(d->collect);
    config_release(&d->cfg);
    d->cfg = cfg;
    d->reload_ok = 1;
    d->reloads_ok++;
    d->reload_ms = util_now_ms();
    log_info("reload: configuration reloaded%s%s", d->cfg.path ? " from " : "",
             d->cfg.path ? d->cfg.path : "");
    pthread_mutex_unlock(&d->lock);
    collect_free(old);
    ingest_free(old_ingest);
    probe_free(old_probe);
    statsd_free(old_statsd);
    scrape_free(old_scrape);
    queue_free(old_queue);
    exec_free(old_exec);
    sbuf_release(&errors);
    return 0;
}

/* One sitrep per data directory: hold an exclusive lock on DIR/LOCK. */
static int lock_data_dir(struct daemon *d)
{
    char err[512];
    d->lock_fd = util_lock_dir(d->cfg.data_dir, err, sizeof(err));
    return d->lock_fd < 0 ? log_error("%s", err) : 0;
}

static int parse_flags(struct daemon *d, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"data", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'}, {"log-level", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:d:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            d->flag_listen = optarg;
            break;
        case 'd':
            d->flag_data = optarg;
            break;
        case 'c':
            d->flag_config = optarg;
            break;
        case 'L':
            if (log_level_parse(optarg) < 0) {
                fprintf(stderr, "sitrep serve: --log-level: want debug, info, warn or error\n");
                return 2;
            }
            d->flag_log_level = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sitrep serve: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

int serve_main(int argc, char **argv)
{
    struct daemon d = {.lock_fd = -1};
    int rc = parse_flags(&d, argc, argv);
    if (rc >= 0)
        return rc;
    struct sbuf errors;
    sbuf_init(&errors, 64 << 10);
    if (load_config(&d, &d.cfg, &errors) < 0) {
        fprintf(stderr, "%s", errors.buf);
        sbuf_release(&errors);
        config_release(&d.cfg);
        return 1;
    }
    struct rules_set *rset = NULL;
    if (load_rules(&d.cfg, &rset, &errors) < 0) {
        fprintf(stderr, "%s", errors.buf);
        sbuf_release(&errors);
        config_release(&d.cfg);
        return 1;
    }
    sbuf_release(&errors);
    log_set_level((enum log_level)log_level_parse(d.cfg.log_level));
    tzset(); /* glibc's time zone state, read by log lines and timex: set before threads */
    d.start_ms = d.reload_ms = util_now_ms();
    d.reload_ok = 1;
    pthread_mutex_init(&d.lock, NULL);

    /* Block the signals we handle before any thread exists, so all inherit it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = 1;
    if (lock_data_dir(&d) < 0)
        goto out;
    if (open_store(&d) < 0)
        goto out;
    char url[512];
    snprintf(url, sizeof(url), "http://%s", d.cfg.listen);
    struct notify_opts no = {.data_dir = d.cfg.data_dir, .external_url = url};
    if (!(d.notify = notify_new(&no, &d.cfg.alerting)) || notify_start(d.notify) < 0)
        goto out;
    struct rules_label ext[64];
    size_t next = d.cfg.rules.nexternal < 64 ? d.cfg.rules.nexternal : 64;
    for (size_t i = 0; i < next; i++)
        ext[i] =
            (struct rules_label){d.cfg.rules.external_names[i], d.cfg.rules.external_values[i]};
    struct rules_opts ro = {
        .db = d.db,
        .notify = d.notify,
        .data_dir = d.cfg.data_dir,
        .external = ext,
        .nexternal = next,
        .external_url = url,
        .resend_delay_ms = d.cfg.rules.resend_delay_ms,
        .outage_tolerance_ms = d.cfg.rules.outage_tolerance_ms,
        .flap_threshold = d.cfg.rules.flap_threshold,
        .flap_window_ms = d.cfg.rules.flap_window_ms,
        .flap_quiet_ms = d.cfg.rules.flap_quiet_ms,
    };
    d.rules = rules_new(&ro, rset); /* takes rset over */
    rset = NULL;
    if (rules_start(d.rules) < 0)
        goto out;
    d.collect = make_collector(&d, &d.cfg);
    if (collect_start(d.collect) < 0)
        goto out;
    if (!(d.ingest = make_ingest(&d, &d.cfg)) || ingest_start(d.ingest) < 0)
        goto out;
    if (!(d.probe = make_probe(&d, &d.cfg)) || probe_start(d.probe) < 0)
        goto out;
    if (!(d.statsd = make_statsd(&d, &d.cfg)) || statsd_start(d.statsd) < 0)
        goto out; /* e.g. its port is taken: said in the log */
    if (!(d.scrape = make_scrape(&d, &d.cfg)) || scrape_start(d.scrape) < 0)
        goto out;
    if (!(d.queue = make_queue(&d, &d.cfg)) || queue_start(d.queue) < 0)
        goto out;
    if (!(d.exec = make_exec(&d, &d.cfg)) || exec_start(d.exec) < 0)
        goto out;
    d.http = http_new();
    http_route(d.http, "GET", "/", HTTP_READ, h_index, &d);
    http_route(d.http, "GET", "/metrics", HTTP_READ, h_metrics, &d);
    http_route(d.http, "GET", "/-/healthy", HTTP_READ, h_healthy, &d);
    http_route(d.http, "GET", "/-/ready", HTTP_READ, h_healthy, &d);
    http_route(d.http, "GET", "/api/v1/status/buildinfo", HTTP_READ, h_buildinfo, &d);
    http_route(d.http, "POST", "/-/reload", HTTP_MUTATES, h_reload, &d);
    http_route(d.http, "GET", "/api/v1/export", HTTP_READ, query_export, d.db);
    http_route(d.http, "GET", "/api/v1/sitrep/ingest", HTTP_READ, h_ingest_diag, &d);
    query_api_register(d.http, d.db);
    notify_register_http(d.http, d.notify);
    rules_register_http(d.http, d.rules);
    if (http_start(d.http, d.cfg.listen, d.cfg.http_token) < 0)
        goto out;

    /* HTTP is up: a POST /-/reload may swap d.cfg from now on. */
    pthread_mutex_lock(&d.lock);
    log_info("sitrep %s watching this host every %ds; data in %s", SITREP_VERSION,
             d.cfg.collect.interval_s, d.cfg.data_dir);
    log_info("metrics: http://%s/metrics   health: http://%s/-/healthy", d.cfg.listen,
             d.cfg.listen);
    pthread_mutex_unlock(&d.lock);

    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info("SIGHUP: reloading configuration");
            do_reload(&d);
            continue;
        }
        log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    rc = 0;
out:
    if (d.http)
        http_free(d.http);
    rules_free(d.rules); /* saves alert state; before the store and notify go */
    rules_set_free(rset);
    notify_free(d.notify);
    collect_free(d.collect);
    ingest_free(d.ingest); /* its last batch goes into the store: before closing it */
    probe_free(d.probe);
    statsd_free(d.statsd); /* emits a last batch too */
    scrape_free(d.scrape);
    queue_free(d.queue);
    exec_free(d.exec);
    tsdb_close(d.db);
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    config_release(&d.cfg);
    pthread_mutex_destroy(&d.lock);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
