/*
 * notify.h: the notification pipeline, Alertmanager's model run in-process.
 *
 * The rules engine hands over alerts (labels, annotations, startsAt, endsAt,
 * generatorURL) on every evaluation with notify_submit(), the way Prometheus
 * posts them to Alertmanager: firing alerts again and again, resolved ones
 * with endsAt set. The pipeline routes each alert down a tree of label
 * matchers to receivers, groups alerts per route by group_by labels, waits
 * group_wait before a new group's first notification and group_interval
 * between updates, mutes what inhibit rules and silences say, sends a group
 * only when its content changed or repeat_interval passed, and delivers
 * through an outbox in SQLite (at-least-once, retried with backoff, kept
 * across restarts) to webhooks, Slack-compatible webhooks, email, a real
 * Alertmanager, or a local command. docs/NOTIFY.md has the design and the
 * configuration reference.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the pipeline's state and is never held across a network send or a
 * command run. notify_start() runs a timer thread and delivery workers;
 * without it, notify_tick() does the same work on the caller's thread (tests
 * drive a fake clock that way).
 *
 * Ownership: a struct notify_config owns all its strings and compiled
 * matchers (notify_config_release frees them); notify_new and
 * notify_set_config take the config over. Submitted alerts are copied.
 */
#ifndef SITREP_NOTIFY_H
#define SITREP_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

struct metric_buf;
struct http_server;
struct yaml_document_s;
struct yaml_node_s;

/* ---- configuration (Alertmanager's YAML layout; see docs/NOTIFY.md) ---- */

enum notify_match_op { NOTIFY_EQ, NOTIFY_NE, NOTIFY_RE, NOTIFY_NRE };

/* One label matcher: name op "value". Regexes are anchored at both ends. */
struct notify_matcher {
    char *name;
    char *value;
    enum notify_match_op op;
    void *re; /* compiled (pcre2_code) for NOTIFY_RE and NOTIFY_NRE, else NULL */
};

struct notify_matchers {
    struct notify_matcher *v;
    size_t n;
};

/* Durations are milliseconds; NOTIFY_UNSET means "inherit from the parent route". */
#define NOTIFY_UNSET (-1LL)

struct notify_route {
    char *receiver;   /* NULL: the parent's */
    char **group_by;  /* label names; NULL with group_by_set 0: the parent's */
    size_t ngroup_by; /* group_by: [] (set, empty) groups every alert of the route together */
    int group_by_set; /* group_by was given */
    int group_by_all; /* group_by: ['...']: one group per distinct label set */
    long long group_wait_ms, group_interval_ms, repeat_interval_ms; /* NOTIFY_UNSET: inherit */
    struct notify_matchers matchers; /* all must match (matchers, match and match_re merged) */
    int cont;                        /* `continue`: go on to later siblings after a match */
    struct notify_route *routes;
    size_t nroutes;
    int line, col; /* 1-based position of the route in its file, for messages */
};

/* http_config: the parts of Prometheus's HTTP client config sitrep honours. */
struct notify_http {
    char *bearer_token, *bearer_token_file; /* also authorization: {credentials[_file]} */
    char *auth_type;                        /* authorization.type; "Bearer" by default */
    char *basic_user, *basic_password, *basic_password_file;
    char *ca_file, *cert_file, *key_file;
    int insecure_skip_verify;
    char *proxy_url;
    int follow_redirects; /* default 1 */
};

enum notify_kind {
    NOTIFY_WEBHOOK,
    NOTIFY_SLACK,
    NOTIFY_EMAIL,
    NOTIFY_ALERTMANAGER, /* forward to a real Alertmanager's /api/v2/alerts */
    NOTIFY_EXEC,
};

struct notify_header {
    char *name, *value;
};

