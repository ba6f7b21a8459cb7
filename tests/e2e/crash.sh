#!/usr/bin/env bash
# crash.sh: kill -9 the real daemon at random moments, 20 times, while it
# ingests its own host metrics with 10 s blocks (so cuts, compactions and
# checkpoints are under way at some of the kills). After each restart:
#   - every sample the API showed more than 1 s before the kill is there,
#     with the same value;
#   - no series appears twice and no timestamp twice or out of order;
#   - the store opened without help (the daemon is healthy again).
# An exec source makes 50 new series every 3 s (crash_churn{gen,k}), as
# processes coming and going do, so the store forgets dead series (and
# renumbers the rest, re-declaring them in the WAL) between and at the kills;
# their samples are compared like the rest.
# Randomness is seeded (CRASH_SEED, default: the date) and printed, so a
# failure can be replayed.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
seed=${CRASH_SEED:-$(date +%s)}
RANDOM=$seed
echo "# seed $seed"
port=$(free_port)
data=$E2E_TMP/data
cfg=$E2E_TMP/sitrep.yml
store_config "$cfg"
cat >>"$cfg" <<'YML'
exec:
  - job: churn
    interval: 1s
    command: [sh, -c, 'g=$(($(date +%s) / 3)); for k in $(seq 1 50); do echo "crash_churn{gen=\"$g\",k=\"$k\"} $g"; done']
YML
url=http://127.0.0.1:$port
sel='{__name__=~"node_time_seconds|node_load1|sitrep_tsdb_series|node_cpu_seconds_total|crash_churn"}'

start() { start_sitrep "$cfg" "$port" "$data"; }

export_all() { export_series "$url" "$sel" "$1"; }

# compare BEFORE AFTER KILL_MS: every sample of BEFORE older than KILL_MS - 1000
# is in AFTER with its value; AFTER has no duplicate series or timestamps.
compare() {
    python3 "$SITREP_SRC/tests/e2e/export_diff.py" "$1" "$2" --until "$(($3 - 1000))" --expect-none
}

start || { cat "$E2E_TMP/log"; exit 1; }
sleep 3
for i in $(seq 1 20); do
    # Some kills land right after a window closes (cut) or within a sync.
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    export_all "$E2E_TMP/before" || { not_ok "export before kill $i"; break; }
    sleep "0.$((RANDOM % 10))"
    kill_ms=$(($(date +%s%3N)))
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    if ! start; then
        not_ok "restart $i: store opens without repair"
        tail -20 "$E2E_TMP/log"
        break
    fi
    export_all "$E2E_TMP/after" || { not_ok "export after kill $i"; break; }
    if out=$(compare "$E2E_TMP/before" "$E2E_TMP/after" "$kill_ms"); then
        ok "kill $i: nothing acknowledged lost, nothing duplicated ($(tail -1 <<<"$out" | tr -d '#'))"
    else
        not_ok "kill $i: $out"
        ls -l "$data/tsdb" "$data/tsdb/raw" "$data/tsdb/wal"
        tail -15 "$E2E_TMP/log"
        keep=/tmp/crash-failure.$seed.$i
        rm -rf "$keep" && cp -a "$E2E_TMP" "$keep" && echo "# kept in $keep"
    fi
done
kill -TERM "$pid"
wait "$pid"
grep -E "error|warn" "$E2E_TMP/log" | sort | uniq -c | sort -rn | head -5
# The run cut blocks (10 s windows), so some kills hit a cut or a checkpoint.
blocks=$(find "$data/tsdb/raw" -maxdepth 1 -name 'b-*' | wc -l)
check "raw blocks were cut during the run ($blocks)" [ "$blocks" -ge 1 ]
leftover=$(find "$data/tsdb" -name '*tmp*')
check "no unfinished block or checkpoint left after the restarts" [ -z "$leftover" ]
# Dead churn series were forgotten (after cuts and at starts) between the kills.
runs=$(grep -c "forgot .* series with no samples left in memory" "$E2E_TMP/log")
check "the store forgot dead series during the run ($runs times)" [ "$runs" -ge 2 ]
check "the log reports no damaged data" bash -c "! grep -Ei 'corrupt|damaged' '$E2E_TMP/log'"
finish
