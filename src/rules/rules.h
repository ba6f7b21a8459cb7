/*
 * rules.h: the rules engine. Loads Prometheus rule files unchanged (groups
 * of alerting and recording rules), evaluates each group on its interval
 * with the PromQL evaluator against the store, keeps alert states with
 * Prometheus's semantics (inactive -> pending -> firing -> resolved, `for`,
 * `keep_firing_for`), writes ALERTS / ALERTS_FOR_STATE and recording rules'
 * outputs back into the store, marks flapping alerts, persists alert state
 * under the data directory so a restart neither re-pages nor loses `for`
 * progress, and hands alerts to the notification pipeline (notify_submit)
 * as Prometheus hands them to Alertmanager. docs/RULES.md has the design.
 *
 * Threads: rules_start runs one evaluation thread; every other function may
 * be called from any thread (one mutex guards the state and is never held
 * across a query). Without rules_start, rules_tick evaluates on the
 * caller's thread (tests drive a fake clock that way).
 *
 * Ownership: a struct rules_set (parsed rule files) owns all its strings and
 * parsed expressions; rules_new and rules_update take one over.
 */
#ifndef SITREP_RULES_H
#define SITREP_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

struct tsdb;
struct notify;
struct http_server;
struct metric_buf;

/* Caps that keep memory bounded whatever the rule files say. */
#define RULES_MAX_ALERTS_PER_RULE 1000 /* when the group sets no `limit` */
#define RULES_MAX_RULES           10000
#define RULES_MAX_FILE_BYTES      (4 << 20)
#define RULES_MAX_TEMPLATE_OUT    (16 << 10) /* bytes of one expanded label/annotation */

/* ---- rule files ---- */

struct rules_set;

/*
 * Parse one rule file's text (Prometheus's layout: `groups:` with name,
 * interval, limit, rules). name labels the messages and is the group's
 * `file`. default_interval_ms is used by groups without `interval`. Checks
 * everything `promtool check rules` checks that sitrep can: YAML, known
 * keys, required keys, names, durations, every expr parses as PromQL and is
 * a vector or scalar, every label/annotation template parses, duplicate
 * group names. Appends the groups to *set (created when NULL). On error
 * returns -1 and appends one "name:line:col: message\n" per problem to
 * errors; *set is then to be freed, not used.
 */
int rules_parse(struct rules_set **set, const char *name, const char *text, size_t len,
                int64_t default_interval_ms, struct sbuf *errors);
/* The same from a file. */
int rules_load_file(struct rules_set **set, const char *path, int64_t default_interval_ms,
                    struct sbuf *errors);
/*
 * Expand each glob of patterns (relative ones against base_dir when it is
 * not NULL, as Prometheus resolves rule_files against its config's folder)
 * and load every file found, in sorted order, appending to *set (created
 * when NULL; never NULL after the call, possibly empty). A pattern that
 * matches nothing is not an error (as in Prometheus). Returns 0, or -1 with
 * errors filled; *set is then to be freed, not used.
 */
int rules_load_globs(struct rules_set **set, const char *const *patterns, size_t n,
                     const char *base_dir, int64_t default_interval_ms, struct sbuf *errors);
/* ---- the default rule pack (the files of rules/, compiled in: builtin.c) ---- */

#define RULES_BUILTIN_PREFIX "builtin:" /* the pack's file names: "builtin:host.yml" */

/* Files of the pack, in name order: i < rules_builtin_count(). */
size_t rules_builtin_count(void);
/* File i's name ("host.yml"), and its text (NUL-terminated, len bytes). */
const char *rules_builtin_name(size_t i);
const char *rules_builtin_text(size_t i, size_t *len);
/* The index of the file named name ("host.yml" or "builtin:host.yml"), or -1. */
int rules_builtin_find(const char *name);
/* 1 if the pack has an alerting or recording rule of that name, else 0. */
int rules_builtin_has_rule(const char *name);
/* Parse the whole pack, appending to *set as rules_parse does. 0, or -1 (errors filled). */
int rules_builtin_parse(struct rules_set **set, int64_t default_interval_ms, struct sbuf *errors);

