/*
 * cli.c: `sitrep query`, PromQL from the command line against a running
 * daemon (which owns the store): an instant query now or --at a time, or a
 * range query over --range ending now (or --at) every --step. Prints the
 * daemon's readable table, or its JSON with --json. Talks HTTP (libcurl) to
 * --server, default the daemon's default listen address.
 */
#include "query/api.h"
#include "query/cli.h"
#include "util/sbuf.h"
#include "util/util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers bigger than this are cut (the daemon caps queries too). */
#define CLI_MAX_ANSWER ((size_t)256 << 20)

static void usage(FILE *out)
{
    fputs(
        "Usage: sitrep query 'EXPR' [--at TIME] [--range DURATION --step DURATION] [--json]\n"
        "                           [--server HOST:PORT] [--timeout DURATION]\n"
        "\n"
        "Evaluate PromQL on a running sitrep. TIME is Unix seconds or RFC 3339;\n"
        "DURATION is seconds or 1m, 1h30m... Without --range: an instant query.\n"
        "\n"
        "Examples:\n"
        "  sitrep query 'node_load1'\n"
        "  sitrep query 'rate(node_cpu_seconds_total{mode=\"user\"}[1m])' --range 10m --step 30s\n"
        "  sitrep query 'sum by (mode) (node_cpu_seconds_total)' --json\n"
        "\n"
        "Exit status: 0 answered, 1 the query failed (the error is printed), 2 usage,\n"
        "3 the daemon could not be reached.\n",
        out);
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    struct sbuf *b = ctx;
    return sbuf_add(b, p, size * n) < 0 ? 0 : size * n;
}

/* Append "&name=value" (value escaped) to url. */
static void add_arg(CURL *c, struct sbuf *url, const char *name, const char *value)
{
    char *e = curl_easy_escape(c, value, 0);
    sbuf_addf(url, "%s%s=%s", strchr(url->buf, '?') ? "&" : "?", name, e);
    curl_free(e);
}

int query_cli(int argc, char **argv)
{
    const char *expr = NULL, *at = NULL, *range = NULL, *step = NULL, *timeout = NULL;
    const char *server = getenv("SITREP_SERVER") ? getenv("SITREP_SERVER") : "127.0.0.1:9797";
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--at") == 0        ? &at
                            : strcmp(a, "--range") == 0   ? &range
                            : strcmp(a, "--step") == 0    ? &step
                            : strcmp(a, "--server") == 0  ? &server
                            : strcmp(a, "--timeout") == 0 ? &timeout
                                                          : NULL;
        if (slot) {
            if (i + 1 == argc) {
                fprintf(stderr, "sitrep query: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "sitrep query: unknown option %s\n", a);
            return 2;
        } else if (!expr) {
            expr = a;
        } else {
            fprintf(stderr, "sitrep query: one expression only (quote it)\n");
            return 2;
        }
    }
    if (!expr) {
        usage(stderr);
        return 2;
    }
    if (!range != !step) {
        fprintf(stderr, "sitrep query: --range and --step go together\n");
        return 2;
    }
    int64_t end_ms = util_now_ms(), range_ms = 0;
    if (at && query_api_parse_time(at, &end_ms) < 0) {
        fprintf(stderr, "sitrep query: --at %s: want Unix seconds or RFC 3339\n", at);
        return 2;
    }
    if (range && (query_api_parse_duration(range, &range_ms) < 0 || range_ms <= 0)) {
        fprintf(stderr, "sitrep query: --range %s: want a duration such as 1h or 600\n", range);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    struct sbuf url, body;
    sbuf_init(&url, 0);
    sbuf_init(&body, CLI_MAX_ANSWER);
    sbuf_addf(&url, "http://%s/api/v1/%s", server, range ? "query_range" : "query");
    add_arg(c, &url, "query", expr);
    char t[32];
    if (range) {
        snprintf(t, sizeof(t), "%.3f", (double)(end_ms - range_ms) / 1000);
        add_arg(c, &url, "start", t);
        snprintf(t, sizeof(t), "%.3f", (double)end_ms / 1000);
        add_arg(c, &url, "end", t);
        add_arg(c, &url, "step", step);
    } else {
        snprintf(t, sizeof(t), "%.3f", (double)end_ms / 1000);
        add_arg(c, &url, "time", t);
    }
    if (timeout)
        add_arg(c, &url, "timeout", timeout);
    if (!json)
        add_arg(c, &url, "format", "text");
    curl_easy_setopt(c, CURLOPT_URL, url.buf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int rc;
    if (cc != CURLE_OK) {
        fprintf(stderr, "sitrep query: %s: %s (is `sitrep serve` running there? --server)\n",
                server, curl_easy_strerror(cc));
        rc = 3;
    } else {
        fwrite(body.buf, 1, body.len, code == 200 ? stdout : stderr);
        if (json)
            fputc('\n', code == 200 ? stdout : stderr);
        rc = code == 200 ? 0 : 1;
    }
    curl_easy_cleanup(c);
    curl_global_cleanup();
    sbuf_release(&url);
    sbuf_release(&body);
    return rc;
}
