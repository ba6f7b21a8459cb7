/*
 * api.c: Prometheus's HTTP API endpoints that list and describe series
 * (see api.h), and the envelope, time and selector helpers every JSON
 * endpoint shares.
 */
#include "query/api.h"
#include "tsdb/tsdb.h"
#include "util/json.h"
#include "util/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Selectors per request (match[]); Prometheus has no limit, a cap keeps a request bounded. */
#define MAX_MATCH 64

void query_api_error(struct http_response *resp, int status, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "application/json";
    sbuf_reset(&resp->body);
    sbuf_adds(&resp->body, "{\"status\":\"error\",\"errorType\":");
    json_str(&resp->body, type);
    sbuf_adds(&resp->body, ",\"error\":");
    json_str(&resp->body, msg);
    sbuf_addc(&resp->body, '}');
}

void query_api_begin(struct http_response *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
    sbuf_reset(&resp->body);
    sbuf_adds(&resp->body, "{\"status\":\"success\",\"data\":");
}

/* ---------------------------------------------------------- parameters */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), without timegm's TZ games. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + n;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (!digits)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    *ms = (t - off) * 1000 + frac;
    return 0;
}

/* s as decimal seconds: 1 with *ms set, 0 if s is not a number, -1 out of range. */
static int seconds(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end)
        return 0;
    /* Prometheus's range: what fits int64 milliseconds. */
    if (!isfinite(v) || fabs(v) > 9.2e15)
        return -1;
    *ms = (int64_t)llround(v * 1000);
    return 1;
}

int query_api_parse_time(const char *s, int64_t *ms)
{
    int r = seconds(s, ms);
    return r ? (r > 0 ? 0 : -1) : parse_rfc3339(s, ms);
}

int query_api_parse_duration(const char *s, int64_t *ms)
{
    int r = seconds(s, ms);
    if (r)
        return r > 0 ? 0 : -1;
    struct query_node *n;
    struct query_error err;
    if (query_parse(s, &n, &err) < 0)
        return -1;
    int ok = n->type == QUERY_NODE_NUMBER && n->number.duration;
    if (ok)
        *ms = (int64_t)llround(n->number.value * 1000);
    query_node_free(n);
    return ok ? 0 : -1;
}

struct query_node *query_api_selector(const char *s, char *err, size_t errlen)
{
    struct query_node *n;
    struct query_error e;
    if (query_parse(s, &n, &e) < 0) {
        snprintf(err, errlen, "%s", e.msg);
        return NULL;
    }
    if (n->type != QUERY_NODE_VECTOR_SELECTOR) {
        snprintf(err, errlen, "1:1: parse error: expected a series selector, got %s",
                 query_value_type_name(n->value_type));
        query_node_free(n);
        return NULL;
    }
    return n;
}

