/*
 * index.h: the series index of the store (private to src/tsdb/). It maps a
 * label set to a dense series id and answers label matchers from an
 * inverted index, without scanning every series when a matcher names a
 * value.
 *
 * Pieces:
 *   - strtab.c: string interning. Every label name and value is stored once,
 *     in arena blocks that never move, and named by a uint32 id.
 *   - index.c: the series table (a series is the sorted sequence of its
 *     (name, value) pair ids; an open-addressing table of series ids hashes
 *     that sequence), the postings (pair -> sorted series ids), the distinct
 *     values of each label name, and selection by matchers.
 *   - matcher.c: the four PromQL matchers; regexes through PCRE2.
 *
 * Label sets. A label set is an array of (name, value) C strings in any
 * order. Names match [a-zA-Z_][a-zA-Z0-9_]* (at most TSDB_MAX_NAME_LEN
 * bytes; "__name__" is an ordinary label here); values are valid UTF-8 of at
 * most TSDB_MAX_VALUE_LEN bytes. A label whose value is "" is dropped, as in
 * Prometheus: an empty value means the label is absent, so {a="x",b=""} is
 * the series {a="x"}. The index sorts the labels by name (bytewise); the
 * same name twice is an error. The metric name value is not checked against
 * the metric-name syntax (the producer does that).
 *
 * Series ids are dense and increase from 0 in creation order; the store
 * forgets series it holds no samples of with tsdb__index_compact(), which
 * renumbers the rest.
 *
 * Errors: functions return 0 (or a documented non-negative value) or a
 * negative TSDB__E* code below; tsdb__index_strerror() names it. The codes
 * are distinct from chunk.h's (-1..-6) so one int can carry either. Invalid
 * input never crashes and never changes the index.
 *
 * Locking. Each index has one pthread rwlock (writer-preferring, so a steady
 * stream of queries cannot starve the collector):
 *   - tsdb__index_get(), tsdb__index_labels(), tsdb__index_select(), the
 *     listings and tsdb__index_stats() take the read lock;
 *   - tsdb__index_get_or_create() first looks the series up under the read
 *     lock, and only on a miss takes the write lock, looks again (another
 *     writer may have created it meanwhile) and creates it. So the steady
 *     state of an appender, which sees the same series every tick, takes
 *     read locks only.
 * The lock is not recursive and no callback runs under it. Strings handed
 * out (label names and values) point into the string arena, which never
 * moves or shrinks: they stay valid until tsdb__index_free(), with no lock
 * held. Matchers and selection buffers are not locked: each belongs to one
 * thread at a time.
 */
#ifndef SITREP_TSDB_INDEX_H
#define SITREP_TSDB_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Defaults and hard bounds of the configurable limits (struct tsdb__index_opts). */
#define TSDB_MAX_SERIES_DEFAULT 200000
#define TSDB_MAX_SERIES_LIMIT   ((1u << 24) - 2) /* series ids must fit 24 bits */
#define TSDB_MAX_LABELS_DEFAULT 32
#define TSDB_MAX_LABELS_LIMIT   128
/* Fixed caps on one label's name and value, in bytes. */
#define TSDB_MAX_NAME_LEN  256
#define TSDB_MAX_VALUE_LEN 4096
/* Cap on a regex matcher's pattern, in bytes. */
#define TSDB_MAX_REGEX_LEN 16384

enum {
    TSDB__ESERIES_LIMIT = -32, /* the index holds max_series series already */
    TSDB__ELABEL_LIMIT = -33,  /* more than max_labels labels (after dropping empty ones) */
    TSDB__EBADNAME = -34,      /* label name NULL, empty, too long or not [a-zA-Z_][a-zA-Z0-9_]* */
    TSDB__EBADVALUE = -35,     /* label value NULL, too long or not valid UTF-8 */
    TSDB__EDUPNAME = -36,      /* the same label name twice in one label set */
    TSDB__ENOLABELS = -37,     /* no label left (none given, or every value empty) */
    TSDB__ENOTFOUND = -38,     /* no such series (lookups only) */
    TSDB__EREGEX = -39,        /* a regex does not compile or is too long */
    TSDB__EMATCH = -40,        /* a regex hit PCRE2's match limit while selecting */
    TSDB__EEMPTYSEL = -41,     /* every matcher of a selector matches the empty string */
    TSDB__EBADARG = -42,       /* anything else (unknown matcher type, series id out of range) */
};

