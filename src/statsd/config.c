/*
 * config.c: the `statsd:` section of sitrep's config (statsd.h): defaults,
 * comparison for reloads, and parsing from a libyaml node with
 * file:line:col errors.
 */
#include "statsd/statsd.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Prometheus' default buckets: web latencies from 5 ms to 10 s. */
static const double default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

void statsd_config_defaults(struct statsd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->listen = xstrdup("127.0.0.1:8125");
    c->max_series = STATSD_DEFAULT_SERIES;
    c->max_set_members = STATSD_DEFAULT_MEMBERS;
    c->set_window_ms = STATSD_DEFAULT_WINDOW;
    memcpy(c->timer_buckets, default_buckets, sizeof(default_buckets));
    c->ntimer_buckets = ARRAY_SIZE(default_buckets);
    memcpy(c->histogram_buckets, default_buckets, sizeof(default_buckets));
    c->nhistogram_buckets = ARRAY_SIZE(default_buckets);
}

void statsd_config_release(struct statsd_config *c)
{
    free(c->listen);
    c->listen = NULL;
}

int statsd_config_equal(const struct statsd_config *a, const struct statsd_config *b)
{
    return a->enabled == b->enabled && strcmp(a->listen, b->listen) == 0 &&
           a->max_series == b->max_series && a->max_set_members == b->max_set_members &&
           a->set_window_ms == b->set_window_ms && a->ntimer_buckets == b->ntimer_buckets &&
           a->nhistogram_buckets == b->nhistogram_buckets &&
           memcmp(a->timer_buckets, b->timer_buckets, a->ntimer_buckets * sizeof(double)) == 0 &&
           memcmp(a->histogram_buckets, b->histogram_buckets,
                  a->nhistogram_buckets * sizeof(double)) == 0;
}

/* A list of increasing finite bucket bounds. */
static void get_buckets(struct yamlcfg *w, yaml_node_t *v, const char *key, double *out, size_t *n)
{
    yaml_node_item_t *it;
    size_t cnt;
    if (yamlcfg_seq(w, v, key, &it, &cnt) < 0)
        return;
    if (cnt == 0 || cnt > STATSD_MAX_BUCKETS) {
        yamlcfg_err(w, v, "%s: want 1 to %d bucket bounds", key, STATSD_MAX_BUCKETS);
        return;
    }
    double tmp[STATSD_MAX_BUCKETS];
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *x = yamlcfg_node(w, it[i]);
        const char *s = yamlcfg_scalar(x);
        char *end = NULL;
        double d = s && *s ? strtod(s, &end) : NAN;
        if (!s || !end || *end || !isfinite(d) || (i && d <= tmp[i - 1])) {
            yamlcfg_err(w, x, "%s: want increasing finite numbers", key);
            return;
        }
        tmp[i] = d;
    }
    memcpy(out, tmp, cnt * sizeof(double));
    *n = cnt;
}

static void on_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct statsd_config *c = ctx;
    unsigned long long u;
    if (strcmp(key, "enabled") == 0) {
        yamlcfg_bool(w, v, "statsd.enabled", &c->enabled);
    } else if (strcmp(key, "listen") == 0) {
        char *s = NULL;
        if (yamlcfg_str(w, v, "statsd.listen", &s) == 0) {
            if (!strchr(s, ':'))
                yamlcfg_err(w, v, "statsd.listen: want host:port, such as 127.0.0.1:8125");
            free(c->listen);
            c->listen = s;
        }
    } else if (strcmp(key, "max_series") == 0) {
        if (yamlcfg_uint(w, v, "statsd.max_series", 1, 1000000, &u) == 0)
            c->max_series = (unsigned)u;
    } else if (strcmp(key, "max_set_members") == 0) {
        if (yamlcfg_uint(w, v, "statsd.max_set_members", 1, 1000000, &u) == 0)
            c->max_set_members = (unsigned)u;
    } else if (strcmp(key, "set_window") == 0) {
        yamlcfg_duration(w, v, "statsd.set_window", 1000, 24LL * 3600 * 1000, &c->set_window_ms);
    } else if (strcmp(key, "timer_buckets") == 0) {
        get_buckets(w, v, "statsd.timer_buckets", c->timer_buckets, &c->ntimer_buckets);
    } else if (strcmp(key, "histogram_buckets") == 0) {
        get_buckets(w, v, "statsd.histogram_buckets", c->histogram_buckets, &c->nhistogram_buckets);
    } else {
        yamlcfg_err(w, k, "statsd: unknown key '%s'", key);
    }
}

int statsd_config_parse_node(struct statsd_config *c, const char *file, struct yaml_document_s *doc,
                             struct yaml_node_s *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    if (!node)
        return 0;
    /* A `statsd:` section turns the listener on unless it says enabled: false. */
    if (node->type == YAML_MAPPING_NODE)
        c->enabled = 1;
    yamlcfg_each_key(&w, node, "statsd", on_key, c);
    return w.nerr ? -1 : 0;
}
