#!/usr/bin/env bash
# probe_hang.sh: a service that hangs (accepts the connection, never answers)
# end to end through PromQL: its probe fails with reason timeout after its
# 1 s timeout, the connect phase shows the connection itself was quick,
# sitrep_probe_network_ok stays 1 because another target answers, and the
# probe recovers once the service answers again.
set -u
. "$(dirname "$0")/lib.bash"
port=$(free_port)
url=http://127.0.0.1:$port
hport=$(free_port)
flag=$E2E_TMP/answer
# Without $flag, a connection is accepted and then only read from until the
# client gives up; with it, the request gets a 200.
cat >"$E2E_TMP/hang.py" <<'PY'
import os, socketserver, sys
flag = sys.argv[2]
class H(socketserver.BaseRequestHandler):
    def handle(self):
        if not os.path.exists(flag):
            while self.request.recv(4096):
                pass
            return
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            req += chunk
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
class S(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$E2E_TMP/hang.py" "$hport" "$flag" 2>/dev/null &
E2E_PIDS+=($!)
# A plain connect, not wait_http: the server answers nothing yet.
for i in $(seq 1 50); do (: <>"/dev/tcp/127.0.0.1/$hport") 2>/dev/null && break; sleep 0.1; done
cfg=$E2E_TMP/sitrep.yml
cat >"$cfg" <<YML
collect: {top_processes: 1}
probes:
  - {name: hang, url: 'http://127.0.0.1:$hport/', interval: 2s, timeout: 1s}
  - {name: self, url: 'http://127.0.0.1:$port/-/healthy', interval: 1s}
YML
start_sitrep "$cfg" "$port" "$E2E_TMP/data" || { cat "$E2E_TMP/log"; exit 1; }
q() { curl -sS -G "$url/api/v1/query" --data-urlencode "query=$1"; }
val() { python3 -c "import json,sys; r=json.load(sys.stdin)['data']['result']; print(r[0]['value'][1] if r else 'none')"; }
# until_is EXPR WANT [SECONDS]: EXPR reaches WANT within SECONDS (default 10).
until_is() {
    local got i
    for ((i = 0; i < ${3:-10} * 5; i++)); do
        got=$(q "$1" | val)
        [ "$got" = "$2" ] && break
        sleep 0.2
    done
    check "$1 = $2 (got $got)" [ "$got" = "$2" ]
}
# in_range EXPR LO HI: LO <= value < HI.
in_range() {
    local got
    got=$(q "$1" | val)
    check "$1 in [$2, $3) (got $got)" python3 -c 'import sys; v, lo, hi = map(float, sys.argv[1:]); sys.exit(not lo <= v < hi)' "$got" "$2" "$3"
}
h='service="hang"'
# Two failed probes in a row: the hang is seen, and seen again.
until_is "sitrep_probe_consecutive_failures{$h} >= bool 2" 1 15
until_is "probe_success{$h}" 0 1
until_is "sitrep_probe_failure_reason{$h,reason=\"timeout\"}" 1 1
until_is "count(sitrep_probe_failure_reason{$h} and on(service, target) probe_success == 0)" 1 1
until_is "probe_http_status_code{$h}" 0 1
# The probe gave up at its 1 s timeout (curl's clock may read a hair
# under it), before its next turn ...
in_range "probe_duration_seconds{$h}" 0.9 2
# ... on a connection that was up at once: it hung, it did not refuse.
in_range "probe_http_duration_seconds{$h,phase=\"connect\"}" 0 0.5
until_is "sitrep_probe_failures_total{$h,reason=\"connect\"}" 0 1
# The other target answers: the service is down, not the daemon's network.
until_is 'probe_success{service="self"}' 1 1
until_is 'sitrep_probe_network_ok' 1 1
until_is 'count(probe_success == 0 and on() sitrep_probe_network_ok == 1)' 1 1
# The service answers again: the next probe succeeds.
touch "$flag"
until_is "probe_success{$h}" 1 10
until_is "probe_http_status_code{$h}" 200 1
until_is "sitrep_probe_consecutive_failures{$h}" 0 1
in_range "probe_duration_seconds{$h}" 0 1
# The reason's last sample stays visible for the lookback (probes write no
# stale marker when it stops), so ask for reasons of failing probes only.
until_is "count(sitrep_probe_failure_reason{$h} and on(service, target) probe_success == 0)" none 1
until_is 'sitrep_probe_network_ok' 1 1
until_is 'count(probe_success == 0 and on() sitrep_probe_network_ok == 1)' none 1
finish
