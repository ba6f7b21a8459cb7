#!/usr/bin/env bash
# accesslog.sh: access-log ingestion against a real nginx (Debian's package).
# The test starts nginx on a free loopback port with its own config, prefix
# and log under the test's temp dir, sends real requests with curl (200s,
# 404s, a 503 path hammered by one client, slow downloads through
# limit_rate), rotates the log by rename (with `nginx -s reopen`), restarts
# sitrep while nginx writes and rotates again, rotates by copytruncate, and
# then checks what landed in the store (/api/v1/export): request counts
# exact across rotations and the restart (nothing lost, nothing counted
# twice), by route after normalisation, the latency histogram around the
# 5 s edge, retries after 503, and the self-metrics. The derived series are
# also checked through the PromQL API (/api/v1/query, query_range): counts
# by status class, errors, bytes, histogram_quantile, increase() and rate()
# across the restart, and the top clients. A second nginx server logs
# X-Forwarded-For (client_from: forwarded_for) for the top clients by header.
set -u
. "$(dirname "$0")/lib.bash"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
    echo "nginx not installed (scripts/deps.sh test installs it)" >&2
    exit 1
fi

ngx=$E2E_TMP/nginx
mkdir -p "$ngx/logs" "$ngx/html" "$ngx/tmp"
nport=$(free_port)
xport=$(free_port)
head -c 150000 /dev/zero >"$ngx/html/big.bin"
# nginx's combined format with $request_time appended, as sitrep's docs suggest.
cat >"$ngx/nginx.conf" <<EOF
user root root;
worker_processes 1;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/logs/error.log;
events { worker_connections 64; }
http {
    log_format timed '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status '
                     '\$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_time';
    # nginx's "main" format (X-Forwarded-For after the user agent) plus \$request_time
    log_format xff '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status '
                   '\$body_bytes_sent "\$http_referer" "\$http_user_agent" '
                   '"\$http_x_forwarded_for" \$request_time';
    access_log $ngx/logs/access.log timed;
    client_body_temp_path $ngx/tmp/body;
    proxy_temp_path $ngx/tmp/proxy;
    fastcgi_temp_path $ngx/tmp/fastcgi;
    uwsgi_temp_path $ngx/tmp/uwsgi;
    scgi_temp_path $ngx/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$nport;
        location /users/ { return 200 "user\n"; }
        location = /health { return 200 "ok\n"; }
        location = /busy { return 503; }
        location = /big.bin { root $ngx/html; limit_rate 20k; }
        location / { return 404; }
    }
    server {
        listen 127.0.0.1:$xport;
        access_log $ngx/logs/edge.log xff;
        location = /busy { return 503; }
        location / { return 200 "edge\n"; }
    }
}
EOF
"$NGINX" -p "$ngx" -c "$ngx/nginx.conf" 2>>"$E2E_TMP/log" &
E2E_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
    curl -s -o /dev/null "http://127.0.0.1:$nport/health" 2>/dev/null && break
    sleep 0.1
done
log=$ngx/logs/access.log
: >"$log" # the health probe above is not part of the test

port=$(free_port)
url=http://127.0.0.1:$port
data=$E2E_TMP/data
cfg=$E2E_TMP/sitrep.yml
cat >"$cfg" <<EOF
collect: {top_processes: 2}
storage: {sync_interval: 100ms}
logs:
  - service: web
    path: $log
    format: combined
    request_time: seconds
    routes: ["/static/**"]
    counters: {busy: '" 503 '}
  - service: edge
    path: $ngx/logs/edge.log
    format: combined
    request_time: seconds
    client_from: forwarded_for
EOF
start_sitrep "$cfg" "$port" "$data" || { cat "$E2E_TMP/log"; exit 1; }
sleep 1.5 # past the first poll: lines from now on are new

