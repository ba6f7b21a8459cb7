/*
 * notify_pipeline_test.c: the pipeline on a fake clock with a recording
 * transport: group_wait/group_interval/repeat_interval timing, dedup,
 * resolved notifications, inhibition, silences, the outbox's retries,
 * ordering, cap and persistence across a reopen, exec's rate limit, limits,
 * reloads and the payload Alertmanager's webhook receivers expect.
 */
#include "testutil.h"
#include "notify/notify_internal.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */
#define S  1000LL
#define M  60000LL
#define H  3600000LL

struct sent {
    char receiver[64];
    unsigned index;
    char status[16];
    char group_key[256];
    char *body;
};

struct env {
    int64_t now;
    struct sent sent[512];
    size_t nsent;
    size_t attempts;
    enum notify_result script[64]; /* results for the next attempts; then NOTIFY_SENT */
    size_t nscript, pos;
    int fail_all;
    char dir[128];
    struct notify *n;
};

static int64_t fake_now(void *ctx)
{
    return ((struct env *)ctx)->now;
}

static enum notify_result record(void *ctx, const struct notify_delivery *d, char *err,
                                 size_t errcap)
{
    struct env *e = ctx;
    e->attempts++;
    enum notify_result r = e->fail_all ? NOTIFY_RETRY : NOTIFY_SENT;
    if (e->pos < e->nscript)
        r = e->script[e->pos++];
    if (r != NOTIFY_SENT) {
        snprintf(err, errcap, "scripted failure");
        return r;
    }
    assert_true(e->nsent < ARRAY_SIZE(e->sent));
    struct sent *s = &e->sent[e->nsent++];
    snprintf(s->receiver, sizeof(s->receiver), "%s", d->receiver);
    s->index = (unsigned)d->index;
    snprintf(s->status, sizeof(s->status), "%s", d->status);
    snprintf(s->group_key, sizeof(s->group_key), "%s", d->group_key);
    s->body = xstrndup(d->body, d->body_len);
    return NOTIFY_SENT;
}

static struct notify *open_pipeline(struct env *e, const char *yaml, int persistent)
{
    struct notify_config cfg;
    struct sbuf errors;
    notify_config_defaults(&cfg);
    sbuf_init(&errors, 0);
    if (notify_config_parse(&cfg, "test.yml", yaml, &errors) < 0)
        fail_msg("%s", errors.buf);
    sbuf_release(&errors);
    struct notify_opts o = {.data_dir = persistent ? e->dir : NULL,
                            .external_url = "http://sitrep.test:9797",
                            .now_ms = fake_now,
                            .clock_ctx = e,
                            .transport = record,
                            .transport_ctx = e};
    struct notify *n = notify_new(&o, &cfg);
    assert_non_null(n);
    return n;
}

static int setup(void **state)
{
    struct env *e = xcalloc(1, sizeof(*e));
    e->now = T0;
    snprintf(e->dir, sizeof(e->dir), "%s", tu_tmpdir("notify"));
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    notify_free(e->n);
    for (size_t i = 0; i < e->nsent; i++)
        free(e->sent[i].body);
    tu_rmrf(e->dir);
    free(e);
    return 0;
}

/* Submit one alert with labels "k=v,k=v"; ends 0 fires it, else resolves it then. */
static void submit(struct env *e, const char *labels, int64_t starts, int64_t ends)
{
    struct notify_label l[16];
    char buf[512];
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", labels);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        *eq = '\0';
        l[n++] = (struct notify_label){kv, eq + 1};
    }
    struct notify_label ann[] = {{"summary", "something is wrong"}};
    struct notify_alert a = {.labels = l,
                             .nlabels = n,
                             .annotations = ann,
                             .nannotations = 1,
                             .starts_at_ms = starts,
                             .ends_at_ms = ends,
                             .generator_url = "http://sitrep.test/rules"};
    assert_int_equal(notify_submit(e->n, &a, 1), 1);
}

static void at(struct env *e, int64_t t)
{
    e->now = t;
    notify_tick(e->n);
}

