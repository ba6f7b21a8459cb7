/*
 * config.c: YAML config loading (libyaml document API) with positions on
 * every error. Unknown keys are errors: a typo must not silently fall back
 * to a default. All problems in a file are reported, not just the first.
 */
#include "config/config_internal.h"
#include "collect/collect.h"
#include "ingest/ingest.h"
#include "metric/metric.h"
#include "rules/rules.h"
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
    } else if (strcmp(key, "vmstat_fields") == 0 || strcmp(key, "netstat_fields") == 0) {
        char where[32], err[256];
        size_t off;
        snprintf(where, sizeof(where), "collect.%s", key);
        char **dst = key[0] == 'v' ? &c->vmstat_fields : &c->netstat_fields;
        if (get_string(w, v, where, dst) == 0 &&
            collect_check_fields(*dst, err, sizeof(err), &off) < 0)
            errat(w, v, "%s: %s", where, err);
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
              "sys_root, rootfs, disable, vmstat_fields, netstat_fields)",
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

/* ---- logs: access logs to follow (src/ingest) ---- */

/* A string or a list of strings into a new array; 0, or -1 (reported). */
static int get_strings(struct walk *w, yaml_node_t *v, const char *key, char ***out, size_t *n)
{
    if (scalar(v)) {
        *out = xcalloc(1, sizeof(**out));
        (*out)[0] = xstrdup(scalar(v));
        *n = 1;
        return 0;
    }
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "%s: want a string or a list of strings", key);
        return -1;
    }
    int rc = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(w->doc, *it);
        if (!scalar(e)) {
            errat(w, e, "%s: want a string", key);
            rc = -1;
            continue;
        }
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = xstrdup(scalar(e));
    }
    return rc;
}

static void on_log_fields(struct walk *w, const char *where, yaml_node_t *map, struct ingest_log *l)
{
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "%s: want a mapping of field: name", where);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        enum ingest_field f;
        if (!scalar(k) || ingest_field_parse(scalar(k), &f) < 0) {
            errat(w, k,
                  "%s: unknown field '%s' (known: client, method, path, request, status, bytes, "
                  "duration, time)",
                  where, scalar(k) ? scalar(k) : "(not a string)");
            continue;
        }
        if (!scalar(v) || !*scalar(v)) {
            errat(w, v, "%s.%s: want a JSON field name (dotted for nested objects)", where,
                  scalar(k));
            continue;
        }
        free(l->fields[f]);
        l->fields[f] = xstrdup(scalar(v));
    }
}

static void on_log_counters(struct walk *w, const char *where, yaml_node_t *map,
                            struct ingest_log *l)
{
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "%s: want a mapping of name: regex", where);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        char err[256];
        size_t off;
        if (!scalar(k) || ingest_check_service(scalar(k), err, sizeof(err)) < 0) {
            errat(w, k, "%s: counter name: want 1 to 64 of A-Z a-z 0-9 _ . : -", where);
            continue;
        }
        if (!scalar(v) || ingest_check_regex(scalar(v), err, sizeof(err), &off) < 0) {
            errat(w, v, "%s.%s: %s", where, scalar(k), scalar(v) ? err : "want a regex");
            continue;
        }
        for (size_t i = 0; i < l->ncounters; i++)
            if (strcmp(l->counters[i].name, scalar(k)) == 0)
                errat(w, k, "%s: duplicate counter '%s'", where, scalar(k));
        l->counters = xrealloc(l->counters, (l->ncounters + 1) * sizeof(*l->counters));
        l->counters[l->ncounters].name = xstrdup(scalar(k));
        l->counters[l->ncounters++].regex = xstrdup(scalar(v));
    }
}

static int get_uint(struct walk *w, yaml_node_t *n, const char *key, int lo, int hi, unsigned *dst)
{
    int v;
    if (get_int(w, n, key, lo, hi, &v) < 0)
        return -1;
    *dst = (unsigned)v;
    return 0;
}

