/*
 * queue.h: queue depth from Redis. For each configured server, on its own
 * interval, one poll reads the configured keys (names, or globs found with
 * SCAN MATCH, at most max_keys per server) and reports, per key, the depth
 * of a list (LLEN), sorted set (ZCARD) or stream (XLEN), and for a stream's
 * consumer groups their pending entries, lag and consumers (XINFO GROUPS).
 * The client is sitrep's own small RESP2 client over a non-blocking socket
 * with a deadline per poll (queue_internal.h).
 *
 * Series are a shape any queue source can share, so rules written for them
 * work on scraped or StatsD-fed queues too: sitrep_queue_depth{source,
 * instance,queue}, sitrep_queue_pending / _lag / _consumers {..., group},
 * sitrep_queue_up{source,instance}, sitrep_queue_scrape_duration_seconds,
 * sitrep_queue_keys, sitrep_queue_keys_dropped, sitrep_queue_errors_total
 * {reason}. Each poll becomes one metric_buf batch stamped with its start.
 * Names and semantics: docs/SIGNALS.md.
 *
 * Threads: queue_start() creates one thread that polls the servers in turn
 * (a slow server delays the next by at most its timeout). Without the
 * thread (tests) queue_run_once() polls every server once.
 */
#ifndef SITREP_QUEUE_H
#define SITREP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "metric/metric.h"
#include "util/sbuf.h"

struct yaml_document_s;
struct yaml_node_s;

#define QUEUE_DEFAULT_INTERVAL_MS 1000
#define QUEUE_DEFAULT_TIMEOUT_MS  1000 /* whole poll; at most the interval */
#define QUEUE_DEFAULT_MAX_KEYS    1000
#define QUEUE_MAX_MAX_KEYS        100000

/* One `queues:` entry (a Redis server). The config owns it; queue_config_release frees it. */
struct queue_redis {
    char *addr;                /* "host:port" or "[v6]:port" */
    char *instance;            /* the instance label: addr, or "addr/db" when db > 0 */
    char *username, *password; /* NULL: no AUTH (username only with a password) */
    unsigned db;               /* SELECT; 0 */
    char **keys;               /* key names and globs (*, ?, [...]); >= 1 */
    size_t nkeys;
    long long interval_ms, timeout_ms; /* 1 s, 1 s */
    unsigned max_keys;                 /* 1000: keys reported per server; the rest counted */
};

struct queue_config {
    struct queue_redis *servers; /* owned */
    size_t nservers;
};

void queue_config_init(struct queue_config *c);
void queue_config_release(struct queue_config *c);
/* 1 if equal (a reload can then keep the poller). */
int queue_config_equal(const struct queue_config *a, const struct queue_config *b);
/*
 * Read the `queues:` list `node` into c (appending). Per entry: redis
 * (required), keys (required), username, password, db, interval, timeout,
 * max_keys. On error returns -1 and appends "file:line:col: message\n" per
 * problem to errors.
 */
int queue_config_parse_node(struct queue_config *c, const char *file, struct yaml_document_s *doc,
                            struct yaml_node_s *node, struct sbuf *errors);

struct queue_opts {
    const struct queue_config *config; /* copied */
    /* Called on the poller's thread with each poll's batch (it stays the poller's). */
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
};

struct queue;

/* Create a poller (no thread, no connection yet). Never NULL. */
struct queue *queue_new(const struct queue_opts *opts);
/* Stop the thread if running, close connections, free everything. NULL is fine. */
void queue_free(struct queue *q);
/* Start the thread (a no-op with no servers). 0 or -1 (logged). */
int queue_start(struct queue *q);
void queue_stop(struct queue *q);
/* Without the thread: poll every server now, one sink call each. */
void queue_run_once(struct queue *q);

#endif