/* One integration of a receiver (a webhook_configs entry, an email_configs entry, ...). */
struct notify_integration {
    enum notify_kind kind;
    int send_resolved;    /* webhook 1, slack 0, email 0 (Alertmanager); alertmanager 1, exec 0 */
    long long timeout_ms; /* per attempt; default 10s (email and exec: 30s) */
    /* webhook, slack, alertmanager */
    char *url, *url_file; /* url_file: read at send time (a secret) */
    struct notify_http http;
    unsigned
        max_alerts; /* webhook: alerts per message, the rest counted as truncatedAlerts; 0: all */
    /* slack */
    char *channel, *username, *icon_emoji, *icon_url, *title, *text;
    /* email */
    char *to, *from, *smarthost, *hello;
    char *auth_username, *auth_password, *auth_password_file, *auth_identity;
    int require_tls; /* STARTTLS required (default 1); port 465 means TLS from the start */
    struct notify_header *headers;
    size_t nheaders;
    /* exec */
    char **argv; /* NULL-terminated */
    size_t argc;
    struct notify_header *env;
    size_t nenv;
    unsigned max_per_hour; /* runs allowed per rolling hour; default 6 */
};

struct notify_receiver {
    char *name;
    struct notify_integration *v;
    size_t n;
};

struct notify_inhibit_rule {
    struct notify_matchers source, target;
    char **equal;
    size_t nequal;
};

struct notify_config {
    int has_route;                /* 0: alerts are tracked and listed, nothing is sent */
    struct notify_route route;    /* the root; always has a receiver when has_route */
    long long resolve_timeout_ms; /* global.resolve_timeout: 5m */
    struct notify_receiver *receivers;
    size_t nreceivers;
    struct notify_inhibit_rule *inhibit;
    size_t ninhibit;
    /* sitrep's own keys (`outbox:` and `limits:`) */
    unsigned outbox_max;            /* pending notifications kept; 10000; oldest dropped past it */
    long long retry_initial_ms;     /* first retry delay; 1s, doubling */
    long long retry_max_ms;         /* cap on the delay; 5m */
    long long give_up_after_ms;     /* a notification older than this is dropped; 24h */
    unsigned max_alerts;            /* alerts tracked at once; 10000 */
    unsigned max_groups;            /* aggregation groups at once; 2000 */
    unsigned max_silences;          /* silences kept (expired ones included); 5000 */
    long long silence_retention_ms; /* expired silences and notification log kept; 5d */
};

/* Alertmanager's defaults; no route (nothing is sent). */
void notify_config_defaults(struct notify_config *cfg);
void notify_config_release(struct notify_config *cfg);

/*
 * Parse Alertmanager's configuration layout (route, receivers,
 * inhibit_rules, global, templates) plus sitrep's receivers
 * (alertmanager_configs, exec_configs) and keys (outbox, limits) into cfg,
 * over the defaults already there. name labels the messages (a file name).
 * On error returns -1 and appends one "name:line:col: message\n" per
 * problem to errors; cfg is then to be released, not used.
 */
int notify_config_parse(struct notify_config *cfg, const char *name, const char *text,
                        struct sbuf *errors);
/* The same from a file. */
int notify_config_load(struct notify_config *cfg, const char *path, struct sbuf *errors);
/*
 * The same from a node of a YAML document the caller parsed (so sitrep's
 * main config can hold this layout under a key). file labels the messages.
 */
int notify_config_parse_node(struct notify_config *cfg, const char *file,
                             struct yaml_document_s *doc, struct yaml_node_s *node,
                             struct sbuf *errors);

/*
 * Parse Alertmanager's matcher syntax: `name="value"`, `name=~"re"`,
 * `name!=value`, `name!~"re"`, optionally several separated by commas and
 * wrapped in braces. Appends to *out. Returns 0, or -1 with err filled.
 */
int notify_matchers_parse(const char *s, struct notify_matchers *out, char *err, size_t errcap);
void notify_matchers_release(struct notify_matchers *m);

/* ---- alerts in ---- */

struct notify_label {
    const char *name;
    const char *value;
};

/* An alert as the rules engine (or POST /api/v2/alerts) hands it over. */
struct notify_alert {
    const struct notify_label *labels; /* any order; names unique */
    size_t nlabels;
    const struct notify_label *annotations;
    size_t nannotations;
    int64_t starts_at_ms;      /* when it started firing; 0: now */
    int64_t ends_at_ms;        /* 0 while firing; when it resolved once resolved */
    const char *generator_url; /* may be NULL */
    uint64_t fingerprint;      /* of the label set; 0: computed (notify_fingerprint) */
};

