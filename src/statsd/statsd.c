/*
 * statsd.c: the StatsD listener (statsd.h): the series table the parsed
 * lines fold into, the batch it emits every tick, and the thread that reads
 * the UDP socket between ticks. The table is only touched by the listener
 * thread (or the caller driving statsd_feed/statsd_tick); the snapshot and
 * the counters are what other threads read.
 */
#include "statsd/statsd.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAKE_MS        100  /* longest sleep, so statsd_stop() is prompt */
#define DRAIN_MAX      4096 /* datagrams read per wake before the tick is checked */
#define SOCKET_RCVBUF  (4 << 20)
#define MAX_SET_WINDOW (24LL * 3600 * 1000)

/* One series: a name and sorted labels, of one type. */
struct series {
    char *key; /* "name\0k\0v\0..." (owned); labels point into it */
    size_t key_len;
    uint64_t hash;
    enum statsd_type type;
    char *fam; /* exposed name (counters get _total); owned */
    struct metric_label labels[STATSD_MAX_TAGS + 1];
    size_t nlabels;
    double value;    /* counter total or gauge value */
    double *buckets; /* histogram: observations per bucket, +Inf last (owned) */
    size_t nbuckets; /* bounds, not counting +Inf */
    const double *bounds;
    double sum, count;
    uint64_t *members; /* set: member hashes, open addressing, 0 = empty (owned) */
    size_t nmembers, members_cap;
    double set_last; /* distinct members in the last complete window; -1: none yet */
    int64_t window_start;
};

struct statsd {
    struct statsd_config cfg; /* owned copy */
    int interval_s;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;

    struct series **series; /* owned */
    size_t nseries, series_cap;
    uint32_t *slots; /* index+1 into series, 0 = empty */
    size_t nslots;

    struct metric_buf work;
    pthread_mutex_t lock; /* guards published */
    struct metric_buf published;
    int64_t last_tick_ms;

    int fd, port;
    pthread_t thread;
    int running;
    atomic_int stop;

