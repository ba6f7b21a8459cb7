/*
 * accesslog_fuzz.c: libFuzzer target for the access-log parsers and what
 * follows them (src/ingest/logparse.c, route.c, sketch.c, agg.c). The first
 * byte picks a format (common, combined, either with a request time, JSON
 * with default or nested field names, a PCRE2 pattern); the rest is split
 * into lines, each copied into a buffer of exactly its size (so ASan sees
 * any read past a line) and parsed. Invariants, beyond "no crash":
 *   - a parsed line has a status in 100..599, a request time that is
 *     absent or finite in [0, 1e15), and slices inside the line (or, for
 *     JSON's decoded strings, inside the parser's scratch buffer);
 *   - a route is at most INGEST_MAX_ROUTE_LEN printable ASCII bytes, and
 *     normalising it again gives the same route; a client label is at most
 *     INGEST__CLIENT_MAX printable ASCII bytes;
 *   - after folding every line into a service with max_routes 4, the
 *     emitted requests add up to the lines parsed, at most 4 learned routes
 *     (+ "other" + the configured pattern) appear, and every label value is
 *     printable ASCII (the store takes valid UTF-8 only).
 * Build and run with fuzz/run.sh.
 */
#include "ingest/ingest_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "accesslog_fuzz: check failed: %s\n", #x);                             \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define NFORMATS 7

static struct ingest__parser parsers[NFORMATS];
static struct ingest_log logs[NFORMATS];

static void setup(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    static const enum ingest_format fmt[NFORMATS] = {
        INGEST_FMT_COMMON, INGEST_FMT_COMBINED, INGEST_FMT_COMBINED, INGEST_FMT_COMMON,
        INGEST_FMT_JSON,   INGEST_FMT_JSON,     INGEST_FMT_PATTERN,
    };
    static const enum ingest_unit unit[NFORMATS] = {
        INGEST_UNIT_NONE, INGEST_UNIT_NONE, INGEST_UNIT_S,  INGEST_UNIT_US,
        INGEST_UNIT_NONE, INGEST_UNIT_MS,   INGEST_UNIT_US,
    };
    static char *routes[] = {"/api/:id/**"};
    static struct ingest_counter counters[] = {{"login", "POST /log[i]n"}};
    for (int i = 0; i < NFORMATS; i++) {
        struct ingest_log *l = &logs[i];
        memset(l, 0, sizeof(*l)); /* (ingest_log_defaults is in ingest.c, not linked here) */
        l->service = "fuzz";
        l->retry_window_ms = INGEST_DEFAULT_RETRY_WINDOW_MS;
        l->format = fmt[i];
        l->request_time = unit[i];
        l->client_forwarded = i == 2;
        l->max_routes = 4;
        l->max_line = 8192;
        l->routes = routes;
        l->nroutes = 1;
        l->counters = counters;
        l->ncounters = 1;
        if (i == 5) {
            l->fields[INGEST_FIELD_CLIENT] = "req.ip";
            l->fields[INGEST_FIELD_METHOD] = "req.m";
            l->fields[INGEST_FIELD_PATH] = "req.uri";
            l->fields[INGEST_FIELD_DURATION] = "t.total";
        }
        l->pattern = "^(?<client>\\S+) (?:(?<method>[A-Z]+) (?<path>\\S+)|\"(?<request>[^\"]*)\") "
                     "(?<status>\\d+)(?: (?<bytes>\\S+))?(?: (?<duration>\\S+))?";
        char err[256];
        CHECK(ingest__parser_init(&parsers[i], l, err, sizeof(err)) == 0);
    }
}

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static int inside(struct ingest__str s, const char *line, size_t n, const struct ingest__parser *p)
{
    if (!s.n)
        return 1;
    if (s.p >= line && s.p + s.n <= line + n)
        return 1;
    return p->scratch && s.p >= p->scratch && s.p + s.n <= p->scratch + p->scratch_cap;
}

/* Every label value of the batch is printable ASCII (spaces allowed in help, not here). */
static void check_batch(const struct metric_buf *b, size_t parsed)
{
    double requests = 0;
    size_t routes = 0;
    char seen[16][INGEST_MAX_ROUTE_LEN + 1];
    for (size_t f = 0; f < b->nfams; f++) {
        const char *name = metric_str(b, b->fams[f].name);
        for (uint32_t k = 0; k < b->fams[f].count; k++) {
            const struct metric_sample *s = &b->samples[b->fams[f].first + k];
            const char *p = metric_str(b, s->labels);
            for (uint32_t i = 0; i < s->nlabels; i++) {
                const char *key = p, *val = p + strlen(p) + 1;
                CHECK(printable(val, strlen(val)));
                if (strcmp(name, "accesslog_requests_total") == 0 && strcmp(key, "route") == 0) {
                    size_t r = 0;
                    while (r < routes && strcmp(seen[r], val) != 0)
                        r++;
                    if (r == routes) {
                        CHECK(routes < 6); /* other + the pattern + 4 learned */
                        snprintf(seen[routes++], sizeof(seen[0]), "%s", val);
                    }
                }
                p = val + strlen(val) + 1;
            }
            if (strcmp(name, "accesslog_requests_total") == 0)
                requests += s->value;
        }
    }
    CHECK(requests == (double)parsed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    int which = data[0] % NFORMATS;
    struct ingest__parser *p = &parsers[which];
    struct ingest__service svc;
    char err[256];
    CHECK(ingest__service_init(&svc, &logs[which], err, sizeof(err)) == 0);
    const char *s = (const char *)data + 1, *e = (const char *)data + size;
    size_t parsed = 0;
    while (s < e) {
        const char *nl = memchr(s, '\n', (size_t)(e - s));
        size_t n = (size_t)((nl ? nl : e) - s);
        char *line = malloc(n ? n : 1);
        memcpy(line, s, n);
        struct ingest__rec r;
        ingest__service_match_line(&svc, line, n);
        if (n <= logs[which].max_line && ingest__parse(p, line, n, &r) == 0) {
            CHECK(r.status >= 100 && r.status <= 599);
            CHECK(r.duration_s < 0 || (isfinite(r.duration_s) && r.duration_s < 1e15));
            CHECK(inside(r.client, line, n, p) && inside(r.method, line, n, p) &&
                  inside(r.target, line, n, p) && inside(r.time, line, n, p));
            char a[INGEST_MAX_ROUTE_LEN + 1], b[INGEST_MAX_ROUTE_LEN + 1];
            size_t la = ingest__route_normalise(r.target.p, r.target.n, a);
            CHECK(la <= INGEST_MAX_ROUTE_LEN && la == strlen(a) && printable(a, la));
            size_t lb = ingest__route_normalise(a, la, b);
            CHECK(lb == la && memcmp(a, b, la) == 0);
            char c[INGEST__CLIENT_MAX + 1];
            size_t lc = ingest__client_clean(r.client.p, r.client.n, c, sizeof(c));
            CHECK(lc <= INGEST__CLIENT_MAX && printable(c, lc));
            int64_t ms;
            ingest__parse_time(r.time.p, r.time.n, &ms);
            ingest__service_observe(&svc, &r, 1000000);
            parsed++;
        }
        free(line);
        s += n + 1;
    }
    struct metric_buf b;
    metric_buf_init(&b);
    metric_buf_reset(&b, 1000);
    struct ingest__service *one = &svc;
    ingest__services_emit(&one, 1, &b, 1);
    check_batch(&b, parsed);
    metric_buf_release(&b);
    ingest__service_release(&svc);
    return 0;
}
