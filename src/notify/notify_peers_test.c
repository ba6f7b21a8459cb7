/*
 * notify_peers_test.c: the pipeline with its real threads and senders
 * against real peers on loopback: a webhook sink (Python's http.server)
 * that refuses the first attempts, a real Alertmanager (Debian's
 * prometheus-alertmanager) receiving forwarded alerts, checked through its
 * own API, and an exec command; then sitrep's Alertmanager-shaped API on
 * the embedded HTTP server, driven by `sitrep silence` and by amtool.
 * Skips, saying why, when python3 or alertmanager is not installed.
 */
#include "testutil.h"
#include "testnet.h"
#include "http/http.h"
#include "notify/notify_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Keeps each POST as out/NAME-NNNN.json (NAME: the path's last part, NNNN
 * counted per path); the first `fail` requests to /hook get a 503. */
static const char sink_py[] =
    "import http.server, os, sys, threading\n"
    "port, out, fail = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])\n"
    "n, lock = {}, threading.Lock()\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))\n"
    "        name = self.path.strip('/').split('/')[-1] or 'root'\n"
    "        with lock:\n"
    "            n[name] = n.get(name, 0) + 1\n"
    "            k = n[name]\n"
    "        if name == 'hook' and k <= fail:\n"
    "            self.send_response(503)\n"
    "            self.end_headers()\n"
    "            self.wfile.write(b'not yet')\n"
    "            return\n"
    "        tmp = os.path.join(out, '.%s-%d' % (name, k))\n"
    "        with open(tmp, 'wb') as f:\n"
    "            f.write(body)\n"
    "        os.rename(tmp, os.path.join(out, '%s-%04d.json' % (name, k)))\n"
    "        self.send_response(200)\n"
    "        self.end_headers()\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()\n";

/* An SMTP server that offers STARTTLS, then AUTH PLAIN, and keeps each message. */
static const char smtp_py[] =
    "import base64, socket, ssl, sys, threading\n"
    "port, out, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(cert, key)\n"
    "n = [0]\n"
    "def serve(c):\n"
    "    f, tls, user, frm, rcpt = c.makefile('rb'), False, '', '', []\n"
    "    def send(s):\n"
    "        c.sendall(s.encode() + b'\\r\\n')\n"
    "    send('220 sink ESMTP')\n"
    "    while True:\n"
    "        line = f.readline()\n"
    "        if not line:\n"
    "            return\n"
    "        cmd = line.decode().strip()\n"
    "        up = cmd.upper()\n"
    "        if up.startswith('EHLO') or up.startswith('HELO'):\n"
    "            send('250-sink')\n"
    "            send('250 AUTH PLAIN' if tls else '250 STARTTLS')\n"
    "        elif up == 'STARTTLS':\n"
    "            send('220 go ahead')\n"
    "            c = ctx.wrap_socket(c, server_side=True)\n"
    "            f, tls = c.makefile('rb'), True\n"
    "        elif up.startswith('AUTH PLAIN'):\n"
    "            p = cmd.split(' ')\n"
    "            if len(p) < 3:\n"
    "                send('334 ')\n"
    "                p.append(f.readline().decode().strip())\n"
    "            z = base64.b64decode(p[2]).split(b'\\0')\n"
    "            if tls and z[1:] == [b'bot', b'pw']:\n"
    "                user = 'bot'\n"
    "                send('235 ok')\n"
    "            else:\n"
    "                send('535 bad credentials')\n"
    "        elif up.startswith('MAIL FROM:'):\n"
    "            frm = cmd[10:]\n"
    "            send('250 ok' if user else '530 auth first')\n"
    "        elif up.startswith('RCPT TO:'):\n"
    "            rcpt.append(cmd[8:])\n"
    "            send('250 ok')\n"
    "        elif up == 'DATA':\n"
    "            send('354 go on')\n"
    "            data = b''\n"
    "            while True:\n"
    "                l = f.readline()\n"
    "                if l in (b'.\\r\\n', b''):\n"
    "                    break\n"
    "                data += l\n"
    "            n[0] += 1\n"
    "            head = 'X-Sink: tls=%d user=%s from=%s rcpt=%s\\r\\n' % (tls, user, frm, "
    "','.join(rcpt))\n"
    "            with open('%s/mail-%d.eml' % (out, n[0]), 'wb') as o:\n"
    "                o.write(head.encode() + data)\n"
    "            send('250 queued')\n"
    "        elif up == 'QUIT':\n"
    "            send('221 bye')\n"
    "            c.close()\n"
    "            return\n"
    "        else:\n"
    "            send('502 not here')\n"
    "srv = socket.socket()\n"
    "srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "srv.bind(('127.0.0.1', port))\n"
    "srv.listen(8)\n"
    "while True:\n"
    "    c, _ = srv.accept()\n"
    "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";

