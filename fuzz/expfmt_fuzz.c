/*
 * expfmt_fuzz.c: libFuzzer target for the Prometheus text / OpenMetrics
 * parser (src/ingest/expfmt.c). The first byte picks the flavour; the rest,
 * copied into a buffer of exactly its size, is parsed to the end.
 * Invariants, beyond "no crash":
 *   - every sample has a valid metric name of at most EXPFMT_MAX_NAME
 *     bytes, at most EXPFMT_MAX_LABELS labels with valid, distinct names
 *     and valid UTF-8 values;
 *   - every error message starts with "LINE:COL: " and LINE never goes
 *     backwards; the loop ends (each call consumes a line).
 * Build and run with fuzz/run.sh.
 */
#include "ingest/expfmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "expfmt_fuzz: check failed: %s\n", #x);                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    enum expfmt_flavour f = data[0] & 1 ? EXPFMT_OPENMETRICS : EXPFMT_TEXT;
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    memcpy(buf, data + 1, n);
    struct expfmt p;
    expfmt_init(&p, buf, n, f);
    struct expfmt_sample s;
    char err[256];
    int r;
    unsigned last_line = 0, calls = 0;
    while ((r = expfmt_next(&p, &s, err, sizeof(err))) != 0) {
        CHECK(++calls <= n + 1);
        CHECK(p.line >= last_line);
        last_line = p.line;
        if (r < 0) {
            unsigned line, col;
            CHECK(sscanf(err, "%u:%u: ", &line, &col) == 2 && line == p.line);
            continue;
        }
        size_t nl = strlen(s.name);
        CHECK(nl > 0 && nl <= EXPFMT_MAX_NAME && metric_name_valid(s.name));
        CHECK(s.nlabels <= EXPFMT_MAX_LABELS);
        for (size_t i = 0; i < s.nlabels; i++) {
            CHECK(metric_label_name_valid(s.labels[i].name));
            CHECK(expfmt_utf8_valid(s.labels[i].value, strlen(s.labels[i].value)));
            for (size_t k = 0; k < i; k++)
                CHECK(strcmp(s.labels[k].name, s.labels[i].name) != 0);
        }
    }
    expfmt_release(&p);
    free(buf);
    return 0;
}
