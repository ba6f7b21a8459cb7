#!/usr/bin/env python3
"""Compare sitrep's /metrics with node_exporter's, read in the same moment.

Reads sitrep (A1), node_exporter (N), waits for two more sitrep ticks, reads
sitrep again (A2). Then, for every metric name both expose:
  * the TYPE must agree;
  * each node_exporter series must exist in sitrep with the same labels
    (unless listed in KNOWN_DIFFERENCES with the reason);
  * counters: A1 <= A2 (monotonic) and A1 - eps <= N <= A2 + eps, since N was
    read between the two sitrep snapshots;
  * gauges and untyped: N within [min(A1,A2), max(A1,A2)] widened by the drift
    between the two reads plus a small share of the value (the host moves
    while three scrapes happen).
sitrep's output must also pass `promtool check metrics`, except for lint
complaints promtool also makes about node_exporter's output (its names are
kept for compatibility). Prints the list of overlapping names and a summary; exits 1
on any failure.
"""
import re
import subprocess
import sys
import time
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# Names both expose that describe different things by design.
NOT_COMPARED = {
    'process_': 'describes each exporter\'s own process',
}
# Series node_exporter has that sitrep deliberately does not, by name prefix.
KNOWN_DIFFERENCES = {
    'node_network_speed_bytes': 'a link of unknown speed (-1) is skipped, as node_exporter '
                                'does with --collector.netclass.ignore-invalid-speed',
    'node_slabinfo_': 'sitrep reports the VFS caches and the top 10 by bytes (held 10 min), '
                      'node_exporter every cache',
}
# Gauges that move fast on an idle host: absolute slack.
ABS_SLACK = {
    'node_procs_running': 4, 'node_procs_blocked': 4,
    'node_processes_state': 8, 'node_processes_pids': 8, 'node_processes_threads': 32,
    'node_filefd_allocated': 64, 'node_sockstat_sockets_used': 16,
    'node_sockstat_TCP_inuse': 8, 'node_sockstat_TCP_alloc': 8, 'node_sockstat_TCP_tw': 16,
    'node_sockstat_TCP_mem': 8, 'node_sockstat_TCP_mem_bytes': 8 * 4096,
    'node_sockstat_TCP_orphan': 4, 'node_sockstat_UDP_inuse': 4,
    'node_netstat_Tcp_CurrEstab': 8,
    'sitrep_vfs_dentries': 2048, 'node_memory_Dirty_bytes': 8 << 20,
    'node_memory_Writeback_bytes': 8 << 20,
    # Every thread has a 16 KiB kernel stack and page tables of its own, so
    # both follow thread and process churn (the threads slack above).
    'node_memory_KernelStack_bytes': 32 * 16384, 'node_memory_PageTables_bytes': 4 << 20,
}
# sitrep reads /proc/slabinfo every 5 s (it is costly), so its figures can be
# up to 5 s older than node_exporter's; slab caches move with every build on
# the machine.
for _n in ('node_slabinfo_active_objects', 'node_slabinfo_objects'):
    ABS_SLACK[_n] = 1024
REL_SLACK = 0.02
REL_SLACK_BY_NAME = {'node_slabinfo_active_objects': 0.10, 'node_slabinfo_objects': 0.10}
KERNEL_FIELD_PREFIXES = ('node_memory_', 'node_netstat_', 'node_vmstat_', 'node_sockstat_')


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def parse(text):
    types, series = {}, {}
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ
            continue
        if not line or line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise SystemExit('unparsable line: %r' % line)
        name, labels, value = m.group(1), m.group(3) or '', m.group(4)
        key = tuple(sorted(LABEL.findall(labels)))
        series.setdefault(name, {})[key] = float(value)
    return types, series


def lint(text):
    """promtool's complaints about an exposition, or a parse failure."""
    p = subprocess.run(['promtool', 'check', 'metrics'], input=text, text=True,
                       capture_output=True)
    problems = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    if p.returncode not in (0, 3):  # 3: lint problems only; anything else: unparsable
        return None, problems
    return set(problems), problems


def promtool(text, ne_text):
    """sitrep's lint problems that node_exporter's own output does not have.

    node_exporter's names are kept for compatibility even where promtool's
    lint dislikes them (camelCase kernel field names, *_bits units); such a
    complaint is accepted only if promtool makes it about node_exporter too.
    """
    mine, raw = lint(text)
    if mine is None:
        return ['promtool could not parse the exposition: ' + ' | '.join(raw)]
    theirs, _ = lint(ne_text)
    left = []
    for problem in sorted(mine - (theirs or set())):
        name = problem.split()[0]
        # node_exporter names these after kernel fields (TcpExt_TCPOFOQueue,
        # Active_anon); it emits the same names for fields its default
        # filter leaves out, so sitrep's extra fields inherit the style.
        if name.startswith(KERNEL_FIELD_PREFIXES) and "not 'camelCase'" in problem:
            continue
        left.append(problem)
    return left


def ticks(series):
    return series.get('sitrep_collect_ticks_total', {}).get((), 0)


