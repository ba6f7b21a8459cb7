/*
 * rules_file_fuzz.c: libFuzzer target for the rule file loader
 * (src/rules/load.c, with the PromQL parser and the template checker it
 * calls). Every input is a rule file's text. Loading must either fail with
 * one "fuzz.yml:LINE:COL: message" line per problem, the position inside
 * the input (or the one whole-file message about the rule cap), or give a
 * set that loads the same again and whose every rule has a name and a
 * parsed expression; every label and annotation template of an alerting
 * rule then expands against a fixed alert without crashing and within the
 * output cap. Leaks are failures (LeakSanitizer). Build and run with
 * fuzz/run.sh.
 */
#include "rules/rules_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "rules_file_fuzz: check failed: %s\n", #x);                            \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Every line of errors names a position inside text (lines counted as libyaml does). */
static void check_errors(const char *errors, const char *text, size_t len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n' || text[i] == '\r';
    for (const char *p = errors; *p;) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        unsigned long line = 0, col = 0;
        int used = 0;
        if (strncmp(p, "fuzz.yml: more than ", 20) != 0) {
            CHECK(sscanf(p, "fuzz.yml:%lu:%lu: %n", &line, &col, &used) == 2 && used > 0);
            CHECK(line >= 1 && line <= lines + 1);
            CHECK(col >= 1 && col <= len + 2);
            CHECK(p + used < nl); /* a message follows the position */
        }
        p = nl + 1;
    }
}

/* Expand a rule's templates against a fixed alert: never a crash, never past the cap. */
static void expand_all(const struct rules__rule *r)
{
    static const struct rules_tmpl_label labels[] = {
        {"alertname", "HostDown"}, {"instance", "db1:9100"}, {"job", "node"}};
    static const struct rules_tmpl_label ext[] = {{"cluster", "eu1"}};
    const struct rules_tmpl_data d = {.value = 1234.5,
                                      .labels = labels,
                                      .nlabels = 3,
                                      .external = ext,
                                      .nexternal = 1,
                                      .external_url = "http://sitrep.test"};
    for (int ann = 0; ann < 2; ann++) {
        const struct rules_label *l = ann ? r->ann : r->labels;
        size_t n = ann ? r->nann : r->nlabels;
        for (size_t i = 0; i < n; i++) {
            struct sbuf out;
            char err[256];
            sbuf_init(&out, 0);
            if (rules_template_expand(l[i].value, &d, &out, err, sizeof(err)) == 0)
                CHECK(out.len <= RULES_MAX_TEMPLATE_OUT);
            else
                CHECK(out.len == 0 && err[0]);
            sbuf_release(&out);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct rules_set *set = NULL;
    struct sbuf errors;
    sbuf_init(&errors, 1 << 20);
    int rc = rules_parse(&set, "fuzz.yml", text, size, 1000, &errors);
    if (rc < 0) {
        CHECK(errors.len > 0);
        check_errors(errors.buf, text, size);
    } else {
        CHECK(errors.len == 0);
        size_t n = 0;
        for (size_t g = 0; g < set->ngroups; g++) {
            const struct rules__group *gr = &set->groups[g];
            CHECK(gr->name && *gr->name && strcmp(gr->file, "fuzz.yml") == 0);
            CHECK(gr->interval_ms > 0);
            for (size_t i = 0; i < gr->nrules; i++, n++) {
                const struct rules__rule *r = &gr->rules[i];
                CHECK(r->name && *r->name && r->expr && r->expr_text);
                CHECK(r->for_ms >= 0 && r->keep_firing_for_ms >= 0);
                if (r->alerting)
                    expand_all(r);
            }
        }
        CHECK(n == rules_set_rules(set));
        /* loading is a function of the text */
        struct rules_set *again = NULL;
        struct sbuf e2;
        sbuf_init(&e2, 1 << 20);
        CHECK(rules_parse(&again, "fuzz.yml", text, size, 1000, &e2) == 0);
        CHECK(rules_set_groups(again) == set->ngroups && rules_set_rules(again) == n);
        rules_set_free(again);
        sbuf_release(&e2);
    }
    rules_set_free(set);
    sbuf_release(&errors);
    return 0;
}
