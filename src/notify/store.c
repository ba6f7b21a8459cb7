/*
 * store.c: the pipeline's durable state in one SQLite file
 * (data_dir/notify.db): the outbox of pending notifications (payload
 * included, so a restart resends exactly what was due), silences, and the
 * notification log that keeps a restart from re-paging. WAL mode with
 * synchronous=NORMAL: a crash of the process loses nothing committed; a
 * power cut may lose the last moments, which at-least-once delivery
 * tolerates. Callers hold the pipeline's mutex, so one connection serves all.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 1

enum {
    ST_OUT_ADD,
    ST_OUT_UPDATE,
    ST_OUT_DEL,
    ST_OUT_BODY,
    ST_OUT_LOAD,
    ST_SIL_PUT,
    ST_SIL_DEL,
    ST_SIL_LOAD,
    ST_NF_PUT,
    ST_NF_DEL,
    ST_NF_LOAD,
    ST_N
};

static const char *const sql[ST_N] = {
    [ST_OUT_ADD] = "INSERT INTO outbox(receiver, idx, kind, group_key, status, created_ms, "
                   "next_ms, attempts, body) VALUES(?,?,?,?,?,?,?,?,?)",
    [ST_OUT_UPDATE] = "UPDATE outbox SET next_ms = ?, attempts = ? WHERE id = ?",
    [ST_OUT_DEL] = "DELETE FROM outbox WHERE id = ?",
    [ST_OUT_BODY] = "SELECT body FROM outbox WHERE id = ?",
    [ST_OUT_LOAD] = "SELECT id, receiver, idx, kind, group_key, status, created_ms, next_ms, "
                    "attempts FROM outbox ORDER BY id",
    [ST_SIL_PUT] = "INSERT OR REPLACE INTO silences(id, matchers, starts_ms, ends_ms, "
                   "updated_ms, created_by, comment) VALUES(?,?,?,?,?,?,?)",
    [ST_SIL_DEL] = "DELETE FROM silences WHERE id = ?",
    [ST_SIL_LOAD] = "SELECT id, matchers, starts_ms, ends_ms, updated_ms, created_by, comment "
                    "FROM silences",
    [ST_NF_PUT] = "INSERT OR REPLACE INTO nflog(key, ts_ms, expires_ms, firing, resolved) "
                  "VALUES(?,?,?,?,?)",
    [ST_NF_DEL] = "DELETE FROM nflog WHERE key = ?",
    [ST_NF_LOAD] = "SELECT key, ts_ms, expires_ms, firing, resolved FROM nflog",
};

struct notify__store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    char *path;
};

static int db_error(struct notify__store *s, const char *what)
{
    return log_error("notify: %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(struct notify__store *s, const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, q, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("notify: %s: %s: %s", s->path, q, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

struct notify__store *notify__store_open(const char *dir)
{
    struct notify__store *s = xcalloc(1, sizeof(*s));
    struct sbuf p;
    sbuf_init(&p, 4096);
    sbuf_addf(&p, "%s/notify.db", dir);
    s->path = notify__sbuf_take(&p);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        log_error("notify: cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    /* Payloads carry alert contents: readable by the owner only. */
    int fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("notify: cannot open %s: %s", s->path, strerror(errno));
        goto fail;
    }
    close(fd);
    if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        db_error(s, "open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") < 0)
        goto fail;
    if (exec(s, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);"
                "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " receiver TEXT NOT NULL, idx INTEGER NOT NULL, kind INTEGER NOT NULL,"
                " group_key TEXT NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,"
                " next_ms INTEGER NOT NULL, attempts INTEGER NOT NULL, body BLOB NOT NULL);"
                "CREATE TABLE IF NOT EXISTS silences(id TEXT PRIMARY KEY, matchers TEXT NOT NULL,"
                " starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL,"
                " updated_ms INTEGER NOT NULL, created_by TEXT NOT NULL,"
                " comment TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS nflog(key TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL,"
                " expires_ms INTEGER NOT NULL, firing BLOB, resolved BLOB);"
                "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', 1);") < 0)
        goto fail;
    sqlite3_stmt *v;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &v, NULL) !=
        SQLITE_OK) {
        db_error(s, "schema");
        goto fail;
    }
    int version = sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int(v, 0) : 0;
    sqlite3_finalize(v);
    if (version != SCHEMA_VERSION) {
        log_error("notify: %s has schema version %d; this sitrep knows %d", s->path, version,
                  SCHEMA_VERSION);
        goto fail;
    }
    for (int i = 0; i < ST_N; i++)
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &s->st[i], NULL) != SQLITE_OK) {
            db_error(s, sql[i]);
            goto fail;
        }
    return s;
