#!/usr/bin/env bash
# queues.sh: the queue, exec and services sources inside the real daemon,
# end to end through PromQL: a real redis-server with a list and a stream
# read by a consumer group (depth, pending and lag follow changes, step by
# step while the stream grows for 24 s faster than the group reads, and the
# built-in growth rule records it); an exec source producing metrics (one in the shared
# sitrep_queue_depth shape) and one that fails; a services: entry whose
# default probe goes up, then down when its HTTP server stops (while
# sitrep_probe_network_ok stays 1: another target answers); its access
# log's malformed line shown with its position on /api/v1/sitrep/ingest.
set -u
. "$(dirname "$0")/lib.bash"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
    echo "SKIP: needs redis-server and redis-cli (Debian package redis-server)"
    exit 0
}
port=$(free_port)
url=http://127.0.0.1:$port
rport=$(free_port)
web=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --loglevel warning >/dev/null 2>&1 &
E2E_PIDS+=($!)
rc() { redis-cli -p "$rport" "$@" >/dev/null; }
for i in $(seq 1 50); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
rc RPUSH jobs a b c
for i in 1 2 3 4 5; do rc XADD events '*' n "$i"; done
rc XGROUP CREATE events workers 0
rc XREADGROUP GROUP workers c1 COUNT 2 STREAMS events '>'
mkdir -p "$E2E_TMP/www" && echo ok >"$E2E_TMP/www/index.html"
python3 -m http.server "$web" --bind 127.0.0.1 --directory "$E2E_TMP/www" >/dev/null 2>&1 &
webpid=$!
E2E_PIDS+=($webpid)
wait_http "http://127.0.0.1:$web/" 10 || { echo "no web server"; exit 1; }
log=$E2E_TMP/logs/access.log
mkdir -p "$E2E_TMP/logs"
cfg=$E2E_TMP/sitrep.yml
cat >"$cfg" <<YML
collect: {top_processes: 1}
queues:
  - {redis: '127.0.0.1:$rport', keys: [jobs, 'ev*', drained], interval: 1s}
exec:
  - job: demo
    command: [printf, '%s\n', 'demo_value{kind="x"} 42', 'sitrep_queue_depth{source="exec",queue="batch"} 7']
    interval: 1s
  - {job: broken, command: "sh -c 'echo nope >&2; exit 2'", interval: 1s}
services:
  - {name: web, url: 'http://127.0.0.1:$web/', log: '$log', interval: 1s}
probes:
  - {name: self, url: 'http://127.0.0.1:$port/-/healthy', interval: 1s}
YML
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
# The log appears after the start, so it is read from its first line.
sleep 1.5
printf '%s\n' '127.0.0.1 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "curl"' \
    'this is not an access log line' >"$log"
