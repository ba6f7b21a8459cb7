/*
 * cli.c: `sitrep silence add|list|expire`, a small amtool for sitrep: it
 * talks to a running daemon's Alertmanager-shaped silences API with libcurl
 * (and so works against a real Alertmanager too).
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ANSWER (8 << 20)

static void usage(FILE *out)
{
    fprintf(out, "Usage:\n"
                 "  sitrep silence add [options] --comment TEXT MATCHER...\n"
                 "  sitrep silence list [options] [--expired] [MATCHER...]\n"
                 "  sitrep silence expire [options] ID...\n"
                 "\n"
                 "Mute alerts whose labels match every MATCHER (name=value, name!=value,\n"
                 "name=~regex, name!~regex; quote values with spaces: 'job=\"my api\"').\n"
                 "\n"
                 "Options:\n"
                 "  -u, --url URL          sitrep (or Alertmanager) to talk to; default\n"
                 "                         $SITREP_URL, else http://127.0.0.1:9797\n"
                 "  -t, --token TOKEN      http.token of the daemon; default $SITREP_TOKEN\n"
                 "  -d, --duration DUR     add: how long (default 1h); e.g. 30m, 2h, 1d\n"
                 "  -s, --start TIME       add: RFC 3339 start (default now)\n"
                 "  -e, --end TIME         add: RFC 3339 end (instead of --duration)\n"
                 "  -a, --author NAME      add: who silences (default $USER)\n"
                 "  -c, --comment TEXT     add: why (required)\n"
                 "      --expired          list: include expired silences\n"
                 "  -h, --help             this help\n"
                 "\n"
                 "Examples:\n"
                 "  sitrep silence add -d 2h -c 'disk swap' alertname=FilesystemFull instance=db1\n"
                 "  sitrep silence list\n"
                 "  sitrep silence expire 0b1f6c2e-...\n");
}

struct answer {
    struct sbuf body;
    long code;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct sbuf *b = ctx;
    return sbuf_add(b, p, size * nmemb) < 0 ? 0 : size * nmemb;
}

/* One request; 0 with the answer filled, or -1 (printed). */
static int request(const char *method, const char *url, const char *token, const char *body,
                   struct answer *a)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "sitrep silence: curl_easy_init failed\n");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[1024];
    if (token && *token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    sbuf_init(&a->body, MAX_ANSWER);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "sitrep silence: %s %s: %s\n", method, url,
                cerr[0] ? cerr : curl_easy_strerror(rc));
        sbuf_release(&a->body);
        return -1;
    }
    if (a->code < 200 || a->code >= 300) {
        fprintf(stderr, "sitrep silence: %s %s: HTTP %ld: %s\n", method, url, a->code, a->body.buf);
        sbuf_release(&a->body);
        return -1;
    }
    return 0;
}

static void matcher_json(struct sbuf *b, const struct notify_matcher *m)
{
    sbuf_adds(b, "{\"name\":");
    json_str(b, m->name);
    sbuf_adds(b, ",\"value\":");
    json_str(b, m->value);
    sbuf_addf(b, ",\"isRegex\":%s,\"isEqual\":%s}",
              m->op == NOTIFY_RE || m->op == NOTIFY_NRE ? "true" : "false",
              m->op == NOTIFY_EQ || m->op == NOTIFY_RE ? "true" : "false");
}