    /* Counters read by any thread. */
    atomic_ullong packets, lines, truncated, recv_errors, dropped_series, set_overflow;
    atomic_ullong bad[STATSD_BAD_NREASONS];
    atomic_ullong nseries_pub;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#define FNV_SEED 14695981039346656037ULL

static void series_free(struct series *s)
{
    free(s->key);
    free(s->fam);
    free(s->buckets);
    free(s->members);
    free(s);
}

struct statsd *statsd_new(const struct statsd_opts *o)
{
    struct statsd *s = xcalloc(1, sizeof(*s));
    statsd_config_defaults(&s->cfg);
    if (o->config) {
        struct statsd_config *c = &s->cfg;
        free(c->listen);
        *c = *o->config;
        c->listen = xstrdup(o->config->listen ? o->config->listen : "127.0.0.1:8125");
    }
    if (!s->cfg.max_series)
        s->cfg.max_series = STATSD_DEFAULT_SERIES;
    if (!s->cfg.max_set_members)
        s->cfg.max_set_members = STATSD_DEFAULT_MEMBERS;
    if (s->cfg.set_window_ms <= 0)
        s->cfg.set_window_ms = STATSD_DEFAULT_WINDOW;
    s->interval_s = o->interval_s > 0 ? o->interval_s : 1;
    s->sink = o->sink;
    s->sink_ctx = o->sink_ctx;
    s->fd = -1;
    metric_buf_init(&s->work);
    metric_buf_init(&s->published);
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void statsd_free(struct statsd *s)
{
    if (!s)
        return;
    statsd_stop(s);
    for (size_t i = 0; i < s->nseries; i++)
        series_free(s->series[i]);
    free(s->series);
    free(s->slots);
    metric_buf_release(&s->work);
    metric_buf_release(&s->published);
    pthread_mutex_destroy(&s->lock);
    statsd_config_release(&s->cfg);
    free(s);
}

/* ---- the series table ---- */

static void rehash(struct statsd *s, size_t nslots)
{
    free(s->slots);
    s->slots = xcalloc(nslots, sizeof(*s->slots));
    s->nslots = nslots;
    for (size_t i = 0; i < s->nseries; i++) {
        size_t k = s->series[i]->hash & (nslots - 1);
        while (s->slots[k])
            k = (k + 1) & (nslots - 1);
        s->slots[k] = (uint32_t)(i + 1);
    }
}

/* The key of a line's series into key (cap STATSD key bytes); its length. */
static size_t line_key(const struct statsd_line *l, char *key)
{
    size_t n = strlen(l->name) + 1;
    memcpy(key, l->name, n);
    for (size_t i = 0; i < l->ntags; i++) {
        size_t kl = strlen(l->tags[i].key) + 1, vl = strlen(l->tags[i].value) + 1;
        memcpy(key + n, l->tags[i].key, kl);
        memcpy(key + n + kl, l->tags[i].value, vl);
        n += kl + vl;
    }
    return n;
}

#define KEY_CAP                                                                                    \
    (STATSD_MAX_NAME + 1 + STATSD_MAX_TAGS * (STATSD_MAX_TAG_KEY + STATSD_MAX_TAG_VALUE + 2))

static struct series *series_new(struct statsd *s, const struct statsd_line *l, const char *key,
                                 size_t key_len, uint64_t h)
{
    struct series *se = xcalloc(1, sizeof(*se));
    se->key = xmalloc(key_len);
    memcpy(se->key, key, key_len);
    se->key_len = key_len;
    se->hash = h;
    se->type = l->type;
    se->set_last = -1;
    size_t nl = strlen(l->name);
    if (l->type == STATSD_COUNTER && !(nl >= 6 && strcmp(l->name + nl - 6, "_total") == 0)) {
        se->fam = xmalloc(nl + 7);
        memcpy(se->fam, l->name, nl);
        memcpy(se->fam + nl, "_total", 7);
    } else {
        se->fam = xstrdup(l->name);
    }
    const char *p = se->key + nl + 1;
    for (size_t i = 0; i < l->ntags; i++) {
        se->labels[i].name = p;
        p += strlen(p) + 1;
        se->labels[i].value = p;
        p += strlen(p) + 1;
    }
    se->nlabels = l->ntags;
    if (l->type == STATSD_TIMER || l->type == STATSD_HISTOGRAM) {
        se->bounds = l->type == STATSD_TIMER ? s->cfg.timer_buckets : s->cfg.histogram_buckets;
        se->nbuckets = l->type == STATSD_TIMER ? s->cfg.ntimer_buckets : s->cfg.nhistogram_buckets;
        se->buckets = xcalloc(se->nbuckets + 1, sizeof(double));
    }
    return se;
}

/* The series of a line, created if new; NULL (counted) past max_series or on a type clash. */
static struct series *lookup(struct statsd *s, const struct statsd_line *l)
{
    char key[KEY_CAP];
    size_t kl = line_key(l, key);
    uint64_t h = fnv(key, kl, FNV_SEED);
    if (!s->nslots)
        rehash(s, 64);
    size_t k = h & (s->nslots - 1);
    for (; s->slots[k]; k = (k + 1) & (s->nslots - 1)) {
        struct series *se = s->series[s->slots[k] - 1];
        if (se->hash == h && se->key_len == kl && memcmp(se->key, key, kl) == 0) {
            if (se->type != l->type) {
                atomic_fetch_add(&s->bad[STATSD_BAD_TYPE_CONFLICT], 1);
                return NULL;
            }
            return se;
        }
    }
    if (s->nseries >= s->cfg.max_series) {
        atomic_fetch_add(&s->dropped_series, 1);
        return NULL;
    }
    struct series *se = series_new(s, l, key, kl, h);
    util_grow((void **)&s->series, &s->series_cap, s->nseries + 1, sizeof(*s->series));
    s->series[s->nseries++] = se;
    s->slots[k] = (uint32_t)s->nseries;
    if (2 * s->nseries > s->nslots)
        rehash(s, 2 * s->nslots);
    atomic_store(&s->nseries_pub, s->nseries);
    return se;
}

static void observe(struct series *se, double x, double weight)
{
    size_t b = 0;
    while (b < se->nbuckets && x > se->bounds[b])
        b++;
    se->buckets[b] += weight;
    se->sum += x * weight;
    se->count += weight;
}

/* Close the set's window if it is over (at now_ms). */
static void set_roll(struct statsd *s, struct series *se, int64_t now_ms)
{
    int64_t w = s->cfg.set_window_ms;
    if (!se->window_start) {
        se->window_start = now_ms / w * w;
        return;
    }
    if (now_ms - se->window_start < w)
        return;
    /* A window with nothing in it after the last one reports 0. */
    se->set_last = now_ms - se->window_start >= 2 * w ? 0 : (double)se->nmembers;
    se->nmembers = 0;
    if (se->members)
        memset(se->members, 0, se->members_cap * sizeof(*se->members));
    se->window_start = now_ms / w * w;
}

static void set_add(struct statsd *s, struct series *se, const char *m, size_t n)
{
    uint64_t h = fnv(m, n, FNV_SEED);
    if (!h)
        h = 1;
    if (!se->members_cap) {
        se->members_cap = 16;
        se->members = xcalloc(se->members_cap, sizeof(*se->members));
    }
    size_t k = h & (se->members_cap - 1);
    for (; se->members[k]; k = (k + 1) & (se->members_cap - 1))
        if (se->members[k] == h)
            return;
    if (se->nmembers >= s->cfg.max_set_members) {
        atomic_fetch_add(&s->set_overflow, 1);
        return;
    }
    se->members[k] = h;
    se->nmembers++;
    if (2 * se->nmembers > se->members_cap) {
        size_t cap = 2 * se->members_cap;
        uint64_t *nm = xcalloc(cap, sizeof(*nm));
        for (size_t i = 0; i < se->members_cap; i++) {
            uint64_t x = se->members[i];
            if (!x)
                continue;
            size_t j = x & (cap - 1);
            while (nm[j])
                j = (j + 1) & (cap - 1);
            nm[j] = x;
        }
        free(se->members);
        se->members = nm;
        se->members_cap = cap;
    }
}

static void apply(struct statsd *s, const struct statsd_line *l, int64_t now_ms)
{
    struct series *se = lookup(s, l);
    if (!se)
        return;
    switch (l->type) {
    case STATSD_COUNTER:
        for (size_t i = 0; i < l->nvalues; i++)
            se->value += l->values[i] / l->rate;
        break;
    case STATSD_GAUGE:
        for (size_t i = 0; i < l->nvalues; i++)
            se->value = l->delta[i] ? se->value + l->values[i] : l->values[i];
        break;
    case STATSD_TIMER:
        for (size_t i = 0; i < l->nvalues; i++)
            observe(se, l->values[i], 1.0 / l->rate); /* already seconds */
        break;
    case STATSD_HISTOGRAM:
        for (size_t i = 0; i < l->nvalues; i++)
            observe(se, l->values[i], 1.0 / l->rate);
        break;
    case STATSD_SET:
        set_roll(s, se, now_ms);
        set_add(s, se, l->member, l->member_len);
        break;
    }
}

void statsd_feed(struct statsd *s, const char *data, size_t len, int64_t now_ms)
{
    atomic_fetch_add(&s->packets, 1);
    struct statsd_line l;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = nl ? nl + 1 : end;
        if (n && p[n - 1] == '\r')
            n--;
        if (n) {
            atomic_fetch_add(&s->lines, 1);
            enum statsd_bad why;
            if (statsd_parse_line(p, n, &l, &why) < 0)
                atomic_fetch_add(&s->bad[why], 1);
            else
                apply(s, &l, now_ms);
        }
        p = next;
    }
}

/* ---- emitting ---- */

static void emit_series(struct statsd *s, struct metric_buf *b, int64_t ts_ms)
{
    static const char *const help[] = {
        [STATSD_COUNTER] = "StatsD counter (sum of increments divided by their sample rate).",
        [STATSD_GAUGE] = "StatsD gauge.",
        [STATSD_TIMER] = "StatsD timer, in seconds.",
        [STATSD_HISTOGRAM] = "StatsD histogram or distribution.",
        [STATSD_SET] = "StatsD set: distinct members in the last complete window.",
    };
    char name[STATSD_MAX_NAME + 16];
    for (size_t i = 0; i < s->nseries; i++) {
        struct series *se = s->series[i];
        struct metric_label lab[STATSD_MAX_TAGS + 1];
        memcpy(lab, se->labels, se->nlabels * sizeof(*lab));
        switch (se->type) {
        case STATSD_COUNTER:
            metric_fam(b, se->fam, help[se->type], METRIC_COUNTER);
            metric_add(b, se->value, se->nlabels, lab);
            break;
        case STATSD_GAUGE:
            metric_fam(b, se->fam, help[se->type], METRIC_GAUGE);
            metric_add(b, se->value, se->nlabels, lab);
            break;
        case STATSD_SET:
            set_roll(s, se, ts_ms);
            metric_fam(b, se->fam, help[se->type], METRIC_GAUGE);
            metric_add(b, se->set_last >= 0 ? se->set_last : (double)se->nmembers, se->nlabels,
                       lab);
            break;
        case STATSD_TIMER:
        case STATSD_HISTOGRAM: {
            snprintf(name, sizeof(name), "%s_bucket", se->fam);
            metric_fam(b, name, help[se->type], METRIC_COUNTER);
            double cum = 0;
            char le[32];
            for (size_t k = 0; k <= se->nbuckets; k++) {
                cum += se->buckets[k];
                if (k < se->nbuckets)
                    metric_format_value(se->bounds[k], le);
                else
                    memcpy(le, "+Inf", 5);
                lab[se->nlabels] = (struct metric_label){"le", le};
                metric_add(b, cum, se->nlabels + 1, lab);
            }
            snprintf(name, sizeof(name), "%s_sum", se->fam);
            metric_fam(b, name, help[se->type], METRIC_COUNTER);
            metric_add(b, se->sum, se->nlabels, lab);
            snprintf(name, sizeof(name), "%s_count", se->fam);
            metric_fam(b, name, help[se->type], METRIC_COUNTER);
            metric_add(b, se->count, se->nlabels, lab);
            break;
        }
        }
    }
}

void statsd_emit_self(struct statsd *s, struct metric_buf *b)
{
    if (!s)
        return;
    metric_fam(b, "sitrep_statsd_packets_total", "StatsD datagrams received.", METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->packets));
    metric_fam(b, "sitrep_statsd_lines_total", "StatsD lines received (valid or not).",
               METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->lines));
    metric_fam(b, "sitrep_statsd_bad_lines_total", "StatsD lines dropped, by reason.",
               METRIC_COUNTER);
    for (int r = 0; r < STATSD_BAD_NREASONS; r++)
        metric_add1(b, (double)atomic_load(&s->bad[r]), "reason", statsd_bad_name(r));
    metric_fam(b, "sitrep_statsd_truncated_packets_total",
               "StatsD datagrams longer than 64 KiB, dropped whole.", METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->truncated));
    metric_fam(b, "sitrep_statsd_receive_errors_total", "Errors reading the StatsD socket.",
               METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->recv_errors));
    metric_fam(b, "sitrep_statsd_series", "StatsD series held.", METRIC_GAUGE);
    metric_add0(b, (double)atomic_load(&s->nseries_pub));
    metric_fam(b, "sitrep_statsd_series_dropped_total",
               "StatsD lines dropped because they would create a series past max_series.",
               METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->dropped_series));
    metric_fam(b, "sitrep_statsd_set_overflow_total",
               "Set members not counted because their set held max_set_members.", METRIC_COUNTER);
    metric_add0(b, (double)atomic_load(&s->set_overflow));
}

