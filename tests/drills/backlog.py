"""backlog.py, drill 3: a bandwidth cap makes a queue's backlog grow and drain.

The incident: a message pipeline fell behind again and again because its
storage servers hit their network bandwidth cap; the backlog grew, drained,
grew, and was handled by restarts for hours. Here a producer feeds a list
in a real redis-server; a consumer ("shipper") pops each message and sends
its payload to a "storage" peer in another network namespace across a veth
pair. A tc tbf cap on the veth is switched on and off: on, the link carries
about a third of what the producer makes, so the backlog grows; off, it
drains in seconds. Expect: the backlog alert within 30 s of each growth
phase, the saturated link named (QueueBacklogLinkBound's device), and the
repeated cycles reported as flapping rather than as one page per cycle.
"""
import os
import random
import shutil
import subprocess
import sys
import time

from harness import DrillFailed, Sink, Sitrep, Skip, Watch, free_port, result, wait_until

NAME = "backlog"
TITLE = "Bandwidth cap: a queue's backlog grows, drains, grows"
PAYLOAD = 32 * 1024
RATE = 40  # messages/s produced: 10 Mbit/s of payload
CAP = "3mbit"  # about a third of that

PRODUCER = r"""
import socket, sys, time
port, rate, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
payload = b"p" * size
cmd = b"*3\r\n$5\r\nLPUSH\r\n$6\r\ningest\r\n$%d\r\n%s\r\n" % (size, payload)
t = time.time()
while True:
    s.sendall(cmd)
    s.recv(64)
    t += 1.0 / rate
    time.sleep(max(0.0, t - time.time()))
"""

CONSUMER = r"""
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, b"shipper", 0, 0, 0)
port, host, sport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = socket.create_connection(("127.0.0.1", port))
out = socket.create_connection((host, sport))
buf = b""
def read_reply():
    global buf
    # BRPOP's reply: *2 $6 ingest $N payload; read until the whole payload is in.
    while True:
        if buf.startswith(b"*2\r\n"):
            parts = buf.split(b"\r\n", 4)
            if len(parts) >= 5:
                n = int(parts[3][1:])
                head = len(b"\r\n".join(parts[:4])) + 2
                if len(buf) >= head + n + 2:
                    body = buf[head:head + n]
                    buf = buf[head + n + 2:]
                    return body
        chunk = r.recv(1 << 20)
        if not chunk:
            sys.exit(0)
        buf += chunk
while True:
    r.sendall(b"*3\r\n$5\r\nBRPOP\r\n$6\r\ningest\r\n$1\r\n0\r\n")
    out.sendall(read_reply())
"""

STORAGE = r"""
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(8)
def drain(c):
    while c.recv(1 << 20):
        pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""


def state_at(hist, t):
    """An alert's state at time t from its transitions."""
    st = "inactive"
    for x, s in hist:
        if x <= t:
            st = s
    return st