static const char fix_sh[] = "#!/bin/sh\n"
                             "cat > \"$OUT/stdin.json\"\n"
                             "printf '%s' \"$SITREP_NOTIFICATION\" > \"$OUT/env.json\"\n"
                             "echo \"$SITREP_STATUS $MODE\" >> \"$OUT/runs\"\n";

struct peers {
    char dir[128];
    pid_t sink, am;
    int sink_port, am_port, api_port;
    struct notify *n;
    struct http_server *http;
};

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static pid_t spawn(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static void wait_port(int port, const char *what)
{
    for (int i = 0; i < 200 && !port_open(port); i++)
        usleep(50000);
    if (!port_open(port))
        fail_msg("%s did not start listening on %d", what, port);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    sbuf_add(ctx, p, size * nmemb);
    return size * nmemb;
}

/* One HTTP request with libcurl; returns the status (0 if it failed). */
static long http(const char *method, const char *url, const char *body, struct sbuf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    sbuf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct sbuf b;
    sbuf_init(&b, 0);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
        sbuf_add(&b, buf, k);
    fclose(f);
    return notify__sbuf_take(&b);
}

/* Wait up to 15 s for path to exist and contain want; returns its text (caller frees). */
static char *wait_file(const char *path, const char *want)
{
    for (int i = 0; i < 300; i++) {
        char *s = read_file(path);
        if (s && (!want || strstr(s, want)))
            return s;
        free(s);
        usleep(50000);
    }
    fail_msg("%s never held '%s'", path, want ? want : "anything");
    return NULL;
}

static int setup(void **state)
{
    if (!have("python3") || !have("prometheus-alertmanager")) {
        print_message("SKIP: needs python3 and prometheus-alertmanager (Debian packages "
                      "python3, prometheus-alertmanager; scripts/deps.sh test)\n");
        *state = NULL;
        return 0;
    }
    struct peers *p = xcalloc(1, sizeof(*p));
    char path[256], port[16], out[256], log[256];
    snprintf(p->dir, sizeof(p->dir), "%s", tu_tmpdir("notify-peers"));
    snprintf(out, sizeof(out), "%s/sink", p->dir);
    mkdir(out, 0755);
    snprintf(path, sizeof(path), "%s/sink.py", p->dir);
    tu_write_file(path, sink_py);
    p->sink_port = tu_free_port();
    snprintf(port, sizeof(port), "%d", p->sink_port);
    snprintf(log, sizeof(log), "%s/sink.log", p->dir);
    char *sink_argv[] = {"python3", path, port, out, "2", NULL};
    p->sink = spawn(sink_argv, log);
    wait_port(p->sink_port, "the webhook sink");

    char amcfg[256], amdata[256], amlisten[64];
    snprintf(amcfg, sizeof(amcfg), "--config.file=%s/am.yml", p->dir);
    snprintf(path, sizeof(path), "%s/am.yml", p->dir);
    /* The Alertmanager sends what it gets from sitrep to the same sink, at /am:
     * its webhook message is the reference sitrep's is compared with. */
    char amyml[512];
    snprintf(amyml, sizeof(amyml),
             "route: {receiver: sink, group_by: [alertname], group_wait: 0s,"
             " group_interval: 1s}\n"
             "receivers: [{name: sink, webhook_configs: [{url: 'http://127.0.0.1:%d/am'}]}]\n",
             p->sink_port);
    tu_write_file(path, amyml);
    snprintf(amdata, sizeof(amdata), "--storage.path=%s/am-data", p->dir);
    p->am_port = tu_free_port();
    snprintf(amlisten, sizeof(amlisten), "--web.listen-address=127.0.0.1:%d", p->am_port);
    snprintf(log, sizeof(log), "%s/am.log", p->dir);
    char *am_argv[] = {"prometheus-alertmanager",   amcfg, amdata, amlisten,
                       "--cluster.listen-address=", NULL};
    p->am = spawn(am_argv, log);

    snprintf(path, sizeof(path), "%s/fix.sh", p->dir);
    tu_write_file(path, fix_sh);
    chmod(path, 0755);
    wait_port(p->am_port, "alertmanager");
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct peers *p = *state;
    if (!p)
        return 0;
    if (p->http)
        http_free(p->http);
    notify_free(p->n);
    pid_t pids[] = {p->sink, p->am};
    for (size_t i = 0; i < ARRAY_SIZE(pids); i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    tu_rmrf(p->dir);
    free(p);
    return 0;
}

/* notify_cli_silence with stdout captured into out (caller frees). Returns its exit code. */
static int cli(struct peers *p, char **out, int argc, char **argv)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/cli.out", p->dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
    int rc = notify_cli_silence(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    *out = read_file(path);
    return rc;
}

/* Keys Alertmanagers newer than Debian 12's add to the webhook message. */
static int newer_key(const char *k)
{
    return strcmp(k, "notification_reason") == 0 || strcmp(k, "routeLabels") == 0;
}

/* Two JSON objects have the same keys (newer Alertmanager keys aside). */
static void same_keys(const struct notify__jv *ours, const struct notify__jv *am, const char *what)
{
    assert_non_null(ours);
    assert_non_null(am);
    for (size_t i = 0; i < ours->n; i++)
        if (!notify__jv_get(am, ours->keys[i]))
            fail_msg("%s: sitrep sends '%s', Alertmanager does not", what, ours->keys[i]);
    for (size_t i = 0; i < am->n; i++)
        if (!notify__jv_get(ours, am->keys[i]) && !newer_key(am->keys[i]))
            fail_msg("%s: Alertmanager sends '%s', sitrep does not", what, am->keys[i]);
}

static void same_str(const struct notify__jv *a, const struct notify__jv *b, const char *key)
{
    const char *x = notify__jv_str(a, key), *y = notify__jv_str(b, key);
    if (!x || !y || strcmp(x, y) != 0)
        fail_msg("%s: sitrep '%s', Alertmanager '%s'", key, x ? x : "(none)", y ? y : "(none)");
}

/* sitrep's webhook message against the one the real Alertmanager sent for the same alert. */
static void compare_with_alertmanager(const char *ours_text, const char *am_text)
{
    char err[256];
    struct notify__jv *o = notify__json_parse(ours_text, strlen(ours_text), err, sizeof(err));
    struct notify__jv *a = notify__json_parse(am_text, strlen(am_text), err, sizeof(err));
    same_keys(o, a, "webhook message");
    same_str(o, a, "version");
    same_str(o, a, "status");
    same_str(o, a, "groupKey");
    const struct notify__jv *oa = notify__jv_get(o, "alerts"), *aa = notify__jv_get(a, "alerts");
    assert_int_equal(oa->n, 1);
    assert_int_equal(aa->n, 1);
    same_keys(&oa->items[0], &aa->items[0], "alert");
    same_str(&oa->items[0], &aa->items[0], "fingerprint");
    same_str(&oa->items[0], &aa->items[0], "status");
    same_str(&oa->items[0], &aa->items[0], "endsAt");
    same_str(&oa->items[0], &aa->items[0], "generatorURL");
    static const char *const sets[] = {"groupLabels", "commonLabels", "commonAnnotations"};
    for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
        const struct notify__jv *x = notify__jv_get(o, sets[i]), *y = notify__jv_get(a, sets[i]);
        same_keys(x, y, sets[i]);
        for (size_t k = 0; k < x->n; k++)
            same_str(x, y, x->keys[k]);
    }
    notify__jv_free(o);
    notify__jv_free(a);
}

static double metric(struct notify *n, const char *name, const char *labels)
{
    struct metric_buf b;
    metric_buf_init(&b);
    notify_expose(n, &b);
    double v = -1;
    tu_find(&b, name, labels, &v);
    metric_buf_release(&b);
    return v;
}

static void test_real_peers(void **state)
{
    struct peers *p = *state;
    if (!p) {
        skip();
        return;
    }
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "route:\n"
             "  receiver: all\n"
             "  group_by: [alertname]\n"
             "  group_wait: 0s\n"
             "  group_interval: 1s\n"
             "receivers:\n"
             "  - name: all\n"
             "    webhook_configs: [{url: 'http://127.0.0.1:%d/hook'}]\n"
             "    alertmanager_configs: [{url: 'http://127.0.0.1:%d/'}]\n"
             "    exec_configs:\n"
             "      - command: ['%s/fix.sh']\n"
             "        env: {OUT: '%s', MODE: auto}\n"
             "        timeout: 10s\n"
             "outbox: {retry_initial: 100ms, retry_max: 200ms}\n",
             p->sink_port, p->am_port, p->dir, p->dir);
    struct notify_config cfg;
    struct sbuf errors, body;
    notify_config_defaults(&cfg);
    sbuf_init(&errors, 0);
    sbuf_init(&body, 0);
    if (notify_config_parse(&cfg, "peers.yml", yaml, &errors) < 0)
        fail_msg("%s", errors.buf);
    struct notify_opts o = {.data_dir = p->dir, .external_url = "http://sitrep.test"};
    p->n = notify_new(&o, &cfg);
    assert_non_null(p->n);
    assert_int_equal(notify_start(p->n), 0);
    p->api_port = tu_free_port();
    p->http = http_new();
    notify_register_http(p->http, p->n);
    char listen[64], api[128], url[256];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", p->api_port);
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", p->api_port);
    assert_int_equal(http_start(p->http, listen, NULL), 0);

    /* Alerts in, as Prometheus posts them to an Alertmanager. */
    snprintf(url, sizeof(url), "%s/api/v2/alerts", api);
    const char *alerts = "[{\"labels\":{\"alertname\":\"SitrepPeers\",\"instance\":\"db1\","
                         "\"severity\":\"page\"},\"annotations\":{\"summary\":\"disk full\"},"
                         "\"generatorURL\":\"http://sitrep.test/graph\"}]";
    assert_int_equal(http("POST", url, alerts, &body), 200);
    assert_int_equal(http("POST", url, "[{\"labels\":{}}]", &body), 400);
    assert_int_equal(http("POST", url, "{nope", &body), 400);

    /* The webhook sink refused twice (503); the third attempt lands, once. */
    char path[256];
    snprintf(path, sizeof(path), "%s/sink/hook-0003.json", p->dir);
    char *hook = wait_file(path, "\"status\":\"firing\"");
    assert_non_null(strstr(hook, "\"version\":\"4\""));
    assert_non_null(strstr(hook, "\"groupKey\":\"{}:{alertname=\\\"SitrepPeers\\\"}\""));
    free(hook);
    assert_int_equal(metric(p->n, "sitrep_notifications_total",
                            "receiver=\"all\",integration=\"webhook[0]\",outcome=\"retry\""),
                     2);

    /* The real Alertmanager has the forwarded alert. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/alerts", p->am_port);
    int found = 0;
    for (int i = 0; i < 200 && !found; i++) {
        if (http("GET", url, NULL, &body) == 200 && strstr(body.buf, "SitrepPeers"))
            found = 1;
        else
            usleep(50000);
    }
    if (!found)
        fail_msg("alertmanager never listed the alert: %s", body.buf);
    assert_non_null(strstr(body.buf, "\"summary\":\"disk full\""));
    assert_non_null(strstr(body.buf, "\"generatorURL\":\"http://sitrep.test/graph\""));
    /* ...and its webhook message matches sitrep's: shape, group key, fingerprint. */
    snprintf(path, sizeof(path), "%s/sink/am-0001.json", p->dir);
    char *am_hook = wait_file(path, "SitrepPeers");
    snprintf(path, sizeof(path), "%s/sink/hook-0003.json", p->dir);
    char *our_hook = read_file(path);
    compare_with_alertmanager(our_hook, am_hook);
    free(am_hook);
    free(our_hook);

    /* The command ran with the notification on stdin and in its environment. */
    snprintf(path, sizeof(path), "%s/runs", p->dir);
    free(wait_file(path, "firing auto"));
    snprintf(path, sizeof(path), "%s/stdin.json", p->dir);
    char *in = wait_file(path, "SitrepPeers");
    snprintf(path, sizeof(path), "%s/env.json", p->dir);
    char *env = wait_file(path, "SitrepPeers");
    assert_string_equal(in, env);
    free(in);
    free(env);

    /* sitrep's own API lists the alert; `sitrep silence` mutes it. */
    snprintf(url, sizeof(url), "%s/api/v2/alerts", api);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.buf, "\"state\":\"active\""));
    assert_non_null(strstr(body.buf, "\"receivers\":[{\"name\":\"all\"}]"));
    char *out;
    char *add[] = {"add",
                   "--url",
                   api,
                   "-c",
                   "swapping the disk",
                   "-a",
                   "test",
                   "-d",
                   "1h",
                   "alertname=SitrepPeers",
                   "instance=~\"db.*\"",
                   NULL};
    assert_int_equal(cli(p, &out, 11, add), 0);
    char id[64];
    assert_int_equal(sscanf(out, "%63s", id), 1);
    assert_int_equal(strlen(id), 36);
    free(out);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.buf, "\"state\":\"suppressed\""));
    assert_non_null(strstr(body.buf, id));
    char *list[] = {"list", "--url", api, NULL};
    assert_int_equal(cli(p, &out, 3, list), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "instance=~\"db.*\""));
    assert_non_null(strstr(out, "swapping the disk"));
    free(out);
    snprintf(url, sizeof(url), "%s/api/v2/silences?filter=alertname%%3DSitrepPeers", api);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.buf, id));
    snprintf(url, sizeof(url), "%s/api/v2/silences?filter=alertname%%3DOther", api);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_string_equal(body.buf, "[]\n");
    snprintf(url, sizeof(url), "%s/api/v2/silence/%s", api, id);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.buf, "\"createdBy\":\"test\""));
    snprintf(url, sizeof(url), "%s/api/v2/silence/00000000-0000-4000-8000-000000000000", api);
    assert_int_equal(http("GET", url, NULL, &body), 404);
    snprintf(url, sizeof(url), "%s/api/v2/silences", api);
    assert_int_equal(http("POST", url, "{\"matchers\":[]}", &body), 400);

    /* amtool, Alertmanager's own client, reads sitrep's silences. */
    if (have("amtool")) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd),
                 "amtool --alertmanager.url=%s silence query -q alertname=SitrepPeers"
                 " > %s/amtool.out 2>&1",
                 api, p->dir);
        int rc = system(cmd);
        snprintf(path, sizeof(path), "%s/amtool.out", p->dir);
        char *a = read_file(path);
        if (rc != 0 || !a || !strstr(a, id))
            fail_msg("amtool silence query: rc %d: %s", rc, a ? a : "");
        free(a);
    }

    char *expire[] = {"expire", "--url", api, id, NULL};
    assert_int_equal(cli(p, &out, 4, expire), 0);
    free(out);
    snprintf(url, sizeof(url), "%s/api/v2/silence/%s", api, id);
    assert_int_equal(http("GET", url, NULL, &body), 200);
    assert_non_null(strstr(body.buf, "\"state\":\"expired\""));

    /* Resolved: the sink hears it and the Alertmanager closes the alert. */
    snprintf(url, sizeof(url), "%s/api/v2/alerts", api);
    const char *resolved = "[{\"labels\":{\"alertname\":\"SitrepPeers\",\"instance\":\"db1\","
                           "\"severity\":\"page\"},\"annotations\":{\"summary\":\"disk full\"},"
                           "\"startsAt\":\"2020-01-01T00:00:00Z\","
                           "\"endsAt\":\"2020-01-01T00:05:00Z\"}]";
    assert_int_equal(http("POST", url, resolved, &body), 200);
    snprintf(path, sizeof(path), "%s/sink/hook-0004.json", p->dir);
    free(wait_file(path, "\"status\":\"resolved\""));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/alerts", p->am_port);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        if (http("GET", url, NULL, &body) == 200 && !strstr(body.buf, "SitrepPeers"))
            gone = 1;
        else
            usleep(50000);
    }
    if (!gone)
        fail_msg("alertmanager still lists the resolved alert: %s", body.buf);
    /* Exec is not told of resolutions (send_resolved defaults to false). */
    snprintf(path, sizeof(path), "%s/runs", p->dir);
    char *runs = read_file(path);
    assert_string_equal(runs, "firing auto\n");
    free(runs);
    /* Exactly one firing and one resolved message reached the sink. */
    snprintf(path, sizeof(path), "%s/sink/hook-0005.json", p->dir);
    usleep(300000);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(metric(p->n, "sitrep_notify_queue_length", ""), 0);
    sbuf_release(&errors);
    sbuf_release(&body);
}

