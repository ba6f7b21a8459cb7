#!/bin/bash
# cpu_ab.sh: CPU of two sitrep binaries side by side on built-in defaults,
# same machine, same moments, so a change's effect shows through the noise of
# a shared host. Usage: bench/cpu_ab.sh OLD_BIN NEW_BIN [SECONDS] [ROUNDS]
# Prints, per round, each binary's share of one core over SECONDS after a
# 30 s warm-up, then the medians. Each daemon gets its own port and data dir.
set -euo pipefail
old=$1 new=$2 secs=${3:-120} rounds=${4:-3}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for r in $(seq "$rounds"); do
    pids=()
    i=0
    for bin in "$old" "$new"; do
        "$bin" serve -l 127.0.0.1:$((19800 + i)) -d "$tmp/d$r-$i" >"$tmp/log$i" 2>&1 &
        pids+=($!)
        i=$((i + 1))
    done
    sleep 30
    a0=$(ticks "${pids[0]}") b0=$(ticks "${pids[1]}")
    sleep "$secs"
    a1=$(ticks "${pids[0]}") b1=$(ticks "${pids[1]}")
    echo "round $r: old $(echo "scale=3; ($a1 - $a0) * 100 / $hz / $secs" | bc)%" \
        "new $(echo "scale=3; ($b1 - $b0) * 100 / $hz / $secs" | bc)%"
    kill "${pids[@]}"
    wait 2>/dev/null || true
done | tee "$tmp/rounds"
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "median: old $(awk '{print $4}' "$tmp/rounds" | tr -d % | med)% new $(awk '{print $6}' "$tmp/rounds" | tr -d % | med)% of one core"
