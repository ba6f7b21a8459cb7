/*
 * services.c: the `services:` section: a service named once, with the URL
 * it answers on and optionally its access log, gets a default HTTP probe
 * (probe_target_http: GET, any 2xx, every 10 s) and, with a log, an entry
 * of `logs:` under its name, without writing either out. Explicit
 * `probes:` and `logs:` entries stay for anything finer.
 */
#include "config/config_internal.h"
#include "util/util.h"
#include "util/yamlcfg.h"
#include "util/banned.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config__services_release(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nservices; i++) {
        free(cfg->services[i].name);
        free(cfg->services[i].url);
        free(cfg->services[i].log);
    }
    free(cfg->services);
    cfg->services = NULL;
    cfg->nservices = 0;
}

static void on_key(struct yamlcfg *w, const char *key, yaml_node_t *k, yaml_node_t *v, void *ctx)
{
    struct config_service *s = ctx;
    char err[128], *fmt = NULL;
    if (strcmp(key, "name") == 0) {
        if (yamlcfg_str(w, v, "services.name", &s->name) == 0 &&
            ingest_check_service(s->name, err, sizeof(err)) < 0)
            yamlcfg_err(w, v, "services.name: %s", err);
    } else if (strcmp(key, "url") == 0) {
        if (yamlcfg_str(w, v, "services.url", &s->url) == 0 &&
            ((strncmp(s->url, "http://", 7) != 0 && strncmp(s->url, "https://", 8) != 0) ||
             strpbrk(s->url, " \r\n")))
            yamlcfg_err(w, v, "services.url: want an http:// or https:// URL");
    } else if (strcmp(key, "log") == 0) {
        if (yamlcfg_str(w, v, "services.log", &s->log) == 0 && !*s->log)
            yamlcfg_err(w, v, "services.log: want a file path or glob");
    } else if (strcmp(key, "log_format") == 0) {
        if (yamlcfg_str(w, v, "services.log_format", &fmt) == 0 &&
            (ingest_format_parse(fmt, &s->log_format) < 0 || s->log_format == INGEST_FMT_PATTERN))
            yamlcfg_err(w, v, "services.log_format: want common, combined or json");
        free(fmt);
    } else if (strcmp(key, "interval") == 0) {
        yamlcfg_duration(w, v, "services.interval", 1000, 24LL * 3600 * 1000, &s->interval_ms);
    } else {
        yamlcfg_err(
            w, k, "services: unknown key '%s' (known: name, url, log, log_format, interval)", key);
    }
}

int config__services_parse(struct config *cfg, const char *file, yaml_document_t *doc,
                           yaml_node_t *node, struct sbuf *errors)
{
    struct yamlcfg w = {.file = file, .doc = doc, .errors = errors};
    yaml_node_item_t *items;
    size_t n;
    config__services_release(cfg);
    if (yamlcfg_seq(&w, node, "services", &items, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *sn = yamlcfg_node(&w, items[i]);
        cfg->services = xrealloc(cfg->services, (cfg->nservices + 1) * sizeof(*cfg->services));
        struct config_service *s = &cfg->services[cfg->nservices++];
        memset(s, 0, sizeof(*s));
        s->log_format = INGEST_FMT_COMBINED;
        s->interval_ms = PROBE_DEFAULT_INTERVAL_MS;
        s->line = (unsigned)sn->start_mark.line + 1;
        s->col = (unsigned)sn->start_mark.column + 1;
        if (yamlcfg_each_key(&w, sn, "services[]", on_key, s) < 0)
            continue;
        if (!s->name)
            yamlcfg_err(&w, sn, "services: each entry needs name: NAME");
        if (!s->url && !s->log)
            yamlcfg_err(&w, sn, "services: a service needs url: (probed) or log: (followed)");
        for (size_t k = 0; s->name && k + 1 < cfg->nservices; k++)
            if (cfg->services[k].name && strcmp(cfg->services[k].name, s->name) == 0)
                yamlcfg_err(&w, sn, "services: '%s' is given twice", s->name);
    }
    return w.nerr ? -1 : 0;
}

int config__services_apply(struct config *cfg, const char *file, struct sbuf *errors)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *s = &cfg->services[i];
        for (size_t k = 0; s->url && k < cfg->probes.ntargets; k++)
            if (strcmp(cfg->probes.targets[k].name, s->name) == 0) {
                sbuf_addf(errors, "%s:%u:%u: services: '%s' already has an entry in probes:\n",
                          file, s->line, s->col, s->name);
                rc = -1;
            }
        for (size_t k = 0; s->log && k < cfg->nlogs; k++)
            if (strcmp(cfg->logs[k].service, s->name) == 0) {
                sbuf_addf(errors, "%s:%u:%u: services: '%s' already has an entry in logs:\n", file,
                          s->line, s->col, s->name);
                rc = -1;
            }
    }
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *s = &cfg->services[i];
        if (s->url) {
            struct probe_config *p = &cfg->probes;
            p->targets = xrealloc(p->targets, (p->ntargets + 1) * sizeof(*p->targets));
            struct probe_target *t = &p->targets[p->ntargets++];
            probe_target_http(t, s->name, s->url);
            t->interval_ms = s->interval_ms;
            if (t->timeout_ms > t->interval_ms)
                t->timeout_ms = t->interval_ms;
        }
        if (s->log) {
            cfg->logs = xrealloc(cfg->logs, (cfg->nlogs + 1) * sizeof(*cfg->logs));
            struct ingest_log *l = &cfg->logs[cfg->nlogs++];
            ingest_log_defaults(l);
            l->service = xstrdup(s->name);
            l->format = s->log_format;
            l->paths = xmalloc(sizeof(*l->paths));
            l->paths[0] = xstrdup(s->log);
            l->npaths = 1;
        }
    }
    return 0;
}
