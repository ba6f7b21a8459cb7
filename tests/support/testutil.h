/*
 * testutil.h: helpers for unit tests (included by *_test.c only): fixture
 * paths and lookups of samples in a metric_buf by name and label text.
 */
#ifndef SITREP_TESTUTIL_H
#define SITREP_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metric/metric.h"
#include "util/util.h"

/* Path of a fixture below $SITREP_FIXTURES (set by ctest). Static buffer. */
static inline const char *fixture(const char *rel)
{
    static char path[4096];
    const char *root = getenv("SITREP_FIXTURES");
    snprintf(path, sizeof(path), "%s/%s", root ? root : SITREP_FIXTURES_DIR, rel);
    return path;
}

/* Render a sample's labels as `a="x",b="y"` (no escaping; tests only). */
static inline void tu_labels(const struct metric_buf *b, const struct metric_sample *s, char *out,
                             size_t cap)
{
    const char *p = metric_str(b, s->labels);
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < s->nlabels; i++) {
        const char *k = p, *v = p + strlen(p) + 1;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s=\"%s\"", i ? "," : "", k, v);
        p = v + strlen(v) + 1;
    }
}

/*
 * Find the sample of family `name` whose labels render exactly as `labels`
 * ("" for none). Returns 1 and stores the value, or 0 if absent.
 */
static inline int tu_find(const struct metric_buf *b, const char *name, const char *labels,
                          double *value)
{
    char buf[1024];
    for (size_t i = 0; i < b->nfams; i++) {
        const struct metric_fam_rec *f = &b->fams[i];
        if (strcmp(metric_str(b, f->name), name) != 0)
            continue;
        for (uint32_t k = 0; k < f->count; k++) {
            const struct metric_sample *s = &b->samples[f->first + k];
            tu_labels(b, s, buf, sizeof(buf));
            if (strcmp(buf, labels) == 0) {
                if (value)
                    *value = s->value;
                return 1;
            }
        }
    }
    return 0;
}

/* Number of samples of family `name`. */
static inline size_t tu_count(const struct metric_buf *b, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nfams; i++)
        if (strcmp(metric_str(b, b->fams[i].name), name) == 0)
            n += b->fams[i].count;
    return n;
}

/* The value of the sample, failing the test if it is absent. */
static inline double tu_value(const struct metric_buf *b, const char *name, const char *labels)
{
    double v = 0;
    if (!tu_find(b, name, labels, &v))
        fail_msg("no sample %s{%s}", name, labels);
    return v;
}

#endif
