#!/usr/bin/env bash
# signals.sh: probes, StatsD and scraping inside the real daemon, end to end
# through PromQL: an HTTP probe of a real local server (python's
# http.server) and of a closed port, StatsD packets over UDP,
# and a scrape of the daemon's own /metrics (which re-serves the StatsD
# series, hence job!="self" below); then a reload that changes only
# the probes keeps StatsD's counts. StatsD goes out through bash's
# /dev/udp (one datagram per printf); no netcat or socat is needed.
# Scraping other exporters: scrape.sh.
set -u
. "$(dirname "$0")/lib.bash"
port=$(free_port)
url=http://127.0.0.1:$port
web=$(free_port)
closed=$(free_port)
sport=$(free_port)
mkdir -p "$E2E_TMP/www" && echo ok >"$E2E_TMP/www/index.html"
python3 -m http.server "$web" --bind 127.0.0.1 --directory "$E2E_TMP/www" >/dev/null 2>&1 &
E2E_PIDS+=($!)
wait_http "http://127.0.0.1:$web/" 10 || { echo "no web server"; exit 1; }
cfg=$E2E_TMP/sitrep.yml
cat >"$cfg" <<YML
collect: {top_processes: 1}
probes:
  - {name: web, url: "http://127.0.0.1:$web/", interval: 1s, timeout: 1s, body_regex: ok}
  - {name: down, url: "http://127.0.0.1:$closed/", interval: 1s, timeout: 1s}
statsd: {listen: "127.0.0.1:$sport", histogram_buckets: [100, 1000, 10000]}
scrape:
  - {job: self, targets: ["127.0.0.1:$port"], interval: 1s}
YML
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
for i in $(seq 1 20); do
    printf 'orders.created:1|c\norders.created:2|c|#shop:eu\nqueue.depth:42|g\nlatency:250|ms\n' >/dev/udp/127.0.0.1/$sport
    sleep 0.1
done
udp() { printf "$1" >/dev/udp/127.0.0.1/$sport; }
# Gauge deltas move the last value; "set 0 first" makes a negative value.
udp 'temp:10|g\n'
udp 'temp:+5|g\n'
udp 'temp:-3|g\n'
udp 'neg:0|g\nneg:-7|g\n'
# One datagram for the set: its members fall in one set_window whatever the clock.
udp "$(for i in $(seq 1 20); do printf 'users:u%d|s\\n' $((i % 5)); done)"
# Sample rates: each sampled increment counts 1/rate.
for i in $(seq 1 20); do udp 'sampled:1|c|@0.1\n'; done
udp 'sampled:2|c|@0.5\n'
# Timer: 50 x 10 ms (on the 0.01 bound), 30 x 200 ms, 20 x 800 ms (10 packets at @0.5).
ten=$(printf ':10%.0s' $(seq 1 25))
udp "resp${ten}|ms\nresp${ten}|ms\n"
udp "resp$(printf ':200%.0s' $(seq 1 30))|ms\n"
for i in $(seq 1 10); do udp 'resp:800|ms|@0.5\n'; done
# |h and |d into histogram_buckets [100, 1000, 10000].
udp 'payload:300|h\npayload:300:300|d\npayload:5000|h\n'
sleep 4
q() { curl -sS -G "$url/api/v1/query" --data-urlencode "query=$1"; }
val() { python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 'none')"; }
check "probe_success is 1 for the live server ($(q 'probe_success{service="web"}' | val))" \
    [ "$(q 'probe_success{service="web"}' | val)" = 1 ]
