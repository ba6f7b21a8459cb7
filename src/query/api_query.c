/*
 * api_query.c: /api/v1/query and /api/v1/query_range, Prometheus's query
 * endpoints (GET and form POST), on top of the evaluator (eval.h). Answers
 * have Prometheus's shape, so Grafana's data source reads them as is:
 *
 *   {"status":"success","data":{"resultType":"vector","result":[
 *     {"metric":{"__name__":"up"},"value":[1700000000,"1"]}]},"infos":[...]}
 *
 * and its parameter checks and messages (start/end/step, the 11,000 points
 * per series cap, timeout). Errors map to its status codes: bad_data 400,
 * execution 422, canceled 499, timeout 503, internal 500.
 */
#include "query/api.h"
#include "query/eval.h"
#include "tsdb/tsdb.h"
#include "util/json.h"
#include "util/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int status_of(const char *type)
{
    return strcmp(type, QUERY_ERR_BAD_DATA) == 0    ? 400
           : strcmp(type, QUERY_ERR_EXECUTION) == 0 ? 422
           : strcmp(type, QUERY_ERR_CANCELED) == 0  ? 499
           : strcmp(type, QUERY_ERR_TIMEOUT) == 0   ? 503
                                                    : 500;
}

static void write_labels(struct sbuf *b, const struct query_series *s)
{
    sbuf_addc(b, '{');
    for (size_t i = 0; i < s->nlabels; i++) {
        if (i)
            sbuf_addc(b, ',');
        json_str(b, s->labels[i].name);
        sbuf_addc(b, ':');
        json_str(b, s->labels[i].value);
    }
    sbuf_addc(b, '}');
}

static void write_point(struct sbuf *b, int64_t t, double v)
{
    json_point(b, t, v);
}

static void write_notes(struct sbuf *b, const char *key, const char *const *notes, size_t n)
{
    if (!n)
        return;
    sbuf_addf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_addc(b, ',');
        json_str(b, notes[i]);
    }
    sbuf_addc(b, ']');
}

static const char *type_name(enum query_value_type t)
{
    return t == QUERY_VALUE_SCALAR   ? "scalar"
           : t == QUERY_VALUE_STRING ? "string"
           : t == QUERY_VALUE_VECTOR ? "vector"
                                     : "matrix";
}

/* The success envelope around a result. */
static void write_result(struct http_response *resp, const struct query_result *r)
{
    struct sbuf *b = &resp->body;
    query_api_begin(resp);
    sbuf_adds(b, "{\"resultType\":");
    json_str(b, type_name(r->type));
    sbuf_adds(b, ",\"result\":");
    if (r->type == QUERY_VALUE_SCALAR) {
        write_point(b, r->t, r->scalar);
    } else if (r->type == QUERY_VALUE_STRING) {
        sbuf_addc(b, '[');
        json_time(b, r->t);
        sbuf_addc(b, ',');
        json_str(b, r->string ? r->string : "");
        sbuf_addc(b, ']');
    } else {
        /* Room for it all at once: a range answer can be tens of MB (no copies while growing). */
        size_t need = 2;
        for (size_t i = 0; i < r->nseries; i++)
            need += 128 + r->series[i].npoints * 32;
        sbuf_reserve(b, need);
        sbuf_addc(b, '[');
        for (size_t i = 0; i < r->nseries; i++) {
            const struct query_series *s = &r->series[i];
            sbuf_adds(b, i ? ",{\"metric\":" : "{\"metric\":");
            write_labels(b, s);
            if (r->type == QUERY_VALUE_VECTOR) {
                sbuf_adds(b, ",\"value\":");
                write_point(b, s->points[0].t, s->points[0].v);
            } else {
                sbuf_adds(b, ",\"values\":[");
                for (size_t k = 0; k < s->npoints; k++) {
                    if (k)
                        sbuf_addc(b, ',');
                    write_point(b, s->points[k].t, s->points[k].v);
                }
                sbuf_addc(b, ']');
            }
            sbuf_addc(b, '}');
        }
        sbuf_addc(b, ']');
    }
    sbuf_addc(b, '}');
    write_notes(b, "warnings", r->warnings, r->nwarnings);
    write_notes(b, "infos", r->infos, r->ninfos);
    sbuf_addc(b, '}');
}