sent=0 # requests sent in the whole test
mine=0 # requests the running sitrep is to count
req() { # req [curl args...] PATH
    local path=${*: -1}
    curl -s -o /dev/null "${@:1:$#-1}" "http://127.0.0.1:$nport$path"
    sent=$((sent + 1))
    mine=$((mine + 1))
}
# metric NAME: the sum of a family's samples on /metrics now
metric() {
    curl -fsS "$url/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { print s + 0 }'
}
# wait_count N: until the running sitrep has counted N requests (15 s at most)
wait_count() {
    local i got
    for ((i = 0; i < 150; i++)); do
        got=$(metric accesslog_requests_total)
        [ "$got" = "$1" ] && return 0
        sleep 0.1
    done
    echo "wait_count: want $1 requests counted, have $got" >&2
    return 1
}
# qv EXPR [CURL_ARGS...]: an instant query through /api/v1/query, one line
# per sample, "label=value,... value", sorted; without labels the value alone.
qv() {
    curl -fsS -G "$url/api/v1/query" --data-urlencode "query=$1" "${@:2}" | python3 -c '
import json, math, sys
d = json.load(sys.stdin)["data"]
r = [{"metric": {}, "value": d["result"]}] if d["resultType"] == "scalar" else d["result"]
out = []
for s in r:
    v = float(s["value"][1])
    v = str(int(v)) if math.isfinite(v) and v == int(v) else repr(v)
    ls = ",".join(k + "=" + s["metric"][k] for k in sorted(s["metric"]) if k != "__name__")
    out.append(ls + " " + v if ls else v)
print("\n".join(sorted(out)))'
}
# ql EXPR LABEL: that label of each sample of an instant query, in the answer's order
ql() {
    curl -fsS -G "$url/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
print(" ".join(s["metric"].get(sys.argv[1], "-") for s in json.load(sys.stdin)["data"]["result"]))' "$2"
}
# wait_q EXPR WANT: until qv EXPR prints WANT (a batch reaches the store once
# a tick, a moment after /metrics shows it; 15 s at most)
wait_q() {
    local i got
    for ((i = 0; i < 150; i++)); do
        got=$(qv "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.1
    done
    echo "wait_q: $1: want $(tr '\n' ';' <<<"$2") have $(tr '\n' ';' <<<"$got")" >&2
    return 1
}
# quantile_bucket Q FILE: the edges "lo hi" of the latency bucket holding the
# request time at the Q-quantile's rank among those nginx logged in FILE;
# histogram_quantile interpolates inside that bucket, so it must land there.
quantile_bucket() {
    python3 - "$1" "$2" <<'PY'
import math, sys
q, path = float(sys.argv[1]), sys.argv[2]
edges = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, math.inf]
times = sorted(float(l.split()[-1]) for l in open(path) if l.startswith("127.0.0."))
x = times[math.ceil(q * len(times)) - 1]
b = next(i for i, e in enumerate(edges) if x <= e)
print(edges[b - 1] if b else 0, edges[b])
PY
}
# wait_file PATH: until nginx has reopened its log
wait_file() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -e "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# --- Phase A: traffic of every kind ---
req /big.bin & # two slow downloads (~7 s each at 20 KB/s), in the background
slow1=$!
req /big.bin &
slow2=$!
for i in $(seq 1 10); do req "/users/$((i * 37))?tab=$i"; done
for i in $(seq 1 5); do req "/nope/item-$i"; done
for i in $(seq 1 40); do req --interface 127.0.0.2 /busy; done # one client, busy, retrying
req -I /health
req -X POST /health
req /static/css/site.css?v=3
req /static/js/app.js
# Before the downloads' lines: once those are counted, this one was read.
echo 'this line is not an access log line' >>"$log"
# All but the downloads is stored from here on; increase() below starts here.
check "phase A: the 59 fast requests are in the store (query API)" \
    wait_q 'sum(accesslog_requests_total{service="web",route!="/big.bin"})' 59
t_a=$(date +%s.%N)
wait $slow1 $slow2
sent=$((sent + 2)) # the two background requests (their counters lived in subshells)
mine=$((mine + 2))
check "phase A: every request counted once" wait_count $mine
check "phase A: the junk line is malformed, not a request" \
    [ "$(metric sitrep_ingest_malformed_lines_total)" = 1 ]

# Phase A through the query API, as Grafana and rules see it (one run of sitrep: exact)
check "query: requests by status class: 14 2xx, 7 4xx, 40 5xx" \
    wait_q 'sum by (code) (accesslog_requests_total{service="web"})' $'code=2xx 14\ncode=4xx 7\ncode=5xx 40'