/* Prometheus's fingerprint of a label set (FNV-1a over sorted name\xffvalue\xff). */
uint64_t notify_fingerprint(const struct notify_label *labels, size_t n);

/* ---- the pipeline ---- */

/* What a transport is told to deliver (tests replace the real senders). */
struct notify_delivery {
    const char *receiver;
    const struct notify_integration *integration;
    size_t index;     /* of the integration in its receiver */
    const char *body; /* webhook/Alertmanager JSON, Slack JSON, an email message, exec's stdin */
    size_t body_len;
    const char *status; /* "firing" or "resolved" */
    const char *group_key;
    unsigned attempt; /* 1 for the first */
};

enum notify_result {
    NOTIFY_SENT = 0,     /* delivered */
    NOTIFY_RETRY = 1,    /* failed; try again later */
    NOTIFY_REJECTED = 2, /* failed for good (e.g. HTTP 4xx): dropped */
};

typedef enum notify_result (*notify_transport)(void *ctx, const struct notify_delivery *d,
                                               char *err, size_t errcap);

struct notify_opts {
    const char *data_dir;         /* the outbox, silences and notification log live in
                                     data_dir/notify.db; NULL keeps them in memory only */
    const char *external_url;     /* sitrep's URL for the payloads' externalURL; NULL: "" */
    int workers;                  /* delivery threads notify_start runs; 0: 2 */
    int64_t (*now_ms)(void *ctx); /* the clock; NULL: wall clock (tests pass a fake one) */
    void *clock_ctx;
    notify_transport transport; /* NULL: the real senders (curl, SMTP, exec) */
    void *transport_ctx;
};

struct notify;

/*
 * Create the pipeline: open (or create) the database, load silences, the
 * notification log and pending notifications. Takes over cfg's contents
 * whether it succeeds or not (*cfg is left zeroed). Returns NULL on error
 * (logged).
 */
struct notify *notify_new(const struct notify_opts *o, struct notify_config *cfg);
/* Start the timer thread and the delivery workers. 0 or -1 (logged). */
int notify_start(struct notify *n);
/* Stop the threads, waiting for sends in flight (at most their timeout). Pending
 * notifications stay in the outbox. Safe when not started. */
void notify_stop(struct notify *n);
/* Stop and free everything. NULL is fine. */
void notify_free(struct notify *n);

/*
 * Replace the configuration (a reload): takes over cfg's contents. Alerts
 * are kept and regrouped under the new routes; the notification log keeps a
 * regrouped alert from being notified again.
 */
void notify_set_config(struct notify *n, struct notify_config *cfg);

/*
 * Hand over a batch of alerts (copied). Each is merged with the alert of the
 * same fingerprint if there is one. Returns how many were taken; alerts past
 * the limits (max_alerts, max_groups, label sizes) are counted and dropped.
 */
size_t notify_submit(struct notify *n, const struct notify_alert *alerts, size_t count);

/*
 * Do now what the threads would: flush the groups that are due and make
 * every delivery attempt that is due, on the calling thread. Returns
 * milliseconds until the next thing falls due (capped at 1000).
 */
int64_t notify_tick(struct notify *n);

/* Emit sitrep_notifications_total{receiver,integration,outcome} and the
 * pipeline's other gauges and counters into b. */
void notify_expose(struct notify *n, struct metric_buf *b);

/*
 * Register Alertmanager's v2 API shape on s (n must outlive the server):
 *   GET    /api/v2/alerts           current alerts with silenced/inhibited status
 *   POST   /api/v2/alerts           alerts in, as Prometheus sends them
 *   GET    /api/v2/silences         ?filter=matcher (repeatable)
 *   POST   /api/v2/silences         create or update; answers {"silenceID": ...}
 *   GET    /api/v2/silence/ID
 *   DELETE /api/v2/silence/ID       expire
 * POST and DELETE are HTTP_MUTATES.
 */
void notify_register_http(struct http_server *s, struct notify *n);

/*
 * `sitrep silence add|list|expire ...` against a running daemon's API.
 * argv[0] is the subcommand. Returns the process exit code.
 */
int notify_cli_silence(int argc, char **argv);

#endif
