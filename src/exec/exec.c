/*
 * exec.c: the exec runner (exec.h): a copy of the config, one slot per
 * job, and the thread that starts each command when due, polls every
 * running command's pipes (and a wake-up pipe for stop) and turns each
 * finished run into one batch stamped with its start.
 */
#include "exec/exec_internal.h"
#include "ingest/expfmt.h"
#include "util/log.h"
#include "util/util.h"
#include "util/banned.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum reason { R_SPAWN, R_EXIT, R_SIGNAL, R_TIMEOUT, R_OUTPUT_LIMIT, R_PARSE, R_N };
static const char *const reason_names[R_N] = {"spawn",   "exit",         "signal",
                                              "timeout", "output_limit", "parse"};

struct slot {
    const struct exec_job *job; /* in the runner's config copy */
    struct exec__child child;
    int running;
    int64_t next_due_ms, start_ms, start_ns, last_ts_ms;
    uint64_t errors[R_N];
    int failing; /* logged once per failure streak */
};

struct exec {
    struct exec_config cfg; /* owned copy */
    struct slot *slots;
    size_t nslots;
    void (*sink)(void *ctx, const struct metric_buf *batch);
    void *sink_ctx;
    struct metric_buf work;
    pthread_t thread;
    int running;
    atomic_int stop;
    int wake[2]; /* exec_stop writes one byte */
};

static void config_copy(struct exec_config *dst, const struct exec_config *src)
{
    dst->njobs = src->njobs;
    dst->jobs = xcalloc(src->njobs ? src->njobs : 1, sizeof(*dst->jobs));
    for (size_t i = 0; i < src->njobs; i++) {
        const struct exec_job *a = &src->jobs[i];
        struct exec_job *b = &dst->jobs[i];
        *b = *a;
        b->job = xstrdup(a->job);
        b->argv = xcalloc(a->argc + 1, sizeof(char *));
        for (size_t k = 0; k < a->argc; k++)
            b->argv[k] = xstrdup(a->argv[k]);
        if (b->interval_ms <= 0)
            b->interval_ms = EXEC_DEFAULT_INTERVAL_MS;
        if (b->timeout_ms <= 0 || b->timeout_ms > b->interval_ms)
            b->timeout_ms = b->interval_ms;
        if (b->output_limit <= 0)
            b->output_limit = EXEC_DEFAULT_OUTPUT_LIMIT;
    }
}

struct exec *exec_new(const struct exec_opts *o)
{
    struct exec *e = xcalloc(1, sizeof(*e));
    if (o->config)
        config_copy(&e->cfg, o->config);
    e->sink = o->sink;
    e->sink_ctx = o->sink_ctx;
    metric_buf_init(&e->work);
    e->nslots = e->cfg.njobs;
    e->slots = xcalloc(e->nslots ? e->nslots : 1, sizeof(*e->slots));
    int64_t now = util_now_ms();
    for (size_t i = 0; i < e->nslots; i++) {
        e->slots[i].job = &e->cfg.jobs[i];
        e->slots[i].next_due_ms = now; /* first run at once */
    }
    if (pipe2(e->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("exec: pipe: %s", strerror(errno));
        abort();
    }
    return e;
}

void exec_free(struct exec *e)
{
    if (!e)
        return;
    exec_stop(e);
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i].running)
            exec__child_release(&e->slots[i].child);
    free(e->slots);
    close(e->wake[0]);
    close(e->wake[1]);
    metric_buf_release(&e->work);
    exec_config_release(&e->cfg);
    free(e);
}

/* ---- one run ---- */

static void meta(struct metric_buf *b, const char *name, const char *help, enum metric_type t,
                 double v, const char *job)
{
    metric_fam(b, name, help, t);
    metric_add1(b, v, "job", job);
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct metric_label *)a)->name, ((const struct metric_label *)b)->name);
}