/* A static string naming err (one of the TSDB__E* above). */
const char *tsdb__index_strerror(int err);

/* One label. Strings returned by the index are owned by it (see top). */
struct tsdb__label {
    const char *name;
    const char *value;
};

/* ---------------------------------------------------------------- strtab */

#define TSDB__NOSTR UINT32_MAX

/*
 * Interned strings: id -> (bytes, length) and (bytes, length) -> id. Bytes
 * live in blocks that never move, each NUL-terminated; ids are dense from 0.
 * Not locked: the index serialises access.
 */
struct tsdb__strent {
    const char *s;
    uint32_t len;
};

struct tsdb__strtab {
    struct tsdb__strent *ents;
    size_t n, cap;
    uint64_t *slots; /* open addressing: hash tag << 32 | (id + 1), 0 empty; mask + 1 slots */
    uint32_t mask;
    char **blocks;
    size_t nblocks, blocks_cap;
    char *cur; /* free space of the last block */
    size_t left;
    size_t bytes; /* bytes allocated for everything above */
};

/* An empty table; allocates nothing. */
void tsdb__strtab_init(struct tsdb__strtab *st);
void tsdb__strtab_release(struct tsdb__strtab *st);
/* Id of s[0..len), or TSDB__NOSTR. */
uint32_t tsdb__strtab_find(const struct tsdb__strtab *st, const char *s, size_t len);
/* Id of s[0..len), adding a copy if it is new. len <= UINT32_MAX - 1. */
uint32_t tsdb__strtab_intern(struct tsdb__strtab *st, const char *s, size_t len);

/* The NUL-terminated string with id (id < st->n). */
static inline const char *tsdb__strtab_str(const struct tsdb__strtab *st, uint32_t id)
{
    return st->ents[id].s;
}

static inline uint32_t tsdb__strtab_len(const struct tsdb__strtab *st, uint32_t id)
{
    return st->ents[id].len;
}

/*
 * 64-bit hash of s[0..len), well mixed in every bit (tables use the low bits,
 * tags the high ones). Not keyed: only for in-memory tables whose size is
 * capped by the series limit.
 */
uint64_t tsdb__hash_bytes(const char *s, size_t len);

/* 1 if s is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, 1..TSDB_MAX_NAME_LEN bytes). */
int tsdb__label_name_valid(const char *s);
/* 1 if s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF). */
int tsdb__utf8_valid(const char *s, size_t len);

/* -------------------------------------------------------------- matchers */

enum tsdb__match_type {
    TSDB__MATCH_EQ,  /* =  */
    TSDB__MATCH_NE,  /* != */
    TSDB__MATCH_RE,  /* =~ */
    TSDB__MATCH_NRE, /* !~ */
};

/* How a regex is evaluated (set by tsdb__matcher_compile). */
enum tsdb__re_kind {
    TSDB__RE_GENERIC,  /* run PCRE2 */
    TSDB__RE_SET,      /* literal alternation "a|b|c": exact compares (and direct lookups) */
    TSDB__RE_ANY,      /* ".*": every string */
    TSDB__RE_NONEMPTY, /* ".+": every non-empty string */
    TSDB__RE_PREFIX,   /* "lit.*" */
    TSDB__RE_SUFFIX,   /* ".*lit" */
    TSDB__RE_CONTAINS, /* ".*lit.*" */
};

struct tsdb__strref {
    const char *s;
    size_t len;
};

/*
 * One matcher `name op value`. Prometheus semantics: a series without the
 * label is matched as if its value were "", so name="" selects the series
 * without the label, name!="" those with it, name=~".*" all of them and
 * name=~".+" those with it. Regexes are fully anchored (the whole value must
 * match; PCRE2_ANCHORED | PCRE2_ENDANCHORED, so a pattern like "a)|(b" is a
 * syntax error rather than an anchoring escape) and RE2-like: UTF-8 mode,
 * '.' matches newline (Prometheus compiles ^(?s:re)$), '$' only at the very
 * end, \d \w \s ASCII. PCRE2 extensions (backreferences, lookaround) are
 * accepted; a match limit bounds their cost (TSDB__EMATCH).
 *
 * A compiled matcher owns copies of name and value and the compiled regex;
 * it is immutable except for the regex's match data, so one thread at a
 * time may use it.
 */