/* timeout=: the lower of the request's and the server's. 0 or -1 (answered). */
static int request_opts(const struct http_request *req, struct http_response *resp,
                        struct query_opts *o)
{
    memset(o, 0, sizeof(*o));
    const char *t = http_query_arg(req, "timeout");
    int64_t ms;
    if (t) {
        if (query_api_parse_duration(t, &ms) < 0 || ms <= 0) {
            query_api_error(
                resp, 400, QUERY_ERR_BAD_DATA,
                "invalid parameter \"timeout\": cannot parse \"%s\" to a valid duration", t);
            return -1;
        }
        if (ms < QUERY_DEFAULT_TIMEOUT_MS)
            o->timeout_ms = ms;
    }
    return 0;
}

/* {a="b", c="d"} as PromQL writes a label set (name first, outside). */
static void text_labels(struct sbuf *b, const struct query_series *s)
{
    const char *name = NULL;
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "__name__") == 0)
            name = s->labels[i].value;
    if (name)
        sbuf_adds(b, name);
    sbuf_addc(b, '{');
    int first = 1;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (strcmp(s->labels[i].name, "__name__") == 0)
            continue;
        sbuf_addf(b, "%s%s=", first ? "" : ", ", s->labels[i].name);
        json_str(b, s->labels[i].value);
        first = 0;
    }
    sbuf_addc(b, '}');
}

static void text_time(struct sbuf *b, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[40];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_adds(b, buf);
    if (ms % 1000)
        sbuf_addf(b, ".%03d", (int)(ms % 1000 + 1000) % 1000);
    sbuf_addc(b, 'Z');
}

static void text_value(struct sbuf *b, double v)
{
    char s[48];
    json_format_value(v, s);
    sbuf_adds(b, s);
}

/* The readable form `sitrep query` prints (?format=text, a sitrep extension). */
static void write_text(struct http_response *resp, const struct query_result *r)
{
    struct sbuf *b = &resp->body;
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    sbuf_reset(b);
    if (r->type == QUERY_VALUE_SCALAR) {
        text_value(b, r->scalar);
        sbuf_addc(b, '\n');
    } else if (r->type == QUERY_VALUE_STRING) {
        sbuf_adds(b, r->string ? r->string : "");
        sbuf_addc(b, '\n');
    } else if (r->type == QUERY_VALUE_VECTOR) {
        struct sbuf l;
        sbuf_init(&l, 0);
        size_t w = 0;
        for (size_t i = 0; i < r->nseries; i++) {
            sbuf_reset(&l);
            text_labels(&l, &r->series[i]);
            w = l.len > w ? l.len : w;
        }
        w = w > 100 ? 100 : w;
        for (size_t i = 0; i < r->nseries; i++) {
            sbuf_reset(&l);
            text_labels(&l, &r->series[i]);
            sbuf_addf(b, "%-*s  ", (int)w, l.buf);
            text_value(b, r->series[i].points[0].v);
            sbuf_addc(b, '\n');
        }
        sbuf_release(&l);
        if (!r->nseries)
            sbuf_adds(b, "(no series)\n");
    } else {
        for (size_t i = 0; i < r->nseries; i++) {
            text_labels(b, &r->series[i]);
            sbuf_addc(b, '\n');
            for (size_t k = 0; k < r->series[i].npoints; k++) {
                sbuf_adds(b, "  ");
                text_time(b, r->series[i].points[k].t);
                sbuf_adds(b, "  ");
                text_value(b, r->series[i].points[k].v);
                sbuf_addc(b, '\n');
            }
        }
        if (!r->nseries)
            sbuf_adds(b, "(no series)\n");
    }
    for (size_t i = 0; i < r->nwarnings; i++)
        sbuf_addf(b, "warning: %s\n", r->warnings[i]);
    for (size_t i = 0; i < r->ninfos; i++)
        sbuf_addf(b, "info: %s\n", r->infos[i]);
}

