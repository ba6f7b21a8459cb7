/*
 * config.c: the `queues:` list of sitrep's config (queue.h): parsing from a
 * libyaml node with file:line:col errors, release and comparison.
 */
#include "queue/queue.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void queue_config_init(struct queue_config *c)
{
    memset(c, 0, sizeof(*c));
}

static void server_release(struct queue_redis *r)
{
    free(r->addr);
    free(r->instance);
    free(r->username);
    free(r->password);
    for (size_t i = 0; i < r->nkeys; i++)
        free(r->keys[i]);
    free(r->keys);
}

void queue_config_release(struct queue_config *c)
{
    for (size_t i = 0; i < c->nservers; i++)
        server_release(&c->servers[i]);
    free(c->servers);
    memset(c, 0, sizeof(*c));
}

static int streq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int queue_config_equal(const struct queue_config *a, const struct queue_config *b)
{
    if (a->nservers != b->nservers)
        return 0;
    for (size_t i = 0; i < a->nservers; i++) {
        const struct queue_redis *x = &a->servers[i], *y = &b->servers[i];
        if (!streq(x->addr, y->addr) || !streq(x->username, y->username) ||
            !streq(x->password, y->password) || x->db != y->db || x->nkeys != y->nkeys ||
            x->interval_ms != y->interval_ms || x->timeout_ms != y->timeout_ms ||
            x->max_keys != y->max_keys)
            return 0;
        for (size_t k = 0; k < x->nkeys; k++)
            if (!streq(x->keys[k], y->keys[k]))
                return 0;
    }
    return 1;
}

/* "host:port" or "[v6]:port" with a port in 1..65535. */
static int addr_ok(const char *s)
{
    const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
    if (!colon || colon == s || strpbrk(s, " /\r\n"))
        return 0;
    colon += s[0] == '[' ? 2 : 1;
    char *end;
    long port = strtol(colon, &end, 10);
    return *colon >= '0' && *colon <= '9' && !*end && port >= 1 && port <= 65535;
}

static void on_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct queue_redis *r = ctx;
    unsigned long long u;
    if (strcmp(key, "redis") == 0) {
        if (yamlcfg_str(w, v, "queues.redis", &r->addr) == 0 && !addr_ok(r->addr))
            yamlcfg_err(w, v, "queues.redis: want host:port (e.g. 127.0.0.1:6379)");
    } else if (strcmp(key, "keys") == 0) {
        if (yamlcfg_str_list(w, v, "queues.keys", &r->keys, &r->nkeys) == 0)
            for (size_t i = 0; i < r->nkeys; i++)
                if (!r->keys[i][0])
                    yamlcfg_err(w, v, "queues.keys: a key cannot be empty");
    } else if (strcmp(key, "username") == 0) {
        yamlcfg_str(w, v, "queues.username", &r->username);
    } else if (strcmp(key, "password") == 0) {
        yamlcfg_str(w, v, "queues.password", &r->password);
    } else if (strcmp(key, "db") == 0) {
        if (yamlcfg_uint(w, v, "queues.db", 0, 100000, &u) == 0)
            r->db = (unsigned)u;
    } else if (strcmp(key, "interval") == 0) {
        yamlcfg_duration(w, v, "queues.interval", 100, 24LL * 3600 * 1000, &r->interval_ms);
    } else if (strcmp(key, "timeout") == 0) {
        yamlcfg_duration(w, v, "queues.timeout", 10, 24LL * 3600 * 1000, &r->timeout_ms);
    } else if (strcmp(key, "max_keys") == 0) {
        if (yamlcfg_uint(w, v, "queues.max_keys", 1, QUEUE_MAX_MAX_KEYS, &u) == 0)
            r->max_keys = (unsigned)u;
    } else {
        yamlcfg_err(w, k,
                    "queues: unknown key '%s' (known: redis, keys, username, password, db, "
                    "interval, timeout, max_keys)",
                    key);
    }
}

int queue_config_parse_node(struct queue_config *c, const char *file, struct yaml_document_s *doc,
                            struct yaml_node_s *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    yaml_node_item_t *items;
    size_t n;
    if (!node || yamlcfg_seq(&w, node, "queues", &items, &n) < 0)
        return w.nerr ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *sn = yamlcfg_node(&w, items[i]);
        c->servers = xrealloc(c->servers, (c->nservers + 1) * sizeof(*c->servers));
        struct queue_redis *r = &c->servers[c->nservers++];
        memset(r, 0, sizeof(*r));
        r->interval_ms = QUEUE_DEFAULT_INTERVAL_MS;
        r->timeout_ms = -1;
        r->max_keys = QUEUE_DEFAULT_MAX_KEYS;
        if (yamlcfg_each_key(&w, sn, "queues[]", on_key, r) < 0)
            continue;
        if (r->timeout_ms < 0)
            r->timeout_ms = r->interval_ms < QUEUE_DEFAULT_TIMEOUT_MS ? r->interval_ms
                                                                      : QUEUE_DEFAULT_TIMEOUT_MS;
        else if (r->timeout_ms > r->interval_ms)
            yamlcfg_err(&w, sn, "queues: timeout is longer than interval");
        if (!r->addr)
            yamlcfg_err(&w, sn, "queues: each entry needs redis: host:port");
        if (!r->nkeys)
            yamlcfg_err(&w, sn, "queues: each entry needs keys: [name or glob, ...]");
        if (r->username && !r->password)
            yamlcfg_err(&w, sn, "queues: username needs a password");
        if (!r->addr)
            continue;
        char inst[512];
        if (r->db)
            snprintf(inst, sizeof(inst), "%s/%u", r->addr, r->db);
        else
            snprintf(inst, sizeof(inst), "%s", r->addr);
        r->instance = xstrdup(inst);
        for (size_t k = 0; k + 1 < c->nservers; k++)
            if (c->servers[k].instance && strcmp(c->servers[k].instance, inst) == 0)
                yamlcfg_err(&w, sn, "queues: redis %s is given twice", inst);
    }
    return w.nerr ? -1 : 0;
}