struct tsdb__matcher {
    enum tsdb__match_type type;
    char *name;
    char *value; /* the pattern for RE/NRE */
    size_t value_len;
    int matches_empty; /* 1 if the matcher accepts "" (so also series without the label) */
    enum tsdb__re_kind re_kind;
    struct tsdb__strref *set; /* TSDB__RE_SET: distinct alternatives, sorted (into value) */
    size_t nset;
    struct tsdb__strref lit; /* TSDB__RE_PREFIX, _SUFFIX, _CONTAINS: the literal (into value) */
    struct pcre2_real_code_8 *re; /* RE/NRE: the compiled pattern */
    struct pcre2_real_match_data_8 *md;
    struct pcre2_real_match_context_8 *mctx;
};

/*
 * Compile `name op value` into *m. On failure returns TSDB__EBADNAME (name
 * invalid), TSDB__EREGEX (pattern too long or PCRE2 refused it; the message
 * then includes PCRE2's reason and the byte offset in the pattern) or
 * TSDB__EBADARG, writes a one-line message into err[0..errlen) (err may be
 * NULL), and leaves *m released (tsdb__matcher_release() is then harmless).
 */
int tsdb__matcher_compile(struct tsdb__matcher *m, enum tsdb__match_type type, const char *name,
                          const char *value, char *err, size_t errlen);
void tsdb__matcher_release(struct tsdb__matcher *m);

/*
 * Whether a label value s[0..len) ("" for an absent label) satisfies m.
 * Returns 1 or 0, or TSDB__EMATCH if the regex hit its match limit. Any
 * bytes are accepted (invalid UTF-8 matches no regex);
 * tsdb__matcher_test_utf8() skips that check, so s must be valid UTF-8.
 */
int tsdb__matcher_test(struct tsdb__matcher *m, const char *s, size_t len);
int tsdb__matcher_test_utf8(struct tsdb__matcher *m, const char *s, size_t len);

/*
 * PromQL's rule for a vector selector: at least one matcher must not match
 * the empty string (else the selector would match every series that lacks
 * the labels). Returns 0 if ms[0..n) passes, TSDB__EEMPTYSEL if not (n == 0
 * included). tsdb__index_select() does not enforce it: the query layer
 * calls this.
 */
int tsdb__matchers_check(const struct tsdb__matcher *ms, size_t n);

/* ----------------------------------------------------------------- index */

struct tsdb__index;

struct tsdb__index_opts {
    uint32_t max_series; /* 0: TSDB_MAX_SERIES_DEFAULT; clamped to TSDB_MAX_SERIES_LIMIT */
    uint32_t max_labels; /* 0: TSDB_MAX_LABELS_DEFAULT; clamped to TSDB_MAX_LABELS_LIMIT */
};

/* A new empty index (opts may be NULL for the defaults). Never NULL. */
struct tsdb__index *tsdb__index_new(const struct tsdb__index_opts *opts);
/* Free the index and every string it handed out. No thread may use it any more. */
void tsdb__index_free(struct tsdb__index *idx);

/*
 * The id of the series with labels[0..n) (see "Label sets" above), creating
 * it if it is new. Returns 1 if it was created, 0 if it existed (*id set in
 * both cases), or a negative code: TSDB__EBADNAME, TSDB__EBADVALUE,
 * TSDB__EDUPNAME, TSDB__ENOLABELS, TSDB__ELABEL_LIMIT, or
 * TSDB__ESERIES_LIMIT when the series is new and the index is full (an
 * existing series is still found when the index is full). On error nothing
 * is added, not even strings.
 */
int tsdb__index_get_or_create(struct tsdb__index *idx, const struct tsdb__label *labels, size_t n,
                              uint32_t *id);

/*
 * Like tsdb__index_get_or_create() but never creates and takes only the read
 * lock: 0 with *id, TSDB__ENOTFOUND, or the same input errors.
 */
int tsdb__index_get(struct tsdb__index *idx, const struct tsdb__label *labels, size_t n,
                    uint32_t *id);