fail:
    notify__store_close(s);
    return NULL;
}

void notify__store_close(struct notify__store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

int notify__store_begin(struct notify__store *s)
{
    return exec(s, "BEGIN");
}

int notify__store_commit(struct notify__store *s)
{
    return exec(s, "COMMIT");
}

/* Step a write statement and reset it. 0 or -1 (logged). */
static int run(struct notify__store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_error(s, what);
    return 0;
}

int notify__store_outbox_add(struct notify__store *s, struct notify__entry *e, const char *body,
                             size_t len)
{
    sqlite3_stmt *st = s->st[ST_OUT_ADD];
    sqlite3_bind_text(st, 1, e->receiver, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)e->index);
    sqlite3_bind_int(st, 3, (int)e->kind);
    sqlite3_bind_text(st, 4, e->group_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, e->created_ms);
    sqlite3_bind_int64(st, 7, e->next_ms);
    sqlite3_bind_int(st, 8, (int)e->attempts);
    sqlite3_bind_blob(st, 9, body, (int)len, SQLITE_STATIC);
    if (run(s, st, "outbox insert") < 0)
        return -1;
    e->id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int notify__store_outbox_update(struct notify__store *s, const struct notify__entry *e)
{
    sqlite3_stmt *st = s->st[ST_OUT_UPDATE];
    sqlite3_bind_int64(st, 1, e->next_ms);
    sqlite3_bind_int(st, 2, (int)e->attempts);
    sqlite3_bind_int64(st, 3, e->id);
    return run(s, st, "outbox update");
}

int notify__store_outbox_del(struct notify__store *s, int64_t id)
{
    sqlite3_stmt *st = s->st[ST_OUT_DEL];
    sqlite3_bind_int64(st, 1, id);
    return run(s, st, "outbox delete");
}

char *notify__store_outbox_body(struct notify__store *s, int64_t id, size_t *len)
{
    sqlite3_stmt *st = s->st[ST_OUT_BODY];
    sqlite3_bind_int64(st, 1, id);
    char *body = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        const void *b = sqlite3_column_blob(st, 0);
        body = xmalloc((size_t)n + 1);
        if (n)
            memcpy(body, b, (size_t)n);
        body[n] = '\0';
        *len = (size_t)n;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return body;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

int notify__store_outbox_load(struct notify__store *s,
                              void (*fn)(void *ctx, struct notify__entry *e), void *ctx)
{
    sqlite3_stmt *st = s->st[ST_OUT_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct notify__entry *e = xcalloc(1, sizeof(*e));
        e->id = sqlite3_column_int64(st, 0);
        e->receiver = xstrdup(col_text(st, 1));
        e->index = (unsigned)sqlite3_column_int(st, 2);
        e->kind = (enum notify_kind)sqlite3_column_int(st, 3);
        e->group_key = xstrdup(col_text(st, 4));
        snprintf(e->status, sizeof(e->status), "%s", col_text(st, 5));
        e->created_ms = sqlite3_column_int64(st, 6);
        e->next_ms = sqlite3_column_int64(st, 7);
        e->attempts = (unsigned)sqlite3_column_int(st, 8);
        fn(ctx, e);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_error(s, "outbox load");
    return 0;
}

/* Matchers as the API writes them: [{"name":..,"value":..,"isRegex":..,"isEqual":..}]. */
static char *matchers_json(const struct notify_matchers *ms)
{
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_addc(&b, '[');
    for (size_t i = 0; i < ms->n; i++) {
        const struct notify_matcher *m = &ms->v[i];
        sbuf_adds(&b, i ? ",{\"name\":" : "{\"name\":");
        json_str(&b, m->name);
        sbuf_adds(&b, ",\"value\":");
        json_str(&b, m->value);
        sbuf_addf(&b, ",\"isRegex\":%s,\"isEqual\":%s}",
                  m->op == NOTIFY_RE || m->op == NOTIFY_NRE ? "true" : "false",
                  m->op == NOTIFY_EQ || m->op == NOTIFY_RE ? "true" : "false");
    }
    sbuf_addc(&b, ']');
    return notify__sbuf_take(&b);
}

int notify__store_silence_put(struct notify__store *s, const struct notify__silence *sil)
{
    sqlite3_stmt *st = s->st[ST_SIL_PUT];
    char *m = matchers_json(&sil->matchers);
    sqlite3_bind_text(st, 1, sil->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sil->starts_ms);
    sqlite3_bind_int64(st, 4, sil->ends_ms);
    sqlite3_bind_int64(st, 5, sil->updated_ms);
    sqlite3_bind_text(st, 6, sil->created_by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, sil->comment, -1, SQLITE_STATIC);
    int rc = run(s, st, "silence write");
    free(m);
    return rc;
}

int notify__store_silence_del(struct notify__store *s, const char *id)
{
    sqlite3_stmt *st = s->st[ST_SIL_DEL];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return run(s, st, "silence delete");
}

static int matchers_from_json(const char *text, struct notify_matchers *ms)
{
    char err[256];
    struct notify__jv *v = notify__json_parse(text, strlen(text), err, sizeof(err));
    if (!v || v->type != NJ_ARR) {
        notify__jv_free(v);
        return -1;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct notify__jv *o = &v->items[i];
        const char *name = notify__jv_str(o, "name"), *value = notify__jv_str(o, "value");
        const struct notify__jv *re = notify__jv_get(o, "isRegex"),
                                *eq = notify__jv_get(o, "isEqual");
        if (!name || !value || !re || !eq)
            continue;
        struct notify_matcher m = {.name = xstrdup(name), .value = xstrdup(value)};
        m.op = re->b ? (eq->b ? NOTIFY_RE : NOTIFY_NRE) : (eq->b ? NOTIFY_EQ : NOTIFY_NE);
        if (notify__matcher_compile(&m, err, sizeof(err)) < 0) {
            free(m.name);
            free(m.value);
            continue;
        }
        ms->v = xrealloc(ms->v, (ms->n + 1) * sizeof(*ms->v));
        ms->v[ms->n++] = m;
    }
    notify__jv_free(v);
    return 0;
}

int notify__store_silence_load(struct notify__store *s,
                               void (*fn)(void *ctx, struct notify__silence *sil), void *ctx)
{
    sqlite3_stmt *st = s->st[ST_SIL_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct notify__silence *sil = xcalloc(1, sizeof(*sil));
        snprintf(sil->id, sizeof(sil->id), "%s", col_text(st, 0));
        if (matchers_from_json(col_text(st, 1), &sil->matchers) < 0 || !sil->matchers.n) {
            log_warn("notify: silence %s in %s has unreadable matchers; dropped", sil->id, s->path);
            notify__silence_free(sil);
            continue;
        }
        sil->starts_ms = sqlite3_column_int64(st, 2);
        sil->ends_ms = sqlite3_column_int64(st, 3);
        sil->updated_ms = sqlite3_column_int64(st, 4);
        sil->created_by = xstrdup(col_text(st, 5));
        sil->comment = xstrdup(col_text(st, 6));
        fn(ctx, sil);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_error(s, "silence load");
    return 0;
}

int notify__store_nflog_put(struct notify__store *s, const struct notify__nflog *e)
{
    sqlite3_stmt *st = s->st[ST_NF_PUT];
    sqlite3_bind_text(st, 1, e->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e->ts_ms);
    sqlite3_bind_int64(st, 3, e->expires_ms);
    /* Host byte order: the file never moves between machines of another kind. */
    sqlite3_bind_blob(st, 4, e->firing, (int)(e->nfiring * sizeof(uint64_t)), SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, e->resolved, (int)(e->nresolved * sizeof(uint64_t)), SQLITE_STATIC);
    return run(s, st, "nflog write");
}

int notify__store_nflog_del(struct notify__store *s, const char *key)
{
    sqlite3_stmt *st = s->st[ST_NF_DEL];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    return run(s, st, "nflog delete");
}

static uint64_t *col_u64s(sqlite3_stmt *st, int i, size_t *n)
{
    size_t bytes = (size_t)sqlite3_column_bytes(st, i);
    const void *b = sqlite3_column_blob(st, i);
    *n = bytes / sizeof(uint64_t);
    uint64_t *v = xmalloc((*n ? *n : 1) * sizeof(uint64_t));
    if (*n)
        memcpy(v, b, *n * sizeof(uint64_t));
    return v;
}

int notify__store_nflog_load(struct notify__store *s,
                             void (*fn)(void *ctx, struct notify__nflog *e), void *ctx)
{
    sqlite3_stmt *st = s->st[ST_NF_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct notify__nflog *e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(col_text(st, 0));
        e->ts_ms = sqlite3_column_int64(st, 1);
        e->expires_ms = sqlite3_column_int64(st, 2);
        e->firing = col_u64s(st, 3, &e->nfiring);
        e->resolved = col_u64s(st, 4, &e->nresolved);
        fn(ctx, e);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_error(s, "nflog load");
    return 0;
}
