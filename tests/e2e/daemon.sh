#!/usr/bin/env bash
# daemon.sh: the CLI and daemon lifecycle end to end: help and version,
# `check config`, serving on defaults plus flags, health and buildinfo,
# reload by SIGHUP and by POST /-/reload (token enforced), a bad reload
# keeping the old config, the data-dir lock, and a clean stop within 2 s.
set -u
. "$(dirname "$0")/lib.bash"
B=$SITREP_BIN
fx=$SITREP_SRC/tests/fixtures/config

check "sitrep --help lists commands" bash -c "'$B' --help | grep -q 'serve'"
check "sitrep serve --help shows --listen, --data, --config" \
    bash -c "'$B' serve --help | grep -q -- '--listen' && '$B' serve --help | grep -q -- '--data' && '$B' serve --help | grep -q -- '--config'"
check "sitrep version" bash -c "'$B' version | grep -Eq '^sitrep [0-9]+\.[0-9]+\.[0-9]+'"
check "unknown command exits 2" bash -c "'$B' frobnicate 2>/dev/null; [ \$? = 2 ]"
check "check config accepts a good file" "$B" check config "$fx/good.yml"
out=$("$B" check config "$fx/bad.yml" 2>&1); rc=$?
check "check config rejects a bad file (exit 1)" [ "$rc" = 1 ]
check "check config names file:line:col" grep -q "bad.yml:9:1: unknown key 'colect'" <<<"$out"

port=$(free_port)
data=$E2E_TMP/data
cfg=$E2E_TMP/sitrep.yml
cat > "$cfg" <<YML
http:
  listen: 127.0.0.1:1
  token: e2e-token-0123456789
collect:
  top_processes: 3
YML
# --listen and --data override the file.
"$B" serve --config "$cfg" --listen "127.0.0.1:$port" --data "$data" 2>"$E2E_TMP/log" &
pid=$!
E2E_PIDS+=($pid)
wait_http "http://127.0.0.1:$port/-/healthy" || { cat "$E2E_TMP/log"; exit 1; }
check "flags override the config file (listen)" true
check "data directory created with its lock" test -f "$data/LOCK"
check "/-/healthy answers" bash -c "curl -fsS http://127.0.0.1:$port/-/healthy | grep -q Healthy"
bi=$(curl -fsS "http://127.0.0.1:$port/api/v1/status/buildinfo")
check "buildinfo has Prometheus' JSON shape" python3 -c "
import json,sys; d=json.loads(sys.argv[1]); assert d['status']=='success'
assert set(['version','revision','branch','buildUser','buildDate','goVersion'])<=set(d['data'])" "$bi"
check "unknown path is 404" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/nope) = 404 ]"
check "wrong method is 405" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -XPOST http://127.0.0.1:$port/metrics) = 405 ]"

sleep 2
m=$(curl -fsS "http://127.0.0.1:$port/metrics")
check "/metrics has host CPU" grep -q '^node_cpu_seconds_total{cpu="0",mode="idle"}' <<<"$m"
check "/metrics has build info" grep -q '^sitrep_build_info{' <<<"$m"
nproc_series=$(grep -c '^sitrep_process_resident_memory_bytes{' <<<"$m")
check "top_processes from the file applies (1..3*3 processes: CPU, RSS, IO; got $nproc_series)" \
    [ "$nproc_series" -ge 1 -a "$nproc_series" -le 9 ]
check "second instance on the same data dir is refused" \
    bash -c "! '$B' serve --listen 127.0.0.1:$(free_port) --data '$data' 2>/dev/null"

code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://127.0.0.1:$port/-/reload")
check "POST /-/reload without the token is 401" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'Authorization: Bearer wrong-token-000000000' "http://127.0.0.1:$port/-/reload")
check "POST /-/reload with a wrong token is 401" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H 'Authorization: Bearer e2e-token-0123456789' "http://127.0.0.1:$port/-/reload")
check "POST /-/reload with the token is 200" [ "$code" = 200 ]

# A bad config on SIGHUP: logged with its position, old config kept.
echo "collect: {interval: soon}" >> "$cfg"
kill -HUP $pid
sleep 1
check "bad reload is logged with file:line:col" grep -q "sitrep.yml:6:21: collect.interval" "$E2E_TMP/log"
check "still serving after a bad reload" wait_http "http://127.0.0.1:$port/-/healthy" 3
check "reload failure is visible as a metric" \
    bash -c "curl -fsS http://127.0.0.1:$port/metrics | grep -q '^sitrep_config_last_reload_successful 0'"
check "reload failure is counted" \
    bash -c "curl -fsS http://127.0.0.1:$port/metrics | grep -q '^sitrep_config_reloads_total{result=\"failure\"} 1'"
sed -i '$d' "$cfg"
kill -HUP $pid
sleep 1
check "good reload after a fix" \
    bash -c "curl -fsS http://127.0.0.1:$port/metrics | grep -q '^sitrep_config_last_reload_successful 1'"

t0=$(date +%s%N)
kill -TERM $pid
wait $pid; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM exits 0" [ "$rc" = 0 ]
check "SIGTERM stops within 2 s (took ${ms} ms)" [ "$ms" -lt 2000 ]
check "clean stop is logged" grep -q "stopped" "$E2E_TMP/log"
E2E_PIDS=()

# Defaults: no config, no flags but --data; listens on 127.0.0.1:9797 unless taken.
if ! curl -s -o /dev/null "http://127.0.0.1:9797/" 2>/dev/null; then
    (cd "$E2E_TMP" && exec "$B" serve 2>"$E2E_TMP/log2") &
    pid=$!
    E2E_PIDS+=($pid)
    if wait_http "http://127.0.0.1:9797/-/healthy"; then
        ok "defaults: serves on 127.0.0.1:9797"
        check "defaults: data under ./sitrep-data" test -f "$E2E_TMP/sitrep-data/LOCK"
        check "defaults: prints where to look" grep -q "http://127.0.0.1:9797/metrics" "$E2E_TMP/log2"
    else
        not_ok "defaults: serves on 127.0.0.1:9797"
    fi
    kill -INT $pid; wait $pid
    check "SIGINT exits 0" [ $? = 0 ]
    E2E_PIDS=()
else
    echo "skip - defaults test: port 9797 is in use on this machine"
fi
finish