check "query: errors: the 40 on /busy, 0 on every other route with requests" \
    wait_q 'sum by (route) (accesslog_errors_total{service="web"})' \
    $'route=/big.bin 0\nroute=/busy 40\nroute=/health 0\nroute=/static/** 0\nroute=/users/:num 0\nroute=other 0'
check "query: body bytes: 2 x 150000 for /big.bin, 10 x 5 (\"user\\n\") for /users/:num" \
    wait_q 'sum by (route) (accesslog_response_bytes_total{service="web",route=~"/big.bin|/users/:num"})' \
    $'route=/big.bin 300000\nroute=/users/:num 50'
check "query: 2 requests slower than 5 s (_count minus the le=\"5\" bucket)" \
    wait_q 'sum(accesslog_request_duration_seconds_count{service="web"}) - sum(accesslog_request_duration_seconds_bucket{service="web",le="5"})' 2
for q in 0.5 0.99; do
    read -r lo hi < <(quantile_bucket $q "$log")
    v=$(qv "histogram_quantile($q, sum by (le) (accesslog_request_duration_seconds_bucket{service=\"web\"}))")
    check "query: histogram_quantile($q) = $v, in the bucket ($lo, $hi] of nginx's time at that rank" \
        python3 -c "assert $lo <= $v <= $hi"
done
check "query: the busiest client is 127.0.0.2 (the one retrying /busy)" \
    [ "$(ql 'topk(1, accesslog_top_client_requests_per_second{service="web"})' client)" = 127.0.0.2 ]
check "query: only 127.0.0.2 has a 5xx rate" \
    [ "$(ql 'accesslog_top_client_errors_per_second{service="web"} > 0' client)" = 127.0.0.2 ]
share=$(qv 'sum(accesslog_top_client_share{service="web",client="127.0.0.2"})')
# 40 of 61 requests, but weighted to recent ones (127.0.0.1's downloads end last): about that
check "query: its share of requests is about 40/61 ($share)" python3 -c "assert 0.55 < $share < 0.7"
both=$(qv 'sum(accesslog_top_client_share{service="web"})')
check "query: the two clients' shares add up to 1 ($both)" python3 -c "assert abs($both - 1) < 1e-9"
check "query: two distinct clients" wait_q 'sum(accesslog_clients_distinct_total{service="web"})' 2
# increase()'s window below starts at t_a: a tick must be stored before phase B's requests
sleep "$(python3 -c "print(max(0, $t_a + 2 - float('$(date +%s.%N)')))")"

# --- Phase B: rotation by rename; nginx writes to the old file until it reopens ---
mv "$log" "$log.1"
for i in 1 2 3; do req "/users/$i"; done
"$NGINX" -p "$ngx" -c "$ngx/nginx.conf" -s reopen 2>>"$E2E_TMP/log"
wait_file "$log"
for i in 4 5 6 7; do req "/users/$i"; done
check "phase B: rename rotation: counted once each" wait_count $mine
check "phase B: the rotation is seen" \
    [ "$(metric 'sitrep_ingest_rotations_total{service="web",path="'"$log"'",kind="rename"}')" = 1 ]

# --- Phase C: sitrep stops; nginx goes on writing and rotates; sitrep starts again ---
kill -TERM "$pid"
wait "$pid"
restart_ms=$(date +%s%3N)
mine=0
for i in 1 2 3 4 5; do req "/users/$i"; done
mv "$log" "$log.rot2"
"$NGINX" -p "$ngx" -c "$ngx/nginx.conf" -s reopen 2>>"$E2E_TMP/log"
wait_file "$log"
req /users/6
req /health
start_sitrep "$cfg" "$port" "$data" || { cat "$E2E_TMP/log"; exit 1; }
check "phase C: after the restart, exactly what was written while stopped" wait_count $mine
check "phase C: the file rotated while stopped was found and finished" \
    grep -q "resuming $log.rot2 (rotated while stopped)" "$E2E_TMP/log"

# --- Phase D: copytruncate ---
cp "$log" "$log.2"
truncate -s 0 "$log"
for i in 1 2 3 4 5 6; do req "/users/$((i + 100))"; done
check "phase D: copytruncate: the new lines counted once" wait_count $mine
check "phase D: the truncation is seen" \
    [ "$(metric 'sitrep_ingest_rotations_total{service="web",path="'"$log"'",kind="truncate"}')" = 1 ]

