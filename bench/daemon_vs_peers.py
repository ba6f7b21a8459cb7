#!/usr/bin/env python3
"""daemon_vs_peers.py: the whole daemon as users run it, beside the peers.

Three monitoring setups run at the same time on this machine, each watching
it, for the same DURATION after a warm-up:
  - sitrep serve on its built-in defaults (collection, store, default rule
    pack, all at 1 s);
  - Debian's netdata with its stock configuration (1 s collection, stock
    health alarms), its directories moved to a temp dir;
  - Debian's prometheus-node-exporter scraped every second by Debian's
    prometheus (the glue users replace with sitrep).
For each setup: CPU (user + system of every process in its process tree,
from /proc/PID/stat, as a share of one core; children seen at any sample
count, so long-running plugins do), resident memory (the sum of VmRSS over
the tree, median and peak of samples every 5 s) and how many series it
keeps (Netdata: its charts' dimensions).

Usage: bench/daemon_vs_peers.py --sitrep build/sitrep [--seconds 600] [--warmup 60]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait(url, t=60):
    end = time.time() + t
    while time.time() < end:
        try:
            get(url, 2)
            return
        except OSError:
            time.sleep(0.5)
    sys.exit("timed out waiting for " + url)


def tree_pids(root):
    """root and every process descended from it (plugins that start their own
    sessions included), with their /proc/PID/stat fields after the name."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        procs[int(d)] = st[st.rindex(")") + 2:].split()
    keep, frontier = set(), [root]
    while frontier:
        p = frontier.pop()
        if p in keep or p not in procs:
            continue
        keep.add(p)
        frontier.extend(q for q, f in procs.items() if int(f[1]) == p)  # field 4: ppid
    return [(p, procs[p]) for p in keep]


def sample(root):
    """{pid: cpu ticks}, total RSS bytes of root's process tree."""
    cpu, rss = {}, 0
    for pid, fields in tree_pids(root):
        cpu[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return cpu, rss


class Setup:
    def __init__(self, name, procs, series_fn):
        self.name, self.procs, self.series_fn = name, procs, series_fn
        self.first, self.last, self.rss = {}, {}, []

    def pgids(self):
        return [p.pid for p in self.procs]

    def observe(self, record):
        total_rss = 0
        for g in self.pgids():
            cpu, rss = sample(g)
            total_rss += rss
            for pid, t in cpu.items():
                if record:
                    self.first.setdefault(pid, t)
                    self.last[pid] = t
        if record:
            self.rss.append(total_rss)

    def cpu_seconds(self):
        return sum(self.last[p] - self.first[p] for p in self.last) / TICK


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sitrep", default="build/sitrep")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=60)
    a = ap.parse_args()
    for tool in ("netdata", "prometheus", "prometheus-node-exporter"):
        if not shutil.which(tool):
            sys.exit("%s is not installed (scripts/deps.sh bench)" % tool)
    work = tempfile.mkdtemp(prefix="daemon-bench-")
    procs = []

    def spawn(argv, log):
        p = subprocess.Popen(argv, stdout=open(os.path.join(work, log), "wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p

    try:
        sp, np_, pp, ndp = free_port(), free_port(), free_port(), free_port()
        sit = spawn([os.path.abspath(a.sitrep), "serve", "--data", os.path.join(work, "sitrep"),
                     "--listen", "127.0.0.1:%d" % sp], "sitrep.log")
        nd_dir = os.path.join(work, "netdata")
        for sub in ("cache", "lib", "log", "run"):
            os.makedirs(os.path.join(nd_dir, sub))
        with open(os.path.join(nd_dir, "netdata.conf"), "w") as f:
            f.write("[global]\n  run as user = root\n[directories]\n  cache = %s/cache\n"
                    "  lib = %s/lib\n  log = %s/log\n  run = %s/run\n[web]\n"
                    "  bind to = 127.0.0.1:%d\n[cloud]\n  enabled = no\n"
                    % (nd_dir, nd_dir, nd_dir, nd_dir, ndp))
        nd = spawn(["netdata", "-D", "-c", os.path.join(nd_dir, "netdata.conf")], "netdata.log")
        ne = spawn(["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % np_],
                   "node_exporter.log")
        with open(os.path.join(work, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n  - job_name: node\n"
                    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % np_)
        prom = spawn(["prometheus", "--config.file=" + os.path.join(work, "prom.yml"),
                      "--storage.tsdb.path=" + os.path.join(work, "prom"),
                      "--web.listen-address=127.0.0.1:%d" % pp], "prometheus.log")
        wait("http://127.0.0.1:%d/-/healthy" % sp)
        wait("http://127.0.0.1:%d/api/v1/info" % ndp)
        wait("http://127.0.0.1:%d/-/ready" % pp)

        def prom_series(base):
            q = urllib.parse.urlencode({"query": 'count({__name__=~".+"})'})
            d = json.loads(get(base + "/api/v1/query?" + q, 30))
            return int(float(d["data"]["result"][0]["value"][1]))

        def nd_series():
            # Netdata's series are its charts' dimensions.
            d = json.loads(get("http://127.0.0.1:%d/api/v1/charts" % ndp, 30))
            return sum(len(c.get("dimensions", {})) for c in d["charts"].values())

        setups = [
            Setup("sitrep serve (defaults)", [sit],
                  lambda: prom_series("http://127.0.0.1:%d" % sp)),
            Setup("Netdata 1.37 (stock)", [nd], nd_series),
            Setup("node_exporter + Prometheus at 1 s", [ne, prom],
                  lambda: prom_series("http://127.0.0.1:%d" % pp)),
        ]
        time.sleep(a.warmup)
        for s in setups:
            s.observe(True)
        t0 = time.time()
        while time.time() - t0 < a.seconds:
            time.sleep(5)
            for s in setups:
                s.observe(True)
        elapsed = time.time() - t0
        print("| setup | CPU (share of one core) | RSS median | RSS peak | series |")
        print("|---|---:|---:|---:|---:|")
        rows = []
        for s in setups:
            try:
                n = s.series_fn()
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                n = -1
            cpu = s.cpu_seconds() / elapsed
            rows.append((s.name, cpu, statistics.median(s.rss), max(s.rss), n))
            print("| %s | %.2f%% | %.1f MiB | %.1f MiB | %d |"
                  % (s.name, 100 * cpu, statistics.median(s.rss) / 2**20, max(s.rss) / 2**20, n))
        base = rows[0]
        for name, cpu, rss, peak, n in rows[1:]:
            print("sitrep / %s: CPU %.2f, RSS %.2f" % (name, base[1] / cpu if cpu else 0,
                                                      base[2] / rss if rss else 0))
        print("\n%.0f s measured after %d s of warm-up; `%s`" % (elapsed, a.warmup,
                                                              " ".join(sys.argv)))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
