/*
 * server.c: libmicrohttpd glue and routing (see http.h). Bodies are
 * accumulated per request up to HTTP_MAX_BODY (413 past it); the handler
 * runs once the whole body is in.
 */
#include "http/http.h"
#include "config/config.h"
#include "util/log.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_ROUTES 64

/* Status classes counted per route: 2xx, 3xx, 4xx, 5xx. */
#define NCLASSES 4

struct route {
    char method[8];
    char *path;
    int flags;
    http_handler fn;
    void *ctx;
    atomic_ullong count[NCLASSES];
};

struct http_server {
    struct route routes[HTTP_MAX_ROUTES];
    size_t nroutes;
    atomic_ullong unrouted[NCLASSES];
    struct MHD_Daemon *daemon;
    char *token;
    int loopback;
};

/* A decoded form body: NUL-separated name, value, name, value... */
struct form {
    char *buf;
    size_t len;
};

struct pending {
    struct sbuf body;
    int too_big;
    struct form form;
};

struct http_server *http_new(void)
{
    return xcalloc(1, sizeof(struct http_server));
}

void http_free(struct http_server *s)
{
    if (!s)
        return;
    http_stop(s);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].path);
    free(s->token);
    free(s);
}

void http_route(struct http_server *s, const char *method, const char *path, int flags,
                http_handler fn, void *ctx)
{
    if (s->nroutes == HTTP_MAX_ROUTES) {
        log_error("http: too many routes; %s %s not registered", method, path);
        return;
    }
    struct route *r = &s->routes[s->nroutes++];
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->path = xstrdup(path);
    r->flags = flags;
    r->fn = fn;
    r->ctx = ctx;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decode "a=1&b=%20x+y" into f: each name and value NUL-terminated in turn. */
static void form_decode(struct form *f, const char *s, size_t n)
{
    f->buf = xmalloc(n + 2);
    char *o = f->buf;
    size_t i = 0;
    while (i < n) {
        int have_eq = 0;
        for (; i < n && s[i] != '&'; i++) {
            char c = s[i];
            if (c == '=' && !have_eq) {
                have_eq = 1;
                *o++ = 0;
                continue;
            }
            if (c == '+')
                c = ' ';
            else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
            }
            *o++ = c;
        }
        if (!have_eq)
            *o++ = 0; /* "name" alone: an empty value */
        *o++ = 0;
        i++; /* the '&' */
    }
    f->len = (size_t)(o - f->buf);
}

struct args_walk {
    const char *name;
    int (*fn)(void *ctx, const char *value);
    void *ctx;
    int rc;
};

static enum MHD_Result walk_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct args_walk *w = cls;
    if (key && strcmp(key, w->name) == 0 && (w->rc = w->fn(w->ctx, value ? value : "")) != 0)
        return MHD_NO;
    return MHD_YES;
}

int http_query_args(const struct http_request *req, const char *name,
                    int (*fn)(void *ctx, const char *value), void *ctx)
{
    struct args_walk w = {name, fn, ctx, 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, walk_arg, &w);
    const struct form *f = req->form;
    for (size_t i = 0; !w.rc && f && i < f->len;) {
        const char *k = f->buf + i, *v = k + strlen(k) + 1;
        i = (size_t)(v - f->buf) + strlen(v) + 1;
        if (strcmp(k, name) == 0)
            w.rc = fn(ctx, v);
    }
    return w.rc;
}

static int first_arg(void *ctx, const char *value)
{
    *(const char **)ctx = value;
    return 1;
}

const char *http_query_arg(const struct http_request *req, const char *name)
{
    const char *v = NULL;
    http_query_args(req, name, first_arg, &v);
    return v;
}