# --- The store: exact counts across both runs of sitrep ---
logged=$(cat "$log.1" "$log.rot2" "$log.2" "$log" | grep -vc 'not an access log line')
check "nginx logged every request sent ($sent)" [ "$logged" = "$sent" ]
sleep 1.5 # one more tick, so the last counts are in the store
for fam in accesslog_requests_total accesslog_errors_total accesslog_retries_total \
    accesslog_request_duration_seconds_bucket accesslog_counter_matches_total \
    accesslog_response_bytes_total sitrep_ingest_malformed_lines_total; do
    export_series "$url" "$fam" "$E2E_TMP/$fam.json"
done
# total FAMILY [LABEL=VALUE...]: the family's count over both runs: for each
# series, its last sample before the restart plus its last sample after (a
# restart starts counters from 0, as in Prometheus).
total() {
    python3 - "$E2E_TMP/$1.json" "$restart_ms" "${@:2}" <<'PY'
import json, sys
path, cut, want = sys.argv[1], int(sys.argv[2]), dict(a.split("=", 1) for a in sys.argv[3:])
tot = 0.0
for line in open(path):
    s = json.loads(line)
    if any(s["metric"].get(k) != v for k, v in want.items()):
        continue
    before = [float(v) for v, t in zip(s["values"], s["timestamps"]) if t < cut]
    after = [float(v) for v, t in zip(s["values"], s["timestamps"]) if t > cut]
    tot += (before[-1] if before else 0) + (after[-1] if after else 0)
print(int(tot) if tot == int(tot) else tot)
PY
}
check "store: requests over both runs == requests sent ($sent): none lost, none twice" \
    [ "$(total accesslog_requests_total)" = "$sent" ]
check "store: /users/N with ids and query strings is one route, /users/:num (29 requests)" \
    [ "$(total accesslog_requests_total route=/users/:num code=2xx)" = 29 ]
check "store: 404s to unknown paths are route other (5)" \
    [ "$(total accesslog_requests_total route=other code=4xx)" = 5 ]
check "store: a configured route pattern holds its 404s (2)" \
    [ "$(total accesslog_requests_total route=/static/** code=4xx)" = 2 ]
check "store: HEAD, POST and GET of /health are told apart" \
    [ "$(total accesslog_requests_total route=/health method=HEAD) $(total accesslog_requests_total route=/health method=POST) $(total accesslog_requests_total route=/health method=GET)" = "1 1 1" ]
check "store: /busy: 40 errors" [ "$(total accesslog_errors_total route=/busy)" = 40 ]
check "store: /busy: 39 retries after a 503 (all but the first)" \
    [ "$(total accesslog_retries_total route=/busy)" = 39 ]
check "store: the counter of 503 lines" \
    [ "$(total accesslog_counter_matches_total counter=busy)" = 40 ]
check "store: bytes sent for /big.bin" \
    [ "$(total accesslog_response_bytes_total route=/big.bin)" = 300000 ]
check "store: no route label keeps an id or a query string" python3 -c "
import json
for line in open('$E2E_TMP/accesslog_requests_total.json'):
    r = json.loads(line)['metric']['route']
    assert '?' not in r and not any(c.isdigit() for c in r), r"
# The slow downloads took more than 5 s by nginx's own clock: check that, then the buckets.
slow=$(grep -c '"GET /big.bin HTTP/1.1" 200 150000 .* \([5-9]\|[1-9][0-9]\)\.[0-9]*$' "$log.1")
check "nginx timed both downloads above 5 s" [ "$slow" = 2 ]
check "store: histogram: no download in le=5, both in le=+Inf" \
    [ "$(total accesslog_request_duration_seconds_bucket route=/big.bin le=5) $(total accesslog_request_duration_seconds_bucket route=/big.bin le=+Inf)" = "0 2" ]
check "store: histogram: fast /users/ answers are all below 5 s" \
    [ "$(total accesslog_request_duration_seconds_bucket route=/users/:num le=5)" = 29 ]
check "store: one malformed line" [ "$(total sitrep_ingest_malformed_lines_total)" = 1 ]

