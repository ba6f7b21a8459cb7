/*
 * queue.c: the queue poller (queue.h): a copy of the config, one state per
 * Redis server, and the thread that polls each server when it is due
 * (absolute deadlines; a missed slot is skipped, never queued) and hands
 * each poll's batch to the sink.
 */
#include "queue/queue_internal.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct queue {
    struct queue_config cfg; /* owned copy */
    struct queue__server *servers;
    size_t nservers;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
    struct metric_buf work;
    pthread_t thread;
    int running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void config_copy(struct queue_config *dst, const struct queue_config *src)
{
    dst->nservers = src->nservers;
    dst->servers = xcalloc(src->nservers ? src->nservers : 1, sizeof(*dst->servers));
    for (size_t i = 0; i < src->nservers; i++) {
        const struct queue_redis *a = &src->servers[i];
        struct queue_redis *b = &dst->servers[i];
        *b = *a;
        b->addr = xstrdup(a->addr);
        b->instance = xstrdup(a->instance ? a->instance : a->addr);
        b->username = dup_or_null(a->username);
        b->password = dup_or_null(a->password);
        b->keys = xcalloc(a->nkeys ? a->nkeys : 1, sizeof(char *));
        for (size_t k = 0; k < a->nkeys; k++)
            b->keys[k] = xstrdup(a->keys[k]);
        if (b->interval_ms <= 0)
            b->interval_ms = QUEUE_DEFAULT_INTERVAL_MS;
        if (b->timeout_ms <= 0 || b->timeout_ms > b->interval_ms)
            b->timeout_ms = b->interval_ms;
        if (!b->max_keys)
            b->max_keys = QUEUE_DEFAULT_MAX_KEYS;
    }
}

struct queue *queue_new(const struct queue_opts *o)
{
    struct queue *q = xcalloc(1, sizeof(*q));
    if (o->config)
        config_copy(&q->cfg, o->config);
    q->sink = o->sink;
    q->sink_ctx = o->sink_ctx;
    metric_buf_init(&q->work);
    pthread_mutex_init(&q->stop_lock, NULL);
    pthread_cond_init(&q->stop_cond, NULL);
    q->nservers = q->cfg.nservers;
    q->servers = xcalloc(q->nservers ? q->nservers : 1, sizeof(*q->servers));
    int64_t now = util_now_ms();
    for (size_t i = 0; i < q->nservers; i++) {
        q->servers[i].cfg = &q->cfg.servers[i];
        queue__conn_init(&q->servers[i].conn);
        int64_t iv = q->cfg.servers[i].interval_ms;
        q->servers[i].next_due_ms = (now / iv + 1) * iv; /* on the interval's grid */
    }
    return q;
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    queue_stop(q);
    for (size_t i = 0; i < q->nservers; i++)
        queue__server_release(&q->servers[i]);
    free(q->servers);
    metric_buf_release(&q->work);
    pthread_mutex_destroy(&q->stop_lock);
    pthread_cond_destroy(&q->stop_cond);
    queue_config_release(&q->cfg);
    free(q);
}

static void poll_one(struct queue *q, struct queue__server *s, int64_t ts_ms)
{
    metric_buf_reset(&q->work, ts_ms);
    queue__redis_poll(s, &q->work);
    if (q->sink)
        q->sink(q->sink_ctx, &q->work);
}

void queue_run_once(struct queue *q)
{
    for (size_t i = 0; i < q->nservers; i++)
        poll_one(q, &q->servers[i], util_now_ms());
}

static void *run(void *arg)
{
    struct queue *q = arg;
    for (;;) {
        int64_t now = util_now_ms(), next = now + 1000;
        for (size_t i = 0; i < q->nservers; i++) {
            struct queue__server *s = &q->servers[i];
            int64_t iv = s->cfg->interval_ms;
            if (now >= s->next_due_ms) {
                poll_one(q, s, s->next_due_ms);
                s->next_due_ms += iv;
                now = util_now_ms();
                if (s->next_due_ms <= now) /* overran: skip, never queue */
                    s->next_due_ms += (now - s->next_due_ms) / iv * iv + iv;
            }
            if (s->next_due_ms < next)
                next = s->next_due_ms;
        }
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (long)(next % 1000) * 1000000};
        pthread_mutex_lock(&q->stop_lock);
        while (!q->stop && util_now_ms() < next)
            if (pthread_cond_timedwait(&q->stop_cond, &q->stop_lock, &ts) != 0)
                break;
        int stop = q->stop;
        pthread_mutex_unlock(&q->stop_lock);
        if (stop)
            break;
    }
    return NULL;
}

int queue_start(struct queue *q)
{
    if (!q->nservers || q->running)
        return 0;
    q->stop = 0;
    int rc = pthread_create(&q->thread, NULL, run, q);
    if (rc != 0)
        return log_error("queue: cannot start thread: %s", strerror(rc));
    q->running = 1;
    return 0;
}

void queue_stop(struct queue *q)
{
    if (!q || !q->running)
        return;
    pthread_mutex_lock(&q->stop_lock);
    q->stop = 1;
    pthread_cond_signal(&q->stop_cond);
    pthread_mutex_unlock(&q->stop_lock);
    pthread_join(q->thread, NULL);
    q->running = 0;
}