sleep 3
q() { curl -sS -G "$url/api/v1/query" --data-urlencode "query=$1"; }
val() { python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 'none')"; }
is() { # is EXPR WANT
    local got
    got=$(q "$1" | val)
    check "$1 = $2 (got $got)" [ "$got" = "$2" ]
}
is "sitrep_queue_up{source=\"redis\",instance=\"127.0.0.1:$rport\"}" 1
is 'sitrep_queue_depth{source="redis",queue="jobs"}' 3
is 'sitrep_queue_depth{source="redis",queue="events"}' 5
is 'sitrep_queue_depth{source="redis",queue="drained"}' 0
is 'sitrep_queue_pending{queue="events",group="workers"}' 2
is 'sitrep_queue_lag{queue="events",group="workers"}' 3
is 'sitrep_queue_consumers{queue="events",group="workers"}' 1
# They follow changes: two more jobs, two more read (pending 4, lag 1), one acknowledged.
rc RPUSH jobs d e
rc XREADGROUP GROUP workers c2 COUNT 2 STREAMS events '>'
first=$(redis-cli -p "$rport" XRANGE events - + COUNT 1 | head -1)
rc XACK events workers "$first"
sleep 3
is 'sitrep_queue_depth{queue="jobs"}' 5
is 'sitrep_queue_pending{queue="events",group="workers"}' 3
is 'sitrep_queue_lag{queue="events",group="workers"}' 1
is 'sitrep_queue_consumers{queue="events",group="workers"}' 2
# The stream grows while sitrep watches and the group reads slower: every
# 2 s, 5 entries added, c1 reads 2 and acknowledges 1 (lag +3, pending +1).
# 12 steps span the growth rule's 30 s and two 10 s windows.
rule='queue:sitrep_queue_depth:growth_per_second{queue="events"}'
is "$rule" none
events() { # depth lag pending of events/workers, as sitrep has them now
    q '{__name__=~"sitrep_queue_(depth|lag|pending)",queue="events"}' | python3 -c '
import json, sys
v = {r["metric"]["__name__"][13:]: r["value"][1] for r in json.load(sys.stdin)["data"]["result"]}
print(*(v.get(k, "none") for k in ("depth", "lag", "pending")))'
}
lag=1 pending=3
for step in $(seq 1 12); do
    t0=$(date +%s%N)
    for i in 1 2 3 4 5; do rc XADD events '*' n "s${step}i$i"; done
    id=$(redis-cli -p "$rport" XREADGROUP GROUP workers c1 COUNT 2 STREAMS events '>' |
        grep -E '^[0-9]+-[0-9]+$' | head -1)
    rc XACK events workers "$id"
    lag=$((lag + 3)) pending=$((pending + 1))
    want="$(redis-cli -p "$rport" XLEN events) $lag $pending"
    for i in $(seq 1 15); do # until sitrep's next poll is in
        got=$(events)
        [ "$got" = "$want" ] && break
        sleep 0.1
    done
    check "step $step: depth lag pending = $want (XLEN; got $got)" [ "$got" = "$want" ]
    sleep "$(python3 -c "print(max(0, 2 - ($(date +%s%N) - $t0) / 1e9))")"
done
# Still growing, by 2.5 entries/s: the built-in rule says so.
g=$(q "$rule" | val)
check "$rule > 1 while the stream grows (got $g)" python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 1)' "${g/none/0}"
# exec: a metric with job=demo; the shared queue shape; a failing command.
is 'demo_value{job="demo",kind="x"}' 42
is 'sitrep_exec_success{job="demo"}' 1
is 'count(sitrep_queue_depth{queue=~"jobs|batch"})' 2
is 'sitrep_queue_depth{source="exec",queue="batch"}' 7
is 'sitrep_exec_success{job="broken"}' 0
n=$(q 'sitrep_exec_errors_total{job="broken",reason="exit"}' | val)
check "the failing command's exits are counted ($n)" [ "${n%.*}" -ge 1 ]
# services: the default probe is up, and down once the server stops.
is 'probe_success{service="web"}' 1
is 'sitrep_probe_network_ok' 1
kill "$webpid"
wait "$webpid" 2>/dev/null
sleep 3
is 'probe_success{service="web"}' 0
# Another target still answers: the service is down, not the daemon's network.
is 'sitrep_probe_network_ok' 1
is 'count(probe_success == 0 and on() sitrep_probe_network_ok == 1)' 1
# The access log of the service: one good line counted, the bad one diagnosed.
diag=$(curl -fsS "$url/api/v1/sitrep/ingest")
check "diagnosis names the malformed line, its number, offset and reason" python3 -c '
import json, sys
d = json.loads(sys.argv[1])["data"]["files"]
f = [x for x in d if x["service"] == "web"][0]
s = f["samples"][0]
ok = (f["malformed"] == 1 and f["lines"] == 2 and s["line_number"] == 2 and s["offset"] == 77
      and s["line"] == "this is not an access log line" and "Combined" in s["reason"])
sys.exit(0 if ok else print(d) or 1)' "$diag"
is 'sitrep_ingest_malformed_lines_total{service="web"}' 1
# A reload that changes exec: and queues: takes effect (new value, new key).
sed -i -e 's/demo_value{kind="x"} 42/demo_value{kind="x"} 43/' -e 's/keys: \[jobs, /keys: [jobs, later, /' "$cfg"
rc RPUSH later x y
check "reload accepted" curl -fsS -o /dev/null -XPOST "$url/-/reload"
sleep 3
is 'demo_value{job="demo",kind="x"}' 43
is 'sitrep_queue_depth{queue="later"}' 2
is 'sitrep_queue_depth{queue="jobs"}' 5
finish
