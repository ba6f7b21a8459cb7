/*
 * config.c: the `probes:` list of sitrep's config (probe.h): parsing from a
 * libyaml node with file:line:col errors, release, comparison, and the
 * default probe of a service's URL.
 */
#include "probe/probe.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

void probe_config_init(struct probe_config *c)
{
    memset(c, 0, sizeof(*c));
}

static void target_release(struct probe_target *t)
{
    free(t->name);
    free(t->target);
    free(t->method);
    free(t->body_regex);
    free(t->ca_file);
    for (size_t i = 0; i < t->nheaders; i++) {
        free(t->headers[i].name);
        free(t->headers[i].value);
    }
    free(t->headers);
}

void probe_config_release(struct probe_config *c)
{
    for (size_t i = 0; i < c->ntargets; i++)
        target_release(&c->targets[i]);
    free(c->targets);
    memset(c, 0, sizeof(*c));
}

static int streq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int probe_config_equal(const struct probe_config *a, const struct probe_config *b)
{
    if (a->ntargets != b->ntargets)
        return 0;
    for (size_t i = 0; i < a->ntargets; i++) {
        const struct probe_target *x = &a->targets[i], *y = &b->targets[i];
        if (!streq(x->name, y->name) || x->kind != y->kind || !streq(x->target, y->target) ||
            x->interval_ms != y->interval_ms || x->timeout_ms != y->timeout_ms ||
            !streq(x->method, y->method) || x->nexpect != y->nexpect ||
            memcmp(x->expect, y->expect, x->nexpect * sizeof(x->expect[0])) != 0 ||
            !streq(x->body_regex, y->body_regex) || x->nheaders != y->nheaders ||
            x->follow_redirects != y->follow_redirects || x->tls != y->tls ||
            x->tls_insecure != y->tls_insecure || !streq(x->ca_file, y->ca_file))
            return 0;
        for (size_t k = 0; k < x->nheaders; k++)
            if (!streq(x->headers[k].name, y->headers[k].name) ||
                !streq(x->headers[k].value, y->headers[k].value))
                return 0;
    }
    return 1;
}

void probe_target_http(struct probe_target *t, const char *name, const char *url)
{
    memset(t, 0, sizeof(*t));
    t->name = xstrdup(name);
    t->kind = PROBE_HTTP;
    t->target = xstrdup(url);
    t->interval_ms = PROBE_DEFAULT_INTERVAL_MS;
    t->timeout_ms = PROBE_DEFAULT_TIMEOUT_MS;
    t->method = xstrdup("GET");
    t->follow_redirects = 1;
}

static int safe_text(const char *s)
{
    return !strpbrk(s, "\r\n");
}

