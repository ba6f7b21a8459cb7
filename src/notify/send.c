/*
 * send.c: the real transports behind the outbox. HTTP POSTs (webhook,
 * Slack-compatible webhooks, a forwarding Alertmanager) and SMTP mail go
 * through libcurl with per-attempt timeouts; exec runs a command with
 * posix_spawn, the notification on its stdin and in its environment, kills
 * its process group at the timeout. Each returns whether the attempt
 * succeeded, should be retried, or failed for good.
 */
#include "notify/notify_internal.h"
#include "util/banned.h"
#include "util/log.h"
#include "util/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SITREP_VERSION
#define SITREP_VERSION "dev"
#endif

#define MAX_RESPONSE 2048 /* bytes of a response or command output kept for messages */
#define MAX_ENV_BYTES                                                                              \
    100000 /* SITREP_NOTIFICATION only below this (Linux caps one string at 128 KiB) */
#define EXIT_TEMPFAIL 75 /* sysexits.h EX_TEMPFAIL: the command asks to be retried */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

int notify__send_init(void)
{
    pthread_once(&curl_once, curl_init_once);
    return curl_ok ? 0 : log_error("notify: libcurl failed to initialise");
}

struct capture {
    char buf[MAX_RESPONSE + 1];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct capture *c = ctx;
    size_t n = size * nmemb, room = MAX_RESPONSE - c->len;
    memcpy(c->buf + c->len, p, n < room ? n : room);
    c->len += n < room ? n : room;
    c->buf[c->len] = '\0';
    return n; /* the rest is read and dropped */
}

/* One line of text for a message: control characters turned into spaces. */
static void flatten(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            *s = ' ';
}

static int tls_options(CURL *c, const struct notify_http *h)
{
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->cert_file)
        curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert_file);
    if (h->key_file)
        curl_easy_setopt(c, CURLOPT_SSLKEY, h->key_file);
    if (h->insecure_skip_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

static enum notify_result http_post(const struct notify_delivery *d, char *err, size_t errcap)
{
    const struct notify_integration *it = d->integration;
    const struct notify_http *h = &it->http;
    char *url = it->url_file ? notify__read_secret(it->url_file) : xstrdup(it->url);
    char *token = h->bearer_token_file ? notify__read_secret(h->bearer_token_file)
                  : h->bearer_token    ? xstrdup(h->bearer_token)
                                       : NULL;
    char *pass = h->basic_password_file ? notify__read_secret(h->basic_password_file)
                 : h->basic_password    ? xstrdup(h->basic_password)
                                        : NULL;
    enum notify_result res = NOTIFY_RETRY;
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    if (!url || (h->bearer_token_file && !token) || (h->basic_password_file && !pass)) {
        snprintf(err, errcap, "cannot read a file named in the config (see the log)");
        goto out;
    }
    if (it->kind == NOTIFY_ALERTMANAGER) {
        /* url is the Alertmanager's base URL. */
        size_t n = strlen(url);
        while (n && url[n - 1] == '/')
            url[--n] = '\0';
        struct sbuf u;
        sbuf_init(&u, 0);
        sbuf_addf(&u, "%s/api/v2/alerts", url);
        free(url);
        url = notify__sbuf_take(&u);
    }
    if (!(c = curl_easy_init())) {
        snprintf(err, errcap, "curl_easy_init failed");
        goto out;
    }
    struct capture resp = {.len = 0};
    char cerr[CURL_ERROR_SIZE] = "";
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (token) {
        struct sbuf a;
        sbuf_init(&a, 0);
        sbuf_addf(&a, "Authorization: %s %s", h->auth_type ? h->auth_type : "Bearer", token);
        hdrs = curl_slist_append(hdrs, a.buf);
        sbuf_release(&a);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sitrep/" SITREP_VERSION);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)it->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (h->follow_redirects) {
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
    }
    if (h->basic_user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, h->basic_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pass ? pass : "");
    }
    if (h->proxy_url)
        curl_easy_setopt(c, CURLOPT_PROXY, h->proxy_url);
    tls_options(c, h);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(err, errcap, "POST %s: %s", it->url_file ? "(url_file)" : url,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
        res = NOTIFY_SENT;
        goto out;
    }
    flatten(resp.buf);
    snprintf(err, errcap, "POST %s: HTTP %ld: %.300s", it->url_file ? "(url_file)" : url, code,
             resp.buf);
    /* Server trouble and throttling pass; any other answer will not change. */
    res = code >= 500 || code == 429 || code == 408 ? NOTIFY_RETRY : NOTIFY_REJECTED;
out:
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    free(url);
    free(token);
    free(pass);
    return res;
}

/* ---- email ---- */