static void on_log_key(struct walk *w, const char *where, const char *key, yaml_node_t *k,
                       yaml_node_t *v, struct ingest_log *l)
{
    char name[128], err[256];
    const char *s = scalar(v);
    size_t off;
    snprintf(name, sizeof(name), "%s.%s", where, key);
    if (strcmp(key, "service") == 0) {
        if (get_string(w, v, name, &l->service) == 0 &&
            ingest_check_service(l->service, err, sizeof(err)) < 0)
            errat(w, v, "%s: %s", name, err);
    } else if (strcmp(key, "path") == 0) {
        if (get_strings(w, v, name, &l->paths, &l->npaths) == 0) {
            for (size_t i = 0; i < l->npaths; i++)
                if (!*l->paths[i] || strchr(l->paths[i], '\n'))
                    errat(w, v, "%s: want a file path or glob", name);
            if (!l->npaths)
                errat(w, v, "%s: want at least one file path or glob", name);
        }
    } else if (strcmp(key, "format") == 0) {
        if (!s || ingest_format_parse(s, &l->format) < 0)
            errat(w, v, "%s: want common, combined, json or pattern", name);
    } else if (strcmp(key, "request_time") == 0) {
        if (!s || ingest_unit_parse(s, &l->request_time) < 0)
            errat(w, v, "%s: want none, seconds, milliseconds or microseconds (s, ms, us)", name);
    } else if (strcmp(key, "fields") == 0) {
        on_log_fields(w, name, v, l);
    } else if (strcmp(key, "pattern") == 0) {
        if (get_string(w, v, name, &l->pattern) == 0 &&
            ingest_check_pattern(l->pattern, err, sizeof(err), &off) < 0)
            errat(w, v, "%s: %s", name, err);
    } else if (strcmp(key, "routes") == 0) {
        if (get_strings(w, v, name, &l->routes, &l->nroutes) == 0)
            for (size_t i = 0; i < l->nroutes; i++)
                if (ingest_check_route(l->routes[i], err, sizeof(err)) < 0)
                    errat(w,
                          scalar(v)
                              ? v
                              : yaml_document_get_node(w->doc, v->data.sequence.items.start[i]),
                          "%s: '%s': %s", name, l->routes[i], err);
    } else if (strcmp(key, "counters") == 0) {
        on_log_counters(w, name, v, l);
    } else if (strcmp(key, "max_routes") == 0) {
        get_uint(w, v, name, 1, 100000, &l->max_routes);
    } else if (strcmp(key, "max_files") == 0) {
        get_uint(w, v, name, 1, 100000, &l->max_files);
    } else if (strcmp(key, "max_line") == 0) {
        long long bytes;
        if (!s || config_parse_size(s, &bytes) < 0 || bytes < 256 || bytes > (1 << 20))
            errat(w, v, "%s: want a size from 256B to 1MiB (e.g. 16KiB)", name);
        else
            l->max_line = (unsigned)bytes;
    } else if (strcmp(key, "retry_window") == 0) {
        get_duration(w, v, name, 1000, 3600000, "1s to 1h", "10s", &l->retry_window_ms);
    } else if (strcmp(key, "client_from") == 0) {
        if (s && strcmp(s, "remote_addr") == 0)
            l->client_forwarded = 0;
        else if (s && strcmp(s, "forwarded_for") == 0)
            l->client_forwarded = 1;
        else
            errat(w, v, "%s: want remote_addr or forwarded_for", name);
    } else if (strcmp(key, "start_at") == 0) {
        if (s && strcmp(s, "end") == 0)
            l->from_beginning = 0;
        else if (s && strcmp(s, "beginning") == 0)
            l->from_beginning = 1;
        else
            errat(w, v, "%s: want end or beginning", name);
    } else {
        errat(w, k,
              "%s: unknown key '%s' (known: service, path, format, request_time, fields, "
              "pattern, routes, counters, max_routes, max_files, max_line, retry_window, "
              "client_from, start_at)",
              where, key);
    }
}

