/*
 * config.c: the notification config in Alertmanager's own YAML layout
 * (global, route, receivers, inhibit_rules, templates), read with libyaml's
 * document API so every problem is reported as file:line:col. Unknown keys
 * are errors; Alertmanager keys sitrep does not implement are errors that
 * say so (a silently ignored `mute_time_intervals` would page at night).
 * Presentation keys that would need Go templates accept literal text only.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_ROUTE_DEPTH 32

struct walk {
    const char *file;
    yaml_document_t *doc;
    struct sbuf *errors;
    int nerr;
    struct notify_config *cfg;
    /* global: defaults for receivers, applied after the whole file is read */
    char *smtp_from, *smtp_smarthost, *smtp_hello, *smtp_user, *smtp_pass, *smtp_pass_file,
        *smtp_identity;
    int smtp_require_tls; /* -1: unset */
    char *slack_api_url, *slack_api_url_file;
    struct notify_http http; /* global.http_config */
    int has_global_http;
};

static void errat(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errat(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    struct sbuf msg;
    sbuf_init(&msg, 4096);
    va_start(ap, fmt);
    sbuf_vaddf(&msg, fmt, ap);
    va_end(ap);
    /* One line per problem, whatever bytes the file's keys and values hold. */
    sbuf_addf(w->errors, "%s:%zu:%zu: ", w->file, n->start_mark.line + 1, n->start_mark.column + 1);
    for (const char *p = msg.buf; *p; p++) {
        if (*p == '\n')
            sbuf_adds(w->errors, "\\n");
        else
            sbuf_addc(w->errors, (unsigned char)*p < 0x20 ? '?' : *p);
    }
    sbuf_addc(w->errors, '\n');
    sbuf_release(&msg);
    w->nerr++;
}

static yaml_node_t *node(struct walk *w, int idx)
{
    return yaml_document_get_node(w->doc, idx);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* `key:` with nothing, `~` or `null`. */
static int is_null(const yaml_node_t *n)
{
    const char *s = scalar(n);
    if (!s)
        return 0;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

typedef void (*key_fn)(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx);

/* Call fn for each key of a mapping, reporting non-string and duplicate keys. */
static int each_key(struct walk *w, yaml_node_t *map, const char *where, key_fn fn, void *ctx)
{
    if (is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE) {
        errat(w, map, "%s: want a mapping of keys", where);
        return -1;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(w, p->key), *v = node(w, p->value);
        const char *key = scalar(k);
        if (!key) {
            errat(w, k, "%s: keys must be plain strings", where);
            continue;
        }
        int dup = 0;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !dup; q++) {
            const char *prev = scalar(node(w, q->key));
            dup = prev && strcmp(prev, key) == 0;
        }
        if (dup) {
            errat(w, k, "%s: duplicate key '%s'", where, key);
            continue;
        }
        fn(w, key, k, v, ctx);
    }
    return 0;
}

static int get_str(struct walk *w, yaml_node_t *v, const char *key, char **dst)
{
    const char *s = scalar(v);
    if (!s) {
        errat(w, v, "%s: want a string", key);
        return -1;
    }
    free(*dst);
    *dst = xstrdup(s);
    return 0;
}

/* A string that Alertmanager would render as a template: literal text only here. */
static int get_text(struct walk *w, yaml_node_t *v, const char *key, char **dst)
{
    if (get_str(w, v, key, dst) < 0)
        return -1;
    if (strstr(*dst, "{{")) {
        errat(w, v,
              "%s: Go templates are not supported by sitrep; use literal text or remove "
              "the key for the built-in text",
              key);
        return -1;
    }
    return 0;
}

static int get_bool(struct walk *w, yaml_node_t *v, const char *key, int *dst)
{
    const char *s = scalar(v);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)) {
        *dst = 1;
        return 0;
    }
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)) {
        *dst = 0;
        return 0;
    }
    errat(w, v, "%s: want true or false", key);
    return -1;
}

static int get_duration(struct walk *w, yaml_node_t *v, const char *key, long long lo,
                        long long *dst)
{
    const char *s = scalar(v);
    long long ms;
    if (!s || notify__duration_parse(s, &ms) < 0) {
        errat(w, v, "%s: want a duration such as 30s, 5m, 1h30m or 4h", key);
        return -1;
    }
    if (ms < lo) {
        char b[32];
        notify__duration_format(lo, b);
        errat(w, v, "%s: must be at least %s", key, b);
        return -1;
    }
    *dst = ms;
    return 0;
}

static int get_uint(struct walk *w, yaml_node_t *v, const char *key, unsigned lo, unsigned hi,
                    unsigned *dst)
{
    const char *s = scalar(v);
    char *end;
    errno = 0;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || n < (long long)lo || n > (long long)hi) {
        errat(w, v, "%s: want a whole number from %u to %u", key, lo, hi);
        return -1;
    }
    *dst = (unsigned)n;
    return 0;
}

static int label_name_ok(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* A list of strings. */
static int get_strlist(struct walk *w, yaml_node_t *v, const char *key, char ***out, size_t *n)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "%s: want a list of strings", key);
        return -1;
    }
    int rc = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(w, *it);
        if (!scalar(e)) {
            errat(w, e, "%s: want a string", key);
            rc = -1;
            continue;
        }
        *out = xrealloc(*out, (*n + 2) * sizeof(**out));
        (*out)[(*n)++] = xstrdup(scalar(e));
        (*out)[*n] = NULL;
    }
    return rc;
}

/* `matchers:` as Alertmanager writes them: a list of matcher strings. */
static void get_matchers(struct walk *w, yaml_node_t *v, const char *key,
                         struct notify_matchers *ms)
{
    if (is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "%s: want a list of matchers such as - severity=\"page\"", key);
        return;
    }
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = node(w, *it);
        char err[256];
        if (!scalar(e)) {
            errat(w, e, "%s: want a matcher string such as severity=\"page\"", key);
            continue;
        }
        if (notify_matchers_parse(scalar(e), ms, err, sizeof(err)) < 0)
            errat(w, e, "%s: %s", key, err);
    }
}

