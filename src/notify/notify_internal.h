/*
 * notify_internal.h: what the files of src/notify share and nothing else
 * includes (tests do, to check internals through it): the pipeline's state,
 * the route tree, matchers, the JSON reader, time formats, the SQLite store,
 * payload rendering and the senders.
 */
#ifndef SITREP_NOTIFY_INTERNAL_H
#define SITREP_NOTIFY_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "notify/notify.h"
#include "util/sbuf.h"

/* Hard caps on what one alert may carry (untrusted when it comes over HTTP). */
#define NOTIFY_MAX_LABELS      64
#define NOTIFY_MAX_ALERT_BYTES (32 << 10) /* labels + annotations + generatorURL */
#define NOTIFY_MAX_PAYLOAD     (4 << 20)  /* one rendered notification */
#define NOTIFY_MAX_MATCHERS    64         /* per silence */

/* ---- small helpers (util.c) ---- */

/* A copied, name-sorted label set in one allocation. */
struct notify__lset {
    struct notify_label *v;
    size_t n;
};

/* Copy n labels into *out sorted by name. Returns 0, or -1 on a duplicate name. */
int notify__lset_copy(struct notify__lset *out, const struct notify_label *v, size_t n);
void notify__lset_free(struct notify__lset *l);
/* The value of label name, or "" (Alertmanager treats a missing label as empty). */
const char *notify__lset_get(const struct notify__lset *l, const char *name);
/* Go's LabelSet.String(): {a="x", b="y"}, sorted. */
void notify__lset_string(struct sbuf *b, const struct notify__lset *l);
/* JSON object {"a":"x",...}. */
void notify__lset_json(struct sbuf *b, const struct notify__lset *l);

/* The buffer's string, handed to the caller (who frees it); b is released. */
char *notify__sbuf_take(struct sbuf *b);

uint64_t notify__fnv_init(void);
uint64_t notify__fnv_add(uint64_t h, const void *p, size_t n);

/* RFC 3339 UTC with Go's trimmed fraction (2024-01-02T03:04:05.5Z); 0 is Go's zero time. */
void notify__time_json(struct sbuf *b, int64_t ms);
/* Parse RFC 3339 (fraction and offset optional) to ms. 0 or -1. */
int notify__time_parse(const char *s, int64_t *ms);
/* Parse a Prometheus/Alertmanager duration: 1h30m, 5m, 100ms, 2d, 1w, 1y; 0 alone. 0 or -1. */
int notify__duration_parse(const char *s, long long *ms);
/* Format ms as a duration ("5m", "1h30m", "0s") into out (32 bytes). */
void notify__duration_format(long long ms, char *out);
/* A random UUID (version 4) as 36 characters + NUL. */
void notify__uuid(char out[37]);
/* Read a secret file (at most 64 KiB), trailing whitespace trimmed. NULL on error (logged). */
char *notify__read_secret(const char *path);

/* Open-addressing map from 64-bit keys to pointers (0 is not a valid key). */
struct notify__map {
    uint64_t *keys;
    void **vals;
    size_t cap, len;
};
void *notify__map_get(const struct notify__map *m, uint64_t key);
void notify__map_put(struct notify__map *m, uint64_t key, void *val);
void notify__map_del(struct notify__map *m, uint64_t key);
void notify__map_release(struct notify__map *m);

/* ---- matchers (matcher.c) ---- */

/* Compile m->re from m->value. 0, or -1 with err filled. */
int notify__matcher_compile(struct notify_matcher *m, char *err, size_t errcap);
/* Free m->re only (for a matcher whose strings the caller owns). */
void notify__matcher_free_re(struct notify_matcher *m);
int notify__matcher_match(const struct notify_matcher *m, const char *value);
int notify__matchers_match(const struct notify_matchers *ms, const struct notify__lset *l);
/* name="value" as Alertmanager prints a matcher; {a="b",c=~"d"} for a set (sorted copy). */
void notify__matcher_string(struct sbuf *b, const struct notify_matcher *m);
void notify__matchers_string(struct sbuf *b, const struct notify_matchers *ms);
/* Deep copy (recompiles regexes). */
void notify__matchers_copy(struct notify_matchers *dst, const struct notify_matchers *src);
/* 1 if the matcher matches the empty string (a label that is absent). */
int notify__matcher_matches_empty(const struct notify_matcher *m);