static const struct sent *last(struct env *e)
{
    assert_true(e->nsent > 0);
    return &e->sent[e->nsent - 1];
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static double metric(struct notify *n, const char *name, const char *labels)
{
    struct metric_buf b;
    metric_buf_init(&b);
    notify_expose(n, &b);
    double v = 0;
    if (!tu_find(&b, name, labels, &v))
        v = -1;
    metric_buf_release(&b);
    return v;
}

static const char basic[] = "route:\n"
                            "  receiver: hook\n"
                            "  group_by: [alertname]\n"
                            "  group_wait: 30s\n"
                            "  group_interval: 5m\n"
                            "  repeat_interval: 4h\n"
                            "receivers:\n"
                            "  - name: hook\n"
                            "    webhook_configs: [{url: 'http://127.0.0.1:1/'}]\n";

static void test_group_timers_and_repeat(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e, basic, 0);
    submit(e, "alertname=A,instance=x", T0, 0);
    at(e, T0 + 29 * S);
    assert_int_equal(e->nsent, 0); /* group_wait */
    at(e, T0 + 30 * S);
    assert_int_equal(e->nsent, 1);
    assert_string_equal(last(e)->status, "firing");
    assert_string_equal(last(e)->group_key, "{}:{alertname=\"A\"}");
    assert_int_equal(count(last(e)->body, "\"fingerprint\""), 1);

    /* A second alert joins the group: it waits for the next group_interval. */
    at(e, T0 + 60 * S);
    submit(e, "alertname=A,instance=x", T0, 0);
    submit(e, "alertname=A,instance=y", T0 + 60 * S, 0);
    at(e, T0 + 61 * S);
    at(e, T0 + 329 * S);
    assert_int_equal(e->nsent, 1);
    submit(e, "alertname=A,instance=x", T0, 0);
    submit(e, "alertname=A,instance=y", T0 + 60 * S, 0);
    at(e, T0 + 330 * S);
    assert_int_equal(e->nsent, 2);
    assert_int_equal(count(last(e)->body, "\"fingerprint\""), 2);

    /* Nothing changes: no notification until repeat_interval has passed,
     * at the first flush after it (Alertmanager's timing). */
    int64_t t;
    for (t = T0 + 630 * S; t <= T0 + (330 + 4 * 3600) * S; t += 300 * S) {
        e->now = t - S;
        submit(e, "alertname=A,instance=x", T0, 0);
        submit(e, "alertname=A,instance=y", T0 + 60 * S, 0);
        at(e, t);
        assert_int_equal(e->nsent, 2);
    }
    e->now = t - S;
    submit(e, "alertname=A,instance=x", T0, 0);
    submit(e, "alertname=A,instance=y", T0 + 60 * S, 0);
    at(e, t);
    assert_int_equal(e->nsent, 3);
    assert_string_equal(last(e)->status, "firing");
    assert_int_equal(t, T0 + 15030 * S);
    assert_int_equal(metric(e->n, "sitrep_notify_groups", ""), 1);
}

static void test_old_alert_flushes_at_once(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e, basic, 0);
    /* Started long ago (say, before a restart): no group_wait. */
    submit(e, "alertname=A", T0 - 10 * M, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 1);
}

static void test_resolved(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route:\n"
                         "  receiver: both\n"
                         "  group_by: [alertname]\n"
                         "  group_wait: 0s\n"
                         "  group_interval: 1m\n"
                         "receivers:\n"
                         "  - name: both\n"
                         "    webhook_configs: [{url: 'http://127.0.0.1:1/'}]\n"
                         "    slack_configs: [{api_url: 'http://127.0.0.1:1/'}]\n",
                         0);
    submit(e, "alertname=A", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 2); /* webhook and slack */
    at(e, T0 + 30 * S);
    submit(e, "alertname=A", T0, T0 + 30 * S); /* resolved */
    at(e, T0 + 60 * S);
    /* Only the webhook (send_resolved true by default) hears of it; slack's default is false. */
    assert_int_equal(e->nsent, 3);
    assert_int_equal(last(e)->index, 0);
    assert_string_equal(last(e)->status, "resolved");
    assert_non_null(strstr(last(e)->body, "\"status\":\"resolved\""));
    assert_non_null(strstr(last(e)->body, "\"endsAt\":\"2023-11-14T22:13:50Z\""));
    /* The group is gone once its resolved alerts were told. */
    assert_int_equal(metric(e->n, "sitrep_notify_groups", ""), 0);
    /* Resent resolved alerts make no noise. */
    submit(e, "alertname=A", T0, T0 + 30 * S);
    at(e, T0 + 120 * S);
    at(e, T0 + 180 * S);
    assert_int_equal(e->nsent, 3);
    /* It fires again: a first notification again, to both. */
    submit(e, "alertname=A", T0 + 200 * S, 0);
    at(e, T0 + 200 * S);
    assert_int_equal(e->nsent, 5);
    /* Not resent for resolve_timeout (5m): it resolves by itself. */
    at(e, T0 + 200 * S + 5 * M + 1);
    at(e, T0 + 200 * S + 6 * M + 1);
    assert_int_equal(e->nsent, 6);
    assert_string_equal(last(e)->status, "resolved");
}