/* The deprecated `match:` (equality) and `match_re:` (regex) maps. */
static void get_match_map(struct walk *w, yaml_node_t *v, const char *key, int regex,
                          struct notify_matchers *ms)
{
    if (is_null(v))
        return;
    if (v->type != YAML_MAPPING_NODE) {
        errat(w, v, "%s: want a mapping of label: %s", key, regex ? "regex" : "value");
        return;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(w, p->key), *val = node(w, p->value);
        char err[256];
        if (!scalar(k) || !label_name_ok(scalar(k))) {
            errat(w, k, "%s: want a label name", key);
            continue;
        }
        if (!scalar(val)) {
            errat(w, val, "%s.%s: want a string", key, scalar(k));
            continue;
        }
        struct notify_matcher m = {.name = xstrdup(scalar(k)),
                                   .value = xstrdup(scalar(val)),
                                   .op = regex ? NOTIFY_RE : NOTIFY_EQ};
        if (notify__matcher_compile(&m, err, sizeof(err)) < 0) {
            errat(w, val, "%s.%s: %s", key, scalar(k), err);
            free(m.name);
            free(m.value);
            continue;
        }
        ms->v = xrealloc(ms->v, (ms->n + 1) * sizeof(*ms->v));
        ms->v[ms->n++] = m;
    }
}

/* ---- http_config ---- */

struct http_ctx {
    struct notify_http *h;
    const char *where;
};

static void on_basic_auth(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *ctx)
{
    struct http_ctx *c = ctx;
    if (strcmp(key, "username") == 0)
        get_str(w, v, "basic_auth.username", &c->h->basic_user);
    else if (strcmp(key, "password") == 0)
        get_str(w, v, "basic_auth.password", &c->h->basic_password);
    else if (strcmp(key, "password_file") == 0)
        get_str(w, v, "basic_auth.password_file", &c->h->basic_password_file);
    else
        errat(w, k, "%s.basic_auth: unknown key '%s' (known: username, password, password_file)",
              c->where, key);
}

static void on_authorization(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                             void *ctx)
{
    struct http_ctx *c = ctx;
    if (strcmp(key, "type") == 0)
        get_str(w, v, "authorization.type", &c->h->auth_type);
    else if (strcmp(key, "credentials") == 0)
        get_str(w, v, "authorization.credentials", &c->h->bearer_token);
    else if (strcmp(key, "credentials_file") == 0)
        get_str(w, v, "authorization.credentials_file", &c->h->bearer_token_file);
    else
        errat(w, k,
              "%s.authorization: unknown key '%s' (known: type, credentials, "
              "credentials_file)",
              c->where, key);
}

static void on_tls(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct http_ctx *c = ctx;
    if (strcmp(key, "ca_file") == 0)
        get_str(w, v, "tls_config.ca_file", &c->h->ca_file);
    else if (strcmp(key, "cert_file") == 0)
        get_str(w, v, "tls_config.cert_file", &c->h->cert_file);
    else if (strcmp(key, "key_file") == 0)
        get_str(w, v, "tls_config.key_file", &c->h->key_file);
    else if (strcmp(key, "insecure_skip_verify") == 0)
        get_bool(w, v, "tls_config.insecure_skip_verify", &c->h->insecure_skip_verify);
    else if (strcmp(key, "min_version") == 0 || strcmp(key, "max_version") == 0)
        ; /* curl negotiates the best version both sides have */
    else
        errat(w, k,
              "%s.tls_config: unknown or unsupported key '%s' (known: ca_file, cert_file, "
              "key_file, insecure_skip_verify)",
              c->where, key);
}

static void on_http(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct http_ctx *c = ctx;
    if (strcmp(key, "basic_auth") == 0)
        each_key(w, v, "basic_auth", on_basic_auth, ctx);
    else if (strcmp(key, "authorization") == 0)
        each_key(w, v, "authorization", on_authorization, ctx);
    else if (strcmp(key, "bearer_token") == 0)
        get_str(w, v, "bearer_token", &c->h->bearer_token);
    else if (strcmp(key, "bearer_token_file") == 0)
        get_str(w, v, "bearer_token_file", &c->h->bearer_token_file);
    else if (strcmp(key, "tls_config") == 0)
        each_key(w, v, "tls_config", on_tls, ctx);
    else if (strcmp(key, "proxy_url") == 0)
        get_str(w, v, "proxy_url", &c->h->proxy_url);
    else if (strcmp(key, "follow_redirects") == 0)
        get_bool(w, v, "follow_redirects", &c->h->follow_redirects);
    else if (strcmp(key, "enable_http2") == 0) {
        int dummy;
        get_bool(w, v, "enable_http2", &dummy); /* curl negotiates it */
    } else
        errat(w, k,
              "%s.http_config: unknown or unsupported key '%s' (known: basic_auth, "
              "authorization, bearer_token, bearer_token_file, tls_config, proxy_url, "
              "follow_redirects, enable_http2)",
              c->where, key);
}