/* ---- the route tree with inheritance resolved (route.c) ---- */

struct notify__route {
    const struct notify_route *cfg;
    struct notify__route *parent;
    struct notify__route *children;
    size_t nchildren;
    size_t idx; /* depth-first post-order, as Alertmanager numbers routes */
    const char *receiver_name;
    const struct notify_receiver *receiver; /* NULL only if the config referenced none */
    char *const *group_by;
    size_t ngroup_by;
    int group_by_all;
    long long group_wait_ms, group_interval_ms, repeat_interval_ms;
    char *key; /* Alertmanager's route key: {}/{severity="page"} */
};

struct notify__routes {
    struct notify__route *root; /* NULL: no route configured */
    size_t count;
};

/* Build the effective tree from cfg (which must outlive it). */
void notify__routes_build(struct notify__routes *rt, const struct notify_config *cfg);
void notify__routes_free(struct notify__routes *rt);
/*
 * The routes an alert with labels l goes to, in order (Alertmanager's
 * Route.Match: the deepest matching routes, `continue` honoured). Fills out
 * with up to cap routes; returns how many matched (may exceed cap).
 */
size_t notify__routes_match(const struct notify__routes *rt, const struct notify__lset *l,
                            const struct notify__route **out, size_t cap);

/* ---- JSON reader (jsonread.c): a small DOM for API bodies and stored rows ---- */

enum notify__jtype { NJ_NULL, NJ_BOOL, NJ_NUM, NJ_STR, NJ_ARR, NJ_OBJ };

struct notify__jv {
    enum notify__jtype type;
    int b;
    double num;
    char *str;                /* NJ_STR: NUL-terminated (embedded NULs refused) */
    struct notify__jv *items; /* NJ_ARR and NJ_OBJ */
    char **keys;              /* NJ_OBJ */
    size_t n;
};

/* Parse len bytes. Returns a tree to free with notify__jv_free, or NULL with err. */
struct notify__jv *notify__json_parse(const char *s, size_t len, char *err, size_t errcap);
void notify__jv_free(struct notify__jv *v);
/* Member of an object, or NULL. */
const struct notify__jv *notify__jv_get(const struct notify__jv *o, const char *key);
/* The string member, or NULL if absent or not a string. */
const char *notify__jv_str(const struct notify__jv *o, const char *key);

/* ---- alerts, groups, silences: the pipeline's state (pipeline.c) ---- */

struct notify__alert {
    uint64_t fp;
    struct notify__lset labels, annotations;
    char *generator_url;
    int64_t starts_ms, ends_ms; /* ends_ms: when it resolves (set by resolve_timeout if unset) */
    int64_t updated_ms;
    int timeout;   /* ends_ms came from resolve_timeout, not from the sender */
    unsigned refs; /* groups holding it */
};

struct notify__group {
    uint64_t id; /* route index and group labels, hashed */
    const struct notify__route *route;
    struct notify__lset labels;
    char *key; /* route key ":" group labels, Alertmanager's groupKey */
    uint64_t *fps;
    size_t n, cap;
    int64_t next_ms; /* next flush */
};

struct notify__silence {
    char id[37];
    struct notify_matchers matchers;
    int64_t starts_ms, ends_ms, updated_ms;
    char *created_by, *comment;
};

enum notify__sil_state { NOTIFY_SIL_PENDING, NOTIFY_SIL_ACTIVE, NOTIFY_SIL_EXPIRED };
enum notify__sil_state notify__silence_state(const struct notify__silence *s, int64_t now);
const char *notify__silence_state_name(enum notify__sil_state st);

