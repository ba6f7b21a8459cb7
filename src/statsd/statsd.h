/*
 * statsd.h: a StatsD (and DogStatsD) listener. One thread reads UDP
 * datagrams on a local address (127.0.0.1:8125 by default), parses each
 * line (`name:value|type[|@rate][|#tag:value,...]`), and folds it into
 * per-series aggregates: counters (cumulative, divided by the sample rate),
 * gauges (set, or moved by a signed +N/-N), timers and histograms (into
 * classic histograms with fixed buckets), and sets (distinct members per
 * window). Every tick the aggregates go out as one metric_buf batch to the
 * sink (the store) and become the snapshot statsd_expose() serves.
 * Series names and semantics: docs/SIGNALS.md.
 *
 * Bounded whatever the network sends: datagrams are read into a fixed
 * 64 KiB buffer (a longer one is dropped whole), names and tags have caps,
 * at most max_series series exist (lines for new series past it are
 * dropped and counted), a set keeps at most max_set_members members.
 *
 * Threads: statsd_start() creates the thread; statsd_expose() and
 * statsd_emit_self() may be called from any thread. Without the thread
 * (tests, fuzzing) the caller drives it with statsd_feed()/statsd_tick().
 */
#ifndef SITREP_STATSD_H
#define SITREP_STATSD_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct yaml_document_s;
struct yaml_node_s;

#define STATSD_MAX_NAME        200 /* bytes of a metric name after sanitising */
#define STATSD_MAX_TAGS        8   /* labels from tags per line */
#define STATSD_MAX_TAG_KEY     64
#define STATSD_MAX_TAG_VALUE   255
#define STATSD_MAX_VALUES      32    /* values in one multi-value line (a:1:2:3|ms) */
#define STATSD_MAX_SET_MEMBER  256   /* bytes of a set member */
#define STATSD_MAX_BUCKETS     32    /* histogram buckets (+Inf not counted) */
#define STATSD_MAX_DATAGRAM    65536 /* bytes; a longer datagram is dropped */
#define STATSD_DEFAULT_PORT    8125
#define STATSD_DEFAULT_SERIES  10000
#define STATSD_DEFAULT_MEMBERS 10000
#define STATSD_DEFAULT_WINDOW  60000 /* ms: the set window */

/* ---- config (the `statsd:` section) ---- */

struct statsd_config {
    int enabled;              /* 0 unless the section says `enabled: true` (or exists) */
    char *listen;             /* "127.0.0.1:8125"; "[::1]:8125" for IPv6; owned */
    unsigned max_series;      /* 10000; 1..1000000 */
    unsigned max_set_members; /* 10000 per set; 1..1000000 */
    long long set_window_ms;  /* 60 s: a set reports the distinct members of its last window */
    double timer_buckets[STATSD_MAX_BUCKETS]; /* upper bounds in seconds, increasing */
    size_t ntimer_buckets;
    double histogram_buckets[STATSD_MAX_BUCKETS]; /* for |h and |d, in the values' own unit */
    size_t nhistogram_buckets;
};

/* Defaults (disabled, 127.0.0.1:8125, buckets from 5 ms to 10 s). */
void statsd_config_defaults(struct statsd_config *c);
void statsd_config_release(struct statsd_config *c);
/* 1 if equal (a reload then keeps the listener and its aggregates). */
int statsd_config_equal(const struct statsd_config *a, const struct statsd_config *b);
/*
 * Read the `statsd:` mapping `node` of a YAML document over the defaults
 * in c. Keys: enabled, listen, max_series, max_set_members, set_window,
 * timer_buckets, histogram_buckets. On error returns -1 and appends one
 * "file:line:col: message\n" per problem to errors.
 */
int statsd_config_parse_node(struct statsd_config *c, const char *file, struct yaml_document_s *doc,
                             struct yaml_node_s *node, struct sbuf *errors);

/* ---- one line of the protocol (pure; exposed for tests and fuzzing) ---- */