static void http_release(struct notify_http *h)
{
    free(h->bearer_token);
    free(h->bearer_token_file);
    free(h->auth_type);
    free(h->basic_user);
    free(h->basic_password);
    free(h->basic_password_file);
    free(h->ca_file);
    free(h->cert_file);
    free(h->key_file);
    free(h->proxy_url);
    memset(h, 0, sizeof(*h));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void http_copy(struct notify_http *dst, const struct notify_http *src)
{
    dst->bearer_token = dup_or_null(src->bearer_token);
    dst->bearer_token_file = dup_or_null(src->bearer_token_file);
    dst->auth_type = dup_or_null(src->auth_type);
    dst->basic_user = dup_or_null(src->basic_user);
    dst->basic_password = dup_or_null(src->basic_password);
    dst->basic_password_file = dup_or_null(src->basic_password_file);
    dst->ca_file = dup_or_null(src->ca_file);
    dst->cert_file = dup_or_null(src->cert_file);
    dst->key_file = dup_or_null(src->key_file);
    dst->insecure_skip_verify = src->insecure_skip_verify;
    dst->proxy_url = dup_or_null(src->proxy_url);
    dst->follow_redirects = src->follow_redirects;
}

/* ---- receivers ---- */

struct integ_ctx {
    struct notify_integration *it;
    const char *where; /* "receivers[0].webhook_configs[1]" */
    int has_http;
    int has_send_resolved;
    yaml_node_t *map;
};

/* Keys every integration kind takes. Returns 1 if key was one of them. */
static int common_key(struct walk *w, struct integ_ctx *c, const char *key, yaml_node_t *v)
{
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (strcmp(key, "send_resolved") == 0) {
        get_bool(w, v, name, &c->it->send_resolved);
        c->has_send_resolved = 1;
    } else if (strcmp(key, "timeout") == 0) {
        long long ms;
        if (get_duration(w, v, name, 1, &ms) == 0)
            c->it->timeout_ms = ms;
    } else if (strcmp(key, "http_config") == 0 && c->it->kind != NOTIFY_EXEC &&
               c->it->kind != NOTIFY_EMAIL) {
        struct http_ctx hc = {&c->it->http, c->where};
        c->has_http = 1;
        c->it->http.follow_redirects = 1;
        each_key(w, v, name, on_http, &hc);
    } else {
        return 0;
    }
    return 1;
}

static void on_webhook(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (common_key(w, c, key, v))
        return;
    if (strcmp(key, "url") == 0)
        get_text(w, v, name, &c->it->url);
    else if (strcmp(key, "url_file") == 0)
        get_str(w, v, name, &c->it->url_file);
    else if (strcmp(key, "max_alerts") == 0)
        get_uint(w, v, name, 0, 1000000, &c->it->max_alerts);
    else
        errat(w, k,
              "%s: unknown or unsupported key '%s' (known: url, url_file, send_resolved, "
              "max_alerts, timeout, http_config)",
              c->where, key);
}

static void on_slack(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (common_key(w, c, key, v))
        return;
    if (strcmp(key, "api_url") == 0)
        get_str(w, v, name, &c->it->url);
    else if (strcmp(key, "api_url_file") == 0)
        get_str(w, v, name, &c->it->url_file);
    else if (strcmp(key, "channel") == 0)
        get_text(w, v, name, &c->it->channel);
    else if (strcmp(key, "username") == 0)
        get_text(w, v, name, &c->it->username);
    else if (strcmp(key, "icon_emoji") == 0)
        get_text(w, v, name, &c->it->icon_emoji);
    else if (strcmp(key, "icon_url") == 0)
        get_text(w, v, name, &c->it->icon_url);
    else if (strcmp(key, "title") == 0)
        get_text(w, v, name, &c->it->title);
    else if (strcmp(key, "text") == 0)
        get_text(w, v, name, &c->it->text);
    else
        errat(w, k,
              "%s: unknown or unsupported key '%s' (known: api_url, api_url_file, channel, "
              "username, icon_emoji, icon_url, title, text, send_resolved, timeout, "
              "http_config)",
              c->where, key);
}

static void on_email_headers(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                             void *ctx)
{
    struct integ_ctx *c = ctx;
    char *val = NULL;
    if (strchr(key, ':') || strchr(key, '\n') || strchr(key, '\r') || !*key) {
        errat(w, k, "%s.headers: bad header name '%s'", c->where, key);
        return;
    }
    if (get_text(w, v, "headers", &val) < 0)
        return;
    if (strchr(val, '\n') || strchr(val, '\r')) {
        errat(w, v, "%s.headers.%s: a header value is one line", c->where, key);
        free(val);
        return;
    }
    struct notify_integration *it = c->it;
    it->headers = xrealloc(it->headers, (it->nheaders + 1) * sizeof(*it->headers));
    it->headers[it->nheaders].name = xstrdup(key);
    it->headers[it->nheaders++].value = val;
}

static void on_email(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    struct notify_integration *it = c->it;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (common_key(w, c, key, v))
        return;
    if (strcmp(key, "to") == 0)
        get_text(w, v, name, &it->to);
    else if (strcmp(key, "from") == 0)
        get_text(w, v, name, &it->from);
    else if (strcmp(key, "smarthost") == 0)
        get_str(w, v, name, &it->smarthost);
    else if (strcmp(key, "hello") == 0)
        get_str(w, v, name, &it->hello);
    else if (strcmp(key, "auth_username") == 0)
        get_str(w, v, name, &it->auth_username);
    else if (strcmp(key, "auth_password") == 0)
        get_str(w, v, name, &it->auth_password);
    else if (strcmp(key, "auth_password_file") == 0)
        get_str(w, v, name, &it->auth_password_file);
    else if (strcmp(key, "auth_identity") == 0)
        get_str(w, v, name, &it->auth_identity);
    else if (strcmp(key, "require_tls") == 0)
        get_bool(w, v, name, &it->require_tls);
    else if (strcmp(key, "tls_config") == 0) {
        struct http_ctx hc = {&it->http, c->where};
        each_key(w, v, name, on_tls, &hc);
    } else if (strcmp(key, "headers") == 0)
        each_key(w, v, name, on_email_headers, c);
    else if (strcmp(key, "html") == 0) {
        if (!is_null(v) && !(scalar(v) && !*scalar(v)))
            errat(w, v, "%s: sitrep sends plain-text mail; set html: '' or remove it", name);
    } else
        errat(w, k,
              "%s: unknown or unsupported key '%s' (known: to, from, smarthost, hello, "
              "auth_username, auth_password, auth_password_file, auth_identity, require_tls, "
              "tls_config, headers, send_resolved, timeout)",
              c->where, key);
}

static void on_am(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (common_key(w, c, key, v))
        return;
    if (strcmp(key, "url") == 0)
        get_str(w, v, name, &c->it->url);
    else
        errat(w, k, "%s: unknown key '%s' (known: url, send_resolved, timeout, http_config)",
              c->where, key);
}

static void on_exec_env(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    struct notify_integration *it = c->it;
    char *val = NULL;
    if (!*key || strchr(key, '=')) {
        errat(w, k, "%s.env: bad variable name '%s'", c->where, key);
        return;
    }
    if (get_str(w, v, "env", &val) < 0)
        return;
    it->env = xrealloc(it->env, (it->nenv + 1) * sizeof(*it->env));
    it->env[it->nenv].name = xstrdup(key);
    it->env[it->nenv++].value = val;
}

static void on_exec(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct integ_ctx *c = ctx;
    struct notify_integration *it = c->it;
    char name[160];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (common_key(w, c, key, v))
        return;
    if (strcmp(key, "command") == 0) {
        if (scalar(v)) {
            it->argv = xcalloc(2, sizeof(*it->argv));
            it->argv[0] = xstrdup(scalar(v));
            it->argc = 1;
        } else {
            get_strlist(w, v, name, &it->argv, &it->argc);
        }
        if (!it->argc || !*it->argv[0])
            errat(w, v, "%s: want a program and its arguments, e.g. [/usr/local/bin/fix, --now]",
                  name);
    } else if (strcmp(key, "env") == 0) {
        each_key(w, v, name, on_exec_env, c);
    } else if (strcmp(key, "max_per_hour") == 0) {
        get_uint(w, v, name, 1, 3600, &it->max_per_hour);
    } else {
        errat(w, k,
              "%s: unknown key '%s' (known: command, env, timeout, max_per_hour, "
              "send_resolved)",
              c->where, key);
    }
}

static const struct {
    const char *key;
    enum notify_kind kind;
    key_fn fn;
    int send_resolved; /* Alertmanager's default per kind */
    long long timeout_ms;
} kinds[] = {
    {"webhook_configs", NOTIFY_WEBHOOK, on_webhook, 1, 10000},
    {"slack_configs", NOTIFY_SLACK, on_slack, 0, 10000},
    {"email_configs", NOTIFY_EMAIL, on_email, 0, 30000},
    {"alertmanager_configs", NOTIFY_ALERTMANAGER, on_am, 1, 10000},
    {"exec_configs", NOTIFY_EXEC, on_exec, 0, 30000},
};

/* Alertmanager receivers sitrep does not implement: named in the error. */
static const char *const unsupported_receivers[] = {
    "pagerduty_configs",  "opsgenie_configs",   "pushover_configs",   "victorops_configs",
    "wechat_configs",     "sns_configs",        "telegram_configs",   "webex_configs",
    "msteams_configs",    "msteamsv2_configs",  "discord_configs",    "jira_configs",
    "rocketchat_configs", "incidentio_configs", "mattermost_configs",
};

/* Check an integration once its keys and the global defaults are in. */
static void check_integration(struct walk *w, struct notify_integration *it, yaml_node_t *map,
                              const char *where)
{
    switch (it->kind) {
    case NOTIFY_WEBHOOK:
    case NOTIFY_SLACK:
    case NOTIFY_ALERTMANAGER:
        if (!it->url && !it->url_file)
            errat(w, map, "%s: %s missing", where,
                  it->kind == NOTIFY_SLACK ? "api_url (or global.slack_api_url)" : "url");
        else if (it->url && it->url_file)
            errat(w, map, "%s: give url or url_file, not both", where);
        else if (it->url && strncmp(it->url, "http://", 7) != 0 &&
                 strncmp(it->url, "https://", 8) != 0)
            errat(w, map, "%s: url must start with http:// or https://", where);
        break;
    case NOTIFY_EMAIL:
        if (!it->to)
            errat(w, map, "%s: to missing", where);
        if (!it->from)
            errat(w, map, "%s: from missing (or global.smtp_from)", where);
        if (!it->smarthost)
            errat(w, map, "%s: smarthost missing (or global.smtp_smarthost)", where);
        else if (!strrchr(it->smarthost, ':'))
            errat(w, map, "%s: smarthost: want HOST:PORT, e.g. smtp.example.org:587", where);
        if (it->auth_password && it->auth_password_file)
            errat(w, map, "%s: give auth_password or auth_password_file, not both", where);
        break;
    case NOTIFY_EXEC:
        if (!it->argc)
            errat(w, map, "%s: command missing", where);
        break;
    }
    if (it->http.basic_password && it->http.basic_password_file)
        errat(w, map, "%s: basic_auth: give password or password_file, not both", where);
    if ((it->http.bearer_token || it->http.bearer_token_file) && it->http.basic_user)
        errat(w, map, "%s: http_config: give basic_auth or a bearer token, not both", where);
}

struct recv_ctx {
    struct notify_receiver *r;
    const char *where;
    yaml_node_t *name_node;
};

static void on_receiver(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct recv_ctx *c = ctx;
    if (strcmp(key, "name") == 0) {
        get_str(w, v, "name", &c->r->name);
        c->name_node = v;
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        if (strcmp(key, kinds[i].key) != 0)
            continue;
        if (is_null(v))
            return;
        if (v->type != YAML_SEQUENCE_NODE) {
            errat(w, v, "%s.%s: want a list", c->where, key);
            return;
        }
        size_t j = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++, j++) {
            yaml_node_t *e = node(w, *it);
            char where[128];
            snprintf(where, sizeof(where), "%s.%s[%zu]", c->where, key, j);
            struct notify_receiver *r = c->r;
            r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
            struct notify_integration *in = &r->v[r->n++];
            memset(in, 0, sizeof(*in));
            in->kind = kinds[i].kind;
            in->send_resolved = kinds[i].send_resolved;
            in->timeout_ms = kinds[i].timeout_ms;
            in->require_tls = -1;
            in->http.follow_redirects = 1;
            in->max_per_hour = 6;
            struct integ_ctx ic = {.it = in, .where = where, .map = e};
            if (e->type != YAML_MAPPING_NODE) {
                errat(w, e, "%s: want a mapping", where);
                continue;
            }
            each_key(w, e, where, kinds[i].fn, &ic);
            /* Global defaults (Alertmanager's global section). */
            if (!ic.has_http && w->has_global_http &&
                (in->kind == NOTIFY_WEBHOOK || in->kind == NOTIFY_SLACK ||
                 in->kind == NOTIFY_ALERTMANAGER))
                http_copy(&in->http, &w->http);
            if (in->kind == NOTIFY_SLACK && !in->url && !in->url_file) {
                in->url = dup_or_null(w->slack_api_url);
                in->url_file = dup_or_null(w->slack_api_url_file);
            }
            if (in->kind == NOTIFY_EMAIL) {
                if (!in->from)
                    in->from = dup_or_null(w->smtp_from);
                if (!in->smarthost)
                    in->smarthost = dup_or_null(w->smtp_smarthost);
                if (!in->hello)
                    in->hello = dup_or_null(w->smtp_hello);
                if (!in->auth_username) {
                    in->auth_username = dup_or_null(w->smtp_user);
                    if (!in->auth_password && !in->auth_password_file) {
                        in->auth_password = dup_or_null(w->smtp_pass);
                        in->auth_password_file = dup_or_null(w->smtp_pass_file);
                    }
                }
                if (!in->auth_identity)
                    in->auth_identity = dup_or_null(w->smtp_identity);
                if (in->require_tls < 0)
                    in->require_tls = w->smtp_require_tls < 0 ? 1 : w->smtp_require_tls;
            }
            if (in->require_tls < 0)
                in->require_tls = 1;
            check_integration(w, in, e, where);
        }
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(unsupported_receivers); i++)
        if (strcmp(key, unsupported_receivers[i]) == 0) {
            errat(w, k,
                  "%s: %s are not supported by sitrep (use webhook_configs, slack_configs, "
                  "email_configs, alertmanager_configs to forward to an Alertmanager that has "
                  "them, or exec_configs)",
                  c->where, key);
            return;
        }
    errat(w, k,
          "%s: unknown key '%s' (known: name, webhook_configs, slack_configs, email_configs, "
          "alertmanager_configs, exec_configs)",
          c->where, key);
}

