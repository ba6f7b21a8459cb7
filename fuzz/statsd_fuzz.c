/*
 * statsd_fuzz.c: libFuzzer target for the StatsD line parser and the
 * aggregation behind it (src/statsd/parse.c, statsd.c). The input is fed as
 * one datagram to a listener with small caps (4 series, 8 set members),
 * then each line is parsed alone, copied into a buffer of exactly its size
 * (so ASan sees any read past it). Invariants, beyond "no crash":
 *   - a parsed line has a name of [a-zA-Z0-9_] not starting with a digit,
 *     1..STATSD_MAX_VALUES finite values (a set: none, and a member inside
 *     the line), a rate in (0, 1], tags sorted by key with no repeat;
 *   - after a tick the batch holds at most 4 series' worth of samples, and
 *     counters, histogram counts and buckets are never negative.
 * Build and run with fuzz/run.sh.
 */
#include "statsd/statsd.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "statsd_fuzz: check failed: %s\n", #x);                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static void check_line(const char *line, size_t n)
{
    struct statsd_line l;
    enum statsd_bad why;
    if (statsd_parse_line(line, n, &l, &why) < 0) {
        CHECK((unsigned)why < STATSD_BAD_NREASONS);
        return;
    }
    size_t nl = strlen(l.name);
    CHECK(nl > 0 && nl <= STATSD_MAX_NAME && !(l.name[0] >= '0' && l.name[0] <= '9'));
    for (size_t i = 0; i < nl; i++)
        CHECK(l.name[i] == '_' || (l.name[i] >= 'a' && l.name[i] <= 'z') ||
              (l.name[i] >= 'A' && l.name[i] <= 'Z') || (l.name[i] >= '0' && l.name[i] <= '9'));
    if (l.type == STATSD_SET) {
        CHECK(l.nvalues == 0 && l.member >= line && l.member + l.member_len <= line + n);
    } else {
        CHECK(l.nvalues >= 1 && l.nvalues <= STATSD_MAX_VALUES);
        for (size_t i = 0; i < l.nvalues; i++)
            CHECK(isfinite(l.values[i]));
    }
    CHECK(l.rate > 0 && l.rate <= 1);
    CHECK(l.ntags <= STATSD_MAX_TAGS);
    for (size_t i = 1; i < l.ntags; i++)
        CHECK(strcmp(l.tags[i - 1].key, l.tags[i].key) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct statsd_config c;
    statsd_config_defaults(&c);
    c.max_series = 4;
    c.max_set_members = 8;
    struct statsd_opts o = {.config = &c};
    struct statsd *s = statsd_new(&o);
    statsd_config_release(&c);
    statsd_feed(s, (const char *)data, size, 1700000000000);
    statsd_tick(s, 1700000001000);
    const struct metric_buf *b = statsd_last(s);
    size_t series = 0;
    for (size_t i = 0; i < b->nfams; i++) {
        const char *name = metric_str(b, b->fams[i].name);
        if (strncmp(name, "sitrep_", 7) == 0)
            continue;
        if (!strstr(name, "_bucket") && !strstr(name, "_sum"))
            series++;
        for (uint32_t k = 0; k < b->fams[i].count; k++) {
            double v = b->samples[b->fams[i].first + k].value;
            if (b->fams[i].type == METRIC_COUNTER && !strstr(name, "_sum"))
                CHECK(v >= 0);
        }
    }
    CHECK(series <= 4);
    statsd_free(s);

    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = malloc(n ? n : 1);
        memcpy(line, p, n);
        check_line(line, n);
        free(line);
        p += n + (nl ? 1 : 0);
    }
    return 0;
}
