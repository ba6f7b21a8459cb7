/*
 * payload.c: a group's notification rendered for each kind of receiver:
 * Alertmanager's webhook JSON (version 4, also fed to exec commands), a
 * Slack-compatible incoming-webhook message, a plain-text email, and the
 * alert list Alertmanager's POST /api/v2/alerts takes. Rendering happens
 * once, when the notification is queued: the outbox stores exactly the
 * bytes that go out, so retries and restarts resend the same message.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int notify__alert_resolved(const struct notify__alert *a, int64_t now)
{
    return a->ends_ms != 0 && a->ends_ms <= now;
}

static size_t count_firing(const struct notify__msg *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nalerts; i++)
        n += !notify__alert_resolved(m->alerts[i], m->now);
    return n;
}

/* Labels (or annotations) every alert of the message has with the same value. */
static void common_json(struct sbuf *b, const struct notify__msg *m, int annotations)
{
    sbuf_addc(b, '{');
    if (m->nalerts) {
        const struct notify__lset *first =
            annotations ? &m->alerts[0]->annotations : &m->alerts[0]->labels;
        int n = 0;
        for (size_t i = 0; i < first->n; i++) {
            const char *name = first->v[i].name, *value = first->v[i].value;
            size_t k = 1;
            for (; k < m->nalerts; k++) {
                const struct notify__lset *l =
                    annotations ? &m->alerts[k]->annotations : &m->alerts[k]->labels;
                if (strcmp(notify__lset_get(l, name), value) != 0)
                    break;
                /* "" also stands for absent: make sure it is really there. */
                if (!*value) {
                    size_t j = 0;
                    while (j < l->n && strcmp(l->v[j].name, name) != 0)
                        j++;
                    if (j == l->n)
                        break;
                }
            }
            if (k < m->nalerts)
                continue;
            if (n++)
                sbuf_addc(b, ',');
            json_str(b, name);
            sbuf_addc(b, ':');
            json_str(b, value);
        }
    }
    sbuf_addc(b, '}');
}

static void alert_json(struct sbuf *b, const struct notify__alert *a, int64_t now)
{
    int resolved = notify__alert_resolved(a, now);
    sbuf_addf(b, "{\"status\":\"%s\",\"labels\":", resolved ? "resolved" : "firing");
    notify__lset_json(b, &a->labels);
    sbuf_adds(b, ",\"annotations\":");
    notify__lset_json(b, &a->annotations);
    sbuf_adds(b, ",\"startsAt\":");
    notify__time_json(b, a->starts_ms);
    sbuf_adds(b, ",\"endsAt\":");
    /* A firing alert goes out without an end, as Alertmanager sends it. */
    notify__time_json(b, resolved ? a->ends_ms : 0);
    sbuf_adds(b, ",\"generatorURL\":");
    json_str(b, a->generator_url ? a->generator_url : "");
    sbuf_addf(b, ",\"fingerprint\":\"%016llx\"}", (unsigned long long)a->fp);
}

void notify__render_webhook(struct sbuf *out, const struct notify__msg *msg, unsigned max_alerts)
{
    /* As Alertmanager: everything, common labels included, describes the
     * alerts that fit in max_alerts; the rest are only counted. */
    struct notify__msg m = *msg;
    if (max_alerts && m.nalerts > max_alerts)
        m.nalerts = max_alerts;
    sbuf_adds(out, "{\"receiver\":");
    json_str(out, m.receiver);
    sbuf_addf(out, ",\"status\":\"%s\",\"alerts\":[", count_firing(&m) ? "firing" : "resolved");
    for (size_t i = 0; i < m.nalerts; i++) {
        if (i)
            sbuf_addc(out, ',');
        alert_json(out, m.alerts[i], m.now);
    }
    sbuf_adds(out, "],\"groupLabels\":");
    notify__lset_json(out, m.group_labels);
    sbuf_adds(out, ",\"commonLabels\":");
    common_json(out, &m, 0);
    sbuf_adds(out, ",\"commonAnnotations\":");
    common_json(out, &m, 1);
    sbuf_adds(out, ",\"externalURL\":");
    json_str(out, m.external_url ? m.external_url : "");
    sbuf_adds(out, ",\"version\":\"4\",\"groupKey\":");
    json_str(out, m.group_key);
    sbuf_addf(out, ",\"truncatedAlerts\":%zu}\n", msg->nalerts - m.nalerts);
}

