#!/usr/bin/env bash
# api.sh: Prometheus's HTTP API for listing and describing series, against
# the real daemon: /api/v1/series, /labels, /label/NAME/values, /metadata and
# /format_query, by GET and by form POST, with repeated match[], time
# parameters in both notations, and Prometheus's error envelope.
set -u
. "$(dirname "$0")/lib.bash"
port=$(free_port)
url=http://127.0.0.1:$port
cfg=$E2E_TMP/sitrep.yml
echo "collect: {top_processes: 2}" >"$cfg"
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
sleep 3

get() { curl -sS -G "$url$1" "${@:2}"; }
# jq-free JSON checks: python reads the answer on stdin.
pyck() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

out=$(get /api/v1/series --data-urlencode 'match[]=node_load1')
check "series: one node_load1 series in the success envelope" pyck \
    "assert d['status']=='success' and d['data']==[{'__name__':'node_load1'}], d" <<<"$out"
out=$(get /api/v1/series --data-urlencode 'match[]=node_load1' --data-urlencode 'match[]={__name__="node_load5"}' --data-urlencode 'match[]=node_load1')
check "series: repeated match[] gives the union, each series once, sorted" pyck \
    "assert [s['__name__'] for s in d['data']]==['node_load1','node_load5'], d" <<<"$out"
out=$(curl -sS "$url/api/v1/series" --data-urlencode 'match[]=node_cpu_seconds_total{mode="idle"}')
check "series: form POST body works like GET" pyck \
    "assert d['data'] and all(s['mode']=='idle' for s in d['data']), d" <<<"$out"
code=$(curl -sS -o "$E2E_TMP/err" -w '%{http_code}' -G "$url/api/v1/series" --data-urlencode 'match[]=node_load1{')
check "series: a bad selector is 400 bad_data with its position" bash -c \
    "[ $code = 400 ] && grep -q '\"errorType\":\"bad_data\"' '$E2E_TMP/err' && grep -q '1:1[0-9]: parse error' '$E2E_TMP/err'"
code=$(curl -sS -o "$E2E_TMP/err" -w '%{http_code}' "$url/api/v1/series")
check "series: no match[] is 400" bash -c "[ $code = 400 ] && grep -q 'no match' '$E2E_TMP/err'"
out=$(get /api/v1/series --data-urlencode 'match[]=node_load1' --data-urlencode 'start=2000-01-01T00:00:00Z' --data-urlencode "end=$(date -u +%Y-%m-%dT%H:%M:%S.500Z)")
check "series: RFC 3339 times" pyck "assert d['data']==[{'__name__':'node_load1'}], d" <<<"$out"
out=$(get /api/v1/series --data-urlencode 'match[]=node_load1' --data-urlencode 'start=100' --data-urlencode 'end=200')
check "series: a range with no data lists nothing" pyck "assert d['data']==[], d" <<<"$out"
code=$(curl -sS -o /dev/null -w '%{http_code}' -G "$url/api/v1/series" --data-urlencode 'match[]=up' --data-urlencode 'start=20' --data-urlencode 'end=10')
check "series: end before start is 400" [ "$code" = 400 ]

out=$(get /api/v1/labels)
check "labels: names across the store" pyck \
    "assert {'__name__','cpu','mode','device'} <= set(d['data']) and d['data']==sorted(d['data']), d" <<<"$out"
out=$(get /api/v1/labels --data-urlencode 'match[]=node_cpu_seconds_total')
check "labels: only the matching series' names" pyck "assert d['data']==['__name__','cpu','mode'], d" <<<"$out"
out=$(get /api/v1/label/__name__/values)
check "label values: metric names" pyck \
    "assert 'node_load1' in d['data'] and 'node_cpu_seconds_total' in d['data'], d" <<<"$out"
out=$(get /api/v1/label/mode/values --data-urlencode 'match[]=node_cpu_seconds_total')
check "label values: CPU modes of the matching series" pyck \
    "assert {'idle','user','system'} <= set(d['data']), d" <<<"$out"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/api/v1/label/bad-name/values")
check "label values: an invalid label name is 400" [ "$code" = 400 ]

out=$(get /api/v1/metadata --data-urlencode 'metric=node_load1')
check "metadata: type and help of a family" pyck \
    "m=d['data']['node_load1'][0]; assert m['type']=='gauge' and m['help'], d" <<<"$out"
out=$(get /api/v1/metadata --data-urlencode 'limit=3')
check "metadata: limit" pyck "assert len(d['data'])==3, d" <<<"$out"

out=$(get /api/v1/format_query --data-urlencode 'query=sum(rate(foo{a="b"}[5m]))by(job)')
check "format_query: canonical form" pyck "assert d['data']=='sum by (job) (rate(foo{a=\"b\"}[5m]))', d" <<<"$out"
code=$(curl -sS -o "$E2E_TMP/err" -w '%{http_code}' -G "$url/api/v1/format_query" --data-urlencode 'query=sum(')
check "format_query: a syntax error is 400 with position and what was expected" bash -c \
    "[ $code = 400 ] && grep -q '1:5: parse error: unclosed left parenthesis' '$E2E_TMP/err'"
finish
