#!/usr/bin/env bash
# deps.sh: install, with apt-get, whatever Debian packages sitrep needs and the
# machine lacks. Safe to run again: it only touches apt when something is missing.
# Usage: scripts/deps.sh [build|test|bench|drills]   (test adds the peers the tests run
# for real; bench adds those and the peers only the benchmarks compare against)
set -eu
want=(build-essential cmake pkg-config libmicrohttpd-dev libyaml-dev libcurl4-openssl-dev
      libsqlite3-dev libpcre2-dev libcmocka-dev)
case "${1:-build}" in
test | bench | drills)
    want+=(clang clang-format curl python3 prometheus prometheus-node-exporter nginx
           prometheus-alertmanager openssl redis-server)
    ;;
esac
if [ "${1:-build}" = bench ]; then
    want+=(goaccess)
fi
if [ "${1:-build}" = drills ]; then
    want+=(netdata)
fi
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The Debian packages of prometheus, node_exporter and nginx start services on
# :9090, :9100 and :80 where an init system runs; policy-rc.d keeps the install from
# starting anything, since the tests start their own copies on other ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.sitrep
chmod +x /usr/sbin/policy-rc.d.sitrep
restore=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    mv /usr/sbin/policy-rc.d.sitrep /usr/sbin/policy-rc.d
    restore=1
else
    rm -f /usr/sbin/policy-rc.d.sitrep
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
[ $restore = 1 ] && rm -f /usr/sbin/policy-rc.d
exit ${rc:-0}
