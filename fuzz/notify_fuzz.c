/*
 * notify_fuzz.c: libFuzzer target for the notification pipeline's parsers
 * (src/notify/matcher.c, jsonread.c, config.c, common.c). The first byte
 * picks the parser, the rest is its input:
 *   0 matchers: a parse that succeeds prints to text that parses back to the
 *     same matchers;
 *   1 JSON: parse or fail cleanly with a message;
 *   2 config (Alertmanager YAML): parse or fail with every message naming
 *     the input as "fuzz.yml:LINE:COL: "; a config that parses builds a
 *     route tree that routes a label set;
 *   3 durations and RFC 3339 times: a duration that parses formats to text
 *     that parses to the same milliseconds.
 * Build and run with fuzz/run.sh.
 */
#include "notify/notify_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "notify_fuzz: check failed: %s\n", #x);                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static void fuzz_matchers(const char *s)
{
    struct notify_matchers ms = {0}, back = {0};
    char err[256];
    if (notify_matchers_parse(s, &ms, err, sizeof(err)) < 0) {
        CHECK(ms.n == 0); /* what a failed call added is taken back */
        notify_matchers_release(&ms);
        return;
    }
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_addc(&b, '{'); /* "{}" is a valid empty set; "" is not */
    for (size_t i = 0; i < ms.n; i++) {
        if (i)
            sbuf_addc(&b, ',');
        notify__matcher_string(&b, &ms.v[i]);
    }
    sbuf_addc(&b, '}');
    /* Names outside the plain alphabet print quoted; the parser takes them back. */
    int rc = notify_matchers_parse(b.buf, &back, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "notify_fuzz: %s -> %s: %s\n", s, b.buf, err);
    CHECK(rc == 0);
    CHECK(back.n == ms.n);
    for (size_t i = 0; i < ms.n; i++) {
        CHECK(strcmp(back.v[i].name, ms.v[i].name) == 0);
        CHECK(strcmp(back.v[i].value, ms.v[i].value) == 0);
        CHECK(back.v[i].op == ms.v[i].op);
    }
    sbuf_release(&b);
    notify_matchers_release(&ms);
    notify_matchers_release(&back);
}

static void fuzz_json(const char *s, size_t n)
{
    char err[256] = "";
    struct notify__jv *v = notify__json_parse(s, n, err, sizeof(err));
    CHECK(v || strncmp(err, "bad JSON at byte ", 17) == 0);
    notify__jv_free(v);
}

static void fuzz_config(const char *s)
{
    struct notify_config cfg;
    struct sbuf errors;
    notify_config_defaults(&cfg);
    sbuf_init(&errors, 1 << 20);
    if (notify_config_parse(&cfg, "fuzz.yml", s, &errors) < 0) {
        /* Every line is a positioned message. */
        for (const char *p = errors.buf; *p; p = strchr(p, '\n') + 1) {
            CHECK(strncmp(p, "fuzz.yml:", 9) == 0);
            CHECK(strchr(p, '\n'));
        }
    } else {
        struct notify__routes rt;
        notify__routes_build(&rt, &cfg);
        struct notify_label l[] = {{"alertname", "A"}, {"severity", "page"}};
        struct notify__lset set;
        CHECK(notify__lset_copy(&set, l, 2) == 0);
        const struct notify__route *out[16];
        size_t n = notify__routes_match(&rt, &set, out, 16);
        CHECK(!cfg.has_route || n > 0);
        notify__lset_free(&set);
        notify__routes_free(&rt);
    }
    notify_config_release(&cfg);
    sbuf_release(&errors);
}

static void fuzz_times(const char *s)
{
    long long ms, again;
    if (notify__duration_parse(s, &ms) == 0) {
        char out[32];
        notify__duration_format(ms, out);
        CHECK(notify__duration_parse(out, &again) == 0);
        CHECK(again == ms);
    }
    int64_t t;
    if (notify__time_parse(s, &t) == 0) {
        struct sbuf b;
        sbuf_init(&b, 0);
        notify__time_json(&b, t);
        sbuf_release(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0'; /* the parsers take NUL-terminated text (JSON takes a length) */
    switch (data[0] % 4) {
    case 0:
        fuzz_matchers(s);
        break;
    case 1:
        fuzz_json((const char *)data + 1, size - 1);
        break;
    case 2:
        fuzz_config(s);
        break;
    case 3:
        fuzz_times(s);
        break;
    }
    free(s);
    return 0;
}
