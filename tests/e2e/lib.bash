# lib.bash: helpers for end-to-end tests (sourced, not run): free ports,
# waiting for HTTP, and cleanup of every process a test starts.
# Tests run the real binary ($SITREP_BIN) on loopback with a temp data dir.

: "${SITREP_BIN:?SITREP_BIN must point at the sitrep binary}"
SITREP_BIN=$(realpath "$SITREP_BIN")
: "${SITREP_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
E2E_TMP=$(mktemp -d /tmp/sitrep-e2e.XXXXXX)
E2E_PIDS=()
fails=0
passes=0

e2e_cleanup() {
    for p in "${E2E_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${E2E_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT INT TERM

# free_port: a loopback port nobody listens on now and that this test has not
# been given before (the kernel may hand a just-closed port out again, so two
# calls before the first peer listens could otherwise return the same one).
free_port() {
    python3 - "$E2E_TMP/ports" <<'PY'
import socket, sys
path = sys.argv[1]
try:
    given = set(open(path).read().split())
except OSError:
    given = set()
for _ in range(64):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    s.close()
    if port not in given:
        break
open(path, "a").write(port + "\n")
print(port)
PY
}

# wait_http URL [seconds]: until URL answers 200.
wait_http() {
    local url=$1 t=${2:-10} i
    for ((i = 0; i < t * 10; i++)); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timeout waiting for $url" >&2
    return 1
}

ok() { passes=$((passes + 1)); echo "ok   - $*"; }
not_ok() { fails=$((fails + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() {
    echo "$passes passed, $fails failed"
    [ "$fails" = 0 ]
}

# Store tests (crash, corruption, disk full): a config with 10 s blocks and
# 100 ms syncs, so cuts and syncs happen within a short test.
# store_config FILE: write it (append more YAML under `storage:` with >>).
store_config() {
    cat >"$1" <<YML
collect:
  top_processes: 3
storage:
  block_span: 10s
  sync_interval: 100ms
YML
}

# start_sitrep CONFIG PORT DATA: serve in the background (pid in $pid) until healthy.
start_sitrep() {
    "$SITREP_BIN" serve --config "$1" --listen "127.0.0.1:$2" --data "$3" 2>>"$E2E_TMP/log" &
    pid=$!
    E2E_PIDS+=($pid)
    wait_http "http://127.0.0.1:$2/-/healthy" 30
}

# export_series URL SELECTOR FILE: every stored sample of SELECTOR, as JSON lines.
export_series() {
    curl -fsS -G "$1/api/v1/export" --data-urlencode "match[]=$2" --data-urlencode "start=0" \
        --data-urlencode "end=99999999999" -o "$3"
}