static void on_receivers(struct walk *w, yaml_node_t *v)
{
    struct notify_config *cfg = w->cfg;
    if (is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "receivers: want a list of {name, ..._configs}");
        return;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = node(w, *it);
        char where[48];
        snprintf(where, sizeof(where), "receivers[%zu]", i);
        if (e->type != YAML_MAPPING_NODE) {
            errat(w, e, "%s: want a mapping with a name", where);
            continue;
        }
        cfg->receivers = xrealloc(cfg->receivers, (cfg->nreceivers + 1) * sizeof(*cfg->receivers));
        struct notify_receiver *r = &cfg->receivers[cfg->nreceivers++];
        memset(r, 0, sizeof(*r));
        struct recv_ctx rc = {.r = r, .where = where};
        each_key(w, e, where, on_receiver, &rc);
        if (!r->name || !*r->name) {
            errat(w, e, "%s: name missing", where);
            continue;
        }
        for (size_t k = 0; k + 1 < cfg->nreceivers; k++)
            if (cfg->receivers[k].name && strcmp(cfg->receivers[k].name, r->name) == 0)
                errat(w, rc.name_node ? rc.name_node : e, "%s: receiver '%s' is defined twice",
                      where, r->name);
    }
}

/* ---- route ---- */

struct route_ctx {
    struct notify_route *r;
    int depth;
    yaml_node_t *group_by_node;
};