/* "200", "2xx"; 0 or -1. */
static int parse_status(const char *s, struct probe_status_range *r)
{
    if (strlen(s) != 3 || s[0] < '1' || s[0] > '5')
        return -1;
    if (strcmp(s + 1, "xx") == 0 || strcmp(s + 1, "XX") == 0) {
        r->lo = (s[0] - '0') * 100;
        r->hi = r->lo + 99;
        return 0;
    }
    if (s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return -1;
    r->lo = r->hi = atoi(s);
    return 0;
}

static void on_header(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct probe_target *t = ctx;
    char *val = NULL;
    if (!*key || !safe_text(key) || strchr(key, ':')) {
        yamlcfg_err(w, k, "probes.headers: bad header name");
        return;
    }
    if (yamlcfg_str(w, v, "probes.headers", &val) < 0)
        return;
    if (!safe_text(val)) {
        yamlcfg_err(w, v, "probes.headers: a value cannot hold a line break");
        free(val);
        return;
    }
    t->headers = xrealloc(t->headers, (t->nheaders + 1) * sizeof(*t->headers));
    t->headers[t->nheaders++] = (struct probe_pair){xstrdup(key), val};
}

struct tctx {
    struct probe_target *t;
    int has_url, has_tcp, has_timeout;
};

static void on_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct tctx *c = ctx;
    struct probe_target *t = c->t;
    if (strcmp(key, "name") == 0 || strcmp(key, "service") == 0) {
        if (yamlcfg_str(w, v, "probes.name", &t->name) == 0 && (!*t->name || strlen(t->name) > 128))
            yamlcfg_err(w, v, "probes.name: want 1 to 128 bytes");
    } else if (strcmp(key, "url") == 0) {
        c->has_url = 1;
        t->kind = PROBE_HTTP;
        if (yamlcfg_str(w, v, "probes.url", &t->target) == 0 &&
            ((strncmp(t->target, "http://", 7) != 0 && strncmp(t->target, "https://", 8) != 0) ||
             !safe_text(t->target) || strchr(t->target, ' ')))
            yamlcfg_err(w, v, "probes.url: want an http:// or https:// URL");
    } else if (strcmp(key, "tcp") == 0) {
        c->has_tcp = 1;
        t->kind = PROBE_TCP;
        if (yamlcfg_str(w, v, "probes.tcp", &t->target) == 0) {
            const char *colon = strrchr(t->target, ':');
            if (!colon || colon == t->target || !colon[1] ||
                strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
                strpbrk(t->target, "/ \r\n@?#"))
                yamlcfg_err(w, v, "probes.tcp: want host:port (IPv6 as [::1]:port)");
        }
    } else if (strcmp(key, "interval") == 0) {
        yamlcfg_duration(w, v, "probes.interval", 1000, 24LL * 3600 * 1000, &t->interval_ms);
    } else if (strcmp(key, "timeout") == 0) {
        c->has_timeout = 1;
        yamlcfg_duration(w, v, "probes.timeout", 10, 3600LL * 1000, &t->timeout_ms);
    } else if (strcmp(key, "method") == 0) {
        if (yamlcfg_str(w, v, "probes.method", &t->method) == 0 &&
            (!*t->method || strspn(t->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(t->method)))
            yamlcfg_err(w, v, "probes.method: want an upper-case method such as GET or HEAD");
    } else if (strcmp(key, "expect_status") == 0 || strcmp(key, "valid_status_codes") == 0) {
        yaml_node_item_t *it;
        size_t n;
        if (yamlcfg_seq(w, v, "probes.expect_status", &it, &n) < 0)
            return;
        if (n > PROBE_MAX_EXPECT) {
            yamlcfg_err(w, v, "probes.expect_status: at most %d entries", PROBE_MAX_EXPECT);
            return;
        }
        t->nexpect = 0;
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *x = yamlcfg_node(w, it[i]);
            const char *s = yamlcfg_scalar(x);
            if (!s || parse_status(s, &t->expect[t->nexpect]) < 0)
                yamlcfg_err(w, x, "probes.expect_status: want a status such as 200 or 2xx");
            else
                t->nexpect++;
        }
    } else if (strcmp(key, "body_regex") == 0) {
        if (yamlcfg_str(w, v, "probes.body_regex", &t->body_regex) == 0) {
            int ec;
            PCRE2_SIZE off;
            pcre2_code *re =
                pcre2_compile((PCRE2_SPTR)t->body_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
            if (!re) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(ec, msg, sizeof(msg));
                yamlcfg_err(w, v, "probes.body_regex: at offset %zu: %s", (size_t)off, (char *)msg);
            }
            pcre2_code_free(re);
        }
    } else if (strcmp(key, "headers") == 0) {
        yamlcfg_each_key(w, v, "probes.headers", on_header, t);
    } else if (strcmp(key, "follow_redirects") == 0) {
        yamlcfg_bool(w, v, "probes.follow_redirects", &t->follow_redirects);
    } else if (strcmp(key, "tls") == 0) {
        yamlcfg_bool(w, v, "probes.tls", &t->tls);
    } else if (strcmp(key, "tls_insecure_skip_verify") == 0) {
        yamlcfg_bool(w, v, "probes.tls_insecure_skip_verify", &t->tls_insecure);
    } else if (strcmp(key, "ca_file") == 0) {
        yamlcfg_str(w, v, "probes.ca_file", &t->ca_file);
    } else {
        yamlcfg_err(w, k, "probes: unknown key '%s'", key);
    }
}

int probe_config_parse_node(struct probe_config *c, const char *file, struct yaml_document_s *doc,
                            struct yaml_node_s *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    yaml_node_item_t *items;
    size_t n;
    if (!node || yamlcfg_seq(&w, node, "probes", &items, &n) < 0)
        return w.nerr ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *tn = yamlcfg_node(&w, items[i]);
        c->targets = xrealloc(c->targets, (c->ntargets + 1) * sizeof(*c->targets));
        struct probe_target *t = &c->targets[c->ntargets++];
        memset(t, 0, sizeof(*t));
        t->interval_ms = PROBE_DEFAULT_INTERVAL_MS;
        t->timeout_ms = PROBE_DEFAULT_TIMEOUT_MS;
        t->method = xstrdup("GET");
        t->follow_redirects = 1;
        struct tctx ctx = {.t = t};
        if (yamlcfg_each_key(&w, tn, "probes[]", on_key, &ctx) < 0)
            continue;
        if (ctx.has_url == ctx.has_tcp)
            yamlcfg_err(&w, tn, "probes: each entry needs exactly one of url: or tcp:");
        if (!t->name)
            yamlcfg_err(&w, tn, "probes: each entry needs name: SERVICE");
        if (!ctx.has_timeout && t->timeout_ms > t->interval_ms)
            t->timeout_ms = t->interval_ms;
        else if (t->timeout_ms > t->interval_ms)
            yamlcfg_err(&w, tn, "probes: timeout is longer than interval");
        if (t->kind == PROBE_TCP && (t->body_regex || t->nexpect || t->nheaders))
            yamlcfg_err(&w, tn, "probes: body_regex, expect_status and headers need url:");
        for (size_t k = 0; t->name && k + 1 < c->ntargets; k++)
            if (c->targets[k].name && strcmp(c->targets[k].name, t->name) == 0)
                yamlcfg_err(&w, tn, "probes: name '%s' is given twice", t->name);
    }
    return w.nerr ? -1 : 0;
}
