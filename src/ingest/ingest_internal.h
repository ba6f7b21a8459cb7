/*
 * ingest_internal.h: the pieces of access-log ingestion, shared between its
 * files and their tests: line parsers (logparse.c), route normalisation
 * (route.c), client sketches and hashing (sketch.c), per-service aggregates
 * and their series (agg.c), and file following with saved offsets (tail.c).
 * Not for use outside src/ingest/ (and fuzz/, bench/).
 */
#ifndef SITREP_INGEST_INTERNAL_H
#define SITREP_INGEST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ingest/ingest.h"
#include "metric/metric.h"

/* ---- parsing (logparse.c) ---- */

/* A slice of the line (or of the parser's scratch buffer). */
struct ingest__str {
    const char *p;
    size_t n;
};

/* One request as a line describes it. Slices live until the next parse. */
struct ingest__rec {
    struct ingest__str client, method, target, time;
    int status;        /* 100..599 */
    uint64_t bytes;    /* 0 when "-" or absent */
    double duration_s; /* < 0 when absent */
};

struct ingest__parser {
    enum ingest_format format;
    enum ingest_unit unit;
    int forwarded; /* combined: client from the quoted field after the user agent */
    /* json: wanted field names (dotted paths), defaults applied; owned */
    char *field[INGEST_NFIELDS];
    size_t field_len[INGEST_NFIELDS];
    char *scratch; /* decoded JSON strings; max_line bytes; owned */
    size_t scratch_cap;
    /* pattern */
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    int group[INGEST_NFIELDS]; /* capture group number, 0 if the pattern has none */
};

/*
 * Backtracking steps one regex may take on one line: a pathological pattern
 * on a hostile line fails that line (counted as not matching) instead of
 * stalling ingestion.
 */
#define INGEST__MATCH_LIMIT 200000

/* Compile a regex (byte mode, JIT when available). NULL with err and *offset filled. */
pcre2_code *ingest__compile(const char *re, char *err, size_t errlen, size_t *offset);
/* A match context with the limits above, or NULL (out of memory). The caller frees it. */
pcre2_match_context *ingest__match_context(void);

/*
 * Set up a parser for log l (compiles its pattern). Returns 0, or -1 with
 * err filled (and the parser released).
 */
int ingest__parser_init(struct ingest__parser *p, const struct ingest_log *l, char *err,
                        size_t errlen);
void ingest__parser_release(struct ingest__parser *p);
/*
 * Parse one line (no newline; any bytes, NULs included). Returns 0 with r
 * filled, or -1 if the line does not have the format's shape.
 */
int ingest__parse(struct ingest__parser *p, const char *line, size_t n, struct ingest__rec *r);
/*
 * A time field as milliseconds since the epoch: CLF "10/Oct/2000:13:55:36
 * -0700", RFC 3339 "2000-10-10T13:55:36.123Z" or "+02:00", or Unix seconds
 * with decimals. Returns 0, or -1 if it is none of those.
 */
int ingest__parse_time(const char *s, size_t n, int64_t *ms);
/*
 * A non-negative decimal number ("12", "0.004", "1.5e-3") of at most n
 * bytes, all of which must belong to it. Returns 0, or -1 (also above 1e15).
 */
int ingest__parse_number(const char *s, size_t n, double *out);

/* ---- routes (route.c) ---- */

#define INGEST__OTHER "other"

/*
 * Normalise a request target into a route: the query string and fragment
 * go, a scheme and host before the path go, and path segments that are
 * numbers, UUIDs or hex ids become ":num", ":uuid", ":hex". Bytes outside
 * printable ASCII become '_'; the result is cut to INGEST_MAX_ROUTE_LEN. A
 * target that is not a path ("*", "-", garbage) gives "other". out holds
 * INGEST_MAX_ROUTE_LEN + 1 bytes; returns the length (NUL-terminated).
 * Normalising a route again gives the same route.
 */
size_t ingest__route_normalise(const char *target, size_t n, char *out);
/*
 * 1 if target's path (query string ignored) matches route pattern pat:
 * segments equal, ":name" and "*" match any one non-empty segment, a final
 * "**" matches whatever remains (also nothing).
 */
int ingest__route_match(const char *pat, const char *target, size_t n);
/* Label-safe copy of a client address: the first of a comma list, trimmed, printable ASCII. */
size_t ingest__client_clean(const char *s, size_t n, char *out, size_t cap);

/* ---- sketches and hashing (sketch.c) ---- */

uint64_t ingest__hash(const void *p, size_t n);
/* A second independent mix of a hash (for keys built from several hashes). */
uint64_t ingest__mix(uint64_t x);

#define INGEST__CLIENT_MAX 64 /* bytes of a client label */

