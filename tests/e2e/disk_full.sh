#!/usr/bin/env bash
# disk_full.sh: the store's file system fills up under the real binary. The
# data directory is on a small tmpfs; a filler file takes every free byte
# while sitrep ingests with 10 s blocks. sitrep must
#   - say so: sitrep_tsdb_writes_blocked becomes 1 and the log explains;
#   - keep collecting into memory and answering queries;
#   - resume writing when the filler is removed (blocked back to 0, blocks
#     cut again), and
#   - lose nothing it acknowledged: after a kill -9 and restart, every sample
#     served before (including those taken while the disk was full) is there.
# Needs root to mount the tmpfs; skipped (exit 0, with the reason) otherwise.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
small=$E2E_TMP/small
mkdir -p "$small"
if ! mount -t tmpfs -o size=32m tmpfs "$small" 2>/dev/null; then
    echo "# SKIP: cannot mount a tmpfs here (needs root): $(id -un)"
    exit 0
fi
cleanup_mount() { umount -l "$small" 2>/dev/null; e2e_cleanup; }
trap cleanup_mount EXIT INT TERM

port=$(free_port)
url=http://127.0.0.1:$port
data=$small/data
cfg=$E2E_TMP/sitrep.yml
store_config "$cfg"
cat >>"$cfg" <<YML
  min_free: 2MiB
  min_free_percent: 0
YML
sel='{__name__=~"node_cpu_seconds_total|node_load1|node_time_seconds"}'
start() { start_sitrep "$cfg" "$port" "$data"; }
export_all() { export_series "$url" "$sel" "$1"; }
metric() { curl -fsS "$url/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
wait_metric() { # wait_metric NAME VALUE SECONDS
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(metric "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
newest_ts() { # the newest sample time (ms) in an export
    python3 -c 'import json,sys; print(max(json.loads(l)["timestamps"][-1] for l in open(sys.argv[1])))' "$1"
}

start || { cat "$E2E_TMP/log"; exit 1; }
sleep 3
check "writing normally at first" [ "$(metric sitrep_tsdb_writes_blocked)" = 0 ]

# Fill every free byte (dd stops at ENOSPC).
dd if=/dev/zero of="$small/filler" bs=64k 2>/dev/null
full_ms=$(date +%s%3N)
echo "# filled: $(df -h "$small" | tail -1)"
check "sitrep_tsdb_writes_blocked becomes 1 when the disk is full" wait_metric sitrep_tsdb_writes_blocked 1 5
# Whichever path notices first (the free-space check, a WAL write, a sync, a
# block cut) logs the same line, just after the metric flips.
wait_log() { # wait_log PATTERN SECONDS
    for ((i = 0; i < $2 * 10; i++)); do
        grep -q "$1" "$E2E_TMP/log" && return 0
        sleep 0.1
    done
    return 1
}
check "the log says the store stopped writing" wait_log "stops writing to disk" 5
# Long enough for a 10 s window to be due: it stays in memory.
sleep 17
check "still healthy with a full disk" curl -fsS -o /dev/null "$url/-/healthy"
export_all "$E2E_TMP/during"
during_newest=$(newest_ts "$E2E_TMP/during")
check "samples keep arriving while the disk is full (newest $((during_newest - full_ms)) ms after the fill)" \
    [ "$during_newest" -gt $((full_ms + 10000)) ]
check "the metric still says blocked" [ "$(metric sitrep_tsdb_writes_blocked)" = 1 ]

rm -f "$small/filler"
check "writes resume when space returns (blocked back to 0)" wait_metric sitrep_tsdb_writes_blocked 0 10
check "the log says writing resumed" wait_log "writing again" 5
blocks0=$(metric sitrep_tsdb_blocks_written_total)
for ((i = 0; i < 200; i++)); do
    [ "$(metric sitrep_tsdb_blocks_written_total)" -gt "$blocks0" ] && break
    sleep 0.1
done
check "blocks are cut again after the resume" [ "$(metric sitrep_tsdb_blocks_written_total)" -gt "$blocks0" ]
sleep 2
export_all "$E2E_TMP/before"
sleep 1.5
kill_ms=$(date +%s%3N)
kill -9 "$pid"
wait "$pid" 2>/dev/null
start || { not_ok "restart after the disk-full episode"; tail -20 "$E2E_TMP/log"; finish; exit 1; }
export_all "$E2E_TMP/after"
out=$(python3 "$SITREP_SRC/tests/e2e/export_diff.py" "$E2E_TMP/during" "$E2E_TMP/after" --expect-none 2>&1)
check "every sample taken while the disk was full survives a kill -9 (${out//#/})" [ $? = 0 ]
out=$(python3 "$SITREP_SRC/tests/e2e/export_diff.py" "$E2E_TMP/before" "$E2E_TMP/after" \
    --until $((kill_ms - 1000)) --expect-none 2>&1)
check "nothing acknowledged is lost over the whole run (${out//#/})" [ $? = 0 ]
kill -TERM "$pid"
wait "$pid"
check "clean stop" [ $? = 0 ]
finish