/* The notification log: what was last sent to one integration for one group. */
struct notify__nflog {
    char *key; /* receiver \x1f index \x1f group key */
    int64_t ts_ms, expires_ms;
    uint64_t *firing, *resolved; /* sorted */
    size_t nfiring, nresolved;
};

/* One pending notification; its payload stays in SQLite until sent. */
struct notify__entry {
    int64_t id;
    char *receiver;
    unsigned index; /* integration index in the receiver */
    enum notify_kind kind;
    uint64_t order_key; /* receiver, index and group key hashed: sent in id order per key */
    int64_t created_ms, next_ms;
    unsigned attempts;
    int in_flight;
    char status[9]; /* firing|resolved */
    char *group_key;
    char *body; /* kept only when there is no database */
    size_t body_len;
};

/* Per-(receiver, integration) counters for sitrep_notifications_total. */
enum notify__outcome {
    NOTIFY_OUT_SUCCESS,
    NOTIFY_OUT_RETRY,
    NOTIFY_OUT_REJECTED,
    NOTIFY_OUT_EXPIRED,
    NOTIFY_OUT_RATE_LIMITED,
    NOTIFY_OUT_DROPPED,
    NOTIFY_OUT_N
};
struct notify__counter {
    char *receiver;
    unsigned index;
    enum notify_kind kind;
    uint64_t n[NOTIFY_OUT_N];
    int64_t *runs; /* exec: start times in the last hour (ring of max_per_hour) */
    size_t nruns, runs_head;
};

struct notify__store; /* SQLite (store.c) */

struct notify {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    struct notify_opts opts;
    char *external_url;
    struct notify_config cfg;
    struct notify__routes routes;
    struct notify__store *db;

    struct notify__map alerts; /* fp -> struct notify__alert */
    struct notify__map groups; /* id -> struct notify__group */
    size_t nalerts, ngroups;

    struct notify__silence **silences;
    size_t nsilences;

    struct notify__map nflog_idx; /* hash of key -> struct notify__nflog */
    size_t nnflog;

    struct notify__entry **outbox; /* in id order */
    size_t noutbox, outbox_cap;
    int64_t next_id; /* for the in-memory outbox */

    struct notify__counter *counters;
    size_t ncounters;
    uint64_t alerts_received, alerts_rejected[3], outbox_dropped, flushes, db_errors;
    int64_t last_gc_ms;

    /* Firing source alerts per inhibit rule, listed for one round of
     * flushes (or one API answer); inh_cached says the lists are valid. */
    const struct notify__alert ***inh_src;
    size_t *inh_nsrc, inh_rules;
    int inh_cached;

    struct notify_config **retired; /* replaced configs, freed once no send uses them */
    size_t nretired;
    unsigned inflight; /* deliveries under way outside the mutex */

    pthread_t timer_thread, *workers;
    int nworkers, running, stopping;
};

int64_t notify__now(const struct notify *n);
/* Alertmanager's DedupStage.needsUpdate; entry may be NULL. Exposed for tests. */
int notify__needs_update(const struct notify__nflog *entry, const uint64_t *firing, size_t nf,
                         const uint64_t *resolved, size_t nr, int send_resolved,
                         long long repeat_ms, int64_t now);
/* 1 if an active silence mutes l (its id into by, 37 bytes, if by != NULL). Under mu. */
int notify__silenced(struct notify *n, const struct notify__lset *l, int64_t now, char *by);
/* 1 if an inhibit rule mutes l (the inhibiting alert's fingerprint into *by). Under mu. */
int notify__inhibited(struct notify *n, const struct notify__lset *l, int64_t now, uint64_t *by);
/* Build (and drop) the inhibit rules' source lists. Under mu; no alert may change in between. */
void notify__inhibit_cache(struct notify *n, int64_t now);
void notify__inhibit_uncache(struct notify *n);
/* Counter slot for an integration (created on first use). Under mu. */
struct notify__counter *notify__counter(struct notify *n, const char *receiver, unsigned index,
                                        enum notify_kind kind);