def sh(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode:
        raise DrillFailed("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r.stdout


def run(d, netdata=None):
    for tool in ("ip", "tc", "redis-server"):
        if not shutil.which(tool):
            raise Skip("%s is not installed (iproute2, redis-server)" % tool)
    if os.geteuid() != 0:
        raise Skip("network namespaces and tc need root")
    tag = "%d" % (os.getpid() % 100000)
    ns, va, vb = "sitrepdrill" + tag, "sdr%sa" % tag, "sdr%sb" % tag
    net = "10.%d.%d" % (200 + random.randrange(50), random.randrange(250))
    sh("ip", "netns", "add", ns)
    d.at_exit(lambda: subprocess.run(["ip", "netns", "del", ns], capture_output=True))
    sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
    d.at_exit(lambda: subprocess.run(["ip", "link", "del", va], capture_output=True))
    sh("ip", "link", "set", vb, "netns", ns)
    sh("ip", "addr", "add", net + ".1/30", "dev", va)
    sh("ip", "link", "set", va, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", net + ".2/30", "dev", vb)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", vb, "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    sport, rport = free_port(), free_port()
    d.spawn(["ip", "netns", "exec", ns, sys.executable, "-c", STORAGE, net + ".2", str(sport)],
            name="storage")
    d.spawn(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"], name="redis")
    wait_until(lambda: subprocess.run(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d" % rport],
                                      capture_output=True).returncode == 0, 10, "redis")
    time.sleep(0.5)
    sink = Sink(d)
    s = Sitrep(d, sink, "queues:\n  - {redis: '127.0.0.1:%d', keys: [ingest], interval: 1s}\n"
               % rport).start()
    w = Watch(d, s)
    d.spawn([sys.executable, "-c", CONSUMER, str(rport), net + ".2", str(sport)], name="shipper")
    d.spawn([sys.executable, "-c", PRODUCER, str(rport), str(RATE), str(PAYLOAD)], name="producer")
    time.sleep(20 if d.short else 120)  # the pipeline keeps up: depth near zero

    cycles = 4
    grow, drain = (35, 25) if d.short else (90, 60)
    onsets = []
    for i in range(cycles):
        sh("tc", "qdisc", "replace", "dev", va, "root", "tbf", "rate", CAP, "burst", "32kbit",
           "latency", "400ms")
        onsets.append(time.time())
        d.note("cycle %d: cap on" % (i + 1))
        time.sleep(grow)
        sh("tc", "qdisc", "del", "dev", va, "root")
        d.note("cycle %d: cap off, depth %s" % (i + 1, s.value("sitrep_queue_depth")))
        time.sleep(drain)

    hist = w.transitions("QueueBacklogGrowing")
    rows = []
    for i, t0 in enumerate(onsets):
        t1 = onsets[i + 1] if i + 1 < len(onsets) else time.time()
        fired = [t for t, st in hist if st == "firing" and t0 <= t < t1]
        held = state_at(hist, t0) == "firing"
        delay = round(fired[0] - t0, 1) if fired else None
        rows.append({"alert": "QueueBacklogGrowing (growth %d)" % (i + 1), "deadline_s": 30,
                     "firing_at": fired[0] if fired else None, "delay_s": delay,
                     "notified_delay_s": None, "cause_named": None,
                     # Held firing as flapping counts as detected: the page is already out.
                     "ok": (delay is not None and delay <= 30) or held})
    bound = w.instances("QueueBacklogLinkBound")
    named = any(a["labels"].get("device") == va for a in bound)
    flapping = any(a.get("annotations", {}).get("flapping") == "true"
                   for a in w.instances("QueueBacklogGrowing"))
    pages = [t for t, m in sink.messages("QueueBacklogGrowing")
             if any(a["labels"].get("alertname") == "QueueBacklogGrowing" and
                    a.get("status") == "firing" and a.get("startsAt") for a in m["alerts"])]
    starts = {a.get("startsAt") for _, m in sink.messages("QueueBacklogGrowing")
              for a in m["alerts"] if a["labels"].get("alertname") == "QueueBacklogGrowing"}
    r = result(d, onsets[0], [], sink, w, netdata,
               ["%d cycles of %d s capped at %s / %d s free; %d notifications for the backlog "
                "alert, %d distinct occurrences (startsAt); flapping marked: %s; transitions: %s"
                % (cycles, grow, CAP, drain, len(pages), len(starts), flapping,
                   ", ".join("%s at +%.0f s" % (st, t - onsets[0]) for t, st in hist))])
    r["rows"] = rows + [
        {"alert": "QueueBacklogLinkBound names %s" % va, "deadline_s": None, "firing_at": None,
         "delay_s": None, "notified_delay_s": None, "cause_named": named, "ok": named},
        {"alert": "cycles reported as flapping, fewer occurrences than cycles", "deadline_s": None,
         "firing_at": None, "delay_s": None, "notified_delay_s": None, "cause_named": None,
         "ok": flapping and 0 < len(starts) < cycles},
    ]
    return r
