#!/usr/bin/env bash
# rules.sh: the rules engine in the real daemon on its own host metrics: an
# alert that is certainly true (node_load1 >= 0, for: 2s) goes pending then
# firing in /api/v1/alerts and as ALERTS series, one that is false stays
# quiet, a recording rule's output is queryable, a local webhook sink gets
# Alertmanager's webhook JSON v4, a restart keeps the firing state without
# a second notification, `sitrep check rules` passes a good file and fails a
# bad one with file:line, and a reload with a broken rule file keeps the old
# rules.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
port=$(free_port)
hport=$(free_port)
url=http://127.0.0.1:$port
d=$E2E_TMP
pyck() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

# The webhook sink: every POST body on its own line in hook.log.
cat >"$d/sink.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(sys.argv[2], 'ab') as f:
            f.write(body.replace(b'\n', b' ') + b'\n')
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
python3 "$d/sink.py" "$hport" "$d/hook.log" &
E2E_PIDS+=($!)
touch "$d/hook.log"

cat >"$d/rules.yml" <<'YML'
groups:
  - name: host
    interval: 1s
    rules:
      - alert: LoadIsNonNegative
        expr: node_load1 >= 0
        for: 2s
        labels:
          severity: page
        annotations:
          summary: 'load is {{ $value | humanize }} ({{ printf "%.2f" $value }})'
      - alert: LoadIsNegative
        expr: node_load1 < 0
      - record: e2e:load1:doubled
        expr: node_load1 * 2