const char *notify__kind_name(enum notify_kind k);

/* ---- silences (silence.c), under mu ---- */

/*
 * Create or update a silence from an API body (PostableSilence JSON).
 * Returns 0 and the id, or an HTTP status (400, 404) with err filled.
 */
int notify__silence_post(struct notify *n, const struct notify__jv *body, char id[37], char *err,
                         size_t errcap);
struct notify__silence *notify__silence_find(struct notify *n, const char *id);
/* Expire a silence. 0, or 404. */
int notify__silence_expire(struct notify *n, const char *id);
/* GettableSilence JSON. */
void notify__silence_json(struct sbuf *b, const struct notify__silence *s, int64_t now);
void notify__silence_free(struct notify__silence *s);
/* Drop silences expired longer than the retention ago (and from the database). */
void notify__silences_gc(struct notify *n, int64_t now);

/* ---- the SQLite store (store.c); every call under mu ---- */

/* Open data_dir/notify.db (created). NULL on error (logged). */
struct notify__store *notify__store_open(const char *dir);
void notify__store_close(struct notify__store *s);
int notify__store_begin(struct notify__store *s);
int notify__store_commit(struct notify__store *s);

/* Insert a pending notification; sets e->id. 0 or -1. */
int notify__store_outbox_add(struct notify__store *s, struct notify__entry *e, const char *body,
                             size_t len);
int notify__store_outbox_update(struct notify__store *s, const struct notify__entry *e);
int notify__store_outbox_del(struct notify__store *s, int64_t id);
/* The payload of entry id (caller frees). NULL if gone. */
char *notify__store_outbox_body(struct notify__store *s, int64_t id, size_t *len);
/* Call fn for every pending entry in id order (body not loaded). */
int notify__store_outbox_load(struct notify__store *s,
                              void (*fn)(void *ctx, struct notify__entry *e), void *ctx);

int notify__store_silence_put(struct notify__store *s, const struct notify__silence *sil);
int notify__store_silence_del(struct notify__store *s, const char *id);
int notify__store_silence_load(struct notify__store *s,
                               void (*fn)(void *ctx, struct notify__silence *sil), void *ctx);

int notify__store_nflog_put(struct notify__store *s, const struct notify__nflog *e);
int notify__store_nflog_del(struct notify__store *s, const char *key);
int notify__store_nflog_load(struct notify__store *s,
                             void (*fn)(void *ctx, struct notify__nflog *e), void *ctx);

/* ---- payloads (payload.c) ---- */

/* A group's notification as the renderers see it. */
struct notify__msg {
    const char *receiver;
    const char *group_key;
    const struct notify__lset *group_labels;
    const struct notify__alert *const *alerts; /* firing first is not required */
    size_t nalerts;
    int64_t now;
    const char *external_url;
    long long group_interval_ms;
};

/* 1 if the alert counts as resolved at now. */
int notify__alert_resolved(const struct notify__alert *a, int64_t now);
/* Render msg for integration it into out. Returns 0, or -1 if out hit its cap. */
int notify__render(struct sbuf *out, const struct notify__msg *msg,
                   const struct notify_integration *it);
/* Alertmanager's webhook JSON (version 4), also exec's stdin. max_alerts 0: all. */
void notify__render_webhook(struct sbuf *out, const struct notify__msg *msg, unsigned max_alerts);
/* "[FIRING:2] alertname job" as Alertmanager's default subject and title. */
void notify__render_title(struct sbuf *out, const struct notify__msg *msg);

/* ---- senders (send.c) ---- */

/* Initialise libcurl once per process (before threads send). 0 or -1 (logged). */
int notify__send_init(void);
/* The real transport: curl for HTTP and SMTP, posix_spawn for exec. */
enum notify_result notify__send(void *ctx, const struct notify_delivery *d, char *err,
                                size_t errcap);

#endif
