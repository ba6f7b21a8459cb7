/*
 * scrape.h: scraping application /metrics endpoints (Prometheus text format
 * 0.0.4 and OpenMetrics 1.0). One thread drives every target through one
 * libcurl multi handle (no thread per target); each target is scraped on its
 * own interval, with a timeout and a cap on the body. A scrape becomes one
 * metric_buf batch stamped with the scrape's start time: the target's
 * samples with its job/instance (and configured) labels, then `up`,
 * `scrape_duration_seconds`, `scrape_samples_scraped` and
 * `scrape_body_size_bytes`. A scrape that fails in any way (connect, TLS,
 * timeout, status not 200, body over the cap, malformed exposition, too
 * many samples) keeps none of its samples and reports up=0, as Prometheus
 * does; the reason is counted and the error kept for scrape_diagnose().
 * Series names and semantics: docs/SIGNALS.md.
 *
 * Threads: scrape_start() creates the thread; scrape_emit_self() and
 * scrape_diagnose() may be called from any thread. Without the thread
 * (tests) scrape_run_once() scrapes every target once and waits.
 */
#ifndef SITREP_SCRAPE_H
#define SITREP_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct yaml_document_s;
struct yaml_node_s;

#define SCRAPE_DEFAULT_INTERVAL_MS 15000
#define SCRAPE_DEFAULT_TIMEOUT_MS  10000
#define SCRAPE_DEFAULT_BODY_LIMIT  (10LL << 20) /* bytes, after decompression */
#define SCRAPE_DEFAULT_SAMPLES     50000
#define SCRAPE_MAX_LABELS          8 /* configured labels per job */

/* A name/value pair of the config (labels, headers); both owned. */
struct scrape_pair {
    char *name, *value;
};

/*
 * One `static_configs:` entry: targets that share labels (Prometheus' shape),
 * so targets of one job can carry different labels, instance included.
 */
struct scrape_group {
    char **targets; /* as scrape_job.targets; >= 1 */
    size_t ntargets;
    struct scrape_pair labels[SCRAPE_MAX_LABELS]; /* win over the job's labels of the same name */
    size_t nlabels; /* with the job's labels: at most SCRAPE_MAX_LABELS names */
};

/* One `scrape:` entry: a job and its targets. config_release frees it. */
struct scrape_job {
    char *job;                   /* the job label; unique among jobs */
    char **targets;              /* "host:port" (scheme + metrics_path added) or a full URL */
    size_t ntargets;             /* with the groups' targets: >= 1 */
    struct scrape_group *groups; /* `static_configs:`, scraped after `targets:` */
    size_t ngroups;
    char *scheme;                      /* "http" */
    char *metrics_path;                /* "/metrics" */
    long long interval_ms, timeout_ms; /* 15 s, 10 s; timeout <= interval */
    int honor_labels; /* scraped labels win over job/instance/labels (else exported_*) */
    struct scrape_pair
        labels[SCRAPE_MAX_LABELS]; /* extra labels of every target; may set instance */
    size_t nlabels;
    struct scrape_pair *headers; /* extra request headers */
    size_t nheaders;
    long long body_limit;  /* 10 MiB */
    unsigned sample_limit; /* 50000; 0: none */
    int tls_insecure;      /* do not verify the server's certificate */
    char *ca_file;         /* NULL: the system's */
};

struct scrape_config {
    struct scrape_job *jobs; /* owned */
    size_t njobs;
};

void scrape_config_init(struct scrape_config *c);
void scrape_config_release(struct scrape_config *c);
/* 1 if equal (a reload can then keep the scraper). */
int scrape_config_equal(const struct scrape_config *a, const struct scrape_config *b);
/*
 * Read the `scrape:` list `node` into c (appending jobs). Per job: job,
 * targets, static_configs (a list of {targets, labels}), scheme,
 * metrics_path, interval, timeout, honor_labels, labels, headers,
 * body_limit, sample_limit, tls_insecure_skip_verify, ca_file.
 * On error returns -1 and appends "file:line:col: message\n" per problem.
 */
int scrape_config_parse_node(struct scrape_config *c, const char *file, struct yaml_document_s *doc,
                             struct yaml_node_s *node, struct sbuf *errors);

struct scrape_opts {
    const struct scrape_config *config; /* copied */
    /* Called on the scrape thread with each scrape's batch (it stays the scraper's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct scrape;

/* Create a scraper (no thread yet). Never NULL. */
struct scrape *scrape_new(const struct scrape_opts *opts);
/* Stop the thread if running and free everything. NULL is fine. */
void scrape_free(struct scrape *s);
/* Start the thread (a no-op with no jobs). 0 or -1 (logged). */
int scrape_start(struct scrape *s);
/* Stop the thread; scrapes in flight are abandoned (no batch). */
void scrape_stop(struct scrape *s);

/* Without the thread: scrape every target now, wait for all, one sink call each. */
void scrape_run_once(struct scrape *s);

/*
 * Append the scraper's own series: sitrep_scrape_targets,
 * sitrep_scrape_scrapes_total{job}, sitrep_scrape_failures_total{job,reason}.
 * Any thread; NULL s appends nothing.
 */
void scrape_emit_self(struct scrape *s, struct metric_buf *b);
/*
 * Per target, as JSON: {"targets":[{"job":..,"url":..,"instance":..,"up":0|1,
 * "last_scrape_ms":N,"duration_seconds":X,"samples":N,"error":".."}]}.
 */
void scrape_diagnose(struct scrape *s, struct sbuf *out);

#endif
