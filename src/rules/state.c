/*
 * state.c: alert state across restarts. After each evaluation that changed
 * something, every alert (labels, annotations, state, activeAt, firedAt,
 * resolvedAt, when it was last sent, flapping history) is written to
 * data_dir/rules.state (write to a temporary file, fsync, rename: a crash
 * leaves the old or the new file, never half of one). At start the file is
 * read back into the rules it names, so a firing alert stays firing without
 * a new notification and a pending alert keeps its `for` progress (the time
 * sitrep was down does not count towards `for`, as in Prometheus's for-state
 * restore). State older than outage_tolerance is ignored.
 *
 * Format: a header line "sitrep-rules-state 1 SAVED_MS", then one line per
 * alert of tab-separated fields, strings percent-escaped.
 */
#include "rules/rules_internal.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_MAX_LINE (256 << 10)
#define STATE_FIELDS   16

static void esc(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '%' || c == '=' || c == ',' || c == 0x7f)
            sbuf_addf(b, "%%%02X", c);
        else
            sbuf_addc(b, (char)c);
    }
}

/* Decode %XX in place. */
static void unesc(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        unsigned v;
        if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

static void put_labels(struct sbuf *b, const struct rules_label *l, size_t n)
{
    if (!n)
        sbuf_addc(b, '-');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_addc(b, ',');
        esc(b, l[i].name);
        sbuf_addc(b, '=');
        esc(b, l[i].value);
    }
}

static int get_labels(char *s, struct rules_label **out, size_t *n)
{
    if (strcmp(s, "-") == 0)
        return 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || *n >= 128)
            return -1;
        *eq = '\0';
        unesc(tok);
        unesc(eq + 1);
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[*n].name = xstrdup(tok);
        (*out)[*n].value = xstrdup(eq + 1);
        (*n)++;
    }
    return 0;
}