static void test_continue_fans_out(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route:\n"
                         "  receiver: a\n"
                         "  group_wait: 0s\n"
                         "  routes:\n"
                         "    - {matchers: [severity=page], receiver: b, continue: true}\n"
                         "    - {matchers: [severity=page], receiver: c}\n"
                         "receivers:\n"
                         "  - {name: a, webhook_configs: [{url: 'http://h/a'}]}\n"
                         "  - {name: b, webhook_configs: [{url: 'http://h/b'}]}\n"
                         "  - {name: c, webhook_configs: [{url: 'http://h/c'}]}\n",
                         0);
    submit(e, "alertname=X,severity=page", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 2);
    /* Groups flushed in the same tick go out in no set order. */
    int b = strcmp(e->sent[0].receiver, "b") == 0 ? 0 : 1;
    assert_string_equal(e->sent[b].receiver, "b");
    assert_string_equal(e->sent[!b].receiver, "c");
    assert_string_equal(e->sent[b].group_key, "{}/{severity=\"page\"}:{}");
    assert_string_equal(e->sent[!b].group_key, "{}/{severity=\"page\"}:{}");
}

static const char inhibit_cfg[] = "route:\n"
                                  "  receiver: hook\n"
                                  "  group_by: [alertname, instance]\n"
                                  "  group_wait: 0s\n"
                                  "  group_interval: 1m\n"
                                  "receivers:\n"
                                  "  - {name: hook, webhook_configs: [{url: 'http://h/'}]}\n"
                                  "inhibit_rules:\n"
                                  "  - source_matchers: [alertname=HostDown]\n"
                                  "    target_matchers: [severity=warning]\n"
                                  "    equal: [instance]\n";

static void test_inhibition(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e, inhibit_cfg, 0);
    submit(e, "alertname=HostDown,instance=a", T0, 0);
    submit(e, "alertname=Slow,instance=a,severity=warning", T0, 0);
    submit(e, "alertname=Slow,instance=b,severity=warning", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 2);
    int slow_a = 0;
    for (size_t i = 0; i < e->nsent; i++)
        slow_a |= strstr(e->sent[i].group_key, "alertname=\"Slow\", instance=\"a\"") != NULL;
    assert_false(slow_a);
    assert_int_equal(metric(e->n, "sitrep_notify_alerts", "state=\"suppressed\""), 1);
    /* The host comes back: the warning is no longer muted. */
    submit(e, "alertname=HostDown,instance=a", T0, T0 + 30 * S);
    submit(e, "alertname=Slow,instance=a,severity=warning", T0, 0);
    submit(e, "alertname=Slow,instance=b,severity=warning", T0, 0);
    at(e, T0 + 60 * S);
    assert_int_equal(e->nsent, 4); /* HostDown resolved + Slow a */
    slow_a = 0;
    for (size_t i = 2; i < e->nsent; i++)
        slow_a |= strstr(e->sent[i].group_key, "alertname=\"Slow\", instance=\"a\"") != NULL;
    assert_true(slow_a);
}