check "probe_success is 0 for the closed port" [ "$(q 'probe_success{service="down"}' | val)" = 0 ]
check "the daemon's own network is fine (sitrep_probe_network_ok 1)" [ "$(q 'sitrep_probe_network_ok' | val)" = 1 ]
check "probe_http_status_code is 200" [ "$(q 'probe_http_status_code{service="web"}' | val)" = 200 ]
n=$(q 'sum(orders_created_total{job!="self"})' | val)
check "StatsD counters land in the store (sum $n = 20 x 3)" [ "$n" = 60 ]
check "DogStatsD tags become labels" [ "$(q 'orders_created_total{shop="eu",job!="self"}' | val)" = 40 ]
check "StatsD gauge" [ "$(q 'queue_depth{job!="self"}' | val)" = 42 ]
check "StatsD timer as a classic histogram (count 20)" [ "$(q 'latency_count{job!="self"}' | val)" = 20 ]
# between LO X HI: LO < X <= HI (a histogram bucket's bounds).
between() { awk -v lo="$1" -v x="$2" -v hi="$3" 'BEGIN { exit !(x != "none" && x > lo && x <= hi) }'; }
check "StatsD gauge +5 then -3 from 10 (12)" [ "$(q 'temp{job!="self"}' | val)" = 12 ]
check "StatsD gauge set to 0 then -7 (-7)" [ "$(q 'neg{job!="self"}' | val)" = -7 ]
check "StatsD set counts distinct members (5 of 20 lines)" [ "$(q 'users{job!="self"}' | val)" = 5 ]
check "StatsD counter sample rates (20 x 1/0.1 + 2/0.5 = 204)" \
    [ "$(q 'sampled_total{job!="self"}' | val)" = 204 ]
check "StatsD timer count with a sampled part (50 + 30 + 10/0.5 = 100)" \
    [ "$(q 'resp_count{job!="self"}' | val)" = 100 ]
for b in 0.005:0 0.01:50 0.1:50 0.25:80 0.5:80 1:100 +Inf:100; do
    v=$(q "resp_bucket{job!=\"self\",le=\"${b%%:*}\"}" | val)
    check "StatsD timer bucket le=${b%%:*} holds ${b#*:} ($v)" [ "$v" = "${b#*:}" ]
done
v=$(q 'resp_sum{job!="self"}' | val)
check "StatsD timer sum in seconds (22.5: $v)" between 22.49 "$v" 22.51
v=$(q 'histogram_quantile(0.9, resp_bucket{job!="self"})' | val)
check "histogram_quantile(0.9) of the timer in (0.5, 1], the bucket of 800 ms ($v)" between 0.5 "$v" 1
v=$(q 'histogram_quantile(0.5, resp_bucket{job!="self"})' | val)
check "histogram_quantile(0.5) of the timer in (0.005, 0.01], the bucket of 10 ms ($v)" \
    between 0.005 "$v" 0.01
for b in 100:0 1000:3 10000:4 +Inf:4; do
    v=$(q "payload_bucket{job!=\"self\",le=\"${b%%:*}\"}" | val)
    check "StatsD |h and |d bucket le=${b%%:*} holds ${b#*:} ($v)" [ "$v" = "${b#*:}" ]
done
v=$(q 'histogram_quantile(0.5, payload_bucket{job!="self"})' | val)
check "histogram_quantile(0.5) of |h/|d in (100, 1000], the bucket of 300 ($v)" between 100 "$v" 1000
check "scrape: up{job=\"self\"} is 1" [ "$(q 'up{job="self"}' | val)" = 1 ]
check "scraped samples carry job and instance" \
    [ "$(q "count(node_load1{job=\"self\",instance=\"127.0.0.1:$port\"})" | val)" = 1 ]
# A reload that only changes the probes keeps the StatsD listener and its counts.
sed -i "s/name: down, url: \(.*\), interval: 1s/name: down, url: \1, interval: 2s/" "$cfg"
curl -fsS -XPOST "$url/-/reload" >/dev/null
sleep 2
printf 'orders.created:1|c\n' >/dev/udp/127.0.0.1/$sport
sleep 2
check "after a probes-only reload StatsD counts go on (61)" [ "$(q 'sum(orders_created_total{job!="self"})' | val)" = 61 ]
finish
