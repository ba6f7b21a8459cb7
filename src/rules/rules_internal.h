/*
 * rules_internal.h: the structures shared by the rules engine's files
 * (load.c, manager.c, state.c, api.c) and its unit tests. Not for other
 * subsystems: they use rules.h.
 */
#ifndef SITREP_RULES_INTERNAL_H
#define SITREP_RULES_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "rules/rules.h"

struct query_node;

enum rules__state { RULES_INACTIVE = 0, RULES_PENDING = 1, RULES_FIRING = 2 };

#define RULES_FLAP_HISTORY 16 /* resolve times kept per alert for flap detection */

/* One alert of an alerting rule, identified by the fingerprint of its labels. */
struct rules__alert {
    uint64_t fp;
    struct rules_label *labels; /* sorted by name; alertname included */
    size_t nlabels;
    struct rules_label *ann;
    size_t nann;
    double value;
    enum rules__state state;
    int64_t active_at, fired_at, resolved_at, keep_firing_since, last_sent;
    enum rules__state written; /* alertstate of the ALERTS series last written (0: none) */
    int present;               /* in this evaluation's result */
    int was_present;           /* in the previous one's */
    /* Flapping: when it resolved lately (a ring), whether it flaps, since when quiet. */
    int64_t resolves[RULES_FLAP_HISTORY];
    unsigned nresolves;
    int flapping;
    unsigned cycles;
    int64_t last_cycle;
};

struct rules__rule {
    int alerting;
    char *name; /* alert: or record: */
    char *expr_text;
    struct query_node *expr;
    int64_t for_ms, keep_firing_for_ms;
    struct rules_label *labels;
    size_t nlabels;
    struct rules_label *ann;
    size_t nann;
    int line;
    /* runtime (under the engine's mutex) */
    struct rules__alert **alerts;
    size_t nalerts;
    int health; /* 0 unknown, 1 ok, -1 err */
    char last_error[512];
    int64_t last_eval_ms;
    double eval_seconds;
};

struct rules__group {
    char *name, *file;
    int64_t interval_ms;
    unsigned limit;
    struct rules__rule *rules;
    size_t nrules;
    int64_t next_ms, last_eval_ms;
    double eval_seconds;
};

struct rules_set {
    struct rules__group *groups;
    size_t ngroups;
};

struct rules {
    struct rules_opts o;
    struct rules_label *external; /* copies of o.external */
    char *external_url;
    char *state_path; /* NULL: no persistence */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stop;
    struct rules_set *set;
    int dirty;        /* the state changed since the last save */
    int64_t saved_ms; /* when the state file was last written (evaluation thread only) */
    uint64_t evals, eval_failures, notified;
};

/* Prometheus durations: 1y2w3d4h5m6s7ms in that order, or "0". 0 or -1. */
int rules__duration_parse(const char *s, int64_t *ms);
/* Free a label array. */
void rules__labels_free(struct rules_label *l, size_t n);
void rules__alert_free(struct rules__alert *a);
int64_t rules__now(const struct rules *r);
/* Prometheus's fingerprint of a label set (as notify_fingerprint). */
uint64_t rules__labels_fp(const struct rules_label *l, size_t n);

/* Evaluate one group at ts (the engine's mutex is not held). */
void rules__eval_group(struct rules *r, struct rules__group *g, int64_t ts);

/* state.c: the state file. */
int rules__state_save(struct rules *r);
void rules__state_restore(struct rules *r, struct rules_set *set);

#endif
