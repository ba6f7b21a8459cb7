#!/usr/bin/env bash
# query.sh: /api/v1/query and /api/v1/query_range against the real daemon
# and its own host metrics, as Grafana and Prometheus tooling call them:
# result types, Prometheus's parameter checks and error envelope (400
# bad_data with the position, 422 execution), form POST, and the
# `sitrep query` command line (table, --json, --range, exit codes).
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
port=$(free_port)
url=http://127.0.0.1:$port
cfg=$E2E_TMP/sitrep.yml
echo "collect: {top_processes: 2}" >"$cfg"
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
sleep 6

q() { curl -sS -G "$url/api/v1/query" --data-urlencode "query=$1" "${@:2}"; }
qr() { curl -sS -G "$url/api/v1/query_range" --data-urlencode "query=$1" "${@:2}"; }
code() { curl -sS -o "$E2E_TMP/body" -w '%{http_code}' -G "$url/api/v1/$1" "${@:2}"; }
pyck() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
now=$(date +%s)

check "1+1 (Grafana's health check) is a scalar 2" pyck \
    "assert d['data']['resultType']=='scalar' and d['data']['result'][1]=='2', d" <<<"$(q '1+1')"
check "a string literal is a string result" pyck \
    "assert d['data']=={'resultType':'string','result':[d['data']['result'][0],'hello']}, d" \
    <<<"$(q '"hello"')"
check "node_load1 is one sample of the latest value" pyck \
    "r=d['data']['result']; assert d['data']['resultType']=='vector' and len(r)==1 and r[0]['metric']=={'__name__':'node_load1'} and float(r[0]['value'][1])>=0, d" \
    <<<"$(q node_load1)"
check "rate() over the CPU counters: one series per cpu and mode, name dropped" pyck \
    "r=d['data']['result']; assert r and all('__name__' not in s['metric'] and set(s['metric'])=={'cpu','mode'} for s in r), d" \
    <<<"$(q 'rate(node_cpu_seconds_total[5s])')"
check "sum by (mode) keeps only mode; busy CPU time grows" pyck \
    "r={s['metric']['mode']:float(s['value'][1]) for s in d['data']['result']}; assert r['user']+r['system']>0, d" \
    <<<"$(q 'sum by (mode) (rate(node_cpu_seconds_total[5s]))')"
out=$(curl -sS "$url/api/v1/query" --data-urlencode 'query=count(node_cpu_seconds_total)' --data-urlencode "time=$now")
check "form POST with time= works" pyck "assert int(d['data']['result'][0]['value'][1])>=8 and d['data']['result'][0]['value'][0]==$now, d" <<<"$out"
out=$(q node_load1 --data-urlencode "time=$(date -u -d @$now +%Y-%m-%dT%H:%M:%SZ)")
check "time= in RFC 3339" pyck "assert d['data']['result'][0]['value'][0]==$now, d" <<<"$out"
out=$(qr node_load1 --data-urlencode "start=$((now - 4))" --data-urlencode "end=$now" --data-urlencode step=1)
check "range query: a matrix with a point per step" pyck \
    "v=d['data']['result'][0]['values']; assert d['data']['resultType']=='matrix' and [p[0] for p in v]==list(range($now-4,$now+1)), d" <<<"$out"
out=$(qr 'sum(rate(node_cpu_seconds_total[3s]))' --data-urlencode "start=$((now - 2))" --data-urlencode "end=$now" --data-urlencode step=1s)
check "range query with step as a duration" pyck "assert len(d['data']['result'][0]['values'])==3, d" <<<"$out"

c=$(code query --data-urlencode 'query=sum(node_load1')
check "syntax error: 400 bad_data with position" bash -c \
    "[ $c = 400 ] && grep -q '\"errorType\":\"bad_data\"' $E2E_TMP/body && grep -q 'invalid parameter .*query.*: 1:15: parse error' $E2E_TMP/body"
c=$(code query --data-urlencode 'query=node_cpu_seconds_total + on() node_cpu_seconds_total')
check "many-to-many matching: 422 execution" bash -c \
    "[ $c = 422 ] && grep -q '\"errorType\":\"execution\"' $E2E_TMP/body && grep -qi 'many-to-many' $E2E_TMP/body"
c=$(code query --data-urlencode 'query=limitk(1, node_load1)')
check "an experimental feature is refused as not supported (400)" bash -c \
    "[ $c = 400 ] && grep -q 'not supported' $E2E_TMP/body"
c=$(code query_range --data-urlencode 'query=node_load1' --data-urlencode start=10 --data-urlencode end=5 --data-urlencode step=1)
check "range: end before start is 400" bash -c "[ $c = 400 ] && grep -q 'end timestamp must not be before start time' $E2E_TMP/body"
c=$(code query_range --data-urlencode 'query=node_load1' --data-urlencode start=0 --data-urlencode end=10 --data-urlencode step=0)
check "range: step 0 is 400" bash -c "[ $c = 400 ] && grep -q 'zero or negative query resolution' $E2E_TMP/body"
c=$(code query_range --data-urlencode 'query=node_load1' --data-urlencode start=0 --data-urlencode end=100000 --data-urlencode step=1)
check "range: over 11,000 points is 400" bash -c "[ $c = 400 ] && grep -q 'exceeded maximum resolution of 11,000 points' $E2E_TMP/body"
c=$(code query_range --data-urlencode 'query=node_load1[1m]' --data-urlencode start=0 --data-urlencode end=10 --data-urlencode step=1)
check "range: a range vector expression is 400" [ "$c" = 400 ]
c=$(code query --data-urlencode 'query=node_load1' --data-urlencode timeout=banana)
check "a bad timeout is 400" [ "$c" = 400 ]

export SITREP_SERVER=127.0.0.1:$port
out=$("$B" query 'node_load1')
check "sitrep query prints a table" grep -Eq '^node_load1\{\} +[0-9.]+$' <<<"$out"
out=$("$B" query 'node_load1' --json)
check "sitrep query --json prints the API's JSON" pyck "assert d['status']=='success'" <<<"$out"
out=$("$B" query 'node_load1' --range 3s --step 1s)
check "sitrep query --range prints one line per step" \
    bash -c "[ \$(grep -cE '^  [0-9]{4}-[0-9]{2}-[0-9]{2}T' <<<\"\$1\") = 4 ]" _ "$out"
"$B" query 'sum(' >/dev/null 2>"$E2E_TMP/err"; rc=$?
check "sitrep query: a bad query exits 1 with the error" bash -c "[ $rc = 1 ] && grep -q 'parse error' $E2E_TMP/err"
SITREP_SERVER=127.0.0.1:1 "$B" query 'up' >/dev/null 2>&1; rc=$?
check "sitrep query: no daemon exits 3" [ "$rc" = 3 ]
"$B" query >/dev/null 2>&1; rc=$?
check "sitrep query: no expression is a usage error (2)" [ "$rc" = 2 ]
finish
