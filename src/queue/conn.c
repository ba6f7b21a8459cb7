/*
 * conn.c: a connection to a Redis server over a non-blocking TCP socket,
 * every step bound by a deadline: connect, then pipelined calls that write
 * the request and read the replies together (poll on one socket). Replies
 * go through resp.c; the receive buffer is capped.
 */
#include "queue/queue_internal.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_MAX ((size_t)QUEUE__RESP_MAX_BULK * 4) /* unparsed bytes held at once */

const char *const queue__fail_names[QUEUE__F_N] = {"connect", "timeout", "protocol", "auth",
                                                   "reply"};

void queue__conn_init(struct queue__conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void queue__conn_close(struct queue__conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    queue__conn_init(c);
}

static int fail(enum queue__fail *why, enum queue__fail w, char *err, size_t errlen,
                const char *msg, const char *detail)
{
    *why = w;
    snprintf(err, errlen, "%s%s%s", msg, detail ? ": " : "", detail ? detail : "");
    return -1;
}

/* Milliseconds left before deadline for poll(), at least 0. */
static int left_ms(int64_t deadline_ns)
{
    int64_t l = (deadline_ns - util_mono_ns() + 999999) / 1000000;
    return l < 0 ? 0 : l > 60000 ? 60000 : (int)l;
}

/* Split "host:port" or "[v6]:port" (port required). 0 or -1. */
static int split_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *colon;
    size_t hl;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - addr - 1);
        addr++;
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - addr);
    }
    if (!hl || hl >= hostcap || !colon[1] || strlen(colon + 1) >= portcap)
        return -1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    snprintf(port, portcap, "%s", colon + 1);
    return 0;
}

int queue__conn_open(struct queue__conn *c, const char *addr, int64_t deadline_ns,
                     enum queue__fail *why, char *err, size_t errlen)
{
    char host[256], port[16];
    queue__conn_close(c);
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0)
        return fail(why, QUEUE__F_CONNECT, err, errlen, "bad address", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *ai = NULL;
    int e = getaddrinfo(host, port, &hints, &ai);
    if (e != 0)
        return fail(why, QUEUE__F_CONNECT, err, errlen, "cannot resolve", gai_strerror(e));
    int rc = -1;
    char msg[128] = "no address";
    *why = QUEUE__F_CONNECT;
    for (struct addrinfo *a = ai; a && rc < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(msg, sizeof(msg), "%s", strerror(errno));
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            snprintf(msg, sizeof(msg), "%s", strerror(errno));
            close(fd);
            continue;
        }
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pf, 1, left_ms(deadline_ns));
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (pr == 0) {
            *why = QUEUE__F_TIMEOUT;
            snprintf(msg, sizeof(msg), "connect timed out");
            close(fd);
            break; /* the deadline is spent */
        }
        if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
            snprintf(msg, sizeof(msg), "%s", strerror(soerr ? soerr : errno));
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        rc = 0;
    }
    freeaddrinfo(ai);
    if (rc < 0)
        return fail(why, *why, err, errlen, "cannot connect", msg);
    return 0;
}

/* Parse complete replies from rbuf into out[*got..n). 0, or -1 (protocol). */
static int take_replies(struct queue__conn *c, size_t n, struct queue__reply **out, size_t *got,
                        char *err, size_t errlen)
{
    size_t off = 0;
    while (*got < n && off < c->rlen) {
        size_t used = 0;
        int r = queue__resp_parse(c->rbuf + off, c->rlen - off, &out[*got], &used, err, errlen);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        off += used;
        (*got)++;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return 0;
}

int queue__conn_call(struct queue__conn *c, const struct sbuf *req, size_t n,
                     struct queue__reply **out, int64_t deadline_ns, enum queue__fail *why,
                     char *err, size_t errlen)
{
    size_t sent = 0, got = 0;
    int rc = -1;
    memset(out, 0, n * sizeof(*out));
    if (c->fd < 0) {
        fail(why, QUEUE__F_CONNECT, err, errlen, "not connected", NULL);
        goto out;
    }
    if (c->rlen) { /* bytes nobody asked for: the stream is out of step */
        fail(why, QUEUE__F_PROTOCOL, err, errlen, "unexpected bytes before the request", NULL);
        goto out;
    }
    while (got < n) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | (sent < req->len ? POLLOUT : 0)};
        int pr = poll(&pf, 1, left_ms(deadline_ns));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            fail(why, QUEUE__F_TIMEOUT, err, errlen, "no complete answer in time", NULL);
            goto out;
        }
        if (pr < 0) {
            fail(why, QUEUE__F_CONNECT, err, errlen, "poll", strerror(errno));
            goto out;
        }
        if ((pf.revents & POLLOUT) && sent < req->len) {
            ssize_t w = send(c->fd, req->buf + sent, req->len - sent, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                fail(why, QUEUE__F_CONNECT, err, errlen, "send", strerror(errno));
                goto out;
            }
            if (w > 0)
                sent += (size_t)w;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (c->rcap - c->rlen < 16384) {
                if (c->rcap >= RBUF_MAX) {
                    fail(why, QUEUE__F_PROTOCOL, err, errlen, "reply over the size limit", NULL);
                    goto out;
                }
                c->rcap = c->rcap ? c->rcap * 2 : 65536;
                c->rbuf = xrealloc(c->rbuf, c->rcap);
            }
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
            if (r == 0) {
                fail(why, QUEUE__F_CONNECT, err, errlen, "the server closed the connection", NULL);
                goto out;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR) {
                fail(why, QUEUE__F_CONNECT, err, errlen, "recv", strerror(errno));
                goto out;
            }
            if (r > 0) {
                c->rlen += (size_t)r;
                if (take_replies(c, n, out, &got, err, errlen) < 0) {
                    *why = QUEUE__F_PROTOCOL;
                    goto out;
                }
            }
        }
    }
    if (c->rlen) {
        fail(why, QUEUE__F_PROTOCOL, err, errlen, "more replies than requests", NULL);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0) {
        for (size_t i = 0; i < n; i++) {
            queue__reply_free(out[i]);
            out[i] = NULL;
        }
        queue__conn_close(c);
    }
    return rc;
}