# --- The query API across the restart ---
t_end=$(date +%s.%N)
w=$(python3 -c "print(int($t_end - $t_a))") # the window: from t_a (late in phase A) to now
inc=$(qv "sum(increase(accesslog_requests_total{service=\"web\",route=\"/users/:num\"}[${w}s]))" --data-urlencode "time=$t_end")
# 7 + 6 + 6 requests in phases B-D, the restart's counter reset included. increase()
# scales the samples' span up to the window's edges (Prometheus' extrapolation):
# with 1 s ticks each edge is under ~1.1 s from a sample, hence the upper bound.
check "query: increase() over the window for /users/:num: 19 across the restart ($inc, ${w}s)" \
    python3 -c "assert 19 <= $inc <= 19 * $w / ($w - 2.2)"
check "query: no 4xx or 5xx in that window, by status class" \
    [ "$(qv "sum by (code) (increase(accesslog_requests_total{service=\"web\",code!=\"2xx\"}[${w}s]))" --data-urlencode "time=$t_end")" = $'code=4xx 0\ncode=5xx 0' ]
check "query: rate() of errors over that window is 0" \
    [ "$(qv "sum(rate(accesslog_errors_total{service=\"web\"}[${w}s]))" --data-urlencode "time=$t_end")" = 0 ]
# /users/:num (one series in both runs) since the restart, a point a second: the
# first is the first run's last sample (lookback), then one reset, then the second run's.
curl -fsS -G "$url/api/v1/query_range" \
    --data-urlencode 'query=sum(accesslog_requests_total{service="web",route="/users/:num"})' \
    --data-urlencode "start=$(python3 -c "print($restart_ms / 1000)")" --data-urlencode "end=$t_end" \
    --data-urlencode step=1 -o "$E2E_TMP/range.json"
check "query_range: /users/:num: 17 in the first run + 12 in the second, one reset" \
    python3 - "$E2E_TMP/range.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
v = [float(x) for _, x in r[0]["values"]]
drops = [i for i in range(1, len(v)) if v[i] < v[i - 1]]
assert len(r) == 1 and len(drops) == 1 and (v[0], v[-1]) == (17, 12), v
PY

# --- Phase E: the client from X-Forwarded-For, behind a proxy at 127.0.0.3 ---
xreq() { # xreq [curl args...] PATH, from 127.0.0.3 to the edge server
    curl -s -o /dev/null --interface 127.0.0.3 "${@:1:$#-1}" "http://127.0.0.1:$xport${*: -1}"
}
for i in 1 2 3 4 5 6; do xreq -H 'X-Forwarded-For: 203.0.113.10, 10.1.1.1' "/api/$i"; done
for i in 1 2 3; do xreq -H 'X-Forwarded-For: 198.51.100.20' /busy; done
for i in 1 2; do xreq -H 'X-Forwarded-For: 2001:db8::5' /api/x; done
curl -s -o /dev/null "http://127.0.0.1:$xport/api/0" # no header: nginx logs "-"
check "edge: nginx logged the header last but one, as sitrep expects" \
    [ "$(grep -c '" "203.0.113.10, 10.1.1.1" [0-9.]*$' "$ngx/logs/edge.log")" = 6 ]
check "edge: 12 requests" wait_q 'sum(accesslog_requests_total{service="edge"})' 12
check "edge: top clients, busiest first: forwarded addresses (a list's first), remote_addr without one" \
    [ "$(ql 'sort_desc(accesslog_top_client_requests_per_second{service="edge"})' client)" = \
        "203.0.113.10 198.51.100.20 2001:db8::5 127.0.0.1" ]
check "edge: the 503s are charged to the forwarded client" \
    [ "$(ql 'accesslog_top_client_errors_per_second{service="edge"} > 0' client)" = 198.51.100.20 ]
share=$(qv 'sum(accesslog_top_client_share{service="edge",client="203.0.113.10"})')
# 6 of 12, weighted to recent requests (its come first): about half
check "edge: 203.0.113.10's share is about 6/12 ($share)" python3 -c "assert 0.45 < $share < 0.55"
check "edge: four distinct clients" wait_q 'sum(accesslog_clients_distinct_total{service="edge"})' 4
finish