void statsd_tick(struct statsd *s, int64_t ts_ms)
{
    metric_buf_reset(&s->work, ts_ms);
    emit_series(s, &s->work, ts_ms);
    statsd_emit_self(s, &s->work);
    if (s->sink)
        s->sink(s->sink_ctx, &s->work);
    pthread_mutex_lock(&s->lock);
    metric_buf_swap(&s->work, &s->published);
    pthread_mutex_unlock(&s->lock);
    s->last_tick_ms = ts_ms;
}

const struct metric_buf *statsd_last(struct statsd *s)
{
    return &s->published;
}

int statsd_expose(struct statsd *s, struct sbuf *out)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    const struct metric_buf *bufs[] = {&s->published};
    int rc = s->published.nfams ? metric_expose(bufs, 1, out) : 0;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- the socket and the thread ---- */

/* Split "host:port" / "[v6]:port"; 0 or -1. */
static int split_listen(const char *s, char *host, size_t cap, char *port, size_t pcap)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    size_t pl = strlen(colon + 1);
    if (!hl || hl >= cap || !pl || pl >= pcap || strspn(colon + 1, "0123456789") != pl)
        return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

static int open_socket(struct statsd *s)
{
    char host[256], port[16];
    if (split_listen(s->cfg.listen, host, sizeof(host), port, sizeof(port)) < 0)
        return log_error("statsd: listen: want host:port, not '%s'", s->cfg.listen);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0)
        return log_error("statsd: listen %s: %s", s->cfg.listen, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return log_error("statsd: cannot listen on %s: %s", s->cfg.listen, strerror(e));
    }
    freeaddrinfo(ai);
    int sz = SOCKET_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)); /* best effort: capped by rmem_max */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    s->port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char ps[16];
        if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, ps, sizeof(ps), NI_NUMERICSERV) == 0)
            s->port = atoi(ps);
    }
    s->fd = fd;
    return 0;
}

