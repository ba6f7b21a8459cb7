/*
 * config.h: sitrep's configuration: built-in defaults, overridden by an
 * optional YAML file, overridden by command-line flags. Every key is
 * optional. Errors name the place as "file:line:col: message".
 *
 * Ownership: a struct config owns all its strings; config_release frees them.
 */
#ifndef SITREP_CONFIG_H
#define SITREP_CONFIG_H

#include <stddef.h>

#include "exec/exec.h"
#include "ingest/ingest.h"
#include "notify/notify.h"
#include "probe/probe.h"
#include "queue/queue.h"
#include "scrape/scrape.h"
#include "statsd/statsd.h"
#include "util/sbuf.h"

#define CONFIG_DEFAULT_LISTEN "127.0.0.1:9797"
#define CONFIG_DEFAULT_DATA   "./sitrep-data"

struct config_collect {
    int interval_s;    /* 1 */
    int top_processes; /* 10; 0 turns the per-process series off */
    char *proc_root;   /* "/proc" */
    char *sys_root;    /* "/sys" */
    char *rootfs;      /* "" */
    char **disable;    /* source names */
    size_t ndisable;
    /* Field selection, PCRE2 matching whole names (collect.h); NULL: every field.
     * config_load has compiled each, so a loaded one is valid. */
    char *vmstat_fields;
    char *netstat_fields;
};

/*
 * The metric store's limits. Durations are in milliseconds, sizes in bytes.
 * config_load checks every range (see README.md), so a loaded value is in
 * range and block_span_ms divides 2h exactly.
 */
struct config_storage {
    long long retention_raw_ms; /* 14d; raw (1 s) samples; 1h .. 36500d */
    long long retention_1m_ms;  /* 90d; 1-minute aggregates; 1d .. 36500d */
    long long retention_1h_ms;  /* 730d; 1-hour aggregates; 1d .. 36500d */
    long long max_bytes;        /* 2GiB; blocks + WAL on disk; >= 64MiB */
    long long min_free_bytes;   /* 1GiB; stop writing below this much free; 0: off */
    int min_free_percent;       /* 5; ...or below this % of the filesystem; 0 .. 50 */
    unsigned max_series;        /* 200000; 1000 .. 10,000,000 */
    unsigned max_labels;        /* 32; per series, including __name__; 2 .. 64 */
    long long sync_interval_ms; /* 1s; WAL fsync period; 100ms .. 60s */
    long long block_span_ms;    /* 2h; 10s .. 2h and divides 2h */
};

/* `rules:`: the rules engine's settings (docs/RULES.md). Durations in ms. */
struct config_rules {
    long long interval_ms;                    /* 1s; groups without `interval` */
    long long resend_delay_ms;                /* 1m; firing alerts re-sent to notify this often */
    long long outage_tolerance_ms;            /* 1h; alert state older than this is not restored */
    unsigned flap_threshold;                  /* 3; fire/resolve cycles ... */
    long long flap_window_ms;                 /* 1h; ... within this long make an alert flap */
    long long flap_quiet_ms;                  /* 30m; quiet time after which it un-flaps */
    char **external_names, **external_values; /* external_labels, for templates */
    size_t nexternal;
    int default_pack; /* 1; load the built-in rule pack (rules/ compiled in) */
    char **disable;   /* names of built-in rules left out (each one exists) */
    size_t ndisable;
};

/* A `services:` entry: a default probe of url and/or its access log (services.c). */
struct config_service {
    char *name;                    /* the service label */
    char *url;                     /* probed with GET every interval; NULL: no probe */
    char *log;                     /* access log (path or glob) followed as `logs:`; NULL: none */
    enum ingest_format log_format; /* combined */
    long long interval_ms;         /* probe interval; 10 s */
    unsigned line, col;            /* where it is in the file, for errors found later */
};

struct config {
    char *path;       /* file it was loaded from, or NULL */
    char *listen;     /* ADDR:PORT */
    char *data_dir;   /* where the store and state live */
    char *log_level;  /* debug|info|warn|error */
    char *http_token; /* bearer token for state-changing requests; NULL if none */
    struct config_collect collect;
    struct config_storage storage;
    struct ingest_log *logs; /* `logs:` access logs to follow (docs/INGEST.md); none by default */
    size_t nlogs;
    char **rule_files; /* `rule_files:` globs, relative ones against the config's folder */
    size_t nrule_files;
    struct config_rules rules;
    /* `alerting:` (Alertmanager's layout, inline or from a file); defaults when absent */
    struct notify_config alerting;
    int has_alerting;
    struct probe_config probes;  /* `probes:` uptime checks (docs/SIGNALS.md) */
    struct statsd_config statsd; /* `statsd:` listener, off unless configured */
    struct scrape_config scrape; /* `scrape:` application /metrics endpoints */
    struct queue_config queues;  /* `queues:` Redis queue depth (docs/SIGNALS.md) */
    struct exec_config exec;     /* `exec:` commands whose output is exposition */
    /* `services:`, already merged into probes and logs by config_load */
    struct config_service *services;
    size_t nservices;
};

/* The folder of cfg->path ("." without one), into out. */
void config_dir(const struct config *cfg, char *out, size_t cap);

/* Fill cfg with the built-in defaults. */
void config_defaults(struct config *cfg);
void config_release(struct config *cfg);

/*
 * Load `path` over the defaults already in cfg. On error returns -1 and
 * appends one "file:line:col: message\n" per problem to errors; cfg then
 * holds defaults plus whatever parsed (callers discard it).
 */
int config_load(struct config *cfg, const char *path, struct sbuf *errors);

/*
 * Split "host:port" (IPv6 as "[::1]:9797"). Returns 0 and fills host
 * (NUL-terminated, brackets removed) and port, or -1 if malformed.
 */
int config_parse_listen(const char *s, char *host, size_t hostcap, int *port);
/*
 * Parse a duration to ms: a whole number followed by ms, s, m, h, d or w
 * ("15s", "500ms", "730d"), or plain seconds ("3"). Returns 0, or -1 on a
 * sign, a fraction, an unknown unit, trailing text or overflow.
 */
int config_parse_duration_ms(const char *s, long long *ms);
/*
 * Parse a size to bytes: a number, then optionally one of the units B, KB,
 * MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024); units
 * are case-sensitive and follow the number without a space. The number may
 * have up to 9 decimal places when a unit larger than B follows ("1.5GiB");
 * the result is then rounded down to whole bytes. Returns 0, or -1 on a
 * sign, an unknown unit, trailing text or a value above LLONG_MAX.
 */
int config_parse_size(const char *s, long long *bytes);

#endif
