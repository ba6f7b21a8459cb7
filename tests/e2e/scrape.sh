#!/usr/bin/env bash
# scrape.sh: the daemon scrapes real endpoints on loopback and the samples
# are checked through PromQL: Debian's node_exporter (text format 0.0.4;
# 1.5 has no OpenMetrics output) and a Python http.server that answers only
# an OpenMetrics request, with `# EOF`, a `_total` counter, a timestamp in
# seconds (which the text format would refuse) and job/instance labels that
# clash with the target's. Two targets of one job get their own instance
# from static_configs; honor_labels true and false are compared.
set -u
. "$(dirname "$0")/lib.bash"
command -v prometheus-node-exporter >/dev/null ||
    { echo "SKIP: prometheus-node-exporter not installed (scripts/deps.sh test installs it)"; exit 0; }
port=$(free_port)
url=http://127.0.0.1:$port
ne=$(free_port)
app=$(free_port)
# Exporter metrics off and two collectors: a body whose sample count is fixed.
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne" --web.disable-exporter-metrics \
    --collector.disable-defaults --collector.loadavg --collector.meminfo 2>"$E2E_TMP/ne.log" &
E2E_PIDS+=($!)
cat >"$E2E_TMP/om.py" <<'PY'
import http.server, sys
BODY = b'''# HELP app_orders Orders taken.
# TYPE app_orders counter
app_orders_total{code="200",job="inner",instance="pod-7"} 5 1700000000.5
app_orders_created{code="200",job="inner",instance="pod-7"} 1700000000.25
# TYPE app_queue_depth gauge
app_queue_depth{queue="mail"} 12
# EOF
'''
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # A scraper that does not ask for OpenMetrics gets 406, hence up 0.
        if 'application/openmetrics-text' not in self.headers.get('Accept', ''):
            self.send_error(406)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/openmetrics-text; version=1.0.0; charset=utf-8')
        self.send_header('Content-Length', str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
python3 "$E2E_TMP/om.py" "$app" 2>"$E2E_TMP/om.log" &
E2E_PIDS+=($!)
wait_http "http://127.0.0.1:$ne/metrics" || { cat "$E2E_TMP/ne.log"; exit 1; }
for i in $(seq 1 100); do
    curl -fsS -o /dev/null -H 'Accept: application/openmetrics-text' "http://127.0.0.1:$app/metrics" 2>/dev/null && break
    [ "$i" = 100 ] && { echo "no OpenMetrics server"; cat "$E2E_TMP/om.log"; exit 1; }
    sleep 0.1
done
cfg=$E2E_TMP/sitrep.yml
cat >"$cfg" <<YML
collect: {top_processes: 1}
scrape:
  - job_name: fleet
    scrape_interval: 1s
    labels: {env: e2e}
    static_configs:
      - targets: ["127.0.0.1:$ne"]
        labels: {instance: host-a, tier: host}
      - targets: ["127.0.0.1:$app"]
        labels: {instance: web-1}
  - job: honor
    interval: 1s
    honor_labels: true
    targets: ["127.0.0.1:$app"]
  - job: plain
    interval: 1s
    targets: ["127.0.0.1:$ne"]
YML
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
q() { curl -sS -G "$url/api/v1/query" --data-urlencode "query=$1"; }
val() { python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 'none')"; }
# Every target scraped at least twice (the first scrapes are spread over the interval).
for i in $(seq 1 100); do
    [ "$(q 'count(count_over_time(up[1m]) >= 2)' | val)" = 4 ] && break
    sleep 0.1
done
check "two targets of one job, each with its static_configs instance" \
    [ "$(q 'count by (job) (up{job="fleet",env="e2e",instance=~"host-a|web-1"} == 1)' | val)" = 2 ]
check "the group's own label beside the job's (tier=host on host-a only)" \
    [ "$(q 'count(up{job="fleet",tier="host"})' | val)" = 1 ]
check "up is 1 for the OpenMetrics-only server: sitrep asked for OpenMetrics and parsed it" \
    [ "$(q 'up{job="fleet",instance="web-1"}' | val)" = 1 ]
check "without labels the instance is host:port" [ "$(q "up{job=\"plain\",instance=\"127.0.0.1:$ne\"}" | val)" = 1 ]
d=$(q 'scrape_duration_seconds{job="fleet",instance="host-a"}' | val)
check "scrape_duration_seconds within the 1 s timeout ($d)" \
    awk -v d="$d" 'BEGIN { exit !(d != "none" && d > 0 && d <= 1) }'
# node_exporter's text format: the stored samples are what it serves.
ne_val() { curl -fsS "http://127.0.0.1:$ne/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
before=$(ne_val node_load1)
got=$(q 'node_load1{job="fleet",instance="host-a",tier="host",env="e2e"}' | val)
after=$(ne_val node_load1)
check "node_load1 is node_exporter's ($got; it served $before, then $after)" python3 -c "
import sys; g = float('$got' if '$got' != 'none' else 'nan')
sys.exit(not any(abs(g - x) <= 0.2 + 0.1 * x for x in ($before, $after)))"
mem=$(ne_val node_memory_MemTotal_bytes)
got=$(q 'node_memory_MemTotal_bytes{job="plain"}' | val)
check "node_memory_MemTotal_bytes is node_exporter's exactly ($got = $mem)" \
    python3 -c "import sys; sys.exit(float('$got' if '$got' != 'none' else 'nan') != float('$mem'))"
n=$(curl -fsS "http://127.0.0.1:$ne/metrics" | grep -c -v '^#')
check "scrape_samples_scraped is every sample node_exporter serves ($n)" \
    [ "$(q 'scrape_samples_scraped{job="plain"}' | val)" = "$n" ]
# OpenMetrics: honor_labels false keeps the target's job/instance, the scraped ones become exported_*.
check "honor_labels false: job/instance as configured, the app's as exported_job/exported_instance" \
    [ "$(q 'app_orders_total{job="fleet",instance="web-1",env="e2e",exported_job="inner",exported_instance="pod-7",code="200"}' | val)" = 5 ]
check "the OpenMetrics gauge carries the configured job and instance" \
    [ "$(q 'app_queue_depth{job="fleet",instance="web-1",queue="mail"}' | val)" = 12 ]
check "scrape_samples_scraped of the OpenMetrics body (3)" \
    [ "$(q 'scrape_samples_scraped{job="fleet",instance="web-1"}' | val)" = 3 ]
check "honor_labels true: the app's job and instance win" \
    [ "$(q 'app_orders_total{job="inner",instance="pod-7",code="200"}' | val)" = 5 ]
check "honor_labels true: no series keeps the target's job" [ "$(q 'app_orders_total{job="honor"}' | val)" = none ]
check "honor_labels true: its up still has the target's labels" \
    [ "$(q "up{job=\"honor\",instance=\"127.0.0.1:$app\"}" | val)" = 1 ]
check "exported_job only where honor_labels is false" [ "$(q 'count(app_orders_total{exported_job!=""})' | val)" = 1 ]
# Self-metrics are served on /metrics, not stored.
f=$(curl -fsS "$url/metrics" | awk '/^sitrep_scrape_failures_total\{/ { n += $2; c++ } END { print c ? n : "none" }')
check "no scrape failed (sitrep_scrape_failures_total $f)" [ "$f" = 0 ]
finish
