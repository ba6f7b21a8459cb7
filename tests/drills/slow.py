"""slow.py, drill 7: a dropped index makes requests slow and some fail.

The practice this tool serves calls over 5 s slow. Here an HTTP endpoint
backed by SQLite looks up each of a customer's orders in a million-row
table; its index is dropped mid-run, so every lookup becomes a scan:
requests take far over 5 s, and the gateway answers 504 at its 8 s timeout
while the scans go on (in a pool of 4 database connections, which the
waiting requests queue for). The number of orders per customer is set so one request does
about ten seconds of scanning on this machine (measured first), i.e. the
mechanism's size, not a number tuned to the rule. Expect: the p95-latency
and error-ratio alerts within 60 s.
"""
import sqlite3
import time

from harness import Sink, Sitrep, Watch, result, web_service
from load import Steady

NAME = "slow"
TITLE = "Slow queries and errors after an index is dropped"
ITEMS = 1000000


def build(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE items (ref INTEGER, qty INTEGER)")
    db.executemany("INSERT INTO items VALUES (?, ?)", ((i, 1 + i % 7) for i in range(ITEMS)))
    db.execute("CREATE INDEX items_ref ON items(ref)")
    db.commit()
    t = time.time()
    db.execute("PRAGMA automatic_index = OFF")
    db.execute("SELECT count(*) FROM items WHERE qty < 0").fetchone()
    scan = time.time() - t
    per = max(3, int(10.0 / max(scan, 1e-3)))
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, ref INTEGER)")
    db.executemany("INSERT INTO orders (customer, ref) VALUES (?, ?)",
                   ((c, (c * 7919 + k * 104729) % ITEMS) for c in range(50) for k in range(per)))
    db.execute("CREATE INDEX orders_customer ON orders(customer)")
    db.commit()
    db.close()
    return scan, per


def run(d, netdata=None):
    path = d.path("shop.db")
    scan, per = build(path)
    port, _, entry = web_service(d, "shop", "--db", path, "--timeout", "8")
    sink = Sink(d)
    s = Sitrep(d, sink, "logs:\n" + entry).start()
    w = Watch(d, s)
    clients = Steady(port, ["/orders?customer=%d" % c for c in range(50)], ["127.0.0.1"],
                     rate=3, concurrency=3)
    d.at_exit(clients.stop)
    time.sleep(20 if d.short else 120)
    onset = time.time()
    db = sqlite3.connect(path, timeout=30)
    db.execute("DROP INDEX items_ref")
    db.commit()
    db.close()
    want = ["ServiceLatencyP95High", "ServiceErrorRatioHigh"]
    for a in want:
        try:
            w.wait_firing(a, max(1, 75 - (time.time() - onset)), onset)
        except Exception:
            pass
    after = clients.since(onset)
    clients.stop()
    slow = sum(1 for x in after if x[2] > 5)
    failed = sum(1 for x in after if x[1] >= 500 or x[1] == 0)
    return result(d, onset, [{"alert": a, "within": 60, "cause_named": None} for a in want],
                  sink, w, netdata,
                  ["one scan of %d items took %.3f s, so %d orders per customer; after the drop "
                   "%d requests finished, %d over 5 s, %d failed" % (ITEMS, scan, per, len(after),
                                                                    slow, failed)])
