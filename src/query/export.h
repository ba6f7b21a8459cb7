/*
 * export.h: GET /api/v1/export: raw samples out of the store as JSON lines,
 * one object per series (the shape VictoriaMetrics' export uses):
 *
 *   {"metric":{"__name__":"x","job":"y"},"values":["1","2.5"],"timestamps":[1700000000000,...]}
 *
 * Parameters: match[] (one series selector), start and end (Unix seconds,
 * decimals allowed; default: the last hour), step (seconds; picks a tier
 * like a query with that step would; default raw) and agg (last, min, max,
 * sum, count, avg; for tiers). Values are strings, as in Prometheus' API,
 * so NaN and infinities survive. For backups, debugging and tests.
 */
#ifndef SITREP_QUERY_EXPORT_H
#define SITREP_QUERY_EXPORT_H

#include "http/http.h"

/* An http_handler; ctx is the struct tsdb. */
void query_export(void *ctx, const struct http_request *req, struct http_response *resp);

#endif