struct ingest__topk_entry {
    double count;  /* decayed requests (overestimate by at most over) */
    double errors; /* decayed 5xx responses counted since it entered */
    double over;   /* space-saving's overestimate: the count it inherited */
    uint64_t hash;
    uint32_t heap_pos;
    uint8_t len;
    char client[INGEST__CLIENT_MAX];
};

/*
 * Space-saving heavy hitters over client addresses with exponential decay:
 * k monitored clients, a min-heap by count and a hash index, so an update
 * is O(log k) whatever the number of distinct clients.
 */
struct ingest__topk {
    size_t k, n;
    struct ingest__topk_entry *e; /* k entries; owned */
    uint32_t *heap;               /* entry indices, min count first; owned */
    uint32_t *index;              /* hash table: entry index + 1, 0 empty; owned */
    size_t mask;
};

void ingest__topk_init(struct ingest__topk *t, size_t k);
void ingest__topk_release(struct ingest__topk *t);
/* Count one request of client s (n <= INGEST__CLIENT_MAX) with hash h. */
void ingest__topk_add(struct ingest__topk *t, const char *s, size_t n, uint64_t h, int error);
/* Multiply every count by factor (0 < factor <= 1): keeps the heap order. */
void ingest__topk_decay(struct ingest__topk *t, double factor);
/* Up to max entries with the largest counts, largest first, into out. Returns how many. */
size_t ingest__topk_top(const struct ingest__topk *t, const struct ingest__topk_entry **out,
                        size_t max);

#define INGEST__HLL_BITS 12
/* HyperLogLog distinct counter: 4 KiB, about 1.6% standard error. */
struct ingest__hll {
    uint8_t reg[1 << INGEST__HLL_BITS];
};
void ingest__hll_add(struct ingest__hll *h, uint64_t hash);
double ingest__hll_estimate(const struct ingest__hll *h);

/* ---- per-service aggregates (agg.c) ---- */

enum {
    INGEST__NMETHODS = 10, /* GET HEAD POST PUT DELETE PATCH OPTIONS CONNECT TRACE other */
    INGEST__NCLASSES = 5,  /* 1xx .. 5xx */
    INGEST__NBUCKETS = 14, /* latency bucket edges incl. +Inf */
};

/* Latency bucket upper edges in seconds; 5 s ("slow") is one. */
extern const double ingest__bucket_le[INGEST__NBUCKETS];

struct ingest__route {
    uint64_t req[INGEST__NMETHODS][INGEST__NCLASSES];
    uint64_t bytes;
    uint64_t bucket[INGEST__NBUCKETS]; /* per bucket, not cumulative */
    uint64_t dur_count;
    double dur_sum;
    uint64_t retries;
    uint64_t hash;
    char name[INGEST_MAX_ROUTE_LEN + 1];
};

struct ingest__retry_slot {
    uint64_t key;
    int64_t at_ms; /* last 429/503 to this client and route */
};

struct ingest__service {
    const char *name; /* the log's service (not owned) */
    /* Routes: [0] is "other", then the configured patterns, then learned ones. */
    struct ingest__route *routes; /* max_routes + 1; owned */
    size_t nroutes, max_routes, npatterns;
    char **patterns;       /* configured route patterns (not owned) */
    uint32_t *route_index; /* hash table: route + 1, 0 empty; owned */
    size_t route_mask;
    uint64_t routes_overflow; /* requests put in "other" because the table was full */
    /* Clients */
    struct ingest__topk top;
    struct ingest__hll hll;
    double distinct;         /* highest estimate so far (a counter never decreases) */
    double decayed_requests; /* all requests, decayed like the sketch (for shares) */
    /* Retries */
    struct ingest__retry_slot *retry; /* owned */
    size_t retry_mask;
    int64_t retry_window_ms;
    /* Named line counters */
    size_t ncounters;
    const struct ingest_counter *counter_cfg; /* names (not owned) */
    pcre2_code **counter_re;                  /* owned */
    uint64_t *counter_hits;                   /* owned */
    pcre2_match_data *md;                     /* owned */
    pcre2_match_context *mctx;                /* owned */
    uint64_t requests;                        /* all requests counted */
};

/* Set up s for log l (compiles its counters). 0, or -1 with err filled (s released). */
int ingest__service_init(struct ingest__service *s, const struct ingest_log *l, char *err,
                         size_t errlen);
void ingest__service_release(struct ingest__service *s);
/* Count one parsed request; now_ms is the ingestion time (used when the line has none). */
void ingest__service_observe(struct ingest__service *s, const struct ingest__rec *r,
                             int64_t now_ms);
/* Run the named counters over a raw line. */
void ingest__service_match_line(struct ingest__service *s, const char *line, size_t n);
/*
 * Emit the series of services[0..n) into b (one run per family). interval_s
 * is the tick length, for the decayed client rates. Then decay the sketches
 * by one tick.
 */
