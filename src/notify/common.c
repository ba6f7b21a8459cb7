/*
 * common.c: the small pieces every part of the notification pipeline uses:
 * copied label sets, Prometheus's fingerprint, a 64-bit key map, RFC 3339
 * times and Go-style durations as Alertmanager writes and reads them, UUIDs
 * for silences, and reading secrets from files.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- label sets ---- */

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct notify_label *)a)->name, ((const struct notify_label *)b)->name);
}

int notify__lset_copy(struct notify__lset *out, const struct notify_label *v, size_t n)
{
    size_t bytes = n * sizeof(struct notify_label);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(v[i].name) + strlen(v[i].value ? v[i].value : "") + 2;
    char *blk = xmalloc(bytes ? bytes : 1);
    struct notify_label *arr = (struct notify_label *)blk;
    char *p = blk + n * sizeof(struct notify_label);
    for (size_t i = 0; i < n; i++) {
        const char *val = v[i].value ? v[i].value : "";
        size_t ln = strlen(v[i].name) + 1, lv = strlen(val) + 1;
        memcpy(p, v[i].name, ln);
        arr[i].name = p;
        p += ln;
        memcpy(p, val, lv);
        arr[i].value = p;
        p += lv;
    }
    qsort(arr, n, sizeof(*arr), label_cmp);
    out->v = arr;
    out->n = n;
    for (size_t i = 1; i < n; i++)
        if (strcmp(arr[i - 1].name, arr[i].name) == 0) {
            notify__lset_free(out);
            return -1;
        }
    return 0;
}

void notify__lset_free(struct notify__lset *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

const char *notify__lset_get(const struct notify__lset *l, const char *name)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->v[mid].name, name);
        if (c == 0)
            return l->v[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "";
}

/* Go's %q for the characters label values hold in practice. */
static void go_quote(struct sbuf *b, const char *s)
{
    sbuf_addc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sbuf_addc(b, '\\');
            sbuf_addc(b, (char)c);
        } else if (c == '\n') {
            sbuf_adds(b, "\\n");
        } else if (c == '\t') {
            sbuf_adds(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            sbuf_addf(b, "\\x%02x", c);
        } else {
            sbuf_addc(b, (char)c);
        }
    }
    sbuf_addc(b, '"');
}

void notify__lset_string(struct sbuf *b, const struct notify__lset *l)
{
    sbuf_addc(b, '{');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            sbuf_adds(b, ", ");
        sbuf_adds(b, l->v[i].name);
        sbuf_addc(b, '=');
        go_quote(b, l->v[i].value);
    }
    sbuf_addc(b, '}');
}

void notify__lset_json(struct sbuf *b, const struct notify__lset *l)
{
    sbuf_addc(b, '{');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            sbuf_addc(b, ',');
        json_str(b, l->v[i].name);
        sbuf_addc(b, ':');
        json_str(b, l->v[i].value);
    }
    sbuf_addc(b, '}');
}

char *notify__sbuf_take(struct sbuf *b)
{
    char *s = sbuf_detach(b, NULL);
    sbuf_release(b); /* sbuf_detach leaves a fresh buffer behind */
    return s;
}

/* ---- hashing ---- */

uint64_t notify__fnv_init(void)
{
    return 14695981039346656037ULL;
}

uint64_t notify__fnv_add(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t notify_fingerprint(const struct notify_label *labels, size_t n)
{
    /* Prometheus's model.LabelSet.Fingerprint, so sitrep's fingerprints
     * match the ones Alertmanager shows for the same alert. */
    const struct notify_label **sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0 && strcmp(sorted[k - 1]->name, labels[i].name) > 0) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = &labels[i];
    }
    uint64_t h = notify__fnv_init();
    const unsigned char sep = 0xff;
    for (size_t i = 0; i < n; i++) {
        const char *v = sorted[i]->value ? sorted[i]->value : "";
        h = notify__fnv_add(h, sorted[i]->name, strlen(sorted[i]->name));
        h = notify__fnv_add(h, &sep, 1);
        h = notify__fnv_add(h, v, strlen(v));
        h = notify__fnv_add(h, &sep, 1);
    }
    free(sorted);
    return h;
}

