/*
 * config.c: the `scrape:` list of sitrep's config (scrape.h): parsing from
 * a libyaml node with file:line:col errors, release and comparison.
 */
#include "scrape/scrape.h"
#include "metric/metric.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#include <stdlib.h>
#include <string.h>

void scrape_config_init(struct scrape_config *c)
{
    memset(c, 0, sizeof(*c));
}

static void targets_release(char **targets, size_t n, struct scrape_pair *labels, size_t nlabels)
{
    for (size_t i = 0; i < n; i++)
        free(targets[i]);
    free(targets);
    for (size_t i = 0; i < nlabels; i++) {
        free(labels[i].name);
        free(labels[i].value);
    }
}

static void job_release(struct scrape_job *j)
{
    free(j->job);
    targets_release(j->targets, j->ntargets, j->labels, j->nlabels);
    for (size_t i = 0; i < j->ngroups; i++)
        targets_release(j->groups[i].targets, j->groups[i].ntargets, j->groups[i].labels,
                        j->groups[i].nlabels);
    free(j->groups);
    free(j->scheme);
    free(j->metrics_path);
    for (size_t i = 0; i < j->nheaders; i++) {
        free(j->headers[i].name);
        free(j->headers[i].value);
    }
    free(j->headers);
    free(j->ca_file);
}

void scrape_config_release(struct scrape_config *c)
{
    for (size_t i = 0; i < c->njobs; i++)
        job_release(&c->jobs[i]);
    free(c->jobs);
    memset(c, 0, sizeof(*c));
}

static int streq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int pairs_equal(const struct scrape_pair *a, const struct scrape_pair *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!streq(a[i].name, b[i].name) || !streq(a[i].value, b[i].value))
            return 0;
    return 1;
}

static int targets_equal(char *const *a, char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!streq(a[i], b[i]))
            return 0;
    return 1;
}

static int groups_equal(const struct scrape_job *x, const struct scrape_job *y)
{
    if (x->ngroups != y->ngroups)
        return 0;
    for (size_t i = 0; i < x->ngroups; i++) {
        const struct scrape_group *a = &x->groups[i], *b = &y->groups[i];
        if (a->ntargets != b->ntargets || a->nlabels != b->nlabels ||
            !targets_equal(a->targets, b->targets, a->ntargets) ||
            !pairs_equal(a->labels, b->labels, a->nlabels))
            return 0;
    }
    return 1;
}

int scrape_config_equal(const struct scrape_config *a, const struct scrape_config *b)
{
    if (a->njobs != b->njobs)
        return 0;
    for (size_t i = 0; i < a->njobs; i++) {
        const struct scrape_job *x = &a->jobs[i], *y = &b->jobs[i];
        if (!streq(x->job, y->job) || x->ntargets != y->ntargets || !streq(x->scheme, y->scheme) ||
            !streq(x->metrics_path, y->metrics_path) || x->interval_ms != y->interval_ms ||
            x->timeout_ms != y->timeout_ms || x->honor_labels != y->honor_labels ||
            x->nlabels != y->nlabels || x->nheaders != y->nheaders ||
            x->body_limit != y->body_limit || x->sample_limit != y->sample_limit ||
            x->tls_insecure != y->tls_insecure || !streq(x->ca_file, y->ca_file) ||
            !pairs_equal(x->labels, y->labels, x->nlabels) ||
            !pairs_equal(x->headers, y->headers, x->nheaders) ||
            !targets_equal(x->targets, y->targets, x->ntargets) || !groups_equal(x, y))
            return 0;
    }
    return 1;
}

/* A header name or value safe to put on a request line: no CR, LF or NUL. */
static int header_safe(const char *s)
{
    return !strpbrk(s, "\r\n");
}

struct job_ctx {
    struct scrape_job *j;
    yaml_node_t *targets_node, *groups_node;
    int groups_bad;             /* static_configs is no list (reported) */
    yaml_node_t **group_labels; /* each group's `labels:` node (or its entry), for errors */
};

