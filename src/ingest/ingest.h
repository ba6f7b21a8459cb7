/*
 * ingest.h: access-log ingestion. One thread follows the log files named in
 * the config's `logs:` section (globs allowed; through rotation by rename
 * and by copytruncate, and through a file that disappears and comes back),
 * parses each new line (Common/Combined Log Format with an optional trailing
 * request time, JSON lines, or a PCRE2 pattern with named groups) and folds
 * it into per-service RED aggregates: requests and errors by method, status
 * class and normalised route, a latency histogram, bytes sent, the top
 * clients, distinct clients, retries after 429/503 and named line counters.
 * Once per tick the aggregates go out as one metric_buf batch (cumulative
 * counters) to the sink and become the snapshot /metrics serves; then the
 * read position of every file is saved, so a restart neither loses nor
 * re-counts a line. Series names and semantics: docs/INGEST.md.
 *
 * Memory and cardinality are bounded whatever the logs contain: at most
 * max_routes routes per service (the rest in "other"), a fixed-size sketch
 * for clients, a fixed table for retries, capped line length and files per
 * glob.
 *
 * Threads: ingest_start() creates the one ingestion thread; ingest_expose()
 * and ingest_diagnose() may be called from any thread. Without the thread
 * (tests, benchmarks) the caller drives it with ingest_poll()/ingest_tick().
 */
#ifndef SITREP_INGEST_H
#define SITREP_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

enum ingest_format {
    INGEST_FMT_COMMON,   /* host ident user [time] "request" status bytes */
    INGEST_FMT_COMBINED, /* common + "referer" "user-agent" */
    INGEST_FMT_JSON,     /* one JSON object per line */
    INGEST_FMT_PATTERN,  /* a PCRE2 regex with named groups */
};

/* Unit of a request time: the trailing field of common/combined, or the duration field. */
enum ingest_unit {
    INGEST_UNIT_NONE, /* common/combined: no trailing request time; json/pattern: seconds */
    INGEST_UNIT_S,    /* nginx $request_time */
    INGEST_UNIT_MS,
    INGEST_UNIT_US, /* Apache %D */
};

/* Fields a JSON line or a pattern's named groups can give. */
enum ingest_field {
    INGEST_FIELD_CLIENT,   /* client address; for "a, b, c" (X-Forwarded-For) the first */
    INGEST_FIELD_METHOD,   /* request method */
    INGEST_FIELD_PATH,     /* request target (query string allowed) */
    INGEST_FIELD_REQUEST,  /* "METHOD TARGET PROTO", used where method/path are absent */
    INGEST_FIELD_STATUS,   /* response status, required */
    INGEST_FIELD_BYTES,    /* body bytes sent */
    INGEST_FIELD_DURATION, /* request time, in the log's request_time unit */
    INGEST_FIELD_TIME,     /* when (CLF, RFC 3339 or Unix seconds): used for retry windows */
    INGEST_NFIELDS
};

#define INGEST_DEFAULT_MAX_ROUTES      200
#define INGEST_DEFAULT_MAX_FILES       64
#define INGEST_DEFAULT_MAX_LINE        16384
#define INGEST_DEFAULT_RETRY_WINDOW_MS 10000
#define INGEST_MAX_ROUTE_LEN           128 /* bytes of a route label; longer ones are cut */
#define INGEST_TOP_CLIENTS             10  /* clients exposed per service */

/* A named regex counted per line (config `counters:`). */
struct ingest_counter {
    char *name;
    char *regex;
};

/*
 * One `logs:` entry: a service and the files its access log is in. The
 * config owns one (config_release frees it); ingest_new() takes copies.
 */
struct ingest_log {
    char *service;                 /* label value; unique among logs */
    char **paths;                  /* files or globs */
    size_t npaths;                 /* >= 1 */
    enum ingest_format format;     /* combined */
    enum ingest_unit request_time; /* INGEST_UNIT_NONE */
    char *fields[INGEST_NFIELDS];  /* json: field names (dotted for nested); NULL: default */
    char *pattern;                 /* pattern format: the regex */
    char **routes;                 /* route patterns, e.g. "/users/:id" (see docs/INGEST.md) */
    size_t nroutes;
    struct ingest_counter *counters;
    size_t ncounters;
    unsigned max_routes;       /* 200; 1..100000 */
    unsigned max_files;        /* 64; files followed per glob */
    unsigned max_line;         /* 16384; longer lines are counted and skipped */
    long long retry_window_ms; /* 10000 */
    int from_beginning;        /* read files found at startup with no saved offset from 0 */
    int client_forwarded;      /* combined: the client is the quoted field after the user
                                  agent (nginx's "$http_x_forwarded_for") unless it is "-" */
};