static int cmd_add(const char *base, const char *token, const char *start, const char *end,
                   const char *duration, const char *author, const char *comment, int argc,
                   char **argv)
{
    struct notify_matchers ms = {0};
    char err[256];
    int rc = 1;
    struct sbuf body, url;
    sbuf_init(&body, 1 << 20);
    sbuf_init(&url, 0);
    if (!comment) {
        fprintf(stderr, "sitrep silence add: --comment is required (say why)\n");
        goto out;
    }
    if (argc == 0) {
        fprintf(stderr, "sitrep silence add: give at least one matcher, e.g. alertname=X\n");
        goto out;
    }
    for (int i = 0; i < argc; i++)
        if (notify_matchers_parse(argv[i], &ms, err, sizeof(err)) < 0) {
            fprintf(stderr, "sitrep silence add: %s: %s\n", argv[i], err);
            goto out;
        }
    int64_t now = util_now_ms(), s = now, e;
    if (start && notify__time_parse(start, &s) < 0) {
        fprintf(stderr, "sitrep silence add: --start: want RFC 3339, e.g. 2024-05-01T10:00:00Z\n");
        goto out;
    }
    if (end) {
        if (notify__time_parse(end, &e) < 0) {
            fprintf(stderr, "sitrep silence add: --end: want RFC 3339\n");
            goto out;
        }
    } else {
        long long d;
        if (notify__duration_parse(duration ? duration : "1h", &d) < 0 || d <= 0) {
            fprintf(stderr, "sitrep silence add: --duration: want e.g. 30m, 2h, 1d\n");
            goto out;
        }
        e = s + d;
    }
    sbuf_adds(&body, "{\"matchers\":[");
    for (size_t i = 0; i < ms.n; i++) {
        if (i)
            sbuf_addc(&body, ',');
        matcher_json(&body, &ms.v[i]);
    }
    sbuf_adds(&body, "],\"startsAt\":");
    notify__time_json(&body, s);
    sbuf_adds(&body, ",\"endsAt\":");
    notify__time_json(&body, e);
    sbuf_adds(&body, ",\"createdBy\":");
    json_str(&body, author);
    sbuf_adds(&body, ",\"comment\":");
    json_str(&body, comment);
    sbuf_addc(&body, '}');
    sbuf_addf(&url, "%s/api/v2/silences", base);
    struct answer a;
    if (request("POST", url.buf, token, body.buf, &a) < 0)
        goto out;
    struct notify__jv *v = notify__json_parse(a.body.buf, a.body.len, err, sizeof(err));
    const char *id = notify__jv_str(v, "silenceID");
    if (id) {
        printf("%s\n", id);
        rc = 0;
    } else {
        fprintf(stderr, "sitrep silence add: unexpected answer: %s\n", a.body.buf);
    }
    notify__jv_free(v);
    sbuf_release(&a.body);
out:
    notify_matchers_release(&ms);
    sbuf_release(&body);
    sbuf_release(&url);
    return rc;
}

static int cmd_list(const char *base, const char *token, int expired, int argc, char **argv)
{
    struct sbuf url;
    sbuf_init(&url, 64 << 10);
    sbuf_addf(&url, "%s/api/v2/silences", base);
    CURL *esc = curl_easy_init();
    for (int i = 0; i < argc && esc; i++) {
        char *q = curl_easy_escape(esc, argv[i], 0);
        sbuf_addf(&url, "%cfilter=%s", i ? '&' : '?', q);
        curl_free(q);
    }
    if (esc)
        curl_easy_cleanup(esc);
    struct answer a;
    int rc = 1;
    if (request("GET", url.buf, token, NULL, &a) < 0) {
        sbuf_release(&url);
        return 1;
    }
    char err[256];
    struct notify__jv *v = notify__json_parse(a.body.buf, a.body.len, err, sizeof(err));
    if (!v || v->type != NJ_ARR) {
        fprintf(stderr, "sitrep silence list: unexpected answer: %.200s\n", a.body.buf);
        goto out;
    }
    printf("%-36s  %-8s  %-24s  %-16s  %s\n", "ID", "STATE", "ENDS", "CREATED BY",
           "MATCHERS / COMMENT");
    for (size_t i = 0; i < v->n; i++) {
        const struct notify__jv *s = &v->items[i];
        const char *state = notify__jv_str(notify__jv_get(s, "status"), "state");
        if (!state || (!expired && strcmp(state, "expired") == 0))
            continue;
        const char *id = notify__jv_str(s, "id"), *ends = notify__jv_str(s, "endsAt");
        const char *by = notify__jv_str(s, "createdBy"), *comment = notify__jv_str(s, "comment");
        struct sbuf m;
        sbuf_init(&m, 64 << 10);
        const struct notify__jv *arr = notify__jv_get(s, "matchers");
        for (size_t k = 0; arr && arr->type == NJ_ARR && k < arr->n; k++) {
            const struct notify__jv *o = &arr->items[k];
            const struct notify__jv *re = notify__jv_get(o, "isRegex"),
                                    *eq = notify__jv_get(o, "isEqual");
            int is_re = re && re->b, is_eq = !eq || eq->b;
            struct notify_matcher mm = {
                .name = (char *)(notify__jv_str(o, "name") ? notify__jv_str(o, "name") : ""),
                .value = (char *)(notify__jv_str(o, "value") ? notify__jv_str(o, "value") : ""),
                .op = is_re ? (is_eq ? NOTIFY_RE : NOTIFY_NRE) : (is_eq ? NOTIFY_EQ : NOTIFY_NE)};
            if (k)
                sbuf_addc(&m, ' ');
            notify__matcher_string(&m, &mm);
        }
        printf("%-36s  %-8s  %-24s  %-16s  %s\n%-36s  %s\n", id ? id : "?", state,
               ends ? ends : "?", by ? by : "", m.buf, "", comment ? comment : "");
        sbuf_release(&m);
    }
    rc = 0;
out:
    notify__jv_free(v);
    sbuf_release(&a.body);
    sbuf_release(&url);
    return rc;
}