static void test_inhibit_not_self(void **state)
{
    struct env *e = *state;
    /* Source and target both match: such alerts never mute each other. */
    e->n = open_pipeline(e,
                         "route:\n"
                         "  receiver: hook\n"
                         "  group_by: ['...']\n"
                         "  group_wait: 0s\n"
                         "receivers:\n"
                         "  - {name: hook, webhook_configs: [{url: 'http://h/'}]}\n"
                         "inhibit_rules:\n"
                         "  - source_matchers: [severity=critical]\n"
                         "    target_matchers: ['severity=~\"critical|warning\"']\n",
                         0);
    submit(e, "alertname=A,severity=critical", T0, 0);
    submit(e, "alertname=B,severity=critical", T0, 0);
    submit(e, "alertname=C,severity=warning", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 2); /* A and B; C is muted */
}

static int post_silence(struct env *e, const char *json, char id[37])
{
    char err[256];
    struct notify__jv *v = notify__json_parse(json, strlen(json), err, sizeof(err));
    assert_non_null(v);
    pthread_mutex_lock(&e->n->mu);
    int rc = notify__silence_post(e->n, v, id, err, sizeof(err));
    pthread_mutex_unlock(&e->n->mu);
    notify__jv_free(v);
    return rc;
}

static void test_silences(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route:\n"
                         "  receiver: hook\n"
                         "  group_by: [alertname]\n"
                         "  group_wait: 0s\n"
                         "  group_interval: 1m\n"
                         "receivers:\n"
                         "  - {name: hook, webhook_configs: [{url: 'http://h/'}]}\n",
                         1);
    char id[37], id2[37];
    /* 2023-11-14T22:13:20Z is T0. */
    assert_int_equal(post_silence(e,
                                  "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"A\","
                                  "\"isRegex\":false}],\"startsAt\":\"2023-11-14T22:13:20Z\","
                                  "\"endsAt\":\"2023-11-14T23:13:20Z\",\"createdBy\":\"me\","
                                  "\"comment\":\"maintenance\"}",
                                  id),
                     0);
    /* A pending one (starts later) does not mute yet. */
    assert_int_equal(post_silence(e,
                                  "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"B|C\","
                                  "\"isRegex\":true}],\"startsAt\":\"2023-11-14T22:30:00Z\","
                                  "\"endsAt\":\"2023-11-14T23:00:00Z\",\"createdBy\":\"me\","
                                  "\"comment\":\"later\"}",
                                  id2),
                     0);
    submit(e, "alertname=A", T0, 0);
    submit(e, "alertname=B", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 1);
    assert_non_null(strstr(last(e)->group_key, "\"B\""));
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"active\""), 1);
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"pending\""), 1);

    /* Rejected silences: all-empty matchers, end in the past, no author. */
    char err_id[37];
    assert_int_equal(post_silence(e,
                                  "{\"matchers\":[{\"name\":\"x\",\"value\":\".*\","
                                  "\"isRegex\":true}],\"endsAt\":\"2023-11-14T23:00:00Z\","
                                  "\"createdBy\":\"me\",\"comment\":\"\"}",
                                  err_id),
                     400);
    assert_int_equal(post_silence(e,
                                  "{\"matchers\":[{\"name\":\"x\",\"value\":\"y\"}],"
                                  "\"endsAt\":\"2023-11-14T20:00:00Z\",\"createdBy\":\"me\","
                                  "\"comment\":\"\"}",
                                  err_id),
                     400);
    assert_int_equal(post_silence(e,
                                  "{\"matchers\":[{\"name\":\"x\",\"value\":\"y\"}],"
                                  "\"endsAt\":\"2023-11-14T23:00:00Z\",\"comment\":\"\"}",
                                  err_id),
                     400);
    assert_int_equal(post_silence(e,
                                  "{\"id\":\"00000000-0000-4000-8000-000000000000\","
                                  "\"matchers\":[{\"name\":\"x\",\"value\":\"y\"}],"
                                  "\"endsAt\":\"2023-11-14T23:00:00Z\",\"createdBy\":\"me\","
                                  "\"comment\":\"\"}",
                                  err_id),
                     404);

    /* Extending the active silence keeps its id (same matchers, same start). */
    char json[512];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"matchers\":[{\"name\":\"alertname\",\"value\":\"A\","
             "\"isRegex\":false}],\"startsAt\":\"2023-11-14T22:13:20Z\","
             "\"endsAt\":\"2023-11-15T00:00:00Z\",\"createdBy\":\"me\",\"comment\":\"longer\"}",
             id);
    char same[37];
    assert_int_equal(post_silence(e, json, same), 0);
    assert_string_equal(same, id);
    /* Changing its matchers makes a new silence and expires the old one. */
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"matchers\":[{\"name\":\"alertname\",\"value\":\"A\","
             "\"isRegex\":false},{\"name\":\"x\",\"value\":\"1\"}],"
             "\"endsAt\":\"2023-11-15T00:00:00Z\",\"createdBy\":\"me\",\"comment\":\"narrower\"}",
             id);
    char other[37];
    e->now = T0 + 10 * S;
    assert_int_equal(post_silence(e, json, other), 0);
    assert_string_not_equal(other, id);
    pthread_mutex_lock(&e->n->mu);
    assert_int_equal(notify__silence_state(notify__silence_find(e->n, id), e->now),
                     NOTIFY_SIL_EXPIRED);
    pthread_mutex_unlock(&e->n->mu);

    /* A is no longer silenced (the new silence needs x=1): it goes out. */
    submit(e, "alertname=A", T0, 0);
    submit(e, "alertname=B", T0, 0);
    at(e, T0 + 60 * S);
    assert_int_equal(e->nsent, 2);
    assert_non_null(strstr(last(e)->group_key, "\"A\""));

    /* The pending silence becomes active at its start and mutes B from then on:
     * no resolved news for a muted alert, and no repeat. */
    e->now = T0 + 17 * M;
    submit(e, "alertname=A", T0, 0);
    submit(e, "alertname=B", T0, 0);
    at(e, T0 + 17 * M);
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"active\""), 2);

    /* Silences survive a reopen; expired ones are forgotten after the retention. */
    notify_free(e->n);
    e->n = open_pipeline(e,
                         "route: {receiver: hook, group_wait: 0s}\n"
                         "receivers: [{name: hook, webhook_configs: [{url: 'http://h/'}]}]\n"
                         "limits: {retention: 1h}\n",
                         1);
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"active\""), 2);
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"expired\""), 1);
    pthread_mutex_lock(&e->n->mu);
    assert_non_null(notify__silence_find(e->n, id2));
    assert_int_equal(notify__silence_expire(e->n, id2), 0);
    assert_int_equal(notify__silence_expire(e->n, "nope"), 404);
    pthread_mutex_unlock(&e->n->mu);
    e->now = T0 + 5 * H;
    at(e, e->now); /* gc runs */
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"expired\""), 0);
    assert_int_equal(metric(e->n, "sitrep_notify_silences", "state=\"active\""), 0);
}

