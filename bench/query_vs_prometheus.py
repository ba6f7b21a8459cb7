#!/usr/bin/env python3
"""query_vs_prometheus.py: PromQL latency, sitrep vs Prometheus, same data,
same queries, same run.

A corpus of 1,000 request counters (50 instances x 2 methods x 10 codes) and a
20-instance, 12-bucket classic latency histogram at 30 s for 25 h is written
as OpenMetrics, loaded into Debian's Prometheus with `promtool tsdb
create-blocks-from openmetrics` and into sitrep with `sitrep import`; both
serve it on loopback. Each query (the dashboard and alert queries issue 4
names) runs as an instant query at the corpus' end and as a 24 h range query
at 60 s, alternating between the two servers, RUNS times each; the table
gives the median wall time of the HTTP request (JSON answer included) and
the ratio sitrep / Prometheus.

Usage: bench/query_vs_prometheus.py --sitrep build/sitrep [--runs 7] [--keep DIR]
"""
import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

T0 = 1700000000
STEP = 30
HOURS = 25

QUERIES = [
    ("rate over 5 m of 1,000 series", "rate(http_requests_total[5m])"),
    ("sum by (job) of those rates", "sum by (job) (rate(http_requests_total[5m]))"),
    ("histogram_quantile (p90)",
     "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))"),
    ("predict_linear over 1 h", "predict_linear(http_requests_total[1h], 3600)"),
    ("error ratio by instance (alert)",
     'sum by (instance) (rate(http_requests_total{code=~"5.."}[5m])) / '
     'sum by (instance) (rate(http_requests_total[5m]))'),
]


def gen(path):
    rnd = random.Random(1)
    n = HOURS * 3600 // STEP
    with open(path, "w") as f:
        f.write("# TYPE http_requests_total counter\n")
        for inst in range(50):
            for method in ("GET", "POST"):
                for code in ("200", "201", "204", "301", "304", "400", "404", "429", "500", "503"):
                    v = 0.0
                    lab = 'http_requests_total{job="api",instance="i%d",method="%s",code="%s"}' % (
                        inst, method, code)
                    lines = []
                    for i in range(n):
                        v += rnd.randint(0, 20)
                        lines.append("%s %d %d\n" % (lab, v, T0 + i * STEP))
                    f.write("".join(lines))
        f.write("# TYPE request_duration_seconds histogram\n")
        les = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
        for inst in range(20):
            counts = [0] * len(les)
            rows = [[] for _ in les]
            for i in range(n):
                for _ in range(rnd.randint(10, 40)):
                    d = rnd.expovariate(4.0)
                    for k, le in enumerate(les):
                        if le == "+Inf" or d <= float(le):
                            counts[k] += 1
                for k in range(len(les)):
                    rows[k].append(counts[k])
            for k, le in enumerate(les):
                lab = 'request_duration_seconds_bucket{job="api",instance="i%d",le="%s"}' % (inst, le)
                f.write("".join("%s %d %d\n" % (lab, c, T0 + i * STEP) for i, c in enumerate(rows[k])))
        f.write("# EOF\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(url, secs=120):
    for _ in range(secs * 10):
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.1)
    sys.exit("timeout waiting for " + url)


def timed(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    dt = time.perf_counter() - t
    d = json.loads(body)
    if d.get("status") != "success":
        sys.exit("%s: %s" % (url, d))
    return dt, len(d["data"]["result"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sitrep", default="build/sitrep")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "7")))
    ap.add_argument("--keep")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="query-bench-")
    os.makedirs(work, exist_ok=True)
    om = os.path.join(work, "corpus.om")
    procs = []
    try:
        if not os.path.exists(om):
            gen(om)
        prom_dir, sit_dir = os.path.join(work, "prom"), os.path.join(work, "sitrep")
        if not os.path.exists(prom_dir):
            subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, prom_dir],
                           check=True, stdout=subprocess.DEVNULL)
        if not os.path.exists(sit_dir):
            subprocess.run([a.sitrep, "import", om, "--data", sit_dir], check=True,
                           stdout=subprocess.DEVNULL)
        pp, sp = free_port(), free_port()
        with open(os.path.join(work, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        with open(os.path.join(work, "sitrep.yml"), "w") as f:
            f.write("collect: {top_processes: 1}\nstorage:\n  retention: {raw: 36500d, 1m: 36500d, 1h: 36500d}\n")
        procs.append(subprocess.Popen(
            ["prometheus", "--config.file=" + os.path.join(work, "prom.yml"),
             "--storage.tsdb.path=" + prom_dir, "--storage.tsdb.retention.time=100y",
             "--web.listen-address=127.0.0.1:%d" % pp, "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [a.sitrep, "serve", "--config", os.path.join(work, "sitrep.yml"), "--data", sit_dir,
             "--listen", "127.0.0.1:%d" % sp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        prom, sit = "http://127.0.0.1:%d" % pp, "http://127.0.0.1:%d" % sp
        wait(prom + "/-/ready")
        wait(sit + "/-/healthy")
        end = T0 + HOURS * 3600 - 13
        rows = []
        for name, q in QUERIES:
            for kind, path, params in (
                    ("instant", "/api/v1/query", {"query": q, "time": end}),
                    ("24 h range, 60 s step", "/api/v1/query_range",
                     {"query": q, "start": end - 86400, "end": end, "step": 60})):
                timed(sit, path, params)  # warm both (first touch of blocks)
                timed(prom, path, params)
                ts, tp = [], []
                for _ in range(a.runs):
                    dt, ns = timed(sit, path, params)
                    ts.append(dt)
                    dt, np_ = timed(prom, path, params)
                    tp.append(dt)
                if ns != np_:
                    sys.exit("%s: %d series from sitrep, %d from Prometheus" % (q, ns, np_))
                ms, mp = statistics.median(ts) * 1000, statistics.median(tp) * 1000
                rows.append((name, kind, ms, mp, ns))
        print("| query | kind | series | sitrep median | Prometheus median | ratio |")
        print("|---|---|---:|---:|---:|---:|")
        for name, kind, ms, mp, ns in rows:
            print("| %s | %s | %d | %.1f ms | %.1f ms | %.2f |" % (name, kind, ns, ms, mp, ms / mp))
        print("\n%d runs each, alternating; `%s`" % (a.runs, " ".join(sys.argv)))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


main()
