#!/usr/bin/env bash
# tsan_stress.sh: the daemon built with ThreadSanitizer ($SITREP_TSAN_BIN,
# from `make test`'s build-tsan tree) under concurrent scrapes, HTTP reloads
# and SIGHUP reloads from its first moments on; then with 10 s blocks and
# churning series, so the store cuts and forgets series while queried;
# fails on any data race report.
set -u
. "$(dirname "$0")/lib.bash"
tsan_bin=${SITREP_TSAN_BIN:-$SITREP_SRC/build-tsan/sitrep}
[ -x "$tsan_bin" ] || { echo "SKIP: no ThreadSanitizer build at $tsan_bin (make test builds it)"; exit 0; }
port=$(free_port)
TSAN_OPTIONS="halt_on_error=0 exitcode=0" "$tsan_bin" serve --listen "127.0.0.1:$port" \
    --data "$E2E_TMP/data" 2>"$E2E_TMP/tsan.log" &
pid=$!
E2E_PIDS+=($pid)
for i in $(seq 1 50); do # start hammering while the daemon is still starting
    curl -s -o /dev/null "http://127.0.0.1:$port/metrics" &
    curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/-/reload" &
    [ $((i % 10)) = 0 ] && kill -HUP $pid
    sleep 0.1
done
wait_http "http://127.0.0.1:$port/-/healthy" 20 || { tail -20 "$E2E_TMP/tsan.log"; exit 1; }
sleep 1
kill -TERM $pid
wait $pid
E2E_PIDS=()
races=$(grep -c 'WARNING: ThreadSanitizer' "$E2E_TMP/tsan.log")
check "no data race under scrapes and reloads ($races reported)" [ "$races" = 0 ]
[ "$races" = 0 ] || grep -A20 'WARNING: ThreadSanitizer' "$E2E_TMP/tsan.log" | head -60

# The store's background work under load: 10 s blocks, and an exec source
# making 50 new series every 2 s, so windows are cut and dead series
# forgotten (index and head rebuilt, ids renumbered) while queries, scrapes,
# rule evaluation and appends run.
store_config "$E2E_TMP/churn.yml"
cat >>"$E2E_TMP/churn.yml" <<'YML'
exec:
  - job: churn
    interval: 1s
    command: [sh, -c, 'g=$(($(date +%s) / 2)); for k in $(seq 1 50); do echo "tsan_churn{gen=\"$g\",k=\"$k\"} $k"; done']
YML
port=$(free_port)
TSAN_OPTIONS="halt_on_error=0 exitcode=0" "$tsan_bin" serve --config "$E2E_TMP/churn.yml" \
    --listen "127.0.0.1:$port" --data "$E2E_TMP/churn" 2>"$E2E_TMP/tsan2.log" &
pid=$!
E2E_PIDS+=($pid)
wait_http "http://127.0.0.1:$port/-/healthy" 30 || { tail -20 "$E2E_TMP/tsan2.log"; exit 1; }
q="http://127.0.0.1:$port/api/v1/query"
end=$((SECONDS + 40))
while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null "$q" --data-urlencode 'query=count(count_over_time(tsan_churn[1m]))' &
    curl -s -o /dev/null "$q" --data-urlencode 'query=sum(rate(node_cpu_seconds_total[30s]))' &
    curl -s -o /dev/null "http://127.0.0.1:$port/metrics" &
    sleep 0.2
done
wait_http "http://127.0.0.1:$port/-/healthy" 20
kill -TERM $pid
wait $pid
E2E_PIDS=()
forgot=$(grep -c "forgot .* series with no samples left in memory" "$E2E_TMP/tsan2.log")
check "the store forgot dead series while queried ($forgot times)" [ "$forgot" -ge 1 ]
races=$(grep -c 'WARNING: ThreadSanitizer' "$E2E_TMP/tsan2.log")
check "no data race while cutting and forgetting under queries ($races reported)" [ "$races" = 0 ]
[ "$races" = 0 ] || grep -A30 'WARNING: ThreadSanitizer' "$E2E_TMP/tsan2.log" | head -80
finish