static void test_retry_backoff_and_order(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route: {receiver: hook, group_by: [alertname], group_wait: 0s,"
                         " group_interval: 1s}\n"
                         "receivers: [{name: hook, webhook_configs: [{url: 'http://h/'}]}]\n"
                         "outbox: {retry_initial: 1s, retry_max: 4s}\n",
                         0);
    e->script[0] = e->script[1] = e->script[2] = e->script[3] = NOTIFY_RETRY;
    e->nscript = 4;
    submit(e, "alertname=A", T0, 0);
    at(e, T0);
    assert_int_equal(e->attempts, 1);
    /* The alert resolves while the firing message is still being retried:
     * the resolved message queues behind it, never overtakes it. */
    submit(e, "alertname=A", T0, T0 + 500);
    at(e, T0 + 999);
    assert_int_equal(e->attempts, 1);
    at(e, T0 + 1000); /* retry 1 after 1s; the group flushes the resolved message */
    assert_int_equal(e->attempts, 2);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 2);
    at(e, T0 + 2999);
    assert_int_equal(e->attempts, 2);
    at(e, T0 + 3000); /* +2s */
    assert_int_equal(e->attempts, 3);
    at(e, T0 + 7000); /* +4s */
    assert_int_equal(e->attempts, 4);
    at(e, T0 + 10999); /* capped at 4s */
    assert_int_equal(e->attempts, 4);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_oldest_seconds", ""), 10.999);
    at(e, T0 + 11000); /* success, and the resolved message right behind it */
    assert_int_equal(e->nsent, 2);
    assert_string_equal(e->sent[0].status, "firing");
    assert_string_equal(e->sent[1].status, "resolved");
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"hook\",integration=\"webhook[0]\",outcome=\"retry\""),
                     4);
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"hook\",integration=\"webhook[0]\",outcome=\"success\""),
                     2);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 0);
}

