/*
 * probe.h: uptime probes, in the spirit of Prometheus' blackbox_exporter.
 * HTTP(S) checks (method, headers, expected status set, optional PCRE2
 * regex over the body, TLS certificate expiry) and TCP connect checks
 * (optionally with a TLS handshake), each on its own interval with a
 * timeout. One thread drives every probe through one libcurl multi handle
 * (no thread per probe); each probe uses a fresh connection, so connect
 * and TLS times are measured every time.
 *
 * Each finished probe becomes one metric_buf batch stamped with its start
 * time (probe_success, probe_duration_seconds, per-phase times, status
 * code, certificate expiry, ...) handed to the sink. Every tick (1 s) a
 * second batch carries sitrep_probe_network_ok: 1 while at least one
 * target's latest probe succeeded, 0 when every target's latest probe
 * failed, which says "the daemon's own network is down" rather than "this
 * service is down". Series names and semantics: docs/SIGNALS.md.
 *
 * Threads: probe_start() creates the thread; probe_expose(),
 * probe_emit_self() may be called from any thread. Without the thread
 * (tests) probe_run_once() probes every target once and waits.
 */
#ifndef SITREP_PROBE_H
#define SITREP_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct yaml_document_s;
struct yaml_node_s;

#define PROBE_DEFAULT_INTERVAL_MS 10000
#define PROBE_DEFAULT_TIMEOUT_MS  5000
#define PROBE_MAX_EXPECT          16
#define PROBE_BODY_LIMIT          (1 << 20) /* bytes of a body kept for the regex */

enum probe_kind { PROBE_HTTP, PROBE_TCP };

struct probe_pair {
    char *name, *value;
};

/* An expected status range: lo..hi inclusive ("200" is 200..200, "2xx" 200..299). */
struct probe_status_range {
    int lo, hi;
};

/* One `probes:` entry. The config owns it (probe_config_release frees it). */
struct probe_target {
    char *name;                                         /* the service label; unique among probes */
    enum probe_kind kind;                               /* http: `url:`, tcp: `tcp:` */
    char *target;                                       /* http(s) URL, or host:port */
    long long interval_ms, timeout_ms;                  /* 10 s, 5 s (at most the interval) */
    char *method;                                       /* "GET" */
    struct probe_status_range expect[PROBE_MAX_EXPECT]; /* none: 200..299 */
    size_t nexpect;
    char *body_regex; /* NULL: none */
    struct probe_pair *headers;
    size_t nheaders;
    int follow_redirects; /* 1 */
    int tls;              /* tcp: do a TLS handshake after connecting */
    int tls_insecure;     /* do not verify the certificate (expiry is still reported) */
    char *ca_file;
};

struct probe_config {
    struct probe_target *targets; /* owned */
    size_t ntargets;
};

void probe_config_init(struct probe_config *c);
void probe_config_release(struct probe_config *c);
int probe_config_equal(const struct probe_config *a, const struct probe_config *b);
/* Fill t with the defaults for an HTTP probe of url named name (for a service's default probe). */
void probe_target_http(struct probe_target *t, const char *name, const char *url);
/*
 * Read the `probes:` list `node` into c (appending). Per entry: name, url
 * or tcp, interval, timeout, method, expect_status (list of codes or
 * "2xx"-style classes), body_regex, headers, follow_redirects, tls,
 * tls_insecure_skip_verify, ca_file. On error returns -1 and appends
 * "file:line:col: message\n" per problem to errors.
 */
int probe_config_parse_node(struct probe_config *c, const char *file, struct yaml_document_s *doc,
                            struct yaml_node_s *node, struct sbuf *errors);

struct probe_opts {
    const struct probe_config *config; /* copied */
    int interval_s;                    /* seconds between ticks (network_ok, snapshot); 1 */
    /* Called on the probe thread with each batch (it stays the prober's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct probe;

/* Create a prober (regexes compiled; no thread). NULL if a regex fails (logged). */
struct probe *probe_new(const struct probe_opts *opts);
void probe_free(struct probe *p);
/* Start the thread (a no-op with no targets). 0 or -1 (logged). */
int probe_start(struct probe *p);
/* Stop the thread; probes in flight are abandoned. */
void probe_stop(struct probe *p);

/* Without the thread: probe every target now and wait; one sink call per probe. */
void probe_run_once(struct probe *p);
/* Without the thread: emit the tick batch (network_ok, self) stamped ts_ms and the snapshot. */
void probe_tick(struct probe *p, int64_t ts_ms);
/* The snapshot (latest result of every target, network_ok, self); only without the thread. */
const struct metric_buf *probe_last(struct probe *p);

/* Append the snapshot in text exposition format. 0, or -1 at out's cap. */
int probe_expose(struct probe *p, struct sbuf *out);
/*
 * Append the prober's own series: sitrep_probe_checks_total{service},
 * sitrep_probe_failures_total{service,reason}, sitrep_probe_targets{state}.
 * Any thread; NULL p appends nothing.
 */
void probe_emit_self(struct probe *p, struct metric_buf *b);

#endif