/* Read what is queued (at most DRAIN_MAX datagrams). */
static void drain(struct statsd *s, char *buf)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        struct iovec iov = {buf, STATSD_MAX_DATAGRAM};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                atomic_fetch_add(&s->recv_errors, 1);
            return;
        }
        if (mh.msg_flags & MSG_TRUNC) {
            atomic_fetch_add(&s->truncated, 1);
            continue;
        }
        statsd_feed(s, buf, (size_t)n, util_now_ms());
    }
}

static void *run(void *arg)
{
    struct statsd *s = arg;
    char *buf = xmalloc(STATSD_MAX_DATAGRAM);
    const int64_t interval = (int64_t)s->interval_s * 1000;
    int64_t next_tick = (util_now_ms() / interval + 1) * interval;
    while (!atomic_load(&s->stop)) {
        int64_t now = util_now_ms();
        if (now >= next_tick) {
            statsd_tick(s, next_tick);
            next_tick += interval;
            if (now >= next_tick) /* overran: skip the missed ticks */
                next_tick = (now / interval + 1) * interval;
        }
        int64_t wait = next_tick - now;
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(wait < WAKE_MS ? (wait > 0 ? wait : 0) : WAKE_MS)) > 0)
            drain(s, buf);
    }
    int64_t now = util_now_ms();
    statsd_tick(s, now > s->last_tick_ms ? now : s->last_tick_ms + 1);
    free(buf);
    return NULL;
}

int statsd_start(struct statsd *s)
{
    if (!s->cfg.enabled || s->running)
        return 0;
    if (open_socket(s) < 0)
        return -1;
    atomic_store(&s->stop, 0);
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        close(s->fd);
        s->fd = -1;
        return log_error("statsd: cannot start thread: %s", strerror(rc));
    }
    s->running = 1;
    log_info("statsd: listening on %s (udp port %d)", s->cfg.listen, s->port);
    return 0;
}

void statsd_stop(struct statsd *s)
{
    if (!s || !s->running)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    s->running = 0;
    close(s->fd);
    s->fd = -1;
}

int statsd_port(const struct statsd *s)
{
    return s->fd >= 0 ? s->port : 0;
}