static void parse_route(struct walk *w, yaml_node_t *v, struct notify_route *r, int depth);

static void on_route(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct route_ctx *c = ctx;
    struct notify_route *r = c->r;
    long long ms;
    if (strcmp(key, "receiver") == 0) {
        get_str(w, v, "route.receiver", &r->receiver);
    } else if (strcmp(key, "group_by") == 0) {
        c->group_by_node = v;
        r->group_by_set = 1;
        char **names = NULL;
        size_t n = 0;
        get_strlist(w, v, "route.group_by", &names, &n);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(names[i], "...") == 0) {
                if (n != 1)
                    errat(w, v, "route.group_by: '...' groups by all labels and must be alone");
                r->group_by_all = 1;
            } else if (!label_name_ok(names[i])) {
                errat(w, v, "route.group_by: '%s' is not a label name", names[i]);
            }
            for (size_t j = 0; j < i; j++)
                if (strcmp(names[i], names[j]) == 0)
                    errat(w, v, "route.group_by: '%s' listed twice", names[i]);
        }
        if (r->group_by_all) {
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
        } else {
            r->group_by = names;
            r->ngroup_by = n;
        }
    } else if (strcmp(key, "group_wait") == 0) {
        if (get_duration(w, v, "route.group_wait", 0, &ms) == 0)
            r->group_wait_ms = ms;
    } else if (strcmp(key, "group_interval") == 0) {
        if (get_duration(w, v, "route.group_interval", 1, &ms) == 0)
            r->group_interval_ms = ms;
    } else if (strcmp(key, "repeat_interval") == 0) {
        if (get_duration(w, v, "route.repeat_interval", 1, &ms) == 0)
            r->repeat_interval_ms = ms;
    } else if (strcmp(key, "continue") == 0) {
        get_bool(w, v, "route.continue", &r->cont);
    } else if (strcmp(key, "matchers") == 0) {
        get_matchers(w, v, "route.matchers", &r->matchers);
    } else if (strcmp(key, "match") == 0) {
        get_match_map(w, v, "route.match", 0, &r->matchers);
    } else if (strcmp(key, "match_re") == 0) {
        get_match_map(w, v, "route.match_re", 1, &r->matchers);
    } else if (strcmp(key, "routes") == 0) {
        if (is_null(v))
            return;
        if (v->type != YAML_SEQUENCE_NODE) {
            errat(w, v, "route.routes: want a list of routes");
            return;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        r->routes = xcalloc(n ? n : 1, sizeof(*r->routes));
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++)
            parse_route(w, node(w, *it), &r->routes[r->nroutes++], c->depth + 1);
    } else if (strcmp(key, "mute_time_intervals") == 0 ||
               strcmp(key, "active_time_intervals") == 0) {
        if (!is_null(v) && !(v->type == YAML_SEQUENCE_NODE &&
                             v->data.sequence.items.top == v->data.sequence.items.start))
            errat(w, k, "route.%s: time intervals are not supported by sitrep", key);
    } else {
        errat(w, k,
              "route: unknown or unsupported key '%s' (known: receiver, group_by, group_wait, "
              "group_interval, repeat_interval, continue, matchers, match, match_re, routes)",
              key);
    }
}

