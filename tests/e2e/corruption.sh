#!/usr/bin/env bash
# corruption.sh: damaged files on disk, met by the real binary. The daemon
# ingests its host metrics with 10 s blocks until two raw blocks exist, is
# killed, and then one byte is flipped in each of: the newest block's chunks
# file, the oldest block's index, and the WAL segment (near its end, where
# the samples not yet in blocks are). After the restart sitrep must
#   - detect each by checksum and log which file and byte range;
#   - count them in its metrics;
#   - serve everything else: the only samples missing are the damaged
#     block's window (its index is unreadable), one series of the block with
#     the bad chunk, and at most one WAL record (one timestamp or one series);
#   - keep running, answer queries, stop cleanly, and leave the damaged block
#     on disk for a human.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
port=$(free_port)
url=http://127.0.0.1:$port
data=$E2E_TMP/data
raw=$data/tsdb/raw
cfg=$E2E_TMP/sitrep.yml
store_config "$cfg"
sel='{__name__=~"node_.*|sitrep_tsdb_series"}'

start() { start_sitrep "$cfg" "$port" "$data"; }
export_all() { export_series "$url" "$sel" "$1"; }
flip() { # flip FILE OFFSET: invert one byte
    python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

start || { cat "$E2E_TMP/log"; exit 1; }
for _ in $(seq 1 90); do
    [ "$(find "$raw" -maxdepth 1 -name 'b-*' 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 1
done
blocks=($(cd "$raw" && ls -d b-* | sort))
check "two raw blocks were cut (${#blocks[@]})" [ "${#blocks[@]}" -ge 2 ]
[ "${#blocks[@]}" -ge 2 ] || { finish; exit 1; }
sleep 2
export_all "$E2E_TMP/before"
sleep 1.5
kill -9 "$pid"
wait "$pid" 2>/dev/null

# The oldest block's index, the newest block's chunks, the newest WAL segment.
# (The newest block stays readable so the WAL is replayed only after it.)
bad_index=${blocks[0]}
bad_chunks=$(cd "$raw" && ls -d b-* | sort | tail -1)
seg=$(ls "$data/tsdb/wal" | sort | tail -1)
isz=$(stat -c %s "$raw/$bad_index/index")
csz=$(stat -c %s "$raw/$bad_chunks/chunks")
wsz=$(stat -c %s "$data/tsdb/wal/$seg")
flip "$raw/$bad_index/index" $((isz / 2))
flip "$raw/$bad_chunks/chunks" $((csz / 2))
flip "$data/tsdb/wal/$seg" $((wsz > 20000 ? wsz - 20000 : wsz / 2))
echo "# flipped: $bad_index/index@$((isz / 2)) $bad_chunks/chunks@$((csz / 2)) wal/$seg (size $wsz)"

start || { not_ok "the daemon starts on damaged files"; tail -20 "$E2E_TMP/log"; finish; exit 1; }
ok "the daemon starts on damaged files without help"
export_all "$E2E_TMP/after"
check "queries over the damaged range answer" test -s "$E2E_TMP/after"
log=$(cat "$E2E_TMP/log")
check "the bad index is reported with file and byte range" \
    grep -Eq "$bad_index/index: bytes 0-[0-9]+: checksum mismatch" <<<"$log"
check "the bad chunk is reported with file and byte range" \
    grep -Eq "$bad_chunks/chunks: bytes [0-9]+-[0-9]+: chunk [0-9]+ of series [0-9]+ skipped" <<<"$log"
check "the damaged WAL range is reported with file and byte range" \
    grep -Eq "wal/$seg: bytes [0-9]+-[0-9]+ damaged" <<<"$log"
m=$(curl -fsS "$url/metrics")
metric() { awk -v n="$1" '$1 == n {print $2}' <<<"$m"; }
check "sitrep_tsdb_blocks_unreadable_total is 1 ($(metric sitrep_tsdb_blocks_unreadable_total))" \
    [ "$(metric sitrep_tsdb_blocks_unreadable_total)" = 1 ]
check "sitrep_tsdb_corrupt_chunks_total counts the bad chunk ($(metric sitrep_tsdb_corrupt_chunks_total))" \
    [ "$(metric sitrep_tsdb_corrupt_chunks_total)" -ge 1 ]
check "sitrep_tsdb_wal_corrupt_ranges_total counts the WAL damage ($(metric sitrep_tsdb_wal_corrupt_ranges_total))" \
    [ "$(metric sitrep_tsdb_wal_corrupt_ranges_total)" -ge 1 ]

out=$(python3 "$SITREP_SRC/tests/e2e/export_diff.py" "$E2E_TMP/before" "$E2E_TMP/after" \
    --lost "$E2E_TMP/lost" 2>&1)
check "the store's answers are well formed (${out//#/})" [ $? = 0 ]
expl=$(python3 - "$E2E_TMP/lost" "$bad_index" "$bad_chunks" <<'PY'
import json, sys
lost = json.load(open(sys.argv[1]))
win = lambda name: tuple(int(x) for x in name.split("-")[1:3])
ib, cb = win(sys.argv[2]), win(sys.argv[3])
in_index = [l for l in lost if ib[0] <= l[1] < ib[1]]
in_chunk = [l for l in lost if cb[0] <= l[1] < cb[1]]
rest = [l for l in lost if not (ib[0] <= l[1] < ib[1] or cb[0] <= l[1] < cb[1])]
chunk_series = {json.dumps(l[0], sort_keys=True) for l in in_chunk}
rest_ts = {l[1] for l in rest}
rest_series = {json.dumps(l[0], sort_keys=True) for l in rest}
problems = []
if not in_index:
    problems.append("nothing lost in the window of the block with the bad index")
if len(chunk_series) != 1:
    problems.append("the bad chunk cost %d series (want 1)" % len(chunk_series))
if rest and len(rest_ts) > 1 and len(rest_series) > 1:
    problems.append("%d samples lost outside the damaged blocks, over %d timestamps and %d series"
                    % (len(rest), len(rest_ts), len(rest_series)))
print("lost: %d in the unreadable block, %d of %d series in the block with the bad chunk, "
      "%d elsewhere over %d timestamps (one WAL record at most)"
      % (len(in_index), len(in_chunk), len(chunk_series), len(rest), len(rest_ts)))
for p in problems:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
PY
)
check "only the damaged parts are missing: $expl" [ $? = 0 ]

# Still serving: repeated queries, /metrics, and a clean stop.
for _ in 1 2 3; do export_all "$E2E_TMP/again" || break; done
check "repeated queries over the damaged data answer" test -s "$E2E_TMP/again"
check "the damaged block stays on disk for a human" test -f "$raw/$bad_index/index"
kill -TERM "$pid"
wait "$pid"
rc=$?
check "clean stop after serving damaged data (exit $rc)" [ "$rc" = 0 ]
check "no sanitizer report or crash in the log" bash -c "! grep -Eq 'AddressSanitizer|runtime error|Segmentation' '$E2E_TMP/log'"
finish
