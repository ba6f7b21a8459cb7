/*
 * notify_send_test.c: the real transports on their own: HTTP answers
 * classified as sent / retry / rejected, credentials and secret files on
 * the wire (against sitrep's own HTTP server on loopback), and exec's
 * contract: stdin and environment, exit 0 / 75 / other, timeouts that kill
 * the command's whole process group, big payloads, commands that never read.
 */
#include "testutil.h"
#include "testnet.h"
#include "http/http.h"
#include "notify/notify_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_path[256], seen_auth[256], seen_body[512];

static void h_any(void *ctx, const struct http_request *req, struct http_response *resp)
{
    (void)ctx;
    const char *auth = http_header(req, "Authorization");
    pthread_mutex_lock(&seen_mu);
    snprintf(seen_path, sizeof(seen_path), "%s", req->path);
    snprintf(seen_auth, sizeof(seen_auth), "%s", auth ? auth : "");
    snprintf(seen_body, sizeof(seen_body), "%s", req->body);
    pthread_mutex_unlock(&seen_mu);
    const char *st = strstr(req->path, "/status/");
    resp->status = st ? atoi(st + 8) : 200;
    sbuf_adds(&resp->body, "answer from the test server");
}

struct env {
    struct http_server *http;
    int port;
    char dir[128];
};

static int setup(void **state)
{
    struct env *e = xcalloc(1, sizeof(*e));
    e->port = tu_free_port();
    e->http = http_new();
    http_route(e->http, "POST", "/*", HTTP_READ, h_any, NULL);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", e->port);
    assert_int_equal(http_start(e->http, listen, NULL), 0);
    snprintf(e->dir, sizeof(e->dir), "%s", tu_tmpdir("notify-send"));
    assert_int_equal(notify__send_init(), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    http_free(e->http);
    tu_rmrf(e->dir);
    free(e);
    return 0;
}

static enum notify_result post(struct notify_integration *it, char *err, size_t cap)
{
    struct notify_delivery d = {.receiver = "r",
                                .integration = it,
                                .body = "{\"x\":1}",
                                .body_len = 7,
                                .status = "firing",
                                .group_key = "{}:{}",
                                .attempt = 1};
    return notify__send(NULL, &d, err, cap);
}

static void test_http_outcomes(void **state)
{
    struct env *e = *state;
    char url[256], err[512];
    struct notify_integration it = {.kind = NOTIFY_WEBHOOK, .timeout_ms = 5000, .url = url};
    static const struct {
        int status;
        enum notify_result want;
    } cases[] = {{200, NOTIFY_SENT},     {204, NOTIFY_SENT},    {503, NOTIFY_RETRY},
                 {500, NOTIFY_RETRY},    {429, NOTIFY_RETRY},   {408, NOTIFY_RETRY},
                 {404, NOTIFY_REJECTED}, {400, NOTIFY_REJECTED}};
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/status/%d", e->port, cases[i].status);
        enum notify_result r = post(&it, err, sizeof(err));
        if (r != cases[i].want)
            fail_msg("HTTP %d: got %d, want %d (%s)", cases[i].status, r, cases[i].want, err);
    }
    assert_non_null(strstr(err, "HTTP 400: answer from the test server"));
    assert_string_equal(seen_body, "{\"x\":1}");
    /* Nobody listening: retry. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", tu_free_port());
    assert_int_equal(post(&it, err, sizeof(err)), NOTIFY_RETRY);
    /* A timeout is a retry too (a blackhole address would take the whole timeout:
     * a listener that never answers does the same on loopback). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    it.timeout_ms = 300;
    int64_t t0 = util_mono_ns();
    assert_int_equal(post(&it, err, sizeof(err)), NOTIFY_RETRY);
    assert_true(util_mono_ns() - t0 < 3000000000LL);
    close(fd);
}

static void test_http_credentials(void **state)
{
    struct env *e = *state;
    char url[256], err[512], tokfile[256], urlfile[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", e->port);
    struct notify_integration it = {.kind = NOTIFY_WEBHOOK, .timeout_ms = 5000, .url = url};
    it.http.bearer_token = "s3cret";
    assert_int_equal(post(&it, err, sizeof(err)), NOTIFY_SENT);
    assert_string_equal(seen_auth, "Bearer s3cret");
    /* Token and URL from files, read at send time. */
    snprintf(tokfile, sizeof(tokfile), "%s/token", e->dir);
    tu_write_file(tokfile, "from-file\n");
    snprintf(urlfile, sizeof(urlfile), "%s/url", e->dir);
    char u2[256];
    snprintf(u2, sizeof(u2), "http://127.0.0.1:%d/from-url-file\n", e->port);
    tu_write_file(urlfile, u2);
    it.http.bearer_token = NULL;
    it.http.bearer_token_file = tokfile;
    it.http.auth_type = "Token";
    it.url = NULL;
    it.url_file = urlfile;
    assert_int_equal(post(&it, err, sizeof(err)), NOTIFY_SENT);
    assert_string_equal(seen_auth, "Token from-file");
    assert_string_equal(seen_path, "/from-url-file");
    /* Basic auth. */
    struct notify_integration b = {.kind = NOTIFY_WEBHOOK, .timeout_ms = 5000, .url = url};
    b.http.basic_user = "u";
    b.http.basic_password = "p";
    assert_int_equal(post(&b, err, sizeof(err)), NOTIFY_SENT);
    assert_string_equal(seen_auth, "Basic dTpw");
    /* A forward goes to the Alertmanager's /api/v2/alerts below its base URL. */
    char base[128];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/am/", e->port);
    struct notify_integration am = {.kind = NOTIFY_ALERTMANAGER, .timeout_ms = 5000, .url = base};
    assert_int_equal(post(&am, err, sizeof(err)), NOTIFY_SENT);
    assert_string_equal(seen_path, "/am/api/v2/alerts");
    /* A secret file that is gone: retry (it may come back), said in the error. */
    it.http.bearer_token_file = "/nonexistent/token";
    assert_int_equal(post(&it, err, sizeof(err)), NOTIFY_RETRY);
    assert_non_null(strstr(err, "cannot read"));
}

