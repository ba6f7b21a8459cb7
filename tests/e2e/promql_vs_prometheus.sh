#!/usr/bin/env bash
# promql_vs_prometheus.sh: differential test of the query engine against the
# real thing. One OpenMetrics corpus (counters with a reset, gauges, a gap,
# a classic histogram; 2 h at 15 s) goes into Debian's Prometheus through
# `promtool tsdb create-blocks-from openmetrics` and into sitrep through
# `sitrep import`; both serve it on loopback, and promql_diff.py runs well
# over 100 instant and range queries on both and compares the JSON answers.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
    { echo "# SKIP: prometheus/promtool not installed (scripts/deps.sh test installs them)"; exit 0; }
t0=1700000000
om=$E2E_TMP/corpus.om
python3 "$SITREP_SRC/tests/e2e/promql_diff.py" gen "$om" $t0
promtool tsdb create-blocks-from openmetrics "$om" "$E2E_TMP/prom" >"$E2E_TMP/promtool.log" 2>&1 ||
    { not_ok "promtool imports the corpus"; cat "$E2E_TMP/promtool.log"; finish; exit 1; }
out=$("$B" import "$om" --data "$E2E_TMP/sitrep" 2>&1)
check "sitrep import takes the corpus without refusals ($out)" \
    grep -q ' 0 out of order, 0 too old, 0 over the series cap, 0 invalid; 0 bad lines' <<<"$out"

pport=$(free_port)
echo "global: {scrape_interval: 1h}" >"$E2E_TMP/prom.yml"
prometheus --config.file="$E2E_TMP/prom.yml" --storage.tsdb.path="$E2E_TMP/prom" \
    --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$pport" \
    --log.level=warn >"$E2E_TMP/prom.log" 2>&1 &
E2E_PIDS+=($!)
sport=$(free_port)
# The corpus is from 2023: keep it next to what the collector adds today.
cat >"$E2E_TMP/sitrep.yml" <<YML
collect: {top_processes: 1}
storage:
  retention: {raw: 36500d, 1m: 36500d, 1h: 36500d}
YML
start_sitrep "$E2E_TMP/sitrep.yml" "$sport" "$E2E_TMP/sitrep" || { cat "$E2E_TMP/log"; exit 1; }
wait_http "http://127.0.0.1:$pport/-/ready" 60 || { cat "$E2E_TMP/prom.log"; exit 1; }

out=$(python3 "$SITREP_SRC/tests/e2e/promql_diff.py" compare "http://127.0.0.1:$sport" \
    "http://127.0.0.1:$pport" $t0 2>&1)
rc=$?
grep DIFF <<<"$out" | head -40
n=$(grep -o '^# [0-9]* queries' <<<"$out" | grep -o '[0-9]*')
check "at least 100 queries were compared (${n:-0})" [ "${n:-0}" -ge 100 ]
check "sitrep answers as Prometheus does ($(tail -1 <<<"$out" | tr -d '#'))" [ $rc = 0 ]
finish