static int cmd_expire(const char *base, const char *token, int argc, char **argv)
{
    if (argc == 0) {
        fprintf(stderr, "sitrep silence expire: give the IDs to expire (see silence list)\n");
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        struct sbuf url;
        sbuf_init(&url, 0);
        sbuf_addf(&url, "%s/api/v2/silence/%s", base, argv[i]);
        struct answer a;
        if (request("DELETE", url.buf, token, NULL, &a) < 0)
            rc = 1;
        else {
            printf("expired %s\n", argv[i]);
            sbuf_release(&a.body);
        }
        sbuf_release(&url);
    }
    return rc;
}

int notify_cli_silence(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},      {"token", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'}, {"start", required_argument, NULL, 's'},
        {"end", required_argument, NULL, 'e'},      {"author", required_argument, NULL, 'a'},
        {"comment", required_argument, NULL, 'c'},  {"expired", no_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv[0];
    const char *url = getenv("SITREP_URL"), *token = getenv("SITREP_TOKEN");
    const char *duration = NULL, *start = NULL, *end = NULL, *comment = NULL;
    const char *author = getenv("USER");
    int expired = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:t:d:s:e:a:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'd':
            duration = optarg;
            break;
        case 's':
            start = optarg;
            break;
        case 'e':
            end = optarg;
            break;
        case 'a':
            author = optarg;
            break;
        case 'c':
            comment = optarg;
            break;
        case 'x':
            expired = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    char base[1024];
    snprintf(base, sizeof(base), "%s", url && *url ? url : "http://127.0.0.1:9797");
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        base[--bl] = '\0';
    if (!strstr(base, "://")) {
        /* "127.0.0.1:9797" as in the config's http.listen */
        char tmp[1024];
        memcpy(tmp, base, sizeof(tmp));
        if (snprintf(base, sizeof(base), "http://%s", tmp) >= (int)sizeof(base)) {
            fprintf(stderr, "sitrep silence: --url too long\n");
            return 2;
        }
    }
    if (!author || !*author)
        author = "sitrep";
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "sitrep silence: libcurl failed to initialise\n");
        return 1;
    }
    int rc;
    argc -= optind;
    argv += optind;
    if (strcmp(sub, "add") == 0)
        rc = cmd_add(base, token, start, end, duration, author, comment, argc, argv);
    else if (strcmp(sub, "list") == 0 || strcmp(sub, "query") == 0)
        rc = cmd_list(base, token, expired, argc, argv);
    else if (strcmp(sub, "expire") == 0)
        rc = cmd_expire(base, token, argc, argv);
    else {
        fprintf(stderr, "sitrep silence: unknown command '%s' (add, list, expire)\n", sub);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