struct upload {
    const char *p;
    size_t left;
};

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ctx)
{
    struct upload *u = ctx;
    size_t n = size * nmemb;
    if (n > u->left)
        n = u->left;
    memcpy(buf, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

/* The bare address of "Name <a@b>" or "a@b", into out. */
static void mail_address(const char *s, size_t len, char *out, size_t cap)
{
    const char *lt = memchr(s, '<', len), *gt = lt ? memchr(lt, '>', len - (size_t)(lt - s)) : NULL;
    if (lt && gt) {
        s = lt + 1;
        len = (size_t)(gt - s);
    }
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    snprintf(out, cap, "<%.*s>", (int)len, s);
}

static enum notify_result send_email(const struct notify_delivery *d, char *err, size_t errcap)
{
    const struct notify_integration *it = d->integration;
    char *pass = it->auth_password_file ? notify__read_secret(it->auth_password_file)
                 : it->auth_password    ? xstrdup(it->auth_password)
                                        : NULL;
    if (it->auth_password_file && !pass) {
        snprintf(err, errcap, "cannot read auth_password_file (see the log)");
        return NOTIFY_RETRY;
    }
    const char *colon = strrchr(it->smarthost, ':');
    int port = atoi(colon + 1);
    struct sbuf url;
    sbuf_init(&url, 0);
    /* Port 465 is TLS from the first byte; elsewhere STARTTLS. The URL path
     * is the name curl says in EHLO. */
    sbuf_addf(&url, "%s://%.*s:%d/%s", port == 465 ? "smtps" : "smtp", (int)(colon - it->smarthost),
              it->smarthost, port, it->hello ? it->hello : "localhost");
    char from[512];
    mail_address(it->from, strlen(it->from), from, sizeof(from));
    struct curl_slist *rcpt = NULL;
    for (const char *p = it->to; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char addr[512];
        mail_address(p, len, addr, sizeof(addr));
        if (strcmp(addr, "<>") != 0)
            rcpt = curl_slist_append(rcpt, addr);
        p += len + (comma ? 1 : 0);
    }
    enum notify_result res = NOTIFY_RETRY;
    CURL *c = curl_easy_init();
    char cerr[CURL_ERROR_SIZE] = "";
    struct upload up = {d->body, d->body_len};
    if (!c) {
        snprintf(err, errcap, "curl_easy_init failed");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url.buf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->body_len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)it->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (port != 465)
        curl_easy_setopt(c, CURLOPT_USE_SSL,
                         (long)(it->require_tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    if (it->auth_username && *it->auth_username) {
        curl_easy_setopt(c, CURLOPT_USERNAME, it->auth_username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pass ? pass : "");
        if (it->auth_identity && *it->auth_identity)
            curl_easy_setopt(c, CURLOPT_SASL_AUTHZID, it->auth_identity);
    }
    tls_options(c, &it->http);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        res = NOTIFY_SENT;
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    snprintf(err, errcap, "SMTP %s: %s%s%ld", it->smarthost,
             cerr[0] ? cerr : curl_easy_strerror(rc), code ? "; last reply " : "", code);
    /* A 5xx reply (unknown recipient, relay denied, bad login) will not change by itself. */
    res = code >= 500 && code < 600 ? NOTIFY_REJECTED : NOTIFY_RETRY;
out:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(rcpt);
    sbuf_release(&url);
    free(pass);
    return res;
}

/* ---- exec ---- */

extern char **environ;

static char *env_pair(const char *name, const char *value)
{
    struct sbuf b;
    sbuf_init(&b, 0);
    sbuf_addf(&b, "%s=%s", name, value);
    return notify__sbuf_take(&b);
}

static int env_overridden(const char *entry, const struct notify_integration *it)
{
    size_t n = strcspn(entry, "=");
    if (n >= 7 && strncmp(entry, "SITREP_", 7) == 0)
        return 1;
    for (size_t i = 0; i < it->nenv; i++)
        if (strlen(it->env[i].name) == n && strncmp(entry, it->env[i].name, n) == 0)
            return 1;
    return 0;
}

/* Wait up to ms for pid to exit. 1 and *status if it did, 0 if not. */
static int wait_exit(pid_t pid, int ms, int *status)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 1; /* not ours to wait for any more */
        if (waited >= ms)
            return 0;
        usleep(10000);
    }
}

static enum notify_result run_exec(const struct notify_delivery *d, char *err, size_t errcap)
{
    const struct notify_integration *it = d->integration;
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    enum notify_result res = NOTIFY_RETRY;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        goto close_pipes;
    }
    size_t nenv = 0;
    for (char **e = environ; *e; e++)
        nenv++;
    char **envp = xcalloc(nenv + it->nenv + 8, sizeof(*envp));
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (!env_overridden(*e, it))
            envp[k++] = xstrdup(*e);
    for (size_t i = 0; i < it->nenv; i++)
        envp[k++] = env_pair(it->env[i].name, it->env[i].value);
    envp[k++] = env_pair("SITREP_RECEIVER", d->receiver);
    envp[k++] = env_pair("SITREP_STATUS", d->status);
    envp[k++] = env_pair("SITREP_GROUP_KEY", d->group_key);
    char attempt[16];
    snprintf(attempt, sizeof(attempt), "%u", d->attempt);
    envp[k++] = env_pair("SITREP_ATTEMPT", attempt);
    if (d->body_len < MAX_ENV_BYTES)
        envp[k++] = env_pair("SITREP_NOTIFICATION", d->body);
    else
        envp[k++] = env_pair("SITREP_NOTIFICATION_TRUNCATED", "1");

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    /* The daemon blocks and ignores signals the command must not inherit. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0); /* its own group, so a timeout kills its children too */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawnp(&pid, it->argv[0], &fa, &attr, it->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (size_t i = 0; i < k; i++)
        free(envp[i]);
    free(envp);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (rc != 0) {
        snprintf(err, errcap, "cannot run %s: %s", it->argv[0], strerror(rc));
        res = NOTIFY_REJECTED;
        goto close_pipes;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    /* Feed stdin and drain the output together, so neither side blocks on a
     * full pipe. SIGPIPE (a command that exits without reading) is blocked
     * on this thread and consumed: EPIPE from write says the same. */
    sigset_t pipe_set, old_mask;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    struct capture cap = {.len = 0};
    size_t sent = 0;
    int64_t deadline = util_mono_ns() + (int64_t)it->timeout_ms * 1000000;
    int status = 0, exited = 0, timed_out = 0;
    while (!exited) {
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        int np = in[1] >= 0 ? 2 : 1;
        if (out[0] < 0)
            p[0].fd = -1;
        int64_t left = (deadline - util_mono_ns()) / 1000000;
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        poll(p, (nfds_t)np, left > 50 ? 50 : (int)left);
        if (out[0] >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[4096];
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r > 0)
                on_body(buf, 1, (size_t)r, &cap);
            else if (r == 0 || errno != EAGAIN) {
                close(out[0]);
                out[0] = -1;
            }
        }
        if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], d->body + sent, d->body_len - sent);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN) || sent == d->body_len) {
                close(in[1]); /* EOF: the command may read to the end */
                in[1] = -1;
            }
        }
        exited = wait_exit(pid, 0, &status);
    }
    /* What the command wrote just before it exited (children may hold the pipe: don't wait). */
    while (exited && out[0] >= 0) {
        char buf[4096];
        ssize_t r = read(out[0], buf, sizeof(buf));
        if (r <= 0)
            break;
        on_body(buf, 1, (size_t)r, &cap);
    }
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (timed_out) {
        kill(-pid, SIGTERM);
        if (!wait_exit(pid, 2000, &status)) {
            kill(-pid, SIGKILL);
            wait_exit(pid, 5000, &status);
        }
        flatten(cap.buf);
        snprintf(err, errcap, "%s: timed out after %lldms; killed: %.300s", it->argv[0],
                 it->timeout_ms, cap.buf);
        res = NOTIFY_RETRY;
        goto close_pipes;
    }
    flatten(cap.buf);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res = NOTIFY_SENT;
        if (cap.len)
            log_info("notify: %s: %s said: %.300s", d->receiver, it->argv[0], cap.buf);
    } else if (WIFEXITED(status)) {
        snprintf(err, errcap, "%s exited with %d: %.300s", it->argv[0], WEXITSTATUS(status),
                 cap.buf);
        res = WEXITSTATUS(status) == EXIT_TEMPFAIL ? NOTIFY_RETRY : NOTIFY_REJECTED;
    } else {
        snprintf(err, errcap, "%s killed by signal %d: %.300s", it->argv[0],
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0, cap.buf);
        res = NOTIFY_RETRY;
    }
close_pipes:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    return res;
}

enum notify_result notify__send(void *ctx, const struct notify_delivery *d, char *err,
                                size_t errcap)
{
    (void)ctx;
    switch (d->integration->kind) {
    case NOTIFY_WEBHOOK:
    case NOTIFY_SLACK:
    case NOTIFY_ALERTMANAGER:
        return http_post(d, err, errcap);
    case NOTIFY_EMAIL:
        return send_email(d, err, errcap);
    case NOTIFY_EXEC:
        return run_exec(d, err, errcap);
    }
    snprintf(err, errcap, "unknown integration kind");
    return NOTIFY_REJECTED;
}
