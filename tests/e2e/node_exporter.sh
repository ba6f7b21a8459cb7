#!/usr/bin/env bash
# node_exporter.sh: run the real sitrep beside Debian's node_exporter on
# loopback, validate sitrep's /metrics with promtool, and compare every
# metric both expose (see node_exporter_compare.py for the rules).
set -u
. "$(dirname "$0")/lib.bash"
for t in promtool prometheus-node-exporter; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh test installs it)"; exit 0; }
done
sp=$(free_port)
np=$(free_port)
"$SITREP_BIN" serve --listen "127.0.0.1:$sp" --data "$E2E_TMP/data" 2>"$E2E_TMP/sitrep.log" &
E2E_PIDS+=($!)
# qdisc, slabinfo, interrupts and softirqs are off by default in
# node_exporter; sitrep collects them, so turn them on where this
# node_exporter has them (1.5, Debian 12's, has all but softirqs) and their
# names are compared too. sitrep exports every vmstat and netstat field by
# default: so must node_exporter, for those to be compared.
ne_flags=(--collector.vmstat.fields='.*' --collector.netstat.fields='.*')
for c in qdisc slabinfo interrupts softirqs; do
    prometheus-node-exporter --help 2>&1 | grep -q -- "--collector\.$c " && ne_flags+=("--collector.$c")
done
prometheus-node-exporter --web.listen-address="127.0.0.1:$np" "${ne_flags[@]}" 2>"$E2E_TMP/ne.log" &
E2E_PIDS+=($!)
wait_http "http://127.0.0.1:$sp/-/healthy" || { cat "$E2E_TMP/sitrep.log"; exit 1; }
wait_http "http://127.0.0.1:$np/metrics" || { cat "$E2E_TMP/ne.log"; exit 1; }
sleep 2 # let sitrep's first ticks (and its process CPU deltas) happen
python3 "$SITREP_SRC/tests/e2e/node_exporter_compare.py" \
    "http://127.0.0.1:$sp/metrics" "http://127.0.0.1:$np/metrics"