/*
 * The labels of series id, sorted by name, into out[0..cap). Returns their
 * number (>= 1), TSDB__EBADARG if id is not a series, or TSDB__ELABEL_LIMIT
 * if cap is too small (cap >= the index's max_labels always suffices). The
 * strings stay valid until the index is freed.
 */
int tsdb__index_labels(struct tsdb__index *idx, uint32_t id, struct tsdb__label *out, size_t cap);

/* Number of series (ids are 0 .. count-1). */
uint32_t tsdb__index_series_count(struct tsdb__index *idx);

/*
 * Forget every series whose keep[id] is 0 (keep has one entry per series):
 * the others are renumbered densely in their old order, newid[id] gets the
 * new id (UINT32_MAX for a forgotten one), and strings no kept series uses
 * are freed. Returns the number kept. Runs under the write lock, but ids
 * and strings handed out before are invalid afterwards: the caller keeps
 * every other user of the index out (the store's append lock and epoch).
 */
uint32_t tsdb__index_compact(struct tsdb__index *idx, const uint8_t *keep, uint32_t *newid);

/* A reusable list of strings owned by the index (valid until it is freed). */
struct tsdb__strlist {
    const char **s;
    size_t n, cap;
};

void tsdb__strlist_init(struct tsdb__strlist *l); /* allocates nothing */
void tsdb__strlist_release(struct tsdb__strlist *l);

/* All label names in use, sorted bytewise, into *out (replacing its contents). */
void tsdb__index_label_names(struct tsdb__index *idx, struct tsdb__strlist *out);
/*
 * The distinct values of label `name` across all series, sorted bytewise,
 * into *out (replacing its contents; empty if no series has the label).
 */
void tsdb__index_label_values(struct tsdb__index *idx, const char *name, struct tsdb__strlist *out);

/*
 * The result of a selection and the scratch memory behind it. ids[0..n) is
 * sorted ascending without duplicates. Reuse one tsdb__sel across calls: in
 * steady state selecting allocates nothing. ids belongs to the sel (valid
 * until the next select or tsdb__sel_release()); copy it to keep it.
 */
struct tsdb__sel {
    uint32_t *ids;
    size_t n;
    /* Tests only: force one evaluation strategy (TSDB__SEL_*); 0 chooses by cost. */
    int force;
    /* private scratch */
    size_t cap;
    uint64_t *bits;
    size_t bits_cap;
    uint32_t *lists;
    size_t nlists, lists_cap;
    void *plan;
    size_t plan_cap;
};

enum { TSDB__SEL_AUTO, TSDB__SEL_POSTINGS, TSDB__SEL_FILTER };

void tsdb__sel_init(struct tsdb__sel *sel); /* allocates nothing */
void tsdb__sel_release(struct tsdb__sel *sel);

/*
 * The series matched by all of ms[0..n) (their intersection; n == 0 selects
 * every series) into sel->ids. Returns 0, or TSDB__EMATCH (sel->n is then
 * 0). A matcher with a non-empty `=` value is answered from its postings
 * list (intersections gallop through the longer list); a literal
 * alternation ("a|b|c") looks its values up directly; other regexes test
 * each distinct value of their label once and union the postings of the
 * values that match; matchers that match "" subtract the postings of the
 * values they reject. The matcher with the shortest postings goes first;
 * once the running result is small, later matchers check each remaining
 * series instead (its pair ids for literal matchers, its value otherwise).
 * Only a selection whose every matcher matches "" (which
 * tsdb__matchers_check() refuses) walks all series. The matchers' match
 * data is used, so they must not be in use by another thread.
 */
int tsdb__index_select(struct tsdb__index *idx, struct tsdb__matcher *ms, size_t n,
                       struct tsdb__sel *sel);

/* Sizes, for tests, benchmarks and self-metrics. */
struct tsdb__index_stats {
    uint32_t series;
    uint32_t names;      /* distinct label names */
    uint32_t pairs;      /* distinct (name, value) pairs = postings lists */
    uint32_t strings;    /* interned strings (names and values) */
    size_t label_refs;   /* sum over series of their label counts */
    size_t string_bytes; /* string arena, entries and hash table */
    size_t bytes;        /* everything the index allocated (capacities, no malloc headers) */
};

void tsdb__index_stats(struct tsdb__index *idx, struct tsdb__index_stats *st);

#endif
