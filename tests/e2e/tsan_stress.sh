#!/usr/bin/env bash
# tsan_stress.sh: the daemon built with ThreadSanitizer ($SITREP_TSAN_BIN,
# from `make test`'s build-tsan tree) under concurrent scrapes, HTTP reloads
# and SIGHUP reloads from its first moments on; fails on any data race report.
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
finish