static enum notify_result run(const char *script, long long timeout_ms, const char *body, char *err,
                              size_t cap)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    struct notify_header env[] = {{"GREETING", "hi"}};
    struct notify_integration it = {.kind = NOTIFY_EXEC,
                                    .timeout_ms = timeout_ms,
                                    .argv = argv,
                                    .argc = 3,
                                    .env = env,
                                    .nenv = 1};
    struct notify_delivery d = {.receiver = "fixer",
                                .integration = &it,
                                .body = body,
                                .body_len = strlen(body),
                                .status = "firing",
                                .group_key = "{}:{alertname=\"A\"}",
                                .attempt = 2};
    err[0] = '\0';
    return notify__send(NULL, &d, err, cap);
}

static void test_exec(void **state)
{
    struct env *e = *state;
    char err[512], script[512];
    snprintf(script, sizeof(script), "cat > %s/in; env > %s/env; echo done", e->dir, e->dir);
    assert_int_equal(run(script, 5000, "{\"a\":1}\n", err, sizeof(err)), NOTIFY_SENT);
    char path[256];
    snprintf(path, sizeof(path), "%s/env", e->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    int got = 0;
    while (fgets(line, sizeof(line), f)) {
        got += strcmp(line, "GREETING=hi\n") == 0;
        got += strcmp(line, "SITREP_RECEIVER=fixer\n") == 0;
        got += strcmp(line, "SITREP_STATUS=firing\n") == 0;
        got += strcmp(line, "SITREP_ATTEMPT=2\n") == 0;
        got += strcmp(line, "SITREP_GROUP_KEY={}:{alertname=\"A\"}\n") == 0;
        got += strcmp(line, "SITREP_NOTIFICATION={\"a\":1}\n") == 0;
    }
    fclose(f);
    assert_int_equal(got, 6);
    /* Exit codes: 75 (EX_TEMPFAIL) asks for a retry; others fail for good. */
    assert_int_equal(run("exit 75", 5000, "{}", err, sizeof(err)), NOTIFY_RETRY);
    assert_int_equal(run("echo broken >&2; exit 3", 5000, "{}", err, sizeof(err)), NOTIFY_REJECTED);
    assert_non_null(strstr(err, "exited with 3: broken"));
    assert_int_equal(run("kill -9 $$", 5000, "{}", err, sizeof(err)), NOTIFY_RETRY);
    /* Timeout: the whole process group goes, background children included. */
    snprintf(script, sizeof(script), "sleep 30 & echo $! > %s/child; wait", e->dir);
    int64_t t0 = util_mono_ns();
    assert_int_equal(run(script, 300, "{}", err, sizeof(err)), NOTIFY_RETRY);
    assert_true(util_mono_ns() - t0 < 5000000000LL);
    assert_non_null(strstr(err, "timed out"));
    snprintf(path, sizeof(path), "%s/child", e->dir);
    f = fopen(path, "r");
    assert_non_null(f);
    int child = 0;
    assert_int_equal(fscanf(f, "%d", &child), 1);
    fclose(f);
    /* Gone, or a zombie waiting for an init that may not reap (in containers). */
    usleep(100000);
    char stat[64], st = 'Z';
    snprintf(stat, sizeof(stat), "/proc/%d/stat", child);
    f = fopen(stat, "r");
    if (f) {
        assert_int_equal(fscanf(f, "%*d (%*[^)]) %c", &st), 1);
        fclose(f);
    }
    if (st != 'Z')
        fail_msg("the command's child %d survived the timeout (state %c)", child, st);
    /* A big payload: all of it on stdin, too big for the environment. */
    size_t big = 300000;
    char *body = xmalloc(big + 1);
    memset(body, 'x', big);
    body[big] = '\0';
    assert_int_equal(run("test \"$(wc -c)\" -eq 300000 && test -z \"$SITREP_NOTIFICATION\" && "
                         "test \"$SITREP_NOTIFICATION_TRUNCATED\" = 1",
                         5000, body, err, sizeof(err)),
                     NOTIFY_SENT);
    /* A command that never reads its stdin: no SIGPIPE for us. */
    assert_int_equal(run("exit 0", 5000, body, err, sizeof(err)), NOTIFY_SENT);
    free(body);
    /* A program that does not exist fails for good. */
    char *argv[] = {"/nonexistent/fix", NULL};
    struct notify_integration it = {
        .kind = NOTIFY_EXEC, .timeout_ms = 1000, .argv = argv, .argc = 1};
    struct notify_delivery d = {.receiver = "r",
                                .integration = &it,
                                .body = "{}",
                                .body_len = 2,
                                .status = "firing",
                                .group_key = "k",
                                .attempt = 1};
    assert_int_equal(notify__send(NULL, &d, err, sizeof(err)), NOTIFY_REJECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