/* A `labels:` mapping, of a job or of one of its static_configs. */
struct labels_ctx {
    struct scrape_pair *labels;
    size_t *n;
    const char *where;
};

static void on_label(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct labels_ctx *lc = ctx;
    char *val = NULL;
    /* job stays the job's name: failures and scrapes are counted by it. */
    if (!metric_label_name_valid(key) || (key[0] == '_' && key[1] == '_') ||
        strcmp(key, "job") == 0) {
        yamlcfg_err(w, k, "%s: '%s' is not a label name sitrep can set here", lc->where, key);
        return;
    }
    if (*lc->n == SCRAPE_MAX_LABELS) {
        yamlcfg_err(w, k, "%s: at most %d labels", lc->where, SCRAPE_MAX_LABELS);
        return;
    }
    if (yamlcfg_str(w, v, lc->where, &val) < 0)
        return;
    lc->labels[(*lc->n)++] = (struct scrape_pair){xstrdup(key), val};
}

/* A `targets:` list into *list; each must be host:port or an http(s) URL. 0, or -1 (reported). */
static int get_targets(struct yamlcfg *w, yaml_node_t *v, const char *where, char ***list,
                       size_t *n)
{
    int nerr = w->nerr;
    if (yamlcfg_str_list(w, v, where, list, n) < 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        const char *t = (*list)[i];
        if (!*t || !header_safe(t) || strchr(t, ' '))
            yamlcfg_err(w, v, "%s: '%s' is no host:port or URL", where, t);
        else if (strstr(t, "://") && strncmp(t, "http://", 7) != 0 &&
                 strncmp(t, "https://", 8) != 0)
            yamlcfg_err(w, v, "%s: only http:// and https:// URLs", where);
    }
    return w->nerr == nerr ? 0 : -1;
}

struct group_ctx {
    struct scrape_group *g;
    yaml_node_t *targets_node, *labels_node;
};

static void on_group_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                         void *ctx)
{
    struct group_ctx *gc = ctx;
    if (strcmp(key, "targets") == 0) {
        struct scrape_group *g = gc->g;
        gc->targets_node = v;
        if (get_targets(w, v, "scrape.static_configs.targets", &g->targets, &g->ntargets) == 0 &&
            !g->ntargets)
            yamlcfg_err(w, v, "scrape.static_configs.targets: want at least one host:port or URL");
    } else if (strcmp(key, "labels") == 0) {
        gc->labels_node = v;
        struct labels_ctx lc = {gc->g->labels, &gc->g->nlabels, "scrape.static_configs.labels"};
        yamlcfg_each_key(w, v, "scrape.static_configs.labels", on_label, &lc);
    } else {
        yamlcfg_err(w, k, "scrape.static_configs: unknown key '%s' (want targets, labels)", key);
    }
}

/* `static_configs: [{targets: [...], labels: {...}}, ...]` into the job's groups. */
static void get_groups(struct yamlcfg *w, yaml_node_t *v, struct job_ctx *jc)
{
    struct scrape_job *j = jc->j;
    yaml_node_item_t *items;
    size_t n;
    jc->groups_node = v;
    if (yamlcfg_seq(w, v, "scrape.static_configs", &items, &n) < 0) {
        jc->groups_bad = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *gn = yamlcfg_node(w, items[i]);
        struct scrape_group g = {0};
        struct group_ctx gc = {&g, NULL, NULL};
        if (yamlcfg_each_key(w, gn, "scrape.static_configs[]", on_group_key, &gc) == 0 &&
            !gc.targets_node)
            yamlcfg_err(w, gn, "scrape.static_configs: each entry needs targets: [host:port, ...]");
        j->groups = xrealloc(j->groups, (j->ngroups + 1) * sizeof(*j->groups));
        jc->group_labels = xrealloc(jc->group_labels, (j->ngroups + 1) * sizeof(*jc->group_labels));
        jc->group_labels[j->ngroups] = gc.labels_node ? gc.labels_node : gn;
        j->groups[j->ngroups++] = g;
    }
}

