/*
 * template_fuzz.c: libFuzzer target for the alert template language
 * (src/rules/template.c). The first byte picks $value (a number, NaN, an
 * infinity, a tiny or a huge one, a Unix time), the rest is the template.
 * It is checked alone (as rule loading does) and expanded against a fixed
 * alert whose `query` answers from a fixed table (by the expression's
 * length: three processes, nothing, an error, or more samples than are
 * kept). Checks: an error is "LINE:COL: message" with the position inside
 * the template and appends nothing; a template the check refuses fails to
 * expand too; the check runs no query; text without "{{" expands to itself;
 * output stays under RULES_MAX_TEMPLATE_OUT; no expansion runs more than
 * RULES_TMPL_MAX_QUERIES queries; expanding twice gives the same bytes.
 * Build and run with fuzz/run.sh.
 */
#include "rules/rules.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "template_fuzz: check failed: %s\n", #x);                              \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static const struct rules_tmpl_label labels[] = {{"alertname", "HostDown"},
                                                 {"instance", "db1:9100"},
                                                 {"job", "node"},
                                                 {"mountpoint", "/var/lib"},
                                                 {"severity", "page"}};
static const struct rules_tmpl_label ext[] = {{"cluster", "eu1"}, {"region", "north"}};

static unsigned queries; /* calls of fake_query in the current expansion */

static int fake_query(void *ctx, const char *expr, struct rules_tmpl_vec *out, char *err,
                      size_t errcap)
{
    (void)ctx;
    queries++;
    static const struct rules_tmpl_label procs[3][2] = {
        {{"comm", "postgres"}, {"pid", "812"}},
        {{"comm", "java"}, {"pid", "1"}},
        {{"comm", ""}, {"pid", "77"}},
    };
    static const double values[] = {0.75, NAN, -1e300};
    switch (strlen(expr) % 4) {
    case 0:
        for (size_t i = 0; i < 3; i++)
            rules_tmpl_vec_add(out, values[i], procs[i], i == 2 ? 1 : 2);
        return 0;
    case 1:
        return 0;
    case 2:
        snprintf(err, errcap, "1:1: parse error: \"%s\"", expr);
        return -1;
    default:
        for (int i = 0; i < 2 * RULES_TMPL_MAX_SAMPLES; i++)
            if (rules_tmpl_vec_add(out, i, procs[i % 3], 2) < 0)
                break;
        CHECK(out->n == RULES_TMPL_MAX_SAMPLES);
        return 0;
    }
}

/* Expand; on failure check the message and that out is untouched. Returns rc. */
static int expand(const char *src, const struct rules_tmpl_data *d, struct sbuf *out, char *err,
                  size_t errcap)
{
    sbuf_reset(out);
    sbuf_adds(out, "#"); /* what a failed expansion must leave alone */
    err[0] = '\0';
    queries = 0;
    int rc = rules_template_expand(src, d, out, err, errcap);
    CHECK(queries <= (d ? RULES_TMPL_MAX_QUERIES : 0));
    if (rc < 0) {
        CHECK(out->len == 1 && out->buf[0] == '#');
        unsigned long line = 0, col = 0;
        int used = 0;
        CHECK(sscanf(err, "%lu:%lu: %n", &line, &col, &used) == 2 && used > 0 && err[used]);
        size_t lines = 1, len = strlen(src);
        for (size_t i = 0; i < len; i++)
            lines += src[i] == '\n';
        CHECK(line >= 1 && line <= lines && col >= 1 && col <= len + 1);
    } else {
        CHECK(rc == 0 && out->len >= 1 && out->len - 1 <= RULES_MAX_TEMPLATE_OUT);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double values[] = {0, 1234.5, NAN, INFINITY, -INFINITY, 1e-9, 1e300, 1700000000};
    if (size < 1)
        return 0;
    char *src = malloc(size);
    memcpy(src, data + 1, size - 1);
    src[size - 1] = '\0'; /* templates are C strings: the text up to a NUL byte */
    struct rules_tmpl_data d = {.value = values[data[0] % (sizeof(values) / sizeof(values[0]))],
                                .labels = labels,
                                .nlabels = 5,
                                .external = ext,
                                .nexternal = 2,
                                .external_url = "http://sitrep.test",
                                .query = fake_query};
    struct sbuf checked, out, again;
    char err[256], err_checked[256], err_again[256];
    sbuf_init(&checked, 0);
    sbuf_init(&out, 0);
    sbuf_init(&again, 0);
    int rc_checked = expand(src, NULL, &checked, err_checked, sizeof(err_checked));
    int rc = expand(src, &d, &out, err, sizeof(err));
    /* The check refuses nothing that expands: a rule file it passes never has a template
     * that fails for its form (values may still fail, e.g. a label that is no number). */
    if (rc_checked < 0)
        CHECK(rc < 0);
    if (rc == 0 && !strstr(src, "{{") && strlen(src) <= RULES_MAX_TEMPLATE_OUT)
        CHECK(out.len == strlen(src) + 1 && memcmp(out.buf + 1, src, out.len - 1) == 0);
    int rc_again = expand(src, &d, &again, err_again, sizeof(err_again));
    CHECK(rc_again == rc);
    CHECK(rc < 0 ? strcmp(err, err_again) == 0
                 : again.len == out.len && memcmp(again.buf, out.buf, out.len) == 0);
    sbuf_release(&checked);
    sbuf_release(&out);
    sbuf_release(&again);
    free(src);
    return 0;
}