def fmt(key):
    return '{' + ','.join('%s="%s"' % kv for kv in key) + '}'


def snapshot(sitrep_url, ne_url):
    """A1, N and A2 as described above, with their TYPE lines and A1's text."""
    a1_text = fetch(sitrep_url)
    n_text = fetch(ne_url)
    t_a1, a1 = parse(a1_text)
    t_n, n = parse(n_text)
    start = ticks(a1)
    deadline = time.time() + 10
    while True:
        time.sleep(0.3)
        _, a2 = parse(fetch(sitrep_url))
        if ticks(a2) >= start + 2 or time.time() > deadline:
            break
    return a1_text, n_text, t_a1, a1, t_n, n, a2


def compare(t_a1, a1, t_n, n, a2):
    """(failures as {series: message}, report lines, names compared, skipped)."""
    failures, report = {}, []
    shared = sorted(set(a1) & set(n))
    compared = skipped = 0
    report.append('names exposed: sitrep %d, node_exporter %d, both %d' % (len(a1), len(n), len(shared)))
    for name in shared:
        why = next((r for p, r in NOT_COMPARED.items() if name.startswith(p)), None)
        if why:
            report.append('  %-55s not compared: %s' % (name, why))
            skipped += 1
            continue
        typ = t_a1.get(name)
        if typ != t_n.get(name):
            failures[name] = '%s: TYPE %s in sitrep, %s in node_exporter' % (name, typ, t_n.get(name))
        nser = 0
        for key, nv in n[name].items():
            series = name + fmt(key)
            if key not in a1[name] or key not in a2.get(name, {}):
                known = next((r for p, r in KNOWN_DIFFERENCES.items() if name.startswith(p)), None)
                if not known:
                    failures[series] = '%s: in node_exporter, missing in sitrep' % series
                continue
            v1, v2 = a1[name][key], a2[name][key]
            nser += 1
            if typ == 'counter':
                eps = 1e-6 * max(abs(v2), 1.0) + 0.011  # /proc times are in 10 ms ticks
                if v2 < v1:
                    failures[series] = '%s: counter went down %g -> %g' % (series, v1, v2)
                elif not (v1 - eps <= nv <= v2 + eps):
                    failures[series] = ('%s: node_exporter %g outside sitrep [%g, %g]'
                                        % (series, nv, v1, v2))
            else:
                lo, hi = min(v1, v2), max(v1, v2)
                rel = REL_SLACK_BY_NAME.get(name, REL_SLACK)
                # Memory moves between processes while the two exporters read
                # (other work on the host): 32 MiB of slack on any memory gauge,
                # far below any unit or field mix-up (kB vs bytes is 1024x).
                mem = 32 << 20 if name.startswith('node_memory_') and name.endswith('_bytes') else 0
                # The same 32 MiB for vmstat's page counts (nr_dirty,
                # nr_writeback, nr_free_pages, ...), in 4 KiB pages.
                if name.startswith('node_vmstat_nr_'):
                    mem = (32 << 20) // 4096
                slack = (hi - lo) + rel * max(abs(nv), abs(hi)) + max(ABS_SLACK.get(name, 0), mem)
                if not (lo - slack <= nv <= hi + slack):
                    failures[series] = ('%s: node_exporter %g, sitrep %g..%g (slack %g)'
                                        % (series, nv, v1, v2, slack))
        extra = len(set(a1[name]) - set(n[name]))
        report.append('  %-55s %-8s %3d series compared%s' % (name, typ, nser,
                      (', %d more in sitrep' % extra) if extra else ''))
        compared += 1
    only_ne = sorted(k for k in n if k.startswith('node_') and k not in a1)
    report.append('node_exporter names sitrep does not expose (%d): %s' % (len(only_ne), ' '.join(only_ne)))
    report.append('overlap: %d names shared, %d compared by value, %d not compared'
                  % (len(shared), compared, skipped))
    return failures, report, compared


def main():
    sitrep_url, ne_url = sys.argv[1], sys.argv[2]
    a1_text, n_text, *snap = snapshot(sitrep_url, ne_url)
    failures, report, compared = compare(*snap)
    # The host moves while three scrapes happen: a burst of work elsewhere
    # (CI runs on a shared machine) can push one gauge past its slack. A
    # mismatch counts only if a second snapshot, taken at once, shows it
    # again; a unit or field mix-up shows in every snapshot.
    if failures:
        again, _, _ = compare(*snapshot(sitrep_url, ne_url)[2:])
        for series in sorted(set(failures) - set(again)):
            print('not repeated in a second snapshot, not counted: ' + failures[series])
        failures = {k: v for k, v in failures.items() if k in again}
    problems = ['promtool: ' + p for p in promtool(a1_text, n_text)] + sorted(failures.values())
    # Failures first: CI shows the head of a failing test's output.
    for f in problems:
        print('FAIL: ' + f)
    print('\n'.join(report))
    ok = compared - len({f.split('{')[0].split(':')[0] for f in failures.values()})
    print('%d passed, %d failed' % (max(ok, 0), len(problems)))
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