/* What rules_load reads: the pack, then the user's rule files. */
struct rules_sources {
    int builtin;                /* load the pack */
    const char *const *disable; /* names of the pack's rules to leave out (unknown ones: none) */
    size_t ndisable;
    const char *const *patterns; /* rule_files globs, as rules_load_globs takes them */
    size_t npatterns;
    const char *base_dir;
    int64_t default_interval_ms;
};

/*
 * The daemon's rules: the pack (when src->builtin, less src->disable), then
 * the files of src->patterns, into a new *set. A user group with the name
 * of a built-in group replaces it (logged): a copy of a built-in file,
 * edited and listed in rule_files, takes over from the original while the
 * rest of the pack stays. Returns 0, or -1 with errors filled and *set NULL.
 */
int rules_load(struct rules_set **set, const struct rules_sources *src, struct sbuf *errors);

/* Groups and rules in a set (for messages). */
size_t rules_set_groups(const struct rules_set *set);
size_t rules_set_rules(const struct rules_set *set);
void rules_set_free(struct rules_set *set);

/* ---- templates (labels and annotations) ---- */

struct rules_tmpl_label {
    const char *name;
    const char *value;
};

/* Bounds of the template language (docs/RULES.md, "Templates"). */
#define RULES_TMPL_MAX_SAMPLES 100 /* samples of one `query` result kept (its first ones) */
#define RULES_TMPL_MAX_QUERIES 16  /* `query` calls in one expansion */
#define RULES_TMPL_MAX_DEPTH   8   /* if/range/with nested in each other, and parentheses */

/* One sample of a `query` result, as `.Labels.x` and `.Value` see it. */
struct rules_tmpl_sample {
    const struct rules_tmpl_label *labels; /* owned: one allocation with its strings */
    size_t nlabels;
    double value;
};

/* A `query` result: samples in the query's order. Zero-initialise; release when done. */
struct rules_tmpl_vec {
    struct rules_tmpl_sample *s;
    size_t n;
};

/*
 * Append a sample to v, copying the labels. Past RULES_TMPL_MAX_SAMPLES
 * samples nothing is appended and -1 is returned (the caller may stop).
 */
int rules_tmpl_vec_add(struct rules_tmpl_vec *v, double value, const struct rules_tmpl_label *ls,
                       size_t n);
/* Free what v holds and zero it. */
void rules_tmpl_vec_release(struct rules_tmpl_vec *v);

/*
 * What a template sees: $value, $labels, $externalLabels, $externalURL (and
 * the same as the top-level dot: .Value, .Labels.x, ...), and `query`.
 */
struct rules_tmpl_data {
    double value;
    const struct rules_tmpl_label *labels;
    size_t nlabels;
    const struct rules_tmpl_label *external;
    size_t nexternal;
    const char *external_url;
    /*
     * `query "EXPR"`: run EXPR as an instant query (at the alert's
     * evaluation time) and append its samples to out with
     * rules_tmpl_vec_add, a scalar as one sample without labels. Returns 0,
     * or -1 with err filled (what went wrong with the query). NULL: `query`
     * fails with "query is not available here".
     */
    int (*query)(void *ctx, const char *expr, struct rules_tmpl_vec *out, char *err, size_t errcap);
    void *query_ctx;
};