static void parse_route(struct walk *w, yaml_node_t *v, struct notify_route *r, int depth)
{
    r->group_wait_ms = r->group_interval_ms = r->repeat_interval_ms = NOTIFY_UNSET;
    r->line = (int)v->start_mark.line + 1;
    r->col = (int)v->start_mark.column + 1;
    if (depth > MAX_ROUTE_DEPTH) {
        errat(w, v, "route: nested deeper than %d levels", MAX_ROUTE_DEPTH);
        return;
    }
    if (v->type != YAML_MAPPING_NODE) {
        errat(w, v, "route: want a mapping");
        return;
    }
    struct route_ctx c = {.r = r, .depth = depth};
    each_key(w, v, "route", on_route, &c);
}

/* Every receiver a route names must exist. */
static void check_route_receivers(struct walk *w, const struct notify_route *r)
{
    if (r->receiver) {
        size_t i = 0;
        while (i < w->cfg->nreceivers &&
               !(w->cfg->receivers[i].name && strcmp(w->cfg->receivers[i].name, r->receiver) == 0))
            i++;
        if (i == w->cfg->nreceivers) {
            yaml_node_t at = {
                .start_mark = {.line = (size_t)r->line - 1, .column = (size_t)r->col - 1}};
            errat(w, &at, "route: receiver '%s' is not defined in receivers", r->receiver);
        }
    }
    for (size_t i = 0; i < r->nroutes; i++)
        check_route_receivers(w, &r->routes[i]);
}

/* ---- inhibit_rules ---- */

struct inhibit_ctx {
    struct notify_inhibit_rule *r;
    const char *where;
};

static void on_inhibit(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct inhibit_ctx *c = ctx;
    char name[96];
    snprintf(name, sizeof(name), "%s.%s", c->where, key);
    if (strcmp(key, "source_matchers") == 0)
        get_matchers(w, v, name, &c->r->source);
    else if (strcmp(key, "target_matchers") == 0)
        get_matchers(w, v, name, &c->r->target);
    else if (strcmp(key, "source_match") == 0)
        get_match_map(w, v, name, 0, &c->r->source);
    else if (strcmp(key, "source_match_re") == 0)
        get_match_map(w, v, name, 1, &c->r->source);
    else if (strcmp(key, "target_match") == 0)
        get_match_map(w, v, name, 0, &c->r->target);
    else if (strcmp(key, "target_match_re") == 0)
        get_match_map(w, v, name, 1, &c->r->target);
    else if (strcmp(key, "equal") == 0) {
        get_strlist(w, v, name, &c->r->equal, &c->r->nequal);
        for (size_t i = 0; i < c->r->nequal; i++)
            if (!label_name_ok(c->r->equal[i]))
                errat(w, v, "%s: '%s' is not a label name", name, c->r->equal[i]);
    } else if (strcmp(key, "name") == 0) {
        char *ignored = NULL;
        get_str(w, v, name, &ignored);
        free(ignored);
    } else
        errat(w, k,
              "%s: unknown key '%s' (known: source_matchers, target_matchers, equal, "
              "source_match, source_match_re, target_match, target_match_re)",
              c->where, key);
}

static void on_inhibit_rules(struct walk *w, yaml_node_t *v)
{
    struct notify_config *cfg = w->cfg;
    if (is_null(v))
        return;
    if (v->type != YAML_SEQUENCE_NODE) {
        errat(w, v, "inhibit_rules: want a list of rules");
        return;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *e = node(w, *it);
        char where[48];
        snprintf(where, sizeof(where), "inhibit_rules[%zu]", i);
        cfg->inhibit = xrealloc(cfg->inhibit, (cfg->ninhibit + 1) * sizeof(*cfg->inhibit));
        struct notify_inhibit_rule *r = &cfg->inhibit[cfg->ninhibit++];
        memset(r, 0, sizeof(*r));
        struct inhibit_ctx c = {r, where};
        if (e->type != YAML_MAPPING_NODE) {
            errat(w, e, "%s: want a mapping", where);
            continue;
        }
        each_key(w, e, where, on_inhibit, &c);
        if (!r->target.n)
            errat(w, e, "%s: target_matchers missing (an empty target would mute every alert)",
                  where);
    }
}

/* ---- global, outbox, limits ---- */

