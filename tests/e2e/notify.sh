#!/usr/bin/env bash
# notify.sh: an alert from a rule file through `sitrep serve`'s rules engine
# and notification pipeline to three real peers on loopback, configured in
# sitrep.yml's `alerting:` section:
#   (a) a webhook sink (python3) that answers 503 while the file `fail`
#       exists. While it fails, sitrep is killed with SIGKILL and restarted:
#       the queued message must still arrive once the sink recovers (the
#       outbox survives), retries are counted in /metrics, and the sink
#       receives exactly one firing and, after the condition ends, one
#       resolved message;
#   (b) Debian's prometheus-alertmanager (clustering off), forwarded to:
#       the alert shows in its /api/v2/alerts and leaves it when resolved;
#   (c) an SMTP sink (python3, plain socket) that gets one mail whose
#       subject and body name the alert, and no second one after the restart.
# The condition is a StatsD gauge (`e2e_switch`) the test sets to 1 and 0;
# the built-in pack is off so that only this alert exists.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
d=$E2E_TMP
for p in python3 prometheus-alertmanager; do
    command -v "$p" >/dev/null || { echo "SKIP: needs $p (scripts/deps.sh test)"; exit 0; }
done
port=$(free_port)
hport=$(free_port)
amport=$(free_port)
mport=$(free_port)
sport=$(free_port)
url=http://127.0.0.1:$port
pyck() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# (a) Webhook sink: one JSON line per POST in hook.log, {"code": 503|200, "body": ...}.
cat >"$d/hook.py" <<'PY'
import http.server, json, os, sys, threading
port, log, fail = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        code = 503 if os.path.exists(fail) else 200
        with lock, open(log, 'a') as f:
            f.write(json.dumps({'code': code, 'body': json.loads(body)}) + '\n')
        self.send_response(code)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
PY
# (c) SMTP sink: enough of RFC 5321 for one client; each message as mail-N.eml.
cat >"$d/smtp.py" <<'PY'
import os, socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen(8)
n = 0
while True:
    c, _ = srv.accept()
    f = c.makefile('rb')
    send = lambda s: c.sendall(s.encode() + b'\r\n')
    send('220 sink ESMTP')
    for line in f:
        cmd = line.decode().strip().upper()
        if cmd.startswith(('EHLO', 'HELO')):
            send('250 sink')
        elif cmd.startswith(('MAIL FROM:', 'RCPT TO:')):
            send('250 ok')
        elif cmd == 'DATA':
            send('354 go on')
            data = b''
            for l in f:
                if l == b'.\r\n':
                    break
                data += l
            n += 1
            with open('%s/.mail' % out, 'wb') as o:
                o.write(data)
            os.rename('%s/.mail' % out, '%s/mail-%d.eml' % (out, n))
            send('250 queued')
        elif cmd == 'QUIT':
            send('221 bye')
            break
        else:
            send('250 ok')
    c.close()
PY
touch "$d/fail" "$d/hook.log"
python3 "$d/hook.py" "$hport" "$d/hook.log" "$d/fail" &
E2E_PIDS+=($!)
python3 "$d/smtp.py" "$mport" "$d" &
E2E_PIDS+=($!)
# (b) Alertmanager: receives sitrep's alerts, sends nowhere.
printf 'route: {receiver: none}\nreceivers: [{name: none}]\n' >"$d/am.yml"
prometheus-alertmanager --config.file="$d/am.yml" --storage.path="$d/am-data" \
    --web.listen-address="127.0.0.1:$amport" --cluster.listen-address= 2>"$d/am.log" &
E2E_PIDS+=($!)

cat >"$d/rules.yml" <<'YML'
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2ESwitchOn
        expr: e2e_switch == 1
        labels: {severity: page}
        annotations:
          summary: 'the e2e switch is {{ $value }}'
          runbook: 'turn it off'
YML
cat >"$d/sitrep.yml" <<YML
rule_files: [rules.yml]
rules: {default_pack: false}
collect: {top_processes: 1}
statsd: {listen: "127.0.0.1:$sport"}
alerting:
  route:
    receiver: all
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 4h
  receivers:
    - name: all
      webhook_configs: [{url: "http://127.0.0.1:$hport/hook"}]
      alertmanager_configs: [{url: "http://127.0.0.1:$amport"}]
      email_configs:
        - {to: ops@example.org, from: sitrep@example.org, smarthost: "127.0.0.1:$mport", require_tls: false}
  outbox: {retry_initial: 300ms, retry_max: 600ms}
YML

