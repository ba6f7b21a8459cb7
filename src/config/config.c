/*
 * config.c: YAML config loading (libyaml document API) with positions on
 * every error. Unknown keys are errors: a typo must not silently fall back
 * to a default. All problems in a file are reported, not just the first.
 */
#include "config/config.h"
#include "collect/collect.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct walk {
    const char *file;
    yaml_document_t *doc;
    struct sbuf *errors;
    int nerr;
};

static void errat(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errat(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    sbuf_addf(w->errors, "%s:%zu:%zu: ", w->file, n->start_mark.line + 1, n->start_mark.column + 1);
    va_start(ap, fmt);
    sbuf_vaddf(w->errors, fmt, ap);
    va_end(ap);
    sbuf_addc(w->errors, '\n');
    w->nerr++;
}

static const char *scalar(yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_string(struct walk *w, yaml_node_t *n, const char *key, char **dst)
{
    const char *s = scalar(n);
    if (!s) {
        errat(w, n, "%s: want a string", key);
        return -1;
    }
    free(*dst);
    *dst = xstrdup(s);
    return 0;
}

static int get_int(struct walk *w, yaml_node_t *n, const char *key, int lo, int hi, int *dst)
{
    const char *s = scalar(n);
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        errat(w, n, "%s: want a whole number from %d to %d", key, lo, hi);
        return -1;
    }
    *dst = (int)v;
    return 0;
}

int config_parse_duration_ms(const char *s, long long *ms)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1},       {"s", 1000},      {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}, {"w", 604800000}, {"", 1000}};
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++)
        if (strcmp(end, units[i].unit) == 0) {
            if (v > LLONG_MAX / units[i].ms)
                return -1;
            *ms = v * units[i].ms;
            return 0;
        }
    return -1;
}

int config_parse_size(const char *s, long long *bytes)
{
    static const struct {
        const char *unit;
        long long mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KB", 1000LL},
                 {"MB", 1000000LL},
                 {"GB", 1000000000LL},
                 {"TB", 1000000000000LL},
                 {"KiB", 1LL << 10},
                 {"MiB", 1LL << 20},
                 {"GiB", 1LL << 30},
                 {"TiB", 1LL << 40}};
    const char *p = s;
    long long whole = 0, frac = 0, scale = 1; /* the number is whole + frac / scale */
    int has_point = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (LLONG_MAX - (*p - '0')) / 10)
            return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        has_point = 1;
        p++;
        if (*p < '0' || *p > '9') /* "1." and "1.GiB" */
            return -1;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale == 1000000000) /* 9 places keep frac * (mult % scale) below 10^18 */
                return -1;
            frac = frac * 10 + (*p - '0');
            scale *= 10;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (strcmp(p, units[i].unit) != 0)
            continue;
        long long mult = units[i].mult;
        if (has_point && mult == 1) /* a fraction of a byte means a typo */
            return -1;
        if (whole > LLONG_MAX / mult)
            return -1;
        /* floor(frac * mult / scale), exact without floating point or overflow */
        long long part = frac * (mult / scale) + frac * (mult % scale) / scale;
        if (whole * mult > LLONG_MAX - part)
            return -1;
        *bytes = whole * mult + part;
        return 0;
    }
    return -1;
}

int config_parse_listen(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostcap)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static void walk_map(struct walk *w, yaml_node_t *map, const char *where, struct config *cfg,
                     void (*on_key)(struct walk *, const char *, yaml_node_t *, yaml_node_t *,
                                    struct config *))
{
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "%s: want a mapping of keys", where);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *key = scalar(k);
        if (!key) {
            errat(w, k, "%s: keys must be plain strings", where);
            continue;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const char *prev = scalar(yaml_document_get_node(w->doc, q->key));
            if (prev && strcmp(prev, key) == 0) {
                errat(w, k, "%s: duplicate key '%s'", where, key);
                break;
            }
        }
        on_key(w, key, k, v, cfg);
    }
}

static void on_http(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                    struct config *cfg)
{
    if (strcmp(key, "listen") == 0) {
        char host[256];
        int port;
        if (get_string(w, v, "http.listen", &cfg->listen) == 0 &&
            config_parse_listen(cfg->listen, host, sizeof(host), &port) < 0)
            errat(w, v, "http.listen: want ADDR:PORT (e.g. 127.0.0.1:9797), got '%s'", cfg->listen);
    } else if (strcmp(key, "token") == 0) {
        if (get_string(w, v, "http.token", &cfg->http_token) == 0 && strlen(cfg->http_token) < 16)
            errat(w, v, "http.token: use at least 16 characters");
    } else {
        errat(w, k, "http: unknown key '%s' (known: listen, token)", key);
    }
}

