"""memory.py, drill 1: a service's resident memory grows towards exhaustion.

The incident: VMs ran out of memory and a portal returned errors until
customers reported it. Here a process (named leaky-svc) allocates and touches
memory at a steady pace that would exhaust this machine's RAM in about two
minutes from full, the pace of a bad leak relative to the box. Expect: the
predictive memory alert fires within 60 s of the growth starting, while at
least 25% of memory is still available; the grower stops at 35% available
whatever happens, so the drill never takes the machine down.
"""
import sys
import time

from harness import DrillFailed, Sink, Sitrep, Watch, meminfo, result

NAME = "memory"
TITLE = "Memory exhaustion (a leaking service)"
ALERT = "MemoryExhaustionPredicted"

GROWER = r"""
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, b"leaky-svc", 0, 0, 0)  # PR_SET_NAME: the comm sitrep sees
rate, floor = int(sys.argv[1]), int(sys.argv[2])
def avail():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
held, step, t = [], rate // 10, time.time()
while avail() > floor:
    b = bytearray(step)
    b[::4096] = b"\x01" * len(range(0, step, 4096))  # touch every page: resident, not just mapped
    held.append(b)
    t += 0.1
    time.sleep(max(0.0, t - time.time()))
print("floor reached, holding", flush=True)
while True:
    time.sleep(1)
"""


def run(d, netdata=None):
    sink = Sink(d)
    s = Sitrep(d, sink, "collect: {top_processes: 5}\n").start()
    w = Watch(d, s)
    time.sleep(15 if d.short else 60)  # history for the trend, as on a box that ran before
    m = meminfo()
    total = m["MemTotal"]
    rate = total // 120
    floor = int(total * 0.35)
    if m["MemAvailable"] < total * 0.5:
        raise DrillFailed("only %.0f%% of memory is available before the drill; it needs half"
                          % (100.0 * m["MemAvailable"] / total))
    d.note("growing at %d MiB/s, stopping at %d MiB available" % (rate >> 20, floor >> 20))
    grower = d.spawn([sys.executable, "-c", GROWER, str(rate), str(floor)], name="leaky-svc")
    onset = time.time()
    avail_at_fire = None
    try:
        w.wait_firing(ALERT, 90, onset)
        avail_at_fire = meminfo()["MemAvailable"]
    except DrillFailed:
        pass
    finally:
        d.stop(grower)
    fired = w.firing_since(ALERT, onset)
    share = None if avail_at_fire is None else avail_at_fire / total
    note = sink.first(ALERT, since=onset, wait=10 if fired else 0)
    named = None
    if note:
        text = str(note[1].get("annotations", {}))
        named = "leaky-svc" in text
    r = result(d, onset, [{
        "alert": ALERT, "within": 60, "cause_named": named,
        "ok": fired is not None and 0 <= fired - onset <= 60 and share is not None
        and share >= 0.25,
    }], sink, w, netdata,
        notes=["growth %d MiB/s; %s of memory available when the alert fired"
               % (rate >> 20, "n/a" if share is None else "%.0f%%" % (100 * share))])
    if fired is None:
        raise DrillFailed("%s never fired in 90 s of growth; firing: %s; MemAvailable trend: %s"
                          % (ALERT, w.firing_now(),
                             s.value("deriv(node_memory_MemAvailable_bytes[1m])")), r)
    return r
