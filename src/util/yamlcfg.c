/*
 * yamlcfg.c: shared helpers for module config sections in a libyaml
 * document (see yamlcfg.h). Kept free of any module's knowledge so that
 * probe, statsd and scrape report positions and values the same way.
 */
#include "util/yamlcfg.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void yamlcfg_err(struct yamlcfg *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    struct sbuf msg;
    sbuf_init(&msg, 4096);
    va_start(ap, fmt);
    sbuf_vaddf(&msg, fmt, ap);
    va_end(ap);
    size_t line = n ? n->start_mark.line + 1 : 1, col = n ? n->start_mark.column + 1 : 1;
    sbuf_addf(w->errors, "%s:%zu:%zu: ", w->file, line, col);
    /* One line per problem, whatever bytes the file's keys and values hold. */
    for (const char *p = msg.buf; p && *p; p++) {
        if (*p == '\n')
            sbuf_adds(w->errors, "\\n");
        else
            sbuf_addc(w->errors, (unsigned char)*p < 0x20 ? '?' : *p);
    }
    sbuf_addc(w->errors, '\n');
    sbuf_release(&msg);
    w->nerr++;
}

yaml_node_t *yamlcfg_node(struct yamlcfg *w, int idx)
{
    return yaml_document_get_node(w->doc, idx);
}

const char *yamlcfg_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int yamlcfg_is_null(const yaml_node_t *n)
{
    const char *s = yamlcfg_scalar(n);
    if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

int yamlcfg_each_key(struct yamlcfg *w, yaml_node_t *map, const char *where, yamlcfg_key_fn fn,
                     void *ctx)
{
    if (!map || yamlcfg_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE) {
        yamlcfg_err(w, map, "%s: want a mapping of keys", where);
        return -1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yamlcfg_node(w, p->key), *v = yamlcfg_node(w, p->value);
        const char *key = yamlcfg_scalar(k);
        if (!key) {
            yamlcfg_err(w, k, "%s: keys must be plain strings", where);
            continue;
        }
        int dup = 0;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !dup; q++) {
            const char *prev = yamlcfg_scalar(yamlcfg_node(w, q->key));
            dup = prev && strcmp(prev, key) == 0;
        }
        if (dup) {
            yamlcfg_err(w, k, "%s: duplicate key '%s'", where, key);
            continue;
        }
        fn(w, key, k, v, ctx);
    }
    return 0;
}

int yamlcfg_seq(struct yamlcfg *w, yaml_node_t *v, const char *key, yaml_node_item_t **items,
                size_t *n)
{
    *items = NULL;
    *n = 0;
    if (yamlcfg_is_null(v))
        return 0;
    if (!v || v->type != YAML_SEQUENCE_NODE) {
        yamlcfg_err(w, v, "%s: want a list", key);
        return -1;
    }
    *items = v->data.sequence.items.start;
    *n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    return 0;
}

int yamlcfg_str(struct yamlcfg *w, yaml_node_t *v, const char *key, char **dst)
{
    const char *s = yamlcfg_scalar(v);
    if (!s) {
        yamlcfg_err(w, v, "%s: want a string", key);
        return -1;
    }
    if (strlen(s) != v->data.scalar.length) {
        yamlcfg_err(w, v, "%s: NUL byte in the value", key);
        return -1;
    }
    free(*dst);
    *dst = xstrdup(s);
    return 0;
}

int yamlcfg_bool(struct yamlcfg *w, yaml_node_t *v, const char *key, int *dst)
{
    const char *s = yamlcfg_scalar(v);
    if (s && strcmp(s, "true") == 0)
        *dst = 1;
    else if (s && strcmp(s, "false") == 0)
        *dst = 0;
    else {
        yamlcfg_err(w, v, "%s: want true or false", key);
        return -1;
    }
    return 0;
}

int yamlcfg_uint(struct yamlcfg *w, yaml_node_t *v, const char *key, unsigned long long lo,
                 unsigned long long hi, unsigned long long *dst)
{
    const char *s = yamlcfg_scalar(v);
    char *end = NULL;
    errno = 0;
    unsigned long long x = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || !end || *end || errno || x < lo || x > hi) {
        yamlcfg_err(w, v, "%s: want a whole number in %llu..%llu", key, lo, hi);
        return -1;
    }
    *dst = x;
    return 0;
}

/* A whole number then a unit from the table; 0 or -1. */
static int number_unit(const char *s, const char *const *units, const long long *mult,
                       size_t nunits, long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || x > (unsigned long long)LLONG_MAX)
        return -1;
    for (size_t i = 0; i < nunits; i++)
        if (strcmp(end, units[i]) == 0) {
            if (x > (unsigned long long)(LLONG_MAX / mult[i]))
                return -1;
            *out = (long long)x * mult[i];
            return 0;
        }
    return -1;
}

int yamlcfg_parse_duration(const char *s, long long *ms)
{
    static const char *const units[] = {"", "ms", "s", "m", "h", "d", "w"};
    static const long long mult[] = {1000, 1, 1000, 60000, 3600000, 86400000, 604800000};
    return number_unit(s, units, mult, ARRAY_SIZE(units), ms);
}

int yamlcfg_parse_size(const char *s, long long *bytes)
{
    static const char *const units[] = {"", "B", "KB", "MB", "GB", "KiB", "MiB", "GiB"};
    static const long long mult[] = {1, 1, 1000, 1000000, 1000000000, 1024, 1048576, 1073741824};
    return number_unit(s, units, mult, ARRAY_SIZE(units), bytes);
}

int yamlcfg_duration(struct yamlcfg *w, yaml_node_t *v, const char *key, long long lo_ms,
                     long long hi_ms, long long *dst)
{
    long long ms;
    if (yamlcfg_parse_duration(yamlcfg_scalar(v), &ms) < 0 || ms < lo_ms || ms > hi_ms) {
        yamlcfg_err(w, v, "%s: want a duration from %lldms to %llds, such as 10s or 500ms", key,
                    lo_ms, hi_ms / 1000);
        return -1;
    }
    *dst = ms;
    return 0;
}

int yamlcfg_size(struct yamlcfg *w, yaml_node_t *v, const char *key, long long lo, long long hi,
                 long long *dst)
{
    long long b;
    if (yamlcfg_parse_size(yamlcfg_scalar(v), &b) < 0 || b < lo || b > hi) {
        yamlcfg_err(w, v, "%s: want a size from %lld to %lld bytes, such as 512KiB or 10MB", key,
                    lo, hi);
        return -1;
    }
    *dst = b;
    return 0;
}

int yamlcfg_str_list(struct yamlcfg *w, yaml_node_t *v, const char *key, char ***list, size_t *n)
{
    yaml_node_item_t *it;
    size_t cnt;
    if (yamlcfg_seq(w, v, key, &it, &cnt) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        char *s = NULL;
        if (yamlcfg_str(w, yamlcfg_node(w, it[i]), key, &s) < 0) {
            rc = -1;
            continue;
        }
        *list = xrealloc(*list, (*n + 1) * sizeof(**list));
        (*list)[(*n)++] = s;
    }
    return rc;
}

int yamlcfg_parse_text(const char *file, const char *text, struct sbuf *errors, yamlcfg_node_fn fn,
                       void *cfg)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        sbuf_addf(errors, "%s:%zu:%zu: %s\n", file, parser.problem_mark.line + 1,
                  parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        return -1;
    }
    int rc = fn(cfg, file, &doc, yaml_document_get_root_node(&doc), errors);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}