int rules__state_save(struct rules *r)
{
    if (!r->state_path)
        return 0;
    struct sbuf b;
    sbuf_init(&b, 0);
    pthread_mutex_lock(&r->mu);
    sbuf_addf(&b, "sitrep-rules-state 1 %" PRId64 "\n", rules__now(r));
    for (size_t g = 0; g < r->set->ngroups; g++) {
        const struct rules__group *gr = &r->set->groups[g];
        for (size_t i = 0; i < gr->nrules; i++) {
            const struct rules__rule *ru = &gr->rules[i];
            for (size_t k = 0; k < ru->nalerts; k++) {
                const struct rules__alert *a = ru->alerts[k];
                sbuf_adds(&b, "A\t");
                esc(&b, gr->file);
                sbuf_addc(&b, '\t');
                esc(&b, gr->name);
                sbuf_addc(&b, '\t');
                esc(&b, ru->name);
                sbuf_addf(&b,
                          "\t%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
                          "\t%d\t%u\t%" PRId64 "\t",
                          (int)a->state, a->active_at, a->fired_at, a->resolved_at, a->last_sent,
                          a->flapping, a->cycles, a->last_cycle);
                size_t kept = a->nresolves < RULES_FLAP_HISTORY ? a->nresolves : RULES_FLAP_HISTORY;
                if (!kept)
                    sbuf_addc(&b, '-');
                for (size_t j = 0; j < kept; j++)
                    sbuf_addf(&b, "%s%" PRId64, j ? "," : "", a->resolves[j]);
                sbuf_addc(&b, '\t');
                put_labels(&b, a->labels, a->nlabels);
                sbuf_addc(&b, '\t');
                put_labels(&b, a->ann, a->nann);
                sbuf_addc(&b, '\n');
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->state_path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("rules: cannot write %s: %s", tmp, strerror(errno));
    } else {
        ssize_t w = write(fd, b.buf, b.len);
        int ok = w == (ssize_t)b.len && fdatasync(fd) == 0;
        close(fd);
        if (!ok || rename(tmp, r->state_path) < 0)
            log_error("rules: cannot write %s: %s", r->state_path, strerror(errno));
        else
            rc = 0;
    }
    sbuf_release(&b);
    return rc;
}

static struct rules__rule *find_rule(struct rules_set *set, const char *file, const char *group,
                                     const char *name)
{
    for (size_t g = 0; g < set->ngroups; g++) {
        struct rules__group *gr = &set->groups[g];
        if (strcmp(gr->file, file) != 0 || strcmp(gr->name, group) != 0)
            continue;
        for (size_t i = 0; i < gr->nrules; i++)
            if (gr->rules[i].alerting && strcmp(gr->rules[i].name, name) == 0)
                return &gr->rules[i];
    }
    return NULL;
}

void rules__state_restore(struct rules *r, struct rules_set *set)
{
    if (!r->state_path)
        return;
    FILE *f = fopen(r->state_path, "r");
    if (!f) {
        if (errno != ENOENT)
            log_warn("rules: cannot read %s: %s", r->state_path, strerror(errno));
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t saved = 0, now = rules__now(r);
    int64_t tolerance = r->o.outage_tolerance_ms > 0 ? r->o.outage_tolerance_ms : 3600000;
    size_t restored = 0, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (len > STATE_MAX_LINE)
            continue;
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (lineno == 1) {
            if (sscanf(line, "sitrep-rules-state 1 %" SCNd64, &saved) != 1) {
                log_warn("rules: %s: not a state file; ignored", r->state_path);
                break;
            }
            if (now - saved > tolerance) {
                log_info("rules: alert state in %s is older than %lld s; not restored",
                         r->state_path, (long long)(tolerance / 1000));
                break;
            }
            continue;
        }
        char *fld[STATE_FIELDS];
        size_t nf = 0;
        for (char *save = NULL, *tok = strtok_r(line, "\t", &save); tok && nf < STATE_FIELDS;
             tok = strtok_r(NULL, "\t", &save))
            fld[nf++] = tok;
        if (nf != 15 || strcmp(fld[0], "A") != 0) {
            log_warn("rules: %s:%zu: malformed; skipped", r->state_path, lineno);
            continue;
        }
        unesc(fld[1]);
        unesc(fld[2]);
        unesc(fld[3]);
        struct rules__rule *ru = find_rule(set, fld[1], fld[2], fld[3]);
        if (!ru || ru->nalerts >= RULES_MAX_ALERTS_PER_RULE)
            continue; /* the rule is gone: so is its alert */
        struct rules__alert *a = xcalloc(1, sizeof(*a));
        int state = atoi(fld[4]);
        a->state = state == RULES_FIRING    ? RULES_FIRING
                   : state == RULES_PENDING ? RULES_PENDING
                                            : RULES_INACTIVE;
        a->active_at = strtoll(fld[5], NULL, 10);
        a->fired_at = strtoll(fld[6], NULL, 10);
        a->resolved_at = strtoll(fld[7], NULL, 10);
        a->last_sent = strtoll(fld[8], NULL, 10);
        a->flapping = atoi(fld[9]) != 0;
        a->cycles = (unsigned)strtoul(fld[10], NULL, 10);
        a->last_cycle = strtoll(fld[11], NULL, 10);
        if (strcmp(fld[12], "-") != 0)
            for (char *save = NULL, *tok = strtok_r(fld[12], ",", &save);
                 tok && a->nresolves < RULES_FLAP_HISTORY; tok = strtok_r(NULL, ",", &save))
                a->resolves[a->nresolves++] = strtoll(tok, NULL, 10);
        if (get_labels(fld[13], &a->labels, &a->nlabels) < 0 ||
            get_labels(fld[14], &a->ann, &a->nann) < 0 || !a->nlabels) {
            log_warn("rules: %s:%zu: malformed labels; skipped", r->state_path, lineno);
            rules__alert_free(a);
            continue;
        }
        a->fp = rules__labels_fp(a->labels, a->nlabels);
        if (a->state == RULES_PENDING)
            a->active_at += now - saved; /* downtime does not count towards `for` */
        a->written = a->state;
        a->was_present = a->state != RULES_INACTIVE;
        ru->alerts = xrealloc(ru->alerts, (ru->nalerts + 1) * sizeof(*ru->alerts));
        ru->alerts[ru->nalerts++] = a;
        restored++;
    }
    free(line);
    fclose(f);
    if (restored)
        log_info("rules: restored %zu alerts from %s", restored, r->state_path);
}
