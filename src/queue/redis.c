/*
 * redis.c: one poll of one Redis server: connect and authenticate when
 * needed, find the keys (names as given, globs through SCAN MATCH up to
 * max_keys), ask each key's TYPE, then its size (LLEN, ZCARD, XLEN) and a
 * stream's consumer groups (XINFO GROUPS), all pipelined in chunks, and
 * append the series to the poll's batch.
 */
#include "queue/queue_internal.h"
#include "ingest/expfmt.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK      256 /* keys per pipelined round */
#define SCAN_COUNT "1000"
#define MAX_GROUPS 64 /* consumer groups reported per stream */

enum kind { K_NONE, K_LIST, K_ZSET, K_STREAM, K_OTHER };

struct key_res {
    enum kind kind;
    long long depth;
    struct queue__group *groups; /* owned */
    size_t ngroups;
    int literal;
    int need_newest; /* a group without `lag` (Redis < 7): the newest id may give it */
    char newest[64];
};

struct poll {
    struct queue__server *s;
    int64_t deadline;
    enum queue__fail why;
    char err[256];
    struct sbuf req;
};

void queue__server_release(struct queue__server *s)
{
    queue__conn_close(&s->conn);
    for (size_t i = 0; i < s->nkeys; i++)
        free(s->keys[i]);
    free(s->keys);
    memset(s, 0, sizeof(*s));
}

/* Send the commands in p->req and read n replies. 0, or -1 (p->why, p->err). */
static int call(struct poll *p, size_t n, struct queue__reply **out)
{
    int rc = queue__conn_call(&p->s->conn, &p->req, n, out, p->deadline, &p->why, p->err,
                              sizeof(p->err));
    sbuf_reset(&p->req);
    return rc;
}

static int cmd(struct poll *p, size_t argc, const char *const *argv)
{
    if (queue__resp_command(&p->req, argc, argv) < 0) {
        p->why = QUEUE__F_PROTOCOL;
        snprintf(p->err, sizeof(p->err), "request over its size limit");
        return -1;
    }
    return 0;
}

/* A command the server refused: `auth` for missing or wrong credentials, else `reply`. */
static void refused(struct poll *p, const char *what, const struct queue__reply *r)
{
    int auth = strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0 ||
               strncmp(r->str, "NOPERM", 6) == 0;
    p->why = auth ? QUEUE__F_AUTH : QUEUE__F_REPLY;
    snprintf(p->err, sizeof(p->err), "%s refused: %.200s", what, r->str);
}

static int connect_auth(struct poll *p)
{
    const struct queue_redis *c = p->s->cfg;
    if (queue__conn_open(&p->s->conn, c->addr, p->deadline, &p->why, p->err, sizeof(p->err)) < 0)
        return -1;
    size_t n = 0;
    char db[16];
    snprintf(db, sizeof(db), "%u", c->db);
    if (c->password) {
        const char *auth[] = {"AUTH", c->username ? c->username : c->password, c->password};
        if (cmd(p, c->username ? 3 : 2, auth) < 0)
            return -1;
        n++;
    }
    if (c->db) {
        const char *sel[] = {"SELECT", db};
        if (cmd(p, 2, sel) < 0)
            return -1;
        n++;
    }
    if (!n)
        return 0;
    struct queue__reply *r[2];
    if (call(p, n, r) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i]->type == QUEUE__ERROR && rc == 0) {
            refused(p, c->password && i == 0 ? "AUTH" : "SELECT", r[i]);
            p->why = QUEUE__F_AUTH;
            rc = -1;
        }
    for (size_t i = 0; i < n; i++)
        queue__reply_free(r[i]);
    if (rc < 0)
        queue__conn_close(&p->s->conn);
    return rc;
}

static int is_glob(const char *k)
{
    return strpbrk(k, "*?[") != NULL;
}