void notify__render_title(struct sbuf *out, const struct notify__msg *m)
{
    size_t firing = count_firing(m);
    if (firing)
        sbuf_addf(out, "[FIRING:%zu]", firing);
    else
        sbuf_adds(out, "[RESOLVED]");
    for (size_t i = 0; i < m->group_labels->n; i++) {
        sbuf_addc(out, ' ');
        sbuf_adds(out, m->group_labels->v[i].value);
    }
    /* Then the values of common labels that are not group labels, as Alertmanager does. */
    if (!m->nalerts)
        return;
    const struct notify__lset *first = &m->alerts[0]->labels;
    int opened = 0;
    for (size_t i = 0; i < first->n; i++) {
        const char *name = first->v[i].name, *value = first->v[i].value;
        size_t k = 0;
        while (k < m->group_labels->n && strcmp(m->group_labels->v[k].name, name) != 0)
            k++;
        if (k < m->group_labels->n)
            continue;
        for (k = 1; k < m->nalerts; k++)
            if (strcmp(notify__lset_get(&m->alerts[k]->labels, name), value) != 0)
                break;
        if (k < m->nalerts)
            continue;
        sbuf_adds(out, opened ? " " : " (");
        sbuf_adds(out, value);
        opened = 1;
    }
    if (opened)
        sbuf_addc(out, ')');
}

/* "summary" annotation, else "description", else "message", else the alertname. */
static const char *summary_of(const struct notify__alert *a)
{
    static const char *const keys[] = {"summary", "description", "message"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        const char *s = notify__lset_get(&a->annotations, keys[i]);
        if (*s)
            return s;
    }
    return notify__lset_get(&a->labels, "alertname");
}

static void render_slack(struct sbuf *out, const struct notify__msg *m,
                         const struct notify_integration *it)
{
    struct sbuf text;
    sbuf_init(&text, NOTIFY_MAX_PAYLOAD);
    if (it->title)
        sbuf_adds(&text, it->title);
    else
        notify__render_title(&text, m);
    sbuf_addc(&text, '\n');
    if (it->text) {
        sbuf_adds(&text, it->text);
    } else {
        for (size_t i = 0; i < m->nalerts; i++) {
            const struct notify__alert *a = m->alerts[i];
            int resolved = notify__alert_resolved(a, m->now);
            sbuf_addf(&text, "%s %s", resolved ? "[resolved]" : "[firing]", summary_of(a));
            const char *inst = notify__lset_get(&a->labels, "instance");
            if (*inst)
                sbuf_addf(&text, " (%s)", inst);
            const char *runbook = notify__lset_get(&a->annotations, "runbook_url");
            if (!*runbook)
                runbook = notify__lset_get(&a->annotations, "runbook");
            if (*runbook)
                sbuf_addf(&text, "\n    runbook: %s", runbook);
            sbuf_addc(&text, '\n');
        }
    }
    sbuf_adds(out, "{");
    if (it->channel) {
        sbuf_adds(out, "\"channel\":");
        json_str(out, it->channel);
        sbuf_addc(out, ',');
    }
    if (it->username) {
        sbuf_adds(out, "\"username\":");
        json_str(out, it->username);
        sbuf_addc(out, ',');
    }
    if (it->icon_emoji) {
        sbuf_adds(out, "\"icon_emoji\":");
        json_str(out, it->icon_emoji);
        sbuf_addc(out, ',');
    }
    if (it->icon_url) {
        sbuf_adds(out, "\"icon_url\":");
        json_str(out, it->icon_url);
        sbuf_addc(out, ',');
    }
    sbuf_adds(out, "\"text\":");
    json_strn(out, text.buf, text.len);
    sbuf_adds(out, "}\n");
    sbuf_release(&text);
}

static void base64(struct sbuf *b, const unsigned char *s, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        sbuf_addc(b, t[(v >> 18) & 63]);
        sbuf_addc(b, t[(v >> 12) & 63]);
        sbuf_addc(b, i + 1 < n ? t[(v >> 6) & 63] : '=');
        sbuf_addc(b, i + 2 < n ? t[v & 63] : '=');
    }
}

/* A header value on one line; RFC 2047 encoded when it is not plain ASCII. */
static void header(struct sbuf *out, const char *name, const char *value)
{
    int ascii = 1;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p >= 0x80)
            ascii = 0;
    sbuf_addf(out, "%s: ", name);
    if (ascii) {
        for (const char *p = value; *p; p++)
            sbuf_addc(out, *p == '\r' || *p == '\n' ? ' ' : *p);
    } else {
        /* Encoded words of at most 45 input bytes, never splitting a UTF-8 sequence. */
        size_t n = strlen(value), i = 0;
        while (i < n) {
            size_t k = n - i > 45 ? 45 : n - i;
            while (k < n - i && k > 1 && ((unsigned char)value[i + k] & 0xc0) == 0x80)
                k--;
            if (i)
                sbuf_adds(out, "\r\n ");
            sbuf_adds(out, "=?UTF-8?B?");
            base64(out, (const unsigned char *)value + i, k);
            sbuf_adds(out, "?=");
            i += k;
        }
    }
    sbuf_adds(out, "\r\n");
}

static void lines_crlf(struct sbuf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\r')
            continue;
        if (*s == '\n')
            sbuf_addc(out, '\r');
        sbuf_addc(out, *s);
    }
}