/* Email over SMTP with STARTTLS (certificate checked against a CA file) and AUTH. */
static void test_smtp(void **state)
{
    (void)state;
    if (!have("python3") || !have("openssl")) {
        print_message("SKIP: needs python3 and openssl\n");
        skip();
        return;
    }
    char dir[128], cmd[1024], path[256], port[16], cert[256], key[256], log[256];
    snprintf(dir, sizeof(dir), "%s", tu_tmpdir("notify-smtp"));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/smtp.py", dir);
    tu_write_file(path, smtp_py);
    int p = tu_free_port();
    snprintf(port, sizeof(port), "%d", p);
    snprintf(log, sizeof(log), "%s/smtp.log", dir);
    char *argv[] = {"python3", path, port, dir, cert, key, NULL};
    pid_t pid = spawn(argv, log);
    wait_port(p, "the SMTP sink");

    char smarthost[64];
    snprintf(smarthost, sizeof(smarthost), "localhost:%d", p);
    struct notify_integration it = {.kind = NOTIFY_EMAIL,
                                    .timeout_ms = 10000,
                                    .to = "ops@example.org, Dev Team <dev@example.org>",
                                    .from = "Sitrep <sitrep@example.org>",
                                    .smarthost = smarthost,
                                    .auth_username = "bot",
                                    .auth_password = "pw",
                                    .require_tls = 1};
    it.http.ca_file = cert;
    const char *msg = "From: Sitrep <sitrep@example.org>\r\nTo: ops@example.org\r\n"
                      "Subject: [FIRING:1] DiskFull\r\n\r\n.starts with a dot\r\nbody\r\n";
    struct notify_delivery d = {.receiver = "mail",
                                .integration = &it,
                                .body = msg,
                                .body_len = strlen(msg),
                                .status = "firing",
                                .group_key = "{}:{}",
                                .attempt = 1};
    char err[512] = "";
    enum notify_result r = notify__send(NULL, &d, err, sizeof(err));
    if (r != NOTIFY_SENT)
        fail_msg("send: %d: %s", r, err);
    snprintf(path, sizeof(path), "%s/mail-1.eml", dir);
    char *m = wait_file(path, "body");
    assert_non_null(strstr(m, "X-Sink: tls=1 user=bot from=<sitrep@example.org> "
                              "rcpt=<ops@example.org>,<dev@example.org>"));
    assert_non_null(strstr(m, "Subject: [FIRING:1] DiskFull\r\n"));
    assert_non_null(strstr(m, "\r\n..starts with a dot\r\n")); /* dot-stuffed on the wire */
    free(m);
    /* Wrong password: the server's 535 will not change by retrying. */
    it.auth_password = "wrong";
    assert_int_equal(notify__send(NULL, &d, err, sizeof(err)), NOTIFY_REJECTED);
    assert_non_null(strstr(err, "535"));
    /* A certificate the CA file does not vouch for: no mail, retried later. */
    it.auth_password = "pw";
    it.http.ca_file = NULL;
    assert_int_equal(notify__send(NULL, &d, err, sizeof(err)), NOTIFY_RETRY);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    tu_rmrf(dir);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_peers, setup, teardown),
        cmocka_unit_test(test_smtp),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