static void on_global(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    (void)ctx;
    /* Keys of Alertmanager's global section that only configure receivers sitrep lacks. */
    static const char *const ignored[] = {
        "pagerduty_url",          "opsgenie_api_url",      "opsgenie_api_key",
        "opsgenie_api_key_file",  "wechat_api_url",        "wechat_api_secret",
        "wechat_api_corp_id",     "victorops_api_url",     "victorops_api_key",
        "victorops_api_key_file", "telegram_api_url",      "webex_api_url",
        "jira_api_url",           "rocketchat_api_url",    "rocketchat_token",
        "rocketchat_token_id",    "rocketchat_token_file", "rocketchat_token_id_file",
        "smtp_auth_secret",       "smtp_auth_secret_file",
    };
    struct notify_config *cfg = w->cfg;
    long long ms;
    if (strcmp(key, "resolve_timeout") == 0) {
        if (get_duration(w, v, "global.resolve_timeout", 1000, &ms) == 0)
            cfg->resolve_timeout_ms = ms;
    } else if (strcmp(key, "smtp_from") == 0)
        get_text(w, v, "global.smtp_from", &w->smtp_from);
    else if (strcmp(key, "smtp_smarthost") == 0)
        get_str(w, v, "global.smtp_smarthost", &w->smtp_smarthost);
    else if (strcmp(key, "smtp_hello") == 0)
        get_str(w, v, "global.smtp_hello", &w->smtp_hello);
    else if (strcmp(key, "smtp_auth_username") == 0)
        get_str(w, v, "global.smtp_auth_username", &w->smtp_user);
    else if (strcmp(key, "smtp_auth_password") == 0)
        get_str(w, v, "global.smtp_auth_password", &w->smtp_pass);
    else if (strcmp(key, "smtp_auth_password_file") == 0)
        get_str(w, v, "global.smtp_auth_password_file", &w->smtp_pass_file);
    else if (strcmp(key, "smtp_auth_identity") == 0)
        get_str(w, v, "global.smtp_auth_identity", &w->smtp_identity);
    else if (strcmp(key, "smtp_require_tls") == 0)
        get_bool(w, v, "global.smtp_require_tls", &w->smtp_require_tls);
    else if (strcmp(key, "slack_api_url") == 0)
        get_str(w, v, "global.slack_api_url", &w->slack_api_url);
    else if (strcmp(key, "slack_api_url_file") == 0)
        get_str(w, v, "global.slack_api_url_file", &w->slack_api_url_file);
    else if (strcmp(key, "http_config") == 0) {
        struct http_ctx hc = {&w->http, "global"};
        w->has_global_http = 1;
        w->http.follow_redirects = 1;
        each_key(w, v, "global.http_config", on_http, &hc);
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
            if (strcmp(key, ignored[i]) == 0)
                return;
        errat(w, k,
              "global: unknown or unsupported key '%s' (known: resolve_timeout, smtp_from, "
              "smtp_smarthost, smtp_hello, smtp_auth_username, smtp_auth_password, "
              "smtp_auth_password_file, smtp_auth_identity, smtp_require_tls, slack_api_url, "
              "slack_api_url_file, http_config)",
              key);
    }
}

static void on_outbox(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    (void)ctx;
    struct notify_config *cfg = w->cfg;
    if (strcmp(key, "max_entries") == 0)
        get_uint(w, v, "outbox.max_entries", 10, 1000000, &cfg->outbox_max);
    else if (strcmp(key, "retry_initial") == 0)
        get_duration(w, v, "outbox.retry_initial", 10, &cfg->retry_initial_ms);
    else if (strcmp(key, "retry_max") == 0)
        get_duration(w, v, "outbox.retry_max", 10, &cfg->retry_max_ms);
    else if (strcmp(key, "give_up_after") == 0)
        get_duration(w, v, "outbox.give_up_after", 1000, &cfg->give_up_after_ms);
    else
        errat(w, k,
              "outbox: unknown key '%s' (known: max_entries, retry_initial, retry_max, "
              "give_up_after)",
              key);
}

static void on_limits(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    (void)ctx;
    struct notify_config *cfg = w->cfg;
    if (strcmp(key, "max_alerts") == 0)
        get_uint(w, v, "limits.max_alerts", 1, 1000000, &cfg->max_alerts);
    else if (strcmp(key, "max_groups") == 0)
        get_uint(w, v, "limits.max_groups", 1, 1000000, &cfg->max_groups);
    else if (strcmp(key, "max_silences") == 0)
        get_uint(w, v, "limits.max_silences", 1, 1000000, &cfg->max_silences);
    else if (strcmp(key, "retention") == 0)
        get_duration(w, v, "limits.retention", 60000, &cfg->silence_retention_ms);
    else
        errat(w, k,
              "limits: unknown key '%s' (known: max_alerts, max_groups, max_silences, "
              "retention)",
              key);
}

static void on_top(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    yaml_node_t **route = ctx;
    if (strcmp(key, "global") == 0)
        return; /* read first, see walk_top */
    if (strcmp(key, "route") == 0) {
        *route = v;
        if (is_null(v))
            return;
        w->cfg->has_route = 1;
        parse_route(w, v, &w->cfg->route, 0);
    } else if (strcmp(key, "receivers") == 0) {
        on_receivers(w, v);
    } else if (strcmp(key, "inhibit_rules") == 0) {
        on_inhibit_rules(w, v);
    } else if (strcmp(key, "templates") == 0) {
        /* Template files only matter to fields that use them, and those are refused. */
        char **files = NULL;
        size_t n = 0;
        get_strlist(w, v, "templates", &files, &n);
        for (size_t i = 0; i < n; i++)
            free(files[i]);
        free(files);
    } else if (strcmp(key, "time_intervals") == 0 || strcmp(key, "mute_time_intervals") == 0) {
        if (!is_null(v) && !(v->type == YAML_SEQUENCE_NODE &&
                             v->data.sequence.items.top == v->data.sequence.items.start))
            errat(w, k, "%s: time intervals are not supported by sitrep", key);
    } else if (strcmp(key, "outbox") == 0) {
        each_key(w, v, "outbox", on_outbox, NULL);
    } else if (strcmp(key, "limits") == 0) {
        each_key(w, v, "limits", on_limits, NULL);
    } else {
        errat(w, k,
              "unknown key '%s' (known: global, route, receivers, inhibit_rules, templates, "
              "outbox, limits)",
              key);
    }
}