static void test_rejected_and_give_up(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route: {receiver: hook, group_by: [alertname], group_wait: 0s}\n"
                         "receivers: [{name: hook, webhook_configs: [{url: 'http://h/'}]}]\n"
                         "outbox: {retry_initial: 1s, retry_max: 1s, give_up_after: 5s}\n",
                         0);
    e->script[0] = NOTIFY_REJECTED;
    e->nscript = 1;
    submit(e, "alertname=A", T0, 0);
    at(e, T0);
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"hook\",integration=\"webhook[0]\",outcome=\"rejected\""),
                     1);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 0);
    e->fail_all = 1;
    submit(e, "alertname=B", T0, 0);
    for (int64_t t = T0; t <= T0 + 6 * S; t += S)
        at(e, t);
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"hook\",integration=\"webhook[0]\",outcome=\"expired\""),
                     1);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 0);
}

static void test_outbox_survives_reopen(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e, basic, 1);
    e->fail_all = 1;
    submit(e, "alertname=A,instance=x", T0, 0);
    at(e, T0 + 30 * S);
    assert_int_equal(e->attempts, 1);
    assert_int_equal(e->nsent, 0);
    notify_free(e->n); /* "crash": the notification is still pending */
    e->fail_all = 0;
    e->n = open_pipeline(e, basic, 1);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 1);
    at(e, T0 + 40 * S);
    assert_int_equal(e->nsent, 1);
    assert_non_null(strstr(last(e)->body, "\"instance\":\"x\""));
    assert_string_equal(last(e)->group_key, "{}:{alertname=\"A\"}");
    /* The notification log came back too: the rules engine resending the
     * alert after the restart does not page again. */
    submit(e, "alertname=A,instance=x", T0, 0);
    at(e, T0 + 41 * S);
    e->now = T0 + 9 * M;
    submit(e, "alertname=A,instance=x", T0, 0);
    at(e, T0 + 10 * M);
    assert_int_equal(e->nsent, 1);
    /* ...but news still goes out, at the group's next flush. */
    e->now = T0 + 14 * M;
    submit(e, "alertname=A,instance=x", T0, 0);
    submit(e, "alertname=A,instance=z", T0 + 14 * M, 0);
    at(e, T0 + 15 * M);
    assert_int_equal(e->nsent, 2);
}

static void test_outbox_cap(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route: {receiver: hook, group_by: [alertname], group_wait: 0s}\n"
                         "receivers: [{name: hook, webhook_configs: [{url: 'http://h/'}]}]\n"
                         "outbox: {max_entries: 10}\n",
                         1);
    e->fail_all = 1;
    for (int i = 0; i < 12; i++) {
        char l[32];
        snprintf(l, sizeof(l), "alertname=A%d", i);
        submit(e, l, T0, 0);
    }
    at(e, T0);
    assert_int_equal(metric(e->n, "sitrep_notify_queue_length", ""), 10);
    assert_int_equal(metric(e->n, "sitrep_notify_outbox_dropped_total", ""), 2);
    e->fail_all = 0;
    at(e, T0 + 10 * S);
    assert_int_equal(e->nsent, 10);
}

static void test_exec_rate_limit(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route: {receiver: fix, group_by: [alertname], group_wait: 0s}\n"
                         "receivers:\n"
                         "  - name: fix\n"
                         "    exec_configs: [{command: [/bin/true], max_per_hour: 2}]\n",
                         0);
    submit(e, "alertname=A", T0, 0);
    submit(e, "alertname=B", T0, 0);
    submit(e, "alertname=C", T0, 0);
    at(e, T0);
    assert_int_equal(e->nsent, 2);
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"fix\",integration=\"exec[0]\",outcome=\"rate_limited\""),
                     1);
    /* An hour later it may run again. */
    e->now = T0 + H + 1;
    submit(e, "alertname=D", T0 + H + 1, 0);
    at(e, T0 + H + 1);
    assert_int_equal(e->nsent, 3);
}