void ingest__services_emit(struct ingest__service *const *svcs, size_t n, struct metric_buf *b,
                           int interval_s);

/* ---- file following (tail.c) ---- */

#define INGEST__BAD_KEEP 5   /* malformed lines kept per file */
#define INGEST__BAD_LEN  256 /* bytes kept of each */
#define INGEST__MAX_OLD  4   /* rotated files still drained per path */

struct ingest__file {
    int fd;
    dev_t dev;
    ino_t ino;
    int64_t pos;        /* consumed bytes: a line end, or inside an overlong line */
    int skipping;       /* discarding an overlong line up to its newline */
    int64_t idle_ms;    /* when it last grew, or was moved aside */
    uint32_t head_len;  /* fingerprint of the file's first bytes (up to 256), to see */
    uint64_t head_hash; /* a file cut and rewritten past pos between two looks */
    int64_t line;       /* lines before line_pos; -1: unknown (resumed from a saved offset) */
    int64_t line_pos;   /* where line was counted to; pos moved elsewhere: recount */
};

struct ingest__bad {
    int64_t offset;
    int64_t lineno;     /* 1-based; -1: unknown (the file was not read from its start) */
    const char *reason; /* static text */
    size_t len;
    char line[INGEST__BAD_LEN];
};

/* A path a configured file or glob names: the unit of per-file counters. */
struct ingest__slot {
    char *path;               /* owned */
    int literal;              /* named without glob characters: kept even while missing */
    size_t glob;              /* which of the log's paths found it */
    struct ingest__file *cur; /* the file at path now; owned; NULL if missing */
    struct ingest__file *old[INGEST__MAX_OLD]; /* moved aside, still read; owned */
    size_t nold;
    int64_t missing_ms; /* path missing since (0: present) */
    uint64_t lines, malformed, overlong, bytes, renames, truncations, read_errors;
    int read_failing; /* a read error was logged and has not cleared */
    struct ingest__bad bad[INGEST__BAD_KEEP];
    size_t nbad;
};

/* A file closed after rotation: where it ended, so a glob that finds it again resumes there. */
struct ingest__retired {
    dev_t dev;
    ino_t ino;
    int64_t pos;
    uint32_t head_len;
    uint64_t head_hash;
};

/* One `logs:` entry at run time. */
struct ingest__source {
    struct ingest_log cfg; /* owned copy */
    struct ingest__parser parser;
    struct ingest__service svc;
    struct ingest__slot **slots; /* owned */
    size_t nslots;
    size_t *refused; /* per glob: matches over max_files in the last scan; owned */
    int scanned;     /* the first scan happened (later files are read from 0) */
    struct ingest__retired retired[32];
    size_t nretired, retired_next;
};

struct ingest__saved; /* offsets loaded at startup */

/* Shared state of the reader. */
struct ingest__tail {
    char *buf; /* read buffer; owned */
    size_t cap;
    int64_t now_ms;
    uint64_t budget;             /* bytes left in this poll */
    int dirty;                   /* a position changed since the offsets were saved */
    struct ingest__saved *saved; /* from the offsets file, used up by the first scan; owned */
};

void ingest__tail_init(struct ingest__tail *t, size_t cap);
void ingest__tail_release(struct ingest__tail *t);
/* Release a source's files and slots (its parser and service are released elsewhere). */
void ingest__source_close(struct ingest__source *src);
/*
 * One poll of a source: find files (glob), notice rotation, truncation and
 * disappearance, and read what is new, up to t->budget bytes. Returns the
 * bytes consumed.
 */
uint64_t ingest__source_poll(struct ingest__tail *t, struct ingest__source *src, int rescan);
/*
 * Process bytes read at offset `at` of file f: every complete line (and,
 * when final, a last unterminated one) goes to the parser and aggregates.
 * Returns the bytes consumed (the rest is an incomplete line).
 */
size_t ingest__consume(struct ingest__tail *t, struct ingest__source *src, struct ingest__slot *s,
                       struct ingest__file *f, const char *buf, size_t n, int final);
/*
 * Offsets: load path (missing is fine; a bad file is logged and ignored)
 * into t->saved; save writes every open file's position atomically
 * (temporary file and rename; fsync when sync). Save returns 0 or -1 (logged).
 */
void ingest__offsets_load(struct ingest__tail *t, const char *path);
/* After loading: the source's files retired before the restart, into src->retired. */
void ingest__offsets_apply_retired(struct ingest__tail *t, struct ingest__source *src);
int ingest__offsets_save(struct ingest__tail *t, struct ingest__source *const *srcs, size_t n,
                         const char *path, int sync);

#endif
