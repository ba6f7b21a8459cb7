/*
 * http.h: the embedded HTTP server (libmicrohttpd underneath) and a small
 * router. Subsystems register handlers for exact paths; the server takes
 * care of request bodies (capped), the access token for requests that change
 * state, and per-route request counters.
 *
 * Threads: handlers run on the server's worker threads, concurrently with
 * each other and with the collector; a handler must only touch thread-safe
 * state. Routes are registered before http_start and never change after.
 */
#ifndef SITREP_HTTP_H
#define SITREP_HTTP_H

#include <stddef.h>

#include "metric/metric.h"
#include "util/sbuf.h"

#define HTTP_MAX_BODY ((size_t)1 << 20)

enum { HTTP_READ = 0, HTTP_MUTATES = 1 };

struct http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* without the query string */
    const char *body;   /* NUL-terminated; "" when none */
    size_t body_len;
    void *conn;       /* private: for http_query_arg / http_header */
    const void *form; /* private: a form-encoded POST body, decoded */
};

struct http_response {
    int status;               /* 200 unless the handler says otherwise */
    const char *content_type; /* static string; default text/plain */
    struct sbuf body;         /* initialised by the server, freed by it */
};

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_response *resp);

struct http_server;

struct http_server *http_new(void);
void http_free(struct http_server *s);

/*
 * Register handler for method+path: an exact match, or with a path ending in
 * '*' any path that starts with what comes before it (the handler reads
 * req->path). flags HTTP_MUTATES marks
 * a state-changing route: it needs "Authorization: Bearer TOKEN" when a token
 * is configured, and is refused when the listener is not loopback and no
 * token is configured.
 */
void http_route(struct http_server *s, const char *method, const char *path, int flags,
                http_handler fn, void *ctx);

/* Bind listen ("ADDR:PORT") and start serving. Returns 0 or -1 (logged). */
int http_start(struct http_server *s, const char *listen, const char *token);
/* Stop serving and close connections. Safe to call when not started. */
void http_stop(struct http_server *s);

/*
 * An argument of the request, or NULL: from the query string, else from a
 * POST body of type application/x-www-form-urlencoded (Prometheus's API
 * takes both). The string lives as long as the request.
 */
const char *http_query_arg(const struct http_request *req, const char *name);
/*
 * Call fn for every value of argument name, query string first, then the
 * form body (for repeated arguments such as match[]). Stops early and
 * returns fn's value when it is nonzero; 0 otherwise.
 */
int http_query_args(const struct http_request *req, const char *name,
                    int (*fn)(void *ctx, const char *value), void *ctx);
/* A request header, or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* Set a JSON or plain error body and status on resp. */
void http_error(struct http_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Emit sitrep_http_requests_total{handler,code} into b. */
void http_emit_metrics(struct http_server *s, struct metric_buf *b);

#endif