static void on_log(struct walk *w, size_t idx, yaml_node_t *map, struct config *cfg)
{
    char where[32];
    snprintf(where, sizeof(where), "logs[%zu]", idx);
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "%s: want a mapping with service, path and format", where);
        return;
    }
    cfg->logs = xrealloc(cfg->logs, (cfg->nlogs + 1) * sizeof(*cfg->logs));
    struct ingest_log *l = &cfg->logs[cfg->nlogs++];
    ingest_log_defaults(l);
    int has_fields = 0, has_pattern = 0, has_path = 0, has_service = 0;
    yaml_node_t *fields_node = NULL, *client_node = NULL;
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
        if (strcmp(key, "fields") == 0) {
            has_fields = 1;
            fields_node = k;
        }
        has_pattern |= strcmp(key, "pattern") == 0;
        if (strcmp(key, "client_from") == 0)
            client_node = k;
        has_path |= strcmp(key, "path") == 0;
        has_service |= strcmp(key, "service") == 0;
        on_log_key(w, where, key, k, v, l);
    }
    if (!has_service)
        errat(w, map, "%s: service: missing (the name its series are labelled with)", where);
    if (!has_path)
        errat(w, map, "%s: path: missing (a file path, a glob, or a list of them)", where);
    if (l->format == INGEST_FMT_PATTERN && !has_pattern)
        errat(w, map, "%s: format pattern needs a pattern (a PCRE2 regex with named groups)",
              where);
    if (l->format != INGEST_FMT_PATTERN && has_pattern)
        errat(w, map, "%s: pattern: only with format: pattern", where);
    if (l->format != INGEST_FMT_JSON && has_fields)
        errat(w, fields_node, "%s: fields: only with format: json", where);
    if (l->format != INGEST_FMT_COMBINED && client_node)
        errat(w, client_node,
              "%s: client_from: only with format: combined (json: fields.client; pattern: a "
              "client group)",
              where);
    for (size_t i = 0; l->service && i + 1 < cfg->nlogs; i++)
        if (cfg->logs[i].service && strcmp(cfg->logs[i].service, l->service) == 0)
            errat(w, map, "%s: service '%s' is already the service of logs[%zu]", where, l->service,
                  i);
}

static void on_logs(struct walk *w, yaml_node_t *v, struct config *cfg)
{
    if (v->type == YAML_SCALAR_NODE && !*scalar(v))
        return; /* "logs:" with nothing: none */
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "logs: want a list of {service, path, format, ...}");
        return;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++)
        on_log(w, i, yaml_document_get_node(w->doc, *it), cfg);
}

/* ---- rules: and alerting: ---- */

static void on_flapping(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                        struct config *cfg)
{
    struct config_rules *r = &cfg->rules;
    if (strcmp(key, "threshold") == 0)
        get_uint(w, v, "rules.flapping.threshold", 2, 1000, &r->flap_threshold);
    else if (strcmp(key, "window") == 0)
        get_duration(w, v, "rules.flapping.window", 1000, 7 * 86400000LL, "1s to 7d", "1h",
                     &r->flap_window_ms);
    else if (strcmp(key, "quiet") == 0)
        get_duration(w, v, "rules.flapping.quiet", 1000, 7 * 86400000LL, "1s to 7d", "30m",
                     &r->flap_quiet_ms);
    else
        errat(w, k, "rules.flapping: unknown key '%s' (known: threshold, window, quiet)", key);
}

/* `rules.disable`: built-in rules to leave out; a name the pack lacks is a typo, said here. */
static void on_rules_disable(struct walk *w, yaml_node_t *v, struct config_rules *r)
{
    if (v->type == YAML_SCALAR_NODE && !*scalar(v))
        return; /* `disable:` with nothing */
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "rules.disable: want a list of built-in rule names");
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(w->doc, *it);
        const char *name = scalar(e);
        if (!name || !rules_builtin_has_rule(name)) {
            errat(w, e,
                  "rules.disable: no built-in rule named '%s' (sitrep rules builtin lists them)",
                  name ? name : "(not a string)");
            continue;
        }
        r->disable = xrealloc(r->disable, (r->ndisable + 1) * sizeof(*r->disable));
        r->disable[r->ndisable++] = xstrdup(name);
    }
}