/* Distinct label names of the job's labels and group g's together. */
static size_t union_labels(const struct scrape_job *j, const struct scrape_group *g)
{
    size_t n = j->nlabels;
    for (size_t i = 0; i < g->nlabels; i++) {
        int dup = 0;
        for (size_t k = 0; k < j->nlabels && !dup; k++)
            dup = strcmp(g->labels[i].name, j->labels[k].name) == 0;
        n += !dup;
    }
    return n;
}

static void on_header(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct scrape_job *j = ctx;
    char *val = NULL;
    if (!*key || !header_safe(key) || strchr(key, ':')) {
        yamlcfg_err(w, k, "scrape.headers: bad header name");
        return;
    }
    if (yamlcfg_str(w, v, "scrape.headers", &val) < 0)
        return;
    if (!header_safe(val)) {
        yamlcfg_err(w, v, "scrape.headers: a value cannot hold a line break");
        free(val);
        return;
    }
    j->headers = xrealloc(j->headers, (j->nheaders + 1) * sizeof(*j->headers));
    j->headers[j->nheaders++] = (struct scrape_pair){xstrdup(key), val};
}

static void on_job_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v,
                       void *ctx)
{
    struct job_ctx *jc = ctx;
    struct scrape_job *j = jc->j;
    unsigned long long u;
    long long ll;
    if (strcmp(key, "job") == 0 || strcmp(key, "job_name") == 0) {
        if (yamlcfg_str(w, v, "scrape.job", &j->job) == 0 && !*j->job)
            yamlcfg_err(w, v, "scrape.job: must not be empty");
    } else if (strcmp(key, "targets") == 0) {
        jc->targets_node = v;
        get_targets(w, v, "scrape.targets", &j->targets, &j->ntargets);
    } else if (strcmp(key, "static_configs") == 0) {
        get_groups(w, v, jc);
    } else if (strcmp(key, "scheme") == 0) {
        if (yamlcfg_str(w, v, "scrape.scheme", &j->scheme) == 0 && strcmp(j->scheme, "http") != 0 &&
            strcmp(j->scheme, "https") != 0)
            yamlcfg_err(w, v, "scrape.scheme: want http or https");
    } else if (strcmp(key, "metrics_path") == 0) {
        if (yamlcfg_str(w, v, "scrape.metrics_path", &j->metrics_path) == 0 &&
            (j->metrics_path[0] != '/' || !header_safe(j->metrics_path)))
            yamlcfg_err(w, v, "scrape.metrics_path: want a path starting with '/'");
    } else if (strcmp(key, "interval") == 0 || strcmp(key, "scrape_interval") == 0) {
        yamlcfg_duration(w, v, "scrape.interval", 1000, 24LL * 3600 * 1000, &j->interval_ms);
    } else if (strcmp(key, "timeout") == 0 || strcmp(key, "scrape_timeout") == 0) {
        yamlcfg_duration(w, v, "scrape.timeout", 10, 24LL * 3600 * 1000, &j->timeout_ms);
    } else if (strcmp(key, "honor_labels") == 0) {
        yamlcfg_bool(w, v, "scrape.honor_labels", &j->honor_labels);
    } else if (strcmp(key, "labels") == 0) {
        struct labels_ctx lc = {j->labels, &j->nlabels, "scrape.labels"};
        yamlcfg_each_key(w, v, "scrape.labels", on_label, &lc);
    } else if (strcmp(key, "headers") == 0) {
        yamlcfg_each_key(w, v, "scrape.headers", on_header, j);
    } else if (strcmp(key, "body_limit") == 0 || strcmp(key, "body_size_limit") == 0) {
        if (yamlcfg_size(w, v, "scrape.body_limit", 1024, 1LL << 30, &ll) == 0)
            j->body_limit = ll;
    } else if (strcmp(key, "sample_limit") == 0) {
        if (yamlcfg_uint(w, v, "scrape.sample_limit", 0, 10000000, &u) == 0)
            j->sample_limit = (unsigned)u;
    } else if (strcmp(key, "tls_insecure_skip_verify") == 0) {
        yamlcfg_bool(w, v, "scrape.tls_insecure_skip_verify", &j->tls_insecure);
    } else if (strcmp(key, "ca_file") == 0) {
        yamlcfg_str(w, v, "scrape.ca_file", &j->ca_file);
    } else {
        yamlcfg_err(w, k, "scrape: unknown key '%s'", key);
    }
}