static void on_collect(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                       struct config *cfg)
{
    struct config_collect *c = &cfg->collect;
    if (strcmp(key, "interval") == 0) {
        long long ms;
        const char *s = scalar(v);
        if (!s || config_parse_duration_ms(s, &ms) < 0 || ms % 1000 || ms < 1000 || ms > 3600000)
            errat(w, v, "collect.interval: want whole seconds from 1s to 1h (e.g. 1s)");
        else
            c->interval_s = (int)(ms / 1000);
    } else if (strcmp(key, "top_processes") == 0) {
        get_int(w, v, "collect.top_processes", 0, 1000, &c->top_processes);
    } else if (strcmp(key, "proc_root") == 0) {
        get_string(w, v, "collect.proc_root", &c->proc_root);
    } else if (strcmp(key, "sys_root") == 0) {
        get_string(w, v, "collect.sys_root", &c->sys_root);
    } else if (strcmp(key, "rootfs") == 0) {
        get_string(w, v, "collect.rootfs", &c->rootfs);
    } else if (strcmp(key, "disable") == 0) {
        if (v->type != YAML_SEQUENCE_NODE) {
            errat(w, v, "collect.disable: want a list of source names");
            return;
        }
        size_t nnames;
        const char *const *names = collect_source_names(&nnames);
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(w->doc, *it);
            const char *s = scalar(e);
            size_t i = 0;
            while (s && i < nnames && strcmp(names[i], s) != 0)
                i++;
            if (!s || i == nnames) {
                errat(w, e, "collect.disable: unknown source '%s'", s ? s : "(not a string)");
                continue;
            }
            c->disable = xrealloc(c->disable, (c->ndisable + 1) * sizeof(*c->disable));
            c->disable[c->ndisable++] = xstrdup(s);
        }
    } else {
        errat(w, k,
              "collect: unknown key '%s' (known: interval, top_processes, proc_root, "
              "sys_root, rootfs, disable)",
              key);
    }
}

/*
 * Retention above a century is taken for a typo; the bound also keeps
 * "now - retention" and "now + retention" far from overflow.
 */
#define RETENTION_MAX_MS  (36500 * 86400000LL)
#define BLOCK_SPAN_MAX_MS 7200000LL /* 2h, the longest block; shorter spans must tile it */
#define SIZE_UNITS        "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

/* Set *dst to the duration in n if it parses and lies in lo..hi (range: "lo to hi"). */
static int get_duration(struct walk *w, yaml_node_t *n, const char *key, long long lo, long long hi,
                        const char *range, const char *example, long long *dst)
{
    const char *s = scalar(n);
    long long ms;
    if (!s || config_parse_duration_ms(s, &ms) < 0 || ms < lo || ms > hi) {
        errat(w, n, "%s: want a duration from %s (e.g. %s)", key, range, example);
        return -1;
    }
    *dst = ms;
    return 0;
}

/* Set *dst to the size in n if it parses and is at least lo (range: "of at least lo"). */
static int get_size(struct walk *w, yaml_node_t *n, const char *key, long long lo,
                    const char *range, long long *dst)
{
    const char *s = scalar(n);
    long long bytes;
    if (!s || config_parse_size(s, &bytes) < 0 || bytes < lo) {
        errat(w, n, "%s: want a size %s; units: " SIZE_UNITS, key, range);
        return -1;
    }
    *dst = bytes;
    return 0;
}

static void on_retention(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                         struct config *cfg)
{
    struct config_storage *st = &cfg->storage;
    if (strcmp(key, "raw") == 0)
        get_duration(w, v, "storage.retention.raw", 3600000, RETENTION_MAX_MS, "1h to 36500d",
                     "14d", &st->retention_raw_ms);
    else if (strcmp(key, "1m") == 0)
        get_duration(w, v, "storage.retention.1m", 86400000, RETENTION_MAX_MS, "1d to 36500d",
                     "90d", &st->retention_1m_ms);
    else if (strcmp(key, "1h") == 0)
        get_duration(w, v, "storage.retention.1h", 86400000, RETENTION_MAX_MS, "1d to 36500d",
                     "730d", &st->retention_1h_ms);
    else
        errat(w, k, "storage.retention: unknown key '%s' (known: raw, 1m, 1h)", key);
}