static void on_rules(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                     struct config *cfg)
{
    struct config_rules *r = &cfg->rules;
    if (strcmp(key, "interval") == 0) {
        get_duration(w, v, "rules.interval", 1000, 3600000, "1s to 1h", "1s", &r->interval_ms);
    } else if (strcmp(key, "resend_delay") == 0) {
        get_duration(w, v, "rules.resend_delay", 1000, 3600000, "1s to 1h", "1m",
                     &r->resend_delay_ms);
    } else if (strcmp(key, "outage_tolerance") == 0) {
        get_duration(w, v, "rules.outage_tolerance", 0, 30 * 86400000LL, "0s to 30d", "1h",
                     &r->outage_tolerance_ms);
    } else if (strcmp(key, "flapping") == 0) {
        walk_map(w, v, "rules.flapping", cfg, on_flapping);
    } else if (strcmp(key, "external_labels") == 0) {
        if (v->type != YAML_MAPPING_NODE) {
            errat(w, v, "rules.external_labels: want a mapping of name: value");
            return;
        }
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *lk = yaml_document_get_node(w->doc, p->key);
            yaml_node_t *lv = yaml_document_get_node(w->doc, p->value);
            if (!scalar(lk) || !metric_label_name_valid(scalar(lk)) || !scalar(lv)) {
                errat(w, lk, "rules.external_labels: want label_name: string");
                continue;
            }
            r->external_names =
                xrealloc(r->external_names, (r->nexternal + 1) * sizeof(*r->external_names));
            r->external_values =
                xrealloc(r->external_values, (r->nexternal + 1) * sizeof(*r->external_values));
            r->external_names[r->nexternal] = xstrdup(scalar(lk));
            r->external_values[r->nexternal++] = xstrdup(scalar(lv));
        }
    } else if (strcmp(key, "default_pack") == 0) {
        const char *s = scalar(v);
        if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
            r->default_pack = strcmp(s, "true") == 0;
        else
            errat(w, v, "rules.default_pack: want true or false");
    } else if (strcmp(key, "disable") == 0) {
        on_rules_disable(w, v, r);
    } else {
        errat(w, k,
              "rules: unknown key '%s' (known: interval, resend_delay, outage_tolerance, "
              "flapping, external_labels, default_pack, disable)",
              key);
    }
}

void config_dir(const struct config *cfg, char *out, size_t cap)
{
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == cfg->path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - cfg->path), cfg->path);
}