static void answer(const struct http_request *req, struct http_response *resp, int rc,
                   struct query_result *r, const struct query_eval_error *err)
{
    const char *f = http_query_arg(req, "format");
    int text = f && strcmp(f, "text") == 0;
    if (rc < 0 && text) {
        resp->status = status_of(err->type);
        resp->content_type = "text/plain; charset=utf-8";
        sbuf_reset(&resp->body);
        sbuf_addf(&resp->body, "%s: %s\n", err->type, err->msg);
    } else if (rc < 0) {
        query_api_error(resp, status_of(err->type), err->type, "%s", err->msg);
    } else if (text) {
        write_text(resp, r);
    } else {
        write_result(resp, r);
    }
    if (r)
        query_result_release(r);
}

static int time_arg(const struct http_request *req, struct http_response *resp, const char *name,
                    int64_t *ms)
{
    const char *s = http_query_arg(req, name);
    if (!s || query_api_parse_time(s, ms) < 0) {
        query_api_error(resp, 400, QUERY_ERR_BAD_DATA,
                        "invalid parameter \"%s\": cannot parse \"%s\" to a valid timestamp", name,
                        s ? s : "");
        return -1;
    }
    return 0;
}

/* The query parameter parsed, or NULL with the answer set (as Prometheus words it). */
static struct query_node *parse_query(const struct http_request *req, struct http_response *resp,
                                      const char *q)
{
    struct query_node *n;
    struct query_error e;
    if (query_parse(q ? q : "", &n, &e) < 0) {
        struct query_eval_error err = {.type = QUERY_ERR_BAD_DATA};
        snprintf(err.msg, sizeof(err.msg), "invalid parameter \"query\": %.480s", e.msg);
        answer(req, resp, -1, NULL, &err);
        return NULL;
    }
    return n;
}

static void h_query(void *ctx, const struct http_request *req, struct http_response *resp)
{
    const char *q = http_query_arg(req, "query");
    int64_t t = util_now_ms();
    if (http_query_arg(req, "time") && time_arg(req, resp, "time", &t) < 0)
        return;
    struct query_opts o;
    if (request_opts(req, resp, &o) < 0)
        return;
    struct query_node *expr = parse_query(req, resp, q);
    if (!expr)
        return;
    struct query_result r;
    struct query_eval_error err;
    int rc = query_eval_instant(ctx, expr, q, t, &o, &r, &err);
    query_node_free(expr);
    answer(req, resp, rc, &r, &err);
}

static void h_query_range(void *ctx, const struct http_request *req, struct http_response *resp)
{
    const char *q = http_query_arg(req, "query"), *st = http_query_arg(req, "step");
    int64_t start, end, step;
    if (time_arg(req, resp, "start", &start) < 0 || time_arg(req, resp, "end", &end) < 0)
        return;
    if (end < start) {
        query_api_error(resp, 400, QUERY_ERR_BAD_DATA,
                        "invalid parameter \"end\": end timestamp must not be before start time");
        return;
    }
    if (!st || query_api_parse_duration(st, &step) < 0) {
        query_api_error(resp, 400, QUERY_ERR_BAD_DATA,
                        "invalid parameter \"step\": cannot parse \"%s\" to a valid duration",
                        st ? st : "");
        return;
    }
    if (step <= 0) {
        query_api_error(resp, 400, QUERY_ERR_BAD_DATA,
                        "invalid parameter \"step\": zero or negative query resolution step "
                        "widths are not accepted. Try a positive integer");
        return;
    }
    if ((end - start) / step > QUERY_DEFAULT_MAX_POINTS) {
        query_api_error(resp, 400, QUERY_ERR_BAD_DATA,
                        "exceeded maximum resolution of 11,000 points per timeseries. Try "
                        "decreasing the query resolution (?step=XX)");
        return;
    }
    struct query_opts o;
    if (request_opts(req, resp, &o) < 0)
        return;
    struct query_node *expr = parse_query(req, resp, q);
    if (!expr)
        return;
    struct query_result r;
    struct query_eval_error err;
    int rc = query_eval_range(ctx, expr, q, start, end, step, &o, &r, &err);
    query_node_free(expr);
    answer(req, resp, rc, &r, &err);
}

void query_api_register_queries(struct http_server *s, struct tsdb *db)
{
    static const char *const both[] = {"GET", "POST"};
    for (int i = 0; i < 2; i++) {
        http_route(s, both[i], "/api/v1/query", HTTP_READ, h_query, db);
        http_route(s, both[i], "/api/v1/query_range", HTTP_READ, h_query_range, db);
    }
}