static void on_top_global(struct walk *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                          void *ctx)
{
    (void)k;
    (void)ctx;
    if (strcmp(key, "global") == 0)
        each_key(w, v, "global", on_global, NULL);
}

static void walk_release(struct walk *w)
{
    free(w->smtp_from);
    free(w->smtp_smarthost);
    free(w->smtp_hello);
    free(w->smtp_user);
    free(w->smtp_pass);
    free(w->smtp_pass_file);
    free(w->smtp_identity);
    free(w->slack_api_url);
    free(w->slack_api_url_file);
    http_release(&w->http);
}

int notify_config_parse_node(struct notify_config *cfg, const char *file,
                             struct yaml_document_s *doc, struct yaml_node_s *root,
                             struct sbuf *errors)
{
    struct walk w = {
        .file = file, .doc = doc, .errors = errors, .cfg = cfg, .smtp_require_tls = -1};
    yaml_node_t *route = NULL;
    if (root && !is_null(root)) {
        /* global first: it supplies defaults to receivers written before it. */
        if (each_key(&w, root, "top level", on_top_global, NULL) == 0)
            each_key(&w, root, "top level", on_top, &route);
    }
    if (cfg->has_route) {
        struct notify_route *r = &cfg->route;
        if (!r->receiver)
            errat(&w, route, "route: the top-level route needs a receiver");
        if (r->matchers.n)
            errat(&w, route, "route: the top-level route must not have matchers");
        if (r->cont)
            errat(&w, route, "route: the top-level route cannot have continue");
        check_route_receivers(&w, r);
    } else if (cfg->nreceivers && route == NULL && w.nerr == 0) {
        errat(&w, root, "receivers given but no route: add route: {receiver: NAME}");
    }
    if (cfg->retry_max_ms < cfg->retry_initial_ms)
        errat(&w, root, "outbox: retry_max is shorter than retry_initial");
    walk_release(&w);
    return w.nerr ? -1 : 0;
}

int notify_config_parse(struct notify_config *cfg, const char *name, const char *text,
                        struct sbuf *errors)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        sbuf_addf(errors, "%s:%zu:%zu: %s%s%s\n", name, parser.problem_mark.line + 1,
                  parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML",
                  parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -1;
    }
    int rc = notify_config_parse_node(cfg, name, &doc, yaml_document_get_root_node(&doc), errors);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int notify_config_load(struct notify_config *cfg, const char *path, struct sbuf *errors)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sbuf_addf(errors, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    struct sbuf text;
    sbuf_init(&text, 16 << 20);
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
        if (sbuf_add(&text, buf, k) < 0)
            break;
    int bad = ferror(f) || text.overflow;
    fclose(f);
    if (bad) {
        sbuf_addf(errors, "%s: %s\n", path, text.overflow ? "larger than 16 MiB" : "read error");
        sbuf_release(&text);
        return -1;
    }
    int rc = notify_config_parse(cfg, path, text.buf, errors);
    sbuf_release(&text);
    return rc;
}

void notify_config_defaults(struct notify_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->route.group_wait_ms = cfg->route.group_interval_ms = cfg->route.repeat_interval_ms =
        NOTIFY_UNSET;
    cfg->resolve_timeout_ms = 5 * 60000;
    cfg->outbox_max = 10000;
    cfg->retry_initial_ms = 1000;
    cfg->retry_max_ms = 5 * 60000;
    cfg->give_up_after_ms = 24 * 3600000LL;
    cfg->max_alerts = 10000;
    cfg->max_groups = 2000;
    cfg->max_silences = 5000;
    cfg->silence_retention_ms = 5 * 86400000LL;
}

static void route_release(struct notify_route *r)
{
    free(r->receiver);
    for (size_t i = 0; i < r->ngroup_by; i++)
        free(r->group_by[i]);
    free(r->group_by);
    notify_matchers_release(&r->matchers);
    for (size_t i = 0; i < r->nroutes; i++)
        route_release(&r->routes[i]);
    free(r->routes);
}

static void headers_release(struct notify_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static void integration_release(struct notify_integration *it)
{
    free(it->url);
    free(it->url_file);
    http_release(&it->http);
    free(it->channel);
    free(it->username);
    free(it->icon_emoji);
    free(it->icon_url);
    free(it->title);
    free(it->text);
    free(it->to);
    free(it->from);
    free(it->smarthost);
    free(it->hello);
    free(it->auth_username);
    free(it->auth_password);
    free(it->auth_password_file);
    free(it->auth_identity);
    headers_release(it->headers, it->nheaders);
    for (size_t i = 0; i < it->argc; i++)
        free(it->argv[i]);
    free(it->argv);
    headers_release(it->env, it->nenv);
}

void notify_config_release(struct notify_config *cfg)
{
    route_release(&cfg->route);
    for (size_t i = 0; i < cfg->nreceivers; i++) {
        struct notify_receiver *r = &cfg->receivers[i];
        free(r->name);
        for (size_t k = 0; k < r->n; k++)
            integration_release(&r->v[k]);
        free(r->v);
    }
    free(cfg->receivers);
    for (size_t i = 0; i < cfg->ninhibit; i++) {
        notify_matchers_release(&cfg->inhibit[i].source);
        notify_matchers_release(&cfg->inhibit[i].target);
        for (size_t k = 0; k < cfg->inhibit[i].nequal; k++)
            free(cfg->inhibit[i].equal[k]);
        free(cfg->inhibit[i].equal);
    }
    free(cfg->inhibit);
    memset(cfg, 0, sizeof(*cfg));
}