/* start and end of a listing request; the whole store when absent. 0 or -1 (answered). */
static int listing_range(const struct http_request *req, struct http_response *resp, int64_t *start,
                         int64_t *end)
{
    const char *a = http_query_arg(req, "start"), *b = http_query_arg(req, "end");
    *start = INT64_MIN;
    *end = INT64_MAX;
    if (a && query_api_parse_time(a, start) < 0) {
        query_api_error(resp, 400, "bad_data",
                        "invalid parameter \"start\": cannot parse \"%s\" "
                        "to a valid timestamp",
                        a);
        return -1;
    }
    if (b && query_api_parse_time(b, end) < 0) {
        query_api_error(resp, 400, "bad_data",
                        "invalid parameter \"end\": cannot parse \"%s\" "
                        "to a valid timestamp",
                        b);
        return -1;
    }
    if (*end < *start) {
        query_api_error(resp, 400, "bad_data",
                        "invalid parameter \"end\": end timestamp must not "
                        "be before start time");
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------- label sets */

/* The distinct label sets (or strings) a listing collects, kept sorted at the end. */
struct strset {
    char **s;
    size_t n, cap;
};

static void strset_add(struct strset *set, char *owned)
{
    void *p = set->s;
    util_grow(&p, &set->cap, set->n + 1, sizeof(*set->s));
    set->s = p;
    set->s[set->n++] = owned;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates. */
static void strset_finish(struct strset *set)
{
    if (!set->n)
        return;
    qsort(set->s, set->n, sizeof(*set->s), cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < set->n; i++) {
        if (strcmp(set->s[i], set->s[w - 1]) == 0)
            free(set->s[i]);
        else
            set->s[w++] = set->s[i];
    }
    set->n = w;
}

static void strset_release(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->s[i]);
    free(set->s);
}

enum listing { LIST_SERIES, LIST_NAMES, LIST_VALUES };

struct listing_req {
    enum listing what;
    const char *label; /* LIST_VALUES */
    struct tsdb *db;
    int64_t start, end;
    struct strset out;
    char err[512];
    int bad;
};

/*
 * Run one selector and add what the listing wants of each series: the
 * whole label set as a JSON object, its label names, or one label's value.
 */
static int run_selector(struct listing_req *l, const struct tsdb_matcher *ms, size_t n)
{
    struct tsdb_range r = {.mint = l->start, .maxt = l->end, .series_only = 1};
    struct tsdb_query *q;
    if (tsdb_query_open(l->db, ms, n, &r, &q, l->err, sizeof(l->err)) < 0)
        return -1;
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    struct sbuf b;
    sbuf_init(&b, 0);
    while (tsdb_query_next(q, &ls, &nl, &ss, &ns) > 0) {
        if (l->what == LIST_NAMES) {
            for (size_t i = 0; i < nl; i++)
                strset_add(&l->out, xstrdup(ls[i].name));
        } else if (l->what == LIST_VALUES) {
            for (size_t i = 0; i < nl; i++)
                if (strcmp(ls[i].name, l->label) == 0)
                    strset_add(&l->out, xstrdup(ls[i].value));
        } else {
            sbuf_reset(&b);
            sbuf_addc(&b, '{');
            for (size_t i = 0; i < nl; i++) {
                if (i)
                    sbuf_addc(&b, ',');
                json_str(&b, ls[i].name);
                sbuf_addc(&b, ':');
                json_str(&b, ls[i].value);
            }
            sbuf_addc(&b, '}');
            strset_add(&l->out, sbuf_detach(&b, NULL));
        }
        /* Several selectors list the same series; strset_finish drops the repeats. */
    }
    sbuf_release(&b);
    tsdb_query_close(q);
    return 0;
}

static int on_match(void *ctx, const char *value)
{
    struct listing_req *l = ctx;
    struct query_node *n = query_api_selector(value, l->err, sizeof(l->err));
    if (!n) {
        l->bad = 1;
        return 1;
    }
    int rc = run_selector(l, n->vs.matchers, n->vs.nmatchers);
    query_node_free(n);
    if (rc < 0) {
        l->bad = 1;
        return 1;
    }
    return 0;
}

static int count_arg(void *ctx, const char *value)
{
    (void)value;
    return ++*(int *)ctx > MAX_MATCH;
}

static void listing(struct tsdb *db, enum listing what, const char *label,
                    const struct http_request *req, struct http_response *resp)
{
    struct listing_req l = {.what = what, .label = label, .db = db};
    if (listing_range(req, resp, &l.start, &l.end) < 0)
        return;
    int nmatch = 0;
    if (http_query_args(req, "match[]", count_arg, &nmatch)) {
        query_api_error(resp, 400, "bad_data", "too many match[] parameters (at most %d)",
                        MAX_MATCH);
        return;
    }
    if (!nmatch && what == LIST_SERIES) {
        query_api_error(resp, 400, "bad_data", "no match[] parameter provided");
        return;
    }
    if (nmatch) {
        http_query_args(req, "match[]", on_match, &l);
    } else {
        struct tsdb_matcher all = {TSDB_RE, "__name__", ".+"};
        if (run_selector(&l, &all, 1) < 0)
            l.bad = 1;
    }
    if (l.bad) {
        query_api_error(resp, 400, "bad_data", "invalid parameter \"match[]\": %s", l.err);
        strset_release(&l.out);
        return;
    }
    strset_finish(&l.out);
    query_api_begin(resp);
    sbuf_addc(&resp->body, '[');
    for (size_t i = 0; i < l.out.n; i++) {
        if (i)
            sbuf_addc(&resp->body, ',');
        if (what == LIST_SERIES)
            sbuf_adds(&resp->body, l.out.s[i]);
        else
            json_str(&resp->body, l.out.s[i]);
    }
    sbuf_adds(&resp->body, "]}");
    strset_release(&l.out);
}

static void h_series(void *ctx, const struct http_request *req, struct http_response *resp)
{
    listing(ctx, LIST_SERIES, NULL, req, resp);
}

static void h_labels(void *ctx, const struct http_request *req, struct http_response *resp)
{
    listing(ctx, LIST_NAMES, NULL, req, resp);
}

static void h_label_values(void *ctx, const struct http_request *req, struct http_response *resp)
{
    const char *prefix = "/api/v1/label/", *suffix = "/values";
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(req->path);
    if (n <= pl + sl || strcmp(req->path + n - sl, suffix) != 0) {
        query_api_error(resp, 404, "not_found", "no such endpoint: %s (want %sNAME%s)", req->path,
                        prefix, suffix);
        return;
    }
    char *name = xstrndup(req->path + pl, n - pl - sl);
    if (!metric_label_name_valid(name)) {
        query_api_error(resp, 400, "bad_data", "invalid label name: \"%s\"", name);
        free(name);
        return;
    }
    listing(ctx, LIST_VALUES, name, req, resp);
    free(name);
}

/* ----------------------------------------------------- metadata, format */

struct meta_out {
    struct sbuf *b;
    long limit;
    long n;
};

static int on_meta(void *ctx, const char *name, const char *type, const char *help)
{
    struct meta_out *m = ctx;
    if (m->limit >= 0 && m->n >= m->limit)
        return 1;
    sbuf_adds(m->b, m->n++ ? "," : "");
    json_str(m->b, name);
    sbuf_adds(m->b, ":[{\"type\":");
    json_str(m->b, type);
    sbuf_adds(m->b, ",\"help\":");
    json_str(m->b, help);
    sbuf_adds(m->b, ",\"unit\":\"\"}]");
    return 0;
}

static void h_metadata(void *ctx, const struct http_request *req, struct http_response *resp)
{
    const char *metric = http_query_arg(req, "metric"), *lim = http_query_arg(req, "limit");
    struct meta_out m = {.b = &resp->body, .limit = -1};
    if (lim) {
        char *end;
        m.limit = strtol(lim, &end, 10);
        if (end == lim || *end) {
            query_api_error(resp, 400, "bad_data", "invalid parameter \"limit\": %s", lim);
            return;
        }
        if (m.limit < 0)
            m.limit = -1;
    }
    query_api_begin(resp);
    sbuf_addc(&resp->body, '{');
    tsdb_metadata(ctx, metric && *metric ? metric : NULL, on_meta, &m);
    sbuf_adds(&resp->body, "}}");
}

static void h_format_query(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    const char *q = http_query_arg(req, "query");
    if (!q) {
        query_api_error(resp, 400, "bad_data", "invalid parameter \"query\": missing");
        return;
    }
    struct query_node *n;
    struct query_error e;
    if (query_parse(q, &n, &e) < 0) {
        query_api_error(resp, 400, "bad_data", "invalid parameter \"query\": %s", e.msg);
        return;
    }
    struct sbuf f;
    sbuf_init(&f, 0);
    query_format(n, &f);
    query_node_free(n);
    query_api_begin(resp);
    json_strn(&resp->body, f.buf, f.len);
    sbuf_addc(&resp->body, '}');
    sbuf_release(&f);
}

void query_api_register(struct http_server *s, struct tsdb *db)
{
    static const char *const both[] = {"GET", "POST"};
    for (int i = 0; i < 2; i++) {
        http_route(s, both[i], "/api/v1/format_query", HTTP_READ, h_format_query, db);
        http_route(s, both[i], "/api/v1/series", HTTP_READ, h_series, db);
        http_route(s, both[i], "/api/v1/labels", HTTP_READ, h_labels, db);
    }
    http_route(s, "GET", "/api/v1/label/*", HTTP_READ, h_label_values, db);
    http_route(s, "GET", "/api/v1/metadata", HTTP_READ, h_metadata, db);
    query_api_register_queries(s, db);
}