const char *http_header(const struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void http_error(struct http_response *resp, int status, const char *fmt, ...)
{
    va_list ap;
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    sbuf_reset(&resp->body);
    va_start(ap, fmt);
    sbuf_vaddf(&resp->body, fmt, ap);
    va_end(ap);
    sbuf_addc(&resp->body, '\n');
}

/* An exact route path, or a prefix one ending in '*'. */
static int path_match(const char *route, const char *url)
{
    size_t n = strlen(route);
    if (n && route[n - 1] == '*')
        return strncmp(route, url, n - 1) == 0;
    return strcmp(route, url) == 0;
}

static int status_class(int status)
{
    int c = status / 100 - 2;
    return c < 0 ? 0 : c >= NCLASSES ? NCLASSES - 1 : c;
}

/* Constant-time comparison, so the token can't be guessed byte by byte. */
static int token_ok(const char *want, const char *auth)
{
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    auth += 7;
    size_t n = strlen(want), m = strlen(auth);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(want[i] ^ (i < m ? auth[i] : 0));
    return diff == 0;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *resp)
{
    /* The body is handed over, not copied: range answers can be tens of MB. */
    size_t len;
    char *body = sbuf_detach(&resp->body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct pending *p = *con_cls;
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        sbuf_init(&p->body, HTTP_MAX_BODY);
        *con_cls = p;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (sbuf_add(&p->body, upload_data, *upload_data_size) < 0)
            p->too_big = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct http_response resp = {.status = 200};
    sbuf_init(&resp.body, 0);
    struct route *route = NULL;
    int path_known = 0;
    for (size_t i = 0; i < s->nroutes; i++)
        if (path_match(s->routes[i].path, url)) {
            path_known = 1;
            if (strcmp(s->routes[i].method, method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(s->routes[i].method, "GET") == 0)) {
                route = &s->routes[i];
                break;
            }
        }
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (strcmp(method, "POST") == 0 && ctype && !p->form.buf &&
        strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0)
        form_decode(&p->form, p->body.buf, p->body.len);
    struct http_request req = {.method = method,
                               .path = url,
                               .body = p->body.buf,
                               .body_len = p->body.len,
                               .conn = conn,
                               .form = p->form.buf ? &p->form : NULL};
    if (!route) {
        if (path_known)
            http_error(&resp, 405, "method %s not allowed on %s", method, url);
        else
            http_error(&resp, 404, "no such endpoint: %s (see / for the list)", url);
    } else if (p->too_big) {
        http_error(&resp, 413, "request body larger than %zu bytes", (size_t)HTTP_MAX_BODY);
    } else if ((route->flags & HTTP_MUTATES) && s->token &&
               !token_ok(s->token, http_header(&req, "Authorization"))) {
        http_error(&resp, 401,
                   "this request changes state: send 'Authorization: Bearer TOKEN'"
                   " with the http.token from the config");
    } else if ((route->flags & HTTP_MUTATES) && !s->token && !s->loopback) {
        http_error(&resp, 403,
                   "state-changing requests are refused on a non-loopback "
                   "listener unless http.token is set in the config");
    } else {
        route->fn(route->ctx, &req, &resp);
    }
    atomic_ullong *counts = route ? route->count : s->unrouted;
    atomic_fetch_add(&counts[status_class(resp.status)], 1);
    enum MHD_Result ret = send_response(conn, &resp);
    sbuf_release(&resp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct pending *p = *con_cls;
    if (p) {
        sbuf_release(&p->body);
        free(p->form.buf);
        free(p);
        *con_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("http: %s", msg);
}

int http_start(struct http_server *s, const char *listen, const char *token)
{
    char host[256], portstr[16];
    int port;
    if (config_parse_listen(listen, host, sizeof(host), &port) < 0)
        return log_error("http: bad listen address '%s': want ADDR:PORT", listen);
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai;
    int e = getaddrinfo(host, portstr, &hints, &ai);
    if (e)
        return log_error("http: cannot resolve listen address '%s': %s", host, gai_strerror(e));
    s->loopback = 0;
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)ai->ai_addr;
        s->loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    } else if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
        s->loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    free(s->token);
    s->token = token ? xstrdup(token) : NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_EPOLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon)
        return log_error("http: cannot listen on %s (in use, or not an address of this host?)",
                         listen);
    return 0;
}

void http_stop(struct http_server *s)
{
    if (s->daemon) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
}

void http_emit_metrics(struct http_server *s, struct metric_buf *b)
{
    static const char *classes[NCLASSES] = {"2xx", "3xx", "4xx", "5xx"};
    metric_fam(b, "sitrep_http_requests_total",
               "HTTP requests answered, by handler, method and status class.", METRIC_COUNTER);
    for (size_t i = 0; i <= s->nroutes; i++) {
        const char *h = i < s->nroutes ? s->routes[i].path : "other";
        atomic_ullong *c = i < s->nroutes ? s->routes[i].count : s->unrouted;
        for (int k = 0; k < NCLASSES; k++) {
            unsigned long long v = atomic_load(&c[k]);
            if (!v)
                continue;
            struct metric_label l[3] = {{"handler", h},
                                        {"method", i < s->nroutes ? s->routes[i].method : ""},
                                        {"code", classes[k]}};
            metric_add(b, (double)v, 3, l);
        }
    }
}
