/*
 * builtin.c: the default rule pack. The files of rules/ are compiled into
 * the binary (scripts/embed-rules.cmake writes rules__pack[]), so `sitrep
 * serve` watches the host with no config at all, and what it loads is what
 * the tests checked: rules_builtin_test parses every file and checks every
 * alert's annotations. rules_load puts the pack (less the rules a config
 * disables) ahead of the user's rule files, each file named
 * "builtin:host.yml" in messages and in /api/v1/rules.
 */
#include "rules/rules_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t rules_builtin_count(void)
{
    return rules__pack_n;
}

const char *rules_builtin_name(size_t i)
{
    return i < rules__pack_n ? rules__pack[i].name : NULL;
}

const char *rules_builtin_text(size_t i, size_t *len)
{
    if (i >= rules__pack_n)
        return NULL;
    if (len)
        *len = rules__pack[i].len;
    return rules__pack[i].text;
}

int rules_builtin_find(const char *name)
{
    size_t pl = strlen(RULES_BUILTIN_PREFIX);
    if (strncmp(name, RULES_BUILTIN_PREFIX, pl) == 0)
        name += pl;
    for (size_t i = 0; i < rules__pack_n; i++)
        if (strcmp(rules__pack[i].name, name) == 0)
            return (int)i;
    return -1;
}

int rules_builtin_parse(struct rules_set **set, int64_t default_interval_ms, struct sbuf *errors)
{
    int rc = 0;
    if (!*set)
        *set = xcalloc(1, sizeof(**set));
    for (size_t i = 0; i < rules__pack_n; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s%s", RULES_BUILTIN_PREFIX, rules__pack[i].name);
        if (rules_parse(set, name, rules__pack[i].text, rules__pack[i].len, default_interval_ms,
                        errors) < 0)
            rc = -1;
    }
    return rc;
}

int rules_builtin_has_rule(const char *name)
{
    struct rules_set *set = NULL;
    struct sbuf errors;
    sbuf_init(&errors, 1 << 16);
    int found = 0;
    if (rules_builtin_parse(&set, 60000, &errors) == 0)
        for (size_t g = 0; g < set->ngroups && !found; g++)
            for (size_t i = 0; i < set->groups[g].nrules && !found; i++)
                found = strcmp(set->groups[g].rules[i].name, name) == 0;
    rules_set_free(set);
    sbuf_release(&errors);
    return found;
}

static int listed(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Drop the rules of groups [0, nbuiltin) whose name is in disable. */
static void leave_out(struct rules_set *set, size_t nbuiltin, const char *const *disable,
                      size_t ndisable)
{
    for (size_t g = 0; g < nbuiltin; g++) {
        struct rules__group *gr = &set->groups[g];
        size_t keep = 0;
        for (size_t i = 0; i < gr->nrules; i++) {
            if (listed(gr->rules[i].name, disable, ndisable))
                rules__rule_release(&gr->rules[i]);
            else
                gr->rules[keep++] = gr->rules[i];
        }
        gr->nrules = keep;
    }
}

/* Drop each group of [0, nbuiltin) that a later (user) group of the same name replaces. */
static void replace_overridden(struct rules_set *set, size_t nbuiltin)
{
    size_t keep = 0;
    for (size_t g = 0; g < set->ngroups; g++) {
        struct rules__group *gr = &set->groups[g];
        const struct rules__group *by = NULL;
        for (size_t u = nbuiltin; g < nbuiltin && u < set->ngroups && !by; u++)
            if (strcmp(set->groups[u].name, gr->name) == 0)
                by = &set->groups[u];
        if (by) {
            log_info("rules: group \"%s\" of %s replaces the built-in one of %s", by->name,
                     by->file, gr->file);
            rules__group_release(gr);
        } else {
            set->groups[keep++] = *gr;
        }
    }
    set->ngroups = keep;
}

int rules_load(struct rules_set **setp, const struct rules_sources *src, struct sbuf *errors)
{
    struct rules_set *set = xcalloc(1, sizeof(*set));
    int rc = 0;
    if (src->builtin && rules_builtin_parse(&set, src->default_interval_ms, errors) < 0)
        rc = -1; /* cannot happen with the pack as tested; said if it does */
    size_t nbuiltin = set->ngroups;
    if (rules_load_globs(&set, src->patterns, src->npatterns, src->base_dir,
                         src->default_interval_ms, errors) < 0)
        rc = -1;
    if (rc < 0) {
        rules_set_free(set);
        *setp = NULL;
        return -1;
    }
    leave_out(set, nbuiltin, src->disable, src->ndisable);
    replace_overridden(set, nbuiltin);
    *setp = set;
    return 0;
}
