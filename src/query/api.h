/*
 * api.h: Prometheus's HTTP API over the store, so Grafana's Prometheus data
 * source and existing tooling work against sitrep unchanged:
 *
 *   GET|POST /api/v1/format_query     ?query=        canonical form of a query
 *   GET|POST /api/v1/series           ?match[]=&start=&end=
 *   GET|POST /api/v1/labels           ?match[]=&start=&end=
 *   GET      /api/v1/label/NAME/values?match[]=&start=&end=
 *   GET      /api/v1/metadata         ?metric=&limit=
 *   GET|POST /api/v1/query            ?query=&time=&timeout=        (api_query.c)
 *   GET|POST /api/v1/query_range      ?query=&start=&end=&step=&timeout=
 *
 * Answers use Prometheus's envelope: {"status":"success","data":...} or
 * {"status":"error","errorType":"bad_data","error":"..."} with its status
 * codes (400 bad_data, 422 execution, 503 timeout, 500 internal). Times are
 * Unix seconds (decimals allowed) or RFC 3339; missing start/end mean all
 * of the store's time.
 *
 * The helpers below are shared with the query endpoints.
 */
#ifndef SITREP_QUERY_API_H
#define SITREP_QUERY_API_H

#include <stdint.h>

#include "http/http.h"
#include "query/promql.h"

struct tsdb;

/* Register the endpoints above on s; db must outlive the server. */
void query_api_register(struct http_server *s, struct tsdb *db);

/*
 * Register /api/v1/query and /api/v1/query_range (api_query.c): parameters,
 * answers and errors as Prometheus's, plus format=text for `sitrep query`.
 */
void query_api_register_queries(struct http_server *s, struct tsdb *db);

/* Set resp to Prometheus's error envelope. type: "bad_data", "execution", ... */
void query_api_error(struct http_response *resp, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Start a success envelope: {"status":"success","data": (the caller adds data and '}'). */
void query_api_begin(struct http_response *resp);

/*
 * A time parameter: Unix seconds with decimals, or RFC 3339
 * (2015-07-01T20:10:51.781Z, offsets allowed). 0 and *ms set, or -1.
 */
int query_api_parse_time(const char *s, int64_t *ms);

/* A duration parameter: seconds with decimals, or a PromQL duration (1m30s). 0 or -1. */
int query_api_parse_duration(const char *s, int64_t *ms);

/*
 * Parse a series selector (match[]): a vector selector only. Returns the
 * node (caller frees with query_node_free) or NULL with err filled.
 */
struct query_node *query_api_selector(const char *s, char *err, size_t errlen);

#endif