static void test_limits(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route: {receiver: hook, group_by: [alertname], group_wait: 0s}\n"
                         "receivers: [{name: hook, webhook_configs: [{url: 'http://h/'}]}]\n"
                         "limits: {max_alerts: 2, max_groups: 1}\n",
                         0);
    struct notify_label l1[] = {{"alertname", "A"}, {"i", "1"}};
    struct notify_label l2[] = {{"alertname", "B"}};
    struct notify_label l3[] = {{"alertname", "C"}};
    struct notify_label dup[] = {{"a", "1"}, {"a", "2"}};
    struct notify_alert a[] = {{.labels = l1, .nlabels = 2},
                               {.labels = l2, .nlabels = 1},
                               {.labels = l3, .nlabels = 1},
                               {.labels = dup, .nlabels = 2},
                               {.labels = l1, .nlabels = 0}};
    assert_int_equal(notify_submit(e->n, a, 5), 2); /* B is kept but has no group */
    assert_int_equal(metric(e->n, "sitrep_notify_alerts_rejected_total", "reason=\"max_alerts\""),
                     1);
    assert_int_equal(metric(e->n, "sitrep_notify_alerts_rejected_total", "reason=\"max_groups\""),
                     1);
    assert_int_equal(metric(e->n, "sitrep_notify_alerts_rejected_total", "reason=\"invalid\""), 2);
    assert_int_equal(metric(e->n, "sitrep_notify_groups", ""), 1);
}

static void test_reload(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e, basic, 0);
    e->fail_all = 1;
    submit(e, "alertname=A", T0, 0);
    at(e, T0 + 30 * S);
    assert_int_equal(e->attempts, 1);
    /* The receiver goes away in a reload: its pending message is dropped,
     * and the alert is regrouped under the new tree. */
    struct notify_config cfg;
    struct sbuf errors;
    notify_config_defaults(&cfg);
    sbuf_init(&errors, 0);
    assert_int_equal(notify_config_parse(&cfg, "new.yml",
                                         "route: {receiver: other, group_wait: 0s}\n"
                                         "receivers: [{name: other, webhook_configs:"
                                         " [{url: 'http://h/'}]}]\n",
                                         &errors),
                     0);
    sbuf_release(&errors);
    notify_set_config(e->n, &cfg);
    e->fail_all = 0;
    at(e, T0 + 40 * S);
    assert_int_equal(e->nsent, 1);
    assert_string_equal(last(e)->receiver, "other");
    assert_string_equal(last(e)->group_key, "{}:{}");
    assert_int_equal(metric(e->n, "sitrep_notifications_total",
                            "receiver=\"hook\",integration=\"webhook[0]\",outcome=\"dropped\""),
                     1);
}

static void test_webhook_payload(void **state)
{
    struct env *e = *state;
    e->n = open_pipeline(e,
                         "route:\n"
                         "  receiver: hook\n"
                         "  group_wait: 0s\n"
                         "  routes:\n"
                         "    - matchers: [severity=page]\n"
                         "      group_by: [alertname]\n"
                         "receivers:\n"
                         "  - name: hook\n"
                         "    webhook_configs: [{url: 'http://h/', max_alerts: 1}]\n",
                         0);
    submit(e, "alertname=Disk,severity=page,instance=b", T0, 0);
    submit(e, "alertname=Disk,severity=page,instance=a", T0 + 1500, 0);
    at(e, T0 + 2 * S);
    assert_int_equal(e->nsent, 1);
    const char *b = last(e)->body;
    /* instance=a sorts first; max_alerts keeps one and counts the other. */
    const char *want =
        "{\"receiver\":\"hook\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\","
        "\"labels\":{\"alertname\":\"Disk\",\"instance\":\"a\",\"severity\":\"page\"},"
        "\"annotations\":{\"summary\":\"something is wrong\"},"
        "\"startsAt\":\"2023-11-14T22:13:21.5Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"http://sitrep.test/rules\",\"fingerprint\":\"";
    if (strncmp(b, want, strlen(want)) != 0)
        fail_msg("got %s", b);
    assert_non_null(strstr(b,
                           "\"groupLabels\":{\"alertname\":\"Disk\"},"
                           "\"commonLabels\":{\"alertname\":\"Disk\",\"instance\":\"a\","
                           "\"severity\":\"page\"},"
                           "\"commonAnnotations\":{\"summary\":\"something is wrong\"},"
                           "\"externalURL\":\"http://sitrep.test:9797\",\"version\":\"4\","
                           "\"groupKey\":\"{}/{severity=\\\"page\\\"}:{alertname=\\\"Disk\\\"}\","
                           "\"truncatedAlerts\":1}\n"));
    /* The fingerprint is Prometheus's for the label set. */
    struct notify_label l[] = {{"alertname", "Disk"}, {"severity", "page"}, {"instance", "a"}};
    char fp[40];
    snprintf(fp, sizeof(fp), "\"fingerprint\":\"%016llx\"",
             (unsigned long long)notify_fingerprint(l, 3));
    assert_non_null(strstr(b, fp));
    char err[128];
    struct notify__jv *v = notify__json_parse(b, strlen(b), err, sizeof(err));
    assert_non_null(v);
    notify__jv_free(v);
}