enum statsd_type {
    STATSD_COUNTER,   /* c */
    STATSD_GAUGE,     /* g */
    STATSD_TIMER,     /* ms: milliseconds in the line, seconds in statsd_line.values */
    STATSD_HISTOGRAM, /* h, and d (DogStatsD distribution) */
    STATSD_SET,       /* s */
};

/* Why a line was dropped; the `reason` label of sitrep_statsd_bad_lines_total. */
enum statsd_bad {
    STATSD_BAD_FORMAT,        /* no ':' or '|', empty parts, NUL byte */
    STATSD_BAD_NAME,          /* empty or too long after sanitising */
    STATSD_BAD_VALUE,         /* not a finite number, negative counter or timer, too many */
    STATSD_BAD_TYPE,          /* unknown type */
    STATSD_BAD_RATE,          /* @rate not in (0, 1] */
    STATSD_BAD_TAG,           /* bad or duplicate key, value too long or not UTF-8, too many */
    STATSD_BAD_TYPE_CONFLICT, /* the series exists with another type */
    STATSD_BAD_NREASONS
};
const char *statsd_bad_name(enum statsd_bad r);

struct statsd_tag {
    char key[STATSD_MAX_TAG_KEY + 1];
    char value[STATSD_MAX_TAG_VALUE + 1];
};

struct statsd_line {
    char name[STATSD_MAX_NAME + 1]; /* sanitised: [a-zA-Z_][a-zA-Z0-9_]* */
    enum statsd_type type;
    double values[STATSD_MAX_VALUES];       /* timers: in seconds, rounded once from the text */
    unsigned char delta[STATSD_MAX_VALUES]; /* gauges: the value had a sign (+/-) */
    size_t nvalues;
    const char *member; /* sets: the member bytes, inside the parsed line */
    size_t member_len;
    double rate;                             /* 1 unless @rate was given */
    struct statsd_tag tags[STATSD_MAX_TAGS]; /* sorted by key */
    size_t ntags;
};

/*
 * Parse one line (no newline; len bytes, need not be NUL-terminated).
 * Returns 0 with *out filled, or -1 with *why set.
 */
int statsd_parse_line(const char *line, size_t len, struct statsd_line *out, enum statsd_bad *why);

/* ---- the listener ---- */

struct statsd_opts {
    const struct statsd_config *config; /* copied */
    int interval_s;                     /* seconds between ticks; default 1 */
    /* Called on the listener thread with each batch (it stays the listener's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct statsd;

/* Create a listener: no socket, no thread yet. Never NULL. */
struct statsd *statsd_new(const struct statsd_opts *opts);
/* Stop the thread if running (with a last batch) and free everything. NULL is fine. */
void statsd_free(struct statsd *s);

/*
 * Bind the socket and start the thread (a no-op unless enabled). Returns
 * 0, or -1 if the address is malformed or cannot be bound (logged).
 */
int statsd_start(struct statsd *s);
/* Stop the thread; it emits a last batch of what it counted. */
void statsd_stop(struct statsd *s);
/* The port actually bound (for listen "...:0" in tests), or 0. */
int statsd_port(const struct statsd *s);

/* Without the thread: take one datagram as if it had been received at now_ms. */
void statsd_feed(struct statsd *s, const char *data, size_t len, int64_t now_ms);
/* Without the thread: emit a batch stamped ts_ms to the sink and the snapshot. */
void statsd_tick(struct statsd *s, int64_t ts_ms);
/* The latest emitted batch (only while the thread is not running). */
const struct metric_buf *statsd_last(struct statsd *s);

/* Append the latest emitted batch in text exposition format. 0, or -1 at out's cap. */
int statsd_expose(struct statsd *s, struct sbuf *out);
/*
 * Append the listener's own counters (sitrep_statsd_*: packets, lines, bad
 * lines by reason, series, dropped series, receive errors) to b, in its
 * current family. Any thread. NULL s appends nothing.
 */
void statsd_emit_self(struct statsd *s, struct metric_buf *b);

#endif
