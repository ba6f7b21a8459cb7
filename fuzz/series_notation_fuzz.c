/*
 * series_notation_fuzz.c: libFuzzer target for the expanding notation of
 * rule unit tests' input series (src/rules/series_notation.c). The input is
 * the `values:` text (up to its first NUL). Checks: an error names a column
 * inside the text (or just past it) and a message; no more than
 * RULES_SERIES_MAX_VALUES values come out; parsing twice gives the same
 * values; and what parses, written back one value per item (%.17g, _,
 * stale, Inf, NaN), parses to the same values bit for bit. Build and run
 * with fuzz/run.sh.
 */
#include "rules/rules_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "series_notation_fuzz: check failed: %s\n", #x);                       \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static int same(const struct rules__sv *a, size_t na, const struct rules__sv *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind != b[i].kind)
            return 0;
        if (a[i].kind == RULES_SV_VALUE && !(isnan(a[i].v) && isnan(b[i].v)) &&
            memcmp(&a[i].v, &b[i].v, sizeof(double)) != 0)
            return 0;
    }
    return 1;
}

/* The values written back in the notation's simplest form; the caller frees it. */
static char *write_back(const struct rules__sv *v, size_t n)
{
    size_t cap = n * 32 + 1, len = 0;
    char *out = malloc(cap);
    CHECK(out);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? " " : "";
        if (v[i].kind == RULES_SV_OMITTED)
            len += (size_t)snprintf(out + len, cap - len, "%s_", sep);
        else if (v[i].kind == RULES_SV_STALE)
            len += (size_t)snprintf(out + len, cap - len, "%sstale", sep);
        else if (isnan(v[i].v))
            len += (size_t)snprintf(out + len, cap - len, "%sNaN", sep);
        else if (isinf(v[i].v))
            len += (size_t)snprintf(out + len, cap - len, "%s%sInf", sep, v[i].v < 0 ? "-" : "");
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%.17g", sep, v[i].v);
        CHECK(len < cap);
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    struct rules__sv *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, col = 0, col2 = 0;
    char err[160] = "", err2[160] = "";
    int rc = rules__series_values_parse(text, &a, &na, &col, err, sizeof(err));
    CHECK(na <= RULES_SERIES_MAX_VALUES);
    if (rc < 0) {
        CHECK(col >= 1 && col <= len + 1);
        CHECK(err[0] != '\0');
    } else {
        CHECK(rc == 0);
    }
    int rc2 = rules__series_values_parse(text, &b, &nb, &col2, err2, sizeof(err2));
    CHECK(rc2 == rc && col2 == col && strcmp(err, err2) == 0 && same(a, na, b, nb));
    if (rc == 0 && na <= 10000) {
        char *back = write_back(a, na);
        struct rules__sv *c = NULL;
        size_t nc = 0;
        CHECK(rules__series_values_parse(back, &c, &nc, &col, err, sizeof(err)) == 0);
        CHECK(same(a, na, c, nc));
        free(c);
        free(back);
    }
    free(a);
    free(b);
    free(text);
    return 0;
}