static void on_storage(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                       struct config *cfg)
{
    struct config_storage *st = &cfg->storage;
    int n;
    if (strcmp(key, "retention") == 0) {
        walk_map(w, v, "storage.retention", cfg, on_retention);
    } else if (strcmp(key, "max_size") == 0) {
        get_size(w, v, "storage.max_size", 64LL << 20, "of at least 64MiB (e.g. 2GiB)",
                 &st->max_bytes);
    } else if (strcmp(key, "min_free") == 0) {
        get_size(w, v, "storage.min_free", 0, "of 0 (off) or more (e.g. 1GiB)",
                 &st->min_free_bytes);
    } else if (strcmp(key, "min_free_percent") == 0) {
        get_int(w, v, "storage.min_free_percent", 0, 50, &st->min_free_percent);
    } else if (strcmp(key, "max_series") == 0) {
        if (get_int(w, v, "storage.max_series", 1000, 10000000, &n) == 0)
            st->max_series = (unsigned)n;
    } else if (strcmp(key, "max_labels") == 0) {
        if (get_int(w, v, "storage.max_labels", 2, 64, &n) == 0)
            st->max_labels = (unsigned)n;
    } else if (strcmp(key, "sync_interval") == 0) {
        get_duration(w, v, "storage.sync_interval", 100, 60000, "100ms to 60s", "1s",
                     &st->sync_interval_ms);
    } else if (strcmp(key, "block_span") == 0) {
        long long ms;
        if (get_duration(w, v, "storage.block_span", 10000, BLOCK_SPAN_MAX_MS, "10s to 2h", "2h",
                         &ms) < 0)
            return;
        if (BLOCK_SPAN_MAX_MS % ms)
            errat(w, v, "storage.block_span: must divide 2h evenly (e.g. 2h, 1h, 30m, 1m, 10s)");
        else
            st->block_span_ms = ms;
    } else {
        errat(w, k,
              "storage: unknown key '%s' (known: retention, max_size, min_free, "
              "min_free_percent, max_series, max_labels, sync_interval, block_span)",
              key);
    }
}

static void on_top(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                   struct config *cfg)
{
    if (strcmp(key, "http") == 0)
        walk_map(w, v, "http", cfg, on_http);
    else if (strcmp(key, "collect") == 0)
        walk_map(w, v, "collect", cfg, on_collect);
    else if (strcmp(key, "storage") == 0)
        walk_map(w, v, "storage", cfg, on_storage);
    else if (strcmp(key, "data_dir") == 0)
        get_string(w, v, "data_dir", &cfg->data_dir);
    else if (strcmp(key, "log_level") == 0) {
        if (get_string(w, v, "log_level", &cfg->log_level) == 0 &&
            log_level_parse(cfg->log_level) < 0)
            errat(w, v, "log_level: want debug, info, warn or error");
    } else
        errat(w, k, "unknown key '%s' (known: http, collect, storage, data_dir, log_level)", key);
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = xstrdup(CONFIG_DEFAULT_LISTEN);
    cfg->data_dir = xstrdup(CONFIG_DEFAULT_DATA);
    cfg->log_level = xstrdup("info");
    cfg->collect.interval_s = 1;
    cfg->collect.top_processes = 10;
    cfg->collect.proc_root = xstrdup("/proc");
    cfg->collect.sys_root = xstrdup("/sys");
    cfg->collect.rootfs = xstrdup("");
    cfg->storage.retention_raw_ms = 14 * 86400000LL;
    cfg->storage.retention_1m_ms = 90 * 86400000LL;
    cfg->storage.retention_1h_ms = 730 * 86400000LL;
    cfg->storage.max_bytes = 2LL << 30;
    cfg->storage.min_free_bytes = 1LL << 30;
    cfg->storage.min_free_percent = 5;
    cfg->storage.max_series = 200000;
    cfg->storage.max_labels = 32;
    cfg->storage.sync_interval_ms = 1000;
    cfg->storage.block_span_ms = BLOCK_SPAN_MAX_MS;
}

void config_release(struct config *cfg)
{
    free(cfg->path);
    free(cfg->listen);
    free(cfg->data_dir);
    free(cfg->log_level);
    free(cfg->http_token);
    free(cfg->collect.proc_root);
    free(cfg->collect.sys_root);
    free(cfg->collect.rootfs);
    for (size_t i = 0; i < cfg->collect.ndisable; i++)
        free(cfg->collect.disable[i]);
    free(cfg->collect.disable);
    memset(cfg, 0, sizeof(*cfg));
}

int config_load(struct config *cfg, const char *path, struct sbuf *errors)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sbuf_addf(errors, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    free(cfg->path);
    cfg->path = xstrdup(path);
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        sbuf_addf(errors, "%s:%zu:%zu: %s%s%s\n", path, parser.problem_mark.line + 1,
                  parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct walk w = {.file = path, .doc = &doc, .errors = errors};
    if (root && !(root->type == YAML_SCALAR_NODE && !*scalar(root)))
        walk_map(&w, root, "top level", cfg, on_top);
    if (w.nerr)
        rc = -1;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
