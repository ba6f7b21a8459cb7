/*
 * queue_internal.h: what the files of src/queue/ share: the RESP2 reply
 * parser (resp.c), the Redis connection with deadlines (conn.c) and one
 * poll of a Redis server (redis.c). Only src/queue/ and its tests include
 * it; everything else goes through queue.h.
 */
#ifndef SITREP_QUEUE_INTERNAL_H
#define SITREP_QUEUE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "queue/queue.h"
#include "util/sbuf.h"

/* ---- RESP2 replies (resp.c) ---- */

#define QUEUE__RESP_MAX_BULK  (512 << 10) /* bytes of one bulk string */
#define QUEUE__RESP_MAX_ARRAY 100000      /* elements of one array */
#define QUEUE__RESP_MAX_NODES 200000      /* values in one reply, nested ones included */
#define QUEUE__RESP_MAX_LINE  4096        /* bytes of a +status, -error or :integer line */
#define QUEUE__RESP_MAX_DEPTH 8           /* nesting of arrays */

enum queue__rtype {
    QUEUE__STATUS,
    QUEUE__ERROR,
    QUEUE__INT,
    QUEUE__BULK,
    QUEUE__NIL,
    QUEUE__ARRAY
};

/*
 * One parsed reply. str is NUL-terminated (a bulk string may also hold NUL
 * bytes: len is its true length). A reply owns its elements and strings;
 * queue__reply_free frees the whole tree.
 */
struct queue__reply {
    enum queue__rtype type;
    long long integer;         /* QUEUE__INT */
    char *str;                 /* STATUS, ERROR, BULK */
    size_t len;                /* bytes of str */
    struct queue__reply *elem; /* ARRAY: n elements */
    size_t n;
};

/*
 * Parse one reply from the n bytes at buf. Returns 1 with *out (owned by
 * the caller) and *used (bytes it took), 0 if buf holds only part of a
 * reply (call again with more), or -1 if the bytes are no RESP2 reply or
 * pass a limit above (err says what and at which byte). Never reads past
 * buf + n.
 */
int queue__resp_parse(const char *buf, size_t n, struct queue__reply **out, size_t *used, char *err,
                      size_t errlen);
void queue__reply_free(struct queue__reply *r);
/* In a reply that is a flat array of name, value pairs (XINFO): the value of name, or NULL. */
const struct queue__reply *queue__reply_field(const struct queue__reply *r, const char *name);
/* Append a command as a RESP array of bulk strings. 0, or -1 at req's cap. */
int queue__resp_command(struct sbuf *req, size_t argc, const char *const *argv);

/* ---- the connection (conn.c) ---- */

/* Why a call failed; also the `reason` label of sitrep_queue_errors_total. */
enum queue__fail {
    QUEUE__F_CONNECT,  /* resolve, connect, or the peer closed */
    QUEUE__F_TIMEOUT,  /* the deadline passed */
    QUEUE__F_PROTOCOL, /* bytes that are no RESP2, or a reply over a limit */
    QUEUE__F_AUTH,     /* AUTH or SELECT refused */
    QUEUE__F_REPLY,    /* a command answered with an error reply */
    QUEUE__F_N
};
extern const char *const queue__fail_names[QUEUE__F_N];

struct queue__conn {
    int fd;     /* -1 when closed */
    char *rbuf; /* received, not yet parsed; owned */
    size_t rlen, rcap;
};

void queue__conn_init(struct queue__conn *c);
void queue__conn_close(struct queue__conn *c);
/*
 * Connect to addr ("host:port", "[v6]:port") before deadline (monotonic ns).
 * 0, or -1 with *why and err. Name resolution is not bound by the deadline.
 */
int queue__conn_open(struct queue__conn *c, const char *addr, int64_t deadline_ns,
                     enum queue__fail *why, char *err, size_t errlen);
/*
 * Send req (encoded commands) and read n replies into out[0..n), writing and
 * reading together so a long pipeline never stalls. 0 with every out[i]
 * set (the caller frees them), or -1 with *why and err, the connection
 * closed and out[] freed and zeroed. Error replies are replies here.
 */
int queue__conn_call(struct queue__conn *c, const struct sbuf *req, size_t n,
                     struct queue__reply **out, int64_t deadline_ns, enum queue__fail *why,
                     char *err, size_t errlen);

/* ---- polling one server (redis.c) ---- */

/* A stream's consumer group as XINFO GROUPS describes it. */
struct queue__group {
    char name[256];
    char last_id[64];             /* last-delivered-id; "" if absent */
    long long pending, consumers; /* -1 if absent */
    int has_lag;                  /* the server sent `lag` (Redis >= 7) */
    long long lag;                /* < 0: unknown, not emitted */
};

/*
 * The group's lag: what Redis >= 7 said (nil stays unknown: entries were
 * deleted); else, on older servers, derived where it is exact: 0 for an
 * empty stream or when last_id is the newest entry's id (newest_id, NULL
 * if not known), the stream's length when nothing was delivered ("0-0").
 * Otherwise -1.
 */
long long queue__stream_lag(const struct queue__group *g, long long xlen, const char *newest_id);
/* The group of one XINFO GROUPS element, or -1 if it has no usable name. */
int queue__group_read(struct queue__group *g, const struct queue__reply *info);

struct queue__server {
    const struct queue_redis *cfg; /* in the source's config copy */
    struct queue__conn conn;
    char **keys; /* this poll's keys, sorted; owned */
    size_t nkeys, keys_cap;
    uint64_t errors[QUEUE__F_N];
    uint64_t dropped; /* keys over max_keys, or not valid as label values */
    int64_t next_due_ms;
    int failing;     /* logged once per failure streak */
    char error[256]; /* the last failure */
};

/*
 * Poll the server once (connect if needed, AUTH, SELECT, SCAN the globs,
 * size every key, read stream groups) and append its series to b. Returns
 * 0, or -1 (counted, sitrep_queue_up 0 emitted) with the reason in s->error.
 */
int queue__redis_poll(struct queue__server *s, struct metric_buf *b);
void queue__server_release(struct queue__server *s);

#endif