/* The output as exposition into b, each sample with job=<name>. 0, or -1 with err. */
static int parse_output(struct slot *s, struct metric_buf *b, size_t *nsamples, char *err,
                        size_t errlen)
{
    struct expfmt p;
    struct expfmt_sample e;
    struct metric_label l[METRIC_MAX_LABELS];
    char prev[EXPFMT_MAX_NAME + 1] = "";
    int r, rc = 0;
    expfmt_init(&p, s->child.output.buf, s->child.output.len, EXPFMT_TEXT);
    while ((r = expfmt_next(&p, &e, err, errlen)) != 0) {
        if (r < 0) {
            rc = -1;
            break;
        }
        size_t n = 0;
        for (size_t i = 0; i < e.nlabels && n < METRIC_MAX_LABELS; i++) {
            const char *name = e.labels[i].name;
            if ((name[0] == '_' && name[1] == '_') || !e.labels[i].value[0])
                continue;
            l[n++] = (struct metric_label){strcmp(name, "job") == 0 ? "exported_job" : name,
                                           e.labels[i].value};
        }
        if (n + 1 > METRIC_MAX_LABELS) {
            snprintf(err, errlen, "%u: more than %d labels with job", p.line,
                     METRIC_MAX_LABELS - 1);
            rc = -1;
            break;
        }
        l[n++] = (struct metric_label){"job", s->job->job};
        qsort(l, n, sizeof(l[0]), cmp_label);
        if (strcmp(prev, e.name) != 0) {
            metric_fam(b, e.name, e.help ? e.help : "", expfmt_metric_type(&e));
            snprintf(prev, sizeof(prev), "%s", e.name);
        }
        metric_add(b, e.value, n, l);
        (*nsamples)++;
    }
    expfmt_release(&p);
    return rc;
}

static void start_run(struct exec *e, struct slot *s, int64_t now_ms)
{
    char err[256];
    s->start_ms = now_ms;
    s->start_ns = util_mono_ns();
    if (exec__child_start(&s->child, s->job->argv, s->job->output_limit,
                          s->start_ns + s->job->timeout_ms * 1000000, err, sizeof(err)) < 0) {
        /* Reported as a finished run that failed to start. */
        metric_buf_reset(&e->work, now_ms);
        s->errors[R_SPAWN]++;
        if (!s->failing)
            log_warn("exec: job %s: %s", s->job->job, err);
        s->failing = 1;
        meta(&e->work, "sitrep_exec_success", "1 if the command's last run succeeded.",
             METRIC_GAUGE, 0, s->job->job);
        if (e->sink)
            e->sink(e->sink_ctx, &e->work);
        return;
    }
    s->running = 1;
}

static void finish_run(struct exec *e, struct slot *s)
{
    struct exec__child *c = &s->child;
    double dur = (double)(util_mono_ns() - s->start_ns) / 1e9;
    int64_t ts = s->start_ms > s->last_ts_ms ? s->start_ms : s->last_ts_ms + 1;
    s->last_ts_ms = ts;
    char err[512] = "";
    enum reason why = R_N;
    int code = -1;
    size_t nsamples = 0;
    metric_buf_reset(&e->work, ts);
    if (c->end == EXEC__TIMEOUT) {
        why = R_TIMEOUT;
        snprintf(err, sizeof(err), "killed after the timeout (%lld ms)", s->job->timeout_ms);
    } else if (c->end == EXEC__OVER_LIMIT) {
        why = R_OUTPUT_LIMIT;
        snprintf(err, sizeof(err), "killed: output over output_limit (%lld bytes)",
                 s->job->output_limit);
    } else if (WIFSIGNALED(c->status)) {
        why = R_SIGNAL;
        snprintf(err, sizeof(err), "killed by signal %d", WTERMSIG(c->status));
    } else if ((code = WEXITSTATUS(c->status)) != 0) {
        why = R_EXIT;
        snprintf(err, sizeof(err), "exit status %d", code);
    } else {
        struct metric_mark m;
        metric_buf_mark(&e->work, &m);
        char perr[256];
        if (parse_output(s, &e->work, &nsamples, perr, sizeof(perr)) < 0) {
            metric_buf_rollback(&e->work, &m); /* a failed run keeps none of its samples */
            why = R_PARSE;
            nsamples = 0;
            snprintf(err, sizeof(err), "bad exposition at line %s", perr);
        }
    }
    if (why != R_N)
        s->errors[why]++;
    meta(&e->work, "sitrep_exec_success", "1 if the command's last run succeeded.", METRIC_GAUGE,
         why == R_N, s->job->job);
    meta(&e->work, "sitrep_exec_duration_seconds", "How long the command's last run took.",
         METRIC_GAUGE, dur, s->job->job);
    meta(&e->work, "sitrep_exec_samples", "Samples the command's last run gave.", METRIC_GAUGE,
         (double)nsamples, s->job->job);
    meta(&e->work, "sitrep_exec_exit_code", "Exit status of the last run (-1: killed).",
         METRIC_GAUGE, code, s->job->job);
    metric_fam(&e->work, "sitrep_exec_errors_total", "Failed runs, by reason.", METRIC_COUNTER);
    for (int r = 0; r < R_N; r++)
        metric_add2(&e->work, (double)s->errors[r], "job", s->job->job, "reason", reason_names[r]);
    if (e->sink)
        e->sink(e->sink_ctx, &e->work);
    if (why != R_N && !s->failing) {
        size_t n = strcspn(c->errhead, "\n");
        log_warn("exec: job %s: %s%s%.*s", s->job->job, err, n ? "; stderr: " : "", (int)n,
                 c->errhead);
    } else if (why == R_N && s->failing) {
        log_info("exec: job %s succeeds again", s->job->job);
    }
    s->failing = why != R_N;
    exec__child_release(c);
    s->running = 0;
}