YML
cat >"$d/bad.yml" <<'YML'
groups:
  - name: broken
    rules:
      - alert: Fine
        expr: up == 0
      - alert: BadExpr
        expr: sum(rate(node_load1[5m])
      - alert: BadTemplate
        expr: up == 0
        annotations:
          summary: '{{ $value | humanise }}'
YML
# The built-in pack is off: this test is about the engine and counts rules and alerts.
cat >"$d/sitrep.yml" <<YML
rule_files: [rules.yml]
rules: {default_pack: false}
collect: {top_processes: 1}
alerting:
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 4h
  receivers:
    - name: hook
      webhook_configs:
        - url: http://127.0.0.1:$hport/hook
YML

out=$("$B" check rules "$d/rules.yml" 2>&1); rc=$?
check "check rules: a good file passes" bash -c "[ $rc = 0 ] && grep -q 'SUCCESS: 3 rules' <<<\"\$1\"" _ "$out"
out=$("$B" check rules "$d/bad.yml" 2>&1); rc=$?
check "check rules: a bad file exits 1" [ "$rc" = 1 ]
check "check rules: the bad expr is reported at file:line" grep -q "bad.yml:7:15: could not parse expression" <<<"$out"
check "check rules: the bad template is reported at file:line" grep -q "bad.yml:11:20: annotation summary: template: .*humanise" <<<"$out"

start_sitrep "$d/sitrep.yml" "$port" "$d/data" || { cat "$d/log"; exit 1; }

# wait_state STATE SECONDS: until the true alert is in STATE in /api/v1/alerts.
wait_state() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        curl -fsS "$url/api/v1/alerts" | pyck "a=[x for x in d['data']['alerts'] if x['labels']['alertname']=='LoadIsNonNegative']; assert a and a[0]['state']=='$1'" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
check "the true alert goes pending first" wait_state pending 3
check "then firing after its for: 2s" wait_state firing 6
alerts=$(curl -fsS "$url/api/v1/alerts")
check "the false alert is not listed; labels and templated annotations are" pyck \
    "a=d['data']['alerts']; assert len(a)==1 and a[0]['labels']=={'alertname':'LoadIsNonNegative','severity':'page'} and a[0]['annotations']['summary'].startswith('load is '), a" <<<"$alerts"
active_at=$(pyck "print(d['data']['alerts'][0]['activeAt'])" <<<"$alerts")
q=$(curl -fsS -G "$url/api/v1/query" --data-urlencode 'query=ALERTS{alertstate="firing"}')
check "ALERTS{alertstate=\"firing\"} is in the store" pyck \
    "r=d['data']['result']; assert len(r)==1 and r[0]['metric']['alertname']=='LoadIsNonNegative', r" <<<"$q"
q=$(curl -fsS -G "$url/api/v1/query" --data-urlencode 'query=ALERTS_FOR_STATE')
check "ALERTS_FOR_STATE holds activeAt" pyck "assert len(d['data']['result'])==1" <<<"$q"
q=$(curl -fsS -G "$url/api/v1/query" --data-urlencode 'query=e2e:load1:doubled')
check "the recording rule's output is queryable" pyck "assert len(d['data']['result'])==1" <<<"$q"
rules=$(curl -fsS "$url/api/v1/rules")
check "/api/v1/rules: one group, three healthy rules, Prometheus's fields" pyck \
    "g=d['data']['groups']; r=g[0]['rules']; assert len(g)==1 and len(r)==3 and all(x['health']=='ok' and 'lastEvaluation' in x and 'evaluationTime' in x for x in r) and r[0]['state']=='firing' and r[2]['type']=='recording', g" <<<"$rules"

for ((i = 0; i < 100; i++)); do grep -q LoadIsNonNegative "$d/hook.log" && break; sleep 0.1; done
check "the webhook sink got Alertmanager's webhook JSON v4" python3 -c "
import json
ls=[json.loads(l) for l in open('$d/hook.log')]
m=[x for x in ls if x['status']=='firing']
assert len(m)==1 and m[0]['version']=='4' and m[0]['receiver']=='hook', ls
a=m[0]['alerts'][0]
assert a['labels']['alertname']=='LoadIsNonNegative' and a['status']=='firing' and a['generatorURL'].startswith('http://'), a
"

# Restart: the alert is firing again at once with the same activeAt, and nothing is re-sent.
kill -TERM "$pid"; wait "$pid"
start_sitrep "$d/sitrep.yml" "$port" "$d/data" || { cat "$d/log"; exit 1; }
sleep 1.5
alerts=$(curl -fsS "$url/api/v1/alerts")
check "after a restart the alert is still firing with the same activeAt" pyck \
    "a=d['data']['alerts']; assert len(a)==1 and a[0]['state']=='firing' and a[0]['activeAt']=='$active_at', (a, '$active_at')" <<<"$alerts"
sleep 4
check "no second notification after the restart" python3 -c "
import json
ls=[json.loads(l) for l in open('$d/hook.log')]
assert len(ls)==1, ls
"

# A reload with a broken rule file keeps the old rules.
cp "$d/rules.yml" "$d/rules.good"
cp "$d/bad.yml" "$d/rules.yml"
code=$(curl -sS -o "$d/body" -w '%{http_code}' -X POST "$url/-/reload")
check "reload with a broken rule file fails with the position" bash -c "[ $code = 500 ] && grep -q 'rules.yml:7:15' $d/body"
rules=$(curl -fsS "$url/api/v1/rules")
check "the old rules are kept" pyck "assert [r['name'] for r in d['data']['groups'][0]['rules']]==['LoadIsNonNegative','LoadIsNegative','e2e:load1:doubled']" <<<"$rules"
check "the alert is still firing" wait_state firing 2
# And a good reload with a new rule takes effect, keeping the firing alert's state.
cp "$d/rules.good" "$d/rules.yml"
cat >>"$d/rules.yml" <<'YML'
      - record: e2e:load1:tripled
        expr: node_load1 * 3
YML
code=$(curl -sS -o "$d/body" -w '%{http_code}' -X POST "$url/-/reload")
check "reload with a good file succeeds" [ "$code" = 200 ]
alerts=$(curl -fsS "$url/api/v1/alerts")
check "the firing alert survives the reload unchanged" pyck \
    "a=d['data']['alerts']; assert len(a)==1 and a[0]['state']=='firing' and a[0]['activeAt']=='$active_at', a" <<<"$alerts"
curl -fsS "$url/metrics" >"$d/metrics.txt" # a file: the page is past one argument's size limit
check "/metrics has the rules' and notifier's self-metrics" bash -c \
    "grep -q '^sitrep_rule_evaluations_total' '$d/metrics.txt' && grep -q '^sitrep_notify_alerts' '$d/metrics.txt'"
finish