/*
 * Expand a Go-template-style text: `{{ $value }}`, `{{ $labels.x }}`,
 * `{{ $externalLabels.x }}`, `{{ .Value }}`, `{{ .Labels.x }}`, functions
 * humanize, humanize1024, humanizeDuration, humanizePercentage,
 * humanizeTimestamp, printf, toUpper, toLower, title, query, first, label,
 * value, sortByLabel, len, eq, ne, lt, le, gt, ge, and, or, not, pipes
 * (`{{ $value | humanize }}`), parenthesised pipelines as arguments,
 * `{{ if }}`, `{{ range }}`, `{{ with }}` with `{{ else }}` / `{{ else if }}`
 * and `{{ end }}`, `{{- -}}` trimming and comments.
 *
 * The whole template is parsed first (structure, every pipeline, function
 * names and their number of arguments, the alert's variables and fields):
 * a parse error is an error whatever branch would run. data NULL only
 * parses (nothing runs, no query; values are unknown: a label that is no
 * number, say, is not an error until expanded with data). Otherwise the
 * template runs against data. Appends the result to out. Returns 0, or -1
 * with err filled ("1:12: function "humanise" not defined", line:col in
 * src) and nothing appended. Never reads past src.
 */
int rules_template_expand(const char *src, const struct rules_tmpl_data *data, struct sbuf *out,
                          char *err, size_t errcap);

/* ---- the engine ---- */

struct rules_label {
    char *name, *value;
};

struct rules_opts {
    struct tsdb *db;                    /* queried and appended to; required */
    struct notify *notify;              /* alerts go here; NULL: nowhere */
    const char *data_dir;               /* state in data_dir/rules.state; NULL: none */
    const struct rules_label *external; /* external labels (templates only) */
    size_t nexternal;
    const char *external_url;      /* for generatorURL and $externalURL; NULL: "" */
    int64_t resend_delay_ms;       /* firing alerts re-sent this often; 0: 1m */
    int64_t resolved_retention_ms; /* resolved alerts re-sent this long; 0: 15m */
    int64_t outage_tolerance_ms;   /* state older than this is not restored; 0: 1h */
    unsigned flap_threshold;       /* fire/resolve cycles that make an alert flap; 0: 3 */
    int64_t flap_window_ms;        /* ... within this long; 0: 1h */
    int64_t flap_quiet_ms;         /* un-flaps after this long with no new cycle; 0: 30m */
    int64_t (*now_ms)(void *ctx);  /* the clock; NULL: wall clock */
    void *clock_ctx;
};

struct rules;

/*
 * Create the engine over set (taken over; NULL means no rules) and restore
 * alert state from data_dir (applied at each rule's first evaluation, as
 * Prometheus restores `for` state). Returns NULL on error (logged).
 */
struct rules *rules_new(const struct rules_opts *o, struct rules_set *set);
/* Start the evaluation thread. 0 or -1 (logged). */
int rules_start(struct rules *r);
/* Stop the thread (waits for an evaluation in flight) and save the state. */
void rules_stop(struct rules *r);
/* Stop and free everything. NULL is fine. */
void rules_free(struct rules *r);

/*
 * Replace the rules (a reload; set taken over). A rule whose group (file and
 * name), kind, name and expression are unchanged keeps its alerts.
 */
void rules_update(struct rules *r, struct rules_set *set);

/*
 * Evaluate now, on the calling thread, every group whose time has come
 * (by the clock in rules_opts). Returns ms until the next one is due.
 */
int64_t rules_tick(struct rules *r);

/* Write the alert state file now (also done after each evaluation that changed it). */
int rules_save(struct rules *r);

/* The engine's self-metrics (sitrep_rule_*) into b. */
void rules_expose(struct rules *r, struct metric_buf *b);

/* GET /api/v1/rules and GET /api/v1/alerts in Prometheus's JSON shape. r must outlive s. */
void rules_register_http(struct http_server *s, struct rules *r);

/* `sitrep check rules [--builtin] FILE...`: returns the exit code (0, 1 errors, 2 usage). */
int rules_cli_check(int argc, char **argv);
/*
 * `sitrep test rules [--builtin] TESTFILE...`: rule unit tests in promtool's
 * format (docs/RULES.md); returns the exit code (0 pass, 1 a test failed,
 * 2 usage or an invalid file).
 */
int rules_cli_test(int argc, char **argv);
/* `sitrep rules builtin [FILE...|--out DIR]` (argv[0] the subcommand): the exit code. */
int rules_cli(int argc, char **argv);

#endif
