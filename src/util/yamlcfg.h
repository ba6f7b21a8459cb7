/*
 * yamlcfg.h: small helpers for config sections read from a libyaml document
 * (the document API), shared by the modules that parse their own part of
 * sitrep's config (probe, statsd, scrape). Every problem is appended to an
 * error buffer as "file:line:col: message\n", so one pass reports all of
 * them; the caller counts them through yamlcfg.nerr.
 *
 * Values: durations are a whole number with ms, s, m, h, d or w (a bare
 * number is seconds), sizes a whole number with B, KB, MB, GB (powers of
 * 1000) or KiB, MiB, GiB (powers of 1024), booleans true/false.
 */
#ifndef SITREP_UTIL_YAMLCFG_H
#define SITREP_UTIL_YAMLCFG_H

#include <stddef.h>
#include <yaml.h>

#include "util/sbuf.h"

struct yamlcfg {
    const char *file;     /* labels the messages */
    yaml_document_t *doc; /* not owned */
    struct sbuf *errors;  /* not owned; one line per problem is appended */
    int nerr;             /* problems reported so far */
};

/* Report a problem at node n (printf format); control bytes are shown as '?'. */
void yamlcfg_err(struct yamlcfg *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

yaml_node_t *yamlcfg_node(struct yamlcfg *w, int idx);
/* The text of a scalar node, or NULL for any other node. */
const char *yamlcfg_scalar(const yaml_node_t *n);
/* 1 for `key:` with nothing, `~` or `null` (plain style only). */
int yamlcfg_is_null(const yaml_node_t *n);

typedef void (*yamlcfg_key_fn)(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                               void *ctx);
/*
 * Call fn for each key of a mapping (a null node has none); reports a node
 * that is no mapping, non-string keys and duplicate keys. 0, or -1 if map
 * is no mapping.
 */
int yamlcfg_each_key(struct yamlcfg *w, yaml_node_t *map, const char *where, yamlcfg_key_fn fn,
                     void *ctx);
/* The items of a sequence: *items and *n (0 for a null node). 0, or -1 (reported). */
int yamlcfg_seq(struct yamlcfg *w, yaml_node_t *v, const char *key, yaml_node_item_t **items,
                size_t *n);

/* Each getter returns 0, or -1 after reporting; *dst is left alone on error. */
int yamlcfg_str(struct yamlcfg *w, yaml_node_t *v, const char *key, char **dst);
int yamlcfg_bool(struct yamlcfg *w, yaml_node_t *v, const char *key, int *dst);
int yamlcfg_uint(struct yamlcfg *w, yaml_node_t *v, const char *key, unsigned long long lo,
                 unsigned long long hi, unsigned long long *dst);
int yamlcfg_duration(struct yamlcfg *w, yaml_node_t *v, const char *key, long long lo_ms,
                     long long hi_ms, long long *dst);
int yamlcfg_size(struct yamlcfg *w, yaml_node_t *v, const char *key, long long lo, long long hi,
                 long long *dst);
/* A sequence of strings; appended to *list (owned strings), *n counts them. */
int yamlcfg_str_list(struct yamlcfg *w, yaml_node_t *v, const char *key, char ***list, size_t *n);

/* Parsers behind the getters: 0, or -1 if s is malformed or out of range. */
int yamlcfg_parse_duration(const char *s, long long *ms);
int yamlcfg_parse_size(const char *s, long long *bytes);

/*
 * Parse a whole YAML text and call fn on its root node (a module's
 * *_config_parse_node), for tests and tools. Returns what fn returned, or
 * -1 for a YAML syntax error (reported as file:line:col).
 */
typedef int (*yamlcfg_node_fn)(void *cfg, const char *file, yaml_document_t *doc, yaml_node_t *root,
                               struct sbuf *errors);
int yamlcfg_parse_text(const char *file, const char *text, struct sbuf *errors, yamlcfg_node_fn fn,
                       void *cfg);

#endif