static void on_alerting(struct walk *w, yaml_node_t *v, struct config *cfg)
{
    if (cfg->has_alerting) {
        notify_config_release(&cfg->alerting);
        notify_config_defaults(&cfg->alerting);
    }
    cfg->has_alerting = 1;
    const char *s = scalar(v);
    if (s && !*s)
        return; /* `alerting:` with nothing: defaults (nothing is sent) */
    int rc;
    if (s) {
        char dir[4096], path[8192];
        config_dir(cfg, dir, sizeof(dir));
        if (s[0] == '/')
            snprintf(path, sizeof(path), "%s", s);
        else
            snprintf(path, sizeof(path), "%s/%s", dir, s);
        rc = notify_config_load(&cfg->alerting, path, w->errors);
    } else if (v->type == YAML_MAPPING_NODE) {
        rc = notify_config_parse_node(&cfg->alerting, w->file, w->doc, v, w->errors);
    } else {
        errat(w, v, "alerting: want a file path or Alertmanager's layout (route, receivers, ...)");
        return;
    }
    if (rc < 0)
        w->nerr++;
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
    else if (strcmp(key, "logs") == 0)
        on_logs(w, v, cfg);
    else if (strcmp(key, "rules") == 0)
        walk_map(w, v, "rules", cfg, on_rules);
    else if (strcmp(key, "alerting") == 0)
        on_alerting(w, v, cfg);
    else if (strcmp(key, "probes") == 0) {
        probe_config_release(&cfg->probes);
        probe_config_init(&cfg->probes);
        if (probe_config_parse_node(&cfg->probes, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "statsd") == 0) {
        statsd_config_release(&cfg->statsd);
        statsd_config_defaults(&cfg->statsd);
        if (statsd_config_parse_node(&cfg->statsd, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "scrape") == 0) {
        scrape_config_release(&cfg->scrape);
        scrape_config_init(&cfg->scrape);
        if (scrape_config_parse_node(&cfg->scrape, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "queues") == 0) {
        queue_config_release(&cfg->queues);
        queue_config_init(&cfg->queues);
        if (queue_config_parse_node(&cfg->queues, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "exec") == 0) {
        exec_config_release(&cfg->exec);
        exec_config_init(&cfg->exec);
        if (exec_config_parse_node(&cfg->exec, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "services") == 0) {
        if (config__services_parse(cfg, w->file, w->doc, v, w->errors) < 0)
            w->nerr++;
    } else if (strcmp(key, "rule_files") == 0) {
        for (size_t i = 0; i < cfg->nrule_files; i++)
            free(cfg->rule_files[i]);
        free(cfg->rule_files);
        cfg->rule_files = NULL;
        cfg->nrule_files = 0;
        if (!(v->type == YAML_SCALAR_NODE && !*scalar(v)))
            get_strings(w, v, "rule_files", &cfg->rule_files, &cfg->nrule_files);
    } else if (strcmp(key, "data_dir") == 0)
        get_string(w, v, "data_dir", &cfg->data_dir);
    else if (strcmp(key, "log_level") == 0) {
        if (get_string(w, v, "log_level", &cfg->log_level) == 0 &&
            log_level_parse(cfg->log_level) < 0)
            errat(w, v, "log_level: want debug, info, warn or error");
    } else
        errat(w, k,
              "unknown key '%s' (known: http, collect, storage, logs, probes, statsd, scrape, "
              "queues, exec, services, rule_files, rules, alerting, data_dir, log_level)",
              key);
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
    cfg->rules.interval_ms = 1000;
    cfg->rules.resend_delay_ms = 60000;
    cfg->rules.outage_tolerance_ms = 3600000;
    cfg->rules.flap_threshold = 3;
    cfg->rules.flap_window_ms = 3600000;
    cfg->rules.flap_quiet_ms = 30 * 60000;
    cfg->rules.default_pack = 1;
    notify_config_defaults(&cfg->alerting);
    probe_config_init(&cfg->probes);
    statsd_config_defaults(&cfg->statsd);
    scrape_config_init(&cfg->scrape);
    queue_config_init(&cfg->queues);
    exec_config_init(&cfg->exec);
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
    free(cfg->collect.vmstat_fields);
    free(cfg->collect.netstat_fields);
    for (size_t i = 0; i < cfg->collect.ndisable; i++)
        free(cfg->collect.disable[i]);
    free(cfg->collect.disable);
    for (size_t i = 0; i < cfg->nlogs; i++)
        ingest_log_release(&cfg->logs[i]);
    free(cfg->logs);
    for (size_t i = 0; i < cfg->nrule_files; i++)
        free(cfg->rule_files[i]);
    free(cfg->rule_files);
    for (size_t i = 0; i < cfg->rules.nexternal; i++) {
        free(cfg->rules.external_names[i]);
        free(cfg->rules.external_values[i]);
    }
    free(cfg->rules.external_names);
    free(cfg->rules.external_values);
    for (size_t i = 0; i < cfg->rules.ndisable; i++)
        free(cfg->rules.disable[i]);
    free(cfg->rules.disable);
    notify_config_release(&cfg->alerting);
    probe_config_release(&cfg->probes);
    statsd_config_release(&cfg->statsd);
    scrape_config_release(&cfg->scrape);
    queue_config_release(&cfg->queues);
    exec_config_release(&cfg->exec);
    config__services_release(cfg);
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
    if (!w.nerr && config__services_apply(cfg, path, errors) < 0)
        w.nerr++;
    if (w.nerr)
        rc = -1;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