/* Poll every running command's pipes (and the wake pipe) for at most wait_ms; finish the done. */
static void step(struct exec *e, int wait_ms)
{
    struct pollfd pf[2 * 64 + 1];
    size_t n = 0;
    int unreaped = 0;
    pf[n++] = (struct pollfd){.fd = e->wake[0], .events = POLLIN};
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i].running) {
            size_t k = n + 2 <= ARRAY_SIZE(pf) ? exec__child_fds(&e->slots[i].child, pf + n) : 0;
            unreaped |= k == 0;
            n += k;
            int64_t left = (e->slots[i].child.deadline_ns - util_mono_ns()) / 1000000 + 1;
            if (left < wait_ms)
                wait_ms = left < 0 ? 0 : (int)left;
        }
    if (unreaped && wait_ms > 20) /* pipes closed, not exited yet: look again soon */
        wait_ms = 20;
    poll(pf, n, wait_ms);
    char drop[64];
    while (read(e->wake[0], drop, sizeof(drop)) > 0)
        ;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i].running && exec__child_step(&e->slots[i].child))
            finish_run(e, &e->slots[i]);
}

void exec_run_once(struct exec *e)
{
    int64_t now = util_now_ms();
    for (size_t i = 0; i < e->nslots; i++)
        if (!e->slots[i].running)
            start_run(e, &e->slots[i], now);
    for (;;) {
        int any = 0;
        for (size_t i = 0; i < e->nslots; i++)
            any |= e->slots[i].running;
        if (!any)
            break;
        step(e, 100);
    }
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    struct exec *e = arg;
    while (!atomic_load(&e->stop)) {
        int64_t now = util_now_ms(), next = now + 1000;
        for (size_t i = 0; i < e->nslots; i++) {
            struct slot *s = &e->slots[i];
            int64_t iv = s->job->interval_ms;
            if (now >= s->next_due_ms) {
                if (!s->running) /* a run still going is not doubled */
                    start_run(e, s, now);
                s->next_due_ms += iv;
                if (s->next_due_ms <= now) /* overran: skip, never queue */
                    s->next_due_ms += (now - s->next_due_ms) / iv * iv + iv;
            }
            if (s->next_due_ms < next)
                next = s->next_due_ms;
        }
        int64_t wait = next - util_now_ms();
        step(e, wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait);
    }
    return NULL;
}

int exec_start(struct exec *e)
{
    if (!e->nslots || e->running)
        return 0;
    atomic_store(&e->stop, 0);
    int rc = pthread_create(&e->thread, NULL, run, e);
    if (rc != 0)
        return log_error("exec: cannot start thread: %s", strerror(rc));
    e->running = 1;
    return 0;
}

void exec_stop(struct exec *e)
{
    if (!e || !e->running)
        return;
    atomic_store(&e->stop, 1);
    ssize_t w = write(e->wake[1], "x", 1);
    (void)w;
    pthread_join(e->thread, NULL);
    e->running = 0;
}
