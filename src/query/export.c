/* export.c: GET /api/v1/export (see export.h). */
#include "query/export.h"
#include "query/api.h"
#include "tsdb/tsdb.h"
#include "util/json.h"
#include "util/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void query_export(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct tsdb *db = ctx;
    const char *match = http_query_arg(req, "match[]");
    const char *start = http_query_arg(req, "start"), *end = http_query_arg(req, "end");
    const char *step = http_query_arg(req, "step"), *agg = http_query_arg(req, "agg");
    int64_t now = util_now_ms();
    struct tsdb_range r = {.mint = now - 3600 * 1000, .maxt = now};
    if (!match) {
        http_error(resp, 400, "match[]: missing (a series selector, e.g. node_load1)");
        return;
    }
    if ((start && query_api_parse_time(start, &r.mint) < 0) ||
        (end && query_api_parse_time(end, &r.maxt) < 0) ||
        (step && query_api_parse_duration(step, &r.step_ms) < 0)) {
        http_error(resp, 400,
                   "start and end: Unix seconds (decimals allowed) or RFC 3339; step: "
                   "seconds or a duration (1m)");
        return;
    }
    static const char *const aggs[] = {"last", "min", "max", "sum", "count", "avg"};
    if (agg) {
        size_t i = 0;
        while (i < ARRAY_SIZE(aggs) && strcmp(aggs[i], agg) != 0)
            i++;
        if (i == ARRAY_SIZE(aggs)) {
            http_error(resp, 400, "agg: one of last, min, max, sum, count, avg");
            return;
        }
        r.agg = (enum tsdb_agg)i;
    }
    char err[512];
    struct query_node *sel = query_api_selector(match, err, sizeof(err));
    if (!sel) {
        http_error(resp, 400, "match[]: %s", err);
        return;
    }
    struct tsdb_query *q;
    if (tsdb_query_open(db, sel->vs.matchers, sel->vs.nmatchers, &r, &q, err, sizeof(err)) < 0) {
        query_node_free(sel);
        http_error(resp, 400, "match[]: %s", err);
        return;
    }
    const struct metric_label *ls;
    const struct tsdb_sample *ss;
    size_t nl, ns;
    char num[64];
    while (tsdb_query_next(q, &ls, &nl, &ss, &ns) > 0) {
        sbuf_adds(&resp->body, "{\"metric\":{");
        for (size_t i = 0; i < nl; i++) {
            if (i)
                sbuf_addc(&resp->body, ',');
            json_str(&resp->body, ls[i].name);
            sbuf_addc(&resp->body, ':');
            json_str(&resp->body, ls[i].value);
        }
        sbuf_adds(&resp->body, "},\"values\":[");
        for (size_t i = 0; i < ns; i++) {
            size_t n = metric_format_value(ss[i].v, num);
            num[n] = 0;
            sbuf_adds(&resp->body, i ? ",\"" : "\"");
            sbuf_adds(&resp->body, num);
            sbuf_addc(&resp->body, '"');
        }
        sbuf_adds(&resp->body, "],\"timestamps\":[");
        for (size_t i = 0; i < ns; i++)
            sbuf_addf(&resp->body, i ? ",%lld" : "%lld", (long long)ss[i].ts);
        sbuf_adds(&resp->body, "]}\n");
    }
    tsdb_query_close(q);
    query_node_free(sel);
    resp->content_type = "application/stream+json";
}