switch() { printf 'e2e_switch:%s|g' "$1" >"/dev/udp/127.0.0.1/$sport"; }
# until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds.
until_ok() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 10; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# hooks CODE [STATUS]: messages the webhook sink answered with CODE (and of STATUS).
# (Helpers that check runs say $E2E_TMP: check's own `local d` hides $d.)
hooks() {
    python3 - "$E2E_TMP/hook.log" "$@" <<'PY'
import json, sys
ls = [json.loads(l) for l in open(sys.argv[1])]
print(sum(1 for l in ls if l['code'] == int(sys.argv[2])
          and (len(sys.argv) < 4 or l['body']['status'] == sys.argv[3])))
PY
}
# hooks_ge N CODE [STATUS]: at least N such messages (for until_ok, which re-runs it).
hooks_ge() { test "$(hooks "${@:2}")" -ge "$1"; }
# metric NAME LABELS: the value of a sample of sitrep's /metrics (0 if absent).
metric() {
    curl -fsS "$url/metrics" | awk -v k="$1{$2}" '$1 == k {print $2; f=1} END {if (!f) print 0}'
}
# am_has 1|0: whether Alertmanager lists the alert as active (fails if it does not answer).
am_has() {
    curl -fsS "http://127.0.0.1:$amport/api/v2/alerts?active=true" |
        pyck "assert any(a['labels']['alertname'] == 'E2ESwitchOn' for a in d) == bool($1)"
}

start_sitrep "$d/sitrep.yml" "$port" "$d/data" || { cat "$d/log"; exit 1; }
until_ok 10 curl -fsS -o /dev/null "http://127.0.0.1:$amport/-/ready" || not_ok "alertmanager starts"
switch 1

# The sink fails: sitrep retries; meanwhile the other two peers get the alert.
check "the webhook is attempted and refused twice (503)" until_ok 10 hooks_ge 2 503
check "(b) the alert shows in Alertmanager's /api/v2/alerts" until_ok 10 am_has 1
check "(c) the SMTP sink gets a mail" until_ok 10 test -e "$d/mail-1.eml"
check "... its subject names the alert" grep -q '^Subject: \[FIRING:1\] E2ESwitchOn' "$d/mail-1.eml"
check "... its body has the summary" grep -q 'the e2e switch is 1' "$d/mail-1.eml"

# SIGKILL while the message waits in the outbox, then start again.
kill -KILL "$pid"
wait "$pid" 2>/dev/null
sleep 0.3 # a request of the dead process in flight is logged by now
before=$(hooks 503)
start_sitrep "$d/sitrep.yml" "$port" "$d/data" || { cat "$d/log"; exit 1; }
switch 1 # the StatsD gauge lived in the killed process
check "after the restart the queued message is retried" until_ok 10 hooks_ge $((before + 1)) 503
rm "$d/fail"
check "(a) once the sink recovers, the firing message arrives" until_ok 10 hooks_ge 1 200 firing
retries=$(metric sitrep_notifications_total 'receiver="all",integration="webhook[0]",outcome="retry"')
check "retries are counted in /metrics (the 503s since the restart: $(($(hooks 503) - before)))" \
    test "$retries" = "$(($(hooks 503) - before))"
check "the one success is counted in /metrics" test \
    "$(metric sitrep_notifications_total 'receiver="all",integration="webhook[0]",outcome="success"')" = 1

# The condition ends: resolved, to the webhook and to Alertmanager.
switch 0
check "(a) the resolved message arrives" until_ok 10 hooks_ge 1 200 resolved
check "(b) the alert leaves Alertmanager's active alerts" until_ok 10 am_has 0
sleep 3 # anything more would have come by now (group_interval 1s)
check "(a) exactly one firing and one resolved message were accepted, about E2ESwitchOn" \
    python3 - "$d/hook.log" <<'PY'
import json, sys
ok = [json.loads(l)['body'] for l in open(sys.argv[1]) if json.loads(l)['code'] == 200]
assert [m['status'] for m in ok] == ['firing', 'resolved'], [m['status'] for m in ok]
for m in ok:
    assert [a['labels']['alertname'] for a in m['alerts']] == ['E2ESwitchOn'], m
    assert m['alerts'][0]['annotations']['summary'] == 'the e2e switch is 1', m
assert ok[1]['alerts'][0]['endsAt'] > ok[1]['alerts'][0]['startsAt'], ok[1]
PY
check "(c) one mail only (the restart did not send it again; send_resolved is off)" \
    test "$(ls "$d"/mail-*.eml | wc -l)" = 1
finish