void ingest_log_defaults(struct ingest_log *l);
void ingest_log_release(struct ingest_log *l);
/* Deep copy of src into dst (which holds nothing). */
void ingest_log_copy(struct ingest_log *dst, const struct ingest_log *src);
/* 1 if the two lists describe the same logs (so a reload can keep the thread). */
int ingest_logs_equal(const struct ingest_log *a, size_t na, const struct ingest_log *b, size_t nb);

/* Names for config parsing: each returns 0, or -1 if s is no known name. */
int ingest_format_parse(const char *s, enum ingest_format *out);
int ingest_unit_parse(const char *s, enum ingest_unit *out);
int ingest_field_parse(const char *s, enum ingest_field *out);
const char *ingest_field_name(enum ingest_field f);
/* The JSON field name used when fields[f] is NULL. */
const char *ingest_field_default(enum ingest_field f);

/*
 * Config-time checks; each returns 0, or -1 with a message in err and, for
 * regexes, the byte offset of the problem in *offset (0 if none applies).
 */
int ingest_check_service(const char *name, char *err, size_t errlen);
int ingest_check_regex(const char *re, char *err, size_t errlen, size_t *offset);
/* A pattern format regex: compiles and has a `status` group and a `path` or `request` group. */
int ingest_check_pattern(const char *re, char *err, size_t errlen, size_t *offset);
int ingest_check_route(const char *route, char *err, size_t errlen);

struct ingest_opts {
    const struct ingest_log *logs; /* copied */
    size_t nlogs;
    const char *state_dir; /* offsets live in state_dir/offsets (created); NULL: not kept */
    int interval_s;        /* seconds between ticks (emitted batches); default 1 */
    /* Called on the ingestion thread with each batch (it stays the ingester's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct ingest;

/*
 * Create an ingester: compiles the patterns, loads saved offsets. Returns
 * NULL if a regex does not compile (config_load has already checked them,
 * so only on a JIT or memory problem; logged). No thread yet.
 */
struct ingest *ingest_new(const struct ingest_opts *opts);
/* Stop the thread if running (with a final flush) and free everything. NULL is fine. */
void ingest_free(struct ingest *ing);

/* Start the thread (a no-op when no logs are configured). Returns 0 or -1 (logged). */
int ingest_start(struct ingest *ing);
/*
 * Stop the thread: it reads nothing more, emits a last batch of what it
 * counted since the last tick (timestamped now) and saves the offsets.
 */
void ingest_stop(struct ingest *ing);

/*
 * Without the thread: find files and read the complete lines available
 * now, up to 16 MiB, as one poll of the thread does (now_ms is the wall
 * clock to use). Returns the bytes consumed: call again while it is not 0
 * to read a backlog.
 */
uint64_t ingest_poll(struct ingest *ing, int64_t now_ms);
/* Without the thread: emit a batch stamped ts_ms to the sink and snapshot, save offsets. */
void ingest_tick(struct ingest *ing, int64_t ts_ms);
/* The latest emitted batch (only while the thread is not running). */
const struct metric_buf *ingest_last(struct ingest *ing);

/* Append the latest emitted batch in text exposition format. 0, or -1 at out's cap. */
int ingest_expose(struct ingest *ing, struct sbuf *out);
/*
 * The first malformed or overlong lines of each file (at most a few per
 * file, each cut to 256 bytes) with their byte offsets, line numbers (null
 * when the file was not read from its start: resumed from a saved offset,
 * or first seen with content) and why, and the counters, as JSON:
 * {"files":[{"service":..,"path":..,"lines":N,"malformed":N,"overlong":N,
 * "samples":[{"offset":N,"line_number":N,"reason":"..","line":".."}]}]}.
 */
void ingest_diagnose(struct ingest *ing, struct sbuf *out);

#endif