/* Add a key found on the server; those past max_keys or unfit for a label are counted. */
static void add_key(struct queue__server *s, const char *k, size_t len)
{
    if (s->nkeys >= s->cfg->max_keys || !len || memchr(k, '\0', len) ||
        !expfmt_utf8_valid(k, len)) {
        s->dropped++;
        return;
    }
    util_grow((void **)&s->keys, &s->keys_cap, s->nkeys + 1, sizeof(*s->keys));
    s->keys[s->nkeys++] = xstrndup(k, len);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* SCAN one glob to the end (cursor 0 again), or until the deadline. */
static int scan_glob(struct poll *p, const char *glob)
{
    char cursor[32] = "0";
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", glob, "COUNT", SCAN_COUNT};
        struct queue__reply *r;
        if (cmd(p, 6, argv) < 0 || call(p, 1, &r) < 0)
            return -1;
        if (r->type != QUEUE__ARRAY || r->n != 2 || r->elem[0].type != QUEUE__BULK ||
            r->elem[0].len >= sizeof(cursor) || r->elem[1].type != QUEUE__ARRAY) {
            if (r->type == QUEUE__ERROR) {
                refused(p, "SCAN", r);
            } else {
                p->why = QUEUE__F_PROTOCOL;
                snprintf(p->err, sizeof(p->err), "SCAN: unexpected reply");
            }
            queue__reply_free(r);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->elem[0].str);
        for (size_t i = 0; i < r->elem[1].n; i++)
            if (r->elem[1].elem[i].type == QUEUE__BULK)
                add_key(p->s, r->elem[1].elem[i].str, r->elem[1].elem[i].len);
        queue__reply_free(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int find_keys(struct poll *p)
{
    struct queue__server *s = p->s;
    for (size_t i = 0; i < s->nkeys; i++)
        free(s->keys[i]);
    s->nkeys = 0;
    s->dropped = 0;
    for (size_t i = 0; i < s->cfg->nkeys; i++) {
        const char *k = s->cfg->keys[i];
        if (!is_glob(k))
            add_key(s, k, strlen(k));
        else if (scan_glob(p, k) < 0)
            return -1;
    }
    if (s->nkeys)
        qsort(s->keys, s->nkeys, sizeof(*s->keys), cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < s->nkeys; i++) {
        if (w && strcmp(s->keys[w - 1], s->keys[i]) == 0)
            free(s->keys[i]);
        else
            s->keys[w++] = s->keys[i];
    }
    s->nkeys = w;
    return 0;
}

static int literal_key(const struct queue__server *s, const char *k)
{
    for (size_t i = 0; i < s->cfg->nkeys; i++)
        if (strcmp(s->cfg->keys[i], k) == 0)
            return 1;
    return 0;
}

static enum kind kind_of(const struct queue__reply *r)
{
    if (r->type != QUEUE__STATUS && r->type != QUEUE__BULK)
        return K_OTHER;
    return strcmp(r->str, "none") == 0     ? K_NONE
           : strcmp(r->str, "list") == 0   ? K_LIST
           : strcmp(r->str, "zset") == 0   ? K_ZSET
           : strcmp(r->str, "stream") == 0 ? K_STREAM
                                           : K_OTHER;
}

static long long int_field(const struct queue__reply *g, const char *name)
{
    const struct queue__reply *v = queue__reply_field(g, name);
    return v && v->type == QUEUE__INT ? v->integer : -1;
}

long long queue__stream_lag(const struct queue__group *g, long long xlen, const char *newest_id)
{
    if (g->has_lag)
        return g->lag >= 0 ? g->lag : -1;
    if (!g->last_id[0])
        return -1;
    if (xlen == 0)
        return 0;
    if (strcmp(g->last_id, "0-0") == 0) /* nothing delivered: every entry there is ahead */
        return xlen;
    if (newest_id && strcmp(g->last_id, newest_id) == 0)
        return 0;
    return -1;
}

int queue__group_read(struct queue__group *q, const struct queue__reply *g)
{
    const struct queue__reply *name = queue__reply_field(g, "name");
    const struct queue__reply *last = queue__reply_field(g, "last-delivered-id");
    const struct queue__reply *lag = queue__reply_field(g, "lag");
    if (!name || name->type != QUEUE__BULK || !name->len || name->len >= sizeof(q->name) ||
        memchr(name->str, '\0', name->len) || !expfmt_utf8_valid(name->str, name->len))
        return -1;
    memset(q, 0, sizeof(*q));
    memcpy(q->name, name->str, name->len + 1);
    if (last && last->type == QUEUE__BULK && last->len < sizeof(q->last_id))
        memcpy(q->last_id, last->str, last->len + 1);
    q->pending = int_field(g, "pending");
    q->consumers = int_field(g, "consumers");
    q->has_lag = lag != NULL;
    q->lag = lag && lag->type == QUEUE__INT ? lag->integer : -1;
    return 0;
}

/* XINFO GROUPS's answer into kr's groups (their lag once the newest id is known). */
static void read_groups(struct key_res *kr, const struct queue__reply *r)
{
    if (r->type != QUEUE__ARRAY)
        return;
    for (size_t i = 0; i < r->n && kr->ngroups < MAX_GROUPS; i++) {
        if (!kr->groups)
            kr->groups = xcalloc(MAX_GROUPS, sizeof(*kr->groups));
        struct queue__group *q = &kr->groups[kr->ngroups];
        if (queue__group_read(q, &r->elem[i]) < 0)
            continue;
        kr->ngroups++;
        kr->need_newest |= !q->has_lag && kr->depth > 0 && strcmp(q->last_id, "0-0") != 0;
    }
}

/* TYPE, then the sizes and stream groups, of keys[from..to) (at most CHUNK). */
static int size_keys(struct poll *p, struct key_res *res, size_t from, size_t to)
{
    struct queue__server *s = p->s;
    struct queue__reply *r[2 * CHUNK];
    size_t who[2 * CHUNK], n = 0;
    for (size_t i = from; i < to; i++) {
        const char *argv[] = {"TYPE", s->keys[i]};
        if (cmd(p, 2, argv) < 0)
            return -1;
    }
    if (call(p, to - from, r) < 0)
        return -1;
    for (size_t i = from; i < to; i++)
        if (r[i - from]->type == QUEUE__ERROR) { /* TYPE never fails on a key: NOAUTH, NOPERM */
            refused(p, "TYPE", r[i - from]);
            for (size_t k = from; k < to; k++)
                queue__reply_free(r[k - from]);
            return -1;
        }
    for (size_t i = from; i < to; i++) {
        res[i].kind = kind_of(r[i - from]);
        res[i].literal = literal_key(s, s->keys[i]);
        queue__reply_free(r[i - from]);
        enum kind k = res[i].kind;
        if (k == K_LIST || k == K_ZSET || k == K_STREAM) {
            const char *argv[] = {k == K_LIST   ? "LLEN"
                                  : k == K_ZSET ? "ZCARD"
                                                : "XLEN",
                                  s->keys[i]};
            if (cmd(p, 2, argv) < 0)
                return -1;
            who[n++] = i;
        }
        if (k == K_STREAM) {
            const char *argv[] = {"XINFO", "GROUPS", s->keys[i]};
            if (cmd(p, 3, argv) < 0)
                return -1;
            who[n++] = i;
        }
    }
    if (n && call(p, n, r) < 0)
        return -1;
    for (size_t j = 0; j < n; j++) {
        struct key_res *kr = &res[who[j]];
        int groups = j > 0 && who[j - 1] == who[j];
        if (r[j]->type == QUEUE__ERROR) { /* changed type since TYPE, or refused: skip the key */
            kr->kind = K_OTHER;
            s->errors[QUEUE__F_REPLY]++;
        } else if (!groups && r[j]->type == QUEUE__INT && kr->kind != K_OTHER) {
            kr->depth = r[j]->integer;
        } else if (groups && kr->kind == K_STREAM) {
            read_groups(kr, r[j]);
        }
        queue__reply_free(r[j]);
    }
    return 0;
}

/* Redis < 7 gives no lag: the newest entry's id says whether a group has read everything. */
static int newest_ids(struct poll *p, struct key_res *res, size_t from, size_t to)
{
    struct queue__reply *r[CHUNK];
    size_t who[CHUNK], n = 0;
    for (size_t i = from; i < to; i++)
        if (res[i].kind == K_STREAM && res[i].need_newest) {
            const char *argv[] = {"XREVRANGE", p->s->keys[i], "+", "-", "COUNT", "1"};
            if (cmd(p, 6, argv) < 0)
                return -1;
            who[n++] = i;
        }
    if (n && call(p, n, r) < 0)
        return -1;
    for (size_t j = 0; j < n; j++) {
        const struct queue__reply *e = r[j];
        struct key_res *kr = &res[who[j]];
        if (e->type == QUEUE__ARRAY && e->n == 1 && e->elem[0].type == QUEUE__ARRAY &&
            e->elem[0].n >= 1 && e->elem[0].elem[0].type == QUEUE__BULK &&
            e->elem[0].elem[0].len < sizeof(kr->newest))
            snprintf(kr->newest, sizeof(kr->newest), "%s", e->elem[0].elem[0].str);
        queue__reply_free(r[j]);
    }
    return 0;
}

/* ---- series ---- */

/* Labels sorted by name: group, instance, queue, source. */
static void add(struct metric_buf *b, double v, const struct queue__server *s, const char *queue,
                const char *group)
{
    struct metric_label l[4];
    size_t n = 0;
    if (group)
        l[n++] = (struct metric_label){"group", group};
    l[n++] = (struct metric_label){"instance", s->cfg->instance};
    if (queue)
        l[n++] = (struct metric_label){"queue", queue};
    l[n++] = (struct metric_label){"source", "redis"};
    metric_add(b, v, n, l);
}

static void emit_keys(const struct queue__server *s, const struct key_res *res,
                      struct metric_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } per_group[] = {
        {"sitrep_queue_pending", "Entries delivered to a consumer group and not acknowledged.",
         offsetof(struct queue__group, pending)},
        {"sitrep_queue_lag", "Entries in the stream the consumer group has not read yet.",
         offsetof(struct queue__group, lag)},
        {"sitrep_queue_consumers", "Consumers of the consumer group.",
         offsetof(struct queue__group, consumers)},
    };
    metric_fam(b, "sitrep_queue_depth",
               "Entries in the queue (list length, sorted set size, stream length).", METRIC_GAUGE);
    for (size_t i = 0; i < s->nkeys; i++)
        if (res[i].kind == K_LIST || res[i].kind == K_ZSET || res[i].kind == K_STREAM ||
            (res[i].kind == K_NONE && res[i].literal)) /* an emptied list is gone: depth 0 */
            add(b, (double)res[i].depth, s, s->keys[i], NULL);
    for (size_t f = 0; f < ARRAY_SIZE(per_group); f++) {
        metric_fam(b, per_group[f].name, per_group[f].help, METRIC_GAUGE);
        for (size_t i = 0; i < s->nkeys; i++)
            for (size_t g = 0; res[i].kind == K_STREAM && g < res[i].ngroups; g++) {
                long long v;
                memcpy(&v, (const char *)&res[i].groups[g] + per_group[f].off, sizeof(v));
                if (v >= 0)
                    add(b, (double)v, s, s->keys[i], res[i].groups[g].name);
            }
    }
}

/* ---- one poll ---- */

static int poll_keys(struct poll *p, struct metric_buf *b)
{
    struct queue__server *s = p->s;
    if (s->conn.fd < 0 && connect_auth(p) < 0)
        return -1;
    if (find_keys(p) < 0)
        return -1;
    struct key_res *res = xcalloc(s->nkeys ? s->nkeys : 1, sizeof(*res));
    int rc = 0;
    for (size_t from = 0; from < s->nkeys && rc == 0; from += CHUNK) {
        size_t to = from + CHUNK < s->nkeys ? from + CHUNK : s->nkeys;
        rc = size_keys(p, res, from, to);
        if (rc == 0)
            rc = newest_ids(p, res, from, to);
    }
    if (rc == 0) {
        for (size_t i = 0; i < s->nkeys; i++)
            for (size_t g = 0; g < res[i].ngroups; g++)
                res[i].groups[g].lag = queue__stream_lag(&res[i].groups[g], res[i].depth,
                                                         res[i].newest[0] ? res[i].newest : NULL);
        emit_keys(s, res, b);
    }
    for (size_t i = 0; i < s->nkeys; i++)
        free(res[i].groups);
    free(res);
    return rc;
}

int queue__redis_poll(struct queue__server *s, struct metric_buf *b)
{
    int64_t t0 = util_mono_ns();
    struct poll p = {.s = s, .deadline = t0 + s->cfg->timeout_ms * 1000000};
    sbuf_init(&p.req, 4 << 20);
    struct metric_mark m;
    metric_buf_mark(b, &m);
    int reused = s->conn.fd >= 0;
    int rc = poll_keys(&p, b);
    if (rc < 0 && reused && p.why == QUEUE__F_CONNECT) {
        /* The kept connection died since the last poll (a server restart): once more, fresh. */
        metric_buf_rollback(b, &m);
        sbuf_reset(&p.req);
        rc = poll_keys(&p, b);
    }
    sbuf_release(&p.req);
    if (rc < 0) {
        metric_buf_rollback(b, &m); /* a failed poll reports no half of the keys */
        s->errors[p.why]++;
        snprintf(s->error, sizeof(s->error), "%s", p.err);
        if (!s->failing)
            log_warn("queue: redis %s: %s", s->cfg->instance, p.err);
    } else if (s->failing) {
        log_info("queue: redis %s answers again", s->cfg->instance);
    }
    s->failing = rc < 0;
    metric_fam(b, "sitrep_queue_up", "1 if the last poll of the queue server succeeded.",
               METRIC_GAUGE);
    add(b, rc == 0, s, NULL, NULL);
    metric_fam(b, "sitrep_queue_scrape_duration_seconds", "How long the last poll took.",
               METRIC_GAUGE);
    add(b, (double)(util_mono_ns() - t0) / 1e9, s, NULL, NULL);
    metric_fam(b, "sitrep_queue_keys", "Keys reported by the last poll.", METRIC_GAUGE);
    add(b, rc == 0 ? (double)s->nkeys : 0, s, NULL, NULL);
    metric_fam(b, "sitrep_queue_keys_dropped",
               "Keys the last poll found beyond max_keys or with a name unfit for a label.",
               METRIC_GAUGE);
    add(b, (double)s->dropped, s, NULL, NULL);
    metric_fam(b, "sitrep_queue_errors_total", "Failed polls and refused commands, by reason.",
               METRIC_COUNTER);
    for (int r = 0; r < QUEUE__F_N; r++) {
        struct metric_label l[3] = {
            {"instance", s->cfg->instance}, {"reason", queue__fail_names[r]}, {"source", "redis"}};
        metric_add(b, (double)s->errors[r], 3, l);
    }
    return rc;
}