static void mail_alerts(struct sbuf *body, const struct notify__msg *m, int resolved)
{
    int any = 0;
    for (size_t i = 0; i < m->nalerts; i++) {
        const struct notify__alert *a = m->alerts[i];
        if (notify__alert_resolved(a, m->now) != resolved)
            continue;
        if (!any++)
            sbuf_addf(body, "\n%s:\n", resolved ? "Resolved" : "Firing");
        sbuf_addf(body, "\n- %s\n  Labels:", summary_of(a));
        for (size_t k = 0; k < a->labels.n; k++)
            sbuf_addf(body, " %s=%s", a->labels.v[k].name, a->labels.v[k].value);
        sbuf_adds(body, "\n");
        for (size_t k = 0; k < a->annotations.n; k++)
            sbuf_addf(body, "  %s: %s\n", a->annotations.v[k].name, a->annotations.v[k].value);
        struct sbuf t;
        sbuf_init(&t, 64);
        notify__time_json(&t, a->starts_ms);
        sbuf_addf(body, "  Started: %.*s\n", (int)(t.len - 2), t.buf + 1);
        if (resolved) {
            sbuf_reset(&t);
            notify__time_json(&t, a->ends_ms);
            sbuf_addf(body, "  Ended: %.*s\n", (int)(t.len - 2), t.buf + 1);
        }
        sbuf_release(&t);
        if (a->generator_url && *a->generator_url)
            sbuf_addf(body, "  Source: %s\n", a->generator_url);
    }
}

static void render_email(struct sbuf *out, const struct notify__msg *m,
                         const struct notify_integration *it)
{
    struct sbuf title, body;
    sbuf_init(&title, 64 << 10);
    sbuf_init(&body, NOTIFY_MAX_PAYLOAD);
    notify__render_title(&title, m);
    char date[64], id[37];
    time_t t = (time_t)(m->now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    notify__uuid(id);
    int has_subject = 0, has_to = 0, has_from = 0;
    for (size_t i = 0; i < it->nheaders; i++) {
        has_subject |= strcasecmp(it->headers[i].name, "Subject") == 0;
        has_to |= strcasecmp(it->headers[i].name, "To") == 0;
        has_from |= strcasecmp(it->headers[i].name, "From") == 0;
    }
    if (!has_from)
        header(out, "From", it->from);
    if (!has_to)
        header(out, "To", it->to);
    if (!has_subject)
        header(out, "Subject", title.buf);
    for (size_t i = 0; i < it->nheaders; i++)
        header(out, it->headers[i].name, it->headers[i].value);
    header(out, "Date", date);
    sbuf_addf(out, "Message-Id: <%s@sitrep>\r\n", id);
    sbuf_adds(out, "MIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n"
                   "\r\n");
    sbuf_addf(&body, "%s\n", title.buf);
    mail_alerts(&body, m, 0);
    mail_alerts(&body, m, 1);
    if (m->external_url && *m->external_url)
        sbuf_addf(&body, "\nSent by sitrep: %s\n", m->external_url);
    sbuf_addf(&body, "Group: %s\n", m->group_key);
    lines_crlf(out, body.buf);
    sbuf_release(&title);
    sbuf_release(&body);
}

/*
 * What Alertmanager's POST /api/v2/alerts takes. A firing alert is valid
 * until a few flushes from now, as Prometheus sets endsAt on the alerts it
 * resends: if sitrep stops sending, the Alertmanager resolves them.
 */
static void render_am(struct sbuf *out, const struct notify__msg *m)
{
    long long valid = 4 * (m->group_interval_ms > 60000 ? m->group_interval_ms : 60000);
    sbuf_addc(out, '[');
    for (size_t i = 0; i < m->nalerts; i++) {
        const struct notify__alert *a = m->alerts[i];
        int resolved = notify__alert_resolved(a, m->now);
        if (i)
            sbuf_addc(out, ',');
        sbuf_adds(out, "{\"labels\":");
        notify__lset_json(out, &a->labels);
        sbuf_adds(out, ",\"annotations\":");
        notify__lset_json(out, &a->annotations);
        sbuf_adds(out, ",\"startsAt\":");
        notify__time_json(out, a->starts_ms);
        sbuf_adds(out, ",\"endsAt\":");
        notify__time_json(out, resolved ? a->ends_ms : m->now + valid);
        sbuf_adds(out, ",\"generatorURL\":");
        json_str(out, a->generator_url ? a->generator_url : "");
        sbuf_addc(out, '}');
    }
    sbuf_adds(out, "]\n");
}

int notify__render(struct sbuf *out, const struct notify__msg *m,
                   const struct notify_integration *it)
{
    switch (it->kind) {
    case NOTIFY_WEBHOOK:
        notify__render_webhook(out, m, it->max_alerts);
        break;
    case NOTIFY_EXEC:
        notify__render_webhook(out, m, 0);
        break;
    case NOTIFY_SLACK:
        render_slack(out, m, it);
        break;
    case NOTIFY_EMAIL:
        render_email(out, m, it);
        break;
    case NOTIFY_ALERTMANAGER:
        render_am(out, m);
        break;
    }
    return out->overflow ? -1 : 0;
}
