#!/usr/bin/env python3
"""Host collection cost: sitrep against node_exporter, same host, same run.

Measures, each repeated --runs times and reported as the median:
  1. sitrep: CPU time of one full collection cycle (collect_bench: median of
     600 back-to-back cycles, thread CPU clock), and the cost of rendering
     /metrics from it.
  2. node_exporter: CPU time per back-to-back scrape (its process CPU from
     /proc/PID/stat over a batch of scrapes, divided by the batch size).
  3. Both daemons running as deployed, for 60 s: sitrep collecting every
     second and scraped every second; node_exporter scraped every second.
     CPU per second of wall time, and steady RSS (VmRSS at the end).
  4. sitrep's RSS with collection alone (nobody scraping).
Prints a markdown table with ratios.
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

HZ = os.sysconf('SC_CLK_TCK')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def wait(url):
    for _ in range(100):
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit('no answer from ' + url)


def start_sitrep(binary, port, data):
    p = subprocess.Popen([binary, 'serve', '--listen', '127.0.0.1:%d' % port, '--data', data,
                          '--log-level', 'error'])
    wait('http://127.0.0.1:%d/-/healthy' % port)
    return p


def start_ne(port):
    p = subprocess.Popen(['prometheus-node-exporter', '--web.listen-address=127.0.0.1:%d' % port],
                         stderr=subprocess.DEVNULL)
    wait('http://127.0.0.1:%d/metrics' % port)
    return p


def samples(text):
    return sum(1 for l in text.decode().splitlines() if l and not l.startswith('#'))


def ne_back_to_back(port, n=200):
    """node_exporter CPU per scrape over n back-to-back scrapes."""
    p = start_ne(port)
    url = 'http://127.0.0.1:%d/metrics' % port
    for _ in range(20):
        body = get(url)  # warm up
    c0 = cpu_s(p.pid)
    for _ in range(n):
        get(url)
    per = (cpu_s(p.pid) - c0) / n
    p.terminate()
    p.wait()
    return per, samples(body)


def deployed(args, which, seconds, scrape=True):
    """CPU per second and final RSS of a daemon scraped every second."""
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        p = start_sitrep(args.sitrep, port, d) if which == 'sitrep' else start_ne(port)
        url = 'http://127.0.0.1:%d/metrics' % port
        time.sleep(2)
        c0, t0 = cpu_s(p.pid), time.time()
        next_t = t0
        while time.time() - t0 < seconds:
            if scrape:
                get(url)
            next_t += 1
            time.sleep(max(0, next_t - time.time()))
        cpu = (cpu_s(p.pid) - c0) / (time.time() - t0)
        rss = rss_kib(p.pid)
        p.terminate()
        p.wait()
    return cpu, rss


def cycle_bench(args, disabled=''):
    out = subprocess.run([args.cycles_bin, '600'] + ([disabled] if disabled else []),
                         capture_output=True, text=True, check=True)
    kv = dict(x.split('=') for x in out.stdout.split())
    return float(kv['cycle_cpu_median_us']), float(kv['expose_cpu_median_us']), int(kv['samples'])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sitrep', required=True)
    ap.add_argument('--cycles-bin', required=True)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--seconds', type=int, default=60)
    args = ap.parse_args()

    cyc, exp, ne_scrape, dep_s, dep_n, rss_alone, noproc = [], [], [], [], [], [], []
    s_samples = n_samples = 0
    for r in range(args.runs):
        c, e, s_samples = cycle_bench(args)
        cyc.append(c)
        exp.append(e)
        noproc.append(cycle_bench(args, 'processes')[0])
        per, n_samples = ne_back_to_back(free_port())
        ne_scrape.append(per * 1e6)
    for r in range(max(1, args.runs // 2)):
        dep_s.append(deployed(args, 'sitrep', args.seconds))
        dep_n.append(deployed(args, 'ne', args.seconds))
        rss_alone.append(deployed(args, 'sitrep', 20, scrape=False)[1])

    med = statistics.median
    c, e, n = med(cyc), med(exp), med(ne_scrape)
    sc = med(x[0] for x in dep_s) * 1e3
    nc = med(x[0] for x in dep_n) * 1e3
    sr = med(x[1] for x in dep_s) / 1024
    nr = med(x[1] for x in dep_n) / 1024
    ra = med(rss_alone) / 1024
    print('| measure | sitrep | node_exporter 1.5 | ratio (sitrep / node_exporter) |')
    print('|---|---|---|---|')
    print('| samples per collection / scrape | %d | %d | |' % (s_samples, n_samples))
    print('| CPU per full collection cycle (median of %d runs x 600 cycles) vs per back-to-back scrape (200 scrapes) '
          '| %.0f us | %.0f us | %.3f |' % (args.runs, c, n, c / n))
    print('| CPU per collection + /metrics rendering | %.0f us | %.0f us | %.3f |' % (c + e, n, (c + e) / n))
    p = med(noproc)
    print('| CPU per cycle without the per-process scan (node_exporter runs none by default) '
          '| %.0f us | %.0f us | %.3f |' % (p, n, p / n))
    print('| CPU per second, deployed: collecting every 1 s and scraped every 1 s (%d s, median of %d) '
          '| %.2f ms/s | %.2f ms/s | %.3f |' % (args.seconds, len(dep_s), sc, nc, sc / nc))
    print('| steady RSS, scraped every 1 s | %.1f MiB | %.1f MiB | %.2f |' % (sr, nr, sr / nr))
    print('| steady RSS, collection alone | %.1f MiB | | |' % ra)
    print()
    print('runs: cycle us %s; node_exporter us/scrape %s' % (
        ', '.join('%.0f' % x for x in cyc), ', '.join('%.0f' % x for x in ne_scrape)))


if __name__ == '__main__':
    main()
