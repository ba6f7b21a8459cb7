#!/usr/bin/env bash
# signals.sh: probes, StatsD and scraping inside the real daemon, end to end
# through PromQL: an HTTP probe of a real local server (python's
# http.server) and of a closed port, StatsD packets over UDP,
# and a scrape of the daemon's own /metrics (which re-serves the StatsD
# series, hence job!="self" below); then a reload that changes only
# the probes keeps StatsD's counts.
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
statsd: {listen: "127.0.0.1:$sport"}
scrape:
  - {job: self, targets: ["127.0.0.1:$port"], interval: 1s}
YML
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
for i in $(seq 1 20); do
    printf 'orders.created:1|c\norders.created:2|c|#shop:eu\nqueue.depth:42|g\nlatency:250|ms\n' >/dev/udp/127.0.0.1/$sport
    sleep 0.1
done
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
