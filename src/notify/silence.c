/*
 * silence.c: silences with Alertmanager's rules: a silence mutes alerts its
 * matchers all match between startsAt and endsAt; updating one in place is
 * allowed only where it changes no history (same matchers, and for an
 * active silence the same start and an end not in the past), otherwise the
 * old one is expired and a new one created. Expired silences are kept for
 * limits.retention, then forgotten. Every change is written through to
 * SQLite. Callers hold the pipeline's mutex.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMMENT    4096
#define MAX_CREATED_BY 256

enum notify__sil_state notify__silence_state(const struct notify__silence *s, int64_t now)
{
    if (now < s->starts_ms)
        return NOTIFY_SIL_PENDING;
    if (now < s->ends_ms)
        return NOTIFY_SIL_ACTIVE;
    return NOTIFY_SIL_EXPIRED;
}

const char *notify__silence_state_name(enum notify__sil_state st)
{
    return st == NOTIFY_SIL_PENDING ? "pending" : st == NOTIFY_SIL_ACTIVE ? "active" : "expired";
}

void notify__silence_free(struct notify__silence *s)
{
    if (!s)
        return;
    notify_matchers_release(&s->matchers);
    free(s->created_by);
    free(s->comment);
    free(s);
}

struct notify__silence *notify__silence_find(struct notify *n, const char *id)
{
    for (size_t i = 0; i < n->nsilences; i++)
        if (strcmp(n->silences[i]->id, id) == 0)
            return n->silences[i];
    return NULL;
}

static void persist(struct notify *n, const struct notify__silence *s)
{
    if (n->db && notify__store_silence_put(n->db, s) < 0)
        n->db_errors++;
}

static void expire(struct notify *n, struct notify__silence *s, int64_t now)
{
    switch (notify__silence_state(s, now)) {
    case NOTIFY_SIL_EXPIRED:
        return;
    case NOTIFY_SIL_ACTIVE:
        s->ends_ms = now;
        break;
    case NOTIFY_SIL_PENDING:
        s->starts_ms = s->ends_ms = now;
        break;
    }
    s->updated_ms = now;
    persist(n, s);
}

int notify__silence_expire(struct notify *n, const char *id)
{
    struct notify__silence *s = notify__silence_find(n, id);
    if (!s)
        return 404;
    expire(n, s, notify__now(n));
    return 0;
}

/* Matchers from the API's [{name, value, isRegex, isEqual}]. 0, or -1 with err. */
static int parse_matchers(const struct notify__jv *arr, struct notify_matchers *ms, char *err,
                          size_t errcap)
{
    if (!arr || arr->type != NJ_ARR || !arr->n) {
        snprintf(err, errcap, "matchers: want a non-empty list");
        return -1;
    }
    if (arr->n > NOTIFY_MAX_MATCHERS) {
        snprintf(err, errcap, "matchers: at most %d", NOTIFY_MAX_MATCHERS);
        return -1;
    }
    int all_empty = 1;
    for (size_t i = 0; i < arr->n; i++) {
        const struct notify__jv *o = &arr->items[i];
        const char *name = notify__jv_str(o, "name"), *value = notify__jv_str(o, "value");
        const struct notify__jv *re = notify__jv_get(o, "isRegex");
        const struct notify__jv *eq = notify__jv_get(o, "isEqual");
        if (!name || !*name || !value || (re && re->type != NJ_BOOL) ||
            (eq && eq->type != NJ_BOOL)) {
            snprintf(err, errcap,
                     "matchers[%zu]: want {\"name\": ..., \"value\": ..., \"isRegex\": bool, "
                     "\"isEqual\": bool}",
                     i);
            return -1;
        }
        int is_re = re && re->b, is_eq = !eq || eq->b; /* isEqual defaults to true */
        struct notify_matcher m = {.name = xstrdup(name), .value = xstrdup(value)};
        m.op = is_re ? (is_eq ? NOTIFY_RE : NOTIFY_NRE) : (is_eq ? NOTIFY_EQ : NOTIFY_NE);
        char e[256];
        if (notify__matcher_compile(&m, e, sizeof(e)) < 0) {
            snprintf(err, errcap, "matchers[%zu]: %s", i, e);
            free(m.name);
            free(m.value);
            return -1;
        }
        ms->v = xrealloc(ms->v, (ms->n + 1) * sizeof(*ms->v));
        ms->v[ms->n++] = m;
        all_empty &= notify__matcher_matches_empty(&m);
    }
    if (all_empty) {
        snprintf(err, errcap, "at least one matcher must not match the empty string");
        return -1;
    }
    return 0;
}

static int same_matchers(const struct notify_matchers *a, const struct notify_matchers *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].op != b->v[i].op || strcmp(a->v[i].name, b->v[i].name) != 0 ||
            strcmp(a->v[i].value, b->v[i].value) != 0)
            return 0;
    return 1;
}

/* Alertmanager's canUpdate: may prev become next without losing history? */
static int can_update(const struct notify__silence *prev, const struct notify__silence *next,
                      int64_t now)
{
    if (!same_matchers(&prev->matchers, &next->matchers))
        return 0;
    switch (notify__silence_state(prev, now)) {
    case NOTIFY_SIL_ACTIVE:
        return prev->starts_ms / 1000 == next->starts_ms / 1000 && next->ends_ms >= now;
    case NOTIFY_SIL_PENDING:
        return next->starts_ms >= now;
    case NOTIFY_SIL_EXPIRED:
        return 0;
    }
    return 0;
}