static void test_renderers(void **state)
{
    (void)state;
    struct notify_label l1[] = {{"alertname", "Disk"}, {"instance", "db1"}};
    struct notify_label a1[] = {{"summary", "disk full \xc3\xa9"}, {"runbook_url", "http://rb"}};
    struct notify__alert x = {.fp = 1, .starts_ms = T0, .ends_ms = 0};
    notify__lset_copy(&x.labels, l1, 2);
    notify__lset_copy(&x.annotations, a1, 2);
    struct notify__lset gl = {0};
    const struct notify__alert *alerts[] = {&x};
    struct notify__msg m = {.receiver = "r",
                            .group_key = "{}:{}",
                            .group_labels = &gl,
                            .alerts = alerts,
                            .nalerts = 1,
                            .now = T0 + S,
                            .external_url = "http://s"};
    struct notify_integration slack = {.kind = NOTIFY_SLACK, .channel = "#ops"};
    struct sbuf out;
    sbuf_init(&out, 0);
    assert_int_equal(notify__render(&out, &m, &slack), 0);
    assert_string_equal(out.buf,
                        "{\"channel\":\"#ops\",\"text\":\"[FIRING:1] (Disk db1)\\n"
                        "[firing] disk full \xc3\xa9 (db1)\\n    runbook: http://rb\\n\"}\n");
    sbuf_reset(&out);
    struct notify_integration mail = {
        .kind = NOTIFY_EMAIL, .from = "Sitrep <s@x.org>", .to = "a@x.org"};
    assert_int_equal(notify__render(&out, &m, &mail), 0);
    assert_non_null(strstr(out.buf, "From: Sitrep <s@x.org>\r\nTo: a@x.org\r\n"
                                    "Subject: [FIRING:1] (Disk db1)\r\n"));
    assert_non_null(strstr(out.buf, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(out.buf, "\r\n\r\n[FIRING:1] (Disk db1)\r\n\r\nFiring:\r\n"));
    assert_non_null(strstr(out.buf, "  summary: disk full \xc3\xa9\r\n"));
    assert_null(strstr(out.buf, "\n\n")); /* every line break is CRLF */
    sbuf_reset(&out);
    struct notify_integration am = {.kind = NOTIFY_ALERTMANAGER};
    m.group_interval_ms = 5 * M;
    assert_int_equal(notify__render(&out, &m, &am), 0);
    /* Valid for four group intervals: Alertmanager resolves it if sitrep stops sending. */
    assert_non_null(strstr(out.buf, "\"endsAt\":\"2023-11-14T22:33:21Z\""));
    sbuf_release(&out);
    notify__lset_free(&x.labels);
    notify__lset_free(&x.annotations);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_group_timers_and_repeat),
        T(test_old_alert_flushes_at_once),
        T(test_resolved),
        T(test_continue_fans_out),
        T(test_inhibition),
        T(test_inhibit_not_self),
        T(test_silences),
        T(test_retry_backoff_and_order),
        T(test_rejected_and_give_up),
        T(test_outbox_survives_reopen),
        T(test_outbox_cap),
        T(test_exec_rate_limit),
        T(test_limits),
        T(test_reload),
        T(test_webhook_payload),
        T(test_renderers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