/* ---- map ---- */

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void *notify__map_get(const struct notify__map *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static void map_insert(struct notify__map *m, uint64_t key, void *val)
{
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
}

void notify__map_put(struct notify__map *m, uint64_t key, void *val)
{
    if ((m->len + 1) * 2 > m->cap) {
        struct notify__map old = *m;
        m->cap = old.cap ? old.cap * 2 : 16;
        m->keys = xcalloc(m->cap, sizeof(*m->keys));
        m->vals = xcalloc(m->cap, sizeof(*m->vals));
        m->len = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                map_insert(m, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    map_insert(m, key, val);
}

void notify__map_del(struct notify__map *m, uint64_t key)
{
    if (!m->cap || !key)
        return;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return;
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->len--;
    /* Re-seat the rest of the cluster so lookups never stop at the hole. */
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
        uint64_t k = m->keys[j];
        void *v = m->vals[j];
        m->keys[j] = 0;
        m->vals[j] = NULL;
        m->len--;
        map_insert(m, k, v);
    }
}

void notify__map_release(struct notify__map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- times ---- */

void notify__time_json(struct sbuf *b, int64_t ms)
{
    if (ms == 0) {
        sbuf_adds(b, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_addc(b, '"');
    sbuf_adds(b, buf);
    if (frac) {
        char f[8];
        snprintf(f, sizeof(f), ".%03d", frac);
        size_t len = strlen(f);
        while (f[len - 1] == '0')
            f[--len] = '\0';
        sbuf_adds(b, f);
    }
    sbuf_adds(b, "Z\"");
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int notify__time_parse(const char *s, int64_t *ms)
{
    int Y, M, D, h, m, sec;
    const char *p = s;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D) ||
        (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        for (; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3)
                frac = frac * 10 + (*p - '0');
        if (!nd)
            return -1;
        for (; nd < 3; nd++)
            frac *= 10;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return -1;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - offset) * 1000 + frac;
    return 0;
}

int notify__duration_parse(const char *s, long long *ms)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1},         {"s", 1000},        {"m", 60000},        {"h", 3600000},
                 {"d", 86400000LL}, {"w", 604800000LL}, {"y", 31536000000LL}};
    const char *p = s;
    long long total = 0;
    int last = -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*p)
        return -1;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        long long v = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (v > (LLONG_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*p - '0');
        }
        int u = -1;
        /* "ms" before "m": the longest unit that fits. */
        for (int i = 0; i < (int)ARRAY_SIZE(units); i++) {
            size_t len = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, len) == 0 && (u < 0 || len > strlen(units[u].unit)))
                u = i;
        }
        if (u < 0)
            return -1;
        /* Units must go from largest to smallest, each at most once (Go's model.Duration). */
        if (last >= 0 && units[u].ms >= units[last].ms)
            return -1;
        last = u;
        p += strlen(units[u].unit);
        if (v > (LLONG_MAX - total) / units[u].ms)
            return -1;
        total += v * units[u].ms;
    }
    *ms = total;
    return 0;
}

void notify__duration_format(long long ms, char *out)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"w", 604800000LL}, {"d", 86400000LL}, {"h", 3600000},
                 {"m", 60000},       {"s", 1000},       {"ms", 1}};
    size_t n = 0;
    if (ms <= 0) {
        snprintf(out, 32, "0s");
        return;
    }
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(units) && ms; i++) {
        if (ms < units[i].ms)
            continue;
        n += (size_t)snprintf(out + n, 32 - n, "%lld%s", ms / units[i].ms, units[i].unit);
        ms %= units[i].ms;
    }
}

void notify__uuid(char out[37])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t k = getrandom(r + got, sizeof(r) - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            /* No entropy source: the time and address still make ids unique here. */
            uint64_t t = (uint64_t)util_mono_ns() ^ (uint64_t)(uintptr_t)out;
            for (; got < sizeof(r); got++, t = t * 6364136223846793005ULL + 1)
                r[got] = (unsigned char)(t >> 56);
            break;
        }
        got += (size_t)k;
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

char *notify__read_secret(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("notify: cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 64 << 10, len = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            log_error("notify: cannot read %s: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return NULL;
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len == cap) {
            log_error("notify: %s: longer than 64 KiB; not a secret", path);
            close(fd);
            free(buf);
            return NULL;
        }
    }
    close(fd);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                   buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    return buf;
}