void notify__silences_gc(struct notify *n, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < n->nsilences; i++) {
        struct notify__silence *s = n->silences[i];
        if (s->ends_ms < now - n->cfg.silence_retention_ms) {
            if (n->db && notify__store_silence_del(n->db, s->id) < 0)
                n->db_errors++;
            notify__silence_free(s);
            continue;
        }
        n->silences[w++] = s;
    }
    n->nsilences = w;
}

int notify__silence_post(struct notify *n, const struct notify__jv *body, char id[37], char *err,
                         size_t errcap)
{
    int64_t now = notify__now(n);
    if (!body || body->type != NJ_OBJ) {
        snprintf(err, errcap, "want a JSON object (PostableSilence)");
        return 400;
    }
    struct notify__silence *s = xcalloc(1, sizeof(*s));
    const char *sid = notify__jv_str(body, "id");
    const char *starts = notify__jv_str(body, "startsAt"), *ends = notify__jv_str(body, "endsAt");
    const char *by = notify__jv_str(body, "createdBy"), *comment = notify__jv_str(body, "comment");
    int status = 400;
    if (parse_matchers(notify__jv_get(body, "matchers"), &s->matchers, err, errcap) < 0)
        goto fail;
    if (!ends || notify__time_parse(ends, &s->ends_ms) < 0) {
        snprintf(err, errcap, "endsAt: want an RFC 3339 time");
        goto fail;
    }
    if (!starts || !*starts) {
        s->starts_ms = now;
    } else if (notify__time_parse(starts, &s->starts_ms) < 0) {
        snprintf(err, errcap, "startsAt: want an RFC 3339 time");
        goto fail;
    }
    if (!by || !*by || strlen(by) > MAX_CREATED_BY) {
        snprintf(err, errcap, "createdBy: want who creates it (1 to %d bytes)", MAX_CREATED_BY);
        goto fail;
    }
    if (!comment || strlen(comment) > MAX_COMMENT) {
        snprintf(err, errcap, "comment: want why (at most %d bytes)", MAX_COMMENT);
        goto fail;
    }
    if (s->ends_ms < now) {
        snprintf(err, errcap, "endsAt is in the past");
        goto fail;
    }
    if (s->starts_ms >= s->ends_ms) {
        snprintf(err, errcap, "startsAt must be before endsAt");
        goto fail;
    }
    s->created_by = xstrdup(by);
    s->comment = xstrdup(comment);

    struct notify__silence *prev = NULL;
    if (sid && *sid) {
        if (!(prev = notify__silence_find(n, sid))) {
            snprintf(err, errcap, "silence %s not found", sid);
            status = 404;
            goto fail;
        }
        if (can_update(prev, s, now)) {
            prev->starts_ms = s->starts_ms;
            prev->ends_ms = s->ends_ms;
            free(prev->created_by);
            free(prev->comment);
            prev->created_by = s->created_by;
            prev->comment = s->comment;
            s->created_by = s->comment = NULL;
            prev->updated_ms = now;
            persist(n, prev);
            memcpy(id, prev->id, 37);
            notify__silence_free(s);
            return 0;
        }
    }
    if (n->nsilences >= n->cfg.max_silences)
        notify__silences_gc(n, now);
    if (n->nsilences >= n->cfg.max_silences) {
        snprintf(err, errcap, "too many silences (limits.max_silences = %u)", n->cfg.max_silences);
        goto fail;
    }
    if (prev)
        expire(n, prev, now); /* keeps the history of the silence before the change */
    notify__uuid(s->id);
    if (s->starts_ms < now)
        s->starts_ms = now;
    s->updated_ms = now;
    n->silences = xrealloc(n->silences, (n->nsilences + 1) * sizeof(*n->silences));
    n->silences[n->nsilences++] = s;
    persist(n, s);
    memcpy(id, s->id, 37);
    struct sbuf until;
    sbuf_init(&until, 64);
    notify__time_json(&until, s->ends_ms);
    log_info("notify: silence %s created by %s until %.*s", s->id, s->created_by,
             (int)until.len - 2, until.buf + 1);
    sbuf_release(&until);
    return 0;
fail:
    notify__silence_free(s);
    return status;
}

void notify__silence_json(struct sbuf *b, const struct notify__silence *s, int64_t now)
{
    sbuf_adds(b, "{\"id\":");
    json_str(b, s->id);
    sbuf_addf(b, ",\"status\":{\"state\":\"%s\"},\"updatedAt\":",
              notify__silence_state_name(notify__silence_state(s, now)));
    notify__time_json(b, s->updated_ms);
    sbuf_adds(b, ",\"comment\":");
    json_str(b, s->comment);
    sbuf_adds(b, ",\"createdBy\":");
    json_str(b, s->created_by);
    sbuf_adds(b, ",\"endsAt\":");
    notify__time_json(b, s->ends_ms);
    sbuf_adds(b, ",\"matchers\":[");
    for (size_t i = 0; i < s->matchers.n; i++) {
        const struct notify_matcher *m = &s->matchers.v[i];
        sbuf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, m->name);
        sbuf_adds(b, ",\"value\":");
        json_str(b, m->value);
        sbuf_addf(b, ",\"isRegex\":%s,\"isEqual\":%s}",
                  m->op == NOTIFY_RE || m->op == NOTIFY_NRE ? "true" : "false",
                  m->op == NOTIFY_EQ || m->op == NOTIFY_RE ? "true" : "false");
    }
    sbuf_adds(b, "],\"startsAt\":");
    notify__time_json(b, s->starts_ms);
    sbuf_addc(b, '}');
}