int scrape_config_parse_node(struct scrape_config *c, const char *file, struct yaml_document_s *doc,
                             struct yaml_node_s *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    yaml_node_item_t *items;
    size_t n;
    if (!node || yamlcfg_seq(&w, node, "scrape", &items, &n) < 0)
        return w.nerr ? -1 : 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *jn = yamlcfg_node(&w, items[i]);
        c->jobs = xrealloc(c->jobs, (c->njobs + 1) * sizeof(*c->jobs));
        struct scrape_job *j = &c->jobs[c->njobs++];
        memset(j, 0, sizeof(*j));
        j->scheme = xstrdup("http");
        j->metrics_path = xstrdup("/metrics");
        j->interval_ms = SCRAPE_DEFAULT_INTERVAL_MS;
        j->body_limit = SCRAPE_DEFAULT_BODY_LIMIT;
        j->sample_limit = SCRAPE_DEFAULT_SAMPLES;
        struct job_ctx jc = {j, NULL, NULL, 0, NULL};
        int timeout_set = 0;
        if (yamlcfg_each_key(&w, jn, "scrape[]", on_job_key, &jc) < 0) {
            free(jc.group_labels);
            continue;
        }
        /* Defaults that depend on other keys, then the checks across keys. */
        for (yaml_node_pair_t *p = jn->data.mapping.pairs.start; p < jn->data.mapping.pairs.top;
             p++) {
            const char *k = yamlcfg_scalar(yamlcfg_node(&w, p->key));
            timeout_set |= k && (strcmp(k, "timeout") == 0 || strcmp(k, "scrape_timeout") == 0);
        }
        if (!timeout_set)
            j->timeout_ms = j->interval_ms < SCRAPE_DEFAULT_TIMEOUT_MS ? j->interval_ms
                                                                       : SCRAPE_DEFAULT_TIMEOUT_MS;
        else if (j->timeout_ms > j->interval_ms)
            yamlcfg_err(&w, jn, "scrape: timeout is longer than interval");
        if (!j->job)
            yamlcfg_err(&w, jn, "scrape: each entry needs job: NAME");
        size_t all = j->ntargets;
        for (size_t g = 0; g < j->ngroups; g++) {
            all += j->groups[g].ntargets;
            if (union_labels(j, &j->groups[g]) > SCRAPE_MAX_LABELS)
                yamlcfg_err(&w, jc.group_labels[g],
                            "scrape.static_configs.labels: at most %d labels with the job's",
                            SCRAPE_MAX_LABELS);
        }
        free(jc.group_labels);
        /* A static_configs entry without targets was reported at its place. */
        if (!all && !j->ngroups && !jc.groups_bad)
            yamlcfg_err(&w,
                        jc.targets_node  ? jc.targets_node
                        : jc.groups_node ? jc.groups_node
                                         : jn,
                        "scrape: each entry needs targets: [host:port, ...] or static_configs");
        for (size_t k = 0; j->job && k + 1 < c->njobs; k++)
            if (c->jobs[k].job && strcmp(c->jobs[k].job, j->job) == 0)
                yamlcfg_err(&w, jn, "scrape: job '%s' is given twice", j->job);
    }
    return w.nerr ? -1 : 0;
}
